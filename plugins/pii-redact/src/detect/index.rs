//! Word lists grouped by their first or last byte at compile time, so a detector that asks
//! "does one of these words start (or end) here" compares only the few words that share that
//! byte instead of walking the whole list for every candidate (cue lists and field names are
//! looked up at most word starts of a text).

/// The words of a list grouped by one of their bytes: a counting sort made by the compiler.
pub struct ByByte<const N: usize> {
    /// The list itself, in its written order.
    words: &'static [&'static [u8]],
    /// Positions in `words`, grouped by byte, each group in list order (so a search that keeps
    /// the first or last match finds the same word as a walk over the list).
    order: [u16; N],
    /// `order[start[c]..start[c + 1]]` are the words whose byte is `c`.
    start: [u16; 257],
    /// Per entry of `order`: the word's next byte inwards (its second, or its second last), or
    /// `None` for a one-byte word. Most candidates differ there, so [`Self::with2`] rejects
    /// them without a comparison of the whole word.
    next: [Option<u8>; N],
    /// A bit per (byte, next byte) pair some word has, hashed into 1024 bits, and set for every
    /// pair of a byte that has a one-byte word: [`Self::with2`] of a pair with its bit clear is
    /// empty, found with one look.
    pairs: [u64; 16],
}

/// The bit of a (byte, next byte) pair in [`ByByte::pairs`].
const fn pair_bit(c: u8, d: u8) -> usize {
    (c as usize * 67 + d as usize) % 1024
}

impl<const N: usize> ByByte<N> {
    /// Groups `words` (`N` of them, none empty, written as they are compared: lower case) by
    /// their first byte (`first`) or their last.
    pub const fn new(words: &'static [&'static [u8]], first: bool) -> Self {
        assert!(words.len() == N && N < u16::MAX as usize);
        let mut start = [0u16; 257];
        let mut i = 0;
        while i < N {
            start[key(words[i], first) + 1] += 1;
            i += 1;
        }
        let mut c = 0;
        while c < 256 {
            start[c + 1] += start[c];
            c += 1;
        }
        let mut fill = start;
        let mut order = [0u16; N];
        i = 0;
        while i < N {
            let c = key(words[i], first);
            order[fill[c] as usize] = i as u16;
            fill[c] += 1;
            i += 1;
        }
        let mut next = [None; N];
        let mut pairs = [0u64; 16];
        i = 0;
        while i < N {
            let w = words[order[i] as usize];
            let c = key(w, first) as u8;
            if w.len() > 1 {
                let d = if first { w[1] } else { w[w.len() - 2] };
                next[i] = Some(d);
                let bit = pair_bit(c, d);
                pairs[bit / 64] |= 1 << (bit % 64);
            } else {
                // Any next byte: set the bit of every pair of `c`.
                let mut d = 0;
                while d < 256 {
                    let bit = pair_bit(c, d as u8);
                    pairs[bit / 64] |= 1 << (bit % 64);
                    d += 1;
                }
            }
            i += 1;
        }
        Self { words, order, start, next, pairs }
    }

    /// The positions in the list of the words whose byte is `c`, in list order.
    pub fn positions(&self, c: u8) -> &[u16] {
        let c = usize::from(c);
        let (from, to) = (usize::from(self.start[c]), usize::from(self.start[c + 1]));
        self.order.get(from..to).unwrap_or_default()
    }

    /// The words whose byte is `c`, in list order.
    pub fn with(&self, c: u8) -> impl Iterator<Item = &'static [u8]> + '_ {
        self.positions(c).iter().filter_map(|&p| self.words.get(usize::from(p)).copied())
    }

    /// The words whose byte is `c` and whose next byte inwards is `d` (or that have none), in
    /// list order: a superset of the words a text with those two bytes can match.
    pub fn with2(&self, c: u8, d: u8) -> impl Iterator<Item = &'static [u8]> + '_ {
        self.positions2(c, d).filter_map(|p| self.words.get(usize::from(p)).copied())
    }

    /// Whether [`Self::with2`] of `c` and `d` may yield a word (it may still yield none).
    pub fn has_pair(&self, c: u8, d: u8) -> bool {
        let bit = pair_bit(c, d);
        self.pairs[bit / 64] >> (bit % 64) & 1 == 1
    }

    /// The positions in the list of the words [`Self::with2`] yields.
    pub fn positions2(&self, c: u8, d: u8) -> impl Iterator<Item = u16> + '_ {
        let any = self.has_pair(c, d);
        let c = usize::from(c);
        // An empty range where no word has the pair.
        let (from, to) = match any {
            true => (usize::from(self.start[c]), usize::from(self.start[c + 1])),
            false => (0, 0),
        };
        let order = self.order.get(from..to).unwrap_or_default();
        let next = self.next.get(from..to).unwrap_or_default();
        order.iter().zip(next).filter(move |(_, n)| n.is_none_or(|n| n == d)).map(|(&p, _)| p)
    }
}

/// The byte a word is grouped by.
const fn key(w: &[u8], first: bool) -> usize {
    (if first { w[0] } else { w[w.len() - 1] }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[&[u8]] = &[b"phone", b"tel", b"fax", b"pin", b"ph", b"t\xc3\xa9l"];

    #[test]
    fn groups_keep_every_word_once_in_list_order() {
        let first: ByByte<{ LIST.len() }> = ByByte::new(LIST, true);
        let last: ByByte<{ LIST.len() }> = ByByte::new(LIST, false);
        assert_eq!(first.with(b'p').collect::<Vec<_>>(), [&b"phone"[..], b"pin", b"ph"]);
        assert_eq!(first.with(b't').collect::<Vec<_>>(), [&b"tel"[..], b"t\xc3\xa9l"]);
        assert_eq!(last.with(b'l').collect::<Vec<_>>(), [&b"tel"[..], b"t\xc3\xa9l"]);
        assert_eq!(last.with(b'x').collect::<Vec<_>>(), [b"fax"]);
        assert!(first.with(b'z').next().is_none() && last.with(0xff).next().is_none());
        assert_eq!(first.with2(b'p', b'h').collect::<Vec<_>>(), [&b"phone"[..], b"ph"]);
        assert_eq!(first.with2(b't', 0xc3).collect::<Vec<_>>(), [b"t\xc3\xa9l"]);
        assert_eq!(last.with2(b'x', b'a').collect::<Vec<_>>(), [b"fax"]);
        assert!(last.with2(b'x', b'b').next().is_none());
        // A one-byte word goes with any next byte.
        const SHORT: &[&[u8]] = &[b"x", b"xy"];
        let short: ByByte<{ SHORT.len() }> = ByByte::new(SHORT, true);
        assert_eq!(short.with2(b'x', b'q').collect::<Vec<_>>(), [b"x"]);
        assert_eq!(short.with2(b'x', b'y').collect::<Vec<_>>(), [&b"x"[..], b"xy"]);
        // Every pair of every word is found, whatever the hashing folds together.
        for w in LIST {
            assert!(first.with2(w[0], w[1]).any(|x| x == *w));
            assert!(last.with2(w[w.len() - 1], w[w.len() - 2]).any(|x| x == *w));
        }
        let total: usize = (0..=255).map(|c| first.positions(c).len()).sum();
        assert_eq!(total, LIST.len());
    }
}
