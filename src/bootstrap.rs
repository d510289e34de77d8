//! Bootstrap tokens: how a new service gets its first client certificate
//! without an administrator issuing one for it.
//!
//! An administrator (over gRPC with the `admin` capability on `sys`, or on
//! the appliance host with `strongroom auth token create --config FILE`)
//! creates a token for exactly one identity, a URI such as a SPIFFE ID or a
//! DNS name, and one issuance profile. The token is shown once, as text:
//!
//! ```text
//! srb_<id>_<secret>
//! ```
//!
//! - `id`: 8 random bytes as 16 lower-case hex digits. Public: it names the
//!   token in listings, revocations and the audit trail.
//! - `secret`: 32 random bytes from the operating system's CSPRNG (ring's
//!   `SystemRandom`), unpadded base64url (43 characters). The appliance
//!   keeps only [`secret_hash`], a SHA-256 over a fixed label, the id and
//!   the secret, and compares it in constant time.
//!
//! The service presents the token once, with a CSR naming exactly that
//! identity (`Ca.Enroll`), and gets a certificate whose requester is the
//! identity. A token is single use, expires ([`MIN_TTL`] to [`MAX_TTL`],
//! [`DEFAULT_TTL`] unless asked), and can be revoked before it is used.
//!
//! Every refusal of a presented token (unknown id, wrong secret, expired,
//! used, revoked) is the same [`BootstrapError::Refused`], whose message
//! does not say which: a caller with a wrong secret learns nothing about the
//! id. The reason ([`Refusal`]) is kept for the operator's log and audit
//! record.
//!
//! Secrets are held in [`Zeroizing`] buffers, wiped on drop, and never
//! printed: [`TokenSecret`] and [`NewToken`] have redacting `Debug`s and no
//! `Display`, and no error carries token text.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::rand::SecureRandom;
use strongroom_ca::{Names, dns_name_problem, uri_problem};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// What every token text starts with.
pub(crate) const TOKEN_PREFIX: &str = "srb_";

/// Random bytes in a token's id.
pub(crate) const ID_BYTES: usize = 8;

/// Random bytes in a token's secret.
pub(crate) const SECRET_BYTES: usize = 32;

/// How long a token lives when its creator names no TTL.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The shortest TTL accepted. Short enough for tests of expiry; a token
/// that expires before it reaches its service is merely useless.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(1);

/// The longest TTL accepted: a token is a bearer credential, so it should
/// not outlive the rollout it was made for.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);

/// Longest identity accepted (the CA's URI limit).
const MAX_IDENTITY_LEN: usize = 512;

/// Domain separation of [`secret_hash`].
const HASH_LABEL: &[u8] = b"strongroom bootstrap token v1\0";

/// The length of a token text: prefix, id, `_`, secret.
const TOKEN_TEXT_LEN: usize = TOKEN_PREFIX.len() + 2 * ID_BYTES + 1 + 43;

/// Everything that can go wrong with bootstrap tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BootstrapError {
    /// A presented token is not accepted. The message never says why (see
    /// the module docs); [`Refusal`] does, for the operator.
    #[error(
        "the bootstrap token is not valid: it is unknown, expired, already used or revoked, \
         or its secret is wrong (ask the administrator for a new one)"
    )]
    Refused(Refusal),
    /// The text is not in the form of a token. It is never quoted.
    #[error("token: not a bootstrap token (expected srb_<id>_<secret>, as it was shown once)")]
    Malformed,
    /// A token id is not 16 hex digits.
    #[error("id: {0}")]
    BadId(String),
    /// A listing's page token is not one the store handed out.
    #[error("page_token: not a token from an earlier listing of bootstrap tokens")]
    BadPageToken,
    /// No token has this id (only said to administrators).
    #[error("bootstrap token {0} does not exist")]
    NotFound(String),
    /// The token was used: revoking it would change nothing.
    #[error(
        "bootstrap token {id} was already used{}; revoke the certificate instead \
         (strongroom cert revoke)",
        match serial { Some(s) => format!(" (certificate {s})"), None => String::new() }
    )]
    AlreadyUsed {
        /// The token.
        id: String,
        /// The certificate it was used for, if its issuance completed.
        serial: Option<String>,
    },
    /// The identity a token would enrol is not acceptable.
    #[error("identity: {0}")]
    BadIdentity(String),
    /// The TTL asked for is out of bounds.
    #[error("ttl: {0}")]
    BadTtl(String),
    /// The profile does not exist or does not allow the identity.
    #[error("profile: {0}")]
    BadProfile(String),
    /// The OS random source failed.
    #[error("cannot draw random bytes for a bootstrap token")]
    Random,
    /// The store failed while `doing` something.
    #[error("bootstrap token store: {doing}: {reason}")]
    Store {
        /// What was being done, e.g. "reading token 0a1b…".
        doing: String,
        /// SQLite's message (tables and columns, never values).
        reason: String,
    },
}

