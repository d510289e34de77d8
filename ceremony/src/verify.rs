//! `ceremony verify DIR`: re-checks a ceremony's output directory offline,
//! with no HSM, and stops at the first problem.
//!
//! 1. The transcript: every line's own hash, `seq` counting from 1, each
//!    `prev_hash` equal to the line before's hash, one ceremony and one
//!    configuration hash throughout, `begin` first and `end` last.
//! 2. The files: `ceremony.toml` hashes to the transcript's
//!    `config_sha256` and parses; every file a step recorded still has the
//!    recorded SHA-256; no other file sits in the directory (besides the
//!    transcript and `shares/`).
//! 3. The objects: certificates are linted again and their signatures
//!    checked under their issuer (the root under itself, a subordinate under
//!    the copied issuer certificate), with validity within the limits; a
//!    CRL's signature, issuer, number and entries are checked against the
//!    root and the ceremony file; public keys match what the transcript
//!    fingerprinted.

use std::collections::BTreeMap;
use std::path::Path;

use der::{Decode, Encode};
use strongroom_ca::{lint_certificate, signature_algorithm_der};
use strongroom_hsm::{PublicKey, SignatureAlgorithm};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::config::{
    Action, Ceremony, Kind, MAX_ROOT_YEARS, MAX_SUBORDINATE_YEARS, RevokedTarget, longer_than_years,
};
use crate::error::CeremonyError;
use crate::files::{pem_or_der, sha256, signed_part};
use crate::run::CONFIG_COPY;
use crate::transcript::{GENESIS, Record, TRANSCRIPT, open_line};

/// What a successful verification found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The ceremony type.
    pub kind: Kind,
    /// Transcript lines checked.
    pub steps: usize,
    /// The last line's hash: compare with what the witnesses wrote down.
    pub digest: String,
    /// Every file checked, with its SHA-256.
    pub outputs: BTreeMap<String, String>,
}

fn fail(message: impl Into<String>) -> CeremonyError {
    CeremonyError::Verify(message.into())
}

