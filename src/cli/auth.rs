//! `strongroom auth …`: bootstrap tokens, and a new service's enrolment
//! with one (see [`crate::bootstrap`]).
//!
//! - `strongroom auth token create --identity ID --profile P [--ttl D]`:
//!   makes a token (default TTL 1h, 1s to 7d) and prints its text, once,
//!   on stdout: nothing else goes there (its id and expiry go to stderr).
//!   Over gRPC (`Sys.CreateBootstrapToken`, the `admin` capability on
//!   `sys`), or with `--config FILE` straight into the store of the
//!   appliance that FILE configures, on its host: for the very first token,
//!   when no administrator has a certificate yet. Whoever can read that
//!   configuration and write its database controls the appliance already,
//!   so this grants nothing new. It works while the appliance runs (SQLite
//!   WAL; a busy database is waited for) and sealed too; the profile is
//!   checked against FILE's profiles. Run it as the appliance's user, so
//!   that any file SQLite creates beside the database stays the
//!   appliance's; the database must exist (the appliance made it). A token made locally is not in the
//!   audit trail (its chain belongs to the running server); its row says
//!   `created_by: local`, and its use is audited like any other.
//! - `strongroom auth token list [--all] [--include-inactive]`: one line
//!   per token, newest first, `id state expires_at identity profile
//!   created_by [serial]` (never a secret); by default only the tokens
//!   that can still enrol.
//! - `strongroom auth token revoke ID`: the token can no longer enrol.
//!   `list` and `revoke` take `--config FILE` too.
//! - `strongroom auth enroll --identity ID [--token-file FILE|-] --key-out
//!   FILE --cert-out FILE`: generates an EC P-256 key here (the same
//!   generator the appliance uses for `cert issue --cn`), makes a CSR for
//!   exactly the identity (a URI SAN, or a DNS SAN and common name), calls
//!   `Ca.Enroll` with the token, and writes the key (mode 0600) and the
//!   certificate followed by the CAs above it but the root (ready for mutual
//!   TLS). Neither file may exist. The token comes from `--token-file`,
//!   from standard input (`-`, or no flag with stdin not a terminal), or
//!   from a prompt that does not echo: never from the command line. No
//!   client certificate is needed.
//!
//! JSON (`--output json`): `create`: `{"token", "id", "identity",
//! "profile", "expires_at"}`; `list`: `{"tokens": [{"id", "identity",
//! "profile", "state", "created_at", "expires_at", "created_by", "used_at",
//! "issued_serial", "revoked_at"}], "next_page_token"}`; `revoke`: one such
//! token; `enroll`: `{"identity", "certificate": {…as cert show…},
//! "key_file", "cert_file"}`.

use std::io::{IsTerminal as _, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use der::asn1::{BitString, Ia5String, OctetString, SetOfVec};
use der::{Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use serde::Serialize;
use strongroom_hsm::KeySpec;
use strongroom_proto::v1;
use strongroom_proto::v1::ca_client::CaClient;
use strongroom_proto::v1::sys_client::SysClient;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use super::client::{ConnectionArgs, OutputFormat, rpc_error};
use super::files::{CERT_MODE, KEY_MODE, check_outputs, stage};
use super::output::{CertificateJson, pem_text, print_json, timestamp};
use super::{parse_duration_arg, proto_duration, run_async};
use crate::bootstrap::{self, Identity, TokenId, TokenRecord};
use crate::config::Config;
use crate::store::sqlite::{SqliteStore, TokenQuery};

/// Who made a token written on the appliance host.
const LOCAL_CREATOR: &str = "local";

/// Longest token input read (a token is 64 characters).
const MAX_TOKEN_INPUT: usize = 1024;

/// `id-ce-subjectAltName`.
const SUBJECT_ALT_NAME: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.5.29.17");

/// `ecdsa-with-SHA256`.
const ECDSA_WITH_SHA256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// `strongroom auth <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuthArgs {
    /// What to do.
    #[command(subcommand)]
    command: AuthCommand,
}

/// The verbs of `strongroom auth`.
#[derive(Debug, clap::Subcommand)]
enum AuthCommand {
    /// Bootstrap tokens: create, list, revoke.
    Token(TokenArgs),
    /// Get a first client certificate with a bootstrap token.
    Enroll(EnrollArgs),
}

/// `strongroom auth token <verb>`.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    command: TokenCommand,
}

