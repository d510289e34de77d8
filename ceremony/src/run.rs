//! Running a ceremony: check everything, then act, step by step.
//!
//! 1. **Plan** (nothing touched): the file was parsed strictly; every output
//!    path, the transcript, the copies of the file and its inputs, and the
//!    share files must not exist; the inputs are read and checked; validity
//!    limits are applied; and what will be signed is built and linted
//!    through a [`PreviewSigner`] (for a root, over a throwaway key, since
//!    the real one does not exist yet).
//! 2. **Unlock** (the HSM is opened, nothing written): with the initial PIN
//!    for a ceremony that sets up share protection, or with `K` shares
//!    otherwise; a new key's label must be free, a signing key must be found
//!    by label *and* its certificate's public key.
//! 3. **Act**, each step announced and confirmed, each recorded in the
//!    transcript as it completes: copy the file and inputs, split the secret
//!    and set the PIN, generate the key, preview the exact bytes to sign
//!    (with the real serial from the HSM), sign exactly those bytes once,
//!    check the result (same signed bytes, signature, lints again) and only
//!    then write it.
//!
//! A refusal in steps 1 and 2 leaves nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use der::{Decode, Encode};
use serde_json::json;
use strongroom_ca::{
    CaCertificateRequest, CrlRequest, CrlScope, Csr, DistributionUrls, Issuer, RevokedEntry,
    build_crl, lint_certificate, pem, self_signed_root,
};
use strongroom_hsm::{KeyPair, KeySpec, Pin, PoolConfig, PublicKey, SignatureAlgorithm, Token};
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;
use zeroize::Zeroizing;

use crate::config::{
    Action, Ceremony, CertificateProfile, CrlConfig, Kind, MAX_CRL_YEARS, MAX_ROOT_YEARS,
    MAX_SUBORDINATE_YEARS, NewKey, RevokedTarget, SharesConfig, SubjectKey, check_fits,
    longer_than_years, rfc3339, truncate,
};
use crate::envelope::{self, ENCRYPTED_SUFFIX, Identities};
use crate::error::CeremonyError;
use crate::files::{
    create_exclusive, ensure_absent, read, read_certificate, read_public_key, sha256, signed_part,
};
use crate::operator::Operator;
use crate::shares::{Combiner, Secret, Share, split};
use crate::signing::{ExactSigner, MixedRng, PreviewSigner, serial};
use crate::transcript::{Entry, TRANSCRIPT, Transcript};

/// Shares refused at the prompt (mistyped, foreign, repeated) before the
/// ceremony gives up.
const MAX_SHARE_REFUSALS: u32 = 5;

/// The copy of the ceremony file in the output directory.
pub const CONFIG_COPY: &str = "ceremony.toml";

/// How a ceremony is run (beyond its file).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The output directory (created if missing; must hold none of the
    /// ceremony's files).
    pub out_dir: PathBuf,
    /// Where share files go, for a ceremony with `[shares]`; default
    /// `<out_dir>/shares`.
    pub shares_dir: Option<PathBuf>,
    /// Share files presented by officers (otherwise asked for without echo).
    pub share_files: Vec<PathBuf>,
    /// A file holding the token's initial user PIN, for a ceremony with
    /// `[shares]` (otherwise asked for without echo).
    pub pin_file: Option<PathBuf>,
    /// age identity files that open share files encrypted to officers'
    /// keys (see [`crate::envelope`]); only with `share_files`.
    pub identity_files: Vec<PathBuf>,
}

/// What a finished ceremony produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The last transcript line's hash, for the witnesses.
    pub digest: String,
    /// Every file written into the output directory, with its SHA-256.
    pub outputs: BTreeMap<String, String>,
    /// Share files written (outside the transcript's outputs).
    pub share_files: Vec<PathBuf>,
}

/// An input file copied into the output directory.
struct InputCopy {
    role: String,
    source: PathBuf,
    name: String,
    bytes: Vec<u8>,
}

/// The signing CA of an intermediate, cross-sign or CRL ceremony.
struct SigningCa {
    label: String,
    der: Vec<u8>,
    certificate: Certificate,
    public_key: PublicKey,
    algorithm: SignatureAlgorithm,
}

/// Everything checked before the HSM is touched.
struct Plan {
    inputs: Vec<InputCopy>,
    /// Certificate validity (root, intermediate, cross-sign).
    not_before: SystemTime,
    not_after: SystemTime,
    signing: Option<SigningCa>,
    /// The key certified (intermediate, cross-sign).
    subject_key: Option<PublicKey>,
    /// The subject certified, as `(short name, value)`.
    subject: Vec<(String, String)>,
    /// The CRL's entries, thisUpdate and nextUpdate (crl).
    crl_entries: Vec<RevokedEntry>,
    this_update: SystemTime,
    next_update: SystemTime,
    share_paths: Vec<PathBuf>,
    shares_dir: PathBuf,
}

