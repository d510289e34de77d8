//! Hash-chained JSON lines: the format of the ceremony transcript and of
//! the appliance's audit trail.
//!
//! Each line is one JSON object whose last member is `"hash"`, and which
//! carries the previous line's hash in a `prev_hash` member ([`GENESIS`] for
//! the first line of a chain):
//!
//! ```text
//! {"seq":1,…,"prev_hash":"000…000","hash":"3f9a…"}
//! ```
//!
//! `hash` is the hex SHA-256 of the line's exact bytes up to (not including)
//! `,"hash":` followed by a closing `}`, that is, of the object without its
//! last member. Hashing the bytes as written, rather than a
//! re-serialisation, means a verifier needs no canonical JSON: change any
//! byte of a line and its hash fails; change a hash and the next line's
//! `prev_hash` fails. A line must also be exactly what its record
//! serialises to ([`open_line`]), so no second reading of it (duplicate
//! keys, odd spacing) can differ from the writer's.
//!
//! A chain alone does not stop someone who can rewrite the whole file from
//! recomputing every hash after an edit: the last hash must be kept
//! elsewhere (written down by the ceremony's witnesses, or sent to another
//! sink) for that.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// `prev_hash` of the first line of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The separator in front of the hash member.
const HASH_MEMBER: &str = ",\"hash\":\"";

/// The line for `record` (with its trailing newline) and its hash. The
/// record must serialise to a JSON object that has no `hash` member.
pub fn seal<T: Serialize>(record: &T) -> Result<(String, String), String> {
    // One buffer, sized for a typical audit record, holds the body and then
    // the whole line: the hash member is appended in place of the closing `}`.
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    serde_json::to_writer(&mut line, record).map_err(|e| e.to_string())?;
    if line.last() != Some(&b'}') {
        return Err("a record serialises to a JSON object".to_string());
    }
    let hash = sha256_hex(&line);
    line.pop();
    line.reserve_exact(HASH_MEMBER.len() + hash.len() + 3);
    line.extend_from_slice(HASH_MEMBER.as_bytes());
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    let line = String::from_utf8(line).map_err(|e| e.to_string())?;
    Ok((line, hash))
}

/// The buffer [`seal`] starts with: room for most records without growing.
const LINE_CAPACITY: usize = 1024;

/// Parses one line (without its newline) and checks its own hash and form:
/// returns the record and the hash.
pub fn open_line<T: Serialize + DeserializeOwned>(line: &str) -> Result<(T, String), String> {
    let at = line
        .rfind(HASH_MEMBER)
        .ok_or_else(|| "no hash member".to_string())?;
    let hash = line[at + HASH_MEMBER.len()..]
        .strip_suffix("\"}")
        .ok_or_else(|| "the hash member is not the last member".to_string())?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("the hash is not 64 lower-case hex digits".into());
    }
    let body = format!("{}}}", &line[..at]);
    if sha256_hex(body.as_bytes()) != hash {
        return Err("the line's hash does not match its contents (the line was changed)".into());
    }
    let record: T = serde_json::from_str(&body).map_err(|e| format!("not a valid record: {e}"))?;
    let (again, again_hash) = seal(&record)?;
    if again.trim_end_matches('\n') != line || again_hash != hash {
        return Err("the line is not in canonical form".into());
    }
    Ok((record, hash.to_string()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::files::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        seq: u64,
        what: String,
        prev_hash: String,
    }

    #[test]
    fn a_sealed_line_opens_and_any_change_breaks_it() {
        let record = Line {
            seq: 1,
            what: "begin".into(),
            prev_hash: GENESIS.into(),
        };
        let (line, hash) = seal(&record).expect("seal");
        let line = line.trim_end();
        let (back, back_hash) = open_line::<Line>(line).expect("open");
        assert_eq!(back, record);
        assert_eq!(back_hash, hash);
        for (i, _) in line.char_indices() {
            let mut bytes = line.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let changed = String::from_utf8_lossy(&bytes).to_string();
            assert!(
                open_line::<Line>(&changed).is_err(),
                "byte {i} changed: {changed}"
            );
        }
        // Same content, other spacing: the hash covers the bytes, and the
        // form is checked too.
        let spaced = line.replacen("\"seq\":1", "\"seq\": 1", 1);
        assert!(open_line::<Line>(&spaced).is_err());
    }
}