/// The verbs of `strongroom auth token`.
#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Make a single-use token with which a new service gets its first
    /// certificate; its text is printed once on stdout.
    Create(CreateArgs),
    /// List bootstrap tokens (metadata only), newest first.
    List(ListArgs),
    /// Revoke an unused bootstrap token.
    Revoke(RevokeArgs),
}

/// Where a token command acts: on the appliance over gRPC, or on the store
/// of the configuration given.
#[derive(Debug, clap::Args)]
struct Target {
    /// Act on the store of the appliance this configuration file names, on
    /// its host (no certificate needed), instead of over gRPC.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom auth token create`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom auth token create --config /etc/strongroom/strongroom.toml \\\n    \
    --identity spiffe://example.org/admin --profile client > admin.token\n  \
    strongroom auth token create --identity orders.example.org --profile client --ttl 15m")]
struct CreateArgs {
    /// The one identity the token enrols: a URI (e.g. a SPIFFE ID) or a DNS
    /// name.
    #[arg(long, value_name = "ID")]
    identity: String,

    /// The issuance profile its certificate is issued under.
    #[arg(long, value_name = "NAME")]
    profile: String,

    /// How long the token can be used, 1s to 7d (default 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    ttl: Option<Duration>,

    #[command(flatten)]
    target: Target,
}

/// Options of `strongroom auth token list`.
#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Also tokens that are used, expired or revoked.
    #[arg(long)]
    include_inactive: bool,

    /// Fetch every page, not just the first 100 tokens.
    #[arg(long)]
    all: bool,

    #[command(flatten)]
    target: Target,
}

/// Options of `strongroom auth token revoke`.
#[derive(Debug, clap::Args)]
struct RevokeArgs {
    /// The token's id (16 hex digits, as `create` and `list` show it).
    #[arg(value_name = "ID")]
    id: String,

    #[command(flatten)]
    target: Target,
}

/// Options of `strongroom auth enroll`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom auth enroll --identity spiffe://example.org/orders --token-file orders.token \\\n    \
    --key-out orders.key --cert-out orders.pem\n  \
    printenv BOOTSTRAP_TOKEN | strongroom auth enroll --identity orders.example.org \\\n    \
    --key-out orders.key --cert-out orders.pem")]
struct EnrollArgs {
    /// The identity the token enrols (a URI or a DNS name), as it was
    /// created for.
    #[arg(long, value_name = "ID")]
    identity: String,

    /// Read the token from FILE (`-`: standard input). Without it, standard
    /// input if it is not a terminal, else a prompt that does not echo.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// Write the new private key (PKCS#8 PEM, mode 0600) to FILE, which
    /// must not exist.
    #[arg(long, alias = "out-key", value_name = "FILE")]
    key_out: PathBuf,

    /// Write the certificate, then the CA certificates above it but the
    /// root, to FILE, which must not exist.
    #[arg(long, alias = "out-cert", value_name = "FILE")]
    cert_out: PathBuf,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Runs an `auth` command.
pub(crate) fn run(args: AuthArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuthCommand::Token(TokenArgs { command }) => match command {
            TokenCommand::Create(a) if a.target.config.is_some() => super::finish(create_local(&a)),
            TokenCommand::Create(a) => run_async(create_remote(a)),
            TokenCommand::List(a) if a.target.config.is_some() => super::finish(list_local(&a)),
            TokenCommand::List(a) => run_async(list_remote(a)),
            TokenCommand::Revoke(a) if a.target.config.is_some() => super::finish(revoke_local(&a)),
            TokenCommand::Revoke(a) => run_async(revoke_remote(a)),
        },
        AuthCommand::Enroll(a) => run_async(enroll(a)),
    }
}

