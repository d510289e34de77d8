//! `strongroom agent`: keeps a certificate and key renewed.
//!
//! Each check reads the certificate file (PEM; the leaf first, optionally
//! followed by its CA chain) and, if its remaining lifetime is below
//! `--threshold`, calls `Ca.Renew` with its serial:
//!
//! - without `--rotate-key` the new certificate certifies the same key (the
//!   agent refuses a renewed certificate whose public key differs, since the
//!   key file would no longer match), and the key file is left alone;
//! - with `--rotate-key` the appliance generates a new key of the same type,
//!   and the agent replaces the key file too.
//!
//! New files are staged in full first, then moved into place: the key (mode
//! 0600), then the certificate (0644), then `--chain` if given. If the old
//! certificate file also held the chain, the new one does too. Then the
//! `--reload-cmd` runs through `sh -c`; if it fails, that is reported and the
//! new files stay (the long-running agent retries the reload, with backoff,
//! before its next check).
//!
//! With `--once` the agent checks once, prints what it did and exits 0
//! whether or not it renewed (1 if the check, the renewal or the reload
//! failed). Without it, the agent checks every `--interval`; after a failure
//! it retries after 5 s, doubling up to `--interval`, and never exits on
//! errors (stop it with a signal; Ctrl-C exits 0). Each check prints on
//! stdout one line starting with the time (text), or one compact JSON object
//! per line (`--output json`: `{"action": "not_due"|"renewed"|"reloaded",
//! "checked_at", "serial", "not_after", "certificate", "key_rotated",
//! "files"}`); errors and warnings go to stderr, prefixed with the time.
//!
//! The decision is a pure function of the certificate and an injected time
//! ([`needs_renewal`], [`check_once`]) and the retry delay is one too
//! ([`backoff`]), so they are tested without sleeping.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow, bail};
use der::Encode;
use serde::Serialize;
use strongroom_ca::format_duration;
use strongroom_proto::v1::ca_client::CaClient;
use strongroom_proto::v1::{IssueResponse, RenewRequest};
use zeroize::Zeroizing;

use super::client::{ConnectionArgs, OutputFormat, rpc_error};
use super::files::{CERT_MODE, KEY_MODE, stage};
use super::output::{CertificateJson, pem_text, system_time};
use super::{UsageError, finish, parse_duration_arg};

/// First delay after a failed check.
pub(crate) const BACKOFF_START: Duration = Duration::from_secs(5);

/// Options of `strongroom agent`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example (a systemd service or a container sidecar):\n  \
    strongroom agent --cert /etc/tls/api.pem --key /etc/tls/api.key \\\n    \
    --threshold 30d --interval 1h --reload-cmd 'systemctl reload nginx'")]
pub(crate) struct AgentArgs {
    /// Certificate to keep renewed: PEM, the leaf first, optionally followed
    /// by its CA chain (kept in the renewed file).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,

    /// Private key of --cert. Replaced (mode 0600) only with --rotate-key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,

    /// Renew when the certificate's remaining lifetime falls below this,
    /// like 30d or 12h.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration_arg)]
    threshold: Duration,

    /// Time between checks (and the longest delay between retries).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration_arg)]
    interval: Duration,

    /// Have the appliance generate a new key pair at each renewal, and
    /// replace --key with it.
    #[arg(long)]
    rotate_key: bool,

    /// Shell command to run (with `sh -c`) after new files are written, for
    /// example "systemctl reload nginx".
    #[arg(long, value_name = "CMD")]
    reload_cmd: Option<String>,

    /// Check once, renew if needed, and exit (0 whether or not it renewed).
    #[arg(long)]
    once: bool,

    /// Requested validity of renewed certificates, like 90d (default: the
    /// profile's).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    ttl: Option<Duration>,