/// Runs `ceremony`; see the module documentation for the order of things.
pub fn run(
    ceremony: &Ceremony,
    options: &RunOptions,
    operator: &mut dyn Operator,
) -> Result<Outcome, CeremonyError> {
    let config_sha256 = sha256(&ceremony.source);
    let now = truncate(SystemTime::now());
    operator.say(&format!(
        "Ceremony: {}{}",
        ceremony.kind.name(),
        ceremony
            .description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    ));
    operator.say(&format!("Ceremony file SHA-256: {config_sha256}"));

    // 1. Plan.
    let plan = plan(ceremony, options, now)?;
    dry_run(ceremony, &plan)?;
    operator.say("Plan checked: no output exists, inputs are valid, the lints pass.");

    // 2. Unlock.
    let unlock = unlock(ceremony, options, operator)?;
    let token = &unlock.token;
    let signing_key = match &plan.signing {
        Some(ca) => Some(token.find_key_pair(&ca.label, &ca.public_key)?),
        None => None,
    };
    if let Some(key) = new_key(ceremony) {
        token.ensure_label_free(&key.label)?;
    }

    if !operator.confirm(&format!(
        "Begin the {} ceremony, writing into {}",
        ceremony.kind.name(),
        options.out_dir.display()
    ))? {
        return Err(CeremonyError::Declined("begin".into()));
    }

    // 3. Act.
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|e| CeremonyError::io(&options.out_dir, e))?;
    let dir = options.out_dir.as_path();
    let mut transcript = Transcript::create(dir, ceremony.kind.name(), &config_sha256)?;
    // From here on, a failure is recorded as the transcript's last step.
    let result = (|| -> Result<Outcome, CeremonyError> {
        let mut outputs = BTreeMap::new();
        let mut begin = Entry::new("begin")
            .detail(
                "tool",
                concat!("strongroom-ceremony ", env!("CARGO_PKG_VERSION")),
            )
            .detail(
                "description",
                ceremony.description.clone().unwrap_or_default(),
            )
            .detail("token", ceremony.hsm.token.clone())
            .detail("module", ceremony.hsm.module.display().to_string());
        let digest = create_exclusive(&dir.join(CONFIG_COPY), &ceremony.source, false)?;
        outputs.insert(CONFIG_COPY.to_string(), digest.clone());
        begin = begin.output(CONFIG_COPY, digest);
        let mut inputs = serde_json::Map::new();
        for input in &plan.inputs {
            let digest = create_exclusive(&dir.join(&input.name), &input.bytes, false)?;
            inputs.insert(
                input.role.clone(),
                json!({"file": input.name, "source": input.source.display().to_string()}),
            );
            outputs.insert(input.name.clone(), digest.clone());
            begin = begin.output(&input.name, digest);
        }
        transcript.append(begin.detail("inputs", inputs))?;
        transcript.append(unlock.entry)?;
        let mut share_files = Vec::new();

        if let Some(shares) = &ceremony.shares {
            share_files = split_and_set_pin(token, shares, &plan, &mut transcript, operator)?;
        }

        match &ceremony.action {
            Action::Root {
                key,
                profile,
                certificate_out,
                public_key_out,
            } => {
                let pair = generate(token, key, public_key_out, dir, &mut transcript, operator)?;
                outputs.insert(
                    public_key_out.clone(),
                    sha256(pair.public_key().to_pem().as_bytes()),
                );
                let algorithm = profile
                    .algorithm
                    .unwrap_or_else(|| key.spec.default_signature_algorithm());
                let serial = serial(token)?;
                let request = CaCertificateRequest {
                    subject: &plan.subject,
                    public_key: pair.public_key(),
                    not_before: plan.not_before,
                    not_after: plan.not_after,
                    path_len: profile.path_len,
                    serial: &serial,
                    urls: &DistributionUrls::default(),
                };
                let preview = PreviewSigner::new(pair.public_key().clone(), algorithm);
                let tbs = preview.capture(|| self_signed_root(&preview, &request))?;
                review_certificate(operator, &tbs, "the self-signed root certificate")?;
                let signer = ExactSigner::new(pair.signer(algorithm)?, tbs.clone());
                let der = self_signed_root(&signer, &request)?;
                let digest = finish_certificate(
                    &der,
                    &tbs,
                    None,
                    algorithm,
                    dir,
                    certificate_out,
                    &mut transcript,
                    Entry::new("certificate-signed")
                        .detail("issuer", "self")
                        .key(&key.label, &pair.public_key().fingerprint()),
                )?;
                outputs.insert(certificate_out.clone(), digest);
            }
            Action::Key {
                key,
                public_key_out,
            } => {
                let pair = generate(token, key, public_key_out, dir, &mut transcript, operator)?;
                outputs.insert(
                    public_key_out.clone(),
                    sha256(pair.public_key().to_pem().as_bytes()),
                );
            }
            Action::Intermediate {
                profile,
                certificate_out,
                ..
            }
            | Action::CrossSign {
                profile,
                certificate_out,
                ..
            } => {
                let (ca, pair) = signing_pair(&plan, signing_key.as_ref())?;
                let subject_key = plan
                    .subject_key
                    .as_ref()
                    .ok_or_else(|| CeremonyError::PostCheck("no subject key planned".into()))?;
                let serial = serial(token)?;
                let request = subordinate_request(&plan, profile, subject_key, &serial);
                let preview = Arc::new(PreviewSigner::new(ca.public_key.clone(), ca.algorithm));
                let preview_issuer = Issuer::new(&ca.der, preview.clone())?;
                let tbs = preview.capture(|| preview_issuer.sign_ca(&request))?;
                if ceremony.kind == Kind::CrossSign {
                    check_cross_sign_subject(&plan, &tbs)?;
                }
                review_certificate(operator, &tbs, "the CA certificate")?;
                let signer = ExactSigner::new(pair.signer(ca.algorithm)?, tbs.clone());
                let issuer = Issuer::new(&ca.der, Arc::new(signer))?;
                let der = issuer.sign_ca(&request)?;
                let digest = finish_certificate(
                    &der,
                    &tbs,
                    Some(&ca.der),
                    ca.algorithm,
                    dir,
                    certificate_out,
                    &mut transcript,
                    Entry::new("certificate-signed")
                        .detail("issuer", plan.inputs[0].name.clone())
                        .key(&ca.label, &ca.public_key.fingerprint())
                        .key("subject", &subject_key.fingerprint()),
                )?;
                outputs.insert(certificate_out.clone(), digest);
            }
            Action::Crl { crl, crl_out, .. } => {
                let (ca, pair) = signing_pair(&plan, signing_key.as_ref())?;
                let request = root_crl_request(&plan, crl);
                let preview = Arc::new(PreviewSigner::new(ca.public_key.clone(), ca.algorithm));
                let preview_issuer = Issuer::new(&ca.der, preview.clone())?;
                let entries = || {
                    plan.crl_entries
                        .iter()
                        .cloned()
                        .map(Ok::<_, CeremonyErrorCa>)
                };
                let tbs = preview.capture(|| build_crl(&preview_issuer, &request, entries()))?;
                operator.say(&format!(
                    "To sign: CRL number {} of {}, thisUpdate {}, nextUpdate {}, {} revoked \
                 certificate(s); SHA-256 of the bytes to sign: {}",
                    request.number,
                    ca.certificate.tbs_certificate.subject,
                    rfc3339(request.this_update),
                    rfc3339(request.next_update),
                    plan.crl_entries.len(),
                    sha256(&tbs)
                ));
                for entry in &plan.crl_entries {
                    operator.say(&format!("  revoked {} ({})", entry.serial, entry.reason));
                }
                if !operator.confirm("Sign the CRL with the root key in the HSM")? {
                    return Err(CeremonyError::Declined("sign the CRL".into()));
                }
                let signer = ExactSigner::new(pair.signer(ca.algorithm)?, tbs.clone());
                let issuer = Issuer::new(&ca.der, Arc::new(signer))?;
                let der = build_crl(&issuer, &request, entries())?;
                check_crl(&der, &tbs, &ca.public_key, ca.algorithm)?;
                let text = pem("X509 CRL", &der);
                let digest = create_exclusive(&dir.join(crl_out), text.as_bytes(), false)?;
                let revoked: Vec<serde_json::Value> = plan
                .crl_entries
                .iter()
                .map(|e| {
                    json!({"serial": e.serial.to_hex(), "reason": e.reason.name(), "revoked_at": e.revoked_at})
                })
                .collect();
                transcript.append(
                    Entry::new("crl-signed")
                        .detail("file", crl_out.clone())
                        .detail("issuer", plan.inputs[0].name.clone())
                        .detail("number", crl.number)
                        .detail("this_update", rfc3339(request.this_update))
                        .detail("next_update", rfc3339(request.next_update))
                        .detail("revoked", revoked)
                        .detail("signature_algorithm", ca.algorithm.name())
                        .detail("tbs_sha256", sha256(&tbs))
                        .key(&ca.label, &ca.public_key.fingerprint())
                        .output(crl_out, digest.clone()),
                )?;
                outputs.insert(crl_out.clone(), digest);
            }
        }

        let files: serde_json::Map<String, serde_json::Value> = outputs
            .iter()
            .map(|(name, digest)| (name.clone(), json!(digest)))
            .collect();
        let digest = transcript.append(Entry::new("end").detail("files", files))?;
        operator.say(&format!("Transcript: {}", dir.join(TRANSCRIPT).display()));
        operator.say(&format!(
            "Transcript digest (witnesses, write this down): {digest}"
        ));
        Ok(Outcome {
            digest,
            outputs,
            share_files,
        })
    })();
    if let Err(e) = &result {
        let recorded = transcript.append(Entry::new("aborted").detail("error", e.to_string()));
        operator.say(&format!(
            "Ceremony stopped{}; {} records how far it got.",
            if recorded.is_ok() {
                ""
            } else {
                " (and the stop could not be recorded)"
            },
            dir.join(TRANSCRIPT).display()
        ));
    }
    result
}

