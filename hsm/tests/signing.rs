//! Key generation and signing, every signature checked by an independent
//! verifier (OpenSSL) and by ring.
//!
//! The backend-neutral tests run against every backend of
//! `common::backends` (a SoftHSM2 token through PKCS#11, and a software
//! YubiHSM2 through our native backend), through the `KeyStore` trait. The
//! rest are PKCS#11-only because they use what only PKCS#11 has: `pkcs11:`
//! URIs, and objects planted through a raw PKCS#11 session.

mod common;

use std::sync::Arc;

use common::backends::backends;
use common::{fixture, path, run};
use strongroom_hsm::{Error, HsmSigner, KeySpec, Pkcs11Uri, PublicKey, SignatureAlgorithm, Signer};

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
    for backend in backends("hsm-sign") {
        let store = &backend.store;
        let message = b"strongroom: to be signed";
        for &spec in &backend.specs {
            let key = store
                .generate_signing_key(&format!("sign-{spec}"), spec)
                .unwrap_or_else(|e| panic!("{}: {spec}: {e}", backend.name));
            assert_eq!(key.spec(), spec);
            let pem = key.public_key().to_pem();
            for alg in backend.algorithms(spec) {
                let signer = HsmSigner::new(Arc::clone(&key), alg).expect("algorithm fits");
                let sig = signer
                    .sign(message)
                    .unwrap_or_else(|e| panic!("{}: {alg}: {e}", backend.name));
                signer
                    .public_key()
                    .verify(alg, message, &sig)
                    .unwrap_or_else(|e| panic!("{}: ring rejects {alg}: {e}", backend.name));
                assert!(
                    openssl_verifies(&pem, alg, message, &sig),
                    "{}: openssl rejects {alg}",
                    backend.name
                );
                let mut flipped = sig.clone();
                let last = flipped.len() - 1;
                flipped[last] ^= 0x01;
                assert!(
                    !openssl_verifies(&pem, alg, message, &flipped),
                    "{}: openssl accepts a flipped {alg}",
                    backend.name
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
}

#[test]
fn algorithm_must_fit_the_key() {
    for backend in backends("hsm-sign") {
        let key = backend
            .store
            .generate_signing_key("fit-p256", KeySpec::EcP256)
            .expect("generate");
        let err = HsmSigner::new(key, SignatureAlgorithm::RsaPssSha256).expect_err("mismatch");
        assert!(matches!(err, Error::AlgorithmMismatch { .. }), "{err}");
        let err = backend
            .store
            .generate_signing_key("rsa-1024", KeySpec::Rsa { bits: 1024 })
            .expect_err("too small");
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
}

#[test]
fn a_taken_label_is_refused() {
    for backend in backends("hsm-sign") {
        backend
            .store
            .generate_signing_key("taken", KeySpec::EcP256)
            .expect("first");
        let err = backend
            .store
            .generate_signing_key("taken", KeySpec::Ed25519)
            .expect_err("second");
        assert!(matches!(err, Error::LabelExists { .. }), "{err}");
        assert!(err.to_string().contains("'taken'"), "{err}");
        let err = backend
            .store
            .generate_wrapper("taken")
            .err()
            .expect("wrapping key too");
        assert!(matches!(err, Error::LabelExists { .. }), "{err}");
    }
}

#[test]
fn keys_are_found_by_label_and_public_key() {
    for backend in backends("hsm-sign") {
        let store = &backend.store;
        let key = store
            .generate_signing_key("findme", KeySpec::EcP256)
            .expect("generate");
        let found = store
            .find_signing_key("findme", key.public_key())
            .expect("found");
        assert_eq!(found.public_key(), key.public_key());
        let sig = found
            .sign(SignatureAlgorithm::EcdsaP256Sha256, b"m")
            .expect("sign");
        key.public_key()
            .verify(SignatureAlgorithm::EcdsaP256Sha256, b"m", &sig)
            .expect("verifies");

        let err = store
            .find_signing_key("no-such-key", key.public_key())
            .expect_err("unknown label");
        assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
        assert!(err.to_string().contains("no-such-key"), "{err}");

        let other = store
            .generate_signing_key("other", KeySpec::EcP256)
            .expect("generate");
        let err = store
            .find_signing_key("findme", other.public_key())
            .expect_err("wrong public key");
        assert!(
            matches!(
                err,
                Error::KeyNotFound {
                    with_public_key: true,
                    ..
                }
            ),
            "{}: {err}",
            backend.name
        );
    }
}

/// PKCS#11 only: `CKA_ID` and `pkcs11:` URIs.
#[test]
fn pkcs11_keys_are_found_by_uri() {
    let token = &fixture("hsm-sign").token;
    let key = token
        .generate_key_pair("findme-by-uri", KeySpec::EcP384)
        .expect("generate");
    let found = token
        .find_key_pair("findme-by-uri", key.public_key())
        .expect("found");
    assert_eq!(found.id(), key.id());
    assert_eq!(found.id().len(), 16);

    let by_uri: Pkcs11Uri = format!(
        "pkcs11:token={};object=findme-by-uri;type=private",
        token.label()
    )
    .parse()
    .expect("uri");
    let found = token
        .find_key_pair_by_uri(&by_uri, key.public_key())
        .expect("found by URI");
    assert_eq!(found.id(), key.id());
    for bad in [
        "pkcs11:token=another-token;object=findme-by-uri".to_string(),
        "pkcs11:object=findme-by-uri;type=secret-key".to_string(),
        format!("pkcs11:token={}", token.label()),
    ] {
        let uri: Pkcs11Uri = bad.parse().expect("uri");
        let err = token
            .find_key_pair_by_uri(&uri, key.public_key())
            .expect_err(&bad);
        assert!(matches!(err, Error::InvalidUri { .. }), "{bad}: {err}");
    }
    let wrong_id: Pkcs11Uri = "pkcs11:object=findme-by-uri;id=%00%01"
        .parse()
        .expect("uri");
    let err = token
        .find_key_pair_by_uri(&wrong_id, key.public_key())
        .expect_err("wrong id");
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
}

/// RFC 6979 A.2.5: a P-256 private scalar and its public point.
const RFC6979_D: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
const RFC6979_Q: &str = "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6\
                         7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
/// DER prefix of a P-256 SubjectPublicKeyInfo, up to the point.
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Imports the RFC 6979 private key under `label`/`id` with the given public point.
fn import_p256(session: &cryptoki::session::Session, label: &str, private: bool, point: &[u8]) {
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    let params = unhex("06082a8648ce3d030107");
    let common = |class| {
        vec![
            Attribute::Class(class),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(params.clone()),
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(b"imported".to_vec()),
        ]
    };
    let mut template = if private {
        common(ObjectClass::PRIVATE_KEY)
    } else {
        common(ObjectClass::PUBLIC_KEY)
    };
    if private {
        template.extend([
            Attribute::Value(unhex(RFC6979_D)),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
        ]);
    } else {
        let mut octets = vec![0x04, point.len() as u8];
        octets.extend_from_slice(point);
        template.push(Attribute::EcPoint(octets));
    }
    session.create_object(&template).expect("import");
}

#[test]
fn several_matching_keys_are_an_error() {
    let fx = fixture("hsm-sign");
    let session = common::raw_session(&fx.created);
    // The same key imported twice, e.g. restored from a backup on top of itself.
    let q = unhex(RFC6979_Q);
    import_p256(&session, "twin", true, &q);
    import_p256(&session, "twin", true, &q);
    import_p256(&session, "twin", false, &q);
    let public = PublicKey::from_der(&[unhex(P256_SPKI_PREFIX), q].concat()).expect("spki");
    let err = fx
        .token
        .find_key_pair("twin", &public)
        .expect_err("ambiguous");
    assert!(matches!(err, Error::AmbiguousKey { count: 2, .. }), "{err}");
}

#[test]
fn a_private_key_paired_with_a_foreign_public_key_is_refused() {
    let fx = fixture("hsm-sign");
    let session = common::raw_session(&fx.created);
    // Someone stores our RFC 6979 private key next to another key's public half.
    let other = fx
        .token
        .generate_key_pair("real-owner", KeySpec::EcP256)
        .expect("generate");
    let foreign_point = &other.public_key().der()[26..];
    import_p256(&session, "liar", true, &[]);
    import_p256(&session, "liar", false, foreign_point);
    let err = fx
        .token
        .find_key_pair("liar", other.public_key())
        .expect_err("binding check");
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}

#[test]
fn generated_keys_cannot_be_copied_or_widened() {
    use cryptoki::object::{Attribute, ObjectClass};
    let fx = fixture("hsm-sign");
    fx.token
        .generate_key_pair("locked", KeySpec::Rsa { bits: 2048 })
        .expect("generate");
    let session = common::raw_session(&fx.created);
    let private = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"locked".to_vec()),
        ])
        .expect("find");
    assert_eq!(private.len(), 1);
    assert!(
        session
            .copy_object(private[0], &[Attribute::Token(true)])
            .is_err(),
        "copied"
    );
    let widened = session.update_attributes(private[0], &[Attribute::Decrypt(true)]);
    assert!(widened.is_err(), "decrypt could be turned on");
}

#[test]
fn many_concurrent_signers_share_a_small_pool() {
    for backend in backends("hsm-sign") {
        let key = backend
            .store
            .generate_signing_key("pool-p256", KeySpec::EcP256)
            .expect("generate");
        let signer =
            Arc::new(HsmSigner::new(key, SignatureAlgorithm::EcdsaP256Sha256).expect("signer"));
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
    // Other tests share the token, so only the bound is checked here; the
    // recovery test (alone in its process) checks that no lease is leaked.
    let usage = fixture("hsm-sign").token.pool_usage();
    assert!(usage.open <= usage.capacity, "{usage:?}");
    assert!(usage.open >= 1);
}

#[test]
fn random_bytes_come_from_the_hsm() {
    for backend in backends("hsm-sign") {
        let (mut a, mut b) = ([0u8; 32], vec![0u8; 3000]);
        backend.store.fill(&mut a).expect("random");
        backend.store.fill(&mut b).expect("random");
        assert_ne!(&a[..], &b[..32]);
        assert_ne!(a, [0u8; 32]);
        assert!(b[2000..].iter().any(|x| *x != 0), "{}", backend.name);
    }
}
