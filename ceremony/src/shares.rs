//! Shamir secret sharing of a 256-bit secret, with integrity checks.
//!
//! The offline ceremony splits a [`Secret`] (the key that protects the HSM
//! PIN) into `N` [`Share`]s, any `K` of which reconstruct it; the appliance's
//! seal [`combine`]s them again when `K` officers unseal it. The GF(256)
//! arithmetic is `vsss-rs`'s (constant time); everything that makes a share
//! *trustworthy* is added here, because no Shamir crate checks it (a wrong,
//! corrupted, tampered or foreign share makes them return a wrong secret
//! silently, and `vsss-rs`'s byte API does not even know the threshold).
//!
//! # What is checked, and where
//!
//! | failure | caught by | error |
//! |---|---|---|
//! | typo, flipped character, truncated file | per-share checksum, when parsing | [`ShareError::Corrupted`], [`ShareError::Malformed`] |
//! | share of another split (old ceremony, other appliance) | random 16-byte set identifier | [`ShareError::ForeignSet`] |
//! | same share given twice | share index | [`ShareError::Duplicate`] |
//! | fewer than `K` shares | threshold carried in every share | [`ShareError::NotEnough`] |
//! | shares that disagree on `K`, `N` or the verifier | comparison with the shares already given | [`ShareError::Mismatched`] |
//! | a share altered by someone who recomputed its checksum | **verifier**: HMAC-SHA256 keyed by the secret, in every share, checked on the reconstructed secret | [`ShareError::WrongShares`] |
//!
//! The verifier is `HMAC-SHA256(key = secret, "strongroom-share-verifier-v1"
//! ‖ set id ‖ K ‖ N)`, truncated to 16 bytes. Nobody can make a consistent
//! verifier for a different secret, or for a different `K`/`N`, without the
//! secret itself. [`combine`] reconstructs from windows of `K` shares that
//! together cover *every* share given (so a bad extra share is caught too),
//! checks each result against the verifier in constant time, and returns
//! [`ShareError::WrongShares`], never a wrong secret. [`split`] runs the same
//! check over all `N` fresh shares (and parses back each share's text) before
//! it returns them.
//!
//! Because the verifier is a function of the secret, anyone holding one share
//! can test guesses of the secret offline: the secret must be a uniformly
//! random 256-bit key ([`Secret::generate`]), never a PIN or passphrase. Wrap
//! the PIN under it instead.
//!
//! With `K = 1` every share holds the secret itself (the sharing polynomial is
//! a constant): that is what 1-of-N means.
//!
//! # Text format (version 1)
//!
//! One share per file, printable, for an officer to keep on paper or a
//! removable medium:
//!
//! ```text
//! strongroom-share v1
//! set 3f9a6c0e81d24b7f95e2c4a7108b3d56 threshold 3 of 5 share 2
//! adfb bf47 eb5c ebfc 1e69 d622 3efa 4fe4
//! 63dd 7b4b e670 dd28 4f6f ae88 0a76 07de
//! 19fc 01b3 4ef9 fa1a 96b9 134c 90de 59f0
//! check ee8b b1fe
//! ```
//!
//! - Line 1: the magic word and the format version.
//! - Line 2 (human-checkable): the set identifier (32 hex digits, the same
//!   for every share of one split), the threshold `K`, the number of shares
//!   `N`, and this share's index (1 to `N`; it is also its x-coordinate).
//! - Three payload lines: 48 bytes as 96 hex digits in groups of 4: the
//!   share value (32 bytes, secret) then the set's verifier (16 bytes).
//! - `check`: the first 4 bytes of `SHA-256("strongroom-share-checksum-v1"
//!   ‖ body)`, where the body is the first 68 canonical bytes below (version,
//!   set id, `K`, `N`, index, value and verifier). It catches typos (a wrong
//!   share slips through with probability 2⁻³²); the verifier, not the
//!   checksum, is what stops a deliberate forgery.
//!
//! Parsing is lenient with layout and strict with content: keywords and hex
//! are case-insensitive; extra spaces or tabs, CRLF line ends, blank lines
//! and lines starting with `#` (annotations) are ignored; payload and check
//! digits may be grouped in any way. A changed digit in line 2, the payload
//! or the check fails the checksum, e.g. `share 2 of set 3f9a…: checksum
//! mismatch (corrupted or mistyped)`; a damaged keyword, a missing or extra
//! digit, or a non-hex character is reported with its line number. Error
//! messages never quote payload digits.
//!
//! The compact one-line form, for scripts and configuration, is
//! `strongroom-share:v1:` followed by the 72 canonical bytes in unpadded
//! base64url ([`Share::to_compact`]); [`Share::from_text`] reads both forms.
//!
//! Canonical bytes (72): version (1) ‖ set id (16) ‖ K (1) ‖ N (1) ‖ index (1)
//! ‖ value (32) ‖ verifier (16) ‖ checksum (4). [`Share::fingerprint`] is the
//! hex SHA-256 of them, for storing commitments to the shares handed out.
//!
//! # Randomness and sessions
//!
//! [`split`] and [`Secret::generate`] take any `rand_core` 0.10
//! [`TryCryptoRng`] (the traits `vsss-rs` uses; re-exported as
//! [`rand_core`]): [`SystemRng`] is the OS
//! generator, and the appliance can adapt the HSM's. A generator failure is
//! an error, never weak shares. An unseal session is a [`Combiner`]
//! (preferably [`Combiner::for_set`] with the set id recorded at sealing),
//! fed one share at a time; dropping it wipes the shares given so far.
//!
//! # Example
//!
//! ```
//! use strongroom_ceremony::shares::{combine, split, Secret, Share, SystemRng};
//!
//! let mut rng = SystemRng::new();
//! let secret = Secret::generate(&mut rng)?;
//! let shares = split(&secret, 3, 5, &mut rng)?;
//! let texts: Vec<String> = shares.iter().map(Share::to_text).collect();
//!
//! // Later: any three officers bring their shares.
//! let back: Vec<Share> = [&texts[4], &texts[0], &texts[2]]
//!     .into_iter()
//!     .map(|text| Share::from_text(text))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(combine(&back)?, secret);
//! # Ok::<(), strongroom_ceremony::shares::ShareError>(())
//! ```
//!
//! # Secrets in memory
//!
//! [`Secret`] and every share value zeroize on drop, print as `<redacted>`,
//! and are not `Copy`. Residue this module cannot wipe: `vsss-rs` drops its
//! polynomial coefficients without zeroizing them, `ring`'s HMAC key schedule
//! lives briefly on the stack, and [`Share::to_text`] returns a plain
//! `String` (the caller writes it out and drops it).

