//! The one error type of the ceremony crate.

use std::path::{Path, PathBuf};

use crate::shares::ShareError;

/// Everything that stops a ceremony or its verification.
///
/// Each message is one line for the operator and names what to fix (the
/// file, the key, the step). None contains a PIN, a share value or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// The ceremony file is not valid: unknown key, missing field, a value
    /// out of bounds or not supported.
    #[error("{file}: {message}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// An output file (or the transcript) already exists; nothing was written.
    #[error("{} already exists; a ceremony never overwrites a file (choose an empty output directory)", .0.display())]
    OutputExists(PathBuf),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An input file (certificate, public key, CSR) is unusable.
    #[error("{}: {message}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A check refused the ceremony before anything was signed or written
    /// (validity too long, a lint finding, a label already taken, …).
    #[error("refused: {0}")]
    Refused(String),
    /// The operator answered no; the ceremony stopped at that step.
    #[error("stopped: the operator declined '{0}'")]
    Declined(String),
    /// The HSM failed.
    #[error(transparent)]
    Hsm(#[from] strongroom_hsm::Error),
    /// The CA library refused or failed (lints, signature check).
    #[error(transparent)]
    Ca(#[from] strongroom_ca::CaError),
    /// Shares could not be split or combined (wrong, foreign, too few).
    #[error(transparent)]
    Shares(#[from] ShareError),
    /// A signature or a signed object failed a check after signing; the
    /// output was not written.
    #[error("after signing: {0}")]
    PostCheck(String),
    /// `ceremony verify` found a problem (the first one).
    #[error("verification failed: {0}")]
    Verify(String),
}

impl CeremonyError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CeremonyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn input(path: &Path, message: impl Into<String>) -> Self {
        CeremonyError::Input {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
