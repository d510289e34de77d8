//! Share files encrypted to an officer's public key.
//!
//! A share written to a removable medium is readable by whoever holds the
//! medium. Encrypted to its officer's [age] X25519 key, it is readable only
//! with that officer's identity (an `AGE-SECRET-KEY-1…` line, typically in a
//! file kept on the officer's own token or laptop). The format is age v1
//! with ASCII armor, so the file is printable and any age implementation
//! opens it: `age -d -i officer.key share-2-of-5.txt.age` prints the share's
//! text form.
//!
//! - [`Recipient`]: an officer's public key (`age1…`), parsed alone or from a
//!   recipients file ([`parse_recipients`]: one key per line, `#` comments
//!   and blank lines ignored, as the `age` CLI reads them).
//! - [`encrypt`]: a share's text to one recipient, as armored age text.
//! - [`Identities`]: an identity file's X25519 secret keys, wiped on drop.
//! - [`is_encrypted`], [`decrypt`]: detect and open an encrypted share file.
//!
//! Only X25519 recipients and identities are supported: no passphrases
//! (a passphrase is what the shares exist to replace), no SSH keys, no
//! plugins (the offline ceremony runs no helper programs). Errors never
//! quote an identity or a decrypted byte.
//!
//! The `age` crate is the format's reference implementation in Rust. It
//! wipes its file keys and the buffer it decrypts into, and this module
//! reads the plaintext into memory that is wiped on drop. Residue this
//! module cannot wipe: the `age` encryptor's chunk buffer, which holds a
//! share's text while it is encrypted and is freed without being wiped
//! (the crate offers no way around it), and the stack copy of each
//! identity as it is parsed.
//!
//! [age]: https://age-encryption.org/v1

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use zeroize::Zeroizing;

/// The file name suffix of an encrypted share (`share-2-of-5.txt.age`).
pub const ENCRYPTED_SUFFIX: &str = ".age";

/// The largest decrypted share accepted: a share's text form with
/// annotations is far smaller.
pub const MAX_PLAINTEXT: usize = 16 * 1024;

/// Why a key could not be used or a share file not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// A recipient is not an age X25519 public key.
    #[error("{0}")]
    BadRecipient(String),
    /// A line of an identity file is not an age X25519 secret key (the line
    /// is never quoted: it may be one).
    #[error(
        "line {line} of the identity file is not an age X25519 identity (AGE-SECRET-KEY-1…); \
         passphrase-protected, SSH and plugin identities are not supported"
    )]
    BadIdentity {
        /// 1-based line number.
        line: usize,
    },
    /// The identity file holds no identity.
    #[error("the identity file holds no age identity (AGE-SECRET-KEY-1…)")]
    NoIdentity,
    /// None of the identities given can open the file.
    #[error(
        "none of the given age identities can open it: it is encrypted to another officer's \
         key, or its header is damaged"
    )]
    NotForTheseIdentities,
    /// The file is encrypted with a passphrase, not to a public key.
    #[error(
        "it is encrypted with a passphrase, not to an officer's key; decrypt it with `age -d` \
         and give the share itself"
    )]
    Passphrase,
    /// The file is not an age file, or it is damaged.
    #[error("it is not an intact age file: {0}")]
    Damaged(&'static str),
    /// What it decrypts to is too large, or not text.
    #[error("it does not decrypt to a share: {0}")]
    NotAShare(&'static str),
    /// Encryption failed (an I/O error on memory, or the random generator).
    #[error("cannot encrypt a share: {0}")]
    Encrypt(String),
}

/// An officer's age X25519 public key (`age1…`), the recipient of one share.
#[derive(Clone)]
pub struct Recipient(age::x25519::Recipient);

impl FromStr for Recipient {
    type Err = EnvelopeError;

    fn from_str(text: &str) -> Result<Self, EnvelopeError> {
        let text = text.trim();
        age::x25519::Recipient::from_str(text)
            .map(Recipient)
            .map_err(|reason| {
                // Quoted only if it looks like a public key: a line of an
                // identity file given by mistake is a secret key.
                let looks_public = text.len() <= 100
                    && text
                        .get(..4)
                        .is_some_and(|p| p.eq_ignore_ascii_case("age1"));
                EnvelopeError::BadRecipient(if looks_public {
                    format!("'{text}' is not an age X25519 recipient (age1…): {reason}")
                } else {
                    "not an age X25519 recipient (age1…); not shown, as it may be a secret key"
                        .to_owned()
                })
            })
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({})", self.0)
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Recipient {}

/// Parses a recipients file: one `age1…` key per line, in officer order;
/// blank lines and lines starting with `#` are ignored. A bad line is
/// named by its number.
pub fn parse_recipients(text: &str) -> Result<Vec<Recipient>, EnvelopeError> {
    let mut recipients = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let recipient = line.parse::<Recipient>().map_err(|e| match e {
            EnvelopeError::BadRecipient(reason) => {
                EnvelopeError::BadRecipient(format!("line {}: {reason}", i + 1))
            }
            other => other,
        })?;
        recipients.push(recipient);
    }
    Ok(recipients)
}

/// An officer's age X25519 identities (secret keys), from an identity file
/// as `age-keygen` writes it. Wiped on drop; never printed.
#[allow(
    clippy::vec_box,
    reason = "a growing list must move pointers, not copies of secret keys"
)]
pub struct Identities(Vec<Box<age::x25519::Identity>>);

