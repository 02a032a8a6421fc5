//! The explorer as JSON: `/api/log`, `/api/search?q=…[&page=…]`, `/api/entry/<index>`,
//! `/api/lineage/<name>[?limit=N]`; the page paths answer the same for `Accept:
//! application/json`. Field by field in `docs/explorer.md`. An error is `{"error": "…"}` with
//! the page's status code.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};

use super::pages::{self, EntryParams, LineageParams, SearchParams};
use super::{timed, ExplorerError, HttpState};
use crate::server::metrics::{ExplorerFormat, ExplorerPage};

/// `value` as a JSON response.
pub fn json_ok(value: &impl Serialize) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => json_error(&ExplorerError::Internal(e.to_string())),
    }
}

/// An error as JSON, with its status.
pub fn json_error(e: &ExplorerError) -> Response {
    let body = serde_json::to_vec(&json!({ "error": e.to_string() })).unwrap_or_default();
    (
        e.status(),
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

pub fn json<T: Serialize>(result: Result<T, ExplorerError>) -> Response {
    match result {
        Ok(v) => json_ok(&v),
        Err(e) => json_error(&e),
    }
}

pub async fn log(State(state): State<HttpState>) -> Response {
    let s = state.clone();
    timed(
        &state,
        ExplorerPage::Home,
        ExplorerFormat::Json,
        move || json(pages::home_view(&s)),
    )
    .await
}

pub async fn search(State(state): State<HttpState>, Query(p): Query<SearchParams>) -> Response {
    let s = state.clone();
    timed(
        &state,
        ExplorerPage::Search,
        ExplorerFormat::Json,
        move || json(pages::search_view(&s, &p)),
    )
    .await
}

pub async fn entry(State(state): State<HttpState>, Path(index): Path<String>) -> Response {
    let s = state.clone();
    timed(
        &state,
        ExplorerPage::Entry,
        ExplorerFormat::Json,
        move || json(entry_json(&s, &index)),
    )
    .await
}

/// The entry view, with its statement's predicate also given parsed.
pub fn entry_json(state: &HttpState, index: &str) -> Result<Value, ExplorerError> {
    let view = pages::entry_view(state, index, &EntryParams::default())?;
    let mut value =
        serde_json::to_value(&view.entry).map_err(|e| ExplorerError::Internal(e.to_string()))?;
    let predicate = view
        .entry
        .statement
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|mut s| s.get_mut("predicate").map(Value::take));
    value["predicate"] = predicate.unwrap_or(Value::Null);
    Ok(value)
}

pub async fn lineage(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    Query(p): Query<LineageParams>,
) -> Response {
    let s = state.clone();
    timed(
        &state,
        ExplorerPage::Lineage,
        ExplorerFormat::Json,
        move || json(pages::lineage_graph(&s, &name, &p)),
    )
    .await
}
