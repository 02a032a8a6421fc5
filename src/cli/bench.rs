//! `glasslog bench`: the load generator.
//!
//! `submit` mode pre-signs N distinct model-release declarations (Ed25519, envelopes of the
//! requested size), submits
//! them with C concurrent callers, verifies every reply (checkpoint signature, leaf hash,
//! inclusion proof) and reports throughput, latency percentiles, and, when given the server's pid
//! and data directory, the server's CPU time and bytes on disk per entry.
//! `proofs` mode asks for inclusion and consistency proofs at random sizes of the current log and
//! verifies each one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;

use super::keygen::KeyKind;
use super::CliError;
use crate::admission::declaration::{self, Timestamp};
use crate::admission::dsse::Envelope;
use crate::admission::keys::{KeyType, PrivateKey};
use crate::client::{decode_hashes, LogClient};
use crate::proto;
use crate::server::storage::Store;
use crate::tlog::merkle;
use crate::tlog::note::LogVerifier;
use crate::tlog::proof;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Submit pre-signed envelopes and verify every reply.
    Submit,
    /// Request inclusion and consistency proofs and verify every one.
    Proofs,
    /// Search by name and by subject digest for declarations sampled from the log; every
    /// result must contain the sampled entry.
    Search,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// The log's verifier key; fetched with GetLogInfo when absent.
    #[arg(long)]
    log_key: Option<String>,
    #[arg(long, value_enum, default_value_t = Mode::Submit)]
    mode: Mode,
    /// Number of requests.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    count: u64,
    /// Concurrent callers.
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Approximate size of each envelope, in bytes.
    #[arg(long, default_value_t = 1024)]
    envelope_bytes: usize,
    /// Submit mode: the publisher key's scheme, which decides the server's signature check.
    #[arg(long, value_enum, default_value_t = KeyKind::Ed25519)]
    key_type: KeyKind,
    /// The server's pid, to report its CPU time per entry (per rpc in proofs mode).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's data directory, to report bytes on disk per entry.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Submit mode: append every distinct checkpoint note received to this file (one JSON
    /// string per line), for a later `--mode proofs --checkpoints FILE`.
    #[arg(long)]
    checkpoints_out: Option<PathBuf>,
    /// Proofs mode: checkpoint notes saved by a submit run; consistency proofs are requested from
    /// their sizes to the latest and verified against both signed roots. Without it, only
    /// inclusion proofs are measured.
    #[arg(long)]
    checkpoints: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let clients = connect(&args).await?;
        match args.mode {
            Mode::Submit => bench_submit(&args, clients).await,
            Mode::Proofs => bench_proofs(&args, clients).await,
            Mode::Search => bench_search(&args, clients).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn connect(args: &BenchArgs) -> Result<Vec<Arc<LogClient>>, CliError> {
    let vkey = match &args.log_key {
        Some(k) => k.clone(),
        None => {
            let mut rpc =
                proto::transparency_log_client::TransparencyLogClient::connect(args.server.clone())
                    .await?;
            let info = rpc
                .get_log_info(proto::GetLogInfoRequest {})
                .await?
                .into_inner();
            eprintln!(
                "log key (from the server, not pinned): {}",
                info.verifier_key
            );
            info.verifier_key
        }
    };
    let mut clients = Vec::new();
    for _ in 0..args.connections.max(1) {
        clients.push(Arc::new(
            LogClient::connect(&args.server, LogVerifier::new(&vkey)?).await?,
        ));
    }
    Ok(clients)
}

/// Model-release declarations of about `size` bytes each (a one-file manifest and a description
/// as filler), each for a distinct model name, signed by one key of type `key_type`: what a
/// publisher sends.
/// Their release time is now, when they are signed, so that a monitor reading the log finds
/// nothing to report about them (a fixed past time would be backdating for every entry).
fn presign(count: u64, size: usize, key_type: KeyType) -> Result<(Vec<Vec<u8>>, String), CliError> {
    let released = super::declare::now()?;
    let key = PrivateKey::generate(key_type);
    let pem = key.public_key().to_pem();
    let run = format!(
        "{:016x}",
        rand_core::RngCore::next_u64(&mut rand_core::OsRng)
    );
    // A minimal statement makes an envelope of ~1.2 KB (base64 adds a third); filler beyond.
    let filler = format!(
        "bench model{}",
        "x".repeat(size.saturating_sub(1210) * 3 / 4)
    );
    let envelopes = (0..count)
        .map(|i| {
            let statement = model_release(&format!("bench/{run}/m{i}"), &released, &filler);
            Envelope::sign(declaration::PAYLOAD_TYPE, &statement, &[&key]).to_json()
        })
        .collect();
    Ok((envelopes, pem))
}

fn model_release(name: &str, released: &Timestamp, description: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let file: [u8; 32] = Sha256::digest(name.as_bytes()).into();
    let root: [u8; 32] = Sha256::digest(file).into();
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": hex::encode(root)}}],
        "predicateType": declaration::MODEL_RELEASE,
        "predicate": {
            "name": name, "version": "1.0", "releaseTime": released.as_str(), "license": "Apache-2.0",
            "dataDisclosure": "withheld", "description": description,
            "manifest": {
                "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false,
                    "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"]},
                "resources": [{"name": "model.safetensors", "algorithm": "sha256", "digest": hex::encode(file)}],
            },
        },
    }))
    .expect("JSON of strings")
}

