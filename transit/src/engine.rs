//! The transit engine: named keys, their versions, and every operation on
//! them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use ring::rand::SecureRandom;
use strongroom_hsm::{RandomSource, RsaKeySource, WrappingKeys};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::aead::AeadCipher;
use crate::encoded::{self, DEFAULT_PREFIX, Encoded};
use crate::error::{Result, TransitError};
use crate::key_type::{KeyType, Operation};
use crate::material::{self, HashAlgorithm, SignOptions, VersionKey};
use crate::name::KeyName;
use crate::store::{KeyPolicy, StoredVersion, TransitStore, VersionInfo};

mod kek;

use kek::{KekRing, RewrapPass};
pub use kek::{KekStatus, RewrapStep};

/// Largest plaintext, message or HMAC input per item, in bytes.
pub const MAX_INPUT_LEN: usize = 1 << 20;
/// Largest associated data or context, in bytes.
pub const MAX_AAD_LEN: usize = 4096;
/// Most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Most random bytes in one request.
pub const MAX_RANDOM_LEN: usize = 65536;
/// Shortest automatic rotation period.
pub const MIN_AUTO_ROTATE_PERIOD: Duration = Duration::from_secs(3600);

/// Engine settings.
#[derive(Clone, Debug)]
pub struct TransitConfig {
    /// Prefix of ciphertexts, signatures and HMACs (default `strongroom`).
    pub prefix: String,
    /// Most unwrapped key versions kept in memory.
    pub cache_capacity: usize,
}

impl Default for TransitConfig {
    fn default() -> Self {
        TransitConfig {
            prefix: DEFAULT_PREFIX.to_string(),
            cache_capacity: 1024,
        }
    }
}

/// Settings of a new key.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// The name.
    pub name: KeyName,
    /// The type.
    pub key_type: KeyType,
    /// Derive per-context keys (AEAD types).
    pub derived: bool,
    /// Deterministic encryption per context (requires `derived`).
    pub convergent: bool,
    /// Allow export of the material.
    pub exportable: bool,
    /// Allow deletion.
    pub deletion_allowed: bool,
    /// Rotate automatically at this age (at least an hour).
    pub auto_rotate_period: Option<Duration>,
}

impl NewKey {
    /// A key of `key_type` with every option off.
    pub fn new(name: KeyName, key_type: KeyType) -> Self {
        NewKey {
            name,
            key_type,
            derived: false,
            convergent: false,
            exportable: false,
            deletion_allowed: false,
            auto_rotate_period: None,
        }
    }
}

/// Changes to a key's settings; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct KeyUpdate {
    /// New minimum decryption version.
    pub min_decryption_version: Option<u32>,
    /// New minimum encryption version (0: only the latest).
    pub min_encryption_version: Option<u32>,
    /// Allow or forbid deletion.
    pub deletion_allowed: Option<bool>,
    /// Allow export (cannot be turned off again).
    pub exportable: Option<bool>,
    /// New automatic rotation period (`Some(None)` turns it off).
    pub auto_rotate_period: Option<Option<Duration>>,
}

/// A key's policy and its versions (without material).
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// Settings and version bounds.
    pub policy: KeyPolicy,
    /// Stored versions, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// One encryption (or data key) request's inputs.
#[derive(Clone, Copy, Default)]
pub struct EncryptItem<'a> {
    /// The plaintext (ignored for data keys).
    pub plaintext: &'a [u8],
    /// Associated data: authenticated, not encrypted; needed to decrypt.
    pub associated_data: &'a [u8],
    /// The context of derived keys.
    pub context: &'a [u8],
}

impl std::fmt::Debug for EncryptItem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptItem")
            .field("plaintext_len", &self.plaintext.len())
            .field("associated_data_len", &self.associated_data.len())
            .field("context_len", &self.context.len())
            .finish()
    }
}

impl<T> std::fmt::Debug for Versioned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versioned")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// One decryption or rewrap request's inputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecryptItem<'a> {
    /// `<prefix>:v<version>:<base64>`.
    pub ciphertext: &'a str,
    /// The associated data given at encryption.
    pub associated_data: &'a [u8],
    /// The context given at encryption.
    pub context: &'a [u8],
}

/// An encoded output (ciphertext, signature or HMAC) or a plaintext, and
/// its key version. `Debug` shows only the version: the value may be secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The output.
    pub value: T,
    /// The key version that made or checked it.
    pub version: u32,
}

/// A decrypted plaintext (wiped on drop) and the version that opened it.
pub type Plaintext = Versioned<Zeroizing<Vec<u8>>>;

/// A new data key.
pub struct DataKey {
    /// The key itself, unless only the wrapped form was asked for.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The key encrypted under the transit key.
    pub ciphertext: String,
    /// The transit key version.
    pub version: u32,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &self.plaintext.as_ref().map(|_| "<redacted>"))
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A key that has not been rotated within the allowed age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverdueKey {
    /// The key's name.
    pub name: KeyName,
    /// Its type.
    pub key_type: KeyType,
    /// The latest version.
    pub latest_version: u32,
    /// When the latest version was created.
    pub rotated_at: SystemTime,
    /// How old the latest version is.
    pub age: Duration,
    /// The key's automatic rotation period, if any.
    pub auto_rotate_period: Option<Duration>,
}

/// Every key's rotation state: how many keys there are, and those overdue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationCompliance {
    /// Keys in the store.
    pub keys: u64,
    /// The keys not rotated within the allowed age.
    pub overdue: Vec<OverdueKey>,
}

/// Unwrapped versions, least recently used evicted first. Keyed by name,
/// then version, so a lookup borrows the name instead of copying it.
struct VersionCache {
    capacity: usize,
    tick: u64,
    len: usize,
    entries: HashMap<KeyName, HashMap<u32, (Arc<VersionKey>, u64)>>,
}

