//! One audit record per gRPC request, written before the caller learns the
//! outcome.
//!
//! [`Audited`] wraps each service. It admits the request or refuses it
//! ([`super::access`]), names the caller (the client certificate's
//! identity, or `anonymous`), the source address and the
//! operation (the RPC's path), lets the handler name the target
//! ([`AuditTarget::note`]: profile, serial, key name — never a secret), and
//! records the outcome (the final gRPC status) and the latency:
//!
//! - an error answered in the response headers (a "trailers-only"
//!   response) is recorded before the response is returned;
//! - any other response is recorded when its body ends, before its last
//!   message and its trailers (which carry the status) are sent, so a unary
//!   answer is released only once recorded; a stream the caller abandons is
//!   recorded as `CANCELLED`.
//!
//! If the record cannot be written within the trail's bound, the caller
//! gets `UNAVAILABLE` instead of the outcome: an unaudited success is never
//! reported as a success.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body as HttpBody, Frame};
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::{BoxFuture, Bytes, Service};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Code, Status};

use super::access::{AccessControl, PeerCertificates};
use super::status::to_status;
use crate::audit::{AuditEntry, AuditTrail, AuditUnavailable};

/// Longest a field grows by [`AuditTarget::append`] (a record must stay
/// under the 64 KiB `audit verify` reads).
pub(crate) const MAX_APPENDED: usize = 32 * 1024;

/// The target of a request, filled in by its handler.
#[derive(Clone, Default, Debug)]
pub(crate) struct AuditTarget(Arc<Mutex<BTreeMap<String, String>>>);

impl AuditTarget {
    /// The target of `request`'s audit record (a detached one for a request
    /// that did not come through [`Audited`]).
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> AuditTarget {
        request
            .extensions()
            .get::<AuditTarget>()
            .cloned()
            .unwrap_or_default()
    }

    /// Names what the request acts on (`field` is e.g. `key`, `profile`,
    /// `serial`). Never pass a secret.
    pub(crate) fn note(&self, field: &str, value: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(field.to_string(), value.into());
    }

    /// Adds `values` (comma-separated) to what `field` names already: a
    /// stream's digests, message by message. A field stops growing at
    /// [`MAX_APPENDED`] bytes, so a long stream's record stays readable;
    /// `<field>_omitted` then counts the messages left out.
    pub(crate) fn append(&self, field: &str, values: &str) {
        if values.is_empty() {
            return;
        }
        let mut fields = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = fields.entry(field.to_string()).or_default();
        if entry.len() + values.len() > MAX_APPENDED {
            let omitted = format!("{field}_omitted");
            let count = fields
                .get(&omitted)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            fields.insert(omitted, (count + 1).to_string());
            return;
        }
        if !entry.is_empty() {
            entry.push(',');
        }
        entry.push_str(values);
    }
}

/// A gRPC service whose every request is admitted by [`AccessControl`] and
/// audited, refused ones included.
#[derive(Clone)]
pub(crate) struct Audited<S> {
    inner: S,
    trail: AuditTrail,
    access: Arc<AccessControl>,
}

impl<S> Audited<S> {
    /// Wraps `inner`, admitting requests by `access` and recording them to
    /// `trail`.
    pub(crate) fn new(inner: S, trail: AuditTrail, access: Arc<AccessControl>) -> Self {
        Audited {
            inner,
            trail,
            access,
        }
    }
}

