//! `glasslog serve`: open (or create) the log and serve it until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::server::config::{FileConfig, ServerConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML config file (see deploy/glasslog.toml); flags override it.
    #[arg(long, env = "GLASSLOG_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: the log key and the RocksDB database [default: ./glasslog-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:50051].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the HTTP listener, which serves the log as C2SP tlog-tiles (`/checkpoint`,
    /// `/tile/…`); port 0 picks a free port [default: none].
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// The log's origin, set on first start (schemeless URL form, e.g. log.example.org/models);
    /// later starts must give the same or none [default: <host name>/glasslog].
    #[arg(long)]
    origin: Option<String>,
    /// Largest envelope accepted, in bytes [default: 1048576].
    #[arg(long)]
    max_envelope_bytes: Option<usize>,
    /// Most entries group-committed in one batch [default: 1024].
    #[arg(long)]
    max_batch: Option<usize>,
    /// Longest wait, once a submission arrived, for those still being admitted, in ms [default: 2;
    /// 0 takes what is queued].
    #[arg(long)]
    batch_window_ms: Option<u64>,
    /// Most concurrent Tail streams [default: 256].
    #[arg(long)]
    max_tail_streams: Option<usize>,
    /// Most concurrent Tail streams from one IP address [default: 8].
    #[arg(long)]
    max_tail_streams_per_ip: Option<usize>,
    /// End a Tail stream whose consumer took nothing for this long with its buffer full, in ms
    /// [default: 60000].
    #[arg(long)]
    tail_stall_timeout_ms: Option<u64>,
    /// RocksDB's memory, in MiB: its block cache, which its memtables are charged to
    /// [default: 256, at least 8].
    #[arg(long, value_name = "MIB")]
    rocksdb_cache_mib: Option<usize>,
    /// Submissions per second from one address (IPv6: one /64), bursts of two seconds' worth;
    /// 0 is no limit [default: 0 when every listener is on loopback, else 50].
    #[arg(long, value_name = "PER_SECOND")]
    rate_submit_per_ip: Option<f64>,
    /// Submissions per second signed by one publisher key [default: 0 on loopback, else 20].
    #[arg(long, value_name = "PER_SECOND")]
    rate_submit_per_key: Option<f64>,
    /// Read rpcs per second from one address [default: 0 on loopback, else 500].
    #[arg(long, value_name = "PER_SECOND")]
    rate_reads_per_ip: Option<f64>,
    /// An in-toto predicate type to accept without declaration checks, besides the model-release
    /// and training-data types (repeatable).
    #[arg(long = "extra-predicate-type", value_name = "URI")]
    extra_predicate_types: Vec<String>,
    /// A C2SP tlog-policy file: the witnesses to ask for cosignatures (with their URLs) and the
    /// quorum that makes a checkpoint witnessed. Acknowledgement does not wait for witnesses.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
    /// Least time between two witnessing rounds, in ms [default: 1000]; 0 starts a round as
    /// soon as the previous one settled.
    #[arg(long)]
    witness_interval_ms: Option<u64>,
    /// Publish the log as C2SP tlog-tiles to s3://BUCKET/PREFIX (endpoint, region and
    /// credentials from the AWS_* environment variables or --s3-endpoint) or file:///DIR. With
    /// s3://, this server sequences only while it holds the bucket's sequencing lease.
    #[arg(long, value_name = "URL")]
    publish: Option<String>,
    /// The S3 endpoint for --publish s3://… (an http:// endpoint is used as given).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// How long the sequencing lease lasts, in ms [default: 30000]; it is renewed every sixth
    /// of that, and writes stop a third of it before it would expire unrenewed.
    #[arg(long)]
    lease_ttl_ms: Option<u64>,
    /// Least time between two publications, in ms [default: 500]; 0 publishes each new head
    /// as soon as the previous publication finished.
    #[arg(long)]
    publish_interval_ms: Option<u64>,
    /// Most open connections per listener [default: 4096].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most open connections from one IP address per listener [default: 64].
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Most concurrent rpcs (HTTP/2 streams) on one connection [default: 128].
    #[arg(long)]
    max_concurrent_streams: Option<u32>,
    /// Longest time to receive a request and start its reply, in ms [default: 30000].
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// HTTP/2 keepalive PING interval, in ms [default: 60000]; unanswered within a third of it,
    /// the connection is closed.
    #[arg(long)]
    keepalive_interval_ms: Option<u64>,
    /// Connections are asked to go away after this long, in ms [default: 3600000].
    #[arg(long)]
    max_connection_age_ms: Option<u64>,
    /// TLS certificate chain (PEM, leaf first) for every listener; reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM): Submit then requires a client certificate chaining to one of
    /// them; reads stay open.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Serve plaintext on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    plaintext: bool,
}

impl ServeArgs {
    fn as_file_config(&self) -> FileConfig {
        FileConfig {
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            http_listen: self.http_listen,
            origin: self.origin.clone(),
            max_envelope_bytes: self.max_envelope_bytes,
            max_batch: self.max_batch,
            batch_window_ms: self.batch_window_ms,
            queue_depth: None,
            max_tail_streams: self.max_tail_streams,
            max_tail_streams_per_ip: self.max_tail_streams_per_ip,
            tail_stall_timeout_ms: self.tail_stall_timeout_ms,
            rocksdb_cache_mib: self.rocksdb_cache_mib,
            rate_submit_per_ip: self.rate_submit_per_ip,
            rate_submit_per_key: self.rate_submit_per_key,
            rate_reads_per_ip: self.rate_reads_per_ip,
            extra_predicate_types: Some(self.extra_predicate_types.clone())
                .filter(|t| !t.is_empty()),
            witness_policy: self.witness_policy.clone(),
            witness_interval_ms: self.witness_interval_ms,
            publish: self.publish.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            lease_ttl_ms: self.lease_ttl_ms,
            publish_interval_ms: self.publish_interval_ms,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_concurrent_streams: self.max_concurrent_streams,
            request_timeout_ms: self.request_timeout_ms,
            keepalive_interval_ms: self.keepalive_interval_ms,
            max_connection_age_ms: self.max_connection_age_ms,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            plaintext: self.plaintext.then_some(true),
        }
    }
}

pub fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let config = ServerConfig::resolve(file.overlay(args.as_file_config()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ServerConfig) -> Result<(), CliError> {
    let mut log = crate::server::open(&config)?;
    // With an s3:// publication, the lease is taken (or refused) before anything listens.
    log.prepare_publication(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let http = match config.http_listen {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    // Plain lines on stdout, for operators and for scripts that start the server ("listening
    // on" comes last: once it is printed, every listener accepts).
    println!("origin: {}", log.origin);
    println!("verifier key: {}", log.verifier_key);
    if let Some(http) = &http {
        println!("http listening on {}", http.local_addr()?);
    }
    println!("listening on {addr}");
    tracing::info!(origin = %log.origin, verifier_key = %log.verifier_key, %addr, data_dir = %config.data_dir.display(), "serving");
    let listeners = crate::server::Listeners {
        grpc: listener,
        http,
    };
    crate::server::serve(log, &config, listeners, super::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
