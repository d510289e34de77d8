//! The audit trail as the server writes it: one thread keeps the chain,
//! sealing records in batches, and offers each batch to every sink: the
//! trail's files always ([`super::file_sink`]), syslog too when configured
//! ([`super::syslog`]). A request hands its record over and waits at most a
//! bound (1 s by default) until one sink has written it: the file, when it
//! is in the operating system (where it survives a crash of the appliance,
//! flushed to the disk within 50 ms by `fdatasync`), or with
//! `audit.sync_before_reply` once it is flushed, when it survives a crash of
//! the machine too; syslog, when it is sent on the socket.
//! If no sink has it by then, the request fails: the trail fails closed, but
//! never hangs a request on a stuck disk or receiver, and a stuck sink never
//! holds up the others (with syslog, each sink runs on its own thread behind
//! a bounded inbox; the files alone are written on the chain thread, without
//! a hand-off per batch, and a stuck disk fails requests at the bound, then
//! at once once the queue is full).
//!
//! The chain thread keeps the chain's head itself. When no sink wrote a
//! batch's last records, the head goes back before them, so they are never
//! in any sink and the next records take their sequence numbers: with the
//! file alone, a full disk leaves no gap. Records that some sink may still
//! write (it had not answered within the bound) keep their numbers.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::file_sink::FileSink;
use super::sink::{self, Answer, Batch, Decision, Driven, Sink, Written};
use super::syslog::{SyslogConfig, SyslogSink};
use super::{AuditEntry, AuditError, seal_records};

/// Records waiting for the chain thread at most; beyond, requests fail at
/// once.
const QUEUE: usize = 4096;

/// Most records sealed and written in one batch.
const BATCH: usize = 512;

/// Batches waiting for one sink at most; beyond, that sink misses them (the
/// others still take them).
const SINK_QUEUE: usize = 64;

/// Where and how the trail is written.
#[derive(Debug, Clone)]
pub(crate) struct TrailConfig {
    /// The directory of the trail's files (created 0700 if missing).
    pub(crate) dir: PathBuf,
    /// Rotate to a new file once the current one is this large.
    pub(crate) max_file_bytes: u64,
    /// Longest a request waits for its record to be written.
    pub(crate) timeout: Duration,
    /// Reply only once the record is flushed to the disk (`fdatasync`),
    /// rather than once it is written to the operating system.
    pub(crate) sync_before_reply: bool,
    /// Where records are sent to syslog as well, if anywhere.
    pub(crate) syslog: Option<SyslogConfig>,
}

/// Why a record could not be written in time; the request fails with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit trail unavailable: {0}")]
pub(crate) struct AuditUnavailable(pub(crate) String);

/// The trail's state, for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrailHealth {
    /// The last record was accepted (some sink wrote it).
    pub(crate) healthy: bool,
    /// What is wrong, or what went wrong last (a deleted file, say).
    pub(crate) problem: Option<String>,
    /// The file being written.
    pub(crate) file: PathBuf,
    /// The last record's sequence number.
    pub(crate) last_seq: u64,
    /// Records that no sink wrote since the start; their requests failed.
    pub(crate) failed: u64,
    /// Each sink's state: the file sink's first.
    pub(crate) sinks: Vec<SinkHealth>,
    /// When `problem` was noticed.
    pub(crate) problem_at: Option<SystemTime>,
}

impl TrailHealth {
    /// Records `problem`, noticed now.
    pub(crate) fn note(&mut self, problem: String) {
        self.problem = Some(problem);
        self.problem_at = Some(SystemTime::now());
    }
}

/// Which kind of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkKind {
    /// The trail's JSON-lines files.
    File,
    /// A syslog receiver.
    Syslog,
}

impl SinkKind {
    /// `file` or `syslog`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Syslog => "syslog",
        }
    }
}

/// One sink's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SinkHealth {
    /// Which sink.
    pub(crate) kind: SinkKind,
    /// Where it writes: the trail's directory, or the syslog target.
    pub(crate) target: String,
    /// Its last write succeeded.
    pub(crate) healthy: bool,
    /// What is wrong with it, or what went wrong last.
    pub(crate) problem: Option<String>,
    /// Records it wrote since the start.
    pub(crate) written: u64,
    /// Records it could not write since the start (another sink may have).
    pub(crate) failed: u64,
}

/// A record handed to the chain thread, and where its answer goes.
struct Job {
    entry: AuditEntry,
    at: SystemTime,
    done: Answer,
}

