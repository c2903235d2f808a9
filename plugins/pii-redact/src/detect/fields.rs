//! Field context: a value whose form field, JSON key or CSV/TSV column says what it is
//! (`Name: Figueroa, Nancy`, `"full_name": "Birsen Şimşek"`, a `ssn` column, `DOB = 08-Jan-1946`,
//! the speaker of a chat line `[17:01] keld: ...`). The field name makes the value an entity
//! in forms the free-text detectors do not take alone (capitals, `Last, First`, compact SSNs,
//! dates without a cue word next to them).

#[cfg(test)]
use super::Span;
use super::index::ByByte;
use super::{Kind, dob, is_word, person};

/// Every field value in `b` (the standalone form of [`value_at`], for tests).
#[cfg(test)]
pub fn values(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        match value_at(b, i, &mut None) {
            Some((kind, end)) => {
                out.push(Span { start: i, end, kind });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// What a field holds, by its name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum What {
    Name,
    Ssn,
    Dob,
    Address,
    Secret,
    Phone,
    Card,
}

/// Field names, normalised (lower case, `_`/`-` as spaces), and what they hold.
const KEYS: &[(&[u8], What)] = &[
    (b"name", What::Name),
    (b"full name", What::Name),
    (b"fullname", What::Name),
    (b"first name", What::Name),
    (b"firstname", What::Name),
    (b"last name", What::Name),
    (b"lastname", What::Name),
    (b"given name", What::Name),
    (b"surname", What::Name),
    (b"family name", What::Name),
    (b"your name", What::Name),
    (b"display name", What::Name),
    (b"customer", What::Name),
    (b"customer name", What::Name),
    (b"client", What::Name),
    (b"client name", What::Name),
    (b"employee", What::Name),
    (b"employee name", What::Name),
    (b"contact", What::Name),
    (b"contact name", What::Name),
    (b"patient", What::Name),
    (b"patient name", What::Name),
    (b"cardholder", What::Name),
    (b"card holder", What::Name),
    (b"account holder", What::Name),
    (b"holder", What::Name),
    (b"passenger", What::Name),
    (b"guest", What::Name),
    (b"applicant", What::Name),
    (b"beneficiary", What::Name),
    (b"recipient", What::Name),
    (b"sender", What::Name),
    (b"nom", What::Name),
    (b"vorname", What::Name),
    (b"nachname", What::Name),
    (b"nombre", What::Name),
    (b"apellido", What::Name),
    (b"ssn", What::Ssn),
    (b"social security number", What::Ssn),
    (b"social security no.", What::Ssn),
    (b"social security no", What::Ssn),
    (b"dob", What::Dob),
    (b"d.o.b.", What::Dob),
    (b"d.o.b", What::Dob),
    (b"date of birth", What::Dob),
    (b"birth date", What::Dob),
    (b"birthdate", What::Dob),
    (b"birthday", What::Dob),
    (b"born", What::Dob),
    (b"address", What::Address),
    (b"street address", What::Address),
    (b"home address", What::Address),
    (b"mailing address", What::Address),
    (b"postal address", What::Address),
    (b"shipping address", What::Address),
    (b"billing address", What::Address),
    (b"addr", What::Address),
    (b"adresse", What::Address),
    (b"anschrift", What::Address),
    (b"direcci\xc3\xb3n", What::Address),
    (b"api key", What::Secret),
    (b"apikey", What::Secret),
    (b"api secret", What::Secret),
    (b"token", What::Secret),
    (b"access token", What::Secret),
    (b"auth token", What::Secret),
    (b"secret", What::Secret),
    (b"secret key", What::Secret),
    (b"client secret", What::Secret),
    (b"secret access key", What::Secret),
    (b"password", What::Secret),
    (b"passwd", What::Secret),
    (b"pwd", What::Secret),
    (b"bearer", What::Secret),
    (b"phone", What::Phone),
    (b"phone number", What::Phone),
    (b"telephone", What::Phone),
    (b"tel", What::Phone),
    (b"mobile", What::Phone),
    (b"cell", What::Phone),
    (b"fax", What::Phone),
    (b"contact number", What::Phone),
    (b"card", What::Card),
    (b"card number", What::Card),
    (b"card no", What::Card),
    (b"cc number", What::Card),
    (b"credit card", What::Card),
    (b"pan", What::Card),
    (b"live at", What::Address),
    (b"lives at", What::Address),
    (b"living at", What::Address),
    (b"reside at", What::Address),
    (b"resides at", What::Address),
    (b"address is", What::Address),
    (b"moved to", What::Address),
];

/// The field names alone, in [`KEYS`] order.
const KEY_WORDS: [&[u8]; KEYS.len()] = {
    let mut out: [&[u8]; KEYS.len()] = [b""; KEYS.len()];
    let mut i = 0;
    while i < KEYS.len() {
        out[i] = KEYS[i].0;
        i += 1;
    }
    out
};

/// The field names by last byte: a key is only compared where the text ends with its last byte.
const KEYS_BY_LAST: ByByte<{ KEYS.len() }> = ByByte::new(&KEY_WORDS, false);

/// The longest field name read.
const MAX_KEY: usize = 32;

/// A cheap test of what comes before `i`: whether a field value may start there (after a
/// delimiter, a quote, a line start, `: `, `= `, `] `, or a word that can end a key or an
/// introduction). Most word starts in prose fail it, and [`value_at`] is not called.
/// Always inlined: the scan asks it at most word starts, and a call cost a third of the test.
#[inline(always)]
pub fn may_start(b: &[u8], i: usize) -> bool {
    let Some(&p) = i.checked_sub(1).and_then(|k| b.get(k)) else { return true };
    if p != b' ' {
        return matches!(p, b'"' | b'\t' | b',' | b';' | b'|' | b'\n' | b':' | b'=' | b'\'');
    }
    match i.checked_sub(2).map(|k| b[k]) {
        Some(b':' | b'=' | b'"' | b']' | b' ' | b'\t' | b',') | None => true,
        Some(c) => {
            matches!(
                c.to_ascii_lowercase(),
                b'n' | b'b' | b'.' | b't' | b's' | b'o' | b'r' | b'h' | b'y' | b'm'
            ) && (bare_end(&b[i.saturating_sub(9)..i - 1])
                || i >= 3 && matches!(c.to_ascii_lowercase(), b's' | b'm'))
        }
    }
}

/// What [`column`] needs of a text's first line (a CSV/TSV header), read once per text: where
/// it ends (`None`: no line break in its first KiB) and its first delimiter.
#[derive(Clone, Copy)]
pub struct Header {
    end: Option<usize>,
    delim: Option<u8>,
    /// What the first columns' names say (split at `delim`), each looked up at its first use:
    /// a text whose first line holds a delimiter asks at every line start and after every
    /// delimiter, and the name is the same every time. `None`: not looked up yet.
    columns: [Option<Option<What>>; 8],
}

impl Header {
    fn of(b: &[u8]) -> Self {
        let end = b.iter().take(1024).position(|c| *c == b'\n');
        let first = |e: usize| b[..e].iter().find(|c| matches!(c, b',' | b';' | b'\t' | b'|'));
        Self { end, delim: end.and_then(first).copied(), columns: [None; 8] }
    }
}

/// The entity whose value starts at `i` (a letter or digit at a word start) by its field: its
/// kind and end. `header`: the text's [`Header`] once it was read (a scan keeps it; `None`
/// at first).
pub fn value_at(b: &[u8], i: usize, header: &mut Option<Header>) -> Option<(Kind, usize)> {
    if !b.get(i)?.is_ascii_alphanumeric() || i > 0 && is_word(b[i - 1]) {
        return None;
    }
    if i >= 2
        && &b[i - 2..i] == b"] "
        && let Some(end) = speaker(b, i)
    {
        return Some((Kind::Name, end));
    }
    if let Some(end) = person::lower_intro_at(b, i) {
        return Some((Kind::Name, end));
    }
    let (what, quoted, delim) = key_before(b, i).or_else(|| column(b, i, header))?;
    let end = value_end(b, i, quoted, delim);
    let v = &b[i..end];
    match what {
        // The whole value, or its part before a comma (`ZAKARIYA NOUR, DOB 1987-03-16`).
        // The whole value, or its part before a parenthesis or a comma (`ZAKARIYA NOUR, DOB
        // 1987-03-16`, `Yazzie, Michael (d.o.b. ...)`).
        What::Name => {
            let trim = |mut e: usize| {
                while e > i && matches!(b[e - 1], b' ' | b',') {
                    e -= 1;
                }
                e
            };
            let paren = trim(v.iter().position(|c| *c == b'(').map_or(end, |p| i + p));
            let comma = trim(v.iter().position(|c| *c == b',').map_or(end, |p| i + p));
            [end, paren, comma].into_iter().find(|&e| name_ok(&b[i..e])).map(|e| (Kind::Name, e))
        }
        What::Ssn => ssn_len(v).map(|n| (Kind::Ssn, i + n)),
        What::Dob => dob::date_len(b, i).map(|e| (Kind::Dob, e)),
        What::Secret => token_len(&b[i..]).map(|n| (Kind::Secret, i + n)),
        What::Phone => digits_len(v, 5, 15, false).map(|n| (Kind::Phone, i + n)),
        What::Card => digits_len(v, 12, 19, true).map(|n| (Kind::Card, i + n)),
        What::Address => {
            let end = sentence_end(b, i, end);
            address_ok(&b[i..end]).then_some((Kind::Address, next_line(b, end)))
        }
    }
}

/// Where a value that starts at `i` ends: its closing quote, the delimiter of its column, or
/// the end of the line; trailing spaces and punctuation are not part of it.
fn value_end(b: &[u8], i: usize, quoted: bool, delim: Option<u8>) -> usize {
    let mut j = i;
    while let Some(&c) = b.get(j) {
        if c == b'\n' || c == b'\r' || (quoted && c == b'"') || (!quoted && Some(c) == delim) {
            break;
        }
        // JSON without quotes around the value, or `key: value, key: value`.
        if !quoted && delim.is_none() && matches!(c, b'}' | b'"' | b'\t' | b'|') {
            break;
        }
        j += 1;
        if j - i > 160 {
            break;
        }
    }
    while j > i && matches!(b[j - 1], b' ' | b'.' | b',' | b';' | b'"') {
        j -= 1;
    }
    j
}

/// `key: ` / `key = ` / `"key": "` / `key\t` right before `i`: what the key says, whether the
/// value is quoted, and the delimiter that ends it (none: the line or a quote does).
fn key_before(b: &[u8], i: usize) -> Option<(What, bool, Option<u8>)> {
    let mut k = i;
    let quoted = k > 0 && b[k - 1] == b'"';
    k -= usize::from(quoted);
    let spaced = k;
    while k > 0 && matches!(b[k - 1], b' ' | b'\t') {
        k -= 1;
    }
    if k == 0 || !matches!(b[k - 1], b':' | b'=') {
        // `SSN 782113628`, `born 03-Aug-1984`: some keys need no colon.
        return if k < spaced && bare_end(&b[k.saturating_sub(8)..k]) {
            bare_key(b, k)
        } else {
            None
        };
    }
    k -= 1;
    while k > 0 && matches!(b[k - 1], b' ' | b'"') {
        k -= 1;
    }
    key_word(b, k).map(|w| (w, quoted, None))
}

/// The key that ends at `k` (normalised and looked up).
fn key_word(b: &[u8], k: usize) -> Option<What> {
    // Only keys that end with the last byte are compared: most texts before a `:` end in a
    // byte no key ends with, and need no walk back.
    let last = *b.get(k.checked_sub(1)?)?;
    let norm = |c: u8| if matches!(c, b'_' | b'-') { b' ' } else { c.to_ascii_lowercase() };
    // And only those whose last two bytes are the text's (a key's second last byte must be
    // `b[k - 2]` for it to match).
    let before_last = k.checked_sub(2).map_or(0, |j| norm(b[j]));
    let mut candidates = KEYS_BY_LAST.positions2(norm(last), before_last).peekable();
    candidates.peek()?;
    // Keys are compared normalised (lower case, `_`/`-` as spaces) in place, not copied: the
    // key is the last words before `k` (`Patient: C. Childress (d.o.b. `), after no letter.
    // (Every key byte is a letter, a space, `.` or non-ASCII, which no other byte normalises
    // to: a test checks it.)
    candidates
        .filter_map(|p| KEYS.get(usize::from(p)))
        .filter(|(key, _)| {
            let Some(from) = k.checked_sub(key.len()) else { return false };
            b[from..k].iter().zip(key.iter()).all(|(c, x)| norm(*c) == *x)
                && (from == 0 || !b[from - 1].is_ascii_alphabetic())
        })
        .max_by_key(|(key, _)| key.len())
        .map(|(_, w)| *w)
}

/// Whether `tail` (the bytes before a space) ends like a key that needs no colon: a quick
/// test before [`bare_key`], which most words fail.
fn bare_end(tail: &[u8]) -> bool {
    let ends: &[&[u8]] = match tail.last().map(u8::to_ascii_lowercase) {
        Some(b'n') => &[b"ssn", b"born"],
        Some(b'b') => &[b"dob", b"d.o.b"],
        Some(b'.') => &[b"d.o.b.", b"ty no."],
        Some(b't') => &[b"live at", b"ives at", b"ving at", b"side at", b"ides at"],
        Some(b's') => &[b"ress is"],
        Some(b'o') => &[b"oved to"],
        Some(b'r') => &[b"number", b"bearer"],
        Some(b'h') => &[b"birth"],
        Some(b'y') => &[b"birthday"],
        _ => return false,
    };
    // The second last byte first: it tells most words from these endings.
    let before_last = tail.len().checked_sub(2).map_or(0, |k| tail[k].to_ascii_lowercase());
    ends.iter().any(|e| {
        tail.len() >= e.len()
            && e[e.len() - 2] == before_last
            && tail[tail.len() - e.len()..].eq_ignore_ascii_case(e)
    })
}

/// `SSN 782113628`, `born 03-Aug-1984`, `(d.o.b. 9/22/75)`: a key word that ends at `k`.
fn bare_key(b: &[u8], k: usize) -> Option<(What, bool, Option<u8>)> {
    let w = key_word(b, k)?;
    matches!(w, What::Ssn | What::Dob | What::Address | What::Secret).then_some((w, false, None))
}

/// A CSV/TSV row's field at `i`, under a header line (the text's first line) that names its
/// column: what the column holds, whether the value is quoted, the delimiter.
fn column(b: &[u8], i: usize, header: &mut Option<Header>) -> Option<(What, bool, Option<u8>)> {
    let quoted = i > 0 && b[i - 1] == b'"';
    let k = i - usize::from(quoted);
    // Only at a line start or after a delimiter; rows and headers of up to 1 KiB.
    if k > 0 && !matches!(b[k - 1], b'\n' | b',' | b';' | b'\t' | b'|') {
        return None;
    }
    let from = k.saturating_sub(1024);
    let line = from + b[from..k].iter().rposition(|c| *c == b'\n').map(|p| p + 1)?;
    let h = header.get_or_insert_with(|| Header::of(b));
    let header_end = h.end?;
    if line <= header_end {
        return None; // the header itself
    }
    let header = &b[..header_end];
    let delim = if k > line {
        let d = b[k - 1];
        if !matches!(d, b',' | b';' | b'\t' | b'|') {
            return None;
        }
        d
    } else {
        h.delim?
    };
    if !header.contains(&delim) {
        return None;
    }
    // Column index: delimiters before `k` on this line, outside quotes.
    let mut idx = 0;
    let mut inside = false;
    for &c in &b[line..k] {
        if c == b'"' {
            inside = !inside;
        } else if c == delim && !inside {
            idx += 1;
        }
    }
    let what = match h.columns.get_mut(idx) {
        Some(known) if h.delim == Some(delim) => {
            *known.get_or_insert_with(|| column_name(header, delim, idx))
        }
        _ => column_name(header, delim, idx),
    }?;
    Some((what, quoted, Some(delim)))
}

/// What the name of column `idx` of `header` (split at `delim`) says, when it is a whole key.
fn column_name(header: &[u8], delim: u8, idx: usize) -> Option<What> {
    let col = header.split(|c| *c == delim).nth(idx)?;
    let col = col.strip_suffix(b"\r").unwrap_or(col);
    let mut t = col;
    while let [b' ' | b'"', rest @ ..] = t {
        t = rest;
    }
    while let [rest @ .., b' ' | b'"'] = t {
        t = rest;
    }
    if t.len() > MAX_KEY {
        return None; // a line of prose, not a header
    }
    let what = key_word(t, t.len())?;
    // The whole column name is the key (`name`, not `file name`).
    let whole = KEYS.iter().any(|(key, w)| {
        *w == what
            && t.len() == key.len()
            && t.iter().zip(key.iter()).all(|(a, c)| {
                a.to_ascii_lowercase() == *c || (matches!(a, b'_' | b'-') && *c == b' ')
            })
    });
    whole.then_some(what)
}

/// A person's name as a field value: 1-5 words of letters (initials, `'`, `-`, one `,` for
/// `Last, First`), each starting with a capital (any script), not all common words.
fn name_ok(v: &[u8]) -> bool {
    if v.is_empty() || v.len() > 60 {
        return false;
    }
    let mut words = 0;
    let mut plain = 0;
    let mut commas = 0;
    for w in v.split(|c| *c == b' ') {
        let w = match w.strip_suffix(b",") {
            Some(x) => {
                commas += 1;
                x
            }
            None => w,
        };
        if w.is_empty() {
            return false;
        }
        let letters = w
            .iter()
            .all(|c| c.is_ascii_alphabetic() || *c >= 0x80 || matches!(c, b'\'' | b'-' | b'.'));
        let f = person::flags(w);
        // Lower case only for known names (`carol harris`).
        if !letters || !(capital(w) || f & 3 != 0 && f & 4 == 0) {
            return false;
        }
        // Common words count against a name even when some people bear them (`Client`).
        if f & 4 != 0 {
            plain += 1;
        }
        words += 1;
    }
    (1..=5).contains(&words) && commas <= 1 && plain < words
}

/// Whether `w` starts with a capital letter: ASCII, or Latin-1/Latin Extended-A upper case.
pub fn capital(w: &[u8]) -> bool {
    match w {
        [c, ..] if c.is_ascii_uppercase() => true,
        [0xc3, c, ..] => (0x80..=0x9e).contains(c) && *c != 0x97,
        [hi @ (0xc4 | 0xc5), lo, ..] => {
            let cp = (u32::from(*hi & 0x1f) << 6) | u32::from(*lo & 0x3f);
            // Latin Extended-A pairs capitals and small letters; the parity of capitals flips
            // after `ĸ` and after `ŉ`.
            match cp {
                0x100..=0x137 | 0x14a..=0x177 => cp % 2 == 0,
                0x139..=0x148 | 0x179..=0x17e => cp % 2 == 1,
                0x178 => true,
                _ => false,
            }
        }
        _ => false,
    }
}

/// A US SSN as a field value: 9 digits, compact or `3-2-4` with dashes or spaces. Its length.
fn ssn_len(v: &[u8]) -> Option<usize> {
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let n = match v {
        _ if v.len() >= 9 && digits(&v[..9]) => 9,
        _ if v.len() >= 11
            && digits(&v[..3])
            && matches!(v[3], b'-' | b' ')
            && digits(&v[4..6])
            && v[6] == v[3]
            && digits(&v[7..11]) =>
        {
            11
        }
        _ => return None,
    };
    (!v.get(n).is_some_and(u8::is_ascii_alphanumeric)).then_some(n)
}

/// Where a sentence ends in `i..end`: at `. ` or `; ` after a word of 4+ letters or a number
/// (`Culgoa SA 0845. Seen on ...`), not after an abbreviation (`St. Martin`).
fn sentence_end(b: &[u8], i: usize, end: usize) -> usize {
    (i..end)
        .find(|&k| {
            let stop = b[k] == b';'
                || b[k] == b'.' && b.get(k + 1) == Some(&b' ') && {
                    let w = b[i..k].iter().rev().take_while(|c| c.is_ascii_alphanumeric()).count();
                    w >= 4 || b[k - w..k].iter().all(u8::is_ascii_digit)
                };
            stop && k > i
        })
        .unwrap_or(end)
}

/// A value that goes on on the next line when that line reads as the rest of an address (a
/// postcode and city: `9060 Winterthur`, `Coalville Y10 3QQ`, `Orting, WA 11704`), also in a
/// quoted email (`> 3163 Chur`): the end of that line, or `end`.
pub fn next_line(b: &[u8], end: usize) -> usize {
    let mut j = end;
    if b.get(j) == Some(&b'\r') {
        j += 1;
    }
    if b.get(j) != Some(&b'\n') {
        return end;
    }
    j += 1;
    while matches!(b.get(j), Some(b'>' | b' ' | b'\t')) {
        j += 1;
    }
    let start = j;
    // The line, or its part before a sentence goes on (`8804 Eberndorf. Seen on ...`).
    while j < b.len()
        && !matches!(b[j], b'\n' | b'\r' | b';')
        && !(b[j] == b'.' && b.get(j + 1).is_none_or(|c| *c == b' '))
        && j - start <= 60
    {
        j += 1;
    }
    let mut e = j;
    while e > start && matches!(b[e - 1], b' ' | b'.' | b',') {
        e -= 1;
    }
    let line = &b[start..e];
    let ok = !line.is_empty()
        && j - start <= 60
        && (line[0].is_ascii_digit() || capital(line))
        && line.iter().any(u8::is_ascii_digit)
        && !line.iter().any(|c| matches!(c, b':' | b'@' | b'|' | b'+'))
        && line.windows(2).any(|w| w.iter().all(u8::is_ascii_alphabetic))
        && line.iter().filter(|c| c.is_ascii_digit()).count() <= 8;
    if ok { e } else { end }
}

/// A number as a field value (a phone's `+`, digits, spaces, `-`, `.`, `/`, parentheses): `min`
/// to `max` digits and nothing else in the value; a card's must pass Luhn. Its length.
fn digits_len(v: &[u8], min: usize, max: usize, card: bool) -> Option<usize> {
    let n = v
        .iter()
        .take_while(|c| {
            c.is_ascii_digit() || matches!(c, b' ' | b'-' | b'.' | b'/' | b'(' | b')' | b'+')
        })
        .count();
    let mut t = &v[..n];
    while let [rest @ .., b' ' | b'-' | b'.' | b'/' | b'('] = t {
        t = rest;
    }
    let mut digits = [0u8; 20];
    let mut d = 0;
    for c in t.iter().filter(|c| c.is_ascii_digit()) {
        if d == digits.len() {
            return None;
        }
        digits[d] = *c;
        d += 1;
    }
    let whole = n == v.len() || !v[n].is_ascii_alphanumeric();
    let ok = whole && (min..=max).contains(&d) && (!card || super::numbers::luhn(&digits[..d]));
    ok.then_some(t.len())
}

/// A credential as a field value: 12+ bytes of letters, digits and `_-+/=.:`, with a digit
/// and a letter, or both cases. Its length.
fn token_len(v: &[u8]) -> Option<usize> {
    let n = v
        .iter()
        .take(512)
        .take_while(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'/' | b'=' | b'.' | b':')
        })
        .count();
    let mut t = &v[..n];
    while let [rest @ .., b'.' | b':' | b','] = t {
        t = rest;
    }
    let digit = t.iter().any(u8::is_ascii_digit);
    let letter = t.iter().any(u8::is_ascii_alphabetic);
    let cases = t.iter().any(u8::is_ascii_uppercase) && t.iter().any(u8::is_ascii_lowercase);
    (t.len() >= 12
        && letter
        && (digit || cases)
        && !v.get(t.len()).is_some_and(|c| c.is_ascii_alphanumeric()))
    .then_some(t.len())
}

