//! `strongroom status`: the operator's one-screen summary of a running
//! appliance (`Sys.Status`): seal state, HSM health and session pool, CA
//! certificates and their expiry, certificates by status, transit key
//! rotation and KEK re-wrap, the audit trail's health, and the recommended
//! actions. Informational: it exits 0 whatever the appliance's state, and 1
//! only when the appliance cannot be asked.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use strongroom_proto::v1::sys_client::SysClient;
use strongroom_proto::v1::{
    AuditTrailStatus, CaCertificateSummary, CertificateCounts, HsmPoolStatus, StatusRequest,
    StatusResponse, TransitSummary,
};

use super::client::{ConnectionArgs, OutputFormat, rpc_error};
use super::output::{print_json, timestamp};

/// Options of `strongroom status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom status\n  \
    strongroom status --output json | jq -r '.recommended_actions[]'")]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Runs `strongroom status`.
pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    super::run_async(status(args))
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut client = SysClient::new(args.conn.connect().await?);
    let status = client
        .status(StatusRequest {})
        .await
        .map_err(|s| rpc_error("get status", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&StatusJson::from(&status)),
        OutputFormat::Text => {
            print!("{}", status_text(&status, SystemTime::now()));
            Ok(())
        }
    }
}

/// `strongroom status --output json`: the proto `StatusResponse` fields
/// under their proto names; times RFC 3339 UTC, durations like `30d`;
/// `null` for what is unknown while sealed.
#[derive(Debug, Serialize)]
struct StatusJson {
    /// The appliance's version.
    version: String,
    /// Whether the appliance has been initialised.
    initialized: bool,
    /// Whether it is sealed.
    sealed: bool,
    /// `ready`, `unavailable: …`, `login refused` or `sealed`.
    hsm_status: String,
    /// The token's label.
    hsm_token: String,
    /// The token's session pool.
    hsm_pool: Option<HsmPoolJson>,
    /// When the server started.
    started_at: Option<String>,
    /// Certificates signed: issued and revoked.
    certificates_issued: u64,
    /// The issuing CA's certificate.
    issuing_ca: Option<CaCertificateJson>,
    /// The certificates above it, root last.
    chain: Vec<CaCertificateJson>,
    /// The inventory by status.
    certificates: Option<CountsJson>,
    /// Transit rotation and re-wrap.
    transit: Option<TransitJson>,
    /// The audit trail's health.
    audit: Option<AuditJson>,
    /// What to do, most urgent first; `[]` when nothing needs doing.
    recommended_actions: Vec<String>,
}

/// `hsm_pool` in JSON.
#[derive(Debug, Serialize)]
struct HsmPoolJson {
    /// Working sessions the pool may open.
    capacity: u32,
    /// Working sessions open.
    open: u32,
    /// Of those, idle.
    idle: u32,
}

/// A CA certificate in JSON.
#[derive(Debug, Serialize)]
struct CaCertificateJson {
    /// Subject, RFC 4514.
    subject: String,
    /// Serial, lower-case hex.
    serial: String,
    /// End of validity, RFC 3339 UTC.
    not_after: Option<String>,
}

/// `certificates` in JSON.
#[derive(Debug, Serialize)]
struct CountsJson {
    /// Recorded, not signed.
    pending: u64,
    /// Signed, not revoked.
    issued: u64,
    /// Revoked.
    revoked: u64,
    /// Issued, expiring within `expiring_window`.
    expiring: u64,
    /// Like `30d`.
    expiring_window: Option<String>,
}

/// `transit` in JSON.
#[derive(Debug, Serialize)]
struct TransitJson {
    /// Whether transit is configured.
    enabled: bool,
    /// Keys overdue for rotation.
    keys_overdue: u64,
    /// Like `365d`.
    rotation_max_age: Option<String>,
    /// The KEK wrapping new versions.
    current_kek: String,
    /// Versions a retired KEK still wraps.
    kek_versions_to_rewrap: u64,
    /// Whether the background re-wrap has work left.
    kek_rewrap_pending: bool,
}

/// `audit` in JSON.
#[derive(Debug, Serialize)]
struct AuditJson {
    /// The last write succeeded.
    healthy: bool,
    /// What is or went wrong, or `""`.
    problem: String,
    /// The file being written.
    current_file: String,
    /// The last record's sequence number.
    last_seq: u64,
    /// Records that no sink could write since the server started.
    records_failed: u64,
    /// Each sink, the file sink first.
    sinks: Vec<AuditSinkJson>,
}

