//! Email addresses and phone numbers.

#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, right_ok};

fn local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn domain_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// `local@domain.tld`: a local part of letters, digits and `._%+-`, a domain of dot-separated
/// labels (letters, digits, inner `-`) ending in an alphabetic TLD of 2+ letters. (The
/// standalone form of [`email_at`], for tests.)
#[cfg(test)]
pub fn emails(b: &[u8], out: &mut Vec<Span>) {
    let mut from = 0;
    while let Some(off) = b.get(from..).and_then(|r| r.iter().position(|&c| c == b'@')) {
        let at = from + off;
        from = at + 1;
        if let Some((start, end)) = email_at(b, at) {
            out.push(Span { start, end, kind: Kind::Email });
            from = end;
        }
    }
}

/// The address around the `@` at `at`, if there is one: (start, end).
pub fn email_at(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > 0 && local_byte(b[start - 1]) {
        start -= 1;
    }
    while start < at && matches!(b[start], b'.' | b'-' | b'+') {
        start += 1;
    }
    let mut end = at + 1;
    while end < b.len() && domain_byte(b[end]) {
        end += 1;
    }
    while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let ok =
        start < at && domain_ok(b.get(at + 1..end)?) && before(b, start).is_none_or(|c| c < 0x80);
    ok.then_some((start, end))
}

/// Two or more non-empty labels without edge dashes, the last (the TLD) 2+ letters.
fn domain_ok(d: &[u8]) -> bool {
    let mut labels = 0;
    let mut tld: &[u8] = &[];
    for l in d.split(|&c| c == b'.') {
        if l.is_empty() || l[0] == b'-' || l[l.len() - 1] == b'-' {
            return false;
        }
        labels += 1;
        tld = l;
    }
    labels >= 2 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
}

/// Phone numbers. International: `+` and 8 to 15 digits in groups separated by single spaces,
/// dashes, dots or a parenthesised area code (`+44 20 7946 0958`, `+1 (555) 123-4567`).
/// National: North American `3-3-4` with separators (`(555) 123-4567`, `555-123-4567`,
/// `555.123.4567`, `1-800-555-1234`), or 10-11 digits after a trunk `0` in groups of 2+
/// (`020 7946 0958`, `01 23 45 67 89`). Bare digit runs, dates
/// and dotted quads are not phones.
#[cfg(test)]
pub fn phones(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        i = match phone_step(b, i) {
            Ok(end) => {
                out.push(Span { start: i, end, kind: Kind::Phone });
                end
            }
            Err(next) => next,
        };
    }
}

