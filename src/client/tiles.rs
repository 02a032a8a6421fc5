//! A verifying client of a log's tiles (C2SP tlog-tiles, <https://c2sp.org/tlog-tiles>): the log
//! read from a bucket, a directory or any HTTP server that serves the files ([`crate::bucket`]:
//! `s3://`, `file:///`, `http(s)://`: the server's `--http-listen`, its `--publish` target, a CDN,
//! a mirror), without its server.
//!
//! Nothing read is trusted until it is checked against a checkpoint signed by the pinned key:
//! - the checkpoint is a signed note verified with [`LogVerifier`] (and, with a witness policy,
//!   its cosignatures checked as over gRPC, [`TileClient::witnessed_checkpoint`]);
//! - hash tiles are read through `tlog_tiles::TileHashReader` (Go's `tlog.TileHashReader`), which
//!   recomputes the checkpoint's root from the tiles on the tree's right edge, and every other
//!   tile read is checked against the hash its parent tile holds ([`check_parents`]), before any
//!   hash is used or any tile cached;
//! - [`TileClient::entries`] returns entries whose leaf hashes equal the authenticated level-0
//!   tile hashes at their indexes. [`TileClient::bundle`] returns a bundle unauthenticated, for
//!   callers that authenticate entries themselves by recomputing the root (`audit`, `monitor`).
//!
//! Proofs are computed from authenticated tiles by the server's own provers
//! ([`crate::tlog::merkle`]) and verified by the caller with [`crate::tlog::proof`], like a
//! server's. A tile path is this crate's [`TileId::path`] (C2SP: `tile/<L>/<N>[.p/<W>]`), not
//! `tlog_tiles::Tile::path` (Go's `tile/8/<L>/…`).
//!
//! # Synchronous tile math, asynchronous fetches
//! `TileHashReader` asks its `TileReader` for tiles synchronously. A computation here therefore
//! runs in rounds ([`TileClient::with_tiles`]): it runs over the tiles in memory, the tiles it
//! lacked are recorded, fetched concurrently, and it runs again. Every `tlog_tiles` computation
//! asks for all its tiles in one call, so a computation takes two rounds, or four when cached tiles
//! turned out stale (below). No thread blocks on I/O.
//!
//! # Cache and memory
//! Tiles that verified are kept, at most [`TILE_CACHE_TILES`] of them (8 KiB each, 8 MiB), least
//! recently used evicted first, so that a monitor polling a growing log or an audit walking it
//! fetches each upper tile once. A cached tile is only an input: it is re-verified with every
//! use. When a computation finds its tiles inconsistent with a checkpoint, the cached tiles it
//! used are dropped and fetched again before the tiles are called damaged: a tile verified under
//! an earlier checkpoint of a log that has since forked is the log's doing, and must show as a
//! consistency proof that fails, not as a damaged mirror. Beyond the cache, memory is one
//! computation's tiles (at most a few dozen) and the bundles a caller holds.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tlog_tiles::{Tile, TileHashReader, TileReader};

use crate::bucket::{Bucket, BucketError, S3Options};
use crate::tlog::checkpoint::{Checkpoint, CheckpointError};
use crate::tlog::merkle::{
    self, stored_hash_index, Hash, HashReader, HashReaderError, MerkleError,
};
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::{Cosignatures, PolicyError, WitnessPolicy};
use crate::tlog::tiles::{
    decode_bundle, TileId, TileKind, CHECKPOINT_PATH, TILE_HEIGHT, TILE_WIDTH,
};

/// Verified hash tiles kept between computations.
pub const TILE_CACHE_TILES: usize = 1024;
/// Rounds of one computation: fetch what is missing, drop stale cached tiles, fetch them again.
const MAX_ROUNDS: usize = 5;

