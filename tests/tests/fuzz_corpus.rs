//! The fuzz targets, briefly, in the normal test suite (stable, no libFuzzer): every committed
//! seed under fuzz/corpus/<target>/ and a few thousand deterministic mutations of them go through
//! the functions the cargo-fuzz targets run (`switchyard::fuzzing`), with the same invariants.
//! The long coverage-guided runs are scripts/fuzz.sh; their numbers are in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use switchyard::fuzzing::{self, Outcome, SseRelay};
use switchyard_tests::wasm;

/// The committed seeds of `target`, in file-name order.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Byte strings that mean something to the parsers: inserted at random places.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"\\u00e9",
    b"\\ud83d",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"data: ",
    b"data:",
    b"event: ",
    b"id: ",
    b": ",
    b"[DONE]",
    b"<EMAIL_1>",
    b"<EMA",
    b"ann@example.com",
    b"4111 1111 1111 1111",
    b"\xc3\xa9",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\"choices\":[",
    b"\"index\":1",
    b"\"finish_reason\":\"stop\"",
    b"\"content\":",
    b"\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"x\"}}]",
    b"\"error\":{",
    b"edit 0 ",
    b"text ",
    b"upstream local\n",
    b"[[upstream]]\n",
    b"[plugins]\n",
    b"[[plugin]]\n",
    b" = ",
    b"'''",
    b"\"\"\"",
];

/// Numbers at the edges of the fields' widths.
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"1",
    b"-1",
    b"255",
    b"256",
    b"4096",
    b"4097",
    b"65535",
    b"65536",
    b"2147483648",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"1e400",
    b"0.5",
];

/// libFuzzer-like mutations from a seeded generator: the same inputs on every run.
struct Mutator {
    rng: fastrand::Rng,
}

impl Mutator {
    fn mutate(&mut self, seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut data = seeds[self.rng.usize(..seeds.len())].1.clone();
        for _ in 0..self.rng.usize(1..=4) {
            self.step(&mut data, seeds);
        }
        data
    }

    fn step(&mut self, data: &mut Vec<u8>, seeds: &[(String, Vec<u8>)]) {
        let at = self.rng.usize(..=data.len());
        match self.rng.u8(..8) {
            0 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                data[i] ^= 1 << self.rng.u8(..8);
            }
            1 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                data[i] = self.rng.u8(..);
            }
            2 => splice_in(data, at, TOKENS[self.rng.usize(..TOKENS.len())]),
            3 => {
                let end = (at + self.rng.usize(..=16)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                let end = (at + self.rng.usize(..=64)).min(data.len());
                let copy = data[at..end].to_vec();
                splice_in(data, self.rng.usize(..=data.len()), &copy);
            }
            5 => {
                // The head of this input, the tail of another.
                let other = &seeds[self.rng.usize(..seeds.len())].1;
                let from = self.rng.usize(..=other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            6 => {
                // A run of digits becomes an edge number.
                if let Some(i) = (at..data.len()).find(|&i| data[i].is_ascii_digit()) {
                    let end =
                        (i..data.len()).find(|&j| !data[j].is_ascii_digit()).unwrap_or(data.len());
                    let number = NUMBERS[self.rng.usize(..NUMBERS.len())];
                    data.splice(i..end, number.iter().copied());
                }
            }
            _ => data.truncate(at),
        }
    }
}

fn splice_in(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    data.splice(at..at, bytes.iter().copied());
}

/// Runs every seed of `target` and `mutations` mutations of them through `run` (times
/// `SWITCHYARD_FUZZ_SCALE`, 1 unless set: a longer stable run without nightly); a failing input
/// is written to the temp directory and shown escaped, to add to the corpus.
fn replay<T>(target: &str, mutations: usize, mut run: impl FnMut(&[u8]) -> T) -> Vec<T> {
    let seeds = corpus(target);
    let scale = std::env::var("SWITCHYARD_FUZZ_SCALE").ok().and_then(|s| s.parse().ok());
    let mutations = mutations * scale.unwrap_or(1);
    let mut mutator = Mutator { rng: fastrand::Rng::with_seed(0x5eed_f022) };
    let inputs = seeds
        .iter()
        .map(|(name, data)| (name.clone(), data.clone()))
        .chain((0..mutations).map(|n| (format!("mutation {n}"), mutator.mutate(&seeds))));
    let mut results = Vec::new();
    for (name, data) in inputs {
        match catch_unwind(AssertUnwindSafe(|| run(&data))) {
            Ok(result) => results.push(result),
            Err(_) => {
                let path = std::env::temp_dir().join(format!("switchyard-fuzz-{target}-crash"));
                std::fs::write(&path, &data).unwrap();
                panic!(
                    "{target}: {name} breaks an invariant (saved to {}): {:?}",
                    path.display(),
                    String::from_utf8_lossy(&data)
                );
            }
        }
    }
    results
}

#[test]
fn request_parser_seeds_and_mutations() {
    replay("request_parser", 4000, fuzzing::request_parser);
}

#[test]
fn decision_seeds_and_mutations() {
    replay("decision", 4000, fuzzing::decision);
}

#[test]
fn config_loader_seeds_and_mutations() {
    replay("config_loader", 3000, fuzzing::config_loader);
}

#[test]
fn sse_relay_seeds_and_mutations() {
    let relay = SseRelay::new(Path::new(wasm::PII_REDACT)).unwrap();
    let outcomes = replay("sse_relay", 1500, |data| relay.run(data));
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    // The inputs reach every way a stream can go, and the plugin ran and masked planted words.
    let relayed = count(|o| matches!(o, Outcome::Relayed { .. }));
    let masked = count(|o| matches!(o, Outcome::Relayed { masked: true }));
    let fell_back = count(|o| matches!(o, Outcome::FellBack));
    assert!(relayed > 100 && masked > 10 && fell_back > 10, "{relayed} {masked} {fell_back}");
}
