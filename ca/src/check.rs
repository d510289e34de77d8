//! Offline re-checks of signed certificates: the lints that ran before the
//! HSM signed, run again on the result, plus the signature. The offline
//! ceremony uses them after signing and in `ceremony verify`.

use der::{Decode, Encode};
use strongroom_hsm::{PublicKey, SignatureAlgorithm};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::error::CaError;
use crate::lint::{IssuerFacts, lint};
use crate::x509::{key_identifier, signature_algorithm_id, time_unix};

/// Every lint finding for a signed certificate; empty means clean.
///
/// `issuer_der` is the issuing CA's certificate, or `None` for a
/// self-signed certificate (checked against itself). Besides the lints run
/// before every signature (against the issuer's subject, key identifier and
/// validity), this checks that the certificate is canonical DER, that its
/// signature algorithm (inner and outer) is `algorithm`'s, and that the
/// signature verifies under the issuer's key. Fails only when a certificate
/// cannot be decoded.
pub fn lint_certificate(
    certificate_der: &[u8],
    issuer_der: Option<&[u8]>,
    algorithm: SignatureAlgorithm,
) -> Result<Vec<String>, CaError> {
    let decode = |der: &[u8], what: &str| {
        Certificate::from_der(der)
            .map_err(|e| CaError::BadRequest(format!("{what} cannot be decoded: {e}")))
    };
    let certificate = decode(certificate_der, "certificate")?;
    let issuer = issuer_der
        .map(|der| decode(der, "issuer certificate"))
        .transpose()?;
    let issuer_tbs = &issuer.as_ref().unwrap_or(&certificate).tbs_certificate;
    let issuer_spki = issuer_tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| CaError::BadIssuer(e.to_string()))?;
    let key_id = match issuer_tbs
        .get::<SubjectKeyIdentifier>()
        .map_err(|e| CaError::BadIssuer(e.to_string()))?
    {
        Some((_, ski)) => ski.0.as_bytes().to_vec(),
        None => key_identifier(&issuer_spki).map_err(CaError::BadIssuer)?,
    };
    let signature = signature_algorithm_id(algorithm).map_err(CaError::BadIssuer)?;
    let facts = IssuerFacts {
        subject: &issuer_tbs.subject,
        key_id: &key_id,
        not_before: time_unix(&issuer_tbs.validity.not_before),
        not_after: time_unix(&issuer_tbs.validity.not_after),
        signature: &signature,
        self_signed: issuer.is_none(),
    };
    let mut findings = lint(&certificate.tbs_certificate, &facts);
    if certificate.signature_algorithm != signature {
        findings.push(format!(
            "the certificate's signatureAlgorithm is not {algorithm}'s"
        ));
    }
    if certificate.to_der().ok().as_deref() != Some(certificate_der) {
        findings.push("the certificate is not canonical DER".into());
    }
    let signed = certificate
        .tbs_certificate
        .to_der()
        .map_err(|e| CaError::BadRequest(e.to_string()))?;
    let verified = PublicKey::from_der(&issuer_spki).is_ok_and(|key| {
        certificate
            .signature
            .as_bytes()
            .is_some_and(|signature| key.verify(algorithm, &signed, signature).is_ok())
    });
    if !verified {
        findings.push("the signature does not verify under the issuer's key".into());
    }
    Ok(findings)
}

/// The DER `AlgorithmIdentifier` this crate writes for `algorithm` in
/// certificates and CRLs.
pub fn signature_algorithm_der(algorithm: SignatureAlgorithm) -> Result<Vec<u8>, CaError> {
    signature_algorithm_id(algorithm)
        .map_err(CaError::BadIssuer)?
        .to_der()
        .map_err(|e| CaError::Internal(e.to_string()))
}
