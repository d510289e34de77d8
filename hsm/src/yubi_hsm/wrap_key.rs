//! Wrapping keys in a YubiHSM2: wrap-key objects that wrap key material
//! held outside the device with its `WrapData` and `UnwrapData` commands.
//!
//! The device encrypts at most about 2 KB in one command (a message is at
//! most 2048 bytes), less than a 4096-bit RSA key in PKCS#1, so material is
//! wrapped in parts of at most [`PART_LEN`] bytes, one command each, well
//! inside one message both ways. What is stored is
//!
//! ```text
//! blob  = FORMAT (1 byte) || n (1 byte) || chunk_0 || … || chunk_{n-1}
//! chunk = length (2 bytes, big-endian) || the device's answer to WrapData:
//!         nonce (13) || AES-256-CCM ciphertext || MAC (16)
//! ```
//!
//! and the plaintext of chunk `i` is `blob id (16 bytes) || i || n || part
//! i`. The device checks each chunk's MAC; the header inside each chunk
//! makes a blob fail as a whole when chunks are dropped, added, reordered
//! or taken from another blob (the blob id is random per wrap), so no
//! change to a blob ever unwraps to other material.

use std::sync::Arc;

use ring::rand::SecureRandom;
use yubihsm::object;
use yubihsm::{Capability, wrap};
use zeroize::Zeroizing;

use super::YubiHsm;
use super::pool::Retry;
use crate::KeyWrapper;
use crate::error::{Error, Result};
use crate::wrapping_key::MAX_MATERIAL_LEN;

/// The capabilities of our wrap keys, exactly: wrap and unwrap data. No
/// `export-wrapped`/`import-wrapped` (they would move device objects), no
/// `exportable-under-wrap` (the key never leaves the device).
pub(crate) const WRAP_KEY_CAPABILITIES: Capability =
    Capability::WRAP_DATA.union(Capability::UNWRAP_DATA);

/// The wrap key algorithm: AES-256 in CCM mode.
const WRAP_KEY_ALGORITHM: wrap::Algorithm = wrap::Algorithm::Aes256Ccm;

/// The blob format this module writes.
const FORMAT: u8 = 1;

/// Bytes of material in one chunk: with its header, well inside what one
/// device message carries both ways.
pub(crate) const PART_LEN: usize = 512;

/// Bytes of the random blob id at the start of every chunk's plaintext.
const BLOB_ID_LEN: usize = 16;

/// The header inside every chunk: blob id, chunk index, chunk count.
const HEADER_LEN: usize = BLOB_ID_LEN + 2;

/// What the device adds around a chunk's plaintext: nonce (13), the zero
/// byte it puts in front of the data, and the MAC (16).
const DEVICE_OVERHEAD: usize = NONCE_LEN + 1 + 16;

/// The device's AES-CCM nonce.
const NONCE_LEN: usize = 13;

/// Most chunks a blob has (16, for [`MAX_MATERIAL_LEN`] bytes of material).
const MAX_CHUNKS: usize = MAX_MATERIAL_LEN.div_ceil(PART_LEN);

/// The longest chunk the device answers with.
const MAX_CHUNK_LEN: usize = DEVICE_OVERHEAD + HEADER_LEN + PART_LEN;

/// The shortest: one byte of material.
const MIN_CHUNK_LEN: usize = DEVICE_OVERHEAD + HEADER_LEN + 1;

// A blob's chunk count fits its byte and a chunk's length its two bytes;
// and the longest chunk fits one device message: UnwrapData sends it after
// the key id, and a message carries at most as much after a key id as an
// Ed25519 message to sign.
const _: () = assert!(
    MAX_CHUNKS <= u8::MAX as usize
        && MAX_CHUNK_LEN <= u16::MAX as usize
        && MAX_CHUNK_LEN <= super::MAX_ED25519_MESSAGE_LEN
);

/// An AES-256-CCM wrap key inside a YubiHSM2, generated there, allowed to
/// wrap and unwrap data and nothing else (in particular never exportable).
///
/// Material is sent to the device for the duration of one command per
/// part and never stored there; see the module documentation for the blob
/// format. The `yubihsm` crate's own buffers for the command and its
/// answer are not wiped; the material returned by [`KeyWrapper::unwrap`] is.
#[derive(Clone)]
pub struct YubiHsmWrappingKey {
    hsm: YubiHsm,
    label: String,
    id: object::Id,
}

impl YubiHsm {
    /// Generates an AES-256-CCM wrap key in the device, with exactly the
    /// `wrap-data` and `unwrap-data` capabilities and no delegated
    /// capabilities. Refuses a label in use ([`Error::LabelExists`]).
    pub fn generate_wrapping_key(&self, label: &str) -> Result<YubiHsmWrappingKey> {
        let label_bytes = self.label(label)?;
        let (_creating, id) = self.reserve(label, object::Type::WrapKey)?;
        self.pool()
            .run("generate wrap key", Some(label), Retry::Once, |c| {
                c.generate_wrap_key(
                    id,
                    label_bytes.clone(),
                    self.inner.domain,
                    WRAP_KEY_CAPABILITIES,
                    Capability::empty(),
                    WRAP_KEY_ALGORITHM,
                )
            })?;
        tracing::info!(hsm = %self.name(), key = label, id, "generated AES-256-CCM wrap key");
        Ok(YubiHsmWrappingKey {
            hsm: self.clone(),
            label: label.to_string(),
            id,
        })
    }

