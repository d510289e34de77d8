//! Signing throughput of `strongroom-hsm` on SoftHSM2, measured against its peers.
//!
//! For each algorithm this measures signatures per second of a 64-byte message:
//!
//! - **pool 1t / 2t**: `KeyPair::sign` (our session pool) in a loop on one
//!   thread, then on two threads at once (their sum);
//! - **bare 1t / 2t**: a bare `cryptoki` loop doing the same PKCS#11 work on one
//!   session per thread, with no pool, no lookup and no conversion: the ceiling
//!   the pool can reach on this token;
//! - **openssl speed**: `openssl speed -seconds N <alg>` run as a subprocess in
//!   the same run (one process), the software peer. It has no PSS test: PSS rows
//!   show the PKCS#1 figure of the same key size and say so.
//!
//! The last signature of every thread of every path is checked with
//! `PublicKey::verify`, so a broken path cannot look fast. The machine and a
//! markdown table are printed on standard output, progress on standard error.
//!
//! ```text
//! cargo bench -p strongroom-hsm --bench signing [-- --seconds N] [--only NAME]...
//! ```
//!
//! `--seconds N` is the length of each measurement (default 3). `--only NAME`
//! keeps the rows whose id contains `NAME` (ids: `ecdsa-p256`, `ecdsa-p384`,
//! `rsa2048-pkcs1`, `rsa2048-pss`, `rsa3072-pkcs1`, `rsa3072-pss`,
//! `rsa4096-pkcs1`, `ed25519`); it may be given several times. SoftHSM2 and
//! `openssl` must be installed: nothing is skipped.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use der::Encode;
use der::asn1::UintRef;
use secrecy::ExposeSecret;
use strongroom_hsm::{KeyPair, KeySpec, Pin, PoolConfig, PublicKey, SignatureAlgorithm, Token};
use strongroom_softhsm::TestToken;

/// The message every path signs.
const MESSAGE: [u8; 64] = [0x5a; 64];

/// Seconds per measurement unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 3;

/// One row of the table: a key type and the algorithm it signs with.
struct Case {
    /// What `--only` matches.
    id: &'static str,
    /// The row's name in the table.
    name: &'static str,
    spec: KeySpec,
    algorithm: SignatureAlgorithm,
    /// The `openssl speed` test for the same key type.
    openssl_test: &'static str,
    /// Whether `openssl_test` signs with another padding than `algorithm`.
    openssl_other_padding: bool,
}

const RSA_2048: KeySpec = KeySpec::Rsa { bits: 2048 };
const RSA_3072: KeySpec = KeySpec::Rsa { bits: 3072 };
const RSA_4096: KeySpec = KeySpec::Rsa { bits: 4096 };

const CASES: [Case; 8] = [
    case(
        "ecdsa-p256",
        "ECDSA P-256 SHA-256",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
        "ecdsap256",
        false,
    ),
    case(
        "ecdsa-p384",
        "ECDSA P-384 SHA-384",
        KeySpec::EcP384,
        SignatureAlgorithm::EcdsaP384Sha384,
        "ecdsap384",
        false,
    ),
    case(
        "rsa2048-pkcs1",
        "RSA-2048 PKCS#1 v1.5 SHA-256",
        RSA_2048,
        SignatureAlgorithm::RsaPkcs1Sha256,
        "rsa2048",
        false,
    ),
    case(
        "rsa2048-pss",
        "RSA-2048 PSS SHA-256",
        RSA_2048,
        SignatureAlgorithm::RsaPssSha256,
        "rsa2048",
        true,
    ),
    case(
        "rsa3072-pkcs1",
        "RSA-3072 PKCS#1 v1.5 SHA-256",
        RSA_3072,
        SignatureAlgorithm::RsaPkcs1Sha256,
        "rsa3072",
        false,
    ),
    case(
        "rsa3072-pss",
        "RSA-3072 PSS SHA-256",
        RSA_3072,
        SignatureAlgorithm::RsaPssSha256,
        "rsa3072",
        true,
    ),
    case(
        "rsa4096-pkcs1",
        "RSA-4096 PKCS#1 v1.5 SHA-256",
        RSA_4096,
        SignatureAlgorithm::RsaPkcs1Sha256,
        "rsa4096",
        false,
    ),
    case(
        "ed25519",
        "Ed25519",
        KeySpec::Ed25519,
        SignatureAlgorithm::Ed25519,
        "ed25519",
        false,
    ),
];

