//! `strongroom transit kek …`: the key-encryption keys (KEKs) that wrap
//! every transit key version in the HSM. `rotate` makes a new KEK current
//! (the appliance then re-wraps the stored versions under it in the
//! background), `status` shows each KEK and how many versions it still
//! wraps (`--watch` follows the re-wrap to its end), and `destroy` removes a
//! retired KEK from the HSM once it wraps nothing.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use strongroom_proto::v1::transit_client::TransitClient;
use strongroom_proto::v1::{
    DestroyKekRequest, GetKekStatusRequest, Kek, KekState, KekStatus, RotateKekRequest,
};
use tonic::transport::Channel;

use super::connect;
use crate::cli::client::{ConnectionArgs, OutputFormat, rpc_error};
use crate::cli::output::{print_json, timestamp};

/// How often `--watch` asks for progress.
const POLL: Duration = Duration::from_secs(1);

/// How long `--watch` waits for the count of versions to fall before it
/// gives up (the appliance retries failed versions every minute).
const STALL: Duration = Duration::from_secs(150);

/// `strongroom transit kek <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct KekArgs {
    /// What to do.
    #[command(subcommand)]
    command: KekCommand,
}

/// The verbs of `strongroom transit kek`.
#[derive(Debug, clap::Subcommand)]
enum KekCommand {
    /// Generate a new KEK in the HSM and make it current; the appliance then
    /// re-wraps every stored key version under it, online.
    Rotate(RotateArgs),
    /// Show the KEKs and how many key versions each still wraps.
    Status(StatusArgs),
    /// Destroy a retired KEK in the HSM, for ever (refused while it wraps a
    /// key version).
    Destroy(DestroyArgs),
}

/// Options of `strongroom transit kek rotate`.
#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// The new KEK's label (default: `transit-kek-<Unix seconds>`).
    #[arg(long)]
    label: Option<String>,
    /// Follow the re-wrap until every version is under the new KEK.
    #[arg(long)]
    wait: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit kek status`.
#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// Follow the re-wrap until every version is under the current KEK.
    #[arg(long)]
    watch: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit kek destroy`.
#[derive(Debug, clap::Args)]
struct DestroyArgs {
    /// The retired KEK's label.
    label: String,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Runs a `transit kek` command.
pub(crate) async fn run(args: KekArgs) -> anyhow::Result<()> {
    match args.command {
        KekCommand::Rotate(a) => rotate(a).await,
        KekCommand::Status(a) => status(a).await,
        KekCommand::Destroy(a) => destroy(a).await,
    }
}

/// `strongroom transit kek rotate`.
async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut client = connect(&args.conn).await?;
    let status = client
        .rotate_kek(RotateKekRequest {
            label: args.label.clone().unwrap_or_default(),
        })
        .await
        .map_err(|s| rpc_error("rotate the transit KEK", &url, &s))?
        .into_inner();
    if args.conn.output == OutputFormat::Text {
        println!(
            "rotated the transit KEK to {}; {} key version(s) to re-wrap",
            status.current, status.versions_to_rewrap
        );
    }
    let status = if args.wait {
        watch(&mut client, &url, status, args.conn.output).await?
    } else {
        status
    };
    show(&status, args.conn.output)
}

/// `strongroom transit kek status`.
async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut client = connect(&args.conn).await?;
    let mut status = get_status(&mut client, &url).await?;
    if args.watch {
        status = watch(&mut client, &url, status, args.conn.output).await?;
    }
    show(&status, args.conn.output)
}

/// `strongroom transit kek destroy`.
async fn destroy(args: DestroyArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let status = connect(&args.conn)
        .await?
        .destroy_kek(DestroyKekRequest {
            label: args.label.clone(),
        })
        .await
        .map_err(|s| rpc_error(&format!("destroy transit KEK {}", args.label), &url, &s))?
        .into_inner();
    if args.conn.output == OutputFormat::Text {
        println!("destroyed transit KEK {}", args.label);
    }
    show(&status, args.conn.output)
}

