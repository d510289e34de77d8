//! Revocation end to end: the dev appliance revokes over gRPC (CLI); it
//! publishes delta CRLs, so the delta CRL at the URL its complete CRL names
//! (Freshest CRL) shows a revocation within the rebuild bound while the
//! complete CRL stays as it was; `openssl` applies the delta to its base and
//! pkilint accepts both; holds lift (removeFromCRL); with delta CRLs off, a
//! revocation rebuilds the complete CRL instead; revoked certificates
//! cannot be renewed; an acknowledged revocation survives `kill -9`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Dev, http_get, openssl, p, pkilint_crl};

/// The longest the dev appliance lets a revocation wait for its CRL
/// (`crl.rebuild_within`'s default).
const REBUILD_WITHIN: Duration = Duration::from_secs(60);

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
/// (the publisher runs in the background), writing it to `file`; gives up
/// after `within`.
fn crl_within(url: &str, file: &Path, within: Duration, accept: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
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

/// [`crl_within`] 20 seconds.
fn crl_where(url: &str, file: &Path, accept: impl Fn(&str) -> bool) -> String {
    crl_within(url, file, Duration::from_secs(20), accept)
}

/// The first value line under the extension `name` in `openssl crl -text`
/// output (e.g. the number under "X509v3 CRL Number").
fn extension_value<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let mut lines = text.lines().skip_while(|l| !l.contains(name));
    lines.next()?;
    lines.map(str::trim).find(|l| !l.is_empty())
}

/// The URL a complete CRL's Freshest CRL extension names.
fn freshest_url(text: &str) -> String {
    text.lines()
        .skip_while(|l| !l.contains("X509v3 Freshest CRL"))
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .unwrap_or_else(|| panic!("no Freshest CRL URI in\n{text}"))
        .to_string()
}

