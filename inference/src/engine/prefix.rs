//! The prefix cache's choice: which idle slot a new prompt should take, so that the longest
//! common token prefix already in that slot's KV cache is reused instead of evaluated again.

/// An idle slot as the chooser sees it.
#[derive(Debug)]
pub struct Candidate<'a, T> {
    pub index: usize,
    /// Tokens whose KV the slot holds, from position 0.
    pub cached: &'a [T],
    /// When the slot was last used; the oldest is evicted first when nothing matches.
    pub last_used: u64,
}

/// Length of the common prefix of `a` and `b`.
pub fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The slot to use and how many prompt tokens it already holds. The longest match wins; among
/// equal matches (zero included) the least recently used slot is taken, so that caches other
/// prompts may still want survive longest.
pub fn choose<T: PartialEq>(idle: &[Candidate<'_, T>], prompt: &[T]) -> Option<(usize, usize)> {
    idle.iter()
        .map(|c| (c, common_prefix(c.cached, prompt)))
        .max_by(|(a, la), (b, lb)| la.cmp(lb).then(b.last_used.cmp(&a.last_used)))
        .map(|(c, len)| (c.index, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let (a, b, c) = ([1, 2, 3, 9], [1, 2, 3, 4, 5], [7]);
        let idle = [
            Candidate { index: 0, cached: &a[..], last_used: 5 },
            Candidate { index: 1, cached: &b[..], last_used: 1 },
            Candidate { index: 2, cached: &c[..], last_used: 0 },
        ];
        assert_eq!(choose(&idle, &[1, 2, 3, 4, 6]), Some((1, 4)));
    }

    #[test]
    fn no_match_takes_least_recently_used() {
        let (a, b) = ([1], [2]);
        let idle = [
            Candidate { index: 0, cached: &a[..], last_used: 5 },
            Candidate { index: 1, cached: &b[..], last_used: 3 },
        ];
        assert_eq!(choose(&idle, &[9]), Some((1, 0)));
        assert_eq!(choose::<i32>(&[], &[9]), None);
    }
}
