//! Phone numbers, checked against libphonenumber's numbering plan of every region
//! ([`super::data::phone`]): a run of digit groups (spaces, dashes, dots, a `/` after the area
//! code, a parenthesised area code or `(0)` trunk marker) is a phone when it is international
//! (`+` or `00` and a calling code, then a national number of a length and prefix that code's
//! regions use), or national (a trunk prefix and number, or a number without one, that some region
//! dials that way; North American `3-3-4`), or follows a cue (`Phone:`, `call me on`, `tel`,
//! `mobile`, `fax`, `WhatsApp`, ...), where shorter local numbers count too. An extension (`x123`,
//! `ext. 12`) belongs to the number.

use super::data::phone::{CALLING_CODES, NATIONAL, PREFIXES};
#[cfg(test)]
use super::data::phone::{REGIONS, Region};
use super::index::ByByte;
#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, right_ok, swar};

/// Every phone number in `b` (the standalone form of [`phone_step`], for tests).
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
    let starts = (matches!(c, b'+' | b'(') && b.get(i + 1).is_some_and(u8::is_ascii_digit))
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
                    || (matches!(b[j], b' ' | b'-' | b'.' | b'(' | b')' | b'/')
                        && b.get(j + 1).is_some_and(u8::is_ascii_digit)))
            {
                j += 1;
            }
            Err(j)
        }
    }
}

/// A phone may not continue a word, a number, or a dotted/dashed token or reference (`#`). A
/// `,` may come before (a CSV field): `1,234,567` is no phone by its groups.
fn start_ok(b: &[u8], i: usize) -> bool {
    match before(b, i) {
        None => true,
        Some(p) => !is_word(p) && !matches!(p, b'-' | b'.' | b'/' | b'+' | b'$' | b'#'),
    }
}

/// Most digit groups read.
const MAX_GROUPS: usize = 8;
/// Most digits read (the longest international number has 15, plus a `00` prefix).
const MAX_DIGITS: usize = 17;

/// Separator kinds seen, as bits.
const SPACE: u8 = 1;
const DASH: u8 = 2;
const DOT: u8 = 4;
const SLASH: u8 = 8;

/// A run of digit groups, as read.
#[derive(Clone, Copy)]
struct Groups {
    digits: [u8; MAX_DIGITS],
    n: usize,
    sizes: [u8; MAX_GROUPS],
    n_groups: usize,
    /// Separator kinds between groups (bits above).
    seps: u8,
    /// A group was in parentheses (an area code, or `(0)` after a calling code).
    paren: bool,
    /// `(0)` was skipped: the trunk prefix written inside an international number.
    trunk_marker: bool,
    /// Where the digits end.
    end: usize,
}

impl Groups {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.n]
    }

    fn sizes(&self) -> &[u8] {
        &self.sizes[..self.n_groups]
    }

    /// One more group of digits; `None` when there are too many.
    fn push(&mut self, group: &[u8]) -> Option<()> {
        if self.n + group.len() > MAX_DIGITS || self.n_groups == MAX_GROUPS {
            return None;
        }
        self.digits[self.n..self.n + group.len()].copy_from_slice(group);
        self.n += group.len();
        self.sizes[self.n_groups] = group.len() as u8;
        self.n_groups += 1;
        Some(())
    }
}

