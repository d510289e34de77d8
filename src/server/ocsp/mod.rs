//! The OCSP responder over HTTP (RFC 6960 appendix A, RFC 5019 caching),
//! its pre-signed responses, and the keyless edge responder.
//!
//! - `POST {path}` with an `application/ocsp-request` body, or
//!   `GET {path}/{base64}` with the DER request in standard base64
//!   (percent-encoded or not: `+`, `/` and `=` are all accepted).
//! - **Pre-signed responses.** Every certificate's nonce-less response is
//!   signed ahead ([`presign`]: for the CertID hashes in `ocsp.presign`,
//!   within seconds of issuance, and again halfway through each response's
//!   validity), saved in the store and kept in memory. A request without a
//!   nonce for one certificate is answered from memory, else from the store;
//!   that path touches neither the HSM nor the inventory. A hash not signed
//!   ahead is signed on its first request and kept fresh from then on.
//!   Responses carry RFC 5019 caching headers (`Cache-Control: max-age`,
//!   `Last-Modified`, `Expires`, `ETag`; `If-None-Match` gives 304).
//! - **Revocation.** The store withdraws a certificate's responses in the
//!   transaction that changes its status, so no reader (a restarted
//!   appliance, an edge) can serve the old status once the change is
//!   durable. [`Ocsp::status_changed`] then runs before the gRPC reply: it
//!   signs the new responses and replaces the stored and cached ones, so
//!   OCSP says revoked as soon as the revocation is acknowledged. If it
//!   cannot sign, memory takes the withdrawals too: requests are signed
//!   live (appliance) or answered `tryLater` (edge) until the presigner
//!   succeeds.
//! - **Ordering.** A response is stored only if the certificate still has
//!   the status it states (checked in the writing transaction), and every
//!   stored response has a sequence number; memory only ever replaces a
//!   response with a newer one. So a response signed from a status read
//!   before a revocation can neither be stored nor cached after it.
//! - Anything else (a nonce, several CertIDs) is signed live, on the
//!   blocking pool.
//! - **Edge mode** (`strongroom ocsp serve`, [`Ocsp::edge`]): no key and a
//!   read-only store. It serves the stored responses, follows new ones
//!   ([`follow`]) every poll interval, and answers a nonce request with the
//!   nonce-less response (RFC 8954 allows a responder to ignore the nonce).
//!   What it has no current response for gets `unauthorized` (never
//!   stored: RFC 5019 2.2.3) or `tryLater` (withdrawn or expired).
//!
//! Bodies over [`MAX_OCSP_REQUEST_LEN`] and requests that do not parse get
//! HTTP 400 with a `malformedRequest` OCSP response; a request naming no
//! certificate of ours gets `unauthorized`; a failure of ours gets
//! `internalError` (HTTP 500) and a warning in the log.

pub(crate) mod presign;
pub(crate) mod signer;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use base64ct::{Base64, Encoding};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use strongroom_ca::{
    CaError, CertIdHash, CertState, CertStatus, CertStore, MAX_OCSP_REQUEST_LEN, OcspErrorStatus,
    OcspRequest, OcspRequestParser, OcspResponder, OcspTimes, Serial, error_response,
};
use tokio::sync::{Notify, watch};

use super::blocking::BlockingPool;
use super::http::{Cacheable, cacheable_response};
use super::unix;
use crate::store::sqlite::{SignedResponse, SqliteStore, StoredResponse};

/// How long a client may take to send a POST body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most responses kept in memory; beyond it, new ones are read from the
/// store on each request.
const MAX_CACHED: usize = 1_000_000;

/// The most changes an edge reads from the store at once.
const CHANGES_PER_READ: usize = 10_000;

/// A response in memory, or the withdrawal of one.
#[derive(Debug)]
struct Cached {
    /// The DER response; `None` for a withdrawal.
    der: Option<Bytes>,
    /// The quoted `ETag`.
    etag: String,
    this_update: i64,
    next_update: i64,
    /// The store's sequence number of this response: higher is newer.
    seq: u64,
    /// Whether HTTP caches may keep it (false for a response not stored:
    /// `unknown`, or one whose status changed while it was signed).
    shared: bool,
}

