//! The request size limit's answer: `INVALID_ARGUMENT`, naming the limit.
//!
//! Each service refuses messages larger than `limits.max_request_bytes`
//! (`max_decoding_message_size`). tonic checks the length prefix before it
//! reads the message, so nothing of an oversized request is processed or
//! stored, but it answers `OUT_OF_RANGE` with a message about its decoder.
//! [`SizeLimited`] wraps a service and rewrites exactly that answer into the
//! `INVALID_ARGUMENT` that every other bad input gets, with a message for the
//! caller. Unary calls carry such an error in the response headers
//! ("trailers-only"), which is where it is rewritten; all our RPCs are unary.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

/// How tonic's decoder begins the message it fails an oversized request with.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// A gRPC service whose oversized-request errors are `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub(crate) struct SizeLimited<S> {
    /// The wrapped service (its own decoding limit already set).
    inner: S,
    /// The limit, for the message.
    limit: usize,
}

impl<S> SizeLimited<S> {
    /// Wraps `inner`, whose `max_decoding_message_size` is `limit`.
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        SizeLimited { inner, limit }
    }
}

impl<S: NamedService> NamedService for SizeLimited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for SizeLimited<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Response<Body>, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let limit = self.limit;
        let response = self.inner.call(request);
        Box::pin(async move { Ok(rewrite(response.await?, limit)) })
    }
}

/// Turns tonic's oversized-request error into ours; leaves anything else alone.
fn rewrite(response: Response<Body>, limit: usize) -> Response<Body> {
    match Status::from_header_map(response.headers()) {
        Some(status)
            if status.code() == Code::OutOfRange
                && status.message().starts_with(TONIC_TOO_LARGE) =>
        {
            tracing::info!(limit, "refused an oversized request");
            Status::invalid_argument(too_large(status.message(), limit)).into_http()
        }
        _ => response,
    }
}

/// The message for an oversized request, with its size when tonic gave it.
fn too_large(tonic_message: &str, limit: usize) -> String {
    let found = tonic_message
        .split_once("found ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(n, _)| n.parse::<usize>().ok());
    match found {
        Some(n) => format!(
            "invalid request: the request is {n} bytes; the limit is {limit} bytes (limits.max_request_bytes)"
        ),
        None => format!(
            "invalid request: the request is larger than the limit of {limit} bytes (limits.max_request_bytes)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_decoder_size_error_is_rewritten() {
        let tonic_error = Status::out_of_range(
            "Error, decoded message length too large: found 300000 bytes, the limit is: 1024 bytes",
        )
        .into_http::<Body>();
        let rewritten =
            Status::from_header_map(rewrite(tonic_error, 1024).headers()).expect("a status");
        assert_eq!(rewritten.code(), Code::InvalidArgument);
        assert_eq!(
            rewritten.message(),
            "invalid request: the request is 300000 bytes; the limit is 1024 bytes (limits.max_request_bytes)"
        );

        let other = Status::out_of_range("page out of range").into_http::<Body>();
        let kept = Status::from_header_map(rewrite(other, 1024).headers()).expect("a status");
        assert_eq!(kept.code(), Code::OutOfRange);

        let ok = Response::new(Body::default());
        assert!(Status::from_header_map(rewrite(ok, 1024).headers()).is_none());
    }

    #[test]
    fn the_message_survives_a_changed_tonic_wording() {
        assert!(too_large("Error, decoded message length too large", 10).contains("limit of 10"));
    }
}
