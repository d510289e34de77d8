//! The appliance's state as metrics, read on each scrape (nothing polls in
//! the background): the facts Sys.Status reports ([`sys_service::facts`]),
//! read on the blocking pool like every store and HSM call.
//!
//! What needs the unsealed appliance (HSM, inventory, CA certificates,
//! transit) is left out while it is sealed; the seal and the audit trail are
//! always there. If the unsealed appliance cannot be read (the store is
//! down), `strongroom_state_readable` is 0 and the rest is left out too: a
//! scrape never fails for it.
//!
//! [`sys_service::facts`]: crate::server::sys_service::facts

use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use strongroom_hsm::TokenStatus;

use crate::audit::AuditTrail;
use crate::server::blocking::BlockingPool;
use crate::server::seal::Seal;
use crate::server::sys_service::{self, AuditFacts, CaCertificate, EXPIRING_WINDOW, SealFacts};

/// The appliance's state at one scrape.
#[derive(Debug)]
pub(super) struct State {
    /// The audit trail's health.
    audit: AuditFacts,
    /// The seal, and what the unsealed appliance knows; `None` when it is
    /// unsealed but could not be read.
    seal: Option<SealFacts>,
}

impl State {
    /// Reads the state now.
    pub(super) async fn read(seal: &Seal, pool: &BlockingPool, trail: &AuditTrail) -> State {
        match sys_service::facts(seal, pool, trail, SystemTime::now()).await {
            Ok(facts) => State {
                audit: facts.audit,
                seal: Some(facts.seal),
            },
            Err(failure) => {
                // Only an unsealed appliance's reading fails.
                tracing::warn!(error = %tonic::Status::from(failure).message(), "metrics: cannot read the appliance's state");
                State {
                    audit: AuditFacts::of(trail),
                    seal: None,
                }
            }
        }
    }
}

/// The name of a seal state, as the `state` label says it.
fn seal_state(seal: Option<&SealFacts>) -> &'static str {
    match seal {
        Some(SealFacts::Uninitialized) => "uninitialized",
        Some(SealFacts::Sealed { .. }) => "sealed",
        Some(SealFacts::Unsealed(_)) | None => "unsealed",
    }
}

/// Seconds since the epoch, 0 before it.
fn unix_seconds(t: SystemTime) -> i64 {
    crate::server::unix(t)
}

/// Encodes one gauge without labels.
fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl EncodeGaugeValue,
) -> std::fmt::Result {
    let gauge = ConstGauge::new(value);
    let metric = encoder.encode_descriptor(name, help, unit, gauge.metric_type())?;
    gauge.encode(metric)
}

/// Encodes one gauge with a sample per label set.
fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: &[(L, i64)],
) -> std::fmt::Result {
    let mut family =
        encoder.encode_descriptor(name, help, unit, ConstGauge::new(0i64).metric_type())?;
    for (labels, value) in samples {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// Encodes one counter without labels.
fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let counter = ConstCounter::new(value);
    let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
    counter.encode(metric)
}

/// 1 for true, 0 for false.
fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Saturating `u64` → `i64`, for gauges.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for State {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut encoder;
        let state = seal_state(self.seal.as_ref());
        gauge(
            e,
            "sealed",
            "1 while the appliance is sealed or not initialised, 0 once unsealed.",
            None,
            flag(state != "unsealed"),
        )?;
        let states =
            ["uninitialized", "sealed", "unsealed"].map(|s| ([("state", s)], flag(s == state)));
        gauges(
            e,
            "seal_state",
            "The seal's state: 1 for the current one.",
            None,
            &states,
        )?;
        self.encode_audit(e)?;
        match &self.seal {
            None => gauge(
                e,
                "state_readable",
                "1 if the unsealed appliance's state (HSM, inventory, transit) was read for \
                 this scrape, 0 if reading it failed.",
                None,
                0i64,
            ),
            Some(SealFacts::Unsealed(appliance)) => {
                gauge(
                    e,
                    "state_readable",
                    "1 if the unsealed appliance's state (HSM, inventory, transit) was read for \
                     this scrape, 0 if reading it failed.",
                    None,
                    1i64,
                )?;
                self.encode_appliance(e, appliance)
            }
            Some(_) => Ok(()),
        }
    }
}

