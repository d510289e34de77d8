//! The edge: wire requests become domain values here, and domain records
//! become wire messages.
//!
//! Every field of every request is checked before anything else runs, and
//! every problem found is reported at once ([`Failure::Invalid`], mapped to
//! `INVALID_ARGUMENT`). Messages name the field and quote at most
//! [`MAX_ECHO`] characters of what the caller sent, so an error can never
//! grow as large as the request. Names are only checked for syntax here; the
//! profile decides which ones are allowed (`strongroom_ca::Profile`).

use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use strongroom_ca::{
    CertFilter, CertRecord, CertStatus, CrlSeries, Csr, MAX_CRL_PARTITIONS, Names,
    RevocationReason, Serial, dns_name_problem, pem, uri_problem,
};
use strongroom_hsm::KeySpec;
use strongroom_proto::v1;

use super::status::Failure;

pub(crate) mod bootstrap;
pub(crate) mod transit;

/// Longest profile name accepted.
pub(crate) const MAX_PROFILE_LEN: usize = 64;

/// Longest common name accepted (X.520 `ub-common-name`).
pub(crate) const MAX_COMMON_NAME_LEN: usize = 64;

/// Most subject alternative names one request may carry (the profile limit).
pub(crate) use strongroom_ca::MAX_NAMES;

/// Longest URI accepted in a subject alternative name.
const MAX_URI_LEN: usize = 2048;

/// Page size when a listing asks for 0.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;

/// Largest page; larger requests are clamped to it.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;

/// Longest text accepted in a listing's `name_contains` or `requester` filter.
const MAX_FILTER_LEN: usize = 1024;

/// Longest page token accepted (the store's are far shorter).
const MAX_PAGE_TOKEN_LEN: usize = 64;

/// Most characters of caller input quoted back in an error message.
pub(crate) const MAX_ECHO: usize = 64;

/// The key type generated when a request names none.
pub(crate) const DEFAULT_KEY_TYPE: KeySpec = KeySpec::EcP256;

/// Caller input for an error message: at most [`MAX_ECHO`] characters, with
/// control characters escaped, in single quotes.
pub(crate) fn quoted(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .take(MAX_ECHO)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > MAX_ECHO {
        shown.push('…');
    }
    format!("'{shown}'")
}

/// Collects the problems of one request's fields.
#[derive(Debug, Default)]
struct Problems(Vec<String>);

impl Problems {
    /// The value, or `None` after recording why it is invalid.
    fn check<T>(&mut self, result: Result<T, String>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }

    /// `value` if no problem was recorded, else every problem.
    fn finish<T>(self, value: Option<T>) -> Result<T, Failure> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(Failure::Invalid(self.0)),
        }
    }
}

/// A profile name: 1 to [`MAX_PROFILE_LEN`] printable characters.
pub(crate) fn profile_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("profile: required (the issuance profile to apply, e.g. \"server\")".into());
    }
    if name.chars().count() > MAX_PROFILE_LEN {
        return Err(format!(
            "profile: {} is longer than {MAX_PROFILE_LEN} characters",
            quoted(name)
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "profile: {} contains control characters",
            quoted(name)
        ));
    }
    Ok(name.to_string())
}

/// A well-formed, non-negative wire duration.
fn duration(field: &str, value: prost_types::Duration) -> Result<Duration, String> {
    let prost_types::Duration { seconds, nanos } = value;
    let nanos_ok = (-999_999_999..=999_999_999).contains(&nanos)
        && !(seconds > 0 && nanos < 0)
        && !(seconds < 0 && nanos > 0);
    if !nanos_ok {
        return Err(format!(
            "{field}: not a valid duration (nanos must be within ±999999999 and have the sign of seconds)"
        ));
    }
    match (u64::try_from(seconds), u32::try_from(nanos)) {
        (Ok(seconds), Ok(nanos)) => Ok(Duration::new(seconds, nanos)),
        _ => Err(format!("{field}: must not be negative, got {value}")),
    }
}