/// Why a presented token was refused; for logs and the audit record only,
/// never for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No token has the id.
    Unknown,
    /// The secret does not match the id's.
    WrongSecret,
    /// The token has expired.
    Expired,
    /// The token was used already.
    Used,
    /// The token was revoked.
    Revoked,
}

impl Refusal {
    /// Its name in the audit record and the log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown",
            Refusal::WrongSecret => "wrong secret",
            Refusal::Expired => "expired",
            Refusal::Used => "used",
            Refusal::Revoked => "revoked",
        }
    }
}

/// A token's public id: [`ID_BYTES`] bytes as lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TokenId(String);

impl TokenId {
    /// Parses an id as printed (either case; kept lower-case).
    pub(crate) fn parse(text: &str) -> Result<TokenId, BootstrapError> {
        let ok = text.len() == 2 * ID_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(TokenId(text.to_ascii_lowercase()))
        } else {
            Err(BootstrapError::BadId(format!(
                "a bootstrap token id is {} hex digits",
                2 * ID_BYTES
            )))
        }
    }

    /// The id as text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A token's secret: wiped on drop, never printed, not `Clone`.
pub(crate) struct TokenSecret(Zeroizing<[u8; SECRET_BYTES]>);

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// SHA-256 over a fixed label, the id and the secret: what the store keeps.
/// The id is bound in, so a stored hash fits no other row.
pub(crate) fn secret_hash(id: &TokenId, secret: &TokenSecret) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(HASH_LABEL);
    context.update(id.as_str().as_bytes());
    context.update(b"\0");
    context.update(&secret.0[..]);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// A token just made: its id, its secret and its text, which is shown once.
pub(crate) struct NewToken {
    /// The public id.
    pub(crate) id: TokenId,
    /// The secret.
    secret: TokenSecret,
    /// `srb_<id>_<secret>`, wiped on drop.
    text: Zeroizing<String>,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl NewToken {
    /// Draws a new id and secret from `rng`.
    pub(crate) fn generate(rng: &dyn SecureRandom) -> Result<NewToken, BootstrapError> {
        let mut id = [0u8; ID_BYTES];
        rng.fill(&mut id).map_err(|_| BootstrapError::Random)?;
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        rng.fill(&mut secret[..])
            .map_err(|_| BootstrapError::Random)?;
        let id = TokenId(id.iter().map(|b| format!("{b:02x}")).collect());
        let mut text = Zeroizing::new(String::with_capacity(TOKEN_TEXT_LEN));
        text.push_str(TOKEN_PREFIX);
        text.push_str(id.as_str());
        text.push('_');
        let mut encoded = Zeroizing::new([0u8; 43]);
        let secret_text = Base64UrlUnpadded::encode(&secret[..], &mut encoded[..])
            .map_err(|_| BootstrapError::Random)?;
        text.push_str(secret_text);
        Ok(NewToken {
            id,
            secret: TokenSecret(secret),
            text,
        })
    }

    /// What the store keeps instead of the secret.
    pub(crate) fn hash(&self) -> [u8; 32] {
        secret_hash(&self.id, &self.secret)
    }

    /// The text to show once (tests; callers move it out with
    /// [`NewToken::into_text`]).
    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The text, moved out (for a response that is sent once).
    pub(crate) fn into_text(mut self) -> String {
        std::mem::take(&mut *self.text)
    }

    /// The raw secret, for tests that look for it where it must not be.
    #[cfg(test)]
    pub(crate) fn secret_bytes(&self) -> &[u8] {
        &self.secret.0[..]
    }
}

/// A token as a caller presents it.
#[derive(Debug)]
pub(crate) struct PresentedToken {
    /// The id it names.
    pub(crate) id: TokenId,
    /// The secret it carries.
    secret: TokenSecret,
}

impl PresentedToken {
    /// Parses `srb_<id>_<secret>` (surrounding whitespace ignored). Fails
    /// with [`BootstrapError::Malformed`], which never quotes the text.
    pub(crate) fn parse(text: &str) -> Result<PresentedToken, BootstrapError> {
        let text = text.trim();
        let rest = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(BootstrapError::Malformed)?;
        // Hex has no '_': the first one ends the id (base64url may hold more).
        let (id, secret) = rest.split_once('_').ok_or(BootstrapError::Malformed)?;
        let id = TokenId::parse(id).map_err(|_| BootstrapError::Malformed)?;
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        let decoded = Base64UrlUnpadded::decode(secret, &mut bytes[..])
            .map_err(|_| BootstrapError::Malformed)?;
        if decoded.len() != SECRET_BYTES {
            return Err(BootstrapError::Malformed);
        }
        Ok(PresentedToken {
            id,
            secret: TokenSecret(bytes),
        })
    }

