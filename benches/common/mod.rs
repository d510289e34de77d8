//! Helpers the root package's benchmarks (`issuance`, `ocsp`, `transit`)
//! share: child processes, `strongroom dev`, tools installed with apt, the raw
//! HSM rate, machine facts and number formatting.

// Each benchmark uses only part of this module.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use strongroom_hsm::{KeySpec, Pin, PoolConfig, SignatureAlgorithm, Token};
use strongroom_softhsm::TestToken;

/// The load generator's allocator: the appliance's own (see `mimalloc` in
/// the workspace `Cargo.toml`), so that the client, which shares the
/// machine's two cores with the appliance, spends no more than it must.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The appliance binary cargo built for the benchmark (release profile).
pub const BIN: &str = env!("CARGO_BIN_EXE_strongroom");

/// Load before each measurement, not counted.
pub const WARM_UP: Duration = Duration::from_secs(2);

/// The longest a server may take to start answering.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The message the raw HSM measurement signs (as in the `signing` benchmark).
pub const MESSAGE: [u8; 64] = [0x5a; 64];

// ---------------------------------------------------------------- processes

/// A child process killed (and reaped) when dropped, also during a panic.
/// Children it forked itself (`openssl ocsp -multi`) are killed with it.
pub struct ChildGuard {
    /// What it is, for messages.
    pub name: &'static str,
    /// The process, until it is stopped.
    pub child: Option<Child>,
    /// Where its standard error goes, shown if it fails.
    pub log: PathBuf,
    /// How long [`ChildGuard::stop`] waits after SIGTERM before SIGKILL.
    pub grace: Duration,
}

impl ChildGuard {
    /// Starts `command` with standard error to `log`.
    pub fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> ChildGuard {
        let stderr = std::fs::File::create(&log).expect("create a log file");
        let child = command
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        ChildGuard {
            name,
            child: Some(child),
            log,
            grace: Duration::from_secs(20),
        }
    }

    /// Its process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with its log if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
        }
    }

    /// Waits, while it runs, until `ready` holds; panics with `not_ready` after
    /// [`START_TIMEOUT`].
    fn wait_until(&mut self, mut ready: impl FnMut() -> bool, not_ready: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        while !ready() {
            self.assert_running();
            assert!(Instant::now() < deadline, "{} {not_ready}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `file` (which it writes) contains `text`.
    pub fn wait_for_output(&mut self, file: &Path, text: &str) {
        self.wait_until(
            || std::fs::read_to_string(file).is_ok_and(|out| out.contains(text)),
            &format!("did not print {text:?}"),
        );
    }

    /// Waits until `addr` accepts TCP connections.
    pub fn wait_listening(&mut self, addr: &str) {
        self.wait_until(
            || TcpStream::connect(addr).is_ok(),
            &format!("is not listening on {addr}"),
        );
    }

    /// User plus system CPU time of the process and the children it forked.
    pub fn cpu_time(&self) -> Duration {
        let pid = self.pid();
        children_of(pid)
            .into_iter()
            .map(cpu_time)
            .fold(cpu_time(pid), |sum, t| sum + t)
    }

    /// SIGTERM, then up to its grace period for a clean exit, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let forked = children_of(child.id());
        signal("-TERM", child.id());
        let deadline = Instant::now() + self.grace;
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !exited {
            eprintln!(
                "{} ignored SIGTERM for {:?}; killing it",
                self.name, self.grace
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in forked {
            signal("-KILL", pid);
        }
    }
}

impl Drop for ChildGuard {
    /// Kills the process and its forked children; shows its log during a panic.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            for pid in children_of(child.id()) {
                signal("-KILL", pid);
            }
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("---- {} log ----\n{}", self.name, self.log());
            }
        }
    }
}