const fn case(
    id: &'static str,
    name: &'static str,
    spec: KeySpec,
    algorithm: SignatureAlgorithm,
    openssl_test: &'static str,
    openssl_other_padding: bool,
) -> Case {
    Case {
        id,
        name,
        spec,
        algorithm,
        openssl_test,
        openssl_other_padding,
    }
}

fn main() {
    let options = Options::parse(std::env::args().skip(1));
    let cases = selected_cases(&options.only);
    let duration = Duration::from_secs(options.seconds);

    // SoftHSM2 sees only the tokens that exist at C_Initialize: create ours
    // before anything loads the module.
    let created = TestToken::create("bench")
        .unwrap_or_else(|e| panic!("cannot create the benchmark token: {e}"));
    let token = Token::open(
        &created.module,
        &created.label,
        Pin::new(created.user_pin.expose_secret()),
        PoolConfig {
            sessions: 2,
            ..PoolConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("cannot open the benchmark token: {e}"));
    let bare = BareToken::find(&created.module, &created.label);

    print_machine(options.seconds);
    let mut keys: HashMap<KeySpec, KeyPair> = HashMap::new();
    let mut openssl: HashMap<&str, f64> = HashMap::new();
    let mut rows = Vec::new();
    for case in cases {
        let key = keys
            .entry(case.spec)
            .or_insert_with(|| generate_key(&token, case.spec));
        let openssl_per_second = *openssl
            .entry(case.openssl_test)
            .or_insert_with(|| openssl_speed(case.openssl_test, options.seconds));
        rows.push(measure_case(case, key, &bare, duration, openssl_per_second));
    }
    print_table(&rows);
}

/// Command-line options (after `--`).
struct Options {
    seconds: u64,
    only: Vec<String>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Options {
        let mut options = Options {
            seconds: DEFAULT_SECONDS,
            only: Vec::new(),
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // `cargo bench` passes this to every bench target.
                "--bench" => {}
                "--seconds" => {
                    let value = args.next().unwrap_or_default();
                    options.seconds = value.parse().ok().filter(|&s| s > 0).unwrap_or_else(|| {
                        panic!("--seconds needs a whole number ≥ 1, got {value:?}")
                    });
                }
                "--only" => {
                    let name = args.next().unwrap_or_else(|| usage("--only needs a name"));
                    options.only.push(name.to_lowercase());
                }
                other => usage(&format!("unknown argument {other:?}")),
            }
        }
        options
    }
}

fn usage(problem: &str) -> ! {
    panic!(
        "{problem}\nusage: cargo bench -p strongroom-hsm --bench signing -- [--seconds N] [--only NAME]..."
    )
}

/// The cases `--only` keeps (all of them without `--only`).
fn selected_cases(only: &[String]) -> Vec<&'static Case> {
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|case| only.is_empty() || only.iter().any(|name| case.id.contains(name.as_str())))
        .collect();
    if cases.is_empty() {
        let ids: Vec<&str> = CASES.iter().map(|c| c.id).collect();
        usage(&format!(
            "--only matches no row; ids are {}",
            ids.join(", ")
        ));
    }
    cases
}

fn generate_key(token: &Token, spec: KeySpec) -> KeyPair {
    eprintln!("generating {spec} key...");
    token
        .generate_key_pair(&format!("bench-{spec}"), spec)
        .unwrap_or_else(|e| panic!("cannot generate the {spec} key: {e}"))
}

/// One row's figures, in signatures per second.
struct Row {
    case: &'static Case,
    pool_1t: f64,
    bare_1t: f64,
    pool_2t: f64,
    bare_2t: f64,
    openssl: f64,
}

/// Measures one row: the pool and the bare loop at one and two threads, each
/// sample signature verified.
fn measure_case(
    case: &'static Case,
    key: &KeyPair,
    bare: &BareToken,
    duration: Duration,
    openssl: f64,
) -> Row {
    // Each thread builds its signer: the pool needs nothing, the bare loop
    // opens a session of its own.
    let pool = || || pool_sign(key, case.algorithm);
    let bare_signer = || {
        let signer = bare.signer(key.label(), case.algorithm);
        move || signer.sign(&MESSAGE)
    };
    let record = |path: &str, raw_ecdsa: bool, measured: Measurement| {
        for sample in &measured.samples {
            check_signature(case, key.public_key(), path, sample, raw_ecdsa);
        }
        eprintln!(
            "{:<30} {path:<8} {:>10} sig/s",
            case.name,
            thousands(measured.per_second)
        );
        measured.per_second
    };
    Row {
        case,
        pool_1t: record("pool 1t", false, measure(1, duration, pool)),
        bare_1t: record("bare 1t", true, measure(1, duration, bare_signer)),
        pool_2t: record("pool 2t", false, measure(2, duration, pool)),
        bare_2t: record("bare 2t", true, measure(2, duration, bare_signer)),
        openssl,
    }
}

