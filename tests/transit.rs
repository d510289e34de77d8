//! Transit end to end: the dev appliance (SoftHSM2 token, SQLite, TLS on
//! 127.0.0.1) serves the Transit service; every key type round-trips over
//! gRPC, signatures are checked with OpenSSL, batches and streams answer per
//! item, versions and rewrap behave as documented, and nothing secret is in
//! the database after a restart.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::{Dev, openssl, output_text, p};
use strongroom_proto::v1;
use strongroom_proto::v1::transit_client::TransitClient;
use tonic::Code;
use tonic::transport::Channel;

const SECRET: &[u8] = b"TOP-SECRET-PLAINTEXT-7f3a";

async fn connect(dev: &Dev) -> TransitClient<Channel> {
    dev.transit_client().await
}

async fn create(
    client: &mut TransitClient<Channel>,
    name: &str,
    key_type: v1::TransitKeyType,
) -> v1::TransitKey {
    client
        .create_key(v1::CreateKeyRequest {
            name: name.into(),
            r#type: key_type as i32,
            exportable: true,
            deletion_allowed: true,
            ..Default::default()
        })
        .await
        .expect("create key")
        .into_inner()
}

async fn encrypt(
    client: &mut TransitClient<Channel>,
    key: &str,
    plaintext: &[u8],
    aad: &[u8],
) -> String {
    client
        .encrypt(v1::EncryptRequest {
            key: key.into(),
            plaintext: plaintext.to_vec(),
            associated_data: aad.to_vec(),
            ..Default::default()
        })
        .await
        .expect("encrypt")
        .into_inner()
        .ciphertext
}