/// `build_crl` takes entries as results; the ceremony's never fail.
type CeremonyErrorCa = strongroom_ca::CaError;

fn new_key(ceremony: &Ceremony) -> Option<&NewKey> {
    match &ceremony.action {
        Action::Root { key, .. } | Action::Key { key, .. } => Some(key),
        _ => None,
    }
}

fn signing_pair<'a>(
    plan: &'a Plan,
    pair: Option<&'a KeyPair>,
) -> Result<(&'a SigningCa, &'a KeyPair), CeremonyError> {
    match (&plan.signing, pair) {
        (Some(ca), Some(pair)) => Ok((ca, pair)),
        _ => Err(CeremonyError::PostCheck("no signing key planned".into())),
    }
}

fn subordinate_request<'a>(
    plan: &'a Plan,
    profile: &'a CertificateProfile,
    subject_key: &'a PublicKey,
    serial: &'a [u8],
) -> CaCertificateRequest<'a> {
    CaCertificateRequest {
        subject: &plan.subject,
        public_key: subject_key,
        not_before: plan.not_before,
        not_after: plan.not_after,
        path_len: profile.path_len,
        serial,
        urls: &profile.urls,
    }
}

/// The root CRL a `crl` ceremony signs: the same request for the dry run
/// and for the signature.
fn root_crl_request(plan: &Plan, crl: &CrlConfig) -> CrlRequest<'static> {
    CrlRequest {
        number: crl.number,
        this_update: plan.this_update,
        next_update: plan.next_update,
        scope: CrlScope::Authority,
        delta_of: None,
        freshest: None,
    }
}

