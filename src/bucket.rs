//! Where a log's tiles live outside its database: an S3-compatible bucket, a plain directory, or
//! (read-only) any HTTP server that serves a published copy.
//!
//! Locations are URLs: `s3://bucket/prefix` (endpoint, region and credentials from the usual
//! `AWS_*` environment variables, or `--s3-endpoint`; an explicit `http://` endpoint is used as
//! it is, for stores on a private network or loopback), `file:///dir`, and `http(s)://host/prefix`.
//! Object names are the C2SP tlog-tiles paths under the prefix (`checkpoint`, `tile/…`).
//!
//! Writes are of three kinds, matching the guarantees the publisher gives:
//! - [`Bucket::put_immutable`]: create-only (S3 `If-None-Match: *`). An existing object with the
//!   same bytes is fine (a retried upload); with other bytes it is [`BucketError::Conflict`]:
//!   something else wrote this log's tiles, and nothing may be overwritten.
//! - [`Bucket::put_mutable`]: the checkpoint, replaced in one atomic PUT.
//! - [`Bucket::put_if`]: compare-and-swap on the object's ETag (S3 `If-Match`), for the
//!   sequencing lease. Only S3 supports it.
//!
//! S3 and HTTP go through Apache Arrow's `object_store`, which signs S3 requests and speaks the
//! conditional-write dialect; a directory is written with [`crate::files`] (create-only by
//! hard link, replacement by rename, both fsynced).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, ObjectStore, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};

/// Connection settings for `s3://` locations beyond what the environment gives.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// The S3 endpoint, e.g. `http://127.0.0.1:8333` or `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: Option<String>,
}

/// What kind of location a bucket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    S3,
    Dir,
    Http,
}

/// An opened location.
#[derive(Clone, Debug)]
pub struct Bucket {
    backend: Backend,
    url: String,
}

#[derive(Clone, Debug)]
enum Backend {
    /// S3 or HTTP, under a prefix.
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        kind: Kind,
    },
    /// A local directory.
    Dir(std::path::PathBuf),
}

/// Errors of bucket access.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("{url}: not a tile location (use s3://bucket/prefix, file:///dir or http(s)://host/prefix): {why}")]
    BadUrl { url: String, why: String },
    #[error("{url}: {source}")]
    Store {
        url: String,
        source: object_store::Error,
    },
    /// An immutable object already exists with other bytes.
    #[error(
        "{url}: {name} already exists with other content; an immutable tile is never \
         overwritten (is another log, or another copy of this log, publishing here?)"
    )]
    Conflict { url: String, name: String },
    #[error("{url}: {source}")]
    Dir {
        url: String,
        source: crate::files::FileError,
    },
    #[error("{url}: {what} is not supported by this kind of location")]
    Unsupported { url: String, what: &'static str },
    #[error("{url}: {name}: content encoding {encoding:?}: {why}")]
    Encoding {
        url: String,
        name: String,
        encoding: String,
        why: String,
    },
}

/// An object read with its version, for a later [`Bucket::put_if`].
#[derive(Clone, Debug)]
pub struct Versioned {
    pub bytes: Bytes,
    pub version: UpdateVersion,
}

/// The outcome of a compare-and-swap.
#[derive(Debug)]
pub enum Swap {
    /// Written; the new version.
    Done(UpdateVersion),
    /// The object was not the expected version (or existed when absence was expected).
    Lost,
}

