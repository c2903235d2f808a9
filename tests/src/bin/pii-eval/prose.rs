//! The unlabelled side of the corpus: near-misses that look like PII but are not (order numbers,
//! references, non-Luhn digit runs, dates, versions, bad checksums, words with secret-like
//! prefixes), and the prose that messages are made of.

use fastrand::Rng;

use crate::corpus::{Piece, TYPES, UPPER_DIGITS, alnum, digits, entity, iban, luhn_complete, pick};

/// Something that looks like PII but is not: the plugin must leave it alone.
pub fn near_miss(rng: &mut Rng) -> String {
    match rng.u8(0..28) {
        // (`0xxxx-xxxxx` is a German landline format, so references here start with 1-9.)
        20 => format!("ref {}-{}", rng.u32(10000..100000), digits(rng, 5)),
        21 => format!("room {}-{}", rng.u32(1000..2000), rng.u32(2000..3000)),
        22 => format!("{},{:03},{:03}", rng.u32(1..999), rng.u32(0..1000), rng.u32(0..1000)),
        23 => format!("ticket 20{:02} {} {}", rng.u8(10..30), digits(rng, 4), digits(rng, 4)),
        24 => format!("ZIP {}-{}", digits(rng, 5), digits(rng, 4)),
        25 => format!("ext. {}", digits(rng, 4)),
        26 => format!("{}.{}", rng.u8(0..10), digits(rng, 8)),
        27 => {
            pick(rng, &["call 911", "+5 points", "top-10", "eyJust kidding", "xoxo", "ghp_", "sk-"])
                .to_string()
        }
        0 => format!("order #{}", digits(rng, 9)),
        1 => format!("ORD-2024-{}", digits(rng, 6)),
        2 => non_luhn(rng),
        3 => format!("{}-{:02}-{:02}", rng.u32(1990..2030), rng.u32(1..13), rng.u32(1..29)),
        4 => format!("{:02}/{:02}/{}", rng.u32(1..29), rng.u32(1..13), rng.u32(1990..2030)),
        5 => format!("v{}.{}.{}", rng.u8(0..20), rng.u8(0..50), rng.u8(0..100)),
        6 => format!("version {}.{}.{}", rng.u8(0..20), rng.u8(0..50), rng.u8(0..100)),
        7 => format!(
            "{}.{}.{}.{}.{}",
            rng.u8(0..10),
            rng.u8(0..10),
            rng.u8(0..10),
            rng.u8(0..10),
            rng.u8(0..10)
        ),
        8 => iban(rng, false),
        9 => format!(
            "{}-{:02}-{:04}",
            pick(rng, &["000", "666", "900", "987"]),
            rng.u32(1..100),
            rng.u32(1..10000)
        ),
        10 => pick(
            rng,
            &["task-force", "risk-based pricing", "sk-learn", "desk-bound", "ask-me-anything"],
        )
        .to_string(),
        11 => format!("{:02}:{:02}:{:02}", rng.u8(0..24), rng.u8(0..60), rng.u8(0..60)),
        12 => format!("${}.{:02}", rng.u32(1..99999), rng.u8(0..100)),
        13 => format!(
            "{}.{}.{}.{}",
            rng.u32(256..999),
            rng.u8(0..255),
            rng.u8(0..255),
            rng.u8(0..255)
        ),
        14 => format!(
            "ISBN 978-{}-{}-{}-{}",
            rng.u8(0..10),
            digits(rng, 2),
            digits(rng, 6),
            rng.u8(0..10)
        ),
        15 => format!("{:x}", rng.u64(..)) + &format!("{:x}", rng.u64(..)),
        16 => format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            rng.u32(..),
            rng.u16(..),
            rng.u16(..0xfff),
            rng.u16(..0xfff),
            rng.u64(..0xffff_ffff_ffff)
        ),
        17 => format!("localhost:{}", rng.u16(1024..65535)),
        18 => format!("{} {} {}", digits(rng, 3), digits(rng, 3), digits(rng, 3)),
        _ => format!("AKIA{}", alnum(rng, 8, UPPER_DIGITS)),
    }
}

fn non_luhn(rng: &mut Rng) -> String {
    let n = luhn_complete(&format!("4{}", digits(rng, 14)));
    let last = n.as_bytes()[15] - b'0';
    let bad = format!("{}{}", &n[..15], (last + 1 + rng.u8(0..9)) % 10);
    if rng.bool() {
        bad
    } else {
        format!("{} {} {} {}", &bad[..4], &bad[4..8], &bad[8..12], &bad[12..])
    }
}

/// Prose around the pieces: how users actually write.
const LEADS: &[&str] = &[
    "Hi, can you help me draft a reply?",
    "Please summarise the ticket below.",
    "My colleague asked me to check this:",
    "Here is the customer record we discussed.",
    "Translate this into French, keeping the numbers as they are.",
    "Quick question about our deployment.",
];
const BEFORE: &[&str] = &[
    "The contact is",
    "Reach out via",
    "Use",
    "It was sent from",
    "Details:",
    "Ref",
    "see",
    "Note that",
    "(",
    "value =",
    "on",
];
const AFTER: &[&str] =
    &[".", ", thanks.", " if needed.", ")", "; also", " - see above.", "!", "", ".\n- next:"];
/// Right around a piece, with no space: quotes, markdown, brackets.
const OPEN: &[&str] = &["", "", "", "`", "\"", "**", "(", "<", "'", "tel:", "\n"];
const CLOSE: &[&str] = &["", "", "", "`", "\"", "**", ")", ">", "'", ",", ";", ":", "\n"];

/// A message of 1 to 5 pieces (entities with probability `p_entity`), in prose.
pub fn message(rng: &mut Rng, p_entity: f64) -> Vec<Piece> {
    let mut pieces = vec![Piece { text: format!("{} ", pick(rng, LEADS)), label: None }];
    for _ in 0..rng.usize(1..=5) {
        let open = pick(rng, OPEN);
        pieces.push(Piece { text: format!("{} {open}", pick(rng, BEFORE)), label: None });
        if rng.f64() < p_entity {
            let label = TYPES[rng.usize(0..TYPES.len())];
            pieces.push(Piece { text: entity(rng, label), label: Some(label) });
        } else {
            pieces.push(Piece { text: near_miss(rng), label: None });
        }
        let close = pick(rng, CLOSE);
        pieces.push(Piece { text: format!("{close}{} ", pick(rng, AFTER)), label: None });
    }
    pieces
}
