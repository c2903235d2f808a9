//! The plugin to copy. It shows each part of the contract once:
//! - `init` parses the config into a typed struct (a bad config stops the plugin from loading);
//! - `on_request` answers some requests itself (blocked words), routes others (long prompts go to a
//!   bigger upstream), edits text (masks digits in user messages), and tags what it did;
//! - host imports: a counter and a log line (never with prompt text).

use switchyard_plugin_sdk::{
    Changes, Config, Decision, Level, Plugin, Request, TextEdit, counter_add, export_plugin, log,
};

/// The `config` table of the plugin's `[[plugin]]` entry.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    /// Requests whose text contains one of these are refused with a 400.
    #[serde(default)]
    blocked_words: Vec<String>,
    /// Upstream for prompts longer than `long_chars` bytes.
    #[serde(default)]
    long_upstream: Option<String>,
    #[serde(default = "default_long_chars")]
    long_chars: usize,
    /// Replace ASCII digits in user messages with '#'.
    #[serde(default)]
    mask_digits: bool,
}

fn default_long_chars() -> usize {
    4000
}

impl Plugin for Template {
    fn init(&mut self, config: Config) -> Result<(), String> {
        *self = config.parse()?;
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let blocked = req
            .messages
            .iter()
            .any(|m| self.blocked_words.iter().any(|w| m.content.contains(w.as_str())));
        if blocked {
            counter_add("blocked", 1);
            log(Level::Info, "request refused: blocked word");
            return Ok(Decision::error(400, "policy_violation", "this request is not allowed"));
        }

        let mut changes = Changes::new().tag("template", "seen");
        let text_len: usize = req.messages.iter().map(|m| m.content.len()).sum();
        if let (true, Some(up)) = (text_len > self.long_chars, &self.long_upstream) {
            changes = changes.route(up, None).tag("template.route", "long");
        }
        if self.mask_digits {
            for (i, m) in req.messages.iter().enumerate() {
                if m.role != "user" {
                    continue;
                }
                for (pos, _) in m.content.match_indices(|c: char| c.is_ascii_digit()) {
                    changes = changes.edit(TextEdit::new(i, pos..pos + 1, "#"));
                }
            }
        }
        Ok(Decision::Proceed(changes))
    }
}

export_plugin!(Template);
