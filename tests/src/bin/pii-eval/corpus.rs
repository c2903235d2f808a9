//! The labelled side of the PII evaluation's corpus: the configured lists, and seeded generators
//! of entities in many formats per type (near-misses and prose are in `prose.rs`).

use fastrand::Rng;

/// Person names the plugin is configured with (and the generator draws from).
pub const NAMES: &[&str] = &[
    "Jane Doe",
    "John Smith",
    "Maria Garcia",
    "Wei Zhang",
    "Aisha Khan",
    "Lars Nilsson",
    "Fatima Ali",
    "Olivia Brown",
    "Mateo Rossi",
    "Yuki Tanaka",
];
/// Deny-words the plugin is configured with (type `custom`).
pub const DENY: &[&str] = &["Project Bluebird", "Falcon-X", "codename nightjar"];
/// The custom pattern (type `employee`).
pub const EMPLOYEE_PATTERN: &str = r"\bEMP-\d{6}\b";

/// The entity types the evaluation scores, as the plugin labels them.
pub const TYPES: &[&str] =
    &["email", "phone", "card", "iban", "ssn", "ip", "secret", "name", "custom", "employee"];

/// One piece of a message: prose, a labelled entity, or a near-miss (label `None`).
pub struct Piece {
    pub text: String,
    pub label: Option<&'static str>,
}

pub fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.u8(0..10))).collect()
}

pub fn alnum(rng: &mut Rng, n: usize, set: &[u8]) -> String {
    (0..n).map(|_| char::from(set[rng.usize(0..set.len())])).collect()
}

pub const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(0..from.len())]
}

/// A labelled entity of `label`, in one of that type's formats.
pub fn entity(rng: &mut Rng, label: &'static str) -> String {
    match label {
        "email" => email(rng),
        "phone" => phone(rng),
        "card" => card(rng),
        "iban" => iban(rng, true),
        "ssn" => format!("{:03}-{:02}-{:04}", ssn_area(rng), rng.u32(1..100), rng.u32(1..10000)),
        "ip" => ip(rng),
        "secret" => secret(rng),
        "name" => pick(rng, NAMES).to_string(),
        "custom" => pick(rng, DENY).to_string(),
        _ => format!("EMP-{}", digits(rng, 6)),
    }
}

fn email(rng: &mut Rng) -> String {
    let first =
        pick(rng, &["jane", "j.doe", "bob_smith", "m.garcia92", "support", "Anna.Lee", "x"]);
    let tag = if rng.u8(0..4) == 0 { "+news" } else { "" };
    let domain =
        pick(rng, &["example.com", "mail.corp.co.uk", "uni-berlin.de", "EXAMPLE.ORG", "a.io"]);
    format!("{first}{tag}{}@{domain}", if rng.bool() { digits(rng, 2) } else { String::new() })
}

fn phone(rng: &mut Rng) -> String {
    let (a, b, c) = (rng.u32(201..999), rng.u32(200..999), digits(rng, 4));
    match rng.u8(0..11) {
        0 => format!("({a}) {b}-{c}"),
        1 => format!("{a}-{b}-{c}"),
        2 => format!("{a}.{b}.{c}"),
        3 => format!("+1 {a} {b} {c}"),
        4 => format!("+1 ({a}) {b}-{c}"),
        5 => format!("1-800-{b}-{c}"),
        // UK subscriber numbers never start with 0.
        6 => format!("020 {} {}", rng.u32(1000..10000), c),
        7 => format!("+44 20 {} {}", rng.u32(1000..10000), c),
        8 => format!("+49 30 {}", digits(rng, 8)),
        9 => format!(
            "+33 1 {} {} {} {}",
            digits(rng, 2),
            digits(rng, 2),
            digits(rng, 2),
            digits(rng, 2)
        ),
        _ => format!("+1{a}{b}{c}"),
    }
}

pub fn luhn_complete(body: &str) -> String {
    for check in 0..10u8 {
        let s = format!("{body}{check}");
        let sum: u32 = s
            .bytes()
            .rev()
            .enumerate()
            .map(|(k, d)| {
                let v = u32::from(d - b'0');
                if k % 2 == 1 { if v * 2 > 9 { v * 2 - 9 } else { v * 2 } } else { v }
            })
            .sum();
        if sum.is_multiple_of(10) {
            return s;
        }
    }
    body.to_string()
}

