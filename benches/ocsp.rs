//! OCSP responses per second of the real appliance's HTTP responder, measured
//! against peers (`openssl ocsp -port`, `cfssl ocspserve`) and the physical
//! limit of its live path (raw HSM signatures) in the same run, on the same
//! machine, with the same load generators.
//!
//! ```text
//! cargo bench -p strongroom --bench ocsp [-- --seconds N] [--connections C] [--threads T]
//!                                        [--ab-concurrency A] [--ab-requests R]
//!                                        [--idle I] [--stalled S]
//! ```
//!
//! `--seconds N`: each `wrk` measurement (default 10), after a 2 s warm-up.
//! `--connections C` and `--threads T`: `wrk`'s keep-alive connections and
//! threads (default 64 and 2). `--ab-concurrency A` and `--ab-requests R`:
//! `ab`'s concurrency (default 4; `ab` opens a new connection per request)
//! and requests per measurement (default 100,000, after R/10 to warm up; a
//! count rather than `ab -t`, which leaves `openssl ocsp -port` hung on a
//! connection it dropped unused, so every `ab` row runs `ab -n R -c A`, the
//! same command against each server). `--idle I` and
//! `--stalled S`: connections held open against the appliance during the
//! idle-client measurement, silent (default 500) or having sent half a
//! request (default 8).
//!
//! One run does, in order:
//!
//! 1. **Raw HSM rate** (the limit of the live path): on a separate SoftHSM2
//!    token, a P-256 key signs a 64-byte message through `strongroom_hsm`'s
//!    session pool (2 sessions) on 1 thread, then 2 threads, N seconds each.
//! 2. **Strongroom**: `strongroom dev` (the release binary cargo built) on
//!    127.0.0.1 with ephemeral ports and a fresh data directory. The `strongroom
//!    cert issue` CLI issues one certificate; the issuing CA comes from the
//!    appliance's `/ca/issuing.crt`, the responder URL from the certificate's
//!    AIA. `openssl ocsp -no_nonce -reqout` writes the request clients send
//!    (SHA-1 CertID); it is sent base64 in the URL path (`GET /ocsp/<base64>`,
//!    percent-encoded) or as a POST body. Measured: the cached GET under `wrk`
//!    (keep-alive), the same with I idle and S stalled connections held open
//!    (a thread reopens at once any the appliance closes), the cached POST under `wrk`, live-signed POSTs with a fresh nonce per
//!    request under `wrk` (a Lua script writes a unique 16-byte nonce into
//!    openssl's request for every request), and under `ab` the cached GET and
//!    a POST with a nonce (one body, signed live every time).
//! 3. **`openssl ocsp -port`** with an `index.txt` holding the same
//!    certificate and a throwaway self-signed P-256 responder key and
//!    certificate (`-resp_key_id`; each response carries the responder
//!    certificate, as ours do); it signs every response. It stops answering
//!    while any client holds a connection open, so it is measured with `ab`
//!    only: the same GET and the same POST with a nonce, one process, then
//!    `-multi 2` (two worker processes) for the GET. It also now and then
//!    stops answering in the middle of an `ab` run: it is then restarted and
//!    measured again from the start, up to 3 times, and the output says so.
//! 4. **`cfssl ocspserve`** (Debian `golang-cfssl`) serving a response
//!    pre-signed by `cfssl ocspsign` for the same certificate (with the same
//!    throwaway responder key): the like-for-like peer of our cached path.
//!    cfssl 1.2 answers every GET with 400 (it base64-decodes the URL path
//!    with its leading `/`; the run checks and says so), so it is measured,
//!    next to our cached POST, with the same POST under `wrk`.
//!
//! So that a broken path cannot look fast: one response of every server and
//! request kind passes `openssl ocsp -respin` (signature, certificate status
//! `good`, and the nonce of its own request where there is one); every
//! response under load must be a 2xx (`wrk`'s status errors, `ab`'s non-2xx
//! count, both zero), no request may fail or time out, and the bytes each
//! generator read per response must match the checked response's size.
//! `wrk` and `ab` (apache2-utils) and `cfssl` are installed with apt when
//! missing; nothing is skipped.
//!
//! Progress goes to standard error; the machine facts and markdown tables
//! (responses/s, p50/p99 latency, server CPU time per response, response size,
//! and the ratios against each aim) to standard output. The child processes
//! are killed when the benchmark ends, also when it panics.

mod common;

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};

use common::{
    BIN, Banner, ChildGuard, Machine, START_TIMEOUT, WARM_UP, ensure_tool, free_port, ms, p,
    raw_hsm_rate, run, start_appliance, stdout_of, thousands,
};

/// Seconds per measurement unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 10;

/// `wrk` connections unless `--connections` says otherwise.
const DEFAULT_CONNECTIONS: usize = 64;

/// `wrk` threads unless `--threads` says otherwise.
const DEFAULT_THREADS: usize = 2;

/// `ab` concurrency unless `--ab-concurrency` says otherwise.
const DEFAULT_AB_CONCURRENCY: usize = 4;

/// Requests per `ab` measurement unless `--ab-requests` says otherwise
/// (a tenth of it first, to warm up).
const DEFAULT_AB_REQUESTS: u64 = 100_000;

/// Silent connections held open unless `--idle` says otherwise.
const DEFAULT_IDLE: usize = 500;

/// Connections that sent half a request, unless `--stalled` says otherwise.
const DEFAULT_STALLED: usize = 8;

/// The longest one request of a load generator may take.
const REQUEST_TIMEOUT_SECONDS: u64 = 10;

/// Name (and DNS name) of the certificate whose status is asked.
const LEAF_NAME: &str = "ocsp-bench.test";

/// Cached responses per second under `wrk` the responder is meant to reach.
const AIM_WRK: f64 = 50_000.0;

/// How many times `openssl ocsp -port`'s rate under the same `ab` load.
const AIM_AB_RATIO: f64 = 2.0;

/// Throughput with idle connections held open over throughput without: at
/// least this (run-to-run noise), i.e. idle clients slow no one.
const AIM_IDLE_RATIO: f64 = 0.9;

/// How many times a peer that stops answering under ab is started and measured.
const PEER_ATTEMPTS: u32 = 3;

/// What ab says when no response came within its timeout (`-s`).
const AB_TIMED_OUT: &str = "timeout specified has expired";

/// Content type of OCSP requests.
const OCSP_REQUEST: &str = "application/ocsp-request";