mod text;

pub use rand_core;

#[cfg(test)]
mod tests;

use core::fmt;
use std::str::FromStr;

use rand_core::{Infallible, TryCryptoRng, TryRng};
use ring::{digest, hmac, rand::SecureRandom as _};
use subtle::ConstantTimeEq as _;
use vsss_rs::{Gf256, IdentifierGf256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a [`Secret`] in bytes (256 bits).
pub const SECRET_LEN: usize = 32;
/// Length of a [`SetId`] in bytes.
pub const SET_ID_LEN: usize = 16;
/// The share format version this build writes (and the only one it reads).
pub const FORMAT_VERSION: u8 = 1;

const VERIFIER_LEN: usize = 16;
const CHECKSUM_LEN: usize = 4;
/// Value and verifier: what the text form's payload lines carry.
const PAYLOAD_LEN: usize = SECRET_LEN + VERIFIER_LEN;
/// Everything the checksum covers.
const BODY_LEN: usize = 1 + SET_ID_LEN + 3 + PAYLOAD_LEN;
const CANONICAL_LEN: usize = BODY_LEN + CHECKSUM_LEN;

const VERIFIER_LABEL: &[u8] = b"strongroom-share-verifier-v1";
const CHECKSUM_LABEL: &[u8] = b"strongroom-share-checksum-v1";

/// Errors from splitting, parsing and combining shares.
///
/// Messages are written for the operator at the ceremony or unseal console;
/// none contains secret material (share values, secrets), only public share
/// metadata (set id, threshold, count, index).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// Threshold and count must satisfy `1 <= threshold <= count <= 255`.
    #[error(
        "invalid share parameters: threshold {threshold} of {count} shares \
         (need 1 <= threshold <= count <= 255)"
    )]
    InvalidParameters {
        /// The threshold `K` asked for (or read from a share).
        threshold: u8,
        /// The number of shares `N` asked for (or read from a share).
        count: u8,
    },
    /// The share's checksum does not match its contents: a typo, a flipped
    /// character or a damaged file.
    #[error("share {index} of set {set_id}: checksum mismatch (corrupted or mistyped)")]
    Corrupted {
        /// The set the share claims to belong to (possibly itself corrupted).
        set_id: SetId,
        /// The index the share claims (possibly itself corrupted).
        index: u8,
    },
    /// The text is not a share in a form this build reads.
    #[error("not a readable Strongroom share: {reason}")]
    Malformed {
        /// What is wrong, and where (never quotes payload digits).
        reason: String,
    },
    /// The share was written in a format version this build does not read.
    #[error("unsupported share format version {found} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version the share declares.
        found: u32,
    },
    /// The share's index is 0 or larger than the number of shares in its set.
    #[error("share {index} of set {set_id}: index out of range for a set of {count} shares")]
    InvalidIndex {
        /// The set the share belongs to.
        set_id: SetId,
        /// The out-of-range index.
        index: u8,
        /// The number of shares in the set.
        count: u8,
    },
    /// The share belongs to a different split than the shares already given
    /// (or than the set the combiner was created for).
    #[error(
        "share {index} belongs to set {found}, but the shares being combined belong to set {expected}"
    )]
    ForeignSet {
        /// The set being combined.
        expected: SetId,
        /// The set of the refused share.
        found: SetId,
        /// The index of the refused share.
        index: u8,
    },
    /// The share names the same set as the shares already given but disagrees
    /// with them about the threshold, the count or the verifier: one of them
    /// is not a genuine share of the set.
    #[error(
        "share {index} of set {set_id} disagrees with the shares already given about the \
         threshold, the number of shares or the verifier: one of them is not a genuine share"
    )]
    Mismatched {
        /// The set being combined.
        set_id: SetId,
        /// The index of the refused share.
        index: u8,
    },
    /// A share with this index was already given.
    #[error("share {index} was given more than once")]
    Duplicate {
        /// The repeated index.
        index: u8,
    },
    /// Fewer shares than the threshold.
    #[error("not enough shares: have {have}, need {need}")]
    NotEnough {
        /// Distinct shares given.
        have: u8,
        /// The set's threshold.
        need: u8,
    },
    /// No share at all was given.
    #[error("no shares given")]
    NoShares,
    /// The shares are individually well-formed and consistent, but do not
    /// reconstruct the secret their verifier commits to: at least one share
    /// is wrong or was tampered with (its checksum recomputed).
    #[error(
        "the shares do not reconstruct their set's secret: at least one share is wrong \
         or has been tampered with"
    )]
    WrongShares,
    /// The random number generator failed; nothing was produced.
    #[error("random number generator failed: {reason}")]
    Random {
        /// The generator's own error message.
        reason: String,
    },
    /// Freshly split shares failed their own verification. This indicates a
    /// bug or faulty hardware; no share was returned.
    #[error("freshly split shares failed verification ({check}); no share was output")]
    SelfCheck {
        /// Which check failed.
        check: &'static str,
    },
}

