//! Write Switchyard plugins in Rust: the guest side of the `switchyard:plugin@0.1.1` WIT world.
//!
//! A plugin is a type that implements [`Plugin`] (every hook has a do-nothing default) and is
//! exported with [`export_plugin!`]. Build it for `wasm32-unknown-unknown` as a `cdylib`; the
//! project's build (tests/build.rs, or your own `wit-component` step) wraps the core module into a
//! component. The guest has no imports besides the host's log, counter, clock, failure-policy and tenant-limits functions: no
//! filesystem, network, environment, clock of the wall or randomness.
//!
//! # Lifecycle
//! By default the proxy makes a **fresh instance for every request**: [`Plugin::init`] runs with
//! the plugin's config, then [`Plugin::on_request`]. Statics and `self` are gone when the request
//! ends, so request data can never leak into another request. Only when the decision sets
//! [`Changes::watch_response`] does the instance live on to see the response
//! ([`Plugin::on_response`], or [`Plugin::on_event`] per SSE event then [`Plugin::on_stream_end`]).
//! An operator may opt a plugin into `isolation = "reuse"`: then an instance whose request ended
//! cleanly (no failure, no watched response) serves later requests with `init` already done, so
//! `self` and statics outlive the request. Write such plugins to keep no request data and to set
//! every per-request field at the start of [`Plugin::on_request`].
//! Each call has a deadline (a few ms by default) and the instance a memory cap; a panic, a
//! deadline or an invalid decision is a plugin failure that the proxy answers by the plugin's
//! `failure = "closed" | "open"` policy.
//!
//! # Example
//! A plugin that refuses requests mentioning a configured word, sends long prompts to a bigger
//! upstream and masks digits in user messages:
//!
//! ```
//! use switchyard_plugin_sdk::{Changes, Config, Decision, Plugin, Request, TextEdit, export_plugin};
//!
//! #[derive(Default, serde::Deserialize)]
//! struct Guard {
//!     #[serde(default)]
//!     blocked: Vec<String>,
//!     #[serde(default)]
//!     long_upstream: Option<String>,
//! }
//!
//! impl Plugin for Guard {
//!     fn init(&mut self, config: Config) -> Result<(), String> {
//!         *self = config.parse()?;
//!         Ok(())
//!     }
//!
//!     fn on_request(&mut self, req: Request) -> Result<Decision, String> {
//!         let text_len: usize = req.messages.iter().map(|m| m.content.len()).sum();
//!         if req.messages.iter().any(|m| self.blocked.iter().any(|w| m.content.contains(w.as_str()))) {
//!             return Ok(Decision::error(400, "policy_violation", "this request is not allowed"));
//!         }
//!         let mut changes = Changes::new().tag("guard", "checked");
//!         if let (true, Some(up)) = (text_len > 4000, &self.long_upstream) {
//!             changes = changes.route(up, None);
//!         }
//!         for (i, m) in req.messages.iter().enumerate().filter(|(_, m)| m.role == "user") {
//!             for (pos, _) in m.content.match_indices(|c: char| c.is_ascii_digit()) {
//!                 changes = changes.edit(TextEdit::new(i, pos..pos + 1, "#"));
//!             }
//!         }
//!         Ok(Decision::Proceed(changes))
//!     }
//! }
//!
//! export_plugin!(Guard);
//! # fn main() {}
//! ```

extern crate self as switchyard_plugin_sdk;

mod helpers;
#[doc(hidden)]
pub mod rt;
mod stream;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The raw wit-bindgen output for the world. Plugin authors use the re-exports at the crate root.
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "::switchyard_plugin_sdk::bindings",
        runtime_path: "::switchyard_plugin_sdk::__wit_bindgen::rt",
    });
}

