//! A non-extractable AES-256 key inside the token that wraps key material
//! held outside it (RFC 5649, `CKM_AES_KEY_WRAP_PAD`).

use std::sync::Arc;

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use zeroize::{Zeroize, Zeroizing};

use crate::KeyWrapper;
use crate::error::{Error, Result};
use crate::key_pair::{KEY_ID_LEN, check_label};
use crate::secret_key::SecretKeyRef;
use crate::token::Token;
use crate::uri::{ObjectType, Pkcs11Uri};

/// Largest key material accepted for wrapping (a 4096-bit RSA key in PKCS#8 fits).
pub const MAX_MATERIAL_LEN: usize = 8 * 1024;

/// An AES-256 wrapping key in the token: sensitive, never extractable, and
/// usable only to wrap and unwrap.
///
/// Material is framed as a 4-byte big-endian length, the material, and zero
/// padding to a multiple of 8 bytes, imported as a short-lived session object,
/// wrapped with `CKM_AES_KEY_WRAP_PAD` (RFC 5649), and the object destroyed;
/// unwrapping is the reverse. The frame makes the length explicit because
/// modules differ in whether `C_UnwrapKey` strips RFC 5649 padding from a
/// generic secret (SoftHSM2 2.6 does not). The material exists in the clear only in this process and,
/// for the duration of one call, as a session object inside the HSM.
#[derive(Clone)]
pub struct WrappingKey {
    inner: Arc<SecretKeyRef>,
}

impl Token {
    /// Generates an AES-256 wrapping key inside the token.
    ///
    /// Refuses a label already in use and a token without `CKM_AES_KEY_WRAP_PAD`.
    pub fn generate_wrapping_key(&self, label: &str) -> Result<WrappingKey> {
        check_label(label)?;
        self.require_wrap_mechanism()?;
        let _creating = self
            .inner
            .create_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.ensure_label_free(label)?;
        let id = self.random(KEY_ID_LEN)?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            // Persist in the token, usable only after login.
            Attribute::Token(true),
            Attribute::Private(true),
            // The key value never leaves the token, in clear or wrapped.
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            // Wrap and unwrap only.
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            // Nobody may later widen its usage or clone it.
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        self.inner.run(Some(label), |session, _| {
            session.generate_key(&Mechanism::AesKeyGen, &template)
        })?;
        tracing::info!(token = %self.label(), key = label, "generated AES-256 wrapping key");
        Ok(WrappingKey {
            inner: Arc::new(SecretKeyRef::new(self, label, id, KeyType::AES)),
        })
    }

    /// Finds the one AES wrapping key with this label.
    pub fn find_wrapping_key(&self, label: &str) -> Result<WrappingKey> {
        self.require_wrap_mechanism()?;
        Ok(WrappingKey {
            inner: Arc::new(SecretKeyRef::find(self, label, KeyType::AES)?),
        })
    }

    /// Finds the wrapping key a `pkcs11:` URI names (`object=`, and `id=` when given).
    pub fn find_wrapping_key_by_uri(&self, uri: &Pkcs11Uri) -> Result<WrappingKey> {
        let label = self.label_in_uri(uri, ObjectType::SecretKey)?;
        let key = self.find_wrapping_key(label)?;
        match &uri.id {
            Some(id) if id.as_slice() != key.id() => Err(Error::KeyNotFound {
                token: self.label().to_string(),
                label: label.to_string(),
                with_public_key: false,
            }),
            _ => Ok(key),
        }
    }

    fn require_wrap_mechanism(&self) -> Result<()> {
        if self.supports(MechanismType::AES_KEY_WRAP_PAD) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                token: self.label().to_string(),
                what: "CKM_AES_KEY_WRAP_PAD (RFC 5649 key wrapping)".into(),
            })
        }
    }
}

impl WrappingKey {
    /// The key's label on the token.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The key's `CKA_ID`.
    pub fn id(&self) -> &[u8] {
        &self.inner.id
    }

    /// Destroys the key in the token, for ever: material it wrapped can no
    /// longer be unwrapped. Callers re-wrap everything first (transit's KEK
    /// rotation does, and refuses to destroy a key still in use).
    pub fn destroy(self) -> Result<()> {
        self.with_handle(|session, handle| session.destroy_object(handle))?;
        self.inner.forget_handle();
        tracing::warn!(
            token = %self.inner.token.label(),
            key = %self.inner.label,
            "destroyed AES-256 wrapping key"
        );
        Ok(())
    }

