//! End to end: a glasslog server with a witness policy and three real `glasslog witness`
//! processes on loopback (2 of 3 required). Witnesses killed and restarted; a forked log (a
//! second server with the same key and other entries) refused by every witness.

mod common;

use common::free_port;

use std::path::Path;
use std::time::{Duration, Instant};

use common::witness::TestWitness;
use common::{Publisher, TestServer, ORIGIN};
use glasslog::admission::keys::KeyType;
use glasslog::client::bundle::ProofBundle;
use glasslog::client::{ClientError, LogClient};
use glasslog::proto::{tail_event::Event, GetCheckpointRequest, TailRequest};
use glasslog::tlog::checkpoint::{Checkpoint, Origin};
use glasslog::tlog::note::LogSigner;
use glasslog::tlog::policy::{Cosignatures, PolicyError, WitnessPolicy};
use tonic::Code;

/// Writes a new log key for [`ORIGIN`] into `data_dir`, as `serve` would on first start, so
/// that the witnesses can be told the log's key before the log starts.
fn write_log_key(data_dir: &Path) -> LogSigner {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(data_dir)
        .unwrap();
    let signer = LogSigner::generate(&Origin::new(ORIGIN).unwrap());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(data_dir.join("log.key"))
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{}\n", signer.to_skey()).as_bytes()).unwrap();
    signer
}

/// Three witnesses of the log `vkey`, and a policy file requiring two of them.
struct Witnesses {
    all: Vec<TestWitness>,
    policy_path: std::path::PathBuf,
    policy: WitnessPolicy,
}

fn three_witnesses(dir: &Path, vkey: &str) -> Witnesses {
    let all: Vec<TestWitness> = (0..3)
        .map(|i| {
            TestWitness::named(
                &format!("w{i}.witness.test"),
                &dir.join(format!("witness{i}")),
                free_port(),
                &[vkey],
            )
        })
        .collect();
    let mut text = format!("# two of three\nlog {vkey}\n");
    for (i, w) in all.iter().enumerate() {
        text += &format!("witness W{i} {} {}\n", w.vkey, w.url);
    }
    text += "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n";
    let policy_path = dir.join("policy");
    std::fs::write(&policy_path, &text).unwrap();
    Witnesses {
        all,
        policy: WitnessPolicy::parse(text.as_bytes()).unwrap(),
        policy_path,
    }
}

async fn submit(client: &LogClient, p: &Publisher, texts: std::ops::Range<u32>, tag: &str) -> u64 {
    let mut last = 0;
    for i in texts {
        let s = client
            .submit(p.envelope(&format!("{tag} {i}")), vec![p.pem.clone()])
            .await
            .unwrap();
        last = s.index;
    }
    last
}

