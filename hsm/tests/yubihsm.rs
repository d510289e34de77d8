//! The YubiHSM2 backend against the `yubihsm` crate's `MockHsm`, on what
//! the shared suite cannot see: the objects' capabilities as the device
//! records them, how wrapped material is split and bound to its blob, the
//! MockHsm's `WrapData`/`UnwrapData` (patched in, see `vendor/yubihsm`),
//! the device's session limits and idle timeout, and login.
//!
//! The idle timeout is simulated: the MockHsm is served over the
//! `yubihsm-connector` HTTP API (the crate's own server) and reached through
//! our production HTTP connector, via `ExpiringDevice`, a small proxy that,
//! like the real device, answers `INVALID_SESSION` to any message on a
//! session idle for 30 s or more, measured on a test clock that the test
//! moves forward instead of sleeping.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::backends::mock_yubihsm;
use strongroom_hsm::{
    Error, HsmSigner, IdleClock, KeySpec, KeyStore, KeyWrapper, Pin, RandomSource,
    SignatureAlgorithm, Signer, SigningKey, SystemClock, YubiHsm, YubiHsmConfig, YubiHsmConnector,
};
use yubihsm::object;
use yubihsm::{Capability, Client, Connector, Credentials};

/// A raw client of the same MockHsm (clones of a connector share its
/// device), as an operator's yubihsm-shell would be.
fn raw_client(mock: &Connector) -> Client {
    Client::open(mock.clone(), Credentials::default(), true).expect("raw client")
}

#[test]
fn keys_are_sign_only_and_never_exportable() {
    let mock = Connector::mockhsm();
    let hsm = mock_yubihsm(mock.clone(), Arc::new(SystemClock));
    let p256 = hsm
        .generate_key_pair("ca-p256", KeySpec::EcP256)
        .expect("P-256");
    let ed = hsm
        .generate_key_pair("ca-ed25519", KeySpec::Ed25519)
        .expect("Ed25519");

    let raw = raw_client(&mock);
    for (key, capability) in [
        (p256.id(), Capability::SIGN_ECDSA),
        (ed.id(), Capability::SIGN_EDDSA),
    ] {
        let info = raw
            .get_object_info(key, object::Type::AsymmetricKey)
            .expect("object info");
        assert_eq!(info.capabilities, capability, "{info:?}");
        assert!(
            !info
                .capabilities
                .contains(Capability::EXPORTABLE_UNDER_WRAP)
        );
    }
    // A key someone made exportable is refused even with the right public key.
    let label = object::Label::from_bytes(b"exportable").expect("label");
    raw.generate_asymmetric_key(
        0x4242,
        label,
        yubihsm::Domain::DOM1,
        Capability::SIGN_ECDSA | Capability::EXPORTABLE_UNDER_WRAP,
        yubihsm::asymmetric::Algorithm::EcP256,
    )
    .expect("generate");
    let public = hsm
        .generate_key_pair("probe", KeySpec::EcP256)
        .expect("probe");
    let exportable_public = {
        let raw_public = raw.get_public_key(0x4242).expect("public");
        let mut point = vec![0x04];
        point.extend_from_slice(raw_public.as_slice());
        strongroom_hsm::PublicKey::from_raw(KeySpec::EcP256, &point).expect("point")
    };
    assert_ne!(&exportable_public, public.public_key());
    let err = hsm
        .find_key_pair("exportable", &exportable_public)
        .expect_err("exportable key");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("sign-only"), "{err}");

    // So is one that may do more than sign, though it never leaves the device.
    let label = object::Label::from_bytes(b"derives").expect("label");
    raw.generate_asymmetric_key(
        0x4343,
        label,
        yubihsm::Domain::DOM1,
        Capability::SIGN_ECDSA | Capability::DERIVE_ECDH,
        yubihsm::asymmetric::Algorithm::EcP256,
    )
    .expect("generate");
    let deriving_public = {
        let raw_public = raw.get_public_key(0x4343).expect("public");
        let mut point = vec![0x04];
        point.extend_from_slice(raw_public.as_slice());
        strongroom_hsm::PublicKey::from_raw(KeySpec::EcP256, &point).expect("point")
    };
    let err = hsm
        .find_key_pair("derives", &deriving_public)
        .expect_err("deriving key");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("sign-only"), "{err}");
    // Our own keys are found.
    hsm.find_key_pair("ca-p256", p256.public_key())
        .expect("sign-only key found");
    hsm.find_key_pair("ca-ed25519", ed.public_key())
        .expect("sign-only key found");
}