/// A requested validity period: unset means the profile's default; zero or
/// negative is refused.
pub(crate) fn ttl(value: Option<prost_types::Duration>) -> Result<Option<Duration>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let ttl = duration("ttl", value)
        .map_err(|e| e.replace("must not be negative", "must be positive"))?;
    if ttl.is_zero() {
        return Err(
            "ttl: must be positive, got 0s (leave it unset for the profile's default)".into(),
        );
    }
    Ok(Some(ttl))
}

/// A serial number in hexadecimal (either case; `:` separators allowed).
pub(crate) fn serial(text: &str) -> Result<Serial, String> {
    if text.is_empty() {
        return Err("serial: required (the certificate's serial number in hexadecimal)".into());
    }
    // 20 bytes at most, with room for "0x" and ':' separators.
    if text.len() > 64 {
        return Err(format!(
            "serial: {} is longer than a serial number (at most 20 bytes)",
            quoted(text)
        ));
    }
    Serial::from_hex(text).map_err(|e| format!("serial: {e}"))
}

/// A CSR, PEM or DER, whose signature and key verify.
pub(crate) fn csr(bytes: &[u8]) -> Result<Csr, String> {
    Csr::parse(bytes).map_err(|e| format!("csr: {e}"))
}

/// The key type to generate; empty means [`DEFAULT_KEY_TYPE`].
pub(crate) fn key_type(text: &str) -> Result<KeySpec, String> {
    if text.is_empty() {
        return Ok(DEFAULT_KEY_TYPE);
    }
    KeySpec::from_str(text).map_err(|_| {
        format!(
            "key_type: unknown key type {} (expected ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519)",
            quoted(text)
        )
    })
}

/// Parses the requested names: DNS names (lower-cased), IP addresses and
/// URIs, each checked for syntax and kept once, in request order.
fn names(dns: &[String], ips: &[String], uris: &[String], problems: &mut Problems) -> Names {
    let mut names = Names::default();
    let total = dns.len() + ips.len() + uris.len();
    if total > MAX_NAMES {
        problems.0.push(format!(
            "{total} subject alternative names requested; the limit is {MAX_NAMES}"
        ));
        return names;
    }
    for name in dns {
        let name = name.to_ascii_lowercase();
        if name.len() > 253 {
            problems.0.push(format!(
                "dns_names: {} is longer than 253 characters",
                quoted(&name)
            ));
        } else if let Some(problem) = dns_name_problem(&name) {
            problems.0.push(format!("dns_names: {problem}"));
        } else if !names.dns.contains(&name) {
            names.dns.push(name);
        }
    }
    for text in ips {
        match text.parse::<IpAddr>() {
            Ok(ip) if !names.ips.contains(&ip) => names.ips.push(ip),
            Ok(_) => {}
            Err(_) => problems.0.push(format!(
                "ip_addresses: {} is not an IPv4 or IPv6 address",
                quoted(text)
            )),
        }
    }
    for uri in uris {
        if uri.len() > MAX_URI_LEN {
            problems.0.push(format!(
                "uris: {} is longer than {MAX_URI_LEN} characters",
                quoted(uri)
            ));
        } else if let Some(problem) = uri_problem(uri) {
            problems.0.push(format!("uris: {problem}"));
        } else if !names.uris.contains(uri) {
            names.uris.push(uri.clone());
        }
    }
    names
}

/// Ca.IssueFromCsr, parsed.
#[derive(Debug)]
pub(crate) struct CsrIssue {
    /// The profile to issue under.
    pub(crate) profile: String,
    /// The verified CSR.
    pub(crate) csr: Csr,
    /// Requested validity; the profile's default when `None`.
    pub(crate) ttl: Option<Duration>,
}

impl TryFrom<v1::IssueFromCsrRequest> for CsrIssue {
    type Error = Failure;

    fn try_from(request: v1::IssueFromCsrRequest) -> Result<Self, Failure> {
        let mut problems = Problems::default();
        let profile = problems.check(profile_name(&request.profile));
        let csr = problems.check(csr(&request.csr));
        let ttl = problems.check(ttl(request.ttl));
        let value = match (profile, csr, ttl) {
            (Some(profile), Some(csr), Some(ttl)) => Some(CsrIssue { profile, csr, ttl }),
            _ => None,
        };
        problems.finish(value)
    }
}

