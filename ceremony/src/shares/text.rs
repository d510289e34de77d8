//! The text and compact encodings of a [`Share`] (format in the parent
//! module's docs). Parsing turns text into canonical bytes and leaves every
//! check of content (version, checksum, parameters, index) to
//! `Share::from_canonical`, so both forms are checked the same way.

use core::fmt::Write as _;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use zeroize::Zeroizing;

use super::{
    BODY_LEN, CANONICAL_LEN, CHECKSUM_LEN, FORMAT_VERSION, PAYLOAD_LEN, SET_ID_LEN, Share,
    ShareError, checksum,
};

/// First token of the text form.
const MAGIC: &str = "strongroom-share";
/// Prefix of the compact form, before `v<version>:`.
const COMPACT_PREFIX: &str = "strongroom-share:";
/// Hex digits per group, groups per payload line.
const GROUP: usize = 4;
const GROUPS_PER_LINE: usize = 8;

/// Worst-case length of the text form, so the buffer never reallocates
/// (which would leave an unwiped copy of the share value behind).
const TEXT_CAPACITY: usize = 256;

pub(super) fn encode_text(share: &Share) -> String {
    let mut out = String::with_capacity(TEXT_CAPACITY);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{MAGIC} v{FORMAT_VERSION}");
    let _ = writeln!(
        out,
        "set {} threshold {} of {} share {}",
        share.set_id, share.threshold, share.count, share.index
    );
    let payload = share.payload();
    let mut hex = Zeroizing::new([0u8; 2 * PAYLOAD_LEN]);
    push_groups(&mut out, &payload[..], &mut hex[..]);
    out.push_str("check ");
    let mut check_hex = [0u8; 2 * CHECKSUM_LEN];
    push_groups(&mut out, &checksum(&share.body()), &mut check_hex);
    out
}

/// Appends `bytes` as lowercase hex in groups of [`GROUP`] digits,
/// [`GROUPS_PER_LINE`] groups a line, each line ended by `\n`.
fn push_groups(out: &mut String, bytes: &[u8], hex_buf: &mut [u8]) {
    // The buffer is exactly twice the input: encoding cannot fail.
    let Ok(hex) = base16ct::lower::encode_str(bytes, hex_buf) else {
        return;
    };
    for (i, group) in hex.as_bytes().chunks(GROUP).enumerate() {
        if i > 0 {
            out.push(if i % GROUPS_PER_LINE == 0 { '\n' } else { ' ' });
        }
        // Hex digits are ASCII.
        out.extend(group.iter().map(|&b| char::from(b)));
    }
    out.push('\n');
}

pub(super) fn encode_compact(share: &Share) -> String {
    let canonical = share.canonical();
    let mut out = String::with_capacity(TEXT_CAPACITY);
    let _ = write!(out, "{COMPACT_PREFIX}v{FORMAT_VERSION}:");
    let mut buf = Zeroizing::new([0u8; TEXT_CAPACITY]);
    if let Ok(encoded) = Base64UrlUnpadded::encode(&canonical[..], &mut buf[..]) {
        out.push_str(encoded);
    }
    out
}

pub(super) fn parse(input: &str) -> Result<Share, ShareError> {
    let trimmed = input.trim();
    match trimmed.get(..COMPACT_PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(COMPACT_PREFIX) => {
            parse_compact(&trimmed[COMPACT_PREFIX.len()..])
        }
        _ => parse_text(input),
    }
}

fn malformed(reason: impl Into<String>) -> ShareError {
    ShareError::Malformed {
        reason: reason.into(),
    }
}

/// Reads `v<version>` (either case), refusing versions this build cannot read.
fn parse_version(token: &str) -> Option<Result<(), ShareError>> {
    let digits = token.strip_prefix(['v', 'V'])?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<u32>() {
        Ok(found) if found == u32::from(FORMAT_VERSION) => Ok(()),
        Ok(found) => Err(ShareError::UnsupportedVersion { found }),
        Err(_) => Err(ShareError::UnsupportedVersion { found: u32::MAX }),
    })
}