/// Step 1: every check that needs neither the HSM nor a write.
fn plan(ceremony: &Ceremony, options: &RunOptions, now: SystemTime) -> Result<Plan, CeremonyError> {
    let dir = &options.out_dir;
    if dir.exists() && !dir.is_dir() {
        return Err(CeremonyError::Refused(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let shares_dir = options
        .shares_dir
        .clone()
        .unwrap_or_else(|| dir.join("shares"));
    let mut plan = Plan {
        inputs: Vec::new(),
        not_before: now,
        not_after: now,
        signing: None,
        subject_key: None,
        subject: Vec::new(),
        crl_entries: Vec::new(),
        this_update: now,
        next_update: now,
        share_paths: Vec::new(),
        shares_dir,
    };
    let input_path = |p: &Path| ceremony.base_dir.join(p);
    let add_input =
        |plan: &mut Plan, role: &str, source: &Path| -> Result<Vec<u8>, CeremonyError> {
            let bytes = read(source)?;
            let base = source
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "file".into());
            plan.inputs.push(InputCopy {
                role: role.to_string(),
                source: source.to_path_buf(),
                name: format!("input-{role}-{base}"),
                bytes: bytes.clone(),
            });
            Ok(bytes)
        };

    // Inputs.
    let signing = match &ceremony.action {
        Action::Intermediate { signing, .. }
        | Action::CrossSign { signing, .. }
        | Action::Crl { signing, .. } => Some(signing),
        _ => None,
    };
    if let Some(signing) = signing {
        let path = input_path(&signing.certificate);
        add_input(&mut plan, "issuer", &path)?;
        let (der, certificate) = read_certificate(&path)?;
        let public_key = crate::files::certificate_key(&path, &certificate)?;
        let algorithm = signing
            .algorithm
            .unwrap_or_else(|| public_key.spec().default_signature_algorithm());
        check_fits(algorithm, public_key.spec()).map_err(CeremonyError::Refused)?;
        plan.signing = Some(SigningCa {
            label: signing.label.clone(),
            der,
            certificate,
            public_key,
            algorithm,
        });
    }
    match &ceremony.action {
        Action::Root { profile, .. } => plan.subject = profile.subject.clone(),
        Action::Intermediate {
            subject_key,
            profile,
            ..
        } => {
            plan.subject = profile.subject.clone();
            let key = match subject_key {
                SubjectKey::PublicKey(p) => {
                    let path = input_path(p);
                    add_input(&mut plan, "subject-key", &path)?;
                    read_public_key(&path)?
                }
                SubjectKey::Csr(p) => {
                    let path = input_path(p);
                    let bytes = add_input(&mut plan, "subject-csr", &path)?;
                    Csr::parse(&bytes)
                        .map_err(|e| CeremonyError::input(&path, e))?
                        .public_key
                }
            };
            plan.subject_key = Some(key);
        }
        Action::CrossSign { certificate, .. } => {
            let path = input_path(certificate);
            add_input(&mut plan, "cross-signed", &path)?;
            let (_, cert) = read_certificate(&path)?;
            plan.subject_key = Some(crate::files::certificate_key(&path, &cert)?);
            plan.subject = subject_pairs(&cert.tbs_certificate.subject)
                .map_err(|e| CeremonyError::input(&path, e))?;
        }
        Action::Crl { crl, .. } => {
            let this_update = crl.this_update.unwrap_or(now);
            let next_update = crl.next_update.end(this_update);
            plan.this_update = this_update;
            plan.next_update = next_update;
            if next_update <= this_update {
                return Err(CeremonyError::Refused(
                    "[crl] nextUpdate is not after thisUpdate".into(),
                ));
            }
            if longer_than_years(this_update, next_update, MAX_CRL_YEARS) {
                return Err(CeremonyError::Refused(format!(
                    "[crl] nextUpdate {} is more than {MAX_CRL_YEARS} year after thisUpdate {}",
                    rfc3339(next_update),
                    rfc3339(this_update)
                )));
            }
            let root = plan.signing.as_ref().map(|s| s.certificate.clone());
            for (i, revoked) in crl.revoked.iter().enumerate() {
                let serial = match &revoked.target {
                    RevokedTarget::Serial(s) => s.clone(),
                    RevokedTarget::Certificate(p) => {
                        let path = input_path(p);
                        add_input(&mut plan, &format!("revoked-{}", i + 1), &path)?;
                        let (_, cert) = read_certificate(&path)?;
                        check_revoked_ca(&path, &cert, root.as_ref())?;
                        strongroom_ca::Serial::from_bytes(
                            cert.tbs_certificate.serial_number.as_bytes().to_vec(),
                        )
                        .map_err(|e| CeremonyError::input(&path, e))?
                    }
                };
                if plan.crl_entries.iter().any(|e| e.serial == serial) {
                    return Err(CeremonyError::Refused(format!(
                        "[crl] serial {serial} is listed twice"
                    )));
                }
                let at = revoked.revoked_at.unwrap_or(this_update);
                if at > this_update {
                    return Err(CeremonyError::Refused(format!(
                        "[crl] serial {serial}: revoked_at {} is after thisUpdate {}",
                        rfc3339(at),
                        rfc3339(this_update)
                    )));
                }
                plan.crl_entries.push(RevokedEntry {
                    serial,
                    revoked_at: unix(at),
                    reason: revoked.reason,
                });
            }
        }
        Action::Key { .. } => {}
    }

    // Validity.
    let profile = match &ceremony.action {
        Action::Root { profile, .. }
        | Action::Intermediate { profile, .. }
        | Action::CrossSign { profile, .. } => Some(profile),
        _ => None,
    };
    if let Some(profile) = profile {
        plan.not_before = profile.not_before.unwrap_or(now);
        plan.not_after = profile.end.end(plan.not_before);
        let (years, what) = match ceremony.kind {
            Kind::Root => (MAX_ROOT_YEARS, "a root"),
            _ => (
                MAX_SUBORDINATE_YEARS,
                "an intermediate or cross-signed certificate",
            ),
        };
        if plan.not_after <= plan.not_before {
            return Err(CeremonyError::Refused(
                "[certificate] notAfter is not after notBefore".into(),
            ));
        }
        if longer_than_years(plan.not_before, plan.not_after, years) {
            return Err(CeremonyError::Refused(format!(
                "[certificate] validity {} to {} is longer than {years} years, the most for {what}",
                rfc3339(plan.not_before),
                rfc3339(plan.not_after)
            )));
        }
        if let (Kind::Root, Some(alg), Action::Root { key, .. }) =
            (ceremony.kind, profile.algorithm, &ceremony.action)
        {
            check_fits(alg, key.spec).map_err(CeremonyError::Refused)?;
        }
    }

    // Shares.
    if !options.identity_files.is_empty() && options.share_files.is_empty() {
        return Err(CeremonyError::Refused(
            "--identity opens encrypted --share files, and no --share file was given".into(),
        ));
    }
    if let Some(shares) = &ceremony.shares {
        if !options.share_files.is_empty() {
            return Err(CeremonyError::Refused(
                "this ceremony sets up new shares ([shares]); it takes the token's initial \
                 PIN, not --share"
                    .into(),
            ));
        }
        let suffix = if shares.recipients.is_empty() {
            ""
        } else {
            ENCRYPTED_SUFFIX
        };
        for i in 1..=shares.count {
            plan.share_paths.push(
                plan.shares_dir
                    .join(format!("share-{i}-of-{}.txt{suffix}", shares.count)),
            );
        }
    } else if options.pin_file.is_some() {
        return Err(CeremonyError::Refused(
            "--pin-file is only for the ceremony that sets up shares ([shares]); this token's \
             PIN comes from the officers' shares"
                .into(),
        ));
    }

    // Nothing may exist yet.
    let mut paths = vec![dir.join(TRANSCRIPT), dir.join(CONFIG_COPY)];
    paths.extend(plan.inputs.iter().map(|i| dir.join(&i.name)));
    paths.extend(ceremony.output_names().into_iter().map(|n| dir.join(n)));
    paths.extend(plan.share_paths.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    for path in &paths {
        if !seen.insert(path.clone()) {
            return Err(CeremonyError::Refused(format!(
                "{} would be written twice",
                path.display()
            )));
        }
        ensure_absent(path)?;
    }
    Ok(plan)
}

/// A CRL entry given by certificate must be a CA certificate issued by the root.
fn check_revoked_ca(
    path: &Path,
    cert: &Certificate,
    root: Option<&Certificate>,
) -> Result<(), CeremonyError> {
    let is_ca = cert
        .tbs_certificate
        .get::<BasicConstraints>()
        .ok()
        .flatten()
        .is_some_and(|(_, bc)| bc.ca);
    if !is_ca {
        return Err(CeremonyError::input(
            path,
            "not a CA certificate; a root's CRL lists revoked CA certificates only",
        ));
    }
    if let Some(root) = root {
        if cert.tbs_certificate.issuer != root.tbs_certificate.subject {
            return Err(CeremonyError::input(path, "not issued by the signing CA"));
        }
    }
    Ok(())
}

/// The subject of a certificate as the `(short name, value)` pairs the `ca`
/// crate builds names from.
fn subject_pairs(name: &x509_cert::name::Name) -> Result<Vec<(String, String)>, String> {
    use const_oid::db::rfc4519::{
        COMMON_NAME, COUNTRY_NAME, LOCALITY_NAME, ORGANIZATION_NAME, ORGANIZATIONAL_UNIT_NAME, ST,
    };
    let mut out = Vec::new();
    for rdn in name.0.iter() {
        if rdn.0.len() != 1 {
            return Err("the subject has a multi-valued RDN, which cannot be reproduced".into());
        }
        for atv in rdn.0.iter() {
            let short = match atv.oid {
                o if o == COMMON_NAME => "CN",
                o if o == COUNTRY_NAME => "C",
                o if o == ST => "ST",
                o if o == LOCALITY_NAME => "L",
                o if o == ORGANIZATION_NAME => "O",
                o if o == ORGANIZATIONAL_UNIT_NAME => "OU",
                other => return Err(format!("subject attribute {other} cannot be reproduced")),
            };
            let value = std::str::from_utf8(atv.value.value())
                .map_err(|_| "a subject attribute is not text".to_string())?;
            out.push((short.to_string(), value.to_string()));
        }
    }
    Ok(out)
}

/// A cross-signed certificate must carry the cross-signed CA's subject byte
/// for byte (else paths through it do not chain).
fn check_cross_sign_subject(plan: &Plan, tbs: &[u8]) -> Result<(), CeremonyError> {
    let input = plan
        .inputs
        .iter()
        .find(|i| i.role == "cross-signed")
        .ok_or_else(|| CeremonyError::PostCheck("no cross-signed certificate".into()))?;
    let der = crate::files::pem_or_der(&input.source, &input.bytes, "CERTIFICATE")?;
    let original = Certificate::from_der(&der)
        .map_err(|e| CeremonyError::input(&input.source, e.to_string()))?;
    let built = x509_cert::TbsCertificate::from_der(tbs)
        .map_err(|e| CeremonyError::PostCheck(e.to_string()))?;
    let same =
        |a: &x509_cert::name::Name, b: &x509_cert::name::Name| a.to_der().ok() == b.to_der().ok();
    if !same(&built.subject, &original.tbs_certificate.subject) {
        return Err(CeremonyError::Refused(format!(
            "{}: its subject cannot be reproduced byte for byte (string types differ); a \
             cross-sign would not chain",
            input.source.display()
        )));
    }
    Ok(())
}

/// Step 1, continued: build and lint what will be signed, before the HSM is
/// touched (with a placeholder serial; for a root, over a throwaway key).
fn dry_run(ceremony: &Ceremony, plan: &Plan) -> Result<(), CeremonyError> {
    let placeholder_serial = {
        let mut s = vec![0x01];
        s.extend([0x5a; 16]);
        s
    };
    match &ceremony.action {
        Action::Root { key, profile, .. } => {
            let algorithm = profile
                .algorithm
                .unwrap_or_else(|| key.spec.default_signature_algorithm());
            let throwaway = throwaway_key()?;
            let request = CaCertificateRequest {
                subject: &plan.subject,
                public_key: &throwaway,
                not_before: plan.not_before,
                not_after: plan.not_after,
                path_len: profile.path_len,
                serial: &placeholder_serial,
                urls: &DistributionUrls::default(),
            };
            let preview = PreviewSigner::new(throwaway.clone(), algorithm);
            preview.capture(|| self_signed_root(&preview, &request))?;
        }
        Action::Intermediate { profile, .. } | Action::CrossSign { profile, .. } => {
            let ca = plan
                .signing
                .as_ref()
                .ok_or_else(|| CeremonyError::PostCheck("no signing CA planned".into()))?;
            let subject_key = plan
                .subject_key
                .as_ref()
                .ok_or_else(|| CeremonyError::PostCheck("no subject key planned".into()))?;
            let request = subordinate_request(plan, profile, subject_key, &placeholder_serial);
            let preview = Arc::new(PreviewSigner::new(ca.public_key.clone(), ca.algorithm));
            let issuer = Issuer::new(&ca.der, preview.clone())?;
            let tbs = preview.capture(|| issuer.sign_ca(&request))?;
            if ceremony.kind == Kind::CrossSign {
                check_cross_sign_subject(plan, &tbs)?;
            }
        }
        Action::Crl { crl, .. } => {
            let ca = plan
                .signing
                .as_ref()
                .ok_or_else(|| CeremonyError::PostCheck("no signing CA planned".into()))?;
            let request = root_crl_request(plan, crl);
            let preview = Arc::new(PreviewSigner::new(ca.public_key.clone(), ca.algorithm));
            let issuer = Issuer::new(&ca.der, preview.clone())?;
            let entries = plan
                .crl_entries
                .iter()
                .cloned()
                .map(Ok::<_, CeremonyErrorCa>);
            preview.capture(|| build_crl(&issuer, &request, entries))?;
        }
        Action::Key { .. } => {}
    }
    Ok(())
}

/// An ephemeral P-256 public key (software, never used to sign) for the dry run.
fn throwaway_key() -> Result<PublicKey, CeremonyError> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let fail = |what: &str| CeremonyError::PostCheck(format!("throwaway key: {what}"));
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| fail("generation failed"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| fail("cannot be read back"))?;
    PublicKey::from_raw(KeySpec::EcP256, pair.public_key().as_ref())
        .map_err(|e| fail(&e.to_string()))
}

/// A token opened, and the transcript entry that says how.
struct Unlocked {
    token: Token,
    entry: Entry,
}

/// Step 2: open the token, with the initial PIN or with `K` shares.
fn unlock(
    ceremony: &Ceremony,
    options: &RunOptions,
    operator: &mut dyn Operator,
) -> Result<Unlocked, CeremonyError> {
    let hsm = &ceremony.hsm;
    let open = |pin: Pin| Token::open(&hsm.module, &hsm.token, pin, PoolConfig::default());
    if ceremony.shares.is_some() {
        let pin = match &options.pin_file {
            Some(path) => {
                let text = Zeroizing::new(read(path)?);
                let text = std::str::from_utf8(&text)
                    .map_err(|_| CeremonyError::input(path, "the PIN file is not UTF-8"))?;
                Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string())
            }
            None => operator.secret(&format!(
                "Initial user PIN of token '{}' (it will be replaced by one derived from the shares)",
                hsm.token
            ))?,
        };
        let token = open(Pin::new(pin.as_str()))?;
        operator.say(&format!(
            "Token '{}' opened with its initial PIN.",
            hsm.token
        ));
        let entry = Entry::new("token-opened")
            .detail("token", hsm.token.clone())
            .detail("with", "initial PIN");
        return Ok(Unlocked { token, entry });
    }
    let mut combiner = Combiner::new();
    let mut presented = Vec::new();
    let identities = read_identities(&options.identity_files)?;
    for path in &options.share_files {
        let bytes = Zeroizing::new(read(path)?);
        let decrypted;
        let text = if envelope::is_encrypted(&bytes) {
            let identities = identities.as_ref().ok_or_else(|| {
                CeremonyError::input(
                    path,
                    "the share is encrypted to an officer's age key: give that officer's \
                     identity file with --identity",
                )
            })?;
            decrypted = envelope::decrypt(&bytes, identities)
                .map_err(|e| CeremonyError::input(path, e.to_string()))?;
            decrypted.as_str()
        } else {
            std::str::from_utf8(&bytes)
                .map_err(|_| CeremonyError::input(path, "not a share file (not UTF-8)"))?
        };
        let share =
            Share::from_text(text).map_err(|e| CeremonyError::input(path, e.to_string()))?;
        presented.push(public_share_facts(&share));
        combiner
            .add(share)
            .map_err(|e| CeremonyError::input(path, e.to_string()))?;
    }
    if options.share_files.is_empty() {
        operator.say(&format!(
            "Token '{}' is protected by shares: officers, enter your shares (not echoed).",
            hsm.token
        ));
        // A mistyped, foreign or repeated share is refused and may be
        // entered again; the combiner is unchanged by a refusal.
        let mut refusals = 0;
        loop {
            let progress = combiner.progress();
            if progress.is_some_and(|p| p.is_complete()) {
                break;
            }
            let n = presented.len() + 1;
            let added = read_share(operator, n).and_then(|share| {
                let facts = public_share_facts(&share);
                let progress = combiner.add(share)?;
                Ok((facts, progress))
            });
            match added {
                Ok((facts, progress)) => {
                    presented.push(facts);
                    operator.say(&format!(
                        "Share accepted: {} of {} needed.",
                        progress.have, progress.need
                    ));
                }
                Err(CeremonyError::Shares(e)) if refusals < MAX_SHARE_REFUSALS => {
                    refusals += 1;
                    operator.say(&format!("Share refused: {e}. Enter it again."));
                }
                Err(e) => return Err(e),
            }
        }
    }
    let set_id = combiner.set_id().map(|s| s.to_string()).unwrap_or_default();
    let secret = combiner.finish()?;
    let token = open(crate::hsm_pin(&secret))?;
    drop(secret);
    operator.say(&format!(
        "Quorum reached: token '{}' opened with the PIN derived from the shares.",
        hsm.token
    ));
    let entry = Entry::new("quorum")
        .detail("token", hsm.token.clone())
        .detail("set_id", set_id)
        .detail("shares", presented);
    Ok(Unlocked { token, entry })
}

/// The identities in `paths`, all together (each officer may bring one
/// file); `None` without any.
fn read_identities(paths: &[PathBuf]) -> Result<Option<Identities>, CeremonyError> {
    let mut all: Option<Identities> = None;
    for path in paths {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| CeremonyError::io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(CeremonyError::input(
                path,
                "the identity file is readable by others; chmod 600 it",
            ));
        }
        let bytes = Zeroizing::new(read(path)?);
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| CeremonyError::input(path, "not an age identity file (not UTF-8)"))?;
        let identities =
            Identities::parse(text).map_err(|e| CeremonyError::input(path, e.to_string()))?;
        match &mut all {
            None => all = Some(identities),
            Some(all) => all.extend(identities),
        }
    }
    Ok(all)
}

