//! The response cache: answers that a plugin marked cacheable, in a moka cache bounded by bytes with
//! each entry's TTL from the plugin's decision. Keys are scoped by tenant and endpoint, so an entry
//! never serves another tenant. What is stored is what the upstream returned (after request-side
//! redaction, before any response-phase plugin), so a hit runs the response phase again
//! (`respond::Responder::hit`). With `[cache] shared = true`, [`shared`] keeps every answer in
//! Redis too, a second level that the other replicas look up after a miss in their own.

mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use http::{HeaderName, HeaderValue};

use crate::config::CacheConfig;
use crate::error::ProxyError;
use crate::plugin::CachePolicy;
use crate::request::{Endpoint, ParsedRequest};
use crate::upstream::Upstream;

pub use shared::{SharedCache, SharedStats};

/// A cache key: sha256 over tenant, endpoint and the plugin's key.
pub type Key = [u8; 32];

/// What `x-switchyard-cache` says about a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache.
    Hit,
    /// Cacheable, not in the cache: fetched (and stored when it succeeded).
    Miss,
    /// The cache was not consulted (no plugin asked for it, `no-cache`, or the request failed
    /// before the decision).
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Bypass => "bypass",
        }
    }
}

/// One stored answer.
#[derive(Debug)]
pub struct Cached {
    /// The upstream that gave it (reported in `x-switchyard-upstream` on hits).
    pub upstream: String,
    pub body: CachedBody,
    ttl: Duration,
}

impl Cached {
    /// See [`CachedBody::fits`].
    pub fn fits(&self, stream: bool) -> bool {
        self.body.fits(stream)
    }
}

/// A stored answer's content, as the upstream sent it.
#[derive(Debug)]
pub enum CachedBody {
    /// A whole JSON response body.
    Json(Bytes),
    /// A stream: the `data` of each event, in order, without the closing `[DONE]`.
    Events(Vec<String>),
}

impl CachedBody {
    fn weight(&self) -> usize {
        match self {
            Self::Json(bytes) => bytes.len(),
            Self::Events(events) => events.iter().map(|e| e.len() + 16).sum(),
        }
    }

    /// Whether this entry can be shown to a client that asked for a stream or not (a stored
    /// stream with tool calls cannot become one JSON body, nor such a body a stream).
    pub fn fits(&self, stream: bool) -> bool {
        match (self, stream) {
            (Self::Events(_), true) | (Self::Json(_), false) => true,
            (Self::Events(events), false) => {
                crate::wire::chunks::chunks_to_completion(events).is_some()
            }
            (Self::Json(json), true) => crate::wire::chunks::completion_to_chunks(json).is_some(),
        }
    }
}

/// What one request does with the cache, decided once the plugins have run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Bypass,
    /// Look `key` up first (unless the client said `no-cache`), and store a fresh answer.
    Use {
        key: Key,
        ttl: Duration,
        read: bool,
    },
}

/// The proxy's response cache.
pub struct ResponseCache {
    entries: Cache<Key, Arc<Cached>>,
    max_entry_bytes: usize,
    /// The second level in Redis (`[cache] shared = true`).
    shared: Option<Arc<SharedCache>>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache").field("entries", &self.entries.entry_count()).finish()
    }
}

/// Per-entry expiry: the TTL the plugin chose.
struct PluginTtl;

