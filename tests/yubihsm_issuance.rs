//! Issuance with the intermediate key in a YubiHSM2 (issue 8): the test
//! process serves the `yubihsm` crate's MockHsm over the yubihsm-connector
//! HTTP API on 127.0.0.1, generates the issuing key in it through our
//! YubiHSM2 backend, and signs the intermediate with a root in a SoftHSM2
//! token. `strongroom server` (which contains no MockHsm) reaches the device
//! through its real HTTP connector with `ca.backend = "yubihsm"`, is
//! initialised with the token's PIN and the device's password, unsealed,
//! and issues a leaf that `openssl verify` accepts under the root. A
//! restart unseals with the shares alone: the password was kept wrapped by
//! the token.

mod common;

use std::path::Path;

use common::{
    Server, free_port, output_text, p, private_file, root_and_issuing_ca, serve_mockhsm,
    throwaway_tls, write_file, yubihsm_config_head,
};
use secrecy::ExposeSecret;
use strongroom_ca::pem;
use strongroom_hsm::{
    KeySpec, KeyStore, Pin, PoolConfig, Token, YubiHsm, YubiHsmConfig, YubiHsmConnector,
};
use strongroom_softhsm::TestToken;

#[test]
fn a_leaf_issued_under_an_intermediate_in_a_yubihsm_verifies_with_openssl() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let token_created = TestToken::create("yubihsm-issuance").unwrap_or_else(|e| panic!("{e}"));
    let connector_port = serve_mockhsm();
    let connector = YubiHsmConnector::Http {
        addr: "127.0.0.1".into(),
        port: connector_port,
    };

    // The issuing key is generated in the YubiHSM2; only its public key leaves.
    let yubihsm = YubiHsm::open(&connector, Pin::new("password"), YubiHsmConfig::default())
        .expect("the device behind the connector");
    let issuing_key = yubihsm
        .generate_signing_key("issuing-ca", KeySpec::EcP256)
        .expect("issuing key");

    // The root lives in the SoftHSM2 token and signs the intermediate.
    let token = Token::open(
        &token_created.module,
        &token_created.label,
        Pin::new(token_created.user_pin.expose_secret()),
        PoolConfig::default(),
    )
    .expect("token");
    let (root_der, issuing_der) = root_and_issuing_ca(&token, issuing_key.public_key(), "YubiHSM");
    let root = write_file(dir, "root.pem", &pem("CERTIFICATE", &root_der));
    let issuing = write_file(dir, "issuing.pem", &pem("CERTIFICATE", &issuing_der));
    // The appliance logs in to the token itself (once per process).
    token.close();
    drop(token);
    KeyStore::close(&yubihsm);

    // The gRPC TLS certificate is a throwaway: this test is about the chain
    // the appliance issues under.
    let (cacert, _) = throwaway_tls(&dir.join("tls"));

    let (grpc, http) = (free_port(), free_port());
    let config = write_file(
        dir,
        "strongroom.toml",
        &format!(
            r#"{head}
[ca]
backend = "yubihsm"
issuer_key = "issuing-ca"
issuer_certificate = "{issuing}"
chain = ["{root}"]
crl_url = "http://127.0.0.1:{http}/crl/issuing.crl"
ocsp_url = "http://127.0.0.1:{http}/ocsp"

[profiles.server]
domains = ["**.test"]
ext_key_usage = ["serverAuth"]
key_usage = ["digitalSignature"]
max_ttl = "30d"
"#,
            head = yubihsm_config_head(&token_created, connector_port, grpc, http),
            issuing = issuing.display(),
            root = root.display(),
        ),
    );
    write_file(
        dir,
        "policies.toml",
        "[[policy]]\nname = \"issuer\"\nidentities = [\"anonymous\"]\n\
         [[policy.grant]]\nresources = [\"profile/server\"]\ncapabilities = [\"issue\"]\n",
    );
    let server = Server::start(&config, &cacert, None);

    // Init with the token's PIN and the device's password; one share unseals.
    let pin = private_file(dir, "token.pin", token_created.user_pin.expose_secret());
    let password = private_file(dir, "yubihsm.password", "password\n");
    let shares_dir = dir.join("officers");
    let init = |password_file: Option<&Path>| {
        let mut args = vec![
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
        ];
        if let Some(file) = password_file {
            args.extend(["--yubihsm-password-file", p(file)]);
        }
        server.cli(&args)
    };
    // Without the device's password (or with a wrong one) nothing is initialised.
    let wrong = private_file(dir, "wrong.password", "not-the-password");
    for attempt in [None, Some(wrong.as_path())] {
        let out = init(attempt);
        assert!(!out.status.success(), "init without the right password");
        let text = output_text(&out);
        assert!(!text.contains("not-the-password"), "{text}");
        let _ = std::fs::remove_dir_all(&shares_dir);
    }
    let out = init(Some(&password));
    assert!(out.status.success(), "init: {}", output_text(&out));
    let share = shares_dir.join("share-1-of-1.txt");
    server.ok(&["operator", "unseal", "--share-file", p(&share)]);

    let wrapped = std::fs::read(dir.join("data/yubihsm-password.wrapped")).expect("kept");
    assert!(
        !wrapped.windows(8).any(|w| w == b"password"),
        "the password is kept in the clear"
    );

    let issue = |name: &str| {
        let leaf = dir.join(format!("{name}.pem"));
        server.ok(&[
            "cert",
            "issue",
            "--profile",
            "server",
            "--cn",
            &format!("{name}.yubihsm.test"),
            "--out-cert",
            p(&leaf),
            "--out-key",
            p(&dir.join(format!("{name}.key"))),
        ]);
        let verified = common::openssl(&[
            "verify",
            "-CAfile",
            p(&root),
            "-untrusted",
            p(&issuing),
            p(&leaf),
        ]);
        assert!(
            verified.status.success(),
            "openssl verify {name}: {}",
            output_text(&verified)
        );
    };
    issue("leaf");

    // A restart is sealed; the share alone unseals it (the password was kept).
    server.stop();
    let server = Server::start(&config, &cacert, None);
    server.ok(&["operator", "unseal", "--share-file", p(&share)]);
    let leaf = dir.join("after-restart.pem");
    server.ok(&[
        "cert",
        "issue",
        "--profile",
        "server",
        "--cn",
        "after-restart.yubihsm.test",
        "--out-cert",
        p(&leaf),
        "--out-key",
        p(&dir.join("after-restart.key")),
    ]);
    let verified = common::openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&issuing),
        p(&leaf),
    ]);
    assert!(
        verified.status.success(),
        "openssl verify after restart: {}",
        output_text(&verified)
    );
    server.stop();
}
