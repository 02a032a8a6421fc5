//! The server's connections under attack (issue #11), against the real binary on loopback: each
//! test mounts one attack, bounded in count and time, and shows that the bound holds (memory,
//! CPU, slots given back, the right status) while honest clients are still served.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::probe::{p99, read_latencies, rss_kib};
use common::{Publisher, TestServer};
use glasslog::admission::keys::KeyType;
use glasslog::proto;
use prost::Message;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic::Code;

/// The resident memory of process `pid`, in KiB.
/// CPU time (user + system) process `pid` has used.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

fn addr(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// One gRPC message frame: flag, length, bytes.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut f = vec![0];
    f.extend_from_slice(&(message.len() as u32).to_be_bytes());
    f.extend_from_slice(message);
    f
}

fn grpc_request(addr: &str, method: &str) -> http::Request<()> {
    http::Request::post(format!(
        "http://{addr}/glasslog.v1.TransparencyLog/{method}"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap()
}

async fn checkpoint_works(server: &TestServer) {
    let mut rpc = server.client().await.rpc();
    rpc.get_checkpoint(proto::GetCheckpointRequest::default())
        .await
        .expect("an honest read is served during the attack");
}

/// 1,000 Submit streams on one connection, each announcing a 1 MB message and sending 64 bytes
/// of it: tonic alone would reserve the announced megabyte per stream (1 GB); the server holds
/// what arrived, and answers each stream DEADLINE_EXCEEDED once the request timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_but_unsent_messages_reserve_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &[
            "--max-concurrent-streams",
            "2000",
            "--request-timeout-ms",
            "4000",
        ],
    );
    let pid = server.child.id();
    checkpoint_works(&server).await;
    let reader = server.client().await;
    let idle = p99(read_latencies(&reader, 200).await);
    let before = rss_kib(pid);
    let addr = addr(&server);
    let (client, connection) = h2::client::handshake(TcpStream::connect(&addr).await.unwrap())
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut pending = Vec::new();
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&1_000_000u32.to_be_bytes());
    prefix.extend_from_slice(&[b'x'; 64]);
    for _ in 0..1000 {
        let mut client = client.clone().ready().await.unwrap();
        let (response, mut body) = client
            .send_request(grpc_request(&addr, "Submit"), false)
            .unwrap();
        body.send_data(Bytes::from(prefix.clone()), false).unwrap();
        pending.push((response, body));
    }
    // Everything sent has reached the server once an rpc on the same connection is answered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = p99(read_latencies(&reader, 200).await);
    let during = rss_kib(pid);
    let grown_mib = during.saturating_sub(before) / 1024;
    eprintln!(
        "RSS {before} KiB before, {during} KiB with 1,000 announced messages open; \
         read p99 {idle:?} idle, {busy:?} during"
    );
    assert!(
        grown_mib < 64,
        "RSS grew by {grown_mib} MiB for 64 KB of received bytes"
    );
    let (response, _body) = pending.pop().unwrap();
    let response = response.await.unwrap();
    assert_eq!(
        response.headers()["grpc-status"],
        (Code::DeadlineExceeded as i32).to_string().as_str()
    );
    drop(pending);
    checkpoint_works(&server).await;
}