/// Ca.IssueWithKey, parsed.
#[derive(Debug)]
pub(crate) struct KeyIssue {
    /// The profile to issue under.
    pub(crate) profile: String,
    /// The subject common name, lower-cased; also among `names`.
    pub(crate) common_name: Option<String>,
    /// The subject alternative names, including the common name.
    pub(crate) names: Names,
    /// The type of key to generate.
    pub(crate) key_type: KeySpec,
    /// Requested validity; the profile's default when `None`.
    pub(crate) ttl: Option<Duration>,
}

impl TryFrom<v1::IssueWithKeyRequest> for KeyIssue {
    type Error = Failure;

    /// As for a CSR (`IssueRequest::from_csr`), a common name that is not
    /// among the requested names is added to them, as an IP address if it
    /// parses as one and as a DNS name otherwise.
    fn try_from(request: v1::IssueWithKeyRequest) -> Result<Self, Failure> {
        let mut problems = Problems::default();
        let profile = problems.check(profile_name(&request.profile));
        let mut names = names(
            &request.dns_names,
            &request.ip_addresses,
            &request.uris,
            &mut problems,
        );
        let common_name = match request.common_name.as_str() {
            "" => None,
            cn if cn.chars().count() > MAX_COMMON_NAME_LEN => {
                problems.0.push(format!(
                    "common_name: {} is longer than {MAX_COMMON_NAME_LEN} characters",
                    quoted(cn)
                ));
                None
            }
            cn => {
                let cn = cn.to_ascii_lowercase();
                match cn.parse::<IpAddr>() {
                    Ok(ip) if !names.ips.contains(&ip) => names.ips.push(ip),
                    Ok(_) => {}
                    Err(_) => match dns_name_problem(&cn) {
                        Some(problem) => problems.0.push(format!("common_name: {problem}")),
                        None if !names.dns.contains(&cn) => names.dns.push(cn.clone()),
                        None => {}
                    },
                }
                Some(cn)
            }
        };
        let key_type = problems.check(key_type(&request.key_type));
        let ttl = problems.check(ttl(request.ttl));
        let value = match (profile, key_type, ttl) {
            (Some(profile), Some(key_type), Some(ttl)) => Some(KeyIssue {
                profile,
                common_name,
                names,
                key_type,
                ttl,
            }),
            _ => None,
        };
        problems.finish(value)
    }
}

/// Where a renewed certificate's key comes from.
#[derive(Debug)]
pub(crate) enum RenewKey {
    /// The renewed certificate's own public key.
    Same,
    /// A new CSR's key; its names must equal the renewed certificate's.
    Csr(Box<Csr>),
    /// A key pair the server generates, of the renewed key's type.
    Generate,
}

/// Ca.Renew, parsed.
#[derive(Debug)]
pub(crate) struct Renewal {
    /// The certificate to renew.
    pub(crate) serial: Serial,
    /// Where the new certificate's key comes from.
    pub(crate) key: RenewKey,
    /// Requested validity; the profile's default when `None`.
    pub(crate) ttl: Option<Duration>,
}

impl TryFrom<v1::RenewRequest> for Renewal {
    type Error = Failure;

    fn try_from(request: v1::RenewRequest) -> Result<Self, Failure> {
        let mut problems = Problems::default();
        let serial = problems.check(serial(&request.serial));
        let key = match (request.csr.is_empty(), request.new_key) {
            (true, false) => Some(RenewKey::Same),
            (true, true) => Some(RenewKey::Generate),
            (false, false) => problems
                .check(csr(&request.csr))
                .map(|csr| RenewKey::Csr(Box::new(csr))),
            (false, true) => {
                problems.0.push(
                    "csr and new_key: set at most one (a CSR brings its own key; new_key asks the server for one)"
                        .into(),
                );
                None
            }
        };
        let ttl = problems.check(ttl(request.ttl));
        let value = match (serial, key, ttl) {
            (Some(serial), Some(key), Some(ttl)) => Some(Renewal { serial, key, ttl }),
            _ => None,
        };
        problems.finish(value)
    }
}

