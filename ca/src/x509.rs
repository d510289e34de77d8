//! Small X.509 helpers shared by the builder, the lints and the CSR parser:
//! names, algorithm identifiers, key identifiers and times.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::{
    COMMON_NAME, COUNTRY_NAME, LOCALITY_NAME, ORGANIZATION_NAME, ORGANIZATIONAL_UNIT_NAME, ST,
};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_MGF_1, ID_RSASSA_PSS, ID_SHA_256, ID_SHA_384,
    ID_SHA_512, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::db::rfc8410::ID_ED_25519;
use der::asn1::{Any, AnyRef, Ia5String, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Encode, Tag, Tagged};
use spki::{AlgorithmIdentifier, AlgorithmIdentifierOwned, AlgorithmIdentifierRef};
use strongroom_hsm::SignatureAlgorithm;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::time::{Time, Validity};

use crate::names::Names;

/// The `AlgorithmIdentifier` that goes into a certificate or CRL signed with `algorithm`.
pub(crate) fn signature_algorithm_id(
    algorithm: SignatureAlgorithm,
) -> Result<AlgorithmIdentifierOwned, String> {
    use SignatureAlgorithm::*;
    let null = Some(Any::from(AnyRef::NULL));
    Ok(match algorithm {
        EcdsaP256Sha256 => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_256,
            parameters: None,
        },
        EcdsaP384Sha384 => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_384,
            parameters: None,
        },
        RsaPkcs1Sha256 => AlgorithmIdentifierOwned {
            oid: SHA_256_WITH_RSA_ENCRYPTION,
            parameters: null,
        },
        RsaPkcs1Sha384 => AlgorithmIdentifierOwned {
            oid: SHA_384_WITH_RSA_ENCRYPTION,
            parameters: null,
        },
        RsaPkcs1Sha512 => AlgorithmIdentifierOwned {
            oid: SHA_512_WITH_RSA_ENCRYPTION,
            parameters: null,
        },
        RsaPssSha256 => pss_id(ID_SHA_256, 32)?,
        RsaPssSha384 => pss_id(ID_SHA_384, 48)?,
        RsaPssSha512 => pss_id(ID_SHA_512, 64)?,
        Ed25519 => AlgorithmIdentifierOwned {
            oid: ID_ED_25519,
            parameters: None,
        },
        other => return Err(format!("no X.509 algorithm identifier for {other}")),
    })
}

/// RSASSA-PSS with `hash`, MGF1 over the same hash, and a salt as long as the hash.
fn pss_id(hash: ObjectIdentifier, salt_len: u8) -> Result<AlgorithmIdentifierOwned, String> {
    let hash_id = AlgorithmIdentifierRef {
        oid: hash,
        parameters: Some(AnyRef::NULL),
    };
    let params = pkcs1::RsaPssParams {
        hash: hash_id,
        mask_gen: AlgorithmIdentifier {
            oid: ID_MGF_1,
            parameters: Some(hash_id),
        },
        salt_len,
        trailer_field: pkcs1::TrailerField::BC,
    };
    let der = params.to_der().map_err(|e| e.to_string())?;
    Ok(AlgorithmIdentifierOwned {
        oid: ID_RSASSA_PSS,
        parameters: Some(Any::from_der_owned(&der)?),
    })
}

trait FromDerOwned: Sized {
    fn from_der_owned(der: &[u8]) -> Result<Self, String>;
}

impl FromDerOwned for Any {
    fn from_der_owned(der: &[u8]) -> Result<Self, String> {
        <Any as der::Decode>::from_der(der).map_err(|e| e.to_string())
    }
}

/// A key identifier (RFC 7093 method 1): the leftmost 160 bits of the SHA-256
/// of the subjectPublicKey BIT STRING's contents.
pub(crate) fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, String> {
    let spki = <spki::SubjectPublicKeyInfoRef<'_> as der::Decode>::from_der(spki_der)
        .map_err(|e| e.to_string())?;
    let digest = ring::digest::digest(&ring::digest::SHA256, spki.subject_public_key.raw_bytes());
    Ok(digest.as_ref()[..20].to_vec())
}

/// A name built from `(short name, value)` pairs, one attribute per RDN, in order.
///
/// `C` is a PrintableString (RFC 5280 requires it); everything else UTF8String.
pub(crate) fn build_name(attributes: &[(String, String)]) -> Result<Name, String> {
    let mut rdns = Vec::new();
    for (key, value) in attributes {
        let (oid, tag) = match key.as_str() {
            "CN" => (COMMON_NAME, Tag::Utf8String),
            "C" => (COUNTRY_NAME, Tag::PrintableString),
            "ST" => (ST, Tag::Utf8String),
            "L" => (LOCALITY_NAME, Tag::Utf8String),
            "O" => (ORGANIZATION_NAME, Tag::Utf8String),
            "OU" => (ORGANIZATIONAL_UNIT_NAME, Tag::Utf8String),
            other => return Err(format!("unsupported name attribute '{other}'")),
        };
        if tag == Tag::PrintableString {
            PrintableStringRef::new(value)
                .map_err(|_| format!("'{value}' is not printable for {key}"))?;
        }
        let atv = AttributeTypeAndValue {
            oid,
            value: Any::new(tag, value.as_bytes()).map_err(|e| e.to_string())?,
        };
        let set = SetOfVec::try_from(vec![atv]).map_err(|e| e.to_string())?;
        rdns.push(RelativeDistinguishedName(set));
    }
    Ok(RdnSequence(rdns))
}

