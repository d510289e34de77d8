//! Delegated OCSP signers (RFC 6960 4.2.2.2): their certificates and keys.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use const_oid::db::rfc4519::COMMON_NAME;
use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode, Tag};
use spki::AlgorithmIdentifierOwned;
use strongroom_hsm::{PublicKey, Signer};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::{Certificate, TbsCertificate};

use super::{algorithm_for_id, certificate_key, wire};
use crate::certificate::{DistributionUrls, Kind, Template, assemble, build_tbs};
use crate::error::CaError;
use crate::issuer::Issuer;
use crate::lint::lint;
use crate::names::Names;
use crate::x509::{common_name, signature_algorithm_id, time_unix, unix};

/// A delegated OCSP responder: a certificate with `id-kp-OCSPSigning` issued
/// by the CA it answers for, and the HSM key that signs for it.
///
/// [`DelegatedSigner::new`] checks the certificate on its own;
/// [`super::OcspResponder::new`] checks that its issuer issued it.
#[derive(Clone)]
pub struct DelegatedSigner {
    certificate_der: Vec<u8>,
    certificate: Certificate,
    signer: Arc<dyn Signer>,
    signature_algorithm: AlgorithmIdentifierOwned,
}

impl DelegatedSigner {
    /// Binds `certificate_der` to `signer`.
    ///
    /// Fails with [`CaError::BadIssuer`] unless the certificate's key is the
    /// signer's, its extended key usage includes `id-kp-OCSPSigning`, its key
    /// usage (if present) includes `digitalSignature`, and it is valid at
    /// `now`.
    pub fn new(
        certificate_der: &[u8],
        signer: Arc<dyn Signer>,
        now: SystemTime,
    ) -> Result<Self, CaError> {
        let bad = |reason: String| CaError::BadIssuer(format!("OCSP signer certificate: {reason}"));
        let certificate = Certificate::from_der(certificate_der).map_err(|e| bad(e.to_string()))?;
        let tbs = &certificate.tbs_certificate;
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| bad(e.to_string()))?;
        if spki != signer.public_key().der() {
            return Err(bad("the HSM key is not the certificate's key".into()));
        }
        let ocsp_signing = tbs
            .get::<ExtendedKeyUsage>()
            .map_err(|e| bad(e.to_string()))?
            .is_some_and(|(_, eku)| eku.0.contains(&ID_KP_OCSP_SIGNING));
        if !ocsp_signing {
            return Err(bad("extended key usage lacks id-kp-OCSPSigning".into()));
        }
        let key_usage = tbs.get::<KeyUsage>().map_err(|e| bad(e.to_string()))?;
        if key_usage.is_some_and(|(_, ku)| !ku.0.contains(KeyUsages::DigitalSignature)) {
            return Err(bad("key usage lacks digitalSignature".into()));
        }
        let now = unix(now);
        if now < time_unix(&tbs.validity.not_before) || now > time_unix(&tbs.validity.not_after) {
            return Err(bad("not valid now".into()));
        }
        let signature_algorithm = signature_algorithm_id(signer.algorithm()).map_err(bad)?;
        Ok(DelegatedSigner {
            certificate_der: certificate_der.to_vec(),
            certificate,
            signer,
            signature_algorithm,
        })
    }

    /// The signer's certificate, DER; every response it signs carries it.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The certificate's not-after, Unix seconds: responses cannot be signed
    /// (or have a `nextUpdate`) after it, so rotate the signer before then.
    pub fn not_after(&self) -> i64 {
        time_unix(&self.certificate.tbs_certificate.validity.not_after)
    }

    /// The certificate's not-before, Unix seconds.
    pub fn not_before(&self) -> i64 {
        time_unix(&self.certificate.tbs_certificate.validity.not_before)
    }

    /// The certificate's serial number.
    pub fn serial(&self) -> Result<crate::store::Serial, CaError> {
        crate::store::Serial::from_bytes(
            self.certificate
                .tbs_certificate
                .serial_number
                .as_bytes()
                .to_vec(),
        )
        .map_err(CaError::Internal)
    }

    pub(super) fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub(super) fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.signature_algorithm
    }

    /// Checks that `issuer` issued this certificate: names, key identifier
    /// and, decisively, the signature.
    pub(super) fn check_issued_by(
        &self,
        issuer: &Issuer,
        issuer_cert: &Certificate,
    ) -> Result<(), CaError> {
        let bad = |reason: &str| {
            CaError::BadIssuer(format!(
                "OCSP signer certificate was not issued by {}: {reason}",
                issuer.subject()
            ))
        };
        let tbs = &self.certificate.tbs_certificate;
        if tbs.issuer != issuer_cert.tbs_certificate.subject {
            return Err(bad("issuer name differs"));
        }
        let aki = tbs
            .get::<AuthorityKeyIdentifier>()
            .map_err(|_| bad("authorityKeyIdentifier cannot be decoded"))?;
        match aki.and_then(|(_, aki)| aki.key_identifier) {
            Some(id) if id.as_bytes() == issuer.key_id() => {}
            _ => return Err(bad("authorityKeyIdentifier does not name the issuer's key")),
        }
        let raw = wire::RawCertificate::from_der(&self.certificate_der)
            .map_err(|_| bad("certificate does not decode"))?;
        let issuer_key = certificate_key(issuer_cert)?;
        let algorithm = algorithm_for_id(&raw.signature_algorithm)
            .filter(|a| a.fits(issuer_key.spec()))
            .ok_or_else(|| bad("signature algorithm is not the issuer key's"))?;
        let tbs_der = raw
            .tbs_certificate
            .to_der()
            .map_err(|_| bad("certificate does not encode"))?;
        let signature = raw
            .signature
            .as_bytes()
            .ok_or_else(|| bad("signature has unused bits"))?;
        issuer_key
            .verify(algorithm, &tbs_der, signature)
            .map_err(|_| bad("signature does not verify under the issuer's key"))
    }

    /// Signs `tbs_der` in the HSM and verifies the signature before returning it.
    pub(super) fn sign_verified(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaError> {
        let signature = self.signer.sign(tbs_der)?;
        self.signer
            .public_key()
            .verify(self.signer.algorithm(), tbs_der, &signature)
            .map_err(|_| CaError::SignatureCheck)?;
        Ok(signature)
    }
}

