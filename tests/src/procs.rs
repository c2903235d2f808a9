//! Child processes for the benchmark programs: the mock upstream and Switchyard itself started
//! from the binaries next to the running program, a plugin directory with the built components,
//! the default chain of `switchyard.toml`, and the small helpers every benchmark needs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub fn flag(name: &str, default: u64) -> Result<u64> {
    match std::env::args().skip_while(|a| a != name).nth(1) {
        Some(value) => value.parse().with_context(|| format!("{name} takes a whole number")),
        None => Ok(default),
    }
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`, `RssAnon`, `RssFile`, `RssShmem`).
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))
        .with_context(|| format!("no {field}"))?;
    Ok(line.split_whitespace().nth(1).context("status value")?.parse()?)
}

/// The resident memory of process `pid` (`VmRSS`), KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

/// Nanoseconds on a CPU of all of `pid`'s threads (the first field of each
/// `/proc/PID/task/TID/schedstat`: finer than the clock ticks of `/proc/PID/stat`).
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A child process, stopped (SIGTERM, then waited for) on drop.
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: nginx's master must stop its workers, switchyard drains.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// The `mock-upstream` program next to the running one, with `args`; read its address with
/// [`read_listening`].
pub fn spawn_mock(bin_dir: &Path, args: &[&str]) -> Result<Guard> {
    let child = Command::new(bin_dir.join("mock-upstream"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting mock-upstream (build it with the same profile)")?;
    Ok(Guard(child))
}

/// Polls until something accepts connections on 127.0.0.1:`port`.
pub fn wait_until_listening(port: u16, limit: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub fn read_listening(child: &mut Child) -> Result<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().context("mock stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    line.trim().strip_prefix("listening ").map(str::to_string).context("mock did not start")
}

/// A plugin dir holding the `noop` test component and the built-ins that tests/build.rs built.
pub fn plugin_dir(dir: &Path) -> Result<PathBuf> {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let noop = ("noop.wasm", crate::wasm::NOOP);
    for (file, built) in crate::wasm::BUILT_IN.iter().chain([&noop]) {
        std::fs::copy(built, plugins.join(file)).with_context(|| format!("copying {built}"))?;
    }
    Ok(plugins)
}

/// The plugin part of the repository's `switchyard.toml` (from `[plugins]` on: the chain the
/// quick start runs), with its directory pointed at `plugins`.
pub fn default_chain_section(plugins: &Path) -> Result<String> {
    chain_section(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard.toml"), plugins)
}

/// The plugin part of the `switchyard.toml` at `path` (from `[plugins]` on), with its directory
/// pointed at `plugins`.
pub fn chain_section(path: &Path, plugins: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let start = text.find("\n[plugins]\n").context("switchyard.toml has no [plugins]")?;
    let dir = format!("dir = {:?}\nwatch = false", plugins.display().to_string());
    Ok(text[start..].replacen("dir = \".cache/plugins\"", &dir, 1))
}

/// Switchyard on `port` (admin `port + 10`) with `section` appended to its config, in front of
/// the mock as both `local` and `hosted` (the upstreams the default chain routes to).
pub fn spawn_switchyard(
    bin_dir: &Path,
    dir: &Path,
    mock: &str,
    port: u16,
    section: &str,
) -> Result<Guard> {
    spawn_switchyard_with(bin_dir, dir, mock, port, "", section, &[])
}

/// As [`spawn_switchyard`], with `server` lines added to its `[server]` table and `envs` set in
/// its environment (the variables its config names: tenant keys, the Redis URL).
pub fn spawn_switchyard_with(
    bin_dir: &Path,
    dir: &Path,
    mock: &str,
    port: u16,
    server: &str,
    section: &str,
    envs: &[(&str, &str)],
) -> Result<Guard> {
    let config = dir.join(format!("switchyard-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n{server}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [[upstream]]\nname = \"local\"\nbase_url = \"http://{mock}/v1\"\n\
             [[upstream]]\nname = \"hosted\"\nbase_url = \"http://{mock}/v1\"\n\
             [routing]\ndefault = \"local\"\n{section}",
            admin = port + 10
        ),
    )?;
    let child = Command::new(bin_dir.join("switchyard"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("SWITCHYARD_LOG", "warn")
        .envs(envs.iter().copied())
        .spawn()
        .context("starting switchyard")?;
    Ok(Guard(child))
}

/// A `redis-server` on `dir/redis.sock` (no TCP port, no persistence), once it says it is ready;
/// returns it with the socket's path.
pub fn spawn_redis(dir: &Path) -> Result<(Guard, PathBuf)> {
    use std::io::BufRead;
    let socket = dir.join("redis.sock");
    let mut child = Command::new("redis-server")
        .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server (scripts/setup.sh installs it)")?;
    let stdout = child.stdout.take().context("redis stdout")?;
    let guard = Guard(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if line?.to_ascii_lowercase().contains("ready to accept connections") {
            // Keep draining its log so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((guard, socket));
        }
    }
    bail!("redis-server exited before it was ready")
}
