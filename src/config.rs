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
    /// The PKCS#11 HSM: the seal's login, and every key not placed elsewhere.
    pub(crate) hsm: HsmConfig,
    /// A YubiHSM2 that keys may be placed in (`ca.backend` or
    /// `transit.backend` = "yubihsm").
    #[serde(default)]
    pub(crate) yubihsm: Option<YubiHsmSection>,
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
    /// Transit encryption (off unless `wrapping_key` is set).
    #[serde(default)]
    pub(crate) transit: TransitConfig,
    /// The audit trail.
    #[serde(default)]
    pub(crate) audit: AuditConfig,
    /// Who callers are and what they may do.
    #[serde(default)]
    pub(crate) auth: AuthConfig,
    /// The Prometheus metrics endpoint; absent: not served.
    #[serde(default)]
    pub(crate) metrics: Option<MetricsConfig>,
}

/// Callers' identities and the policies that grant them capabilities (see
/// `server::access`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthConfig {
    /// The policy file, read at start and on SIGHUP. Without one nothing is
    /// granted: only the open operations (health, seal status and unseal,
    /// the CA chain and CRLs) answer.
    #[serde(default)]
    pub(crate) policies: Option<PathBuf>,
    /// Where a client certificate's identity comes from, first found wins:
    /// `uri`, `dns`, `cn` (default all three, in that order).
    #[serde(default = "default_identity_sources")]
    pub(crate) identity: Vec<crate::server::access::IdentitySource>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            policies: None,
            identity: default_identity_sources(),
        }
    }
}

fn default_identity_sources() -> Vec<crate::server::access::IdentitySource> {
    use crate::server::access::IdentitySource;
    vec![IdentitySource::Uri, IdentitySource::Dns, IdentitySource::Cn]
}

/// The Prometheus metrics endpoint: `GET /metrics`, plain HTTP on its own
/// listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsConfig {
    /// Where it listens, e.g. `127.0.0.1:9464`.
    pub(crate) listen: SocketAddr,
}

/// The audit trail: one hash-chained record per request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditConfig {
    /// Directory of the trail's files; default `<data_dir>/audit`.
    #[serde(default)]
    pub(crate) dir: Option<PathBuf>,
    /// Rotate to a new file at this size, in bytes (default 64 MiB).
    #[serde(default = "default_audit_file_bytes")]
    pub(crate) max_file_bytes: u64,
    /// Longest a request waits for its record to be written, e.g. "1s";
    /// past it, the request fails with UNAVAILABLE.
    #[serde(default = "default_audit_timeout", with = "duration_text")]
    pub(crate) timeout: std::time::Duration,
    /// Answer a request only once its record is flushed to the disk, not
    /// merely written to the operating system (default false).
    #[serde(default)]
    pub(crate) sync_before_reply: bool,
    /// Also send every record to syslog: `unix:/dev/log`, `udp://HOST:PORT`
    /// or `tcp://HOST:PORT`. A record is accepted once the file or syslog
    /// has it; unset, the file alone.
    #[serde(default)]
    pub(crate) syslog: Option<crate::audit::SyslogTarget>,
    /// The syslog facility of the records (default `authpriv`).
    #[serde(default)]
    pub(crate) syslog_facility: crate::audit::SyslogFacility,
    /// Label of the HSM's HMAC key for digests of sensitive values,
    /// generated in the token at the first unseal that needs it (default
    /// `strongroom-audit-hmac`).
    #[serde(default = "default_audit_hmac_key")]
    pub(crate) hmac_key: String,
    /// Record digests of transit plaintexts, ciphertexts and messages
    /// (default true).
    #[serde(default = "default_true")]
    pub(crate) digest_values: bool,
    /// Record digests of CSRs (default false).
    #[serde(default)]
    pub(crate) digest_csrs: bool,
}

fn default_audit_hmac_key() -> String {
    "strongroom-audit-hmac".into()
}

fn default_true() -> bool {
    true
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            dir: None,
            max_file_bytes: default_audit_file_bytes(),
            timeout: default_audit_timeout(),
            sync_before_reply: false,
            syslog: None,
            syslog_facility: crate::audit::SyslogFacility::default(),
            hmac_key: default_audit_hmac_key(),
            digest_values: true,
            digest_csrs: false,
        }
    }
}

fn default_audit_file_bytes() -> u64 {
    64 << 20
}

fn default_audit_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(1)
}

