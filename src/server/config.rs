//! Server configuration: defaults, an optional TOML file, and command-line flags, in increasing
//! order of precedence. `deploy/glasslog.toml` documents every option.
//!
//! This is the leaf of the server's modules: it holds the option types that the service
//! ([`Limits`]) and the sequencer ([`SequencerConfig`]) read, and imports neither of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::admission::dsse::MAX_KEYS;
use crate::admission::keys::MAX_PUBLIC_KEY_PEM_BYTES;
use crate::server::storage::StoreOptions;

/// Most bytes of leaf data in one GetEntries or Search reply or one Tail read, leaving room for
/// framing under the 4 MiB that gRPC clients accept by default. Fixed, not an option: raising it
/// would break clients that keep gRPC's default.
pub const MAX_REPLY_BYTES: usize = (4 << 20) - (64 << 10);

/// Limits and admission policy the service enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest envelope Submit reads, in bytes, checked before it is parsed. The logged leaf
    /// has its own, fixed limit ([`crate::entry::MAX_LEAF_BYTES`]), which binds first for any
    /// value above about 65 KB.
    pub max_envelope_bytes: usize,
    /// Most concurrent Tail streams.
    pub max_tail_streams: usize,
    /// Most concurrent Tail streams from one IP address.
    pub max_tail_streams_per_ip: usize,
    /// A Tail stream whose consumer has taken nothing for this long while its buffer is full
    /// is ended, so that its slot goes to someone who reads.
    pub tail_stall_timeout: Duration,
    /// In-toto predicate types accepted without declaration checks, besides the two glasslog
    /// declaration types (operator's choice; empty by default).
    pub extra_predicate_types: Vec<String>,
    pub rates: RateConfig,
}

impl Limits {
    /// The largest gRPC message the server decodes: a SubmitRequest of the largest envelope
    /// and a bounded key list ([`KEY_LIST_ALLOWANCE`]), so that the service's own check answers
    /// an oversized envelope with its limit named. Every other request is far smaller.
    pub fn decode_limit(&self) -> usize {
        self.max_envelope_bytes + KEY_LIST_ALLOWANCE
    }
}

/// Bytes a SubmitRequest may carry besides its envelope: its public keys (at most
/// [`MAX_KEYS`] of at most [`MAX_PUBLIC_KEY_PEM_BYTES`]), each with its protobuf tag and
/// length, and the envelope's own tag and length.
pub const KEY_LIST_ALLOWANCE: usize = MAX_KEYS * (MAX_PUBLIC_KEY_PEM_BYTES + 8) + 16;

/// Largest HTTP/2 header list a client may send (SETTINGS_MAX_HEADER_LIST_SIZE).
pub const MAX_HEADER_LIST_BYTES: u32 = 16 << 10;

/// Rate limits, in requests per second (bursts of two seconds' worth); 0 is no limit
/// ([`crate::server::ratelimit`]). Off by default when every listener is on a loopback
/// address, on otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct RateConfig {
    pub submit_per_ip: f64,
    pub submit_per_key: f64,
    pub reads_per_ip: f64,
}

impl RateConfig {
    /// No limits: a server only this host can reach.
    pub const OFF: RateConfig = RateConfig {
        submit_per_ip: 0.0,
        submit_per_key: 0.0,
        reads_per_ip: 0.0,
    };
    /// The defaults of a server reachable from the network: room for a busy publisher and a
    /// monitor per address, not for a flood.
    pub const PUBLIC: RateConfig = RateConfig {
        submit_per_ip: 50.0,
        submit_per_key: 20.0,
        reads_per_ip: 500.0,
    };
}

/// The default [`SequencerConfig::batch_window`]. Measured (docs/performance.md, "Group
/// commit"): without a window, admission-bound load at C = 64 committed 4.5 entries per batch.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(2);

