//! The `ceremony` binary end to end against real SoftHSM2 tokens: a root
//! ceremony that sets up shares, an intermediate over a key from another
//! token (the online HSM), a root CRL; each output checked by `openssl` and
//! pkilint, each directory by `ceremony verify` (which must fail after any
//! change); and every refusal leaves nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secrecy::ExposeSecret;
use strongroom_hsm::{KeySpec, Pin, PoolConfig, Token};
use strongroom_softhsm::TestToken;

const BIN: &str = env!("CARGO_BIN_EXE_ceremony");

fn ceremony(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run the ceremony binary")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `ceremony run CONFIG --out OUT --yes EXTRA…` and insists it worked.
fn run_ok(config: &Path, out: &Path, extra: &[&str]) -> String {
    let result = run(config, out, extra);
    assert!(
        result.status.success(),
        "ceremony failed:\n{}",
        text(&result)
    );
    text(&result)
}

fn run(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", p(config), "--out", p(out), "--yes"];
    args.extend_from_slice(extra);
    ceremony(&args)
}

/// Runs a ceremony that must be refused: exit code non-zero, one line on
/// stderr containing `expected`, and `out` exactly as it was before.
fn refused(config: &Path, out: &Path, extra: &[&str], expected: &str) {
    let before = listing(out);
    let result = run(config, out, extra);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "not refused:\n{}", text(&result));
    assert!(
        stderr.contains(expected),
        "expected '{expected}' in:\n{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(listing(out), before, "something was written");
}

/// Every file under `dir` with its contents (None if `dir` is missing).
fn listing(dir: &Path) -> Option<Vec<(PathBuf, Vec<u8>)>> {
    if !dir.exists() {
        return None;
    }
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                all.push((path, bytes));
            }
        }
    }
    all.sort();
    Some(all)
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed")
}

/// A tool from the test venv (`STRONGROOM_TEST_VENV`, set by the test command).
fn pkilint_bin(tool: &str) -> PathBuf {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv");
    let path = std::env::var_os("STRONGROOM_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or(default)
        .join("bin")
        .join(tool);
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/test, which installs pkilint",
        path.display()
    );
    path
}

/// Runs a pkilint tool; panics on any ERROR or FATAL finding.
fn pkilint(tool: &str, args: &[&str], files: &[&Path]) {
    let out = Command::new(pkilint_bin(tool))
        .arg("lint")
        .args(args)
        .args(["-s", "ERROR"])
        .args(files)
        .output()
        .expect("run pkilint");
    let report = text(&out);
    let findings: Vec<&str> = report.lines().filter(|l| l.starts_with("    ")).collect();
    assert!(
        findings.is_empty() && out.status.success(),
        "{tool} found problems in {files:?}:\n{report}"
    );
}

struct Offline {
    token: TestToken,
    work: tempfile::TempDir,
}

