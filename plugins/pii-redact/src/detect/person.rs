//! Person names without a configured list: capitalised words weighed by US census name
//! statistics ([`super::data::names`]: first names, last names, and words that are mostly not
//! names) and by what comes before or after them: a title (`Dr.`), a form field (`Name:`,
//! `"first_name": "`), an introduction or greeting (`my name is`, `Hi`, `Thanks,`, `Best
//! regards,`), or an email address (`Jane Doe <jane@...>`). Without such context, two or more
//! capitalised words must read as first name + surname.

use super::data::names::{BUCKETS, ENTRIES};
use super::data::street::SUFFIXES;
use super::index::ByByte;
#[cfg(test)]
use super::{Kind, Span};
use super::{before, is_word, swar};

const FIRST: u8 = 1;
const LAST: u8 = 2;
const COMMON: u8 = 4;

/// Every name in `b` (the standalone form of [`name_at`], for tests).
#[cfg(test)]
pub fn names(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        match name_at(b, i) {
            Some(end) => {
                out.push(Span { start: i, end, kind: Kind::Name });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// Most words of one name (`Mary Ann J. Smith-Jones` is four).
const MAX_WORDS: usize = 4;

/// The name that starts at `i` (an upper-case ASCII letter at a word start), if one does: its end.
pub fn name_at(b: &[u8], i: usize) -> Option<usize> {
    if !b.get(i)?.is_ascii_uppercase() || before(b, i).is_some_and(is_word) {
        return None;
    }
    let mut flags = [0u8; MAX_WORDS];
    let mut ends = [0usize; MAX_WORDS];
    let mut starts = [0usize; MAX_WORDS];
    let mut n = 0;
    // A first initial (`S. Tyler`): part of the name, not one of its words.
    let lead = b.get(i + 1) == Some(&b'.')
        && b.get(i + 2) == Some(&b' ')
        && b.get(i + 3..).is_some_and(super::fields::capital);
    let mut j = if lead { i + 3 } else { i };
    while n < MAX_WORDS {
        let Some((end, f)) = word(b, j) else { break };
        flags[n] = f;
        starts[n] = j;
        ends[n] = end;
        n += 1;
        // A middle initial (`J.`) and a space, or a space, then the next capitalised word.
        let mut k = end;
        if b.get(k) == Some(&b' ')
            && b.get(k + 1).is_some_and(u8::is_ascii_uppercase)
            && b.get(k + 2) == Some(&b'.')
            && b.get(k + 3) == Some(&b' ')
        {
            k += 3;
        }
        if b.get(k) != Some(&b' ') || !b.get(k + 1..).is_some_and(super::fields::capital) {
            break;
        }
        j = k + 1;
    }
    if n == 0 {
        return None;
    }
    let end = ends[n - 1];
    let (f, first, last) = (&flags[..n], flags[0], flags[n - 1]);
    let plain = |x: u8| x & COMMON != 0 && x & (FIRST | LAST) == 0;
    // Common words alone (`The`, `Please`) are no name, whatever comes before: most
    // capitalised words end here, before the cue is looked for.
    if f.iter().all(|x| plain(*x)) {
        return None;
    }
    let cue = cue_before(b, i).max(if display_name(b, end) { FIELD } else { NONE });
    if lead {
        // `Thanks,⏎S. Tyler`, `Patient: C. Childress`: an initial and a surname after a cue.
        let ok = cue >= MEDIUM && !plain(first) || last & LAST != 0 && last & COMMON == 0;
        return ok.then_some(end);
    }
    let known = |x: u8| x & (FIRST | LAST) != 0;
    // A single unknown word is a name only where a greeting would end: `Hi Priya,`.
    let closed = matches!(b.get(end), None | Some(b',' | b'!' | b'.' | b'\n' | b'\r' | b')'));
    let ok = match cue {
        // Anything capitalised after a title, but a run of plain words.
        TITLE => !f.iter().all(|x| plain(*x)),
        // After a form field: two words, not all plain, or one that is a name.
        FIELD => (n > 1 && !f.iter().all(|x| plain(*x))) || known(first) && first & COMMON == 0,
        // After a greeting or an introduction: a name, or an unknown word that ends the phrase.
        MEDIUM => {
            first & COMMON == 0 && (known(first) || n > 1 || closed)
                || (known(first) && n > 1 && last & LAST != 0)
        }
        // Alone: first name and surname, not place words. The census lists are American, so a
        // name from elsewhere often has a word they lack or hold as a surname only: an unknown
        // word before a surname (`Lautaro Tapia`), two surnames (`Mateo Herrera`) and a first
        // name that is no common word before an unknown word (`Olga Petrova`) count too, and a
        // first name before a surname that is also a common word (`Karen Price`).
        _ => {
            let census = first & FIRST != 0
                && last & (LAST | FIRST) != 0
                && (first & COMMON == 0 || last & LAST != 0 && ends[0] - starts[0] >= 3);
            let plain_first = first & FIRST != 0 && first & COMMON == 0;
            let abroad = match first {
                0 | LAST => last & LAST != 0,
                _ => plain_first && last == 0,
            };
            n >= 2
                && (last & COMMON == 0 && (census || abroad) || plain_first && last & LAST != 0)
                && !(1..n).any(|x| street(&b[starts[x]..ends[x]]))
        }
    };
    ok.then_some(ends[n - 1])
}

/// A capitalised word at `j`: its end and flags. Letters (ASCII or not), with inner `'` or `-`
/// before a capital (`O'Brien`, `Jean-Luc`); not all capitals, not a single letter.
fn word(b: &[u8], j: usize) -> Option<(usize, u8)> {
    if !super::fields::capital(b.get(j..)?) {
        return None;
    }
    // One pass over the word: its end, whether it has a small letter and an inner capital, and
    // its census hash (as `flags` computes it), each byte folded in as it is read.
    let first = if b[j] < 0x80 { 1 } else { 2 };
    let mut h = b.get(j..j + first)?.iter().fold(FNV_SEED, |h, c| fnv(h, *c));
    let mut k = j + first;
    let (mut lower, mut camel) = (false, false);
    while let Some(&c) = b.get(k) {
        if c.is_ascii_lowercase() || c >= 0x80 {
            lower = true;
        } else if c.is_ascii_uppercase() {
            // Inner capitals only as in `McDonald`, `MacLeod`, `DeShawn`, `O'Brien`,
            // `Jean-Luc`, not in identifiers (`TestModel`).
            let p = k - j;
            camel |= !matches!(b[k - 1], b'\'' | b'-')
                && p != 2
                && !(p == 3 && b[j..].starts_with(b"Mac"));
        } else if !(matches!(c, b'\'' | b'-') && b.get(k + 1).is_some_and(u8::is_ascii_uppercase)) {
            break;
        }
        h = fnv(h, c);
        k += 1;
    }
    if !lower || k - j < 2 || b.get(k).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        return None;
    }
    if camel {
        return None;
    }
    Some((k, flags_of(h)))
}

/// A name written in lower case after an introduction (`hi, this is estrella lopez`, `I'm
/// annika yilmaz`): a known first name that is not a common word, then up to two surnames or
/// unknown words. Its end.
pub fn lower_intro_at(b: &[u8], i: usize) -> Option<usize> {
    // Every introduction ends in `s `, `m ` or `'m ` (`this is `, `I am `, `I'm `).
    if !b.get(i)?.is_ascii_lowercase()
        || i < 3
        || b[i - 1] != b' '
        || !matches!(b[i - 2].to_ascii_lowercase(), b's' | b'm')
    {
        return None;
    }
    let tail = &b[i.saturating_sub(12)..i];
    let intros: [&[u8]; 7] =
        [b"this is ", b"i'm ", b"i am ", b" im ", b" its ", b"it's ", b"name is "];
    if !intros
        .iter()
        .any(|x| tail.len() >= x.len() && tail[tail.len() - x.len()..].eq_ignore_ascii_case(x))
    {
        return None;
    }
    let lower_word = |j: usize| {
        let n = b[j..].iter().take(24).take_while(|c| c.is_ascii_lowercase()).count();
        (n >= 2 && !b.get(j + n).is_some_and(|c| is_word(*c))).then_some(j + n)
    };
    let mut end = lower_word(i)?;
    let f = flags(&b[i..end]);
    if f & FIRST == 0 || f & COMMON != 0 {
        return None;
    }
    for _ in 0..2 {
        if b.get(end) != Some(&b' ') {
            break;
        }
        let Some(e) = lower_word(end + 1) else { break };
        let g = flags(&b[end + 1..e]);
        if g & COMMON != 0 || g & FIRST != 0 && g & LAST == 0 {
            break;
        }
        end = e;
    }
    Some(end)
}

/// The census/common-word flags of `w` (ASCII case ignored): 0 when unknown. One bucket of
/// the generated table is read (see tools/gen_tables.py for why buckets).
pub fn flags(w: &[u8]) -> u8 {
    flags_of(w.iter().fold(FNV_SEED, |h, c| fnv(h, *c)))
}

/// The FNV-1a hash [`flags`] starts from.
const FNV_SEED: u32 = 0x811c_9dc5;

/// `h` and one more byte (ASCII case ignored), as [`flags`] hashes a word.
fn fnv(h: u32, c: u8) -> u32 {
    (h ^ u32::from(c.to_ascii_lowercase())).wrapping_mul(0x0100_0193)
}

/// [`flags`] of the word whose hash is `h`.
fn flags_of(h: u32) -> u8 {
    let b = (h >> 20) as usize;
    let (Some(&lo), Some(&hi)) = (BUCKETS.get(b), BUCKETS.get(b + 1)) else { return 0 };
    // A bucket is sorted and its keys (`e >> 3`) unique (tools/gen_tables.py): a binary search
    // reads about three of its seven entries where a scan read all of a miss's.
    let Some(bucket) = ENTRIES.get(usize::from(lo)..usize::from(hi)) else { return 0 };
    bucket.binary_search_by_key(&(h >> 3), |e| e >> 3).map_or(0, |k| (bucket[k] & 7) as u8)
}

/// Whether `w` is a USPS street suffix (`Street`, `Park`, `Ave`).
pub fn street(w: &[u8]) -> bool {
    let mut lower = [0u8; 16];
    let Some(dst) = lower.get_mut(..w.len()) else { return false };
    for (d, s) in dst.iter_mut().zip(w) {
        *d = s.to_ascii_lowercase();
    }
    SUFFIXES.binary_search_by(|s| s.as_bytes().cmp(dst)).is_ok()
}

/// How strongly the text before a name says one follows.
const NONE: u8 = 0;
const MEDIUM: u8 = 1;
const FIELD: u8 = 2;
const TITLE: u8 = 3;

/// Titles and name fields (the text before ends with one of these): a name follows. Compared
/// lower-case, with quotes dropped and `_` read as a space (`"first_name": "` reads
/// `first name:`).
const TITLES: &[&[u8]] = &[
    b"mr",
    b"mr.",
    b"mrs",
    b"mrs.",
    b"ms",
    b"ms.",
    b"miss",
    b"mx",
    b"mx.",
    b"dr",
    b"dr.",
    b"prof",
    b"prof.",
    b"sir",
    b"dame",
    b"madam",
    b"mme",
    b"mlle",
    b"herr",
    b"frau",
    b"sr.",
    b"sra.",
    b"mister",
    b"doctor",
    b"professor",
    b"my name is",
    b"name is",
    b"name:",
    b"name =",
    b"name=",
    b"surname:",
    b"nom:",
    b"vorname:",
    b"nachname:",
    b"nombre:",
];

/// Form fields that often hold a name: one may follow (compared as [`TITLES`]).
const FIELDS: &[&[u8]] = &[
    b"contact:",
    b"customer:",
    b"from:",
    b"to:",
    b"cc:",
    b"attn:",
    b"attn",
    b"attention:",
    b"author:",
    b"signed:",
    b"patient:",
    b"employee:",
    b"client:",
    b"applicant:",
    b"guest:",
    b"passenger:",
    b"holder:",
    b"cardholder:",
    b"beneficiary:",
    b"recipient:",
    b"sender:",
    b"owner:",
    b"signed by",
    b"written by",
];

/// Greetings, introductions and sign-offs: a name may follow.
const MEDIUM_CUES: &[&[u8]] = &[
    b"i'm",
    b"i am",
    b"hi its",
    b"hey its",
    b"hi it's",
    b"hey it's",
    b"this is",
    b"call me",
    b"hi",
    b"hello",
    b"hey",
    b"dear",
    b"thanks,",
    b"thanks",
    b"thank you,",
    b"thank you",
    b"gr\xc3\xbc\xc3\x9fen",
    b"gr\xc3\xbc\xc3\x9fe",
    b"cordialement",
    b"saludos",
    b"atentamente",
    b"groeten",
    b"h\xc3\xa4lsningar",
    b"pozdrawiam",
    b"saluti",
    b"regards,",
    b"cheers,",
    b"best,",
    b"sincerely,",
    b"yours,",
    b"wishes,",
    b"love,",
    b"\n--",
    b"met with",
    b"spoke with",
    b"spoke to",
    b"talked to",
    b"cc",
];

/// The cue lists by last byte: a cue is only compared where the text ends with its last byte.
const TITLES_BY_LAST: ByByte<{ TITLES.len() }> = ByByte::new(TITLES, false);
const FIELDS_BY_LAST: ByByte<{ FIELDS.len() }> = ByByte::new(FIELDS, false);
const MEDIUM_BY_LAST: ByByte<{ MEDIUM_CUES.len() }> = ByByte::new(MEDIUM_CUES, false);

/// Bit `c`: some cue ends with byte `c` (lower case); most words before a capital fail here.
const CUE_LAST: [bool; 256] = {
    let mut t = [false; 256];
    let lists: [&[&[u8]]; 3] = [TITLES, FIELDS, MEDIUM_CUES];
    let mut l = 0;
    while l < lists.len() {
        let mut k = 0;
        while k < lists[l].len() {
            let cue = lists[l][k];
            t[cue[cue.len() - 1] as usize] = true;
            k += 1;
        }
        l += 1;
    }
    t
};

/// The strongest cue that the text before `i` ends with.
fn cue_before(b: &[u8], i: usize) -> u8 {
    let from = i.saturating_sub(32);
    let raw = &b[from..i];
    let mut p = raw.len();
    while p > 0 && matches!(raw[p - 1], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'' | b'>') {
        p -= 1;
    }
    if p == 0 && from > 0 || p > 0 && !CUE_LAST[usize::from(raw[p - 1].to_ascii_lowercase())] {
        return NONE;
    }
    // After a full stop only a title can be the cue (`Dr.`, `Mrs.`): the end of a sentence is
    // the common case, and needs no closer look.
    if p > 0 && raw[p - 1] == b'.' {
        let w = raw[..p - 1].iter().rev().take_while(|c| c.is_ascii_alphabetic()).count();
        let word = &raw[p - 1 - w..p];
        let before_ok = p - 1 - w == 0 || !raw[p - 2 - w].is_ascii_alphanumeric();
        let title = before_ok && TITLES_BY_LAST.with(b'.').any(|t| t.eq_ignore_ascii_case(word));
        return if title { TITLE } else { NONE };
    }
    if no_cue_ends(raw, p) {
        return NONE;
    }
    cue_of(raw, from == 0)
}

/// Whether the text's last two bytes, where they are read as they stand (neither a quote, `>`
/// nor `_`, and no quote kept after a final `i`), end no cue: most words before a capital end
/// in such a pair, and need no closer look. `raw[..p]` is the text without trailing spaces,
/// quotes and `>`.
fn no_cue_ends(raw: &[u8], p: usize) -> bool {
    if p < 2 {
        return false;
    }
    let (x, y) = (raw[p - 2], raw[p - 1]);
    let plain = |c: u8| !matches!(c, b'"' | b'\'' | b'>' | b'_');
    let quote_kept = y.eq_ignore_ascii_case(&b'i')
        && raw[p..].iter().find(|c| **c != b'>').is_some_and(|c| matches!(c, b'"' | b'\''));
    let (x, y) = (x.to_ascii_lowercase(), y.to_ascii_lowercase());
    plain(x)
        && plain(y)
        && !quote_kept
        && !TITLES_BY_LAST.has_pair(y, x)
        && !FIELDS_BY_LAST.has_pair(y, x)
        && !MEDIUM_BY_LAST.has_pair(y, x)
}

/// The strongest cue that `raw` (the text's last 32 bytes; `whole`: all of it) ends with,
/// compared normalised.
fn cue_of(raw: &[u8], whole: bool) -> u8 {
    // The last 32 bytes, lower case, quotes dropped, `_`/`-` as spaces (not `--`), trailing
    // spaces and line breaks trimmed.
    let (buf, mut n) = normalised(raw);
    while n > 0 && matches!(buf[n - 1], b' ' | b'\n' | b'\r' | b'\t') {
        n -= 1;
    }
    let text = &buf[..n];
    let last = text.last().copied();
    let at_word = |cue: &[u8]| {
        cue.last().copied() == last
            && text.ends_with(cue)
            && (text.len() == cue.len() && whole
                || !text[..text.len() - cue.len()].last().is_some_and(u8::is_ascii_alphanumeric))
    };
    let Some(last) = last else { return NONE };
    // Only the cues whose last two bytes are the text's are compared.
    let before_last = text.len().checked_sub(2).map_or(0, |k| text[k]);
    if TITLES_BY_LAST.with2(last, before_last).any(at_word) {
        TITLE
    } else if FIELDS_BY_LAST.with2(last, before_last).any(at_word) {
        FIELD
    } else if MEDIUM_BY_LAST.with2(last, before_last).any(at_word) {
        MEDIUM
    } else {
        NONE
    }
}

/// `raw` (at most 32 bytes) lower-cased, `_` as a space, quotes dropped but after an `i`
/// (`i'm`), `>` dropped: the bytes and their count. Eight bytes at a time where `raw` holds
/// whole words of eight and neither quotes nor `>` (the common case: then nothing is dropped).
fn normalised(raw: &[u8]) -> ([u8; 32], usize) {
    let mut buf = [0u8; 32];
    if raw.len() <= 32 && raw.len().is_multiple_of(8) {
        let mut plain = true;
        for (k, c) in raw.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            if swar::eq(x, b'"') | swar::eq(x, b'\'') | swar::eq(x, b'>') != 0 {
                plain = false;
                break;
            }
            // Bit 5 set in the capitals; `_` (0x5f) xor 0x7f is a space.
            let y = (x | (swar::upper(x) >> 2)) ^ ((swar::eq(x, b'_') >> 7) * 0x7f);
            buf[8 * k..8 * k + 8].copy_from_slice(&y.to_le_bytes());
        }
        if plain {
            return (buf, raw.len());
        }
    }
    normalised_bytes(raw)
}

/// [`normalised`], a byte at a time.
fn normalised_bytes(raw: &[u8]) -> ([u8; 32], usize) {
    let mut buf = [0u8; 32];
    let mut n = 0;
    for &c in raw.iter().take(32) {
        let c = match c {
            b'"' | b'\'' if !(n > 0 && buf[n - 1] == b'i') => continue,
            // Quoted email lines (`> Regards,⏎> Jane`).
            b'>' => continue,
            b'_' => b' ',
            c => c.to_ascii_lowercase(),
        };
        buf[n] = c;
        n += 1;
    }
    (buf, n)
}

/// `Jane Doe <jane@example.com>`, `"Jane Doe" <...@...>`: the name of an email address.
fn display_name(b: &[u8], end: usize) -> bool {
    let mut k = end + usize::from(b.get(end) == Some(&b'"'));
    k += usize::from(b.get(k) == Some(&b' '));
    b.get(k) == Some(&b'<')
        && b[k..].iter().take(80).take_while(|c| **c != b'>').any(|c| *c == b'@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn census_lookup_finds_what_a_scan_of_the_bucket_finds() {
        let scan = |h: u32| {
            let b = (h >> 20) as usize;
            ENTRIES[usize::from(BUCKETS[b])..usize::from(BUCKETS[b + 1])]
                .iter()
                .find(|e| *e >> 3 == h >> 3)
                .map_or(0, |e| (e & 7) as u8)
        };
        for e in ENTRIES {
            assert_eq!(flags_of(e), (e & 7) as u8, "{e:#x}");
            assert_eq!(flags_of(e ^ 7), (e & 7) as u8, "the low three bits are not the key");
        }
        let mut h = 0x9e37_79b9_u32;
        for _ in 0..200_000 {
            h ^= h << 13;
            h ^= h >> 17;
            h ^= h << 5;
            assert_eq!(flags_of(h), scan(h), "{h:#x}");
        }
    }

    /// The eight-bytes-at-a-time cue window is the byte-by-byte one, on every byte value in
    /// every lane and on generated windows with quotes, `>`, `_` and capitals.
    #[test]
    fn normalised_windows_as_byte_by_byte() {
        for c in 0..=255u8 {
            for at in 0..32 {
                let mut raw = *b"Dear Mr_X said: hello THERE my N";
                raw[at] = c;
                assert_eq!(normalised(&raw), normalised_bytes(&raw), "{c:#x} at {at}");
            }
        }
        let parts: [&[u8]; 9] = [b"I", b"'", b"\"", b">", b"_", b" ", b"Name", b"dr.", b"\xc3\x89"];
        let mut seed = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let mut t = Vec::new();
            while t.len() < 40 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                t.extend_from_slice(parts[(seed % 9) as usize]);
            }
            for len in [8, 16, 24, 32] {
                let raw = &t[..len];
                assert_eq!(normalised(raw), normalised_bytes(raw), "{raw:?}");
            }
        }
    }

    use crate::detect::found;

    #[test]
    fn names_in_context() {
        for (t, want) in [
            ("Hi Jane, the order shipped.", "Jane"),
            ("Dear Mr. Smith, thank you", "Smith"),
            ("My name is Priya Raman and I", "Priya Raman"),
            ("Best regards,\nJane Doe\nAcme", "Jane Doe"),
            ("Thanks, Jane", "Jane"),
            ("{\"first_name\": \"Wojciech\", ", "Wojciech"),
            ("Name: Chidi Okafor\n", "Chidi Okafor"),
            ("From: Jane Doe <jane@example.com>", "Jane Doe"),
            ("I met Maria Garcia yesterday", "Maria Garcia"),
            ("ask John F. Kennedy about", "John F. Kennedy"),
            ("Contact: Sean O'Brien", "Sean O'Brien"),
            ("signed by Ronald McDonald.", "Ronald McDonald"),
            ("cc Anne-Marie Dupont", "Anne-Marie Dupont"),
            ("Thanks,\nS. Tyler", "S. Tyler"),
            ("> Regards,\n> Ine Ødegaard", "Ine Ødegaard"),
            ("Mit freundlichen Grüßen\nAmira Khalil", "Amira Khalil"),
            // No cue, a word the census lists lack or hold as a surname only.
            ("Assigned to Lautaro Tapia yesterday", "Lautaro Tapia"),
            ("user Olga Petrova reports", "Olga Petrova"),
            ("returned by Mateo Herrera with", "Mateo Herrera"),
            ("the complaint from Karen Price as discussed", "Karen Price"),
        ] {
            assert_eq!(found(names, t), [want], "{t}");
        }
    }

    /// Where the two-byte check says no cue ends, reading the whole window finds none either.
    #[test]
    fn pair_check_never_hides_a_cue() {
        let parts: [&str; 14] = [
            "Hi", " ", "\"", "'", ">", "_", "thanks,", "name", ":", "\n", "i", "Dr", "x",
            "regards,",
        ];
        let parts = parts.map(str::as_bytes);
        for t in super::super::joined(&parts, 8, 20_000, 0x9e37_79b9) {
            let raw = &t[t.len().saturating_sub(32)..];
            let mut p = raw.len();
            while p > 0 && matches!(raw[p - 1], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'' | b'>')
            {
                p -= 1;
            }
            if no_cue_ends(raw, p) {
                let t = String::from_utf8_lossy(&t);
                assert_eq!(cue_of(raw, raw.len() == t.len()), NONE, "{t:?}");
            }
        }
    }

    #[test]
    fn capitalised_words_alone_are_not_names() {
        for t in [
            "The Customer Service team",
            "Hi Team, the build is green.",
            "Dear Customer,",
            "Welcome to New York City",
            "Grant Park is open",
            "I'm Sorry about that",
            "See the Release Notes",
            "Virginia Beach",
            "const CLIENT: Token = 1",
            "MODEL_NAME=SomeNewModel",
            "this is Unix-specific",
            "efficiency -- Python itself",
            "the so-called Kullback-Leibler divergence",
            "Will you send the Monday Report?",
            // Neither word a name, or a common word at either end, or a street's suffix.
            "Kubernetes Operator",
            "Jordan River",
            "Maple Street",
        ] {
            assert!(found(names, t).is_empty(), "{t}: {:?}", found(names, t));
        }
    }
}
