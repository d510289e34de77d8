//! Transit encryption for Strongroom: encryption as a service under named,
//! versioned keys whose material is only ever unwrapped in memory.
//!
//! - [`Transit`] is the engine: create, rotate, update, trim, delete and
//!   export keys; encrypt, decrypt, rewrap, data keys, sign, verify, HMAC
//!   and random bytes, each with a batch form where one bad item fails only
//!   itself. Encryption and decryption (single and batch) also have `try_`
//!   forms that use only the policies and unwrapped versions in memory and
//!   answer [`NotCached`] otherwise, so an async caller can run them on its
//!   own thread and leave only cache misses to a blocking thread.
//! - [`TransitStore`] is what it needs from storage. Each key version is a
//!   record of its own, so the hot path reads one policy and one version.
//! - Key material is generated from the HSM ([`strongroom_hsm::RandomSource`],
//!   [`strongroom_hsm::RsaKeySource`]) and stored wrapped by an AES-256 key in
//!   the HSM, the KEK ([`strongroom_hsm::WrappingKeys`]); unwrapped versions
//!   are cached in memory, bounded and wiped on eviction and when the
//!   appliance seals.
//! - The KEK rotates online ([`Transit::rotate_kek`]): a new one wraps new
//!   versions at once, [`Transit::rewrap_step`] moves the stored versions
//!   under it (resumable after a crash), and the old one is destroyed once it
//!   wraps nothing ([`Transit::destroy_kek`]).
//!
//! Ciphertexts are `<prefix>:v<version>:<base64(nonce || ciphertext || tag)>`.
//! The AEAD's associated data is a label, the key name, the version and the
//! caller's associated data, so a ciphertext of one key or version never
//! opens under another, and any changed byte fails.

mod aead;
mod encoded;
mod engine;
mod error;
mod key_type;
mod material;
mod name;
mod store;

pub use encoded::{DEFAULT_PREFIX, Encoded, MAX_ENCODED_LEN};
pub use engine::{
    DataKey, DecryptItem, EncryptItem, KekStatus, KeyInfo, KeyUpdate, MAX_AAD_LEN, MAX_BATCH_ITEMS,
    MAX_INPUT_LEN, MAX_RANDOM_LEN, MIN_AUTO_ROTATE_PERIOD, NewKey, NotCached, OverdueKey,
    Plaintext, RewrapStep, RotationCompliance, Transit, TransitConfig, TryResult, Versioned,
    check_batch,
};
pub use error::{Result, TransitError};
pub use key_type::{ALL_KEY_TYPES, KeyType, Operation};
pub use material::{HashAlgorithm, SignOptions, SignatureScheme};
pub use name::{KeyName, MAX_NAME_LEN};
pub use store::{
    KekRecord, KekState, KeyPolicy, StoreError, StoredVersion, TransitStore, VersionInfo,
};
