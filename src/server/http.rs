//! Plain HTTP (hyper 1, HTTP/1.1): the CA certificates, for clients and for
//! the caIssuers URL written into every certificate.
//!
//! | path              | body                                   | type                  |
//! |-------------------|----------------------------------------|-----------------------|
//! | `/ca/issuing.crt` | the issuing CA certificate, DER        | `application/pkix-cert` |
//! | `/ca/root.crt`    | the last certificate of the chain, DER | `application/pkix-cert` |
//! | `/ca/chain.pem`   | the chain, issuing CA first, PEM       | `text/plain`          |
//!
//! Anything else is 404; a method other than GET is 405. The bodies are built
//! once at start: serving them touches neither the HSM nor the store. CRLs
//! and OCSP join this listener with revocation.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish once shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The documents served, built once.
#[derive(Debug, Clone)]
pub(crate) struct CaFiles {
    /// The issuing CA certificate, DER.
    issuing_der: Bytes,
    /// The root (the chain's last certificate), DER.
    root_der: Bytes,
    /// The whole chain, PEM.
    chain_pem: Bytes,
}

impl CaFiles {
    /// The documents for a chain given issuer first (as
    /// `Authority::chain_der`), and its PEM.
    pub(crate) fn new(chain_der: &[Vec<u8>], chain_pem: String) -> Self {
        let issuing = chain_der.first().cloned().unwrap_or_default();
        let root = chain_der.last().cloned().unwrap_or_default();
        CaFiles {
            issuing_der: Bytes::from(issuing),
            root_der: Bytes::from(root),
            chain_pem: Bytes::from(chain_pem),
        }
    }
}

/// Serves `listener` until `stop` turns true (or its sender is dropped),
/// then lets open connections finish for up to [`DRAIN_TIMEOUT`].
pub(crate) async fn serve(listener: TcpListener, files: CaFiles, stop: watch::Receiver<bool>) {
    let files = Arc::new(files);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(stop.clone()) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, Arc::clone(&files), stop.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
    tracing::debug!("HTTP server stopped");
}

/// Completes once `stop` is true or its sender is gone.
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Serves one connection until it ends or shutdown begins.
async fn connection(stream: TcpStream, files: Arc<CaFiles>, stop: watch::Receiver<bool>) {
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = respond(&files, request.method(), request.uri().path());
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        () = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
    }
}

/// The response to `method path`.
pub(crate) fn respond(files: &CaFiles, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if method != Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"method not allowed: use GET\n"),
        )
    } else {
        match path {
            "/ca/issuing.crt" => (
                StatusCode::OK,
                "application/pkix-cert",
                files.issuing_der.clone(),
            ),
            "/ca/root.crt" => (
                StatusCode::OK,
                "application/pkix-cert",
                files.root_der.clone(),
            ),
            "/ca/chain.pem" => (StatusCode::OK, "text/plain", files.chain_pem.clone()),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                Bytes::from_static(b"not found\n"),
            ),
        }
    };
    tracing::debug!(%method, path, status = status.as_u16(), "HTTP request");
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn files() -> CaFiles {
        CaFiles::new(
            &[b"issuing".to_vec(), b"root".to_vec()],
            "-----BEGIN CERTIFICATE-----\n".into(),
        )
    }

    async fn body(response: Response<Full<Bytes>>) -> Bytes {
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
    }

    #[tokio::test]
    async fn serves_the_ca_certificates_and_nothing_else() {
        let files = files();
        let issuing = respond(&files, &Method::GET, "/ca/issuing.crt");
        assert_eq!(issuing.status(), StatusCode::OK);
        assert_eq!(issuing.headers()[CONTENT_TYPE], "application/pkix-cert");
        assert_eq!(body(issuing).await, &b"issuing"[..]);
        assert_eq!(
            body(respond(&files, &Method::GET, "/ca/root.crt")).await,
            &b"root"[..]
        );
        let chain = respond(&files, &Method::GET, "/ca/chain.pem");
        assert_eq!(chain.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(body(chain).await, &b"-----BEGIN CERTIFICATE-----\n"[..]);
        assert_eq!(
            respond(&files, &Method::GET, "/ca/other.crt").status(),
            StatusCode::NOT_FOUND
        );
        let post = respond(&files, &Method::POST, "/ca/issuing.crt");
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET");
    }

    #[tokio::test]
    async fn serves_over_tcp_and_stops_on_the_signal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, files(), stop_rx));
        let response = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream
                .write_all(b"GET /ca/root.crt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .expect("write");
            let mut out = Vec::new();
            stream.read_to_end(&mut out).expect("read");
            out
        })
        .await
        .expect("client");
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("\r\n\r\nroot"), "{text}");
        stop_tx.send(true).expect("send");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("stopped in time")
            .expect("task");
    }
}