/// One of `audit.sinks` in JSON.
#[derive(Debug, Serialize)]
struct AuditSinkJson {
    /// `file` or `syslog`.
    kind: String,
    /// The file being written, or the syslog receiver.
    target: String,
    /// Its last write succeeded.
    healthy: bool,
    /// What is or went wrong, or `""`.
    problem: String,
    /// Records it wrote since the server started.
    records_written: u64,
    /// Records it could not write since the server started.
    records_failed: u64,
}

impl From<&StatusResponse> for StatusJson {
    fn from(s: &StatusResponse) -> Self {
        StatusJson {
            version: s.version.clone(),
            initialized: s.initialized,
            sealed: s.sealed,
            hsm_status: s.hsm_status.clone(),
            hsm_token: s.hsm_token.clone(),
            hsm_pool: s.hsm_pool.as_ref().map(|p| HsmPoolJson {
                capacity: p.capacity,
                open: p.open,
                idle: p.idle,
            }),
            started_at: s.started_at.as_ref().and_then(timestamp),
            certificates_issued: s.certificates_issued,
            issuing_ca: s.issuing_ca.as_ref().map(CaCertificateJson::from),
            chain: s.chain.iter().map(CaCertificateJson::from).collect(),
            certificates: s.certificates.as_ref().map(|c| CountsJson {
                pending: c.pending,
                issued: c.issued,
                revoked: c.revoked,
                expiring: c.expiring,
                expiring_window: c.expiring_window.as_ref().map(duration_text),
            }),
            transit: s.transit.as_ref().map(|t| TransitJson {
                enabled: t.enabled,
                keys_overdue: t.keys_overdue,
                rotation_max_age: t.rotation_max_age.as_ref().map(duration_text),
                current_kek: t.current_kek.clone(),
                kek_versions_to_rewrap: t.kek_versions_to_rewrap,
                kek_rewrap_pending: t.kek_rewrap_pending,
            }),
            audit: s.audit.as_ref().map(|a| AuditJson {
                healthy: a.healthy,
                problem: a.problem.clone(),
                current_file: a.current_file.clone(),
                last_seq: a.last_seq,
                records_failed: a.records_failed,
                sinks: a
                    .sinks
                    .iter()
                    .map(|sink| AuditSinkJson {
                        kind: sink.kind.clone(),
                        target: sink.target.clone(),
                        healthy: sink.healthy,
                        problem: sink.problem.clone(),
                        records_written: sink.records_written,
                        records_failed: sink.records_failed,
                    })
                    .collect(),
            }),
            recommended_actions: s.recommended_actions.clone(),
        }
    }
}

impl From<&CaCertificateSummary> for CaCertificateJson {
    fn from(c: &CaCertificateSummary) -> Self {
        CaCertificateJson {
            subject: c.subject.clone(),
            serial: c.serial.clone(),
            not_after: c.not_after.as_ref().and_then(timestamp),
        }
    }
}

/// A wire duration like `30d` (`0s` if negative).
fn duration_text(d: &prost_types::Duration) -> String {
    strongroom_ca::format_duration(Duration::from_secs(u64::try_from(d.seconds).unwrap_or(0)))
}

/// What a section shows while the appliance is sealed.
const SEALED: &str = "  unknown while sealed\n";

