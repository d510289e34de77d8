//! The ceremony file: one strict TOML document per ceremony, turned into a
//! checked [`Ceremony`] before anything else happens.
//!
//! Parsing is in two passes. The first reads only `ceremony = "…"`; the
//! second reads the whole file into that type's struct, which has
//! `deny_unknown_fields`, so a misspelt or misplaced key is an error naming
//! the key and its line. The wire structs (`*File`) are then converted into
//! domain values with every rule checked: validity limits (a root at most 25
//! years, a subordinate at most 8), fields the `ca` crate cannot emit
//! (certificate policies, key usages other than the CA set) refused rather
//! than ignored, URLs only on subordinates, output names that stay inside the
//! output directory. `ceremony.example.toml`-style files live in
//! `ceremony/examples/`; a test parses each of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use strongroom_ca::{DistributionUrls, RevocationReason, Serial, parse_duration};
use strongroom_hsm::{KeySpec, SignatureAlgorithm};

use crate::envelope::Recipient;
use crate::error::CeremonyError;

/// Longest validity of a root (or the root of a cross-sign's subject): 25 years.
pub const MAX_ROOT_YEARS: i32 = 25;
/// Longest validity of an intermediate or cross-signed certificate: 8 years.
pub const MAX_SUBORDINATE_YEARS: i32 = 8;
/// Longest a root CRL may be valid (nextUpdate - thisUpdate): 1 year.
pub const MAX_CRL_YEARS: i32 = 1;

/// The key usages every CA certificate the `ca` crate builds carries.
pub const CA_KEY_USAGES: [&str; 3] = ["digitalSignature", "keyCertSign", "cRLSign"];

/// What a ceremony does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Generate the root key in the HSM and self-sign the root certificate.
    Root,
    /// Sign a subordinate CA certificate over a public key or CSR.
    Intermediate,
    /// Sign the root's CRL of revoked CA certificates (an ARL).
    Crl,
    /// Generate a key pair only and export its public key.
    Key,
    /// Sign a certificate for another CA's existing certificate (same subject
    /// and key), so that it chains to this root too.
    CrossSign,
}

impl Kind {
    /// The name used in the file and the transcript.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Root => "root",
            Kind::Intermediate => "intermediate",
            Kind::Crl => "crl",
            Kind::Key => "key",
            Kind::CrossSign => "cross-sign",
        }
    }
}

// ---------------------------------------------------------------------------
// Wire structs: exactly the keys a file may contain.

