//! Revocation end to end: the dev appliance revokes over gRPC (CLI), the
//! CRL published at the certificate's own CRL Distribution Point shows it
//! within seconds, and `openssl` and pkilint accept that CRL; holds lift;
//! revoked certificates cannot be renewed; an acknowledged revocation
//! survives `kill -9`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Dev, http_get, openssl, p, pkilint_crl};

/// The CRL Distribution Point URL written into `cert`.
fn crl_url(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        p(cert),
        "-noout",
        "-ext",
        "crlDistributionPoints",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .expect("a CRL distribution point")
        .to_string()
}

/// Fetches the CRL at `url` until `accept` holds for its `openssl crl -text`
/// (the publisher runs in the background), writing it to `file`.
fn crl_where(url: &str, file: &Path, accept: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = http_get(url, &[]);
        if response.status == 200 {
            std::fs::write(file, &response.body).expect("write CRL");
            let out = openssl(&["crl", "-inform", "DER", "-in", p(file), "-noout", "-text"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if accept(&text) {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the CRL at {url} never showed the change (last status {})",
            response.status
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn upper(serial: &str) -> String {
    serial.to_ascii_uppercase()
}

#[test]
fn revocations_reach_the_crl_and_openssl_sees_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let dev = Dev::start(&data);
    let (serial, cert) = dev.issue_server(dir.path(), "revoked-one");
    let (kept, kept_cert) = dev.issue_server(dir.path(), "kept-one");
    let url = crl_url(&cert);
    assert_eq!(url, crl_url(&kept_cert));
    let (issuing, root) = dev.chain_files(dir.path());

    // Revoke over the CLI: one line, exit 0; again: unchanged, exit 0.
    let said = dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    assert_eq!(
        said.trim(),
        format!("certificate {serial} is revoked (keyCompromise)")
    );
    let again = dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keycompromise",
    ]);
    assert!(again.contains("was already revoked"), "{again}");
    // Another reason: final, refused with one line and a non-zero exit.
    let refused = dev.cli(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "superseded",
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("final"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Unknown serial, bad reason.
    let unknown = dev.cli(&[
        "cert",
        "revoke",
        "--serial",
        "4a01",
        "--reason",
        "keyCompromise",
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("4a01"));
    let bad = dev.cli(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "compromised",
    ]);
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    // The inventory says so, and a revoked certificate cannot be renewed.
    let shown = dev.cli_ok(&["cert", "show", "--serial", &serial, "--output", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revocation_reason"], "keyCompromise");
    let renew = dev.cli(&[
        "cert",
        "renew",
        "--serial",
        &serial,
        "--out-cert",
        p(&dir.path().join("r.pem")),
    ]);
    assert!(!renew.status.success());
    assert!(String::from_utf8_lossy(&renew.stderr).contains("revoked"));

    // The CRL at the certificate's own distribution point lists it, within seconds.
    let crl = dir.path().join("issuing.crl");
    let text = crl_where(&url, &crl, |t| t.contains(&upper(&serial)));
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(!text.contains(&upper(&kept)), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    let verified = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl),
        "-CAfile",
        p(&issuing),
        "-noout",
        "-verify",
    ]);
    assert!(
        String::from_utf8_lossy(&verified.stderr).contains("verify OK"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    pkilint_crl("CRL", &crl);
    // openssl verify with the CRL: the revoked leaf fails, the other passes.
    let crl_pem = dir.path().join("issuing.crl.pem");
    let out = openssl(&["crl", "-inform", "DER", "-in", p(&crl), "-out", p(&crl_pem)]);
    assert!(out.status.success());
    let verify = |leaf: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            p(&root),
            "-untrusted",
            p(&issuing),
            "-CRLfile",
            p(&crl_pem),
            p(leaf),
        ])
    };
    let revoked = verify(&cert);
    assert!(!revoked.status.success());
    assert!(
        String::from_utf8_lossy(&revoked.stdout).contains("certificate revoked")
            || String::from_utf8_lossy(&revoked.stderr).contains("certificate revoked"),
        "{}{}",
        String::from_utf8_lossy(&revoked.stdout),
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(verify(&kept_cert).status.success());

    // HTTP caching: the ETag answers 304.
    let response = http_get(&url, &[]);
    let etag = response.header("etag").expect("etag").to_string();
    assert!(
        response
            .header("cache-control")
            .expect("cache-control")
            .contains("max-age=")
    );
    assert!(response.header("expires").is_some());
    assert_eq!(
        response.header("content-type"),
        Some("application/pkix-crl")
    );
    assert_eq!(http_get(&url, &[("If-None-Match", &etag)]).status, 304);

    // `crl get` over gRPC returns the same CRL.
    let got = dir.path().join("got.crl");
    dev.cli_ok(&["crl", "get", "--der", "--out", p(&got)]);
    let served = http_get(&url, &[]).body;
    let fetched = std::fs::read(&got).expect("got");
    assert_eq!(fetched, served);

    // A hold lifts: on the CRL, then off it.
    let (held, _) = dev.issue_server(dir.path(), "held-one");
    dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &held,
        "--reason",
        "certificateHold",
    ]);
    let text = crl_where(&url, &crl, |t| t.contains(&upper(&held)));
    assert!(text.contains("Certificate Hold"), "{text}");
    let lifted = dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &held,
        "--reason",
        "removeFromCRL",
    ]);
    assert!(lifted.contains("valid again"), "{lifted}");
    let text = crl_where(&url, &crl, |t| !t.contains(&upper(&held)));
    assert!(text.contains(&upper(&serial)), "{text}");
    pkilint_crl("CRL", &crl);
    dev.stop();
}

#[test]
fn an_acknowledged_revocation_survives_kill_9_and_crl_numbers_keep_growing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let dev = Dev::start(&data);
    let (serial, _) = dev.issue_server(dir.path(), "durable");
    let number = |dev: &Dev| -> u64 {
        let json = dev.cli_ok(&["crl", "get", "--output", "json"]);
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        value["number"].as_u64().expect("number")
    };
    // Wait for the first CRL.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dev.cli(&["crl", "get"]).status.success() {
        assert!(Instant::now() < deadline, "no CRL was published");
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = number(&dev);
    dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    drop(dev); // SIGKILL, right after the reply.

    let dev = Dev::start(&data);
    let shown = dev.cli_ok(&["cert", "show", "--serial", &serial, "--output", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(shown["status"], "revoked");
    // The restarted appliance republishes; the number only grows, and the
    // new CRL lists the revocation even though the killed one may never
    // have published it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let crl = dir.path().join("after.crl");
        dev.cli_ok(&["crl", "get", "--der", "--out", p(&crl), "--force"]);
        let text = String::from_utf8_lossy(
            &openssl(&["crl", "-inform", "DER", "-in", p(&crl), "-noout", "-text"]).stdout,
        )
        .into_owned();
        if text.contains(&upper(&serial)) {
            assert!(number(&dev) > before);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted appliance's CRL lacks {serial}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    dev.stop();
}
