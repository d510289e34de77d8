//! Shared by the `ca` crate's integration tests: a SoftHSM2 token, CA
//! hierarchies in it, an in-memory inventory, and the independent checkers
//! (`openssl`, pkilint).
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use strongroom_ca::{
    Authority, CaCertificateRequest, CertFilter, CertPage, CertRecord, CertStatus, CertStore,
    CrlSeries, DistributionUrls, Issuer, Profile, ProfileConfig, Revocation, RevocationChange,
    RevocationReason, RevokeOutcome, RevokedEntry, Serial, StoreError, StoredCrl, SystemClock,
    revocation_change, self_signed_root,
};
use strongroom_hsm::{KeySpec, Pin, PoolConfig, SignatureAlgorithm, Token};
use strongroom_softhsm::TestToken;

/// A minimal in-memory inventory for these tests; the SQLite store has its own tests.
#[derive(Default)]
pub struct MemoryStore(pub Mutex<Vec<CertRecord>>, Mutex<MemoryRevocations>);

/// The revocation side of [`MemoryStore`].
#[derive(Default)]
pub struct MemoryRevocations {
    /// The revocation change counter.
    seq: u64,
    /// Per serial: the counter value of its last revocation change.
    changed: HashMap<Serial, u64>,
    /// Per serial whose hold was lifted: when the hold began (a delta CRL's
    /// removeFromCRL entry carries it, as the SQLite store's does).
    released: HashMap<Serial, i64>,
    /// Per (issuer, series): the last CRL number taken.
    numbers: HashMap<(String, CrlSeries), u64>,
    /// Per (issuer, series, delta): the newest CRL.
    crls: HashMap<(String, CrlSeries, bool), StoredCrl>,
}

impl CertStore for MemoryStore {
    fn insert_pending(&self, record: &CertRecord) -> Result<(), StoreError> {
        let mut all = self.0.lock().expect("lock");
        if all
            .iter()
            .any(|r| r.issuer_id == record.issuer_id && r.serial == record.serial)
        {
            return Err(StoreError::DuplicateSerial {
                serial: record.serial.clone(),
            });
        }
        all.push(record.clone());
        Ok(())
    }

    fn complete(
        &self,
        issuer: &str,
        serial: &Serial,
        der: &[u8],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut all = self.0.lock().expect("lock");
        let r = all
            .iter_mut()
            .find(|r| r.issuer_id == issuer && &r.serial == serial)
            .ok_or(StoreError::NotFound {
                serial: serial.clone(),
            })?;
        r.status = CertStatus::Issued;
        r.cert_der = Some(der.to_vec());
        r.issued_at = Some(at);
        Ok(())
    }

    fn get(&self, issuer: &str, serial: &Serial) -> Result<Option<CertRecord>, StoreError> {
        let all = self.0.lock().expect("lock");
        Ok(all
            .iter()
            .find(|r| r.issuer_id == issuer && &r.serial == serial)
            .cloned())
    }

    fn list(&self, _filter: &CertFilter) -> Result<CertPage, StoreError> {
        Ok(CertPage {
            records: self.0.lock().expect("lock").clone(),
            next_page_token: None,
        })
    }

    fn count(&self, status: CertStatus) -> Result<u64, StoreError> {
        let all = self.0.lock().expect("lock");
        Ok(all.iter().filter(|r| r.status == status).count() as u64)
    }

    fn revoke(
        &self,
        issuer: &str,
        serial: &Serial,
        reason: RevocationReason,
        at: i64,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut all = self.0.lock().expect("lock");
        let mut revocations = self.1.lock().expect("lock");
        let r = all
            .iter_mut()
            .find(|r| r.issuer_id == issuer && &r.serial == serial)
            .ok_or(StoreError::NotFound {
                serial: serial.clone(),
            })?;
        let entry = |revocation: Revocation| RevokedEntry {
            serial: serial.clone(),
            revoked_at: revocation.revoked_at,
            reason: revocation.reason,
        };
        let outcome = match revocation_change(serial, r.status, r.revocation, reason, at)? {
            RevocationChange::Unchanged(current) => {
                return Ok(RevokeOutcome::Unchanged(entry(current)));
            }
            RevocationChange::Revoke(revocation) => {
                r.status = CertStatus::Revoked;
                r.revocation = Some(revocation);
                RevokeOutcome::Revoked(entry(revocation))
            }
            RevocationChange::Release => {
                if let Some(hold) = r.revocation.take() {
                    revocations.released.insert(serial.clone(), hold.revoked_at);
                }
                r.status = CertStatus::Issued;
                RevokeOutcome::Released
            }
        };
        revocations.seq += 1;
        let seq = revocations.seq;
        revocations.changed.insert(serial.clone(), seq);
        Ok(outcome)
    }

