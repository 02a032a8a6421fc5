//! The explorer's HTML pages: each handler reads a [`view`] and renders it with an askama
//! template (`templates/*.html`, compiled and checked with the crate, every `{{ }}` escaped;
//! logged text through [`Shown`]). A page path asked for JSON answers as [`super::api`] does.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::api;
use super::lineage::{self, Graph, Layout};
use super::query::BoxQuery;
use super::text::{safe_href, script_json, ScriptJson, Shown};
use super::view::{self, EntryView, HomeView, SearchView};
use super::{timed, wants_json, ExplorerError, HttpState};
use crate::admission::declaration::{Declaration, ModelManifest};
use crate::admission::manifest::Resource;
use crate::server::metrics::{ExplorerFormat, ExplorerPage};
use crate::server::search::parse_page_token;

/// Logged text for element content ([`Shown`]).
pub fn shown<S: AsRef<str> + ?Sized>(s: &S) -> Shown<'_> {
    Shown(s.as_ref())
}

/// The link target of a logged URI, if it may be one ([`safe_href`]).
pub fn href<S: AsRef<str> + ?Sized>(s: &S) -> Option<&str> {
    safe_href(s.as_ref())
}

/// A digest as hex.
pub fn hex(d: &[u8; 32]) -> String {
    hex::encode(d)
}

/// Node box size, for the template.
pub fn node_w() -> u32 {
    lineage::NODE_W
}

pub fn node_h() -> u32 {
    lineage::NODE_H
}

/// `/search?q=<text>`, the text percent-encoded.
pub fn search_href(text: impl AsRef<str>) -> String {
    format!("/search?q={}", encode(text.as_ref()))
}

/// `/lineage/<name>`: a [`crate::admission::declaration::Name`] is `A-Z a-z 0-9 . _ - /`
/// only, so it needs no encoding; anything else is percent-encoded all the same.
pub fn lineage_href<S: AsRef<str> + ?Sized>(name: &S) -> String {
    let path: String = name
        .as_ref()
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/");
    format!("/lineage/{path}")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub page: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EntryParams {
    /// Page of the manifest's files, from 1.
    pub files: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LineageParams {
    pub limit: Option<usize>,
}

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    origin: &'a str,
    q: &'a str,
    message: String,
}

fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "explorer template failed");
            html_error(&ExplorerError::Internal(e.to_string()), "", "")
        }
    }
}

fn html_error(e: &ExplorerError, origin: &str, q: &str) -> Response {
    let page = ErrorPage {
        title: match e {
            ExplorerError::NotFound(_) => "Not found",
            ExplorerError::BadRequest(_) => "Cannot search that",
            ExplorerError::Unavailable(_) => "Not available yet",
            ExplorerError::Internal(_) => "Server error",
        },
        origin,
        q,
        message: e.to_string(),
    };
    let body = page.render().unwrap_or_else(|_| e.to_string());
    (
        e.status(),
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn html<T>(
    state: &HttpState,
    result: Result<T, ExplorerError>,
    q: &str,
    page: impl FnOnce(T) -> Response,
) -> Response {
    match result {
        Ok(v) => page(v),
        Err(e) => html_error(&e, &state.log.origin, q),
    }
}

fn format(headers: &HeaderMap) -> ExplorerFormat {
    if wants_json(headers) {
        ExplorerFormat::Json
    } else {
        ExplorerFormat::Html
    }
}

// ---- home ----

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    title: &'a str,
    origin: &'a str,
    q: &'a str,
    home: HomeView,
}

pub fn home_view(state: &HttpState) -> Result<HomeView, ExplorerError> {
    let head = state.head.latest();
    Ok(view::home(
        &state.store,
        head.as_deref(),
        &state.log.origin,
        &state.log.verifier_key,
    )?)
}

pub async fn home(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let f = format(&headers);
    let s = state.clone();
    timed(&state, ExplorerPage::Home, f, move || {
        let result = home_view(&s);
        if f == ExplorerFormat::Json {
            return api::json(result);
        }
        html(&s, result, "", |home| {
            render(&HomePage {
                title: "Transparency log",
                origin: &s.log.origin,
                q: "",
                home,
            })
        })
    })
    .await
}

// ---- search ----

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPageTemplate<'a> {
    title: &'a str,
    origin: &'a str,
    q: &'a str,
    view: SearchView,
}

