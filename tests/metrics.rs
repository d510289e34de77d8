//! End to end: the dev appliance's Prometheus endpoint (a real SoftHSM2
//! token, real TLS), scraped over plain HTTP and parsed by an independent
//! parser (the Python `prometheus_client` OpenMetrics parser, from the test
//! venv). gRPC calls that succeed, fail and stream are counted exactly by
//! method and status code, their latency histograms are well formed, the
//! state (seal, HSM pool, inventory, CA expiry, transit, audit trail)
//! matches what the appliance says elsewhere, nothing encrypted through
//! transit shows, and a sealed appliance still answers with its seal state.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Dev, http_get, http_post, openssl, output_text, p, venv_tool};
use serde_json::Value;
use strongroom_proto::v1;
use tonic::Code;

/// Encrypted through transit; never in a scrape.
const SECRET: &[u8] = b"METRICS-SECRET-PLAINTEXT-51c9e";

/// Parses an OpenMetrics exposition with `prometheus_client`'s parser and
/// prints its families as JSON. The parser refuses malformed text (a
/// histogram whose buckets do not grow or whose `+Inf` bucket is not its
/// count, a missing `# EOF`, ...).
const PARSE: &str = r#"
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "unit": family.unit,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": s.value}
            for s in family.samples
        ],
    })
json.dump(families, sys.stdout)
"#;

/// One sample: its name and labels.
type Key = (String, BTreeMap<String, String>);

/// A parsed scrape.
struct Scrape {
    /// The text as served.
    text: String,
    /// Family name → (type, unit).
    families: BTreeMap<String, (String, String)>,
    /// Every sample's value.
    samples: BTreeMap<Key, f64>,
}

impl Scrape {
    /// The value of sample `name` with exactly `labels`, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_string(), labels)).copied()
    }

    /// Like [`Scrape::get`], 0 when absent (a counter not created yet).
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Like [`Scrape::get`], which must be present.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("{name}{labels:?} missing in\n{}", self.text))
    }

    /// Samples named `name`, whatever their labels.
    fn all(&self, name: &str) -> Vec<(&BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), v)| (labels, *v))
            .collect()
    }

    /// Whether a family of that name is present.
    fn has_family(&self, name: &str) -> bool {
        self.families.contains_key(name)
    }
}

/// GETs `/metrics` and parses it with the independent parser.
fn scrape(dev: &Dev) -> Scrape {
    let url = dev
        .metrics
        .as_deref()
        .expect("the banner names the metrics URL");
    let response = http_get(url, &[]);
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = String::from_utf8(response.body).expect("utf-8");
    let mut python = Command::new(venv_tool("python"))
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    {
        use std::io::Write;
        let mut stdin = python.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write exposition");
    }
    let out = python.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "prometheus_client refuses the exposition: {}\n{text}",
        output_text(&out)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("parser JSON");
    let mut families = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for family in parsed {
        let name = family["name"].as_str().expect("name").to_string();
        let kind = family["type"].as_str().expect("type").to_string();
        let unit = family["unit"].as_str().unwrap_or_default().to_string();
        for sample in family["samples"].as_array().expect("samples") {
            let labels = sample["labels"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
                .collect();
            let key = (sample["name"].as_str().expect("name").to_string(), labels);
            let value = sample["value"].as_f64().expect("value");
            assert!(samples.insert(key, value).is_none(), "duplicate sample");
        }
        assert!(
            families.insert(name, (kind, unit)).is_none(),
            "duplicate family"
        );
    }
    Scrape {
        text,
        families,
        samples,
    }
}

const TRANSIT: &str = "strongroom.v1.Transit";

/// The labels of a call counter.
fn call<'a>(method: &'a str, code: &'a str) -> [(&'a str, &'a str); 3] {
    [("service", TRANSIT), ("method", method), ("code", code)]
}

/// The labels of a latency histogram's count.
fn method(method: &str) -> [(&str, &str); 2] {
    [("service", TRANSIT), ("method", method)]
}

