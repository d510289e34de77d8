//! End to end: `strongroom status` against the dev appliance (a real
//! SoftHSM2 token): unsealed, the HSM ready with its session pool, the dev
//! CA chain as openssl reads it, certificate counts that move when one is
//! issued, transit enabled, the audit trail healthy and writing; the text
//! form has every section; and once sealed, what is known without the
//! appliance and the advice to unseal.

mod common;

use std::path::Path;

use common::{Dev, openssl, output_text, p};
use serde_json::Value;

/// `strongroom status --output json`, which must exit 0.
fn status(dev: &Dev) -> Value {
    let out = dev.cli(&["status", "--output", "json"]);
    assert!(out.status.success(), "{}", output_text(&out));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// One field of a certificate file as openssl prints it (`-subject`,
/// `-serial`, `-enddate`), without its `name=` prefix.
fn openssl_field(cert: &Path, field: &str) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        p(cert),
        "-noout",
        field,
        "-nameopt",
        "RFC2253",
        "-dateopt",
        "iso_8601",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (_, value) = text.trim().split_once('=').expect("name=value");
    value.to_string()
}

/// A CA certificate in the status JSON matches the file.
fn assert_same_certificate(json: &Value, cert: &Path) {
    assert_eq!(
        json["subject"].as_str(),
        Some(openssl_field(cert, "-subject").as_str())
    );
    // The status keeps a DER leading zero byte (as `cert list` does); openssl
    // drops it.
    let serial = json["serial"].as_str().expect("serial").to_uppercase();
    assert_eq!(
        serial.trim_start_matches('0'),
        openssl_field(cert, "-serial").trim_start_matches('0')
    );
    // openssl: `2036-01-31 12:00:00Z`; the status: `2036-01-31T12:00:00Z`.
    assert_eq!(
        json["not_after"].as_str(),
        Some(openssl_field(cert, "-enddate").replace(' ', "T").as_str())
    );
}

fn count(json: &Value, field: &str) -> u64 {
    json["certificates"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("certificates.{field} in {json}"))
}

