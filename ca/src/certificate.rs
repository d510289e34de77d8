//! Building to-be-signed certificates from typed extensions.

use std::time::SystemTime;

use const_oid::AssociatedOid;
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_KP_OCSP_SIGNING};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
use der::Encode;
use der::asn1::{BitString, OctetString};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::TbsCertificate;
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::names::Names;
use crate::x509::{general_names, key_identifier, uri_name, validity};

/// URLs written into every certificate an issuer signs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistributionUrls {
    /// CRL Distribution Point.
    pub crl: Option<String>,
    /// OCSP responder (AIA id-ad-ocsp).
    pub ocsp: Option<String>,
    /// Where the issuer's certificate can be fetched (AIA id-ad-caIssuers).
    pub ca_issuers: Option<String>,
}

/// What kind of certificate to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An end-entity certificate with these usages.
    Leaf {
        key_usage: Vec<KeyUsages>,
        ext_key_usage: Vec<const_oid::ObjectIdentifier>,
    },
    /// A CA certificate, with an optional path length constraint.
    Ca { path_len: Option<u8> },
    /// A delegated OCSP responder (RFC 6960 4.2.2.2): `digitalSignature`,
    /// EKU `id-kp-OCSPSigning` only, `id-pkix-ocsp-nocheck`, no CDP or AIA.
    OcspSigner,
}

/// Everything that goes into a to-be-signed certificate.
pub(crate) struct Template<'a> {
    pub serial: &'a [u8],
    pub signature: AlgorithmIdentifierOwned,
    pub issuer: Name,
    /// The issuer's key identifier; `None` for a self-signed certificate
    /// (then the subject's own key identifier is used).
    pub issuer_key_id: Option<Vec<u8>>,
    pub subject: Name,
    pub subject_spki_der: &'a [u8],
    pub names: &'a Names,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub kind: Kind,
    pub urls: &'a DistributionUrls,
}

/// Builds the to-be-signed certificate.
pub(crate) fn build_tbs(t: &Template<'_>) -> Result<TbsCertificate, String> {
    use der::Decode;
    let spki =
        SubjectPublicKeyInfoOwned::from_der(t.subject_spki_der).map_err(|e| e.to_string())?;
    let subject_key_id = key_identifier(t.subject_spki_der)?;
    let authority_key_id = t
        .issuer_key_id
        .clone()
        .unwrap_or_else(|| subject_key_id.clone());
    let mut extensions = Vec::new();

    let (ca, path_len) = match &t.kind {
        Kind::Ca { path_len } => (true, *path_len),
        Kind::Leaf { .. } | Kind::OcspSigner => (false, None),
    };
    extensions.push(ext(
        &BasicConstraints {
            ca,
            path_len_constraint: path_len,
        },
        true,
    )?);
    let usages = match &t.kind {
        Kind::Ca { .. } => vec![
            KeyUsages::DigitalSignature,
            KeyUsages::KeyCertSign,
            KeyUsages::CRLSign,
        ],
        Kind::Leaf { key_usage, .. } => key_usage.clone(),
        Kind::OcspSigner => vec![KeyUsages::DigitalSignature],
    };
    let mut flags = der::flagset::FlagSet::<KeyUsages>::default();
    for usage in usages {
        flags |= usage;
    }
    extensions.push(ext(&KeyUsage(flags), true)?);
    if let Kind::Leaf { ext_key_usage, .. } = &t.kind {
        if !ext_key_usage.is_empty() {
            extensions.push(ext(&ExtendedKeyUsage(ext_key_usage.clone()), false)?);
        }
    }
    if t.kind == Kind::OcspSigner {
        extensions.push(ext(&ExtendedKeyUsage(vec![ID_KP_OCSP_SIGNING]), false)?);
        // id-pkix-ocsp-nocheck: clients need not check this certificate's status.
        extensions.push(Extension {
            extn_id: ID_PKIX_OCSP_NOCHECK,
            critical: false,
            extn_value: OctetString::new(der::asn1::Null.to_der().map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?,
        });
    }
    extensions.push(ext(
        &SubjectKeyIdentifier(OctetString::new(subject_key_id).map_err(|e| e.to_string())?),
        false,
    )?);
    extensions.push(ext(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(authority_key_id).map_err(|e| e.to_string())?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )?);
    if !t.names.is_empty() {
        // RFC 5280 4.2.1.6: critical when the subject is empty.
        let critical = t.subject.0.is_empty();
        extensions.push(ext(&SubjectAltName(general_names(t.names)?), critical)?);
    }
    // A delegated OCSP signer is not itself checked for revocation (nocheck).
    let urls = match t.kind {
        Kind::OcspSigner => &DistributionUrls::default(),
        _ => t.urls,
    };
    if let Some(crl) = &urls.crl {
        extensions.push(ext(
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri_name(crl)?])),
                reasons: None,
                crl_issuer: None,
            }]),
            false,
        )?);
    }
    let mut access = Vec::new();
    if let Some(ocsp) = &urls.ocsp {
        access.push(AccessDescription {
            access_method: ID_AD_OCSP,
            access_location: uri_name(ocsp)?,
        });
    }
    if let Some(ca_issuers) = &urls.ca_issuers {
        access.push(AccessDescription {
            access_method: ID_AD_CA_ISSUERS,
            access_location: uri_name(ca_issuers)?,
        });
    }
    if !access.is_empty() {
        extensions.push(ext(&AuthorityInfoAccessSyntax(access), false)?);
    }

    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(t.serial).map_err(|e| e.to_string())?,
        signature: t.signature.clone(),
        issuer: t.issuer.clone(),
        validity: validity(t.not_before, t.not_after)?,
        subject: t.subject.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

fn ext<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, String> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
    })
}

/// Assembles a signed certificate from its TBS and signature.
pub(crate) fn assemble(
    tbs: TbsCertificate,
    signature: &[u8],
) -> Result<x509_cert::Certificate, String> {
    Ok(x509_cert::Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(signature).map_err(|e| e.to_string())?,
    })
}
