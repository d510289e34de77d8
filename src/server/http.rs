//! Plain HTTP (hyper 1, HTTP/1.1): the CA certificates (for clients and for
//! the caIssuers URL written into every certificate) and the CRLs (at the
//! paths of the CRL Distribution Point URLs written into certificates).
//!
//! | path              | body                                   | type                  |
//! |-------------------|----------------------------------------|-----------------------|
//! | `/ca/issuing.crt` | the issuing CA certificate, DER        | `application/pkix-cert` |
//! | `/ca/root.crt`    | the last certificate of the chain, DER | `application/pkix-cert` |
//! | `/ca/chain.pem`   | the chain, issuing CA first, PEM       | `text/plain`          |
//! | path of `ca.crl_url` | the newest CRL, DER                 | `application/pkix-crl` |
//! | path of the delta CRL URL | the newest delta CRL, DER      | `application/pkix-crl` |
//!
//! With partitioned CRLs, `ca.crl_url` holds `{partition}`: partition `n` is
//! served with `n` in its place, and the whole issuer's CRL with `all`. The
//! delta CRLs (`crl.delta`) are served the same way at the delta CRL URL
//! (`ca.crl_url` with `-delta` before `.crl`).
//! CRL responses carry `ETag` (the CRL number), `Last-Modified`
//! (thisUpdate), `Expires` (nextUpdate) and `Cache-Control: max-age` up to
//! nextUpdate, and answer `If-None-Match` / `If-Modified-Since` with 304.
//! A CRL not published yet is 503 with `Retry-After`.
//!
//! While the appliance is sealed every request is answered 503 with
//! `Retry-After` (a keyless edge, `strongroom ocsp serve`, keeps answering
//! OCSP from the store meanwhile).
//!
//! Anything else is 404; a method other than GET is 405. Serving touches
//! neither the HSM nor the store: the CA files are built once at start, and
//! CRLs come from the publisher's memory.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, HeaderMap, HeaderValue, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use strongroom_ca::{CrlSeries, PARTITION_PLACEHOLDER};

use super::blocking::BlockingPool;
use super::crl::{CrlKey, Crls, PublishedCrl};
use super::ocsp::Ocsp;

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

/// Where the CRLs are served, from the CRL Distribution Point URL and the
/// delta CRL URL.
#[derive(Debug, Clone)]
pub(crate) struct CrlRoutes {
    /// The paths of the complete CRLs.
    complete: CrlPaths,
    /// The paths of the delta CRLs, when they are published.
    delta: Option<CrlPaths>,
    /// Partitions configured now; others are served only if published.
    configured: u32,
    /// The published CRLs.
    crls: Arc<Crls>,
}

/// The paths of one kind of CRL (complete or delta).
#[derive(Debug, Clone)]
struct CrlPaths {
    /// The path of the whole issuer's CRL.
    all: String,
    /// With partitions: the path before and after the partition number.
    partitions: Option<(String, String)>,
}

impl CrlPaths {
    /// The paths of an absolute http URL (with `{partition}` when
    /// partitioned). `None` when it has no usable path.
    fn new(url: &str) -> Option<CrlPaths> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))?;
        let path = &rest[rest.find('/')?..];
        Some(match path.split_once(PARTITION_PLACEHOLDER) {
            Some((before, after)) => CrlPaths {
                all: format!("{before}all{after}"),
                partitions: Some((before.to_string(), after.to_string())),
            },
            None => CrlPaths {
                all: path.to_string(),
                partitions: None,
            },
        })
    }

    /// The series whose CRL `path` names, if any.
    fn series(&self, path: &str) -> Option<CrlSeries> {
        if path == self.all {
            return Some(CrlSeries::All);
        }
        let (before, after) = self.partitions.as_ref()?;
        let digits = path
            .strip_prefix(before.as_str())?
            .strip_suffix(after.as_str())?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        canonical
            .then(|| digits.parse().ok())
            .flatten()
            .map(CrlSeries::Partition)
    }
}

impl CrlRoutes {
    /// Routes for the CRL Distribution Point `url` (absolute http URL; with
    /// `{partition}` when partitioned) and, when delta CRLs are published,
    /// the delta CRL URL `delta_url` (alike). `None` when `url` has no
    /// usable path.
    pub(crate) fn new(
        url: &str,
        delta_url: Option<&str>,
        configured: u32,
        crls: Arc<Crls>,
    ) -> Option<CrlRoutes> {
        Some(CrlRoutes {
            complete: CrlPaths::new(url)?,
            delta: delta_url.and_then(CrlPaths::new),
            configured,
            crls,
        })
    }