/// A 256-bit secret: zeroized on drop, redacted in `Debug`, not `Copy`.
///
/// Equality is constant-time.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Secret([u8; SECRET_LEN]);

impl Secret {
    /// Wraps 32 bytes. The caller should wipe its own copy of `bytes`.
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh uniformly random secret.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, ShareError> {
        let mut secret = Self([0; SECRET_LEN]);
        rng.try_fill_bytes(&mut secret.0)
            .map_err(|e| ShareError::Random {
                reason: e.to_string(),
            })?;
        Ok(secret)
    }

    /// The secret bytes. Do not log them.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

/// Identifies one split: random, shared by all the shares it produced.
///
/// Public; shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId([u8; SET_ID_LEN]);

impl SetId {
    /// Wraps raw bytes (for example a set id stored by the appliance).
    pub fn from_bytes(bytes: [u8; SET_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SET_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 2 * SET_ID_LEN];
        let hex = base16ct::lower::encode_str(&self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(hex)
    }
}

impl fmt::Debug for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetId({self})")
    }
}

impl FromStr for SetId {
    type Err = ShareError;

    /// Parses 32 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; SET_ID_LEN];
        let s = s.trim();
        if s.len() != 2 * SET_ID_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ShareError::Malformed {
                reason: format!("a set id is {} hex digits", 2 * SET_ID_LEN),
            });
        }
        base16ct::mixed::decode(s, &mut bytes).map_err(|_| ShareError::Malformed {
            reason: "the set id is not hexadecimal".into(),
        })?;
        Ok(Self(bytes))
    }
}

