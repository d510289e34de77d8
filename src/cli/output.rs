//! What the client prints: JSON documents with stable snake_case field names
//! mirroring the proto messages, and the text forms for people.
//!
//! The JSON field names and value formats are part of the CLI contract
//! (scripts parse them); change them only by adding fields.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use strongroom_proto::v1::{Certificate, CertificateStatus, ChainResponse};

/// A [`Certificate`] as printed in JSON: the proto fields under their proto
/// names, the status as a lower-case word and timestamps as RFC 3339 UTC.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct CertificateJson {
    /// Serial number, lower-case hex.
    pub(crate) serial: String,
    /// `pending`, `issued` or `revoked` (`unspecified` or `unknown` only from
    /// a misbehaving server).
    pub(crate) status: &'static str,
    /// Issuance profile.
    pub(crate) profile: String,
    /// Subject DN, RFC 4514.
    pub(crate) subject: String,
    /// Subject alternative names, `DNS:`/`IP:`/`URI:` prefixed.
    pub(crate) sans: Vec<String>,
    /// Start of validity, RFC 3339 UTC, or null if the server sent none.
    pub(crate) not_before: Option<String>,
    /// End of validity, RFC 3339 UTC, or null if the server sent none.
    pub(crate) not_after: Option<String>,
    /// When the request was recorded, RFC 3339 UTC, or null.
    pub(crate) issued_at: Option<String>,
    /// Identity of the requester.
    pub(crate) requester: String,
    /// Serial this certificate renewed, or "".
    pub(crate) renewal_of: String,
    /// When it was revoked, RFC 3339 UTC, or null.
    pub(crate) revoked_at: Option<String>,
    /// Why it was revoked (RFC 5280 name), or null.
    pub(crate) revocation_reason: Option<String>,
    /// The certificate, PEM ("" while pending).
    pub(crate) pem: String,
}

impl From<&Certificate> for CertificateJson {
    fn from(c: &Certificate) -> Self {
        CertificateJson {
            serial: c.serial.clone(),
            status: status_name(c.status),
            profile: c.profile.clone(),
            subject: c.subject.clone(),
            sans: c.sans.clone(),
            not_before: c.not_before.as_ref().and_then(timestamp),
            not_after: c.not_after.as_ref().and_then(timestamp),
            issued_at: c.issued_at.as_ref().and_then(timestamp),
            requester: c.requester.clone(),
            renewal_of: c.renewal_of.clone(),
            revoked_at: c.revoked_at.as_ref().and_then(timestamp),
            revocation_reason: c.revoked_at.as_ref().map(|_| {
                u8::try_from(c.revocation_reason)
                    .ok()
                    .and_then(strongroom_ca::RevocationReason::from_code)
                    .map_or_else(
                        || format!("reason {}", c.revocation_reason),
                        |r| r.name().to_string(),
                    )
            }),
            pem: c.pem.clone(),
        }
    }
}

/// The JSON result of `cert revoke`.
#[derive(Debug, Serialize)]
pub(crate) struct RevokeJson {
    /// False when it was already revoked for this reason.
    pub(crate) changed: bool,
    /// The certificate after the call.
    pub(crate) certificate: CertificateJson,
}

/// The JSON result of `crl get`: the CRL's facts and where it went.
#[derive(Debug, Serialize)]
pub(crate) struct CrlJson {
    /// CRL number.
    pub(crate) number: u64,
    /// thisUpdate, RFC 3339 UTC.
    pub(crate) this_update: Option<String>,
    /// nextUpdate, RFC 3339 UTC.
    pub(crate) next_update: Option<String>,
    /// For a delta CRL, its base CRL number; null otherwise.
    pub(crate) base_number: Option<u64>,
    /// Where the CRL was written, or null.
    pub(crate) file: Option<String>,
    /// The CRL as PEM.
    pub(crate) pem: String,
}

impl CrlJson {
    /// The JSON for `crl`, written to `file` if any.
    pub(crate) fn new(crl: &strongroom_proto::v1::CrlResponse, file: Option<&Path>) -> Self {
        CrlJson {
            number: crl.number,
            this_update: crl.this_update.as_ref().and_then(timestamp),
            next_update: crl.next_update.as_ref().and_then(timestamp),
            base_number: (crl.base_number != 0).then_some(crl.base_number),
            file: path_string(file),
            pem: strongroom_ca::pem("X509 CRL", &crl.der),
        }
    }
}

