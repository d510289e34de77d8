//! Keyed digests of sensitive values, so an audit record can say which
//! plaintext, ciphertext or CSR a request carried without revealing it.
//!
//! At unseal the appliance asks its HSM HMAC key (generated in the token,
//! never extractable: `audit.hmac_key`) for HMAC-SHA256 of a fixed label;
//! the result is the digest key, kept in memory (zeroized) until the
//! appliance seals. A value's digest is the first 16 bytes of
//! HMAC-SHA256(digest key, value) in unpadded base64url (22 characters):
//! 128 bits, enough to tell values apart, short enough for a batch's record
//! to carry one digest per item. Records name the fields that hold digests
//! with a `_hmac` suffix (`plaintext_hmac`, `ciphertext_hmac`, …). Nobody without the HSM key can compute or confirm a
//! digest offline; an auditor asks the appliance for the digest of a value
//! they know (`strongroom audit digest`) and searches the trail for it.
//!
//! The HMAC state made from the key for each digest (the `hmac` crate's) is
//! not wiped when dropped; the key itself is.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use strongroom_hsm::HmacKey;
use zeroize::Zeroizing;

/// What the HSM key signs to make the digest key.
const DERIVATION_LABEL: &[u8] = b"strongroom audit value digests v1";

/// Bytes of HMAC kept in a digest.
const DIGEST_BYTES: usize = 16;

/// The digest key of an unsealed appliance.
pub(crate) struct ValueDigests {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ValueDigests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueDigests(..)")
    }
}

impl ValueDigests {
    /// The digest key that `hsm_key` derives.
    pub(crate) fn derive(hsm_key: &HmacKey) -> strongroom_hsm::Result<ValueDigests> {
        Ok(ValueDigests {
            key: hsm_key.sign(DERIVATION_LABEL)?,
        })
    }

    /// A digest key given directly (tests).
    #[cfg(test)]
    pub(crate) fn from_key(key: [u8; 32]) -> ValueDigests {
        ValueDigests {
            key: Zeroizing::new(key),
        }
    }

    /// The digest of `value`.
    pub(crate) fn digest(&self, value: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&*self.key)
            .expect("HMAC takes a key of any length");
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..DIGEST_BYTES])
    }

    /// The digests of `values`, comma-separated, in order.
    pub(crate) fn digests<'a>(&self, values: impl IntoIterator<Item = &'a [u8]>) -> String {
        let values = values.into_iter();
        let mut joined = String::with_capacity(23 * values.size_hint().0);
        for value in values {
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(&self.digest(value));
        }
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_short_and_stable() {
        let digests = ValueDigests::from_key([7; 32]);
        let a = digests.digest(b"card 4111");
        assert_eq!(a, digests.digest(b"card 4111"));
        assert_ne!(a, digests.digest(b"card 4112"));
        assert_eq!(a.len(), 22);
        // Known answer: HMAC-SHA256 (RFC 4231 style) truncated to 16 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).expect("key");
        mac.update(b"card 4111");
        let full = mac.finalize().into_bytes();
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&full[..16]);
        assert_eq!(a, expected);
        // Another key, another digest.
        assert_ne!(a, ValueDigests::from_key([8; 32]).digest(b"card 4111"));
        assert_eq!(
            digests.digests([b"a".as_slice(), b"b".as_slice()]),
            format!("{},{}", digests.digest(b"a"), digests.digest(b"b"))
        );
        assert_eq!(digests.digests(std::iter::empty()), "");
        assert_eq!(format!("{digests:?}"), "ValueDigests(..)");
    }
}