    /// Also write the CA chain PEM (issuing CA, then root) to FILE at each
    /// renewal.
    #[arg(long, value_name = "FILE")]
    chain: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// What a check needs to know, apart from the appliance and the time.
#[derive(Debug, Clone)]
pub(crate) struct CheckConfig {
    /// The certificate file.
    pub(crate) cert: PathBuf,
    /// The key file.
    pub(crate) key: PathBuf,
    /// Optional separate chain file.
    pub(crate) chain: Option<PathBuf>,
    /// Renew below this remaining lifetime.
    pub(crate) threshold: Duration,
    /// Ask for a new key at renewal.
    pub(crate) rotate_key: bool,
    /// Requested validity of the renewed certificate.
    pub(crate) ttl: Option<Duration>,
}

/// Renews certificates: the appliance over gRPC, or a fake in tests.
pub(crate) trait Renewer {
    /// Calls `Ca.Renew`.
    async fn renew(&mut self, request: RenewRequest) -> anyhow::Result<IssueResponse>;
}

/// The real [`Renewer`]: connects for each renewal, so that a restarted
/// appliance or renewed client credentials are picked up.
#[derive(Debug)]
pub(crate) struct GrpcRenewer<'a> {
    /// Where and how to connect.
    conn: &'a ConnectionArgs,
}

impl Renewer for GrpcRenewer<'_> {
    async fn renew(&mut self, request: RenewRequest) -> anyhow::Result<IssueResponse> {
        let url = self.conn.url();
        let serial = request.serial.clone();
        let mut client = CaClient::new(self.conn.connect().await?);
        client
            .renew(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| rpc_error(&format!("renew certificate {serial}"), &url, &s))
    }
}

/// What the agent learned from the certificate file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalCert {
    /// Serial, lower-case hex as the API writes it.
    pub(crate) serial: String,
    /// Subject DN, RFC 4514.
    pub(crate) subject: String,
    /// End of validity.
    pub(crate) not_after: SystemTime,
    /// DER SubjectPublicKeyInfo, to check a renewal kept the key.
    pub(crate) spki: Vec<u8>,
    /// Whether the file holds more than the leaf (a full chain).
    pub(crate) has_chain: bool,
}

/// Parses a PEM certificate file: the first certificate is the leaf.
pub(crate) fn parse_cert_pem(pem: &[u8], name: &Path) -> anyhow::Result<LocalCert> {
    let chain = x509_cert::Certificate::load_pem_chain(pem)
        .map_err(|e| anyhow!("{} is not a PEM certificate file: {e}", name.display()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| anyhow!("{} holds no certificate", name.display()))?;
    let tbs = &leaf.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| anyhow!("cannot encode the public key of {}: {e}", name.display()))?;
    Ok(LocalCert {
        serial: tbs
            .serial_number
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        subject: tbs.subject.to_string(),
        not_after: tbs.validity.not_after.to_system_time(),
        spki,
        has_chain: chain.len() > 1,
    })
}

/// Reads and parses the certificate file.
fn read_cert(path: &Path) -> anyhow::Result<LocalCert> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the certificate {}", path.display()))?;
    parse_cert_pem(&pem, path)
}

/// Whether a certificate ending at `not_after` must be renewed at `now`: its
/// remaining lifetime is strictly below `threshold` (or it has expired).
pub(crate) fn needs_renewal(not_after: SystemTime, now: SystemTime, threshold: Duration) -> bool {
    match not_after.duration_since(now) {
        Ok(remaining) => remaining < threshold,
        Err(_) => true,
    }
}

/// Delay before the next attempt after `failures` consecutive failures (1
/// for the first): 5 s, 10 s, 20 s, … capped at `interval`.
pub(crate) fn backoff(failures: u32, interval: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    BACKOFF_START
        .checked_mul(1u32 << doublings)
        .unwrap_or(Duration::MAX)
        .min(interval)
}

/// The result of one check.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to do yet.
    NotDue {
        /// The current certificate.
        current: LocalCert,
        /// Its remaining lifetime.
        remaining: Duration,
    },
    /// Renewed; the new files are in place.
    Renewed {
        /// The certificate that was renewed.
        old: LocalCert,
        /// The new certificate, as the appliance recorded it.
        certificate: Box<strongroom_proto::v1::Certificate>,
        /// Its end of validity, read from the certificate itself.
        not_after: SystemTime,
        /// Whether the key file was replaced.
        key_rotated: bool,
        /// Files written, in order.
        written: Vec<PathBuf>,
        /// The new certificate is already below the threshold (its lifetime
        /// is shorter than the threshold): every check would renew it.
        still_due: bool,
    },
}

