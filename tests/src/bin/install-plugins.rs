//! Copies the built-in plugins (built as components by tests/build.rs) into a directory:
//! `install-plugins DIR`. The quick start installs them where `switchyard.toml`'s `plugins.dir`
//! points; the proxy's directory watcher picks up a re-install as a hot swap.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "plugins/dist".into()));
    std::fs::create_dir_all(&dir)?;
    for (file, built) in switchyard_tests::wasm::BUILT_IN {
        let target = dir.join(file);
        // Write then rename, so a watching proxy never reads a half-written file.
        let partial = dir.join(format!(".{file}.partial"));
        std::fs::copy(built, &partial)?;
        std::fs::rename(&partial, &target)?;
        println!("{}", target.display());
    }
    Ok(())
}
