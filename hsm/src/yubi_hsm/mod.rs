//! A YubiHSM2 as a [`KeyStore`], spoken to natively through the `yubihsm`
//! crate (over `yubihsm-connector`'s HTTP API or USB), not through Yubico's
//! PKCS#11 shim.
//!
//! - Asymmetric keys (ECDSA P-256/P-384, Ed25519, RSA 2048/3072/4096) are
//!   generated inside the device with one signing capability each and
//!   without `exportable-under-wrap`, so they can sign and never leave it.
//!   Object ids are drawn from the device's generator; labels (at most 40
//!   bytes on this device) are unique because we refuse a taken one.
//! - A key is found by label and public key, must be sign-only (exactly its
//!   one signing capability, so never exportable), and must sign a probe
//!   that the public key verifies.
//! - ECDSA digests are computed here and the device returns DER signatures;
//!   Ed25519 signs the whole message; RSA signs PKCS#1 v1.5 with SHA-256
//!   (the only RSA scheme the crate exposes).
//! - Wrapping keys ([`wrap_key`]) are AES-256-CCM wrap-key objects
//!   generated in the device with exactly the `wrap-data` and `unwrap-data`
//!   capabilities and no delegated ones, found by label (several with one
//!   label are refused). Transit's material is sent to the device for one
//!   `WrapData` or `UnwrapData` command and never stored there; larger
//!   material than one command carries is wrapped in bound parts.
//! - Every call runs on the session pool of [`pool`], bounded well below the
//!   device's 16 sessions, which replaces sessions before the device's idle
//!   timeout can bite and recovers from lost ones.

mod pool;
mod wrap_key;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;
use yubihsm::asymmetric::{self, Algorithm as AsymmetricAlgorithm};
use yubihsm::object::{self, Filter, Label};
use yubihsm::{Capability, Connector, Domain};
use zeroize::Zeroizing;

pub use self::pool::{IdleClock, MAX_SESSIONS, REFRESH_AFTER, SystemClock};
use self::pool::{Pool, Retry};
pub use self::wrap_key::YubiHsmWrappingKey;
use crate::RandomSource;
use crate::algorithm::{KeySpec, SignatureAlgorithm};
use crate::error::{Error, Result};
use crate::key_pair::check_label;
use crate::pin::Pin;
use crate::public_key::PublicKey;
use crate::store::{KeyStore, SigningKey};
use crate::token::TokenStatus;

/// Longest label a YubiHSM2 object can carry, in bytes.
pub const MAX_LABEL_LEN: usize = object::LABEL_SIZE;

/// Longest message a YubiHSM2 signs with Ed25519, in bytes. Ed25519 sends
/// the whole message (ECDSA and RSA send a digest), and a device message is
/// at most 2048 bytes: 3 of header, 1 of session id and 8 of MAC around an
/// AES-CBC ciphertext (whole 16-byte blocks, at least 1 byte of padding)
/// of the command's 3-byte header, the 2-byte key id and the message, so
/// at most 2032 - 1 - 5 bytes of message fit.
pub const MAX_ED25519_MESSAGE_LEN: usize = 2026;

/// Most random bytes asked of the device in one command.
const RANDOM_CHUNK: usize = 1024;

/// How Strongroom reaches a YubiHSM2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YubiHsmConnector {
    /// Through `yubihsm-connector`'s HTTP API, e.g. `127.0.0.1:12345`.
    Http {
        /// Host name or address of the connector.
        addr: String,
        /// Its port (12345 by default).
        port: u16,
    },
    /// Directly over USB: the device with this serial number, or the only
    /// one present.
    Usb {
        /// The device's serial number (10 digits).
        serial: Option<String>,
    },
}

impl std::fmt::Display for YubiHsmConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            YubiHsmConnector::Http { addr, port } => write!(f, "yubihsm http://{addr}:{port}"),
            YubiHsmConnector::Usb { serial: Some(s) } => write!(f, "yubihsm usb serial {s}"),
            YubiHsmConnector::Usb { serial: None } => f.write_str("yubihsm usb"),
        }
    }
}

/// How long one command may take, over HTTP or USB, before it fails.
/// Generating an RSA key, 4096-bit above all, can keep the device busy far
/// longer than the crate's defaults (5 s over HTTP, 30 s over USB). The cost: a connector that hangs without closing its connection
/// fails a request only after this long (a refused or closed connection
/// fails at once).
const COMMAND_TIMEOUT_MS: u64 = 120_000;

