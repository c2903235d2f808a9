//! `switchyard plugin`: the plugin author's kit. Scaffold a plugin from a template (Rust,
//! JavaScript, Python), build it with its language's toolchain, replay JSON fixtures against it in
//! the real host, sign it, and push it to a running proxy's admin API.
//!
//! Layout: [`manifest`] (the plugin directory's `switchyard-plugin.toml`), [`scaffold`] (`new`),
//! [`toolchain`] (`build`), [`fixture`] and [`replay`] with `expect` (`test`), [`sign`] (`keygen`,
//! `sign`), [`push`] (`push`), [`cli`] (the subcommand's arguments and dispatch).

pub mod cli;
mod expect;
pub mod fixture;
pub mod manifest;
pub mod push;
pub mod replay;
pub mod scaffold;
pub mod sign;
pub mod toolchain;