/// The configuration and store named by `--config`.
fn local_store(path: &Path) -> anyhow::Result<(Config, SqliteStore)> {
    let config = Config::load(path)?;
    let db = crate::appliance::database_path(&config);
    if !db.is_file() {
        bail!(
            "{} does not exist: start the appliance (and unseal it) once before making tokens \
             on its host",
            db.display()
        );
    }
    let store = SqliteStore::open(&db).map_err(|e| anyhow!("{e}"))?;
    Ok((config, store))
}

/// Now, in Unix seconds.
fn now() -> i64 {
    crate::server::unix_now()
}

/// `auth token create --config FILE`.
fn create_local(args: &CreateArgs) -> anyhow::Result<()> {
    let path = args.target.config.as_deref().unwrap_or(Path::new("-"));
    let identity = Identity::parse(&args.identity)?;
    let ttl = bootstrap::token_ttl(args.ttl)?;
    let (config, store) = local_store(path)?;
    let profiles = config
        .profiles
        .iter()
        .map(|(name, p)| {
            strongroom_ca::Profile::new(name, p)
                .map(|profile| (name.clone(), profile))
                .map_err(|e| anyhow!("configuration {}: {e}", path.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    bootstrap::check_profile(&profiles, &args.profile, &identity)?;
    let (token, record) =
        bootstrap::create_token(&store, &identity, &args.profile, ttl, LOCAL_CREATOR, now())?;
    show_created(
        token.into_text(),
        &record.id.to_string(),
        record.expires_at,
        &args.identity,
        &args.profile,
        args.target.conn.output,
    )
}

/// `auth token create` over gRPC.
async fn create_remote(args: CreateArgs) -> anyhow::Result<()> {
    let url = args.target.conn.url();
    let ttl = args.ttl.map(proto_duration).transpose()?;
    let mut client = SysClient::new(args.target.conn.connect().await?);
    let response = client
        .create_bootstrap_token(v1::CreateBootstrapTokenRequest {
            identity: args.identity.clone(),
            profile: args.profile.clone(),
            ttl,
        })
        .await
        .map_err(|s| rpc_error("create bootstrap token", &url, &s))?
        .into_inner();
    let expires_at = response.expires_at.map_or(0, |t| t.seconds);
    show_created(
        response.token,
        &response.id,
        expires_at,
        &args.identity,
        &args.profile,
        args.target.conn.output,
    )
}

/// `auth token create --output json`.
#[derive(Serialize)]
struct CreatedJson<'a> {
    /// The token text: shown this once.
    token: &'a str,
    /// Its public id.
    id: &'a str,
    /// The identity it enrols.
    identity: &'a str,
    /// Its profile.
    profile: &'a str,
    /// When it expires, RFC 3339.
    expires_at: Option<String>,
}

/// Prints a new token: its text alone on stdout (or the JSON document), the
/// rest on stderr. The text is wiped once printed.
fn show_created(
    token: String,
    id: &str,
    expires_at: i64,
    identity: &str,
    profile: &str,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let token = Zeroizing::new(token);
    let expires = rfc3339(expires_at);
    match format {
        OutputFormat::Json => {
            let json = Zeroizing::new(serde_json::to_string_pretty(&CreatedJson {
                token: &token,
                id,
                identity,
                profile,
                expires_at: Some(expires.clone()),
            })?);
            println!("{}", json.as_str());
        }
        OutputFormat::Text => println!("{}", token.as_str()),
    }
    eprintln!(
        "strongroom: bootstrap token {id} enrols {identity} (profile {profile}) once, until \
         {expires}; it is shown only this once"
    );
    Ok(())
}

/// Unix seconds as RFC 3339.
fn rfc3339(secs: i64) -> String {
    timestamp(&prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    })
    .unwrap_or_else(|| secs.to_string())
}

/// A token in listings (text and JSON): metadata only.
#[derive(Debug, Serialize)]
struct TokenJson {
    id: String,
    identity: String,
    profile: String,
    state: &'static str,
    created_at: Option<String>,
    expires_at: Option<String>,
    created_by: String,
    used_at: Option<String>,
    issued_serial: String,
    revoked_at: Option<String>,
}

impl TokenJson {
    /// A token as the store holds it, at `now`.
    fn from_record(record: &TokenRecord, now: i64) -> TokenJson {
        TokenJson {
            id: record.id.to_string(),
            identity: record.identity.clone(),
            profile: record.profile.clone(),
            state: record.state(now).name(),
            created_at: Some(rfc3339(record.created_at)),
            expires_at: Some(rfc3339(record.expires_at)),
            created_by: record.created_by.clone(),
            used_at: record.used_at.map(rfc3339),
            issued_serial: record.issued_serial.clone().unwrap_or_default(),
            revoked_at: record.revoked_at.map(rfc3339),
        }
    }

    /// A token as the appliance sends it.
    fn from_wire(token: &v1::BootstrapToken) -> TokenJson {
        let state = match v1::BootstrapTokenState::try_from(token.state) {
            Ok(v1::BootstrapTokenState::Active) => "active",
            Ok(v1::BootstrapTokenState::Used) => "used",
            Ok(v1::BootstrapTokenState::Expired) => "expired",
            Ok(v1::BootstrapTokenState::Revoked) => "revoked",
            _ => "unknown",
        };
        let time = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(timestamp);
        TokenJson {
            id: token.id.clone(),
            identity: token.identity.clone(),
            profile: token.profile.clone(),
            state,
            created_at: time(&token.created_at),
            expires_at: time(&token.expires_at),
            created_by: token.created_by.clone(),
            used_at: time(&token.used_at),
            issued_serial: token.issued_serial.clone(),
            revoked_at: time(&token.revoked_at),
        }
    }

    /// Its line in `list`.
    fn line(&self) -> String {
        let line = format!(
            "{}  {:<7}  {:<20}  {}  {}  {}  {}",
            self.id,
            self.state,
            self.expires_at.as_deref().unwrap_or("-"),
            self.identity,
            self.profile,
            self.created_by,
            self.issued_serial,
        );
        line.trim_end().to_owned()
    }
}

/// `auth token list --output json`.
#[derive(Serialize)]
struct TokenListJson {
    tokens: Vec<TokenJson>,
    next_page_token: String,
}

/// Prints a listing; without `all`, notes on stderr where the next page
/// starts.
fn show_list(
    tokens: Vec<TokenJson>,
    next: Option<String>,
    format: OutputFormat,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => print_json(&TokenListJson {
            tokens,
            next_page_token: next.unwrap_or_default(),
        }),
        OutputFormat::Text => {
            for token in &tokens {
                println!("{}", token.line());
            }
            if next.is_some() {
                eprintln!("strongroom: more tokens follow (--all lists every one)");
            }
            Ok(())
        }
    }
}

/// `auth token list --config FILE`.
fn list_local(args: &ListArgs) -> anyhow::Result<()> {
    let path = args.target.config.as_deref().unwrap_or(Path::new("-"));
    let (_, store) = local_store(path)?;
    let now = now();
    let mut query = TokenQuery {
        include_inactive: args.include_inactive,
        now,
        page_size: 0,
        page_token: None,
    };
    let mut tokens = Vec::new();
    loop {
        let page = store.list_bootstrap_tokens(&query)?;
        tokens.extend(page.tokens.iter().map(|t| TokenJson::from_record(t, now)));
        match page.next_page_token {
            Some(next) if args.all => query.page_token = Some(next),
            next => return show_list(tokens, next, args.target.conn.output),
        }
    }
}

/// `auth token list` over gRPC.
async fn list_remote(args: ListArgs) -> anyhow::Result<()> {
    let url = args.target.conn.url();
    let mut client = SysClient::new(args.target.conn.connect().await?);
    let mut request = v1::ListBootstrapTokensRequest {
        include_inactive: args.include_inactive,
        ..Default::default()
    };
    let mut tokens = Vec::new();
    loop {
        let page = client
            .list_bootstrap_tokens(request.clone())
            .await
            .map_err(|s| rpc_error("list bootstrap tokens", &url, &s))?
            .into_inner();
        tokens.extend(page.tokens.iter().map(TokenJson::from_wire));
        let next = (!page.next_page_token.is_empty()).then_some(page.next_page_token);
        match next {
            Some(next) if args.all => request.page_token = next,
            next => return show_list(tokens, next, args.target.conn.output),
        }
    }
}

/// Prints a revoked token.
fn show_revoked(token: &TokenJson, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => print_json(token),
        OutputFormat::Text => {
            println!(
                "revoked bootstrap token {} ({}, profile {})",
                token.id, token.identity, token.profile
            );
            Ok(())
        }
    }
}

