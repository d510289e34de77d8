//! The running appliance: configuration turned into a logged-in token, a
//! verified issuer and an authority over the certificate store.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, KeyPair as _};
use strongroom_ca::{Authority, DistributionUrls, Issuer, Profile, SystemClock};
use strongroom_hsm::{
    BufferedRandom, HsmSigner, KeySpec, KeyStore, KeyWrapper, Pin, Pkcs11Uri, PoolConfig,
    PublicKey, SignatureAlgorithm, SigningKey, Token, WrappingKeys, YubiHsm,
};
use strongroom_transit::{Transit, TransitStore};
use zeroize::Zeroizing;

use crate::audit::ValueDigests;
use crate::config::{Backend, Config, CrlConfig, OcspConfig, TransitConfig};
use crate::server::crl::Crls;
use crate::server::ocsp::Ocsp;
use crate::server::ocsp::signer::load_responder;
use crate::store::sqlite::SqliteStore;

/// Everything the services need, built once at start.
pub(crate) struct Appliance {
    /// The issuing CA.
    pub(crate) authority: Authority,
    /// The HSM token (for status and random bytes).
    pub(crate) token: Token,
    /// The YubiHSM2, when `[yubihsm]` is configured (for keys placed in it
    /// by `ca.backend` or `transit.backend`).
    pub(crate) yubihsm: Option<YubiHsm>,
    /// How CRLs are published.
    pub(crate) crl: CrlConfig,
    /// The published CRLs and the changes waiting for them.
    pub(crate) crls: Arc<Crls>,
    /// How OCSP responses are signed.
    pub(crate) ocsp_config: OcspConfig,
    /// The OCSP responder, when `ca.ocsp_url` is set.
    pub(crate) ocsp: Option<Arc<Ocsp>>,
    /// The store behind the authority, for what only the appliance keeps
    /// (OCSP responses and signers).
    pub(crate) store: Arc<SqliteStore>,
    /// The transit engine, when `transit.wrapping_key` is set.
    pub(crate) transit: Option<Arc<Transit>>,
    /// Digests of transit plaintexts, ciphertexts and messages for audit
    /// records (`audit.digest_values`).
    pub(crate) value_digests: Option<Arc<ValueDigests>>,
    /// Digests of CSRs for audit records (`audit.digest_csrs`).
    pub(crate) csr_digests: Option<Arc<ValueDigests>>,
}

impl Drop for Appliance {
    fn drop(&mut self) {
        // Sealing drops the appliance: wipe the unwrapped transit keys now,
        // not when the last request holding the engine finishes.
        if let Some(transit) = &self.transit {
            transit.forget_keys();
        }
    }
}

impl Appliance {
    /// Logs in to the token with `pin`, binds the issuer key to its
    /// certificate, and opens the store.
    ///
    /// With a YubiHSM2 configured, its password is the one given here (at
    /// init, which keeps it wrapped by the token; see [`yubihsm_password`]),
    /// or else the one kept at init.
    ///
    /// On failure the token (and YubiHSM2) is closed again (logged out).
    pub(crate) fn load(
        config: &Config,
        pin: Pin,
        yubihsm_password: Option<&str>,
    ) -> anyhow::Result<Appliance> {
        let token = Token::open(
            &config.hsm.module,
            &token_label(config)?,
            pin,
            pool_config(config),
        )?;
        let yubihsm =
            open_yubihsm(config, &token, yubihsm_password).inspect_err(|_| token.close())?;
        Appliance::load_with(config, token.clone(), yubihsm.clone()).inspect_err(|_| {
            token.close();
            if let Some(yubihsm) = &yubihsm {
                yubihsm.close();
            }
        })
    }

    /// Logs out of every HSM: later calls through this appliance fail.
    pub(crate) fn close(&self) {
        self.token.close();
        if let Some(yubihsm) = &self.yubihsm {
            yubihsm.close();
        }
    }

