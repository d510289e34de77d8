//! Fuzzes `OcspResponder::parse_request`: it must never panic, and whatever
//! it accepts must be consistent with its input.
//!
//! Run from the repository root (needs nightly and `cargo install cargo-fuzz`):
//!
//! ```text
//! cargo +nightly fuzz run ocsp_request fuzz/corpus/ocsp_request fuzz/seeds/ocsp_request
//! ```
//!
//! New inputs go to `fuzz/corpus/` (ignored by git); `fuzz/seeds/` holds
//! requests made by `openssl ocsp` for `issuer.der` (nonce, no nonce, SHA-256
//! with two CertIDs, signed). A crash is saved under `fuzz/artifacts/` and
//! replays with `cargo +nightly fuzz run ocsp_request <file>`.
//!
//! `issuer.der` is a throwaway self-signed P-256 CA made by OpenSSL; its
//! private key was discarded. Parsing never signs, so the responder's signer
//! only knows the public key and refuses to sign.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use strongroom_ca::{Issuer, MAX_CERT_IDS, MAX_NONCE_LEN, OcspResponder};
use strongroom_hsm::{PublicKey, SignatureAlgorithm, Signer};

/// A signer that has the issuer's public key and no private key.
struct PublicOnly(PublicKey);

impl Signer for PublicOnly {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaP256Sha256
    }

    fn public_key(&self) -> &PublicKey {
        &self.0
    }

    fn sign(&self, _message: &[u8]) -> strongroom_hsm::Result<Vec<u8>> {
        Err(strongroom_hsm::Error::InvalidInput(
            "the fuzz target never signs".into(),
        ))
    }
}

fn responder() -> &'static OcspResponder {
    static RESPONDER: OnceLock<OcspResponder> = OnceLock::new();
    RESPONDER.get_or_init(|| {
        let key = PublicKey::from_der(include_bytes!("../issuer-spki.der")).expect("issuer key");
        let issuer = Issuer::new(include_bytes!("../issuer.der"), Arc::new(PublicOnly(key)))
            .expect("issuer");
        OcspResponder::new(issuer, None).expect("responder")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = responder().parse_request(data) {
        assert!((1..=MAX_CERT_IDS).contains(&request.cert_ids().len()));
        assert!(request.nonce().is_none_or(|n| (1..=MAX_NONCE_LEN).contains(&n.len())));
        for id in request.cert_ids() {
            assert!(data.windows(id.der().len()).any(|w| w == id.der()));
            assert!(id.lookup_serial().is_none() || id.is_ours());
        }
    }
});