/// Why a log's tiles could not be read or do not check out.
#[derive(Debug, thiserror::Error)]
pub enum TilesError {
    /// The location is unusable or unreachable (a bad URL, the network, permissions): nothing is
    /// known about the log.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// A `file://` URL of something that is not a directory (it is never created).
    #[error("{url}: no such directory")]
    NoDirectory { url: String },
    #[error("{url}: there is no checkpoint (is a log published there?)")]
    NoCheckpoint { url: String },
    /// A tile or bundle of the tree is not there.
    #[error("{url}: {path} is not there, though the tree of size {size} has it")]
    Missing {
        url: String,
        path: String,
        size: u64,
    },
    #[error("{url}: the checkpoint does not verify under the log key: {source}")]
    Checkpoint {
        url: String,
        source: CheckpointError,
    },
    #[error("{url}: the checkpoint does not meet the witness policy: {source}")]
    Policy { url: String, source: PolicyError },
    /// A file that is not what its name says (its length, its encoding).
    #[error("{url}: {path}: {why}")]
    Malformed {
        url: String,
        path: String,
        why: String,
    },
    /// Hash tiles, fetched afresh, that do not hash to the checkpoint's root.
    #[error(
        "{url}: the hash tiles {tiles} do not hash to the root of the checkpoint of size {size}: \
         they are damaged, or not this log's"
    )]
    Inconsistent {
        url: String,
        size: u64,
        tiles: String,
    },
    /// An entry whose leaf hash is not the one the authenticated tiles hold.
    #[error(
        "{url}: entry {index} in {path} has leaf hash {got}, but the hash tiles, authenticated \
         against the checkpoint of size {size}, hold {want}: the bundle is damaged, or not this \
         log's"
    )]
    EntryMismatch {
        url: String,
        path: String,
        index: u64,
        size: u64,
        got: Hash,
        want: Hash,
    },
    /// Indexes or sizes outside the tree asked about.
    #[error("{0}")]
    Merkle(#[from] MerkleError),
    /// A consistency proof the location cannot give: it lacks tiles of the larger tree (it is
    /// behind a checkpoint accepted earlier, from the server or another location).
    #[error(
        "{url}: cannot prove the tree of size {from} a prefix of the tree of size {to} from these \
         tiles ({source}); a location behind a checkpoint accepted before cannot: try again once \
         it has caught up, or check with --server"
    )]
    CannotProve {
        url: String,
        from: u64,
        to: u64,
        source: Box<TilesError>,
    },
    /// The tiles a computation needs kept changing under it.
    #[error("{url}: the tiles of the tree of size {size} could not be read consistently")]
    Unsettled { url: String, size: u64 },
}

impl TilesError {
    /// Whether the files contradict the signed checkpoint (as opposed to being unreachable, or
    /// absent): the answer of a location that serves something other than this log's tiles.
    pub fn is_contradiction(&self) -> bool {
        matches!(
            self,
            TilesError::Malformed { .. }
                | TilesError::Inconsistent { .. }
                | TilesError::EntryMismatch { .. }
        )
    }
}

/// A client of one log's tiles at one location, identified by its pinned verifier key. Cheap to
/// clone: clones share the location and the cache.
#[derive(Clone)]
pub struct TileClient {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: Bucket,
    verifier: LogVerifier,
    /// A `std` mutex: it is held for map operations only, never across an await.
    cache: Mutex<TileCache>,
    /// Objects fetched, for logs and tests.
    fetches: AtomicU64,
}

