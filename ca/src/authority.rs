//! The issuing authority: profile checks, then record-before-sign issuance.
//!
//! Issuance is two steps joined by a single-use value, so the order cannot be
//! got wrong:
//!
//! 1. [`Authority::prepare`] checks the request against its profile (naming
//!    every violation), builds the to-be-signed certificate with a serial from
//!    the HSM's random generator, lints it, and records it *pending* in the
//!    store. It returns a [`Prepared`], which is neither `Clone` nor `Copy`.
//! 2. [`Authority::issue`] consumes the `Prepared`: the HSM signs the recorded
//!    bytes, the signature is verified, and the record is completed.
//!
//! [`Authority::prepare_all`] and [`Authority::issue_all`] take the same two
//! steps for many requests at once, each with its own result, handing the
//! store their writes together so they share its commits.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use strongroom_hsm::{BufferedRandom, PublicKey, RandomSource};
use x509_cert::TbsCertificate;

use crate::certificate::{DistributionUrls, Kind, Template, assemble, build_tbs};
use crate::clock::Clock;
use crate::crl::{CrlBuilder, CrlRequest, CrlScope, crl_url_problem};
use crate::csr::Csr;
use crate::error::CaError;
use crate::issuer::{Issuer, pem};
use crate::lint::lint;
use crate::names::{Names, dns_name_problem};
use crate::profile::Profile;
use crate::revocation::RevocationReason;
use crate::store::{
    CertFilter, CertPage, CertRecord, CertStatus, CertStore, Completion, CrlSeries, Revocation,
    RevokeOutcome, Serial, StoreError, StoredCrl,
};
use crate::x509::{build_name, unix};

/// How far not-before is set in the past, so clients with slightly slow clocks accept new certificates.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A request for a certificate, already parsed into domain types.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The profile to issue under.
    pub profile: String,
    /// The authenticated identity asking.
    pub requester: String,
    /// The subject's public key.
    pub public_key: PublicKey,
    /// The subject common name; it must also be one of the names.
    pub common_name: Option<String>,
    /// The subject alternative names.
    pub names: Names,
    /// Requested validity; the profile's default when `None`.
    pub ttl: Option<Duration>,
    /// The certificate this one renews.
    pub renewal_of: Option<Serial>,
}

impl IssueRequest {
    /// A request for the key and names of a verified CSR. A common name that
    /// is not among the CSR's names is added to them.
    pub fn from_csr(profile: &str, requester: &str, csr: Csr, ttl: Option<Duration>) -> Self {
        let mut names = csr.names;
        if let Some(cn) = &csr.common_name {
            match cn.parse::<IpAddr>() {
                Ok(ip) => names.push_ip(ip),
                Err(_) => names.push_dns(cn),
            }
        }
        IssueRequest {
            profile: profile.to_string(),
            requester: requester.to_string(),
            public_key: csr.public_key,
            common_name: csr.common_name.map(|c| c.to_ascii_lowercase()),
            names,
            ttl,
            renewal_of: None,
        }
    }
}

/// A certificate recorded as pending and ready to be signed. Single use.
#[derive(Debug)]
pub struct Prepared {
    record: CertRecord,
    tbs: TbsCertificate,
}

impl Prepared {
    /// The pending record as stored.
    pub fn record(&self) -> &CertRecord {
        &self.record
    }
}

/// A signed certificate, recorded as issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The inventory record.
    pub record: CertRecord,
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
}

impl Issued {
    /// The certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.certificate_der)
    }
}

/// How many fresh serials issuance draws for one certificate before giving up.
const SERIAL_ATTEMPTS: usize = 3;

/// What every attempt at issuing one request shares (see `Authority::plan`).
struct Plan {
    profile: String,
    subject: x509_cert::name::Name,
    kind: Kind,
    not_before: SystemTime,
    not_after: SystemTime,
    now: SystemTime,
}

/// How many bytes of HSM randomness the authority draws at once for serials:
/// one `C_GenerateRandom` per 256 certificates instead of one each.
const SERIAL_RANDOM_BULK: usize = 4096;