impl Cached {
    fn new(der: Option<Vec<u8>>, this_update: i64, next_update: i64, seq: u64) -> Cached {
        let etag = der.as_deref().map_or_else(String::new, |der| {
            let digest = ring::digest::digest(&ring::digest::SHA256, der);
            let hex: String = digest.as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("\"{hex}\"")
        });
        Cached {
            der: der.map(Bytes::from),
            etag,
            this_update,
            next_update,
            seq,
            shared: true,
        }
    }

    /// A response served once and never cached anywhere.
    fn private(der: Vec<u8>, this_update: i64, next_update: i64) -> Cached {
        Cached {
            shared: false,
            ..Cached::new(Some(der), this_update, next_update, 0)
        }
    }

    fn from_stored(row: StoredResponse) -> Cached {
        Cached::new(row.der, row.this_update, row.next_update, row.seq)
    }

    /// Whether it can be served at `now`.
    fn servable(&self, now: i64) -> bool {
        self.der.is_some() && now < self.next_update
    }
}

/// What signs responses, when this responder can sign.
struct Signing {
    /// Replaced when a new delegated signer takes over.
    responder: RwLock<Arc<OcspResponder>>,
    /// nextUpdate − thisUpdate.
    validity: Duration,
    /// The hashes signed ahead for every certificate.
    presign: Vec<CertIdHash>,
}

/// Why there is no response to serve from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// None was ever stored.
    Never,
    /// The stored one was withdrawn or has expired.
    Stale,
}

/// The responder: request parsing, responses in memory and in the store,
/// and (in the appliance) signing.
pub(crate) struct Ocsp {
    parser: OcspRequestParser,
    /// The URL path of the responder (`/ocsp`), without a trailing slash.
    path: String,
    store: Arc<SqliteStore>,
    /// `None` in edge mode.
    signing: Option<Signing>,
    cache: RwLock<HashMap<(Serial, CertIdHash), Arc<Cached>>>,
    /// Wakes the presigner (new certificates).
    wake: Notify,
}

impl std::fmt::Debug for Ocsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ocsp")
            .field("path", &self.path)
            .field("signs", &self.signing.is_some())
            .finish_non_exhaustive()
    }
}

/// The path of an absolute http(s) URL, without a trailing slash.
fn url_path(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("OCSP URL {url} is not an http URL"))?;
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    Ok(path.trim_end_matches('/').to_string())
}

impl Ocsp {
    /// The appliance's responder at the path of `url` (an absolute http
    /// URL), signing with `responder`, each response valid for `validity`,
    /// responses for `presign` hashes signed ahead.
    pub(crate) fn new(
        url: &str,
        responder: OcspResponder,
        validity: Duration,
        presign: Vec<CertIdHash>,
        store: Arc<SqliteStore>,
    ) -> Result<Ocsp, CaError> {
        let parser = OcspRequestParser::new(responder.issuer().certificate_der())?;
        Ok(Ocsp {
            parser,
            path: url_path(url).map_err(CaError::BadRequest)?,
            store,
            signing: Some(Signing {
                responder: RwLock::new(Arc::new(responder)),
                validity,
                presign,
            }),
            cache: RwLock::new(HashMap::new()),
            wake: Notify::new(),
        })
    }