impl std::fmt::Debug for TileClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileClient")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl TileClient {
    /// A client of the tiles at `url` (`s3://bucket/prefix`, `file:///dir`, `http(s)://host/prefix`)
    /// of the log whose key is `verifier`. Nothing is fetched yet.
    ///
    /// # Errors
    /// [`TilesError::Bucket`] for a malformed URL; [`TilesError::NoDirectory`] for a `file://`
    /// URL that does not name an existing directory.
    pub fn open(
        url: &str,
        s3: &S3Options,
        verifier: LogVerifier,
    ) -> Result<TileClient, TilesError> {
        Self::with_cache(url, s3, verifier, TILE_CACHE_TILES)
    }

    /// [`TileClient::open`] with a cache of `capacity` tiles.
    ///
    /// # Errors
    /// Those of [`TileClient::open`].
    pub fn with_cache(
        url: &str,
        s3: &S3Options,
        verifier: LogVerifier,
        capacity: usize,
    ) -> Result<TileClient, TilesError> {
        // A mistyped directory would read as a location with no checkpoint: say what is wrong.
        if let Some(dir) = url.strip_prefix("file://") {
            if !std::path::Path::new(dir).is_dir() {
                return Err(TilesError::NoDirectory { url: url.into() });
            }
        }
        Ok(TileClient {
            inner: Arc::new(Inner {
                bucket: Bucket::open(url, s3)?,
                verifier,
                cache: Mutex::new(TileCache::new(capacity)),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// The location, as given.
    pub fn url(&self) -> &str {
        self.inner.bucket.url()
    }

    /// The pinned verifier.
    pub fn verifier(&self) -> &LogVerifier {
        &self.inner.verifier
    }

    /// Objects fetched so far (checkpoints, tiles, bundles).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Tiles in the cache.
    pub fn cached_tiles(&self) -> usize {
        lock(&self.inner.cache).tiles.len()
    }

    /// The checkpoint file as served, not verified.
    ///
    /// # Errors
    /// Bucket errors; [`TilesError::NoCheckpoint`]; a file that is not UTF-8.
    pub async fn note(&self) -> Result<String, TilesError> {
        let bytes = self
            .get(CHECKPOINT_PATH)
            .await?
            .ok_or_else(|| TilesError::NoCheckpoint {
                url: self.url().into(),
            })?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.malformed(CHECKPOINT_PATH, "not UTF-8"))
    }

    /// The checkpoint, verified under the pinned key, and its note.
    ///
    /// # Errors
    /// Those of [`TileClient::note`]; [`TilesError::Checkpoint`].
    pub async fn checkpoint(&self) -> Result<(Checkpoint, String), TilesError> {
        let note = self.note().await?;
        let checkpoint =
            self.inner
                .verifier
                .verify(&note)
                .map_err(|source| TilesError::Checkpoint {
                    url: self.url().into(),
                    source,
                })?;
        Ok((checkpoint, note))
    }

    /// The checkpoint, trusted only if its log signature verifies and its cosignatures meet
    /// `policy`'s quorum (a log with a witness policy serves its witnessed checkpoint as tiles).
    ///
    /// # Errors
    /// Those of [`TileClient::checkpoint`]; [`TilesError::Policy`] naming who signed and who
    /// did not.
    pub async fn witnessed_checkpoint(
        &self,
        policy: &WitnessPolicy,
    ) -> Result<(Checkpoint, String, Cosignatures), TilesError> {
        let (checkpoint, note) = self.checkpoint().await?;
        let cosignatures = policy.check(&note).map_err(|source| TilesError::Policy {
            url: self.url().into(),
            source,
        })?;
        Ok((checkpoint, note, cosignatures))
    }

    /// The leaves of entry bundle `n` of the tree of `size` leaves (the partial bundle of `size`
    /// for the last), **not authenticated**: the caller recomputes the root from them, or uses
    /// [`TileClient::entries`]. One fetch.
    ///
    /// # Errors
    /// [`MerkleError::IndexOutOfRange`] for a bundle beyond the tree; bucket errors;
    /// [`TilesError::Missing`]; [`TilesError::Malformed`] for a bundle that does not decode to
    /// exactly its width of entries.
    pub async fn bundle(&self, size: u64, n: u64) -> Result<Vec<Vec<u8>>, TilesError> {
        let tile = bundle_of(size, n)?;
        let path = tile.path();
        let bytes = self.require(&path, size).await?;
        let leaves = decode_bundle(&bytes, tile.width())
            .map_err(|e| self.malformed(&path, &e.to_string()))?;
        Ok(leaves.into_iter().map(<[u8]>::to_vec).collect())
    }

    /// The leaf hashes of entries `[start, end)` of `tree` (a checkpoint the caller verified),
    /// from level-0 tiles authenticated against its root.
    ///
    /// # Errors
    /// An empty or out-of-range `[start, end)`; the errors of [`TileClient::with_tiles`].
    pub async fn leaf_hashes(
        &self,
        tree: &Checkpoint,
        start: u64,
        end: u64,
    ) -> Result<Vec<Hash>, TilesError> {
        if start >= end || end > tree.size {
            return Err(MerkleError::IndexOutOfRange {
                index: end.max(start + 1) - 1,
                tree_size: tree.size,
            }
            .into());
        }
        let indexes: Vec<u64> = (start..end).map(|i| stored_hash_index(0, i)).collect();
        self.with_tiles(tree, |r| {
            r.read_hashes(&indexes)
                .map_err(|e| MerkleError::Read(e.to_string()))
        })
        .await
    }

    /// Entries `[start, end)` of `tree` (a checkpoint the caller verified), each authenticated:
    /// its leaf hash equals the level-0 tile hash at its index, and the tiles hash to the
    /// checkpoint's root. One bundle and one level-0 tile per 256 entries, plus the upper tiles
    /// not cached.
    ///
    /// # Errors
    /// Those of [`TileClient::bundle`] and [`TileClient::leaf_hashes`];
    /// [`TilesError::EntryMismatch`].
    pub async fn entries(
        &self,
        tree: &Checkpoint,
        start: u64,
        end: u64,
    ) -> Result<Vec<Vec<u8>>, TilesError> {
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(1 << 16) as usize);
        let mut n = start / TILE_WIDTH;
        while n * TILE_WIDTH < end.min(tree.size) {
            let first = n * TILE_WIDTH;
            let last = (first + TILE_WIDTH).min(tree.size);
            let (leaves, hashes) = futures::try_join!(
                self.bundle(tree.size, n),
                self.leaf_hashes(tree, first, last)
            )?;
            for ((index, leaf), want) in (first..).zip(leaves).zip(hashes) {
                let got = merkle::leaf_hash(&leaf);
                if got != want {
                    return Err(TilesError::EntryMismatch {
                        url: self.url().into(),
                        path: bundle_of(tree.size, n)?.path(),
                        index,
                        size: tree.size,
                        got,
                        want,
                    });
                }
                if (start..end).contains(&index) {
                    out.push(leaf);
                }
            }
            n += 1;
        }
        if out.len() as u64 != end.saturating_sub(start) {
            return Err(MerkleError::IndexOutOfRange {
                index: end.saturating_sub(1),
                tree_size: tree.size,
            }
            .into());
        }
        Ok(out)
    }

    /// The inclusion proof of entry `index` in `tree` (a checkpoint the caller verified), from
    /// authenticated tiles: `PATH(index, D[size])` of RFC 6962 §2.1.1. The caller verifies it
    /// ([`crate::tlog::proof::verify_inclusion`]).
    ///
    /// # Errors
    /// An index outside the tree; the errors of [`TileClient::with_tiles`].
    pub async fn prove_inclusion(
        &self,
        tree: &Checkpoint,
        index: u64,
    ) -> Result<Vec<Hash>, TilesError> {
        merkle::check_index(index, tree.size)?;
        self.with_tiles(tree, |r| merkle::prove_inclusion(index, tree.size, r))
            .await
    }

    /// The consistency proof from the tree of `from` leaves to `to` (a checkpoint the caller
    /// verified), from `to`'s authenticated tiles: `PROOF(from, D[to.size])` of RFC 6962 §2.1.2.
    /// The caller verifies it against the two roots ([`crate::tlog::proof::verify_consistency`]):
    /// tiles that hash to `to`'s root and yield a proof that fails are a log whose two trees do
    /// not fit together. Needs `to`'s partial tiles, which a location has for the sizes it
    /// published a checkpoint at.
    ///
    /// # Errors
    /// `from` of 0 or above `to.size`; the errors of [`TileClient::with_tiles`].
    pub async fn prove_consistency(
        &self,
        from: u64,
        to: &Checkpoint,
    ) -> Result<Vec<Hash>, TilesError> {
        merkle::check_size_order(from, to.size)?;
        self.with_tiles(to, |r| merkle::prove_consistency(from, to.size, r))
            .await
    }

    /// Runs `compute` over the hashes of `tree`'s tiles, authenticated against its root, in
    /// rounds (see the module documentation): tiles missing from memory are fetched and the
    /// computation runs again; tiles inconsistent with the root are fetched afresh once, in case
    /// a cached tile was verified under a checkpoint of another history.
    ///
    /// # Errors
    /// Bucket errors; [`TilesError::Missing`] or [`TilesError::Malformed`] for a tile;
    /// [`TilesError::Inconsistent`] for tiles, fetched afresh, that do not hash to the root;
    /// `compute`'s own [`MerkleError`]s.
    async fn with_tiles<T>(
        &self,
        tree: &Checkpoint,
        compute: impl Fn(&Authenticated<'_>) -> Result<T, MerkleError>,
    ) -> Result<T, TilesError> {
        let mut fetched: HashMap<TileId, Bytes> = HashMap::new();
        let mut refreshed = false;
        for _ in 0..MAX_ROUNDS {
            let (result, missing, used, inconsistent) = {
                let round = Round {
                    cache: &self.inner.cache,
                    fetched: &fetched,
                    missing: RefCell::new(Vec::new()),
                    read: RefCell::new(Vec::new()),
                    verified: RefCell::new(Vec::new()),
                };
                let reader = Authenticated {
                    tiles: TileHashReader::new(tree.size, tree.root, &round),
                    round: &round,
                    size: tree.size,
                    inconsistent: Cell::new(false),
                };
                let result = compute(&reader);
                let inconsistent = reader.inconsistent.get();
                let used: Vec<(TileId, bool)> = round
                    .read
                    .take()
                    .into_iter()
                    .map(|r| (r.id, r.cached))
                    .collect();
                (result, round.missing.take(), used, inconsistent)
            };
            let error = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !missing.is_empty() {
                let got = futures::future::try_join_all(
                    missing.iter().map(|t| self.fetch_tile(*t, tree.size)),
                )
                .await?;
                fetched.extend(missing.into_iter().zip(got));
                continue;
            }
            if !inconsistent {
                return Err(error.into());
            }
            let cached: Vec<TileId> = used.iter().filter(|u| u.1).map(|u| u.0).collect();
            if cached.is_empty() || refreshed {
                let tiles: Vec<String> = used.iter().map(|u| u.0.path()).collect();
                return Err(TilesError::Inconsistent {
                    url: self.url().into(),
                    size: tree.size,
                    tiles: tiles.join(", "),
                });
            }
            lock(&self.inner.cache).remove(&cached);
            refreshed = true;
        }
        Err(TilesError::Unsettled {
            url: self.url().into(),
            size: tree.size,
        })
    }

    /// A hash tile, checked to be as long as its width says (not yet authenticated).
    async fn fetch_tile(&self, tile: TileId, size: u64) -> Result<Bytes, TilesError> {
        let path = tile.path();
        let bytes = self.require(&path, size).await?;
        if bytes.len() != tile.hash_tile_len() {
            return Err(self.malformed(
                &path,
                &format!(
                    "{} bytes; a tile of width {} is {}",
                    bytes.len(),
                    tile.width(),
                    tile.hash_tile_len()
                ),
            ));
        }
        Ok(bytes)
    }

    async fn get(&self, path: &str) -> Result<Option<Bytes>, TilesError> {
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(self.inner.bucket.get(path).await?.map(|v| v.bytes))
    }

    /// `path`, which the tree of `size` has.
    async fn require(&self, path: &str, size: u64) -> Result<Bytes, TilesError> {
        self.get(path).await?.ok_or_else(|| TilesError::Missing {
            url: self.url().into(),
            path: path.into(),
            size,
        })
    }

    fn malformed(&self, path: &str, why: &str) -> TilesError {
        TilesError::Malformed {
            url: self.url().into(),
            path: path.into(),
            why: why.into(),
        }
    }
}

/// Entry bundle `n` of the tree of `size` leaves: full, or the tree's partial bundle.
fn bundle_of(size: u64, n: u64) -> Result<TileId, TilesError> {
    let first =
        n.checked_mul(TILE_WIDTH)
            .filter(|f| *f < size)
            .ok_or(MerkleError::IndexOutOfRange {
                index: n.saturating_mul(TILE_WIDTH),
                tree_size: size,
            })?;
    let width = (size - first).min(TILE_WIDTH);
    TileId::new(TileKind::Entries, n, width)
        .map_err(|_| TilesError::Merkle(MerkleError::TreeTooLarge { tree_size: size }))
}

/// Our name of a `tlog_tiles` hash tile of height 8.
fn tile_id(t: &Tile) -> Result<TileId, HashReaderError> {
    if t.height() != TILE_HEIGHT || t.is_data() {
        return Err(HashReaderError::InvalidTile);
    }
    TileId::new(
        TileKind::Hashes { level: t.level() },
        t.level_index(),
        u64::from(t.width()),
    )
    .map_err(|_| HashReaderError::InvalidTile)
}

fn lock(cache: &Mutex<TileCache>) -> std::sync::MutexGuard<'_, TileCache> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// The tiles of one round of a computation: those fetched for it, then the cache; what it lacked.
struct Round<'a> {
    cache: &'a Mutex<TileCache>,
    fetched: &'a HashMap<TileId, Bytes>,
    /// Tiles asked for and not in memory.
    missing: RefCell<Vec<TileId>>,
    /// The tiles of the last read.
    read: RefCell<Vec<Read>>,
    /// Tiles `TileHashReader` found consistent with the root, cached once [`check_parents`]
    /// agrees.
    verified: RefCell<Vec<(TileId, Bytes)>>,
}

/// A tile served to `TileHashReader`.
struct Read {
    tile: Tile,
    id: TileId,
    data: Bytes,
    /// Whether it came from the cache (rather than from this computation's fetches).
    cached: bool,
}

impl TileReader for Round<'_> {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, HashReaderError> {
        let mut cache = lock(self.cache);
        let (mut read, mut missing) = (Vec::new(), Vec::new());
        for t in tiles {
            let id = tile_id(t)?;
            let found = match self.fetched.get(&id) {
                Some(b) => Some((b.clone(), false)),
                None => cache.get(&id).map(|b| (b, true)),
            };
            match found {
                Some((data, cached)) => read.push(Read {
                    tile: *t,
                    id,
                    data,
                    cached,
                }),
                None => missing.push(id),
            }
        }
        let data = read.iter().map(|r| r.data.to_vec()).collect();
        *self.read.borrow_mut() = read;
        if !missing.is_empty() {
            *self.missing.borrow_mut() = missing;
            // Any error will do: the round ends, the missing tiles are fetched, it runs again.
            return Err(HashReaderError::IndexesNotInTree);
        }
        Ok(data)
    }

    /// Called by `TileHashReader` with the tiles it has checked against the root; kept aside
    /// until [`check_parents`] has checked the rest.
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let mut verified = self.verified.borrow_mut();
        for (t, d) in tiles.iter().zip(data) {
            if let Ok(id) = tile_id(t) {
                verified.push((id, Bytes::copy_from_slice(d)));
            }
        }
    }
}

