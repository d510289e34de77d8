//! Files: outputs created exclusively (never overwritten), inputs read and
//! decoded, SHA-256 digests.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use der::Decode;
use strongroom_hsm::PublicKey;

use crate::error::CeremonyError;

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Hex SHA-256.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Refuses if `path` exists in any form (file, directory, dangling symlink).
pub(crate) fn ensure_absent(path: &Path) -> Result<(), CeremonyError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(CeremonyError::OutputExists(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CeremonyError::io(path, e)),
    }
}

/// Creates `path` (which must not exist), writes `bytes`, syncs it to disk,
/// and returns their SHA-256. `private` files are mode 0600, others 0644.
pub(crate) fn create_exclusive(
    path: &Path,
    bytes: &[u8],
    private: bool,
) -> Result<String, CeremonyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CeremonyError::OutputExists(path.to_path_buf())
            } else {
                CeremonyError::io(path, e)
            }
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CeremonyError::io(path, e))?;
    Ok(sha256(bytes))
}

/// Reads a whole file (inputs are small: certificates, keys, CSRs).
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CeremonyError> {
    const MAX: u64 = 1 << 20;
    let meta = std::fs::metadata(path).map_err(|e| CeremonyError::io(path, e))?;
    if meta.len() > MAX {
        return Err(CeremonyError::input(path, "larger than 1 MiB"));
    }
    std::fs::read(path).map_err(|e| CeremonyError::io(path, e))
}

/// DER from PEM with `label`, or the bytes themselves if they are not PEM.
pub(crate) fn pem_or_der(path: &Path, bytes: &[u8], label: &str) -> Result<Vec<u8>, CeremonyError> {
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| CeremonyError::input(path, "PEM is not UTF-8"))?;
    let (found, der) = der::pem::decode_vec(text.trim().as_bytes())
        .map_err(|e| CeremonyError::input(path, format!("not valid PEM: {e}")))?;
    if found != label {
        return Err(CeremonyError::input(
            path,
            format!("PEM holds a {found}, expected a {label}"),
        ));
    }
    Ok(der)
}

/// A certificate file (PEM or DER): its DER and decoded form.
pub(crate) fn read_certificate(
    path: &Path,
) -> Result<(Vec<u8>, x509_cert::Certificate), CeremonyError> {
    let der = pem_or_der(path, &read(path)?, "CERTIFICATE")?;
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|e| CeremonyError::input(path, format!("not a DER certificate: {e}")))?;
    Ok((der, cert))
}

/// The public key in a certificate.
pub(crate) fn certificate_key(
    path: &Path,
    cert: &x509_cert::Certificate,
) -> Result<PublicKey, CeremonyError> {
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)
        .map_err(|e| CeremonyError::input(path, e.to_string()))?;
    PublicKey::from_der(&spki)
        .map_err(|e| CeremonyError::input(path, format!("certificate key: {e}")))
}

/// A PEM `PUBLIC KEY` (or DER SubjectPublicKeyInfo) file.
pub(crate) fn read_public_key(path: &Path) -> Result<PublicKey, CeremonyError> {
    let der = pem_or_der(path, &read(path)?, "PUBLIC KEY")?;
    PublicKey::from_der(&der).map_err(|e| CeremonyError::input(path, e.to_string()))
}

/// The first element of a DER SEQUENCE, as the raw bytes it was encoded
/// with: the `tbsCertificate` of a certificate or the `tbsCertList` of a
/// CRL, exactly as signed.
pub(crate) fn signed_part(der_bytes: &[u8]) -> Result<&[u8], String> {
    use der::{Encode, Header, Reader, SliceReader};
    let mut reader = SliceReader::new(der_bytes).map_err(|e| e.to_string())?;
    let _outer = Header::decode(&mut reader).map_err(|e| e.to_string())?;
    let start = usize::try_from(reader.position()).map_err(|e| e.to_string())?;
    let inner = Header::decode(&mut reader).map_err(|e| e.to_string())?;
    let len = (inner.encoded_len().map_err(|e| e.to_string())? + inner.length)
        .map_err(|e| e.to_string())?;
    let end = start + usize::try_from(len).map_err(|e| e.to_string())?;
    der_bytes
        .get(start..end)
        .ok_or_else(|| "truncated DER".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_create_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.pem");
        create_exclusive(&path, b"one", false).expect("first write");
        let again = create_exclusive(&path, b"two", false).expect_err("refused");
        assert!(matches!(again, CeremonyError::OutputExists(_)), "{again}");
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        assert!(ensure_absent(&path).is_err());
    }

    #[test]
    fn signed_part_is_the_first_element() {
        // SEQUENCE { SEQUENCE { INTEGER 1 }, NULL }
        let der = [0x30, 0x07, 0x30, 0x03, 0x02, 0x01, 0x01, 0x05, 0x00];
        assert_eq!(signed_part(&der).expect("parts"), &der[2..7]);
        assert!(signed_part(&der[..5]).is_err());
    }
}
