//! `GET /metrics`: the server's state in the Prometheus text exposition format (version 0.0.4).
//!
//! | metric                                   | type    | meaning |
//! |------------------------------------------|---------|---------|
//! | `glasslog_head_size`                     | gauge   | entries under the public head (the checkpoint `/checkpoint` serves) |
//! | `glasslog_publish_size`                  | gauge   | entries under the checkpoint in the publication bucket |
//! | `glasslog_publish_backlog_entries`       | gauge   | head size minus published size |
//! | `glasslog_publish_lag_seconds`           | summary | from a checkpoint's publication in this server to its upload, over every checkpoint published since start (quantiles 0.5, 0.9, 0.99, 1) |
//! | `glasslog_publish_checkpoints_total`     | counter | checkpoints published since start |
//! | `glasslog_publish_failures_total`        | counter | failed publication attempts since start (retried) |
//! | `glasslog_publish_stopped`               | gauge   | 1 once publication stopped for good (see the log) |

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::HttpState;

pub fn routes() -> Router<HttpState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let mut out = String::new();
    let head = state.head.latest().map_or(0, |h| h.checkpoint.size);
    gauge(
        &mut out,
        "glasslog_head_size",
        "Entries under the public head.",
        head as f64,
    );
    if let Some(p) = &state.publish {
        let published = p.published_size.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "glasslog_publish_size",
            "Entries under the published checkpoint.",
            published as f64,
        );
        gauge(
            &mut out,
            "glasslog_publish_backlog_entries",
            "Entries under the head not yet published.",
            head.saturating_sub(published) as f64,
        );
        {
            let h = p.lag_us.lock().expect("not poisoned");
            let name = "glasslog_publish_lag_seconds";
            let _ = write!(
                out,
                "# HELP {name} Seconds from a checkpoint's publication in this server to its upload.\n# TYPE {name} summary\n"
            );
            for q in [0.5, 0.9, 0.99, 1.0] {
                let v = if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(q) as f64 / 1e6
                };
                let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {v}");
            }
            let sum = h.mean() * h.len() as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {}", h.len());
        }
        counter(
            &mut out,
            "glasslog_publish_checkpoints_total",
            "Checkpoints published since start.",
            p.published_count.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "glasslog_publish_failures_total",
            "Failed publication attempts since start.",
            p.failures.load(Ordering::Relaxed),
        );
        let stopped = p.stopped.lock().expect("not poisoned").is_some();
        gauge(
            &mut out,
            "glasslog_publish_stopped",
            "1 once publication stopped for good.",
            if stopped { 1.0 } else { 0.0 },
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
    );
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
    );
}