/// The phone that starts at `i` (a digit, or `+` or `(` before one): `Ok(end)`, or
/// `Err(where the search goes on)`.
pub fn phone_step(b: &[u8], i: usize) -> Result<usize, usize> {
    let c = b[i];
    let starts = (c == b'+' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        || (c == b'(' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        || c.is_ascii_digit();
    if !starts || !start_ok(b, i) {
        return Err(i + 1);
    }
    match phone_at(b, i) {
        Some(end) => Ok(end),
        // `(` or `+` that starts no phone: the digits after it may still.
        None if !c.is_ascii_digit() => Err(i + 1),
        None => {
            // Skip the rest of this number-like run so its middle is not tried as a start.
            let mut j = i + 1;
            while j < b.len()
                && (b[j].is_ascii_digit()
                    || (matches!(b[j], b' ' | b'-' | b'.' | b'(' | b')')
                        && b.get(j + 1).is_some_and(u8::is_ascii_digit)))
            {
                j += 1;
            }
            Err(j)
        }
    }
}

/// A phone may not continue a word, a number, or a dotted/dashed token.
fn start_ok(b: &[u8], i: usize) -> bool {
    match before(b, i) {
        None => true,
        Some(p) => !is_word(p) && !matches!(p, b'-' | b'.' | b'/' | b'+' | b',' | b'$'),
    }
}

/// The end of the phone number starting at `i`, if one does.
fn phone_at(b: &[u8], i: usize) -> Option<usize> {
    let intl = b[i] == b'+';
    let mut j = if intl { i + 1 } else { i };
    // Digits per group and the separators between them (at most 8 groups, no allocation).
    let (mut group_buf, mut sep_buf) = ([0usize; 8], [0u8; 8]);
    let (mut n_groups, mut n_seps) = (0, 0);
    let mut open_paren = false;
    let mut end = i;
    loop {
        if b.get(j) == Some(&b'(') && !open_paren {
            open_paren = true;
            j += 1;
        }
        let g = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == g || j - g > if intl { 15 } else { 8 } {
            break;
        }
        if n_groups == group_buf.len() {
            return None; // too many groups for a phone number
        }
        group_buf[n_groups] = j - g;
        n_groups += 1;
        if open_paren {
            if b.get(j) != Some(&b')') {
                return None;
            }
            open_paren = false;
            j += 1;
        }
        end = j;
        // One separator: a space, dash or dot, or ") " already consumed above.
        match b.get(j) {
            Some(&s @ (b' ' | b'-' | b'.'))
                if b.get(j + 1).is_some_and(|n| n.is_ascii_digit() || *n == b'(') =>
            {
                sep_buf[n_seps.min(7)] = s;
                n_seps += 1;
                j += 1;
            }
            _ if b.get(j) == Some(&b'(') || b.get(j).is_some_and(u8::is_ascii_digit) => {
                sep_buf[n_seps.min(7)] = b' ';
                n_seps += 1;
            }
            _ => break,
        }
    }
    let groups = &group_buf[..n_groups];
    let seps = &sep_buf[..n_seps.min(n_groups.saturating_sub(1))];
    let digits: usize = groups.iter().sum();
    let last = groups.last().copied().unwrap_or(0);
    let ok = if intl {
        (8..=15).contains(&digits) && (groups.len() == 1 || (last >= 2 && groups[0] <= 4))
    } else {
        national(b, i, groups, seps)
    };
    (ok && end_ok(b, end)).then_some(end)
}

/// National formats: NANP `3-3-4` (optionally `1-` first, dots only in this shape), or a
/// trunk-prefixed number (`0...`, UK/EU style) of 10-11 digits in groups of 2+.
fn national(b: &[u8], i: usize, groups: &[usize], seps: &[u8]) -> bool {
    let digits: usize = groups.iter().sum();
    let first = if b[i] == b'(' { b.get(i + 1) } else { b.get(i) };
    let nanp = groups == [3, 3, 4] || (groups == [1, 3, 3, 4] && first == Some(&b'1'));
    // The subscriber part never starts with 0 (`08180-08558` is a reference, not a phone).
    let second = groups.first().map(|g| i + usize::from(b[i] == b'(') + g);
    let second_zero = second
        .and_then(|at| b.get(at..)?.iter().find(|c| c.is_ascii_digit()))
        .is_some_and(|c| *c == b'0');
    let trunk = first == Some(&b'0')
        && !second_zero
        && (10..=11).contains(&digits)
        && groups.len() >= 2
        // French pairs (`01 23 45 67 89`), or groups of 3+ (`020 7946 0958`, `05165 69487`).
        && (groups.iter().all(|g| *g == 2) || groups.iter().all(|g| *g >= 3))
        && !seps.contains(&b'.');
    (nanp && !seps.is_empty()) || trunk
}

/// Nothing word-like may follow, nor a separator that continues the token (`555-123-4567-9`).
fn end_ok(b: &[u8], end: usize) -> bool {
    right_ok(b, end)
        && !(matches!(b.get(end), Some(b'-' | b'.' | b'/' | b':'))
            && b.get(end + 1).is_some_and(u8::is_ascii_alphanumeric))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::detect::found;

    #[test]
    fn emails_are_found_with_their_edges() {
        assert_eq!(
            found(emails, "write to <jane.doe+x@mail.example.co.uk>."),
            ["jane.doe+x@mail.example.co.uk"]
        );
        assert_eq!(found(emails, "a@b.io and c_d@e-f.org"), ["a@b.io", "c_d@e-f.org"]);
        assert!(found(emails, "user@localhost, @handle, a@b.c, x@1.2.3.4").is_empty());
    }

    #[test]
    fn phones_in_common_formats() {
        for p in [
            "(555) 123-4567",
            "555-123-4567",
            "555.123.4567",
            "020 7946 0958",
            "+44 20 7946 0958",
            "+49 30 12345678",
            "+1 (555) 123-4567",
            "+1-555-123-4567",
            "+33 1 23 45 67 89",
            "1-800-555-1234",
            "+14155552671",
            "01 23 45 67 89",
            "030 12345678",
        ] {
            assert_eq!(found(phones, &format!("call {p}, thanks")), [p], "{p}");
            assert_eq!(found(phones, &format!("tel:{p}")), [p], "{p}");
            assert_eq!(found(phones, &format!("({p}`")), [p], "{p}");
        }
    }

    #[test]
    fn near_misses_are_not_phones() {
        for t in [
            "on 2024-01-15 at 10:30",
            "order 1234567890",
            "ORD-555-123-4567",
            "version 1.2.3.4",
            "ip 192.168.100.100",
            "ssn 123-45-6789",
            "card 4111 1111 1111 1111",
            "pi is 3.14159265358",
            "555-123-4567-890",
            "$100 200 3000",
            "ref 12345-67890",
            "ticket 2024 0815 4711",
            "room 1203-1204",
            "on 01.02.2024",
            "ref 08180-08558",
            "NL19 CCHF 0149 4830 20",
        ] {
            assert!(found(phones, t).is_empty(), "{t}: {:?}", found(phones, t));
        }
    }
}
