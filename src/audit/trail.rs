//! The audit trail as the server writes it: one thread owns the files and
//! appends records in batches (one `write` per batch); a request hands its
//! record over and waits at most a bound (1 s by default) for the answer:
//! until the batch is written, when it survives a crash of the appliance and
//! is flushed to the disk within 50 ms (`fdatasync`), or with
//! `audit.sync_before_reply` until it is flushed, when it survives a crash
//! of the machine too.
//! If the record is not on disk by then, the request fails: the trail fails
//! closed, but never hangs a request on a stuck disk.
//!
//! Files are `audit-<first sequence, 20 digits>.jsonl` in one directory, so
//! that `ls` lists them in chain order. A file is rotated when it reaches
//! its size limit: the next file continues the chain. The writer keeps the
//! chain's head itself, so that a file deleted or replaced under it is
//! noticed (the path no longer names the file it writes), reported, and the
//! trail continues in a new file, leaving a gap that `strongroom audit
//! verify` names. A failed write (a full disk) is cut off again, reported,
//! and retried with the next record, so the trail recovers as soon as the
//! disk does.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::{AuditEntry, AuditError, AuditLog};

/// Records waiting for the writer at most; beyond, requests fail at once.
const QUEUE: usize = 4096;

/// Most records written in one `write`.
const BATCH: usize = 512;

/// Longest a written record waits to be flushed to the disk, unless
/// `sync_before_reply` flushes every batch before answering.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

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
}

/// Why a record could not be written in time; the request fails with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit trail unavailable: {0}")]
pub(crate) struct AuditUnavailable(pub(crate) String);

/// The trail's state, for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrailHealth {
    /// The last write succeeded.
    pub(crate) healthy: bool,
    /// What is wrong, or what went wrong last (a deleted file, say).
    pub(crate) problem: Option<String>,
    /// The file being written.
    pub(crate) file: PathBuf,
    /// The last record's sequence number.
    pub(crate) last_seq: u64,
    /// Records that could not be written since the start.
    pub(crate) failed: u64,
    /// When `problem` was noticed.
    pub(crate) problem_at: Option<SystemTime>,
}

impl TrailHealth {
    /// Records `problem`, noticed now.
    fn note(&mut self, problem: String) {
        self.problem = Some(problem);
        self.problem_at = Some(SystemTime::now());
    }
}

/// A record handed to the writer, and where its answer goes.
struct Job {
    entry: AuditEntry,
    at: SystemTime,
    done: oneshot::Sender<Result<u64, String>>,
}

/// The server's audit trail. Cheap to clone; the writer thread stops when
/// the last clone is dropped.
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
    /// must end with an intact record), and starts the writer thread.
    pub(crate) fn open(config: TrailConfig) -> Result<AuditTrail, AuditError> {
        create_private_dir(&config.dir)?;
        let log = match newest_file(&config.dir)? {
            Some(path) => AuditLog::open(&path)?,
            None => AuditLog::continue_in(
                &file_for(&config.dir, 1),
                0,
                strongroom_ceremony::chain::GENESIS,
            )?,
        };
        let (seq, prev) = log.chain();
        let health = Arc::new(Mutex::new(TrailHealth {
            healthy: true,
            problem: None,
            file: log.path().to_path_buf(),
            last_seq: seq,
            failed: 0,
            problem_at: None,
        }));
        let writer = Writer {
            dir: config.dir.clone(),
            max_file_bytes: config.max_file_bytes,
            sync_before_reply: config.sync_before_reply,
            seq,
            prev: prev.to_string(),
            log: Some(log),
            health: Arc::clone(&health),
        };
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| AuditError::io(&config.dir, e))?;
        Ok(AuditTrail {
            jobs,
            health,
            timeout: config.timeout,
        })
    }

    /// Appends `entry` and waits until it is on disk; returns its sequence
    /// number. Fails at once if the writer is too far behind, and after the
    /// configured bound if the disk does not answer.
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

/// The writer thread's state: the chain's head and the open file.
struct Writer {
    dir: PathBuf,
    max_file_bytes: u64,
    sync_before_reply: bool,
    /// The last record written: its sequence number and hash.
    seq: u64,
    prev: String,
    /// The file being written; `None` after a failure, until reopened.
    log: Option<AuditLog>,
    health: Arc<Mutex<TrailHealth>>,
}

