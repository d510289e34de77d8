//! Key generation and signing against a real SoftHSM2 token, every signature
//! checked by an independent verifier (OpenSSL) and by ring.

mod common;

use std::sync::Arc;

use common::{fixture, path, run};
use strongroom_hsm::{Error, KeySpec, SignatureAlgorithm, Signer};

/// Verifies `sig` over `msg` with `openssl`, given the key's PEM.
fn openssl_verifies(pem: &str, alg: SignatureAlgorithm, msg: &[u8], sig: &[u8]) -> bool {
    use SignatureAlgorithm::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, m, s) = (
        dir.path().join("key.pem"),
        dir.path().join("msg"),
        dir.path().join("sig"),
    );
    std::fs::write(&key, pem).expect("write key");
    std::fs::write(&m, msg).expect("write msg");
    std::fs::write(&s, sig).expect("write sig");
    let (key, m, s) = (path(&key), path(&m), path(&s));
    let digest = match alg {
        EcdsaP256Sha256 | RsaPkcs1Sha256 | RsaPssSha256 => "-sha256",
        EcdsaP384Sha384 | RsaPkcs1Sha384 | RsaPssSha384 => "-sha384",
        RsaPkcs1Sha512 | RsaPssSha512 => "-sha512",
        _ => "",
    };
    let out = match alg {
        Ed25519 => run(
            "openssl",
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-in", m, "-sigfile", s,
            ],
        ),
        RsaPssSha256 | RsaPssSha384 | RsaPssSha512 => run(
            "openssl",
            &[
                "dgst",
                digest,
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-verify",
                key,
                "-signature",
                s,
                m,
            ],
        ),
        _ => run(
            "openssl",
            &["dgst", digest, "-verify", key, "-signature", s, m],
        ),
    };
    out.status.success()
}

#[test]
fn every_key_type_signs_what_openssl_and_ring_verify() {
    let token = &fixture("hsm-sign").token;
    let message = b"strongroom: to be signed";
    for spec in KeySpec::GENERATED {
        let key = token
            .generate_key_pair(&format!("sign-{spec}"), spec)
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(key.spec(), spec);
        let pem = key.public_key().to_pem();
        for alg in SignatureAlgorithm::ALL.into_iter().filter(|a| a.fits(spec)) {
            let signer = key.signer(alg).expect("algorithm fits");
            let sig = signer
                .sign(message)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            signer
                .public_key()
                .verify(alg, message, &sig)
                .unwrap_or_else(|e| panic!("ring rejects {alg}: {e}"));
            assert!(
                openssl_verifies(&pem, alg, message, &sig),
                "openssl rejects {alg}"
            );
            let mut flipped = sig.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 0x01;
            assert!(
                !openssl_verifies(&pem, alg, message, &flipped),
                "openssl accepts a flipped {alg}"
            );
            assert!(
                signer
                    .public_key()
                    .verify(alg, b"other message", &sig)
                    .is_err()
            );
        }
    }
}

#[test]
fn algorithm_must_fit_the_key() {
    let token = &fixture("hsm-sign").token;
    let key = token
        .generate_key_pair("fit-p256", KeySpec::EcP256)
        .expect("generate");
    let err = key
        .signer(SignatureAlgorithm::RsaPssSha256)
        .expect_err("mismatch");
    assert!(matches!(err, Error::AlgorithmMismatch { .. }), "{err}");
    let err = token
        .generate_key_pair("rsa-1024", KeySpec::Rsa { bits: 1024 })
        .expect_err("too small");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[test]
fn a_taken_label_is_refused() {
    let token = &fixture("hsm-sign").token;
    token
        .generate_key_pair("taken", KeySpec::EcP256)
        .expect("first");
    let err = token
        .generate_key_pair("taken", KeySpec::EcP384)
        .expect_err("second");
    assert!(matches!(err, Error::LabelExists { .. }), "{err}");
    assert!(err.to_string().contains("'taken'"), "{err}");
    let err = token
        .generate_wrapping_key("taken")
        .expect_err("wrapping key too");
    assert!(matches!(err, Error::LabelExists { .. }), "{err}");
}

#[test]
fn keys_are_found_by_label_and_public_key() {
    let token = &fixture("hsm-sign").token;
    let key = token
        .generate_key_pair("findme", KeySpec::EcP384)
        .expect("generate");
    let found = token
        .find_key_pair("findme", key.public_key())
        .expect("found");
    assert_eq!(found.id(), key.id());
    assert_eq!(found.id().len(), 16);
    let sig = found
        .sign(SignatureAlgorithm::EcdsaP384Sha384, b"m")
        .expect("sign");
    key.public_key()
        .verify(SignatureAlgorithm::EcdsaP384Sha384, b"m", &sig)
        .expect("verifies");

    let err = token
        .find_key_pair("no-such-key", key.public_key())
        .expect_err("unknown label");
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
    assert!(err.to_string().contains("no-such-key"), "{err}");

    let other = token
        .generate_key_pair("other", KeySpec::EcP384)
        .expect("generate");
    let err = token
        .find_key_pair("findme", other.public_key())
        .expect_err("wrong public key");
    assert!(
        matches!(
            err,
            Error::KeyNotFound {
                with_public_key: true,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn several_matching_keys_are_an_error() {
    let fx = fixture("hsm-sign");
    let key = fx
        .token
        .generate_key_pair("twin", KeySpec::EcP256)
        .expect("generate");
    // Duplicate both halves outside Strongroom, as a careless operator might.
    let pkcs11 = cryptoki::context::Pkcs11::new(&fx.created.module).expect("load");
    let slot = pkcs11
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .is_ok_and(|i| i.label() == fx.created.label)
        })
        .expect("slot by label");
    let session = pkcs11.open_rw_session(slot).expect("session");
    use cryptoki::object::Attribute;
    for handle in session
        .find_objects(&[Attribute::Label(b"twin".to_vec())])
        .expect("find")
    {
        session
            .copy_object(handle, &[Attribute::Token(true)])
            .expect("copy");
    }
    drop(session);
    let err = fx
        .token
        .find_key_pair("twin", key.public_key())
        .expect_err("ambiguous");
    assert!(matches!(err, Error::AmbiguousKey { count: 2, .. }), "{err}");
}

#[test]
fn many_concurrent_signers_share_a_small_pool() {
    let token = &fixture("hsm-sign").token;
    let key = token
        .generate_key_pair("pool-p256", KeySpec::EcP256)
        .expect("generate");
    let signer = Arc::new(
        key.signer(SignatureAlgorithm::EcdsaP256Sha256)
            .expect("signer"),
    );
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let signer = Arc::clone(&signer);
            std::thread::spawn(move || {
                for i in 0..100 {
                    let msg = format!("thread {t} message {i}");
                    let sig = signer.sign(msg.as_bytes()).expect("sign");
                    signer
                        .public_key()
                        .verify(signer.algorithm(), msg.as_bytes(), &sig)
                        .expect("verifies");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("signer thread");
    }
}

#[test]
fn random_bytes_come_from_the_hsm() {
    let token = &fixture("hsm-sign").token;
    let a = token.random(32).expect("random");
    let b = token.random(32).expect("random");
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert_ne!(a, vec![0u8; 32]);
}
