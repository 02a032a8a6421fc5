//! The gRPC server: opens the log, runs the service, and shuts down cleanly.
//!
//! Shutdown (SIGINT/SIGTERM, or the sequencer failing): Tail streams are told to end and the
//! listener stops accepting; in-flight rpcs get [`SHUTDOWN_GRACE`] to finish; then the sequencer
//! commits and answers what is queued, refuses the rest (UNAVAILABLE: nothing is half-written,
//! and a retry is deduplicated), and the database closes.
//!
//! # Layout
//!
//! An append: `service` (proto → domain, `request` checks) → admission → `sequencer` (group
//! commit) → `storage` (one atomic batch; key schema in `storage/schema.rs`) → reply. A proof:
//! `service` → `prover` → `storage` → reply. `tail` streams entries and checkpoints. Every
//! failure becomes a gRPC status in `status` only. `config` is the leaf every other module may
//! read (limits, sequencer tuning, the reply size bound) and imports none of them.

pub mod admin;
pub mod config;
/// Test-only lies for hostile-server fixtures (the `fault-injection` feature, never in a normal build).
#[cfg(feature = "fault-injection")]
mod faults;
pub mod head;
mod http;
pub mod lease;
pub mod logkey;
pub mod metrics;
pub mod prover;
pub mod publisher;
pub mod ratelimit;
pub mod rebuild;
pub mod request;
pub mod search;
pub mod sequencer;
mod service;
mod status;
pub mod storage;
mod tail;
pub mod tiles;
pub mod transport;
pub mod witnessing;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::keyfile::KeyFileError;
use crate::proto::transparency_log_server::TransparencyLogServer;
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::WitnessPolicy;
use config::ServerConfig;
use prover::Prover;
use sequencer::{Sequencer, SequencerError};
pub use service::LogService;
pub use status::ApiError;
use storage::{schema, StorageError, Store};
pub use tail::CATCH_UP_RUN;

