//! Offline root-key ceremonies for Strongroom.
//!
//! The `ceremony` binary runs one ceremony per reviewed TOML file on an
//! air-gapped machine with the offline HSM: `root` (key generated in the
//! HSM, self-signed root certificate), `intermediate` (a subordinate CA
//! certificate over a public key or CSR from the online HSM), `crl` (the
//! root's CRL of revoked CA certificates), `key` (a key pair only) and
//! `cross-sign`. Every step is recorded in a hash-chained transcript, and
//! `ceremony verify DIR` re-checks a ceremony's directory offline. The crate
//! links no networking code and no async runtime: it must stay small enough
//! to audit.
//!
//! - [`config`]: the strict ceremony file ([`Ceremony`]).
//! - [`run()`]: checks everything, then acts step by step (module `run`).
//! - [`verify()`]: the offline re-check (module `verify`).
//! - [`transcript`]: the hash-chained JSON-lines record.
//! - [`chain`]: the hash-chained JSON-lines format itself, which the
//!   appliance's audit trail shares.
//! - [`shares`]: K-of-N Shamir sharing of a 256-bit secret with integrity
//!   checks (set id, per-share checksum, a verifier of the secret), in a
//!   printable, versioned text format. The ceremony uses it to split the
//!   secret the offline token's PIN is derived from ([`hsm_pin`]); the
//!   appliance's seal uses it to combine the officers' shares.
//! - [`envelope`]: share files encrypted to each officer's age X25519 key.
//!
//! Order of a ceremony: everything that can refuse (the file, existing
//! outputs, inputs, validity limits, lints over a preview of what will be
//! signed, the shares, the HSM PIN, a taken key label, the signing key found
//! by label *and* public key) is checked before anything is written; then
//! each step is announced, confirmed, done and recorded.

pub mod chain;
pub mod config;
pub mod envelope;
mod error;
mod files;
mod operator;
mod run;
pub mod shares;
mod signing;
pub mod transcript;
mod verify;

use zeroize::Zeroizing;

pub use config::{Ceremony, Kind};
pub use error::CeremonyError;
pub use operator::{Console, Operator};
pub use run::{CONFIG_COPY, Outcome, RunOptions, run};
pub use verify::{Verified, verify};

/// HKDF `info` for the HSM user PIN; part of the on-token contract.
pub const HSM_PIN_INFO: &[u8] = b"strongroom hsm user pin v1";

/// The HSM user PIN derived from the officers' secret: HKDF-SHA256 with an
/// empty salt, the secret as input keying material and
/// [`HSM_PIN_INFO`] as info, 32 bytes rendered as 64 lower-case hex digits.
///
/// The offline ceremony sets the offline token's PIN to this; the online
/// appliance derives its token's PIN the same way from its unseal secret.
/// Nothing stores the PIN: it exists only while `K` shares are combined.
///
/// ```
/// use strongroom_ceremony::{hsm_pin, shares::Secret};
/// let pin = hsm_pin(&Secret::from_bytes([7; 32]));
/// assert_eq!(format!("{pin:?}"), "Pin([REDACTED])");
/// ```
pub fn hsm_pin(secret: &shares::Secret) -> strongroom_hsm::Pin {
    strongroom_hsm::Pin::new(pin_text(secret).as_str())
}

fn pin_text(secret: &shares::Secret) -> Zeroizing<String> {
    use ring::hkdf;
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let mut okm = Zeroizing::new([0u8; 32]);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(secret.as_bytes());
    // Expanding 32 bytes from SHA-256 (at most 255 × 32) cannot fail.
    if let Ok(expanded) = prk.expand(&[HSM_PIN_INFO], Len(okm.len())) {
        let _ = expanded.fill(&mut okm[..]);
    }
    let mut text = Zeroizing::new(String::with_capacity(64));
    for b in okm.iter() {
        text.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        text.push(char::from(b"0123456789abcdef"[usize::from(b & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derivation is a contract with the online appliance: recompute it
    /// from RFC 5869 with plain HMAC-SHA256 (empty salt = 32 zero bytes).
    #[test]
    fn hsm_pin_is_hkdf_sha256_of_the_secret_in_hex() {
        let secret = shares::Secret::from_bytes([0x42; 32]);
        let zero = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[0u8; 32]);
        let prk = ring::hmac::sign(&zero, secret.as_bytes());
        let prk = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, prk.as_ref());
        let mut info = HSM_PIN_INFO.to_vec();
        info.push(1);
        let expected = files::hex(ring::hmac::sign(&prk, &info).as_ref());
        assert_eq!(pin_text(&secret).as_str(), expected);
        assert_eq!(expected.len(), 64);
        let other = shares::Secret::from_bytes([0x43; 32]);
        assert_ne!(pin_text(&other).as_str(), expected);
        assert_eq!(format!("{:?}", hsm_pin(&secret)), "Pin([REDACTED])");
    }
}
