//! CRLs end to end against a real SoftHSM2 token: built by the streaming
//! builder, signed in the HSM for every issuer algorithm, and checked by
//! independent verifiers (`openssl crl -verify`, `openssl verify -crl_check`,
//! gnutls `certtool --verify-crl`, pkilint's `lint_crl`) and by decoding with
//! x509-cert; every refusal signs nothing. The authority publishes complete
//! CRLs that name their delta CRLs, and delta CRLs of exactly the changes
//! since their base, which OpenSSL applies (`-use_deltas`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL, ID_CE_ISSUING_DISTRIBUTION_POINT,
};
use der::{Decode, Encode};
use strongroom_ca::{
    CaCertificateRequest, CaError, CrlRequest, CrlScope, Csr, DistributionUrls, IssueRequest,
    Issuer, RevocationReason, RevokedEntry, Serial, StoreError, build_crl, pem, self_signed_root,
};
use strongroom_hsm::{HsmSigner, KeySpec, PublicKey, SignatureAlgorithm, Signer};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
use x509_cert::time::Time;

mod common;
use common::*;

const DAY: Duration = Duration::from_secs(86_400);

/// The reasons a complete CRL may carry, with OpenSSL's `-text` spelling
/// (`None`: no reason code extension, as RFC 5280 asks for `unspecified`).
const REASONS: [(RevocationReason, Option<&str>); 8] = [
    (RevocationReason::Unspecified, None),
    (RevocationReason::KeyCompromise, Some("Key Compromise")),
    (RevocationReason::CaCompromise, Some("CA Compromise")),
    (
        RevocationReason::AffiliationChanged,
        Some("Affiliation Changed"),
    ),
    (RevocationReason::Superseded, Some("Superseded")),
    (
        RevocationReason::CessationOfOperation,
        Some("Cessation Of Operation"),
    ),
    (RevocationReason::CertificateHold, Some("Certificate Hold")),
    (
        RevocationReason::PrivilegeWithdrawn,
        Some("Privilege Withdrawn"),
    ),
];

