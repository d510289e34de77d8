//! `strongroom`: the Strongroom appliance binary (server and command-line client).
//!
//! Commands follow `strongroom <noun> <verb>`; today the binary offers the
//! development appliance (`strongroom dev`), which later grows into the full
//! gRPC service.

mod dev;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Strongroom: HSM-backed PKI and transit encryption.
#[derive(Debug, Parser)]
#[command(name = "strongroom", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start an ephemeral development appliance on an isolated SoftHSM2 token.
    Dev(dev::DevArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strongroom: {e:#}");
            ExitCode::FAILURE
        }
    }
}