#[derive(Deserialize)]
struct Head {
    ceremony: Kind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HsmFile {
    module: PathBuf,
    token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharesFile {
    threshold: u8,
    count: u8,
    #[serde(default)]
    recipients: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyFile {
    label: String,
    #[serde(rename = "type")]
    key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningKeyFile {
    label: String,
    certificate: PathBuf,
    signature_algorithm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectFile {
    country: Option<String>,
    state: Option<String>,
    locality: Option<String>,
    organization: Option<String>,
    organizational_unit: Option<String>,
    common_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    subject: Option<SubjectFile>,
    not_before: Option<toml::value::Datetime>,
    not_after: Option<toml::value::Datetime>,
    validity: Option<String>,
    path_length: Option<u8>,
    key_usage: Option<Vec<String>>,
    policies: Option<Vec<String>>,
    signature_algorithm: Option<String>,
    crl_url: Option<String>,
    ocsp_url: Option<String>,
    ca_issuers_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectKeyFile {
    public_key: Option<PathBuf>,
    csr: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossSignFile {
    certificate: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrlFile {
    number: u64,
    this_update: Option<toml::value::Datetime>,
    next_update: Option<toml::value::Datetime>,
    validity: Option<String>,
    #[serde(default)]
    revoked: Vec<RevokedFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokedFile {
    serial: Option<String>,
    certificate: Option<PathBuf>,
    reason: String,
    revoked_at: Option<toml::value::Datetime>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputsFile {
    certificate: Option<String>,
    public_key: Option<String>,
    crl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootFile {
    #[serde(rename = "ceremony")]
    _ceremony: Kind,
    description: Option<String>,
    hsm: HsmFile,
    shares: Option<SharesFile>,
    key: NewKeyFile,
    certificate: ProfileFile,
    outputs: OutputsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(rename = "ceremony")]
    _ceremony: Kind,
    description: Option<String>,
    hsm: HsmFile,
    shares: Option<SharesFile>,
    key: NewKeyFile,
    outputs: OutputsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntermediateFile {
    #[serde(rename = "ceremony")]
    _ceremony: Kind,
    description: Option<String>,
    hsm: HsmFile,
    signing_key: SigningKeyFile,
    subject_key: SubjectKeyFile,
    certificate: ProfileFile,
    outputs: OutputsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossSignCeremonyFile {
    #[serde(rename = "ceremony")]
    _ceremony: Kind,
    description: Option<String>,
    hsm: HsmFile,
    signing_key: SigningKeyFile,
    cross_sign: CrossSignFile,
    certificate: ProfileFile,
    outputs: OutputsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrlCeremonyFile {
    #[serde(rename = "ceremony")]
    _ceremony: Kind,
    description: Option<String>,
    hsm: HsmFile,
    signing_key: SigningKeyFile,
    crl: CrlFile,
    outputs: OutputsFile,
}

// ---------------------------------------------------------------------------
// Domain values.

/// A parsed and checked ceremony file.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// What the ceremony does.
    pub kind: Kind,
    /// Free text for the transcript (e.g. the ceremony's name and date).
    pub description: Option<String>,
    /// The offline token.
    pub hsm: HsmConfig,
    /// `Some` when this ceremony initialises the token: the user PIN is set
    /// from a new Shamir secret split `threshold` of `count`.
    pub shares: Option<SharesConfig>,
    /// What the ceremony does, by type.
    pub action: Action,
    /// The file's bytes, exactly as reviewed.
    pub source: Vec<u8>,
    /// The directory the file was read from; relative input paths start here.
    pub base_dir: PathBuf,
}

/// The offline token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmConfig {
    /// PKCS#11 module path.
    pub module: PathBuf,
    /// Token label.
    pub token: String,
}

/// A new share set: K of N.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharesConfig {
    /// K: shares needed to recover the secret.
    pub threshold: u8,
    /// N: shares written, one per officer.
    pub count: u8,
    /// Empty, or one officer's age public key per share, in share order:
    /// share `i` is written encrypted to `recipients[i - 1]`.
    pub recipients: Vec<Recipient>,
}

/// A key to generate in the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Its label (refused if any object already carries it).
    pub label: String,
    /// Its type.
    pub spec: KeySpec,
}

/// The root key that signs, found by label and its certificate's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The key's label in the token.
    pub label: String,
    /// The signing CA's certificate (PEM or DER), relative to the file.
    pub certificate: PathBuf,
    /// The algorithm to sign with; `None`: the key type's usual one.
    pub algorithm: Option<SignatureAlgorithm>,
}

/// A CA certificate's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateProfile {
    /// Subject attributes in RDN order, as `(short name, value)`; empty for a
    /// cross-sign (the subject is copied from the certificate cross-signed).
    pub subject: Vec<(String, String)>,
    /// Start of validity; `None`: when the ceremony starts.
    pub not_before: Option<SystemTime>,
    /// End of validity.
    pub end: Validity,
    /// Path length constraint.
    pub path_len: Option<u8>,
    /// Signature algorithm; `None`: the signing key type's usual one.
    pub algorithm: Option<SignatureAlgorithm>,
    /// CRL and AIA URLs (subordinates only).
    pub urls: DistributionUrls,
}

/// How the end of a validity period is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// A fixed end.
    Until(SystemTime),
    /// A length from the start.
    For(Duration),
}

impl Validity {
    /// The end of a period that starts at `start`.
    pub fn end(self, start: SystemTime) -> SystemTime {
        match self {
            Validity::Until(t) => t,
            Validity::For(d) => start + d,
        }
    }
}

/// Where the subject key of an intermediate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectKey {
    /// A PEM `PUBLIC KEY` file.
    PublicKey(PathBuf),
    /// A PKCS#10 CSR (PEM or DER): its signature is checked, only its key is used.
    Csr(PathBuf),
}

/// The root CRL to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlConfig {
    /// cRLNumber; must grow from one CRL to the next.
    pub number: u64,
    /// thisUpdate; `None`: when the ceremony starts.
    pub this_update: Option<SystemTime>,
    /// nextUpdate.
    pub next_update: Validity,
    /// Revoked CA certificates.
    pub revoked: Vec<Revoked>,
}

/// One revoked CA certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// By serial, or by the certificate itself (checked to be issued by the root).
    pub target: RevokedTarget,
    /// The RFC 5280 reason.
    pub reason: RevocationReason,
    /// When it was revoked; `None`: the CRL's thisUpdate.
    pub revoked_at: Option<SystemTime>,
}

/// How a revoked certificate is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokedTarget {
    /// Its serial.
    Serial(Serial),
    /// Its certificate file (PEM or DER), relative to the ceremony file.
    Certificate(PathBuf),
}

/// What each ceremony type does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Generate `key`, write its public key to `public_key_out`, self-sign
    /// `profile` and write it to `certificate_out`.
    Root {
        /// The root key.
        key: NewKey,
        /// The root certificate.
        profile: CertificateProfile,
        /// Output: the root certificate (PEM).
        certificate_out: String,
        /// Output: the root public key (PEM).
        public_key_out: String,
    },
    /// Generate `key` and write its public key.
    Key {
        /// The key.
        key: NewKey,
        /// Output: the public key (PEM).
        public_key_out: String,
    },
    /// Sign a subordinate CA certificate.
    Intermediate {
        /// The root key.
        signing: SigningKey,
        /// The subordinate's key.
        subject_key: SubjectKey,
        /// Its certificate.
        profile: CertificateProfile,
        /// Output: the certificate (PEM).
        certificate_out: String,
    },
    /// Cross-sign another CA's certificate.
    CrossSign {
        /// The root key.
        signing: SigningKey,
        /// The certificate whose subject and key are certified again.
        certificate: PathBuf,
        /// Validity, path length, URLs and algorithm (no subject).
        profile: CertificateProfile,
        /// Output: the certificate (PEM).
        certificate_out: String,
    },
    /// Sign the root's CRL.
    Crl {
        /// The root key.
        signing: SigningKey,
        /// The CRL.
        crl: CrlConfig,
        /// Output: the CRL (PEM).
        crl_out: String,
    },
}

impl Ceremony {
    /// Reads and checks a ceremony file.
    pub fn load(path: &Path) -> Result<Ceremony, CeremonyError> {
        let source = std::fs::read(path).map_err(|e| CeremonyError::io(path, e))?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };
        Ceremony::parse(&source, &base_dir, &path.display().to_string())
    }

