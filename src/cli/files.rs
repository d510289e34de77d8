//! Output files of the client and the agent: written atomically, with
//! explicit permissions, and never replacing an existing file unless asked.
//!
//! A file is first *staged*: written in full to a hidden temporary file in the
//! target's own directory (created with its final mode, so a key is never
//! readable by others, not even for an instant), flushed to disk, then
//! *committed* by a rename (replacing) or a hard link (refusing to replace).
//! Readers therefore see either the old file or the new one, never a partial
//! one, and a failure leaves no temporary file behind.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, anyhow, bail};

/// Mode of private key files: owner read/write only.
pub(crate) const KEY_MODE: u32 = 0o600;

/// Mode of certificate and chain files: world-readable, owner-writable.
pub(crate) const CERT_MODE: u32 = 0o644;

/// Distinguishes the temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Checks, before anything is requested from the server, that `path` can be
/// written: it must not exist unless `force` is set, and its directory must
/// exist. Failing early means no certificate is issued only to be lost.
pub(crate) fn check_output(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && fs::symlink_metadata(path).is_ok() {
        bail!(
            "refusing to overwrite {}: it exists (pass --force to replace it)",
            path.display()
        );
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Checks every output path with [`check_output`] and that no two are the same.
pub(crate) fn check_outputs(paths: &[Option<&Path>], force: bool) -> anyhow::Result<()> {
    let given: Vec<&Path> = paths.iter().flatten().copied().collect();
    for (i, path) in given.iter().enumerate() {
        if given[..i].contains(path) {
            bail!("{} is given for two different outputs", path.display());
        }
        check_output(path, force)?;
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with exactly `mode`; an existing
/// file is replaced only if `overwrite` is set.
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: bool,
) -> anyhow::Result<()> {
    stage(path, contents, mode)?.commit(overwrite)
}

/// A file written in full to a temporary name next to its target, waiting to
/// be committed. Dropping it uncommitted removes the temporary file.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The temporary file.
    temp: PathBuf,
    /// Where the file goes on commit.
    target: PathBuf,
}

/// Writes `contents` to a new temporary file in `target`'s directory, with
/// exactly `mode` (whatever the umask), flushed to disk.
///
/// If `target` exists, its owner and group are copied to the new file when
/// the process may do so (for example an agent running as root replacing a
/// key owned by the service that reads it); otherwise they are left as they
/// are.
pub(crate) fn stage(target: &Path, contents: &[u8], mode: u32) -> anyhow::Result<Staged> {
    let dir = parent_dir(target);
    let name = target
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file name", target.display()))?
        .to_string_lossy()
        .into_owned();
    let (temp, mut file) = create_temp(&dir, &name, mode)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // From here on, dropping `staged` removes the temporary file.
    let staged = Staged {
        temp,
        target: target.to_path_buf(),
    };
    let write = |file: &mut File| -> std::io::Result<()> {
        // The file was created with `mode` minus the umask; make it exact.
        file.set_permissions(Permissions::from_mode(mode))?;
        if let Ok(meta) = fs::metadata(target) {
            // Best effort: only root (or the owner, for its own groups) may.
            let _ = std::os::unix::fs::fchown(&*file, Some(meta.uid()), Some(meta.gid()));
        }
        file.write_all(contents)?;
        file.sync_all()
    };
    write(&mut file).with_context(|| format!("cannot write {}", staged.temp.display()))?;
    Ok(staged)
}

/// Creates a new, empty temporary file named after `name` in `dir`.
fn create_temp(dir: &Path, name: &str, mode: u32) -> std::io::Result<(PathBuf, File)> {
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            // Left over by a process that had our pid before: try the next name.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

impl Staged {
    /// Moves the staged file into place. With `overwrite`, an existing target
    /// is replaced atomically (rename); without it, the commit fails if the
    /// target exists, even if it appeared after [`check_output`] ran (hard
    /// link, which never replaces).
    pub(crate) fn commit(self, overwrite: bool) -> anyhow::Result<()> {
        let result = if overwrite {
            fs::rename(&self.temp, &self.target)
        } else {
            match fs::hard_link(&self.temp, &self.target) {
                // The temporary name is removed when `self` drops.
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => bail!(
                    "refusing to overwrite {}: it exists (pass --force to replace it)",
                    self.target.display()
                ),
                // A filesystem without hard links: check, then rename.
                Err(_) if fs::symlink_metadata(&self.target).is_ok() => bail!(
                    "refusing to overwrite {}: it exists (pass --force to replace it)",
                    self.target.display()
                ),
                Err(_) => fs::rename(&self.temp, &self.target),
            }
        };
        result.with_context(|| format!("cannot write {}", self.target.display()))?;
        // Make the new directory entry durable too; not every filesystem can.
        if let Ok(dir) = File::open(parent_dir(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a rename the temporary name is gone and this fails harmlessly.
        let _ = fs::remove_file(&self.temp);
    }
}

/// The directory a file path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of the files in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_write_sets_the_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("tls.key");
        let cert = dir.path().join("tls.crt");
        write_atomic(&key, b"secret", KEY_MODE, false).expect("write atomic");
        write_atomic(&cert, b"public", CERT_MODE, false).expect("write atomic");
        assert_eq!(fs::read(&key).expect("read"), b"secret");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
        assert_eq!(entries(dir.path()), ["tls.crt", "tls.key"]);

        // Replacing keeps the exact mode even if the old file was looser.
        fs::set_permissions(&key, Permissions::from_mode(0o666)).expect("set permissions");
        write_atomic(&key, b"new secret", KEY_MODE, true).expect("write atomic");
        assert_eq!(fs::read(&key).expect("read"), b"new secret");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(entries(dir.path()), ["tls.crt", "tls.key"]);
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cert.pem");
        fs::write(&path, "old").expect("write");

        let err = check_output(&path, false)
            .expect_err("check output should fail")
            .to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert!(err.contains("--force"), "{err}");
        check_output(&path, true).expect("check output");

        // The commit itself refuses too (the file may appear after the check).
        let err =
            write_atomic(&path, b"new", CERT_MODE, false).expect_err("write atomic should fail");
        assert!(
            format!("{err:#}").contains("refusing to overwrite"),
            "{err:#}"
        );
        assert_eq!(fs::read(&path).expect("read"), b"old");
        assert_eq!(entries(dir.path()), ["cert.pem"], "no temporary file left");

        write_atomic(&path, b"new", CERT_MODE, true).expect("write atomic");
        assert_eq!(fs::read(&path).expect("read"), b"new");
    }

    #[test]
    fn checks_the_directory_and_duplicate_outputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope").join("cert.pem");
        let err = check_output(&missing, true)
            .expect_err("check output should fail")
            .to_string();
        assert!(err.contains("does not exist"), "{err}");

        let a = dir.path().join("a.pem");
        let err = check_outputs(&[Some(&a), None, Some(&a)], false)
            .expect_err("value should fail")
            .to_string();
        assert!(err.contains("two different outputs"), "{err}");
        check_outputs(&[Some(&a), None, Some(&dir.path().join("b.pem"))], false)
            .expect("check outputs");
    }

    #[test]
    fn an_uncommitted_stage_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staged = stage(&dir.path().join("k.pem"), b"x", KEY_MODE).expect("stage");
        assert_eq!(entries(dir.path()).len(), 1);
        drop(staged);
        assert!(entries(dir.path()).is_empty());
    }
}
