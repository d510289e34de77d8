//! A non-extractable HMAC-SHA256 key inside the token (`CKM_SHA256_HMAC`),
//! for keyed digests whose key must never leave the HSM.

use std::sync::Arc;

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key_pair::{KEY_ID_LEN, check_label};
use crate::secret_key::SecretKeyRef;
use crate::token::Token;

/// Largest input [`HmacKey::sign`] takes in one call.
pub const MAX_HMAC_INPUT_LEN: usize = 64 * 1024;

/// A 256-bit generic secret in the token: sensitive, never extractable, and
/// usable only to compute and check HMAC-SHA256.
#[derive(Clone)]
pub struct HmacKey {
    inner: Arc<SecretKeyRef>,
}

impl Token {
    /// Generates an HMAC-SHA256 key inside the token.
    ///
    /// Refuses a label already in use and a token without `CKM_SHA256_HMAC`.
    pub fn generate_hmac_key(&self, label: &str) -> Result<HmacKey> {
        check_label(label)?;
        self.require_hmac_mechanism()?;
        let _creating = self
            .inner
            .create_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.ensure_label_free(label)?;
        let id = self.random(KEY_ID_LEN)?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            // The key value never leaves the token, in clear or wrapped.
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            // HMAC only.
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        self.inner.run(Some(label), |session, _| {
            session.generate_key(&Mechanism::GenericSecretKeyGen, &template)
        })?;
        tracing::info!(token = %self.label(), key = label, "generated HMAC-SHA256 key");
        Ok(HmacKey {
            inner: Arc::new(SecretKeyRef::new(self, label, id, KeyType::GENERIC_SECRET)),
        })
    }

    /// Finds the one HMAC key (generic secret) with this label. A key that
    /// is not sensitive, or is extractable, is refused: its value could
    /// leave the token.
    pub fn find_hmac_key(&self, label: &str) -> Result<HmacKey> {
        self.require_hmac_mechanism()?;
        let key = SecretKeyRef::find(self, label, KeyType::GENERIC_SECRET)?;
        key.require_protected()?;
        Ok(HmacKey {
            inner: Arc::new(key),
        })
    }

    /// The HMAC key with this label, generated if the token has none.
    pub fn find_or_generate_hmac_key(&self, label: &str) -> Result<HmacKey> {
        match self.find_hmac_key(label) {
            Err(Error::KeyNotFound { .. }) => self.generate_hmac_key(label),
            found => found,
        }
    }

    fn require_hmac_mechanism(&self) -> Result<()> {
        if self.supports(MechanismType::SHA256_HMAC) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                token: self.label().to_string(),
                what: "CKM_SHA256_HMAC".into(),
            })
        }
    }
}

impl HmacKey {
    /// The key's label on the token.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The key's `CKA_ID`.
    pub fn id(&self) -> &[u8] {
        &self.inner.id
    }

    /// HMAC-SHA256 of `data` (at most [`MAX_HMAC_INPUT_LEN`] bytes),
    /// computed inside the token. The result may serve as key material, so
    /// it is wiped when dropped (as is the module's answer it is copied
    /// from).
    pub fn sign(&self, data: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        if data.len() > MAX_HMAC_INPUT_LEN {
            return Err(Error::InvalidInput(format!(
                "HMAC input must be at most {MAX_HMAC_INPUT_LEN} bytes, got {}",
                data.len()
            )));
        }
        let mac = Zeroizing::new(
            self.with_handle(|session, key| session.sign(&Mechanism::Sha256Hmac, key, data))?,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        if mac.len() != out.len() {
            return Err(Error::InvalidInput(format!(
                "the token returned a {}-byte HMAC-SHA256",
                mac.len()
            )));
        }
        out.copy_from_slice(&mac);
        Ok(out)
    }

    /// Runs `op` with the key's handle.
    fn with_handle<T>(
        &self,
        op: impl FnMut(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        self.inner.with_handle(op)
    }
}
