//! The server certificate's two files, `tls.cert` (the chain, PEM) and
//! `tls.key` (its private key, PEM, mode 0600), and how a renewal replaces
//! them without ever leaving a certificate beside a key that is not its own.
//!
//! [`write()`] puts both new files beside the old ones first (`<file>.new`,
//! each written and flushed to the disk), then renames the key's into place,
//! then the certificate's, then flushes the directories. A stop before the
//! first rename leaves the old pair (and stray `.new` files, overwritten by
//! the next renewal); a stop after the second leaves the new pair. A stop
//! between the two leaves the new key beside the old certificate, with the
//! new certificate still in `<cert>.new`: [`load`] notices the mismatch and
//! finishes the renewal by renaming it into place. Any other mismatch is
//! refused with an error naming both files, never served.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tokio_rustls::rustls::RootCertStore;
use zeroize::Zeroizing;

use super::{PairError, Served};

/// Where a new version of `path` is written before it replaces it:
/// `<path>.new`.
pub(crate) fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Reads the certificate chain `cert` and its key `key`.
///
/// If the key does not belong to the certificate but does belong to
/// `<cert>.new` (a renewal stopped between its two renames), that
/// certificate is renamed into place and served. Any other mismatch is an
/// error.
pub(crate) fn load(cert: &Path, key: &Path) -> anyhow::Result<Served> {
    let chain = std::fs::read_to_string(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?;
    let key_pem = Zeroizing::new(
        std::fs::read_to_string(key)
            .with_context(|| format!("cannot read the TLS key {}", key.display()))?,
    );
    match Served::from_pem(&chain, &key_pem) {
        Ok(served) => Ok(served),
        Err(PairError::Unusable(why)) => bail!(
            "the TLS certificate {} and key {} are unusable: {why}",
            cert.display(),
            key.display()
        ),
        Err(PairError::Mismatch) => {
            let pending = pending_path(cert);
            let finished = std::fs::read_to_string(&pending)
                .ok()
                .and_then(|chain| Served::from_pem(&chain, &key_pem).ok());
            let Some(served) = finished else {
                bail!(
                    "the TLS key {} does not belong to the certificate {} (nor to {}); \
                     put back a certificate and key that belong together",
                    key.display(),
                    cert.display(),
                    pending.display()
                );
            };
            std::fs::rename(&pending, cert).with_context(|| {
                format!(
                    "cannot finish an interrupted renewal: renaming {} to {}",
                    pending.display(),
                    cert.display()
                )
            })?;
            sync_parent(cert)?;
            tracing::warn!(
                cert = %cert.display(),
                serial = %served.facts().serial_hex(),
                "finished a TLS certificate renewal that was interrupted between its renames"
            );
            Ok(served)
        }
    }
}

/// Replaces `cert` with `chain_pem` and `key` with `key_pem` (mode 0600),
/// in the order the module docs give.
pub(crate) fn write(cert: &Path, key: &Path, chain_pem: &str, key_pem: &str) -> anyhow::Result<()> {
    for path in [cert, key] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let (new_key, new_cert) = (pending_path(key), pending_path(cert));
    write_synced(&new_key, key_pem.as_bytes(), 0o600)?;
    write_synced(&new_cert, chain_pem.as_bytes(), 0o644)?;
    std::fs::rename(&new_key, key)
        .with_context(|| format!("cannot rename {} to {}", new_key.display(), key.display()))?;
    // The key's rename is durable before the certificate's: a crash never
    // leaves the new certificate beside the old key.
    sync_parent(key)?;
    std::fs::rename(&new_cert, cert)
        .with_context(|| format!("cannot rename {} to {}", new_cert.display(), cert.display()))?;
    sync_parent(cert)?;
    Ok(())
}

/// Writes `contents` to `path` with `mode` (also when the file existed) and
/// flushes it to the disk.
fn write_synced(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Flushes the directory holding `path`, so a rename in it survives a crash.
fn sync_parent(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush the directory {}", dir.display()))
}

/// The CA certificates in the PEM file `path`, for verifying client
/// certificates. Every certificate must be usable as a root.
pub(crate) fn read_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read the TLS client CA {}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&text) {
        let certificate = certificate
            .with_context(|| format!("the TLS client CA {} is not PEM", path.display()))?;
        roots.add(certificate).with_context(|| {
            format!(
                "the TLS client CA {} holds an unusable certificate",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        bail!("the TLS client CA {} holds no certificate", path.display());
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const CERT: &str = include_str!("testdata/server.pem");
    const KEY: &str = include_str!("testdata/server.key");
    const OTHER_CERT: &str = include_str!("testdata/other.pem");
    const OTHER_KEY: &str = include_str!("testdata/other.key");

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_written_pair_loads_and_the_key_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (
            dir.path().join("tls/server.pem"),
            dir.path().join("tls/server.key"),
        );
        // An old, world-readable key is replaced by a private one.
        std::fs::create_dir_all(dir.path().join("tls")).expect("mkdir");
        std::fs::write(&key, OTHER_KEY).expect("old key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&cert, &key, CERT, KEY).expect("write");
        assert_eq!(mode(&key), 0o600);
        assert!(!pending_path(&key).exists() && !pending_path(&cert).exists());
        let served = load(&cert, &key).expect("load");
        assert_eq!(served.facts().serial_hex(), "5eed5eed5eed5e01");
        assert_eq!(served.chain().len(), 1);
    }

    #[test]
    fn a_renewal_stopped_between_its_renames_is_finished_at_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
        // The old pair, then a renewal that renamed its key into place but
        // not its certificate.
        write(&cert, &key, OTHER_CERT, OTHER_KEY).expect("old pair");
        std::fs::write(pending_path(&key), KEY).expect("new key");
        std::fs::write(pending_path(&cert), CERT).expect("new cert");
        std::fs::rename(pending_path(&key), &key).expect("first rename");
        let served = load(&cert, &key).expect("finished");
        assert_eq!(served.facts().serial_hex(), "5eed5eed5eed5e01");
        assert!(!pending_path(&cert).exists());
        assert_eq!(std::fs::read_to_string(&cert).expect("cert"), CERT);
        assert_eq!(
            load(&cert, &key).expect("again").facts().serial_hex(),
            "5eed5eed5eed5e01"
        );
    }

    #[test]
    fn an_unreadable_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
        write(&cert, &key, "not a certificate", KEY).expect("write");
        std::fs::write(pending_path(&cert), CERT).expect("pending");
        let error = format!("{:#}", load(&cert, &key).err().expect("unusable"));
        assert!(error.contains("unusable"), "{error}");
        // Only a mismatch is repaired, never an unreadable file.
        assert!(pending_path(&cert).exists());
    }

    #[test]
    fn a_key_that_belongs_to_no_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
        write(&cert, &key, CERT, OTHER_KEY).expect("write");
        let error = format!("{:#}", load(&cert, &key).err().expect("mismatch"));
        assert!(error.contains("does not belong"), "{error}");
        assert!(
            error.contains("server.pem") && error.contains("server.key"),
            "{error}"
        );
        // Nor does a pending certificate that is not the key's rescue it.
        std::fs::write(pending_path(&cert), CERT).expect("pending");
        assert!(load(&cert, &key).is_err());
        assert_eq!(std::fs::read_to_string(&cert).expect("cert"), CERT);
    }

    #[test]
    fn client_roots_must_be_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, CERT).expect("write");
        assert_eq!(read_roots(&path).expect("roots").len(), 1);
        std::fs::write(&path, "").expect("write");
        let error = format!("{:#}", read_roots(&path).expect_err("empty"));
        assert!(error.contains("holds no certificate"), "{error}");
    }
}
