//! The OCSP responder end to end: `openssl ocsp` (POST, with and without a
//! nonce), a GET of the same request (base64 in the path, checked with
//! `openssl ocsp -respin`), and gnutls `ocsptool --ask`, at the URL written
//! into the certificate's AIA; good, then revoked with its reason right
//! after the revoke is acknowledged; unknown for a serial we never issued;
//! unauthorized for an issuer we do not serve; malformed requests refused;
//! every response kind clean under pkilint. A keyless edge responder
//! (`strongroom ocsp serve`) serves responses signed ahead, and follows a
//! revocation.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use common::{BIN, Dev, http_get, http_post, openssl, output_text, p, pkilint_ocsp};

struct Pki {
    dir: tempfile::TempDir,
    issuing: PathBuf,
    root: PathBuf,
}

impl Pki {
    fn new(dev: &Dev) -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let (issuing, root) = dev.chain_files(dir.path());
        Pki { dir, issuing, root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// gnutls `ocsptool --ask` for `cert` (URL from its AIA), trusting the
    /// issuing CA as the anchor of the responder; returns its stdout+stderr.
    fn ocsptool_ask(&self, cert: &Path) -> String {
        output_text(
            &std::process::Command::new("ocsptool")
                .args([
                    "--ask",
                    "--load-issuer",
                    p(&self.issuing),
                    "--load-cert",
                    p(cert),
                ])
                .arg(format!("--load-trust={}", p(&self.issuing)))
                .output()
                .expect("ocsptool"),
        )
    }

    /// `openssl ocsp` against `url` for `cert`; returns its stdout+stderr.
    fn ask(&self, url: &str, cert: &Path, extra: &[&str]) -> String {
        let mut what = vec!["-cert", p(cert)];
        what.extend_from_slice(extra);
        self.query(url, &what)
    }

    /// `openssl ocsp` against `url` about what `what` names (`-cert FILE`,
    /// `-serial N`, options), for our issuing CA, verifying up to the root;
    /// returns its stdout+stderr.
    fn query(&self, url: &str, what: &[&str]) -> String {
        let mut args = vec!["ocsp", "-issuer", p(&self.issuing)];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-url", url, "-CAfile", p(&self.root)]);
        output_text(&openssl(&args))
    }
}

/// The OCSP URL in `cert`'s AIA.
fn ocsp_url(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", p(cert), "-noout", "-ocsp_uri"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn openssl_and_gnutls_get_good_then_revoked_over_post_and_get() {
    let data = tempfile::tempdir().expect("tempdir");
    let dev = Dev::start(&data.path().join("data"));
    let pki = Pki::new(&dev);
    let (serial, cert) = dev.issue_server(pki.dir.path(), "ocsp-one");
    let url = ocsp_url(&cert);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // POST with a nonce (openssl's default): signed live, nonce echoed.
    let said = pki.ask(&url, &cert, &[]);
    assert!(said.contains(&format!("{}: good", p(&cert))), "{said}");
    assert!(said.contains("Response verify OK"), "{said}");
    assert!(!said.contains("WARNING: no nonce"), "{said}");
    // Without a nonce: the cached path, twice.
    for _ in 0..2 {
        let said = pki.ask(&url, &cert, &["-no_nonce"]);
        assert!(said.contains(": good"), "{said}");
        assert!(said.contains("Response verify OK"), "{said}");
    }
    // SHA-256 CertIDs.
    let said = pki.query(&url, &["-sha256", "-cert", p(&cert), "-no_nonce"]);
    assert!(
        said.contains(": good") && said.contains("Response verify OK"),
        "{said}"
    );

    // GET: the same request, base64 in the path (with '+', '/' as they come).
    let request = pki.path("req.der");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        p(&pki.issuing),
        "-cert",
        p(&cert),
        "-no_nonce",
        "-reqout",
        p(&request),
    ]);
    assert!(out.status.success());
    let encoded = Base64::encode_string(&std::fs::read(&request).expect("req"));
    let got = http_get(&format!("{url}/{encoded}"), &[]);
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-type"),
        Some("application/ocsp-response")
    );
    let cache = got
        .header("cache-control")
        .expect("cache-control")
        .to_string();
    assert!(cache.contains("max-age="), "{cache}");
    assert!(got.header("last-modified").is_some() && got.header("expires").is_some());
    let etag = got.header("etag").expect("etag").to_string();
    assert_eq!(
        http_get(&format!("{url}/{encoded}"), &[("If-None-Match", &etag)]).status,
        304
    );
    // Percent-encoded too.
    let escaped = encoded
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert_eq!(http_get(&format!("{url}/{escaped}"), &[]).body, got.body);
    let good = pki.path("good.der");
    std::fs::write(&good, &got.body).expect("write");
    let checked = openssl(&[
        "ocsp",
        "-respin",
        p(&good),
        "-issuer",
        p(&pki.issuing),
        "-cert",
        p(&cert),
        "-CAfile",
        p(&pki.root),
    ]);
    let text = output_text(&checked);
    assert!(
        text.contains(": good") && text.contains("Response verify OK"),
        "{text}"
    );
    pkilint_ocsp(&good);
    // Signed by a delegated responder the issuing CA certified: its
    // certificate rides in the response, with the OCSP signing EKU and
    // id-pkix-ocsp-nocheck, and it is in the inventory.
    let text = output_text(&openssl(&[
        "ocsp",
        "-respin",
        p(&good),
        "-resp_text",
        "-noverify",
    ]));
    assert!(text.contains("OCSP Responder"), "{text}");
    assert!(text.contains("OCSP Signing"), "{text}");
    assert!(text.contains("OCSP No Check"), "{text}");
    let listed = dev.cli_ok(&["cert", "list", "--profile", "ocsp-signer"]);
    assert!(listed.contains("OCSP Responder"), "{listed}");

    // gnutls ocsptool asks the URL from the certificate's AIA.
    let text = pki.ocsptool_ask(&cert);
    assert!(text.contains("Certificate Status: good"), "{text}");
    assert!(text.contains("Verifying OCSP Response: Success"), "{text}");

    // Revoke: the very next answer says revoked, with the reason.
    dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    let said = pki.ask(&url, &cert, &["-no_nonce"]);
    assert!(said.contains(": revoked"), "{said}");
    assert!(said.contains("Reason: keyCompromise"), "{said}");
    assert!(said.contains("Response verify OK"), "{said}");
    let revoked = pki.path("revoked.der");
    let got = http_get(&format!("{url}/{encoded}"), &[]);
    std::fs::write(&revoked, &got.body).expect("write");
    pkilint_ocsp(&revoked);
    let text = pki.ocsptool_ask(&cert);
    assert!(text.contains("Certificate Status: revoked"), "{text}");

    // A serial of our issuer that we never issued: unknown.
    let unknown = pki.path("unknown.der");
    let text = pki.query(&url, &["-serial", "0x4a0b0c", "-respout", p(&unknown)]);
    assert!(text.contains("0x4a0b0c: unknown"), "{text}");
    pkilint_ocsp(&unknown);

    // Two certificates in one request: one signature, both answered.
    let (_, second) = dev.issue_server(pki.dir.path(), "ocsp-two");
    let text = pki.query(&url, &["-cert", p(&cert), "-cert", p(&second)]);
    assert!(text.contains(&format!("{}: revoked", p(&cert))), "{text}");
    assert!(text.contains(&format!("{}: good", p(&second))), "{text}");

    // An issuer we do not serve (the root): unauthorized.
    let out = openssl(&[
        "ocsp",
        "-issuer",
        p(&pki.root),
        "-cert",
        p(&pki.issuing),
        "-url",
        &url,
        "-CAfile",
        p(&pki.root),
    ]);
    let text = output_text(&out);
    assert!(text.contains("unauthorized"), "{text}");

    // Garbage, truncated and oversized requests: 400 + malformedRequest,
    // and the responder keeps answering.
    let request_der = std::fs::read(&request).expect("req");
    let oversized = vec![0x30; 64 * 1024];
    for body in [
        &b"garbage"[..],
        &request_der[..request_der.len() / 2],
        &oversized[..],
    ] {
        let answer = http_post(&url, "application/ocsp-request", body);
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.body,
            [0x30, 0x03, 0x0a, 0x01, 0x01],
            "malformedRequest"
        );
    }
    assert_eq!(http_get(&format!("{url}/%%%notbase64"), &[]).status, 400);
    let said = pki.ask(&url, &cert, &["-no_nonce"]);
    assert!(said.contains(": revoked"), "{said}");
    dev.stop();
}

