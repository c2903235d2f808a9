//! Paths of the test and built-in plugins as components, built by tests/build.rs, and distinct
//! files of the `versioned` plugin made by patching its compiled-in stamp.

include!(concat!(env!("OUT_DIR"), "/wasm_paths.rs"));

/// The stamp compiled into `versioned.wasm` (its `STAMP`); the last four bytes are digits.
const STAMP: &[u8] = b"switchyard-stamp-0000";

/// The `versioned` component whose compiled-in version is `switchyard-stamp-{n:04}` (used when its
/// config names no version): a different file (and sha256) per `n`, same code, no rebuild.
pub fn stamped(n: u16) -> Vec<u8> {
    let mut bytes = std::fs::read(VERSIONED).expect("read versioned.wasm");
    let at: Vec<usize> = bytes
        .windows(STAMP.len())
        .enumerate()
        .filter(|(_, w)| *w == STAMP)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "versioned.wasm must hold its stamp exactly once");
    let digits = format!("{:04}", n % 10_000);
    bytes[at[0] + STAMP.len() - 4..at[0] + STAMP.len()].copy_from_slice(digits.as_bytes());
    bytes
}

/// The version `stamped(n)` reports.
pub fn stamp_name(n: u16) -> String {
    format!("switchyard-stamp-{:04}", n % 10_000)
}
