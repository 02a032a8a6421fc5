//! The server's admin socket: a Unix domain socket in the data directory through which
//! `glasslog backup` asks the running server, which owns the RocksDB handle, for a backup
//! ([`crate::backup::take`]) without stopping it.
//!
//! # Protocol
//!
//! One request and one response per connection, each a single line of JSON:
//!
//! ```text
//! → {"op":"backup","to":"/abs/path/OUT","with_key":false}
//! ← {"backup":{"format":"glasslog-backup/1","origin":…,"tree_size":…,…}}   (the Manifest)
//! ← {"error":"/abs/path/OUT exists: a backup goes to a new directory"}
//! ```
//!
//! # Access
//!
//! `DATA_DIR/admin.sock`, mode 0600 inside the 0700 data directory; a peer whose user id is
//! neither the server's nor root's is also refused (`SO_PEERCRED`). Never a network port. The
//! socket is removed on a clean shutdown; one left by a crash is replaced at the next start
//! (the server then holds the database lock, so no other server of this directory runs).
//! Requests are served one at a time; a request line must arrive within [`REQUEST_TIMEOUT`] and
//! be at most [`MAX_REQUEST_BYTES`]. A backup under way when shutdown begins is finished first.
//!
//! It is not the gRPC service and carries no log data; it chooses no gRPC status.

use std::io::{BufRead, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::storage::Store;
use crate::backup::{self, Manifest};

/// The socket's file name inside the data directory.
pub const SOCKET_FILE: &str = "admin.sock";
/// How long a client may take to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request line read.
pub const MAX_REQUEST_BYTES: u64 = 64 << 10;
/// The longest socket path a `sockaddr_un` holds (108 bytes with the terminating NUL, on Linux).
const MAX_SOCKET_PATH: usize = 107;

/// A request on the admin socket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// A backup into the new directory `to` (absolute), `log.key` included if `with_key`.
    Backup { to: PathBuf, with_key: bool },
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// The backup was written; what it holds.
    Backup(Manifest),
    /// The request failed; why.
    Error(String),
}

/// Errors of the admin socket, on either side.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin socket {0}: exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error(
        "admin socket {0}: longer than the {MAX_SOCKET_PATH} bytes a Unix socket path may have; \
         use a shorter data directory path"
    )]
    PathTooLong(PathBuf),
    #[error("admin socket {path}: the answer is not a response: {why}")]
    Protocol { path: PathBuf, why: String },
}

/// The admin socket's path in `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Binds `DATA_DIR/admin.sock` (replacing a stale one) and serves backups of `store` on it until
/// `stop` turns true; the task then removes the socket. `None`, and a warning logged, when the
/// socket's path is too long for a Unix socket: the server then runs without one (`backup`
/// needs it stopped), rather than refuse to start where it started before.
///
/// # Errors
/// The socket cannot be bound, or its path holds something that is not a socket.
pub fn start(
    data_dir: &Path,
    store: Arc<Store>,
    mut stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, AdminError> {
    let path = socket_path(data_dir);
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        tracing::warn!(error = %AdminError::PathTooLong(path), "no admin socket: `glasslog backup` needs the server stopped");
        return Ok(None);
    }
    let io = |source| AdminError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(&path).map_err(io)?,
        Ok(_) => return Err(AdminError::NotASocket(path)),
        Err(_) => {}
    }
    let listener = UnixListener::bind(&path).map_err(io)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    let data_dir = data_dir.to_path_buf();
    Ok(Some(tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                _ = stop.wait_for(|&s| s) => break,
                conn = listener.accept() => conn,
            };
            match conn {
                Ok((conn, _)) => serve_one(conn, &store, &data_dir).await,
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, path = %path.display(), "admin socket: not removed");
        }
    })))
}

/// Reads one request from `conn`, carries it out and answers.
async fn serve_one(conn: UnixStream, store: &Arc<Store>, data_dir: &Path) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let ours = unsafe { libc::geteuid() };
    match conn.peer_cred() {
        Ok(cred) if cred.uid() == ours || cred.uid() == 0 => {}
        other => {
            tracing::warn!(peer = ?other, "admin socket: a peer of another user; closed");
            return;
        }
    }
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES));
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Response::Error(format!("no request line within {REQUEST_TIMEOUT:?}")),
        Ok(Err(e)) => Response::Error(format!("reading the request: {e}")),
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error(format!("not a request: {e}")),
            Ok(request) => carry_out(request, store.clone(), data_dir.to_path_buf()).await,
        },
    };
    let mut answer = serde_json::to_vec(&response).unwrap_or_default();
    answer.push(b'\n');
    if let Err(e) = write.write_all(&answer).await {
        tracing::warn!(error = %e, "admin socket: the client left before the answer");
    }
}

