//! `strongroom dev`: a complete development appliance on embedded defaults.
//!
//! The first start creates, under the data directory:
//! - an isolated SoftHSM2 token;
//! - a dev root (P-384) and an issuing CA (P-256) whose keys are generated in
//!   the token, plus a transit wrapping key;
//! - a configuration with `server` and `client` profiles;
//! - the gRPC server's TLS certificate and the dev admin's client
//!   certificate (`tls/admin.pem`), both issued by the dev CA, and access
//!   policies (`policies.toml`) that grant the admin everything. The
//!   configuration turns on `tls.auto_renew`, so the server certificate is
//!   renewed while the appliance runs.
//!
//! Later starts with the same directory keep all of it, including the
//! certificate inventory. The appliance then serves gRPC (TLS), HTTP and
//! Prometheus metrics on 127.0.0.1 in the foreground until Ctrl-C.
//!
//! Like any appliance it is sealed with Shamir shares: the first start
//! initialises it with a single share (1 of 1), prints that share once and
//! unseals with it. Insecure by design: the share is also kept in
//! `dev-unseal.share` in the data directory, so that every restart unseals
//! itself. Never use it for real keys.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use strongroom_ca::{
    CaCertificateRequest, DistributionUrls, IssueRequest, Issuer, Names, pem, self_signed_root,
};
use strongroom_hsm::{KeySpec, Pin, PoolConfig, Token};
use strongroom_softhsm::{CONF_VAR, TokenDir};

use zeroize::Zeroizing;

use crate::appliance::{Appliance, generate_key, pool_config};
use crate::config::Config;
use crate::server::seal::Seal;
use crate::server::tls::{CertFacts, files};
use crate::server::{BlockingPool, Listeners, ServerTls, serve};

