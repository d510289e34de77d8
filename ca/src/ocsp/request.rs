//! Parsing `OCSPRequest`s: limits, nonce, extensions, CertID matching.

use std::collections::HashSet;

use const_oid::db::rfc6960::{
    ID_PKIX_OCSP_NONCE, ID_PKIX_OCSP_PREF_SIG_ALGS, ID_PKIX_OCSP_RESPONSE,
};
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode, Tag, Tagged};
use spki::AlgorithmIdentifierRef;

use super::wire;
use super::{
    CertIdHash, IssuerHashes, MAX_CERT_IDS, MAX_NONCE_LEN, MAX_OCSP_REQUEST_LEN, OcspErrorStatus,
    error_response,
};
use crate::store::Serial;

/// Why a request cannot be answered; every one means `malformedRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspRequestError {
    /// No bytes at all.
    #[error("the OCSP request is empty")]
    Empty,
    /// Longer than [`MAX_OCSP_REQUEST_LEN`]; not parsed.
    #[error("the OCSP request has {len} bytes; the limit is {MAX_OCSP_REQUEST_LEN}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not a DER `OCSPRequest` (the decoder's reason).
    #[error("the OCSP request is not a DER OCSPRequest: {0}")]
    Malformed(String),
    /// A version other than v1.
    #[error("OCSP request version {0} is not v1")]
    UnsupportedVersion(u8),
    /// An empty `requestList`.
    #[error("the OCSP request names no certificate")]
    NoCertIds,
    /// More than [`MAX_CERT_IDS`] CertIDs.
    #[error("the OCSP request names {count} certificates; at most {MAX_CERT_IDS} are answered")]
    TooManyCertIds {
        /// How many.
        count: usize,
    },
    /// A nonce of 0 or more than [`MAX_NONCE_LEN`] octets (RFC 8954 2.1).
    #[error("the OCSP nonce has {len} octets; it must have 1 to {MAX_NONCE_LEN}")]
    NonceLength {
        /// Its length.
        len: usize,
    },
    /// The same extension twice in one list.
    #[error("extension {0} appears more than once")]
    DuplicateExtension(String),
    /// A critical extension we do not understand.
    #[error("unsupported critical extension {0}")]
    UnsupportedCriticalExtension(String),
}

impl OcspRequestError {
    /// The status to answer with: always `malformedRequest` today.
    pub fn status(&self) -> OcspErrorStatus {
        OcspErrorStatus::MalformedRequest
    }

    /// The unsigned error response to send.
    pub fn response(&self) -> Vec<u8> {
        error_response(self.status())
    }
}

/// A parsed OCSP request, matched against one issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    issuer_id: String,
    cert_ids: Vec<RequestedCert>,
    nonce: Option<Vec<u8>>,
    signed: bool,
}

impl OcspRequest {
    /// The CertIDs asked about, in request order (1 to [`super::MAX_CERT_IDS`]).
    pub fn cert_ids(&self) -> &[RequestedCert] {
        &self.cert_ids
    }

    /// Whether any CertID names our issuer. If none does, answer
    /// `unauthorized` ([`super::OcspErrorStatus::Unauthorized`]).
    pub fn any_ours(&self) -> bool {
        self.cert_ids.iter().any(|c| c.ours)
    }

    /// The nonce (1 to [`super::MAX_NONCE_LEN`] octets), if the request has
    /// one. A response from a nonce-less cache does not answer such a request
    /// in the client's eyes if it checks nonces (OpenSSL warns).
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }

    /// Whether the request carried a signature (parsed, never checked).
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    pub(super) fn issuer_id(&self) -> &str {
        &self.issuer_id
    }
}

/// One CertID of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedCert {
    der: Vec<u8>,
    hash: Option<CertIdHash>,
    ours: bool,
    serial: Option<Serial>,
}

impl RequestedCert {
    /// The CertID exactly as the client sent it (DER); the response echoes it.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its hash algorithm, if it is one we understand.
    pub fn hash(&self) -> Option<CertIdHash> {
        self.hash
    }

    /// Whether its issuer name and key hashes are our issuer's.
    pub fn is_ours(&self) -> bool {
        self.ours
    }

    /// Its serial, if the INTEGER is positive and at most 20 octets.
    pub fn serial(&self) -> Option<&Serial> {
        self.serial.as_ref()
    }

    /// The serial whose status the caller must look up: present only when the
    /// CertID is ours and its serial valid. Otherwise the response says
    /// `unknown` for this CertID, whatever state is passed for it.
    pub fn lookup_serial(&self) -> Option<&Serial> {
        self.serial.as_ref().filter(|_| self.ours)
    }
}

/// Extensions we understand in `requestExtensions`; a critical one of any
/// other type makes the request malformed. Acceptable-response types and
/// preferred signature algorithms are understood and ignored: we only send
/// basic responses, signed with our key's one algorithm.
const KNOWN_REQUEST_EXTENSIONS: [der::asn1::ObjectIdentifier; 3] = [
    ID_PKIX_OCSP_NONCE,
    ID_PKIX_OCSP_RESPONSE,
    ID_PKIX_OCSP_PREF_SIG_ALGS,
];