    fn load_with(
        config: &Config,
        token: Token,
        yubihsm: Option<YubiHsm>,
    ) -> anyhow::Result<Appliance> {
        let issuer_der = read_pem_certificate(&config.ca.issuer_certificate)?;
        let issuer_cert = <x509_cert::Certificate as der::Decode>::from_der(&issuer_der)
            .context("issuer certificate is not a certificate")?;
        let issuer_spki =
            der::Encode::to_der(&issuer_cert.tbs_certificate.subject_public_key_info)?;
        let issuer_public = PublicKey::from_der(&issuer_spki)?;
        let key: Arc<dyn SigningKey> = match (&yubihsm, config.ca.backend) {
            (Some(yubihsm), Backend::Yubihsm) => yubihsm
                .find_signing_key(&config.ca.issuer_key, &issuer_public)
                .with_context(|| {
                    format!(
                        "ca.issuer_key {:?} in {}",
                        config.ca.issuer_key,
                        yubihsm.name()
                    )
                })?,
            _ => {
                let key_uri: Pkcs11Uri = config.ca.issuer_key.parse().context(
                    "ca.issuer_key must be a pkcs11: URI such as pkcs11:object=issuing-ca",
                )?;
                Arc::new(token.find_key_pair_by_uri(&key_uri, &issuer_public)?)
            }
        };
        let algorithm = match &config.ca.signature_algorithm {
            Some(name) => name.parse::<SignatureAlgorithm>()?,
            None => key.spec().default_signature_algorithm(),
        };
        let issuer = Issuer::new(&issuer_der, Arc::new(HsmSigner::new(key, algorithm)?))?;
        let chain = config
            .ca
            .chain
            .iter()
            .map(|p| read_pem_certificate(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let profiles = config
            .profiles
            .iter()
            .map(|(name, p)| Profile::new(name, p).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if profiles.is_empty() {
            bail!("no issuance profiles are configured");
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        let store = Arc::new(SqliteStore::open(&database_path(config))?);
        let authority = Authority::new(
            issuer,
            chain,
            profiles,
            DistributionUrls {
                crl: config.ca.crl_url.clone(),
                ocsp: config.ca.ocsp_url.clone(),
                ca_issuers: config.ca.ca_issuers_url.clone(),
            },
            Arc::clone(&store) as Arc<dyn strongroom_ca::CertStore>,
            Arc::new(SystemClock),
            Arc::new(token.clone()),
        )
        .with_crl_partitions(config.crl.partitions)?;
        let authority = match config.crl.delta_url(config.ca.crl_url.as_deref())? {
            Some(url) => authority.with_delta_crls(url)?,
            None => authority,
        };
        let ocsp = match &config.ca.ocsp_url {
            Some(url) => {
                let responder = load_responder(&config.ocsp, &authority, &token, &store)?;
                Some(Arc::new(Ocsp::new(
                    url,
                    responder,
                    config.ocsp.validity,
                    config.ocsp.presign_hashes()?,
                    Arc::clone(&store),
                )?))
            }
            None => None,
        };
        let transit = match &config.transit.wrapping_key {
            Some(key) => {
                // Every KEK, current or rotated, lives where transit.backend says.
                let wrapping_keys: Arc<dyn WrappingKeys> = match (&yubihsm, config.transit.backend)
                {
                    (Some(yubihsm), Backend::Yubihsm) => Arc::new(yubihsm.clone()),
                    (None, Backend::Yubihsm) => {
                        bail!("transit.backend = \"yubihsm\" needs a [yubihsm] section")
                    }
                    (_, Backend::Pkcs11) => Arc::new(token.clone()),
                };
                Some(Arc::new(load_transit(
                    &config.transit,
                    key,
                    &token,
                    wrapping_keys,
                    &store,
                )?))
            }
            None => None,
        };
        let audit = &config.audit;
        let digests = if audit.digest_values || audit.digest_csrs {
            let key = token
                .find_or_generate_hmac_key(&audit.hmac_key)
                .with_context(|| format!("audit.hmac_key {:?}", audit.hmac_key))?;
            Some(Arc::new(ValueDigests::derive(&key)?))
        } else {
            None
        };
        Ok(Appliance {
            transit,
            value_digests: digests.clone().filter(|_| audit.digest_values),
            csr_digests: digests.filter(|_| audit.digest_csrs),
            authority,
            token,
            yubihsm,
            crl: config.crl.clone(),
            crls: Arc::new(Crls::new(config.crl.delta)),
            ocsp_config: config.ocsp.clone(),
            ocsp,
            store,
        })
    }
}

/// The file holding the YubiHSM2 password, wrapped by the token.
const YUBIHSM_PASSWORD_FILE: &str = "yubihsm-password.wrapped";

/// The token's wrapping key for the YubiHSM2 password.
const YUBIHSM_PASSWORD_KEY: &str = "strongroom-yubihsm-password";

/// Opens the configured YubiHSM2, if any, with its password: `given` (at
/// init; then kept, see [`yubihsm_password`]), or the one kept at init.
fn open_yubihsm(
    config: &Config,
    token: &Token,
    given: Option<&str>,
) -> anyhow::Result<Option<YubiHsm>> {
    let Some(section) = &config.yubihsm else {
        if given.is_some() {
            bail!("a YubiHSM2 password was given, but no [yubihsm] is configured");
        }
        return Ok(None);
    };
    let password = match given {
        Some(password) => Pin::new(password),
        None => yubihsm_password(config, token)?,
    };
    let connector = section.connector()?;
    let yubihsm = YubiHsm::open(&connector, password, section.config())
        .with_context(|| format!("cannot open {connector}"))?;
    if let Some(password) = given {
        // The device accepted it: keep it for the unseals to come.
        keep_yubihsm_password(config, token, password)?;
    }
    Ok(Some(yubihsm))
}

/// The YubiHSM2's password, kept by [`keep_yubihsm_password`].
///
/// It is sealed like the token's PIN: on disk it is wrapped by a
/// non-extractable AES key inside the token, which only an appliance
/// logged in with the PIN the officers' shares rebuild can use.
fn yubihsm_password(config: &Config, token: &Token) -> anyhow::Result<Pin> {
    let path = config.data_dir.join(YUBIHSM_PASSWORD_FILE);
    let wrapped = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (the YubiHSM2 password is given once, to `strongroom operator \
             init --yubihsm-password-file`)",
            path.display()
        )
    })?;
    let key = token.find_wrapping_key(YUBIHSM_PASSWORD_KEY)?;
    let password = key
        .unwrap(&wrapped)
        .with_context(|| format!("{} does not unwrap", path.display()))?;
    let text = std::str::from_utf8(&password).context("the kept YubiHSM2 password is not text")?;
    Ok(Pin::new(text))
}

/// Keeps the YubiHSM2 `password` given at init for later unseals, wrapped
/// by the token (see [`yubihsm_password`]).
fn keep_yubihsm_password(config: &Config, token: &Token, password: &str) -> anyhow::Result<()> {
    let key = match token.find_wrapping_key(YUBIHSM_PASSWORD_KEY) {
        Err(strongroom_hsm::Error::KeyNotFound { .. }) => {
            token.generate_wrapping_key(YUBIHSM_PASSWORD_KEY)?
        }
        found => found?,
    };
    let wrapped = key.wrap(password.as_bytes())?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let path = config.data_dir.join(YUBIHSM_PASSWORD_FILE);
    std::fs::write(&path, wrapped).with_context(|| format!("cannot write {}", path.display()))
}

/// The appliance's SQLite database: `strongroom.db` in `data_dir`.
pub(crate) fn database_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("strongroom.db")
}

