#![allow(clippy::unwrap_used)]
//! Unit tests of the transit engine over in-memory doubles: a map for the
//! store, AES-256-GCM for the HSM's wrapping key, the system generator for
//! the HSM's random source and fixed test keys for its RSA generator. The
//! SQLite store and SoftHSM are exercised end to end elsewhere.

use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};
use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64ct::{Base64, Encoding};
use der::Decode;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self as ring_sig, KeyPair as _};
use strongroom_hsm::{KeyWrapper, RandomSource, RsaKeySource, WrappingKeys};
use zeroize::Zeroizing;

use super::{
    DecryptItem, EncryptItem, KeyUpdate, MAX_AAD_LEN, MAX_BATCH_ITEMS, MAX_INPUT_LEN,
    MAX_RANDOM_LEN, NewKey, NotCached, Plaintext, Transit, TransitConfig, TryResult, Versioned,
};
use crate::encoded::{DEFAULT_PREFIX, Encoded, MAX_ENCODED_LEN};
use crate::error::{Result, TransitError};
use crate::key_type::{ALL_KEY_TYPES, KeyType, Operation};
use crate::material::{HashAlgorithm, SignOptions, SignatureScheme};
use crate::name::KeyName;
use crate::store::{
    KekRecord, KekState, KeyPolicy, StoreError, StoredVersion, TransitStore, VersionInfo,
};

// ----- test doubles -----

type Record = (KeyPolicy, BTreeMap<u32, StoredVersion>);

/// A [`TransitStore`] in a map, honouring every documented contract.
/// Counts its calls.
#[derive(Default)]
struct MemoryStore {
    keys: Mutex<BTreeMap<KeyName, Record>>,
    /// Label, state, created, state changed; oldest first.
    keks: Mutex<Vec<(String, KekState, SystemTime, SystemTime)>>,
    calls: AtomicUsize,
}

impl MemoryStore {
    /// Every access goes through here, so `calls` counts them all.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<KeyName, Record>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap()
    }

    /// Accesses so far (the engine's and the tests' own).
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// One version's stored record.
    fn stored(&self, name: &KeyName, version: u32) -> Option<StoredVersion> {
        self.lock()
            .get(name)
            .and_then(|(_, versions)| versions.get(&version).cloned())
    }

    /// Overwrites one version's record behind the engine's back.
    fn put_version(&self, name: &KeyName, version: StoredVersion) {
        self.lock()
            .get_mut(name)
            .unwrap()
            .1
            .insert(version.version, version);
    }
}

fn not_found(name: &KeyName) -> StoreError {
    StoreError::NotFound(name.to_string())
}

impl TransitStore for MemoryStore {
    fn create_key(&self, policy: &KeyPolicy, first: &StoredVersion) -> Result<(), StoreError> {
        let mut keys = self.lock();
        if keys.contains_key(&policy.name) {
            return Err(StoreError::Exists(policy.name.to_string()));
        }
        if first.version != policy.latest_version {
            return Err(StoreError::Backend(
                "the first version must be the policy's latest".into(),
            ));
        }
        keys.insert(
            policy.name.clone(),
            (
                policy.clone(),
                BTreeMap::from([(first.version, first.clone())]),
            ),
        );
        Ok(())
    }

    fn key(&self, name: &KeyName) -> Result<Option<KeyPolicy>, StoreError> {
        Ok(self.lock().get(name).map(|(policy, _)| policy.clone()))
    }

