//! Fail-closed on what cannot be read: refuses (400 `policy_violation`) every request that carries
//! a `binary:` entry (an image, audio or file part the host cannot show as text), naming the parts'
//! paths; other requests proceed, tagged `fields` = the number of `field:` entries they showed.
//! The host half of a redactor's "refuse binary parts" option, for the end-to-end tests.

use switchyard_plugin_sdk::{Changes, Decision, Plugin, Request, export_plugin};

#[derive(Default)]
struct BinaryGuard;

impl Plugin for BinaryGuard {
    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let binary: Vec<&str> =
            req.messages.iter().filter_map(|m| m.role.strip_prefix("binary:")).collect();
        if !binary.is_empty() {
            let message =
                format!("request refused: parts that cannot be redacted ({})", binary.join(", "));
            return Ok(Decision::error(400, "policy_violation", &message));
        }
        let fields = req.messages.iter().filter(|m| m.role.starts_with("field:")).count();
        Ok(Decision::Proceed(Changes::new().tag("fields", &fields.to_string())))
    }
}

export_plugin!(BinaryGuard);