    /// A keyless edge responder at `path` for the issuer whose certificate
    /// is `issuer_der`, serving what `store` holds.
    pub(crate) fn edge(
        path: &str,
        issuer_der: &[u8],
        store: Arc<SqliteStore>,
    ) -> Result<Ocsp, CaError> {
        Ok(Ocsp {
            parser: OcspRequestParser::new(issuer_der)?,
            path: path.trim_end_matches('/').to_string(),
            store,
            signing: None,
            cache: RwLock::new(HashMap::new()),
            wake: Notify::new(),
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

    /// The responder that signs now (appliance only).
    fn responder(&self) -> Option<Arc<OcspResponder>> {
        self.signing.as_ref().map(|signing| {
            Arc::clone(
                &signing
                    .responder
                    .read()
                    .unwrap_or_else(PoisonError::into_inner),
            )
        })
    }

    /// Makes `responder` sign from now on (a new delegated signer).
    pub(crate) fn replace_responder(&self, responder: OcspResponder) {
        if let Some(signing) = &self.signing {
            *signing
                .responder
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(responder);
        }
    }

    /// A certificate was issued: its responses are due.
    pub(crate) fn issued(&self) {
        self.wake.notify_one();
    }

    /// Answers one HTTP request to the responder.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
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
        self.answer(&der, &parts.headers, pool).await
    }

    /// The response to a DER request.
    async fn answer(
        self: &Arc<Self>,
        der: &[u8],
        headers: &HeaderMap,
        pool: BlockingPool,
    ) -> Response<Full<Bytes>> {
        let request = match self.parser.parse(der) {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return ocsp(StatusCode::BAD_REQUEST, Bytes::from(e.response()));
            }
        };
        if !request.any_ours() {
            return error(OcspErrorStatus::Unauthorized);
        }
        let single = single_cert_id(&request);
        let signs = self.signing.is_some();
        match single {
            // The edge ignores a nonce: it can only serve what was signed.
            Some(key) if request.nonce().is_none() || !signs => {
                if let Some(hit) = self.fresh(&key) {
                    return cached_response(&hit, headers);
                }
                let this = Arc::clone(self);
                match pool.run(move || this.load_or_sign(key)).await {
                    Ok(Ok(Ok(entry))) => cached_response(&entry, headers),
                    Ok(Ok(Err(Missing::Never))) => error(OcspErrorStatus::Unauthorized),
                    Ok(Ok(Err(Missing::Stale))) => error(OcspErrorStatus::TryLater),
                    Ok(Err(e)) => internal(&e),
                    Err(failure) => internal(&failure),
                }
            }
            _ if !signs => error(OcspErrorStatus::Unauthorized),
            _ => {
                let this = Arc::clone(self);
                match pool.run(move || this.sign_live(&request)).await {
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
        }
    }

    /// The response in memory for `key`, if it can be served now.
    fn fresh(&self, key: &(Serial, CertIdHash)) -> Option<Arc<Cached>> {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        let hit = cache.get(key)?;
        hit.servable(unix(SystemTime::now()))
            .then(|| Arc::clone(hit))
    }

    /// Drops from memory what can no longer be served (past nextUpdate),
    /// so memory follows the certificates that are alive.
    pub(crate) fn evict_expired(&self) {
        let now = unix(SystemTime::now());
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, entry| entry.next_update > now);
    }

    /// Puts `entry` in memory unless a newer one is there (or memory is
    /// full); returns what memory holds for `key` afterwards, or `entry`.
    fn install(&self, key: (Serial, CertIdHash), entry: Cached) -> Arc<Cached> {
        let entry = Arc::new(entry);
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        let full = cache.len() >= MAX_CACHED;
        match cache.get_mut(&key) {
            Some(current) if current.seq >= entry.seq => Arc::clone(current),
            Some(current) => {
                *current = Arc::clone(&entry);
                entry
            }
            None if full => entry,
            None => {
                cache.insert(key, Arc::clone(&entry));
                entry
            }
        }
    }

    /// Reads the stored response for `key`; without one, the appliance
    /// signs it (and keeps it, unless the certificate is unknown).
    fn load_or_sign(
        &self,
        key: (Serial, CertIdHash),
    ) -> Result<Result<Arc<Cached>, Missing>, CaError> {
        let (serial, hash) = &key;
        let now = unix(SystemTime::now());
        let stored = self
            .store
            .ocsp_response(self.parser.issuer_id(), serial, *hash)?;
        let missing = match stored {
            Some(row) => {
                let entry = self.install(key.clone(), Cached::from_stored(row));
                if entry.servable(now) {
                    return Ok(Ok(entry));
                }
                Missing::Stale
            }
            None => Missing::Never,
        };
        if self.signing.is_none() {
            return Ok(Err(missing));
        }
        self.sign_one(serial, *hash).map(Ok)
    }

    /// The times of a response signed now by `responder`: nextUpdate never
    /// after its signer certificate expires.
    fn times(&self, responder: &OcspResponder) -> OcspTimes {
        let validity = self
            .signing
            .as_ref()
            .map_or(Duration::ZERO, |signing| signing.validity);
        let now = SystemTime::now();
        let signer_end = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(responder.signer_not_after()).unwrap_or(0));
        OcspTimes {
            produced_at: now,
            this_update: now,
            next_update: (now + validity).min(signer_end).max(now),
        }
    }

    /// Signs the response for one certificate from its status in the
    /// inventory, stores it (unless unknown) and keeps it in memory. If the
    /// status changed between reading and storing, it signs again from the
    /// new status; a response that still could not be stored is served with
    /// `no-store`.
    fn sign_one(&self, serial: &Serial, hash: CertIdHash) -> Result<Arc<Cached>, CaError> {
        let responder = self
            .responder()
            .ok_or_else(|| CaError::Internal("this OCSP responder has no key".into()))?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let times = self.times(&responder);
            let record = self.store.get(self.parser.issuer_id(), serial)?;
            let state = state_of(record.as_ref(), serial)?;
            let der = responder.presign(serial, hash, state, &times)?;
            let (this_update, next_update) = (unix(times.this_update), unix(times.next_update));
            if state == CertState::Unknown {
                // Any serial can be asked for, and a pending one may be
                // issued a moment later: not kept, not shared.
                return Ok(Arc::new(Cached::private(der, this_update, next_update)));
            }
            let signed = SignedResponse {
                serial: serial.clone(),
                hash,
                state,
                der,
                this_update,
                next_update,
                refresh_at: half_life(this_update, next_update),
            };
            let saved = self
                .store
                .save_ocsp_responses(self.parser.issuer_id(), std::slice::from_ref(&signed))?;
            match saved.first().copied().flatten() {
                Some(seq) => {
                    let entry = Cached::new(Some(signed.der), this_update, next_update, seq);
                    return Ok(self.install((serial.clone(), hash), entry));
                }
                None if attempts < 2 => continue,
                None => {
                    return Ok(Arc::new(Cached::private(
                        signed.der,
                        this_update,
                        next_update,
                    )));
                }
            }
        }
    }