    /// Finds the one wrap key labelled `label`: [`Error::KeyNotFound`] if
    /// there is none, [`Error::AmbiguousKey`] if several carry the label.
    /// A wrap key that is not AES-256-CCM, may do anything but wrap and
    /// unwrap data, or delegates any capability is refused
    /// ([`Error::Unsupported`]).
    pub fn find_wrapping_key(&self, label: &str) -> Result<YubiHsmWrappingKey> {
        let matches = self.objects_labelled(label, Some(object::Type::WrapKey))?;
        let ids: Vec<object::Id> = matches.iter().map(|entry| entry.object_id).collect();
        let id = self.the_one(label, &ids, false)?;
        let info = self.object_info(label, id, object::Type::WrapKey)?;
        if info.algorithm != yubihsm::Algorithm::Wrap(WRAP_KEY_ALGORITHM)
            || info.capabilities != WRAP_KEY_CAPABILITIES
            || !info.delegated_capabilities.is_empty()
        {
            return Err(Error::Unsupported {
                token: self.name().to_string(),
                what: format!(
                    "wrap key '{label}' ({:?}, capabilities {:?}, delegated {:?}): wrapping keys \
                     must be AES-256-CCM with exactly {WRAP_KEY_CAPABILITIES:?} and delegate nothing",
                    info.algorithm, info.capabilities, info.delegated_capabilities
                ),
            });
        }
        Ok(YubiHsmWrappingKey {
            hsm: self.clone(),
            label: label.to_string(),
            id,
        })
    }
}

impl YubiHsmWrappingKey {
    /// The key's label in the device.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key's object id in the device.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Deletes the key from the device, for ever: material it wrapped can
    /// no longer be unwrapped. Callers re-wrap everything first (transit's
    /// KEK rotation does, and refuses to destroy a key still in use).
    pub fn destroy(self) -> Result<()> {
        // Never repeated blindly: after a lost session the caller asks
        // again, and a key that is gone by then is `KeyNotFound`.
        self.hsm
            .pool()
            .run("delete wrap key", Some(&self.label), Retry::Once, |c| {
                c.delete_object(self.id, object::Type::WrapKey)
            })?;
        tracing::warn!(hsm = %self.hsm.name(), key = %self.label, id = self.id, "destroyed wrap key");
        Ok(())
    }

    fn malformed(&self, what: &str) -> Error {
        Error::InvalidInput(format!(
            "wrapped key material for wrap key '{}' in {} is malformed: {what}",
            self.label,
            self.hsm.name()
        ))
    }
}

impl KeyWrapper for YubiHsmWrappingKey {
    fn wrap(&self, material: &[u8]) -> Result<Vec<u8>> {
        if material.is_empty() || material.len() > MAX_MATERIAL_LEN {
            return Err(Error::InvalidInput(format!(
                "key material to wrap must be 1 to {MAX_MATERIAL_LEN} bytes, got {}",
                material.len()
            )));
        }
        let mut blob_id = [0u8; BLOB_ID_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut blob_id)
            .map_err(|_| Error::Unavailable {
                token: self.hsm.name().to_string(),
                reason: "the operating system's random generator failed".into(),
            })?;
        let parts: Vec<&[u8]> = material.chunks(PART_LEN).collect();
        // At most MAX_CHUNKS, which fits a byte.
        let count = parts.len() as u8;
        let mut blob = Vec::with_capacity(2 + parts.len() * (2 + MAX_CHUNK_LEN));
        blob.extend_from_slice(&[FORMAT, count]);
        for (index, part) in (0u8..).zip(parts) {
            let mut plaintext = Zeroizing::new(Vec::with_capacity(HEADER_LEN + part.len()));
            plaintext.extend_from_slice(&blob_id);
            plaintext.extend_from_slice(&[index, count]);
            plaintext.extend_from_slice(part);
            // Safe to repeat: a fresh nonce, nothing changes on the device.
            let chunk =
                self.hsm
                    .pool()
                    .run("wrap data", Some(&self.label), Retry::Idempotent, |c| {
                        c.wrap_data(self.id, plaintext.to_vec())
                    })?;
            let chunk = chunk.into_vec();
            if chunk.len() != DEVICE_OVERHEAD + plaintext.len() {
                return Err(Error::Unavailable {
                    token: self.hsm.name().to_string(),
                    reason: format!(
                        "wrap key '{}': the device answered {} bytes for {} to wrap",
                        self.label,
                        chunk.len(),
                        plaintext.len()
                    ),
                });
            }
            // MAX_CHUNK_LEN fits two bytes.
            blob.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            blob.extend_from_slice(&chunk);
        }
        Ok(blob)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let chunks = split(wrapped).map_err(|what| self.malformed(what))?;
        let count = chunks.len();
        let mut material = Zeroizing::new(Vec::with_capacity(count * PART_LEN));
        let mut blob_id = None;
        for (index, chunk) in chunks.into_iter().enumerate() {
            let message = wrap::Message::from_vec(chunk.to_vec())
                .map_err(|_| self.malformed("a chunk is shorter than its nonce"))?;
            let plaintext = Zeroizing::new(self.hsm.pool().run(
                "unwrap data",
                Some(&self.label),
                Retry::Idempotent,
                |c| c.unwrap_data(self.id, message.clone()),
            )?);
            let (header, part) = plaintext
                .split_at_checked(HEADER_LEN)
                .ok_or_else(|| self.malformed("a chunk holds no header"))?;
            let (id, position) = header.split_at(BLOB_ID_LEN);
            if position != [index as u8, count as u8] || part.is_empty() {
                return Err(self.malformed("its chunks are out of order or incomplete"));
            }
            match blob_id {
                None => blob_id = Some(Zeroizing::new(id.to_vec())),
                Some(ref first) if first.as_slice() == id => {}
                Some(_) => {
                    return Err(self.malformed("its chunks come from different wrappings"));
                }
            }
            material.extend_from_slice(part);
        }
        Ok(material)
    }
}