#[test]
fn status_summarises_the_dev_appliance() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let dev = Dev::start(&data);

    let before = status(&dev);
    assert_eq!(before["initialized"], true, "{before}");
    assert_eq!(before["sealed"], false, "{before}");
    assert_eq!(before["hsm_status"], "ready", "{before}");
    assert!(
        !before["hsm_token"].as_str().expect("token").is_empty(),
        "{before}"
    );
    let pool = &before["hsm_pool"];
    let (capacity, open, idle) = (
        pool["capacity"].as_u64().expect("capacity"),
        pool["open"].as_u64().expect("open"),
        pool["idle"].as_u64().expect("idle"),
    );
    assert!(capacity >= 1 && open <= capacity && idle <= open, "{pool}");

    // A fresh appliance has nothing to do.
    assert_eq!(
        before["recommended_actions"],
        serde_json::json!([]),
        "{before}"
    );

    // The dev chain: the issuing CA, then the root.
    assert_same_certificate(&before["issuing_ca"], &data.join("ca/issuing.pem"));
    let chain = before["chain"].as_array().expect("chain");
    assert_eq!(chain.len(), 1, "{before}");
    assert_same_certificate(&chain[0], &data.join("ca/root.pem"));

    // Issuing moves the counts: one year (not expiring), then ten days
    // (expiring within 30 days).
    assert_eq!(before["certificates"]["expiring_window"], "30d");
    let issued = count(&before, "issued");
    let expiring = count(&before, "expiring");
    assert_eq!(
        before["certificates_issued"].as_u64(),
        Some(issued + count(&before, "revoked"))
    );
    dev.issue_server(tmp.path(), "status-one");
    let after_one = status(&dev);
    assert_eq!(count(&after_one, "issued"), issued + 1, "{after_one}");
    assert_eq!(count(&after_one, "expiring"), expiring, "{after_one}");
    assert_eq!(
        after_one["certificates_issued"].as_u64(),
        before["certificates_issued"].as_u64().map(|n| n + 1)
    );
    let (cert, key) = (tmp.path().join("soon.pem"), tmp.path().join("soon.key"));
    dev.cli_ok(&[
        "cert",
        "issue",
        "--profile",
        "server",
        "--cn",
        "soon.test",
        "--san",
        "soon.test",
        "--ttl",
        "10d",
        "--out-cert",
        p(&cert),
        "--out-key",
        p(&key),
    ]);
    let after = status(&dev);
    assert_eq!(count(&after, "issued"), issued + 2, "{after}");
    assert_eq!(count(&after, "expiring"), expiring + 1, "{after}");
    assert_eq!(count(&after, "pending"), 0, "{after}");
    // The count matches the listing the recommended action names, less the
    // delegated OCSP signer's certificate (a few days long, renewed by the
    // appliance itself).
    let listed = dev.cli_ok(&[
        "cert",
        "list",
        "--status",
        "issued",
        "--expiring-within",
        "30d",
        "--all",
    ]);
    let operators = listed
        .lines()
        .filter(|line| !line.contains(" ocsp-signer "))
        .count();
    assert_eq!(operators as u64, expiring + 1, "{listed}");
    let actions: Vec<&str> = after["recommended_actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a.as_str().expect("sentence"))
        .collect();
    let expected = match expiring + 1 {
        1 => "1 certificate expires within 30 days: strongroom cert list --status issued \
              --expiring-within 30d"
            .to_string(),
        n => format!(
            "{n} certificates expire within 30 days: strongroom cert list --status issued \
             --expiring-within 30d"
        ),
    };
    assert!(actions.contains(&expected.as_str()), "{actions:?}");

    // Transit is enabled; a fresh appliance has nothing overdue and nothing
    // to re-wrap.
    let transit = &after["transit"];
    assert_eq!(transit["enabled"], true, "{after}");
    assert_eq!(transit["keys_overdue"], 0, "{after}");
    assert_eq!(transit["rotation_max_age"], "365d", "{after}");
    assert_eq!(transit["current_kek"], "dev-transit-wrap", "{after}");
    assert_eq!(transit["kek_versions_to_rewrap"], 0, "{after}");

    // The audit trail writes: every request so far has its record.
    let audit = &after["audit"];
    assert_eq!(audit["healthy"], true, "{after}");
    assert_eq!(audit["problem"], "", "{after}");
    assert_eq!(audit["records_failed"], 0, "{after}");
    let last_seq = audit["last_seq"].as_u64().expect("last_seq");
    assert!(last_seq > 0, "{after}");
    let file = audit["current_file"].as_str().expect("current_file");
    assert!(Path::new(file).is_file(), "{file}");
    assert!(
        status(&dev)["audit"]["last_seq"].as_u64() > Some(last_seq),
        "the status request itself is audited"
    );

    // The text form: every section, then the actions.
    let text = dev.cli_ok(&["status"]);
    for header in [
        "Seal:\n  unsealed",
        "\nHSM:\n  token ",
        "\nIssuers:\n  issuing CA: ",
        "\nCertificates:\n",
        "\nTransit:\n",
        "\nAudit:\n  healthy",
        "\nRecommended actions:\n  - ",
    ] {
        assert!(text.contains(header), "{header:?} in\n{text}");
    }
    assert!(text.lines().count() <= 24, "one screen:\n{text}");

    // Sealed: what is known without the appliance, and what to do.
    let share = data.join("dev-unseal.share");
    dev.cli_ok(&["operator", "seal", "--share-file", p(&share)]);
    let sealed = status(&dev);
    assert_eq!(sealed["sealed"], true, "{sealed}");
    assert_eq!(sealed["initialized"], true, "{sealed}");
    assert_eq!(sealed["hsm_status"], "sealed", "{sealed}");
    assert_eq!(sealed["hsm_token"], before["hsm_token"], "{sealed}");
    for unknown in ["hsm_pool", "issuing_ca", "certificates", "transit"] {
        assert!(sealed[unknown].is_null(), "{unknown}: {sealed}");
    }
    assert_eq!(sealed["audit"]["healthy"], true, "{sealed}");
    assert_eq!(
        sealed["recommended_actions"],
        serde_json::json!([
            "Unseal the appliance: 0 of 1 shares given so far; each officer runs strongroom \
             operator unseal"
        ])
    );
    let text = dev.cli_ok(&["status"]);
    assert!(
        text.contains("Seal:\n  sealed") && text.contains("Issuers:\n  unknown while sealed\n"),
        "{text}"
    );
    dev.cli_ok(&["operator", "unseal", "--share-file", p(&share)]);
    assert_eq!(status(&dev)["sealed"], false);
    dev.stop();
}
