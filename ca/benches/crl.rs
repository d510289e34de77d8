//! CRL build time and peak memory of the streaming builder ([`build_crl`],
//! signing in a SoftHSM2 token) next to `openssl ca -gencrl`, on the same
//! revoked entries, in the same run, on the same machine.
//!
//! ```text
//! cargo bench -p strongroom-ca --bench crl [-- --sizes 10000,100000,1000000] [--runs N]
//! ```
//!
//! One run does, in order:
//!
//! 1. A fresh SoftHSM2 token directory holding one token, with a P-256 key
//!    and a self-signed CA certificate for it (our issuer), made by a child
//!    process; a P-256 CA key and certificate made by `openssl req`
//!    (OpenSSL's issuer), with a minimal `openssl.cnf`. The token directory
//!    is the benchmark's own: SoftHSM2 loads every token of its directory
//!    when it starts, and the shared one under `target/` holds hundreds from
//!    earlier test runs, which would add their load time and memory to ours.
//! 2. For each size N: N random positive 127-bit serials, revoked with reason
//!    keyCompromise at spread-out times, written once as an OpenSSL CA
//!    database (`index.txt`: `R <expiry> <revtime>,keyCompromise <SERIAL>
//!    unknown /CN=x`). Both builders read this same file.
//! 3. Per size, `--runs` times (default 3) each, alternating:
//!    - `openssl ca -gencrl` (cRLNumber and authority key identifier, like
//!      ours) writing a PEM CRL;
//!    - this benchmark re-executed with a hidden `--child build` flag: it
//!      opens the token, binds the issuer, streams `index.txt` into
//!      [`build_crl`] and writes the DER CRL.
//!
//!    Each builder runs in a child process under `/usr/bin/time -f %M`, so
//!    both peak RSS figures come from the same kernel counter (ru_maxrss);
//!    wall time is measured around the child. Our child also reports its
//!    own VmHWM and the time spent inside `build_crl` alone.
//! 4. So that a broken path cannot look fast, every CRL of every run is
//!    checked with `openssl crl -verify` against its issuer, and decoded with
//!    x509-cert: it must list exactly the N generated serials.
//!
//! Progress goes to standard error; the machine and a markdown table (median
//! time and median peak RSS per builder, and the ratios ours/openssl) to
//! standard output.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use der::{Decode, Encode};
use ring::rand::SecureRandom;
use secrecy::{ExposeSecret, SecretString};
use strongroom_ca::{
    CaCertificateRequest, CaError, CrlRequest, CrlScope, DistributionUrls, Issuer,
    RevocationReason, RevokedEntry, Serial, build_crl, pem, self_signed_root,
};
use strongroom_hsm::{KeySpec, Pin, PoolConfig, PublicKey, SignatureAlgorithm, Token};
use strongroom_softhsm::TokenDir;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

/// The hidden flag that makes this binary build one CRL and exit.
const CHILD_FLAG: &str = "--child";

/// The label of our CA key in the benchmark token.
const KEY_LABEL: &str = "crl-bench-ca";

const DEFAULT_SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const DEFAULT_RUNS: usize = 3;

