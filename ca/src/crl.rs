//! Certificate revocation lists (RFC 5280 section 5), streamed and signed in
//! the HSM.
//!
//! A CRL can list millions of certificates, so it is never held as a
//! `CertificateList` value. [`CrlBuilder`] DER-encodes each entry with `der`
//! as it arrives into one growing buffer; the small fixed parts of the
//! to-be-signed list (version, signature algorithm, issuer, times) and its
//! extensions are encoded separately. When the entries end, the SEQUENCE
//! headers (whose lengths only then are known) are written right-aligned into
//! space reserved at the front of the buffer, the contiguous to-be-signed
//! bytes are signed in place through [`Issuer`]'s verified HSM signature,
//! and the signature algorithm and signature are appended:
//!
//! ```text
//! [unused][CertificateList hdr][TBS hdr][version … nextUpdate][revoked hdr][entry][entry]…[[0] crlExtensions][sigAlg][BIT STRING]
//!                                   └──────────────────────── signed in place ────────────────────────┘
//! ```
//!
//! Peak memory is about one encoded CRL (≈ 50 bytes per entry) plus small
//! constants. `der` caps a length at 256 MiB, so one CRL holds at most about
//! five million entries: partition beyond that.
//!
//! Lint before sign: the request and every entry are checked before the HSM
//! is asked for anything; a refusal signs nothing.

use std::time::{Duration, SystemTime};

use const_oid::AssociatedOid;
use const_oid::db::rfc5280::{ID_CE_CRL_REASONS, ID_CE_ISSUING_DISTRIBUTION_POINT};
use der::asn1::{BitString, ContextSpecific, OctetString, Uint, UintRef};
use der::{Decode, Encode, EncodeValue, FixedTag, Header, Length, Tag, TagMode, TagNumber, Writer};
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint};
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl};
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, KeyUsage, KeyUsages};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::time::Time;

use crate::error::CaError;
use crate::issuer::Issuer;
use crate::revocation::{RevocationReason, RevokedEntry};
use crate::x509::{unix, uri_name};

/// What a CRL covers, written into its Issuing Distribution Point extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlScope<'a> {
    /// A complete CRL for every certificate of the issuer (no Issuing
    /// Distribution Point).
    Full,
    /// A CRL for one partition of the issuer's certificates: a critical
    /// Issuing Distribution Point with this URI as its `fullName` and
    /// `onlyContainsUserCerts` TRUE. The URI must equal the CRL Distribution
    /// Point written into that partition's certificates.
    Partition {
        /// The partition's CRL Distribution Point URI (http, https or ldap).
        url: &'a str,
    },
    /// An authority revocation list (revoked CA certificates only): a
    /// critical Issuing Distribution Point with `onlyContainsCACerts` TRUE.
    Authority,
}

/// One CRL to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRequest<'a> {
    /// The cRLNumber: strictly increasing over every CRL of this scope,
    /// complete and delta alike (RFC 5280 5.2.3). The caller persists it.
    pub number: u64,
    /// thisUpdate; fractions of a second are dropped.
    pub this_update: SystemTime,
    /// nextUpdate: when the next CRL will be published; after `this_update`
    /// (fractions of a second are dropped).
    pub next_update: SystemTime,
    /// Which certificates the CRL covers.
    pub scope: CrlScope<'a>,
    /// `Some(base CRL number)` makes this a delta CRL (critical Delta CRL
    /// Indicator) against the complete CRL with that number. Allowed with
    /// [`CrlScope::Full`] and [`CrlScope::Partition`].
    pub delta_of: Option<u64>,
    /// Where the delta CRLs are published (non-critical Freshest CRL); only on
    /// complete CRLs.
    pub freshest: Option<&'a str>,
}

/// How many refused entries a failing build names before it stops.
const MAX_ENTRY_FINDINGS: usize = 10;

/// The longest a DER header gets under `der`'s 256 MiB length cap: one tag
/// octet and five length octets.
const MAX_HEADER: usize = 6;

