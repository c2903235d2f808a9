//! IP addresses: dotted-quad IPv4 with octets 0..=255, and IPv6 (full, `::`-compressed, with an
//! embedded IPv4 tail), validated by parsing.

#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, right_ok};

/// Every IPv4 and IPv6 address in `b` (the standalone form of [`ip_step`], for tests).
#[cfg(test)]
pub fn find(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_hexdigit() || c == b':') {
            i += 1;
            continue;
        }
        i = match ip_step(b, i) {
            Ok(end) => {
                out.push(Span { start: i, end, kind: Kind::Ip });
                end
            }
            Err(next) => next,
        };
    }
}

/// The address that starts at `i` (a hex digit or `:`): `Ok(end)`, or `Err(where the search
/// goes on)`.
pub fn ip_step(b: &[u8], i: usize) -> Result<usize, usize> {
    if !fresh(b, i) {
        return Err(i + 1);
    }
    // An IPv6 address needs a `:` after its first group (or first), an IPv4 one a `.` after its
    // first octet: most words and numbers end here.
    let hex =
        b.get(i..).map_or(0, |r| r.iter().take(5).take_while(|c| c.is_ascii_hexdigit()).count());
    let digits =
        b.get(i..).map_or(0, |r| r.iter().take(4).take_while(|c| c.is_ascii_digit()).count());
    if b.get(i + hex) != Some(&b':') && b.get(i + digits) != Some(&b'.') {
        return Err(skip(b, i));
    }
    if let Some(end) = ipv6_at(b, i) {
        return Ok(end);
    }
    match ipv4_at(b, i) {
        // `version 5.19.18.4`, `release 4.20.10.6`: a version number, not an address.
        Some(end) if !after_version_word(b, i) => Ok(end),
        Some(end) => Err(end),
        None => Err(skip(b, i)),
    }
}

/// Whether `version`, `release`, `build`, `firmware` or `v` comes right before `i`.
fn after_version_word(b: &[u8], i: usize) -> bool {
    let mut k = i;
    while k > 0 && matches!(b[k - 1], b' ' | b':' | b'=' | b'(') {
        k -= 1;
    }
    let head = &b[k.saturating_sub(9)..k];
    [&b"version"[..], b"release", b"build", b"firmware", b"ver", b"v"].iter().any(|w| {
        head.len() >= w.len()
            && head[head.len() - w.len()..].eq_ignore_ascii_case(w)
            && !head[..head.len() - w.len()].last().is_some_and(|c| c.is_ascii_alphabetic())
    })
}

/// Where the search goes on after no address started at `i`: after a `:`, past the word that
/// follows; else at `i + 1` (no address starts inside a word: `fresh` says no there).
fn skip(b: &[u8], i: usize) -> usize {
    if b[i] == b':' { word_end(b, i + 1) } else { i + 1 }
}

/// The first non-word byte at or after `j`.
fn word_end(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && is_word(b[j]) {
        j += 1;
    }
    j
}

/// Whether an address may start at `i`: not inside a word, a dotted number or an IPv6 address.
/// After `:` only when a word precedes it (`ip:10.0.0.1`, `tel:...`), not hex groups.
fn fresh(b: &[u8], i: usize) -> bool {
    match before(b, i) {
        None => true,
        Some(b':') => {
            let mut k = i - 1;
            while k > 0 && (b[k - 1].is_ascii_hexdigit() || b[k - 1] == b':') {
                k -= 1;
            }
            before(b, k).is_some_and(is_word)
        }
        Some(p) => !is_word(p) && p != b'.',
    }
}

/// A dotted quad at `i`, not part of a longer dotted number (`1.2.3.4.5`).
fn ipv4_at(b: &[u8], i: usize) -> Option<usize> {
    let end = quad(b, i)?;
    let continues = matches!(b.get(end), Some(b'.' | b':'))
        && b.get(end + 1).is_some_and(u8::is_ascii_alphanumeric);
    (right_ok(b, end) && !continues).then_some(end)
}

/// Four octets from `i`: the end offset.
fn quad(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for k in 0..4 {
        if k > 0 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let s = j;
        while j < b.len() && b[j].is_ascii_digit() && j - s < 4 {
            j += 1;
        }
        let octet = &b[s..j];
        let value = octet.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        if octet.is_empty()
            || octet.len() > 3
            || value > 255
            || (octet.len() > 1 && octet[0] == b'0')
        {
            return None;
        }
    }
    Some(j)
}

/// An IPv6 address at `i`: up to eight groups of 1-4 hex digits, at most one `::`, optionally
/// an IPv4 tail; at least two groups written, and eight unless compressed.
fn ipv6_at(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let mut groups = 0;
    let mut compressed = false;
    if b.get(j..j + 2) == Some(b"::") {
        compressed = true;
        j += 2;
    }
    loop {
        if (groups > 0 || compressed)
            && groups + usize::from(compressed) < 7
            && let Some(end) = quad(b, j)
        {
            groups += 2;
            j = end;
            break;
        }
        let s = j;
        while j < b.len() && b[j].is_ascii_hexdigit() && j - s < 5 {
            j += 1;
        }
        if j == s {
            break;
        }
        if j - s > 4 {
            return None;
        }
        groups += 1;
        if b.get(j) != Some(&b':') || groups >= 8 {
            break;
        }
        if b.get(j + 1) == Some(&b':') {
            if compressed {
                return None;
            }
            compressed = true;
            j += 2;
        } else if b.get(j + 1).is_some_and(u8::is_ascii_hexdigit) {
            j += 1;
        } else {
            break;
        }
    }
    let ok = if compressed { (2..=7).contains(&groups) } else { groups == 8 };
    let tail_ok = right_ok(b, j)
        && !(matches!(b.get(j), Some(b':' | b'.'))
            && b.get(j + 1).is_some_and(u8::is_ascii_hexdigit));
    (ok && tail_ok && j > i).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        crate::detect::found(find, text)
    }

    #[test]
    fn addresses_are_found() {
        for a in [
            "192.168.1.20",
            "10.0.0.1",
            "255.255.255.255",
            "2001:db8::8a2e:370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1",
            "::ffff:192.0.2.1",
            "2001:db8::",
        ] {
            assert_eq!(found(&format!("host {a}, ok")), [a], "{a}");
            assert_eq!(found(&format!("host {a}. Next")), [a], "{a}");
            assert_eq!(found(&format!("ip:{a}")), [a], "{a}");
        }
    }

    #[test]
    fn near_misses_are_not_addresses() {
        for t in [
            "v1.2.3.4",
            "1.2.3.4.5",
            "999.1.1.1",
            "version 1.2.3",
            "01.02.03.04",
            "at 12:30:45",
            "mac 00:1A:2B:3C:4D:5E",
            "std::vec::Vec",
            "deadbeef",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
