//! The backends the shared part of the hsm suite runs against, each behind
//! [`KeyStore`]: a SoftHSM2 token through PKCS#11, and the `yubihsm` crate's
//! `MockHsm` (a software YubiHSM2) through our native YubiHSM2 backend.
//!
//! What a backend cannot do is listed here, once, so a gap is visible
//! instead of silently skipped: `MockHsm` simulates only P-256 ECDSA and
//! Ed25519 keys (it panics on P-384 and RSA, which our YubiHSM2 backend
//! generates on a real device), and a YubiHSM2 signs with RSA only as
//! PKCS#1 v1.5 with SHA-256. Both hold wrapping keys (`MockHsm` answers
//! `WrapData`/`UnwrapData` through the patch in `vendor/yubihsm`).

use std::sync::{Arc, OnceLock};

use strongroom_hsm::{
    IdleClock, KeySpec, KeyStore, Pin, SignatureAlgorithm, SystemClock, YubiHsm, YubiHsmConfig,
};

/// One backend under test.
pub struct Backend {
    /// Its name in assertion messages.
    pub name: &'static str,
    /// The HSM behind the backend-neutral trait.
    pub store: Arc<dyn KeyStore>,
    /// The key types this backend can generate here.
    pub specs: Vec<KeySpec>,
    /// Whether the backend signs with RSA-PSS and SHA-384/512 PKCS#1.
    pub all_rsa_schemes: bool,
}

impl Backend {
    /// The signature algorithms to exercise for `spec` on this backend.
    pub fn algorithms(&self, spec: KeySpec) -> Vec<SignatureAlgorithm> {
        SignatureAlgorithm::ALL
            .into_iter()
            .filter(|a| a.fits(spec))
            .filter(|a| {
                self.all_rsa_schemes
                    || !matches!(spec, KeySpec::Rsa { .. })
                    || *a == SignatureAlgorithm::RsaPkcs1Sha256
            })
            .collect()
    }
}

/// The key types `MockHsm` simulates.
pub const MOCKHSM_SPECS: [KeySpec; 2] = [KeySpec::EcP256, KeySpec::Ed25519];

/// A fresh software YubiHSM2 opened through our backend, with its factory
/// authentication key (id 1, password `password`).
pub fn mock_yubihsm(connector: yubihsm::Connector, clock: Arc<dyn IdleClock>) -> YubiHsm {
    YubiHsm::open_with_connector(
        "yubihsm mockhsm",
        connector,
        Pin::new("password"),
        YubiHsmConfig::default(),
        clock,
    )
    .unwrap_or_else(|e| panic!("opening the MockHsm: {e}"))
}

/// Both backends, created once per test process: the process's SoftHSM2
/// token (labelled `<prefix>-…`) and a MockHsm.
pub fn backends(prefix: &str) -> [&'static Backend; 2] {
    static MOCK: OnceLock<Backend> = OnceLock::new();
    let softhsm = SOFTHSM.get_or_init(|| Backend {
        name: "softhsm2 (pkcs11)",
        store: Arc::new(super::fixture(prefix).token.clone()),
        specs: KeySpec::GENERATED.to_vec(),
        all_rsa_schemes: true,
    });
    let mock = MOCK.get_or_init(|| Backend {
        name: "yubihsm (mockhsm)",
        store: Arc::new(mock_yubihsm(
            yubihsm::Connector::mockhsm(),
            Arc::new(SystemClock),
        )),
        specs: MOCKHSM_SPECS.to_vec(),
        all_rsa_schemes: false,
    });
    [softhsm, mock]
}

static SOFTHSM: OnceLock<Backend> = OnceLock::new();

/// Serves `device` over the `yubihsm-connector` HTTP API on a free port of
/// 127.0.0.1, from a thread that lives as long as the test process; returns
/// the port.
pub fn serve_mockhsm(device: yubihsm::Connector) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = yubihsm::HttpConfig {
        addr: "127.0.0.1".into(),
        port,
        ..yubihsm::HttpConfig::default()
    };
    let server = yubihsm::connector::http::Server::new(&config, device)
        .unwrap_or_else(|e| panic!("MockHsm connector server: {e}"));
    std::thread::spawn(move || {
        loop {
            // One failed request (a client that went away) must not stop the server.
            let _ = server.handle_request();
        }
    });
    port
}