async fn get_status(client: &mut TransitClient<Channel>, url: &str) -> anyhow::Result<KekStatus> {
    Ok(client
        .get_kek_status(GetKekStatusRequest {})
        .await
        .map_err(|s| rpc_error("get the transit KEK status", url, &s))?
        .into_inner())
}

/// Polls until no version is left under a retired KEK, printing progress
/// (text output only); fails if the count stops falling for [`STALL`].
async fn watch(
    client: &mut TransitClient<Channel>,
    url: &str,
    mut status: KekStatus,
    output: OutputFormat,
) -> anyhow::Result<KekStatus> {
    let total = status.versions_to_rewrap;
    let mut left = total;
    let mut moved_at = Instant::now();
    while status.versions_to_rewrap > 0 {
        if moved_at.elapsed() > STALL {
            bail!(
                "the re-wrap is stalled with {} key version(s) left under retired KEKs; \
                 the appliance's log names the versions it cannot unwrap",
                status.versions_to_rewrap
            );
        }
        tokio::time::sleep(POLL).await;
        status = get_status(client, url).await?;
        if status.versions_to_rewrap < left {
            left = status.versions_to_rewrap;
            moved_at = Instant::now();
            if output == OutputFormat::Text {
                let done = total.saturating_sub(left);
                println!("re-wrapped {done} of {total} key version(s), {left} left");
            }
        }
    }
    Ok(status)
}

/// Prints the status as a table (text) or JSON.
fn show(status: &KekStatus, output: OutputFormat) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => print_json(&StatusJson::from(status)),
        OutputFormat::Text => {
            println!("current KEK: {}", status.current);
            if status.versions_to_rewrap == 0 {
                println!("re-wrap: done (every key version is wrapped by the current KEK)");
            } else {
                println!(
                    "re-wrap: {} key version(s) left under retired KEKs",
                    status.versions_to_rewrap
                );
            }
            let width = status
                .keks
                .iter()
                .map(|k| k.label.len())
                .max()
                .unwrap_or(0)
                .max("LABEL".len());
            println!(
                "{:width$}  {:9}  {:>8}  {:20}  CHANGED",
                "LABEL", "STATE", "VERSIONS", "CREATED"
            );
            for kek in &status.keks {
                let json = KekJson::from(kek);
                println!(
                    "{:width$}  {:9}  {:>8}  {:20}  {}",
                    json.label,
                    json.state,
                    json.versions,
                    json.created_at.unwrap_or_default(),
                    json.state_changed_at.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

/// The JSON of the `transit kek` commands.
#[derive(Debug, Serialize)]
struct StatusJson {
    /// The current KEK's label.
    current: String,
    /// Key versions still wrapped by a retired KEK.
    versions_to_rewrap: u64,
    /// The appliance still has re-wrap work (or retries) to do.
    rewrap_pending: bool,
    /// Every KEK, oldest first.
    keks: Vec<KekJson>,
}

impl From<&KekStatus> for StatusJson {
    fn from(status: &KekStatus) -> Self {
        StatusJson {
            current: status.current.clone(),
            versions_to_rewrap: status.versions_to_rewrap,
            rewrap_pending: status.rewrap_pending,
            keks: status.keks.iter().map(KekJson::from).collect(),
        }
    }
}

/// One KEK in JSON.
#[derive(Debug, Serialize)]
struct KekJson {
    /// Its label in the HSM.
    label: String,
    /// `current`, `retired` or `destroyed`.
    state: &'static str,
    /// Key versions it wraps.
    versions: u64,
    /// When the appliance first used it.
    created_at: Option<String>,
    /// When it last changed state.
    state_changed_at: Option<String>,
}

impl From<&Kek> for KekJson {
    fn from(kek: &Kek) -> Self {
        KekJson {
            label: kek.label.clone(),
            state: match kek.state() {
                KekState::Current => "current",
                KekState::Retired => "retired",
                KekState::Destroyed => "destroyed",
                KekState::Unspecified => "unknown",
            },
            versions: kek.versions,
            created_at: kek.created_at.as_ref().and_then(timestamp),
            state_changed_at: kek.state_changed_at.as_ref().and_then(timestamp),
        }
    }
}