fn pool_sign(key: &KeyPair, algorithm: SignatureAlgorithm) -> Vec<u8> {
    key.sign(algorithm, &MESSAGE)
        .unwrap_or_else(|e| panic!("pool signing with {}: {e}", key.label()))
}

/// Panics unless `signature` verifies; `raw_ecdsa` marks PKCS#11 `r || s` output.
fn check_signature(
    case: &Case,
    public_key: &PublicKey,
    path: &str,
    signature: &[u8],
    raw_ecdsa: bool,
) {
    let ecdsa = matches!(
        case.algorithm,
        SignatureAlgorithm::EcdsaP256Sha256 | SignatureAlgorithm::EcdsaP384Sha384
    );
    let signature = if raw_ecdsa && ecdsa {
        ecdsa_raw_to_der(signature)
    } else {
        signature.to_vec()
    };
    public_key
        .verify(case.algorithm, &MESSAGE, &signature)
        .unwrap_or_else(|e| panic!("{} {path}: a signature does not verify: {e}", case.name));
}

/// DER `Ecdsa-Sig-Value` of a raw `r || s` signature.
fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    #[derive(der::Sequence)]
    struct EcdsaSigValue<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let value = EcdsaSigValue {
        r: UintRef::new(r).expect("r is an unsigned integer"),
        s: UintRef::new(s).expect("s is an unsigned integer"),
    };
    value.to_der().expect("ECDSA signature encodes as DER")
}

/// Throughput of a measurement and the last signature of each thread.
struct Measurement {
    per_second: f64,
    samples: Vec<Vec<u8>>,
}

/// Runs `threads` threads, each building a signer with `make_signer` and then
/// signing in a loop for `duration`; they start together after the setup.
fn measure<S>(threads: usize, duration: Duration, make_signer: impl Fn() -> S + Sync) -> Measurement
where
    S: FnMut() -> Vec<u8>,
{
    let start = Barrier::new(threads);
    let results: Vec<(f64, Vec<u8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut sign = make_signer();
                    start.wait();
                    sign_for(duration, &mut sign)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    Measurement {
        per_second: results.iter().map(|(rate, _)| rate).sum(),
        samples: results.into_iter().map(|(_, sample)| sample).collect(),
    }
}

/// Signs until `duration` is over; returns signatures/s and the last signature.
fn sign_for(duration: Duration, sign: &mut impl FnMut() -> Vec<u8>) -> (f64, Vec<u8>) {
    let began = Instant::now();
    let mut count: u32 = 0;
    let mut last = Vec::new();
    while began.elapsed() < duration {
        last = sign();
        count += 1;
    }
    (f64::from(count) / began.elapsed().as_secs_f64(), last)
}

/// The benchmark token reached through `cryptoki` directly, without our pool.
struct BareToken {
    pkcs11: Pkcs11,
    slot: Slot,
}

impl BareToken {
    /// Loads `module` again (same process, same library: already initialised)
    /// and finds the slot of the token labelled `label`.
    fn find(module: &Path, label: &str) -> BareToken {
        let pkcs11 =
            Pkcs11::new(module).unwrap_or_else(|e| panic!("cannot load {}: {e}", module.display()));
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        let slots = pkcs11
            .get_slots_with_token()
            .unwrap_or_else(|e| panic!("C_GetSlotList: {e}"));
        let slot = slots
            .into_iter()
            .find(|slot| {
                pkcs11
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label() == label)
            })
            .unwrap_or_else(|| panic!("no slot holds token '{label}'"));
        BareToken { pkcs11, slot }
    }

    /// Opens a session of its own and finds the private key labelled `key_label`.
    ///
    /// No login: logins are per process, and our `Token` is logged in.
    fn signer(&self, key_label: &str, algorithm: SignatureAlgorithm) -> BareSigner {
        let session = self
            .pkcs11
            .open_rw_session(self.slot)
            .unwrap_or_else(|e| panic!("C_OpenSession: {e}"));
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(key_label.as_bytes().to_vec()),
            ])
            .unwrap_or_else(|e| panic!("C_FindObjects: {e}"));
        let [key] = found.as_slice() else {
            panic!(
                "expected one private key '{key_label}', found {}",
                found.len()
            );
        };
        let (mechanism, digest) = bare_mechanism(algorithm);
        BareSigner {
            session,
            key: *key,
            mechanism,
            digest,
        }
    }
}

