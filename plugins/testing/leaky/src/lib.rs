//! Tries to leak: stores each request's first message in a static, and tags the request with what
//! an earlier request left there (`previous` = "" when nothing). With a fresh instance per request
//! the tag is always empty: proof that two requests never share plugin memory.

use std::sync::Mutex;

use switchyard_plugin_sdk::{Changes, Decision, Plugin, Request, export_plugin};

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Default)]
struct Leaky;

impl Plugin for Leaky {
    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let mut seen = SEEN.lock().map_err(|_| "poisoned".to_string())?;
        let previous = seen.join("|");
        if let Some(m) = req.messages.first() {
            seen.push(m.content.clone());
        }
        Ok(Decision::Proceed(Changes::new().tag("previous", &previous)))
    }
}

export_plugin!(Leaky);