/// Verifies the ceremony directory `dir`; the error names the first problem.
pub fn verify(dir: &Path) -> Result<Verified, CeremonyError> {
    // 1. The transcript.
    let path = dir.join(TRANSCRIPT);
    let text = std::fs::read(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let text = String::from_utf8(text).map_err(|_| fail(format!("{TRANSCRIPT} is not UTF-8")))?;
    if !text.ends_with('\n') {
        return Err(fail(format!(
            "{TRANSCRIPT} does not end with a complete line (truncated?)"
        )));
    }
    let mut records: Vec<Record> = Vec::new();
    let mut prev = GENESIS.to_string();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let (record, hash) =
            open_line(line).map_err(|e| fail(format!("{TRANSCRIPT} line {n}: {e}")))?;
        if record.seq != n as u64 {
            return Err(fail(format!(
                "{TRANSCRIPT} line {n}: seq is {}, expected {n} (a line was removed, added or moved)",
                record.seq
            )));
        }
        if record.prev_hash != prev {
            return Err(fail(format!(
                "{TRANSCRIPT} line {n}: prev_hash does not match line {}'s hash (the chain is broken)",
                n - 1
            )));
        }
        if let Some(first) = records.first() {
            if record.ceremony != first.ceremony || record.config_sha256 != first.config_sha256 {
                return Err(fail(format!(
                    "{TRANSCRIPT} line {n}: a different ceremony or configuration than line 1"
                )));
            }
        }
        prev = hash;
        records.push(record);
    }
    let first = records
        .first()
        .ok_or_else(|| fail(format!("{TRANSCRIPT} is empty")))?;
    if first.step != "begin" {
        return Err(fail(format!("{TRANSCRIPT} does not start with 'begin'")));
    }
    if let Some(stopped) = records.last().filter(|r| r.step == "aborted") {
        return Err(fail(format!(
            "the ceremony was stopped at step {}: {}",
            stopped.seq,
            stopped
                .details
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no reason recorded")
        )));
    }
    if records.last().map(|r| r.step.as_str()) != Some("end") {
        return Err(fail(format!(
            "{TRANSCRIPT} does not end with 'end': the ceremony did not finish, or lines were removed"
        )));
    }

    // 2. The files.
    let config_path = dir.join(CONFIG_COPY);
    let source = std::fs::read(&config_path).map_err(|e| fail(format!("{CONFIG_COPY}: {e}")))?;
    if sha256(&source) != first.config_sha256 {
        return Err(fail(format!(
            "{CONFIG_COPY} does not hash to the transcript's config_sha256 (it was changed)"
        )));
    }
    let ceremony = Ceremony::parse(&source, dir, CONFIG_COPY)?;
    if ceremony.kind.name() != first.ceremony {
        return Err(fail(format!(
            "{CONFIG_COPY} is a {} ceremony, the transcript a {} one",
            ceremony.kind.name(),
            first.ceremony
        )));
    }
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    for record in &records {
        for (name, digest) in &record.outputs {
            if outputs.insert(name.clone(), digest.clone()).is_some() {
                return Err(fail(format!(
                    "{TRANSCRIPT} records {name} twice (line {})",
                    record.seq
                )));
            }
        }
    }
    if !outputs.contains_key(CONFIG_COPY) {
        return Err(fail(format!("{TRANSCRIPT} does not record {CONFIG_COPY}")));
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (name, digest) in &outputs {
        if name.contains('/') || name.contains('\\') || name == ".." {
            return Err(fail(format!(
                "{TRANSCRIPT} records an odd file name {name:?}"
            )));
        }
        let bytes = std::fs::read(dir.join(name)).map_err(|e| fail(format!("{name}: {e}")))?;
        if &sha256(&bytes) != digest {
            return Err(fail(format!(
                "{name} does not match its SHA-256 in the transcript (the file was changed)"
            )));
        }
        files.insert(name.clone(), bytes);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| fail(e.to_string()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name != TRANSCRIPT && name != "shares" && !outputs.contains_key(&name) {
            return Err(fail(format!(
                "{name} is in the directory but not in the transcript"
            )));
        }
    }
    let end = records.last().and_then(|r| r.details.get("files"));
    for (name, digest) in &outputs {
        if end.and_then(|d| d.get(name)).and_then(|v| v.as_str()) != Some(digest.as_str()) {
            return Err(fail(format!(
                "the 'end' step does not list {name} with its SHA-256"
            )));
        }
    }

    // 3. The objects.
    check_objects(&ceremony, &records, &files)?;

    Ok(Verified {
        kind: ceremony.kind,
        steps: records.len(),
        digest: prev,
        outputs,
    })
}

fn step<'a>(records: &'a [Record], name: &str) -> Result<&'a Record, CeremonyError> {
    let mut found = records.iter().filter(|r| r.step == name);
    let record = found
        .next()
        .ok_or_else(|| fail(format!("{TRANSCRIPT} has no '{name}' step")))?;
    if found.next().is_some() {
        return Err(fail(format!(
            "{TRANSCRIPT} has more than one '{name}' step"
        )));
    }
    Ok(record)
}

fn detail<'a>(record: &'a Record, key: &str) -> Result<&'a str, CeremonyError> {
    record
        .details
        .get(key)
        .and_then(|v| v.as_str())
        .ok_or_else(|| fail(format!("the '{}' step has no '{key}'", record.step)))
}

fn file<'a>(files: &'a BTreeMap<String, Vec<u8>>, name: &str) -> Result<&'a [u8], CeremonyError> {
    files
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| fail(format!("{name} is not among the recorded files")))
}

/// The input file copied for `role`, as the `begin` step names it.
fn input<'a>(
    records: &[Record],
    files: &'a BTreeMap<String, Vec<u8>>,
    role: &str,
) -> Result<(String, &'a [u8]), CeremonyError> {
    let begin = step(records, "begin")?;
    let name = begin
        .details
        .get("inputs")
        .and_then(|i| i.get(role))
        .and_then(|i| i.get("file"))
        .and_then(|f| f.as_str())
        .ok_or_else(|| fail(format!("the 'begin' step names no '{role}' input")))?;
    Ok((name.to_string(), file(files, name)?))
}

