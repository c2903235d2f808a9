//! Starting Switchyard in-process on 127.0.0.1:0 with a config written by the test, and stopping
//! it the way SIGTERM would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use switchyard::{Listeners, RunError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

impl Proxy {
    /// Starts the proxy with `config` (TOML; its listen addresses are ignored) and no secrets.
    pub async fn start(config: &str) -> Self {
        Self::start_with_env(config, HashMap::new()).await
    }

    /// Starts the proxy with `config` and the given environment for secrets.
    pub async fn start_with_env(config: &str, env: HashMap<String, String>) -> Self {
        let config = with_test_pool(config);
        let config = switchyard::config::parse(&config, "<test>", Path::new("."))
            .unwrap_or_else(|e| panic!("test config invalid: {:?}", e.problems));
        let api = TcpListener::bind("127.0.0.1:0").await.expect("bind api");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = api.local_addr().expect("addr");
        let admin_addr = admin.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            switchyard::run(config, &env, Listeners { api, admin }, shutdown).await
        });
        Self { addr, admin_addr, shutdown: Some(tx), task: Some(task) }
    }

    /// `http://127.0.0.1:PORT{path}` on the API listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Signals shutdown (as SIGTERM does) without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Signals shutdown and waits until the proxy has drained and returned.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            task.await.expect("proxy task").expect("proxy run");
        }
    }

    /// Waits for a shutdown begun earlier to finish.
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            task.await.expect("proxy task").expect("proxy run");
        }
    }
}

/// `config` with a plugin pool of [`crate::TEST_POOL`] slots unless it sets its own size.
fn with_test_pool(config: &str) -> String {
    if config.contains("max_instances") {
        return config.to_string();
    }
    let pool = format!("[plugins]\nmax_instances = {}\n", crate::TEST_POOL);
    config.replacen("[plugins]\n", &pool, 1)
}

/// A config with the given upstreams (`(name, base_url, extra TOML lines)`) and routing lines.
pub fn config(upstreams: &[(&str, &str, &str)], routing: &str) -> String {
    let mut out = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\nbody_read_timeout_ms = 2000\nheader_read_timeout_ms = 2000\ndrain_timeout_ms = 5000\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n",
    );
    for (name, base_url, extra) in upstreams {
        out.push_str(&format!(
            "[[upstream]]\nname = \"{name}\"\nbase_url = \"{base_url}\"\nbackoff_ms = 1\n{extra}\n\n"
        ));
    }
    out.push_str("[routing]\n");
    out.push_str(routing);
    out.push('\n');
    out
}

/// A temp `plugins.dir` holding copies of `files` (`(file name, built component path)`) and the
/// `[plugins]` section pointing at it followed by `tables` (`[[plugin]]` entries). Keep the dir
/// alive as long as the proxy runs.
pub fn plugins_section(files: &[(&str, &str)], tables: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, built) in files {
        std::fs::copy(built, dir.path().join(file)).expect("copy plugin");
    }
    let section = format!("[plugins]\ndir = {:?}\n\n{tables}", dir.path().display().to_string());
    (dir, section)
}

/// The repository's `switchyard.toml` with the built-in plugins installed in a temp dir (keep it
/// alive as long as the proxy runs) and its `local` and `hosted` upstreams pointed at these URLs.
pub fn shipped_config(local_url: &str, hosted_url: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, built) in crate::wasm::BUILT_IN {
        std::fs::copy(built, dir.path().join(file)).expect("copy plugin");
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard.toml");
    let config = std::fs::read_to_string(shipped)
        .expect("switchyard.toml")
        .replace("http://127.0.0.1:8081/v1", local_url)
        .replace("https://api.openai.com/v1", hosted_url)
        .replacen(
            "dir = \".cache/plugins\"",
            &format!("dir = {:?}", dir.path().display().to_string()),
            1,
        )
        .replacen(
            "artifact_cache = \".cache/plugin-artifacts\"",
            &format!("artifact_cache = {:?}", dir.path().join("artifacts").display().to_string()),
            1,
        );
    assert!(
        config.contains(local_url) && config.contains(hosted_url),
        "the shipped upstreams moved"
    );
    (dir, config)
}
