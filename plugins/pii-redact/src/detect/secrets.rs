//! Secrets: OpenAI keys, AWS access key ids, GitHub and Slack tokens, PEM private key blocks and
//! JWTs. Each is recognised by its prefix and the shape of what follows.

#[cfg(test)]
use super::{Kind, Span};
use super::{left_ok, right_ok};

fn token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Length of the run of bytes from `i` that satisfy `f`.
fn run(b: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    b.get(i..).map_or(0, |r| r.iter().take_while(|c| f(**c)).count())
}

/// (prefix, allowed body bytes, minimum body length)
type Rule = (&'static [u8], fn(u8) -> bool, usize);

const RULES: &[Rule] = &[
    (b"sk-", token_byte, 20),
    (b"AKIA", upper_alnum, 16),
    (b"ASIA", upper_alnum, 16),
    (b"ghp_", alnum, 30),
    (b"gho_", alnum, 30),
    (b"ghu_", alnum, 30),
    (b"ghs_", alnum, 30),
    (b"ghr_", alnum, 30),
    (b"github_pat_", word, 22),
    (b"xoxa-", token_byte, 10),
    (b"xoxb-", token_byte, 10),
    (b"xoxp-", token_byte, 10),
    (b"xoxr-", token_byte, 10),
    (b"xoxs-", token_byte, 10),
    // Stripe, GitLab, npm, PyPI, Hugging Face, DigitalOcean, SendGrid, Google, Shopify, Mailgun.
    (b"sk_live_", token_byte, 20),
    (b"sk_test_", token_byte, 20),
    (b"rk_live_", token_byte, 20),
    (b"rk_test_", token_byte, 20),
    (b"glpat-", token_byte, 20),
    (b"npm_", alnum, 36),
    (b"pypi-", token_byte, 50),
    (b"hf_", alnum, 30),
    (b"dop_v1_", hex, 64),
    (b"SG.", dotted, 60),
    (b"AIza", token_byte, 35),
    (b"shpss_", hex, 32),
    (b"shpat_", hex, 32),
    (b"shpca_", hex, 32),
    (b"shppa_", hex, 32),
    (b"key-", hex, 32),
];

fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn dotted(c: u8) -> bool {
    token_byte(c) || c == b'.'
}

fn upper_alnum(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Every secret in `b` (the standalone form of [`at`], for tests).
#[cfg(test)]
pub fn find(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        match at(b, i) {
            Some(end) => {
                out.push(Span { start: i, end, kind: Kind::Secret });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// The end of the secret that starts at `i`, if one does. Only the first bytes of the
/// prefixes above, `e` (at a word start) and `-` can start one; the scanner calls this at
/// those bytes alone.
pub fn at(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b's' | b'A' | b'g' | b'x' | b'r' | b'n' | b'p' | b'h' | b'd' | b'S' | b'k' => {
            token_at(b, i)
        }
        b'-' => pem_at(b, i),
        b'e' => jwt_at(b, i),
        _ => None,
    }
}

fn token_at(b: &[u8], i: usize) -> Option<usize> {
    if !left_ok(b, i) {
        return None;
    }
    RULES.iter().filter(|(prefix, _, _)| prefix[0] == b[i]).find_map(|(prefix, body, min)| {
        let rest = b.get(i..)?.strip_prefix(*prefix)?;
        let n = run(rest, 0, body);
        let end = i + prefix.len() + n;
        let mixed = prefix != b"sk-"
            || (rest[..n].iter().any(u8::is_ascii_digit)
                && rest[..n].iter().any(u8::is_ascii_alphabetic));
        // AWS ids are exactly 16 after the prefix.
        let exact = !matches!(*prefix, b"AKIA" | b"ASIA") || n == 16;
        (n >= *min && mixed && exact && right_ok(b, end)).then_some(end)
    })
}

/// `-----BEGIN ... PRIVATE KEY-----` through the matching END line (or the end of the text when
/// it never comes: a truncated key is still a key).
fn pem_at(b: &[u8], i: usize) -> Option<usize> {
    let rest = b.get(i..)?.strip_prefix(b"-----BEGIN ")?;
    let line = rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len()).min(64);
    let header = &rest[..line];
    let close = find_sub(header, b"PRIVATE KEY-----")?;
    let after = i + 11 + close + 16;
    let end = match find_sub(&b[after..], b"-----END ") {
        Some(e) => {
            let from = after + e + 9;
            match find_sub(&b[from..], b"-----") {
                Some(t) if t <= 64 => from + t + 5,
                _ => b.len(),
            }
        }
        None => b.len(),
    };
    Some(end)
}

fn find_sub(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `eyJ<header>.<payload>.<signature>`, base64url segments of 10+ bytes each.
fn jwt_at(b: &[u8], i: usize) -> Option<usize> {
    if !left_ok(b, i) || !b.get(i..)?.starts_with(b"eyJ") {
        return None;
    }
    let mut j = i;
    for k in 0..3 {
        if k > 0 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let n = run(b, j, b64url);
        if n < 10 {
            return None;
        }
        j += n;
    }
    right_ok(b, j).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        crate::detect::found(find, text)
    }

    #[test]
    fn tokens_by_prefix() {
        for t in [
            "sk-abcdefghij0123456789ABCD",
            "sk-proj-Ab3dEfGh1jKlMnOpQrStUvWxYz0123456789",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            assert_eq!(found(&format!("use {t} now")), [t], "{t}");
        }
    }

    #[test]
    fn private_key_blocks_through_end() {
        let pem =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(&format!("key:\n{pem}\nthanks")), [pem]);
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq";
        assert_eq!(found(&format!("x {cut}")), [cut]);
        assert!(found("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----").is_empty());
    }

    #[test]
    fn words_with_prefixes_are_not_secrets() {
        for t in [
            "task-management-system-design",
            "sk-learn",
            "AKIA123",
            "ghp_short",
            "risk-averse-investors-everywhere1",
            "eyJ.a.b",
            "xoxo-gossip",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