impl Config {
    /// Where and how the audit trail is written.
    pub(crate) fn audit_trail(&self) -> crate::audit::TrailConfig {
        crate::audit::TrailConfig {
            dir: self
                .audit
                .dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("audit")),
            max_file_bytes: self.audit.max_file_bytes,
            timeout: self.audit.timeout,
            sync_before_reply: self.audit.sync_before_reply,
            syslog: self
                .audit
                .syslog
                .clone()
                .map(|target| crate::audit::SyslogConfig {
                    target,
                    facility: self.audit.syslog_facility,
                }),
        }
    }
}

/// Transit encryption: where its wrapping key is and how it answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitConfig {
    /// Where the wrapping keys (KEKs) live (default: the PKCS#11 token).
    /// Every KEK, the rotated ones included, lives there.
    #[serde(default)]
    pub(crate) backend: Backend,
    /// The HSM's AES-256 wrapping key (KEK), recorded as the current KEK on
    /// the first start; after a KEK rotation the store's current KEK is used
    /// instead. In the token: a `pkcs11:object=…` URI or a bare label; in
    /// the YubiHSM2: the wrap key's label. Unset: the Transit service
    /// answers FAILED_PRECONDITION.
    #[serde(default)]
    pub(crate) wrapping_key: Option<String>,
    /// Prefix of ciphertexts, signatures and HMACs.
    #[serde(default = "default_transit_prefix")]
    pub(crate) prefix: String,
    /// Most unwrapped key versions kept in memory.
    #[serde(default = "default_transit_cache")]
    pub(crate) cache_capacity: usize,
    /// Largest Transit request, in bytes (default 16 MiB: a batch of 1,000
    /// items, or one 1 MiB plaintext).
    #[serde(default = "default_transit_max_request")]
    pub(crate) max_request_bytes: usize,
    /// How often keys due for automatic rotation are looked for, e.g. "1m".
    #[serde(default = "default_transit_rotation_check", with = "duration_text")]
    pub(crate) rotation_check: std::time::Duration,
    /// Most key versions re-wrapped per second after a KEK rotation.
    #[serde(default = "default_kek_rewrap_rate")]
    pub(crate) kek_rewrap_rate: u32,
}

impl Default for TransitConfig {
    fn default() -> Self {
        TransitConfig {
            backend: Backend::Pkcs11,
            wrapping_key: None,
            prefix: default_transit_prefix(),
            cache_capacity: default_transit_cache(),
            max_request_bytes: default_transit_max_request(),
            rotation_check: default_transit_rotation_check(),
            kek_rewrap_rate: default_kek_rewrap_rate(),
        }
    }
}

fn default_kek_rewrap_rate() -> u32 {
    1000
}

fn default_transit_prefix() -> String {
    strongroom_transit::DEFAULT_PREFIX.to_string()
}

fn default_transit_cache() -> usize {
    1024
}

fn default_transit_max_request() -> usize {
    16 << 20
}

fn default_transit_rotation_check() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

/// How the OCSP responder answers (at the path of `ca.ocsp_url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OcspConfig {
    /// nextUpdate − thisUpdate of each response, e.g. "12h". Pre-signed
    /// responses are replaced halfway through.
    #[serde(default = "default_ocsp_validity", with = "duration_text")]
    pub(crate) validity: std::time::Duration,
    /// Who signs responses: a delegated responder certificate whose key is
    /// generated in the HSM (`delegated`), or the issuing CA key (`issuer`).
    #[serde(default)]
    pub(crate) signer: OcspSignerKind,
    /// Validity of a delegated responder certificate, e.g. "7d"; at least
    /// three times `validity`. A new one (new key, new certificate) replaces
    /// it when a third of its validity is left.
    #[serde(default = "default_ocsp_signer_validity", with = "duration_text")]
    pub(crate) signer_validity: std::time::Duration,
    /// Key type of a delegated responder: `ec-p256`, `ec-p384`, `ed25519`,
    /// `rsa-3072`, ...
    #[serde(default = "default_ocsp_signer_key")]
    pub(crate) signer_key: String,
    /// CertID hash algorithms (`sha1`, `sha256`) whose responses are signed
    /// ahead for every certificate. Responses for the others are signed on
    /// first request, then kept fresh like the rest.
    #[serde(default = "default_presign_hashes")]
    pub(crate) presign: Vec<String>,
}

/// Who signs OCSP responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OcspSignerKind {
    /// A delegated OCSP signing certificate, its key in the HSM.
    #[default]
    Delegated,
    /// The issuing CA key itself.
    Issuer,
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            validity: default_ocsp_validity(),
            signer: OcspSignerKind::default(),
            signer_validity: default_ocsp_signer_validity(),
            signer_key: default_ocsp_signer_key(),
            presign: default_presign_hashes(),
        }
    }
}

