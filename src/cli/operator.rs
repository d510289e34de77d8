//! `strongroom operator …`: the security officers' client of the `Seal`
//! service. It initialises a fresh appliance (which hands out the unseal
//! shares, once), unseals it with `K` shares, seals it with one, and rekeys
//! the share set. The commands and their output are part of the CLI contract
//! in [`super`].
//!
//! # Shares on the client
//!
//! 1. A share is read from `--share-file FILE`, from standard input
//!    (`--share-file -`), or from a prompt on the terminal that does not echo
//!    (compact form on one line, or the text form line by line up to its
//!    `check` line; see [`read_share_lines`]). A file encrypted with age is
//!    opened with the officer's `--identity FILE`
//!    ([`strongroom_ceremony::envelope`]).
//! 2. It is parsed here with [`Share::from_text`]: its checksum catches a
//!    typo or a damaged file before anything is sent, and the error names the
//!    share by set and index, never by its digits.
//! 3. Only its compact form travels, in the one request that needs it.
//!
//! New shares (from `init` and `rekey update`) are checked the same way
//! before they are shown, then go either to stdout or to one file each in
//! `--out-dir`. The files are created empty, exclusively and with mode 0600
//! *before* the request ([`ShareFiles::reserve`]): the appliance never shows
//! shares twice, so every name must be known to be free and writable before
//! it hands them out. With `--recipients FILE` each file is encrypted to its
//! officer's age key before any is written.
//!
//! *Architecture invariant*: share text is held in [`Zeroizing`] strings,
//! written only to stdout or a share file, and never formatted into an error,
//! a log line or `Debug` output. What this module cannot wipe: the prost
//! request and response messages (plain `String`s, moved rather than copied),
//! HTTP/2 buffers, stdout's buffer, and `rpassword`'s own line buffer.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{BufRead, ErrorKind, IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use strongroom_ceremony::envelope::{self, ENCRYPTED_SUFFIX, Identities, Recipient};
use strongroom_ceremony::shares::Share;
use strongroom_proto::v1::seal_client::SealClient;
use strongroom_proto::v1::{
    InitRequest, InitVerifyRequest, RekeyCancelRequest, RekeyStartRequest, RekeyStatusRequest,
    RekeyStatusResponse, RekeyUpdateRequest, RekeyVerifyRequest, SealRequest, SealStatusRequest,
    SealStatusResponse, UnsealRequest,
};
use tonic::transport::Channel;
use zeroize::{Zeroize, Zeroizing};

use super::UsageError;
use super::client::{ConnectionArgs, OutputFormat, rpc_error};
use super::output::print_json;

/// Mode of a share file: owner read/write only.
const SHARE_FILE_MODE: u32 = 0o600;

/// Mode of a share directory that `--out-dir` creates: owner only.
const SHARE_DIR_MODE: u32 = 0o700;

/// Largest share input read from a file or standard input. A share is about
/// 250 bytes; this leaves room for comments and stray whitespace.
const MAX_SHARE_INPUT: usize = 16 * 1024;

/// Longest line accepted at the prompt.
const MAX_PROMPT_LINE: usize = 1024;

/// Lines (blank and comment lines included) read at the prompt before giving
/// up: the text form has six.
const MAX_PROMPT_LINES: usize = 24;

/// `strongroom operator <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct OperatorArgs {
    /// What to do.
    #[command(subcommand)]
    command: OperatorCommand,
}

/// The verbs of `strongroom operator`.
#[derive(Debug, clap::Subcommand)]
enum OperatorCommand {
    /// Show whether the appliance is initialised and sealed, and the progress
    /// of the current unseal attempt.
    Status(ConnOnlyArgs),
    /// Initialise a fresh appliance: create the unseal secret and hand out
    /// its shares (once).
    Init(InitArgs),
    /// Give one share towards unsealing the appliance, or discard the
    /// current attempt (--reset).
    Unseal(UnsealArgs),
    /// Seal a running appliance; one share of the current set authorises it.
    Seal(SealArgs),
    /// Replace the share set (new secret, shares, threshold and HSM PIN).
    Rekey(RekeyArgs),
}

/// `strongroom operator rekey <verb>`.
#[derive(Debug, clap::Args)]
#[command(after_help = "A rekey, step by step:\n  \
    1. strongroom operator rekey start --shares 5 --threshold 3\n  \
    2. K holders of current shares each: strongroom operator rekey update --nonce NONCE\n     \
    (the K-th receives the new shares: add --out-dir DIR to write them to files)\n  \
    3. each holder of a new share: strongroom operator rekey verify --nonce NONCE\n  \
    The current shares stay valid until every new share is verified.")]
struct RekeyArgs {
    /// What to do.
    #[command(subcommand)]
    command: RekeyCommand,
}

/// The verbs of `strongroom operator rekey`.
#[derive(Debug, clap::Subcommand)]
enum RekeyCommand {
    /// Start a rekey (authorised by one current share) to a new set of
    /// --shares shares, --threshold of which
    /// unseal.
    Start(RekeyStartArgs),
    /// Give one share of the current set to the rekey; the last one needed
    /// receives the new shares.
    Update(RekeyUpdateArgs),
    /// Prove that a new share was received intact.
    Verify(RekeyVerifyArgs),
    /// Show the progress of the rekey in progress.
    Status(ConnOnlyArgs),
    /// Cancel the rekey in progress (authorised by one current share); the
    /// current shares stay valid.
    Cancel(RekeyCancelArgs),
}

/// Options of the commands that take only the connection options.
#[derive(Debug, clap::Args)]
struct ConnOnlyArgs {
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// `--shares N --threshold K`, both required.
#[derive(Debug, clap::Args)]
struct SplitArgs {
    /// Number of shares to create (N), 1 to 255.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=255))]
    shares: u8,

    /// Shares needed to unseal (K), 1 to N.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..=255))]
    threshold: u8,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom operator init`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The shares are never shown again: the appliance keeps none.\n\n\
    Examples:\n  \
    strongroom operator init --shares 5 --threshold 3 --out-dir /media/officers/shares\n  \
    strongroom operator init --shares 1 --threshold 1"
)]
struct InitArgs {
    #[command(flatten)]
    split: SplitArgs,

    /// Write share I to DIR/share-I-of-N.txt (mode 0600) instead of
    /// printing the shares. DIR must be new (it is created, mode 0700) or
    /// empty.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,

    #[command(flatten)]
    recipients: RecipientsArg,

    /// Read the token's current user PIN from FILE, or from standard input
    /// with `-`. Default: a prompt on the terminal that does not echo.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,

    /// Read the password of the YubiHSM2's authentication key from FILE
    /// (mode 600), when keys are placed in a YubiHSM2. The appliance keeps
    /// it wrapped by its token.
    #[arg(long, value_name = "FILE")]
    yubihsm_password_file: Option<PathBuf>,
}

/// Options of `strongroom operator rekey start`.
#[derive(Debug, clap::Args)]
struct RekeyStartArgs {
    #[command(flatten)]
    split: SplitArgs,

    /// One share of the current set, authorising the rekey (not counted
    /// towards it).
    #[command(flatten)]
    share: ShareInput,
}

/// Options of `strongroom operator rekey cancel`.
#[derive(Debug, clap::Args)]
struct RekeyCancelArgs {
    /// One share of the current set, authorising the cancel.
    #[command(flatten)]
    share: ShareInput,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Where a share is read from.
#[derive(Debug, clap::Args)]
struct ShareInput {
    /// Read the share (text or compact form, or either encrypted with age)
    /// from FILE, or from standard input with `-`. Default: a prompt on the
    /// terminal that does not echo.
    #[arg(long, value_name = "FILE")]
    share_file: Option<PathBuf>,

    /// The officer's age identity file (AGE-SECRET-KEY-1…) that opens an
    /// encrypted share file.
    #[arg(long, value_name = "FILE", requires = "share_file")]
    identity: Option<PathBuf>,
}

/// `--recipients FILE`: new share files encrypted to the officers' keys.
#[derive(Debug, clap::Args)]
struct RecipientsArg {
    /// Encrypt new share I to the I-th age public key (`age1…`) in FILE,
    /// one key per line in officer order (`#` comments allowed), and name it
    /// share-I-of-N.txt.age. Needs --out-dir.
    #[arg(long, value_name = "FILE", requires = "out_dir")]
    recipients: Option<PathBuf>,
}

/// Options of `strongroom operator unseal`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom operator unseal\n  \
    strongroom operator unseal --share-file /media/officer2/share-2-of-5.txt\n  \
    strongroom operator unseal --reset")]
struct UnsealArgs {
    #[command(flatten)]
    share: ShareInput,

    /// The unseal attempt the share is meant for, as `operator status`
    /// shows it. Default: the attempt in progress now (asked for first, and
    /// printed), or a new one.
    #[arg(long, value_name = "NONCE", conflicts_with = "reset")]
    nonce: Option<String>,

    /// Discard the current unseal attempt and every share given to it; the
    /// share only authorises the reset and is not counted.
    #[arg(long)]
    reset: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom operator seal`.
#[derive(Debug, clap::Args)]
struct SealArgs {
    #[command(flatten)]
    share: ShareInput,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom operator rekey update`.
#[derive(Debug, clap::Args)]
struct RekeyUpdateArgs {
    /// The rekey, as `rekey start` or `rekey status` printed it.
    #[arg(long, value_name = "NONCE")]
    nonce: String,