    /// The CRL served at `path`, if any.
    fn crl(&self, path: &str) -> Option<CrlKey> {
        let key = match self.complete.series(path) {
            Some(series) => CrlKey::complete(series),
            None => CrlKey::delta(self.delta.as_ref()?.series(path)?),
        };
        match key.series {
            CrlSeries::All => Some(key),
            CrlSeries::Partition(n) => {
                (n < self.configured || self.crls.get(key).is_some()).then_some(key)
            }
        }
    }
}

impl std::fmt::Debug for OcspRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspRoute")
            .field("ocsp", &self.ocsp)
            .finish_non_exhaustive()
    }
}

/// Everything the listener serves.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// The CA certificates.
    pub(crate) files: CaFiles,
    /// The CRLs, when a CRL URL is configured.
    pub(crate) crls: Option<CrlRoutes>,
    /// The OCSP responder, when an OCSP URL is configured.
    pub(crate) ocsp: Option<OcspRoute>,
}

/// The OCSP responder and what it needs to answer.
#[derive(Clone)]
pub(crate) struct OcspRoute {
    /// The responder and its responses.
    pub(crate) ocsp: Arc<Ocsp>,
    /// Where it signs and reads.
    pub(crate) pool: BlockingPool,
}

impl Site {
    /// What `appliance` serves, signing OCSP responses on `pool`.
    pub(crate) fn of(appliance: &crate::appliance::Appliance, pool: BlockingPool) -> Site {
        let authority = &appliance.authority;
        Site {
            files: CaFiles::new(authority.chain_der(), authority.chain_pem()),
            crls: authority.urls().crl.as_deref().and_then(|url| {
                CrlRoutes::new(
                    url,
                    authority.delta_crl_url_template(),
                    authority.crl_partitions(),
                    Arc::clone(&appliance.crls),
                )
            }),
            ocsp: appliance.ocsp.as_ref().map(|ocsp| OcspRoute {
                ocsp: Arc::clone(ocsp),
                pool,
            }),
        }
    }

    /// Whether `path` is a CA file or a CRL (these win over an OCSP
    /// responder mounted at `/`).
    fn serves_locally(&self, path: &str) -> bool {
        matches!(path, "/ca/issuing.crt" | "/ca/root.crt" | "/ca/chain.pem")
            || self
                .crls
                .as_ref()
                .is_some_and(|routes| routes.crl(path).is_some())
    }
}

/// The site being served now: none while the appliance is sealed.
#[derive(Debug, Default)]
pub(crate) struct SiteSlot(RwLock<Option<Arc<Site>>>);

impl SiteSlot {
    /// A slot that always serves `site`.
    pub(crate) fn fixed(site: Site) -> Arc<SiteSlot> {
        Arc::new(SiteSlot(RwLock::new(Some(Arc::new(site)))))
    }

    /// Serves `site` from now on (`None`: 503 to everything).
    pub(crate) fn set(&self, site: Option<Arc<Site>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = site;
    }

    fn get(&self) -> Option<Arc<Site>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Serves `listener` until `stop` turns true (or its sender is dropped),
/// then lets open connections finish for up to [`DRAIN_TIMEOUT`].
pub(crate) async fn serve(
    listener: TcpListener,
    files: Arc<SiteSlot>,
    stop: watch::Receiver<bool>,
) {
    serve_with(listener, stop, move |stream, stop| {
        connection(stream, Arc::clone(&files), stop)
    })
    .await;
    tracing::debug!("HTTP server stopped");
}

/// Accepts connections on `listener` and serves each with `connect` on its
/// own task, until `stop` turns true (or its sender is dropped); then lets
/// open connections finish for up to [`DRAIN_TIMEOUT`].
pub(crate) async fn serve_with<C, F>(listener: TcpListener, stop: watch::Receiver<bool>, connect: C)
where
    C: Fn(TcpStream, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(stop.clone()) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connect(stream, stop.clone()));
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
}

