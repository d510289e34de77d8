//! What the token's secret keys (wrapping keys, HMAC keys) share: finding
//! the one key of a type by label, and reaching it by label and id with a
//! cached object handle.

use std::sync::Mutex;

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::error::{Error, Result};
use crate::token::{Found, ObjectCache, Token};

/// A secret key of the token, named by label and `CKA_ID`.
pub(crate) struct SecretKeyRef {
    pub(crate) token: Token,
    pub(crate) label: String,
    pub(crate) id: Vec<u8>,
    key_type: KeyType,
    /// The key's object handle and the pool generation it belongs to.
    handle: ObjectCache,
}

impl SecretKeyRef {
    /// The key of `key_type` labelled `label` with `id` on `token`.
    pub(crate) fn new(token: &Token, label: &str, id: Vec<u8>, key_type: KeyType) -> Self {
        SecretKeyRef {
            token: token.clone(),
            label: label.to_string(),
            id,
            key_type,
            handle: Mutex::new(None),
        }
    }

    /// The one key of `key_type` labelled `label` on `token`.
    pub(crate) fn find(token: &Token, label: &str, key_type: KeyType) -> Result<Self> {
        let ids = token.inner.run(Some(label), |session, _| {
            let mut ids = Vec::new();
            for handle in session.find_objects(&template(label, None, key_type))? {
                let attrs = session.get_attributes(handle, &[AttributeType::Id])?;
                if let Some(Attribute::Id(id)) = attrs.into_iter().next() {
                    ids.push(id);
                }
            }
            Ok(ids)
        })?;
        match ids.as_slice() {
            [id] => Ok(SecretKeyRef::new(token, label, id.clone(), key_type)),
            [] => Err(Error::KeyNotFound {
                token: token.label().to_string(),
                label: label.to_string(),
                with_public_key: false,
            }),
            many => Err(Error::AmbiguousKey {
                token: token.label().to_string(),
                label: label.to_string(),
                count: many.len(),
            }),
        }
    }

    /// Runs `op` with the key's handle.
    pub(crate) fn with_handle<T>(
        &self,
        op: impl FnMut(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        self.token.inner.with_object(
            &self.label,
            &self.handle,
            |session| {
                let found =
                    session.find_objects(&template(&self.label, Some(&self.id), self.key_type))?;
                Ok(match found.as_slice() {
                    [one] => Found::One(*one),
                    [] => Found::None,
                    many => Found::Several(many.len()),
                })
            },
            op,
            || Error::KeyNotFound {
                token: self.token.label().to_string(),
                label: self.label.clone(),
                with_public_key: false,
            },
        )
    }

    /// Fails unless the key is sensitive and never leaves the token.
    pub(crate) fn require_protected(&self) -> Result<()> {
        let attrs = self.with_handle(|session, handle| {
            session.get_attributes(
                handle,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
        })?;
        let (mut sensitive, mut extractable) = (false, true);
        for attr in attrs {
            match attr {
                Attribute::Sensitive(value) => sensitive = value,
                Attribute::Extractable(value) => extractable = value,
                _ => {}
            }
        }
        if sensitive && !extractable {
            Ok(())
        } else {
            Err(Error::Unsupported {
                token: self.token.label().to_string(),
                what: format!(
                    "key '{}' is extractable or not sensitive; use a key generated \
                     non-extractable in the token",
                    self.label
                ),
            })
        }
    }

    /// Forgets the cached handle (the key was destroyed).
    pub(crate) fn forget_handle(&self) {
        *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The search template of a secret key of `key_type` labelled `label` (and
/// with `id`, when given).
fn template(label: &str, id: Option<&[u8]>, key_type: KeyType) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    if let Some(id) = id {
        template.push(Attribute::Id(id.to_vec()));
    }
    template
}
