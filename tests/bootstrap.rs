//! Bootstrap tokens end to end on the dev appliance: the first token is
//! written on the host while the appliance runs, a service enrols with it
//! without any certificate and is then known by the token's identity, and
//! every way a token can be wrong (used, expired, revoked, wrong secret,
//! another identity) is refused as documented. The tokens' texts end up
//! nowhere on disk or in the logs.

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, Dev, openssl, openssl_csr, output_text, p};
use strongroom_proto::v1;
use strongroom_proto::v1::ca_client::CaClient;
use strongroom_proto::v1::sys_client::SysClient;
use tonic::Code;
use tonic::transport::Channel;

/// The service that enrols.
const ORDERS: &str = "spiffe://strongroom.test/svc/orders";
/// A service known by a DNS name.
const BATCH: &str = "batch.test";

/// Runs `strongroom ARGS` without a client certificate, with `stdin` as its
/// standard input.
fn anonymous(dev: &Dev, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("STRONGROOM_ADDR", &dev.addr)
        .env("STRONGROOM_CACERT", &dev.cacert)
        .env_remove("STRONGROOM_CLIENT_CERT")
        .env_remove("STRONGROOM_CLIENT_KEY")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strongroom");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

/// `auth token create` on the host, straight into the store of the
/// running appliance (`--config`); returns the token, the one line on
/// stdout.
fn create_local(data: &Path, identity: &str, ttl: &str) -> String {
    let out = Command::new(BIN)
        .args(["auth", "token", "create", "--config"])
        .arg(data.join("strongroom.toml"))
        .args(["--identity", identity, "--profile", "client", "--ttl", ttl])
        .env_remove("STRONGROOM_CLIENT_CERT")
        .env_remove("STRONGROOM_CLIENT_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run strongroom");
    assert!(out.status.success(), "{}", output_text(&out));
    only_token(&out)
}

/// The token printed by `auth token create`: stdout holds it alone.
fn only_token(out: &Output) -> String {
    let stdout = String::from_utf8(out.stdout.clone()).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {stdout:?}");
    let token = lines[0].to_string();
    assert!(token.starts_with("srb_") && token.len() == 64, "{token}");
    token
}

/// The id inside a token's text.
fn id_of(token: &str) -> String {
    token[4..20].to_string()
}

/// Enrols `identity` with `token` (in a file) into `dir/NAME.key` and
/// `dir/NAME.pem`.
fn enroll(dev: &Dev, dir: &Path, name: &str, identity: &str, token: &str) -> Output {
    let token_file = dir.join(format!("{name}.token"));
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    anonymous(
        dev,
        &[
            "auth",
            "enroll",
            "--identity",
            identity,
            "--token-file",
            p(&token_file),
            "--key-out",
            p(&dir.join(format!("{name}.key"))),
            "--cert-out",
            p(&dir.join(format!("{name}.pem"))),
            "--output",
            "json",
        ],
        None,
    )
}

/// Calls Ca.Enroll on `channel`; the status code and message.
async fn enroll_rpc(channel: &Channel, token: &str, csr: Vec<u8>) -> (Code, String) {
    match CaClient::new(channel.clone())
        .enroll(v1::EnrollRequest {
            token: token.to_string(),
            csr,
        })
        .await
    {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_string()),
    }
}

/// Every audit file of the dev appliance, as text.
fn audit_text(data: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(data.join("audit")).expect("audit dir") {
        let path = entry.expect("entry").path();
        text.push_str(&std::fs::read_to_string(&path).expect("audit file"));
    }
    text
}

/// The audit records of `operation`.
fn audit_records(data: &Path, operation: &str) -> Vec<serde_json::Value> {
    audit_text(data)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("record"))
        .filter(|r| r["operation"] == operation)
        .collect()
}

