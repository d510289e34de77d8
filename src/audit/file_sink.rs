//! The trail's files: the sink every trail has.
//!
//! Files are `audit-<first sequence, 20 digits>.jsonl` in one directory, so
//! that `ls` lists them in chain order. A batch is written in one `write`
//! and flushed to the disk within 50 ms (`fdatasync`), or before the batch
//! counts as written with `audit.sync_before_reply`. A file is rotated when
//! it reaches its size limit: the next file continues the chain. Each batch
//! says which record it continues, so that a file deleted or replaced under
//! the sink is noticed (the path no longer names the file it writes),
//! reported, and the trail continues in a new file, leaving a gap that
//! `strongroom audit verify` names; so do records the sink could not write
//! while another sink accepted them. A failed write (a full disk) is cut off
//! again, reported, and retried with the next batch, so the sink recovers as
//! soon as the disk does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sink::{Batch, Sink, Written};
use super::{AuditError, AuditLog};

/// Longest a written record waits to be flushed to the disk, unless
/// `sync_before_reply` flushes every batch before it counts as written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// The file sink's state: the open file and what is not yet on the disk.
pub(super) struct FileSink {
    dir: PathBuf,
    max_file_bytes: u64,
    sync_before_reply: bool,
    /// The file being written; `None` after a failure, until reopened.
    log: Option<AuditLog>,
    /// The last record written to any file of the trail.
    last_written: u64,
    /// Records written but not yet flushed to the disk, and the last flush.
    dirty: bool,
    flushed: Instant,
    /// Noticed while preparing the write, reported with it.
    notice: Option<String>,
}

impl FileSink {
    /// Continues the trail in `dir`: in its newest file (which must end with
    /// an intact record), or in a first file for a new trail.
    pub(super) fn open(
        dir: &Path,
        max_file_bytes: u64,
        sync_before_reply: bool,
    ) -> Result<FileSink, AuditError> {
        let log = match newest_file(dir)? {
            Some(path) => AuditLog::open(&path)?,
            None => {
                AuditLog::continue_in(&file_for(dir, 1), 0, strongroom_ceremony::chain::GENESIS)?
            }
        };
        Ok(FileSink {
            dir: dir.to_path_buf(),
            max_file_bytes,
            sync_before_reply,
            last_written: log.chain().0,
            log: Some(log),
            dirty: false,
            flushed: Instant::now(),
            notice: None,
        })
    }

    /// The last record of the trail's newest file: its sequence number (0
    /// for none) and hash, which the next record continues.
    pub(super) fn head(&self) -> (u64, String) {
        match &self.log {
            Some(log) => {
                let (seq, prev) = log.chain();
                (seq, prev.to_string())
            }
            None => (0, strongroom_ceremony::chain::GENESIS.to_string()),
        }
    }

    /// Flushes the file to the disk; on failure the file is reopened before
    /// the next write.
    fn sync(&mut self) -> Result<(), String> {
        self.dirty = false;
        self.flushed = Instant::now();
        if let Some(log) = &self.log
            && let Err(e) = log.sync()
        {
            self.log = None;
            return Err(e.to_string());
        }
        Ok(())
    }

    /// The file `batch` goes to, opening, replacing or rotating it first as
    /// needed.
    fn ready(&mut self, batch: &Batch) -> Result<&mut AuditLog, AuditError> {
        let (seq, prev) = batch.head_after(0);
        let replace = match &self.log {
            None => true,
            Some(log) if !log.still_in_place() => {
                let problem = format!(
                    "{} was deleted or replaced after record {}; the trail continues in a \
                     new file and `strongroom audit verify` will show the gap",
                    log.path().display(),
                    log.chain().0
                );
                tracing::error!(problem = %problem, "audit trail damaged");
                self.notice = Some(problem);
                true
            }
            // Records the file missed (the other sinks took them).
            Some(log) if log.chain() != (seq, prev) => true,
            Some(log) => log.len()? >= self.max_file_bytes,
        };
        if replace {
            // Reported once: until a new file opens, there is none.
            self.log = None;
            self.log = Some(self.reopen(seq, prev)?);
        }
        match &mut self.log {
            Some(log) => Ok(log),
            None => unreachable!("a file was just opened"),
        }
    }

    /// Continues the chain after record `seq` (hash `prev`): in the newest
    /// file if it ends there and has room, in a new file otherwise.
    fn reopen(&self, seq: u64, prev: &str) -> Result<AuditLog, AuditError> {
        if let Some(path) = newest_file(&self.dir)?
            && let Ok(log) = AuditLog::open(&path)
            && log.chain() == (seq, prev)
            && log.len()? < self.max_file_bytes
        {
            return Ok(log);
        }
        let path = file_for(&self.dir, seq + 1);
        match AuditLog::continue_in(&path, seq, prev) {
            Ok(log) => Ok(log),
            // Left behind by a failed attempt: it holds no record (or it
            // would have been the newest file ending at the head).
            Err(_) if is_empty_file(&path) => {
                std::fs::remove_file(&path).map_err(|e| AuditError::io(&path, e))?;
                AuditLog::continue_in(&path, seq, prev)
            }
            Err(e) => Err(e),
        }
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &Batch) -> Written {
        let n = batch.len();
        let head = batch.head_after(n);
        let written = match self.ready(batch) {
            Ok(log) => log
                .append_sealed(&batch.lines.concat(), head)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let notice = self.notice.take();
        if let Err(problem) = written {
            self.log = None;
            return Written {
                notice,
                ..Written::none(problem)
            };
        }
        // Records before this batch that the files do not have.
        let (seq, _) = batch.head_after(0);
        let gap = (seq > self.last_written).then(|| {
            let problem = format!(
                "the trail's files miss records {} to {seq}, which the file sink could not \
                 write (another sink took them, or their requests failed); the trail continues \
                 in a new file and `strongroom audit verify` will show the gap",
                self.last_written + 1
            );
            tracing::warn!(problem = %problem, "audit files have a gap");
            problem
        });
        self.last_written = head.0;
        let notice = match (notice, gap) {
            (Some(deleted), Some(gap)) => Some(format!("{deleted}; {gap}")),
            (deleted, gap) => deleted.or(gap),
        };
        if self.sync_before_reply {
            if let Err(problem) = self.sync() {
                // In the file, but maybe not on the disk: not accepted, and
                // never written again under another record.
                return Written {
                    accepted: 0,
                    reached: n,
                    problem: Some(problem),
                    notice,
                };
            }
        } else {
            // In the page cache, which survives a crash of this process;
            // flushed to the disk within FLUSH_INTERVAL, to survive one of
            // the machine.
            self.dirty = true;
        }
        Written {
            notice,
            ..Written::all(n)
        }
    }

    fn due(&self) -> Option<Instant> {
        self.dirty.then(|| self.flushed + FLUSH_INTERVAL)
    }

    fn tick(&mut self) -> Option<String> {
        self.sync().err()
    }

    fn file(&self) -> Option<PathBuf> {
        self.log.as_ref().map(|log| log.path().to_path_buf())
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
