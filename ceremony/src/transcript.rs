//! The transcript: one JSON line per ceremony step, hash-chained.
//!
//! Each line is a JSON object whose fields come in this order:
//!
//! ```text
//! {"seq":1,"time":"2026-11-22T17:00:00Z","step":"begin","ceremony":"root",
//!  "config_sha256":"…","details":{…},"keys":{"<label>":"<SPKI SHA-256>"},
//!  "outputs":{"<file>":"<SHA-256>"},"prev_hash":"…","hash":"…"}
//! ```
//!
//! The lines are chained as [`crate::chain`] describes (`prev_hash` of the
//! first line is 64 zeros): change any byte of a line and its hash fails;
//! change a hash and the next line's `prev_hash` fails; remove the last
//! lines and the closing `end` step is missing. The last line's hash is the digest the witnesses write down.
//!
//! Each line is written and synced before the ceremony moves on, so a crash
//! leaves a transcript of every step that happened.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::rfc3339;
use crate::error::CeremonyError;

/// The transcript's file name in the output directory.
pub const TRANSCRIPT: &str = "transcript.jsonl";

pub use crate::chain::GENESIS;

/// One transcript line, without its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// 1, 2, 3, … with no gap.
    pub seq: u64,
    /// When the step was recorded (RFC 3339, UTC).
    pub time: String,
    /// What happened: `begin`, `token-opened`, `shares-split`, `pin-set`,
    /// `quorum`, `key-generated`, `key-found`, `certificate-signed`,
    /// `crl-signed`, `end`.
    pub step: String,
    /// The ceremony type.
    pub ceremony: String,
    /// SHA-256 of the ceremony file as reviewed.
    pub config_sha256: String,
    /// Step-specific facts (never a secret).
    pub details: serde_json::Value,
    /// Keys involved: label → SHA-256 of the DER SubjectPublicKeyInfo.
    pub keys: BTreeMap<String, String>,
    /// Files written by this step: name in the output directory → SHA-256.
    pub outputs: BTreeMap<String, String>,
    /// The previous line's hash.
    pub prev_hash: String,
}

/// A step to record (the transcript fills in seq, time, hashes).
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub step: &'static str,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub keys: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
}

impl Entry {
    pub(crate) fn new(step: &'static str) -> Self {
        Entry {
            step,
            ..Entry::default()
        }
    }

    pub(crate) fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    pub(crate) fn key(mut self, label: &str, fingerprint: &str) -> Self {
        self.keys.insert(label.to_string(), fingerprint.to_string());
        self
    }

    pub(crate) fn output(mut self, name: &str, digest: String) -> Self {
        self.outputs.insert(name.to_string(), digest);
        self
    }
}

/// An open transcript, appended to step by step.
pub(crate) struct Transcript {
    path: PathBuf,
    file: File,
    seq: u64,
    prev: String,
    ceremony: String,
    config_sha256: String,
}

impl Transcript {
    /// Creates `dir/transcript.jsonl`, which must not exist.
    pub(crate) fn create(
        dir: &Path,
        ceremony: &str,
        config_sha256: &str,
    ) -> Result<Transcript, CeremonyError> {
        let path = dir.join(TRANSCRIPT);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    CeremonyError::OutputExists(path.clone())
                } else {
                    CeremonyError::io(&path, e)
                }
            })?;
        Ok(Transcript {
            path,
            file,
            seq: 0,
            prev: GENESIS.to_string(),
            ceremony: ceremony.to_string(),
            config_sha256: config_sha256.to_string(),
        })
    }

    /// Appends one step, synced to disk; returns its hash.
    pub(crate) fn append(&mut self, entry: Entry) -> Result<String, CeremonyError> {
        let record = Record {
            seq: self.seq + 1,
            time: rfc3339(SystemTime::now()),
            step: entry.step.to_string(),
            ceremony: self.ceremony.clone(),
            config_sha256: self.config_sha256.clone(),
            details: serde_json::Value::Object(entry.details),
            keys: entry.keys,
            outputs: entry.outputs,
            prev_hash: self.prev.clone(),
        };
        let (line, hash) = crate::chain::seal(&record)
            .map_err(|e| CeremonyError::io(&self.path, std::io::Error::other(e)))?;
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| CeremonyError::io(&self.path, e))?;
        self.seq += 1;
        self.prev = hash.clone();
        Ok(hash)
    }
}

/// Parses one transcript line (without its newline) and checks its own
/// hash and form; see [`crate::chain`].
pub fn open_line(line: &str) -> Result<(Record, String), String> {
    crate::chain::open_line(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, prev: &str) -> Record {
        Record {
            seq,
            time: "2026-01-01T00:00:00Z".into(),
            step: "begin".into(),
            ceremony: "root".into(),
            config_sha256: "ab".repeat(32),
            details: serde_json::json!({"a": 1}),
            keys: BTreeMap::new(),
            outputs: BTreeMap::from([("root.pem".to_string(), "cd".repeat(32))]),
            prev_hash: prev.into(),
        }
    }

    #[test]
    fn a_transcript_line_round_trips_and_unknown_members_are_refused() {
        let (line, hash) = crate::chain::seal(&record(1, GENESIS)).expect("seal");
        let line = line.trim_end();
        let (back, back_hash) = open_line(line).expect("open");
        assert_eq!(back, record(1, GENESIS));
        assert_eq!(back_hash, hash);
        // A member the format does not know, even with a correct hash.
        let extra = serde_json::json!({"seq": 1, "extra": true, "prev_hash": GENESIS});
        let (line, _) = crate::chain::seal(&extra).expect("seal");
        let err = open_line(line.trim_end()).expect_err("unknown member");
        assert!(err.contains("not a valid record"), "{err}");
    }
}
