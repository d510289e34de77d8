//! OCSP (RFC 6960): parse requests, match their CertIDs to one issuer, and
//! build, lint and sign responses with the issuer's key or a delegated
//! responder's.
//!
//! This module is the protocol core only; transport (HTTP GET/POST), caching
//! and the certificate inventory live in the binary. A request is answered in
//! four steps:
//!
//! 1. [`OcspResponder::parse_request`] turns at most [`MAX_OCSP_REQUEST_LEN`]
//!    bytes into an [`OcspRequest`], or an [`OcspRequestError`] whose
//!    [`OcspRequestError::response`] is the `malformedRequest` answer. It
//!    never panics, whatever the input (see the robustness test and the
//!    `fuzz/` target).
//! 2. If [`OcspRequest::any_ours`] is false, no CertID names this issuer: the
//!    caller answers [`error_response`]`(`[`OcspErrorStatus::Unauthorized`]`)`.
//! 3. The caller looks up [`RequestedCert::lookup_serial`] for every CertID in
//!    its inventory and turns each into a [`CertState`].
//! 4. [`OcspResponder::respond`] builds one response for all CertIDs, echoing
//!    each CertID byte for byte and the nonce if there was one, lints it
//!    (fail closed), has the HSM sign it and verifies the signature.
//!
//! [`OcspResponder::presign`] makes the nonce-less single-certificate
//! responses a cache serves; such a response answers any request for that
//! serial and CertID hash that carries no nonce.
//!
//! Choices RFC 6960 leaves open, made here:
//! - The responder ID is always `byKey`: the SHA-1 of the signer's
//!   `subjectPublicKey` BIT STRING contents (RFC 6960 4.2.1).
//! - CertIDs hashed with SHA-1 or SHA-256 are understood. A CertID with any
//!   other hash algorithm cannot be matched to our issuer, so it is answered
//!   `unknown` ("an unrecognized issuer", RFC 6960 2.2) rather than failing
//!   the whole request; a request with no CertID of ours is `unauthorized`.
//! - A CertID of ours whose serial is not a positive INTEGER of at most 20
//!   octets names no certificate we can have issued: `unknown`. A serial
//!   that is not a DER INTEGER at all (empty, redundant leading octets) makes
//!   the request malformed: it could not be echoed as valid DER.
//! - Nonces follow RFC 8954 2.1: "A server MUST reject any OCSP request that
//!   has a nonce in the Nonce extension with a length of either 0 octets or
//!   more than 32 octets with the malformedRequest OCSPResponseStatus." The
//!   extension value must be a DER OCTET STRING (the nonce), as OpenSSL
//!   writes it. RFC 9654 (2024) obsoletes RFC 8954 and raises the maximum to
//!   128 octets; [`MAX_NONCE_LEN`] is the one place to change that.
//! - Signed requests are parsed (their structure must be valid) but their
//!   signatures are not checked: we never require signed requests.
//! - An unknown critical request extension makes the request malformed.
//! - A `revoked` status carries `revocationReason` unless the reason is
//!   `unspecified`, which RFC 5280 5.3.1 says to express by omission.

mod request;
mod response;
mod signer;
mod wire;

use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use strongroom_hsm::PublicKey;
use x509_cert::Certificate;

use crate::error::CaError;
use crate::issuer::Issuer;
use crate::revocation::RevocationReason;
use crate::store::Serial;
use crate::x509::{signature_algorithm_id, time_unix};

pub use request::{OcspRequest, OcspRequestError, RequestedCert};
pub use signer::DelegatedSigner;
pub(crate) use signer::{issue_signer_certificate, signer_tbs};

/// Requests longer than this many bytes are malformed without being parsed.
///
/// A request for [`MAX_CERT_IDS`] SHA-256 CertIDs with a nonce is about
/// 3.5 KiB; the rest leaves room for a signed request carrying a certificate.
pub const MAX_OCSP_REQUEST_LEN: usize = 8 * 1024;

/// The most CertIDs one request may ask about; more make it malformed.
pub const MAX_CERT_IDS: usize = 32;

/// The longest nonce accepted (RFC 8954 2.1); longer ones, and empty ones,
/// make the request malformed.
pub const MAX_NONCE_LEN: usize = 32;

/// The hash algorithm of a CertID's issuer name and key hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1, what RFC 5019 clients and OpenSSL send by default.
    Sha1,
    /// SHA-256 (`openssl ocsp -sha256`).
    Sha256,
}

