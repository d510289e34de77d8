//! The audit trail: one hash-chained JSON line per request.
//!
//! A record says who called (`caller`, `source`), what they asked
//! (`operation`, `target`), how it ended (`outcome`, `detail`) and how long
//! it took (`latency_us`), with a sequence number and the previous record's
//! hash. Lines are chained in the format of [`strongroom_ceremony::chain`]
//! (the ceremony transcript's): changing any byte of a record breaks its
//! hash, and removing, inserting or reordering records breaks the sequence
//! or the chain. [`verify_files`] finds the first such break and says where;
//! `strongroom audit verify FILE…` runs it.
//!
//! A trail may span several files (rotation): the first record of a file
//! carries the hash of the last record of the file before it, so files
//! given in order verify as one chain, and a file given alone verifies as
//! the continuation of a chain it does not hold.
//!
//! Records never carry a secret: targets are names (profile, serial, key)
//! and keyed digests of sensitive values ([`ValueDigests`]: plaintexts,
//! ciphertexts, CSRs), and `detail` is an error message, which by the
//! project's invariants holds none.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strongroom_ceremony::chain::{GENESIS, open_line, seal};

mod file_sink;
mod sink;
mod syslog;
mod trail;
mod values;

pub(crate) use syslog::{SyslogConfig, SyslogFacility, SyslogTarget};
pub(crate) use trail::{AuditTrail, AuditUnavailable, SinkHealth, SinkKind, TrailConfig};
pub(crate) use values::ValueDigests;

/// Longest audit line accepted when reading a trail.
const MAX_LINE: usize = 64 * 1024;

/// One audit record, as written (without its `hash` member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditRecord {
    /// 1, 2, 3, … across the whole trail, with no gap.
    pub(crate) seq: u64,
    /// When the request ended: RFC 3339, UTC, milliseconds.
    pub(crate) time: String,
    /// Who called: the identity the appliance established, or `anonymous`.
    pub(crate) caller: String,
    /// Where from: the peer's address.
    pub(crate) source: String,
    /// What: the full RPC name, e.g. `strongroom.v1.Ca/IssueFromCsr`.
    pub(crate) operation: String,
    /// On what: profile, serial, key name… (never a secret).
    pub(crate) target: BTreeMap<String, String>,
    /// How it ended: `OK` or the gRPC status code's name.
    pub(crate) outcome: String,
    /// Why it failed, for a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
    /// How long it took, in microseconds.
    pub(crate) latency_us: u64,
    /// The previous record's hash (64 zeros for the first record ever).
    pub(crate) prev_hash: String,
}

/// A record to append: everything but the sequence, time and chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuditEntry {
    pub(crate) caller: String,
    pub(crate) source: String,
    pub(crate) operation: String,
    pub(crate) target: BTreeMap<String, String>,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
    pub(crate) latency_us: u64,
}

/// Why an audit file cannot be appended to or does not verify.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The trail is broken at `line` of `path`.
    #[error("{path} line {line}: {problem}")]
    Broken {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    /// The end of the file cannot be continued.
    #[error("{path}: {problem}")]
    Unfinished { path: PathBuf, problem: String },
}