/// Reads the digit groups from `j` (after a `+`, if any). `None` when there are too many digits
/// or groups, or a parenthesis does not close.
fn read_groups(b: &[u8], mut j: usize, intl: bool) -> Option<Groups> {
    let mut g = Groups {
        digits: [0; MAX_DIGITS],
        n: 0,
        sizes: [0; MAX_GROUPS],
        n_groups: 0,
        seps: 0,
        paren: false,
        trunk_marker: false,
        end: j,
    };
    loop {
        let open = b.get(j) == Some(&b'(');
        if open {
            j += 1;
        }
        let start = j;
        j += swar::digit_run(b, j);
        if j == start {
            return if open || g.n_groups == 0 { None } else { Some(g) };
        }
        if open && intl && g.n_groups > 0 && &b[start..j] == b"0" && b.get(j) == Some(&b')') {
            g.trunk_marker = true;
            g.paren = true;
            j += 1;
        } else {
            g.push(&b[start..j])?;
            // Inside parentheses: more groups (`(06 1)`, `(0-312)`), then the `)`.
            while open
                && matches!(b.get(j), Some(b' ' | b'-'))
                && b.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                let k = j + 1;
                j = k + b[k..].iter().take_while(|c| c.is_ascii_digit()).count();
                g.push(&b[k..j])?;
            }
            if open {
                if b.get(j) != Some(&b')') {
                    return None;
                }
                g.paren = true;
                j += 1;
            }
        }
        g.end = j;
        let next_digit = |k: usize| {
            b.get(k).is_some_and(u8::is_ascii_digit)
                || (b.get(k) == Some(&b'(') && b.get(k + 1).is_some_and(u8::is_ascii_digit))
        };
        match b.get(j) {
            Some(&s @ (b' ' | b'-' | b'.' | b'/')) if next_digit(j + 1) => {
                g.seps |= match s {
                    b' ' => SPACE,
                    b'-' => DASH,
                    b'.' => DOT,
                    _ => SLASH,
                };
                j += 1;
            }
            // `(555)123-4567`, `+46(0)8`: a parenthesis joins groups on its own.
            _ if (open && b.get(j).is_some_and(u8::is_ascii_digit)) || next_digit(j) => {
                g.seps |= SPACE;
            }
            _ => return Some(g),
        }
    }
}

/// The end of the phone number starting at `i`, if one does (with its extension).
fn phone_at(b: &[u8], i: usize) -> Option<usize> {
    let plus = b[i] == b'+';
    let g = read_groups(b, i + usize::from(plus), plus)?;
    let d = g.digits();
    // Whether a cue comes before, read only when the rules ask: most numbers in a form are
    // dates or other shapes that fail before the cue matters. (Read twice at most, for `00`
    // numbers only: a cell to keep it costs more than that on ordinary text.)
    let cue = || cue_before(b, i);
    let ok = if plus {
        international(&g, d, &cue)
    } else if d.starts_with(b"00")
        && g.sizes[0] >= 2
        && g.n_groups >= 2
        && !g.paren
        && g.seps & DOT == 0
        && (cue() || !words_before(b, i, &NOT_CUES_BY_FIRST))
    {
        // The calling code's group without the `00` (`00358 13 1010255`, `00 49 30 1234567`).
        let mut rest = g;
        rest.digits.copy_within(2.., 0);
        rest.n -= 2;
        if rest.sizes[0] == 2 {
            rest.sizes.copy_within(1.., 0);
            rest.n_groups -= 1;
        } else {
            rest.sizes[0] -= 2;
        }
        international(&rest, rest.digits(), &cue)
    } else {
        national(b, i, &g, &cue)
    };
    if !ok {
        return None;
    }
    let end = extension(b, g.end).unwrap_or(g.end);
    end_ok(b, end).then_some(end)
}

/// `+` numbers: a calling code whose regions take the rest, or (written loosely) any calling code
/// and 8-15 digits in a phone-like grouping.
fn international(g: &Groups, d: &[u8], cue: &impl Fn() -> bool) -> bool {
    let sizes = g.sizes();
    // Small territories have 4-5 digit numbers (`+683 7012`): written after their calling code.
    let short = d.len() == 7 && sizes.len() >= 2 && calling_code(&d[..usize::from(sizes[0])]);
    if !(8..=15).contains(&d.len()) && !short {
        return false;
    }
    let shaped =
        sizes.len() == 1 || (sizes[0] <= 4 && sizes.last().is_some_and(|s| *s >= 2) || cue());
    shaped && (1..=3).any(|k| calling_code(&d[..k]))
}

/// Whether the ASCII digits `cc` are some region's calling code (none starts with `0`).
fn calling_code(cc: &[u8]) -> bool {
    let code = number(cc) as usize;
    cc.first().is_some_and(|c| *c != b'0')
        && CALLING_CODES.get(code / 8).is_some_and(|bits| bits >> (code % 8) & 1 == 1)
}

/// The regions of calling code `cc` (ASCII digits).
#[cfg(test)]
fn regions(cc: &[u8]) -> impl Iterator<Item = &'static Region> {
    let code = number(cc);
    let real = cc.first().is_some_and(|c| *c != b'0');
    REGIONS.iter().filter(move |r| real && u32::from(r.cc) == code)
}

fn number(d: &[u8]) -> u32 {
    d.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'))
}