impl Offline {
    fn new(prefix: &str) -> Offline {
        Offline {
            token: TestToken::create(prefix).expect("SoftHSM2 token"),
            work: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn dir(&self) -> &Path {
        self.work.path()
    }

    fn hsm(&self) -> String {
        format!(
            "[hsm]\nmodule = \"{}\"\ntoken = \"{}\"\n",
            self.token.module.display(),
            self.token.label
        )
    }

    fn pin_file(&self) -> PathBuf {
        write(
            self.dir(),
            "initial.pin",
            &format!("{}\n", self.token.user_pin.expose_secret()),
        )
    }

    fn root_config(&self, name: &str, validity: &str) -> PathBuf {
        write(
            self.dir(),
            name,
            &format!(
                r#"ceremony = "root"
description = "test root ceremony"
{}
[shares]
threshold = 2
count = 3

[key]
label = "root-key"
type = "ec-p384"

[certificate]
subject = {{ country = "NL", organization = "Strongroom Test", common_name = "Strongroom Test Root" }}
validity = "{validity}"
path_length = 1
key_usage = ["digitalSignature", "keyCertSign", "cRLSign"]

[outputs]
certificate = "root.pem"
public_key = "root.pub.pem"
"#,
                self.hsm()
            ),
        )
    }

    fn intermediate_config(&self, name: &str, root: &Path, key: &str, validity: &str) -> PathBuf {
        write(
            self.dir(),
            name,
            &format!(
                r#"ceremony = "intermediate"
{}
[signing_key]
label = "root-key"
certificate = "{}"

[subject_key]
{key}

[certificate]
subject = {{ country = "NL", organization = "Strongroom Test", common_name = "Strongroom Test Issuing CA" }}
validity = "{validity}"
crl_url = "http://127.0.0.1:8200/crl/root.crl"
ca_issuers_url = "http://127.0.0.1:8200/ca/root.crt"

[outputs]
certificate = "issuing.pem"
"#,
                self.hsm(),
                root.display()
            ),
        )
    }
}

/// A key pair generated on a second token, standing in for the online HSM;
/// returns its public key PEM file.
fn online_key(dir: &Path) -> PathBuf {
    let online = TestToken::create("cer-online").expect("SoftHSM2 token");
    let token = Token::open(
        &online.module,
        &online.label,
        Pin::new(online.user_pin.expose_secret()),
        PoolConfig::default(),
    )
    .expect("open the online token");
    let key = token
        .generate_key_pair("issuing-ca", KeySpec::EcP256)
        .expect("generate the online key");
    write(dir, "online.pub.pem", &key.public_key().to_pem())
}

fn verify_ok(dir: &Path) -> String {
    let out = ceremony(&["verify", p(dir)]);
    assert!(out.status.success(), "verify failed:\n{}", text(&out));
    text(&out)
}

fn verify_fails(dir: &Path, expected: &str) {
    let out = ceremony(&["verify", p(dir)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify passed:\n{}", text(&out));
    assert!(
        stderr.contains(expected),
        "expected '{expected}' in:\n{stderr}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .args(["-r", p(from), p(to)])
        .status()
        .expect("cp");
    assert!(status.success());
}

/// Flips one bit of byte `at` of `path`.
fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

/// Root, intermediate and CRL ceremonies on one offline token, each
/// checked independently, then tampered with.
#[test]
fn root_intermediate_and_crl_ceremonies_verify_and_detect_tampering() {
    let offline = Offline::new("cer-flow");
    let dir = offline.dir();

    // Root ceremony: sets up 2-of-3 shares and the share-derived PIN.
    let root_dir = dir.join("root");
    let config = offline.root_config("root.toml", "3650d");
    let pin = offline.pin_file();
    let said = run_ok(&config, &root_dir, &["--pin-file", p(&pin)]);
    assert!(said.contains("Transcript digest"), "{said}");
    assert!(
        !said.contains(offline.token.user_pin.expose_secret()),
        "{said}"
    );
    let root = root_dir.join("root.pem");
    let out = openssl(&["verify", "-CAfile", p(&root), p(&root)]);
    assert!(out.status.success(), "openssl verify root: {}", text(&out));
    let out = openssl(&["x509", "-in", p(&root), "-noout", "-text"]);
    let shown = text(&out);
    assert!(shown.contains("CA:TRUE, pathlen:1"), "{shown}");
    assert!(shown.contains("Certificate Sign, CRL Sign"), "{shown}");
    pkilint("lint_pkix_cert", &[], &[&root]);
    let shares: Vec<PathBuf> = (1..=3)
        .map(|i| root_dir.join(format!("shares/share-{i}-of-3.txt")))
        .collect();
    for share in &shares {
        let text = std::fs::read_to_string(share).expect("share file");
        assert!(text.starts_with("strongroom-share v1"), "{text}");
    }
    let said = verify_ok(&root_dir);
    assert!(said.contains("OK: root ceremony"), "{said}");

    // The initial PIN no longer opens the token; the shares do (below).
    let again = offline.root_config("root-again.toml", "3650d");
    refused(
        &again,
        &dir.join("root-again"),
        &["--pin-file", p(&pin)],
        "wrong PIN",
    );

    // Intermediate over a key generated on another token (the online HSM).
    let online_pub = online_key(dir);
    let inter_dir = dir.join("intermediate");
    let config = offline.intermediate_config(
        "intermediate.toml",
        &root,
        &format!("public_key = \"{}\"", online_pub.display()),
        "1825d",
    );
    // K-1 shares: refused before anything is written.
    refused(
        &config,
        &inter_dir,
        &["--share", p(&shares[0])],
        "not enough shares",
    );
    // The same share twice is not two shares.
    refused(
        &config,
        &inter_dir,
        &["--share", p(&shares[0]), "--share", p(&shares[0])],
        "more than once",
    );
    run_ok(
        &config,
        &inter_dir,
        &["--share", p(&shares[0]), "--share", p(&shares[2])],
    );
    let inter = inter_dir.join("issuing.pem");
    let out = openssl(&["verify", "-CAfile", p(&root), p(&inter)]);
    assert!(
        out.status.success(),
        "openssl verify intermediate: {}",
        text(&out)
    );
    pkilint("lint_pkix_cert", &[], &[&inter]);
    pkilint("lint_pkix_signer_signee_cert_chain", &[], &[&root, &inter]);
    let out = openssl(&["x509", "-in", p(&inter), "-noout", "-pubkey"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(&online_pub).expect("online key"),
        "the intermediate certifies the online key"
    );
    verify_ok(&inter_dir);

    // Root CRL revoking the intermediate.
    let crl_dir = dir.join("crl");
    let config = write(
        dir,
        "crl.toml",
        &format!(
            r#"ceremony = "crl"
{}
[signing_key]
label = "root-key"
certificate = "{}"

[crl]
number = 1
validity = "365d"

[[crl.revoked]]
certificate = "{}"
reason = "superseded"

[[crl.revoked]]
serial = "01deadbeefcafe0123456789"
reason = "keyCompromise"

[outputs]
crl = "root-1.crl"
"#,
            offline.hsm(),
            root.display(),
            inter.display()
        ),
    );
    run_ok(
        &config,
        &crl_dir,
        &["--share", p(&shares[1]), "--share", p(&shares[2])],
    );
    let crl = crl_dir.join("root-1.crl");
    let out = openssl(&[
        "crl",
        "-in",
        p(&crl),
        "-CAfile",
        p(&root),
        "-verify",
        "-noout",
    ]);
    assert!(
        out.status.success() && text(&out).contains("verify OK"),
        "openssl crl -verify: {}",
        text(&out)
    );
    let out = openssl(&["crl", "-in", p(&crl), "-noout", "-text"]);
    let shown = text(&out);
    assert!(
        shown.contains("Superseded") && shown.contains("Key Compromise"),
        "{shown}"
    );
    assert!(shown.contains("Only CA Certificates"), "{shown}");
    pkilint("lint_crl", &["-t", "ARL", "-p", "PKIX"], &[&crl]);
    verify_ok(&crl_dir);

    // A second root on the same (now share-protected) token, cross-signed
    // by the first.
    let quorum = ["--share", p(&shares[0]), "--share", p(&shares[1])];
    let b_config = write(
        dir,
        "root-b.toml",
        &std::fs::read_to_string(offline.root_config("root-b-base.toml", "3000d"))
            .expect("config")
            .replace("[shares]\nthreshold = 2\ncount = 3\n", "")
            .replace("label = \"root-key\"", "label = \"root-b\"")
            .replace("Strongroom Test Root", "Strongroom Test Root B"),
    );
    let b_dir = dir.join("root-b");
    run_ok(&b_config, &b_dir, &quorum);
    let root_b = b_dir.join("root.pem");
    verify_ok(&b_dir);
    let cross_config = write(
        dir,
        "cross.toml",
        &format!(
            r#"ceremony = "cross-sign"
{}
[signing_key]
label = "root-key"
certificate = "{}"

[cross_sign]
certificate = "{}"

[certificate]
validity = "1000d"
path_length = 1
crl_url = "http://127.0.0.1:8200/crl/root.crl"

[outputs]
certificate = "b-by-a.pem"
"#,
            offline.hsm(),
            root.display(),
            root_b.display()
        ),
    );
    let cross_dir = dir.join("cross");
    run_ok(&cross_config, &cross_dir, &quorum);
    let cross = cross_dir.join("b-by-a.pem");
    let out = openssl(&["verify", "-CAfile", p(&root), p(&cross)]);
    assert!(out.status.success(), "openssl verify cross: {}", text(&out));
    let subject = |cert: &Path| {
        text(&openssl(&[
            "x509",
            "-in",
            p(cert),
            "-noout",
            "-subject",
            "-pubkey",
        ]))
    };
    assert_eq!(
        subject(&cross),
        subject(&root_b),
        "same subject and key as root B"
    );
    pkilint("lint_pkix_signer_signee_cert_chain", &[], &[&root, &cross]);
    verify_ok(&cross_dir);

    // Any changed output byte or transcript line fails verification.
    let tampered = dir.join("tampered");
    copy_dir(&inter_dir, &tampered);
    flip(&tampered.join("issuing.pem"), 100);
    verify_fails(&tampered, "issuing.pem does not match its SHA-256");
    std::fs::remove_dir_all(&tampered).expect("clean");

    copy_dir(&crl_dir, &tampered);
    flip(&tampered.join("ceremony.toml"), 20);
    verify_fails(&tampered, "ceremony.toml");
    std::fs::remove_dir_all(&tampered).expect("clean");

    copy_dir(&root_dir, &tampered);
    let transcript = tampered.join("transcript.jsonl");
    let original = std::fs::read_to_string(&transcript).expect("transcript");
    let lines: Vec<&str> = original.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        // A changed character in any line.
        let changed = line.replacen("\"seq\":", "\"seq\": ", 1);
        let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        edited[n] = changed;
        std::fs::write(&transcript, edited.join("\n") + "\n").expect("write");
        verify_fails(&tampered, &format!("line {}", n + 1));
    }
    // A removed line (the last one, or one in the middle).
    std::fs::write(&transcript, lines[..lines.len() - 1].join("\n") + "\n").expect("write");
    verify_fails(&tampered, "does not end with 'end'");
    let mut without = lines.clone();
    without.remove(2);
    std::fs::write(&transcript, without.join("\n") + "\n").expect("write");
    verify_fails(&tampered, "line 3");
    std::fs::write(&transcript, &original).expect("restore");
    verify_ok(&tampered);
    // A file slipped into the directory.
    write(&tampered, "extra.pem", "not from the ceremony");
    verify_fails(
        &tampered,
        "extra.pem is in the directory but not in the transcript",
    );

    // Without --yes, confirmations need a terminal: refused, nothing written.
    let no_tty = Command::new(BIN)
        .args(["run", p(&cross_config), "--out", p(&dir.join("no-tty"))])
        .args(quorum)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(!no_tty.status.success());
    assert!(
        text(&no_tty).contains("not a terminal"),
        "{}",
        text(&no_tty)
    );
    assert!(!dir.join("no-tty").exists());

    // A key label that exists is refused before anything is written.
    let key_config = write(
        dir,
        "key.toml",
        &format!(
            "ceremony = \"key\"\n{}\n[key]\nlabel = \"root-key\"\ntype = \"ec-p256\"\n\n\
             [outputs]\npublic_key = \"other.pub.pem\"\n",
            offline.hsm()
        ),
    );
    refused(
        &key_config,
        &dir.join("key"),
        &["--share", p(&shares[0]), "--share", p(&shares[1])],
        "already exists",
    );

    // An existing output file is refused, and left as it was.
    let busy = dir.join("busy");
    std::fs::create_dir(&busy).expect("mkdir");
    write(&busy, "issuing.pem", "someone else's");
    let config = offline.intermediate_config(
        "busy.toml",
        &root,
        &format!("public_key = \"{}\"", online_pub.display()),
        "1825d",
    );
    refused(
        &config,
        &busy,
        &["--share", p(&shares[0]), "--share", p(&shares[1])],
        "already exists",
    );

    // An intermediate longer than 8 years is refused.
    let config = offline.intermediate_config(
        "long.toml",
        &root,
        &format!("public_key = \"{}\"", online_pub.display()),
        "2950d",
    );
    refused(
        &config,
        &dir.join("long"),
        &["--share", p(&shares[0]), "--share", p(&shares[1])],
        "longer than 8 years",
    );
}

/// An intermediate over a CSR (the online HSM's usual hand-over), signed
/// with RSA-PSS by an RSA root, and a key-only ceremony.
#[test]
fn csr_intermediate_under_an_rsa_root_and_a_key_ceremony() {
    let offline = Offline::new("cer-rsa");
    let dir = offline.dir();
    let config = write(
        dir,
        "root.toml",
        &format!(
            r#"ceremony = "root"
{}
[shares]
threshold = 1
count = 1

[key]
label = "rsa-root"
type = "rsa-3072"

[certificate]
subject = {{ organization = "Strongroom Test", common_name = "Strongroom RSA Root" }}
not_before = 2026-01-01T00:00:00Z
not_after = 2045-01-01T00:00:00Z
signature_algorithm = "rsa-pss-sha256"

[outputs]
certificate = "root.pem"
public_key = "root.pub.pem"
"#,
            offline.hsm()
        ),
    );
    let root_dir = dir.join("root");
    run_ok(&config, &root_dir, &["--pin-file", p(&offline.pin_file())]);
    let root = root_dir.join("root.pem");
    let share = root_dir.join("shares/share-1-of-1.txt");
    verify_ok(&root_dir);

    let key = dir.join("csr.key");
    let csr = dir.join("inter.csr");
    let out = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&key),
        "-out",
        p(&csr),
        "-subj",
        "/CN=ignored",
    ]);
    assert!(out.status.success(), "openssl req: {}", text(&out));
    let config = write(
        dir,
        "inter.toml",
        &format!(
            r#"ceremony = "intermediate"
{}
[signing_key]
label = "rsa-root"
certificate = "{}"
signature_algorithm = "rsa-pss-sha256"

[subject_key]
csr = "{}"

[certificate]
subject = {{ common_name = "Strongroom CSR Issuing CA" }}
not_before = 2026-02-01T00:00:00Z
validity = "1000d"

[outputs]
certificate = "issuing.pem"
"#,
            offline.hsm(),
            root.display(),
            csr.display()
        ),
    );
    let inter_dir = dir.join("inter");
    run_ok(&config, &inter_dir, &["--share", p(&share)]);
    let inter = inter_dir.join("issuing.pem");
    let out = openssl(&[
        "verify",
        "-attime",
        "1780000000",
        "-CAfile",
        p(&root),
        p(&inter),
    ]);
    assert!(out.status.success(), "openssl verify: {}", text(&out));
    verify_ok(&inter_dir);

    let config = write(
        dir,
        "key.toml",
        &format!(
            "ceremony = \"key\"\n{}\n[key]\nlabel = \"next-root\"\ntype = \"ed25519\"\n\n\
             [outputs]\npublic_key = \"next-root.pub.pem\"\n",
            offline.hsm()
        ),
    );
    let key_dir = dir.join("key");
    run_ok(&config, &key_dir, &["--share", p(&share)]);
    let out = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        p(&key_dir.join("next-root.pub.pem")),
        "-noout",
        "-text",
    ]);
    assert!(text(&out).contains("ED25519"), "{}", text(&out));
    verify_ok(&key_dir);
}

