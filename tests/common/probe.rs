//! What the attack tests observe of a running server: its resident memory and the latency an
//! honest reader sees. Figures are printed, never asserted on (the machines are shared).

use std::time::{Duration, Instant};

use glasslog::client::LogClient;
use glasslog::proto::{self, get_inclusion_proof_request::Leaf};

/// The resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// The 99th percentile of `samples`.
pub fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// `rounds` honest reads one after the other, each a GetCheckpoint followed (once the log has
/// an entry) by the inclusion proof of entry 0 in it; each round's latency.
pub async fn read_latencies(client: &LogClient, rounds: usize) -> Vec<Duration> {
    let mut rpc = client.rpc();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let cp = rpc
            .get_checkpoint(proto::GetCheckpointRequest { witnessed: false })
            .await
            .expect("an honest read is served")
            .into_inner();
        if cp.size > 0 {
            rpc.get_inclusion_proof(proto::GetInclusionProofRequest {
                tree_size: cp.size,
                leaf: Some(Leaf::Index(0)),
            })
            .await
            .expect("an honest proof is served");
        }
        samples.push(start.elapsed());
    }
    samples
}
