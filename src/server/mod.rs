//! The appliance's servers: gRPC (Ca, Sys, health, reflection) over TLS
//! 1.3, plain HTTP for CA certificates, and optionally Prometheus metrics.
//!
//! - [`run`] is `strongroom server --config FILE`: it loads the
//!   configuration, binds its listeners, and serves, sealed, until Ctrl-C or
//!   SIGTERM.
//! - [`serve`] runs the servers on listeners it is given, until a shutdown
//!   future completes; `strongroom dev` calls it too.
//! - [`seal`] holds the appliance's state: uninitialised, sealed or
//!   unsealed. While sealed, the Ca service answers `FAILED_PRECONDITION`
//!   and HTTP answers 503; only health, Sys and Seal ([`seal_service`])
//!   work. Unsealing (`K` shares) logs in to the HSM, loads the appliance
//!   and starts the CRL publisher and the OCSP presigner.
//!
//! Inside:
//! - [`ca_service`] and [`sys_service`] implement the `strongroom.v1`
//!   services; [`convert`] turns wire requests into domain values (and
//!   records into wire messages) at the edge; [`status`] is the one mapping
//!   from errors to gRPC statuses.
//! - [`access`] names each caller by its client certificate and admits or
//!   refuses its requests by the policies in force (reloaded on SIGHUP);
//!   [`audit`] records every request, refused ones included.
//! - [`issuance`] records, signs and completes certificates in batches on
//!   its own threads, two per HSM session.
//! - [`blocking`] runs every other HSM and store call on tokio's blocking
//!   threads, at most [`blocking::CALLS_PER_SESSION`] per HSM session at once.
//! - [`limit`] makes an oversized request fail with `INVALID_ARGUMENT`.
//! - [`http`] serves the CA certificates over HTTP/1.1.
//! - [`metrics`] counts and times every gRPC call ([`metrics::Metered`],
//!   around [`audit::Audited`]) and, with `[metrics]` configured, serves
//!   them with the appliance's state at `GET /metrics` on its own listener.
//! - [`tls`] terminates the gRPC server's TLS (handshakes accepted
//!   concurrently, the certificate swappable while serving) and, with
//!   `tls.auto_renew`, renews that certificate through the issuing CA while
//!   unsealed ([`tls::renew`]).
//!
//! Every gRPC service (including health and reflection) refuses requests
//! larger than `limits.max_request_bytes`.

pub(crate) mod access;
mod audit;
mod blocking;
mod ca_service;
mod convert;
pub(crate) mod crl;
pub(crate) mod edge;
mod http;
mod issuance;
mod limit;
mod metrics;
pub(crate) mod ocsp;
pub(crate) mod seal;
mod seal_service;
mod status;
mod sys_service;
pub(crate) mod tls;
mod transit_service;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use strongroom_proto::v1::ca_server::CaServer;
use strongroom_proto::v1::seal_server::SealServer;
use strongroom_proto::v1::sys_server::SysServer;
use strongroom_proto::v1::transit_server::TransitServer;
use tokio::sync::watch;
use tonic::transport::Server;

use self::access::AccessControl;
use self::audit::Audited;
pub(crate) use self::blocking::BlockingPool;
use self::ca_service::CaService;
use self::limit::SizeLimited;
use self::metrics::{Metered, RequestMetrics};
use self::seal::Seal;
use self::seal_service::SealService;
pub(crate) use self::status::Failure;
use self::sys_service::SysService;
pub(crate) use self::tls::ServerTls;
use self::transit_service::TransitService;
use crate::config::Config;

/// `t` in Unix seconds (0 before the epoch).
pub(crate) fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    unix(std::time::SystemTime::now())
}

/// Options of `strongroom server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub(crate) config: PathBuf,
}

