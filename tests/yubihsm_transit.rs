//! Transit with its KEK in a YubiHSM2 while the CA key stays in the PKCS#11
//! token (issue 8: configuration selects the backend per key). The test
//! process serves the `yubihsm` crate's MockHsm over the yubihsm-connector
//! HTTP API and generates the first KEK in it through our backend;
//! `strongroom server` reaches it through its real HTTP connector with
//! `transit.backend = "yubihsm"`. An AES key and an RSA-4096 signing key
//! (whose material takes more than one device command to wrap) are
//! created; after a restart (nothing cached) the ciphertext decrypts and
//! the signature verifies. A KEK rotation generates the new KEK in the
//! device, re-wraps every version, and the old KEK is destroyed there; the
//! values made at the start still decrypt and verify after another restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Server, free_port, output_text, p, private_file, root_and_issuing_ca, serve_mockhsm,
    throwaway_tls, write_file, yubihsm_config_head,
};
use secrecy::ExposeSecret;
use strongroom_ca::pem;
use strongroom_hsm::{KeySpec, KeyStore, Pin, PoolConfig, Token, YubiHsm, YubiHsmConfig};
use strongroom_softhsm::TestToken;
use yubihsm::{Capability, object};

const FIRST_KEK: &str = "transit-kek";
const SECOND_KEK: &str = "transit-kek-2";

/// The wrap keys in the device (label, capabilities), through a raw client
/// of the same MockHsm, as an operator's yubihsm-shell would list them.
fn wrap_keys_in_device(port: u16) -> Vec<(String, Capability)> {
    let connector = yubihsm::Connector::http(&yubihsm::HttpConfig {
        addr: "127.0.0.1".into(),
        port,
        ..yubihsm::HttpConfig::default()
    });
    let client = yubihsm::Client::open(connector, yubihsm::Credentials::default(), false)
        .expect("raw client");
    client
        .list_objects(&[object::Filter::Type(object::Type::WrapKey)])
        .expect("list")
        .into_iter()
        .map(|entry| {
            let info = client
                .get_object_info(entry.object_id, object::Type::WrapKey)
                .expect("info");
            (info.label.to_string(), info.capabilities)
        })
        .collect()
}

/// Decrypts `ciphertext` with `payments` and checks the signature of
/// `message` by `release`.
fn still_readable(server: &Server, dir: &Path, ciphertext: &str, message: &Path, signature: &str) {
    let out = dir.join("decrypted");
    let _ = std::fs::remove_file(&out);
    server.ok(&[
        "transit",
        "decrypt",
        "payments",
        "--ciphertext",
        ciphertext,
        "--out",
        p(&out),
    ]);
    assert_eq!(
        std::fs::read(&out).expect("plaintext"),
        b"card 4242 4242 4242 4242"
    );
    let verdict = server.ok(&[
        "transit",
        "verify",
        "release",
        "--signature",
        signature,
        "--in",
        p(message),
    ]);
    assert_eq!(verdict.trim(), "valid");
}