pub use bindings::switchyard::plugin::host::{Level, LimitsSnapshot};
pub use bindings::switchyard::plugin::types::{
    CacheDirective, CacheEntry, Changes, Decision, Delta, ErrorReply, Escalation, EventAction,
    LlmRequest as Request, LlmResponse as Response, Message, RawReply, Reply, ResponseAction,
    Route, StreamEvent, TextEdit,
};
pub use helpers::{
    Config, TOOL_CALL_CHOICE, USD_PER_MICRO, counter_add, fails_open, is_probe, is_turn, log,
    now_ns, tenant_limits,
};
pub use stream::PlaceholderStream;

/// A plugin: one value of this type lives in each fresh instance, i.e. for one request.
///
/// Every hook has a default that changes nothing, so implement only what you need. Hooks take
/// `&mut self`, so state set in [`Plugin::on_request`] (say, the placeholders a redaction used) is
/// there in the response hooks of the same request, and never in another request.
pub trait Plugin: Default + 'static {
    /// Called first on every fresh instance (and once when the plugin is loaded, so a bad config is
    /// refused before the plugin goes live). `config` is the `config` table of the plugin's
    /// `[[plugin]]` entry. Returning an error is a plugin failure.
    ///
    /// Default: ignores the config.
    fn init(&mut self, config: Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// The request phase: look at the request (with the edits of earlier plugins applied) and
    /// decide to proceed with [`Changes`] or to answer now ([`Decision::Respond`]). An `Err` is a
    /// plugin failure, answered by the failure policy.
    ///
    /// Default: proceed, change nothing.
    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let _ = req;
        Ok(Decision::pass())
    }

    /// A whole, non-streamed response. Only called when this instance's decision set
    /// [`Changes::watch_response`].
    ///
    /// Default: [`ResponseAction::Pass`].
    fn on_response(&mut self, resp: Response) -> ResponseAction {
        let _ = resp;
        ResponseAction::Pass
    }

    /// One SSE event of a streamed response. Only called when this instance's decision set
    /// [`Changes::watch_response`]. [`EventAction::Hold`] keeps the text back (for example, to
    /// see a placeholder that spans events); emit it later with a `Replace` or from
    /// [`Plugin::on_stream_end`].
    ///
    /// Default: [`EventAction::Pass`].
    fn on_event(&mut self, ev: StreamEvent) -> EventAction {
        let _ = ev;
        EventAction::Pass
    }

    /// The stream ended: return the deltas still held, in order.
    ///
    /// Default: nothing.
    fn on_stream_end(&mut self) -> Vec<Delta> {
        Vec::new()
    }
}

/// Export a [`Plugin`] type as the component's implementation of the world. Use it once per
/// plugin crate, at the crate root: `export_plugin!(MyPlugin);`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        ::std::thread_local! {
            static __SWITCHYARD_PLUGIN: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }

        #[doc(hidden)]
        pub struct __SwitchyardExport;

        impl $crate::bindings::Guest for __SwitchyardExport {
            fn init(config_json: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                $crate::rt::init(&__SWITCHYARD_PLUGIN, config_json)
            }
            fn on_request(req: $crate::Request) -> ::core::result::Result<$crate::Decision, ::std::string::String> {
                $crate::rt::with(&__SWITCHYARD_PLUGIN, |p| $crate::Plugin::on_request(p, req))
            }
            fn on_response(resp: $crate::Response) -> $crate::ResponseAction {
                $crate::rt::with(&__SWITCHYARD_PLUGIN, |p| $crate::Plugin::on_response(p, resp))
            }
            fn on_event(ev: $crate::StreamEvent) -> $crate::EventAction {
                $crate::rt::with(&__SWITCHYARD_PLUGIN, |p| $crate::Plugin::on_event(p, ev))
            }
            fn on_stream_end() -> ::std::vec::Vec<$crate::Delta> {
                $crate::rt::with(&__SWITCHYARD_PLUGIN, |p| $crate::Plugin::on_stream_end(p))
            }
        }

        $crate::bindings::export_bindings!(__SwitchyardExport with_types_in $crate::bindings);
    };
}