#[derive(Default)]
struct Usage {
    server_cpu: Option<Duration>,
    client_cpu: Duration,
    disk: Option<u64>,
}

fn usage(args: &BenchArgs) -> Usage {
    Usage {
        server_cpu: args.server_pid.and_then(process_cpu),
        client_cpu: process_cpu(std::process::id()).unwrap_or_default(),
        disk: args.data_dir.as_ref().map(|d| Store::disk_usage(d)),
    }
}

/// User + system CPU time of a process, from /proc.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of proc(5) (utime, stime), counted from the state field (3).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(Duration::from_secs_f64(ticks as f64 / hz.max(1) as f64))
}

async fn bench_submit(args: &BenchArgs, clients: Vec<Arc<LogClient>>) -> Result<(), CliError> {
    let (envelopes, pem) = presign(args.count, args.envelope_bytes, args.key_type.into())?;
    let mean = envelopes.iter().map(Vec::len).sum::<usize>() / envelopes.len().max(1);
    eprintln!(
        "pre-signed {} model-release declarations, {mean} bytes per envelope",
        args.count
    );
    let envelopes = Arc::new(envelopes);
    let (first, _) = clients[0].checkpoint().await?;
    let before = usage(args);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency.max(1) {
        let (client, envelopes, next, pem) = (
            clients[worker % clients.len()].clone(),
            envelopes.clone(),
            next.clone(),
            pem.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("valid histogram");
            let mut notes = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(env) = envelopes.get(i as usize) else {
                    return Ok::<_, CliError>((hist, notes));
                };
                let t = Instant::now();
                let s = client.submit(env.clone(), vec![pem.clone()]).await?;
                hist.record(t.elapsed().as_micros() as u64)
                    .expect("in range");
                if s.duplicate {
                    return Err(format!("envelope {i} was reported as a duplicate").into());
                }
                if notes.last() != Some(&s.note) {
                    notes.push(s.note);
                }
            }
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut notes = std::collections::BTreeSet::new();
    for t in tasks {
        let (h, n) = t.await??;
        hist.add(h)?;
        notes.extend(n);
    }
    let elapsed = started.elapsed();
    let after = usage(args);
    if let Some(path) = &args.checkpoints_out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        for note in &notes {
            writeln!(f, "{}", serde_json::to_string(note)?)?;
        }
    }
    let (last, _) = clients[0].checkpoint().await?;
    clients[0].verify_consistency(&first, &last).await?;
    report_submit(args, elapsed, &hist, &before, &after, last.size);
    Ok(())
}