    #[command(flatten)]
    share: ShareInput,

    /// If this share completes the quorum, write new share I to
    /// DIR/share-I-of-N.txt (mode 0600) instead of printing the new
    /// shares. DIR must be new (it is created, mode 0700) or empty.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,

    #[command(flatten)]
    recipients: RecipientsArg,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom operator rekey verify`.
#[derive(Debug, clap::Args)]
struct RekeyVerifyArgs {
    /// The rekey, as `rekey start` or `rekey status` printed it.
    #[arg(long, value_name = "NONCE")]
    nonce: String,

    /// The NEW share to verify.
    #[command(flatten)]
    share: ShareInput,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Runs a `strongroom operator` command.
pub(super) async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    match args.command {
        OperatorCommand::Status(a) => status(a).await,
        OperatorCommand::Init(a) => init(a).await,
        OperatorCommand::Unseal(a) => unseal(a).await,
        OperatorCommand::Seal(a) => seal(a).await,
        OperatorCommand::Rekey(RekeyArgs { command }) => match command {
            RekeyCommand::Start(a) => rekey_start(a).await,
            RekeyCommand::Update(a) => rekey_update(a).await,
            RekeyCommand::Verify(a) => rekey_verify(a).await,
            RekeyCommand::Status(a) => rekey_status(a).await,
            RekeyCommand::Cancel(a) => rekey_cancel(a).await,
        },
    }
}

/// Checks `1 <= threshold <= shares <= 255` (clap checks each bound; this
/// checks them together).
fn check_split(shares: u8, threshold: u8) -> Result<(), UsageError> {
    if shares == 0 || threshold == 0 || threshold > shares {
        return Err(UsageError::new(format!(
            "--threshold {threshold} with --shares {shares}: need 1 <= threshold <= shares <= 255"
        )));
    }
    Ok(())
}

/// Connects and makes a `Seal` client.
async fn seal_client(conn: &ConnectionArgs) -> anyhow::Result<SealClient<Channel>> {
    Ok(SealClient::new(conn.connect().await?))
}

/// `strongroom operator status`.
async fn status(args: ConnOnlyArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut client = seal_client(&args.conn).await?;
    let status = client
        .status(SealStatusRequest {})
        .await
        .map_err(|s| rpc_error("get seal status", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&SealStatusJson::from(&status)),
        OutputFormat::Text => {
            print!("{}", seal_status_text(&status));
            Ok(())
        }
    }
}

/// `strongroom operator init`.
async fn init(args: InitArgs) -> anyhow::Result<()> {
    let SplitArgs {
        shares: count,
        threshold,
        conn,
    } = args.split;
    check_split(count, threshold)?;
    let url = conn.url();
    let recipients = read_recipients(args.recipients.recipients.as_deref())?;
    check_recipient_count(&recipients, count)?;
    let output = NewShareOutput::prepare(args.out_dir.as_deref(), count, &recipients)?;
    let pin = read_pin(args.pin_file.as_deref())?;
    let yubihsm_password = match args.yubihsm_password_file.as_deref() {
        Some(file) => read_secret_file(file, "YubiHSM2 password")?,
        None => Zeroizing::new(String::new()),
    };
    let mut client = seal_client(&conn).await?;
    let response = client
        .init(InitRequest {
            shares: count.into(),
            threshold: threshold.into(),
            pin: pin.as_str().to_owned(),
            yubihsm_password: yubihsm_password.as_str().to_owned(),
        })
        .await
        .map_err(|s| rpc_error("initialise the appliance", &url, &s))?
        .into_inner();
    let shares: Vec<Zeroizing<String>> = response.shares.into_iter().map(Zeroizing::new).collect();
    let set = NewSet {
        set_id: response.set_id,
        threshold: response.threshold,
        count: count.into(),
    };
    drop(pin);
    let files = output.deliver(&shares, &set).context(
        "the shares could not all be delivered, so none was verified and nothing was \
         committed; run init again",
    )?;
    print_new_shares(conn.output, &set, &shares, &files, &recipients, None)?;
    // Every share is stored (or shown): give each back, which commits.
    for share in &shares {
        client
            .init_verify(InitVerifyRequest {
                share: share.as_str().to_owned(),
            })
            .await
            .map_err(|s| rpc_error("verify a new share", &url, &s))?;
    }
    eprintln!(
        "strongroom: the appliance stays sealed: any {} of these shares unseal it \
         (`strongroom operator unseal`)",
        set.threshold
    );
    Ok(())
}

/// `strongroom operator unseal`.
async fn unseal(args: UnsealArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    if args.reset {
        let share = read_share(&args.share)?;
        let mut client = seal_client(&args.conn).await?;
        let status = client
            .unseal(UnsealRequest {
                share: share.take_compact(),
                nonce: String::new(),
                reset: true,
            })
            .await
            .map_err(|s| rpc_error("discard the unseal attempt", &url, &s))?
            .into_inner();
        return match args.conn.output {
            OutputFormat::Json => print_json(&SealStatusJson::from(&status)),
            OutputFormat::Text => {
                println!("unseal attempt discarded");
                println!("{}", unseal_result_text(&status));
                Ok(())
            }
        };
    }
    let mut client = seal_client(&args.conn).await?;
    let nonce = match &args.nonce {
        Some(nonce) => nonce.clone(),
        None => {
            // Ask first, so that the share goes to the attempt shown here and
            // the server refuses it if another one started meanwhile.
            let status = client
                .status(SealStatusRequest {})
                .await
                .map_err(|s| rpc_error("get seal status", &url, &s))?
                .into_inner();
            check_unseal_target(&status)?;
            if status.nonce.is_empty() {
                // No attempt was shown: the share must start one, not join
                // one that someone started since.
                NEW_ATTEMPT.to_string()
            } else {
                status.nonce
            }
        }
    };
    // Asked for only now: an officer never types a share the appliance
    // cannot use.
    let share = read_share(&args.share)?;
    eprintln!("strongroom: {}", unseal_target_text(&share, &nonce));
    let status = client
        .unseal(UnsealRequest {
            share: share.take_compact(),
            nonce,
            reset: false,
        })
        .await
        .map_err(|s| rpc_error("unseal", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&SealStatusJson::from(&status)),
        OutputFormat::Text => {
            println!("{}", unseal_result_text(&status));
            Ok(())
        }
    }
}

/// The unseal nonce that starts a new attempt (see seal.proto).
const NEW_ATTEMPT: &str = "new";

/// Refuses, before the share is sent, an unseal the appliance's status shows
/// cannot count it. Which share set it belongs to is left to the appliance:
/// after an interrupted rekey it accepts either of two sets.
fn check_unseal_target(status: &SealStatusResponse) -> anyhow::Result<()> {
    if !status.initialized {
        bail!(
            "the appliance is not initialised (`strongroom operator init`); the share was not sent"
        );
    }
    if !status.sealed {
        bail!("the appliance is already unsealed; the share was not sent");
    }
    Ok(())
}

/// Which attempt a share goes to, for stderr.
fn unseal_target_text(share: &InputShare, nonce: &str) -> String {
    let what = format!("share {} of set {}", share.index, share.set_id);
    if nonce.is_empty() || nonce == NEW_ATTEMPT {
        format!("giving {what} to a new unseal attempt")
    } else {
        format!("giving {what} to unseal attempt {nonce}")
    }
}

/// The state after an unseal call: `sealed: yes, progress P of K (attempt
/// NONCE)` or `unsealed`.
fn unseal_result_text(status: &SealStatusResponse) -> String {
    if !status.sealed {
        return "unsealed".to_owned();
    }
    let mut text = format!(
        "sealed: yes, progress {} of {}",
        status.progress, status.threshold
    );
    if !status.nonce.is_empty() {
        text.push_str(&format!(" (attempt {})", status.nonce));
    }
    text
}

/// `strongroom operator seal`.
async fn seal(args: SealArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let share = read_share(&args.share)?;
    let mut client = seal_client(&args.conn).await?;
    let status = client
        .seal(SealRequest {
            share: share.take_compact(),
        })
        .await
        .map_err(|s| rpc_error("seal the appliance", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&SealStatusJson::from(&status)),
        OutputFormat::Text => {
            println!("sealed");
            Ok(())
        }
    }
}

/// `strongroom operator rekey start`.
async fn rekey_start(args: RekeyStartArgs) -> anyhow::Result<()> {
    let RekeyStartArgs { split: args, share } = args;
    check_split(args.shares, args.threshold)?;
    let url = args.conn.url();
    let share = read_share(&share)?;
    let mut client = seal_client(&args.conn).await?;
    let status = client
        .rekey_start(RekeyStartRequest {
            shares: args.shares.into(),
            threshold: args.threshold.into(),
            share: share.take_compact(),
        })
        .await
        .map_err(|s| rpc_error("start a rekey", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&RekeyStatusJson::from(&status)),
        OutputFormat::Text => {
            println!("rekey started: nonce {}", status.nonce);
            println!(
                "new share set: {} of {} shares needed to unseal",
                status.new_threshold, status.new_shares
            );
            println!(
                "next: {} holder(s) of current shares, one after the other, run \
                 `strongroom operator rekey update --nonce {}` (the last one receives \
                 the new shares; add --out-dir DIR to write them to files)",
                status.required, status.nonce
            );
            Ok(())
        }
    }
}

/// `strongroom operator rekey update`.
async fn rekey_update(args: RekeyUpdateArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    // Before the share is typed: the directory must be new or empty.
    if let Some(dir) = &args.out_dir {
        check_out_dir(dir)?;
    }
    // Read now, checked against the new set's size below.
    let recipients = read_recipients(args.recipients.recipients.as_deref())?;
    let share = read_share(&args.share)?;
    let mut client = seal_client(&args.conn).await?;
    let output = match &args.out_dir {
        None => NewShareOutput::Stdout,
        Some(dir) => {
            // The file names need the new set's size, which the rekey knows.
            let status = client
                .rekey_status(RekeyStatusRequest {})
                .await
                .map_err(|s| rpc_error("get rekey status", &url, &s))?
                .into_inner();
            if !status.started {
                bail!("no rekey is in progress; the share was not sent");
            }
            if status.nonce != args.nonce {
                bail!(
                    "the rekey in progress is {}, not {}; the share was not sent",
                    status.nonce,
                    args.nonce
                );
            }
            let count = u8::try_from(status.new_shares)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    anyhow!(
                        "the appliance reports a new set of {} shares; the share was not sent",
                        status.new_shares
                    )
                })?;
            check_recipient_count(&recipients, count)?;
            NewShareOutput::prepare(Some(dir), count, &recipients)?
        }
    };
    eprintln!(
        "strongroom: giving share {} of set {} to rekey {}",
        share.index, share.set_id, args.nonce
    );
    let response = client
        .rekey_update(RekeyUpdateRequest {
            nonce: args.nonce.clone(),
            share: share.take_compact(),
        })
        .await
        .map_err(|s| rpc_error("rekey update", &url, &s))?
        .into_inner();
    let shares: Vec<Zeroizing<String>> = response
        .new_shares
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    let status = response.status.unwrap_or_default();
    if shares.is_empty() {
        // Not the last share needed: nothing to write (the reserved files, if
        // any, are removed as `output` drops).
        drop(output);
        return match args.conn.output {
            OutputFormat::Json => print_json(&RekeyUpdateJson {
                status: RekeyStatusJson::from(&status),
                shares: None,
                files: Vec::new(),
                encrypted_to: Vec::new(),
            }),
            OutputFormat::Text => {
                println!(
                    "rekey {}: {} of {} current shares given",
                    status.nonce, status.progress, status.required
                );
                Ok(())
            }
        };
    }
    let set = NewSet {
        set_id: status.new_set_id.clone(),
        threshold: status.new_threshold,
        count: status.new_shares,
    };
    let files = output.deliver(&shares, &set).with_context(|| {
        format!(
            "rekey {}: the new shares could not all be delivered (cancel the rekey with \
             `strongroom operator rekey cancel`: the current shares stay valid)",
            args.nonce
        )
    })?;
    print_new_shares(
        args.conn.output,
        &set,
        &shares,
        &files,
        &recipients,
        Some(&status),
    )?;
    eprintln!(
        "strongroom: each holder of a new share must now run \
         `strongroom operator rekey verify --nonce {}` with it; the old shares stay valid \
         until all {} new shares are verified",
        args.nonce, set.count
    );
    Ok(())
}

/// `strongroom operator rekey verify`.
async fn rekey_verify(args: RekeyVerifyArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let share = read_share(&args.share)?;
    let mut client = seal_client(&args.conn).await?;
    let status = client
        .rekey_verify(RekeyVerifyRequest {
            nonce: args.nonce.clone(),
            share: share.take_compact(),
        })
        .await
        .map_err(|s| rpc_error("rekey verify", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&RekeyStatusJson::from(&status)),
        OutputFormat::Text => {
            println!("{}", rekey_verify_text(&status));
            Ok(())
        }
    }
}

/// The result of `rekey verify`, as text.
fn rekey_verify_text(status: &RekeyStatusResponse) -> String {
    if status.complete {
        format!(
            "rekey complete: the new share set {} is in force; the old shares no longer work",
            status.new_set_id
        )
    } else {
        format!("verified {} of {}", status.verified, status.new_shares)
    }
}

/// `strongroom operator rekey status`.
async fn rekey_status(args: ConnOnlyArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut client = seal_client(&args.conn).await?;
    let status = client
        .rekey_status(RekeyStatusRequest {})
        .await
        .map_err(|s| rpc_error("get rekey status", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&RekeyStatusJson::from(&status)),
        OutputFormat::Text => {
            print!("{}", rekey_status_text(&status));
            Ok(())
        }
    }
}

/// `strongroom operator rekey cancel`.
async fn rekey_cancel(args: RekeyCancelArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let share = read_share(&args.share)?;
    let mut client = seal_client(&args.conn).await?;
    let status = client
        .rekey_cancel(RekeyCancelRequest {
            share: share.take_compact(),
        })
        .await
        .map_err(|s| rpc_error("cancel the rekey", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&RekeyStatusJson::from(&status)),
        OutputFormat::Text => {
            println!(
                "rekey cancelled: the current shares stay valid; new shares it handed out \
                 are worthless"
            );
            Ok(())
        }
    }
}

/// The text of `operator status`, one `name: value` line each.
fn seal_status_text(status: &SealStatusResponse) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut text = format!(
        "initialized: {}\nsealed: {}\n",
        yes_no(status.initialized),
        yes_no(status.sealed)
    );
    if status.initialized {
        text.push_str(&format!("share set: {}\n", status.set_id));
        text.push_str(&format!(
            "threshold: {} of {}\n",
            status.threshold, status.shares
        ));
    }
    if status.init_pending {
        text.push_str(&format!(
            "init pending: share set {}, {} of {} shares verified\n",
            status.set_id, status.init_verified, status.shares
        ));
    }
    if !status.nonce.is_empty() {
        text.push_str(&format!(
            "unseal progress: {} of {} (attempt {})\n",
            status.progress, status.threshold, status.nonce
        ));
    }
    text
}

/// The text of `operator rekey status`.
fn rekey_status_text(status: &RekeyStatusResponse) -> String {
    if !status.started {
        return "no rekey in progress\n".to_owned();
    }
    let mut text = format!(
        "rekey: {}\nnew share set: {} of {} shares needed to unseal\n\
         current shares given: {} of {}\n",
        status.nonce, status.new_threshold, status.new_shares, status.progress, status.required
    );
    if !status.new_set_id.is_empty() {
        text.push_str(&format!(
            "new shares handed out: set {}\nverified: {} of {}\n",
            status.new_set_id, status.verified, status.new_shares
        ));
    }
    text
}

// ---------------------------------------------------------------------------
// Reading one share.

/// A share read and checked locally, kept only in its compact form until the
/// request that carries it. Its public facts name it in messages.
struct InputShare {
    /// `strongroom-share:v1:…`: secret.
    compact: Zeroizing<String>,
    /// Set identifier, 32 hex digits (public).
    set_id: String,
    /// The share's index in its set (public).
    index: u8,
}

impl std::fmt::Debug for InputShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputShare")
            .field("set_id", &self.set_id)
            .field("index", &self.index)
            .field("compact", &format_args!("<redacted>"))
            .finish()
    }
}

