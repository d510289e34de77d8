//! The `strongroom.v1.Sys` service: the appliance's one-screen status, and
//! the administrators' bootstrap tokens.
//!
//! The token calls ([`crate::bootstrap`]) need the unsealed appliance's
//! store and the `admin` capability on `sys` (checked by the audit layer).
//! A new token's text leaves only in the response; the log and the audit
//! record name its id, identity and profile.
//!
//! Status gathers facts, then judges them:
//!
//! 1. What is known without the appliance: the seal's state, the audit
//!    trail's health and the token's label. While sealed that is all.
//! 2. While unsealed, on the [`BlockingPool`] like every other HSM or store
//!    call (the token may try to reconnect; the counts read the store): the
//!    HSM's state and session pool, the CA certificates, the inventory by
//!    status (and the issued certificates expiring within 30 days, from the
//!    `not_after` index, leaving out the delegated OCSP signer's, which the
//!    appliance renews itself), the transit keys overdue for rotation, and
//!    the key versions a retired KEK still wraps.
//! 3. [`recommended_actions`], a pure function of those [`Facts`] and `now`,
//!    turns them into sentences an operator acts on, most urgent first. When
//!    nothing needs doing it says nothing (an empty list): scripts test for
//!    emptiness, and the CLI prints `none`.
//!
//! A store failure fails the call (`UNAVAILABLE`), as before; an HSM that is
//! down does not: it is reported, with what to do.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strongroom_ca::{CertStatus, CertStore};
use strongroom_hsm::{PoolUsage, TokenStatus};
use strongroom_proto::v1;
use strongroom_proto::v1::sys_server::Sys;
use tonic::{Request, Response, Status};

use super::access::Admission;
use super::audit::AuditTarget;
use super::blocking::BlockingPool;
use super::convert;
use super::convert::bootstrap::{TokenCreate, bootstrap_token, token_id, token_query};
use super::seal::Seal;
use super::status::Failure;
use super::tls::renew::Renewal;
use super::unix_now;
use crate::appliance::Appliance;
use crate::audit::{AuditTrail, SinkHealth, SinkKind};
use crate::bootstrap;

/// How far ahead the status looks for issued certificates about to expire.
pub(crate) const EXPIRING_WINDOW: Duration = Duration::from_secs(30 * DAY);

/// How long before a CA certificate expires the status recommends renewing
/// it: a new intermediate needs an offline ceremony, so warn early.
const CA_EXPIRY_WARNING: Duration = Duration::from_secs(90 * DAY);

/// Seconds in a day.
const DAY: u64 = 86_400;

/// The Sys service over one appliance.
#[derive(Clone)]
pub(crate) struct SysService {
    /// The seal, and through it the appliance while unsealed.
    seal: Arc<Seal>,
    /// Where HSM and store calls run.
    pool: BlockingPool,
    /// The server's audit trail, whose health the status reports.
    trail: AuditTrail,
    /// When the server started.
    started_at: SystemTime,
}

impl SysService {
    /// A status service for the appliance behind `seal`, running blocking
    /// work on `pool` and reporting the health of `trail`.
    pub(crate) fn new(seal: Arc<Seal>, pool: BlockingPool, trail: AuditTrail) -> Self {
        SysService {
            seal,
            pool,
            trail,
            started_at: SystemTime::now(),
        }
    }

    /// Sys.Status.
    async fn status(&self) -> Result<v1::StatusResponse, Failure> {
        let now = SystemTime::now();
        let facts = facts(&self.seal, &self.pool, &self.trail, now).await?;
        let actions = recommended_actions(&facts, now);
        Ok(response(&facts, actions, self.started_at))
    }
}

impl SysService {
    /// Sys.CreateBootstrapToken, by `creator`.
    async fn create_token(
        &self,
        creator: String,
        request: v1::CreateBootstrapTokenRequest,
        target: &AuditTarget,
    ) -> Result<v1::CreateBootstrapTokenResponse, Failure> {
        let TokenCreate {
            identity,
            profile,
            ttl,
        } = TokenCreate::try_from(request)?;
        target.note("identity", identity.as_str());
        target.note("profile", &profile);
        let appliance = self.seal.gate().appliance()?;
        bootstrap::check_profile(appliance.authority.profiles(), &profile, &identity)?;
        let (token, record) = self
            .pool
            .run(move || {
                bootstrap::create_token(
                    &appliance.store,
                    &identity,
                    &profile,
                    ttl,
                    &creator,
                    unix_now(),
                )
            })
            .await??;
        target.note("token", record.id.as_str());
        Ok(v1::CreateBootstrapTokenResponse {
            id: record.id.to_string(),
            expires_at: Some(convert::timestamp(record.expires_at)),
            token: token.into_text(),
        })
    }

    /// Sys.ListBootstrapTokens.
    async fn list_tokens(
        &self,
        request: v1::ListBootstrapTokensRequest,
    ) -> Result<v1::ListBootstrapTokensResponse, Failure> {
        let now = unix_now();
        let query = token_query(&request, now);
        let appliance = self.seal.gate().appliance()?;
        let page = self
            .pool
            .run(move || appliance.store.list_bootstrap_tokens(&query))
            .await??;
        Ok(v1::ListBootstrapTokensResponse {
            tokens: page
                .tokens
                .iter()
                .map(|t| bootstrap_token(t, now))
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        })
    }

    /// Sys.RevokeBootstrapToken.
    async fn revoke_token(
        &self,
        request: v1::RevokeBootstrapTokenRequest,
        target: &AuditTarget,
    ) -> Result<v1::BootstrapToken, Failure> {
        let id = token_id(&request)?;
        target.note("token", id.as_str());
        let appliance = self.seal.gate().appliance()?;
        let now = unix_now();
        let record = self
            .pool
            .run(move || appliance.store.revoke_bootstrap_token(&id, now))
            .await??;
        Ok(bootstrap_token(&record, now))
    }
}

