//! The appliance's configuration file (TOML). Unknown keys are refused.
//!
//! Relative paths are resolved against the directory holding the file.
//! `strongroom.example.toml` at the repository root documents every field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use strongroom_ca::ProfileConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Where the appliance keeps its database.
    pub(crate) data_dir: PathBuf,
    /// Listening addresses.
    pub(crate) listen: ListenConfig,
    /// The gRPC server's TLS identity.
    pub(crate) tls: TlsConfig,
    /// The HSM holding the CA key.
    pub(crate) hsm: HsmConfig,
    /// The issuing CA.
    pub(crate) ca: CaConfig,
    /// Issuance profiles by name.
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, ProfileConfig>,
    /// Limits on what clients may send.
    #[serde(default)]
    pub(crate) limits: Limits,
    /// How CRLs are published.
    #[serde(default)]
    pub(crate) crl: CrlConfig,
    /// How the OCSP responder answers.
    #[serde(default)]
    pub(crate) ocsp: OcspConfig,
}

/// How the OCSP responder answers (at the path of `ca.ocsp_url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OcspConfig {
    /// nextUpdate − thisUpdate of each response, e.g. "12h". Cached
    /// responses are replaced halfway through.
    #[serde(default = "default_ocsp_validity", with = "duration_text")]
    pub(crate) validity: std::time::Duration,
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            validity: default_ocsp_validity(),
        }
    }
}

fn default_ocsp_validity() -> std::time::Duration {
    std::time::Duration::from_secs(12 * 3_600)
}

/// How CRLs are published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CrlConfig {
    /// Partitions to spread new certificates over (0: one CRL). With
    /// partitions, `ca.crl_url` must contain `{partition}`.
    #[serde(default)]
    pub(crate) partitions: u32,
    /// nextUpdate − thisUpdate, e.g. "7d". A CRL is rebuilt halfway through.
    #[serde(default = "default_crl_validity", with = "duration_text")]
    pub(crate) validity: std::time::Duration,
    /// The longest a revocation waits before the CRLs show it, e.g. "60s".
    #[serde(default = "default_crl_rebuild_within", with = "duration_text")]
    pub(crate) rebuild_within: std::time::Duration,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            partitions: 0,
            validity: default_crl_validity(),
            rebuild_within: default_crl_rebuild_within(),
        }
    }
}

fn default_crl_validity() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 86_400)
}

fn default_crl_rebuild_within() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

/// Durations written as text ("7d", "12h", "90s"), as profiles write TTLs.
mod duration_text {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<std::time::Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        strongroom_ca::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Listening addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenConfig {
    /// gRPC (TLS), e.g. `127.0.0.1:8443`.
    pub(crate) grpc: SocketAddr,
    /// Plain HTTP for CA certificates, CRLs and OCSP, e.g. `127.0.0.1:8080`.
    pub(crate) http: SocketAddr,
}

/// The gRPC server's TLS identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsConfig {
    /// Server certificate chain (PEM).
    pub(crate) cert: PathBuf,
    /// Server private key (PEM, PKCS#8).
    pub(crate) key: PathBuf,
    /// CA certificates that client certificates must chain to. When set, a
    /// client certificate is optional, and a caller that presents one is
    /// identified by it.
    #[serde(default)]
    pub(crate) client_ca: Option<PathBuf>,
}

/// The HSM holding the CA key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HsmConfig {
    /// Path of the PKCS#11 module.
    pub(crate) module: PathBuf,
    /// The token: a label or a `pkcs11:token=…` URI.
    pub(crate) token: String,
    /// A file holding the user PIN (read once at start; mode 0600). Sealing
    /// with Shamir shares replaces this in a later release.
    pub(crate) pin_file: PathBuf,
    /// Session pool size; default one per CPU.
    #[serde(default)]
    pub(crate) sessions: Option<usize>,
}

