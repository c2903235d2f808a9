//! IBANs: country code, check digits and account, by country length and the mod-97 checksum.

#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, right_ok};

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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::detect::found;

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
}
