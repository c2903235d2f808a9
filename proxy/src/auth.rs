//! Authentication: virtual API keys from the config map a client to a tenant.
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

impl Tenants {
    /// Reads each tenant's key from `env`; tenants whose variable is unset are logged and skipped.
    pub fn build(config: &Config, env: &dyn EnvSource) -> Self {
        let mut by_key = HashMap::new();
        for tenant in &config.tenants {
            match env.get(&tenant.key_env) {
                Some(key) if !key.is_empty() => {
                    by_key.insert(key, Arc::from(tenant.name.as_str()));
                }
                _ => tracing::warn!(
                    tenant = %tenant.name,
                    "tenant disabled: environment variable {} is not set", tenant.key_env
                ),
            }
        }
        Self { by_key, required: !config.tenants.is_empty() }
    }

    /// The caller's tenant: `Ok(None)` when keys are not required.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Arc<str>>, ProxyError> {
        if !self.required {
            return Ok(None);
        }
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ProxyError::Unauthorized("missing API key: send Authorization: Bearer <key>".into())
            })?;
        match self.by_key.get(key.trim()) {
            Some(tenant) => Ok(Some(tenant.clone())),
            None => Err(ProxyError::Unauthorized("incorrect API key provided".into())),
        }
    }
}