/// An officer's age identity, made by the `age-keygen` tool (installed by
/// the test command): the identity file and its public key.
fn age_officer(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.agekey"));
    let tool = |args: &[&str]| {
        let out = Command::new("age-keygen")
            .args(args)
            .output()
            .expect("age-keygen is installed (package `age`; ./scripts/test installs it)");
        assert!(out.status.success(), "age-keygen: {}", text(&out));
        out
    };
    tool(&["-o", p(&path)]);
    let public = String::from_utf8(tool(&["-y", p(&path)]).stdout).expect("utf-8");
    (path, public.trim().to_owned())
}

/// `age -d -i IDENTITY FILE`, the reference tool.
fn age_decrypt(identity: &Path, file: &Path) -> Output {
    Command::new("age")
        .args(["-d", "-i", p(identity), p(file)])
        .output()
        .expect("age is installed (package `age`; ./scripts/test installs it)")
}

/// Shares written encrypted to each officer's age key: only that officer's
/// identity opens a share (ours and the `age` tool agree), the transcript
/// names each share's recipient, and a later ceremony takes encrypted and
/// plain shares side by side.
#[test]
fn shares_encrypted_to_officers_open_only_with_their_identities() {
    let offline = Offline::new("cer-age");
    let dir = offline.dir();
    let officers: Vec<(PathBuf, String)> = (1..=3)
        .map(|i| age_officer(dir, &format!("officer{i}")))
        .collect();
    let recipients: Vec<String> = officers.iter().map(|(_, k)| format!("\"{k}\"")).collect();
    let key_config = |name: &str, label: &str, shares: &str| {
        write(
            dir,
            name,
            &format!(
                "ceremony = \"key\"\n{}\n{shares}\n[key]\nlabel = \"{label}\"\n\
                 type = \"ec-p256\"\n\n[outputs]\npublic_key = \"{label}.pub.pem\"\n",
                offline.hsm()
            ),
        )
    };
    let first = key_config(
        "first.toml",
        "first",
        &format!(
            "[shares]\nthreshold = 2\ncount = 3\nrecipients = [{}]\n",
            recipients.join(", ")
        ),
    );
    let first_dir = dir.join("first");
    run_ok(&first, &first_dir, &["--pin-file", p(&offline.pin_file())]);
    verify_ok(&first_dir);

    let shares_dir = first_dir.join("shares");
    let mut names: Vec<String> = std::fs::read_dir(&shares_dir)
        .expect("shares dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "share-1-of-3.txt.age",
            "share-2-of-3.txt.age",
            "share-3-of-3.txt.age"
        ]
    );
    let share = |i: usize| shares_dir.join(format!("share-{i}-of-3.txt.age"));
    for i in 1..=3 {
        use std::os::unix::fs::PermissionsExt;
        let bytes = std::fs::read(share(i)).expect("share file");
        let armored = String::from_utf8(bytes).expect("armored text");
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        let mode = std::fs::metadata(share(i))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "share {i}");
        // The age tool opens each share with its officer's identity only.
        for (j, (identity, _)) in officers.iter().enumerate() {
            let out = age_decrypt(identity, &share(i));
            if j + 1 == i {
                let plain = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "age -d share {i}: {}", text(&out));
                assert!(plain.starts_with("strongroom-share v1\n"), "share {i}");
                assert!(
                    plain.contains(&format!(" threshold 2 of 3 share {i}\n")),
                    "share {i}"
                );
            } else {
                assert!(!out.status.success(), "officer {} opened share {i}", j + 1);
            }
        }
    }
    // The transcript says which key each share was encrypted to.
    let transcript = std::fs::read_to_string(first_dir.join("transcript.jsonl")).expect("read");
    let split: serde_json::Value = transcript
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .find(|v| v["step"] == "shares-split")
        .expect("a shares-split entry");
    let to: Vec<&str> = split["details"]["shares"]
        .as_array()
        .expect("shares")
        .iter()
        .map(|s| s["encrypted_to"].as_str().expect("encrypted_to"))
        .collect();
    let keys: Vec<&str> = officers.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(to, keys);

    // The next ceremony needs two shares: officer 1's still encrypted, and
    // officer 3's opened beforehand with the age tool.
    let second = key_config("second.toml", "second", "");
    let second_dir = dir.join("second");
    let (id1, id3) = (&officers[0].0, &officers[2].0);
    let out = age_decrypt(id3, &share(3));
    assert!(out.status.success(), "age -d: {}", text(&out));
    let plain3 = write(
        dir,
        "share-3.txt",
        &String::from_utf8(out.stdout).expect("utf-8"),
    );
    refused(
        &second,
        &second_dir,
        &["--share", p(&share(1)), "--share", p(&plain3)],
        "encrypted to an officer's age key: give that officer's identity file with --identity",
    );
    refused(
        &second,
        &second_dir,
        &[
            "--share",
            p(&share(1)),
            "--share",
            p(&share(3)),
            "--identity",
            p(id1),
        ],
        "none of the given age identities can open it",
    );
    refused(
        &second,
        &second_dir,
        &["--identity", p(id1)],
        "no --share file was given",
    );
    let open_id = dir.join("officer1-open.agekey");
    std::fs::copy(id1, &open_id).expect("copy");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_id, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    refused(
        &second,
        &second_dir,
        &[
            "--share",
            p(&share(1)),
            "--share",
            p(&plain3),
            "--identity",
            p(&open_id),
        ],
        "readable by others",
    );
    let damaged = dir.join("damaged.age");
    std::fs::copy(share(1), &damaged).expect("copy");
    // A bit of the payload's last base64 line (an altered header looks like
    // another officer's share to age: its key cannot be unwrapped).
    let at = std::fs::metadata(&damaged).expect("meta").len() as usize
        - "-----END AGE ENCRYPTED FILE-----\n".len()
        - 10;
    flip(&damaged, at);
    refused(
        &second,
        &second_dir,
        &[
            "--share",
            p(&damaged),
            "--share",
            p(&plain3),
            "--identity",
            p(id1),
        ],
        "not an intact age file",
    );
    run_ok(
        &second,
        &second_dir,
        &[
            "--share",
            p(&share(1)),
            "--identity",
            p(id1),
            "--share",
            p(&plain3),
        ],
    );
    verify_ok(&second_dir);
}

