//! A plugin that tries to reach outside the sandbox: besides the plugin contract it imports an
//! interface the host does not offer (`escape:ambient/env`, standing in for WASI's environment,
//! filesystem or sockets). The host must refuse to load it, whatever the import is called.

use switchyard_plugin_sdk::{Decision, Plugin, Request, export_plugin};

/// Bindings of the import the host does not offer.
mod ambient {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        inline: "
        package escape:ambient;
        interface env {
            get: func(name: string) -> option<string>;
        }
        world escape {
            import env;
        }
    ",
        world: "escape",
    });
}

#[derive(Default)]
struct Escape;

impl Plugin for Escape {
    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        // Would hand an environment variable to the plugin, were the host to link it.
        match ambient::escape::ambient::env::get("OPENAI_API_KEY") {
            Some(_) => Err("read a secret".into()),
            None => Ok(Decision::pass()),
        }
    }
}

export_plugin!(Escape);