/// `/usr/bin/time`, which reports a child's peak RSS (GNU time's `%M`).
const TIME: &str = "/usr/bin/time";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        child(&args[1..]);
        return;
    }
    let options = Options::parse(args.into_iter());
    assert!(
        Path::new(TIME).is_file(),
        "{TIME} is missing: install the 'time' package (GNU time measures both builders' peak RSS)"
    );
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();

    eprintln!("creating a fresh SoftHSM2 token directory and a P-256 CA key in it...");
    let hsm = Hsm::create(&dir.join("softhsm"));
    let ours_cert = dir.join("ours.der");
    let out = hsm.run_child(&["setup", p(&ours_cert)]);
    assert!(out.status.success(), "CA setup child: {}", text(&out));
    let ours_pem = dir.join("ours.pem");
    std::fs::write(
        &ours_pem,
        pem("CERTIFICATE", &std::fs::read(&ours_cert).expect("read")),
    )
    .expect("write");

    eprintln!("making the OpenSSL CA (P-256, openssl req)...");
    let ossl = dir.join("openssl-ca");
    make_openssl_ca(&ossl);

    let mut rows = Vec::new();
    for &n in &options.sizes {
        eprintln!("{n} entries: generating serials and index.txt...");
        let serials = random_serials(n);
        write_index(&ossl.join("index.txt"), &serials);
        let mut expected: Vec<Vec<u8>> = serials.iter().map(|s| s.as_bytes().to_vec()).collect();
        expected.sort_unstable();

        let mut theirs = Vec::new();
        let mut ours = Vec::new();
        for run in 1..=options.runs {
            eprintln!(
                "{n} entries, run {run}/{}: openssl ca -gencrl...",
                options.runs
            );
            let m = run_openssl(&ossl);
            check_crl(&m.output, false, &ossl.join("ca.pem"), &expected);
            eprintln!(
                "  {:.2} s, {} MB peak",
                m.wall.as_secs_f64(),
                m.peak_kb / 1024
            );
            theirs.push(m);

            eprintln!(
                "{n} entries, run {run}/{}: strongroom build_crl...",
                options.runs
            );
            let m = run_ours(dir, &hsm, &ours_cert, &ossl.join("index.txt"));
            check_crl(&m.output, true, &ours_pem, &expected);
            eprintln!(
                "  {:.2} s ({:.2} s in build_crl), {} MB peak (VmHWM {} MB)",
                m.wall.as_secs_f64(),
                m.inner.map_or(0.0, |d| d.as_secs_f64()),
                m.peak_kb / 1024,
                m.vm_hwm_kb.unwrap_or(0) / 1024
            );
            ours.push(m);
        }
        rows.push(Row {
            entries: n,
            der_bytes: std::fs::metadata(&ours[0].output).map_or(0, |m| m.len()),
            openssl: summarize(&theirs),
            ours: summarize(&ours),
        });
    }
    print_report(&options, &rows);
}

struct Options {
    sizes: Vec<usize>,
    runs: usize,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Options {
        let mut options = Options {
            sizes: DEFAULT_SIZES.to_vec(),
            runs: DEFAULT_RUNS,
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // cargo bench passes --bench to every bench binary.
                "--bench" => {}
                "--sizes" => {
                    options.sizes = args
                        .next()
                        .unwrap_or_else(|| usage("--sizes needs a value"))
                        .split(',')
                        .map(|s| s.trim().replace('_', "").parse())
                        .collect::<Result<_, _>>()
                        .unwrap_or_else(|_| usage("--sizes takes numbers, comma-separated"));
                }
                "--runs" => {
                    options.runs = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&r| r > 0)
                        .unwrap_or_else(|| usage("--runs takes a positive number"));
                }
                other => usage(&format!("unknown argument '{other}'")),
            }
        }
        options
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: cargo bench -p strongroom-ca --bench crl [-- --sizes 10000,100000,1000000] [--runs N]"
    );
    std::process::exit(2)
}

/// The benchmark's own SoftHSM2 token directory with one token; only child
/// processes open it (see the module docs for why).
struct Hsm {
    conf: PathBuf,
    module: PathBuf,
    label: String,
    user_pin: SecretString,
}

impl Hsm {
    fn create(dir: &Path) -> Hsm {
        let token_dir = TokenDir::create(dir).unwrap_or_else(|e| panic!("{e}"));
        let module = strongroom_softhsm::module_path().unwrap_or_else(|e| panic!("{e}"));
        let user_pin = random_pin();
        let label = "crl-bench".to_string();
        token_dir
            .create_token(&label, &random_pin(), &user_pin)
            .unwrap_or_else(|e| panic!("{e}"));
        Hsm {
            conf: token_dir.conf().to_path_buf(),
            module,
            label,
            user_pin,
        }
    }