impl InputShare {
    /// From a parsed share (dropped, and so wiped, here).
    fn new(share: Share) -> Self {
        InputShare {
            compact: Zeroizing::new(share.to_compact()),
            set_id: share.set_id().to_string(),
            index: share.index(),
        }
    }

    /// Moves the compact text out for a request field (a prost `String`,
    /// which cannot be wiped): moved, so no further copy is made.
    fn take_compact(mut self) -> String {
        std::mem::take(&mut *self.compact)
    }
}

/// Reads the share of a command: from `--share-file FILE`, from standard
/// input (`-`; a terminal gets the hidden prompt), or from the hidden
/// prompt. A share that does not parse (typo, damage, not a share) is
/// refused here, before anything is sent.
fn read_share(input: &ShareInput) -> anyhow::Result<InputShare> {
    let (bytes, source): (Zeroizing<Vec<u8>>, String) = match input.share_file.as_deref() {
        Some(path) if path != Path::new("-") => {
            let mut file = File::open(path)
                .with_context(|| format!("cannot read the share file {}", path.display()))?;
            let what = format!("the share file {}", path.display());
            (read_limited_bytes(&mut file, &what)?, what)
        }
        Some(_) if !std::io::stdin().is_terminal() => {
            let what = "standard input".to_owned();
            (
                read_limited_bytes(&mut std::io::stdin().lock(), &what)?,
                what,
            )
        }
        // No file, or `-` on a terminal: never echo a share.
        _ => {
            let typed = prompt_share()?;
            let mut bytes = Zeroizing::new(Vec::with_capacity(typed.len()));
            bytes.extend_from_slice(typed.as_bytes());
            (bytes, "the terminal".to_owned())
        }
    };
    let text = if envelope::is_encrypted(&bytes) {
        let Some(identity) = input.identity.as_deref() else {
            bail!(
                "{source} holds a share encrypted with age: give the officer's identity file \
                 with --identity FILE (nothing was sent)"
            );
        };
        let identities = read_identity(identity)?;
        envelope::decrypt(&bytes, &identities)
            .map_err(|e| anyhow!("{source} cannot be opened (nothing was sent): {e}"))?
    } else {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| anyhow!("{source} is not text (not UTF-8): not a share"))?;
        let mut owned = Zeroizing::new(String::with_capacity(text.len()));
        owned.push_str(text);
        owned
    };
    drop(bytes);
    let share = Share::from_text(&text)
        .map_err(|e| anyhow!("the share from {source} is refused (nothing was sent): {e}"))?;
    drop(text);
    Ok(InputShare::new(share))
}

