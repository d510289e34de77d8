//! The seal record: the public description of the share set(s) whose shares
//! unseal the appliance, kept in `seal.json` in the data directory.
//!
//! It holds no secret: per set, its identifier, `K`, `N` and the SHA-256
//! fingerprint of each share ([`Share::fingerprint`]). The fingerprints let
//! the appliance refuse a share that is not exactly one it handed out (an
//! old, foreign or altered share) the moment it is given, before `K` shares
//! are together. Share values carry at least 128 bits of entropy, so a
//! fingerprint does not reveal its share.
//!
//! Normally the record lists one set. It lists two only while a rekey
//! switches the HSM PIN from the old set's secret to the new one's: if the
//! appliance stops in between, shares of either set are accepted at the next
//! unseal, and whichever set's PIN the token takes becomes the only one.
//!
//! The file is replaced atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves the old record or the new one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use strongroom_ceremony::shares::Share;

/// The file name of the record in the data directory.
pub(crate) const FILE_NAME: &str = "seal.json";

/// Format version written and read.
const VERSION: u32 = 1;

/// The share sets whose shares are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealRecord {
    /// Format version (1).
    version: u32,
    /// The set in force first; a second only while a rekey switches.
    pub(crate) sets: Vec<ShareSet>,
}

/// The public description of one split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareSet {
    /// The set identifier, 32 hex digits.
    pub(crate) set_id: String,
    /// Shares needed (K).
    pub(crate) threshold: u8,
    /// Shares made (N).
    pub(crate) shares: u8,
    /// [`Share::fingerprint`] of share 1, 2, … N.
    pub(crate) fingerprints: Vec<String>,
}

impl ShareSet {
    /// The description of a fresh split (`shares` in index order).
    pub(crate) fn describe(shares: &[Share]) -> anyhow::Result<ShareSet> {
        let Some(first) = shares.first() else {
            bail!("a share set needs at least one share");
        };
        if shares
            .iter()
            .enumerate()
            .any(|(i, s)| usize::from(s.index()) != i + 1 || s.set_id() != first.set_id())
        {
            bail!("the shares of a set must be given in index order");
        }
        Ok(ShareSet {
            set_id: first.set_id().to_string(),
            threshold: first.threshold(),
            shares: first.count(),
            fingerprints: shares.iter().map(Share::fingerprint).collect(),
        })
    }

    /// Whether `share` is exactly one of this set's shares.
    pub(crate) fn contains(&self, share: &Share) -> bool {
        share.set_id().to_string() == self.set_id
            && share.threshold() == self.threshold
            && share.count() == self.shares
            && self
                .fingerprints
                .get(usize::from(share.index()).wrapping_sub(1))
                .is_some_and(|f| *f == share.fingerprint())
    }
}

impl SealRecord {
    /// A record of one set.
    pub(crate) fn new(set: ShareSet) -> SealRecord {
        SealRecord {
            version: VERSION,
            sets: vec![set],
        }
    }

    /// The set in force (the old one while a rekey switches).
    pub(crate) fn current(&self) -> &ShareSet {
        &self.sets[0]
    }

    /// Whether a rekey was switching sets when the record was written.
    pub(crate) fn switching(&self) -> bool {
        self.sets.len() > 1
    }

    /// The set `share` is exactly a share of, or why it is refused (the
    /// message names only public share metadata).
    pub(crate) fn set_of(&self, share: &Share) -> Result<&ShareSet, String> {
        if let Some(set) = self.sets.iter().find(|set| set.contains(share)) {
            return Ok(set);
        }
        let id = share.set_id().to_string();
        if self.sets.iter().any(|set| set.set_id == id) {
            Err(format!(
                "share {} of set {id} is not the share this appliance issued with that index \
                 (it was altered)",
                share.index()
            ))
        } else {
            Err(format!(
                "share {} belongs to set {id}, not to this appliance's current set {} \
                 (an old share from before a rekey, or another appliance's)",
                share.index(),
                self.current().set_id
            ))
        }
    }

    /// Reads the record in `data_dir`; `None` if the appliance was never
    /// initialised.
    pub(crate) fn load(data_dir: &Path) -> anyhow::Result<Option<SealRecord>> {
        let path = data_dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let record: SealRecord = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a seal record", path.display()))?;
        if record.version != VERSION {
            bail!(
                "{} has format version {}; this build reads version {VERSION}",
                path.display(),
                record.version
            );
        }
        if record.sets.is_empty() || record.sets.len() > 2 {
            bail!("{} must list one or two share sets", path.display());
        }
        for set in &record.sets {
            if set.threshold == 0
                || set.threshold > set.shares
                || set.fingerprints.len() != usize::from(set.shares)
            {
                bail!(
                    "{}: set {} is inconsistent (threshold {}, {} shares, {} fingerprints)",
                    path.display(),
                    set.set_id,
                    set.threshold,
                    set.shares,
                    set.fingerprints.len()
                );
            }
        }
        Ok(Some(record))
    }

    /// Replaces the record in `data_dir` atomically.
    pub(crate) fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let path = data_dir.join(FILE_NAME);
        let temporary: PathBuf = data_dir.join(format!(".{FILE_NAME}.tmp"));
        let text = serde_json::to_string_pretty(self)?;
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            std::fs::File::open(data_dir)?.sync_all()
        })();
        written.with_context(|| format!("cannot write {}", path.display()))
    }

    /// Removes the record in `data_dir` (an init whose PIN change failed).
    pub(crate) fn remove(data_dir: &Path) -> anyhow::Result<()> {
        let path = data_dir.join(FILE_NAME);
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use strongroom_ceremony::shares::{Secret, SystemRng, split};

    use super::*;

    fn shares(k: u8, n: u8) -> Vec<Share> {
        let mut rng = SystemRng::new();
        let secret = Secret::generate(&mut rng).expect("secret");
        split(&secret, k, n, &mut rng).expect("split")
    }

    #[test]
    fn a_record_knows_its_shares_and_survives_a_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(SealRecord::load(dir.path()).expect("load"), None);
        let ours = shares(2, 3);
        let theirs = shares(2, 3);
        let record = SealRecord::new(ShareSet::describe(&ours).expect("describe"));
        record.save(dir.path()).expect("save");
        let loaded = SealRecord::load(dir.path()).expect("load").expect("record");
        assert_eq!(loaded, record);
        assert!(!loaded.switching());
        for share in &ours {
            assert!(loaded.set_of(share).is_ok());
        }
        let foreign = loaded.set_of(&theirs[0]).expect_err("foreign");
        assert!(
            foreign.contains("not to this appliance's current set"),
            "{foreign}"
        );
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("read");
        for share in &ours {
            assert!(!text.contains(&share.to_compact()["strongroom-share:v1:".len()..]));
        }
    }

    #[test]
    fn a_damaged_or_inconsistent_record_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "{").expect("write");
        assert!(SealRecord::load(dir.path()).is_err());
        let mut record = SealRecord::new(ShareSet::describe(&shares(2, 3)).expect("describe"));
        record.sets[0].fingerprints.pop();
        record.save(dir.path()).expect("save");
        let err = SealRecord::load(dir.path()).expect_err("inconsistent");
        assert!(err.to_string().contains("inconsistent"), "{err}");
        std::fs::write(&path, r#"{"version":1,"sets":[],"extra":1}"#).expect("write");
        assert!(SealRecord::load(dir.path()).is_err());
    }
}