/// Whether `forms` ((length, prefix set) pairs) allow `nsn`'s length and first three digits.
fn forms_ok(forms: &[(u8, u16)], nsn: &[u8]) -> bool {
    let Some(p) = nsn.get(..3) else { return false };
    let p = number(p) as usize;
    forms.iter().any(|&(len, set)| {
        usize::from(len) == nsn.len()
            && PREFIXES.get(usize::from(set)).is_some_and(|bits| bits[p / 8] >> (p % 8) & 1 == 1)
    })
}

/// Whether some region dials `d` as a national number (its trunk prefix, if it has one, then a
/// national significant number; North American numbers with or without their trunk `1`). The
/// generated [`NATIONAL`] table holds the union of the regions per written prefix, so this reads
/// five entries instead of every region.
pub fn national_number(d: &[u8]) -> bool {
    NATIONAL.iter().any(|(prefix, forms)| {
        d.strip_prefix(prefix.as_bytes()).is_some_and(|nsn| forms_ok(forms, nsn))
    })
}

/// National numbers: North American `3-3-4` (optionally `1-` first), or a number some region
/// dials nationally, in a phone-like grouping that is not a date or a thousands-grouped amount.
/// After a cue, shorter local numbers (6+ digits) in any grouping.
fn national(b: &[u8], i: usize, g: &Groups, cue: &impl Fn() -> bool) -> bool {
    let d = g.digits();
    let sizes = g.sizes();
    if date_like(d, sizes, g.seps) {
        return false;
    }
    if cue() {
        return (6..=15).contains(&d.len());
    }
    if sizes.len() < 2
        || g.seps & SLASH != 0 && slash_misplaced(b, i)
        || words_before(b, i, &NOT_CUES_BY_FIRST)
    {
        return false;
    }
    // `123-45-6789` is the shape of a US SSN, `30118-3599` of a ZIP+4 code.
    if g.seps == DASH && (sizes == [3, 2, 4] || sizes == [5, 4]) {
        return false;
    }
    let nanp = (sizes == [3, 3, 4] || (sizes == [1, 3, 3, 4] && d[0] == b'1'))
        && matches!(d[usize::from(sizes[0] == 1)], b'2'..=b'9');
    if nanp {
        return true;
    }
    // Dots only in long dotted runs (`06.12.34.56.78`), never mixed with other separators, and
    // not in dotted quads (`192.168.100.100`).
    let quad = sizes.len() == 4 && sizes.iter().all(|s| *s <= 3);
    let dots_ok = g.seps & DOT == 0 || (g.seps == DOT && sizes.len() >= 3 && !quad);
    // One single digit (a trunk prefix, `8 (912) 345-67-89`, or a split area code) in a
    // longer number.
    let singles = sizes.iter().filter(|s| **s == 1).count();
    let grouping = (singles == 0 || singles == 1 && d.len() >= 9)
        && sizes[0] <= 6
        && sizes.len() <= 7
        && dots_ok
        && (8..=14).contains(&d.len());
    // `12 345 678`, `305 017 572`: thousands, not a phone; `08180-08558`: a reference;
    // `4375 9441 3641`: a card-like fragment.
    let thousands = sizes[0] <= 3 && d[0] != b'0' && sizes[1..].iter().all(|s| *s == 3);
    let quads = sizes.len() >= 3 && sizes.iter().all(|s| *s == 4);
    let zero_second = g.seps == DASH && sizes.len() == 2 && d[usize::from(sizes[0])] == b'0';
    // `1203-1204`, `1990-2000`: a range.
    let range = g.seps == DASH && sizes.len() == 2 && sizes[0] == sizes[1] && d[0] != b'0';
    grouping && !thousands && !quads && !zero_second && !range && national_number(d)
}

/// A `/` only after the first group (`030/1234567`), not in dates or fractions.
fn slash_misplaced(b: &[u8], i: usize) -> bool {
    let first = b[i..].iter().take_while(|c| c.is_ascii_digit() || **c == b'(').count();
    b.get(i + first) != Some(&b'/')
        || b[i + first + 1..].iter().take_while(|c| !c.is_ascii_whitespace()).any(|c| *c == b'/')
}

/// `2024-01-15`, `15.01.2024`, `01/02/2024`: three groups with a year at one end.
fn date_like(d: &[u8], sizes: &[u8], seps: u8) -> bool {
    if sizes.len() != 3 || seps & SPACE != 0 && seps != SPACE {
        return false;
    }
    let year = |s: &[u8]| matches!(number(s), 1900..=2099);
    match sizes {
        [4, a, c] if *a <= 2 && *c <= 2 => year(&d[..4]),
        [a, c, 4] if *a <= 2 && *c <= 2 => year(&d[d.len() - 4..]),
        _ => false,
    }
}