/// Completes once `stop` is true or its sender is gone.
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Serves one connection until it ends or shutdown begins.
async fn connection(stream: TcpStream, sites: Arc<SiteSlot>, stop: watch::Receiver<bool>) {
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let site = sites.get();
        async move {
            let Some(site) = site else {
                return Ok::<_, Infallible>(sealed());
            };
            if let Some(route) = &site.ocsp {
                let path = request.uri().path();
                if route.ocsp.serves(path) && !site.serves_locally(path) {
                    let response = route.ocsp.handle(request, route.pool.clone()).await;
                    return Ok::<_, Infallible>(response);
                }
            }
            Ok(respond(
                &site,
                request.method(),
                request.uri().path(),
                request.headers(),
            ))
        }
    });
    serve_connection(stream, service, stop).await;
}

/// Serves HTTP/1.1 on one connection with `service` until it ends or
/// shutdown begins (then gracefully: the request in progress is answered).
pub(crate) async fn serve_connection<S>(stream: TcpStream, service: S, stop: watch::Receiver<bool>)
where
    S: hyper::service::Service<
            Request<hyper::body::Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
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

/// The answer to everything while the appliance is sealed.
fn sealed() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"the appliance is sealed\n")));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("10"));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The response to `method path`.
pub(crate) fn respond(
    site: &Site,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let files = &site.files;
    if method == Method::GET {
        if let Some(routes) = &site.crls {
            if let Some(key) = routes.crl(path) {
                let response = crl_response(routes.crls.get(key).as_deref(), headers);
                tracing::debug!(%method, path, status = response.status().as_u16(), "HTTP request");
                return response;
            }
        }
    }
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
    simple_response(status, content_type, body)
}

/// A response of `status` with `body` of `content_type`; a 405 says that
/// only GET is allowed.
pub(crate) fn simple_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
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

/// A CRL with its caching headers, 304 when the client has it, or 503 when
/// it is not published yet.
fn crl_response(crl: Option<&PublishedCrl>, headers: &HeaderMap) -> Response<Full<Bytes>> {
    let Some(crl) = crl else {
        let mut response = Response::new(Full::new(Bytes::from_static(
            b"this CRL is being built; try again shortly\n",
        )));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    cacheable_response(
        &Cacheable {
            body: &crl.der,
            content_type: "application/pkix-crl",
            etag: &format!("\"{:x}\"", crl.number),
            this_update: crl.this_update,
            next_update: crl.next_update,
            cache_control: "public, no-transform",
        },
        headers,
    )
}

/// A document served with validators and an expiry: a CRL or a cached OCSP
/// response.
pub(crate) struct Cacheable<'a> {
    /// The body.
    pub(crate) body: &'a Bytes,
    /// Its content type.
    pub(crate) content_type: &'static str,
    /// Its quoted entity tag.
    pub(crate) etag: &'a str,
    /// When it was made (`Last-Modified`), Unix seconds.
    pub(crate) this_update: i64,
    /// When it stops being valid (`Expires`, and `max-age` up to it).
    pub(crate) next_update: i64,
    /// `Cache-Control` directives besides `max-age`.
    pub(crate) cache_control: &'static str,
}