/// A [`HashReader`] of authenticated hashes that remembers whether the tiles were inconsistent
/// with the root (the `MerkleError` it surfaces through no longer says).
struct Authenticated<'a> {
    tiles: TileHashReader<'a>,
    round: &'a Round<'a>,
    size: u64,
    inconsistent: Cell<bool>,
}

impl HashReader for Authenticated<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReaderError> {
        let hashes = self.tiles.read_hashes(indexes).inspect_err(|e| {
            if matches!(e, HashReaderError::InconsistentTile) {
                self.inconsistent.set(true);
            }
        })?;
        let verified = std::mem::take(&mut *self.round.verified.borrow_mut());
        if !check_parents(&self.round.read.borrow(), self.size) {
            self.inconsistent.set(true);
            return Err(HashReaderError::InconsistentTile);
        }
        let mut cache = lock(self.round.cache);
        for (id, data) in verified {
            cache.insert(id, data);
        }
        Ok(hashes)
    }
}

/// Whether every full tile of a read holds, as its root, the hash its parent tile (also in the
/// read) holds for it. `TileHashReader` (tlog_tiles 0.2, like the Go code it ports) checks the
/// tiles on the tree's right edge against the root, but of the others it skips the first few: its
/// loop over them starts at the number of right-edge *subtrees* instead of the number of distinct
/// tiles they fall in (a tree of 600 leaves has 4 such subtrees in 2 tiles, so 2 tiles go
/// unchecked; `damaged_tiles_and_bundles_are_named` flips a byte in one). Tiles on the right edge are partial (a full one would lie under a larger complete
/// subtree) and are left to the root check; every other tile a read needs is full and has its
/// parent in the read. One SHA-256 tile hash (255 node hashes) per full tile.
fn check_parents(read: &[Read], size: u64) -> bool {
    let by_tile: HashMap<Tile, &[u8]> = read.iter().map(|r| (r.tile, &r.data[..])).collect();
    read.iter()
        .filter(|r| u64::from(r.tile.width()) == TILE_WIDTH)
        .all(|r| {
            let Some(parent) = r.tile.parent(1, size) else {
                return false;
            };
            let Some(parent_data) = by_tile.get(&parent) else {
                return false;
            };
            let index = stored_hash_index(parent.level() * TILE_HEIGHT, r.tile.level_index());
            parent
                .hash_at_index(parent_data, index)
                .is_ok_and(|h| h == Tile::subtree_hash(&r.data))
        })
}

