//! Checksummed and structured numbers: payment cards (Luhn), IBANs (mod-97) and US SSNs.

#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, right_ok};

/// A number may not continue a word or a dotted/dashed token.
fn start_ok(b: &[u8], i: usize) -> bool {
    !before(b, i).is_some_and(|p| is_word(p) || matches!(p, b'-' | b'.' | b'/' | b'+'))
}

/// Nothing word-like may follow, nor a separator that continues the number.
fn end_ok(b: &[u8], end: usize) -> bool {
    right_ok(b, end)
        && !(matches!(b.get(end), Some(b'-' | b'.' | b'/'))
            && b.get(end + 1).is_some_and(u8::is_ascii_digit))
}

/// Payment cards: 13 to 19 digits starting with 2-6, either unbroken or in groups of 4 to 6
/// separated by single spaces or dashes (one kind per number), passing the Luhn check.
/// (The standalone form of [`card_at`], for tests.)
#[cfg(test)]
pub fn cards(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        i = match card_at(b, i) {
            Ok(end) => {
                out.push(Span { start: i, end, kind: Kind::Card });
                end
            }
            Err(next) => next,
        };
    }
}

/// The card that starts at the digit `i`: `Ok(end)`, or `Err(where the search goes on)` (past
/// the rest of the word, or past the digit groups read, so their middle is not tried).
pub fn card_at(b: &[u8], i: usize) -> Result<usize, usize> {
    if !start_ok(b, i) {
        // Inside a word or a dotted/dashed token: skip the rest of it.
        let mut j = i + 1;
        while j < b.len() && is_word(b[j]) {
            j += 1;
        }
        return Err(j);
    }
    let (end, digits, groups_ok) = digit_groups(b, i);
    let n = digits.len();
    let card = (13..=19).contains(&n)
        && groups_ok
        && (b'2'..=b'6').contains(&digits[0])
        && luhn(digits.as_slice())
        && end_ok(b, end);
    if card { Ok(end) } else { Err(end.max(i + 1)) }
}