/// Whether any of `files` holds `needle`.
fn found_in(files: &[PathBuf], needle: &str) -> Option<PathBuf> {
    files.iter().find_map(|f| {
        let bytes = std::fs::read(f).unwrap_or_default();
        bytes
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
            .then(|| f.clone())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_service_enrols_once_with_a_bootstrap_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let log = tmp.path().join("dev.log");
    let dev = Dev::start_logged(&data, &log);
    let dir = tmp.path();
    let mut tokens = Vec::new();
    let mut refusals = std::collections::BTreeSet::new();

    // --- The first token, written on the host while the appliance runs.
    let first = create_local(&data, ORDERS, "1h");
    tokens.push(first.clone());
    let out = enroll(&dev, dir, "orders", ORDERS, &first);
    assert!(out.status.success(), "{}", output_text(&out));
    let enrolled: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let serial = enrolled["certificate"]["serial"]
        .as_str()
        .expect("serial")
        .to_string();
    assert_eq!(enrolled["certificate"]["requester"], ORDERS);
    assert_eq!(enrolled["certificate"]["sans"][0], format!("URI:{ORDERS}"));
    let (key, cert) = (dir.join("orders.key"), dir.join("orders.pem"));
    let mode = std::fs::metadata(&key).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let chain = std::fs::read_to_string(&cert).expect("cert");
    assert_eq!(
        chain.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "leaf and issuing CA"
    );

    // openssl accepts it under the dev root, for client authentication.
    let root = data.join("ca/root.pem");
    let out = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&cert),
        p(&cert),
    ]);
    assert!(out.status.success(), "{}", output_text(&out));

    // The new certificate names its holder by the token's identity: no
    // grant yet, and the refusal says who asked.
    let orders = dev
        .channel_as(Some((p(&cert), p(&key))))
        .await
        .expect("the enrolled service connects");
    let denied = SysClient::new(orders.clone())
        .status(v1::StatusRequest::default())
        .await
        .expect_err("no grant yet");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied
            .message()
            .contains(&format!("{ORDERS} lacks the read capability on sys")),
        "{}",
        denied.message()
    );
    // Granted by identity, the same connection may.
    let policies = std::fs::read_to_string(data.join("policies.toml")).expect("policies");
    std::fs::write(
        data.join("policies.toml"),
        format!(
            "{policies}\n[[policy]]\nname = \"orders\"\nidentities = [\"{ORDERS}\"]\n\n\
             [[policy.grant]]\nresources = [\"sys\"]\ncapabilities = [\"read\"]\n"
        ),
    )
    .expect("policies");
    let status = Command::new("kill")
        .args(["-HUP", &dev.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let mut waited = 0;
    while SysClient::new(orders.clone())
        .status(v1::StatusRequest::default())
        .await
        .is_err()
    {
        waited += 1;
        assert!(waited < 100, "the policies were not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The inventory records the identity as requester.
    let shown = dev.cli_ok(&["cert", "show", "--serial", &serial, "--output", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(shown["requester"], ORDERS);
    assert_eq!(shown["profile"], "client");

    // The enrolment is audited under the token's id, never its text.
    let enrolments = audit_records(&data, "strongroom.v1.Ca/Enroll");
    let ok = enrolments
        .iter()
        .find(|r| r["outcome"] == "OK")
        .expect("an audited enrolment");
    assert_eq!(ok["caller"], "anonymous");
    assert_eq!(ok["target"]["token"], id_of(&first));
    assert_eq!(ok["target"]["profile"], "client");
    assert_eq!(ok["target"]["identity"], ORDERS);
    assert_eq!(ok["target"]["issued_serial"], serial.as_str());

    // --- The same token again: refused, and the files are not touched.
    let anonymous_channel = dev.channel_as(None).await.expect("anonymous");
    let csr = openssl_csr(dir, "again", "/O=Strongroom Test", &format!("URI:{ORDERS}"));
    let (code, message) = enroll_rpc(&anonymous_channel, &first, csr.clone()).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    refusals.insert(message);
    let out = enroll(&dev, dir, "again", ORDERS, &first);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    assert!(!dir.join("again.key").exists() && !dir.join("again.pem").exists());

    // --- An expired token: the shortest TTL is a second.
    let expired = create_local(&data, ORDERS, "1s");
    tokens.push(expired.clone());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, message) = enroll_rpc(&anonymous_channel, &expired, csr.clone()).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    refusals.insert(message);

    // --- A revoked token, made and revoked over gRPC by the admin.
    let out = dev.cli(&[
        "auth",
        "token",
        "create",
        "--identity",
        ORDERS,
        "--profile",
        "client",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let revoked = only_token(&out);
    tokens.push(revoked.clone());
    let out = dev.cli_ok(&["auth", "token", "revoke", &id_of(&revoked)]);
    assert!(out.starts_with(&format!("revoked bootstrap token {}", id_of(&revoked))));
    let (code, message) = enroll_rpc(&anonymous_channel, &revoked, csr.clone()).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    refusals.insert(message);

    // --- A wrong secret for a valid id, and an unknown id: the same answer.
    let batch = create_local(&data, BATCH, "1h");
    tokens.push(batch.clone());
    let batch_csr = openssl_csr(
        dir,
        "batch",
        &format!("/CN={BATCH}"),
        &format!("DNS:{BATCH}"),
    );
    let other = create_local(&data, "spiffe://strongroom.test/svc/unused", "1h");
    tokens.push(other.clone());
    let wrong_secret = format!("{}{}", &batch[..21], &other[21..]);
    let (code, message) = enroll_rpc(&anonymous_channel, &wrong_secret, batch_csr.clone()).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    refusals.insert(message);
    let unknown_id = format!("srb_00000000000000ff{}", &batch[20..]);
    let (code, message) = enroll_rpc(&anonymous_channel, &unknown_id, batch_csr.clone()).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    refusals.insert(message);
    assert_eq!(
        refusals.len(),
        1,
        "one message for every refusal: {refusals:?}"
    );
    let message = refusals.iter().next().expect("message");
    assert!(!message.contains(&id_of(&batch)), "{message}");

    // --- A CSR for another identity, or for more than it: INVALID_ARGUMENT,
    // and the token stays usable.
    for (subj, san) in [
        (
            "/O=Strongroom Test",
            "URI:spiffe://strongroom.test/svc/other".to_string(),
        ),
        (
            &format!("/CN={BATCH}") as &str,
            format!("DNS:{BATCH},DNS:extra.test"),
        ),
        ("/CN=other.test", "DNS:other.test".to_string()),
    ] {
        let csr = openssl_csr(dir, "other", subj, &san);
        let (code, message) = enroll_rpc(&anonymous_channel, &batch, csr).await;
        assert_eq!(code, Code::InvalidArgument, "{san}: {message}");
        assert!(
            message.contains(&format!("enrols exactly [DNS:{BATCH}]")),
            "{message}"
        );
    }
    let listed = dev.cli_ok(&["auth", "token", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("{}  active", id_of(&batch)))),
        "{listed}"
    );
    // It still enrols, its text on standard input, for a DNS identity.
    let out = anonymous(
        &dev,
        &[
            "auth",
            "enroll",
            "--identity",
            BATCH,
            "--key-out",
            p(&dir.join("batch.key")),
            "--cert-out",
            p(&dir.join("batch.pem")),
        ],
        Some(&format!("{batch}\n")),
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let out = openssl(&[
        "x509",
        "-in",
        p(&dir.join("batch.pem")),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("DNS:{BATCH}")),
        "{}",
        output_text(&out)
    );

    // --- Two enrolments racing with one token: exactly one certificate.
    let race = create_local(&data, ORDERS, "1h");
    tokens.push(race.clone());
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (channel, token, csr) = (anonymous_channel.clone(), race.clone(), csr.clone());
            tokio::spawn(async move { enroll_rpc(&channel, &token, csr).await.0 })
        })
        .collect();
    let mut codes = Vec::new();
    for call in calls {
        codes.push(call.await.expect("join"));
    }
    assert_eq!(
        codes.iter().filter(|c| **c == Code::Ok).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, Code::Ok | Code::Unauthenticated))
    );

    // --- The listing tells what became of each, and never a secret.
    let listed = dev.cli_ok(&[
        "auth",
        "token",
        "list",
        "--include-inactive",
        "--output",
        "json",
    ]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let state = |token: &str| {
        listed["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .find(|t| t["id"] == id_of(token))
            .map(|t| t["state"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(state(&first).as_deref(), Some("used"));
    assert_eq!(state(&expired).as_deref(), Some("expired"));
    assert_eq!(state(&revoked).as_deref(), Some("revoked"));
    assert_eq!(state(&batch).as_deref(), Some("used"));
    assert_eq!(state(&other).as_deref(), Some("active"));
    let first_listed = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == id_of(&first))
        .expect("first");
    assert_eq!(first_listed["issued_serial"], serial.as_str());
    assert_eq!(first_listed["created_by"], "local");
    let revoked_listed = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == id_of(&revoked))
        .expect("revoked");
    assert_eq!(revoked_listed["created_by"], dev_admin());

    // A used token cannot be revoked.
    let out = dev.cli(&["auth", "token", "revoke", &id_of(&first)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FailedPrecondition"),
        "{}",
        output_text(&out)
    );

    // --- No token's text, nor its secret, anywhere: not in the audit trail,
    // the appliance's log, or the database files.
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("audit"))
        .expect("audit dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.push(log.clone());
    for suffix in ["", "-wal", "-shm"] {
        files.push(data.join(format!("strongroom.db{suffix}")));
    }
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains("Enroll"),
        "the log is written at debug level"
    );
    for token in &tokens {
        for needle in [token.as_str(), &token[21..]] {
            assert_eq!(found_in(&files, needle), None, "a token's text was found");
        }
    }
    dev.stop();
}

/// The dev admin's identity.
fn dev_admin() -> &'static str {
    "spiffe://strongroom.test/admin"
}
