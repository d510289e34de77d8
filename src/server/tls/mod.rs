//! The gRPC server's TLS, terminated here rather than by tonic so that the
//! server certificate can be replaced while the server runs.
//!
//! - TLS 1.3 only, ALPN `h2`, rustls with the ring provider.
//! - Client certificates are optional: with `tls.client_ca` set, one that is
//!   presented must chain to those roots (rustls's `WebPkiClientVerifier`,
//!   unauthenticated callers allowed), and a bad one fails the handshake;
//!   without it none is asked for. tonic hands the peer's certificates to
//!   the services as `TlsConnectInfo<TcpConnectInfo>`, as it did when it
//!   terminated TLS itself (see `super::audit`).
//! - [`ServerCertificate`] answers every handshake with the certificate
//!   currently served, held in an `ArcSwap`: [`ServerCertificate::replace`]
//!   serves a renewed one to new handshakes at once, while connections
//!   already open keep theirs.
//! - [`incoming`] accepts TCP connections (with `TCP_NODELAY`) and runs each
//!   handshake on its own task, bounded by [`HANDSHAKE_TIMEOUT`], so a slow
//!   or failing client never holds up the others.
//! - [`files`] reads and writes the certificate and key files (a renewal
//!   replaces both without ever leaving a mismatched pair behind);
//!   [`renew`] is the task that renews the certificate (`tls.auto_renew`).

pub(crate) mod files;
pub(crate) mod renew;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use strongroom_ca::Names;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::TlsConfig;

/// The longest a client may take over its TLS handshake; it is then
/// disconnected.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once. A connection beyond them is closed at
/// once, so a flood of slow handshakes costs bounded memory and never stops
/// the listener from accepting.
const MAX_HANDSHAKES: usize = 1024;

/// Completed connections waiting for the gRPC server to take them.
const READY_CONNECTIONS: usize = 64;

/// What a served certificate says about itself, read once when it is
/// loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFacts {
    /// The serial number's bytes, as encoded.
    pub(crate) serial: Vec<u8>,
    /// Start of validity.
    pub(crate) not_before: SystemTime,
    /// End of validity.
    pub(crate) not_after: SystemTime,
    /// The subject's common name, if any.
    pub(crate) common_name: Option<String>,
    /// The subject alternative names (DNS, IP, URI).
    pub(crate) names: Names,
    /// The issuer's name (DER).
    pub(crate) issuer: Vec<u8>,
}

impl CertFacts {
    /// The facts of a certificate (DER).
    pub(crate) fn of(der: &[u8]) -> anyhow::Result<CertFacts> {
        let certificate = <x509_cert::Certificate as der::Decode>::from_der(der)
            .context("the server certificate is not an X.509 certificate")?;
        let tbs = &certificate.tbs_certificate;
        let (common_name, names) =
            strongroom_ca::certificate_names(der).map_err(anyhow::Error::msg)?;
        Ok(CertFacts {
            serial: tbs.serial_number.as_bytes().to_vec(),
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            common_name,
            names,
            issuer: der::Encode::to_der(&tbs.issuer)
                .context("the server certificate's issuer name cannot be encoded")?,
        })
    }

    /// The serial number, lower-case hex.
    pub(crate) fn serial_hex(&self) -> String {
        self.serial.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A certificate chain with its private key, ready to serve.
pub(crate) struct Served {
    /// The chain (leaf first) and the key, as rustls uses them.
    certified: Arc<CertifiedKey>,
    /// The leaf's facts.
    facts: CertFacts,
}

impl Served {
    /// A chain (PEM, leaf first) and its private key (PEM: PKCS#8, SEC1 or
    /// PKCS#1). Refuses a key that does not belong to the leaf.
    pub(crate) fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Served, PairError> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PairError::Unusable(format!("the certificate file is not PEM: {e}")))?;
        let Some(leaf) = chain.first() else {
            return Err(PairError::Unusable(
                "the certificate file holds no certificate".into(),
            ));
        };
        let facts = CertFacts::of(leaf).map_err(|e| PairError::Unusable(format!("{e:#}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
            PairError::Unusable(format!("the key file holds no usable private key: {e}"))
        })?;
        let key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
            PairError::Unusable(format!("the private key cannot sign for TLS: {e}"))
        })?;
        let certified = CertifiedKey::new(chain, key);
        match certified.keys_match() {
            Ok(()) => Ok(Served {
                certified: Arc::new(certified),
                facts,
            }),
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                Err(PairError::Mismatch)
            }
            Err(e) => Err(PairError::Unusable(format!(
                "cannot tell whether the private key belongs to the certificate: {e}"
            ))),
        }
    }

    /// The leaf certificate's facts.
    pub(crate) fn facts(&self) -> &CertFacts {
        &self.facts
    }

    /// The chain's certificates (DER, leaf first).
    #[cfg(test)]
    pub(crate) fn chain(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        &self.certified.cert
    }
}

