//! Eight bytes at a time in a `u64` ("SIMD within a register"): masks with the high bit of each
//! byte set where the byte has some property. Little-endian: byte `k` is bits `8k..8k+8`.

/// The high bit of every byte.
pub const HIGH: u64 = 0x8080_8080_8080_8080;
/// `1` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The low seven bits of every byte.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Bytes equal to `c` (exact: no borrow runs between bytes).
pub fn eq(x: u64, c: u8) -> u64 {
    let t = x ^ (u64::from(c) * ONES);
    !(((t & LOW7) + LOW7) | t) & HIGH
}

/// ASCII bytes `>= c` (`c <= 0x80`); the bit is meaningless for bytes `>= 0x80`.
fn ge(x: u64, c: u8) -> u64 {
    ((x | HIGH) - u64::from(c) * ONES) & HIGH
}

/// ASCII bytes in `lo..=hi`; meaningless for bytes `>= 0x80`.
fn within(x: u64, lo: u8, hi: u8) -> u64 {
    ge(x, lo) & !ge(x, hi + 1)
}

/// ASCII letters, either case; meaningless for bytes `>= 0x80`. One range test: setting bit 5
/// maps `A-Z` onto `a-z` and no other ASCII byte into it (`@`, `[`-`_` land outside).
fn letters(x: u64) -> u64 {
    within(x | (0x20 * ONES), b'a', b'z')
}

/// Whether the first byte of `b` that is not a letter (ASCII or not), a space, `'`, `-` or `.`
/// is an ASCII digit right after a space.
pub fn number_after_words(b: &[u8]) -> bool {
    let wordish =
        |x: u64| (x & HIGH) | letters(x) | eq(x, b' ') | eq(x, b'\'') | eq(x, b'-') | eq(x, b'.');
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Within one byte these tests hold only for ASCII bytes, bit 7 of each is exact.
        let other = !wordish(x) & HIGH;
        if other != 0 {
            let k = at + (other.trailing_zeros() / 8) as usize;
            return b[k].is_ascii_digit() && k > 0 && b[k - 1] == b' ';
        }
        at += 8;
    }
    let rest = chunks.remainder();
    let k = rest.iter().position(|c| {
        !(c.is_ascii_alphabetic() || *c >= 0x80 || matches!(c, b' ' | b'\'' | b'-' | b'.'))
    });
    k.is_some_and(|k| rest[k].is_ascii_digit() && at + k > 0 && b[at + k - 1] == b' ')
}

/// Word bytes, as [`super::is_word`]: ASCII letters and digits, `_`, and every byte `>= 0x80`.
pub fn word(x: u64) -> u64 {
    let ascii = within(x, b'0', b'9') | letters(x) | eq(x, b'_');
    (x & HIGH) | (ascii & !(x & HIGH))
}

/// Bytes that may start a built-in entity at a word start: digits and ASCII letters (IBANs in
/// either case, names, hex digits of IPv6, token prefixes). The word bytes with a built-in
/// class in `scan::CLASS`.
pub fn word_class(x: u64) -> u64 {
    (within(x, b'0', b'9') | letters(x)) & !(x & HIGH)
}

/// Non-word bytes that may start a built-in entity: `@`, `-`, `+`, `(`, `:`.
pub fn punct_class(x: u64) -> u64 {
    eq(x, b'@') | eq(x, b'-') | eq(x, b'+') | eq(x, b'(') | eq(x, b':')
}

/// ASCII letters (either case).
pub fn alpha(x: u64) -> u64 {
    letters(x) & !(x & HIGH)
}

/// ASCII capitals.
pub fn upper(x: u64) -> u64 {
    within(x, b'A', b'Z') & !(x & HIGH)
}

/// ASCII digits.
pub fn digit(x: u64) -> u64 {
    within(x, b'0', b'9') & !(x & HIGH)
}

