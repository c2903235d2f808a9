//! Turns sampled token bytes into text: UTF-8 split across tokens is reassembled, and stop strings
//! are found even across token boundaries, never sending the client a piece of a stop string.

/// Output text assembly for one generation.
#[derive(Debug, Default)]
pub struct TextOut {
    /// Bytes of an incomplete UTF-8 character at the end of the last piece.
    partial: Vec<u8>,
    /// Text held back because it might be the start of a stop string.
    held: String,
    stop: Vec<String>,
}

/// What one pushed piece produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text that may go to the client now (possibly empty).
    Text(String),
    /// A stop string was found: this text precedes it, and generation ends.
    Stopped(String),
}

impl TextOut {
    pub fn new(stop: Vec<String>) -> Self {
        Self { stop, ..Self::default() }
    }

    /// Adds a token's bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Piece {
        self.partial.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(s) => s.len(),
            // An invalid sequence (not just an unfinished one) is replaced, not kept forever.
            Err(e) if e.error_len().is_some() => {
                let s = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.held.push_str(&s);
                return self.scan();
            }
            Err(e) => e.valid_up_to(),
        };
        let rest = self.partial.split_off(valid);
        let done = std::mem::replace(&mut self.partial, rest);
        self.held.push_str(&String::from_utf8_lossy(&done));
        self.scan()
    }

    /// Everything still held, at the end of generation.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.held);
        if !self.partial.is_empty() {
            out.push_str(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
        out
    }

    fn scan(&mut self) -> Piece {
        let first_stop = self.stop.iter().filter_map(|s| self.held.find(s.as_str())).min();
        if let Some(at) = first_stop {
            let text = self.held[..at].to_owned();
            self.held.clear();
            return Piece::Stopped(text);
        }
        // Keep the longest tail of `held` that a stop string starts with.
        let keep = self
            .stop
            .iter()
            .flat_map(|s| (1..s.len()).filter(|&n| s.is_char_boundary(n)).map(move |n| &s[..n]))
            .filter(|prefix| self.held.ends_with(prefix))
            .map(str::len)
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let tail = self.held.split_off(cut);
        Piece::Text(std::mem::replace(&mut self.held, tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_tokens() {
        let mut t = TextOut::new(vec![]);
        let e = "é".as_bytes();
        assert_eq!(t.push(&e[..1]), Piece::Text(String::new()));
        assert_eq!(t.push(&e[1..]), Piece::Text("é".into()));
    }

    #[test]
    fn stop_across_tokens_is_never_leaked() {
        let mut t = TextOut::new(vec!["END".into()]);
        assert_eq!(t.push(b"hello E"), Piece::Text("hello ".into()));
        assert_eq!(t.push(b"N"), Piece::Text(String::new()));
        assert_eq!(t.push(b"D more"), Piece::Stopped("".into()));
    }

    #[test]
    fn false_start_is_released() {
        let mut t = TextOut::new(vec!["END".into()]);
        assert_eq!(t.push(b"E"), Piece::Text(String::new()));
        assert_eq!(t.push(b"x"), Piece::Text("Ex".into()));
        assert_eq!(t.push(b"EN"), Piece::Text(String::new()));
        assert_eq!(t.finish(), "EN");
    }

    #[test]
    fn earliest_stop_wins() {
        let mut t = TextOut::new(vec!["b".into(), "a".into()]);
        assert_eq!(t.push(b"xaby"), Piece::Stopped("x".into()));
    }

    /// Any split of valid UTF-8 into byte pieces comes out whole and in order.
    #[test]
    fn random_splits_reassemble() {
        let text = "héllo wörld → 日本語 🚂 done";
        let bytes = text.as_bytes();
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..1000 {
            let mut t = TextOut::new(vec!["never".into()]);
            let (mut out, mut at) = (String::new(), 0);
            while at < bytes.len() {
                let end = (at + rng.usize(1..5)).min(bytes.len());
                match t.push(&bytes[at..end]) {
                    Piece::Text(s) | Piece::Stopped(s) => out.push_str(&s),
                }
                at = end;
            }
            out.push_str(&t.finish());
            assert_eq!(out, text);
        }
    }
}
