//! Building `ResponseData`, linting it before the HSM signs, and assembling
//! the signed `OCSPResponse`.

use std::time::Duration;

use const_oid::db::rfc6960::{ID_PKIX_OCSP_BASIC, ID_PKIX_OCSP_NONCE};
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, OctetString, OctetStringRef};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{
    CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus, ResponderId, ResponseBytes,
    RevokedInfo,
};

use super::wire;
use super::{CertState, MAX_CERT_IDS, MAX_NONCE_LEN, OcspTimes};
use crate::error::CaError;
use crate::revocation::RevocationReason;
use crate::x509::unix;

/// The DER `ResponseData` for `entries` (CertID bytes and state), signed by
/// the key whose SHA-1 key hash is `key_hash`.
pub(super) fn response_data(
    key_hash: &[u8],
    entries: &[(&[u8], CertState)],
    nonce: Option<&[u8]>,
    times: &OcspTimes,
) -> Result<Vec<u8>, CaError> {
    let encoding = |e: der::Error| CaError::Internal(format!("encoding OCSP ResponseData: {e}"));
    let this_update = generalized(unix(times.this_update))?;
    let next_update = generalized(unix(times.next_update))?;
    let mut responses = Vec::with_capacity(entries.len());
    for (cert_id, state) in entries {
        let cert_status = match state {
            CertState::Good => CertStatus::good(),
            CertState::Unknown => CertStatus::unknown(),
            CertState::Revoked { revoked_at, reason } => CertStatus::revoked(RevokedInfo {
                revocation_time: OcspGeneralizedTime(generalized(*revoked_at)?),
                revocation_reason: crl_reason(*reason),
            }),
        };
        responses.push(wire::SingleResponse {
            cert_id: AnyRef::try_from(*cert_id).map_err(encoding)?,
            cert_status,
            this_update,
            next_update: Some(next_update),
        });
    }
    // extnValue of the nonce extension: the DER of the nonce OCTET STRING,
    // which is byte for byte what the request carried.
    let nonce_value = nonce
        .map(|n| OctetStringRef::new(n).and_then(|o| o.to_der()))
        .transpose()
        .map_err(encoding)?;
    let response_extensions = match &nonce_value {
        Some(value) => Some(vec![wire::Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetStringRef::new(value).map_err(encoding)?,
        }]),
        None => None,
    };
    wire::ResponseData {
        responder_id: ResponderId::ByKey(OctetString::new(key_hash).map_err(encoding)?),
        produced_at: generalized(unix(times.produced_at))?,
        responses,
        response_extensions,
    }
    .to_der()
    .map_err(encoding)
}

/// `revocationReason`, omitted for `unspecified` (RFC 5280 5.3.1).
fn crl_reason(reason: RevocationReason) -> Option<CrlReason> {
    Some(match reason {
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    })
}

/// A GeneralizedTime in whole seconds (RFC 5280 4.1.2.5.2: no fractions).
fn generalized(unix_seconds: i64) -> Result<GeneralizedTime, CaError> {
    let secs = u64::try_from(unix_seconds)
        .map_err(|_| CaError::BadRequest(format!("time {unix_seconds} is before 1970")))?;
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| CaError::BadRequest(format!("time {unix_seconds}: {e}")))
}

fn seconds(t: &GeneralizedTime) -> i64 {
    unix(t.to_system_time())
}

/// What a response must say, for the lints.
pub(super) struct Expected<'a> {
    /// Every CertID, as the request (or the pre-signed entry) has it.
    pub cert_ids: Vec<&'a [u8]>,
    pub nonce: Option<&'a [u8]>,
    pub key_hash: &'a [u8],
    pub signer_not_before: i64,
    pub signer_not_after: i64,
}