/// The issuing CA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaConfig {
    /// The issuing key: `pkcs11:object=<label>` (found by label and the
    /// certificate's public key).
    pub(crate) issuer_key: String,
    /// The issuing CA's certificate (PEM).
    pub(crate) issuer_certificate: PathBuf,
    /// Certificates above the issuer, nearest first (PEM), e.g. the root.
    #[serde(default)]
    pub(crate) chain: Vec<PathBuf>,
    /// Signature algorithm, e.g. `ecdsa-p256-sha256`, `rsa-pss-sha256`;
    /// default: the key type's usual one.
    #[serde(default)]
    pub(crate) signature_algorithm: Option<String>,
    /// CRL Distribution Point written into certificates.
    #[serde(default)]
    pub(crate) crl_url: Option<String>,
    /// OCSP responder URL written into certificates.
    #[serde(default)]
    pub(crate) ocsp_url: Option<String>,
    /// URL of the issuing CA's certificate written into certificates.
    #[serde(default)]
    pub(crate) ca_issuers_url: Option<String>,
}

/// Limits on what clients may send.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limits {
    /// Largest gRPC request, in bytes (default 256 KiB).
    #[serde(default = "default_max_request_bytes")]
    pub(crate) max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: default_max_request_bytes(),
        }
    }
}

fn default_max_request_bytes() -> usize {
    256 * 1024
}

impl Config {
    /// Reads and checks a configuration file; relative paths become absolute.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .with_context(|| format!("configuration {} is invalid", path.display()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        config.resolve(&base);
        config
            .check()
            .with_context(|| format!("configuration {} is invalid", path.display()))?;
        Ok(config)
    }

    /// Refuses durations that cannot work.
    fn check(&self) -> anyhow::Result<()> {
        use std::time::Duration;
        let minute = Duration::from_secs(60);
        let year = Duration::from_secs(366 * 86_400);
        if self.crl.validity < minute || self.crl.validity > year {
            anyhow::bail!("crl.validity must be between 1m and 366d");
        }
        if self.crl.rebuild_within < Duration::from_secs(1)
            || self.crl.rebuild_within > self.crl.validity / 2
        {
            anyhow::bail!(
                "crl.rebuild_within must be at least 1s and at most half of crl.validity"
            );
        }
        if self.ocsp.validity < minute || self.ocsp.validity > Duration::from_secs(31 * 86_400) {
            anyhow::bail!("ocsp.validity must be between 1m and 31d");
        }
        Ok(())
    }

    fn resolve(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.data_dir);
        abs(&mut self.tls.cert);
        abs(&mut self.tls.key);
        if let Some(ca) = &mut self.tls.client_ca {
            abs(ca);
        }
        abs(&mut self.hsm.module);
        abs(&mut self.hsm.pin_file);
        abs(&mut self.ca.issuer_certificate);
        for c in &mut self.ca.chain {
            abs(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_unknown_keys_are_refused() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let config = Config::load(&example).expect("example parses");
        assert!(config.profiles.contains_key("server"));
        for profile in config.profiles.iter() {
            strongroom_ca::Profile::new(profile.0, profile.1).expect("example profile is valid");
        }
        assert!(config.tls.cert.is_absolute());
        let text = std::fs::read_to_string(&example).expect("read");
        let bad = text.replace("[listen]", "[listen]\nbogus = 1");
        assert!(toml::from_str::<Config>(&bad).is_err());
    }

    #[test]
    fn durations_that_cannot_work_are_refused() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let text = std::fs::read_to_string(&example).expect("read");
        let dir = tempfile::tempdir().expect("tempdir");
        for (from, to) in [
            ("validity = \"7d\"", "validity = \"0s\""),
            ("rebuild_within = \"60s\"", "rebuild_within = \"4d\""),
            ("rebuild_within = \"60s\"", "rebuild_within = \"0s\""),
            ("validity = \"12h\"", "validity = \"400d\""),
        ] {
            assert!(text.contains(from), "{from}");
            let path = dir.path().join("bad.toml");
            std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
            let error = format!("{:#}", Config::load(&path).expect_err(to));
            assert!(error.contains("must be"), "{to}: {error}");
        }
    }
}
