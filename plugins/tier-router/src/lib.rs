//! The `tier-router` built-in plugin: routes each request to a tier (upstream + model + fallbacks)
//! by endpoint, model alias, tenant, a header hint, prompt features and residency tags, and
//! cascades answers of the cheap tier to a better one when they look bad. See README.md.
//!
//! Layout: `config` (the operator's table), `features` (prompt scans), `route` (the decision),
//! `cascade` (judging answers, holding streams), and here the glue to the host (`plugin`).

mod cascade;
mod config;
mod features;
// Only the wasm export uses the glue; native builds are for the unit tests of the pure modules.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod plugin;
mod route;

#[cfg(target_arch = "wasm32")]
switchyard_plugin_sdk::export_plugin!(plugin::TierRouter);