fn main() {
    let options = Options::parse(std::env::args().skip(1));
    let work = tempfile::Builder::new()
        .prefix("strongroom-ocsp-bench")
        .tempdir()
        .expect("create a temporary directory");
    let tools = Tools {
        wrk: ensure_tool("wrk", "wrk"),
        ab: ensure_tool("ab", "apache2-utils"),
        cfssl: ensure_tool("cfssl", "golang-cfssl"),
    };
    let facts = Facts::describe(&tools);
    let seconds = Duration::from_secs(options.seconds);
    let (hsm_1t, hsm_2t) = raw_hsm_rate("bench-ocsp", seconds);

    let bench = Bench {
        options,
        tools,
        work: work.path().to_path_buf(),
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let inputs = bench.strongroom(&mut rows, &mut notes);
    bench.openssl(&inputs, &mut rows, &mut notes);
    bench.cfssl(&inputs, &mut rows, &mut notes);
    print_report(&facts, &bench.options, &rows, &notes, hsm_1t, hsm_2t);
}

/// Command-line options (after `--`).
struct Options {
    /// Length of each measurement, in seconds.
    seconds: u64,
    /// `wrk` keep-alive connections.
    connections: usize,
    /// `wrk` threads.
    threads: usize,
    /// `ab` concurrency.
    ab_concurrency: usize,
    /// Requests of each measured `ab` run.
    ab_requests: u64,
    /// Silent connections held open during the idle-client measurement.
    idle: usize,
    /// Connections that sent half a request during the idle-client measurement.
    stalled: usize,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Options {
        let mut options = Options {
            seconds: DEFAULT_SECONDS,
            connections: DEFAULT_CONNECTIONS,
            threads: DEFAULT_THREADS,
            ab_concurrency: DEFAULT_AB_CONCURRENCY,
            ab_requests: DEFAULT_AB_REQUESTS,
            idle: DEFAULT_IDLE,
            stalled: DEFAULT_STALLED,
        };
        let number = |flag: &str, value: Option<String>, min: usize| -> usize {
            let value = value.unwrap_or_default();
            value.parse().ok().filter(|&n| n >= min).unwrap_or_else(|| {
                usage(&format!(
                    "{flag} needs a whole number ≥ {min}, got {value:?}"
                ))
            })
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // `cargo bench` passes this to every bench target.
                "--bench" => {}
                "--seconds" => options.seconds = number("--seconds", args.next(), 1) as u64,
                "--connections" => options.connections = number("--connections", args.next(), 1),
                "--threads" => options.threads = number("--threads", args.next(), 1),
                "--ab-concurrency" => {
                    options.ab_concurrency = number("--ab-concurrency", args.next(), 1);
                }
                "--ab-requests" => {
                    options.ab_requests = number("--ab-requests", args.next(), 1) as u64;
                }
                "--idle" => options.idle = number("--idle", args.next(), 0),
                "--stalled" => options.stalled = number("--stalled", args.next(), 0),
                other => usage(&format!("unknown argument {other:?}")),
            }
        }
        // wrk refuses fewer connections than threads.
        options.threads = options.threads.min(options.connections);
        options
    }
}

fn usage(problem: &str) -> ! {
    panic!(
        "{problem}\nusage: cargo bench -p strongroom --bench ocsp -- [--seconds N] \
         [--connections C] [--threads T] [--ab-concurrency A] [--ab-requests R] [--idle I] \
         [--stalled S]"
    )
}

// ---------------------------------------------------------------- tools

/// The load generators and the cfssl peer.
struct Tools {
    wrk: PathBuf,
    ab: PathBuf,
    cfssl: PathBuf,
}

// ---------------------------------------------------------------- HTTP

/// One HTTP exchange's answer.
struct Answer {
    status: u16,
    /// The status line and headers.
    head: String,
    body: Vec<u8>,
}

/// Sends one request on a new connection (`Connection: close`) and reads
/// the whole answer. `target` is the request target (path and query).
fn exchange(addr: &str, method: &str, target: &str, body: Option<&[u8]>) -> Answer {
    let mut stream =
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(REQUEST_TIMEOUT_SECONDS)))
        .expect("set a read timeout");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = body {
        let _ = write!(
            request,
            "Content-Type: {OCSP_REQUEST}\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream
        .write_all(&bytes)
        .unwrap_or_else(|e| panic!("cannot send a request to {addr}: {e}"));
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .unwrap_or_else(|e| panic!("cannot read the answer of {addr}: {e}"));
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{addr} answered no HTTP response: {:?}",
                String::from_utf8_lossy(&answer)
            )
        });
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let body = answer[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{addr} answered a bad status line: {head}"));
    if let Some(length) = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    }) {
        assert_eq!(body.len(), length, "{addr} sent a short body:\n{head}");
    }
    Answer { status, head, body }
}

/// `text` with every byte outside `A-Za-z0-9-._~` percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------- inputs

/// The certificate, its issuer and the requests every server is asked.
struct Inputs {
    /// The certificate whose status is asked, PEM file.
    leaf: PathBuf,
    /// Its issuing CA, PEM file.
    issuing: PathBuf,
    /// The dev root, PEM file.
    root: PathBuf,
    /// The request without a nonce, DER (what browsers and most clients send).
    request: Vec<u8>,
    /// A request with a nonce, DER, from `openssl ocsp -reqout`.
    nonce_request: Vec<u8>,
    /// `nonce_request` without its last 16 bytes (the nonce's value).
    nonce_prefix: PathBuf,
    /// The no-nonce request as a file, for POSTs.
    request_file: PathBuf,
    /// `nonce_request` as a file, for `ab -p` and `openssl ocsp -reqin`.
    nonce_request_file: PathBuf,
    /// The throwaway P-256 responder certificate and key of the peers.
    responder_cert: PathBuf,
    responder_key: PathBuf,
}

impl Inputs {
    /// The GET request target for the no-nonce request under `prefix`
    /// (`/ocsp` for ours, empty for the peers).
    fn get_target(&self, prefix: &str) -> String {
        format!(
            "{prefix}/{}",
            percent_encode(&Base64::encode_string(&self.request))
        )
    }

    /// The nonce request with its nonce replaced by `nonce` (16 bytes).
    fn with_nonce(&self, nonce: &[u8; 16]) -> Vec<u8> {
        let mut der = self.nonce_request.clone();
        let at = der.len() - 16;
        der[at..].copy_from_slice(nonce);
        der
    }
}

/// Which request a response answers, for checking it.
enum Asked<'a> {
    /// The no-nonce request.
    NoNonce,
    /// A request with a nonce (DER file): the response must echo it.
    Nonce(&'a Path),
}

/// Whom a response's signature must lead to.
enum Trust<'a> {
    /// Ours: the issuing CA itself or a responder certificate it issued,
    /// verified up to the dev root (`-CAfile root -verify_other issuing`).
    DevRoot,
    /// A peer's throwaway responder certificate, trusted as such (`-VAfile`).
    Responder(&'a Path),
}