/// Tuning of the sequencer's group commit.
#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// Most entries in one batch (one checkpoint, one fsync).
    pub max_batch: usize,
    /// Longest wait, once one submission has arrived, for submissions still being admitted
    /// ([`crate::server::sequencer::Announced`]); a submission with nothing else on its way is
    /// committed at once. Zero takes only what is queued.
    pub batch_window: Duration,
    /// Submissions that may wait in the queue; further submitters wait for room.
    pub queue_depth: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_batch: 1024,
            batch_window: DEFAULT_BATCH_WINDOW,
            queue_depth: 4096,
        }
    }
}

/// Limits on connections, the same for every listener ([`crate::server::transport`]).
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Most open connections per listener; beyond, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Most open connections from one IP address per listener; beyond, new ones are closed.
    pub max_connections_per_ip: usize,
    /// Most concurrent HTTP/2 streams (rpcs) on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// Longest time to receive a request and produce its reply's headers (a Tail stream's
    /// entries are not counted: it is bounded by its own rules).
    pub request_timeout: Duration,
    /// HTTP/2 keepalive: a PING after this much silence, and the connection closed if it is not
    /// answered within a third of it.
    pub keepalive_interval: Duration,
    /// A connection is asked to go away (HTTP/2 GOAWAY) after this long, and closed
    /// [`MAX_CONNECTION_AGE_GRACE`] later: no client holds a slot forever.
    pub max_connection_age: Duration,
    /// TLS on every listener; `None`: plaintext, allowed only on loopback addresses unless
    /// `plaintext` says otherwise.
    pub tls: Option<TlsConfig>,
    /// Serve plaintext on a non-loopback address (behind a TLS-terminating proxy).
    pub plaintext: bool,
}

/// How long rpcs in flight may finish on a connection past its `max_connection_age`.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(30);

/// TLS certificate files (PEM), read at start and on SIGHUP.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates whose client certificates authenticate publishers: with it, Submit
    /// requires a client certificate chaining to one of them; reads stay open to anyone.
    pub client_ca: Option<PathBuf>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_connections: 4096,
            max_connections_per_ip: 64,
            max_concurrent_streams: 128,
            request_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(60),
            max_connection_age: Duration::from_secs(3600),
            tls: None,
            plaintext: false,
        }
    }
}

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The options of `glasslog serve`, as they may appear in the config file. Every field is
/// optional there; [`ServerConfig::resolve`] applies the defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub origin: Option<String>,
    pub max_envelope_bytes: Option<usize>,
    pub max_batch: Option<usize>,
    pub batch_window_ms: Option<u64>,
    pub queue_depth: Option<usize>,
    pub max_tail_streams: Option<usize>,
    pub max_tail_streams_per_ip: Option<usize>,
    pub tail_stall_timeout_ms: Option<u64>,
    pub rate_submit_per_ip: Option<f64>,
    pub rate_submit_per_key: Option<f64>,
    pub rate_reads_per_ip: Option<f64>,
    pub extra_predicate_types: Option<Vec<String>>,
    pub witness_policy: Option<PathBuf>,
    pub witness_interval_ms: Option<u64>,
    pub publish: Option<String>,
    pub s3_endpoint: Option<String>,
    pub lease_ttl_ms: Option<u64>,
    pub publish_interval_ms: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_concurrent_streams: Option<u32>,
    pub request_timeout_ms: Option<u64>,
    pub keepalive_interval_ms: Option<u64>,
    pub max_connection_age_ms: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub plaintext: Option<bool>,
    pub rocksdb_cache_mib: Option<usize>,
}

impl FileConfig {
    /// Reads a TOML config file; unknown keys are an error, so a typo is never ignored.
    ///
    /// # Errors
    /// The file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }

