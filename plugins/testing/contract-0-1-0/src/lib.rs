//! A plugin as it was built before contract 0.1.1: its guest bindings come from `wit/plugin.wit`,
//! a frozen copy of `switchyard:plugin@0.1.0` (not from the SDK, which follows the current
//! contract), so the component imports `switchyard:plugin/host@0.1.0` and
//! `switchyard:plugin/types@0.1.0`. It tags every request `contract` = `0.1.0` and counts it,
//! which also makes it import a host function (`counter-add`) through the old interface name.

#[allow(missing_docs, clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "plugin" });
}

use bindings::switchyard::plugin::host;
use bindings::switchyard::plugin::types::{
    Changes, Decision, EventAction, LlmRequest, LlmResponse, ResponseAction, StreamEvent,
};
use bindings::{Delta, Guest};

struct Old;

impl Guest for Old {
    fn init(_config_json: String) -> Result<(), String> {
        Ok(())
    }

    fn on_request(_req: LlmRequest) -> Result<Decision, String> {
        host::counter_add("requests", 1);
        Ok(Decision::Proceed(Changes {
            route: None,
            edits: Vec::new(),
            cache: None,
            add_headers: Vec::new(),
            tags: vec![("contract".into(), "0.1.0".into())],
            watch_response: false,
        }))
    }

    fn on_response(_resp: LlmResponse) -> ResponseAction {
        ResponseAction::Pass
    }

    fn on_event(_ev: StreamEvent) -> EventAction {
        EventAction::Pass
    }

    fn on_stream_end() -> Vec<Delta> {
        Vec::new()
    }
}

bindings::export!(Old with_types_in bindings);