impl VersionCache {
    fn get(&mut self, name: &KeyName, version: u32) -> Option<Arc<VersionKey>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(name)?.get_mut(&version)?;
        entry.1 = tick;
        Some(entry.0.clone())
    }

    fn insert(&mut self, name: &KeyName, version: u32, key: Arc<VersionKey>) {
        if self.len >= self.capacity.max(1)
            && let Some((oldest, v)) = self
                .entries
                .iter()
                .flat_map(|(n, versions)| versions.iter().map(move |(v, (_, used))| (n, *v, *used)))
                .min_by_key(|(_, _, used)| *used)
                .map(|(n, v, _)| (n.clone(), v))
        {
            self.retain(&oldest, |other| other != v);
        }
        self.tick += 1;
        let versions = self.entries.entry(name.clone()).or_default();
        if versions.insert(version, (key, self.tick)).is_none() {
            self.len += 1;
        }
    }

    /// Keeps the versions of `name` for which `keep` holds.
    fn retain(&mut self, name: &KeyName, keep: impl Fn(u32) -> bool) {
        if let Some(versions) = self.entries.get_mut(name) {
            let before = versions.len();
            versions.retain(|v, _| keep(*v));
            self.len -= before - versions.len();
            if versions.is_empty() {
                self.entries.remove(name);
            }
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.len = 0;
    }
}

/// Random nonces drawn ahead for the items of one batch: one `getrandom`
/// call to the OS generator for the whole batch instead of one per item.
/// Every nonce is still 96 (or 192) fresh random bits
/// from the OS generator, and each drawn nonce is handed out once. When the
/// drawn ones run out (or none were drawn: unary calls, convergent keys),
/// each further nonce is drawn on its own.
#[derive(Default)]
struct RandomNonces {
    drawn: Vec<u8>,
    taken: usize,
}

impl RandomNonces {
    /// Draws `count` nonces of `len` bytes; none if the generator fails
    /// (each item then draws its own, and fails on its own).
    fn draw(random: &ring::rand::SystemRandom, len: usize, count: usize) -> Self {
        let mut drawn = vec![0u8; len * count];
        if random.fill(&mut drawn).is_err() {
            drawn.clear();
        }
        RandomNonces { drawn, taken: 0 }
    }

    /// Fills `nonce` with the next drawn nonce, or from `random`.
    fn fill(
        &mut self,
        random: &ring::rand::SystemRandom,
        nonce: &mut [u8],
    ) -> std::result::Result<(), ring::error::Unspecified> {
        let end = self.taken + nonce.len();
        match self.drawn.get(self.taken..end) {
            Some(next) => {
                nonce.copy_from_slice(next);
                self.taken = end;
                Ok(())
            }
            None => random.fill(nonce),
        }
    }
}

/// What the items of one call share: the random nonces drawn for them,
/// buffers reused from item to item (the bound associated data, and the
/// sealed bytes before their text form or after it was decoded: both
/// public), and the key version the last item used, so that a batch
/// looks a key up again only when the version changes, not per item.
#[derive(Default)]
struct Scratch {
    nonces: RandomNonces,
    aad: Vec<u8>,
    sealed: Vec<u8>,
    key: Option<(u32, Arc<VersionKey>)>,
}

/// The answer of a `try_` method (such as [`Transit::try_encrypt`]) when
/// the call needs something that is not in memory: the key's policy or an
/// unwrapped key version. The blocking method of the same name gets it from
/// the store and the HSM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotCached;

/// What a `try_` method gives: the operation's result (the same as its
/// blocking twin's), or [`NotCached`].
pub type TryResult<T> = std::result::Result<Result<T>, NotCached>;

/// Why an operation stopped: a failure to report, or (memory-only lookups
/// only, where `M` is [`NotCached`]) a lookup that would have blocked.
enum Stop<M> {
    Failed(TransitError),
    Miss(M),
}

/// The result of a step that may stop.
type Step<T, M> = std::result::Result<T, Stop<M>>;

impl<M> From<TransitError> for Stop<M> {
    fn from(error: TransitError) -> Self {
        Stop::Failed(error)
    }
}

/// Splits an operation's result into its outcome (`Ok`, success or
/// failure) and a miss (`Err`).
fn settle<T, M>(result: Step<T, M>) -> std::result::Result<Result<T>, M> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(Stop::Failed(error)) => Ok(Err(error)),
        Err(Stop::Miss(miss)) => Err(miss),
    }
}

/// The outcome of an operation whose lookups cannot miss.
fn settled<T>(result: Step<T, Infallible>) -> Result<T> {
    settle(result).unwrap_or_else(|never| match never {})
}

/// Where an operation may look up a key's policy and unwrapped versions.
/// The encryption and decryption code is written once over this, so a
/// `try_` method and its blocking twin check and fail the same way; they
/// differ only in what a lookup that is not in memory does.
trait Reach {
    /// What a lookup that is not in memory gives.
    type Miss;

    fn policy(t: &Transit, name: &KeyName) -> Step<Arc<KeyPolicy>, Self::Miss>;

    fn version_key(
        t: &Transit,
        policy: &KeyPolicy,
        version: u32,
    ) -> Step<Arc<VersionKey>, Self::Miss>;
}

/// The blocking methods: a lookup not in memory reads the store and
/// unwraps through the HSM.
struct Anywhere;

impl Reach for Anywhere {
    type Miss = Infallible;

    fn policy(t: &Transit, name: &KeyName) -> Step<Arc<KeyPolicy>, Infallible> {
        Ok(t.load_policy(name)?)
    }

    fn version_key(
        t: &Transit,
        policy: &KeyPolicy,
        version: u32,
    ) -> Step<Arc<VersionKey>, Infallible> {
        Ok(t.version_key(policy, version)?)
    }
}

/// The `try_` methods: memory only (a read lock on the policies and a
/// short lock on the version cache); anything else is [`NotCached`].
struct InMemory;

impl Reach for InMemory {
    type Miss = NotCached;