/// The transit engine over the store, its KEKs in `wrapping_keys` (the
/// token, or the YubiHSM2). Its KEK is the one the store records as
/// current; the wrapping key `key` names is recorded as current on the
/// first start (and, for a `pkcs11:` URI, checked against its `id=` while
/// it is current). Key material and RSA keys come from the token's
/// generator either way.
fn load_transit(
    config: &TransitConfig,
    key: &str,
    token: &Token,
    wrapping_keys: Arc<dyn WrappingKeys>,
    store: &Arc<SqliteStore>,
) -> anyhow::Result<Transit> {
    let uri: Option<Pkcs11Uri> = if key.starts_with("pkcs11:") {
        Some(
            key.parse()
                .context("transit.wrapping_key is not a valid pkcs11: URI")?,
        )
    } else {
        None
    };
    let label = match &uri {
        Some(uri) => uri
            .object
            .clone()
            .context("transit.wrapping_key's URI names no object")?,
        None => key.to_string(),
    };
    // Key material and data keys come from the HSM, drawn in bulk.
    let random = Arc::new(BufferedRandom::new(Arc::new(token.clone()), 4096));
    let transit = Transit::open(
        Arc::clone(store) as Arc<dyn TransitStore>,
        wrapping_keys,
        &label,
        random,
        Arc::new(token.clone()),
        strongroom_transit::TransitConfig {
            prefix: config.prefix.clone(),
            cache_capacity: config.cache_capacity,
        },
    )
    .context("cannot open the transit engine")?;
    let current = transit.current_kek_label();
    match &uri {
        Some(uri) if current == label => {
            token.find_wrapping_key_by_uri(uri)?;
        }
        _ if current != label => tracing::info!(
            configured = %label,
            current = %current,
            "the transit KEK was rotated since the first start; using the current one"
        ),
        _ => {}
    }
    Ok(transit)
}