/// One share of a split [`Secret`], with the metadata that lets it be checked
/// before combining. Its value zeroizes on drop and is redacted in `Debug`.
#[derive(Clone)]
pub struct Share {
    set_id: SetId,
    threshold: u8,
    count: u8,
    index: u8,
    value: Zeroizing<[u8; SECRET_LEN]>,
    verifier: [u8; VERIFIER_LEN],
}

impl Share {
    /// The split this share belongs to.
    pub fn set_id(&self) -> &SetId {
        &self.set_id
    }

    /// How many shares reconstruct the secret (`K`).
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// How many shares the split produced (`N`).
    pub fn count(&self) -> u8 {
        self.count
    }

    /// This share's index, 1 to [`count`](Self::count).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The multi-line text form (see the module docs). It contains the
    /// secret share value: write it where it belongs and drop it.
    pub fn to_text(&self) -> String {
        text::encode_text(self)
    }

    /// The compact one-line form, `strongroom-share:v1:<base64url>`. It
    /// contains the secret share value.
    pub fn to_compact(&self) -> String {
        text::encode_compact(self)
    }

    /// Parses either the text form or the compact form, checking the format
    /// version, the checksum, the parameters and the index.
    pub fn from_text(input: &str) -> Result<Share, ShareError> {
        text::parse(input)
    }

    /// Hex SHA-256 of the share's canonical bytes: a public commitment to
    /// this exact share (the value has at least 128 bits of entropy, so the
    /// fingerprint does not reveal it).
    pub fn fingerprint(&self) -> String {
        let canonical = self.canonical();
        let digest = digest::digest(&digest::SHA256, &canonical[..]);
        base16ct::lower::encode_string(digest.as_ref())
    }

    /// Builds a share from its fields without validating them (the
    /// checksum is computed on output); parsing goes through
    /// [`Share::from_canonical`], which validates.
    fn from_fields(
        set_id: SetId,
        threshold: u8,
        count: u8,
        index: u8,
        value: &[u8; SECRET_LEN],
        verifier: [u8; VERIFIER_LEN],
    ) -> Self {
        Self {
            set_id,
            threshold,
            count,
            index,
            value: Zeroizing::new(*value),
            verifier,
        }
    }

    /// The bytes the checksum covers.
    fn body(&self) -> Zeroizing<[u8; BODY_LEN]> {
        let mut body = Zeroizing::new([0u8; BODY_LEN]);
        body[0] = FORMAT_VERSION;
        body[1..1 + SET_ID_LEN].copy_from_slice(&self.set_id.0);
        body[1 + SET_ID_LEN] = self.threshold;
        body[2 + SET_ID_LEN] = self.count;
        body[3 + SET_ID_LEN] = self.index;
        body[4 + SET_ID_LEN..4 + SET_ID_LEN + SECRET_LEN].copy_from_slice(&self.value[..]);
        body[4 + SET_ID_LEN + SECRET_LEN..].copy_from_slice(&self.verifier);
        body
    }

