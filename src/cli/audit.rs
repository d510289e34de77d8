//! `strongroom audit verify FILE…` checks an audit trail offline;
//! `strongroom audit digest` asks the appliance for the digest its records
//! carry in place of a sensitive value.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use strongroom_proto::v1::DigestValueRequest;
use strongroom_proto::v1::sys_client::SysClient;

use super::client::{ConnectionArgs, OutputFormat, rpc_error};
use super::output::print_json;
use super::transit::read_input;
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
    /// Print the digest audit records carry for a value (a plaintext,
    /// ciphertext, message or CSR, read from --in or stdin), to search the
    /// trail for the requests that carried it. The appliance computes it
    /// with a key in its HSM; needs the audit capability.
    #[command(after_help = "Examples:\n  \
        strongroom audit digest --in card.txt\n  \
        grep -l \"$(strongroom audit digest --in card.txt)\" /var/lib/strongroom/audit/*.jsonl")]
    Digest(DigestArgs),
}

#[derive(Debug, clap::Args)]
struct DigestArgs {
    /// Read the value (at most 1 MiB) from FILE; `-` or no --in: standard
    /// input. A ciphertext is given as its text, as it was sent.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
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
        AuditCommand::Digest(a) => super::run_async(digest(a)),
    }
}

async fn digest(args: DigestArgs) -> anyhow::Result<()> {
    let value = read_input(args.input.as_deref(), 1 << 20)?;
    let url = args.conn.url();
    let mut client = SysClient::new(args.conn.connect().await?);
    let digest = client
        .digest_value(DigestValueRequest {
            value: value.to_vec(),
        })
        .await
        .map_err(|s| rpc_error("digest a value", &url, &s))?
        .into_inner()
        .digest;
    match args.conn.output {
        OutputFormat::Json => print_json(&serde_json::json!({ "digest": digest })),
        OutputFormat::Text => {
            println!("{digest}");
            Ok(())
        }
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
