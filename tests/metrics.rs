//! `GET /metrics` against the real server: the exposition parses as Prometheus text (every
//! sample `name{labels} value` under its family's HELP and TYPE, histogram buckets cumulative
//! with `_count` equal to the `+Inf` bucket), and the counts match what the test did.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::http::get;
use common::{Publisher, TestServer};
use glasslog::admission::keys::KeyType;
use glasslog::proto::{self, get_inclusion_proof_request::Leaf, search_request::Query};
use tonic::Code;

/// One scrape: every sample by its name and labels as written (`name{a="b"}`).
struct Scrape {
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series}"))
    }
}

/// The family a sample belongs to: a histogram's `_bucket`, `_sum`, `_count` and a summary's
/// `_sum`, `_count` are under the family name.
fn family_of<'a>(name: &'a str, families: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families.contains_key(base) {
                return base;
            }
        }
    }
    name
}

/// Parses the text format strictly, checking the structure every Prometheus scraper relies on.
fn parse(text: &str) -> Scrape {
    let mut helps = BTreeSet::new();
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let mut histograms: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty(), "{line}");
            assert!(helps.insert(name.to_string()), "two HELP lines for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(helps.contains(name), "TYPE before HELP for {name}");
            assert!(
                ["counter", "gauge", "histogram", "summary"].contains(&kind),
                "{line}"
            );
            assert!(
                families.insert(name.into(), kind.into()).is_none(),
                "two TYPE lines for {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample: series value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest.strip_suffix('}').expect("labels end with }");
                let parsed: Vec<(&str, &str)> = labels
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("label=value");
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .expect("quoted label value");
                        (k, v)
                    })
                    .collect();
                (name, parsed)
            }
            None => (series, Vec::new()),
        };
        assert!(
            name.starts_with("glasslog_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name}"
        );
        let family = family_of(name, &families);
        let kind = families
            .get(family)
            .unwrap_or_else(|| panic!("{name} has no TYPE line before it"));
        if kind == "counter" {
            assert!(name.ends_with("_total"), "counter {name} without _total");
        }
        if kind == "histogram" {
            let others: Vec<String> = labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let key = format!("{family}{{{}}}", others.join(","));
            if name.ends_with("_bucket") {
                let le = labels.iter().find(|(k, _)| *k == "le").expect("le").1;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                histograms.entry(key).or_default().push((le, value));
            } else if name.ends_with("_count") {
                let buckets = &histograms[&key];
                assert_eq!(
                    buckets.last().map(|b| b.0),
                    Some(f64::INFINITY),
                    "{key}: +Inf bucket last"
                );
                assert_eq!(buckets.last().unwrap().1, value, "{key}: _count = +Inf");
                for pair in buckets.windows(2) {
                    assert!(pair[0].0 < pair[1].0, "{key}: le increasing");
                    assert!(pair[0].1 <= pair[1].1, "{key}: buckets cumulative");
                }
            }
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "two samples {series}"
        );
    }
    for (family, kind) in &families {
        if kind == "histogram" {
            assert!(
                samples
                    .keys()
                    .any(|s| s.starts_with(&format!("{family}_count"))),
                "{family} has no _count"
            );
        }
    }
    Scrape { samples }
}