fn public_share_facts(share: &Share) -> serde_json::Value {
    json!({
        "index": share.index(),
        "threshold": share.threshold(),
        "count": share.count(),
        "fingerprint": share.fingerprint(),
    })
}

/// Reads one share without echo: the compact one-line form, or the lines
/// of the printed form up to its `check` line.
fn read_share(operator: &mut dyn Operator, n: usize) -> Result<Share, CeremonyError> {
    let mut text = Zeroizing::new(String::new());
    for line_no in 1..=12 {
        let line = operator.secret(&format!("Share {n}, line {line_no}"))?;
        let trimmed = line.trim().to_ascii_lowercase();
        if trimmed.is_empty() {
            continue;
        }
        text.push_str(&line);
        text.push('\n');
        if trimmed.starts_with("strongroom-share:") || trimmed.starts_with("check") {
            return Ok(Share::from_text(&text)?);
        }
    }
    Err(CeremonyError::Refused(format!(
        "share {n}: no 'check' line after 12 lines"
    )))
}

/// Splits a new secret, writes the share files (each encrypted to its
/// officer's key when the file lists recipients), then sets the PIN derived
/// from it (in that order: a failed write leaves the old PIN in place).
fn split_and_set_pin(
    token: &Token,
    config: &SharesConfig,
    plan: &Plan,
    transcript: &mut Transcript,
    operator: &mut dyn Operator,
) -> Result<Vec<PathBuf>, CeremonyError> {
    let (threshold, count) = (config.threshold, config.count);
    let encrypted = if config.recipients.is_empty() {
        ""
    } else {
        ", each encrypted to its officer's age key,"
    };
    if !operator.confirm(&format!(
        "Split a new secret into {count} shares ({threshold} needed), write them{encrypted} to \
         {}, and replace the user PIN of token '{}' with one derived from the secret",
        plan.shares_dir.display(),
        token.label()
    ))? {
        return Err(CeremonyError::Declined("split the secret".into()));
    }
    let mut rng = MixedRng::new(token);
    let secret = Secret::generate(&mut rng)?;
    let shares = split(&secret, threshold, count, &mut rng)?;
    // Every file's content is ready before the first is written.
    let contents = shares
        .iter()
        .enumerate()
        .map(|(i, share)| {
            let text = Zeroizing::new(share.to_text());
            match config.recipients.get(i) {
                None => Ok(text),
                Some(recipient) => Ok(Zeroizing::new(envelope::encrypt(&text, recipient)?)),
            }
        })
        .collect::<Result<Vec<_>, envelope::EnvelopeError>>()
        .map_err(|e| CeremonyError::Refused(e.to_string()))?;
    create_private_dir(&plan.shares_dir)?;
    let mut written = Vec::new();
    let result = (|| {
        for (content, path) in contents.iter().zip(&plan.share_paths) {
            create_exclusive(path, content.as_bytes(), true)?;
            written.push(path.clone());
        }
        token.set_pin(crate::hsm_pin(&secret))?;
        Ok::<(), CeremonyError>(())
    })();
    if let Err(e) = result {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    drop(secret);
    let set_id = shares
        .first()
        .map(|s| s.set_id().to_string())
        .unwrap_or_default();
    let facts: Vec<serde_json::Value> = shares
        .iter()
        .zip(&plan.share_paths)
        .enumerate()
        .map(|(i, (s, p))| {
            let mut v = public_share_facts(s);
            v["file"] = json!(p.display().to_string());
            if let Some(recipient) = config.recipients.get(i) {
                v["encrypted_to"] = json!(recipient.to_string());
            }
            v
        })
        .collect();
    transcript.append(
        Entry::new("shares-split")
            .detail("set_id", set_id.clone())
            .detail("threshold", threshold)
            .detail("count", count)
            .detail("shares", facts),
    )?;
    transcript.append(
        Entry::new("pin-set")
            .detail("token", token.label().to_string())
            .detail(
                "derivation",
                "HKDF-SHA256(secret, info \"strongroom hsm user pin v1\"), hex",
            ),
    )?;
    operator.say(&format!(
        "Shares of set {set_id} written to {}: hand each officer one file, then remove them \
         from this machine. The token's user PIN is now derived from the secret.",
        plan.shares_dir.display()
    ));
    Ok(written)
}

fn create_private_dir(dir: &Path) -> Result<(), CeremonyError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CeremonyError::io(dir, e))
}

