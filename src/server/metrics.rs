//! Prometheus metrics: what the appliance is asked and how it answers, and
//! its state, served as OpenMetrics text at `GET /metrics` on their own
//! listener (`[metrics] listen`).
//!
//! - [`Metered`] wraps each gRPC service (outside [`Audited`], so it sees
//!   the status the caller gets, an audit failure's `UNAVAILABLE`
//!   included) and counts every call once by service, method and final
//!   status code, with its latency. The status is read where the audit
//!   layer reads it: from the response headers of a trailers-only answer,
//!   else from the trailers when the body ends; a body that ends without
//!   trailers is `OK`, a call abandoned before its end `CANCELLED`. A
//!   streaming call's latency runs until its stream ends.
//! - Methods are known ahead from the services' descriptor sets, so the
//!   labels are bounded (a path no descriptor names counts as method
//!   `unknown`) and a call finds its counters by a look-up in a map built at
//!   start, with no allocation; the counter of each status code and the
//!   latency histogram are created on a method's first call with it.
//! - [`state`] reads the appliance's state on each scrape (seal, HSM pool,
//!   inventory, CA expiry, transit rotation, audit trail) through the
//!   facts Sys.Status reports; [`endpoint`] serves the text.
//!
//! [`Audited`]: super::audit::Audited

pub(crate) mod endpoint;
mod state;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use prost::Message as _;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{Bytes, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::audit::{code_name, grpc_code};

/// The prefix of every metric's name.
pub(crate) const PREFIX: &str = "strongroom";

/// Upper bounds of the latency histogram's buckets, in seconds: from a
/// transit call served from memory (tens of microseconds) to an issuance
/// waiting on a busy HSM.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The method label of a path that names no known method.
const UNKNOWN_METHOD: &str = "unknown";

/// Status codes, 0 (`OK`) to 16 (`UNAUTHENTICATED`).
const CODES: usize = 17;

/// The labels of a call's counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// The gRPC service's full name, e.g. `strongroom.v1.Transit`.
    service: String,
    /// The method, e.g. `Encrypt`.
    method: String,
    /// The final status code's name, e.g. `OK`.
    code: &'static str,
}

/// The labels of a method's latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    /// The gRPC service's full name.
    service: String,
    /// The method.
    method: String,
}

/// A latency histogram with [`LATENCY_BUCKETS`].
fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The request metrics every [`Metered`] service records into.
#[derive(Clone, Debug)]
pub(crate) struct RequestMetrics {
    /// Calls by service, method and final status code.
    requests: Family<CallLabels, Counter>,
    /// Latency by service and method.
    durations: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl RequestMetrics {
    /// Empty request metrics.
    pub(crate) fn new() -> Self {
        RequestMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(latency_histogram),
        }
    }

    /// Registers the metrics in `registry` (whose prefix is [`PREFIX`]).
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "grpc_requests",
            "gRPC calls by service, method and final status code",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "grpc_request_duration",
            "Latency of gRPC calls, from the request to the end of the response (a stream's \
             end)",
            Unit::Seconds,
            self.durations.clone(),
        );
    }

    /// The look-up table of `service`'s methods.
    fn table(&self, service: &str) -> MethodTable {
        let method = |name: &str| {
            Arc::new(MethodMetrics {
                labels: MethodLabels {
                    service: service.to_string(),
                    method: name.to_string(),
                },
                requests: self.requests.clone(),
                durations: self.durations.clone(),
                by_code: std::array::from_fn(|_| OnceLock::new()),
                duration: OnceLock::new(),
            })
        };
        let by_path = known_methods(service)
            .into_iter()
            .map(|name| (format!("/{service}/{name}").into_boxed_str(), method(&name)))
            .collect();
        MethodTable {
            by_path,
            unknown: method(UNKNOWN_METHOD),
        }
    }
}

/// One service's methods by path (`/strongroom.v1.Transit/Encrypt`).
#[derive(Debug)]
struct MethodTable {
    /// The methods its descriptor names.
    by_path: HashMap<Box<str>, Arc<MethodMetrics>>,
    /// Any other path.
    unknown: Arc<MethodMetrics>,
}

