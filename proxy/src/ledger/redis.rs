//! The shared store: every counter in Redis, admissions and settlements run by one Lua script
//! (atomic on the server, one round trip). Calls that arrive while a script is in Redis go
//! together in the next run (module `batch`), admissions and settlements alike: one request alone
//! is a batch of one, and under load one script checks and reserves many, in arrival order, each
//! against what the ones before it left.
//! Each worker thread has a lane of its own (connections, batches, slots), so a request's Redis
//! reply is read and handed over on the thread that serves it: no cross-thread wake-ups, and no
//! socket whose readiness waits for another worker's event loop to poll it.
//! Windows are numbered and read as zero once they have ended. Concurrency is counted per lane:
//! each lane knows exactly which of its reservations are in flight ([`InFlight`]) and every script
//! it runs writes that number beside a lease; a lane whose lease ended (its replica died, or has
//! been idle for `lease_seconds`) is no longer counted. The scripts read Redis's `TIME`, so all
//! replicas share one clock.
//!
//! Keys (`P` is `state.key_prefix`, `T` the tenant, last so no name can forge another's key):
//! `P:w:T`, one hash per tenant: the current minute `m` with its `req` and `tok`, the current day
//! `d` with its `usd` (a window that has ended reads as zero and is overwritten by the next write;
//! the hash expires a day after its day), and per lane `L` its slots in flight `c:L` and the end of
//! its lease `x:L` (ms). `L` is a random replica id and the worker's index.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::batch::Batcher;
use super::reservation::MAX_EXACT;
use super::resp::{Client, Commands, MAX_CONNECTIONS, Reply, RespError, Target};
use super::store::{Ask, Exceeded, Limits, Settlement, Store, Unavailable, Verdict};
use super::window::Windows;

