//! Errors of the transit engine. None of them carries a plaintext, a key, a
//! data key or any part of a ciphertext's body.

use crate::key_type::{KeyType, Operation};
use crate::store::StoreError;

/// Why a transit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransitError {
    /// No key with this name.
    #[error("transit key {name:?} does not exist")]
    KeyNotFound {
        /// The name asked for.
        name: String,
    },
    /// A key with this name already exists.
    #[error("transit key {name:?} already exists")]
    KeyExists {
        /// The name asked for.
        name: String,
    },
    /// A request field is missing, too large or malformed.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong with it (never quotes secret input).
        reason: String,
    },
    /// The key's type cannot perform this operation.
    #[error("transit key {name:?} is of type {key_type}, which cannot {operation}")]
    Unsupported {
        /// The key.
        name: String,
        /// Its type.
        key_type: KeyType,
        /// What was asked.
        operation: Operation,
    },
    /// The key version cannot be used for this operation (trimmed, below a
    /// configured minimum, or newer than the latest).
    #[error("transit key {name:?} version {version}: {reason}")]
    VersionNotAllowed {
        /// The key.
        name: String,
        /// The version asked for or named by the ciphertext.
        version: u32,
        /// Why it cannot be used.
        reason: String,
    },
    /// The ciphertext does not authenticate: wrong key, associated data or
    /// context, or it was changed.
    #[error(
        "ciphertext does not authenticate under transit key {name:?} version {version} \
         (wrong key, associated data or context, or damaged)"
    )]
    DecryptionFailed {
        /// The key.
        name: String,
        /// The version the ciphertext names.
        version: u32,
    },
    /// The key's settings forbid this (export, deletion, or a change that
    /// cannot be undone).
    #[error("transit key {name:?}: {reason}")]
    NotPermitted {
        /// The key.
        name: String,
        /// Which setting forbids it.
        reason: String,
    },
    /// No key-encryption key with this label was ever recorded.
    #[error("transit KEK {label:?} is not known")]
    KekNotFound {
        /// The label asked for.
        label: String,
    },
    /// A key-encryption key with this label exists (in the store or the HSM).
    #[error("transit KEK {label:?} exists already; choose another label")]
    KekExists {
        /// The label asked for.
        label: String,
    },
    /// The key-encryption key cannot be changed that way now.
    #[error("transit KEK {label:?}: {reason}")]
    KekRefused {
        /// The KEK.
        label: String,
        /// Why.
        reason: String,
    },
    /// The HSM failed to wrap, unwrap or generate.
    #[error("HSM: {0}")]
    Hsm(#[from] strongroom_hsm::Error),
    /// The key store failed.
    #[error("transit store: {0}")]
    Store(#[from] StoreError),
    /// Stored key material could not be used (damaged record or wrong
    /// wrapping key).
    #[error("transit key {name:?} version {version}: stored material is unusable: {reason}")]
    Material {
        /// The key.
        name: String,
        /// The version.
        version: u32,
        /// What is wrong (never includes material).
        reason: &'static str,
    },
}

impl TransitError {
    pub(crate) fn input(field: &'static str, reason: impl Into<String>) -> Self {
        TransitError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}

/// Result of transit operations.
pub type Result<T, E = TransitError> = std::result::Result<T, E>;
