//! The shared store: every counter in Redis, each admission and settlement one Lua script (atomic
//! on the server, one round trip). Windows are keyed by their number and expire on their own;
//! concurrency slots are leases in a sorted set, so a replica that dies mid-request frees its
//! slots when the lease ends. The scripts read Redis's `TIME`, so all replicas share one clock.
//!
//! Keys (`P` is `state.key_prefix`, `T` the tenant, last so no name can forge another's key):
//! `P:w:T` (a hash: the current minute `m` with its `req` and `tok`, the current day `d` with its
//! `usd`; a window that has ended reads as zero and is overwritten by the next write; the hash
//! expires a day after its day), `P:con:T` (sorted set: reservation id → lease expiry ms).

use std::sync::OnceLock;

use super::resp::{Client, Reply, RespError, Target};
use super::store::{Ask, Exceeded, Limits, Settlement, Store, Unavailable, Verdict};
use super::window::Windows;

/// Shared head of every script: the clock (the caller's, or the server's), the tenant's keys, and
/// its windows read and written as one hash (one `HMGET` and one `HSET` where a key per counter
/// cost a command each: every `redis.call` costs the server more than the command itself).
const PRELUDE: &str = r#"
local now = tonumber(ARGV[3])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local minute = math.floor(now / 60000)
local day = math.floor(now / 86400000)
local kw = ARGV[1] .. ':w:' .. ARGV[2]
local kcon = ARGV[1] .. ':con:' .. ARGV[2]
-- The windows as stored; counters of a window that has ended (or was lost) read 0, and `fresh_*`
-- says the stored window is the current one.
local function load()
  local v = redis.call('HMGET', kw, 'm', 'req', 'tok', 'd', 'usd')
  local w = {fresh_minute = tonumber(v[1]) == minute, fresh_day = tonumber(v[4]) == day,
             req = 0, tok = 0, usd = 0}
  if w.fresh_minute then w.req = tonumber(v[2]) or 0; w.tok = tonumber(v[3]) or 0 end
  if w.fresh_day then w.usd = tonumber(v[5]) or 0 end
  return w
end
-- Writes the current windows (as integers: a Lua number would go as 14 significant digits); the
-- hash lives until a day after its day ends.
local function int(n) return string.format('%d', n) end
local function store(w)
  redis.call('HSET', kw, 'm', int(minute), 'req', int(w.req), 'tok', int(w.tok), 'd', int(day),
             'usd', int(w.usd))
  if not w.fresh_day then redis.call('PEXPIREAT', kw, (day + 2) * 86400000) end
end
"#;

/// ARGV 4..: rpm, tpm, max concurrent, budget (-1: none), cache hit (1/0), tokens, micro-USD,
/// id, lease ms. Returns {exceeded bits, now, requests, tokens, micro-USD, in flight}. Leases
/// past their end are not counted here and are removed by settlements, off the request path.
const ADMIT: &str = r#"
local w = load()
local con = redis.call('ZCOUNT', kcon, '(' .. now, '+inf')
local function lim(i) return tonumber(ARGV[i]) end
local hit, want_tok, want_usd = ARGV[8] == '1', tonumber(ARGV[9]), tonumber(ARGV[10])
local over = 0
if lim(4) >= 0 and w.req + 1 > lim(4) then over = over + 1 end
if not hit then
  if lim(5) >= 0 and w.tok + want_tok > lim(5) then over = over + 2 end
  if lim(6) >= 0 and con + 1 > lim(6) then over = over + 4 end
  if lim(7) >= 0 and want_usd > 0 and w.usd + want_usd > lim(7) then over = over + 8 end
end
if over == 0 then
  w.req = w.req + 1
  if not hit then
    w.tok = w.tok + want_tok
    w.usd = w.usd + want_usd
    local lease = tonumber(ARGV[12])
    redis.call('ZADD', kcon, now + lease, ARGV[11])
    redis.call('PEXPIRE', kcon, lease * 2)
    con = con + 1
  end
  store(w)
