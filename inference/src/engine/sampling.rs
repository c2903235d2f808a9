//! OpenAI sampling parameters, and the llama.cpp sampler chain built from them.

use llama_cpp_2::sampling::LlamaSampler;

/// Sampling as the request asked for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy: the most likely token, deterministically.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: i32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// `None`: a fresh random seed per request.
    pub seed: Option<u32>,
}

impl Default for SamplingParams {
    /// OpenAI's defaults.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
        }
    }
}

/// How many recent tokens the presence/frequency penalties look at (llama-server's default).
const PENALTY_LAST_N: i32 = 64;

impl SamplingParams {
    /// The chain: penalties, then greedy, or top-k, top-p, temperature and a seeded draw.
    pub fn sampler(&self, n_vocab: i32) -> LlamaSampler {
        let mut chain = Vec::new();
        if self.presence_penalty != 0.0 || self.frequency_penalty != 0.0 {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                PENALTY_LAST_N,
                1.0,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            if self.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(self.top_p, 1));
            }
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::dist(self.seed.unwrap_or_else(|| fastrand::u32(..))));
        }
        LlamaSampler::chain_simple(chain)
    }
}
