//! Our own lints, run on every to-be-signed certificate before the HSM signs.
//!
//! They catch what would make a certificate wrong or unsafe under RFC 5280 and
//! our own rules; `pkilint` checks the same certificates independently in the
//! tests. Any finding stops issuance (fail closed).

use std::collections::HashSet;

use const_oid::db::rfc5280::{
    ANY_EXTENDED_KEY_USAGE, ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS,
    ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME,
    ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_OCSP_SIGNING, ID_PE_AUTHORITY_INFO_ACCESS,
};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
use der::Decode;
use x509_cert::TbsCertificate;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::time::Time;

use crate::names::{Names, dns_name_problem};
use crate::x509::{common_name, general_name_into, key_identifier, time_unix};

/// What the lints compare a certificate with: its issuer.
pub(crate) struct IssuerFacts<'a> {
    pub subject: &'a x509_cert::name::Name,
    pub key_id: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    pub signature: &'a spki::AlgorithmIdentifierOwned,
    /// Whether this is the certificate's own key (self-signed).
    pub self_signed: bool,
}

/// Every finding for `tbs`; empty means clean.
pub(crate) fn lint(tbs: &TbsCertificate, issuer: &IssuerFacts<'_>) -> Vec<String> {
    let mut f = Vec::new();
    if tbs.version != Version::V3 {
        f.push("certificate is not version 3".into());
    }
    let serial = tbs.serial_number.as_bytes();
    if serial.is_empty() || serial[0] & 0x80 != 0 {
        f.push("serial number is not positive".into());
    }
    if serial.len() > 20 {
        f.push("serial number is longer than 20 octets".into());
    }
    if serial.iter().skip_while(|b| **b == 0).count() < 8 {
        f.push("serial number has fewer than 64 bits".into());
    }
    if &tbs.signature != issuer.signature {
        f.push("signature algorithm differs from the issuer's".into());
    }
    if &tbs.issuer != issuer.subject {
        f.push("issuer name differs from the issuer certificate's subject".into());
    }
    let (nb, na) = (
        time_unix(&tbs.validity.not_before),
        time_unix(&tbs.validity.not_after),
    );
    if nb >= na {
        f.push("notBefore is not before notAfter".into());
    }
    if !issuer.self_signed && (nb < issuer.not_before || na > issuer.not_after) {
        f.push("validity is not within the issuer's validity".into());
    }
    for t in [&tbs.validity.not_before, &tbs.validity.not_after] {
        let year = t.to_date_time().year();
        let utc = matches!(t, Time::UtcTime(_));
        if utc != (year < 2050) {
            f.push(format!(
                "time in {year} uses the wrong ASN.1 type (RFC 5280 4.1.2.5)"
            ));
        }
    }
    if strongroom_hsm::PublicKey::from_der(
        &der::Encode::to_der(&tbs.subject_public_key_info).unwrap_or_default(),
    )
    .is_err()
    {
        f.push("subject public key is not a supported key".into());
    }

    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    for e in extensions {
        if !seen.insert(e.extn_id) {
            f.push(format!("extension {} appears twice", e.extn_id));
        }
    }
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);

    let mut is_ca = false;
    match find(ID_CE_BASIC_CONSTRAINTS) {
        Some(e) => match BasicConstraints::from_der(e.extn_value.as_bytes()) {
            Ok(bc) => {
                is_ca = bc.ca;
                if bc.ca && !e.critical {
                    f.push("basicConstraints of a CA must be critical".into());
                }
                if !bc.ca && bc.path_len_constraint.is_some() {
                    f.push("pathLenConstraint on a non-CA certificate".into());
                }
            }
            Err(_) => f.push("basicConstraints cannot be decoded".into()),
        },
        None => f.push("basicConstraints is missing".into()),
    }
    match find(ID_CE_KEY_USAGE) {
        Some(e) => match KeyUsage::from_der(e.extn_value.as_bytes()) {
            Ok(ku) => {
                if !e.critical {
                    f.push("keyUsage must be critical".into());
                }
                if ku.0.is_empty() {
                    f.push("keyUsage is empty".into());
                }
                let signs_certs = ku.0.contains(KeyUsages::KeyCertSign);
                if signs_certs != is_ca {
                    f.push("keyCertSign must be set exactly when the certificate is a CA".into());
                }
            }
            Err(_) => f.push("keyUsage cannot be decoded".into()),
        },
        None => f.push("keyUsage is missing".into()),
    }
    // A delegated OCSP responder certificate (RFC 6960 4.2.2.2) has no SAN.
    let mut ocsp_signer = false;
    if let Some(e) = extensions
        .iter()
        .find(|e| e.extn_id == <ExtendedKeyUsage as const_oid::AssociatedOid>::OID)
    {
        let decoded = ExtendedKeyUsage::from_der(e.extn_value.as_bytes());
        ocsp_signer = decoded
            .as_ref()
            .is_ok_and(|eku| eku.0.contains(&ID_KP_OCSP_SIGNING));
        match decoded {
            Ok(eku) if eku.0.contains(&ANY_EXTENDED_KEY_USAGE) => {
                f.push("anyExtendedKeyUsage is not issued".into());
            }
            Ok(eku) if eku.0.is_empty() => f.push("extendedKeyUsage is empty".into()),
            Ok(_) => {}
            Err(_) => f.push("extendedKeyUsage cannot be decoded".into()),
        }
    }
    let spki_der = der::Encode::to_der(&tbs.subject_public_key_info).unwrap_or_default();
    match find(ID_CE_SUBJECT_KEY_IDENTIFIER) {
        Some(e) => match SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()) {
            Ok(ski) if Ok(ski.0.as_bytes().to_vec()) != key_identifier(&spki_der) => {
                f.push("subjectKeyIdentifier does not match the subject key".into());
            }
            Ok(_) => {}
            Err(_) => f.push("subjectKeyIdentifier cannot be decoded".into()),
        },
        None => f.push("subjectKeyIdentifier is missing".into()),
    }
    match find(ID_CE_AUTHORITY_KEY_IDENTIFIER) {
        Some(e) => match AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()) {
            Ok(aki) => {
                if e.critical {
                    f.push("authorityKeyIdentifier must not be critical".into());
                }
                if aki.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(issuer.key_id) {
                    f.push("authorityKeyIdentifier does not match the issuer's key".into());
                }
            }
            Err(_) => f.push("authorityKeyIdentifier cannot be decoded".into()),
        },
        None => f.push("authorityKeyIdentifier is missing".into()),
    }

    let mut names = Names::default();
    match find(ID_CE_SUBJECT_ALT_NAME) {
        Some(e) => match SubjectAltName::from_der(e.extn_value.as_bytes()) {
            Ok(san) => {
                if san.0.is_empty() {
                    f.push("subjectAltName is empty".into());
                }
                if tbs.subject.0.is_empty() && !e.critical {
                    f.push("subjectAltName must be critical when the subject is empty".into());
                }
                for name in &san.0 {
                    if let Err(problem) = general_name_into(name, &mut names) {
                        f.push(format!("subjectAltName: {problem}"));
                    }
                }
                for dns in &names.dns {
                    if let Some(problem) = dns_name_problem(dns) {
                        f.push(problem);
                    }
                }
            }
            Err(_) => f.push("subjectAltName cannot be decoded".into()),
        },
        None if !is_ca && !ocsp_signer => {
            f.push("end-entity certificate without subjectAltName".into());
        }
        None => {}
    }
    if ocsp_signer || find(ID_PKIX_OCSP_NOCHECK).is_some() {
        lint_ocsp_signer(tbs, is_ca, &mut f);
    } else if !is_ca {
        match common_name(&tbs.subject) {
            Ok(Some(cn)) => {
                let in_sans = names.dns.iter().any(|d| d.eq_ignore_ascii_case(&cn))
                    || names.ips.iter().any(|ip| ip.to_string() == cn);
                if !in_sans {
                    f.push(format!(
                        "common name '{cn}' is not among the subject alternative names"
                    ));
                }
            }
            Ok(None) => {}
            Err(problem) => f.push(problem),
        }
    }
    if is_ca && tbs.subject.0.is_empty() {
        f.push("CA certificate with an empty subject".into());
    }
    f
}