/// Every finding in the DER `ResponseData` about to be signed; empty means clean.
pub(super) fn lint(tbs_der: &[u8], expected: &Expected<'_>) -> Vec<String> {
    let mut f = Vec::new();
    let tbs = match wire::ResponseData::from_der(tbs_der) {
        Ok(tbs) => tbs,
        Err(e) => return vec![format!("ResponseData does not decode: {e}")],
    };
    if tbs.to_der().as_deref() != Ok(tbs_der) {
        f.push("ResponseData is not in canonical DER".into());
    }
    match &tbs.responder_id {
        ResponderId::ByKey(hash) if hash.as_bytes() == expected.key_hash => {}
        _ => f.push("responderID is not the signer's SHA-1 key hash".into()),
    }
    let produced_at = seconds(&tbs.produced_at);
    if produced_at < expected.signer_not_before || produced_at > expected.signer_not_after {
        f.push("producedAt is outside the signer certificate's validity".into());
    }
    if tbs.responses.is_empty() || tbs.responses.len() > MAX_CERT_IDS {
        f.push(format!(
            "{} single responses; 1 to {MAX_CERT_IDS} are allowed",
            tbs.responses.len()
        ));
    }
    if tbs.responses.len() != expected.cert_ids.len() {
        f.push(format!(
            "{} single responses for {} CertIDs",
            tbs.responses.len(),
            expected.cert_ids.len()
        ));
    }
    for (i, single) in tbs.responses.iter().enumerate() {
        let echoed = single.cert_id.to_der().ok();
        if echoed.as_deref() != expected.cert_ids.get(i).copied() {
            f.push(format!("CertID {i} is not echoed byte for byte"));
        }
        let this_update = seconds(&single.this_update);
        if this_update > produced_at {
            f.push(format!("thisUpdate of response {i} is after producedAt"));
        }
        match &single.next_update {
            Some(next) => {
                let next = seconds(next);
                if next < this_update {
                    f.push(format!("nextUpdate of response {i} is before thisUpdate"));
                }
                if next > expected.signer_not_after {
                    f.push(format!(
                        "nextUpdate of response {i} is after the signer certificate expires"
                    ));
                }
            }
            None => f.push(format!("response {i} has no nextUpdate")),
        }
        if let CertStatus::Revoked(info) = &single.cert_status {
            if seconds(&info.revocation_time.0) > produced_at {
                f.push(format!(
                    "revocationTime of response {i} is after producedAt"
                ));
            }
            match info.revocation_reason {
                Some(CrlReason::RemoveFromCRL) => f.push(format!(
                    "response {i} gives removeFromCRL, which only delta CRLs use"
                )),
                Some(CrlReason::Unspecified) => f.push(format!(
                    "response {i} gives reason unspecified instead of omitting it"
                )),
                _ => {}
            }
        }
    }
    let extensions = tbs.response_extensions.as_deref().unwrap_or_default();
    if tbs
        .response_extensions
        .as_ref()
        .is_some_and(|e| e.is_empty())
    {
        f.push("responseExtensions is present but empty".into());
    }
    if extensions.iter().any(|e| e.extn_id != ID_PKIX_OCSP_NONCE) {
        f.push("a response extension other than the nonce".into());
    }
    let nonces: Vec<_> = extensions
        .iter()
        .filter(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
        .collect();
    match (nonces.as_slice(), expected.nonce) {
        ([], None) => {}
        ([e], Some(want)) => {
            if e.critical {
                f.push("the nonce extension is critical".into());
            }
            match OctetStringRef::from_der(e.extn_value.as_bytes()) {
                Ok(n) if n.as_bytes() == want => {
                    if want.is_empty() || want.len() > MAX_NONCE_LEN {
                        f.push(format!("nonce of {} octets", want.len()));
                    }
                }
                _ => f.push("the nonce is not the request's".into()),
            }
        }
        _ => f.push("the nonce is not echoed exactly once".into()),
    }
    f
}

/// The DER `OCSPResponse` around signed `ResponseData`.
pub(super) fn assemble(
    tbs_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
    certificate: Option<&[u8]>,
) -> Result<Vec<u8>, der::Error> {
    let certs = certificate
        .map(|c| AnyRef::try_from(c).map(|c| vec![c]))
        .transpose()?;
    let basic = wire::BasicOcspResponse {
        tbs_response_data: AnyRef::try_from(tbs_der)?,
        signature_algorithm: algorithm.clone(),
        signature: BitStringRef::from_bytes(signature)?,
        certs,
    }
    .to_der()?;
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic)?,
        }),
    }
    .to_der()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::ocsp::CertIdHash;
    use crate::ocsp::request::cert_id_der;
    use crate::store::Serial;

    fn cert_id(serial: u8) -> Vec<u8> {
        let serial = Serial::from_bytes(vec![0x01, serial]).expect("serial");
        cert_id_der(CertIdHash::Sha1, &[1; 20], &[2; 20], &serial).expect("CertID")
    }

    fn at(secs: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("positive"))
    }

    const NOW: i64 = 1_800_000_000;

    fn times(this_update: i64, next_update: i64) -> OcspTimes {
        OcspTimes {
            produced_at: at(NOW),
            this_update: at(this_update),
            next_update: at(next_update),
        }
    }

    /// Lints `entries` built into ResponseData against what `expected` says.
    fn findings(
        entries: &[(&[u8], CertState)],
        nonce: Option<&[u8]>,
        times: &OcspTimes,
        expected: Expected<'_>,
    ) -> Vec<String> {
        let tbs = response_data(&[9; 20], entries, nonce, times).expect("ResponseData");
        lint(&tbs, &expected)
    }

    fn expected<'a>(cert_ids: Vec<&'a [u8]>, nonce: Option<&'a [u8]>) -> Expected<'a> {
        Expected {
            cert_ids,
            nonce,
            key_hash: &[9; 20],
            signer_not_before: NOW - 86_400,
            signer_not_after: NOW + 86_400,
        }
    }

    #[test]
    fn a_correct_response_is_clean() {
        let (a, b) = (cert_id(1), cert_id(2));
        let revoked = CertState::Revoked {
            revoked_at: NOW - 10,
            reason: RevocationReason::KeyCompromise,
        };
        let f = findings(
            &[(&a, CertState::Good), (&b, revoked)],
            Some(&[7; 32]),
            &times(NOW - 60, NOW + 3600),
            expected(vec![&a, &b], Some(&[7; 32])),
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn each_mistake_is_found() {
        let (a, b) = (cert_id(1), cert_id(2));
        let good = [(&a[..], CertState::Good)];
        let ok_times = times(NOW, NOW + 3600);
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                findings(&good, None, &ok_times, expected(vec![&b], None)),
                "not echoed",
            ),
            (
                findings(&good, None, &ok_times, expected(vec![&a, &b], None)),
                "1 single responses for 2 CertIDs",
            ),
            (
                findings(
                    &good,
                    Some(&[1; 16]),
                    &ok_times,
                    expected(vec![&a], Some(&[2; 16])),
                ),
                "not the request's",
            ),
            (
                findings(&good, None, &ok_times, expected(vec![&a], Some(&[2; 16]))),
                "not echoed exactly once",
            ),
            (
                findings(
                    &good,
                    Some(&[1; 33]),
                    &ok_times,
                    expected(vec![&a], Some(&[1; 33])),
                ),
                "nonce of 33 octets",
            ),
            (
                findings(&good, None, &times(NOW, NOW - 1), expected(vec![&a], None)),
                "nextUpdate of response 0 is before thisUpdate",
            ),
            (
                findings(
                    &good,
                    None,
                    &times(NOW + 1, NOW + 60),
                    expected(vec![&a], None),
                ),
                "thisUpdate of response 0 is after producedAt",
            ),
            (
                findings(
                    &good,
                    None,
                    &times(NOW, NOW + 2 * 86_400),
                    expected(vec![&a], None),
                ),
                "after the signer certificate expires",
            ),
            (
                findings(
                    &[(
                        &a,
                        CertState::Revoked {
                            revoked_at: NOW + 1,
                            reason: RevocationReason::Superseded,
                        },
                    )],
                    None,
                    &ok_times,
                    expected(vec![&a], None),
                ),
                "revocationTime of response 0 is after producedAt",
            ),
            (
                findings(
                    &[(
                        &a,
                        CertState::Revoked {
                            revoked_at: NOW,
                            reason: RevocationReason::RemoveFromCrl,
                        },
                    )],
                    None,
                    &ok_times,
                    expected(vec![&a], None),
                ),
                "removeFromCRL",
            ),
            (
                findings(
                    &good,
                    None,
                    &ok_times,
                    Expected {
                        signer_not_after: NOW - 1,
                        ..expected(vec![&a], None)
                    },
                ),
                "producedAt is outside the signer certificate's validity",
            ),
            (
                findings(
                    &good,
                    None,
                    &ok_times,
                    Expected {
                        key_hash: &[8; 20],
                        ..expected(vec![&a], None)
                    },
                ),
                "responderID",
            ),
        ];
        for (found, wanted) in cases {
            assert!(
                found.iter().any(|f| f.contains(wanted)),
                "'{wanted}' not among {found:?}"
            );
        }
    }

    #[test]
    fn times_before_1970_are_refused() {
        let a = cert_id(1);
        let revoked = CertState::Revoked {
            revoked_at: -1,
            reason: RevocationReason::KeyCompromise,
        };
        assert!(response_data(&[9; 20], &[(&a, revoked)], None, &times(NOW, NOW + 1)).is_err());
    }

    #[test]
    fn error_responses_decode() {
        use crate::ocsp::{OcspErrorStatus, error_response};
        for (status, expected) in [
            (
                OcspErrorStatus::MalformedRequest,
                OcspResponseStatus::MalformedRequest,
            ),
            (
                OcspErrorStatus::InternalError,
                OcspResponseStatus::InternalError,
            ),
            (OcspErrorStatus::TryLater, OcspResponseStatus::TryLater),
            (
                OcspErrorStatus::Unauthorized,
                OcspResponseStatus::Unauthorized,
            ),
        ] {
            let decoded = OcspResponse::from_der(&error_response(status)).expect("decodes");
            assert_eq!(decoded.response_status, expected);
            assert!(decoded.response_bytes.is_none());
            assert_eq!(decoded.to_der().expect("encodes"), error_response(status));
        }
    }
}
