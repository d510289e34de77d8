//! The sealed appliance end to end, through `strongroom operator`: a dev
//! appliance (1-of-1) is rekeyed to 3 of 5 shares, then run as `strongroom
//! server`. K-1 shares leave it sealed; duplicate, corrupted, foreign and
//! old shares are refused; K shares unseal; one share seals; a restart is
//! sealed again; a cancelled or interrupted rekey leaves the old shares
//! valid, and a completed one makes them fail and the new ones work.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Dev, Server, output_text, p};

/// `strongroom server` on a dev appliance's data directory (its
/// configuration, token and root).
fn start(data: &Path) -> Server {
    Server::start(
        &data.join("strongroom.toml"),
        &data.join("ca/root.pem"),
        Some(&data.join("softhsm/softhsm2.conf")),
    )
    .with_client(&data.join("tls/admin.pem"), &data.join("tls/admin.key"))
}

/// Seal-specific calls (the test crate's own, beside `common`'s).
impl Server {
    fn status(&self) -> serde_json::Value {
        self.json(&["operator", "status"])
    }

    fn unseal(&self, share: &Path) -> serde_json::Value {
        self.json(&["operator", "unseal", "--share-file", p(share)])
    }

    /// Rekeys to `count` shares, `threshold` to unseal, with the current
    /// `shares`; the new shares are written to `out` (`update` gets the
    /// `extra` options too). Returns the nonce.
    fn rekey_to(
        &self,
        threshold: u8,
        count: u8,
        shares: &[&Path],
        out: &Path,
        extra: &[&str],
    ) -> String {
        let (k, n) = (threshold.to_string(), count.to_string());
        let started = self.json(&[
            "operator",
            "rekey",
            "start",
            "--shares",
            &n,
            "--threshold",
            &k,
            "--share-file",
            p(shares[0]),
        ]);
        let nonce = started["nonce"].as_str().expect("nonce").to_string();
        for share in shares {
            let mut args = vec![
                "operator",
                "rekey",
                "update",
                "--nonce",
                &nonce,
                "--share-file",
                p(share),
                "--out-dir",
                p(out),
            ];
            args.extend_from_slice(extra);
            self.ok(&args);
        }
        nonce
    }

    fn verify(&self, nonce: &str, share: &Path) -> serde_json::Value {
        self.json(&[
            "operator",
            "rekey",
            "verify",
            "--nonce",
            nonce,
            "--share-file",
            p(share),
        ])
    }

    fn sealed(&self) -> bool {
        self.status()["sealed"].as_bool().expect("sealed")
    }

    fn issue(&self, dir: &Path, name: &str) -> Output {
        let host = format!("{name}.test");
        self.cli(&[
            "cert",
            "issue",
            "--profile",
            "server",
            "--cn",
            &host,
            "--out-cert",
            p(&dir.join(format!("{name}.pem"))),
            "--out-key",
            p(&dir.join(format!("{name}.key"))),
        ])
    }
}

/// The share files `operator rekey update --out-dir` wrote, share 1 first.
fn share_files(dir: &Path, count: u8) -> Vec<PathBuf> {
    (1..=count)
        .map(|i| dir.join(format!("share-{i}-of-{count}.txt")))
        .inspect(|f| assert!(f.is_file(), "{} was written", f.display()))
        .collect()
}

/// A copy of the share in `from` with one payload digit changed.
fn corrupted(from: &Path, to: &Path) -> PathBuf {
    let text = std::fs::read_to_string(from).expect("share");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let payload = lines
        .iter_mut()
        .find(|l| {
            !l.starts_with("check")
                && l.split_whitespace().count() == 8
                && l.chars().all(|c| c.is_ascii_hexdigit() || c == ' ')
        })
        .expect("a payload line");
    let first = payload.remove(0);
    payload.insert(0, if first == '0' { '1' } else { '0' });
    std::fs::write(to, lines.join("\n")).expect("write");
    to.to_path_buf()
}