impl std::fmt::Debug for DelegatedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegatedSigner")
            .field(
                "subject",
                &self.certificate.tbs_certificate.subject.to_string(),
            )
            .field("algorithm", &self.signer.algorithm())
            .field("not_after", &self.not_after())
            .finish_non_exhaustive()
    }
}

/// Suffix of a delegated signer's common name: `<issuer CN> OCSP Responder`.
const CN_SUFFIX: &str = " OCSP Responder";
/// ub-common-name (RFC 5280 appendix A.1).
const MAX_CN_CHARS: usize = 64;

/// Issues a delegated OCSP signer certificate for `public_key`; see
/// [`Issuer::sign_ocsp_signer`].
pub(crate) fn issue_signer_certificate(
    issuer: &Issuer,
    public_key: &PublicKey,
    serial: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<Vec<u8>, CaError> {
    let tbs = signer_tbs(issuer, public_key, serial, not_before, not_after)?;
    let tbs_der = tbs
        .to_der()
        .map_err(|e| CaError::Internal(format!("encoding the OCSP signer certificate: {e}")))?;
    let signature = issuer.sign_verified(&tbs_der)?;
    assemble(tbs, &signature)
        .and_then(|c| c.to_der().map_err(|e| e.to_string()))
        .map_err(|e| CaError::Internal(format!("encoding the OCSP signer certificate: {e}")))
}

/// The linted to-be-signed certificate of a delegated OCSP signer for
/// `public_key` (see [`Issuer::sign_ocsp_signer`]), validity capped to the
/// issuer's.
pub(crate) fn signer_tbs(
    issuer: &Issuer,
    public_key: &PublicKey,
    serial: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<TbsCertificate, CaError> {
    let facts = issuer.facts();
    let at = |secs: i64| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or_default())
    };
    let not_before = not_before.max(at(facts.not_before));
    let not_after = not_after.min(at(facts.not_after));
    let subject = signer_subject(issuer.name()).map_err(CaError::BadRequest)?;
    let tbs = build_tbs(&Template {
        serial,
        signature: facts.signature.clone(),
        issuer: issuer.name().clone(),
        issuer_key_id: Some(issuer.key_id().to_vec()),
        subject,
        subject_spki_der: public_key.der(),
        names: &Names::default(),
        not_before,
        not_after,
        kind: Kind::OcspSigner,
        urls: &DistributionUrls::default(),
    })
    .map_err(CaError::BadRequest)?;
    let findings = lint(&tbs, &facts);
    if !findings.is_empty() {
        return Err(CaError::Lint(
            findings
                .into_iter()
                .map(|f| format!("certificate: {f}"))
                .collect(),
        ));
    }
    Ok(tbs)
}

/// The issuer's subject with its common name replaced by
/// `<issuer CN> OCSP Responder` (shortened to 64 characters), or with that
/// common name appended if the issuer has none.
fn signer_subject(issuer: &Name) -> Result<Name, String> {
    let issuer_cn = common_name(issuer)?.unwrap_or_default();
    let keep = MAX_CN_CHARS - CN_SUFFIX.chars().count();
    let base: String = issuer_cn.chars().take(keep).collect();
    let cn = format!("{}{CN_SUFFIX}", base.trim_end()).trim().to_string();
    let cn_atv = AttributeTypeAndValue {
        oid: COMMON_NAME,
        value: Any::new(Tag::Utf8String, cn.as_bytes()).map_err(|e| e.to_string())?,
    };
    let mut rdns = Vec::new();
    let mut replaced = false;
    for rdn in issuer.0.iter() {
        if !rdn.0.iter().any(|atv| atv.oid == COMMON_NAME) {
            rdns.push(rdn.clone());
            continue;
        }
        let atvs: Vec<_> = rdn
            .0
            .iter()
            .map(|atv| {
                if atv.oid == COMMON_NAME {
                    cn_atv.clone()
                } else {
                    atv.clone()
                }
            })
            .collect();
        rdns.push(RelativeDistinguishedName(
            SetOfVec::try_from(atvs).map_err(|e| e.to_string())?,
        ));
        replaced = true;
    }
    if !replaced {
        rdns.push(RelativeDistinguishedName(
            SetOfVec::try_from(vec![cn_atv]).map_err(|e| e.to_string())?,
        ));
    }
    Ok(RdnSequence(rdns))
}
