//! Checksummed and structured numbers: payment cards (Luhn) and US SSNs (IBANs: [`super::iban`]).

#[cfg(test)]
use super::{Kind, Span};
use super::{before, iin, is_word, right_ok};

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

/// Payment cards: 12 to 19 digits with the leading digits and length of a brand
/// ([`super::iin`]), unbroken or in groups (the first of 4+ digits, the others of 1+) split by
/// single spaces or by dashes (one kind per number), passing the Luhn check. (The standalone
/// form of [`card_at`], for tests.)
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
    // One unbroken run of 12-13 digits is a barcode or an id more often than a card (old Visa
    // 13-digit numbers excepted), unless the word `card` comes right before it (`card is
    // 676774064841`: Maestro numbers are that short); EAN/ISBN/UPC numbers are not cards.
    let unbroken_short =
        end - i == n && (n == 12 || n == 13 && digits[0] != b'4') && !card_word_before(b, i);
    let card = (12..=19).contains(&n)
        && groups_ok
        && !unbroken_short
        && !barcode_before(b, i)
        && iin::brand_ok(digits.as_slice())
        && luhn(digits.as_slice())
        && end_ok(b, end);
    if card { Ok(end) } else { Err(end.max(i + 1)) }
}

/// Whether the word `card` comes right before `i`: `card 5038…`, `card is …`, `card: …`,
/// `card=…`, `card no. …`, `card number …`, `card #…`.
fn card_word_before(b: &[u8], i: usize) -> bool {
    let skip = |mut k: usize| {
        while k > 0 && matches!(b[k - 1], b' ' | b':' | b'=' | b'#' | b'"') {
            k -= 1;
        }
        k
    };
    // `w` ends at `k` as a whole word.
    let word_at = |k: usize, w: &[u8]| {
        k >= w.len()
            && b[k - w.len()..k].eq_ignore_ascii_case(w)
            && !(k > w.len() && b[k - w.len() - 1].is_ascii_alphanumeric())
    };
    let mut k = skip(i);
    if let Some(f) = [&b"is"[..], b"no.", b"no", b"number"].iter().find(|f| word_at(k, f)) {
        k = skip(k - f.len());
    }
    word_at(k, b"card")
}

/// Whether `EAN`, `ISBN`, `UPC` or `GTIN` comes right before `i`.
fn barcode_before(b: &[u8], i: usize) -> bool {
    let mut k = i;
    while k > 0 && matches!(b[k - 1], b' ' | b':' | b'-' | b'#') {
        k -= 1;
    }
    let head = &b[k.saturating_sub(6)..k];
    [&b"ean"[..], b"isbn", b"upc", b"gtin", b"ean13"]
        .iter()
        .any(|w| head.len() >= w.len() && head[head.len() - w.len()..].eq_ignore_ascii_case(w))
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
/// one run, or a group of 4+ then groups of 1 to 8, split by one kind of separator).
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
        groups_ok &= (if groups == 1 { 4..=8 } else { 1..=8 }).contains(&(j - g));
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

    use crate::detect::found;

    #[test]
    fn cards_pass_luhn_in_any_grouping() {
        for c in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "3782 822463 10005",
            "3056 930902 5904",
            "2221 0000 0000 0009",
            "6200 0000 0000 0005",
            "6011 0000 0000 0004",
            "3530 1113 3330 0000",
            "2200 0000 0000 0004",
            "4111 11 1111 1111 11",
            "6759 5286 2445 0",
            "2204 6069 4593 9237 4",
            "1946000000000005",
            "1946 0000 0000 0000 05",
        ] {
            assert_eq!(found(cards, &format!("pay with {c}.")), [c]);
        }
        // 12-13 digits in one run: a card only right after the word `card`.
        for t in ["card 501800000009", "Card is 6767000000016 exp 04/31", "card=501800000009"] {
            assert_eq!(found(cards, t).len(), 1, "{t}");
        }
        for t in ["ref 501800000009", "scorecard 501800000009", "card, ref 6767000000016"] {
            assert!(found(cards, t).is_empty(), "{t}");
        }
        for t in [
            "4111 1111 1111 1112",
            "order 1234567890123456",
            "4111 1111-1111 1111",
            "14111111111111111",
            "7111 1111 1111 1114",
        ] {
            assert!(found(cards, t).is_empty(), "{t}");
        }
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
