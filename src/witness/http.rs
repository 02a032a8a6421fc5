//! The witness's HTTP face: `POST /add-checkpoint` (C2SP tlog-witness v1.0.0), and the one place
//! where a [`Refusal`] becomes a status code.
//!
//! | refusal                                   | status |
//! |-------------------------------------------|--------|
//! | body, note or checkpoint does not parse   | 400    |
//! | old size above the checkpoint's size      | 400    |
//! | no trusted key for the origin             | 404    |
//! | no trusted signature verifies             | 403    |
//! | old size is not the recorded size         | 409, `text/x.tlog.size` body: the recorded size |
//! | same size as recorded, another root       | 409 (v1.0.0; the current draft says 422)        |
//! | the consistency proof does not verify     | 422    |
//! | the record could not be written           | 500, nothing cosigned |
//!
//! A 200 body is the cosignature line(s), each ending in a newline.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::tlog::witness_protocol::{size_body, MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE};
use crate::witness::check::Refusal;
use crate::witness::{AddCheckpointError, Witness};

/// The router of a witness.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(witness)
}

/// Serves `witness` on `listener` until `shutdown` completes; requests in flight finish.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve(
    witness: Arc<Witness>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match witness.add_checkpoint(&body).await {
        Ok(lines) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            lines,
        )
            .into_response(),
        Err(AddCheckpointError::Refused(r)) => refusal(&r),
        Err(AddCheckpointError::Store(e)) => {
            tracing::error!(error = %e, "cannot record a checkpoint; nothing cosigned");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness cannot record checkpoints now\n".into(),
            )
        }
    }
}

fn refusal(r: &Refusal) -> Response {
    let status = match r {
        Refusal::Malformed(_) | Refusal::OldSizeAboveSize { .. } => StatusCode::BAD_REQUEST,
        Refusal::UnknownOrigin(_) => StatusCode::NOT_FOUND,
        Refusal::NotSigned { .. } => StatusCode::FORBIDDEN,
        Refusal::OldSizeMismatch { known, .. } => {
            return (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                size_body(*known),
            )
                .into_response()
        }
        Refusal::SameSizeOtherRoot { .. } => StatusCode::CONFLICT,
        Refusal::BadProof { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    text(status, format!("{r}\n"))
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
