//! Issuance profiles: what a certificate may contain, from configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use ipnet::IpNet;
use serde::Deserialize;
use strongroom_hsm::KeySpec;
use x509_cert::ext::pkix::KeyUsages;

use crate::names::{DomainPattern, Names, dns_name_problem, quoted, uri_matches, uri_problem};

/// Most names (DNS, IP and URI together) one certificate may carry.
pub const MAX_NAMES: usize = 100;

/// Longest TTL a profile allows unless configured otherwise.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A profile as written in the configuration file (TOML). Unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Allowed DNS name patterns (see [`DomainPattern`]).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Whether wildcard names (`*.example.test`) may be requested.
    #[serde(default)]
    pub allow_wildcard_names: bool,
    /// IP SANs are allowed only inside these CIDRs (none: no IP SANs).
    #[serde(default)]
    pub ip_ranges: Vec<IpNet>,
    /// Allowed URI SAN patterns; `*` matches any characters (none: no URI SANs).
    #[serde(default)]
    pub uri_patterns: Vec<String>,
    /// Allowed subject key types: `ec-p256`, `ec-p384`, `ed25519`, `rsa` (any
    /// size from `min_rsa_bits`). Default: all of them.
    #[serde(default = "default_key_types")]
    pub key_types: Vec<String>,
    /// Smallest RSA modulus accepted; never below 2048.
    #[serde(default = "default_min_rsa_bits")]
    pub min_rsa_bits: u32,
    /// Longest validity, e.g. `"365d"`, `"12h"`, `"90d12h"`. Default 365 days.
    #[serde(default)]
    pub max_ttl: Option<String>,
    /// Validity when the request names none. Default: `max_ttl`.
    #[serde(default)]
    pub default_ttl: Option<String>,
    /// Key usages, by their RFC 5280 names. Default `["digitalSignature"]`;
    /// `keyEncipherment` is applied to RSA keys only.
    #[serde(default = "default_key_usage")]
    pub key_usage: Vec<String>,
    /// Extended key usages: `serverAuth`, `clientAuth`.
    #[serde(default)]
    pub ext_key_usage: Vec<String>,
    /// Fixed subject attributes added to every certificate, e.g.
    /// `{ O = "Example", C = "DE" }` (keys: C, O, OU, L, ST).
    #[serde(default)]
    pub subject: BTreeMap<String, String>,
}

fn default_key_types() -> Vec<String> {
    ["ec-p256", "ec-p384", "ed25519", "rsa"]
        .map(String::from)
        .to_vec()
}

fn default_min_rsa_bits() -> u32 {
    2048
}

fn default_key_usage() -> Vec<String> {
    vec!["digitalSignature".into()]
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    pub(crate) domains: Vec<DomainPattern>,
    pub(crate) allow_wildcard_names: bool,
    pub(crate) ip_ranges: Vec<IpNet>,
    pub(crate) uri_patterns: Vec<String>,
    pub(crate) key_types: Vec<KeyRule>,
    pub(crate) max_ttl: Duration,
    pub(crate) default_ttl: Duration,
    pub(crate) key_usage: Vec<KeyUsages>,
    pub(crate) ext_key_usage: Vec<ObjectIdentifier>,
    /// Fixed subject attributes: (short name, value), in a stable order.
    pub(crate) subject: Vec<(String, String)>,
}

/// A kind of subject key a profile accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRule {
    EcP256,
    EcP384,
    Ed25519,
    Rsa { min_bits: u32 },
}

