//! The `strongroom.v1.Ca` service: issuance, renewal, inventory and chain.
//!
//! Each RPC runs the same way: check the caller's grant on the profile
//! ([`Admission::check`]; for a serial, on the profile it was issued under), convert
//! the request into domain values ([`super::convert`]; any bad field fails
//! the call before anything else runs), do the HSM and store work on the
//! [`BlockingPool`], convert the result back, and log one line with the
//! method, requester, serial and outcome ([`finish`]). Issuance is always
//! `Authority::prepare` (checks, lints, records pending) then
//! `Authority::issue` (signs, verifies, completes).
//!
//! Server-generated private keys exist only inside a `Zeroizing` buffer until
//! they are moved into the response; they are never logged or stored.
//!
//! `Enroll` has no grant to check: its bootstrap token is its authority
//! ([`enroll`]). The token is authenticated, the CSR checked against its
//! identity and profile, and only then is the token spent, just before
//! `prepare`: a request refused for its CSR leaves the token usable, and a
//! spent token never works again, even if the issuance after it fails.

use std::collections::BTreeSet;
use std::sync::Arc;

use strongroom_ca::{
    Authority, CaError, CrlSeries, IssueRequest, Issued, Names, RevokeOutcome, pem,
};
use strongroom_hsm::KeySpec;
use strongroom_proto::v1;
use strongroom_proto::v1::ca_server::Ca;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::access::{AccessControl, Admission};
use super::audit::AuditTarget;
use super::blocking::BlockingPool;
use super::convert::bootstrap::Enrollment;
use super::convert::{
    self, CsrIssue, KeyIssue, ListQuery, RenewKey, Renewal, RevokeCall, certificate, quoted,
};
use super::issuance::IssuancePipeline;
use super::seal::Gate;
use super::status::Failure;
use super::unix_now;
use crate::appliance::{Appliance, generate_key};
use crate::bootstrap::{self, BootstrapError, Identity, PresentedToken, Refusal};

/// The Ca service over the appliance behind a seal.
#[derive(Clone)]
pub(crate) struct CaService {
    /// The appliance while unsealed; every call fails with
    /// `FAILED_PRECONDITION` while sealed.
    gate: Arc<Gate>,
    /// Where HSM and store calls run.
    pool: BlockingPool,
    /// Where certificates are recorded, signed and completed.
    pipeline: IssuancePipeline,
    /// Told of revocations, so a revoked client certificate stops working
    /// at once.
    access: Arc<AccessControl>,
}

impl CaService {
    /// A service issuing from the appliance behind `gate` on `pipeline`,
    /// running other blocking work on `pool`, telling `access` of
    /// revocations.
    pub(crate) fn new(
        gate: Arc<Gate>,
        pool: BlockingPool,
        pipeline: IssuancePipeline,
        access: Arc<AccessControl>,
    ) -> Self {
        CaService {
            gate,
            pool,
            pipeline,
            access,
        }
    }

    /// The response for a fresh certificate, with the generated private key
    /// if there is one (moved out of its zeroizing buffer into the response).
    fn issue_response(
        appliance: &Appliance,
        issued: &Issued,
        key: Option<Zeroizing<String>>,
    ) -> v1::IssueResponse {
        // The new certificate's OCSP responses are due.
        if let Some(ocsp) = &appliance.ocsp {
            ocsp.issued();
        }
        v1::IssueResponse {
            certificate: Some(certificate(&issued.record)),
            chain_pem: appliance.authority.chain_pem(),
            private_key_pem: key.map(|mut k| std::mem::take(&mut *k)).unwrap_or_default(),
        }
    }

    /// Ca.IssueFromCsr after the caller is known.
    async fn issue_csr(
        &self,
        requester: String,
        request: v1::IssueFromCsrRequest,
    ) -> Result<v1::IssueResponse, Failure> {
        let CsrIssue { profile, csr, ttl } = CsrIssue::try_from(request)?;
        let appliance = self.gate.appliance()?;
        let request = IssueRequest::from_csr(&profile, &requester, csr, ttl);
        let issued = self.pipeline.issue(Arc::clone(&appliance), request).await?;
        Ok(Self::issue_response(&appliance, &issued, None))
    }

