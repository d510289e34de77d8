//! The RFC 6960 ASN.1 structures as we read and write them.
//!
//! `x509-ocsp` types are reused where they fit (status, responder ID, the
//! outer response). Requests and `BasicOCSPResponse` are our own borrowed
//! structures so that a CertID is kept as the exact bytes the client sent and
//! echoed back unchanged, whatever its serial looks like (x509-cert's
//! `SerialNumber` refuses some INTEGERs that we must still answer `unknown`).

use der::Sequence;
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, ObjectIdentifier, OctetStringRef};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};
use x509_ocsp::{CertStatus, ResponderId};

/// ```text
/// OCSPRequest ::= SEQUENCE {
///    tbsRequest              TBSRequest,
///    optionalSignature   [0] EXPLICIT Signature OPTIONAL }
/// ```
#[derive(Sequence)]
pub(super) struct OcspRequest<'a> {
    pub tbs_request: TbsRequest<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub optional_signature: Option<RequestSignature<'a>>,
}

/// ```text
/// TBSRequest ::= SEQUENCE {
///    version             [0] EXPLICIT Version DEFAULT v1,
///    requestorName       [1] EXPLICIT GeneralName OPTIONAL,
///    requestList             SEQUENCE OF Request,
///    requestExtensions   [2] EXPLICIT Extensions OPTIONAL }
/// ```
///
/// `version` is read as an optional INTEGER so that an explicitly encoded v1
/// (not DER, but seen in the wild) is accepted; any other value is refused by
/// the parser.
#[derive(Sequence)]
pub(super) struct TbsRequest<'a> {
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub version: Option<u8>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub requestor_name: Option<AnyRef<'a>>,
    pub request_list: Vec<Request<'a>>,
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub request_extensions: Option<Vec<Extension<'a>>>,
}

/// ```text
/// Request ::= SEQUENCE {
///    reqCert                     CertID,
///    singleRequestExtensions     [0] EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Sequence)]
pub(super) struct Request<'a> {
    /// The CertID, undecoded: its exact bytes are echoed in the response.
    pub req_cert: AnyRef<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub single_request_extensions: Option<Vec<Extension<'a>>>,
}

/// ```text
/// CertID ::= SEQUENCE {
///    hashAlgorithm           AlgorithmIdentifier,
///    issuerNameHash          OCTET STRING,
///    issuerKeyHash           OCTET STRING,
///    serialNumber            CertificateSerialNumber }
/// ```
///
/// The serial is any TLV here; the parser checks it is an INTEGER and judges
/// its value separately.
#[derive(Sequence)]
pub(super) struct CertId<'a> {
    pub hash_algorithm: AlgorithmIdentifierRef<'a>,
    pub issuer_name_hash: OctetStringRef<'a>,
    pub issuer_key_hash: OctetStringRef<'a>,
    pub serial_number: AnyRef<'a>,
}

/// ```text
/// Signature ::= SEQUENCE {
///    signatureAlgorithm      AlgorithmIdentifier,
///    signature               BIT STRING,
///    certs               [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
///
/// Parsed for well-formedness only: we neither require nor check request
/// signatures. Certificates stay undecoded.
#[derive(Sequence)]
pub(super) struct RequestSignature<'a> {
    pub signature_algorithm: AlgorithmIdentifierRef<'a>,
    pub signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<AnyRef<'a>>>,
}

/// An X.509 extension with its value undecoded.
#[derive(Sequence)]
pub(super) struct Extension<'a> {
    pub extn_id: ObjectIdentifier,
    #[asn1(default = "Default::default")]
    pub critical: bool,
    pub extn_value: OctetStringRef<'a>,
}

/// ```text
/// ResponseData ::= SEQUENCE {
///    version              [0] EXPLICIT Version DEFAULT v1,
///    responderID              ResponderID,
///    producedAt               GeneralizedTime,
///    responses                SEQUENCE OF SingleResponse,
///    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
/// ```
///
/// We only write v1, so the version is never encoded (DER omits defaults).
#[derive(Sequence)]
pub(super) struct ResponseData<'a> {
    pub responder_id: ResponderId,
    pub produced_at: GeneralizedTime,
    pub responses: Vec<SingleResponse<'a>>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Vec<Extension<'a>>>,
}

/// ```text
/// SingleResponse ::= SEQUENCE {
///    certID                       CertID,
///    certStatus                   CertStatus,
///    thisUpdate                   GeneralizedTime,
///    nextUpdate           [0]     EXPLICIT GeneralizedTime OPTIONAL,
///    singleExtensions     [1]     EXPLICIT Extensions OPTIONAL }
/// ```
///
/// We write no single extensions.
#[derive(Sequence)]
pub(super) struct SingleResponse<'a> {
    pub cert_id: AnyRef<'a>,
    pub cert_status: CertStatus,
    pub this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
}

/// ```text
/// BasicOCSPResponse ::= SEQUENCE {
///    tbsResponseData      ResponseData,
///    signatureAlgorithm   AlgorithmIdentifier,
///    signature            BIT STRING,
///    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
///
/// `tbsResponseData` is the exact DER that was signed.
#[derive(Sequence)]
pub(super) struct BasicOcspResponse<'a> {
    pub tbs_response_data: AnyRef<'a>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<AnyRef<'a>>>,
}

/// A certificate with its to-be-signed part kept as the exact bytes signed.
#[derive(Sequence)]
pub(super) struct RawCertificate<'a> {
    pub tbs_certificate: AnyRef<'a>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitStringRef<'a>,
}