    /// Value then verifier: what the text form's payload lines carry.
    fn payload(&self) -> Zeroizing<[u8; PAYLOAD_LEN]> {
        let mut payload = Zeroizing::new([0u8; PAYLOAD_LEN]);
        payload[..SECRET_LEN].copy_from_slice(&self.value[..]);
        payload[SECRET_LEN..].copy_from_slice(&self.verifier);
        payload
    }

    /// The 72 canonical bytes, checksum included.
    fn canonical(&self) -> Zeroizing<[u8; CANONICAL_LEN]> {
        let body = self.body();
        let mut canonical = Zeroizing::new([0u8; CANONICAL_LEN]);
        canonical[..BODY_LEN].copy_from_slice(&body[..]);
        canonical[BODY_LEN..].copy_from_slice(&checksum(&body));
        canonical
    }

    /// Reads canonical bytes, checking (in this order) the version, the
    /// checksum, the parameters and the index.
    fn from_canonical(bytes: &[u8; CANONICAL_LEN]) -> Result<Self, ShareError> {
        if bytes[0] != FORMAT_VERSION {
            return Err(ShareError::UnsupportedVersion {
                found: bytes[0].into(),
            });
        }
        let mut set_id = [0u8; SET_ID_LEN];
        set_id.copy_from_slice(&bytes[1..1 + SET_ID_LEN]);
        let set_id = SetId(set_id);
        let threshold = bytes[1 + SET_ID_LEN];
        let count = bytes[2 + SET_ID_LEN];
        let index = bytes[3 + SET_ID_LEN];

        let mut body = Zeroizing::new([0u8; BODY_LEN]);
        body.copy_from_slice(&bytes[..BODY_LEN]);
        let expected = checksum(&body);
        if !bool::from(expected.ct_eq(&bytes[BODY_LEN..])) {
            return Err(ShareError::Corrupted { set_id, index });
        }
        check_parameters(threshold, count)?;
        if index == 0 || index > count {
            return Err(ShareError::InvalidIndex {
                set_id,
                index,
                count,
            });
        }
        let mut value = Zeroizing::new([0u8; SECRET_LEN]);
        value.copy_from_slice(&bytes[4 + SET_ID_LEN..4 + SET_ID_LEN + SECRET_LEN]);
        let mut verifier = [0u8; VERIFIER_LEN];
        verifier.copy_from_slice(&bytes[4 + SET_ID_LEN + SECRET_LEN..BODY_LEN]);
        Ok(Self {
            set_id,
            threshold,
            count,
            index,
            value,
            verifier,
        })
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("set_id", &self.set_id)
            .field("threshold", &self.threshold)
            .field("count", &self.count)
            .field("index", &self.index)
            .field("value", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}

impl FromStr for Share {
    type Err = ShareError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Share::from_text(s)
    }
}

/// How far an incremental [`Combiner`] has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Distinct shares accepted so far.
    pub have: u8,
    /// The set's threshold.
    pub need: u8,
}

impl Progress {
    /// Whether enough shares were given to [`Combiner::finish`].
    pub fn is_complete(&self) -> bool {
        self.have >= self.need
    }
}

/// Collects shares one at a time (as officers present them), refusing a
/// foreign, duplicate or inconsistent share when it is added; a refused share
/// leaves the combiner unchanged. The shares held are wiped when it is
/// dropped or finished.
#[derive(Debug)]
pub struct Combiner {
    expected: Option<SetId>,
    shares: Vec<Share>,
}

impl Default for Combiner {
    fn default() -> Self {
        Self::new()
    }
}

