//! Host bindings generated from the WIT contract (`plugin-sdk/wit`, the single source of truth),
//! re-exported under short names. These are the typed values that cross the boundary.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit",
    world: "plugin",
    additional_derives: [PartialEq, Eq],
    // Exports are called with `call_async`: a long call yields to the worker's event loop at each
    // epoch tick instead of stalling its other connections. Imports stay plain functions.
    exports: { default: async },
});

// The world's `use types.{...}` already puts the request/decision/response types at this level.
pub use self::switchyard::plugin::host::{Level, LimitsSnapshot};
pub use self::switchyard::plugin::types::{
    CacheDirective, CacheEntry, Changes, ErrorReply, Escalation, Message, RawReply, Reply, Route,
    TextEdit,
};