    fn policy(t: &Transit, name: &KeyName) -> Step<Arc<KeyPolicy>, NotCached> {
        t.cached_policy(name).ok_or(Stop::Miss(NotCached))
    }

    fn version_key(
        t: &Transit,
        policy: &KeyPolicy,
        version: u32,
    ) -> Step<Arc<VersionKey>, NotCached> {
        t.cached_version_key(&policy.name, version)
            .ok_or(Stop::Miss(NotCached))
    }
}

/// The transit engine. Cheap to share behind an `Arc`. Every method may
/// block (it may call the HSM or the store), except the `try_` methods,
/// which use only what is in memory and answer [`NotCached`] otherwise:
/// an async caller can run those on its own thread and fall back to the
/// blocking method on a blocking thread.
pub struct Transit {
    store: Arc<dyn TransitStore>,
    wrapping_keys: Arc<dyn WrappingKeys>,
    /// The current KEK, and the retired ones loaded so far.
    keks: RwLock<KekRing>,
    /// Versions may still be wrapped by a retired KEK.
    rewrap_pending: AtomicBool,
    /// Where the re-wrap under the current KEK has got to.
    rewrap: Mutex<RewrapPass>,
    random: Arc<dyn RandomSource>,
    rsa: Arc<dyn RsaKeySource>,
    config: TransitConfig,
    policies: RwLock<HashMap<KeyName, Arc<KeyPolicy>>>,
    cache: Mutex<VersionCache>,
    /// Serialises changes to keys (create, rotate, update, trim, delete)
    /// and to KEKs (rotate, re-wrap, destroy).
    admin: Mutex<()>,
    nonces: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Transit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transit")
            .field("kek", &self.current_kek().label)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Transit {
    /// An engine over `store` that wraps key material with the HSM's
    /// `wrapping_keys` and draws it from `random` and RSA keys from `rsa`
    /// (all the HSM).
    ///
    /// The KEK is the one the store records as current; `configured_kek`
    /// (a label) is recorded as current only when the store has none yet. A
    /// re-wrap left unfinished (by a crash, say) is pending again: see
    /// [`Transit::rewrap_step`].
    pub fn open(
        store: Arc<dyn TransitStore>,
        wrapping_keys: Arc<dyn WrappingKeys>,
        configured_kek: &str,
        random: Arc<dyn RandomSource>,
        rsa: Arc<dyn RsaKeySource>,
        config: TransitConfig,
    ) -> Result<Self> {
        let label = store.adopt_kek(configured_kek, SystemTime::now())?;
        let wrapper = wrapping_keys.find_wrapper(&label)?;
        let capacity = config.cache_capacity;
        Ok(Transit {
            store,
            wrapping_keys,
            keks: RwLock::new(KekRing::new(label, wrapper)),
            rewrap_pending: AtomicBool::new(true),
            rewrap: Mutex::new(RewrapPass::default()),
            random,
            rsa,
            config,
            policies: RwLock::new(HashMap::new()),
            cache: Mutex::new(VersionCache {
                capacity,
                tick: 0,
                len: 0,
                entries: HashMap::new(),
            }),
            admin: Mutex::new(()),
            nonces: ring::rand::SystemRandom::new(),
        })
    }

    /// The prefix of encoded values.
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// Forgets every unwrapped key (their material is wiped as the last
    /// in-flight request using each finishes). Called when sealing.
    pub fn forget_keys(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.policies
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Number of unwrapped key versions in memory.
    pub fn cached_versions(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len
    }

    /// Fails unless the key exists and its type can do `operation` (from
    /// the cached policy: no store or HSM call once the key was used).
    pub fn require(&self, name: &KeyName, operation: Operation) -> Result<()> {
        require(&*self.load_policy(name)?, operation)
    }

    // ----- keys -----

    /// Creates a key with its first version.
    pub fn create_key(&self, new: NewKey) -> Result<KeyInfo> {
        let invalid = |field, reason: &str| Err(TransitError::input(field, reason));
        if new.derived && !new.key_type.supports(Operation::Derive) {
            return invalid(
                "derived",
                "only encryption keys (aes256-gcm96, chacha20-poly1305, xchacha20-poly1305) can be derived",
            );
        }
        if new.convergent && !new.derived {
            return invalid("convergent", "convergent encryption requires a derived key");
        }
        check_period(new.auto_rotate_period)?;
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.store.key(&new.name)?.is_some() {
            return Err(TransitError::KeyExists {
                name: new.name.to_string(),
            });
        }
        let now = SystemTime::now();
        let first = self.new_version(new.key_type, 1, now)?;
        let policy = KeyPolicy {
            name: new.name.clone(),
            key_type: new.key_type,
            derived: new.derived,
            convergent: new.convergent,
            exportable: new.exportable,
            deletion_allowed: new.deletion_allowed,
            auto_rotate_period: new.auto_rotate_period,
            latest_version: 1,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 1,
            created_at: now,
            rotated_at: now,
        };
        self.store
            .create_key(&policy, &first)
            .map_err(|e| match e {
                crate::store::StoreError::Exists(name) => TransitError::KeyExists { name },
                other => other.into(),
            })?;
        tracing::info!(key = %policy.name, key_type = %policy.key_type, "created transit key");
        self.key_info(policy)
    }

    /// A key's policy and versions.
    pub fn get_key(&self, name: &KeyName) -> Result<KeyInfo> {
        let policy = self.load_policy(name)?;
        self.key_info((*policy).clone())
    }

    /// Keys in name order after `after`, at most `limit`.
    pub fn list_keys(&self, after: Option<&KeyName>, limit: usize) -> Result<Vec<KeyPolicy>> {
        Ok(self.store.list_keys(after, limit)?)
    }

    /// Adds a new latest version.
    pub fn rotate_key(&self, name: &KeyName) -> Result<KeyInfo> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut policy = self.fresh_policy(name)?;
        let now = SystemTime::now();
        let version =
            policy
                .latest_version
                .checked_add(1)
                .ok_or_else(|| TransitError::NotPermitted {
                    name: name.to_string(),
                    reason: "the key has reached the last version number".into(),
                })?;
        let stored = self.new_version(policy.key_type, version, now)?;
        policy.latest_version = version;
        policy.rotated_at = now;
        self.store.add_version(&policy, &stored)?;
        self.set_policy(policy.clone());
        tracing::info!(key = %name, version, "rotated transit key");
        self.key_info(policy)
    }

    /// Changes a key's settings.
    pub fn update_key(&self, name: &KeyName, update: KeyUpdate) -> Result<KeyInfo> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut policy = self.fresh_policy(name)?;
        if let Some(v) = update.min_decryption_version {
            if v < policy.min_available_version || v > policy.latest_version {
                return Err(TransitError::input(
                    "min_decryption_version",
                    format!(
                        "must be between {} (oldest available) and {} (latest)",
                        policy.min_available_version, policy.latest_version
                    ),
                ));
            }
            policy.min_decryption_version = v;
        }
        if let Some(v) = update.min_encryption_version {
            if v != 0 && (v > policy.latest_version) {
                return Err(TransitError::input(
                    "min_encryption_version",
                    format!(
                        "must be 0 (latest only) or at most {}",
                        policy.latest_version
                    ),
                ));
            }
            policy.min_encryption_version = v;
        }
        if policy.min_encryption_version != 0
            && policy.min_encryption_version < policy.min_decryption_version
        {
            return Err(TransitError::input(
                "min_encryption_version",
                format!(
                    "must be 0 or at least min_decryption_version ({})",
                    policy.min_decryption_version
                ),
            ));
        }
        if let Some(on) = update.exportable {
            if policy.exportable && !on {
                return Err(TransitError::NotPermitted {
                    name: name.to_string(),
                    reason: "exportable cannot be turned off once on".into(),
                });
            }
            policy.exportable = on;
        }
        if let Some(on) = update.deletion_allowed {
            policy.deletion_allowed = on;
        }
        if let Some(period) = update.auto_rotate_period {
            check_period(period)?;
            policy.auto_rotate_period = period;
        }
        self.store.update_key(&policy)?;
        self.set_policy(policy.clone());
        tracing::info!(key = %name, "updated transit key settings");
        self.key_info(policy)
    }