impl Combiner {
    /// A combiner whose first share decides the set.
    pub fn new() -> Self {
        Self {
            expected: None,
            // Room for every possible index: the vector never reallocates, so
            // no unwiped copy of a share value is left behind.
            shares: Vec::with_capacity(usize::from(u8::MAX)),
        }
    }

    /// A combiner that accepts only shares of `set_id` (the set the
    /// appliance was sealed with).
    pub fn for_set(set_id: SetId) -> Self {
        Self {
            expected: Some(set_id),
            ..Self::new()
        }
    }

    /// Accepts one more share, or refuses it with
    /// [`ShareError::ForeignSet`], [`ShareError::Mismatched`] or
    /// [`ShareError::Duplicate`] (the combiner is then unchanged).
    pub fn add(&mut self, share: Share) -> Result<Progress, ShareError> {
        let expected = self
            .expected
            .or_else(|| self.shares.first().map(|s| s.set_id));
        if let Some(expected) = expected.filter(|e| *e != share.set_id) {
            return Err(ShareError::ForeignSet {
                expected,
                found: share.set_id,
                index: share.index,
            });
        }
        let consistent = self.shares.first().is_none_or(|first| {
            share.threshold == first.threshold
                && share.count == first.count
                && bool::from(share.verifier.ct_eq(&first.verifier))
        });
        if !consistent {
            return Err(ShareError::Mismatched {
                set_id: share.set_id,
                index: share.index,
            });
        }
        if self.shares.iter().any(|s| s.index == share.index) {
            return Err(ShareError::Duplicate { index: share.index });
        }
        self.shares.push(share);
        Ok(self.current())
    }

    /// Shares accepted and shares needed; `None` before the first share.
    pub fn progress(&self) -> Option<Progress> {
        (!self.shares.is_empty()).then(|| self.current())
    }

    /// The set being combined, once known.
    pub fn set_id(&self) -> Option<SetId> {
        self.expected
            .or_else(|| self.shares.first().map(|s| s.set_id))
    }

    /// Reconstructs the secret from all the shares given, and checks it
    /// against the set's verifier. Every share takes part: one bad share
    /// among more than `K` is still caught.
    pub fn finish(self) -> Result<Secret, ShareError> {
        let first = self.shares.first().ok_or(ShareError::NoShares)?;
        let progress = self.current();
        if !progress.is_complete() {
            return Err(ShareError::NotEnough {
                have: progress.have,
                need: progress.need,
            });
        }
        reconstruct_verified(&self.shares, first)
    }

    fn current(&self) -> Progress {
        Progress {
            // At most 255 distinct indices: each is a u8 in 1..=count.
            have: u8::try_from(self.shares.len()).unwrap_or(u8::MAX),
            need: self.shares.first().map_or(0, |s| s.threshold),
        }
    }
}

/// Splits `secret` into `count` shares, any `threshold` of which
/// reconstruct it (`1 <= threshold <= count <= 255`).
///
/// Randomness (the set id and the polynomial coefficients) comes from `rng`;
/// if it fails, [`ShareError::Random`] is returned and nothing else. Before
/// returning, every share is verified: each one's text and compact forms
/// parse back to it, and windows of `threshold` shares covering all `count`
/// reconstruct `secret` and match the verifier.
pub fn split<R: TryCryptoRng + ?Sized>(
    secret: &Secret,
    threshold: u8,
    count: u8,
    rng: &mut R,
) -> Result<Vec<Share>, ShareError> {
    check_parameters(threshold, count)?;
    let mut rng = FailClosed::new(rng);

    let mut set_id = [0u8; SET_ID_LEN];
    rng.fill(&mut set_id);
    let set_id = SetId(set_id);
    let verifier = verifier(secret, &set_id, threshold, count);

    let mut shares = Vec::with_capacity(usize::from(count));
    if threshold == 1 {
        // A constant polynomial: every share is the secret.
        for index in 1..=count {
            shares.push(Share::from_fields(
                set_id,
                threshold,
                count,
                index,
                secret.as_bytes(),
                verifier,
            ));
        }
    } else {
        let points = Zeroizing::new(
            Gf256::split_bytes_with_participant_ids_iter(
                usize::from(threshold),
                usize::from(count),
                secret.as_bytes(),
                &mut rng,
                (1..=count).map(|i| IdentifierGf256(Gf256(i))),
            )
            .map_err(|_| ShareError::SelfCheck {
                check: "vsss-rs refused to split",
            })?,
        );
        if points.len() != usize::from(count) {
            return Err(ShareError::SelfCheck {
                check: "wrong number of shares",
            });
        }
        for (index, point) in (1..=count).zip(points.iter()) {
            let value: &[u8; SECRET_LEN] = point
                .get(1..)
                .and_then(|v| v.try_into().ok())
                .filter(|_| point.first() == Some(&index))
                .ok_or(ShareError::SelfCheck {
                    check: "unexpected share layout from vsss-rs",
                })?;
            shares.push(Share::from_fields(
                set_id, threshold, count, index, value, verifier,
            ));
        }
    }
    if let Some(reason) = rng.failure {
        return Err(ShareError::Random { reason });
    }
    verify_split(secret, &shares)?;
    Ok(shares)
}

