//! Asymmetric key pairs generated inside the token, and signing with them.

use std::sync::{Arc, Mutex};

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::Encode;
use der::asn1::ObjectIdentifier;

use crate::algorithm::{KeySpec, SignatureAlgorithm};
use crate::error::{Error, Result};
use crate::public_key::{self, PublicKey};
use crate::token::{Found, ObjectCache, Token, TokenInner};
use crate::uri::{ObjectType, Pkcs11Uri};
use crate::{HsmSigner, SigningKey};

/// Length of the random `CKA_ID` given to every generated key.
pub(crate) const KEY_ID_LEN: usize = 16;

/// A private key in the token (sensitive, never extractable, sign-only) and
/// its public key.
///
/// Found by label *and* public key, so a key swapped or duplicated under the
/// same label is never used by mistake. Cheap to clone.
#[derive(Clone)]
pub struct KeyPair {
    inner: Arc<KeyPairInner>,
}

struct KeyPairInner {
    token: Token,
    label: String,
    id: Vec<u8>,
    public_key: PublicKey,
    /// The private key's object handle and the pool generation it belongs to.
    handle: ObjectCache,
}

impl Token {
    /// Generates a key pair inside the token.
    ///
    /// The private key is `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`,
    /// `!CKA_EXTRACTABLE` and may only sign; its `CKA_ID` comes from the HSM's
    /// random generator. A label already used by any object is refused
    /// ([`Error::LabelExists`]), as are RSA sizes other than 2048, 3072 and
    /// 4096, and Ed25519 on a token without `CKM_EC_EDWARDS_KEY_PAIR_GEN`.
    pub fn generate_key_pair(&self, label: &str, spec: KeySpec) -> Result<KeyPair> {
        check_label(label)?;
        let (mechanism, algorithm_attrs) = match spec {
            KeySpec::EcP256 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(oid_der(public_key::SECP256R1)?)],
            ),
            KeySpec::EcP384 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(oid_der(public_key::SECP384R1)?)],
            ),
            KeySpec::Rsa { bits } if KeySpec::RSA_SIZES.contains(&bits) => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(u64::from(bits).into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            ),
            KeySpec::Rsa { bits } => {
                return Err(Error::InvalidInput(format!(
                    "RSA keys must be 2048, 3072 or 4096 bits, not {bits}"
                )));
            }
            KeySpec::Ed25519 => {
                for needed in [
                    MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                    MechanismType::EDDSA,
                ] {
                    if !self.supports(needed) {
                        return Err(Error::Unsupported {
                            token: self.label().to_string(),
                            what: format!("Ed25519 ({needed} is missing)"),
                        });
                    }
                }
                (
                    Mechanism::EccEdwardsKeyPairGen,
                    vec![Attribute::EcParams(oid_der(public_key::ID_ED25519)?)],
                )
            }
        };
        let _creating = self
            .inner
            .create_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.ensure_label_free(label)?;
        let id = self.random(KEY_ID_LEN)?;
        let label_attr = || Attribute::Label(label.as_bytes().to_vec());
        let mut public_template = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            // A signing key's public half is used for nothing else.
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::VerifyRecover(false),
            Attribute::Derive(false),
            Attribute::Modifiable(false),
            label_attr(),
            Attribute::Id(id.clone()),
        ];
        let private_template = vec![
            // Persist in the token, readable only after login.
            Attribute::Token(true),
            Attribute::Private(true),
            // The key value never leaves the token, in clear or wrapped.
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            // Sign-only: SoftHSM would otherwise default decrypt/unwrap to true.
            Attribute::Sign(true),
            Attribute::SignRecover(false),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            // Nobody may later turn on decrypt or unwrap (which would make an RSA
            // key a decryption oracle), or clone the key.
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            label_attr(),
            Attribute::Id(id.clone()),
        ];
        public_template.extend(algorithm_attrs);
        // Generate and read the public key in one lease, so both handles
        // belong to the same session generation.
        let (public_key, private_handle, generation) =
            self.inner.run(Some(label), |session, generation| {
                let (public, private) =
                    session.generate_key_pair(&mechanism, &public_template, &private_template)?;
                let public_key = read_public_key(session, public, spec_kind(spec))?;
                Ok((public_key, private, generation))
            })?;
        let public_key = public_key.map_err(|reason| Error::PublicKey {
            label: label.to_string(),
            reason,
        })?;
        tracing::info!(token = %self.label(), key = label, spec = %spec, "generated key pair");
        Ok(KeyPair {
            inner: Arc::new(KeyPairInner {
                token: self.clone(),
                label: label.to_string(),
                id,
                public_key,
                handle: Mutex::new(Some((generation, private_handle))),
            }),
        })
    }

    /// Finds the key pair with this label whose public key is `public_key`.
    ///
    /// The public key is read from the public key object with the same label
    /// and `CKA_ID` (for RSA, from the private key itself when there is none).
    /// Zero matches is [`Error::KeyNotFound`]; several is
    /// [`Error::AmbiguousKey`]. The one match must then sign a test message
    /// that `public_key` verifies, or the lookup fails with
    /// [`Error::BadSignature`].
    pub fn find_key_pair(&self, label: &str, public_key: &PublicKey) -> Result<KeyPair> {
        let matches = self.inner.run(Some(label), |session, generation| {
            let mut found = Vec::new();
            for private in session.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])? {
                let Some(id) = read_id(session, private)? else {
                    continue;
                };
                if let Some(candidate) = public_key_for(session, private, label, &id)? {
                    if &candidate == public_key {
                        found.push((id, private, generation));
                    }
                }
            }
            Ok(found)
        })?;
        let key = match matches.as_slice() {
            [(id, handle, generation)] => KeyPair {
                inner: Arc::new(KeyPairInner {
                    token: self.clone(),
                    label: label.to_string(),
                    id: id.clone(),
                    public_key: public_key.clone(),
                    handle: Mutex::new(Some((*generation, *handle))),
                }),
            },
            [] => {
                return Err(Error::KeyNotFound {
                    token: self.label().to_string(),
                    label: label.to_string(),
                    with_public_key: true,
                });
            }
            many => {
                return Err(Error::AmbiguousKey {
                    token: self.label().to_string(),
                    label: label.to_string(),
                    count: many.len(),
                });
            }
        };
        // Prove the private key belongs to the public key before anyone relies on it.
        let algorithm = key.spec().default_signature_algorithm();
        let probe = b"strongroom: key pair binding check";
        let signature = key.sign(algorithm, probe)?;
        key.public_key()
            .verify(algorithm, probe, &signature)
            .map_err(|_| Error::BadSignature {
                label: label.to_string(),
                algorithm: format!("{algorithm}; the private key does not match the public key"),
            })?;
        Ok(key)
    }

    /// Finds the key pair a `pkcs11:` URI names (`object=`, and `id=` when
    /// given) whose public key is `public_key`; see [`Token::find_key_pair`].
    pub fn find_key_pair_by_uri(&self, uri: &Pkcs11Uri, public_key: &PublicKey) -> Result<KeyPair> {
        let label = self.label_in_uri(uri, ObjectType::Private)?;
        let key = self.find_key_pair(label, public_key)?;
        match &uri.id {
            Some(id) if id.as_slice() != key.id() => Err(Error::KeyNotFound {
                token: self.label().to_string(),
                label: label.to_string(),
                with_public_key: true,
            }),
            _ => Ok(key),
        }
    }

    /// Refuses, with [`Error::LabelExists`], a label that any object on the
    /// token already carries. [`Token::generate_key_pair`] checks this
    /// itself; callers such as the offline ceremony check it up front, so
    /// that a collision is refused before anything else happens.
    pub fn ensure_label_free(&self, label: &str) -> Result<()> {
        let taken = self.inner.run(Some(label), |session, _| {
            session.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        })?;
        if taken.is_empty() {
            Ok(())
        } else {
            Err(Error::LabelExists {
                token: self.label().to_string(),
                label: label.to_string(),
            })
        }
    }
}

