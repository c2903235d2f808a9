//! Changes nothing: the baseline for call-cost benchmarks and the simplest possible plugin.

use switchyard_plugin_sdk::{Plugin, export_plugin};

#[derive(Default)]
struct Noop;

impl Plugin for Noop {}

export_plugin!(Noop);