/// An extension after the number at `end`: `x123`, ` x 123`, ` ext. 12`, `, extension 12`;
/// its end.
fn extension(b: &[u8], end: usize) -> Option<usize> {
    let mut j = end;
    if b.get(j) == Some(&b',') {
        j += 1;
    }
    while b.get(j) == Some(&b' ') && j < end + 2 {
        j += 1;
    }
    let word = b[j..].iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let w = &b[j..j + word];
    if !(w.eq_ignore_ascii_case(b"x")
        || w.eq_ignore_ascii_case(b"ext")
        || w.eq_ignore_ascii_case(b"extension"))
    {
        return None;
    }
    j += word;
    if b.get(j) == Some(&b'.') {
        j += 1;
    }
    while b.get(j) == Some(&b' ') && word > 1 {
        j += 1;
    }
    let digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
    (1..=6).contains(&digits).then_some(j + digits)
}

/// Words before a number that say it is a phone number, lower case.
const CUES: &[&[u8]] = &[
    b"phone",
    b"tel",
    b"mobile",
    b"mob",
    b"cell",
    b"fax",
    b"call",
    b"whatsapp",
    b"sms",
    b"text me",
    b"ph",
    b"contact",
    b"reach me",
    b"dial",
    b"hotline",
    b"telefon",
    b"t\xc3\xa9l",
    b"handy",
    b"m\xc3\xb3vil",
    b"movil",
    b"celular",
    b"portable",
    b"cellulare",
    b"ring me",
    b"number is",
    b"my number",
    b"direct line",
    b"line is",
    b"office:",
    b"office is",
    b"landline",
    b"callback",
    b"call back",
    b"telephone",
];

/// Words before a number that say it is something else (an order, a reference, an amount).
const NOT_CUES: &[&[u8]] = &[
    b"order",
    b"ref",
    b"invoice",
    b"ticket",
    b"case",
    b"id",
    b"account",
    b"acct",
    b"tracking",
    b"serial",
    b"sku",
    b"item",
    b"part",
    b"transaction",
    b"txn",
    b"confirmation",
    b"booking",
    b"policy",
    b"claim",
    b"version",
    b"build",
    b"amount",
    b"total",
    b"price",
    b"balance",
    b"no.",
    b"nr",
    b"code",
    b"pin",
    b"eur",
    b"usd",
    b"gbp",
];

/// The cue lists by first byte: at each word start only the cues with its first letter are
/// compared.
const CUES_BY_FIRST: ByByte<{ CUES.len() }> = ByByte::new(CUES, true);
const NOT_CUES_BY_FIRST: ByByte<{ NOT_CUES.len() }> = ByByte::new(NOT_CUES, true);

/// Whether a cue comes shortly before `i`, with no digit between: a cue word, or a one-letter
/// label of a signature or form at the start of a line or after `|` or `or` (`P 9214-7500`,
/// `M: 50150046`, `| T: ...`).
fn cue_before(b: &[u8], i: usize) -> bool {
    words_before(b, i, &CUES_BY_FIRST) || letter_label(b, i)
}

/// `P `, `M: `, `| T: ` right before `i`.
fn letter_label(b: &[u8], i: usize) -> bool {
    let mut k = i;
    while k > 0 && b[k - 1] == b' ' {
        k -= 1;
    }
    if k > 0 && b[k - 1] == b':' {
        k -= 1;
    }
    if k == i || k == 0 || !matches!(b[k - 1], b'P' | b'M' | b'T' | b'F' | b'O' | b'W' | b'H') {
        return false;
    }
    let l = k - 1;
    match before(b, l) {
        None | Some(b'\n') => true,
        Some(b' ') => {
            b[..l].ends_with(b"| ") || b[..l].ends_with(b"or ") || b[..l].ends_with("· ".as_bytes())
        }
        _ => false,
    }
}