/// One check at time `now`: reads the certificate, renews it through
/// `renewer` if it is due, and writes the new files. Does not run the reload
/// command.
pub(crate) async fn check_once<R: Renewer>(
    renewer: &mut R,
    config: &CheckConfig,
    now: SystemTime,
) -> anyhow::Result<Outcome> {
    let current = read_cert(&config.cert)?;
    if !needs_renewal(current.not_after, now, config.threshold) {
        let remaining = current
            .not_after
            .duration_since(now)
            .unwrap_or(Duration::ZERO);
        return Ok(Outcome::NotDue { current, remaining });
    }
    let ttl = config
        .ttl
        .map(prost_types::Duration::try_from)
        .transpose()
        .map_err(|_| anyhow!("--ttl is too long"))?;
    let response = renewer
        .renew(RenewRequest {
            serial: current.serial.clone(),
            csr: Vec::new(),
            new_key: config.rotate_key,
            ttl,
        })
        .await?;
    let private_key = Zeroizing::new(response.private_key_pem);
    let certificate = response
        .certificate
        .ok_or_else(|| anyhow!("the appliance answered without a certificate"))?;
    let new = parse_cert_pem(
        certificate.pem.as_bytes(),
        Path::new("the renewed certificate"),
    )?;
    if new.serial == current.serial {
        bail!(
            "the appliance returned the same serial {} as a renewal; not writing it",
            new.serial
        );
    }
    if config.rotate_key {
        if private_key.is_empty() {
            bail!(
                "renewed certificate {}: the appliance returned no new private key; \
                 not writing anything",
                new.serial
            );
        }
    } else if new.spki != current.spki {
        bail!(
            "renewed certificate {} certifies a different public key than {}; not writing it",
            new.serial,
            config.key.display()
        );
    }

    // Stage everything first, so a failure leaves the old files untouched.
    let mut cert_pem = pem_text(&certificate.pem);
    if current.has_chain {
        cert_pem.push_str(&pem_text(&response.chain_pem));
    }
    let key_stage = if config.rotate_key {
        Some(stage(&config.key, private_key.as_bytes(), KEY_MODE)?)
    } else {
        None
    };
    let cert_stage = stage(&config.cert, cert_pem.as_bytes(), CERT_MODE)?;
    let chain_stage = match &config.chain {
        Some(path) => Some((
            path.clone(),
            stage(path, pem_text(&response.chain_pem).as_bytes(), CERT_MODE)?,
        )),
        None => None,
    };
    let mut written = Vec::new();
    let lost = |path: &Path| {
        format!(
            "certificate {} was renewed as {}, but writing {} failed",
            current.serial,
            new.serial,
            path.display()
        )
    };
    if let Some(staged) = key_stage {
        staged.commit(true).with_context(|| lost(&config.key))?;
        written.push(config.key.clone());
    }
    cert_stage
        .commit(true)
        .with_context(|| lost(&config.cert))?;
    written.push(config.cert.clone());
    if let Some((path, staged)) = chain_stage {
        staged.commit(true).with_context(|| lost(&path))?;
        written.push(path);
    }
    let still_due = needs_renewal(new.not_after, now, config.threshold);
    Ok(Outcome::Renewed {
        old: current,
        certificate: Box::new(certificate),
        not_after: new.not_after,
        key_rotated: config.rotate_key,
        written,
        still_due,
    })
}

/// Runs the reload command with `sh -c`, its output going to the agent's.
pub(crate) async fn run_reload(command: &str) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .status()
        .await
        .with_context(|| format!("cannot run the reload command `{command}`"))?;
    if !status.success() {
        bail!("the reload command `{command}` failed ({status})");
    }
    Ok(())
}

/// One check as printed in JSON (`--output json`): one compact JSON object
/// per line.
#[derive(Debug, Serialize)]
struct CheckJson {
    /// `not_due`, `renewed` or `reloaded` (a reload retried after failing).
    action: &'static str,
    /// When the check ran, RFC 3339 UTC.
    checked_at: String,
    /// Serial of the certificate found in the file (not for `reloaded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    /// Its end of validity, RFC 3339 UTC (not for `reloaded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
    /// The new certificate (`renewed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertificateJson>,
    /// Whether the key was replaced (`renewed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_rotated: Option<bool>,
    /// Files written (`renewed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<String>>,
}