impl OcspConfig {
    /// The CertID hashes to pre-sign.
    pub(crate) fn presign_hashes(&self) -> anyhow::Result<Vec<strongroom_ca::CertIdHash>> {
        let mut hashes = Vec::new();
        for name in &self.presign {
            let hash = strongroom_ca::CertIdHash::ALL
                .into_iter()
                .find(|h| h.name() == name)
                .with_context(|| {
                    format!("ocsp.presign: unknown hash {name:?}; use \"sha1\" or \"sha256\"")
                })?;
            if !hashes.contains(&hash) {
                hashes.push(hash);
            }
        }
        Ok(hashes)
    }

    /// The key type of a delegated responder.
    pub(crate) fn signer_key_spec(&self) -> anyhow::Result<strongroom_hsm::KeySpec> {
        self.signer_key
            .parse()
            .map_err(|e| anyhow::anyhow!("ocsp.signer_key: {e}"))
    }
}

fn default_ocsp_validity() -> std::time::Duration {
    std::time::Duration::from_secs(12 * 3_600)
}

fn default_ocsp_signer_validity() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 86_400)
}

fn default_ocsp_signer_key() -> String {
    "ec-p256".to_string()
}

fn default_presign_hashes() -> Vec<String> {
    vec!["sha1".to_string()]
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
    /// With delta CRLs, the delta CRLs show it.
    #[serde(default = "default_crl_rebuild_within", with = "duration_text")]
    pub(crate) rebuild_within: std::time::Duration,
    /// Whether delta CRLs are published (RFC 5280 5.2.4), at
    /// [`CrlConfig::delta_url`]. A revocation then rebuilds only the delta
    /// CRLs; complete CRLs are rebuilt halfway through `validity`.
    #[serde(default)]
    pub(crate) delta: bool,
    /// nextUpdate − thisUpdate of a delta CRL, e.g. "1h"; shorter than
    /// `validity`. A delta CRL is rebuilt halfway through, too.
    #[serde(default = "default_crl_delta_validity", with = "duration_text")]
    pub(crate) delta_validity: std::time::Duration,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            partitions: 0,
            validity: default_crl_validity(),
            rebuild_within: default_crl_rebuild_within(),
            delta: false,
            delta_validity: default_crl_delta_validity(),
        }
    }
}

impl CrlConfig {
    /// Where delta CRLs are published when `delta` is on: the CRL URL
    /// `crl_url` with `-delta` before its trailing `.crl`
    /// (`…/issuing.crl` → `…/issuing-delta.crl`, `…/issuing-{partition}.crl`
    /// → `…/issuing-{partition}-delta.crl`). `None` when `delta` is off;
    /// an error when there is no CRL URL or it does not end in `.crl`.
    pub(crate) fn delta_url(&self, crl_url: Option<&str>) -> anyhow::Result<Option<String>> {
        if !self.delta {
            return Ok(None);
        }
        let Some(crl_url) = crl_url else {
            anyhow::bail!("crl.delta needs ca.crl_url: delta CRLs are published beside the CRL");
        };
        match crl_url.strip_suffix(".crl") {
            Some(stem) => Ok(Some(format!("{stem}-delta.crl"))),
            None => anyhow::bail!(
                "crl.delta needs a ca.crl_url ending in .crl (the delta CRL URL is made by \
                 inserting -delta before it), not {crl_url:?}"
            ),
        }
    }
}

fn default_crl_validity() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 86_400)
}

fn default_crl_rebuild_within() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

fn default_crl_delta_validity() -> std::time::Duration {
    std::time::Duration::from_secs(3_600)
}

/// An optional duration written as text; absent means `None`.
mod optional_duration_text {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<std::time::Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        strongroom_ca::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
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
    /// identified by it (`auth.identity`).
    #[serde(default)]
    pub(crate) client_ca: Option<PathBuf>,
    /// Whether the appliance renews its own server certificate while
    /// unsealed: a new key, a certificate from the issuing CA, both files
    /// replaced, and the new certificate served to new connections without
    /// a restart (default true).
    #[serde(default = "default_true")]
    pub(crate) auto_renew: bool,
    /// The names a renewed certificate is for (DNS names, IP addresses,
    /// URIs); the first DNS name or IP address is also its common name.
    /// Empty (the default): the names of the certificate being served.
    #[serde(default)]
    pub(crate) names: Vec<String>,
    /// The profile renewed certificates are issued under (default
    /// `server`); their validity is the profile's default.
    #[serde(default = "default_tls_profile")]
    pub(crate) profile: String,
    /// The key type of a renewed certificate: `ec-p256` (default), `ec-p384`
    /// or `ed25519`, generated in memory like every server-made key.
    #[serde(default = "default_tls_key_type")]
    pub(crate) key_type: String,
    /// Renew once the certificate's remaining validity is below this, e.g.
    /// "30d". Unset (the default): once two thirds of its validity have
    /// passed.
    #[serde(default, with = "optional_duration_text")]
    pub(crate) renew_before: Option<std::time::Duration>,
    /// How often the certificate is checked while unsealed, e.g. "5m"
    /// (default), between 1s and 1h; also once right after unsealing.
    #[serde(default = "default_tls_renew_check", with = "duration_text")]
    pub(crate) renew_check: std::time::Duration,
}