    /// Parses and checks a ceremony file's bytes; `name` is used in errors.
    pub fn parse(source: &[u8], base_dir: &Path, name: &str) -> Result<Ceremony, CeremonyError> {
        let bad = |message: String| CeremonyError::Config {
            file: name.to_string(),
            message,
        };
        let text = std::str::from_utf8(source).map_err(|_| bad("not UTF-8".into()))?;
        let head: Head = toml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
        let parse_err = |e: toml::de::Error| bad(one_line(&e.to_string()));
        let (description, hsm, shares, action) = match head.ceremony {
            Kind::Root => {
                let f: RootFile = toml::from_str(text).map_err(parse_err)?;
                let profile = profile(f.certificate, Kind::Root).map_err(bad)?;
                let key = new_key(f.key).map_err(bad)?;
                if let Some(alg) = profile.algorithm {
                    check_fits(alg, key.spec).map_err(bad)?;
                }
                let outputs = f.outputs;
                let certificate_out =
                    required_output(&outputs.certificate, "certificate").map_err(bad)?;
                let public_key_out =
                    required_output(&outputs.public_key, "public_key").map_err(bad)?;
                refuse_output(&outputs.crl, "crl", Kind::Root).map_err(bad)?;
                (
                    f.description,
                    f.hsm,
                    f.shares,
                    Action::Root {
                        key,
                        profile,
                        certificate_out,
                        public_key_out,
                    },
                )
            }
            Kind::Key => {
                let f: KeyFile = toml::from_str(text).map_err(parse_err)?;
                let key = new_key(f.key).map_err(bad)?;
                let outputs = f.outputs;
                let public_key_out =
                    required_output(&outputs.public_key, "public_key").map_err(bad)?;
                refuse_output(&outputs.certificate, "certificate", Kind::Key).map_err(bad)?;
                refuse_output(&outputs.crl, "crl", Kind::Key).map_err(bad)?;
                (
                    f.description,
                    f.hsm,
                    f.shares,
                    Action::Key {
                        key,
                        public_key_out,
                    },
                )
            }
            Kind::Intermediate => {
                let f: IntermediateFile = toml::from_str(text).map_err(parse_err)?;
                let signing = signing_key(f.signing_key).map_err(bad)?;
                let profile = profile(f.certificate, Kind::Intermediate).map_err(bad)?;
                let subject_key = match (f.subject_key.public_key, f.subject_key.csr) {
                    (Some(p), None) => SubjectKey::PublicKey(p),
                    (None, Some(p)) => SubjectKey::Csr(p),
                    _ => {
                        return Err(bad(
                            "[subject_key] needs exactly one of public_key and csr".into()
                        ));
                    }
                };
                let outputs = f.outputs;
                let certificate_out =
                    required_output(&outputs.certificate, "certificate").map_err(bad)?;
                refuse_output(&outputs.public_key, "public_key", Kind::Intermediate)
                    .map_err(bad)?;
                refuse_output(&outputs.crl, "crl", Kind::Intermediate).map_err(bad)?;
                (
                    f.description,
                    f.hsm,
                    None,
                    Action::Intermediate {
                        signing,
                        subject_key,
                        profile,
                        certificate_out,
                    },
                )
            }
            Kind::CrossSign => {
                let f: CrossSignCeremonyFile = toml::from_str(text).map_err(parse_err)?;
                let signing = signing_key(f.signing_key).map_err(bad)?;
                let profile = profile(f.certificate, Kind::CrossSign).map_err(bad)?;
                let outputs = f.outputs;
                let certificate_out =
                    required_output(&outputs.certificate, "certificate").map_err(bad)?;
                refuse_output(&outputs.public_key, "public_key", Kind::CrossSign).map_err(bad)?;
                refuse_output(&outputs.crl, "crl", Kind::CrossSign).map_err(bad)?;
                (
                    f.description,
                    f.hsm,
                    None,
                    Action::CrossSign {
                        signing,
                        certificate: f.cross_sign.certificate,
                        profile,
                        certificate_out,
                    },
                )
            }
            Kind::Crl => {
                let f: CrlCeremonyFile = toml::from_str(text).map_err(parse_err)?;
                let signing = signing_key(f.signing_key).map_err(bad)?;
                let crl = crl(f.crl).map_err(bad)?;
                let outputs = f.outputs;
                let crl_out = required_output(&outputs.crl, "crl").map_err(bad)?;
                refuse_output(&outputs.certificate, "certificate", Kind::Crl).map_err(bad)?;
                refuse_output(&outputs.public_key, "public_key", Kind::Crl).map_err(bad)?;
                (
                    f.description,
                    f.hsm,
                    None,
                    Action::Crl {
                        signing,
                        crl,
                        crl_out,
                    },
                )
            }
        };
        if hsm.token.trim().is_empty() {
            return Err(bad("[hsm] token must name the token's label".into()));
        }
        let shares = match shares {
            Some(s) => {
                if s.threshold == 0 || s.threshold > s.count {
                    return Err(bad(format!(
                        "[shares] needs 1 <= threshold <= count <= 255, got {} of {}",
                        s.threshold, s.count
                    )));
                }
                Some(SharesConfig {
                    threshold: s.threshold,
                    count: s.count,
                    recipients: recipients(&s).map_err(bad)?,
                })
            }
            None => None,
        };
        Ok(Ceremony {
            kind: head.ceremony,
            description,
            hsm: HsmConfig {
                module: hsm.module,
                token: hsm.token,
            },
            shares,
            action,
            source: source.to_vec(),
            base_dir: base_dir.to_path_buf(),
        })
    }

