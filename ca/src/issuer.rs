//! Issuers: a CA certificate bound to the HSM key that signs for it.

use std::sync::Arc;
use std::time::SystemTime;

use der::{Decode, Encode};
use strongroom_hsm::{PublicKey, Signer};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};

use crate::certificate::{DistributionUrls, Kind, Template, assemble, build_tbs};
use crate::error::CaError;
use crate::lint::{IssuerFacts, lint};
use crate::names::Names;
use crate::x509::{build_name, signature_algorithm_id, time_unix};

/// A CA certificate and the signer holding its private key.
///
/// Built only by [`Issuer::new`], which checks that the signer's public key is
/// the certificate's and that the certificate may sign certificates.
#[derive(Clone)]
pub struct Issuer {
    certificate: Certificate,
    der: Vec<u8>,
    signer: Arc<dyn Signer>,
    key_id: Vec<u8>,
    id: String,
    signature: spki::AlgorithmIdentifierOwned,
}

impl Issuer {
    /// Binds `certificate_der` to `signer`.
    ///
    /// Fails with [`CaError::IssuerKeyMismatch`] if the HSM key is not the
    /// certificate's key, and [`CaError::NotACa`] if the certificate lacks
    /// `cA=TRUE` or `keyCertSign`.
    pub fn new(certificate_der: &[u8], signer: Arc<dyn Signer>) -> Result<Issuer, CaError> {
        let bad = |reason: String| CaError::BadIssuer(reason);
        let certificate = Certificate::from_der(certificate_der).map_err(|e| bad(e.to_string()))?;
        let tbs = &certificate.tbs_certificate;
        let spki_der = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| bad(e.to_string()))?;
        if spki_der != signer.public_key().der() {
            return Err(CaError::IssuerKeyMismatch);
        }
        let is_ca = tbs
            .get::<BasicConstraints>()
            .map_err(|e| bad(e.to_string()))?
            .is_some_and(|(_, bc)| bc.ca);
        let signs_certs = tbs
            .get::<KeyUsage>()
            .map_err(|e| bad(e.to_string()))?
            .is_some_and(|(_, ku)| ku.0.contains(KeyUsages::KeyCertSign));
        if !is_ca || !signs_certs {
            return Err(CaError::NotACa);
        }
        let key_id = match tbs
            .get::<SubjectKeyIdentifier>()
            .map_err(|e| bad(e.to_string()))?
        {
            Some((_, ski)) => ski.0.as_bytes().to_vec(),
            None => crate::x509::key_identifier(&spki_der).map_err(bad)?,
        };
        let signature = signature_algorithm_id(signer.algorithm()).map_err(bad)?;
        Ok(Issuer {
            id: PublicKey::from_der(&spki_der)
                .map_err(|e| bad(e.to_string()))?
                .fingerprint(),
            certificate,
            der: certificate_der.to_vec(),
            signer,
            key_id,
            signature,
        })
    }

    /// The issuer certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }

    /// Identifies this issuer in the inventory: hex SHA-256 of its SPKI.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The issuer's subject, as an RFC 4514 string.
    pub fn subject(&self) -> String {
        self.certificate.tbs_certificate.subject.to_string()
    }

    /// The issuer's not-before, Unix seconds.
    pub fn not_before(&self) -> i64 {
        time_unix(&self.certificate.tbs_certificate.validity.not_before)
    }

    /// The issuer's not-after, Unix seconds.
    pub fn not_after(&self) -> i64 {
        time_unix(&self.certificate.tbs_certificate.validity.not_after)
    }

    pub(crate) fn facts(&self) -> IssuerFacts<'_> {
        let tbs = &self.certificate.tbs_certificate;
        IssuerFacts {
            subject: &tbs.subject,
            key_id: &self.key_id,
            not_before: time_unix(&tbs.validity.not_before),
            not_after: time_unix(&tbs.validity.not_after),
            signature: &self.signature,
            self_signed: false,
        }
    }

    pub(crate) fn name(&self) -> &x509_cert::name::Name {
        &self.certificate.tbs_certificate.subject
    }

    pub(crate) fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    pub(crate) fn signature(&self) -> &spki::AlgorithmIdentifierOwned {
        &self.signature
    }

    /// Signs `tbs_der` in the HSM and verifies the signature before returning it.
    pub(crate) fn sign_verified(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaError> {
        let signature = self.signer.sign(tbs_der)?;
        self.signer
            .public_key()
            .verify(self.signer.algorithm(), tbs_der, &signature)
            .map_err(|_| CaError::SignatureCheck)?;
        Ok(signature)
    }

    /// Signs a delegated OCSP responder certificate for `public_key`.
    ///
    /// Subject: this issuer's, with the common name `<issuer CN> OCSP
    /// Responder`. Extensions: critical KU `digitalSignature`, EKU
    /// `id-kp-OCSPSigning` only, non-critical NULL `id-pkix-ocsp-nocheck`,
    /// SKI and AKI; no SAN, CRL distribution point or AIA. Validity is capped
    /// to this issuer's. Linted before signing, signature verified after.
    pub fn sign_ocsp_signer(
        &self,
        public_key: &PublicKey,
        serial: &[u8],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Vec<u8>, CaError> {
        crate::ocsp::issue_signer_certificate(self, public_key, serial, not_before, not_after)
    }

    /// Signs a subordinate CA certificate for `subject_spki_der`.
    ///
    /// The certificate is linted before signing and its signature verified
    /// after; `path_len` constrains the chain below it.
    pub fn sign_ca(&self, request: &CaCertificateRequest<'_>) -> Result<Vec<u8>, CaError> {
        let facts = self.facts();
        build_ca_certificate(
            request,
            self.name().clone(),
            Some(self.key_id.clone()),
            &facts,
            |tbs| self.sign_verified(tbs),
        )
    }
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("subject", &self.subject())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A CA certificate to create: subject, key, validity and path length.
#[derive(Debug, Clone)]
pub struct CaCertificateRequest<'a> {
    /// Subject attributes as `(short name, value)`: CN, O, OU, C, ST, L.
    pub subject: &'a [(String, String)],
    /// The new CA's public key (DER SubjectPublicKeyInfo).
    pub public_key: &'a PublicKey,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Path length constraint; `None` for unconstrained.
    pub path_len: Option<u8>,
    /// Serial number (at least 8 random bytes, positive).
    pub serial: &'a [u8],
    /// URLs for certificates this CA's issuer publishes (for a subordinate CA).
    pub urls: &'a DistributionUrls,
}

/// Creates a self-signed root certificate with `signer`'s key.
pub fn self_signed_root(
    signer: &dyn Signer,
    request: &CaCertificateRequest<'_>,
) -> Result<Vec<u8>, CaError> {
    if request.public_key != signer.public_key() {
        return Err(CaError::IssuerKeyMismatch);
    }
    let bad = CaError::BadIssuer;
    let subject = build_name(request.subject).map_err(bad)?;
    let signature = signature_algorithm_id(signer.algorithm()).map_err(CaError::BadIssuer)?;
    let key_id =
        crate::x509::key_identifier(signer.public_key().der()).map_err(CaError::BadIssuer)?;
    let facts = IssuerFacts {
        subject: &subject,
        key_id: &key_id,
        not_before: crate::x509::unix(request.not_before),
        not_after: crate::x509::unix(request.not_after),
        signature: &signature,
        self_signed: true,
    };
    build_ca_certificate(request, subject.clone(), None, &facts, |tbs| {
        let sig = signer.sign(tbs)?;
        signer
            .public_key()
            .verify(signer.algorithm(), tbs, &sig)
            .map_err(|_| CaError::SignatureCheck)?;
        Ok(sig)
    })
}

fn build_ca_certificate(
    request: &CaCertificateRequest<'_>,
    issuer_name: x509_cert::name::Name,
    issuer_key_id: Option<Vec<u8>>,
    facts: &IssuerFacts<'_>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, CaError>,
) -> Result<Vec<u8>, CaError> {
    let subject = build_name(request.subject).map_err(CaError::BadIssuer)?;
    let tbs = build_tbs(&Template {
        serial: request.serial,
        signature: facts.signature.clone(),
        issuer: issuer_name,
        issuer_key_id,
        subject,
        subject_spki_der: request.public_key.der(),
        names: &Names::default(),
        not_before: request.not_before,
        not_after: request.not_after,
        kind: Kind::Ca {
            path_len: request.path_len,
        },
        urls: request.urls,
    })
    .map_err(CaError::BadIssuer)?;
    let findings = lint(&tbs, facts);
    if !findings.is_empty() {
        return Err(CaError::Lint(
            findings
                .into_iter()
                .map(|f| format!("certificate: {f}"))
                .collect(),
        ));
    }
    let tbs_der = tbs
        .to_der()
        .map_err(|e| CaError::BadIssuer(e.to_string()))?;
    let signature = sign(&tbs_der)?;
    let certificate = assemble(tbs, &signature).map_err(CaError::BadIssuer)?;
    certificate
        .to_der()
        .map_err(|e| CaError::BadIssuer(e.to_string()))
}

/// PEM-encodes DER with the given label.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}
