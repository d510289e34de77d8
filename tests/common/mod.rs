//! Shared helpers for the end-to-end tests: a running dev appliance and the
//! independent tools that check what it produces.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_strongroom");

/// The running dev appliance; killed when dropped, even if the test panics.
pub struct Dev {
    child: Child,
    pub addr: String,
    pub cacert: String,
    /// The dev admin's client certificate (chain) and key, which the dev
    /// policies grant everything.
    pub client_cert: String,
    pub client_key: String,
    /// `http://127.0.0.1:port/metrics`, when the banner names it.
    pub metrics: Option<String>,
}

impl Dev {
    /// Starts `strongroom dev` on `data`, on ephemeral ports.
    pub fn start(data: &Path) -> Dev {
        Dev::launch(
            data,
            &[
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ],
        )
    }

    /// Starts `strongroom dev` again on `data`, on the addresses its
    /// configuration names, so the URLs in its certificates still answer.
    pub fn restart(data: &Path) -> Dev {
        Dev::launch(data, &[])
    }

    /// Starts `strongroom dev` on `data` like [`Dev::start`], logging at
    /// debug level (`STRONGROOM_LOG=debug`) into the file `log`, which
    /// receives everything it writes on stderr.
    pub fn start_logged(data: &Path, log: &Path) -> Dev {
        let file = std::fs::File::create(log).expect("create the log file");
        Dev::spawn(
            data,
            &[
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ],
            Some(file),
        )
    }

    fn launch(data: &Path, addresses: &[&str]) -> Dev {
        Dev::spawn(data, addresses, None)
    }

    fn spawn(data: &Path, addresses: &[&str], log: Option<std::fs::File>) -> Dev {
        let mut command = Command::new(BIN);
        command
            .args(["dev", "--data-dir"])
            .arg(data)
            .args(addresses)
            .stdout(Stdio::piped());
        match log {
            Some(file) => {
                command.env("STRONGROOM_LOG", "debug").stderr(file);
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        let mut child = command.spawn().expect("start strongroom dev");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut cacert, mut metrics) = (None, None, None);
        let (mut client_cert, mut client_key) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while addr.is_none() || cacert.is_none() || client_cert.is_none() || client_key.is_none() {
            assert!(
                Instant::now() < deadline,
                "dev appliance did not print its exports"
            );
            let line = lines
                .next()
                .expect("dev appliance exited before printing its exports")
                .expect("read stdout");
            if let Some(v) = line.strip_prefix("export STRONGROOM_ADDR=") {
                addr = Some(v.to_string());
            }
            if let Some(v) = line.strip_prefix("export STRONGROOM_CACERT=") {
                cacert = Some(v.to_string());
            }
            if let Some(v) = line.strip_prefix("export STRONGROOM_CLIENT_CERT=") {
                client_cert = Some(v.to_string());
            }
            if let Some(v) = line.strip_prefix("export STRONGROOM_CLIENT_KEY=") {
                client_key = Some(v.to_string());
            }
            if let Some(v) = line.trim_start().strip_prefix("metrics ") {
                metrics = Some(v.trim().to_string());
            }
        }
        // Keep draining stdout so the appliance never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let dev = Dev {
            child,
            addr: addr.expect("addr"),
            cacert: cacert.expect("cacert"),
            client_cert: client_cert.expect("client cert"),
            client_key: client_key.expect("client key"),
            metrics,
        };
        dev.wait_ready();
        dev
    }