async fn carry_out(request: Request, store: Arc<Store>, data_dir: PathBuf) -> Response {
    let Request::Backup { to, with_key } = request;
    let started = std::time::Instant::now();
    let taken = tokio::task::spawn_blocking(move || {
        backup::take(&store, &data_dir, &to, with_key).map_err(|e| e.to_string())
    })
    .await;
    match taken {
        Ok(Ok(manifest)) => {
            tracing::info!(
                tree_size = manifest.tree_size,
                with_key,
                seconds = started.elapsed().as_secs_f64(),
                "backup taken"
            );
            Response::Backup(manifest)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "backup failed");
            Response::Error(e)
        }
        Err(e) => Response::Error(format!("the backup task failed: {e}")),
    }
}

/// Sends `request` to the server of `data_dir` and waits for its answer (a backup takes as long
/// as it takes: no timeout). `Ok(None)` when no server listens there: no socket, one left by
/// a server that is gone (connection refused), or a path too long for one.
///
/// # Errors
/// Any other connection failure, or an answer that is not a [`Response`].
pub fn request(data_dir: &Path, request: &Request) -> Result<Option<Response>, AdminError> {
    let path = socket_path(data_dir);
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        // No server can listen there (see `start`).
        return Ok(None);
    }
    let io = |source| AdminError::Io {
        path: path.clone(),
        source,
    };
    let mut conn = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(conn) => conn,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(io(e)),
    };
    let mut line = serde_json::to_vec(request).map_err(|e| AdminError::Protocol {
        path: path.clone(),
        why: e.to_string(),
    })?;
    line.push(b'\n');
    conn.write_all(&line).map_err(io)?;
    let mut answer = String::new();
    std::io::BufReader::new(conn)
        .read_line(&mut answer)
        .map_err(io)?;
    serde_json::from_str(&answer)
        .map(Some)
        .map_err(|e| AdminError::Protocol {
            path: path.clone(),
            why: format!("{e}: {answer:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_are_one_json_line_each() {
        let request = Request::Backup {
            to: "/b/x".into(),
            with_key: true,
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(line, r#"{"op":"backup","to":"/b/x","with_key":true}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        assert!(serde_json::from_str::<Request>(r#"{"op":"restore","to":"/x"}"#).is_err());
        let error = Response::Error("no".into());
        assert_eq!(serde_json::to_string(&error).unwrap(), r#"{"error":"no"}"#);
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_removed_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
        let stale = std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap();
        drop(stale); // the file stays, nobody listens: what a crash leaves
        assert_eq!(
            request(
                dir.path(),
                &Request::Backup {
                    to: "/x".into(),
                    with_key: false
                }
            )
            .unwrap(),
            None,
            "a stale socket means no server"
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = start(dir.path(), store, stop_rx).unwrap().unwrap();
        let mode = std::fs::metadata(socket_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_path = dir.path().to_path_buf();
        let answer = tokio::task::spawn_blocking(move || {
            request(
                &dir_path,
                &Request::Backup {
                    to: "relative".into(),
                    with_key: false,
                },
            )
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            matches!(&answer, Some(Response::Error(e)) if e.contains("absolute")),
            "{answer:?}"
        );
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert!(!socket_path(dir.path()).exists());
    }

    #[tokio::test]
    async fn a_path_too_long_for_a_socket_means_no_socket_not_a_failed_start() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("d".repeat(120));
        std::fs::create_dir(&long).unwrap();
        let store = Arc::new(Store::open(&long.join("db")).unwrap());
        let (_stop_tx, stop_rx) = watch::channel(false);
        assert!(start(&long, store, stop_rx).unwrap().is_none());
        let request = Request::Backup {
            to: "/x".into(),
            with_key: false,
        };
        assert_eq!(super::request(&long, &request).unwrap(), None);
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(socket_path(dir.path()), b"mine").unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_stop_tx, stop_rx) = watch::channel(false);
        let err = runtime
            .block_on(async { start(dir.path(), store, stop_rx) })
            .unwrap_err();
        assert!(matches!(err, AdminError::NotASocket(_)), "{err}");
        assert_eq!(std::fs::read(socket_path(dir.path())).unwrap(), b"mine");
    }
}