/// Logs one finished token call and maps its failure to a status. Never
/// logs a token's text: only `id`, the token's public id.
fn finish_token_call<T>(
    method: &'static str,
    requester: &str,
    id: Option<&str>,
    result: Result<T, Failure>,
) -> Result<Response<T>, Status> {
    let id = id.unwrap_or("-");
    match result {
        Ok(response) => {
            tracing::info!(
                method,
                requester,
                token = id,
                outcome = "ok",
                "gRPC request"
            );
            Ok(Response::new(response))
        }
        Err(failure) => {
            let status = Status::from(failure);
            tracing::info!(
                method,
                requester,
                token = id,
                outcome = ?status.code(),
                error = status.message(),
                "gRPC request refused or failed"
            );
            Err(status)
        }
    }
}

/// The admitted caller's identity, for `created_by` and the log.
fn requester<T>(request: &Request<T>) -> Result<String, Failure> {
    Admission::of(request).map(|a| a.identity().to_string())
}

/// What Sys.Status (and the metrics endpoint) reports at `now`: the seal
/// and the audit trail's health, and while unsealed what the appliance
/// knows, read on `pool`. Only reading an unsealed appliance can fail.
pub(crate) async fn facts(
    seal: &Seal,
    pool: &BlockingPool,
    trail: &AuditTrail,
    now: SystemTime,
) -> Result<Facts, Failure> {
    let audit = AuditFacts::of(trail);
    let server_tls = seal
        .tls_renewal()
        .map(|renewal| ServerTlsFacts::of(renewal));
    let Some(appliance) = seal.gate().current() else {
        // Only while sealed: the seal's lock is held through an unseal's
        // HSM login, which an unsealed appliance's status never waits for.
        let status = seal.status().await;
        return Ok(Facts {
            hsm_token: crate::appliance::token_label(seal.config()).unwrap_or_default(),
            audit,
            server_tls,
            seal: if status.initialized {
                SealFacts::Sealed {
                    progress: status.progress,
                    threshold: status.threshold,
                }
            } else {
                SealFacts::Uninitialized
            },
        });
    };
    let hsm_token = appliance.token.label().to_string();
    // The default of `strongroom transit report`, from the one place that
    // defines it.
    let max_age = convert::transit::max_age(None)?;
    let unsealed = pool.run(move || gather(&appliance, now, max_age)).await??;
    Ok(Facts {
        hsm_token,
        audit,
        server_tls,
        seal: SealFacts::Unsealed(Box::new(unsealed)),
    })
}

/// Reads what only the unsealed appliance knows. Blocking: the token may
/// reconnect, and the counts and transit figures read the store.
fn gather(
    appliance: &Appliance,
    now: SystemTime,
    max_age: Duration,
) -> Result<ApplianceFacts, Failure> {
    let hsm = appliance.token.status();
    let pool = appliance.token.pool_usage();
    let mut certificates = appliance
        .authority
        .chain_der()
        .iter()
        .enumerate()
        .map(|(i, der)| CaCertificate::from_der(der).map_err(|e| unreadable(i, &e)));
    let issuing_ca = certificates
        .next()
        .ok_or_else(|| Failure::Internal("the CA chain is empty".into()))??;
    let chain = certificates.collect::<Result<Vec<_>, _>>()?;
    let store = &appliance.store;
    let after = unix(now);
    let until = after.saturating_add(i64::try_from(EXPIRING_WINDOW.as_secs()).unwrap_or(i64::MAX));
    let counts = Counts {
        pending: store.count(CertStatus::Pending)?,
        issued: store.count(CertStatus::Issued)?,
        revoked: store.count(CertStatus::Revoked)?,
        // The delegated OCSP signer's certificate lives a few days and the
        // appliance renews it itself: not the operator's to act on.
        expiring: store.count_issued_expiring(after, until, strongroom_ca::OCSP_SIGNER_PROFILE)?,
    };
    let transit = match &appliance.transit {
        None => None,
        Some(transit) => {
            let compliance = transit.rotation_compliance(now, max_age)?;
            let kek = transit.kek_status()?;
            Some(TransitFacts {
                keys: compliance.keys,
                keys_overdue: compliance.overdue.len() as u64,
                max_age,
                current_kek: kek.current,
                versions_to_rewrap: kek.to_rewrap,
                rewrap_pending: kek.rewrap_pending,
            })
        }
    };
    Ok(ApplianceFacts {
        hsm,
        pool,
        issuing_ca,
        chain,
        counts,
        transit,
    })
}

/// The failure for CA certificate `index` (0: the issuing CA) that cannot
/// be read.
fn unreadable(index: usize, error: &der::Error) -> Failure {
    let which = match index {
        0 => "the issuing CA's certificate".to_string(),
        i => format!("certificate {i} of ca.chain"),
    };
    Failure::Internal(format!("{which} cannot be read: {error}"))
}

/// Unix seconds, 0 before 1970.
fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Everything Sys.Status reports, in domain terms: the input of
/// [`recommended_actions`] and of the wire response.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// Label of the token holding the CA keys.
    pub(crate) hsm_token: String,
    /// The audit trail's health (known while sealed too).
    pub(crate) audit: AuditFacts,
    /// The gRPC server's certificate, when the appliance renews it
    /// (`tls.auto_renew`; known while sealed too).
    pub(crate) server_tls: Option<ServerTlsFacts>,
    /// The seal, and while unsealed what the appliance knows.
    pub(crate) seal: SealFacts,
}

