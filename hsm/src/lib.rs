//! Key custody for Strongroom: keys that live in an HSM, a PKCS#11 token or
//! a YubiHSM2.
//!
//! The rest of Strongroom sees five small traits, never PKCS#11 or the
//! YubiHSM2 protocol:
//!
//! - [`Signer`]: a key that reports its public key and algorithm, and signs;
//! - [`KeyWrapper`]: a key that wraps and unwraps key material held elsewhere;
//! - [`WrappingKeys`]: an HSM's wrapping keys by label, to find, generate
//!   and destroy them (transit's KEK rotation);
//! - [`RandomSource`]: random bytes from the HSM ([`BufferedRandom`] draws
//!   them in bulk for callers that want a few bytes at a time);
//! - [`RsaKeySource`]: RSA private keys from the HSM's generator for keys that
//!   are used outside it (transit's memory signing keys, kept wrapped at rest).
//!
//! [`Token`] implements them over `cryptoki`: it opens a module by path, finds
//! a token by label (or by an RFC 7512 `pkcs11:` URI), logs in once with a
//! [`Pin`], and runs every operation on a bounded pool of sessions that
//! recovers by itself when the token goes away and comes back. Keys are
//! generated inside the token ([`Token::generate_key_pair`],
//! [`Token::generate_wrapping_key`]) as sensitive, non-extractable objects, and
//! found again by label *and* public key ([`Token::find_key_pair`]). The one
//! exception is [`Token::generate_extractable_rsa_key`] (behind
//! [`RsaKeySource`]): the token generates the pair as session objects, hands
//! the private key out once and destroys both; CA keys never come from it.
//!
//! [`YubiHsm`] is the second backend: a YubiHSM2 reached natively over
//! `yubihsm-connector` or USB, with a session pool bounded below the
//! device's 16 sessions that outlives its 30 s idle timeout. Both backends
//! implement [`KeyStore`], the backend-neutral way the binary generates and
//! finds [`SigningKey`]s (bound to an algorithm by [`HsmSigner`]) and
//! wrapping keys (an AES key in the token, or a YubiHSM2 wrap key that
//! wraps with the device's `WrapData` command).
//!
//! ```no_run
//! use strongroom_hsm::{KeySpec, Pin, PoolConfig, Signer, Token};
//!
//! # fn main() -> Result<(), strongroom_hsm::Error> {
//! let token = Token::open(
//!     "/usr/lib/softhsm/libsofthsm2.so".as_ref(),
//!     "strongroom",
//!     Pin::new("1234"),
//!     PoolConfig::default(),
//! )?;
//! let key = token.generate_key_pair("issuing-ca-2026", KeySpec::EcP256)?;
//! let signer = key.signer(KeySpec::EcP256.default_signature_algorithm())?;
//! let signature = signer.sign(b"to be signed")?;
//! signer.public_key().verify(signer.algorithm(), b"to be signed", &signature)?;
//! # Ok(())
//! # }
//! ```

mod algorithm;
mod error;
mod extractable;
mod hmac_key;
mod key_pair;
mod module;
mod pin;
mod public_key;
mod random;
mod secret_key;
mod store;
mod token;
mod uri;
mod wrapping_key;
#[cfg(feature = "yubihsm")]
mod yubi_hsm;

use std::sync::Arc;

use zeroize::Zeroizing;

pub use algorithm::{KeySpec, SignatureAlgorithm};
pub use error::{Error, Result, YubiHsmFailure};
pub use hmac_key::{HmacKey, MAX_HMAC_INPUT_LEN};
pub use key_pair::KeyPair;
pub use pin::Pin;
pub use public_key::PublicKey;
pub use random::BufferedRandom;
pub use store::{HsmSigner, KeyStore, SigningKey};
pub use token::{PoolConfig, PoolUsage, Token, TokenStatus};
pub use uri::{ObjectType, Pkcs11Uri};
pub use wrapping_key::{MAX_MATERIAL_LEN, WrappingKey};
#[cfg(feature = "yubihsm")]
pub use yubi_hsm::{
    IdleClock, MAX_ED25519_MESSAGE_LEN as YUBIHSM_MAX_ED25519_MESSAGE_LEN,
    MAX_LABEL_LEN as YUBIHSM_MAX_LABEL_LEN, MAX_SESSIONS as YUBIHSM_MAX_SESSIONS,
    REFRESH_AFTER as YUBIHSM_REFRESH_AFTER, SystemClock, YubiHsm, YubiHsmConfig, YubiHsmConnector,
    YubiHsmKey, YubiHsmWrappingKey,
};

/// A private key that signs with one algorithm and knows its public key.
///
/// This is the only view of signing keys that the CA, transit and ceremony
/// code have.
pub trait Signer: Send + Sync {
    /// The algorithm every signature from [`Signer::sign`] uses.
    fn algorithm(&self) -> SignatureAlgorithm;

    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> &PublicKey;

    /// Signs `message` (not a digest: hashing is part of the algorithm).
    /// ECDSA signatures are DER `Ecdsa-Sig-Value`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// A key that protects other key material at rest.
pub trait KeyWrapper: Send + Sync {
    /// Wraps `material`; the result is safe to store.
    fn wrap(&self, material: &[u8]) -> Result<Vec<u8>>;

    /// Recovers material from [`KeyWrapper::wrap`]'s output; fails on any
    /// change to `wrapped` or under any other key.
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

/// The wrapping keys of an HSM, by label: found, generated and destroyed.
/// Transit's KEK rotation works through this view.
pub trait WrappingKeys: Send + Sync {
    /// The one wrapping key labelled `label`.
    fn find_wrapper(&self, label: &str) -> Result<Arc<dyn KeyWrapper>>;

    /// Generates a new wrapping key labelled `label`; refuses a label in use.
    fn generate_wrapper(&self, label: &str) -> Result<Arc<dyn KeyWrapper>>;

    /// Destroys the wrapping key labelled `label` for ever;
    /// [`Error::KeyNotFound`] if there is none.
    fn destroy_wrapper(&self, label: &str) -> Result<()>;
}

impl WrappingKeys for Token {
    fn find_wrapper(&self, label: &str) -> Result<Arc<dyn KeyWrapper>> {
        Ok(Arc::new(self.find_wrapping_key(label)?))
    }

    fn generate_wrapper(&self, label: &str) -> Result<Arc<dyn KeyWrapper>> {
        Ok(Arc::new(self.generate_wrapping_key(label)?))
    }

    fn destroy_wrapper(&self, label: &str) -> Result<()> {
        self.find_wrapping_key(label)?.destroy()
    }
}

/// A source of cryptographically secure random bytes.
pub trait RandomSource: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

/// A generator of RSA private keys that are used outside the HSM (transit signing keys,
/// whose material is kept wrapped), so that they still come from the HSM's generator.
///
/// This is the only way a private key leaves the token; see
/// [`Token::generate_extractable_rsa_key`]. CA keys are never generated this way.
pub trait RsaKeySource: Send + Sync {
    /// Generates an RSA key pair of `bits` (2048, 3072 or 4096; public exponent 65537)
    /// and returns the private key as PKCS#1 `RSAPrivateKey` DER.
    fn generate_rsa_private_key(&self, bits: u32) -> Result<Zeroizing<Vec<u8>>>;
}

impl RandomSource for Token {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        self.fill_random(buf)
    }
}