end
return {over, now, w.req, w.tok, w.usd, con}
"#;

/// ARGV 4..: id, admitted ms, reserved tokens, used tokens, reserved micro-USD, used micro-USD.
/// Returns the windows after it, as `WINDOWS` does (the snapshot plugins see, at no extra trip).
const SETTLE: &str = r#"
redis.call('ZREM', kcon, ARGV[4])
redis.call('ZREMRANGEBYSCORE', kcon, '-inf', now)
local admitted = tonumber(ARGV[5])
local w = load()
-- A counter after settling: in the window the reservation was made in, the reservation is
-- replaced by the use; once that window has ended, only use beyond the reservation counts, in
-- the current one.
local function settle(current, fresh, then_n, now_n, reserved, used)
  if then_n == now_n then
    if fresh then
      current = current + used - reserved
      if current < 0 then current = 0 end
      return current
    end
    -- Redis lost the window (restart, eviction): the reservation went with it, the use counts.
    return used
  elseif used > reserved then
    return current + used - reserved
  end
  return current
end
w.tok = settle(w.tok, w.fresh_minute, math.floor(admitted / 60000), minute,
               tonumber(ARGV[6]), tonumber(ARGV[7]))
w.usd = settle(w.usd, w.fresh_day, math.floor(admitted / 86400000), day,
               tonumber(ARGV[8]), tonumber(ARGV[9]))
store(w)
return {0, now, w.req, w.tok, w.usd, redis.call('ZCARD', kcon)}
"#;

/// Returns {0, now, requests, tokens, micro-USD, in flight} without changing anything.
const WINDOWS: &str = r#"
local w = load()
return {0, now, w.req, w.tok, w.usd, redis.call('ZCOUNT', kcon, '(' .. now, '+inf')}
"#;

/// One script: its text and, once loaded, its SHA-1 as Redis computed it.
struct Script {
    body: String,
    sha: OnceLock<Vec<u8>>,
}

impl Script {
    fn new(body: &str) -> Self {
        Self { body: format!("{PRELUDE}{body}"), sha: OnceLock::new() }
    }
}

/// Counters in one Redis server (or a replicated primary; not Redis Cluster: a script builds its
/// keys from its clock).
pub struct RedisStore {
    client: Client,
    prefix: String,
    lease_ms: u64,
    admit: Script,
    settle: Script,
    windows: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the server at `url` (see [`Target::parse`]); connects on first use.
    pub fn new(url: &str, prefix: &str, lease_ms: u64) -> Result<Self, String> {
        Ok(Self {
            client: Client::new(Target::parse(url)?),
            prefix: prefix.to_string(),
            lease_ms,
            admit: Script::new(ADMIT),
            settle: Script::new(SETTLE),
            windows: Script::new(WINDOWS),
        })
    }