/// Wrap keys are AES-256-CCM, may wrap and unwrap data and nothing else
/// (never exportable, delegating nothing), as the device records them; a
/// wrap key made otherwise is refused, and so is a label two wrap keys
/// share. Wrapping stores nothing on the device.
#[test]
fn wrap_keys_only_wrap_and_unwrap_data_and_never_leave_the_device() {
    let mock = Connector::mockhsm();
    let hsm = mock_yubihsm(mock.clone(), Arc::new(SystemClock));
    let kek = hsm.generate_wrapping_key("kek").expect("wrap key");
    let raw = raw_client(&mock);
    let info = raw
        .get_object_info(kek.id(), object::Type::WrapKey)
        .expect("object info");
    assert_eq!(
        info.capabilities,
        Capability::WRAP_DATA | Capability::UNWRAP_DATA,
        "{info:?}"
    );
    assert!(info.delegated_capabilities.is_empty(), "{info:?}");
    assert_eq!(
        info.algorithm,
        yubihsm::Algorithm::Wrap(yubihsm::wrap::Algorithm::Aes256Ccm)
    );
    assert_eq!(info.label.to_string(), "kek");

    let objects = raw.list_objects(&[]).expect("list").len();
    let wrapped = kek.wrap(b"transit key material").expect("wrap");
    assert_eq!(
        *kek.unwrap(&wrapped).expect("unwrap"),
        b"transit key material"
    );
    assert_eq!(raw.list_objects(&[]).expect("list").len(), objects);

    // Wrap keys someone made with more rights, or another cipher, are refused.
    for (id, label, capabilities, delegated, algorithm) in [
        (
            0x5151,
            "exportable-kek",
            Capability::WRAP_DATA | Capability::UNWRAP_DATA | Capability::EXPORTABLE_UNDER_WRAP,
            Capability::empty(),
            yubihsm::wrap::Algorithm::Aes256Ccm,
        ),
        (
            0x5152,
            "exporting-kek",
            Capability::WRAP_DATA | Capability::UNWRAP_DATA | Capability::EXPORT_WRAPPED,
            Capability::empty(),
            yubihsm::wrap::Algorithm::Aes256Ccm,
        ),
        (
            0x5153,
            "delegating-kek",
            Capability::WRAP_DATA | Capability::UNWRAP_DATA,
            Capability::SIGN_ECDSA,
            yubihsm::wrap::Algorithm::Aes256Ccm,
        ),
        (
            0x5154,
            "aes128-kek",
            Capability::WRAP_DATA | Capability::UNWRAP_DATA,
            Capability::empty(),
            yubihsm::wrap::Algorithm::Aes128Ccm,
        ),
    ] {
        raw.generate_wrap_key(
            id,
            object::Label::from_bytes(label.as_bytes()).expect("label"),
            yubihsm::Domain::DOM1,
            capabilities,
            delegated,
            algorithm,
        )
        .expect("generate");
        let err = hsm.find_wrapping_key(label).expect_err(label);
        assert!(matches!(err, Error::Unsupported { .. }), "{label}: {err}");
    }

    // Two wrap keys with one label: neither is taken.
    for id in [0x5261, 0x5262] {
        raw.generate_wrap_key(
            id,
            object::Label::from_bytes(b"twin-kek").expect("label"),
            yubihsm::Domain::DOM1,
            Capability::WRAP_DATA | Capability::UNWRAP_DATA,
            Capability::empty(),
            yubihsm::wrap::Algorithm::Aes256Ccm,
        )
        .expect("generate");
    }
    let err = hsm.find_wrapping_key("twin-kek").expect_err("ambiguous");
    assert!(matches!(err, Error::AmbiguousKey { count: 2, .. }), "{err}");
    // A signing key's label is not a wrap key's.
    hsm.generate_key_pair("signer", KeySpec::EcP256)
        .expect("key pair");
    let err = hsm.find_wrapping_key("signer").expect_err("not a wrap key");
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
}