impl State {
    /// The audit trail's health.
    fn encode_audit(&self, e: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let audit = &self.audit;
        gauge(
            e,
            "audit_healthy",
            "1 while the audit trail writes; 0 when it cannot, and every request fails.",
            None,
            flag(audit.healthy),
        )?;
        counter(
            e,
            "audit_records",
            "Records in the audit trail's chain (the last record's sequence number).",
            audit.last_seq,
        )?;
        counter(
            e,
            "audit_records_failed",
            "Audit records that could not be written since the start (their requests failed).",
            audit.failed,
        )?;
        if let Some(at) = audit.problem_at {
            gauge(
                e,
                "audit_last_problem_timestamp",
                "When the audit trail's last problem was noticed, in Unix seconds.",
                Some(&Unit::Seconds),
                unix_seconds(at),
            )?;
        }
        Ok(())
    }

    /// What the unsealed appliance knows.
    fn encode_appliance(
        &self,
        e: &mut DescriptorEncoder<'_>,
        appliance: &sys_service::ApplianceFacts,
    ) -> std::fmt::Result {
        gauge(
            e,
            "hsm_ready",
            "1 while HSM operations run, 0 while the token is unavailable or refused the PIN.",
            None,
            flag(appliance.hsm == TokenStatus::Ready),
        )?;
        let pool = appliance.pool;
        gauge(
            e,
            "hsm_pool_sessions_capacity",
            "HSM working sessions the pool may open.",
            None,
            pool.capacity,
        )?;
        let in_use = pool.open.saturating_sub(pool.idle);
        gauges(
            e,
            "hsm_pool_sessions",
            "HSM working sessions open, by whether they are lent out (in_use) or idle.",
            None,
            &[
                (
                    [("state", "in_use")],
                    i64::try_from(in_use).unwrap_or(i64::MAX),
                ),
                (
                    [("state", "idle")],
                    i64::try_from(pool.idle).unwrap_or(i64::MAX),
                ),
            ],
        )?;
        let certificate = |role: &'static str, c: &CaCertificate| {
            (
                [
                    ("role", role.to_string()),
                    ("subject", c.subject.clone()),
                    ("serial", c.serial.clone()),
                ],
                unix_seconds(c.not_after),
            )
        };
        let mut chain = vec![certificate("issuing", &appliance.issuing_ca)];
        chain.extend(appliance.chain.iter().map(|c| certificate("chain", c)));
        gauges(
            e,
            "ca_certificate_not_after_timestamp",
            "When each CA certificate expires, in Unix seconds: the issuing CA's (role \
             issuing) and those above it (role chain).",
            Some(&Unit::Seconds),
            &chain,
        )?;
        let counts = appliance.counts;
        gauges(
            e,
            "certificates",
            "Certificates in the inventory by status.",
            None,
            &[
                ([("status", "pending")], int(counts.pending)),
                ([("status", "issued")], int(counts.issued)),
                ([("status", "revoked")], int(counts.revoked)),
            ],
        )?;
        gauge(
            e,
            "certificates_expiring",
            "Issued certificates expiring within the window (30 days), except the delegated \
             OCSP signer's, which the appliance renews itself.",
            None,
            int(counts.expiring),
        )?;
        gauge(
            e,
            "certificates_expiring_window",
            "How far ahead strongroom_certificates_expiring looks.",
            Some(&Unit::Seconds),
            int(EXPIRING_WINDOW.as_secs()),
        )?;
        let Some(transit) = &appliance.transit else {
            return Ok(());
        };
        gauge(e, "transit_keys", "Transit keys.", None, int(transit.keys))?;
        gauge(
            e,
            "transit_keys_overdue_rotation",
            "Transit keys whose latest version is older than the rotation age.",
            None,
            int(transit.keys_overdue),
        )?;
        gauge(
            e,
            "transit_rotation_max_age",
            "The age beyond which a transit key is overdue for rotation.",
            Some(&Unit::Seconds),
            int(transit.max_age.as_secs()),
        )?;
        gauge(
            e,
            "transit_kek_versions_to_rewrap",
            "Transit key versions a retired KEK still wraps.",
            None,
            int(transit.versions_to_rewrap),
        )?;
        gauge(
            e,
            "transit_kek_rewrap_pending",
            "1 while the background KEK re-wrap has work left.",
            None,
            flag(transit.rewrap_pending),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    use strongroom_hsm::PoolUsage;

    use super::*;
    use crate::server::sys_service::{ApplianceFacts, Counts, TransitFacts};

    fn audit() -> AuditFacts {
        AuditFacts {
            healthy: true,
            problem: Some("disk full".into()),
            file: "/var/lib/strongroom/audit/audit-1.jsonl".into(),
            last_seq: 42,
            failed: 3,
            sinks: Vec::new(),
            problem_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        }
    }

    fn exposition(state: State) -> String {
        let mut registry = Registry::with_prefix(super::super::PREFIX);
        registry.register_collector(Box::new(state));
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        text
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn a_sealed_appliance_reports_its_seal_and_audit_trail_only() {
        let text = exposition(State {
            audit: audit(),
            seal: Some(SealFacts::Sealed {
                progress: 1,
                threshold: 3,
            }),
        });
        for line in [
            "strongroom_sealed 1",
            "strongroom_seal_state{state=\"uninitialized\"} 0",
            "strongroom_seal_state{state=\"sealed\"} 1",
            "strongroom_seal_state{state=\"unsealed\"} 0",
            "strongroom_audit_healthy 1",
            "strongroom_audit_records_total 42",
            "strongroom_audit_records_failed_total 3",
            "strongroom_audit_last_problem_timestamp_seconds 1800000000",
            "# EOF",
        ] {
            assert!(has(&text, line), "{line} in\n{text}");
        }
        for absent in ["hsm", "certificates", "transit", "state_readable"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        // What went wrong is for the status, not for labels.
        assert!(!text.contains("disk full"), "{text}");
    }

    #[test]
    fn an_unreadable_appliance_is_reported_unsealed_and_unreadable() {
        let text = exposition(State {
            audit: audit(),
            seal: None,
        });
        for line in [
            "strongroom_sealed 0",
            "strongroom_seal_state{state=\"unsealed\"} 1",
            "strongroom_state_readable 0",
        ] {
            assert!(has(&text, line), "{line} in\n{text}");
        }
        assert!(!text.contains("strongroom_certificates"), "{text}");
    }

    #[test]
    fn an_unsealed_appliance_reports_everything() {
        let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let appliance = ApplianceFacts {
            hsm: TokenStatus::Ready,
            pool: PoolUsage {
                capacity: 4,
                open: 3,
                idle: 1,
            },
            issuing_ca: CaCertificate {
                subject: "CN=Issuing \"CA\",O=Example".into(),
                serial: "0a1b".into(),
                not_after,
            },
            chain: vec![CaCertificate {
                subject: "CN=Root".into(),
                serial: "01".into(),
                not_after: not_after + Duration::from_secs(10),
            }],
            counts: Counts {
                pending: 1,
                issued: 10,
                revoked: 2,
                expiring: 4,
            },
            transit: Some(TransitFacts {
                keys: 5,
                keys_overdue: 2,
                max_age: Duration::from_secs(365 * 86_400),
                current_kek: "kek".into(),
                versions_to_rewrap: 7,
                rewrap_pending: true,
            }),
        };
        let text = exposition(State {
            audit: AuditFacts {
                problem_at: None,
                ..audit()
            },
            seal: Some(SealFacts::Unsealed(Box::new(appliance))),
        });
        for line in [
            "strongroom_sealed 0",
            "strongroom_state_readable 1",
            "strongroom_hsm_ready 1",
            "strongroom_hsm_pool_sessions_capacity 4",
            "strongroom_hsm_pool_sessions{state=\"in_use\"} 2",
            "strongroom_hsm_pool_sessions{state=\"idle\"} 1",
            // Label values are escaped.
            "strongroom_ca_certificate_not_after_timestamp_seconds{role=\"issuing\",subject=\"CN=Issuing \\\"CA\\\",O=Example\",serial=\"0a1b\"} 1900000000",
            "strongroom_ca_certificate_not_after_timestamp_seconds{role=\"chain\",subject=\"CN=Root\",serial=\"01\"} 1900000010",
            "strongroom_certificates{status=\"pending\"} 1",
            "strongroom_certificates{status=\"issued\"} 10",
            "strongroom_certificates{status=\"revoked\"} 2",
            "strongroom_certificates_expiring 4",
            "strongroom_certificates_expiring_window_seconds 2592000",
            "strongroom_transit_keys 5",
            "strongroom_transit_keys_overdue_rotation 2",
            "strongroom_transit_rotation_max_age_seconds 31536000",
            "strongroom_transit_kek_versions_to_rewrap 7",
            "strongroom_transit_kek_rewrap_pending 1",
        ] {
            assert!(has(&text, line), "{line} in\n{text}");
        }
        // No problem noticed: no timestamp.
        assert!(!text.contains("audit_last_problem"), "{text}");
    }
}