/// How many ASCII digits `b[i..]` starts with (0 past the end), eight bytes at a time: the scan's
/// digit path and a phone's groups counted them a byte at a time, and in the sandbox every trip
/// of a loop also pays an epoch check (BENCHMARKS.md, "PII redaction", session 14).
pub fn digit_run(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while let Some(c) = b.get(j..j + 8) {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let other = !digit(x) & HIGH;
        if other != 0 {
            return j - i + (other.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    j - i + b.get(j..).map_or(0, |rest| rest.iter().take_while(|c| c.is_ascii_digit()).count())
}

/// A mask of high bits (one per byte) as eight bits: bit `k` for byte `k`. The multiply
/// gathers bit `8k` of the shifted mask into bit `56 + k`; no two products land on one bit.
pub fn bits(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// `b` (at most 64 bytes) as two bit masks, bit `k` for `b[k]`: where `f` and `g` hold.
pub fn masks(b: &[u8], f: fn(u64) -> u64, g: fn(u64) -> u64) -> (u64, u64) {
    let b = &b[..b.len().min(64)];
    let (mut fm, mut gm) = (0, 0);
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        fm |= bits(f(x)) << at;
        gm |= bits(g(x)) << at;
        at += 8;
    }
    // The rest, a byte at a time into a zeroed word (no call to `memcpy`); the zero bytes are
    // masked off.
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut x = 0u64;
        for (k, c) in rest.iter().enumerate() {
            x |= u64::from(*c) << (8 * k);
        }
        let valid = u64::MAX >> (64 - 8 * rest.len());
        fm |= bits(f(x) & valid) << at;
        gm |= bits(g(x) & valid) << at;
    }
    (fm, gm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_after_words_as_byte_by_byte() {
        let reference = |b: &[u8]| {
            let k = b.iter().position(|c| {
                !(c.is_ascii_alphabetic() || *c >= 0x80 || matches!(c, b' ' | b'\'' | b'-' | b'.'))
            });
            k.is_some_and(|k| b[k].is_ascii_digit() && k > 0 && b[k - 1] == b' ')
        };
        let parts: [&[u8]; 10] =
            [b"Main", b" ", b"7", b"\n", b"St.", b"O'Neil", b"\xc3\xa9", b",", b"-", b"12"];
        for t in super::super::joined(&parts, 10, 20_000, 0x1234_5679) {
            for end in [t.len(), t.len().min(48), t.len().min(9)] {
                let b = &t[..end];
                assert_eq!(number_after_words(b), reference(b), "{b:?}");
            }
        }
        assert!(number_after_words(b"Hauptstra\xc3\x9fe 12") && !number_after_words(b"Main7"));
    }

    #[test]
    fn digit_runs_as_byte_by_byte() {
        let reference = |b: &[u8], i: usize| {
            b.get(i..).map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count())
        };
        let parts: [&[u8]; 8] = [b"0", b"12345", b"9876543210", b" ", b"-", b"a", b"/", b"\xd9"];
        for t in super::super::joined(&parts, 8, 5_000, 0x2545_f491) {
            for i in 0..=t.len() + 1 {
                assert_eq!(digit_run(&t, i), reference(&t, i), "{t:?} at {i}");
            }
        }
        assert_eq!(digit_run(b"0123456789012345678x", 0), 19);
        assert_eq!(digit_run(b"", 0), 0);
    }

    #[test]
    fn bit_masks_gather_every_byte() {
        for pattern in 0..256u64 {
            let m = (0..8).filter(|k| pattern >> k & 1 == 1).fold(0, |m, k| m | 0x80 << (8 * k));
            assert_eq!(bits(m), pattern);
        }
        let b = b"ab1 \nZ9\xc3\xa9x-0123456789abcdefghij";
        let (a, d) = masks(b, alpha, digit);
        for (k, c) in b.iter().enumerate() {
            assert_eq!(a >> k & 1 == 1, c.is_ascii_alphabetic(), "{k}");
            assert_eq!(d >> k & 1 == 1, c.is_ascii_digit(), "{k}");
        }
        assert_eq!(masks(b"", alpha, digit), (0, 0));
    }

    #[test]
    fn masks_match_the_byte_tests() {
        for base in (0..256).step_by(8) {
            for shift in [0, 3, 5] {
                let bytes: [u8; 8] = std::array::from_fn(|k| ((base + k * shift + k) % 256) as u8);
                let x = u64::from_le_bytes(bytes);
                let (w, sp) = (word(x), eq(x, b' '));
                let classes = word_class(x) | punct_class(x);
                for (k, c) in bytes.iter().enumerate() {
                    let bit = |m: u64| m >> (8 * k + 7) & 1 == 1;
                    assert_eq!(bit(w), super::super::is_word(*c), "{c:#x}");
                    assert_eq!(bit(sp), *c == b' ', "{c:#x}");
                    assert_eq!(w & !HIGH, 0);
                    let class = super::super::scan::CLASS[usize::from(*c)];
                    assert_eq!(bit(classes), class != 0, "{c:#x}");
                }
            }
        }
    }
}