pub(super) fn parse(
    der: &[u8],
    hashes: &IssuerHashes,
    issuer_id: &str,
) -> Result<OcspRequest, OcspRequestError> {
    if der.is_empty() {
        return Err(OcspRequestError::Empty);
    }
    if der.len() > MAX_OCSP_REQUEST_LEN {
        return Err(OcspRequestError::TooLarge { len: der.len() });
    }
    let malformed = |e: der::Error| OcspRequestError::Malformed(e.to_string());
    let request = wire::OcspRequest::from_der(der).map_err(malformed)?;
    let tbs = request.tbs_request;
    if let Some(version) = tbs.version.filter(|v| *v != 0) {
        return Err(OcspRequestError::UnsupportedVersion(version));
    }
    match tbs.request_list.len() {
        0 => return Err(OcspRequestError::NoCertIds),
        count if count > MAX_CERT_IDS => {
            return Err(OcspRequestError::TooManyCertIds { count });
        }
        _ => {}
    }

    let mut nonce = None;
    let extensions = tbs.request_extensions.as_deref().unwrap_or_default();
    check_extensions(extensions, &KNOWN_REQUEST_EXTENSIONS)?;
    if let Some(e) = extensions.iter().find(|e| e.extn_id == ID_PKIX_OCSP_NONCE) {
        // RFC 8954: extnValue is the DER of `Nonce ::= OCTET STRING`.
        let value = OctetStringRef::from_der(e.extn_value.as_bytes()).map_err(|e| {
            OcspRequestError::Malformed(format!("the nonce is not a DER OCTET STRING: {e}"))
        })?;
        let len = value.as_bytes().len();
        if len == 0 || len > MAX_NONCE_LEN {
            return Err(OcspRequestError::NonceLength { len });
        }
        nonce = Some(value.as_bytes().to_vec());
    }

    let mut cert_ids = Vec::with_capacity(tbs.request_list.len());
    for single in &tbs.request_list {
        check_extensions(
            single
                .single_request_extensions
                .as_deref()
                .unwrap_or_default(),
            &[],
        )?;
        cert_ids.push(requested_cert(single.req_cert, hashes)?);
    }
    Ok(OcspRequest {
        issuer_id: issuer_id.to_string(),
        cert_ids,
        nonce,
        signed: request.optional_signature.is_some(),
    })
}

fn check_extensions(
    extensions: &[wire::Extension<'_>],
    known: &[der::asn1::ObjectIdentifier],
) -> Result<(), OcspRequestError> {
    let mut seen = HashSet::new();
    for e in extensions {
        if !seen.insert(e.extn_id) {
            return Err(OcspRequestError::DuplicateExtension(e.extn_id.to_string()));
        }
        if e.critical && !known.contains(&e.extn_id) {
            return Err(OcspRequestError::UnsupportedCriticalExtension(
                e.extn_id.to_string(),
            ));
        }
    }
    Ok(())
}

fn requested_cert(
    raw: AnyRef<'_>,
    hashes: &IssuerHashes,
) -> Result<RequestedCert, OcspRequestError> {
    let malformed = |what: &str, e: der::Error| OcspRequestError::Malformed(format!("{what}: {e}"));
    let der = raw.to_der().map_err(|e| malformed("CertID", e))?;
    let id = wire::CertId::from_der(&der).map_err(|e| malformed("CertID", e))?;
    if id.serial_number.tag() != Tag::Integer {
        return Err(OcspRequestError::Malformed(format!(
            "CertID serialNumber is a {}, not an INTEGER",
            id.serial_number.tag()
        )));
    }
    // Parameters absent or NULL (RFC 6960 does not say which; OpenSSL writes NULL).
    let params_ok = id
        .hash_algorithm
        .parameters
        .is_none_or(|p| p == AnyRef::NULL);
    let hash = CertIdHash::from_oid(id.hash_algorithm.oid).filter(|_| params_ok);
    let ours = hash.is_some_and(|h| {
        hashes.matches(
            h,
            id.issuer_name_hash.as_bytes(),
            id.issuer_key_hash.as_bytes(),
        )
    });
    let value = id.serial_number.value();
    // X.690 8.3.2: at least one octet, and the first nine bits not all equal.
    let redundant = match value {
        [] => true,
        [first, second, ..] => {
            (*first == 0x00 && second & 0x80 == 0) || (*first == 0xff && second & 0x80 != 0)
        }
        [_] => false,
    };
    if redundant {
        return Err(OcspRequestError::Malformed(
            "CertID serialNumber is not a DER INTEGER".into(),
        ));
    }
    let zero = value == [0];
    let serial = Serial::from_bytes(value.to_vec()).ok().filter(|_| !zero);
    Ok(RequestedCert {
        der,
        hash,
        ours,
        serial,
    })
}

/// The DER CertID for `serial` under `hash`, with NULL hash parameters.
pub(super) fn cert_id_der(
    hash: CertIdHash,
    name_hash: &[u8],
    key_hash: &[u8],
    serial: &Serial,
) -> Result<Vec<u8>, der::Error> {
    wire::CertId {
        hash_algorithm: AlgorithmIdentifierRef {
            oid: hash.oid(),
            parameters: Some(AnyRef::NULL),
        },
        issuer_name_hash: OctetStringRef::new(name_hash)?,
        issuer_key_hash: OctetStringRef::new(key_hash)?,
        serial_number: AnyRef::new(Tag::Integer, serial.as_bytes())?,
    }
    .to_der()
}