/// Reconstructs the secret from at least `threshold` shares of one set,
/// refusing an empty list, foreign, inconsistent or duplicate shares, too few
/// shares, and shares that do not reconstruct the set's secret
/// ([`ShareError::WrongShares`]). All shares given take part in the check.
pub fn combine(shares: &[Share]) -> Result<Secret, ShareError> {
    let mut combiner = Combiner::new();
    for share in shares {
        combiner.add(share.clone())?;
    }
    combiner.finish()
}

fn check_parameters(threshold: u8, count: u8) -> Result<(), ShareError> {
    if threshold == 0 || count == 0 || threshold > count {
        return Err(ShareError::InvalidParameters { threshold, count });
    }
    Ok(())
}

/// `HMAC-SHA256(secret, label ‖ set id ‖ K ‖ N)`, first 16 bytes.
fn verifier(secret: &Secret, set_id: &SetId, threshold: u8, count: u8) -> [u8; VERIFIER_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(VERIFIER_LABEL);
    ctx.update(&set_id.0);
    ctx.update(&[threshold, count]);
    let tag = ctx.sign();
    let mut out = [0u8; VERIFIER_LEN];
    out.copy_from_slice(&tag.as_ref()[..VERIFIER_LEN]);
    out
}

/// First 4 bytes of `SHA-256(label ‖ body)`: catches typos, not tampering.
fn checksum(body: &[u8; BODY_LEN]) -> [u8; CHECKSUM_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(CHECKSUM_LABEL);
    ctx.update(body);
    let digest = ctx.finish();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest.as_ref()[..CHECKSUM_LEN]);
    out
}

/// Interpolates the secret from exactly `threshold` shares (no checks).
fn interpolate(window: &[Share]) -> Result<Secret, ShareError> {
    if let [only] = window {
        return Ok(Secret::from_bytes(*only.value));
    }
    let mut points: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(Vec::with_capacity(window.len()));
    for share in window {
        let mut point = Vec::with_capacity(1 + SECRET_LEN);
        point.push(share.index);
        point.extend_from_slice(&share.value[..]);
        points.push(point);
    }
    let bytes = Zeroizing::new(
        Gf256::combine_bytes(points.as_slice()).map_err(|_| ShareError::WrongShares)?,
    );
    let bytes: &[u8; SECRET_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ShareError::WrongShares)?;
    Ok(Secret::from_bytes(*bytes))
}