fn scrape(http: &str) -> Scrape {
    let r = get(http, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(std::str::from_utf8(&r.body).expect("UTF-8"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_submissions_batches_reads_and_tail_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &["--http-listen", "127.0.0.1:0"]);
    let http = server.http_url.clone().expect("an HTTP listener");
    let before = tokio::task::spawn_blocking({
        let http = http.clone();
        move || scrape(&http)
    })
    .await
    .unwrap();
    assert_eq!(before.value("glasslog_checkpoint_size"), 0.0);
    assert_eq!(before.value("glasslog_submissions_total{code=\"OK\"}"), 0.0);
    assert_eq!(before.value("glasslog_tail_streams"), 0.0);
    assert_eq!(before.value("glasslog_sequencer_batch_entries_count"), 0.0);
    assert!(
        !before
            .samples
            .keys()
            .any(|s| s.starts_with("glasslog_witness") || s.starts_with("glasslog_publish")),
        "no witness or publication metrics without a policy or a bucket"
    );

    // Three entries one at a time (three batches), a duplicate (no batch), a refusal.
    let publisher = Publisher::new(KeyType::Ed25519);
    let client = server.client().await;
    let mut rpc = client.rpc();
    for n in 0..3 {
        let r = rpc
            .submit(proto::SubmitRequest {
                envelope: publisher.envelope(&format!("entry {n}")),
                public_keys: vec![publisher.pem.clone()],
            })
            .await
            .unwrap();
        assert_eq!(r.into_inner().index, n);
    }
    let again = rpc
        .submit(proto::SubmitRequest {
            envelope: publisher.envelope("entry 0"),
            public_keys: vec![publisher.pem.clone()],
        })
        .await
        .unwrap();
    assert!(again.into_inner().duplicate);
    let refused = rpc
        .submit(proto::SubmitRequest {
            envelope: b"not an envelope".to_vec(),
            public_keys: vec![publisher.pem.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Two inclusion proofs, a consistency proof, a search, and a Tail stream kept open.
    for index in [0, 2] {
        rpc.get_inclusion_proof(proto::GetInclusionProofRequest {
            leaf: Some(Leaf::Index(index)),
            tree_size: 3,
        })
        .await
        .unwrap();
    }
    rpc.get_consistency_proof(proto::GetConsistencyProofRequest {
        from_size: 1,
        to_size: 3,
    })
    .await
    .unwrap();
    let found = rpc
        .search(proto::SearchRequest {
            query: Some(Query::PublisherKeyId(
                publisher.key.public_key().key_id().0.to_vec(),
            )),
            page_token: String::new(),
            page_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.entries.len(), 3);
    let mut tail = rpc
        .tail(proto::TailRequest { start: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(tail.message().await.unwrap().is_some());

    let s = tokio::task::spawn_blocking({
        let http = http.clone();
        move || scrape(&http)
    })
    .await
    .unwrap();
    assert_eq!(s.value("glasslog_submissions_total{code=\"OK\"}"), 4.0);
    assert_eq!(
        s.value("glasslog_submissions_total{code=\"INVALID_ARGUMENT\"}"),
        1.0
    );
    let submissions: f64 = s
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("glasslog_submissions_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(submissions, 5.0, "every other code is 0");
    assert_eq!(
        s.value("glasslog_submissions_total{code=\"RESOURCE_EXHAUSTED\"}"),
        0.0
    );
    for (rpc, n) in [
        ("Submit", 5.0),
        ("GetInclusionProof", 2.0),
        ("GetConsistencyProof", 1.0),
        ("Search", 1.0),
        ("GetEntries", 0.0),
    ] {
        assert_eq!(
            s.value(&format!(
                "glasslog_rpc_duration_seconds_count{{rpc=\"{rpc}\"}}"
            )),
            n,
            "{rpc}"
        );
    }
    assert_eq!(s.value("glasslog_sequencer_batch_entries_count"), 3.0);
    assert_eq!(s.value("glasslog_sequencer_batch_entries_sum"), 3.0);
    assert_eq!(
        s.value("glasslog_sequencer_batch_entries_bucket{le=\"1\"}"),
        3.0
    );
    // Bounds are written as their shortest decimals.
    let first_bucket = "glasslog_rpc_duration_seconds_bucket{rpc=\"Search\",le=\"0.0001\"}";
    assert!(s.value(first_bucket) <= 1.0);
    assert_eq!(s.value("glasslog_sequencer_commit_seconds_count"), 3.0);
    assert_eq!(s.value("glasslog_sequencer_fsync_seconds_count"), 3.0);
    assert_eq!(s.value("glasslog_sequencer_queue_depth"), 0.0);
    assert_eq!(s.value("glasslog_checkpoint_size"), 3.0);
    assert_eq!(s.value("glasslog_head_size"), 3.0);
    assert!(s.value("glasslog_checkpoint_age_seconds") >= 0.0);
    assert_eq!(s.value("glasslog_tail_streams"), 1.0);
    assert_eq!(s.value("glasslog_rate_limited_total{rpc=\"Submit\"}"), 0.0);

    // The stream's slot, and its unit of the gauge, come back when its consumer goes.
    drop(tail);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let http = http.clone();
        let s = tokio::task::spawn_blocking(move || scrape(&http))
            .await
            .unwrap();
        if s.value("glasslog_tail_streams") == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Tail stream is still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
