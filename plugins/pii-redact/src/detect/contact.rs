//! Email addresses.

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
    // Right after a non-ASCII letter (CJK text without spaces, `→`, `é`) the address still
    // counts from its first ASCII byte: skipping it leaked it whole (found by fuzzing).
    if start >= at {
        return None;
    }
    let domain = domain_len(b.get(at + 1..end)?)?;
    Some((start, at + 1 + domain))
}

/// The length of the longest valid domain that `d` starts with: all of it, or cut back at a dot,
/// or without digits run on to its TLD. An address followed by `.x` or `2024` is still the
/// address (found by fuzzing: `ann@example.com1111` and `ann@example.com.x` were not masked).
fn domain_len(d: &[u8]) -> Option<usize> {
    let dots = d.iter().enumerate().filter(|(_, c)| **c == b'.').map(|(i, _)| i);
    let ends: Vec<usize> = dots.chain(std::iter::once(d.len())).collect();
    ends.into_iter().rev().find_map(|end| {
        let mut e = end;
        while e > 0 && d[e - 1].is_ascii_digit() {
            e -= 1;
        }
        domain_ok(&d[..e]).then_some(e)
    })
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

    #[test]
    fn an_address_right_after_a_non_ascii_letter_is_found() {
        assert_eq!(found(emails, "メールann@example.com"), ["ann@example.com"]);
        assert_eq!(
            found(emails, "\u{fffd}ann@example.com, éb@example.org"),
            ["ann@example.com", "b@example.org"]
        );
    }

    #[test]
    fn an_address_with_text_run_on_keeps_its_valid_domain() {
        assert_eq!(found(emails, "ann@example.com1111 1111"), ["ann@example.com"]);
        assert_eq!(
            found(emails, "ann@example.com.x and b@mail.example.org.5"),
            ["ann@example.com", "b@mail.example.org"]
        );
        assert!(found(emails, "x@1.2.3.4 v@2.0.1 a@b.c1").is_empty());
    }
}