/// Reads all of `reader` (at most [`MAX_SHARE_INPUT`] bytes) as UTF-8 into
/// memory that is wiped on drop.
fn read_limited(reader: &mut impl Read, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let buf = read_limited_bytes(reader, what)?;
    let text = std::str::from_utf8(&buf).map_err(|_| anyhow!("{what} is not text (not UTF-8)"))?;
    let mut owned = Zeroizing::new(String::with_capacity(text.len()));
    owned.push_str(text);
    Ok(owned)
}

/// Reads all of `reader` (at most [`MAX_SHARE_INPUT`] bytes) into memory
/// that is wiped on drop.
fn read_limited_bytes(reader: &mut impl Read, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    // Fixed size, so that no reallocation leaves copies behind.
    let mut buf = Zeroizing::new(vec![0u8; MAX_SHARE_INPUT + 1]);
    let mut len = 0;
    while len < buf.len() {
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!("cannot read {what}: {e}")),
        }
    }
    if len > MAX_SHARE_INPUT {
        bail!("{what} is larger than {MAX_SHARE_INPUT} bytes: not a share");
    }
    buf.truncate(len);
    Ok(buf)
}

/// An officer's age identity file; like a PIN file, it must not be
/// readable by others.
fn read_identity(path: &Path) -> anyhow::Result<Identities> {
    let what = format!("the identity file {}", path.display());
    let mut file = File::open(path).with_context(|| format!("cannot read {what}"))?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!("{what} is readable by others; chmod 600 it");
    }
    let text = read_limited(&mut file, &what)?;
    Identities::parse(&text).map_err(|e| anyhow!("{what}: {e}"))
}

/// The officers' age public keys from `--recipients FILE` (none without
/// it): one per line, distinct.
fn read_recipients(path: Option<&Path>) -> anyhow::Result<Vec<Recipient>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let what = format!("the recipients file {}", path.display());
    let mut file = File::open(path).with_context(|| format!("cannot read {what}"))?;
    let text = read_limited(&mut file, &what)?;
    let recipients = envelope::parse_recipients(&text).map_err(|e| anyhow!("{what}: {e}"))?;
    if recipients.is_empty() {
        bail!("{what} lists no age public key");
    }
    for (i, r) in recipients.iter().enumerate() {
        if let Some(j) = recipients[..i].iter().position(|o| o == r) {
            bail!(
                "{what}: keys {} and {} are the same: each share goes to a different officer",
                j + 1,
                i + 1
            );
        }
    }
    Ok(recipients)
}

/// One recipient per new share, or none.
fn check_recipient_count(recipients: &[Recipient], count: u8) -> anyhow::Result<()> {
    if !recipients.is_empty() && recipients.len() != usize::from(count) {
        bail!(
            "the recipients file lists {} keys for {count} new shares: give one per share, in \
             share order",
            recipients.len()
        );
    }
    Ok(())
}

/// Reads a secret from a file only its owner may read; a trailing newline is
/// not part of it.
fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let mut file = File::open(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        bail!(
            "the {what} file {} is readable by others; chmod 600 it",
            path.display()
        );
    }
    let text = read_limited(&mut file, &format!("the {what} file {}", path.display()))?;
    let secret = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
    if secret.is_empty() {
        bail!("the {what} is empty");
    }
    Ok(secret)
}

/// Reads the token's user PIN for init: from FILE, standard input (`-`), or
/// a prompt that does not echo. A trailing newline is not part of it.
fn read_pin(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    let text = match file {
        Some(path) if path != Path::new("-") => {
            let mut file = File::open(path)
                .with_context(|| format!("cannot read the PIN file {}", path.display()))?;
            let mode = file.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "the PIN file {} is readable by others; chmod 600 it",
                    path.display()
                );
            }
            read_limited(&mut file, &format!("the PIN file {}", path.display()))?
        }
        Some(_) if !std::io::stdin().is_terminal() => {
            read_limited(&mut std::io::stdin().lock(), "standard input")?
        }
        _ => Zeroizing::new(
            rpassword::prompt_password("The token's current user PIN (not echoed): ")
                .map_err(|e| anyhow!("cannot read the PIN: {e} (use --pin-file FILE)"))?,
        ),
    };
    let pin = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
    if pin.is_empty() {
        bail!("the PIN is empty");
    }
    Ok(pin)
}

/// Asks for a share on the terminal without echo.
fn prompt_share() -> anyhow::Result<Zeroizing<String>> {
    eprintln!(
        "Enter your share (not echoed): the compact form (strongroom-share:v1:…) on one \
         line, or the text form line by line, ending with its `check` line."
    );
    read_share_lines(&mut HiddenTerminal::default()).map_err(|e| {
        anyhow!(
            "{e:#} (to give the share without a terminal: --share-file FILE, or \
             --share-file - for standard input)"
        )
    })
}

/// Reads one share typed or pasted line by line: the compact form on one
/// line, or the text form, finished by its `check` line or by an empty line
/// after some content. Blank lines before the share and `#` comment lines
/// are skipped. Reads nothing after the share's last line.
fn read_share_lines<R: BufRead>(input: &mut R) -> anyhow::Result<Zeroizing<String>> {
    // Fixed capacities, so that no reallocation leaves copies behind.
    let mut text = Zeroizing::new(String::with_capacity(
        MAX_PROMPT_LINES * (MAX_PROMPT_LINE + 1),
    ));
    let mut line = Zeroizing::new(String::with_capacity(MAX_PROMPT_LINE + 2));
    let mut ended = false;
    for _ in 0..MAX_PROMPT_LINES {
        line.zeroize();
        let read = input
            .by_ref()
            .take(MAX_PROMPT_LINE as u64 + 1)
            .read_line(&mut line)
            .map_err(|e| anyhow!("cannot read the share: {e}"))?;
        if read == 0 {
            ended = true;
            break;
        }
        if line.len() > MAX_PROMPT_LINE && !line.ends_with('\n') {
            bail!("a line of the share is longer than {MAX_PROMPT_LINE} characters");
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            if text.is_empty() {
                continue;
            }
            return Ok(text);
        }
        if trimmed.starts_with('#') {
            continue;
        }
        text.push_str(trimmed);
        text.push('\n');
        if is_compact_share(trimmed) || is_check_line(trimmed) {
            return Ok(text);
        }
    }
    if text.is_empty() {
        bail!("no share was entered");
    }
    if ended {
        // Let the parser say what is missing.
        return Ok(text);
    }
    bail!("no `check` line within {MAX_PROMPT_LINES} lines: this is not a share")
}

/// Whether a (trimmed) line is a whole share in compact form.
fn is_compact_share(line: &str) -> bool {
    line.get(.."strongroom-share:".len())
        .is_some_and(|p| p.eq_ignore_ascii_case("strongroom-share:"))
}

/// Whether a (trimmed) line is the last line of the text form.
fn is_check_line(line: &str) -> bool {
    line.split_whitespace()
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("check"))
}

/// The controlling terminal as a [`BufRead`] that never echoes: each line
/// is read with `rpassword` (echo off, prompt `share line N:` on the
/// terminal).
///
/// `rpassword` turns echo back on between lines: paste the text form line by
/// line, or the compact form, rather than all six lines at once.
#[derive(Default)]
struct HiddenTerminal {
    /// The current line and its `\n`: secret.
    line: Zeroizing<Vec<u8>>,
    /// How much of `line` was consumed.
    pos: usize,
    /// Lines read so far.
    count: usize,
}

