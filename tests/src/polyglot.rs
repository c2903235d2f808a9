//! The JavaScript and Python test plugins (plugins/polyglot), built with the real toolchains
//! (componentize-js, componentize-py) by scripts/build-lang-plugins.sh, which installs them
//! pinned when missing (scripts/setup-plugin-toolchains.sh) and rebuilds only what changed. Built
//! once per process; a missing toolchain fails the test loudly with what to run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The built components.
#[derive(Debug)]
pub struct Components {
    /// plugins/polyglot/js-hello: imports only the host interface.
    pub js_hello: PathBuf,
    /// plugins/polyglot/py-hello: imports WASI too, and probes it.
    pub py_hello: PathBuf,
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The components, built on first use.
pub fn components() -> &'static Components {
    static BUILT: OnceLock<Components> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(root().join("scripts/build-lang-plugins.sh"))
            .output()
            .expect("run scripts/build-lang-plugins.sh");
        assert!(
            out.status.success(),
            "building the JS/Python test plugins failed (scripts/setup-plugin-toolchains.sh \
             installs the toolchains):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = root().join(String::from_utf8_lossy(&out.stdout).trim());
        Components { js_hello: dir.join("js_hello.wasm"), py_hello: dir.join("py_hello.wasm") }
    })
}

/// A precompiled-artifact cache directory shared by the tests and benchmarks, so that an 18 MB
/// component is compiled once per machine rather than once per test.
pub fn artifact_cache() -> PathBuf {
    root().join(".cache/polyglot/artifacts")
}