/// Ca.GetCertificate, parsed: the serial.
pub(crate) fn get_certificate(request: &v1::GetCertificateRequest) -> Result<Serial, Failure> {
    let mut problems = Problems::default();
    let serial = problems.check(serial(&request.serial));
    problems.finish(serial)
}

/// Ca.Revoke, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RevokeCall {
    /// The certificate.
    pub(crate) serial: Serial,
    /// Why.
    pub(crate) reason: RevocationReason,
    /// When, if not now.
    pub(crate) at: Option<SystemTime>,
}

impl TryFrom<&v1::RevokeRequest> for RevokeCall {
    type Error = Failure;

    fn try_from(request: &v1::RevokeRequest) -> Result<Self, Failure> {
        let mut problems = Problems::default();
        let serial = problems.check(serial(&request.serial));
        let reason = problems.check(revocation_reason(request.reason));
        let at = problems.check(
            request
                .revoked_at
                .map(|t| {
                    if t.nanos != 0 && !(0..1_000_000_000).contains(&t.nanos) {
                        return Err("revoked_at: nanos out of range".to_string());
                    }
                    u64::try_from(t.seconds)
                        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                        .map_err(|_| "revoked_at: before 1970".to_string())
                })
                .transpose(),
        );
        let value = match (serial, reason, at) {
            (Some(serial), Some(reason), Some(at)) => Some(RevokeCall { serial, reason, at }),
            _ => None,
        };
        problems.finish(value)
    }
}

/// A wire revocation reason as RFC 5280's.
pub(crate) fn revocation_reason(value: i32) -> Result<RevocationReason, String> {
    u8::try_from(value)
        .ok()
        .and_then(RevocationReason::from_code)
        .ok_or_else(|| format!("reason: {value} is not an RFC 5280 CRLReason"))
}

/// The wire form of a revocation reason (the enum values are the RFC codes).
pub(crate) fn wire_reason(reason: RevocationReason) -> i32 {
    i32::from(reason.code())
}

/// Ca.GetCrl, parsed: which series and whether the delta.
pub(crate) fn get_crl(request: &v1::GetCrlRequest) -> Result<(CrlSeries, bool), Failure> {
    let series = match request.partition {
        0 => CrlSeries::All,
        n if n > MAX_CRL_PARTITIONS => {
            return Err(Failure::Invalid(vec![format!(
                "partition: at most {MAX_CRL_PARTITIONS} partitions exist, not {}",
                n - 1
            )]));
        }
        n => CrlSeries::Partition(n - 1),
    };
    Ok((series, request.delta))
}

/// Ca.ListCertificates, parsed. Times are resolved against "now" by
/// [`ListQuery::filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    /// Only this status.
    pub(crate) status: Option<CertStatus>,
    /// Only this profile.
    pub(crate) profile: Option<String>,
    /// Only subjects or SANs containing this (case-insensitive).
    pub(crate) name_contains: Option<String>,
    /// Only this requester.
    pub(crate) requester: Option<String>,
    /// Only certificates expiring within this from now.
    pub(crate) expiring_within: Option<Duration>,
    /// Whether already expired certificates are included.
    pub(crate) include_expired: bool,
    /// Records per page, 1 to [`MAX_PAGE_SIZE`].
    pub(crate) page_size: usize,
    /// Continue after the page that returned this token.
    pub(crate) page_token: Option<String>,
}

/// Checks an optional text filter's length; empty means "not set".
fn filter_text(field: &str, text: String, max: usize) -> Result<Option<String>, String> {
    if text.is_empty() {
        Ok(None)
    } else if text.chars().count() > max {
        Err(format!("{field}: longer than {max} characters"))
    } else {
        Ok(Some(text))
    }
}

impl TryFrom<v1::ListCertificatesRequest> for ListQuery {
    type Error = Failure;