impl AuditError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn unfinished(path: &Path, problem: impl Into<String>) -> Self {
        AuditError::Unfinished {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    fn broken(path: &Path, line: u64, problem: impl Into<String>) -> Self {
        AuditError::Broken {
            path: path.to_path_buf(),
            line,
            problem: problem.into(),
        }
    }
}

/// An audit file open for appending, continuing the chain it holds.
#[derive(Debug)]
pub(crate) struct AuditLog {
    path: PathBuf,
    file: File,
    /// The last record's sequence number (0 before the first).
    seq: u64,
    /// The last record's hash.
    prev: String,
}

impl AuditLog {
    /// Opens `path` for appending (created mode 0600 if missing). An
    /// existing file must end with a whole, intact record, which the next
    /// record continues; otherwise this refuses, so that a damaged trail is
    /// looked at, never written over.
    pub(crate) fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| AuditError::io(path, e))?;
        let (seq, prev) = match last_line(&mut file, path)? {
            None => (0, GENESIS.to_string()),
            Some(line) => {
                let (record, hash) = open_line::<AuditRecord>(&line).map_err(|e| {
                    AuditError::unfinished(
                        path,
                        format!(
                            "the last record does not open ({e}); check the file with \
                             `strongroom audit verify`"
                        ),
                    )
                })?;
                (record.seq, hash)
            }
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            seq,
            prev,
        })
    }

    /// Creates `path` (mode 0600; refused if it exists) for records that
    /// continue a chain whose last record is `seq` with hash `prev`: a new
    /// file of a rotated trail.
    pub(crate) fn continue_in(path: &Path, seq: u64, prev: &str) -> Result<AuditLog, AuditError> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| AuditError::io(path, e))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            seq,
            prev: prev.to_string(),
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The last record's sequence number (0 before the first) and hash.
    pub(crate) fn chain(&self) -> (u64, &str) {
        (self.seq, &self.prev)
    }

    /// The file's size in bytes.
    pub(crate) fn len(&self) -> Result<u64, AuditError> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| AuditError::io(&self.path, e))?
            .len())
    }

    /// Whether the path still names the file being written (it was not
    /// deleted, renamed away or replaced).
    pub(crate) fn still_in_place(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(&self.path), self.file.metadata()) {
            (Ok(at_path), Ok(open)) => at_path.dev() == open.dev() && at_path.ino() == open.ino(),
            _ => false,
        }
    }

    /// Appends one record and returns it with its hash.
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        entry: AuditEntry,
        at: SystemTime,
    ) -> Result<(AuditRecord, String), AuditError> {
        let (seq, prev) = (self.seq, self.prev.clone());
        let mut sealed = seal_records(seq, &prev, vec![(entry, at)])
            .map_err(|e| AuditError::io(&self.path, std::io::Error::other(e)))?;
        let hash = sealed.hashes.remove(0);
        self.append_sealed(&sealed.lines.concat(), (seq + 1, &hash))?;
        Ok((sealed.records.remove(0), hash))
    }

    /// Appends records sealed by [`seal_records`] in one `write`: `lines`
    /// continue this file's chain and end with record `head` (its sequence
    /// number and hash). The chain advances only if the write succeeded; a
    /// write that fails part way (a full disk) is cut off again, so the file
    /// still ends with a whole record.
    pub(crate) fn append_sealed(
        &mut self,
        lines: &str,
        head: (u64, &str),
    ) -> Result<(), AuditError> {
        let before = self.file.metadata().map(|m| m.len());
        if let Err(e) = self.file.write_all(lines.as_bytes()) {
            if let Ok(before) = before {
                // Best effort: a device that cannot be truncated holds no
                // partial line worth removing.
                let _ = self.file.set_len(before);
            }
            return Err(AuditError::io(&self.path, e));
        }
        self.seq = head.0;
        self.prev = head.1.to_string();
        Ok(())
    }

    /// Flushes what was appended to the disk.
    pub(crate) fn sync(&self) -> Result<(), AuditError> {
        self.file
            .sync_data()
            .map_err(|e| AuditError::io(&self.path, e))
    }
}

/// Records sealed into chained lines, in order, not yet written anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// The records.
    pub(crate) records: Vec<AuditRecord>,
    /// Each record as its line in a trail file, newline included.
    pub(crate) lines: Vec<String>,
    /// Each record's hash, which the next record's `prev_hash` carries.
    pub(crate) hashes: Vec<String>,
}

