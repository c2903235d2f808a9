//! The shared store: every counter in Redis, admissions and settlements run by Lua scripts
//! (atomic on the server, one round trip). Calls that arrive while one is in Redis go together in
//! the next script run (module `batch`): one request alone is a batch of one, and under load one
//! script checks and reserves many, in arrival order, each against what the ones before it left.
//! Each worker thread has a lane of its own (connections and batches), so a request's Redis reply
//! is read and handed over on the thread that serves it: no cross-thread wake-ups, and no socket
//! whose readiness waits for another worker's event loop to poll it.
//! Windows are numbered and read as zero once they have ended; concurrency slots are leases in a sorted set, so a replica that dies mid-request frees its
//! slots when the lease ends. The scripts read Redis's `TIME`, so all replicas share one clock.
//!
//! Keys (`P` is `state.key_prefix`, `T` the tenant, last so no name can forge another's key):
//! `P:w:T` (a hash: the current minute `m` with its `req` and `tok`, the current day `d` with its
//! `usd`; a window that has ended reads as zero and is overwritten by the next write; the hash
//! expires a day after its day), `P:con:T` (sorted set: reservation id → lease expiry ms).

use std::sync::{Arc, OnceLock};

use super::batch::Batcher;
use super::resp::{Client, MAX_CONNECTIONS, Reply, RespError, Target};
use super::store::{Ask, Exceeded, Limits, Settlement, Store, Unavailable, Verdict};
use super::window::Windows;

/// Shared head of every script: the clock (the caller's, or the server's), and each tenant's
/// windows read once per script as one hash (one `HMGET`, and one `HSET` when they changed, where a
/// key per counter cost a command each: every `redis.call` costs the server more than the command
/// itself). ARGV 1: the key prefix; 2: the clock (0: Redis's `TIME`); then the calls.
const PRELUDE: &str = r#"
local now = tonumber(ARGV[2])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local minute = math.floor(now / 60000)
local day = math.floor(now / 86400000)
local function int(n) return string.format('%d', n) end
local tenants, order = {}, {}
-- A tenant's windows as stored, read on its first call in this script: counters of a window that
-- has ended (or was lost) read 0, and `fresh_*` says the stored window is the current one.
local function tenant(t)
  local s = tenants[t]
  if s then return s, false end
  s = {kw = ARGV[1] .. ':w:' .. t, kcon = ARGV[1] .. ':con:' .. t, req = 0, tok = 0, usd = 0,
       adds = {}, rems = {}, dirty = false}
  local v = redis.call('HMGET', s.kw, 'm', 'req', 'tok', 'd', 'usd')
  s.fresh_minute, s.fresh_day = tonumber(v[1]) == minute, tonumber(v[4]) == day
  s.had_day = s.fresh_day
  if s.fresh_minute then s.req = tonumber(v[2]) or 0; s.tok = tonumber(v[3]) or 0 end
  if s.fresh_day then s.usd = tonumber(v[5]) or 0 end
  tenants[t] = s
  order[#order + 1] = s
  return s, true
end
-- Writes a tenant's current windows (as integers: a Lua number would go as 14 significant
-- digits); the hash lives until a day after its day ends.
local function store(s)
  redis.call('HSET', s.kw, 'm', int(minute), 'req', int(s.req), 'tok', int(s.tok),
             'd', int(day), 'usd', int(s.usd))
  if not s.had_day then redis.call('PEXPIREAT', s.kw, (day + 2) * 86400000) end
end
"#;

