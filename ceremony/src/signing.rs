//! Signing twice, once for real: the `ca` crate builds and lints the
//! to-be-signed bytes and hands them to a [`Signer`]. The ceremony first
//! hands it a [`PreviewSigner`], which keeps those bytes and signs nothing
//! (so the lints run, and the operator reviews what will be signed, before
//! the HSM is asked for anything); then an [`ExactSigner`], which lets the
//! HSM sign only those same bytes, once. After signing, the output's signed
//! part is compared byte for byte with the previewed bytes.
//!
//! Also here: serials and the Shamir secret from the HSM's generator.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rand_core::{TryCryptoRng, TryRng};
use strongroom_ca::CaError;
use strongroom_hsm::{PublicKey, RandomSource, SignatureAlgorithm, Signer, Token};

use crate::error::CeremonyError;
use crate::shares::SystemRng;

/// The refusal a [`PreviewSigner`] answers with.
const PREVIEW_ONLY: &str = "ceremony preview: nothing is signed";

/// Keeps the bytes it is asked to sign, and signs nothing.
pub(crate) struct PreviewSigner {
    public_key: PublicKey,
    algorithm: SignatureAlgorithm,
    captured: Mutex<Option<Vec<u8>>>,
}

impl PreviewSigner {
    pub(crate) fn new(public_key: PublicKey, algorithm: SignatureAlgorithm) -> Self {
        PreviewSigner {
            public_key,
            algorithm,
            captured: Mutex::new(None),
        }
    }

    /// Runs `build` (which must end by asking this signer to sign) and
    /// returns the bytes it asked to sign: they passed the `ca` crate's lints.
    pub(crate) fn capture<T>(
        &self,
        build: impl FnOnce() -> Result<T, CaError>,
    ) -> Result<Vec<u8>, CeremonyError> {
        match build() {
            Err(CaError::Hsm(strongroom_hsm::Error::InvalidInput(m))) if m == PREVIEW_ONLY => self
                .captured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .ok_or_else(|| CeremonyError::PostCheck("the preview captured nothing".into())),
            Err(CaError::Lint(findings)) => Err(CeremonyError::Refused(format!(
                "lints failed before signing: {}",
                findings.join("; ")
            ))),
            Err(e) => Err(e.into()),
            Ok(_) => Err(CeremonyError::PostCheck(
                "the preview produced a signature; refusing".into(),
            )),
        }
    }
}

impl Signer for PreviewSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn sign(&self, message: &[u8]) -> strongroom_hsm::Result<Vec<u8>> {
        *self
            .captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message.to_vec());
        Err(strongroom_hsm::Error::InvalidInput(PREVIEW_ONLY.into()))
    }
}

/// Passes exactly one message to the HSM: the one previewed.
pub(crate) struct ExactSigner<S> {
    inner: S,
    expected: Vec<u8>,
    used: AtomicBool,
}

impl<S: Signer> ExactSigner<S> {
    pub(crate) fn new(inner: S, expected: Vec<u8>) -> Self {
        ExactSigner {
            inner,
            expected,
            used: AtomicBool::new(false),
        }
    }
}

impl<S: Signer> Signer for ExactSigner<S> {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }

    fn sign(&self, message: &[u8]) -> strongroom_hsm::Result<Vec<u8>> {
        if message != self.expected.as_slice() {
            return Err(strongroom_hsm::Error::InvalidInput(
                "refused to sign: the bytes differ from the ones linted and reviewed".into(),
            ));
        }
        if self.used.swap(true, Ordering::SeqCst) {
            return Err(strongroom_hsm::Error::InvalidInput(
                "refused to sign: this ceremony step already signed once".into(),
            ));
        }
        self.inner.sign(message)
    }
}

/// A serial: `0x01` then 16 bytes from the HSM's generator (positive, 128
/// random bits, 17 octets: within RFC 5280's 20).
pub(crate) fn serial(token: &Token) -> Result<Vec<u8>, CeremonyError> {
    let mut serial = vec![0x01];
    serial.extend(token.random(16)?);
    Ok(serial)
}

/// Random bytes from the HSM XORed with the operating system's: as strong
/// as the better of the two. For the Shamir secret and the share set id.
pub(crate) struct MixedRng<'a> {
    token: &'a Token,
    os: SystemRng,
}

impl<'a> MixedRng<'a> {
    pub(crate) fn new(token: &'a Token) -> Self {
        MixedRng {
            token,
            os: SystemRng::new(),
        }
    }
}

/// The HSM's or the OS's generator failed.
#[derive(Debug, thiserror::Error)]
#[error("random generator failed: {0}")]
pub(crate) struct RngError(String);

impl TryRng for MixedRng<'_> {
    type Error = RngError;

    fn try_next_u32(&mut self) -> Result<u32, RngError> {
        let mut buf = [0u8; 4];
        self.try_fill_bytes(&mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngError> {
        let mut buf = [0u8; 8];
        self.try_fill_bytes(&mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngError> {
        let mut hsm = zeroize::Zeroizing::new(vec![0u8; dst.len()]);
        self.token
            .fill(&mut hsm)
            .map_err(|e| RngError(e.to_string()))?;
        self.os
            .try_fill_bytes(dst)
            .map_err(|e| RngError(e.to_string()))?;
        for (d, h) in dst.iter_mut().zip(hsm.iter()) {
            *d ^= h;
        }
        Ok(())
    }
}

impl TryCryptoRng for MixedRng<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A software signer standing in for the HSM: counts its signatures.
    struct Counting {
        key: PublicKey,
        signed: std::sync::atomic::AtomicUsize,
    }

    impl Signer for Counting {
        fn algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::EcdsaP256Sha256
        }
        fn public_key(&self) -> &PublicKey {
            &self.key
        }
        fn sign(&self, _message: &[u8]) -> strongroom_hsm::Result<Vec<u8>> {
            self.signed.fetch_add(1, Ordering::SeqCst);
            Ok(b"signature".to_vec())
        }
    }

    fn key() -> PublicKey {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("generate");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("parse");
        PublicKey::from_raw(strongroom_hsm::KeySpec::EcP256, pair.public_key().as_ref())
            .expect("public key")
    }

    #[test]
    fn the_preview_captures_and_signs_nothing() {
        let preview = PreviewSigner::new(key(), SignatureAlgorithm::EcdsaP256Sha256);
        let tbs = preview
            .capture(|| preview.sign(b"to be signed").map_err(CaError::from))
            .expect("captured");
        assert_eq!(tbs, b"to be signed");
        let refused = preview.capture(|| Err::<(), _>(CaError::Lint(vec!["bad".into()])));
        assert!(matches!(refused, Err(CeremonyError::Refused(m)) if m.contains("bad")));
    }

    #[test]
    fn the_exact_signer_signs_only_the_previewed_bytes_once() {
        let inner = Counting {
            key: key(),
            signed: Default::default(),
        };
        let exact = ExactSigner::new(inner, b"linted".to_vec());
        assert!(exact.sign(b"something else").is_err());
        assert_eq!(exact.inner.signed.load(Ordering::SeqCst), 0);
        assert!(exact.sign(b"linted").is_ok());
        assert!(exact.sign(b"linted").is_err(), "a second signature");
        assert_eq!(exact.inner.signed.load(Ordering::SeqCst), 1);
    }
}