/// A message announced above the decode limit is refused before its bytes are read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_decode_limit_is_refused_naming_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &["--max-envelope-bytes", "4096"]);
    let publisher = Publisher::new(KeyType::Ed25519);
    let mut rpc = server.client().await.rpc();
    let huge = rpc
        .submit(proto::SubmitRequest {
            envelope: publisher.envelope(&"z".repeat(200_000)),
            public_keys: vec![publisher.pem.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(huge.code(), Code::ResourceExhausted);
    assert!(huge.message().contains("4096"), "{}", huge.message());
    let size = rpc
        .get_checkpoint(proto::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .size;
    assert_eq!(size, 0, "nothing was logged");
}

/// Beyond `max_connections_per_ip`, new connections from one address are closed at once; the
/// slots come back when connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped_and_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &["--max-connections-per-ip", "4"]);
    let addr = addr(&server);
    let mut held = Vec::new();
    let mut closed = 0;
    for _ in 0..10 {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        let mut buf = [0u8; 64];
        // A kept connection sends its HTTP/2 SETTINGS or waits for our preface; a refused one
        // reads end-of-file at once.
        match tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) | Err(_) => held.push(tcp),
        }
    }
    assert_eq!((held.len(), closed), (4, 6));
    drop(held);
    // Slots are given back once the server notices the closes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match glasslog::client::LogClient::connect(&server.url, server.verifier()).await {
            Ok(c) => {
                if c.rpc()
                    .get_checkpoint(proto::GetCheckpointRequest::default())
                    .await
                    .is_ok()
                {
                    break;
                }
            }
            Err(_) if Instant::now() < deadline => {}
            Err(e) => panic!("no slot came back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// At the file-descriptor limit, `accept` fails with EMFILE over and over: the accept loop
/// pauses instead of spinning, and serves again once descriptors are free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accept_loop_pauses_at_the_descriptor_limit() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = TestServer::command(dir.path(), &[], &[]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 128,
                rlim_max: 128,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = TestServer::try_start_cmd(cmd, dir.path()).unwrap();
    let pid = server.child.id();
    let addr = addr(&server);
    // More connections than the server has descriptors: the kernel completes them all (the
    // backlog), the server accepts until EMFILE.
    let mut conns = Vec::new();
    for _ in 0..200 {
        conns.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu0, t0) = (cpu_time(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu, wall) = (cpu_time(pid) - cpu0, t0.elapsed());
    eprintln!("server CPU {cpu:?} in {wall:?} at the descriptor limit");
    assert!(
        cpu < wall / 3,
        "the accept loop used {cpu:?} of CPU in {wall:?}"
    );
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(c) = glasslog::client::LogClient::connect(&server.url, server.verifier()).await {
            if c.rpc()
                .get_checkpoint(proto::GetCheckpointRequest::default())
                .await
                .is_ok()
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Tail: one address holds at most `max_tail_streams_per_ip` streams; a stream whose consumer
/// never reads is ended after `tail_stall_timeout`, its slot given back, and its consumer told
/// why after what was buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_slots_are_per_address_and_reclaimed_from_consumers_that_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &[
            "--max-tail-streams-per-ip",
            "1",
            "--tail-stall-timeout-ms",
            "1500",
        ],
    );
    // ~2.4 MB of entries: more than a stream buffers (1 MiB) and HTTP/2 holds in flight.
    let publisher = Publisher::new(KeyType::Ed25519);
    let client = server.client().await;
    let mut submits = tokio::task::JoinSet::new();
    for i in 0..600 {
        let mut rpc = client.rpc();
        let envelope = publisher.envelope(&format!("{i:04}{}", "e".repeat(3000)));
        let pem = publisher.pem.clone();
        submits.spawn(async move {
            rpc.submit(proto::SubmitRequest {
                envelope,
                public_keys: vec![pem],
            })
            .await
            .unwrap();
        });
        if submits.len() >= 16 {
            submits.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = submits.join_next().await {
        r.unwrap();
    }

    let reader = server.client().await;
    let idle = p99(read_latencies(&reader, 200).await);
    let before = rss_kib(server.child.id());

    // A consumer with a 1 KiB window that never reads.
    let addr = addr(&server);
    let (client_h2, connection) = h2::client::Builder::new()
        .initial_window_size(1024)
        .handshake::<_, Bytes>(TcpStream::connect(&addr).await.unwrap())
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut h2 = client_h2.ready().await.unwrap();
    let (response, mut body) = h2.send_request(grpc_request(&addr, "Tail"), false).unwrap();
    body.send_data(
        Bytes::from(frame(&proto::TailRequest { start: 0 }.encode_to_vec())),
        true,
    )
    .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);

    // The address's one slot is taken.
    let mut rpc = server.client().await.rpc();
    let refused = rpc
        .tail(proto::TailRequest { start: 0 })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("one address"),
        "{}",
        refused.message()
    );

    // Reads go on while the stalled consumer holds its slot and a full buffer.
    let busy = p99(read_latencies(&reader, 200).await);
    let during = rss_kib(server.child.id());
    eprintln!(
        "RSS {before} KiB before, {during} KiB with a stalled Tail consumer; \
         read p99 {idle:?} idle, {busy:?} during"
    );

    // Reclaimed after the stall timeout.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match rpc.tail(proto::TailRequest { start: 0 }).await {
            Ok(s) => break s.into_inner(),
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Err(e) => panic!("the stalled stream's slot did not come back: {e}"),
        }
    };
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.event.is_some());
    drop(stream);

    // The stalled consumer, reading at last, gets what was buffered, then the reason.
    let mut body = response.into_body();
    let mut received = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        received += chunk.len();
        body.flow_control().release_capacity(chunk.len()).unwrap();
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    assert_eq!(
        trailers["grpc-status"],
        (Code::ResourceExhausted as i32).to_string().as_str()
    );
    assert!(received > 0 && received < 2_400_000, "{received} bytes");
    let message = trailers["grpc-message"].to_str().unwrap().to_string();
    assert!(
        message.contains("not%20read") || message.contains("not read"),
        "{message}"
    );
}