    /// Ca.IssueWithKey after the caller is known.
    ///
    /// The profile is checked against the requested key type before a key is
    /// generated, so a refused request costs no key generation; `prepare`
    /// checks everything again.
    async fn issue_key(
        &self,
        requester: String,
        request: v1::IssueWithKeyRequest,
    ) -> Result<v1::IssueResponse, Failure> {
        let KeyIssue {
            profile,
            common_name,
            names,
            key_type,
            ttl,
        } = KeyIssue::try_from(request)?;
        let appliance = self.gate.appliance()?;
        let authority = &appliance.authority;
        let rules = authority
            .profiles()
            .get(&profile)
            .ok_or_else(|| CaError::UnknownProfile(profile.clone()))?;
        let mut violations = rules.violations(&names, key_type, ttl.unwrap_or(rules.default_ttl()));
        if let Some(problem) = not_generated(key_type) {
            violations.push(problem);
        }
        if !violations.is_empty() {
            return Err(CaError::Policy(violations).into());
        }
        let (public_key, key) = self.pool.run(move || generate(key_type)).await??;
        let request = IssueRequest {
            profile,
            requester,
            public_key,
            common_name,
            names,
            ttl,
            renewal_of: None,
        };
        let issued = self.pipeline.issue(Arc::clone(&appliance), request).await?;
        Ok(Self::issue_response(&appliance, &issued, Some(key)))
    }

    /// Ca.Renew after the caller is known.
    async fn renewal(
        &self,
        requester: String,
        request: v1::RenewRequest,
    ) -> Result<v1::IssueResponse, Failure> {
        let Renewal { serial, key, ttl } = Renewal::try_from(request)?;
        let appliance = self.gate.appliance()?;
        let renewing = Arc::clone(&appliance);
        let (request, private_key) = self
            .pool
            .run(move || -> Result<_, Failure> {
                let authority = &renewing.authority;
                let (request, private_key) = match key {
                    RenewKey::Same => (
                        authority.renewal_request(&serial, &requester, None, ttl)?,
                        None,
                    ),
                    RenewKey::Csr(csr) => {
                        let from_csr = IssueRequest::from_csr("", &requester, *csr, None);
                        let request = authority.renewal_request(
                            &serial,
                            &requester,
                            Some(from_csr.public_key),
                            ttl,
                        )?;
                        if let Some((asked, kept)) = names_differ(&from_csr.names, &request.names) {
                            return Err(Failure::Invalid(vec![format!(
                                "csr: names [{asked}] but certificate {serial} is for [{kept}]; \
                                 a renewal keeps the names (request a new certificate for others)"
                            )]));
                        }
                        (request, None)
                    }
                    RenewKey::Generate => {
                        // The renewed certificate's key tells the type to generate.
                        let mut request =
                            authority.renewal_request(&serial, &requester, None, ttl)?;
                        let spec = request.public_key.spec();
                        if let Some(problem) = not_generated(spec) {
                            return Err(Failure::Invalid(vec![format!(
                                "new_key: certificate {serial} has an {spec} key: {problem}"
                            )]));
                        }
                        let (public_key, private_key) = generate(spec)?;
                        request.public_key = public_key;
                        (request, Some(private_key))
                    }
                };
                Ok((request, private_key))
            })
            .await??;
        let issued = self.pipeline.issue(Arc::clone(&appliance), request).await?;
        Ok(Self::issue_response(&appliance, &issued, private_key))
    }

    /// Ca.GetCertificate.
    async fn get(&self, request: v1::GetCertificateRequest) -> Result<v1::Certificate, Failure> {
        let serial = convert::get_certificate(&request)?;
        let appliance = self.gate.appliance()?;
        let record = self
            .pool
            .run(move || appliance.authority.get(&serial))
            .await??;
        Ok(certificate(&record))
    }

    /// Ca.ListCertificates.
    async fn list(
        &self,
        request: v1::ListCertificatesRequest,
    ) -> Result<v1::ListCertificatesResponse, Failure> {
        let filter = ListQuery::try_from(request)?.filter(unix_now());
        let appliance = self.gate.appliance()?;
        let page = self
            .pool
            .run(move || appliance.authority.list(&filter))
            .await??;
        Ok(v1::ListCertificatesResponse {
            certificates: page.records.iter().map(certificate).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        })
    }