    /// Whether the secret is the one `stored_hash` was made from, compared
    /// in constant time.
    pub(crate) fn matches(&self, stored_hash: &[u8]) -> bool {
        let hash = secret_hash(&self.id, &self.secret);
        bool::from(hash.as_slice().ct_eq(stored_hash))
    }
}

/// The one identity a token enrols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// A URI subject alternative name, e.g. a SPIFFE ID.
    Uri(String),
    /// A DNS subject alternative name (lower-case).
    Dns(String),
}

impl Identity {
    /// Parses an identity: a URI when it holds a `:` (it must then be an
    /// absolute URI the CA accepts), else a DNS host name (not a wildcard,
    /// not an IP address). `anonymous` is refused.
    pub(crate) fn parse(text: &str) -> Result<Identity, BootstrapError> {
        let bad = |why: String| Err(BootstrapError::BadIdentity(why));
        if text.is_empty() {
            return bad(
                "required: a URI such as spiffe://example.org/service, or a DNS name".into(),
            );
        }
        if text.len() > MAX_IDENTITY_LEN {
            return bad(format!("longer than {MAX_IDENTITY_LEN} characters"));
        }
        if text == crate::server::access::ANONYMOUS {
            return bad("a certificate cannot name the identity anonymous".into());
        }
        if text.parse::<IpAddr>().is_ok() {
            return bad("an IP address is not an identity; use a URI or a DNS name".into());
        }
        if text.contains(':') {
            return match uri_problem(text) {
                Some(problem) => bad(problem),
                None => Ok(Identity::Uri(text.to_string())),
            };
        }
        let name = text.to_ascii_lowercase();
        if name.starts_with('*') {
            return bad("a wildcard name is not one identity".into());
        }
        match dns_name_problem(&name) {
            Some(problem) => bad(problem),
            None => Ok(Identity::Dns(name)),
        }
    }

