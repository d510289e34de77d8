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

/// Where a key-encryption key (an HSM wrapping key) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KekState {
    /// New versions are wrapped by it; there is exactly one.
    Current,
    /// Replaced by a newer KEK; versions it still wraps are being re-wrapped.
    Retired,
    /// Destroyed in the HSM after it wrapped nothing any more.
    Destroyed,
}

impl KekState {
    /// The state's name: `current`, `retired` or `destroyed`.
    pub fn name(self) -> &'static str {
        match self {
            KekState::Current => "current",
            KekState::Retired => "retired",
            KekState::Destroyed => "destroyed",
        }
    }
}

/// A key-encryption key transit has used, and how much it still wraps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KekRecord {
    /// The wrapping key's label in the HSM.
    pub label: String,
    /// Where it stands.
    pub state: KekState,
    /// When it was first recorded.
    pub created_at: SystemTime,
    /// When it last changed state.
    pub state_changed_at: SystemTime,
    /// How many stored key versions it wraps.
    pub versions: u64,
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

    /// Records `label` as the current KEK unless one is recorded already;
    /// returns the current KEK's label either way.
    fn adopt_kek(&self, label: &str, now: SystemTime) -> Result<String, StoreError>;

    /// Records `new` as the current KEK and retires `current`, in one
    /// transaction: [`StoreError::Conflict`] if `current` is no longer the
    /// current KEK, [`StoreError::Exists`] if `new` was ever recorded.
    fn rotate_kek(&self, current: &str, new: &str, now: SystemTime) -> Result<(), StoreError>;

    /// Every KEK ever recorded, oldest first, with the number of versions
    /// each wraps.
    fn keks(&self) -> Result<Vec<KekRecord>, StoreError>;

    /// Versions wrapped by `kek`, in (name, version) order after `after`, at
    /// most `limit`, with their material.
    fn versions_wrapped_by(
        &self,
        kek: &str,
        after: Option<(&KeyName, u32)>,
        limit: usize,
    ) -> Result<Vec<(KeyName, StoredVersion)>, StoreError>;

    /// Replaces one version's material with `wrapped` (wrapped by `to`) if
    /// it is still wrapped by `from`; false if it is not (re-wrapped,
    /// trimmed or deleted meanwhile).
    fn rewrap_version(
        &self,
        name: &KeyName,
        version: u32,
        from: &str,
        to: &str,
        wrapped: &[u8],
    ) -> Result<bool, StoreError>;

    /// Marks the retired KEK `label` destroyed; [`StoreError::Conflict`] if
    /// it is not retired or still wraps a version, [`StoreError::NotFound`]
    /// if it was never recorded.
    fn kek_destroyed(&self, label: &str, now: SystemTime) -> Result<(), StoreError>;
}