/// The chunks of a YubiHSM2 wrapping blob: format, count, then
/// length-prefixed chunks.
fn chunks(blob: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(blob[0], 1, "format");
    let mut rest = &blob[2..];
    let mut chunks = Vec::new();
    for _ in 0..blob[1] {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        chunks.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty());
    chunks
}

fn blob(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut blob = vec![1, chunks.len() as u8];
    for chunk in chunks {
        blob.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        blob.extend_from_slice(chunk);
    }
    blob
}

/// Material longer than one device command carries (a 4096-bit RSA key in
/// PKCS#1 is about 2.3 KB) is wrapped in chunks, each bound to its place in
/// its own blob: dropping, reordering or splicing chunks fails, though each
/// chunk alone would unwrap on the device.
#[test]
fn large_material_is_wrapped_in_chunks_bound_to_their_blob() {
    let hsm = mock_yubihsm(Connector::mockhsm(), Arc::new(SystemClock));
    let kek = hsm.generate_wrapping_key("chunked-kek").expect("wrap key");
    let material: Vec<u8> = (0..strongroom_hsm::MAX_MATERIAL_LEN)
        .map(|i| (i % 253) as u8)
        .collect();
    let wrapped = kek.wrap(&material).expect("wrap");
    assert_eq!(chunks(&wrapped).len(), 16);
    assert_eq!(*kek.unwrap(&wrapped).expect("unwrap"), material);
    let err = kek
        .wrap(&vec![1; strongroom_hsm::MAX_MATERIAL_LEN + 1])
        .expect_err("too long");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");

    let two_parts = vec![0x42; 1000];
    let a = chunks(&kek.wrap(&two_parts).expect("wrap"));
    let b = chunks(&kek.wrap(&two_parts).expect("wrap"));
    assert_eq!((a.len(), b.len()), (2, 2));
    assert_eq!(
        *kek.unwrap(&blob(&a)).expect("unwrap"),
        two_parts,
        "the helpers rebuild a blob faithfully"
    );
    for (what, forged) in [
        ("spliced", blob(&[a[0].clone(), b[1].clone()])),
        ("reordered", blob(&[a[1].clone(), a[0].clone()])),
        ("truncated", blob(&a[..1])),
        (
            "extended",
            blob(&[a[0].clone(), a[1].clone(), b[1].clone()]),
        ),
        ("doubled", blob(&[a[0].clone(), a[0].clone()])),
    ] {
        let err = kek.unwrap(&forged).expect_err(what);
        assert!(matches!(err, Error::InvalidInput(_)), "{what}: {err}");
    }
    // A chunk's bytes are checked by the device.
    let mut flipped = a.clone();
    flipped[1][20] ^= 1;
    let err = kek.unwrap(&blob(&flipped)).expect_err("flipped");
    assert!(matches!(err, Error::YubiHsm(_)), "{err}");
}