    /// The identity as text, as policies and certificate listings name it.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Identity::Uri(text) | Identity::Dns(text) => text,
        }
    }

    /// The certificate names that carry exactly this identity.
    pub(crate) fn names(&self) -> Names {
        match self {
            Identity::Uri(uri) => Names {
                uris: vec![uri.clone()],
                ..Names::default()
            },
            Identity::Dns(name) => Names {
                dns: vec![name.clone()],
                ..Names::default()
            },
        }
    }

    /// Whether `names` are exactly this identity and nothing else.
    pub(crate) fn is_exactly(&self, names: &Names) -> bool {
        *names == self.names()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TTL for a new token: unset means [`DEFAULT_TTL`]; whole seconds from
/// [`MIN_TTL`] to [`MAX_TTL`].
pub(crate) fn token_ttl(ttl: Option<Duration>) -> Result<Duration, BootstrapError> {
    let ttl = ttl.unwrap_or(DEFAULT_TTL);
    if ttl < MIN_TTL || ttl > MAX_TTL || ttl.subsec_nanos() != 0 {
        return Err(BootstrapError::BadTtl(format!(
            "{} is outside 1s to 7d, or not whole seconds",
            strongroom_ca::format_duration(ttl)
        )));
    }
    Ok(ttl)
}

/// Checks that `profile` exists among `profiles` and allows `identity`
/// with some key type at its default validity.
pub(crate) fn check_profile(
    profiles: &std::collections::BTreeMap<String, strongroom_ca::Profile>,
    profile: &str,
    identity: &Identity,
) -> Result<(), BootstrapError> {
    use strongroom_hsm::KeySpec;
    let Some(rules) = profiles.get(profile) else {
        let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
        return Err(BootstrapError::BadProfile(format!(
            "no profile '{profile}' is configured (profiles: {})",
            known.join(", ")
        )));
    };
    let names = identity.names();
    let specs = [
        KeySpec::EcP256,
        KeySpec::EcP384,
        KeySpec::Ed25519,
        KeySpec::Rsa { bits: 4096 },
    ];
    let mut fewest: Option<Vec<String>> = None;
    for spec in specs {
        let violations = rules.violations(&names, spec, rules.default_ttl());
        if violations.is_empty() {
            return Ok(());
        }
        if fewest.as_ref().is_none_or(|f| violations.len() < f.len()) {
            fewest = Some(violations);
        }
    }
    Err(BootstrapError::BadProfile(
        fewest.unwrap_or_default().join("; "),
    ))
}

/// Makes a token for `identity` under `profile`, living `ttl` from `now`
/// (Unix seconds), and records it in `store` as created by `created_by`.
/// The caller checks the profile first ([`check_profile`]). Returns the
/// token, whose text is to be shown once, and its record.
pub(crate) fn create_token(
    store: &crate::store::sqlite::SqliteStore,
    identity: &Identity,
    profile: &str,
    ttl: Duration,
    created_by: &str,
    now: i64,
) -> Result<(NewToken, TokenRecord), BootstrapError> {
    let token = NewToken::generate(&ring::rand::SystemRandom::new())?;
    let ttl = i64::try_from(token_ttl(Some(ttl))?.as_secs()).unwrap_or(i64::MAX);
    let record = TokenRecord {
        id: token.id.clone(),
        identity: identity.as_str().to_string(),
        profile: profile.to_string(),
        created_at: now,
        expires_at: now.saturating_add(ttl),
        created_by: created_by.to_string(),
        used_at: None,
        issued_serial: None,
        revoked_at: None,
    };
    store.insert_bootstrap_token(&record, &token.hash())?;
    Ok((token, record))
}

/// A token as stored, without its hash: what listings show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRecord {
    /// Its id.
    pub(crate) id: TokenId,
    /// The identity it enrols, as text.
    pub(crate) identity: String,
    /// The profile the certificate is issued under.
    pub(crate) profile: String,
    /// When it was created (Unix seconds).
    pub(crate) created_at: i64,
    /// When it expires (Unix seconds): unusable from then on.
    pub(crate) expires_at: i64,
    /// Who created it: an identity, or `local` for the host's CLI.
    pub(crate) created_by: String,
    /// When it was spent (Unix seconds), if it was.
    pub(crate) used_at: Option<i64>,
    /// The serial (hex) of the certificate it was spent on, once issued.
    pub(crate) issued_serial: Option<String>,
    /// When it was revoked (Unix seconds), if it was.
    pub(crate) revoked_at: Option<i64>,
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenState {
    /// It can be used.
    Active,
    /// It was used.
    Used,
    /// It was revoked before use.
    Revoked,
    /// It expired unused.
    Expired,
}

impl TokenState {
    /// Its name in listings.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Used => "used",
            TokenState::Revoked => "revoked",
            TokenState::Expired => "expired",
        }
    }
}