/// Generates `key` in the token and writes its public key.
fn generate(
    token: &Token,
    key: &NewKey,
    out: &str,
    dir: &Path,
    transcript: &mut Transcript,
    operator: &mut dyn Operator,
) -> Result<KeyPair, CeremonyError> {
    if !operator.confirm(&format!(
        "Generate key '{}' ({}) in token '{}' (sensitive, never extractable, sign-only)",
        key.label,
        key.spec,
        token.label()
    ))? {
        return Err(CeremonyError::Declined("generate the key".into()));
    }
    let pair = token.generate_key_pair(&key.label, key.spec)?;
    let pem = pair.public_key().to_pem();
    let digest = create_exclusive(&dir.join(out), pem.as_bytes(), false)?;
    let fingerprint = pair.public_key().fingerprint();
    transcript.append(
        Entry::new("key-generated")
            .detail("label", key.label.clone())
            .detail("type", key.spec.to_string())
            .detail("file", out.to_string())
            .key(&key.label, &fingerprint)
            .output(out, digest),
    )?;
    operator.say(&format!(
        "Key '{}' generated; public key SHA-256 {fingerprint}, written to {out}.",
        key.label
    ));
    Ok(pair)
}

/// Shows what is about to be signed and asks to go ahead.
fn review_certificate(
    operator: &mut dyn Operator,
    tbs: &[u8],
    what: &str,
) -> Result<(), CeremonyError> {
    let parsed = x509_cert::TbsCertificate::from_der(tbs)
        .map_err(|e| CeremonyError::PostCheck(format!("the previewed TBS does not decode: {e}")))?;
    let path_len = parsed
        .get::<BasicConstraints>()
        .ok()
        .flatten()
        .map(|(_, bc)| {
            bc.path_len_constraint
                .map_or("unconstrained".to_string(), |n| n.to_string())
        })
        .unwrap_or_default();
    operator.say(&format!("To sign: {what}"));
    operator.say(&format!("  subject:     {}", parsed.subject));
    operator.say(&format!("  issuer:      {}", parsed.issuer));
    operator.say(&format!(
        "  serial:      {}",
        crate::files::hex(parsed.serial_number.as_bytes())
    ));
    operator.say(&format!(
        "  validity:    {} to {}",
        parsed.validity.not_before, parsed.validity.not_after
    ));
    operator.say(&format!("  path length: {path_len}"));
    operator.say(&format!(
        "  key SHA-256: {}",
        sha256(
            &parsed
                .subject_public_key_info
                .to_der()
                .map_err(|e| CeremonyError::PostCheck(e.to_string()))?
        )
    ));
    operator.say(&format!("  TBS SHA-256: {} (linted)", sha256(tbs)));
    if !operator.confirm(&format!("Sign {what} with the key in the HSM"))? {
        return Err(CeremonyError::Declined(format!("sign {what}")));
    }
    Ok(())
}