fn parse_compact(rest: &str) -> Result<Share, ShareError> {
    let (version, encoded) = rest
        .split_once(':')
        .ok_or_else(|| malformed("compact form: expected `strongroom-share:v1:<base64url>`"))?;
    parse_version(version.trim())
        .ok_or_else(|| malformed("compact form: expected `strongroom-share:v1:<base64url>`"))??;
    // Tolerate line wrapping and stray spaces inside the encoded part.
    let mut cleaned = Zeroizing::new(String::with_capacity(encoded.len()));
    cleaned.extend(encoded.chars().filter(|c| !c.is_whitespace()));
    let mut canonical = Zeroizing::new([0u8; CANONICAL_LEN]);
    match Base64UrlUnpadded::decode(cleaned.as_bytes(), &mut canonical[..]) {
        Ok(decoded) if decoded.len() == CANONICAL_LEN => {}
        _ => {
            return Err(malformed(format!(
                "compact form: the encoded part must be {CANONICAL_LEN} bytes of unpadded \
                 base64url (corrupted or truncated)"
            )));
        }
    }
    Share::from_canonical(&canonical)
}

/// The significant lines: trimmed (spaces, tabs, `\r`), numbered from 1,
/// without blank lines and `#` annotations.
fn significant_lines(input: &str) -> impl Iterator<Item = (usize, &str)> {
    input
        .lines()
        .map(str::trim)
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// Whitespace-separated tokens of one line, with its number for errors.
struct Tokens<'a> {
    line: usize,
    tokens: core::iter::Peekable<core::str::SplitWhitespace<'a>>,
}

impl<'a> Tokens<'a> {
    fn new(line: usize, text: &'a str) -> Self {
        Self {
            line,
            tokens: text.split_whitespace().peekable(),
        }
    }

    fn keyword(&mut self, word: &str) -> Result<(), ShareError> {
        match self.tokens.next() {
            Some(token) if token.eq_ignore_ascii_case(word) => Ok(()),
            _ => Err(malformed(format!("line {}: expected `{word}`", self.line))),
        }
    }

    fn number(&mut self, what: &str) -> Result<u8, ShareError> {
        self.tokens
            .next()
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u8>().ok())
            .ok_or_else(|| {
                malformed(format!(
                    "line {}: the {what} must be a number from 0 to 255",
                    self.line
                ))
            })
    }

    fn end(&mut self) -> Result<(), ShareError> {
        match self.tokens.next() {
            None => Ok(()),
            Some(_) => Err(malformed(format!(
                "line {}: unexpected text at the end of the line",
                self.line
            ))),
        }
    }
}

/// Appends the hex digits of `tokens` to `digits`, at most `max` in all.
/// Error messages name the line, never the digits (they may be secret).
fn push_hex(
    digits: &mut Zeroizing<Vec<u8>>,
    max: usize,
    line: usize,
    tokens: core::str::SplitWhitespace<'_>,
    what: &str,
) -> Result<(), ShareError> {
    for token in tokens {
        if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(format!(
                "line {line}: the {what} may contain only hex digits 0-9 and a-f"
            )));
        }
        if digits.len() + token.len() > max {
            return Err(malformed(format!(
                "line {line}: the {what} has more than {max} hex digits"
            )));
        }
        digits.extend_from_slice(token.as_bytes());
    }
    Ok(())
}

