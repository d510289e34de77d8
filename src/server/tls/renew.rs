//! Renewing the gRPC server's own TLS certificate while unsealed
//! (`tls.auto_renew`).
//!
//! The task runs with the other background tasks of an unsealed appliance:
//! it checks right after the unseal, then every `tls.renew_check`. The
//! served certificate is due at its [`renewal_point`]: `tls.renew_before`
//! before it ends, or once two thirds of its validity have passed. A
//! renewal:
//!
//! 1. generates a new key in memory (`tls.key_type`, like every
//!    server-made key);
//! 2. issues a certificate for it through the issuing CA (`prepare`, then
//!    `issue`: recorded in the inventory before the HSM signs), under
//!    `tls.profile`, for the same names as the served certificate (or
//!    `tls.names`), requested by [`REQUESTER`], marked as renewing the
//!    served one when the inventory knows it;
//! 3. writes key and chain to `tls.key` and `tls.cert` (see [`super::files`]
//!    for the order that never leaves a mismatched pair);
//! 4. serves the new certificate to new handshakes ([`ServerCertificate::replace`]);
//! 5. records [`OPERATION`] in the audit trail: the new serial, the one it
//!    renews and the profile, or the failure.
//!
//! The certificate is already in the inventory when the record is written,
//! so a record the trail cannot take is logged, not undone. A failure is
//! logged, audited, and retried after [`retry_after`]; the served
//! certificate stays in service meanwhile. While sealed nothing is renewed:
//! the certificate is checked again at the next unseal. A renewal under way
//! when the appliance seals runs to its end on its own task (failing, and
//! audited as failed, if it still needed the HSM).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use strongroom_ca::{IssueRequest, Names, Serial};
use tokio::sync::watch;

use super::{CertFacts, Served, ServerCertificate, files};
use crate::appliance::Appliance;
use crate::audit::{AuditEntry, AuditTrail};
use crate::config::TlsConfig;
use crate::server::audit::code_name;
use crate::server::status::to_status;
use crate::server::{BlockingPool, Failure};

/// Who asks for the renewed certificates (the inventory's requester, the
/// audit record's caller).
pub(crate) const REQUESTER: &str = "strongroom-server-tls";

/// The audit trail's operation for a renewal.
pub(crate) const OPERATION: &str = "strongroom.tls/Renew";

/// When a certificate valid from `not_before` to `not_after` is due:
/// `renew_before` before its end, or, without it, once two thirds of its
/// validity have passed. A `renew_before` longer than the whole validity
/// makes it due at once.
pub(crate) fn renewal_point(
    not_before: SystemTime,
    not_after: SystemTime,
    renew_before: Option<Duration>,
) -> SystemTime {
    match renew_before {
        Some(before) => not_after
            .checked_sub(before)
            .unwrap_or(SystemTime::UNIX_EPOCH),
        None => {
            let lifetime = not_after.duration_since(not_before).unwrap_or_default();
            not_before + lifetime / 3 * 2
        }
    }
}

/// How long to wait after `failures` renewals in a row failed: twice the
/// check interval `check`, doubling with each further failure, at most an
/// hour (or `check`, if that is longer).
pub(crate) fn retry_after(failures: u32, check: Duration) -> Duration {
    let cap = check.max(Duration::from_secs(3_600));
    let factor = 1u32 << failures.clamp(1, 16);
    check.saturating_mul(factor).min(cap)
}

/// What a name in `tls.names` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    /// A DNS name, lower-cased.
    Dns(String),
    /// An IP address.
    Ip(std::net::IpAddr),
    /// A URI (it has a scheme: `scheme://…`).
    Uri(String),
}

/// Reads one entry of `tls.names`: an IP address, a URI, or a DNS name.
pub(crate) fn parse_name(text: &str) -> anyhow::Result<Name> {
    if let Ok(ip) = text.parse() {
        return Ok(Name::Ip(ip));
    }
    if text.contains("://") {
        return match strongroom_ca::uri_problem(text) {
            None => Ok(Name::Uri(text.to_string())),
            Some(problem) => anyhow::bail!("not a usable URI: {problem}"),
        };
    }
    let dns = text.to_ascii_lowercase();
    match strongroom_ca::dns_name_problem(&dns) {
        None => Ok(Name::Dns(dns)),
        Some(problem) => anyhow::bail!("not a usable DNS name: {problem}"),
    }
}

