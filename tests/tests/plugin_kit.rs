//! The plugin kit (`switchyard plugin`, `switchyard::kit`): the fixture harness replays the
//! shared fixtures against the built-in Rust components (the template, the internal-ids example,
//! pii-redact) in the real host, reports a case that does not match, and `sign` and `push` work
//! against a proxy started here. The JavaScript and Python builds run in plugin_kit_languages.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use switchyard::kit::{fixture, push, replay, sign};
use switchyard_tests::harness::{self, Proxy};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::wasm;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Replays every case of `fixtures` against `component`; panics with each problem.
async fn replay_all(component: &str, fixtures: &str) -> usize {
    let files = fixture::load(&root().join(fixtures)).expect("fixtures");
    let results = replay::run(Path::new(component), &files).await.expect("plugin loads");
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{}: {:?}", r.case, r.problems))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    results.len()
}

#[tokio::test]
async fn the_template_fixtures_pass_against_the_rust_template() {
    let n = replay_all(wasm::TEMPLATE, "plugin-sdk/templates/fixtures").await;
    assert_eq!(n, 3);
}

#[tokio::test]
async fn the_internal_ids_fixtures_pass_against_the_rust_example() {
    let n = replay_all(wasm::INTERNAL_IDS, "plugin-sdk/examples/internal-ids/fixtures").await;
    assert_eq!(n, 6);
}

#[tokio::test]
async fn pii_redact_passes_its_fixtures() {
    replay_all(wasm::PII_REDACT, "plugins/pii-redact/fixtures").await;
}

#[tokio::test]
async fn tier_router_passes_its_fixtures() {
    let n = replay_all(wasm::TIER_ROUTER, "plugins/tier-router/fixtures").await;
    assert_eq!(n, 12);
}

#[tokio::test]
async fn cache_policy_passes_its_fixtures() {
    let n = replay_all(wasm::CACHE_POLICY, "plugins/cache-policy/fixtures").await;
    assert_eq!(n, 7);
}