/// The JSON result of `cert issue` and `cert renew`: the issued certificate,
/// the chain, and the files written. The private key is never included.
#[derive(Debug, Serialize)]
pub(crate) struct IssueJson {
    /// The new certificate.
    pub(crate) certificate: CertificateJson,
    /// The CA chain to install next to it (issuing CA first, root last).
    pub(crate) chain_pem: String,
    /// Where the certificate was written, or null.
    pub(crate) cert_file: Option<String>,
    /// Where the server-generated private key was written, or null.
    pub(crate) key_file: Option<String>,
    /// Where the chain was written, or null.
    pub(crate) chain_file: Option<String>,
}

/// The JSON result of `cert list`.
#[derive(Debug, Serialize)]
pub(crate) struct ListJson {
    /// The certificates, newest first.
    pub(crate) certificates: Vec<CertificateJson>,
    /// Token for the next page; "" when there is none (always "" with --all).
    pub(crate) next_page_token: String,
}

/// The JSON result of `ca chain`.
#[derive(Debug, Serialize)]
pub(crate) struct ChainJson {
    /// All CA certificates concatenated, issuing CA first.
    pub(crate) chain_pem: String,
    /// Each CA certificate, issuing CA first, root last.
    pub(crate) certificates_pem: Vec<String>,
}

impl From<&ChainResponse> for ChainJson {
    fn from(c: &ChainResponse) -> Self {
        ChainJson {
            chain_pem: c.chain_pem.clone(),
            certificates_pem: c.certificates_pem.clone(),
        }
    }
}

/// The lower-case name of a wire status value.
pub(crate) fn status_name(status: i32) -> &'static str {
    match CertificateStatus::try_from(status) {
        Ok(CertificateStatus::Unspecified) => "unspecified",
        Ok(CertificateStatus::Pending) => "pending",
        Ok(CertificateStatus::Issued) => "issued",
        Ok(CertificateStatus::Revoked) => "revoked",
        Err(_) => "unknown",
    }
}

/// A wire timestamp as RFC 3339 UTC with second precision
/// (`2026-01-31T12:00:00Z`), or `None` if it is outside years 1970–9999.
pub(crate) fn timestamp(ts: &prost_types::Timestamp) -> Option<String> {
    let secs = u64::try_from(ts.seconds).ok()?;
    der::DateTime::from_unix_duration(Duration::from_secs(secs))
        .ok()
        .map(|d| d.to_string())
}

/// A system time as RFC 3339 UTC with second precision.
pub(crate) fn system_time(t: SystemTime) -> String {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => der::DateTime::from_unix_duration(Duration::from_secs(d.as_secs()))
            .map(|d| d.to_string())
            .unwrap_or_else(|_| format!("{}s after 1970", d.as_secs())),
        Err(_) => "before 1970".to_owned(),
    }
}

/// Prints one JSON document on stdout.
pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

/// A path as printed in JSON and messages.
pub(crate) fn path_string(path: Option<&Path>) -> Option<String> {
    path.map(|p| p.display().to_string())
}

/// `-` for an empty value, in text output.
fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// The readable summary of `cert show`, followed by the PEM.
pub(crate) fn certificate_text(c: &Certificate) -> String {
    let j = CertificateJson::from(c);
    let time = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".to_owned());
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        out.push_str(&format!("{name:<12}{value}\n"));
    };
    line("serial:", &j.serial);
    line("status:", j.status);
    line("profile:", or_dash(&j.profile));
    line("subject:", or_dash(&j.subject));
    line("sans:", or_dash(&j.sans.join(", ")));
    line("not before:", &time(&j.not_before));
    line("not after:", &time(&j.not_after));
    line("issued at:", &time(&j.issued_at));
    line("requester:", or_dash(&j.requester));
    line("renewal of:", or_dash(&j.renewal_of));
    if let Some(at) = &j.revoked_at {
        let reason = j.revocation_reason.as_deref().unwrap_or("-");
        line("revoked:", &format!("{at} ({reason})"));
    }
    out.push_str(&pem_text(&j.pem));
    out
}

/// One line per certificate for `cert list`: serial, status, not_after,
/// profile, subject, in columns aligned within `certs`.
pub(crate) fn list_lines(certs: &[Certificate]) -> Vec<String> {
    let rows: Vec<CertificateJson> = certs.iter().map(CertificateJson::from).collect();
    let serial_w = rows.iter().map(|r| r.serial.len()).max().unwrap_or(0);
    let profile_w = rows
        .iter()
        .map(|r| or_dash(&r.profile).len())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|r| {
            let line = format!(
                "{:<serial_w$}  {:<7}  {:<20}  {:<profile_w$}  {}",
                r.serial,
                r.status,
                r.not_after.as_deref().unwrap_or("-"),
                or_dash(&r.profile),
                or_dash(&r.subject),
            );
            line.trim_end().to_owned()
        })
        .collect()
}

