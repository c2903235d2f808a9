//! IBANs: country code, check digits and account, by country length and the mod-97 checksum.

use super::data::iban::FORMATS;
#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, right_ok};

/// IBANs: a country of the IBAN registry ([`super::data::iban`]), 2 check digits, then the
/// country's BBAN (its length, and digits and letters where the registry says), in any case,
/// unbroken or split by single spaces anywhere; the mod-97 checksum must hold. (The standalone
/// form of [`iban_at`], for tests.)
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

/// The end of the IBAN that starts at `i` (a letter at a word start), if one does.
pub fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    let head = b.get(i..i + 4)?;
    if !(head[0].is_ascii_alphabetic()
        && head[1].is_ascii_alphabetic()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
        || before(b, i).is_some_and(is_word)
    {
        return None;
    }
    let cc = [head[0].to_ascii_uppercase(), head[1].to_ascii_uppercase()];
    let &(_, len, classes) = FORMATS.iter().find(|(c, _, _)| **c == cc)?;
    let len = usize::from(len);
    let mut chars = [0u8; 34];
    let (mut n, mut j) = (0, i);
    while n < len {
        match b.get(j) {
            Some(c) if c.is_ascii_alphanumeric() => {
                chars[n] = c.to_ascii_uppercase();
                n += 1;
                j += 1;
            }
            // One space between groups of any size, not before the end.
            Some(b' ') if n >= 2 && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric) => j += 1,
            _ => return None,
        }
    }
    let shape = chars[4..len].iter().zip(classes.bytes()).all(|(c, k)| match k {
        b'n' => c.is_ascii_digit(),
        b'a' => c.is_ascii_uppercase(),
        _ => true,
    });
    (shape && right_ok(b, j) && mod97(&chars[..len])).then_some(j)
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
            "de89 3704 0044 0532 0130 00",
            "De89370400440532013000",
            "FR14 20041 01005 0500013M026 06",
            "gb82west12345698765432",
        ] {
            assert_eq!(found(ibans, &format!("to {i} NOW")), [i]);
        }
        assert!(found(ibans, "DE88 3704 0044 0532 0130 00").is_empty(), "bad checksum");
        assert!(found(ibans, "ISO9001 and AB12CDEFGHIJKLMNOP").is_empty());
    }
}
