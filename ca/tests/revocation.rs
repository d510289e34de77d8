//! Revocation through the authority against a real SoftHSM2 token:
//! partitioned CRL Distribution Points fixed at issuance, each partition's
//! CRL carrying the matching critical Issuing Distribution Point, CRL
//! numbers that only grow, and revocation rules; every CRL checked by
//! `openssl crl -verify` and pkilint.

use std::sync::Arc;
use std::time::Duration;

use strongroom_ca::{
    Authority, CaError, CrlSeries, Csr, DistributionUrls, IssueRequest, RevocationReason,
    RevokeOutcome, SystemClock,
};
use strongroom_hsm::{KeySpec, SignatureAlgorithm};

mod common;
use common::*;

const TEMPLATE: &str = "http://127.0.0.1:8200/crl/part-{partition}.crl";

fn partitioned(label: &str, partitions: u32) -> (tempfile::TempDir, Authority, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_root, issuer) = hierarchy(label, KeySpec::EcP256, SignatureAlgorithm::EcdsaP256Sha256);
    let issuer_pem = write(dir.path(), "issuer.pem", &issuer.certificate_pem());
    let ca = Authority::new(
        issuer,
        vec![],
        vec![server_profile()],
        DistributionUrls {
            crl: Some(TEMPLATE.into()),
            ..urls()
        },
        Arc::new(MemoryStore::default()),
        Arc::new(SystemClock),
        Arc::new(token().clone()),
    )
    .with_crl_partitions(partitions)
    .expect("partitions");
    (dir, ca, issuer_pem)
}

fn issue(ca: &Authority, dir: &std::path::Path, n: usize) -> strongroom_ca::Issued {
    let csr = openssl_csr(
        dir,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &format!("/CN=h{n}.test"),
        &format!("DNS:h{n}.test"),
    );
    let request = IssueRequest::from_csr("server", "tester", Csr::parse(&csr).expect("csr"), None);
    ca.issue(ca.prepare(request).expect("prepare"))
        .expect("issue")
}

fn crl_text(dir: &std::path::Path, name: &str, der: &[u8], issuer_pem: &std::path::Path) -> String {
    let path = dir.join(name);
    std::fs::write(&path, der).expect("write");
    let verify = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&path),
        "-CAfile",
        p(issuer_pem),
        "-noout",
        "-verify",
    ]);
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("verify OK"),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let lint = std::process::Command::new(pkilint_bin("lint_crl"))
        .args(["lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR"])
        .arg(&path)
        .output()
        .expect("lint_crl");
    let report = String::from_utf8_lossy(&lint.stdout);
    assert!(
        lint.status.success() && report.trim().is_empty(),
        "{name}: {report}"
    );
    let text = openssl(&["crl", "-inform", "DER", "-in", p(&path), "-noout", "-text"]);
    String::from_utf8_lossy(&text.stdout).into_owned()
}

#[test]
fn partitions_are_fixed_at_issuance_and_each_crl_names_its_own() {
    let (dir, ca, issuer_pem) = partitioned("parts", 3);
    let issued: Vec<_> = (0..12).map(|n| issue(&ca, dir.path(), n)).collect();
    let mut revoked = Vec::new();
    for (n, cert) in issued.iter().enumerate() {
        let partition = cert.record.crl_partition.expect("assigned a partition");
        assert!(partition < 3);
        // The CDP written into the certificate is its partition's URL.
        let path = write(dir.path(), &format!("leaf{n}.pem"), &cert.certificate_pem());
        let cdp = openssl(&[
            "x509",
            "-in",
            p(&path),
            "-noout",
            "-ext",
            "crlDistributionPoints",
        ]);
        let cdp = String::from_utf8_lossy(&cdp.stdout);
        assert!(
            cdp.contains(&TEMPLATE.replace("{partition}", &partition.to_string())),
            "{cdp}"
        );
        if n % 2 == 0 {
            let outcome = ca
                .revoke(&cert.record.serial, RevocationReason::KeyCompromise, None)
                .expect("revoke")
                .0;
            assert!(matches!(outcome, RevokeOutcome::Revoked(_)));
            revoked.push((partition, cert.record.serial.to_hex().to_ascii_uppercase()));
        }
    }
    let week = Duration::from_secs(7 * 86_400);
    let all = ca.publish_crl(CrlSeries::All, week).expect("whole CRL");
    let text = crl_text(dir.path(), "all.crl", &all.der, &issuer_pem);
    assert!(!text.contains("Issuing Distribution Point"), "{text}");
    for (_, serial) in &revoked {
        assert!(text.contains(serial), "{text}");
    }
    for partition in 0..3 {
        let crl = ca
            .publish_crl(CrlSeries::Partition(partition), week)
            .expect("partition CRL");
        let text = crl_text(
            dir.path(),
            &format!("p{partition}.crl"),
            &crl.der,
            &issuer_pem,
        );
        assert!(
            text.contains("X509v3 Issuing Distribution Point: critical"),
            "{text}"
        );
        assert!(
            text.contains(&TEMPLATE.replace("{partition}", &partition.to_string())),
            "{text}"
        );
        for (p, serial) in &revoked {
            assert_eq!(
                text.contains(serial),
                *p == partition,
                "{serial} in p{partition}"
            );
        }
        assert_eq!(crl.number, 1, "each partition numbers its own CRLs");
    }
    // Numbers only grow.
    let next = ca.publish_crl(CrlSeries::All, week).expect("again");
    assert_eq!(next.number, all.number + 1);
}