/// Builds, lints, signs (in the HSM) and returns one DER CRL.
///
/// `entries` is read once, in order, each entry encoded as it arrives. The
/// first `Err` it yields stops the build with that error (converted into a
/// [`CaError`], so a [`StoreError`](crate::StoreError) outage stays one) and
/// nothing is signed. Refused entries (see [`CrlBuilder::push`]) fail the
/// build with [`CaError::Lint`] naming them (the first ten). Errors from
/// [`CrlBuilder::new`] and [`CrlBuilder::finish`] are returned as they are.
///
/// ```no_run
/// # use std::time::{Duration, SystemTime};
/// # use strongroom_ca::{CaError, CrlRequest, CrlScope, Issuer, RevokedEntry, build_crl};
/// # fn f(issuer: &Issuer, revoked: Vec<RevokedEntry>) -> Result<Vec<u8>, CaError> {
/// let now = SystemTime::now();
/// let request = CrlRequest {
///     number: 42,
///     this_update: now,
///     next_update: now + Duration::from_secs(7 * 86_400),
///     scope: CrlScope::Full,
///     delta_of: None,
///     freshest: None,
/// };
/// build_crl(issuer, &request, revoked.into_iter().map(Ok::<_, CaError>))
/// # }
/// ```
pub fn build_crl<E: Into<CaError>>(
    issuer: &Issuer,
    request: &CrlRequest<'_>,
    entries: impl IntoIterator<Item = Result<RevokedEntry, E>>,
) -> Result<Vec<u8>, CaError> {
    let entries = entries.into_iter();
    let mut builder = CrlBuilder::new(issuer, request)?;
    builder.reserve(entries.size_hint().0);
    for entry in entries {
        let entry = entry.map_err(Into::into)?;
        if builder.push(&entry).is_err() && builder.findings.len() >= MAX_ENTRY_FINDINGS {
            break;
        }
    }
    builder.finish()
}

/// A CRL being built, for callers that are handed entries one by one (such
/// as a store's visitor) rather than an iterator; [`build_crl`] wraps it.
///
/// [`CrlBuilder::new`] lints the request, [`CrlBuilder::push`] encodes
/// entries, and [`CrlBuilder::finish`] signs. Dropping a builder signs nothing.
pub struct CrlBuilder<'i> {
    issuer: &'i Issuer,
    /// `version … nextUpdate`, encoded.
    prefix: Vec<u8>,
    /// `[0] EXPLICIT crlExtensions`, encoded.
    suffix: Vec<u8>,
    /// `reason_extensions[code]`: the encoded crlEntryExtensions for a reason
    /// code (empty for `unspecified`, which is never written).
    reason_extensions: Vec<Vec<u8>>,
    delta: bool,
    /// Reserved front space, then the encoded entries.
    buf: Vec<u8>,
    count: u64,
    findings: Vec<String>,
    refused: u64,
}

impl<'i> CrlBuilder<'i> {
    /// Starts a CRL signed by `issuer`, after checking the request.
    ///
    /// Fails with [`CaError::BadIssuer`] if the issuer certificate lacks the
    /// `cRLSign` key usage, and with [`CaError::Lint`] listing every problem
    /// of the request: `thisUpdate` not before `nextUpdate`; a delta of an
    /// ARL, or a delta whose base is not below its number; a Freshest CRL on
    /// a delta; a partition or freshest URL that is not an absolute http,
    /// https or ldap URI without whitespace.
    pub fn new(issuer: &'i Issuer, request: &CrlRequest<'_>) -> Result<Self, CaError> {
        check_crl_sign(issuer)?;
        let findings = request_findings(request);
        if !findings.is_empty() {
            return Err(CaError::Lint(findings));
        }
        let internal = |what: &str, e: der::Error| CaError::Internal(format!("CRL {what}: {e}"));
        let this_update = x509_time(unix(request.this_update))
            .map_err(|e| CaError::Lint(vec![format!("CRL thisUpdate: {e}")]))?;
        let next_update = x509_time(unix(request.next_update))
            .map_err(|e| CaError::Lint(vec![format!("CRL nextUpdate: {e}")]))?;

        let mut prefix = Vec::new();
        Version::V2
            .encode_to_vec(&mut prefix)
            .and_then(|_| issuer.signature().encode_to_vec(&mut prefix))
            .and_then(|_| issuer.name().encode_to_vec(&mut prefix))
            .and_then(|_| this_update.encode_to_vec(&mut prefix))
            .and_then(|_| next_update.encode_to_vec(&mut prefix))
            .map_err(|e| internal("header", e))?;

        let extensions = crl_extensions(issuer, request).map_err(CaError::Internal)?;
        let suffix = ContextSpecific {
            tag_number: TagNumber::N0,
            tag_mode: TagMode::Explicit,
            value: extensions,
        }
        .to_der()
        .map_err(|e| internal("extensions", e))?;

        let reason_extensions = (0..=10u8)
            .map(|code| match RevocationReason::from_code(code) {
                Some(reason) if reason != RevocationReason::Unspecified => {
                    reason_extension(reason).map_err(|e| internal("reason code", e))
                }
                _ => Ok(Vec::new()),
            })
            .collect::<Result<Vec<_>, _>>()?;

        let buf = vec![0; 3 * MAX_HEADER + prefix.len()];
        Ok(CrlBuilder {
            issuer,
            prefix,
            suffix,
            reason_extensions,
            delta: request.delta_of.is_some(),
            buf,
            count: 0,
            findings: Vec::new(),
            refused: 0,
        })
    }