/// Sends `signal` (`-TERM`, `-KILL`) to one process.
pub fn signal(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The processes `pid` forked (from `/proc`), if any.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The trimmed standard output (or error) of a command, or `unknown`.
pub fn stdout_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|out| {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text).trim().to_string()
        })
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `path` as `&str`, for command arguments.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// User plus system CPU time a process has used so far (all its threads);
/// zero once it is gone.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start at field 3;
    // utime and stime are fields 14 and 15.
    let (_, rest) = stat.rsplit_once(')').expect("a /proc stat line");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`).
fn clock_ticks() -> u64 {
    stdout_of("getconf", &["CLK_TCK"]).parse().unwrap_or(100)
}

/// A port the kernel considers free on 127.0.0.1 (released before the peer
/// binds it; another process could take it in between, which shows up as the
/// peer failing to start, never as a wrong figure).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// `binary` on `PATH`, installed from the Debian package `package` with
/// apt-get if it is missing (the benchmarks never skip a peer).
pub fn ensure_tool(binary: &str, package: &str) -> PathBuf {
    let find = || {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(binary))
                .find(|candidate| candidate.is_file())
        })
    };
    if let Some(found) = find() {
        return found;
    }
    let hint = format!(
        "{binary} is missing: install the Debian package with `sudo apt-get install {package}` \
         (or run scripts/install-deps)"
    );
    let root = stdout_of("id", &["-u"]) == "0";
    let (program, prefix): (&str, &[&str]) = if root {
        ("apt-get", &[])
    } else {
        ("sudo", &["-n", "apt-get"])
    };
    eprintln!("{binary} is missing: installing {package} with apt-get...");
    let apt = |args: &[&str]| {
        Command::new(program)
            .args(prefix)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = ["install", "-y", "-qq", "--no-install-recommends", package];
    let installed = apt(&install) || (apt(&["update", "-qq"]) && apt(&install));
    if !installed {
        panic!("{hint}; installing it with apt-get failed");
    }
    find()
        .unwrap_or_else(|| panic!("{hint}; apt-get installed {package} but no {binary} is on PATH"))
}

// ---------------------------------------------------------------- strongroom dev

/// `strongroom dev`'s addresses from its banner.
pub struct Banner {
    /// `https://127.0.0.1:port`, the gRPC address.
    pub grpc: String,
    /// The dev root CA, PEM file.
    pub root: PathBuf,
    /// `http://127.0.0.1:port/ca/issuing.crt`.
    pub issuing_url: String,
    /// The dev admin's client certificate (chain) and key, which the dev
    /// policies grant everything.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Banner {
    /// TLS settings trusting only the dev root and presenting the dev
    /// admin's certificate.
    pub fn tls(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        };
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.root)))
            .identity(Identity::from_pem(
                read(&self.client_cert),
                read(&self.client_key),
            ))
    }
}

/// Starts a fresh dev appliance (`strongroom dev`, ephemeral ports on
/// 127.0.0.1) in `data` and reads its banner.
pub fn start_appliance(data: &Path, log: PathBuf) -> (ChildGuard, Banner) {
    let mut command = Command::new(BIN);
    command
        .args(["dev", "--data-dir"])
        .arg(data)
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped());
    let mut process = ChildGuard::spawn("strongroom dev", &mut command, log);
    let stdout = process
        .child
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("the appliance's stdout");
    // Read the banner on a thread, so a silent appliance cannot hang us.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let (mut grpc, mut root, mut issuing) = (None, None, None);
        let (mut cert, mut key) = (None, None);
        while grpc.is_none()
            || root.is_none()
            || issuing.is_none()
            || cert.is_none()
            || key.is_none()
        {
            let Some(Ok(line)) = lines.next() else {
                return;
            };
            if let Some(v) = line.strip_prefix("export STRONGROOM_ADDR=") {
                grpc = Some(v.to_string());
            }
            if let Some(v) = line.strip_prefix("export STRONGROOM_CACERT=") {
                root = Some(PathBuf::from(v));
            }
            if let Some(v) = line.strip_prefix("export STRONGROOM_CLIENT_CERT=") {
                cert = Some(PathBuf::from(v));
            }
            if let Some(v) = line.strip_prefix("export STRONGROOM_CLIENT_KEY=") {
                key = Some(PathBuf::from(v));
            }
            if let Some(url) = line
                .split_whitespace()
                .find(|w| w.starts_with("http://") && w.ends_with("/ca/issuing.crt"))
            {
                issuing = Some(url.to_string());
            }
        }
        let _ = tx.send((grpc, root, issuing, cert, key));
        // Keep draining, so the appliance never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok((Some(grpc), Some(root), Some(issuing_url), Some(client_cert), Some(client_key))) => (
            process,
            Banner {
                grpc,
                root,
                issuing_url,
                client_cert,
                client_key,
            },
        ),
        _ => {
            process.assert_running();
            panic!(
                "strongroom dev printed no addresses within {START_TIMEOUT:?}:\n{}",
                process.log()
            );
        }
    }
}

