//! End to end: `strongroom server` on 127.0.0.1 with a fresh SoftHSM2 token
//! holding a root and an issuing CA, driven over gRPC with TLS (and mTLS)
//! through the `strongroom_proto` client.
//!
//! It checks issuance from an `openssl req` CSR and with a server-generated
//! key (both accepted by `openssl verify`), inventory lookups and search,
//! renewal, the chain, Sys.Status's real count, the health and reflection
//! services, the requester identity of an mTLS client, the HTTP certificate
//! endpoints, a bad input of every kind refused with `INVALID_ARGUMENT` and a
//! precise message while nothing is stored, and a clean exit on SIGTERM.
//!
//! The listeners need fixed ports in the configuration: the test binds
//! 127.0.0.1:0, reads the port the kernel chose and releases it before the
//! server binds it. Another process could take the port in between; that
//! race is small and shows up as the server failing to start with "cannot
//! listen", never as a wrong result.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::root_and_issuing_ca;
use secrecy::ExposeSecret;
use strongroom_ca::{
    Authority, CertFilter, CertPage, CertRecord, CertStatus, CertStore, Csr, DistributionUrls,
    IssueRequest, Issuer, Profile, ProfileConfig, Serial, StoreError, SystemClock, pem,
};
use strongroom_hsm::{KeySpec, Pin, PoolConfig, SignatureAlgorithm, Token};
use strongroom_proto::v1;
use strongroom_proto::v1::ca_client::CaClient;
use strongroom_proto::v1::seal_client::SealClient;
use strongroom_proto::v1::sys_client::SysClient;
use strongroom_softhsm::TestToken;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Largest request the test appliance accepts.
const MAX_REQUEST_BYTES: usize = 100_000;

/// The running server; killed when dropped (also when a check panics), and
/// its log printed if the test failed.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- strongroom server log ----\n{}", self.log());
        }
    }
}

/// A minimal inventory for the test's own authority, which issues the
/// server's TLS certificate before the server exists.
#[derive(Default)]
struct MemoryStore(Mutex<Vec<CertRecord>>);

impl CertStore for MemoryStore {
    fn insert_pending(&self, record: &CertRecord) -> Result<(), StoreError> {
        self.0.lock().expect("lock").push(record.clone());
        Ok(())
    }

    fn complete(
        &self,
        _issuer: &str,
        serial: &Serial,
        der: &[u8],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut all = self.0.lock().expect("lock");
        let record = all
            .iter_mut()
            .find(|r| &r.serial == serial)
            .ok_or(StoreError::NotFound {
                serial: serial.clone(),
            })?;
        record.status = CertStatus::Issued;
        record.cert_der = Some(der.to_vec());
        record.issued_at = Some(at);
        Ok(())
    }

    fn get(&self, _issuer: &str, serial: &Serial) -> Result<Option<CertRecord>, StoreError> {
        let all = self.0.lock().expect("lock");
        Ok(all.iter().find(|r| &r.serial == serial).cloned())
    }

    fn list(&self, _filter: &CertFilter) -> Result<CertPage, StoreError> {
        Ok(CertPage::default())
    }

    fn count(&self, status: CertStatus) -> Result<u64, StoreError> {
        let all = self.0.lock().expect("lock");
        Ok(all.iter().filter(|r| r.status == status).count() as u64)
    }

    // This inventory only backs the TLS certificate issued before the server
    // starts; revocation and CRLs are tested against the real store.
    fn revoke(
        &self,
        _issuer: &str,
        _serial: &Serial,
        _reason: strongroom_ca::RevocationReason,
        _at: i64,
    ) -> Result<strongroom_ca::RevokeOutcome, StoreError> {
        Err(not_here())
    }

    fn for_each_revoked(
        &self,
        _issuer: &str,
        _series: strongroom_ca::CrlSeries,
        _since: Option<u64>,
        _now: i64,
        _each: &mut dyn FnMut(strongroom_ca::RevokedEntry) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        Err(not_here())
    }

    fn crl_partitions(&self, _issuer: &str) -> Result<Vec<u32>, StoreError> {
        Err(not_here())
    }

    fn next_crl_number(
        &self,
        _issuer: &str,
        _series: strongroom_ca::CrlSeries,
    ) -> Result<u64, StoreError> {
        Err(not_here())
    }

    fn save_crl(&self, _crl: &strongroom_ca::StoredCrl) -> Result<(), StoreError> {
        Err(not_here())
    }

    fn latest_crl(
        &self,
        _issuer: &str,
        _series: strongroom_ca::CrlSeries,
        _delta: bool,
    ) -> Result<Option<strongroom_ca::StoredCrl>, StoreError> {
        Err(not_here())
    }
}