#[test]
fn seal_unseal_and_rekey_with_officers_shares() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let dev = Dev::start(&data);
    let dev_share = data.join("dev-unseal.share");
    assert!(dev_share.is_file());
    assert!(
        !data.join("hsm.pin").exists(),
        "the initial PIN file is gone"
    );
    let record = std::fs::read_to_string(data.join("seal.json")).expect("seal.json");
    let share_text = std::fs::read_to_string(&dev_share).expect("share");
    for line in share_text.lines().skip(2).take(3) {
        assert!(!record.contains(&line.replace(' ', "")));
    }
    dev.stop();

    // A restarted appliance is sealed: the CA refuses, HTTP answers 503.
    let server = start(&data);
    let status = server.status();
    assert_eq!(status["initialized"], true);
    assert_eq!(status["sealed"], true);
    assert_eq!(
        (status["threshold"].as_u64(), status["shares"].as_u64()),
        (Some(1), Some(1))
    );
    let refused = server.refused(&["ca", "chain"]);
    assert!(
        refused.contains("FailedPrecondition") && refused.contains("sealed"),
        "{refused}"
    );
    assert_eq!(server.unseal(&dev_share)["sealed"], false);
    assert!(server.issue(dir.path(), "before").status.success());

    // A cancelled rekey leaves the old share valid; its new shares are worthless.
    let abandoned = dir.path().join("abandoned");
    let nonce = server.rekey_to(3, 5, &[&dev_share], &abandoned, &[]);
    let abandoned = share_files(&abandoned, 5);
    for share in &abandoned[..4] {
        server.verify(&nonce, share);
    }
    let progress = server.json(&["operator", "rekey", "status"]);
    assert_eq!(progress["verified"], 4);
    let refused = server.refused(&[
        "operator",
        "rekey",
        "cancel",
        "--share-file",
        p(&abandoned[0]),
    ]);
    assert!(refused.contains("InvalidArgument"), "{refused}");
    server.ok(&["operator", "rekey", "cancel", "--share-file", p(&dev_share)]);

    // So does a rekey interrupted by a stop: the next start knows only the
    // old set.
    let interrupted = dir.path().join("interrupted");
    let nonce = server.rekey_to(2, 3, &[&dev_share], &interrupted, &[]);
    let interrupted = share_files(&interrupted, 3);
    server.verify(&nonce, &interrupted[0]);
    server.stop();
    let server = start(&data);
    assert_eq!(
        server.json(&["operator", "rekey", "status"])["started"],
        false
    );
    let refused = server.refused(&["operator", "unseal", "--share-file", p(&interrupted[1])]);
    assert!(refused.contains("belongs to set"), "{refused}");
    assert_eq!(server.unseal(&dev_share)["sealed"], false);

    // The real rekey: 3 of 5; the old share works until the last new share
    // is verified.
    let officers = dir.path().join("officers");
    let nonce = server.rekey_to(3, 5, &[&dev_share], &officers, &[]);
    let shares = share_files(&officers, 5);
    let refused = server.refused(&[
        "operator",
        "rekey",
        "verify",
        "--nonce",
        &nonce,
        "--share-file",
        p(&abandoned[4]),
    ]);
    assert!(
        refused.contains("not one of this rekey's new shares"),
        "{refused}"
    );
    for share in &shares[..4] {
        assert_eq!(server.verify(&nonce, share)["complete"], false);
    }
    let done = server.verify(&nonce, &shares[4]);
    assert_eq!(done["complete"], true);
    let status = server.status();
    assert_eq!(
        (status["threshold"].as_u64(), status["shares"].as_u64()),
        (Some(3), Some(5))
    );

    // Old and abandoned shares no longer count for anything; one new share seals.
    for old in [&dev_share, &abandoned[0]] {
        let refused = server.refused(&["operator", "seal", "--share-file", p(old)]);
        assert!(refused.contains("InvalidArgument"), "{refused}");
    }
    assert!(!server.sealed());
    server.ok(&["operator", "seal", "--share-file", p(&shares[0])]);
    assert!(server.sealed());
    assert!(!server.issue(dir.path(), "while-sealed").status.success());

    // K-1 shares stay sealed; duplicate, corrupted, foreign shares are refused.
    server.unseal(&shares[0]);
    let two = server.unseal(&shares[1]);
    assert_eq!(
        (two["sealed"].as_bool(), two["progress"].as_u64()),
        (Some(true), Some(2))
    );
    let duplicate = server.refused(&["operator", "unseal", "--share-file", p(&shares[1])]);
    assert!(duplicate.contains("more than once"), "{duplicate}");
    let bad = corrupted(&shares[2], &dir.path().join("corrupted.txt"));
    let corrupted_refusal = server.refused(&["operator", "unseal", "--share-file", p(&bad)]);
    assert!(
        corrupted_refusal.contains("checksum"),
        "{corrupted_refusal}"
    );
    let foreign = server.refused(&["operator", "unseal", "--share-file", p(&dev_share)]);
    assert!(foreign.contains("belongs to set"), "{foreign}");
    assert!(server.sealed());
    assert_eq!(server.status()["progress"], 2);
    // Reset discards the attempt; a new one needs all three again.
    server.refused(&[
        "operator",
        "unseal",
        "--reset",
        "--share-file",
        p(&dev_share),
    ]);
    assert_eq!(server.status()["progress"], 2);
    server.ok(&[
        "operator",
        "unseal",
        "--reset",
        "--share-file",
        p(&shares[4]),
    ]);
    assert_eq!(server.status()["progress"], 0);
    for share in &shares[2..4] {
        assert_eq!(server.unseal(share)["sealed"], true);
    }
    assert_eq!(server.unseal(&shares[4])["sealed"], false);
    assert!(server.issue(dir.path(), "after-rekey").status.success());

    // A restart is sealed again, and only the new shares open it.
    server.stop();
    let server = start(&data);
    assert!(server.sealed());
    server.refused(&["operator", "unseal", "--share-file", p(&dev_share)]);
    for share in [&shares[4], &shares[0]] {
        assert_eq!(server.unseal(share)["sealed"], true);
    }
    assert_eq!(server.unseal(&shares[2])["sealed"], false);
    let issued = server.issue(dir.path(), "after-restart");
    assert!(issued.status.success(), "{}", output_text(&issued));
    let verified = common::openssl(&[
        "verify",
        "-CAfile",
        p(&data.join("ca/root.pem")),
        "-untrusted",
        p(&data.join("ca/issuing.pem")),
        p(&dir.path().join("after-restart.pem")),
    ]);
    assert!(verified.status.success(), "{}", output_text(&verified));
    server.stop();

    // A stop in the middle of a rekey's switch leaves both sets listed; the
    // set whose PIN the token takes wins at the next unseal.
    let record_path = data.join("seal.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).expect("seal.json"))
            .expect("json");
    let mut other = record["sets"][0].clone();
    other["set_id"] = serde_json::Value::from("00112233445566778899aabbccddeeff");
    record["sets"].as_array_mut().expect("sets").push(other);
    std::fs::write(&record_path, record.to_string()).expect("write");
    let server = start(&data);
    for share in &shares[..2] {
        assert_eq!(server.unseal(share)["sealed"], true);
    }
    assert_eq!(server.unseal(&shares[3])["sealed"], false);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).expect("seal.json"))
            .expect("json");
    assert_eq!(record["sets"].as_array().expect("sets").len(), 1);

    // New shares encrypted to each officer's age key: each holder verifies
    // and unseals with the file as written and their own identity.
    let (id1, key1) = age_officer(dir.path(), "officer1.agekey");
    let (id2, key2) = age_officer(dir.path(), "officer2.agekey");
    let keys = dir.path().join("recipients.txt");
    std::fs::write(&keys, format!("# officer 1, officer 2\n{key1}\n{key2}\n")).expect("write");
    let sealed_dir = dir.path().join("sealed-shares");
    let nonce = server.rekey_to(
        2,
        2,
        &[&shares[0], &shares[1], &shares[2]],
        &sealed_dir,
        &["--recipients", p(&keys)],
    );
    let sealed: Vec<PathBuf> = (1..=2)
        .map(|i| sealed_dir.join(format!("share-{i}-of-2.txt.age")))
        .collect();
    let verify = |share: &Path, identity: &Path| {
        server.cli(&[
            "operator",
            "rekey",
            "verify",
            "--nonce",
            &nonce,
            "--share-file",
            p(share),
            "--identity",
            p(identity),
        ])
    };
    let wrong = verify(&sealed[0], &id2);
    assert!(!wrong.status.success());
    assert!(
        output_text(&wrong).contains("none of the given age identities"),
        "{}",
        output_text(&wrong)
    );
    assert!(verify(&sealed[0], &id1).status.success());
    assert!(verify(&sealed[1], &id2).status.success());
    assert_eq!(server.status()["shares"], 2);
    server.ok(&[
        "operator",
        "seal",
        "--share-file",
        p(&sealed[1]),
        "--identity",
        p(&id2),
    ]);
    let unseal = |share: &Path, identity: &Path| {
        server.json(&[
            "operator",
            "unseal",
            "--share-file",
            p(share),
            "--identity",
            p(identity),
        ])
    };
    assert_eq!(unseal(&sealed[0], &id1)["sealed"], true);
    assert_eq!(unseal(&sealed[1], &id2)["sealed"], false);
    server.stop();

    // Every share went through the appliance; none is in its audit trail.
    let trail: String = common::trail_files(&data)
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("audit file"))
        .collect();
    assert!(
        trail.contains("strongroom.v1.Seal/Unseal"),
        "unseals audited"
    );
    assert!(!trail.contains("strongroom-share"));
    for line in share_text.lines().skip(2).take(3) {
        assert!(!trail.contains(line), "a share's digits are in the trail");
        assert!(!trail.contains(&line.replace(' ', "")));
    }
}

/// An officer's age identity, made by `age-keygen` (mode 0600): the file
/// and its public key.
fn age_officer(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let keygen = |args: &[&str]| {
        let out = std::process::Command::new("age-keygen")
            .args(args)
            .output()
            .expect("age-keygen is installed (package `age`; ./scripts/test installs it)");
        assert!(out.status.success(), "age-keygen: {}", output_text(&out));
        out
    };
    keygen(&["-o", p(&path)]);
    let public = String::from_utf8(keygen(&["-y", p(&path)]).stdout).expect("utf-8");
    (path, public.trim().to_owned())
}