    /// The pooled client (also carries the response cache's shared level).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The prefix of every key this store writes (`[state] key_prefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `script` with the prefix, tenant and clock first in ARGV, then `args`. One round
    /// trip: EVALSHA once the SHA is known; before that `SCRIPT LOAD` (for the SHA) and `EVAL`
    /// pipelined; EVAL again when the server lost its script cache (`NOSCRIPT` after a restart),
    /// which caches it anew.
    async fn run(
        &self,
        script: &Script,
        tenant: &str,
        now_ms: Option<u64>,
        args: &[String],
    ) -> Result<Reply, Unavailable> {
        let mut argv = vec![self.prefix.clone().into_bytes(), tenant.as_bytes().to_vec()];
        argv.push(now_ms.unwrap_or(0).to_string().into_bytes());
        argv.extend(args.iter().map(|a| a.clone().into_bytes()));
        let call = |verb: &str, head: &[u8]| {
            let mut cmd = vec![verb.as_bytes().to_vec(), head.to_vec(), b"0".to_vec()];
            cmd.extend(argv.iter().cloned());
            cmd
        };
        let eval = || call("EVAL", script.body.as_bytes());
        let reply = match script.sha.get() {
            Some(sha) => self.one(call("EVALSHA", sha)).await?,
            None => {
                let load =
                    vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), script.body.clone().into_bytes()];
                let mut replies =
                    self.client.pipeline(&[load, eval()]).await.map_err(unavailable)?.into_iter();
                if let Some(Reply::Bulk(Some(sha))) = replies.next() {
                    let _ = script.sha.set(sha);
                }
                return replies.next().ok_or_else(|| Unavailable("redis sent no reply".into()));
            }
        };
        match reply {
            Reply::Error(e) if e.starts_with("NOSCRIPT") => self.one(eval()).await,
            reply => Ok(reply),
        }
    }

    async fn one(&self, command: Vec<Vec<u8>>) -> Result<Reply, Unavailable> {
        let mut replies = self.client.pipeline(&[command]).await.map_err(unavailable)?;
        replies.pop().ok_or_else(|| Unavailable("redis sent no reply".into()))
    }
}

fn unavailable(e: RespError) -> Unavailable {
    Unavailable(e.to_string())
}

/// The six numbers every script returns.
fn numbers(reply: Reply) -> Result<[u64; 6], Unavailable> {
    let items = match reply {
        Reply::Array(Some(items)) if items.len() == 6 => items,
        Reply::Error(e) => return Err(Unavailable(format!("script failed: {e}"))),
        other => return Err(Unavailable(format!("unexpected script reply {other:?}"))),
    };
    let mut out = [0u64; 6];
    for (slot, item) in out.iter_mut().zip(items) {
        match item {
            Reply::Int(n) => *slot = n.max(0) as u64,
            other => return Err(Unavailable(format!("unexpected script value {other:?}"))),
        }
    }
    Ok(out)
}

fn windows_of(n: [u64; 6]) -> Windows {
    Windows { now_ms: n[1], requests: n[2], tokens: n[3], cost_micros: n[4], concurrent: n[5] }
}

/// A limit as a script argument: -1 for none (the script compares numbers).
fn limit_arg(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-1".to_string(), |l| l.to_string())
}

impl Store for RedisStore {
    async fn admit(
        &self,
        tenant: &str,
        limits: &Limits,
        ask: &Ask,
        id: u64,
        now_ms: Option<u64>,
    ) -> Result<Verdict, Unavailable> {
        let args = [
            limit_arg(limits.requests_per_minute),
            limit_arg(limits.tokens_per_minute),
            limit_arg(limits.max_concurrent),
            limit_arg(limits.budget_micros_per_day),
            u64::from(ask.cache_hit).to_string(),
            ask.tokens.to_string(),
            ask.cost_micros.to_string(),
            id.to_string(),
            self.lease_ms.to_string(),
        ];
        let reply = self.run(&self.admit, tenant, now_ms, &args).await?;
        let n = numbers(reply)?;
        Ok(Verdict { exceeded: Exceeded(n[0] as u8), windows: windows_of(n) })
    }

    async fn settle(
        &self,
        tenant: &str,
        s: &Settlement,
        now_ms: Option<u64>,
    ) -> Result<Windows, Unavailable> {
        let args = [
            s.id,
            s.admitted_ms,
            s.reserved_tokens,
            s.used_tokens,
            s.reserved_micros,
            s.used_micros,
        ]
        .map(|n| n.to_string());
        Ok(windows_of(numbers(self.run(&self.settle, tenant, now_ms, &args).await?)?))
    }

    async fn windows(&self, tenant: &str, now_ms: Option<u64>) -> Result<Windows, Unavailable> {
        Ok(windows_of(numbers(self.run(&self.windows, tenant, now_ms, &[]).await?)?))
    }
}
