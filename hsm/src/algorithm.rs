//! Key types the HSM generates and the signature algorithms they sign with.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The type and size of an asymmetric key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySpec {
    /// ECDSA over NIST P-256.
    EcP256,
    /// ECDSA over NIST P-384.
    EcP384,
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// Ed25519 (RFC 8032).
    Ed25519,
}

impl KeySpec {
    /// RSA sizes this crate generates; smaller keys are refused.
    pub const RSA_SIZES: [u32; 3] = [2048, 3072, 4096];

    /// The specs [`crate::Token::generate_key_pair`] accepts.
    pub const GENERATED: [KeySpec; 6] = [
        KeySpec::EcP256,
        KeySpec::EcP384,
        KeySpec::Rsa { bits: 2048 },
        KeySpec::Rsa { bits: 3072 },
        KeySpec::Rsa { bits: 4096 },
        KeySpec::Ed25519,
    ];

    /// The signature algorithm this key type signs with unless told otherwise.
    pub fn default_signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeySpec::EcP256 => SignatureAlgorithm::EcdsaP256Sha256,
            KeySpec::EcP384 => SignatureAlgorithm::EcdsaP384Sha384,
            KeySpec::Rsa { .. } => SignatureAlgorithm::RsaPkcs1Sha256,
            KeySpec::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::EcP256 => f.write_str("ec-p256"),
            KeySpec::EcP384 => f.write_str("ec-p384"),
            KeySpec::Rsa { bits } => write!(f, "rsa-{bits}"),
            KeySpec::Ed25519 => f.write_str("ed25519"),
        }
    }
}

impl FromStr for KeySpec {
    type Err = Error;

    /// Parses `ec-p256`, `ec-p384`, `rsa-2048`, `rsa-3072`, `rsa-4096` or `ed25519`.
    fn from_str(s: &str) -> Result<Self, Error> {
        KeySpec::GENERATED
            .into_iter()
            .find(|spec| spec.to_string() == s)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown key type '{s}' (expected one of: ec-p256, ec-p384, rsa-2048, \
                     rsa-3072, rsa-4096, ed25519)"
                ))
            })
    }
}

/// A signature algorithm: key type, padding and hash together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256; signatures are DER `Ecdsa-Sig-Value`.
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384; signatures are DER `Ecdsa-Sig-Value`.
    EcdsaP384Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512 and a 64-byte salt.
    RsaPssSha512,
    /// Ed25519 over the whole message.
    Ed25519,
}

impl SignatureAlgorithm {
    /// Every algorithm, for iteration in tests and benchmarks.
    pub const ALL: [SignatureAlgorithm; 9] = [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::EcdsaP384Sha384,
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPkcs1Sha384,
        SignatureAlgorithm::RsaPkcs1Sha512,
        SignatureAlgorithm::RsaPssSha256,
        SignatureAlgorithm::RsaPssSha384,
        SignatureAlgorithm::RsaPssSha512,
        SignatureAlgorithm::Ed25519,
    ];

    /// Whether a key of type `spec` can produce this signature.
    pub fn fits(self, spec: KeySpec) -> bool {
        use SignatureAlgorithm::*;
        matches!(
            (self, spec),
            (EcdsaP256Sha256, KeySpec::EcP256)
                | (EcdsaP384Sha384, KeySpec::EcP384)
                | (Ed25519, KeySpec::Ed25519)
                | (
                    RsaPkcs1Sha256
                        | RsaPkcs1Sha384
                        | RsaPkcs1Sha512
                        | RsaPssSha256
                        | RsaPssSha384
                        | RsaPssSha512,
                    KeySpec::Rsa { .. }
                )
        )
    }

    /// The name used in configuration and output, e.g. `ecdsa-p256-sha256`.
    pub fn name(self) -> &'static str {
        use SignatureAlgorithm::*;
        match self {
            EcdsaP256Sha256 => "ecdsa-p256-sha256",
            EcdsaP384Sha384 => "ecdsa-p384-sha384",
            RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            RsaPkcs1Sha384 => "rsa-pkcs1-sha384",
            RsaPkcs1Sha512 => "rsa-pkcs1-sha512",
            RsaPssSha256 => "rsa-pss-sha256",
            RsaPssSha384 => "rsa-pss-sha384",
            RsaPssSha512 => "rsa-pss-sha512",
            Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::InvalidInput(format!("unknown signature algorithm '{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for spec in KeySpec::GENERATED {
            assert_eq!(spec.to_string().parse::<KeySpec>().ok(), Some(spec));
        }
        for alg in SignatureAlgorithm::ALL {
            assert_eq!(alg.name().parse::<SignatureAlgorithm>().ok(), Some(alg));
        }
        assert!("rsa-1024".parse::<KeySpec>().is_err());
    }

    #[test]
    fn algorithms_fit_only_their_key_types() {
        let rsa = KeySpec::Rsa { bits: 3072 };
        assert!(SignatureAlgorithm::RsaPssSha384.fits(rsa));
        assert!(!SignatureAlgorithm::EcdsaP256Sha256.fits(rsa));
        assert!(!SignatureAlgorithm::EcdsaP256Sha256.fits(KeySpec::EcP384));
        assert!(!SignatureAlgorithm::Ed25519.fits(KeySpec::EcP256));
        for spec in KeySpec::GENERATED {
            assert!(spec.default_signature_algorithm().fits(spec));
        }
    }
}
