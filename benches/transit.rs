//! Transit encryption throughput of the real appliance over gRPC (unary,
//! batch and streaming), next to `openssl speed -evp aes-256-gcm` for the
//! same payload sizes, measured in the same run on the same machine.
//!
//! ```text
//! cargo bench -p strongroom --bench transit [-- --seconds N] [--concurrency C] [--connections K]
//!                                           [--batch-calls B] [--streams S] [--stream-depth D]
//!                                           [--only NAME]
//! ```
//!
//! `--seconds N`: each measurement (default 5), after a 2 s warm-up; also
//! each `openssl speed` run. `--concurrency C`: unary requests in flight
//! (default 64, as in the issuance benchmark). `--connections K`: HTTP/2
//! connections the clients share (default 4). `--batch-calls B`: batch calls
//! in flight (default 8). `--streams S`: concurrent streams (default 4, one
//! per connection when K = 4) and `--stream-depth D`: messages each stream
//! keeps in flight (default 4). `--only NAME`: run only the measurements
//! whose id contains NAME (repeatable; ids are `unary-encrypt`,
//! `unary-decrypt`, `batch-encrypt`, `batch-decrypt`, `stream-encrypt`,
//! `stream-decrypt`, `batch-encrypt-16k`, `batch-decrypt-16k`).
//!
//! One run does, in order:
//!
//! 1. **OpenSSL** (the peer): `openssl speed -evp aes-256-gcm -bytes B
//!    -seconds N -mr`, encrypting and then with `-decrypt`, for B = 1024 and
//!    16384: one process, so one core. Its rate is bytes over the CPU time it
//!    used (openssl's default divisor), so other work on the machine does not
//!    lower it.
//! 2. **Strongroom**: `strongroom dev` (the release binary cargo built) on
//!    127.0.0.1 with ephemeral ports and a fresh data directory (the dev
//!    configuration has a `[transit] wrapping_key`), one `aes256-gcm96` key
//!    made with `Transit.CreateKey`, and 1,000 different 1 KiB plaintexts and
//!    200 different 16 KiB plaintexts, encrypted once up front for the
//!    decrypt measurements. Then, each for N seconds after a warm-up, over K
//!    TLS HTTP/2 connections (tonic, trusting only the dev root):
//!    - unary `Encrypt` and `Decrypt` of 1 KiB, C requests in flight;
//!    - `EncryptBatch` and `DecryptBatch` of 1,000 × 1 KiB items per call, B
//!      calls in flight;
//!    - `EncryptStream` and `DecryptStream`: S streams, each sending messages
//!      of 1,000 × 1 KiB items and keeping D messages in flight (a new one
//!      goes out as each answer comes back);
//!    - `EncryptBatch` and `DecryptBatch` of 16 KiB items, 200 per call (a
//!      full 1,000 would make a 22 MB answer), B calls in flight.
//!
//! So that a broken path cannot look fast: every ciphertext must have the
//! form and length of a 12-byte nonce, the payload and a 16-byte tag under
//! `strongroom:v1:`; every decrypted item must equal the plaintext it was
//! made from; after each encrypt measurement a sample of its ciphertexts
//! (up to 2,000) is decrypted and compared with the plaintexts, and their
//! nonces must all differ. Any failed call or item counts as an error, and
//! any error stops the benchmark after the measurement that saw it.
//!
//! Progress goes to standard error; the machine facts and a markdown table
//! (calls/s, items/s, MB/s, latency, server and load-generator CPU per
//! item, the CPU other processes used meanwhile, the ratio to openssl's
//! one-core rate for the same size, and the aims) to standard output. A missed aim is reported, never an exit code.
//! The appliance is killed when the benchmark ends, also when it panics.

mod common;

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strongroom_proto::v1;
use strongroom_proto::v1::transit_client::TransitClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Response, Status, Streaming};

use common::{
    BIN, Banner, ChildGuard, Machine, START_TIMEOUT, WARM_UP, cpu_time, ms, run, start_appliance,
    stdout_of, thousands,
};

/// Seconds per measurement unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 5;

/// Unary requests in flight unless `--concurrency` says otherwise.
const DEFAULT_CONCURRENCY: usize = 64;

/// HTTP/2 connections unless `--connections` says otherwise.
const DEFAULT_CONNECTIONS: usize = 4;

/// Batch calls in flight unless `--batch-calls` says otherwise.
const DEFAULT_BATCH_CALLS: usize = 8;

/// Concurrent streams unless `--streams` says otherwise.
const DEFAULT_STREAMS: usize = 4;

/// Messages in flight per stream unless `--stream-depth` says otherwise.
const DEFAULT_STREAM_DEPTH: usize = 4;

/// The small payload, and how many different ones there are (also the
/// items per batch call and per stream message).
const SMALL: usize = 1024;
const SMALL_ITEMS: usize = 1000;

/// The large payload, and how many different ones (also the items per batch
/// call: 200 × 16 KiB is a 3.3 MB request and a 4.4 MB answer).
const LARGE: usize = 16 * 1024;
const LARGE_ITEMS: usize = 200;

/// The transit key every measurement uses.
const KEY: &str = "bench-aes256-gcm96";

