//! The gRPC server renews its own TLS certificate while it runs
//! (`tls.auto_renew`): the dev appliance (SoftHSM2 token, TLS on 127.0.0.1),
//! the served certificate read with `openssl s_client` and checked with
//! `openssl verify`, a gRPC stream opened before the renewal still
//! answering after it, and the renewal in the files, the inventory and the
//! audit trail.

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Dev, audit_records, openssl, output_text, p, serial_of};
use strongroom_proto::v1;
use strongroom_proto::v1::sys_client::SysClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// What `openssl s_client` sees at `dev`'s gRPC address with `options`:
/// the handshake's success and its output.
fn s_client(dev: &Dev, options: &[&str]) -> std::process::Output {
    let host = dev.addr.trim_start_matches("https://");
    std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            host,
            "-servername",
            "localhost",
            "-showcerts",
        ])
        .args(options)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client")
}

/// The certificates the server presents now, leaf first, each written to
/// `dir` (`served-N.pem`).
fn served_chain(dev: &Dev, dir: &Path) -> Vec<PathBuf> {
    let out = s_client(dev, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Protocol  : TLSv1.3") || text.contains("TLSv1.3"),
        "{}",
        output_text(&out)
    );
    let mut files = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end = rest[start..]
            .find("-----END CERTIFICATE-----")
            .expect("end of certificate")
            + start
            + "-----END CERTIFICATE-----".len();
        let file = dir.join(format!("served-{}.pem", files.len()));
        std::fs::write(&file, format!("{}\n", &rest[start..end])).expect("write");
        files.push(file);
        rest = &rest[end..];
    }
    assert!(
        !files.is_empty(),
        "no certificate served: {}",
        output_text(&out)
    );
    files
}

/// The serial of the certificate the server presents now.
fn served_serial(dev: &Dev, dir: &Path) -> String {
    serial_of(&served_chain(dev, dir)[0])
}

/// The trail's renewal records.
fn renewals(data: &Path) -> Vec<serde_json::Value> {
    audit_records(data)
        .into_iter()
        .filter(|r| r["operation"] == "strongroom.tls/Renew")
        .collect()
}

