//! The OCSP responder over HTTP (RFC 6960 appendix A, RFC 5019 caching).
//!
//! - `POST {path}` with an `application/ocsp-request` body, or
//!   `GET {path}/{base64}` with the DER request in standard base64
//!   (percent-encoded or not: `+`, `/` and `=` are all accepted).
//! - A request without a nonce for one certificate of ours is answered from
//!   the response cache; a miss reads the inventory, signs a response
//!   ([`OcspResponder::presign`]) and caches it until half of its validity
//!   has passed (`unknown` answers are never cached, and the cache holds at
//!   most [`MAX_CACHED`] responses). The cached path touches neither the HSM nor the store, and
//!   carries RFC 5019 caching headers (`Cache-Control: max-age`,
//!   `Last-Modified`, `Expires`, `ETag`; `If-None-Match` gives 304).
//! - Anything else (a nonce, several CertIDs) is signed live, on the
//!   blocking pool.
//! - A revocation calls [`Ocsp::forget`], so the next request for that
//!   certificate is answered from the inventory: OCSP says revoked as soon
//!   as the revocation is acknowledged.
//!
//! Bodies over [`MAX_OCSP_REQUEST_LEN`] and requests that do not parse get
//! HTTP 400 with a `malformedRequest` OCSP response; a request naming no
//! certificate of ours gets `unauthorized`; a failure of ours gets
//! `internalError` (HTTP 500) and a warning in the log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use base64ct::{Base64, Encoding};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use strongroom_ca::{
    Authority, CaError, CertIdHash, CertState, CertStatus, MAX_OCSP_REQUEST_LEN, OcspErrorStatus,
    OcspRequest, OcspResponder, OcspTimes, Serial, error_response,
};

use super::blocking::BlockingPool;
use super::http::{Cacheable, cacheable_response};
use crate::appliance::Appliance;

/// How long a client may take to send a POST body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most responses cached; beyond it, responses are signed but not kept.
const MAX_CACHED: usize = 2_000_000;

/// A signed response in the cache.
#[derive(Debug)]
struct Cached {
    der: Bytes,
    /// The quoted `ETag`.
    etag: String,
    this_update: i64,
    next_update: i64,
}

/// The responder, its cache, and where it listens.
pub(crate) struct Ocsp {
    responder: OcspResponder,
    /// The URL path of the responder (`/ocsp`), without a trailing slash.
    path: String,
    /// How long a response is valid (nextUpdate − thisUpdate).
    validity: Duration,
    cache: RwLock<HashMap<(Serial, CertIdHash), Arc<Cached>>>,
    /// Bumped by every [`Ocsp::forget`]: a response signed from a state read
    /// before a revocation is not cached after it.
    generation: AtomicU64,
}

impl std::fmt::Debug for Ocsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ocsp")
            .field("path", &self.path)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