#[test]
fn partition_configuration_is_checked() {
    let (root_der, issuer) = hierarchy(
        "partcfg",
        KeySpec::EcP256,
        SignatureAlgorithm::EcdsaP256Sha256,
    );
    let build = |crl: &str| {
        Authority::new(
            issuer.clone(),
            vec![root_der.clone()],
            vec![server_profile()],
            DistributionUrls {
                crl: Some(crl.into()),
                ..urls()
            },
            Arc::new(MemoryStore::default()),
            Arc::new(SystemClock),
            Arc::new(token().clone()),
        )
    };
    assert!(matches!(
        build("http://x.test/crl.crl").with_crl_partitions(4),
        Err(CaError::BadIssuer(m)) if m.contains("{partition}")
    ));
    assert!(matches!(
        build(TEMPLATE).with_crl_partitions(0),
        Err(CaError::BadIssuer(_))
    ));
    assert!(build(TEMPLATE).with_crl_partitions(5_000).is_err());
    let ca = build("http://x.test/crl.crl")
        .with_crl_partitions(0)
        .expect("plain");
    assert_eq!(ca.crl_url(None).as_deref(), Some("http://x.test/crl.crl"));
}

#[test]
fn revocation_times_and_reasons_are_checked() {
    let (dir, ca, _) = partitioned("revrules", 1);
    let cert = issue(&ca, dir.path(), 1);
    let serial = &cert.record.serial;
    let future = std::time::SystemTime::now() + Duration::from_secs(3_600);
    assert!(matches!(
        ca.revoke(serial, RevocationReason::KeyCompromise, Some(future)),
        Err(CaError::BadRequest(m)) if m.contains("future")
    ));
    let ancient = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    assert!(matches!(
        ca.revoke(serial, RevocationReason::KeyCompromise, Some(ancient)),
        Err(CaError::BadRequest(m)) if m.contains("before")
    ));
    assert!(matches!(
        ca.revoke(serial, RevocationReason::AaCompromise, None),
        Err(CaError::BadRequest(_))
    ));
    let missing = strongroom_ca::Serial::from_hex("4a01").expect("serial");
    assert!(matches!(
        ca.revoke(&missing, RevocationReason::KeyCompromise, None),
        Err(CaError::NotFound(_))
    ));
    let (outcome, record) = ca
        .revoke(serial, RevocationReason::Superseded, None)
        .expect("revoke");
    assert!(matches!(outcome, RevokeOutcome::Revoked(_)));
    assert_eq!(record.status, strongroom_ca::CertStatus::Revoked);
    assert_eq!(
        record.revocation.map(|r| r.reason),
        Some(RevocationReason::Superseded)
    );
    // A revoked certificate cannot be renewed.
    assert!(matches!(
        ca.renewal_request(serial, "tester", None, None),
        Err(CaError::NotRenewable {
            status: "revoked",
            ..
        })
    ));
}
