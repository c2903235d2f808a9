//! What a request costs: the `[[price]]` table, the most specific entry for an upstream and
//! model, and USD from a [`Usage`]. An upstream without a matching entry costs nothing.

use super::usage::Usage;
use crate::config::PriceConfig;

/// Micro-USD in one USD: the ledger's integer unit for money, exact in Redis (integers up to
/// 2^53 in its Lua numbers) and fine enough for one token of the cheapest model (0.1 µ$).
pub const MICROS_PER_USD: f64 = 1_000_000.0;

/// The price table, as configured.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    entries: Vec<PriceConfig>,
}

/// USD per million tokens of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    pub input: f64,
    pub output: f64,
    pub cached_input: f64,
}

impl Prices {
    pub fn new(entries: Vec<PriceConfig>) -> Self {
        Self { entries }
    }

    /// The most specific price for `model` on `upstream`: an entry for exactly that model, else
    /// the longest entry the model is a dated snapshot of (`gpt-4.1` for `gpt-4.1-2025-04-14`),
    /// else the upstream's entry without a model, else free.
    pub fn rate(&self, upstream: &str, model: Option<&str>) -> Rate {
        let on_upstream = || self.entries.iter().filter(|e| e.upstream == upstream);
        let exact = model.and_then(|m| on_upstream().find(|e| e.model.as_deref() == Some(m)));
        let snapshot = || {
            let m = model?;
            on_upstream()
                .filter_map(|e| e.model.as_deref().map(|p| (e, p)))
                .filter(|(_, p)| m.strip_prefix(p).is_some_and(|rest| rest.starts_with('-')))
                .max_by_key(|(_, p)| p.len())
                .map(|(e, _)| e)
        };
        let entry = exact.or_else(snapshot).or_else(|| on_upstream().find(|e| e.model.is_none()));
        entry.map_or_else(Rate::default, |e| Rate {
            input: e.input_usd_per_mtok,
            output: e.output_usd_per_mtok,
            cached_input: e.cached_input_usd_per_mtok.unwrap_or(e.input_usd_per_mtok),
        })
    }

    /// USD for `usage` on `upstream` (and `model`, when known).
    pub fn cost_usd(&self, upstream: &str, model: Option<&str>, usage: &Usage) -> f64 {
        self.rate(upstream, model).cost_usd(usage)
    }

    /// The most a request can cost on any of the upstreams it may go to (its route and
    /// fallbacks): every prompt token uncached, and every allowed completion token generated.
    pub fn worst_case_usd(
        &self,
        targets: &[(&str, Option<&str>)],
        prompt_tokens: u64,
        max_tokens: u64,
    ) -> f64 {
        let usage = Usage { prompt_tokens, completion_tokens: max_tokens, cached_prompt_tokens: 0 };
        targets.iter().map(|(up, model)| self.cost_usd(up, *model, &usage)).fold(0.0, f64::max)
    }
}

impl Rate {
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_prompt_tokens.min(usage.prompt_tokens);
        let uncached = usage.prompt_tokens - cached;
        (uncached as f64 * self.input
            + cached as f64 * self.cached_input
            + usage.completion_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

/// USD to micro-USD, rounded up: what a reservation holds, so it never covers less than the cost.
pub fn micros_ceil(usd: f64) -> u64 {
    (usd * MICROS_PER_USD).ceil().max(0.0) as u64
}

/// USD to micro-USD, rounded to nearest: what a settlement charges (at most half a micro-USD off
/// per request).
pub fn micros_round(usd: f64) -> u64 {
    (usd * MICROS_PER_USD).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(upstream: &str, model: Option<&str>, input: f64, output: f64) -> PriceConfig {
        PriceConfig {
            upstream: upstream.into(),
            model: model.map(Into::into),
            input_usd_per_mtok: input,
            output_usd_per_mtok: output,
            cached_input_usd_per_mtok: None,
        }
    }

    fn table() -> Prices {
        let mut cached = price("hosted", Some("gpt-4.1"), 2.0, 8.0);
        cached.cached_input_usd_per_mtok = Some(0.5);
        Prices::new(vec![
            price("hosted", None, 1.0, 1.0),
            cached,
            price("hosted", Some("gpt-4.1-mini"), 0.4, 1.6),
        ])
    }

    #[test]
    fn the_most_specific_price_wins() {
        let prices = table();
        assert_eq!(prices.rate("hosted", Some("gpt-4.1")).output, 8.0);
        assert_eq!(prices.rate("hosted", Some("gpt-4.1-2025-04-14")).output, 8.0);
        assert_eq!(prices.rate("hosted", Some("gpt-4.1-mini-2025-04-14")).output, 1.6);
        assert_eq!(prices.rate("hosted", Some("gpt-4.10")).output, 1.0);
        assert_eq!(prices.rate("hosted", None).output, 1.0);
        assert_eq!(prices.rate("local", Some("gpt-4.1")), Rate::default());
    }

    #[test]
    fn cached_prompt_tokens_cost_the_cached_price() {
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 500_000,
            cached_prompt_tokens: 400_000,
        };
        let usd = table().cost_usd("hosted", Some("gpt-4.1"), &usage);
        assert!((usd - (0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0)).abs() < 1e-9, "{usd}");
        let uncached_price = table().cost_usd("hosted", Some("other"), &usage);
        assert!((uncached_price - 1.5).abs() < 1e-9, "{uncached_price}");
        assert_eq!(table().cost_usd("local", None, &usage), 0.0);
    }

    #[test]
    fn the_worst_case_is_the_dearest_target() {
        let prices = table();
        let targets = [("local", None), ("hosted", Some("gpt-4.1")), ("hosted", Some("x"))];
        let usd = prices.worst_case_usd(&targets, 1000, 1000);
        assert!((usd - (1000.0 * 2.0 + 1000.0 * 8.0) / 1e6).abs() < 1e-12, "{usd}");
        assert_eq!(micros_ceil(usd), 10_000);
        assert_eq!(micros_ceil(0.000_000_1), 1);
        assert_eq!(micros_round(0.000_000_1), 0);
    }
}