/// An address as a field value: a capital or a digit first, a digit somewhere (house number
/// or postcode), 8 to 160 bytes.
fn address_ok(v: &[u8]) -> bool {
    (8..=160).contains(&v.len())
        && (v[0].is_ascii_digit() || capital(v))
        && v.iter().any(u8::is_ascii_digit)
        && v.contains(&b' ')
        && v.windows(2).any(|w| w.iter().all(u8::is_ascii_alphabetic))
        && !v.contains(&b'@')
}

/// The speaker of a chat line: `[17:01] Keld: ...`, `[20:31] estrella: ...`; the name's end.
fn speaker(b: &[u8], i: usize) -> Option<usize> {
    let from = i.saturating_sub(12);
    let line = b[from..i].iter().rposition(|c| *c == b'\n').map_or(from, |p| from + p + 1);
    let stamp = &b[line..i];
    let shape = stamp.len() >= 8
        && stamp[0] == b'['
        && stamp.ends_with(b"] ")
        && stamp[1..stamp.len() - 2].iter().all(|c| c.is_ascii_digit() || *c == b':');
    if !shape {
        return None;
    }
    let n = b[i..]
        .iter()
        .take(40)
        .take_while(|c| c.is_ascii_alphabetic() || **c >= 0x80 || matches!(c, b' ' | b'\'' | b'-'))
        .count();
    let end = i + n;
    let w = &b[i..end];
    // `Agent`, `bot`, `Support`: roles, not people.
    let roles: [&[u8]; 8] =
        [b"bot", b"agent", b"support", b"system", b"assistant", b"admin", b"operator", b"helpdesk"];
    let role = w.split(|c| *c == b' ').all(|x| person::flags(x) & 7 == 4)
        || roles.iter().any(|r| w.eq_ignore_ascii_case(r));
    (b.get(end) == Some(&b':') && n > 1 && !role).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `key_word` relies on: a key's bytes are letters, spaces, `.` or non-ASCII (a byte
    /// of the text matches one only if it is one, or `_`/`-` for a space), and keys are shorter
    /// than what is read of a header column.
    #[test]
    fn keys_are_plain_words() {
        for (key, _) in KEYS {
            assert!(key.len() < MAX_KEY, "{key:?}");
            assert!(
                key.iter()
                    .all(|c| c.is_ascii_lowercase() || matches!(c, b' ' | b'.') || *c >= 0x80),
                "{key:?}"
            );
        }
    }

    fn found(t: &str) -> Vec<(Kind, String)> {
        let mut v = Vec::new();
        values(t.as_bytes(), &mut v);
        v.iter().map(|s| (s.kind, t[s.start..s.end].to_string())).collect()
    }

    #[test]
    fn values_by_their_field() {
        for (t, kind, want) in [
            ("Name: Figueroa, Nancy\n", Kind::Name, "Figueroa, Nancy"),
            ("Full name:\tMARIÁN JANDA", Kind::Name, "MARIÁN JANDA"),
            ("{\"full_name\": \"Birsen Şimşek\"}", Kind::Name, "Birsen Şimşek"),
            ("employee;ssn;dob\nLizzy Kwabena;142412220;1965-06-28\n", Kind::Name, "Lizzy Kwabena"),
            ("name,ssn\n\"Robin, Sumaiya\",580-28-6730\n", Kind::Name, "Robin, Sumaiya"),
            ("SSN: 507884523.", Kind::Ssn, "507884523"),
            ("Social Security number: 654 15 4291", Kind::Ssn, "654 15 4291"),
            ("DOB = 08-Jan-1946", Kind::Dob, "08-Jan-1946"),
            ("Client: Brian Britt, born 03-Aug-1984", Kind::Dob, "03-Aug-1984"),
            ("[17:03] keld: hi", Kind::Name, "keld"),
            ("email,phone\na@b.io,3214567\n", Kind::Phone, "3214567"),
            ("{\"card_number\": \"6759569649382\"}", Kind::Card, "6759569649382"),
            ("hey, this is estrella lopez", Kind::Name, "estrella lopez"),
            (
                "aws_secret_access_key = 8mAoRDK8txalTYV4nm8n0QSTSS02c2sU++f2sVYA\n",
                Kind::Secret,
                "8mAoRDK8txalTYV4nm8n0QSTSS02c2sU++f2sVYA",
            ),
            (
                "\"api_key\": \"SKdd8c0b60d4dd1452b523218c9466890b\"",
                Kind::Secret,
                "SKdd8c0b60d4dd1452b523218c9466890b",
            ),
            (
                "I live at 7 Young Court\nMarieville, QC B5L 4K8\n",
                Kind::Address,
                "7 Young Court\nMarieville, QC B5L 4K8",
            ),
            (
                "Address: 7033 Marquez St, Rio, WI 44688-5556\n",
                Kind::Address,
                "7033 Marquez St, Rio, WI 44688-5556",
            ),
        ] {
            assert!(found(t).contains(&(kind, want.to_string())), "{t}: {:?}", found(t));
        }
    }

    #[test]
    fn other_fields_and_values_are_not_entities() {
        for t in [
            "{\"name\": \"my-package\", \"version\": \"1.0.0\"}",
            "name: Release Build",
            "filename: Report.pdf",
            "[10:00] Agent: hello",
            "id,name\n1,build\n",
            "SSN: unknown",
            "client = Client(",
            "MAC address: 00:1B:44:11:3A:B7",
            "token: required",
            "password: changeme",
            "phone: none",
            "card: 1234 5678 9012 3456",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
