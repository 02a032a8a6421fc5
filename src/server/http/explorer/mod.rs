//! The web explorer: the log as pages anyone can read in a browser, and as JSON.
//!
//! | path                      | page                                                          |
//! |---------------------------|---------------------------------------------------------------|
//! | `/`                       | origin, size, the public checkpoint, the newest entries, search |
//! | `/search?q=…[&page=…]`    | search results ([`query`] says what the box takes)            |
//! | `/entry/<index>[?files=N]`| one entry: the declaration, related entries, raw views, the in-browser check |
//! | `/lineage/<name>[?limit=N]` | the lineage graph of a name, drawn as SVG by the server      |
//! | `/api/log`, `/api/search`, `/api/entry/<index>`, `/api/lineage/<name>` | the same as JSON |
//! | `/static/explorer.css`, `/static/verify.js` | the stylesheet and the check, embedded in the binary |
//!
//! The page paths also answer JSON when the request's `Accept` prefers `application/json`
//! ([`wants_json`]). `docs/explorer.md` documents both.
//!
//! Everything is read from the storage and search index the gRPC API reads ([`view`]), under
//! the public head (the checkpoint `/checkpoint` serves). Pages are rendered by askama
//! templates (`templates/`, checked at compile time, HTML-escaped by default); logged text goes
//! through [`text`]. Every response carries [`CONTENT_SECURITY_POLICY`] (no inline script or
//! style, nothing from another origin), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`, `Vary: Accept` and (but the static
//! assets) `Cache-Control: no-cache`: pages follow the head. JSON answers also carry
//! `Access-Control-Allow-Origin: *`: the log is public and read-only, so other sites may read it.

mod api;
mod lineage;
mod pages;
mod query;
mod text;
mod view;

use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::HttpState;
use crate::server::metrics::{ExplorerFormat, ExplorerPage};
use view::ViewError;

/// What the explorer shows of the log's identity.
#[derive(Clone, Debug)]
pub struct LogIdentity {
    pub origin: Arc<str>,
    /// The log's verifier key (`name+hash+base64`), offered as the default pinned key of the
    /// in-browser check.
    pub verifier_key: Arc<str>,
}

/// The policy on every explorer response: scripts, styles and images only from this origin,
/// no inline script or style, fetches only to this origin, forms only to it, no `<base>`, no
/// framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The explorer's routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/entry/{index}", get(pages::entry))
        .route("/lineage/{*name}", get(pages::lineage))
        .route("/api/log", get(api::log))
        .route("/api/search", get(api::search))
        .route("/api/entry/{index}", get(api::entry))
        .route("/api/lineage/{*name}", get(api::lineage))
        .route("/static/explorer.css", get(stylesheet))
        .route("/static/verify.js", get(script))
        .layer(middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Page paths answer HTML or JSON by the Accept header.
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    // Pages follow the head (an entry's proof is against the latest checkpoint); the static
    // assets set their own.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    let json = h
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    response
}

const CSS: &str = include_str!("assets/explorer.css");
const JS: &str = include_str!("assets/verify.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The assets change only with the binary; an hour keeps an upgrade visible soon.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Whether the request asks for JSON rather than a page: its `Accept` names
/// `application/json` with a higher quality than `text/html` (or names no `text/html`).
pub fn wants_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let quality = |wanted: &str| -> Option<f32> {
        accept
            .split(',')
            .filter_map(|part| {
                let mut params = part.split(';').map(str::trim);
                let media = params.next()?;
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                let q = params
                    .find_map(|p| p.strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
            .fold(None, |best: Option<f32>, q| {
                Some(best.map_or(q, |b| b.max(q)))
            })
    };
    match (quality("application/json"), quality("text/html")) {
        (Some(j), Some(h)) => j > h,
        (Some(j), None) => j > 0.0,
        _ => false,
    }
}

/// Errors of explorer requests, each with its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ExplorerError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
    /// Logged in full; the client is told only that the server failed.
    #[error("the server could not read the log")]
    Internal(String),
}

impl ExplorerError {
    pub fn status(&self) -> StatusCode {
        match self {
            ExplorerError::NotFound(_) => StatusCode::NOT_FOUND,
            ExplorerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ExplorerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ExplorerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ViewError> for ExplorerError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::NoHead => ExplorerError::Unavailable(e.to_string()),
            ViewError::NotInLog { .. } | ViewError::UnknownName(_) => {
                ExplorerError::NotFound(e.to_string())
            }
            ViewError::Storage(_) | ViewError::Proof(_) => {
                tracing::error!(error = %e, "explorer read failed");
                ExplorerError::Internal(e.to_string())
            }
        }
    }
}

impl From<query::QueryError> for ExplorerError {
    fn from(e: query::QueryError) -> Self {
        ExplorerError::BadRequest(e.to_string())
    }
}

/// Runs `work` (storage reads and rendering) on the blocking pool and records its duration
/// under `page` and `format`, whatever it answers.
async fn timed(
    state: &HttpState,
    page: ExplorerPage,
    format: ExplorerFormat,
    work: impl FnOnce() -> Response + Send + 'static,
) -> Response {
    let started = Instant::now();
    let response = tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "explorer task failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "explorer task failed\n").into_response()
    });
    state
        .metrics
        .explorer_render(page, format, started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn json_is_answered_only_when_preferred() {
        assert!(wants_json(&accept("application/json")));
        assert!(wants_json(&accept("application/json, text/plain")));
        assert!(wants_json(&accept("text/html;q=0.5, application/json")));
        assert!(!wants_json(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_json(&accept("text/html, application/json")));
        assert!(!wants_json(&accept("application/json;q=0")));
        assert!(!wants_json(&accept("*/*")));
        assert!(!wants_json(&HeaderMap::new()));
    }
}