impl CertIdHash {
    /// Both algorithms.
    pub const ALL: [CertIdHash; 2] = [CertIdHash::Sha1, CertIdHash::Sha256];

    /// `sha1` or `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            CertIdHash::Sha1 => "sha1",
            CertIdHash::Sha256 => "sha256",
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            CertIdHash::Sha1 => ID_SHA_1,
            CertIdHash::Sha256 => ID_SHA_256,
        }
    }

    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        CertIdHash::ALL.into_iter().find(|h| h.oid() == oid)
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            CertIdHash::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            CertIdHash::Sha256 => &ring::digest::SHA256,
        };
        ring::digest::digest(algorithm, data).as_ref().to_vec()
    }
}

/// What the inventory says about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    /// Issued by us and not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// When, Unix seconds, UTC; never after the response's `producedAt`.
        revoked_at: i64,
        /// Why. `removeFromCRL` is refused (it only exists in delta CRLs).
        reason: RevocationReason,
    },
    /// Not known to us (never issued by this issuer, as far as we know).
    Unknown,
}

/// The times a response states. Sub-second parts are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspTimes {
    /// When the response is signed (`producedAt`).
    pub produced_at: SystemTime,
    /// When the status was known to be correct (`thisUpdate`); not after
    /// `produced_at`.
    pub this_update: SystemTime,
    /// When newer information will be available (`nextUpdate`); not before
    /// `this_update`, and not after the signer certificate expires.
    pub next_update: SystemTime,
}

/// The unsuccessful `OCSPResponseStatus` values we send (RFC 6960 4.2.1).
///
/// `sigRequired` is missing on purpose: we never require signed requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcspErrorStatus {
    /// `malformedRequest` (1): the request could not be parsed or broke a limit.
    MalformedRequest,
    /// `internalError` (2): we failed (HSM, store, lint).
    InternalError,
    /// `tryLater` (3): temporarily unable to answer (e.g. sealed, overloaded).
    TryLater,
    /// `unauthorized` (6): no CertID in the request names an issuer we serve.
    Unauthorized,
}

impl OcspErrorStatus {
    /// The `OCSPResponseStatus` ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            OcspErrorStatus::MalformedRequest => 1,
            OcspErrorStatus::InternalError => 2,
            OcspErrorStatus::TryLater => 3,
            OcspErrorStatus::Unauthorized => 6,
        }
    }
}

/// An unsigned `OCSPResponse` carrying only `status` (RFC 6960 2.3: error
/// responses are not signed).
pub fn error_response(status: OcspErrorStatus) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }: fixed, so written out.
    vec![0x30, 0x03, 0x0a, 0x01, status.code()]
}

/// The issuer's CertID hashes under each supported hash algorithm.
#[derive(Debug, Clone)]
struct IssuerHashes {
    /// `(algorithm, issuerNameHash, issuerKeyHash)`.
    by_hash: Vec<(CertIdHash, Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    fn new(certificate: &Certificate) -> Result<Self, String> {
        let tbs = &certificate.tbs_certificate;
        let name = tbs.subject.to_der().map_err(|e| e.to_string())?;
        let key = tbs.subject_public_key_info.subject_public_key.raw_bytes();
        Ok(IssuerHashes {
            by_hash: CertIdHash::ALL
                .into_iter()
                .map(|h| (h, h.digest(&name), h.digest(key)))
                .collect(),
        })
    }

    fn get(&self, hash: CertIdHash) -> Result<(&[u8], &[u8]), CaError> {
        self.by_hash
            .iter()
            .find(|(h, _, _)| *h == hash)
            .map(|(_, name, key)| (name.as_slice(), key.as_slice()))
            .ok_or_else(|| CaError::Internal(format!("no {} issuer hashes", hash.name())))
    }

    fn matches(&self, hash: CertIdHash, name_hash: &[u8], key_hash: &[u8]) -> bool {
        self.get(hash)
            .is_ok_and(|(name, key)| name == name_hash && key == key_hash)
    }
}

/// Matches OCSP requests to one issuer known only by its certificate: what a
/// keyless responder serving pre-signed responses needs.
#[derive(Debug, Clone)]
pub struct OcspRequestParser {
    hashes: IssuerHashes,
    issuer_id: String,
}

impl OcspRequestParser {
    /// A parser for requests about certificates issued by the CA whose
    /// certificate is `issuer_certificate_der`; [`CaError::BadIssuer`] if it
    /// does not decode.
    pub fn new(issuer_certificate_der: &[u8]) -> Result<Self, CaError> {
        let bad = |reason: String| CaError::BadIssuer(reason);
        let certificate =
            Certificate::from_der(issuer_certificate_der).map_err(|e| bad(e.to_string()))?;
        let key = certificate_key(&certificate)?;
        Ok(OcspRequestParser {
            hashes: IssuerHashes::new(&certificate).map_err(bad)?,
            issuer_id: key.fingerprint(),
        })
    }

