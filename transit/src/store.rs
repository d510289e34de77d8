//! What transit needs from storage. The binary implements [`TransitStore`]
//! on SQLite; each key version is its own record, so a key rotated 10,000
//! times costs one indexed lookup per operation like a key rotated once.

use std::time::{Duration, SystemTime};

use crate::key_type::KeyType;
use crate::name::KeyName;

/// A key's settings and version bounds (one record per key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The key's name.
    pub name: KeyName,
    /// Its type, fixed at creation.
    pub key_type: KeyType,
    /// Per-context keys are derived with HKDF; requests must give a context.
    pub derived: bool,
    /// Encryption is deterministic per context (requires `derived`).
    pub convergent: bool,
    /// The material may be exported. Once on, it stays on.
    pub exportable: bool,
    /// The key may be deleted.
    pub deletion_allowed: bool,
    /// Rotate automatically when the latest version is this old.
    pub auto_rotate_period: Option<Duration>,
    /// The newest version.
    pub latest_version: u32,
    /// Oldest version that may decrypt, verify or be rewrapped from.
    pub min_decryption_version: u32,
    /// Oldest version that may encrypt or sign; 0 means only the latest.
    pub min_encryption_version: u32,
    /// Versions below this were trimmed (deleted for ever).
    pub min_available_version: u32,
    /// When the key was created.
    pub created_at: SystemTime,
    /// When the latest version was created.
    pub rotated_at: SystemTime,
}

/// One version's wrapped material.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// The version number (1, 2, …).
    pub version: u32,
    /// When it was created.
    pub created_at: SystemTime,
    /// Label of the HSM wrapping key that wrapped `wrapped`.
    pub kek: String,
    /// The material, wrapped by the HSM key `kek`.
    pub wrapped: Vec<u8>,
    /// DER `SubjectPublicKeyInfo` of signing keys.
    pub public_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for StoredVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredVersion")
            .field("version", &self.version)
            .field("kek", &self.kek)
            .field("wrapped_len", &self.wrapped.len())
            .finish_non_exhaustive()
    }
}

/// A version without its material, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version number.
    pub version: u32,
    /// When it was created.
    pub created_at: SystemTime,
    /// DER `SubjectPublicKeyInfo` of signing keys.
    pub public_key: Option<Vec<u8>>,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key exists already.
    #[error("transit key {0:?} already exists")]
    Exists(String),
    /// No such key or version.
    #[error("transit key {0:?} not found")]
    NotFound(String),
    /// The record changed under us (another rotation won the race).
    #[error("transit key {0:?} changed concurrently; retry")]
    Conflict(String),
    /// The database failed.
    #[error("{0}")]
    Backend(String),
}

/// Persistent transit keys.
pub trait TransitStore: Send + Sync {
    /// Stores a new key with its first version; [`StoreError::Exists`] if
    /// the name is taken.
    fn create_key(&self, policy: &KeyPolicy, first: &StoredVersion) -> Result<(), StoreError>;

    /// A key's policy.
    fn key(&self, name: &KeyName) -> Result<Option<KeyPolicy>, StoreError>;

    /// Keys in name order, after `after`, at most `limit`.
    fn list_keys(
        &self,
        after: Option<&KeyName>,
        limit: usize,
    ) -> Result<Vec<KeyPolicy>, StoreError>;

    /// Replaces a key's policy (not its versions).
    fn update_key(&self, policy: &KeyPolicy) -> Result<(), StoreError>;

    /// Adds `version` and stores `policy` (whose `latest_version` is the new
    /// version) in one transaction, if the stored latest version is still
    /// `version.version - 1`; [`StoreError::Conflict`] otherwise.
    fn add_version(&self, policy: &KeyPolicy, version: &StoredVersion) -> Result<(), StoreError>;

    /// One version's record.
    fn version(&self, name: &KeyName, version: u32) -> Result<Option<StoredVersion>, StoreError>;

    /// Every stored version of a key, without material, oldest first.
    fn versions(&self, name: &KeyName) -> Result<Vec<VersionInfo>, StoreError>;

    /// Stores `policy` and deletes every version below its
    /// `min_available_version`, in one transaction; returns how many went.
    fn trim(&self, policy: &KeyPolicy) -> Result<u64, StoreError>;

    /// Deletes a key and all its versions; false if it did not exist.
    fn delete_key(&self, name: &KeyName) -> Result<bool, StoreError>;
}