/// One session, one key, one mechanism: the least work a signature takes.
struct BareSigner {
    session: Session,
    key: ObjectHandle,
    mechanism: Mechanism<'static>,
    /// The hash computed in software before signing (ECDSA), if any.
    digest: Option<&'static ring::digest::Algorithm>,
}

impl BareSigner {
    /// Signs `message`; ECDSA signatures stay raw `r || s`.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let digest = self.digest.map(|alg| ring::digest::digest(alg, message));
        let data = digest.as_ref().map_or(message, |d| d.as_ref());
        self.session
            .sign(&self.mechanism, self.key, data)
            .unwrap_or_else(|e| panic!("bare C_Sign: {e}"))
    }
}

/// The mechanism our `KeyPair::sign` uses for `algorithm`, and the software
/// hash it applies first.
fn bare_mechanism(
    algorithm: SignatureAlgorithm,
) -> (Mechanism<'static>, Option<&'static ring::digest::Algorithm>) {
    use SignatureAlgorithm::*;
    match algorithm {
        EcdsaP256Sha256 => (Mechanism::Ecdsa, Some(&ring::digest::SHA256)),
        EcdsaP384Sha384 => (Mechanism::Ecdsa, Some(&ring::digest::SHA384)),
        RsaPkcs1Sha256 => (Mechanism::Sha256RsaPkcs, None),
        RsaPssSha256 => (
            Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA256,
                mgf: PkcsMgfType::MGF1_SHA256,
                s_len: 32u64.into(),
            }),
            None,
        ),
        Ed25519 => (
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            None,
        ),
        other => panic!("no bare mechanism for {other} in this benchmark"),
    }
}

/// Sign operations per second reported by `openssl speed -seconds N test`.
fn openssl_speed(test: &str, seconds: u64) -> f64 {
    eprintln!("openssl speed -seconds {seconds} {test}...");
    let stdout = command_stdout(
        "openssl",
        &["speed", "-seconds", &seconds.to_string(), test],
    );
    parse_openssl_sign_rate(&stdout).unwrap_or_else(|| {
        panic!("no sign/s figure in the output of `openssl speed {test}`:\n{stdout}")
    })
}

/// The `sign/s` column of the first row under the `sign ... sign/s verify/s` header.
fn parse_openssl_sign_rate(output: &str) -> Option<f64> {
    let mut lines = output
        .lines()
        .skip_while(|line| !line.trim_end().ends_with("sign/s verify/s"));
    lines.next()?;
    let row = lines.find(|line| !line.trim().is_empty())?;
    let fields: Vec<&str> = row.split_whitespace().collect();
    fields.get(fields.len().checked_sub(2)?)?.parse().ok()
}

/// A tool's standard output; panics if it is missing or fails (nothing is skipped).
fn command_stdout(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` (is it installed? this benchmark needs it): {e}")
        });
    if !output.status.success() {
        panic!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn print_machine(seconds: u64) {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let softhsm = command_stdout("softhsm2-util", &["--version"]);
    let openssl = command_stdout("openssl", &["version"]);
    println!("- nproc: {nproc}");
    println!("- CPU: {cpu}");
    println!("- SoftHSM: {}", softhsm.trim());
    println!("- OpenSSL: {}", openssl.trim());
    println!("- {seconds} s per measurement, 64-byte message, pool of 2 sessions");
    println!();
}

fn print_table(rows: &[Row]) {
    println!(
        "| algorithm | pool 1t | bare 1t | pool/bare 1t | pool 2t | bare 2t | pool/bare 2t | openssl speed (1 proc) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let openssl = if row.case.openssl_other_padding {
            format!("{} (PKCS#1 figure, no PSS test)", thousands(row.openssl))
        } else {
            thousands(row.openssl)
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.case.name,
            thousands(row.pool_1t),
            thousands(row.bare_1t),
            percent(row.pool_1t, row.bare_1t),
            thousands(row.pool_2t),
            thousands(row.bare_2t),
            percent(row.pool_2t, row.bare_2t),
            openssl,
        );
    }
}

/// `value` rounded to an integer, with thousands separators: `12,345`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part / whole` as a percentage with one decimal: `97.3 %`.
fn percent(part: f64, whole: f64) -> String {
    format!("{:.1} %", 100.0 * part / whole)
}
