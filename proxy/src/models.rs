//! `GET /v1/models`: the union of what every enabled upstream serves, configured or asked.

use std::collections::HashSet;

use http::StatusCode;
use serde_json::{Value, json};

use crate::body;
use crate::dispatch::{Served, fetch_json};
use crate::request::Endpoint;
use crate::upstream::Upstreams;

/// Lists models from all upstreams in config order; the first upstream to list an id owns it.
/// Upstreams that fail to answer are left out (and logged) rather than failing the listing.
pub async fn list(upstreams: &Upstreams) -> Served {
    let enabled: Vec<_> = upstreams.iter().filter(|u| u.disabled.is_none()).collect();
    let lookups = enabled.iter().map(|upstream| async move {
        match &upstream.models {
            Some(ids) => (upstream, Ok(ids.clone())),
            None => (upstream, fetch_json(upstream, Endpoint::Models).await.map(|v| model_ids(&v))),
        }
    });
    let mut seen = HashSet::new();
    let mut data = Vec::new();
    let mut answered = Vec::new();
    for (upstream, ids) in futures_util::future::join_all(lookups).await {
        match ids {
            Ok(ids) => {
                answered.push(upstream.name.as_str());
                for id in ids.into_iter().filter(|id| seen.insert(id.clone())) {
                    data.push(json!({"id": id, "object": "model", "created": 0, "owned_by": upstream.name}));
                }
            }
            Err(e) => tracing::warn!(upstream = %upstream.name, "listing models failed: {e}"),
        }
    }
    let response = body::json(StatusCode::OK, &json!({"object": "list", "data": data}));
    let upstream = if answered.is_empty() { "none".to_string() } else { answered.join(",") };
    Served { response, upstream, from_cache: false }
}

fn model_ids(listing: &Value) -> Vec<String> {
    listing["data"]
        .as_array()
        .map(|models| models.iter().filter_map(|m| m["id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}