/// Waits until `done` holds, for at most `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The public key of a certificate or of a private key, PEM.
fn public_key(args: &[&str]) -> Vec<u8> {
    let out = openssl(args);
    assert!(out.status.success(), "{}", output_text(&out));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_is_renewed_while_connections_stay_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    let data = work.join("dev");
    let (cert, key) = (data.join("tls/server.pem"), data.join("tls/server.key"));
    let (root, issuing) = (data.join("ca/root.pem"), data.join("ca/issuing.pem"));
    let config_path = data.join("strongroom.toml");

    // The dev appliance serves the certificate it issued itself, over TLS
    // 1.3 only, and renews it by itself.
    let dev = Dev::start(&data);
    let old = served_serial(&dev, work);
    assert_eq!(old, serial_of(&cert));
    let tls12 = s_client(&dev, &["-tls1_2"]);
    assert!(
        !tls12.status.success() && !output_text(&tls12).contains("BEGIN CERTIFICATE"),
        "a TLS 1.2 handshake succeeded: {}",
        output_text(&tls12)
    );
    let config = std::fs::read_to_string(&config_path).expect("config");
    assert!(config.contains("\nauto_renew = true\n"), "{config}");
    assert!(renewals(&data).is_empty());
    dev.stop();

    // Due at once (renew when less than 365 days are left; the dev
    // certificate has 365), checked every second; renewals get 730 days, so
    // they are not due again. A directory where the new key is written makes
    // the first renewals fail.
    let config = config
        .replacen(
            "\nauto_renew = true\n",
            "\nauto_renew = true\nrenew_before = \"365d\"\nrenew_check = \"1s\"\n",
            1,
        )
        .replacen("max_ttl = \"365d\"", "max_ttl = \"730d\"", 1);
    std::fs::write(&config_path, config).expect("write config");
    let blocker = data.join("tls/server.key.new");
    std::fs::create_dir(&blocker).expect("block the key file");
    let dev = Dev::restart(&data);

    // A client that never completes its handshake and one that fails it
    // hold up nobody: everything below connects meanwhile.
    let host = dev.addr.trim_start_matches("https://").to_string();
    let mut stalled = std::net::TcpStream::connect(&host).expect("connect");
    let mut garbage = std::net::TcpStream::connect(&host).expect("connect");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let stalled_since = Instant::now();

    // A connection and a stream opened before the renewal.
    let channel = dev.channel().await;
    let mut transit = strongroom_proto::v1::transit_client::TransitClient::new(channel.clone());
    transit
        .create_key(v1::CreateKeyRequest {
            name: "tls-renewal".into(),
            r#type: v1::TransitKeyType::Aes256Gcm96 as i32,
            ..Default::default()
        })
        .await
        .expect("create key");
    let (requests, queue) = mpsc::channel(4);
    let item = |text: &str| v1::EncryptStreamRequest {
        key: "tls-renewal".into(),
        items: vec![v1::EncryptItem {
            plaintext: text.as_bytes().to_vec(),
            ..Default::default()
        }],
    };
    requests.send(item("before")).await.expect("send");
    let mut responses = transit
        .encrypt_stream(ReceiverStream::new(queue))
        .await
        .expect("open a stream")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("answer")
        .expect("a message");
    assert_eq!(first.results.len(), 1);

    // The failing renewal: audited, reported by Sys.Status, the certificate
    // still in service.
    wait_for(
        "a failed renewal in the audit trail",
        Duration::from_secs(30),
        || !renewals(&data).is_empty(),
    );
    let failed = renewals(&data).remove(0);
    assert_eq!(failed["caller"], "strongroom-server-tls", "{failed}");
    assert_eq!(failed["source"], "local", "{failed}");
    assert_eq!(failed["outcome"], "UNAVAILABLE", "{failed}");
    assert_eq!(failed["target"]["renews"], old.as_str(), "{failed}");
    assert_eq!(failed["target"]["profile"], "server", "{failed}");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("server.key.new")),
        "{failed}"
    );
    let status = SysClient::new(channel.clone())
        .status(v1::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert!(
        status
            .recommended_actions
            .iter()
            .any(|a| a.contains("TLS certificate") && a.contains("could not be renewed")),
        "{:?}",
        status.recommended_actions
    );
    assert_eq!(served_serial(&dev, work), old);
    assert_eq!(serial_of(&cert), old);

    // Unblocked, the next retry renews.
    std::fs::remove_dir(&blocker).expect("unblock");
    wait_for(
        "a renewed certificate served",
        Duration::from_secs(60),
        || served_serial(&dev, work) != old,
    );
    let chain = served_chain(&dev, work);
    let new = serial_of(&chain[0]);

    // openssl verifies it under the dev root; the names are the same.
    let verify = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&issuing),
        "-purpose",
        "sslserver",
        "-verify_ip",
        "127.0.0.1",
        p(&chain[0]),
    ]);
    assert!(verify.status.success(), "{}", output_text(&verify));
    let names = |file: &Path| {
        output_text(&openssl(&[
            "x509",
            "-in",
            p(file),
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
        ]))
    };
    let renewed_names = names(&chain[0]);
    assert!(renewed_names.contains("CN=localhost") || renewed_names.contains("CN = localhost"));
    for name in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ] {
        assert!(renewed_names.contains(name), "{name}: {renewed_names}");
    }

    // The files hold what is served: the certificate, and its key (0600).
    assert_eq!(serial_of(&cert), new);
    assert_eq!(
        public_key(&["x509", "-in", p(&cert), "-noout", "-pubkey"]),
        public_key(&["pkey", "-in", p(&key), "-pubout"])
    );
    let mode = std::fs::metadata(&key).expect("key").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    assert!(!data.join("tls/server.pem.new").exists());
    assert!(!blocker.exists());

    // The stream opened before the renewal still answers, on the same
    // connection, and so does the channel.
    requests.send(item("after")).await.expect("send");
    let second = responses
        .message()
        .await
        .expect("answer")
        .expect("a message");
    assert_eq!(second.results.len(), 1);
    drop(requests);
    assert!(responses.message().await.expect("end").is_none());
    let status = SysClient::new(channel)
        .status(v1::StatusRequest {})
        .await
        .expect("status after the renewal")
        .into_inner();
    assert!(
        !status
            .recommended_actions
            .iter()
            .any(|a| a.contains("TLS certificate")),
        "{:?}",
        status.recommended_actions
    );

    // The inventory and the audit trail record the renewal.
    let shown: serde_json::Value =
        serde_json::from_str(&dev.cli_ok(&["cert", "show", "--serial", &new, "--output", "json"]))
            .expect("json");
    let shown = shown.get("certificate").unwrap_or(&shown);
    assert_eq!(shown["requester"], "strongroom-server-tls", "{shown}");
    assert_eq!(shown["renewal_of"], old.as_str(), "{shown}");
    assert_eq!(shown["profile"], "server", "{shown}");
    let renewed: Vec<_> = renewals(&data)
        .into_iter()
        .filter(|r| r["outcome"] == "OK")
        .collect();
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    assert_eq!(renewed[0]["target"]["serial"], new.as_str());
    assert_eq!(renewed[0]["target"]["renews"], old.as_str());
    assert_eq!(renewed[0]["caller"], "strongroom-server-tls");

    // New connections get the new certificate and still carry callers'
    // identities: the dev admin reads the status, an anonymous caller may
    // not.
    dev.cli_ok(&["status"]);
    let anonymous = dev.cli_anonymous(&["status"]);
    assert!(!anonymous.status.success());
    assert!(
        output_text(&anonymous).contains("PermissionDenied")
            || output_text(&anonymous).contains("permission"),
        "{}",
        output_text(&anonymous)
    );

    // The failed handshake was dropped; the stalled one is cut off after
    // the handshake time limit (10 s).
    let mut buffer = [0u8; 64];
    garbage
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    if let Err(e) = garbage.read(&mut buffer) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the failed handshake was not closed: {e}"
        );
    }
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    match stalled.read(&mut buffer) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the stalled handshake was not cut off: {other:?}"),
    }
    let cut_after = stalled_since.elapsed();
    assert!(
        cut_after >= Duration::from_secs(9) && cut_after < Duration::from_secs(20),
        "{cut_after:?}"
    );

    // Renewed for 730 days, the certificate is not due again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(served_serial(&dev, work), new);
    assert_eq!(
        renewals(&data)
            .iter()
            .filter(|r| r["outcome"] == "OK")
            .count(),
        1
    );
    dev.stop();
}

#[test]
fn a_certificate_from_elsewhere_is_replaced_by_one_from_the_issuing_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    Dev::start(&data).stop();

    // The appliance is given a self-signed certificate, valid long enough
    // that nothing is due by date.
    let (cert, key) = (data.join("tls/server.pem"), data.join("tls/server.key"));
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&key),
        "-out",
        p(&cert),
        "-days",
        "200",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let self_signed = std::fs::read(&cert).expect("certificate");

    // Once unsealed it serves one from its own issuing CA instead (the
    // harness waits until a client trusting only the dev root connects).
    let dev = Dev::restart(&data);
    let chain = served_chain(&dev, tmp.path());
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &dev.cacert,
        "-untrusted",
        p(&data.join("ca/issuing.pem")),
        p(&chain[0]),
    ]);
    assert!(verified.status.success(), "{}", output_text(&verified));
    assert_ne!(std::fs::read(&cert).expect("certificate"), self_signed);
    let done = renewals(&data);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["outcome"], "OK");
    dev.stop();
}
