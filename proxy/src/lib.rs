//! Switchyard

pub mod plugin;