fn unix(t: SystemTime) -> i64 {
    i64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

/// A positive 16-byte serial (no redundant leading zero) from the token's RNG.
fn random_serial() -> Serial {
    let mut bytes = token().random(16).expect("random");
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Serial::from_bytes(bytes).expect("serial")
}

/// A deterministic, well-spread 16-byte serial for generated entries.
fn serial_number(i: u64) -> Serial {
    let digest = ring::digest::digest(&ring::digest::SHA256, &i.to_be_bytes());
    let mut bytes = digest.as_ref()[..16].to_vec();
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Serial::from_bytes(bytes).expect("serial")
}

fn entry(serial: Serial, revoked_at: i64, reason: RevocationReason) -> RevokedEntry {
    RevokedEntry {
        serial,
        revoked_at,
        reason,
    }
}

/// One entry per reason in [`REASONS`], revoked an hour apart in the past.
fn sample_entries() -> Vec<RevokedEntry> {
    let now = unix(SystemTime::now());
    REASONS
        .iter()
        .enumerate()
        .map(|(i, (reason, _))| entry(random_serial(), now - 3600 * (i as i64 + 1), *reason))
        .collect()
}

fn ok(entries: Vec<RevokedEntry>) -> impl Iterator<Item = Result<RevokedEntry, CaError>> {
    entries.into_iter().map(Ok)
}

fn request(number: u64, scope: CrlScope<'_>) -> CrlRequest<'_> {
    let now = SystemTime::now();
    CrlRequest {
        number,
        this_update: now - Duration::from_secs(60),
        next_update: now + 7 * DAY,
        scope,
        delta_of: None,
        freshest: None,
    }
}

/// Writes `der` as `name.der` and `name.pem`; returns both paths.
fn write_crl(dir: &Path, name: &str, der: &[u8]) -> (PathBuf, PathBuf) {
    let der_path = dir.join(format!("{name}.der"));
    std::fs::write(&der_path, der).expect("write");
    let pem_path = write(dir, &format!("{name}.pem"), &pem("X509 CRL", der));
    (der_path, pem_path)
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `openssl crl -verify` against the issuer certificate must say "verify OK".
fn openssl_crl_verify(crl_der: &Path, issuer_pem: &Path) {
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(crl_der),
        "-CAfile",
        p(issuer_pem),
        "-noout",
        "-verify",
    ]);
    let text = output_text(&out);
    assert!(
        out.status.success() && text.contains("verify OK"),
        "openssl crl -verify {}: {text}",
        crl_der.display()
    );
}

fn openssl_crl_text(crl_der: &Path) -> String {
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(crl_der),
        "-noout",
        "-text",
    ]);
    assert!(
        out.status.success(),
        "openssl crl -text: {}",
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn certtool(args: &[&str]) -> std::process::Output {
    Command::new("certtool")
        .args(args)
        .output()
        .expect("certtool (gnutls-bin) is installed")
}

/// gnutls parses the CRL, finds `entries` entries, and verifies its signature.
fn certtool_checks(crl_der: &Path, crl_pem: &Path, issuer_pem: &Path, entries: usize) {
    let out = certtool(&["--crl-info", "--inder", "--infile", p(crl_der)]);
    let info = output_text(&out);
    assert!(out.status.success(), "certtool --crl-info: {info}");
    let count = match entries {
        0 => "No revoked certificates.".to_string(),
        n => format!("Revoked certificates ({n})"),
    };
    assert!(
        info.contains(&count),
        "certtool --crl-info does not count {entries} entries:\n{info}"
    );
    let out = certtool(&[
        "--verify-crl",
        "--load-ca-certificate",
        p(issuer_pem),
        "--infile",
        p(crl_pem),
    ]);
    let text = output_text(&out);
    assert!(
        out.status.success() && text.contains("Verification output: Verified."),
        "certtool --verify-crl: {text}"
    );
}

/// pkilint's `lint_crl -t <kind> -p PKIX`: no ERROR or FATAL finding outside `tolerated`.
fn lint_crl(crl_pem: &Path, kind: &str, tolerated: &[&str]) {
    let out = Command::new(pkilint_bin("lint_crl"))
        .args(["lint", "-t", kind, "-p", "PKIX", "-s", "ERROR"])
        .arg(crl_pem)
        .output()
        .expect("run lint_crl");
    let report = output_text(&out);
    // Findings are indented lines "code (SEVERITY)[: message]".
    let findings: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let unexpected: Vec<&&str> = findings.iter().filter(|f| !tolerated.contains(f)).collect();
    assert!(
        unexpected.is_empty() && (out.status.success() || !findings.is_empty()),
        "lint_crl -t {kind} found problems in {}:\n{report}",
        crl_pem.display()
    );
}

/// The blocks of `openssl crl -text` output, one per revoked entry.
fn text_entries(text: &str) -> Vec<&str> {
    text.split("Serial Number: ").skip(1).collect()
}

/// Checks every entry's serial and reason in `openssl crl -text` output.
fn assert_text_lists(text: &str, entries: &[RevokedEntry], reason_text: &[Option<&str>]) {
    let blocks = text_entries(text);
    assert_eq!(blocks.len(), entries.len(), "{text}");
    for ((block, entry), reason) in blocks.iter().zip(entries).zip(reason_text) {
        let serial = entry.serial.to_hex().to_uppercase();
        assert!(block.starts_with(&serial), "{serial} not next in\n{text}");
        match reason {
            Some(reason) => assert!(
                block.contains("CRL Reason Code") && block.contains(reason),
                "{serial}: reason {reason} missing in\n{block}"
            ),
            None => assert!(
                !block.contains("CRL Reason Code"),
                "{serial}: an unspecified reason was written:\n{block}"
            ),
        }
    }
}

fn decode(der: &[u8]) -> CertificateList {
    let crl = CertificateList::from_der(der).expect("x509-cert decodes the CRL");
    assert_eq!(crl.to_der().expect("re-encode"), der, "not canonical DER");
    crl
}

/// The root issuer of a [`hierarchy`] (its key is found again in the token).
fn root_issuer(label: &str, root_der: &[u8], algorithm: SignatureAlgorithm) -> Issuer {
    let root = Certificate::from_der(root_der).expect("root");
    let spki = root
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki");
    let public_key = PublicKey::from_der(&spki).expect("public key");
    let key = token()
        .find_key_pair(&format!("{label}-root"), &public_key)
        .expect("root key");
    Issuer::new(
        root_der,
        Arc::new(key.signer(algorithm).expect("root signer")),
    )
    .expect("root issuer")
}

#[test]
fn lint_crl_catches_a_bad_crl() {
    // Guards `lint_crl` above: a v1 CRL from `openssl ca -gencrl` without
    // cRLNumber or authority key identifier must fail it.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&dir.path().join("ca.key")),
        "-out",
        p(&dir.path().join("ca.pem")),
        "-subj",
        "/CN=bad",
        "-days",
        "10",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    write(dir.path(), "index.txt", "");
    let config = write(
        dir.path(),
        "ca.cnf",
        "[ca]\ndefault_ca = bad\n[bad]\ndatabase = index.txt\ncertificate = ca.pem\n\
         private_key = ca.key\ndefault_md = sha256\ndefault_crl_days = 7\n",
    );
    let out = Command::new("openssl")
        .current_dir(dir.path())
        .args(["ca", "-config", p(&config), "-gencrl", "-out", "bad.pem"])
        .output()
        .expect("openssl ca");
    assert!(out.status.success(), "{}", output_text(&out));
    let bad = dir.path().join("bad.pem");
    let caught = std::panic::catch_unwind(|| lint_crl(&bad, "CRL", &[]));
    assert!(caught.is_err(), "lint_crl did not flag a v1 CRL");
}

#[test]
fn every_issuer_algorithm_signs_a_crl_that_openssl_gnutls_and_pkilint_accept() {
    for (label, spec, algorithm) in ISSUER_ALGORITHMS {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, issuer) = hierarchy(&format!("crl-{label}"), spec, algorithm);
        let issuer_pem = write(dir.path(), "issuer.pem", &issuer.certificate_pem());
        let entries = sample_entries();
        let der = build_crl(&issuer, &request(7, CrlScope::Full), ok(entries.clone()))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let (crl_der, crl_pem) = write_crl(dir.path(), "full", &der);

        // The CRL is signed with the issuer's algorithm: the same identifier
        // its root used on the issuer certificate.
        let crl = decode(&der);
        let issuer_cert = Certificate::from_der(issuer.certificate_der()).expect("issuer");
        assert_eq!(crl.signature_algorithm, issuer_cert.signature_algorithm);
        assert_eq!(crl.tbs_cert_list.signature, issuer_cert.signature_algorithm);

        openssl_crl_verify(&crl_der, &issuer_pem);
        let text = openssl_crl_text(&crl_der);
        let reason_text: Vec<Option<&str>> = REASONS.iter().map(|(_, t)| *t).collect();
        assert_text_lists(&text, &entries, &reason_text);
        assert!(
            text.contains("X509v3 CRL Number: \n                7"),
            "{text}"
        );
        certtool_checks(&crl_der, &crl_pem, &issuer_pem, entries.len());
        // lint_crl checks no signature (it has no issuer certificate), so
        // the PSS false positive of pkilint's chain linter cannot occur here.
        lint_crl(&crl_pem, "CRL", &[]);
    }
}