/// `openssl ocsp -respin` accepts `response`: signature (trusted as
/// `trust` says), status good, and the nonce when one was asked. Returns the
/// body length.
fn check_response(
    inputs: &Inputs,
    dir: &Path,
    what: &str,
    answer: &Answer,
    trust: Trust<'_>,
    asked: Asked<'_>,
) -> usize {
    assert_eq!(
        answer.status, 200,
        "{what}: HTTP {} instead of 200:\n{}",
        answer.status, answer.head
    );
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/ocsp-response"),
        "{what}: not an OCSP response:\n{}",
        answer.head
    );
    let file = dir.join(format!(
        "{}.der",
        what.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    ));
    std::fs::write(&file, &answer.body).expect("write a sample response");
    let trust_args = match trust {
        Trust::DevRoot => vec![
            "-CAfile",
            p(&inputs.root),
            "-verify_other",
            p(&inputs.issuing),
        ],
        Trust::Responder(signer) => vec!["-VAfile", p(signer)],
    };
    let openssl = |extra: &[&str]| -> (bool, String) {
        let out = Command::new("openssl")
            .args(["ocsp", "-respin", p(&file)])
            .args(&trust_args)
            .args(extra)
            .output()
            .expect("run openssl ocsp");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.status.success() && text.contains("Response verify OK"),
            text,
        )
    };
    // The signature and the certificate's status.
    let (verified, text) = openssl(&[
        "-issuer",
        p(&inputs.issuing),
        "-cert",
        p(&inputs.leaf),
        "-no_nonce",
    ]);
    assert!(
        verified && text.contains(&format!("{}: good", p(&inputs.leaf))),
        "{what}: openssl ocsp does not accept the response:\n{text}"
    );
    // The nonce, against the request itself (openssl compares the nonce only
    // with -reqin and without -cert, which would build a request of its own).
    if let Asked::Nonce(request) = asked {
        let (verified, text) = openssl(&["-reqin", p(request)]);
        // openssl warns of a missing nonce and fails on a different one.
        assert!(
            verified && !text.to_ascii_lowercase().contains("nonce"),
            "{what}: the response does not carry the request's nonce:\n{text}"
        );
    }
    eprintln!(
        "{what}: openssl ocsp -respin accepts the response ({} bytes, status good{})",
        answer.body.len(),
        if matches!(asked, Asked::Nonce(_)) {
            ", nonce echoed"
        } else {
            ""
        }
    );
    answer.body.len()
}

// ---------------------------------------------------------------- load generators

/// What one measurement found.
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// Server CPU time per response, when known.
    cpu_per_response: Option<Duration>,
}

/// One line of the table.
struct Row {
    server: String,
    request: &'static str,
    generator: String,
    figures: Figures,
    /// The checked response's body length.
    response_bytes: usize,
    /// Which ratio this row takes part in.
    id: RowId,
}

impl Row {
    /// `server`'s row for `request` (its label and checked response size).
    fn new(
        server: &str,
        (request, response_bytes): (&'static str, usize),
        generator: &str,
        figures: Figures,
        id: RowId,
    ) -> Row {
        Row {
            server: server.to_string(),
            request,
            generator: generator.to_string(),
            figures,
            response_bytes,
            id,
        }
    }
}

/// Rows the ratios refer to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowId {
    OursWrkGet,
    OursWrkGetIdle,
    OursWrkPost,
    OursWrkLive,
    OursAbGet,
    OursAbLive,
    OpensslAbGet,
    OpensslMultiAbGet,
    OpensslAbLive,
    CfsslWrkPost,
}

/// The `done` callback every `wrk` script ends with: one machine-readable line.
const WRK_REPORT: &str = r#"
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.bytes, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// A Lua long string holding `path`.
fn lua_path(path: &Path) -> String {
    format!("[==[{}]==]", p(path))
}

/// A `wrk` load: a URL and a script.
struct WrkLoad<'a> {
    url: String,
    script: &'a Path,
}

/// A `wrk` script that sends the same POST body (`body`) every time.
fn wrk_post_script(dir: &Path, name: &str, body: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.lua"));
    let script = format!(
        "wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"{OCSP_REQUEST}\"\n\
         local f = assert(io.open({}, \"rb\"))\n\
         wrk.body = f:read(\"*a\")\n\
         f:close()\n{WRK_REPORT}",
        lua_path(body)
    );
    std::fs::write(&path, script).expect("write a wrk script");
    path
}

/// A `wrk` script that sends plain GETs (the URL's).
fn wrk_get_script(dir: &Path) -> PathBuf {
    let path = dir.join("get.lua");
    std::fs::write(&path, WRK_REPORT).expect("write a wrk script");
    path
}

/// A `wrk` script that POSTs openssl's nonce request with a fresh nonce per
/// request: 16 ASCII hex digits, 4 naming the thread and 12 counting.
fn wrk_nonce_script(dir: &Path, prefix: &Path) -> PathBuf {
    let path = dir.join("nonce.lua");
    let script = format!(
        "local threads = 0\n\
         function setup(thread)\n  thread:set(\"id\", threads)\n  threads = threads + 1\nend\n\
         local f = assert(io.open({}, \"rb\"))\n\
         local prefix = f:read(\"*a\")\n\
         f:close()\n\
         local counter = 0\n\
         local headers = {{ [\"Content-Type\"] = \"{OCSP_REQUEST}\" }}\n\
         function request()\n\
           counter = counter + 1\n\
           return wrk.format(\"POST\", nil, headers, prefix .. string.format(\"%04x%012x\", id, counter))\n\
         end\n{WRK_REPORT}",
        lua_path(prefix)
    );
    std::fs::write(&path, script).expect("write a wrk script");
    path
}

