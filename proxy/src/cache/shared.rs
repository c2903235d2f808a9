//! The response cache's shared second level (`[cache] shared = true`): answers kept in the
//! `[state]` Redis, through the ledger's RESP client, so an answer one replica stored is a hit on
//! every other. Same keys as the in-process cache (tenant, endpoint, the request's identity and the
//! plugin's key, hashed), each entry with the TTL the plugin chose and at most
//! `shared_max_entry_kib`. Redis can only ever cost a request `shared_timeout_ms`: a lookup that
//! fails, times out or reads something unexpected is a miss, a store and a removal (of an entry
//! that could not be served) happen off the request path, and every outcome is counted for
//! /metrics (`switchyard_cache_shared_total{result}`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::{Cached, CachedBody, Key};
use crate::ledger::RedisStore;
use crate::ledger::resp::Reply;

/// First bytes of every stored value: the format's version, so a later format never misreads
/// an entry a replica of this version wrote (it is a miss instead).
const MAGIC: &[u8; 4] = b"SYC1";

/// Deletes `KEYS[1]` only while it still holds `ARGV[1]`, the entry that could not be served: an
/// answer stored under the key since (by this replica or another) is a good one and stays.
const REMOVE_IF_SAME: &[u8] =
    b"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// The shared level over one Redis server.
