//! The gRPC request body, read whole before tonic decodes it.
//!
//! tonic reserves a message's announced length as soon as its 5-byte prefix arrives (gRPC over
//! HTTP/2, "Length-Prefixed-Message"): a client that announces a 3 MB message and sends nothing
//! more holds 3 MB of this process per stream. Every rpc of the log takes exactly one request
//! message, so its body is read here first, keeping only the bytes that arrived (at most
//! `limit` of them, within the request timeout); tonic then decodes a complete message.
//!
//! Only for services whose rpcs are client-unary: a client-streaming rpc would wait here for
//! the end of a stream its client keeps open (the reflection service is served without it).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::Status;

/// A service whose request bodies are read whole, within `limit` bytes and `timeout`.
#[derive(Clone)]
pub struct WholeBody<S> {
    inner: S,
    limit: usize,
    /// Says which limit a client exceeded, in the client's terms.
    limit_message: Arc<str>,
    timeout: Duration,
}

impl<S> WholeBody<S> {
    /// `limit` counts the gRPC framing (5 bytes per message) with the message; `limit_message`
    /// is the status message of a request over it.
    pub fn new(inner: S, limit: usize, limit_message: String, timeout: Duration) -> WholeBody<S> {
        WholeBody {
            inner,
            limit,
            limit_message: limit_message.into(),
            timeout,
        }
    }
}

impl<S: NamedService> NamedService for WholeBody<S> {
    const NAME: &'static str = S::NAME;
}

type Reply = Result<http::Response<Body>, Infallible>;

impl<S> tower_service::Service<http::Request<Body>> for WholeBody<S>
where
    S: tower_service::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Reply> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is not necessarily ready; the one poll_ready readied is the one called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (limit, timeout, message) = (self.limit, self.timeout, self.limit_message.clone());
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let read = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
            let bytes = match read {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) if e.is::<LengthLimitError>() => {
                    return Ok(Status::resource_exhausted(message.to_string()).into_http());
                }
                Ok(Err(e)) => {
                    return Ok(Status::cancelled(format!("request body: {e}")).into_http())
                }
                Err(_) => {
                    return Ok(Status::deadline_exceeded(format!(
                        "the request was not received within {timeout:?}"
                    ))
                    .into_http());
                }
            };
            let request = http::Request::from_parts(parts, Body::new(Full::new(bytes)));
            inner.call(request).await
        })
    }
}
