//! Dates of birth: a date (`15/03/1985`, `1985-03-15`, `15.03.1985`, `15 March 1985`,
//! `March 15, 1985`) right after a cue (`DOB`, `date of birth`, `born`, `birthday`, `geb.`,
//! `né le`, ...). Other dates (timestamps, log dates) are not personal data and are left alone.

use super::index::ByByte;
#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, right_ok};

/// Every date of birth in `b` (the standalone form of [`dob_at`], for tests).
#[cfg(test)]
pub fn dobs(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        match dob_at(b, i) {
            Some(end) => {
                out.push(Span { start: i, end, kind: Kind::Dob });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// The date of birth that starts at `i` (a digit or a capital at a word start): its end.
pub fn dob_at(b: &[u8], i: usize) -> Option<usize> {
    let c = *b.get(i)?;
    if !(c.is_ascii_digit() || c.is_ascii_uppercase()) || before(b, i).is_some_and(is_word) {
        return None;
    }
    // A capital starts a date only as a month (`March 15, 1985`): a look at three bytes, before
    // the cue, which fails sooner than a date at most other words.
    if c.is_ascii_uppercase() && !month_start(b, i) {
        return None;
    }
    if !cue_before(b, i) {
        return None;
    }
    date_len(b, i)
}

/// The end of the date that starts at `i`, cue or not.
pub fn date_len(b: &[u8], i: usize) -> Option<usize> {
    let c = *b.get(i)?;
    let end = if c.is_ascii_digit() {
        numeric(b, i).or_else(|| day_month(b, i)).or_else(|| day_mon_year(b, i))
    } else {
        month_day(b, i)
    }?;
    right_ok(b, end).then_some(end)
}

/// `06-Jan-1981`, `19-Apr-1947`, `8 Jan 46`.
fn day_mon_year(b: &[u8], i: usize) -> Option<usize> {
    let (d, j) = digits(b, i, 1, 2)?;
    let sep = *b.get(j)?;
    if !(1..=31).contains(&d) || !matches!(sep, b'-' | b'/' | b' ') {
        return None;
    }
    let k = month(b, j + 1)?;
    if b.get(k) != Some(&sep) {
        return None;
    }
    let (_, end) = digits(b, k + 1, 2, 4)?;
    (end - k - 1 != 3).then_some(end)
}

/// A run of 1 to `max` digits at `j`: (value, end).
fn digits(b: &[u8], j: usize, min: usize, max: usize) -> Option<(u32, usize)> {
    let n = b.get(j..)?.iter().take(max + 1).take_while(|c| c.is_ascii_digit()).count();
    if n < min || n > max {
        return None;
    }
    Some((b[j..j + n].iter().fold(0, |v, c| v * 10 + u32::from(c - b'0')), j + n))
}

/// `15/03/1985`, `03-15-1985`, `15.03.85`, `1985-03-15`.
fn numeric(b: &[u8], i: usize) -> Option<usize> {
    let (a, j) = digits(b, i, 1, 4)?;
    let sep = *b.get(j)?;
    if !matches!(sep, b'/' | b'-' | b'.') {
        return None;
    }
    let (m, k) = digits(b, j + 1, 1, 2)?;
    if b.get(k) != Some(&sep) {
        return None;
    }
    let (c, end) = digits(b, k + 1, 2, 4)?;
    let ok = if j - i == 4 {
        (1..=12).contains(&m) && (1..=31).contains(&c) && end - k - 1 <= 2
    } else {
        (1..=31).contains(&a) && (1..=31).contains(&m) && (a <= 12 || m <= 12) && end - k - 1 != 3
    };
    ok.then_some(end)
}

const MONTHS: &[&[u8]] = &[
    b"january",
    b"february",
    b"march",
    b"april",
    b"may",
    b"june",
    b"july",
    b"august",
    b"september",
    b"october",
    b"november",
    b"december",
    b"jan",
    b"feb",
    b"mar",
    b"apr",
    b"jun",
    b"jul",
    b"aug",
    b"sep",
    b"sept",
    b"oct",
    b"nov",
    b"dec",
];

/// Whether one of the twelve 3-letter month abbreviations starts at `j` (either case): every
/// month name does. The scan asks it at every capital, so it compares one word: the three
/// bytes lower-cased by setting bit 5, which turns only the upper-case letters into these
/// (lower-case) ones.
#[inline]
pub(super) fn month_start(b: &[u8], j: usize) -> bool {
    const fn key(m: &[u8; 3]) -> u32 {
        u32::from_le_bytes([m[0], m[1], m[2], 0])
    }
    const FIRSTS: [u32; 12] = [
        key(b"jan"),
        key(b"feb"),
        key(b"mar"),
        key(b"apr"),
        key(b"may"),
        key(b"jun"),
        key(b"jul"),
        key(b"aug"),
        key(b"sep"),
        key(b"oct"),
        key(b"nov"),
        key(b"dec"),
    ];
    let Some(&[x, y, z]) = b.get(j..j + 3) else { return false };
    FIRSTS.contains(&key(&[x | 0x20, y | 0x20, z | 0x20]))
}

/// A month name at `j` (either case, optionally abbreviated with a `.`): its end.
fn month(b: &[u8], j: usize) -> Option<usize> {
    // Most words stop at the abbreviation.
    if !month_start(b, j) {
        return None;
    }
    let n = b[j..].iter().take(10).take_while(|c| c.is_ascii_alphabetic()).count();
    let w = &b[j..j + n];
    if !(3..=9).contains(&n) || !MONTHS.iter().any(|m| w.eq_ignore_ascii_case(m)) {
        return None;
    }
    Some(j + n + usize::from(n <= 4 && b.get(j + n) == Some(&b'.')))
}

/// `15 March 1985`, `15th Mar. 1985`.
fn day_month(b: &[u8], i: usize) -> Option<usize> {
    let (d, mut j) = digits(b, i, 1, 2)?;
    if !(1..=31).contains(&d) {
        return None;
    }
    if b.get(j..j + 2).is_some_and(|s| [b"st", b"nd", b"rd", b"th"].iter().any(|x| s == *x)) {
        j += 2;
    }
    if b.get(j) != Some(&b' ') {
        return None;
    }
    let k = month(b, j + 1)?;
    let k = k + usize::from(b.get(k) == Some(&b','));
    if b.get(k) != Some(&b' ') {
        return None;
    }
    digits(b, k + 1, 4, 4).map(|(_, end)| end)
}

/// `March 15, 1985`.
fn month_day(b: &[u8], i: usize) -> Option<usize> {
    let j = month(b, i)?;
    if b.get(j) != Some(&b' ') {
        return None;
    }
    let (d, mut k) = digits(b, j + 1, 1, 2)?;
    if !(1..=31).contains(&d) {
        return None;
    }
    if b.get(k..k + 2).is_some_and(|s| [b"st", b"nd", b"rd", b"th"].iter().any(|x| s == *x)) {
        k += 2;
    }
    k += usize::from(b.get(k) == Some(&b','));
    if b.get(k) != Some(&b' ') {
        return None;
    }
    digits(b, k + 1, 4, 4).map(|(_, end)| end)
}

/// Words before a date that say it is a date of birth, lower case.
const CUES: &[&[u8]] = &[
    b"dob",
    b"d.o.b",
    b"d.o.b.",
    b"date of birth",
    b"birth date",
    b"birthdate",
    b"birthday",
    b"born",
    b"born on",
    b"geb.",
    b"geboren",
    b"geburtsdatum",
    b"n\xc3\xa9 le",
    b"n\xc3\xa9e le",
    b"n\xc3\xa9(e) le",
    b"date de naissance",
    b"fecha de nacimiento",
    b"data di nascita",
    b"nacido el",
    b"nacida el",
    b"birth",
];

/// The cues by last byte: only those ending like the text before a date are compared.
const CUES_BY_LAST: ByByte<{ CUES.len() }> = ByByte::new(CUES, false);

/// Whether a cue ends shortly before `i`, followed only by punctuation and spaces.
fn cue_before(b: &[u8], i: usize) -> bool {
    let from = i.saturating_sub(40);
    let w = &b[from..i];
    // Skip back over `: `, `= `, quotes, `(`, and the word `on`.
    let mut n = w.len();
    while n > 0 && matches!(w[n - 1], b' ' | b':' | b'=' | b'"' | b'\'' | b'(' | b'\t' | b'-') {
        n -= 1;
    }
    let w = &w[..n];
    let w = match w.len().checked_sub(3) {
        Some(k) if w[k..].eq_ignore_ascii_case(b" on") => &w[..k],
        _ => w,
    };
    let Some(last) = w.last() else { return false };
    // Only the cues whose last two bytes are the text's are compared.
    let before_last = w.len().checked_sub(2).map_or(0, |k| w[k].to_ascii_lowercase());
    CUES_BY_LAST.with2(last.to_ascii_lowercase(), before_last).any(|cue| {
        w.len() >= cue.len()
            && w[w.len() - cue.len()..].eq_ignore_ascii_case(cue)
            && !w[..w.len() - cue.len()].last().is_some_and(u8::is_ascii_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::detect::found;

    #[test]
    fn dates_after_a_cue() {
        for (t, want) in [
            ("DOB: 15/03/1985", "15/03/1985"),
            ("date of birth 1985-03-15.", "1985-03-15"),
            ("born on March 15, 1985 in", "March 15, 1985"),
            ("geb. 15.03.1985", "15.03.1985"),
            ("Birthday: 3rd May 1990", "3rd May 1990"),
            ("\"dob\": \"1990-05-03\"", "1990-05-03"),
            ("née le 12 mars 1970", ""),
            ("DOB = 08-Jan-1946", "08-Jan-1946"),
            ("Patient: C. Childress (d.o.b. 07-Sep-1984)", "07-Sep-1984"),
        ] {
            let got = found(dobs, t);
            if want.is_empty() {
                assert!(got.is_empty(), "{t}: {got:?}");
            } else {
                assert_eq!(got, [want], "{t}");
            }
        }
    }

    #[test]
    fn other_dates_are_left_alone() {
        for t in ["on 2024-01-15 at 10:30", "Released 15 March 2024", "log 15/03/2024 12:00"] {
            assert!(found(dobs, t).is_empty(), "{t}");
        }
    }
}
