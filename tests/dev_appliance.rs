//! End to end: `strongroom dev` creates an isolated token whose keys OpenSC's
//! pkcs11-tool sees as sensitive and never extractable, writes public keys
//! OpenSSL reads, keeps the PIN off disk, and never overwrites its data.

use std::path::Path;
use std::process::{Command, Output};

fn strongroom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(args)
        .output()
        .expect("run strongroom")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            all.push(path);
        }
    }
    all
}

#[test]
fn dev_appliance_creates_a_token_with_custodied_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let data_arg = data.to_str().expect("utf-8");

    let out = strongroom(&["dev", "--data-dir", data_arg]);
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    for label in ["dev-root-ca", "dev-issuing-ca", "dev-transit-wrap"] {
        assert!(text.contains(label), "{label} missing from:\n{text}");
    }
    assert!(text.contains("Self-test passed"), "{text}");
    let pin = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("user PIN"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("PIN printed once")
        .to_string();
    assert_eq!(pin.len(), 32);

    // The PIN is on the terminal only, in no file of the data directory.
    for file in files(&data) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !bytes.windows(pin.len()).any(|w| w == pin.as_bytes()),
            "PIN found in {}",
            file.display()
        );
    }

    // OpenSC sees the keys in the token, sensitive and never extractable.
    let conf = data.join("softhsm/softhsm2.conf");
    let module = strongroom_module();
    let listing = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--module",
            &module,
            "--token-label",
            "strongroom-dev",
            "--login",
            "--pin",
            &pin,
        ])
        .arg("--list-objects")
        .output()
        .expect("pkcs11-tool (install opensc)");
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing = stdout(&listing);
    let private_blocks = listing.matches("Private Key Object").count();
    assert_eq!(private_blocks, 2, "{listing}");
    assert_eq!(listing.matches("Secret Key Object").count(), 1, "{listing}");
    assert_eq!(listing.matches("never extractable").count(), 3, "{listing}");

    // OpenSSL reads the public keys, and their fingerprints match the output.
    for label in ["dev-root-ca", "dev-issuing-ca"] {
        let pem = data.join(format!("public/{label}.pem"));
        let der = Command::new("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(&pem)
            .output()
            .expect("openssl");
        assert!(
            der.status.success(),
            "openssl cannot read {}",
            pem.display()
        );
        let fingerprint: String = ring::digest::digest(&ring::digest::SHA256, &der.stdout)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            text.contains(&fingerprint),
            "fingerprint of {label} not printed:\n{text}"
        );
    }

    // A second start without --fresh refuses, with one line, and deletes nothing.
    let again = strongroom(&["dev", "--data-dir", data_arg]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--fresh"), "{stderr}");
    assert!(data.join("public/dev-root-ca.pem").exists());

    // With --fresh it starts over with new keys.
    let fresh = strongroom(&["dev", "--fresh", "--data-dir", data_arg]);
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    assert_ne!(stdout(&fresh), text);
}

fn strongroom_module() -> String {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .find(|m| Path::new(m).exists())
    .expect("SoftHSM2 is not installed: run ./scripts/test, which installs it")
    .to_string()
}
