//! Where secrets come from: the process environment in production, a map in tests.
//!
//! Reading the environment through this trait keeps tests from ever calling `set_var`, which is
//! unsound in a multi-threaded test binary.

use std::collections::HashMap;

/// A read-only source of environment variables.
pub trait EnvSource: Send + Sync {
    /// The variable's value, or `None` when it is unset or not valid UTF-8.
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}