    /// Ca.Revoke. The CRL publisher and the OCSP responder learn of the
    /// change on the blocking thread, right after the store commits it,
    /// whatever happens to the caller afterwards (and again on a repeated
    /// call, so a retry after a lost reply still reaches them): the reply
    /// comes after the certificate's new OCSP responses are stored.
    async fn revoke(&self, request: v1::RevokeRequest) -> Result<v1::RevokeResponse, Failure> {
        let call = RevokeCall::try_from(&request)?;
        let appliance = self.gate.appliance()?;
        let access = Arc::clone(&self.access);
        let (outcome, record) = self
            .pool
            .run(move || {
                let (outcome, record) =
                    appliance
                        .authority
                        .revoke(&call.serial, call.reason, call.at)?;
                appliance.crls.changed(record.crl_partition);
                if let Some(ocsp) = &appliance.ocsp {
                    ocsp.status_changed(&record.serial);
                }
                access.revoked();
                Ok::<_, CaError>((outcome, record))
            })
            .await??;
        Ok(v1::RevokeResponse {
            certificate: Some(certificate(&record)),
            changed: !matches!(outcome, RevokeOutcome::Unchanged(_)),
        })
    }

    /// Ca.GetCrl: the newest saved CRL, complete or delta. A delta CRL is
    /// NotFound, saying why, when the appliance does not publish them.
    async fn crl(&self, request: v1::GetCrlRequest) -> Result<v1::CrlResponse, Failure> {
        let (series, delta) = convert::get_crl(&request)?;
        let appliance = self.gate.appliance()?;
        if delta && !appliance.crl.delta {
            return Err(Failure::NotFound(
                "this appliance publishes no delta CRLs (crl.delta is off)".into(),
            ));
        }
        let crl = self
            .pool
            .run(move || {
                let authority = &appliance.authority;
                authority
                    .store()
                    .latest_crl(authority.issuer().id(), series, delta)
            })
            .await??;
        let kind = if delta { "delta CRL" } else { "CRL" };
        let crl = crl.ok_or_else(|| {
            Failure::NotFound(format!(
                "no {kind} of {} has been published yet",
                match series {
                    CrlSeries::All => "the issuer".to_string(),
                    CrlSeries::Partition(n) => format!("partition {n}"),
                }
            ))
        })?;
        Ok(v1::CrlResponse {
            number: crl.number,
            this_update: Some(convert::timestamp(crl.this_update)),
            next_update: Some(convert::timestamp(crl.next_update)),
            base_number: crl.delta_of.unwrap_or(0),
            der: crl.der,
        })
    }

    /// Ca.GetChain (from memory: no HSM or store call).
    fn chain(&self) -> Result<v1::ChainResponse, Failure> {
        let appliance = self.gate.appliance()?;
        let authority = &appliance.authority;
        Ok(v1::ChainResponse {
            certificates_pem: authority
                .chain_der()
                .iter()
                .map(|der| pem("CERTIFICATE", der))
                .collect(),
            chain_pem: authority.chain_pem(),
        })
    }
}