    /// The names of the files this ceremony writes into its output
    /// directory (besides the transcript, the copy of this file and the
    /// copies of its inputs).
    pub fn output_names(&self) -> Vec<&str> {
        match &self.action {
            Action::Root {
                certificate_out,
                public_key_out,
                ..
            } => vec![public_key_out, certificate_out],
            Action::Key { public_key_out, .. } => vec![public_key_out],
            Action::Intermediate {
                certificate_out, ..
            }
            | Action::CrossSign {
                certificate_out, ..
            } => vec![certificate_out],
            Action::Crl { crl_out, .. } => vec![crl_out],
        }
    }
}

/// toml's errors span several lines (a source excerpt); keep the first and the message.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .filter(|l| !l.chars().next().is_some_and(|c| c.is_ascii_digit()) || !l.contains('|'))
        .collect();
    lines.join(": ")
}

/// `[shares] recipients`: none, or one distinct age public key per share
/// (two shares to one key would let one officer count twice).
fn recipients(f: &SharesFile) -> Result<Vec<Recipient>, String> {
    if f.recipients.is_empty() {
        return Ok(Vec::new());
    }
    if f.recipients.len() != usize::from(f.count) {
        return Err(format!(
            "[shares] recipients lists {} keys for {} shares: give one per share, in share order",
            f.recipients.len(),
            f.count
        ));
    }
    let mut parsed: Vec<Recipient> = Vec::with_capacity(f.recipients.len());
    for (i, text) in f.recipients.iter().enumerate() {
        let recipient: Recipient = text
            .parse()
            .map_err(|e| format!("[shares] recipients[{}]: {e}", i + 1))?;
        if let Some(j) = parsed.iter().position(|r| *r == recipient) {
            return Err(format!(
                "[shares] recipients {} and {} are the same key: each share goes to a different \
                 officer",
                j + 1,
                i + 1
            ));
        }
        parsed.push(recipient);
    }
    Ok(parsed)
}

