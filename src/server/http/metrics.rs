//! `GET /metrics`: the server's state in the Prometheus text exposition format (version 0.0.4).
//!
//! It only renders: the counts are kept by [`crate::server::metrics::Metrics`] (and publication's
//! by [`crate::server::publisher::PublishStatus`]) where they happen.
//!
//! | metric                                   | type      | meaning |
//! |------------------------------------------|-----------|---------|
//! | `glasslog_head_size`                     | gauge     | entries under the public head (the checkpoint `/checkpoint` serves) |
//! | `glasslog_checkpoint_size`               | gauge     | entries under the latest checkpoint the sequencer signed |
//! | `glasslog_checkpoint_age_seconds`        | gauge     | seconds since that checkpoint was signed (the log signs only when entries arrive; after a restart, counted from its last entry's time) |
//! | `glasslog_submissions_total`             | counter   | Submit answers since start, by gRPC code (`code="OK"`, `"INVALID_ARGUMENT"`, …; every code is listed) |
//! | `glasslog_rpc_duration_seconds`          | histogram | duration of each unary rpc's handler, by `rpc` (Submit includes admission and the commit) |
//! | `glasslog_rate_limited_total`            | counter   | requests refused by rate limiting, by `rpc` (`http` for the HTTP listener) |
//! | `glasslog_sequencer_queue_depth`         | gauge     | submissions waiting for the sequencer (queued, or waiting for room in the queue) |
//! | `glasslog_sequencer_batch_entries`       | histogram | new entries per committed batch (one per checkpoint signed) |
//! | `glasslog_sequencer_commit_seconds`      | histogram | from a batch taken off the queue to its waiters answered |
//! | `glasslog_sequencer_fsync_seconds`       | histogram | a batch's RocksDB write with its WAL synced |
//! | `glasslog_tail_streams`                  | gauge     | Tail streams open |
//! | `glasslog_explorer_render_seconds`       | histogram | the web explorer's answers, from the request to the body rendered (storage reads included), by `page` (`home`, `search`, `entry`, `lineage`) and `format` (`html`, `json`) |
//! | `glasslog_witness_lag_entries`           | gauge     | with a witness policy: the latest checkpoint's size minus the witnessed head's (all of it before the first witnessed checkpoint) |
//! | `glasslog_publish_size`                  | gauge     | entries under the checkpoint in the publication bucket |
//! | `glasslog_publish_backlog_entries`       | gauge     | head size minus published size |
//! | `glasslog_publish_lag_seconds`           | summary   | from a checkpoint's publication in this server to its upload, over every checkpoint published since start (quantiles 0.5, 0.9, 0.99, 1) |
//! | `glasslog_publish_checkpoints_total`     | counter   | checkpoints published since start |
//! | `glasslog_publish_failures_total`        | counter   | failed publication attempts since start (retried) |
//! | `glasslog_publish_stopped`               | gauge     | 1 once publication stopped for good (see the log) |
//!
//! The publication metrics are there only with `--publish`, the witness lag only with
//! `--witness-policy`. Histogram buckets are cumulative and `_count` equals the `+Inf` bucket.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::HttpState;
use crate::server::head::Head;
use crate::server::metrics::{HistogramSnapshot, Metrics};

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
    server_metrics(&mut out, &state.metrics);
    if let Head::Witnessed(_) = state.head {
        gauge(
            &mut out,
            "glasslog_witness_lag_entries",
            "Entries under the latest checkpoint not yet under the witnessed head.",
            state.metrics.checkpoint_size().saturating_sub(head) as f64,
        );
    }
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

/// Everything [`Metrics`] keeps.
fn server_metrics(out: &mut String, m: &Metrics) {
    gauge(
        out,
        "glasslog_checkpoint_size",
        "Entries under the latest checkpoint the sequencer signed.",
        m.checkpoint_size() as f64,
    );
    gauge(
        out,
        "glasslog_checkpoint_age_seconds",
        "Seconds since the latest checkpoint was signed.",
        m.checkpoint_age(std::time::SystemTime::now()),
    );
    family_header(
        out,
        "glasslog_submissions_total",
        "Submit answers since start, by gRPC status code.",
        "counter",
    );
    for (code, n) in m.submissions() {
        let _ = writeln!(out, "glasslog_submissions_total{{code=\"{code}\"}} {n}");
    }
    let name = "glasslog_rpc_duration_seconds";
    family_header(out, name, "Duration of unary rpc handlers.", "histogram");
    for (rpc, h) in m.rpc_durations() {
        histogram_samples(out, name, &format!("rpc=\"{rpc}\","), &h);
    }
    family_header(
        out,
        "glasslog_rate_limited_total",
        "Requests refused by rate limiting since start, by rpc.",
        "counter",
    );
    for (rpc, n) in m.rate_limited_counts() {
        let _ = writeln!(out, "glasslog_rate_limited_total{{rpc=\"{rpc}\"}} {n}");
    }
    gauge(
        out,
        "glasslog_sequencer_queue_depth",
        "Submissions waiting for the sequencer.",
        m.queue_depth() as f64,
    );
    histogram(
        out,
        "glasslog_sequencer_batch_entries",
        "New entries per committed batch.",
        &m.batch_entries(),
    );
    histogram(
        out,
        "glasslog_sequencer_commit_seconds",
        "Seconds from a batch taken off the queue to its waiters answered.",
        &m.commit_seconds(),
    );
    histogram(
        out,
        "glasslog_sequencer_fsync_seconds",
        "Seconds of a batch's RocksDB write with its WAL synced.",
        &m.fsync_seconds(),
    );
    gauge(
        out,
        "glasslog_tail_streams",
        "Tail streams open.",
        m.tail_streams() as f64,
    );
    let name = "glasslog_explorer_render_seconds";
    family_header(
        out,
        name,
        "Seconds the web explorer took to answer, storage reads and rendering included.",
        "histogram",
    );
    for (page, format, h) in m.explorer_durations() {
        histogram_samples(
            out,
            name,
            &format!("page=\"{page}\",format=\"{format}\","),
            &h,
        );
    }
}

fn family_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

fn histogram(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot) {
    family_header(out, name, help, "histogram");
    histogram_samples(out, name, "", h);
}

/// The samples of one histogram; `labels` is empty or ends with a comma.
fn histogram_samples(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    for (le, n) in &h.buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", h.count);
    let labels = labels.trim_end_matches(',');
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}