impl Read for HiddenTerminal {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for HiddenTerminal {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.line.len() {
            self.count += 1;
            let typed = Zeroizing::new(rpassword::prompt_password(format!(
                "share line {}: ",
                self.count
            ))?);
            // Wiped and emptied first, so that growing it copies nothing.
            self.line.zeroize();
            self.line.extend_from_slice(typed.as_bytes());
            self.line.push(b'\n');
            self.pos = 0;
        }
        Ok(&self.line[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.line.len());
    }
}

// ---------------------------------------------------------------------------
// Delivering new shares.

/// The public description of a new share set, from the response that
/// carried its shares.
#[derive(Debug)]
struct NewSet {
    /// Identifier, as the appliance reported it.
    set_id: String,
    /// Shares needed to unseal (K).
    threshold: u32,
    /// Shares in the set (N).
    count: u32,
}

/// Checks new shares before anyone relies on them: each parses (checksum),
/// they are shares 1 to N in order, and all name the set, K and N the
/// appliance reported.
fn check_new_shares(shares: &[Zeroizing<String>], set: &NewSet) -> anyhow::Result<()> {
    if u32::try_from(shares.len()).ok() != Some(set.count) {
        bail!(
            "the appliance returned {} shares for a set of {}",
            shares.len(),
            set.count
        );
    }
    for (i, text) in shares.iter().enumerate() {
        let n = i + 1;
        let share = Share::from_text(text)
            .map_err(|e| anyhow!("share {n} returned by the appliance does not parse: {e}"))?;
        if usize::from(share.index()) != n
            || u32::from(share.threshold()) != set.threshold
            || u32::from(share.count()) != set.count
            || !share
                .set_id()
                .to_string()
                .eq_ignore_ascii_case(set.set_id.trim())
        {
            bail!(
                "share {n} returned by the appliance is share {} of set {} ({} of {} needed), \
                 not share {n} of set {} ({} of {} needed)",
                share.index(),
                share.set_id(),
                share.threshold(),
                share.count(),
                set.set_id,
                set.threshold,
                set.count
            );
        }
    }
    Ok(())
}

/// Where new shares go, decided (and for files, prepared) before the request
/// that returns them.
#[derive(Debug)]
enum NewShareOutput {
    /// Printed on stdout.
    Stdout,
    /// One file each, reserved in advance.
    Files(ShareFiles),
}

impl NewShareOutput {
    /// Stdout, or `count` files reserved in `dir` (each encrypted to its
    /// recipient when `recipients` is not empty).
    fn prepare(dir: Option<&Path>, count: u8, recipients: &[Recipient]) -> anyhow::Result<Self> {
        match dir {
            None => Ok(NewShareOutput::Stdout),
            Some(dir) => Ok(NewShareOutput::Files(ShareFiles::reserve(
                dir, count, recipients,
            )?)),
        }
    }

    /// Checks the shares, then writes them to their files (returning the
    /// paths) or leaves them for stdout (returning no paths).
    fn deliver(self, shares: &[Zeroizing<String>], set: &NewSet) -> anyhow::Result<Vec<PathBuf>> {
        check_new_shares(shares, set)?;
        match self {
            NewShareOutput::Stdout => Ok(Vec::new()),
            NewShareOutput::Files(files) => files.fill(shares),
        }
    }
}

/// Refuses an output directory that exists and is not an empty directory;
/// returns whether it exists.
fn check_out_dir(dir: &Path) -> anyhow::Result<bool> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => bail!(
            "refusing to write shares to {}: it exists and is not a directory",
            dir.display()
        ),
        Ok(_) => {
            let mut entries = fs::read_dir(dir)
                .with_context(|| format!("cannot read the directory {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "refusing to write shares to {}: the directory is not empty (give a new or \
                     empty directory)",
                    dir.display()
                );
            }
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", dir.display())),
    }
}

/// The file name of share `index` of `count` (`.age` appended when it is
/// encrypted).
fn share_file_name(index: u8, count: u8, encrypted: bool) -> String {
    let suffix = if encrypted { ENCRYPTED_SUFFIX } else { "" };
    format!("share-{index}-of-{count}.txt{suffix}")
}

/// Creates `path`, which must not exist (`O_EXCL`: never replaces anything,
/// not even through a symlink), with mode 0600.
fn create_share_file(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SHARE_FILE_MODE)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // Exact, whatever the umask.
    file.set_permissions(Permissions::from_mode(SHARE_FILE_MODE))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(file)
}

/// Share files created empty before the request that returns the shares, so
/// that every name is known to be free and writable before the appliance
/// hands out shares it never shows again. Dropped unfilled (the request
/// failed, or brought no shares), it removes the files again, and the
/// directory if it created it.
#[derive(Debug)]
struct ShareFiles {
    /// The output directory.
    dir: PathBuf,
    /// Whether [`ShareFiles::reserve`] created `dir`.
    created_dir: bool,
    /// Share `i` goes to `files[i - 1]`.
    files: Vec<(PathBuf, File)>,
    /// Empty, or share `i` is encrypted to `recipients[i - 1]`.
    recipients: Vec<Recipient>,
    /// Set once shares were written: from then on nothing is removed.
    filled: bool,
}