/// Why a certificate file and a key file cannot be served together.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PairError {
    /// One of them cannot be read or used.
    #[error("{0}")]
    Unusable(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not belong to the certificate")]
    Mismatch,
}

/// The certificate every new handshake is answered with; see the module
/// docs.
pub(crate) struct ServerCertificate {
    current: ArcSwap<Served>,
}

impl ServerCertificate {
    /// Serves `served` until it is replaced.
    pub(crate) fn new(served: Served) -> ServerCertificate {
        ServerCertificate {
            current: ArcSwap::from_pointee(served),
        }
    }

    /// The certificate served now.
    pub(crate) fn current(&self) -> Arc<Served> {
        self.current.load_full()
    }

    /// Serves `served` to every handshake from now on; connections already
    /// open keep the certificate they were opened with.
    pub(crate) fn replace(&self, served: Served) {
        self.current.store(Arc::new(served));
    }
}

impl std::fmt::Debug for ServerCertificate {
    // Only the serial: never anything of the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("serial", &self.current.load().facts.serial_hex())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.load().certified))
    }
}

/// The gRPC server's TLS: the served certificate and the rustls
/// configuration that answers with it.
pub(crate) struct ServerTls {
    certificate: Arc<ServerCertificate>,
    config: Arc<ServerConfig>,
}

impl ServerTls {
    /// Reads the files `tls` names (finishing a renewal that a stop
    /// interrupted, see [`files::load`]) and builds the configuration.
    pub(crate) fn load(tls: &TlsConfig) -> anyhow::Result<ServerTls> {
        let served = files::load(&tls.cert, &tls.key)?;
        let client_roots = tls
            .client_ca
            .as_deref()
            .map(files::read_roots)
            .transpose()?;
        let certificate = Arc::new(ServerCertificate::new(served));
        let config = server_config(Arc::clone(&certificate), client_roots)?;
        Ok(ServerTls {
            certificate,
            config: Arc::new(config),
        })
    }

    /// The served certificate, for the renewal task.
    pub(crate) fn certificate(&self) -> &Arc<ServerCertificate> {
        &self.certificate
    }
}

/// TLS 1.3 only, ALPN `h2`, the certificate from `certificate`, and client
/// certificates checked against `client_roots` when given (optional: an
/// anonymous caller is let through, a bad certificate is not).
fn server_config(
    certificate: Arc<ServerCertificate>,
    client_roots: Option<RootCertStore>,
) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 is not available")?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .context("cannot verify client certificates against tls.client_ca")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Connections that completed their TLS handshake on `listener`, for
/// tonic's `serve_with_incoming_shutdown`, and the task that accepts them.
///
/// The task accepts until `stop` turns true (or its sender is gone) or the
/// stream is dropped. Each handshake runs on its own task, bounded by
/// [`HANDSHAKE_TIMEOUT`]; a failed one is logged at debug level and
/// dropped. At most [`MAX_HANDSHAKES`] run at once.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: &ServerTls,
    stop: watch::Receiver<bool>,
) -> (
    ReceiverStream<Result<TlsStream<TcpStream>, Infallible>>,
    JoinHandle<()>,
) {
    let (ready, connections) = mpsc::channel(READY_CONNECTIONS);
    let acceptor = TlsAcceptor::from(Arc::clone(&tls.config));
    let task = tokio::spawn(accept(listener, acceptor, ready, stop));
    (ReceiverStream::new(connections), task)
}

/// The accept loop of [`incoming`].
async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<Result<TlsStream<TcpStream>, Infallible>>,
    mut stop: watch::Receiver<bool>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ready.closed() => return,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, for instance: wait a little
                // rather than spin.
                tracing::warn!(error = %e, "cannot accept a gRPC connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Without it a response written in several pieces waits for the
        // client's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            tracing::debug!(%peer, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            match handshake {
                Ok(Ok(tls)) => {
                    // Fails only once the server stopped taking connections.
                    let _ = ready.send(Ok(tls)).await;
                }
                Ok(Err(e)) => handshake_failed(peer, &e.to_string()),
                Err(_) => handshake_failed(peer, "timed out"),
            }
        });
    }
}

/// Logs a failed handshake: the client's problem, so at debug level.
fn handshake_failed(peer: SocketAddr, why: &str) {
    tracing::debug!(%peer, error = why, "TLS handshake failed");
}