/// The gRPC server's certificate and how its renewal fares.
#[derive(Debug, Clone)]
pub(crate) struct ServerTlsFacts {
    /// The served certificate's serial, lower-case hex.
    pub(crate) serial: String,
    /// The end of its validity.
    pub(crate) not_after: SystemTime,
    /// Why the last renewal failed, until one succeeds.
    pub(crate) problem: Option<String>,
}

impl ServerTlsFacts {
    /// The facts of `renewal` now.
    fn of(renewal: &Renewal) -> ServerTlsFacts {
        let served = renewal.certificate().current();
        let facts = served.facts();
        ServerTlsFacts {
            serial: facts.serial_hex(),
            not_after: facts.not_after,
            problem: renewal.problem(),
        }
    }
}

/// Where the seal stands.
#[derive(Debug, Clone)]
pub(crate) enum SealFacts {
    /// Never initialised: no share set yet.
    Uninitialized,
    /// Initialised and sealed.
    Sealed {
        /// Shares given to the current unseal attempt.
        progress: u8,
        /// Shares needed to unseal.
        threshold: u8,
    },
    /// Unsealed, with what the appliance reported.
    Unsealed(Box<ApplianceFacts>),
}

/// What the unsealed appliance reported.
#[derive(Debug, Clone)]
pub(crate) struct ApplianceFacts {
    /// Whether HSM operations run.
    pub(crate) hsm: TokenStatus,
    /// The token's session pool.
    pub(crate) pool: PoolUsage,
    /// The issuing CA's certificate.
    pub(crate) issuing_ca: CaCertificate,
    /// The certificates above it, nearest first.
    pub(crate) chain: Vec<CaCertificate>,
    /// The inventory by status.
    pub(crate) counts: Counts,
    /// Transit, when configured.
    pub(crate) transit: Option<TransitFacts>,
}

/// The parts of a CA certificate the status shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaCertificate {
    /// Subject, RFC 4514.
    pub(crate) subject: String,
    /// Serial, lower-case hex.
    pub(crate) serial: String,
    /// End of validity.
    pub(crate) not_after: SystemTime,
}

impl CaCertificate {
    /// Reads a DER certificate.
    fn from_der(der: &[u8]) -> Result<CaCertificate, der::Error> {
        let certificate = <x509_cert::Certificate as der::Decode>::from_der(der)?;
        let tbs = &certificate.tbs_certificate;
        Ok(CaCertificate {
            subject: tbs.subject.to_string(),
            serial: tbs
                .serial_number
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            not_after: tbs.validity.not_after.to_system_time(),
        })
    }
}

/// The certificate inventory by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Recorded, not signed.
    pub(crate) pending: u64,
    /// Signed, not revoked.
    pub(crate) issued: u64,
    /// Revoked.
    pub(crate) revoked: u64,
    /// Issued, not expired, expiring within [`EXPIRING_WINDOW`], except the
    /// delegated OCSP signer's.
    pub(crate) expiring: u64,
}

/// Transit's rotation and re-wrap state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransitFacts {
    /// Keys in the store.
    pub(crate) keys: u64,
    /// Keys whose latest version is older than `max_age`.
    pub(crate) keys_overdue: u64,
    /// The age beyond which a key is overdue.
    pub(crate) max_age: Duration,
    /// The KEK that wraps new versions.
    pub(crate) current_kek: String,
    /// Versions a retired KEK still wraps.
    pub(crate) versions_to_rewrap: u64,
    /// The background re-wrap has work left.
    pub(crate) rewrap_pending: bool,
}

/// The audit trail's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditFacts {
    /// The last write succeeded.
    pub(crate) healthy: bool,
    /// What is wrong, or went wrong last.
    pub(crate) problem: Option<String>,
    /// The file being written.
    pub(crate) file: String,
    /// The last record's sequence number.
    pub(crate) last_seq: u64,
    /// Records that no sink wrote since the start.
    pub(crate) failed: u64,
    /// Each sink's health, the file sink first.
    pub(crate) sinks: Vec<SinkHealth>,
    /// When the last problem was noticed.
    pub(crate) problem_at: Option<SystemTime>,
}

impl AuditFacts {
    /// The trail's health now.
    pub(crate) fn of(trail: &AuditTrail) -> AuditFacts {
        let health = trail.health();
        AuditFacts {
            healthy: health.healthy,
            problem: health.problem,
            file: health.file.display().to_string(),
            last_seq: health.last_seq,
            failed: health.failed,
            sinks: health.sinks,
            problem_at: health.problem_at,
        }
    }
}