    /// Fills every option set in `over` into `self` (flags over file).
    pub fn overlay(self, over: FileConfig) -> FileConfig {
        FileConfig {
            data_dir: over.data_dir.or(self.data_dir),
            listen: over.listen.or(self.listen),
            http_listen: over.http_listen.or(self.http_listen),
            origin: over.origin.or(self.origin),
            max_envelope_bytes: over.max_envelope_bytes.or(self.max_envelope_bytes),
            max_batch: over.max_batch.or(self.max_batch),
            batch_window_ms: over.batch_window_ms.or(self.batch_window_ms),
            queue_depth: over.queue_depth.or(self.queue_depth),
            max_tail_streams: over.max_tail_streams.or(self.max_tail_streams),
            max_tail_streams_per_ip: over
                .max_tail_streams_per_ip
                .or(self.max_tail_streams_per_ip),
            tail_stall_timeout_ms: over.tail_stall_timeout_ms.or(self.tail_stall_timeout_ms),
            rate_submit_per_ip: over.rate_submit_per_ip.or(self.rate_submit_per_ip),
            rate_submit_per_key: over.rate_submit_per_key.or(self.rate_submit_per_key),
            rate_reads_per_ip: over.rate_reads_per_ip.or(self.rate_reads_per_ip),
            extra_predicate_types: over.extra_predicate_types.or(self.extra_predicate_types),
            witness_policy: over.witness_policy.or(self.witness_policy),
            witness_interval_ms: over.witness_interval_ms.or(self.witness_interval_ms),
            publish: over.publish.or(self.publish),
            s3_endpoint: over.s3_endpoint.or(self.s3_endpoint),
            lease_ttl_ms: over.lease_ttl_ms.or(self.lease_ttl_ms),
            publish_interval_ms: over.publish_interval_ms.or(self.publish_interval_ms),
            max_connections: over.max_connections.or(self.max_connections),
            max_connections_per_ip: over.max_connections_per_ip.or(self.max_connections_per_ip),
            max_concurrent_streams: over.max_concurrent_streams.or(self.max_concurrent_streams),
            request_timeout_ms: over.request_timeout_ms.or(self.request_timeout_ms),
            keepalive_interval_ms: over.keepalive_interval_ms.or(self.keepalive_interval_ms),
            max_connection_age_ms: over.max_connection_age_ms.or(self.max_connection_age_ms),
            rocksdb_cache_mib: over.rocksdb_cache_mib.or(self.rocksdb_cache_mib),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            tls_client_ca: over.tls_client_ca.or(self.tls_client_ca),
            plaintext: over.plaintext.or(self.plaintext),
        }
    }
}

/// The resolved configuration of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Holds `log.key` and the RocksDB database `db/`.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The HTTP listener of the read-only faces (tiles); `None`: no HTTP listener.
    pub http_listen: Option<SocketAddr>,
    /// The origin to create the log with; on later starts it must equal the stored one.
    pub origin: Option<String>,
    pub limits: Limits,
    pub sequencer: SequencerConfig,
    /// A C2SP tlog-policy file: the witnesses the log asks to cosign, and the quorum that makes
    /// a checkpoint witnessed ([`crate::server::witnessing`]). `None`: no witnessing.
    pub witness_policy: Option<PathBuf>,
    /// The least time between two witnessing rounds (one add-checkpoint per witness each).
    pub witness_interval: Duration,
    /// Where to publish the log as tiles ([`crate::server::publisher`]); `None`: nowhere.
    pub publish: Option<PublishConfig>,
    pub transport: TransportConfig,
    /// RocksDB's memory budget ([`StoreOptions::cache_bytes`]).
    pub storage: StoreOptions,
}

/// Publication of the log's tiles.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// `s3://bucket/prefix` or `file:///dir`.
    pub url: String,
    pub s3: crate::bucket::S3Options,
    /// How long a sequencing lease lasts (`s3://` only, [`crate::server::lease`]).
    pub lease_ttl: Duration,
    /// The least time between two publications ([`crate::server::publisher`]).
    pub interval: Duration,
}

pub const DEFAULT_DATA_DIR: &str = "./glasslog-data";

