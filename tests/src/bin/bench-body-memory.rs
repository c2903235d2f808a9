//! Benchmark: how much memory a request body costs the proxy. Starts a fresh `switchyard` process
//! per body shape in front of the mock upstream, sends N large bodies of that shape at once, and
//! reads the proxy's peak RSS (`VmHWM`) against its idle RSS. The amplification factor is the
//! growth divided by the body bytes in flight. Prints a markdown table for BENCHMARKS.md.
//!
//! Usage: `bench-body-memory [--concurrent N] [--mib S] [--switchyard PATH] [--label TEXT]`
//! (defaults: 20 bodies of 8 MiB; the `switchyard` binary next to this one).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use switchyard_tests::procs::status_kib;

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<()> {
    let concurrent = flag("--concurrent")?.map_or(Ok(20), |v| v.parse())?;
    let mib: usize = flag("--mib")?.map_or(Ok(8), |v| v.parse())?;
    let label = flag("--label")?.unwrap_or_else(|| "this build".into());
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
    let switchyard =
        flag("--switchyard")?.map_or_else(|| bin_dir.join("switchyard"), PathBuf::from);
    let dir = tempfile::tempdir()?;
    let mut mock = Command::new(bin_dir.join("mock-upstream")).stdout(Stdio::piped()).spawn()?;
    let mock_addr = read_listening(&mut mock)?;
    let _mock = Guard(mock);

    let size = mib * 1024 * 1024;
    println!("{label}: {concurrent} concurrent bodies of {mib} MiB each\n");
    println!(
        "| body shape | idle RSS | peak RSS | growth | body bytes in flight | RSS per body byte |"
    );
    println!("|---|---|---|---|---|---|");
    for (index, (shape, body)) in shapes(size).into_iter().enumerate() {
        let port = 18300 + 2 * index as u16;
        let proxy = spawn_switchyard(&switchyard, dir.path(), &mock_addr, port)?;
        let pid = proxy.0.id();
        wait_ready(port)?;
        let idle = status_kib(pid, "VmRSS")?;
        let statuses = send_all(port, &body, concurrent);
        let peak = status_kib(pid, "VmHWM")?;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        if ok != concurrent {
            eprintln!("{shape}: {ok}/{concurrent} answered 200 ({statuses:?})");
        }
        let growth = peak.saturating_sub(idle) * 1024;
        let in_flight = body.len() * concurrent;
        println!(
            "| {shape} | {} MiB | {} MiB | {} MiB | {} MiB | {:.2} |",
            idle / 1024,
            peak / 1024,
            growth / (1024 * 1024),
            in_flight / (1024 * 1024),
            growth as f64 / in_flight as f64
        );
    }
    Ok(())
}

/// Chat bodies of about `size` bytes that stress different parts of the parsed form.
fn shapes(size: usize) -> Vec<(&'static str, String)> {
    let text = "a".repeat(size);
    let one = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": text}]});
    let message = r#"{"role":"user","content":"hello there, how are you"},"#;
    let many = format!(
        r#"{{"model":"m","messages":[{}{{"role":"user","content":"last"}}]}}"#,
        message.repeat(size / message.len())
    );
    let numbers = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"x_vendor_data":[{}0]}}"#,
        "0,".repeat(size / 2)
    );
    let image = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", "A".repeat(size))}},
    ]}]});
    vec![
        ("one long text message", one.to_string()),
        ("many short messages", many),
        ("unknown field: array of numbers", numbers),
        ("image part (data URL)", image.to_string()),
    ]
}

/// Sends `body` on `n` connections at once and returns each response's status.
fn send_all(port: u16, body: &str, n: usize) -> Vec<u16> {
    std::thread::scope(|scope| {
        let sends: Vec<_> = (0..n).map(|_| scope.spawn(|| send(port, body))).collect();
        sends.into_iter().map(|h| h.join().ok().and_then(|r| r.ok()).unwrap_or(0)).collect()
    })
}

fn send(port: u16, body: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let status = String::from_utf8_lossy(response.get(9..12).unwrap_or_default()).parse()?;
    Ok(status)
}

fn wait_ready(port: u16) -> Result<()> {
    for _ in 0..300 {
        if TcpStream::connect(("127.0.0.1", port + 1)).is_ok() {
            // Let the start-up allocations settle before the idle reading.
            std::thread::sleep(Duration::from_millis(300));
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("switchyard on port {port} did not start")
}

fn spawn_switchyard(binary: &Path, dir: &Path, mock: &str, port: u16) -> Result<Guard> {
    let config = dir.join(format!("switchyard-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = 16777216\nworkers = 2\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [[upstream]]\nname = \"local\"\nbase_url = \"http://{mock}/v1\"\n\
             [routing]\ndefault = \"local\"\n",
            admin = port + 1
        ),
    )?;
    let child = Command::new(binary)
        .args(["serve", "--config"])
        .arg(&config)
        .env("SWITCHYARD_LOG", "warn")
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Guard(child))
}

fn read_listening(child: &mut Child) -> Result<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().context("mock stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    line.trim().strip_prefix("listening ").map(str::to_string).context("mock did not start")
}

fn flag(name: &str) -> Result<Option<String>> {
    let mut args = std::env::args().skip_while(|a| a != name);
    match (args.next(), args.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(value)) => Ok(Some(value)),
        (Some(_), None) => bail!("{name} needs a value"),
    }
}