/// Refusals decided from the file alone: nothing is written and the HSM is
/// never opened (these files name a token that does not exist).
#[test]
fn bad_files_are_refused_before_anything_happens() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let module = strongroom_softhsm::module_path().expect("SoftHSM2 installed");
    let base = format!(
        r#"ceremony = "root"
[hsm]
module = "{}"
token = "no-such-token"
[key]
label = "root"
type = "ec-p256"
[certificate]
subject = {{ common_name = "Root" }}
validity = "VALIDITY"
[outputs]
certificate = "root.pem"
public_key = "root.pub.pem"
"#,
        module.display()
    );
    let out = dir.join("out");

    let unknown = write(
        dir,
        "unknown.toml",
        &base
            .replace("VALIDITY", "3650d")
            .replace("[key]\n", "[key]\ncurve = \"P-256\"\n"),
    );
    refused(&unknown, &out, &[], "unknown field `curve`");
    let check = ceremony(&["check", p(&unknown)]);
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("curve"));

    let long = write(dir, "long.toml", &base.replace("VALIDITY", "9200d"));
    refused(&long, &out, &[], "longer than 25 years");

    let policies = write(
        dir,
        "policies.toml",
        &base
            .replace("VALIDITY", "3650d")
            .replace("[outputs]", "policies = [\"2.23.140.1.2.1\"]\n[outputs]"),
    );
    // The key `policies` lands in [certificate], the section before [outputs].
    refused(&policies, &out, &[], "not supported");

    let ok = write(dir, "ok.toml", &base.replace("VALIDITY", "3650d"));
    let check = ceremony(&["check", p(&ok)]);
    assert!(check.status.success(), "{}", text(&check));
}