/// The software device answers WrapData and UnwrapData (the patch in
/// `vendor/yubihsm`) as the real one does: nonce, a zero byte and the data
/// encrypted, a 16-byte MAC; refused without the key's capability or on any
/// change, with the device's error codes.
#[test]
fn mockhsm_wraps_data_like_the_device() {
    use yubihsm::device::ErrorKind as DeviceError;
    let raw = raw_client(&Connector::mockhsm());
    let both = Capability::WRAP_DATA | Capability::UNWRAP_DATA;
    for (id, capabilities) in [
        (0x6001, both),
        (0x6002, Capability::WRAP_DATA),
        (0x6003, Capability::UNWRAP_DATA),
        (0x6004, both),
    ] {
        raw.generate_wrap_key(
            id,
            object::Label::from_bytes(b"data-kek").expect("label"),
            yubihsm::Domain::DOM1,
            capabilities,
            Capability::empty(),
            yubihsm::wrap::Algorithm::Aes256Ccm,
        )
        .expect("generate");
    }
    let data = b"0123456789abcdef".to_vec();
    let wrapped = raw.wrap_data(0x6001, data.clone()).expect("wrap");
    assert_eq!(wrapped.ciphertext.len(), 1 + data.len() + 16);
    let again = raw.wrap_data(0x6001, data.clone()).expect("wrap");
    assert_ne!(wrapped.nonce.0, again.nonce.0, "fresh nonce");
    assert_eq!(
        raw.unwrap_data(0x6001, wrapped.clone()).expect("unwrap"),
        data
    );

    let code = |r: Result<Vec<u8>, yubihsm::client::Error>| {
        r.expect_err("refused")
            .device_error()
            .expect("a device error")
    };
    let mut tampered = wrapped.clone();
    tampered.ciphertext[0] ^= 1;
    assert_eq!(
        code(raw.unwrap_data(0x6001, tampered)),
        DeviceError::InvalidData
    );
    let mut nonce = wrapped.clone();
    nonce.nonce.0[0] ^= 1;
    assert_eq!(
        code(raw.unwrap_data(0x6001, nonce)),
        DeviceError::InvalidData
    );
    assert_eq!(
        code(raw.unwrap_data(0x6004, wrapped.clone())),
        DeviceError::InvalidData,
        "another key"
    );
    assert_eq!(
        code(raw.unwrap_data(0x6002, raw.wrap_data(0x6002, data.clone()).expect("wrap"))),
        DeviceError::InvalidData,
        "no unwrap-data"
    );
    assert_eq!(
        code(raw.wrap_data(0x6003, data.clone()).map(|m| m.into_vec())),
        DeviceError::InvalidData,
        "no wrap-data"
    );
    assert_eq!(
        code(raw.unwrap_data(0x6fff, wrapped)),
        DeviceError::ObjectNotFound
    );
}

/// Ed25519 sends the whole message to the device: one longer than a device
/// message carries is refused up front as bad input, not taken for a lost
/// session (which would discard it, retry and report the HSM unavailable).
#[test]
fn an_oversized_ed25519_message_is_bad_input_not_a_lost_session() {
    let hsm = mock_yubihsm(Connector::mockhsm(), Arc::new(SystemClock));
    let key = hsm
        .generate_key_pair("ed-limit", KeySpec::Ed25519)
        .expect("Ed25519");
    let limit = strongroom_hsm::YUBIHSM_MAX_ED25519_MESSAGE_LEN;
    let fits = vec![0x5a; limit];
    let signature = key
        .sign(SignatureAlgorithm::Ed25519, &fits)
        .expect("a message at the limit signs");
    key.public_key()
        .verify(SignatureAlgorithm::Ed25519, &fits, &signature)
        .expect("verifies");
    let before = hsm.session_usage();
    let err = key
        .sign(SignatureAlgorithm::Ed25519, &vec![0x5a; limit + 1])
        .expect_err("one byte too many");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains(&limit.to_string()), "{err}");
    assert_eq!(
        hsm.session_usage(),
        before,
        "no session discarded or opened"
    );
    key.sign(SignatureAlgorithm::Ed25519, b"still fine")
        .expect("the pool still signs");
    assert_eq!(hsm.session_usage(), before);
}

#[test]
fn labels_longer_than_the_device_allows_are_refused() {
    let hsm = mock_yubihsm(Connector::mockhsm(), Arc::new(SystemClock));
    let err = hsm
        .generate_key_pair(&"x".repeat(41), KeySpec::EcP256)
        .expect_err("41 bytes");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    hsm.generate_key_pair(&"x".repeat(40), KeySpec::EcP256)
        .expect("40 bytes fit");
}

