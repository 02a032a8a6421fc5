//! The server's HTTP listener (`--http-listen`): the log's read-only HTTP faces, beside gRPC.
//!
//! - [`tiles`]: `/checkpoint` and `/tile/…`, the log as C2SP tlog-tiles, read from RocksDB.
//! - [`metrics`]: `/metrics`, Prometheus text.
//!
//! Everything here reads; nothing on this listener can append to the log.

mod metrics;
pub mod tiles;

use std::future::Future;
use std::sync::Arc;

use axum::Router;

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
    /// Bodies of tiles served, immutable.
    pub tile_cache: Arc<tiles::TileCache>,
}

/// Bytes of tile bodies the HTTP listener keeps (about 250 gzipped bundles of 1 KiB entries and
/// as many hash tiles).
pub const TILE_CACHE_BYTES: usize = 64 << 20;

/// The router of the HTTP listener.
pub fn router(state: HttpState) -> Router {
    tiles::routes().merge(metrics::routes()).with_state(state)
}

/// Serves the HTTP faces on `listener` until `shutdown` completes; requests in flight finish.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve(
    state: HttpState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
