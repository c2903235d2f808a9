//! The compiled-function cache (`<artifact_cache>/functions`): Cranelift's incremental
//! compilation, one file per compiled function, keyed by a hash of the function's code. A new
//! version of a JavaScript or Python plugin is mostly the same interpreter with another snapshot
//! of its data, so its compile reuses the functions an earlier version (or another plugin of the
//! same toolchain) compiled, and only what changed goes through Cranelift (numbers in
//! BENCHMARKS.md, "Plugins in other languages").
//!
//! An entry is the sha256 of the compiled function followed by its bytes; an entry whose bytes do
//! not match is ignored (the function is compiled again and the entry rewritten). The directory is
//! trusted like the artifact cache beside it (docs/security.md): its entries become native code.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::CacheStore;

use super::artifacts::{create_private_dir, hex};

/// Bytes the directory may hold; the oldest entries beyond are removed after a compile. A 12 MB
/// JavaScript component leaves about 120 MB of entries.
const MAX_BYTES: u64 = 1 << 30;

/// A directory of compiled functions, shared by every compile of one engine.
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    hits: AtomicU64,
    stored: AtomicU64,
}

/// What the cache did for compiles so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionCacheStats {
    /// Functions taken from the cache.
    pub hits: u64,
    /// Functions compiled and stored.
    pub stored: u64,
}

impl FunctionCache {
    /// Opens (creating, owner-only) `dir`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        create_private_dir(dir).map_err(|e| format!("function cache {}: {e}", dir.display()))?;
        Ok(Self { dir: dir.to_path_buf(), hits: AtomicU64::new(0), stored: AtomicU64::new(0) })
    }

    pub fn stats(&self) -> FunctionCacheStats {
        FunctionCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
        }
    }

    /// Removes the oldest entries while the directory holds more than [`MAX_BYTES`].
    pub fn prune(&self) {
        prune_to(&self.dir, MAX_BYTES);
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        self.dir.join(hex(key))
    }
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut bytes = fs::read(self.path(key)).ok()?;
        if bytes.len() < 32 || Sha256::digest(&bytes[32..])[..] != bytes[..32] {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        bytes.drain(..32);
        Some(Cow::Owned(bytes))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut entry = Sha256::digest(&value).to_vec();
        entry.extend_from_slice(&value);
        let stored = write_entry(&self.path(key), &entry).is_ok();
        if stored {
            self.stored.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }
}

/// Written to a temporary name and renamed, without the artifact cache's fsync (tens of
/// thousands of entries per compile): an entry cut short by a crash fails its sha256 and is
/// compiled again.
fn write_entry(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

fn prune_to(dir: &Path, max_bytes: u64) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    if total <= max_bytes {
        return;
    }
    files.sort_by_key(|f| f.0);
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_comes_back_and_a_tampered_one_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FunctionCache::open(dir.path()).expect("open");
        assert!(cache.insert(b"key", b"compiled".to_vec()));
        assert_eq!(cache.get(b"key").as_deref(), Some(&b"compiled"[..]));
        assert_eq!(cache.get(b"other"), None);

        let path = cache.path(b"key");
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).expect("tamper");
        assert_eq!(cache.get(b"key"), None, "bytes that do not match their sha256 never load");
        assert_eq!(cache.stats(), FunctionCacheStats { hits: 1, stored: 1 });
    }

    #[test]
    fn pruning_removes_the_oldest_entries_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FunctionCache::open(dir.path()).expect("open");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for key in [b"a", b"b", b"c"] {
            cache.insert(key, vec![0; 100]);
        }
        fs::File::options()
            .write(true)
            .open(cache.path(b"a"))
            .and_then(|f| f.set_modified(old))
            .expect("age an entry");
        prune_to(dir.path(), 300);
        assert!(cache.get(b"a").is_none(), "the oldest entry goes first");
        assert!(cache.get(b"b").is_some() && cache.get(b"c").is_some());
    }
}
