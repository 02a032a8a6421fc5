//! Server configuration: defaults, an optional TOML file, and command-line flags, in increasing
//! order of precedence. `deploy/glasslog.toml` documents every option.
//!
//! This is the leaf of the server's modules: it holds the option types that the service
//! ([`Limits`]) and the sequencer ([`SequencerConfig`]) read, and imports neither of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    /// In-toto predicate types accepted without declaration checks, besides the two glasslog
    /// declaration types (operator's choice; empty by default).
    pub extra_predicate_types: Vec<String>,
}

/// Tuning of the sequencer's group commit.
#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// Most entries in one batch (one checkpoint, one fsync).
    pub max_batch: usize,
    /// Longest wait for more submissions once one has arrived. Zero takes only what is queued:
    /// under load the previous batch's fsync is the window.
    pub batch_window: Duration,
    /// Submissions that may wait in the queue; further submitters wait for room.
    pub queue_depth: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_batch: 1024,
            batch_window: Duration::ZERO,
            queue_depth: 4096,
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
    pub extra_predicate_types: Option<Vec<String>>,
    pub witness_policy: Option<PathBuf>,
    pub witness_interval_ms: Option<u64>,
    pub publish: Option<String>,
    pub s3_endpoint: Option<String>,
    pub lease_ttl_ms: Option<u64>,
    pub publish_interval_ms: Option<u64>,
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
            extra_predicate_types: over.extra_predicate_types.or(self.extra_predicate_types),
            witness_policy: over.witness_policy.or(self.witness_policy),
            witness_interval_ms: over.witness_interval_ms.or(self.witness_interval_ms),
            publish: over.publish.or(self.publish),
            s3_endpoint: over.s3_endpoint.or(self.s3_endpoint),
            lease_ttl_ms: over.lease_ttl_ms.or(self.lease_ttl_ms),
            publish_interval_ms: over.publish_interval_ms.or(self.publish_interval_ms),
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
        let config = ServerConfig {
            data_dir: f.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            listen: f
                .listen
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address")),
            http_listen: f.http_listen,
            origin: f.origin,
            limits: Limits {
                max_envelope_bytes: f.max_envelope_bytes.unwrap_or(DEFAULT_MAX_ENVELOPE_BYTES),
                max_tail_streams: f.max_tail_streams.unwrap_or(DEFAULT_MAX_TAIL_STREAMS),
                extra_predicate_types: f.extra_predicate_types.unwrap_or_default(),
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
    fn shipped_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/glasslog.toml");
        let f = FileConfig::load(&path).unwrap();
        ServerConfig::resolve(f).unwrap();
    }
}