    /// The issuer's inventory id ([`Issuer::id`]).
    pub fn issuer_id(&self) -> &str {
        &self.issuer_id
    }

    /// Parses a DER `OCSPRequest` like [`OcspResponder::parse_request`].
    pub fn parse(&self, der: &[u8]) -> Result<OcspRequest, OcspRequestError> {
        request::parse(der, &self.hashes, &self.issuer_id)
    }
}

/// An OCSP responder for one issuer, signing with the issuer's key or with a
/// delegated OCSP signer's.
#[derive(Debug, Clone)]
pub struct OcspResponder {
    issuer: Issuer,
    delegate: Option<DelegatedSigner>,
    hashes: IssuerHashes,
    /// SHA-1 of the signing key's `subjectPublicKey` bits: the responder ID.
    key_hash: Vec<u8>,
    /// The signing certificate's validity, Unix seconds.
    signer_not_before: i64,
    signer_not_after: i64,
    signature_algorithm: AlgorithmIdentifierOwned,
}

impl OcspResponder {
    /// A responder for `issuer`; responses are signed by `delegate` when
    /// given, else by the issuer itself.
    ///
    /// A delegate must have been issued by `issuer`: its issuer name and
    /// authority key identifier must name it and its signature must verify
    /// under the issuer's key; otherwise [`CaError::BadIssuer`].
    pub fn new(issuer: Issuer, delegate: Option<DelegatedSigner>) -> Result<Self, CaError> {
        let bad = |reason: String| CaError::BadIssuer(reason);
        let issuer_cert =
            Certificate::from_der(issuer.certificate_der()).map_err(|e| bad(e.to_string()))?;
        let hashes = IssuerHashes::new(&issuer_cert).map_err(bad)?;
        let (signing_cert, signature_algorithm) = match &delegate {
            Some(d) => {
                d.check_issued_by(&issuer, &issuer_cert)?;
                (d.certificate(), d.signature_algorithm().clone())
            }
            None => (&issuer_cert, issuer.signature().clone()),
        };
        let tbs = &signing_cert.tbs_certificate;
        let key_hash =
            CertIdHash::Sha1.digest(tbs.subject_public_key_info.subject_public_key.raw_bytes());
        Ok(OcspResponder {
            signer_not_before: time_unix(&tbs.validity.not_before),
            signer_not_after: time_unix(&tbs.validity.not_after),
            issuer,
            delegate,
            hashes,
            key_hash,
            signature_algorithm,
        })
    }

    /// The issuer this responder answers for.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The notAfter of the certificate that signs responses (the delegate's
    /// or the issuer's), Unix seconds: no response may have a later
    /// `nextUpdate`.
    pub fn signer_not_after(&self) -> i64 {
        self.signer_not_after
    }

    /// The delegated signer, if responses are not signed by the issuer.
    pub fn delegate(&self) -> Option<&DelegatedSigner> {
        self.delegate.as_ref()
    }

    /// Parses a DER `OCSPRequest` and matches its CertIDs to this issuer.
    ///
    /// Never panics. Every error means `malformedRequest`
    /// ([`OcspRequestError::response`]).
    pub fn parse_request(&self, der: &[u8]) -> Result<OcspRequest, OcspRequestError> {
        request::parse(der, &self.hashes, self.issuer.id())
    }