pub struct SharedCache {
    redis: Arc<RedisStore>,
    /// `<state.key_prefix>:cache:`, before the key's hex.
    prefix: String,
    timeout: Duration,
    max_entry_bytes: usize,
    pub(crate) stats: SharedStats,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// What the shared level did, for /metrics.
#[derive(Debug, Default)]
pub struct SharedStats {
    /// Lookups answered from Redis.
    pub hits: AtomicU64,
    /// Lookups Redis had no entry for.
    pub misses: AtomicU64,
    /// Lookups or stores that failed or timed out, or read a value that is not an entry: each a
    /// miss (or a store lost), never an error for the request.
    pub errors: AtomicU64,
    /// Answers written to Redis.
    pub stored: AtomicU64,
    /// Answers not written: larger than `shared_max_entry_kib`.
    pub too_large: AtomicU64,
    /// Entries deleted from Redis because they could not be served (a watching plugin escalated
    /// the hit); one replaced in Redis meanwhile is kept and not counted.
    pub removed: AtomicU64,
}

impl SharedStats {
    /// `(result label, count)` for each outcome.
    pub fn counts(&self) -> [(&'static str, u64); 6] {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("hit", n(&self.hits)),
            ("miss", n(&self.misses)),
            ("error", n(&self.errors)),
            ("stored", n(&self.stored)),
            ("too_large", n(&self.too_large)),
            ("removed", n(&self.removed)),
        ]
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl SharedCache {
    pub fn new(redis: Arc<RedisStore>, timeout: Duration, max_entry_bytes: usize) -> Self {
        let prefix = format!("{}:cache:", redis.prefix());
        Self { redis, prefix, timeout, max_entry_bytes, stats: SharedStats::default() }
    }

    fn redis_key(&self, key: &Key) -> Vec<u8> {
        let mut out = self.prefix.clone().into_bytes();
        for byte in key {
            out.extend_from_slice(format!("{byte:02x}").as_bytes());
        }
        out
    }

    /// The entry under `key` and its remaining TTL, in one round trip (`GET` and `PTTL`
    /// pipelined) within the timeout; `None` on a miss or any failure.
    pub async fn get(&self, key: &Key) -> Option<Cached> {
        let k = self.redis_key(key);
        let commands = [vec![b"GET".to_vec(), k.clone()], vec![b"PTTL".to_vec(), k]];
        let replies = match self.call(&commands).await {
            Some(replies) => replies,
            None => return None,
        };
        match replies.as_slice() {
            [Reply::Bulk(None), _] => {
                bump(&self.stats.misses);
                None
            }
            [Reply::Bulk(Some(value)), Reply::Int(ttl_ms)] if *ttl_ms > 0 => {
                let ttl = Duration::from_millis(*ttl_ms as u64);
                match decode(value, ttl) {
                    Some(entry) => {
                        bump(&self.stats.hits);
                        Some(entry)
                    }
                    None => {
                        tracing::debug!("shared cache: an entry that does not decode; a miss");
                        bump(&self.stats.errors);
                        None
                    }
                }
            }
            // Expired between GET and PTTL, or no TTL (not ours): a miss.
            [Reply::Bulk(Some(_)), Reply::Int(_)] => {
                bump(&self.stats.misses);
                None
            }
            other => {
                tracing::debug!(?other, "shared cache: unexpected reply; a miss");
                bump(&self.stats.errors);
                None
            }
        }
    }

    /// Writes `entry` under `key` with its TTL, on a task of its own (never on the request's
    /// path), unless it is larger than the shared cap.
    pub fn put(self: &Arc<Self>, key: &Key, entry: &Cached) {
        let value = encode(entry);
        if value.len() > self.max_entry_bytes {
            bump(&self.stats.too_large);
            return;
        }
        let ttl_ms = entry.ttl.as_millis().max(1).to_string().into_bytes();
        let command = vec![b"SET".to_vec(), self.redis_key(key), value, b"PX".to_vec(), ttl_ms];
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let shared = Arc::clone(self);
        runtime.spawn(async move {
            if let Some(replies) = shared.call(&[command]).await {
                match replies.as_slice() {
                    [Reply::Status(_)] => bump(&shared.stats.stored),
                    other => {
                        tracing::debug!(?other, "shared cache: SET refused");
                        bump(&shared.stats.errors);
                    }
                }
            }
        });
    }

    /// Deletes `entry` (one that could not be served) from Redis on a task of its own, unless
    /// Redis holds another answer under `key` by then.
    pub fn remove(self: &Arc<Self>, key: &Key, entry: &Cached) {
        let value = encode(entry);
        if value.len() > self.max_entry_bytes {
            return; // never written to Redis
        }
        let script = REMOVE_IF_SAME.to_vec();
        let command = vec![b"EVAL".to_vec(), script, b"1".to_vec(), self.redis_key(key), value];
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let shared = Arc::clone(self);
        runtime.spawn(async move {
            match shared.call(&[command]).await.as_deref() {
                Some([Reply::Int(1)]) => bump(&shared.stats.removed),
                Some([Reply::Int(_)]) | None => {}
                Some(other) => {
                    tracing::debug!(?other, "shared cache: removal refused");
                    bump(&shared.stats.errors);
                }
            }
        });
    }

    /// One pipelined exchange within the timeout; `None` (counted) when it failed.
    async fn call(&self, commands: &[Vec<Vec<u8>>]) -> Option<Vec<Reply>> {
        match tokio::time::timeout(self.timeout, self.redis.client().pipeline(commands)).await {
            Ok(Ok(replies)) if replies.len() == commands.len() => Some(replies),
            Ok(Ok(_)) => {
                bump(&self.stats.errors);
                None
            }
            Ok(Err(e)) => {
                tracing::debug!("shared cache unavailable: {e}");
                bump(&self.stats.errors);
                None
            }
            Err(_) => {
                tracing::debug!(timeout_ms = self.timeout.as_millis() as u64, "shared cache slow");
                bump(&self.stats.errors);
                None
            }
        }
    }
}

/// `MAGIC`, the kind (`J` a JSON body, `E` stream events), the upstream and the body, each
/// length-prefixed (u32, little-endian) but a JSON body, which is the rest.
fn encode(entry: &Cached) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.body.weight() + entry.upstream.len() + 16);
    out.extend_from_slice(MAGIC);
    let put = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    match &entry.body {
        CachedBody::Json(body) => {
            out.push(b'J');
            put(&mut out, entry.upstream.as_bytes());
            out.extend_from_slice(body);
        }
        CachedBody::Events(events) => {
            out.push(b'E');
            put(&mut out, entry.upstream.as_bytes());
            for event in events {
                put(&mut out, event.as_bytes());
            }
        }
    }
    out
}

/// The entry `encode` wrote, to live `ttl` more; `None` for anything else.
fn decode(value: &[u8], ttl: Duration) -> Option<Cached> {
    let rest = value.strip_prefix(MAGIC)?;
    let (&kind, mut rest) = rest.split_first()?;
    let upstream = String::from_utf8(take(&mut rest)?.to_vec()).ok()?;
    let body = match kind {
        b'J' => CachedBody::Json(Bytes::copy_from_slice(rest)),
        b'E' => {
            let mut events = Vec::new();
            while !rest.is_empty() {
                events.push(String::from_utf8(take(&mut rest)?.to_vec()).ok()?);
            }
            CachedBody::Events(events)
        }
        _ => return None,
    };
    Some(Cached { upstream, body, ttl })
}

/// The next length-prefixed part of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if tail.len() < len {
        return None;
    }
    let (part, tail) = tail.split_at(len);
    *rest = tail;
    Some(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(body: CachedBody) -> Cached {
        let entry = Cached { upstream: "hosted".into(), body, ttl: Duration::from_secs(9) };
        decode(&encode(&entry), Duration::from_secs(3)).expect("decodes")
    }

    #[test]
    fn entries_decode_as_they_were_stored_with_the_remaining_ttl() {
        let json = roundtrip(CachedBody::Json(Bytes::from_static(br#"{"choices":[]}"#)));
        assert_eq!(json.upstream, "hosted");
        assert_eq!(json.ttl, Duration::from_secs(3));
        assert!(matches!(json.body, CachedBody::Json(ref b) if &b[..] == br#"{"choices":[]}"#));
        let events = vec!["{\"a\":1}".to_string(), String::new(), "é".to_string()];
        let stream = roundtrip(CachedBody::Events(events.clone()));
        assert!(matches!(stream.body, CachedBody::Events(ref e) if *e == events));
    }

    #[test]
    fn anything_else_is_not_an_entry() {
        let ttl = Duration::from_secs(1);
        let entry =
            Cached { upstream: "u".into(), body: CachedBody::Events(vec!["x".into()]), ttl };
        let good = encode(&entry);
        assert!(decode(&good, ttl).is_some());
        for bad in [&b""[..], b"SYC0J", b"SYC1X\x01\x00\x00\x00u", &good[..good.len() - 1]] {
            assert!(decode(bad, ttl).is_none(), "{bad:?}");
        }
    }
}
