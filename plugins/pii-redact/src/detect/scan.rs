//! The single pass over a text that drives every built-in detector and word list: a table of
//! first-byte classes says which detectors can start at a byte, and runs of word bytes are
//! skipped after their first byte (every detector that starts at a letter or digit needs a word
//! start). Each detector keeps its own cursor, so it tries exactly the positions its standalone
//! loop (kept for the tests) would: the results are the same, byte for byte.

use super::{
    Detectors, Kind, Span, address, contact, dob, fields, iban, is_word, net, numbers, person,
    phone, secrets, swar,
};

/// Class bits of a byte: which detectors may start there.
const DIGIT: u16 = 1 << 0;
/// `a-f`, `A-F`: IPv6 groups.
const HEX: u16 = 1 << 1;
/// ASCII letters: IBAN country codes (either case).
const LETTER: u16 = 1 << 2;
/// `s`, `A`, `g`, `x`, `e` (token prefixes and JWTs) and `-` (PEM blocks).
const SECRET: u16 = 1 << 3;
const AT: u16 = 1 << 4;
/// `+` and `(`: phones.
const PHONE: u16 = 1 << 5;
const COLON: u16 = 1 << 6;
/// Set per scan: an entry of the names list starts with this byte.
const NAME: u16 = 1 << 7;
/// Set per scan: an entry of the deny-words list starts with this byte.
const DENY: u16 = 1 << 8;

/// The built-in classes (read-only: it lives in the data segment).
pub(super) const CLASS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut k = 0;
        if c.is_ascii_digit() {
            k |= DIGIT;
        }
        if matches!(c, b'a'..=b'f' | b'A'..=b'F') {
            k |= HEX;
        }
        if c.is_ascii_alphabetic() {
            k |= LETTER;
        }
        if matches!(
            c,
            b's' | b'A'
                | b'g'
                | b'x'
                | b'e'
                | b'-'
                | b'r'
                | b'n'
                | b'p'
                | b'h'
                | b'd'
                | b'S'
                | b'k'
        ) {
            k |= SECRET;
        }
        if c == b'@' {
            k |= AT;
        }
        if matches!(c, b'+' | b'(') {
            k |= PHONE;
        }
        if c == b':' {
            k |= COLON;
        }
        t[i] = k;
        i += 1;
    }
    t
};

/// Where each detector's search goes on: it is not tried before its cursor.
#[derive(Default)]
struct Cursors {
    secret: usize,
    card: usize,
    iban: usize,
    ssn: usize,
    email: usize,
    ip: usize,
    phone: usize,
    deny: usize,
    name: usize,
    person: usize,
    address: usize,
    dob: usize,
    field: usize,
}