/// The standard health service answers SERVING, and server reflection lists the log's service
/// and describes it (what `grpcurl` uses when it has no proto file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let channel = tonic::transport::Endpoint::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "glasslog.v1.TransparencyLog"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel);
    let ask = |m: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let requests = tokio_stream::iter(vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "glasslog.v1.TransparencyLog".into(),
        )),
    ]);
    let mut replies = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        replies.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "glasslog.v1.TransparencyLog",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        replies.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a file descriptor");
    };
    let file =
        prost_types::FileDescriptorProto::decode(&files.file_descriptor_proto[0][..]).unwrap();
    let service = &file.service[0];
    assert_eq!(service.name(), "TransparencyLog");
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    for m in [
        "Submit",
        "GetCheckpoint",
        "GetInclusionProof",
        "Search",
        "Tail",
    ] {
        assert!(methods.contains(&m), "{m} in {methods:?}");
    }
}

/// Token buckets per address for Submit and for reads: a burst of two seconds' worth, then
/// RESOURCE_EXHAUSTED naming the limit with the wait in `grpc-retry-pushback-ms`; nothing of a
/// refused Submit is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_with_a_retry_hint() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &[
            "--rate-submit-per-ip",
            "1",
            "--rate-reads-per-ip",
            "5",
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    let publisher = Publisher::new(KeyType::Ed25519);
    let mut rpc = server.client().await.rpc();
    let submit = |i: usize| proto::SubmitRequest {
        envelope: publisher.envelope(&format!("rate {i}")),
        public_keys: vec![publisher.pem.clone()],
    };
    let mut accepted = 0;
    let refused = loop {
        match rpc.submit(submit(accepted)).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 3, "the Submit limit never bit");
    };
    // A burst of 2 (the bucket may have refilled a little while we submitted).
    assert!((2..=3).contains(&accepted), "{accepted} accepted");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("submissions from one address"),
        "{}",
        refused.message()
    );
    let pushback: u64 = refused
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("a retry hint")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&pushback), "{pushback} ms");

    let mut reads = 0;
    let refused = loop {
        match rpc
            .get_checkpoint(proto::GetCheckpointRequest::default())
            .await
        {
            Ok(c) => {
                assert_eq!(
                    c.into_inner().size,
                    accepted as u64,
                    "nothing refused was logged"
                );
                reads += 1;
            }
            Err(e) => break e,
        }
        assert!(reads <= 20, "the read limit never bit");
    };
    assert!(reads >= 9, "{reads} reads before the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("reads from one address"));
    assert!(refused.metadata().get("grpc-retry-pushback-ms").is_some());
    // After the wait, reads are served again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    rpc.get_checkpoint(proto::GetCheckpointRequest::default())
        .await
        .unwrap();

    // Requests on the HTTP listener are reads from the same address, in the same bucket:
    // 429 with Retry-After once it is empty.
    let http = server.http_url.clone().expect("an HTTP listener");
    let answers = tokio::task::spawn_blocking(move || {
        (0..12)
            .map(|_| common::http::get(&http, "/checkpoint"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let refused = answers
        .iter()
        .find(|r| r.status == 429)
        .expect("the HTTP listener's reads are limited");
    assert_eq!(refused.header("retry-after"), Some("1"));
    let body = String::from_utf8_lossy(&refused.body);
    assert!(body.contains("reads from one address"), "{body}");
    for served in answers.iter().filter(|r| r.status != 429) {
        assert_eq!(served.status, 200);
        assert!(served.body.starts_with(server.origin.as_bytes()));
    }
}

/// The per-key limit charges only keys whose signature verified: naming a victim's key in a
/// request it did not sign costs the victim nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_key_limit_charges_only_verified_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &["--rate-submit-per-key", "1"]);
    let victim = Publisher::new(KeyType::Ed25519);
    let attacker = Publisher::new(KeyType::Ed25519);
    let mut rpc = server.client().await.rpc();
    for i in 0..5 {
        // Signed by the attacker, naming the victim's key: refused, no token taken.
        let e = rpc
            .submit(proto::SubmitRequest {
                envelope: attacker.envelope(&format!("forged {i}")),
                public_keys: vec![victim.pem.clone()],
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    let submit = |i: usize| proto::SubmitRequest {
        envelope: victim.envelope(&format!("honest {i}")),
        public_keys: vec![victim.pem.clone()],
    };
    rpc.submit(submit(0)).await.unwrap();
    rpc.submit(submit(1)).await.unwrap();
    let mut refused = None;
    for i in 2..5 {
        if let Err(e) = rpc.submit(submit(i)).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the per-key limit bit after its burst");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("one publisher key"),
        "{}",
        refused.message()
    );
}