    /// The appliance's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the gRPC listener answers a real RPC.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.cli(&["ca", "chain"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "appliance not ready: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A gRPC client of the Transit service over TLS, accepting messages of
    /// up to 64 MiB.
    pub async fn transit_client(
        &self,
    ) -> strongroom_proto::v1::transit_client::TransitClient<tonic::transport::Channel> {
        strongroom_proto::v1::transit_client::TransitClient::new(self.channel().await)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    /// A gRPC channel over TLS as the dev admin.
    pub async fn channel(&self) -> tonic::transport::Channel {
        self.channel_as(Some((&self.client_cert, &self.client_key)))
            .await
            .expect("connect over TLS")
    }

    /// A gRPC channel over TLS presenting `identity` (certificate chain and
    /// key files), or no client certificate.
    pub async fn channel_as(
        &self,
        identity: Option<(&str, &str)>,
    ) -> Result<tonic::transport::Channel, tonic::transport::Error> {
        use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
        let pem = std::fs::read_to_string(&self.cacert).expect("CA certificate");
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        if let Some((cert, key)) = identity {
            let cert = std::fs::read_to_string(cert).expect("client certificate");
            let key = std::fs::read_to_string(key).expect("client key");
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Channel::from_shared(self.addr.clone())
            .expect("uri")
            .tls_config(tls)
            .expect("tls config")
            .connect()
            .await
    }

    /// Runs the CLI against the appliance as the dev admin.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("STRONGROOM_ADDR", &self.addr)
            .env("STRONGROOM_CACERT", &self.cacert)
            .env("STRONGROOM_CLIENT_CERT", &self.client_cert)
            .env("STRONGROOM_CLIENT_KEY", &self.client_key)
            .output()
            .expect("run strongroom")
    }

    /// Runs the CLI against the appliance without a client certificate.
    pub fn cli_anonymous(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("STRONGROOM_ADDR", &self.addr)
            .env("STRONGROOM_CACERT", &self.cacert)
            .env_remove("STRONGROOM_CLIENT_CERT")
            .env_remove("STRONGROOM_CLIENT_KEY")
            .output()
            .expect("run strongroom")
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "strongroom {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Issues a `server` certificate for `NAME.test` with a server-made key
    /// into `dir` (`NAME.pem`, `NAME.key`); returns its serial and the
    /// certificate's path.
    pub fn issue_server(&self, dir: &Path, name: &str) -> (String, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        let host = format!("{name}.test");
        let json = self.cli_ok(&[
            "cert",
            "issue",
            "--profile",
            "server",
            "--cn",
            &host,
            "--san",
            &host,
            "--out-cert",
            p(&cert),
            "--out-key",
            p(&key),
            "--output",
            "json",
        ]);
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        let serial = value["certificate"]["serial"]
            .as_str()
            .expect("serial")
            .to_string();
        (serial, cert)
    }

    /// Writes the CA chain into `dir` as `issuing.pem` and `root.pem`, and
    /// returns those two paths.
    pub fn chain_files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let chain = dir.join("chain.pem");
        self.cli_ok(&["ca", "chain", "--out", p(&chain), "--force"]);
        let text = std::fs::read_to_string(&chain).expect("chain");
        let mut certs = text.split_inclusive("-----END CERTIFICATE-----\n");
        let issuing = dir.join("issuing.pem");
        std::fs::write(&issuing, certs.next().expect("issuing CA")).expect("write");
        let root = dir.join("root.pem");
        std::fs::write(&root, certs.next().expect("root")).expect("write");
        (issuing, root)
    }

    pub fn stop(mut self) {
        // SIGTERM: the appliance shuts down cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "dev appliance exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("dev appliance did not stop on SIGTERM");
    }
}

/// `strongroom server` from a configuration file, sealed until unsealed;
/// killed when dropped, even if the test panics. Its stderr is echoed.
pub struct Server {
    child: Child,
    pub addr: String,
    pub cacert: String,
    /// The client certificate (chain) and key the CLI presents, if any.
    pub client: Option<(String, String)>,
}

impl Server {
    /// Starts `strongroom server --config CONFIG` (with `SOFTHSM2_CONF` set
    /// to `softhsm_conf` if given), reads the gRPC address it prints, and
    /// waits until the Seal service answers over TLS trusting `cacert`.
    pub fn start(config: &Path, cacert: &Path, softhsm_conf: Option<&Path>) -> Server {
        let mut command = Command::new(BIN);
        command.args(["server", "--config"]).arg(config);
        if let Some(conf) = softhsm_conf {
            command.env("SOFTHSM2_CONF", conf);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strongroom server");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stderr");
            if let Some(addr) = line.strip_prefix("strongroom: gRPC on ") {
                break addr.to_string();
            }
        };
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("server: {line}");
            }
        });
        let server = Server {
            child,
            addr,
            cacert: p(cacert).to_string(),
            client: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.cli(&["operator", "status"]).status.success() {
            assert!(Instant::now() < deadline, "the Seal service never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The CLI presents `cert` (chain) and `key` from now on.
    pub fn with_client(mut self, cert: &Path, key: &Path) -> Server {
        self.client = Some((p(cert).to_string(), p(key).to_string()));
        self
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("STRONGROOM_ADDR", &self.addr)
            .env("STRONGROOM_CACERT", &self.cacert)
            .env_remove("STRONGROOM_CLIENT_CERT")
            .env_remove("STRONGROOM_CLIENT_KEY")
            .stdin(Stdio::null());
        if let Some((cert, key)) = &self.client {
            command
                .env("STRONGROOM_CLIENT_CERT", cert)
                .env("STRONGROOM_CLIENT_KEY", key);
        }
        command.output().expect("run strongroom")
    }

    /// Runs `args`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "strongroom {args:?} failed: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `args`, which must fail with exit code 1; returns its stderr.
    pub fn refused(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "strongroom {args:?} should fail: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs `args --output json`, which must succeed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("json output")
    }

    /// SIGTERM; the server must stop cleanly.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "server exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now on 127.0.0.1 (released before the server binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl")
}

/// A tool's stdout followed by its stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

pub fn serial_of(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", p(cert), "-noout", "-serial"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// A program from the test venv (`STRONGROOM_TEST_VENV`, set by the test command).
pub fn venv_tool(tool: &str) -> PathBuf {
    let bin = std::env::var_os("STRONGROOM_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv"))
        .join("bin")
        .join(tool);
    assert!(
        bin.exists(),
        "{} missing: run ./scripts/test",
        bin.display()
    );
    bin
}

/// Runs a pkilint linter; panics on any ERROR or FATAL finding.
pub fn pkilint(tool: &str, files: &[&Path]) {
    pkilint_tolerating(tool, files, &[]);
}

/// Runs a pkilint linter; panics on any ERROR or FATAL finding whose code is
/// not in `tolerated` (each tolerated code needs a written reason at the call).
pub fn pkilint_tolerating(tool: &str, files: &[&Path], tolerated: &[&str]) {
    let out = Command::new(venv_tool(tool))
        .args(["lint", "-s", "ERROR"])
        .args(files)
        .output()
        .expect("pkilint");
    let report = String::from_utf8_lossy(&out.stdout);
    // Findings are indented lines "code (SEVERITY)[: message]".
    let unexpected: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|code| !tolerated.contains(code))
        .collect();
    let clean = out.status.success() && report.trim().is_empty();
    assert!(
        clean || (unexpected.is_empty() && !report.trim().is_empty()),
        "{tool} {files:?} ({}): {report}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTP/1.1 response read by [`http_get`].
pub struct HttpResponse {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// GETs `url` (`http://host:port/path`) with extra request headers, over a
/// plain socket (no client library between the test and the server).
pub fn http_get(url: &str, extra: &[(&str, &str)]) -> HttpResponse {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut stream = std::net::TcpStream::connect(host).expect("connect HTTP");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    parse_response(&raw)
}

/// Runs pkilint's `lint_crl` (PKIX profile) on a CRL file; panics on any
/// ERROR or FATAL finding.
pub fn pkilint_crl(kind: &str, file: &Path) {
    let out = Command::new(venv_tool("lint_crl"))
        .args(["lint", "-t", kind, "-p", "PKIX", "-s", "ERROR"])
        .arg(file)
        .output()
        .expect("lint_crl");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "lint_crl {} ({}): {report}{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// POSTs `body` to `url` with `content_type`, over a plain socket.
pub fn http_post(url: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut stream = std::net::TcpStream::connect(host).expect("connect HTTP");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    // A server may answer and close before reading an oversized body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

/// Runs pkilint's `lint_ocsp_response` on a DER response; panics on any
/// ERROR or FATAL finding.
pub fn pkilint_ocsp(file: &Path) {
    let out = Command::new(venv_tool("lint_ocsp_response"))
        .args(["lint", "-s", "ERROR"])
        .arg(file)
        .output()
        .expect("lint_ocsp_response");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "lint_ocsp_response {} ({}): {report}{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Splits a raw HTTP/1.1 response (read to the end) into status, headers and body.
fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The audit trail's files under the data directory `data`, oldest first.
pub fn trail_files(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("audit"))
        .expect("audit dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// Every record of the audit trail under `data`, parsed, oldest first.
pub fn audit_records(data: &Path) -> Vec<serde_json::Value> {
    trail_files(data)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read trail")
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON record"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A DER CSR from `openssl req` with subject `subj` and SAN `san`.
pub fn openssl_csr(dir: &Path, name: &str, subj: &str, san: &str) -> Vec<u8> {
    let (key, csr) = (
        dir.join(format!("{name}.csr.key")),
        dir.join(format!("{name}.csr")),
    );
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        subj,
        "-keyout",
        p(&key),
        "-outform",
        "DER",
        "-out",
        p(&csr),
    ];
    let ext = format!("subjectAltName={san}");
    if !san.is_empty() {
        args.extend(["-addext", &ext]);
    }
    let out = openssl(&args);
    assert!(out.status.success(), "{}", output_text(&out));
    std::fs::read(csr).expect("csr")
}

/// A test root (P-384, 10 years) generated in `token` and the issuing CA
/// certificate it signs for `issuing_key` (5 years, path length 0), both
/// under the common name prefix `name`; their DER.
pub fn root_and_issuing_ca(
    token: &strongroom_hsm::Token,
    issuing_key: &strongroom_hsm::PublicKey,
    name: &str,
) -> (Vec<u8>, Vec<u8>) {
    use std::sync::Arc;
    use std::time::SystemTime;
    use strongroom_ca::{CaCertificateRequest, DistributionUrls, Issuer, self_signed_root};
    use strongroom_hsm::{KeySpec, SignatureAlgorithm};

    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 86_400);
    let serial = |n: u8| {
        let mut s = token.random(16).expect("random");
        s[0] = 0x40 | n;
        s
    };
    let root_key = token
        .generate_key_pair("root-ca", KeySpec::EcP384)
        .expect("root key");
    let root_signer = root_key
        .signer(SignatureAlgorithm::EcdsaP384Sha384)
        .expect("root signer");
    let root_subject = [
        ("O".into(), "Strongroom Tests".into()),
        ("CN".into(), format!("{name} Test Root")),
    ];
    let root_der = self_signed_root(
        &root_signer,
        &CaCertificateRequest {
            subject: &root_subject,
            public_key: root_key.public_key(),
            not_before: now - Duration::from_secs(60),
            not_after: now + 10 * year,
            path_len: Some(1),
            serial: &serial(1),
            urls: &DistributionUrls::default(),
        },
    )
    .expect("root certificate");
    let root = Issuer::new(&root_der, Arc::new(root_signer)).expect("root issuer");
    let issuing_subject = [
        ("O".into(), "Strongroom Tests".into()),
        ("CN".into(), format!("{name} Test Issuing CA")),
    ];
    let issuing_der = root
        .sign_ca(&CaCertificateRequest {
            subject: &issuing_subject,
            public_key: issuing_key,
            not_before: now - Duration::from_secs(60),
            not_after: now + 5 * year,
            path_len: Some(0),
            serial: &serial(2),
            urls: &DistributionUrls::default(),
        })
        .expect("issuing certificate");
    (root_der, issuing_der)
}

/// Writes `contents` to `dir/name`; returns the path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// Like [`write_file`], readable by its owner only (PINs, passwords).
pub fn private_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = write_file(dir, name, contents);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// Serves a fresh MockHsm (a software YubiHSM2, its authentication key 1
/// with the password `password`) over the yubihsm-connector HTTP API on
/// 127.0.0.1 for the rest of the test process; returns the port.
pub fn serve_mockhsm() -> u16 {
    let port = free_port();
    let config = yubihsm::HttpConfig {
        addr: "127.0.0.1".into(),
        port,
        ..yubihsm::HttpConfig::default()
    };
    let server = yubihsm::connector::http::Server::new(&config, yubihsm::Connector::mockhsm())
        .unwrap_or_else(|e| panic!("MockHsm connector server: {e}"));
    std::thread::spawn(move || {
        loop {
            let _ = server.handle_request();
        }
    });
    port
}

/// The head of a server configuration (`data_dir`, listeners, throwaway TLS
/// files from [`throwaway_tls`] under `tls/`, policies in `policies.toml`)
/// with a SoftHSM2 token and the YubiHSM2 that [`serve_mockhsm`] serves on
/// `connector_port`; the caller adds its `[ca]`, `[transit]` and profiles.
pub fn yubihsm_config_head(
    token: &strongroom_softhsm::TestToken,
    connector_port: u16,
    grpc: u16,
    http: u16,
) -> String {
    format!(
        r#"data_dir = "data"

[listen]
grpc = "127.0.0.1:{grpc}"
http = "127.0.0.1:{http}"

[tls]
cert = "tls/tls.pem"
key = "tls/tls.key"
auto_renew = false

[auth]
policies = "policies.toml"

[hsm]
module = "{module}"
token = "pkcs11:token={label}"

[yubihsm]
connector = "http://127.0.0.1:{connector_port}"
auth_key_id = 1
sessions = 2
"#,
        module = token.module.display(),
        label = token.label,
    )
}

/// A throwaway self-signed TLS certificate for `localhost` and 127.0.0.1
/// (P-256, two days), for tests about something else than the gRPC
/// server's identity: `dir/tls.pem` and `dir/tls.key`.
pub fn throwaway_tls(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("tls dir");
    let (cert, key) = (dir.join("tls.pem"), dir.join("tls.key"));
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&key),
        "-out",
        p(&cert),
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
    ]);
    assert!(out.status.success(), "openssl req: {}", output_text(&out));
    (cert, key)
}