    fn list_keys(
        &self,
        after: Option<&KeyName>,
        limit: usize,
    ) -> Result<Vec<KeyPolicy>, StoreError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .lock()
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, (policy, _))| policy.clone())
            .collect())
    }

    fn update_key(&self, policy: &KeyPolicy) -> Result<(), StoreError> {
        let mut keys = self.lock();
        let record = keys
            .get_mut(&policy.name)
            .ok_or_else(|| not_found(&policy.name))?;
        if record.0.latest_version != policy.latest_version {
            // Versions change only through add_version and trim.
            return Err(StoreError::Backend(
                "update_key must not change latest_version".into(),
            ));
        }
        record.0 = policy.clone();
        Ok(())
    }

    fn add_version(&self, policy: &KeyPolicy, version: &StoredVersion) -> Result<(), StoreError> {
        let mut keys = self.lock();
        let record = keys
            .get_mut(&policy.name)
            .ok_or_else(|| not_found(&policy.name))?;
        if policy.latest_version != version.version {
            return Err(StoreError::Backend(
                "the new version must be the policy's latest".into(),
            ));
        }
        if record.0.latest_version.checked_add(1) != Some(version.version) {
            return Err(StoreError::Conflict(policy.name.to_string()));
        }
        record.0 = policy.clone();
        record.1.insert(version.version, version.clone());
        Ok(())
    }

    fn version(&self, name: &KeyName, version: u32) -> Result<Option<StoredVersion>, StoreError> {
        Ok(self.stored(name, version))
    }

    fn versions(&self, name: &KeyName) -> Result<Vec<VersionInfo>, StoreError> {
        Ok(self
            .lock()
            .get(name)
            .map(|(_, versions)| {
                versions
                    .values()
                    .map(|v| VersionInfo {
                        version: v.version,
                        created_at: v.created_at,
                        public_key: v.public_key.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn trim(&self, policy: &KeyPolicy) -> Result<u64, StoreError> {
        let mut keys = self.lock();
        let record = keys
            .get_mut(&policy.name)
            .ok_or_else(|| not_found(&policy.name))?;
        record.0 = policy.clone();
        let before = record.1.len();
        record
            .1
            .retain(|version, _| *version >= policy.min_available_version);
        Ok((before - record.1.len()) as u64)
    }

    fn delete_key(&self, name: &KeyName) -> Result<bool, StoreError> {
        Ok(self.lock().remove(name).is_some())
    }

    fn adopt_kek(&self, label: &str, now: SystemTime) -> Result<String, StoreError> {
        let mut keks = self.keks.lock().unwrap();
        if let Some(current) = keks.iter().find(|k| k.1 == KekState::Current) {
            return Ok(current.0.clone());
        }
        match keks.iter_mut().find(|k| k.0 == label) {
            Some(known) => *known = (known.0.clone(), KekState::Current, known.2, now),
            None => keks.push((label.to_string(), KekState::Current, now, now)),
        }
        Ok(label.to_string())
    }

    fn rotate_kek(&self, current: &str, new: &str, now: SystemTime) -> Result<(), StoreError> {
        let mut keks = self.keks.lock().unwrap();
        if keks.iter().any(|k| k.0 == new) {
            return Err(StoreError::Exists(new.to_string()));
        }
        let Some(old) = keks
            .iter_mut()
            .find(|k| k.0 == current && k.1 == KekState::Current)
        else {
            return Err(StoreError::Conflict(current.to_string()));
        };
        old.1 = KekState::Retired;
        old.3 = now;
        keks.push((new.to_string(), KekState::Current, now, now));
        Ok(())
    }

    fn keks(&self) -> Result<Vec<KekRecord>, StoreError> {
        let keys = self.lock();
        let keks = self.keks.lock().unwrap();
        Ok(keks
            .iter()
            .map(|(label, state, created_at, state_changed_at)| KekRecord {
                label: label.clone(),
                state: *state,
                created_at: *created_at,
                state_changed_at: *state_changed_at,
                versions: keys
                    .values()
                    .flat_map(|(_, versions)| versions.values())
                    .filter(|v| &v.kek == label)
                    .count() as u64,
            })
            .collect())
    }

    fn versions_wrapped_by(
        &self,
        kek: &str,
        after: Option<(&KeyName, u32)>,
        limit: usize,
    ) -> Result<Vec<(KeyName, StoredVersion)>, StoreError> {
        Ok(self
            .lock()
            .iter()
            .flat_map(|(name, (_, versions))| versions.values().map(move |v| (name, v)))
            .filter(|(name, v)| {
                v.kek == kek && after.is_none_or(|(n, after)| (*name, v.version) > (n, after))
            })
            .take(limit)
            .map(|(name, v)| (name.clone(), v.clone()))
            .collect())
    }

    fn rewrap_version(
        &self,
        name: &KeyName,
        version: u32,
        from: &str,
        to: &str,
        wrapped: &[u8],
    ) -> Result<bool, StoreError> {
        let mut keys = self.lock();
        match keys
            .get_mut(name)
            .and_then(|(_, versions)| versions.get_mut(&version))
        {
            Some(v) if v.kek == from => {
                v.kek = to.to_string();
                v.wrapped = wrapped.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn kek_destroyed(&self, label: &str, now: SystemTime) -> Result<(), StoreError> {
        let in_use = self
            .lock()
            .values()
            .flat_map(|(_, versions)| versions.values())
            .any(|v| v.kek == label);
        let mut keks = self.keks.lock().unwrap();
        let kek = keks
            .iter_mut()
            .find(|k| k.0 == label)
            .ok_or_else(|| StoreError::NotFound(label.to_string()))?;
        if kek.1 != KekState::Retired || in_use {
            return Err(StoreError::Conflict(label.to_string()));
        }
        kek.1 = KekState::Destroyed;
        kek.3 = now;
        Ok(())
    }
}

/// The HSM's wrapping keys, by label: [`TestWrapper`]s in a map. Counts
/// generations and destructions.
#[derive(Default)]
struct TestKeys {
    keys: Mutex<BTreeMap<String, Arc<TestWrapper>>>,
    destroyed: Mutex<Vec<String>>,
}

impl TestKeys {
    fn with(label: &str, wrapper: Arc<TestWrapper>) -> Arc<Self> {
        let keys = TestKeys::default();
        keys.keys.lock().unwrap().insert(label.to_string(), wrapper);
        Arc::new(keys)
    }

    fn get(&self, label: &str) -> Option<Arc<TestWrapper>> {
        self.keys.lock().unwrap().get(label).cloned()
    }

    /// Loses a key behind the engine's back, as a broken HSM might.
    fn lose(&self, label: &str) {
        self.keys.lock().unwrap().remove(label);
    }
}

fn missing_key(label: &str) -> strongroom_hsm::Error {
    strongroom_hsm::Error::KeyNotFound {
        token: "test".into(),
        label: label.into(),
        with_public_key: false,
    }
}

impl WrappingKeys for TestKeys {
    fn find_wrapper(&self, label: &str) -> strongroom_hsm::Result<Arc<dyn KeyWrapper>> {
        match self.get(label) {
            Some(w) => Ok(w),
            None => Err(missing_key(label)),
        }
    }

    fn generate_wrapper(&self, label: &str) -> strongroom_hsm::Result<Arc<dyn KeyWrapper>> {
        let mut keys = self.keys.lock().unwrap();
        if keys.contains_key(label) {
            return Err(strongroom_hsm::Error::LabelExists {
                token: "test".into(),
                label: label.into(),
            });
        }
        let wrapper = Arc::new(TestWrapper::new());
        keys.insert(label.to_string(), wrapper.clone());
        Ok(wrapper)
    }

    fn destroy_wrapper(&self, label: &str) -> strongroom_hsm::Result<()> {
        match self.keys.lock().unwrap().remove(label) {
            Some(_) => {
                self.destroyed.lock().unwrap().push(label.to_string());
                Ok(())
            }
            None => Err(missing_key(label)),
        }
    }
}

fn hsm_error(what: &str) -> strongroom_hsm::Error {
    strongroom_hsm::Error::InvalidInput(what.to_string())
}

const WRAP_NONCE_LEN: usize = 12;

/// A wrapping key that really encrypts (AES-256-GCM, random nonce, random
/// key per instance), so changed or foreign records fail to unwrap. Counts
/// unwraps.
struct TestWrapper {
    cipher: Aes256Gcm,
    unwraps: AtomicUsize,
}

impl TestWrapper {
    fn new() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        SystemRandom::new().fill(key.as_mut()).unwrap();
        TestWrapper {
            cipher: Aes256Gcm::new((&*key).into()),
            unwraps: AtomicUsize::new(0),
        }
    }

    fn unwraps(&self) -> usize {
        self.unwraps.load(Ordering::SeqCst)
    }
}

impl KeyWrapper for TestWrapper {
    fn wrap(&self, material: &[u8]) -> strongroom_hsm::Result<Vec<u8>> {
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| hsm_error("no randomness"))?;
        let sealed = self
            .cipher
            .encrypt(nonce.as_slice().into(), material)
            .map_err(|_| hsm_error("wrap failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn unwrap(&self, wrapped: &[u8]) -> strongroom_hsm::Result<Zeroizing<Vec<u8>>> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        if wrapped.len() < WRAP_NONCE_LEN + 16 {
            return Err(hsm_error("wrapped material too short"));
        }
        let (nonce, sealed) = wrapped.split_at(WRAP_NONCE_LEN);
        self.cipher
            .decrypt(nonce.into(), sealed)
            .map(Zeroizing::new)
            .map_err(|_| hsm_error("unwrap failed"))
    }
}

/// The HSM's generator, played by the system's.
struct SystemRandomSource(SystemRandom);

impl RandomSource for SystemRandomSource {
    fn fill(&self, buf: &mut [u8]) -> strongroom_hsm::Result<()> {
        self.0
            .fill(buf)
            .map_err(|_| hsm_error("the system generator failed"))
    }
}

// Test-only RSA keys (PKCS#1 DER) that protect nothing, generated once with
// `openssl genrsa -traditional BITS | openssl rsa -traditional -outform DER`
// (ring cannot generate RSA keys).
const RSA_3072_DER: &[u8] = include_bytes!("testdata/rsa3072.der");
const RSA_4096_DER: &[u8] = include_bytes!("testdata/rsa4096.der");

/// Hands out the fixed test keys by size. Every RSA version of one size
/// therefore shares the same material: fine for these tests, which never
/// tell RSA versions apart by their keys (rotation is tested on other types).
struct FixedRsaKeys;

impl RsaKeySource for FixedRsaKeys {
    fn generate_rsa_private_key(&self, bits: u32) -> strongroom_hsm::Result<Zeroizing<Vec<u8>>> {
        match bits {
            3072 => Ok(Zeroizing::new(RSA_3072_DER.to_vec())),
            4096 => Ok(Zeroizing::new(RSA_4096_DER.to_vec())),
            _ => Err(hsm_error("no test RSA key of that size")),
        }
    }
}

// ----- fixture and helpers -----

const KEK_LABEL: &str = "transit-kek-test";
const PREFIX: &str = DEFAULT_PREFIX;
const TAG_LEN: usize = 16;
const AEAD_TYPES: [KeyType; 3] = [
    KeyType::Aes256Gcm96,
    KeyType::ChaCha20Poly1305,
    KeyType::XChaCha20Poly1305,
];
const HASHES: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// A recognisable plaintext that must never show in an error or a Debug.
const SECRET: &[u8] = b"TOP-SECRET-PLAINTEXT-1234";

struct Fixture {
    transit: Transit,
    store: Arc<MemoryStore>,
    wrapper: Arc<TestWrapper>,
    keys: Arc<TestKeys>,
}

fn fixture() -> Fixture {
    fixture_with(TransitConfig::default())
}

fn fixture_with(config: TransitConfig) -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let wrapper = Arc::new(TestWrapper::new());
    let keys = TestKeys::with(KEK_LABEL, wrapper.clone());
    let transit = engine(store.clone(), keys.clone(), KEK_LABEL, config);
    Fixture {
        transit,
        store,
        wrapper,
        keys,
    }
}

fn engine(
    store: Arc<MemoryStore>,
    keys: Arc<TestKeys>,
    label: &str,
    config: TransitConfig,
) -> Transit {
    Transit::open(
        store,
        keys,
        label,
        Arc::new(SystemRandomSource(SystemRandom::new())),
        Arc::new(FixedRsaKeys),
        config,
    )
    .unwrap()
}

fn key(name: &str) -> KeyName {
    KeyName::new(name).unwrap()
}

impl Fixture {
    fn create(&self, name: &str, key_type: KeyType) -> KeyName {
        self.create_with(NewKey::new(key(name), key_type))
    }

    fn create_with(&self, new: NewKey) -> KeyName {
        let name = new.name.clone();
        let info = self.transit.create_key(new).unwrap();
        assert_eq!(info.policy.latest_version, 1);
        assert_eq!(versions_of(&info.versions), [1]);
        name
    }

    fn encrypt(&self, name: &KeyName, plaintext: &[u8], aad: &[u8], context: &[u8]) -> String {
        self.transit
            .encrypt(
                name,
                EncryptItem {
                    plaintext,
                    associated_data: aad,
                    context,
                },
                None,
            )
            .unwrap()
            .value
    }

    fn decrypt(
        &self,
        name: &KeyName,
        ciphertext: &str,
        aad: &[u8],
        context: &[u8],
    ) -> Result<Plaintext> {
        self.transit.decrypt(
            name,
            DecryptItem {
                ciphertext,
                associated_data: aad,
                context,
            },
        )
    }

    fn rewrap(
        &self,
        name: &KeyName,
        ciphertext: &str,
        aad: &[u8],
        context: &[u8],
    ) -> Result<Versioned<String>> {
        self.transit.rewrap(
            name,
            DecryptItem {
                ciphertext,
                associated_data: aad,
                context,
            },
        )
    }

    /// Decrypts and checks the plaintext and version.
    #[track_caller]
    fn assert_decrypts(&self, name: &KeyName, ciphertext: &str, aad: &[u8], expected: &[u8]) {
        self.assert_decrypts_in(name, ciphertext, aad, b"", expected);
    }

    #[track_caller]
    fn assert_decrypts_in(
        &self,
        name: &KeyName,
        ciphertext: &str,
        aad: &[u8],
        context: &[u8],
        expected: &[u8],
    ) {
        let opened = self.decrypt(name, ciphertext, aad, context).unwrap();
        assert!(
            opened.value.as_slice() == expected,
            "{ciphertext} decrypts to something else"
        );
        assert_eq!(opened.version, version_of(ciphertext));
    }

    fn update(&self, name: &KeyName, update: KeyUpdate) -> Result<KeyPolicy> {
        self.transit
            .update_key(name, update)
            .map(|info| info.policy)
    }

    fn policy(&self, name: &KeyName) -> KeyPolicy {
        self.transit.get_key(name).unwrap().policy
    }
}

fn enc_item<'a>(
    plaintext: &'a [u8],
    associated_data: &'a [u8],
    context: &'a [u8],
) -> EncryptItem<'a> {
    EncryptItem {
        plaintext,
        associated_data,
        context,
    }
}

fn dec_item_in<'a>(
    ciphertext: &'a str,
    associated_data: &'a [u8],
    context: &'a [u8],
) -> DecryptItem<'a> {
    DecryptItem {
        ciphertext,
        associated_data,
        context,
    }
}

fn dec_item<'a>(ciphertext: &'a str, associated_data: &'a [u8]) -> DecryptItem<'a> {
    DecryptItem {
        ciphertext,
        associated_data,
        context: b"",
    }
}

fn versions_of(versions: &[VersionInfo]) -> Vec<u32> {
    versions.iter().map(|v| v.version).collect()
}

fn version_of(text: &str) -> u32 {
    Encoded::parse(text, PREFIX, "ciphertext").unwrap().version
}

fn body_of(text: &str) -> Vec<u8> {
    Encoded::parse(text, PREFIX, "ciphertext").unwrap().bytes
}

fn nonce_len(key_type: KeyType) -> usize {
    if key_type == KeyType::XChaCha20Poly1305 {
        24
    } else {
        12
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for b in bytes {
        write!(out, "{b:02x}").unwrap();
    }
    out
}

/// How `bytes` would look if a Debug or Display printed them.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let list = format!("{bytes:?}");
    let mut out = vec![
        hex(bytes),
        hex(bytes).to_uppercase(),
        Base64::encode_string(bytes),
        list.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    ];
    if let Ok(text) = std::str::from_utf8(bytes) {
        out.push(text.to_string());
    }
    out
}

#[track_caller]
fn assert_not_shown(rendered: &str, secret: &[u8]) {
    for shown in renderings(secret) {
        assert!(
            !rendered.contains(&shown),
            "{rendered:?} shows a secret as {shown:?}"
        );
    }
}

/// The error of `result`, after checking that neither its Display nor its
/// Debug shows [`SECRET`].
#[track_caller]
fn expect_err<T: Debug>(result: Result<T>) -> TransitError {
    let err = match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err,
    };
    assert_not_shown(&err.to_string(), SECRET);
    assert_not_shown(&format!("{err:?}"), SECRET);
    err
}

/// Checks for `InvalidInput` on `field`; returns the reason.
#[track_caller]
fn expect_invalid<T: Debug>(result: Result<T>, field: &str) -> String {
    match expect_err(result) {
        TransitError::InvalidInput { field: f, reason } => {
            assert_eq!(f, field, "wrong field named ({reason})");
            reason
        }
        other => panic!("expected InvalidInput on {field}, got {other:?}"),
    }
}

#[track_caller]
fn expect_decryption_failed<T: Debug>(result: Result<T>, name: &KeyName, version: u32) {
    match expect_err(result) {
        TransitError::DecryptionFailed {
            name: n,
            version: v,
        } => {
            assert_eq!((n.as_str(), v), (name.as_str(), version));
        }
        other => panic!("expected DecryptionFailed, got {other:?}"),
    }
}

/// Checks for `VersionNotAllowed` naming `version`; returns the reason.
#[track_caller]
fn expect_version_not_allowed<T: Debug>(result: Result<T>, version: u32) -> String {
    match expect_err(result) {
        TransitError::VersionNotAllowed {
            version: v, reason, ..
        } => {
            assert_eq!(v, version, "{reason}");
            reason
        }
        other => panic!("expected VersionNotAllowed, got {other:?}"),
    }
}

#[track_caller]
fn expect_not_permitted<T: Debug>(result: Result<T>) -> String {
    match expect_err(result) {
        TransitError::NotPermitted { reason, .. } => reason,
        other => panic!("expected NotPermitted, got {other:?}"),
    }
}

#[track_caller]
fn expect_unsupported<T: Debug>(result: Result<T>, name: &KeyName, operation: Operation) {
    match expect_err(result) {
        TransitError::Unsupported {
            name: n,
            key_type,
            operation: op,
        } => {
            assert_eq!((n.as_str(), op), (name.as_str(), operation), "{key_type}");
            assert!(!key_type.supports(operation));
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[track_caller]
fn expect_not_found<T: Debug>(result: Result<T>, name: &KeyName) {
    match expect_err(result) {
        TransitError::KeyNotFound { name: n } => assert_eq!(n, name.as_str()),
        other => panic!("expected KeyNotFound, got {other:?}"),
    }
}

fn spki_of(transit: &Transit, name: &KeyName, version: u32) -> Vec<u8> {
    transit
        .get_key(name)
        .unwrap()
        .versions
        .into_iter()
        .find(|v| v.version == version)
        .and_then(|v| v.public_key)
        .expect("signing keys store their public key")
}

/// The SPKI's BIT STRING: the Ed25519 key, EC point or RSAPublicKey.
fn raw_public_key(spki_der: &[u8]) -> Vec<u8> {
    spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .unwrap()
        .subject_public_key
        .as_bytes()
        .unwrap()
        .to_vec()
}

fn ring_digest(hash: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    let algorithm = match hash {
        HashAlgorithm::Sha256 => &ring::digest::SHA256,
        HashAlgorithm::Sha384 => &ring::digest::SHA384,
        HashAlgorithm::Sha512 => &ring::digest::SHA512,
    };
    ring::digest::digest(algorithm, data).as_ref().to_vec()
}

/// The hash the engine documents as used for `options`.
fn resolved_hash(key_type: KeyType, options: &SignOptions) -> HashAlgorithm {
    options.hash.unwrap_or(if key_type == KeyType::EcdsaP384 {
        HashAlgorithm::Sha384
    } else {
        HashAlgorithm::Sha256
    })
}

/// Every allowed option combination of a signing type (defaults first).
fn sign_options(key_type: KeyType) -> Vec<SignOptions> {
    let mut out = vec![SignOptions::default()];
    match key_type {
        KeyType::Ed25519 => {}
        KeyType::EcdsaP256 | KeyType::EcdsaP384 => {
            for hash in HASHES {
                for prehashed in [false, true] {
                    out.push(SignOptions {
                        hash: Some(hash),
                        scheme: None,
                        prehashed,
                    });
                }
            }
            out.push(SignOptions {
                prehashed: true,
                ..SignOptions::default()
            });
        }
        KeyType::Rsa3072 | KeyType::Rsa4096 => {
            for scheme in [SignatureScheme::Pss, SignatureScheme::Pkcs1v15] {
                for hash in HASHES {
                    out.push(SignOptions {
                        hash: Some(hash),
                        scheme: Some(scheme),
                        prehashed: false,
                    });
                }
            }
        }
        other => panic!("{other} does not sign"),
    }
    out
}

/// Verification by ring, where ring has the algorithm (not ECDSA with
/// SHA-512, not prehashed input). `message` is the message, never a digest.
fn ring_verifies(
    key_type: KeyType,
    options: &SignOptions,
    raw_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Option<bool> {
    use HashAlgorithm::{Sha256, Sha384, Sha512};
    let hash = resolved_hash(key_type, options);
    let algorithm: &'static dyn ring_sig::VerificationAlgorithm = match key_type {
        KeyType::Ed25519 => &ring_sig::ED25519,
        KeyType::EcdsaP256 | KeyType::EcdsaP384 if options.prehashed => return None,
        KeyType::EcdsaP256 => match hash {
            Sha256 => &ring_sig::ECDSA_P256_SHA256_ASN1,
            Sha384 => &ring_sig::ECDSA_P256_SHA384_ASN1,
            Sha512 => return None,
        },
        KeyType::EcdsaP384 => match hash {
            Sha256 => &ring_sig::ECDSA_P384_SHA256_ASN1,
            Sha384 => &ring_sig::ECDSA_P384_SHA384_ASN1,
            Sha512 => return None,
        },
        KeyType::Rsa3072 | KeyType::Rsa4096 => {
            match (options.scheme.unwrap_or(SignatureScheme::Pss), hash) {
                (SignatureScheme::Pss, Sha256) => &ring_sig::RSA_PSS_2048_8192_SHA256,
                (SignatureScheme::Pss, Sha384) => &ring_sig::RSA_PSS_2048_8192_SHA384,
                (SignatureScheme::Pss, Sha512) => &ring_sig::RSA_PSS_2048_8192_SHA512,
                (SignatureScheme::Pkcs1v15, Sha256) => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
                (SignatureScheme::Pkcs1v15, Sha384) => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
                (SignatureScheme::Pkcs1v15, Sha512) => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
            }
        }
        other => panic!("{other} does not sign"),
    };
    Some(
        ring_sig::UnparsedPublicKey::new(algorithm, raw_key)
            .verify(message, signature)
            .is_ok(),
    )
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = Base64::encode_string(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    writeln!(out, "-----END {label}-----").unwrap();
    out
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs")
}

#[track_caller]
fn assert_openssl_ok(dir: &Path, args: &[&str]) -> Output {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[track_caller]
fn assert_openssl_fails(dir: &Path, args: &[&str]) {
    assert!(!openssl(dir, args).status.success(), "openssl {args:?}");
}

// ----- the doubles themselves -----

#[test]
fn memory_store_honours_its_contracts() {
    let f = fixture();
    let store = &f.store;
    for name in ["b", "a", "c"] {
        f.create(name, KeyType::Aes256Gcm96);
    }
    let names = |keys: Vec<KeyPolicy>| -> Vec<String> {
        keys.into_iter().map(|p| p.name.to_string()).collect()
    };
    assert_eq!(names(store.list_keys(None, 2).unwrap()), ["a", "b"]);
    assert_eq!(
        names(store.list_keys(Some(&key("a")), 10).unwrap()),
        ["b", "c"]
    );
    assert_eq!(
        names(f.transit.list_keys(Some(&key("c")), 10).unwrap()),
        Vec::<String>::new()
    );

    let a = key("a");
    let mut policy = store.key(&a).unwrap().unwrap();
    let first = store.version(&a, 1).unwrap().unwrap();
    assert!(matches!(
        store.create_key(&policy, &first),
        Err(StoreError::Exists(_))
    ));
    // add_version is compare-and-swap on the latest version.
    let mut third = first.clone();
    third.version = 3;
    policy.latest_version = 3;
    assert!(matches!(
        store.add_version(&policy, &third),
        Err(StoreError::Conflict(_))
    ));
    let mut second = first.clone();
    second.version = 2;
    policy.latest_version = 2;
    store.add_version(&policy, &second).unwrap();
    assert!(matches!(
        store.add_version(&policy, &second),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(versions_of(&store.versions(&a).unwrap()), [1, 2]);
    policy.min_available_version = 2;
    assert_eq!(store.trim(&policy).unwrap(), 1);
    assert_eq!(versions_of(&store.versions(&a).unwrap()), [2]);
    assert!(store.version(&a, 1).unwrap().is_none());
    assert!(store.delete_key(&a).unwrap());
    assert!(!store.delete_key(&a).unwrap());
    assert!(matches!(
        store.update_key(&policy),
        Err(StoreError::NotFound(_))
    ));

    // The wrapper really encrypts: changed or foreign records fail.
    let wrapped = f.wrapper.wrap(SECRET).unwrap();
    assert!(!wrapped.windows(SECRET.len()).any(|w| w == SECRET));
    assert_eq!(f.wrapper.unwrap(&wrapped).unwrap().as_slice(), SECRET);
    let mut changed = wrapped.clone();
    changed[WRAP_NONCE_LEN] ^= 1;
    assert!(f.wrapper.unwrap(&changed).is_err());
    assert!(TestWrapper::new().unwrap(&wrapped).is_err());
    assert_eq!(f.wrapper.unwraps(), 2);
}

// ----- 1. round trips -----

#[test]
fn every_aead_type_round_trips_with_and_without_associated_data() {
    let f = fixture();
    let big: Vec<u8> = (0..MAX_INPUT_LEN).map(|i| (i % 251) as u8).collect();
    let mut types = 0;
    for key_type in ALL_KEY_TYPES
        .into_iter()
        .filter(|t| t.supports(Operation::Encrypt))
    {
        types += 1;
        let name = f.create(key_type.name(), key_type);
        // The 1 MiB plaintext once (with associated data): the AEAD and
        // base64 generics run unoptimised in this debug-built crate.
        let cases = [SECRET, &[][..]]
            .into_iter()
            .flat_map(|p| [(p, &b""[..]), (p, &b"header"[..])])
            .chain([(big.as_slice(), &b"header"[..])]);
        for (plaintext, aad) in cases {
            let out = f
                .transit
                .encrypt(
                    &name,
                    EncryptItem {
                        plaintext,
                        associated_data: aad,
                        context: b"",
                    },
                    None,
                )
                .unwrap();
            assert_eq!(out.version, 1);
            assert!(out.value.starts_with("strongroom:v1:"), "{key_type}");
            let body = body_of(&out.value);
            assert_eq!(
                body.len(),
                nonce_len(key_type) + plaintext.len() + TAG_LEN,
                "{key_type}"
            );
            if plaintext == SECRET {
                assert!(!body.windows(SECRET.len()).any(|w| w == SECRET));
                assert_not_shown(&out.value, SECRET);
            }
            f.assert_decrypts(&name, &out.value, aad, plaintext);
            let other_aad: &[u8] = if aad.is_empty() { b"header" } else { b"" };
            expect_decryption_failed(f.decrypt(&name, &out.value, other_aad, b""), &name, 1);
        }
    }
    assert_eq!(types, AEAD_TYPES.len());
}

#[test]
fn every_signing_type_signs_and_verifies_with_each_allowed_option() {
    let f = fixture();
    let message = b"the message to sign";
    let other = b"another message";
    let (mut types, mut cross_checked) = (0, 0);
    for key_type in ALL_KEY_TYPES
        .into_iter()
        .filter(|t| t.supports(Operation::Sign))
    {
        types += 1;
        let name = f.create(key_type.name(), key_type);
        let raw = raw_public_key(&spki_of(&f.transit, &name, 1));
        for options in sign_options(key_type) {
            let what = format!("{key_type} {options:?}");
            let hash = resolved_hash(key_type, &options);
            let (input, other_input) = if options.prehashed {
                (ring_digest(hash, message), ring_digest(hash, other))
            } else {
                (message.to_vec(), other.to_vec())
            };
            let signed = f.transit.sign(&name, &input, &options, None).unwrap();
            assert_eq!(signed.version, 1, "{what}");
            let sig = Encoded::parse(&signed.value, PREFIX, "signature").unwrap();
            assert_eq!(sig.version, 1, "{what}");

            let verified = f
                .transit
                .verify(&name, &input, &signed.value, &options)
                .unwrap();
            assert_eq!((verified.value, verified.version), (true, 1), "{what}");
            let wrong = f
                .transit
                .verify(&name, &other_input, &signed.value, &options);
            assert!(!wrong.unwrap().value, "{what}: verifies another message");
            let mut damaged = sig.clone();
            *damaged.bytes.last_mut().unwrap() ^= 0x01;
            let damaged = damaged.to_text(PREFIX);
            assert!(
                !f.transit
                    .verify(&name, &input, &damaged, &options)
                    .unwrap()
                    .value,
                "{what}: a damaged signature verifies"
            );

            match key_type {
                KeyType::Ed25519 | KeyType::EcdsaP256 | KeyType::EcdsaP384 => {
                    // Ed25519 and RFC 6979 ECDSA are deterministic.
                    let again = f.transit.sign(&name, &input, &options, None).unwrap();
                    assert_eq!(again.value, signed.value, "{what}");
                }
                _ => {
                    // PSS and PKCS#1 v1.5 signatures do not verify as each other.
                    let mut swapped = options;
                    swapped.scheme = Some(match options.scheme {
                        Some(SignatureScheme::Pkcs1v15) => SignatureScheme::Pss,
                        _ => SignatureScheme::Pkcs1v15,
                    });
                    let v = f.transit.verify(&name, &input, &signed.value, &swapped);
                    assert!(!v.unwrap().value, "{what}");
                }
            }

            if let Some(ok) = ring_verifies(key_type, &options, &raw, message, &sig.bytes) {
                assert!(ok, "{what}: ring does not verify the signature");
                assert_eq!(
                    ring_verifies(key_type, &options, &raw, other, &sig.bytes),
                    Some(false),
                    "{what}"
                );
                cross_checked += 1;
            }
        }
    }
    assert_eq!(types, 5);
    // Ed25519 1, each ECDSA curve 3 (default, SHA-256, SHA-384), each RSA size 7.
    assert_eq!(cross_checked, 1 + 3 + 3 + 7 + 7);
}

#[test]
fn openssl_verifies_ed25519_ecdsa_and_rsa_pss_signatures() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let message = b"checked by openssl";
    std::fs::write(d.join("msg.bin"), message).unwrap();
    std::fs::write(d.join("other.bin"), b"not the signed message").unwrap();
    let sign = |key_type: KeyType, input: &[u8], options: SignOptions| {
        let name = f.create(key_type.name(), key_type);
        let spki = spki_of(&f.transit, &name, 1);
        std::fs::write(d.join(format!("{key_type}.pem")), pem("PUBLIC KEY", &spki)).unwrap();
        let signed = f.transit.sign(&name, input, &options, None).unwrap();
        let sig = Encoded::parse(&signed.value, PREFIX, "signature").unwrap();
        std::fs::write(d.join(format!("{key_type}.sig")), sig.bytes).unwrap();
    };

    // ECDSA P-256 over the message with SHA-256 (the default).
    sign(KeyType::EcdsaP256, message, SignOptions::default());
    let ecdsa = |msg| {
        let args = [
            "dgst",
            "-sha256",
            "-verify",
            "ecdsa-p256.pem",
            "-signature",
            "ecdsa-p256.sig",
            msg,
        ];
        openssl(d, &args)
    };
    assert!(ecdsa("msg.bin").status.success());
    assert!(!ecdsa("other.bin").status.success());

    // ECDSA P-384 over a SHA-384 digest the caller computed.
    let digest = ring_digest(HashAlgorithm::Sha384, message);
    std::fs::write(d.join("msg.sha384"), &digest).unwrap();
    std::fs::write(
        d.join("other.sha384"),
        ring_digest(HashAlgorithm::Sha384, b"other"),
    )
    .unwrap();
    let prehashed = SignOptions {
        hash: Some(HashAlgorithm::Sha384),
        prehashed: true,
        ..SignOptions::default()
    };
    sign(KeyType::EcdsaP384, &digest, prehashed);
    let p384 = |input| {
        [
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "ecdsa-p384.pem",
            "-in",
            input,
            "-sigfile",
            "ecdsa-p384.sig",
        ]
    };
    assert_openssl_ok(d, &p384("msg.sha384"));
    assert_openssl_fails(d, &p384("other.sha384"));

    // RSA-PSS, salt as long as the hash: 3072 with SHA-256 (the default
    // scheme and hash), 4096 with SHA-512.
    sign(KeyType::Rsa3072, message, SignOptions::default());
    let rsa_sha512 = SignOptions {
        hash: Some(HashAlgorithm::Sha512),
        scheme: Some(SignatureScheme::Pss),
        prehashed: false,
    };
    sign(KeyType::Rsa4096, message, rsa_sha512);
    for (key_type, hash, salt) in [
        (KeyType::Rsa3072, "-sha256", "rsa_pss_saltlen:32"),
        (KeyType::Rsa4096, "-sha512", "rsa_pss_saltlen:64"),
    ] {
        let pem = format!("{key_type}.pem");
        let sig = format!("{key_type}.sig");
        let pss = |msg| {
            [
                "dgst",
                hash,
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                salt,
                "-verify",
                pem.as_str(),
                "-signature",
                sig.as_str(),
                msg,
            ]
        };
        assert_openssl_ok(d, &pss("msg.bin"));
        assert_openssl_fails(d, &pss("other.bin"));
    }

    // Ed25519 over the message.
    sign(KeyType::Ed25519, message, SignOptions::default());
    let ed = |msg| {
        [
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "ed25519.pem",
            "-rawin",
            "-in",
            msg,
            "-sigfile",
            "ed25519.sig",
        ]
    };
    assert_openssl_ok(d, &ed("msg.bin"));
    assert_openssl_fails(d, &ed("other.bin"));
}

#[test]
fn hmac_equals_an_independent_hmac_of_the_exported_key() {
    let f = fixture();
    let mut types = 0;
    for key_type in ALL_KEY_TYPES
        .into_iter()
        .filter(|t| t.supports(Operation::Hmac))
    {
        types += 1;
        let mut new = NewKey::new(key("mac"), key_type);
        new.exportable = true;
        let name = f.create_with(new);
        let exported = f.transit.export_key(&name, Some(1)).unwrap();
        let material = exported[0].1.clone();
        assert_eq!(material.len(), 32);
        let message = b"authenticate me";
        for (hash, algorithm) in HASHES.into_iter().zip([
            ring::hmac::HMAC_SHA256,
            ring::hmac::HMAC_SHA384,
            ring::hmac::HMAC_SHA512,
        ]) {
            let mac = f.transit.hmac(&name, message, hash, None).unwrap();
            assert_eq!(mac.version, 1);
            let bytes = body_of(&mac.value);
            let expected = ring::hmac::sign(&ring::hmac::Key::new(algorithm, &material), message);
            assert_eq!(bytes, expected.as_ref(), "{hash:?}");
            assert_eq!(bytes.len(), hash.output_len());

            let check = |input: &[u8], hash| {
                f.transit
                    .verify_hmac(&name, input, &mac.value, hash)
                    .unwrap()
            };
            assert_eq!(
                check(message, hash),
                Versioned {
                    value: true,
                    version: 1
                }
            );
            assert!(!check(b"another message", hash).value);
            for other in HASHES.into_iter().filter(|h| *h != hash) {
                assert!(!check(message, other).value, "{hash:?} as {other:?}");
            }
            let mut damaged = bytes.clone();
            damaged[0] ^= 0x80;
            let damaged = Encoded {
                version: 1,
                bytes: damaged,
            }
            .to_text(PREFIX);
            assert!(
                !f.transit
                    .verify_hmac(&name, message, &damaged, hash)
                    .unwrap()
                    .value
            );
        }
    }
    assert_eq!(types, 1);
}

#[test]
fn a_custom_prefix_is_written_and_required() {
    let f = fixture_with(TransitConfig {
        prefix: "vault".into(),
        cache_capacity: 8,
    });
    assert_eq!(f.transit.prefix(), "vault");
    let name = f.create("prefixed", KeyType::Aes256Gcm96);
    let ct = f.encrypt(&name, SECRET, b"", b"");
    assert!(ct.starts_with("vault:v1:"), "{ct}");
    let opened = f.decrypt(&name, &ct, b"", b"").unwrap();
    assert_eq!(opened.value.as_slice(), SECRET);
    let relabelled = ct.replacen("vault", "strongroom", 1);
    expect_invalid(f.decrypt(&name, &relabelled, b"", b""), "ciphertext");
}

// ----- 2. refusals -----

#[test]
fn operations_a_key_type_cannot_do_are_unsupported() {
    let f = fixture();
    let ed = f.create("ed", KeyType::Ed25519);
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    let mac = f.create("mac", KeyType::Hmac);
    let plain = EncryptItem {
        plaintext: SECRET,
        ..EncryptItem::default()
    };
    let sealed = DecryptItem {
        ciphertext: "strongroom:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ..DecryptItem::default()
    };
    for name in [&ed, &mac] {
        expect_unsupported(
            f.transit.encrypt(name, plain, None),
            name,
            Operation::Encrypt,
        );
        expect_unsupported(f.transit.decrypt(name, sealed), name, Operation::Encrypt);
        expect_unsupported(f.transit.rewrap(name, sealed), name, Operation::Encrypt);
        let batch = f.transit.encrypt_batch(name, &[plain]);
        expect_unsupported(batch, name, Operation::Encrypt);
        let batch = f.transit.decrypt_batch(name, &[sealed]);
        expect_unsupported(batch, name, Operation::Encrypt);
        let data_key = f.transit.generate_data_key(name, 256, false, plain);
        expect_unsupported(data_key, name, Operation::Encrypt);
    }
    let options = SignOptions::default();
    for name in [&aes, &mac] {
        expect_unsupported(
            f.transit.sign(name, SECRET, &options, None),
            name,
            Operation::Sign,
        );
        let verified = f.transit.verify(name, SECRET, sealed.ciphertext, &options);
        expect_unsupported(verified, name, Operation::Sign);
    }
    for name in [&aes, &ed] {
        let mac = f.transit.hmac(name, SECRET, HashAlgorithm::Sha256, None);
        expect_unsupported(mac, name, Operation::Hmac);
        let verified =
            f.transit
                .verify_hmac(name, SECRET, sealed.ciphertext, HashAlgorithm::Sha256);
        expect_unsupported(verified, name, Operation::Hmac);
    }
    let err = expect_err(f.transit.encrypt(&ed, plain, None));
    assert_eq!(
        err.to_string(),
        "transit key \"ed\" is of type ed25519, which cannot encrypt or decrypt"
    );
}

#[test]
fn sign_options_that_do_not_fit_the_key_are_refused_naming_the_field() {
    let f = fixture();
    let ed = f.create("ed", KeyType::Ed25519);
    let p256 = f.create("p256", KeyType::EcdsaP256);
    let p384 = f.create("p384", KeyType::EcdsaP384);
    let rsa = f.create("rsa", KeyType::Rsa3072);
    let message = b"message";
    let good = |name: &KeyName| {
        f.transit
            .sign(name, message, &SignOptions::default(), None)
            .unwrap()
            .value
    };
    // Each refusal is checked on sign and on verify (with a good signature).
    let refused = |name: &KeyName, input: &[u8], options: SignOptions, field: &str| {
        let reason = expect_invalid(f.transit.sign(name, input, &options, None), field);
        assert!(!reason.is_empty());
        let signature = good(name);
        expect_invalid(f.transit.verify(name, input, &signature, &options), field);
    };
    let with_hash = SignOptions {
        hash: Some(HashAlgorithm::Sha256),
        ..SignOptions::default()
    };
    let with_scheme = SignOptions {
        scheme: Some(SignatureScheme::Pss),
        ..SignOptions::default()
    };
    let prehashed = |hash| SignOptions {
        hash,
        scheme: None,
        prehashed: true,
    };
    refused(&ed, message, with_hash, "hash");
    refused(&ed, message, with_scheme, "scheme");
    refused(&ed, &[0; 64], prehashed(None), "prehashed");
    refused(
        &rsa,
        &[0; 32],
        prehashed(Some(HashAlgorithm::Sha256)),
        "prehashed",
    );
    refused(&p256, message, with_scheme, "scheme");
    refused(&p384, message, with_scheme, "scheme");
    // Digests of the wrong length for the (default or given) hash.
    refused(&p256, &[0; 31], prehashed(None), "input");
    refused(&p256, &[0; 48], prehashed(None), "input");
    refused(&p384, &[0; 32], prehashed(None), "input");
    refused(
        &p384,
        &[0; 48],
        prehashed(Some(HashAlgorithm::Sha512)),
        "input",
    );
    refused(&p256, &[], prehashed(Some(HashAlgorithm::Sha256)), "input");
}

#[test]
fn context_is_required_exactly_for_derived_keys() {
    let f = fixture();
    let plain = f.create("plain", KeyType::Aes256Gcm96);
    let mut new = NewKey::new(key("derived"), KeyType::ChaCha20Poly1305);
    new.derived = true;
    let derived = f.create_with(new);
    let ct_plain = f.encrypt(&plain, SECRET, b"", b"");
    let ct_derived = f.encrypt(&derived, SECRET, b"", b"ctx");

    let item = |context: &'static [u8]| enc_item(SECRET, b"", context);
    let reason = expect_invalid(f.transit.encrypt(&plain, item(b"ctx"), None), "context");
    assert!(reason.contains("not derived"), "{reason}");
    expect_invalid(f.decrypt(&plain, &ct_plain, b"", b"ctx"), "context");
    let data_key = f
        .transit
        .generate_data_key(&plain, 256, false, item(b"ctx"));
    expect_invalid(data_key, "context");

    let reason = expect_invalid(f.transit.encrypt(&derived, item(b""), None), "context");
    assert!(reason.contains("context is required"), "{reason}");
    expect_invalid(f.decrypt(&derived, &ct_derived, b"", b""), "context");
    let data_key = f.transit.generate_data_key(&derived, 256, false, item(b""));
    expect_invalid(data_key, "context");
    expect_invalid(f.rewrap(&derived, &ct_derived, b"", b""), "context");
}

#[test]
fn oversize_inputs_are_refused() {
    let f = fixture();
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    let mut new = NewKey::new(key("derived"), KeyType::Aes256Gcm96);
    new.derived = true;
    let derived = f.create_with(new);
    let ed = f.create("ed", KeyType::Ed25519);
    let mac = f.create("mac", KeyType::Hmac);
    let cycled = |len: usize| -> Vec<u8> { SECRET.iter().copied().cycle().take(len).collect() };
    let too_big = cycled(MAX_INPUT_LEN + 1);
    let aad_max = cycled(MAX_AAD_LEN);
    let aad_over = cycled(MAX_AAD_LEN + 1);

    let item = enc_item;
    expect_invalid(
        f.transit.encrypt(&aes, item(&too_big, b"", b""), None),
        "plaintext",
    );
    let over = f.transit.encrypt(&aes, item(SECRET, &aad_over, b""), None);
    expect_invalid(over, "associated_data");
    let over = f
        .transit
        .encrypt(&derived, item(SECRET, b"", &aad_over), None);
    expect_invalid(over, "context");
    // The limits themselves are allowed.
    let ct = f.encrypt(&aes, SECRET, &aad_max, b"");
    f.assert_decrypts(&aes, &ct, &aad_max, SECRET);
    let ct_derived = f.encrypt(&derived, SECRET, &aad_max, &aad_max);
    f.assert_decrypts_in(&derived, &ct_derived, &aad_max, &aad_max, SECRET);
    expect_invalid(f.decrypt(&aes, &ct, &aad_over, b""), "associated_data");
    expect_invalid(
        f.decrypt(&derived, &ct_derived, &aad_max, &aad_over),
        "context",
    );
    let data_key = f
        .transit
        .generate_data_key(&aes, 256, false, item(b"", &aad_over, b""));
    expect_invalid(data_key, "associated_data");

    let huge_text = "A".repeat(MAX_ENCODED_LEN + 1);
    expect_invalid(f.decrypt(&aes, &huge_text, b"", b""), "ciphertext");

    let options = SignOptions::default();
    expect_invalid(f.transit.sign(&ed, &too_big, &options, None), "input");
    let signature = f.transit.sign(&ed, SECRET, &options, None).unwrap().value;
    expect_invalid(
        f.transit.verify(&ed, &too_big, &signature, &options),
        "input",
    );
    let sha256 = HashAlgorithm::Sha256;
    expect_invalid(f.transit.hmac(&mac, &too_big, sha256, None), "input");
    let tag = f.transit.hmac(&mac, SECRET, sha256, None).unwrap().value;
    expect_invalid(f.transit.verify_hmac(&mac, &too_big, &tag, sha256), "input");
}

#[test]
fn batches_hold_one_to_a_thousand_items() {
    let f = fixture();
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    let ct = f.encrypt(&aes, b"x", b"", b"");
    for len in [0, MAX_BATCH_ITEMS + 1] {
        let items = vec![
            EncryptItem {
                plaintext: b"x",
                ..EncryptItem::default()
            };
            len
        ];
        let reason = expect_invalid(f.transit.encrypt_batch(&aes, &items), "items");
        assert!(reason.contains(&len.to_string()), "{reason}");
        let items = vec![
            DecryptItem {
                ciphertext: &ct,
                ..DecryptItem::default()
            };
            len
        ];
        expect_invalid(f.transit.decrypt_batch(&aes, &items), "items");
        expect_invalid(f.transit.rewrap_batch(&aes, &items), "items");
    }
    let items = vec![
        EncryptItem {
            plaintext: b"x",
            ..EncryptItem::default()
        };
        MAX_BATCH_ITEMS
    ];
    let sealed = f.transit.encrypt_batch(&aes, &items).unwrap();
    assert_eq!(sealed.len(), MAX_BATCH_ITEMS);
    let texts: Vec<String> = sealed.into_iter().map(|r| r.unwrap().value).collect();
    let items: Vec<DecryptItem<'_>> = texts
        .iter()
        .map(|ciphertext| DecryptItem {
            ciphertext,
            ..DecryptItem::default()
        })
        .collect();
    let opened = f.transit.decrypt_batch(&aes, &items).unwrap();
    assert!(
        opened
            .iter()
            .all(|r| r.as_ref().unwrap().value.as_slice() == b"x")
    );
}

// ----- the memory-only fast path (try_ methods) -----

impl Fixture {
    /// Store calls and HSM unwraps so far.
    fn reach(&self) -> (usize, usize) {
        (self.store.calls(), self.wrapper.unwraps())
    }
}

/// Whether a try_ method missed.
fn missed<T>(result: TryResult<T>) -> bool {
    matches!(result, Err(NotCached))
}

/// The outcome of an operation, comparable across the fast and slow paths
/// (errors by their Debug form, which carries every field).
fn outcome<T: Debug>(result: &Result<T>) -> String {
    format!("{result:?}")
}

#[test]
fn try_methods_miss_on_a_cold_cache_without_touching_the_store_or_the_hsm() {
    let f = fixture();
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    let ct = f.encrypt(&aes, SECRET, b"", b"");
    let ghost = key("ghost");
    f.transit.forget_keys();
    let before = f.reach();
    let plain = enc_item(SECRET, b"", b"");
    for name in [&aes, &ghost] {
        assert!(missed(f.transit.try_encrypt(name, plain, None)));
        assert!(missed(f.transit.try_encrypt_batch(name, &[plain])));
        assert!(missed(f.transit.try_decrypt(name, dec_item(&ct, b""))));
        assert!(missed(
            f.transit.try_decrypt_batch(name, &[dec_item(&ct, b"")])
        ));
    }
    // A batch of the wrong size fails before any lookup, as the slow path does.
    let empty = f.transit.try_encrypt_batch(&aes, &[]).unwrap();
    expect_invalid(empty, "items");
    assert_eq!(
        f.reach(),
        before,
        "a cold try_ call reached the store or the HSM"
    );

    // The policy alone in memory (require() loads only the policy): the
    // version still misses.
    f.transit.require(&aes, Operation::Encrypt).unwrap();
    let before = f.reach();
    assert!(missed(f.transit.try_encrypt(&aes, plain, None)));
    assert!(missed(f.transit.try_decrypt(&aes, dec_item(&ct, b""))));
    assert_eq!(f.reach(), before);

    // Warm for version 1, then rotated: version 2 is not unwrapped yet, so
    // encryption misses while decryption of version 1 hits. A batch
    // holding a version-2 ciphertext misses as a whole.
    f.assert_decrypts(&aes, &ct, b"", SECRET);
    f.transit.rotate_key(&aes).unwrap();
    let before = f.reach();
    assert!(missed(f.transit.try_encrypt(&aes, plain, None)));
    assert!(missed(f.transit.try_encrypt_batch(&aes, &[plain])));
    let opened = f
        .transit
        .try_decrypt(&aes, dec_item(&ct, b""))
        .unwrap()
        .unwrap();
    assert_eq!(opened.value.as_slice(), SECRET);
    // Version 1 may no longer encrypt: the cached policy says so.
    let v1 = f.transit.try_encrypt(&aes, plain, Some(1)).unwrap();
    assert!(matches!(
        v1,
        Err(TransitError::VersionNotAllowed { version: 1, .. })
    ));
    assert_eq!(f.reach(), before);
    let ct2 = f.encrypt(&aes, b"two", b"", b"");
    f.transit.forget_keys();
    f.assert_decrypts(&aes, &ct, b"", SECRET);
    let before = f.reach();
    let batch = [dec_item(&ct, b""), dec_item(&ct2, b"")];
    assert!(missed(f.transit.try_decrypt_batch(&aes, &batch)));
    assert_eq!(f.reach(), before);
}

#[test]
fn try_methods_answer_as_the_blocking_ones_once_warm() {
    let f = fixture();
    let mut names = Vec::new();
    for key_type in AEAD_TYPES {
        names.push((f.create(key_type.name(), key_type), &b""[..]));
        let mut derived = NewKey::new(key(&format!("{}-derived", key_type.name())), key_type);
        derived.derived = true;
        names.push((f.create_with(derived), &b"ctx"[..]));
        let mut convergent = NewKey::new(key(&format!("{}-convergent", key_type.name())), key_type);
        convergent.derived = true;
        convergent.convergent = true;
        names.push((f.create_with(convergent), &b"ctx"[..]));
    }
    let ed = f.create("ed", KeyType::Ed25519);
    let too_big = vec![0u8; MAX_INPUT_LEN + 1];
    for (name, context) in &names {
        let context: &[u8] = context;
        let good = f
            .transit
            .encrypt(name, enc_item(SECRET, b"ad", context), None)
            .unwrap();
        let policy = f.policy(name);
        f.transit.rotate_key(name).unwrap();
        let newer = f
            .transit
            .encrypt(name, enc_item(b"newer", b"", context), None)
            .unwrap();
        // Both versions unwrapped, the policy in memory.
        f.transit
            .decrypt(name, dec_item_in(&good.value, b"ad", context))
            .unwrap();
        let before = f.reach();

        let encrypts = [
            (enc_item(SECRET, b"ad", context), None),
            (enc_item(b"", b"", context), None),
            (enc_item(SECRET, b"", context), Some(2)),
            (enc_item(SECRET, b"", context), Some(1)), // below the floor
            (enc_item(SECRET, b"", context), Some(3)), // above the latest
            (enc_item(&too_big, b"", context), None),
            (enc_item(SECRET, b"", b"other context"), None),
            (enc_item(SECRET, b"", b""), None),
        ];
        for (item, version) in encrypts {
            let fast = f.transit.try_encrypt(name, item, version).unwrap();
            let slow = f.transit.encrypt(name, item, version);
            match (&fast, &slow) {
                (Ok(fast), Ok(slow)) => {
                    assert_eq!(fast.version, slow.version);
                    if policy.convergent {
                        assert_eq!(fast.value, slow.value, "{name}: convergent");
                    }
                    let opened = f.transit.decrypt(
                        name,
                        dec_item_in(&fast.value, item.associated_data, item.context),
                    );
                    assert_eq!(opened.unwrap().value.as_slice(), item.plaintext);
                }
                _ => assert_eq!(outcome(&fast), outcome(&slow), "{name}"),
            }
        }
        let items: Vec<EncryptItem<'_>> = encrypts.iter().map(|(item, _)| *item).collect();
        let fast = f.transit.try_encrypt_batch(name, &items).unwrap().unwrap();
        let slow = f.transit.encrypt_batch(name, &items).unwrap();
        assert_eq!(fast.len(), slow.len());
        for (fast, slow) in fast.iter().zip(&slow) {
            assert_eq!(fast.is_ok(), slow.is_ok(), "{name}");
            if let (Err(_), Err(_)) = (fast, slow) {
                assert_eq!(outcome(fast), outcome(slow));
            }
        }

        let mut tampered = body_of(&good.value);
        tampered[20] ^= 1;
        let tampered = Encoded {
            version: 1,
            bytes: tampered,
        }
        .to_text(PREFIX);
        let beyond = good.value.replace(":v1:", ":v9:");
        let decrypts = [
            dec_item_in(&good.value, b"ad", context),
            dec_item_in(&newer.value, b"", context),
            dec_item_in(&good.value, b"other", context),
            dec_item_in(&tampered, b"ad", context),
            dec_item_in(&beyond, b"ad", context),
            dec_item_in("garbage", b"", context),
            dec_item_in(&good.value, b"ad", b""),
            dec_item_in(&good.value, b"ad", b"other context"),
        ];
        for item in decrypts {
            let fast = f.transit.try_decrypt(name, item).unwrap();
            assert_eq!(outcome(&fast), outcome(&f.transit.decrypt(name, item)));
        }
        let fast = f.transit.try_decrypt_batch(name, &decrypts).unwrap();
        let slow = f.transit.decrypt_batch(name, &decrypts);
        assert_eq!(outcome(&fast), outcome(&slow));
        assert_eq!(fast.unwrap()[0].as_ref().unwrap().value.as_slice(), SECRET);
        assert_eq!(
            f.reach(),
            before,
            "{name}: a warm try_ call reached the store or the HSM"
        );
    }

    // Key-level failures come from the cached policy too.
    let plain = enc_item(SECRET, b"", b"");
    f.transit.require(&ed, Operation::Sign).unwrap();
    let before = f.reach();
    let fast = f.transit.try_encrypt(&ed, plain, None).unwrap();
    assert_eq!(
        outcome(&fast),
        outcome(&f.transit.encrypt(&ed, plain, None))
    );
    let fast = f
        .transit
        .try_decrypt_batch(&ed, &[dec_item("x", b"")])
        .unwrap();
    let slow = f.transit.decrypt_batch(&ed, &[dec_item("x", b"")]);
    assert_eq!(outcome(&fast), outcome(&slow));
    assert!(matches!(fast, Err(TransitError::Unsupported { .. })));
    assert_eq!(f.reach(), before);
}

/// A batch draws its random nonces in one call to the OS generator; each
/// item still gets its own, for every AEAD, in encryption and rewrap.
#[test]
fn batch_nonces_are_drawn_together_and_all_differ() {
    let f = fixture();
    for key_type in AEAD_TYPES {
        let name = f.create(key_type.name(), key_type);
        let n = nonce_len(key_type);
        let items = vec![
            EncryptItem {
                plaintext: SECRET,
                ..EncryptItem::default()
            };
            MAX_BATCH_ITEMS
        ];
        let texts: Vec<String> = f
            .transit
            .encrypt_batch(&name, &items)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap().value)
            .collect();
        let rewrap_items: Vec<DecryptItem<'_>> = texts.iter().map(|c| dec_item(c, b"")).collect();
        let rewrapped: Vec<String> = f
            .transit
            .rewrap_batch(&name, &rewrap_items)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap().value)
            .collect();
        let mut nonces = std::collections::HashSet::new();
        for text in texts.iter().chain(&rewrapped) {
            let body = body_of(text);
            assert_eq!(body.len(), n + SECRET.len() + TAG_LEN, "{key_type}");
            assert!(
                nonces.insert(body[..n].to_vec()),
                "{key_type}: a nonce repeats"
            );
            f.assert_decrypts(&name, text, b"", SECRET);
        }
        assert_eq!(nonces.len(), 2 * MAX_BATCH_ITEMS);
    }
}

/// A batch reuses the key of the previous item when the version is the
/// same; interleaved versions (and derived keys, whose per-item key comes
/// from the context) still each open under their own.
#[test]
fn a_batch_of_interleaved_versions_opens_each_under_its_own() {
    let f = fixture();
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    let mut new = NewKey::new(key("derived"), KeyType::ChaCha20Poly1305);
    new.derived = true;
    let derived = f.create_with(new);
    for (name, contexts) in [(&aes, [&b""[..]; 2]), (&derived, [&b"a"[..], &b"b"[..]])] {
        let mut texts = Vec::new();
        for version in 1..=3u32 {
            if version > 1 {
                f.transit.rotate_key(name).unwrap();
            }
            for context in contexts {
                let plaintext = format!("v{version} {context:?}");
                let item = enc_item(plaintext.as_bytes(), b"", context);
                let text = f.transit.encrypt(name, item, None).unwrap().value;
                texts.push((text, context, plaintext));
            }
        }
        let order = [0, 2, 0, 4, 5, 1, 3, 2, 5];
        let items: Vec<DecryptItem<'_>> = order
            .iter()
            .map(|&i| dec_item_in(&texts[i].0, b"", texts[i].1))
            .collect();
        let opened = f.transit.decrypt_batch(name, &items).unwrap();
        for (&i, opened) in order.iter().zip(opened) {
            let opened = opened.unwrap();
            assert_eq!(opened.value.as_slice(), texts[i].2.as_bytes(), "{name} {i}");
            assert_eq!(opened.version, version_of(&texts[i].0));
        }
    }
}

#[test]
fn drawn_nonces_are_handed_out_once_then_drawn_one_by_one() {
    let random = SystemRandom::new();
    let mut nonces = super::RandomNonces::draw(&random, 12, 3);
    let drawn = nonces.drawn.clone();
    assert_eq!(drawn.len(), 36);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let mut nonce = [0u8; 12];
        nonces.fill(&random, &mut nonce).unwrap();
        assert!(!seen.contains(&nonce), "a nonce repeats");
        seen.push(nonce);
    }
    assert_eq!(seen[..3].concat(), drawn, "the drawn ones first, in order");
    assert!(seen[3..].iter().all(|n| !drawn.windows(12).any(|w| w == n)));
    // None drawn (unary calls): every nonce comes from the generator.
    let mut none = super::RandomNonces::default();
    let (mut a, mut b) = ([0u8; 24], [0u8; 24]);
    none.fill(&random, &mut a).unwrap();
    none.fill(&random, &mut b).unwrap();
    assert_ne!(a, b);
}

#[test]
fn data_key_sizes_and_random_lengths_are_checked() {
    let f = fixture();
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    for bits in [0, 64, 192, 1024] {
        let data_key = f
            .transit
            .generate_data_key(&aes, bits, false, EncryptItem::default());
        expect_invalid(data_key, "bits");
    }
    for len in [0, MAX_RANDOM_LEN + 1] {
        expect_invalid(f.transit.random_bytes(len), "length");
    }
    assert_eq!(f.transit.random_bytes(1).unwrap().len(), 1);
    let most = f.transit.random_bytes(MAX_RANDOM_LEN).unwrap();
    assert_eq!(most.len(), MAX_RANDOM_LEN);
    assert!(most.iter().any(|b| *b != 0));
    assert_ne!(
        f.transit.random_bytes(32).unwrap(),
        f.transit.random_bytes(32).unwrap()
    );
}

#[test]
fn key_settings_and_names_are_checked_at_creation() {
    let f = fixture();
    for key_type in ALL_KEY_TYPES
        .into_iter()
        .filter(|t| !t.supports(Operation::Derive))
    {
        let mut new = NewKey::new(key("k"), key_type);
        new.derived = true;
        expect_invalid(f.transit.create_key(new), "derived");
    }
    let mut new = NewKey::new(key("k"), KeyType::Aes256Gcm96);
    new.convergent = true;
    expect_invalid(f.transit.create_key(new), "convergent");
    let mut new = NewKey::new(key("k"), KeyType::Aes256Gcm96);
    new.auto_rotate_period = Some(HOUR - Duration::from_secs(1));
    expect_invalid(f.transit.create_key(new), "auto_rotate_period");
    assert!(
        f.transit.list_keys(None, 10).unwrap().is_empty(),
        "refused keys stored"
    );

    let mut new = NewKey::new(key("k"), KeyType::Aes256Gcm96);
    new.auto_rotate_period = Some(HOUR);
    let name = f.create_with(new);
    let ct = f.encrypt(&name, SECRET, b"", b"");
    let again = f
        .transit
        .create_key(NewKey::new(key("k"), KeyType::Ed25519));
    match expect_err(again) {
        TransitError::KeyExists { name } => assert_eq!(name, "k"),
        other => panic!("expected KeyExists, got {other:?}"),
    }
    // The first key is untouched.
    assert_eq!(f.policy(&name).key_type, KeyType::Aes256Gcm96);
    f.assert_decrypts(&name, &ct, b"", SECRET);

    let too_long = "x".repeat(129);
    for bad in ["", ".hidden", "a/b", "a b", "caf\u{e9}", too_long.as_str()] {
        let err = KeyName::new(bad).unwrap_err();
        assert!(
            matches!(err, TransitError::InvalidInput { field: "key", .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn unknown_keys_are_not_found() {
    let f = fixture();
    let ghost = key("ghost");
    let t = &f.transit;
    let item = EncryptItem {
        plaintext: SECRET,
        ..EncryptItem::default()
    };
    let sealed = DecryptItem {
        ciphertext: "strongroom:v1:AAAA",
        ..DecryptItem::default()
    };
    let options = SignOptions::default();
    let sha = HashAlgorithm::Sha256;
    expect_not_found(t.get_key(&ghost), &ghost);
    expect_not_found(t.rotate_key(&ghost), &ghost);
    expect_not_found(t.update_key(&ghost, KeyUpdate::default()), &ghost);
    expect_not_found(t.trim_key(&ghost, 1), &ghost);
    expect_not_found(t.delete_key(&ghost), &ghost);
    expect_not_found(t.export_key(&ghost, None), &ghost);
    expect_not_found(t.encrypt(&ghost, item, None), &ghost);
    expect_not_found(t.encrypt_batch(&ghost, &[item]), &ghost);
    expect_not_found(t.decrypt(&ghost, sealed), &ghost);
    expect_not_found(t.decrypt_batch(&ghost, &[sealed]), &ghost);
    expect_not_found(t.rewrap(&ghost, sealed), &ghost);
    expect_not_found(t.generate_data_key(&ghost, 256, false, item), &ghost);
    expect_not_found(t.sign(&ghost, SECRET, &options, None), &ghost);
    expect_not_found(
        t.verify(&ghost, SECRET, sealed.ciphertext, &options),
        &ghost,
    );
    expect_not_found(t.hmac(&ghost, SECRET, sha, None), &ghost);
    expect_not_found(
        t.verify_hmac(&ghost, SECRET, sealed.ciphertext, sha),
        &ghost,
    );
    let err = expect_err(t.get_key(&ghost));
    assert_eq!(err.to_string(), "transit key \"ghost\" does not exist");
}

// ----- 3. rotation, versions, trim, delete -----

#[test]
fn rotation_moves_encryption_forward_and_minimums_are_enforced() {
    let f = fixture();
    let name = f.create("rotating", KeyType::Aes256Gcm96);
    let c1 = f.encrypt(&name, b"one", b"", b"");
    let created = f.policy(&name).created_at;
    let info = f.transit.rotate_key(&name).unwrap();
    assert_eq!(info.policy.latest_version, 2);
    assert_eq!(versions_of(&info.versions), [1, 2]);
    assert!(info.policy.rotated_at >= created);
    assert_eq!(info.policy.created_at, created);
    let c2 = f.encrypt(&name, b"two", b"", b"");
    assert!(c2.starts_with("strongroom:v2:"), "{c2}");
    let info = f.transit.rotate_key(&name).unwrap();
    assert_eq!(versions_of(&info.versions), [1, 2, 3]);
    let c3 = f.encrypt(&name, b"three", b"", b"");
    assert!(c3.starts_with("strongroom:v3:"), "{c3}");
    for (ct, pt) in [(&c1, &b"one"[..]), (&c2, b"two"), (&c3, b"three")] {
        f.assert_decrypts(&name, ct, b"", pt);
    }

    // Explicit versions: only the latest unless min_encryption_version allows.
    let encrypt_at = |version| {
        f.transit.encrypt(
            &name,
            EncryptItem {
                plaintext: b"at",
                ..EncryptItem::default()
            },
            Some(version),
        )
    };
    let reason = expect_version_not_allowed(encrypt_at(1), 1);
    assert!(
        reason.contains("minimum encryption version is 3"),
        "{reason}"
    );
    expect_version_not_allowed(encrypt_at(2), 2);
    expect_version_not_allowed(encrypt_at(4), 4);
    assert_eq!(encrypt_at(3).unwrap().version, 3);
    assert_eq!(encrypt_at(0).unwrap().version, 3, "0 means the latest");
    let update = |update| f.update(&name, update);
    update(KeyUpdate {
        min_encryption_version: Some(2),
        ..KeyUpdate::default()
    })
    .unwrap();
    let at2 = encrypt_at(2).unwrap();
    assert_eq!(at2.version, 2);
    assert!(at2.value.starts_with("strongroom:v2:"));
    f.assert_decrypts(&name, &at2.value, b"", b"at");
    expect_version_not_allowed(encrypt_at(1), 1);
    assert_eq!(
        f.encrypt(&name, b"x", b"", b"").split(':').nth(1),
        Some("v3")
    );

    // Range checks; a refused update changes nothing.
    let min_dec = |v| KeyUpdate {
        min_decryption_version: Some(v),
        ..KeyUpdate::default()
    };
    let min_enc = |v| KeyUpdate {
        min_encryption_version: Some(v),
        ..KeyUpdate::default()
    };
    expect_invalid(update(min_dec(4)), "min_decryption_version");
    expect_invalid(update(min_dec(0)), "min_decryption_version");
    expect_invalid(update(min_enc(4)), "min_encryption_version");
    // min_decryption 3 would leave min_encryption (2) below it.
    expect_invalid(update(min_dec(3)), "min_encryption_version");
    let policy = f.policy(&name);
    assert_eq!(
        (policy.min_decryption_version, policy.min_encryption_version),
        (1, 2)
    );
    let policy = update(min_dec(2)).unwrap();
    assert_eq!(policy.min_decryption_version, 2);
    expect_invalid(update(min_enc(1)), "min_encryption_version");

    // Version 1 may no longer decrypt or be rewrapped.
    let reason = expect_version_not_allowed(f.decrypt(&name, &c1, b"", b""), 1);
    assert!(
        reason.contains("minimum decryption version is 2"),
        "{reason}"
    );
    expect_version_not_allowed(f.rewrap(&name, &c1, b"", b""), 1);
    f.assert_decrypts(&name, &c2, b"", b"two");
    f.assert_decrypts(&name, &c3, b"", b"three");
    // A version newer than the latest is refused too.
    let future = Encoded {
        version: 4,
        bytes: body_of(&c3),
    }
    .to_text(PREFIX);
    let reason = expect_version_not_allowed(f.decrypt(&name, &future, b"", b""), 4);
    assert!(reason.contains("latest version is 3"), "{reason}");

    // Not trimmed: lowering the minimum again re-allows version 1.
    update(min_dec(1)).unwrap();
    f.assert_decrypts(&name, &c1, b"", b"one");
}

#[test]
fn trimming_deletes_old_versions_for_good() {
    let f = fixture();
    let mut new = NewKey::new(key("trimmed"), KeyType::ChaCha20Poly1305);
    new.exportable = true;
    let name = f.create_with(new);
    let mut cts = vec![f.encrypt(&name, b"v1", b"", b"")];
    for v in 2..=4 {
        f.transit.rotate_key(&name).unwrap();
        cts.push(f.encrypt(&name, format!("v{v}").as_bytes(), b"", b""));
    }
    let trim = |v| f.transit.trim_key(&name, v);
    // Not above min_decryption_version (1), nor below what is already gone.
    expect_invalid(trim(2), "min_available_version");
    f.update(
        &name,
        KeyUpdate {
            min_decryption_version: Some(3),
            ..KeyUpdate::default()
        },
    )
    .unwrap();
    expect_invalid(trim(4), "min_available_version");
    expect_invalid(trim(0), "min_available_version");
    assert_eq!(
        versions_of(&f.transit.get_key(&name).unwrap().versions),
        [1, 2, 3, 4]
    );

    // Every version unwrapped before the trim...
    f.update(
        &name,
        KeyUpdate {
            min_decryption_version: Some(1),
            ..KeyUpdate::default()
        },
    )
    .unwrap();
    for (i, ct) in cts.iter().enumerate() {
        f.assert_decrypts(&name, ct, b"", format!("v{}", i + 1).as_bytes());
    }
    assert_eq!(f.transit.cached_versions(), 4);
    f.update(
        &name,
        KeyUpdate {
            min_decryption_version: Some(3),
            ..KeyUpdate::default()
        },
    )
    .unwrap();

    let info = trim(3).unwrap();
    assert_eq!(versions_of(&info.versions), [3, 4]);
    assert_eq!(info.policy.min_available_version, 3);
    assert!(f.store.stored(&name, 1).is_none() && f.store.stored(&name, 2).is_none());
    // ...and the trimmed ones left the cache.
    assert_eq!(f.transit.cached_versions(), 2);
    for (v, ct) in [(1, &cts[0]), (2, &cts[1])] {
        let reason = expect_version_not_allowed(f.decrypt(&name, ct, b"", b""), v);
        assert!(reason.contains("trimmed"), "{reason}");
        expect_version_not_allowed(f.rewrap(&name, ct, b"", b""), v);
    }
    f.assert_decrypts(&name, &cts[2], b"", b"v3");
    f.assert_decrypts(&name, &cts[3], b"", b"v4");
    let fresh = f.encrypt(&name, b"after", b"", b"");
    assert_eq!(version_of(&fresh), 4);
    f.assert_decrypts(&name, &fresh, b"", b"after");
    let exported: Vec<u32> = f
        .transit
        .export_key(&name, None)
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(exported, [3, 4]);
    expect_version_not_allowed(f.transit.export_key(&name, Some(2)), 2);

    // Trimmed versions cannot come back.
    expect_invalid(
        f.update(
            &name,
            KeyUpdate {
                min_decryption_version: Some(2),
                ..KeyUpdate::default()
            },
        ),
        "min_decryption_version",
    );
    expect_invalid(trim(2), "min_available_version");
    // Trimming to the same floor again removes nothing and is allowed.
    assert_eq!(versions_of(&trim(3).unwrap().versions), [3, 4]);
}

#[test]
fn exportable_cannot_be_turned_off_and_deletion_must_be_allowed() {
    let f = fixture();
    let mut new = NewKey::new(key("exp"), KeyType::Aes256Gcm96);
    new.exportable = true;
    let exp = f.create_with(new);
    let off = KeyUpdate {
        exportable: Some(false),
        ..KeyUpdate::default()
    };
    let reason = expect_not_permitted(f.update(&exp, off.clone()));
    assert!(reason.contains("exportable"), "{reason}");
    assert!(f.policy(&exp).exportable);
    let on = KeyUpdate {
        exportable: Some(true),
        ..KeyUpdate::default()
    };
    assert!(f.update(&exp, on.clone()).unwrap().exportable);

    let later = f.create("later", KeyType::Aes256Gcm96);
    expect_not_permitted(f.transit.export_key(&later, None));
    assert!(f.update(&later, on).unwrap().exportable);
    assert_eq!(f.transit.export_key(&later, None).unwrap().len(), 1);
    expect_not_permitted(f.update(&later, off));

    // Deletion.
    let doomed = f.create("doomed", KeyType::Aes256Gcm96);
    let ct = f.encrypt(&doomed, SECRET, b"", b"");
    let reason = expect_not_permitted(f.transit.delete_key(&doomed));
    assert!(reason.contains("deletion"), "{reason}");
    f.assert_decrypts(&doomed, &ct, b"", SECRET);
    let allow = KeyUpdate {
        deletion_allowed: Some(true),
        ..KeyUpdate::default()
    };
    f.update(&doomed, allow).unwrap();
    f.transit.delete_key(&doomed).unwrap();
    expect_not_found(f.transit.get_key(&doomed), &doomed);
    expect_not_found(f.decrypt(&doomed, &ct, b"", b""), &doomed);
    expect_not_found(f.transit.delete_key(&doomed), &doomed);
    assert!(f.store.key(&doomed).unwrap().is_none());
    assert!(f.store.versions(&doomed).unwrap().is_empty());

    // A new key of the same name is new material: the cache forgot the old.
    let again = f.create("doomed", KeyType::Aes256Gcm96);
    expect_decryption_failed(f.decrypt(&again, &ct, b"", b""), &again, 1);
    assert!(!f.policy(&again).deletion_allowed);
}

#[test]
fn auto_rotate_period_is_checked_on_update() {
    let f = fixture();
    let name = f.create("periodic", KeyType::Aes256Gcm96);
    let period = |p| KeyUpdate {
        auto_rotate_period: Some(p),
        ..KeyUpdate::default()
    };
    expect_invalid(
        f.update(&name, period(Some(HOUR / 2))),
        "auto_rotate_period",
    );
    assert_eq!(
        f.update(&name, period(Some(DAY)))
            .unwrap()
            .auto_rotate_period,
        Some(DAY)
    );
    assert_eq!(
        f.update(&name, period(None)).unwrap().auto_rotate_period,
        None
    );
}

// ----- 4. rewrap -----

#[test]
fn rewrap_moves_ciphertexts_to_the_latest_version() {
    let f = fixture();
    for key_type in AEAD_TYPES {
        let name = f.create(key_type.name(), key_type);
        let c1 = f.encrypt(&name, SECRET, b"ad", b"");
        f.transit.rotate_key(&name).unwrap();
        f.transit.rotate_key(&name).unwrap();
        let rewrapped = f.rewrap(&name, &c1, b"ad", b"").unwrap();
        assert_eq!(rewrapped.version, 3);
        assert!(rewrapped.value.starts_with("strongroom:v3:"), "{key_type}");
        f.assert_decrypts(&name, &rewrapped.value, b"ad", SECRET);
        expect_decryption_failed(f.decrypt(&name, &rewrapped.value, b"", b""), &name, 3);
        // Rewrap needs the same associated data.
        expect_decryption_failed(f.rewrap(&name, &c1, b"other", b""), &name, 1);
        expect_decryption_failed(f.rewrap(&name, &c1, b"", b""), &name, 1);
        // Rewrapping the latest gives a fresh ciphertext of the same plaintext.
        let again = f.rewrap(&name, &rewrapped.value, b"ad", b"").unwrap();
        assert_eq!(again.version, 3);
        assert_ne!(again.value, rewrapped.value);
        f.assert_decrypts(&name, &again.value, b"ad", SECRET);

        // Derived keys: rewrap needs the same context.
        let mut new = NewKey::new(key(&format!("derived-{key_type}")), key_type);
        new.derived = true;
        let derived = f.create_with(new);
        let c = f.encrypt(&derived, SECRET, b"", b"alice");
        f.transit.rotate_key(&derived).unwrap();
        expect_decryption_failed(f.rewrap(&derived, &c, b"", b"bob"), &derived, 1);
        let moved = f.rewrap(&derived, &c, b"", b"alice").unwrap();
        assert_eq!(moved.version, 2);
        f.assert_decrypts_in(&derived, &moved.value, b"", b"alice", SECRET);
        expect_decryption_failed(f.decrypt(&derived, &moved.value, b"", b"bob"), &derived, 2);
    }
}

// ----- 5. derived and convergent keys -----

#[test]
fn derived_keys_separate_contexts_and_convergent_keys_are_deterministic() {
    let f = fixture();
    for key_type in AEAD_TYPES {
        let mut new = NewKey::new(key(&format!("derived-{key_type}")), key_type);
        new.derived = true;
        let derived = f.create_with(new.clone());
        let alice = f.encrypt(&derived, SECRET, b"ad", b"alice");
        f.assert_decrypts_in(&derived, &alice, b"ad", b"alice", SECRET);
        let bob = f.encrypt(&derived, SECRET, b"ad", b"bob");
        f.assert_decrypts_in(&derived, &bob, b"ad", b"bob", SECRET);
        expect_decryption_failed(f.decrypt(&derived, &alice, b"ad", b"bob"), &derived, 1);
        expect_decryption_failed(f.decrypt(&derived, &bob, b"ad", b"alice"), &derived, 1);
        expect_decryption_failed(f.decrypt(&derived, &alice, b"ad", b"alicE"), &derived, 1);
        // Not convergent: equal inputs, different ciphertexts.
        assert_ne!(alice, f.encrypt(&derived, SECRET, b"ad", b"alice"));

        new.name = key(&format!("convergent-{key_type}"));
        new.convergent = true;
        let convergent = f.create_with(new);
        let enc = |plaintext: &[u8], aad: &[u8], context: &[u8]| {
            f.encrypt(&convergent, plaintext, aad, context)
        };
        let first = enc(SECRET, b"ad", b"alice");
        assert_eq!(first, enc(SECRET, b"ad", b"alice"), "{key_type}");
        let variants = [
            enc(b"TOP-SECRET-PLAINTEXT-1235", b"ad", b"alice"),
            enc(SECRET, b"ad", b"bob"),
            enc(SECRET, b"ae", b"alice"),
            enc(SECRET, b"", b"alice"),
        ];
        let first_body = body_of(&first);
        for variant in &variants {
            assert_ne!(variant, &first, "{key_type}");
            let body = body_of(variant);
            let n = nonce_len(key_type);
            assert_ne!(body[..n], first_body[..n], "{key_type}: same nonce");
        }
        f.assert_decrypts_in(&convergent, &first, b"ad", b"alice", SECRET);
        f.assert_decrypts_in(&convergent, &variants[1], b"ad", b"bob", SECRET);
        expect_decryption_failed(
            f.decrypt(&convergent, &first, b"ad", b"bob"),
            &convergent,
            1,
        );
        // A new version gives a new (still deterministic) ciphertext, and
        // rewrapping lands on exactly it.
        f.transit.rotate_key(&convergent).unwrap();
        let second = enc(SECRET, b"ad", b"alice");
        assert_ne!(second, first);
        assert_eq!(second, enc(SECRET, b"ad", b"alice"));
        let rewrapped = f.rewrap(&convergent, &first, b"ad", b"alice").unwrap();
        assert_eq!(rewrapped.value, second);

        // A plain key is never deterministic.
        let plain = f.create(&format!("plain-{key_type}"), key_type);
        assert_ne!(
            f.encrypt(&plain, SECRET, b"ad", b""),
            f.encrypt(&plain, SECRET, b"ad", b"")
        );
    }
}

// ----- 6. batches -----

#[test]
fn batch_items_fail_alone_and_keep_their_order() {
    let f = fixture();
    let name = f.create("batch", KeyType::XChaCha20Poly1305);
    let other = f.create("other", KeyType::XChaCha20Poly1305);
    let too_big = vec![7u8; MAX_INPUT_LEN + 1];
    let items = [
        EncryptItem {
            plaintext: b"first",
            ..EncryptItem::default()
        },
        EncryptItem {
            plaintext: &too_big,
            ..EncryptItem::default()
        },
        EncryptItem {
            plaintext: b"third",
            associated_data: b"ad",
            ..EncryptItem::default()
        },
    ];
    let mut results = f.transit.encrypt_batch(&name, &items).unwrap().into_iter();
    let first = results.next().unwrap().unwrap();
    expect_invalid(results.next().unwrap(), "plaintext");
    let third = results.next().unwrap().unwrap();
    assert!(results.next().is_none());
    f.assert_decrypts(&name, &first.value, b"", b"first");
    f.assert_decrypts(&name, &third.value, b"ad", b"third");

    let foreign = f.encrypt(&other, b"foreign", b"", b"");
    let random_body = Encoded {
        version: 1,
        bytes: vec![0x5a; 60],
    }
    .to_text(PREFIX);
    let item = dec_item;
    let items = [
        item("garbage", b""),
        item(&foreign, b""),
        item(&first.value, b""),
        item(&random_body, b""),
        item(&third.value, b"ad"),
    ];
    let results = f.transit.decrypt_batch(&name, &items).unwrap();
    assert_eq!(results.len(), 5);
    let mut results = results.into_iter();
    expect_invalid(results.next().unwrap(), "ciphertext");
    expect_decryption_failed(results.next().unwrap(), &name, 1);
    assert_eq!(results.next().unwrap().unwrap().value.as_slice(), b"first");
    expect_decryption_failed(results.next().unwrap(), &name, 1);
    assert_eq!(results.next().unwrap().unwrap().value.as_slice(), b"third");

    f.transit.rotate_key(&name).unwrap();
    let results = f.transit.rewrap_batch(&name, &items).unwrap();
    assert_eq!(results.len(), 5);
    let mut results = results.into_iter();
    expect_invalid(results.next().unwrap(), "ciphertext");
    expect_decryption_failed(results.next().unwrap(), &name, 1);
    let moved_first = results.next().unwrap().unwrap();
    expect_decryption_failed(results.next().unwrap(), &name, 1);
    let moved_third = results.next().unwrap().unwrap();
    assert_eq!((moved_first.version, moved_third.version), (2, 2));
    f.assert_decrypts(&name, &moved_first.value, b"", b"first");
    f.assert_decrypts(&name, &moved_third.value, b"ad", b"third");
}

// ----- 7. tampering -----

#[test]
fn any_change_to_a_ciphertext_fails_to_decrypt() {
    let f = fixture();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    for key_type in AEAD_TYPES {
        let name = f.create(&format!("a-{key_type}"), key_type);
        let other = f.create(&format!("b-{key_type}"), key_type);
        let ct = f.encrypt(&name, SECRET, b"aad", b"");
        let body = body_of(&ct);
        assert_eq!(body.len(), nonce_len(key_type) + SECRET.len() + TAG_LEN);
        let decrypt = |text: &str| f.decrypt(&name, text, b"aad", b"");
        f.assert_decrypts(&name, &ct, b"aad", SECRET);
        let text = |bytes: Vec<u8>| Encoded { version: 1, bytes }.to_text(PREFIX);

        // Every bit pattern change of every byte of the decoded body.
        for i in 0..body.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut changed = body.clone();
                changed[i] ^= mask;
                expect_decryption_failed(decrypt(&text(changed)), &name, 1);
            }
        }
        // Every truncation, and an extension.
        for len in 0..body.len() {
            let err = expect_err(decrypt(&text(body[..len].to_vec())));
            assert!(
                matches!(
                    err,
                    TransitError::DecryptionFailed { .. } | TransitError::InvalidInput { .. }
                ),
                "{len}: {err:?}"
            );
        }
        let mut longer = body.clone();
        longer.push(0);
        expect_decryption_failed(decrypt(&text(longer)), &name, 1);

        // Every one-character change of the base64 text.
        let start = ct.rfind(':').unwrap() + 1;
        let mut tried = 0;
        for i in start..ct.len() {
            for &c in ALPHABET {
                if c == ct.as_bytes()[i] {
                    continue;
                }
                let mut changed = ct.clone().into_bytes();
                changed[i] = c;
                let changed = String::from_utf8(changed).unwrap();
                let err = expect_err(decrypt(&changed));
                assert_not_shown(&format!("{err} {err:?}"), &body);
                tried += 1;
            }
        }
        assert!(tried > 64 * body.len(), "{tried}");

        // Other associated data.
        for aad in [&b""[..], b"aaD", b"aad\0"] {
            expect_decryption_failed(f.decrypt(&name, &ct, aad, b""), &name, 1);
        }
        // The same version number of another key of the same type.
        expect_decryption_failed(f.decrypt(&other, &ct, b"aad", b""), &other, 1);

        // Relabelled versions after a rotation.
        f.transit.rotate_key(&name).unwrap();
        let v2 = f.encrypt(&name, SECRET, b"aad", b"");
        let as_v2 = Encoded {
            version: 2,
            bytes: body.clone(),
        }
        .to_text(PREFIX);
        expect_decryption_failed(decrypt(&as_v2), &name, 2);
        let as_v1 = text(body_of(&v2));
        expect_decryption_failed(decrypt(&as_v1), &name, 1);
        f.assert_decrypts(&name, &ct, b"aad", SECRET);
        f.assert_decrypts(&name, &v2, b"aad", SECRET);
    }
}

#[test]
fn ciphertexts_are_bound_to_key_name_and_version_even_with_equal_material() {
    let f = fixture();
    let a = f.create("a", KeyType::Aes256Gcm96);
    let b = f.create("b", KeyType::Aes256Gcm96);
    // Give b's version 1 and a's version 2 the material of a's version 1.
    let a1 = f.store.stored(&a, 1).unwrap();
    f.store.put_version(&b, a1.clone());
    f.transit.rotate_key(&a).unwrap();
    let mut a2 = a1;
    a2.version = 2;
    f.store.put_version(&a, a2);
    f.transit.forget_keys();

    let ct = f.encrypt(&a, SECRET, b"", b"");
    assert_eq!(version_of(&ct), 2);
    let ct1 = Encoded {
        version: 1,
        bytes: body_of(&ct),
    }
    .to_text(PREFIX);
    // Same material, but the version and key name are authenticated.
    expect_decryption_failed(f.decrypt(&a, &ct1, b"", b""), &a, 1);
    expect_decryption_failed(f.decrypt(&b, &ct1, b"", b""), &b, 1);
    let from_b = f.encrypt(&b, SECRET, b"", b"");
    expect_decryption_failed(f.decrypt(&a, &from_b, b"", b""), &a, 1);
    f.assert_decrypts(&a, &ct, b"", SECRET);
    f.assert_decrypts(&b, &from_b, b"", SECRET);
}

#[test]
fn material_from_another_wrapping_key_is_refused() {
    let f = fixture();
    let name = f.create("wrapped", KeyType::Aes256Gcm96);
    let ct = f.encrypt(&name, SECRET, b"", b"");
    let material_error = |transit: &Transit| match expect_err(transit.decrypt(
        &name,
        DecryptItem {
            ciphertext: &ct,
            ..DecryptItem::default()
        },
    )) {
        TransitError::Material {
            version: 1, reason, ..
        } => reason,
        other => panic!("expected Material, got {other:?}"),
    };
    // Same label, another key: the wrapped record does not unwrap.
    let foreign = engine(
        f.store.clone(),
        TestKeys::with(KEK_LABEL, Arc::new(TestWrapper::new())),
        KEK_LABEL,
        TransitConfig::default(),
    );
    assert!(material_error(&foreign).contains("unwrap"));
    // Wrapped by a key the HSM does not hold: not even tried.
    let mut stored = f.store.stored(&name, 1).unwrap();
    stored.kek = "another-kek".into();
    f.store.put_version(&name, stored.clone());
    f.transit.forget_keys();
    let unwraps = f.wrapper.unwraps();
    assert!(material_error(&f.transit).contains("does not hold"));
    assert_eq!(f.wrapper.unwraps(), unwraps);
    stored.kek = KEK_LABEL.into();
    f.store.put_version(&name, stored);
    // A damaged record.
    let mut stored = f.store.stored(&name, 1).unwrap();
    stored.wrapped[WRAP_NONCE_LEN + 3] ^= 0x10;
    f.store.put_version(&name, stored);
    f.transit.forget_keys();
    assert!(material_error(&f.transit).contains("unwrap"));
}

// ----- 8. data keys -----

#[test]
fn data_keys_decrypt_to_their_plaintext() {
    let f = fixture();
    let name = f.create("datakeys", KeyType::Aes256Gcm96);
    let item = EncryptItem {
        plaintext: b"ignored",
        associated_data: b"ad",
        context: b"",
    };
    let mut seen = Vec::new();
    for bits in [128, 256, 512] {
        let data_key = f
            .transit
            .generate_data_key(&name, bits, false, item)
            .unwrap();
        assert_eq!(data_key.version, 1);
        assert!(data_key.ciphertext.starts_with("strongroom:v1:"));
        let plaintext = data_key.plaintext.clone().unwrap();
        assert_eq!(plaintext.len(), bits as usize / 8);
        assert!(plaintext.iter().any(|b| *b != 0));
        f.assert_decrypts(&name, &data_key.ciphertext, b"ad", &plaintext);
        expect_decryption_failed(f.decrypt(&name, &data_key.ciphertext, b"", b""), &name, 1);
        seen.push(plaintext);
    }
    let data_key = f.transit.generate_data_key(&name, 256, true, item).unwrap();
    assert!(data_key.plaintext.is_none());
    let opened = f.decrypt(&name, &data_key.ciphertext, b"ad", b"").unwrap();
    assert_eq!(opened.value.len(), 32);
    assert_ne!(opened.value, seen[1]);

    // Derived keys take the context; data keys follow rotation.
    let mut new = NewKey::new(key("derived"), KeyType::XChaCha20Poly1305);
    new.derived = true;
    let derived = f.create_with(new);
    f.transit.rotate_key(&derived).unwrap();
    let item = EncryptItem {
        context: b"tenant-7",
        ..EncryptItem::default()
    };
    let data_key = f
        .transit
        .generate_data_key(&derived, 128, false, item)
        .unwrap();
    assert_eq!(data_key.version, 2);
    let plaintext = data_key.plaintext.clone().unwrap();
    f.assert_decrypts_in(&derived, &data_key.ciphertext, b"", b"tenant-7", &plaintext);
    expect_decryption_failed(
        f.decrypt(&derived, &data_key.ciphertext, b"", b"tenant-8"),
        &derived,
        2,
    );
}

// ----- 9. the cache of unwrapped versions -----

#[test]
fn unwrapped_versions_are_cached_until_forgotten() {
    let f = fixture();
    let name = f.create("cached", KeyType::Aes256Gcm96);
    assert_eq!((f.wrapper.unwraps(), f.transit.cached_versions()), (0, 0));
    let ct = f.encrypt(&name, SECRET, b"", b"");
    assert_eq!((f.wrapper.unwraps(), f.transit.cached_versions()), (1, 1));
    f.encrypt(&name, SECRET, b"", b"");
    f.assert_decrypts(&name, &ct, b"", SECRET);
    assert_eq!(
        f.wrapper.unwraps(),
        1,
        "a cached version is not unwrapped again"
    );

    f.transit.forget_keys();
    assert_eq!(f.transit.cached_versions(), 0);
    f.assert_decrypts(&name, &ct, b"", SECRET);
    assert_eq!((f.wrapper.unwraps(), f.transit.cached_versions()), (2, 1));

    // Signing keys too; verification needs only the public key.
    let ed = f.create("ed", KeyType::Ed25519);
    let options = SignOptions::default();
    let sig = f.transit.sign(&ed, b"m", &options, None).unwrap().value;
    f.transit.sign(&ed, b"m", &options, None).unwrap();
    assert_eq!(f.wrapper.unwraps(), 3);
    f.transit.forget_keys();
    assert!(f.transit.verify(&ed, b"m", &sig, &options).unwrap().value);
    assert_eq!((f.wrapper.unwraps(), f.transit.cached_versions()), (3, 0));
}

#[test]
fn the_cache_never_holds_more_than_its_capacity() {
    let f = fixture_with(TransitConfig {
        cache_capacity: 2,
        ..TransitConfig::default()
    });
    let name = f.create("small-cache", KeyType::Aes256Gcm96);
    let mut cts = vec![f.encrypt(&name, b"v1", b"", b"")];
    for v in 2..=3 {
        f.transit.rotate_key(&name).unwrap();
        cts.push(f.encrypt(&name, format!("v{v}").as_bytes(), b"", b""));
        assert!(f.transit.cached_versions() <= 2);
    }
    f.transit.forget_keys();
    let base = f.wrapper.unwraps();
    // Least recently used goes first: 1 miss, 2 miss, 1 hit, 3 miss (evicts
    // 2), 1 hit, 2 miss (evicts 3), 3 miss (evicts 1).
    let mut expected_unwraps = base;
    for (v, miss) in [
        (1, true),
        (2, true),
        (1, false),
        (3, true),
        (1, false),
        (2, true),
        (3, true),
    ] {
        f.assert_decrypts(&name, &cts[v - 1], b"", format!("v{v}").as_bytes());
        expected_unwraps += usize::from(miss);
        assert_eq!(f.wrapper.unwraps(), expected_unwraps, "version {v}");
        assert!(f.transit.cached_versions() <= 2);
    }
    assert_eq!(f.transit.cached_versions(), 2);
    // Other keys share the same bound.
    for i in 0..3 {
        let other = f.create(&format!("other-{i}"), KeyType::ChaCha20Poly1305);
        f.encrypt(&other, b"x", b"", b"");
        assert_eq!(f.transit.cached_versions(), 2);
    }
}

// ----- 10. rotation report and automatic rotation -----

#[test]
fn rotate_due_and_rotation_report_follow_the_given_time() {
    let f = fixture();
    let mut new = NewKey::new(key("hourly"), KeyType::Aes256Gcm96);
    new.auto_rotate_period = Some(HOUR);
    let hourly = f.create_with(new);
    let manual = f.create("manual", KeyType::Ed25519);
    let now = SystemTime::now();
    let year = 365 * DAY;

    assert!(f.transit.rotation_report(now, year).unwrap().is_empty());
    assert!(f.transit.rotate_due(now + HOUR / 2).unwrap().is_empty());
    assert_eq!(f.policy(&hourly).latest_version, 1);

    let report = f.transit.rotation_report(now + 400 * DAY, year).unwrap();
    assert_eq!(report.len(), 2);
    for (entry, (name, key_type, period)) in report.iter().zip([
        (&hourly, KeyType::Aes256Gcm96, Some(HOUR)),
        (&manual, KeyType::Ed25519, None),
    ]) {
        assert_eq!(&entry.name, name);
        assert_eq!(entry.key_type, key_type);
        assert_eq!(entry.latest_version, 1);
        assert_eq!(entry.auto_rotate_period, period);
        assert_eq!(entry.rotated_at, f.policy(name).rotated_at);
        assert!(
            entry.age >= 400 * DAY && entry.age < 400 * DAY + Duration::from_secs(60),
            "{:?}",
            entry.age
        );
    }
    // Only keys older than the limit.
    let report = f.transit.rotation_report(now + 30 * DAY, year).unwrap();
    assert!(report.is_empty(), "{report:?}");
    // Compliance counts every key, overdue or not.
    let compliance = f.transit.rotation_compliance(now + 30 * DAY, year).unwrap();
    assert_eq!((compliance.keys, compliance.overdue.len()), (2, 0));
    let compliance = f
        .transit
        .rotation_compliance(now + 400 * DAY, year)
        .unwrap();
    assert_eq!((compliance.keys, compliance.overdue.len()), (2, 2));

    let rotated = f.transit.rotate_due(now + 2 * HOUR).unwrap();
    assert_eq!(rotated, std::slice::from_ref(&hourly));
    assert_eq!(f.policy(&hourly).latest_version, 2);
    assert_eq!(f.policy(&manual).latest_version, 1);
    let ct = f.encrypt(&hourly, b"x", b"", b"");
    assert_eq!(version_of(&ct), 2);
    // Just rotated: not due now.
    assert!(f.transit.rotate_due(SystemTime::now()).unwrap().is_empty());
}

// ----- 11. redaction -----

#[test]
fn errors_and_data_keys_never_show_plaintext() {
    let f = fixture();
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    let other = f.create("other", KeyType::Aes256Gcm96);
    let mut new = NewKey::new(key("derived"), KeyType::Aes256Gcm96);
    new.derived = true;
    let derived = f.create_with(new);
    let ed = f.create("ed", KeyType::Ed25519);
    let p256 = f.create("p256", KeyType::EcdsaP256);
    let mac = f.create("mac", KeyType::Hmac);
    let secret_text = std::str::from_utf8(SECRET).unwrap();
    let cycled = |len: usize| -> Vec<u8> { SECRET.iter().copied().cycle().take(len).collect() };
    let ct = f.encrypt(&aes, SECRET, b"ad", b"");
    // Request and result types show lengths and versions, never values.
    let item = EncryptItem {
        plaintext: SECRET,
        associated_data: SECRET,
        context: SECRET,
    };
    let opened = f
        .transit
        .decrypt(
            &aes,
            DecryptItem {
                ciphertext: &ct,
                associated_data: b"ad",
                context: b"",
            },
        )
        .unwrap();
    for shown in [format!("{item:?}"), format!("{opened:?}")] {
        assert!(
            !shown.contains(secret_text) && !shown.contains("84, 79, 80"),
            "{shown}"
        );
    }
    let item = enc_item;
    let t = &f.transit;
    let sealed = dec_item;
    let in_body = format!("strongroom:v1:{secret_text}");
    let in_version = format!("strongroom:v{secret_text}:AAAA");
    let b64_body = format!("strongroom:v9:{}", Base64::encode_string(SECRET));
    let raw_body = Encoded {
        version: 1,
        bytes: SECRET.to_vec(),
    }
    .to_text(PREFIX);
    let options = SignOptions::default();
    let prehashed = SignOptions {
        prehashed: true,
        ..options
    };
    let sha = HashAlgorithm::Sha256;
    let mut errors: Vec<TransitError> = vec![
        t.encrypt(&aes, item(&cycled(MAX_INPUT_LEN + 1), b"", b""), None)
            .unwrap_err(),
        t.encrypt(&aes, item(SECRET, &cycled(MAX_AAD_LEN + 1), b""), None)
            .unwrap_err(),
        t.encrypt(&derived, item(SECRET, b"", &cycled(MAX_AAD_LEN + 1)), None)
            .unwrap_err(),
        t.encrypt(&aes, item(SECRET, b"", SECRET), None)
            .unwrap_err(),
        t.encrypt(&derived, item(SECRET, SECRET, b""), None)
            .unwrap_err(),
        t.encrypt(&ed, item(SECRET, b"", b""), None).unwrap_err(),
        t.generate_data_key(&aes, 192, false, item(SECRET, b"", b""))
            .unwrap_err(),
        t.decrypt(&aes, sealed(&ct, b"wrong")).unwrap_err(),
        t.decrypt(&aes, sealed(&ct, SECRET)).unwrap_err(),
        t.decrypt(&other, sealed(&ct, b"ad")).unwrap_err(),
        t.decrypt(&aes, sealed(secret_text, b"ad")).unwrap_err(),
        t.decrypt(&aes, sealed(&in_body, b"ad")).unwrap_err(),
        t.decrypt(&aes, sealed(&in_version, b"ad")).unwrap_err(),
        t.decrypt(&aes, sealed(&b64_body, b"ad")).unwrap_err(),
        t.decrypt(&aes, sealed(&raw_body, b"ad")).unwrap_err(),
        t.rewrap(&aes, sealed(&ct, SECRET)).unwrap_err(),
        t.sign(
            &ed,
            SECRET,
            &SignOptions {
                hash: Some(sha),
                ..options
            },
            None,
        )
        .unwrap_err(),
        t.sign(&p256, SECRET, &prehashed, None).unwrap_err(),
        t.sign(&aes, SECRET, &options, None).unwrap_err(),
        t.verify(&ed, SECRET, &in_body, &options).unwrap_err(),
        t.hmac(&mac, &cycled(MAX_INPUT_LEN + 1), sha, None)
            .unwrap_err(),
        t.verify_hmac(&mac, SECRET, &b64_body, sha).unwrap_err(),
    ];
    let batch = t
        .decrypt_batch(&aes, &[sealed(&ct, b"wrong"), sealed(&raw_body, b"")])
        .unwrap();
    errors.extend(batch.into_iter().map(|r| r.unwrap_err()));
    // Versions that may no longer decrypt.
    t.rotate_key(&aes).unwrap();
    let min_decryption = KeyUpdate {
        min_decryption_version: Some(2),
        ..KeyUpdate::default()
    };
    t.update_key(&aes, min_decryption).unwrap();
    errors.push(t.decrypt(&aes, sealed(&ct, b"ad")).unwrap_err());
    t.trim_key(&aes, 2).unwrap();
    errors.push(t.decrypt(&aes, sealed(&ct, b"ad")).unwrap_err());

    let body = body_of(&ct);
    for err in &errors {
        for shown in [err.to_string(), format!("{err:?}")] {
            assert_not_shown(&shown, SECRET);
            assert_not_shown(&shown, &body);
        }
    }
    assert_eq!(errors.len(), 26);

    // Data keys: Debug redacts the key.
    let data_key = t
        .generate_data_key(&aes, 256, false, item(b"", b"", b""))
        .unwrap();
    let shown = format!("{data_key:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert_not_shown(&shown, data_key.plaintext.as_ref().unwrap());
    let plaintext = f.decrypt(&aes, &data_key.ciphertext, b"", b"").unwrap();
    assert_not_shown(&shown, &plaintext.value);
    let wrapped_only = t
        .generate_data_key(&aes, 256, true, item(b"", b"", b""))
        .unwrap();
    assert!(format!("{wrapped_only:?}").contains("plaintext: None"));
}

// ----- 12. export -----

#[test]
fn export_gives_raw_symmetric_keys_and_pkcs8_signing_keys() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let rng = SystemRandom::new();
    for key_type in ALL_KEY_TYPES {
        let mut new = NewKey::new(key(key_type.name()), key_type);
        new.exportable = true;
        let name = f.create_with(new);
        let exported = f.transit.export_key(&name, Some(1)).unwrap();
        assert_eq!(exported.len(), 1);
        assert_eq!(exported[0].0, 1);
        let der = exported[0].1.clone();
        assert_eq!(f.transit.export_key(&name, None).unwrap(), exported);
        f.transit.forget_keys();
        assert_eq!(
            f.transit.export_key(&name, None).unwrap(),
            exported,
            "{key_type}"
        );

        if !key_type.supports(Operation::Sign) {
            assert_eq!(der.len(), 32, "{key_type}");
            assert!(der.iter().any(|b| *b != 0));
            continue;
        }
        let spki = spki_of(&f.transit, &name, 1);
        let raw = raw_public_key(&spki);
        let public: Vec<u8> = match key_type {
            KeyType::Ed25519 => ring_sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                .unwrap()
                .public_key()
                .as_ref()
                .to_vec(),
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => {
                let algorithm = if key_type == KeyType::EcdsaP256 {
                    &ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &ring_sig::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                ring_sig::EcdsaKeyPair::from_pkcs8(algorithm, &der, &rng)
                    .unwrap()
                    .public_key()
                    .as_ref()
                    .to_vec()
            }
            _ => {
                let pair = ring_sig::RsaKeyPair::from_pkcs8(&der).unwrap();
                let bits = if key_type == KeyType::Rsa3072 {
                    3072
                } else {
                    4096
                };
                assert_eq!(pair.public().modulus_len() * 8, bits);
                pair.public().as_ref().to_vec()
            }
        };
        assert_eq!(public, raw, "{key_type}");

        // openssl reads the PKCS#8 and derives the stored SPKI from it.
        let d = dir.path();
        let file = format!("{key_type}.p8");
        std::fs::write(d.join(&file), &der).unwrap();
        let public_file = format!("{key_type}.spki");
        assert_openssl_ok(
            d,
            &[
                "pkey",
                "-inform",
                "DER",
                "-in",
                &file,
                "-pubout",
                "-outform",
                "DER",
                "-out",
                &public_file,
            ],
        );
        assert_eq!(
            std::fs::read(d.join(&public_file)).unwrap(),
            spki,
            "{key_type}"
        );
        let cut = format!("{key_type}.cut");
        std::fs::write(d.join(&cut), &der[..der.len() - 1]).unwrap();
        assert_openssl_fails(d, &["pkey", "-inform", "DER", "-in", &cut, "-noout"]);
    }

    // Several versions, each its own material; non-exportable keys refuse.
    let name = key(KeyType::ChaCha20Poly1305.name());
    f.transit.rotate_key(&name).unwrap();
    let all = f.transit.export_key(&name, None).unwrap();
    assert_eq!(all.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 2]);
    assert_ne!(all[0].1, all[1].1);
    expect_version_not_allowed(f.transit.export_key(&name, Some(3)), 3);
    let locked = f.create("locked", KeyType::Ed25519);
    let reason = expect_not_permitted(f.transit.export_key(&locked, None));
    assert!(reason.contains("not exportable"), "{reason}");
}

// ----- signatures and HMACs across versions -----

#[test]
fn signatures_and_hmacs_follow_key_versions() {
    let f = fixture();
    let options = SignOptions::default();
    let ed = f.create("ed", KeyType::Ed25519);
    let s1 = f.transit.sign(&ed, b"m", &options, None).unwrap();
    f.transit.rotate_key(&ed).unwrap();
    let s2 = f.transit.sign(&ed, b"m", &options, None).unwrap();
    assert_eq!((s1.version, s2.version), (1, 2));
    assert_ne!(spki_of(&f.transit, &ed, 1), spki_of(&f.transit, &ed, 2));
    let verify = |sig: &str| f.transit.verify(&ed, b"m", sig, &options);
    assert_eq!(
        verify(&s1.value).unwrap(),
        Versioned {
            value: true,
            version: 1
        }
    );
    assert_eq!(
        verify(&s2.value).unwrap(),
        Versioned {
            value: true,
            version: 2
        }
    );
    let relabelled = Encoded {
        version: 2,
        bytes: body_of(&s1.value),
    }
    .to_text(PREFIX);
    assert!(!verify(&relabelled).unwrap().value);
    expect_version_not_allowed(f.transit.sign(&ed, b"m", &options, Some(1)), 1);
    let update = |name: &KeyName, min_decryption, min_encryption| {
        f.update(
            name,
            KeyUpdate {
                min_decryption_version: Some(min_decryption),
                min_encryption_version: Some(min_encryption),
                ..KeyUpdate::default()
            },
        )
        .unwrap()
    };
    update(&ed, 1, 1);
    let old = f.transit.sign(&ed, b"m", &options, Some(1)).unwrap();
    assert_eq!(old.version, 1);
    assert!(verify(&old.value).unwrap().value);
    update(&ed, 2, 0);
    expect_version_not_allowed(verify(&s1.value), 1);

    let mac = f.create("mac", KeyType::Hmac);
    let sha = HashAlgorithm::Sha256;
    let h1 = f.transit.hmac(&mac, b"m", sha, None).unwrap();
    f.transit.rotate_key(&mac).unwrap();
    let h2 = f.transit.hmac(&mac, b"m", sha, None).unwrap();
    assert_eq!((h1.version, h2.version), (1, 2));
    assert_ne!(body_of(&h1.value), body_of(&h2.value));
    let check = |tag: &str| f.transit.verify_hmac(&mac, b"m", tag, sha);
    assert_eq!(
        check(&h1.value).unwrap(),
        Versioned {
            value: true,
            version: 1
        }
    );
    assert_eq!(
        check(&h2.value).unwrap(),
        Versioned {
            value: true,
            version: 2
        }
    );
    update(&mac, 2, 0);
    expect_version_not_allowed(check(&h1.value), 1);
}

// ----- 13. KEK rotation -----

const NEW_KEK: &str = "transit-kek-new";

/// What was made before a KEK rotation, to check after it.
struct Made {
    aes: KeyName,
    ciphertexts: Vec<String>,
    ed: KeyName,
    signature: String,
    mac: KeyName,
    tag: String,
}

/// An AES key with four versions and a ciphertext under each, an Ed25519
/// key with a signature, and an HMAC key with a tag: six versions in all.
fn make_keys(f: &Fixture) -> Made {
    let aes = f.create("aes", KeyType::Aes256Gcm96);
    let mut ciphertexts = vec![f.encrypt(&aes, SECRET, b"ad", b"")];
    for _ in 0..3 {
        f.transit.rotate_key(&aes).unwrap();
        ciphertexts.push(f.encrypt(&aes, SECRET, b"ad", b""));
    }
    let ed = f.create("ed", KeyType::Ed25519);
    let signature = f
        .transit
        .sign(&ed, b"m", &SignOptions::default(), None)
        .unwrap()
        .value;
    let mac = f.create("mac", KeyType::Hmac);
    let tag = f
        .transit
        .hmac(&mac, b"m", HashAlgorithm::Sha256, None)
        .unwrap()
        .value;
    Made {
        aes,
        ciphertexts,
        ed,
        signature,
        mac,
        tag,
    }
}

/// Everything made before still decrypts and verifies through `transit`.
#[track_caller]
fn assert_still_usable(transit: &Transit, made: &Made) {
    for ct in &made.ciphertexts {
        let opened = transit
            .decrypt(&made.aes, dec_item(ct, b"ad"))
            .unwrap_or_else(|e| panic!("{ct}: {e}"));
        assert!(opened.value.as_slice() == SECRET);
    }
    assert!(
        transit
            .verify(&made.ed, b"m", &made.signature, &SignOptions::default())
            .unwrap()
            .value
    );
    assert!(
        transit
            .verify_hmac(&made.mac, b"m", &made.tag, HashAlgorithm::Sha256)
            .unwrap()
            .value
    );
}

/// The KEK label of every stored version.
fn kek_labels(store: &MemoryStore) -> Vec<String> {
    store
        .lock()
        .values()
        .flat_map(|(_, versions)| versions.values().map(|v| v.kek.clone()))
        .collect()
}

/// Runs re-wrap steps of `limit` until finished; returns the steps.
fn rewrap_all(transit: &Transit, limit: usize) -> Vec<super::RewrapStep> {
    let mut steps = Vec::new();
    while transit.rewrap_pending() {
        let step = transit.rewrap_step(limit).unwrap();
        steps.push(step);
        assert!(steps.len() < 100, "the re-wrap does not finish: {steps:?}");
        if step.pass_done && !step.finished {
            break;
        }
    }
    steps
}

#[test]
fn a_kek_rotation_rewraps_every_version_under_the_new_kek() {
    let f = fixture();
    let made = make_keys(&f);
    // Nothing to do before a rotation.
    assert_eq!(rewrap_all(&f.transit, 10).len(), 1);
    assert!(!f.transit.rewrap_pending());

    let status = f
        .transit
        .rotate_kek(Some(NEW_KEK), SystemTime::now())
        .unwrap();
    assert_eq!(status.current, NEW_KEK);
    assert_eq!(status.to_rewrap, 6);
    assert!(status.rewrap_pending);
    let states: Vec<_> = status
        .keks
        .iter()
        .map(|k| (k.label.as_str(), k.state, k.versions))
        .collect();
    assert_eq!(
        states,
        [
            (KEK_LABEL, KekState::Retired, 6),
            (NEW_KEK, KekState::Current, 0)
        ]
    );
    // New versions are wrapped by the new KEK at once.
    f.transit.rotate_key(&made.aes).unwrap();
    assert_eq!(f.store.stored(&made.aes, 5).unwrap().kek, NEW_KEK);
    // Old ones still work meanwhile.
    f.transit.forget_keys();
    assert_still_usable(&f.transit, &made);

    let steps = rewrap_all(&f.transit, 4);
    assert_eq!(steps.iter().map(|s| s.rewrapped).sum::<u64>(), 6);
    assert_eq!(steps.iter().map(|s| s.failed).sum::<u64>(), 0);
    assert!(steps.last().unwrap().finished);
    assert!(kek_labels(&f.store).iter().all(|l| l == NEW_KEK));
    let status = f.transit.kek_status().unwrap();
    assert_eq!((status.to_rewrap, status.rewrap_pending), (0, false));

    // The old KEK can go; everything still opens under the new one alone,
    // in a fresh engine that has nothing cached.
    let status = f.transit.destroy_kek(KEK_LABEL, SystemTime::now()).unwrap();
    assert_eq!(status.keks[0].state, KekState::Destroyed);
    assert_eq!(*f.keys.destroyed.lock().unwrap(), [KEK_LABEL]);
    assert!(f.keys.get(KEK_LABEL).is_none());
    let fresh = engine(
        f.store.clone(),
        f.keys.clone(),
        KEK_LABEL,
        TransitConfig::default(),
    );
    assert_eq!(fresh.current_kek_label(), NEW_KEK);
    assert_still_usable(&fresh, &made);
}

#[test]
fn an_interrupted_rewrap_resumes_in_a_new_engine() {
    let f = fixture();
    let made = make_keys(&f);
    f.transit
        .rotate_kek(Some(NEW_KEK), SystemTime::now())
        .unwrap();
    let first = f.transit.rewrap_step(2).unwrap();
    assert_eq!((first.rewrapped, first.pass_done), (2, false));
    // The process dies here; the next one is configured with the old label.
    drop(f.transit);
    let resumed = engine(
        f.store.clone(),
        f.keys.clone(),
        KEK_LABEL,
        TransitConfig::default(),
    );
    assert_eq!(resumed.current_kek_label(), NEW_KEK);
    assert!(resumed.rewrap_pending());
    assert_eq!(resumed.kek_status().unwrap().to_rewrap, 4);
    let steps = rewrap_all(&resumed, 3);
    assert_eq!(steps.iter().map(|s| s.rewrapped).sum::<u64>(), 4);
    assert!(steps.last().unwrap().finished);
    f.keys.lose(KEK_LABEL);
    resumed.forget_keys();
    assert_still_usable(&resumed, &made);
}

#[test]
fn destroying_a_kek_is_refused_while_it_is_current_or_wraps_a_version() {
    let f = fixture();
    make_keys(&f);
    let now = SystemTime::now();
    let refused = |label: &str| match expect_err(f.transit.destroy_kek(label, now)) {
        TransitError::KekRefused { reason, .. } => reason,
        other => panic!("expected KekRefused, got {other:?}"),
    };
    assert!(refused(KEK_LABEL).contains("current"));
    assert!(matches!(
        expect_err(f.transit.destroy_kek("never-seen", now)),
        TransitError::KekNotFound { .. }
    ));
    f.transit.rotate_kek(Some(NEW_KEK), now).unwrap();
    assert!(refused(KEK_LABEL).contains("still wraps 6 key version(s)"));
    assert!(f.keys.get(KEK_LABEL).is_some());
    rewrap_all(&f.transit, 100);
    f.transit.destroy_kek(KEK_LABEL, now).unwrap();
    assert!(refused(KEK_LABEL).contains("destroyed already"));
    assert!(refused(NEW_KEK).contains("current"));
}

#[test]
fn rotate_kek_refuses_used_and_malformed_labels() {
    let f = fixture();
    let now = SystemTime::now();
    for bad in ["", "has space", "slash/", &"x".repeat(65)] {
        let err = expect_err(f.transit.rotate_kek(Some(bad), now));
        assert!(
            matches!(err, TransitError::InvalidInput { field: "label", .. }),
            "{bad:?}: {err:?}"
        );
    }
    // Known to the store, or only to the HSM: both refused, nothing changes.
    assert!(matches!(
        expect_err(f.transit.rotate_kek(Some(KEK_LABEL), now)),
        TransitError::KekExists { .. }
    ));
    f.keys.generate_wrapper("hsm-only").unwrap();
    assert!(matches!(
        expect_err(f.transit.rotate_kek(Some("hsm-only"), now)),
        TransitError::KekExists { .. }
    ));
    assert!(f.keys.get("hsm-only").is_some(), "someone else's key stays");
    assert_eq!(f.transit.current_kek_label(), KEK_LABEL);
    assert_eq!(f.transit.kek_status().unwrap().keks.len(), 1);
    // The default label names the time.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let status = f.transit.rotate_kek(None, at).unwrap();
    assert_eq!(status.current, "transit-kek-1800000000");
}

#[test]
fn a_rotation_the_store_refuses_leaves_no_key_in_the_hsm() {
    let f = fixture();
    // Another appliance on the same store rotated meanwhile.
    f.store
        .rotate_kek(KEK_LABEL, "elsewhere", SystemTime::now())
        .unwrap();
    let err = expect_err(f.transit.rotate_kek(Some(NEW_KEK), SystemTime::now()));
    assert!(
        matches!(&err, TransitError::KekRefused { reason, .. } if reason.contains("retry")),
        "{err:?}"
    );
    assert!(f.keys.get(NEW_KEK).is_none());
    assert_eq!(*f.keys.destroyed.lock().unwrap(), [NEW_KEK]);
    assert_eq!(f.transit.current_kek_label(), KEK_LABEL);
}

#[test]
fn unreadable_versions_are_reported_and_do_not_stop_the_rest() {
    let f = fixture();
    let made = make_keys(&f);
    let mut damaged = f.store.stored(&made.aes, 2).unwrap();
    damaged.wrapped[WRAP_NONCE_LEN + 1] ^= 1;
    f.store.put_version(&made.aes, damaged);
    f.transit
        .rotate_kek(Some(NEW_KEK), SystemTime::now())
        .unwrap();
    let steps = rewrap_all(&f.transit, 2);
    let last = steps.last().unwrap();
    assert!(last.pass_done && !last.finished, "{steps:?}");
    assert_eq!(steps.iter().map(|s| s.rewrapped).sum::<u64>(), 5);
    assert_eq!(steps.iter().map(|s| s.failed).sum::<u64>(), 1);
    let status = f.transit.kek_status().unwrap();
    assert_eq!((status.to_rewrap, status.rewrap_pending), (1, true));
    assert!(matches!(
        expect_err(f.transit.destroy_kek(KEK_LABEL, SystemTime::now())),
        TransitError::KekRefused { .. }
    ));
    // A retired KEK the HSM lost: its versions count as failed, every pass.
    f.keys.lose(KEK_LABEL);
    let fresh = engine(
        f.store.clone(),
        f.keys.clone(),
        KEK_LABEL,
        TransitConfig::default(),
    );
    let step = fresh.rewrap_step(10).unwrap();
    assert_eq!(
        (step.failed, step.pass_done, step.finished),
        (1, true, false)
    );
    assert!(fresh.rewrap_pending());
}
