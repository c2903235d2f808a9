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

/// Whether `b` holds an ASCII digit, eight bytes at a time.
pub fn has_digit(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    let found = chunks.by_ref().any(|c| {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        within(x, b'0', b'9') & !(x & HIGH) != 0
    });
    found || chunks.remainder().iter().any(u8::is_ascii_digit)
}

/// Word bytes, as [`super::is_word`]: ASCII letters and digits, `_`, and every byte `>= 0x80`.
pub fn word(x: u64) -> u64 {
    let ascii = within(x, b'0', b'9') | within(x, b'A', b'Z') | within(x, b'a', b'z') | eq(x, b'_');
    (x & HIGH) | (ascii & !(x & HIGH))
}

/// Bytes that may start a built-in entity at a word start: digits and ASCII letters (IBANs in
/// either case, names, hex digits of IPv6, token prefixes). The word bytes with a built-in
/// class in `scan::CLASS`.
pub fn word_class(x: u64) -> u64 {
    (within(x, b'0', b'9') | within(x, b'A', b'Z') | within(x, b'a', b'z')) & !(x & HIGH)
}

/// Non-word bytes that may start a built-in entity: `@`, `-`, `+`, `(`, `:`.
pub fn punct_class(x: u64) -> u64 {
    eq(x, b'@') | eq(x, b'-') | eq(x, b'+') | eq(x, b'(') | eq(x, b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_found_in_any_position() {
        for len in 0..20 {
            for at in 0..len {
                let mut b = vec![b'a'; len];
                b[at] = b'7';
                assert!(has_digit(&b), "{len} {at}");
                b[at] = 0xb9; // a byte with the high bit set is no digit
                assert!(!has_digit(&b), "{len} {at}");
            }
        }
        assert!(!has_digit(b"/:abcdefghij") && has_digit(b"/:abcdefgh0"));
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