    /// Makes room for about `entries` more entries up front, so the buffer
    /// does not grow by copying.
    pub fn reserve(&mut self, entries: usize) {
        // A 16-byte serial with a reason code encodes to 50 bytes.
        self.buf.reserve(entries.saturating_mul(50));
    }

    /// Encodes one entry: its serial, revocation date, and reason code (left
    /// out for `unspecified`, as RFC 5280 5.3.1 asks).
    ///
    /// Refuses, with [`CaError::Lint`], `removeFromCRL` outside a delta CRL,
    /// `aACompromise` (this CA issues no attribute certificates) and a
    /// revocation date that cannot be encoded; the refusal is also kept, so
    /// [`CrlBuilder::finish`] then fails with every refusal listed.
    pub fn push(&mut self, entry: &RevokedEntry) -> Result<(), CaError> {
        match self.encode(entry) {
            Ok(()) => {
                self.count += 1;
                Ok(())
            }
            Err(problem) => {
                let finding = format!("CRL entry {}: {problem}", entry.serial);
                self.refused += 1;
                if self.findings.len() < MAX_ENTRY_FINDINGS {
                    self.findings.push(finding.clone());
                }
                Err(CaError::Lint(vec![finding]))
            }
        }
    }

    fn encode(&mut self, entry: &RevokedEntry) -> Result<(), String> {
        let reason = entry.reason;
        if reason == RevocationReason::RemoveFromCrl && !self.delta {
            return Err("removeFromCRL is only allowed in a delta CRL".into());
        }
        if reason == RevocationReason::AaCompromise {
            return Err(
                "aACompromise is for attribute certificates, which this CA does not issue".into(),
            );
        }
        let date = x509_time(entry.revoked_at).map_err(|e| format!("revocation date: {e}"))?;
        let encoded = RevokedCertRef {
            serial: UintRef::new(entry.serial.as_bytes()).map_err(|e| e.to_string())?,
            date,
            extensions: &self.reason_extensions[usize::from(reason.code())],
        };
        encoded
            .encode_to_vec(&mut self.buf)
            .map_err(|e| e.to_string())?;
        if self.buf.len() + self.suffix.len() + SIGNATURE_ROOM > DER_MAX_LEN {
            return Err(format!(
                "the CRL would exceed {} MiB, the DER length limit: partition it",
                DER_MAX_LEN >> 20
            ));
        }
        Ok(())
    }