    /// Runs `op` with the wrapping key's handle.
    fn with_handle<T>(
        &self,
        op: impl FnMut(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        self.inner.with_handle(op)
    }
}

impl KeyWrapper for WrappingKey {
    fn wrap(&self, material: &[u8]) -> Result<Vec<u8>> {
        if material.is_empty() || material.len() > MAX_MATERIAL_LEN {
            return Err(Error::InvalidInput(format!(
                "key material to wrap must be 1 to {MAX_MATERIAL_LEN} bytes, got {}",
                material.len()
            )));
        }
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            // A session object: gone when destroyed below, or when the session closes.
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Value(frame(material)),
        ];
        let result = self.with_handle(|session, wrapping| {
            let temporary = session.create_object(&template)?;
            let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, temporary);
            let destroyed = session.destroy_object(temporary);
            let wrapped = wrapped?;
            destroyed?;
            Ok(wrapped)
        });
        for attribute in &mut template {
            if let Attribute::Value(v) = attribute {
                v.zeroize();
            }
        }
        result
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() < 16 || wrapped.len() > MAX_MATERIAL_LEN + 24 || wrapped.len() % 8 != 0 {
            return Err(Error::InvalidInput(format!(
                "wrapped key material must be a multiple of 8 bytes between 16 and {}, got {}",
                MAX_MATERIAL_LEN + 24,
                wrapped.len()
            )));
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let material = self.with_handle(|session, wrapping| {
            let temporary =
                session.unwrap_key(&Mechanism::AesKeyWrapPad, wrapping, wrapped, &template)?;
            let value = session.get_attributes(temporary, &[AttributeType::Value]);
            let destroyed = session.destroy_object(temporary);
            let mut material = Zeroizing::new(Vec::new());
            for attribute in value? {
                if let Attribute::Value(mut v) = attribute {
                    material.extend_from_slice(&v);
                    v.zeroize();
                }
            }
            destroyed?;
            Ok(material)
        })?;
        if material.is_empty() {
            return Err(Error::Unsupported {
                token: self.inner.token.label().to_string(),
                what: "reading unwrapped material back (CKA_VALUE was withheld)".into(),
            });
        }
        unframe(&material).ok_or_else(|| {
            Error::InvalidInput(format!(
                "material unwrapped by '{}' is not in Strongroom's frame",
                self.inner.label
            ))
        })
    }
}

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappingKey")
            .field("token", &self.inner.token.label())
            .field("label", &self.inner.label)
            .finish()
    }
}

/// `len (u32 BE) || material || zeros`, a multiple of 8 bytes long.
fn frame(material: &[u8]) -> Vec<u8> {
    let framed_len = (4 + material.len()).div_ceil(8) * 8;
    let mut framed = Vec::with_capacity(framed_len);
    // MAX_MATERIAL_LEN keeps the length far below u32::MAX.
    framed.extend_from_slice(&(material.len() as u32).to_be_bytes());
    framed.extend_from_slice(material);
    framed.resize(framed_len, 0);
    framed
}

/// The material inside a frame, if the frame is well formed.
fn unframe(framed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (len, rest) = framed.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if len == 0 || len > rest.len() || (4 + len).div_ceil(8) * 8 != framed.len() {
        return None;
    }
    let (material, padding) = rest.split_at(len);
    padding
        .iter()
        .all(|b| *b == 0)
        .then(|| Zeroizing::new(material.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_garbage() {
        for len in [1usize, 3, 4, 5, 12, 32, 255, MAX_MATERIAL_LEN] {
            let material: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let framed = frame(&material);
            assert_eq!(framed.len() % 8, 0);
            assert_eq!(*unframe(&framed).expect("well formed"), material);
        }
        let mut framed = frame(b"abc");
        framed[7] = 1; // non-zero padding
        assert!(unframe(&framed).is_none());
        assert!(unframe(&[0, 0, 0, 9, 1, 2, 3, 4]).is_none()); // length beyond the frame
        assert!(unframe(&[0, 0, 0, 0, 0, 0, 0, 0]).is_none()); // empty material
        assert!(unframe(&[0, 0]).is_none());
    }
}