/// Interpolates from windows of `threshold` shares that together cover all
/// of `shares` (already checked for set, consistency, duplicates and count),
/// and checks every result against the set's verifier.
fn reconstruct_verified(shares: &[Share], first: &Share) -> Result<Secret, ShareError> {
    let k = usize::from(first.threshold);
    let mut result: Option<Secret> = None;
    let mut start = 0;
    while start < shares.len() {
        let begin = start.min(shares.len() - k);
        let candidate = interpolate(&shares[begin..begin + k])?;
        let expected = verifier(&candidate, &first.set_id, first.threshold, first.count);
        if !bool::from(expected.ct_eq(&first.verifier)) {
            return Err(ShareError::WrongShares);
        }
        match &result {
            Some(secret) if *secret != candidate => return Err(ShareError::WrongShares),
            Some(_) => {}
            None => result = Some(candidate),
        }
        start += k;
    }
    result.ok_or(ShareError::NoShares)
}

/// The post-split check: every share's encodings parse back to it, and all
/// shares together reconstruct the secret.
fn verify_split(secret: &Secret, shares: &[Share]) -> Result<(), ShareError> {
    let fail = |check| ShareError::SelfCheck { check };
    for (share, index) in shares.iter().zip(1..=u8::MAX) {
        if share.index != index {
            return Err(fail("share indices out of order"));
        }
        let fingerprint = share.fingerprint();
        let text = Zeroizing::new(share.to_text());
        let parsed = Share::from_text(&text).map_err(|_| fail("text form does not parse back"))?;
        if parsed.fingerprint() != fingerprint {
            return Err(fail("text form parses to a different share"));
        }
        let compact = Zeroizing::new(share.to_compact());
        let parsed =
            Share::from_text(&compact).map_err(|_| fail("compact form does not parse back"))?;
        if parsed.fingerprint() != fingerprint {
            return Err(fail("compact form parses to a different share"));
        }
    }
    let combined = combine(shares).map_err(|_| fail("the shares do not combine"))?;
    if combined != *secret {
        return Err(fail("the shares combine to a different secret"));
    }
    Ok(())
}

/// Adapts a fallible RNG to the infallible one vsss-rs takes: after the first
/// failure it hands out zeros and remembers the error, and [`split`] then
/// discards everything it made.
struct FailClosed<'a, R: ?Sized> {
    inner: &'a mut R,
    failure: Option<String>,
}

impl<'a, R: TryCryptoRng + ?Sized> FailClosed<'a, R> {
    fn new(inner: &'a mut R) -> Self {
        Self {
            inner,
            failure: None,
        }
    }

    fn fill(&mut self, dst: &mut [u8]) {
        if self.failure.is_none() {
            match self.inner.try_fill_bytes(dst) {
                Ok(()) => return,
                Err(e) => self.failure = Some(e.to_string()),
            }
        }
        dst.fill(0);
    }
}

impl<R: TryCryptoRng + ?Sized> TryRng for FailClosed<'_, R> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut buf = Zeroizing::new([0u8; 4]);
        self.fill(&mut buf[..]);
        Ok(u32::from_le_bytes(*buf))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut buf = Zeroizing::new([0u8; 8]);
        self.fill(&mut buf[..]);
        Ok(u64::from_le_bytes(*buf))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

impl<R: TryCryptoRng + ?Sized> TryCryptoRng for FailClosed<'_, R> {}

/// The operating system's CSPRNG (through `ring`), as a `rand_core` RNG for
/// [`split`] and [`Secret::generate`]. The appliance may pass the HSM's
/// generator instead, through its own [`TryCryptoRng`] adapter.
pub struct SystemRng(ring::rand::SystemRandom);

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct SystemRngError;

impl SystemRng {
    /// A handle on the OS generator (stateless).
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl Default for SystemRng {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SystemRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemRng")
    }
}

impl TryRng for SystemRng {
    type Error = SystemRngError;

    fn try_next_u32(&mut self) -> Result<u32, SystemRngError> {
        let mut buf = [0u8; 4];
        self.try_fill_bytes(&mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    fn try_next_u64(&mut self) -> Result<u64, SystemRngError> {
        let mut buf = [0u8; 8];
        self.try_fill_bytes(&mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), SystemRngError> {
        self.0.fill(dst).map_err(|_| SystemRngError)
    }
}

impl TryCryptoRng for SystemRng {}
