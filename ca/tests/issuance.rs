//! Issuance end to end against a real SoftHSM2 token: a root and an
//! intermediate generated in the token for every issuer algorithm, leaves
//! issued from OpenSSL-made CSRs, each certificate checked by `openssl verify`
//! and by pkilint's RFC 5280 linters; bad requests refused with every problem
//! named and nothing stored.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};

use strongroom_ca::{Authority, CaError, CertStatus, CertStore, Csr, IssueRequest, Issuer, pem};
use strongroom_hsm::{KeySpec, SignatureAlgorithm, Signer};

mod common;
use common::*;

#[test]
fn pkilint_catches_a_bad_certificate() {
    // Guards the check above: a CA certificate without keyCertSign and with a
    // non-critical basicConstraints must make pkilint (and so this helper) fail.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("bad.key");
    let cert = dir.path().join("bad.pem");
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&key),
        "-out",
        p(&cert),
        "-subj",
        "/CN=bad",
        "-days",
        "10",
        "-addext",
        "keyUsage=digitalSignature",
        "-addext",
        "basicConstraints=CA:TRUE",
    ]);
    assert!(out.status.success());
    let caught = std::panic::catch_unwind(|| pkilint("lint_pkix_cert", &[&cert], &[]));
    assert!(caught.is_err(), "pkilint did not flag a bad certificate");
}

#[test]
fn every_issuer_algorithm_issues_what_openssl_and_pkilint_accept() {
    let cases = ISSUER_ALGORITHMS;

    for (label, spec, algorithm) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root_der, issuer) = hierarchy(label, spec, algorithm);
        let inter_der = issuer.certificate_der().to_vec();
        let store = Arc::new(MemoryStore::default());
        let ca = authority(root_der.clone(), issuer, Arc::clone(&store));

        let csr = openssl_csr(
            dir.path(),
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "/CN=api.test",
            "DNS:api.test,DNS:www.api.test,IP:127.0.0.1",
        );
        let csr = Csr::parse(&csr).expect("csr parses");
        let prepared = ca
            .prepare(IssueRequest::from_csr(
                "server",
                "tester",
                csr,
                Some(Duration::from_secs(30 * 86_400)),
            ))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        // Record before sign: the pending record exists before the HSM signs.
        let pending = store
            .get(ca.issuer().id(), &prepared.record().serial)
            .expect("get");
        assert_eq!(pending.map(|r| r.status), Some(CertStatus::Pending));
        let issued = ca
            .issue(prepared)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            store
                .get(ca.issuer().id(), &issued.record.serial)
                .expect("get")
                .map(|r| r.status),
            Some(CertStatus::Issued)
        );
        assert!(issued.record.serial.as_bytes().len() >= 8);

        let root = write(dir.path(), "root.pem", &pem("CERTIFICATE", &root_der));
        let inter = write(dir.path(), "inter.pem", &pem("CERTIFICATE", &inter_der));
        let leaf = write(dir.path(), "leaf.pem", &issued.certificate_pem());
        let out = openssl(&[
            "verify",
            "-CAfile",
            p(&root),
            "-untrusted",
            p(&inter),
            p(&leaf),
        ]);
        assert!(
            out.status.success(),
            "{label}: openssl verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text =
            String::from_utf8_lossy(&openssl(&["x509", "-in", p(&leaf), "-noout", "-text"]).stdout)
                .to_string();
        for needle in [
            "DNS:api.test",
            "DNS:www.api.test",
            "IP Address:127.0.0.1",
            "TLS Web Server Authentication",
            "CA:FALSE",
            "OCSP - URI:http://127.0.0.1:8200/ocsp",
            "CA Issuers - URI:http://127.0.0.1:8200/ca/issuing.crt",
            "URI:http://127.0.0.1:8200/crl/dev.crl",
            "O = Strongroom Tests",
        ] {
            assert!(
                text.contains(needle),
                "{label}: '{needle}' missing from\n{text}"
            );
        }
        for cert in [&root, &inter, &leaf] {
            pkilint("lint_pkix_cert", &[cert], &[]);
        }
        let tolerated: &[&str] = match algorithm {
            SignatureAlgorithm::RsaPssSha256 | SignatureAlgorithm::RsaPssSha384 => {
                &[PKILINT_PSS_FALSE_POSITIVE]
            }
            _ => &[],
        };
        pkilint(
            "lint_pkix_signer_signee_cert_chain",
            &[&root, &inter],
            tolerated,
        );
        pkilint(
            "lint_pkix_signer_signee_cert_chain",
            &[&inter, &leaf],
            tolerated,
        );
    }
}