/// Shared head of both scripts: the clock (the caller's, or the server's), and each tenant's hash
/// read once per script (one `HGETALL`, and one `HSET` at the end: every `redis.call` costs the
/// server more than the command itself). ARGV 1: the key prefix; 2: the clock (0: Redis's
/// `TIME`); 3: the calling lane; 4: its lease in ms; then the calls.
const PRELUDE: &str = r#"
local now = tonumber(ARGV[2])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local lane, lease = ARGV[3], tonumber(ARGV[4])
local minute = math.floor(now / 60000)
local day = math.floor(now / 86400000)
local function int(n) return string.format('%d', n) end
local tenants, order = {}, {}
-- A tenant's hash as stored, read on its first call in this script: counters of a window that
-- has ended (or was lost) read 0, and `fresh_*` says the stored window is the current one. `mine`
-- is this lane's slots in flight as the replica counts them (`base`), `others` the slots of the
-- other lanes whose lease is current; lanes whose lease ended are deleted at the end.
local function tenant(t, base)
  local s = tenants[t]
  if s then return s end
  s = {kw = ARGV[1] .. ':w:' .. t, req = 0, tok = 0, usd = 0, mine = base, others = 0, ended = {}}
  local v = redis.call('HGETALL', s.kw)
  local f = {}
  for i = 1, #v, 2 do f[v[i]] = v[i + 1] end
  s.fresh_minute, s.fresh_day = tonumber(f.m) == minute, tonumber(f.d) == day
  s.had_day = s.fresh_day
  if s.fresh_minute then s.req = tonumber(f.req) or 0; s.tok = tonumber(f.tok) or 0 end
  if s.fresh_day then s.usd = tonumber(f.usd) or 0 end
  for k, x in pairs(f) do
    if string.sub(k, 1, 2) == 'x:' then
      local l = string.sub(k, 3)
      if l ~= lane then
        if (tonumber(x) or 0) > now then
          s.others = s.others + (tonumber(f['c:' .. l]) or 0)
        else
          s.ended[#s.ended + 1] = k
          s.ended[#s.ended + 1] = 'c:' .. l
        end
      end
    end
  end
  tenants[t] = s
  order[#order + 1] = s
  return s
end
"#;

/// Admissions and settlements in arrival order. An admission, 10 ARGV: `a`, tenant, the lane's
/// slots (base), rpm, tpm, max concurrent, budget (-1: none), cache hit (1/0), tokens, micro-USD;
/// checked against the windows the calls before it left. A settlement, 10 ARGV: `s`, tenant, base,
/// admitted ms, reserved tokens, used tokens, reserved micro-USD, used micro-USD, and the use beyond
/// the reservation in tokens and micro-USD (summed per settlement: see [`coalesce`]). Returns five
/// numbers per call (exceeded bits, requests, tokens, micro-USD, in flight: after the admission,
/// and for a settlement after the script), then the clock.
const LEDGER: &str = r#"
-- A counter after settling: in the window the reservation was made in, the reservation is
-- replaced by the use; once that window has ended, only use beyond the reservation counts, in
-- the current one. `fresh` is whether the stored window was the current one when the script read
-- it: when it was not, Redis lost it (restart, eviction) and the reservation with it, so the use
-- is added whole (to what this script's calls before it counted).
local function settle(current, fresh, then_n, now_n, reserved, used, beyond)
  if then_n == now_n then
    if not fresh then return current + used end
    current = current + used - reserved
    if current < 0 then current = 0 end
    return current
  elseif beyond > 0 then
    return current + beyond
  end
  return current
end
local out, settled = {}, {}
local i = 5
while i <= #ARGV do
  local s = tenant(ARGV[i + 1], tonumber(ARGV[i + 2]))
  if ARGV[i] == 'a' then
    -- Each limit converted once, without a closure per call (`tonumber` runs C `strtod`).
    local rpm, tpm = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    local slots, budget = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
    local hit, want_tok, want_usd = ARGV[i + 7] == '1', tonumber(ARGV[i + 8]), tonumber(ARGV[i + 9])
    local over = 0
    if rpm >= 0 and s.req + 1 > rpm then over = over + 1 end
    if not hit then
      if tpm >= 0 and s.tok + want_tok > tpm then over = over + 2 end
      if slots >= 0 and s.others + s.mine + 1 > slots then over = over + 4 end
      if budget >= 0 and want_usd > 0 and s.usd + want_usd > budget then over = over + 8 end
    end
    if over == 0 then
      s.req = s.req + 1
      if not hit then
        s.tok = s.tok + want_tok
        s.usd = s.usd + want_usd
        s.mine = s.mine + 1
      end
    end
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] =
      over, s.req, s.tok, s.usd, s.others + s.mine
    i = i + 10
  else
    local admitted = tonumber(ARGV[i + 3])
    s.tok = settle(s.tok, s.fresh_minute, math.floor(admitted / 60000), minute,
                   tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 8]))
    s.usd = settle(s.usd, s.fresh_day, math.floor(admitted / 86400000), day,
                   tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7]), tonumber(ARGV[i + 9]))
    local n = #out
    settled[#settled + 1] = n
    settled[#settled + 1] = s
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = 0, 0, 0, 0, 0
    i = i + 10
  end
end
-- Written as integers (a Lua number would go as 14 significant digits); the hash lives until a
-- day after its day ends.
for _, s in ipairs(order) do
  redis.call('HSET', s.kw, 'm', int(minute), 'req', int(s.req), 'tok', int(s.tok),
             'd', int(day), 'usd', int(s.usd), 'c:' .. lane, int(s.mine),
             'x:' .. lane, int(now + lease))
  if #s.ended > 0 then redis.call('HDEL', s.kw, unpack(s.ended)) end
  if not s.had_day then redis.call('PEXPIREAT', s.kw, (day + 2) * 86400000) end
end
for k = 1, #settled, 2 do
  local n, s = settled[k], settled[k + 1]
  out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] =
    0, s.req, s.tok, s.usd, s.others + s.mine
end
out[#out + 1] = now
return out
"#;

/// ARGV 5: a tenant, 6: the lane's slots. Returns the five numbers and the clock, changing
/// nothing.
const WINDOWS: &str = r#"
local s = tenant(ARGV[5], tonumber(ARGV[6]))
return {0, s.req, s.tok, s.usd, s.others + s.mine, now}
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

/// One call in a batch script; the lane's slots for its tenant are added when the batch is sent.
enum Job {
    Admit {
        tenant: String,
        /// rpm, tpm, max concurrent, budget (-1: none), cache hit, tokens, micro-USD.
        args: [i64; 7],
        /// Whether it asks for a slot (not a cache hit).
        slot: bool,
        id: u64,
    },
    Settle {
        tenant: String,
        settlement: Settlement,
    },
}

/// One call in the script as sent.
enum Call<'a> {
    /// An admission's tenant and arguments.
    Admit(&'a str, &'a [i64; 7]),
    /// Settlements of one tenant made in the same minute and day, summed.
    Settle(&'a str, SettleSum),
}

/// Settlements summed: their reservations and uses, and apart the use beyond the reservation of
/// each (`used - reserved` where positive), which is what a settlement charges once its window
/// has ended: a sum of differences would let one request's unused reservation cancel another's
/// excess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SettleSum {
    admitted_ms: u64,
    /// Reserved and used tokens, reserved and used micro-USD, tokens and micro-USD beyond.
    amounts: [u64; 6],
}

impl SettleSum {
    fn of(s: &Settlement) -> Self {
        let (rt, ut, rm, um) = (s.reserved_tokens, s.used_tokens, s.reserved_micros, s.used_micros);
        Self {
            admitted_ms: s.admitted_ms,
            amounts: [rt, ut, rm, um, ut.saturating_sub(rt), um.saturating_sub(rm)],
        }
    }

    /// Adds `other` unless a total would pass what the script computes exactly.
    fn add(&mut self, other: &SettleSum) -> bool {
        let mut totals = self.amounts;
        for (total, n) in totals.iter_mut().zip(other.amounts) {
            match total.checked_add(n) {
                Some(t) if t <= MAX_EXACT => *total = t,
                _ => return false,
            }
        }
        self.amounts = totals;
        true
    }

    /// Writes the call's arguments after its kind, tenant and base.
    fn write(&self, to: &mut Commands) {
        for n in std::iter::once(self.admitted_ms).chain(self.amounts) {
            to.int(signed(n));
        }
    }
}

/// A batch's calls as sent, and for each job the call that answers it. Settlements of one tenant
/// whose reservations were made in the same minute and day go as one call with their sums (each
/// call costs Redis more Lua than the arithmetic it saves). The sum settles exactly as the
/// settlements one by one would, except where the script clamps a window at zero, which happens
/// only when Redis lost the reservations (then a sum may charge less than one by one, within the
/// window's worth that losing it costs anyway: docs/limits.md). Reordering calls within a batch is
/// safe: none of them has completed, so any order is one the callers could have seen.
fn coalesce(jobs: &[Job]) -> (Vec<Call<'_>>, Vec<usize>) {
    let mut calls: Vec<Call<'_>> = Vec::with_capacity(jobs.len());
    let mut answered_by = Vec::with_capacity(jobs.len());
    let mut sums: HashMap<(&str, u64, u64), usize> = HashMap::new();
    for job in jobs {
        let (tenant, s) = match job {
            Job::Admit { tenant, args, .. } => {
                calls.push(Call::Admit(tenant, args));
                answered_by.push(calls.len() - 1);
                continue;
            }
            Job::Settle { tenant, settlement } => (tenant, settlement),
        };
        let key = (tenant.as_str(), s.admitted_ms / 60_000, s.admitted_ms / 86_400_000);
        let one = SettleSum::of(s);
        let merged = sums.get(&key).is_some_and(|&i| match &mut calls[i] {
            Call::Settle(_, sum) => sum.add(&one),
            Call::Admit(..) => false,
        });
        if merged {
            answered_by.push(sums[&key]);
        } else {
            sums.insert(key, calls.len());
            calls.push(Call::Settle(tenant, one));
            answered_by.push(calls.len() - 1);
        }
    }
    (calls, answered_by)
}

/// A call's five numbers and the clock: exceeded bits, requests, tokens, micro-USD, in flight, now.
type Numbers = [u64; 6];
/// What a call gets back: its numbers, and for an admitted request its slot.
type Answer = Result<(Numbers, Option<Slot>), Unavailable>;

/// One lane's reservations in flight, per tenant: what each of its scripts writes as the lane's
/// slots. Exact by construction: a reservation is added when a script admitted it (before the
/// lane's next script is sent) and removed when it is settled or released, or when the caller
/// that asked for it was gone before it took the answer ([`Slot`]).
#[derive(Default)]
struct InFlight {
    tenants: HashMap<u64, String>,
    per_tenant: HashMap<String, u64>,
}

impl InFlight {
    fn add(&mut self, id: u64, tenant: &str) {
        if self.tenants.insert(id, tenant.to_string()).is_none() {
            *self.per_tenant.entry(tenant.to_string()).or_default() += 1;
        }
    }

    /// Removes `id`; whether it was here.
    fn remove(&mut self, id: u64) -> bool {
        let Some(tenant) = self.tenants.remove(&id) else { return false };
        if let Some(n) = self.per_tenant.get_mut(&tenant) {
            *n -= 1;
            if *n == 0 {
                self.per_tenant.remove(&tenant);
            }
        }
        true
    }

    fn count(&self, tenant: &str) -> u64 {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }
}

/// An admitted reservation's slot, counted in its lane from the moment the script admitted it.
/// The admitting call takes it over ([`Slot::keep`]) and the settlement removes it later; dropped
/// untaken (the caller gave up before it read the answer), it is removed at once, so a slot is
/// never held for a request nobody makes.
struct Slot {
    inner: Arc<Inner>,
    lane: usize,
    id: u64,
    kept: bool,
}

impl Slot {
    /// The reservation now holds the slot until it is settled.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.kept {
            self.inner.lanes[self.lane].in_flight().remove(self.id);
        }
    }
}