/// The common name and names of a renewed certificate.
///
/// With `configured` names (`tls.names`), those, the first DNS name or IP
/// address being the common name. Without, those of the served certificate
/// (`served`), its common name added to its names if it was not among them.
pub(crate) fn renewal_names(
    configured: &[String],
    served: &CertFacts,
) -> anyhow::Result<(Option<String>, Names)> {
    if configured.is_empty() {
        let mut names = served.names.clone();
        if let Some(cn) = &served.common_name {
            match cn.parse() {
                Ok(ip) => push_new(&mut names.ips, ip),
                Err(_) => push_new(&mut names.dns, cn.to_ascii_lowercase()),
            }
        }
        if names.is_empty() {
            anyhow::bail!("the served certificate names nothing to renew it for; set tls.names");
        }
        return Ok((served.common_name.clone(), names));
    }
    let mut names = Names::default();
    let mut common_name = None;
    for text in configured {
        match parse_name(text).with_context(|| format!("tls.names: {text:?}"))? {
            Name::Dns(dns) => {
                common_name.get_or_insert_with(|| dns.clone());
                push_new(&mut names.dns, dns);
            }
            Name::Ip(ip) => {
                common_name.get_or_insert_with(|| ip.to_string());
                push_new(&mut names.ips, ip);
            }
            Name::Uri(uri) => push_new(&mut names.uris, uri),
        }
    }
    Ok((common_name, names))
}

/// Appends `item` unless `list` has it.
fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The renewal of the gRPC server's certificate: its settings, the served
/// certificate, the audit trail, and the last problem, if any.
pub(crate) struct Renewal {
    tls: TlsConfig,
    certificate: Arc<ServerCertificate>,
    trail: AuditTrail,
    /// Why the last renewal failed; `None` once one succeeds.
    problem: Mutex<Option<String>>,
}

impl Renewal {
    /// Renews `certificate` as `tls` says, recording to `trail`.
    pub(crate) fn new(
        tls: TlsConfig,
        certificate: Arc<ServerCertificate>,
        trail: AuditTrail,
    ) -> Renewal {
        Renewal {
            tls,
            certificate,
            trail,
            problem: Mutex::new(None),
        }
    }

    /// The certificate it renews.
    pub(crate) fn certificate(&self) -> &Arc<ServerCertificate> {
        &self.certificate
    }

    /// Why the last renewal failed, until one succeeds.
    pub(crate) fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_problem(&self, problem: Option<String>) {
        *self
            .problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = problem;
    }