    fn for_each_revoked(
        &self,
        issuer: &str,
        series: CrlSeries,
        since: Option<u64>,
        now: i64,
        each: &mut dyn FnMut(RevokedEntry) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let all = self.0.lock().expect("lock");
        let revocations = self.1.lock().expect("lock");
        for r in all
            .iter()
            .filter(|r| r.issuer_id == issuer && r.not_after > now)
        {
            let in_series = match series {
                CrlSeries::All => true,
                CrlSeries::Partition(n) => r.crl_partition == Some(n),
            };
            let changed = revocations.changed.get(&r.serial).copied();
            let fresh = match since {
                None => true,
                Some(base) => changed.is_some_and(|c| c > base),
            };
            if !in_series || !fresh {
                continue;
            }
            match (r.revocation, since) {
                (Some(revocation), _) => each(RevokedEntry {
                    serial: r.serial.clone(),
                    revoked_at: revocation.revoked_at,
                    reason: revocation.reason,
                })?,
                // Issued again after a hold, since the base: removeFromCRL,
                // at the hold's time.
                (None, Some(_)) => {
                    if let Some(&held_at) = revocations.released.get(&r.serial) {
                        each(RevokedEntry {
                            serial: r.serial.clone(),
                            revoked_at: held_at,
                            reason: RevocationReason::RemoveFromCrl,
                        })?;
                    }
                }
                (None, None) => {}
            }
        }
        Ok(revocations.seq)
    }

    fn crl_partitions(&self, issuer: &str) -> Result<Vec<u32>, StoreError> {
        let all = self.0.lock().expect("lock");
        let mut partitions: Vec<u32> = all
            .iter()
            .filter(|r| r.issuer_id == issuer)
            .filter_map(|r| r.crl_partition)
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        Ok(partitions)
    }

    fn next_crl_number(&self, issuer: &str, series: CrlSeries) -> Result<u64, StoreError> {
        let mut revocations = self.1.lock().expect("lock");
        let number = revocations
            .numbers
            .entry((issuer.to_string(), series))
            .or_insert(0);
        *number += 1;
        Ok(*number)
    }

    fn save_crl(&self, crl: &StoredCrl) -> Result<(), StoreError> {
        let mut revocations = self.1.lock().expect("lock");
        let key = (crl.issuer_id.clone(), crl.series, crl.delta_of.is_some());
        // Like the SQLite store: an older CRL never replaces a newer one.
        if revocations
            .crls
            .get(&key)
            .is_none_or(|newest| newest.number < crl.number)
        {
            revocations.crls.insert(key, crl.clone());
        }
        Ok(())
    }

    fn latest_crl(
        &self,
        issuer: &str,
        series: CrlSeries,
        delta: bool,
    ) -> Result<Option<StoredCrl>, StoreError> {
        let revocations = self.1.lock().expect("lock");
        Ok(revocations
            .crls
            .get(&(issuer.to_string(), series, delta))
            .cloned())
    }
}

/// Every issuer algorithm the CA supports, each with a label for key names:
/// the certificate, CRL and OCSP tests run once per entry.
pub const ISSUER_ALGORITHMS: [(&str, KeySpec, SignatureAlgorithm); 7] = [
    ("p256", KeySpec::EcP256, SignatureAlgorithm::EcdsaP256Sha256),
    ("p384", KeySpec::EcP384, SignatureAlgorithm::EcdsaP384Sha384),
    (
        "rsa3072",
        KeySpec::Rsa { bits: 3072 },
        SignatureAlgorithm::RsaPkcs1Sha256,
    ),
    (
        "rsa3072pss",
        KeySpec::Rsa { bits: 3072 },
        SignatureAlgorithm::RsaPssSha256,
    ),
    (
        "rsa4096",
        KeySpec::Rsa { bits: 4096 },
        SignatureAlgorithm::RsaPkcs1Sha384,
    ),
    (
        "rsa4096pss",
        KeySpec::Rsa { bits: 4096 },
        SignatureAlgorithm::RsaPssSha384,
    ),
    ("ed25519", KeySpec::Ed25519, SignatureAlgorithm::Ed25519),
];

pub fn token() -> &'static Token {
    static TOKEN: OnceLock<(TestToken, Token)> = OnceLock::new();
    &TOKEN
        .get_or_init(|| {
            let created = TestToken::create("ca-issue").unwrap_or_else(|e| panic!("{e}"));
            let token = Token::open(
                &created.module,
                &created.label,
                Pin::new(created.user_pin.expose_secret()),
                PoolConfig::default(),
            )
            .expect("open token");
            (created, token)
        })
        .1
}

