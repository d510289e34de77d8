//! The backend-neutral view of an HSM: a [`KeyStore`] generates and finds
//! [`SigningKey`]s and wrapping keys, and draws random bytes, whichever
//! device holds them (a PKCS#11 [`Token`] or a [`crate::YubiHsm`]).

use std::fmt;
use std::sync::Arc;

use crate::algorithm::{KeySpec, SignatureAlgorithm};
use crate::error::{Error, Result};
use crate::key_pair::KeyPair;
use crate::public_key::PublicKey;
use crate::token::{Token, TokenStatus};
use crate::{RandomSource, Signer, WrappingKeys};

/// An asymmetric private key inside an HSM: generated there, never
/// exportable, allowed to sign and nothing else.
pub trait SigningKey: Send + Sync + fmt::Debug {
    /// The key's label in the HSM.
    fn label(&self) -> &str;

    /// The public key.
    fn public_key(&self) -> &PublicKey;

    /// The key's type and size.
    fn spec(&self) -> KeySpec {
        self.public_key().spec()
    }

    /// `Ok` if this key can sign with `algorithm`: [`Error::AlgorithmMismatch`]
    /// if the algorithm does not fit the key's type, [`Error::Unsupported`]
    /// if the HSM cannot sign with it (a YubiHSM2 signs RSA only with
    /// PKCS#1 v1.5 and SHA-256). Checked when a signer is built, so that a
    /// misconfiguration fails at start rather than at the first signature.
    fn supports(&self, algorithm: SignatureAlgorithm) -> Result<()> {
        if algorithm.fits(self.spec()) {
            Ok(())
        } else {
            Err(Error::AlgorithmMismatch {
                label: self.label().to_string(),
                key: self.spec().to_string(),
                algorithm: algorithm.to_string(),
            })
        }
    }

    /// Signs `message` with `algorithm` (which must fit the key). ECDSA
    /// signatures are DER `Ecdsa-Sig-Value`. The signature is not verified
    /// here; callers that store or return it verify it.
    fn sign(&self, algorithm: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>>;
}

/// The keys of one HSM, whatever its kind: asymmetric signing keys by label
/// and public key, wrapping keys by label ([`WrappingKeys`]), and random
/// bytes ([`RandomSource`]).
///
/// The binary holds one per configured HSM and hands the CA and transit
/// only the narrower traits they need.
pub trait KeyStore: WrappingKeys + RandomSource {
    /// The HSM, as named in errors and logs (a token label, a connector address).
    fn name(&self) -> &str;

    /// Generates a sign-only, non-exportable key pair labelled `label`;
    /// refuses a label in use ([`Error::LabelExists`]).
    fn generate_signing_key(&self, label: &str, spec: KeySpec) -> Result<Arc<dyn SigningKey>>;

    /// The one key pair labelled `label` whose public key is `public_key`,
    /// proven by signing a probe that `public_key` verifies. Zero matches is
    /// [`Error::KeyNotFound`], several [`Error::AmbiguousKey`].
    fn find_signing_key(&self, label: &str, public_key: &PublicKey) -> Result<Arc<dyn SigningKey>>;

    /// Whether operations can run now.
    fn status(&self) -> TokenStatus;

    /// Ends the login for good: later calls on this store and its keys fail
    /// with [`Error::Closed`].
    fn close(&self);
}

/// A [`SigningKey`] bound to one signature algorithm: the [`Signer`] the CA
/// and transit use, for a key in any [`KeyStore`].
#[derive(Clone, Debug)]
pub struct HsmSigner {
    key: Arc<dyn SigningKey>,
    algorithm: SignatureAlgorithm,
}

impl HsmSigner {
    /// Binds `key` to `algorithm`; [`Error::AlgorithmMismatch`] if the
    /// algorithm does not fit the key's type, [`Error::Unsupported`] if the
    /// key's HSM cannot sign with it (see [`SigningKey::supports`]).
    pub fn new(key: Arc<dyn SigningKey>, algorithm: SignatureAlgorithm) -> Result<HsmSigner> {
        key.supports(algorithm)?;
        Ok(HsmSigner { key, algorithm })
    }

    /// The key behind this signer.
    pub fn key(&self) -> &Arc<dyn SigningKey> {
        &self.key
    }
}

impl Signer for HsmSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.key.sign(self.algorithm, message)
    }
}

impl SigningKey for KeyPair {
    fn label(&self) -> &str {
        KeyPair::label(self)
    }

    fn public_key(&self) -> &PublicKey {
        KeyPair::public_key(self)
    }

    fn sign(&self, algorithm: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        KeyPair::sign(self, algorithm, message)
    }
}

impl KeyStore for Token {
    fn name(&self) -> &str {
        self.label()
    }

    fn generate_signing_key(&self, label: &str, spec: KeySpec) -> Result<Arc<dyn SigningKey>> {
        Ok(Arc::new(self.generate_key_pair(label, spec)?))
    }

    fn find_signing_key(&self, label: &str, public_key: &PublicKey) -> Result<Arc<dyn SigningKey>> {
        Ok(Arc::new(self.find_key_pair(label, public_key)?))
    }

    fn status(&self) -> TokenStatus {
        Token::status(self)
    }

    fn close(&self) {
        Token::close(self)
    }
}
