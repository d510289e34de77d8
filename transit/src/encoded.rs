//! The text form of ciphertexts, signatures and HMACs:
//! `<prefix>:v<version>:<base64>`.
//!
//! Everything written in this form is public (a ciphertext, a signature, an
//! HMAC), so it uses the SIMD codec of `base64-simd`, much faster than
//! constant-time `base64ct` (whose decoding was most of a batch decryption's
//! CPU) and than the `base64` crate's (8.9 % of the appliance's CPU in a
//! 1 KiB `EncryptBatch`). Secret bytes must never go through this module.
//! Decoding accepts exactly what `base64ct` accepted: the standard alphabet,
//! canonical padding, no whitespace, and no set bits after the last byte.

use std::fmt::Write as _;

use base64_simd::STANDARD;

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
        to_text(prefix, self.version, &self.bytes)
    }

    /// Parses `<prefix>:v<version>:<base64>`; `field` names the request field
    /// in errors, which never quote the value.
    pub fn parse(text: &str, prefix: &str, field: &'static str) -> Result<Self, TransitError> {
        let mut bytes = Vec::new();
        let version = parse_into(text, prefix, field, &mut bytes)?;
        Ok(Encoded { version, bytes })
    }
}

/// [`Encoded::to_text`] of `version` and `bytes`.
pub(crate) fn to_text(prefix: &str, version: u32, bytes: &[u8]) -> String {
    // ":v", at most 10 digits, ":".
    let head = prefix.len() + 13;
    let body = STANDARD.encoded_length(bytes.len());
    let mut out = String::with_capacity(head + body);
    out.push_str(prefix);
    // Writing to a String cannot fail.
    let _ = write!(out, ":v{version}:");
    STANDARD.encode_append(bytes, &mut out);
    out
}

/// [`Encoded::parse`], decoding into `bytes` (replacing what it held) and
/// returning the version.
pub(crate) fn parse_into(
    text: &str,
    prefix: &str,
    field: &'static str,
    bytes: &mut Vec<u8>,
) -> Result<u32, TransitError> {
    if text.len() > MAX_ENCODED_LEN {
        return Err(TransitError::input(
            field,
            format!("longer than {MAX_ENCODED_LEN} bytes"),
        ));
    }
    let rest = text
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix(":v"))
        .ok_or_else(|| TransitError::input(field, format!("does not start with \"{prefix}:v\"")))?;
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
    bytes.clear();
    STANDARD
        .decode_append(body, bytes)
        .map_err(|_| TransitError::input(field, "the part after the version is not base64"))?;
    Ok(version)
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
            // Non-canonical: set bits after the last byte.
            "strongroom:v12:/wABAgN=",
            "strongroom:v12:AB==",
            // Padding where it does not belong, or too much of it.
            "strongroom:v12:/wAB=AgM=",
            "strongroom:v12:/wABAgM==",
            "strongroom:v12:AA=",
            // Another alphabet.
            "strongroom:v12:_wABAgM=",
        ] {
            let err = Encoded::parse(bad, "strongroom", "ciphertext").unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("ciphertext: "), "{msg}");
            assert!(!msg.contains("wAB"), "{msg}");
        }
    }

    #[test]
    fn a_non_canonical_final_symbol_is_refused() {
        // "AA==" is the one byte 0x00; "AB==" sets a bit after it.
        let ok = Encoded::parse("strongroom:v1:AA==", "strongroom", "ciphertext").unwrap();
        assert_eq!(ok.bytes, [0]);
        for bad in ["AB==", "AP==", "AAB=", "AAAAAB==", "/wABAgN="] {
            let text = format!("strongroom:v1:{bad}");
            assert!(
                Encoded::parse(&text, "strongroom", "ciphertext").is_err(),
                "{bad} must be refused"
            );
        }
    }

    /// Decodes `text` with the codec the text form used before.
    fn base64ct(text: &[u8]) -> Option<Vec<u8>> {
        use base64ct::{Base64, Encoding};
        let text = std::str::from_utf8(text).ok()?;
        Base64::decode_vec(text).ok()
    }

    fn ours(text: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(text).ok()?;
        Encoded::parse(&format!("p:v1:{text}"), "p", "ciphertext")
            .ok()
            .map(|e| e.bytes)
    }

    /// Every string of up to five symbols from an alphabet chosen to hit
    /// each rule (bits after the last byte, padding, whitespace, the URL
    /// alphabet, bytes outside any alphabet), alone and after a valid
    /// quantum: the decoder accepts exactly what base64ct accepted, with
    /// the same bytes.
    #[test]
    fn decoding_accepts_exactly_what_base64ct_accepted() {
        const SYMBOLS: &[u8] = b"AQgwB/+=- _\n*";
        let mut text = Vec::new();
        let mut checked = 0;
        let mut accepted = 0;
        for prefix in [&b""[..], b"AAAA", b"/w=="] {
            for len in 0..=5u32 {
                for mut n in 0..SYMBOLS.len().pow(len) {
                    text.clear();
                    text.extend_from_slice(prefix);
                    for _ in 0..len {
                        text.push(SYMBOLS[n % SYMBOLS.len()]);
                        n /= SYMBOLS.len();
                    }
                    let expected = base64ct(&text);
                    assert_eq!(
                        ours(&text),
                        expected,
                        "{:?}",
                        String::from_utf8_lossy(&text)
                    );
                    checked += 1;
                    accepted += usize::from(expected.is_some());
                }
            }
        }
        assert!(
            checked > 1_000_000 && accepted > 1000,
            "{checked} {accepted}"
        );
    }

    /// The SIMD paths only run on long inputs: one wrong symbol at every
    /// position of a 1 KiB ciphertext's text, and every truncation of it,
    /// is refused exactly when base64ct refused it.
    #[test]
    fn long_texts_are_decoded_as_base64ct_decoded_them() {
        use base64ct::{Base64, Encoding};
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1024 + 28).collect();
        let valid = Base64::encode_string(&bytes).into_bytes();
        assert_eq!(ours(&valid), Some(bytes));
        let mut text = valid.clone();
        for at in 0..valid.len() {
            for &wrong in b"=-_ \n*\x80" {
                text[at] = wrong;
                assert_eq!(ours(&text), base64ct(&text), "{wrong:?} at {at}");
            }
            text[at] = valid[at];
        }
        for len in 0..valid.len() {
            assert_eq!(ours(&valid[..len]), base64ct(&valid[..len]), "first {len}");
        }
    }

    #[test]
    fn encoding_matches_base64ct() {
        use base64ct::{Base64, Encoding};
        let bytes: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 + 2).collect();
        for len in (0..64).chain([1023, 1024, 1025, 3 * 1024 + 2]) {
            let e = Encoded {
                version: 4_294_967_295,
                bytes: bytes[..len].to_vec(),
            };
            let text = e.to_text("strongroom");
            assert_eq!(
                text,
                format!(
                    "strongroom:v4294967295:{}",
                    Base64::encode_string(&bytes[..len])
                )
            );
            assert_eq!(
                Encoded::parse(&text, "strongroom", "ciphertext").unwrap(),
                e
            );
        }
    }
}
