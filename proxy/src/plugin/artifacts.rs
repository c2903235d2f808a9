//! The precompiled-artifact cache (`plugins.artifact_cache`): a plugin's compiled code, stored
//! after its first compile, so that a restart or a hot swap back to known bytes loads it in
//! milliseconds instead of compiling a large component again (13 s for a 12 MB JavaScript
//! plugin on this machine; numbers in BENCHMARKS.md).
//!
//! An entry is keyed by the sha256 of the component's bytes (after any signature check) and a
//! fingerprint of wasmtime's version and engine configuration; beside it lies the sha256 of the
//! artifact, and an artifact whose bytes do not match it is compiled again. Loading native code
//! is the one place the proxy uses `unsafe` ([`deserialize`]); docs/security.md says why the
//! directory must be trusted like the binary.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries kept; the oldest beyond are removed when a new one is stored.
const MAX_ENTRIES: usize = 64;

/// A directory of compiled components for one engine configuration.
#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    /// sha256 of wasmtime's version and every engine setting that changes compiled code.
    fingerprint: String,
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the cache.
    Cached,
    /// Compiled now (and stored, if the cache could write).
    Compiled,
}

impl ArtifactCache {
    /// Opens (creating, owner-only) the cache directory for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, String> {
        create_private_dir(dir)
            .map_err(|e| format!("plugins.artifact_cache {}: {e}", dir.display()))?;
        Ok(Self { dir: dir.to_path_buf(), fingerprint: engine_fingerprint(engine) })
    }

    /// The compiled component for `wasm`, whose sha256 is `sha256`: from the cache when an
    /// intact entry exists, otherwise compiled, stored and returned.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, Origin)> {
        let path = self.dir.join(format!("{sha256}-{}.cwasm", self.fingerprint));
        if let Some(component) = self.load(engine, &path) {
            return Ok((component, Origin::Cached));
        }
        let artifact = engine.precompile_component(wasm)?;
        // The bytes were made by this engine a moment ago, in this process.
        let component = deserialize(engine, &artifact)?;
        if let Err(e) = self.store(&path, &artifact) {
            tracing::warn!(path = %path.display(), error = %e, "cannot store a plugin artifact");
        }
        Ok((component, Origin::Compiled))
    }

    /// The entry at `path`, if its bytes match their recorded sha256 and wasmtime accepts them.
    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let bytes = fs::read(path).ok()?;
        let recorded = fs::read_to_string(digest_path(path)).ok()?;
        if hex(&Sha256::digest(&bytes)) != recorded.trim() {
            tracing::warn!(path = %path.display(), "plugin artifact does not match its sha256; compiling");
            return None;
        }
        match deserialize(engine, &bytes) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "plugin artifact refused; compiling");
                None
            }
        }
    }

    /// Writes the artifact, then its sha256 (each to a temporary name, then renamed): a reader
    /// never sees a digest without the whole artifact it describes.
    fn store(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        write_atomically(path, artifact)?;
        write_atomically(&digest_path(path), hex(&Sha256::digest(artifact)).as_bytes())?;
        self.prune();
        Ok(())
    }

    /// Removes the oldest entries beyond [`MAX_ENTRIES`] (those of an older wasmtime or engine
    /// config age out the same way; two proxies with different settings may share the dir).
    fn prune(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (_, p) in entries.iter().skip(MAX_ENTRIES) {
            let _ = fs::remove_file(digest_path(p));
            let _ = fs::remove_file(p);
        }
    }
}

/// Loads code that this process compiled (`Component::serialize` of a component of an engine
/// with the same compilation settings) into `engine`: how the overflow lane gets its copy of a
/// plugin (`lanes.rs`).
pub(crate) fn load_own(engine: &Engine, code: &[u8]) -> Result<Component, String> {
    deserialize(engine, code).map_err(|e| format!("{e:#}"))
}

/// Turns artifact bytes back into a component: the one `unsafe` call of the proxy.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` maps the bytes as native code, so they must be what
    // `Engine::precompile_component` produced; wasmtime itself checks the header, its version
    // and the engine configuration, not the code. The bytes are either the output of
    // `precompile_component` of this engine in this process, or an entry of the cache directory,
    // which only this proxy writes (created owner-only), read whole into memory and checked
    // against the sha256 written beside it before this call (so the file cannot change between
    // the check and the use, and a truncated or corrupted entry is never loaded). The directory
    // is trusted as the proxy binary is (docs/security.md). Or they are `Component::serialize`
    // of a component this process compiled or loaded that way (`load_own`).
    unsafe { Component::deserialize(engine, artifact) }
}

/// sha256 over wasmtime's own compatibility hash (its version and the engine settings that
/// change compiled code).
fn engine_fingerprint(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize())[..32].to_string()
}

fn digest_path(artifact: &Path) -> PathBuf {
    artifact.with_extension("cwasm.sha256")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Unique per process and per write: concurrent loads (tests, two proxies) may store the same
    // entry at once; the last rename wins, and each renamed file is whole.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component there is: the header of an empty one (wasmtime is built without
    /// its WAT parser).
    const EMPTY_COMPONENT: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn the_second_load_comes_from_the_cache_and_a_tampered_entry_is_compiled_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let cache = ArtifactCache::open(dir.path(), &engine).expect("open");
        let wasm = component_bytes();
        let sha = hex(&Sha256::digest(&wasm));
        let (_, first) = cache.load_or_compile(&engine, &wasm, &sha).expect("compile");
        assert_eq!(first, Origin::Compiled);
        let (_, second) = cache.load_or_compile(&engine, &wasm, &sha).expect("load");
        assert_eq!(second, Origin::Cached);

        let artifact = fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .expect("an artifact");
        let mut bytes = fs::read(&artifact).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&artifact, bytes).expect("tamper");
        let (_, third) = cache.load_or_compile(&engine, &wasm, &sha).expect("recompile");
        assert_eq!(third, Origin::Compiled, "bytes that do not match their sha256 never load");
    }

    #[test]
    fn another_engine_config_does_not_share_entries() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).expect("engine");
        assert_ne!(engine_fingerprint(&engine()), engine_fingerprint(&other));
    }

    fn component_bytes() -> Vec<u8> {
        EMPTY_COMPONENT.to_vec()
    }
}