impl TlsConfig {
    /// The key type of renewed certificates.
    pub(crate) fn key_spec(&self) -> anyhow::Result<strongroom_hsm::KeySpec> {
        use strongroom_hsm::KeySpec;
        match self.key_type.parse::<KeySpec>() {
            Ok(spec @ (KeySpec::EcP256 | KeySpec::EcP384 | KeySpec::Ed25519)) => Ok(spec),
            _ => anyhow::bail!(
                "tls.key_type must be ec-p256, ec-p384 or ed25519, not {:?}",
                self.key_type
            ),
        }
    }
}

fn default_tls_profile() -> String {
    "server".to_string()
}

fn default_tls_key_type() -> String {
    "ec-p256".to_string()
}

fn default_tls_renew_check() -> std::time::Duration {
    std::time::Duration::from_secs(300)
}

/// The HSM holding the CA key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HsmConfig {
    /// Path of the PKCS#11 module.
    pub(crate) module: PathBuf,
    /// The token: a label or a `pkcs11:token=…` URI.
    pub(crate) token: String,
    /// Session pool size; default one per CPU.
    #[serde(default)]
    pub(crate) sessions: Option<usize>,
}

/// Where a key lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    /// The PKCS#11 token of `[hsm]`.
    #[default]
    Pkcs11,
    /// The YubiHSM2 of `[yubihsm]`.
    Yubihsm,
}

/// A YubiHSM2, reached natively (not through PKCS#11). Its authentication
/// key's password is never configured: `strongroom operator init` takes it
/// once and keeps it wrapped by the PKCS#11 token, so only an unsealed
/// appliance can read it. The authentication key id is held as a secret
/// too: `Debug` leaves it out.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct YubiHsmSection {
    /// `http://HOST:PORT` (yubihsm-connector), `usb` or `usb:SERIAL`.
    pub(crate) connector: String,
    /// The authentication key's object id.
    pub(crate) auth_key_id: u16,
    /// The domain keys are generated in (1 to 16).
    #[serde(default = "default_yubihsm_domain")]
    pub(crate) domain: u8,
    /// Session pool size, 1 to 8 (the device has 16 sessions).
    #[serde(default = "default_yubihsm_sessions")]
    pub(crate) sessions: usize,
}

impl std::fmt::Debug for YubiHsmSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubiHsmSection")
            .field("connector", &self.connector)
            .field("auth_key_id", &"<redacted>")
            .field("domain", &self.domain)
            .field("sessions", &self.sessions)
            .finish()
    }
}

fn default_yubihsm_domain() -> u8 {
    1
}

fn default_yubihsm_sessions() -> usize {
    4
}

impl YubiHsmSection {
    /// The connector named by `connector`.
    pub(crate) fn connector(&self) -> anyhow::Result<strongroom_hsm::YubiHsmConnector> {
        use strongroom_hsm::YubiHsmConnector;
        let text = self.connector.as_str();
        if text == "usb" {
            return Ok(YubiHsmConnector::Usb { serial: None });
        }
        if let Some(serial) = text.strip_prefix("usb:") {
            return Ok(YubiHsmConnector::Usb {
                serial: Some(serial.to_string()),
            });
        }
        let rest = text.strip_prefix("http://").with_context(|| {
            format!("yubihsm.connector must be http://HOST:PORT, usb or usb:SERIAL, not {text:?}")
        })?;
        let rest = rest.trim_end_matches('/');
        let (addr, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("yubihsm.connector {text:?} names no port"))?;
        let port = port
            .parse()
            .with_context(|| format!("yubihsm.connector {text:?} has a bad port"))?;
        Ok(YubiHsmConnector::Http {
            addr: addr.to_string(),
            port,
        })
    }

