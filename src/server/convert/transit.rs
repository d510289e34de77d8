//! Transit wire types to and from domain types.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strongroom_proto::v1;
use strongroom_transit::{
    HashAlgorithm, KekState, KekStatus, KeyInfo, KeyName, KeyPolicy, KeyType, KeyUpdate, NewKey,
    OverdueKey, SignOptions, SignatureScheme, TransitError,
};

use super::duration;

/// A key name from a request field.
pub(crate) fn key_name(name: &str) -> Result<KeyName, TransitError> {
    KeyName::new(name)
}

/// The domain key type of a wire value (unspecified: AES-256-GCM).
pub(crate) fn key_type(value: i32) -> Result<KeyType, TransitError> {
    use v1::TransitKeyType as T;
    Ok(
        match T::try_from(value)
            .map_err(|_| invalid("type", format!("unknown key type {value}")))?
        {
            T::Unspecified | T::Aes256Gcm96 => KeyType::Aes256Gcm96,
            T::Chacha20Poly1305 => KeyType::ChaCha20Poly1305,
            T::Xchacha20Poly1305 => KeyType::XChaCha20Poly1305,
            T::Ed25519 => KeyType::Ed25519,
            T::EcdsaP256 => KeyType::EcdsaP256,
            T::EcdsaP384 => KeyType::EcdsaP384,
            T::Rsa3072 => KeyType::Rsa3072,
            T::Rsa4096 => KeyType::Rsa4096,
            T::Hmac => KeyType::Hmac,
        },
    )
}

/// The wire value of a key type.
pub(crate) fn wire_key_type(key_type: KeyType) -> i32 {
    use v1::TransitKeyType as T;
    (match key_type {
        KeyType::Aes256Gcm96 => T::Aes256Gcm96,
        KeyType::ChaCha20Poly1305 => T::Chacha20Poly1305,
        KeyType::XChaCha20Poly1305 => T::Xchacha20Poly1305,
        KeyType::Ed25519 => T::Ed25519,
        KeyType::EcdsaP256 => T::EcdsaP256,
        KeyType::EcdsaP384 => T::EcdsaP384,
        KeyType::Rsa3072 => T::Rsa3072,
        KeyType::Rsa4096 => T::Rsa4096,
        KeyType::Hmac => T::Hmac,
    }) as i32
}

/// A hash, `None` when unspecified.
pub(crate) fn hash(value: i32) -> Result<Option<HashAlgorithm>, TransitError> {
    use v1::HashAlgorithm as H;
    Ok(
        match H::try_from(value).map_err(|_| invalid("hash", format!("unknown hash {value}")))? {
            H::Unspecified => None,
            H::Sha2256 => Some(HashAlgorithm::Sha256),
            H::Sha2384 => Some(HashAlgorithm::Sha384),
            H::Sha2512 => Some(HashAlgorithm::Sha512),
        },
    )
}

/// Signing options from the wire fields.
pub(crate) fn sign_options(
    hash_value: i32,
    scheme: i32,
    prehashed: bool,
) -> Result<SignOptions, TransitError> {
    use v1::SignatureScheme as S;
    let scheme = match S::try_from(scheme)
        .map_err(|_| invalid("scheme", format!("unknown signature scheme {scheme}")))?
    {
        S::Unspecified => None,
        S::Pss => Some(SignatureScheme::Pss),
        S::Pkcs1v15 => Some(SignatureScheme::Pkcs1v15),
    };
    Ok(SignOptions {
        hash: hash(hash_value)?,
        scheme,
        prehashed,
    })
}

/// Signing keys are never derived: a context must be empty.
pub(crate) fn no_context(context: &[u8]) -> Result<(), TransitError> {
    if context.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            "context",
            "signing keys are not derived: leave context empty",
        ))
    }
}

/// An optional version: 0 means "the default".
pub(crate) fn version(value: u32) -> Option<u32> {
    (value != 0).then_some(value)
}