#[test]
fn a_crl_decodes_to_exactly_what_was_requested() {
    let (_, issuer) = hierarchy(
        "crl-fields",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let issuer_cert = Certificate::from_der(issuer.certificate_der()).expect("issuer");
    let entries = sample_entries();
    // thisUpdate in 2049 is a UTCTime; nextUpdate in 2050 a GeneralizedTime.
    let this_update = SystemTime::UNIX_EPOCH + Duration::from_secs(2_524_600_000);
    let next_update = SystemTime::UNIX_EPOCH + Duration::from_secs(2_524_700_000);
    let req = CrlRequest {
        number: 0x1_0000_0001,
        this_update,
        next_update,
        scope: CrlScope::Full,
        delta_of: None,
        freshest: Some("http://127.0.0.1:8200/crl/delta.crl"),
    };
    let der = build_crl(&issuer, &req, ok(entries.clone())).expect("crl");
    let crl = decode(&der);
    let tbs = &crl.tbs_cert_list;

    assert_eq!(tbs.version, x509_cert::Version::V2);
    assert_eq!(tbs.signature, issuer_cert.signature_algorithm);
    assert_eq!(crl.signature_algorithm, issuer_cert.signature_algorithm);
    assert_eq!(tbs.issuer, issuer_cert.tbs_certificate.subject);
    assert!(matches!(tbs.this_update, Time::UtcTime(_)));
    assert_eq!(tbs.this_update.to_system_time(), this_update);
    let next = tbs.next_update.expect("nextUpdate");
    assert!(matches!(next, Time::GeneralTime(_)));
    assert_eq!(next.to_system_time(), next_update);

    let revoked = tbs.revoked_certificates.as_ref().expect("entries");
    assert_eq!(revoked.len(), entries.len());
    for (got, want) in revoked.iter().zip(&entries) {
        assert_eq!(got.serial_number.as_bytes(), want.serial.as_bytes());
        assert_eq!(unix(got.revocation_date.to_system_time()), want.revoked_at);
        match want.reason {
            RevocationReason::Unspecified => assert_eq!(got.crl_entry_extensions, None),
            reason => {
                let extensions = got.crl_entry_extensions.as_ref().expect("reason code");
                assert_eq!(extensions.len(), 1);
                assert_eq!(extensions[0].extn_id, ID_CE_CRL_REASONS);
                assert!(!extensions[0].critical);
                let code = CrlReason::from_der(extensions[0].extn_value.as_bytes()).expect("code");
                assert_eq!(code as u8, reason.code());
            }
        }
    }

    let extensions = tbs.crl_extensions.as_ref().expect("crlExtensions");
    let ids: Vec<_> = extensions.iter().map(|e| e.extn_id).collect();
    assert_eq!(
        ids,
        [
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            ID_CE_CRL_NUMBER,
            ID_CE_FRESHEST_CRL
        ]
    );
    assert!(extensions.iter().all(|e| !e.critical));
    let aki = AuthorityKeyIdentifier::from_der(extensions[0].extn_value.as_bytes()).expect("aki");
    let (_, ski) = issuer_cert
        .tbs_certificate
        .get::<SubjectKeyIdentifier>()
        .expect("decode")
        .expect("issuer SKI");
    assert_eq!(aki.key_identifier, Some(ski.0));
    assert_eq!(aki.authority_cert_issuer, None);
    let number = CrlNumber::from_der(extensions[1].extn_value.as_bytes()).expect("number");
    assert_eq!(number.0.as_bytes(), [0x01, 0, 0, 0, 0x01]);
    let freshest = FreshestCrl::from_der(extensions[2].extn_value.as_bytes()).expect("freshest");
    assert_eq!(freshest.0.len(), 1);
    assert_eq!(
        uri_of(freshest.0[0].distribution_point.as_ref()),
        Some("http://127.0.0.1:8200/crl/delta.crl".to_string())
    );

    // The signature is the issuer key's, over exactly the encoded TBS.
    let issuer_key = PublicKey::from_der(
        &issuer_cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .expect("spki"),
    )
    .expect("key");
    issuer_key
        .verify(
            SignatureAlgorithm::EcdsaP256Sha256,
            &tbs.to_der().expect("tbs"),
            crl.signature.as_bytes().expect("whole octets"),
        )
        .expect("signature verifies");
}

fn uri_of(name: Option<&DistributionPointName>) -> Option<String> {
    match name? {
        DistributionPointName::FullName(names) => match names.as_slice() {
            [GeneralName::UniformResourceIdentifier(uri)] => Some(uri.to_string()),
            _ => None,
        },
        DistributionPointName::NameRelativeToCRLIssuer(_) => None,
    }
}

fn idp_of(crl: &CertificateList) -> (bool, IssuingDistributionPoint) {
    let ext = crl
        .tbs_cert_list
        .crl_extensions
        .as_ref()
        .and_then(|e| {
            e.iter()
                .find(|e| e.extn_id == ID_CE_ISSUING_DISTRIBUTION_POINT)
        })
        .expect("issuing distribution point");
    (
        ext.critical,
        IssuingDistributionPoint::from_der(ext.extn_value.as_bytes()).expect("idp"),
    )
}

/// Runs `openssl verify -crl_check` on `leaf`; returns its combined output.
fn openssl_verify_with_crls(
    root: &Path,
    inter: &Path,
    leaf: &Path,
    crls: &[&Path],
    extra: &[&str],
) -> (bool, String) {
    let mut args = vec!["verify", "-CAfile", p(root), "-untrusted", p(inter)];
    args.extend_from_slice(extra);
    for crl in crls {
        args.extend(["-CRLfile", p(crl)]);
    }
    args.push(p(leaf));
    let out = openssl(&args);
    (out.status.success(), output_text(&out))
}

/// A leaf from `ca` (its CRL Distribution Point is `common::urls().crl`).
fn issue_leaf(dir: &Path, ca: &strongroom_ca::Authority) -> (Serial, PathBuf) {
    let csr = openssl_csr(
        dir,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=crl.test",
        "DNS:crl.test",
    );
    let issued = ca
        .prepare(IssueRequest::from_csr(
            "server",
            "tester",
            Csr::parse(&csr).expect("csr"),
            None,
        ))
        .and_then(|p| ca.issue(p))
        .expect("issued");
    let path = write(dir, "leaf.pem", &issued.certificate_pem());
    (issued.record.serial, path)
}

/// A P-256 root and intermediate in the token, one leaf issued by the
/// intermediate, and the three certificates written as PEM into `dir`:
/// `(intermediate issuer, leaf serial, leaf, root, intermediate)`.
fn p256_chain_with_leaf(dir: &Path, label: &str) -> (Issuer, Serial, PathBuf, PathBuf, PathBuf) {
    let (root_der, issuer) = hierarchy(label, KeySpec::EcP256, SignatureAlgorithm::EcdsaP256Sha256);
    let ca = authority(
        root_der.clone(),
        issuer.clone(),
        Arc::new(MemoryStore::default()),
    );
    let (serial, leaf) = issue_leaf(dir, &ca);
    let root = write(dir, "root.pem", &pem("CERTIFICATE", &root_der));
    let inter = write(
        dir,
        "inter.pem",
        &pem("CERTIFICATE", issuer.certificate_der()),
    );
    (issuer, serial, leaf, root, inter)
}

#[test]
fn a_partition_crl_names_its_distribution_point_and_openssl_matches_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (issuer, serial, leaf, root, inter) = p256_chain_with_leaf(dir.path(), "crl-part");
    let leaf_url = urls().crl.expect("crl url");
    let now = unix(SystemTime::now());

    let mut entries = sample_entries();
    entries.push(entry(
        serial.clone(),
        now - 120,
        RevocationReason::KeyCompromise,
    ));
    let der = build_crl(
        &issuer,
        &request(3, CrlScope::Partition { url: &leaf_url }),
        ok(entries.clone()),
    )
    .expect("partition crl");
    let (crl_der, crl_pem) = write_crl(dir.path(), "partition", &der);

    let (critical, idp) = idp_of(&decode(&der));
    assert!(critical, "the IDP must be critical");
    assert_eq!(
        uri_of(idp.distribution_point.as_ref()),
        Some(leaf_url.clone())
    );
    assert!(idp.only_contains_user_certs && !idp.only_contains_ca_certs);
    openssl_crl_verify(&crl_der, &inter);
    let text = openssl_crl_text(&crl_der);
    for needle in [
        "X509v3 Issuing Distribution Point: critical",
        &format!("URI:{leaf_url}"),
        "Only User Certificates",
    ] {
        assert!(text.contains(needle), "'{needle}' missing from\n{text}");
    }
    certtool_checks(&crl_der, &crl_pem, &inter, entries.len());
    lint_crl(&crl_pem, "CRL", &[]);

    // OpenSSL matches the IDP against the leaf's CRL Distribution Point: the
    // leaf is found revoked in its own partition's CRL...
    let (verified, out) =
        openssl_verify_with_crls(&root, &inter, &leaf, &[&crl_pem], &["-crl_check"]);
    assert!(!verified && out.contains("certificate revoked"), "{out}");

    // ...and a CRL for another partition does not count for it.
    let other = build_crl(
        &issuer,
        &request(
            4,
            CrlScope::Partition {
                url: "http://127.0.0.1:8200/crl/other.crl",
            },
        ),
        ok(vec![entry(
            serial,
            now - 120,
            RevocationReason::KeyCompromise,
        )]),
    )
    .expect("other partition");
    let (_, other_pem) = write_crl(dir.path(), "other", &other);
    let (verified, out) =
        openssl_verify_with_crls(&root, &inter, &leaf, &[&other_pem], &["-crl_check"]);
    assert!(!verified && out.contains("different CRL scope"), "{out}");
}