impl KeyPair {
    /// The key's label on the token.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The key's `CKA_ID`.
    pub fn id(&self) -> &[u8] {
        &self.inner.id
    }

    /// The key's type and size.
    pub fn spec(&self) -> KeySpec {
        self.inner.public_key.spec()
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.inner.public_key
    }

    /// The token holding the key.
    pub fn token(&self) -> &Token {
        &self.inner.token
    }

    /// A [`Signer`](crate::Signer) for this key with a fixed algorithm.
    pub fn signer(&self, algorithm: SignatureAlgorithm) -> Result<HsmSigner> {
        HsmSigner::new(Arc::new(self.clone()), algorithm)
    }

    fn check_algorithm(&self, algorithm: SignatureAlgorithm) -> Result<()> {
        SigningKey::supports(self, algorithm)
    }

    /// Signs `message` inside the token.
    ///
    /// ECDSA digests are computed in software and the raw `r || s` from the
    /// token is returned DER-encoded; RSA hashes inside the token; Ed25519
    /// signs the whole message. The signature is not verified here: callers
    /// that store or return it verify it with [`PublicKey::verify`].
    pub fn sign(&self, algorithm: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        use SignatureAlgorithm::*;
        self.check_algorithm(algorithm)?;
        let digest;
        let (mechanism, data): (Mechanism<'_>, &[u8]) = match algorithm {
            EcdsaP256Sha256 => {
                digest = ring::digest::digest(&ring::digest::SHA256, message);
                (Mechanism::Ecdsa, digest.as_ref())
            }
            EcdsaP384Sha384 => {
                digest = ring::digest::digest(&ring::digest::SHA384, message);
                (Mechanism::Ecdsa, digest.as_ref())
            }
            RsaPkcs1Sha256 => (Mechanism::Sha256RsaPkcs, message),
            RsaPkcs1Sha384 => (Mechanism::Sha384RsaPkcs, message),
            RsaPkcs1Sha512 => (Mechanism::Sha512RsaPkcs, message),
            RsaPssSha256 => (
                Mechanism::Sha256RsaPkcsPss(pss(
                    MechanismType::SHA256,
                    PkcsMgfType::MGF1_SHA256,
                    32,
                )),
                message,
            ),
            RsaPssSha384 => (
                Mechanism::Sha384RsaPkcsPss(pss(
                    MechanismType::SHA384,
                    PkcsMgfType::MGF1_SHA384,
                    48,
                )),
                message,
            ),
            RsaPssSha512 => (
                Mechanism::Sha512RsaPkcsPss(pss(
                    MechanismType::SHA512,
                    PkcsMgfType::MGF1_SHA512,
                    64,
                )),
                message,
            ),
            Ed25519 => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                message,
            ),
        };
        let raw =
            self.with_private_handle(|session, handle| session.sign(&mechanism, handle, data))?;
        match algorithm {
            EcdsaP256Sha256 | EcdsaP384Sha384 => {
                public_key::ecdsa_raw_to_der(&raw).map_err(|reason| Error::PublicKey {
                    label: self.label().to_string(),
                    reason: format!("token returned a malformed ECDSA signature: {reason}"),
                })
            }
            _ => Ok(raw),
        }
    }

    /// Runs `op` with the private key's handle.
    fn with_private_handle<T>(
        &self,
        op: impl FnMut(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        let inner = &self.inner;
        let token: &TokenInner = &inner.token.inner;
        token.with_object(
            &inner.label,
            &inner.handle,
            |session| self.find_private(session),
            op,
            || Error::KeyNotFound {
                token: token.label().to_string(),
                label: inner.label.clone(),
                with_public_key: true,
            },
        )
    }

    /// The private key with our label and id, if its public key is still ours.
    fn find_private(&self, session: &Session) -> std::result::Result<Found, CkError> {
        let inner = &self.inner;
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(inner.label.as_bytes().to_vec()),
            Attribute::Id(inner.id.clone()),
        ])?;
        let handle = match found.as_slice() {
            [handle] => *handle,
            [] => return Ok(Found::None),
            many => return Ok(Found::Several(many.len())),
        };
        let public = public_key_for(session, handle, &inner.label, &inner.id)?;
        Ok(if public.as_ref() == Some(&inner.public_key) {
            Found::One(handle)
        } else {
            Found::None
        })
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("token", &self.inner.token.label())
            .field("label", &self.inner.label)
            .field("public_key", &self.inner.public_key)
            .finish()
    }
}