/// Polls until a witnessed checkpoint of at least `size` is served, and checks it.
async fn witnessed_at_least(
    client: &LogClient,
    policy: &WitnessPolicy,
    size: u64,
) -> (Checkpoint, String, Cosignatures) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.witnessed_checkpoint(policy).await {
            Ok(w) if w.0.size >= size => return w,
            Ok(_) => {}
            Err(ClientError::Rpc(s)) if s.code() == Code::NotFound => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            Instant::now() < deadline,
            "no witnessed checkpoint of size {size} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_of_three_witnesses_cosign_and_clients_demand_the_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let signer = write_log_key(&data);
    let mut ws = three_witnesses(dir.path(), &signer.verifier_key());
    let policy_flag = ws.policy_path.to_str().unwrap().to_string();
    let mut server = TestServer::start(
        &data,
        &[
            "--witness-policy",
            &policy_flag,
            "--witness-interval-ms",
            "0",
        ],
    );
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);

    submit(&client, &publisher, 0..20, "a").await;
    let (cp, note, cosigs) = witnessed_at_least(&client, &ws.policy, 20).await;
    assert!(cosigs.by_witness.iter().flatten().count() >= 2, "{note}");
    assert!(note.starts_with(&cp.to_body()));

    // One witness down: two are left, the quorum still forms.
    ws.all[0].kill();
    submit(&client, &publisher, 20..30, "b").await;
    let (_, _, cosigs) = witnessed_at_least(&client, &ws.policy, 30).await;
    assert!(cosigs.by_witness[0].is_none() || cosigs.by_witness[1].is_some());

    // Two down: the log keeps acknowledging, but nothing new is witnessed, and the latest
    // checkpoint alone does not meet the policy.
    ws.all[1].kill();
    let last = submit(&client, &publisher, 30..40, "c").await;
    assert_eq!(last, 39, "Submit kept acknowledging");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (w, _, _) = client.witnessed_checkpoint(&ws.policy).await.unwrap();
    assert!(
        w.size < 40,
        "witnessed {} with one witness of three",
        w.size
    );
    let (_, plain) = client.checkpoint().await.unwrap();
    match ws.policy.check(&plain) {
        Err(PolicyError::BelowQuorum {
            signed, missing, ..
        }) => {
            assert!(signed.is_empty());
            assert_eq!(missing, ["W0", "W1", "W2"]);
        }
        other => panic!("{other:?}"),
    }

    // A restarted witness resumes from its stored size, and the quorum forms again.
    let w1 = &ws.all[1];
    let (name, data_dir, port) = ("w1.witness.test", w1.data_dir.clone(), w1.port);
    ws.all[1] = TestWitness::named(name, &data_dir, port, &[&signer.verifier_key()]);
    let (cp, note, _) = witnessed_at_least(&client, &ws.policy, 40).await;
    assert_eq!(cp.size, 40);

    // Tail announces witnessed checkpoints, never ahead of the entries sent.
    let mut tail = client
        .rpc()
        .tail(TailRequest { start: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut sent = 0u64;
    loop {
        match tail.message().await.unwrap().unwrap().event.unwrap() {
            Event::Entry(_) => sent += 1,
            Event::Checkpoint(_) => {}
            Event::Witnessed(w) => {
                assert!(w.size <= sent, "witnessed {} after {sent} entries", w.size);
                client.verify_checkpoint(&w).unwrap();
                ws.policy.check(&w.note).unwrap();
                if w.size == 40 {
                    assert_eq!(w.note, note);
                    break;
                }
            }
        }
    }
    // The cosigned table holds the latest witnessed checkpoint and newer ones only, however
    // many rounds there were.
    drop(tail);
    drop(client);
    server.terminate();
    let store = glasslog::server::storage::Store::open(&data.join("db")).unwrap();
    let kept = store.cosigned_latest_first(1000).unwrap();
    assert!(
        !kept.is_empty() && kept.iter().all(|c| c.size >= 40),
        "{:?}",
        kept.iter().map(|c| c.size).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn witnessed_checkpoints_need_a_policy_and_a_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let plain = TestServer::start(&dir.path().join("plain"), &[]);
    let client = plain.client().await;
    let err = client
        .rpc()
        .get_checkpoint(GetCheckpointRequest { witnessed: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // A policy whose witnesses are all unreachable: nothing is witnessed, Submit still works.
    let data = dir.path().join("data");
    let signer = write_log_key(&data);
    let ws = three_witnesses(dir.path(), &signer.verifier_key());
    let policy_flag = ws.policy_path.to_str().unwrap().to_string();
    let policy = ws.policy.clone();
    drop(ws);
    let server = TestServer::start(&data, &["--witness-policy", &policy_flag]);
    let client = server.client().await;
    submit(&client, &Publisher::new(KeyType::Ed25519), 0..3, "x").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    match client.witnessed_checkpoint(&policy).await {
        Err(ClientError::Rpc(s)) => assert_eq!(s.code(), Code::NotFound, "{s:?}"),
        other => panic!("{other:?}"),
    }

    // A policy that does not list this log is refused at start.
    let other = dir.path().join("other-data");
    write_log_key(&other);
    let err = TestServer::try_start(&other, &["--witness-policy", &policy_flag])
        .err()
        .unwrap();
    assert!(err.contains("do not list this log"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forked_log_is_refused_by_every_witness() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let signer = write_log_key(&data);
    let ws = three_witnesses(dir.path(), &signer.verifier_key());
    let policy_flag = ws.policy_path.to_str().unwrap().to_string();
    let publisher = Publisher::new(KeyType::Ed25519);
    {
        let server = TestServer::start(
            &data,
            &[
                "--witness-policy",
                &policy_flag,
                "--witness-interval-ms",
                "0",
            ],
        );
        let client = server.client().await;
        submit(&client, &publisher, 0..5, "honest").await;
        let (cp, _, cosigs) = witnessed_at_least(&client, &ws.policy, 5).await;
        assert_eq!(cp.size, 5);
        // Wait for the third witness too, so that every witness has recorded size 5.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut all = cosigs.by_witness.iter().all(Option::is_some);
        while !all {
            assert!(
                Instant::now() < deadline,
                "the third witness never cosigned"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            submit(&client, &publisher, 5..6, "honest").await;
            let (_, _, c) = client.witnessed_checkpoint(&ws.policy).await.unwrap();
            all = c.by_witness.iter().all(Option::is_some);
        }
    }
    // The same key, another history: a fork. Every witness refuses it.
    let forked = dir.path().join("forked");
    std::fs::create_dir(&forked).unwrap();
    std::fs::copy(data.join("log.key"), forked.join("log.key")).unwrap();
    let server = TestServer::start(
        &forked,
        &[
            "--witness-policy",
            &policy_flag,
            "--witness-interval-ms",
            "0",
        ],
    );
    let client = server.client().await;
    submit(&client, &publisher, 0..12, "fork").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    match client.witnessed_checkpoint(&ws.policy).await {
        Err(ClientError::Rpc(s)) => assert_eq!(s.code(), Code::NotFound, "{s:?}"),
        other => panic!("the fork got witnessed: {other:?}"),
    }
}

/// Benchmark, not a test (`cargo test --release --test witnessing -- --ignored --nocapture
/// benchmark`): `glasslog bench` (20,000 submits at C=64) against a log without and with a
/// witness policy of three local witnesses (2 of 3), interleaved, three runs each; with the
/// policy (rounds every GLASSLOG_WITNESS_BENCH_INTERVAL_MS, default the server's 1000 ms), the
/// lag of the witnessed checkpoint behind the log-signed one, sampled every 5 ms
/// (for each new witnessed size w: the time since a log checkpoint of size >= w was first seen).
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn benchmark_witnessing_lag_and_submit_throughput() {
    let mut results: Vec<(bool, f64)> = Vec::new();
    let mut lags: Vec<f64> = Vec::new();
    let mut cpus: Vec<(bool, f64)> = Vec::new();
    for run in 0..6 {
        let witnessed = run % 2 == 1;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let signer = write_log_key(&data);
        let ws = three_witnesses(dir.path(), &signer.verifier_key());
        let policy_flag = ws.policy_path.to_str().unwrap().to_string();
        let interval =
            std::env::var("GLASSLOG_WITNESS_BENCH_INTERVAL_MS").unwrap_or_else(|_| "1000".into());
        let extra: Vec<&str> = if witnessed {
            vec![
                "--witness-policy",
                &policy_flag,
                "--witness-interval-ms",
                &interval,
            ]
        } else {
            vec![]
        };
        let server = TestServer::start(&data, &extra);
        let client = server.client().await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The sampler runs in both configurations, so that its rpcs load both alike.
        let sampler = Some({
            let (rpc, stop) = (client.rpc(), stop.clone());
            tokio::spawn(async move {
                let mut first_seen: Vec<(u64, Instant)> = Vec::new();
                let mut last_w = 0u64;
                let mut lags = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let now = Instant::now();
                    let plain = rpc
                        .clone()
                        .get_checkpoint(GetCheckpointRequest { witnessed: false })
                        .await
                        .unwrap()
                        .into_inner();
                    if first_seen.last().is_none_or(|(s, _)| *s < plain.size) {
                        first_seen.push((plain.size, now));
                    }
                    if let Ok(w) = rpc
                        .clone()
                        .get_checkpoint(GetCheckpointRequest { witnessed: true })
                        .await
                    {
                        let w = w.into_inner().size;
                        if w > last_w {
                            last_w = w;
                            if let Some((_, t)) = first_seen.iter().find(|(s, _)| *s >= w) {
                                lags.push(t.elapsed().as_secs_f64() * 1000.0);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                lags
            })
        });
        // Off the runtime's threads: a blocked worker would starve the sampler's rpcs.
        let (url, vkey, pid) = (
            server.url.clone(),
            server.verifier_key.clone(),
            server.child.id(),
        );
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(common::glasslog_bin())
                .args([
                    "bench",
                    "--json",
                    "-n",
                    "20000",
                    "-c",
                    "64",
                    "--server",
                    &url,
                    "--log-key",
                    &vkey,
                ])
                .args(["--server-pid", &pid.to_string()])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rate = json["throughput_per_s"].as_f64().unwrap();
        let cpu = json["server_cpu_us_per_entry"].as_f64().unwrap();
        // Let the last checkpoint be witnessed before the sampler stops.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(s) = sampler {
            lags.extend(s.await.unwrap());
        }
        println!(
            "run {run}: witnessing {witnessed}: {rate:.0} entries/s, server {cpu:.0} CPU-µs/entry"
        );
        results.push((witnessed, rate));
        cpus.push((witnessed, cpu));
    }
    let median = |on: bool| {
        let mut v: Vec<f64> = results
            .iter()
            .filter(|(w, _)| *w == on)
            .map(|(_, r)| *r)
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p) as usize];
    println!(
        "submit at C=64, median of 3: {:.0}/s without witnesses, {:.0}/s with (ratio {:.3})",
        median(false),
        median(true),
        median(true) / median(false)
    );
    println!(
        "witnessed checkpoint lag behind the log: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        pct(0.5),
        pct(0.99),
        lags[lags.len() - 1],
        lags.len()
    );
}

/// Runs the glasslog binary with a scratch config directory; returns (exit code, stdout, stderr).
fn glasslog(home: &Path, args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = std::process::Command::new(common::glasslog_bin())
        .args(args)
        .env("GLASSLOG_LOG", "off")
        .env("XDG_CONFIG_HOME", home)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `submit`, `verify --bundle`, `verify`, `audit` and `monitor` with `--witness-policy`: the
/// bundle carries the cosignatures and verifies under the policy; a stricter policy (a quorum
/// with a witness that never cosigned) is refused by each of them, naming who did not sign.
#[tokio::test(flavor = "multi_thread")]
async fn clients_take_a_witness_policy() {
    use std::ffi::OsStr;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let data = dir.path().join("data");
    let signer = write_log_key(&data);
    let vkey = signer.verifier_key();
    let ws = three_witnesses(dir.path(), &vkey);
    let policy = ws.policy_path.clone();
    let server = TestServer::start(&data, &["--witness-policy", policy.to_str().unwrap()]);
    // A stricter policy: the three witnesses and a fourth that never cosigns, all required.
    let absent = glasslog::tlog::cosignature::Cosigner::generate("absent.witness.test").unwrap();
    let strict = dir.path().join("strict.policy");
    let mut text = String::new();
    for (i, w) in ws.all.iter().enumerate() {
        text += &format!("witness W{i} {}\n", w.vkey);
    }
    text += &format!(
        "witness ABSENT {}\ngroup all4 all W0 W1 W2 ABSENT\nquorum all4\n",
        absent.public().to_vkey()
    );
    std::fs::write(&strict, text).unwrap();

    // A declaration to submit.
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("train.jsonl"), "{\"text\": \"hello\"}\n").unwrap();
    let key = dir.path().join("me.key");
    let decl = dir.path().join("d.json");
    let o = |s: &str| OsStr::new(s).to_os_string();
    let args = |v: Vec<std::ffi::OsString>| v;
    let run = |v: Vec<std::ffi::OsString>| {
        let refs: Vec<&OsStr> = v.iter().map(|a| a.as_os_str()).collect();
        glasslog(&home, &refs)
    };
    assert_eq!(
        run(args(vec![o("keygen"), o("--out"), key.clone().into()])).0,
        0
    );
    let (code, _, err) = run(vec![
        o("declare"),
        o("dataset"),
        files.clone().into(),
        o("--name"),
        o("org/corpus"),
        o("--version"),
        o("1"),
        o("--license"),
        o("CC-BY-4.0"),
        o("--source"),
        o("synthetic:Paraphrases"),
        o("--processing"),
        o("none"),
        o("--contains-personal-data"),
        o("no"),
        o("--personal-data-handling"),
        o("none present"),
        o("--key"),
        key.clone().into(),
        o("--out"),
        decl.clone().into(),
    ]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(vec![
        o("submit"),
        decl.clone().into(),
        o("--server"),
        o(&server.url),
        o("--log-key"),
        o(&vkey),
        o("--witness-policy"),
        policy.clone().into(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("witness cosignatures: "), "{out}");
    let bundle_path = glasslog::files::with_suffix(&decl, ".bundle.json");
    let bundle = ProofBundle::from_json(&std::fs::read(&bundle_path).unwrap()).unwrap();
    assert!(bundle.cosignatures.len() >= 2, "{:?}", bundle.cosignatures);
    bundle.verify_witnessed(&ws.policy).unwrap();
    // The split-view state holds the cosigned note.
    let state_dir = home.join("glasslog/checkpoints");
    let state = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let stored = std::fs::read_to_string(state).unwrap();
    assert!(
        stored.contains(bundle.cosignatures[0].trim_end()),
        "{stored}"
    );

    let verify_bundle = |p: &Path| {
        run(vec![
            o("verify"),
            o("--bundle"),
            bundle_path.clone().into(),
            o("--log-key"),
            o(&vkey),
            o("--witness-policy"),
            p.to_path_buf().into(),
        ])
    };
    let (code, out, err) = verify_bundle(&policy);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = verify_bundle(&strict);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("not-witnessed") && out.contains("ABSENT"),
        "{out}"
    );

    let verify_online = |p: &Path| {
        run(vec![
            o("verify"),
            files.clone().into(),
            o("--name"),
            o("org/corpus"),
            o("--server"),
            o(&server.url),
            o("--log-key"),
            o(&vkey),
            o("--witness-policy"),
            p.to_path_buf().into(),
        ])
    };
    let (code, out, err) = verify_online(&policy);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = verify_online(&strict);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not-witnessed"), "{out}");

    let audit = |p: &Path| {
        run(vec![
            o("audit"),
            o("--server"),
            o(&server.url),
            o("--log-key"),
            o(&vkey),
            o("--witness-policy"),
            p.to_path_buf().into(),
        ])
    };
    let (code, out, err) = audit(&policy);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = audit(&strict);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ABSENT"), "{err}");

    let monitor = |p: &Path, state: &str| {
        run(vec![
            o("monitor"),
            o("--server"),
            o(&server.url),
            o("--log-key"),
            o(&vkey),
            o("--once"),
            o("--state"),
            dir.path().join(state).into(),
            o("--witness-policy"),
            p.to_path_buf().into(),
        ])
    };
    let (code, out, err) = monitor(&policy, "m1");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = monitor(&strict, "m2");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("not-witnessed"), "{out}");
}