fn certificate(name: &str, bytes: &[u8]) -> Result<(Vec<u8>, Certificate), CeremonyError> {
    let der = pem_or_der(Path::new(name), bytes, "CERTIFICATE")?;
    let cert = Certificate::from_der(&der).map_err(|e| fail(format!("{name}: {e}")))?;
    Ok((der, cert))
}

fn spki(name: &str, cert: &Certificate) -> Result<PublicKey, CeremonyError> {
    let der = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| fail(format!("{name}: {e}")))?;
    PublicKey::from_der(&der).map_err(|e| fail(format!("{name}: {e}")))
}

fn algorithm(record: &Record) -> Result<SignatureAlgorithm, CeremonyError> {
    let name = detail(record, "signature_algorithm")?;
    name.parse()
        .map_err(|_| fail(format!("unknown signature algorithm '{name}'")))
}

fn lint_clean(
    name: &str,
    der: &[u8],
    issuer: Option<&[u8]>,
    algorithm: SignatureAlgorithm,
) -> Result<(), CeremonyError> {
    let findings = lint_certificate(der, issuer, algorithm)?;
    if !findings.is_empty() {
        return Err(fail(format!("{name}: {}", findings.join("; "))));
    }
    Ok(())
}

fn check_validity(name: &str, cert: &Certificate, years: i32) -> Result<(), CeremonyError> {
    let v = &cert.tbs_certificate.validity;
    if longer_than_years(
        v.not_before.to_system_time(),
        v.not_after.to_system_time(),
        years,
    ) {
        return Err(fail(format!("{name}: valid for more than {years} years")));
    }
    Ok(())
}

fn check_key_record(record: &Record, label: &str, key: &PublicKey) -> Result<(), CeremonyError> {
    if record.keys.get(label).map(String::as_str) != Some(key.fingerprint().as_str()) {
        return Err(fail(format!(
            "the '{}' step's fingerprint of key '{label}' is not the key's",
            record.step
        )));
    }
    Ok(())
}