/// `auth token revoke --config FILE`.
fn revoke_local(args: &RevokeArgs) -> anyhow::Result<()> {
    let path = args.target.config.as_deref().unwrap_or(Path::new("-"));
    let id = TokenId::parse(&args.id)?;
    let (_, store) = local_store(path)?;
    let now = now();
    let record = store.revoke_bootstrap_token(&id, now)?;
    show_revoked(
        &TokenJson::from_record(&record, now),
        args.target.conn.output,
    )
}

/// `auth token revoke` over gRPC.
async fn revoke_remote(args: RevokeArgs) -> anyhow::Result<()> {
    let url = args.target.conn.url();
    let mut client = SysClient::new(args.target.conn.connect().await?);
    let token = client
        .revoke_bootstrap_token(v1::RevokeBootstrapTokenRequest {
            id: args.id.clone(),
        })
        .await
        .map_err(|s| rpc_error(&format!("revoke bootstrap token {}", args.id), &url, &s))?
        .into_inner();
    show_revoked(&TokenJson::from_wire(&token), args.target.conn.output)
}

/// Reads the token: from `file`, from standard input (`-`, or no file with
/// stdin not a terminal), or from a prompt that does not echo. Surrounding
/// whitespace is dropped; the text is never quoted in an error.
fn read_token(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    let stdin = || std::io::stdin().lock();
    let bytes = match file {
        Some(path) if path != Path::new("-") => {
            let mut file = std::fs::File::open(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            read_limited(&mut file, &format!("the token file {}", path.display()))?
        }
        None | Some(_) if !std::io::stdin().is_terminal() => {
            read_limited(&mut stdin(), "standard input")?
        }
        _ => {
            let typed = Zeroizing::new(
                rpassword::prompt_password("Bootstrap token (not echoed): ")
                    .map_err(|e| anyhow!("cannot read the token: {e} (use --token-file FILE)"))?,
            );
            let mut bytes = Zeroizing::new(Vec::with_capacity(typed.len()));
            bytes.extend_from_slice(typed.as_bytes());
            bytes
        }
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| anyhow!("the token is not text"))?;
    let mut token = Zeroizing::new(String::with_capacity(text.len()));
    token.push_str(text.trim());
    if token.is_empty() {
        bail!("no token was given (--token-file FILE, or on standard input)");
    }
    Ok(token)
}

/// All of `reader`, at most [`MAX_TOKEN_INPUT`] bytes, in memory wiped on
/// drop.
fn read_limited(reader: &mut impl Read, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    // Fixed size, so that no reallocation leaves copies behind.
    let mut buf = Zeroizing::new(vec![0u8; MAX_TOKEN_INPUT + 1]);
    let mut len = 0;
    while len < buf.len() {
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!("cannot read {what}: {e}")),
        }
    }
    if len > MAX_TOKEN_INPUT {
        bail!("{what} is larger than {MAX_TOKEN_INPUT} bytes: not a bootstrap token");
    }
    buf.truncate(len);
    Ok(buf)
}