/// Verified tiles, least recently used evicted first.
///
/// Invariant: at most `capacity` tiles.
struct TileCache {
    tiles: HashMap<TileId, (Bytes, u64)>,
    clock: u64,
    capacity: usize,
}

impl TileCache {
    fn new(capacity: usize) -> TileCache {
        TileCache {
            tiles: HashMap::new(),
            clock: 0,
            capacity,
        }
    }

    fn get(&mut self, id: &TileId) -> Option<Bytes> {
        self.clock += 1;
        let clock = self.clock;
        self.tiles.get_mut(id).map(|(b, used)| {
            *used = clock;
            b.clone()
        })
    }

    /// Inserts a tile; when full, evicts the least recently used one (a scan of the cache: one
    /// per insertion of a new tile, thousands of comparisons against the fetch it follows).
    fn insert(&mut self, id: TileId, bytes: Bytes) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        if !self.tiles.contains_key(&id) && self.tiles.len() >= self.capacity {
            if let Some(oldest) = self
                .tiles
                .iter()
                .min_by_key(|(_, (_, u))| *u)
                .map(|(k, _)| *k)
            {
                self.tiles.remove(&oldest);
            }
        }
        self.tiles.insert(id, (bytes, self.clock));
    }

    fn remove(&mut self, ids: &[TileId]) {
        for id in ids {
            self.tiles.remove(id);
        }
    }
}