/// The label of the token `hsm.token` names.
pub(crate) fn token_label(config: &Config) -> anyhow::Result<String> {
    if config.hsm.token.starts_with("pkcs11:") {
        let uri: Pkcs11Uri = config.hsm.token.parse()?;
        uri.token.context("hsm.token URI names no token")
    } else {
        Ok(config.hsm.token.clone())
    }
}

/// The token's session pool as configured.
pub(crate) fn pool_config(config: &Config) -> PoolConfig {
    let mut pool = PoolConfig::default();
    if let Some(n) = config.hsm.sessions {
        pool.sessions = n;
    }
    pool
}

/// The first certificate of a PEM file, as DER.
pub(crate) fn read_pem_certificate(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read certificate {}", path.display()))?;
    let (label, der) = der::pem::decode_vec(text.trim().as_bytes())
        .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", path.display()))?;
    if label != "CERTIFICATE" {
        bail!("{} holds a {label}, not a CERTIFICATE", path.display());
    }
    Ok(der)
}

/// A fresh key pair generated in software for a client that asked the server
/// to make its key: the public key, and the private key as PKCS#8 PEM
/// (zeroized on drop; returned once, never stored or logged).
///
/// ECDSA P-256/P-384 and Ed25519 only: server-generated RSA keys are refused
/// (send a CSR instead).
pub(crate) fn generate_key(spec: KeySpec) -> anyhow::Result<(PublicKey, Zeroizing<String>)> {
    let rng = SystemRandom::new();
    let (pkcs8, public) = match spec {
        KeySpec::EcP256 | KeySpec::EcP384 => {
            let alg = if spec == KeySpec::EcP256 {
                &ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &ring_sig::ECDSA_P384_SHA384_ASN1_SIGNING
            };
            let doc = ring_sig::EcdsaKeyPair::generate_pkcs8(alg, &rng)
                .map_err(|_| anyhow::anyhow!("key generation failed"))?;
            let pair = ring_sig::EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng)
                .map_err(|_| anyhow::anyhow!("generated key is unusable"))?;
            let public = pair.public_key().as_ref().to_vec();
            (Zeroizing::new(doc.as_ref().to_vec()), public)
        }
        KeySpec::Ed25519 => {
            let doc = ring_sig::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| anyhow::anyhow!("key generation failed"))?;
            let pair = ring_sig::Ed25519KeyPair::from_pkcs8(doc.as_ref())
                .map_err(|_| anyhow::anyhow!("generated key is unusable"))?;
            let public = pair.public_key().as_ref().to_vec();
            (Zeroizing::new(doc.as_ref().to_vec()), public)
        }
        other => bail!("server-generated {other} keys are not offered; send a CSR instead"),
    };
    let public = PublicKey::from_raw(spec, &public)?;
    let pem = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &pkcs8)
        .map_err(|e| anyhow::anyhow!("cannot encode the private key: {e}"))?;
    Ok((public, Zeroizing::new(pem)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_usable_pkcs8() {
        for spec in [KeySpec::EcP256, KeySpec::EcP384, KeySpec::Ed25519] {
            let (public, pem) = generate_key(spec).expect("generated");
            assert_eq!(public.spec(), spec);
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        assert!(generate_key(KeySpec::Rsa { bits: 2048 }).is_err());
    }
}