/// Every example ceremony file in `ceremony/examples/` parses.
#[test]
fn example_files_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            strongroom_ceremony::Ceremony::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(
        seen >= 5,
        "expected an example per ceremony type, found {seen}"
    );
}

/// The ceremony links no networking code and no async runtime: neither in
/// its dependency tree nor in its binary.
#[test]
fn no_networking_crates_in_the_dependency_tree() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "strongroom-ceremony",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(&workspace)
        .output()
        .expect("cargo tree");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && tree.contains("strongroom-ceremony"),
        "cargo tree failed:\n{}",
        text(&out)
    );
    // yubihsm brings an HTTP connector and rusb: the appliance's YubiHSM2
    // backend is a feature of strongroom-hsm the ceremony leaves off.
    let forbidden = [
        "tokio", "tonic", "hyper", "reqwest", "mio", "h2", "yubihsm", "rusb",
    ];
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| forbidden.contains(name))
        .collect();
    assert!(
        found.is_empty(),
        "networking crates linked: {found:?}\n{tree}"
    );

    // `futures` is in the tree (age's header serializer, cookie-factory,
    // depends on it) but none of its code may be linked, nor any other
    // runtime's: the binary's own symbols say what it contains.
    let out = Command::new("nm")
        .args(["--demangle", BIN])
        .output()
        .expect("nm (binutils) is installed");
    assert!(out.status.success(), "nm failed:\n{}", text(&out));
    let symbols = String::from_utf8_lossy(&out.stdout);
    assert!(
        symbols.contains("strongroom_ceremony::"),
        "no symbols in {BIN}"
    );
    let runtimes = [
        "tokio::",
        "mio::",
        "hyper::",
        "tonic::",
        "h2::",
        "reqwest::",
        "futures_executor::",
        "futures_util::",
        "async_std::",
    ];
    let linked: Vec<&str> = symbols
        .lines()
        .filter(|line| runtimes.iter().any(|r| line.contains(r)))
        .take(5)
        .collect();
    assert!(linked.is_empty(), "runtime code linked: {linked:?}");
}
