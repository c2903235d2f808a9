//! The plugin admin API, behind the admin bearer token: list the live plugins with their numbers,
//! reload from `plugins.dir`, and upload one plugin's new `.wasm`. A reload or upload that is
//! refused keeps the old set live and answers 422 naming the plugin and why (see
//! [`ProxyError::PluginLoad`]).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::plugin::PluginRegistry;
use crate::state::State;

/// Largest accepted upload: far above any sane plugin, small enough to hold in memory.
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// Optional detached Ed25519 signature of an upload: base64 of the 64 signature bytes.
pub const SIGNATURE_HEADER: &str = "x-switchyard-signature";

/// Routes one authorized `/admin/...` request.
pub async fn handle(
    state: &State,
    request: Request<Incoming>,
) -> Result<Response<Body>, ProxyError> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let allowed = |m: &Method| -> Result<(), ProxyError> {
        if method == m {
            Ok(())
        } else {
            Err(ProxyError::MethodNotAllowed { method: method.to_string(), path: path.clone() })
        }
    };
    match path.as_str() {
        "/admin/plugins" => {
            allowed(&Method::GET)?;
            Ok(list(registry(state)?))
        }
        "/admin/reload" => {
            allowed(&Method::POST)?;
            let report = registry(state)?.reload().await.inspect_err(log_refusal)?;
            tracing::info!(
                generation = report.generation,
                took_ms = report.took_ms,
                "admin reload"
            );
            Ok(body::json(StatusCode::OK, &json!(report)))
        }
        p => {
            match p.strip_prefix("/admin/plugins/").filter(|n| !n.is_empty() && !n.contains('/')) {
                Some(name) => {
                    allowed(&Method::PUT)?;
                    let name = name.to_string();
                    install(state, &name, request).await
                }
                None => Err(ProxyError::NotFound(path.clone())),
            }
        }
    }
}

fn registry(state: &State) -> Result<&PluginRegistry, ProxyError> {
    state.plugins.as_deref().ok_or(ProxyError::PluginsDisabled)
}

/// `GET /admin/plugins`: the live set in chain order, with per-plugin numbers.
fn list(registry: &PluginRegistry) -> Response<Body> {
    let engine = registry.engine();
    body::json(
        StatusCode::OK,
        &json!({
            "generation": registry.current().generation,
            "max_instances": engine.limits().max_instances,
            "free_instances": engine.free_instances(),
            "plugins": registry.list(),
        }),
    )
}

/// `PUT /admin/plugins/{name}`: compile, probe and swap in the uploaded bytes, then write them to
/// `plugins.dir` (so a restart or the watcher sees the same file).
async fn install(
    state: &State,
    name: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ProxyError> {
    let registry = registry(state)?;
    let signature = request.headers().get(SIGNATURE_HEADER).map(|v| v.as_bytes().to_vec());
    let wasm = read_upload(state, request).await?;
    let report =
        registry.install(name, Vec::from(wasm), signature).await.inspect_err(log_refusal)?;
    tracing::info!(
        plugin = name,
        generation = report.generation,
        took_ms = report.took_ms,
        "plugin uploaded"
    );
    Ok(body::json(StatusCode::OK, &json!(report)))
}

async fn read_upload(state: &State, request: Request<Incoming>) -> Result<Bytes, ProxyError> {
    let read =
        crate::body::read_limited(request, MAX_UPLOAD_BYTES as u64, None, state.body_read_timeout);
    Ok(read.await?.0)
}

fn log_refusal(e: &crate::plugin::LoadError) {
    tracing::warn!(plugin = e.plugin().unwrap_or("-"), error = %e, "plugin change refused; the old set stays live");
}
