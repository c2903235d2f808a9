//! {{name}}: a Switchyard plugin in Rust, made from the template. It refuses requests with a
//! blocked word, masks digits in user messages and tags what it saw. The fixtures in fixtures/ say
//! what it must do (`switchyard plugin test`).

use switchyard_plugin_sdk::{
    Changes, Config, Decision, Level, Plugin, Request, TextEdit, counter_add, export_plugin, log,
};

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    #[serde(default)]
    blocked_words: Vec<String>,
    #[serde(default)]
    mask_digits: bool,
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
        if self.mask_digits {
            for (i, m) in req.messages.iter().enumerate().filter(|(_, m)| m.role == "user") {
                for (pos, _) in m.content.match_indices(|c: char| c.is_ascii_digit()) {
                    changes = changes.edit(TextEdit::new(i, pos..pos + 1, "#"));
                }
            }
        }
        Ok(Decision::Proceed(changes))
    }
}

export_plugin!(Template);