    /// Signs, stores and keeps the responses for `keys` (blocking); returns
    /// how many were stored. Unknown and pending certificates get none, and
    /// unless `changed` (their status just changed), neither do expired
    /// ones: their stored responses are deleted (the last one stays valid
    /// until its nextUpdate).
    pub(crate) fn sign_batch(
        &self,
        keys: &[(Serial, CertIdHash)],
        changed: bool,
    ) -> Result<usize, CaError> {
        let responder = self
            .responder()
            .ok_or_else(|| CaError::Internal("this OCSP responder has no key".into()))?;
        let issuer_id = self.parser.issuer_id();
        let times = self.times(&responder);
        let (this_update, next_update) = (unix(times.this_update), unix(times.next_update));
        let mut signed = Vec::with_capacity(keys.len());
        let mut dropped = Vec::new();
        for (serial, hash) in keys {
            let record = self.store.get(issuer_id, serial)?;
            let state = state_of(record.as_ref(), serial)?;
            let expired = record.as_ref().is_some_and(|r| r.not_after < this_update);
            if state == CertState::Unknown || (expired && !changed) {
                dropped.push((serial.clone(), *hash));
                continue;
            }
            signed.push(SignedResponse {
                serial: serial.clone(),
                hash: *hash,
                state,
                der: responder.presign(serial, *hash, state, &times)?,
                this_update,
                next_update,
                refresh_at: half_life(this_update, next_update),
            });
        }
        let saved = self
            .store
            .save_and_drop_ocsp_responses(issuer_id, &signed, &dropped)?;
        let mut stored = 0;
        for (response, seq) in signed.into_iter().zip(saved) {
            if let Some(seq) = seq {
                stored += 1;
                self.install(
                    (response.serial, response.hash),
                    Cached::new(Some(response.der), this_update, next_update, seq),
                );
            }
        }
        Ok(stored)
    }

