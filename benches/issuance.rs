//! Certificate issuance throughput of the real appliance over gRPC, measured
//! against the physical limit (raw HSM signatures) and a peer (`cfssl serve`)
//! in the same run, on the same machine, with the same load generator.
//!
//! ```text
//! cargo bench -p strongroom --bench issuance [-- --seconds N] [--concurrency C] [--connections K]
//! ```
//!
//! `--seconds N`: each measurement (default 10), after a 2 s warm-up.
//! `--concurrency C`: client tasks sending requests back to back, the same
//! for both servers (default 64). `--connections K`: HTTP/2 connections the
//! gRPC clients share (default 4).
//!
//! One run does, in order:
//!
//! 1. **CSRs**: 64 P-256 keys and CSRs made up front by `openssl req`
//!    (`CN=bench-N.test`, `subjectAltName=DNS:bench-N.test`), reused round-robin.
//! 2. **Raw HSM rate** (the physical limit): on a separate SoftHSM2 token, a
//!    P-256 key signs a 64-byte message through `strongroom_hsm`'s session pool
//!    (2 sessions) in a loop on 1 thread, then on 2 threads, for N seconds each.
//!    Each thread's last signature is verified.
//! 3. **Strongroom**: `strongroom dev` (the release binary cargo built) on
//!    127.0.0.1 with ephemeral ports and a fresh data directory. C client tasks
//!    share K HTTP/2 connections (tonic over TLS, trusting the dev root) and
//!    call `Ca.IssueFromCsr` (profile `server`) back to back: a warm-up, then N
//!    measured seconds. Every certificate is HSM-signed, verified, and stored.
//! 4. **cfssl**: `cfssl serve` (Debian `golang-cfssl`, installed with apt when
//!    missing; never skipped) with a P-256 CA it generates, on 127.0.0.1, its
//!    `/api/v1/cfssl/sign` endpoint driven by the same C client tasks over
//!    HTTP/1.1 keep-alive connections (one per in-flight request, as `wrk`
//!    does). Its CA key is in memory and it keeps no certificate database.
//!
//! So that a broken path cannot look fast: every request must succeed (any
//! error stops the benchmark); a few issued certificates of each server are
//! checked with `openssl verify` (ours also for their name and for the CSR's
//! public key); and the appliance's count of issued certificates must grow by
//! exactly the number of successful calls, so each acknowledged certificate is
//! in the inventory.
//!
//! Progress goes to standard error; the machine facts and a markdown table
//! (certificates/s, p50/p99 latency, server CPU time per certificate, and the
//! ratios strongroom/cfssl and strongroom/HSM) to standard output. The child
//! processes are killed when the benchmark ends, also when it panics.

mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use strongroom_proto::v1;
use strongroom_proto::v1::ca_client::CaClient;
use strongroom_proto::v1::sys_client::SysClient;
use tonic::transport::Channel;

use common::{
    BIN, Banner, ChildGuard, Machine, START_TIMEOUT, WARM_UP, cpu_time, ensure_tool, free_port, ms,
    p, raw_hsm_rate, run, start_appliance, thousands,
};

/// How many different CSRs the clients cycle through.
const CSR_COUNT: usize = 64;

/// Seconds per measurement unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 10;

/// Concurrent client tasks unless `--concurrency` says otherwise.
const DEFAULT_CONCURRENCY: usize = 64;

/// HTTP/2 connections to the appliance unless `--connections` says otherwise.
const DEFAULT_CONNECTIONS: usize = 4;

/// The longest any one request may take before the benchmark fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How many issued certificates of each server are checked with openssl.
const VERIFIED_SAMPLES: usize = 8;

fn main() {
    let options = Options::parse(std::env::args().skip(1));
    let work = tempfile::Builder::new()
        .prefix("strongroom-issuance-bench")
        .tempdir()
        .expect("create a temporary directory");
    let cfssl_bin = ensure_tool("cfssl", "golang-cfssl");
    let machine = Machine::describe(&cfssl_bin);
    let fsyncs_per_second = fsync_rate(work.path());
    eprintln!("making {CSR_COUNT} P-256 CSRs with openssl req...");
    let csrs = make_csrs(&work.path().join("csrs"));

    let seconds = Duration::from_secs(options.seconds);
    let (hsm_1t, hsm_2t) = raw_hsm_rate("bench-issuance", seconds);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the load generator's runtime");
    let ours = runtime.block_on(bench_strongroom(work.path(), &csrs, &options));
    let peer = runtime.block_on(bench_cfssl(work.path(), &cfssl_bin, &csrs, &options));
    drop(runtime);

    print_report(
        &machine,
        fsyncs_per_second,
        &options,
        &ours,
        &peer,
        hsm_1t,
        hsm_2t,
    );
}

