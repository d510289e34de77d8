//! `GET /metrics` over plain HTTP/1.1 (hyper) on the metrics listener: the
//! request metrics, then the state read for this scrape, as OpenMetrics
//! text. Anything else is 404; another method on `/metrics` is 405.
//!
//! It answers while the appliance is sealed (the seal is one of the
//! metrics) and takes no credentials: bind it to loopback or a monitoring
//! network. Nothing it serves is secret.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::state::State;
use super::{PREFIX, RequestMetrics};
use crate::audit::AuditTrail;
use crate::server::blocking::BlockingPool;
use crate::server::http::{serve_connection, serve_with, simple_response};
use crate::server::seal::Seal;

/// The path metrics are served at.
const PATH: &str = "/metrics";

/// The OpenMetrics text format's media type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a scrape reads.
pub(crate) struct Exporter {
    /// The request metrics, and what else is kept in memory.
    registry: Registry,
    /// The appliance.
    seal: Arc<Seal>,
    /// Where its state is read.
    pool: BlockingPool,
    /// The audit trail, whose health is reported.
    trail: AuditTrail,
    /// The state's exposition at its last reading, and when that reading
    /// started. Scrapes read the state one at a time, and those that waited
    /// for a reading begun after they arrived share it, so a flood of
    /// scrapes cannot crowd the HSM and store work of requests out of the
    /// blocking pool, while a scrape never gets a state older than itself.
    state: tokio::sync::Mutex<Option<(Instant, String)>>,
}

impl Exporter {
    /// Exports `requests` and the state of the appliance behind `seal`,
    /// read on `pool`, with `trail`'s health.
    pub(crate) fn new(
        requests: &RequestMetrics,
        seal: Arc<Seal>,
        pool: BlockingPool,
        trail: AuditTrail,
    ) -> Exporter {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register(
            "build",
            "The running version",
            prometheus_client::metrics::info::Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        requests.register(&mut registry);
        Exporter {
            registry,
            seal,
            pool,
            trail,
            state: tokio::sync::Mutex::new(None),
        }
    }

    /// The whole exposition now.
    pub(crate) async fn scrape(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        encode_registry(&mut text, &self.registry)?;
        {
            let arrived = Instant::now();
            let mut last = self.state.lock().await;
            match &*last {
                Some((started, state)) if *started >= arrived => text.push_str(state),
                _ => {
                    let started = Instant::now();
                    let state = State::read(&self.seal, &self.pool, &self.trail).await;
                    let mut now = Registry::with_prefix(PREFIX);
                    now.register_collector(Box::new(state));
                    let mut state = String::with_capacity(8 * 1024);
                    encode_registry(&mut state, &now)?;
                    text.push_str(&state);
                    *last = Some((started, state));
                }
            }
        }
        encode_eof(&mut text)?;
        Ok(text)
    }
}

/// Serves `listener` until `stop` turns true (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    stop: watch::Receiver<bool>,
) {
    serve_with(listener, stop, move |stream, stop| {
        let exporter = Arc::clone(&exporter);
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let exporter = Arc::clone(&exporter);
            async move {
                Ok::<_, Infallible>(
                    respond(&exporter, request.method(), request.uri().path()).await,
                )
            }
        });
        serve_connection(stream, service, stop)
    })
    .await;
    tracing::debug!("metrics server stopped");
}

/// The response to `method path`.
async fn respond(exporter: &Exporter, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if path != PATH {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found; metrics are at /metrics\n"),
        )
    } else if method != Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"method not allowed: use GET\n"),
        )
    } else {
        match exporter.scrape().await {
            Ok(text) => (StatusCode::OK, OPENMETRICS, Bytes::from(text)),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                Bytes::from_static(b"the metrics could not be encoded\n"),
            ),
        }
    };
    tracing::debug!(%method, path, status = status.as_u16(), "metrics request");
    simple_response(status, content_type, body)
}
