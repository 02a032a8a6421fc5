//! The log's side of C2SP tlog-witness v1.0.0: one `add-checkpoint` request to one witness, and
//! what its answer means. HTTP/1.1 over plain TCP (`http://` submission prefixes); a request
//! that takes longer than [`REQUEST_TIMEOUT`] is abandoned.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::tlog::witness_protocol::{
    parse_cosignature_lines, parse_size_body, AddCheckpoint, SIZE_CONTENT_TYPE,
};

/// The longest a witness may take to answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read (cosignature lines are ~100 bytes each).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a witness answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200: its signature lines (not yet verified).
    Cosigned(Vec<String>),
    /// 409 with `text/x.tlog.size`: the size of the latest checkpoint it cosigned.
    KnownSize(u64),
    /// 409 without a size: it cosigned another root for this size (the log forked, or the
    /// witness is wrong).
    Conflict(String),
    /// Any other answer, or none.
    Failed(String),
}

/// An HTTP client for witnesses; cheap to clone, keeps connections alive.
#[derive(Clone)]
pub struct WitnessClient {
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Default for WitnessClient {
    fn default() -> Self {
        WitnessClient {
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl WitnessClient {
    /// Sends `req` to `<prefix>/add-checkpoint`.
    pub async fn add_checkpoint(&self, prefix: &str, req: &AddCheckpoint) -> Answer {
        let url = format!("{}/add-checkpoint", prefix.trim_end_matches('/'));
        let request = match Request::builder()
            .method(Method::POST)
            .uri(&url)
            .body(Full::new(Bytes::from(req.to_body())))
        {
            Ok(r) => r,
            Err(e) => return Answer::Failed(format!("bad witness URL {url}: {e}")),
        };
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let size_type = response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(SIZE_CONTENT_TYPE.as_bytes()));
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, size_type, body))
        };
        let (status, size_type, body) = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await
        {
            Err(_) => return Answer::Failed(format!("no answer within {REQUEST_TIMEOUT:?}")),
            Ok(Err(e)) => return Answer::Failed(e),
            Ok(Ok(r)) => r,
        };
        let text = || {
            String::from_utf8_lossy(&body)
                .trim_end()
                .chars()
                .take(300)
                .collect::<String>()
        };
        match status {
            StatusCode::OK => match parse_cosignature_lines(&body) {
                Ok(lines) => Answer::Cosigned(lines),
                Err(e) => Answer::Failed(format!("200 with an unreadable body: {e}")),
            },
            StatusCode::CONFLICT if size_type => match parse_size_body(&body) {
                Ok(size) => Answer::KnownSize(size),
                Err(e) => Answer::Failed(format!("409 with an unreadable size: {e}")),
            },
            StatusCode::CONFLICT => Answer::Conflict(text()),
            status => Answer::Failed(format!("{status}: {}", text())),
        }
    }
}