fn new_key(f: NewKeyFile) -> Result<NewKey, String> {
    check_label(&f.label)?;
    let spec = f
        .key_type
        .parse::<KeySpec>()
        .map_err(|e| format!("[key] type: {e}"))?;
    Ok(NewKey {
        label: f.label,
        spec,
    })
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 128 || label.chars().any(char::is_control) {
        return Err(format!(
            "key label must be 1 to 128 printable characters, got {label:?}"
        ));
    }
    Ok(())
}

fn signing_key(f: SigningKeyFile) -> Result<SigningKey, String> {
    check_label(&f.label)?;
    Ok(SigningKey {
        label: f.label,
        certificate: f.certificate,
        algorithm: f
            .signature_algorithm
            .as_deref()
            .map(parse_algorithm)
            .transpose()?,
    })
}

fn parse_algorithm(name: &str) -> Result<SignatureAlgorithm, String> {
    name.parse::<SignatureAlgorithm>().map_err(|_| {
        format!(
            "unknown signature_algorithm '{name}' (one of: {})",
            SignatureAlgorithm::ALL.map(|a| a.name()).join(", ")
        )
    })
}

/// Refuses an algorithm the key cannot produce.
pub(crate) fn check_fits(algorithm: SignatureAlgorithm, spec: KeySpec) -> Result<(), String> {
    if algorithm.fits(spec) {
        Ok(())
    } else {
        Err(format!(
            "signature_algorithm {algorithm} does not fit a {spec} key"
        ))
    }
}