/// `openssl crl -verify` against the issuing CA says "verify OK".
fn assert_verifies(crl: &Path, issuing: &Path) {
    let verified = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(crl),
        "-CAfile",
        p(issuing),
        "-noout",
        "-verify",
    ]);
    assert!(
        String::from_utf8_lossy(&verified.stderr).contains("verify OK"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// Writes the DER CRL `der` as PEM next to it (`<der>.pem`).
fn to_pem(der: &Path) -> std::path::PathBuf {
    let pem = der.with_extension("crl.pem");
    let out = openssl(&["crl", "-inform", "DER", "-in", p(der), "-out", p(&pem)]);
    assert!(out.status.success());
    pem
}

fn upper(serial: &str) -> String {
    serial.to_ascii_uppercase()
}

#[test]
fn revocations_reach_the_delta_crl_and_openssl_sees_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let dev = Dev::start(&data);
    let (serial, cert) = dev.issue_server(dir.path(), "revoked-one");
    let (kept, kept_cert) = dev.issue_server(dir.path(), "kept-one");
    let url = crl_url(&cert);
    assert_eq!(url, crl_url(&kept_cert));
    let (issuing, root) = dev.chain_files(dir.path());

    // The complete CRL names its delta CRL, and the delta names the complete
    // CRL as its base (once both are published).
    let complete = dir.path().join("issuing.crl");
    let base_text = crl_where(&url, &complete, |_| true);
    let delta_url = freshest_url(&base_text);
    assert_eq!(delta_url, url.replace("/issuing.crl", "/issuing-delta.crl"));
    let base_number = extension_value(&base_text, "X509v3 CRL Number")
        .expect("CRL number")
        .to_string();
    let delta = dir.path().join("issuing-delta.crl");
    crl_where(&delta_url, &delta, |t| {
        extension_value(t, "X509v3 Delta CRL Indicator") == Some(base_number.as_str())
    });
    let base_etag = http_get(&url, &[])
        .header("etag")
        .expect("etag")
        .to_string();

    // Revoke over the CLI: one line, exit 0; again: unchanged, exit 0.
    let said = dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    let revoked_at = Instant::now();
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

    // The delta CRL at the URL the complete CRL names lists it, within the
    // rebuild bound; it is a delta of that complete CRL.
    let text = crl_within(&delta_url, &delta, REBUILD_WITHIN, |t| {
        t.contains(&upper(&serial))
    });
    assert!(revoked_at.elapsed() <= REBUILD_WITHIN);
    assert!(
        text.contains("X509v3 Delta CRL Indicator: critical"),
        "{text}"
    );
    assert_eq!(
        extension_value(&text, "X509v3 Delta CRL Indicator"),
        Some(base_number.as_str()),
        "{text}"
    );
    let delta_number: u64 = extension_value(&text, "X509v3 CRL Number")
        .expect("number")
        .parse()
        .expect("a decimal CRL number");
    assert!(
        delta_number > base_number.parse().expect("decimal"),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(!text.contains(&upper(&kept)), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(!text.contains("Freshest CRL"), "{text}");
    assert_verifies(&delta, &issuing);
    pkilint_crl("CRL", &delta);
    // Only the delta was rebuilt: the complete CRL is the one from before.
    assert_eq!(
        http_get(&url, &[]).header("etag"),
        Some(base_etag.as_str()),
        "a revocation rebuilt the complete CRL"
    );
    assert_verifies(&complete, &issuing);
    pkilint_crl("CRL", &complete);

    // openssl verify applies the delta to its base: the revoked leaf fails,
    // the other passes. With the complete CRL alone, it was not revoked yet.
    let (complete_pem, delta_pem) = (to_pem(&complete), to_pem(&delta));
    let verify = |leaf: &Path, crls: &[&Path], extra: &[&str]| {
        let mut args = vec!["verify", "-crl_check"];
        args.extend_from_slice(extra);
        args.extend(["-CAfile", p(&root), "-untrusted", p(&issuing)]);
        for crl in crls {
            args.extend(["-CRLfile", p(crl)]);
        }
        args.push(p(leaf));
        openssl(&args)
    };
    let with_delta = [complete_pem.as_path(), delta_pem.as_path()];
    let revoked = verify(&cert, &with_delta, &["-use_deltas"]);
    assert!(!revoked.status.success());
    assert!(
        String::from_utf8_lossy(&revoked.stdout).contains("certificate revoked")
            || String::from_utf8_lossy(&revoked.stderr).contains("certificate revoked"),
        "{}{}",
        String::from_utf8_lossy(&revoked.stdout),
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        verify(&kept_cert, &with_delta, &["-use_deltas"])
            .status
            .success()
    );
    assert!(verify(&cert, &[&complete_pem], &[]).status.success());

    // HTTP caching, for the complete and the delta CRL: the ETag answers 304.
    for url in [&url, &delta_url] {
        let response = http_get(url, &[]);
        let etag = response.header("etag").expect("etag").to_string();
        assert!(
            response
                .header("cache-control")
                .expect("cache-control")
                .contains("max-age="),
            "{url}"
        );
        assert!(response.header("expires").is_some(), "{url}");
        assert!(response.header("last-modified").is_some(), "{url}");
        assert_eq!(
            response.header("content-type"),
            Some("application/pkix-crl")
        );
        assert_eq!(
            http_get(url, &[("If-None-Match", &etag)]).status,
            304,
            "{url}"
        );
    }

    // `crl get` over gRPC returns the same CRLs, `--delta` the delta.
    let got = dir.path().join("got.crl");
    dev.cli_ok(&["crl", "get", "--der", "--out", p(&got)]);
    assert_eq!(std::fs::read(&got).expect("got"), http_get(&url, &[]).body);
    let said = dev.cli_ok(&[
        "crl",
        "get",
        "--delta",
        "--der",
        "--out",
        p(&got),
        "--force",
    ]);
    assert!(
        said.contains(&format!("base CRL number {base_number}")),
        "{said}"
    );
    assert_eq!(
        std::fs::read(&got).expect("got"),
        http_get(&delta_url, &[]).body
    );
    let json = dev.cli_ok(&["crl", "get", "--delta", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["number"].as_u64(), Some(delta_number));
    assert_eq!(
        json["base_number"].as_u64(),
        Some(base_number.parse().expect("decimal"))
    );

    // A hold lifts: on the delta CRL, then removed from CRL there.
    let (held, _) = dev.issue_server(dir.path(), "held-one");
    dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &held,
        "--reason",
        "certificateHold",
    ]);
    let text = crl_where(&delta_url, &delta, |t| t.contains(&upper(&held)));
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
    let text = crl_where(&delta_url, &delta, |t| {
        t.split("Serial Number: ")
            .any(|entry| entry.starts_with(&upper(&held)) && entry.contains("Remove From CRL"))
    });
    assert!(text.contains(&upper(&serial)), "{text}");
    assert!(!text.contains("Certificate Hold"), "{text}");
    pkilint_crl("CRL", &delta);
    dev.stop();
}

#[test]
fn without_delta_crls_a_revocation_rebuilds_the_complete_crl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The dev appliance publishes delta CRLs; turn them off.
    Dev::start(&data).stop();
    let config = data.join("strongroom.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("delta = true"), "{text}");
    std::fs::write(&config, text.replace("delta = true", "delta = false")).expect("write");
    let dev = Dev::start(&data);
    let (serial, _) = dev.issue_server(dir.path(), "no-delta");
    dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    let revoked_at = Instant::now();
    let crl = dir.path().join("complete.crl");
    let text = loop {
        let got = dev.cli(&["crl", "get", "--der", "--out", p(&crl), "--force"]);
        if got.status.success() {
            let out = openssl(&["crl", "-inform", "DER", "-in", p(&crl), "-noout", "-text"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.contains(&upper(&serial)) {
                break text;
            }
        }
        assert!(
            revoked_at.elapsed() < REBUILD_WITHIN,
            "the complete CRL never listed {serial}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!text.contains("Freshest CRL"), "{text}");
    assert!(!text.contains("Delta CRL Indicator"), "{text}");
    pkilint_crl("CRL", &crl);
    let refused = dev.cli(&["crl", "get", "--delta"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("no delta CRLs"), "{err}");
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