/// Ca.Enroll's work, on the blocking pool: authenticates `token` at `now`,
/// checks that `csr` names exactly the token's identity and that its
/// profile allows the request, spends the token, then issues with the
/// identity as requester. What it learns goes into the audit `target`:
/// the token's profile and identity, why a token was refused, never the
/// secret.
fn enroll(
    appliance: &Appliance,
    token: PresentedToken,
    csr: strongroom_ca::Csr,
    now: i64,
    target: &AuditTarget,
) -> Result<Issued, Failure> {
    let store = &appliance.store;
    let stored = store.bootstrap_token(&token.id)?;
    let record = match bootstrap::authenticate(stored.as_ref(), &token, now) {
        Ok(record) => record.clone(),
        Err(e) => {
            if let BootstrapError::Refused(why) = &e {
                target.note("token_refused", why.name());
            }
            return Err(e.into());
        }
    };
    drop(token);
    target.note("profile", &record.profile);
    target.note("identity", &record.identity);
    let identity = Identity::parse(&record.identity)?;
    let request = IssueRequest::from_csr(&record.profile, identity.as_str(), csr, None);
    if !identity.is_exactly(&request.names) {
        let asked = request.names.to_strings().join(", ");
        let enrols = identity.names().to_strings().join(", ");
        return Err(Failure::Invalid(vec![format!(
            "csr: names [{asked}], but bootstrap token {} enrols exactly [{enrols}]: \
             make a CSR naming that identity and nothing else",
            record.id
        )]));
    }
    let authority = &appliance.authority;
    let rules = authority
        .profiles()
        .get(&record.profile)
        .ok_or_else(|| CaError::UnknownProfile(record.profile.clone()))?;
    let violations = rules.violations(
        &request.names,
        request.public_key.spec(),
        rules.default_ttl(),
    );
    if !violations.is_empty() {
        return Err(CaError::Policy(violations).into());
    }
    // Spent before the certificate is recorded: a crash from here on leaves
    // the token used without a certificate, never usable twice.
    if !store.spend_bootstrap_token(&record.id, now)? {
        // Another enrolment spent it (or it expired) since it was read.
        target.note("token_refused", Refusal::Used.name());
        return Err(BootstrapError::Refused(Refusal::Used).into());
    }
    let issued = prepare_and_issue(authority, request)?;
    let serial = issued.record.serial.to_hex();
    if let Err(e) = store.record_bootstrap_serial(&record.id, &serial) {
        tracing::warn!(
            token = %record.id,
            serial,
            error = %e,
            "certificate issued, but its bootstrap token does not name it"
        );
    }
    Ok(issued)
}

/// Records, signs and completes one certificate.
fn prepare_and_issue(authority: &Authority, request: IssueRequest) -> Result<Issued, CaError> {
    let prepared = authority.prepare(request)?;
    authority.issue(prepared)
}

/// Why the server does not generate keys of this type, or `None` if it does.
fn not_generated(spec: KeySpec) -> Option<String> {
    matches!(spec, KeySpec::Rsa { .. }).then(|| {
        format!(
            "the server does not generate {spec} keys (it offers ec-p256, ec-p384 and ed25519); \
             send a CSR instead"
        )
    })
}

/// A fresh key pair; the private key stays zeroizing until it is sent.
fn generate(spec: KeySpec) -> Result<(strongroom_hsm::PublicKey, Zeroizing<String>), Failure> {
    generate_key(spec).map_err(|e| Failure::Internal(format!("key generation failed: {e}")))
}

/// A CSR's names and the renewed certificate's, listed, if they are not the
/// same set; `None` if they are.
fn names_differ(csr: &Names, certificate: &Names) -> Option<(String, String)> {
    let set = |names: &Names| names.to_strings().into_iter().collect::<BTreeSet<_>>();
    let (asked, kept) = (set(csr), set(certificate));
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    (asked != kept).then(|| (list(&asked), list(&kept)))
}

/// What a response says about the certificate it carries, for the log.
trait Logged {
    /// The serial of the certificate issued or returned, if one.
    fn serial(&self) -> Option<&str>;
}

impl Logged for v1::IssueResponse {
    fn serial(&self) -> Option<&str> {
        self.certificate.as_ref().map(|c| c.serial.as_str())
    }
}

impl Logged for v1::Certificate {
    fn serial(&self) -> Option<&str> {
        Some(&self.serial)
    }
}

impl Logged for v1::ListCertificatesResponse {
    fn serial(&self) -> Option<&str> {
        None
    }
}

impl Logged for v1::RevokeResponse {
    fn serial(&self) -> Option<&str> {
        self.certificate.as_ref().map(|c| c.serial.as_str())
    }
}

impl Logged for v1::CrlResponse {
    fn serial(&self) -> Option<&str> {
        None
    }
}

impl Logged for v1::ChainResponse {
    fn serial(&self) -> Option<&str> {
        None
    }
}