    fn try_from(request: v1::ListCertificatesRequest) -> Result<Self, Failure> {
        let mut problems = Problems::default();
        let status = problems.check(match v1::CertificateStatus::try_from(request.status) {
            Ok(v1::CertificateStatus::Unspecified) => Ok(None),
            Ok(v1::CertificateStatus::Pending) => Ok(Some(CertStatus::Pending)),
            Ok(v1::CertificateStatus::Issued) => Ok(Some(CertStatus::Issued)),
            Ok(v1::CertificateStatus::Revoked) => Ok(Some(CertStatus::Revoked)),
            Err(_) => Err(format!(
                "status: {} is not a CertificateStatus value",
                request.status
            )),
        });
        let profile = problems.check(match request.profile.as_str() {
            "" => Ok(None),
            name => profile_name(name).map(Some),
        });
        let name_contains = problems.check(filter_text(
            "name_contains",
            request.name_contains,
            MAX_FILTER_LEN,
        ));
        let requester = problems.check(filter_text("requester", request.requester, MAX_FILTER_LEN));
        let expiring_within = problems.check(
            request
                .expiring_within
                .map(|d| duration("expiring_within", d))
                .transpose(),
        );
        let page_token = problems.check(filter_text(
            "page_token",
            request.page_token,
            MAX_PAGE_TOKEN_LEN,
        ));
        let page_size = match usize::try_from(request.page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
            Err(_) => MAX_PAGE_SIZE,
        };
        let value = match (
            status,
            profile,
            name_contains,
            requester,
            expiring_within,
            page_token,
        ) {
            (
                Some(status),
                Some(profile),
                Some(name_contains),
                Some(requester),
                Some(expiring_within),
                Some(page_token),
            ) => Some(ListQuery {
                status,
                profile,
                name_contains,
                requester,
                expiring_within,
                include_expired: request.include_expired,
                page_size,
                page_token,
            }),
            _ => None,
        };
        problems.finish(value)
    }
}

impl ListQuery {
    /// The store filter at `now` (Unix seconds): `expiring_within` becomes
    /// `not_after <= now + d`, and unless expired certificates are included,
    /// `not_after > now`.
    pub(crate) fn filter(self, now: i64) -> CertFilter {
        CertFilter {
            status: self.status,
            profile: self.profile,
            name_contains: self.name_contains,
            requester: self.requester,
            not_after_before: self
                .expiring_within
                .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
            not_after_after: (!self.include_expired).then_some(now),
            page_size: self.page_size,
            page_token: self.page_token,
        }
    }
}

/// A Unix time as a protobuf timestamp.
pub(crate) fn timestamp(unix: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix,
        nanos: 0,
    }
}

/// The wire form of a certificate status.
pub(crate) fn wire_status(status: CertStatus) -> v1::CertificateStatus {
    match status {
        CertStatus::Pending => v1::CertificateStatus::Pending,
        CertStatus::Issued => v1::CertificateStatus::Issued,
        CertStatus::Revoked => v1::CertificateStatus::Revoked,
    }
}