/// What the TLS certificate's inventory says to anything but issuance.
fn not_here() -> StoreError {
    StoreError::Unavailable("the test's TLS inventory does no revocation".into())
}

fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// A fresh key and CSR made by `openssl req`; returns the CSR (PEM or DER).
fn openssl_csr(dir: &Path, name: &str, key: &[&str], subj: &str, san: &str, der: bool) -> Vec<u8> {
    let key_path = dir.join(format!("{name}.key"));
    let csr_path = dir.join(format!("{name}.csr"));
    let ext = format!("subjectAltName={san}");
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-keyout",
        p(&key_path),
        "-out",
        p(&csr_path),
        "-subj",
        subj,
        "-addext",
        &ext,
    ];
    args.extend_from_slice(key);
    if der {
        args.extend(["-outform", "DER"]);
    }
    openssl(&args);
    std::fs::read(&csr_path).expect("csr")
}

const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

fn free_port() -> u16 {
    // Released before the server binds it: see the module docs.
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// What the test knows about the appliance it started.
struct Setup {
    // Fields drop in order: the server stops (and prints its log) before its
    // directory and token go away.
    server: Server,
    _token: TestToken,
    dir: tempfile::TempDir,
    grpc: SocketAddr,
    http: SocketAddr,
    root_der: Vec<u8>,
    issuing_der: Vec<u8>,
}

impl Setup {
    fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.root_der)
    }

    fn issuing_pem(&self) -> String {
        pem("CERTIFICATE", &self.issuing_der)
    }
}

/// Creates the token, a root and an issuing CA in it, the TLS certificate,
/// the configuration, and starts `strongroom server`.
fn start() -> Setup {
    let created = TestToken::create("grpc-server").unwrap_or_else(|e| panic!("{e}"));
    let token = Token::open(
        &created.module,
        &created.label,
        Pin::new(created.user_pin.expose_secret()),
        PoolConfig::default(),
    )
    .expect("open token");
    let dir = tempfile::tempdir().expect("tempdir");
    let issuing_key = token
        .generate_key_pair("issuing-ca", KeySpec::EcP256)
        .expect("issuing key");
    let (root_der, issuing_der) = root_and_issuing_ca(&token, issuing_key.public_key(), "gRPC");

    // The server's TLS certificate, for 127.0.0.1, from the issuing CA.
    let tls_profile: ProfileConfig = toml::from_str(
        r#"
        domains = ["localhost"]
        ip_ranges = ["127.0.0.0/8"]
        ext_key_usage = ["serverAuth"]
        max_ttl = "1d"
        "#,
    )
    .expect("tls profile");
    let authority = Authority::new(
        Issuer::new(
            &issuing_der,
            Arc::new(
                issuing_key
                    .signer(SignatureAlgorithm::EcdsaP256Sha256)
                    .expect("issuing signer"),
            ),
        )
        .expect("issuing issuer"),
        vec![root_der.clone()],
        vec![Profile::new("tls", &tls_profile).expect("profile")],
        DistributionUrls::default(),
        Arc::new(MemoryStore::default()),
        Arc::new(SystemClock),
        Arc::new(token.clone()),
    );
    let tls_csr = openssl_csr(
        dir.path(),
        "tls",
        P256,
        "/CN=localhost",
        "DNS:localhost,IP:127.0.0.1",
        false,
    );
    let request =
        IssueRequest::from_csr("tls", "test", Csr::parse(&tls_csr).expect("tls csr"), None);
    let tls_cert = authority
        .issue(authority.prepare(request).expect("prepare"))
        .expect("tls certificate");
    let issuing_pem = pem("CERTIFICATE", &issuing_der);
    write(
        dir.path(),
        "tls.pem",
        format!("{}{issuing_pem}", tls_cert.certificate_pem()),
    );
    write(dir.path(), "issuing.pem", &issuing_pem);
    write(dir.path(), "root.pem", pem("CERTIFICATE", &root_der));

    let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = format!(
        r#"
data_dir = "data"

[listen]
grpc = "{grpc}"
http = "{http}"

[tls]
cert = "tls.pem"
key = "tls.key"
client_ca = "root.pem"

[auth]
policies = "policies.toml"

[hsm]
module = "{module}"
token = "pkcs11:token={label}"
sessions = 2

[ca]
issuer_key = "pkcs11:object=issuing-ca"
issuer_certificate = "issuing.pem"
chain = ["root.pem"]
crl_url = "http://{http}/crl/issuing.crl"
ocsp_url = "http://{http}/ocsp"
ca_issuers_url = "http://{http}/ca/issuing.crt"

[limits]
max_request_bytes = {MAX_REQUEST_BYTES}

[profiles.server]
domains = ["localhost", "**.test"]
ip_ranges = ["127.0.0.0/8"]
ext_key_usage = ["serverAuth"]
key_usage = ["digitalSignature", "keyEncipherment"]
max_ttl = "90d"
subject = {{ O = "Example" }}

[profiles.client]
domains = ["**.test"]
uri_patterns = ["spiffe://example.test/*"]
ext_key_usage = ["clientAuth"]
max_ttl = "30d"
"#,
        module = created.module.display(),
        label = created.label,
    );
    let config_path = write(dir.path(), "strongroom.toml", config);
    // This test's callers (anonymous, and the client certificate it issues)
    // may do everything; tests/access.rs checks the policies themselves.
    write(
        dir.path(),
        "policies.toml",
        "[[policy]]\nname = \"everyone\"\nidentities = [\"anonymous\", \"*\"]\n\
         [[policy.grant]]\nresources = [\"*\"]\ncapabilities = [\"*\"]\n",
    );

    let log = dir.path().join("server.log");
    let child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["server", "--config", p(&config_path)])
        .env("STRONGROOM_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start strongroom server");
    let mut server = Server {
        child: Some(child),
        log,
    };
    wait_for_port(&mut server, grpc);
    Setup {
        server,
        _token: created,
        dir,
        grpc,
        http,
        root_der,
        issuing_der,
    }
}

