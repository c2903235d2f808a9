//! Glue for [`export_plugin!`](crate::export_plugin): holds the one plugin value of an instance.
//! Not part of the public API.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::{Config, Plugin};

/// The per-instance slot the export macro declares.
pub type Slot<P> = LocalKey<RefCell<Option<P>>>;

/// Create the plugin value and hand it its config.
pub fn init<P: Plugin>(slot: &'static Slot<P>, config_json: String) -> Result<(), String> {
    let mut plugin = P::default();
    plugin.init(Config::new(config_json))?;
    slot.with(|s| *s.borrow_mut() = Some(plugin));
    Ok(())
}

/// Run a hook on the plugin value; a host that skipped `init` gets a default-constructed one.
pub fn with<P: Plugin, R>(slot: &'static Slot<P>, f: impl FnOnce(&mut P) -> R) -> R {
    slot.with(|s| {
        let mut guard = s.borrow_mut();
        f(guard.get_or_insert_with(P::default))
    })
}