/// One worker thread's way to Redis: its pooled connections, its calls waiting for the batch in
/// flight (module `batch`), and its reservations in flight. A connection's socket belongs to the
/// event loop of the worker that opened it; only that worker uses it.
struct Lane {
    /// The lane's name in Redis: the replica's random id and the worker's index.
    name: String,
    client: Client,
    calls: Batcher<Job, Answer>,
    in_flight: Mutex<InFlight>,
}

impl Lane {
    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counters in one Redis server (or a replicated primary; not Redis Cluster: a script builds its
/// keys from its clock).
pub struct RedisStore {
    /// Shared with the tasks that send batches (module `batch`), which outlive no store call
    /// but may outlive the caller that started them.
    inner: Arc<Inner>,
}

struct Inner {
    /// One per worker thread (indexed by [`crate::worker::current`]).
    lanes: Vec<Lane>,
    prefix: String,
    lease_ms: u64,
    ledger: Script,
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
        // A new name at every start: a restarted replica's old lanes are not its own, and stop
        // counting when their leases end.
        let replica = fastrand::u64(..);
        // The replica's connections, shared out: a worker has no use for more than its share.
        let lane = |index: usize| Lane {
            name: format!("{replica:016x}.{index}"),
            client: Client::new(target.clone(), MAX_CONNECTIONS.div_ceil(workers)),
            calls: Batcher::default(),
            in_flight: Mutex::default(),
        };
        let inner = Inner {
            lanes: (0..workers).map(lane).collect(),
            prefix: prefix.to_string(),
            lease_ms,
            ledger: Script::new(LEDGER),
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

    /// One call of the ledger script: with the calls waiting beside it on this worker, in one
    /// script run, which answers each in order.
    async fn batched(&self, now_ms: Option<u64>, job: Job) -> Answer {
        let index = self.inner.lane_index();
        let inner = Arc::clone(&self.inner);
        let send = move |now_ms: Option<u64>, jobs: Vec<Job>| {
            let inner = Arc::clone(&inner);
            async move { inner.send(index, now_ms, jobs).await }
        };
        self.inner.lanes[index]
            .calls
            .run(job, now_ms, send)
            .await
            .unwrap_or_else(|| Err(Unavailable("the batch it was in was dropped".into())))
    }
}

impl Inner {
    /// The calling worker's lane.
    fn lane(&self) -> &Lane {
        &self.lanes[self.lane_index()]
    }

    fn lane_index(&self) -> usize {
        crate::worker::current() % self.lanes.len()
    }

    /// Writes the head of a script's ARGV after the prefix and clock: the lane and its lease.
    fn lane_args(&self, index: usize, to: &mut Commands) {
        to.arg(self.lanes[index].name.as_bytes()).int(signed(self.lease_ms));
    }

    /// Sends one batch of lane `index` and answers each call. The lane's slots go with each call
    /// as they are now; an admitted call's slot is counted before the lane's next batch is sent.
    async fn send(
        self: Arc<Self>,
        index: usize,
        now_ms: Option<u64>,
        jobs: Vec<Job>,
    ) -> Vec<Answer> {
        let lane = &self.lanes[index];
        let (calls, answered_by) = coalesce(&jobs);
        let write = |to: &mut Commands| {
            self.lane_args(index, to);
            let in_flight = lane.in_flight();
            for call in &calls {
                let (kind, tenant): (&[u8], &str) = match call {
                    Call::Admit(tenant, _) => (b"a", tenant),
                    Call::Settle(tenant, _) => (b"s", tenant),
                };
                to.arg(kind).arg(tenant.as_bytes()).int(signed(in_flight.count(tenant)));
                match call {
                    Call::Admit(_, args) => {
                        for n in args.iter() {
                            to.int(*n);
                        }
                    }
                    Call::Settle(_, sum) => sum.write(to),
                }
            }
        };
        let reply = self.run(&self.ledger, now_ms, 2 + CALL_ARGS * calls.len(), write).await;
        let numbers = match reply.and_then(|reply| answers(reply, calls.len())) {
            Ok(numbers) => numbers,
            Err(e) => return jobs.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut in_flight = lane.in_flight();
        let mut out = Vec::with_capacity(jobs.len());
        for (job, &call) in jobs.iter().zip(&answered_by) {
            let n = numbers[call];
            let slot = match job {
                Job::Admit { tenant, slot: true, id, .. } if n[0] == 0 => {
                    in_flight.add(*id, tenant);
                    Some(Slot { inner: Arc::clone(&self), lane: index, id: *id, kept: false })
                }
                _ => None,
            };
            out.push((n, slot));
        }
        drop(in_flight);
        out.into_iter().map(Ok).collect()
    }

    /// Runs `script` with the prefix and clock first in ARGV, then the `count` arguments that
    /// `write` adds. One round trip: EVALSHA once the SHA is known; before that `SCRIPT LOAD`
    /// (for the SHA) and `EVAL` pipelined; EVAL again when the server lost its script cache
    /// (`NOSCRIPT` after a restart), which caches it anew.
    async fn run(
        &self,
        script: &Script,
        now_ms: Option<u64>,
        count: usize,
        write: impl Fn(&mut Commands),
    ) -> Result<Reply, Unavailable> {
        let call = |to: &mut Commands, verb: &[u8], head: &[u8]| {
            to.command(5 + count).arg(verb).arg(head).arg(b"0");
            to.arg(self.prefix.as_bytes()).int(signed(now_ms.unwrap_or(0)));
            write(to);
        };
        let client = &self.lane().client;
        let mut commands = Commands::default();
        let reply = match script.sha.get() {
            Some(sha) => {
                call(&mut commands, b"EVALSHA", sha);
                one(client, &commands).await?
            }
            None => {
                commands.command(3).arg(b"SCRIPT").arg(b"LOAD").arg(script.body.as_bytes());
                call(&mut commands, b"EVAL", script.body.as_bytes());
                let mut replies = client.send(&commands).await.map_err(unavailable)?.into_iter();
                if let Some(Reply::Bulk(Some(sha))) = replies.next() {
                    let _ = script.sha.set(sha);
                }
                return replies.next().ok_or_else(|| Unavailable("redis sent no reply".into()));
            }
        };
        match reply {
            Reply::Error(e) if e.starts_with("NOSCRIPT") => {
                let mut eval = Commands::default();
                call(&mut eval, b"EVAL", script.body.as_bytes());
                one(client, &eval).await
            }
            reply => Ok(reply),
        }
    }
}

async fn one(client: &Client, command: &Commands) -> Result<Reply, Unavailable> {
    let mut replies = client.send(command).await.map_err(unavailable)?;
    replies.pop().ok_or_else(|| Unavailable("redis sent no reply".into()))
}

fn unavailable(e: RespError) -> Unavailable {
    Unavailable(e.to_string())
}

/// A script's answers for `count` calls: five numbers each, then the clock.
fn answers(reply: Reply, count: usize) -> Result<Vec<Numbers>, Unavailable> {
    let items = match reply {
        Reply::Array(Some(items)) if items.len() == 5 * count + 1 => items,
        Reply::Error(e) => return Err(Unavailable(format!("script failed: {e}"))),
        other => return Err(Unavailable(format!("unexpected script reply {other:?}"))),
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Reply::Int(n) => values.push(n.max(0) as u64),
            other => return Err(Unavailable(format!("unexpected script value {other:?}"))),
        }
    }
    let now = values[5 * count];
    Ok(values[..5 * count].chunks_exact(5).map(|c| [c[0], c[1], c[2], c[3], c[4], now]).collect())
}

fn windows_of(n: Numbers) -> Windows {
    Windows { now_ms: n[5], requests: n[1], tokens: n[2], cost_micros: n[3], concurrent: n[4] }
}

/// A limit as a script argument: -1 for none (the script compares numbers).
fn limit_arg(limit: Option<u64>) -> i64 {
    limit.map_or(-1, signed)
}

/// A count, amount or time as a script argument (the script reads every number as a double).
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Arguments of each call in the ledger script: kind, tenant, base and seven numbers.
const CALL_ARGS: usize = 10;

impl Store for RedisStore {
    async fn admit(
        &self,
        tenant: &str,
        limits: &Limits,
        ask: &Ask,
        id: u64,
        now_ms: Option<u64>,
    ) -> Result<Verdict, Unavailable> {
        let job = Job::Admit {
            tenant: tenant.to_string(),
            args: [
                limit_arg(limits.requests_per_minute),
                limit_arg(limits.tokens_per_minute),
                limit_arg(limits.max_concurrent),
                limit_arg(limits.budget_micros_per_day),
                i64::from(ask.cache_hit),
                signed(ask.tokens),
                signed(ask.cost_micros),
            ],
            slot: !ask.cache_hit,
            id,
        };
        let (n, slot) = self.batched(now_ms, job).await?;
        // From here to the reservation nothing awaits: its settlement frees the slot.
        if let Some(slot) = slot {
            slot.keep();
        }
        Ok(Verdict { exceeded: Exceeded(n[0] as u8), windows: windows_of(n) })
    }

    async fn settle(
        &self,
        tenant: &str,
        s: &Settlement,
        now_ms: Option<u64>,
    ) -> Result<Windows, Unavailable> {
        // The slot is free from now on, whether or not this call reaches Redis: the lane's next
        // script writes its count without it. A reservation settled on another worker than the
        // one that admitted it frees the slot in that worker's lane.
        let own = self.inner.lane_index();
        let lanes = &self.inner.lanes;
        if !lanes[own].in_flight().remove(s.id) {
            for (i, lane) in lanes.iter().enumerate() {
                if i != own && lane.in_flight().remove(s.id) {
                    break;
                }
            }
        }
        let job = Job::Settle { tenant: tenant.to_string(), settlement: s.clone() };
        let (n, _) = self.batched(now_ms, job).await?;
        Ok(windows_of(n))
    }

    async fn windows(&self, tenant: &str, now_ms: Option<u64>) -> Result<Windows, Unavailable> {
        let index = self.inner.lane_index();
        let base = self.inner.lanes[index].in_flight().count(tenant);
        let write = |to: &mut Commands| {
            self.inner.lane_args(index, to);
            to.arg(tenant.as_bytes()).int(signed(base));
        };
        let reply = self.inner.run(&self.inner.windows, now_ms, 4, write).await?;
        let n = answers(reply, 1)?.pop().ok_or_else(|| Unavailable("no windows".into()))?;
        Ok(windows_of(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(tenant: &str, admitted_ms: u64, reserved: u64, used: u64) -> Job {
        let settlement = Settlement {
            id: fastrand::u64(..),
            admitted_ms,
            reserved_tokens: reserved,
            used_tokens: used,
            reserved_micros: reserved * 2,
            used_micros: used * 2,
        };
        Job::Settle { tenant: tenant.into(), settlement }
    }

    fn admit(tenant: &str) -> Job {
        let args = std::array::from_fn(|i| i as i64);
        Job::Admit { tenant: tenant.into(), args, slot: true, id: 1 }
    }

    /// Settlements of one tenant made in the same minute and day go as one call with their sums;
    /// another tenant, minute or day goes apart, admissions go as they are, and every job is
    /// answered by the call that carried it.
    #[test]
    fn settlements_of_one_tenant_and_window_go_as_one_call() {
        let minute = 60_000;
        let jobs = [
            settle("a", 5, 10, 4),
            admit("a"),
            settle("a", 7, 20, 25),
            settle("b", 8, 1, 1),
            settle("a", minute + 1, 3, 3),
            settle("a", 9, 1, 0),
        ];
        let (calls, answered_by) = coalesce(&jobs);
        assert_eq!(answered_by, [0, 1, 0, 2, 3, 0]);
        let sums: Vec<_> = calls
            .iter()
            .map(|c| match c {
                Call::Admit(tenant, _) => (*tenant, [0; 7]),
                Call::Settle(tenant, sum) => {
                    let [rt, ut, rm, um, bt, bm] = sum.amounts;
                    (*tenant, [sum.admitted_ms, rt, ut, rm, um, bt, bm])
                }
            })
            .collect();
        // Admitted ms, reserved and used tokens, reserved and used micro-USD, and the use beyond
        // each reservation (only the second's 25 - 20), which a sum of differences would lose.
        assert_eq!(
            sums,
            [
                ("a", [5, 31, 29, 62, 58, 5, 10]),
                ("a", [0; 7]),
                ("b", [8, 1, 1, 2, 2, 0, 0]),
                ("a", [minute + 1, 3, 3, 6, 6, 0, 0])
            ]
        );
    }

    /// A sum the script could not compute exactly (a Lua number is a double) is not formed: the
    /// settlement starts a call of its own, which the next ones join.
    #[test]
    fn sums_past_exact_arithmetic_go_apart() {
        let half = MAX_EXACT / 4 + 1;
        let jobs = [settle("a", 5, half, 0), settle("a", 6, half, 0), settle("a", 7, 1, 0)];
        let (calls, answered_by) = coalesce(&jobs);
        assert_eq!(answered_by, [0, 1, 1], "half + half micro-USD (×2) would pass 2^53 - 1");
        let reserved: Vec<_> = calls
            .iter()
            .map(|c| match c {
                Call::Settle(_, s) => s.amounts[0],
                Call::Admit(..) => 0,
            })
            .collect();
        assert_eq!(reserved, [half, half + 1]);
    }

    /// A settlement frees its slot in the lane that admitted it, from whichever worker it runs on,
    /// and whether or not it reaches Redis (here there is none): the lane's next script writes its
    /// count without it.
    #[tokio::test]
    async fn a_settlement_frees_its_slot_in_the_admitting_lane_even_unsent() {
        let store = RedisStore::new("unix:///nowhere/redis.sock", "t", 1000, 2).expect("url");
        let lanes = &store.inner.lanes;
        lanes[1].in_flight().add(7, "acme");
        lanes[1].in_flight().add(8, "acme");
        assert_eq!(lanes[1].in_flight().count("acme"), 2);
        let settlement = Settlement {
            id: 7,
            admitted_ms: 1,
            reserved_tokens: 10,
            used_tokens: 5,
            reserved_micros: 0,
            used_micros: 0,
        };
        // This thread is no worker: it uses lane 0, and Redis is not there.
        assert!(store.settle("acme", &settlement, Some(1)).await.is_err());
        assert_eq!(lanes[1].in_flight().count("acme"), 1, "slot 7 is free, slot 8 is not");
        assert_eq!(lanes[0].in_flight().count("acme"), 0);
    }

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