/// Waits until `addr` accepts connections; fails early if the server exits.
fn wait_for_port(server: &mut Server, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        let child = server.child.as_mut().expect("child");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("strongroom server exited with {status}:\n{}", server.log());
        }
        assert!(
            Instant::now() < deadline,
            "no gRPC listener on {addr} after 60 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn connect(setup: &Setup, identity: Option<Identity>) -> Channel {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(setup.root_pem()));
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Channel::from_shared(format!("https://{}", setup.grpc))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS")
}

/// Asserts `INVALID_ARGUMENT` with a message containing every `parts`.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, parts: &[&str]) {
    let status = result.expect_err("request should be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    for part in parts {
        assert!(
            status.message().contains(part),
            "'{part}' missing from: {}",
            status.message()
        );
    }
}

fn days(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: n * 86_400,
        nanos: 0,
    })
}

/// `openssl verify -CAfile root -untrusted issuing leaf` accepts `leaf_pem`.
fn openssl_verifies(setup: &Setup, name: &str, leaf_pem: &str) {
    let dir = setup.dir.path();
    let leaf = write(dir, &format!("{name}.pem"), leaf_pem);
    let out = openssl(&[
        "verify",
        "-CAfile",
        p(&dir.join("root.pem")),
        "-untrusted",
        p(&dir.join("issuing.pem")),
        p(&leaf),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": OK"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The public key (PEM SPKI) of a certificate or of a private key, by openssl.
fn public_key_of(dir: &Path, name: &str, pem_text: &str, is_key: bool) -> String {
    let path = write(dir, name, pem_text);
    let out = if is_key {
        openssl(&["pkey", "-in", p(&path), "-pubout"])
    } else {
        openssl(&["x509", "-in", p(&path), "-noout", "-pubkey"])
    };
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A plain HTTP/1.1 GET; returns the status line, headers and body.
fn http_get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect HTTP");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    (
        String::from_utf8_lossy(&raw[..split]).into_owned(),
        raw[split + 4..].to_vec(),
    )
}

/// How many records the inventory holds in any state, expired or not.
async fn inventory_size(ca: &mut CaClient<Channel>) -> usize {
    ca.list_certificates(v1::ListCertificatesRequest {
        include_expired: true,
        page_size: 1000,
        ..Default::default()
    })
    .await
    .expect("list")
    .into_inner()
    .certificates
    .len()
}

async fn issued_count(sys: &mut SysClient<Channel>) -> u64 {
    sys.status(v1::StatusRequest {})
        .await
        .expect("status")
        .into_inner()
        .certificates_issued
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_server_end_to_end() {
    let mut setup = start();
    let channel = connect(&setup, None).await;
    let mut ca = CaClient::new(channel.clone());
    let mut sys = SysClient::new(channel.clone());
    initialize_and_unseal(&setup, &channel, &mut ca, &mut sys).await;

    // --- IssueWithKey: a server-generated key, verified by openssl.
    let with_key = ca
        .issue_with_key(v1::IssueWithKeyRequest {
            profile: "server".into(),
            common_name: "api.example.test".into(),
            dns_names: vec!["www.example.test".into()],
            ip_addresses: vec!["127.0.0.5".into()],
            ..Default::default()
        })
        .await
        .expect("issue with key")
        .into_inner();
    let first = with_key.certificate.clone().expect("certificate");
    assert_eq!(first.status, v1::CertificateStatus::Issued as i32);
    assert_eq!(first.profile, "server");
    assert_eq!(first.requester, "anonymous");
    assert_eq!(first.subject, "CN=api.example.test,O=Example");
    assert_eq!(
        first.sans,
        [
            "DNS:www.example.test",
            "DNS:api.example.test",
            "IP:127.0.0.5"
        ]
    );
    assert!(first.serial.len() >= 16 && first.serial == first.serial.to_lowercase());
    assert!(
        with_key
            .private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(
        with_key.chain_pem,
        format!("{}{}", setup.issuing_pem(), setup.root_pem())
    );
    openssl_verifies(&setup, "with-key", &first.pem);
    let dir = setup.dir.path().to_path_buf();
    assert_eq!(
        public_key_of(&dir, "with-key.crt", &first.pem, false),
        public_key_of(&dir, "with-key.key", &with_key.private_key_pem, true),
        "the returned private key belongs to the certificate"
    );

    // --- IssueFromCsr: an `openssl req` CSR, PEM.
    let csr = openssl_csr(
        &dir,
        "leaf",
        P256,
        "/CN=svc.example.test",
        "DNS:svc.example.test,DNS:svc-alt.example.test",
        false,
    );
    let from_csr = ca
        .issue_from_csr(v1::IssueFromCsrRequest {
            profile: "server".into(),
            csr: csr.clone(),
            ttl: days(30),
        })
        .await
        .expect("issue from CSR")
        .into_inner();
    let second = from_csr.certificate.clone().expect("certificate");
    assert!(from_csr.private_key_pem.is_empty());
    openssl_verifies(&setup, "from-csr", &second.pem);
    let validity = second.not_after.expect("not_after").seconds
        - second.not_before.expect("not_before").seconds;
    assert!(
        (30 * 86_400..=30 * 86_400 + 600).contains(&validity),
        "{validity}"
    );

    // --- Inventory: GetCertificate and ListCertificates.
    let got = ca
        .get_certificate(v1::GetCertificateRequest {
            serial: second.serial.to_uppercase(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, second);
    let found = ca
        .list_certificates(v1::ListCertificatesRequest {
            name_contains: "SVC-ALT".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(found.certificates, std::slice::from_ref(&second));
    assert_eq!(found.next_page_token, "");
    let paged = ca
        .list_certificates(v1::ListCertificatesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        paged.certificates,
        std::slice::from_ref(&second),
        "newest first"
    );
    let next = ca
        .list_certificates(v1::ListCertificatesRequest {
            page_size: 1,
            page_token: paged.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("next page")
        .into_inner();
    assert_eq!(next.certificates, std::slice::from_ref(&first));
    let expiring = ca
        .list_certificates(v1::ListCertificatesRequest {
            expiring_within: days(31),
            ..Default::default()
        })
        .await
        .expect("list expiring")
        .into_inner();
    // The delegated OCSP signer (a week's validity) is in the inventory too.
    let (signers, services): (Vec<_>, Vec<_>) = expiring
        .certificates
        .into_iter()
        .partition(|c| c.profile == "ocsp-signer");
    assert_eq!(services, std::slice::from_ref(&second));
    assert_eq!(signers.len(), 1, "{signers:?}");
    let status = ca
        .get_certificate(v1::GetCertificateRequest {
            serial: "4a0102".into(),
        })
        .await
        .expect_err("unknown serial");
    assert_eq!(status.code(), Code::NotFound, "{}", status.message());

    // --- GetChain, and Sys.Status with the real count.
    let chain = ca
        .get_chain(v1::GetChainRequest {})
        .await
        .expect("chain")
        .into_inner();
    assert_eq!(
        chain.certificates_pem,
        [setup.issuing_pem(), setup.root_pem()]
    );
    assert_eq!(chain.chain_pem, with_key.chain_pem);
    let status = sys
        .status(v1::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(!status.sealed);
    assert_eq!(status.hsm_status, "ready");
    assert_eq!(status.hsm_token, setup._token.label);
    // Two service certificates and the delegated OCSP signer's.
    assert_eq!(status.certificates_issued, 3);
    let started = status.started_at.expect("started_at").seconds;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(started <= now && now - started < 600, "{started} vs {now}");

    // --- Health and reflection.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in [
        "",
        "strongroom.v1.Ca",
        "strongroom.v1.Sys",
        "strongroom.v1.Seal",
    ] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(
            answer.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    check_reflection(channel.clone()).await;

    // --- Bad inputs: each INVALID_ARGUMENT with a precise message; nothing stored.
    let stored = inventory_size(&mut ca).await;
    assert_eq!(stored, 3, "two service certificates and the OCSP signer's");
    let csr_request = |csr: Vec<u8>| v1::IssueFromCsrRequest {
        profile: "server".into(),
        csr,
        ttl: None,
    };
    assert_invalid(
        ca.issue_from_csr(csr_request(b"this is not a CSR".to_vec()))
            .await,
        &["csr: CSR is not a valid DER certificate request"],
    );
    let mut bad_signature = openssl_csr(
        &dir,
        "bad-sig",
        P256,
        "/CN=sig.example.test",
        "DNS:sig.example.test",
        true,
    );
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    assert_invalid(
        ca.issue_from_csr(csr_request(bad_signature)).await,
        &["CSR signature does not verify"],
    );
    let rsa_1024 = openssl_csr(
        &dir,
        "rsa1024",
        &["-newkey", "rsa:1024"],
        "/CN=small.example.test",
        "DNS:small.example.test",
        false,
    );
    assert_invalid(
        ca.issue_from_csr(csr_request(rsa_1024)).await,
        &["RSA key of 1024 bits is too small (minimum 2048)"],
    );
    let disallowed = openssl_csr(
        &dir,
        "disallowed",
        P256,
        "/CN=api.example.com",
        "DNS:api.example.com",
        false,
    );
    assert_invalid(
        ca.issue_from_csr(csr_request(disallowed)).await,
        &["DNS name 'api.example.com' is not allowed by profile 'server'"],
    );
    assert_invalid(
        ca.issue_with_key(v1::IssueWithKeyRequest {
            profile: "server".into(),
            dns_names: vec!["ok.example.test".into()],
            ip_addresses: vec!["10.1.2.3".into()],
            ..Default::default()
        })
        .await,
        &["IP address 10.1.2.3 is outside the ranges of profile 'server' (allowed: 127.0.0.0/8)"],
    );
    assert_invalid(
        ca.issue_from_csr(v1::IssueFromCsrRequest {
            ttl: days(400),
            ..csr_request(csr.clone())
        })
        .await,
        &["requested validity of 400d exceeds the maximum of 90d for profile 'server'"],
    );
    // Every violation of one request is named together.
    assert_invalid(
        ca.issue_with_key(v1::IssueWithKeyRequest {
            profile: "server".into(),
            dns_names: vec!["api.example.com".into()],
            ip_addresses: vec!["10.1.2.3".into()],
            ttl: days(400),
            key_type: "rsa-2048".into(),
            ..Default::default()
        })
        .await,
        &[
            "'api.example.com' is not allowed",
            "10.1.2.3 is outside",
            "exceeds the maximum of 90d",
            "does not generate rsa-2048 keys",
        ],
    );
    assert_invalid(
        ca.issue_with_key(v1::IssueWithKeyRequest {
            profile: "server".into(),
            dns_names: vec!["ok.example.test".into(), "bad_name.test".into()],
            ip_addresses: vec!["not-an-ip".into()],
            key_type: "dsa-1024".into(),
            ttl: days(0),
            ..Default::default()
        })
        .await,
        &[
            "dns_names: DNS name 'bad_name.test'",
            "ip_addresses: 'not-an-ip' is not an IPv4 or IPv6 address",
            "key_type: unknown key type 'dsa-1024'",
            "ttl: must be positive",
        ],
    );
    assert_invalid(
        ca.issue_from_csr(v1::IssueFromCsrRequest {
            profile: "nope".into(),
            ..csr_request(csr.clone())
        })
        .await,
        &["unknown profile 'nope'"],
    );
    assert_invalid(
        ca.issue_from_csr(v1::IssueFromCsrRequest {
            profile: String::new(),
            ..csr_request(csr.clone())
        })
        .await,
        &["profile: required"],
    );
    // Larger than limits.max_request_bytes: refused before it is decoded.
    let oversized = ca
        .issue_from_csr(csr_request(vec![0x30; MAX_REQUEST_BYTES + 50_000]))
        .await;
    assert_invalid(
        oversized,
        &[&format!(
            "the limit is {MAX_REQUEST_BYTES} bytes (limits.max_request_bytes)"
        )],
    );
    assert_eq!(
        inventory_size(&mut ca).await,
        stored,
        "a refused request stored something"
    );
    assert_eq!(issued_count(&mut sys).await, 3);

    // --- Renew: same key, new key, new CSR; and refusals.
    let renewed = ca
        .renew(v1::RenewRequest {
            serial: second.serial.clone(),
            ttl: days(10),
            ..Default::default()
        })
        .await
        .expect("renew")
        .into_inner();
    let third = renewed.certificate.expect("certificate");
    assert_ne!(third.serial, second.serial);
    assert_eq!(third.renewal_of, second.serial);
    assert_eq!(third.sans, second.sans);
    assert_eq!(third.subject, second.subject);
    assert!(renewed.private_key_pem.is_empty());
    assert_eq!(
        public_key_of(&dir, "third.crt", &third.pem, false),
        public_key_of(&dir, "second.crt", &second.pem, false),
        "renewal without new_key or csr keeps the key"
    );
    openssl_verifies(&setup, "renewed", &third.pem);

    let rekeyed = ca
        .renew(v1::RenewRequest {
            serial: first.serial.clone(),
            new_key: true,
            ..Default::default()
        })
        .await
        .expect("renew with a new key")
        .into_inner();
    let fourth = rekeyed.certificate.expect("certificate");
    assert_eq!(fourth.sans, first.sans);
    assert_eq!(fourth.renewal_of, first.serial);
    let new_key = public_key_of(&dir, "fourth.key", &rekeyed.private_key_pem, true);
    assert_eq!(
        public_key_of(&dir, "fourth.crt", &fourth.pem, false),
        new_key
    );
    assert_ne!(public_key_of(&dir, "first.crt", &first.pem, false), new_key);

    let same_names = openssl_csr(
        &dir,
        "renew-csr",
        P256,
        "/CN=svc.example.test",
        "DNS:svc-alt.example.test,DNS:svc.example.test",
        true,
    );
    let from_new_csr = ca
        .renew(v1::RenewRequest {
            serial: second.serial.clone(),
            csr: same_names,
            ..Default::default()
        })
        .await
        .expect("renew with a CSR")
        .into_inner();
    let fifth = from_new_csr.certificate.expect("certificate");
    assert_eq!(fifth.renewal_of, second.serial);
    assert_eq!(
        public_key_of(&dir, "fifth.crt", &fifth.pem, false),
        String::from_utf8_lossy(
            &openssl(&["pkey", "-in", p(&dir.join("renew-csr.key")), "-pubout"]).stdout
        )
    );
    let other_names = openssl_csr(
        &dir,
        "renew-other",
        P256,
        "/CN=svc.example.test",
        "DNS:svc.example.test",
        false,
    );
    assert_invalid(
        ca.renew(v1::RenewRequest {
            serial: second.serial.clone(),
            csr: other_names.clone(),
            ..Default::default()
        })
        .await,
        &[
            "csr: names [DNS:svc.example.test] but certificate",
            "is for [DNS:svc-alt.example.test, DNS:svc.example.test]",
        ],
    );
    assert_invalid(
        ca.renew(v1::RenewRequest {
            serial: second.serial.clone(),
            csr: other_names,
            new_key: true,
            ttl: None,
        })
        .await,
        &["csr and new_key: set at most one"],
    );
    let missing = ca
        .renew(v1::RenewRequest {
            serial: "4a0102".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown serial");
    assert_eq!(missing.code(), Code::NotFound, "{}", missing.message());
    assert_eq!(issued_count(&mut sys).await, 6);

    // --- mTLS: a client certificate from the appliance names the requester
    // (its first DNS name: it has no URI name).
    let client = ca
        .issue_with_key(v1::IssueWithKeyRequest {
            profile: "client".into(),
            common_name: "agent.example.test".into(),
            ..Default::default()
        })
        .await
        .expect("client certificate")
        .into_inner();
    let client_cert = client.certificate.expect("certificate");
    let identity = Identity::from_pem(
        format!("{}{}", client_cert.pem, setup.issuing_pem()),
        client.private_key_pem.as_bytes(),
    );
    let mut mtls = CaClient::new(connect(&setup, Some(identity)).await);
    let by_client = mtls
        .issue_with_key(v1::IssueWithKeyRequest {
            profile: "server".into(),
            common_name: "mtls.example.test".into(),
            ..Default::default()
        })
        .await
        .expect("issue over mTLS")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(by_client.requester, "agent.example.test");
    let mine = ca
        .list_certificates(v1::ListCertificatesRequest {
            requester: "agent.example.test".into(),
            ..Default::default()
        })
        .await
        .expect("list by requester")
        .into_inner();
    assert_eq!(mine.certificates, [by_client]);

    // --- HTTP: the CA certificates.
    let (head, body) = http_get(setup.http, "/ca/issuing.crt");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/pkix-cert"),
        "{head}"
    );
    assert_eq!(body, setup.issuing_der);
    let (_, body) = http_get(setup.http, "/ca/root.crt");
    assert_eq!(body, setup.root_der);
    let (_, body) = http_get(setup.http, "/ca/chain.pem");
    assert_eq!(String::from_utf8_lossy(&body), with_key.chain_pem);
    let (head, _) = http_get(setup.http, "/ca/missing.crt");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // --- SIGTERM: a clean stop, exit status 0.
    drop((ca, sys, mtls, health, channel));
    let exit = setup.server.terminate();
    assert!(exit.success(), "{exit}:\n{}", setup.server.log());
    let log = setup.server.log();
    assert!(
        log.contains(&format!("strongroom: gRPC on https://{}", setup.grpc)),
        "{log}"
    );
    assert!(
        log.contains(&format!("strongroom: HTTP on http://{}", setup.http)),
        "{log}"
    );
    assert!(
        !log.contains("PRIVATE KEY") && !log.contains("BEGIN CERTIFICATE"),
        "keys or certificates were logged:\n{log}"
    );
}

/// Both reflection versions list our services.
/// The fresh server is uninitialised and sealed: only health, Sys and Seal
/// answer. Init makes 3 shares (2 to unseal); the unseal attempt refuses a
/// duplicate, a corrupted and a foreign share and a stale nonce, then opens.
async fn initialize_and_unseal(
    setup: &Setup,
    channel: &Channel,
    ca: &mut CaClient<Channel>,
    sys: &mut SysClient<Channel>,
) {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut seal = SealClient::new(channel.clone());
    let status = sys
        .status(v1::StatusRequest {})
        .await
        .expect("status while sealed")
        .into_inner();
    assert!(status.sealed);
    assert_eq!(status.hsm_status, "sealed");
    let refused = ca
        .get_chain(v1::GetChainRequest {})
        .await
        .expect_err("sealed");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("sealed"),
        "{}",
        refused.message()
    );
    let (head, _) = http_get(setup.http, "/ca/issuing.crt");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let ca_health = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };
    let answer = health
        .check(ca_health("strongroom.v1.Ca"))
        .await
        .expect("health")
        .into_inner();
    assert_eq!(answer.status, ServingStatus::NotServing as i32);

    let before = seal
        .status(v1::SealStatusRequest {})
        .await
        .expect("seal status")
        .into_inner();
    assert!(!before.initialized && before.sealed);
    let early = seal
        .unseal(v1::UnsealRequest::default())
        .await
        .expect_err("not initialised");
    assert_eq!(early.code(), Code::FailedPrecondition);
    let pin = setup._token.user_pin.expose_secret().to_string();
    let init_request = |shares: u32, threshold: u32, pin: &str| v1::InitRequest {
        shares,
        threshold,
        pin: pin.into(),
        ..v1::InitRequest::default()
    };
    for (shares, threshold, pin) in [(0, 0, &*pin), (3, 4, &*pin), (256, 2, &*pin), (3, 2, "")] {
        let bad = seal
            .init(init_request(shares, threshold, pin))
            .await
            .expect_err("bad parameters");
        assert_eq!(bad.code(), Code::InvalidArgument, "{shares}/{threshold}");
    }
    let wrong = seal
        .init(init_request(3, 2, "not-the-pin"))
        .await
        .expect_err("a wrong PIN does not initialise");
    assert_eq!(
        wrong.code(),
        Code::FailedPrecondition,
        "{}",
        wrong.message()
    );
    assert!(!wrong.message().contains("not-the-pin"));
    // The first init is abandoned (its shares never verified); the second
    // replaces it.
    let abandoned = seal
        .init(init_request(3, 2, &pin))
        .await
        .expect("init")
        .into_inner();
    let init = seal
        .init(init_request(3, 2, &pin))
        .await
        .expect("init again while pending")
        .into_inner();
    assert_eq!((init.shares.len(), init.threshold), (3, 2));
    assert_ne!(init.set_id, abandoned.set_id);
    let pending = seal
        .status(v1::SealStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert!(pending.init_pending && !pending.initialized);
    // Nothing is committed before every share is verified: the initial PIN
    // still logs in (asked of OpenSC's pkcs11-tool, in its own process).
    assert!(pkcs11_login(setup, &pin).status.success());
    let verify = |share: &str| v1::InitVerifyRequest {
        share: share.into(),
    };
    let foreign = seal
        .init_verify(verify(&abandoned.shares[0]))
        .await
        .expect_err("a share of the abandoned init");
    assert_eq!(foreign.code(), Code::InvalidArgument);
    for share in &init.shares {
        seal.init_verify(verify(share)).await.expect("verify");
    }
    let again = seal
        .init(init_request(3, 2, &pin))
        .await
        .expect_err("initialised once");
    assert_eq!(again.code(), Code::FailedPrecondition);
    // The initial PIN no longer opens the token.
    let login = pkcs11_login(setup, &pin);
    assert!(!login.status.success(), "the initial PIN still logs in");
    assert!(
        String::from_utf8_lossy(&login.stderr).contains("CKR_PIN_INCORRECT"),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );

    let unseal = |share: &str, nonce: &str| v1::UnsealRequest {
        share: share.into(),
        nonce: nonce.into(),
        reset: false,
    };
    let first = seal
        .unseal(unseal(&init.shares[0], ""))
        .await
        .expect("first share")
        .into_inner();
    assert!(first.sealed && first.initialized);
    assert_eq!((first.progress, first.threshold, first.shares), (1, 2, 3));
    assert_eq!(first.set_id, init.set_id);
    assert_eq!(first.nonce.len(), 32);
    let duplicate = seal
        .unseal(unseal(&init.shares[0], &first.nonce))
        .await
        .expect_err("duplicate");
    assert_eq!(duplicate.code(), Code::InvalidArgument);
    assert!(
        duplicate.message().contains("more than once"),
        "{}",
        duplicate.message()
    );
    let corrupted = flip_payload_digit(&init.shares[1]);
    let refused = seal
        .unseal(unseal(&corrupted, &first.nonce))
        .await
        .expect_err("corrupted");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("checksum"),
        "{}",
        refused.message()
    );
    let raced = seal
        .unseal(unseal(&init.shares[1], "new"))
        .await
        .expect_err("an attempt is in progress");
    assert_eq!(raced.code(), Code::FailedPrecondition);
    assert!(
        raced.message().contains(&first.nonce),
        "{}",
        raced.message()
    );
    let stale = seal
        .unseal(unseal(&init.shares[1], "00112233445566778899aabbccddeeff"))
        .await
        .expect_err("stale nonce");
    assert_eq!(stale.code(), Code::FailedPrecondition);
    let progress = seal
        .status(v1::SealStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (progress.progress, progress.nonce.clone()),
        (1, first.nonce.clone())
    );
    for share in &init.shares {
        assert!(!format!("{progress:?}").contains(share.as_str()));
    }

    let open = seal
        .unseal(unseal(&init.shares[1], &first.nonce))
        .await
        .expect("second share unseals")
        .into_inner();
    assert!(!open.sealed && open.nonce.is_empty());
    let answer = health
        .check(ca_health("strongroom.v1.Ca"))
        .await
        .expect("health")
        .into_inner();
    assert_eq!(answer.status, ServingStatus::Serving as i32);
    let log = setup.server.log();
    for share in &init.shares {
        for line in share
            .lines()
            .filter(|l| l.len() > 20 && !l.starts_with("set "))
        {
            assert!(!log.contains(line), "a share line is in the log");
        }
    }
}

/// OpenSC's pkcs11-tool logging in to the test token with `pin`.
fn pkcs11_login(setup: &Setup, pin: &str) -> Output {
    Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&setup._token.module)
        .args([
            "--token-label",
            &setup._token.label,
            "--login",
            "--pin",
            pin,
        ])
        .arg("--list-objects")
        .output()
        .expect("run pkcs11-tool")
}

/// `share` with its first payload digit changed (the checksum no longer matches).
fn flip_payload_digit(share: &str) -> String {
    let mut lines: Vec<String> = share.lines().map(str::to_owned).collect();
    let payload = lines
        .iter_mut()
        .find(|l| {
            l.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) && !l.starts_with("check")
        })
        .expect("a payload line");
    let first = payload.remove(0);
    payload.insert(0, if first == '0' { '1' } else { '0' });
    lines.join("\n")
}

async fn check_reflection(channel: Channel) {
    use tonic_reflection::pb::{v1 as r1, v1alpha as r1alpha};

    let mut client = r1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "strongroom.v1.Ca",
        "strongroom.v1.Sys",
        "strongroom.v1.Seal",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == service), "{service} in {names:?}");
    }

    let mut old = r1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = r1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            r1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "strongroom.v1.Ca".into(),
            ),
        ),
    };
    let mut answers = old
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    assert!(
        matches!(
            answer.message_response,
            Some(r1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{answer:?}"
    );
}