#[test]
fn a_delta_crl_carries_its_base_and_may_remove_a_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (issuer, serial, leaf, root, inter) = p256_chain_with_leaf(dir.path(), "crl-delta");
    let now = unix(SystemTime::now());

    // Base CRL 5: the leaf is on hold; it points at its deltas.
    let mut base_request = request(5, CrlScope::Full);
    base_request.freshest = Some("http://127.0.0.1:8200/crl/dev-delta.crl");
    let base = build_crl(
        &issuer,
        &base_request,
        ok(vec![entry(
            serial.clone(),
            now - 600,
            RevocationReason::CertificateHold,
        )]),
    )
    .expect("base");
    let (base_der, base_pem) = write_crl(dir.path(), "base", &base);
    openssl_crl_verify(&base_der, &inter);
    let text = openssl_crl_text(&base_der);
    assert!(
        text.contains("X509v3 Freshest CRL") && text.contains("dev-delta.crl"),
        "{text}"
    );
    lint_crl(&base_pem, "CRL", &[]);

    // Delta 6 against base 5: the hold is lifted, another certificate revoked.
    let mut delta_request = request(6, CrlScope::Full);
    delta_request.delta_of = Some(5);
    let other = random_serial();
    let entries = vec![
        entry(serial.clone(), now - 60, RevocationReason::RemoveFromCrl),
        entry(other, now - 60, RevocationReason::KeyCompromise),
    ];
    let delta = build_crl(&issuer, &delta_request, ok(entries.clone())).expect("delta");
    let (delta_der, delta_pem) = write_crl(dir.path(), "delta", &delta);
    let crl = decode(&delta);
    let indicator = crl
        .tbs_cert_list
        .crl_extensions
        .as_ref()
        .and_then(|e| e.iter().find(|e| e.extn_id == ID_CE_DELTA_CRL_INDICATOR))
        .expect("delta CRL indicator");
    assert!(indicator.critical);
    let base_number = BaseCrlNumber::from_der(indicator.extn_value.as_bytes()).expect("base");
    assert_eq!(base_number.0.as_bytes(), [5]);
    openssl_crl_verify(&delta_der, &inter);
    let text = openssl_crl_text(&delta_der);
    assert!(
        text.contains("X509v3 Delta CRL Indicator: critical"),
        "{text}"
    );
    assert_text_lists(
        &text,
        &entries,
        &[Some("Remove From CRL"), Some("Key Compromise")],
    );
    certtool_checks(&delta_der, &delta_pem, &inter, entries.len());
    lint_crl(&delta_pem, "CRL", &[]);

    // OpenSSL applies the delta to the base only when asked to: then the
    // delta's removeFromCRL lifts the base CRL's hold.
    let (verified, out) =
        openssl_verify_with_crls(&root, &inter, &leaf, &[&base_pem], &["-crl_check"]);
    assert!(!verified && out.contains("certificate revoked"), "{out}");
    let (verified, out) = openssl_verify_with_crls(
        &root,
        &inter,
        &leaf,
        &[&base_pem, &delta_pem],
        &["-crl_check", "-use_deltas"],
    );
    assert!(
        verified,
        "openssl did not apply the delta's removeFromCRL: {out}"
    );

    // A partition's delta carries the partition's IDP too.
    let url = urls().crl.expect("url");
    let mut partition_delta = request(8, CrlScope::Partition { url: &url });
    partition_delta.delta_of = Some(7);
    let der = build_crl(&issuer, &partition_delta, ok(entries)).expect("partition delta");
    let (der_path, pem_path) = write_crl(dir.path(), "partition-delta", &der);
    let (critical, idp) = idp_of(&decode(&der));
    assert!(critical && idp.only_contains_user_certs);
    openssl_crl_verify(&der_path, &inter);
    lint_crl(&pem_path, "CRL", &[]);
}

#[test]
fn an_authority_revocation_list_for_a_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
    let (root_der, issuer) = hierarchy("crl-arl", KeySpec::EcP256, algorithm);
    let root = root_issuer("crl-arl", &root_der, algorithm);
    let root_pem = write(dir.path(), "root.pem", &pem("CERTIFICATE", &root_der));
    let inter = Certificate::from_der(issuer.certificate_der()).expect("intermediate");
    let inter_serial = Serial::from_bytes(inter.tbs_certificate.serial_number.as_bytes().to_vec())
        .expect("serial");
    let now = unix(SystemTime::now());

    let entries = vec![entry(
        inter_serial,
        now - 60,
        RevocationReason::CaCompromise,
    )];
    let der = build_crl(&root, &request(1, CrlScope::Authority), ok(entries.clone())).expect("arl");
    let (arl_der, arl_pem) = write_crl(dir.path(), "arl", &der);
    let (critical, idp) = idp_of(&decode(&der));
    assert!(critical);
    assert!(idp.only_contains_ca_certs && !idp.only_contains_user_certs);
    assert_eq!(idp.distribution_point, None);
    openssl_crl_verify(&arl_der, &root_pem);
    let text = openssl_crl_text(&arl_der);
    assert!(text.contains("Only CA Certificates"), "{text}");
    assert_text_lists(&text, &entries, &[Some("CA Compromise")]);
    certtool_checks(&arl_der, &arl_pem, &root_pem, 1);
    lint_crl(&arl_pem, "ARL", &[]);

    // With the ARL and an (empty) CRL for leaves, OpenSSL finds the
    // intermediate revoked when it checks the whole chain.
    let ca = authority(
        root_der.clone(),
        issuer.clone(),
        Arc::new(MemoryStore::default()),
    );
    let (_, leaf) = issue_leaf(dir.path(), &ca);
    let leaves = build_crl(&issuer, &request(1, CrlScope::Full), ok(vec![])).expect("leaf crl");
    let (_, leaves_pem) = write_crl(dir.path(), "leaves", &leaves);
    let inter_pem = write(dir.path(), "inter.pem", &issuer.certificate_pem());
    let (verified, out) = openssl_verify_with_crls(
        &root_pem,
        &inter_pem,
        &leaf,
        &[&arl_pem, &leaves_pem],
        &["-crl_check_all"],
    );
    assert!(
        !verified && out.contains("certificate revoked") && out.contains("at 1 depth"),
        "{out}"
    );
}