/// What the operator should do about `facts` at `now`, most urgent first;
/// empty when nothing needs doing. Each entry is one sentence naming the
/// command to run where there is one.
fn recommended_actions(facts: &Facts, now: SystemTime) -> Vec<String> {
    let mut actions = Vec::new();
    let appliance = match &facts.seal {
        SealFacts::Uninitialized => {
            actions.push(
                "Initialise the appliance: strongroom operator init --shares N --threshold K"
                    .to_string(),
            );
            None
        }
        SealFacts::Sealed {
            progress,
            threshold,
        } => {
            actions.push(format!(
                "Unseal the appliance: {progress} of {threshold} shares given so far; each \
                 officer runs strongroom operator unseal"
            ));
            None
        }
        SealFacts::Unsealed(appliance) => Some(appliance),
    };
    if let Some(appliance) = appliance {
        match &appliance.hsm {
            TokenStatus::Ready => {}
            TokenStatus::Unavailable { reason } => actions.push(format!(
                "The HSM is unavailable ({reason}): check the token and its PKCS#11 module; \
                 the appliance reconnects by itself"
            )),
            TokenStatus::LoginRefused => actions.push(
                "The HSM refused the appliance's PIN and will not retry: if the token's PIN \
                 was changed outside Strongroom, restore it, then seal and unseal the \
                 appliance (strongroom operator seal, strongroom operator unseal)"
                    .to_string(),
            ),
        }
    }
    let audit = &facts.audit;
    let problem = audit.problem.as_deref().unwrap_or("no reason recorded");
    // With several sinks, one that cannot write while the trail can.
    let broken_sinks: Vec<&SinkHealth> = match audit.sinks.len() {
        0 | 1 => Vec::new(),
        _ => audit.sinks.iter().filter(|s| !s.healthy).collect(),
    };
    if !audit.healthy {
        actions.push(format!(
            "The audit trail cannot write: {problem}; every request fails until it can"
        ));
    } else if !broken_sinks.is_empty() {
        for sink in broken_sinks {
            let problem = sink.problem.as_deref().unwrap_or("no reason recorded");
            actions.push(match sink.kind {
                SinkKind::File => format!(
                    "The audit trail's files cannot be written ({problem}): records go to \
                     syslog only until they can, and the files will have a gap there that \
                     strongroom audit verify names"
                ),
                SinkKind::Syslog => format!(
                    "The audit trail cannot send to syslog at {} ({problem}): records go to \
                     its files only until it can",
                    sink.target
                ),
            });
        }
    } else if audit.problem.is_some() {
        let lost = match audit.failed {
            0 => String::new(),
            1 => "; 1 record could not be written and its request failed".to_string(),
            n => format!("; {n} records could not be written and their requests failed"),
        };
        actions.push(format!(
            "The audit trail writes again after a problem; find its cause: {problem}{lost}"
        ));
    }
    if let Some(ServerTlsFacts {
        serial,
        not_after,
        problem: Some(problem),
    }) = &facts.server_tls
    {
        let when =
            expiry(*not_after, now).unwrap_or_else(|| format!("expires on {}", date(*not_after)));
        actions.push(format!(
            "The gRPC server's TLS certificate (serial {serial}) {when} and could not be \
             renewed: {problem}; the appliance retries by itself (check tls.profile and \
             tls.names, and the strongroom.tls/Renew records in the audit trail)"
        ));
    }
    let Some(appliance) = appliance else {
        return actions;
    };
    if let Some(when) = expiry(appliance.issuing_ca.not_after, now) {
        actions.push(format!(
            "The issuing CA {when}: sign a new intermediate in a ceremony and configure it as \
             ca.issuer_certificate"
        ));
    }
    for certificate in &appliance.chain {
        if let Some(when) = expiry(certificate.not_after, now) {
            actions.push(format!(
                "The CA certificate {} (ca.chain) {when}: renew it in a ceremony and update \
                 ca.chain",
                certificate.subject
            ));
        }
    }
    let window = EXPIRING_WINDOW.as_secs() / DAY;
    let list = format!(
        "strongroom cert list --status issued --expiring-within {}",
        strongroom_ca::format_duration(EXPIRING_WINDOW)
    );
    match appliance.counts.expiring {
        0 => {}
        1 => actions.push(format!(
            "1 certificate expires within {window} days: {list}"
        )),
        n => actions.push(format!(
            "{n} certificates expire within {window} days: {list}"
        )),
    }
    if let Some(transit) = &appliance.transit {
        match transit.keys_overdue {
            0 => {}
            1 => actions.push(
                "1 transit key is overdue for rotation: strongroom transit report".to_string(),
            ),
            n => actions.push(format!(
                "{n} transit keys are overdue for rotation: strongroom transit report"
            )),
        }
        match transit.versions_to_rewrap {
            0 => {}
            1 => actions
                .push("KEK re-wrap: 1 key version left: strongroom transit kek status".to_string()),
            n => actions.push(format!(
                "KEK re-wrap: {n} key versions left: strongroom transit kek status"
            )),
        }
    }
    actions
}

/// "expires in N days (DATE)" or "expired on DATE" when `not_after` is less
/// than [`CA_EXPIRY_WARNING`] after `now`; `None` when it is further away.
fn expiry(not_after: SystemTime, now: SystemTime) -> Option<String> {
    let date = date(not_after);
    match not_after.duration_since(now) {
        Err(_) => Some(format!("expired on {date}")),
        Ok(left) if left < CA_EXPIRY_WARNING => Some(match left.as_secs() / DAY {
            0 => format!("expires within a day ({date})"),
            1 => format!("expires in 1 day ({date})"),
            days => format!("expires in {days} days ({date})"),
        }),
        Ok(_) => None,
    }
}

/// The UTC date of `t`, like `2026-12-12`.
fn date(t: SystemTime) -> String {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| der::DateTime::from_unix_duration(Duration::from_secs(d.as_secs())).ok())
        .map_or_else(
            || "an unrepresentable date".to_string(),
            |d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        )
}

