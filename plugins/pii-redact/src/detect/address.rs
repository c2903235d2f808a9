//! Street addresses: a house number, street name words and a USPS street suffix
//! ([`super::data::street`]: `221B Baker Street`, `1600 Pennsylvania Ave NW`, `12 rue de la
//! Paix`), or a European street and house number (`Hauptstraße 12`, `Via Roma 10`,
//! `Calle Mayor 5`), each with what follows on the same line when it reads as the rest of an
//! address: a unit (`Apt 4B`), a city, a state and ZIP code, a postcode and city
//! (`, 10115 Berlin`, `, London SW1A 2AA`).

use super::index::ByByte;
use super::person::street;
#[cfg(test)]
use super::{Kind, Span};
use super::{before, fields, is_word, swar};

/// Every address in `b` (the standalone form of [`address_at`], for tests).
#[cfg(test)]
pub fn addresses(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        match address_at(b, i) {
            Some(end) => {
                out.push(Span { start: i, end, kind: Kind::Address });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// The address that starts at `i` (a digit or a letter at a word start): its end.
pub fn address_at(b: &[u8], i: usize) -> Option<usize> {
    let c = *b.get(i)?;
    if before(b, i).is_some_and(|p| is_word(p) || matches!(p, b'#' | b'-' | b'.' | b'/' | b'$')) {
        return None;
    }
    if c.is_ascii_digit() {
        number_first(b, i)
    } else {
        unit_first(b, i).or_else(|| name_first(b, i))
    }
}

/// Words of a unit written before the house number (`Flat 19, 15 Ramos Street`), as UK, Irish
/// and Australian addresses begin.
const UNITS: &[&[u8]] = &[b"flat", b"apt", b"apartment", b"unit", b"suite"];

/// An address that begins with its unit: the unit word, an id of 1-6 letters and digits with a
/// digit in it, `, ` or a line break, then an address that starts at a house number. Its end.
fn unit_first(b: &[u8], i: usize) -> Option<usize> {
    let rest = b.get(i..)?;
    let w = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    // At a capital, as the scan calls it (`Flat`, `APT`).
    if !rest.first().is_some_and(u8::is_ascii_uppercase)
        || !UNITS.iter().any(|u| rest[..w].eq_ignore_ascii_case(u))
    {
        return None;
    }
    let mut j = i + w;
    if b.get(j) == Some(&b'.') {
        j += 1;
    }
    if b.get(j) != Some(&b' ') {
        return None;
    }
    j += 1;
    let id = b[j..].iter().take(7).take_while(|c| c.is_ascii_alphanumeric()).count();
    if id == 0 || id > 6 || !b[j..j + id].iter().any(u8::is_ascii_digit) {
        return None;
    }
    j += id;
    match b.get(j..j + 2) {
        Some([b',', b' ']) => j += 2,
        Some([b'\n', _]) => j += 1,
        _ => return None,
    }
    if !b.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    number_first(b, j)
}

/// Unambiguous street types: alone after a house number and a name they make an address.
/// Other USPS suffixes (`Park`, `Way`, `Center`) need the rest of an address after them.
const STRONG: &[&[u8]] = &[
    b"street",
    b"st",
    b"avenue",
    b"ave",
    b"road",
    b"rd",
    b"boulevard",
    b"blvd",
    b"drive",
    b"dr",
    b"lane",
    b"ln",
    b"highway",
    b"hwy",
    b"parkway",
    b"pkwy",
    b"terrace",
    b"ter",
    b"court",
    b"ct",
    b"circle",
    b"cir",
    b"place",
    b"pl",
    b"alley",
    b"aly",
    b"expressway",
    b"expy",
    b"freeway",
    b"fwy",
    b"turnpike",
    b"tpke",
    b"crescent",
    b"close",
    b"gardens",
];

/// French and other street types that come first (`12 rue de la Paix`).
const TYPE_FIRST: &[&[u8]] = &[
    b"rue",
    b"avenue",
    b"boulevard",
    b"bd",
    b"place",
    b"all\xc3\xa9e",
    b"impasse",
    b"chemin",
    b"quai",
    b"cours",
    b"route",
    b"via",
    b"viale",
    b"piazza",
    b"corso",
    b"calle",
    b"avenida",
    b"plaza",
    b"paseo",
    b"rua",
    b"travessa",
    b"largo",
    b"ul.",
    b"ulica",
    b"am",
    b"an der",
    b"auf der",
    b"im",
];

/// Endings of German, Dutch and Nordic street names (`Hauptstraße`, `Keizersgracht`,
/// `Drottninggatan`), and such words alone (`Berliner Straße`).
const ENDINGS: &[&[u8]] = &[
    b"stra\xc3\x9fe",
    b"strasse",
    b"str.",
    b"weg",
    b"gasse",
    b"platz",
    b"allee",
    b"ring",
    b"damm",
    b"ufer",
    b"chaussee",
    b"straat",
    b"laan",
    b"gracht",
    b"plein",
    b"kade",
    b"singel",
    b"dijk",
    b"gatan",
    b"v\xc3\xa4gen",
    b"gata",
    b"vej",
    b"gade",
    b"veien",
    b"gate",
    b"torget",
];

/// The street type lists by first byte and the endings by last byte: a word is only compared
/// with the entries that share that byte.
const STRONG_BY_FIRST: ByByte<{ STRONG.len() }> = ByByte::new(STRONG, true);
const TYPE_FIRST_BY_FIRST: ByByte<{ TYPE_FIRST.len() }> = ByByte::new(TYPE_FIRST, true);
const ENDINGS_BY_LAST: ByByte<{ ENDINGS.len() }> = ByByte::new(ENDINGS, false);

/// The word at `j`: letters (ASCII or not), `.` at its end (`St.`), `'` inside.
fn word(b: &[u8], j: usize) -> usize {
    let mut k = j;
    while let Some(&c) = b.get(k) {
        let inner = || k > j && b.get(k + 1).is_some_and(|n| n.is_ascii_alphabetic() || *n >= 0x80);
        if c.is_ascii_alphabetic() || c >= 0x80 || (matches!(c, b'\'' | b'-') && inner()) {
            k += 1;
        } else {
            break;
        }
    }
    if k > j && b.get(k) == Some(&b'.') {
        k += 1;
    }
    k
}

/// Whether `w` (or `w` without a final `.`) is a word of `list` (ASCII case ignored).
fn is<const N: usize>(w: &[u8], list: &ByByte<N>) -> bool {
    let Some(first) = w.first() else { return false };
    let bare = w.strip_suffix(b".").unwrap_or(w);
    // Only the words whose second byte is the text's are compared.
    let second = w.get(1).map_or(0, u8::to_ascii_lowercase);
    list.with2(first.to_ascii_lowercase(), second)
        .any(|x| w.eq_ignore_ascii_case(x) || bare.eq_ignore_ascii_case(x))
}

/// `221B Baker Street`, `1600 Pennsylvania Ave NW`, `42 W 5th Ave`, `12 rue de la Paix`.
fn number_first(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + b[i..].iter().take(6).take_while(|c| c.is_ascii_digit()).count();
    if j - i > 5 {
        return None;
    }
    if b.get(j).is_some_and(u8::is_ascii_alphabetic) && !b.get(j + 1).is_some_and(|c| is_word(*c)) {
        j += 1; // `221B`
    }
    if b.get(j) != Some(&b' ') {
        return None;
    }
    j += 1;
    let first = word(b, j);
    if first > j && is(&b[j..first], &TYPE_FIRST_BY_FIRST) {
        // Then 1-5 words of the name (`de la Paix`), the last capitalised.
        let (mut k, mut end) = (first, None);
        for _ in 0..5 {
            if b.get(k) != Some(&b' ') {
                break;
            }
            let e = word(b, k + 1);
            if e == k + 1 {
                break;
            }
            if b[k + 1].is_ascii_uppercase() || b[k + 1] >= 0x80 {
                end = Some(e);
            }
            k = e;
        }
        return end.map(|e| fields::next_line(b, rest(b, e).unwrap_or(e)));
    }
    // 1-4 name words (capitalised, ordinals `5th`, directionals `W`), then a suffix.
    let mut k = j;
    for n in 0..5 {
        let e = if b.get(k).is_some_and(u8::is_ascii_digit) {
            let d = k + b[k..].iter().take_while(|c| c.is_ascii_digit()).count();
            let suffix = b.get(d..d + 2).is_some_and(|s| {
                [b"st", b"nd", b"rd", b"th"].contains(&s.try_into().unwrap_or(b"xx"))
            });
            if !suffix {
                return None;
            }
            d + 2
        } else {
            word(b, k)
        };
        if e == k || !(b[k].is_ascii_uppercase() || b[k].is_ascii_digit()) {
            return None;
        }
        let w = &b[k..e];
        if n > 0 && street(w.strip_suffix(b".").unwrap_or(w)) {
            let end = directional(b, e);
            return match rest(b, end) {
                Some(r) => Some(fields::next_line(b, r)),
                None if is(w, &STRONG_BY_FIRST) => Some(fields::next_line(b, end)),
                None => None,
            };
        }
        if b.get(e) != Some(&b' ') {
            return None;
        }
        k = e + 1;
    }
    None
}

/// A directional after the suffix (` NW`, ` N.`): the end.
fn directional(b: &[u8], e: usize) -> usize {
    if b.get(e) != Some(&b' ') {
        return e;
    }
    let w = word(b, e + 1);
    let d = &b[e + 1..w];
    let bare = d.strip_suffix(b".").unwrap_or(d);
    let dirs: [&[u8]; 8] = [b"N", b"S", b"E", b"W", b"NE", b"NW", b"SE", b"SW"];
    if dirs.contains(&bare) && !b.get(w).is_some_and(|c| is_word(*c)) { w } else { e }
}

/// `Hauptstraße 12`, `Berliner Straße 5a`, `Via Roma 10`, `Calle Mayor 5`.
fn name_first(b: &[u8], i: usize) -> Option<usize> {
    // A house number follows within a few words: within 48 bytes, the first byte that cannot
    // be part of a word or the space between two is a digit after a space (eight bytes at a
    // time; most capitals reach a line break, a comma or a colon first).
    let ahead = &b[i..b.len().min(i + 48)];
    if !b[i].is_ascii_uppercase() || !swar::number_after_words(ahead) {
        return None;
    }
    let mut k = i;
    let first = word(b, i);
    for n in 0..4 {
        let e = word(b, k);
        if e == k || b.get(e) != Some(&b' ') {
            return None;
        }
        let next = e + 1;
        // Whether the words read make a street: asked only when a number follows.
        let typed = || {
            let w = &b[k..e];
            // A compound (`Hauptstraße`), or `Straße` after a word (`Berliner Straße`).
            let alone = |w: &[u8]| {
                let bare = w.strip_suffix(b".").unwrap_or(w);
                [&b"stra\xc3\x9fe"[..], b"strasse", b"str."]
                    .iter()
                    .any(|x| w.eq_ignore_ascii_case(x) || bare.eq_ignore_ascii_case(x))
            };
            let last = w.last().map_or(0, u8::to_ascii_lowercase);
            let before_last = w.len().checked_sub(2).map_or(0, |k| w[k].to_ascii_lowercase());
            is(&b[i..first], &TYPE_FIRST_BY_FIRST)
                || (n > 0 && alone(w))
                || ENDINGS_BY_LAST
                    .with2(last, before_last)
                    .any(|x| w.len() > x.len() && w[w.len() - x.len()..].eq_ignore_ascii_case(x))
        };
        if b.get(next).is_some_and(u8::is_ascii_digit) && typed() {
            let d = next + b[next..].iter().take(5).take_while(|c| c.is_ascii_digit()).count();
            if d - next > 4 {
                return None;
            }
            let d = d + usize::from(
                b.get(d).is_some_and(u8::is_ascii_lowercase)
                    && !b.get(d + 1).is_some_and(|c| is_word(*c)),
            );
            if b.get(d).is_some_and(|c| is_word(*c)) {
                return None;
            }
            return Some(fields::next_line(b, rest(b, d).unwrap_or(d)));
        }
        if !b.get(next).is_some_and(|c| c.is_ascii_alphabetic() || *c >= 0x80) {
            return None;
        }
        k = next;
    }
    None
}

/// What follows a street on the same line when it is the rest of an address: `, Apt 4B`,
/// `, Springfield, IL 62704`, `, 10115 Berlin`, `, London SW1A 2AA`. Its end.
fn rest(b: &[u8], e: usize) -> Option<usize> {
    let mut end = e;
    let mut j = e;
    // A unit.
    if let Some(u) = unit(b, j) {
        end = u;
        j = u;
    }
    if b.get(j) != Some(&b',') || b.get(j + 1) != Some(&b' ') {
        return (end > e).then_some(end);
    }
    j += 2;
    // `10115 Berlin`: a postcode, then a capitalised city word.
    if let Some((_, p)) = run(b, j, u8::is_ascii_digit).filter(|(n, _)| (4..=5).contains(n)) {
        if b.get(p) == Some(&b' ') && b.get(p + 1).is_some_and(u8::is_ascii_uppercase) {
            return Some(city(b, p + 1));
        }
        return (end > e).then_some(end);
    }
    // `Springfield, IL 62704`, `London SW1A 2AA`.
    if !b.get(j).is_some_and(u8::is_ascii_uppercase) {
        return (end > e).then_some(end);
    }
    let c = city(b, j);
    if b.get(c) == Some(&b',') && b.get(c + 1) == Some(&b' ') {
        let s = c + 2;
        if b.get(s..s + 2).is_some_and(|x| x.iter().all(u8::is_ascii_uppercase))
            && b.get(s + 2) == Some(&b' ')
            && let Some(z) = zip(b, s + 3)
        {
            return Some(z);
        }
    }
    if b.get(c) == Some(&b' ')
        && let Some(p) = uk_postcode(b, c + 1)
    {
        return Some(p);
    }
    (end > e).then_some(end)
}

/// A US ZIP code (`62704`, `62704-1234`) or a Canadian postcode (`M2L 3N1`) at `j`: its end.
fn zip(b: &[u8], j: usize) -> Option<usize> {
    if let Some((5, z)) = run(b, j, u8::is_ascii_digit) {
        return Some(match b.get(z) {
            Some(b'-') => {
                run(b, z + 1, u8::is_ascii_digit).filter(|(n, _)| *n == 4).map_or(z, |(_, e)| e)
            }
            _ => z,
        });
    }
    let p = b.get(j..j + 7)?;
    let shape = p[0].is_ascii_uppercase()
        && p[1].is_ascii_digit()
        && p[2].is_ascii_uppercase()
        && p[3] == b' '
        && p[4].is_ascii_digit()
        && p[5].is_ascii_uppercase()
        && p[6].is_ascii_digit();
    (shape && !b.get(j + 7).is_some_and(|c| is_word(*c))).then_some(j + 7)
}

/// 1-4 words of a city (capitalised, or joining words: `Sarnow bei Anklam`), and a province
/// code in parentheses (`Genoa (KM)`): the end.
fn city(b: &[u8], j: usize) -> usize {
    let mut end = word(b, j);
    for _ in 0..3 {
        if b.get(end) != Some(&b' ') {
            break;
        }
        let w = word(b, end + 1);
        let x = &b[end + 1..w];
        let joining: [&[u8]; 9] =
            [b"bei", b"am", b"an", b"der", b"de", b"la", b"sur", b"upon", b"on"];
        let capital = x.first().is_some_and(u8::is_ascii_uppercase);
        if capital && x.iter().all(u8::is_ascii_uppercase) {
            break; // a state or postcode, not part of the city
        }
        if !(capital || joining.contains(&x) && b.get(w) == Some(&b' ')) {
            break;
        }
        end = w;
    }
    // `(KM)`: an Italian province.
    if b.get(end..end + 2) == Some(b" (")
        && b.get(end + 4) == Some(&b')')
        && b[end + 2..end + 4].iter().all(u8::is_ascii_uppercase)
    {
        end += 5;
    }
    end.max(j)
}

/// A run of bytes with `f` at `j`: (length, end).
fn run(b: &[u8], j: usize, f: fn(&u8) -> bool) -> Option<(usize, usize)> {
    let n = b.get(j..)?.iter().take_while(|c| f(c)).count();
    (n > 0).then_some((n, j + n))
}

/// A UK postcode at `j` (`SW1A 2AA`, `M1 1AE`): its end.
fn uk_postcode(b: &[u8], j: usize) -> Option<usize> {
    let (out, o) = run(b, j, |c| c.is_ascii_uppercase() || c.is_ascii_digit())?;
    if !(2..=4).contains(&out) || b.get(o) != Some(&b' ') {
        return None;
    }
    let inward = b.get(o + 1..o + 4)?;
    let ok = inward[0].is_ascii_digit()
        && inward[1..].iter().all(u8::is_ascii_uppercase)
        && !b.get(o + 4).is_some_and(|c| is_word(*c))
        && b[j].is_ascii_uppercase();
    ok.then_some(o + 4)
}

/// `, Apt 4B`, ` Suite 200`, ` #12`, ` Unit 5`: the end of a unit after a street.
fn unit(b: &[u8], e: usize) -> Option<usize> {
    let mut j = e + usize::from(b.get(e) == Some(&b','));
    if b.get(j) != Some(&b' ') {
        return None;
    }
    j += 1;
    if b.get(j) == Some(&b'#') {
        j += 1;
    } else {
        let w = word(b, j);
        const UNITS: &[&[u8]] =
            &[b"apt", b"apartment", b"suite", b"ste", b"unit", b"floor", b"fl", b"room"];
        const UNITS_BY_FIRST: ByByte<{ UNITS.len() }> = ByByte::new(UNITS, true);
        if !is(&b[j..w], &UNITS_BY_FIRST) || b.get(w) != Some(&b' ') {
            return None;
        }
        j = w + 1;
    }
    let (_, d) = run(b, j, |c| c.is_ascii_alphanumeric())?;
    b.get(j).is_some_and(u8::is_ascii_digit).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::detect::found;

    #[test]
    fn addresses_in_common_forms() {
        for (t, want) in [
            (
                "ship to 221B Baker Street, London NW1 6XE today",
                "221B Baker Street, London NW1 6XE",
            ),
            (
                "at 1600 Pennsylvania Ave NW, Washington, DC 20500.",
                "1600 Pennsylvania Ave NW, Washington, DC 20500",
            ),
            ("lives at 42 W 5th Ave, Apt 4B", "42 W 5th Ave, Apt 4B"),
            ("12 rue de la Paix, 75002 Paris", "12 rue de la Paix, 75002 Paris"),
            ("Hauptstraße 12, 10115 Berlin", "Hauptstraße 12, 10115 Berlin"),
            ("Berliner Straße 5a", "Berliner Straße 5a"),
            ("Via Roma 10, 00184 Roma", "Via Roma 10, 00184 Roma"),
            ("123 Main St.", "123 Main St."),
            ("500 Oak Park, Springfield, IL 62704", "500 Oak Park, Springfield, IL 62704"),
            ("Flat 19, 15 Ramos Street, Leeds LS1 4AP", "Flat 19, 15 Ramos Street, Leeds LS1 4AP"),
            ("Apt. 4B\n42 W 5th Ave", "Apt. 4B\n42 W 5th Ave"),
        ] {
            assert_eq!(found(addresses, t), [want], "{t}");
        }
    }

    #[test]
    fn near_misses_are_not_addresses() {
        for t in [
            "3 Data Center nodes",
            "the top 10 Best Way to",
            "version 2 Main",
            "we had 5 Park visits",
            "Ring 3 of the kernel",
            "Unit 7, 3 tests failed",
            "Flat 2, then",
        ] {
            assert!(found(addresses, t).is_empty(), "{t}: {:?}", found(addresses, t));
        }
    }
}