#[test]
fn an_empty_crl_has_no_revoked_certificates_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, issuer) = hierarchy(
        "crl-empty",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let issuer_pem = write(dir.path(), "issuer.pem", &issuer.certificate_pem());
    let der = build_crl(&issuer, &request(1, CrlScope::Full), ok(vec![])).expect("empty crl");
    let (crl_der, crl_pem) = write_crl(dir.path(), "empty", &der);
    let crl = decode(&der);
    assert_eq!(crl.tbs_cert_list.revoked_certificates, None);
    openssl_crl_verify(&crl_der, &issuer_pem);
    let text = openssl_crl_text(&crl_der);
    assert!(text.contains("No Revoked Certificates."), "{text}");
    certtool_checks(&crl_der, &crl_pem, &issuer_pem, 0);
    lint_crl(&crl_pem, "CRL", &[]);
}

/// The token's signer, counting how often it is asked to sign.
struct CountingSigner {
    inner: HsmSigner,
    calls: AtomicUsize,
}

impl Signer for CountingSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }

    fn sign(&self, message: &[u8]) -> strongroom_hsm::Result<Vec<u8>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.sign(message)
    }
}

/// A self-signed CA (with cRLSign) whose signer counts its signatures.
fn counted_issuer(label: &str) -> (Issuer, Arc<CountingSigner>) {
    let key = token()
        .generate_key_pair(label, KeySpec::EcP256)
        .expect("key");
    let signer = key
        .signer(SignatureAlgorithm::EcdsaP256Sha256)
        .expect("signer");
    let now = SystemTime::now();
    let root_der = self_signed_root(
        &signer,
        &CaCertificateRequest {
            subject: &[("CN".into(), format!("{label} Root"))],
            public_key: key.public_key(),
            not_before: now - Duration::from_secs(60),
            not_after: now + 365 * DAY,
            path_len: None,
            serial: random_serial().as_bytes(),
            urls: &DistributionUrls::default(),
        },
    )
    .expect("root");
    let counting = Arc::new(CountingSigner {
        inner: signer,
        calls: AtomicUsize::new(0),
    });
    let issuer = Issuer::new(&root_der, Arc::clone(&counting) as Arc<dyn Signer>).expect("issuer");
    (issuer, counting)
}

fn lint_findings(result: Result<Vec<u8>, CaError>) -> String {
    match result {
        Err(CaError::Lint(findings)) => findings.join("\n"),
        other => panic!("expected a lint refusal, got {other:?}"),
    }
}