/// The text form: sections Seal, HSM, Issuers, Certificates, Transit and
/// Audit, then the recommended actions; about 20 lines. `now` dates the
/// CA certificates' remaining days.
fn status_text(s: &StatusResponse, now: SystemTime) -> String {
    let mut out = String::new();
    let state = match (s.initialized, s.sealed) {
        (false, _) => "not initialised",
        (true, true) => "sealed",
        (true, false) => "unsealed",
    };
    let started = s
        .started_at
        .as_ref()
        .and_then(timestamp)
        .map(|t| format!(", started {t}"))
        .unwrap_or_default();
    let _ = writeln!(out, "Seal:\n  {state} (strongroom {}{started})", s.version);

    let _ = writeln!(out, "HSM:\n  token {}: {}", s.hsm_token, s.hsm_status);
    if let Some(pool) = &s.hsm_pool {
        out.push_str(&pool_text(pool));
    }

    out.push_str("Issuers:\n");
    match &s.issuing_ca {
        None => out.push_str(SEALED),
        Some(issuing) => {
            let _ = writeln!(out, "  issuing CA: {}", ca_text(issuing, now));
            for c in &s.chain {
                let _ = writeln!(out, "  chain: {}", ca_text(c, now));
            }
        }
    }

    out.push_str("Certificates:\n");
    match &s.certificates {
        None => out.push_str(SEALED),
        Some(c) => out.push_str(&counts_text(c)),
    }

    out.push_str("Transit:\n");
    match &s.transit {
        None => out.push_str(SEALED),
        Some(t) => out.push_str(&transit_text(t)),
    }

    out.push_str("Audit:\n");
    match &s.audit {
        None => out.push_str("  not reported\n"),
        Some(a) => out.push_str(&audit_text(a)),
    }

    if s.recommended_actions.is_empty() {
        out.push_str("Recommended actions: none\n");
    } else {
        out.push_str("Recommended actions:\n");
        for action in &s.recommended_actions {
            let _ = writeln!(out, "  - {action}");
        }
    }
    out
}

fn pool_text(pool: &HsmPoolStatus) -> String {
    format!(
        "  sessions: {} in use, {} idle, {} at most\n",
        pool.open.saturating_sub(pool.idle),
        pool.idle,
        pool.capacity
    )
}

/// One CA certificate: subject, serial, expiry and days left at `now`.
fn ca_text(c: &CaCertificateSummary, now: SystemTime) -> String {
    let expiry = match c.not_after.as_ref() {
        None => "expiry unknown".to_string(),
        Some(ts) => {
            let at = timestamp(ts).unwrap_or_else(|| format!("{}s after 1970", ts.seconds));
            let now = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            match ts.seconds.saturating_sub(now) {
                left if left < 0 => format!("expired {at}"),
                left => format!("expires {at} ({} days left)", left / 86_400),
            }
        }
    };
    format!("{}, serial {}, {expiry}", c.subject, c.serial)
}

fn counts_text(c: &CertificateCounts) -> String {
    let window = c
        .expiring_window
        .as_ref()
        .map_or_else(|| "the window".to_string(), duration_text);
    format!(
        "  {} issued, {} pending, {} revoked\n  {} issued expiring within {window}\n",
        c.issued, c.pending, c.revoked, c.expiring
    )
}

fn transit_text(t: &TransitSummary) -> String {
    if !t.enabled {
        return "  not enabled (no transit.wrapping_key)\n".to_string();
    }
    let max_age = t
        .rotation_max_age
        .as_ref()
        .map_or_else(|| "the maximum age".to_string(), duration_text);
    let rewrap = match (t.kek_versions_to_rewrap, t.kek_rewrap_pending) {
        (0, false) => "nothing to re-wrap".to_string(),
        (0, true) => "re-wrap retrying".to_string(),
        (n, _) => format!("{n} key versions to re-wrap"),
    };
    format!(
        "  {} keys overdue for rotation (latest version older than {max_age})\n  KEK {}, {rewrap}\n",
        t.keys_overdue, t.current_kek
    )
}