/// Logs one finished call and maps its failure to a status.
///
/// `asked` is the serial named in the request (Get, Renew), as sent (quoted
/// and bounded); the response's serial is the one issued or returned. Never
/// logs keys, CSRs or certificates.
fn finish<T: Logged>(
    method: &'static str,
    requester: &str,
    asked: Option<&str>,
    result: Result<T, Failure>,
) -> Result<Response<T>, Status> {
    let asked = asked.map(quoted);
    let asked = asked.as_deref().unwrap_or("-");
    match result {
        Ok(response) => {
            tracing::info!(
                method,
                requester,
                asked,
                serial = response.serial().unwrap_or("-"),
                outcome = "ok",
                "gRPC request"
            );
            Ok(Response::new(response))
        }
        Err(failure) => {
            let status = Status::from(failure);
            let code = status.code();
            let server_side = matches!(
                code,
                tonic::Code::Internal | tonic::Code::Unavailable | tonic::Code::Unknown
            );
            if server_side {
                tracing::warn!(
                    method,
                    requester,
                    asked,
                    outcome = ?code,
                    error = status.message(),
                    "gRPC request failed"
                );
            } else {
                tracing::info!(
                    method,
                    requester,
                    asked,
                    outcome = ?code,
                    error = status.message(),
                    "gRPC request refused"
                );
            }
            Err(status)
        }
    }
}

/// Names the new certificate's serial in the audit record of an issuance.
fn note_issued(target: &AuditTarget, result: &Result<v1::IssueResponse, Failure>) {
    if let Ok(issued) = result
        && let Some(certificate) = &issued.certificate
    {
        target.note("issued_serial", &certificate.serial);
    }
}

/// The requester logged when the request was not admitted.
const UNKNOWN: &str = "-";

/// The admission of `request` and the identity it names.
fn admitted<T>(request: &Request<T>) -> (String, Result<Admission, Failure>) {
    match Admission::of(request) {
        Ok(admission) => (admission.identity().to_string(), Ok(admission)),
        Err(failure) => (UNKNOWN.into(), Err(failure)),
    }
}

impl CaService {
    /// The profile certificate `serial` was issued under; the serial is
    /// named in the audit record first.
    async fn profile_of(&self, serial: &str, target: &AuditTarget) -> Result<String, Failure> {
        target.note("serial", serial);
        let serial = convert::serial(serial).map_err(|e| Failure::Invalid(vec![e]))?;
        let appliance = self.gate.appliance()?;
        let record = self
            .pool
            .run(move || appliance.authority.get(&serial))
            .await??;
        Ok(record.profile)
    }
}

#[tonic::async_trait]
impl Ca for CaService {
    async fn issue_from_csr(
        &self,
        request: Request<v1::IssueFromCsrRequest>,
    ) -> Result<Response<v1::IssueResponse>, Status> {
        let target = AuditTarget::of(&request);
        let (who, admission) = admitted(&request);
        let result = async {
            admission?.check(&request.get_ref().profile, &target)?;
            if let Some(digests) = self.gate.current().and_then(|a| a.csr_digests.clone()) {
                target.note("csr_hmac", digests.digest(&request.get_ref().csr));
            }
            self.issue_csr(who.clone(), request.into_inner()).await
        }
        .await;
        note_issued(&target, &result);
        finish("IssueFromCsr", &who, None, result)
    }

    async fn issue_with_key(
        &self,
        request: Request<v1::IssueWithKeyRequest>,
    ) -> Result<Response<v1::IssueResponse>, Status> {
        let target = AuditTarget::of(&request);
        let (who, admission) = admitted(&request);
        let result = async {
            admission?.check(&request.get_ref().profile, &target)?;
            self.issue_key(who.clone(), request.into_inner()).await
        }
        .await;
        note_issued(&target, &result);
        finish("IssueWithKey", &who, None, result)
    }

    async fn renew(
        &self,
        request: Request<v1::RenewRequest>,
    ) -> Result<Response<v1::IssueResponse>, Status> {
        let target = AuditTarget::of(&request);
        let (who, admission) = admitted(&request);
        let request = request.into_inner();
        let asked = request.serial.clone();
        let result = async {
            let admission = admission?;
            let profile = self.profile_of(&asked, &target).await?;
            let serial = convert::serial(&asked).map_err(|e| Failure::Invalid(vec![e]))?;
            admission.check_renewal(&serial, &profile, &target)?;
            self.renewal(who.clone(), request).await
        }
        .await;
        note_issued(&target, &result);
        finish("Renew", &who, Some(&asked), result)
    }

