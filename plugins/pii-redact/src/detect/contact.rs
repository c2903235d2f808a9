//! Email addresses.

use super::before;
#[cfg(test)]
use super::{Kind, Span};

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
}
