//! Authentication: virtual API keys from the config map a client to a tenant, and the one parser
//! of `Authorization: Bearer` shared with the admin API.
//!
//! With no `[[tenant]]` configured the proxy is open and requests have no tenant. Once any tenant
//! is configured, every API request must carry `Authorization: Bearer <key>` for one of them.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, header};

use crate::config::Config;
use crate::env::EnvSource;
use crate::error::ProxyError;

/// The virtual keys, by key.
#[derive(Debug, Default)]
pub struct Tenants {
    /// Key → tenant name. Keys are looked up through a randomly seeded hash, which leaks no
    /// useful timing about near-miss keys.
    by_key: HashMap<String, Arc<str>>,
    /// Whether any tenant was configured (even one whose key is unset): then keys are required.
    required: bool,
}

/// Two tenants whose variables hold the same key: a request with it could not be attributed.
#[derive(Debug, thiserror::Error)]
#[error(
    "tenant[{second}] (`{second_name}`) has the same API key as tenant[{first}] (`{first_name}`)"
)]
pub struct DuplicateKey {
    pub first: usize,
    pub first_name: String,
    pub second: usize,
    pub second_name: String,
}

impl Tenants {
    /// Reads each tenant's key from `env` (blank counts as unset: see [`EnvSource::secret`]);
    /// tenants whose variable is unset are logged and skipped. Two tenants with one key are an
    /// error, never a silent "last one wins".
    pub fn build(config: &Config, env: &dyn EnvSource) -> Result<Self, DuplicateKey> {
        let mut by_key = HashMap::new();
        let mut index_of = HashMap::new();
        for (i, tenant) in config.tenants.iter().enumerate() {
            let Some(key) = env.secret(&tenant.key_env) else {
                tracing::warn!(
                    tenant = %tenant.name,
                    "tenant disabled: environment variable {} is not set or blank", tenant.key_env
                );
                continue;
            };
            if let Some(&first) = index_of.get(&key) {
                let name = |i: usize| config.tenants.get(i).map(|t| t.name.clone());
                return Err(DuplicateKey {
                    first,
                    first_name: name(first).unwrap_or_default(),
                    second: i,
                    second_name: tenant.name.clone(),
                });
            }
            index_of.insert(key.clone(), i);
            by_key.insert(key, Arc::from(tenant.name.as_str()));
        }
        Ok(Self { by_key, required: !config.tenants.is_empty() })
    }

    /// The caller's tenant: `Ok(None)` when keys are not required.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Arc<str>>, ProxyError> {
        if !self.required {
            return Ok(None);
        }
        let key = bearer_token(headers).ok_or_else(|| {
            ProxyError::Unauthorized("missing API key: send Authorization: Bearer <key>".into())
        })?;
        match self.by_key.get(key) {
            Some(tenant) => Ok(Some(tenant.clone())),
            None => Err(ProxyError::Unauthorized("incorrect API key provided".into())),
        }
    }
}

/// The credentials of `Authorization: Bearer <token>`. The scheme is case-insensitive (RFC 9110
/// §11.1); surrounding white space is dropped; an empty token is no token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::AUTHORIZATION, value.parse().unwrap());
        map
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer k1", "bearer k1", "BEARER  k1 ", "bEaReR k1"] {
            assert_eq!(bearer_token(&headers(value)), Some("k1"), "{value}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_no_token() {
        for value in ["Basic k1", "Bearer", "Bearer ", "Bearer   ", "Bearerk1", "k1"] {
            assert_eq!(bearer_token(&headers(value)), None, "{value}");
        }
    }
}