#[test]
fn refused_requests_and_entries_name_the_problem_and_sign_nothing() {
    let (issuer, signer) = counted_issuer("crl-refusals");
    let now = unix(SystemTime::now());
    let good = || ok(sample_entries());

    // Times out of order.
    let mut req = request(2, CrlScope::Full);
    req.next_update = req.this_update;
    let all = lint_findings(build_crl(&issuer, &req, good()));
    assert!(all.contains("thisUpdate is not before nextUpdate"), "{all}");

    // A delta whose base is not below its number, which also carries a
    // Freshest CRL: both problems are named.
    let mut req = request(5, CrlScope::Full);
    req.delta_of = Some(5);
    req.freshest = Some("http://127.0.0.1:8200/crl/delta.crl");
    let all = lint_findings(build_crl(&issuer, &req, good()));
    assert!(
        all.contains("base number 5 is not below its cRLNumber 5"),
        "{all}"
    );
    assert!(all.contains("must not carry a Freshest CRL"), "{all}");

    // No delta ARLs.
    let mut req = request(5, CrlScope::Authority);
    req.delta_of = Some(4);
    let all = lint_findings(build_crl(&issuer, &req, good()));
    assert!(all.contains("authority revocation list"), "{all}");

    // Bad distribution point URIs.
    for url in [
        "crl/p1.crl",
        "ftp://crl.example.com/p1.crl",
        "http://crl.example.com/p 1.crl",
        "http://crl.example.com/p1.crl\n",
        "https:///p1.crl",
    ] {
        let all = lint_findings(build_crl(
            &issuer,
            &request(2, CrlScope::Partition { url }),
            good(),
        ));
        assert!(all.contains("issuing distribution point"), "{url:?}: {all}");
        let mut req = request(2, CrlScope::Full);
        req.freshest = Some(url);
        let all = lint_findings(build_crl(&issuer, &req, good()));
        assert!(all.contains("freshest CRL"), "{url:?}: {all}");
    }

    // removeFromCRL only in a delta; aACompromise never. Each refused
    // serial is named.
    let hold_lifted = random_serial();
    let mut entries = sample_entries();
    entries.push(entry(
        hold_lifted.clone(),
        now - 5,
        RevocationReason::RemoveFromCrl,
    ));
    let all = lint_findings(build_crl(&issuer, &request(2, CrlScope::Full), ok(entries)));
    assert!(
        all.contains(&hold_lifted.to_hex())
            && all.contains("removeFromCRL is only allowed in a delta CRL"),
        "{all}"
    );
    let attribute = random_serial();
    let mut req = request(3, CrlScope::Full);
    req.delta_of = Some(2);
    let all = lint_findings(build_crl(
        &issuer,
        &req,
        ok(vec![entry(
            attribute.clone(),
            now - 5,
            RevocationReason::AaCompromise,
        )]),
    ));
    assert!(
        all.contains(&attribute.to_hex()) && all.contains("aACompromise"),
        "{all}"
    );
    // A revocation date that cannot be written.
    let all = lint_findings(build_crl(
        &issuer,
        &request(2, CrlScope::Full),
        ok(vec![entry(
            random_serial(),
            -5,
            RevocationReason::KeyCompromise,
        )]),
    ));
    assert!(all.contains("before 1970"), "{all}");

    // The entry source failing stops the build with its own error.
    let failing = sample_entries()
        .into_iter()
        .map(Ok)
        .chain(std::iter::once(Err(StoreError::Unavailable(
            "disk I/O error".into(),
        ))))
        .chain(sample_entries().into_iter().map(Ok));
    match build_crl(&issuer, &request(2, CrlScope::Full), failing) {
        Err(CaError::Store(StoreError::Unavailable(why))) => assert_eq!(why, "disk I/O error"),
        other => panic!("expected the store's error, got {other:?}"),
    }

    assert_eq!(
        signer.calls.load(Ordering::SeqCst),
        0,
        "a refused CRL was sent to the HSM"
    );
    build_crl(&issuer, &request(2, CrlScope::Full), good()).expect("a good CRL");
    assert_eq!(signer.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn an_issuer_without_crl_sign_is_refused() {
    use der::asn1::{BitString, OctetString};
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};

    let key = token()
        .generate_key_pair("crl-no-crlsign", KeySpec::EcP256)
        .expect("key");
    let signer = key
        .signer(SignatureAlgorithm::EcdsaP256Sha256)
        .expect("signer");
    let ext = |id, critical, value: Vec<u8>| Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(value).expect("octets"),
    };
    let name: x509_cert::name::Name = "CN=No cRLSign".parse().expect("name");
    let algorithm = spki::AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
        parameters: None,
    };
    let tbs = x509_cert::TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: x509_cert::serial_number::SerialNumber::new(random_serial().as_bytes())
            .expect("serial"),
        signature: algorithm.clone(),
        issuer: name.clone(),
        validity: x509_cert::time::Validity::from_now(365 * DAY).expect("validity"),
        subject: name,
        subject_public_key_info: spki::SubjectPublicKeyInfoOwned::from_der(key.public_key().der())
            .expect("spki"),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(vec![
            ext(
                const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                true,
                BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                }
                .to_der()
                .expect("bc"),
            ),
            ext(
                const_oid::db::rfc5280::ID_CE_KEY_USAGE,
                true,
                KeyUsage(KeyUsages::KeyCertSign.into())
                    .to_der()
                    .expect("ku"),
            ),
        ]),
    };
    let signature = signer.sign(&tbs.to_der().expect("tbs")).expect("sign");
    let certificate = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).expect("bits"),
    }
    .to_der()
    .expect("certificate");
    let issuer = Issuer::new(&certificate, Arc::new(signer)).expect("a CA that signs certificates");
    match build_crl(&issuer, &request(1, CrlScope::Full), ok(sample_entries())) {
        Err(CaError::BadIssuer(why)) => assert!(why.contains("cRLSign"), "{why}"),
        other => panic!("expected a refused issuer, got {other:?}"),
    }
}

#[test]
fn a_hundred_thousand_entry_crl_verifies_with_openssl() {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, issuer) = hierarchy(
        "crl-large",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let issuer_pem = write(dir.path(), "issuer.pem", &issuer.certificate_pem());
    let base = unix(SystemTime::now()) - 86_400;
    let reasons = [
        RevocationReason::KeyCompromise,
        RevocationReason::Superseded,
        RevocationReason::Unspecified,
        RevocationReason::CessationOfOperation,
    ];
    let generated = (0..N).map(|i| {
        Ok::<_, CaError>(entry(
            serial_number(i),
            base + (i % 86_400) as i64,
            reasons[(i % 4) as usize],
        ))
    });
    let started = Instant::now();
    let der = build_crl(&issuer, &request(9, CrlScope::Full), generated).expect("large CRL");
    println!(
        "{N} entries: {} bytes in {:?} (debug build)",
        der.len(),
        started.elapsed()
    );
    let (crl_der, _) = write_crl(dir.path(), "large", &der);
    openssl_crl_verify(&crl_der, &issuer_pem);
    let crl = decode(&der);
    let revoked = crl.tbs_cert_list.revoked_certificates.expect("entries");
    assert_eq!(revoked.len() as u64, N);
    let last = revoked.last().expect("last");
    assert_eq!(
        last.serial_number.as_bytes(),
        serial_number(N - 1).as_bytes()
    );
}

/// The entries of a CRL as `(serial, reason code)`, sorted by serial (no
/// reason code extension: `None`).
fn listed(crl: &CertificateList) -> Vec<(Serial, Option<u8>)> {
    let mut entries: Vec<(Serial, Option<u8>)> = crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|entry| {
            let serial =
                Serial::from_bytes(entry.serial_number.as_bytes().to_vec()).expect("serial");
            let reason = entry.crl_entry_extensions.as_ref().map(|extensions| {
                let ext = extensions
                    .iter()
                    .find(|e| e.extn_id == ID_CE_CRL_REASONS)
                    .expect("only reason codes are written");
                CrlReason::from_der(ext.extn_value.as_bytes()).expect("reason") as u8
            });
            (serial, reason)
        })
        .collect();
    entries.sort();
    entries
}

/// A CRL's extension by OID, with its criticality.
fn crl_extension(
    crl: &CertificateList,
    oid: const_oid::ObjectIdentifier,
) -> Option<(bool, Vec<u8>)> {
    crl.tbs_cert_list
        .crl_extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| (e.critical, e.extn_value.as_bytes().to_vec()))
}