fn check_objects(
    ceremony: &Ceremony,
    records: &[Record],
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<(), CeremonyError> {
    match &ceremony.action {
        Action::Root {
            key,
            certificate_out,
            public_key_out,
            ..
        } => {
            let generated = step(records, "key-generated")?;
            let public_key = public_key_file(public_key_out, file(files, public_key_out)?)?;
            check_key_record(generated, &key.label, &public_key)?;
            let signed = step(records, "certificate-signed")?;
            let (der, cert) = certificate(certificate_out, file(files, certificate_out)?)?;
            if spki(certificate_out, &cert)? != public_key {
                return Err(fail(format!(
                    "{certificate_out} does not certify the key in {public_key_out}"
                )));
            }
            lint_clean(certificate_out, &der, None, algorithm(signed)?)?;
            check_validity(certificate_out, &cert, MAX_ROOT_YEARS)?;
        }
        Action::Key {
            key,
            public_key_out,
        } => {
            let generated = step(records, "key-generated")?;
            let public_key = public_key_file(public_key_out, file(files, public_key_out)?)?;
            check_key_record(generated, &key.label, &public_key)?;
        }
        Action::Intermediate {
            signing,
            certificate_out,
            ..
        }
        | Action::CrossSign {
            signing,
            certificate_out,
            ..
        } => {
            let signed = step(records, "certificate-signed")?;
            let (issuer_name, issuer_bytes) = input(records, files, "issuer")?;
            let (issuer_der, issuer) = certificate(&issuer_name, issuer_bytes)?;
            check_key_record(signed, &signing.label, &spki(&issuer_name, &issuer)?)?;
            let (der, cert) = certificate(certificate_out, file(files, certificate_out)?)?;
            lint_clean(certificate_out, &der, Some(&issuer_der), algorithm(signed)?)?;
            check_validity(certificate_out, &cert, MAX_SUBORDINATE_YEARS)?;
            let subject_key = spki(certificate_out, &cert)?;
            let (role, expected) = if ceremony.kind == Kind::CrossSign {
                let (name, bytes) = input(records, files, "cross-signed")?;
                let (_, original) = certificate(&name, bytes)?;
                if original.tbs_certificate.subject.to_der().ok()
                    != cert.tbs_certificate.subject.to_der().ok()
                {
                    return Err(fail(format!(
                        "{certificate_out}: subject differs from {name}'s"
                    )));
                }
                (name.clone(), spki(&name, &original)?)
            } else if let Ok((name, bytes)) = input(records, files, "subject-key") {
                (name.clone(), public_key_file(&name, bytes)?)
            } else {
                let (name, bytes) = input(records, files, "subject-csr")?;
                let csr =
                    strongroom_ca::Csr::parse(bytes).map_err(|e| fail(format!("{name}: {e}")))?;
                (name, csr.public_key)
            };
            if subject_key != expected {
                return Err(fail(format!(
                    "{certificate_out} does not certify the key of {role}"
                )));
            }
        }
        Action::Crl {
            signing,
            crl,
            crl_out,
        } => {
            let signed = step(records, "crl-signed")?;
            let algorithm = algorithm(signed)?;
            let (issuer_name, issuer_bytes) = input(records, files, "issuer")?;
            let (_, issuer) = certificate(&issuer_name, issuer_bytes)?;
            let issuer_key = spki(&issuer_name, &issuer)?;
            check_key_record(signed, &signing.label, &issuer_key)?;
            let der = pem_or_der(Path::new(crl_out), file(files, crl_out)?, "X509 CRL")?;
            check_crl(crl_out, &der, &issuer, &issuer_key, algorithm, crl.number)?;
            let list = CertificateList::from_der(&der).map_err(|e| fail(e.to_string()))?;
            let listed: Vec<(Vec<u8>, Option<u8>)> = list
                .tbs_cert_list
                .revoked_certificates
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    let reason = r.crl_entry_extensions.as_ref().and_then(|exts| {
                        exts.iter()
                            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_REASONS)
                            .and_then(|e| {
                                x509_cert::ext::pkix::crl::CrlReason::from_der(
                                    e.extn_value.as_bytes(),
                                )
                                .ok()
                            })
                            .map(|r| r as u8)
                    });
                    (r.serial_number.as_bytes().to_vec(), reason)
                })
                .collect();
            if listed.len() != crl.revoked.len() {
                return Err(fail(format!(
                    "{crl_out} lists {} certificates, {CONFIG_COPY} {}",
                    listed.len(),
                    crl.revoked.len()
                )));
            }
            for (i, revoked) in crl.revoked.iter().enumerate() {
                let serial = match &revoked.target {
                    RevokedTarget::Serial(s) => s.as_bytes().to_vec(),
                    RevokedTarget::Certificate(_) => {
                        let (name, bytes) = input(records, files, &format!("revoked-{}", i + 1))?;
                        let (_, cert) = certificate(&name, bytes)?;
                        cert.tbs_certificate.serial_number.as_bytes().to_vec()
                    }
                };
                let code = revoked.reason.code();
                let want = (code != 0).then_some(code);
                if !listed.contains(&(serial.clone(), want)) {
                    return Err(fail(format!(
                        "{crl_out} does not list serial {} with reason {}",
                        crate::files::hex(&serial),
                        revoked.reason
                    )));
                }
            }
        }
    }
    Ok(())
}

fn public_key_file(name: &str, bytes: &[u8]) -> Result<PublicKey, CeremonyError> {
    let der = pem_or_der(Path::new(name), bytes, "PUBLIC KEY")?;
    PublicKey::from_der(&der).map_err(|e| fail(format!("{name}: {e}")))
}