/// Seals `entries` into records that continue a chain whose last record is
/// `seq` with hash `prev`: numbered from `seq + 1`, each carrying the hash
/// of the one before. Fails only if a record cannot be serialised.
pub(crate) fn seal_records(
    seq: u64,
    prev: &str,
    entries: Vec<(AuditEntry, SystemTime)>,
) -> Result<Sealed, String> {
    let mut sealed = Sealed {
        records: Vec::with_capacity(entries.len()),
        lines: Vec::with_capacity(entries.len()),
        hashes: Vec::with_capacity(entries.len()),
    };
    let (mut seq, mut prev) = (seq, prev.to_string());
    for (entry, at) in entries {
        seq += 1;
        let record = AuditRecord {
            seq,
            time: rfc3339_millis(at),
            caller: entry.caller,
            source: entry.source,
            operation: entry.operation,
            target: entry.target,
            outcome: entry.outcome,
            detail: entry.detail,
            latency_us: entry.latency_us,
            prev_hash: prev,
        };
        let (line, hash) = seal(&record)?;
        sealed.lines.push(line);
        prev = hash.clone();
        sealed.hashes.push(hash);
        sealed.records.push(record);
    }
    Ok(sealed)
}

/// The last line of `file` (without its newline), `None` if it is empty.
/// A file that does not end with a newline ends in a torn record.
fn last_line(file: &mut File, path: &Path) -> Result<Option<String>, AuditError> {
    let len = file.metadata().map_err(|e| AuditError::io(path, e))?.len();
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| AuditError::io(path, e))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)
        .map_err(|e| AuditError::io(path, e))?;
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Err(AuditError::unfinished(
            path,
            "the file does not end with a whole record (the writer stopped mid-line?); check \
             it with `strongroom audit verify`",
        ));
    };
    let line = match body.iter().rposition(|b| *b == b'\n') {
        Some(at) => &body[at + 1..],
        None if start == 0 => body,
        None => {
            return Err(AuditError::unfinished(
                path,
                format!("the last record is longer than {MAX_LINE} bytes"),
            ));
        }
    };
    String::from_utf8(line.to_vec())
        .map(Some)
        .map_err(|_| AuditError::unfinished(path, "the last record is not UTF-8"))
}

/// What [`verify_files`] found in an intact trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// Records checked, in all files.
    pub(crate) records: u64,
    /// The first and last sequence numbers (`None` for empty files).
    pub(crate) seqs: Option<(u64, u64)>,
    /// The last record's hash ([`GENESIS`] if there is none).
    pub(crate) last_hash: String,
    /// Whether the first record continues a chain from a file not given.
    pub(crate) continues_earlier: bool,
}

