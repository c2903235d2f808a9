//! A real `redis-server` owned by a test: on a unix socket in its own temporary directory (no TCP
//! port, no persistence), killed when dropped. `scripts/setup.sh` installs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    /// The socket it listens on, inside `_dir`.
    pub socket: PathBuf,
    /// Holds the socket's directory for as long as the server runs.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one and waits for its "ready" line. `None` when redis-server is not installed and
    /// `CI` is unset (the test then says it skipped); under CI a missing server fails the test.
    pub async fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("redis.sock");
        let child = match spawn(&socket).await {
            Ok(child) => child,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() =>
            {
                eprintln!("SKIPPED: redis-server is not installed (run scripts/setup.sh)");
                return None;
            }
            Err(e) => panic!("starting redis-server (scripts/setup.sh installs it): {e}"),
        };
        Some(Self { child, socket, _dir: dir })
    }

    /// Starts a fresh server (empty: no persistence) on the same socket, as a restarted Redis
    /// that lost its state; the old one must have been killed.
    pub async fn restart(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        self.child = spawn(&self.socket).await.expect("restarting redis-server");
    }

    /// `unix:///.../redis.sock`, for `[state] url_env`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs `redis-cli` against it with `args`; its output.
    pub async fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .await
            .expect("redis-cli (installed with redis-server)");
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Calls of each command the server ran since it started or since `CONFIG RESETSTAT`, by
    /// command name (`evalsha`, `get`, ...), from `INFO commandstats`.
    pub async fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let info = self.cli(&["INFO", "commandstats"]).await;
        info.lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                Some((name.to_string(), calls.trim().parse().ok()?))
            })
            .collect()
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill redis-server");
    }
}

/// Spawns redis-server on `socket` and waits for its "ready" line.
async fn spawn(socket: &Path) -> std::io::Result<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
        .arg("--unixsocket")
        .arg(socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().expect("redis stdout");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        // "Ready to accept connections" (6.x) / "...now ready to accept connections" (7.x).
        if line.to_ascii_lowercase().contains("ready to accept connections") {
            // Keep draining its log so the server never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(child);
        }
    }
    panic!("redis-server exited before it was ready");
}
