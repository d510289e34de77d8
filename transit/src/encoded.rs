//! The text form of ciphertexts, signatures and HMACs:
//! `<prefix>:v<version>:<base64>`.

use base64ct::{Base64, Encoding};

use crate::error::TransitError;

/// The default prefix of encoded values.
pub const DEFAULT_PREFIX: &str = "strongroom";

/// Longest encoded value accepted, in bytes (a 1 MiB plaintext's ciphertext
/// fits with room to spare).
pub const MAX_ENCODED_LEN: usize = 1_500_000;

/// A versioned value: which key version made it, and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The key version.
    pub version: u32,
    /// The ciphertext (nonce, sealed data, tag), signature or HMAC.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("version", &self.version)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Encoded {
    /// `<prefix>:v<version>:<base64>` (standard alphabet, padded).
    pub fn to_text(&self, prefix: &str) -> String {
        let mut out = String::with_capacity(prefix.len() + 12 + Base64::encoded_len(&self.bytes));
        out.push_str(prefix);
        out.push_str(":v");
        out.push_str(&self.version.to_string());
        out.push(':');
        out.push_str(&Base64::encode_string(&self.bytes));
        out
    }

    /// Parses `<prefix>:v<version>:<base64>`; `field` names the request field
    /// in errors, which never quote the value.
    pub fn parse(text: &str, prefix: &str, field: &'static str) -> Result<Self, TransitError> {
        if text.len() > MAX_ENCODED_LEN {
            return Err(TransitError::input(
                field,
                format!("longer than {MAX_ENCODED_LEN} bytes"),
            ));
        }
        let rest = text
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(":v"))
            .ok_or_else(|| {
                TransitError::input(field, format!("does not start with \"{prefix}:v\""))
            })?;
        let (version, body) = rest
            .split_once(':')
            .ok_or_else(|| TransitError::input(field, "expected <prefix>:v<version>:<base64>"))?;
        let version: u32 = match version.parse() {
            Ok(v) if v > 0 && !version.starts_with('0') && !version.starts_with('+') => v,
            _ => {
                return Err(TransitError::input(
                    field,
                    "the version after \":v\" is not a positive decimal number",
                ));
            }
        };
        let bytes = Base64::decode_vec(body)
            .map_err(|_| TransitError::input(field, "the part after the version is not base64"))?;
        Ok(Encoded { version, bytes })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn text_round_trips_and_refuses_variants() {
        let e = Encoded {
            version: 12,
            bytes: vec![0xff, 0, 1, 2, 3],
        };
        let text = e.to_text("strongroom");
        assert_eq!(text, "strongroom:v12:/wABAgM=");
        assert_eq!(
            Encoded::parse(&text, "strongroom", "ciphertext").unwrap(),
            e
        );
        for bad in [
            "vault:v12:/wABAgM=",
            "strongroom:12:/wABAgM=",
            "strongroom:v0:/wABAgM=",
            "strongroom:v012:/wABAgM=",
            "strongroom:v+12:/wABAgM=",
            "strongroom:v12",
            "strongroom:v12:/wABAgM",
            "strongroom:v12:/wAB AgM=",
            "strongroom:v4294967296:AA==",
        ] {
            let err = Encoded::parse(bad, "strongroom", "ciphertext").unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("ciphertext: "), "{msg}");
            assert!(!msg.contains("wAB"), "{msg}");
        }
    }
}