    /// Entries encoded so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no entry has been encoded yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Completes the to-be-signed list, signs it in the HSM, verifies the
    /// signature, and returns the DER CRL.
    ///
    /// Fails with [`CaError::Lint`] (signing nothing) if any entry was refused.
    pub fn finish(self) -> Result<Vec<u8>, CaError> {
        let CrlBuilder {
            issuer,
            prefix,
            suffix,
            mut buf,
            mut findings,
            refused,
            count,
            ..
        } = self;
        if refused > 0 {
            if refused > findings.len() as u64 {
                findings.push(format!(
                    "and {} more refused CRL entries",
                    refused - findings.len() as u64
                ));
            }
            return Err(CaError::Lint(findings));
        }
        let internal = |e: der::Error| CaError::Internal(format!("CRL encoding: {e}"));
        let entries_start = 3 * MAX_HEADER + prefix.len();
        let entries_len = buf.len() - entries_start;

        // revokedCertificates is absent, not empty, when there are no entries.
        let revoked_header = if count > 0 {
            header(entries_len)?
        } else {
            Vec::new()
        };
        let tbs_len = prefix.len() + revoked_header.len() + entries_len + suffix.len();
        let tbs_header = header(tbs_len)?;
        let mut at = entries_start;
        for part in [&revoked_header, &prefix, &tbs_header] {
            at -= part.len();
            buf[at..at + part.len()].copy_from_slice(part);
        }
        let tbs_start = at;
        buf.extend_from_slice(&suffix);

        let signature = issuer.sign_verified(&buf[tbs_start..])?;

        let algorithm = issuer.signature().to_der().map_err(internal)?;
        let signature = BitString::from_bytes(&signature)
            .and_then(|bits| bits.to_der())
            .map_err(internal)?;
        let outer_header = header(buf.len() - tbs_start + algorithm.len() + signature.len())?;
        let start = tbs_start - outer_header.len();
        buf[start..tbs_start].copy_from_slice(&outer_header);
        buf.extend_from_slice(&algorithm);
        buf.extend_from_slice(&signature);
        buf.drain(..start);
        buf.shrink_to_fit();
        tracing::debug!(entries = count, bytes = buf.len(), "signed CRL");
        Ok(buf)
    }
}

impl std::fmt::Debug for CrlBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlBuilder")
            .field("issuer", self.issuer)
            .field("entries", &self.count)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

/// The largest length `der` 0.7 encodes (`der::Length::MAX`, 256 MiB - 1).
const DER_MAX_LEN: usize = 0x0fff_ffff;

/// Room for what follows the entries besides the crlExtensions: the outer
/// header, signatureAlgorithm and the signature BIT STRING (RSA-8192 fits).
const SIGNATURE_ROOM: usize = 2048;

/// One `revokedCertificates` entry, borrowing its parts so that encoding it
/// allocates nothing; the crlEntryExtensions are pre-encoded per reason.
struct RevokedCertRef<'a> {
    serial: UintRef<'a>,
    date: Time,
    /// The encoded `Extensions` SEQUENCE, or empty for none.
    extensions: &'a [u8],
}

impl EncodeValue for RevokedCertRef<'_> {
    fn value_len(&self) -> der::Result<Length> {
        (self.serial.encoded_len()? + self.date.encoded_len()?)?
            + Length::try_from(self.extensions.len())?
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.serial.encode(writer)?;
        self.date.encode(writer)?;
        writer.write(self.extensions)
    }
}

impl FixedTag for RevokedCertRef<'_> {
    const TAG: Tag = Tag::Sequence;
}

/// A SEQUENCE header for `len` content octets.
fn header(len: usize) -> Result<Vec<u8>, CaError> {
    Header::new(Tag::Sequence, len)
        .and_then(|h| h.to_der())
        .map_err(|e| CaError::Internal(format!("CRL of {len} bytes cannot be encoded: {e}")))
}

fn check_crl_sign(issuer: &Issuer) -> Result<(), CaError> {
    let bad = |e: der::Error| CaError::BadIssuer(e.to_string());
    let certificate = Certificate::from_der(issuer.certificate_der()).map_err(bad)?;
    let signs_crls = certificate
        .tbs_certificate
        .get::<KeyUsage>()
        .map_err(bad)?
        .is_some_and(|(_, ku)| ku.0.contains(KeyUsages::CRLSign));
    if signs_crls {
        Ok(())
    } else {
        Err(CaError::BadIssuer(format!(
            "'{}' lacks the cRLSign key usage, so it cannot sign CRLs",
            issuer.subject()
        )))
    }
}

