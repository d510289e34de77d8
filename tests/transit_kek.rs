//! KEK rotation end to end on a real SoftHSM2 token: the dev appliance's
//! transit keys (100 versions of four key types) are re-wrapped under a new
//! KEK in the background; the appliance is killed with SIGKILL half-way,
//! restarted, and finishes the re-wrap where it stopped; the old KEK is then
//! destroyed, and after another restart (nothing cached) every ciphertext,
//! signature and HMAC made before the rotation still decrypts or verifies.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Dev, output_text};
use strongroom_proto::v1;
use strongroom_proto::v1::transit_client::TransitClient;
use tonic::Code;
use tonic::transport::Channel;

/// The dev appliance's first KEK (see `strongroom dev`).
const DEV_KEK: &str = "dev-transit-wrap";
const NEW_KEK: &str = "kek-rotated";
/// Versions re-wrapped per second: slow enough to kill the appliance
/// half-way through 100 versions.
const RATE: u32 = 20;

async fn connect(dev: &Dev) -> TransitClient<Channel> {
    dev.transit_client().await
}

/// Sets `transit.kek_rewrap_rate` in the dev appliance's configuration.
fn set_rewrap_rate(data: &Path, rate: u32) {
    let path = data.join("strongroom.toml");
    let text = std::fs::read_to_string(&path).expect("dev config");
    assert!(text.contains("\n[transit]\n"), "{text}");
    let text = text.replace(
        "\n[transit]\n",
        &format!("\n[transit]\nkek_rewrap_rate = {rate}\n"),
    );
    std::fs::write(&path, text).expect("write dev config");
}

async fn kek_status(client: &mut TransitClient<Channel>) -> v1::KekStatus {
    client
        .get_kek_status(v1::GetKekStatusRequest {})
        .await
        .expect("kek status")
        .into_inner()
}

/// What was made under the first KEK, to check at the end.
#[derive(Default)]
struct Made {
    /// (key, ciphertext, plaintext)
    ciphertexts: Vec<(String, String, Vec<u8>)>,
    /// (key, message, signature)
    signatures: Vec<(String, Vec<u8>, String)>,
    /// (key, message, hmac)
    hmacs: Vec<(String, Vec<u8>, String)>,
}

/// Four keys of 25 versions each, and a value made under every version.
async fn make_keys(client: &mut TransitClient<Channel>) -> Made {
    use v1::TransitKeyType as T;
    let mut made = Made::default();
    for (name, key_type) in [
        ("orders", T::Aes256Gcm96),
        ("files", T::Xchacha20Poly1305),
        ("releases", T::Ed25519),
        ("tokens", T::Hmac),
    ] {
        client
            .create_key(v1::CreateKeyRequest {
                name: name.into(),
                r#type: key_type as i32,
                ..Default::default()
            })
            .await
            .expect("create key");
        for version in 1..=25u32 {
            if version > 1 {
                client
                    .rotate_key(v1::RotateKeyRequest { name: name.into() })
                    .await
                    .expect("rotate key");
            }
            let message = format!("{name} v{version}: TOP-SECRET").into_bytes();
            match key_type {
                T::Ed25519 => {
                    let signature = client
                        .sign(v1::SignRequest {
                            key: name.into(),
                            input: message.clone(),
                            ..Default::default()
                        })
                        .await
                        .expect("sign")
                        .into_inner()
                        .signature;
                    made.signatures.push((name.into(), message, signature));
                }
                T::Hmac => {
                    let hmac = client
                        .hmac(v1::HmacRequest {
                            key: name.into(),
                            input: message.clone(),
                            ..Default::default()
                        })
                        .await
                        .expect("hmac")
                        .into_inner()
                        .hmac;
                    made.hmacs.push((name.into(), message, hmac));
                }
                _ => {
                    let ciphertext = client
                        .encrypt(v1::EncryptRequest {
                            key: name.into(),
                            plaintext: message.clone(),
                            ..Default::default()
                        })
                        .await
                        .expect("encrypt")
                        .into_inner()
                        .ciphertext;
                    assert!(ciphertext.starts_with(&format!("strongroom:v{version}:")));
                    made.ciphertexts.push((name.into(), ciphertext, message));
                }
            }
        }
    }
    made
}

