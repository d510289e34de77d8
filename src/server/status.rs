//! How a failed request becomes a gRPC status: one function, [`to_status`],
//! following DESIGN.md §3.
//!
//! | failure                                            | code                 |
//! |----------------------------------------------------|----------------------|
//! | a field failed validation at the edge              | `INVALID_ARGUMENT`   |
//! | `CaError::{BadRequest, Policy, UnknownProfile}`    | `INVALID_ARGUMENT`   |
//! | `StoreError::BadPageToken`                         | `INVALID_ARGUMENT`   |
//! | `CaError::NotFound`, `StoreError::NotFound`        | `NOT_FOUND`          |
//! | `CaError::NotRenewable`                            | `FAILED_PRECONDITION`|
//! | `StoreError::{RevokedFinally, WrongStatus}`         | `FAILED_PRECONDITION`|
//! | no CRL published yet                               | `NOT_FOUND`          |
//! | the appliance is sealed (or was sealed mid-request: HSM `Closed`) | `FAILED_PRECONDITION` |
//! | a seal operation out of turn (not initialised, wrong nonce, …) | `FAILED_PRECONDITION` |
//! | HSM `Unavailable`/`PoolTimeout`, store unavailable | `UNAVAILABLE`        |
//! | an unreadable, nameless or revoked client certificate | `UNAUTHENTICATED` |
//! | a capability no policy grants the caller           | `PERMISSION_DENIED`  |
//! | `TransitError::{InvalidInput, DecryptionFailed}`   | `INVALID_ARGUMENT`   |
//! | `TransitError::{KeyNotFound, KekNotFound}`         | `NOT_FOUND`          |
//! | `TransitError::{KeyExists, KekExists}`             | `ALREADY_EXISTS`     |
//! | `TransitError::{Unsupported, VersionNotAllowed, NotPermitted, KekRefused}` | `FAILED_PRECONDITION` |
//! | transit `StoreError::Conflict` (concurrent rotation) | `ABORTED`          |
//! | a bootstrap token that is not valid (`BootstrapError::Refused`, whatever the reason) | `UNAUTHENTICATED` |
//! | `BootstrapError::{Malformed, BadId, BadIdentity, BadTtl, BadProfile, BadPageToken}` | `INVALID_ARGUMENT` |
//! | `BootstrapError::NotFound` (an administrator's revocation) | `NOT_FOUND`   |
//! | `BootstrapError::AlreadyUsed` (revoking a used token) | `FAILED_PRECONDITION` |
//! | `BootstrapError::Store`                            | `UNAVAILABLE`        |
//! | everything else (lints, signature check, HSM, …)   | `INTERNAL`           |
//!
//! Messages are written for the caller or the on-call operator. They come
//! from error types that never carry secrets (PINs, private keys, PEMs): the
//! `hsm` and `ca` crates guarantee it for theirs, and this module adds only
//! fixed text.

use strongroom_ca::{CaError, StoreError};
use strongroom_transit::TransitError;
use tonic::Status;

use crate::bootstrap::BootstrapError;

/// Everything a request can fail with, before it becomes a gRPC status.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Fields failed validation at the edge; every problem is listed.
    Invalid(Vec<String>),
    /// The CA refused or failed the operation.
    Ca(CaError),
    /// Transit refused or failed the operation.
    Transit(TransitError),
    /// A bootstrap token was refused, or its store failed.
    Bootstrap(BootstrapError),
    /// The caller presented a client certificate that cannot be read, has
    /// no usable identity, or is revoked.
    Unauthenticated(String),
    /// The caller's policies do not grant what the request needs.
    PermissionDenied(String),
    /// What was asked for does not exist (yet).
    NotFound(String),
    /// The server cannot take the request now (e.g. it is shutting down).
    Unavailable(String),
    /// The appliance is sealed.
    Sealed,
    /// The request does not fit the appliance's state (e.g. unseal while
    /// unsealed, a stale nonce).
    Precondition(String),
    /// A failure of the server itself (key generation, a panicked task).
    Internal(String),
}

impl From<CaError> for Failure {
    fn from(error: CaError) -> Self {
        Failure::Ca(error)
    }
}

impl From<TransitError> for Failure {
    fn from(error: TransitError) -> Self {
        Failure::Transit(error)
    }
}