/// Admissions, 10 ARGV each: tenant, rpm, tpm, max concurrent, budget (-1: none), cache hit (1/0),
/// tokens, micro-USD, id, lease ms; checked in order, each against the windows the ones before it
/// left. Returns per call {exceeded bits, now, requests, tokens, micro-USD, in flight}. Leases
/// past their end are not counted here and are removed by settlements, off the request path.
const ADMIT: &str = r#"
local out = {}
for i = 3, #ARGV - 9, 10 do
  local s, first = tenant(ARGV[i])
  if first then s.con = redis.call('ZCOUNT', s.kcon, '(' .. now, '+inf') end
  local function lim(k) return tonumber(ARGV[i + k]) end
  local hit, want_tok, want_usd = ARGV[i + 5] == '1', tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
  local over = 0
  if lim(1) >= 0 and s.req + 1 > lim(1) then over = over + 1 end
  if not hit then
    if lim(2) >= 0 and s.tok + want_tok > lim(2) then over = over + 2 end
    if lim(3) >= 0 and s.con + 1 > lim(3) then over = over + 4 end
    if lim(4) >= 0 and want_usd > 0 and s.usd + want_usd > lim(4) then over = over + 8 end
  end
  if over == 0 then
    s.req = s.req + 1
    s.dirty = true
    if not hit then
      s.tok = s.tok + want_tok
      s.usd = s.usd + want_usd
      s.lease = tonumber(ARGV[i + 9])
      s.adds[#s.adds + 1] = int(now + s.lease)
      s.adds[#s.adds + 1] = ARGV[i + 8]
      s.con = s.con + 1
    end
  end
  out[#out + 1] = {over, now, s.req, s.tok, s.usd, s.con}
end
for _, s in ipairs(order) do
  if s.dirty then store(s) end
  if #s.adds > 0 then
    redis.call('ZADD', s.kcon, unpack(s.adds))
    redis.call('PEXPIRE', s.kcon, s.lease * 2)
  end
end
return out
"#;

/// Settlements, 7 ARGV each: tenant, id, admitted ms, reserved tokens, used tokens, reserved
/// micro-USD, used micro-USD. Returns per call the tenant's windows after the script (the snapshot
/// plugins see, at no extra trip), as `WINDOWS` does.
const SETTLE: &str = r#"
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
for i = 3, #ARGV - 6, 7 do
  local s, first = tenant(ARGV[i])
  if first then redis.call('ZREMRANGEBYSCORE', s.kcon, '-inf', now) end
  s.rems[#s.rems + 1] = ARGV[i + 1]
  local admitted = tonumber(ARGV[i + 2])
  s.tok = settle(s.tok, s.fresh_minute, math.floor(admitted / 60000), minute,
                 tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
  s.usd = settle(s.usd, s.fresh_day, math.floor(admitted / 86400000), day,
                 tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]))
  -- Written below as the current windows: the next settlement in this script finds them fresh.
  s.fresh_minute, s.fresh_day = true, true
end
for _, s in ipairs(order) do
  store(s)
  redis.call('ZREM', s.kcon, unpack(s.rems))
  s.con = redis.call('ZCARD', s.kcon)
end
local out = {}
for i = 3, #ARGV - 6, 7 do
  local s = tenants[ARGV[i]]
  out[#out + 1] = {0, now, s.req, s.tok, s.usd, s.con}
end
return out
"#;

/// ARGV 3: a tenant. Returns {0, now, requests, tokens, micro-USD, in flight} without changing
/// anything.
const WINDOWS: &str = r#"
local s = tenant(ARGV[3])
return {0, now, s.req, s.tok, s.usd, redis.call('ZCOUNT', s.kcon, '(' .. now, '+inf')}
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

/// One call's arguments in a batch script, and its answer's six numbers.
type Job = Vec<Vec<u8>>;
type Answer = Result<[u64; 6], Unavailable>;

/// One worker thread's way to Redis: its pooled connections, and its admissions and settlements
/// waiting for the batch in flight (module `batch`). A connection's socket belongs to the event
/// loop of the worker that opened it; only that worker uses it.
struct Lane {
    client: Client,
    admits: Batcher<Job, Answer>,
    settles: Batcher<Job, Answer>,
}

/// Counters in one Redis server (or a replicated primary; not Redis Cluster: a script builds its
/// keys from its clock).
pub struct RedisStore {
    /// Shared with the tasks that send batches (module `batch`), which outlive no store call
    /// but may outlive the caller that started them.
    inner: Arc<Inner>,
}

/// Which batched script a call runs.
#[derive(Clone, Copy)]
enum Batched {
    Admit,
    Settle,
}

struct Inner {
    /// One per worker thread (indexed by [`crate::worker::current`]).
    lanes: Vec<Lane>,
    prefix: String,
    lease_ms: u64,
    admit: Script,
    settle: Script,
    windows: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.inner.prefix).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the server at `url` (see [`Target::parse`]) with a lane for each of `workers`
    /// threads; connects on first use.
    pub fn new(url: &str, prefix: &str, lease_ms: u64, workers: usize) -> Result<Self, String> {
        let target = Target::parse(url)?;
        let workers = workers.max(1);
        // The replica's connections, shared out: a worker has no use for more than its share.
        let lane = || Lane {
            client: Client::new(target.clone(), MAX_CONNECTIONS.div_ceil(workers)),
            admits: Batcher::default(),
            settles: Batcher::default(),
        };
        let inner = Inner {
            lanes: (0..workers).map(|_| lane()).collect(),
            prefix: prefix.to_string(),
            lease_ms,
            admit: Script::new(ADMIT),
            settle: Script::new(SETTLE),
            windows: Script::new(WINDOWS),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The calling worker's pooled client (also carries the response cache's shared level).
    pub(crate) fn client(&self) -> &Client {
        &self.inner.lane().client
    }

    /// The prefix of every key this store writes (`[state] key_prefix`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// One call of a batched script: with the calls waiting beside it on this worker, in one
    /// script run, which answers each in order.
    async fn batched(&self, which: Batched, now_ms: Option<u64>, job: Job) -> Answer {
        let inner = Arc::clone(&self.inner);
        let send = move |now_ms: Option<u64>, jobs: Vec<Job>| {
            let inner = Arc::clone(&inner);
            async move {
                let count = jobs.len();
                let script = match which {
                    Batched::Admit => &inner.admit,
                    Batched::Settle => &inner.settle,
                };
                let reply = inner.run(script, now_ms, jobs.into_iter().flatten()).await;
                match reply.and_then(|reply| answers(reply, count)) {
                    Ok(answers) => answers.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e); count],
                }
            }
        };
        let lane = self.inner.lane();
        let batcher = match which {
            Batched::Admit => &lane.admits,
            Batched::Settle => &lane.settles,
        };
        batcher
            .run(job, now_ms, send)
            .await
            .unwrap_or_else(|| Err(Unavailable("the batch it was in was dropped".into())))
    }
}

impl Inner {
    /// The calling worker's lane.
    fn lane(&self) -> &Lane {
        &self.lanes[crate::worker::current() % self.lanes.len()]
    }

    /// Runs `script` with the prefix and clock first in ARGV, then `args`. One round trip:
    /// EVALSHA once the SHA is known; before that `SCRIPT LOAD` (for the SHA) and `EVAL`
    /// pipelined; EVAL again when the server lost its script cache (`NOSCRIPT` after a restart),
    /// which caches it anew.
    async fn run(
        &self,
        script: &Script,
        now_ms: Option<u64>,
        args: impl Iterator<Item = Vec<u8>>,
    ) -> Result<Reply, Unavailable> {
        let mut argv = vec![self.prefix.clone().into_bytes()];
        argv.push(now_ms.unwrap_or(0).to_string().into_bytes());
        argv.extend(args);
        let call = |verb: &str, head: &[u8]| {
            let mut cmd = vec![verb.as_bytes().to_vec(), head.to_vec(), b"0".to_vec()];
            cmd.extend(argv.iter().cloned());
            cmd
        };
        let eval = || call("EVAL", script.body.as_bytes());
        let client = &self.lane().client;
        let reply = match script.sha.get() {
            Some(sha) => one(client, call("EVALSHA", sha)).await?,
            None => {
                let load =
                    vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), script.body.clone().into_bytes()];
                let mut replies =
                    client.pipeline(&[load, eval()]).await.map_err(unavailable)?.into_iter();
                if let Some(Reply::Bulk(Some(sha))) = replies.next() {
                    let _ = script.sha.set(sha);
                }
                return replies.next().ok_or_else(|| Unavailable("redis sent no reply".into()));
            }
        };
        match reply {
            Reply::Error(e) if e.starts_with("NOSCRIPT") => one(client, eval()).await,
            reply => Ok(reply),
        }
    }
}

