//! End to end: `strongroom dev` runs a complete appliance; the CLI issues,
//! lists, shows and renews certificates over gRPC; openssl and pkilint accept
//! what it issues; the agent renews; a restart keeps the CA and inventory.

mod common;

use common::{Dev, openssl, p, pkilint, pkilint_tolerating, serial_of};

#[test]
fn dev_appliance_issues_renews_and_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let work = tmp.path();
    let dev = Dev::start(&data);
    let root = data.join("ca/root.pem");
    let issuing = data.join("ca/issuing.pem");

    // A server-generated key.
    let (cert, key) = (work.join("api.pem"), work.join("api.key"));
    dev.cli_ok(&[
        "cert",
        "issue",
        "--profile",
        "server",
        "--cn",
        "api.test",
        "--san",
        "api.test",
        "--out-cert",
        p(&cert),
        "--out-key",
        p(&key),
    ]);
    let mode = std::fs::metadata(&key).expect("key").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let verify = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&issuing),
        p(&cert),
    ]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // The key matches the certificate.
    let cert_pub = openssl(&["x509", "-in", p(&cert), "-noout", "-pubkey"]).stdout;
    let key_pub = openssl(&["pkey", "-in", p(&key), "-pubout"]).stdout;
    assert_eq!(cert_pub, key_pub);

    // A CSR made by openssl.
    let (csr, csr_key, from_csr) = (
        work.join("web.csr"),
        work.join("web.key"),
        work.join("web.pem"),
    );
    let req = openssl(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        p(&csr_key),
        "-out",
        p(&csr),
        "-subj",
        "/CN=web.test",
        "-addext",
        "subjectAltName=DNS:web.test,IP:127.0.0.1",
    ]);
    assert!(req.status.success());
    dev.cli_ok(&[
        "cert",
        "issue",
        "--profile",
        "server",
        "--csr",
        p(&csr),
        "--out",
        p(&from_csr),
    ]);
    let verify = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&issuing),
        p(&from_csr),
    ]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // A leaf of the client profile too.
    let (client_cert, client_key) = (work.join("client.pem"), work.join("client.key"));
    dev.cli_ok(&[
        "cert",
        "issue",
        "--profile",
        "client",
        "--cn",
        "worker.test",
        "--san",
        "worker.test",
        "--uri",
        "spiffe://strongroom.test/worker",
        "--out-cert",
        p(&client_cert),
        "--out-key",
        p(&client_key),
    ]);
    let eku = openssl(&[
        "x509",
        "-in",
        p(&client_cert),
        "-noout",
        "-ext",
        "extendedKeyUsage",
    ]);
    assert!(String::from_utf8_lossy(&eku.stdout).contains("TLS Web Client Authentication"));
    // pkilint 0.13.3 checks URI names with `validators.url`, which knows only
    // web schemes (http, https, ftp, ...), so every SPIFFE ID fails it; that
    // one finding is tolerated for this SPIFFE-bearing certificate.
    pkilint_tolerating(
        "lint_pkix_cert",
        &[&client_cert],
        &["pkix.invalid_uri_syntax"],
    );
    for c in [&root, &issuing, &cert, &from_csr] {
        pkilint("lint_pkix_cert", &[c]);
    }
    pkilint("lint_pkix_signer_signee_cert_chain", &[&root, &issuing]);
    pkilint("lint_pkix_signer_signee_cert_chain", &[&issuing, &cert]);

    // The inventory finds it.
    let serial = serial_of(&cert);
    let listed = dev.cli_ok(&["cert", "list", "--name", "api.test", "--output", "json"]);
    assert!(listed.contains(&serial), "{listed}");
    let shown = dev.cli_ok(&["cert", "show", "--serial", &serial]);
    assert!(shown.contains("api.test"), "{shown}");

    // A refused request: one line naming the problem, non-zero exit.
    let refused = dev.cli(&[
        "cert",
        "issue",
        "--profile",
        "server",
        "--cn",
        "evil.example.com",
        "--san",
        "evil.example.com",
        "--out-cert",
        p(&work.join("e.pem")),
        "--out-key",
        p(&work.join("e.key")),
    ]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a refused request exits with 1"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("evil.example.com"), "{stderr}");
    assert!(!work.join("e.key").exists());

    // Renewal: a new serial, the same names.
    let renewed = work.join("api-renewed.pem");
    dev.cli_ok(&["cert", "renew", "--serial", &serial, "--out", p(&renewed)]);
    assert_ne!(serial_of(&renewed), serial);
    let text = String::from_utf8_lossy(
        &openssl(&[
            "x509",
            "-in",
            p(&renewed),
            "-noout",
            "-ext",
            "subjectAltName",
        ])
        .stdout,
    )
    .to_string();
    assert!(text.contains("DNS:api.test"), "{text}");

    // The agent: a 365-day certificate under a 400-day threshold is renewed;
    // under a 1-day threshold nothing needs doing.
    let before = serial_of(&cert);
    dev.cli_ok(&[
        "agent",
        "--cert",
        p(&cert),
        "--key",
        p(&key),
        "--threshold",
        "400d",
        "--once",
    ]);
    assert_ne!(serial_of(&cert), before, "the agent did not renew");
    let after = serial_of(&cert);
    dev.cli_ok(&[
        "agent",
        "--cert",
        p(&cert),
        "--key",
        p(&key),
        "--threshold",
        "1d",
        "--once",
    ]);
    assert_eq!(serial_of(&cert), after, "the agent renewed needlessly");

    // A restart keeps the CA and the inventory: what it issues afterwards
    // chains to the root saved before the restart.
    let saved_root = work.join("root-before-restart.pem");
    let saved_issuing = work.join("issuing-before-restart.pem");
    std::fs::copy(&root, &saved_root).expect("save root");
    std::fs::copy(&issuing, &saved_issuing).expect("save issuing");
    dev.stop();
    let dev = Dev::start(&data);
    let shown = dev.cli_ok(&["cert", "show", "--serial", &serial]);
    assert!(shown.contains("api.test"), "{shown}");
    let (after_cert, after_key) = (work.join("after.pem"), work.join("after.key"));
    dev.cli_ok(&[
        "cert",
        "issue",
        "--profile",
        "server",
        "--cn",
        "after.test",
        "--san",
        "after.test",
        "--out-cert",
        p(&after_cert),
        "--out-key",
        p(&after_key),
    ]);
    let verify = openssl(&[
        "verify",
        "-CAfile",
        p(&saved_root),
        "-untrusted",
        p(&saved_issuing),
        p(&after_cert),
    ]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    dev.stop();
}