impl From<BootstrapError> for Failure {
    fn from(error: BootstrapError) -> Self {
        Failure::Bootstrap(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Ca(CaError::Store(error))
    }
}

impl From<Failure> for Status {
    fn from(failure: Failure) -> Self {
        to_status(&failure)
    }
}

/// The one mapping from a failure to the status the caller sees.
pub(crate) fn to_status(failure: &Failure) -> Status {
    match failure {
        Failure::Invalid(problems) => {
            Status::invalid_argument(format!("invalid request: {}", problems.join("; ")))
        }
        Failure::Ca(error) => ca_status(error),
        Failure::Transit(error) => transit_status(error),
        Failure::Bootstrap(error) => bootstrap_status(error),
        Failure::Unauthenticated(why) => Status::unauthenticated(why.clone()),
        Failure::PermissionDenied(why) => Status::permission_denied(why.clone()),
        Failure::NotFound(why) => Status::not_found(why.clone()),
        Failure::Unavailable(why) => Status::unavailable(why.clone()),
        Failure::Sealed => sealed(),
        Failure::Precondition(why) => Status::failed_precondition(why.clone()),
        Failure::Internal(why) => internal(why),
    }
}

/// What a caller of a sealed appliance is told.
fn sealed() -> Status {
    Status::failed_precondition(
        "the appliance is sealed: security officers must unseal it \
         (strongroom operator unseal)",
    )
}

/// The status of a CA error (see the table in the module docs).
fn ca_status(error: &CaError) -> Status {
    match error {
        CaError::BadRequest(_) | CaError::Policy(_) | CaError::UnknownProfile(_) => {
            Status::invalid_argument(error.to_string())
        }
        CaError::NotFound(_) => Status::not_found(error.to_string()),
        CaError::NotRenewable { .. } => Status::failed_precondition(error.to_string()),
        CaError::Hsm(
            strongroom_hsm::Error::Unavailable { .. } | strongroom_hsm::Error::PoolTimeout { .. },
        ) => Status::unavailable(error.to_string()),
        CaError::Hsm(strongroom_hsm::Error::Closed { .. }) => sealed(),
        CaError::Store(store) => match store {
            StoreError::Unavailable(_) => Status::unavailable(store.to_string()),
            StoreError::NotFound { .. } => Status::not_found(store.to_string()),
            StoreError::RevokedFinally { .. } | StoreError::WrongStatus { .. } => {
                Status::failed_precondition(store.to_string())
            }
            StoreError::BadPageToken => Status::invalid_argument(
                "page_token: not a token from a previous ListCertificates response",
            ),
            _ => internal(store),
        },
        _ => internal(error),
    }
}

/// The status of a transit error (see the table in the module docs).
fn transit_status(error: &TransitError) -> Status {
    use strongroom_transit::StoreError as TransitStore;
    match error {
        TransitError::InvalidInput { .. } | TransitError::DecryptionFailed { .. } => {
            Status::invalid_argument(error.to_string())
        }
        TransitError::KeyNotFound { .. }
        | TransitError::KekNotFound { .. }
        | TransitError::Store(TransitStore::NotFound(_)) => Status::not_found(error.to_string()),
        TransitError::KeyExists { .. }
        | TransitError::KekExists { .. }
        | TransitError::Store(TransitStore::Exists(_)) => Status::already_exists(error.to_string()),
        TransitError::Unsupported { .. }
        | TransitError::VersionNotAllowed { .. }
        | TransitError::NotPermitted { .. }
        | TransitError::KekRefused { .. } => Status::failed_precondition(error.to_string()),
        TransitError::Store(TransitStore::Conflict(_)) => Status::aborted(error.to_string()),
        TransitError::Hsm(
            strongroom_hsm::Error::Unavailable { .. } | strongroom_hsm::Error::PoolTimeout { .. },
        ) => Status::unavailable(error.to_string()),
        TransitError::Hsm(strongroom_hsm::Error::Closed { .. }) => sealed(),
        _ => internal(error),
    }
}

/// The status of a bootstrap token error (see the table in the module
/// docs). Every refusal of a presented token is the same status and
/// message, whatever its reason.
fn bootstrap_status(error: &BootstrapError) -> Status {
    match error {
        BootstrapError::Refused(_) => Status::unauthenticated(error.to_string()),
        BootstrapError::Malformed
        | BootstrapError::BadId(_)
        | BootstrapError::BadIdentity(_)
        | BootstrapError::BadTtl(_)
        | BootstrapError::BadProfile(_)
        | BootstrapError::BadPageToken => {
            Status::invalid_argument(format!("invalid request: {error}"))
        }
        BootstrapError::NotFound(_) => Status::not_found(error.to_string()),
        BootstrapError::AlreadyUsed { .. } => Status::failed_precondition(error.to_string()),
        BootstrapError::Store { .. } => Status::unavailable(error.to_string()),
        _ => internal(error),
    }
}

/// An `INTERNAL` status whose message tells the operator what failed.
fn internal(what: &dyn std::fmt::Display) -> Status {
    Status::internal(format!("internal error: {what}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use strongroom_ca::Serial;
    use tonic::Code;

    use super::*;

    fn code(error: CaError) -> (Code, String) {
        let status = to_status(&Failure::Ca(error));
        (status.code(), status.message().to_string())
    }

    fn serial() -> Serial {
        Serial::from_hex("4a01").expect("serial")
    }

    #[test]
    fn caller_errors_are_invalid_argument_and_list_every_problem() {
        let (c, m) = code(CaError::Policy(vec!["first".into(), "second".into()]));
        assert_eq!(c, Code::InvalidArgument);
        assert!(m.contains("first") && m.contains("second"), "{m}");
        assert_eq!(
            code(CaError::BadRequest("bad".into())).0,
            Code::InvalidArgument
        );
        let (c, m) = code(CaError::UnknownProfile("web".into()));
        assert_eq!(c, Code::InvalidArgument);
        assert!(m.contains("'web'"), "{m}");
        let status = to_status(&Failure::Invalid(vec!["a: x".into(), "b: y".into()]));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid request: a: x; b: y");
        assert_eq!(
            code(CaError::Store(StoreError::BadPageToken)).0,
            Code::InvalidArgument
        );
    }

    #[test]
    fn missing_and_unrenewable_certificates() {
        assert_eq!(code(CaError::NotFound(serial())).0, Code::NotFound);
        assert_eq!(
            code(CaError::NotRenewable {
                serial: serial(),
                status: "pending"
            })
            .0,
            Code::FailedPrecondition
        );
    }

    #[test]
    fn bootstrap_refusals_are_one_status_whatever_the_reason() {
        use crate::bootstrap::Refusal;
        let statuses: Vec<Status> = [
            Refusal::Unknown,
            Refusal::WrongSecret,
            Refusal::Expired,
            Refusal::Used,
            Refusal::Revoked,
        ]
        .into_iter()
        .map(|r| to_status(&Failure::Bootstrap(BootstrapError::Refused(r))))
        .collect();
        for status in &statuses {
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.message(), statuses[0].message());
        }
        let code = |e| to_status(&Failure::Bootstrap(e)).code();
        assert_eq!(code(BootstrapError::Malformed), Code::InvalidArgument);
        assert_eq!(code(BootstrapError::NotFound("x".into())), Code::NotFound);
        assert_eq!(
            code(BootstrapError::AlreadyUsed {
                id: "x".into(),
                serial: None
            }),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(BootstrapError::Store {
                doing: "x".into(),
                reason: "y".into()
            }),
            Code::Unavailable
        );
    }

    #[test]
    fn outages_are_unavailable_and_the_rest_internal() {
        let down = strongroom_hsm::Error::Unavailable {
            token: "t".into(),
            reason: "C_Sign: CKR_DEVICE_REMOVED".into(),
        };
        assert_eq!(code(CaError::Hsm(down)).0, Code::Unavailable);
        let busy = strongroom_hsm::Error::PoolTimeout {
            token: "t".into(),
            waited: Duration::from_secs(30),
        };
        assert_eq!(code(CaError::Hsm(busy)).0, Code::Unavailable);
        assert_eq!(
            code(CaError::Store(StoreError::Unavailable("disk full".into()))).0,
            Code::Unavailable
        );
        let refused = strongroom_hsm::Error::WrongPin { token: "t".into() };
        assert_eq!(code(CaError::Hsm(refused)).0, Code::Internal);
        let (c, m) = code(CaError::Lint(vec!["empty SAN".into()]));
        assert_eq!(c, Code::Internal);
        assert!(m.starts_with("internal error: ") && m.contains("empty SAN"));
        assert_eq!(code(CaError::SignatureCheck).0, Code::Internal);
        assert_eq!(
            to_status(&Failure::Internal("key generation failed".into())).code(),
            Code::Internal
        );
        assert_eq!(
            to_status(&Failure::Unauthenticated("unreadable".into())).code(),
            Code::Unauthenticated
        );
    }
}
