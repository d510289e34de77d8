//! `strongroom audit verify FILE…`: checks an audit trail offline.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::client::OutputFormat;
use super::output::print_json;
use crate::audit::{Verified, verify_files};

/// `strongroom audit <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check audit files as one hash chain: every record intact, none
    /// missing, inserted or out of order. Exits 1 at the first break,
    /// naming the file and line.
    #[command(after_help = "Examples:\n  \
        strongroom audit verify /var/lib/strongroom/audit.jsonl\n  \
        strongroom audit verify audit.1.jsonl audit.2.jsonl audit.jsonl")]
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The audit files, oldest first (a rotated trail is checked across
    /// its files).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: OutputFormat,
}

/// `audit verify --output json`.
#[derive(Debug, Serialize)]
struct VerifiedJson {
    /// Records checked.
    records: u64,
    /// The first record's sequence number (`null` if there is none).
    first_seq: Option<u64>,
    /// The last record's sequence number (`null` if there is none).
    last_seq: Option<u64>,
    /// The last record's hash: keep it elsewhere to detect a rewrite later.
    last_hash: String,
    /// Whether the first record continues a chain from a file not given.
    continues_earlier: bool,
}

/// Runs an `audit` command.
pub(crate) fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Verify(a) => verify(a),
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let verified = verify_files(&args.files)?;
    match args.output {
        OutputFormat::Json => print_json(&VerifiedJson {
            records: verified.records,
            first_seq: verified.seqs.map(|(first, _)| first),
            last_seq: verified.seqs.map(|(_, last)| last),
            last_hash: verified.last_hash.clone(),
            continues_earlier: verified.continues_earlier,
        })?,
        OutputFormat::Text => println!("{}", verified_text(&verified, args.files.len())),
    }
    Ok(ExitCode::SUCCESS)
}

fn verified_text(v: &Verified, files: usize) -> String {
    let files = if files == 1 {
        "1 file".to_string()
    } else {
        format!("{files} files")
    };
    match v.seqs {
        None => format!("intact: no records in {files}"),
        Some((first, last)) => {
            let from = if v.continues_earlier {
                " (continuing an earlier file)"
            } else {
                ""
            };
            format!(
                "intact: {} records, sequence {first} to {last}{from}, in {files}; last hash {}",
                v.records, v.last_hash
            )
        }
    }
}