#[test]
fn a_wrong_password_is_refused_and_never_shown() {
    // An authentication key id that appears nowhere else in the messages
    // (only opened with an empty password, refused before reaching MockHsm).
    const KEY_ID: u16 = 4729;
    let config = YubiHsmConfig {
        auth_key_id: KEY_ID,
        ..YubiHsmConfig::default()
    };
    // MockHsm knows only key 1 (and panics on others), so the refusal is
    // checked to name no number at all: the device name has none.
    let err = YubiHsm::open_with_connector(
        "yubihsm mockhsm",
        Connector::mockhsm(),
        Pin::new("not-the-password-0451"),
        YubiHsmConfig::default(),
        Arc::new(SystemClock),
    )
    .expect_err("wrong password");
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err}");
    let refused = format!("{err} {err:?}");
    assert!(!refused.chars().any(|c| c.is_ascii_digit()), "{refused}");
    let empty = YubiHsm::open_with_connector(
        "yubihsm mockhsm",
        Connector::mockhsm(),
        Pin::new(""),
        config.clone(),
        Arc::new(SystemClock),
    )
    .expect_err("empty password");
    assert!(matches!(empty, Error::InvalidInput(_)), "{empty}");
    let shown = format!("{err} {err:?} {empty} {empty:?} {config:?}");
    assert!(!shown.contains("0451"), "{shown}");
    // The authentication key id is a secret too.
    assert!(!shown.contains(&KEY_ID.to_string()), "{shown}");
    assert!(!shown.contains(&format!("{KEY_ID:x}")), "{shown}");

    for sessions in [0, strongroom_hsm::YUBIHSM_MAX_SESSIONS + 1] {
        let err = YubiHsm::open_with_connector(
            "yubihsm mockhsm",
            Connector::mockhsm(),
            Pin::new("password"),
            YubiHsmConfig {
                sessions,
                ..YubiHsmConfig::default()
            },
            Arc::new(SystemClock),
        )
        .expect_err("pool size out of range");
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
}

#[test]
fn a_closed_yubihsm_refuses_work() {
    let hsm = mock_yubihsm(Connector::mockhsm(), Arc::new(SystemClock));
    let key = hsm
        .generate_key_pair("closing", KeySpec::EcP256)
        .expect("key");
    let store: &dyn KeyStore = &hsm;
    store.close();
    let err = strongroom_hsm::SigningKey::sign(&key, SignatureAlgorithm::EcdsaP256Sha256, b"m")
        .expect_err("closed");
    assert!(matches!(err, Error::Closed { .. }), "{err}");
}

/// A test clock: starts now and moves only when told.
struct TestClock {
    start: Instant,
    offset_ms: AtomicU64,
}

impl TestClock {
    fn new() -> Arc<TestClock> {
        Arc::new(TestClock {
            start: Instant::now(),
            offset_ms: AtomicU64::new(0),
        })
    }

    fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl IdleClock for TestClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// The device's idle timeout.
const DEVICE_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

const CREATE_SESSION: u8 = 0x03;
const AUTHENTICATE_SESSION: u8 = 0x04;
const SESSION_MESSAGE: u8 = 0x05;
const CREATE_SESSION_RESPONSE: u8 = 0x80 | CREATE_SESSION;
const ERROR_RESPONSE: u8 = 0x7f;
const INVALID_SESSION: u8 = 0x03;

/// A MockHsm behind the rules the real device applies and MockHsm does
/// not: a session idle for [`DEVICE_IDLE_TIMEOUT`] (on the test clock) is
/// gone, and the device answers messages on it with `INVALID_SESSION`.
/// [`ExpiringDevice::forget_sessions`] drops every session at once, as a
/// device restart or a connector dropping its clients would.
///
/// It is an HTTP proxy in front of the crate's connector server: the
/// `yubihsm` crate offers no way to plug in a custom transport.
#[derive(Clone)]
struct ExpiringDevice {
    clock: Arc<TestClock>,
    /// The MockHsm's connector server.
    upstream: u16,
    /// Where our backend connects.
    port: u16,
    /// Last activity per session id, while the session lives.
    sessions: Arc<Mutex<HashMap<u8, Instant>>>,
    /// Messages refused because their session was gone.
    refused: Arc<AtomicUsize>,
}

impl ExpiringDevice {
    fn start(clock: Arc<TestClock>) -> ExpiringDevice {
        let upstream = common::backends::serve_mockhsm(Connector::mockhsm());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let device = ExpiringDevice {
            clock,
            upstream,
            port: listener.local_addr().expect("addr").port(),
            sessions: Arc::default(),
            refused: Arc::default(),
        };
        let serving = device.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let device = serving.clone();
                std::thread::spawn(move || device.proxy(client));
            }
        });
        device
    }

    fn forget_sessions(&self) {
        self.sessions.lock().expect("lock").clear();
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Relays one client connection's requests, one at a time.
    fn proxy(&self, client: TcpStream) {
        let mut upstream: Option<TcpStream> = None;
        let mut reader = BufReader::new(client.try_clone().expect("clone"));
        let mut client = client;
        while let Some((head, body)) = read_http(&mut reader) {
            let reply = match self.refuse(&body) {
                Some(reply) => reply,
                None => {
                    let is_create = body.first() == Some(&CREATE_SESSION);
                    let stream = upstream.get_or_insert_with(|| {
                        TcpStream::connect(("127.0.0.1", self.upstream)).expect("upstream")
                    });
                    stream.write_all(&head).expect("forward head");
                    stream.write_all(&body).expect("forward body");
                    let mut upstream_reader = BufReader::new(stream.try_clone().expect("clone"));
                    let (_, reply) = read_http(&mut upstream_reader).expect("upstream reply");
                    if is_create && reply.first() == Some(&CREATE_SESSION_RESPONSE) {
                        let now = self.clock.now();
                        self.sessions.lock().expect("lock").insert(reply[3], now);
                    }
                    reply
                }
            };
            // One write: the crate's HTTP client reads each segment into the
            // start of its buffer, so a body sent after its head would
            // overwrite the head.
            let mut response =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", reply.len()).into_bytes();
            response.extend_from_slice(&reply);
            if client.write_all(&response).is_err() {
                return;
            }
        }
    }

    /// The device's answer to a message on a session it no longer has, or
    /// `None` to pass the message on.
    fn refuse(&self, body: &[u8]) -> Option<Vec<u8>> {
        if !matches!(
            body.first(),
            Some(&(AUTHENTICATE_SESSION | SESSION_MESSAGE))
        ) {
            return None;
        }
        let id = body[3];
        let now = self.clock.now();
        let mut sessions = self.sessions.lock().expect("lock");
        let alive = sessions
            .get(&id)
            .is_some_and(|last| now.saturating_duration_since(*last) < DEVICE_IDLE_TIMEOUT);
        if alive {
            sessions.insert(id, now);
            None
        } else {
            sessions.remove(&id);
            self.refused.fetch_add(1, Ordering::SeqCst);
            Some(vec![ERROR_RESPONSE, 0, 1, INVALID_SESSION])
        }
    }
}

/// One HTTP/1.1 message with a Content-Length body: its head (request or
/// status line and headers, as read) and its body; `None` at end of stream.
fn read_http(reader: &mut impl BufRead) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(line.as_bytes());
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().expect("content length");
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn expiring_yubihsm(clock: &Arc<TestClock>) -> (ExpiringDevice, YubiHsm) {
    expiring_yubihsm_with(clock, YubiHsmConfig::default())
}