/// Checks every latency histogram: buckets in growing order with growing
/// counts, ending at `+Inf` with the count, a non-negative sum.
fn assert_histograms_well_formed(scrape: &Scrape) {
    let histograms = scrape.all("strongroom_grpc_request_duration_seconds_count");
    assert!(!histograms.is_empty(), "{}", scrape.text);
    for (labels, count) in histograms {
        let mut buckets: Vec<(f64, f64)> = scrape
            .all("strongroom_grpc_request_duration_seconds_bucket")
            .into_iter()
            .filter(|(l, _)| l.iter().all(|(k, v)| k == "le" || labels.get(k) == Some(v)))
            .map(|(l, v)| {
                let le = l["le"].as_str();
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("bucket bound")
                };
                (bound, v)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(buckets.len(), 17, "{labels:?}");
        assert!(buckets[0].0 > 0.0 && buckets[15].0 >= 10.0, "{buckets:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "cumulative: {buckets:?}"
        );
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, count)), "{labels:?}");
        let sum_labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let sum = scrape.value("strongroom_grpc_request_duration_seconds_sum", &sum_labels);
        assert!(
            sum >= 0.0 && (count > 0.0 || sum == 0.0),
            "{labels:?}: {sum}"
        );
    }
}

/// The not-after of a PEM certificate in Unix seconds, as openssl and GNU
/// date read it.
fn not_after_unix(cert: &Path) -> f64 {
    let out = openssl(&["x509", "-in", p(cert), "-noout", "-enddate"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let date = text.trim().trim_start_matches("notAfter=");
    let out = Command::new("date")
        .args(["-u", "-d", date, "+%s"])
        .output()
        .expect("date");
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .parse()
        .expect("seconds")
}

/// `strongroom status --output json`.
fn status(dev: &Dev) -> Value {
    serde_json::from_str(&dev.cli_ok(&["status", "--output", "json"])).expect("status JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_and_report_state_over_http() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let dev = Dev::start(&data);
    let url = dev.metrics.clone().expect("metrics URL");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"),
        "{url}"
    );

    // Only GET /metrics.
    let elsewhere = http_get(&url.replace("/metrics", "/ca/issuing.crt"), &[]);
    assert_eq!(elsewhere.status, 404);
    let posted = http_post(&url, "text/plain", b"");
    assert_eq!(posted.status, 405);
    assert_eq!(posted.header("allow"), Some("GET"));

    let before = scrape(&dev);
    assert_eq!(before.value("strongroom_sealed", &[]), 0.0);
    assert_eq!(
        before.families.get("strongroom_grpc_requests"),
        Some(&("counter".to_string(), String::new()))
    );
    assert_eq!(
        before
            .families
            .get("strongroom_grpc_request_duration_seconds"),
        Some(&("histogram".to_string(), "seconds".to_string()))
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        before.value("strongroom_build_info", &[("version", version)]),
        1.0
    );

    // Transit: a key, three encryptions, a decryption, a missing key, and a
    // stream of two messages.
    let mut client = dev.transit_client().await;
    client
        .create_key(v1::CreateKeyRequest {
            name: "metrics".into(),
            r#type: v1::TransitKeyType::Aes256Gcm96 as i32,
            ..Default::default()
        })
        .await
        .expect("create key");
    let mut ciphertext = String::new();
    for _ in 0..3 {
        ciphertext = client
            .encrypt(v1::EncryptRequest {
                key: "metrics".into(),
                plaintext: SECRET.to_vec(),
                ..Default::default()
            })
            .await
            .expect("encrypt")
            .into_inner()
            .ciphertext;
    }
    let plaintext = client
        .decrypt(v1::DecryptRequest {
            key: "metrics".into(),
            ciphertext: ciphertext.clone(),
            ..Default::default()
        })
        .await
        .expect("decrypt")
        .into_inner()
        .plaintext;
    assert_eq!(plaintext, SECRET);
    let missing = client
        .encrypt(v1::EncryptRequest {
            key: "no-such-key".into(),
            plaintext: SECRET.to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("no such key");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let messages = (0..2).map(|i| v1::EncryptStreamRequest {
        key: if i == 0 {
            "metrics".into()
        } else {
            String::new()
        },
        items: vec![v1::EncryptItem {
            plaintext: SECRET.to_vec(),
            ..Default::default()
        }],
    });
    let mut responses = client
        .encrypt_stream(tokio_stream::iter(messages))
        .await
        .expect("stream")
        .into_inner();
    let mut answers = 0;
    while responses.message().await.expect("stream message").is_some() {
        answers += 1;
    }
    assert_eq!(answers, 2);

    // The CA: one certificate issued.
    let status_before = status(&dev);
    dev.issue_server(tmp.path(), "metrics-one");
    let status_after = status(&dev);

    let after = scrape(&dev);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.count(name, labels) - before.count(name, labels)
    };
    let requests = "strongroom_grpc_requests_total";
    assert_eq!(delta(requests, &call("CreateKey", "OK")), 1.0);
    assert_eq!(delta(requests, &call("Encrypt", "OK")), 3.0);
    assert_eq!(delta(requests, &call("Decrypt", "OK")), 1.0);
    assert_eq!(delta(requests, &call("Encrypt", "NOT_FOUND")), 1.0);
    // A stream is one call, however many messages.
    assert_eq!(delta(requests, &call("EncryptStream", "OK")), 1.0);
    let durations = "strongroom_grpc_request_duration_seconds_count";
    assert_eq!(delta(durations, &method("Encrypt")), 4.0);
    assert_eq!(delta(durations, &method("EncryptStream")), 1.0);
    let status_calls = [
        ("service", "strongroom.v1.Sys"),
        ("method", "Status"),
        ("code", "OK"),
    ];
    assert_eq!(delta(requests, &status_calls), 2.0);
    assert!(
        delta(
            requests,
            &[
                ("service", "strongroom.v1.Ca"),
                ("method", "IssueWithKey"),
                ("code", "OK")
            ]
        ) == 1.0,
        "{}",
        after.text
    );
    assert_histograms_well_formed(&after);
    // Every call counted was audited, and nothing else was.
    let calls: f64 = after.all(requests).iter().map(|(_, v)| v).sum::<f64>()
        - before.all(requests).iter().map(|(_, v)| v).sum::<f64>();
    assert_eq!(delta("strongroom_audit_records_total", &[]), calls);
    assert_eq!(after.value("strongroom_audit_healthy", &[]), 1.0);
    assert_eq!(
        after.value("strongroom_audit_records_failed_total", &[]),
        0.0
    );

    // The state, as the appliance reports it elsewhere.
    assert_eq!(after.value("strongroom_sealed", &[]), 0.0);
    for (state, value) in [("uninitialized", 0.0), ("sealed", 0.0), ("unsealed", 1.0)] {
        assert_eq!(
            after.value("strongroom_seal_state", &[("state", state)]),
            value
        );
    }
    assert_eq!(after.value("strongroom_state_readable", &[]), 1.0);
    assert_eq!(after.value("strongroom_hsm_ready", &[]), 1.0);
    let capacity = after.value("strongroom_hsm_pool_sessions_capacity", &[]);
    let in_use = after.value("strongroom_hsm_pool_sessions", &[("state", "in_use")]);
    let idle = after.value("strongroom_hsm_pool_sessions", &[("state", "idle")]);
    assert!(
        capacity >= 1.0 && in_use + idle <= capacity,
        "{capacity} {in_use} {idle}"
    );
    assert_eq!(
        capacity,
        status_after["hsm_pool"]["capacity"]
            .as_f64()
            .expect("capacity")
    );
    let certificates = "strongroom_certificates";
    for field in ["pending", "issued", "revoked"] {
        assert_eq!(
            after.value(certificates, &[("status", field)]),
            status_after["certificates"][field].as_f64().expect("count"),
            "{field}"
        );
    }
    assert_eq!(
        after.value(certificates, &[("status", "issued")])
            - before.value(certificates, &[("status", "issued")]),
        1.0
    );
    assert_eq!(
        status_after["certificates"]["issued"].as_u64(),
        status_before["certificates"]["issued"]
            .as_u64()
            .map(|n| n + 1)
    );
    assert_eq!(
        after.value("strongroom_certificates_expiring", &[]),
        status_after["certificates"]["expiring"]
            .as_f64()
            .expect("expiring")
    );
    assert_eq!(
        after.value("strongroom_certificates_expiring_window_seconds", &[]),
        30.0 * 86_400.0
    );
    let expiry = after.all("strongroom_ca_certificate_not_after_timestamp_seconds");
    assert_eq!(expiry.len(), 2, "{}", after.text);
    for (role, file) in [("issuing", "ca/issuing.pem"), ("chain", "ca/root.pem")] {
        let (labels, seconds) = expiry
            .iter()
            .find(|(labels, _)| labels["role"] == role)
            .unwrap_or_else(|| panic!("{role} in\n{}", after.text));
        assert_eq!(*seconds, not_after_unix(&data.join(file)), "{role}");
        let json = if role == "issuing" {
            &status_after["issuing_ca"]
        } else {
            &status_after["chain"][0]
        };
        assert_eq!(
            labels["subject"],
            json["subject"].as_str().expect("subject")
        );
        assert_eq!(labels["serial"], json["serial"].as_str().expect("serial"));
    }
    assert_eq!(delta("strongroom_transit_keys", &[]), 1.0, "{}", after.text);
    assert_eq!(
        after.value("strongroom_transit_keys_overdue_rotation", &[]),
        0.0
    );
    assert_eq!(
        after.value("strongroom_transit_rotation_max_age_seconds", &[]),
        365.0 * 86_400.0
    );
    assert_eq!(
        after.value("strongroom_transit_kek_versions_to_rewrap", &[]),
        0.0
    );

    // Nothing encrypted, nor its encryption, nor the unseal share shows.
    let secret = std::str::from_utf8(SECRET).expect("ascii");
    assert!(!after.text.contains(secret), "the plaintext leaked");
    let ciphertext_body = ciphertext.rsplit(':').next().expect("body");
    assert!(!after.text.contains(ciphertext_body));
    let share = std::fs::read_to_string(data.join("dev-unseal.share")).expect("share");
    for line in share.lines().filter(|l| l.len() > 16) {
        assert!(!after.text.contains(line.trim()), "the share leaked");
    }

    // Sealed: still answering, with the seal state and the audit trail,
    // and nothing that needs the unsealed appliance.
    let share_file = data.join("dev-unseal.share");
    dev.cli_ok(&["operator", "seal", "--share-file", p(&share_file)]);
    let sealed = scrape(&dev);
    assert_eq!(sealed.value("strongroom_sealed", &[]), 1.0);
    assert_eq!(
        sealed.value("strongroom_seal_state", &[("state", "sealed")]),
        1.0
    );
    assert_eq!(
        sealed.value("strongroom_seal_state", &[("state", "unsealed")]),
        0.0
    );
    assert_eq!(sealed.value("strongroom_audit_healthy", &[]), 1.0);
    for absent in [
        "strongroom_hsm_ready",
        "strongroom_hsm_pool_sessions",
        "strongroom_certificates",
        "strongroom_ca_certificate_not_after_timestamp_seconds",
        "strongroom_transit_keys",
        "strongroom_state_readable",
    ] {
        assert!(!sealed.has_family(absent), "{absent} in\n{}", sealed.text);
    }
    // The seal call itself is counted, and what was counted stays.
    let seal_call = [
        ("service", "strongroom.v1.Seal"),
        ("method", "Seal"),
        ("code", "OK"),
    ];
    assert_eq!(
        sealed.count(requests, &seal_call) - after.count(requests, &seal_call),
        1.0
    );
    assert_eq!(
        sealed.value(requests, &call("Encrypt", "OK")),
        after.value(requests, &call("Encrypt", "OK"))
    );
    // A sealed appliance refuses transit: counted by its code.
    let refused = client
        .encrypt(v1::EncryptRequest {
            key: "metrics".into(),
            plaintext: SECRET.to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("sealed");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let refused_count = scrape(&dev).value(requests, &call("Encrypt", "FAILED_PRECONDITION"));
    assert_eq!(refused_count, 1.0);

    dev.cli_ok(&["operator", "unseal", "--share-file", p(&share_file)]);
    let unsealed = scrape(&dev);
    assert_eq!(unsealed.value("strongroom_sealed", &[]), 0.0);
    assert_eq!(unsealed.value("strongroom_hsm_ready", &[]), 1.0);
    dev.stop();
}