/// A DER PKCS#10 request for exactly `identity`, signed by `key` (P-256,
/// whose SubjectPublicKeyInfo is `spki`): a URI SAN and an empty subject
/// for a URI, a DNS SAN and the name as common name for a DNS name.
fn make_csr(identity: &Identity, key: &EcdsaKeyPair, spki: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (subject, name) = match identity {
        Identity::Uri(uri) => (
            Name::default(),
            GeneralName::UniformResourceIdentifier(Ia5String::new(uri)?),
        ),
        Identity::Dns(dns) => (
            <Name as std::str::FromStr>::from_str(&format!("CN={dns}"))?,
            GeneralName::DnsName(Ia5String::new(dns)?),
        ),
    };
    let san = SubjectAltName(vec![name]).to_der()?;
    let extension = Extension {
        extn_id: SUBJECT_ALT_NAME,
        // RFC 5280 4.2.1.6: critical when the subject is empty.
        critical: subject.0.is_empty(),
        extn_value: OctetString::new(san)?,
    };
    let mut attributes = SetOfVec::new();
    attributes.insert(ExtensionReq(vec![extension]).try_into()?)?;
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: SubjectPublicKeyInfoOwned::from_der(spki)?,
        attributes,
    };
    let signature = key
        .sign(&SystemRandom::new(), &info.to_der()?)
        .map_err(|_| anyhow!("cannot sign the certificate request"))?;
    let request = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA256,
            parameters: None,
        },
        signature: BitString::from_bytes(signature.as_ref())?,
    };
    Ok(request.to_der()?)
}