/// The chunks of a blob, checked against the format before the device
/// sees any of them.
fn split(wrapped: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    let (&[format, count], mut rest) = wrapped
        .split_first_chunk::<2>()
        .ok_or("shorter than its header")?;
    if format != FORMAT {
        return Err("not in the YubiHSM2 wrapping format");
    }
    let count = usize::from(count);
    if count == 0 || count > MAX_CHUNKS {
        return Err("wrong number of chunks");
    }
    let mut chunks = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, after) = rest
            .split_first_chunk::<2>()
            .ok_or("a chunk's length is missing")?;
        let len = usize::from(u16::from_be_bytes(*len));
        if !(MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&len) || len > after.len() {
            return Err("a chunk has an impossible length");
        }
        let (chunk, after) = after.split_at(len);
        chunks.push(chunk);
        rest = after;
    }
    if rest.is_empty() {
        Ok(chunks)
    } else {
        Err("bytes follow the last chunk")
    }
}

impl std::fmt::Debug for YubiHsmWrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubiHsmWrappingKey")
            .field("hsm", &self.hsm.name())
            .field("label", &self.label)
            .field("id", &self.id)
            .finish()
    }
}

/// Wrapping keys are [`YubiHsmWrappingKey`]s, found by label.
impl crate::WrappingKeys for YubiHsm {
    fn find_wrapper(&self, label: &str) -> Result<Arc<dyn KeyWrapper>> {
        Ok(Arc::new(self.find_wrapping_key(label)?))
    }

    fn generate_wrapper(&self, label: &str) -> Result<Arc<dyn KeyWrapper>> {
        Ok(Arc::new(self.generate_wrapping_key(label)?))
    }

    fn destroy_wrapper(&self, label: &str) -> Result<()> {
        self.find_wrapping_key(label)?.destroy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(chunks: &[usize]) -> Vec<u8> {
        let mut blob = vec![FORMAT, chunks.len() as u8];
        for len in chunks {
            blob.extend_from_slice(&(*len as u16).to_be_bytes());
            blob.extend(std::iter::repeat_n(0xa5, *len));
        }
        blob
    }

    #[test]
    fn blobs_split_into_chunks_and_malformed_ones_are_refused() {
        let split_lens = |b: &[u8]| split(b).map(|c| c.iter().map(|c| c.len()).collect::<Vec<_>>());
        assert_eq!(split_lens(&blob(&[MIN_CHUNK_LEN])), Ok(vec![MIN_CHUNK_LEN]));
        assert_eq!(
            split_lens(&blob(&[MAX_CHUNK_LEN, 100])),
            Ok(vec![MAX_CHUNK_LEN, 100])
        );
        assert!(split(&[]).is_err());
        assert!(split(&[FORMAT]).is_err());
        assert!(split(&[FORMAT, 0]).is_err());
        let mut other_format = blob(&[100]);
        other_format[0] = 2;
        assert!(split(&other_format).is_err());
        let mut missing = blob(&[100, 100]);
        missing[1] = 3;
        assert!(split(&missing).is_err());
        let mut extra = blob(&[100]);
        extra.push(0);
        assert!(split(&extra).is_err());
        assert!(split(&blob(&[MIN_CHUNK_LEN - 1])).is_err());
        assert!(split(&blob(&[MAX_CHUNK_LEN + 1])).is_err());
        let mut short = blob(&[100]);
        short.pop();
        assert!(split(&short).is_err());
        assert!(split(&blob(&[100; MAX_CHUNKS + 1])).is_err());
    }
}
