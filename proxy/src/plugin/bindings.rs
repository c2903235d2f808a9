//! Host bindings generated from the WIT contract (`plugin-sdk/wit`, the single source of truth),
//! re-exported under short names. These are the typed values that cross the boundary.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit",
    world: "plugin",
    additional_derives: [PartialEq, Eq],
});

// The world's `use types.{...}` already puts the request/decision/response types at this level.
pub use self::switchyard::plugin::host::Level;
pub use self::switchyard::plugin::types::{
    CacheDirective, CacheEntry, Changes, ErrorReply, Escalation, Message, RawReply, Reply, Route,
    TextEdit,
};
