//! A non-extractable HMAC-SHA256 key inside the token (`CKM_SHA256_HMAC`),
//! for keyed digests whose key must never leave the HSM.

use std::sync::{Arc, Mutex};

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::error::{Error, Result};
use crate::key_pair::{KEY_ID_LEN, check_label};
use crate::token::{Found, ObjectCache, Token};

/// Largest input [`HmacKey::sign`] takes in one call.
pub const MAX_HMAC_INPUT_LEN: usize = 64 * 1024;

/// A 256-bit generic secret in the token: sensitive, never extractable, and
/// usable only to compute and check HMAC-SHA256.
#[derive(Clone)]
pub struct HmacKey {
    inner: Arc<HmacKeyInner>,
}

struct HmacKeyInner {
    token: Token,
    label: String,
    id: Vec<u8>,
    /// The key's object handle and the pool generation it belongs to.
    handle: ObjectCache,
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
        Ok(HmacKey::new(self, label, id))
    }

    /// Finds the one HMAC key (generic secret) with this label.
    pub fn find_hmac_key(&self, label: &str) -> Result<HmacKey> {
        self.require_hmac_mechanism()?;
        let ids = self.inner.run(Some(label), |session, _| {
            let mut ids = Vec::new();
            for handle in session.find_objects(&hmac_key_template(label, None))? {
                let attrs =
                    session.get_attributes(handle, &[cryptoki::object::AttributeType::Id])?;
                if let Some(Attribute::Id(id)) = attrs.into_iter().next() {
                    ids.push(id);
                }
            }
            Ok(ids)
        })?;
        match ids.as_slice() {
            [id] => Ok(HmacKey::new(self, label, id.clone())),
            [] => Err(Error::KeyNotFound {
                token: self.label().to_string(),
                label: label.to_string(),
                with_public_key: false,
            }),
            many => Err(Error::AmbiguousKey {
                token: self.label().to_string(),
                label: label.to_string(),
                count: many.len(),
            }),
        }
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
    fn new(token: &Token, label: &str, id: Vec<u8>) -> HmacKey {
        HmacKey {
            inner: Arc::new(HmacKeyInner {
                token: token.clone(),
                label: label.to_string(),
                id,
                handle: Mutex::new(None),
            }),
        }
    }

    /// The key's label on the token.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The key's `CKA_ID`.
    pub fn id(&self) -> &[u8] {
        &self.inner.id
    }

    /// HMAC-SHA256 of `data` (at most [`MAX_HMAC_INPUT_LEN`] bytes),
    /// computed inside the token.
    pub fn sign(&self, data: &[u8]) -> Result<[u8; 32]> {
        if data.len() > MAX_HMAC_INPUT_LEN {
            return Err(Error::InvalidInput(format!(
                "HMAC input must be at most {MAX_HMAC_INPUT_LEN} bytes, got {}",
                data.len()
            )));
        }
        let mac =
            self.with_handle(|session, key| session.sign(&Mechanism::Sha256Hmac, key, data))?;
        <[u8; 32]>::try_from(mac.as_slice()).map_err(|_| {
            Error::InvalidInput(format!(
                "the token returned a {}-byte HMAC-SHA256",
                mac.len()
            ))
        })
    }

    /// Runs `op` with the key's handle.
    fn with_handle<T>(
        &self,
        op: impl FnMut(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        let inner = &self.inner;
        inner.token.inner.with_object(
            &inner.label,
            &inner.handle,
            |session| {
                let found =
                    session.find_objects(&hmac_key_template(&inner.label, Some(&inner.id)))?;
                Ok(match found.as_slice() {
                    [one] => Found::One(*one),
                    [] => Found::None,
                    many => Found::Several(many.len()),
                })
            },
            op,
            || Error::KeyNotFound {
                token: inner.token.label().to_string(),
                label: inner.label.clone(),
                with_public_key: false,
            },
        )
    }
}

fn hmac_key_template(label: &str, id: Option<&[u8]>) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    if let Some(id) = id {
        template.push(Attribute::Id(id.to_vec()));
    }
    template
}