/// Command-line options (after `--`).
struct Options {
    /// Length of each measurement.
    seconds: u64,
    /// Client tasks sending requests back to back.
    concurrency: usize,
    /// HTTP/2 connections the gRPC clients share.
    connections: usize,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Options {
        let mut options = Options {
            seconds: DEFAULT_SECONDS,
            concurrency: DEFAULT_CONCURRENCY,
            connections: DEFAULT_CONNECTIONS,
        };
        let number = |flag: &str, value: Option<String>| -> usize {
            let value = value.unwrap_or_default();
            value.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
                usage(&format!("{flag} needs a whole number ≥ 1, got {value:?}"))
            })
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // `cargo bench` passes this to every bench target.
                "--bench" => {}
                "--seconds" => options.seconds = number("--seconds", args.next()) as u64,
                "--concurrency" => options.concurrency = number("--concurrency", args.next()),
                "--connections" => options.connections = number("--connections", args.next()),
                other => usage(&format!("unknown argument {other:?}")),
            }
        }
        options.connections = options.connections.min(options.concurrency);
        options
    }
}

fn usage(problem: &str) -> ! {
    panic!(
        "{problem}\nusage: cargo bench -p strongroom --bench issuance -- \
         [--seconds N] [--concurrency C] [--connections K]"
    )
}

// ---------------------------------------------------------------- inputs

/// One CSR and the name it asks for.
struct Csr {
    /// PEM.
    pem: String,
    /// Its single DNS name (also its CN).
    name: String,
    /// The file, for `openssl req -pubkey`.
    path: PathBuf,
}

/// [`CSR_COUNT`] P-256 CSRs made by `openssl req`, names under `.test`.
fn make_csrs(dir: &Path) -> Arc<Vec<Csr>> {
    std::fs::create_dir_all(dir).expect("create the CSR directory");
    let csrs = (0..CSR_COUNT)
        .map(|i| {
            let name = format!("bench-{i}.test");
            let path = dir.join(format!("{i}.csr"));
            let key = dir.join(format!("{i}.key"));
            run(
                "openssl",
                &[
                    "req",
                    "-new",
                    "-nodes",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-keyout",
                    p(&key),
                    "-out",
                    p(&path),
                    "-subj",
                    &format!("/CN={name}"),
                    "-addext",
                    &format!("subjectAltName=DNS:{name}"),
                ],
            );
            let pem = std::fs::read_to_string(&path).expect("read the CSR");
            Csr { pem, name, path }
        })
        .collect();
    Arc::new(csrs)
}

// ---------------------------------------------------------------- load generator

/// A server under load: one call issues one certificate.
trait Target: Send + Sync + 'static {
    /// What a successful call returns, kept for the checks afterwards.
    type Sample: Send + 'static;

    /// Issues a certificate for CSR number `csr` on behalf of client `client`.
    fn call(
        &self,
        client: usize,
        csr: usize,
    ) -> impl Future<Output = Result<Self::Sample, String>> + Send;
}

/// What one load phase measured.
struct Load<S> {
    /// Successful calls.
    completed: u64,
    /// From the start until the last client finished.
    elapsed: Duration,
    /// Latency of every successful call, in microseconds.
    latencies_us: Vec<u32>,
    /// The last response of each client, with the CSR it answered.
    samples: Vec<(usize, S)>,
}

impl<S> Load<S> {
    fn per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0 to 1).
    fn latency(&mut self, q: f64) -> Duration {
        self.latencies_us.sort_unstable();
        let last = self.latencies_us.len().saturating_sub(1);
        let index = ((last as f64) * q).round() as usize;
        Duration::from_micros(self.latencies_us.get(index).copied().unwrap_or(0).into())
    }
}