/// Every hit of the enabled built-in detectors and of both word lists in `b`, unresolved.
pub fn all(d: &Detectors, b: &[u8], hits: &mut Vec<Span>) {
    // One look at the enabled kinds: which class bits matter, and which detectors are on.
    let (mut mask, mut on, mut names) = (0, Enabled::default(), false);
    for k in &d.enabled {
        match k {
            Kind::Secret => (mask, on.secret) = (mask | SECRET, true),
            Kind::Card => (mask, on.card) = (mask | DIGIT, true),
            Kind::Ssn => (mask, on.ssn, on.ssn_field) = (mask | DIGIT, true, true),
            Kind::Phone => (mask, on.phone) = (mask | DIGIT | PHONE, true),
            Kind::Ip => (mask, on.ip) = (mask | DIGIT | HEX | COLON, true),
            Kind::Iban => mask |= LETTER,
            Kind::Email => mask |= AT,
            Kind::Name => {
                names = !d.names.is_empty();
                if d.auto_names {
                    (mask, on.person) = (mask | LETTER, true);
                }
            }
            Kind::Address => (mask, on.address) = (mask | DIGIT | LETTER, true),
            Kind::Dob => (mask, on.dob) = (mask | DIGIT | LETTER, true),
            Kind::Custom(_) => {}
        }
    }
    // Field values: any of their kinds on (names only with `auto_names`).
    on.fields =
        on.ssn_field || on.dob || on.address || on.person || on.secret || on.phone || on.card;
    if on.fields {
        mask |= DIGIT | LETTER;
    }
    let deny = !d.deny.is_empty();
    // With word lists, a table of this scan's classes; without, the built-in table will do.
    let table = (names || deny).then(|| {
        let mut t = [0u16; 256];
        for (c, k) in t.iter_mut().enumerate() {
            let byte = c as u8;
            *k = CLASS[c] & mask;
            if names && d.names.starts_with(byte) {
                *k |= NAME;
            }
            if deny && d.deny.starts_with(byte) {
                *k |= DENY;
            }
        }
        t
    });
    let class = |c: u8| match &table {
        Some(t) => t[usize::from(c)],
        None => CLASS[usize::from(c)] & mask,
    };
    let mut s = Scan { d, b, hits, cur: Cursors::default(), on, header: None };
    // Eight bytes at a time: the positions to look at are word starts and non-word bytes whose
    // class may be set. Without word lists the classes are known here, so the mask is exact;
    // with them, any word start and any non-word byte but a space (no entry starts with one:
    // entries are trimmed).
    let exact = table.is_none();
    let mut prev_word = 0;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        let w = swar::word(x);
        let starts = w & !((w << 8) | prev_word);
        let mut look = if exact {
            (starts & swar::word_class(x)) | swar::punct_class(x)
        } else {
            starts | (!w & !swar::eq(x, b' ') & swar::HIGH)
        };
        while look != 0 {
            let p = i + (look.trailing_zeros() / 8) as usize;
            look &= look - 1;
            let k = class(b[p]);
            if k != 0 {
                s.at(p, k);
            }
        }
        prev_word = (w >> 63) << 7;
        i += 8;
    }
    let mut prev_word = prev_word != 0;
    for (p, &c) in b.iter().enumerate().skip(i) {
        let word = is_word(c);
        let k = class(c);
        if k != 0 && !(word && prev_word) {
            s.at(p, k);
        }
        prev_word = word;
    }
}

/// Which of the detectors that share a class bit are on.
#[derive(Default)]
struct Enabled {
    card: bool,
    ssn: bool,
    phone: bool,
    ip: bool,
    person: bool,
    address: bool,
    dob: bool,
    /// Field values (by key or column) of these kinds.
    fields: bool,
    secret: bool,
    ssn_field: bool,
}

/// Whether the two bytes can begin a secret: `sk-`, `AKIA`/`ASIA`, `gh..`, `github_pat_`, `xox.`, `eyJ`, `-----`.
fn second_ok(first: u8, second: u8) -> bool {
    matches!(
        (first, second),
        (b's', b'k' | b'h')
            | (b'A', b'K' | b'S' | b'I')
            | (b'g', b'h' | b'i' | b'l')
            | (b'r', b'k')
            | (b'n', b'p')
            | (b'p', b'y')
            | (b'h', b'f')
            | (b'd', b'o')
            | (b'S', b'G')
            | (b'k', b'e')
            | (b'x', b'o')
            | (b'e', b'y')
            | (b'-', b'-')
    )
}

/// Whether an address can start at `i` (a hex digit or `:`): a `:` there, or after up to four hex
/// digits (IPv6), or a `.` after up to three digits (IPv4). A `:` is always tried (the search
/// after one skips the next word). Always inlined, as [`Scan::field`].
#[inline(always)]
fn ip_shape(b: &[u8], i: usize) -> bool {
    // Most words fail at the second byte.
    let next = b.get(i + 1).copied().unwrap_or(0);
    if b[i] != b':' && !(next.is_ascii_hexdigit() || matches!(next, b':' | b'.')) {
        return false;
    }
    // One look at eight bytes first: most words hold neither a `:` nor a `.` there. (Read as
    // an array: eight indexed bytes compiled to eight loads here.)
    if let Some(c) = b.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        let x = u64::from_le_bytes(c);
        if swar::eq(x, b':') | swar::eq(x, b'.') == 0 {
            return false;
        }
    }
    let rest = &b[i..];
    let hex = rest.iter().take(5).take_while(|c| c.is_ascii_hexdigit()).count();
    let digits = rest.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    b[i] == b':' || rest.get(hex) == Some(&b':') || rest.get(digits) == Some(&b'.')
}

/// One pass in progress.
struct Scan<'a> {
    d: &'a Detectors,
    b: &'a [u8],
    hits: &'a mut Vec<Span>,
    cur: Cursors,
    on: Enabled,
    /// The text's first line as a CSV header, read at the first field value that needs it.
    header: Option<fields::Header>,
}