fn report_submit(
    args: &BenchArgs,
    elapsed: Duration,
    hist: &Histogram<u64>,
    before: &Usage,
    after: &Usage,
    size: u64,
) {
    let n = args.count as f64;
    let per_entry_us = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => Some((b.saturating_sub(a)).as_secs_f64() * 1e6 / n),
        _ => None,
    };
    let server_cpu = per_entry_us(before.server_cpu, after.server_cpu);
    let client_cpu = per_entry_us(Some(before.client_cpu), Some(after.client_cpu));
    let disk = after.disk.map(|d| d as f64 / size.max(1) as f64);
    let throughput = n / elapsed.as_secs_f64();
    let ms = |us: u64| us as f64 / 1000.0;
    if args.json {
        let v = serde_json::json!({
            "mode": "submit", "count": args.count, "concurrency": args.concurrency,
            "envelope_bytes": args.envelope_bytes, "seconds": elapsed.as_secs_f64(),
            "throughput_per_s": throughput, "p50_ms": ms(hist.value_at_quantile(0.5)),
            "p99_ms": ms(hist.value_at_quantile(0.99)), "max_ms": ms(hist.max()),
            "server_cpu_us_per_entry": server_cpu, "client_cpu_us_per_entry": client_cpu,
            "disk_bytes_per_entry": disk, "log_size": size,
        });
        println!("{v}");
    } else {
        println!(
            "submit: {} entries, C={}, {:.0} entries/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            args.count,
            args.concurrency,
            throughput,
            ms(hist.value_at_quantile(0.5)),
            ms(hist.value_at_quantile(0.99)),
            ms(hist.max())
        );
        if let Some(c) = server_cpu {
            println!("server CPU: {c:.1} µs/entry");
        }
        println!(
            "client CPU: {:.1} µs/entry (signing excluded)",
            client_cpu.unwrap_or_default()
        );
        if let Some(d) = disk {
            println!("disk: {d:.0} bytes/entry over {size} entries");
        }
    }
}