/// PEM text ending with exactly one newline ("" stays "").
pub(crate) fn pem_text(pem: &str) -> String {
    let trimmed = pem.trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Certificate {
        Certificate {
            serial: "3f9a0c11".into(),
            pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            profile: "server".into(),
            status: CertificateStatus::Issued as i32,
            subject: "CN=api.example.test".into(),
            sans: vec!["DNS:api.example.test".into(), "IP:192.0.2.10".into()],
            not_before: Some(prost_types::Timestamp {
                seconds: 1_767_225_600, // 2026-01-01T00:00:00Z
                nanos: 0,
            }),
            not_after: Some(prost_types::Timestamp {
                seconds: 1_798_761_600, // 2027-01-01T00:00:00Z
                nanos: 500,
            }),
            requester: "CN=ops".into(),
            issued_at: None,
            renewal_of: String::new(),
            revoked_at: None,
            revocation_reason: 0,
            crl_partition: 0,
        }
    }

    #[test]
    fn certificate_json_has_stable_field_names_and_formats() {
        let value = serde_json::to_value(CertificateJson::from(&sample())).expect("to value");
        let expected = serde_json::json!({
            "serial": "3f9a0c11",
            "status": "issued",
            "profile": "server",
            "subject": "CN=api.example.test",
            "sans": ["DNS:api.example.test", "IP:192.0.2.10"],
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": "2027-01-01T00:00:00Z",
            "issued_at": null,
            "requester": "CN=ops",
            "renewal_of": "",
            "revoked_at": null,
            "revocation_reason": null,
            "pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        });
        assert_eq!(value, expected);
        let revoked = Certificate {
            status: CertificateStatus::Revoked as i32,
            revoked_at: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
            revocation_reason: 1,
            ..sample()
        };
        let json = CertificateJson::from(&revoked);
        assert_eq!(json.revoked_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(json.revocation_reason.as_deref(), Some("keyCompromise"));
        assert!(
            certificate_text(&revoked).contains("revoked:    2026-01-01T00:00:00Z (keyCompromise)")
        );
        // Field order is the proto's reading order, for people reading JSON.
        let text = serde_json::to_string(&CertificateJson::from(&sample())).expect("to string");
        let pos = |k: &str| text.find(&format!("\"{k}\"")).expect("find");
        assert!(pos("serial") < pos("status") && pos("not_after") < pos("pem"));
    }

    #[test]
    fn issue_json_never_has_a_private_key_field() {
        let value = serde_json::to_value(IssueJson {
            certificate: CertificateJson::from(&sample()),
            chain_pem: "chain".into(),
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            chain_file: None,
        })
        .expect("to_value");
        // serde_json's map is sorted by key.
        let keys: Vec<&String> = value.as_object().expect("as object").keys().collect();
        assert_eq!(
            keys,
            [
                "cert_file",
                "certificate",
                "chain_file",
                "chain_pem",
                "key_file"
            ]
        );
        assert!(!value.to_string().contains("PRIVATE KEY"));
    }

    #[test]
    fn statuses_and_timestamps() {
        assert_eq!(status_name(CertificateStatus::Pending as i32), "pending");
        assert_eq!(status_name(CertificateStatus::Revoked as i32), "revoked");
        assert_eq!(status_name(99), "unknown");
        let ts = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
        assert_eq!(timestamp(&ts(0)).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(timestamp(&ts(-1)), None);
        assert_eq!(
            system_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_599)),
            "2026-12-31T23:59:59Z"
        );
    }

    #[test]
    fn text_forms() {
        let text = certificate_text(&sample());
        assert!(
            text.starts_with("serial:     3f9a0c11\nstatus:     issued\n"),
            "{text}"
        );
        assert!(text.contains("sans:       DNS:api.example.test, IP:192.0.2.10\n"));
        assert!(text.contains("renewal of: -\n"));
        assert!(text.ends_with("-----END CERTIFICATE-----\n"));

        let mut other = sample();
        other.serial = "01".into();
        other.profile = "client".into();
        let lines = list_lines(&[sample(), other]);
        assert_eq!(
            lines,
            [
                "3f9a0c11  issued   2027-01-01T00:00:00Z  server  CN=api.example.test",
                "01        issued   2027-01-01T00:00:00Z  client  CN=api.example.test",
            ]
        );
    }
}