/// A root CRL: v2, signed by the issuer's key with `algorithm` (inner and
/// outer identifiers as the `ca` crate writes them), named after the issuer,
/// with its key identifier, the expected number, a critical Issuing
/// Distribution Point for CA certificates only, and thisUpdate before
/// nextUpdate.
fn check_crl(
    name: &str,
    der: &[u8],
    issuer: &Certificate,
    issuer_key: &PublicKey,
    algorithm: SignatureAlgorithm,
    number: u64,
) -> Result<(), CeremonyError> {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_ISSUING_DISTRIBUTION_POINT,
    };
    use x509_cert::ext::pkix::AuthorityKeyIdentifier;
    use x509_cert::ext::pkix::crl::CrlNumber;
    use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;

    let bad = |what: &str| fail(format!("{name}: {what}"));
    let list = CertificateList::from_der(der).map_err(|e| bad(&e.to_string()))?;
    if list.to_der().ok().as_deref() != Some(der) {
        return Err(bad("not canonical DER"));
    }
    let tbs = &list.tbs_cert_list;
    if tbs.version != x509_cert::Version::V2 {
        return Err(bad("not a version 2 CRL"));
    }
    let expected_alg = signature_algorithm_der(algorithm)?;
    if tbs.signature.to_der().ok() != Some(expected_alg.clone())
        || list.signature_algorithm.to_der().ok() != Some(expected_alg)
    {
        return Err(bad(&format!("signature algorithm is not {algorithm}")));
    }
    if tbs.issuer != issuer.tbs_certificate.subject {
        return Err(bad("issuer differs from the root certificate's subject"));
    }
    let signed = signed_part(der).map_err(|e| bad(&e))?;
    let signature = list
        .signature
        .as_bytes()
        .ok_or_else(|| bad("signature has unused bits"))?;
    issuer_key
        .verify(algorithm, signed, signature)
        .map_err(|_| bad("signature does not verify under the root's key"))?;
    let next = tbs
        .next_update
        .ok_or_else(|| bad("no nextUpdate"))?
        .to_system_time();
    if next <= tbs.this_update.to_system_time() {
        return Err(bad("nextUpdate is not after thisUpdate"));
    }
    let extensions = tbs.crl_extensions.as_deref().unwrap_or_default();
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);
    let crl_number = find(ID_CE_CRL_NUMBER)
        .and_then(|e| CrlNumber::from_der(e.extn_value.as_bytes()).ok())
        .ok_or_else(|| bad("no CRL number"))?;
    let mut expected_number = number.to_be_bytes().to_vec();
    while expected_number.len() > 1 && expected_number[0] == 0 {
        expected_number.remove(0);
    }
    let got = crl_number.0.as_bytes();
    let got = got
        .strip_prefix(&[0])
        .filter(|g| !g.is_empty())
        .unwrap_or(got);
    if got != expected_number.as_slice() {
        return Err(bad(&format!("CRL number is not {number}")));
    }
    let root_key_id = issuer
        .tbs_certificate
        .get::<SubjectKeyIdentifier>()
        .ok()
        .flatten()
        .map(|(_, ski)| ski.0.as_bytes().to_vec());
    let aki = find(ID_CE_AUTHORITY_KEY_IDENTIFIER)
        .and_then(|e| AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
        .and_then(|aki| aki.key_identifier.map(|k| k.as_bytes().to_vec()));
    if aki.is_none() || aki != root_key_id {
        return Err(bad(
            "authorityKeyIdentifier is not the root's key identifier",
        ));
    }
    let idp = find(ID_CE_ISSUING_DISTRIBUTION_POINT)
        .ok_or_else(|| bad("no Issuing Distribution Point (an ARL has one)"))?;
    let parsed = IssuingDistributionPoint::from_der(idp.extn_value.as_bytes())
        .map_err(|_| bad("Issuing Distribution Point does not decode"))?;
    if !idp.critical || !parsed.only_contains_ca_certs || parsed.only_contains_user_certs {
        return Err(bad(
            "Issuing Distribution Point is not a critical onlyContainsCACerts",
        ));
    }
    Ok(())
}