/// Runs `concurrency` client tasks calling `target` back to back for
/// `duration`. Every call must succeed within [`REQUEST_TIMEOUT`].
async fn drive<T: Target>(
    target: &Arc<T>,
    concurrency: usize,
    duration: Duration,
) -> Load<T::Sample> {
    let next_csr = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let end = began + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|client| {
            let target = Arc::clone(target);
            let next_csr = Arc::clone(&next_csr);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(8192);
                let mut last = None;
                while Instant::now() < end {
                    let csr = next_csr.fetch_add(1, Ordering::Relaxed) % CSR_COUNT;
                    let sent = Instant::now();
                    let sample = tokio::time::timeout(REQUEST_TIMEOUT, target.call(client, csr))
                        .await
                        .map_err(|_| {
                            format!("client {client}: no answer within {REQUEST_TIMEOUT:?}")
                        })?
                        .map_err(|e| format!("client {client}: {e}"))?;
                    let took = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                    latencies.push(took);
                    last = Some((csr, sample));
                }
                Ok::<_, String>((latencies, last))
            })
        })
        .collect();
    let mut load = Load {
        completed: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        samples: Vec::new(),
    };
    for task in tasks {
        let (latencies, last) = task
            .await
            .unwrap_or_else(|e| panic!("a client task failed: {e}"))
            .unwrap_or_else(|e| panic!("a request failed, so the run does not count: {e}"));
        load.completed += latencies.len() as u64;
        load.latencies_us.extend(latencies);
        load.samples.extend(last);
    }
    load.elapsed = began.elapsed();
    load
}

/// One server's figures.
struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// Server CPU time per certificate.
    cpu_per_cert: Duration,
    /// Load generator (this process) CPU time per certificate.
    client_cpu_per_cert: Duration,
}

/// Warms up, then measures `target` while watching the server's CPU time.
async fn measure<T: Target>(
    name: &str,
    target: &Arc<T>,
    server_pid: u32,
    options: &Options,
) -> (Measured, Load<T::Sample>, u64) {
    eprintln!("{name}: warming up for {WARM_UP:?}...");
    let warm = drive(target, options.concurrency, WARM_UP).await;
    eprintln!(
        "{name}: measuring {} clients for {} s...",
        options.concurrency, options.seconds
    );
    let (server_before, client_before) = (cpu_time(server_pid), cpu_time(std::process::id()));
    let mut load = drive(
        target,
        options.concurrency,
        Duration::from_secs(options.seconds),
    )
    .await;
    let (server_after, client_after) = (cpu_time(server_pid), cpu_time(std::process::id()));
    let (p50, p99) = (load.latency(0.50), load.latency(0.99));
    let per_cert = |d: Duration| d.div_f64(load.completed.max(1) as f64);
    let measured = Measured {
        per_second: load.per_second(),
        p50,
        p99,
        cpu_per_cert: per_cert(server_after - server_before),
        client_cpu_per_cert: per_cert(client_after - client_before),
    };
    eprintln!(
        "{name}: {} certificates/s, p50 {:.2} ms, p99 {:.2} ms",
        thousands(measured.per_second),
        ms(measured.p50),
        ms(measured.p99)
    );
    (measured, load, warm.completed)
}

// ---------------------------------------------------------------- strongroom

/// `strongroom dev` running on ephemeral ports, and how to reach it.
struct Appliance {
    process: ChildGuard,
    /// `https://127.0.0.1:port`.
    addr: String,
    /// The banner: the dev root CA and the dev admin's credentials.
    banner: Banner,
}

impl Appliance {
    /// Starts a fresh dev appliance in `data` and reads its banner.
    fn start(data: &Path, log: PathBuf) -> Appliance {
        let (process, banner) = start_appliance(data, log);
        Appliance {
            process,
            addr: banner.grpc.clone(),
            banner,
        }
    }

