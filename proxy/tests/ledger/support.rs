//! What the ledger tests share: a real `redis-server` on a unix socket in a temporary directory,
//! and three ledgers over one store (as three replicas hold them) on a clock the test moves.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use switchyard::config::OnUnavailable;
use switchyard::ledger::{
    Backend, Clock, Ledger, Limits, MemoryStore, Options, Prices, RedisStore,
};
use switchyard::metrics::ledger::LedgerMetrics;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A Unix time 5 s into a minute and far from a day's end, so no window ends unless a test
/// moves the clock.
pub const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000 + 3_600_000 + 5_000;

/// The tenant every test limits.
pub const TENANT: &str = "acme";

/// Which store the ledgers share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
}

/// A `redis-server` owned by the test: killed when dropped.
pub struct RedisServer {
    child: Child,
    pub socket: PathBuf,
}

impl RedisServer {
    /// Starts one on `dir/redis.sock` (no TCP port, no persistence) and waits for its "ready"
    /// line; `None` when redis-server is not installed (scripts/setup.sh installs it), except
    /// under CI (`CI` set), where that fails the test.
    pub async fn start(dir: &Path) -> Option<Self> {
        let socket = dir.join("redis.sock");
        let mut child = match Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(&socket)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            // CI installs it (scripts/setup.sh): there a missing server is a failure, not a skip.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() =>
            {
                eprintln!("SKIPPED: redis-server is not installed (run scripts/setup.sh)");
                return None;
            }
            Err(e) => panic!("starting redis-server: {e}"),
        };
        let stdout = child.stdout.take().expect("redis stdout");
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.expect("redis output") {
            // 7.0 says "The server is now ready to accept connections at <socket>".
            if line.to_ascii_lowercase().contains("ready to accept connections") {
                // Keep draining its log so the server never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Some(Self { child, socket });
            }
        }
        panic!("redis-server exited before it was ready");
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill redis-server");
    }

    /// Sends a signal by name (`STOP`, `CONT`) to it.
    pub async fn signal(&self, name: &str) {
        let pid = self.child.id().expect("redis-server pid").to_string();
        let status = Command::new("kill").args([&format!("-{name}"), &pid]).status().await;
        assert!(status.expect("kill").success(), "kill -{name} {pid}");
    }
}

/// Three ledgers over one store, the clock they share, and the Redis server behind them.
pub struct Replicas {
    pub ledgers: Vec<Ledger>,
    pub clock: Arc<AtomicU64>,
    pub metrics: Vec<LedgerMetrics>,
    pub redis: Option<RedisServer>,
    pub dir: tempfile::TempDir,
}

/// What a test configures besides the store.
#[derive(Clone)]
pub struct Setup {
    pub limits: Limits,
    pub on_unavailable: OnUnavailable,
    pub timeout: Duration,
    pub prices: Prices,
    /// How old the windows plugins get from Redis may be (`limits_snapshot_max_age_ms`).
    pub snapshot_max_age: Duration,
}

impl Setup {
    pub fn new(limits: Limits) -> Self {
        // Generous: a loaded 2-core test machine must not turn a healthy Redis "unavailable".
        Self {
            limits,
            on_unavailable: OnUnavailable::Closed,
            timeout: Duration::from_secs(5),
            prices: Prices::default(),
            snapshot_max_age: Duration::from_secs(1),
        }
    }
}

impl Replicas {
    /// Three ledgers sharing one store of `kind`; `None` (skip) when Redis is asked for and
    /// redis-server is not installed.
    pub async fn start(kind: Kind, setup: &Setup) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = match kind {
            Kind::Memory => None,
            Kind::Redis => Some(RedisServer::start(dir.path()).await?),
        };
        let clock = Arc::new(AtomicU64::new(T0));
        let memory = Arc::new(MemoryStore::new(900_000));
        let mut ledgers = Vec::new();
        let mut metrics = Vec::new();
        for _ in 0..3 {
            let store = match &redis {
                None => Backend::Memory(Arc::clone(&memory)),
                Some(server) => Backend::Redis(Arc::new(
                    RedisStore::new(&server.url(), "test", 900_000, 1).expect("redis url"),
                )),
            };
            let options = Options {
                on_unavailable: setup.on_unavailable,
                timeout: setup.timeout,
                snapshot_max_age: setup.snapshot_max_age,
                clock: Clock::Manual(Arc::clone(&clock)),
                prices: setup.prices.clone(),
            };
            let m = LedgerMetrics::default();
            ledgers.push(Ledger::new(
                store,
                vec![(TENANT.into(), setup.limits, 1024)],
                options,
                m.clone(),
            ));
            metrics.push(m);
        }
        Some(Self { ledgers, clock, metrics, redis, dir })
    }

    /// Moves the shared clock forward.
    pub fn advance(&self, ms: u64) {
        self.clock.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// The ledger replica `i % 3` (so attempts spread over the three).
    pub fn replica(&self, i: usize) -> &Ledger {
        &self.ledgers[i % self.ledgers.len()]
    }
}

/// Runs the body for both stores, as two tests: `memory` and `redis`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        pub mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::Kind::Memory).await
                }
            )*
        }
        pub mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::Kind::Redis).await
                }
            )*
        }
    };
}
