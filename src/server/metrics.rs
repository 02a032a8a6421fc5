//! The server's metrics registry: counters, gauges and fixed-bucket histograms kept in atomics,
//! one [`Metrics`] per server, shared as an `Arc` by the service, the sequencer, Tail streams and
//! the HTTP listener.
//!
//! It is not the exposition: `http/metrics.rs` renders it as Prometheus text. It does no I/O,
//! takes no lock and knows no gRPC type (a status code arrives as its number, gRPC's
//! `statuscodes.md`), so recording costs a few relaxed atomic adds and never allocates.
//! Values read while they are being recorded may be one observation apart from each other (a
//! histogram's sum and its buckets); each value on its own is exact.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The canonical gRPC status codes, indexed by their number (gRPC `doc/statuscodes.md`).
pub const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The index of UNKNOWN in [`GRPC_CODES`].
const UNKNOWN: usize = 2;

/// The rpcs of `glasslog.v1.TransparencyLog`, as metrics label them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    GetLogInfo,
    Submit,
    GetCheckpoint,
    GetEntries,
    GetInclusionProof,
    GetConsistencyProof,
    Search,
    Tail,
}

impl Rpc {
    /// Every rpc, in label order.
    pub const ALL: [Rpc; 8] = [
        Rpc::GetLogInfo,
        Rpc::Submit,
        Rpc::GetCheckpoint,
        Rpc::GetEntries,
        Rpc::GetInclusionProof,
        Rpc::GetConsistencyProof,
        Rpc::Search,
        Rpc::Tail,
    ];

    /// The rpcs whose duration is recorded: every unary one (a Tail stream lasts as long as
    /// its consumer wants).
    pub const UNARY: [Rpc; 7] = [
        Rpc::GetLogInfo,
        Rpc::Submit,
        Rpc::GetCheckpoint,
        Rpc::GetEntries,
        Rpc::GetInclusionProof,
        Rpc::GetConsistencyProof,
        Rpc::Search,
    ];

    /// The method name, as in the proto and in the `rpc` label.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::GetLogInfo => "GetLogInfo",
            Rpc::Submit => "Submit",
            Rpc::GetCheckpoint => "GetCheckpoint",
            Rpc::GetEntries => "GetEntries",
            Rpc::GetInclusionProof => "GetInclusionProof",
            Rpc::GetConsistencyProof => "GetConsistencyProof",
            Rpc::Search => "Search",
            Rpc::Tail => "Tail",
        }
    }

    /// The rpc named by a method name (`Submit`) or a gRPC path
    /// (`/glasslog.v1.TransparencyLog/Submit`); `None` for any other name.
    pub fn from_name(name: &str) -> Option<Rpc> {
        let method = name.rsplit('/').next().unwrap_or(name);
        Rpc::ALL.into_iter().find(|r| r.name() == method)
    }
}

/// Upper bounds (`le`) of the duration histograms, in microseconds: 100 µs to 10 s.
const SECONDS_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Upper bounds of the explorer's render histogram, in microseconds: 25 µs to 2.5 s (a page is
/// a few storage reads and a template).
const RENDER_BOUNDS_US: [u64; 16] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// The web explorer's pages, as metrics label them (`page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplorerPage {
    Home,
    Search,
    Entry,
    Lineage,
}

impl ExplorerPage {
    /// Every page, in label order.
    pub const ALL: [ExplorerPage; 4] = [
        ExplorerPage::Home,
        ExplorerPage::Search,
        ExplorerPage::Entry,
        ExplorerPage::Lineage,
    ];

    /// The `page` label.
    pub fn name(self) -> &'static str {
        match self {
            ExplorerPage::Home => "home",
            ExplorerPage::Search => "search",
            ExplorerPage::Entry => "entry",
            ExplorerPage::Lineage => "lineage",
        }
    }
}

/// How an explorer page was answered (`format`): HTML, or JSON (`/api/…`, or the page with
/// `Accept: application/json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplorerFormat {
    Html,
    Json,
}