/// Whether one of `words` comes shortly before `i` (as a word start), with no digit between.
/// The 32-byte window is read as bit masks, eight bytes at a time (a number in a form is asked
/// this up to three times): letters, and digits or line breaks, of which the last cuts the window;
/// only the word starts after it are compared with the list.
fn words_before<const N: usize>(b: &[u8], i: usize, words: &ByByte<N>) -> bool {
    let from = i.saturating_sub(32);
    let w = &b[from..i];
    let cut = |x: u64| swar::digit(x) | swar::eq(x, b'\n');
    let (alpha, cuts) = swar::masks(w, swar::alpha, cut);
    // Only the text after the last digit or line of another entry counts.
    let tail = 64 - cuts.leading_zeros();
    // Word starts after it: letters after a non-letter, and a letter right at its start.
    let mut starts = (alpha & !(alpha << 1) | 1 << tail & alpha) >> tail << tail;
    while starts != 0 {
        let k = starts.trailing_zeros() as usize;
        starts &= starts - 1;
        let second = w.get(k + 1).map_or(0, u8::to_ascii_lowercase);
        let hit = words.with2(w[k].to_ascii_lowercase(), second).any(|cue| {
            w.get(k..k + cue.len()).is_some_and(|s| s.eq_ignore_ascii_case(cue))
                && !w.get(k + cue.len()).is_some_and(|c| c.is_ascii_alphabetic() && cue.len() < 4)
        });
        if hit {
            return true;
        }
    }
    false
}

/// [`words_before`] byte by byte: what it must say.
#[cfg(test)]
fn words_before_bytes<const N: usize>(b: &[u8], i: usize, words: &ByByte<N>) -> bool {
    let from = i.saturating_sub(32);
    let window = &b[from..i];
    let tail = window.iter().rposition(|c| c.is_ascii_digit() || *c == b'\n').map_or(0, |p| p + 1);
    let w = &window[tail..];
    (0..w.len()).any(|k| {
        let first = w[k].to_ascii_lowercase();
        first.is_ascii_alphabetic()
            && !(k > 0 && w[k - 1].is_ascii_alphabetic())
            && words.with(first).any(|cue| {
                w.get(k..k + cue.len()).is_some_and(|s| s.eq_ignore_ascii_case(cue))
                    && !w
                        .get(k + cue.len())
                        .is_some_and(|c| c.is_ascii_alphabetic() && cue.len() < 4)
            })
    })
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

    /// The window read as bit masks says what reading it byte by byte says.
    #[test]
    fn cue_masks_match_the_bytes() {
        let parts: [&str; 18] = [
            "tel ",
            "Phone: ",
            "photo ",
            "order",
            "Ref ",
            "ph",
            "7",
            "(",
            " ",
            "\n",
            "call me on ",
            "no.",
            "x",
            "ID",
            "+",
            "aaaaaaaaaaaa",
            "\u{e9}",
            "Tel",
        ];
        let parts = parts.map(str::as_bytes);
        for b in super::super::joined(&parts, 20, 5000, 0x2545_f491) {
            let (b, t) = (b.as_slice(), String::from_utf8_lossy(&b));
            for i in 0..=b.len() {
                assert_eq!(
                    words_before(b, i, &CUES_BY_FIRST),
                    words_before_bytes(b, i, &CUES_BY_FIRST),
                    "{t:?} at {i}"
                );
                assert_eq!(
                    words_before(b, i, &NOT_CUES_BY_FIRST),
                    words_before_bytes(b, i, &NOT_CUES_BY_FIRST),
                    "{t:?} at {i}"
                );
            }
        }
    }

    /// The rule [`NATIONAL`] is the union of, region by region.
    fn national_by_region(d: &[u8]) -> bool {
        let nsn_ok = |r: &Region, nsn: &[u8]| forms_ok(r.forms, nsn);
        REGIONS.iter().any(|r| match d.strip_prefix(r.trunk.as_bytes()) {
            Some(nsn) if !r.trunk.is_empty() => nsn_ok(r, nsn) || r.cc == 1 && nsn_ok(r, d),
            _ => (r.trunk.is_empty() || r.cc == 1) && nsn_ok(r, d),
        })
    }

    #[test]
    fn the_calling_code_set_is_the_regions_codes() {
        for n in 0..1000 {
            for width in 1..=3 {
                let s = format!("{n:0width$}");
                if s.len() == width {
                    let want = regions(s.as_bytes()).next().is_some();
                    assert_eq!(calling_code(s.as_bytes()), want, "{s}");
                }
            }
        }
        assert!(calling_code(b"44") && calling_code(b"1") && !calling_code(b"044"));
    }

    #[test]
    fn the_national_table_is_the_union_of_the_regions() {
        let mut x: u64 = 0x5eed;
        let (mut yes, mut no) = (0, 0);
        for n in 0..200_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = 4 + (x >> 59) as usize % 14;
            // Lead with a trunk prefix often, as national numbers do.
            let lead: &[u8] = [&b""[..], b"0", b"1", b"8", b"06"][n % 5];
            let mut d = lead.to_vec();
            let mut y = x;
            while d.len() < len {
                d.push(b'0' + (y % 10) as u8);
                y /= 10;
            }
            let want = national_by_region(&d);
            assert_eq!(national_number(&d), want, "{}", String::from_utf8_lossy(&d));
            if want { yes += 1 } else { no += 1 }
        }
        assert!(yes > 1000 && no > 1000, "both outcomes tried: {yes} / {no}");
    }

    use crate::detect::found;

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
            "0491 57 11 68",
            "06.12.34.56.78",
            "(02) 9876 5432",
            "+46 (0)8 123 456 78",
            "+44 (0)20 7946 0958",
            "030 1234567",
            "030/1234567",
            "555-201-3344x123",
            "555-201-3344 ext. 12",
            "0049 30 1234567",
        ] {
            assert_eq!(found(phones, &format!("call {p}, thanks")), [p], "{p}");
            assert_eq!(found(phones, &format!("see {p}")), [p], "{p}");
            assert_eq!(found(phones, &format!("({p}`")), [p], "{p}");
        }
    }

    #[test]
    fn short_numbers_after_a_cue() {
        for (t, p) in [
            ("Phone: 456 7890", "456 7890"),
            ("call me on 9123 4567", "9123 4567"),
            ("tel. 4567890", "4567890"),
            ("Mobile 0176 12345678", "0176 12345678"),
            ("WhatsApp: 612 34 56 78", "612 34 56 78"),
            ("fax (030) 1234-567", "(030) 1234-567"),
            ("CFO\nP 9214-7500", "9214-7500"),
            ("a@b.io or M: 50150046", "50150046"),
            ("the new number for the office is 721-542-5678", "721-542-5678"),
            ("My direct line is 722.65.61.40", "722.65.61.40"),
            ("Telephone: 00358 13 1010255", "00358 13 1010255"),
            ("x,(601)-4713387", "(601)-4713387"),
        ] {
            assert_eq!(found(phones, t), [p], "{t}");
        }
        for t in ["456 7890", "order 9123 4567", "hotel 4567890", "Phone: 2024-01-15"] {
            assert!(found(phones, t).is_empty(), "{t}: {:?}", found(phones, t));
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
            "555-123-4567-890",
            "$100 200 3000",
            "ref 12345-67890",
            "ticket 2024 0815 4711",
            "room 1203-1204",
            "on 01.02.2024",
            "on 01/02/2024",
            "ref 08180-08558",
            "pop. 12 345 678",
            "#555-123-4567",
            "pi is 3.14159265358",
        ] {
            assert!(found(phones, t).is_empty(), "{t}: {:?}", found(phones, t));
        }
    }
}

