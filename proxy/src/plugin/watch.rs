//! Reload when a `.wasm` or `.sig` file in `plugins.dir` changes (notify crate), debounced so that
//! a copy in several writes causes one reload. A failed reload keeps the old set and logs why.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::registry::PluginRegistry;

/// Quiet time after the last change before reloading.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Watches the plugin directory while alive.
pub struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher").finish_non_exhaustive()
    }
}

impl DirWatcher {
    /// Start watching `dir`; each change triggers `registry.reload()` on the current runtime.
    pub fn start(registry: Arc<PluginRegistry>, dir: &std::path::Path) -> Result<Self, String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let relevant = ev.is_ok_and(|ev| {
                ev.paths.iter().any(|p| p.extension().is_some_and(|x| x == "wasm" || x == "sig"))
            });
            if relevant {
                let _ = tx.send(());
            }
        })
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Debounce: wait until DEBOUNCE passes with no new change.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                match registry.reload().await {
                    Ok(r) => tracing::info!(
                        generation = r.generation,
                        "plugins reloaded after a file change"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "plugin reload refused; the old set stays live")
                    }
                }
            }
        });
        Ok(Self { _watcher: watcher, task })
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