/// Every problem of `request`; empty means it may be built.
fn request_findings(request: &CrlRequest<'_>) -> Vec<String> {
    let mut f = Vec::new();
    if unix(request.this_update) >= unix(request.next_update) {
        f.push("CRL thisUpdate is not before nextUpdate".into());
    }
    if let Some(base) = request.delta_of {
        if request.scope == CrlScope::Authority {
            f.push("delta CRLs are not issued for an authority revocation list".into());
        }
        if base >= request.number {
            f.push(format!(
                "delta CRL base number {base} is not below its cRLNumber {}",
                request.number
            ));
        }
        if request.freshest.is_some() {
            f.push("a delta CRL must not carry a Freshest CRL extension".into());
        }
    }
    if let CrlScope::Partition { url } = request.scope {
        if let Some(problem) = crl_url_problem(url) {
            f.push(format!("issuing distribution point: {problem}"));
        }
    }
    if let Some(url) = request.freshest {
        if let Some(problem) = crl_url_problem(url) {
            f.push(format!("freshest CRL: {problem}"));
        }
    }
    f
}

/// Why `url` cannot name where a CRL is published, if it cannot: it must be
/// an absolute `http`, `https` or `ldap` URI of printable ASCII without
/// whitespace, with a host for http(s).
pub(crate) fn crl_url_problem(url: &str) -> Option<String> {
    let shown = format!("{url:?}");
    if url.is_empty() || url.len() > 2048 {
        return Some(format!("URI {shown} must be 1 to 2048 characters"));
    }
    if url.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Some(format!(
            "URI {shown} contains whitespace or non-ASCII characters"
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!("URI {shown} is not absolute (no scheme://)"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match scheme.as_str() {
        "http" | "https" if host.is_empty() => Some(format!("URI {shown} has no host")),
        "http" | "https" | "ldap" => None,
        _ => Some(format!(
            "URI {shown} has scheme '{scheme}'; CRLs are published over http, https or ldap"
        )),
    }
}

/// The `crlExtensions`: authority key identifier, CRL number, then the delta
/// CRL indicator, issuing distribution point and freshest CRL as requested.
fn crl_extensions(issuer: &Issuer, request: &CrlRequest<'_>) -> Result<Extensions, String> {
    let mut extensions = vec![
        extension(
            <AuthorityKeyIdentifier as AssociatedOid>::OID,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer.key_id()).map_err(|e| e.to_string())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        extension(
            <CrlNumber as AssociatedOid>::OID,
            false,
            &CrlNumber(crl_number(request.number)?),
        )?,
    ];
    if let Some(base) = request.delta_of {
        extension(
            <BaseCrlNumber as AssociatedOid>::OID,
            true,
            &BaseCrlNumber(crl_number(base)?),
        )
        .map(|e| extensions.push(e))?;
    }
    let idp = match request.scope {
        CrlScope::Full => None,
        CrlScope::Partition { url } => Some(IssuingDistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri_name(url)?])),
            only_contains_user_certs: true,
            only_contains_ca_certs: false,
            only_some_reasons: None,
            indirect_crl: false,
            only_contains_attribute_certs: false,
        }),
        CrlScope::Authority => Some(IssuingDistributionPoint {
            distribution_point: None,
            only_contains_user_certs: false,
            only_contains_ca_certs: true,
            only_some_reasons: None,
            indirect_crl: false,
            only_contains_attribute_certs: false,
        }),
    };
    if let Some(idp) = idp {
        // Not `IssuingDistributionPoint::OID`: x509-cert 0.2.5 gives it the
        // OID of subjectInfoAccess.
        extensions.push(extension(ID_CE_ISSUING_DISTRIBUTION_POINT, true, &idp)?);
    }
    if let Some(url) = request.freshest {
        extensions.push(extension(
            <FreshestCrl as AssociatedOid>::OID,
            false,
            &FreshestCrl(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri_name(url)?])),
                reasons: None,
                crl_issuer: None,
            }]),
        )?);
    }
    Ok(extensions)
}