impl Profile {
    /// Validates a configured profile.
    pub fn new(name: &str, config: &ProfileConfig) -> Result<Profile, String> {
        let bad = |what: String| format!("profile '{name}': {what}");
        let domains = config
            .domains
            .iter()
            .map(|d| DomainPattern::parse(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        for pattern in &config.uri_patterns {
            if pattern.is_empty() {
                return Err(bad("empty URI pattern".into()));
            }
        }
        if config.min_rsa_bits < 2048 {
            return Err(bad(format!(
                "min_rsa_bits {} is below 2048",
                config.min_rsa_bits
            )));
        }
        let key_types = config
            .key_types
            .iter()
            .map(|k| match k.as_str() {
                "ec-p256" => Ok(KeyRule::EcP256),
                "ec-p384" => Ok(KeyRule::EcP384),
                "ed25519" => Ok(KeyRule::Ed25519),
                "rsa" => Ok(KeyRule::Rsa {
                    min_bits: config.min_rsa_bits,
                }),
                other => Err(bad(format!(
                    "unknown key type '{other}' (ec-p256, ec-p384, ed25519, rsa)"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if key_types.is_empty() {
            return Err(bad("key_types is empty".into()));
        }
        let max_ttl = match &config.max_ttl {
            Some(t) => parse_duration(t).map_err(bad)?,
            None => DEFAULT_MAX_TTL,
        };
        let default_ttl = match &config.default_ttl {
            Some(t) => parse_duration(t).map_err(bad)?,
            None => max_ttl,
        };
        if default_ttl > max_ttl {
            return Err(bad("default_ttl is longer than max_ttl".into()));
        }
        let key_usage = config
            .key_usage
            .iter()
            .map(|u| match u.as_str() {
                "digitalSignature" => Ok(KeyUsages::DigitalSignature),
                "keyEncipherment" => Ok(KeyUsages::KeyEncipherment),
                "keyAgreement" => Ok(KeyUsages::KeyAgreement),
                "nonRepudiation" | "contentCommitment" => Ok(KeyUsages::NonRepudiation),
                other => Err(bad(format!(
                    "key usage '{other}' is not allowed for end-entity certificates"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if key_usage.is_empty() {
            return Err(bad("key_usage is empty".into()));
        }
        if config.ext_key_usage.is_empty() {
            return Err(bad(
                "ext_key_usage is empty; name serverAuth and/or clientAuth (a certificate without EKU is valid for any purpose)".into(),
            ));
        }
        let ext_key_usage = config
            .ext_key_usage
            .iter()
            .map(|u| match u.as_str() {
                "serverAuth" => Ok(ID_KP_SERVER_AUTH),
                "clientAuth" => Ok(ID_KP_CLIENT_AUTH),
                other => Err(bad(format!(
                    "unknown extended key usage '{other}' (serverAuth, clientAuth)"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut subject = Vec::new();
        for key in ["C", "ST", "L", "O", "OU"] {
            if let Some(value) = config.subject.get(key) {
                if value.is_empty() || value.len() > 64 {
                    return Err(bad(format!("subject {key} must be 1 to 64 characters")));
                }
                if key == "C"
                    && (value.len() != 2 || !value.bytes().all(|b| b.is_ascii_uppercase()))
                {
                    return Err(bad("subject C must be a two-letter country code".into()));
                }
                subject.push((key.to_string(), value.clone()));
            }
        }
        if let Some(other) = config
            .subject
            .keys()
            .find(|k| !["C", "ST", "L", "O", "OU"].contains(&k.as_str()))
        {
            return Err(bad(format!(
                "subject attribute '{other}' is not supported (C, ST, L, O, OU; CN comes from the request)"
            )));
        }
        Ok(Profile {
            name: name.to_string(),
            domains,
            allow_wildcard_names: config.allow_wildcard_names,
            ip_ranges: config.ip_ranges.clone(),
            uri_patterns: config.uri_patterns.clone(),
            key_types,
            max_ttl,
            default_ttl,
            key_usage,
            ext_key_usage,
            subject,
        })
    }

    /// The longest validity this profile allows.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// The validity used when a request names none.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// Every way `names`, `key` and `ttl` break this profile (empty: none).
    pub fn violations(&self, names: &Names, key: KeySpec, ttl: Duration) -> Vec<String> {
        let mut out = Vec::new();
        if names.is_empty() {
            out.push("the request names no DNS name, IP address or URI".to_string());
        }
        let count = names.dns.len() + names.ips.len() + names.uris.len();
        if count > MAX_NAMES {
            // Checking each would only make an unbounded message.
            return vec![format!(
                "the request names {count} names; at most {MAX_NAMES} are allowed"
            )];
        }
        for name in &names.dns {
            if let Some(problem) = dns_name_problem(name) {
                out.push(problem);
                continue;
            }
            if name.starts_with("*.") && !self.allow_wildcard_names {
                out.push(format!(
                    "wildcard name {} is not allowed by profile '{}'",
                    quoted(name),
                    self.name
                ));
                continue;
            }
            if !self.domains.iter().any(|p| p.matches(name)) {
                out.push(format!(
                    "DNS name {} is not allowed by profile '{}' (allowed: {})",
                    quoted(name),
                    self.name,
                    list_or_none(self.domains.iter().map(|d| d.to_string()))
                ));
            }
        }
        for ip in &names.ips {
            if !self.ip_ranges.iter().any(|net| net.contains(ip)) {
                out.push(format!(
                    "IP address {ip} is outside the ranges of profile '{}' (allowed: {})",
                    self.name,
                    list_or_none(self.ip_ranges.iter().map(|n| n.to_string()))
                ));
            }
        }
        for uri in &names.uris {
            if let Some(problem) = uri_problem(uri) {
                out.push(problem);
            } else if !self.uri_patterns.iter().any(|p| uri_matches(p, uri)) {
                out.push(format!(
                    "URI {} is not allowed by profile '{}' (allowed: {})",
                    quoted(uri),
                    self.name,
                    list_or_none(self.uri_patterns.iter().cloned())
                ));
            }
        }
        let key_ok = self.key_types.iter().any(|rule| match (rule, key) {
            (KeyRule::EcP256, KeySpec::EcP256)
            | (KeyRule::EcP384, KeySpec::EcP384)
            | (KeyRule::Ed25519, KeySpec::Ed25519) => true,
            (KeyRule::Rsa { min_bits }, KeySpec::Rsa { bits }) => bits >= *min_bits,
            _ => false,
        });
        if !key_ok {
            out.push(format!(
                "key type {key} is not allowed by profile '{}'",
                self.name
            ));
        }
        if ttl > self.max_ttl {
            out.push(format!(
                "requested validity of {} exceeds the maximum of {} for profile '{}'",
                format_duration(ttl),
                format_duration(self.max_ttl),
                self.name
            ));
        }
        if ttl < Duration::from_secs(60) {
            out.push("requested validity is shorter than one minute".to_string());
        }
        out
    }
}

fn list_or_none(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

/// Parses durations such as `365d`, `12h`, `90d12h`, `30m`, `45s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration like 365d, 12h, 30m or 90d12h");
    let mut total: u64 = 0;
    let mut number = String::new();
    if text.trim().is_empty() {
        return Err(bad());
    }
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    let mut out = String::new();
    for (n, unit) in [(days, 'd'), (hours, 'h'), (minutes, 'm'), (seconds, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(toml_text: &str) -> Profile {
        let config: ProfileConfig = toml::from_str(toml_text).expect("toml");
        Profile::new("p", &config).expect("valid")
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("365d"), Ok(DEFAULT_MAX_TTL));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(format_duration(Duration::from_secs(129_600)), "1d12h");
        for bad in ["", "12", "d", "1x", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_violation_is_named() {
        let p = profile(
            r#"
            domains = ["**.test", "localhost"]
            ext_key_usage = ["serverAuth"]
            ip_ranges = ["10.0.0.0/8"]
            key_types = ["ec-p256", "rsa"]
            max_ttl = "30d"
            "#,
        );
        let names = Names {
            dns: vec![
                "api.test".into(),
                "evil.example.com".into(),
                "*.w.test".into(),
            ],
            ips: vec![
                "192.168.1.1".parse().expect("ip"),
                "10.1.2.3".parse().expect("ip"),
            ],
            uris: vec!["spiffe://x/y".into()],
        };
        let v = p.violations(&names, KeySpec::EcP384, Duration::from_secs(40 * 86_400));
        let text = v.join("\n");
        assert_eq!(v.len(), 6, "{text}");
        for needle in [
            "evil.example.com",
            "wildcard name '*.w.test'",
            "192.168.1.1",
            "spiffe://x/y",
            "key type ec-p384",
            "exceeds the maximum of 30d",
        ] {
            assert!(text.contains(needle), "missing {needle}: {text}");
        }
        let ok = Names {
            dns: vec!["api.test".into()],
            ips: vec!["10.1.2.3".parse().expect("ip")],
            uris: vec![],
        };
        assert!(
            p.violations(&ok, KeySpec::EcP256, Duration::from_secs(86_400))
                .is_empty()
        );
        let v = p.violations(
            &ok,
            KeySpec::Rsa { bits: 1024 },
            Duration::from_secs(86_400),
        );
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn bad_configuration_is_refused() {
        for bad in [
            "min_rsa_bits = 1024",
            "key_types = [\"dsa\"]",
            "max_ttl = \"forever\"",
            "ext_key_usage = [\"codeSigning\"]",
            "key_usage = [\"keyCertSign\"]",
            "subject = { CN = \"x\" }",
            "subject = { C = \"Germany\" }",
            "unknown_key = 1",
            "domains = [\"*\"]",
            "max_ttl = \"1d\"\ndefault_ttl = \"2d\"",
            "ext_key_usage = []",
        ] {
            // Otherwise valid, so each line is refused for its own reason.
            let text = if bad.starts_with("ext_key_usage") {
                bad.to_string()
            } else {
                format!("ext_key_usage = [\"serverAuth\"]\n{bad}")
            };
            let parsed: Result<ProfileConfig, _> = toml::from_str(&text);
            let result = parsed
                .map_err(|e| e.to_string())
                .and_then(|c| Profile::new("p", &c));
            assert!(result.is_err(), "{bad} should be refused");
        }
    }
}