fn profile(f: ProfileFile, kind: Kind) -> Result<CertificateProfile, String> {
    let section = "[certificate]";
    let subject = match (f.subject, kind) {
        (Some(_), Kind::CrossSign) => {
            return Err(format!(
                "{section} subject: a cross-sign copies the subject of the certificate it \
                 cross-signs; remove the subject"
            ));
        }
        (None, Kind::CrossSign) => Vec::new(),
        (None, _) => return Err(format!("{section} subject is missing")),
        (Some(s), _) => subject(s)?,
    };
    if let Some(policies) = &f.policies {
        if !policies.is_empty() {
            return Err(format!(
                "{section} policies: certificate policies are not supported yet (the ca crate \
                 cannot emit a certificatePolicies extension); remove the field"
            ));
        }
    }
    if let Some(usages) = &f.key_usage {
        let given: BTreeSet<&str> = usages.iter().map(String::as_str).collect();
        let supported: BTreeSet<&str> = CA_KEY_USAGES.into_iter().collect();
        if given != supported || given.len() != usages.len() {
            return Err(format!(
                "{section} key_usage {usages:?} is not supported: CA certificates carry exactly \
                 {CA_KEY_USAGES:?} (critical)"
            ));
        }
    }
    let not_before = f.not_before.map(|t| system_time(&t)).transpose()?;
    let end = match (f.not_after, f.validity) {
        (Some(t), None) => Validity::Until(system_time(&t)?),
        (None, Some(v)) => {
            Validity::For(parse_duration(&v).map_err(|e| format!("{section} validity: {e}"))?)
        }
        _ => {
            return Err(format!(
                "{section} needs exactly one of not_after and validity"
            ));
        }
    };
    if let (Some(nb), Validity::Until(na)) = (not_before, end) {
        if na <= nb {
            return Err(format!("{section} not_after is not after not_before"));
        }
    }
    if matches!(end, Validity::For(d) if d.is_zero()) {
        return Err(format!("{section} validity must be longer than zero"));
    }
    let urls = DistributionUrls {
        crl: f.crl_url,
        ocsp: f.ocsp_url,
        ca_issuers: f.ca_issuers_url,
    };
    for url in [&urls.crl, &urls.ocsp, &urls.ca_issuers]
        .into_iter()
        .flatten()
    {
        if let Some(problem) = strongroom_ca::uri_problem(url) {
            return Err(format!("{section} URL '{url}': {problem}"));
        }
    }
    if kind == Kind::Root && urls != DistributionUrls::default() {
        return Err(format!(
            "{section} crl_url, ocsp_url and ca_issuers_url are for subordinate certificates; \
             a root certificate has no issuer to point at"
        ));
    }
    let path_len = match kind {
        // An intermediate issues end-entity certificates only, unless told otherwise.
        Kind::Intermediate => Some(f.path_length.unwrap_or(0)),
        _ => f.path_length,
    };
    Ok(CertificateProfile {
        subject,
        not_before,
        end,
        path_len,
        algorithm: f
            .signature_algorithm
            .as_deref()
            .map(parse_algorithm)
            .transpose()?,
        urls,
    })
}

fn subject(s: SubjectFile) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (short, value) in [
        ("C", s.country),
        ("ST", s.state),
        ("L", s.locality),
        ("O", s.organization),
        ("OU", s.organizational_unit),
        ("CN", Some(s.common_name)),
    ] {
        let Some(value) = value else { continue };
        if value.trim().is_empty() || value.trim() != value {
            return Err(format!(
                "[certificate.subject] {short} must be non-empty without surrounding spaces"
            ));
        }
        if short == "C" && (value.len() != 2 || !value.chars().all(|c| c.is_ascii_uppercase())) {
            return Err(format!(
                "[certificate.subject] country must be a two-letter code like \"NL\", got {value:?}"
            ));
        }
        if value.chars().count() > 64 {
            return Err(format!(
                "[certificate.subject] {short} is longer than 64 characters (RFC 5280 upper bound)"
            ));
        }
        out.push((short.to_string(), value));
    }
    Ok(out)
}

fn crl(f: CrlFile) -> Result<CrlConfig, String> {
    let section = "[crl]";
    if f.number == 0 {
        return Err(format!("{section} number must be at least 1"));
    }
    let this_update = f.this_update.map(|t| system_time(&t)).transpose()?;
    let next_update = match (f.next_update, f.validity) {
        (Some(t), None) => Validity::Until(system_time(&t)?),
        (None, Some(v)) => {
            Validity::For(parse_duration(&v).map_err(|e| format!("{section} validity: {e}"))?)
        }
        _ => {
            return Err(format!(
                "{section} needs exactly one of next_update and validity"
            ));
        }
    };
    let mut revoked = Vec::new();
    for (i, r) in f.revoked.into_iter().enumerate() {
        let at = format!("[[crl.revoked]] entry {}", i + 1);
        let target = match (r.serial, r.certificate) {
            (Some(s), None) => RevokedTarget::Serial(
                Serial::from_hex(s.trim_start_matches("0x").replace(':', "").as_str())
                    .map_err(|e| format!("{at}: serial: {e}"))?,
            ),
            (None, Some(p)) => RevokedTarget::Certificate(p),
            _ => return Err(format!("{at} needs exactly one of serial and certificate")),
        };
        let reason = RevocationReason::from_name(&r.reason).ok_or_else(|| {
            format!(
                "{at}: unknown reason '{}' (one of: {})",
                r.reason,
                RevocationReason::ALL.map(|r| r.name()).join(", ")
            )
        })?;
        if matches!(
            reason,
            RevocationReason::RemoveFromCrl | RevocationReason::CertificateHold
        ) {
            return Err(format!(
                "{at}: reason {reason} has no place on a root's CRL (revocations of CA \
                 certificates are final)"
            ));
        }
        revoked.push(Revoked {
            target,
            reason,
            revoked_at: r.revoked_at.map(|t| system_time(&t)).transpose()?,
        });
    }
    Ok(CrlConfig {
        number: f.number,
        this_update,
        next_update,
        revoked,
    })
}