/// Up to 20 digits, without allocating.
struct Digits {
    buf: [u8; 20],
    len: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::ops::Deref for Digits {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Reads digits in groups from `i`: (end, the digits, whether the grouping looks like a card:
/// one run, or groups of 4 to 6 split by one kind of separator).
fn digit_groups(b: &[u8], i: usize) -> (usize, Digits, bool) {
    let mut digits = Digits { buf: [0; 20], len: 0 };
    let mut sep: Option<u8> = None;
    let (mut groups, mut groups_ok) = (0, true);
    let mut j = i;
    loop {
        let g = j;
        while j < b.len() && b[j].is_ascii_digit() && digits.len < 20 {
            digits.buf[digits.len] = b[j];
            digits.len += 1;
            j += 1;
        }
        groups += 1;
        groups_ok &= (4..=6).contains(&(j - g));
        let next = b.get(j).copied();
        let continues = matches!(next, Some(b' ' | b'-'))
            && sep.is_none_or(|s| Some(s) == next)
            && b.get(j + 1).is_some_and(u8::is_ascii_digit)
            && digits.len < 19;
        if !continues {
            break;
        }
        sep = next;
        j += 1;
    }
    (j, digits, groups == 1 || groups_ok)
}

/// The Luhn checksum over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, d)| {
            let v = u32::from(d - b'0');
            if k % 2 == 1 { if v * 2 > 9 { v * 2 - 9 } else { v * 2 } } else { v }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN lengths of common countries; other country codes accept 15 to 34 characters.
const IBAN_LEN: &[(&[u8; 2], usize)] = &[
    (b"AT", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"CH", 21),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"EE", 20),
    (b"ES", 24),
    (b"FI", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GR", 27),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IS", 26),
    (b"IT", 27),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MT", 31),
    (b"NL", 18),
    (b"NO", 15),
    (b"PL", 28),
    (b"PT", 25),
    (b"RO", 24),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"TR", 26),
    (b"AE", 23),
];

/// IBANs: country code, 2 check digits, then upper-case letters and digits, unbroken or in
/// groups of four separated by single spaces; the length must fit the country and the mod-97
/// checksum must hold. (The standalone form of [`iban_at`], for tests.)
#[cfg(test)]
pub fn ibans(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i + 15 <= b.len() {
        match iban_at(b, i) {
            Some(end) => {
                out.push(Span { start: i, end, kind: Kind::Iban });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// The end of the IBAN that starts at `i` (an upper-case letter at a word start), if one does.
pub fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    let head = b.get(i..i + 15).is_some_and(|h| {
        h[0].is_ascii_uppercase()
            && h[1].is_ascii_uppercase()
            && h[2].is_ascii_digit()
            && h[3].is_ascii_digit()
    });
    if !head || before(b, i).is_some_and(is_word) {
        return None;
    }
    let alnum = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    // Candidate ends (byte offset, characters so far) at each group boundary, longest last. At
    // most 34 characters in groups of four: 9 groups, no allocation.
    let (mut chars, mut n_chars) = ([0u8; 34], 0);
    let (mut ends, mut n_ends) = ([(0usize, 0usize); 9], 0);
    let mut j = i;
    loop {
        let g = j;
        while j < b.len() && alnum(b[j]) && n_chars < 34 {
            chars[n_chars] = b[j];
            n_chars += 1;
            j += 1;
        }
        let len = j - g;
        ends[n_ends] = (j, n_chars);
        n_ends += 1;
        let spaced = b.get(j) == Some(&b' ') && b.get(j + 1).copied().is_some_and(alnum);
        // A grouped IBAN has groups of exactly four, but the last.
        if !spaced || len != 4 || n_chars >= 34 || n_ends == ends.len() {
            break;
        }
        j += 1;
    }
    let want = IBAN_LEN.iter().find(|(cc, _)| cc[..] == b[i..i + 2]).map(|(_, n)| *n);
    ends[..n_ends].iter().rev().find_map(|&(end, n)| {
        let len_ok = want.map_or((15..=34).contains(&n), |w| w == n);
        (len_ok && right_ok(b, end) && mod97(&chars[..n])).then_some(end)
    })
}

/// ISO 13616 check: move the first four characters to the end, letters as 10..35, mod 97 == 1.
fn mod97(s: &[u8]) -> bool {
    let mut r: u32 = 0;
    for &c in s[4..].iter().chain(&s[..4]) {
        r = if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    r == 1
}

/// US SSNs `AAA-GG-SSSS`: area not 000, 666 or 9xx; group not 00; serial not 0000. (The
/// standalone form of [`ssn_at`], for tests.)
#[cfg(test)]
pub fn ssns(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        match ssn_at(b, i) {
            Some(end) => {
                out.push(Span { start: i, end, kind: Kind::Ssn });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// The end of the SSN that starts at `i` (a digit at a word start), if one does.
pub fn ssn_at(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..i + 11)?;
    let shape = s
        .iter()
        .enumerate()
        .all(|(k, c)| if k == 3 || k == 6 { *c == b'-' } else { c.is_ascii_digit() });
    if !shape || !start_ok(b, i) || !end_ok(b, i + 11) {
        return None;
    }
    let valid = &s[..3] != b"000"
        && &s[..3] != b"666"
        && s[0] != b'9'
        && &s[4..6] != b"00"
        && &s[7..] != b"0000";
    valid.then_some(i + 11)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(f: fn(&[u8], &mut Vec<Span>), text: &str) -> Vec<String> {
        let mut v = Vec::new();
        f(text.as_bytes(), &mut v);
        v.iter().map(|s| text[s.start..s.end].to_string()).collect()
    }

    #[test]
    fn cards_pass_luhn_in_any_grouping() {
        for c in
            ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "3782 822463 10005"]
        {
            assert_eq!(found(cards, &format!("pay with {c}.")), [c]);
        }
        for t in [
            "4111 1111 1111 1112",
            "order 1234567890123456",
            "4111 1111-1111 1111",
            "14111111111111111",
        ] {
            assert!(found(cards, t).is_empty(), "{t}");
        }
    }

    #[test]
    fn ibans_are_checksummed() {
        for i in [
            "DE89 3704 0044 0532 0130 00",
            "DE89370400440532013000",
            "GB82 WEST 1234 5698 7654 32",
            "NL91ABNA0417164300",
        ] {
            assert_eq!(found(ibans, &format!("to {i} NOW")), [i]);
        }
        assert!(found(ibans, "DE88 3704 0044 0532 0130 00").is_empty(), "bad checksum");
        assert!(found(ibans, "ISO9001 and AB12CDEFGHIJKLMNOP").is_empty());
    }

    #[test]
    fn ssns_exclude_invalid_ranges() {
        assert_eq!(found(ssns, "ssn 123-45-6789."), ["123-45-6789"]);
        for t in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "1123-45-6789",
            "123-45-6789-1",
        ] {
            assert!(found(ssns, t).is_empty(), "{t}");
        }
    }
}