impl ShareFiles {
    /// Checks that `dir` is new or empty, creates it if new (mode 0700), and
    /// creates `share-<i>-of-<count>.txt` (`.txt.age` with `recipients`) for
    /// every share, empty, mode 0600.
    fn reserve(dir: &Path, count: u8, recipients: &[Recipient]) -> anyhow::Result<Self> {
        check_recipient_count(recipients, count)?;
        let exists = check_out_dir(dir)?;
        if !exists {
            DirBuilder::new()
                .mode(SHARE_DIR_MODE)
                .create(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let mut reserved = ShareFiles {
            dir: dir.to_path_buf(),
            created_dir: !exists,
            files: Vec::with_capacity(count.into()),
            recipients: recipients.to_vec(),
            filled: false,
        };
        if !exists {
            fs::set_permissions(dir, Permissions::from_mode(SHARE_DIR_MODE))
                .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
        }
        for index in 1..=count {
            let path = dir.join(share_file_name(index, count, !recipients.is_empty()));
            let file = create_share_file(&path)?;
            reserved.files.push((path, file));
        }
        Ok(reserved)
    }

    /// Writes share `i` to file `i` and syncs it. A failure does not stop
    /// the others: every share that can be written is.
    fn fill(mut self, shares: &[Zeroizing<String>]) -> anyhow::Result<Vec<PathBuf>> {
        if shares.len() != self.files.len() {
            bail!(
                "{} shares for {} files: nothing was written",
                shares.len(),
                self.files.len()
            );
        }
        // Every file's content is ready before the first is written.
        let mut contents = Vec::with_capacity(shares.len());
        for (i, share) in shares.iter().enumerate() {
            let mut text = Zeroizing::new(String::with_capacity(share.len() + 1));
            text.push_str(share.trim_end());
            text.push('\n');
            contents.push(match self.recipients.get(i) {
                None => text,
                Some(to) => Zeroizing::new(
                    envelope::encrypt(&text, to)
                        .map_err(|e| anyhow!("share {}: {e}; nothing was written", i + 1))?,
                ),
            });
        }
        // The shares exist nowhere else: never remove a file from now on.
        self.filled = true;
        let mut failed = Vec::new();
        for ((path, file), content) in self.files.iter_mut().zip(&contents) {
            let result = file
                .write_all(content.as_bytes())
                .and_then(|()| file.sync_all());
            if let Err(e) = result {
                failed.push(format!("{}: {e}", path.display()));
            }
        }
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        if !failed.is_empty() {
            bail!(
                "{} of {} share files could not be written, and those shares are lost: {}",
                failed.len(),
                self.files.len(),
                failed.join("; ")
            );
        }
        Ok(self.files.iter().map(|(path, _)| path.clone()).collect())
    }
}

impl Drop for ShareFiles {
    fn drop(&mut self) {
        if self.filled {
            return;
        }
        for (path, _) in &self.files {
            let _ = fs::remove_file(path);
        }
        if self.created_dir {
            // Only if still empty.
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

/// Prints new shares (`init`, `rekey update`): on stdout, or only the files
/// written. `rekey` is the rekey's status, for `rekey update`'s JSON.
fn print_new_shares(
    format: OutputFormat,
    set: &NewSet,
    shares: &[Zeroizing<String>],
    files: &[PathBuf],
    recipients: &[Recipient],
    rekey: Option<&RekeyStatusResponse>,
) -> anyhow::Result<()> {
    let printed = files.is_empty();
    let encrypted_to: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
    match format {
        OutputFormat::Json => {
            let texts = printed.then(|| shares.iter().map(|s| s.as_str()).collect());
            let files = files.iter().map(|p| p.display().to_string()).collect();
            match rekey {
                None => print_secret_json(
                    &InitJson {
                        set_id: &set.set_id,
                        threshold: set.threshold,
                        shares: texts,
                        files,
                        encrypted_to,
                    },
                    shares,
                ),
                Some(status) => print_secret_json(
                    &RekeyUpdateJson {
                        status: RekeyStatusJson::from(status),
                        shares: texts,
                        files,
                        encrypted_to,
                    },
                    shares,
                ),
            }
        }
        OutputFormat::Text if printed => {
            print_share_texts(shares)?;
            eprintln!(
                "strongroom: WARNING: these {} shares of set {} are shown this once and never \
                 again (the appliance keeps none): give one to each officer now; any {} of \
                 them will unseal the appliance",
                set.count, set.set_id, set.threshold
            );
            Ok(())
        }
        OutputFormat::Text => {
            println!("share set: {}", set.set_id);
            println!("threshold: {} of {}", set.threshold, set.count);
            for (i, path) in files.iter().enumerate() {
                match encrypted_to.get(i) {
                    Some(to) => println!("wrote {} (encrypted to {to})", path.display()),
                    None => println!("wrote {}", path.display()),
                }
            }
            eprintln!(
                "strongroom: give one file to each officer: they are the only copies of the \
                 shares"
            );
            Ok(())
        }
    }
}

/// Writes the shares on stdout, each after a `# share i of N` line, a blank
/// line between them, without formatting them into other strings.
fn print_share_texts(shares: &[Zeroizing<String>]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let count = shares.len();
    let result = (|| -> std::io::Result<()> {
        for (i, share) in shares.iter().enumerate() {
            if i > 0 {
                out.write_all(b"\n")?;
            }
            writeln!(out, "# share {} of {count}", i + 1)?;
            out.write_all(share.trim_end().as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    })();
    result.context("cannot write the shares to stdout")
}

/// Prints one JSON document that contains share text: serialized into
/// memory that is wiped afterwards (sized for `shares`, so it need not grow).
fn print_secret_json<T: Serialize>(value: &T, shares: &[Zeroizing<String>]) -> anyhow::Result<()> {
    let capacity = 4096 + 2 * shares.iter().map(|s| s.len()).sum::<usize>();
    let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer_pretty(&mut *buf, value).context("cannot encode the JSON output")?;
    buf.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)
        .and_then(|()| out.flush())
        .context("cannot write the JSON output to stdout")
}

// ---------------------------------------------------------------------------
// JSON documents (part of the CLI contract: change only by adding fields).

/// `operator status`, `unseal`, `seal`: the `SealStatusResponse` fields.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct SealStatusJson {
    /// False until `operator init` has run.
    initialized: bool,
    /// True while sealed.
    sealed: bool,
    /// The current share set, 32 hex digits ("" before initialisation).
    set_id: String,
    /// Shares needed to unseal (K).
    threshold: u32,
    /// Shares in the set (N).
    shares: u32,
    /// Shares given to the current unseal attempt.
    progress: u32,
    /// The current unseal attempt, or "".
    nonce: String,
    /// True while an init waits for its shares to be verified.
    init_pending: bool,
    /// Shares of the pending init verified so far.
    init_verified: u32,
}

impl From<&SealStatusResponse> for SealStatusJson {
    fn from(s: &SealStatusResponse) -> Self {
        SealStatusJson {
            initialized: s.initialized,
            sealed: s.sealed,
            set_id: s.set_id.clone(),
            threshold: s.threshold,
            shares: s.shares,
            progress: s.progress,
            nonce: s.nonce.clone(),
            init_pending: s.init_pending,
            init_verified: s.init_verified,
        }
    }
}

/// `operator rekey start|verify|status|cancel`: the `RekeyStatusResponse`
/// fields.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct RekeyStatusJson {
    /// True while a rekey is in progress.
    started: bool,
    /// The rekey, or "".
    nonce: String,
    /// The new set's K.
    new_threshold: u32,
    /// The new set's N.
    new_shares: u32,
    /// Current shares given so far.
    progress: u32,
    /// Current shares needed.
    required: u32,
    /// The new set, once its shares were handed out, or "".
    new_set_id: String,
    /// New shares verified so far.
    verified: u32,
    /// True once the new set is in force.
    complete: bool,
}

impl From<&RekeyStatusResponse> for RekeyStatusJson {
    fn from(s: &RekeyStatusResponse) -> Self {
        RekeyStatusJson {
            started: s.started,
            nonce: s.nonce.clone(),
            new_threshold: s.new_threshold,
            new_shares: s.new_shares,
            progress: s.progress,
            required: s.required,
            new_set_id: s.new_set_id.clone(),
            verified: s.verified,
            complete: s.complete,
        }
    }
}

/// `operator init`. No `Debug`: it holds share text.
#[derive(Serialize)]
struct InitJson<'a> {
    /// The new share set.
    set_id: &'a str,
    /// Shares needed to unseal (K).
    threshold: u32,
    /// The shares (text form), only when not written to files.
    #[serde(skip_serializing_if = "Option::is_none")]
    shares: Option<Vec<&'a str>>,
    /// The files written, share 1 first (`[]` when printed).
    files: Vec<String>,
    /// The age public key each file is encrypted to, share 1 first (`[]`
    /// without `--recipients`).
    encrypted_to: Vec<String>,
}

/// `operator rekey update`. No `Debug`: it may hold share text.
#[derive(Serialize)]
struct RekeyUpdateJson<'a> {
    /// The rekey's progress.
    status: RekeyStatusJson,
    /// The new shares (text form), only in the response to the last current
    /// share needed and when not written to files.
    #[serde(skip_serializing_if = "Option::is_none")]
    shares: Option<Vec<&'a str>>,
    /// The files written, new share 1 first (`[]` otherwise).
    files: Vec<String>,
    /// The age public key each file is encrypted to, new share 1 first
    /// (`[]` without `--recipients`).
    encrypted_to: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use std::io::Cursor;
    use strongroom_ceremony::shares::{Secret, SystemRng, split};

    /// `operator` as `main.rs` mounts it.
    #[derive(Debug, Parser)]
    #[command(name = "strongroom")]
    enum TestCli {
        /// The seal.
        Operator(OperatorArgs),
    }

    fn parse(args: &[&str]) -> Result<OperatorCommand, clap::Error> {
        let argv = ["strongroom", "operator"]
            .into_iter()
            .chain(args.iter().copied());
        TestCli::try_parse_from(argv).map(|TestCli::Operator(a)| a.command)
    }

    /// A fresh split's shares in text form.
    fn shares(threshold: u8, count: u8) -> Vec<Share> {
        let mut rng = SystemRng::new();
        let secret = Secret::generate(&mut rng).expect("secret");
        split(&secret, threshold, count, &mut rng).expect("split")
    }

    fn read(input: &str) -> anyhow::Result<Zeroizing<String>> {
        read_share_lines(&mut Cursor::new(input.as_bytes()))
    }

    #[test]
    fn command_definitions_are_consistent() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn share_prompt_reads_the_text_form_up_to_its_check_line() {
        let share = &shares(2, 3)[1];
        let text = share.to_text();
        // Blank lines and a comment before it, CRLF, and what follows the
        // check line is left unread.
        let typed = format!(
            "\n# share 2 of 3\n{}\nnot read\n",
            text.trim_end().replace('\n', "\r\n")
        );
        let mut input = Cursor::new(typed.as_bytes());
        let got = read_share_lines(&mut input).expect("read share");
        let back = Share::from_text(&got).expect("parse");
        assert_eq!(back.fingerprint(), share.fingerprint());
        let mut rest = String::new();
        input.read_to_string(&mut rest).expect("rest");
        assert_eq!(rest, "not read\n");
    }

    #[test]
    fn share_prompt_reads_the_compact_form_on_one_line() {
        let share = &shares(1, 1)[0];
        let typed = format!("  {}  \nnext line\n", share.to_compact());
        let mut input = Cursor::new(typed.as_bytes());
        let got = read_share_lines(&mut input).expect("read share");
        assert_eq!(got.trim(), share.to_compact());
        let mut rest = String::new();
        input.read_to_string(&mut rest).expect("rest");
        assert_eq!(rest, "next line\n");
    }

    #[test]
    fn share_prompt_stops_at_an_empty_line_or_the_end_of_input() {
        let share = &shares(2, 2)[0];
        let text = share.to_text();
        let without_check: String = text
            .lines()
            .filter(|l| !l.starts_with("check"))
            .map(|l| format!("{l}\n"))
            .collect();
        // An empty line after content ends the share; the parser then says
        // what is missing, without quoting a digit.
        let got = read(&format!("{without_check}\nmore\n")).expect("read share");
        assert_eq!(*got, without_check);
        let err = Share::from_text(&got)
            .expect_err("no check line")
            .to_string();
        assert_no_payload(&err, share, &[]);
        // The end of input ends it too.
        let got = read(&without_check).expect("read share");
        assert_eq!(*got, without_check);
    }

    #[test]
    fn share_prompt_refuses_nothing_and_endless_input() {
        let err = read("").expect_err("empty").to_string();
        assert!(err.contains("no share was entered"), "{err}");
        let err = read("\n\n# only a comment\n\n")
            .expect_err("blank")
            .to_string();
        assert!(err.contains("no share was entered"), "{err}");
        let endless = "abcd ef01\n".repeat(MAX_PROMPT_LINES + 5);
        let err = read(&endless).expect_err("endless").to_string();
        assert!(err.contains("no `check` line"), "{err}");
        assert!(!err.contains("abcd"), "{err}");
        let long = format!("{}\n", "a".repeat(MAX_PROMPT_LINE + 10));
        let err = read(&long).expect_err("long line").to_string();
        assert!(err.contains("longer than"), "{err}");
        let err = read_share_lines(&mut Cursor::new(&b"\xff\xfe\n"[..]))
            .expect_err("not UTF-8")
            .to_string();
        assert!(err.contains("cannot read the share"), "{err}");
    }

    /// Asserts that `message` quotes none of the share's payload digits: no
    /// word of it made only of hex digits holds a payload group. The public
    /// values a message may name (the set id, any file path) are taken out
    /// first, and words such as "readable" are not hex: a 4-digit group can
    /// occur in either by chance.
    fn assert_no_payload(message: &str, share: &Share, public: &[&str]) {
        let mut message = message.replace(&share.set_id().to_string(), "");
        for value in public {
            message = message.replace(value, "");
        }
        let hex_words: Vec<&str> = message
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_hexdigit()))
            .collect();
        let text = share.to_text();
        for line in text.lines().skip(2) {
            for group in line.split_whitespace().filter(|g| g.len() == 4) {
                assert!(
                    !hex_words.iter().any(|w| w.contains(group)),
                    "{message:?} quotes {group}"
                );
            }
        }
    }