fn extension(
    extn_id: const_oid::ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, String> {
    Ok(Extension {
        extn_id,
        critical,
        extn_value: value
            .to_der()
            .and_then(OctetString::new)
            .map_err(|e| e.to_string())?,
    })
}

fn crl_number(n: u64) -> Result<Uint, String> {
    Uint::new(&n.to_be_bytes()).map_err(|e| e.to_string())
}

/// The encoded `crlEntryExtensions` holding just the reason code.
fn reason_extension(reason: RevocationReason) -> der::Result<Vec<u8>> {
    use RevocationReason as R;
    let code = match reason {
        R::Unspecified => CrlReason::Unspecified,
        R::KeyCompromise => CrlReason::KeyCompromise,
        R::CaCompromise => CrlReason::CaCompromise,
        R::AffiliationChanged => CrlReason::AffiliationChanged,
        R::Superseded => CrlReason::Superseded,
        R::CessationOfOperation => CrlReason::CessationOfOperation,
        R::CertificateHold => CrlReason::CertificateHold,
        R::RemoveFromCrl => CrlReason::RemoveFromCRL,
        R::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        R::AaCompromise => CrlReason::AaCompromise,
    };
    let extensions: Extensions = vec![Extension {
        extn_id: ID_CE_CRL_REASONS,
        critical: false,
        extn_value: OctetString::new(code.to_der()?)?,
    }];
    extensions.to_der()
}

/// An RFC 5280 time for Unix seconds: UTCTime through 2049, GeneralizedTime
/// from 2050 (section 5.1.2.4).
fn x509_time(unix_secs: i64) -> Result<Time, String> {
    let secs = u64::try_from(unix_secs).map_err(|_| format!("{unix_secs} is before 1970"))?;
    let dt = der::DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| format!("{unix_secs}: {e}"))?;
    if dt.year() < 2050 {
        der::asn1::UtcTime::from_date_time(dt)
            .map(Time::UtcTime)
            .map_err(|e| e.to_string())
    } else {
        Ok(Time::GeneralTime(
            der::asn1::GeneralizedTime::from_date_time(dt),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_switch_to_generalized_time_in_2050() {
        // 2049-12-31T23:59:59Z and 2050-01-01T00:00:00Z.
        assert!(matches!(x509_time(2_524_607_999), Ok(Time::UtcTime(_))));
        assert!(matches!(x509_time(2_524_608_000), Ok(Time::GeneralTime(_))));
        assert!(x509_time(-1).is_err());
    }

    #[test]
    fn the_size_limit_is_ders() {
        assert_eq!(u32::from(Length::MAX) as usize, DER_MAX_LEN);
    }

    #[test]
    fn crl_urls_must_be_absolute_http_or_ldap_without_whitespace() {
        for good in [
            "http://crl.example.com/p7.crl",
            "HTTPS://crl.example.com/a.crl",
            "ldap:///cn=CA,o=Example?certificateRevocationList;binary",
            "http://127.0.0.1:8200/crl/dev.crl",
        ] {
            assert_eq!(crl_url_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "crl.example.com/p7.crl",
            "/crl/p7.crl",
            "ftp://crl.example.com/p7.crl",
            "http:///p7.crl",
            "http://crl.example.com/p 7.crl",
            "http://crl.example.com/p7.crl\n",
            "http://bücher.example/p7.crl",
        ] {
            assert!(crl_url_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_entry_encodes_like_x509_certs_revoked_cert() {
        let serial = crate::store::Serial::from_hex("00ff0102030405060708").expect("serial");
        let date = x509_time(1_700_000_000).expect("time");
        let extensions = reason_extension(RevocationReason::Superseded).expect("reason");
        let ours = RevokedCertRef {
            serial: UintRef::new(serial.as_bytes()).expect("uint"),
            date,
            extensions: &extensions,
        }
        .to_der()
        .expect("encode");
        let theirs = x509_cert::crl::RevokedCert {
            serial_number: x509_cert::serial_number::SerialNumber::new(serial.as_bytes())
                .expect("serial"),
            revocation_date: date,
            crl_entry_extensions: Some(Extensions::from_der(&extensions).expect("decode")),
        }
        .to_der()
        .expect("encode");
        assert_eq!(ours, theirs);
    }
}
