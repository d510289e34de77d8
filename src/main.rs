//! `strongroom`: the Strongroom appliance binary (server and command-line client).
//!
//! Commands follow `strongroom <noun> <verb>`:
//!
//! - `strongroom dev` runs a development appliance in the foreground;
//! - `strongroom server --config FILE` runs the appliance;
//! - `strongroom cert issue|renew|show|list` and `strongroom ca chain` are
//!   gRPC clients of a running appliance (`STRONGROOM_ADDR`, `STRONGROOM_CACERT`);
//! - `strongroom operator status|init|unseal|seal` and `strongroom operator
//!   rekey start|update|verify|status|cancel` are the security officers'
//!   gRPC client of the seal (initialise, unseal, seal, rekey);
//! - `strongroom transit create|show|list|rotate|update|trim|delete|export|report`
//!   and `strongroom transit encrypt|decrypt|rewrap|datakey|sign|verify|hmac|verify-hmac|random`
//!   are gRPC clients of the appliance's Transit service;
//! - `strongroom status` is the operator's one-screen summary of a running
//!   appliance (seal, HSM, CA certificates, inventory, transit, audit, and
//!   the recommended actions);
//! - `strongroom agent` keeps a certificate renewed;
//! - `strongroom ocsp serve` is a keyless OCSP responder serving the
//!   appliance's pre-signed responses from its store;
//! - `strongroom audit verify FILE…` checks an audit trail's hash chain;
//! - `strongroom auth token create|list|revoke` manages bootstrap tokens
//!   (over gRPC, or with `--config FILE` in the store on the appliance
//!   host), and `strongroom auth enroll` gets a new service its first
//!   client certificate with one.

/// The allocator of every thread; see `mimalloc` in the workspace `Cargo.toml`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod appliance;
mod audit;
mod bootstrap;
mod cli;
mod config;
mod dev;
mod server;
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
    /// Run a development appliance in the foreground (isolated SoftHSM2 token,
    /// dev root and intermediate, SQLite, gRPC and HTTP on 127.0.0.1).
    Dev(dev::DevArgs),
    /// Run the appliance from a configuration file.
    Server(server::ServerArgs),
    /// Certificates: issue, renew, show, list.
    Cert(cli::CertArgs),
    /// The certificate authority: chain.
    Ca(cli::CaArgs),
    /// Fetch CRLs from a running appliance.
    Crl(cli::CrlArgs),
    /// Seal: initialise, unseal, seal and rekey the appliance.
    Operator(cli::OperatorArgs),
    /// Transit encryption: keys, encrypt, decrypt, sign, HMAC.
    Transit(cli::transit::TransitArgs),
    /// The appliance on one screen: seal, HSM, CA certificates, inventory,
    /// transit, audit, and what to do.
    Status(cli::status::StatusArgs),
    /// Keep a certificate and key renewed before they expire.
    Agent(cli::agent::AgentArgs),
    /// OCSP: serve pre-signed responses without a key (edge mode).
    Ocsp(server::edge::OcspArgs),
    /// The audit trail: verify its hash chain offline.
    Audit(cli::audit::AuditArgs),
    /// Bootstrap tokens (create, list, revoke) and enrolment with one: how
    /// a new service gets its first client certificate.
    Auth(cli::auth::AuthArgs),
}

fn main() -> ExitCode {
    // The `yubihsm` crate logs the YubiHSM2 authentication key id, which we
    // hold as a secret, under `yubihsm::session` (at debug, and at error
    // when authentication fails): that target is always off, and the rest
    // of the crate is held to warnings, whatever STRONGROOM_LOG says. Our
    // session pool reports the device's failures itself, without the id.
    // Added last, these directives replace any for the same targets.
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
        .add_directive("yubihsm=warn".parse().expect("a valid directive"))
        .add_directive("yubihsm::session=off".parse().expect("a valid directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Server(args) => server::run(args),
        Command::Cert(args) => cli::run_cert(args),
        Command::Ca(args) => cli::run_ca(args),
        Command::Crl(args) => cli::run_crl(args),
        Command::Operator(args) => cli::run_operator(args),
        Command::Transit(args) => cli::transit::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::Agent(args) => cli::agent::run(args),
        Command::Ocsp(args) => server::edge::run(args),
        Command::Audit(args) => cli::audit::run(args),
        Command::Auth(args) => cli::auth::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line for the operator; the chain of causes joined.
            eprintln!("strongroom: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