fn pss(hash: MechanismType, mgf: PkcsMgfType, salt: u64) -> PkcsPssParams {
    PkcsPssParams {
        hash_alg: hash,
        mgf,
        s_len: salt.into(),
    }
}

fn oid_der(oid: ObjectIdentifier) -> Result<Vec<u8>> {
    oid.to_der()
        .map_err(|e| Error::InvalidInput(format!("cannot encode curve {oid}: {e}")))
}

/// Labels are printable, non-empty and short enough for any token.
pub(crate) fn check_label(label: &str) -> Result<()> {
    if label.is_empty() || label.len() > 128 || label.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidInput(format!(
            "key label must be 1 to 128 printable characters, got {label:?}"
        )));
    }
    Ok(())
}

/// The coarse key family, used to interpret a public key object's attributes.
#[derive(Clone, Copy)]
enum KeyKind {
    Ec,
    Rsa,
    Edwards,
}

fn spec_kind(spec: KeySpec) -> KeyKind {
    match spec {
        KeySpec::EcP256 | KeySpec::EcP384 => KeyKind::Ec,
        KeySpec::Rsa { .. } => KeyKind::Rsa,
        KeySpec::Ed25519 => KeyKind::Edwards,
    }
}

fn read_id(
    session: &Session,
    object: ObjectHandle,
) -> std::result::Result<Option<Vec<u8>>, CkError> {
    Ok(session
        .get_attributes(object, &[AttributeType::Id])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Id(id) => Some(id),
            _ => None,
        }))
}