fn card(rng: &mut Rng) -> String {
    let (prefix, len) = match rng.u8(0..4) {
        0 => ("4", 16),
        1 => (pick(rng, &["51", "52", "55"]), 16),
        2 => (pick(rng, &["34", "37"]), 15),
        _ => ("6011", 16),
    };
    let n = luhn_complete(&format!("{prefix}{}", digits(rng, len - prefix.len() - 1)));
    let groups: Vec<&str> = if len == 15 {
        vec![&n[..4], &n[4..10], &n[10..]]
    } else {
        vec![&n[..4], &n[4..8], &n[8..12], &n[12..]]
    };
    match rng.u8(0..3) {
        0 => n.clone(),
        1 => groups.join(" "),
        _ => groups.join("-"),
    }
}

/// An IBAN with a valid (or, `valid == false`, a wrong) checksum, grouped or compact.
pub fn iban(rng: &mut Rng, valid: bool) -> String {
    let (cc, bban) = match rng.u8(0..5) {
        0 => ("DE", digits(rng, 18)),
        1 => ("GB", format!("{}{}", alnum(rng, 4, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"), digits(rng, 14))),
        2 => ("FR", digits(rng, 23)),
        3 => ("NL", format!("{}{}", alnum(rng, 4, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"), digits(rng, 10))),
        _ => ("ES", digits(rng, 20)),
    };
    let numeric: String = format!("{bban}{cc}00")
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                c.to_string()
            } else {
                (c as u32 - 'A' as u32 + 10).to_string()
            }
        })
        .collect();
    let r = numeric.bytes().fold(0u32, |r, d| (r * 10 + u32::from(d - b'0')) % 97);
    let mut check = 98 - r;
    if !valid {
        check = (check + 1 + rng.u32(0..90)) % 97 + 2; // any other value in 2..=98
        if check == 98 - r {
            check = if check == 98 { 2 } else { check + 1 };
        }
    }
    let compact = format!("{cc}{check:02}{bban}");
    if rng.bool() {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        compact
    }
}

fn ssn_area(rng: &mut Rng) -> u32 {
    loop {
        let a = rng.u32(1..900);
        if a != 666 {
            return a;
        }
    }
}

fn ip(rng: &mut Rng) -> String {
    let hex = |rng: &mut Rng| format!("{:x}", rng.u16(1..=0xffff));
    match rng.u8(0..4) {
        0 | 1 => format!(
            "{}.{}.{}.{}",
            rng.u8(1..=255),
            rng.u8(0..=255),
            rng.u8(0..=255),
            rng.u8(1..=254)
        ),
        2 => (0..8).map(|_| hex(rng)).collect::<Vec<_>>().join(":"),
        _ => match rng.u8(0..3) {
            0 => format!("2001:db8::{}:{}", hex(rng), hex(rng)),
            1 => format!("fe80::{}", hex(rng)),
            _ => format!("::ffff:10.{}.{}.{}", rng.u8(0..=255), rng.u8(0..=255), rng.u8(1..=254)),
        },
    }
}

fn secret(rng: &mut Rng) -> String {
    match rng.u8(0..8) {
        0 => format!("sk-{}", alnum(rng, 48, ALNUM)),
        1 => format!("sk-proj-{}", alnum(rng, 64, B64URL).replace("--", "-a")),
        2 => format!("{}{}", pick(rng, &["AKIA", "ASIA"]), alnum(rng, 16, UPPER_DIGITS)),
        3 => format!(
            "{}{}",
            pick(rng, &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
            alnum(rng, 36, ALNUM)
        ),
        4 => format!("github_pat_{}_{}", alnum(rng, 22, ALNUM), alnum(rng, 59, ALNUM)),
        5 => format!(
            "xox{}-{}-{}",
            pick(rng, &["a", "b", "p", "r", "s"]),
            digits(rng, 12),
            alnum(rng, 24, ALNUM)
        ),
        6 => format!(
            "eyJ{}.eyJ{}.{}",
            alnum(rng, 30, B64URL),
            alnum(rng, 40, B64URL),
            alnum(rng, 43, B64URL)
        ),
        _ => format!(
            "-----BEGIN {}PRIVATE KEY-----\n{}\n{}\n-----END {}PRIVATE KEY-----",
            if rng.bool() { "RSA " } else { "" },
            alnum(rng, 64, ALNUM),
            alnum(rng, 40, ALNUM),
            ""
        ),
    }
}