/// `doc` with `ETag`, `Last-Modified`, `Expires` and `Cache-Control:
/// max-age` up to its expiry; 304 when `If-None-Match` names its tag (or
/// `*`), or, without `If-None-Match`, when `If-Modified-Since` is not before
/// it was made.
pub(crate) fn cacheable_response(
    doc: &Cacheable<'_>,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let at = |unix: i64| {
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
    };
    let max_age = at(doc.next_update)
        .duration_since(std::time::SystemTime::now())
        .map_or(0, |d| d.as_secs());
    let not_modified = match headers.get(IF_NONE_MATCH) {
        Some(tags) => tags.to_str().is_ok_and(|tags| {
            tags.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == doc.etag
            })
        }),
        None => headers
            .get(IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| at(doc.this_update) <= since),
    };
    let mut response = if not_modified {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Full::new(doc.body.clone()));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(doc.content_type));
        response
    };
    let headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(ETAG, doc.etag.to_string());
    set(LAST_MODIFIED, httpdate::fmt_http_date(at(doc.this_update)));
    set(EXPIRES, httpdate::fmt_http_date(at(doc.next_update)));
    set(
        CACHE_CONTROL,
        format!("max-age={max_age}, {}", doc.cache_control),
    );
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn files() -> Site {
        Site {
            files: CaFiles::new(
                &[b"issuing".to_vec(), b"root".to_vec()],
                "-----BEGIN CERTIFICATE-----\n".into(),
            ),
            crls: None,
            ocsp: None,
        }
    }

    fn get(site: &Site, path: &str) -> Response<Full<Bytes>> {
        respond(site, &Method::GET, path, &HeaderMap::new())
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
        let issuing = get(&files, "/ca/issuing.crt");
        assert_eq!(issuing.status(), StatusCode::OK);
        assert_eq!(issuing.headers()[CONTENT_TYPE], "application/pkix-cert");
        assert_eq!(body(issuing).await, &b"issuing"[..]);
        assert_eq!(body(get(&files, "/ca/root.crt")).await, &b"root"[..]);
        let chain = get(&files, "/ca/chain.pem");
        assert_eq!(chain.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(body(chain).await, &b"-----BEGIN CERTIFICATE-----\n"[..]);
        assert_eq!(get(&files, "/ca/other.crt").status(), StatusCode::NOT_FOUND);
        let post = respond(&files, &Method::POST, "/ca/issuing.crt", &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET");
    }

    fn with_crls(url: &str) -> (Site, Arc<Crls>) {
        with_delta_crls(url, None)
    }

    fn with_delta_crls(url: &str, delta_url: Option<&str>) -> (Site, Arc<Crls>) {
        let crls = Arc::new(Crls::new(delta_url.is_some()));
        let mut site = files();
        site.crls = Some(CrlRoutes::new(url, delta_url, 8, Arc::clone(&crls)).expect("routes"));
        (site, crls)
    }

    fn crl(number: u64) -> PublishedCrl {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        PublishedCrl {
            der: Bytes::from(vec![0x30, 0x00]),
            number,
            this_update: now - 10,
            next_update: now + 3_600,
        }
    }

    #[tokio::test]
    async fn serves_crls_at_their_distribution_point_with_cache_headers() {
        let (site, crls) = with_crls("http://127.0.0.1:8080/crl/issuing.crl");
        let early = get(&site, "/crl/issuing.crl");
        assert_eq!(early.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(early.headers()[RETRY_AFTER], "5");
        crls.set(CrlKey::complete(CrlSeries::All), crl(0x2a));
        let served = get(&site, "/crl/issuing.crl");
        assert_eq!(served.status(), StatusCode::OK);
        let h = served.headers().clone();
        assert_eq!(h[CONTENT_TYPE], "application/pkix-crl");
        assert_eq!(h[ETAG], "\"2a\"");
        let cache = h[CACHE_CONTROL].to_str().expect("ascii");
        let max_age: u64 = cache
            .split("max-age=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .expect("max-age");
        assert!((3_590..=3_600).contains(&max_age), "{cache}");
        assert!(httpdate::parse_http_date(h[EXPIRES].to_str().expect("ascii")).is_ok());
        assert_eq!(body(served).await, &[0x30, 0x00][..]);

        let conditional = |name, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_str(value).expect("header"));
            respond(&site, &Method::GET, "/crl/issuing.crl", &headers).status()
        };
        assert_eq!(
            conditional(IF_NONE_MATCH, "\"2a\""),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(conditional(IF_NONE_MATCH, "\"29\""), StatusCode::OK);
        let last = h[LAST_MODIFIED].to_str().expect("ascii");
        assert_eq!(
            conditional(IF_MODIFIED_SINCE, last),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            conditional(IF_MODIFIED_SINCE, "Mon, 01 Jan 2001 00:00:00 GMT"),
            StatusCode::OK
        );
        // A newer CRL changes the tag.
        crls.set(CrlKey::complete(CrlSeries::All), crl(0x2b));
        assert_eq!(conditional(IF_NONE_MATCH, "\"2a\""), StatusCode::OK);
        assert_eq!(get(&site, "/crl/other.crl").status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn partitioned_crls_are_served_by_number_and_the_whole_one_as_all() {
        let (site, crls) = with_crls("http://ca.test/crl/issuing-{partition}.crl");
        crls.set(CrlKey::complete(CrlSeries::Partition(7)), crl(1));
        crls.set(CrlKey::complete(CrlSeries::All), crl(2));
        assert_eq!(get(&site, "/crl/issuing-7.crl").status(), StatusCode::OK);
        assert_eq!(get(&site, "/crl/issuing-all.crl").headers()[ETAG], "\"2\"");
        assert_eq!(
            get(&site, "/crl/issuing-3.crl").status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a partition not built yet"
        );
        for bad in [
            "/crl/issuing-07.crl",
            "/crl/issuing-.crl",
            "/crl/issuing-x.crl",
        ] {
            assert_eq!(get(&site, bad).status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }

    #[tokio::test]
    async fn delta_crls_are_served_beside_the_complete_ones() {
        let (site, crls) = with_delta_crls(
            "http://ca.test/crl/issuing.crl",
            Some("http://ca.test/crl/issuing-delta.crl"),
        );
        assert_eq!(
            get(&site, "/crl/issuing-delta.crl").status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "not built yet"
        );
        crls.set(CrlKey::complete(CrlSeries::All), crl(5));
        crls.set(CrlKey::delta(CrlSeries::All), crl(6));
        assert_eq!(get(&site, "/crl/issuing.crl").headers()[ETAG], "\"5\"");
        let delta = get(&site, "/crl/issuing-delta.crl");
        assert_eq!(delta.status(), StatusCode::OK);
        let h = delta.headers();
        assert_eq!(h[ETAG], "\"6\"");
        assert_eq!(h[CONTENT_TYPE], "application/pkix-crl");
        for name in [LAST_MODIFIED, EXPIRES, CACHE_CONTROL] {
            assert!(h.contains_key(&name), "{name}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"6\""));
        let cached = respond(&site, &Method::GET, "/crl/issuing-delta.crl", &headers);
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

        // Partitioned: each partition's delta, and the whole issuer's.
        let (site, crls) = with_delta_crls(
            "http://ca.test/crl/issuing-{partition}.crl",
            Some("http://ca.test/crl/issuing-{partition}-delta.crl"),
        );
        crls.set(CrlKey::complete(CrlSeries::Partition(9)), crl(1));
        crls.set(CrlKey::delta(CrlSeries::Partition(9)), crl(2));
        crls.set(CrlKey::delta(CrlSeries::All), crl(3));
        assert_eq!(get(&site, "/crl/issuing-9.crl").headers()[ETAG], "\"1\"");
        assert_eq!(
            get(&site, "/crl/issuing-9-delta.crl").headers()[ETAG],
            "\"2\""
        );
        assert_eq!(
            get(&site, "/crl/issuing-all-delta.crl").headers()[ETAG],
            "\"3\""
        );
        assert_eq!(
            get(&site, "/crl/issuing-2-delta.crl").status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a configured partition's delta not built yet"
        );
        for bad in [
            "/crl/issuing-10-delta.crl",
            "/crl/issuing-09-delta.crl",
            "/crl/issuing--delta.crl",
            "/crl/issuing-delta.crl",
        ] {
            assert_eq!(get(&site, bad).status(), StatusCode::NOT_FOUND, "{bad}");
        }

        // Without delta CRLs there is nothing at the delta path.
        let (site, _) = with_crls("http://ca.test/crl/issuing.crl");
        assert_eq!(
            get(&site, "/crl/issuing-delta.crl").status(),
            StatusCode::NOT_FOUND
        );
    }

    /// One GET over a fresh connection; the raw response.
    async fn fetch(addr: std::net::SocketAddr, path: &'static str) -> String {
        let response = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).expect("write");
            let mut out = Vec::new();
            stream.read_to_end(&mut out).expect("read");
            out
        })
        .await
        .expect("client");
        String::from_utf8_lossy(&response).into_owned()
    }

    #[tokio::test]
    async fn serves_over_tcp_answers_503_while_sealed_and_stops_on_the_signal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = watch::channel(false);
        let slot = SiteSlot::fixed(files());
        let server = tokio::spawn(serve(listener, Arc::clone(&slot), stop_rx));
        let text = fetch(addr, "/ca/root.crt").await;
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("\r\n\r\nroot"), "{text}");
        slot.set(None);
        let text = fetch(addr, "/ca/root.crt").await;
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("retry-after: 10"), "{text}");
        assert!(text.ends_with("sealed\n"), "{text}");
        stop_tx.send(true).expect("send");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("stopped in time")
            .expect("task");
    }
}
