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

use std::io::Write as _;

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
        None => not_found("no checkpoint is public yet (the witness policy's quorum has not cosigned one)"),
    }
}

async fn tile(State(state): State<HttpState>, Path(rest): Path<String>) -> Response {
    let Ok(tile) = TileId::parse(&format!("tile/{rest}")) else {
        return not_found("not a tile path");
    };
    let Some(head) = state.head.latest() else {
        return not_found("no checkpoint is public yet");
    };
    let store = state.store.clone();
    let size = head.checkpoint.size;
    let read = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, TileReadError> {
        if !tiles::is_public(&store, tile, size)? {
            return Ok(None);
        }
        let bytes = tiles::read(&store, tile)?;
        Ok(Some(match tile.kind {
            TileKind::Entries => gzip(&bytes),
            TileKind::Hashes { .. } => bytes,
        }))
    })
    .await;
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