async fn decrypt(
    client: &mut TransitClient<Channel>,
    key: &str,
    ciphertext: &str,
    aad: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    client
        .decrypt(v1::DecryptRequest {
            key: key.into(),
            ciphertext: ciphertext.into(),
            associated_data: aad.to_vec(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().plaintext)
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// Checks a signature with `openssl pkeyutl`/`dgst`, which we did not write.
fn openssl_verifies(dir: &Path, public_pem: &str, message: &[u8], signature: &[u8], args: &[&str]) {
    let key = write(dir, "pub.pem", public_pem);
    let msg = write(dir, "msg.bin", message);
    let sig = write(dir, "sig.bin", signature);
    let mut all = vec!["dgst"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-verify", p(&key), "-signature", p(&sig), p(&msg)]);
    let out = openssl(&all);
    assert!(
        out.status.success() && output_text(&out).contains("Verified OK"),
        "openssl {all:?}: {}",
        output_text(&out)
    );
}

fn signature_bytes(text: &str) -> Vec<u8> {
    use base64ct::Encoding;
    let body = text.rsplit(':').next().expect("body");
    base64ct::Base64::decode_vec(body).expect("base64")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_over_grpc_on_a_real_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let dev = Dev::start(&data);
    let mut client = connect(&dev).await;
    use v1::TransitKeyType as T;

    // Every AEAD type round-trips, with associated data bound.
    for (name, t) in [
        ("aes", T::Aes256Gcm96),
        ("chacha", T::Chacha20Poly1305),
        ("xchacha", T::Xchacha20Poly1305),
    ] {
        let key = create(&mut client, name, t).await;
        assert_eq!(key.latest_version, 1);
        let ct = encrypt(&mut client, name, SECRET, b"order-17").await;
        assert!(ct.starts_with("strongroom:v1:"), "{ct}");
        assert_eq!(
            decrypt(&mut client, name, &ct, b"order-17")
                .await
                .expect("decrypt"),
            SECRET
        );
        let wrong = decrypt(&mut client, name, &ct, b"order-18")
            .await
            .expect_err("other aad");
        assert_eq!(wrong.code(), Code::InvalidArgument);
        assert!(!wrong.message().contains("TOP-SECRET"));
        // A ciphertext of one key never opens under another.
        if name != "aes" {
            let replay = decrypt(&mut client, "aes", &ct, b"order-17")
                .await
                .expect_err("cross-key");
            assert_eq!(replay.code(), Code::InvalidArgument, "{replay:?}");
        }
    }

    // Signing keys: signatures that OpenSSL verifies with the published key.
    let dir = tmp.path();
    for (name, t, hash, scheme, args) in [
        (
            "ed",
            T::Ed25519,
            v1::HashAlgorithm::Unspecified,
            v1::SignatureScheme::Unspecified,
            vec![],
        ),
        (
            "p256",
            T::EcdsaP256,
            v1::HashAlgorithm::Sha2256,
            v1::SignatureScheme::Unspecified,
            vec!["-sha256"],
        ),
        (
            "p384",
            T::EcdsaP384,
            v1::HashAlgorithm::Sha2384,
            v1::SignatureScheme::Unspecified,
            vec!["-sha384"],
        ),
        (
            "rsa3072",
            T::Rsa3072,
            v1::HashAlgorithm::Sha2256,
            v1::SignatureScheme::Pss,
            vec![
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
            ],
        ),
        (
            "rsa4096",
            T::Rsa4096,
            v1::HashAlgorithm::Sha2512,
            v1::SignatureScheme::Pkcs1v15,
            vec!["-sha512"],
        ),
    ] {
        let key = create(&mut client, name, t).await;
        let public_pem = key.versions[0].public_key_pem.clone();
        assert!(
            public_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
            "{name}"
        );
        let signed = client
            .sign(v1::SignRequest {
                key: name.into(),
                input: SECRET.to_vec(),
                hash: hash as i32,
                scheme: scheme as i32,
                ..Default::default()
            })
            .await
            .expect("sign")
            .into_inner();
        let sig = signature_bytes(&signed.signature);
        if t == T::Ed25519 {
            let key = write(dir, "pub.pem", &public_pem);
            let msg = write(dir, "msg.bin", SECRET);
            let sigf = write(dir, "sig.bin", &sig);
            let out = openssl(&[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                p(&key),
                "-rawin",
                "-in",
                p(&msg),
                "-sigfile",
                p(&sigf),
            ]);
            assert!(
                output_text(&out).contains("Signature Verified Successfully"),
                "{}",
                output_text(&out)
            );
        } else {
            openssl_verifies(dir, &public_pem, SECRET, &sig, &args);
        }
        let checked = |input: &[u8]| v1::VerifyRequest {
            key: name.into(),
            input: input.to_vec(),
            signature: signed.signature.clone(),
            hash: hash as i32,
            scheme: scheme as i32,
            ..Default::default()
        };
        assert!(
            client
                .verify(checked(SECRET))
                .await
                .expect("verify")
                .into_inner()
                .valid
        );
        assert!(
            !client
                .verify(checked(b"other"))
                .await
                .expect("verify")
                .into_inner()
                .valid
        );
    }

    // HMAC keys compute and check HMACs; other operations are refused.
    create(&mut client, "mac", T::Hmac).await;
    let mac = client
        .hmac(v1::HmacRequest {
            key: "mac".into(),
            input: SECRET.to_vec(),
            ..Default::default()
        })
        .await
        .expect("hmac")
        .into_inner()
        .hmac;
    let valid = client
        .verify_hmac(v1::VerifyHmacRequest {
            key: "mac".into(),
            input: SECRET.to_vec(),
            hmac: mac,
            ..Default::default()
        })
        .await
        .expect("verify hmac")
        .into_inner()
        .valid;
    assert!(valid);
    let refused = client
        .encrypt(v1::EncryptRequest {
            key: "mac".into(),
            plaintext: b"x".to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("hmac keys do not encrypt");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("hmac"), "{}", refused.message());
    let missing = decrypt(&mut client, "nope", "strongroom:v1:AAAA", b"")
        .await
        .expect_err("unknown key");
    assert_eq!(missing.code(), Code::NotFound);

    // A batch answers per item; a key that cannot do the operation fails it all.
    let macs = client
        .hmac_batch(v1::HmacBatchRequest {
            key: "mac".into(),
            hash: v1::HashAlgorithm::Sha2512 as i32,
            items: vec![
                v1::HmacItem {
                    input: b"a".to_vec(),
                },
                v1::HmacItem {
                    input: vec![0; (1 << 20) + 1],
                },
            ],
        })
        .await
        .expect("hmac batch")
        .into_inner()
        .results;
    assert!(
        matches!(&macs[0].result, Some(v1::hmac_result::Result::Ok(ok)) if ok.hmac.starts_with("strongroom:v1:"))
    );
    assert!(
        matches!(&macs[1].result, Some(v1::hmac_result::Result::Error(e)) if e.code == Code::InvalidArgument as i32)
    );
    let whole = client
        .sign_batch(v1::SignBatchRequest {
            key: "mac".into(),
            items: vec![v1::SignItem {
                input: b"a".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect_err("hmac keys do not sign");
    assert_eq!(whole.code(), Code::FailedPrecondition);

    // A batch answers per item: a bad item fails only itself.
    let one = encrypt(&mut client, "aes", b"one", b"").await;
    let two = encrypt(&mut client, "chacha", b"two", b"").await;
    let three = encrypt(&mut client, "aes", b"three", b"").await;
    let results = client
        .decrypt_batch(v1::DecryptBatchRequest {
            key: "aes".into(),
            items: vec![
                v1::DecryptItem {
                    ciphertext: one,
                    ..Default::default()
                },
                v1::DecryptItem {
                    ciphertext: "garbage".into(),
                    ..Default::default()
                },
                v1::DecryptItem {
                    ciphertext: two,
                    ..Default::default()
                },
                v1::DecryptItem {
                    ciphertext: three,
                    ..Default::default()
                },
            ],
        })
        .await
        .expect("batch")
        .into_inner()
        .results;
    use v1::decrypt_result::Result as D;
    let outcomes: Vec<Result<Vec<u8>, i32>> = results
        .into_iter()
        .map(|r| match r.result.expect("result") {
            D::Ok(ok) => Ok(ok.plaintext),
            D::Error(e) => Err(e.code),
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            Ok(b"one".to_vec()),
            Err(Code::InvalidArgument as i32),
            Err(Code::InvalidArgument as i32),
            Ok(b"three".to_vec()),
        ]
    );

    // A stream answers each message with one message, in order.
    let requests = (0..3).map(|i| v1::EncryptStreamRequest {
        key: if i == 0 {
            "xchacha".into()
        } else {
            String::new()
        },
        items: (0..5)
            .map(|j| v1::EncryptItem {
                plaintext: format!("msg-{i}-{j}").into_bytes(),
                ..Default::default()
            })
            .collect(),
    });
    let mut responses = client
        .encrypt_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut ciphertexts = Vec::new();
    while let Some(response) = responses.message().await.expect("stream message") {
        for r in response.results {
            match r.result.expect("result") {
                v1::encrypt_result::Result::Ok(ok) => ciphertexts.push(ok.ciphertext),
                v1::encrypt_result::Result::Error(e) => panic!("stream item failed: {e:?}"),
            }
        }
    }
    assert_eq!(ciphertexts.len(), 15);
    let back = decrypt(&mut client, "xchacha", &ciphertexts[7], b"")
        .await
        .expect("decrypt");
    assert_eq!(back, b"msg-1-2");

    // Rotation, rewrap and the minimum decryption version.
    let old = encrypt(&mut client, "aes", SECRET, b"").await;
    let rotated = client
        .rotate_key(v1::RotateKeyRequest { name: "aes".into() })
        .await
        .expect("rotate")
        .into_inner();
    assert_eq!(rotated.latest_version, 2);
    let rewrapped = client
        .rewrap(v1::RewrapRequest {
            key: "aes".into(),
            ciphertext: old.clone(),
            ..Default::default()
        })
        .await
        .expect("rewrap")
        .into_inner();
    assert!(rewrapped.ciphertext.starts_with("strongroom:v2:"));
    client
        .update_key(v1::UpdateKeyRequest {
            name: "aes".into(),
            min_decryption_version: Some(2),
            ..Default::default()
        })
        .await
        .expect("update");
    let too_old = decrypt(&mut client, "aes", &old, b"")
        .await
        .expect_err("below minimum");
    assert_eq!(too_old.code(), Code::FailedPrecondition);
    assert_eq!(
        decrypt(&mut client, "aes", &rewrapped.ciphertext, b"")
            .await
            .expect("v2"),
        SECRET
    );

    // Data keys come back once in the clear and decrypt to the same bytes.
    let data_key = client
        .generate_data_key(v1::GenerateDataKeyRequest {
            key: "chacha".into(),
            ..Default::default()
        })
        .await
        .expect("data key")
        .into_inner();
    assert_eq!(data_key.plaintext.len(), 32);
    assert_eq!(
        decrypt(&mut client, "chacha", &data_key.ciphertext, b"")
            .await
            .expect("data key opens"),
        data_key.plaintext
    );

    // Limits: an oversized plaintext is refused by name.
    let big = client
        .encrypt(v1::EncryptRequest {
            key: "aes".into(),
            plaintext: vec![0; (1 << 20) + 1],
            ..Default::default()
        })
        .await
        .expect_err("over 1 MiB");
    assert_eq!(big.code(), Code::InvalidArgument);
    assert!(big.message().contains("plaintext"), "{}", big.message());

    // Exported material is the key; the database holds it only wrapped.
    let exported = client
        .export_key(v1::ExportKeyRequest {
            name: "chacha".into(),
            version: 0,
        })
        .await
        .expect("export")
        .into_inner();
    let material = exported.versions[0].key.clone();
    assert_eq!(material.len(), 32);

    // After a restart the keys come back from the store, unwrapped by the HSM.
    let ct_before = encrypt(&mut client, "xchacha", SECRET, b"").await;
    drop(client);
    dev.stop();
    let dev = Dev::restart(&data);
    let mut client = connect(&dev).await;
    assert_eq!(
        decrypt(&mut client, "xchacha", &ct_before, b"")
            .await
            .expect("after restart"),
        SECRET
    );
    dev.stop();

    let mut db = std::fs::read(data.join("strongroom.db")).expect("database");
    for extra in ["strongroom.db-wal"] {
        if let Ok(more) = std::fs::read(data.join(extra)) {
            db.extend(more);
        }
    }
    let contains = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(SECRET), "a plaintext is in the database");
    assert!(
        !contains(&material),
        "transit key material is in the database in the clear"
    );
    assert!(
        !contains(&data_key.plaintext),
        "a data key is in the database"
    );

    // Nor in the audit trail: not in the clear, not in base64.
    let trail: Vec<u8> = common::trail_files(&data)
        .iter()
        .flat_map(|f| std::fs::read(f).expect("audit file"))
        .collect();
    assert!(!trail.is_empty());
    let in_trail = |needle: &[u8]| trail.windows(needle.len()).any(|w| w == needle);
    for secret in [SECRET, material.as_slice(), data_key.plaintext.as_slice()] {
        assert!(!in_trail(secret), "a secret is in the audit trail");
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let text = engine.encode(secret);
            assert!(!in_trail(text.as_bytes()), "a secret is in the audit trail");
        }
    }
}
