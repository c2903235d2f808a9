//! Payment card brands: issuer identification number (IIN) ranges and card lengths.
//!
//! No well-kept package ships this table (python-stdnum has none), so it is written down here
//! from the brands' public documentation, as collected in Wikipedia's "Payment card number"
//! article (IIN ranges table, revision of 2025) which cites each: Visa and Mastercard (their
//! BIN range announcements, Mastercard's 2-series 2221-2720 from 2017), American Express, Discover
//! Global Network (Discover, Diners Club International, and its UnionPay/RuPay/Elo/Troy/Verve
//! partner ranges), JCB, UnionPay International, NSPK (Mir), NPCI (RuPay), Elo, BKM (Troy),
//! Interswitch (Verve), UATP, Dankort, LankaPay, UzCard, Humo and GPN (Gerbang Pembayaran
//! Nasional). Every brand but UnionPay uses
//! Luhn; the detector asks Luhn of every card (a UnionPay number without it is not found).

/// (first digits: low and high, inclusive, of the same length; card lengths as bits; brand).
type Range = (u32, u32, u32, &'static str);

const fn lens(from: u32, to: u32) -> u32 {
    let mut bits = 0;
    let mut n = from;
    while n <= to {
        bits |= 1 << n;
        n += 1;
    }
    bits
}

const L16: u32 = 1 << 16;

pub const RANGES: &[Range] = &[
    (4, 4, 1 << 13 | 1 << 16 | 1 << 19, "Visa"),
    (51, 55, L16, "Mastercard"),
    (2221, 2720, L16, "Mastercard"),
    (34, 34, 1 << 15, "American Express"),
    (37, 37, 1 << 15, "American Express"),
    (6011, 6011, lens(16, 19), "Discover"),
    (644, 649, lens(16, 19), "Discover"),
    (65, 65, lens(16, 19), "Discover, RuPay, Troy"),
    (622126, 622925, lens(16, 19), "Discover (UnionPay co-brand)"),
    (3528, 3589, lens(16, 19), "JCB"),
    (36, 36, lens(14, 19), "Diners Club International"),
    (300, 305, lens(14, 19), "Diners Club Carte Blanche, International"),
    (3095, 3095, lens(14, 19), "Diners Club International"),
    (38, 39, lens(14, 19), "Diners Club International"),
    (62, 62, lens(16, 19), "UnionPay"),
    (81, 81, lens(16, 19), "UnionPay, RuPay"),
    (50, 50, lens(12, 19), "Maestro"),
    (56, 69, lens(12, 19), "Maestro"),
    (2200, 2204, lens(16, 19), "Mir"),
    (60, 60, L16, "RuPay"),
    (82, 82, L16, "RuPay"),
    (508, 508, L16, "RuPay"),
    (353, 353, L16, "RuPay (JCB co-brand)"),
    (356, 356, L16, "RuPay (JCB co-brand)"),
    (401178, 401179, L16, "Elo"),
    (431274, 431274, L16, "Elo"),
    (438935, 438935, L16, "Elo"),
    (451416, 451416, L16, "Elo"),
    (457393, 457393, L16, "Elo"),
    (457631, 457632, L16, "Elo"),
    (504175, 504175, L16, "Elo"),
    (506699, 506778, L16, "Elo"),
    (509000, 509999, L16, "Elo"),
    (627780, 627780, L16, "Elo"),
    (636297, 636297, L16, "Elo"),
    (636368, 636368, L16, "Elo"),
    (650031, 650051, L16, "Elo"),
    (650405, 650439, L16, "Elo"),
    (650485, 650538, L16, "Elo"),
    (650541, 650598, L16, "Elo"),
    (650700, 650727, L16, "Elo"),
    (650901, 650978, L16, "Elo"),
    (651652, 651679, L16, "Elo"),
    (655000, 655058, L16, "Elo"),
    (9792, 9792, L16, "Troy"),
    (506099, 506198, L16 | 1 << 18 | 1 << 19, "Verve"),
    (507865, 507964, L16 | 1 << 18 | 1 << 19, "Verve"),
    (650002, 650027, L16 | 1 << 18 | 1 << 19, "Verve"),
    (1, 1, 1 << 15, "UATP"),
    (5019, 5019, L16, "Dankort"),
    (357111, 357111, L16, "LankaPay"),
    (8600, 8600, L16, "UzCard"),
    (9860, 9860, L16, "Humo"),
    // Indonesia's national network (its other prefixes, 50, 56, 58 and 60-63, are Maestro's and
    // UnionPay's above).
    (1946, 1946, L16 | 1 << 18 | 1 << 19, "GPN"),
];

/// Whether the ASCII digits `d` have the length and leading digits of some brand.
pub fn brand_ok(d: &[u8]) -> bool {
    let n = d.len();
    // The value of the first `k` digits, for every `k` a range's bounds have (at most
    // `MAX_PREFIX`): read once, not once per range.
    let mut prefix = [None; MAX_PREFIX + 1];
    let mut v = 0u32;
    for (k, c) in d.iter().take(MAX_PREFIX).enumerate() {
        v = v * 10 + u32::from(c - b'0');
        prefix[k + 1] = Some(v);
    }
    RANGES.iter().zip(PREFIX_LEN.iter()).any(|(&(lo, hi, lengths, _), &k)| {
        lengths >> n & 1 == 1 && prefix[k].is_some_and(|p| (lo..=hi).contains(&p))
    })
}

/// The most leading digits a range's bounds have.
const MAX_PREFIX: usize = 6;

/// How many leading digits each range of [`RANGES`] reads (the digits of its lower bound),
/// counted at compile time.
const PREFIX_LEN: [usize; RANGES.len()] = {
    let mut t = [0; RANGES.len()];
    let mut r = 0;
    while r < RANGES.len() {
        t[r] = digits(RANGES[r].0);
        assert!(t[r] <= MAX_PREFIX && digits(RANGES[r].1) == t[r]);
        r += 1;
    }
    t
};

const fn digits(mut v: u32) -> usize {
    let mut k = 1;
    while v >= 10 {
        v /= 10;
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands() {
        for ok in [
            "4111111111111111",
            "4222222222222",
            "2221000000000009",
            "378282246310005",
            "30569309025904",
            "3530111333300000",
            "6200000000000005",
            "2200000000000004",
            "6521000000000000",
            "122000000000003",
            "501800000000",
            "1946000000000002",
        ] {
            assert!(brand_ok(ok.as_bytes()), "{ok}");
        }
        for no in ["7111111111111111", "2721000000000000", "41111111111111", "3411111111111111"] {
            assert!(!brand_ok(no.as_bytes()), "{no}");
        }
    }
}