impl moka::Expiry<Key, Arc<Cached>> for PluginTtl {
    fn expire_after_create(&self, _: &Key, value: &Arc<Cached>, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl ResponseCache {
    pub fn new(config: &CacheConfig) -> Self {
        let entries = Cache::builder()
            .max_capacity(config.max_mib.saturating_mul(1024 * 1024))
            .weigher(|_: &Key, value: &Arc<Cached>| {
                u32::try_from(value.body.weight() + value.upstream.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(PluginTtl)
            .build();
        let max_entry_bytes =
            usize::try_from(config.max_entry_kib.saturating_mul(1024)).unwrap_or(usize::MAX);
        Self { entries, max_entry_bytes, shared: None }
    }

    /// This cache with `shared` as its second level.
    pub fn with_shared(mut self, shared: SharedCache) -> Self {
        self.shared = Some(Arc::new(shared));
        self
    }

    /// The shared level's counters, when there is one (for /metrics).
    pub fn shared_stats(&self) -> Option<&SharedStats> {
        self.shared.as_deref().map(|s| &s.stats)
    }

    /// The plan for a request: the merged plugin directive, unless the client's `cache-control`
    /// says otherwise (`no-store`: bypass; `no-cache`: skip the lookup, store the fresh answer).
    /// The plugin's key only ever narrows what is shared: the host's `identity` of the request is
    /// part of every key, so two requests that could get different answers never share an entry
    /// whatever the plugin's key says (computed only for cacheable requests).
    pub fn plan(
        &self,
        policy: Option<&CachePolicy>,
        tenant: Option<&str>,
        endpoint: Endpoint,
        client: ClientDirective,
        identity: impl FnOnce() -> Option<Identity>,
    ) -> Plan {
        match policy {
            Some(CachePolicy::Store { key, ttl }) if !client.no_store && !ttl.is_zero() => {
                let Some(identity) = identity() else { return Plan::Bypass };
                Plan::Use {
                    key: scoped_key(tenant, endpoint, &identity, key),
                    ttl: *ttl,
                    read: !client.no_cache,
                }
            }
            _ => Plan::Bypass,
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Cached>> {
        self.entries.get(key)
    }

    /// [`Self::get`], then, on a miss, the shared level (within its timeout); a shared hit is
    /// kept in this replica's cache for the TTL it has left.
    pub async fn lookup(&self, key: &Key) -> Option<Arc<Cached>> {
        if let Some(hit) = self.entries.get(key) {
            return Some(hit);
        }
        let entry = Arc::new(self.shared.as_ref()?.get(key).await?);
        self.entries.insert(*key, Arc::clone(&entry));
        Some(entry)
    }

    /// Drops `entry` (one that could not be served) from this replica's cache and, off the
    /// request path, from the shared level, so no replica serves it again.
    pub fn remove(&self, key: &Key, entry: &Cached) {
        self.entries.invalidate(key);
        if let Some(shared) = &self.shared {
            shared.remove(key, entry);
        }
    }

    /// Stores an answer unless it is larger than `max_entry_kib`.
    pub fn put(&self, key: Key, ttl: Duration, upstream: &str, body: CachedBody) {
        if body.weight() > self.max_entry_bytes {
            tracing::debug!(bytes = body.weight(), "answer too large to cache");
            return;
        }
        let entry = Cached { upstream: upstream.to_string(), body, ttl };
        if let Some(shared) = &self.shared {
            shared.put(&key, &entry);
        }
        self.entries.insert(key, Arc::new(entry));
    }

    /// Approximate bytes held (for /metrics).
    pub fn weighted_size(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// Approximate number of entries (for /metrics).
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Applies pending evictions and expiries now (moka does it lazily); for tests and scrapes.
    pub fn sync(&self) {
        self.entries.run_pending_tasks();
    }
}

/// The client's `cache-control` request directives that the cache honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientDirective {
    pub no_cache: bool,
    pub no_store: bool,
}

impl ClientDirective {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut directive = Self::default();
        for value in headers.get_all(http::header::CACHE_CONTROL) {
            for part in value.to_str().unwrap_or("").split(',') {
                match part.trim().to_ascii_lowercase().as_str() {
                    "no-cache" => directive.no_cache = true,
                    "no-store" => directive.no_store = true,
                    _ => {}
                }
            }
        }
        directive
    }
}

/// What the host puts into every key besides the plugin's key: a digest of everything that can
/// change the answer — the request as forwarded ([`ParsedRequest::write_identity`]), the upstream
/// chain it goes to, and the headers plugins add to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity([u8; 32]);

impl Identity {
    pub fn of(
        request: &ParsedRequest,
        chain: &[Arc<Upstream>],
        add_headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Self, ProxyError> {
        let mut hash = Sha256::new();
        request.write_identity(&mut hash)?;
        let names = chain.iter().map(|u| u.name.as_bytes());
        let headers = add_headers.iter().flat_map(|(n, v)| [n.as_str().as_bytes(), v.as_bytes()]);
        // Length-prefixed, so no two lists hash the same input by concatenation.
        for part in names.chain(std::iter::once(&b"|"[..])).chain(headers) {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        Ok(Self(hash.finalize().into()))
    }
}

fn scoped_key(tenant: Option<&str>, endpoint: Endpoint, identity: &Identity, key: &str) -> Key {
    let mut hash = Sha256::new();
    // Length-prefixed parts, so no two (tenant, endpoint, key) triples hash the same input.
    for part in [tenant.unwrap_or(""), endpoint.path(), key] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.update([u8::from(tenant.is_some())]);
    hash.update(identity.0);
    hash.finalize().into()
}

/// Where a fresh answer for a cacheable request is stored.
#[derive(Clone)]
pub struct Store {
    pub cache: Arc<ResponseCache>,
    pub key: Key,
    pub ttl: Duration,
}

impl Store {
    /// Stores a whole JSON answer, unless it is an error object (some upstreams answer 200 with
    /// `{"error": ...}`): a failure is never served again as an answer.
    pub fn put_json(&self, upstream: &str, body: Bytes) {
        if is_error_object(&body) {
            tracing::debug!(%upstream, "a 200 carrying an error object is not cached");
            return;
        }
        self.cache.put(self.key, self.ttl, upstream, CachedBody::Json(body));
    }

    /// Starts recording a stream's events for the cache.
    pub fn recorder(&self, upstream: &str) -> Recorder {
        Recorder {
            store: self.clone(),
            upstream: upstream.to_string(),
            events: Vec::new(),
            bytes: 0,
        }
    }
}

/// Collects a stream's events as they are relayed; stored only when the stream ends cleanly.
pub struct Recorder {
    store: Store,
    upstream: String,
    events: Vec<String>,
    bytes: usize,
}

impl Recorder {
    /// Records one event's data; gives up (returns false) once the stream is too large to cache,
    /// or when an event is an error object: a stream that failed is never stored, even when
    /// `[DONE]` follows the error.
    pub fn record(&mut self, data: &str) -> bool {
        self.bytes += data.len() + 16;
        if self.bytes > self.store.cache.max_entry_bytes || is_error_object(data.as_bytes()) {
            return false;
        }
        self.events.push(data.to_string());
        true
    }

    /// The stream ended with `[DONE]`: store it.
    pub fn finish(self) {
        let Self { store, upstream, events, .. } = self;
        store.cache.put(store.key, store.ttl, &upstream, CachedBody::Events(events));
    }
}

/// Whether a JSON answer or event is an OpenAI-shaped error (`{"error": ...}` at the top level).
/// Cheap for ordinary answers: only a body that mentions `"error"` is parsed.
fn is_error_object(json: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        error: Option<serde::de::IgnoredAny>,
    }
    json.windows(7).any(|w| w == b"\"error\"")
        && serde_json::from_slice::<Probe>(json).is_ok_and(|probe| probe.error.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> ResponseCache {
        ResponseCache::new(&CacheConfig { max_mib: 1, max_entry_kib: 4, ..CacheConfig::default() })
    }

    fn store(key: &str) -> CachePolicy {
        CachePolicy::Store { key: key.into(), ttl: Duration::from_secs(60) }
    }

    fn any_identity() -> Option<Identity> {
        Some(Identity([7; 32]))
    }

    fn identity(endpoint: Endpoint, body: &str) -> Identity {
        let parsed = ParsedRequest::parse(endpoint, Bytes::from(body.to_string())).unwrap();
        Identity::of(&parsed, &[], &[]).unwrap()
    }

    #[test]
    fn one_plugin_key_never_joins_requests_with_different_identities() {
        let c = cache();
        let plan = |id: Identity| {
            c.plan(Some(&store("k")), None, Endpoint::Embeddings, Default::default(), || Some(id))
        };
        let a = identity(Endpoint::Embeddings, r#"{"model":"e","input":[[1,2,3]]}"#);
        let b = identity(Endpoint::Embeddings, r#"{"model":"e","input":[[1,2,4]]}"#);
        assert_ne!(plan(a), plan(b));
        assert_eq!(plan(a), plan(a));
    }

    #[test]
    fn the_identity_covers_every_part_but_the_framing() {
        let chat = |extra: &str| {
            identity(
                Endpoint::ChatCompletions,
                &format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"text","text":"what is this"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{extra}"}}}}]}}]}}"#
                ),
            )
        };
        assert_ne!(chat("AAAA"), chat("BBBB"), "images are part of the identity");
        let with = |fields: &str| {
            identity(
                Endpoint::ChatCompletions,
                &format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}]{fields}}}"#
                ),
            )
        };
        let plain = with("");
        assert_eq!(plain, with(r#","stream":true,"stream_options":{"include_usage":true}"#));
        for other in [
            r#","tools":[{"type":"function","function":{"name":"f"}}]"#,
            r#","response_format":{"type":"json_object"}"#,
            r#","temperature":0"#,
            r#","user":"u1""#,
        ] {
            assert_ne!(plain, with(other), "{other}");
        }
        let named = identity(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"user","content":"hi","name":"ann"}]}"#,
        );
        assert_ne!(plain, named);
    }

    #[test]
    fn failed_answers_are_never_stored() {
        let c = Arc::new(cache());
        let s = Store { cache: Arc::clone(&c), key: [2; 32], ttl: Duration::from_secs(60) };
        s.put_json("up", Bytes::from(r#"{"error":{"message":"overloaded"}}"#));
        assert!(c.get(&[2; 32]).is_none(), "a 200 with an error object");
        let mut recorder = s.recorder("up");
        assert!(recorder.record(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#));
        assert!(!recorder.record(r#"{"error":{"message":"broke"}}"#), "an error event");
        s.put_json(
            "up",
            Bytes::from(r#"{"choices":[{"message":{"content":"the error was mine"}}]}"#),
        );
        assert!(c.get(&[2; 32]).is_some(), "an answer that mentions errors is an answer");
    }

    #[test]
    fn keys_are_scoped_by_tenant_and_endpoint() {
        let c = cache();
        let plan = |tenant, endpoint| {
            c.plan(Some(&store("k")), tenant, endpoint, Default::default(), any_identity)
        };
        let a = plan(Some("a"), Endpoint::ChatCompletions);
        assert_ne!(a, plan(Some("b"), Endpoint::ChatCompletions));
        assert_ne!(a, plan(None, Endpoint::ChatCompletions));
        assert_ne!(a, plan(Some("a"), Endpoint::Completions));
        assert_eq!(a, plan(Some("a"), Endpoint::ChatCompletions));
    }

    #[test]
    fn client_directives_and_policies_decide_the_plan() {
        let c = cache();
        let chat = Endpoint::ChatCompletions;
        assert_eq!(c.plan(None, None, chat, Default::default(), any_identity), Plan::Bypass);
        assert_eq!(
            c.plan(Some(&CachePolicy::NoCache), None, chat, Default::default(), any_identity),
            Plan::Bypass
        );
        let no_store = ClientDirective { no_store: true, no_cache: false };
        assert_eq!(c.plan(Some(&store("k")), None, chat, no_store, any_identity), Plan::Bypass);
        let no_cache = ClientDirective { no_store: false, no_cache: true };
        assert!(matches!(
            c.plan(Some(&store("k")), None, chat, no_cache, any_identity),
            Plan::Use { read: false, .. }
        ));
        let mut headers = HeaderMap::new();
        headers.insert("cache-control", "max-age=0, No-Cache".parse().unwrap());
        assert_eq!(ClientDirective::from_headers(&headers), no_cache);
    }

    #[test]
    fn oversized_answers_are_not_stored() {
        let c = Arc::new(cache());
        let s = Store { cache: Arc::clone(&c), key: [1; 32], ttl: Duration::from_secs(60) };
        s.put_json("up", Bytes::from(vec![b'x'; 5000]));
        assert!(c.get(&[1; 32]).is_none());
        let mut recorder = s.recorder("up");
        assert!(recorder.record("small"));
        recorder.finish();
        assert!(matches!(c.get(&[1; 32]).unwrap().body, CachedBody::Events(ref e) if e.len() == 1));
    }
}
