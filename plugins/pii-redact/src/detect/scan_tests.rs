//! The one-pass scan against the standalone loop of each detector: the same hits, byte for byte,
//! on many texts built from entities, near misses and punctuation, with and without word lists.

use super::scan::all;
use super::{
    Detectors, Kind, Span, WordList, address, contact, dob, fields, iban, net, numbers, person,
    phone, secrets,
};

/// Every hit of the standalone loops, one detector at a time.
fn standalone(d: &Detectors, text: &str) -> Vec<Span> {
    let b = text.as_bytes();
    let mut v = Vec::new();
    secrets::find(b, &mut v);
    numbers::cards(b, &mut v);
    iban::ibans(b, &mut v);
    numbers::ssns(b, &mut v);
    contact::emails(b, &mut v);
    net::find(b, &mut v);
    phone::phones(b, &mut v);
    address::addresses(b, &mut v);
    dob::dobs(b, &mut v);
    let mut f = Vec::new();
    fields::values(b, &mut f);
    v.extend(f.into_iter().filter(|s| s.kind != Kind::Name || d.auto_names));
    d.deny.find(text, Kind::Custom(0), &mut v);
    d.names.find(text, Kind::Name, &mut v);
    if d.auto_names {
        person::names(b, &mut v);
    }
    v
}

fn key(s: &Span) -> (usize, usize, Kind) {
    (s.start, s.end, s.kind)
}

#[test]
fn one_pass_finds_what_each_loop_finds() {
    let pieces = [
        "jane@example.com",
        "a.b@c.io",
        "@",
        "x@y",
        "+44 20 7946 0958",
        "(555) 123-4567",
        "555-123-4567",
        "4111 1111 1111 1111",
        "4111111111111111",
        "12",
        "1.2.3.4",
        "192.168.1.20",
        "fe80::1",
        "::ffff:192.0.2.1",
        "2001:db8::",
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "123-45-6789",
        "sk-abcdefghij0123456789XYZ",
        "AKIAIOSFODNN7EXAMPLE",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
        "Jane Doe",
        "Hi ",
        "Maria Garcia",
        "221B Baker Street",
        "Hauptstraße 12",
        ", 10115 Berlin",
        "DOB: ",
        "15/03/1985",
        "March 15, 1985",
        "\nname;ssn\n",
        "Ann Lee;",
        "078051120",
        "[10:01] ",
        "keld: ",
        "SSN: ",
        "\"",
        "Dr. ",
        "Name: ",
        "Grant",
        "Park",
        "jane",
        "#deny",
        "deny",
        "Zoë",
        "é",
        " ",
        " ",
        "  ",
        "\n",
        ".",
        ",",
        "-",
        "+",
        "(",
        ")",
        ":",
        "::",
        "/",
        "$",
        "_",
        "tel:",
        "ip:",
        "abc",
        "deadbeef",
        "x",
        "e",
        "s",
        "A",
        "g",
        "0",
        "5",
        "9",
        "00",
        "020",
        "7946",
        "0958",
        "ORD-",
        "v",
        "EMP-123456",
        "<",
        "'",
        "\"",
        "ab12",
    ];
    // Without lists the scan takes its exact-mask path.
    let plain = Detectors {
        enabled: Kind::BUILT_IN.iter().map(|(k, _)| *k).collect(),
        custom_labels: vec!["custom".into()],
        ..Detectors::default()
    };
    let lists = Detectors {
        names: WordList::new(&["Jane Doe".into(), "jane".into(), "Zoë".into()]),
        deny: WordList::new(&["#deny".into(), "deny".into(), "-x".into(), "é".into()]),
        enabled: plain.enabled.clone(),
        auto_names: true,
        custom_labels: plain.custom_labels.clone(),
        ..Detectors::default()
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut checked = 0;
    for round in 0..40_000 {
        let d = if round % 2 == 0 { &lists } else { &plain };
        let mut text = String::new();
        for _ in 0..12 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
        }
        let mut fast = Vec::new();
        all(d, text.as_bytes(), &mut fast);
        let mut slow = standalone(d, &text);
        fast.sort_by_key(key);
        slow.sort_by_key(key);
        assert_eq!(fast, slow, "{text:?}");
        checked += fast.len();
    }
    assert!(checked > 10_000, "the texts hold entities: {checked}");
}
