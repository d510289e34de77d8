//! Public keys as DER `SubjectPublicKeyInfo`, built from token attributes, and
//! independent software verification of HSM signatures.

use der::asn1::{AnyRef, BitString, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode, EncodePem};
use ring::signature::{self as ring_sig, UnparsedPublicKey};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::algorithm::{KeySpec, SignatureAlgorithm};
use crate::error::{Error, Result};

/// id-ecPublicKey (RFC 5480).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / P-256.
pub(crate) const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 / P-384.
pub(crate) const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// rsaEncryption (RFC 8017).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-Ed25519 (RFC 8410).
pub(crate) const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A public key: its type and its DER-encoded `SubjectPublicKeyInfo`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spec: KeySpec,
    spki_der: Vec<u8>,
    /// The contents of the SPKI's BIT STRING (EC point, RSAPublicKey, or Ed25519 key).
    raw: Vec<u8>,
}

impl PublicKey {
    /// Builds an EC public key from a curve and an uncompressed point.
    pub(crate) fn from_ec_point(spec: KeySpec, point: &[u8]) -> Result<Self, String> {
        let (curve, len) = match spec {
            KeySpec::EcP256 => (SECP256R1, 65),
            KeySpec::EcP384 => (SECP384R1, 97),
            other => return Err(format!("{other} is not an ECDSA key type")),
        };
        if point.len() != len || point[0] != 0x04 {
            return Err(format!(
                "expected a {len}-byte uncompressed point for {spec}, got {} bytes",
                point.len()
            ));
        }
        let params = der::Any::encode_from(&curve).map_err(|e| e.to_string())?;
        Self::build(spec, ID_EC_PUBLIC_KEY, Some(params), point)
    }

    /// Builds an RSA public key from its modulus and public exponent (big-endian).
    pub(crate) fn from_rsa(modulus: &[u8], exponent: &[u8]) -> Result<Self, String> {
        let n = UintRef::new(modulus).map_err(|e| e.to_string())?;
        let rsa = pkcs1::RsaPublicKey {
            modulus: n,
            public_exponent: UintRef::new(exponent).map_err(|e| e.to_string())?,
        };
        let bits = u32::try_from(n.as_bytes().len() * 8).map_err(|e| e.to_string())?
            - n.as_bytes().first().map_or(0, |b| b.leading_zeros());
        let body = rsa.to_der().map_err(|e| e.to_string())?;
        Self::build(
            KeySpec::Rsa { bits },
            RSA_ENCRYPTION,
            Some(der::Any::from(AnyRef::NULL)),
            &body,
        )
    }

    /// Builds an Ed25519 public key from its 32 bytes.
    pub(crate) fn from_ed25519(key: &[u8]) -> Result<Self, String> {
        if key.len() != 32 {
            return Err(format!(
                "Ed25519 public key has {} bytes, expected 32",
                key.len()
            ));
        }
        Self::build(KeySpec::Ed25519, ID_ED25519, None, key)
    }

