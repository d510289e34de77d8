//! `ceremony`: Strongroom's offline root-key ceremonies.
//!
//! ```text
//! ceremony run CEREMONY.toml --out DIR [--yes] [--share FILE]... [--identity FILE]... [--pin-file FILE] [--shares-dir DIR]
//! ceremony check CEREMONY.toml
//! ceremony verify DIR
//! ```
//!
//! An error ends the program with one line on standard error and exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strongroom_ceremony::{Ceremony, CeremonyError, Console, RunOptions, run, verify};

/// Offline root-key ceremonies: one reviewed TOML file per ceremony, a
/// hash-chained transcript, and an offline verifier.
#[derive(Debug, Parser)]
#[command(name = "ceremony", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the ceremony a file describes, writing into an output directory.
    Run {
        /// The ceremony file (see ceremony/examples/).
        config: PathBuf,
        /// Output directory: the transcript, a copy of the file and its
        /// inputs, and the outputs. None of them may exist yet.
        #[arg(long)]
        out: PathBuf,
        /// Answer yes to every confirmation (for scripted rehearsals).
        #[arg(long)]
        yes: bool,
        /// A share file presented by an officer (repeat; otherwise each
        /// share is asked for without echo).
        #[arg(long = "share", value_name = "FILE")]
        shares: Vec<PathBuf>,
        /// An officer's age identity file (AGE-SECRET-KEY-1…), to open
        /// share files encrypted to that officer's key (repeat, one per
        /// officer).
        #[arg(long = "identity", value_name = "FILE")]
        identities: Vec<PathBuf>,
        /// File holding the token's initial user PIN, for the ceremony that
        /// sets up shares (otherwise asked for without echo).
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// Where the new share files go (default: OUT/shares).
        #[arg(long, value_name = "DIR")]
        shares_dir: Option<PathBuf>,
    },
    /// Parses and checks a ceremony file without running it.
    Check {
        /// The ceremony file.
        config: PathBuf,
    },
    /// Re-checks a ceremony's output directory offline: transcript chain,
    /// file hashes, certificate chain and signatures, lints.
    Verify {
        /// The ceremony's output directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> Result<(), CeremonyError> {
    match command {
        Command::Run {
            config,
            out,
            yes,
            shares,
            identities,
            pin_file,
            shares_dir,
        } => {
            let ceremony = Ceremony::load(&config)?;
            let options = RunOptions {
                out_dir: out,
                shares_dir,
                share_files: shares,
                pin_file,
                identity_files: identities,
            };
            let outcome = run(&ceremony, &options, &mut Console { assume_yes: yes })?;
            println!("Done: {} files written.", outcome.outputs.len());
            Ok(())
        }
        Command::Check { config } => {
            let ceremony = Ceremony::load(&config)?;
            println!(
                "{}: a valid {} ceremony file; it writes {}",
                config.display(),
                ceremony.kind.name(),
                ceremony.output_names().join(", ")
            );
            Ok(())
        }
        Command::Verify { dir } => {
            let verified = verify(&dir)?;
            for (name, digest) in &verified.outputs {
                println!("{digest}  {name}");
            }
            println!(
                "OK: {} ceremony, {} transcript steps, chain, files, signatures and lints check out.",
                verified.kind.name(),
                verified.steps
            );
            println!("Transcript digest: {}", verified.digest);
            Ok(())
        }
    }
}

/// The error and its causes on one line.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}
