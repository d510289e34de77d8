//! Transit key types and the operations each supports.

use std::fmt;
use std::str::FromStr;

/// The type of a transit key, fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// AES-256-GCM with 96-bit random nonces (the default).
    Aes256Gcm96,
    /// ChaCha20-Poly1305 (RFC 8439) with 96-bit random nonces.
    ChaCha20Poly1305,
    /// XChaCha20-Poly1305 with 192-bit random nonces.
    XChaCha20Poly1305,
    /// Ed25519 signatures (RFC 8032).
    Ed25519,
    /// ECDSA over P-256 (RFC 6979 deterministic nonces).
    EcdsaP256,
    /// ECDSA over P-384 (RFC 6979 deterministic nonces).
    EcdsaP384,
    /// RSA-3072 signatures (PSS or PKCS#1 v1.5).
    Rsa3072,
    /// RSA-4096 signatures (PSS or PKCS#1 v1.5).
    Rsa4096,
    /// HMAC (SHA-2) with a 256-bit key.
    Hmac,
}

/// Every key type, in documentation order.
pub const ALL_KEY_TYPES: [KeyType; 9] = [
    KeyType::Aes256Gcm96,
    KeyType::ChaCha20Poly1305,
    KeyType::XChaCha20Poly1305,
    KeyType::Ed25519,
    KeyType::EcdsaP256,
    KeyType::EcdsaP384,
    KeyType::Rsa3072,
    KeyType::Rsa4096,
    KeyType::Hmac,
];

/// What a transit request asks a key to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Encrypt, decrypt, rewrap, data keys.
    Encrypt,
    /// Sign and verify.
    Sign,
    /// Compute and verify HMACs.
    Hmac,
    /// Derive per-context keys.
    Derive,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Encrypt => "encrypt or decrypt",
            Operation::Sign => "sign or verify",
            Operation::Hmac => "compute HMACs",
            Operation::Derive => "derive per-context keys",
        })
    }
}

impl KeyType {
    /// The name used in configuration, the CLI and the audit trail
    /// (`aes256-gcm96`, `ed25519`, …).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::ChaCha20Poly1305 => "chacha20-poly1305",
            KeyType::XChaCha20Poly1305 => "xchacha20-poly1305",
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::Hmac => "hmac",
        }
    }

    /// Whether keys of this type can do `operation`.
    pub fn supports(self, operation: Operation) -> bool {
        match operation {
            Operation::Encrypt => self.is_aead(),
            Operation::Sign => matches!(
                self,
                KeyType::Ed25519
                    | KeyType::EcdsaP256
                    | KeyType::EcdsaP384
                    | KeyType::Rsa3072
                    | KeyType::Rsa4096
            ),
            Operation::Hmac => self == KeyType::Hmac,
            // Per-context keys exist for the AEAD types only.
            Operation::Derive => self.is_aead(),
        }
    }

    pub(crate) fn is_aead(self) -> bool {
        matches!(
            self,
            KeyType::Aes256Gcm96 | KeyType::ChaCha20Poly1305 | KeyType::XChaCha20Poly1305
        )
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_KEY_TYPES
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ALL_KEY_TYPES.iter().map(|t| t.name()).collect();
                format!("unknown key type {s:?} (one of {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_round_trip_and_operations_are_disjoint() {
        for t in ALL_KEY_TYPES {
            assert_eq!(t.name().parse::<KeyType>().unwrap(), t);
            let ops = [Operation::Encrypt, Operation::Sign, Operation::Hmac];
            assert_eq!(ops.iter().filter(|op| t.supports(**op)).count(), 1, "{t}");
        }
        assert!(
            "aes128"
                .parse::<KeyType>()
                .unwrap_err()
                .contains("aes256-gcm96")
        );
    }
}