impl Ocsp {
    /// A responder at the path of `url` (an absolute http URL), signing with
    /// `responder`, each response valid for `validity`.
    pub(crate) fn new(
        url: &str,
        responder: OcspResponder,
        validity: Duration,
    ) -> Result<Ocsp, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| format!("OCSP URL {url} is not an http URL"))?;
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        Ok(Ocsp {
            responder,
            path: path.trim_end_matches('/').to_string(),
            validity,
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        })
    }

    /// Whether `path` is the responder's (POST) or under it (GET).
    pub(crate) fn serves(&self, path: &str) -> bool {
        path == self.path
            || (self.path.is_empty() && path == "/")
            || path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Drops the cached responses of `serial`, after its status changed.
    pub(crate) fn forget(&self, serial: &Serial) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::SeqCst);
        for hash in CertIdHash::ALL {
            cache.remove(&(serial.clone(), hash));
        }
    }

    /// Answers one HTTP request to the responder.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        appliance: Arc<Appliance>,
        pool: BlockingPool,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let der = match parts.method {
            Method::POST
                if parts.uri.path() == self.path
                    || (self.path.is_empty() && parts.uri.path() == "/") =>
            {
                let read = Limited::new(body, MAX_OCSP_REQUEST_LEN).collect();
                match tokio::time::timeout(BODY_TIMEOUT, read).await {
                    Ok(Ok(collected)) => collected.to_bytes(),
                    Ok(Err(_)) | Err(_) => return malformed(),
                }
            }
            Method::GET => {
                let encoded = parts
                    .uri
                    .path()
                    .strip_prefix(self.path.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    .unwrap_or_default();
                match decode_get(encoded) {
                    Some(der) => Bytes::from(der),
                    None => return malformed(),
                }
            }
            _ => {
                let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n");
                response
                    .headers_mut()
                    .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, POST"));
                return response;
            }
        };
        self.answer(&der, &parts.headers, appliance, pool).await
    }

    /// The response to a DER request.
    async fn answer(
        self: &Arc<Self>,
        der: &[u8],
        headers: &HeaderMap,
        appliance: Arc<Appliance>,
        pool: BlockingPool,
    ) -> Response<Full<Bytes>> {
        let request = match self.responder.parse_request(der) {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return ocsp(StatusCode::BAD_REQUEST, Bytes::from(e.response()));
            }
        };
        if !request.any_ours() {
            return ocsp(
                StatusCode::OK,
                Bytes::from(error_response(OcspErrorStatus::Unauthorized)),
            );
        }
        if let Some((serial, hash)) = cacheable(&request) {
            if let Some(hit) = self.cached(&serial, hash) {
                return cached_response(&hit, headers);
            }
            let this = Arc::clone(self);
            let result = pool
                .run(move || this.sign_for_cache(&appliance.authority, serial, hash))
                .await;
            return match result {
                Ok(Ok(entry)) => cached_response(&entry, headers),
                Ok(Err(e)) => internal(&e),
                Err(failure) => internal(&failure),
            };
        }
        let this = Arc::clone(self);
        let result = pool
            .run(move || this.sign_live(&appliance.authority, &request))
            .await;
        match result {
            Ok(Ok(der)) => {
                let mut response = ocsp(StatusCode::OK, Bytes::from(der));
                response.headers_mut().insert(
                    CACHE_CONTROL,
                    HeaderValue::from_static("no-cache, no-store, max-age=0"),
                );
                response
            }
            Ok(Err(e)) => internal(&e),
            Err(failure) => internal(&failure),
        }
    }

    /// A cached response still in the first half of its validity.
    fn cached(&self, serial: &Serial, hash: CertIdHash) -> Option<Arc<Cached>> {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        let hit = cache.get(&(serial.clone(), hash))?;
        let half_life = hit.this_update + (hit.next_update - hit.this_update) / 2;
        (unix(SystemTime::now()) < half_life).then(|| Arc::clone(hit))
    }

    /// The times of a response signed now.
    fn times(&self) -> OcspTimes {
        let now = SystemTime::now();
        OcspTimes {
            produced_at: now,
            this_update: now,
            next_update: now + self.validity,
        }
    }

    /// Reads the state of `serial`, signs a nonce-less response, caches it.
    fn sign_for_cache(
        &self,
        authority: &Authority,
        serial: Serial,
        hash: CertIdHash,
    ) -> Result<Arc<Cached>, CaError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let state = state_of(authority, &serial)?;
        let times = self.times();
        let der = self.responder.presign(&serial, hash, state, &times)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let etag = format!(
            "\"{}\"",
            digest.as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let entry = Arc::new(Cached {
            der: Bytes::from(der),
            etag,
            this_update: unix(times.this_update),
            next_update: unix(times.next_update),
        });
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        // Not cached: a status change since the state was read; `unknown`
        // (any serial can be asked for, and a pending one may be issued a
        // moment later); a full cache.
        if self.generation.load(Ordering::SeqCst) == generation
            && state != CertState::Unknown
            && cache.len() < MAX_CACHED
        {
            cache.insert((serial, hash), Arc::clone(&entry));
        }
        Ok(entry)
    }

    /// Reads every CertID's state and signs one response with the nonce.
    fn sign_live(&self, authority: &Authority, request: &OcspRequest) -> Result<Vec<u8>, CaError> {
        let states = request
            .cert_ids()
            .iter()
            .map(|id| match id.lookup_serial() {
                Some(serial) => state_of(authority, serial),
                None => Ok(CertState::Unknown),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.responder.respond(request, &states, &self.times())
    }
}

/// What the inventory says about `serial`.
fn state_of(authority: &Authority, serial: &Serial) -> Result<CertState, CaError> {
    let record = match authority.get(serial) {
        Ok(record) => record,
        Err(CaError::NotFound(_)) => return Ok(CertState::Unknown),
        Err(e) => return Err(e),
    };
    Ok(match (record.status, record.revocation) {
        (CertStatus::Issued, _) => CertState::Good,
        (CertStatus::Revoked, Some(revocation)) => CertState::Revoked {
            revoked_at: revocation.revoked_at,
            reason: revocation.reason,
        },
        (CertStatus::Revoked, None) => {
            return Err(CaError::Internal(format!(
                "certificate {serial} is revoked without a reason"
            )));
        }
        // Never signed, so never handed out.
        (CertStatus::Pending, _) => CertState::Unknown,
    })
}

/// The serial and hash of a request a cached response can answer: one
/// CertID of ours, no nonce.
fn cacheable(request: &OcspRequest) -> Option<(Serial, CertIdHash)> {
    if request.nonce().is_some() {
        return None;
    }
    let [id] = request.cert_ids() else {
        return None;
    };
    Some((id.lookup_serial()?.clone(), id.hash()?))
}

/// Decodes the base64 of a GET request (RFC 6960 A.1), percent-encoded or not.
fn decode_get(encoded: &str) -> Option<Vec<u8>> {
    // Base64 of the largest request we accept, plus percent-encoding slack.
    if encoded.is_empty() || encoded.len() > MAX_OCSP_REQUEST_LEN * 2 {
        return None;
    }
    let text = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    Base64::decode_vec(text.trim()).ok()
}

/// A response with the OCSP content type.
fn ocsp(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    response
}

fn malformed() -> Response<Full<Bytes>> {
    ocsp(
        StatusCode::BAD_REQUEST,
        Bytes::from(error_response(OcspErrorStatus::MalformedRequest)),
    )
}

fn internal(error: &dyn std::fmt::Debug) -> Response<Full<Bytes>> {
    tracing::warn!(error = ?error, "OCSP response failed");
    ocsp(
        StatusCode::INTERNAL_SERVER_ERROR,
        Bytes::from(error_response(OcspErrorStatus::InternalError)),
    )
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A cached response with its RFC 5019 headers, or 304 if the client has it.
fn cached_response(entry: &Cached, headers: &HeaderMap) -> Response<Full<Bytes>> {
    cacheable_response(
        &Cacheable {
            body: &entry.der,
            content_type: "application/ocsp-response",
            etag: &entry.etag,
            this_update: entry.this_update,
            next_update: entry.next_update,
            cache_control: "public, no-transform, must-revalidate",
        },
        headers,
    )
}

/// Unix seconds.
fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_requests_decode_with_or_without_percent_encoding() {
        let der = [0xfb, 0xef, 0xbf, 0xff, 0xfe];
        let plain = Base64::encode_string(&der);
        assert!(plain.contains('+') && plain.contains('/'), "{plain}");
        assert_eq!(decode_get(&plain).as_deref(), Some(&der[..]));
        let escaped = plain
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(decode_get(&escaped).as_deref(), Some(&der[..]));
        assert_eq!(decode_get(""), None);
        assert_eq!(decode_get("not base64!"), None);
        assert_eq!(decode_get(&"A".repeat(MAX_OCSP_REQUEST_LEN * 3)), None);
    }
}