    #[test]
    fn a_mistyped_share_is_refused_without_its_digits() {
        let share = &shares(2, 3)[2];
        let text = share.to_text();
        // Change one payload digit (line 3).
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let first = lines[2].chars().next().expect("digit");
        let other = if first == '0' { '1' } else { '0' };
        lines[2].replace_range(0..1, &other.to_string());
        let typo = lines.join("\n");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("share.txt");
        fs::write(&path, &typo).expect("write");
        let input = ShareInput {
            share_file: Some(path.clone()),
            identity: None,
        };
        let err = format!("{:#}", read_share(&input).expect_err("typo"));
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(err.contains("nothing was sent"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert_no_payload(&err, share, &[&path.display().to_string()]);
        // The intact file reads, and names the share by set and index only.
        fs::write(&path, &text).expect("write");
        let good = read_share(&input).expect("read share");
        assert_eq!(good.index, 3);
        assert_eq!(good.set_id, share.set_id().to_string());
        assert_eq!(*good.compact, share.to_compact());
        let debug = format!("{good:?}");
        assert!(!debug.contains(&share.to_compact()[20..]), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    /// An officer's identity made by `age-keygen` (mode 0600): its file and
    /// public key.
    fn age_officer(dir: &Path, name: &str) -> (PathBuf, Recipient) {
        let path = dir.join(name);
        let tool = |args: &[&str]| {
            let out = std::process::Command::new("age-keygen")
                .args(args)
                .output()
                .expect("age-keygen is installed (package `age`; ./scripts/test installs it)");
            assert!(out.status.success(), "age-keygen {args:?}");
            out
        };
        tool(&["-o", path.to_str().expect("utf-8")]);
        let public =
            String::from_utf8(tool(&["-y", path.to_str().expect("utf-8")]).stdout).expect("utf-8");
        (path, public.trim().parse().expect("age public key"))
    }

    /// `age [-a] -r KEY -o OUT IN`: a share encrypted by the reference tool.
    fn age_encrypt(to: &Recipient, input: &Path, out: &Path, armor: bool) {
        let mut args = vec!["-r".to_owned(), to.to_string(), "-o".to_owned()];
        args.push(out.display().to_string());
        if armor {
            args.push("-a".into());
        }
        args.push(input.display().to_string());
        let status = std::process::Command::new("age")
            .args(&args)
            .status()
            .expect("age is installed");
        assert!(status.success(), "age {args:?}");
    }

    #[test]
    fn a_share_encrypted_with_age_opens_with_its_officers_identity_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let split = shares(2, 3);
        let plain = dir.path().join("share.txt");
        fs::write(&plain, split[1].to_text()).expect("write");
        let (mine, my_key) = age_officer(dir.path(), "officer2.key");
        let (theirs, _) = age_officer(dir.path(), "officer3.key");
        for armor in [true, false] {
            let sealed = dir.path().join(format!("share-{armor}.age"));
            age_encrypt(&my_key, &plain, &sealed, armor);
            let input = |identity: Option<&Path>| ShareInput {
                share_file: Some(sealed.clone()),
                identity: identity.map(Path::to_path_buf),
            };
            let err = format!("{:#}", read_share(&input(None)).expect_err("no identity"));
            assert!(
                err.contains("encrypted with age") && err.contains("--identity"),
                "{err}"
            );
            let err = format!(
                "{:#}",
                read_share(&input(Some(&theirs))).expect_err("theirs")
            );
            assert!(err.contains("none of the given age identities"), "{err}");
            assert!(err.contains("nothing was sent"), "{err}");
            let good = read_share(&input(Some(&mine))).expect("opens");
            assert_eq!(*good.compact, split[1].to_compact());
            assert_eq!(good.index, 2);
        }
        // A plain share file reads whether or not an identity is given.
        let input = ShareInput {
            share_file: Some(plain),
            identity: Some(mine.clone()),
        };
        assert_eq!(read_share(&input).expect("plain").index, 2);
        // An identity file others can read is refused, like a PIN file.
        fs::set_permissions(&mine, Permissions::from_mode(0o644)).expect("chmod");
        let err = format!("{:#}", read_identity(&mine).expect_err("0644"));
        assert!(err.contains("readable by others"), "{err}");
    }

    #[test]
    fn new_shares_are_written_encrypted_to_their_officers() {
        let parent = tempfile::tempdir().expect("tempdir");
        let officers: Vec<(PathBuf, Recipient)> = (1..=3)
            .map(|i| age_officer(parent.path(), &format!("officer{i}.key")))
            .collect();
        let keys: Vec<Recipient> = officers.iter().map(|(_, k)| k.clone()).collect();
        let list = parent.path().join("recipients.txt");
        let listed: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        fs::write(&list, format!("# officers\n{}\n", listed.join("\n"))).expect("write");
        assert_eq!(read_recipients(Some(&list)).expect("recipients"), keys);
        let err = format!("{:#}", check_recipient_count(&keys, 4).expect_err("count"));
        assert!(err.contains("3 keys for 4 new shares"), "{err}");
        fs::write(&list, format!("{}\n{}\n", listed[0], listed[0])).expect("write");
        let err = format!("{:#}", read_recipients(Some(&list)).expect_err("twice"));
        assert!(err.contains("keys 1 and 2 are the same"), "{err}");
        fs::write(&list, "# nobody\n").expect("write");
        let err = format!("{:#}", read_recipients(Some(&list)).expect_err("empty"));
        assert!(err.contains("lists no age public key"), "{err}");

        let dir = parent.path().join("shares");
        let split = shares(2, 3);
        let files = ShareFiles::reserve(&dir, 3, &keys).expect("reserve");
        assert_eq!(
            entries(&dir),
            [
                "share-1-of-3.txt.age",
                "share-2-of-3.txt.age",
                "share-3-of-3.txt.age"
            ]
        );
        let written = NewShareOutput::Files(files)
            .deliver(&texts(&split), &set_of(&split))
            .expect("deliver");
        for (i, path) in written.iter().enumerate() {
            assert_eq!(mode(path), 0o600);
            let armored = fs::read_to_string(path).expect("read");
            assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
            // The reference tool opens it with the officer's identity, and
            // with no other officer's.
            let age_d = |identity: &Path| {
                std::process::Command::new("age")
                    .args(["-d", "-i"])
                    .args([identity, path])
                    .output()
                    .expect("age is installed")
            };
            let other = &officers[(i + 1) % officers.len()].0;
            assert!(!age_d(other).status.success(), "{}", path.display());
            let out = age_d(&officers[i].0);
            assert!(out.status.success(), "age -d {}", path.display());
            let back =
                Share::from_text(&String::from_utf8(out.stdout).expect("utf-8")).expect("a share");
            assert_eq!(back.fingerprint(), split[i].fingerprint());
        }
    }

    #[test]
    fn encryption_options_need_their_companions() {
        let err = parse(&[
            "init",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--recipients",
            "r",
        ])
        .expect_err("no --out-dir");
        assert!(err.to_string().contains("--out-dir"), "{err}");
        parse(&[
            "init",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--out-dir",
            "d",
            "--recipients",
            "r",
        ])
        .expect("with --out-dir");
        let err = parse(&["rekey", "update", "--nonce", "n", "--recipients", "r"])
            .expect_err("no --out-dir");
        assert!(err.to_string().contains("--out-dir"), "{err}");
        let err = parse(&["unseal", "--identity", "k"]).expect_err("no --share-file");
        assert!(err.to_string().contains("--share-file"), "{err}");
        parse(&["unseal", "--identity", "k", "--share-file", "s"]).expect("with --share-file");
    }

    #[test]
    fn share_files_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        fs::write(&path, vec![b'a'; MAX_SHARE_INPUT + 1]).expect("write");
        let input = ShareInput {
            share_file: Some(path),
            identity: None,
        };
        let err = format!("{:#}", read_share(&input).expect_err("too big"));
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn split_parameters_are_required_and_checked() {
        check_split(1, 1).expect("1 of 1");
        check_split(255, 3).expect("3 of 255");
        check_split(255, 255).expect("255 of 255");
        for (n, k) in [(3, 4), (0, 0), (1, 0), (0, 1)] {
            let err = check_split(n, k).expect_err("invalid split");
            assert!(err.to_string().contains("1 <= threshold"), "{err}");
        }
        // A usage error: exit code 2.
        let err: anyhow::Error = check_split(2, 3).expect_err("K > N").into();
        assert_eq!(
            super::super::finish(Err(err)).expect("finish"),
            std::process::ExitCode::from(2)
        );
        // Both flags are required, each within 1..=255; no defaults.
        for args in [
            &["init", "--shares", "5"][..],
            &["init", "--threshold", "3"],
            &["rekey", "start", "--shares", "5"],
        ] {
            let e = parse(args).expect_err("missing flag");
            assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
            assert_eq!(e.exit_code(), 2);
        }
        for args in [
            &["init", "--shares", "0", "--threshold", "1"][..],
            &["init", "--shares", "256", "--threshold", "1"],
            &["init", "--shares", "5", "--threshold", "0"],
            &["rekey", "start", "--shares", "3", "--threshold", "-1"],
        ] {
            let e = parse(args).expect_err("out of range");
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
        match parse(&[
            "init",
            "--shares",
            "5",
            "--threshold",
            "3",
            "--out-dir",
            "d",
        ]) {
            Ok(OperatorCommand::Init(a)) => {
                assert_eq!((a.split.shares, a.split.threshold), (5, 3));
                assert_eq!(a.out_dir.as_deref(), Some(Path::new("d")));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn unseal_reset_takes_a_share_but_no_nonce() {
        match parse(&["unseal", "--reset", "--share-file", "s.txt"]) {
            Ok(OperatorCommand::Unseal(a)) => assert!(a.reset),
            other => panic!("parsed as {other:?}"),
        }
        let e = parse(&["unseal", "--reset", "--nonce", "n"]).expect_err("conflict");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        match parse(&["unseal", "--share-file", "-", "--nonce", "abc"]) {
            Ok(OperatorCommand::Unseal(a)) => {
                assert_eq!(a.share.share_file.as_deref(), Some(Path::new("-")));
                assert_eq!(a.nonce.as_deref(), Some("abc"));
                assert!(!a.reset);
            }
            other => panic!("parsed as {other:?}"),
        }
        let e = parse(&["rekey", "update"]).expect_err("needs --nonce");
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn texts(shares: &[Share]) -> Vec<Zeroizing<String>> {
        shares.iter().map(|s| Zeroizing::new(s.to_text())).collect()
    }

    fn set_of(shares: &[Share]) -> NewSet {
        NewSet {
            set_id: shares[0].set_id().to_string(),
            threshold: shares[0].threshold().into(),
            count: shares[0].count().into(),
        }
    }

    #[test]
    fn out_dir_must_be_new_or_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        // New: fine. Empty: fine.
        assert!(!check_out_dir(&dir.path().join("new")).expect("new dir"));
        assert!(check_out_dir(dir.path()).expect("empty dir"));
        // Not empty, even with only a hidden file: refused.
        fs::write(dir.path().join(".keep"), "").expect("write");
        let err = check_out_dir(dir.path())
            .expect_err("not empty")
            .to_string();
        assert!(err.contains("not empty"), "{err}");
        let err = ShareFiles::reserve(dir.path(), 3, &[])
            .expect_err("not empty")
            .to_string();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(entries(dir.path()), [".keep"]);
        // A file: refused.
        let file = dir.path().join(".keep");
        let err = check_out_dir(&file).expect_err("a file").to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn share_files_are_0600_in_a_0700_directory_and_never_overwritten() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("shares");
        let split = shares(2, 3);
        let files = ShareFiles::reserve(&dir, 3, &[]).expect("reserve");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            entries(&dir),
            ["share-1-of-3.txt", "share-2-of-3.txt", "share-3-of-3.txt"]
        );
        let written = NewShareOutput::Files(files)
            .deliver(&texts(&split), &set_of(&split))
            .expect("deliver");
        assert_eq!(written.len(), 3);
        for (path, share) in written.iter().zip(&split) {
            assert_eq!(mode(path), 0o600, "{}", path.display());
            let back = Share::from_text(&fs::read_to_string(path).expect("read")).expect("parse");
            assert_eq!(back.fingerprint(), share.fingerprint());
        }
        // The directory is no longer empty: a second run refuses it.
        let err = ShareFiles::reserve(&dir, 3, &[])
            .expect_err("second run")
            .to_string();
        assert!(err.contains("not empty"), "{err}");
        // Exclusive creation never replaces a file, nor follows a symlink.
        let first = dir.join("share-1-of-3.txt");
        let before = fs::read(&first).expect("read");
        let err = format!("{:#}", create_share_file(&first).expect_err("exists"));
        assert!(err.contains("cannot create"), "{err}");
        assert_eq!(fs::read(&first).expect("read"), before);
        let target = parent.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.join("link")).expect("symlink");
        create_share_file(&dir.join("link")).expect_err("symlink");
        assert!(!target.exists());
    }

    #[test]
    fn unfilled_reservations_are_removed() {
        let parent = tempfile::tempdir().expect("tempdir");
        // A directory it created goes too.
        let dir = parent.path().join("shares");
        drop(ShareFiles::reserve(&dir, 2, &[]).expect("reserve"));
        assert!(!dir.exists());
        // An existing empty directory stays, emptied.
        let dir = parent.path().join("empty");
        fs::create_dir(&dir).expect("mkdir");
        drop(ShareFiles::reserve(&dir, 2, &[]).expect("reserve"));
        assert!(entries(&dir).is_empty());
        // Shares that fail their check are not written, and nothing is left.
        let split = shares(2, 3);
        let mut wrong = set_of(&split);
        wrong.threshold = 3;
        let files = ShareFiles::reserve(&dir, 3, &[]).expect("reserve");
        let err = NewShareOutput::Files(files)
            .deliver(&texts(&split), &wrong)
            .expect_err("inconsistent")
            .to_string();
        assert!(err.contains("share 1 returned by the appliance"), "{err}");
        assert!(entries(&dir).is_empty());
    }

    #[test]
    fn returned_shares_are_checked() {
        let split = shares(2, 3);
        let set = set_of(&split);
        check_new_shares(&texts(&split), &set).expect("consistent");
        // Upper-case set ids from the server are the same set.
        let upper = NewSet {
            set_id: set.set_id.to_uppercase(),
            ..set_of(&split)
        };
        check_new_shares(&texts(&split), &upper).expect("same set");
        // Out of order, missing, or of another set: refused.
        let mut swapped = texts(&split);
        swapped.swap(0, 1);
        check_new_shares(&swapped, &set).expect_err("out of order");
        check_new_shares(&texts(&split)[..2], &set).expect_err("missing");
        let other = shares(2, 3);
        check_new_shares(&texts(&other), &set).expect_err("other set");
        let mut corrupted = texts(&split);
        corrupted[0] = Zeroizing::new(corrupted[0].replacen("check", "check 0", 1));
        let err = check_new_shares(&corrupted, &set)
            .expect_err("corrupted")
            .to_string();
        assert_no_payload(&err, &split[0], &[&set.set_id]);
    }

    #[test]
    fn texts_follow_the_contract() {
        let mut s = SealStatusResponse {
            initialized: true,
            sealed: true,
            set_id: "3f9a6c0e81d24b7f95e2c4a7108b3d56".into(),
            threshold: 3,
            shares: 5,
            progress: 1,
            nonce: "n1".into(),
            ..SealStatusResponse::default()
        };
        assert_eq!(
            seal_status_text(&s),
            "initialized: yes\nsealed: yes\nshare set: 3f9a6c0e81d24b7f95e2c4a7108b3d56\n\
             threshold: 3 of 5\nunseal progress: 1 of 3 (attempt n1)\n"
        );
        assert_eq!(
            unseal_result_text(&s),
            "sealed: yes, progress 1 of 3 (attempt n1)"
        );
        s.sealed = false;
        s.nonce.clear();
        assert_eq!(unseal_result_text(&s), "unsealed");
        assert_eq!(
            seal_status_text(&SealStatusResponse {
                sealed: true,
                ..Default::default()
            }),
            "initialized: no\nsealed: yes\n"
        );
        let json = serde_json::to_value(SealStatusJson::from(&s)).expect("json");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "init_pending",
                "init_verified",
                "initialized",
                "nonce",
                "progress",
                "sealed",
                "set_id",
                "shares",
                "threshold"
            ]
        );
        let r = RekeyStatusResponse {
            started: true,
            nonce: "r1".into(),
            new_shares: 5,
            verified: 2,
            ..Default::default()
        };
        assert_eq!(rekey_verify_text(&r), "verified 2 of 5");
        let done = RekeyStatusResponse {
            complete: true,
            new_set_id: "ab".into(),
            ..r
        };
        assert_eq!(
            rekey_verify_text(&done),
            "rekey complete: the new share set ab is in force; the old shares no longer work"
        );
        assert_eq!(
            rekey_status_text(&RekeyStatusResponse::default()),
            "no rekey in progress\n"
        );
    }

    #[test]
    fn init_json_has_shares_only_when_printed() {
        let split = shares(1, 2);
        let shares = texts(&split);
        let printed = serde_json::to_value(InitJson {
            set_id: "x",
            threshold: 1,
            shares: Some(shares.iter().map(|s| s.as_str()).collect()),
            files: Vec::new(),
            encrypted_to: Vec::new(),
        })
        .expect("json");
        assert_eq!(printed["shares"].as_array().map(Vec::len), Some(2));
        assert_eq!(printed["files"], serde_json::json!([]));
        let filed = serde_json::to_value(InitJson {
            set_id: "x",
            threshold: 1,
            shares: None,
            files: vec!["d/share-1-of-2.txt".into(), "d/share-2-of-2.txt".into()],
            encrypted_to: Vec::new(),
        })
        .expect("json");
        assert!(filed.get("shares").is_none(), "{filed}");
        assert_eq!(filed["set_id"], "x");
    }
}