/// A tool from the test venv (`STRONGROOM_TEST_VENV`, set by the test command).
pub fn pkilint_bin(tool: &str) -> PathBuf {
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

/// Runs a pkilint tool on PEM files; panics with its report on any ERROR or
/// FATAL finding whose code is not in `tolerated`.
pub fn pkilint(tool: &str, files: &[&Path], tolerated: &[&str]) {
    let out = Command::new(pkilint_bin(tool))
        .args(["lint", "-s", "ERROR"])
        .args(files)
        .output()
        .expect("run pkilint");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Findings are indented lines "code (SEVERITY)[: message]".
    let findings: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let unexpected: Vec<&&str> = findings.iter().filter(|f| !tolerated.contains(f)).collect();
    assert!(
        unexpected.is_empty() && (out.status.success() || !findings.is_empty()),
        "{tool} found problems in {files:?}:\n{report}"
    );
}

/// pkilint (0.13.3, the version the test command installs) checks chain signatures without passing the
/// signature algorithm to `verify_signature` (`pkilint/pkix/key.py`), so RSA
/// falls back to PKCS#1 v1.5 padding and every RSASSA-PSS signature is
/// reported as failing. OpenSSL and python-cryptography verify the same chain;
/// this one finding is tolerated for PSS issuers only.
pub const PKILINT_PSS_FALSE_POSITIVE: &str = "pkix.signature_verification_failed";

pub fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed")
}

pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

pub fn urls() -> DistributionUrls {
    DistributionUrls {
        crl: Some("http://127.0.0.1:8200/crl/dev.crl".into()),
        ocsp: Some("http://127.0.0.1:8200/ocsp".into()),
        ca_issuers: Some("http://127.0.0.1:8200/ca/issuing.crt".into()),
    }
}

pub fn server_profile() -> Profile {
    let config: ProfileConfig = toml::from_str(
        r#"
        domains = ["localhost", "**.test"]
        ip_ranges = ["127.0.0.0/8", "10.0.0.0/8"]
        ext_key_usage = ["serverAuth"]
        max_ttl = "90d"
        subject = { O = "Strongroom Tests", C = "DE" }
        "#,
    )
    .expect("profile toml");
    Profile::new("server", &config).expect("profile")
}

/// A root and an intermediate for `algorithm`, both keys in the token.
pub fn hierarchy(label: &str, spec: KeySpec, algorithm: SignatureAlgorithm) -> (Vec<u8>, Issuer) {
    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 86_400);
    let root_key = token()
        .generate_key_pair(&format!("{label}-root"), spec)
        .expect("root key");
    let root_signer = root_key.signer(algorithm).expect("root signer");
    let serial = |n: u8| {
        let mut s = token().random(16).expect("random");
        s[0] = 0x40 | n;
        s
    };
    let root_der = self_signed_root(
        &root_signer,
        &CaCertificateRequest {
            subject: &[
                ("C".into(), "DE".into()),
                ("O".into(), "Strongroom Tests".into()),
                ("CN".into(), format!("{label} Root")),
            ],
            public_key: root_key.public_key(),
            not_before: now - Duration::from_secs(60),
            not_after: now + 10 * year,
            path_len: Some(1),
            serial: &serial(1),
            urls: &DistributionUrls::default(),
        },
    )
    .expect("root certificate");
    let root = Issuer::new(&root_der, Arc::new(root_signer)).expect("root issuer");
    let inter_key = token()
        .generate_key_pair(&format!("{label}-inter"), spec)
        .expect("intermediate key");
    let inter_der = root
        .sign_ca(&CaCertificateRequest {
            subject: &[
                ("C".into(), "DE".into()),
                ("O".into(), "Strongroom Tests".into()),
                ("CN".into(), format!("{label} Issuing CA")),
            ],
            public_key: inter_key.public_key(),
            not_before: now - Duration::from_secs(60),
            not_after: now + 5 * year,
            path_len: Some(0),
            serial: &serial(2),
            urls: &DistributionUrls::default(),
        })
        .expect("intermediate certificate");
    let issuer = Issuer::new(
        &inter_der,
        Arc::new(inter_key.signer(algorithm).expect("signer")),
    )
    .expect("intermediate issuer");
    (root_der, issuer)
}

pub fn authority(root_der: Vec<u8>, issuer: Issuer, store: Arc<MemoryStore>) -> Authority {
    Authority::new(
        issuer,
        vec![root_der],
        vec![server_profile()],
        urls(),
        store,
        Arc::new(SystemClock),
        Arc::new(token().clone()),
    )
}

pub fn openssl_csr(dir: &Path, key_alg: &[&str], subj: &str, san: &str) -> Vec<u8> {
    let key = dir.join("leaf.key");
    let csr = dir.join("leaf.csr");
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-keyout",
        p(&key),
        "-out",
        p(&csr),
        "-subj",
        subj,
    ];
    let ext = format!("subjectAltName={san}");
    if !san.is_empty() {
        args.extend(["-addext", &ext]);
    }
    args.extend_from_slice(key_alg);
    let out = openssl(&args);
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&csr).expect("csr")
}