impl Bench {
    /// Runs `wrk` for `duration`; returns the figures (CPU from `server`).
    fn wrk(
        &self,
        what: &str,
        load: &WrkLoad<'_>,
        duration: Duration,
        server: &ChildGuard,
        response_bytes: usize,
    ) -> Figures {
        let cpu_before = server.cpu_time();
        let out = run(
            p(&self.tools.wrk),
            &[
                "-t",
                &self.options.threads.to_string(),
                "-c",
                &self.options.connections.to_string(),
                "-d",
                &format!("{}s", duration.as_secs()),
                "--timeout",
                &format!("{REQUEST_TIMEOUT_SECONDS}s"),
                "-s",
                p(load.script),
                &load.url,
            ],
        );
        let cpu = server.cpu_time() - cpu_before;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .unwrap_or_else(|| panic!("{what}: wrk printed no result:\n{text}"));
        let field = |name: &str| -> u64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what}: no {name} in wrk's result {line}"))
        };
        let requests = field("requests");
        let bytes = field("bytes");
        let errors = [
            ("connect", field("connect")),
            ("read", field("read")),
            ("write", field("write")),
            ("status (non-2xx/3xx)", field("status")),
            ("timeout", field("timeout")),
        ];
        let failed: Vec<String> = errors
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        assert!(
            failed.is_empty(),
            "{what}: wrk saw errors ({}) in {requests} requests, so the run does not count:\n{text}",
            failed.join(", ")
        );
        assert!(requests > 0, "{what}: wrk completed no request:\n{text}");
        let per_response = bytes as f64 / requests as f64;
        // Each response carries the checked body plus headers.
        assert!(
            per_response >= response_bytes as f64 - 4.0
                && per_response <= response_bytes as f64 + 1024.0,
            "{what}: wrk read {per_response:.0} bytes per response, but the checked response \
             has a {response_bytes}-byte body"
        );
        let elapsed = Duration::from_micros(field("duration_us"));
        Figures {
            per_second: requests as f64 / elapsed.as_secs_f64(),
            p50: Duration::from_micros(field("p50_us")),
            p99: Duration::from_micros(field("p99_us")),
            cpu_per_response: Some(cpu.div_f64(requests as f64)),
        }
    }

    /// A warm-up, then a measured `wrk` run.
    fn measure_wrk(
        &self,
        what: &str,
        load: &WrkLoad<'_>,
        server: &mut ChildGuard,
        response_bytes: usize,
    ) -> Figures {
        eprintln!("{what}: warming up for {WARM_UP:?}...");
        self.wrk(what, load, WARM_UP, server, response_bytes);
        eprintln!(
            "{what}: wrk -t{} -c{} for {} s...",
            self.options.threads, self.options.connections, self.options.seconds
        );
        let figures = self.wrk(
            what,
            load,
            Duration::from_secs(self.options.seconds),
            server,
            response_bytes,
        );
        server.assert_running();
        report_progress(what, &figures);
        figures
    }

    /// Runs `ab -n requests` (POSTing `post` when given). A request count,
    /// not `ab -t`: when its time is up, ab drops connections it opened
    /// without sending a request, and `openssl ocsp -port` then hangs.
    fn ab(
        &self,
        what: &str,
        url: &str,
        post: Option<&Path>,
        requests: u64,
        server: &ChildGuard,
        response_bytes: usize,
    ) -> Result<Figures, String> {
        let csv = self.work.join(format!(
            "ab-{}.csv",
            what.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        ));
        let requests = requests.to_string();
        let concurrency = self.options.ab_concurrency.to_string();
        let timeout = REQUEST_TIMEOUT_SECONDS.to_string();
        let mut args = vec![
            "-q",
            "-l",
            "-s",
            &timeout,
            "-n",
            &requests,
            "-c",
            &concurrency,
            "-e",
            p(&csv),
        ];
        if let Some(body) = post {
            args.extend(["-p", p(body), "-T", OCSP_REQUEST]);
        }
        args.push(url);
        let cpu_before = server.cpu_time();
        let out = Command::new(&self.tools.ab)
            .args(&args)
            .output()
            .expect("run ab");
        let cpu = server.cpu_time() - cpu_before;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "ab {args:?} failed ({}): {text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let value = |label: &str| -> Option<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(label))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        };
        let complete = value("Complete requests:")
            .unwrap_or_else(|| panic!("{what}: ab printed no count:\n{text}"));
        let failed = value("Failed requests:").unwrap_or(0.0);
        let non_2xx = value("Non-2xx responses:").unwrap_or(0.0);
        assert!(
            complete > 0.0 && failed == 0.0 && non_2xx == 0.0,
            "{what}: ab saw {failed} failed and {non_2xx} non-2xx of {complete} requests, \
             so the run does not count:\n{text}"
        );
        let body = value("HTML transferred:").unwrap_or(0.0) / complete;
        // ECDSA signatures vary the DER length by a byte or two.
        assert!(
            (body - response_bytes as f64).abs() <= 4.0,
            "{what}: ab read {body:.1} body bytes per response, but the checked response \
             has {response_bytes}:\n{text}"
        );
        let per_second = value("Requests per second:")
            .unwrap_or_else(|| panic!("{what}: ab printed no rate:\n{text}"));
        let percentiles = std::fs::read_to_string(&csv).expect("read ab's percentiles");
        let at = |percent: &str| -> Duration {
            percentiles
                .lines()
                .find_map(|l| l.strip_prefix(percent)?.strip_prefix(','))
                .and_then(|ms| ms.trim().parse::<f64>().ok())
                .map(|ms| Duration::from_secs_f64(ms / 1000.0))
                .unwrap_or_else(|| panic!("{what}: no {percent} % line in ab's percentiles"))
        };
        Ok(Figures {
            per_second,
            p50: at("50"),
            p99: at("99"),
            cpu_per_response: Some(cpu.div_f64(complete)),
        })
    }

    /// A warm-up, then a measured `ab` run.
    fn measure_ab(
        &self,
        what: &str,
        url: &str,
        post: Option<&Path>,
        server: &mut ChildGuard,
        response_bytes: usize,
    ) -> Result<Figures, String> {
        let requests = self.options.ab_requests;
        let warm_up = (requests / 10).max(1);
        eprintln!("{what}: warming up with {warm_up} requests...");
        self.ab(what, url, post, warm_up, server, response_bytes)?;
        eprintln!(
            "{what}: ab -n {requests} -c {}...",
            self.options.ab_concurrency
        );
        let figures = self.ab(what, url, post, requests, server, response_bytes)?;
        server.assert_running();
        report_progress(what, &figures);
        Ok(figures)
    }

    fn wrk_label(&self) -> String {
        format!(
            "wrk -t{} -c{} (keep-alive)",
            self.options.threads, self.options.connections
        )
    }

    fn ab_label(&self) -> String {
        format!(
            "ab -n {} -c {} (new connection per request)",
            self.options.ab_requests, self.options.ab_concurrency
        )
    }
}

fn report_progress(what: &str, figures: &Figures) {
    eprintln!(
        "{what}: {} responses/s, p50 {:.2} ms, p99 {:.2} ms",
        thousands(figures.per_second),
        ms(figures.p50),
        ms(figures.p99)
    );
}

// ---------------------------------------------------------------- the servers

/// One benchmark run's settings and tools.
struct Bench {
    options: Options,
    tools: Tools,
    work: PathBuf,
}

/// `host:port` and path of an `http://` URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{url} is not an http:// URL"));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (host.to_string(), path.to_string())
}

/// Silent and half-request connections held open to `addr` by a thread
/// that reopens at once any the server closes, so that they are all there for
/// the whole measurement.
struct IdleClients {
    stop: Arc<AtomicBool>,
    holder: std::thread::JoinHandle<Reopened>,
}