impl Scan<'_> {
    /// Try the detectors of class `k` at `i`: a word start, or a non-word byte. Split by the
    /// byte's kind (a digit, a letter, anything else), so each path tests only the gates of the
    /// detectors that can start at such a byte: every detector keeps its own cursor and the hits
    /// are sorted later, so the order in which they are tried at one position does not matter.
    /// Inlined into the scan's loop with the letter path (most positions are letters) and the
    /// path for other bytes (small); the digit and word-list paths stay calls (inlining the
    /// digit path too cost more: measured).
    #[inline(always)]
    fn at(&mut self, i: usize, k: u16) {
        let c = self.b[i];
        if c.is_ascii_digit() {
            self.digit(i, k);
        } else if c.is_ascii_alphabetic() {
            self.letter(i, k);
        } else {
            self.other(i, k);
        }
        if k & (DENY | NAME) != 0 {
            self.lists(i, k);
        }
    }

    /// The detectors that start at a digit. Quick rejections before each call, where the call
    /// would find nothing and move its cursor no further than the next position this scan looks
    /// at (past the word at `i`).
    #[inline(never)]
    fn digit(&mut self, i: usize, k: u16) {
        let b = self.b;
        let byte = |j: usize| b.get(j).copied().unwrap_or(0);
        if k & DIGIT == 0 {
            return;
        }
        let d = swar::digit_run(b, i);
        let after = byte(i + d);
        let joined = matches!(after, b' ' | b'-') && byte(i + d + 1).is_ascii_digit();
        // A card is one run of 12+ digits or groups joined by a space or dash.
        if self.on.card && i >= self.cur.card && (d >= 12 || joined) {
            self.cur.card = self.step(i, numbers::card_at(b, i), Kind::Card);
        }
        if self.on.ssn && i >= self.cur.ssn && d == 3 && after == b'-' {
            self.cur.ssn = self.push(i, numbers::ssn_at(b, i), i + 1, Kind::Ssn);
        }
        // A phone has a second group (some separator follows the first), or is one run of
        // 6+ digits after a cue (the search would otherwise go on right after it).
        let sep = matches!(after, b' ' | b'-' | b'.' | b'(' | b')' | b'/') || d >= 6;
        if self.on.phone && i >= self.cur.phone && sep {
            self.cur.phone = self.step(i, phone::phone_step(b, i), Kind::Phone);
        }
        self.field(i);
        // The address and date-of-birth detectors read a digit run the same way, and most
        // runs fail these tests at once. `address::number_first`: 1-5 digits, a letter alone
        // (`221B`), then a space.
        let house =
            d <= 5 && (after == b' ' || after.is_ascii_alphabetic() && byte(i + d + 1) == b' ');
        if house && self.on.address && i >= self.cur.address {
            self.cur.address = self.push(i, address::address_at(b, i), i + 1, Kind::Address);
        }
        // `dob::date_len`: 1-4 digits and a separator (`15/03/1985`, `8 Jan 46`), or 1-2 and
        // an ordinal suffix (`3rd May 1990`).
        let date = d <= 4 && matches!(after, b'/' | b'-' | b'.' | b' ')
            || d <= 2 && matches!(after, b's' | b'n' | b'r' | b't');
        if date && self.on.dob && i >= self.cur.dob {
            self.cur.dob = self.push(i, dob::dob_at(b, i), i + 1, Kind::Dob);
        }
        self.ip(i);
    }

    /// The detectors that start at an ASCII letter.
    #[inline(always)]
    fn letter(&mut self, i: usize, k: u16) {
        let b = self.b;
        let byte = |j: usize| b.get(j).copied().unwrap_or(0);
        self.secret(i, k);
        if k & LETTER == 0 {
            if k & HEX != 0 {
                self.ip(i);
            }
            return;
        }
        if i >= self.cur.iban
            && byte(i + 1).is_ascii_alphabetic()
            && byte(i + 2).is_ascii_digit()
            && byte(i + 3).is_ascii_digit()
        {
            self.cur.iban = self.push(i, iban::iban_at(b, i), i + 1, Kind::Iban);
        }
        self.field(i);
        // Names, addresses and dates of birth start at a capital (lower-case words are most
        // words).
        if b[i].is_ascii_uppercase() {
            if self.on.person && i >= self.cur.person {
                self.cur.person = self.push(i, person::name_at(b, i), i + 1, Kind::Name);
            }
            if self.on.address && i >= self.cur.address {
                self.cur.address = self.push(i, address::address_at(b, i), i + 1, Kind::Address);
            }
            // A capital starts a date only as a month (`dob::dob_at` asks the same first).
            if self.on.dob && i >= self.cur.dob && dob::month_start(b, i) {
                self.cur.dob = self.push(i, dob::dob_at(b, i), i + 1, Kind::Dob);
            }
        }
        if k & HEX != 0 {
            self.ip(i);
        }
    }

    /// The detectors that start at a byte that is neither a digit nor an ASCII letter.
    #[inline(always)]
    fn other(&mut self, i: usize, k: u16) {
        let b = self.b;
        self.secret(i, k);
        if k & AT != 0 && i >= self.cur.email {
            self.cur.email = match contact::email_at(b, i) {
                Some((start, end)) => {
                    self.hits.push(Span { start, end, kind: Kind::Email });
                    end
                }
                None => i + 1,
            };
        }
        if k & COLON != 0 {
            self.ip(i);
        }
        if k & PHONE != 0 && self.on.phone && i >= self.cur.phone {
            self.cur.phone = self.step(i, phone::phone_step(b, i), Kind::Phone);
        }
    }

    /// A secret at `i` (a letter or other byte whose class says a token prefix can start there).
    /// Always inlined, as [`Self::field`].
    #[inline(always)]
    fn secret(&mut self, i: usize, k: u16) {
        let b = self.b;
        if k & SECRET != 0
            && i >= self.cur.secret
            && second_ok(b[i], b.get(i + 1).copied().unwrap_or(0))
        {
            self.cur.secret = self.push(i, secrets::at(b, i), i + 1, Kind::Secret);
        }
    }

    /// A field value at `i`, a word start (a letter or digit whose class is set). Always
    /// inlined (with its gate, `fields::may_start`): left to itself the compiler called it at
    /// every word start, and the calls cost more than most of the tests they make.
    #[inline(always)]
    fn field(&mut self, i: usize) {
        let b = self.b;
        if self.on.fields && i >= self.cur.field && fields::may_start(b, i) {
            self.cur.field = match fields::value_at(b, i, &mut self.header) {
                Some((kind, end)) => {
                    let on = match kind {
                        Kind::Name => self.on.person,
                        Kind::Ssn => self.on.ssn_field,
                        Kind::Dob => self.on.dob,
                        Kind::Secret => self.on.secret,
                        Kind::Phone => self.on.phone,
                        Kind::Card => self.on.card,
                        _ => self.on.address,
                    };
                    if on {
                        self.hits.push(Span { start: i, end, kind });
                    }
                    end
                }
                None => i + 1,
            };
        }
    }

    /// An IP address at `i` (a digit, a hex letter or `:` whose class is set). Always inlined,
    /// as [`Self::field`].
    #[inline(always)]
    fn ip(&mut self, i: usize) {
        if self.on.ip && i >= self.cur.ip && ip_shape(self.b, i) {
            self.cur.ip = self.step(i, net::ip_step(self.b, i), Kind::Ip);
        }
    }

    /// The configured word lists at `i`.
    #[inline(never)]
    fn lists(&mut self, i: usize, k: u16) {
        let b = self.b;
        if k & DENY != 0 && i >= self.cur.deny {
            let end = self.d.deny.at(b, i);
            self.cur.deny = self.push(i, end, i + 1, Kind::Custom(0));
        }
        if k & NAME != 0 && i >= self.cur.name {
            let end = self.d.names.at(b, i);
            self.cur.name = self.push(i, end, i + 1, Kind::Name);
        }
    }

    /// Record a hit `i..end` if there is one; the next cursor (`end`, or `miss`).
    fn push(&mut self, i: usize, end: Option<usize>, miss: usize, kind: Kind) -> usize {
        match end {
            Some(end) => {
                self.hits.push(Span { start: i, end, kind });
                end
            }
            None => miss,
        }
    }

    /// [`Self::push`] for detectors that say where to go on after a miss.
    fn step(&mut self, i: usize, r: Result<usize, usize>, kind: Kind) -> usize {
        match r {
            Ok(end) => self.push(i, Some(end), end, kind),
            Err(next) => next,
        }
    }
}