pub fn search_view(state: &HttpState, p: &SearchParams) -> Result<SearchView, ExplorerError> {
    let text = p.q.as_deref().unwrap_or("");
    let query = BoxQuery::parse(text)?;
    let from = parse_page_token(p.page.as_deref().unwrap_or(""))
        .map_err(|e| ExplorerError::BadRequest(e.to_string()))?;
    let head = state
        .head
        .latest()
        .ok_or_else(|| ExplorerError::Unavailable("no checkpoint is public yet".into()))?;
    Ok(view::search(
        &state.store,
        &head,
        text.trim(),
        &query,
        from,
    )?)
}

pub async fn search(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(p): Query<SearchParams>,
) -> Response {
    let f = format(&headers);
    // A log index is a page of its own.
    if f == ExplorerFormat::Html && p.page.is_none() {
        if let Some(Ok(BoxQuery::Index(i))) = p.q.as_deref().map(BoxQuery::parse) {
            return Redirect::to(&format!("/entry/{i}")).into_response();
        }
    }
    let s = state.clone();
    timed(&state, ExplorerPage::Search, f, move || {
        let result = search_view(&s, &p);
        if f == ExplorerFormat::Json {
            return api::json(result);
        }
        let q = p.q.as_deref().unwrap_or("").trim();
        html(&s, result, q, |view| {
            render(&SearchPageTemplate {
                title: "Search",
                origin: &s.log.origin,
                q,
                view,
            })
        })
    })
    .await
}

// ---- entry ----

/// An entry as its page shows it, with the page of files asked for.
pub struct EntryPageView {
    pub entry: EntryView,
    pub files_page: usize,
}

#[derive(Template)]
#[template(path = "entry.html")]
struct EntryPage<'a> {
    title: String,
    origin: &'a str,
    q: &'a str,
    entry: EntryView,
    files: Vec<Resource>,
    /// From 1.
    files_page: usize,
    files_pages: usize,
    files_total: usize,
    /// The data of the in-browser check.
    check: ScriptJson,
    verifier_key: &'a str,
}

impl EntryPage<'_> {
    fn model(&self) -> Option<&crate::admission::declaration::ModelRelease> {
        match &self.entry.declaration {
            Some(Declaration::Model(m)) => Some(m),
            _ => None,
        }
    }

    fn dataset(&self) -> Option<&crate::admission::declaration::TrainingData> {
        match &self.entry.declaration {
            Some(Declaration::Dataset(d)) => Some(d),
            _ => None,
        }
    }

    fn detached(&self) -> Option<&crate::admission::declaration::DetachedManifest> {
        match self.model().map(|m| &m.manifest) {
            Some(ModelManifest::Detached(d)) => Some(d),
            _ => None,
        }
    }

    fn training_index(&self, i: &usize) -> Option<u64> {
        self.entry.training_data_indexes.get(*i).copied().flatten()
    }

    fn base_index(&self, i: &usize) -> Option<u64> {
        self.entry.base_model_indexes.get(*i).copied().flatten()
    }

    /// Whether the statement holds a character [`Shown`] boxes (a direction control).
    fn statement_has_hidden(&self) -> bool {
        self.entry
            .statement
            .as_deref()
            .is_some_and(|s| s.chars().any(super::text::is_hidden))
    }

    fn files_href(&self, page: usize) -> String {
        format!("/entry/{}?files={page}#files", self.entry.summary.index)
    }
}

pub fn entry_view(
    state: &HttpState,
    index: &str,
    p: &EntryParams,
) -> Result<EntryPageView, ExplorerError> {
    let index: u64 = index
        .parse()
        .map_err(|_| ExplorerError::NotFound(format!("{index:?} is not a log index")))?;
    let head = state
        .head
        .latest()
        .ok_or_else(|| ExplorerError::Unavailable("no checkpoint is public yet".into()))?;
    let entry = view::entry(&state.store, &head, &state.log.verifier_key, index)?;
    Ok(EntryPageView {
        entry,
        files_page: p.files.unwrap_or(1).max(1),
    })
}

