//! `GET /checkpoint` and `GET /tile/<L>/<N>[.p/<W>]`, `GET /tile/entries/<N>[.p/<W>]`: the log
//! as C2SP tlog-tiles, straight from RocksDB (<https://c2sp.org/tlog-tiles>).
//!
//! The checkpoint is the public head ([`Head`]): the same signed note gRPC's GetCheckpoint
//! serves (the witnessed one, with cosignatures, when the log has a witness policy). A tile is
//! served only if that head makes it public ([`crate::server::tiles::is_public`]); anything else,
//! including every tile beyond the head and every empty tile, is 404.
//!
//! | resource        | Content-Type                | Cache-Control                          |
//! |-----------------|-----------------------------|----------------------------------------|
//! | checkpoint      | `text/plain; charset=utf-8` | `no-cache, max-age=0` (it changes)     |
//! | hash tile       | `application/octet-stream`  | `public, max-age=31536000, immutable`  |
//! | entry bundle    | `application/octet-stream`, `Content-Encoding: gzip` | as tiles      |
//!
//! Tiles never change once public, so their response bodies (bundles already gzipped) are kept
//! in a cache bounded in bytes ([`TileCache`]); a tile is read from RocksDB and compressed once
//! while it stays in the cache.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::Mutex;

use bytes::Bytes;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::HttpState;
use crate::server::tiles::{self, TileReadError};
use crate::tlog::tiles::{
    TileId, TileKind, CHECKPOINT_CACHE, CHECKPOINT_CONTENT_TYPE, TILE_CACHE, TILE_CONTENT_TYPE,
};

/// Response bodies of public tiles, at most `max_bytes` of them, the oldest inserted evicted
/// first. Keyed by tile (a partial tile is its own key: it too is immutable).
pub struct TileCache {
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    bodies: HashMap<TileId, Bytes>,
    order: VecDeque<TileId>,
    bytes: usize,
}

impl TileCache {
    pub fn new(max_bytes: usize) -> TileCache {
        TileCache {
            max_bytes,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn get(&self, tile: &TileId) -> Option<Bytes> {
        self.inner
            .lock()
            .expect("not poisoned")
            .bodies
            .get(tile)
            .cloned()
    }

    fn put(&self, tile: TileId, body: Bytes) {
        if body.len() > self.max_bytes {
            return;
        }
        let mut c = self.inner.lock().expect("not poisoned");
        if c.bodies.contains_key(&tile) {
            return;
        }
        c.bytes += body.len();
        c.bodies.insert(tile, body);
        c.order.push_back(tile);
        while c.bytes > self.max_bytes {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(b) = c.bodies.remove(&old) {
                c.bytes -= b.len();
            }
        }
    }
}

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
}

async fn checkpoint(State(state): State<HttpState>) -> Response {
    match state.head.latest() {
        Some(head) => (
            [
                (header::CONTENT_TYPE, CHECKPOINT_CONTENT_TYPE),
                (header::CACHE_CONTROL, CHECKPOINT_CACHE),
            ],
            head.note.clone(),
        )
            .into_response(),
        None => not_found(
            "no checkpoint is public yet (the witness policy's quorum has not cosigned one)",
        ),
    }
}

async fn tile(State(state): State<HttpState>, Path(rest): Path<String>) -> Response {
    let Ok(tile) = TileId::parse(&format!("tile/{rest}")) else {
        return not_found("not a tile path");
    };
    let Some(head) = state.head.latest() else {
        return not_found("no checkpoint is public yet");
    };
    let size = head.checkpoint.size;
    // A cached tile was public under an earlier head, so it is under this one (heads only grow;
    // a witnessed head never goes below a size it published).
    let read = match state.tile_cache.get(&tile) {
        Some(body) => Ok(Ok(Some(body))),
        None => {
            let store = state.store.clone();
            tokio::task::spawn_blocking(move || -> Result<Option<Bytes>, TileReadError> {
                if !tiles::is_public(&store, tile, size)? {
                    return Ok(None);
                }
                let bytes = tiles::read(&store, tile)?;
                Ok(Some(Bytes::from(match tile.kind {
                    TileKind::Entries => gzip(&bytes),
                    TileKind::Hashes { .. } => bytes,
                })))
            })
            .await
        }
    };
    if let Ok(Ok(Some(body))) = &read {
        state.tile_cache.put(tile, body.clone());
    }
    let bytes = match read {
        Ok(Ok(Some(bytes))) => bytes,
        Ok(Ok(None)) => return not_found("beyond the log's public checkpoint"),
        Ok(Err(e)) => {
            tracing::error!(tile = %tile.path(), error = %e, "cannot serve a tile");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read this tile\n").into_response();
        }
        Err(e) => {
            tracing::error!(tile = %tile.path(), error = %e, "tile task failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read this tile\n").into_response();
        }
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, TILE_CONTENT_TYPE),
            (header::CACHE_CONTROL, TILE_CACHE),
        ],
        bytes,
    )
        .into_response();
    if tile.kind == TileKind::Entries {
        // "Logs MAY use Content-Encoding: gzip with no negotiation."
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("writing to a Vec");
    e.finish().expect("writing to a Vec")
}

fn not_found(why: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}