async fn bench_proofs(args: &BenchArgs, clients: Vec<Arc<LogClient>>) -> Result<(), CliError> {
    let (latest, _) = clients[0].checkpoint().await?;
    if latest.size < 2 {
        return Err("the log needs at least 2 entries for proof benchmarks".into());
    }
    // Older checkpoints, signature-verified, to prove consistency from.
    let mut old = Vec::new();
    if let Some(path) = &args.checkpoints {
        for line in std::fs::read_to_string(path)?.lines() {
            let note: String = serde_json::from_str(line)?;
            let c = clients[0].verifier().verify(&note)?;
            if c.size > 0 && c.size <= latest.size {
                old.push(c);
            }
        }
    }
    if old.is_empty() {
        eprintln!("no --checkpoints: measuring inclusion proofs only");
    }
    let old = Arc::new(old);
    let next = Arc::new(AtomicU64::new(0));
    let latest = Arc::new(latest);
    let before = usage(args);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency.max(1) {
        let (client, next, latest, old, count) = (
            clients[worker % clients.len()].clone(),
            next.clone(),
            latest.clone(),
            old.clone(),
            args.count,
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("valid histogram");
            let mut rng = Lcg(worker as u64 + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, CliError>(hist);
                }
                let t = Instant::now();
                if i % 2 == 0 || old.is_empty() {
                    let index = rng.below(latest.size);
                    let req = proto::GetInclusionProofRequest {
                        leaf: Some(proto::get_inclusion_proof_request::Leaf::Index(index)),
                        tree_size: latest.size,
                    };
                    let p = client.rpc().get_inclusion_proof(req).await?.into_inner();
                    let leaf = merkle::hash_from_slice(&p.leaf_hash)?;
                    proof::verify_inclusion(
                        index,
                        latest.size,
                        &leaf,
                        &decode_hashes(&p.hashes)?,
                        &latest.root,
                    )?;
                } else {
                    let from = &old[rng.below(old.len() as u64) as usize];
                    let req = proto::GetConsistencyProofRequest {
                        from_size: from.size,
                        to_size: latest.size,
                    };
                    let p = client.rpc().get_consistency_proof(req).await?.into_inner();
                    let hashes = decode_hashes(&p.hashes)?;
                    proof::verify_consistency(
                        from.size,
                        latest.size,
                        &from.root,
                        &latest.root,
                        &hashes,
                    )?;
                }
                hist.record(t.elapsed().as_micros() as u64)
                    .expect("in range");
            }
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for t in tasks {
        hist.add(t.await??)?;
    }
    let elapsed = started.elapsed();
    let after = usage(args);
    let rate = args.count as f64 / elapsed.as_secs_f64();
    let ms = |us: u64| us as f64 / 1000.0;
    // CPU time per rpc, the figure least moved by other work on a shared machine.
    let per_rpc_us = |a: Option<Duration>, b: Option<Duration>| {
        Some(b?.saturating_sub(a?).as_secs_f64() * 1e6 / args.count as f64)
    };
    let server_cpu = per_rpc_us(before.server_cpu, after.server_cpu);
    let client_cpu = per_rpc_us(Some(before.client_cpu), Some(after.client_cpu));
    if args.json {
        println!(
            "{}",
            serde_json::json!({"mode": "proofs", "count": args.count, "concurrency": args.concurrency,
                "log_size": latest.size, "rpcs_per_s": rate, "p50_ms": ms(hist.value_at_quantile(0.5)),
                "p99_ms": ms(hist.value_at_quantile(0.99)), "server_cpu_us_per_rpc": server_cpu,
                "client_cpu_us_per_rpc": client_cpu})
        );
    } else {
        println!(
            "proofs: {} rpcs on a log of {} entries, C={}, {:.0} rpcs/s, p50 {:.2} ms, p99 {:.2} ms",
            args.count,
            latest.size,
            args.concurrency,
            rate,
            ms(hist.value_at_quantile(0.5)),
            ms(hist.value_at_quantile(0.99))
        );
        if let Some(c) = server_cpu {
            println!("server CPU: {c:.1} µs/rpc");
        }
        println!("client CPU: {:.1} µs/rpc", client_cpu.unwrap_or_default());
    }
    Ok(())
}

async fn bench_search(args: &BenchArgs, clients: Vec<Arc<LogClient>>) -> Result<(), CliError> {
    let (latest, _) = clients[0].checkpoint().await?;
    // Sample declarations at spread-out indexes: (index, name, subject digest).
    let mut rng = Lcg(7);
    let mut samples = Vec::new();
    for _ in 0..256.min(latest.size) {
        let index = rng.below(latest.size);
        let req = proto::GetEntriesRequest {
            start: index,
            end: index + 1,
        };
        let e = clients[0]
            .rpc()
            .get_entries(req)
            .await?
            .into_inner()
            .entries
            .remove(0);
        if let Some(d) = crate::admission::logged_declaration(&e.leaf_data)? {
            samples.push((
                index,
                d.name().as_str().to_string(),
                d.subject_digest().0.to_vec(),
            ));
        }
    }
    if samples.is_empty() {
        return Err("the log holds no declarations to search for".into());
    }
    let samples = Arc::new(samples);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency.max(1) {
        let (client, next, samples, count) = (
            clients[worker % clients.len()].clone(),
            next.clone(),
            samples.clone(),
            args.count,
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("valid histogram");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, CliError>(hist);
                }
                let (index, name, digest) = &samples[(i as usize / 2) % samples.len()];
                let query = if i % 2 == 0 {
                    proto::search_request::Query::Name(name.clone())
                } else {
                    proto::search_request::Query::SubjectDigest(digest.clone())
                };
                let t = Instant::now();
                let req = proto::SearchRequest {
                    query: Some(query),
                    page_token: String::new(),
                    page_size: 0,
                };
                let resp = client.rpc().search(req).await?.into_inner();
                hist.record(t.elapsed().as_micros() as u64)
                    .expect("in range");
                if !resp.entries.iter().any(|e| e.index == *index) {
                    return Err(format!("search for entry {index} did not find it").into());
                }
            }
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for t in tasks {
        hist.add(t.await??)?;
    }
    let rate = args.count as f64 / started.elapsed().as_secs_f64();
    let ms = |us: u64| us as f64 / 1000.0;
    let v = serde_json::json!({"mode": "search", "count": args.count, "concurrency": args.concurrency,
        "log_size": latest.size, "searches_per_s": rate, "p50_ms": ms(hist.value_at_quantile(0.5)),
        "p99_ms": ms(hist.value_at_quantile(0.99)), "max_ms": ms(hist.max())});
    println!("{v}");
    Ok(())
}

/// A small deterministic generator for picking indexes (the benchmark needs spread, not secrecy).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn presigned_declarations_are_admissible_and_about_the_requested_size() {
        let before = super::super::declare::now().unwrap();
        let (envelopes, _) = super::presign(3, 1024, super::KeyType::Ed25519).unwrap();
        let after = super::super::declare::now().unwrap();
        for env in &envelopes {
            assert!((1000..1300).contains(&env.len()), "{} bytes", env.len());
            let e = crate::admission::dsse::Envelope::parse(env).unwrap();
            crate::admission::declaration::validate_envelope_payload(
                &e.payload_type,
                &e.payload,
                &[],
            )
            .unwrap()
            .unwrap();
            // Released when signed: a monitor finds no backdating in a benchmarked log.
            let statement: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
            let released: crate::admission::declaration::Timestamp = statement["predicate"]
                ["releaseTime"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(before <= released && released <= after, "{released}");
        }
    }
}
