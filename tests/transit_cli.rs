//! `strongroom transit …` end to end: the command-line client against a dev
//! appliance (SoftHSM2 token, SQLite, TLS on 127.0.0.1). Plaintexts go in on
//! stdin or from files and come back byte for byte, data keys land only in
//! 0600 files, signatures and HMACs verify (exit 0) or not (exit 1), and
//! errors are one line on stderr.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, Dev, openssl, output_text, p};

/// Bytes no text tool would leave alone: NUL, high bytes, CR/LF.
const SECRET: &[u8] = b"card 4111-1111\x00\xff\xfe\r\n\tend\n";

/// Runs `strongroom ARGS` against `dev` with `stdin` on standard input.
fn run(dev: &Dev, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("STRONGROOM_ADDR", &dev.addr)
        .env("STRONGROOM_CACERT", &dev.cacert)
        .env("STRONGROOM_CLIENT_CERT", &dev.client_cert)
        .env("STRONGROOM_CLIENT_KEY", &dev.client_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strongroom");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The command may exit without reading everything; that is its answer.
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("stdin writer");
    out
}

/// Runs a command that must succeed; returns its stdout bytes.
fn ok_bytes(dev: &Dev, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = run(dev, args, stdin);
    assert!(
        out.status.success(),
        "strongroom {args:?} failed: {}",
        output_text(&out)
    );
    out.stdout
}

/// Runs a command that must succeed; returns its stdout as text.
fn ok(dev: &Dev, args: &[&str]) -> String {
    String::from_utf8(ok_bytes(dev, args, b"")).expect("utf-8 stdout")
}

/// Runs a command that must fail with `code`; returns its one stderr line.
fn fails(dev: &Dev, args: &[&str], stdin: &[u8], code: i32) -> (String, String) {
    let out = run(dev, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(code),
        "strongroom {args:?}: {}",
        output_text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    assert!(stderr.starts_with("strongroom: "), "{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn encrypt_decrypt_datakey_rotate_and_rewrap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dev = Dev::start(&tmp.path().join("dev"));
    let dir = tmp.path();

    assert_eq!(
        ok(&dev, &["transit", "create", "payments"]),
        "created payments (aes256-gcm96, version 1)\n"
    );

    // stdin -> ciphertext -> the same bytes on stdout.
    let ciphertext = String::from_utf8(ok_bytes(
        &dev,
        &["transit", "encrypt", "payments", "--aad", "order-42"],
        SECRET,
    ))
    .expect("utf-8");
    assert!(ciphertext.ends_with('\n') && ciphertext.lines().count() == 1);
    let ciphertext = ciphertext.trim_end().to_owned();
    assert!(ciphertext.starts_with("strongroom:v1:"), "{ciphertext}");
    let plaintext = ok_bytes(
        &dev,
        &[
            "transit",
            "decrypt",
            "payments",
            "--aad",
            "order-42",
            "--ciphertext",
            &ciphertext,
        ],
        b"",
    );
    assert_eq!(plaintext, SECRET);

    // The ciphertext from a file (with its newline), the plaintext to a 0600 file.
    let ct_file = dir.join("card.ct");
    std::fs::write(&ct_file, format!("{ciphertext}\n")).expect("write");
    let aad_file = dir.join("aad");
    std::fs::write(&aad_file, "order-42").expect("write");
    let out_file = dir.join("card.txt");
    let summary = ok(
        &dev,
        &[
            "transit",
            "decrypt",
            "payments",
            "--aad-file",
            p(&aad_file),
            "--in",
            p(&ct_file),
            "--out",
            p(&out_file),
        ],
    );
    assert!(summary.starts_with("wrote "), "{summary}");
    assert_eq!(std::fs::read(&out_file).expect("read"), SECRET);
    assert_eq!(mode(&out_file), 0o600);

    // Other associated data: refused, one line naming the gRPC code.
    let (_, err) = fails(
        &dev,
        &[
            "transit",
            "decrypt",
            "payments",
            "--aad",
            "order-43",
            "--ciphertext",
            &ciphertext,
        ],
        b"",
        1,
    );
    assert!(err.contains("InvalidArgument"), "{err}");
    // Decrypted data never goes into JSON: a usage error.
    let (stdout, err) = fails(
        &dev,
        &[
            "transit",
            "decrypt",
            "payments",
            "--ciphertext",
            &ciphertext,
            "--output",
            "json",
        ],
        b"",
        2,
    );
    assert!(stdout.is_empty() && err.contains("--output json"), "{err}");

    // A data key: in the clear only in the 0600 file; the printed ciphertext
    // decrypts to those bytes.
    let dek = dir.join("dek.bin");
    let wrapped = ok(
        &dev,
        &["transit", "datakey", "payments", "--out-plaintext", p(&dek)],
    );
    let wrapped = wrapped.trim_end();
    assert!(wrapped.starts_with("strongroom:v1:"), "{wrapped}");
    let key = std::fs::read(&dek).expect("read data key");
    assert_eq!(key.len(), 32);
    assert_eq!(mode(&dek), 0o600);
    let unwrapped = ok_bytes(
        &dev,
        &["transit", "decrypt", "payments", "--ciphertext", wrapped],
        b"",
    );
    assert_eq!(unwrapped, key);
    // The file is never replaced without --force, checked before the request.
    let (_, err) = fails(
        &dev,
        &["transit", "datakey", "payments", "--out-plaintext", p(&dek)],
        b"",
        1,
    );
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read(&dek).expect("read"), key);
    // Neither --out-plaintext nor --wrapped-only: clap's usage error.
    let out = run(&dev, &["transit", "datakey", "payments"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--out-plaintext"),
        "{}",
        output_text(&out)
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        &dev,
        &[
            "transit",
            "datakey",
            "payments",
            "--wrapped-only",
            "--bits",
            "512",
            "--output",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(json["key_version"], 1);
    assert_eq!(json["plaintext_file"], serde_json::Value::Null);
    assert_eq!(
        json.as_object().expect("object").len(),
        3,
        "no data key in JSON: {json}"
    );

    // Rotate, then rewrap the old ciphertext to the new version.
    assert_eq!(
        ok(&dev, &["transit", "rotate", "payments"]),
        "rotated payments to version 2\n"
    );
    let rewrapped = ok(
        &dev,
        &[
            "transit",
            "rewrap",
            "payments",
            "--ciphertext",
            &ciphertext,
            "--aad",
            "order-42",
        ],
    );
    let rewrapped = rewrapped.trim_end();
    assert!(rewrapped.starts_with("strongroom:v2:"), "{rewrapped}");
    let plaintext = ok_bytes(
        &dev,
        &[
            "transit", "decrypt", "payments", "--aad", "order-42", "--in", "-",
        ],
        rewrapped.as_bytes(),
    );
    assert_eq!(plaintext, SECRET);

    // show and list.
    let show = ok(&dev, &["transit", "show", "payments"]);
    let lines: Vec<&str> = show.lines().collect();
    assert_eq!(lines[0], "name:                   payments", "{show}");
    assert_eq!(lines[1], "type:                   aes256-gcm96", "{show}");
    assert!(lines.contains(&"latest version:         2"), "{show}");
    assert!(lines.contains(&"min decryption version: 1"), "{show}");
    assert!(lines.contains(&"auto-rotate:            off"), "{show}");
    let versions: Vec<&&str> = lines.iter().filter(|l| l.starts_with('v')).collect();
    assert_eq!(versions.len(), 2, "{show}");
    assert!(versions[0].starts_with("v1 created 20"), "{show}");
    assert!(versions[1].starts_with("v2 created 20"), "{show}");

    ok(&dev, &["transit", "create", "tokens", "--type", "hmac"]);
    let list = ok(&dev, &["transit", "list", "--all"]);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(rows[0][..3], ["payments", "aes256-gcm96", "2"], "{list}");
    assert_eq!(rows[1][..3], ["tokens", "hmac", "1"], "{list}");
    assert!(
        rows[0][3].starts_with("20") && rows[0][3].ends_with('Z'),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&dev, &["transit", "list", "--output", "json"])).expect("json");
    assert_eq!(json["keys"][0]["name"], "payments");
    assert_eq!(json["keys"][1]["type"], "hmac");
    assert_eq!(json["next_page_token"], "");

    // HMAC: computed, verified, and a wrong message is exit 1.
    let mac = ok_bytes(&dev, &["transit", "hmac", "tokens"], b"session-1");
    let mac = String::from_utf8(mac).expect("utf-8");
    let mac = mac.trim_end();
    assert!(mac.starts_with("strongroom:v1:"), "{mac}");
    assert_eq!(
        ok_bytes(
            &dev,
            &["transit", "verify-hmac", "tokens", "--hmac", mac],
            b"session-1"
        ),
        b"valid\n"
    );
    let (stdout, _) = fails(
        &dev,
        &["transit", "verify-hmac", "tokens", "--hmac", mac],
        b"session-2",
        1,
    );
    assert_eq!(stdout, "invalid\n");

    dev.stop();
}

#[test]
fn sign_verify_export_and_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dev = Dev::start(&tmp.path().join("dev"));
    let dir = tmp.path();

    ok(
        &dev,
        &[
            "transit",
            "create",
            "release",
            "--type",
            "ed25519",
            "--exportable",
        ],
    );
    let message = dir.join("release.tar");
    std::fs::write(&message, b"release 1.0\x00\x01binary").expect("write");
    let signature = ok(&dev, &["transit", "sign", "release", "--in", p(&message)]);
    let signature = signature.trim_end();
    assert!(signature.starts_with("strongroom:v1:"), "{signature}");
    let verify = |file: &Path| {
        run(
            &dev,
            &[
                "transit",
                "verify",
                "release",
                "--signature",
                signature,
                "--in",
                p(file),
            ],
            b"",
        )
    };
    let out = verify(&message);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(out.stdout, b"valid\n");
    assert!(out.stderr.is_empty(), "{}", output_text(&out));

    let altered = dir.join("altered.tar");
    std::fs::write(&altered, b"release 1.1\x00\x01binary").expect("write");
    let out = verify(&altered);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_eq!(out.stdout, b"invalid\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");

    // The public keys, with --public-keys.
    let show = ok(&dev, &["transit", "show", "release", "--public-keys"]);
    assert!(
        show.contains("flags:                  exportable\n"),
        "{show}"
    );
    assert!(show.contains("\n-----BEGIN PUBLIC KEY-----\n"), "{show}");

    // Export: a 0600 file OpenSSL reads as an Ed25519 private key; nothing
    // of it on stdout.
    let exported = dir.join("release.key");
    let summary = ok(
        &dev,
        &["transit", "export", "release", "--out", p(&exported)],
    );
    assert!(!summary.contains("PRIVATE"), "{summary}");
    assert_eq!(mode(&exported), 0o600);
    let text = std::fs::read_to_string(&exported).expect("read");
    assert!(
        text.starts_with("v1\n-----BEGIN PRIVATE KEY-----\n"),
        "export format"
    );
    let pkey = openssl(&["pkey", "-in", p(&exported), "-noout", "-text"]);
    assert!(pkey.status.success(), "{}", output_text(&pkey));
    assert!(
        String::from_utf8_lossy(&pkey.stdout).contains("ED25519"),
        "{}",
        output_text(&pkey)
    );
    // A key that is not exportable.
    ok(&dev, &["transit", "create", "sealed-key"]);
    let (_, err) = fails(
        &dev,
        &[
            "transit",
            "export",
            "sealed-key",
            "--out",
            p(&dir.join("sealed.key")),
        ],
        b"",
        1,
    );
    assert!(err.contains("FailedPrecondition"), "{err}");
    assert!(!dir.join("sealed.key").exists());

    // Unknown keys: exit 1, one line saying so.
    for args in [
        &["transit", "show", "nope"][..],
        &["transit", "encrypt", "nope"],
        &["transit", "rotate", "nope"],
    ] {
        let (_, err) = fails(&dev, args, b"data", 1);
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.contains("NotFound"), "{err}");
    }

    // Random bytes.
    let hex = ok(
        &dev,
        &["transit", "random", "--bytes", "16", "--format", "hex"],
    );
    let hex = hex.trim_end();
    assert_eq!(hex.len(), 32, "{hex}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex}");

    dev.stop();
}