fn audit_text(a: &AuditTrailStatus) -> String {
    let health = if a.healthy { "healthy" } else { "cannot write" };
    let mut text = format!(
        "  {health}, last record {} in {}\n",
        a.last_seq, a.current_file
    );
    if !a.problem.is_empty() || a.records_failed > 0 {
        let problem = if a.problem.is_empty() {
            "-"
        } else {
            a.problem.as_str()
        };
        let _ = writeln!(
            text,
            "  {} records failed; last problem: {problem}",
            a.records_failed
        );
    }
    // With several sinks (the files and syslog), one line each.
    if a.sinks.len() > 1 {
        for sink in &a.sinks {
            let name = match sink.kind.as_str() {
                "file" => "files".to_string(),
                kind => format!("{kind} {}", sink.target),
            };
            let health = if sink.healthy {
                "healthy"
            } else {
                "cannot write"
            };
            let _ = write!(
                text,
                "  {name}: {health}, {} records written, {} failed",
                sink.records_written, sink.records_failed
            );
            if !sink.problem.is_empty() {
                let _ = write!(text, "; last problem: {}", sink.problem);
            }
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_proto::v1::AuditSinkStatus;

    const DAY: i64 = 86_400;
    /// 2026-01-01T00:00:00Z.
    const NOW: i64 = 1_767_225_600;

    fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn days(n: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration {
            seconds: n * DAY,
            nanos: 0,
        })
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW as u64)
    }

    fn audit() -> Option<AuditTrailStatus> {
        Some(AuditTrailStatus {
            healthy: true,
            problem: String::new(),
            current_file: "/data/audit/audit-00000000000000000001.jsonl".into(),
            last_seq: 42,
            records_failed: 0,
            sinks: Vec::new(),
        })
    }

    fn unsealed() -> StatusResponse {
        StatusResponse {
            version: "0.1.0".into(),
            sealed: false,
            initialized: true,
            hsm_status: "ready".into(),
            hsm_token: "strongroom-dev".into(),
            certificates_issued: 5,
            started_at: ts(NOW - DAY),
            hsm_pool: Some(HsmPoolStatus {
                capacity: 4,
                open: 3,
                idle: 1,
            }),
            issuing_ca: Some(CaCertificateSummary {
                subject: "CN=Dev Issuing CA".into(),
                serial: "0a".into(),
                not_after: ts(NOW + 20 * DAY + 3_600),
            }),
            chain: vec![CaCertificateSummary {
                subject: "CN=Dev Root CA".into(),
                serial: "01".into(),
                not_after: ts(NOW - DAY),
            }],
            certificates: Some(CertificateCounts {
                pending: 1,
                issued: 4,
                revoked: 1,
                expiring: 2,
                expiring_window: days(30),
            }),
            transit: Some(TransitSummary {
                enabled: true,
                keys_overdue: 3,
                rotation_max_age: days(365),
                current_kek: "transit-kek".into(),
                kek_versions_to_rewrap: 7,
                kek_rewrap_pending: true,
            }),
            audit: audit(),
            recommended_actions: vec!["Do one thing".into(), "Do another".into()],
        }
    }

    #[test]
    fn the_command_parses_as_main_mounts_it() {
        use clap::{CommandFactory, Parser};
        #[derive(Debug, Parser)]
        #[command(name = "strongroom")]
        enum TestCli {
            /// Status.
            Status(StatusArgs),
        }
        TestCli::command().debug_assert();
        let TestCli::Status(args) =
            TestCli::try_parse_from(["strongroom", "status", "--output", "json"]).expect("parse");
        assert_eq!(args.conn.output, OutputFormat::Json);
        let e = TestCli::try_parse_from(["strongroom", "status", "extra"])
            .expect_err("no positional arguments");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn text_has_every_section_and_fits_one_screen() {
        let text = status_text(&unsealed(), now());
        let expected = "\
Seal:
  unsealed (strongroom 0.1.0, started 2025-12-31T00:00:00Z)
HSM:
  token strongroom-dev: ready
  sessions: 2 in use, 1 idle, 4 at most
Issuers:
  issuing CA: CN=Dev Issuing CA, serial 0a, expires 2026-01-21T01:00:00Z (20 days left)
  chain: CN=Dev Root CA, serial 01, expired 2025-12-31T00:00:00Z
Certificates:
  4 issued, 1 pending, 1 revoked
  2 issued expiring within 30d
Transit:
  3 keys overdue for rotation (latest version older than 365d)
  KEK transit-kek, 7 key versions to re-wrap
Audit:
  healthy, last record 42 in /data/audit/audit-00000000000000000001.jsonl
Recommended actions:
  - Do one thing
  - Do another
";
        assert_eq!(text, expected);
        assert!(text.lines().count() <= 24);
    }

    #[test]
    fn sealed_text_says_what_is_unknown() {
        let sealed = StatusResponse {
            version: "0.1.0".into(),
            sealed: true,
            initialized: true,
            hsm_status: "sealed".into(),
            hsm_token: "strongroom-dev".into(),
            audit: Some(AuditTrailStatus {
                healthy: false,
                problem: "No space left on device".into(),
                records_failed: 2,
                ..audit().expect("audit")
            }),
            recommended_actions: vec!["Unseal the appliance: …".into()],
            ..StatusResponse::default()
        };
        let text = status_text(&sealed, now());
        for header in [
            "Seal:\n  sealed (strongroom 0.1.0)\n",
            "HSM:\n  token strongroom-dev: sealed\nIssuers:\n  unknown while sealed\n",
            "Certificates:\n  unknown while sealed\n",
            "Transit:\n  unknown while sealed\n",
            "Audit:\n  cannot write, last record 42 in",
            "  2 records failed; last problem: No space left on device\n",
            "Recommended actions:\n  - Unseal the appliance: …\n",
        ] {
            assert!(text.contains(header), "{header:?} in\n{text}");
        }
        let fresh = StatusResponse {
            initialized: false,
            ..sealed
        };
        assert!(status_text(&fresh, now()).starts_with("Seal:\n  not initialised"));
    }

    #[test]
    fn each_sink_has_a_line_when_there_are_several() {
        let sink = |kind: &str, target: &str, healthy, problem: &str, failed| AuditSinkStatus {
            kind: kind.into(),
            target: target.into(),
            healthy,
            problem: problem.into(),
            records_written: 40,
            records_failed: failed,
        };
        let two = StatusResponse {
            audit: Some(AuditTrailStatus {
                problem: "/data/audit: No space left on device".into(),
                sinks: vec![
                    sink(
                        "file",
                        "/data/audit/audit-00000000000000000001.jsonl",
                        false,
                        "/data/audit: No space left on device",
                        2,
                    ),
                    sink("syslog", "udp://logs.test:514", true, "", 0),
                ],
                ..audit().expect("audit")
            }),
            ..unsealed()
        };
        let text = status_text(&two, now());
        let expected = "Audit:
  healthy, last record 42 in /data/audit/audit-00000000000000000001.jsonl
  0 records failed; last problem: /data/audit: No space left on device
  files: cannot write, 40 records written, 2 failed; last problem: /data/audit: No space left on device
  syslog udp://logs.test:514: healthy, 40 records written, 0 failed
Recommended actions:";
        assert!(text.contains(expected), "{text}");
        let json = serde_json::to_value(StatusJson::from(&two)).expect("json");
        assert_eq!(json["audit"]["sinks"][0]["kind"], "file");
        assert_eq!(json["audit"]["sinks"][0]["healthy"], false);
        assert_eq!(json["audit"]["sinks"][0]["records_failed"], 2);
        assert_eq!(json["audit"]["sinks"][1]["target"], "udp://logs.test:514");
        assert_eq!(json["audit"]["sinks"][1]["records_written"], 40);
        // One sink: nothing more than before.
        let one = status_text(&unsealed(), now());
        assert!(!one.contains("files:"), "{one}");
    }

    #[test]
    fn no_action_prints_none_and_disabled_transit_says_so() {
        let quiet = StatusResponse {
            recommended_actions: Vec::new(),
            transit: Some(TransitSummary::default()),
            ..unsealed()
        };
        let text = status_text(&quiet, now());
        assert!(text.ends_with("Recommended actions: none\n"), "{text}");
        assert!(
            text.contains("Transit:\n  not enabled (no transit.wrapping_key)\n"),
            "{text}"
        );
    }

    #[test]
    fn json_mirrors_the_proto_fields() {
        let json = serde_json::to_value(StatusJson::from(&unsealed())).expect("json");
        assert_eq!(json["sealed"], false);
        assert_eq!(json["initialized"], true);
        assert_eq!(json["hsm_status"], "ready");
        assert_eq!(json["hsm_pool"]["capacity"], 4);
        assert_eq!(json["hsm_pool"]["open"], 3);
        assert_eq!(json["hsm_pool"]["idle"], 1);
        assert_eq!(json["issuing_ca"]["not_after"], "2026-01-21T01:00:00Z");
        assert_eq!(json["chain"][0]["subject"], "CN=Dev Root CA");
        assert_eq!(json["certificates"]["expiring"], 2);
        assert_eq!(json["certificates"]["expiring_window"], "30d");
        assert_eq!(json["transit"]["rotation_max_age"], "365d");
        assert_eq!(json["transit"]["kek_versions_to_rewrap"], 7);
        assert_eq!(json["audit"]["last_seq"], 42);
        assert_eq!(json["recommended_actions"][1], "Do another");
        let sealed = serde_json::to_value(StatusJson::from(&StatusResponse {
            sealed: true,
            ..StatusResponse::default()
        }))
        .expect("json");
        for absent in ["hsm_pool", "issuing_ca", "certificates", "transit", "audit"] {
            assert!(sealed[absent].is_null(), "{absent}: {sealed}");
        }
        assert_eq!(sealed["chain"], serde_json::json!([]));
    }
}
