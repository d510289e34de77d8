//! The audit trail end to end: the dev appliance writes exactly one
//! hash-chained record per gRPC request (unary or streaming, succeeded or
//! failed), no secret reaches it, `strongroom audit verify` accepts it, and
//! when the trail cannot be written requests fail with UNAVAILABLE within
//! the bound, then succeed again once it can.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{BIN, Dev, audit_records, output_text, p, trail_files};
use strongroom_proto::v1;
use tonic::Code;

const SECRET: &[u8] = b"TOP-SECRET-PLAINTEXT-9c1e";

/// `strongroom audit verify` accepts `files` as one chain.
fn assert_verifies(files: &[PathBuf]) {
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify"])
        .args(files)
        .output()
        .expect("audit verify");
    assert!(out.status.success(), "{}", output_text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_leaves_one_record_and_the_trail_fails_closed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let dev = Dev::start(&data);
    let mut client = dev.transit_client().await;
    let before = audit_records(&data).len();

    // Six requests: successes, failures, and one stream of three messages.
    client
        .create_key(v1::CreateKeyRequest {
            name: "audited".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let ciphertext = client
        .encrypt(v1::EncryptRequest {
            key: "audited".into(),
            plaintext: SECRET.to_vec(),
            associated_data: b"order-1".to_vec(),
            ..Default::default()
        })
        .await
        .expect("encrypt")
        .into_inner()
        .ciphertext;
    let wrong = client
        .decrypt(v1::DecryptRequest {
            key: "audited".into(),
            ciphertext: ciphertext.clone(),
            associated_data: b"order-2".to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("wrong associated data");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let missing = client
        .get_key(v1::GetKeyRequest {
            name: "nobody".into(),
        })
        .await
        .expect_err("no such key");
    assert_eq!(missing.code(), Code::NotFound);
    let messages: Vec<v1::EncryptStreamRequest> = (0..3)
        .map(|_| v1::EncryptStreamRequest {
            key: "audited".into(),
            items: vec![v1::EncryptItem {
                plaintext: SECRET.to_vec(),
                ..Default::default()
            }],
        })
        .collect();
    let mut answers = client
        .encrypt_stream(tokio_stream::iter(messages))
        .await
        .expect("stream")
        .into_inner();
    let mut n = 0;
    while let Some(answer) = answers.message().await.expect("stream answer") {
        assert_eq!(answer.results.len(), 1);
        n += 1;
    }
    assert_eq!(n, 3);
    client
        .get_kek_status(v1::GetKekStatusRequest {})
        .await
        .expect("kek status");

    let all = audit_records(&data);
    let new = &all[before..];
    let seen: Vec<(&str, &str)> = new
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().expect("operation"),
                r["outcome"].as_str().expect("outcome"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("strongroom.v1.Transit/CreateKey", "OK"),
            ("strongroom.v1.Transit/Encrypt", "OK"),
            ("strongroom.v1.Transit/Decrypt", "INVALID_ARGUMENT"),
            ("strongroom.v1.Transit/GetKey", "NOT_FOUND"),
            ("strongroom.v1.Transit/EncryptStream", "OK"),
            ("strongroom.v1.Transit/GetKekStatus", "OK"),
        ]
    );
    for record in new {
        assert_eq!(record["caller"], "spiffe://strongroom.test/admin");
        assert!(
            record["source"]
                .as_str()
                .expect("source")
                .starts_with("127.0.0.1:"),
            "{record}"
        );
        assert!(record["latency_us"].as_u64().is_some(), "{record}");
    }
    assert!(
        new[3]["detail"]
            .as_str()
            .expect("detail")
            .contains("nobody")
    );

    // No secret anywhere in the trail, in the clear or as the ciphertext.
    let text: String = trail_files(&data)
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    assert!(!text.contains(std::str::from_utf8(SECRET).expect("utf-8")));
    let body = ciphertext.rsplit(':').next().expect("body");
    assert!(!text.contains(body));

    // In their place, digests an auditor can match: the appliance gives the
    // digest of a value it is shown, under a key in its HSM.
    let secret_file = tmp.path().join("secret.bin");
    std::fs::write(&secret_file, SECRET).expect("secret file");
    let secret_digest = dev
        .cli_ok(&["audit", "digest", "--in", p(&secret_file)])
        .trim()
        .to_string();
    let ciphertext_file = tmp.path().join("ciphertext.txt");
    std::fs::write(&ciphertext_file, &ciphertext).expect("ciphertext file");
    let ciphertext_digest = dev
        .cli_ok(&["audit", "digest", "--in", p(&ciphertext_file)])
        .trim()
        .to_string();
    assert_eq!(secret_digest.len(), 22, "{secret_digest}");
    assert_ne!(secret_digest, ciphertext_digest);
    assert_eq!(new[1]["target"]["plaintext_hmac"], secret_digest.as_str());
    assert_eq!(
        new[2]["target"]["ciphertext_hmac"],
        ciphertext_digest.as_str()
    );
    let streamed = [secret_digest.as_str(); 3].join(",");
    assert_eq!(new[4]["target"]["plaintext_hmac"], streamed.as_str());
    assert!(new[0]["target"].get("plaintext_hmac").is_none());
    // The digest is keyed: a plain SHA-256 of the value is not it.
    let plain = ring::digest::digest(&ring::digest::SHA256, SECRET);
    let plain = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&plain.as_ref()[..16]);
    assert!(!text.contains(&plain));

    // The trail verifies as one chain.
    let files = trail_files(&data);
    assert_verifies(&files);

    // The trail cannot be written: the newest file is moved away (reported
    // as deleted) and the next file's name is taken by /dev/full.
    let last_seq = audit_records(&data).last().expect("records")["seq"]
        .as_u64()
        .expect("seq");
    let current = files.last().expect("a file").clone();
    let aside = data.join("audit").join("moved-aside.jsonl.bak");
    std::fs::rename(&current, &aside).expect("move aside");
    let next = data
        .join("audit")
        .join(format!("audit-{:020}.jsonl", last_seq + 1));
    std::os::unix::fs::symlink("/dev/full", &next).expect("symlink");
    let started = Instant::now();
    let refused = client
        .get_kek_status(v1::GetKekStatusRequest {})
        .await
        .expect_err("unaudited");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("audit"), "{refused:?}");

    // Writable again: requests succeed and the chain goes on.
    std::fs::remove_file(&next).expect("remove symlink");
    client
        .get_kek_status(v1::GetKekStatusRequest {})
        .await
        .expect("audited again");
    std::fs::rename(&aside, &current).expect("move back");
    let files = trail_files(&data);
    assert_verifies(&files);
    let last = audit_records(&data).pop().expect("a record");
    assert_eq!(last["seq"].as_u64(), Some(last_seq + 1));
    assert_eq!(last["operation"], "strongroom.v1.Transit/GetKekStatus");
    dev.stop();
}