    /// The live response to `request`: one signature over a `SingleResponse`
    /// for each of its CertIDs, in order, each echoed byte for byte, and the
    /// request's nonce echoed.
    ///
    /// `states` holds one state per [`OcspRequest::cert_ids`] entry, in the
    /// same order. A CertID without a [`RequestedCert::lookup_serial`] (not
    /// ours, or an impossible serial) is answered `unknown` whatever its state
    /// says. Fails with [`CaError::BadRequest`] if no CertID is ours (answer
    /// `unauthorized` instead), [`CaError::Internal`] if `states` does not
    /// line up or the request was parsed by another issuer's responder, and
    /// [`CaError::Lint`] if the response would be wrong (times out of order,
    /// a revocation after `producedAt`, a signer certificate that has
    /// expired); nothing is signed then.
    pub fn respond(
        &self,
        request: &OcspRequest,
        states: &[CertState],
        times: &OcspTimes,
    ) -> Result<Vec<u8>, CaError> {
        if request.issuer_id() != self.issuer.id() {
            return Err(CaError::Internal(
                "OCSP request was parsed by another issuer's responder".into(),
            ));
        }
        if states.len() != request.cert_ids().len() {
            return Err(CaError::Internal(format!(
                "{} certificate states for {} CertIDs",
                states.len(),
                request.cert_ids().len()
            )));
        }
        if !request.any_ours() {
            return Err(CaError::BadRequest(
                "no CertID in the OCSP request names this issuer; answer unauthorized".into(),
            ));
        }
        let entries: Vec<(&[u8], CertState)> = request
            .cert_ids()
            .iter()
            .zip(states)
            .map(|(id, state)| match id.lookup_serial() {
                Some(_) => (id.der(), *state),
                None => (id.der(), CertState::Unknown),
            })
            .collect();
        self.build(&entries, request.nonce(), times)
    }

    /// A response for one certificate of this issuer, with a CertID hashed
    /// with `hash` and no nonce: what a pre-signed cache serves.
    ///
    /// The CertID's hash algorithm carries NULL parameters, as OpenSSL and Go
    /// write them. Fails like [`OcspResponder::respond`].
    pub fn presign(
        &self,
        serial: &Serial,
        hash: CertIdHash,
        state: CertState,
        times: &OcspTimes,
    ) -> Result<Vec<u8>, CaError> {
        let (name_hash, key_hash) = self.hashes.get(hash)?;
        let cert_id = request::cert_id_der(hash, name_hash, key_hash, serial)
            .map_err(|e| CaError::Internal(format!("encoding a CertID: {e}")))?;
        self.build(&[(&cert_id, state)], None, times)
    }

    fn build(
        &self,
        entries: &[(&[u8], CertState)],
        nonce: Option<&[u8]>,
        times: &OcspTimes,
    ) -> Result<Vec<u8>, CaError> {
        let tbs_der = response::response_data(&self.key_hash, entries, nonce, times)?;
        let findings = response::lint(
            &tbs_der,
            &response::Expected {
                cert_ids: entries.iter().map(|(id, _)| *id).collect(),
                nonce,
                key_hash: &self.key_hash,
                signer_not_before: self.signer_not_before,
                signer_not_after: self.signer_not_after,
            },
        );
        if !findings.is_empty() {
            return Err(CaError::Lint(
                findings
                    .into_iter()
                    .map(|f| format!("OCSP response: {f}"))
                    .collect(),
            ));
        }
        let (signature, certs) = match &self.delegate {
            Some(d) => (d.sign_verified(&tbs_der)?, Some(d.certificate_der())),
            None => (self.issuer.sign_verified(&tbs_der)?, None),
        };
        response::assemble(&tbs_der, &self.signature_algorithm, &signature, certs)
            .map_err(|e| CaError::Internal(format!("encoding an OCSP response: {e}")))
    }
}

// The HTTP server shares one responder between request handlers.
const _: () = {
    const fn shareable<T: Send + Sync + Clone>() {}
    shareable::<OcspResponder>();
    shareable::<OcspRequest>();
};

/// The signature algorithm an `AlgorithmIdentifier` names, if it is one of ours.
fn algorithm_for_id(id: &AlgorithmIdentifierOwned) -> Option<strongroom_hsm::SignatureAlgorithm> {
    strongroom_hsm::SignatureAlgorithm::ALL
        .into_iter()
        .find(|a| signature_algorithm_id(*a).as_ref() == Ok(id))
}

/// The public key in a certificate.
fn certificate_key(certificate: &Certificate) -> Result<PublicKey, CaError> {
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| CaError::BadIssuer(e.to_string()))?;
    PublicKey::from_der(&spki).map_err(|e| CaError::BadIssuer(e.to_string()))
}