/// Test helpers: a log's tiles written to a directory, as the publisher writes them.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use crate::tlog::checkpoint::{Checkpoint, Origin};
    use crate::tlog::merkle::{self, HashReader, MemoryTree};
    use crate::tlog::note::LogSigner;
    use crate::tlog::tiles::{encode_bundle, new_tiles, TileKind, CHECKPOINT_PATH};

    /// A log in memory whose tiles are written to a directory.
    pub struct TiledLog {
        pub signer: LogSigner,
        pub leaves: Vec<Vec<u8>>,
        pub tree: MemoryTree,
        /// The size last published.
        pub published: u64,
    }

    impl TiledLog {
        pub fn new() -> TiledLog {
            TiledLog {
                signer: LogSigner::generate(&Origin::new("example.com/tiled").unwrap()),
                leaves: Vec::new(),
                tree: MemoryTree::new(),
                published: 0,
            }
        }

        pub fn append(&mut self, leaf: Vec<u8>) {
            self.tree.append(merkle::leaf_hash(&leaf)).unwrap();
            self.leaves.push(leaf);
        }

        /// Appends `n` leaves of a few bytes, `tag` making them differ between logs.
        pub fn append_n(&mut self, n: usize, tag: &str) {
            for _ in 0..n {
                let i = self.leaves.len();
                self.append(format!("{tag} entry {i}").into_bytes());
            }
        }

        pub fn checkpoint(&self) -> Checkpoint {
            let size = self.tree.size();
            Checkpoint {
                origin: self.signer.origin().into(),
                size,
                root: merkle::root_hash(size, &self.tree).unwrap(),
            }
        }

        /// Writes the tiles and bundles new since the last publication, then the checkpoint,
        /// under `dir`.
        pub fn publish(&mut self, dir: &Path) {
            let size = self.tree.size();
            for tile in new_tiles(self.published, size) {
                let bytes = match tile.kind {
                    TileKind::Entries => {
                        let r = tile.nodes();
                        encode_bundle(r.start, &self.leaves[r.start as usize..r.end as usize])
                            .unwrap()
                    }
                    TileKind::Hashes { .. } => self
                        .tree
                        .read_hashes(&tile.stored_hash_indexes())
                        .unwrap()
                        .iter()
                        .flat_map(|h| h.0)
                        .collect(),
                };
                let path = dir.join(tile.path());
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            let note = self.signer.sign(&self.checkpoint()).unwrap();
            std::fs::write(dir.join(CHECKPOINT_PATH), note).unwrap();
            self.published = size;
        }
    }

    /// Flips the last byte of the file at `path` under `dir`.
    pub fn flip(dir: &Path, path: &str) {
        let p = dir.join(path);
        let mut b = std::fs::read(&p).unwrap();
        *b.last_mut().unwrap() ^= 1;
        std::fs::write(p, b).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{flip, TiledLog};
    use super::*;
    use crate::tlog::note::LogSigner;
    use crate::tlog::proof;

    /// The error of `r`, which must have failed (without printing what it returned otherwise).
    fn failed<T>(r: Result<T, TilesError>) -> TilesError {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    fn url(dir: &tempfile::TempDir) -> String {
        format!("file://{}", dir.path().display())
    }

    fn client(dir: &tempfile::TempDir, log: &TiledLog) -> TileClient {
        let verifier = LogVerifier::new(&log.signer.verifier_key()).unwrap();
        TileClient::open(&url(dir), &S3Options::default(), verifier).unwrap()
    }

    /// A log published at several sizes, so that the partial tiles of each are there.
    fn published(sizes: &[usize]) -> (tempfile::TempDir, TiledLog, Vec<Checkpoint>) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TiledLog::new();
        let mut checkpoints = Vec::new();
        for &s in sizes {
            log.append_n(s - log.leaves.len(), "a");
            log.publish(dir.path());
            checkpoints.push(log.checkpoint());
        }
        (dir, log, checkpoints)
    }

    #[tokio::test]
    async fn entries_and_proofs_verify_against_the_checkpoint() {
        let sizes = [1, 255, 256, 257, 1000, 65_537, 70_000];
        let (dir, log, checkpoints) = published(&sizes);
        let c = client(&dir, &log);
        let (latest, note) = c.checkpoint().await.unwrap();
        assert_eq!(&latest, checkpoints.last().unwrap());
        assert!(note.contains("example.com/tiled"));

        for (start, end) in [
            (0, 1),
            (0, 256),
            (250, 260),
            (69_990, 70_000),
            (65_536, 65_537),
        ] {
            let got = c.entries(&latest, start, end).await.unwrap();
            assert_eq!(
                got,
                log.leaves[start as usize..end as usize],
                "[{start}, {end})"
            );
        }
        assert_eq!(
            c.bundle(latest.size, 273).await.unwrap().len(),
            70_000 - 273 * 256
        );

        for tree in &checkpoints {
            for index in [0, tree.size / 2, tree.size - 1] {
                let p = c.prove_inclusion(tree, index).await.unwrap();
                let leaf = merkle::leaf_hash(&log.leaves[index as usize]);
                proof::verify_inclusion(index, tree.size, &leaf, &p, &tree.root).unwrap();
            }
            for old in &checkpoints {
                if old.size <= tree.size {
                    let p = c.prove_consistency(old.size, tree).await.unwrap();
                    proof::verify_consistency(old.size, tree.size, &old.root, &tree.root, &p)
                        .unwrap();
                }
            }
        }
        // Consistency from any size, not only published ones.
        let p = c.prove_consistency(12_345, &latest).await.unwrap();
        let old = merkle::root_hash(12_345, &log.tree).unwrap();
        proof::verify_consistency(12_345, latest.size, &old, &latest.root, &p).unwrap();
        assert!(matches!(
            c.entries(&latest, 69_999, 70_001).await,
            Err(TilesError::Merkle(_))
        ));
    }

    #[tokio::test]
    async fn the_cache_saves_fetches_and_stays_bounded() {
        let (dir, log, checkpoints) = published(&[66_000]);
        let tree = &checkpoints[0];
        let c = client(&dir, &log);
        c.prove_inclusion(tree, 5).await.unwrap();
        let first = c.fetches();
        // The same proof again: everything cached.
        c.prove_inclusion(tree, 5).await.unwrap();
        assert_eq!(c.fetches(), first);
        // A neighbouring leaf's proof shares every tile.
        c.prove_inclusion(tree, 6).await.unwrap();
        assert_eq!(c.fetches(), first);

        let small =
            TileClient::with_cache(&url(&dir), &S3Options::default(), c.verifier().clone(), 8)
                .unwrap();
        for n in 0..40 {
            small
                .leaf_hashes(tree, n * 256, n * 256 + 256)
                .await
                .unwrap();
            assert!(small.cached_tiles() <= 8);
        }
        // Upper tiles, used by every call, stayed: one level-0 tile fetched per bundle.
        let before = small.fetches();
        small.leaf_hashes(tree, 40 * 256, 41 * 256).await.unwrap();
        assert_eq!(small.fetches(), before + 1);
    }

    #[tokio::test]
    async fn damaged_tiles_and_bundles_are_named() {
        let (dir, log, checkpoints) = published(&[600]);
        let tree = &checkpoints[0];

        flip(dir.path(), "tile/entries/001");
        let err = failed(client(&dir, &log).entries(tree, 0, 600).await);
        assert!(
            matches!(&err, TilesError::EntryMismatch { index: 511, path, .. } if path == "tile/entries/001"),
            "{err}"
        );
        assert!(err.is_contradiction());
        flip(dir.path(), "tile/entries/001");

        flip(dir.path(), "tile/0/001");
        let c = client(&dir, &log);
        let err = failed(c.prove_inclusion(tree, 300).await);
        assert!(
            matches!(&err, TilesError::Inconsistent { tiles, .. } if tiles.contains("tile/0/001")),
            "{err}"
        );
        assert!(err.to_string().contains("do not hash to the root"), "{err}");
        // A leaf whose tiles are intact still proves.
        c.prove_inclusion(tree, 3).await.unwrap();

        std::fs::write(dir.path().join("tile/0/000"), [0u8; 31]).unwrap();
        let err = failed(client(&dir, &log).prove_inclusion(tree, 3).await);
        assert!(matches!(err, TilesError::Malformed { .. }), "{err}");
        std::fs::remove_file(dir.path().join("tile/0/000")).unwrap();
        let err = failed(client(&dir, &log).prove_inclusion(tree, 3).await);
        assert!(
            matches!(&err, TilesError::Missing { path, .. } if path == "tile/0/000"),
            "{err}"
        );

        std::fs::write(dir.path().join("checkpoint"), "not a note").unwrap();
        assert!(matches!(
            client(&dir, &log).checkpoint().await,
            Err(TilesError::Checkpoint { .. })
        ));
        let missing = format!("file://{}/nowhere", dir.path().display());
        assert!(matches!(
            TileClient::open(&missing, &S3Options::default(), c.verifier().clone()),
            Err(TilesError::NoDirectory { .. })
        ));
        assert!(!dir.path().join("nowhere").exists());
    }

    #[tokio::test]
    async fn a_fork_fails_the_proof_and_does_not_blame_the_cache() {
        // A log verified at 300, its tiles cached; then the location shows a history in which
        // entry 10 is another, at 600.
        let (dir, honest, checkpoints) = published(&[300]);
        let c = client(&dir, &honest);
        let old = &checkpoints[0];
        c.prove_inclusion(old, 299).await.unwrap();
        let mut forked = TiledLog {
            signer: LogSigner::from_skey(&honest.signer.to_skey()).unwrap(),
            ..TiledLog::new()
        };
        forked.append_n(10, "a");
        forked.append_n(590, "b");
        std::fs::remove_dir_all(dir.path().join("tile")).unwrap();
        forked.publish(dir.path());
        let (new, _) = c.checkpoint().await.unwrap();
        let p = c.prove_consistency(old.size, &new).await.unwrap();
        let err = proof::verify_consistency(old.size, new.size, &old.root, &new.root, &p)
            .expect_err("a fork is not consistent");
        assert!(matches!(err, MerkleError::RootMismatch { .. }), "{err}");
    }
}
