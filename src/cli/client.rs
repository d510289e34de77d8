//! The connection to the appliance: the options every client command shares
//! (`--addr`, `--cacert`, `--client-cert`, `--client-key`, `--output`,
//! `--timeout`), the gRPC channel they build, and the one-line errors made
//! from gRPC statuses.

use std::error::Error as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

use super::{UsageError, parse_duration_arg};

/// The address used when neither `--addr` nor `STRONGROOM_ADDR` is given.
pub(crate) const DEFAULT_ADDR: &str = "https://127.0.0.1:8443";

/// How a command prints its result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Readable text (PEM, summaries, one line per certificate).
    Text,
    /// One JSON document per command (one per check for the agent).
    Json,
}

/// Where the appliance is and how to talk to it. Flags override the
/// environment variables.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct ConnectionArgs {
    /// Address of the appliance's gRPC endpoint: https://HOST:PORT (http://
    /// only for a plaintext test server; HOST:PORT alone means https).
    #[arg(long, env = "STRONGROOM_ADDR", value_name = "URL", default_value = DEFAULT_ADDR)]
    pub(crate) addr: String,

    /// PEM file with the CA certificate(s) to trust for the appliance's TLS
    /// certificate (the appliance's root). Required for https.
    #[arg(long, env = "STRONGROOM_CACERT", value_name = "FILE")]
    pub(crate) cacert: Option<PathBuf>,

    /// PEM certificate to present to the appliance (mutual TLS). Requires
    /// --client-key.
    #[arg(long, env = "STRONGROOM_CLIENT_CERT", value_name = "FILE")]
    pub(crate) client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert (mutual TLS). Requires --client-cert.
    #[arg(long, env = "STRONGROOM_CLIENT_KEY", value_name = "FILE")]
    pub(crate) client_key: Option<PathBuf>,

    /// Output format on stdout: text, or one JSON document for scripts.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub(crate) output: OutputFormat,

    /// How long to wait for the appliance to connect and to answer each
    /// request, like 30s or 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration_arg)]
    pub(crate) timeout: Duration,
}

impl ConnectionArgs {
    /// The address as used: `--addr`, with `https://` added if it had no
    /// scheme.
    pub(crate) fn url(&self) -> String {
        if self.addr.contains("://") {
            self.addr.clone()
        } else {
            format!("https://{}", self.addr)
        }
    }

    /// Builds the endpoint: parses the address and, for https, reads the CA
    /// certificate and the optional client identity. Touches no network.
    pub(crate) fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let url = self.url();
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| UsageError::new(format!("invalid --addr '{url}': {e}")))?;
        let uri = endpoint.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| UsageError::new(format!("--addr '{url}' names no host")))?;
        // An IPv6 literal is bracketed in the URL but not in a TLS server name.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(UsageError::new(
                "--client-cert and --client-key (STRONGROOM_CLIENT_CERT, STRONGROOM_CLIENT_KEY) \
                 must be given together",
            )
            .into());
        }
        let endpoint = endpoint.connect_timeout(self.timeout).timeout(self.timeout);
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") => {
                if self.client_cert.is_some() {
                    return Err(UsageError::new(format!(
                        "a client certificate needs TLS, but --addr '{url}' is plain http"
                    ))
                    .into());
                }
                return Ok(endpoint);
            }
            _ => {
                return Err(UsageError::new(format!(
                    "--addr '{url}' must start with https:// (or http:// for a plaintext test server)"
                ))
                .into());
            }
        }
        let cacert = self.cacert.as_ref().ok_or_else(|| {
            UsageError::new(format!(
                "--cacert FILE (or STRONGROOM_CACERT) is required to connect to {url}: \
                 name the appliance's root certificate"
            ))
        })?;
        let ca_pem = std::fs::read(cacert)
            .with_context(|| format!("cannot read the CA certificate {}", cacert.display()))?;
        if !contains_pem(&ca_pem, "CERTIFICATE") {
            anyhow::bail!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                cacert.display()
            );
        }
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name(host);
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            let cert_pem = std::fs::read(cert).with_context(|| {
                format!("cannot read the client certificate {}", cert.display())
            })?;
            let key_pem = Zeroizing::new(
                std::fs::read(key)
                    .with_context(|| format!("cannot read the client key {}", key.display()))?,
            );
            tls = tls.identity(Identity::from_pem(cert_pem, &*key_pem));
        }
        endpoint
            .tls_config(tls)
            .with_context(|| format!("cannot set up TLS for {url}"))
    }

    /// Connects to the appliance, failing after `--timeout`.
    pub(crate) async fn connect(&self) -> anyhow::Result<Channel> {
        let endpoint = self.endpoint()?;
        let url = self.url();
        match tokio::time::timeout(self.timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e)) => {
                let hint = if refused(&e) {
                    " (the appliance may not be running there)"
                } else {
                    ""
                };
                Err(anyhow!(
                    "cannot connect to {url}{hint}: {}",
                    error_chain(&e)
                ))
            }
            Err(_) => Err(anyhow!(
                "cannot connect to {url}: no answer within {} (the appliance may not be running there)",
                strongroom_ca::format_duration(self.timeout)
            )),
        }
    }
}

