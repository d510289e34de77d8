//! The one error type of the `ca` crate.

use crate::store::{Serial, StoreError};

/// Everything that can go wrong while issuing or loading an issuer.
///
/// The binary maps these to gRPC statuses in one place: `BadRequest`, `Policy`
/// and `UnknownProfile` are the caller's fault (InvalidArgument); `NotFound` is
/// NotFound; `NotRenewable` is FailedPrecondition; HSM and store outages are
/// Unavailable; the rest are internal and fail closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The request names a profile that is not configured.
    #[error("unknown profile '{0}'")]
    UnknownProfile(String),
    /// The request itself is malformed (bad CSR, bad name syntax, too large).
    #[error("{0}")]
    BadRequest(String),
    /// The request breaks its profile; every violation is listed.
    #[error("request refused: {}", .0.join("; "))]
    Policy(Vec<String>),
    /// Our lints found a problem in what was about to be signed (a certificate,
    /// CRL or OCSP response; each finding names which); nothing was signed.
    #[error("failed lints before signing: {}", .0.join("; "))]
    Lint(Vec<String>),
    /// The HSM key does not match the issuer certificate's public key.
    #[error("the HSM key does not match the issuer certificate's public key")]
    IssuerKeyMismatch,
    /// The issuer certificate is not a CA that may sign certificates.
    #[error("the issuer certificate is not a CA allowed to sign certificates")]
    NotACa,
    /// The issuer certificate cannot be used.
    #[error("issuer certificate is unusable: {0}")]
    BadIssuer(String),
    /// The HSM returned a signature its own public key does not verify.
    #[error("the HSM's signature did not verify; nothing was issued")]
    SignatureCheck,
    /// The HSM failed.
    #[error(transparent)]
    Hsm(#[from] strongroom_hsm::Error),
    /// The certificate store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No certificate with this serial.
    #[error("no certificate with serial {0}")]
    NotFound(Serial),
    /// Something on the server side failed after the request was accepted
    /// (encoding, a stored record that cannot be read); nothing was handed out.
    #[error("internal error: {0}")]
    Internal(String),
    /// The certificate cannot be renewed in its current state.
    #[error("certificate {serial} is {status} and cannot be renewed")]
    NotRenewable {
        /// The serial.
        serial: Serial,
        /// Its status.
        status: &'static str,
    },
}