pub async fn entry(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(index): Path<String>,
    Query(p): Query<EntryParams>,
) -> Response {
    let f = format(&headers);
    let s = state.clone();
    timed(&state, ExplorerPage::Entry, f, move || {
        if f == ExplorerFormat::Json {
            return api::json(api::entry_json(&s, &index));
        }
        html(&s, entry_view(&s, &index, &p), "", |v| {
            let (_, pages) = v.entry.files(0);
            let files_page = v.files_page.min(pages);
            let (files, _) = v.entry.files(files_page - 1);
            let files = files.to_vec();
            let files_total = v
                .entry
                .declaration
                .as_ref()
                .and_then(Declaration::manifest)
                .map_or(0, |m| m.resources.len());
            let check = script_json(&serde_json::json!({
                "index": v.entry.summary.index,
                "leaf_data": v.entry.leaf_data,
                "proof": v.entry.proof,
                "checkpoint": v.entry.checkpoint.note,
                "origin": v.entry.checkpoint.origin,
                "verifier_key": &*s.log.verifier_key,
            }));
            let title = match (&v.entry.summary.name, &v.entry.summary.version) {
                (Some(n), Some(ver)) => format!("{n}@{ver} (entry {})", v.entry.summary.index),
                _ => format!("Entry {}", v.entry.summary.index),
            };
            render(&EntryPage {
                title,
                origin: &s.log.origin,
                q: "",
                files,
                files_page,
                files_pages: pages,
                files_total,
                check,
                verifier_key: &s.log.verifier_key,
                entry: v.entry,
            })
        })
    })
    .await
}

// ---- lineage ----

#[derive(Template)]
#[template(path = "lineage.html")]
struct LineagePage<'a> {
    title: String,
    origin: &'a str,
    q: &'a str,
    graph: Graph,
    layout: Layout,
    more_href: Option<String>,
}

pub fn lineage_graph(
    state: &HttpState,
    name: &str,
    p: &LineageParams,
) -> Result<Graph, ExplorerError> {
    let head = state
        .head
        .latest()
        .ok_or_else(|| ExplorerError::Unavailable("no checkpoint is public yet".into()))?;
    if name.parse::<crate::admission::declaration::Name>().is_err() {
        return Err(ExplorerError::NotFound(
            "not a declaration name (segments of A-Z a-z 0-9 . _ - joined by '/')".into(),
        ));
    }
    let limit = p.limit.unwrap_or(lineage::DEFAULT_LIMIT);
    Ok(lineage::build(
        &state.store,
        name,
        head.checkpoint.size,
        limit,
    )?)
}

pub async fn lineage(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(p): Query<LineageParams>,
) -> Response {
    let f = format(&headers);
    let s = state.clone();
    timed(&state, ExplorerPage::Lineage, f, move || {
        let result = lineage_graph(&s, &name, &p);
        if f == ExplorerFormat::Json {
            return api::json(result);
        }
        html(&s, result, "", |graph| {
            let more_href = (graph.truncated() && graph.limit < lineage::MAX_LIMIT).then(|| {
                format!(
                    "{}?limit={}",
                    lineage_href(&graph.name),
                    (graph.limit * 2).min(lineage::MAX_LIMIT)
                )
            });
            render(&LineagePage {
                title: format!("Lineage of {}", graph.name),
                origin: &s.log.origin,
                q: "",
                layout: lineage::layout(&graph),
                graph,
                more_href,
            })
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_encoded() {
        assert_eq!(search_href("a b&c<d>"), "/search?q=a%20b%26c%3Cd%3E");
        assert_eq!(lineage_href("org/m-1.0_x"), "/lineage/org/m-1.0_x");
        assert_eq!(lineage_href("org/<x>"), "/lineage/org/%3Cx%3E");
    }
}