#[tokio::test]
async fn a_case_that_does_not_match_is_reported_with_what_differs() {
    let mut files =
        fixture::load(&root().join("plugin-sdk/examples/internal-ids/fixtures")).expect("fixtures");
    let case = &mut files[0].1.cases[0];
    case.expect.messages.as_mut().expect("messages")[1].push_str(" (changed)");
    case.stream = Some(
        serde_json::from_str(r#"{"events": ["<EMPLOYEE_1>"], "expect": {"0": "x"}}"#).unwrap(),
    );
    files[0].1.cases.truncate(1);
    let results = replay::run(Path::new(wasm::INTERNAL_IDS), &files).await.expect("loads");
    let problems = &results[0].problems;
    assert!(problems.iter().any(|p| p.starts_with("messages: expected")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("stream text") && p.contains("EMP-123456")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_file_that_does_not_load_is_not_tested() {
    let files = fixture::load(&root().join("plugin-sdk/templates/fixtures")).expect("fixtures");
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"not a component").expect("write");
    let err = replay::run(&bogus, &files).await.expect_err("not a component");
    assert!(err.contains("does not compile"), "{err}");
}

#[tokio::test]
async fn a_plugin_that_traps_fails_every_case_it_should_pass() {
    let files = fixture::load(&root().join("plugin-sdk/templates/fixtures")).expect("fixtures");
    let results = replay::run(Path::new(wasm::TRAP), &files).await.expect("passes its probe");
    assert!(results.iter().all(|r| !r.passed()), "{results:?}");
    assert!(results[0].problems[0].contains("Refuse"), "{:?}", results[0].problems);
}

#[tokio::test]
async fn sign_writes_a_signature_the_proxy_accepts_and_push_installs_it() {
    let (private, public) = sign::keygen().expect("keygen");
    let work = tempfile::tempdir().expect("tempdir");
    let key_file = work.path().join("key");
    std::fs::write(&key_file, private).expect("write key");
    let key = sign::read_key(&key_file).expect("read key");

    // The proxy runs the template signed as version 1 and trusts only this key.
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("t.wasm");
    std::fs::copy(wasm::TEMPLATE, &first).expect("copy");
    sign::sign_file(&key, "t", 1, &first).expect("sign");
    let upstream = MockUpstream::start("local", Behavior::Normal).await;
    let token_env = "SY_KIT_ADMIN_TOKEN";
    let config = harness::config(&[("local", &upstream.base_url(), "")], "default = \"local\"")
        .replace("[admin]\n", &format!("[admin]\ntoken_env = \"{token_env}\"\n"));
    let plugins = format!(
        "[plugins]\ndir = {:?}\nwatch = false\ntrusted_keys = [\"{public}\"]\n\
         [[plugin]]\nname = \"t\"\nfile = \"t.wasm\"\nfailure = \"closed\"\ntimeout_ms = 1000\n",
        dir.path().display().to_string()
    );
    let env = HashMap::from([(token_env.to_string(), "kit-token".to_string())]);
    let proxy = Proxy::start_with_env(&format!("{config}\n{plugins}"), env).await;
    let admin = proxy.admin_url("");
    let admin = admin.trim_end_matches('/');

    // Version 2 of other bytes (internal-ids), signed: the proxy takes it.
    let next = work.path().join("t.wasm");
    std::fs::copy(wasm::INTERNAL_IDS, &next).expect("copy");
    let sig = sign::sign_file(&key, "t", 2, &next).expect("sign");
    let bytes = std::fs::read(&next).expect("read");
    let sig = std::fs::read(sig).expect("read sig");
    let pushed =
        push::push(admin, "kit-token", "t", bytes.clone(), Some(&sig), None).await.expect("push");
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    assert_eq!(std::fs::read(&first).expect("read"), bytes);

    // Unsigned, a wrong token, or signed by another key: refused, nothing changes.
    let pushed =
        push::push(admin, "kit-token", "t", bytes.clone(), None, None).await.expect("push");
    assert_eq!(pushed.status, 422, "{}", pushed.body);
    let pushed =
        push::push(admin, "wrong", "t", bytes.clone(), Some(&sig), None).await.expect("push");
    assert_eq!(pushed.status, 401, "{}", pushed.body);
    let other = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    let forged = sign::signature_doc(&other, "t", 3, &bytes);
    let pushed = push::push(admin, "kit-token", "t", bytes, Some(forged.as_bytes()), None)
        .await
        .expect("push");
    assert_eq!(pushed.status, 422, "{}", pushed.body);
    assert!(pushed.body.contains("signature"), "{}", pushed.body);
    proxy.stop().await;
}

/// `push` to an admin listener behind a TLS terminator (here one in the test that forwards each
/// connection's bytes to the proxy's plain admin listener): with the terminator's CA trusted
/// (`--ca-file`) the plugin is installed; without it the certificate is refused and nothing is
/// sent.
#[tokio::test]
async fn push_goes_over_https_to_a_terminated_admin_listener_with_its_ca_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("t.wasm");
    std::fs::copy(wasm::TEMPLATE, &live).expect("copy");
    let upstream = MockUpstream::start("local", Behavior::Normal).await;
    let token_env = "SY_KIT_TLS_ADMIN_TOKEN";
    let config = harness::config(&[("local", &upstream.base_url(), "")], "default = \"local\"")
        .replace("[admin]\n", &format!("[admin]\ntoken_env = \"{token_env}\"\n"));
    let plugins = format!(
        "[plugins]\ndir = {:?}\nwatch = false\n\
         [[plugin]]\nname = \"t\"\nfile = \"t.wasm\"\nfailure = \"closed\"\ntimeout_ms = 1000\n",
        dir.path().display().to_string()
    );
    let env = HashMap::from([(token_env.to_string(), "kit-token".to_string())]);
    let proxy = Proxy::start_with_env(&format!("{config}\n{plugins}"), env).await;
    let admin: std::net::SocketAddr =
        proxy.admin_url("").trim_start_matches("http://").trim_end_matches('/').parse().unwrap();

    let certs = switchyard_tests::tls::generate();
    let acceptor = certs.acceptor();
    let terminator = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let https = format!("https://localhost:{}", terminator.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((client, _)) = terminator.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else { return };
                let mut plain = tokio::net::TcpStream::connect(admin).await.expect("admin");
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &certs.ca_pem).expect("write ca");
    let bytes = std::fs::read(wasm::INTERNAL_IDS).expect("read");

    let untrusted = push::push(&https, "kit-token", "t", bytes.clone(), None, None).await;
    let error = untrusted.expect_err("an unknown issuer is refused");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(std::fs::read(&live).expect("read"), std::fs::read(wasm::TEMPLATE).expect("read"));

    let pushed = push::push(&https, "kit-token", "t", bytes.clone(), None, Some(&ca_file))
        .await
        .expect("push");
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    assert_eq!(std::fs::read(&live).expect("read"), bytes, "installed");
    proxy.stop().await;
}

#[test]
fn new_scaffolds_a_plugin_in_each_language_and_refuses_to_overwrite() {
    use switchyard::kit::manifest::{Language, Manifest};
    use switchyard::kit::scaffold;
    let work = tempfile::tempdir().expect("tempdir");
    let sdk = root().join("plugin-sdk");
    for (lang, source) in
        [(Language::Js, "plugin.js"), (Language::Python, "app.py"), (Language::Rust, "src/lib.rs")]
    {
        let dir = work.path().join(format!("{lang:?}"));
        scaffold::new(lang, "my-guard", &dir, &sdk).expect("new");
        let manifest = Manifest::load(&dir).expect("manifest");
        assert_eq!(
            (manifest.name.as_str(), manifest.language, manifest.version),
            ("my-guard", lang, 1)
        );
        assert!(std::fs::read_to_string(dir.join(source)).expect("source").contains("my-guard"));
        let wit = std::fs::read_to_string(dir.join("wit/plugin.wit")).expect("wit");
        let contract = std::fs::read_to_string(sdk.join("wit/plugin.wit")).expect("sdk wit");
        assert_eq!(wit, contract, "the scaffold carries the SDK's contract");
        assert!(dir.join("fixtures/template.json").exists());
        assert_eq!(manifest.artifact(&dir), dir.join("build/my_guard.wasm"));
        let again = scaffold::new(lang, "my-guard", &dir, &sdk).expect_err("exists");
        assert!(again.contains("already exists"), "{again}");
    }
    let cargo = std::fs::read_to_string(work.path().join("Rust/Cargo.toml")).expect("Cargo.toml");
    assert!(
        cargo.contains(&format!("path = \"{}\"", sdk.canonicalize().unwrap().display())),
        "{cargo}"
    );
    for bad in ["", "My-Guard", "9lives", "a b", "../x"] {
        let err = scaffold::new(Language::Js, bad, &work.path().join("bad"), &sdk).expect_err(bad);
        assert!(err.contains("plugin name"), "{err}");
    }
}