/// The common name in `name`, if it has one (several are an error).
pub(crate) fn common_name(name: &Name) -> Result<Option<String>, String> {
    let mut found = None;
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid != COMMON_NAME {
                continue;
            }
            let value = attribute_string(&atv.value)
                .ok_or_else(|| "common name is not a UTF8String or PrintableString".to_string())?;
            if found.replace(value).is_some() {
                return Err("the subject has more than one common name".into());
            }
        }
    }
    Ok(found)
}

fn attribute_string(value: &Any) -> Option<String> {
    match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.to_string()),
        Tag::PrintableString => PrintableStringRef::try_from(value)
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    }
}

/// The names a certificate (DER) is for: its subject's common name, if any,
/// and its subject alternative names. Other kinds of alternative name (e.g.
/// e-mail) are skipped.
pub fn certificate_names(der: &[u8]) -> Result<(Option<String>, Names), String> {
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let tbs = &certificate.tbs_certificate;
    let mut names = Names::default();
    if let Some((_, san)) = tbs
        .get::<x509_cert::ext::pkix::SubjectAltName>()
        .map_err(|e| format!("unreadable subject alternative names: {e}"))?
    {
        for name in &san.0 {
            if matches!(
                name,
                GeneralName::DnsName(_)
                    | GeneralName::UniformResourceIdentifier(_)
                    | GeneralName::IpAddress(_)
            ) {
                general_name_into(name, &mut names)?;
            }
        }
    }
    Ok((common_name(&tbs.subject)?, names))
}

/// Adds a DNS, IP or URI general name to `names`.
pub(crate) fn general_name_into(name: &GeneralName, names: &mut Names) -> Result<(), String> {
    match name {
        GeneralName::DnsName(dns) => names.push_dns(dns.as_str()),
        GeneralName::UniformResourceIdentifier(uri) => names.push_uri(uri.as_str()),
        GeneralName::IpAddress(octets) => {
            let bytes = octets.as_bytes();
            let ip = match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(bytes).map_err(|e| e.to_string())?),
                16 => IpAddr::from(<[u8; 16]>::try_from(bytes).map_err(|e| e.to_string())?),
                n => return Err(format!("IP address name of {n} bytes")),
            };
            names.push_ip(ip);
        }
        _ => return Err("unsupported general name type".into()),
    }
    Ok(())
}

/// `names` as general names (DNS, then IP, then URI).
pub(crate) fn general_names(names: &Names) -> Result<Vec<GeneralName>, String> {
    let mut out = Vec::new();
    for dns in &names.dns {
        out.push(GeneralName::DnsName(
            Ia5String::new(dns).map_err(|e| format!("DNS name '{dns}': {e}"))?,
        ));
    }
    for ip in &names.ips {
        let octets = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        out.push(GeneralName::IpAddress(
            OctetString::new(octets).map_err(|e| e.to_string())?,
        ));
    }
    for uri in &names.uris {
        out.push(GeneralName::UniformResourceIdentifier(
            Ia5String::new(uri).map_err(|e| format!("URI '{uri}': {e}"))?,
        ));
    }
    Ok(out)
}

/// A URI general name.
pub(crate) fn uri_name(uri: &str) -> Result<GeneralName, String> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(uri).map_err(|e| format!("URI '{uri}': {e}"))?,
    ))
}

/// Validity from `not_before` for `ttl`, in whole seconds, encoded as RFC 5280
/// requires (UTCTime through 2049, GeneralizedTime from 2050).
pub(crate) fn validity(not_before: SystemTime, not_after: SystemTime) -> Result<Validity, String> {
    Ok(Validity {
        not_before: time(not_before)?,
        not_after: time(not_after)?,
    })
}

fn time(t: SystemTime) -> Result<Time, String> {
    let secs = unix(t);
    let whole = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(secs).map_err(|e| e.to_string())?);
    let dt = der::DateTime::from_system_time(whole).map_err(|e| e.to_string())?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(
            der::asn1::UtcTime::from_date_time(dt).map_err(|e| e.to_string())?,
        ))
    } else {
        Ok(Time::GeneralTime(
            der::asn1::GeneralizedTime::from_date_time(dt),
        ))
    }
}

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The Unix time of an X.509 time.
pub(crate) fn time_unix(t: &Time) -> i64 {
    unix(t.to_system_time())
}