    /// This binary as a child (`--child <args> <module> <label>`) on this
    /// token directory, optionally under `/usr/bin/time`.
    fn child_command(&self, timed: bool, args: &[&str]) -> Command {
        let exe = std::env::current_exe().expect("current exe");
        let mut command = if timed {
            let mut c = Command::new(TIME);
            c.args(["-f", "peak_kb=%M"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        command
            .arg(CHILD_FLAG)
            .args(args)
            .args([p(&self.module), &self.label])
            .env(strongroom_softhsm::CONF_VAR, &self.conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs a child command to its end; the PIN goes over its standard
    /// input, never arguments or environment.
    fn spawn(&self, mut command: Command) -> Output {
        let mut child = command.spawn().expect("start child");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            writeln!(stdin, "{}", self.user_pin.expose_secret()).expect("send PIN");
        }
        child.wait_with_output().expect("wait for child")
    }

    fn run_child(&self, args: &[&str]) -> Output {
        self.spawn(self.child_command(false, args))
    }
}

fn random_pin() -> SecretString {
    let mut bytes = [0u8; 12];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random");
    SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A self-signed P-256 CA in the token; its certificate (DER) goes to `out`.
fn make_our_ca(token: &Token, out: &Path) {
    let key = token
        .generate_key_pair(KEY_LABEL, KeySpec::EcP256)
        .expect("CA key");
    let signer = key
        .signer(SignatureAlgorithm::EcdsaP256Sha256)
        .expect("signer");
    let now = SystemTime::now();
    let mut serial = token.random(16).expect("random");
    serial[0] = (serial[0] & 0x3f) | 0x40;
    let der = self_signed_root(
        &signer,
        &CaCertificateRequest {
            subject: &[("CN".into(), "Strongroom CRL Bench CA".into())],
            public_key: key.public_key(),
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(365 * 86_400),
            path_len: None,
            serial: &serial,
            urls: &DistributionUrls::default(),
        },
    )
    .expect("CA certificate");
    std::fs::write(out, der).expect("write CA certificate");
}

fn make_openssl_ca(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let out = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            p(&dir.join("ca.key")),
            "-out",
            p(&dir.join("ca.pem")),
            "-subj",
            "/CN=OpenSSL CRL Bench CA",
            "-days",
            "365",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    assert!(out.status.success(), "openssl req: {}", text(&out));
    std::fs::write(
        dir.join("openssl.cnf"),
        "[ca]\n\
         default_ca = bench\n\
         [bench]\n\
         dir = .\n\
         database = $dir/index.txt\n\
         certificate = $dir/ca.pem\n\
         private_key = $dir/ca.key\n\
         crlnumber = $dir/crlnumber\n\
         default_md = sha256\n\
         default_crl_days = 7\n\
         crl_extensions = crl_ext\n\
         [crl_ext]\n\
         authorityKeyIdentifier = keyid:always\n",
    )
    .expect("openssl.cnf");
    // Many entries share the subject /CN=x.
    std::fs::write(dir.join("index.txt.attr"), "unique_subject = no\n").expect("attr");
}

/// `n` random positive serials of 127 bits (16 bytes, top bit clear).
fn random_serials(n: usize) -> Vec<Serial> {
    let rng = ring::rand::SystemRandom::new();
    let mut bytes = vec![0u8; 16 * n];
    rng.fill(&mut bytes).expect("random");
    bytes
        .chunks_exact(16)
        .map(|c| {
            let mut s = c.to_vec();
            s[0] &= 0x7f;
            if s[0] == 0 {
                s[0] = 1;
            }
            Serial::from_bytes(s).expect("serial")
        })
        .collect()
}

/// An OpenSSL CA database revoking every serial (keyCompromise), revoked
/// at times spread over the past day.
fn write_index(path: &Path, serials: &[Serial]) {
    let now = unix_now();
    let expiry = utc_time(now + 365 * 86_400);
    let mut out = BufWriter::new(std::fs::File::create(path).expect("index.txt"));
    for (i, serial) in serials.iter().enumerate() {
        let revoked = utc_time(now - 86_400 + (i as i64 % 86_000));
        writeln!(
            out,
            "R\t{expiry}\t{revoked},keyCompromise\t{}\tunknown\t/CN=x",
            serial.to_hex().to_uppercase()
        )
        .expect("write index");
    }
    out.flush().expect("flush index");
    std::fs::write(
        path.with_file_name("crlnumber"),
        "1000\n", // hex, as OpenSSL keeps it
    )
    .expect("crlnumber");
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYMMDDHHMMSSZ`, the form OpenSSL's index.txt uses.
fn utc_time(unix: i64) -> String {
    let dt = der::DateTime::from_unix_duration(Duration::from_secs(unix as u64)).expect("time");
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        dt.year() % 100,
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minutes(),
        dt.seconds()
    )
}

/// The inverse of [`utc_time`].
fn parse_utc_time(s: &str) -> Result<i64, String> {
    let digits = s
        .strip_suffix('Z')
        .filter(|d| d.len() == 12 && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("'{s}' is not YYMMDDHHMMSSZ"))?;
    let n = |i: usize| digits[i..i + 2].parse::<u8>().expect("digits");
    let year = n(0);
    let year = if year < 50 { 2000 } else { 1900 } + u16::from(year);
    let dt = der::DateTime::new(year, n(2), n(4), n(6), n(8), n(10)).map_err(|e| e.to_string())?;
    Ok(dt.unix_duration().as_secs() as i64)
}

/// One builder run.
struct Measured {
    wall: Duration,
    peak_kb: u64,
    /// Our child's own VmHWM.
    vm_hwm_kb: Option<u64>,
    /// Our child's time inside `build_crl`.
    inner: Option<Duration>,
    output: PathBuf,
}

fn run_openssl(ca: &Path) -> Measured {
    let output = ca.join("crl.pem");
    let started = Instant::now();
    let out = Command::new(TIME)
        .current_dir(ca)
        .args([
            "-f",
            "peak_kb=%M",
            "openssl",
            "ca",
            "-config",
            "openssl.cnf",
        ])
        .args(["-gencrl", "-out", p(&output)])
        .output()
        .expect("run openssl ca");
    let wall = started.elapsed();
    assert!(out.status.success(), "openssl ca -gencrl: {}", text(&out));
    Measured {
        wall,
        peak_kb: field(&text(&out), "peak_kb").expect("peak_kb from /usr/bin/time"),
        vm_hwm_kb: None,
        inner: None,
        output,
    }
}

fn run_ours(dir: &Path, hsm: &Hsm, cert: &Path, index: &Path) -> Measured {
    let output = dir.join("ours.crl.der");
    let command = hsm.child_command(true, &["build", p(cert), p(index), p(&output)]);
    let started = Instant::now();
    let out = hsm.spawn(command);
    let wall = started.elapsed();
    let report = text(&out);
    assert!(out.status.success(), "our CRL child failed: {report}");
    Measured {
        wall,
        peak_kb: field(&report, "peak_kb").expect("peak_kb from /usr/bin/time"),
        vm_hwm_kb: field(&report, "vm_hwm_kb"),
        inner: field(&report, "build_us").map(Duration::from_micros),
        output,
    }
}

/// A child: `setup <cert out> <module> <label>` makes our CA;
/// `build <cert> <index> <out> <module> <label>` builds one CRL from an
/// OpenSSL index with the token's key. The user PIN arrives on standard input.
fn child(args: &[String]) {
    let (module, label) = match args {
        [.., module, label] => (module, label),
        _ => panic!("child arguments end with: module label"),
    };
    let mut pin = String::new();
    std::io::stdin()
        .read_to_string(&mut pin)
        .expect("PIN on stdin");
    let token = Token::open(
        Path::new(module),
        label,
        Pin::new(pin.trim_end_matches('\n')),
        PoolConfig::default(),
    )
    .expect("open token");
    match args {
        [command, out, _, _] if command == "setup" => make_our_ca(&token, Path::new(out)),
        [command, cert, index, output, _, _] if command == "build" => {
            build(&token, Path::new(cert), Path::new(index), Path::new(output));
        }
        _ => panic!("unknown child command {args:?}"),
    }
}

fn build(token: &Token, cert: &Path, index: &Path, output: &Path) {
    let cert_der = std::fs::read(cert).expect("CA certificate");
    let spki = Certificate::from_der(&cert_der)
        .expect("CA certificate")
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki");
    let key = token
        .find_key_pair(KEY_LABEL, &PublicKey::from_der(&spki).expect("key"))
        .expect("CA key");
    let issuer = Issuer::new(
        &cert_der,
        Arc::new(
            key.signer(SignatureAlgorithm::EcdsaP256Sha256)
                .expect("signer"),
        ),
    )
    .expect("issuer");

    eprintln!(
        "DEBUG after open: {}",
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let now = SystemTime::now();
    let request = CrlRequest {
        number: 0x1000,
        this_update: now,
        next_update: now + Duration::from_secs(7 * 86_400),
        scope: CrlScope::Full,
        delta_of: None,
        freshest: None,
    };
    let started = Instant::now();
    let lines =
        BufReader::with_capacity(1 << 20, std::fs::File::open(index).expect("index.txt")).lines();
    let entries = lines.map(|line| {
        let line = line.map_err(|e| CaError::Internal(format!("reading index.txt: {e}")))?;
        index_entry(&line).map_err(CaError::BadRequest)
    });
    let der = build_crl(&issuer, &request, entries).expect("build CRL");
    let build = started.elapsed();
    std::fs::write(output, &der).expect("write CRL");
    drop(der);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let vm_hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("build_us={} vm_hwm_kb={vm_hwm}", build.as_micros());
}

/// One `R` line of an OpenSSL index: `R expiry revtime,reason serial file subject`.
fn index_entry(line: &str) -> Result<RevokedEntry, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [kind, _expiry, revocation, serial, ..] = fields.as_slice() else {
        return Err(format!("malformed index line '{line}'"));
    };
    if *kind != "R" {
        return Err(format!("not a revoked entry: '{line}'"));
    }
    let (time, reason) = revocation
        .split_once(',')
        .ok_or_else(|| format!("no reason in '{revocation}'"))?;
    Ok(RevokedEntry {
        serial: Serial::from_hex(serial)?,
        revoked_at: parse_utc_time(time)?,
        reason: RevocationReason::from_name(reason)
            .ok_or_else(|| format!("unknown reason '{reason}'"))?,
    })
}

/// `openssl crl -verify` accepts the CRL, and it lists exactly `expected`.
fn check_crl(path: &Path, der: bool, issuer_pem: &Path, expected: &[Vec<u8>]) {
    let form = if der { "DER" } else { "PEM" };
    let out = run(
        "openssl",
        &[
            "crl",
            "-inform",
            form,
            "-in",
            p(path),
            "-CAfile",
            p(issuer_pem),
            "-noout",
            "-verify",
        ],
    );
    assert!(
        out.status.success() && text(&out).contains("verify OK"),
        "openssl crl -verify {}: {}",
        path.display(),
        text(&out)
    );
    let bytes = std::fs::read(path).expect("read CRL");
    let crl = if der {
        CertificateList::from_der(&bytes)
    } else {
        let (_, der) = der::pem::decode_vec(&bytes).expect("PEM");
        CertificateList::from_der(&der)
    }
    .expect("x509-cert decodes the CRL");
    let mut listed: Vec<Vec<u8>> = crl
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect();
    listed.sort_unstable();
    assert!(
        listed == expected,
        "{} does not list exactly the {} revoked serials ({} listed)",
        path.display(),
        expected.len(),
        listed.len()
    );
}

struct Summary {
    wall: Duration,
    peak_kb: u64,
    inner: Option<Duration>,
}

fn summarize(runs: &[Measured]) -> Summary {
    let median = |mut v: Vec<u128>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let inner: Vec<u128> = runs
        .iter()
        .filter_map(|m| m.inner.map(|d| d.as_micros()))
        .collect();
    Summary {
        wall: Duration::from_micros(
            median(runs.iter().map(|m| m.wall.as_micros()).collect()) as u64
        ),
        peak_kb: median(runs.iter().map(|m| u128::from(m.peak_kb)).collect()) as u64,
        inner: (!inner.is_empty()).then(|| Duration::from_micros(median(inner) as u64)),
    }
}

struct Row {
    entries: usize,
    der_bytes: u64,
    openssl: Summary,
    ours: Summary,
}

fn print_report(options: &Options, rows: &[Row]) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let openssl = text(&run("openssl", &["version"])).trim().to_string();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nMachine: {cores} cores, {cpu}; {openssl}; SoftHSM2 token, P-256 issuer key for both.\n\
         Median of {} runs per size; wall time of the whole child process (reading index.txt, \
         building, signing, writing the CRL); peak RSS is the child's ru_maxrss from {TIME}.\n",
        options.runs
    );
    let _ = writeln!(
        s,
        "| entries | CRL (DER) | openssl ca -gencrl | openssl peak RSS | strongroom | (in build_crl) | strongroom peak RSS | time ours/openssl | memory ours/openssl |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let time = r.ours.wall.as_secs_f64() / r.openssl.wall.as_secs_f64();
        let speed = if time <= 1.0 {
            format!("{:.1}× faster", 1.0 / time)
        } else {
            format!("{time:.1}× slower")
        };
        let _ = writeln!(
            s,
            "| {} | {:.1} MB | {:.2} s | {:.0} MB | {:.2} s | {:.2} s | {:.0} MB | {time:.2} ({speed}) | {:.2} |",
            thousands(r.entries),
            r.der_bytes as f64 / 1e6,
            r.openssl.wall.as_secs_f64(),
            r.openssl.peak_kb as f64 / 1024.0,
            r.ours.wall.as_secs_f64(),
            r.ours.inner.map_or(0.0, |d| d.as_secs_f64()),
            r.ours.peak_kb as f64 / 1024.0,
            r.ours.peak_kb as f64 / r.openssl.peak_kb as f64,
        );
    }
    print!("{s}");
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `name=<number>` from a child's output.
fn field(output: &str, name: &str) -> Option<u64> {
    let key = format!("{name}=");
    output
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
