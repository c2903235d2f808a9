//! Where secrets come from: the process environment in production, a map in tests; and the one
//! rule for reading them, [`EnvSource::secret`].
//!
//! Reading the environment through this trait keeps tests from ever calling `set_var`, which is
//! unsound in a multi-threaded test binary.

use std::collections::HashMap;

/// A read-only source of environment variables.
pub trait EnvSource: Send + Sync {
    /// The variable's raw value, or `None` when it is unset or not valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;

    /// A secret (admin token, tenant key, upstream key): the value without surrounding white space,
    /// or `None` when it is unset **or blank**. docker-compose turns an unset `${VAR}` into an
    /// empty string, so an empty token must never mean "no token needed" or "every key matches":
    /// every secret is read through here and nowhere else.
    fn secret(&self, name: &str) -> Option<String> {
        let value = self.var(name)?;
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    }
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_secrets_are_unset() {
        let env: HashMap<String, String> = [("EMPTY", ""), ("SPACES", " \t\n"), ("KEY", " k1 \n")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env.secret("EMPTY"), None);
        assert_eq!(env.secret("SPACES"), None);
        assert_eq!(env.secret("MISSING"), None);
        assert_eq!(env.secret("KEY").as_deref(), Some("k1"));
    }
}