/// The RocksDB database inside a data directory (the other file there is the log key,
/// [`crate::server::logkey::KEY_FILE`]).
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 1 << 20;
pub const DEFAULT_MAX_TAIL_STREAMS: usize = 256;
pub const DEFAULT_MAX_TAIL_STREAMS_PER_IP: usize = 8;
pub const DEFAULT_TAIL_STALL_TIMEOUT_MS: u64 = 60_000;
/// One witnessing round a second: the rate public witnesses budget for a log (the witness
/// network's log lists give 86,400 requests a day).
pub const DEFAULT_WITNESS_INTERVAL_MS: u64 = 1000;
/// Two publications a second: the publication lag stays under a second, and an entry's partial
/// bundle is rewritten a few times rather than once per group commit.
pub const DEFAULT_PUBLISH_INTERVAL_MS: u64 = 500;

impl ServerConfig {
    /// Applies defaults and checks ranges.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the option out of range.
    pub fn resolve(f: FileConfig) -> Result<ServerConfig, ConfigError> {
        let seq_default = SequencerConfig::default();
        let t_default = TransportConfig::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let listen: SocketAddr = f
            .listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address"));
        let loopback_only =
            listen.ip().is_loopback() && f.http_listen.is_none_or(|a| a.ip().is_loopback());
        let rates_default = if loopback_only {
            RateConfig::OFF
        } else {
            RateConfig::PUBLIC
        };
        let config = ServerConfig {
            data_dir: f.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            listen,
            http_listen: f.http_listen,
            origin: f.origin,
            limits: Limits {
                max_envelope_bytes: f.max_envelope_bytes.unwrap_or(DEFAULT_MAX_ENVELOPE_BYTES),
                max_tail_streams: f.max_tail_streams.unwrap_or(DEFAULT_MAX_TAIL_STREAMS),
                max_tail_streams_per_ip: f
                    .max_tail_streams_per_ip
                    .unwrap_or(DEFAULT_MAX_TAIL_STREAMS_PER_IP),
                tail_stall_timeout: ms(
                    f.tail_stall_timeout_ms,
                    Duration::from_millis(DEFAULT_TAIL_STALL_TIMEOUT_MS),
                ),
                extra_predicate_types: f.extra_predicate_types.unwrap_or_default(),
                rates: RateConfig {
                    submit_per_ip: f.rate_submit_per_ip.unwrap_or(rates_default.submit_per_ip),
                    submit_per_key: f
                        .rate_submit_per_key
                        .unwrap_or(rates_default.submit_per_key),
                    reads_per_ip: f.rate_reads_per_ip.unwrap_or(rates_default.reads_per_ip),
                },
            },
            sequencer: SequencerConfig {
                max_batch: f.max_batch.unwrap_or(seq_default.max_batch),
                batch_window: f
                    .batch_window_ms
                    .map_or(seq_default.batch_window, Duration::from_millis),
                queue_depth: f.queue_depth.unwrap_or(seq_default.queue_depth),
            },
            witness_policy: f.witness_policy,
            witness_interval: Duration::from_millis(
                f.witness_interval_ms.unwrap_or(DEFAULT_WITNESS_INTERVAL_MS),
            ),
            publish: f.publish.map(|url| PublishConfig {
                url,
                s3: crate::bucket::S3Options {
                    endpoint: f.s3_endpoint.clone(),
                },
                lease_ttl: f
                    .lease_ttl_ms
                    .map_or(crate::server::lease::DEFAULT_TTL, Duration::from_millis),
                interval: Duration::from_millis(
                    f.publish_interval_ms.unwrap_or(DEFAULT_PUBLISH_INTERVAL_MS),
                ),
            }),
            transport: TransportConfig {
                max_connections: f.max_connections.unwrap_or(t_default.max_connections),
                max_connections_per_ip: f
                    .max_connections_per_ip
                    .unwrap_or(t_default.max_connections_per_ip),
                max_concurrent_streams: f
                    .max_concurrent_streams
                    .unwrap_or(t_default.max_concurrent_streams),
                request_timeout: ms(f.request_timeout_ms, t_default.request_timeout),
                keepalive_interval: ms(f.keepalive_interval_ms, t_default.keepalive_interval),
                max_connection_age: ms(f.max_connection_age_ms, t_default.max_connection_age),
                tls: match (&f.tls_cert, &f.tls_key) {
                    (Some(cert), Some(key)) => Some(TlsConfig {
                        cert: cert.clone(),
                        key: key.clone(),
                        client_ca: f.tls_client_ca.clone(),
                    }),
                    _ => None,
                },
                plaintext: f.plaintext.unwrap_or(false),
            },
            storage: StoreOptions {
                cache_bytes: f
                    .rocksdb_cache_mib
                    .map_or(StoreOptions::DEFAULT_CACHE_BYTES, |mib| {
                        mib.saturating_mul(1 << 20)
                    }),
                upper_hashes: StoreOptions::DEFAULT_UPPER_HASHES,
            },
        };
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid(what.to_string()))
            }
        };
        check(
            config.limits.max_envelope_bytes >= 1024,
            "max_envelope_bytes must be at least 1024",
        )?;
        check(
            config.limits.max_envelope_bytes <= 64 << 20,
            "max_envelope_bytes must be at most 64 MiB",
        )?;
        check(
            config.sequencer.max_batch >= 1,
            "max_batch must be at least 1",
        )?;
        check(
            config.sequencer.max_batch <= 65_536,
            "max_batch must be at most 65536",
        )?;
        check(
            config.sequencer.batch_window <= Duration::from_secs(1),
            "batch_window_ms must be at most 1000",
        )?;
        check(
            config.sequencer.queue_depth >= 1,
            "queue_depth must be at least 1",
        )?;
        check(
            config.storage.cache_bytes >= 8 << 20,
            "rocksdb_cache_mib must be at least 8",
        )?;
        check(
            config.witness_interval <= Duration::from_secs(3600),
            "witness_interval_ms must be at most 3600000",
        )?;
        if let Some(p) = &config.publish {
            check(
                p.url.starts_with("s3://") || p.url.starts_with("file:///"),
                "publish must be an s3://bucket/prefix or file:///directory URL",
            )?;
            check(
                p.lease_ttl >= Duration::from_secs(3) && p.lease_ttl <= Duration::from_secs(600),
                "lease_ttl_ms must be between 3000 and 600000",
            )?;
            check(
                p.interval <= Duration::from_secs(60),
                "publish_interval_ms must be at most 60000",
            )?;
        }
        check(
            f.s3_endpoint.is_none() || config.publish.is_some(),
            "s3_endpoint is set but publish is not",
        )?;
        check(
            f.tls_cert.is_some() == f.tls_key.is_some(),
            "tls_cert and tls_key go together",
        )?;
        check(
            f.tls_client_ca.is_none() || f.tls_cert.is_some(),
            "tls_client_ca is set but tls_cert is not",
        )?;
        check(
            config.limits.max_tail_streams_per_ip >= 1,
            "max_tail_streams_per_ip must be at least 1",
        )?;
        check(
            config.limits.tail_stall_timeout >= Duration::from_secs(1),
            "tail_stall_timeout_ms must be at least 1000",
        )?;
        let r = &config.limits.rates;
        check(
            [r.submit_per_ip, r.submit_per_key, r.reads_per_ip]
                .iter()
                .all(|v| v.is_finite() && (0.0..=1e6).contains(v)),
            "rate_* limits must be between 0 (off) and 1000000 requests per second",
        )?;
        let t = &config.transport;
        check(t.max_connections >= 1, "max_connections must be at least 1")?;
        check(
            (1..=t.max_connections).contains(&t.max_connections_per_ip),
            "max_connections_per_ip must be between 1 and max_connections",
        )?;
        check(
            (1..=10_000).contains(&t.max_concurrent_streams),
            "max_concurrent_streams must be between 1 and 10000",
        )?;
        check(
            t.request_timeout >= Duration::from_secs(1),
            "request_timeout_ms must be at least 1000",
        )?;
        check(
            t.keepalive_interval >= Duration::from_secs(1),
            "keepalive_interval_ms must be at least 1000",
        )?;
        check(
            t.max_connection_age >= Duration::from_secs(10),
            "max_connection_age_ms must be at least 10000",
        )?;
        if t.tls.is_none() && !t.plaintext {
            for addr in std::iter::once(config.listen).chain(config.http_listen) {
                check(
                    addr.ip().is_loopback(),
                    &format!(
                        "{addr} is not a loopback address: give tls_cert and tls_key (--tls-cert, \
                         --tls-key), or set plaintext = true (--plaintext) if a TLS-terminating \
                         proxy is in front"
                    ),
                )?;
            }
        }
        for t in &config.limits.extra_predicate_types {
            check(
                t.contains("://") && !t.chars().any(char::is_whitespace),
                "extra_predicate_types must be predicate type URIs, e.g. https://example.org/my-type/v1",
            )?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overlay() {
        let c = ServerConfig::resolve(FileConfig::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.limits.max_envelope_bytes, 1 << 20);
        let file = FileConfig {
            max_batch: Some(7),
            listen: Some("127.0.0.1:1".parse().unwrap()),
            ..Default::default()
        };
        let flags = FileConfig {
            max_batch: Some(9),
            ..Default::default()
        };
        let c = ServerConfig::resolve(file.overlay(flags)).unwrap();
        assert_eq!(c.sequencer.max_batch, 9);
        assert_eq!(c.listen.port(), 1);
    }

    #[test]
    fn the_rocksdb_budget_is_set_in_mib_and_has_a_floor() {
        let c = ServerConfig::resolve(FileConfig::default()).unwrap();
        assert_eq!(c.storage.cache_bytes, 256 << 20);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "rocksdb_cache_mib = 64\n").unwrap();
        let c = ServerConfig::resolve(FileConfig::load(&p).unwrap()).unwrap();
        assert_eq!(c.storage.cache_bytes, 64 << 20);
        let small = FileConfig {
            rocksdb_cache_mib: Some(4),
            ..Default::default()
        };
        assert!(matches!(
            ServerConfig::resolve(small),
            Err(ConfigError::Invalid(m)) if m.contains("rocksdb_cache_mib")
        ));
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "max_batch = 5\nmax_bacth = 6\n").unwrap();
        assert!(matches!(
            FileConfig::load(&p),
            Err(ConfigError::Parse { .. })
        ));
        let bad = FileConfig {
            max_batch: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            ServerConfig::resolve(bad),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn rate_limits_are_off_on_loopback_and_on_elsewhere() {
        let loopback = ServerConfig::resolve(FileConfig::default()).unwrap();
        assert_eq!(loopback.limits.rates, RateConfig::OFF);
        let public = ServerConfig::resolve(FileConfig {
            listen: Some("0.0.0.0:50051".parse().unwrap()),
            plaintext: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(public.limits.rates, RateConfig::PUBLIC);
        let http_public = ServerConfig::resolve(FileConfig {
            http_listen: Some("[::]:8080".parse().unwrap()),
            plaintext: Some(true),
            rate_reads_per_ip: Some(0.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(http_public.limits.rates.reads_per_ip, 0.0);
        assert_eq!(http_public.limits.rates.submit_per_ip, 50.0);
        let refused = ServerConfig::resolve(FileConfig {
            listen: Some("0.0.0.0:50051".parse().unwrap()),
            ..Default::default()
        });
        assert!(matches!(refused, Err(ConfigError::Invalid(m)) if m.contains("--plaintext")));
    }

    #[test]
    fn shipped_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/glasslog.toml");
        let f = FileConfig::load(&path).unwrap();
        ServerConfig::resolve(f).unwrap();
    }
}