/// How many held connections the server closed (or answered), each reopened.
struct Reopened {
    idle: usize,
    stalled: usize,
}

/// How often the holder looks for closed connections.
const HOLDER_POLL: Duration = Duration::from_millis(100);

impl IdleClients {
    /// Opens `idle` silent connections and `stalled` that send the start of
    /// `request_head` (up to its last header, without the blank line).
    fn open(addr: &str, idle: usize, stalled: usize, request_head: &str) -> IdleClients {
        let addr = addr.to_string();
        let head = request_head.as_bytes().to_vec();
        let connect = move |half: bool| -> TcpStream {
            let mut stream = TcpStream::connect(&addr)
                .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
            if half {
                stream.write_all(&head).expect("send half a request");
            }
            stream
                .set_nonblocking(true)
                .expect("make a held connection non-blocking");
            stream
        };
        let mut held: Vec<(bool, TcpStream)> = (0..idle)
            .map(|_| (false, connect(false)))
            .chain((0..stalled).map(|_| (true, connect(true))))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let holder = std::thread::spawn(move || {
            let mut reopened = Reopened {
                idle: 0,
                stalled: 0,
            };
            while !stopped.load(Ordering::Relaxed) {
                for (half, stream) in &mut held {
                    let mut byte = [0u8; 1];
                    let open = matches!(
                        stream.read(&mut byte),
                        Err(e) if e.kind() == ErrorKind::WouldBlock
                    );
                    if !open {
                        *stream = connect(*half);
                        if *half {
                            reopened.stalled += 1;
                        } else {
                            reopened.idle += 1;
                        }
                    }
                }
                std::thread::sleep(HOLDER_POLL);
            }
            reopened
        });
        // Let the server accept them before the load starts.
        std::thread::sleep(Duration::from_millis(500));
        IdleClients { stop, holder }
    }