fn required_output(name: &Option<String>, key: &str) -> Result<String, String> {
    let name = name
        .as_deref()
        .ok_or_else(|| format!("[outputs] {key} is missing"))?;
    check_output_name(name).map_err(|e| format!("[outputs] {key}: {e}"))?;
    Ok(name.to_string())
}

fn refuse_output(name: &Option<String>, key: &str, kind: Kind) -> Result<(), String> {
    match name {
        Some(_) => Err(format!(
            "[outputs] {key} is not written by a {} ceremony",
            kind.name()
        )),
        None => Ok(()),
    }
}

/// Names the ceremony reserves in its output directory.
pub(crate) const RESERVED: [&str; 3] = ["transcript.jsonl", "ceremony.toml", "shares"];

/// An output is a plain file name inside the output directory.
fn check_output_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if !plain {
        return Err(format!(
            "'{name}' must be a plain file name (outputs are written into the output directory)"
        ));
    }
    if RESERVED.contains(&name) || name.starts_with("input-") {
        return Err(format!(
            "'{name}' is reserved (transcript.jsonl, ceremony.toml, shares, input-*)"
        ));
    }
    Ok(())
}

/// A TOML offset date-time in UTC (`2026-01-01T00:00:00Z`) as a `SystemTime`.
fn system_time(t: &toml::value::Datetime) -> Result<SystemTime, String> {
    let (Some(date), Some(time), Some(toml::value::Offset::Z)) = (t.date, t.time, t.offset) else {
        return Err(format!(
            "time {t} must be a full UTC date-time like 2026-01-01T00:00:00Z"
        ));
    };
    if time.nanosecond != 0 {
        return Err(format!("time {t} must be in whole seconds"));
    }
    let dt = der::DateTime::new(
        date.year,
        date.month,
        date.day,
        time.hour,
        time.minute,
        time.second,
    )
    .map_err(|e| format!("time {t}: {e}"))?;
    Ok(dt.to_system_time())
}

/// Whether `end` is more than `years` calendar years after `start`.
pub(crate) fn longer_than_years(start: SystemTime, end: SystemTime, years: i32) -> bool {
    let (Ok(s), Ok(e)) = (
        der::DateTime::from_system_time(truncate(start)),
        der::DateTime::from_system_time(truncate(end)),
    ) else {
        return true;
    };
    let limit = (
        i32::from(s.year()) + years,
        s.month(),
        s.day(),
        s.hour(),
        s.minutes(),
        s.seconds(),
    );
    let end = (
        i32::from(e.year()),
        e.month(),
        e.day(),
        e.hour(),
        e.minutes(),
        e.seconds(),
    );
    end > limit
}