impl Identities {
    /// Parses an identity file: `AGE-SECRET-KEY-1…` lines; blank lines and
    /// lines starting with `#` are ignored. At least one identity is needed.
    pub fn parse(text: &str) -> Result<Self, EnvelopeError> {
        let mut identities = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Boxed, so that a growing list moves pointers, not secret keys.
            let identity = age::x25519::Identity::from_str(line)
                .map(Box::new)
                .map_err(|_| EnvelopeError::BadIdentity { line: i + 1 })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(EnvelopeError::NoIdentity);
        }
        Ok(Identities(identities))
    }

    /// Adds `other`'s identities to these.
    pub fn extend(&mut self, mut other: Identities) {
        self.0.append(&mut other.0);
    }

    /// The public keys of these identities.
    pub fn recipients(&self) -> Vec<Recipient> {
        self.0.iter().map(|i| Recipient(i.to_public())).collect()
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identities(<{} redacted>)", self.0.len())
    }
}

/// Whether `input` is an age file (armored or binary), as opposed to a
/// share's text or compact form.
pub fn is_encrypted(input: &[u8]) -> bool {
    let start = input.trim_ascii_start();
    start.starts_with(b"age-encryption.org/")
        || start.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

/// Encrypts a share's text to `recipient`: armored age text, ending in a
/// newline.
pub fn encrypt(share_text: &str, recipient: &Recipient) -> Result<String, EnvelopeError> {
    use age::armor::{ArmoredWriter, Format};
    let fail = |e: std::io::Error| EnvelopeError::Encrypt(e.to_string());
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient.0 as &dyn age::Recipient))
            .map_err(|e| EnvelopeError::Encrypt(e.to_string()))?;
    let mut armored = Vec::with_capacity(1024);
    let mut writer = encryptor
        .wrap_output(ArmoredWriter::wrap_output(&mut armored, Format::AsciiArmor).map_err(fail)?)
        .map_err(fail)?;
    writer.write_all(share_text.as_bytes()).map_err(fail)?;
    writer.finish().and_then(|w| w.finish()).map_err(fail)?;
    let mut text = String::from_utf8(armored)
        .map_err(|_| EnvelopeError::Encrypt("armor is not text".into()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Decrypts an encrypted share file with `identities`: the share's text,
/// in memory wiped on drop. It is not parsed here.
pub fn decrypt(input: &[u8], identities: &Identities) -> Result<Zeroizing<String>, EnvelopeError> {
    use age::DecryptError as E;
    // The armor must start the input; `is_encrypted` allows leading space.
    let input = input.trim_ascii_start();
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(input)).map_err(
        |e| match e {
            E::UnknownFormat => EnvelopeError::Damaged("an unknown age version"),
            E::Io(_) => EnvelopeError::Damaged("its armor or header cannot be read"),
            _ => EnvelopeError::Damaged("its header is invalid"),
        },
    )?;
    if decryptor.is_scrypt() {
        return Err(EnvelopeError::Passphrase);
    }
    let mut reader = decryptor
        .decrypt(identities.0.iter().map(|i| &**i as &dyn age::Identity))
        .map_err(|e| match e {
            E::NoMatchingKeys => EnvelopeError::NotForTheseIdentities,
            E::InvalidMac => EnvelopeError::Damaged("its header was altered (MAC mismatch)"),
            _ => EnvelopeError::Damaged("its header is invalid"),
        })?;
    // Fixed capacity, so that no reallocation leaves a copy behind.
    let mut plaintext = Zeroizing::new(Vec::with_capacity(MAX_PLAINTEXT + 1));
    (&mut reader)
        .take(u64::try_from(MAX_PLAINTEXT + 1).unwrap_or(u64::MAX))
        .read_to_end(&mut plaintext)
        .map_err(|_| EnvelopeError::Damaged("its payload fails authentication"))?;
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EnvelopeError::NotAShare("it is larger than a share"));
    }
    let text =
        std::str::from_utf8(&plaintext).map_err(|_| EnvelopeError::NotAShare("it is not text"))?;
    let mut owned = Zeroizing::new(String::with_capacity(text.len()));
    owned.push_str(text);
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (Identities, Recipient) {
        let secret = age::x25519::Identity::generate();
        let public = Recipient(secret.to_public());
        (Identities(vec![Box::new(secret)]), public)
    }

    const SHARE: &str = "strongroom-share v1\nset 00 threshold 1 of 1 share 1\n";

    #[test]
    fn a_share_round_trips_through_armored_age() {
        let (identities, recipient) = identity();
        let armored = encrypt(SHARE, &recipient).expect("encrypt");
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(armored.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
        assert!(is_encrypted(armored.as_bytes()));
        assert!(!is_encrypted(SHARE.as_bytes()));
        let back = decrypt(armored.as_bytes(), &identities).expect("decrypt");
        assert_eq!(back.as_str(), SHARE);
        // Blank lines before the armor are tolerated.
        let padded = format!("\n  \n{armored}");
        assert!(is_encrypted(padded.as_bytes()));
        let back = decrypt(padded.as_bytes(), &identities).expect("decrypt padded");
        assert_eq!(back.as_str(), SHARE);
    }

    #[test]
    fn another_officers_identity_cannot_open_it() {
        let (_, recipient) = identity();
        let (other, _) = identity();
        let armored = encrypt(SHARE, &recipient).expect("encrypt");
        let err = decrypt(armored.as_bytes(), &other).expect_err("refused");
        assert!(matches!(err, EnvelopeError::NotForTheseIdentities), "{err}");
    }

    #[test]
    fn a_changed_byte_is_detected() {
        let (identities, recipient) = identity();
        let armored = encrypt(SHARE, &recipient).expect("encrypt");
        // One base64 character changed in the header's MAC, then in the
        // payload (the last base64 line, clear of its padding).
        let end = armored.len() - "-----END AGE ENCRYPTED FILE-----\n".len();
        for at in [armored.len() / 2, end - 10] {
            let mut bytes = armored.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let err = decrypt(&bytes, &identities).expect_err("refused");
            assert!(matches!(err, EnvelopeError::Damaged(_)), "at {at}: {err}");
        }
        let err = decrypt(b"age-encryption.org/v1\n-> X25519 nonsense\n", &identities)
            .expect_err("refused");
        assert!(matches!(err, EnvelopeError::Damaged(_)), "{err}");
    }

    #[test]
    fn recipients_files_name_the_bad_line() {
        let (a, ra) = identity();
        let (_, rb) = identity();
        let text = format!("# officers, in order\n{ra}\n\n  {rb}  \n");
        assert_eq!(
            parse_recipients(&text).expect("parse"),
            vec![ra.clone(), rb]
        );
        assert_eq!(a.recipients(), vec![ra.clone()]);
        let err = parse_recipients(&format!("{ra}\nage1notakey\n")).expect_err("refused");
        let message = err.to_string();
        assert!(
            message.starts_with("line 2: 'age1notakey' is not"),
            "{message}"
        );
        // A secret key given as a recipient is never quoted.
        let secret = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let line = secret.to_string().expose_secret().to_owned();
        let err = parse_recipients(&format!("{ra}\n{line}\n")).expect_err("refused");
        let message = err.to_string();
        assert!(
            message.starts_with("line 2: not an age X25519 recipient"),
            "{message}"
        );
        assert!(!message.contains(&line[16..48]), "{message}");
        assert!(parse_recipients("# none\n").expect("empty").is_empty());
    }

    #[test]
    fn identity_files_never_quote_their_lines() {
        let secret = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let key = secret.to_string();
        let text = format!("# created by age-keygen\n{}\n", key.expose_secret());
        let ids = Identities::parse(&text).expect("parse");
        assert_eq!(ids.recipients(), vec![Recipient(secret.to_public())]);
        assert_eq!(format!("{ids:?}"), "Identities(<1 redacted>)");
        let damaged = format!("{}x\n", key.expose_secret());
        let err = Identities::parse(&damaged).expect_err("refused");
        assert!(
            matches!(err, EnvelopeError::BadIdentity { line: 1 }),
            "{err}"
        );
        assert!(!err.to_string().contains(&key.expose_secret()[16..48]));
        assert!(matches!(
            Identities::parse("# nothing\n\n"),
            Err(EnvelopeError::NoIdentity)
        ));
    }
}
