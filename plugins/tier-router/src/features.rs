//! Prompt features the `auto` rules look at: approximate token count, fenced code blocks,
//! conversation depth and hard-reasoning keywords. Cheap, allocation-light scans; no tokenizer.

use switchyard_plugin_sdk::{Message, is_turn};

/// What the rules need to know about a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// Bytes of all message text / 4, rounded up (the usual rule of thumb for English BPE).
    pub approx_tokens: usize,
    /// Fenced code blocks (```), an unclosed fence counting as one.
    pub code_blocks: usize,
    /// Messages that are not `system`: how deep the conversation is.
    pub depth: usize,
}

impl Features {
    /// Features of the conversation: the host's other entries (`field:` tool arguments and
    /// schemas, `binary:` parts) are not prompt turns and are left out.
    pub fn of(messages: &[Message]) -> Self {
        let turns = || messages.iter().filter(|m| is_turn(&m.role));
        let bytes: usize = turns().map(|m| m.content.len()).sum();
        let fences: usize = turns().map(|m| m.content.matches("```").count()).sum();
        Self {
            approx_tokens: bytes.div_ceil(4),
            code_blocks: fences.div_ceil(2),
            depth: turns().filter(|m| m.role != "system").count(),
        }
    }
}

/// Lower case, with typographic apostrophes made plain, so "I’m Sorry" matches "i'm sorry".
pub fn normalize(text: &str) -> String {
    text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

/// The first keyword that occurs as whole words in a user message (`keywords` normalized).
pub fn hard_keyword<'a>(messages: &[Message], keywords: &'a [String]) -> Option<&'a str> {
    let texts: Vec<String> =
        messages.iter().filter(|m| m.role == "user").map(|m| normalize(&m.content)).collect();
    keywords
        .iter()
        .filter(|k| !k.is_empty())
        .find(|k| texts.iter().any(|t| contains_words(t, k)))
        .map(String::as_str)
}

/// Whether `needle` occurs in `haystack` not glued to a letter or digit on either side
/// ("prove" is in "prove that", not in "improve").
pub fn contains_words(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }

    #[test]
    fn counts_tokens_blocks_and_depth() {
        let ms = [
            msg("system", "be brief"),
            msg("user", "```rust\nfn a() {}\n```\nand ```py"),
            msg("assistant", "ok"),
        ];
        let f = Features::of(&ms);
        let bytes = 8 + ms[1].content.len() + 2;
        assert_eq!(f.approx_tokens, bytes.div_ceil(4));
        assert_eq!(f.code_blocks, 2, "one closed block and one unclosed fence");
        assert_eq!(f.depth, 2);
        let mut more = ms.to_vec();
        more.push(msg("field:tools[0].function.description", "```long``` text"));
        more.push(msg("binary:messages[1].content[1]", ""));
        assert_eq!(Features::of(&more), f, "field and binary entries are not turns");
    }

    #[test]
    fn keywords_match_whole_words_in_user_messages_only() {
        let keys = vec!["prove".to_string(), "step by step".to_string()];
        assert_eq!(hard_keyword(&[msg("user", "Please PROVE it.")], &keys), Some("prove"));
        assert_eq!(hard_keyword(&[msg("user", "improve my essay")], &keys), None);
        assert_eq!(hard_keyword(&[msg("system", "prove things")], &keys), None);
        let steps = [msg("user", "think step by step")];
        assert_eq!(hard_keyword(&steps, &keys), Some("step by step"));
    }

    #[test]
    fn normalize_folds_case_and_apostrophes() {
        assert_eq!(normalize("I’m SORRY"), "i'm sorry");
    }
}