impl<S: NamedService> NamedService for Audited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Audited<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Response<Body>, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let target = AuditTarget::default();
        request.extensions_mut().insert(target.clone());
        let caller = self.access.caller(client_certificates(&request).as_ref());
        let pending = Pending {
            trail: self.trail.clone(),
            caller: caller.identity.to_string(),
            source: source(&request),
            operation: request.uri().path().trim_start_matches('/').to_string(),
            target,
            started,
        };
        // The service that was made ready goes with this call; a clone
        // stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let access = Arc::clone(&self.access);
        Box::pin(async move {
            match access.admit(&caller, request.uri().path()).await {
                Ok(admission) => {
                    request.extensions_mut().insert(admission);
                }
                Err(failure) => {
                    let status = to_status(&failure);
                    return Ok(match pending.record(&status).await {
                        Ok(()) => status.into_http(),
                        Err(e) => unavailable(&e).into_http(),
                    });
                }
            }
            let response = inner.call(request).await?;
            if let Some(status) = Status::from_header_map(response.headers()) {
                // Trailers-only: the outcome is known now.
                return Ok(match pending.record(&status).await {
                    Ok(()) => response,
                    Err(e) => unavailable(&e).into_http(),
                });
            }
            let (parts, body) = response.into_parts();
            let body = AuditedBody::new(body, pending);
            Ok(Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// What is known of a request until its outcome is.
struct Pending {
    trail: AuditTrail,
    caller: String,
    source: String,
    operation: String,
    target: AuditTarget,
    started: Instant,
}

impl Pending {
    /// The record of the request, which ended with `status`.
    fn into_entry(self, status: &Status) -> (AuditTrail, AuditEntry) {
        let mut target =
            std::mem::take(&mut *self.target.0.lock().unwrap_or_else(|p| p.into_inner()));
        bound_target(&mut target);
        let entry = AuditEntry {
            caller: self.caller,
            source: self.source,
            operation: self.operation,
            target,
            outcome: outcome(status.code()),
            detail: (status.code() != Code::Ok).then(|| status.message().to_string()),
            latency_us: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        (self.trail, entry)
    }

    async fn record(self, status: &Status) -> Result<(), AuditUnavailable> {
        let (trail, entry) = self.into_entry(status);
        trail.record(entry).await.map(drop)
    }
}

/// A response body that records the request when it ends, before the
/// trailers go out. The last message is held back with the trailers, so a
/// unary answer goes out in one piece once recorded, and never if the record
/// cannot be written; a stream's earlier messages are not delayed.
struct AuditedBody {
    inner: Body,
    /// Not yet recorded.
    pending: Option<Pending>,
    /// A message held back until the next frame shows whether it is the last.
    held: Option<Frame<Bytes>>,
    /// The record being written, and the trailers held back meanwhile.
    writing: Option<(Recording, HeaderMap)>,
    /// Frames ready to go out once the record is written.
    out: VecDeque<Frame<Bytes>>,
}

/// A record being written.
type Recording = Pin<Box<dyn Future<Output = Result<u64, AuditUnavailable>> + Send>>;

impl AuditedBody {
    fn new(inner: Body, pending: Pending) -> Self {
        AuditedBody {
            inner,
            pending: Some(pending),
            held: None,
            writing: None,
            out: VecDeque::new(),
        }
    }

    /// Starts writing the record for the final `trailers`.
    fn start(&mut self, trailers: HeaderMap) {
        let status = Status::from_header_map(&trailers).unwrap_or_else(|| Status::ok(""));
        let recording: Recording = match self.pending.take() {
            Some(pending) => {
                let (trail, entry) = pending.into_entry(&status);
                Box::pin(async move { trail.record(entry).await })
            }
            None => Box::pin(async { Ok(0) }),
        };
        self.writing = Some((recording, trailers));
    }
}

impl HttpBody for AuditedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((recording, _)) = &mut this.writing {
                let written = std::task::ready!(recording.as_mut().poll(cx));
                let Some((_, trailers)) = this.writing.take() else {
                    return Poll::Ready(None);
                };
                match written {
                    Ok(_) => {
                        this.out.extend(this.held.take());
                        this.out.push_back(Frame::trailers(trailers));
                    }
                    Err(e) => {
                        // Nothing of an unaudited answer goes out.
                        this.held = None;
                        let mut trailers = HeaderMap::new();
                        let _ = unavailable(&e).add_header(&mut trailers);
                        this.out.push_back(Frame::trailers(trailers));
                    }
                }
            }
            if let Some(frame) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.pending.is_none() {
                return Pin::new(&mut this.inner).poll_frame(cx);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                    this.start(frame.into_trailers().unwrap_or_default());
                }
                Poll::Ready(Some(Ok(frame))) => {
                    // Send the previous message on; hold this one.
                    if let Some(previous) = this.held.replace(frame) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Poll::Ready(None) => {
                    // Ended without trailers: report the outcome as OK in
                    // trailers of our own, once recorded.
                    let mut trailers = HeaderMap::new();
                    let _ = Status::ok("").add_header(&mut trailers);
                    this.start(trailers);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => {
                    // More is coming later (a stream): do not delay this.
                    return match this.held.take() {
                        Some(frame) => Poll::Ready(Some(Ok(frame))),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none()
            && self.writing.is_none()
            && self.held.is_none()
            && self.out.is_empty()
            && self.inner.is_end_stream()
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        // The caller went away before the end: still one record.
        if let Some(pending) = self.pending.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (trail, entry) = pending.into_entry(&Status::cancelled("the caller went away"));
            runtime.spawn(async move {
                if let Err(e) = trail.record(entry).await {
                    tracing::error!(error = %e, "cannot audit an abandoned request");
                }
            });
        }
    }
}

/// Longest a record's target may be in all: records stay well under the
/// 64 KiB line `audit verify` and the trail's reopening read.
const MAX_TARGET: usize = 48 * 1024;

/// Drops the longest fields of `target` until it fits [`MAX_TARGET`],
/// noting each as `<field>_omitted`.
fn bound_target(target: &mut BTreeMap<String, String>) {
    let size =
        |t: &BTreeMap<String, String>| t.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    while size(target) > MAX_TARGET {
        let Some(longest) = target
            .iter()
            .max_by_key(|(_, v)| v.len())
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        target.remove(&longest);
        target.insert(format!("{longest}_omitted"), "too long".into());
    }
}

/// The status a request gets when its record cannot be written.
fn unavailable(e: &AuditUnavailable) -> Status {
    Status::unavailable(format!("{e}; the request was not confirmed"))
}

/// `OK`, `INVALID_ARGUMENT`, … : the status code's name in the protocol.
fn outcome(code: Code) -> String {
    code_name(code).to_string()
}

/// The gRPC status code a response states in `headers` (its headers when
/// trailers-only, else its trailers), as [`Status::from_header_map`] reads
/// it, without decoding the message.
pub(super) fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The name of `code` in the protocol: `OK`, `INVALID_ARGUMENT`, …
pub(super) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn connect_info<B>(request: &Request<B>) -> Option<&TlsConnectInfo<TcpConnectInfo>> {
    request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()
}

/// The certificates the caller presented, leaf first, if any.
fn client_certificates<B>(request: &Request<B>) -> Option<PeerCertificates> {
    connect_info(request).and_then(|info| info.peer_certs())
}

/// The peer's address, or `unknown`.
fn source<B>(request: &Request<B>) -> String {
    connect_info(request)
        .and_then(|info| info.get_ref().remote_addr())
        .map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_fields_stop_growing_and_count_what_they_leave_out() {
        let target = AuditTarget::default();
        target.append("plaintext", "");
        target.append("plaintext", "a");
        target.append("plaintext", "b,c");
        let long = "x".repeat(MAX_APPENDED);
        target.append("plaintext", &long);
        target.append("plaintext", &long);
        let fields = target.0.lock().expect("fields").clone();
        assert_eq!(fields["plaintext"], "a,b,c");
        assert_eq!(fields["plaintext_omitted"], "2");
    }

    #[test]
    fn a_target_too_long_for_a_record_loses_its_longest_fields() {
        let mut target = BTreeMap::new();
        target.insert("key".to_string(), "orders".to_string());
        target.insert("plaintext_hmac".to_string(), "x".repeat(MAX_TARGET));
        bound_target(&mut target);
        assert_eq!(target["key"], "orders");
        assert!(!target.contains_key("plaintext_hmac"));
        assert_eq!(target["plaintext_hmac_omitted"], "too long");
    }

    #[test]
    fn outcomes_are_protocol_names() {
        assert_eq!(outcome(Code::Ok), "OK");
        assert_eq!(outcome(Code::PermissionDenied), "PERMISSION_DENIED");
        assert_eq!(outcome(Code::Unavailable), "UNAVAILABLE");
    }

    #[test]
    fn the_code_is_read_as_a_status_would_be() {
        for status in [
            Status::ok(""),
            Status::not_found("no such key"),
            Status::unavailable("the audit trail is down"),
        ] {
            let mut headers = HeaderMap::new();
            status.add_header(&mut headers).expect("status headers");
            let read = Status::from_header_map(&headers).map(|s| s.code());
            assert_eq!(grpc_code(&headers), read);
            assert_eq!(read, Some(status.code()));
        }
        assert_eq!(grpc_code(&HeaderMap::new()), None);
    }
}