    /// Deletes every version below `min_available_version`, for ever.
    pub fn trim_key(&self, name: &KeyName, min_available_version: u32) -> Result<KeyInfo> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut policy = self.fresh_policy(name)?;
        let min_encryption = match policy.min_encryption_version {
            0 => policy.latest_version,
            v => v,
        };
        let ceiling = policy.min_decryption_version.min(min_encryption);
        if min_available_version < policy.min_available_version || min_available_version > ceiling {
            return Err(TransitError::input(
                "min_available_version",
                format!(
                    "must be between {} (already trimmed below) and {ceiling} (the minimum \
                     decryption and encryption versions)",
                    policy.min_available_version
                ),
            ));
        }
        policy.min_available_version = min_available_version;
        let removed = self.store.trim(&policy)?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(name, |v| v >= min_available_version);
        self.set_policy(policy.clone());
        tracing::info!(key = %name, min_available_version, removed, "trimmed transit key");
        self.key_info(policy)
    }

    /// Deletes a key whose settings allow it.
    pub fn delete_key(&self, name: &KeyName) -> Result<()> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let policy = self.fresh_policy(name)?;
        if !policy.deletion_allowed {
            return Err(TransitError::NotPermitted {
                name: name.to_string(),
                reason: "deletion is not allowed (set deletion_allowed first)".into(),
            });
        }
        self.store.delete_key(name)?;
        self.forget(name);
        tracing::info!(key = %name, "deleted transit key");
        Ok(())
    }

    /// The material of one version (or all available ones) of an
    /// exportable key: raw symmetric keys, PKCS#8 DER for signing keys.
    pub fn export_key(
        &self,
        name: &KeyName,
        version: Option<u32>,
    ) -> Result<Vec<(u32, Zeroizing<Vec<u8>>)>> {
        let policy = self.load_policy(name)?;
        if !policy.exportable {
            return Err(TransitError::NotPermitted {
                name: name.to_string(),
                reason: "the key is not exportable".into(),
            });
        }
        let versions = match version {
            Some(v) => {
                self.check_available(&policy, v)?;
                v..=v
            }
            None => policy.min_available_version..=policy.latest_version,
        };
        let mut out = Vec::new();
        for v in versions {
            let key = self.version_key(&policy, v)?;
            let exported = key.export().map_err(|reason| TransitError::Material {
                name: name.to_string(),
                version: v,
                reason,
            })?;
            out.push((v, exported));
        }
        tracing::info!(key = %name, versions = out.len(), "exported transit key material");
        Ok(out)
    }

    /// Keys whose latest version is older than `max_age` at `now`.
    pub fn rotation_report(&self, now: SystemTime, max_age: Duration) -> Result<Vec<OverdueKey>> {
        Ok(self.rotation_compliance(now, max_age)?.overdue)
    }

    /// How many keys there are, and which of them are overdue at `now`
    /// (their latest version older than `max_age`), in one pass over the
    /// keys.
    pub fn rotation_compliance(
        &self,
        now: SystemTime,
        max_age: Duration,
    ) -> Result<RotationCompliance> {
        let mut keys = 0;
        let mut overdue = Vec::new();
        self.for_each_key(|policy| {
            keys += 1;
            let age = now.duration_since(policy.rotated_at).unwrap_or_default();
            if age > max_age {
                overdue.push(OverdueKey {
                    name: policy.name.clone(),
                    key_type: policy.key_type,
                    latest_version: policy.latest_version,
                    rotated_at: policy.rotated_at,
                    age,
                    auto_rotate_period: policy.auto_rotate_period,
                });
            }
            Ok(())
        })?;
        Ok(RotationCompliance { keys, overdue })
    }

    /// Rotates every key whose automatic rotation period has passed at
    /// `now`; returns the keys rotated. A failure on one key is logged and
    /// the others still rotate.
    pub fn rotate_due(&self, now: SystemTime) -> Result<Vec<KeyName>> {
        let mut due = Vec::new();
        self.for_each_key(|policy| {
            if let Some(period) = policy.auto_rotate_period
                && now.duration_since(policy.rotated_at).unwrap_or_default() >= period
            {
                due.push(policy.name.clone());
            }
            Ok(())
        })?;
        let mut rotated = Vec::new();
        for name in due {
            match self.rotate_key(&name) {
                Ok(_) => rotated.push(name),
                Err(err) => tracing::warn!(key = %name, error = %err, "automatic rotation failed"),
            }
        }
        Ok(rotated)
    }

    // ----- encryption -----

    /// Encrypts one item under the latest (or the given) version.
    pub fn encrypt(
        &self,
        name: &KeyName,
        item: EncryptItem<'_>,
        version: Option<u32>,
    ) -> Result<Versioned<String>> {
        settled(self.encrypt_via::<Anywhere>(name, &item, version))
    }

    /// [`Self::encrypt`] if the key's policy and the version it needs are
    /// in memory (with the same result), [`NotCached`] otherwise. Never
    /// calls the store or the HSM.
    pub fn try_encrypt(
        &self,
        name: &KeyName,
        item: EncryptItem<'_>,
        version: Option<u32>,
    ) -> TryResult<Versioned<String>> {
        settle(self.encrypt_via::<InMemory>(name, &item, version))
    }

    /// Encrypts each item under the latest version; one bad item fails
    /// only itself.
    pub fn encrypt_batch(
        &self,
        name: &KeyName,
        items: &[EncryptItem<'_>],
    ) -> Result<Vec<Result<Versioned<String>>>> {
        settled(self.encrypt_batch_via::<Anywhere>(name, items))
    }

    /// [`Self::encrypt_batch`] if the key's policy and latest version are
    /// in memory (with the same results), [`NotCached`] otherwise. Never
    /// calls the store or the HSM.
    pub fn try_encrypt_batch(
        &self,
        name: &KeyName,
        items: &[EncryptItem<'_>],
    ) -> TryResult<Vec<Result<Versioned<String>>>> {
        settle(self.encrypt_batch_via::<InMemory>(name, items))
    }

    /// Decrypts one ciphertext.
    pub fn decrypt(
        &self,
        name: &KeyName,
        item: DecryptItem<'_>,
    ) -> Result<Versioned<Zeroizing<Vec<u8>>>> {
        settled(self.decrypt_via::<Anywhere>(name, &item))
    }

    /// [`Self::decrypt`] if the key's policy and the ciphertext's version
    /// are in memory (with the same result), [`NotCached`] otherwise. Never
    /// calls the store or the HSM.
    pub fn try_decrypt(&self, name: &KeyName, item: DecryptItem<'_>) -> TryResult<Plaintext> {
        settle(self.decrypt_via::<InMemory>(name, &item))
    }

    /// Decrypts each ciphertext; one bad item fails only itself.
    pub fn decrypt_batch(
        &self,
        name: &KeyName,
        items: &[DecryptItem<'_>],
    ) -> Result<Vec<Result<Plaintext>>> {
        settled(self.decrypt_batch_via::<Anywhere>(name, items))
    }

    /// [`Self::decrypt_batch`] if the key's policy and every version the
    /// ciphertexts need are in memory (with the same results), [`NotCached`]
    /// otherwise: at the first item whose version is not, so the items
    /// before it were decrypted for nothing. Never calls the store or the
    /// HSM.
    pub fn try_decrypt_batch(
        &self,
        name: &KeyName,
        items: &[DecryptItem<'_>],
    ) -> TryResult<Vec<Result<Plaintext>>> {
        settle(self.decrypt_batch_via::<InMemory>(name, items))
    }

    /// Re-encrypts a ciphertext under the latest version; the plaintext
    /// never leaves the engine.
    pub fn rewrap(&self, name: &KeyName, item: DecryptItem<'_>) -> Result<Versioned<String>> {
        self.rewrap_batch(name, &[item])?.remove(0)
    }

    /// Rewraps each ciphertext; one bad item fails only itself.
    pub fn rewrap_batch(
        &self,
        name: &KeyName,
        items: &[DecryptItem<'_>],
    ) -> Result<Vec<Result<Versioned<String>>>> {
        check_batch(items.len())?;
        let policy = self.load_policy(name)?;
        require(&policy, Operation::Encrypt)?;
        let version = policy.latest_version;
        let latest = self.version_key(&policy, version)?;
        let mut scratch = self.batch_scratch(&policy, items.len());
        Ok(items
            .iter()
            .map(|item| {
                let plain = settled(self.decrypt_with::<Anywhere>(&policy, item, &mut scratch))?;
                self.encrypt_with(
                    &policy,
                    &latest,
                    version,
                    &EncryptItem {
                        plaintext: &plain.value,
                        associated_data: item.associated_data,
                        context: item.context,
                    },
                    &mut scratch,
                )
            })
            .collect())
    }

    /// A new random data key of `bits` (128, 256 or 512), drawn from the
    /// HSM and encrypted under the latest version.
    pub fn generate_data_key(
        &self,
        name: &KeyName,
        bits: u32,
        wrapped_only: bool,
        item: EncryptItem<'_>,
    ) -> Result<DataKey> {
        if !matches!(bits, 128 | 256 | 512) {
            return Err(TransitError::input("bits", "must be 128, 256 or 512"));
        }
        let policy = self.load_policy(name)?;
        require(&policy, Operation::Encrypt)?;
        let version = policy.latest_version;
        let key = self.version_key(&policy, version)?;
        let mut plaintext = Zeroizing::new(vec![0u8; bits as usize / 8]);
        self.random.fill(&mut plaintext)?;
        let sealed = self.encrypt_with(
            &policy,
            &key,
            version,
            &EncryptItem {
                plaintext: &plaintext,
                ..item
            },
            &mut Scratch::default(),
        )?;
        Ok(DataKey {
            plaintext: (!wrapped_only).then_some(plaintext),
            ciphertext: sealed.value,
            version,
        })
    }

    // ----- signatures and HMACs -----

    /// Signs `input` with the latest (or the given) version.
    pub fn sign(
        &self,
        name: &KeyName,
        input: &[u8],
        options: &SignOptions,
        version: Option<u32>,
    ) -> Result<Versioned<String>> {
        check_len("input", input, MAX_INPUT_LEN)?;
        let policy = self.load_policy(name)?;
        require(&policy, Operation::Sign)?;
        let version = self.encryption_version(&policy, version)?;
        let key = self.version_key(&policy, version)?;
        let bytes = key
            .sign(options, input)
            .map_err(|(field, reason)| TransitError::input(field, reason))?;
        Ok(Versioned {
            value: Encoded { version, bytes }.to_text(&self.config.prefix),
            version,
        })
    }

    /// Checks a signature made by any version still allowed to verify.
    /// `Ok(false)` means it does not verify.
    pub fn verify(
        &self,
        name: &KeyName,
        input: &[u8],
        signature: &str,
        options: &SignOptions,
    ) -> Result<Versioned<bool>> {
        check_len("input", input, MAX_INPUT_LEN)?;
        let policy = self.load_policy(name)?;
        require(&policy, Operation::Sign)?;
        let encoded = Encoded::parse(signature, &self.config.prefix, "signature")?;
        self.check_decryption_version(&policy, encoded.version)?;
        let stored = self.stored_version(&policy, encoded.version)?;
        let spki = stored.public_key.ok_or_else(|| TransitError::Material {
            name: name.to_string(),
            version: encoded.version,
            reason: "no public key stored",
        })?;
        let valid = material::verify(policy.key_type, &spki, options, input, &encoded.bytes)
            .map_err(|(field, reason)| TransitError::input(field, reason))?;
        Ok(Versioned {
            value: valid,
            version: encoded.version,
        })
    }

    /// HMAC of `input` with the latest (or the given) version.
    pub fn hmac(
        &self,
        name: &KeyName,
        input: &[u8],
        hash: HashAlgorithm,
        version: Option<u32>,
    ) -> Result<Versioned<String>> {
        check_len("input", input, MAX_INPUT_LEN)?;
        let policy = self.load_policy(name)?;
        require(&policy, Operation::Hmac)?;
        let version = self.encryption_version(&policy, version)?;
        let key = self.version_key(&policy, version)?;
        let bytes = key.hmac(hash, input);
        Ok(Versioned {
            value: Encoded { version, bytes }.to_text(&self.config.prefix),
            version,
        })
    }

    /// Checks an HMAC in constant time.
    pub fn verify_hmac(
        &self,
        name: &KeyName,
        input: &[u8],
        hmac: &str,
        hash: HashAlgorithm,
    ) -> Result<Versioned<bool>> {
        check_len("input", input, MAX_INPUT_LEN)?;
        let policy = self.load_policy(name)?;
        require(&policy, Operation::Hmac)?;
        let encoded = Encoded::parse(hmac, &self.config.prefix, "hmac")?;
        self.check_decryption_version(&policy, encoded.version)?;
        let key = self.version_key(&policy, encoded.version)?;
        let expected = key.hmac(hash, input);
        Ok(Versioned {
            value: bool::from(expected.ct_eq(&encoded.bytes)),
            version: encoded.version,
        })
    }

    /// `len` random bytes from the HSM (1 to 65,536).
    pub fn random_bytes(&self, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        if len == 0 || len > MAX_RANDOM_LEN {
            return Err(TransitError::input(
                "length",
                format!("must be between 1 and {MAX_RANDOM_LEN}"),
            ));
        }
        let mut out = Zeroizing::new(vec![0u8; len]);
        self.random.fill(&mut out)?;
        Ok(out)
    }

    // ----- internals -----

    fn encrypt_via<R: Reach>(
        &self,
        name: &KeyName,
        item: &EncryptItem<'_>,
        version: Option<u32>,
    ) -> Step<Versioned<String>, R::Miss> {
        let policy = R::policy(self, name)?;
        require(&policy, Operation::Encrypt)?;
        let version = self.encryption_version(&policy, version)?;
        let key = R::version_key(self, &policy, version)?;
        Ok(self.encrypt_with(&policy, &key, version, item, &mut Scratch::default())?)
    }

    fn encrypt_batch_via<R: Reach>(
        &self,
        name: &KeyName,
        items: &[EncryptItem<'_>],
    ) -> Step<Vec<Result<Versioned<String>>>, R::Miss> {
        check_batch(items.len())?;
        let policy = R::policy(self, name)?;
        require(&policy, Operation::Encrypt)?;
        let version = policy.latest_version;
        let key = R::version_key(self, &policy, version)?;
        let mut scratch = self.batch_scratch(&policy, items.len());
        Ok(items
            .iter()
            .map(|item| self.encrypt_with(&policy, &key, version, item, &mut scratch))
            .collect())
    }

    fn decrypt_via<R: Reach>(
        &self,
        name: &KeyName,
        item: &DecryptItem<'_>,
    ) -> Step<Plaintext, R::Miss> {
        let policy = R::policy(self, name)?;
        require(&policy, Operation::Encrypt)?;
        self.decrypt_with::<R>(&policy, item, &mut Scratch::default())
    }

    fn decrypt_batch_via<R: Reach>(
        &self,
        name: &KeyName,
        items: &[DecryptItem<'_>],
    ) -> Step<Vec<Result<Plaintext>>, R::Miss> {
        check_batch(items.len())?;
        let policy = R::policy(self, name)?;
        require(&policy, Operation::Encrypt)?;
        let mut out = Vec::with_capacity(items.len());
        let mut scratch = Scratch::default();
        for item in items {
            // An item's failure is its own; a miss stops the whole batch.
            let opened = self.decrypt_with::<R>(&policy, item, &mut scratch);
            out.push(settle(opened).map_err(Stop::Miss)?);
        }
        Ok(out)
    }

    /// The scratch of a batch encrypting `count` items under `policy`'s
    /// key: their random nonces drawn in one go (none for convergent keys,
    /// whose nonces are derived).
    fn batch_scratch(&self, policy: &KeyPolicy, count: usize) -> Scratch {
        if policy.convergent || count < 2 {
            return Scratch::default();
        }
        Scratch {
            nonces: RandomNonces::draw(
                &self.nonces,
                AeadCipher::nonce_len_of(policy.key_type),
                count,
            ),
            ..Scratch::default()
        }
    }

    /// Encrypts one item; a random nonce comes from the scratch's nonces
    /// (which draw it if they hold none).
    fn encrypt_with(
        &self,
        policy: &KeyPolicy,
        key: &VersionKey,
        version: u32,
        item: &EncryptItem<'_>,
        scratch: &mut Scratch,
    ) -> Result<Versioned<String>> {
        check_len("plaintext", item.plaintext, MAX_INPUT_LEN)?;
        check_len("associated_data", item.associated_data, MAX_AAD_LEN)?;
        check_context(policy, item.context)?;
        let cipher = key.cipher(item.context);
        let mut nonce = [0u8; 24];
        let nonce = &mut nonce[..cipher.nonce_len()];
        if policy.convergent {
            // Deterministic: the nonce is an HMAC of the associated data and
            // plaintext under a per-context key, so equal inputs give equal
            // ciphertexts and different inputs (almost surely) different nonces.
            let nonce_key = key.derive(b"strongroom-transit convergent v1", item.context);
            let mut input = Zeroizing::new(Vec::with_capacity(
                8 + item.associated_data.len() + item.plaintext.len(),
            ));
            input.extend_from_slice(&(item.associated_data.len() as u64).to_be_bytes());
            input.extend_from_slice(item.associated_data);
            input.extend_from_slice(item.plaintext);
            let mac = material::hmac_with(nonce_key.as_ref(), HashAlgorithm::Sha256, &input);
            nonce.copy_from_slice(&mac[..nonce.len()]);
        } else {
            scratch.nonces.fill(&self.nonces, nonce).map_err(|_| {
                TransitError::input("plaintext", "the system random generator failed")
            })?;
        }
        bound_aad(
            &mut scratch.aad,
            &policy.name,
            version,
            item.associated_data,
        );
        cipher.seal_into(nonce, &scratch.aad, item.plaintext, &mut scratch.sealed);
        Ok(Versioned {
            value: encoded::to_text(&self.config.prefix, version, &scratch.sealed),
            version,
        })
    }

    fn decrypt_with<R: Reach>(
        &self,
        policy: &KeyPolicy,
        item: &DecryptItem<'_>,
        scratch: &mut Scratch,
    ) -> Step<Plaintext, R::Miss> {
        check_len("associated_data", item.associated_data, MAX_AAD_LEN)?;
        check_context(policy, item.context)?;
        let version = encoded::parse_into(
            item.ciphertext,
            &self.config.prefix,
            "ciphertext",
            &mut scratch.sealed,
        )?;
        self.check_decryption_version(policy, version)?;
        let key = match &scratch.key {
            Some((v, key)) if *v == version => key.clone(),
            _ => {
                let key = R::version_key(self, policy, version)?;
                scratch.key = Some((version, key.clone()));
                key
            }
        };
        bound_aad(
            &mut scratch.aad,
            &policy.name,
            version,
            item.associated_data,
        );
        let plaintext = key
            .cipher(item.context)
            .open(&scratch.aad, &scratch.sealed)
            .ok_or_else(|| TransitError::DecryptionFailed {
                name: policy.name.to_string(),
                version,
            })?;
        Ok(Versioned {
            value: plaintext,
            version,
        })
    }

    fn encryption_version(&self, policy: &KeyPolicy, requested: Option<u32>) -> Result<u32> {
        let Some(v) = requested.filter(|v| *v != 0) else {
            return Ok(policy.latest_version);
        };
        let floor = match policy.min_encryption_version {
            0 => policy.latest_version,
            m => m.max(policy.min_available_version),
        };
        if v > policy.latest_version {
            return Err(self.not_allowed(
                policy,
                v,
                format!("the latest version is {}", policy.latest_version),
            ));
        }
        if v < floor {
            return Err(self.not_allowed(
                policy,
                v,
                format!("the minimum encryption version is {floor}"),
            ));
        }
        Ok(v)
    }

    fn check_decryption_version(&self, policy: &KeyPolicy, v: u32) -> Result<()> {
        self.check_available(policy, v)?;
        if v < policy.min_decryption_version {
            return Err(self.not_allowed(
                policy,
                v,
                format!(
                    "the minimum decryption version is {}",
                    policy.min_decryption_version
                ),
            ));
        }
        Ok(())
    }

    fn check_available(&self, policy: &KeyPolicy, v: u32) -> Result<()> {
        if v > policy.latest_version {
            return Err(self.not_allowed(
                policy,
                v,
                format!("the latest version is {}", policy.latest_version),
            ));
        }
        if v < policy.min_available_version {
            return Err(self.not_allowed(
                policy,
                v,
                format!(
                    "versions below {} were trimmed",
                    policy.min_available_version
                ),
            ));
        }
        Ok(())
    }

    fn not_allowed(&self, policy: &KeyPolicy, version: u32, reason: String) -> TransitError {
        TransitError::VersionNotAllowed {
            name: policy.name.to_string(),
            version,
            reason,
        }
    }

    fn new_version(
        &self,
        key_type: KeyType,
        version: u32,
        now: SystemTime,
    ) -> Result<StoredVersion> {
        let (material, public_key) =
            material::generate(key_type, self.random.as_ref(), self.rsa.as_ref())?;
        let kek = self.current_kek();
        let wrapped = kek.wrapper.wrap(&material)?;
        Ok(StoredVersion {
            version,
            created_at: now,
            kek: kek.label,
            wrapped,
            public_key: public_key.map(|k| k.der().to_vec()),
        })
    }

    fn key_info(&self, policy: KeyPolicy) -> Result<KeyInfo> {
        let versions = self.store.versions(&policy.name)?;
        Ok(KeyInfo { policy, versions })
    }

    /// The policy of `name` if it is in memory.
    fn cached_policy(&self, name: &KeyName) -> Option<Arc<KeyPolicy>> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn load_policy(&self, name: &KeyName) -> Result<Arc<KeyPolicy>> {
        if let Some(policy) = self.cached_policy(name) {
            return Ok(policy);
        }
        let policy = Arc::new(self.fresh_policy(name)?);
        self.policies
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), policy.clone());
        Ok(policy)
    }

    fn fresh_policy(&self, name: &KeyName) -> Result<KeyPolicy> {
        self.store
            .key(name)?
            .ok_or_else(|| TransitError::KeyNotFound {
                name: name.to_string(),
            })
    }

    fn set_policy(&self, policy: KeyPolicy) {
        self.policies
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(policy.name.clone(), Arc::new(policy));
    }

    fn forget(&self, name: &KeyName) {
        self.policies
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(name, |_| false);
    }

    fn stored_version(&self, policy: &KeyPolicy, version: u32) -> Result<StoredVersion> {
        self.store
            .version(&policy.name, version)?
            .ok_or_else(|| TransitError::Material {
                name: policy.name.to_string(),
                version,
                reason: "the version's record is missing",
            })
    }

    /// Unwrapped version `version` of `name` if it is in memory.
    fn cached_version_key(&self, name: &KeyName, version: u32) -> Option<Arc<VersionKey>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name, version)
    }

    fn version_key(&self, policy: &KeyPolicy, version: u32) -> Result<Arc<VersionKey>> {
        if let Some(key) = self.cached_version_key(&policy.name, version) {
            return Ok(key);
        }
        let stored = self.stored_version(policy, version)?;
        let material_error = |reason| TransitError::Material {
            name: policy.name.to_string(),
            version,
            reason,
        };
        let wrapper = self
            .wrapper(&stored.kek)
            .map_err(|_| material_error("wrapped by an HSM key the token does not hold"))?;
        let material = wrapper
            .unwrap(&stored.wrapped)
            .map_err(|_| material_error("the HSM refused to unwrap it (damaged or wrong key)"))?;
        let key = Arc::new(
            VersionKey::new(policy.key_type, policy.derived, material).map_err(material_error)?,
        );
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            &policy.name,
            version,
            key.clone(),
        );
        Ok(key)
    }

    fn for_each_key(&self, mut f: impl FnMut(&KeyPolicy) -> Result<()>) -> Result<()> {
        let mut after: Option<KeyName> = None;
        loop {
            let page = self.store.list_keys(after.as_ref(), 500)?;
            for policy in &page {
                f(policy)?;
            }
            match page.last() {
                Some(last) if page.len() == 500 => after = Some(last.name.clone()),
                _ => return Ok(()),
            }
        }
    }
}

/// The label that starts the associated data of every transit AEAD.
const AAD_LABEL: &[u8] = b"strongroom-transit v1\0";

/// Associated data actually authenticated, written over `out`: a label,
/// the key name and the version, then the caller's associated data. A
/// ciphertext therefore never opens under another key or another version.
fn bound_aad(out: &mut Vec<u8>, name: &KeyName, version: u32, aad: &[u8]) {
    let name = name.as_str().as_bytes();
    out.clear();
    out.reserve(AAD_LABEL.len() + 1 + name.len() + 4 + aad.len());
    out.extend_from_slice(AAD_LABEL);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(aad);
}

fn require(policy: &KeyPolicy, operation: Operation) -> Result<()> {
    if policy.key_type.supports(operation) {
        Ok(())
    } else {
        Err(TransitError::Unsupported {
            name: policy.name.to_string(),
            key_type: policy.key_type,
            operation,
        })
    }
}

fn check_len(field: &'static str, value: &[u8], max: usize) -> Result<()> {
    if value.len() > max {
        return Err(TransitError::input(
            field,
            format!("{} bytes is more than the limit of {max}", value.len()),
        ));
    }
    Ok(())
}

fn check_context(policy: &KeyPolicy, context: &[u8]) -> Result<()> {
    check_len("context", context, MAX_AAD_LEN)?;
    match (policy.derived, context.is_empty()) {
        (true, true) => Err(TransitError::input(
            "context",
            format!(
                "key {:?} is derived: a context is required",
                policy.name.as_str()
            ),
        )),
        (false, false) => Err(TransitError::input(
            "context",
            format!(
                "key {:?} is not derived: leave context empty",
                policy.name.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses a batch of no items or more than [`MAX_BATCH_ITEMS`].
pub fn check_batch(len: usize) -> Result<()> {
    if len == 0 || len > MAX_BATCH_ITEMS {
        return Err(TransitError::input(
            "items",
            format!("a batch holds 1 to {MAX_BATCH_ITEMS} items, not {len}"),
        ));
    }
    Ok(())
}

fn check_period(period: Option<Duration>) -> Result<()> {
    match period {
        Some(p) if p < MIN_AUTO_ROTATE_PERIOD => Err(TransitError::input(
            "auto_rotate_period",
            "must be at least one hour (or unset)",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