#[cfg(test)]
mod examples {
    use super::*;

    use crate::detect::found;

    /// libphonenumber's example numbers of every region (fixed line, mobile, toll free), in the
    /// national and international formats it writes (tools/gen_tables.py).
    const EXAMPLES: &str = include_str!("data/phone_examples.tsv");

    /// (examples, found without a cue, found after `Phone:`) per format.
    fn recall(format: &str) -> (usize, usize, usize, Vec<String>) {
        let (mut n, mut bare, mut cued, mut missed) = (0, 0, 0, Vec::new());
        for line in EXAMPLES.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f[2] != format {
                continue;
            }
            n += 1;
            // Numbers of 6 digits or fewer are found only after a cue.
            if found(phones, &format!("see {}.", f[3])) == [f[3]] {
                bare += 1;
            } else {
                missed.push(format!("{} {} {}", f[0], f[1], f[3]));
            }
            if found(phones, &format!("Phone: {}.", f[3])) == [f[3]] {
                cued += 1;
            }
        }
        (n, bare, cued, missed)
    }

    #[test]
    fn every_region_example() {
        let (n, bare, cued, missed) = recall("intl");
        assert!(bare * 1000 >= n * 995 && cued == n, "intl {bare}/{n} {cued}/{n}: {missed:?}");
        let (n, bare, cued, missed) = recall("national");
        println!("national {bare}/{n} bare, {cued}/{n} after a cue; missed: {missed:?}");
        assert!(cued * 100 >= n * 97, "national after a cue {cued}/{n}");
    }
}