    /// After `serial`'s status changed (blocking; appliance only). The
    /// revocation's own transaction withdrew the stored responses; this
    /// signs and stores the new ones (both hashes) and replaces memory. If
    /// it cannot sign, memory takes the withdrawals instead, and the
    /// presigner signs them when it can.
    pub(crate) fn status_changed(&self, serial: &Serial) {
        if self.signing.is_none() {
            return;
        }
        let keys: Vec<_> = CertIdHash::ALL
            .into_iter()
            .map(|h| (serial.clone(), h))
            .collect();
        if let Err(e) = self.sign_batch(&keys, true) {
            tracing::warn!(
                serial = %serial,
                error = %e,
                "cannot sign the new OCSP responses; serving none until the presigner can"
            );
            let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
            for hash in CertIdHash::ALL {
                if let Some(entry) = cache.get_mut(&(serial.clone(), hash)) {
                    *entry = Arc::new(Cached::new(None, 0, 0, entry.seq));
                }
            }
        }
    }

    /// Reads every CertID's state and signs one response with the nonce.
    fn sign_live(&self, request: &OcspRequest) -> Result<Vec<u8>, CaError> {
        let responder = self
            .responder()
            .ok_or_else(|| CaError::Internal("this OCSP responder has no key".into()))?;
        let states = request
            .cert_ids()
            .iter()
            .map(|id| match id.lookup_serial() {
                Some(serial) => {
                    let record = self.store.get(self.parser.issuer_id(), serial)?;
                    state_of(record.as_ref(), serial)
                }
                None => Ok(CertState::Unknown),
            })
            .collect::<Result<Vec<_>, _>>()?;
        responder.respond(request, &states, &self.times(&responder))
    }

    /// Keeps memory in step with the store (edge mode): applies every
    /// response written after `after_seq`; returns the newest seen.
    fn apply_changes(&self, after_seq: u64) -> Result<u64, CaError> {
        let mut seen = after_seq;
        loop {
            let changes =
                self.store
                    .ocsp_changes(self.parser.issuer_id(), seen, CHANGES_PER_READ)?;
            let more = changes.len() == CHANGES_PER_READ;
            for row in changes {
                seen = seen.max(row.seq);
                let key = (row.serial.clone(), row.hash);
                self.install(key, Cached::from_stored(row));
            }
            if !more {
                return Ok(seen);
            }
        }
    }
}

/// Follows the store's new responses every `every` until `stop` (edge
/// mode). Call before serving: it first notes where the store is.
pub(crate) async fn follow(
    ocsp: Arc<Ocsp>,
    pool: BlockingPool,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let store = Arc::clone(&ocsp.store);
    let start = pool.run(move || store.ocsp_seq()).await;
    let mut seen = match start {
        Ok(result) => result?,
        Err(failure) => anyhow::bail!("cannot read the OCSP responses: {failure:?}"),
    };
    Ok(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
            }
            let this = Arc::clone(&ocsp);
            match pool.run(move || this.apply_changes(seen)).await {
                Ok(Ok(newest)) => seen = newest,
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read new OCSP responses"),
                Err(failure) => tracing::warn!(error = ?failure, "cannot read new OCSP responses"),
            }
        }
    })
}

/// What the inventory says about `serial` (`record` is its record, if any).
fn state_of(
    record: Option<&strongroom_ca::CertRecord>,
    serial: &Serial,
) -> Result<CertState, CaError> {
    let Some(record) = record else {
        return Ok(CertState::Unknown);
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

/// The serial and hash of a request for exactly one certificate of ours.
fn single_cert_id(request: &OcspRequest) -> Option<(Serial, CertIdHash)> {
    let [id] = request.cert_ids() else {
        return None;
    };
    Some((id.lookup_serial()?.clone(), id.hash()?))
}

/// Halfway between two times.
fn half_life(this_update: i64, next_update: i64) -> i64 {
    this_update + (next_update - this_update) / 2
}

/// An unsuccessful (unsigned) OCSP response.
fn error(status: OcspErrorStatus) -> Response<Full<Bytes>> {
    ocsp(StatusCode::OK, Bytes::from(error_response(status)))
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
    let Some(der) = &entry.der else {
        return error(OcspErrorStatus::TryLater);
    };
    if !entry.shared {
        let mut response = ocsp(StatusCode::OK, der.clone());
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, max-age=0"),
        );
        return response;
    }
    cacheable_response(
        &Cacheable {
            body: der,
            content_type: "application/ocsp-response",
            etag: &entry.etag,
            this_update: entry.this_update,
            next_update: entry.next_update,
            cache_control: "public, no-transform, must-revalidate",
        },
        headers,
    )
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
