//! `strongroom ocsp serve`: a keyless OCSP responder (edge mode).
//!
//! It opens the appliance's store read-only, serves the pre-signed responses
//! the appliance keeps there, and follows new ones (a revocation's included)
//! every poll interval. It holds no key and never signs, so it can run on
//! machines that must not hold one, as many as the load needs, reading the
//! database file itself (on the same machine or a shared volume) or a
//! replica that SQLite sees updated in place (a file replaced by rename is
//! not followed: the edge keeps reading the old one). It also serves the
//! CA certificates
//! of the chain it is given at `/ca/issuing.crt`, `/ca/root.crt` and
//! `/ca/chain.pem`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::blocking::BlockingPool;
use super::http;
use super::ocsp::{Ocsp, follow};
use crate::store::sqlite::SqliteStore;

/// Store reads the edge runs at once.
const READS_AT_ONCE: usize = 16;

/// `strongroom ocsp …`.
#[derive(Debug, clap::Args)]
pub(crate) struct OcspArgs {
    #[command(subcommand)]
    command: OcspCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OcspCommand {
    /// Serve the appliance's pre-signed OCSP responses from its store,
    /// without any key (edge mode).
    Serve(ServeArgs),
}

/// Options of `strongroom ocsp serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The appliance's database (`<data_dir>/strongroom.db`), opened read-only.
    #[arg(long)]
    store: PathBuf,
    /// The issuing CA's certificate, PEM; the rest of its chain may follow
    /// (as in the appliance's `/ca/chain.pem`).
    #[arg(long)]
    issuer: PathBuf,
    /// The address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The URL path of the responder (the path of the certificates' OCSP URL).
    #[arg(long, default_value = "/ocsp")]
    path: String,
    /// How often to look for new responses, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
}

/// Runs `strongroom ocsp …`.
pub(crate) fn run(args: OcspArgs) -> anyhow::Result<ExitCode> {
    let OcspCommand::Serve(args) = args.command;
    if !args.path.starts_with('/') {
        bail!("--path must start with '/', got {:?}", args.path);
    }
    let chain = read_chain(&args.issuer)?;
    let store = Arc::new(SqliteStore::open_read_only(&args.store)?);
    let ocsp = Arc::new(Ocsp::edge(&args.path, &chain.0[0], store)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let pool = BlockingPool::new(READS_AT_ONCE);
        let (stop_tx, stop_rx) = watch::channel(false);
        // Note where the store is before answering anything (see `follow`).
        let follower = follow(
            Arc::clone(&ocsp),
            pool.clone(),
            Duration::from_millis(args.poll_ms),
            stop_rx.clone(),
        )
        .await?;
        let follower = tokio::spawn(follower);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", args.listen))?;
        eprintln!(
            "strongroom: OCSP (edge, keyless) on http://{}{}",
            listener.local_addr()?,
            args.path.trim_end_matches('/')
        );
        let site = http::Site {
            files: http::CaFiles::new(&chain.0, chain.1),
            crls: None,
            ocsp: Some(http::OcspRoute { ocsp, pool }),
        };
        let served = tokio::spawn(http::serve(listener, http::SiteSlot::fixed(site), stop_rx));
        super::shutdown_signal().await;
        let _ = stop_tx.send(true);
        let _ = served.await;
        follower.abort();
        anyhow::Ok(())
    })?;
    eprintln!("strongroom: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The certificates of a PEM file, DER, in order, and the file's text.
fn read_chain(path: &Path) -> anyhow::Result<(Vec<Vec<u8>>, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    const END: &str = "-----END CERTIFICATE-----";
    let mut chain = Vec::new();
    let mut rest = text.as_str();
    while let Some(end) = rest.find(END) {
        let block = &rest[..end + END.len()];
        let (label, der) = der::pem::decode_vec(block.trim().as_bytes())
            .map_err(|e| anyhow::anyhow!("{} is not PEM: {e}", path.display()))?;
        if label != "CERTIFICATE" {
            bail!("{} holds a {label}, not a CERTIFICATE", path.display());
        }
        chain.push(der);
        rest = &rest[end + END.len()..];
    }
    if chain.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok((chain, text))
}