    /// The pool settings.
    pub(crate) fn config(&self) -> strongroom_hsm::YubiHsmConfig {
        strongroom_hsm::YubiHsmConfig {
            auth_key_id: self.auth_key_id,
            domain: self.domain,
            sessions: self.sessions,
            ..strongroom_hsm::YubiHsmConfig::default()
        }
    }
}

/// The issuing CA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaConfig {
    /// Where the issuing key lives (default: the PKCS#11 token).
    #[serde(default)]
    pub(crate) backend: Backend,
    /// The issuing key: `pkcs11:object=<label>` in the token, or the key's
    /// label in the YubiHSM2 (found by label and the certificate's public key).
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
        if self.auth.identity.is_empty() {
            anyhow::bail!("auth.identity must name at least one of uri, dns, cn");
        }
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
        if self.crl.delta
            && (self.crl.delta_validity < minute || self.crl.delta_validity >= self.crl.validity)
        {
            anyhow::bail!("crl.delta_validity must be at least 1m and shorter than crl.validity");
        }
        self.crl.delta_url(self.ca.crl_url.as_deref())?;
        if self.ocsp.validity < minute || self.ocsp.validity > Duration::from_secs(31 * 86_400) {
            anyhow::bail!("ocsp.validity must be between 1m and 31d");
        }
        if self.ocsp.signer == OcspSignerKind::Delegated {
            if self.ocsp.signer_validity < self.ocsp.validity * 3 {
                anyhow::bail!("ocsp.signer_validity must be at least three times ocsp.validity");
            }
            self.ocsp.signer_key_spec()?;
        }
        self.ocsp.presign_hashes()?;
        let transit = &self.transit;
        let prefix_ok = !transit.prefix.is_empty()
            && transit.prefix.len() <= 32
            && transit
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok {
            anyhow::bail!("transit.prefix must be 1 to 32 characters of A-Z, a-z, 0-9, '-', '_'");
        }
        if transit.cache_capacity == 0 {
            anyhow::bail!("transit.cache_capacity must be at least 1");
        }
        if transit.max_request_bytes < 64 * 1024 || transit.max_request_bytes > 64 << 20 {
            anyhow::bail!("transit.max_request_bytes must be between 64 KiB and 64 MiB");
        }
        if transit.rotation_check < Duration::from_secs(1)
            || transit.rotation_check > Duration::from_secs(3600)
        {
            anyhow::bail!("transit.rotation_check must be between 1s and 1h");
        }
        if transit.backend == Backend::Yubihsm {
            if self.yubihsm.is_none() {
                anyhow::bail!("transit.backend = \"yubihsm\" needs a [yubihsm] section");
            }
            if transit
                .wrapping_key
                .as_deref()
                .is_some_and(|key| key.starts_with("pkcs11:"))
            {
                anyhow::bail!(
                    "transit.wrapping_key names a PKCS#11 object, but transit.backend is \
                     \"yubihsm\": give the wrap key's label in the YubiHSM2"
                );
            }
        }
        match (&self.yubihsm, self.ca.backend) {
            (None, Backend::Yubihsm) => {
                anyhow::bail!("ca.backend = \"yubihsm\" needs a [yubihsm] section")
            }
            (Some(yubihsm), _) => {
                yubihsm.connector()?;
                if !(1..=strongroom_hsm::YUBIHSM_MAX_SESSIONS).contains(&yubihsm.sessions) {
                    anyhow::bail!(
                        "yubihsm.sessions must be between 1 and {}",
                        strongroom_hsm::YUBIHSM_MAX_SESSIONS
                    );
                }
                if !(1..=16).contains(&yubihsm.domain) {
                    anyhow::bail!("yubihsm.domain must be between 1 and 16");
                }
            }
            (None, Backend::Pkcs11) => {}
        }
        let audit = &self.audit;
        if audit.max_file_bytes < 64 * 1024 {
            anyhow::bail!("audit.max_file_bytes must be at least 64 KiB");
        }
        if audit.timeout < Duration::from_millis(10) || audit.timeout > Duration::from_secs(30) {
            anyhow::bail!("audit.timeout must be between 10ms and 30s");
        }
        self.check_tls()?;
        if transit.kek_rewrap_rate == 0 || transit.kek_rewrap_rate > 1_000_000 {
            anyhow::bail!(
                "transit.kek_rewrap_rate must be between 1 and 1000000 versions a second"
            );
        }
        Ok(())
    }

    /// Refuses renewal settings that cannot work.
    fn check_tls(&self) -> anyhow::Result<()> {
        use std::time::Duration;
        let tls = &self.tls;
        if tls.renew_check < Duration::from_secs(1) || tls.renew_check > Duration::from_secs(3600) {
            anyhow::bail!("tls.renew_check must be between 1s and 1h");
        }
        if tls.renew_before == Some(Duration::ZERO) {
            anyhow::bail!("tls.renew_before must be longer than 0s");
        }
        tls.key_spec()?;
        for name in &tls.names {
            crate::server::tls::renew::parse_name(name)
                .with_context(|| format!("tls.names: {name:?}"))?;
        }
        if tls.auto_renew && !self.profiles.contains_key(&tls.profile) {
            anyhow::bail!(
                "tls.profile {:?} is not one of the [profiles]; renewals are issued under it",
                tls.profile
            );
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
        if let Some(dir) = &mut self.audit.dir {
            abs(dir);
        }
        abs(&mut self.tls.cert);
        abs(&mut self.tls.key);
        if let Some(ca) = &mut self.tls.client_ca {
            abs(ca);
        }
        if let Some(policies) = &mut self.auth.policies {
            abs(policies);
        }
        abs(&mut self.hsm.module);
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
    fn yubihsm_connectors_are_http_or_usb() {
        use strongroom_hsm::YubiHsmConnector;
        let section = |connector: &str| YubiHsmSection {
            connector: connector.into(),
            auth_key_id: 1,
            domain: 1,
            sessions: 4,
        };
        assert_eq!(
            section("http://127.0.0.1:12345").connector().expect("http"),
            YubiHsmConnector::Http {
                addr: "127.0.0.1".into(),
                port: 12345
            }
        );
        assert_eq!(
            section("usb").connector().expect("usb"),
            YubiHsmConnector::Usb { serial: None }
        );
        assert_eq!(
            section("usb:0123456789").connector().expect("usb serial"),
            YubiHsmConnector::Usb {
                serial: Some("0123456789".into())
            }
        );
        for bad in [
            "https://hsm:12345",
            "http://hsm",
            "http://hsm:port",
            "serial",
        ] {
            assert!(section(bad).connector().is_err(), "{bad}");
        }
    }

    /// Issue 8: a CA can keep its key in a YubiHSM2 while transit's KEK
    /// lives in the token, or the other way round.
    #[test]
    fn transit_keks_live_in_the_configured_backend() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let text = std::fs::read_to_string(&example).expect("read");
        let config: Config = toml::from_str(&text).expect("example parses");
        assert_eq!(config.transit.backend, Backend::Pkcs11);
        assert_eq!(config.ca.backend, Backend::Pkcs11);

        let with_yubihsm = text
            .replacen("# [yubihsm]\n", "[yubihsm]\n", 1)
            .replacen("# connector = ", "connector = ", 1)
            .replacen("# auth_key_id = 1", "auth_key_id = 1", 1);
        let kek = "wrapping_key = \"pkcs11:object=transit-wrap\"";
        assert!(text.contains(kek));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("transit.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).expect("write");
            Config::load(&path).map_err(|e| format!("{e:#}"))
        };
        let in_yubihsm = "backend = \"yubihsm\"\nwrapping_key = \"transit-wrap\"";
        let config = load(&with_yubihsm.replacen(kek, in_yubihsm, 1)).expect("KEK in the YubiHSM2");
        assert_eq!(config.transit.backend, Backend::Yubihsm);
        assert_eq!(config.transit.wrapping_key.as_deref(), Some("transit-wrap"));
        // The CA key stays in the token.
        assert_eq!(config.ca.backend, Backend::Pkcs11);

        // The other way round: the CA key in the YubiHSM2, the KEK in the token.
        let ca_in_yubihsm = with_yubihsm.replacen(
            "issuer_key = \"pkcs11:object=issuing-ca\"",
            "backend = \"yubihsm\"\nissuer_key = \"issuing-ca\"",
            1,
        );
        let config = load(&ca_in_yubihsm).expect("CA key in the YubiHSM2");
        assert_eq!(
            (config.ca.backend, config.transit.backend),
            (Backend::Yubihsm, Backend::Pkcs11)
        );

        for (text, says) in [
            (
                text.replacen(kek, in_yubihsm, 1),
                "needs a [yubihsm] section",
            ),
            (
                with_yubihsm.replacen(kek, &format!("backend = \"yubihsm\"\n{kek}"), 1),
                "label in the YubiHSM2",
            ),
            (
                with_yubihsm.replacen(kek, "backend = \"softhsm\"\nwrapping_key = \"k\"", 1),
                "unknown variant",
            ),
        ] {
            let error = load(&text).expect_err(says);
            assert!(error.contains(says), "{error}");
        }
    }

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
    fn metrics_are_served_only_when_configured() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let text = std::fs::read_to_string(&example).expect("read");
        let config: Config = toml::from_str(&text).expect("example parses");
        let metrics = config.metrics.expect("the example serves metrics");
        assert_eq!(metrics.listen, SocketAddr::from(([127, 0, 0, 1], 9464)));
        // The last section: without it, nothing is served.
        let (without, _) = text.split_once("\n[metrics]\n").expect("[metrics]");
        let config: Config = toml::from_str(without).expect("without [metrics]");
        assert!(config.metrics.is_none());
        let listen = "listen = \"127.0.0.1:9464\"";
        assert!(text.contains(listen));
        for bad in [
            "listen = \"127.0.0.1:9464\"\npath = \"/m\"",
            "listen = \"localhost\"",
            "",
        ] {
            let text = text.replace(listen, bad);
            assert!(toml::from_str::<Config>(&text).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn delta_crls_are_published_beside_the_crl_and_checked() {
        let on = CrlConfig {
            delta: true,
            ..CrlConfig::default()
        };
        let url = |crl_url| on.delta_url(Some(crl_url)).expect("derived");
        assert_eq!(
            url("http://ca.test/crl/issuing.crl").as_deref(),
            Some("http://ca.test/crl/issuing-delta.crl")
        );
        assert_eq!(
            url("http://ca.test/crl/issuing-{partition}.crl").as_deref(),
            Some("http://ca.test/crl/issuing-{partition}-delta.crl")
        );
        assert_eq!(
            CrlConfig::default()
                .delta_url(Some("http://ca.test/crl/issuing.crl"))
                .expect("off"),
            None
        );
        let no_url = on.delta_url(None).expect_err("no CRL URL");
        assert!(no_url.to_string().contains("ca.crl_url"), "{no_url}");

        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let text = std::fs::read_to_string(&example).expect("read");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("delta.toml");
        let text = text.replacen("delta = false", "delta = true", 1);
        std::fs::write(&path, &text).expect("write");
        let config = Config::load(&path).expect("deltas on");
        assert!(config.crl.delta);
        assert_eq!(
            config.crl.delta_validity,
            std::time::Duration::from_secs(3_600)
        );
        for (from, to, says) in [
            (
                "delta_validity = \"1h\"",
                "delta_validity = \"7d\"",
                "shorter than crl.validity",
            ),
            (
                "delta_validity = \"1h\"",
                "delta_validity = \"30s\"",
                "at least 1m",
            ),
            ("/crl/issuing.crl\"", "/crl/issuing\"", "ending in .crl"),
        ] {
            assert!(text.contains(from), "{from}");
            std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
            let error = format!("{:#}", Config::load(&path).expect_err(to));
            assert!(error.contains(says), "{to}: {error}");
        }
    }

    #[test]
    fn ocsp_signer_settings_are_checked() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let config = Config::load(&example).expect("example parses");
        assert_eq!(config.ocsp.signer, OcspSignerKind::Delegated);
        assert_eq!(
            config.ocsp.presign_hashes().expect("hashes"),
            vec![strongroom_ca::CertIdHash::Sha1]
        );
        let text = std::fs::read_to_string(&example).expect("read");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ocsp.toml");
        for (from, to, says) in [
            (
                "signer_validity = \"7d\"",
                "signer_validity = \"1d\"",
                "at least three times ocsp.validity",
            ),
            (
                "signer_key = \"ec-p256\"",
                "signer_key = \"dsa\"",
                "ocsp.signer_key",
            ),
            (
                "presign = [\"sha1\"]",
                "presign = [\"md5\"]",
                "unknown hash \"md5\"",
            ),
            (
                "signer = \"delegated\"",
                "signer = \"root\"",
                "unknown variant",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
            let error = format!("{:#}", Config::load(&path).expect_err(to));
            assert!(error.contains(says), "{to}: {error}");
        }
        // Signing with the issuer key needs no responder settings.
        let issuer = text
            .replacen("signer = \"delegated\"", "signer = \"issuer\"", 1)
            .replacen("signer_validity = \"7d\"", "signer_validity = \"1d\"", 1);
        std::fs::write(&path, issuer).expect("write");
        let config = Config::load(&path).expect("issuer-signed");
        assert_eq!(config.ocsp.signer, OcspSignerKind::Issuer);
    }

    #[test]
    fn the_audit_syslog_target_and_facility_are_parsed_and_checked() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let text = std::fs::read_to_string(&example).expect("read");
        let config = Config::load(&example).expect("example parses");
        assert_eq!(config.audit.syslog, None);
        assert!(config.audit_trail().syslog.is_none());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("syslog.toml");
        let on = text
            .replacen(
                "# syslog = \"unix:/dev/log\"",
                "syslog = \"tcp://logs.test:6514\"",
                1,
            )
            .replacen(
                "syslog_facility = \"authpriv\"",
                "syslog_facility = \"local3\"",
                1,
            );
        std::fs::write(&path, &on).expect("write");
        let syslog = Config::load(&path)
            .expect("syslog on")
            .audit_trail()
            .syslog
            .expect("configured");
        assert_eq!(
            syslog.target,
            crate::audit::SyslogTarget::Tcp("logs.test:6514".into())
        );
        assert_eq!(syslog.facility, crate::audit::SyslogFacility::Local3);
        for (to, says) in [
            ("syslog = \"logs.test:514\"", "is not a syslog target"),
            ("syslog = \"udp://logs.test\"", "needs a host and a port"),
            ("syslog_facility = \"kern\"", "unknown variant"),
        ] {
            let from = if to.starts_with("syslog =") {
                "# syslog = \"unix:/dev/log\""
            } else {
                "syslog_facility = \"authpriv\""
            };
            std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
            let error = format!("{:#}", Config::load(&path).expect_err(to));
            assert!(error.contains(says), "{to}: {error}");
        }
    }

    #[test]
    fn server_certificate_renewal_settings_are_read_and_checked() {
        use std::time::Duration;
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("strongroom.example.toml");
        let text = std::fs::read_to_string(&example).expect("read");
        let tls = Config::load(&example).expect("example parses").tls;
        assert!(tls.auto_renew);
        assert!(tls.names.is_empty());
        assert_eq!(tls.profile, "server");
        assert_eq!(
            tls.key_spec().expect("key"),
            strongroom_hsm::KeySpec::EcP256
        );
        assert_eq!(tls.renew_before, None);
        assert_eq!(tls.renew_check, Duration::from_secs(300));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tls.toml");
        let on = text
            .replacen(
                "# names = [\"grpc.example.test\", \"10.0.0.5\"]",
                "names = [\"localhost\", \"127.0.0.1\"]",
                1,
            )
            .replacen("# renew_before = \"30d\"", "renew_before = \"365d\"", 1)
            .replacen("renew_check = \"5m\"", "renew_check = \"1s\"", 1)
            .replacen("key_type = \"ec-p256\"", "key_type = \"ed25519\"", 1);
        std::fs::write(&path, &on).expect("write");
        let tls = Config::load(&path).expect("renewal on").tls;
        assert!(tls.auto_renew);
        assert_eq!(tls.names, ["localhost", "127.0.0.1"]);
        assert_eq!(tls.renew_before, Some(Duration::from_secs(365 * 86_400)));
        assert_eq!(tls.renew_check, Duration::from_secs(1));
        assert_eq!(
            tls.key_spec().expect("key"),
            strongroom_hsm::KeySpec::Ed25519
        );
        for (from, to, says) in [
            (
                "renew_check = \"1s\"",
                "renew_check = \"2h\"",
                "between 1s and 1h",
            ),
            (
                "renew_check = \"1s\"",
                "renew_check = \"0s\"",
                "between 1s and 1h",
            ),
            (
                "renew_before = \"365d\"",
                "renew_before = \"0s\"",
                "longer than 0s",
            ),
            (
                "renew_before = \"365d\"",
                "renew_before = \"soon\"",
                "not a duration",
            ),
            (
                "key_type = \"ed25519\"",
                "key_type = \"rsa-2048\"",
                "tls.key_type",
            ),
            (
                "profile = \"server\"",
                "profile = \"web\"",
                "not one of the [profiles]",
            ),
            ("\"127.0.0.1\"]", "\"bad name\"]", "tls.names"),
        ] {
            assert!(on.contains(from), "{from}");
            std::fs::write(&path, on.replacen(from, to, 1)).expect("write");
            let error = format!("{:#}", Config::load(&path).expect_err(to));
            assert!(error.contains(says), "{to}: {error}");
        }
        // The profile matters only when renewing.
        let off = on
            .replacen("auto_renew = true", "auto_renew = false", 1)
            .replacen("profile = \"server\"", "profile = \"web\"", 1);
        std::fs::write(&path, off).expect("write");
        Config::load(&path).expect("renewal off");
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