impl MethodTable {
    /// The metrics of the method at `path`.
    fn get(&self, path: &str) -> &Arc<MethodMetrics> {
        self.by_path.get(path).unwrap_or(&self.unknown)
    }
}

/// One method's metrics, resolved once.
#[derive(Debug)]
struct MethodMetrics {
    /// Its service and name.
    labels: MethodLabels,
    /// The family its counters live in.
    requests: Family<CallLabels, Counter>,
    /// The family its histogram lives in.
    durations: Family<MethodLabels, Histogram, fn() -> Histogram>,
    /// Its counter for each status code, from the first call ending so.
    by_code: [OnceLock<Counter>; CODES],
    /// Its latency histogram, from its first call.
    duration: OnceLock<Histogram>,
}

impl MethodMetrics {
    /// Counts a call that ended with `code` after `elapsed`.
    fn record(&self, code: Code, elapsed: std::time::Duration) {
        let index = usize::try_from(i32::from(code)).unwrap_or(0) % CODES;
        self.by_code[index]
            .get_or_init(|| {
                self.requests.get_or_create_owned(&CallLabels {
                    service: self.labels.service.clone(),
                    method: self.labels.method.clone(),
                    code: code_name(code),
                })
            })
            .inc();
        self.duration
            .get_or_init(|| self.durations.get_or_create_owned(&self.labels))
            .observe(elapsed.as_secs_f64());
    }
}

/// The methods of `service` (its full name) in the descriptor sets of the
/// services we serve; none if no set describes it.
fn known_methods(service: &str) -> Vec<String> {
    let sets = [
        strongroom_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    for encoded in sets {
        let set = match prost_types::FileDescriptorSet::decode(encoded) {
            Ok(set) => set,
            Err(e) => {
                tracing::warn!(error = %e, "a descriptor set cannot be read; its methods are counted as unknown");
                continue;
            }
        };
        for file in set.file {
            for described in &file.service {
                if described.name.as_deref().is_some_and(|name| {
                    service
                        .strip_prefix(file.package())
                        .and_then(|s| s.strip_prefix('.'))
                        == Some(name)
                }) {
                    return described
                        .method
                        .iter()
                        .filter_map(|m| m.name.clone())
                        .collect();
                }
            }
        }
    }
    Vec::new()
}

/// A gRPC service whose calls are counted and timed (or passed through
/// untouched when metrics are off). Its inner service's future must be
/// `Unpin` (the audit layer's is boxed already), so that this layer boxes
/// nothing of its own but the body of a response whose status comes later.
#[derive(Clone)]
pub(crate) struct Metered<S> {
    inner: S,
    /// The service's methods; `None` when metrics are off.
    table: Option<Arc<MethodTable>>,
}

impl<S: NamedService> Metered<S> {
    /// Wraps `inner`, recording into `metrics` (`None`: metrics are off).
    pub(crate) fn new(inner: S, metrics: Option<&RequestMetrics>) -> Self {
        Metered {
            inner,
            table: metrics.map(|m| Arc::new(m.table(S::NAME))),
        }
    }
}

impl<S: NamedService> NamedService for Metered<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Metered<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = self.table.as_ref().map(|table| Call {
            method: Arc::clone(table.get(request.uri().path())),
            started: Instant::now(),
        });
        MeteredFuture {
            inner: self.inner.call(request),
            call,
        }
    }
}

/// A call being timed.
struct Call {
    /// Its method's metrics.
    method: Arc<MethodMetrics>,
    /// When it came in.
    started: Instant,
}

impl Call {
    /// Counts the call, which ended with `code`.
    fn finish(self, code: Code) {
        self.method.record(code, self.started.elapsed());
    }
}

/// The response of a [`Metered`] service: counted now if it carries its
/// status in its headers, else when its body ends.
pub(crate) struct MeteredFuture<F> {
    inner: F,
    /// Not yet counted.
    call: Option<Call>,
}