impl Bucket {
    /// Opens the location `url`. Nothing is contacted yet.
    ///
    /// # Errors
    /// [`BucketError::BadUrl`] for an unknown scheme or a malformed URL.
    pub fn open(url: &str, s3: &S3Options) -> Result<Bucket, BucketError> {
        let bad = |why: &str| BucketError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let store_err = |source| BucketError::Store {
            url: url.to_string(),
            source,
        };
        // Fail fast and let the caller's loop retry: a publisher must notice an outage and
        // catch up later, not hang for minutes inside one request.
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        };
        let options = ClientOptions::new()
            .with_timeout(Duration::from_secs(30))
            .with_connect_timeout(Duration::from_secs(5));
        let (store, prefix, kind): (Arc<dyn ObjectStore>, &str, Kind) =
            if let Some(rest) = url.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad("no bucket name"));
                }
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry)
                    .with_client_options(options.clone());
                if std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                {
                    b = b.with_region("us-east-1");
                }
                if let Some(endpoint) = &s3.endpoint {
                    b = b
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                (Arc::new(b.build().map_err(store_err)?), prefix, Kind::S3)
            } else if let Some(dir) = url.strip_prefix("file://") {
                if !dir.starts_with('/') {
                    return Err(bad(
                        "a file:// URL names an absolute directory: file:///path",
                    ));
                }
                return Ok(Bucket {
                    backend: Backend::Dir(std::path::PathBuf::from(dir)),
                    url: url.to_string(),
                });
            } else if url.starts_with("http://") || url.starts_with("https://") {
                let base = url.trim_end_matches('/');
                let http = HttpBuilder::new()
                    .with_url(base)
                    .with_retry(retry)
                    .with_client_options(options.with_allow_http(true))
                    .build()
                    .map_err(store_err)?;
                (Arc::new(http), "", Kind::Http)
            } else {
                return Err(bad("unknown scheme"));
            };
        let prefix =
            ObjectPath::parse(prefix.trim_matches('/')).map_err(|e| bad(&e.to_string()))?;
        Ok(Bucket {
            backend: Backend::Store {
                store,
                prefix,
                kind,
            },
            url: url.to_string(),
        })
    }

    /// The location's URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kind(&self) -> Kind {
        match &self.backend {
            Backend::Store { kind, .. } => *kind,
            Backend::Dir(_) => Kind::Dir,
        }
    }

    /// The object path of `name` in a store (its file path in a directory).
    fn path(prefix: &ObjectPath, name: &str) -> ObjectPath {
        name.split('/').fold(prefix.clone(), |p, part| p.join(part))
    }

    /// The file of `name` in a directory; names are tile paths, `checkpoint` or the lease's, so
    /// no `..` component can occur, and one is refused anyway.
    fn file(&self, dir: &std::path::Path, name: &str) -> Result<std::path::PathBuf, BucketError> {
        if name
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(BucketError::BadUrl {
                url: self.url.clone(),
                why: format!("object name {name:?}"),
            });
        }
        Ok(dir.join(name))
    }

    /// The headers a store serves `name` with: the tlog-tiles content types and caching
    /// (a CDN in front of the bucket then caches tiles for good and the checkpoint not at all).
    fn attributes(name: &str) -> Attributes {
        use crate::tlog::tiles as t;
        let (content_type, cache) = if name == t::CHECKPOINT_PATH {
            (t::CHECKPOINT_CONTENT_TYPE, t::CHECKPOINT_CACHE)
        } else if name.starts_with("tile/") {
            (t::TILE_CONTENT_TYPE, t::TILE_CACHE)
        } else {
            ("application/json", "no-store")
        };
        let mut a = Attributes::new();
        a.insert(Attribute::ContentType, content_type.into());
        a.insert(Attribute::CacheControl, cache.into());
        a
    }

    fn io(&self, e: crate::files::FileError) -> BucketError {
        BucketError::Dir {
            url: self.url.clone(),
            source: e,
        }
    }

    fn err(&self, source: object_store::Error) -> BucketError {
        BucketError::Store {
            url: self.url.clone(),
            source,
        }
    }

    /// Reads `name` with its version; `None` if it does not exist. A `Content-Encoding: gzip`
    /// object (an entry bundle from a tiles listener) is decoded.
    ///
    /// # Errors
    /// Store errors other than absence; an encoding that cannot be decoded.
    pub async fn get(&self, name: &str) -> Result<Option<Versioned>, BucketError> {
        let (store, prefix) = match &self.backend {
            Backend::Store { store, prefix, .. } => (store, prefix),
            Backend::Dir(dir) => {
                let path = self.file(dir, name)?;
                return match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(Versioned {
                        bytes: Bytes::from(bytes),
                        version: UpdateVersion {
                            e_tag: None,
                            version: None,
                        },
                    })),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(self.io(crate::files::FileError { path, source: e })),
                };
            }
        };
        let got = match store
            .get_opts(&Self::path(prefix, name), GetOptions::default())
            .await
        {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let encoding = got
            .attributes
            .get(&Attribute::ContentEncoding)
            .map(|v| v.to_string());
        let bytes = got.bytes().await.map_err(|e| self.err(e))?;
        let bytes = match encoding.as_deref() {
            None | Some("identity") | Some("") => bytes,
            Some("gzip") => {
                use std::io::Read as _;
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .take(crate::tlog::tiles::MAX_BUNDLE_BYTES as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| self.encoding(name, "gzip", &e.to_string()))?;
                Bytes::from(out)
            }
            Some(other) => return Err(self.encoding(name, other, "not supported")),
        };
        Ok(Some(Versioned { bytes, version }))
    }

    fn encoding(&self, name: &str, encoding: &str, why: &str) -> BucketError {
        BucketError::Encoding {
            url: self.url.clone(),
            name: name.to_string(),
            encoding: encoding.to_string(),
            why: why.to_string(),
        }
    }

    /// Writes an immutable object (a tile or bundle) create-only. `Ok(true)`: written now;
    /// `Ok(false)`: it was already there with exactly these bytes.
    ///
    /// # Errors
    /// [`BucketError::Conflict`] if it exists with other bytes; store errors.
    pub async fn put_immutable(&self, name: &str, bytes: Bytes) -> Result<bool, BucketError> {
        let created = match &self.backend {
            Backend::Dir(dir) => {
                let path = self.file(dir, name)?;
                let data = bytes.clone();
                tokio::task::spawn_blocking(move || {
                    crate::files::create_exclusively(&path, &data, 0o644)
                })
                .await
                .expect("file writer panicked")
                .map_err(|e| self.io(e))
            }
            Backend::Store { store, prefix, .. } => {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    attributes: Self::attributes(name),
                    ..PutOptions::default()
                };
                match store
                    .put_opts(
                        &Self::path(prefix, name),
                        PutPayload::from(bytes.clone()),
                        opts,
                    )
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. },
                    ) => Ok(false),
                    Err(e) => Err(self.err(e)),
                }
            }
        };
        match created {
            Ok(true) => Ok(true),
            Ok(false) => match self.get(name).await? {
                Some(existing) if existing.bytes == bytes => Ok(false),
                _ => Err(BucketError::Conflict {
                    url: self.url.clone(),
                    name: name.to_string(),
                }),
            },
            Err(e) => Err(e),
        }
    }

    /// Replaces a mutable object (the checkpoint) in one atomic write.
    ///
    /// # Errors
    /// Store errors.
    pub async fn put_mutable(&self, name: &str, bytes: Bytes) -> Result<(), BucketError> {
        match &self.backend {
            Backend::Dir(dir) => {
                let path = self.file(dir, name)?;
                tokio::task::spawn_blocking(move || {
                    crate::files::write_atomically(&path, &bytes, 0o644)
                })
                .await
                .expect("file writer panicked")
                .map_err(|e| self.io(e))
            }
            Backend::Store { store, prefix, .. } => store
                .put_opts(
                    &Self::path(prefix, name),
                    PutPayload::from(bytes),
                    PutOptions {
                        attributes: Self::attributes(name),
                        ..PutOptions::default()
                    },
                )
                .await
                .map(|_| ())
                .map_err(|e| self.err(e)),
        }
    }

    /// Compare-and-swap: writes `name` only if it is still at `expected` (`None`: only if it does
    /// not exist).
    ///
    /// # Errors
    /// [`BucketError::Unsupported`] outside S3; store errors.
    pub async fn put_if(
        &self,
        name: &str,
        bytes: Bytes,
        expected: Option<&UpdateVersion>,
    ) -> Result<Swap, BucketError> {
        let (store, prefix) = match &self.backend {
            Backend::Store {
                store,
                prefix,
                kind: Kind::S3,
            } => (store, prefix),
            _ => {
                return Err(BucketError::Unsupported {
                    url: self.url.clone(),
                    what: "compare-and-swap",
                })
            }
        };
        let mode = match expected {
            Some(v) => PutMode::Update(v.clone()),
            None => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            attributes: Self::attributes(name),
            ..PutOptions::default()
        };
        match store
            .put_opts(&Self::path(prefix, name), PutPayload::from(bytes), opts)
            .await
        {
            Ok(r) => Ok(Swap::Done(UpdateVersion {
                e_tag: r.e_tag,
                version: r.version,
            })),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Swap::Lost),
            Err(e) => Err(self.err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_bucket(dir: &std::path::Path) -> Bucket {
        Bucket::open(&format!("file://{}", dir.display()), &S3Options::default()).unwrap()
    }

    #[tokio::test]
    async fn immutable_objects_are_created_once_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir_bucket(dir.path());
        assert!(b.get("tile/0/000").await.unwrap().is_none());
        assert!(b
            .put_immutable("tile/0/000", Bytes::from_static(b"abc"))
            .await
            .unwrap());
        // A retry with the same bytes is fine and writes nothing.
        assert!(!b
            .put_immutable("tile/0/000", Bytes::from_static(b"abc"))
            .await
            .unwrap());
        match b
            .put_immutable("tile/0/000", Bytes::from_static(b"abd"))
            .await
        {
            Err(BucketError::Conflict { name, .. }) => assert_eq!(name, "tile/0/000"),
            other => panic!("overwrote an immutable tile: {other:?}"),
        }
        assert_eq!(
            b.get("tile/0/000").await.unwrap().unwrap().bytes.as_ref(),
            b"abc"
        );
        assert_eq!(
            std::fs::read(dir.path().join("tile/0/000")).unwrap(),
            b"abc"
        );
    }

    #[tokio::test]
    async fn the_checkpoint_is_replaced_and_directories_have_no_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir_bucket(dir.path());
        b.put_mutable("checkpoint", Bytes::from_static(b"one"))
            .await
            .unwrap();
        b.put_mutable("checkpoint", Bytes::from_static(b"two"))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("checkpoint")).unwrap(),
            b"two"
        );
        assert!(matches!(
            b.put_if("lease", Bytes::from_static(b"x"), None).await,
            Err(BucketError::Unsupported { .. })
        ));
    }

    #[test]
    fn urls_are_checked() {
        for bad in [
            "ftp://x/y",
            "file://relative/dir",
            "s3:///prefix",
            "/plain/path",
        ] {
            assert!(
                matches!(
                    Bucket::open(bad, &S3Options::default()),
                    Err(BucketError::BadUrl { .. })
                ),
                "{bad}"
            );
        }
        let s3 = Bucket::open(
            "s3://bucket/some/prefix",
            &S3Options {
                endpoint: Some("http://127.0.0.1:1".into()),
            },
        )
        .unwrap();
        assert_eq!(s3.kind(), Kind::S3);
        let Backend::Store { prefix, .. } = &s3.backend else {
            panic!("an S3 bucket")
        };
        assert_eq!(
            Bucket::path(prefix, "tile/0/000").as_ref(),
            "some/prefix/tile/0/000"
        );
    }
}