async fn one(client: &Client, command: Vec<Vec<u8>>) -> Result<Reply, Unavailable> {
    let mut replies = client.pipeline(&[command]).await.map_err(unavailable)?;
    replies.pop().ok_or_else(|| Unavailable("redis sent no reply".into()))
}

fn unavailable(e: RespError) -> Unavailable {
    Unavailable(e.to_string())
}

/// A batch script's answers: `count` arrays of six numbers.
fn answers(reply: Reply, count: usize) -> Result<Vec<[u64; 6]>, Unavailable> {
    match reply {
        Reply::Array(Some(items)) if items.len() == count => {
            items.into_iter().map(numbers).collect()
        }
        Reply::Error(e) => Err(Unavailable(format!("script failed: {e}"))),
        other => Err(Unavailable(format!("unexpected script reply {other:?}"))),
    }
}

/// The six numbers a script returns per call.
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
fn limit_arg(limit: Option<u64>) -> Vec<u8> {
    limit.map_or_else(|| b"-1".to_vec(), |l| l.to_string().into_bytes())
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
        let number = |n: u64| n.to_string().into_bytes();
        let job = vec![
            tenant.as_bytes().to_vec(),
            limit_arg(limits.requests_per_minute),
            limit_arg(limits.tokens_per_minute),
            limit_arg(limits.max_concurrent),
            limit_arg(limits.budget_micros_per_day),
            number(u64::from(ask.cache_hit)),
            number(ask.tokens),
            number(ask.cost_micros),
            number(id),
            number(self.inner.lease_ms),
        ];
        let n = self.batched(Batched::Admit, now_ms, job).await?;
        Ok(Verdict { exceeded: Exceeded(n[0] as u8), windows: windows_of(n) })
    }

    async fn settle(
        &self,
        tenant: &str,
        s: &Settlement,
        now_ms: Option<u64>,
    ) -> Result<Windows, Unavailable> {
        let mut job = vec![tenant.as_bytes().to_vec()];
        job.extend(
            [
                s.id,
                s.admitted_ms,
                s.reserved_tokens,
                s.used_tokens,
                s.reserved_micros,
                s.used_micros,
            ]
            .map(|n| n.to_string().into_bytes()),
        );
        Ok(windows_of(self.batched(Batched::Settle, now_ms, job).await?))
    }

    async fn windows(&self, tenant: &str, now_ms: Option<u64>) -> Result<Windows, Unavailable> {
        let tenant = std::iter::once(tenant.as_bytes().to_vec());
        Ok(windows_of(numbers(self.inner.run(&self.inner.windows, now_ms, tenant).await?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each worker thread gets a lane of its own; a thread that is not a worker uses worker 0's.
    #[tokio::test]
    async fn each_worker_uses_its_own_lane() {
        let store = Arc::new(RedisStore::new("unix:///nowhere", "t", 1000, 2).expect("url"));
        assert!(std::ptr::eq(store.inner.lane(), &store.inner.lanes[0]));
        let (tell, heard) = tokio::sync::oneshot::channel();
        let inside = store.clone();
        let worker = crate::worker::spawn(1, move || async move {
            let lane: *const Lane = inside.inner.lane();
            let _ = tell.send(lane as usize);
        })
        .expect("worker");
        let lane = heard.await.expect("the worker's lane");
        assert_eq!(lane, &store.inner.lanes[1] as *const Lane as usize, "worker 1 uses lane 1");
        worker.join().await;
    }
}
