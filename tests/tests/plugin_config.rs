//! The `[plugins]` / `[[plugin]]` config: unknown keys are refused, and `validate()` reports every
//! problem at once with its key path.

use switchyard::plugin::config::validate;
use switchyard::plugin::{FailurePolicy, PluginEntry, PluginsSection};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    plugins: PluginsSection,
    #[serde(default)]
    plugin: Vec<PluginEntry>,
}

#[test]
fn a_good_config_parses_and_validates() {
    let doc: Doc = toml::from_str(
        r#"
        [plugins]
        dir = "plugins"
        [[plugin]]
        name = "pii-redact"
        file = "pii_redact.wasm"
        failure = "closed"
        config = { mode = "pseudonymize", nested = { list = [1, 2] } }
        [[plugin]]
        name = "router"
        file = "router.wasm"
        failure = "open"
        timeout_ms = 20
        "#,
    )
    .unwrap();
    assert!(validate(&doc.plugins, &doc.plugin).is_empty());
    assert_eq!(doc.plugin[0].failure, FailurePolicy::Closed);
    assert_eq!(doc.plugin[0].config_json(), r#"{"mode":"pseudonymize","nested":{"list":[1,2]}}"#);
    assert_eq!(doc.plugin[1].config_json(), "{}");
    assert!(!doc.plugins.engine_limits().perf_map, "the perf map is off unless asked for");
}

#[test]
fn perf_map_reaches_the_engine() {
    let doc: Doc = toml::from_str("[plugins]\ndir = \"p\"\nperf_map = true\n").unwrap();
    assert!(validate(&doc.plugins, &doc.plugin).is_empty());
    assert!(doc.plugins.engine_limits().perf_map);
}

#[test]
fn unknown_keys_are_refused() {
    let err = toml::from_str::<Doc>("[plugins]\ndir = \"p\"\n[[plugin]]\nname = \"a\"\nfile = \"a.wasm\"\nfailure = \"open\"\nfailur = \"x\"\n")
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("unknown field `failur`"), "{err}");
    let err = toml::from_str::<Doc>("[plugins]\ndir = \"p\"\n[[plugin]]\nname = \"a\"\nfile = \"a.wasm\"\nfailure = \"maybe\"\n")
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("unknown variant `maybe`"), "{err}");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let mut section = PluginsSection::new("plugins");
    section.trusted_keys = vec!["not-base64!".into()];
    let mut a = PluginEntry::new("Bad Name", "../escape.wasm", FailurePolicy::Open);
    a.timeout_ms = 0;
    let b = PluginEntry::new("dup", "x.txt", FailurePolicy::Open);
    let mut c = PluginEntry::new("dup", "c.wasm", FailurePolicy::Closed);
    c.memory_mib = Some(100_000);
    let problems: Vec<String> =
        validate(&section, &[a, b, c]).iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "plugins.trusted_keys[0]: not base64: Invalid symbol 45, offset 3.",
            "plugin[0].name: must be 1-64 chars of a-z, 0-9, '-' or '_'",
            "plugin[0].file: must be a relative path inside plugins.dir (no '..')",
            "plugin[0].timeout_ms: must be between 1 and 1000",
            "plugin[1].file: must end in .wasm",
            "plugin[2].name: is used by an earlier plugin",
            "plugin[2].memory_mib: must be at least 1 and at most plugins.max_memory_mib",
        ]
    );
}

#[test]
fn warm_pool_settings_out_of_range_are_reported() {
    let mut section = PluginsSection::new("plugins");
    section.resident_instances = 20_001;
    section.keep_resident_kib = (section.max_memory_mib << 10) + 1;
    let problems: Vec<String> = validate(&section, &[]).iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "plugins.resident_instances: must be at most 20000",
            "plugins.keep_resident_kib: must be at most plugins.max_memory_mib × 1024",
        ]
    );
}
