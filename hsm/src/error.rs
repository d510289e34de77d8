//! The one error type of the `hsm` crate.

use std::path::PathBuf;

use cryptoki::context::Function;
use cryptoki::error::RvError;

/// Everything that can go wrong in key custody.
///
/// Messages name the token, the key label and the failing PKCS#11 function
/// where there is one, so an operator can act on them. They never contain a
/// PIN or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {}: {reason}", path.display())]
    ModuleLoad {
        /// The module path as configured.
        path: PathBuf,
        /// Why loading failed.
        reason: String,
    },
    /// No token with this label is present in the module.
    #[error("no token labelled '{label}' in PKCS#11 module {}", module.display())]
    TokenNotFound {
        /// The token label searched for.
        label: String,
        /// The module searched.
        module: PathBuf,
    },
    /// Several tokens carry the same label, so the label does not identify one.
    #[error("{count} tokens are labelled '{label}'; token labels must be unique")]
    AmbiguousToken {
        /// The token label searched for.
        label: String,
        /// How many tokens carry it.
        count: usize,
    },
    /// The token is already open in this process; share that [`crate::Token`] (it is `Clone`).
    #[error("token '{token}' is already open in this process; clone the open Token instead")]
    AlreadyOpen {
        /// The token label.
        token: String,
    },
    /// The token refused the PIN. Login is never retried automatically.
    #[error("wrong PIN for token '{token}' (not retried, so the token cannot lock itself)")]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The token's user PIN is locked after too many failed logins.
    #[error("the user PIN of token '{token}' is locked; a security officer must reset it")]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// The token was closed with `Token::close` (logged out for good).
    #[error("token '{token}' is closed (logged out); open it again to use it")]
    Closed {
        /// The token label.
        token: String,
    },
    /// The HSM cannot be reached right now (token removed, module reset,
    /// session lost). The pool reconnects by itself once the token is back.
    #[error("HSM unavailable: token '{token}': {reason}")]
    Unavailable {
        /// The token label.
        token: String,
        /// What failed, e.g. the PKCS#11 function and return value.
        reason: String,
    },
    /// A PKCS#11 call failed for a reason other than availability.
    #[error("{} failed on token '{token}'{}: {rv}", function_name(*function), key_context(label))]
    Pkcs11 {
        /// The failing PKCS#11 function.
        function: Function,
        /// The token label.
        token: String,
        /// The key involved, if any.
        label: Option<String>,
        /// The PKCS#11 return value.
        rv: RvError,
    },
    /// A PKCS#11 call failed before reaching the module (bad argument conversion, missing function).
    #[error(
        "PKCS#11 call failed on token '{token}'{}: {reason}",
        key_context(label)
    )]
    Cryptoki {
        /// The token label.
        token: String,
        /// The key involved, if any.
        label: Option<String>,
        /// What cryptoki reported.
        reason: String,
    },
    /// Key generation was refused because the label is taken.
    #[error("an object labelled '{label}' already exists on token '{token}'")]
    LabelExists {
        /// The token label.
        token: String,
        /// The key label asked for.
        label: String,
    },
    /// No key on the token has this label (and public key, when one was given).
    #[error("no key labelled '{label}'{} on token '{token}'", if *with_public_key { " with the expected public key" } else { "" })]
    KeyNotFound {
        /// The token label.
        token: String,
        /// The key label searched for.
        label: String,
        /// Whether the search also required a public key match.
        with_public_key: bool,
    },
    /// Several keys match, so the label does not identify one key.
    #[error("{count} keys labelled '{label}' match on token '{token}'; refusing to guess")]
    AmbiguousKey {
        /// The token label.
        token: String,
        /// The key label searched for.
        label: String,
        /// How many keys matched.
        count: usize,
    },
    /// The token lacks a mechanism this operation needs.
    #[error("token '{token}' does not support {what}")]
    Unsupported {
        /// The token label.
        token: String,
        /// The missing capability.
        what: String,
    },
    /// A signature algorithm does not fit the key's type.
    #[error("key '{label}' is {key}; it cannot sign with {algorithm}")]
    AlgorithmMismatch {
        /// The key label.
        label: String,
        /// The key's type.
        key: String,
        /// The requested signature algorithm.
        algorithm: String,
    },
    /// The token returned a public key we cannot encode or use.
    #[error("public key of '{label}' is unusable: {reason}")]
    PublicKey {
        /// The key label.
        label: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A signature does not verify under the public key.
    #[error("signature does not verify under the public key of '{label}' ({algorithm})")]
    BadSignature {
        /// The key label, or a description of the public key.
        label: String,
        /// The signature algorithm.
        algorithm: String,
    },
    /// No session became free within the configured time.
    #[error("no HSM session of token '{token}' became free within {waited:?}")]
    PoolTimeout {
        /// The token label.
        token: String,
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// A PKCS#11 URI could not be parsed or names something unsupported.
    #[error("invalid PKCS#11 URI '{uri}': {reason}")]
    InvalidUri {
        /// The URI with any `pin-value` removed.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The YubiHSM2 refused the authentication key's id or password. Never
    /// retried automatically. Neither is named: both are secrets.
    #[error("{hsm} refused the configured authentication key and password")]
    AuthenticationFailed {
        /// The device, as configured.
        hsm: String,
    },
    /// A YubiHSM2 command failed for a reason other than availability.
    /// (Boxed, so that this enum stays small for the callers that carry it.)
    #[error("{0}")]
    YubiHsm(Box<YubiHsmFailure>),
    /// The caller passed an unusable value (e.g. empty key material).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// What a failed YubiHSM2 command was and why it failed; see [`Error::YubiHsm`].
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed on {hsm}{}: {reason}", key_context(key))]
pub struct YubiHsmFailure {
    /// The device, as configured.
    pub hsm: String,
    /// What we asked the device to do.
    pub operation: String,
    /// The key involved, if any.
    pub key: Option<String>,
    /// What the device or the `yubihsm` crate reported (its error kind and
    /// device error code, never a payload).
    pub reason: String,
}

fn function_name(function: Function) -> String {
    format!("C_{function:?}")
}

fn key_context(label: &Option<String>) -> String {
    match label {
        Some(l) => format!(" for key '{l}'"),
        None => String::new(),
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