impl ExplorerFormat {
    pub const ALL: [ExplorerFormat; 2] = [ExplorerFormat::Html, ExplorerFormat::Json];

    /// The `format` label.
    pub fn name(self) -> &'static str {
        match self {
            ExplorerFormat::Html => "html",
            ExplorerFormat::Json => "json",
        }
    }
}

/// Upper bounds of the batch size histogram, in entries: powers of two up to 4096 (four times
/// the default `max_batch`).
const BATCH_BOUNDS: [u64; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A histogram over fixed buckets of integer observations (microseconds, or a count).
#[derive(Debug)]
pub struct Histogram {
    /// Inclusive upper bounds, increasing; an implicit `+Inf` bucket follows.
    bounds: &'static [u64],
    /// Observations per bucket (not cumulative): `buckets[i]` counts those in
    /// `(bounds[i-1], bounds[i]]`, the last one those above every bound.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// Units of an observation per exposed unit (1e6 for microseconds → seconds). Dividing by
    /// it, rather than multiplying by its inverse, gives each bound's shortest decimal (0.0001,
    /// not 9.999999999999999e-5).
    per_unit: f64,
}

/// A histogram as read at one moment, cumulative as Prometheus exposes it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(le, observations ≤ le)` for each finite bound, in the exposed unit.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket and `_count`).
    pub count: u64,
    /// The sum of the observations, in the exposed unit.
    pub sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [u64], per_unit: f64) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            per_unit,
        }
    }

    fn seconds() -> Histogram {
        Histogram::new(&SECONDS_BOUNDS_US, 1e6)
    }

    /// Records one observation of `value` units: the first bucket whose bound is ≥ it.
    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|&b| b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration, in microseconds (saturating at `u64::MAX` µs).
    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// The cumulative counts; `count` is the sum of every bucket read, so it always equals the
    /// `+Inf` bucket.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (bound, n) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += n.load(Ordering::Relaxed);
            buckets.push((*bound as f64 / self.per_unit, cumulative));
        }
        let count = cumulative + self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count,
            sum: self.sum.load(Ordering::Relaxed) as f64 / self.per_unit,
        }
    }
}

/// The gauges kept by holding a [`Held`].
#[derive(Debug, Clone, Copy)]
enum Gauge {
    SequencerQueue,
    TailStreams,
}