    /// One HTTP/2 connection over TLS, trusting only the dev root, as the
    /// dev admin.
    async fn connect(&self) -> Channel {
        Channel::from_shared(self.addr.clone())
            .expect("a gRPC URI")
            .tls_config(self.banner.tls())
            .expect("a TLS configuration")
            .tcp_nodelay(true)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.addr))
    }

    /// How many certificates the appliance says it has signed.
    async fn issued(&self, channel: &Channel) -> u64 {
        SysClient::new(channel.clone())
            .status(v1::StatusRequest {})
            .await
            .unwrap_or_else(|e| panic!("Sys.Status failed: {e}"))
            .into_inner()
            .certificates_issued
    }
}

/// `Ca.IssueFromCsr` over a few shared HTTP/2 connections.
struct Grpc {
    clients: Vec<CaClient<Channel>>,
    csrs: Arc<Vec<Csr>>,
}

impl Target for Grpc {
    /// The certificate PEM and the chain PEM.
    type Sample = (String, String);

    async fn call(&self, client: usize, csr: usize) -> Result<(String, String), String> {
        let mut ca = self.clients[client % self.clients.len()].clone();
        let response = ca
            .issue_from_csr(v1::IssueFromCsrRequest {
                profile: "server".into(),
                csr: self.csrs[csr].pem.as_bytes().to_vec(),
                ttl: None,
            })
            .await
            .map_err(|status| format!("IssueFromCsr: {:?}: {}", status.code(), status.message()))?
            .into_inner();
        let pem = response
            .certificate
            .map(|c| c.pem)
            .filter(|pem| !pem.is_empty())
            .ok_or("IssueFromCsr answered without a certificate")?;
        Ok((pem, response.chain_pem))
    }
}

/// Measures the appliance and checks what it issued.
async fn bench_strongroom(work: &Path, csrs: &Arc<Vec<Csr>>, options: &Options) -> Measured {
    eprintln!("starting strongroom dev ({BIN})...");
    let mut appliance = Appliance::start(&work.join("dev"), work.join("strongroom.log"));
    let mut channels = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        channels.push(appliance.connect().await);
    }
    // Ready once a real RPC answers.
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let answer = CaClient::new(channels[0].clone())
            .get_chain(v1::GetChainRequest {})
            .await;
        if answer.is_ok() {
            break;
        }
        appliance.process.assert_running();
        assert!(
            Instant::now() < deadline,
            "the appliance never answered: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = appliance.issued(&channels[0]).await;
    let target = Arc::new(Grpc {
        clients: channels.iter().cloned().map(CaClient::new).collect(),
        csrs: Arc::clone(csrs),
    });
    let (measured, load, warm_up) =
        measure("strongroom", &target, appliance.process.pid(), options).await;
    appliance.process.assert_running();

    // Every acknowledged certificate is in the inventory as issued.
    let after = appliance.issued(&channels[0]).await;
    assert_eq!(
        after - before,
        warm_up + load.completed,
        "the appliance's count of issued certificates does not match the successful calls"
    );
    eprintln!(
        "strongroom: inventory grew by {} issued certificates, one per successful call",
        after - before
    );
    let dir = work.join("strongroom-samples");
    std::fs::create_dir_all(&dir).expect("create the sample directory");
    let root = appliance.banner.root.clone();
    for (i, (csr, (pem, chain))) in load.samples.iter().take(VERIFIED_SAMPLES).enumerate() {
        let leaf = dir.join(format!("{i}.pem"));
        let untrusted = dir.join(format!("{i}-chain.pem"));
        std::fs::write(&leaf, pem).expect("write a sample");
        std::fs::write(&untrusted, chain).expect("write a chain");
        verify(&root, Some(&untrusted), &leaf);
        check_names_and_key(&leaf, &csrs[*csr]);
    }
    eprintln!(
        "strongroom: openssl verify accepted {} sampled certificates (names and keys match their CSRs)",
        load.samples.len().min(VERIFIED_SAMPLES)
    );
    drop(target);
    drop(channels);
    appliance.process.stop();
    measured
}

/// `openssl verify` accepts `leaf` under `root` (with `untrusted` intermediates).
fn verify(root: &Path, untrusted: Option<&Path>, leaf: &Path) {
    let mut args = vec!["verify", "-CAfile", p(root)];
    if let Some(untrusted) = untrusted {
        args.extend(["-untrusted", p(untrusted)]);
    }
    args.push(p(leaf));
    run("openssl", &args);
}