impl<F> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>> + Unpin,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Ok(response) = std::task::ready!(Pin::new(&mut this.inner).poll(cx));
        let Some(call) = this.call.take() else {
            return Poll::Ready(Ok(response));
        };
        if let Some(code) = grpc_code(response.headers()) {
            // Trailers-only: the outcome is known now.
            call.finish(code);
            return Poll::Ready(Ok(response));
        }
        let (parts, body) = response.into_parts();
        let body = MeteredBody {
            inner: body,
            call: Some(call),
        };
        Poll::Ready(Ok(Response::from_parts(parts, Body::new(body))))
    }
}

impl<F> Drop for MeteredFuture<F> {
    fn drop(&mut self) {
        // Dropped before the response: the caller went away.
        if let Some(call) = self.call.take() {
            call.finish(Code::Cancelled);
        }
    }
}

/// A response body that counts its call when it ends.
struct MeteredBody {
    inner: Body,
    /// Not yet counted.
    call: Option<Call>,
}

impl MeteredBody {
    /// Counts the call, which ended with `code`, unless it was counted.
    fn finish(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl HttpBody for MeteredBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.finish(grpc_code(trailers).unwrap_or(Code::Ok));
                }
            }
            Poll::Ready(Some(Err(status))) => this.finish(status.code()),
            Poll::Ready(None) => this.finish(Code::Ok),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // A body that said it had ended may never be polled to its end.
        let code = if self.inner.is_end_stream() {
            Code::Ok
        } else {
            Code::Cancelled
        };
        self.finish(code);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Ready;

    use http_body_util::BodyExt as _;
    use prometheus_client::encoding::text::encode;
    use tonic::codegen::http::HeaderMap;

    use super::*;

    /// A service answering every call with `answer`'s status, trailers-only
    /// or after a message.
    #[derive(Clone)]
    struct Answering {
        answer: fn() -> Status,
        trailers_only: bool,
    }

    impl NamedService for Answering {
        const NAME: &'static str = "strongroom.v1.Transit";
    }

    impl Service<Request<Body>> for Answering {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = Ready<Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<Body>) -> Self::Future {
            let status = (self.answer)();
            if self.trailers_only {
                return std::future::ready(Ok(status.into_http()));
            }
            let mut trailers = HeaderMap::new();
            status.add_header(&mut trailers).expect("status headers");
            let frames = [
                Ok::<_, Status>(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
                Ok(Frame::trailers(trailers)),
            ];
            let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
            std::future::ready(Ok(Response::new(Body::new(body))))
        }
    }

    fn request(path: &str) -> Request<Body> {
        Request::builder()
            .uri(format!("http://localhost{path}"))
            .body(Body::empty())
            .expect("request")
    }

    /// Calls `service` at `path` and reads the response to its end.
    async fn call(service: &mut Metered<Answering>, path: &str) {
        let Ok(response) = service.call(request(path)).await;
        let _ = response.into_body().collect().await;
    }

    /// The exposition of `metrics`.
    fn exposition(metrics: &RequestMetrics) -> String {
        let mut registry = Registry::with_prefix(PREFIX);
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        text
    }

    fn metered(
        metrics: &RequestMetrics,
        answer: fn() -> Status,
        trailers_only: bool,
    ) -> Metered<Answering> {
        Metered::new(
            Answering {
                answer,
                trailers_only,
            },
            Some(metrics),
        )
    }

    #[test]
    fn methods_are_known_from_the_descriptors_of_every_service_served() {
        let transit = known_methods("strongroom.v1.Transit");
        assert!(transit.iter().any(|m| m == "Encrypt"), "{transit:?}");
        assert!(
            known_methods("strongroom.v1.Ca")
                .iter()
                .any(|m| m == "IssueFromCsr")
        );
        assert_eq!(
            known_methods("strongroom.v1.Sys"),
            [
                "Status",
                "DigestValue",
                "CreateBootstrapToken",
                "ListBootstrapTokens",
                "RevokeBootstrapToken"
            ]
        );
        assert!(
            known_methods("strongroom.v1.Seal")
                .iter()
                .any(|m| m == "Unseal")
        );
        assert!(
            known_methods("grpc.health.v1.Health")
                .iter()
                .any(|m| m == "Check")
        );
        for reflection in [
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert_eq!(known_methods(reflection), ["ServerReflectionInfo"]);
        }
        // A service is matched by its whole name.
        assert!(known_methods("v1.Transit").is_empty());
        assert!(known_methods("strongroom.v1.Trans").is_empty());
    }

    #[tokio::test]
    async fn an_ok_and_an_error_response_are_counted_by_their_codes() {
        let metrics = RequestMetrics::new();
        let mut ok = metered(&metrics, || Status::ok(""), false);
        let mut missing = metered(&metrics, || Status::not_found("no key \"k\""), true);
        let mut late_error = metered(&metrics, || Status::permission_denied("no"), false);
        call(&mut ok, "/strongroom.v1.Transit/Encrypt").await;
        call(&mut ok, "/strongroom.v1.Transit/Encrypt").await;
        call(&mut missing, "/strongroom.v1.Transit/Decrypt").await;
        call(&mut late_error, "/strongroom.v1.Transit/Encrypt").await;
        let text = exposition(&metrics);
        for line in [
            "strongroom_grpc_requests_total{service=\"strongroom.v1.Transit\",method=\"Encrypt\",code=\"OK\"} 2",
            "strongroom_grpc_requests_total{service=\"strongroom.v1.Transit\",method=\"Decrypt\",code=\"NOT_FOUND\"} 1",
            "strongroom_grpc_requests_total{service=\"strongroom.v1.Transit\",method=\"Encrypt\",code=\"PERMISSION_DENIED\"} 1",
            "strongroom_grpc_request_duration_seconds_count{service=\"strongroom.v1.Transit\",method=\"Encrypt\"} 3",
            "strongroom_grpc_request_duration_seconds_count{service=\"strongroom.v1.Transit\",method=\"Decrypt\"} 1",
            "# TYPE strongroom_grpc_request_duration_seconds histogram",
            "# UNIT strongroom_grpc_request_duration_seconds seconds",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // Only what was called appears: no series for other methods or codes.
        assert_eq!(
            text.matches("strongroom_grpc_requests_total{").count(),
            3,
            "{text}"
        );
        // The message never becomes a label.
        assert!(!text.contains("no key"), "{text}");
    }

    #[tokio::test]
    async fn paths_no_descriptor_names_share_one_label() {
        let metrics = RequestMetrics::new();
        let mut service = metered(&metrics, || Status::unimplemented(""), true);
        call(&mut service, "/strongroom.v1.Transit/Nope").await;
        call(&mut service, "/strongroom.v1.Transit/Other").await;
        let text = exposition(&metrics);
        let line = "strongroom_grpc_requests_total{service=\"strongroom.v1.Transit\",method=\"unknown\",code=\"UNIMPLEMENTED\"} 2";
        assert!(text.lines().any(|l| l == line), "{text}");
        assert!(!text.contains("Nope") && !text.contains("Other"), "{text}");
    }

    #[tokio::test]
    async fn an_abandoned_call_is_cancelled_and_counted_once() {
        let metrics = RequestMetrics::new();
        let mut service = metered(&metrics, || Status::ok(""), false);
        // The response is dropped before its body ends.
        let Ok(response) = service
            .call(request("/strongroom.v1.Transit/Encrypt"))
            .await;
        drop(response);
        // And before the response came.
        drop(service.call(request("/strongroom.v1.Transit/Encrypt")));
        let text = exposition(&metrics);
        let line = "strongroom_grpc_requests_total{service=\"strongroom.v1.Transit\",method=\"Encrypt\",code=\"CANCELLED\"} 2";
        assert!(text.lines().any(|l| l == line), "{text}");
        assert!(!text.contains("code=\"OK\""), "{text}");
    }

    #[tokio::test]
    async fn without_metrics_the_service_is_passed_through() {
        let mut service = Metered::new(
            Answering {
                answer: || Status::ok(""),
                trailers_only: false,
            },
            None,
        );
        let Ok(response) = service
            .call(request("/strongroom.v1.Transit/Encrypt"))
            .await;
        let body = response.into_body().collect().await.expect("body");
        let trailers = body.trailers().expect("trailers");
        assert_eq!(grpc_code(trailers), Some(Code::Ok));
    }
}
