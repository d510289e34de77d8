//! Certificate signing requests: parsed, signature-checked, and reduced to
//! what the CA takes from them (the key and the names).
//!
//! Nothing else a CSR asks for is trusted: basic constraints, key usage,
//! extended key usage and validity always come from the profile. The key type
//! is read from the CSR's SubjectPublicKeyInfo, never from its signature
//! algorithm.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_RSASSA_PSS, ID_SHA_256,
    ID_SHA_384, ID_SHA_512, SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::db::rfc8410::ID_ED_25519;
use der::{Decode, DecodePem, Encode};
use ring::signature::{self as ring_sig, UnparsedPublicKey};
use strongroom_hsm::{KeySpec, PublicKey};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::request::{CertReq, ExtensionReq};

use crate::names::Names;
use crate::x509::{common_name, general_name_into};

/// Largest CSR accepted, in bytes (PEM or DER).
pub const MAX_CSR_LEN: usize = 64 * 1024;

/// A CSR whose signature verified, reduced to its key and requested names.
#[derive(Debug, Clone)]
pub struct Csr {
    /// The subject public key.
    pub public_key: PublicKey,
    /// The subject common name, if any.
    pub common_name: Option<String>,
    /// The names requested in the subject alternative name extension.
    pub names: Names,
}

impl Csr {
    /// Parses a PEM or DER CSR, checks its self-signature and its key.
    ///
    /// Errors are one sentence for the requester, e.g. "CSR signature does not
    /// verify" or "RSA key of 1024 bits is too small (minimum 2048)".
    pub fn parse(input: &[u8]) -> Result<Csr, String> {
        if input.is_empty() {
            return Err("CSR is empty".into());
        }
        if input.len() > MAX_CSR_LEN {
            return Err(format!(
                "CSR is {} bytes; the limit is {MAX_CSR_LEN}",
                input.len()
            ));
        }
        let req = if input.starts_with(b"-----BEGIN") {
            let text =
                std::str::from_utf8(input).map_err(|_| "CSR PEM is not UTF-8".to_string())?;
            let text = text.replace("NEW CERTIFICATE REQUEST", "CERTIFICATE REQUEST");
            CertReq::from_pem(text.trim().as_bytes())
                .map_err(|e| format!("CSR is not a valid PEM certificate request: {e}"))?
        } else {
            CertReq::from_der(input)
                .map_err(|e| format!("CSR is not a valid DER certificate request: {e}"))?
        };
        let spki_der = req
            .info
            .public_key
            .to_der()
            .map_err(|e| format!("CSR public key cannot be encoded: {e}"))?;
        let public_key = PublicKey::from_der(&spki_der).map_err(|e| {
            format!(
                "CSR key is not supported (EC P-256/P-384, RSA >= 2048 bits, Ed25519): {}",
                e.to_string().rsplit(": ").next().unwrap_or_default()
            )
        })?;
        if let KeySpec::Rsa { bits } = public_key.spec() {
            if bits < 2048 {
                return Err(format!(
                    "RSA key of {bits} bits is too small (minimum 2048)"
                ));
            }
        }
        verify_signature(&req, &public_key)?;
        let common_name = common_name(&req.info.subject)?;
        let mut names = Names::default();
        for attribute in req.info.attributes.iter() {
            if attribute.oid != <ExtensionReq as const_oid::AssociatedOid>::OID {
                continue;
            }
            for value in attribute.values.iter() {
                let der = value.to_der().map_err(|e| e.to_string())?;
                let extensions = ExtensionReq::from_der(&der)
                    .map_err(|e| format!("CSR extension request is malformed: {e}"))?;
                for extension in extensions.0 {
                    if extension.extn_id != ID_CE_SUBJECT_ALT_NAME {
                        continue; // requested extensions other than names are ignored
                    }
                    let san = SubjectAltName::from_der(extension.extn_value.as_bytes())
                        .map_err(|e| format!("CSR subject alternative names are malformed: {e}"))?;
                    for name in san.0 {
                        match name {
                            GeneralName::DnsName(_)
                            | GeneralName::IpAddress(_)
                            | GeneralName::UniformResourceIdentifier(_) => {
                                general_name_into(&name, &mut names)?;
                            }
                            _ => {
                                return Err(
                                    "CSR requests a name type other than DNS, IP or URI".into()
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(Csr {
            public_key,
            common_name,
            names,
        })
    }
}

/// Checks the CSR's signature over its `CertificationRequestInfo` with ring.
fn verify_signature(req: &CertReq, key: &PublicKey) -> Result<(), String> {
    let alg = &req.algorithm;
    let spec = key.spec();
    let verifier: &dyn ring_sig::VerificationAlgorithm = match (alg.oid, spec) {
        (ECDSA_WITH_SHA_256, KeySpec::EcP256) => &ring_sig::ECDSA_P256_SHA256_ASN1,
        (ECDSA_WITH_SHA_384, KeySpec::EcP256) => &ring_sig::ECDSA_P256_SHA384_ASN1,
        (ECDSA_WITH_SHA_256, KeySpec::EcP384) => &ring_sig::ECDSA_P384_SHA256_ASN1,
        (ECDSA_WITH_SHA_384, KeySpec::EcP384) => &ring_sig::ECDSA_P384_SHA384_ASN1,
        (SHA_256_WITH_RSA_ENCRYPTION, KeySpec::Rsa { .. }) => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        (SHA_384_WITH_RSA_ENCRYPTION, KeySpec::Rsa { .. }) => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        (SHA_512_WITH_RSA_ENCRYPTION, KeySpec::Rsa { .. }) => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        (ID_RSASSA_PSS, KeySpec::Rsa { .. }) => pss_verifier(alg)?,
        (ID_ED_25519, KeySpec::Ed25519) => &ring_sig::ED25519,
        (SHA_1_WITH_RSA_ENCRYPTION, _) => {
            return Err("CSR is signed with SHA-1, which is refused".into());
        }
        (ECDSA_WITH_SHA_512, _) | (_, _) => {
            return Err(format!(
                "CSR signature algorithm {} does not fit its {spec} key or is not supported",
                alg.oid
            ));
        }
    };
    let message = req
        .info
        .to_der()
        .map_err(|e| format!("CSR cannot be re-encoded: {e}"))?;
    let signature = req
        .signature
        .as_bytes()
        .ok_or_else(|| "CSR signature has unused bits".to_string())?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(key.der())
        .map_err(|e| format!("CSR key cannot be read: {e}"))?;
    UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes())
        .verify(&message, signature)
        .map_err(|_| "CSR signature does not verify".to_string())
}

/// The ring verifier for an RSASSA-PSS CSR signature: SHA-256/384/512 with the
/// same hash for MGF1 and a salt as long as the hash.
fn pss_verifier(
    alg: &spki::AlgorithmIdentifierOwned,
) -> Result<&'static dyn ring_sig::VerificationAlgorithm, String> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| "RSASSA-PSS CSR signature has no parameters".to_string())?;
    let der = params.to_der().map_err(|e| e.to_string())?;
    let params = pkcs1::RsaPssParams::from_der(&der)
        .map_err(|e| format!("RSASSA-PSS parameters are malformed: {e}"))?;
    let mgf_hash: Option<ObjectIdentifier> = params.mask_gen.parameters.as_ref().map(|p| p.oid);
    let (verifier, salt): (&'static dyn ring_sig::VerificationAlgorithm, u8) = match params.hash.oid
    {
        ID_SHA_256 => (&ring_sig::RSA_PSS_2048_8192_SHA256, 32),
        ID_SHA_384 => (&ring_sig::RSA_PSS_2048_8192_SHA384, 48),
        ID_SHA_512 => (&ring_sig::RSA_PSS_2048_8192_SHA512, 64),
        other => return Err(format!("RSASSA-PSS with hash {other} is not supported")),
    };
    if mgf_hash != Some(params.hash.oid) || params.salt_len != salt {
        return Err("RSASSA-PSS CSR signature must use MGF1 with the same hash and a salt as long as the hash".into());
    }
    Ok(verifier)
}