/// How long in-flight rpcs may run after shutdown begins.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    LogKey(#[from] KeyFileError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the log key or origin does not match this database: {0}")]
    IdentityMismatch(String),
    #[error(
        "{key} is missing, but the log's database {db} exists: restore the key file from your \
         backup. A new key would be another log, which no verifier pinned; none was created"
    )]
    MissingLogKey { key: PathBuf, db: PathBuf },
    #[error("sequencer: {0}")]
    Sequencer(#[from] SequencerError),
    #[error("sequencer thread panicked")]
    SequencerPanicked,
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("witness policy {path}: {reason}")]
    WitnessPolicy { path: PathBuf, reason: String },
    #[error("publication: {0}")]
    Bucket(#[from] crate::bucket::BucketError),
    #[error("publication: {0}")]
    Lease(#[from] lease::LeaseError),
    #[error("TLS: {0}")]
    Tls(#[from] transport::tls::TlsError),
    #[error("listener: {0}")]
    Listen(#[from] std::io::Error),
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
}

/// An opened log, ready to serve.
pub struct OpenLog {
    pub origin: String,
    pub verifier_key: String,
    store: Arc<Store>,
    sequencer: Sequencer,
    thread: std::thread::JoinHandle<Result<(), SequencerError>>,
    witness_policy: Option<Arc<WitnessPolicy>>,
    /// Shut until the sequencing lease is taken, for an `s3://` publication.
    gate: Arc<lease::Gate>,
    publication: Option<Publication>,
    /// Created with the sequencer, which records into it from its start.
    metrics: Arc<metrics::Metrics>,
}

/// A publication target, and its lease once taken.
struct Publication {
    bucket: Arc<crate::bucket::Bucket>,
    lease: Option<lease::Lease>,
}

/// Opens (or creates, on first start) the log in `config.data_dir`: the key, the database, and
/// the sequencer. Reads no entries, so it takes the same time at any log size.
///
/// # Errors
/// Key, storage or consistency failures; each says what to do.
pub fn open(config: &ServerConfig) -> Result<OpenLog, ServerError> {
    // A key is created only for a new log: next to an existing database it would be an orphan.
    let (key, db) = (
        config.data_dir.join(logkey::KEY_FILE),
        config::database_path(&config.data_dir),
    );
    if db.exists() && !key.exists() {
        return Err(ServerError::MissingLogKey { key, db });
    }
    let signer = logkey::open_or_create(&config.data_dir, config.origin.as_deref())?;
    let witness_policy = match &config.witness_policy {
        Some(path) => Some(Arc::new(load_witness_policy(path, &signer.verifier_key())?)),
        None => None,
    };
    let store = Arc::new(Store::open_with(
        &config::database_path(&config.data_dir),
        &config.storage,
    )?);
    check_identity(&store, signer.origin(), &signer.verifier_key())?;
    let origin = signer.origin().to_string();
    let verifier_key = signer.verifier_key();
    let bucket = match &config.publish {
        Some(p) => Some(Arc::new(crate::bucket::Bucket::open(&p.url, &p.s3)?)),
        None => None,
    };
    let gate = match &bucket {
        Some(b) if b.kind() == crate::bucket::Kind::S3 => {
            lease::Gate::shut("the sequencing lease has not been taken yet")
        }
        _ => lease::Gate::always_open(),
    };
    let metrics = metrics::Metrics::new();
    let (sequencer, thread) = Sequencer::start(
        store.clone(),
        signer,
        config.sequencer.clone(),
        gate.clone(),
        metrics.clone(),
    )?;
    Ok(OpenLog {
        origin,
        verifier_key,
        store,
        sequencer,
        thread,
        witness_policy,
        gate,
        publication: bucket.map(|bucket| Publication {
            bucket,
            lease: None,
        }),
        metrics,
    })
}

impl OpenLog {
    /// For an `s3://` publication, takes the bucket's sequencing lease (the log accepts writes
    /// only from then on). Call before serving; a no-op otherwise.
    ///
    /// # Errors
    /// [`lease::LeaseError`]: another server holds the lease, or the bucket's log is not this
    /// server's or is ahead of it.
    pub async fn prepare_publication(&mut self, config: &ServerConfig) -> Result<(), ServerError> {
        let (Some(p), Some(publish)) = (&mut self.publication, &config.publish) else {
            return Ok(());
        };
        if p.bucket.kind() != crate::bucket::Kind::S3 {
            return Ok(());
        }
        let verifier = LogVerifier::new(&self.verifier_key)
            .map_err(|e| ServerError::IdentityMismatch(e.to_string()))?;
        let taken = lease::acquire(
            p.bucket.clone(),
            &self.store,
            &verifier,
            publish.lease_ttl,
            self.gate.clone(),
        )
        .await?;
        tracing::info!(bucket = %p.bucket.url(), "sequencing lease taken");
        p.lease = Some(taken);
        Ok(())
    }
}

/// Reads a witness policy and checks that it can witness this log: if it lists logs, this
/// log's key is one of them; every witness the log should ask has an `http://` URL.
fn load_witness_policy(path: &Path, verifier_key: &str) -> Result<WitnessPolicy, ServerError> {
    let invalid = |reason: String| ServerError::WitnessPolicy {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let policy = WitnessPolicy::parse(&text).map_err(|e| invalid(e.to_string()))?;
    let log = LogVerifier::new(verifier_key).map_err(|e| invalid(e.to_string()))?;
    if !policy.covers_log(&log) {
        return Err(invalid(format!(
            "its log lines do not list this log's key {verifier_key}"
        )));
    }
    for w in policy.witnesses() {
        match &w.url {
            Some(url) if !url.starts_with("http://") => {
                return Err(invalid(format!(
                    "witness {}: URL {url}: this version reaches witnesses over http:// only \
                     (put a TLS-terminating proxy in front of an https:// witness)",
                    w.name
                )))
            }
            _ => {}
        }
    }
    Ok(policy)
}

/// Records the log's identity in the database on first start, and refuses a key file that is not
/// the one the database was created with.
fn check_identity(store: &Store, origin: &str, verifier_key: &str) -> Result<(), ServerError> {
    match (store.meta(schema::META_ORIGIN)?, store.meta(schema::META_VERIFIER_KEY)?) {
        (None, None) => {
            let mut b = store.batch();
            b.put_meta(schema::META_ORIGIN, origin.as_bytes());
            b.put_meta(schema::META_VERIFIER_KEY, verifier_key.as_bytes());
            Ok(store.commit(b)?)
        }
        (Some(o), Some(k)) if o == origin.as_bytes() && k == verifier_key.as_bytes() => Ok(()),
        (o, k) => Err(ServerError::IdentityMismatch(format!(
            "database was created for {:?} with key {:?}, the key file is for {origin:?} with key {verifier_key:?}",
            o.map(|o| String::from_utf8_lossy(&o).into_owned()),
            k.map(|k| String::from_utf8_lossy(&k).into_owned()),
        ))),
    }
}

/// The server's listeners, bound by the caller (so that it can print their addresses first).
pub struct Listeners {
    pub grpc: TcpListener,
    /// The HTTP faces ([`http`]): the log as C2SP tlog-tiles.
    pub http: Option<TcpListener>,
}

/// Serves `log` on `listeners` until `shutdown` completes or the sequencer fails.
///
/// # Errors
/// The sequencer's fatal error (the caller should exit non-zero so the log is reopened from
/// disk), or a transport error.
pub async fn serve(
    log: OpenLog,
    config: &ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (failed_tx, mut failed_rx) = watch::channel(false);
    let OpenLog {
        origin,
        verifier_key,
        store,
        sequencer,
        thread,
        witness_policy,
        gate,
        publication,
        metrics,
    } = log;
    let closer = sequencer.clone();
    let flusher = store.clone();
    let mut stopping = stop_rx.clone();
    let sequencer_done = tokio::task::spawn_blocking(move || {
        let result = thread.join();
        if !matches!(result, Ok(Ok(()))) {
            let _ = failed_tx.send(true);
        }
        result
    });

    let witnessing = match witness_policy {
        Some(policy) => {
            tracing::info!(policy = %policy, "witnessing");
            Some(witnessing::start(
                policy,
                config.witness_interval,
                store.clone(),
                sequencer.clone(),
                stop_rx.clone(),
            )?)
        }
        None => None,
    };
    let admin = admin::start(&config.data_dir, store.clone(), stop_rx.clone())?;
    let head = head::Head::new(&sequencer, witnessing.as_ref());
    // The lease is released only once the sequencer thread has ended, so that no checkpoint
    // is signed after a successor may have taken it.
    let (release_tx, release_rx) = watch::channel(false);
    let (publish_status, lease_task) = match publication {
        Some(p) => {
            let verifier = LogVerifier::new(&verifier_key)
                .map_err(|e| ServerError::IdentityMismatch(e.to_string()))?;
            tracing::info!(bucket = %p.bucket.url(), "publishing tiles");
            let status = publisher::start(
                p.bucket,
                store.clone(),
                head.clone(),
                verifier,
                gate,
                config
                    .publish
                    .as_ref()
                    .map_or(Duration::ZERO, |p| p.interval),
                stop_rx.clone(),
            );
            let lease_task = p
                .lease
                .map(|l| l.keep(store.clone(), status.clone(), release_rx));
            (Some(status), lease_task)
        }
        None => (None, None),
    };
    let t = &config.transport;
    let (grpc_tls, http_tls) = match &t.tls {
        Some(files) => (
            Some(Arc::new(transport::tls::Tls::load(files, &[b"h2"])?)),
            Some(Arc::new(transport::tls::Tls::load(
                files,
                &[b"h2", b"http/1.1"],
            )?)),
        ),
        None => (None, None),
    };
    transport::tls::reload_on_sighup(
        grpc_tls.iter().chain(&http_tls).cloned().collect(),
        stop_rx.clone(),
    );
    let grpc_incoming = transport::accept(listeners.grpc, t, grpc_tls, stop_rx.clone())?;
    let http = match listeners.http {
        Some(l) => Some(transport::accept(l, t, http_tls, stop_rx.clone())?),
        None => None,
    };
    // One set of buckets for both listeners: a client's reads count the same over either.
    let rates = Arc::new(ratelimit::Rates::new(&config.limits.rates));
    let http = http.map(|incoming| {
        let state = http::HttpState {
            rates: rates.clone(),
            store: store.clone(),
            head: head.clone(),
            publish: publish_status.clone(),
            metrics: metrics.clone(),
            tile_cache: Arc::new(http::tiles::TileCache::new(http::TILE_CACHE_BYTES)),
            log: http::explorer::LogIdentity {
                origin: origin.as_str().into(),
                verifier_key: verifier_key.as_str().into(),
            },
        };
        let mut stopping = stop_rx.clone();
        let transport = t.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopping.wait_for(|&s| s).await;
            };
            http::serve(state, incoming, &transport, stop).await;
        })
    });
    let service = LogService {
        origin,
        verifier_key,
        prover: Prover::new(store.clone()),
        store,
        sequencer,
        limits: config.limits.clone(),
        tail_permits: Arc::new(Semaphore::new(config.limits.max_tail_streams)),
        tail_per_address: Arc::default(),
        shutdown: stop_rx.clone(),
        keys: Arc::default(),
        admission_permits: service::admission_permits(),
        witnessing,
        submit_needs_client_cert: t.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        rates,
        metrics,
    };
    let decode_limit = config.limits.decode_limit();
    let grpc = TransparencyLogServer::new(service).max_decoding_message_size(decode_limit);
    // Read each request whole before tonic decodes it: nothing is reserved for bytes that
    // have not arrived (transport/body.rs). 5 bytes of gRPC framing per message.
    let grpc = transport::body::WholeBody::new(
        grpc,
        decode_limit + 5,
        format!(
            "request is over {decode_limit} bytes; this log accepts envelopes of at most {} bytes \
             with up to {} bytes of keys",
            config.limits.max_envelope_bytes,
            config::KEY_LIST_ALLOWANCE
        ),
        t.request_timeout,
    );
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<TransparencyLogServer<LogService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled-in descriptors are valid");
    let mut health_stopping = stop_rx.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            _ = failed_rx.wait_for(|&f| f) => tracing::error!("sequencer failed; shutting down"),
        }
        let _ = stop_tx.send(true);
    };
    // Health: SERVING until shutdown begins, then NOT_SERVING so balancers drain this server.
    tokio::spawn(async move {
        let _ = health_stopping.wait_for(|&s| s).await;
        health
            .set_not_serving::<TransparencyLogServer<LogService>>()
            .await;
    });
    let served = tonic::transport::Server::builder()
        .max_concurrent_streams(t.max_concurrent_streams)
        .timeout(t.request_timeout)
        .http2_keepalive_interval(Some(t.keepalive_interval))
        .http2_keepalive_timeout(Some(t.keepalive_interval / 3))
        .max_connection_age(t.max_connection_age)
        .max_connection_age_grace(config::MAX_CONNECTION_AGE_GRACE)
        .http2_max_header_list_size(config::MAX_HEADER_LIST_BYTES)
        .add_service(grpc)
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(grpc_incoming.into_stream(), stop);
    tokio::pin!(served);
    // In-flight rpcs get SHUTDOWN_GRACE to finish once the listener has stopped; connections
    // that clients keep open past that are dropped with the process.
    let served = tokio::select! {
        r = &mut served => r,
        () = async {
            let _ = stopping.wait_for(|&s| s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them");
            Ok(())
        }
    };
    if let Some(http) = http {
        // Tile reads finish quickly; they get the same grace as rpcs.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, http).await;
    }
    // A backup under way finishes; the socket is removed.
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    // Commit what is queued, answer it, and stop the sequencer.
    closer.close().await;
    let sequencer = sequencer_done
        .await
        .map_err(|_| ServerError::SequencerPanicked)?;
    if let Some(task) = lease_task {
        // The sequencer thread has ended: release the lease for a successor.
        let _ = release_tx.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
    }
    match sequencer {
        Err(_) => Err(ServerError::SequencerPanicked),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(())) => {
            // A clean stop leaves no WAL to replay, so the next start is immediate.
            if let Err(e) = flusher.flush() {
                tracing::warn!(error = %e, "flush at shutdown failed; the next start replays the WAL");
            }
            Ok(served?)
        }
    }
}
