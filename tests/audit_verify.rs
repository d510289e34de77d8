//! `strongroom audit verify` on trails written here from the documented
//! format (not with the appliance's own writer): an intact trail passes with
//! exit 0; a changed, deleted or reordered record fails with exit 1 and one
//! line naming the file and line.

use std::path::Path;
use std::process::{Command, Output};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` records chained as the format says: the hash of the object without
/// its last member, then `,"hash":"…"}`.
fn trail(n: u64) -> Vec<String> {
    let mut prev = GENESIS.to_string();
    (1..=n)
        .map(|seq| {
            let body = format!(
                "{{\"seq\":{seq},\"time\":\"2026-11-22T10:00:0{seq}.000Z\",\"caller\":\"svc\",\
                 \"source\":\"127.0.0.1:4000\",\"operation\":\"strongroom.v1.Ca/IssueFromCsr\",\
                 \"target\":{{\"profile\":\"server\"}},\"outcome\":\"OK\",\"latency_us\":{seq}00,\
                 \"prev_hash\":\"{prev}\"}}"
            );
            let hash = sha256_hex(body.as_bytes());
            prev = hash.clone();
            format!(
                "{},\"hash\":\"{hash}\"}}",
                body.strip_suffix('}').expect("object")
            )
        })
        .collect()
}

fn verify(file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["audit", "verify"])
        .arg(file)
        .args(extra)
        .output()
        .expect("run strongroom")
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

#[test]
fn audit_verify_accepts_an_intact_trail_and_names_the_first_break() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let lines = trail(4);
    write(&path, &lines);
    let out = verify(&path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("intact: 4 records, sequence 1 to 4, in 1 file; last hash "),
        "{stdout}"
    );
    let out = verify(&path, &["--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["records"], 4);
    assert_eq!(json["last_seq"], 4);
    assert_eq!(json["continues_earlier"], false);
    let last = lines[3].rsplit("\"hash\":\"").next().expect("hash");
    assert_eq!(json["last_hash"], last.trim_end_matches("\"}"));

    let cases: [(&str, Vec<String>, &str); 3] = [
        (
            "edited",
            {
                let mut l = lines.clone();
                l[1] = l[1].replace("\"caller\":\"svc\"", "\"caller\":\"svd\"");
                l
            },
            "line 2: the line's hash does not match its contents",
        ),
        (
            "deleted",
            {
                let mut l = lines.clone();
                l.remove(2);
                l
            },
            "line 3: sequence 4 follows 2",
        ),
        (
            "reordered",
            {
                let mut l = lines.clone();
                l.swap(1, 2);
                l
            },
            "line 2: sequence 3 follows 1",
        ),
    ];
    for (what, changed, expected) in cases {
        write(&path, &changed);
        let out = verify(&path, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{what}: one line: {stderr}"
        );
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}");
    }
}