/// The server's audit trail. Cheap to clone; the threads stop when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct AuditTrail {
    jobs: SyncSender<Job>,
    health: Arc<Mutex<TrailHealth>>,
    timeout: Duration,
}

impl std::fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditTrail")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl AuditTrail {
    /// Opens the trail in `config.dir`, continuing its newest file (which
    /// must end with an intact record), and starts its threads. A syslog
    /// receiver is first reached with the first record.
    pub(crate) fn open(config: TrailConfig) -> Result<AuditTrail, AuditError> {
        create_private_dir(&config.dir)?;
        let file = FileSink::open(&config.dir, config.max_file_bytes, config.sync_before_reply)?;
        let (seq, prev) = file.head();
        let file_path = file.file().unwrap_or_else(|| config.dir.clone());
        let mut sinks: Vec<(Box<dyn Sink>, SinkHealth)> = vec![(
            Box::new(file),
            SinkHealth::new(SinkKind::File, file_path.display().to_string()),
        )];
        if let Some(syslog) = &config.syslog {
            sinks.push((
                Box::new(SyslogSink::new(syslog, config.timeout)),
                SinkHealth::new(SinkKind::Syslog, syslog.target.to_string()),
            ));
        }
        let health = Arc::new(Mutex::new(TrailHealth {
            healthy: true,
            problem: None,
            file: file_path,
            last_seq: seq,
            failed: 0,
            sinks: sinks.iter().map(|(_, h)| h.clone()).collect(),
            problem_at: None,
        }));
        let alone = sinks.len() == 1;
        let mut inboxes = Vec::with_capacity(sinks.len());
        let mut inline = None;
        for (index, (sink, sink_health)) in sinks.into_iter().enumerate() {
            let driven = Driven::new(sink, index, Arc::clone(&health), alone);
            if alone {
                // The files alone: written on the chain thread, without a
                // hand-off. A stuck disk still fails requests within the
                // bound: they stop waiting, and the queue refuses new ones.
                inline = Some(driven);
                break;
            }
            let (inbox, batches) = mpsc::sync_channel(SINK_QUEUE);
            std::thread::Builder::new()
                .name(format!("audit-{}", sink_health.kind.name()))
                .spawn(move || sink::drive(driven, batches))
                .map_err(|e| AuditError::io(&config.dir, e))?;
            inboxes.push(inbox);
        }
        let chain = Chain {
            seq,
            prev,
            sinks: inboxes,
            inline,
            health: Arc::clone(&health),
            timeout: config.timeout,
        };
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || chain.run(queue))
            .map_err(|e| AuditError::io(&config.dir, e))?;
        Ok(AuditTrail {
            jobs,
            health,
            timeout: config.timeout,
        })
    }

    /// Appends `entry` and waits until a sink has written it; returns its
    /// sequence number. Fails at once if the trail is too far behind, and
    /// after the configured bound if no sink answers.
    pub(crate) async fn record(&self, entry: AuditEntry) -> Result<u64, AuditUnavailable> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            entry,
            at: SystemTime::now(),
            done,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(AuditUnavailable(format!(
                    "{QUEUE} records are waiting for the disk"
                )));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(AuditUnavailable("the audit writer stopped".into()));
            }
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(Ok(seq))) => Ok(seq),
            Ok(Ok(Err(problem))) => Err(AuditUnavailable(problem)),
            Ok(Err(_)) => Err(AuditUnavailable("the audit writer stopped".into())),
            Err(_) => Err(AuditUnavailable(format!(
                "the record was not written within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// The trail's state.
    pub(crate) fn health(&self) -> TrailHealth {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl SinkHealth {
    /// A sink of `kind` writing to `target`, healthy until it fails.
    fn new(kind: SinkKind, target: String) -> SinkHealth {
        SinkHealth {
            kind,
            target,
            healthy: true,
            problem: None,
            written: 0,
            failed: 0,
        }
    }
}

/// The chain thread's state: the chain's head and the sinks' inboxes.
struct Chain {
    /// The last record: its sequence number and hash.
    seq: u64,
    prev: String,
    sinks: Vec<SyncSender<Arc<Batch>>>,
    /// The only sink, written on this thread.
    inline: Option<Driven>,
    health: Arc<Mutex<TrailHealth>>,
    /// How long a batch waits for a sink to write it.
    timeout: Duration,
}

impl Chain {
    fn run(mut self, queue: Receiver<Job>) {
        loop {
            let due = self.inline.as_ref().and_then(Driven::due);
            let first = match due {
                Some(at) => {
                    match queue.recv_timeout(at.saturating_duration_since(Instant::now())) {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout) => {
                            if let Some(inline) = &mut self.inline {
                                inline.tick();
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match queue.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                },
            };
            let mut jobs = vec![first];
            while jobs.len() < BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.write(jobs);
        }
        if let Some(inline) = &mut self.inline
            && inline.due().is_some()
        {
            inline.tick();
        }
    }

    /// Seals `jobs`' records, offers them to every sink, and waits until
    /// they are accepted, every sink has answered, or the bound has passed.
    fn write(&mut self, jobs: Vec<Job>) {
        let n = jobs.len();
        let mut entries = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        let mut answers = Vec::with_capacity(n);
        for job in jobs {
            entries.push((job.entry, job.at));
            times.push(job.at);
            answers.push(job.done);
        }
        let sealed = match seal_records(self.seq, &self.prev, entries) {
            Ok(sealed) => sealed,
            Err(e) => {
                let problem = format!("a record cannot be sealed: {e}");
                self.failed(n, problem.clone());
                for answer in answers {
                    let _ = answer.send(Err(problem.clone()));
                }
                return;
            }
        };
        let batch = Arc::new(Batch::new(
            self.seq + 1,
            self.prev.clone(),
            sealed,
            times,
            answers,
            self.sinks.len() + usize::from(self.inline.is_some()),
        ));
        if let Some(inline) = &mut self.inline {
            inline.write(&batch);
        }
        for (index, inbox) in self.sinks.iter().enumerate() {
            let missed = match inbox.try_send(Arc::clone(&batch)) {
                Ok(()) => continue,
                Err(TrySendError::Full(_)) => {
                    format!("{SINK_QUEUE} batches are waiting for it (is it stuck?)")
                }
                Err(TrySendError::Disconnected(_)) => "it stopped".to_string(),
            };
            self.missed(index, n, &missed);
            batch.report(&Written::none(missed));
        }
        let deadline = Instant::now() + self.timeout;
        match batch.wait(deadline) {
            // A sink wrote it all and said so in the health.
            Decision::Settled { accepted, .. } if accepted == n => {
                let (seq, prev) = batch.head_after(n);
                (self.seq, self.prev) = (seq, prev.to_string());
            }
            Decision::Settled {
                accepted,
                reached,
                problem,
            } => {
                // Only records that may be somewhere keep their numbers.
                let (seq, prev) = batch.head_after(reached);
                (self.seq, self.prev) = (seq, prev.to_string());
                self.failed(n - accepted, problem.clone());
                batch.refuse(&problem);
            }
            Decision::Undecided { accepted } => {
                // A sink may still write them: they keep their numbers. Their
                // requests have waited as long as they may.
                let (seq, prev) = batch.head_after(n);
                (self.seq, self.prev) = (seq, prev.to_string());
                if accepted < n {
                    self.failed(
                        n - accepted,
                        format!(
                            "no sink wrote records {} to {} within {} ms; their requests failed",
                            batch.first_seq + accepted as u64,
                            batch.first_seq + n as u64 - 1,
                            self.timeout.as_millis()
                        ),
                    );
                }
            }
        }
    }

    /// Notes that the sink at `index` missed `n` records, because `why`.
    fn missed(&self, index: usize, n: usize, why: &str) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sink) = health.sinks.get_mut(index) {
            if sink.healthy {
                tracing::error!(
                    sink = sink.kind.name(),
                    problem = %why,
                    "audit sink misses records"
                );
            }
            sink.healthy = false;
            sink.failed += n as u64;
            sink.problem = Some(why.to_string());
        }
    }

    /// Notes in the health that `n` records were not accepted, because of
    /// `problem`, before their requests learn it.
    fn failed(&self, n: usize, problem: String) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.failed += n as u64;
        health.last_seq = self.seq;
        if health.healthy {
            tracing::error!(problem = %problem, "audit trail cannot write; requests fail until it can");
        }
        health.healthy = false;
        health.note(problem);
    }
}

fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(AuditError::io(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::verify_files;
    use super::*;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            caller: "spiffe://example/service".into(),
            source: "127.0.0.1:5000".into(),
            operation: "strongroom.v1.Transit/Encrypt".into(),
            target: BTreeMap::from([("key".into(), format!("k{i}"))]),
            outcome: "OK".into(),
            detail: None,
            latency_us: i,
        }
    }

    fn config(dir: &Path, max_file_bytes: u64) -> TrailConfig {
        TrailConfig {
            dir: dir.to_path_buf(),
            max_file_bytes,
            timeout: Duration::from_millis(500),
            sync_before_reply: true,
            syslog: None,
        }
    }

    /// The trail's files, oldest first.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        files
    }

    #[tokio::test]
    async fn records_rotate_across_files_that_verify_as_one_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let trail = AuditTrail::open(config(dir.path(), 1000)).expect("open");
        for i in 1..=20 {
            assert_eq!(trail.record(entry(i)).await.expect("record"), i);
        }
        let files = files(dir.path());
        assert!(files.len() >= 4, "{files:?}");
        assert_eq!(
            files[0].file_name().and_then(|n| n.to_str()),
            Some("audit-00000000000000000001.jsonl")
        );
        let verified = verify_files(&files).expect("one chain");
        assert_eq!(verified.seqs, Some((1, 20)));
        drop(trail);

        // A restart continues the newest file's chain.
        let trail = AuditTrail::open(config(dir.path(), 1000)).expect("reopen");
        assert_eq!(trail.record(entry(21)).await.expect("record"), 21);
        let verified = verify_files(&super::tests::files(dir.path())).expect("one chain");
        assert_eq!(verified.seqs, Some((1, 21)));
        assert!(trail.health().healthy);
    }

    #[tokio::test]
    async fn a_deleted_file_is_reported_and_the_trail_continues_with_a_gap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let trail = AuditTrail::open(config(dir.path(), 1 << 20)).expect("open");
        for i in 1..=3 {
            trail.record(entry(i)).await.expect("record");
        }
        let first = files(dir.path()).remove(0);
        std::fs::remove_file(&first).expect("delete");
        assert_eq!(trail.record(entry(4)).await.expect("record"), 4);
        let health = trail.health();
        assert!(health.healthy);
        let problem = health.problem.expect("reported");
        assert!(
            problem.contains("deleted or replaced after record 3"),
            "{problem}"
        );
        let now = files(dir.path());
        assert_eq!(now.len(), 1);
        assert!(
            now[0].ends_with("audit-00000000000000000004.jsonl"),
            "{now:?}"
        );
        // The new file alone is a continuation; the deleted records are
        // missing from any trail that starts at the beginning.
        assert!(verify_files(&now).expect("continuation").continues_earlier);
    }

    #[tokio::test]
    async fn a_full_disk_fails_requests_and_the_trail_recovers_with_the_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The trail's file is "on a full disk": /dev/full refuses every write.
        let file = dir.path().join("audit-00000000000000000001.jsonl");
        std::os::unix::fs::symlink("/dev/full", &file).expect("symlink");
        let trail = AuditTrail::open(config(dir.path(), 1 << 20)).expect("open");
        for _ in 0..2 {
            let err = trail.record(entry(1)).await.expect_err("disk full");
            assert!(err.0.contains("No space left"), "{err}");
        }
        let health = trail.health();
        assert!(!health.healthy);
        assert_eq!((health.last_seq, health.failed), (0, 2));
        assert!(health.problem.expect("problem").contains("No space left"));
        let noticed = health.problem_at.expect("when the problem was noticed");
        assert!(
            noticed <= SystemTime::now() && noticed > SystemTime::now() - Duration::from_secs(60)
        );

        // Space again: the next record lands, starting the chain.
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(trail.record(entry(2)).await.expect("record"), 1);
        assert_eq!(trail.record(entry(3)).await.expect("record"), 2);
        assert!(trail.health().healthy);
        let verified = verify_files(&[file]).expect("one chain");
        assert_eq!(verified.seqs, Some((1, 2)));
    }

    #[tokio::test]
    async fn a_stuck_writer_fails_requests_within_the_bound_without_hanging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let trail = AuditTrail::open(config(dir.path(), 1 << 20)).expect("open");
        trail.record(entry(1)).await.expect("record");
        // Stall the writer thread after its next write (it reports to the
        // health record, held here), as a disk that stops answering would.
        let health = Arc::clone(&trail.health);
        let (locked, is_locked) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _held = health.lock().expect("lock");
            locked.send(()).expect("signal");
            std::thread::sleep(Duration::from_millis(1500));
        });
        is_locked.recv().expect("locked");
        let started = std::time::Instant::now();
        let err = trail.record(entry(2)).await.expect_err("stuck");
        let waited = started.elapsed();
        assert!(err.0.contains("not written within 500 ms"), "{err}");
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_millis(1400),
            "{waited:?}"
        );
        holder.join().expect("holder");
        // Unstuck: the next request is served (the late record stands).
        assert_eq!(trail.record(entry(3)).await.expect("record"), 3);
    }

    /// The trail's health once `done` holds (each sink reports on its own
    /// thread, the slower after the request learned its fate).
    fn settled(trail: &AuditTrail, done: impl Fn(&TrailHealth) -> bool) -> TrailHealth {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let health = trail.health();
            if done(&health) {
                return health;
            }
            assert!(Instant::now() < deadline, "never settled: {health:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Receives one syslog message's MSG (the record's line) from `socket`.
    fn received_line(socket: &std::os::unix::net::UnixDatagram) -> String {
        let mut buf = vec![0u8; 65536];
        let n = socket.recv(&mut buf).expect("a syslog message");
        let text = std::str::from_utf8(&buf[..n]).expect("utf-8");
        syslog_rfc5424::parse_message(text).expect("RFC 5424").msg
    }

    #[tokio::test]
    async fn syslog_takes_records_the_file_cannot_and_the_trail_fails_only_when_both_cannot() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("audit");
        let socket_path = tmp.path().join("log.sock");
        let receiver = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let trail = AuditTrail::open(TrailConfig {
            syslog: Some(super::super::SyslogConfig {
                target: super::super::SyslogTarget::Unix(socket_path.clone()),
                facility: super::super::SyslogFacility::Authpriv,
            }),
            ..config(&dir, 1 << 20)
        })
        .expect("open");
        assert_eq!(trail.record(entry(1)).await.expect("record"), 1);
        settled(&trail, |h| h.sinks[0].written == 1);
        let first = std::fs::read_to_string(&files(&dir)[0]).expect("read");
        assert_eq!(received_line(&receiver), first.trim_end());

        // The file cannot be written (its directory is gone): syslog takes
        // the records, requests succeed, the file sink is reported.
        let aside = tmp.path().join("aside");
        std::fs::rename(&dir, &aside).expect("move aside");
        std::fs::write(&dir, b"").expect("a file where the directory was");
        let mut syslog_only = Vec::new();
        for i in 2..=3 {
            assert_eq!(trail.record(entry(i)).await.expect("record"), i);
            syslog_only.push(received_line(&receiver));
        }
        let health = settled(&trail, |h| h.sinks[0].failed == 2);
        assert!(health.healthy);
        assert_eq!((health.last_seq, health.failed), (3, 0));
        let (file, syslog) = (&health.sinks[0], &health.sinks[1]);
        assert_eq!((file.kind, syslog.kind), (SinkKind::File, SinkKind::Syslog));
        assert!(!file.healthy && syslog.healthy);
        assert!(
            file.problem
                .as_deref()
                .expect("problem")
                .contains("Not a directory"),
            "{file:?}"
        );
        assert_eq!((file.written, file.failed), (1, 2));
        assert_eq!((syslog.written, syslog.failed), (3, 0));
        assert_eq!(syslog.target, format!("unix:{}", socket_path.display()));

        // Neither can: the request fails, naming both, and the record is in
        // no sink, so its number is given again.
        drop(receiver);
        std::fs::remove_file(&socket_path).expect("remove socket");
        let err = trail.record(entry(4)).await.expect_err("no sink");
        assert!(err.0.contains("Not a directory"), "{err}");
        assert!(err.0.contains("syslog unix:"), "{err}");
        let health = trail.health();
        assert!(!health.healthy);
        assert_eq!((health.last_seq, health.failed), (3, 1));

        // The file is back: it continues in a new file after the gap, which
        // only syslog's records fill.
        std::fs::remove_file(&dir).expect("remove file");
        std::fs::rename(&aside, &dir).expect("move back");
        assert_eq!(trail.record(entry(5)).await.expect("record"), 4);
        let health = trail.health();
        assert!(health.healthy && health.sinks[0].healthy && !health.sinks[1].healthy);
        assert!(
            health.sinks[0]
                .problem
                .as_deref()
                .expect("the gap is reported")
                .contains("miss records 2 to 3"),
            "{health:?}"
        );
        let now = files(&dir);
        assert_eq!(now.len(), 2);
        assert!(
            now[1].ends_with("audit-00000000000000000004.jsonl"),
            "{now:?}"
        );
        let broken = verify_files(&now).expect_err("a gap");
        assert!(
            broken.to_string().contains("records 2 to 3 are missing"),
            "{broken}"
        );
        let merged = tmp.path().join("merged.jsonl");
        let mut text = std::fs::read_to_string(&now[0]).expect("read");
        for line in &syslog_only {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&std::fs::read_to_string(&now[1]).expect("read"));
        std::fs::write(&merged, text).expect("write");
        let verified = verify_files(&[merged]).expect("one chain with syslog's records");
        assert_eq!(verified.seqs, Some((1, 4)));
    }
}
