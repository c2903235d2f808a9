//! The `switchyard` binary: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchyard::{Listeners, config, env::ProcessEnv};
use tokio::net::TcpListener;

/// An OpenAI-compatible LLM traffic proxy with WebAssembly plugins.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy: the API listener (`server.listen`) and the admin listener (`admin.listen`).
    /// Stops on SIGTERM or SIGINT after draining in-flight requests.
    Serve {
        /// The TOML configuration file (see docs/config.md).
        #[arg(long, short)]
        config: PathBuf,
        /// The proxy's own log format (stderr); overrides `[log] format`.
        #[arg(long, value_enum)]
        log_format: Option<config::LogFormat>,
    },
    /// Check a configuration file and list every problem, each with its key path; then load
    /// its plugins as a start would (compile and probe each) and say why one cannot start.
    /// Exits 0 when the file is valid.
    Check {
        /// The TOML configuration file (see docs/config.md).
        #[arg(long, short)]
        config: PathBuf,
        /// Check the file only; do not load its plugins (e.g. before they are built).
        #[arg(long)]
        config_only: bool,
    },
    /// Write, build, test, sign and push plugins (docs/plugins.md, "Write a plugin in 10 minutes").
    #[command(subcommand)]
    Plugin(switchyard::kit::cli::PluginCommand),
}

/// The proxy's allocator, as the shipped binary has it (see [`switchyard::Allocator`]).
#[global_allocator]
static ALLOC: switchyard::Allocator = switchyard::Allocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_path = match cli.command {
        Command::Serve { ref config, .. } | Command::Check { ref config, .. } => config.clone(),
        Command::Plugin(command) => {
            // What a plugin under test logs or prints (a Python traceback, a JS exception) is
            // shown with the failing case, not lost.
            let filter = switchyard::logs::filter_from_env("warn,switchyard::plugin::wasi=info");
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let _ = switchyard::logs::init(config::LogFormat::Text, filter, std::io::stderr, ansi);
            return match switchyard::kit::cli::run(command, &ProcessEnv) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchyard plugin: {error}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    let config = match config::load(&config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}:");
            for problem in &error.problems {
                eprintln!("  {problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Check { config_only, .. } => {
            // The keys themselves live in the environment: two tenants with one key are refused
            // here as at start (the key is never printed).
            if let Err(error) = switchyard::auth::Tenants::build(&config, &ProcessEnv) {
                eprintln!("{}: tenant keys:\n  {error}", config_path.display());
                return ExitCode::FAILURE;
            }
            if !config_only && let Err(error) = check_plugins(&config) {
                eprintln!("{}: plugins:\n  {error}", config_path.display());
                return ExitCode::FAILURE;
            }
            println!("{}: ok", config_path.display());
            ExitCode::SUCCESS
        }
        Command::Plugin(_) => ExitCode::SUCCESS, // handled above
        Command::Serve { log_format, .. } => match serve(config, log_format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("switchyard: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(mut config: config::Config, log_format: Option<config::LogFormat>) -> anyhow::Result<()> {
    if let Some(format) = log_format {
        config.log.format = format;
    }
    let filter = switchyard::logs::filter_from_env("info");
    // Colours only for a terminal: a log redirected to a file or collector gets plain lines.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    switchyard::logs::init(config.log.format, filter, std::io::stderr, ansi)
        .map_err(anyhow::Error::msg)?;
    if let Err(error) = switchyard::alloc::start_background_purge() {
        tracing::warn!(%error, "freed memory is returned to the system only as threads allocate");
    }
    // This thread is worker 0; `run` starts the others, each with a runtime like this one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Plugins are compiled and probed before anything listens: a client never waits on (or
        // loses its request to) a proxy that is still loading.
        let state =
            std::sync::Arc::new(switchyard::state::State::build(&config, &ProcessEnv).await?);
        let api = TcpListener::bind(config.server.listen_addr()?)
            .await
            .with_context(|| format!("binding server.listen {}", config.server.listen))?;
        let admin = TcpListener::bind(config.admin.listen_addr()?)
            .await
            .with_context(|| format!("binding admin.listen {}", config.admin.listen))?;
        tracing::info!(api = %api.local_addr()?, admin = %admin.local_addr()?, "listening");
        switchyard::serve(config, state, Listeners { api, admin }, shutdown_signal()).await?;
        Ok(())
    })
}

/// Loads the configured plugins as a start would (compile and probe each), so that a plugin that
/// cannot start, a memory cap too small for it for one, is reported by `check` with what to set.
fn check_plugins(config: &config::Config) -> anyhow::Result<()> {
    let Some(section) = &config.plugins else { return Ok(()) };
    let upstreams = config.upstreams.iter().map(|u| u.name.clone()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(switchyard::plugin::registry::check(
        section,
        &config.plugin_chain,
        upstreams,
    ))?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