fn expiring_yubihsm_with(
    clock: &Arc<TestClock>,
    config: YubiHsmConfig,
) -> (ExpiringDevice, YubiHsm) {
    let device = ExpiringDevice::start(Arc::clone(clock));
    let hsm = YubiHsm::open_with_clock(
        &YubiHsmConnector::Http {
            addr: "127.0.0.1".into(),
            port: device.port,
        },
        Pin::new("password"),
        config,
        Arc::clone(clock) as Arc<dyn IdleClock>,
    )
    .expect("open over HTTP");
    (device, hsm)
}

fn p256_signer(hsm: &YubiHsm, label: &str) -> HsmSigner {
    let key = hsm
        .generate_signing_key(label, KeySpec::EcP256)
        .expect("key");
    HsmSigner::new(key, SignatureAlgorithm::EcdsaP256Sha256).expect("signer")
}

fn signs(signer: &HsmSigner, message: &[u8]) {
    let signature = signer.sign(message).expect("signs without error");
    signer
        .public_key()
        .verify(signer.algorithm(), message, &signature)
        .expect("verifies");
}

#[test]
fn a_signature_after_an_idle_minute_succeeds_on_a_fresh_session() {
    let clock = TestClock::new();
    let (device, hsm) = expiring_yubihsm(&clock);
    let signer = p256_signer(&hsm, "idle-ca");
    signs(&signer, b"before the idle minute");
    let (_, opened_before) = hsm.session_usage();

    clock.advance(Duration::from_secs(61));
    signs(&signer, b"after the idle minute");

    // The pool replaced the idle session before using it: the device never
    // saw a message on a session it had dropped.
    assert_eq!(device.refused(), 0, "a request met an expired session");
    let (open, opened_after) = hsm.session_usage();
    assert_eq!(opened_after, opened_before + 1, "one new session");
    assert!(open <= YubiHsmConfig::default().sessions);

    // Just under the refresh threshold, the same session is kept.
    clock.advance(strongroom_hsm::YUBIHSM_REFRESH_AFTER - Duration::from_secs(1));
    signs(&signer, b"soon after");
    assert_eq!(hsm.session_usage().1, opened_after);
    assert_eq!(device.refused(), 0);
}

#[test]
fn sessions_the_device_dropped_early_are_recovered_without_a_failed_request() {
    let clock = TestClock::new();
    let (device, hsm) = expiring_yubihsm(&clock);
    let signer = p256_signer(&hsm, "dropped-ca");
    signs(&signer, b"before");

    // The device forgets every session (restart, connector restart) while
    // our clock says they are fresh: the next request meets a dead session
    // and is repeated on a new one, so the caller sees no error.
    device.forget_sessions();
    signs(&signer, b"after the device dropped our session");
    assert_eq!(device.refused(), 1, "the dead session was tried once");

    let mut random = [0u8; 16];
    device.forget_sessions();
    hsm.fill(&mut random).expect("random after a drop");
    assert_eq!(device.refused(), 2);

    // Generation itself is never repeated blindly (it is not idempotent),
    // but it starts with lookups that are: the first of them meets the dead
    // session and recovers, so generation runs on a fresh one.
    device.forget_sessions();
    hsm.generate_signing_key("after-drop", KeySpec::EcP256)
        .expect("generates after the device dropped our session");
    assert_eq!(device.refused(), 3);
}

/// Wrapping and unwrapping change nothing on the device (a wrap draws a
/// fresh nonce), so both are repeated on a fresh session after a drop.
#[test]
fn wrapping_survives_sessions_the_device_dropped() {
    let clock = TestClock::new();
    let (device, hsm) = expiring_yubihsm(&clock);
    let kek = hsm.generate_wrapping_key("dropped-kek").expect("wrap key");
    device.forget_sessions();
    let wrapped = kek.wrap(b"material").expect("wraps after a drop");
    assert_eq!(device.refused(), 1);
    device.forget_sessions();
    assert_eq!(
        *kek.unwrap(&wrapped).expect("unwraps after a drop"),
        b"material"
    );
    assert_eq!(device.refused(), 2);
}