/// `strongroom server --config FILE`: serves, sealed, until Ctrl-C.
pub(crate) fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let tls = ServerTls::load(&config.tls)?;
    let pool = BlockingPool::for_sessions(crate::appliance::pool_config(&config).sessions);
    let seal = Arc::new(Seal::new(config, pool)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        ignore_early_hangups();
        let config = seal.config();
        let grpc = tokio::net::TcpListener::bind(config.listen.grpc)
            .await
            .with_context(|| format!("cannot listen for gRPC on {}", config.listen.grpc))?;
        let http = tokio::net::TcpListener::bind(config.listen.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", config.listen.http))?;
        let metrics = match &config.metrics {
            None => None,
            Some(metrics) => Some(
                tokio::net::TcpListener::bind(metrics.listen)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {}", metrics.listen))?,
            ),
        };
        eprintln!("strongroom: gRPC on https://{}", grpc.local_addr()?);
        eprintln!("strongroom: HTTP on http://{}", http.local_addr()?);
        if let Some(metrics) = &metrics {
            eprintln!(
                "strongroom: metrics on http://{}/metrics",
                metrics.local_addr()?
            );
        }
        let status = seal.status().await;
        if status.initialized {
            eprintln!(
                "strongroom: sealed; {} of the {} shares of set {} unseal it \
                 (strongroom operator unseal)",
                status.threshold, status.shares, status.set_id
            );
        } else {
            eprintln!("strongroom: not initialised; run `strongroom operator init`");
        }
        let listeners = Listeners {
            grpc,
            http,
            metrics,
        };
        serve(Arc::clone(&seal), listeners, tls, shutdown_signal()).await
    })?;
    eprintln!("strongroom: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot watch for Ctrl-C; stop with SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = terminate => {}
        () = interrupt => {}
    }
    tracing::info!("shutting down");
}

/// From now on SIGHUP no longer ends the process (its default action):
/// [`serve`] reloads the policies on it once running; before, it is ignored.
pub(crate) fn ignore_early_hangups() {
    if let Err(e) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tracing::warn!(error = %e, "cannot take over SIGHUP");
    }
}

/// Reloads the access policies on every SIGHUP, recording each reload in
/// the audit trail. A policy file with an error changes nothing.
async fn reload_on_hangup(access: Arc<AccessControl>, trail: crate::audit::AuditTrail) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGHUP; policies reload only on restart");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let started = std::time::Instant::now();
        let (outcome, detail) = match access.reload() {
            Ok(count) => {
                tracing::info!(policies = count, "access policies reloaded");
                ("OK", None)
            }
            Err(e) => {
                tracing::error!(error = %e, "access policies not reloaded; the previous ones stay");
                ("INVALID_ARGUMENT", Some(e.to_string()))
            }
        };
        let entry = crate::audit::AuditEntry {
            caller: "SIGHUP".into(),
            source: "local".into(),
            operation: "strongroom.access/ReloadPolicies".into(),
            target: std::collections::BTreeMap::new(),
            outcome: outcome.into(),
            detail,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        if let Err(e) = trail.record(entry).await {
            tracing::error!(error = %e, "cannot audit a policy reload");
        }
    }
}

/// A reflection service builder knowing every service we serve.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(strongroom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The listeners [`serve`] serves on.
pub(crate) struct Listeners {
    /// gRPC over TLS.
    pub(crate) grpc: tokio::net::TcpListener,
    /// Plain HTTP: CA certificates, CRLs, OCSP.
    pub(crate) http: tokio::net::TcpListener,
    /// Prometheus metrics, when configured; without it no request metrics
    /// are kept.
    pub(crate) metrics: Option<tokio::net::TcpListener>,
}

/// Issuing threads per HSM working session: two, so that while one waits
/// for a store commit another signs (see `issuance`).
const THREADS_PER_SESSION: usize = 2;