/// An issuing CA: its issuer, profiles, store and sources of time and randomness.
pub struct Authority {
    issuer: Issuer,
    chain: Vec<Vec<u8>>,
    /// `chain` as concatenated PEM, made once: every issuance returns it.
    chain_pem: String,
    profiles: BTreeMap<String, Profile>,
    store: Arc<dyn CertStore>,
    clock: Arc<dyn Clock>,
    /// Serial randomness: `random` as given to [`Authority::new`], drawn
    /// [`SERIAL_RANDOM_BULK`] bytes at a time.
    random: BufferedRandom,
    urls: DistributionUrls,
    crl_partitions: u32,
    /// Where delta CRLs are published (a template like the CRL URL), when
    /// they are.
    delta_crl_url: Option<String>,
}

/// What a CRL Distribution Point URL must contain when CRLs are partitioned:
/// it is replaced by the certificate's partition number.
pub const PARTITION_PLACEHOLDER: &str = "{partition}";

/// The most CRL partitions an issuer may have.
pub const MAX_CRL_PARTITIONS: u32 = 4096;

/// The profile name under which delegated OCSP signer certificates are
/// recorded in the inventory.
pub const OCSP_SIGNER_PROFILE: &str = "ocsp-signer";

impl Authority {
    /// An authority issuing as `issuer`.
    ///
    /// `chain_above` is the DER chain above the issuer (e.g. the root), nearest first.
    /// Serials come from `random`, drawn in bulk ([`BufferedRandom`]).
    pub fn new(
        issuer: Issuer,
        chain_above: Vec<Vec<u8>>,
        profiles: Vec<Profile>,
        urls: DistributionUrls,
        store: Arc<dyn CertStore>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
    ) -> Self {
        let mut chain = vec![issuer.certificate_der().to_vec()];
        chain.extend(chain_above);
        let chain_pem = chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        Authority {
            issuer,
            chain,
            chain_pem,
            profiles: profiles.into_iter().map(|p| (p.name.clone(), p)).collect(),
            store,
            clock,
            random: BufferedRandom::new(random, SERIAL_RANDOM_BULK),
            urls,
            crl_partitions: 0,
            delta_crl_url: None,
        }
    }

    /// Partitions CRLs into `count` shards (0: one CRL for everything).
    ///
    /// Each new certificate is assigned a partition from its serial, once, at
    /// issuance; the CRL Distribution Point URL (which must then contain
    /// [`PARTITION_PLACEHOLDER`]) is written into it with that number. The
    /// count may change later: certificates keep the partition they were
    /// issued with.
    pub fn with_crl_partitions(mut self, count: u32) -> Result<Self, CaError> {
        if count > MAX_CRL_PARTITIONS {
            return Err(CaError::BadIssuer(format!(
                "at most {MAX_CRL_PARTITIONS} CRL partitions, not {count}"
            )));
        }
        let templated = self
            .urls
            .crl
            .as_deref()
            .is_some_and(|url| url.contains(PARTITION_PLACEHOLDER));
        if count > 0 && !templated {
            return Err(CaError::BadIssuer(format!(
                "partitioned CRLs need a CRL URL containing {PARTITION_PLACEHOLDER}"
            )));
        }
        if count == 0 && templated {
            return Err(CaError::BadIssuer(format!(
                "the CRL URL contains {PARTITION_PLACEHOLDER} but CRLs are not partitioned"
            )));
        }
        self.crl_partitions = count;
        Ok(self)
    }

    /// How many CRL partitions new certificates are spread over (0: none).
    pub fn crl_partitions(&self) -> u32 {
        self.crl_partitions
    }

    /// The CRL Distribution Point URL of `partition`, or of the whole
    /// issuer with `None`.
    pub fn crl_url(&self, partition: Option<u32>) -> Option<String> {
        let url = self.urls.crl.as_deref()?;
        Some(match partition {
            Some(n) => url.replace(PARTITION_PLACEHOLDER, &n.to_string()),
            None => url.to_string(),
        })
    }