/// A new key's settings.
pub(crate) fn new_key(request: &v1::CreateKeyRequest) -> Result<NewKey, TransitError> {
    Ok(NewKey {
        name: key_name(&request.name)?,
        key_type: key_type(request.r#type)?,
        derived: request.derived,
        convergent: request.convergent,
        exportable: request.exportable,
        deletion_allowed: request.deletion_allowed,
        auto_rotate_period: period(request.auto_rotate_period)?.flatten(),
    })
}

/// Changes to a key's settings.
pub(crate) fn key_update(request: &v1::UpdateKeyRequest) -> Result<KeyUpdate, TransitError> {
    Ok(KeyUpdate {
        min_decryption_version: request.min_decryption_version,
        min_encryption_version: request.min_encryption_version,
        deletion_allowed: request.deletion_allowed,
        exportable: request.exportable,
        auto_rotate_period: period(request.auto_rotate_period)?,
    })
}

/// A rotation period: unset `None`, zero `Some(None)` (off).
fn period(value: Option<prost_types::Duration>) -> Result<Option<Option<Duration>>, TransitError> {
    value
        .map(|d| {
            let d = duration("auto_rotate_period", d)
                .map_err(|e| invalid("auto_rotate_period", strip_field(&e)))?;
            Ok((!d.is_zero()).then_some(d))
        })
        .transpose()
}

/// A report's maximum age: unset means 365 days.
pub(crate) fn max_age(value: Option<prost_types::Duration>) -> Result<Duration, TransitError> {
    match value {
        None => Ok(Duration::from_secs(365 * 86_400)),
        Some(d) => {
            let d = duration("max_age", d).map_err(|e| invalid("max_age", strip_field(&e)))?;
            if d.is_zero() {
                return Err(invalid("max_age", "must be positive"));
            }
            Ok(d)
        }
    }
}

fn strip_field(message: &str) -> String {
    message
        .split_once(": ")
        .map_or(message, |(_, rest)| rest)
        .to_string()
}

fn invalid(field: &'static str, reason: impl Into<String>) -> TransitError {
    TransitError::InvalidInput {
        field,
        reason: reason.into(),
    }
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

fn wire_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

/// A key's settings without its versions.
pub(crate) fn wire_policy(policy: &KeyPolicy) -> v1::TransitKey {
    v1::TransitKey {
        name: policy.name.to_string(),
        r#type: wire_key_type(policy.key_type),
        derived: policy.derived,
        convergent: policy.convergent,
        exportable: policy.exportable,
        deletion_allowed: policy.deletion_allowed,
        auto_rotate_period: policy.auto_rotate_period.map(wire_duration),
        latest_version: policy.latest_version,
        min_decryption_version: policy.min_decryption_version,
        min_encryption_version: policy.min_encryption_version,
        min_available_version: policy.min_available_version,
        versions: Vec::new(),
        created_at: Some(timestamp(policy.created_at)),
        rotated_at: Some(timestamp(policy.rotated_at)),
    }
}

/// A key with its versions.
pub(crate) fn wire_key(info: &KeyInfo) -> v1::TransitKey {
    let mut key = wire_policy(&info.policy);
    key.versions = info
        .versions
        .iter()
        .map(|v| v1::KeyVersion {
            version: v.version,
            created_at: Some(timestamp(v.created_at)),
            public_key_pem: v
                .public_key
                .as_deref()
                .and_then(|der| {
                    der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, der).ok()
                })
                .unwrap_or_default(),
        })
        .collect();
    key
}

/// A rotation report entry.
pub(crate) fn wire_overdue(key: &OverdueKey) -> v1::OverdueKey {
    v1::OverdueKey {
        name: key.name.to_string(),
        r#type: wire_key_type(key.key_type),
        latest_version: key.latest_version,
        rotated_at: Some(timestamp(key.rotated_at)),
        age: Some(wire_duration(key.age)),
        auto_rotate_period: key.auto_rotate_period.map(wire_duration),
    }
}

/// The KEKs and the re-wrap's progress, for the wire.
pub(crate) fn wire_kek_status(status: &KekStatus) -> v1::KekStatus {
    v1::KekStatus {
        current: status.current.clone(),
        keks: status
            .keks
            .iter()
            .map(|k| v1::Kek {
                label: k.label.clone(),
                state: match k.state {
                    KekState::Current => v1::KekState::Current,
                    KekState::Retired => v1::KekState::Retired,
                    KekState::Destroyed => v1::KekState::Destroyed,
                } as i32,
                created_at: Some(timestamp(k.created_at)),
                state_changed_at: Some(timestamp(k.state_changed_at)),
                versions: k.versions,
            })
            .collect(),
        versions_to_rewrap: status.to_rewrap,
        rewrap_pending: status.rewrap_pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_unknown_values_are_named() {
        for t in strongroom_transit::ALL_KEY_TYPES {
            assert_eq!(key_type(wire_key_type(t)).expect("known"), t);
        }
        assert_eq!(key_type(0).expect("default"), KeyType::Aes256Gcm96);
        let err = key_type(99).expect_err("unknown").to_string();
        assert_eq!(err, "type: unknown key type 99");
        assert_eq!(hash(0).expect("unset"), None);
        assert!(sign_options(0, 7, false).is_err());
    }

    #[test]
    fn periods_distinguish_unset_zero_and_negative() {
        assert_eq!(period(None).expect("unset"), None);
        let zero = prost_types::Duration {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(period(Some(zero)).expect("zero"), Some(None));
        let day = prost_types::Duration {
            seconds: 86_400,
            nanos: 0,
        };
        assert_eq!(
            period(Some(day)).expect("day"),
            Some(Some(Duration::from_secs(86_400)))
        );
        let negative = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        let err = period(Some(negative)).expect_err("negative").to_string();
        assert!(
            err.starts_with("auto_rotate_period: must not be negative"),
            "{err}"
        );
    }
}