fn parse_text(input: &str) -> Result<Share, ShareError> {
    let mut lines = significant_lines(input);

    // Line 1: `strongroom-share v1`.
    let expected_first = format!("expected `{MAGIC} v{FORMAT_VERSION}`");
    let (n, first) = lines.next().ok_or_else(|| malformed("the text is empty"))?;
    let mut tokens = Tokens::new(n, first);
    tokens
        .keyword(MAGIC)
        .map_err(|_| malformed(format!("line {n}: {expected_first}")))?;
    tokens
        .tokens
        .next()
        .and_then(parse_version)
        .ok_or_else(|| malformed(format!("line {n}: {expected_first}")))??;
    tokens.end()?;

    // Line 2: `set <hex> threshold K of N share I`.
    let (n, header) = lines
        .next()
        .ok_or_else(|| malformed("the `set … threshold … of … share …` line is missing"))?;
    let mut tokens = Tokens::new(n, header);
    tokens.keyword("set")?;
    // The set id runs up to the `threshold` keyword (it may be grouped).
    let mut set_hex = Zeroizing::new(Vec::with_capacity(2 * SET_ID_LEN));
    let bad_set_id = || {
        malformed(format!(
            "line {n}: the set id must be {} hex digits",
            2 * SET_ID_LEN
        ))
    };
    while let Some(token) = tokens.tokens.next_if(|t| {
        t.bytes().all(|b| b.is_ascii_hexdigit()) && set_hex.len() + t.len() <= 2 * SET_ID_LEN
    }) {
        set_hex.extend_from_slice(token.as_bytes());
    }
    if set_hex.len() != 2 * SET_ID_LEN {
        return Err(bad_set_id());
    }
    tokens.keyword("threshold")?;
    let threshold = tokens.number("threshold")?;
    tokens.keyword("of")?;
    let count = tokens.number("number of shares")?;
    tokens.keyword("share")?;
    let index = tokens.number("share index")?;
    tokens.end()?;

    // Payload lines, up to the `check` line.
    let mut payload_hex = Zeroizing::new(Vec::with_capacity(2 * PAYLOAD_LEN));
    let mut check_hex = Zeroizing::new(Vec::with_capacity(2 * CHECKSUM_LEN));
    let mut saw_check = false;
    for (n, line) in lines.by_ref() {
        let mut tokens = line.split_whitespace();
        let is_check = tokens
            .clone()
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("check"));
        if is_check {
            tokens.next();
            push_hex(&mut check_hex, 2 * CHECKSUM_LEN, n, tokens, "check value")?;
            saw_check = true;
            break;
        }
        push_hex(
            &mut payload_hex,
            2 * PAYLOAD_LEN,
            n,
            tokens,
            "share payload",
        )?;
    }
    if !saw_check {
        return Err(malformed("the `check` line is missing"));
    }
    if let Some((n, _)) = lines.next() {
        return Err(malformed(format!(
            "line {n}: unexpected text after the `check` line"
        )));
    }
    if payload_hex.len() != 2 * PAYLOAD_LEN {
        return Err(malformed(format!(
            "the share payload has {} hex digits, expected {} (a digit or group is missing)",
            payload_hex.len(),
            2 * PAYLOAD_LEN
        )));
    }
    if check_hex.len() != 2 * CHECKSUM_LEN {
        return Err(malformed(format!(
            "the check value has {} hex digits, expected {}",
            check_hex.len(),
            2 * CHECKSUM_LEN
        )));
    }

    let mut canonical = Zeroizing::new([0u8; CANONICAL_LEN]);
    canonical[0] = FORMAT_VERSION;
    decode_hex(&set_hex, &mut canonical[1..1 + SET_ID_LEN])?;
    canonical[1 + SET_ID_LEN] = threshold;
    canonical[2 + SET_ID_LEN] = count;
    canonical[3 + SET_ID_LEN] = index;
    decode_hex(&payload_hex, &mut canonical[4 + SET_ID_LEN..BODY_LEN])?;
    decode_hex(&check_hex, &mut canonical[BODY_LEN..])?;
    Share::from_canonical(&canonical)
}

/// Constant-time hex decoding into `dst`, which must be exactly half as long.
fn decode_hex(hex: &[u8], dst: &mut [u8]) -> Result<(), ShareError> {
    match base16ct::mixed::decode(hex, dst) {
        Ok(decoded) if decoded.len() == hex.len() / 2 => Ok(()),
        _ => Err(malformed("invalid hex digits")),
    }
}