    fn build(
        spec: KeySpec,
        oid: ObjectIdentifier,
        parameters: Option<der::Any>,
        raw: &[u8],
    ) -> Result<Self, String> {
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned { oid, parameters },
            subject_public_key: BitString::from_bytes(raw).map_err(|e| e.to_string())?,
        };
        Ok(PublicKey {
            spec,
            spki_der: spki.to_der().map_err(|e| e.to_string())?,
            raw: raw.to_vec(),
        })
    }

    /// Builds a public key from its raw form: the uncompressed point for
    /// ECDSA, the 32 bytes for Ed25519, the DER `RSAPublicKey` for RSA.
    pub fn from_raw(spec: KeySpec, raw: &[u8]) -> Result<Self> {
        let built = match spec {
            KeySpec::EcP256 | KeySpec::EcP384 => Self::from_ec_point(spec, raw),
            KeySpec::Ed25519 => Self::from_ed25519(raw),
            KeySpec::Rsa { .. } => pkcs1::RsaPublicKey::from_der(raw)
                .map_err(|e| e.to_string())
                .and_then(|k| Self::from_rsa(k.modulus.as_bytes(), k.public_exponent.as_bytes())),
        };
        built.map_err(|reason| Error::PublicKey {
            label: "(given public key)".into(),
            reason,
        })
    }

    /// Parses a DER `SubjectPublicKeyInfo` of a supported key type.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::PublicKey {
            label: "(given public key)".into(),
            reason,
        };
        let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| bad(e.to_string()))?;
        let raw = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad("public key bit string has unused bits".into()))?;
        let key = match spki.algorithm.oid {
            ID_EC_PUBLIC_KEY => {
                let curve: ObjectIdentifier = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .ok_or_else(|| bad("EC key without curve parameters".into()))?
                    .decode_as()
                    .map_err(|e| bad(format!("EC curve parameters: {e}")))?;
                let spec = match curve {
                    SECP256R1 => KeySpec::EcP256,
                    SECP384R1 => KeySpec::EcP384,
                    other => return Err(bad(format!("unsupported EC curve {other}"))),
                };
                Self::from_ec_point(spec, raw)
            }
            RSA_ENCRYPTION => {
                let rsa = pkcs1::RsaPublicKey::from_der(raw).map_err(|e| bad(e.to_string()))?;
                Self::from_rsa(rsa.modulus.as_bytes(), rsa.public_exponent.as_bytes())
            }
            ID_ED25519 => Self::from_ed25519(raw),
            other => return Err(bad(format!("unsupported key algorithm {other}"))),
        }
        .map_err(bad)?;
        if key.spki_der != der {
            return Err(bad("not in canonical DER form".into()));
        }
        Ok(key)
    }

    /// The key's type and size.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The DER-encoded `SubjectPublicKeyInfo`.
    pub fn der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The `SubjectPublicKeyInfo` as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        let spki = SubjectPublicKeyInfoOwned::from_der(&self.spki_der)
            .and_then(|s| s.to_pem(der::pem::LineEnding::LF));
        // The DER was produced by this type, so it always re-parses.
        spki.unwrap_or_default()
    }

    /// Lower-case hex SHA-256 of the DER `SubjectPublicKeyInfo`.
    pub fn fingerprint(&self) -> String {
        hex(ring::digest::digest(&ring::digest::SHA256, &self.spki_der).as_ref())
    }

    /// Checks a signature with software (ring), independently of the HSM.
    pub fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        use SignatureAlgorithm::*;
        let bad = || Error::BadSignature {
            label: format!("SHA-256:{}", self.fingerprint()),
            algorithm: algorithm.to_string(),
        };
        if !algorithm.fits(self.spec) {
            return Err(bad());
        }
        let alg: &dyn ring_sig::VerificationAlgorithm = match algorithm {
            EcdsaP256Sha256 => &ring_sig::ECDSA_P256_SHA256_ASN1,
            EcdsaP384Sha384 => &ring_sig::ECDSA_P384_SHA384_ASN1,
            RsaPkcs1Sha256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
            RsaPkcs1Sha384 => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
            RsaPkcs1Sha512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
            RsaPssSha256 => &ring_sig::RSA_PSS_2048_8192_SHA256,
            RsaPssSha384 => &ring_sig::RSA_PSS_2048_8192_SHA384,
            RsaPssSha512 => &ring_sig::RSA_PSS_2048_8192_SHA512,
            Ed25519 => &ring_sig::ED25519,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, signature)
            .map_err(|_| bad())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey({}, SHA-256:{})",
            self.spec,
            self.fingerprint()
        )
    }
}

/// Strips the DER OCTET STRING that PKCS#11 wraps `CKA_EC_POINT` in.
///
/// Some modules return the bare point; both forms are accepted.
pub(crate) fn unwrap_ec_point(attr: &[u8], expected_len: usize) -> Result<Vec<u8>, String> {
    if attr.len() == expected_len {
        return Ok(attr.to_vec());
    }
    OctetStringRef::from_der(attr)
        .map(|o| o.as_bytes().to_vec())
        .map_err(|e| format!("CKA_EC_POINT is neither a raw point nor an OCTET STRING: {e}"))
}

/// Converts a PKCS#11 ECDSA signature (raw `r || s`) to DER `Ecdsa-Sig-Value`.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, String> {
    #[derive(der::Sequence)]
    struct EcdsaSigValue<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(format!("ECDSA signature of odd length {}", raw.len()));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let sig = EcdsaSigValue {
        r: UintRef::new(r).map_err(|e| e.to_string())?,
        s: UintRef::new(s).map_err(|e| e.to_string())?,
    };
    sig.to_der().map_err(|e| e.to_string())
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_strips_and_pads_integers() {
        // r has a leading zero byte (must be stripped), s has its top bit set
        // (must get a 0x00 pad so it stays positive).
        let mut raw = vec![0u8; 64];
        raw[1] = 0x01;
        raw[32] = 0x80;
        let der = ecdsa_raw_to_der(&raw).expect("encodes");
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..4], &[0x02, 31]); // r: 31 bytes after stripping one zero
        let s_at = 4 + 31;
        assert_eq!(&der[s_at..s_at + 3], &[0x02, 33, 0x00]); // s: padded to 33 bytes
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }

    #[test]
    fn spki_round_trips_through_der() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let key = PublicKey::from_ec_point(KeySpec::EcP256, &point).expect("builds");
        let parsed = PublicKey::from_der(key.der()).expect("parses");
        assert_eq!(parsed, key);
        assert!(key.to_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let ed = PublicKey::from_ed25519(&[9u8; 32]).expect("builds");
        assert_eq!(PublicKey::from_der(ed.der()).expect("parses"), ed);
        assert!(PublicKey::from_ec_point(KeySpec::EcP384, &point).is_err());
    }

    #[test]
    fn rsa_size_is_counted_from_the_modulus() {
        let mut n = vec![0x00, 0xC0];
        n.extend(vec![0x11; 255]);
        let key = PublicKey::from_rsa(&n, &[1, 0, 1]).expect("builds");
        assert_eq!(key.spec(), KeySpec::Rsa { bits: 2048 });
        assert_eq!(PublicKey::from_der(key.der()).expect("parses"), key);
    }
}
