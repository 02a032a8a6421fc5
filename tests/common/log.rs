//! Growing a test server's log to exact sizes: `glasslog bench` for bulk, single submissions for
//! checkpoints of exactly one more entry.

use super::{Publisher, TestServer};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The size of the server's latest checkpoint.
pub fn current_size(server: &TestServer) -> u64 {
    runtime().block_on(async { server.client().await.checkpoint().await.unwrap().0.size })
}

/// The server's latest checkpoint note.
pub fn current_note(server: &TestServer) -> String {
    runtime().block_on(async { server.client().await.checkpoint().await.unwrap().1 })
}

/// Fills the log to `size` entries with `glasslog bench` (distinct envelopes, 64 callers).
pub fn fill_to(server: &TestServer, size: u64) {
    let now = current_size(server);
    assert!(size >= now, "the log already has {now} entries");
    if size == now {
        return;
    }
    let out = bench(server, size - now);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(current_size(server), size);
}

/// Runs `glasslog bench -n n -c 64` against `server`; the caller judges the outcome.
pub fn bench(server: &TestServer, n: u64) -> std::process::Output {
    std::process::Command::new(super::glasslog_bin())
        .args(["bench", "-c", "64", "--server", &server.url, "--log-key"])
        .arg(&server.verifier_key)
        .args(["-n", &n.to_string()])
        .output()
        .unwrap()
}

/// Submits one entry on its own, so that the log signs a checkpoint for exactly one more entry;
/// returns the new size and its checkpoint note.
pub fn submit_one(server: &TestServer, publisher: &Publisher, n: u64) -> (u64, String) {
    runtime().block_on(async {
        let c = server.client().await;
        let s = c
            .submit(
                publisher.envelope(&format!("entry {n}")),
                vec![publisher.pem.clone()],
            )
            .await
            .unwrap();
        let (cp, note) = c.checkpoint().await.unwrap();
        assert_eq!(cp.size, s.index + 1);
        (cp.size, note)
    })
}

/// The root hash line of a checkpoint note (base64).
pub fn root_of(note: &str) -> String {
    note.lines().nth(2).unwrap().to_string()
}