/// Label of the dev appliance's token.
pub(crate) const DEV_TOKEN: &str = "strongroom-dev";
const ROOT_KEY: &str = "dev-root-ca";
const ISSUING_KEY: &str = "dev-issuing-ca";
const WRAPPING_KEY: &str = "dev-transit-wrap";
/// The identity of the dev admin certificate, which the dev policies grant
/// everything.
pub(crate) const DEV_ADMIN: &str = "spiffe://strongroom.test/admin";
/// The dev appliance's one unseal share, kept in the data directory.
const DEV_SHARE: &str = "dev-unseal.share";
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Options of `strongroom dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Directory holding the dev appliance's token, CA, database and config.
    #[arg(long, default_value = ".strongroom-dev")]
    data_dir: PathBuf,
    /// Delete an existing data directory first and start from scratch.
    #[arg(long)]
    fresh: bool,
    /// PKCS#11 module of SoftHSM2 (found in the usual places when omitted).
    #[arg(long)]
    module: Option<PathBuf>,
    /// gRPC listen address (first start; later starts reuse the configured one).
    #[arg(long)]
    grpc_addr: Option<SocketAddr>,
    /// HTTP listen address (first start; later starts reuse the configured one).
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// Prometheus metrics listen address (first start; later starts reuse the
    /// configured one).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
}

/// Runs the dev appliance in the foreground.
pub(crate) fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let data_dir = absolute(&args.data_dir)?;
    let conf = data_dir.join("softhsm").join("softhsm2.conf");
    // SoftHSM2 reads SOFTHSM2_CONF when the module initialises; give it to a
    // child process rather than changing this process's environment.
    if std::env::var_os(CONF_VAR).as_deref() != Some(conf.as_os_str()) {
        return reexec_with_conf(&conf);
    }
    if args.fresh && data_dir.exists() {
        // Only ever delete what a dev appliance created.
        if !is_dev_data_dir(&data_dir) && std::fs::read_dir(&data_dir)?.next().is_some() {
            bail!(
                "{} is not a dev appliance's data directory; --fresh deletes only those",
                data_dir.display()
            );
        }
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("cannot delete {}", data_dir.display()))?;
    }
    let config_path = data_dir.join("strongroom.toml");
    let first_start = !config_path.exists();
    if first_start {
        if data_dir.exists() && std::fs::read_dir(&data_dir)?.next().is_some() {
            bail!(
                "{} exists but holds no dev appliance; pass --fresh to start over there",
                data_dir.display()
            );
        }
        let module = match &args.module {
            Some(m) => m.clone(),
            None => strongroom_softhsm::module_path()?,
        };
        bootstrap(&data_dir, &module, &args)?;
    }
    if !first_start {
        forget_pin_file(&config_path)?;
        add_access_control(&config_path, &data_dir)?;
    }
    let mut config = Config::load(&config_path)?;
    if !first_start {
        if let Some(a) = args.grpc_addr {
            config.listen.grpc = a;
        }
        if let Some(a) = args.http_addr {
            config.listen.http = a;
        }
        if let Some(listen) = args.metrics_addr {
            config.metrics = Some(crate::config::MetricsConfig { listen });
        }
    }
    let pool = BlockingPool::for_sessions(pool_config(&config).sessions);
    let seal = Arc::new(Seal::new(config.clone(), pool)?);
    let grpc = std::net::TcpListener::bind(config.listen.grpc)
        .with_context(|| format!("cannot listen on {}", config.listen.grpc))?;
    let http = std::net::TcpListener::bind(config.listen.http)
        .with_context(|| format!("cannot listen on {}", config.listen.http))?;
    let metrics = match &config.metrics {
        Some(metrics) => Some(
            std::net::TcpListener::bind(metrics.listen)
                .with_context(|| format!("cannot listen on {}", metrics.listen))?,
        ),
        None => None,
    };
    let (grpc_addr, http_addr) = (grpc.local_addr()?, http.local_addr()?);
    let metrics_addr = metrics.as_ref().map(|m| m.local_addr()).transpose()?;

    grpc.set_nonblocking(true)?;
    http.set_nonblocking(true)?;
    if let Some(metrics) = &metrics {
        metrics.set_nonblocking(true)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        crate::server::ignore_early_hangups();
        let new_share = unseal(&seal, &data_dir).await?;
        let appliance = seal.gate().current();
        let unsealed = appliance.is_some();
        let tls =
            tokio::task::block_in_place(|| server_tls(appliance.as_deref(), &config, &data_dir))?;
        drop(appliance);
        print_banner(
            &data_dir,
            &config,
            Addresses {
                grpc: grpc_addr,
                http: http_addr,
                metrics: metrics_addr,
            },
            first_start,
            unsealed,
            new_share.as_deref().map(String::as_str),
        )?;
        let listeners = Listeners {
            grpc: tokio::net::TcpListener::from_std(grpc)?,
            http: tokio::net::TcpListener::from_std(http)?,
            metrics: metrics.map(tokio::net::TcpListener::from_std).transpose()?,
        };
        serve(seal, listeners, tls, shutdown_signal()).await
    })?;
    eprintln!("strongroom: dev appliance stopped");
    Ok(ExitCode::SUCCESS)
}

/// Whether `dir` looks like a data directory `strongroom dev` created.
fn is_dev_data_dir(dir: &Path) -> bool {
    dir.join("strongroom.toml").is_file()
        && dir.join("softhsm/softhsm2.conf").is_file()
        && [DEV_SHARE, "hsm.pin", "seal.json"]
            .iter()
            .any(|f| dir.join(f).is_file())
}

/// Drops the `pin_file` line that dev configurations written before the
/// seal carried (the server no longer reads a PIN from disk).
fn forget_pin_file(config_path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    if !text.lines().any(|l| l.trim() == r#"pin_file = "hsm.pin""#) {
        return Ok(());
    }
    let kept: String = text
        .lines()
        .filter(|l| l.trim() != r#"pin_file = "hsm.pin""#)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(config_path, kept)
        .with_context(|| format!("cannot update {}", config_path.display()))
}

/// Initialises the appliance with one share on its first start (returning
/// the share, to print once), then unseals it with the kept share.
async fn unseal(seal: &Seal, data_dir: &Path) -> anyhow::Result<Option<Zeroizing<String>>> {
    let share_path = data_dir.join(DEV_SHARE);
    let new_share = if seal.status().await.initialized {
        None
    } else {
        let pin_path = data_dir.join("hsm.pin");
        let pin = Zeroizing::new(
            std::fs::read_to_string(&pin_path)
                .with_context(|| format!("cannot read the dev token's PIN {}", pin_path.display()))?
                .trim_end()
                .to_owned(),
        );
        let mut shares = seal.init(1, 1, pin, None).await.map_err(failure)?;
        let share = shares.texts.pop().context("init returned no share")?;
        write_private(&share_path, share.as_bytes())?;
        seal.init_verify(&share).await.map_err(failure)?;
        // Init changed the PIN: the initial one no longer unlocks anything.
        let _ = std::fs::remove_file(&pin_path);
        Some(share)
    };
    let share =
        Zeroizing::new(std::fs::read_to_string(&share_path).with_context(|| {
            format!("cannot read the dev unseal share {}", share_path.display())
        })?);
    match seal.unseal(&share, "", false).await {
        Ok(_) => {}
        // After `operator rekey` the kept share belongs to an old set.
        Err(refused) if new_share.is_none() => eprintln!(
            "strongroom: the dev share in {} no longer unseals this appliance ({}); serving \
             sealed: unseal it with `strongroom operator unseal`",
            share_path.display(),
            tonic::Status::from(refused).message()
        ),
        Err(refused) => return Err(failure(refused)),
    }
    Ok(new_share)
}

/// A seal failure as the error `strongroom dev` exits with.
fn failure(failure: crate::server::Failure) -> anyhow::Error {
    anyhow::anyhow!("{}", tonic::Status::from(failure).message())
}

/// Creates the token, keys, CA certificates and configuration of a new dev appliance.
fn bootstrap(data_dir: &Path, module: &Path, args: &DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir.join("ca"))?;
    let dir = TokenDir::create(&data_dir.join("softhsm"))?;
    let user_pin = random_secret()?;
    dir.create_token(DEV_TOKEN, &random_secret()?, &user_pin)?;
    write_private(
        &data_dir.join("hsm.pin"),
        user_pin.expose_secret().as_bytes(),
    )?;

    // The bootstrap token handle is dropped before the appliance opens the
    // token again (one open per process).
    let token = Token::open(
        module,
        DEV_TOKEN,
        Pin::new(user_pin.expose_secret()),
        PoolConfig::default(),
    )?;
    let now = SystemTime::now();
    let root_key = token.generate_key_pair(ROOT_KEY, KeySpec::EcP384)?;
    let root_signer = root_key.signer(KeySpec::EcP384.default_signature_algorithm())?;
    let root_der = self_signed_root(
        &root_signer,
        &CaCertificateRequest {
            subject: &subject("Strongroom Dev Root CA"),
            public_key: root_key.public_key(),
            not_before: now,
            not_after: now + 10 * YEAR,
            path_len: Some(1),
            serial: &serial(&token)?,
            urls: &DistributionUrls::default(),
        },
    )?;
    let root = Issuer::new(&root_der, Arc::new(root_signer))?;
    let issuing_key = token.generate_key_pair(ISSUING_KEY, KeySpec::EcP256)?;
    let issuing_der = root.sign_ca(&CaCertificateRequest {
        subject: &subject("Strongroom Dev Issuing CA"),
        public_key: issuing_key.public_key(),
        not_before: now,
        not_after: now + 5 * YEAR,
        path_len: Some(0),
        serial: &serial(&token)?,
        urls: &DistributionUrls::default(),
    })?;
    token.generate_wrapping_key(WRAPPING_KEY)?;
    drop(token);
    std::fs::write(data_dir.join("ca/root.pem"), pem("CERTIFICATE", &root_der))?;
    std::fs::write(
        data_dir.join("ca/issuing.pem"),
        pem("CERTIFICATE", &issuing_der),
    )?;

    let grpc = args
        .grpc_addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
    let mut http = args
        .http_addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    if http.port() == 0 {
        // The URLs written into certificates need the real port.
        http = std::net::TcpListener::bind(http)?.local_addr()?;
    }
    let metrics = args
        .metrics_addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9464)));
    let config = format!(
        r#"# Written by `strongroom dev` on its first start. See strongroom.example.toml.
data_dir = "."

[listen]
grpc = "{grpc}"
http = "{http}"

[tls]
cert = "tls/server.pem"
key = "tls/server.key"
{TLS_CLIENT_CA}
# Renewed through the dev CA (profile "server", same names, new key) once two
# thirds of its validity have passed, without a restart.
auto_renew = true

[auth]
{AUTH_SECTION}

[hsm]
module = "{module}"
token = "pkcs11:token={DEV_TOKEN}"

[ca]
issuer_key = "pkcs11:object={ISSUING_KEY}"
issuer_certificate = "ca/issuing.pem"
chain = ["ca/root.pem"]
crl_url = "http://{http}/crl/issuing.crl"
ocsp_url = "http://{http}/ocsp"
ca_issuers_url = "http://{http}/ca/issuing.crt"

[crl]
# Delta CRLs at http://{http}/crl/issuing-delta.crl: a revocation shows there
# within rebuild_within; the complete CRL is rebuilt halfway through validity.
delta = true

[transit]
# Transit key material is wrapped by this AES-256 key in the token.
wrapping_key = "pkcs11:object={WRAPPING_KEY}"

[metrics]
# Prometheus metrics at http://{metrics}/metrics.
listen = "{metrics}"

[profiles.server]
domains = ["localhost", "**.test"]
ip_ranges = ["127.0.0.0/8", "::1/128"]
ext_key_usage = ["serverAuth"]
key_usage = ["digitalSignature", "keyEncipherment"]
max_ttl = "365d"

[profiles.client]
domains = ["localhost", "**.test"]
uri_patterns = ["spiffe://strongroom.test/*", "spiffe://strongroom.test/*/*"]
ext_key_usage = ["clientAuth"]
max_ttl = "365d"
"#,
        module = module.display(),
    );
    std::fs::write(data_dir.join("strongroom.toml"), config)?;
    write_policies(data_dir)?;
    Ok(())
}

/// The `[tls]` line that makes the dev root the CA of client certificates.
const TLS_CLIENT_CA: &str = r#"client_ca = "ca/root.pem""#;

/// The body of the dev configuration's `[auth]` section.
const AUTH_SECTION: &str = r#"# Reloaded on SIGHUP; grants the dev admin certificate (tls/admin.pem) everything.
policies = "policies.toml""#;

/// Writes the dev appliance's policy file unless it exists: the dev admin
/// identity may do everything, nobody else anything.
fn write_policies(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join("policies.toml");
    if path.exists() {
        return Ok(());
    }
    let text = format!(
        r#"# Access policies of the dev appliance (see strongroom.example.toml).
# Edit and reload with `kill -HUP <pid>`; nothing is granted unless a policy says so.

[[policy]]
name = "dev-admin"
identities = ["{DEV_ADMIN}"]

[[policy.grant]]
resources = ["*"]
capabilities = ["*"]
"#
    );
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Gives a dev configuration written before access control its client CA,
/// `[auth]` section and policy file.
fn add_access_control(config_path: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let mut updated = text.clone();
    if !updated.contains("client_ca") {
        updated = updated.replacen(
            "key = \"tls/server.key\"\n",
            &format!("key = \"tls/server.key\"\n{TLS_CLIENT_CA}\n"),
            1,
        );
    }
    if !updated.lines().any(|l| l.trim() == "[auth]") {
        updated.push_str(&format!("\n[auth]\n{AUTH_SECTION}\n"));
    }
    if updated != text {
        std::fs::write(config_path, updated)
            .with_context(|| format!("cannot update {}", config_path.display()))?;
    }
    write_policies(data_dir)
}

/// The gRPC server's TLS, its certificate issued by the dev CA (again when
/// it is missing or expires within 30 days), and the dev admin's client
/// certificate beside it.
fn server_tls(
    appliance: Option<&Appliance>,
    config: &Config,
    data_dir: &Path,
) -> anyhow::Result<ServerTls> {
    let (cert_path, key_path) = (&config.tls.cert, &config.tls.key);
    let server_names = Names {
        dns: vec!["localhost".into()],
        ips: vec!["127.0.0.1".parse()?, "::1".parse()?],
        uris: vec![],
    };
    let server = Credential {
        profile: "server",
        common_name: Some("localhost"),
        names: server_names,
        cert: cert_path,
        key: key_path,
    };
    if !server.fresh() {
        let Some(appliance) = appliance else {
            bail!(
                "the dev appliance is sealed and its TLS certificate needs renewing; \
                 start over with --fresh"
            );
        };
        server.issue(appliance)?;
    }
    let (admin_cert, admin_key) = admin_files(data_dir);
    let admin = Credential {
        profile: "client",
        common_name: None,
        names: Names {
            uris: vec![DEV_ADMIN.into()],
            ..Names::default()
        },
        cert: &admin_cert,
        key: &admin_key,
    };
    if !admin.fresh() {
        match appliance {
            Some(appliance) => admin.issue(appliance)?,
            None => eprintln!(
                "strongroom: the dev admin certificate {} needs renewing, which needs the \
                 appliance unsealed",
                admin_cert.display()
            ),
        }
    }
    ServerTls::load(&config.tls)
}

/// The dev admin's client certificate (chain) and key files.
fn admin_files(data_dir: &Path) -> (PathBuf, PathBuf) {
    let tls = data_dir.join("tls");
    (tls.join("admin.pem"), tls.join("admin.key"))
}

/// A certificate the dev appliance issues to itself, kept in two files.
struct Credential<'a> {
    profile: &'static str,
    common_name: Option<&'static str>,
    names: Names,
    cert: &'a Path,
    key: &'a Path,
}

impl Credential<'_> {
    /// Whether both files exist and the certificate (the first of the
    /// chain the file holds) is valid for 30 more days.
    fn fresh(&self) -> bool {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        self.key.exists()
            && CertificateDer::pem_file_iter(self.cert)
                .ok()
                .and_then(|mut chain| chain.next())
                .and_then(Result::ok)
                .and_then(|leaf| CertFacts::of(&leaf).ok())
                .is_some_and(|leaf| {
                    leaf.not_after > SystemTime::now() + Duration::from_secs(30 * 86_400)
                })
    }

    /// Issues a new key and certificate (with the issuing CA after it), and
    /// replaces both files as a renewal does.
    fn issue(&self, appliance: &Appliance) -> anyhow::Result<()> {
        let (public_key, key_pem) = generate_key(KeySpec::EcP256)?;
        let prepared = appliance.authority.prepare(IssueRequest {
            profile: self.profile.into(),
            requester: "strongroom-dev".into(),
            public_key,
            common_name: self.common_name.map(Into::into),
            names: self.names.clone(),
            ttl: Some(YEAR),
            renewal_of: None,
        })?;
        let issued = appliance.authority.issue(prepared)?;
        let chain = format!(
            "{}{}",
            issued.certificate_pem(),
            appliance.authority.issuer().certificate_pem()
        );
        files::write(self.cert, self.key, &chain, &key_pem)
    }
}

/// Where the dev appliance listens.
struct Addresses {
    /// gRPC over TLS.
    grpc: SocketAddr,
    /// Plain HTTP.
    http: SocketAddr,
    /// Prometheus metrics, when configured.
    metrics: Option<SocketAddr>,
}

fn print_banner(
    data_dir: &Path,
    config: &Config,
    addresses: Addresses,
    first_start: bool,
    unsealed: bool,
    new_share: Option<&str>,
) -> anyhow::Result<()> {
    let Addresses {
        grpc,
        http,
        metrics,
    } = addresses;
    let root = data_dir.join("ca/root.pem");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Strongroom dev appliance ({}; insecure by design: never use it for real keys)",
        if first_start {
            "created"
        } else {
            "restarted with its CA and inventory"
        }
    )?;
    writeln!(out, "  data dir      {}", data_dir.display())?;
    writeln!(
        out,
        "  HSM token     {DEV_TOKEN} in {}  ({CONF_VAR}={})",
        data_dir.join("softhsm/tokens").display(),
        data_dir.join("softhsm/softhsm2.conf").display()
    )?;
    if unsealed {
        writeln!(
            out,
            "  seal          unsealed with the 1-of-1 dev share in {} (dev only)",
            data_dir.join(DEV_SHARE).display()
        )?;
    } else {
        writeln!(
            out,
            "  seal          SEALED: unseal with `strongroom operator unseal`"
        )?;
    }
    writeln!(
        out,
        "  CA keys       {ROOT_KEY} (P-384), {ISSUING_KEY} (P-256), in the token"
    )?;
    writeln!(
        out,
        "  gRPC          https://{grpc}  (Ca, Sys, health, reflection)"
    )?;
    writeln!(out, "  HTTP          http://{http}/ca/issuing.crt")?;
    if let Some(url) = &config.ca.crl_url {
        writeln!(out, "  CRL           {url}")?;
    }
    if let Some(url) = config.crl.delta_url(config.ca.crl_url.as_deref())? {
        writeln!(out, "  delta CRL     {url}")?;
    }
    if let Some(metrics) = metrics {
        writeln!(out, "  metrics       http://{metrics}/metrics")?;
    }
    writeln!(
        out,
        "  database      {}",
        data_dir.join("strongroom.db").display()
    )?;
    writeln!(
        out,
        "  access        {DEV_ADMIN} (tls/admin.pem) may do everything; \
         policies in {}",
        data_dir.join("policies.toml").display()
    )?;
    if let Some(share) = new_share {
        writeln!(out)?;
        writeln!(
            out,
            "Unseal share (shown once; a real appliance has one per officer, K of N to unseal):"
        )?;
        for line in share.lines() {
            writeln!(out, "    {line}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "In another shell:")?;
    writeln!(out, "export STRONGROOM_ADDR=https://{grpc}")?;
    writeln!(out, "export STRONGROOM_CACERT={}", root.display())?;
    let (admin_cert, admin_key) = admin_files(data_dir);
    writeln!(
        out,
        "export STRONGROOM_CLIENT_CERT={}",
        admin_cert.display()
    )?;
    writeln!(out, "export STRONGROOM_CLIENT_KEY={}", admin_key.display())?;
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "strongroom".into());
    writeln!(
        out,
        "{exe} cert issue --profile server --cn api.test --san api.test --out-cert api.test.pem --out-key api.test.key"
    )?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn subject(cn: &str) -> Vec<(String, String)> {
    vec![
        ("O".into(), "Strongroom Dev".into()),
        ("CN".into(), cn.into()),
    ]
}

/// A positive 16-byte serial from the HSM's random generator.
fn serial(token: &Token) -> anyhow::Result<Vec<u8>> {
    let mut s = token.random(16)?;
    s[0] = (s[0] & 0x7f) | 0x40;
    Ok(s)
}

/// Runs this same command again with `SOFTHSM2_CONF` pointing at `conf`,
/// replacing this process (so signals reach the appliance directly).
fn reexec_with_conf(conf: &Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot locate the strongroom binary")?;
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CONF_VAR, conf)
        .exec();
    Err(anyhow::Error::new(error).context("cannot start the dev appliance"))
}

/// A 32-character random secret from the operating system's generator.
fn random_secret() -> anyhow::Result<SecretString> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| anyhow::anyhow!("the operating system's random generator failed"))?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(SecretString::from(text))
}

/// Writes a file only its owner can read (created with mode 0600).
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open; make sure it is private.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}