/// Whether a connection error means nothing answered at the address (as
/// opposed to, say, a TLS failure).
fn refused(error: &tonic::transport::Error) -> bool {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | AddrNotAvailable
                    | TimedOut
                    | HostUnreachable
                    | NetworkUnreachable
            ) {
                return true;
            }
        }
        // Name resolution failures and timeouts are not io errors everywhere.
        let text = e.to_string();
        if text.contains("dns error") || text.contains("timed out") {
            return true;
        }
        source = e.source();
    }
    false
}

/// An error and its sources joined with ": ", leaving out a source whose
/// text its predecessor already ends with (hyper and rustls repeat
/// themselves).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    one_line(&parts.join(": "))
}

/// Whether `bytes` contain a PEM block with `label`.
fn contains_pem(bytes: &[u8], label: &str) -> bool {
    String::from_utf8_lossy(bytes).contains(&format!("-----BEGIN {label}-----"))
}

/// The error for a failed call: `<what>: <code name>: <server message>`, on
/// one line. For `Unavailable` it adds where the appliance was expected.
pub(crate) fn rpc_error(what: &str, url: &str, status: &tonic::Status) -> anyhow::Error {
    let mut message = one_line(status.message());
    if message.is_empty() {
        message = status.code().description().to_owned();
    }
    if status.code() == Code::Unavailable {
        message.push_str(&format!(" (is the appliance running at {url}?)"));
    }
    anyhow!("{what}: {}: {message}", code_name(status.code()))
}

/// The name of a gRPC status code, as in DESIGN.md and `grpcurl`
/// (`InvalidArgument`, `NotFound`, …).
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Joins the lines of a (possibly multi-line) server message with "; ".
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(addr: &str) -> ConnectionArgs {
        ConnectionArgs {
            addr: addr.to_owned(),
            cacert: None,
            client_cert: None,
            client_key: None,
            output: OutputFormat::Text,
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn https_needs_a_ca_certificate_and_that_is_a_usage_error() {
        let err = args("https://127.0.0.1:8443")
            .endpoint()
            .expect_err("endpoint should fail");
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
        assert!(err.to_string().contains("STRONGROOM_CACERT"), "{err:#}");
        // No scheme means https.
        assert_eq!(args("localhost:8443").url(), "https://localhost:8443");
        assert!(args("localhost:8443").endpoint().is_err());
        // Plain http needs nothing.
        args("http://127.0.0.1:1").endpoint().expect("endpoint");
        let err = args("ftp://x")
            .endpoint()
            .expect_err("endpoint should fail");
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
    }

    #[test]
    fn client_identity_files_go_together() {
        let mut a = args("http://127.0.0.1:1");
        a.client_cert = Some("c.pem".into());
        let err = a.endpoint().expect_err("endpoint should fail");
        assert!(err.to_string().contains("together"), "{err:#}");
    }

    #[test]
    fn missing_ca_file_names_the_file() {
        let mut a = args("https://[::1]:8443");
        a.cacert = Some("/nonexistent/root.pem".into());
        let err = format!("{:#}", a.endpoint().expect_err("endpoint should fail"));
        assert!(err.contains("/nonexistent/root.pem"), "{err}");
    }

    #[test]
    fn rpc_errors_are_one_line_with_the_code_name() {
        let status = tonic::Status::invalid_argument("name not allowed\nTTL too long");
        let err = rpc_error("issue certificate", DEFAULT_ADDR, &status).to_string();
        assert_eq!(
            err,
            "issue certificate: InvalidArgument: name not allowed; TTL too long"
        );
        let status = tonic::Status::unavailable("");
        let err = rpc_error("list certificates", DEFAULT_ADDR, &status).to_string();
        assert!(err.starts_with("list certificates: Unavailable: "), "{err}");
        assert!(err.contains(DEFAULT_ADDR), "{err}");
    }

    #[test]
    fn error_chains_drop_repeated_sources() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "transport error",
            Some(Box::new(E(
                "tcp connect error",
                Some(Box::new(E(
                    "tcp connect error",
                    Some(Box::new(E("Connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "transport error: tcp connect error: Connection refused"
        );
    }

    #[tokio::test]
    async fn connection_refused_names_the_address() {
        // Bind then drop a listener to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("local_addr")
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = format!(
            "{:#}",
            args(&url).connect().await.expect_err("connect should fail")
        );
        assert!(
            err.starts_with(&format!("cannot connect to {url}")),
            "{err}"
        );
        assert!(err.contains("may not be running"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert_eq!(err.matches("tcp connect error").count(), 1, "{err}");
    }
}