/// What every ciphertext of the key's first version starts with.
const PREFIX: &str = "strongroom:v1:";

/// AES-256-GCM96 nonce and tag lengths in a transit ciphertext.
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Ciphertexts decrypted again after each encrypt measurement, at most.
const MAX_SAMPLES: usize = 2000;

/// The largest message either side may send or receive (the appliance
/// refuses requests over its `transit.max_request_bytes`, 16 MiB by default).
const MAX_MESSAGE: usize = 64 << 20;

/// The longest any one call may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The unary aim, operations per second.
const UNARY_AIM: f64 = 30_000.0;

/// The batch and streaming aim, as a share of openssl's one-core rate.
const BULK_AIM: f64 = 0.25;

fn main() {
    let options = Options::parse(std::env::args().skip(1));
    let work = tempfile::Builder::new()
        .prefix("strongroom-transit-bench")
        .tempdir()
        .expect("create a temporary directory");
    // `Machine` also asks cfssl its version; this benchmark does not use it.
    let machine = Machine::describe(Path::new("cfssl"));

    let openssl = Openssl::measure(options.seconds);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the load generator's runtime");
    let rows = runtime.block_on(bench_strongroom(work.path(), &options));
    drop(runtime);

    print_report(&machine, &options, &openssl, &rows);
}

/// Command-line options (after `--`).
struct Options {
    seconds: u64,
    concurrency: usize,
    connections: usize,
    batch_calls: usize,
    streams: usize,
    stream_depth: usize,
    /// Measurement ids to run (substrings); empty means all.
    only: Vec<String>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Options {
        let mut options = Options {
            seconds: DEFAULT_SECONDS,
            concurrency: DEFAULT_CONCURRENCY,
            connections: DEFAULT_CONNECTIONS,
            batch_calls: DEFAULT_BATCH_CALLS,
            streams: DEFAULT_STREAMS,
            stream_depth: DEFAULT_STREAM_DEPTH,
            only: Vec::new(),
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
                "--batch-calls" => options.batch_calls = number("--batch-calls", args.next()),
                "--streams" => options.streams = number("--streams", args.next()),
                "--stream-depth" => options.stream_depth = number("--stream-depth", args.next()),
                "--only" => options.only.push(
                    args.next()
                        .unwrap_or_else(|| usage("--only needs a measurement id")),
                ),
                other => usage(&format!("unknown argument {other:?}")),
            }
        }
        options
    }

    fn wants(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| id.contains(o.as_str()))
    }
}

fn usage(problem: &str) -> ! {
    panic!(
        "{problem}\nusage: cargo bench -p strongroom --bench transit -- [--seconds N] \
         [--concurrency C] [--connections K] [--batch-calls B] [--streams S] \
         [--stream-depth D] [--only NAME]"
    )
}

// ---------------------------------------------------------------- openssl

/// `openssl speed -evp aes-256-gcm` rates, bytes per second of one core.
struct Openssl {
    encrypt_small: f64,
    decrypt_small: f64,
    encrypt_large: f64,
    decrypt_large: f64,
}

impl Openssl {
    fn measure(seconds: u64) -> Openssl {
        Openssl {
            encrypt_small: openssl_speed(SMALL, false, seconds),
            decrypt_small: openssl_speed(SMALL, true, seconds),
            encrypt_large: openssl_speed(LARGE, false, seconds),
            decrypt_large: openssl_speed(LARGE, true, seconds),
        }
    }

    /// The rate for `size`-byte payloads in direction `dir`.
    fn rate(&self, size: usize, dir: Dir) -> f64 {
        match (size, dir) {
            (SMALL, Dir::Encrypt) => self.encrypt_small,
            (SMALL, Dir::Decrypt) => self.decrypt_small,
            (LARGE, Dir::Encrypt) => self.encrypt_large,
            (LARGE, Dir::Decrypt) => self.decrypt_large,
            _ => unreachable!("only {SMALL} and {LARGE} bytes are measured"),
        }
    }
}

/// One `openssl speed -evp aes-256-gcm -bytes SIZE -seconds N -mr` run
/// (with `-decrypt` if asked): bytes per second of CPU time, from its
/// machine-readable `+R:<count>:AES-256-GCM:<seconds>` line.
fn openssl_speed(size: usize, decrypt: bool, seconds: u64) -> f64 {
    let (size_arg, seconds_arg) = (size.to_string(), seconds.to_string());
    let mut args = vec![
        "speed",
        "-evp",
        "aes-256-gcm",
        "-bytes",
        &size_arg,
        "-seconds",
        &seconds_arg,
        "-mr",
    ];
    if decrypt {
        args.push("-decrypt");
    }
    eprintln!("openssl {}...", args.join(" "));
    let out = run("openssl", &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rate = text
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.strip_prefix("+R:")?.split(':').collect();
            let count: f64 = fields.first()?.parse().ok()?;
            let took: f64 = fields.get(2)?.parse().ok()?;
            (took > 0.0).then(|| count * size as f64 / took)
        })
        .unwrap_or_else(|| panic!("no +R: line in openssl speed's output:\n{text}"));
    eprintln!(
        "openssl speed, {size} bytes, {}: {:.0} MB/s ({} ops/s)",
        if decrypt { "decrypt" } else { "encrypt" },
        rate / 1e6,
        thousands(rate / size as f64)
    );
    rate
}