/// What a delegated OCSP responder certificate must be (RFC 6960 4.2.2.2 and
/// our profile): an end entity for `digitalSignature` and `id-kp-OCSPSigning`
/// only, carrying a NULL non-critical `id-pkix-ocsp-nocheck`, with no CRL
/// distribution point or AIA (nothing checks its status).
fn lint_ocsp_signer(tbs: &TbsCertificate, is_ca: bool, f: &mut Vec<String>) {
    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);
    if is_ca {
        f.push("OCSP signer certificate is a CA".into());
    }
    let eku = find(<ExtendedKeyUsage as const_oid::AssociatedOid>::OID)
        .and_then(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok());
    if eku.is_none_or(|eku| eku.0 != [ID_KP_OCSP_SIGNING]) {
        f.push(
            "OCSP signer certificate's extended key usage is not exactly id-kp-OCSPSigning".into(),
        );
    }
    let ku = find(ID_CE_KEY_USAGE).and_then(|e| KeyUsage::from_der(e.extn_value.as_bytes()).ok());
    if ku.is_none_or(|ku| ku.0 != der::flagset::FlagSet::from(KeyUsages::DigitalSignature)) {
        f.push("OCSP signer certificate's key usage is not exactly digitalSignature".into());
    }
    match find(ID_PKIX_OCSP_NOCHECK) {
        Some(e) if e.critical => f.push("id-pkix-ocsp-nocheck must not be critical".into()),
        Some(e) if der::asn1::Null::from_der(e.extn_value.as_bytes()).is_err() => {
            f.push("id-pkix-ocsp-nocheck is not NULL".into());
        }
        Some(_) => {}
        None => f.push("OCSP signer certificate lacks id-pkix-ocsp-nocheck".into()),
    }
    if find(ID_CE_CRL_DISTRIBUTION_POINTS).is_some() || find(ID_PE_AUTHORITY_INFO_ACCESS).is_some()
    {
        f.push("OCSP signer certificate has a CRL distribution point or AIA".into());
    }
}