/// The wire form of an inventory record. The PEM is empty while the record
/// is pending; `issued_at` is when the request was recorded (`created_at`),
/// as ca.proto defines it.
pub(crate) fn certificate(record: &CertRecord) -> v1::Certificate {
    let pem = match (&record.cert_der, record.status) {
        (Some(der), CertStatus::Issued | CertStatus::Revoked) => pem("CERTIFICATE", der),
        _ => String::new(),
    };
    v1::Certificate {
        serial: record.serial.to_hex(),
        pem,
        profile: record.profile.clone(),
        status: wire_status(record.status).into(),
        subject: record.subject.clone(),
        sans: record.sans.clone(),
        not_before: Some(timestamp(record.not_before)),
        not_after: Some(timestamp(record.not_after)),
        requester: record.requester.clone(),
        issued_at: Some(timestamp(record.created_at)),
        renewal_of: record
            .renewal_of
            .as_ref()
            .map(Serial::to_hex)
            .unwrap_or_default(),
        revoked_at: record.revocation.map(|r| timestamp(r.revoked_at)),
        revocation_reason: record.revocation.map_or(0, |r| wire_reason(r.reason)),
        crl_partition: record.crl_partition.map_or(0, |p| p.saturating_add(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(failure: Failure) -> Vec<String> {
        match failure {
            Failure::Invalid(problems) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn dur(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos })
    }

    #[test]
    fn ttl_unset_positive_zero_negative_and_malformed() {
        assert_eq!(ttl(None), Ok(None));
        assert_eq!(ttl(dur(3600, 0)), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(ttl(dur(0, 5)), Ok(Some(Duration::from_nanos(5))));
        assert!(
            ttl(dur(0, 0))
                .expect_err("zero")
                .contains("must be positive")
        );
        assert!(
            ttl(dur(-60, 0))
                .expect_err("negative")
                .contains("must be positive")
        );
        assert!(
            ttl(dur(0, -1))
                .expect_err("negative")
                .contains("must be positive")
        );
        assert!(
            ttl(dur(1, -1))
                .expect_err("mixed")
                .contains("not a valid duration")
        );
        assert!(
            ttl(dur(1, 1_000_000_000))
                .expect_err("nanos")
                .contains("not a valid")
        );
    }

    #[test]
    fn profile_names_and_serials() {
        assert_eq!(profile_name("server"), Ok("server".to_string()));
        assert!(profile_name("").expect_err("empty").contains("required"));
        assert!(profile_name(&"p".repeat(65)).is_err());
        assert!(profile_name(&"p".repeat(64)).is_ok());
        assert!(profile_name("a\nb").is_err());
        assert_eq!(serial("4A01").expect("upper case").to_hex(), "4a01");
        assert!(serial("").expect_err("empty").contains("required"));
        assert!(serial("xyz").expect_err("not hex").starts_with("serial: "));
        let long = serial(&"ab".repeat(1000)).expect_err("long");
        assert!(long.len() < 200, "echo is bounded: {long}");
    }

    #[test]
    fn key_types_default_to_p256() {
        assert_eq!(key_type(""), Ok(KeySpec::EcP256));
        assert_eq!(key_type("ed25519"), Ok(KeySpec::Ed25519));
        assert_eq!(key_type("rsa-3072"), Ok(KeySpec::Rsa { bits: 3072 }));
        assert!(
            key_type("dsa-1024")
                .expect_err("dsa")
                .contains("'dsa-1024'")
        );
    }

    #[test]
    fn issue_with_key_lists_every_bad_field_at_once() {
        let request = v1::IssueWithKeyRequest {
            profile: String::new(),
            common_name: "api.example.test".into(),
            dns_names: vec!["bad_name.test".into()],
            ip_addresses: vec!["300.1.1.1".into()],
            uris: vec!["no-scheme".into()],
            key_type: "dsa".into(),
            ttl: dur(-1, 0),
        };
        let problems = invalid(KeyIssue::try_from(request).expect_err("invalid"));
        assert_eq!(problems.len(), 6, "{problems:?}");
        for field in [
            "profile:",
            "dns_names:",
            "ip_addresses:",
            "uris:",
            "key_type:",
            "ttl:",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{field} {problems:?}"
            );
        }
    }

    #[test]
    fn issue_with_key_adds_the_common_name_and_dedups() {
        let request = v1::IssueWithKeyRequest {
            profile: "server".into(),
            common_name: "API.example.test".into(),
            dns_names: vec!["www.example.test".into(), "WWW.example.test".into()],
            ip_addresses: vec!["127.0.0.1".into(), "127.0.0.1".into()],
            uris: vec![],
            key_type: String::new(),
            ttl: None,
        };
        let parsed = KeyIssue::try_from(request).expect("valid");
        assert_eq!(parsed.common_name.as_deref(), Some("api.example.test"));
        assert_eq!(parsed.names.dns, ["www.example.test", "api.example.test"]);
        assert_eq!(parsed.names.ips.len(), 1);
        assert_eq!(parsed.key_type, KeySpec::EcP256);
        assert_eq!(parsed.ttl, None);

        let ip_cn = v1::IssueWithKeyRequest {
            profile: "server".into(),
            common_name: "127.0.0.2".into(),
            ..Default::default()
        };
        let parsed = KeyIssue::try_from(ip_cn).expect("valid");
        assert_eq!(
            parsed.names.ips,
            ["127.0.0.2".parse::<IpAddr>().expect("ip")]
        );

        let many = v1::IssueWithKeyRequest {
            profile: "server".into(),
            dns_names: (0..=MAX_NAMES).map(|i| format!("h{i}.test")).collect(),
            ..Default::default()
        };
        let problems = invalid(KeyIssue::try_from(many).expect_err("too many"));
        assert!(problems[0].contains("the limit is 100"), "{problems:?}");
    }

    #[test]
    fn renew_refuses_csr_with_new_key_and_garbage() {
        let both = v1::RenewRequest {
            serial: "4a01".into(),
            csr: b"garbage".to_vec(),
            new_key: true,
            ttl: None,
        };
        let problems = invalid(Renewal::try_from(both).expect_err("both"));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("csr and new_key"), "{problems:?}");

        let garbage = v1::RenewRequest {
            serial: "4a01".into(),
            csr: b"garbage".to_vec(),
            new_key: false,
            ttl: None,
        };
        let problems = invalid(Renewal::try_from(garbage).expect_err("garbage"));
        assert!(problems[0].starts_with("csr: "), "{problems:?}");

        let plain = v1::RenewRequest {
            serial: "4a01".into(),
            new_key: true,
            ..Default::default()
        };
        let parsed = Renewal::try_from(plain).expect("valid");
        assert!(matches!(parsed.key, RenewKey::Generate));
    }

    #[test]
    fn listing_filters_resolve_against_now() {
        let request = v1::ListCertificatesRequest {
            status: v1::CertificateStatus::Issued.into(),
            profile: "server".into(),
            name_contains: "api".into(),
            requester: String::new(),
            expiring_within: dur(86_400, 0),
            include_expired: false,
            page_size: 5000,
            page_token: String::new(),
        };
        let filter = ListQuery::try_from(request).expect("valid").filter(1_000);
        assert_eq!(filter.status, Some(CertStatus::Issued));
        assert_eq!(filter.profile.as_deref(), Some("server"));
        assert_eq!(filter.name_contains.as_deref(), Some("api"));
        assert_eq!(filter.requester, None);
        assert_eq!(filter.not_after_before, Some(87_400));
        assert_eq!(filter.not_after_after, Some(1_000));
        assert_eq!(filter.page_size, MAX_PAGE_SIZE);

        let everything = ListQuery::try_from(v1::ListCertificatesRequest {
            include_expired: true,
            ..Default::default()
        })
        .expect("valid")
        .filter(1_000);
        assert_eq!(
            everything,
            CertFilter {
                page_size: DEFAULT_PAGE_SIZE,
                ..CertFilter::default()
            }
        );

        let bad = v1::ListCertificatesRequest {
            status: 42,
            expiring_within: dur(-5, 0),
            ..Default::default()
        };
        let problems = invalid(ListQuery::try_from(bad).expect_err("bad"));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn records_become_wire_certificates() {
        let record = CertRecord {
            issuer_id: "issuer".into(),
            serial: Serial::from_hex("4a01").expect("serial"),
            profile: "server".into(),
            requester: "CN=alice".into(),
            subject: "CN=api.test".into(),
            sans: vec!["DNS:api.test".into()],
            not_before: 10,
            not_after: 20,
            status: CertStatus::Pending,
            tbs_der: vec![0x30, 0x00],
            cert_der: None,
            created_at: 9,
            issued_at: None,
            renewal_of: None,
            revocation: None,
            crl_partition: None,
        };
        let pending = certificate(&record);
        assert_eq!(pending.serial, "4a01");
        assert!(pending.pem.is_empty());
        assert_eq!(pending.status, v1::CertificateStatus::Pending as i32);
        assert_eq!(pending.issued_at, Some(timestamp(9)));
        assert_eq!(pending.renewal_of, "");

        let issued = certificate(&CertRecord {
            status: CertStatus::Issued,
            cert_der: Some(vec![0x30, 0x00]),
            issued_at: Some(11),
            renewal_of: Some(Serial::from_hex("01").expect("serial")),
            ..record
        });
        assert!(issued.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(issued.status, v1::CertificateStatus::Issued as i32);
        assert_eq!(issued.not_after, Some(timestamp(20)));
        assert_eq!(issued.renewal_of, "01");
    }

    #[test]
    fn echoes_are_bounded_and_escaped() {
        assert_eq!(quoted("a\nb"), "'a\\nb'");
        let long = quoted(&"x".repeat(1000));
        assert_eq!(long.chars().count(), MAX_ECHO + 3);
    }
}