/// The public key belonging to a private key: from the public key object with
/// the same label and `CKA_ID`, or for RSA from the private key's own public attributes.
fn public_key_for(
    session: &Session,
    private: ObjectHandle,
    label: &str,
    id: &[u8],
) -> std::result::Result<Option<PublicKey>, CkError> {
    let kind = match key_type(session, private)? {
        Some(KeyType::EC) => KeyKind::Ec,
        Some(KeyType::RSA) => KeyKind::Rsa,
        Some(KeyType::EC_EDWARDS) => KeyKind::Edwards,
        _ => return Ok(None),
    };
    let publics = session.find_objects(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ])?;
    if publics.is_empty() {
        return Ok(match kind {
            KeyKind::Rsa => read_public_key(session, private, kind)?.ok(),
            _ => None,
        });
    }
    // Copies of a key pair share its CKA_ID; they count as one public key only
    // if every public object with that id holds the same key.
    let mut found: Option<PublicKey> = None;
    for public in publics {
        match (read_public_key(session, public, kind)?.ok(), &found) {
            (Some(key), None) => found = Some(key),
            (Some(key), Some(seen)) if &key == seen => {}
            _ => return Ok(None),
        }
    }
    Ok(found)
}

fn key_type(
    session: &Session,
    object: ObjectHandle,
) -> std::result::Result<Option<KeyType>, CkError> {
    Ok(session
        .get_attributes(object, &[AttributeType::KeyType])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::KeyType(t) => Some(t),
            _ => None,
        }))
}

/// Reads a public key from an object's attributes; the inner error says why
/// the attributes do not form a usable key.
fn read_public_key(
    session: &Session,
    object: ObjectHandle,
    kind: KeyKind,
) -> std::result::Result<std::result::Result<PublicKey, String>, CkError> {
    let wanted: &[AttributeType] = match kind {
        KeyKind::Ec | KeyKind::Edwards => &[AttributeType::EcParams, AttributeType::EcPoint],
        KeyKind::Rsa => &[AttributeType::Modulus, AttributeType::PublicExponent],
    };
    let (mut params, mut point, mut modulus, mut exponent) = (None, None, None, None);
    for attribute in session.get_attributes(object, wanted)? {
        match attribute {
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            _ => {}
        }
    }
    Ok(match kind {
        KeyKind::Rsa => match (modulus, exponent) {
            (Some(n), Some(e)) => PublicKey::from_rsa(&n, &e),
            _ => Err("RSA key without modulus or public exponent".into()),
        },
        KeyKind::Ec => match (params, point) {
            (Some(params), Some(point)) => {
                let spec = if params == oid_der(public_key::SECP256R1).unwrap_or_default() {
                    Ok(KeySpec::EcP256)
                } else if params == oid_der(public_key::SECP384R1).unwrap_or_default() {
                    Ok(KeySpec::EcP384)
                } else {
                    Err("EC key on an unsupported curve".to_string())
                };
                spec.and_then(|spec| {
                    let len = if spec == KeySpec::EcP256 { 65 } else { 97 };
                    public_key::unwrap_ec_point(&point, len)
                        .and_then(|p| PublicKey::from_ec_point(spec, &p))
                })
            }
            _ => Err("EC key without CKA_EC_PARAMS or CKA_EC_POINT".into()),
        },
        KeyKind::Edwards => match point {
            Some(point) => {
                public_key::unwrap_ec_point(&point, 32).and_then(|p| PublicKey::from_ed25519(&p))
            }
            None => Err("Ed25519 key without CKA_EC_POINT".into()),
        },
    })
}