impl CheckJson {
    /// A record with only the action and time set.
    fn new(action: &'static str, now: SystemTime) -> Self {
        CheckJson {
            action,
            checked_at: system_time(now),
            serial: None,
            not_after: None,
            certificate: None,
            key_rotated: None,
            files: None,
        }
    }

    /// Prints it as one line.
    fn print(&self) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string(self)?);
        Ok(())
    }
}

/// A duration for people: whole hours beyond a day, whole minutes beyond an
/// hour (`364d23h`, not `364d23h59m52s`).
fn rough(d: Duration) -> String {
    let secs = d.as_secs();
    let unit = match secs {
        86_400.. => 3_600,
        3_600.. => 60,
        _ => 1,
    };
    format_duration(Duration::from_secs(secs - secs % unit))
}

/// Prints what a check at `now` did: a line starting with the time (text) or
/// a JSON object on one line.
fn report(
    outcome: &Outcome,
    config: &CheckConfig,
    format: OutputFormat,
    now: SystemTime,
) -> anyhow::Result<()> {
    let at = system_time(now);
    match (outcome, format) {
        (Outcome::NotDue { current, remaining }, OutputFormat::Text) => println!(
            "{at} certificate {} ({}) expires {} (in {}): not due (threshold {})",
            current.serial,
            current.subject,
            system_time(current.not_after),
            rough(*remaining),
            format_duration(config.threshold)
        ),
        (Outcome::NotDue { current, .. }, OutputFormat::Json) => CheckJson {
            serial: Some(current.serial.clone()),
            not_after: Some(system_time(current.not_after)),
            ..CheckJson::new("not_due", now)
        }
        .print()?,
        (
            Outcome::Renewed {
                old,
                certificate,
                not_after,
                key_rotated,
                written,
                still_due,
            },
            format,
        ) => {
            if *still_due {
                eprintln!(
                    "{at} strongroom agent: warning: renewed certificate {} is valid for less \
                     than the threshold ({}), so every check will renew it: lower --threshold \
                     or raise the TTL",
                    certificate.serial,
                    format_duration(config.threshold)
                );
            }
            let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            match format {
                OutputFormat::Text => println!(
                    "{at} certificate {} ({}) expiring {} renewed as {}, valid until {}{}; wrote {}",
                    old.serial,
                    old.subject,
                    system_time(old.not_after),
                    certificate.serial,
                    system_time(*not_after),
                    if *key_rotated { " with a new key" } else { "" },
                    files.join(", ")
                ),
                OutputFormat::Json => CheckJson {
                    serial: Some(old.serial.clone()),
                    not_after: Some(system_time(old.not_after)),
                    certificate: Some(CertificateJson::from(&**certificate)),
                    key_rotated: Some(*key_rotated),
                    files: Some(files),
                    ..CheckJson::new("renewed", now)
                }
                .print()?,
            }
        }
    }
    Ok(())
}

/// Prints that a reload retried after a failure succeeded.
fn report_reload(command: &str, format: OutputFormat, now: SystemTime) -> anyhow::Result<()> {
    match format {
        OutputFormat::Text => {
            println!("{} reload command `{command}` succeeded", system_time(now));
            Ok(())
        }
        OutputFormat::Json => CheckJson::new("reloaded", now).print(),
    }
}

/// Runs the agent.
pub(crate) fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    finish(runtime.block_on(agent(args)))
}