    /// Renews the served certificate if it is due at `now`; returns the new
    /// certificate's facts, or `None` when it was not due.
    pub(crate) async fn check(
        &self,
        appliance: &Arc<Appliance>,
        pool: &BlockingPool,
        now: SystemTime,
    ) -> Result<Option<CertFacts>, Failure> {
        let served = self.certificate.current();
        let old = served.facts();
        // A certificate from elsewhere (the one a new appliance starts
        // with) is replaced by one from our own issuing CA at once.
        let ours = issuer_name(appliance).is_some_and(|name| name == old.issuer);
        if ours && now < renewal_point(old.not_before, old.not_after, self.tls.renew_before) {
            return Ok(None);
        }
        let started = Instant::now();
        let result = self.renew(appliance, pool, old).await;
        let mut target = BTreeMap::from([
            ("renews".to_string(), old.serial_hex()),
            ("profile".to_string(), self.tls.profile.clone()),
        ]);
        let (outcome, detail) = match &result {
            Ok(new) => {
                target.insert("serial".into(), new.serial_hex());
                ("OK".to_string(), None)
            }
            Err(failure) => {
                let status = to_status(failure);
                (
                    code_name(status.code()).to_string(),
                    Some(status.message().to_string()),
                )
            }
        };
        let entry = AuditEntry {
            caller: REQUESTER.into(),
            source: "local".into(),
            operation: OPERATION.into(),
            target,
            outcome,
            detail,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        if let Err(e) = self.trail.record(entry).await {
            tracing::error!(error = %e, "cannot audit a renewal of the gRPC server's TLS certificate");
        }
        result.map(Some)
    }

    /// Issues, writes and serves a new certificate for the names of `old`.
    async fn renew(
        &self,
        appliance: &Arc<Appliance>,
        pool: &BlockingPool,
        old: &CertFacts,
    ) -> Result<CertFacts, Failure> {
        let (common_name, names) = renewal_names(&self.tls.names, old)
            .map_err(|e| Failure::Precondition(format!("{e:#}")))?;
        let spec = self
            .tls
            .key_spec()
            .map_err(|e| Failure::Precondition(format!("{e:#}")))?;
        let tls = self.tls.clone();
        let appliance = Arc::clone(appliance);
        let old_serial = old.serial.clone();
        let served = pool
            .run(move || -> Result<Served, Failure> {
                let authority = &appliance.authority;
                let (public_key, key_pem) = crate::appliance::generate_key(spec)
                    .map_err(|e| Failure::Internal(format!("cannot generate a key: {e:#}")))?;
                // Marked as a renewal only of a certificate the inventory knows.
                let renewal_of = Serial::from_bytes(old_serial)
                    .ok()
                    .filter(|serial| authority.get(serial).is_ok());
                let prepared = authority.prepare(IssueRequest {
                    profile: tls.profile.clone(),
                    requester: REQUESTER.into(),
                    public_key,
                    common_name,
                    names,
                    ttl: None,
                    renewal_of,
                })?;
                let issued = authority.issue(prepared)?;
                let chain = format!(
                    "{}{}",
                    issued.certificate_pem(),
                    authority.issuer().certificate_pem()
                );
                let served = Served::from_pem(&chain, &key_pem).map_err(|e| {
                    Failure::Internal(format!("the renewed certificate is unusable: {e}"))
                })?;
                files::write(&tls.cert, &tls.key, &chain, &key_pem).map_err(|e| {
                    Failure::Unavailable(format!(
                        "certificate {} is issued but cannot be stored: {e:#}",
                        served.facts().serial_hex()
                    ))
                })?;
                Ok(served)
            })
            .await??;
        let facts = served.facts().clone();
        self.certificate.replace(served);
        tracing::info!(
            serial = %facts.serial_hex(),
            renews = %old.serial_hex(),
            "the gRPC server now serves a renewed TLS certificate"
        );
        if renewal_point(facts.not_before, facts.not_after, self.tls.renew_before)
            <= SystemTime::now()
        {
            tracing::warn!(
                serial = %facts.serial_hex(),
                "the renewed TLS certificate is due for renewal already: tls.renew_before is \
                 not shorter than the validity profile {:?} gives; it will be renewed at every \
                 check",
                self.tls.profile
            );
        }
        Ok(facts)
    }
}

/// Renews the served certificate whenever it is due, checking now and every
/// `tls.renew_check` (after a failure, [`retry_after`]), until `stop` turns
/// true or its sender is gone. Each check runs on its own task, so stopping
/// this one never cuts a renewal short.
/// The name (DER) of `appliance`'s issuing CA.
fn issuer_name(appliance: &Appliance) -> Option<Vec<u8>> {
    let issuer = <x509_cert::Certificate as der::Decode>::from_der(
        appliance.authority.issuer().certificate_der(),
    )
    .ok()?;
    der::Encode::to_der(&issuer.tbs_certificate.subject).ok()
}

pub(crate) async fn run(
    renewal: Arc<Renewal>,
    appliance: Arc<Appliance>,
    pool: BlockingPool,
    mut stop: watch::Receiver<bool>,
) {
    let check = renewal.tls.renew_check;
    let mut failures = 0u32;
    loop {
        // On its own task: sealing stops this loop, never a renewal halfway
        // (one that loses the HSM fails, and is audited as failed).
        let checking = tokio::spawn({
            let (renewal, appliance, pool) =
                (Arc::clone(&renewal), Arc::clone(&appliance), pool.clone());
            async move { renewal.check(&appliance, &pool, SystemTime::now()).await }
        });
        let checked = checking
            .await
            .unwrap_or_else(|e| Err(Failure::Internal(format!("the renewal failed: {e}"))));
        let wait = match checked {
            Ok(_) => {
                failures = 0;
                renewal.set_problem(None);
                check
            }
            Err(failure) => {
                failures = failures.saturating_add(1);
                let wait = retry_after(failures, check);
                let message = to_status(&failure).message().to_string();
                tracing::error!(
                    error = %message,
                    retry_in_s = wait.as_secs(),
                    "cannot renew the gRPC server's TLS certificate"
                );
                renewal.set_problem(Some(message));
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(days: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + DAY * days as u32
    }

    #[test]
    fn a_certificate_is_due_two_thirds_through_or_renew_before_its_end() {
        // 90 days: due after 60.
        assert_eq!(renewal_point(at(0), at(90), None), at(60));
        assert_eq!(renewal_point(at(0), at(90), Some(30 * DAY)), at(60));
        assert_eq!(renewal_point(at(0), at(90), Some(DAY)), at(89));
        // Longer than the whole validity: due from the start.
        assert!(renewal_point(at(0), at(90), Some(365 * DAY)) < at(0));
        // Not after not-before (a broken certificate): due at once.
        assert_eq!(renewal_point(at(5), at(5), None), at(5));
        assert_eq!(renewal_point(at(9), at(5), None), at(9));
        assert_eq!(
            renewal_point(at(0), at(1), Some(Duration::MAX)),
            SystemTime::UNIX_EPOCH
        );
    }

    #[test]
    fn failed_renewals_are_retried_later_and_later_up_to_an_hour() {
        let minute = Duration::from_secs(60);
        assert_eq!(retry_after(1, 5 * minute), 10 * minute);
        assert_eq!(retry_after(2, 5 * minute), 20 * minute);
        assert_eq!(retry_after(3, 5 * minute), 40 * minute);
        assert_eq!(retry_after(4, 5 * minute), 60 * minute);
        assert_eq!(retry_after(u32::MAX, 5 * minute), 60 * minute);
        assert_eq!(
            retry_after(1, Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        // A check interval of an hour is never shortened.
        assert_eq!(retry_after(1, 60 * minute), 60 * minute);
    }

    fn facts(common_name: Option<&str>, names: Names) -> CertFacts {
        CertFacts {
            serial: vec![0x42],
            not_before: at(0),
            not_after: at(90),
            common_name: common_name.map(Into::into),
            names,
            issuer: Vec::new(),
        }
    }

    #[test]
    fn a_renewal_keeps_the_served_names_and_common_name() {
        let names = Names {
            dns: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")],
            uris: vec![],
        };
        let (cn, renewed) =
            renewal_names(&[], &facts(Some("localhost"), names.clone())).expect("names");
        assert_eq!(cn.as_deref(), Some("localhost"));
        assert_eq!(renewed, names);
        // A common name missing from the names is added (the CA requires it).
        let (cn, renewed) =
            renewal_names(&[], &facts(Some("grpc.example.test"), names.clone())).expect("cn");
        assert_eq!(cn.as_deref(), Some("grpc.example.test"));
        assert_eq!(renewed.dns, vec!["localhost", "grpc.example.test"]);
        let (_, renewed) = renewal_names(&[], &facts(Some("10.0.0.5"), names)).expect("ip");
        assert_eq!(renewed.ips.len(), 3);
        let nothing = renewal_names(&[], &facts(None, Names::default())).expect_err("no names");
        assert!(nothing.to_string().contains("tls.names"), "{nothing}");
    }

    #[test]
    fn configured_names_replace_the_served_ones() {
        let served = facts(Some("localhost"), Names::default());
        let configured = [
            "spiffe://example.test/grpc".to_string(),
            "10.0.0.5".to_string(),
            "GRPC.example.test".to_string(),
        ];
        let (cn, names) = renewal_names(&configured, &served).expect("names");
        assert_eq!(cn.as_deref(), Some("10.0.0.5"));
        assert_eq!(names.dns, vec!["grpc.example.test"]);
        assert_eq!(
            names.ips,
            vec!["10.0.0.5".parse::<std::net::IpAddr>().expect("ip")]
        );
        assert_eq!(names.uris, vec!["spiffe://example.test/grpc"]);
        for bad in ["bad name", "-x.test", "spiffe://a b"] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_read_from_a_certificate() {
        let pem = include_str!("testdata/server.pem");
        let (_, der) = der::pem::decode_vec(pem.trim().as_bytes()).expect("pem");
        let facts = CertFacts::of(&der).expect("facts");
        assert_eq!(facts.serial_hex(), "5eed5eed5eed5e01");
        assert_eq!(facts.common_name.as_deref(), Some("grpc.example.test"));
        assert_eq!(facts.names.dns, vec!["grpc.example.test"]);
        assert_eq!(
            facts.names.ips,
            vec!["10.0.0.5".parse::<std::net::IpAddr>().expect("ip")]
        );
        assert_eq!(facts.names.uris, vec!["spiffe://example.test/grpc"]);
        assert_eq!(
            facts
                .not_after
                .duration_since(facts.not_before)
                .expect("order"),
            3650 * DAY
        );
        // Renewed for the same names, the common name among them once.
        let (cn, names) = renewal_names(&[], &facts).expect("names");
        assert_eq!(cn.as_deref(), Some("grpc.example.test"));
        assert_eq!(names, facts.names);
    }
}