/// A keyless edge responder (`strongroom ocsp serve`) on the dev
/// appliance's store; killed when dropped.
struct Edge {
    child: Child,
    url: String,
}

impl Edge {
    fn start(store: &Path, issuer: &Path) -> Edge {
        let mut child = Command::new(BIN)
            .args(["ocsp", "serve", "--store"])
            .arg(store)
            .arg("--issuer")
            .arg(issuer)
            .args(["--listen", "127.0.0.1:0", "--poll-ms", "100"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strongroom ocsp serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the edge exited before saying where it listens")
                .expect("read stderr");
            if let Some(rest) = line.strip_prefix("strongroom: OCSP (edge, keyless) on ") {
                break rest.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Edge { child, url }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_keyless_edge_serves_responses_signed_ahead_and_follows_a_revocation() {
    let data = tempfile::tempdir().expect("tempdir");
    let dev = Dev::start(&data.path().join("data"));
    let pki = Pki::new(&dev);
    let (serial, cert) = dev.issue_server(pki.dir.path(), "edge-one");
    let edge = Edge::start(&data.path().join("data/strongroom.db"), &pki.issuing);
    assert!(edge.url.ends_with("/ocsp"), "{}", edge.url);

    // Nobody has asked the appliance about this certificate: the edge can
    // only answer from a response the presigner made ahead.
    let deadline = Instant::now() + Duration::from_secs(30);
    let said = loop {
        let said = pki.ask(&edge.url, &cert, &["-no_nonce"]);
        if said.contains(": good") || Instant::now() > deadline {
            break said;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(said.contains(&format!("{}: good", p(&cert))), "{said}");
    assert!(said.contains("Response verify OK"), "{said}");
    // With a nonce, the edge (which cannot sign) answers without one.
    let said = pki.ask(&edge.url, &cert, &[]);
    assert!(
        said.contains(": good") && said.contains("Response verify OK"),
        "{said}"
    );
    assert!(said.contains("WARNING: no nonce in response"), "{said}");

    // A revocation on the appliance reaches the edge.
    dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "superseded",
    ]);
    let revoked_at = Instant::now();
    let deadline = revoked_at + Duration::from_secs(10);
    let said = loop {
        let said = pki.ask(&edge.url, &cert, &["-no_nonce"]);
        if said.contains(": revoked") || Instant::now() > deadline {
            break said;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "the edge said revoked {:?} after the revoke returned",
        revoked_at.elapsed()
    );
    assert!(said.contains(": revoked"), "{said}");
    assert!(said.contains("Reason: superseded"), "{said}");
    assert!(said.contains("Response verify OK"), "{said}");

    // What the edge cannot answer: a serial never issued, several CertIDs.
    let said = pki.query(&edge.url, &["-serial", "0x4a0b0c", "-no_nonce"]);
    assert!(said.contains("unauthorized"), "{said}");
    let (_, second) = dev.issue_server(pki.dir.path(), "edge-two");
    let said = pki.query(
        &edge.url,
        &["-cert", p(&cert), "-cert", p(&second), "-no_nonce"],
    );
    assert!(said.contains("unauthorized"), "{said}");
    // Garbage is malformed there too.
    let answer = http_post(&edge.url, "application/ocsp-request", b"garbage");
    assert_eq!(answer.status, 400);
    // The CA certificate it was given is served beside it.
    let issuing_url = edge.url.replace("/ocsp", "/ca/issuing.crt");
    assert_eq!(http_get(&issuing_url, &[]).status, 200);

    // A restarted appliance keeps its delegated signer (the key stays in
    // the HSM) and the edge keeps serving.
    dev.stop();
    let dev = Dev::start(&data.path().join("data"));
    let signers = dev.cli_ok(&["cert", "list", "--profile", "ocsp-signer"]);
    assert_eq!(signers.lines().count(), 1, "{signers}");
    let said = pki.ask(&edge.url, &cert, &["-no_nonce"]);
    assert!(said.contains(": revoked"), "{said}");
    drop(edge);
    dev.stop();
}

#[test]
fn the_edge_refuses_a_store_it_cannot_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = dir.path().join("issuer.pem");
    std::fs::write(&issuer, "not a certificate").expect("write");
    let out = Command::new(BIN)
        .args(["ocsp", "serve", "--store"])
        .arg(dir.path().join("missing.db"))
        .arg("--issuer")
        .arg(&issuer)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let text = output_text(&out);
    assert!(text.contains("no PEM certificate"), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
}

#[test]
fn the_delegated_signer_is_renewed_before_it_expires() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().join("data");
    let dev = Dev::start(&dir);
    dev.stop();
    // Short lives: responses valid a minute, signers three minutes, so a
    // signer is due for renewal two minutes after it was made. The stored
    // (week-long) signer is forgotten, so the restart makes a short one.
    let config = dir.join("strongroom.toml");
    let mut text = std::fs::read_to_string(&config).expect("dev config");
    text.push_str("\n[ocsp]\nvalidity = \"1m\"\nsigner_validity = \"3m\"\n");
    std::fs::write(&config, text).expect("write config");
    rusqlite::Connection::open(dir.join("strongroom.db"))
        .expect("open store")
        .execute("DELETE FROM ocsp_signers", [])
        .expect("forget the signer");
    let dev = Dev::restart(&dir);
    let pki = Pki::new(&dev);
    let (_, cert) = dev.issue_server(pki.dir.path(), "renewal");
    let url = ocsp_url(&cert);
    let signers = || {
        dev.cli_ok(&["cert", "list", "--profile", "ocsp-signer"])
            .lines()
            .count()
    };
    assert_eq!(signers(), 2, "the week-long signer and the short one");

    let deadline = Instant::now() + Duration::from_secs(300);
    while signers() < 3 {
        assert!(
            Instant::now() < deadline,
            "no renewal within 5 minutes of making a 3-minute signer"
        );
        std::thread::sleep(Duration::from_secs(5));
    }
    // Live and cached responses verify under the renewed signer.
    let said = pki.ask(&url, &cert, &[]);
    assert!(
        said.contains(": good") && said.contains("Response verify OK"),
        "{said}"
    );
    let said = pki.ask(&url, &cert, &["-no_nonce"]);
    assert!(
        said.contains(": good") && said.contains("Response verify OK"),
        "{said}"
    );
    dev.stop();
}