#[test]
fn bad_requests_are_refused_with_every_problem_named_and_nothing_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root_der, issuer) = hierarchy("bad", KeySpec::EcP256, SignatureAlgorithm::EcdsaP256Sha256);
    let store = Arc::new(MemoryStore::default());
    let ca = authority(root_der, issuer, Arc::clone(&store));
    let stored = || store.0.lock().expect("lock").len();

    assert!(Csr::parse(b"garbage").is_err());
    assert!(
        Csr::parse(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        )
        .is_err()
    );
    assert!(
        Csr::parse(&vec![0x30; strongroom_ca::MAX_CSR_LEN + 1])
            .expect_err("oversized CSR")
            .contains("limit")
    );

    let good = openssl_csr(
        dir.path(),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=ok.test",
        "DNS:ok.test",
    );
    // Flip a byte of the signature (the last bytes of the DER CSR).
    let pem_text = String::from_utf8(good).expect("pem");
    let der = pem_to_der(&pem_text);
    let mut tampered = der.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    let err = Csr::parse(&tampered).expect_err("wrong signature");
    assert!(err.contains("signature does not verify"), "{err}");

    let rsa1024 = openssl_csr(
        dir.path(),
        &["-newkey", "rsa:1024"],
        "/CN=small.test",
        "DNS:small.test",
    );
    let err = Csr::parse(&rsa1024).expect_err("RSA-1024");
    assert!(err.contains("1024") && err.contains("2048"), "{err}");

    let csr = openssl_csr(
        dir.path(),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=evil.example.com",
        "DNS:evil.example.com,DNS:fine.test,IP:192.168.1.1",
    );
    let request = IssueRequest::from_csr(
        "server",
        "tester",
        Csr::parse(&csr).expect("parses"),
        Some(Duration::from_secs(400 * 86_400)),
    );
    match ca.prepare(request) {
        Err(CaError::Policy(violations)) => {
            let all = violations.join("\n");
            assert_eq!(violations.len(), 3, "{all}");
            assert!(all.contains("evil.example.com"), "{all}");
            assert!(all.contains("192.168.1.1"), "{all}");
            assert!(all.contains("exceeds the maximum of 90d"), "{all}");
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    let unknown = IssueRequest::from_csr("nope", "tester", Csr::parse(&csr).expect("parses"), None);
    assert!(matches!(
        ca.prepare(unknown),
        Err(CaError::UnknownProfile(_))
    ));
    assert_eq!(stored(), 0, "a refused request stored something");
}

#[test]
fn csr_key_type_comes_from_the_key_not_the_signature_algorithm() {
    // A P-256 key signing its CSR with SHA-384 (rcgen would call this a P-384 key).
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = openssl_csr(
        dir.path(),
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-sha384",
        ],
        "/CN=mixed.test",
        "DNS:mixed.test",
    );
    let csr = Csr::parse(&csr).expect("parses");
    assert_eq!(csr.public_key.spec(), KeySpec::EcP256);
    // A CSR asking to be a CA gets an end-entity certificate anyway.
    let ca_csr = openssl_csr(
        dir.path(),
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        "/CN=sneaky.test",
        "DNS:sneaky.test",
    );
    let (root_der, issuer) = hierarchy(
        "sneaky",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let ca = authority(root_der, issuer, Arc::new(MemoryStore::default()));
    let issued = ca
        .prepare(IssueRequest::from_csr(
            "server",
            "t",
            Csr::parse(&ca_csr).expect("csr"),
            None,
        ))
        .and_then(|p| ca.issue(p))
        .expect("issued");
    let path = write(dir.path(), "sneaky.pem", &issued.certificate_pem());
    let text =
        String::from_utf8_lossy(&openssl(&["x509", "-in", p(&path), "-noout", "-text"]).stdout)
            .to_string();
    assert!(
        text.contains("CA:FALSE") && !text.contains("CA:TRUE"),
        "{text}"
    );
}

#[test]
fn an_issuer_whose_key_does_not_match_its_certificate_is_refused() {
    let (_, issuer) = hierarchy(
        "mismatch",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let other = token()
        .generate_key_pair("mismatch-other", KeySpec::EcP256)
        .expect("key");
    let err = Issuer::new(
        issuer.certificate_der(),
        Arc::new(
            other
                .signer(SignatureAlgorithm::EcdsaP256Sha256)
                .expect("signer"),
        ),
    )
    .expect_err("mismatch");
    assert!(matches!(err, CaError::IssuerKeyMismatch), "{err}");
    let signer: &dyn Signer = &other
        .signer(SignatureAlgorithm::EcdsaP256Sha256)
        .expect("signer");
    assert_eq!(signer.algorithm(), SignatureAlgorithm::EcdsaP256Sha256);
}

fn pem_to_der(pem_text: &str) -> Vec<u8> {
    let (_, der) = der::pem::decode_vec(pem_text.as_bytes()).expect("pem");
    der
}

#[test]
fn too_many_names_and_a_long_common_name_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root_der, issuer) = hierarchy(
        "limits",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let store = Arc::new(MemoryStore::default());
    let ca = authority(root_der, issuer, Arc::clone(&store));

    let many: Vec<String> = (0..=strongroom_ca::MAX_NAMES)
        .map(|i| format!("DNS:h{i}.test"))
        .collect();
    let csr = openssl_csr(
        dir.path(),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=h0.test",
        &many.join(","),
    );
    let request = IssueRequest::from_csr("server", "t", Csr::parse(&csr).expect("parses"), None);
    match ca.prepare(request) {
        Err(CaError::Policy(v)) => {
            assert_eq!(v.len(), 1, "{v:?}");
            assert!(v[0].contains("at most 100"), "{v:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // OpenSSL will not even write such a CSR; build the request directly, as
    // the gRPC IssueWithKey path does.
    let long = format!("{}.test", "a".repeat(62));
    let csr = openssl_csr(
        dir.path(),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=short.test",
        "DNS:short.test",
    );
    let mut request =
        IssueRequest::from_csr("server", "t", Csr::parse(&csr).expect("parses"), None);
    request.common_name = Some(long.clone());
    request.names.dns = vec![long];
    match ca.prepare(request) {
        Err(CaError::Policy(v)) => assert!(v.join(" ").contains("longer than 64"), "{v:?}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(store.0.lock().expect("lock").is_empty());
}

#[test]
fn validity_is_backdated_and_capped_and_renewal_is_guarded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root_der, issuer) = hierarchy(
        "clock",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let issuer_not_after = issuer.not_after();
    let start = SystemTime::now() + Duration::from_secs(86_400);
    let clock = Arc::new(strongroom_ca::ManualClock::new(start));
    let ca = Authority::new(
        issuer,
        vec![root_der],
        vec![server_profile()],
        urls(),
        Arc::new(MemoryStore::default()),
        Arc::clone(&clock) as Arc<dyn strongroom_ca::Clock>,
        Arc::new(token().clone()),
    );
    let unix = |t: SystemTime| {
        i64::try_from(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .expect("after epoch")
                .as_secs(),
        )
        .expect("fits")
    };
    let csr_bytes = openssl_csr(
        dir.path(),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=clock.test",
        "DNS:clock.test",
    );
    let issue = |requester: &str, ttl: Duration| {
        let csr = Csr::parse(&csr_bytes).expect("csr");
        ca.prepare(IssueRequest::from_csr("server", requester, csr, Some(ttl)))
            .and_then(|p| ca.issue(p))
            .expect("issued")
    };

    // Backdated by five minutes, valid for exactly the TTL after "now".
    let issued = issue("alice", Duration::from_secs(30 * 86_400));
    assert_eq!(issued.record.not_before, unix(start) - 300);
    assert_eq!(issued.record.not_after, unix(start) + 30 * 86_400);

    // Close to the issuer's end, validity stops where the issuer's does.
    let near_end = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(issuer_not_after).expect("positive"))
        - Duration::from_secs(10 * 86_400);
    clock.advance(near_end.duration_since(start).expect("later"));
    let capped = issue("alice", Duration::from_secs(30 * 86_400));
    assert_eq!(capped.record.not_after, issuer_not_after);

    // Renewal works only before expiry (who may renew is the server's
    // access policies' decision); the renewal names its own requester.
    let serial = &capped.record.serial;
    let renewal = ca
        .renewal_request(serial, "bob", None, None)
        .expect("renewable");
    assert_eq!(renewal.requester, "bob");
    clock.advance(Duration::from_secs(11 * 86_400));
    let err = ca
        .renewal_request(serial, "alice", None, None)
        .expect_err("expired");
    assert!(
        matches!(
            err,
            CaError::NotRenewable {
                status: "expired",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_batch_issues_each_request_on_its_own_merits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root_der, issuer) = hierarchy(
        "batch",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let store = Arc::new(MemoryStore::default());
    let ca = authority(root_der, issuer, Arc::clone(&store));
    let request = |cn: &str| {
        let csr = openssl_csr(
            dir.path(),
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &format!("/CN={cn}"),
            &format!("DNS:{cn}"),
        );
        IssueRequest::from_csr("server", "tester", Csr::parse(&csr).expect("parses"), None)
    };
    let requests = vec![
        request("one.test"),
        request("evil.example.com"),
        request("two.test"),
    ];

    let prepared = ca.prepare_all(requests);
    assert_eq!(prepared.len(), 3);
    match &prepared[1] {
        Err(CaError::Policy(violations)) => {
            assert!(
                violations.join("\n").contains("evil.example.com"),
                "{violations:?}"
            );
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    let pending: Vec<_> = prepared.into_iter().filter_map(Result::ok).collect();
    assert_eq!(pending.len(), 2, "the refusal took the others with it");
    {
        let records = store.0.lock().expect("lock");
        assert_eq!(records.len(), 2, "the refused request was stored");
        assert!(records.iter().all(|r| r.status == CertStatus::Pending));
    }

    let issued: Vec<_> = ca
        .issue_all(pending)
        .into_iter()
        .map(|i| i.expect("issued"))
        .collect();
    let names: Vec<_> = issued.iter().map(|i| i.record.sans.join(",")).collect();
    assert_eq!(names, ["DNS:one.test", "DNS:two.test"], "out of order");
    assert_ne!(issued[0].record.serial, issued[1].record.serial);
    let records = store.0.lock().expect("lock");
    for issued in &issued {
        let record = records
            .iter()
            .find(|r| r.serial == issued.record.serial)
            .expect("recorded");
        assert_eq!(record.status, CertStatus::Issued);
        assert_eq!(
            record.cert_der.as_deref(),
            Some(&issued.certificate_der[..])
        );
        let certificate = x509_cert::Certificate::from_der(&issued.certificate_der).expect("DER");
        assert_eq!(
            certificate.tbs_certificate.to_der().expect("tbs"),
            record.tbs_der
        );
    }
}
