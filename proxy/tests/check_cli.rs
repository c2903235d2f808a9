//! `switchyard check`: golden files pair each bad config with its exact error listing, and the
//! repository's example config passes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;
use std::process::Command;

fn check(dir: &Path, file: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--config", file])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("run switchyard check")
}

#[test]
fn every_bad_config_lists_exactly_its_golden_problems() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/bad");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let file = path.file_name().unwrap().to_str().unwrap();
        let output = check(&dir, file, &[]);
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{file} has no .expected file"));
        assert!(!output.status.success(), "{file} passed check");
        assert_eq!(String::from_utf8_lossy(&output.stderr), expected, "{file}");
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} golden configs found");
}

#[test]
fn the_example_config_is_valid() {
    // The file only: its plugins are built by `make run` (.cache/plugins), which the test run
    // does not need; without the flag `check` compiles and probes them too.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = check(root, "switchyard.toml", &["--config-only"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "switchyard.toml: ok\n");
}