/// `auth enroll --output json`.
#[derive(Serialize)]
struct EnrolledJson {
    identity: String,
    certificate: CertificateJson,
    key_file: String,
    cert_file: String,
}

/// The PEM blocks of `chain_pem` (issuing CA first, root last) that a
/// client sends with its certificate: all but the root.
fn intermediates(chain_pem: &str) -> String {
    let blocks: Vec<String> = chain_pem
        .split_inclusive("-----END CERTIFICATE-----")
        .map(str::trim)
        .filter(|b| b.starts_with("-----BEGIN CERTIFICATE-----"))
        .map(|b| format!("{b}\n"))
        .collect();
    let keep = blocks.len().saturating_sub(1).max(1).min(blocks.len());
    blocks[..keep].concat()
}

/// `auth enroll`.
async fn enroll(args: EnrollArgs) -> anyhow::Result<()> {
    let identity = Identity::parse(&args.identity)?;
    check_outputs(&[Some(&args.key_out), Some(&args.cert_out)], false)?;
    let token = read_token(args.token_file.as_deref())?;
    // The generator `cert issue --cn` uses on the appliance.
    let (public_key, key_pem) = crate::appliance::generate_key(KeySpec::EcP256)?;
    let pkcs8 = Zeroizing::new(
        der::pem::decode_vec(key_pem.as_bytes())
            .map_err(|e| anyhow!("the generated key cannot be read back: {e}"))?
            .1,
    );
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| anyhow!("the generated key cannot be read back"))?;
    let csr = make_csr(&identity, &pair, public_key.der())?;
    // The key is staged before the token is spent: if its directory cannot
    // take it, nothing is asked of the appliance.
    let staged_key = stage(&args.key_out, key_pem.as_bytes(), KEY_MODE)?;
    drop(key_pem);
    let url = args.conn.url();
    let mut client = CaClient::new(args.conn.connect().await?);
    let mut request = v1::EnrollRequest {
        token: String::new(),
        csr,
    };
    request.token.push_str(&token);
    drop(token);
    let response = client
        .enroll(request)
        .await
        .map_err(|s| rpc_error(&format!("enrol {identity}"), &url, &s))?
        .into_inner();
    let certificate = response
        .certificate
        .ok_or_else(|| anyhow!("the appliance answered without a certificate"))?;
    let serial = certificate.serial.clone();
    let chain = format!(
        "{}{}",
        pem_text(&certificate.pem),
        intermediates(&response.chain_pem)
    );
    let lost = |what: &Path| {
        format!(
            "certificate {serial} was issued, but writing {} failed; the token is spent: \
             ask for a new one",
            what.display()
        )
    };
    staged_key
        .commit(false)
        .with_context(|| lost(&args.key_out))?;
    stage(&args.cert_out, chain.as_bytes(), CERT_MODE)
        .and_then(|staged| staged.commit(false))
        .with_context(|| lost(&args.cert_out))?;
    match args.conn.output {
        OutputFormat::Json => print_json(&EnrolledJson {
            identity: identity.to_string(),
            certificate: CertificateJson::from(&certificate),
            key_file: args.key_out.display().to_string(),
            cert_file: args.cert_out.display().to_string(),
        }),
        OutputFormat::Text => {
            let json = CertificateJson::from(&certificate);
            println!(
                "enrolled {identity}: certificate {serial} valid until {}",
                json.not_after.as_deref().unwrap_or("-")
            );
            println!("wrote {}", args.key_out.display());
            println!("wrote {}", args.cert_out.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_for(identity: &str) -> strongroom_ca::Csr {
        let identity = Identity::parse(identity).expect("identity");
        let (public_key, key_pem) = crate::appliance::generate_key(KeySpec::EcP256).expect("key");
        let pkcs8 = der::pem::decode_vec(key_pem.as_bytes()).expect("pem").1;
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .expect("pair");
        let der = make_csr(&identity, &pair, public_key.der()).expect("csr");
        strongroom_ca::Csr::parse(&der).expect("the CA reads it")
    }

    #[test]
    fn enrolment_csrs_name_exactly_the_identity() {
        let uri = "spiffe://example.test/svc/orders";
        let csr = csr_for(uri);
        assert_eq!(csr.common_name, None);
        let identity = Identity::parse(uri).expect("uri");
        assert!(identity.is_exactly(&csr.names));
        let request = strongroom_ca::IssueRequest::from_csr("client", uri, csr, None);
        assert!(identity.is_exactly(&request.names));

        let dns = "orders.example.test";
        let csr = csr_for(dns);
        assert_eq!(csr.common_name.as_deref(), Some(dns));
        let request = strongroom_ca::IssueRequest::from_csr("client", dns, csr, None);
        assert!(
            Identity::parse(dns)
                .expect("dns")
                .is_exactly(&request.names)
        );
    }

    #[test]
    fn the_certificate_file_leaves_out_the_root() {
        let block =
            |n: &str| format!("-----BEGIN CERTIFICATE-----\n{n}\n-----END CERTIFICATE-----\n");
        let chain = format!("{}{}", block("issuing"), block("root"));
        assert_eq!(intermediates(&chain), block("issuing"));
        assert_eq!(intermediates(&block("only")), block("only"));
        assert_eq!(intermediates(""), "");
    }

    #[test]
    fn tokens_are_read_trimmed_and_bounded() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "  srb_0123456789abcdef_x\n").expect("write");
        assert_eq!(
            read_token(Some(&path)).expect("read").as_str(),
            "srb_0123456789abcdef_x"
        );
        std::fs::write(&path, vec![b'a'; MAX_TOKEN_INPUT + 1]).expect("write");
        let e = read_token(Some(&path)).expect_err("too large");
        assert!(!e.to_string().contains("aaaa"), "{e}");
        std::fs::write(&path, "\n").expect("write");
        assert!(read_token(Some(&path)).is_err());
    }
}