    /// The distribution URLs configured for this issuer.
    pub fn urls(&self) -> &DistributionUrls {
        &self.urls
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn CertStore> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The configured profiles, by name.
    pub fn profiles(&self) -> &BTreeMap<String, Profile> {
        &self.profiles
    }

    /// The CA chain, issuer first, as DER.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The CA chain, issuer first, as concatenated PEM.
    pub fn chain_pem(&self) -> String {
        self.chain_pem.clone()
    }

    /// Checks, builds, lints and records a certificate; see the module docs.
    pub fn prepare(&self, request: IssueRequest) -> Result<Prepared, CaError> {
        let plan = self.plan(&request)?;
        self.record_pending(&plan, &request, SERIAL_ATTEMPTS)
    }

    /// [`Authority::prepare`] of each request, each with its own result, the
    /// pending records stored together ([`CertStore::insert_pending_all`]):
    /// one durable commit for the whole batch where the store can group
    /// them, rather than one per certificate.
    pub fn prepare_all(&self, requests: Vec<IssueRequest>) -> Vec<Result<Prepared, CaError>> {
        let drafts: Vec<Result<(Plan, Prepared), CaError>> = requests
            .iter()
            .map(|request| {
                let plan = self.plan(request)?;
                let draft = self.draft(&plan, request)?;
                Ok((plan, draft))
            })
            .collect();
        let mut stored = {
            let records: Vec<&CertRecord> = drafts
                .iter()
                .filter_map(|d| d.as_ref().ok().map(|(_, draft)| &draft.record))
                .collect();
            self.store.insert_pending_all(&records).into_iter()
        };
        drafts
            .into_iter()
            .zip(&requests)
            .map(|(draft, request)| {
                let (plan, draft) = draft?;
                match stored.next().unwrap_or_else(|| Err(missing_result())) {
                    Ok(()) => Ok(draft),
                    // The serial was taken: draw again, alone.
                    Err(StoreError::DuplicateSerial { .. }) => {
                        self.record_pending(&plan, request, SERIAL_ATTEMPTS - 1)
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .collect()
    }

    /// What every attempt at issuing `request` shares: its profile checked
    /// (every violation named), its subject, extensions and validity.
    fn plan(&self, request: &IssueRequest) -> Result<Plan, CaError> {
        let profile = self
            .profiles
            .get(&request.profile)
            .ok_or_else(|| CaError::UnknownProfile(request.profile.clone()))?;
        let ttl = request.ttl.unwrap_or(profile.default_ttl());
        let mut violations = profile.violations(&request.names, request.public_key.spec(), ttl);
        if let Some(cn) = &request.common_name {
            if cn.chars().count() > 64 {
                violations.push(format!(
                    "common name {} is longer than 64 characters (RFC 5280 ub-common-name)",
                    crate::names::quoted(cn)
                ));
            }
            let listed = request.names.dns.iter().any(|d| d.eq_ignore_ascii_case(cn))
                || request.names.ips.iter().any(|ip| &ip.to_string() == cn);
            if !listed {
                violations.push(format!(
                    "common name '{cn}' is not among the requested names"
                ));
            }
            if cn.parse::<IpAddr>().is_err() && dns_name_problem(cn).is_some() {
                violations.push(format!(
                    "common name '{cn}' is not a host name or IP address"
                ));
            }
        }
        if !violations.is_empty() {
            return Err(CaError::Policy(violations));
        }

        let now = self.clock.now();
        let at = |unix: i64| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
        };
        // Backdated, but never before the issuer's own validity; capped by its end.
        let not_before = (now - BACKDATE).max(at(self.issuer.not_before()));
        let not_after = (now + ttl).min(at(self.issuer.not_after()));
        if not_after <= now {
            return Err(CaError::BadIssuer(
                "the issuer certificate has expired".into(),
            ));
        }
        let mut subject = profile.subject.clone();
        if let Some(cn) = &request.common_name {
            subject.push(("CN".into(), cn.clone()));
        }
        let subject = build_name(&subject).map_err(CaError::BadRequest)?;
        let kind = Kind::Leaf {
            key_usage: profile
                .key_usage
                .iter()
                .copied()
                .filter(|u| {
                    *u != x509_cert::ext::pkix::KeyUsages::KeyEncipherment
                        || matches!(
                            request.public_key.spec(),
                            strongroom_hsm::KeySpec::Rsa { .. }
                        )
                })
                .collect(),
            ext_key_usage: profile.ext_key_usage.clone(),
        };

        Ok(Plan {
            profile: profile.name.clone(),
            subject,
            kind,
            not_before,
            not_after,
            now,
        })
    }

    /// Drafts and records `request` pending under a fresh serial, drawing
    /// again (up to `attempts` times in all) if the serial is taken: a clash
    /// is astronomically unlikely, but the store enforces uniqueness.
    fn record_pending(
        &self,
        plan: &Plan,
        request: &IssueRequest,
        attempts: usize,
    ) -> Result<Prepared, CaError> {
        for _ in 0..attempts {
            let draft = self.draft(plan, request)?;
            match self.store.insert_pending(&draft.record) {
                Ok(()) => return Ok(draft),
                Err(StoreError::DuplicateSerial { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CaError::Store(StoreError::Unavailable(format!(
            "{SERIAL_ATTEMPTS} random serials in a row already existed"
        ))))
    }

    /// The to-be-signed certificate for `request` under a fresh serial,
    /// linted, with its pending record; not yet stored.
    fn draft(&self, plan: &Plan, request: &IssueRequest) -> Result<Prepared, CaError> {
        let serial = self.random_serial()?;
        let crl_partition = self.partition_of(&serial);
        let urls = DistributionUrls {
            crl: self.crl_url(crl_partition),
            ..self.urls.clone()
        };
        let tbs = build_tbs(&Template {
            serial: serial.as_bytes(),
            signature: self.issuer.signature().clone(),
            issuer: self.issuer.name().clone(),
            issuer_key_id: Some(self.issuer.key_id().to_vec()),
            subject: plan.subject.clone(),
            subject_spki_der: request.public_key.der(),
            names: &request.names,
            not_before: plan.not_before,
            not_after: plan.not_after,
            kind: plan.kind.clone(),
            urls: &urls,
        })
        .map_err(CaError::BadRequest)?;
        let findings = lint(&tbs, &self.issuer.facts());
        if !findings.is_empty() {
            return Err(CaError::Lint(
                findings
                    .into_iter()
                    .map(|f| format!("certificate: {f}"))
                    .collect(),
            ));
        }
        let tbs_der = tbs.to_der().map_err(|e| CaError::Internal(e.to_string()))?;
        let record = CertRecord {
            issuer_id: self.issuer.id().to_string(),
            serial: serial.clone(),
            profile: plan.profile.clone(),
            requester: request.requester.clone(),
            subject: tbs.subject.to_string(),
            sans: request.names.to_strings(),
            not_before: unix(plan.not_before),
            not_after: unix(plan.not_after),
            status: CertStatus::Pending,
            tbs_der,
            cert_der: None,
            created_at: unix(plan.now),
            issued_at: None,
            renewal_of: request.renewal_of.clone(),
            revocation: None,
            crl_partition,
        };
        Ok(Prepared { record, tbs })
    }

    /// Signs a prepared certificate in the HSM, verifies it, and completes its record.
    pub fn issue(&self, prepared: Prepared) -> Result<Issued, CaError> {
        let (record, der) = self.sign(prepared)?;
        let issued_at = unix(self.clock.now());
        self.store
            .complete(&record.issuer_id, &record.serial, &der, issued_at)?;
        Ok(issued(record, der, issued_at))
    }

    /// [`Authority::issue`] of each prepared certificate, each with its own
    /// result, the records completed together ([`CertStore::complete_all`]).
    pub fn issue_all(&self, prepared: Vec<Prepared>) -> Vec<Result<Issued, CaError>> {
        let signed: Vec<Result<(CertRecord, Vec<u8>), CaError>> =
            prepared.into_iter().map(|p| self.sign(p)).collect();
        let issued_at = unix(self.clock.now());
        let mut completed = {
            let completions: Vec<Completion<'_>> = signed
                .iter()
                .filter_map(|s| s.as_ref().ok())
                .map(|(record, der)| Completion {
                    issuer_id: &record.issuer_id,
                    serial: &record.serial,
                    cert_der: der,
                    issued_at,
                })
                .collect();
            self.store.complete_all(&completions).into_iter()
        };
        signed
            .into_iter()
            .map(|signed| {
                let (record, der) = signed?;
                completed.next().unwrap_or_else(|| Err(missing_result()))?;
                Ok(issued(record, der, issued_at))
            })
            .collect()
    }

    /// The certificate of `prepared`, signed in the HSM and verified, with
    /// its record.
    fn sign(&self, prepared: Prepared) -> Result<(CertRecord, Vec<u8>), CaError> {
        let Prepared { record, tbs } = prepared;
        let signature = self.issuer.sign_verified(&record.tbs_der)?;
        let certificate = assemble(tbs, &signature).map_err(CaError::Internal)?;
        let der = certificate
            .to_der()
            .map_err(|e| CaError::Internal(e.to_string()))?;
        Ok((record, der))
    }

    /// Issues a delegated OCSP signer certificate (see
    /// [`Issuer::sign_ocsp_signer`]) for `public_key`, valid for `validity`
    /// from now (backdated like every certificate, capped to the issuer's
    /// validity). Like any certificate it is recorded pending before the HSM
    /// signs it, under the profile [`OCSP_SIGNER_PROFILE`].
    pub fn issue_ocsp_signer(
        &self,
        public_key: &PublicKey,
        validity: Duration,
        requester: &str,
    ) -> Result<Issued, CaError> {
        let now = self.clock.now();
        for _ in 0..3 {
            let serial = self.random_serial()?;
            let tbs = crate::ocsp::signer_tbs(
                &self.issuer,
                public_key,
                serial.as_bytes(),
                now - BACKDATE,
                now + validity,
            )?;
            let tbs_der = tbs.to_der().map_err(|e| CaError::Internal(e.to_string()))?;
            let record = CertRecord {
                issuer_id: self.issuer.id().to_string(),
                serial: serial.clone(),
                profile: OCSP_SIGNER_PROFILE.to_string(),
                requester: requester.to_string(),
                subject: tbs.subject.to_string(),
                sans: Vec::new(),
                not_before: crate::x509::time_unix(&tbs.validity.not_before),
                not_after: crate::x509::time_unix(&tbs.validity.not_after),
                status: CertStatus::Pending,
                tbs_der,
                cert_der: None,
                created_at: unix(now),
                issued_at: None,
                renewal_of: None,
                revocation: None,
                crl_partition: None,
            };
            match self.store.insert_pending(&record) {
                Ok(()) => return self.issue(Prepared { record, tbs }),
                Err(StoreError::DuplicateSerial { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CaError::Store(StoreError::Unavailable(
            "three random serials in a row already existed".into(),
        )))
    }

    /// One certificate of this issuer by serial.
    pub fn get(&self, serial: &Serial) -> Result<CertRecord, CaError> {
        self.store
            .get(self.issuer.id(), serial)?
            .ok_or_else(|| CaError::NotFound(serial.clone()))
    }

    /// Searches the inventory.
    pub fn list(&self, filter: &CertFilter) -> Result<CertPage, CaError> {
        Ok(self.store.list(filter)?)
    }

    /// How many certificates the store holds that were signed: issued ones and
    /// revoked ones (pending records are not counted).
    pub fn count_issued(&self) -> Result<u64, CaError> {
        let issued = self.store.count(CertStatus::Issued)?;
        let revoked = self.store.count(CertStatus::Revoked)?;
        Ok(issued.saturating_add(revoked))
    }

    /// A request that renews `serial` for `requester`: same profile, names and
    /// subject, and the same key unless `new_key` is given. Only an issued,
    /// unexpired certificate can be renewed. Who may renew it is the caller's
    /// decision (the appliance's access policies).
    pub fn renewal_request(
        &self,
        serial: &Serial,
        requester: &str,
        new_key: Option<PublicKey>,
        ttl: Option<Duration>,
    ) -> Result<IssueRequest, CaError> {
        let record = self.get(serial)?;
        if record.status != CertStatus::Issued {
            return Err(CaError::NotRenewable {
                serial: serial.clone(),
                status: record.status.as_str(),
            });
        }
        if record.not_after <= unix(self.clock.now()) {
            return Err(CaError::NotRenewable {
                serial: serial.clone(),
                status: "expired",
            });
        }
        let der = record
            .cert_der
            .as_deref()
            .ok_or_else(|| CaError::Internal("issued record without a certificate".into()))?;
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| CaError::Internal(format!("stored certificate is unreadable: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let public_key = match new_key {
            Some(key) => key,
            None => PublicKey::from_der(
                &tbs.subject_public_key_info
                    .to_der()
                    .map_err(|e| CaError::Internal(e.to_string()))?,
            )?,
        };
        let mut names = Names::default();
        if let Some((_, san)) = tbs
            .get::<x509_cert::ext::pkix::SubjectAltName>()
            .map_err(|e| CaError::Internal(e.to_string()))?
        {
            for name in &san.0 {
                crate::x509::general_name_into(name, &mut names).map_err(CaError::Internal)?;
            }
        }
        Ok(IssueRequest {
            profile: record.profile,
            requester: requester.to_string(),
            public_key,
            common_name: crate::x509::common_name(&tbs.subject).map_err(CaError::Internal)?,
            names,
            ttl,
            renewal_of: Some(serial.clone()),
        })
    }

    /// Revokes one of this issuer's certificates, lifts a hold
    /// (`RemoveFromCrl`), or confirms an identical revocation; see
    /// [`CertStore::revoke`] for the rules. Returns what happened and the
    /// record as it now stands.
    ///
    /// Who may revoke is the caller's decision (the appliance's access
    /// policies). The revocation time is now unless
    /// `at` says otherwise; it may not lie in the future nor before the
    /// certificate's validity began. `AaCompromise` is refused: this CA issues
    /// no attribute certificates.
    pub fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        at: Option<SystemTime>,
    ) -> Result<(RevokeOutcome, CertRecord), CaError> {
        if reason == RevocationReason::AaCompromise {
            return Err(CaError::BadRequest(
                "reason aACompromise is for attribute certificates, which this CA does not issue"
                    .into(),
            ));
        }
        let now = unix(self.clock.now());
        let revoked_at = at.map(unix).unwrap_or(now);
        if revoked_at > now {
            return Err(CaError::BadRequest(format!(
                "revocation time {revoked_at} lies in the future (now is {now})"
            )));
        }
        let mut record = self.get(serial)?;
        if revoked_at < record.not_before {
            return Err(CaError::BadRequest(format!(
                "revocation time {revoked_at} is before certificate {serial} became valid ({})",
                record.not_before
            )));
        }
        let outcome = match self
            .store
            .revoke(self.issuer.id(), serial, reason, revoked_at)
        {
            Ok(outcome) => outcome,
            Err(StoreError::NotFound { serial }) => return Err(CaError::NotFound(serial)),
            Err(e) => return Err(e.into()),
        };
        match &outcome {
            RevokeOutcome::Revoked(entry) | RevokeOutcome::Unchanged(entry) => {
                if matches!(outcome, RevokeOutcome::Revoked(_)) {
                    tracing::info!(
                        serial = %entry.serial,
                        reason = %entry.reason,
                        revoked_at = entry.revoked_at,
                        "revoked certificate"
                    );
                }
                record.status = CertStatus::Revoked;
                record.revocation = Some(Revocation {
                    revoked_at: entry.revoked_at,
                    reason: entry.reason,
                });
            }
            RevokeOutcome::Released => {
                tracing::info!(serial = %serial, "lifted certificate hold");
                record.status = CertStatus::Issued;
                record.revocation = None;
            }
        }
        Ok((outcome, record))
    }

    /// Publishes delta CRLs (RFC 5280 5.2.4) at `url`, and names that URL in
    /// every complete CRL's Freshest CRL extension (5.2.6).
    ///
    /// `url` is a template like the CRL Distribution Point URL: it contains
    /// [`PARTITION_PLACEHOLDER`] exactly when the CRL URL does, and the whole
    /// issuer's delta is then published with `all` in its place, like its
    /// complete CRL. It must differ from the CRL URL and be an absolute
    /// http, https or ldap URI.
    pub fn with_delta_crls(mut self, url: impl Into<String>) -> Result<Self, CaError> {
        let url = url.into();
        let Some(crl_url) = self.urls.crl.as_deref() else {
            return Err(CaError::BadIssuer(
                "delta CRLs need a CRL Distribution Point URL".into(),
            ));
        };
        if url == crl_url {
            return Err(CaError::BadIssuer(format!(
                "the delta CRL URL {url:?} is the CRL URL; they must differ"
            )));
        }
        if url.contains(PARTITION_PLACEHOLDER) != crl_url.contains(PARTITION_PLACEHOLDER) {
            return Err(CaError::BadIssuer(format!(
                "the delta CRL URL {url:?} must contain {PARTITION_PLACEHOLDER} exactly when \
                 the CRL URL {crl_url:?} does"
            )));
        }
        if let Some(problem) = crl_url_problem(&url.replace(PARTITION_PLACEHOLDER, "0")) {
            return Err(CaError::BadIssuer(format!("delta CRL URL: {problem}")));
        }
        self.delta_crl_url = Some(url);
        Ok(self)
    }

    /// The delta CRL URL template given to [`Authority::with_delta_crls`];
    /// `None` when no delta CRLs are published.
    pub fn delta_crl_url_template(&self) -> Option<&str> {
        self.delta_crl_url.as_deref()
    }

    /// Where the delta CRLs of `series` are published (what its complete
    /// CRLs name as their Freshest CRL); `None` when no delta CRLs are
    /// published. With partitions, the whole issuer's is the `all` one.
    pub fn delta_crl_url(&self, series: CrlSeries) -> Option<String> {
        let url = self.delta_crl_url.as_deref()?;
        let name = match series {
            CrlSeries::All => "all".to_string(),
            CrlSeries::Partition(n) => n.to_string(),
        };
        Some(url.replace(PARTITION_PLACEHOLDER, &name))
    }

    /// Builds, signs and saves a complete CRL of `series`, valid for
    /// `validity` from now.
    ///
    /// Its number is taken (durably) first, so numbers only grow even when a
    /// build fails. Entries stream from the store into the builder: the
    /// revoked certificates are never all in memory at once, only the CRL
    /// being encoded. A revoked certificate stays listed until it has
    /// appeared on a CRL issued after it expired (RFC 5280 3.3): entries
    /// drop off once they expired more than one `validity` ago. A
    /// partition's CRL carries a critical Issuing Distribution Point naming
    /// the URL written into that partition's certificates. With delta CRLs
    /// ([`Authority::with_delta_crls`]) it also names its deltas' URL in a
    /// Freshest CRL extension. thisUpdate grows strictly within a series, so
    /// HTTP `Last-Modified` always changes.
    pub fn publish_crl(&self, series: CrlSeries, validity: Duration) -> Result<StoredCrl, CaError> {
        let now = self.next_this_update(series, false)?;
        let validity_secs = i64::try_from(validity.as_secs()).unwrap_or(i64::MAX);
        let drop_before = unix(now).saturating_sub(validity_secs);
        self.build_and_save_crl(series, now, validity, None, drop_before)
    }

    /// Builds, signs and saves a delta CRL of `series` (RFC 5280 5.2.4),
    /// valid for `validity` from now, against the newest complete CRL of
    /// `series` the store holds (its base).
    ///
    /// It lists every revocation change made after the base was read from
    /// the store: certificates revoked since (and holds made final, with
    /// their new reason), and holds lifted since, as `removeFromCRL`. Its
    /// critical Delta CRL Indicator names the base's number; its own number
    /// comes from the series' one counter, so it is above the base's. A
    /// partition's delta carries the same critical Issuing Distribution
    /// Point as the partition's complete CRL. Entries drop off as they do
    /// from the complete CRLs (once expired longer than the base's
    /// validity). thisUpdate grows strictly among the series' deltas and is
    /// always after the base's, so a delta never shares its base's time
    /// while having another number (RFC 5280 5.2.3).
    ///
    /// Fails with [`CaError::BadRequest`] when no complete CRL of `series`
    /// has been saved yet: publish one first.
    pub fn publish_delta_crl(
        &self,
        series: CrlSeries,
        validity: Duration,
    ) -> Result<StoredCrl, CaError> {
        let base = self
            .store
            .latest_crl(self.issuer.id(), series, false)?
            .ok_or_else(|| {
                let of = match series {
                    CrlSeries::All => "the issuer".to_string(),
                    CrlSeries::Partition(n) => format!("partition {n}"),
                };
                CaError::BadRequest(format!(
                    "no complete CRL of {of} has been published yet, and a delta CRL needs one \
                     as its base"
                ))
            })?;
        // Strictly after its base: a complete and a delta CRL of one scope
        // issued at the same time must share a number (RFC 5280 5.2.3), and
        // ours never do.
        let now = self
            .next_this_update(series, true)?
            .max(Self::time_at(base.this_update.saturating_add(1)));
        let base_validity = base.next_update.saturating_sub(base.this_update);
        let drop_before = unix(now).saturating_sub(base_validity);
        self.build_and_save_crl(series, now, validity, Some(&base), drop_before)
    }

    /// thisUpdate for the next complete (or `delta`) CRL of `series`: now,
    /// but at least a second after the previous one of its kind.
    fn next_this_update(&self, series: CrlSeries, delta: bool) -> Result<SystemTime, CaError> {
        let now = self.clock.now();
        Ok(
            match self.store.latest_crl(self.issuer.id(), series, delta)? {
                Some(previous) => now.max(Self::time_at(previous.this_update.saturating_add(1))),
                None => now,
            },
        )
    }

    /// The time `secs` Unix seconds stand for (the epoch for negative ones).
    fn time_at(secs: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }

    /// Builds, signs and saves one CRL of `series`: complete, or with `base`
    /// a delta of the changes since it. Certificates that expired at or
    /// before `drop_before` are left out.
    fn build_and_save_crl(
        &self,
        series: CrlSeries,
        now: SystemTime,
        validity: Duration,
        base: Option<&StoredCrl>,
        drop_before: i64,
    ) -> Result<StoredCrl, CaError> {
        let url = match series {
            CrlSeries::All => None,
            CrlSeries::Partition(n) => Some(
                self.crl_url(Some(n))
                    .ok_or_else(|| CaError::BadIssuer("partitioned CRLs need a CRL URL".into()))?,
            ),
        };
        let scope = match &url {
            Some(url) => CrlScope::Partition { url },
            None => CrlScope::Full,
        };
        let freshest = match base {
            None => self.delta_crl_url(series),
            Some(_) => None,
        };
        let delta_of = base.map(|b| b.number);
        let number = self.store.next_crl_number(self.issuer.id(), series)?;
        let next_update = now + validity;
        let request = CrlRequest {
            number,
            this_update: now,
            next_update,
            scope,
            delta_of,
            freshest: freshest.as_deref(),
        };
        let mut builder = CrlBuilder::new(&self.issuer, &request)?;
        let mut refused = None;
        let scanned = self.store.for_each_revoked(
            self.issuer.id(),
            series,
            base.map(|b| b.revocation_seq),
            drop_before,
            &mut |entry| {
                builder.push(&entry).map_err(|e| {
                    let why = e.to_string();
                    refused = Some(e);
                    StoreError::Unavailable(why)
                })
            },
        );
        if let Some(e) = refused {
            return Err(e);
        }
        let revocation_seq = scanned?;
        let entries = builder.len();
        let der = builder.finish()?;
        let crl = StoredCrl {
            issuer_id: self.issuer.id().to_string(),
            series,
            delta_of,
            number,
            revocation_seq,
            this_update: unix(now),
            next_update: unix(next_update),
            der,
        };
        self.store.save_crl(&crl)?;
        match delta_of {
            None => tracing::info!(
                series = %series.key(),
                number,
                entries,
                bytes = crl.der.len(),
                "published CRL"
            ),
            Some(base) => tracing::info!(
                series = %series.key(),
                number,
                base,
                entries,
                bytes = crl.der.len(),
                "published delta CRL"
            ),
        }
        Ok(crl)
    }

    /// The CRL partition of a new certificate with `serial`, if partitioned.
    fn partition_of(&self, serial: &Serial) -> Option<u32> {
        if self.crl_partitions == 0 {
            return None;
        }
        // Serials are random: their last bytes spread evenly.
        let bytes = serial.as_bytes();
        let mut word = [0u8; 4];
        let n = bytes.len().min(4);
        word[4 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
        Some(u32::from_be_bytes(word) % self.crl_partitions)
    }

    /// A positive 16-byte serial from the HSM's random generator (at least 126 random bits).
    fn random_serial(&self) -> Result<Serial, CaError> {
        let mut bytes = vec![0u8; 16];
        self.random.fill(&mut bytes)?;
        // Positive, and no leading zero byte, so DER keeps all 16 bytes.
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Serial::from_bytes(bytes).map_err(CaError::Internal)
    }
}

/// The record of a certificate just completed in the store, logged.
fn issued(mut record: CertRecord, der: Vec<u8>, issued_at: i64) -> Issued {
    record.status = CertStatus::Issued;
    record.cert_der = Some(der.clone());
    record.issued_at = Some(issued_at);
    tracing::info!(
        serial = %record.serial,
        profile = %record.profile,
        requester = %record.requester,
        "issued certificate"
    );
    Issued {
        record,
        certificate_der: der,
    }
}

/// The failure of a write the store gave no result for (a broken store).
fn missing_result() -> StoreError {
    StoreError::Unavailable("the store gave no result for a write".into())
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("issuer", &self.issuer)
            .field("profiles", &self.profiles.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