// ---------------------------------------------------------------- data

/// Plaintexts of one size, their ciphertexts, and the batch requests built
/// from them.
struct DataSet {
    size: usize,
    plaintexts: Vec<Vec<u8>>,
    ciphertexts: Vec<String>,
    /// Every plaintext, in order.
    encrypt_items: Vec<v1::EncryptItem>,
    /// Every ciphertext, in order.
    decrypt_items: Vec<v1::DecryptItem>,
}

impl DataSet {
    /// `count` different `size`-byte plaintexts (xorshift bytes, each
    /// starting with its index), not yet encrypted.
    fn new(size: usize, count: usize) -> DataSet {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ size as u64;
        let plaintexts: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let mut p = Vec::with_capacity(size);
                p.extend_from_slice(&(i as u64).to_be_bytes());
                while p.len() < size {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    p.extend_from_slice(&state.to_le_bytes());
                }
                p.truncate(size);
                p
            })
            .collect();
        let encrypt_items = plaintexts
            .iter()
            .map(|p| v1::EncryptItem {
                plaintext: p.clone(),
                ..Default::default()
            })
            .collect();
        DataSet {
            size,
            plaintexts,
            ciphertexts: Vec::new(),
            encrypt_items,
            decrypt_items: Vec::new(),
        }
    }

    /// The length of every ciphertext of this size.
    fn ciphertext_len(&self) -> usize {
        PREFIX.len() + (NONCE_LEN + self.size + TAG_LEN).div_ceil(3) * 4
    }

    /// A ciphertext of the right form for this size.
    fn check_ciphertext(&self, ciphertext: &str) -> Result<(), String> {
        if !ciphertext.starts_with(PREFIX) || ciphertext.len() != self.ciphertext_len() {
            return Err(format!(
                "a ciphertext of {} characters starting {:?}, expected {} starting {PREFIX:?}",
                ciphertext.len(),
                &ciphertext[..ciphertext.len().min(20)],
                self.ciphertext_len()
            ));
        }
        Ok(())
    }

    /// The plaintext `index` came back unchanged.
    fn check_plaintext(&self, index: usize, plaintext: &[u8]) -> Result<(), String> {
        if plaintext != self.plaintexts[index].as_slice() {
            return Err(format!(
                "item {index} decrypted to {} bytes that differ from its plaintext",
                plaintext.len()
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- measurements

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unary,
    Batch,
    Stream,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Encrypt,
    Decrypt,
}

/// One measurement.
struct Phase {
    id: &'static str,
    mode: Mode,
    dir: Dir,
    /// Index into [`Bench::sets`].
    set: usize,
}

const PHASES: [Phase; 8] = [
    Phase {
        id: "unary-encrypt",
        mode: Mode::Unary,
        dir: Dir::Encrypt,
        set: 0,
    },
    Phase {
        id: "unary-decrypt",
        mode: Mode::Unary,
        dir: Dir::Decrypt,
        set: 0,
    },
    Phase {
        id: "batch-encrypt",
        mode: Mode::Batch,
        dir: Dir::Encrypt,
        set: 0,
    },
    Phase {
        id: "batch-decrypt",
        mode: Mode::Batch,
        dir: Dir::Decrypt,
        set: 0,
    },
    Phase {
        id: "stream-encrypt",
        mode: Mode::Stream,
        dir: Dir::Encrypt,
        set: 0,
    },
    Phase {
        id: "stream-decrypt",
        mode: Mode::Stream,
        dir: Dir::Decrypt,
        set: 0,
    },
    Phase {
        id: "batch-encrypt-16k",
        mode: Mode::Batch,
        dir: Dir::Encrypt,
        set: 1,
    },
    Phase {
        id: "batch-decrypt-16k",
        mode: Mode::Batch,
        dir: Dir::Decrypt,
        set: 1,
    },
];

impl Phase {
    /// The RPC, for the report.
    fn rpc(&self) -> &'static str {
        match (self.mode, self.dir) {
            (Mode::Unary, Dir::Encrypt) => "Encrypt",
            (Mode::Unary, Dir::Decrypt) => "Decrypt",
            (Mode::Batch, Dir::Encrypt) => "EncryptBatch",
            (Mode::Batch, Dir::Decrypt) => "DecryptBatch",
            (Mode::Stream, Dir::Encrypt) => "EncryptStream",
            (Mode::Stream, Dir::Decrypt) => "DecryptStream",
        }
    }
}

/// A failed call: how many items it lost and why.
struct Failure {
    items: u64,
    message: String,
}

impl Failure {
    fn call(message: impl Into<String>, items: usize) -> Failure {
        Failure {
            items: items as u64,
            message: message.into(),
        }
    }
}

fn status_text(rpc: &str, status: &Status) -> String {
    format!("{rpc}: {:?}: {}", status.code(), status.message())
}

/// One ciphertext kept to be decrypted again after its measurement.
struct Sample {
    index: usize,
    ciphertext: String,
}

/// Everything the load generator shares.
struct Bench {
    clients: Vec<TransitClient<Channel>>,
    sets: [DataSet; 2],
    samples: Mutex<Vec<Sample>>,
}

impl Bench {
    fn client(&self, worker: usize) -> TransitClient<Channel> {
        self.clients[worker % self.clients.len()].clone()
    }

    /// Keeps a ciphertext to check later, while there is room.
    fn sample(&self, index: usize, ciphertext: &str) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() < MAX_SAMPLES {
            samples.push(Sample {
                index,
                ciphertext: ciphertext.to_string(),
            });
        }
    }

    /// One call of a unary or batch measurement; the items it completed.
    async fn call(&self, phase: &Phase, worker: usize, seq: usize) -> Result<u64, Failure> {
        let set = &self.sets[phase.set];
        let mut client = self.client(worker);
        match (phase.mode, phase.dir) {
            (Mode::Unary, Dir::Encrypt) => {
                let index = (worker * 7919 + seq) % set.plaintexts.len();
                let answer = client
                    .encrypt(v1::EncryptRequest {
                        key: KEY.into(),
                        plaintext: set.plaintexts[index].clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| Failure::call(status_text("Encrypt", &s), 1))?
                    .into_inner();
                set.check_ciphertext(&answer.ciphertext)
                    .map_err(|e| Failure::call(e, 1))?;
                if seq % 16 == 0 {
                    self.sample(index, &answer.ciphertext);
                }
                Ok(1)
            }
            (Mode::Unary, Dir::Decrypt) => {
                let index = (worker * 7919 + seq) % set.ciphertexts.len();
                let answer = client
                    .decrypt(v1::DecryptRequest {
                        key: KEY.into(),
                        ciphertext: set.ciphertexts[index].clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| Failure::call(status_text("Decrypt", &s), 1))?
                    .into_inner();
                set.check_plaintext(index, &answer.plaintext)
                    .map_err(|e| Failure::call(e, 1))?;
                Ok(1)
            }
            (Mode::Batch, Dir::Encrypt) => {
                let n = set.encrypt_items.len();
                let answer = client
                    .encrypt_batch(v1::EncryptBatchRequest {
                        key: KEY.into(),
                        items: set.encrypt_items.clone(),
                    })
                    .await
                    .map_err(|s| Failure::call(status_text("EncryptBatch", &s), n))?
                    .into_inner();
                self.check_encrypted(set, &answer.results, seq)
            }
            (Mode::Batch, Dir::Decrypt) => {
                let n = set.decrypt_items.len();
                let answer = client
                    .decrypt_batch(v1::DecryptBatchRequest {
                        key: KEY.into(),
                        items: set.decrypt_items.clone(),
                    })
                    .await
                    .map_err(|s| Failure::call(status_text("DecryptBatch", &s), n))?
                    .into_inner();
                check_decrypted(set, &answer.results)
            }
            (Mode::Stream, _) => unreachable!("streams are driven by `stream`"),
        }
    }

    /// Checks the results of encrypting every plaintext of `set` in order,
    /// keeping a few for the round trip afterwards.
    fn check_encrypted(
        &self,
        set: &DataSet,
        results: &[v1::EncryptResult],
        seq: usize,
    ) -> Result<u64, Failure> {
        use v1::encrypt_result::Result as R;
        let n = set.encrypt_items.len();
        if results.len() != n {
            return Err(Failure::call(
                format!("{} results for {n} items", results.len()),
                n,
            ));
        }
        let mut bad = 0;
        let mut first = None;
        for (index, result) in results.iter().enumerate() {
            let checked = match &result.result {
                Some(R::Ok(ok)) => set.check_ciphertext(&ok.ciphertext).map(|()| {
                    if index % 97 == seq % 97 {
                        self.sample(index, &ok.ciphertext);
                    }
                }),
                Some(R::Error(e)) => Err(format!("item {index}: code {}: {}", e.code, e.message)),
                None => Err(format!("item {index}: an empty result")),
            };
            if let Err(e) = checked {
                bad += 1;
                first.get_or_insert(e);
            }
        }
        match first {
            None => Ok(n as u64),
            Some(message) => Err(Failure {
                items: bad,
                message,
            }),
        }
    }

    /// Drives one stream until `end`, keeping `depth` messages in flight.
    /// Returns the items answered and each message's round trip (µs).
    async fn stream(
        &self,
        phase: &Phase,
        worker: usize,
        depth: usize,
        end: Instant,
    ) -> Result<(u64, Vec<u32>), Failure> {
        let set = &self.sets[phase.set];
        let mut client = self.client(worker);
        match phase.dir {
            Dir::Encrypt => {
                let message = |first: bool| v1::EncryptStreamRequest {
                    key: if first { KEY.into() } else { String::new() },
                    items: set.encrypt_items.clone(),
                };
                let mut seq = worker;
                pump(
                    "EncryptStream",
                    message,
                    depth,
                    end,
                    |requests| client.encrypt_stream(requests),
                    |answer: v1::EncryptStreamResponse| {
                        seq += 1;
                        self.check_encrypted(set, &answer.results, seq)
                    },
                )
                .await
            }
            Dir::Decrypt => {
                let message = |first: bool| v1::DecryptStreamRequest {
                    key: if first { KEY.into() } else { String::new() },
                    items: set.decrypt_items.clone(),
                };
                pump(
                    "DecryptStream",
                    message,
                    depth,
                    end,
                    |requests| client.decrypt_stream(requests),
                    |answer: v1::DecryptStreamResponse| check_decrypted(set, &answer.results),
                )
                .await
            }
        }
    }

    /// Decrypts the kept samples of an encrypt measurement and compares
    /// them with their plaintexts; their nonces must all differ.
    async fn round_trip(&self, phase: &Phase) -> usize {
        let set = &self.sets[phase.set];
        let samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()));
        assert!(
            !samples.is_empty(),
            "{}: no ciphertext was kept to check",
            phase.id
        );
        let nonces: HashSet<&str> = samples
            .iter()
            .map(|s| &s.ciphertext[PREFIX.len()..PREFIX.len() + 16])
            .collect();
        assert_eq!(
            nonces.len(),
            samples.len(),
            "{}: two sampled ciphertexts share a nonce",
            phase.id
        );
        let mut client = self.client(0);
        for chunk in samples.chunks(set.encrypt_items.len()) {
            let results = client
                .decrypt_batch(v1::DecryptBatchRequest {
                    key: KEY.into(),
                    items: chunk
                        .iter()
                        .map(|s| v1::DecryptItem {
                            ciphertext: s.ciphertext.clone(),
                            ..Default::default()
                        })
                        .collect(),
                })
                .await
                .unwrap_or_else(|s| panic!("{}: {}", phase.id, status_text("DecryptBatch", &s)))
                .into_inner()
                .results;
            assert_eq!(results.len(), chunk.len(), "{}: results missing", phase.id);
            for (sample, result) in chunk.iter().zip(results) {
                match result.result {
                    Some(v1::decrypt_result::Result::Ok(ok)) => set
                        .check_plaintext(sample.index, &ok.plaintext)
                        .unwrap_or_else(|e| panic!("{}: round trip: {e}", phase.id)),
                    other => panic!(
                        "{}: a sampled ciphertext does not decrypt: {other:?}",
                        phase.id
                    ),
                }
            }
        }
        samples.len()
    }
}

/// Checks the results of decrypting every ciphertext of `set` in order.
fn check_decrypted(set: &DataSet, results: &[v1::DecryptResult]) -> Result<u64, Failure> {
    use v1::decrypt_result::Result as R;
    let n = set.decrypt_items.len();
    if results.len() != n {
        return Err(Failure::call(
            format!("{} results for {n} items", results.len()),
            n,
        ));
    }
    let mut bad = 0;
    let mut first = None;
    for (index, result) in results.iter().enumerate() {
        let checked = match &result.result {
            Some(R::Ok(ok)) => set.check_plaintext(index, &ok.plaintext),
            Some(R::Error(e)) => Err(format!("item {index}: code {}: {}", e.code, e.message)),
            None => Err(format!("item {index}: an empty result")),
        };
        if let Err(e) = checked {
            bad += 1;
            first.get_or_insert(e);
        }
    }
    match first {
        None => Ok(n as u64),
        Some(message) => Err(Failure {
            items: bad,
            message,
        }),
    }
}

/// Runs one bidirectional stream: sends `depth` messages, then one more
/// each time an answer comes back until `end`, then closes its side and
/// reads the answers still due. Answers come in order, so each message's
/// round trip is the time from its sending to its answer.
async fn pump<Req, Resp, Open, Fut>(
    rpc: &str,
    message: impl Fn(bool) -> Req,
    depth: usize,
    end: Instant,
    open: Open,
    mut check: impl FnMut(Resp) -> Result<u64, Failure>,
) -> Result<(u64, Vec<u32>), Failure>
where
    Req: Send + 'static,
    Open: FnOnce(ReceiverStream<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>>,
{
    let (tx, rx) = mpsc::channel(depth + 1);
    let mut sent_at = VecDeque::with_capacity(depth);
    for i in 0..depth {
        sent_at.push_back(Instant::now());
        if tx.send(message(i == 0)).await.is_err() {
            return Err(Failure::call(
                format!("{rpc}: the request stream closed"),
                0,
            ));
        }
    }
    let mut answers = tokio::time::timeout(REQUEST_TIMEOUT, open(ReceiverStream::new(rx)))
        .await
        .map_err(|_| Failure::call(format!("{rpc}: no answer within {REQUEST_TIMEOUT:?}"), 0))?
        .map_err(|s| Failure::call(status_text(rpc, &s), 0))?
        .into_inner();
    let mut tx = Some(tx);
    let (mut items, mut latencies) = (0u64, Vec::new());
    loop {
        let next = tokio::time::timeout(REQUEST_TIMEOUT, answers.message())
            .await
            .map_err(|_| Failure::call(format!("{rpc}: no answer within {REQUEST_TIMEOUT:?}"), 0))?
            .map_err(|s| Failure::call(status_text(rpc, &s), 0))?;
        let Some(answer) = next else { break };
        let sent = sent_at.pop_front().ok_or_else(|| {
            Failure::call(format!("{rpc}: more answers than request messages"), 0)
        })?;
        latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
        items += check(answer)?;
        if Instant::now() < end {
            if let Some(tx) = &tx {
                sent_at.push_back(Instant::now());
                if tx.send(message(false)).await.is_err() {
                    return Err(Failure::call(
                        format!("{rpc}: the request stream closed"),
                        0,
                    ));
                }
            }
        } else {
            // Closing our side ends the stream once the answers due are read.
            tx = None;
        }
    }
    if !sent_at.is_empty() {
        return Err(Failure::call(
            format!(
                "{rpc}: the stream ended with {} messages unanswered",
                sent_at.len()
            ),
            0,
        ));
    }
    Ok((items, latencies))
}

/// What one measurement saw.
struct Load {
    calls: u64,
    items: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Load {
    fn new() -> Load {
        Load {
            calls: 0,
            items: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            errors: 0,
            first_error: None,
        }
    }

    fn fail(&mut self, failure: Failure) {
        self.errors += failure.items.max(1);
        self.first_error.get_or_insert(failure.message);
    }

    /// The latency at quantile `q` (0 to 1).
    fn latency(&mut self, q: f64) -> Duration {
        self.latencies_us.sort_unstable();
        let last = self.latencies_us.len().saturating_sub(1);
        let index = ((last as f64) * q).round() as usize;
        Duration::from_micros(self.latencies_us.get(index).copied().unwrap_or(0).into())
    }
}

/// Runs `phase` for `duration`: `in_flight` tasks calling back to back, or
/// `streams` streams. Calls in flight at the end finish and count; the
/// elapsed time runs until the last one has.
async fn drive(bench: &Arc<Bench>, phase: usize, options: &Options, duration: Duration) -> Load {
    let began = Instant::now();
    let end = began + duration;
    let mode = PHASES[phase].mode;
    let workers = match mode {
        Mode::Unary => options.concurrency,
        Mode::Batch => options.batch_calls,
        Mode::Stream => options.streams,
    };
    let depth = options.stream_depth;
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let bench = Arc::clone(bench);
            tokio::spawn(async move {
                let phase = &PHASES[phase];
                let mut load = Load::new();
                if phase.mode == Mode::Stream {
                    match bench.stream(phase, worker, depth, end).await {
                        Ok((items, latencies)) => {
                            load.calls = latencies.len() as u64;
                            load.items = items;
                            load.latencies_us = latencies;
                        }
                        Err(failure) => load.fail(failure),
                    }
                    return load;
                }
                let mut seq = 0;
                while Instant::now() < end {
                    let sent = Instant::now();
                    let answer =
                        tokio::time::timeout(REQUEST_TIMEOUT, bench.call(phase, worker, seq))
                            .await
                            .unwrap_or_else(|_| {
                                Err(Failure::call(
                                    format!("no answer within {REQUEST_TIMEOUT:?}"),
                                    1,
                                ))
                            });
                    seq += 1;
                    match answer {
                        Ok(items) => {
                            load.calls += 1;
                            load.items += items;
                            load.latencies_us.push(
                                u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX),
                            );
                        }
                        Err(failure) => {
                            load.fail(failure);
                            // A dead server fails fast; do not spin.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                load
            })
        })
        .collect();
    let mut total = Load::new();
    for task in tasks {
        let load = task
            .await
            .unwrap_or_else(|e| panic!("a client task failed: {e}"));
        total.calls += load.calls;
        total.items += load.items;
        total.latencies_us.extend(load.latencies_us);
        total.errors += load.errors;
        if total.first_error.is_none() {
            total.first_error = load.first_error;
        }
    }
    total.elapsed = began.elapsed();
    total
}

/// One row of the report.
struct Row {
    phase: usize,
    in_flight: String,
    calls_per_second: f64,
    items_per_second: f64,
    p50: Duration,
    p99: Duration,
    server_cpu_per_item: Duration,
    client_cpu_per_item: Duration,
    /// Server CPU time over wall time: cores the appliance kept busy.
    server_cores: f64,
    /// CPU time the rest of the machine (neither the appliance nor the load
    /// generator) used over wall time: other work disturbing the figures.
    other_cores: f64,
    checked: usize,
}

/// Warms up, measures, and checks one phase.
async fn measure(
    bench: &Arc<Bench>,
    phase: usize,
    server: &mut ChildGuard,
    options: &Options,
) -> Row {
    let p = &PHASES[phase];
    let in_flight = match p.mode {
        Mode::Unary => format!("{} requests", options.concurrency),
        Mode::Batch => format!(
            "{} calls × {} items",
            options.batch_calls,
            bench.sets[p.set].encrypt_items.len()
        ),
        Mode::Stream => format!(
            "{} streams × {} messages × {} items",
            options.streams,
            options.stream_depth,
            bench.sets[p.set].encrypt_items.len()
        ),
    };
    eprintln!("{}: warming up for {WARM_UP:?}...", p.id);
    let warm = drive(bench, phase, options, WARM_UP).await;
    check_errors(p.id, "warm-up", &warm);
    bench
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    eprintln!(
        "{}: measuring {in_flight} in flight for {} s...",
        p.id, options.seconds
    );
    let pid = server.pid();
    let (server_before, client_before) = (cpu_time(pid), cpu_time(std::process::id()));
    let machine_before = machine_busy();
    let mut load = drive(bench, phase, options, Duration::from_secs(options.seconds)).await;
    let machine_after = machine_busy();
    let (server_after, client_after) = (cpu_time(pid), cpu_time(std::process::id()));
    server.assert_running();
    check_errors(p.id, "measurement", &load);
    let checked = match p.dir {
        Dir::Encrypt => bench.round_trip(p).await,
        Dir::Decrypt => 0,
    };
    let seconds = load.elapsed.as_secs_f64();
    let items = load.items.max(1) as f64;
    let per_item = |d: Duration| d.div_f64(items);
    let row = Row {
        phase,
        in_flight,
        calls_per_second: load.calls as f64 / seconds,
        items_per_second: load.items as f64 / seconds,
        p50: load.latency(0.50),
        p99: load.latency(0.99),
        server_cpu_per_item: per_item(server_after - server_before),
        client_cpu_per_item: per_item(client_after - client_before),
        server_cores: (server_after - server_before).as_secs_f64() / seconds,
        other_cores: ((machine_after - machine_before).as_secs_f64()
            - (server_after - server_before).as_secs_f64()
            - (client_after - client_before).as_secs_f64())
        .max(0.0)
            / seconds,
        checked,
    };
    eprintln!(
        "{}: {} items/s ({} calls/s), p50 {:.2} ms, p99 {:.2} ms, server {:.2} cores, \
         rest of the machine {:.2} cores{}",
        p.id,
        thousands(row.items_per_second),
        thousands(row.calls_per_second),
        ms(row.p50),
        ms(row.p99),
        row.server_cores,
        row.other_cores,
        if checked > 0 {
            format!(", {checked} sampled ciphertexts decrypted back to their plaintexts")
        } else {
            String::new()
        }
    );
    row
}

/// Busy CPU time of the whole machine so far (user, nice, system, irq and
/// softirq of every CPU, from `/proc/stat`; steal is not ours to count).
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .map(|rest| {
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            // user nice system idle iowait irq softirq steal ...
            [0, 1, 2, 5, 6]
                .iter()
                .map(|&i| f.get(i).copied().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    let per_second: u64 = stdout_of("getconf", &["CLK_TCK"]).parse().unwrap_or(100);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// Fails loudly if anything went wrong: a fast error is not a result.
fn check_errors(id: &str, part: &str, load: &Load) {
    if load.errors > 0 {
        panic!(
            "{id} ({part}): {} items failed, so the run does not count; the first: {}",
            load.errors,
            load.first_error.as_deref().unwrap_or("?")
        );
    }
}

// ---------------------------------------------------------------- strongroom

/// One HTTP/2 connection over TLS to the dev appliance, trusting only its
/// root, as its admin.
async fn connect(banner: &Banner) -> Channel {
    let addr = &banner.grpc;
    Channel::from_shared(addr.to_string())
        .expect("a gRPC URI")
        .tls_config(banner.tls())
        .expect("a TLS configuration")
        .tcp_nodelay(true)
        // Batch answers are 1.4 to 4.4 MB: windows well above one answer,
        // so the receiving side never stalls a sender.
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

fn transit_client(channel: Channel) -> TransitClient<Channel> {
    TransitClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// Starts the appliance, makes the key and the data, and runs every phase.
async fn bench_strongroom(work: &Path, options: &Options) -> Vec<Row> {
    eprintln!("starting strongroom dev ({BIN})...");
    let (mut process, banner) = start_appliance(&work.join("dev"), work.join("strongroom.log"));
    let mut clients = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        clients.push(transit_client(connect(&banner).await));
    }

    // Ready once Transit answers.
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let answer = clients[0]
            .clone()
            .list_keys(v1::ListKeysRequest::default())
            .await;
        if answer.is_ok() {
            break;
        }
        process.assert_running();
        assert!(
            Instant::now() < deadline,
            "Transit never answered: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = clients[0]
        .clone()
        .create_key(v1::CreateKeyRequest {
            name: KEY.into(),
            r#type: v1::TransitKeyType::Aes256Gcm96 as i32,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{}", status_text("CreateKey", &s)))
        .into_inner();
    assert_eq!(key.latest_version, 1, "a new key is at version 1");
    eprintln!("created the aes256-gcm96 key {KEY:?}");

    let mut sets = [
        DataSet::new(SMALL, SMALL_ITEMS),
        DataSet::new(LARGE, LARGE_ITEMS),
    ];
    for set in &mut sets {
        encrypt_up_front(&mut clients[0].clone(), set).await;
    }
    let bench = Arc::new(Bench {
        clients,
        sets,
        samples: Mutex::new(Vec::new()),
    });

    let mut rows = Vec::new();
    for (i, phase) in PHASES.iter().enumerate() {
        if options.wants(phase.id) {
            rows.push(measure(&bench, i, &mut process, options).await);
        }
    }
    drop(bench);
    process.stop();
    rows
}

/// Encrypts every plaintext of `set` with one EncryptBatch, and checks the
/// ciphertexts decrypt back with one DecryptBatch.
async fn encrypt_up_front(client: &mut TransitClient<Channel>, set: &mut DataSet) {
    use v1::encrypt_result::Result as R;
    let results = client
        .encrypt_batch(v1::EncryptBatchRequest {
            key: KEY.into(),
            items: set.encrypt_items.clone(),
        })
        .await
        .unwrap_or_else(|s| panic!("{}", status_text("EncryptBatch", &s)))
        .into_inner()
        .results;
    set.ciphertexts = results
        .into_iter()
        .map(|r| match r.result {
            Some(R::Ok(ok)) => ok.ciphertext,
            other => panic!("EncryptBatch of the inputs failed: {other:?}"),
        })
        .collect();
    assert_eq!(set.ciphertexts.len(), set.plaintexts.len());
    for c in &set.ciphertexts {
        set.check_ciphertext(c)
            .unwrap_or_else(|e| panic!("the inputs' encryption: {e}"));
    }
    set.decrypt_items = set
        .ciphertexts
        .iter()
        .map(|c| v1::DecryptItem {
            ciphertext: c.clone(),
            ..Default::default()
        })
        .collect();
    let results = client
        .decrypt_batch(v1::DecryptBatchRequest {
            key: KEY.into(),
            items: set.decrypt_items.clone(),
        })
        .await
        .unwrap_or_else(|s| panic!("{}", status_text("DecryptBatch", &s)))
        .into_inner()
        .results;
    check_decrypted(set, &results)
        .unwrap_or_else(|f| panic!("the inputs do not decrypt back: {}", f.message));
    eprintln!(
        "encrypted {} different {}-byte plaintexts; they decrypt back",
        set.plaintexts.len(),
        set.size
    );
}

// ---------------------------------------------------------------- report

fn print_report(machine: &Machine, options: &Options, openssl: &Openssl, rows: &[Row]) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), {}, kernel {}, {}, {}.",
        machine.cpus, machine.cpu_model, machine.os, machine.kernel, machine.openssl, machine.rustc,
    );
    let _ = writeln!(
        out,
        "Load: {} s per measurement after a {} s warm-up, over {} TLS HTTP/2 connection(s) \
         on loopback; the load generator shares the machine with the appliance.",
        options.seconds,
        WARM_UP.as_secs(),
        options.connections,
    );
    let _ = writeln!(
        out,
        "openssl speed -evp aes-256-gcm -seconds {} (one process, bytes over its CPU time): \
         1 KiB encrypt {:.0} MB/s ({} ops/s), decrypt {:.0} MB/s ({} ops/s); \
         16 KiB encrypt {:.0} MB/s, decrypt {:.0} MB/s.",
        options.seconds,
        openssl.encrypt_small / 1e6,
        thousands(openssl.encrypt_small / SMALL as f64),
        openssl.decrypt_small / 1e6,
        thousands(openssl.decrypt_small / SMALL as f64),
        openssl.encrypt_large / 1e6,
        openssl.decrypt_large / 1e6,
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| operation | payload | in flight | calls/s | items/s | MB/s | p50 | p99 | \
         server CPU / item | server cores | load gen CPU / item | other work (cores) | openssl 1 core, same size | ratio | aim | |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for row in rows {
        let phase = &PHASES[row.phase];
        let size = [SMALL, LARGE][phase.set];
        let peer = openssl.rate(size, phase.dir);
        let bytes_per_second = row.items_per_second * size as f64;
        let ratio = bytes_per_second / peer;
        let (aim, met) = match (phase.mode, size) {
            (Mode::Unary, _) => (
                format!("≥ {} ops/s", thousands(UNARY_AIM)),
                Some(row.items_per_second >= UNARY_AIM),
            ),
            (_, SMALL) => (
                format!("≥ {:.0} %", BULK_AIM * 100.0),
                Some(ratio >= BULK_AIM),
            ),
            _ => (String::new(), None),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {:.1} | {:.2} ms | {:.2} ms | {:.1} µs | {:.2} | {:.1} µs | {:.2} | {:.0} MB/s | {:.1} % | {aim} | {} |",
            phase.rpc(),
            if size == SMALL { "1 KiB" } else { "16 KiB" },
            row.in_flight,
            thousands(row.calls_per_second),
            thousands(row.items_per_second),
            bytes_per_second / 1e6,
            ms(row.p50),
            ms(row.p99),
            row.server_cpu_per_item.as_secs_f64() * 1e6,
            row.server_cores,
            row.client_cpu_per_item.as_secs_f64() * 1e6,
            row.other_cores,
            peer / 1e6,
            100.0 * ratio,
            match met {
                Some(true) => "met",
                Some(false) => "not met",
                None => "",
            },
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "MB/s is plaintext bytes (10^6) per second; ratio = items/s × payload ÷ openssl's \
         bytes/s for the same size and direction. Latency is per call (per message for streams). \
         Server cores: the appliance's CPU time over wall time; other work: CPU time the rest of \
         the machine used meanwhile, so disturbed figures show."
    );
    let checked: usize = rows.iter().map(|r| r.checked).sum();
    let _ = writeln!(
        out,
        "Checked: every decrypted item equals its plaintext; {checked} sampled ciphertexts of the \
         encrypt measurements decrypted back to their plaintexts, with distinct nonces; no call \
         or item failed."
    );
    print!("{out}");
}
