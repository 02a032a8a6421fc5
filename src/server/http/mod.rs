//! The server's HTTP listener (`--http-listen`): the log's read-only HTTP faces, beside gRPC.
//!
//! - [`tiles`]: `/checkpoint` and `/tile/…`, the log as C2SP tlog-tiles, read from RocksDB.
//! - [`metrics`]: `/metrics`, Prometheus text.
//! - [`explorer`]: the web explorer (`/`, `/search`, `/entry/…`, `/lineage/…`, `/api/…`).
//!
//! Everything here reads; nothing on this listener can append to the log.

pub mod explorer;
mod metrics;
pub mod tiles;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::server::config::{TransportConfig, MAX_CONNECTION_AGE_GRACE, MAX_HEADER_LIST_BYTES};
use crate::server::ratelimit::{self, Limited, Rates};
use crate::server::transport::Incoming;

use crate::server::head::Head;
use crate::server::publisher::PublishStatus;
use crate::server::storage::Store;

/// What the HTTP faces read.
#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<Store>,
    pub head: Head,
    /// Publication's progress, when the log publishes its tiles.
    pub publish: Option<Arc<PublishStatus>>,
    /// The server's counters, gauges and histograms, rendered at `/metrics`.
    pub metrics: Arc<crate::server::metrics::Metrics>,
    /// The server's rate limits: every request on this listener is a read, counted in the
    /// same per-address buckets as gRPC reads.
    pub rates: Arc<Rates>,
    /// Bodies of tiles served, immutable.
    pub tile_cache: Arc<tiles::TileCache>,
    /// The log's origin and key, as the explorer shows them.
    pub log: explorer::LogIdentity,
}

/// Bytes of tile bodies the HTTP listener keeps (about 250 gzipped bundles of 1 KiB entries and
/// as many hash tiles).
pub const TILE_CACHE_BYTES: usize = 64 << 20;

/// The router of the HTTP listener.
pub fn router(state: HttpState) -> Router {
    tiles::routes()
        .merge(metrics::routes())
        .merge(explorer::routes())
        .with_state(state)
}

/// The answer to a request over the per-address read limit: 429 with `Retry-After` in whole
/// seconds, rounded up (RFC 9110 §10.2.3), and the limit named in the body.
fn too_many_requests(limited: &Limited) -> axum::response::Response {
    use axum::response::IntoResponse;
    let retry_after =
        limited.retry_after.as_secs() + u64::from(limited.retry_after.subsec_nanos() > 0);
    (
        http::StatusCode::TOO_MANY_REQUESTS,
        [(http::header::RETRY_AFTER, retry_after.to_string())],
        format!("{limited}\n"),
    )
        .into_response()
}

/// Serves the HTTP faces on the connections of `incoming` (HTTP/1.1, and HTTP/2 by prior
/// knowledge or ALPN) until `shutdown` completes; requests in flight then finish.
///
/// Each connection has `request_timeout` to send a request's headers (also between requests on
/// a kept-alive HTTP/1.1 connection), is bounded in concurrent HTTP/2 streams, and is asked to
/// close after `max_connection_age`, as on the gRPC listener. Every request is a read under
/// the per-address read limit when one is set ([`too_many_requests`] otherwise).
pub async fn serve(
    state: HttpState,
    mut incoming: Incoming,
    transport: &TransportConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let rates = state.rates.clone();
    let metrics = state.metrics.clone();
    let router = router(state);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(transport.request_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(transport.max_concurrent_streams)
        .keep_alive_interval(transport.keepalive_interval)
        .keep_alive_timeout(transport.keepalive_interval / 3)
        .max_header_list_size(MAX_HEADER_LIST_BYTES);
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    let max_age = transport.max_connection_age;
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = incoming.next() => c,
            () = &mut shutdown => break,
        };
        let Some(conn) = conn else { break };
        let (builder, mut closing) = (builder.clone(), closing.clone());
        let peer = conn.peer().addr;
        let client = ratelimit::client_key(peer.ip());
        let (rates, metrics, router) = (rates.clone(), metrics.clone(), router.clone());
        let service = hyper::service::service_fn(move |req| {
            let refused = rates
                .reads_per_ip
                .as_ref()
                .and_then(|l| l.check(&client).err());
            let mut router = router.clone();
            let metrics = metrics.clone();
            async move {
                if let Some(limited) = refused {
                    metrics.rate_limited("http");
                    return Ok(too_many_requests(&limited));
                }
                // A Router is always ready: no poll_ready needed.
                tower_service::Service::call(&mut router, req).await
            }
        });
        connections.spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(conn), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                r = connection.as_mut() => Some(r),
                _ = closing.wait_for(|&c| c) => None,
                () = tokio::time::sleep(max_age) => None,
            };
            let result = match ended {
                Some(r) => r,
                None => {
                    connection.as_mut().graceful_shutdown();
                    match tokio::time::timeout(MAX_CONNECTION_AGE_GRACE, connection).await {
                        Ok(r) => r,
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "HTTP connection ended");
            }
        });
        // Reap finished connections so the set does not grow with the connections served.
        while connections.try_join_next().is_some() {}
    }
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
}