/// Serves gRPC, HTTP and metrics on `listeners` until `shutdown`
/// completes, then seals (logs out of the HSM).
pub(crate) async fn serve(
    seal: Arc<Seal>,
    listeners: Listeners,
    tls: ServerTls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Listeners {
        grpc,
        http,
        metrics: metrics_listener,
    } = listeners;
    let limit = seal.config().limits.max_request_bytes;
    let pool = seal.pool().clone();

    let auth = &seal.config().auth;
    let access = Arc::new(
        AccessControl::new(
            auth.policies.clone(),
            auth.identity.clone(),
            seal.gate(),
            pool.clone(),
        )
        .context("cannot load the access policies")?,
    );
    let sessions = crate::appliance::pool_config(seal.config()).sessions;
    let pipeline = issuance::IssuancePipeline::start(sessions.saturating_mul(THREADS_PER_SESSION))
        .context("cannot start the issuance threads")?;
    let ca = CaServer::new(CaService::new(
        seal.gate(),
        pool.clone(),
        pipeline,
        Arc::clone(&access),
    ))
    .max_decoding_message_size(limit);
    let transit_limit = seal.config().transit.max_request_bytes;
    let transit = TransitServer::new(TransitService::new(seal.gate(), pool.clone()))
        .max_decoding_message_size(transit_limit);
    let seal_service =
        SealServer::new(SealService::new(Arc::clone(&seal))).max_decoding_message_size(limit);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<SysServer<SysService>>().await;
    health_reporter
        .set_serving::<SealServer<SealService>>()
        .await;
    seal.report_health(health_reporter).await;
    let health = health.max_decoding_message_size(limit);
    let reflection_v1 = reflection()
        .build_v1()
        .context("cannot build the gRPC reflection service")?
        .max_decoding_message_size(limit);
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("cannot build the gRPC reflection service")?
        .max_decoding_message_size(limit);

    let trail_config = seal.config().audit_trail();
    let trail = crate::audit::AuditTrail::open(trail_config.clone()).with_context(|| {
        format!(
            "cannot open the audit trail in {}",
            trail_config.dir.display()
        )
    })?;
    let requests = metrics_listener.as_ref().map(|_| RequestMetrics::new());
    let exporter = requests.as_ref().map(|requests| {
        Arc::new(metrics::endpoint::Exporter::new(
            requests,
            Arc::clone(&seal),
            pool.clone(),
            trail.clone(),
        ))
    });
    let sys = SysServer::new(SysService::new(Arc::clone(&seal), pool, trail.clone()))
        .max_decoding_message_size(limit);

    // Metered outside Audited: a call is counted with the status its caller
    // gets, an audit failure's included.
    let requests = requests.as_ref();
    let router = Server::builder()
        .add_service(Metered::new(
            Audited::new(
                SizeLimited::new(ca, limit),
                trail.clone(),
                Arc::clone(&access),
            ),
            requests,
        ))
        .add_service(Metered::new(
            Audited::new(
                SizeLimited::new(transit, transit_limit),
                trail.clone(),
                Arc::clone(&access),
            ),
            requests,
        ))
        .add_service(Metered::new(
            Audited::new(
                SizeLimited::new(sys, limit),
                trail.clone(),
                Arc::clone(&access),
            ),
            requests,
        ))
        .add_service(Metered::new(
            Audited::new(
                SizeLimited::new(seal_service, limit),
                trail.clone(),
                Arc::clone(&access),
            ),
            requests,
        ))
        .add_service(Metered::new(
            Audited::new(
                SizeLimited::new(health, limit),
                trail.clone(),
                Arc::clone(&access),
            ),
            requests,
        ))
        .add_service(Metered::new(
            Audited::new(
                SizeLimited::new(reflection_v1, limit),
                trail.clone(),
                Arc::clone(&access),
            ),
            requests,
        ))
        .add_service(Metered::new(
            Audited::new(
                SizeLimited::new(reflection_v1alpha, limit),
                trail.clone(),
                Arc::clone(&access),
            ),
            requests,
        ));

    let reloading = tokio::spawn(reload_on_hangup(Arc::clone(&access), trail.clone()));
    if seal.config().tls.auto_renew {
        seal.renew_tls_with(Arc::new(tls::renew::Renewal::new(
            seal.config().tls.clone(),
            Arc::clone(tls.certificate()),
            trail.clone(),
        )))
        .await;
    }

    // One stop signal for every server. The trigger owns the sender: when it
    // is aborted (gRPC ended on its own), the dropped sender stops the others
    // too.
    let (stop_tx, stop_rx) = watch::channel(false);
    let trigger = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let http_task = tokio::spawn(http::serve(http, seal.sites(), stop_rx.clone()));
    let metrics_task = match (metrics_listener, exporter) {
        (Some(listener), Some(exporter)) => Some(tokio::spawn(metrics::endpoint::serve(
            listener,
            exporter,
            stop_rx.clone(),
        ))),
        _ => None,
    };

    // TLS is terminated by `tls`, which hands tonic finished handshakes.
    let (incoming, accepting) = tls::incoming(grpc, &tls, stop_rx.clone());
    let served = router
        .serve_with_incoming_shutdown(incoming, http::stopped(stop_rx))
        .await;
    accepting.abort();
    trigger.abort();
    reloading.abort();
    let http_done = http_task.await;
    let metrics_done = match metrics_task {
        Some(task) => task.await,
        None => Ok(()),
    };
    seal.shutdown().await;
    served.context("the gRPC server failed")?;
    http_done.context("the HTTP server failed")?;
    metrics_done.context("the metrics server failed")?;
    Ok(())
}