impl Writer {
    fn run(mut self, queue: Receiver<Job>) {
        // Written records not yet flushed to the disk, and the last flush.
        let mut dirty = false;
        let mut flushed = Instant::now();
        loop {
            let first = if dirty {
                let flush_at = flushed + FLUSH_INTERVAL;
                match queue.recv_timeout(flush_at.saturating_duration_since(Instant::now())) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        self.sync(&mut []);
                        (dirty, flushed) = (false, Instant::now());
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match queue.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let entries = batch
                .iter_mut()
                .map(|job| (std::mem::take(&mut job.entry), job.at))
                .collect();
            let mut results: Vec<Result<u64, String>> = match self.write(entries) {
                Ok(seqs) => seqs.into_iter().map(Ok).collect(),
                Err(problem) => vec![Err(problem); batch.len()],
            };
            let written = results.iter().any(Result::is_ok);
            if written && self.sync_before_reply {
                self.sync(&mut results);
                flushed = Instant::now();
            }
            self.report(&results);
            for (job, result) in batch.into_iter().zip(results) {
                // The request may have given up waiting; the record stands.
                let _ = job.done.send(result);
            }
            // Otherwise the records are in the page cache, which survives a
            // crash of this process; they are flushed to the disk within
            // FLUSH_INTERVAL, to survive one of the machine.
            dirty |= written && !self.sync_before_reply;
            if dirty && flushed.elapsed() >= FLUSH_INTERVAL {
                self.sync(&mut []);
                (dirty, flushed) = (false, Instant::now());
            }
        }
        if dirty {
            self.sync(&mut []);
        }
    }

    /// Flushes the file to the disk; on failure every result becomes the
    /// failure and the file is reopened before the next write.
    fn sync(&mut self, results: &mut [Result<u64, String>]) {
        if let Some(log) = &self.log
            && let Err(e) = log.sync()
        {
            let problem = e.to_string();
            tracing::error!(problem = %problem, "audit trail cannot flush to disk");
            self.log = None;
            {
                let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
                health.healthy = false;
                health.note(problem.clone());
            }
            for result in results {
                *result = Err(problem.clone());
            }
        }
    }

    /// Writes a batch of records in one go, opening, replacing or rotating
    /// the file first as needed; returns their sequence numbers.
    fn write(&mut self, entries: Vec<(AuditEntry, SystemTime)>) -> Result<Vec<u64>, String> {
        let log = self.ready().map_err(|e| e.to_string())?;
        match log.append_all(entries) {
            Ok(records) => {
                let (seq, prev) = log.chain();
                self.prev = prev.to_string();
                self.seq = seq;
                Ok(records.iter().map(|r| r.seq).collect())
            }
            Err(e) => {
                self.log = None;
                Err(e.to_string())
            }
        }
    }

    /// The file the next record goes to.
    fn ready(&mut self) -> Result<&mut AuditLog, AuditError> {
        let replace = match &self.log {
            None => true,
            Some(log) if !log.still_in_place() => {
                let problem = format!(
                    "{} was deleted or replaced after record {}; the trail continues in a \
                     new file and `strongroom audit verify` will show the gap",
                    log.path().display(),
                    self.seq
                );
                tracing::error!(problem = %problem, "audit trail damaged");
                self.note_problem(problem);
                true
            }
            Some(log) => log.len()? >= self.max_file_bytes,
        };
        if replace {
            // Reported once: until a new file opens, there is none.
            self.log = None;
            self.log = Some(self.reopen()?);
        }
        match &mut self.log {
            Some(log) => Ok(log),
            None => unreachable!("a file was just opened"),
        }
    }

    /// Continues the chain: in the newest file if it ends at the chain's
    /// head and has room, in a new file otherwise.
    fn reopen(&self) -> Result<AuditLog, AuditError> {
        if let Some(path) = newest_file(&self.dir)?
            && let Ok(log) = AuditLog::open(&path)
            && log.chain() == (self.seq, self.prev.as_str())
            && log.len()? < self.max_file_bytes
        {
            return Ok(log);
        }
        let path = file_for(&self.dir, self.seq + 1);
        match AuditLog::continue_in(&path, self.seq, &self.prev) {
            Ok(log) => Ok(log),
            // Left behind by a failed attempt: it holds no record (or it
            // would have been the newest file ending at the head).
            Err(_) if is_empty_file(&path) => {
                std::fs::remove_file(&path).map_err(|e| AuditError::io(&path, e))?;
                AuditLog::continue_in(&path, self.seq, &self.prev)
            }
            Err(e) => Err(e),
        }
    }

    fn note_problem(&self, problem: String) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.note(problem);
    }

    /// Updates the health after a batch, logging changes.
    fn report(&self, results: &[Result<u64, String>]) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        health.failed += failures.len() as u64;
        health.last_seq = self.seq;
        if let Some(log) = &self.log {
            health.file = log.path().to_path_buf();
        }
        match failures.last() {
            Some(problem) => {
                if health.healthy {
                    tracing::error!(problem = %problem, "audit trail cannot write; requests fail until it can");
                }
                health.healthy = false;
                health.note((*problem).clone());
            }
            None if !health.healthy => {
                tracing::warn!(file = %health.file.display(), "audit trail writes again");
                health.healthy = true;
            }
            None => {}
        }
    }
}

/// `dir/audit-<seq, 20 digits>.jsonl`: the file whose first record is `seq`.
fn file_for(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("audit-{seq:020}.jsonl"))
}

/// The trail's newest file: the greatest name of the form [`file_for`].
fn newest_file(dir: &Path) -> Result<Option<PathBuf>, AuditError> {
    let mut newest: Option<PathBuf> = None;
    for entry in std::fs::read_dir(dir).map_err(|e| AuditError::io(dir, e))? {
        let path = entry.map_err(|e| AuditError::io(dir, e))?.path();
        let is_trail = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("audit-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
            .is_some_and(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()));
        if is_trail && newest.as_ref().is_none_or(|n| path > *n) {
            newest = Some(path);
        }
    }
    Ok(newest)
}

fn is_empty_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0)
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
}