/// Every value made before the rotation still decrypts or verifies.
async fn assert_still_usable(client: &mut TransitClient<Channel>, made: &Made) {
    for (key, ciphertext, plaintext) in &made.ciphertexts {
        let opened = client
            .decrypt(v1::DecryptRequest {
                key: key.clone(),
                ciphertext: ciphertext.clone(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{key} {ciphertext}: {s:?}"))
            .into_inner();
        assert_eq!(&opened.plaintext, plaintext);
    }
    for (key, message, signature) in &made.signatures {
        let verified = client
            .verify(v1::VerifyRequest {
                key: key.clone(),
                input: message.clone(),
                signature: signature.clone(),
                ..Default::default()
            })
            .await
            .expect("verify")
            .into_inner();
        assert!(verified.valid, "{key} {signature}");
    }
    for (key, message, hmac) in &made.hmacs {
        let verified = client
            .verify_hmac(v1::VerifyHmacRequest {
                key: key.clone(),
                input: message.clone(),
                hmac: hmac.clone(),
                ..Default::default()
            })
            .await
            .expect("verify hmac")
            .into_inner();
        assert!(verified.valid, "{key} {hmac}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_rotation_killed_half_way_resumes_and_every_key_still_works() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let dev = Dev::start(&data);
    let mut client = connect(&dev).await;
    let made = make_keys(&mut client).await;
    let status = kek_status(&mut client).await;
    assert_eq!(status.current, DEV_KEK);
    assert_eq!(status.versions_to_rewrap, 0);
    assert_eq!(status.keks.len(), 1);
    assert_eq!(status.keks[0].versions, 100);
    dev.stop();

    set_rewrap_rate(&data, RATE);
    let dev = Dev::start(&data);
    let mut client = connect(&dev).await;
    let rotated = dev.cli_ok(&[
        "transit", "kek", "rotate", "--label", NEW_KEK, "--output", "json",
    ]);
    let rotated: serde_json::Value = serde_json::from_str(&rotated).expect("json");
    assert_eq!(rotated["current"], NEW_KEK);
    assert_eq!(rotated["versions_to_rewrap"], 100);
    assert_eq!(rotated["keks"][0]["state"], "retired");
    // New versions are wrapped by the new KEK at once.
    client
        .rotate_key(v1::RotateKeyRequest {
            name: "orders".into(),
        })
        .await
        .expect("rotate key");

    // Kill the appliance (SIGKILL) once part of the re-wrap is done.
    let deadline = Instant::now() + Duration::from_secs(60);
    let left_at_kill = loop {
        let left = kek_status(&mut client).await.versions_to_rewrap;
        if left < 100 {
            break left;
        }
        assert!(Instant::now() < deadline, "the re-wrap never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(client);
    drop(dev);
    assert!(left_at_kill > 0, "the re-wrap finished before the kill");

    // The restarted appliance keeps the new KEK (its configuration still
    // names the first one), and picks up where it stopped.
    let dev = Dev::start(&data);
    let mut client = connect(&dev).await;
    let status = kek_status(&mut client).await;
    assert_eq!(status.current, NEW_KEK);
    assert!(
        status.versions_to_rewrap <= left_at_kill,
        "{status:?} after {left_at_kill} were left"
    );
    let kek_of = |label: &str| {
        status
            .keks
            .iter()
            .find(|k| k.label == label)
            .cloned()
            .expect("listed")
    };
    assert_eq!(kek_of(DEV_KEK).state(), v1::KekState::Retired);
    assert_eq!(
        kek_of(DEV_KEK).versions + kek_of(NEW_KEK).versions,
        101,
        "{status:?}"
    );
    if status.versions_to_rewrap > 0 {
        let refused = client
            .destroy_kek(v1::DestroyKekRequest {
                label: DEV_KEK.into(),
            })
            .await
            .expect_err("still in use");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(refused.message().contains("still wraps"), "{refused:?}");
    }
    let watched = dev.cli_ok(&["transit", "kek", "status", "--watch"]);
    assert!(watched.contains("re-wrap: done"), "{watched}");
    assert!(
        watched.contains(&format!("current KEK: {NEW_KEK}")),
        "{watched}"
    );

    // The current KEK cannot be destroyed; the old one can, once.
    let out = dev.cli(&["transit", "kek", "destroy", NEW_KEK]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("current KEK"),
        "{}",
        output_text(&out)
    );
    let destroyed = dev.cli_ok(&["transit", "kek", "destroy", DEV_KEK]);
    assert!(
        destroyed.contains(&format!("destroyed transit KEK {DEV_KEK}")),
        "{destroyed}"
    );
    let again = dev.cli(&["transit", "kek", "destroy", DEV_KEK]);
    assert!(!again.status.success(), "{}", output_text(&again));
    dev.stop();

    // Nothing cached, the old KEK gone from the HSM: everything still works.
    let dev = Dev::start(&data);
    let mut client = connect(&dev).await;
    let status = kek_status(&mut client).await;
    assert_eq!(
        (status.versions_to_rewrap, status.rewrap_pending),
        (0, false)
    );
    let states: Vec<_> = status
        .keks
        .iter()
        .map(|k| (k.label.as_str(), k.state(), k.versions))
        .collect();
    assert_eq!(
        states,
        [
            (DEV_KEK, v1::KekState::Destroyed, 0),
            (NEW_KEK, v1::KekState::Current, 101)
        ]
    );
    assert_still_usable(&mut client, &made).await;
    dev.stop();
}