    /// Closes them all; says how many the server had closed meanwhile.
    fn close(self) -> Reopened {
        self.stop.store(true, Ordering::Relaxed);
        self.holder
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Bench {
    /// Starts the appliance, issues the certificate, writes the inputs, and
    /// measures the appliance.
    fn strongroom(&self, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Inputs {
        eprintln!("starting strongroom dev ({BIN})...");
        let (mut appliance, banner) =
            start_appliance(&self.work.join("dev"), self.work.join("strongroom.log"));
        let inputs = self.inputs(&mut appliance, &banner);
        let ocsp_url = run(
            "openssl",
            &["x509", "-in", p(&inputs.leaf), "-noout", "-ocsp_uri"],
        );
        let ocsp_url = String::from_utf8_lossy(&ocsp_url.stdout).trim().to_string();
        let (addr, path) = split_url(&ocsp_url);
        let path = path.trim_end_matches('/').to_string();
        eprintln!("strongroom: the certificate names the OCSP responder {ocsp_url}");
        let dir = self.work.join("samples");
        std::fs::create_dir_all(&dir).expect("create the sample directory");

        // One response of each kind, checked.
        let get_target = inputs.get_target(&path);
        let answer = exchange(&addr, "GET", &get_target, None);
        let get_bytes = check_response(
            &inputs,
            &dir,
            "strongroom GET",
            &answer,
            Trust::DevRoot,
            Asked::NoNonce,
        );
        let post_target = if path.is_empty() { "/" } else { &path };
        let answer = exchange(&addr, "POST", post_target, Some(&inputs.request));
        let post_bytes = check_response(
            &inputs,
            &dir,
            "strongroom POST",
            &answer,
            Trust::DevRoot,
            Asked::NoNonce,
        );
        let nonce = *b"0123456789abcdef";
        let fresh = dir.join("fresh-nonce-request.der");
        std::fs::write(&fresh, inputs.with_nonce(&nonce)).expect("write a request");
        let answer = exchange(&addr, "POST", post_target, Some(&inputs.with_nonce(&nonce)));
        let live_bytes = check_response(
            &inputs,
            &dir,
            "strongroom POST with a fresh nonce",
            &answer,
            Trust::DevRoot,
            Asked::Nonce(&fresh),
        );
        let answer = exchange(&addr, "POST", post_target, Some(&inputs.nonce_request));
        check_response(
            &inputs,
            &dir,
            "strongroom POST with openssl's nonce",
            &answer,
            Trust::DevRoot,
            Asked::Nonce(&inputs.nonce_request_file),
        );

        let scripts = self.work.join("wrk");
        std::fs::create_dir_all(&scripts).expect("create the script directory");
        let get = WrkLoad {
            url: format!("http://{addr}{get_target}"),
            script: &wrk_get_script(&scripts),
        };
        let post_script = wrk_post_script(&scripts, "post", &inputs.request_file);
        let post = WrkLoad {
            url: format!("http://{addr}{post_target}"),
            script: &post_script,
        };
        let nonce_script = wrk_nonce_script(&scripts, &inputs.nonce_prefix);
        let live = WrkLoad {
            url: format!("http://{addr}{post_target}"),
            script: &nonce_script,
        };
        let wrk = self.wrk_label();
        let ab = self.ab_label();
        let cached_get = ("GET, no nonce (cached)", get_bytes);
        // Adds one of the appliance's rows.
        let mut add = |asked, generator: &str, figures, id| {
            rows.push(Row::new("strongroom", asked, generator, figures, id));
        };

        let figures = self.measure_wrk("strongroom GET", &get, &mut appliance, get_bytes);
        add(cached_get, &wrk, figures, RowId::OursWrkGet);

        let (idle, stalled) = (self.options.idle, self.options.stalled);
        eprintln!(
            "strongroom: holding {idle} idle connections and {stalled} that sent half a request..."
        );
        let half = format!("GET {get_target} HTTP/1.1\r\nHost: {addr}\r\n");
        let held = IdleClients::open(&addr, idle, stalled, &half);
        let what = "strongroom GET with idle clients";
        let figures = self.measure_wrk(what, &get, &mut appliance, get_bytes);
        let reopened = held.close();
        notes.push(format!(
            "Idle clients: {idle} silent connections and {stalled} that had sent half a request \
             were held open for the whole measurement with them ({} s of warm-up and {} s): a \
             thread reopened at once each that the appliance closed (it closed {} silent and {} \
             half-request ones).",
            WARM_UP.as_secs(),
            self.options.seconds,
            reopened.idle,
            reopened.stalled
        ));
        eprintln!(
            "strongroom: the appliance closed {} idle and {} stalled connections meanwhile \
             (each reopened)",
            reopened.idle, reopened.stalled
        );
        let generator = format!("{wrk} + {idle} idle + {stalled} half-request connections");
        add(cached_get, &generator, figures, RowId::OursWrkGetIdle);

        let figures = self.measure_wrk("strongroom POST", &post, &mut appliance, post_bytes);
        let cached_post = ("POST, no nonce (cached)", post_bytes);
        add(cached_post, &wrk, figures, RowId::OursWrkPost);

        let what = "strongroom POST with fresh nonces";
        let figures = self.measure_wrk(what, &live, &mut appliance, live_bytes);
        let fresh_nonces = ("POST, fresh nonce each (live-signed)", live_bytes);
        add(fresh_nonces, &wrk, figures, RowId::OursWrkLive);

        let url = format!("http://{addr}{get_target}");
        let figures = self
            .measure_ab("strongroom GET (ab)", &url, None, &mut appliance, get_bytes)
            .unwrap_or_else(|e| panic!("strongroom GET (ab): {e}"));
        add(cached_get, &ab, figures, RowId::OursAbGet);

        let url = format!("http://{addr}{post_target}");
        let figures = self
            .measure_ab(
                "strongroom POST with a nonce (ab)",
                &url,
                Some(&inputs.nonce_request_file),
                &mut appliance,
                live_bytes,
            )
            .unwrap_or_else(|e| panic!("strongroom POST with a nonce (ab): {e}"));
        let one_nonce = ("POST, one nonce (live-signed)", live_bytes);
        add(one_nonce, &ab, figures, RowId::OursAbLive);
        appliance.stop();
        inputs
    }

    /// Issues the certificate with the CLI and writes every input file.
    fn inputs(&self, appliance: &mut ChildGuard, banner: &Banner) -> Inputs {
        let dir = self.work.join("inputs");
        std::fs::create_dir_all(&dir).expect("create the input directory");
        let (leaf, key) = (dir.join("leaf.pem"), dir.join("leaf.key"));
        // The banner comes before the listeners serve: retry until the CLI gets through.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let _ = std::fs::remove_file(&leaf);
            let _ = std::fs::remove_file(&key);
            let out = Command::new(BIN)
                .args(["cert", "issue", "--profile", "server", "--cn", LEAF_NAME])
                .args([
                    "--san",
                    LEAF_NAME,
                    "--out-cert",
                    p(&leaf),
                    "--out-key",
                    p(&key),
                ])
                .env("STRONGROOM_ADDR", &banner.grpc)
                .env("STRONGROOM_CACERT", &banner.root)
                .env("STRONGROOM_CLIENT_CERT", &banner.client_cert)
                .env("STRONGROOM_CLIENT_KEY", &banner.client_key)
                .output()
                .expect("run strongroom cert issue");
            if out.status.success() {
                break;
            }
            appliance.assert_running();
            assert!(
                Instant::now() < deadline,
                "strongroom cert issue failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("strongroom cert issue: issued {LEAF_NAME}");

        let (issuing_addr, issuing_path) = split_url(&banner.issuing_url);
        let answer = exchange(&issuing_addr, "GET", &issuing_path, None);
        assert_eq!(
            answer.status, 200,
            "GET {}: {}",
            banner.issuing_url, answer.head
        );
        let issuing_der = dir.join("issuing.der");
        let issuing = dir.join("issuing.pem");
        std::fs::write(&issuing_der, &answer.body).expect("write the issuing CA");
        run(
            "openssl",
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                p(&issuing_der),
                "-out",
                p(&issuing),
            ],
        );
        let root = dir.join("root.pem");
        std::fs::copy(&banner.root, &root).expect("copy the dev root");
        run(
            "openssl",
            &[
                "verify",
                "-CAfile",
                p(&root),
                "-untrusted",
                p(&issuing),
                p(&leaf),
            ],
        );

        let request_file = dir.join("request.der");
        let nonce_request_file = dir.join("nonce-request.der");
        for (file, nonce) in [(&request_file, false), (&nonce_request_file, true)] {
            let mut args = vec!["ocsp", "-issuer", p(&issuing), "-cert", p(&leaf)];
            if !nonce {
                args.push("-no_nonce");
            }
            args.extend(["-reqout", p(file)]);
            run("openssl", &args);
        }
        let request = std::fs::read(&request_file).expect("read the request");
        let nonce_request = std::fs::read(&nonce_request_file).expect("read the nonce request");
        // openssl puts the nonce extension last: OCTET STRING (16 bytes) inside
        // the extension's OCTET STRING, so the value is the last 16 bytes.
        let n = nonce_request.len();
        assert!(
            n > 18 && nonce_request[n - 18..n - 16] == [0x04, 0x10],
            "openssl's nonce request does not end with a 16-byte nonce"
        );
        let nonce_prefix = dir.join("nonce-prefix.der");
        std::fs::write(&nonce_prefix, &nonce_request[..n - 16]).expect("write the nonce prefix");

        // The peers' throwaway responder: self-signed P-256, OCSP signing.
        let (responder_cert, responder_key) =
            (dir.join("responder.pem"), dir.join("responder.key"));
        run(
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
                p(&responder_key),
                "-out",
                p(&responder_cert),
                "-subj",
                "/CN=Strongroom bench throwaway OCSP responder",
                "-days",
                "30",
                "-addext",
                "extendedKeyUsage=OCSPSigning",
            ],
        );
        Inputs {
            leaf,
            issuing,
            root,
            request,
            nonce_request,
            nonce_prefix,
            request_file,
            nonce_request_file,
            responder_cert,
            responder_key,
        }
    }

    /// `openssl ocsp -port` on the same certificate: one process, then `-multi 2`.
    fn openssl(&self, inputs: &Inputs, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
        let dir = self.work.join("openssl");
        std::fs::create_dir_all(&dir).expect("create the openssl directory");
        let serial = run(
            "openssl",
            &["x509", "-in", p(&inputs.leaf), "-noout", "-serial"],
        );
        let serial = String::from_utf8_lossy(&serial.stdout);
        let serial = serial
            .trim()
            .strip_prefix("serial=")
            .expect("openssl x509 -serial prints serial=");
        // openssl looks serials up as BN_bn2hex prints them: no leading zero bytes.
        let mut serial = serial.to_ascii_uppercase();
        while serial.len() > 2 && serial.starts_with("00") {
            serial.drain(..2);
        }
        let index = dir.join("index.txt");
        std::fs::write(
            &index,
            format!("V\t491231235959Z\t\t{serial}\tunknown\t/CN={LEAF_NAME}\n"),
        )
        .expect("write index.txt");

        for workers in [1usize, 2] {
            let name = if workers == 1 {
                "`openssl ocsp -port`".to_string()
            } else {
                format!("`openssl ocsp -port -multi {workers}`")
            };
            let start = || start_openssl(&dir, &index, inputs, workers);
            let (mut server, mut addr) = start();
            let target = inputs.get_target("");
            // Checks the answer to the no-nonce GET or, with `nonce`, to the POST
            // with a nonce, then measures that request under ab.
            let mut check_and_measure =
                |nonce: bool, server: &mut ChildGuard, addr: &mut String| {
                    let file = &inputs.nonce_request_file;
                    let (kind, answer, asked) = if nonce {
                        let answer = exchange(addr, "POST", "/", Some(&inputs.nonce_request));
                        ("POST with a nonce", answer, Asked::Nonce(file))
                    } else {
                        ("GET", exchange(addr, "GET", &target, None), Asked::NoNonce)
                    };
                    let what = format!("{name} {kind}");
                    let trust = Trust::Responder(&inputs.responder_cert);
                    let bytes = check_response(inputs, &dir, &what, &answer, trust, asked);
                    let path = if nonce { "/" } else { &target };
                    let figures = self.measure_peer_ab(
                        &format!("{what} (ab)"),
                        |addr| format!("http://{addr}{path}"),
                        nonce.then_some(file.as_path()),
                        (server, addr),
                        &start,
                        bytes,
                        notes,
                    );
                    (figures, bytes)
                };
            let (figures, get_bytes) = check_and_measure(false, &mut server, &mut addr);
            let signed_get = ("GET, no nonce (signs every response)", get_bytes);
            let id = if workers == 1 {
                RowId::OpensslAbGet
            } else {
                RowId::OpensslMultiAbGet
            };
            rows.push(Row::new(&name, signed_get, &self.ab_label(), figures, id));
            if workers == 1 {
                let (figures, live_bytes) = check_and_measure(true, &mut server, &mut addr);
                let one_nonce = ("POST, one nonce (live-signed)", live_bytes);
                let id = RowId::OpensslAbLive;
                rows.push(Row::new(&name, one_nonce, &self.ab_label(), figures, id));
            }
            server.stop();
        }
    }

    /// [`Bench::measure_ab`] against a peer that may stop answering
    /// (`openssl ocsp -port` now and then does under ab, until restarted):
    /// when ab times out waiting for it, the peer is restarted with `start`
    /// and measured again, up to [`PEER_ATTEMPTS`] times, and a note says so.
    #[allow(clippy::too_many_arguments)]
    fn measure_peer_ab(
        &self,
        what: &str,
        url: impl Fn(&str) -> String,
        post: Option<&Path>,
        (server, addr): (&mut ChildGuard, &mut String),
        start: &dyn Fn() -> (ChildGuard, String),
        response_bytes: usize,
        notes: &mut Vec<String>,
    ) -> Figures {
        let mut attempt = 1;
        loop {
            match self.measure_ab(what, &url(addr), post, server, response_bytes) {
                Ok(figures) => return figures,
                Err(error) if attempt < PEER_ATTEMPTS && error.contains(AB_TIMED_OUT) => {
                    eprintln!(
                        "{what}: the server stopped answering (ab timed out after \
                         {REQUEST_TIMEOUT_SECONDS} s); restarting it and measuring again"
                    );
                    notes.push(format!(
                        "{what}: the server stopped answering in attempt {attempt} (ab waited \
                         {REQUEST_TIMEOUT_SECONDS} s for any response); it was restarted and \
                         measured again from the start, and the table shows that complete run."
                    ));
                    server.stop();
                    (*server, *addr) = start();
                    attempt += 1;
                }
                Err(error) => panic!("{what}: {error}"),
            }
        }
    }
    /// `cfssl ocspserve` with a response pre-signed by `cfssl ocspsign`.
    fn cfssl(&self, inputs: &Inputs, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
        let dir = self.work.join("cfssl");
        std::fs::create_dir_all(&dir).expect("create the cfssl directory");
        let cfssl = p(&self.tools.cfssl);
        let signed = run(
            cfssl,
            &[
                "ocspsign",
                "-ca",
                p(&inputs.issuing),
                "-responder",
                p(&inputs.responder_cert),
                "-responder-key",
                p(&inputs.responder_key),
                "-cert",
                p(&inputs.leaf),
                "-status",
                "good",
                "-loglevel",
                "2",
            ],
        );
        let signed: serde_json::Value =
            serde_json::from_slice(&signed.stdout).expect("cfssl ocspsign prints JSON");
        let response = signed["ocspResponse"]
            .as_str()
            .expect("cfssl ocspsign printed no ocspResponse");
        let responses = dir.join("responses.txt");
        std::fs::write(&responses, format!("{response}\n")).expect("write the responses file");

        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        eprintln!("starting cfssl ocspserve on {addr}...");
        let mut command = Command::new(cfssl);
        command
            .args([
                "ocspserve",
                "-address",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ])
            .args(["-responses", p(&responses)])
            // Warnings only, like the appliance's default: no log line per request.
            .args(["-loglevel", "2"])
            .stdout(Stdio::null());
        let mut server = ChildGuard::spawn("cfssl ocspserve", &mut command, dir.join("serve.log"));
        server.wait_listening(&addr);

        let get = exchange(&addr, "GET", &inputs.get_target(""), None);
        if get.status == 200 {
            check_response(
                inputs,
                &dir,
                "cfssl ocspserve GET",
                &get,
                Trust::Responder(&inputs.responder_cert),
                Asked::NoNonce,
            );
            notes.push("cfssl ocspserve answered the GET request too (measured with POST).".into());
        } else {
            eprintln!(
                "cfssl ocspserve answered GET with HTTP {}: measuring it with POST",
                get.status
            );
            notes.push(format!(
                "cfssl ocspserve {} answers `GET /<base64 request>` with HTTP {}: this version \
                 base64-decodes the URL path with its leading `/`. It is measured with the same \
                 request as a POST, next to our cached POST.",
                stdout_of(cfssl, &["version"])
                    .lines()
                    .find_map(|l| l.strip_prefix("Version: "))
                    .unwrap_or("unknown version"),
                get.status
            ));
        }
        let answer = exchange(&addr, "POST", "/", Some(&inputs.request));
        let post_bytes = check_response(
            inputs,
            &dir,
            "cfssl ocspserve POST",
            &answer,
            Trust::Responder(&inputs.responder_cert),
            Asked::NoNonce,
        );
        let script = wrk_post_script(&dir, "post", &inputs.request_file);
        let load = WrkLoad {
            url: format!("http://{addr}/"),
            script: &script,
        };
        let figures = self.measure_wrk("cfssl ocspserve POST", &load, &mut server, post_bytes);
        let pre_signed = ("POST, no nonce (pre-signed)", post_bytes);
        rows.push(Row::new(
            "`cfssl ocspserve`",
            pre_signed,
            &self.wrk_label(),
            figures,
            RowId::CfsslWrkPost,
        ));
        server.stop();
    }
}

/// Starts `openssl ocsp -port` with `workers` processes on a free port;
/// returns it and its `127.0.0.1:port`.
fn start_openssl(
    dir: &Path,
    index: &Path,
    inputs: &Inputs,
    workers: usize,
) -> (ChildGuard, String) {
    let port = free_port();
    // OpenSSL 3.0's -port takes only a number: it listens on every address.
    let addr = format!("127.0.0.1:{port}");
    eprintln!("starting openssl ocsp -port {port} ({workers} process(es))...");
    let mut command = Command::new("openssl");
    command
        .args(["ocsp", "-index", p(index), "-port", &port.to_string()])
        .args(["-CA", p(&inputs.issuing)])
        .args(["-rsigner", p(&inputs.responder_cert)])
        .args(["-rkey", p(&inputs.responder_key)])
        .args(["-resp_key_id", "-nmin", "60"]);
    if workers > 1 {
        command.args(["-multi", &workers.to_string()]);
    }
    // It prints `ACCEPT [::]:port` once it listens. (No probe connection:
    // one that closes without a request hangs it.)
    let out = dir.join(format!("ocsp-{workers}-{port}.out"));
    command.stdout(std::fs::File::create(&out).expect("create openssl's output file"));
    let mut server = ChildGuard::spawn(
        "openssl ocsp -port",
        &mut command,
        dir.join(format!("ocsp-{workers}-{port}.log")),
    );
    // With -multi its parent ignores SIGTERM.
    server.grace = Duration::from_secs(2);
    server.wait_for_output(&out, "ACCEPT");
    (server, addr)
}

// ---------------------------------------------------------------- report

/// What the figures were measured on: the machine and the load generators.
struct Facts {
    machine: Machine,
    wrk: String,
    ab: String,
}

impl Facts {
    /// The [`Machine`] facts, `wrk --version` and `ab -V`.
    fn describe(tools: &Tools) -> Facts {
        let wrk = stdout_of(p(&tools.wrk), &["--version"]);
        let ab = stdout_of(p(&tools.ab), &["-V"]);
        Facts {
            machine: Machine::describe(&tools.cfssl),
            wrk: wrk
                .split_whitespace()
                .nth(1)
                .unwrap_or("unknown")
                .to_string(),
            ab: ab
                .split("Version ")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("unknown")
                .to_string(),
        }
    }
}

fn print_report(
    facts: &Facts,
    options: &Options,
    rows: &[Row],
    notes: &[String],
    hsm_1t: f64,
    hsm_2t: f64,
) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}, wrk {}, ab {}.",
        facts.machine, facts.wrk, facts.ab,
    );
    let _ = writeln!(
        out,
        "Load: wrk rows {} s measured after a {} s warm-up; ab rows `ab -n {} -c {}` after {} \
         requests to warm up. The load generator shares the {} CPUs with the server under test. \
         Every response under load was a 2xx of the checked response's size.",
        options.seconds,
        WARM_UP.as_secs(),
        options.ab_requests,
        options.ab_concurrency,
        (options.ab_requests / 10).max(1),
        facts.machine.cpus,
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| server | request | load generator | responses/s | p50 | p99 | server CPU / response | response bytes |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let f = &row.figures;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} ms | {:.2} ms | {} | {} |",
            row.server,
            row.request,
            row.generator,
            thousands(f.per_second),
            ms(f.p50),
            ms(f.p99),
            f.cpu_per_response.map_or_else(
                || "n/a".into(),
                |d| format!("{:.1} µs", d.as_secs_f64() * 1e6)
            ),
            row.response_bytes,
        );
    }
    let _ = writeln!(
        out,
        "| raw HSM P-256 signatures, 1 thread (SoftHSM2 via strongroom-hsm) | | | {} sig/s | | | | |",
        thousands(hsm_1t)
    );
    let _ = writeln!(
        out,
        "| raw HSM P-256 signatures, 2 threads | | | {} sig/s | | | | |",
        thousands(hsm_2t)
    );

    let rate = |id: RowId| {
        rows.iter()
            .find(|r| r.id == id)
            .map_or(f64::NAN, |r| r.figures.per_second)
    };
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    let _ = writeln!(out);
    let _ = writeln!(out, "| ratio | value | aim | |");
    let _ = writeln!(out, "|---|---:|---:|---|");
    let ours_wrk = rate(RowId::OursWrkGet);
    let _ = writeln!(
        out,
        "| strongroom cached GET under wrk, responses/s | {} | ≥ {} | {} |",
        thousands(ours_wrk),
        thousands(AIM_WRK),
        verdict(ours_wrk >= AIM_WRK)
    );
    let ab_ratio = rate(RowId::OursAbGet) / rate(RowId::OpensslAbGet);
    let _ = writeln!(
        out,
        "| strongroom / `openssl ocsp -port`, same GET under the same ab | {ab_ratio:.2} | ≥ {AIM_AB_RATIO:.2} | {} |",
        verdict(ab_ratio >= AIM_AB_RATIO)
    );
    let _ = writeln!(
        out,
        "| strongroom / `openssl ocsp -port -multi 2`, same GET under the same ab | {:.2} | | |",
        rate(RowId::OursAbGet) / rate(RowId::OpensslMultiAbGet)
    );
    let idle_ratio = rate(RowId::OursWrkGetIdle) / ours_wrk;
    let _ = writeln!(
        out,
        "| strongroom under wrk with {} idle + {} half-request connections held / without | {idle_ratio:.2} | ≥ {AIM_IDLE_RATIO:.2} | {} |",
        options.idle,
        options.stalled,
        verdict(idle_ratio >= AIM_IDLE_RATIO)
    );
    let _ = writeln!(
        out,
        "| strongroom cached POST / `cfssl ocspserve` (pre-signed), same POST under wrk | {:.2} | | |",
        rate(RowId::OursWrkPost) / rate(RowId::CfsslWrkPost)
    );
    let live = rate(RowId::OursWrkLive);
    let _ = writeln!(
        out,
        "| strongroom live-signed (fresh nonces, wrk) / raw HSM 1 thread | {:.1} % | | |",
        100.0 * live / hsm_1t
    );
    let _ = writeln!(
        out,
        "| strongroom live-signed (fresh nonces, wrk) / raw HSM 2 threads | {:.1} % | | |",
        100.0 * live / hsm_2t
    );
    let _ = writeln!(
        out,
        "| strongroom / `openssl ocsp -port`, same POST with a nonce under the same ab | {:.2} | | |",
        rate(RowId::OursAbLive) / rate(RowId::OpensslAbLive)
    );
    if !notes.is_empty() {
        let _ = writeln!(out);
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    print!("{out}");
}