/// How Strongroom uses a YubiHSM2 once reached. The authentication key id
/// is held as a secret, like the password: `Debug` redacts it, and no error
/// or log line of ours names it.
#[derive(Clone)]
pub struct YubiHsmConfig {
    /// The authentication key's object id (a secret).
    pub auth_key_id: u16,
    /// The domain (1 to 16) keys are generated in; the authentication key
    /// must have access to it.
    pub domain: u8,
    /// Sessions the pool may hold, 1 to [`MAX_SESSIONS`].
    pub sessions: usize,
    /// How long a caller waits for a free session before [`Error::PoolTimeout`].
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for YubiHsmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubiHsmConfig")
            .field("auth_key_id", &"<redacted>")
            .field("domain", &self.domain)
            .field("sessions", &self.sessions)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

impl Default for YubiHsmConfig {
    /// Authentication key 1 (the factory default), domain 1, 4 sessions, 30 s.
    fn default() -> Self {
        YubiHsmConfig {
            auth_key_id: 1,
            domain: 1,
            sessions: 4,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// A YubiHSM2, authenticated, with a bounded pool of sessions. Cheap to
/// clone; clones share the pool. All calls block.
#[derive(Clone)]
pub struct YubiHsm {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    domain: Domain,
    /// Serialises "is this label free?" with the creation that relies on it.
    create_lock: Mutex<()>,
}

impl YubiHsm {
    /// Reaches the device through `connector` and authenticates with the
    /// authentication key `config.auth_key_id` and its `password` (checked
    /// by opening a session now: [`Error::AuthenticationFailed`] if refused).
    pub fn open(
        connector: &YubiHsmConnector,
        password: Pin,
        config: YubiHsmConfig,
    ) -> Result<Self> {
        Self::open_with_clock(connector, password, config, Arc::new(SystemClock))
    }

    /// Like [`YubiHsm::open`], measuring session idleness on `clock`.
    pub fn open_with_clock(
        connector: &YubiHsmConnector,
        password: Pin,
        config: YubiHsmConfig,
        clock: Arc<dyn IdleClock>,
    ) -> Result<Self> {
        let name = connector.to_string();
        let factory: pool::ConnectorFactory = match connector {
            YubiHsmConnector::Http { addr, port } => {
                let http = yubihsm::HttpConfig {
                    addr: addr.clone(),
                    port: *port,
                    timeout_ms: COMMAND_TIMEOUT_MS,
                };
                // One connection per session, so sessions work side by side.
                Box::new(move || Connector::http(&http))
            }
            YubiHsmConnector::Usb { serial } => {
                let serial = match serial {
                    Some(s) => Some(s.parse().map_err(|_| {
                        Error::InvalidInput(format!("'{s}' is not a YubiHSM2 serial number"))
                    })?),
                    None => None,
                };
                // The device can be claimed once: every session shares one connection.
                let usb = Connector::usb(&yubihsm::UsbConfig {
                    serial,
                    timeout_ms: COMMAND_TIMEOUT_MS,
                });
                Box::new(move || usb.clone())
            }
        };
        Self::open_with(name, factory, password, config, clock)
    }

    /// Like [`YubiHsm::open`], over a connector made by the caller (another
    /// transport, or a simulated device in tests), measuring idleness on
    /// `clock`. Every session shares clones of `connector`.
    pub fn open_with_connector(
        name: &str,
        connector: Connector,
        password: Pin,
        config: YubiHsmConfig,
        clock: Arc<dyn IdleClock>,
    ) -> Result<Self> {
        Self::open_with(
            name.to_string(),
            Box::new(move || connector.clone()),
            password,
            config,
            clock,
        )
    }

    fn open_with(
        name: String,
        connect: pool::ConnectorFactory,
        password: Pin,
        config: YubiHsmConfig,
        clock: Arc<dyn IdleClock>,
    ) -> Result<Self> {
        if password.is_empty() {
            return Err(Error::InvalidInput(format!(
                "empty password for the authentication key of {name}"
            )));
        }
        if !(1..=MAX_SESSIONS).contains(&config.sessions) {
            return Err(Error::InvalidInput(format!(
                "a YubiHSM2 pool holds 1 to {MAX_SESSIONS} sessions (the device has 16), not {}",
                config.sessions
            )));
        }
        let domain = Domain::at(usize::from(config.domain)).map_err(|_| {
            Error::InvalidInput(format!(
                "YubiHSM2 domains are 1 to 16, not {}",
                config.domain
            ))
        })?;
        // PBKDF2 of the password, as yubihsm-shell derives it; the derived
        // key is wiped when the pool goes, and the password now.
        let credentials = yubihsm::Credentials::from_password(
            config.auth_key_id,
            password.secret().expose_secret().as_bytes(),
        );
        drop(password);
        let pool = Pool::new(
            name,
            connect,
            credentials,
            config.sessions,
            config.acquire_timeout,
            clock,
        );
        pool.check_login()?;
        Ok(YubiHsm {
            inner: Arc::new(Inner {
                pool,
                domain,
                create_lock: Mutex::new(()),
            }),
        })
    }

    /// The device as named in errors and logs.
    pub fn name(&self) -> &str {
        &self.inner.pool.name
    }

    /// Sessions held on the device now (open, or discarded as lost and not
    /// yet timed out there), and sessions opened since the device was opened.
    pub fn session_usage(&self) -> (usize, u64) {
        self.inner.pool.usage()
    }

    fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Random bytes from the device's generator.
    pub fn random(&self, len: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; len];
        self.fill_random(&mut out)?;
        Ok(out)
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<()> {
        for chunk in buf.chunks_mut(RANDOM_CHUNK) {
            let bytes = Zeroizing::new(self.pool().run(
                "get pseudo random",
                None,
                Retry::Idempotent,
                |c| c.get_pseudo_random(chunk.len()),
            )?);
            if bytes.len() != chunk.len() {
                return Err(Error::Unavailable {
                    token: self.name().to_string(),
                    reason: format!(
                        "asked for {} random bytes, got {}",
                        chunk.len(),
                        bytes.len()
                    ),
                });
            }
            chunk.copy_from_slice(&bytes);
        }
        Ok(())
    }

    fn label(&self, label: &str) -> Result<Label> {
        check_label(label)?;
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::InvalidInput(format!(
                "YubiHSM2 labels are at most {MAX_LABEL_LEN} bytes, '{label}' has {}",
                label.len()
            )));
        }
        Label::from_bytes(label.as_bytes())
            .map_err(|e| Error::InvalidInput(format!("label '{label}': {e}")))
    }

    /// Objects of `object_type` (any type if `None`) labelled `label`.
    fn objects_labelled(
        &self,
        label: &str,
        object_type: Option<object::Type>,
    ) -> Result<Vec<object::Entry>> {
        let mut filters = vec![Filter::Label(self.label(label)?)];
        filters.extend(object_type.map(Filter::Type));
        self.pool()
            .run("list objects", Some(label), Retry::Idempotent, |c| {
                c.list_objects(&filters)
            })
    }

    /// A free object id for a new object of type `kind` labelled `label`,
    /// and the lock that keeps it (and the label) free until the object is
    /// made: [`Error::LabelExists`] if an object carries the label.
    fn reserve(
        &self,
        label: &str,
        kind: object::Type,
    ) -> Result<(std::sync::MutexGuard<'_, ()>, object::Id)> {
        let creating = self
            .inner
            .create_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.ensure_label_free(label)?;
        let id = self.free_id(kind)?;
        Ok((creating, id))
    }

    /// Refuses, with [`Error::LabelExists`], a label any object carries.
    pub fn ensure_label_free(&self, label: &str) -> Result<()> {
        if self.objects_labelled(label, None)?.is_empty() {
            Ok(())
        } else {
            Err(Error::LabelExists {
                token: self.name().to_string(),
                label: label.to_string(),
            })
        }
    }

    /// A random object id no object of `object_type` uses.
    fn free_id(&self, object_type: object::Type) -> Result<object::Id> {
        for _ in 0..16 {
            let bytes = self.random(2)?;
            let id = u16::from_be_bytes([bytes[0], bytes[1]]);
            if id == 0 || id == 0xffff {
                continue;
            }
            let taken = self
                .pool()
                .run("list objects", None, Retry::Idempotent, |c| {
                    c.list_objects(&[Filter::Id(id), Filter::Type(object_type)])
                })?;
            if taken.is_empty() {
                return Ok(id);
            }
        }
        Err(Error::Unavailable {
            token: self.name().to_string(),
            reason: "no free object id found in 16 random draws".into(),
        })
    }

    /// The one object among `ids`, those found for `label` (and, with
    /// `with_public_key`, for a public key): [`Error::KeyNotFound`] if there
    /// is none, [`Error::AmbiguousKey`] if there are several.
    fn the_one(
        &self,
        label: &str,
        ids: &[object::Id],
        with_public_key: bool,
    ) -> Result<object::Id> {
        match ids {
            [id] => Ok(*id),
            [] => Err(self.key_not_found(label, with_public_key)),
            many => Err(Error::AmbiguousKey {
                token: self.name().to_string(),
                label: label.to_string(),
                count: many.len(),
            }),
        }
    }

    /// What the device says of object `id` of type `kind`, labelled `label`.
    fn object_info(&self, label: &str, id: object::Id, kind: object::Type) -> Result<object::Info> {
        self.pool()
            .run("get object info", Some(label), Retry::Idempotent, |c| {
                c.get_object_info(id, kind)
            })
    }

    fn key_not_found(&self, label: &str, with_public_key: bool) -> Error {
        Error::KeyNotFound {
            token: self.name().to_string(),
            label: label.to_string(),
            with_public_key,
        }
    }

    /// Generates a sign-only, non-exportable key pair in the device.
    pub fn generate_key_pair(&self, label: &str, spec: KeySpec) -> Result<YubiHsmKey> {
        let label_bytes = self.label(label)?;
        let capability = signing_capability(spec);
        let algorithm = match spec {
            KeySpec::EcP256 => AsymmetricAlgorithm::EcP256,
            KeySpec::EcP384 => AsymmetricAlgorithm::EcP384,
            KeySpec::Ed25519 => AsymmetricAlgorithm::Ed25519,
            KeySpec::Rsa { bits: 2048 } => AsymmetricAlgorithm::Rsa2048,
            KeySpec::Rsa { bits: 3072 } => AsymmetricAlgorithm::Rsa3072,
            KeySpec::Rsa { bits: 4096 } => AsymmetricAlgorithm::Rsa4096,
            KeySpec::Rsa { bits } => {
                return Err(Error::InvalidInput(format!(
                    "RSA keys must be 2048, 3072 or 4096 bits, not {bits}"
                )));
            }
        };
        let (_creating, id) = self.reserve(label, object::Type::AsymmetricKey)?;
        // One signing capability and nothing else: in particular no
        // EXPORTABLE_UNDER_WRAP, so the key never leaves the device.
        self.pool()
            .run("generate asymmetric key", Some(label), Retry::Once, |c| {
                c.generate_asymmetric_key(
                    id,
                    label_bytes.clone(),
                    self.inner.domain,
                    capability,
                    algorithm,
                )
            })?;
        let public_key = self.public_key_of(label, id)?;
        tracing::info!(hsm = %self.name(), key = label, id, spec = %spec, "generated key pair");
        Ok(YubiHsmKey {
            hsm: self.clone(),
            label: label.to_string(),
            id,
            public_key,
        })
    }

    fn public_key_of(&self, label: &str, id: object::Id) -> Result<PublicKey> {
        let public = self
            .pool()
            .run("get public key", Some(label), Retry::Idempotent, |c| {
                c.get_public_key(id)
            })?;
        public_key_from_device(&public).map_err(|reason| Error::PublicKey {
            label: label.to_string(),
            reason,
        })
    }

    /// Finds the one key pair labelled `label` whose public key is
    /// `public_key`; see [`KeyStore::find_signing_key`]. A key that may do
    /// anything but sign with its one signing capability (export under
    /// wrap, derive, decrypt, another scheme) is refused.
    pub fn find_key_pair(&self, label: &str, public_key: &PublicKey) -> Result<YubiHsmKey> {
        let mut matches = Vec::new();
        for entry in self.objects_labelled(label, Some(object::Type::AsymmetricKey))? {
            // A device failure is reported as such (never as "not found",
            // which could also hide a second match); only a key of a type
            // we cannot use is simply not the one asked for.
            match self.public_key_of(label, entry.object_id) {
                Ok(candidate) if candidate == *public_key => matches.push(entry.object_id),
                Ok(_) | Err(Error::PublicKey { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let id = self.the_one(label, &matches, true)?;
        let info = self.object_info(label, id, object::Type::AsymmetricKey)?;
        let signing = signing_capability(public_key.spec());
        if info.capabilities != signing {
            return Err(Error::Unsupported {
                token: self.name().to_string(),
                what: format!(
                    "key '{label}' with capabilities {:?}: keys must be sign-only (exactly {signing:?}) \
                     and never leave the device (no exportable-under-wrap)",
                    info.capabilities
                ),
            });
        }
        let key = YubiHsmKey {
            hsm: self.clone(),
            label: label.to_string(),
            id,
            public_key: public_key.clone(),
        };
        // Prove the private key belongs to the public key before anyone relies on it.
        let algorithm = key.spec().default_signature_algorithm();
        let probe = b"strongroom: key pair binding check";
        let signature = key.sign(algorithm, probe)?;
        key.public_key
            .verify(algorithm, probe, &signature)
            .map_err(|_| Error::BadSignature {
                label: label.to_string(),
                algorithm: format!("{algorithm}; the private key does not match the public key"),
            })?;
        Ok(key)
    }
}

impl std::fmt::Debug for YubiHsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubiHsm")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// The one capability a key of `spec` signs with here: ECDSA, EdDSA, or
/// RSA PKCS#1 v1.5 (the only RSA scheme we use on the device).
fn signing_capability(spec: KeySpec) -> Capability {
    match spec {
        KeySpec::EcP256 | KeySpec::EcP384 => Capability::SIGN_ECDSA,
        KeySpec::Ed25519 => Capability::SIGN_EDDSA,
        KeySpec::Rsa { .. } => Capability::SIGN_PKCS,
    }
}

/// Our public key from the device's: `x || y` for ECDSA, the 32 bytes for
/// Ed25519, the modulus for RSA (whose public exponent is always 65537).
fn public_key_from_device(
    public: &asymmetric::PublicKey,
) -> std::result::Result<PublicKey, String> {
    let bytes = public.as_slice();
    let ec = |spec| {
        let mut point = Vec::with_capacity(bytes.len() + 1);
        point.push(0x04);
        point.extend_from_slice(bytes);
        PublicKey::from_ec_point(spec, &point)
    };
    match public.algorithm {
        AsymmetricAlgorithm::EcP256 => ec(KeySpec::EcP256),
        AsymmetricAlgorithm::EcP384 => ec(KeySpec::EcP384),
        AsymmetricAlgorithm::Ed25519 => PublicKey::from_ed25519(bytes),
        AsymmetricAlgorithm::Rsa2048
        | AsymmetricAlgorithm::Rsa3072
        | AsymmetricAlgorithm::Rsa4096 => PublicKey::from_rsa(bytes, &[0x01, 0x00, 0x01]),
        other => Err(format!("unsupported key algorithm {other:?}")),
    }
}

/// A key pair inside a YubiHSM2; see [`YubiHsm::generate_key_pair`].
#[derive(Clone)]
pub struct YubiHsmKey {
    hsm: YubiHsm,
    label: String,
    id: object::Id,
    public_key: PublicKey,
}

impl YubiHsmKey {
    /// The key's object id in the device.
    pub fn id(&self) -> u16 {
        self.id
    }
}

impl SigningKey for YubiHsmKey {
    fn label(&self) -> &str {
        &self.label
    }

    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn supports(&self, algorithm: SignatureAlgorithm) -> Result<()> {
        if !algorithm.fits(self.spec()) {
            return Err(Error::AlgorithmMismatch {
                label: self.label.clone(),
                key: self.spec().to_string(),
                algorithm: algorithm.to_string(),
            });
        }
        if matches!(self.spec(), KeySpec::Rsa { .. })
            && algorithm != SignatureAlgorithm::RsaPkcs1Sha256
        {
            return Err(Error::Unsupported {
                token: self.hsm.name().to_string(),
                what: format!(
                    "{algorithm} for key '{}' (RSA keys in a YubiHSM2 sign with rsa-pkcs1-sha256)",
                    self.label
                ),
            });
        }
        Ok(())
    }

    fn sign(&self, algorithm: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        use SignatureAlgorithm::*;
        self.supports(algorithm)?;
        let (id, label) = (self.id, Some(self.label.as_str()));
        let pool = self.hsm.pool();
        match algorithm {
            EcdsaP256Sha256 | EcdsaP384Sha384 => {
                let hash = if algorithm == EcdsaP256Sha256 {
                    &ring::digest::SHA256
                } else {
                    &ring::digest::SHA384
                };
                let digest = ring::digest::digest(hash, message);
                // The device answers with a DER Ecdsa-Sig-Value.
                pool.run("sign ECDSA", label, Retry::Idempotent, |c| {
                    c.sign_ecdsa_prehash_raw(id, digest.as_ref())
                })
            }
            // Refused here, not by the device: a message it cannot carry is
            // a bad request, never a lost session to recover from.
            Ed25519 if message.len() > MAX_ED25519_MESSAGE_LEN => {
                Err(Error::InvalidInput(format!(
                    "key '{}' in {}: a YubiHSM2 signs Ed25519 messages of at most \
                 {MAX_ED25519_MESSAGE_LEN} bytes, this one has {}",
                    self.label,
                    self.hsm.name(),
                    message.len()
                )))
            }
            Ed25519 => pool
                .run("sign EdDSA", label, Retry::Idempotent, |c| {
                    c.sign_ed25519(id, message)
                })
                .map(|s| s.to_bytes().to_vec()),
            RsaPkcs1Sha256 => pool
                .run("sign PKCS#1 v1.5", label, Retry::Idempotent, |c| {
                    c.sign_rsa_pkcs1v15_sha256(id, message)
                })
                .map(|s| s.into_vec()),
            other => Err(Error::Unsupported {
                token: self.hsm.name().to_string(),
                what: format!("{other} (RSA keys in a YubiHSM2 sign with rsa-pkcs1-sha256)"),
            }),
        }
    }
}

impl std::fmt::Debug for YubiHsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubiHsmKey")
            .field("hsm", &self.hsm.name())
            .field("label", &self.label)
            .field("id", &self.id)
            .field("public_key", &self.public_key)
            .finish()
    }
}

impl RandomSource for YubiHsm {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        self.fill_random(buf)
    }
}

impl KeyStore for YubiHsm {
    fn name(&self) -> &str {
        YubiHsm::name(self)
    }

    fn generate_signing_key(&self, label: &str, spec: KeySpec) -> Result<Arc<dyn SigningKey>> {
        Ok(Arc::new(self.generate_key_pair(label, spec)?))
    }

    fn find_signing_key(&self, label: &str, public_key: &PublicKey) -> Result<Arc<dyn SigningKey>> {
        Ok(Arc::new(self.find_key_pair(label, public_key)?))
    }

    fn status(&self) -> TokenStatus {
        if self.inner.pool.is_closed() {
            TokenStatus::Unavailable {
                reason: "closed".into(),
            }
        } else {
            TokenStatus::Ready
        }
    }

    fn close(&self) {
        self.inner.pool.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HsmSigner;

    /// MockHsm cannot hold RSA keys, so the RSA key here is one the device
    /// is never asked about: the refusal must come before any command.
    #[test]
    fn signers_for_schemes_the_device_lacks_are_refused_at_construction() {
        let hsm = YubiHsm::open_with_connector(
            "yubihsm mockhsm",
            Connector::mockhsm(),
            Pin::new("password"),
            YubiHsmConfig::default(),
            Arc::new(SystemClock),
        )
        .expect("MockHsm");
        let mut modulus = vec![0xc5; 256];
        modulus[255] |= 1;
        let public_key =
            PublicKey::from_rsa(&modulus, &[0x01, 0x00, 0x01]).expect("RSA public key");
        let key: Arc<dyn SigningKey> = Arc::new(YubiHsmKey {
            hsm: hsm.clone(),
            label: "rsa-ca".into(),
            id: 0x0101,
            public_key,
        });
        for algorithm in SignatureAlgorithm::ALL
            .into_iter()
            .filter(|a| a.fits(key.spec()))
        {
            let built = HsmSigner::new(Arc::clone(&key), algorithm);
            if algorithm == SignatureAlgorithm::RsaPkcs1Sha256 {
                built.expect("the one RSA scheme the device signs with");
            } else {
                let err = built.expect_err("refused when built");
                assert!(
                    matches!(err, Error::Unsupported { .. }),
                    "{algorithm}: {err}"
                );
                assert!(err.to_string().contains("rsa-pkcs1-sha256"), "{err}");
            }
        }
        let err = HsmSigner::new(Arc::clone(&key), SignatureAlgorithm::Ed25519)
            .expect_err("does not fit");
        assert!(matches!(err, Error::AlgorithmMismatch { .. }), "{err}");
        // Nothing was asked of the device beyond the login.
        assert_eq!(hsm.session_usage(), (1, 1));
    }
}