/// The wire response for `facts`.
fn response(
    facts: &Facts,
    recommended_actions: Vec<String>,
    started_at: SystemTime,
) -> v1::StatusResponse {
    let audit = &facts.audit;
    let mut response = v1::StatusResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        sealed: true,
        hsm_status: "sealed".to_string(),
        hsm_token: facts.hsm_token.clone(),
        certificates_issued: 0,
        started_at: Some(started_at.into()),
        initialized: !matches!(facts.seal, SealFacts::Uninitialized),
        hsm_pool: None,
        issuing_ca: None,
        chain: Vec::new(),
        certificates: None,
        transit: None,
        audit: Some(v1::AuditTrailStatus {
            healthy: audit.healthy,
            problem: audit.problem.clone().unwrap_or_default(),
            current_file: audit.file.clone(),
            last_seq: audit.last_seq,
            records_failed: audit.failed,
            sinks: audit
                .sinks
                .iter()
                .map(|sink| v1::AuditSinkStatus {
                    kind: sink.kind.name().to_string(),
                    target: sink.target.clone(),
                    healthy: sink.healthy,
                    problem: sink.problem.clone().unwrap_or_default(),
                    records_written: sink.written,
                    records_failed: sink.failed,
                })
                .collect(),
        }),
        recommended_actions,
    };
    let SealFacts::Unsealed(appliance) = &facts.seal else {
        return response;
    };
    let counts = appliance.counts;
    let count32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let summary = |c: &CaCertificate| v1::CaCertificateSummary {
        subject: c.subject.clone(),
        serial: c.serial.clone(),
        not_after: Some(c.not_after.into()),
    };
    response.sealed = false;
    response.hsm_status = hsm_status(&appliance.hsm);
    response.certificates_issued = counts.issued.saturating_add(counts.revoked);
    response.hsm_pool = Some(v1::HsmPoolStatus {
        capacity: count32(appliance.pool.capacity),
        open: count32(appliance.pool.open),
        idle: count32(appliance.pool.idle),
    });
    response.issuing_ca = Some(summary(&appliance.issuing_ca));
    response.chain = appliance.chain.iter().map(summary).collect();
    response.certificates = Some(v1::CertificateCounts {
        pending: counts.pending,
        issued: counts.issued,
        revoked: counts.revoked,
        expiring: counts.expiring,
        expiring_window: wire_duration(EXPIRING_WINDOW),
    });
    response.transit = Some(match &appliance.transit {
        None => v1::TransitSummary::default(),
        Some(transit) => v1::TransitSummary {
            enabled: true,
            keys_overdue: transit.keys_overdue,
            rotation_max_age: wire_duration(transit.max_age),
            current_kek: transit.current_kek.clone(),
            kek_versions_to_rewrap: transit.versions_to_rewrap,
            kek_rewrap_pending: transit.rewrap_pending,
        },
    });
    response
}

/// A duration on the wire.
fn wire_duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

/// The wire form of the token's state, as sys.proto defines it.
pub(crate) fn hsm_status(status: &TokenStatus) -> String {
    match status {
        TokenStatus::Ready => "ready".to_string(),
        TokenStatus::Unavailable { reason } => format!("unavailable: {reason}"),
        TokenStatus::LoginRefused => "login refused".to_string(),
    }
}

#[tonic::async_trait]
impl Sys for SysService {
    async fn status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        match SysService::status(self).await {
            Ok(response) => {
                // Polled by monitoring: debug, not info.
                tracing::debug!(
                    method = "Status",
                    hsm = %response.hsm_status,
                    actions = response.recommended_actions.len(),
                    outcome = "ok",
                    "gRPC request"
                );
                Ok(Response::new(response))
            }
            Err(failure) => {
                let status = Status::from(failure);
                tracing::warn!(
                    method = "Status",
                    outcome = ?status.code(),
                    error = status.message(),
                    "gRPC request failed"
                );
                Err(status)
            }
        }
    }

    async fn digest_value(
        &self,
        request: Request<v1::DigestValueRequest>,
    ) -> Result<Response<v1::DigestValueResponse>, Status> {
        let value = &request.get_ref().value;
        if value.len() > MAX_DIGEST_INPUT {
            return Err(Status::invalid_argument(format!(
                "value: at most {MAX_DIGEST_INPUT} bytes, got {}",
                value.len()
            )));
        }
        let appliance = self.seal.gate().appliance()?;
        let digests = appliance
            .value_digests
            .as_ref()
            .or(appliance.csr_digests.as_ref())
            .ok_or_else(|| {
                Status::failed_precondition(
                    "this appliance records no digests (audit.digest_values and \
                     audit.digest_csrs are off)",
                )
            })?;
        let digest = digests.digest(value);
        AuditTarget::of(&request).note("value_hmac", &digest);
        Ok(Response::new(v1::DigestValueResponse { digest }))
    }

    async fn create_bootstrap_token(
        &self,
        request: Request<v1::CreateBootstrapTokenRequest>,
    ) -> Result<Response<v1::CreateBootstrapTokenResponse>, Status> {
        let target = AuditTarget::of(&request);
        let who = requester(&request);
        let shown = who.as_deref().unwrap_or("-").to_string();
        let result = match who {
            Ok(who) => self.create_token(who, request.into_inner(), &target).await,
            Err(failure) => Err(failure),
        };
        let id = result.as_ref().ok().map(|r| r.id.clone());
        finish_token_call("CreateBootstrapToken", &shown, id.as_deref(), result)
    }

    async fn list_bootstrap_tokens(
        &self,
        request: Request<v1::ListBootstrapTokensRequest>,
    ) -> Result<Response<v1::ListBootstrapTokensResponse>, Status> {
        let who = requester(&request);
        let shown = who.as_deref().unwrap_or("-").to_string();
        let result = match who {
            Ok(_) => self.list_tokens(request.into_inner()).await,
            Err(failure) => Err(failure),
        };
        finish_token_call("ListBootstrapTokens", &shown, None, result)
    }

    async fn revoke_bootstrap_token(
        &self,
        request: Request<v1::RevokeBootstrapTokenRequest>,
    ) -> Result<Response<v1::BootstrapToken>, Status> {
        let target = AuditTarget::of(&request);
        let who = requester(&request);
        let shown = who.as_deref().unwrap_or("-").to_string();
        let asked = convert::quoted(&request.get_ref().id);
        let result = match who {
            Ok(_) => self.revoke_token(request.into_inner(), &target).await,
            Err(failure) => Err(failure),
        };
        finish_token_call("RevokeBootstrapToken", &shown, Some(&asked), result)
    }
}