impl TokenRecord {
    /// Where the token stands at `now` (Unix seconds).
    pub(crate) fn state(&self, now: i64) -> TokenState {
        if self.used_at.is_some() {
            TokenState::Used
        } else if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// A token as stored, with the hash its secret must match.
#[derive(Debug, Clone)]
pub(crate) struct StoredToken {
    /// Everything but the hash.
    pub(crate) record: TokenRecord,
    /// [`secret_hash`] of its secret.
    pub(crate) secret_hash: Vec<u8>,
}

/// A hash no secret has, compared against when the id is unknown so that
/// both paths do the same work.
const NO_HASH: [u8; 32] = [0; 32];

/// Checks `presented` against `stored` (the row of its id, if any) at
/// `now`: the secret first, in constant time, then the state. Every
/// refusal is [`BootstrapError::Refused`].
pub(crate) fn authenticate<'a>(
    stored: Option<&'a StoredToken>,
    presented: &PresentedToken,
    now: i64,
) -> Result<&'a TokenRecord, BootstrapError> {
    let hash = stored.map_or(&NO_HASH[..], |s| s.secret_hash.as_slice());
    let secret_ok = presented.matches(hash);
    let Some(stored) = stored else {
        return Err(BootstrapError::Refused(Refusal::Unknown));
    };
    if !secret_ok {
        return Err(BootstrapError::Refused(Refusal::WrongSecret));
    }
    match stored.record.state(now) {
        TokenState::Active => Ok(&stored.record),
        TokenState::Used => Err(BootstrapError::Refused(Refusal::Used)),
        TokenState::Revoked => Err(BootstrapError::Refused(Refusal::Revoked)),
        TokenState::Expired => Err(BootstrapError::Refused(Refusal::Expired)),
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;

    use super::*;

    fn stored(token: &NewToken, change: impl FnOnce(&mut TokenRecord)) -> StoredToken {
        let mut record = TokenRecord {
            id: token.id.clone(),
            identity: "spiffe://example.test/svc".into(),
            profile: "client".into(),
            created_at: 1_000,
            expires_at: 2_000,
            created_by: "local".into(),
            used_at: None,
            issued_serial: None,
            revoked_at: None,
        };
        change(&mut record);
        StoredToken {
            record,
            secret_hash: token.hash().to_vec(),
        }
    }

    #[test]
    fn a_token_is_shown_as_prefix_id_and_secret_and_parses_back() {
        let token = NewToken::generate(&SystemRandom::new()).expect("token");
        let text = token.text().to_string();
        assert_eq!(text.len(), TOKEN_TEXT_LEN);
        assert!(text.starts_with(&format!("srb_{}_", token.id)));
        assert_eq!(token.id.as_str().len(), 16);
        let presented = PresentedToken::parse(&format!("  {text}\n")).expect("parses");
        assert_eq!(presented.id, token.id);
        assert!(presented.matches(&token.hash()));
        // The secret never shows in Debug.
        let secret = &text[TOKEN_PREFIX.len() + 17..];
        assert!(!format!("{token:?}{presented:?}").contains(secret));
        // Two tokens never share an id or a secret.
        let other = NewToken::generate(&SystemRandom::new()).expect("token");
        assert_ne!(other.id, token.id);
        assert_ne!(other.text(), token.text());
    }

    #[test]
    fn malformed_texts_are_refused_without_quoting_them() {
        let token = NewToken::generate(&SystemRandom::new()).expect("token");
        let text = token.text();
        let cases = [
            String::new(),
            text.replacen("srb_", "srx_", 1),
            text[..text.len() - 1].to_string(),
            format!("{text}A"),
            text.replacen('_', "-", 2),
            format!("srb_zz{}", &text[6..]),
        ];
        for case in cases {
            let e = PresentedToken::parse(&case).expect_err(&case);
            assert!(matches!(e, BootstrapError::Malformed), "{case}");
            assert!(case.is_empty() || !e.to_string().contains(&case[4..]));
        }
    }

    #[test]
    fn every_refusal_says_the_same_and_only_the_log_knows_why() {
        let token = NewToken::generate(&SystemRandom::new()).expect("token");
        let other = NewToken::generate(&SystemRandom::new()).expect("token");
        let presented = PresentedToken::parse(token.text()).expect("parses");
        let active = stored(&token, |_| {});
        assert!(authenticate(Some(&active), &presented, 1_500).is_ok());
        let wrong = stored(&other, |r| r.id = token.id.clone());
        let cases = [
            (None, 1_500, Refusal::Unknown),
            (Some(&wrong), 1_500, Refusal::WrongSecret),
            (Some(&active), 2_000, Refusal::Expired),
        ];
        let used = stored(&token, |r| r.used_at = Some(1_200));
        let revoked = stored(&token, |r| r.revoked_at = Some(1_200));
        let mut messages = std::collections::BTreeSet::new();
        for (row, now, why) in cases
            .into_iter()
            .chain([(Some(&used), 1_500, Refusal::Used)])
            .chain([(Some(&revoked), 1_500, Refusal::Revoked)])
        {
            match authenticate(row, &presented, now) {
                Err(e @ BootstrapError::Refused(r)) => {
                    assert_eq!(r, why);
                    messages.insert(e.to_string());
                }
                other => panic!("{why:?}: {other:?}"),
            }
        }
        assert_eq!(messages.len(), 1, "{messages:?}");
    }

    #[test]
    fn identities_are_one_uri_or_one_dns_name() {
        assert_eq!(
            Identity::parse("spiffe://example.test/svc/a").expect("uri"),
            Identity::Uri("spiffe://example.test/svc/a".into())
        );
        assert_eq!(
            Identity::parse("API.example.test").expect("dns"),
            Identity::Dns("api.example.test".into())
        );
        for bad in [
            "",
            "anonymous",
            "10.0.0.1",
            "::1",
            "*.example.test",
            "spiffe://example.test/a?b",
            "spiffe://example.test/a b",
            "-bad-.test",
        ] {
            assert!(Identity::parse(bad).is_err(), "{bad}");
        }
        let uri = Identity::parse("spiffe://example.test/svc").expect("uri");
        assert!(uri.is_exactly(&uri.names()));
        let mut more = uri.names();
        more.dns.push("svc.example.test".into());
        assert!(!uri.is_exactly(&more));
        let dns = Identity::parse("svc.example.test").expect("dns");
        assert!(!dns.is_exactly(&uri.names()));
    }

    #[test]
    fn ttls_default_to_an_hour_and_stay_within_a_second_and_a_week() {
        assert_eq!(token_ttl(None).expect("default"), DEFAULT_TTL);
        assert!(token_ttl(Some(MIN_TTL)).is_ok());
        assert!(token_ttl(Some(MAX_TTL)).is_ok());
        assert!(token_ttl(Some(Duration::ZERO)).is_err());
        assert!(token_ttl(Some(MAX_TTL + MIN_TTL)).is_err());
        assert!(token_ttl(Some(Duration::from_millis(1500))).is_err());
    }

    #[test]
    fn a_profile_must_exist_and_allow_the_identity() {
        let config: strongroom_ca::ProfileConfig = toml::from_str(
            "uri_patterns = [\"spiffe://example.test/*\"]\next_key_usage = [\"clientAuth\"]\n",
        )
        .expect("profile");
        let profiles = std::collections::BTreeMap::from([(
            "client".to_string(),
            strongroom_ca::Profile::new("client", &config).expect("valid"),
        )]);
        let ok = Identity::parse("spiffe://example.test/svc").expect("uri");
        check_profile(&profiles, "client", &ok).expect("allowed");
        let e = check_profile(&profiles, "server", &ok).expect_err("unknown");
        assert!(e.to_string().contains("profiles: client"), "{e}");
        let other = Identity::parse("spiffe://other.test/svc").expect("uri");
        let e = check_profile(&profiles, "client", &other).expect_err("not allowed");
        assert!(e.to_string().contains("not allowed by profile"), "{e}");
        let dns = Identity::parse("svc.example.test").expect("dns");
        assert!(check_profile(&profiles, "client", &dns).is_err());
    }
}