/// One unit of a gauge, held while the thing it counts exists (a queued submission, an open
/// Tail stream) and given back on drop, however that thing ends.
#[derive(Debug)]
pub struct Held {
    metrics: Arc<Metrics>,
    gauge: Gauge,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics
            .gauge(self.gauge)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything the server counts. Create one with [`Metrics::new`] and share it.
#[derive(Debug)]
pub struct Metrics {
    /// Submit results, indexed by gRPC code number.
    submissions: [AtomicU64; GRPC_CODES.len()],
    /// Requests refused by rate limiting, indexed like [`Rpc::ALL`], then one for other names.
    rate_limited: [AtomicU64; Rpc::ALL.len() + 1],
    /// Durations of the unary rpcs, indexed like [`Rpc::UNARY`].
    rpc_seconds: [Histogram; Rpc::UNARY.len()],
    /// New entries per committed batch.
    batch_entries: Histogram,
    /// From a batch taken off the queue to its waiters answered.
    commit_seconds: Histogram,
    /// The batch's RocksDB write with its WAL synced.
    fsync_seconds: Histogram,
    /// Submissions handed to the sequencer (or waiting for room in its queue) and not yet
    /// taken into a batch.
    sequencer_queue: AtomicU64,
    tail_streams: AtomicU64,
    /// The size of the latest checkpoint the sequencer signed.
    checkpoint_size: AtomicU64,
    /// When it was signed, in Unix milliseconds.
    checkpoint_signed_ms: AtomicI64,
    /// Explorer responses, from the request to the body rendered, indexed by
    /// [`ExplorerPage::ALL`] × [`ExplorerFormat::ALL`].
    explorer_seconds: [Histogram; ExplorerPage::ALL.len() * ExplorerFormat::ALL.len()],
}

impl Metrics {
    /// A registry with every count at zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics {
            submissions: std::array::from_fn(|_| AtomicU64::new(0)),
            rate_limited: std::array::from_fn(|_| AtomicU64::new(0)),
            rpc_seconds: std::array::from_fn(|_| Histogram::seconds()),
            batch_entries: Histogram::new(&BATCH_BOUNDS, 1.0),
            commit_seconds: Histogram::seconds(),
            fsync_seconds: Histogram::seconds(),
            sequencer_queue: AtomicU64::new(0),
            tail_streams: AtomicU64::new(0),
            checkpoint_size: AtomicU64::new(0),
            checkpoint_signed_ms: AtomicI64::new(0),
            explorer_seconds: std::array::from_fn(|_| Histogram::new(&RENDER_BOUNDS_US, 1e6)),
        })
    }

    fn gauge(&self, gauge: Gauge) -> &AtomicU64 {
        match gauge {
            Gauge::SequencerQueue => &self.sequencer_queue,
            Gauge::TailStreams => &self.tail_streams,
        }
    }

    fn hold(self: &Arc<Self>, gauge: Gauge) -> Held {
        self.gauge(gauge).fetch_add(1, Ordering::Relaxed);
        Held {
            metrics: self.clone(),
            gauge,
        }
    }

    /// Counts one Submit answered with gRPC status `code` (its number; out of range: UNKNOWN).
    pub fn submission(&self, code: i32) {
        let i = usize::try_from(code)
            .ok()
            .filter(|&i| i < GRPC_CODES.len())
            .unwrap_or(UNKNOWN);
        self.submissions[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Submit results so far, `(code name, count)` for every gRPC code.
    pub fn submissions(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        GRPC_CODES
            .iter()
            .zip(&self.submissions)
            .map(|(name, n)| (*name, n.load(Ordering::Relaxed)))
    }

    /// Counts one request refused by rate limiting. `rpc` is the method name (`Submit`) or the
    /// gRPC path (`/glasslog.v1.TransparencyLog/Submit`); any other name (the HTTP listener
    /// passes `http`) counts under `http`.
    pub fn rate_limited(&self, rpc: &str) {
        let i = Rpc::from_name(rpc)
            .and_then(|r| Rpc::ALL.iter().position(|&a| a == r))
            .unwrap_or(Rpc::ALL.len());
        self.rate_limited[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Rate-limited requests so far, `(rpc label, count)`, the HTTP listener's (`http`) last.
    pub fn rate_limited_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Rpc::ALL
            .iter()
            .map(|r| r.name())
            .chain(["http"])
            .zip(&self.rate_limited)
            .map(|(name, n)| (name, n.load(Ordering::Relaxed)))
    }

    /// Records how long one unary rpc took; a Tail stream records nothing.
    pub fn rpc_duration(&self, rpc: Rpc, d: Duration) {
        if let Some(i) = Rpc::UNARY.iter().position(|&r| r == rpc) {
            self.rpc_seconds[i].observe_duration(d);
        }
    }

    /// Durations of the unary rpcs, `(rpc label, histogram)`.
    pub fn rpc_durations(&self) -> impl Iterator<Item = (&'static str, HistogramSnapshot)> + '_ {
        Rpc::UNARY
            .iter()
            .zip(&self.rpc_seconds)
            .map(|(r, h)| (r.name(), h.snapshot()))
    }

    /// Records how long the explorer took to answer for `page` in `format` (reads and render).
    pub fn explorer_render(&self, page: ExplorerPage, format: ExplorerFormat, d: Duration) {
        let p = ExplorerPage::ALL
            .iter()
            .position(|&x| x == page)
            .unwrap_or(0);
        let f = ExplorerFormat::ALL
            .iter()
            .position(|&x| x == format)
            .unwrap_or(0);
        self.explorer_seconds[p * ExplorerFormat::ALL.len() + f].observe_duration(d);
    }

    /// Explorer render durations, `(page label, format label, histogram)`.
    pub fn explorer_durations(
        &self,
    ) -> impl Iterator<Item = (&'static str, &'static str, HistogramSnapshot)> + '_ {
        ExplorerPage::ALL
            .iter()
            .flat_map(|p| ExplorerFormat::ALL.iter().map(move |f| (p, f)))
            .zip(&self.explorer_seconds)
            .map(|((p, f), h)| (p.name(), f.name(), h.snapshot()))
    }

    /// One unit of the sequencer queue gauge, for a submission from before it is sent until the
    /// sequencer takes it into a batch (or it is dropped unsent).
    pub fn queued(self: &Arc<Self>) -> Held {
        self.hold(Gauge::SequencerQueue)
    }

    /// Submissions waiting for the sequencer now.
    pub fn queue_depth(&self) -> u64 {
        self.sequencer_queue.load(Ordering::Relaxed)
    }

    /// One unit of the open Tail streams gauge, for as long as a stream's task runs.
    pub fn tail_stream(self: &Arc<Self>) -> Held {
        self.hold(Gauge::TailStreams)
    }

    /// Tail streams open now.
    pub fn tail_streams(&self) -> u64 {
        self.tail_streams.load(Ordering::Relaxed)
    }

    /// Records one committed batch that signed a checkpoint: its new entries, and how long it
    /// took from being taken off the queue to its waiters answered.
    pub fn batch(&self, entries: u64, commit: Duration) {
        self.batch_entries.observe(entries);
        self.commit_seconds.observe_duration(commit);
    }

    /// Records one batch's RocksDB write with its WAL synced.
    pub fn fsync(&self, d: Duration) {
        self.fsync_seconds.observe_duration(d);
    }

    /// Batch size, commit and fsync histograms.
    pub fn batch_entries(&self) -> HistogramSnapshot {
        self.batch_entries.snapshot()
    }

    pub fn commit_seconds(&self) -> HistogramSnapshot {
        self.commit_seconds.snapshot()
    }

    pub fn fsync_seconds(&self) -> HistogramSnapshot {
        self.fsync_seconds.snapshot()
    }

    /// Records the latest signed checkpoint: its size and its signing time (Unix ms).
    pub fn checkpoint(&self, size: u64, signed_ms: i64) {
        self.checkpoint_size.store(size, Ordering::Relaxed);
        self.checkpoint_signed_ms
            .store(signed_ms, Ordering::Relaxed);
    }

    /// The latest signed checkpoint's size.
    pub fn checkpoint_size(&self) -> u64 {
        self.checkpoint_size.load(Ordering::Relaxed)
    }

    /// Seconds from the latest checkpoint's signing to `now` (0 if the clock went back).
    pub fn checkpoint_age(&self, now: SystemTime) -> f64 {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let signed = self.checkpoint_signed_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(signed).max(0) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_on_a_bound_is_in_that_bucket_and_counts_are_cumulative() {
        let h = Histogram::new(&[1, 4, 16], 1.0);
        for v in [0, 1, 2, 4, 5, 16, 17, 1000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(1.0, 2), (4.0, 4), (16.0, 6)]);
        assert_eq!(s.count, 8);
        assert_eq!(s.sum, 1045.0);
    }

    #[test]
    fn durations_are_exposed_in_seconds() {
        let h = Histogram::seconds();
        h.observe_duration(Duration::from_micros(300));
        h.observe_duration(Duration::from_secs(20));
        let s = h.snapshot();
        assert_eq!(s.buckets[0], (0.0001, 0));
        assert_eq!(s.buckets[2], (0.0005, 1));
        assert_eq!(s.buckets.last(), Some(&(10.0, 1)));
        let labels: Vec<String> = s.buckets.iter().map(|b| b.0.to_string()).collect();
        assert_eq!(labels[..4], ["0.0001", "0.00025", "0.0005", "0.001"]);
        assert_eq!(s.count, 2);
        assert!((s.sum - 20.0003).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn held_gauges_come_back_on_drop() {
        let m = Metrics::new();
        let (a, b, t) = (m.queued(), m.queued(), m.tail_stream());
        assert_eq!((m.queue_depth(), m.tail_streams()), (2, 1));
        drop(a);
        drop(t);
        assert_eq!((m.queue_depth(), m.tail_streams()), (1, 0));
        drop(b);
        assert_eq!(m.queue_depth(), 0);
    }

    #[test]
    fn submissions_are_counted_by_code_number() {
        let m = Metrics::new();
        m.submission(0);
        m.submission(3);
        m.submission(3);
        m.submission(99);
        let counts: Vec<_> = m.submissions().filter(|&(_, n)| n > 0).collect();
        assert_eq!(
            counts,
            vec![("OK", 1), ("UNKNOWN", 1), ("INVALID_ARGUMENT", 2)]
        );
        assert_eq!(GRPC_CODES[8], "RESOURCE_EXHAUSTED");
        assert_eq!(GRPC_CODES[16], "UNAUTHENTICATED");
    }

    #[test]
    fn rate_limits_are_counted_by_method_or_path() {
        let m = Metrics::new();
        m.rate_limited("Submit");
        m.rate_limited("/glasslog.v1.TransparencyLog/Submit");
        m.rate_limited("http");
        let counts: Vec<_> = m.rate_limited_counts().filter(|&(_, n)| n > 0).collect();
        assert_eq!(counts, vec![("Submit", 2), ("http", 1)]);
    }

    #[test]
    fn explorer_renders_are_kept_by_page_and_format() {
        let m = Metrics::new();
        m.explorer_render(
            ExplorerPage::Entry,
            ExplorerFormat::Json,
            Duration::from_micros(40),
        );
        m.explorer_render(
            ExplorerPage::Entry,
            ExplorerFormat::Json,
            Duration::from_millis(3),
        );
        let all: Vec<_> = m.explorer_durations().collect();
        assert_eq!(all.len(), 8);
        for (page, format, h) in &all {
            let expected = if (*page, *format) == ("entry", "json") {
                2
            } else {
                0
            };
            assert_eq!(h.count, expected, "{page} {format}");
        }
        let (_, _, h) = all
            .iter()
            .find(|(p, f, _)| (*p, *f) == ("entry", "json"))
            .unwrap();
        assert_eq!(h.buckets[1], (0.00005, 1), "40 µs is under 50 µs");
        assert_eq!(h.buckets[6], (0.0025, 1), "3 ms is above 2.5 ms");
    }

    #[test]
    fn only_unary_rpcs_have_durations() {
        let m = Metrics::new();
        m.rpc_duration(Rpc::Search, Duration::from_millis(1));
        m.rpc_duration(Rpc::Tail, Duration::from_secs(1));
        let counts: Vec<_> = m.rpc_durations().map(|(r, h)| (r, h.count)).collect();
        assert_eq!(counts.len(), 7);
        assert!(counts.contains(&("Search", 1)));
        assert_eq!(counts.iter().map(|c| c.1).sum::<u64>(), 1);
    }

    #[test]
    fn checkpoint_age_counts_from_signing() {
        let m = Metrics::new();
        let signed = UNIX_EPOCH + Duration::from_secs(1_000);
        m.checkpoint(7, 1_000_000);
        assert_eq!(m.checkpoint_size(), 7);
        assert_eq!(m.checkpoint_age(signed + Duration::from_millis(2_500)), 2.5);
        assert_eq!(m.checkpoint_age(signed - Duration::from_secs(1)), 0.0);
    }
}