// ---------------------------------------------------------------- raw HSM

/// Raw P-256 signatures/s through `strongroom_hsm` (pool of 2 sessions) on a
/// fresh token labelled `label-…`, with 1 and 2 threads, `duration` each;
/// every thread's last signature is verified.
pub fn raw_hsm_rate(label: &str, duration: Duration) -> (f64, f64) {
    let created = TestToken::create(label)
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
    let key = token
        .generate_key_pair("bench-p256", KeySpec::EcP256)
        .unwrap_or_else(|e| panic!("cannot generate the P-256 key: {e}"));
    let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
    let measure = |threads: usize| -> f64 {
        let start = Barrier::new(threads);
        let results: Vec<(u64, Duration, Vec<u8>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        let began = Instant::now();
                        let mut count = 0u64;
                        let mut last = Vec::new();
                        while began.elapsed() < duration {
                            last = key
                                .sign(algorithm, &MESSAGE)
                                .unwrap_or_else(|e| panic!("HSM signing failed: {e}"));
                            count += 1;
                        }
                        (count, began.elapsed(), last)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for (_, _, signature) in &results {
            key.public_key()
                .verify(algorithm, &MESSAGE, signature)
                .unwrap_or_else(|e| panic!("a raw HSM signature does not verify: {e}"));
        }
        let rate = results
            .iter()
            .map(|(count, took, _)| *count as f64 / took.as_secs_f64())
            .sum();
        eprintln!(
            "raw HSM P-256, {threads} thread(s): {} sig/s",
            thousands(rate)
        );
        rate
    };
    (measure(1), measure(2))
}

// ---------------------------------------------------------------- report

/// What the figures were measured on (the facts both benchmarks print).
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub os: String,
    pub kernel: String,
    pub softhsm: String,
    pub openssl: String,
    pub rustc: String,
    pub cfssl: String,
}

impl Machine {
    /// Reads the facts from `/proc`, `/etc/os-release` and the tools' versions.
    pub fn describe(cfssl: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_string());
        let os = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map_or_else(|| "unknown".into(), |n| n.trim_matches('"').to_string());
        let cfssl = stdout_of(p(cfssl), &["version"]);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            os,
            kernel: stdout_of("uname", &["-r"]),
            softhsm: stdout_of("softhsm2-util", &["--version"]),
            openssl: stdout_of("openssl", &["version"])
                .split(" (Library")
                .next()
                .unwrap_or("unknown")
                .to_string(),
            rustc: stdout_of("rustc", &["--version"]),
            cfssl: cfssl
                .lines()
                .find_map(|l| l.strip_prefix("Version: "))
                .unwrap_or(&cfssl)
                .to_string(),
        }
    }
}

impl fmt::Display for Machine {
    /// `2 CPUs (model), OS, kernel K, SoftHSM V, OpenSSL V, rustc V, cfssl V`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPUs ({}), {}, kernel {}, SoftHSM {}, {}, {}, cfssl {}",
            self.cpus,
            self.cpu_model,
            self.os,
            self.kernel,
            self.softhsm,
            self.openssl,
            self.rustc,
            self.cfssl,
        )
    }
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `12345.6` as `12,346` (`n/a` when not finite).
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
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