/// The certificate names the CSR's name and carries the CSR's public key.
fn check_names_and_key(leaf: &Path, csr: &Csr) {
    let san = run(
        "openssl",
        &["x509", "-in", p(leaf), "-noout", "-ext", "subjectAltName"],
    );
    let san = String::from_utf8_lossy(&san.stdout);
    assert!(
        san.contains(&format!("DNS:{}", csr.name)),
        "certificate for {} has SANs {san}",
        csr.name
    );
    let cert_key = run("openssl", &["x509", "-in", p(leaf), "-noout", "-pubkey"]).stdout;
    let csr_key = run(
        "openssl",
        &["req", "-in", p(&csr.path), "-noout", "-pubkey"],
    )
    .stdout;
    assert_eq!(
        cert_key, csr_key,
        "certificate for {} has another key",
        csr.name
    );
}

// ---------------------------------------------------------------- cfssl

/// `cfssl serve`'s sign endpoint over HTTP/1.1 keep-alive connections.
struct Cfssl {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
    /// One JSON request body per CSR.
    bodies: Vec<Bytes>,
}

impl Target for Cfssl {
    /// The response body (JSON holding the certificate).
    type Sample = Bytes;

    async fn call(&self, _client: usize, csr: usize) -> Result<Bytes, String> {
        let request = hyper::Request::post(self.uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(self.bodies[csr].clone()))
            .map_err(|e| format!("building the request: {e}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("POST {}: {e}", self.uri))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        const SUCCESS: &[u8] = b"\"success\":true";
        let succeeded = body.windows(SUCCESS.len()).any(|w| w == SUCCESS);
        if !status.is_success() || !succeeded {
            return Err(format!(
                "cfssl answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(body)
    }
}

/// Sets up a P-256 CA for cfssl, measures `cfssl serve`, and checks what it issued.
async fn bench_cfssl(
    work: &Path,
    cfssl: &Path,
    csrs: &Arc<Vec<Csr>>,
    options: &Options,
) -> Measured {
    let dir = work.join("cfssl");
    std::fs::create_dir_all(&dir).expect("create the cfssl directory");
    let ca_csr = dir.join("ca-csr.json");
    let ca_config = serde_json::json!({
        "CN": "Strongroom Bench cfssl CA",
        "key": { "algo": "ecdsa", "size": 256 },
        "names": [{ "O": "Strongroom Bench" }],
    });
    std::fs::write(&ca_csr, ca_config.to_string()).expect("write the CA CSR config");
    let cfssl_str = p(cfssl);
    let generated = run(cfssl_str, &["gencert", "-initca", p(&ca_csr)]);
    let generated: serde_json::Value =
        serde_json::from_slice(&generated.stdout).expect("cfssl gencert prints JSON");
    let field = |name: &str| {
        generated[name]
            .as_str()
            .unwrap_or_else(|| panic!("cfssl gencert printed no {name}"))
            .to_string()
    };
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    std::fs::write(&ca_cert, field("cert")).expect("write the cfssl CA certificate");
    std::fs::write(&ca_key, field("key")).expect("write the cfssl CA key");
    let signing = dir.join("config.json");
    let signing_config = serde_json::json!({
        "signing": { "default": {
            "expiry": "8760h",
            "usages": ["digital signature", "server auth"],
        }}
    });
    std::fs::write(&signing, signing_config.to_string()).expect("write the cfssl config");

    let port = free_port();
    eprintln!("starting cfssl serve on 127.0.0.1:{port}...");
    let mut command = Command::new(cfssl);
    command
        .args(["serve", "-address", "127.0.0.1", "-port", &port.to_string()])
        .args([
            "-ca",
            p(&ca_cert),
            "-ca-key",
            p(&ca_key),
            "-config",
            p(&signing),
        ])
        // Warnings only, like the appliance's default: no log line per request.
        .args(["-loglevel", "2"])
        .stdout(Stdio::null());
    let mut process = ChildGuard::spawn("cfssl serve", &mut command, dir.join("serve.log"));
    let addr = format!("127.0.0.1:{port}");
    process.wait_listening(&addr);

    let bodies = csrs
        .iter()
        .map(|csr| {
            let body = serde_json::json!({
                "certificate_request": csr.pem,
                "hosts": [csr.name],
            });
            Bytes::from(body.to_string())
        })
        .collect();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let target = Arc::new(Cfssl {
        client,
        uri: format!("http://{addr}/api/v1/cfssl/sign")
            .parse()
            .expect("a cfssl URI"),
        bodies,
    });
    let (measured, load, _) = measure("cfssl", &target, process.pid(), options).await;
    process.assert_running();

    let samples = dir.join("samples");
    std::fs::create_dir_all(&samples).expect("create the sample directory");
    for (i, (csr, body)) in load.samples.iter().take(VERIFIED_SAMPLES).enumerate() {
        let answer: serde_json::Value = serde_json::from_slice(body).expect("cfssl answers JSON");
        let pem = answer["result"]["certificate"]
            .as_str()
            .expect("cfssl's answer holds a certificate");
        let leaf = samples.join(format!("{i}.pem"));
        std::fs::write(&leaf, pem).expect("write a sample");
        verify(&ca_cert, None, &leaf);
        check_names_and_key(&leaf, &csrs[*csr]);
    }
    eprintln!(
        "cfssl: openssl verify accepted {} sampled certificates (names and keys match their CSRs)",
        load.samples.len().min(VERIFIED_SAMPLES)
    );
    drop(target);
    process.stop();
    measured
}

// ---------------------------------------------------------------- report

/// How many 4 KiB write + fdatasync rounds a file in `dir` takes per second
/// (over one second): what a durable commit costs on this disk.
fn fsync_rate(dir: &Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("create the fsync probe");
    let block = [0u8; 4096];
    let began = Instant::now();
    let mut count = 0u32;
    while began.elapsed() < Duration::from_secs(1) {
        file.write_all(&block).expect("write the fsync probe");
        file.sync_data().expect("fdatasync the fsync probe");
        count += 1;
    }
    let rate = f64::from(count) / began.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    rate
}

fn print_report(
    machine: &Machine,
    fsyncs_per_second: f64,
    options: &Options,
    ours: &Measured,
    cfssl: &Measured,
    hsm_1t: f64,
    hsm_2t: f64,
) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {machine}; disk: {} fsync/s (4 KiB write + fdatasync).",
        thousands(fsyncs_per_second),
    );
    let _ = writeln!(
        out,
        "Load: {} client tasks, {} s measured after a {} s warm-up; gRPC over {} TLS HTTP/2 \
         connection(s), cfssl over HTTP/1.1 keep-alive; {CSR_COUNT} P-256 CSRs round-robin.",
        options.concurrency,
        options.seconds,
        WARM_UP.as_secs(),
        options.connections,
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| path | certificates/s | p50 | p99 | server CPU / cert | load generator CPU / cert |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let row = |out: &mut String, name: &str, m: &Measured| {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.2} ms | {:.2} ms | {:.0} µs | {:.0} µs |",
            thousands(m.per_second),
            ms(m.p50),
            ms(m.p99),
            m.cpu_per_cert.as_secs_f64() * 1e6,
            m.client_cpu_per_cert.as_secs_f64() * 1e6,
        );
    };
    row(
        &mut out,
        "strongroom `Ca.IssueFromCsr` (gRPC/TLS, HSM-signed, verified, stored)",
        ours,
    );
    row(
        &mut out,
        "`cfssl serve` `/api/v1/cfssl/sign` (HTTP, key in memory, no database)",
        cfssl,
    );
    let _ = writeln!(
        out,
        "| raw HSM P-256 signatures, 1 thread (SoftHSM2 via strongroom-hsm) | {} sig/s | | | | |",
        thousands(hsm_1t)
    );
    let _ = writeln!(
        out,
        "| raw HSM P-256 signatures, 2 threads | {} sig/s | | | | |",
        thousands(hsm_2t)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| ratio | value |");
    let _ = writeln!(out, "|---|---:|");
    let _ = writeln!(
        out,
        "| strongroom / cfssl | {:.2} |",
        ours.per_second / cfssl.per_second
    );
    let _ = writeln!(
        out,
        "| strongroom / raw HSM 2 threads | {:.1} % |",
        100.0 * ours.per_second / hsm_2t
    );
    print!("{out}");
}
