//! Fail-closed on what cannot be read: refuses (400 `policy_violation`) every request that carries
//! a `binary:` entry (an image, audio or file part the host cannot show as text), naming the parts'
//! paths; other requests proceed, tagged `fields` = the number of `field:` entries they showed.
//! Like a redactor, it also refuses to run fail-open (`init` fails) unless its config says
//! `"allow_fail_open": true`. The host halves of those two redactor options, for the tests.

use switchyard_plugin_sdk::{
    Changes, Config, Decision, Plugin, Request, export_plugin, fails_open,
};

#[derive(Default)]
struct BinaryGuard;

impl Plugin for BinaryGuard {
    fn init(&mut self, config: Config) -> Result<(), String> {
        // Hand-rolled lookup keeps this plugin free of serde.
        let acknowledged = config.as_str().replace(' ', "").contains("\"allow_fail_open\":true");
        if fails_open() && !acknowledged {
            return Err(
                "refusing to run with failure = \"open\": set allow_fail_open = true".into()
            );
        }
        Ok(())
    }

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