#[test]
fn transit_keys_wrapped_by_a_kek_in_a_yubihsm_survive_restarts_and_kek_rotation() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let token_created = TestToken::create("yubihsm-transit").unwrap_or_else(|e| panic!("{e}"));
    let connector_port = serve_mockhsm();

    // The first KEK is generated in the YubiHSM2 (as an operator would,
    // before the first start).
    let yubihsm = YubiHsm::open(
        &strongroom_hsm::YubiHsmConnector::Http {
            addr: "127.0.0.1".into(),
            port: connector_port,
        },
        Pin::new("password"),
        YubiHsmConfig::default(),
    )
    .expect("the device behind the connector");
    yubihsm.generate_wrapping_key(FIRST_KEK).expect("first KEK");
    KeyStore::close(&yubihsm);

    // The CA key, root and intermediate all live in the SoftHSM2 token.
    let token = Token::open(
        &token_created.module,
        &token_created.label,
        Pin::new(token_created.user_pin.expose_secret()),
        PoolConfig::default(),
    )
    .expect("token");
    let issuing_key = token
        .generate_key_pair("issuing-ca", KeySpec::EcP256)
        .expect("issuing key");
    let (root_der, issuing_der) = root_and_issuing_ca(&token, issuing_key.public_key(), "Transit");
    let root = write_file(dir, "root.pem", &pem("CERTIFICATE", &root_der));
    let issuing = write_file(dir, "issuing.pem", &pem("CERTIFICATE", &issuing_der));
    // The appliance logs in to the token itself (once per process).
    token.close();
    drop(token);

    let (cacert, _) = throwaway_tls(&dir.join("tls"));
    let (grpc, http) = (free_port(), free_port());
    let config = write_file(
        dir,
        "strongroom.toml",
        &format!(
            r#"{head}
[ca]
issuer_key = "pkcs11:object=issuing-ca"
issuer_certificate = "{issuing}"
chain = ["{root}"]

[transit]
backend = "yubihsm"
wrapping_key = "{FIRST_KEK}"

[profiles.server]
domains = ["**.test"]
ext_key_usage = ["serverAuth"]
"#,
            head = yubihsm_config_head(&token_created, connector_port, grpc, http),
            issuing = issuing.display(),
            root = root.display(),
        ),
    );
    write_file(
        dir,
        "policies.toml",
        "[[policy]]\nname = \"operator\"\nidentities = [\"anonymous\"]\n\
         [[policy.grant]]\nresources = [\"*\"]\ncapabilities = [\"*\"]\n",
    );
    let server = Server::start(&config, &cacert, None);
    let pin = private_file(dir, "token.pin", token_created.user_pin.expose_secret());
    let password = private_file(dir, "yubihsm.password", "password\n");
    let shares_dir = dir.join("officers");
    server.ok(&[
        "operator",
        "init",
        "--shares",
        "1",
        "--threshold",
        "1",
        "--pin-file",
        p(&pin),
        "--out-dir",
        p(&shares_dir),
        "--yubihsm-password-file",
        p(&password),
    ]);
    let share = shares_dir.join("share-1-of-1.txt");
    server.ok(&["operator", "unseal", "--share-file", p(&share)]);

    server.ok(&["transit", "create", "payments"]);
    server.ok(&["transit", "create", "release", "--type", "rsa-4096"]);
    let plaintext = write_file(dir, "card.txt", "card 4242 4242 4242 4242");
    let ciphertext = server
        .ok(&["transit", "encrypt", "payments", "--in", p(&plaintext)])
        .trim()
        .to_string();
    let message = write_file(dir, "release.txt", "release 1.0");
    let signature = server
        .ok(&["transit", "sign", "release", "--in", p(&message)])
        .trim()
        .to_string();
    still_readable(&server, dir, &ciphertext, &message, &signature);

    // A restart forgets every unwrapped version: each is unwrapped again by
    // the KEK in the device.
    server.stop();
    let server = Server::start(&config, &cacert, None);
    server.ok(&["operator", "unseal", "--share-file", p(&share)]);
    still_readable(&server, dir, &ciphertext, &message, &signature);

    // A KEK rotation generates the new KEK in the same device and re-wraps
    // every version under it; the old KEK can then be destroyed there.
    server.ok(&["transit", "kek", "rotate", "--label", SECOND_KEK]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = server.json(&["transit", "kek", "status"]);
        if status["versions_to_rewrap"] == 0 && status["rewrap_pending"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "re-wrap never finished: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.ok(&["transit", "kek", "destroy", FIRST_KEK]);
    let both = Capability::WRAP_DATA | Capability::UNWRAP_DATA;
    assert_eq!(
        wrap_keys_in_device(connector_port),
        vec![(SECOND_KEK.to_string(), both)]
    );

    server.stop();
    let server = Server::start(&config, &cacert, None);
    server.ok(&["operator", "unseal", "--share-file", p(&share)]);
    still_readable(&server, dir, &ciphertext, &message, &signature);
    let status = server.json(&["transit", "kek", "status"]);
    assert_eq!(status["current"], SECOND_KEK, "{status}");

    // Nothing of the material reached the data directory in the clear.
    let db = std::fs::read(dir.join("data/strongroom.db")).expect("database");
    assert!(
        !db.windows(11).any(|w| w == b"card 4242 4"),
        "a plaintext is stored"
    );
    let out = server.cli(&["transit", "show", "payments"]);
    assert!(out.status.success(), "{}", output_text(&out));
    server.stop();
}