/// A session discarded as lost may live on in the device until its idle
/// timeout, so it stays counted against the pool's size for 30 s after its
/// last use: repeated failures cannot exceed the pool's share of the
/// device's 16 sessions.
#[test]
fn discarded_sessions_count_against_the_pool_until_the_device_times_them_out() {
    let clock = TestClock::new();
    let (device, hsm) = expiring_yubihsm_with(
        &clock,
        YubiHsmConfig {
            sessions: 2,
            acquire_timeout: Duration::from_millis(300),
            ..YubiHsmConfig::default()
        },
    );
    let signer = p256_signer(&hsm, "lingering-ca");
    signs(&signer, b"before");
    assert_eq!(hsm.session_usage().0, 1);

    // One session lost: discarded (still counted) and replaced.
    device.forget_sessions();
    signs(&signer, b"after one loss");
    assert_eq!(
        hsm.session_usage().0,
        2,
        "the discarded session still counts"
    );

    // A second loss: both sessions the pool may hold are discarded but may
    // still live on the device, so no third one is opened.
    device.forget_sessions();
    let err = signer
        .sign(b"after two losses")
        .expect_err("no session to spare");
    assert!(matches!(err, Error::PoolTimeout { .. }), "{err}");
    let (held, opened) = hsm.session_usage();
    assert_eq!(held, 2);

    // Once the device has timed them out, the pool opens sessions again.
    clock.advance(DEVICE_IDLE_TIMEOUT);
    assert_eq!(hsm.session_usage().0, 0);
    signs(&signer, b"after the device's idle timeout");
    assert_eq!(hsm.session_usage(), (1, opened + 1));
}

#[test]
fn concurrent_signers_stay_within_the_session_bound_across_idle_periods() {
    let clock = TestClock::new();
    let (device, hsm) = expiring_yubihsm(&clock);
    let signer = Arc::new(p256_signer(&hsm, "busy-ca"));
    for round in 0..3 {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let signer = Arc::clone(&signer);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        signs(&signer, format!("round {round} thread {t} {i}").as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("signer thread");
        }
        let (open, _) = hsm.session_usage();
        assert!(open <= YubiHsmConfig::default().sessions, "{open} sessions");
        clock.advance(Duration::from_secs(45));
    }
    assert_eq!(device.refused(), 0);
    // At most one pool's worth of sessions per idle period, far below 16.
    assert!(hsm.session_usage().1 <= 3 * YubiHsmConfig::default().sessions as u64);
}

/// A MockHsm behind the crate's yubihsm-connector HTTP server, opened
/// through our production HTTP connector.
fn mockhsm_over_http() -> YubiHsm {
    let port = common::backends::serve_mockhsm(Connector::mockhsm());
    YubiHsm::open(
        &YubiHsmConnector::Http {
            addr: "127.0.0.1".into(),
            port,
        },
        Pin::new("password"),
        YubiHsmConfig::default(),
    )
    .expect("open over HTTP")
}

#[test]
fn the_http_connector_reaches_a_device_behind_yubihsm_connector() {
    let hsm = mockhsm_over_http();
    let signer = p256_signer(&hsm, "over-http");
    signs(&signer, b"over the connector API");
}

/// Wrapped chunks travel through `yubihsm-connector`'s HTTP API like any
/// command: material of every size round-trips through our production
/// HTTP connector.
#[test]
fn large_material_wraps_through_the_http_connector() {
    let hsm = mockhsm_over_http();
    let kek = hsm.generate_wrapping_key("http-kek").expect("wrap key");
    for len in [1, 32, 511, 512, 513, 2350, strongroom_hsm::MAX_MATERIAL_LEN] {
        let material: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let wrapped = kek.wrap(&material).unwrap_or_else(|e| panic!("{len}: {e}"));
        assert_eq!(
            *kek.unwrap(&wrapped)
                .unwrap_or_else(|e| panic!("{len}: {e}")),
            material
        );
    }
}