/// `t` without its fraction of a second.
pub(crate) fn truncate(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

/// RFC 3339 UTC, whole seconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    der::DateTime::from_system_time(truncate(t))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "invalid time".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = r#"
ceremony = "root"
[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token = "offline"
[key]
label = "root-2026"
type = "ec-p384"
[certificate]
subject = { common_name = "Example Root", organization = "Example", country = "NL" }
validity = "7300d"
[outputs]
certificate = "root.pem"
public_key = "root.pub.pem"
"#;

    fn parse(text: &str) -> Result<Ceremony, String> {
        Ceremony::parse(text.as_bytes(), Path::new("."), "test.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn a_root_file_parses_with_subject_in_rdn_order() {
        let c = parse(ROOT).expect("parses");
        let Action::Root { profile, key, .. } = c.action else {
            panic!("not a root")
        };
        assert_eq!(key.spec, KeySpec::EcP384);
        let order: Vec<&str> = profile.subject.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(order, ["C", "O", "CN"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse(&ROOT.replace("[key]\n", "[key]\ncolour = \"red\"\n")).expect_err("refused");
        assert!(e.contains("colour"), "{e}");
        let e = parse(&format!("{ROOT}\nextra = 1\n")).expect_err("refused");
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn policies_and_odd_key_usages_are_refused_not_ignored() {
        let e = parse(&ROOT.replace(
            "validity = \"7300d\"",
            "validity = \"7300d\"\npolicies = [\"2.23.140.1.2.1\"]",
        ))
        .expect_err("refused");
        assert!(e.contains("not supported"), "{e}");
        let e = parse(&ROOT.replace(
            "validity = \"7300d\"",
            "validity = \"7300d\"\nkey_usage = [\"keyCertSign\"]",
        ))
        .expect_err("refused");
        assert!(e.contains("not supported"), "{e}");
        parse(&ROOT.replace(
            "validity = \"7300d\"",
            "validity = \"7300d\"\nkey_usage = [\"cRLSign\", \"keyCertSign\", \"digitalSignature\"]",
        ))
        .expect("the CA set is accepted in any order");
    }

    #[test]
    fn urls_on_a_root_and_paths_in_outputs_are_refused() {
        let e = parse(&ROOT.replace(
            "validity = \"7300d\"",
            "validity = \"7300d\"\ncrl_url = \"http://example.com/root.crl\"",
        ))
        .expect_err("refused");
        assert!(e.contains("subordinate"), "{e}");
        let e = parse(&ROOT.replace("\"root.pem\"", "\"../root.pem\"")).expect_err("refused");
        assert!(e.contains("plain file name"), "{e}");
        let e = parse(&ROOT.replace("\"root.pem\"", "\"transcript.jsonl\"")).expect_err("refused");
        assert!(e.contains("reserved"), "{e}");
    }

    #[test]
    fn calendar_years_bound_validity() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        let at = |y: u16, mo: u8, d: u8, s: u8| {
            der::DateTime::new(y, mo, d, 0, 0, s)
                .expect("date")
                .to_system_time()
        };
        assert!(!longer_than_years(start, at(2051, 1, 1, 0), 25));
        assert!(longer_than_years(start, at(2051, 1, 1, 1), 25));
        assert!(!longer_than_years(start, at(2034, 1, 1, 0), 8));
        assert!(longer_than_years(start, at(2034, 1, 2, 0), 8));
    }

    #[test]
    fn share_recipients_are_one_distinct_age_key_per_share() {
        const A: &str = "age1nvsgadnh0a4qhwlylpd4tuqkf0xek76gndgqzy7zac9746cgh3kq23gu2r";
        const B: &str = "age1xxl7e890s7nv4y6upwz7zcvr923flv4re3qeqr7543w2qxj30e4snr6sqh";
        let with = |shares: &str| parse(&format!("{ROOT}\n[shares]\n{shares}\n"));
        let c = with(&format!(
            "threshold = 1\ncount = 2\nrecipients = [\"{A}\", \"{B}\"]"
        ))
        .expect("parses");
        let shares = c.shares.expect("shares");
        let keys: Vec<String> = shares.recipients.iter().map(|r| r.to_string()).collect();
        assert_eq!(keys, [A, B]);
        let e = with(&format!(
            "threshold = 1\ncount = 3\nrecipients = [\"{A}\", \"{B}\"]"
        ))
        .expect_err("refused");
        assert!(e.contains("2 keys for 3 shares"), "{e}");
        let e = with(&format!(
            "threshold = 1\ncount = 2\nrecipients = [\"{A}\", \"{A}\"]"
        ))
        .expect_err("refused");
        assert!(e.contains("recipients 1 and 2 are the same key"), "{e}");
        let e = with(&format!(
            "threshold = 1\ncount = 2\nrecipients = [\"{A}\", \"age1x\"]"
        ))
        .expect_err("refused");
        assert!(e.contains("recipients[2]") && e.contains("age1x"), "{e}");
        let plain = with("threshold = 1\ncount = 2").expect("no recipients");
        assert!(plain.shares.expect("shares").recipients.is_empty());
    }

    #[test]
    fn times_must_be_utc() {
        let e = parse(&ROOT.replace(
            "validity = \"7300d\"",
            "not_after = 2040-01-01T00:00:00+01:00",
        ))
        .expect_err("refused");
        assert!(e.contains("UTC"), "{e}");
    }
}