/// The agent's main loop (or single check with `--once`).
async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    // Fail fast on configuration problems (missing --cacert, unreadable CA
    // file), not at the first renewal months from now.
    args.conn.endpoint()?;
    if args.cert == args.key {
        return Err(UsageError::new("--cert and --key must be different files").into());
    }
    let config = CheckConfig {
        cert: args.cert.clone(),
        key: args.key.clone(),
        chain: args.chain.clone(),
        threshold: args.threshold,
        rotate_key: args.rotate_key,
        ttl: args.ttl,
    };
    let format = args.conn.output;
    let mut renewer = GrpcRenewer { conn: &args.conn };

    if args.once {
        let now = SystemTime::now();
        let outcome = check_once(&mut renewer, &config, now).await?;
        report(&outcome, &config, format, now)?;
        if let (Outcome::Renewed { .. }, Some(cmd)) = (&outcome, &args.reload_cmd) {
            run_reload(cmd)
                .await
                .context("the new files are in place, but the service was not reloaded")?;
        }
        return Ok(());
    }

    let mut failures: u32 = 0;
    let mut reload_pending = false;
    loop {
        let result: anyhow::Result<()> = async {
            // A reload that keeps failing must not stop the renewal checks:
            // report it and go on, retrying it on every round.
            let mut reload_error = None;
            if let (true, Some(cmd)) = (reload_pending, &args.reload_cmd) {
                match run_reload(cmd).await {
                    Ok(()) => {
                        reload_pending = false;
                        report_reload(cmd, format, SystemTime::now())?;
                    }
                    Err(e) => reload_error = Some(e),
                }
            }
            let now = SystemTime::now();
            let outcome = check_once(&mut renewer, &config, now).await?;
            report(&outcome, &config, format, now)?;
            if let (Outcome::Renewed { .. }, Some(cmd)) = (&outcome, &args.reload_cmd) {
                reload_pending = true;
                run_reload(cmd).await?;
                reload_pending = false;
            }
            match reload_error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        .await;
        let delay = match result {
            Ok(()) => {
                failures = 0;
                args.interval
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures, args.interval);
                let what = if reload_pending {
                    " (the new files are in place; the reload will be retried)"
                } else {
                    ""
                };
                eprintln!(
                    "{} strongroom agent: {}{what}; retrying in {}",
                    system_time(SystemTime::now()),
                    format!("{e:#}").replace('\n', " "),
                    format_duration(delay)
                );
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use strongroom_proto::v1::Certificate;

    // Fixtures: see testdata/README.md.
    /// Key A, serial 1a2b3c4d5e6f7081, CN=svc.test.
    const OLD: &str = include_str!("testdata/old.pem");
    /// Key A, serial 00a1b2c3d4e5f60718.
    const SAME_KEY: &str = include_str!("testdata/same_key.pem");
    /// Key B, serial 0c0ffee0c0ffee01.
    const ROTATED: &str = include_str!("testdata/rotated.pem");
    /// Key B.
    const NEW_KEY: &str = include_str!("testdata/new_key.pem");

    /// Unix time of OLD's not_after, 2026-12-22T17:48:45Z.
    const OLD_NOT_AFTER: u64 = 1_797_961_725;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    const DAY: u64 = 86_400;

    /// A fake appliance: records requests, answers with a fixed certificate.
    struct Fake {
        requests: Vec<RenewRequest>,
        answer_pem: String,
        answer_key: String,
        fail: bool,
    }

    impl Fake {
        fn new(answer_pem: &str, answer_key: &str) -> Self {
            Fake {
                requests: Vec::new(),
                answer_pem: answer_pem.to_owned(),
                answer_key: answer_key.to_owned(),
                fail: false,
            }
        }
    }

    impl Renewer for Fake {
        async fn renew(&mut self, request: RenewRequest) -> anyhow::Result<IssueResponse> {
            self.requests.push(request);
            if self.fail {
                bail!("renew certificate: Unavailable: down");
            }
            let serial = parse_cert_pem(self.answer_pem.as_bytes(), Path::new("x"))
                .expect("fixture parses")
                .serial;
            Ok(IssueResponse {
                certificate: Some(Certificate {
                    serial,
                    pem: self.answer_pem.clone(),
                    ..Default::default()
                }),
                chain_pem: "CHAIN\n".into(),
                private_key_pem: self.answer_key.clone(),
            })
        }
    }

    fn setup(dir: &Path, rotate_key: bool) -> CheckConfig {
        let config = CheckConfig {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            chain: None,
            threshold: Duration::from_secs(30 * DAY),
            rotate_key,
            ttl: None,
        };
        std::fs::write(&config.cert, OLD).expect("write");
        std::fs::write(&config.key, "OLD KEY").expect("write");
        config
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn needs_renewal_at_the_boundary() {
        let not_after = at(OLD_NOT_AFTER);
        let threshold = Duration::from_secs(30 * DAY);
        let exactly = at(OLD_NOT_AFTER - 30 * DAY);
        assert!(
            !needs_renewal(not_after, exactly, threshold),
            "exactly at the threshold"
        );
        assert!(!needs_renewal(
            not_after,
            exactly - Duration::from_secs(1),
            threshold
        ));
        assert!(needs_renewal(
            not_after,
            exactly + Duration::from_secs(1),
            threshold
        ));
        assert!(needs_renewal(not_after, not_after, threshold));
        assert!(
            needs_renewal(not_after, at(OLD_NOT_AFTER + 1), threshold),
            "expired"
        );
        // 365-day certificate, 30-day threshold: due just after day 335.
        let issued = at(1_000_000_000);
        let end = issued + Duration::from_secs(365 * DAY);
        assert!(!needs_renewal(
            end,
            issued + Duration::from_secs(334 * DAY),
            threshold
        ));
        assert!(needs_renewal(
            end,
            issued + Duration::from_secs(336 * DAY),
            threshold
        ));
    }

    #[test]
    fn backoff_doubles_from_5s_and_is_capped_at_the_interval() {
        let hour = Duration::from_secs(3_600);
        let seq: Vec<u64> = (1..=12).map(|n| backoff(n, hour).as_secs()).collect();
        assert_eq!(
            seq,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(backoff(u32::MAX, hour), hour, "no overflow");
        assert_eq!(backoff(1, Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(backoff(0, hour), BACKOFF_START);
    }

    #[test]
    fn remaining_lifetimes_print_roughly() {
        assert_eq!(rough(Duration::from_secs(365 * DAY - 8)), "364d23h");
        assert_eq!(rough(Duration::from_secs(7_199)), "1h59m");
        assert_eq!(rough(Duration::from_secs(59)), "59s");
    }

    #[test]
    fn parses_the_local_certificate() {
        let c = parse_cert_pem(OLD.as_bytes(), Path::new("old")).expect("parse cert pem");
        assert_eq!(c.serial, "1a2b3c4d5e6f7081");
        assert_eq!(c.subject, "CN=svc.test");
        assert_eq!(c.not_after, at(OLD_NOT_AFTER));
        assert!(!c.has_chain);
        // A leading zero byte (high bit set) is kept, as the API writes it.
        let s = parse_cert_pem(SAME_KEY.as_bytes(), Path::new("same")).expect("parse cert pem");
        assert_eq!(s.serial, "00a1b2c3d4e5f60718");
        assert_eq!(s.spki, c.spki);
        let full = format!("{OLD}{SAME_KEY}");
        assert!(
            parse_cert_pem(full.as_bytes(), Path::new("f"))
                .expect("parse cert pem")
                .has_chain
        );
        let err =
            parse_cert_pem(b"garbage", Path::new("g.pem")).expect_err("parse cert pem should fail");
        assert!(err.to_string().contains("g.pem"), "{err}");
    }

    #[tokio::test]
    async fn not_due_does_not_call_the_appliance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = setup(dir.path(), false);
        let mut fake = Fake::new(SAME_KEY, "");
        let now = at(OLD_NOT_AFTER - 31 * DAY);
        let outcome = check_once(&mut fake, &config, now)
            .await
            .expect("check_once");
        match outcome {
            Outcome::NotDue { remaining, .. } => {
                assert_eq!(remaining, Duration::from_secs(31 * DAY));
            }
            other => panic!("{other:?}"),
        }
        assert!(fake.requests.is_empty());
        assert_eq!(
            std::fs::read_to_string(&config.cert).expect("read to string"),
            OLD
        );
    }

    #[tokio::test]
    async fn due_renews_the_same_key_and_keeps_the_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = setup(dir.path(), false);
        config.ttl = Some(Duration::from_secs(90 * DAY));
        let mut fake = Fake::new(SAME_KEY, "UNEXPECTED KEY");
        let now = at(OLD_NOT_AFTER - 29 * DAY);
        let outcome = check_once(&mut fake, &config, now)
            .await
            .expect("check_once");
        let Outcome::Renewed {
            certificate,
            key_rotated,
            written,
            still_due,
            ..
        } = outcome
        else {
            panic!("not renewed");
        };
        assert_eq!(certificate.serial, "00a1b2c3d4e5f60718");
        assert!(!key_rotated && !still_due);
        assert_eq!(written, [config.cert.clone()]);
        assert_eq!(fake.requests.len(), 1);
        let request = &fake.requests[0];
        assert_eq!(request.serial, "1a2b3c4d5e6f7081");
        assert!(!request.new_key && request.csr.is_empty());
        assert_eq!(request.ttl.map(|d| d.seconds), Some(90 * 86_400));
        assert_eq!(
            std::fs::read_to_string(&config.cert).expect("read to string"),
            SAME_KEY
        );
        assert_eq!(
            std::fs::read_to_string(&config.key).expect("read to string"),
            "OLD KEY"
        );
        let mode = std::fs::metadata(&config.cert)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(entries(dir.path()), ["tls.crt", "tls.key"]);
    }

    #[tokio::test]
    async fn rotate_key_replaces_the_key_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = setup(dir.path(), true);
        config.chain = Some(dir.path().join("chain.pem"));
        let mut fake = Fake::new(ROTATED, NEW_KEY);
        let now = at(OLD_NOT_AFTER + DAY); // already expired
        let outcome = check_once(&mut fake, &config, now)
            .await
            .expect("check_once");
        assert!(matches!(
            outcome,
            Outcome::Renewed {
                key_rotated: true,
                ..
            }
        ));
        assert!(fake.requests[0].new_key);
        assert_eq!(
            std::fs::read_to_string(&config.key).expect("read to string"),
            NEW_KEY
        );
        let mode = std::fs::metadata(&config.key)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(&config.cert).expect("read to string"),
            ROTATED
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("chain.pem")).expect("read to string"),
            "CHAIN\n"
        );
        assert_eq!(entries(dir.path()), ["chain.pem", "tls.crt", "tls.key"]);
    }

    #[tokio::test]
    async fn a_full_chain_file_stays_a_full_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = setup(dir.path(), false);
        std::fs::write(&config.cert, format!("{OLD}{ROTATED}")).expect("write");
        let mut fake = Fake::new(SAME_KEY, "");
        check_once(&mut fake, &config, at(OLD_NOT_AFTER))
            .await
            .expect("check_once");
        assert_eq!(
            std::fs::read_to_string(&config.cert).expect("read to string"),
            format!("{SAME_KEY}CHAIN\n")
        );
    }

    #[tokio::test]
    async fn refuses_a_renewal_that_would_not_match_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = setup(dir.path(), false);
        // Without --rotate-key, a certificate for another key is refused.
        let mut fake = Fake::new(ROTATED, "");
        let err = check_once(&mut fake, &config, at(OLD_NOT_AFTER))
            .await
            .expect_err("check_once should fail");
        assert!(err.to_string().contains("different public key"), "{err:#}");
        assert_eq!(
            std::fs::read_to_string(&config.cert).expect("read to string"),
            OLD
        );
        // With --rotate-key, a missing private key is refused.
        let config = setup(dir.path(), true);
        let mut fake = Fake::new(ROTATED, "");
        let err = check_once(&mut fake, &config, at(OLD_NOT_AFTER))
            .await
            .expect_err("check_once should fail");
        assert!(err.to_string().contains("no new private key"), "{err:#}");
        assert_eq!(
            std::fs::read_to_string(&config.key).expect("read to string"),
            "OLD KEY"
        );
        assert_eq!(entries(dir.path()), ["tls.crt", "tls.key"]);
    }

    #[tokio::test]
    async fn a_failed_renewal_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = setup(dir.path(), true);
        let mut fake = Fake::new(ROTATED, NEW_KEY);
        fake.fail = true;
        let err = check_once(&mut fake, &config, at(OLD_NOT_AFTER))
            .await
            .expect_err("check_once should fail");
        assert!(err.to_string().contains("Unavailable"), "{err:#}");
        assert_eq!(
            std::fs::read_to_string(&config.cert).expect("read to string"),
            OLD
        );
        assert_eq!(
            std::fs::read_to_string(&config.key).expect("read to string"),
            "OLD KEY"
        );
    }

    #[tokio::test]
    async fn a_renewal_shorter_than_the_threshold_is_flagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = setup(dir.path(), false);
        config.threshold = Duration::from_secs(1000 * DAY);
        let mut fake = Fake::new(SAME_KEY, "");
        let outcome = check_once(&mut fake, &config, at(OLD_NOT_AFTER - 29 * DAY))
            .await
            .expect("check_once");
        assert!(matches!(
            outcome,
            Outcome::Renewed {
                still_due: true,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn reload_failures_are_reported() {
        run_reload("true").await.expect("reload");
        let err = run_reload("exit 3")
            .await
            .expect_err("reload should fail")
            .to_string();
        assert!(err.contains("`exit 3`"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
    }
}