/// Checks audit files given in order as one chain: every line opens (its
/// hash matches its bytes), sequence numbers follow each other by one, each
/// record's `prev_hash` is the previous record's hash, and the trail starts
/// at sequence 1 from [`GENESIS`] unless it continues an earlier file.
/// Stops at the first break, naming the file, the line and what is wrong.
pub(crate) fn verify_files(paths: &[PathBuf]) -> Result<Verified, AuditError> {
    let mut verified = Verified {
        records: 0,
        seqs: None,
        last_hash: GENESIS.to_string(),
        continues_earlier: false,
    };
    let mut last: Option<(u64, String)> = None;
    for path in paths {
        let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
        let mut reader = BufReader::new(file);
        let mut n: u64 = 0;
        loop {
            let mut raw = Vec::new();
            let read = reader
                .by_ref()
                .take(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1)
                .read_until(b'\n', &mut raw)
                .map_err(|e| AuditError::io(path, e))?;
            if read == 0 {
                break;
            }
            n += 1;
            let Some(body) = raw.strip_suffix(b"\n") else {
                return Err(AuditError::broken(
                    path,
                    n,
                    if raw.len() > MAX_LINE {
                        format!("longer than {MAX_LINE} bytes")
                    } else {
                        "an incomplete record at the end of the file".to_string()
                    },
                ));
            };
            let line = std::str::from_utf8(body)
                .map_err(|_| AuditError::broken(path, n, "not UTF-8 text"))?;
            let (record, hash) =
                open_line::<AuditRecord>(line).map_err(|e| AuditError::broken(path, n, e))?;
            match &last {
                None => {
                    if record.prev_hash == GENESIS {
                        if record.seq != 1 {
                            return Err(AuditError::broken(
                                path,
                                n,
                                format!(
                                    "the first record of the trail has sequence {}, not 1",
                                    record.seq
                                ),
                            ));
                        }
                    } else {
                        verified.continues_earlier = true;
                    }
                }
                Some((seq, prev)) => {
                    let expected = seq + 1;
                    if record.seq > expected {
                        let missing = if record.seq == expected + 1 {
                            format!("record {expected} is missing or out of order")
                        } else {
                            format!(
                                "records {expected} to {} are missing or out of order",
                                record.seq - 1
                            )
                        };
                        return Err(AuditError::broken(
                            path,
                            n,
                            format!("sequence {} follows {seq}: {missing}", record.seq),
                        ));
                    }
                    if record.seq < expected {
                        return Err(AuditError::broken(
                            path,
                            n,
                            format!(
                                "sequence {} follows {seq}: records were reordered or \
                                 inserted",
                                record.seq
                            ),
                        ));
                    }
                    if &record.prev_hash != prev {
                        return Err(AuditError::broken(
                            path,
                            n,
                            "its prev_hash is not the previous record's hash: the record \
                             before it was replaced, or this one was inserted",
                        ));
                    }
                }
            }
            verified.records += 1;
            verified.seqs = Some(match verified.seqs {
                None => (record.seq, record.seq),
                Some((first, _)) => (first, record.seq),
            });
            verified.last_hash = hash.clone();
            last = Some((record.seq, hash));
        }
    }
    Ok(verified)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T17:00:00.123Z`; for a
/// time that cannot be written so, seconds since 1970 (`1234.567`).
fn rfc3339_millis(at: SystemTime) -> String {
    rfc3339_millis_strict(at).unwrap_or_else(|| {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}.{:03}", since.as_secs(), since.subsec_millis())
    })
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T17:00:00.123Z` (a time
/// before 1970 as 1970); `None` for a time after 9999.
pub(crate) fn rfc3339_millis_strict(at: SystemTime) -> Option<String> {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let whole = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(since.as_secs());
    let t = der::DateTime::from_system_time(whole).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minutes(),
        t.seconds(),
        since.subsec_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            caller: "spiffe://example/service".into(),
            source: "127.0.0.1:50000".into(),
            operation: "strongroom.v1.Ca/IssueFromCsr".into(),
            target: BTreeMap::from([("profile".to_string(), "server".to_string())]),
            outcome: if i % 3 == 0 { "InvalidArgument" } else { "OK" }.into(),
            detail: (i % 3 == 0).then(|| "name not allowed".to_string()),
            latency_us: 1000 + i,
        }
    }

    fn at(i: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_000 + i)
    }

    /// A trail of `n` records in `dir/name`.
    fn trail(dir: &Path, name: &str, n: u64) -> PathBuf {
        let path = dir.join(name);
        let mut log = AuditLog::open(&path).expect("open");
        for i in 1..=n {
            log.append(entry(i), at(i)).expect("append");
        }
        log.sync().expect("sync");
        path
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").expect("write");
    }

    fn broken(paths: &[PathBuf]) -> (u64, String) {
        match verify_files(paths).expect_err("broken") {
            AuditError::Broken { line, problem, .. } => (line, problem),
            other => panic!("not a break: {other}"),
        }
    }

    #[test]
    fn records_chain_and_a_reopened_log_continues_the_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = trail(dir.path(), "audit.jsonl", 4);
        let mut log = AuditLog::open(&path).expect("reopen");
        let (record, hash) = log.append(entry(5), at(5)).expect("append");
        assert_eq!(record.seq, 5);
        assert_eq!(record.time, "2026-11-18T11:06:40.005Z");
        let verified = verify_files(std::slice::from_ref(&path)).expect("intact");
        assert_eq!(verified.records, 5);
        assert_eq!(verified.seqs, Some((1, 5)));
        assert_eq!(verified.last_hash, hash);
        assert!(!verified.continues_earlier);
        let first = &lines(&path)[0];
        assert!(first.starts_with("{\"seq\":1,\"time\":"), "{first}");
        assert!(
            first.contains(&format!("\"prev_hash\":\"{GENESIS}\"")),
            "{first}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn edits_deletions_insertions_and_reorderings_are_found_where_they_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = trail(dir.path(), "audit.jsonl", 6);
        let original = lines(&path);
        let check = |changed: Vec<String>, line: u64, expected: &str| {
            write_lines(&path, &changed);
            let (at, problem) = broken(std::slice::from_ref(&path));
            assert_eq!(at, line, "{problem}");
            assert!(problem.contains(expected), "{problem}");
        };

        // An edited record: its own hash fails.
        let mut edited = original.clone();
        edited[2] = edited[2].replace("\"latency_us\":1003", "\"latency_us\":3");
        assert_ne!(edited[2], original[2]);
        check(edited, 3, "the line was changed");
        // A deleted record: a gap in the sequence.
        let mut deleted = original.clone();
        deleted.remove(3);
        check(deleted, 4, "sequence 5 follows 3: record 4 is missing");
        let mut two = original.clone();
        two.drain(1..3);
        check(two, 2, "records 2 to 3 are missing or out of order");
        // Reordered records.
        let mut swapped = original.clone();
        swapped.swap(2, 3);
        check(
            swapped,
            3,
            "sequence 4 follows 2: record 3 is missing or out of order",
        );
        // A record inserted with a made-up chain: correctly hashed, but its
        // prev_hash is not its predecessor's, or its sequence repeats.
        let forged = AuditRecord {
            seq: 4,
            time: "2026-11-18T11:06:40.004Z".into(),
            caller: "intruder".into(),
            source: "10.0.0.1:1".into(),
            operation: "strongroom.v1.Ca/Revoke".into(),
            target: BTreeMap::new(),
            outcome: "OK".into(),
            detail: None,
            latency_us: 1,
            prev_hash: GENESIS.into(),
        };
        let (line, _) = seal(&forged).expect("seal");
        let mut inserted = original.clone();
        inserted.insert(3, line.trim_end().to_owned());
        check(
            inserted.clone(),
            4,
            "its prev_hash is not the previous record's hash",
        );
        inserted.remove(4);
        let mut replaced = inserted;
        replaced.truncate(4);
        check(
            replaced,
            4,
            "its prev_hash is not the previous record's hash",
        );
        let mut repeated = original.clone();
        repeated.insert(3, original[2].clone());
        check(
            repeated,
            4,
            "sequence 3 follows 3: records were reordered or inserted",
        );
        // A torn last line.
        write_lines(&path, &original);
        let mut torn = std::fs::read(&path).expect("read");
        torn.truncate(torn.len() - 10);
        std::fs::write(&path, &torn).expect("write");
        let (at, problem) = broken(std::slice::from_ref(&path));
        assert_eq!(at, 6);
        assert!(problem.contains("incomplete record"), "{problem}");
        let refused = AuditLog::open(&path).expect_err("torn");
        assert!(
            refused
                .to_string()
                .contains("does not end with a whole record"),
            "{refused}"
        );
        // A first record that is not the first.
        let mut headless = original.clone();
        headless.remove(0);
        write_lines(&path, &headless);
        let verified = verify_files(std::slice::from_ref(&path)).expect("a continuation");
        assert!(verified.continues_earlier);
        assert_eq!(verified.seqs, Some((2, 6)));
    }

    #[test]
    fn rotated_files_verify_as_one_chain_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = trail(dir.path(), "audit.1.jsonl", 3);
        // Rotation: the next file continues the chain of the previous one.
        let second = dir.path().join("audit.2.jsonl");
        std::fs::copy(&first, &second).expect("copy");
        let mut log = AuditLog::open(&second).expect("open");
        std::fs::write(&second, "").expect("truncate");
        log.append(entry(4), at(4)).expect("append");
        log.append(entry(5), at(5)).expect("append");
        let both = verify_files(&[first.clone(), second.clone()]).expect("in order");
        assert_eq!((both.records, both.seqs), (5, Some((1, 5))));
        assert!(!both.continues_earlier);
        let alone = verify_files(std::slice::from_ref(&second)).expect("alone");
        assert!(alone.continues_earlier);
        let (line, problem) = broken(&[second, first]);
        assert_eq!(line, 1, "{problem}");
        assert!(problem.contains("sequence 1 follows 5"), "{problem}");
    }
}