/// Checks a signed certificate (signed bytes identical to the previewed
/// ones, signature, lints again), then writes it and records the step.
#[allow(clippy::too_many_arguments)]
fn finish_certificate(
    der: &[u8],
    tbs: &[u8],
    issuer: Option<&[u8]>,
    algorithm: SignatureAlgorithm,
    dir: &Path,
    out: &str,
    transcript: &mut Transcript,
    entry: Entry,
) -> Result<String, CeremonyError> {
    let signed = signed_part(der).map_err(CeremonyError::PostCheck)?;
    if signed != tbs {
        return Err(CeremonyError::PostCheck(
            "the signed certificate's TBS differs from the linted one; not written".into(),
        ));
    }
    let findings = lint_certificate(der, issuer, algorithm)?;
    if !findings.is_empty() {
        return Err(CeremonyError::PostCheck(format!(
            "the signed certificate fails lints: {}; not written",
            findings.join("; ")
        )));
    }
    let cert = Certificate::from_der(der).map_err(|e| CeremonyError::PostCheck(e.to_string()))?;
    let text = pem("CERTIFICATE", der);
    let digest = create_exclusive(&dir.join(out), text.as_bytes(), false)?;
    let tbs_cert = &cert.tbs_certificate;
    transcript.append(
        entry
            .detail("file", out.to_string())
            .detail(
                "serial",
                crate::files::hex(tbs_cert.serial_number.as_bytes()),
            )
            .detail("subject", tbs_cert.subject.to_string())
            .detail(
                "not_before",
                rfc3339(tbs_cert.validity.not_before.to_system_time()),
            )
            .detail(
                "not_after",
                rfc3339(tbs_cert.validity.not_after.to_system_time()),
            )
            .detail("signature_algorithm", algorithm.name())
            .detail("tbs_sha256", sha256(tbs))
            .output(out, digest.clone()),
    )?;
    Ok(digest)
}

/// Checks a signed CRL: signed bytes identical to the previewed ones, and
/// the signature verifies.
fn check_crl(
    der: &[u8],
    tbs: &[u8],
    key: &PublicKey,
    algorithm: SignatureAlgorithm,
) -> Result<(), CeremonyError> {
    let signed = signed_part(der).map_err(CeremonyError::PostCheck)?;
    if signed != tbs {
        return Err(CeremonyError::PostCheck(
            "the signed CRL's TBS differs from the linted one; not written".into(),
        ));
    }
    let crl = x509_cert::crl::CertificateList::from_der(der)
        .map_err(|e| CeremonyError::PostCheck(e.to_string()))?;
    let signature = crl
        .signature
        .as_bytes()
        .ok_or_else(|| CeremonyError::PostCheck("CRL signature has unused bits".into()))?;
    key.verify(algorithm, signed, signature)
        .map_err(|e| CeremonyError::PostCheck(e.to_string()))?;
    Ok(())
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