/// Largest value Sys.DigestValue takes (the largest transit input).
const MAX_DIGEST_INPUT: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T00:00:00Z, the tests' `now`.
    fn now() -> SystemTime {
        at(2026, 11, 22)
    }

    /// Midnight UTC of a date.
    fn at(year: u16, month: u8, day: u8) -> SystemTime {
        der::DateTime::new(year, month, day, 0, 0, 0)
            .expect("date")
            .to_system_time()
    }

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * DAY)
    }

    fn healthy_audit() -> AuditFacts {
        AuditFacts {
            healthy: true,
            problem: None,
            file: "/var/lib/strongroom/audit/audit-00000000000000000001.jsonl".into(),
            last_seq: 42,
            failed: 0,
            sinks: Vec::new(),
            problem_at: None,
        }
    }

    /// An unsealed appliance with nothing to do at [`now`].
    fn appliance() -> ApplianceFacts {
        ApplianceFacts {
            hsm: TokenStatus::Ready,
            pool: PoolUsage {
                capacity: 4,
                open: 2,
                idle: 1,
            },
            issuing_ca: CaCertificate {
                subject: "CN=Issuing CA".into(),
                serial: "0a1b".into(),
                not_after: now() + days(400),
            },
            chain: vec![CaCertificate {
                subject: "CN=Root CA".into(),
                serial: "01".into(),
                not_after: now() + days(3_000),
            }],
            counts: Counts {
                pending: 1,
                issued: 10,
                revoked: 2,
                expiring: 0,
            },
            transit: Some(TransitFacts {
                keys: 3,
                keys_overdue: 0,
                max_age: days(365),
                current_kek: "transit-kek".into(),
                versions_to_rewrap: 0,
                rewrap_pending: false,
            }),
        }
    }

    fn unsealed(change: impl FnOnce(&mut ApplianceFacts)) -> Facts {
        let mut appliance = appliance();
        change(&mut appliance);
        Facts {
            hsm_token: "strongroom".into(),
            audit: healthy_audit(),
            server_tls: None,
            seal: SealFacts::Unsealed(Box::new(appliance)),
        }
    }

    fn actions(facts: &Facts) -> Vec<String> {
        recommended_actions(facts, now())
    }

    #[test]
    fn hsm_states_read_as_sys_proto_says() {
        assert_eq!(hsm_status(&TokenStatus::Ready), "ready");
        assert_eq!(
            hsm_status(&TokenStatus::Unavailable {
                reason: "token removed".into()
            }),
            "unavailable: token removed"
        );
        assert_eq!(hsm_status(&TokenStatus::LoginRefused), "login refused");
    }

    #[test]
    fn nothing_to_do_says_nothing() {
        assert_eq!(actions(&unsealed(|_| {})), Vec::<String>::new());
        // Transit not configured: nothing to say about it either.
        assert!(actions(&unsealed(|a| a.transit = None)).is_empty());
        // A re-wrap flag without versions left (a retry pass) is not work
        // for the operator.
        assert!(
            actions(&unsealed(|a| {
                if let Some(t) = &mut a.transit {
                    t.rewrap_pending = true;
                }
            }))
            .is_empty()
        );
    }

    #[test]
    fn a_sealed_appliance_is_to_be_unsealed() {
        let facts = Facts {
            hsm_token: "strongroom".into(),
            audit: healthy_audit(),
            server_tls: None,
            seal: SealFacts::Sealed {
                progress: 1,
                threshold: 3,
            },
        };
        assert_eq!(
            actions(&facts),
            [
                "Unseal the appliance: 1 of 3 shares given so far; each officer runs strongroom \
              operator unseal"
            ]
        );
    }

    #[test]
    fn an_uninitialised_appliance_is_to_be_initialised() {
        let facts = Facts {
            hsm_token: "strongroom".into(),
            audit: healthy_audit(),
            server_tls: None,
            seal: SealFacts::Uninitialized,
        };
        assert_eq!(
            actions(&facts),
            ["Initialise the appliance: strongroom operator init --shares N --threshold K"]
        );
    }

    #[test]
    fn a_server_certificate_that_cannot_be_renewed_is_reported() {
        let mut facts = unsealed(|_| {});
        facts.server_tls = Some(ServerTlsFacts {
            serial: "5eed".into(),
            not_after: now() + Duration::from_secs(10 * DAY + 60),
            problem: None,
        });
        assert!(actions(&facts).is_empty());
        if let Some(tls) = &mut facts.server_tls {
            tls.problem = Some("invalid request: names not allowed".into());
        }
        let told = actions(&facts);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0]
                .starts_with("The gRPC server's TLS certificate (serial 5eed) expires in 10 days"),
            "{told:?}"
        );
        assert!(told[0].contains("names not allowed"), "{told:?}");
        // Known while sealed too.
        facts.seal = SealFacts::Sealed {
            progress: 0,
            threshold: 1,
        };
        assert_eq!(actions(&facts).len(), 2);
    }

    #[test]
    fn an_hsm_that_is_down_is_reported_with_what_to_do() {
        let facts = unsealed(|a| {
            a.hsm = TokenStatus::Unavailable {
                reason: "token not present".into(),
            }
        });
        assert_eq!(
            actions(&facts),
            [
                "The HSM is unavailable (token not present): check the token and its PKCS#11 \
              module; the appliance reconnects by itself"
            ]
        );
        let facts = unsealed(|a| a.hsm = TokenStatus::LoginRefused);
        let refused = actions(&facts);
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0].starts_with("The HSM refused the appliance's PIN"),
            "{refused:?}"
        );
        assert!(
            refused[0].contains("strongroom operator unseal"),
            "{refused:?}"
        );
    }

    #[test]
    fn audit_problems_are_reported_sealed_or_not() {
        let broken = AuditFacts {
            healthy: false,
            problem: Some("No space left on device (os error 28)".into()),
            failed: 3,
            ..healthy_audit()
        };
        let mut facts = unsealed(|_| {});
        facts.audit = broken.clone();
        assert_eq!(
            actions(&facts),
            [
                "The audit trail cannot write: No space left on device (os error 28); every \
              request fails until it can"
            ]
        );
        // Known while sealed too, after the seal's own action.
        let sealed = Facts {
            hsm_token: "strongroom".into(),
            audit: broken.clone(),
            server_tls: None,
            seal: SealFacts::Sealed {
                progress: 0,
                threshold: 2,
            },
        };
        let both = actions(&sealed);
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(both[0].starts_with("Unseal the appliance"), "{both:?}");
        assert!(
            both[1].starts_with("The audit trail cannot write"),
            "{both:?}"
        );
        // Writing again after a problem: find its cause.
        facts.audit = AuditFacts {
            healthy: true,
            ..broken
        };
        assert_eq!(
            actions(&facts),
            [
                "The audit trail writes again after a problem; find its cause: No space left on \
              device (os error 28); 3 records could not be written and their requests failed"
            ]
        );
    }

    #[test]
    fn a_sink_that_cannot_write_is_named_while_the_other_takes_the_records() {
        let sink = |kind, target: &str, healthy, problem: Option<&str>| SinkHealth {
            kind,
            target: target.into(),
            healthy,
            problem: problem.map(str::to_owned),
            written: 7,
            failed: if healthy { 0 } else { 2 },
        };
        let mut facts = unsealed(|_| {});
        facts.audit.problem = Some("syslog udp://logs:514: Connection refused".into());
        facts.audit.sinks = vec![
            sink(SinkKind::File, "/a/audit-1.jsonl", true, None),
            sink(
                SinkKind::Syslog,
                "udp://logs:514",
                false,
                Some("syslog udp://logs:514: Connection refused"),
            ),
        ];
        assert_eq!(
            actions(&facts),
            [
                "The audit trail cannot send to syslog at udp://logs:514 (syslog \
                 udp://logs:514: Connection refused): records go to its files only until it can"
            ]
        );
        facts.audit.sinks[0] = sink(SinkKind::File, "/a", false, Some("/a: No space left"));
        facts.audit.sinks[1].healthy = true;
        assert_eq!(
            actions(&facts),
            [
                "The audit trail's files cannot be written (/a: No space left): records go to \
                 syslog only until they can, and the files will have a gap there that \
                 strongroom audit verify names"
            ]
        );
        // Both down: the trail cannot write, which says it all.
        facts.audit.healthy = false;
        let found = actions(&facts);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("The audit trail cannot write"),
            "{found:?}"
        );
        // The wire carries each sink.
        let wire = response(&facts, Vec::new(), now()).audit.expect("audit");
        assert_eq!(wire.sinks.len(), 2);
        assert_eq!(
            wire.sinks[1],
            v1::AuditSinkStatus {
                kind: "syslog".into(),
                target: "udp://logs:514".into(),
                healthy: true,
                problem: "syslog udp://logs:514: Connection refused".into(),
                records_written: 7,
                records_failed: 2,
            }
        );
        assert_eq!(
            (wire.sinks[0].kind.as_str(), wire.sinks[0].healthy),
            ("file", false)
        );
    }

    #[test]
    fn ca_certificates_are_mentioned_from_90_days_before_they_expire() {
        let facts = unsealed(|a| a.issuing_ca.not_after = at(2026, 12, 12));
        assert_eq!(
            actions(&facts),
            [
                "The issuing CA expires in 20 days (2026-12-12): sign a new intermediate in a \
              ceremony and configure it as ca.issuer_certificate"
            ]
        );
        // 91 days away: not yet.
        assert!(actions(&unsealed(|a| a.issuing_ca.not_after = now() + days(91))).is_empty());
        // 89 days and some hours: 89 days.
        let soon = actions(&unsealed(|a| {
            a.issuing_ca.not_after = now() + days(89) + Duration::from_secs(3_600)
        }));
        assert!(soon[0].contains("expires in 89 days"), "{soon:?}");
        let today = actions(&unsealed(|a| {
            a.issuing_ca.not_after = now() + Duration::from_secs(3_600)
        }));
        assert!(
            today[0].contains("expires within a day (2026-11-22)"),
            "{today:?}"
        );
        let expired = actions(&unsealed(|a| a.issuing_ca.not_after = at(2026, 11, 1)));
        assert!(
            expired[0].starts_with("The issuing CA expired on 2026-11-01: "),
            "{expired:?}"
        );
        let root = actions(&unsealed(|a| a.chain[0].not_after = at(2027, 1, 1)));
        assert_eq!(
            root,
            [
                "The CA certificate CN=Root CA (ca.chain) expires in 40 days (2027-01-01): renew \
              it in a ceremony and update ca.chain"
            ]
        );
    }

    #[test]
    fn certificates_expiring_within_30_days_name_the_listing() {
        assert_eq!(
            actions(&unsealed(|a| a.counts.expiring = 12)),
            [
                "12 certificates expire within 30 days: strongroom cert list --status issued \
              --expiring-within 30d"
            ]
        );
        assert_eq!(
            actions(&unsealed(|a| a.counts.expiring = 1)),
            [
                "1 certificate expires within 30 days: strongroom cert list --status issued \
              --expiring-within 30d"
            ]
        );
    }

    #[test]
    fn overdue_transit_keys_name_the_report() {
        let overdue = |n| {
            actions(&unsealed(|a| {
                if let Some(t) = &mut a.transit {
                    t.keys_overdue = n;
                }
            }))
        };
        assert_eq!(
            overdue(3),
            ["3 transit keys are overdue for rotation: strongroom transit report"]
        );
        assert_eq!(
            overdue(1),
            ["1 transit key is overdue for rotation: strongroom transit report"]
        );
    }

    #[test]
    fn a_kek_rewrap_in_progress_names_its_status() {
        let left = |n| {
            actions(&unsealed(|a| {
                if let Some(t) = &mut a.transit {
                    t.versions_to_rewrap = n;
                    t.rewrap_pending = true;
                }
            }))
        };
        assert_eq!(
            left(7),
            ["KEK re-wrap: 7 key versions left: strongroom transit kek status"]
        );
        assert_eq!(
            left(1),
            ["KEK re-wrap: 1 key version left: strongroom transit kek status"]
        );
    }

    #[test]
    fn actions_come_most_urgent_first() {
        let mut facts = unsealed(|a| {
            a.hsm = TokenStatus::LoginRefused;
            a.issuing_ca.not_after = now() + days(10);
            a.counts.expiring = 2;
            if let Some(t) = &mut a.transit {
                t.keys_overdue = 2;
                t.versions_to_rewrap = 5;
            }
        });
        facts.audit.healthy = false;
        let found = actions(&facts);
        let starts = [
            "The HSM refused",
            "The audit trail cannot write",
            "The issuing CA expires",
            "2 certificates expire",
            "2 transit keys",
            "KEK re-wrap",
        ];
        assert_eq!(found.len(), starts.len(), "{found:?}");
        for (action, start) in found.iter().zip(starts) {
            assert!(action.starts_with(start), "{action:?} vs {start:?}");
        }
    }

    #[test]
    fn the_response_carries_every_fact() {
        let started = now() - days(1);
        let facts = unsealed(|a| a.counts.expiring = 3);
        let wire = response(&facts, vec!["do this".into()], started);
        assert!(!wire.sealed && wire.initialized);
        assert_eq!(wire.hsm_status, "ready");
        assert_eq!(wire.hsm_token, "strongroom");
        assert_eq!(wire.certificates_issued, 12);
        assert_eq!(
            wire.hsm_pool,
            Some(v1::HsmPoolStatus {
                capacity: 4,
                open: 2,
                idle: 1
            })
        );
        let issuing = wire.issuing_ca.expect("issuing CA");
        assert_eq!(
            (issuing.subject.as_str(), issuing.serial.as_str()),
            ("CN=Issuing CA", "0a1b")
        );
        assert_eq!(
            issuing.not_after.expect("not_after").seconds,
            unix(now() + days(400))
        );
        assert_eq!(wire.chain.len(), 1);
        let counts = wire.certificates.expect("counts");
        assert_eq!(
            (
                counts.pending,
                counts.issued,
                counts.revoked,
                counts.expiring
            ),
            (1, 10, 2, 3)
        );
        assert_eq!(counts.expiring_window.expect("window").seconds, 30 * 86_400);
        let transit = wire.transit.expect("transit");
        assert!(transit.enabled);
        assert_eq!(transit.current_kek, "transit-kek");
        assert_eq!(
            transit.rotation_max_age.expect("max age").seconds,
            365 * 86_400
        );
        let audit = wire.audit.expect("audit");
        assert!(audit.healthy && audit.problem.is_empty());
        assert_eq!((audit.last_seq, audit.records_failed), (42, 0));
        assert_eq!(wire.recommended_actions, ["do this"]);
        assert_eq!(wire.started_at.expect("started").seconds, unix(started));

        // Without transit: present, and disabled.
        let wire = response(&unsealed(|a| a.transit = None), Vec::new(), started);
        assert_eq!(wire.transit, Some(v1::TransitSummary::default()));
    }

    #[test]
    fn a_sealed_response_carries_what_is_known_without_the_appliance() {
        let facts = Facts {
            hsm_token: "strongroom".into(),
            audit: healthy_audit(),
            server_tls: None,
            seal: SealFacts::Sealed {
                progress: 0,
                threshold: 2,
            },
        };
        let wire = response(&facts, recommended_actions(&facts, now()), now());
        assert!(wire.sealed && wire.initialized);
        assert_eq!(wire.hsm_status, "sealed");
        assert_eq!(wire.hsm_token, "strongroom");
        assert_eq!(wire.certificates_issued, 0);
        assert_eq!(
            (
                wire.hsm_pool,
                wire.issuing_ca,
                wire.certificates,
                wire.transit
            ),
            (None, None, None, None)
        );
        assert!(wire.chain.is_empty());
        assert_eq!(wire.audit.expect("audit").last_seq, 42);
        assert_eq!(wire.recommended_actions.len(), 1);
        let uninitialized = Facts {
            seal: SealFacts::Uninitialized,
            ..facts
        };
        assert!(!response(&uninitialized, Vec::new(), now()).initialized);
    }

    #[test]
    fn ca_certificates_are_read_from_der() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cli/testdata/old.pem");
        let der = crate::appliance::read_pem_certificate(std::path::Path::new(path))
            .expect("test certificate");
        let certificate = CaCertificate::from_der(&der).expect("certificate");
        assert_eq!(certificate.subject, "CN=svc.test");
        assert_eq!(certificate.serial, "1a2b3c4d5e6f7081");
        assert_eq!(date(certificate.not_after), "2026-12-22");
        // Garbage fails, named by its position.
        let error = CaCertificate::from_der(b"not a certificate").expect_err("not DER");
        match unreadable(1, &error) {
            Failure::Internal(message) => assert!(
                message.starts_with("certificate 1 of ca.chain cannot be read: "),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