/// The base CRL number a delta CRL names (its critical Delta CRL Indicator).
fn base_number_of(crl: &CertificateList) -> u64 {
    let (critical, value) =
        crl_extension(crl, ID_CE_DELTA_CRL_INDICATOR).expect("a Delta CRL Indicator");
    assert!(critical, "the Delta CRL Indicator must be critical");
    let base = BaseCrlNumber::from_der(&value).expect("base number");
    base.0
        .as_bytes()
        .iter()
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

/// The URL a complete CRL's Freshest CRL extension names.
fn freshest_of(crl: &CertificateList) -> String {
    let (critical, value) = crl_extension(crl, ID_CE_FRESHEST_CRL).expect("a Freshest CRL");
    assert!(!critical, "the Freshest CRL extension must be non-critical");
    let freshest = FreshestCrl::from_der(&value).expect("freshest");
    assert_eq!(freshest.0.len(), 1);
    uri_of(freshest.0[0].distribution_point.as_ref()).expect("a URI")
}

/// Issues a leaf from `ca` and keeps it as `<name>.pem` in `dir`.
fn issue_named_leaf(dir: &Path, ca: &strongroom_ca::Authority, name: &str) -> (Serial, PathBuf) {
    let (serial, path) = issue_leaf(dir, ca);
    let named = dir.join(format!("{name}.pem"));
    std::fs::rename(&path, &named).expect("rename");
    (serial, named)
}

const DELTA_URL: &str = "http://127.0.0.1:8200/crl/dev-delta.crl";

#[test]
fn an_authority_publishes_deltas_of_the_changes_since_their_base() {
    use RevocationReason::{CertificateHold, KeyCompromise, RemoveFromCrl, Superseded};
    let dir = tempfile::tempdir().expect("tempdir");
    let (root_der, issuer) = hierarchy(
        "crl-publish-delta",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let ca = authority(
        root_der.clone(),
        issuer.clone(),
        Arc::new(MemoryStore::default()),
    )
    .with_delta_crls(DELTA_URL)
    .expect("delta CRLs");
    let series = strongroom_ca::CrlSeries::All;
    let (week, hour) = (7 * DAY, Duration::from_secs(3_600));
    let root = write(dir.path(), "root.pem", &pem("CERTIFICATE", &root_der));
    let inter = write(dir.path(), "inter.pem", &issuer.certificate_pem());

    // No base yet: refused, saying so.
    match ca.publish_delta_crl(series, hour) {
        Err(CaError::BadRequest(why)) => assert!(why.contains("no complete CRL"), "{why}"),
        other => panic!("expected a refusal without a base, got {other:?}"),
    }

    let (compromised, _) = issue_named_leaf(dir.path(), &ca, "compromised");
    let (held, held_pem) = issue_named_leaf(dir.path(), &ca, "held");
    let (superseded, superseded_pem) = issue_named_leaf(dir.path(), &ca, "superseded");
    let (untouched, untouched_pem) = issue_named_leaf(dir.path(), &ca, "untouched");
    let revoke = |serial: &Serial, reason| {
        ca.revoke(serial, reason, None).expect("revoke");
    };
    revoke(&compromised, KeyCompromise);
    revoke(&held, CertificateHold);

    // The base: both revocations, and a Freshest CRL naming the deltas.
    let base = ca.publish_crl(series, week).expect("base");
    assert_eq!(base.delta_of, None);
    let base_crl = decode(&base.der);
    assert_eq!(freshest_of(&base_crl), DELTA_URL);
    let mut expected = vec![
        (compromised.clone(), Some(KeyCompromise.code())),
        (held.clone(), Some(CertificateHold.code())),
    ];
    expected.sort();
    assert_eq!(listed(&base_crl), expected);
    let (base_der, base_pem) = write_crl(dir.path(), "base", &base.der);
    openssl_crl_verify(&base_der, &inter);
    lint_crl(&base_pem, "CRL", &[]);

    // Since the base: the hold is lifted and another certificate revoked.
    revoke(&held, RemoveFromCrl);
    revoke(&superseded, Superseded);
    let delta = ca.publish_delta_crl(series, hour).expect("delta");
    assert_eq!(delta.delta_of, Some(base.number));
    assert!(
        delta.number > base.number,
        "{} > {}",
        delta.number,
        base.number
    );
    assert!(delta.this_update >= base.this_update);
    assert_eq!(delta.next_update - delta.this_update, 3_600);
    assert_eq!(
        ca.store()
            .latest_crl(issuer.id(), series, true)
            .expect("read")
            .expect("saved"),
        delta
    );
    let delta_crl = decode(&delta.der);
    assert_eq!(base_number_of(&delta_crl), base.number);
    assert!(crl_extension(&delta_crl, ID_CE_FRESHEST_CRL).is_none());
    assert!(crl_extension(&delta_crl, ID_CE_ISSUING_DISTRIBUTION_POINT).is_none());
    // Only the changes, the lifted hold as removeFromCRL at the hold's time.
    let mut expected = vec![
        (held.clone(), Some(RemoveFromCrl.code())),
        (superseded.clone(), Some(Superseded.code())),
    ];
    expected.sort();
    assert_eq!(listed(&delta_crl), expected);
    let hold_time = base_crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .find(|e| e.serial_number.as_bytes() == held.as_bytes())
        .expect("held on the base")
        .revocation_date;
    let removal_time = delta_crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .find(|e| e.serial_number.as_bytes() == held.as_bytes())
        .expect("removed in the delta")
        .revocation_date;
    assert_eq!(removal_time, hold_time);
    assert!(!listed(&delta_crl).iter().any(|(s, _)| s == &untouched));

    let (delta_der, delta_pem) = write_crl(dir.path(), "delta", &delta.der);
    openssl_crl_verify(&delta_der, &inter);
    let text = openssl_crl_text(&delta_der);
    assert!(
        text.contains("X509v3 Delta CRL Indicator: critical"),
        "{text}"
    );
    lint_crl(&delta_pem, "CRL", &[]);

    // OpenSSL applies the delta to its base: the lifted hold is valid, the
    // certificate revoked since the base is not, the untouched one is.
    let with_delta = |leaf: &Path| {
        openssl_verify_with_crls(
            &root,
            &inter,
            leaf,
            &[&base_pem, &delta_pem],
            &["-crl_check", "-use_deltas"],
        )
    };
    let (verified, out) = with_delta(&held_pem);
    assert!(verified, "the lifted hold: {out}");
    let (verified, out) = with_delta(&superseded_pem);
    assert!(!verified && out.contains("certificate revoked"), "{out}");
    let (verified, out) = with_delta(&untouched_pem);
    assert!(verified, "{out}");

    // Another delta against the same base: same changes, a new number, a
    // later thisUpdate.
    let again = ca.publish_delta_crl(series, hour).expect("again");
    assert_eq!(again.delta_of, Some(base.number));
    assert_eq!(again.number, delta.number + 1);
    assert!(again.this_update > delta.this_update);
    assert_eq!(listed(&decode(&again.der)), listed(&delta_crl));

    // A new complete CRL holds the changes; its delta starts empty.
    let next_base = ca.publish_crl(series, week).expect("next base");
    assert!(next_base.number > again.number);
    let mut expected = vec![
        (compromised, Some(KeyCompromise.code())),
        (superseded, Some(Superseded.code())),
    ];
    expected.sort();
    assert_eq!(listed(&decode(&next_base.der)), expected);
    let empty = ca.publish_delta_crl(series, hour).expect("empty delta");
    assert_eq!(empty.delta_of, Some(next_base.number));
    let empty_crl = decode(&empty.der);
    assert_eq!(empty_crl.tbs_cert_list.revoked_certificates, None);
    let (empty_der, empty_pem) = write_crl(dir.path(), "empty-delta", &empty.der);
    openssl_crl_verify(&empty_der, &inter);
    lint_crl(&empty_pem, "CRL", &[]);
}

#[test]
fn a_partitions_delta_carries_the_partitions_distribution_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root_der, issuer) = hierarchy(
        "crl-partition-delta",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let template = "http://127.0.0.1:8200/crl/part-{partition}.crl";
    let delta_template = "http://127.0.0.1:8200/crl/part-{partition}-delta.crl";
    let ca = strongroom_ca::Authority::new(
        issuer.clone(),
        vec![root_der.clone()],
        vec![server_profile()],
        DistributionUrls {
            crl: Some(template.into()),
            ..urls()
        },
        Arc::new(MemoryStore::default()),
        Arc::new(strongroom_ca::SystemClock),
        Arc::new(token().clone()),
    )
    .with_crl_partitions(2)
    .expect("partitions")
    .with_delta_crls(delta_template)
    .expect("delta CRLs");
    let (serial, leaf) = issue_named_leaf(dir.path(), &ca, "leaf");
    let partition = ca
        .get(&serial)
        .expect("record")
        .crl_partition
        .expect("a partition");
    let series = strongroom_ca::CrlSeries::Partition(partition);
    let partition_url = template.replace("{partition}", &partition.to_string());
    let delta_url = delta_template.replace("{partition}", &partition.to_string());
    assert_eq!(ca.delta_crl_url(series), Some(delta_url.clone()));
    let root = write(dir.path(), "root.pem", &pem("CERTIFICATE", &root_der));
    let inter = write(dir.path(), "inter.pem", &issuer.certificate_pem());

    let base = ca.publish_crl(series, 7 * DAY).expect("base");
    let base_crl = decode(&base.der);
    assert_eq!(freshest_of(&base_crl), delta_url);
    // The whole issuer's complete CRL points at the whole issuer's delta.
    let all = ca
        .publish_crl(strongroom_ca::CrlSeries::All, 7 * DAY)
        .expect("all");
    assert_eq!(
        freshest_of(&decode(&all.der)),
        "http://127.0.0.1:8200/crl/part-all-delta.crl"
    );

    ca.revoke(&serial, RevocationReason::KeyCompromise, None)
        .expect("revoke");
    let delta = ca
        .publish_delta_crl(series, Duration::from_secs(3_600))
        .expect("partition delta");
    let delta_crl = decode(&delta.der);
    assert_eq!(base_number_of(&delta_crl), base.number);
    assert_eq!(
        listed(&delta_crl),
        vec![(serial.clone(), Some(RevocationReason::KeyCompromise.code()))]
    );
    // The same critical IDP as the partition's complete CRL.
    let (critical, idp) = idp_of(&delta_crl);
    assert!(critical && idp.only_contains_user_certs);
    assert_eq!(idp, idp_of(&base_crl).1);
    assert_eq!(
        uri_of(idp.distribution_point.as_ref()),
        Some(partition_url.clone())
    );

    let (base_der, base_pem) = write_crl(dir.path(), "base", &base.der);
    let (delta_der, delta_pem) = write_crl(dir.path(), "delta", &delta.der);
    openssl_crl_verify(&base_der, &inter);
    openssl_crl_verify(&delta_der, &inter);
    let text = openssl_crl_text(&delta_der);
    for needle in [
        "X509v3 Delta CRL Indicator: critical",
        "X509v3 Issuing Distribution Point: critical",
        &format!("URI:{partition_url}"),
    ] {
        assert!(text.contains(needle), "'{needle}' missing from\n{text}");
    }
    lint_crl(&base_pem, "CRL", &[]);
    lint_crl(&delta_pem, "CRL", &[]);
    // OpenSSL matches both to the leaf's distribution point and applies the
    // delta: the leaf, valid on the base alone, is revoked.
    let (verified, out) =
        openssl_verify_with_crls(&root, &inter, &leaf, &[&base_pem], &["-crl_check"]);
    assert!(verified, "{out}");
    let (verified, out) = openssl_verify_with_crls(
        &root,
        &inter,
        &leaf,
        &[&base_pem, &delta_pem],
        &["-crl_check", "-use_deltas"],
    );
    assert!(!verified && out.contains("certificate revoked"), "{out}");
}

#[test]
fn delta_crl_urls_are_checked() {
    let (root_der, issuer) = hierarchy(
        "crl-delta-urls",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let with_urls = |crl: Option<&str>, partitions: u32| {
        strongroom_ca::Authority::new(
            issuer.clone(),
            vec![root_der.clone()],
            vec![server_profile()],
            DistributionUrls {
                crl: crl.map(str::to_string),
                ..urls()
            },
            Arc::new(MemoryStore::default()),
            Arc::new(strongroom_ca::SystemClock),
            Arc::new(token().clone()),
        )
        .with_crl_partitions(partitions)
        .expect("partitions")
    };
    let refused =
        |ca: strongroom_ca::Authority, delta: &str, says: &str| match ca.with_delta_crls(delta) {
            Err(CaError::BadIssuer(why)) => assert!(why.contains(says), "{delta}: {why}"),
            other => panic!("{delta}: expected a refusal, got {other:?}"),
        };
    let plain = "http://127.0.0.1:8200/crl/dev.crl";
    let parted = "http://127.0.0.1:8200/crl/p-{partition}.crl";
    refused(with_urls(None, 0), DELTA_URL, "need a CRL");
    refused(with_urls(Some(plain), 0), plain, "must differ");
    refused(
        with_urls(Some(plain), 0),
        "http://127.0.0.1:8200/crl/p-{partition}-delta.crl",
        "{partition}",
    );
    refused(
        with_urls(Some(parted), 4),
        "http://127.0.0.1:8200/crl/delta.crl",
        "{partition}",
    );
    refused(
        with_urls(Some(plain), 0),
        "ftp://127.0.0.1/crl/dev-delta.crl",
        "scheme",
    );
    let ca = with_urls(Some(plain), 0);
    assert_eq!(ca.delta_crl_url(strongroom_ca::CrlSeries::All), None);
    let ca = ca.with_delta_crls(DELTA_URL).expect("delta CRLs");
    assert_eq!(ca.delta_crl_url_template(), Some(DELTA_URL));
    assert_eq!(
        ca.delta_crl_url(strongroom_ca::CrlSeries::All).as_deref(),
        Some(DELTA_URL)
    );
}