    async fn get_certificate(
        &self,
        request: Request<v1::GetCertificateRequest>,
    ) -> Result<Response<v1::Certificate>, Status> {
        let target = AuditTarget::of(&request);
        let (who, admission) = admitted(&request);
        let request = request.into_inner();
        let asked = request.serial.clone();
        let result = async {
            let admission = admission?;
            let profile = self.profile_of(&asked, &target).await?;
            admission.check(&profile, &target)?;
            self.get(request).await
        }
        .await;
        finish("GetCertificate", &who, Some(&asked), result)
    }

    async fn list_certificates(
        &self,
        request: Request<v1::ListCertificatesRequest>,
    ) -> Result<Response<v1::ListCertificatesResponse>, Status> {
        let target = AuditTarget::of(&request);
        let (who, admission) = admitted(&request);
        let result = async {
            // Without a profile filter the caller lists every profile.
            let profile = match request.get_ref().profile.as_str() {
                "" => "*",
                named => named,
            };
            admission?.check(profile, &target)?;
            self.list(request.into_inner()).await
        }
        .await;
        finish("ListCertificates", &who, None, result)
    }

    async fn revoke(
        &self,
        request: Request<v1::RevokeRequest>,
    ) -> Result<Response<v1::RevokeResponse>, Status> {
        let target = AuditTarget::of(&request);
        let (who, admission) = admitted(&request);
        let request = request.into_inner();
        let asked = request.serial.clone();
        let result = async {
            let admission = admission?;
            let profile = self.profile_of(&asked, &target).await?;
            admission.check(&profile, &target)?;
            self.revoke(request).await
        }
        .await;
        finish("Revoke", &who, Some(&asked), result)
    }

    async fn get_crl(
        &self,
        request: Request<v1::GetCrlRequest>,
    ) -> Result<Response<v1::CrlResponse>, Status> {
        let (who, _) = admitted(&request);
        let result = self.crl(request.into_inner()).await;
        finish("GetCrl", &who, None, result)
    }

    async fn get_chain(
        &self,
        request: Request<v1::GetChainRequest>,
    ) -> Result<Response<v1::ChainResponse>, Status> {
        let (who, _) = admitted(&request);
        finish("GetChain", &who, None, self.chain())
    }

    async fn enroll(
        &self,
        request: Request<v1::EnrollRequest>,
    ) -> Result<Response<v1::IssueResponse>, Status> {
        let target = AuditTarget::of(&request);
        let (who, admission) = admitted(&request);
        let result = async {
            admission?;
            let Enrollment { token, csr } = Enrollment::try_from(request.into_inner())?;
            target.note("token", token.id.as_str());
            let appliance = self.gate.appliance()?;
            let enrolling = Arc::clone(&appliance);
            let noted = target.clone();
            let issued = self
                .pool
                .run(move || enroll(&enrolling, token, csr, unix_now(), &noted))
                .await??;
            Ok(Self::issue_response(&appliance, &issued, None))
        }
        .await;
        note_issued(&target, &result);
        finish("Enroll", &who, None, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_names_compare_as_sets() {
        let a = Names {
            dns: vec!["a.test".into(), "b.test".into()],
            ..Names::default()
        };
        let b = Names {
            dns: vec!["b.test".into(), "a.test".into()],
            ..Names::default()
        };
        assert_eq!(names_differ(&a, &b), None);
        let c = Names {
            dns: vec!["a.test".into()],
            ..Names::default()
        };
        let (asked, kept) = names_differ(&a, &c).expect("differs");
        assert_eq!(asked, "DNS:a.test, DNS:b.test");
        assert_eq!(kept, "DNS:a.test");
    }

    #[test]
    fn rsa_keys_are_not_generated() {
        assert!(not_generated(KeySpec::Rsa { bits: 2048 }).is_some());
        assert!(not_generated(KeySpec::EcP256).is_none());
        assert!(not_generated(KeySpec::Ed25519).is_none());
    }
}
