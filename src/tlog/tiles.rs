//! C2SP tlog-tiles: the static form of the log (<https://c2sp.org/tlog-tiles>).
//!
//! A tiled log is a checkpoint plus immutable resources:
//! - hash tiles `tile/<L>/<N>[.p/<W>]`: the Merkle tree hashes of level `8·L`, nodes
//!   `N·256 … N·256+W−1` (the leaf hashes at `L = 0`); a full tile is 256 hashes (8,192 bytes);
//! - entry bundles `tile/entries/<N>[.p/<W>]`: the leaves `N·256 … N·256+W−1`, each as a
//!   big-endian uint16 length and the leaf data, so no leaf can exceed [`MAX_BUNDLED_ENTRY`].
//!
//! `N` is written in 3-digit groups, every group but the last prefixed with `x`
//! (`1234067` → `x001/x234/067`); `.p/<W>` marks a partial tile (`1 ≤ W ≤ 255`). The tree of size
//! `s` has, at level `L`, `⌊s/256^L⌋ div 256` full tiles and a partial tile of width
//! `⌊s/256^L⌋ mod 256` unless that is zero (empty tiles are never served).
//!
//! This module is the format only: paths, which tiles a tree has, which stored hashes a tile holds,
//! and the bundle encoding. It does no I/O; the server reads the hashes and entries from its
//! storage, the publisher writes the bytes to a bucket, the tile client fetches them.

use std::ops::Range;

use crate::tlog::merkle::{stored_hash_index, HASH_SIZE, MAX_TREE_SIZE};

/// Hashes per full tile, entries per full bundle (tile height 8).
pub const TILE_WIDTH: u64 = 256;
/// The height of a tile: a tile of level `L` holds tree level `TILE_HEIGHT · L`.
pub const TILE_HEIGHT: u8 = 8;
/// The largest entry an entry bundle can carry (its length is a uint16).
pub const MAX_BUNDLED_ENTRY: usize = u16::MAX as usize;
/// The largest entry bundle: 256 entries of the largest size, each with its 2-byte length.
pub const MAX_BUNDLE_BYTES: usize = TILE_WIDTH as usize * (2 + MAX_BUNDLED_ENTRY);
/// The highest tile level of any tree this log can hold. The spec allows `L` up to 63, but a tree
/// of at most [`MAX_TREE_SIZE`] (2^62) leaves has no node at tree level 64 or above: its top tile
/// is at level 7.
pub const MAX_LEVEL: u8 = 7;

/// `Content-Type` of the checkpoint.
pub const CHECKPOINT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// `Content-Type` of hash tiles and entry bundles.
pub const TILE_CONTENT_TYPE: &str = "application/octet-stream";
/// `Cache-Control` of the mutable checkpoint: revalidate on every use (the spec: "SHOULD prevent
/// caching beyond a few seconds").
pub const CHECKPOINT_CACHE: &str = "no-cache, max-age=0";
/// `Cache-Control` of tiles and bundles, which never change once they exist.
pub const TILE_CACHE: &str = "public, max-age=31536000, immutable";
/// The path of the checkpoint under a log's prefix.
pub const CHECKPOINT_PATH: &str = "checkpoint";

/// What a tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Hashes of tree level `8 · level`.
    Hashes { level: u8 },
    /// Leaf data (an entry bundle), aligned with the level-0 hash tile of the same index.
    Entries,
}

/// One tile or entry bundle: what it holds, its index within its level, and its width.
///
/// Invariant: `1 ≤ width ≤ 256`, `level ≤` [`MAX_LEVEL`], and the tile's start lies inside a tree of at most
/// [`MAX_TREE_SIZE`] leaves (checked by [`TileId::new`] and [`TileId::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub kind: TileKind,
    pub index: u64,
    width: u16,
}

/// Why a path is not a tile path, or a tile does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("not a tile path: {0:?}")]
    BadPath(String),
    #[error("tile width {0} is outside 1..=256")]
    BadWidth(u64),
    #[error("tile level {0} is above 7, the top of a tree of at most 2^62 leaves")]
    BadLevel(u64),
    #[error("tile index {0} is beyond the largest tree this log supports")]
    BadIndex(u64),
    #[error(
        "entry {index} is {len} bytes; an entry bundle carries entries of at most 65535 bytes"
    )]
    EntryTooLarge { index: u64, len: usize },
    #[error("entry bundle: {0}")]
    BadBundle(String),
}

impl TileId {
    /// A tile, checked against the invariant.
    ///
    /// # Errors
    /// Width, level or index out of range.
    pub fn new(kind: TileKind, index: u64, width: u64) -> Result<TileId, TileError> {
        if !(1..=TILE_WIDTH).contains(&width) {
            return Err(TileError::BadWidth(width));
        }
        let level = match kind {
            TileKind::Hashes { level } => level,
            TileKind::Entries => 0,
        };
        if level > MAX_LEVEL {
            return Err(TileError::BadLevel(level.into()));
        }
        // The first leaf under the tile, index · 256^(level+1), must lie inside the largest tree.
        let shift = u32::from(TILE_HEIGHT) * (u32::from(level) + 1);
        if u128::from(index) << shift >= u128::from(MAX_TREE_SIZE) {
            return Err(TileError::BadIndex(index));
        }
        Ok(TileId {
            kind,
            index,
            width: width as u16,
        })
    }

    /// The tile's width: 256 for a full tile, 1–255 for a partial one.
    pub fn width(&self) -> u64 {
        self.width.into()
    }

    /// Whether this is a full (256-wide) tile.
    pub fn is_full(&self) -> bool {
        self.width() == TILE_WIDTH
    }

    /// The tree level its hashes sit at (0 for bundles: they align with the leaf hashes).
    pub fn tree_level(&self) -> u8 {
        match self.kind {
            TileKind::Hashes { level } => level * TILE_HEIGHT,
            TileKind::Entries => 0,
        }
    }

    /// The positions, within tree level [`Self::tree_level`], of the hashes or entries it holds.
    pub fn nodes(&self) -> Range<u64> {
        let first = self.index * TILE_WIDTH;
        first..first + self.width()
    }

    /// For a hash tile, the stored-hash indexes of its hashes, in order.
    pub fn stored_hash_indexes(&self) -> Vec<u64> {
        let level = self.tree_level();
        self.nodes().map(|n| stored_hash_index(level, n)).collect()
    }

    /// The byte length of a hash tile.
    pub fn hash_tile_len(&self) -> usize {
        self.width as usize * HASH_SIZE
    }

    /// The path under the log's prefix, e.g. `tile/1/x001/x234/067.p/12` or `tile/entries/000`.
    pub fn path(&self) -> String {
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let mut path = String::from("tile/");
        match self.kind {
            TileKind::Hashes { level } => path.push_str(&level.to_string()),
            TileKind::Entries => path.push_str("entries"),
        }
        for (i, g) in groups.iter().rev().enumerate() {
            let last = i + 1 == groups.len();
            path.push_str(&format!("/{}{g:03}", if last { "" } else { "x" }));
        }
        if !self.is_full() {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Parses a tile path in its one canonical form (the form [`Self::path`] writes): no
    /// leading zeroes in `L` and `W`, no `.p/256`, no empty or extra groups.
    ///
    /// # Errors
    /// [`TileError::BadPath`] (or a range error) for anything else.
    pub fn parse(path: &str) -> Result<TileId, TileError> {
        let bad = || TileError::BadPath(path.chars().take(80).collect());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (kind_part, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = if kind_part == "entries" {
            TileKind::Entries
        } else {
            let level = canonical_decimal(kind_part).ok_or_else(bad)?;
            TileKind::Hashes {
                level: u8::try_from(level).map_err(|_| TileError::BadLevel(level))?,
            }
        };
        let (number, width) = match rest.split_once(".p/") {
            Some((number, w)) => {
                let w = canonical_decimal(w).ok_or_else(bad)?;
                if !(1..TILE_WIDTH).contains(&w) {
                    return Err(TileError::BadWidth(w));
                }
                (number, w)
            }
            None => (rest, TILE_WIDTH),
        };
        let groups: Vec<&str> = number.split('/').collect();
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last {
                *g
            } else {
                g.strip_prefix('x').ok_or_else(bad)?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let d: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|n| n.checked_add(d))
                .ok_or(TileError::BadIndex(u64::MAX))?;
        }
        let tile = TileId::new(kind, index, width)?;
        // Leading zero groups (`x000/001`) name the same tile as `001`: only the canonical one.
        if tile.path() != path {
            return Err(bad());
        }
        Ok(tile)
    }

    /// Whether the tree of `size` leaves has this tile: as a full tile, or as the partial tile of
    /// exactly this width at `size`. (A partial tile of an earlier size is a tile of that size.)
    pub fn in_tree(&self, size: u64) -> bool {
        let nodes = level_width(size, self.tree_level());
        let end = self.nodes().end;
        if self.is_full() {
            end <= nodes
        } else {
            end == nodes
        }
    }
}

/// The number of nodes of tree level `level` (below 64) that are roots of complete subtrees of the
/// tree of `size`.
fn level_width(size: u64, level: u8) -> u64 {
    size >> level
}

fn canonical_decimal(s: &str) -> Option<u64> {
    let ok = !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

/// The tiles and bundles that the tree of `new_size` has and the tree of `old_size` does not:
/// the full tiles completed in between, and `new_size`'s partial tiles. Publishing these (and
/// then the checkpoint) takes a published `old_size` to `new_size`. Sorted: bundles, then hash
/// tiles by level, each by index (so a reader sees a tile's children before it, when it uploads
/// in order).
pub fn new_tiles(old_size: u64, new_size: u64) -> Vec<TileId> {
    let mut tiles = Vec::new();
    if new_size <= old_size {
        return tiles;
    }
    let mut push_level = |kind: TileKind, tree_level: u8| {
        let (old_n, new_n) = (
            level_width(old_size, tree_level),
            level_width(new_size, tree_level),
        );
        if old_n == new_n {
            return;
        }
        for index in old_n / TILE_WIDTH..new_n / TILE_WIDTH {
            tiles.push(TileId::new(kind, index, TILE_WIDTH).expect("inside the tree"));
        }
        let partial = new_n % TILE_WIDTH;
        if partial > 0 {
            tiles.push(TileId::new(kind, new_n / TILE_WIDTH, partial).expect("inside the tree"));
        }
    };
    push_level(TileKind::Entries, 0);
    for level in 0..=MAX_LEVEL {
        let tree_level = u32::from(level) * u32::from(TILE_HEIGHT);
        if tree_level >= 64 || new_size >> tree_level == 0 {
            break;
        }
        push_level(TileKind::Hashes { level }, tree_level as u8);
    }
    tiles
}

/// Encodes an entry bundle: each entry as a big-endian uint16 length and its bytes.
///
/// # Errors
/// [`TileError::EntryTooLarge`] for an entry above [`MAX_BUNDLED_ENTRY`] (`first` is the index
/// of the first entry, for the message).
pub fn encode_bundle<E: AsRef<[u8]>>(first: u64, entries: &[E]) -> Result<Vec<u8>, TileError> {
    let total: usize = entries.iter().map(|e| 2 + e.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for (i, e) in entries.iter().enumerate() {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge {
            index: first + i as u64,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Decodes an entry bundle that must hold exactly `count` entries.
///
/// # Errors
/// [`TileError::BadBundle`] for a truncated bundle, trailing bytes or another count.
pub fn decode_bundle(bytes: &[u8], count: u64) -> Result<Vec<&[u8]>, TileError> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let [a, b, tail @ ..] = rest else {
            return Err(TileError::BadBundle("ends inside a length prefix".into()));
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if tail.len() < len {
            return Err(TileError::BadBundle(format!(
                "entry {} announces {len} bytes, {} remain",
                entries.len(),
                tail.len()
            )));
        }
        entries.push(&tail[..len]);
        rest = &tail[len..];
    }
    if entries.len() as u64 != count {
        return Err(TileError::BadBundle(format!(
            "holds {} entries, the tile calls for {count}",
            entries.len()
        )));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(level: u8, index: u64, width: u64) -> TileId {
        TileId::new(TileKind::Hashes { level }, index, width).unwrap()
    }

    #[test]
    fn paths_follow_the_spec_examples() {
        assert_eq!(hashes(4, 1_234_067, 256).path(), "tile/4/x001/x234/067");
        assert_eq!(hashes(4, 1_234_067, 1).path(), "tile/4/x001/x234/067.p/1");
        assert_eq!(hashes(0, 0, 256).path(), "tile/0/000");
        assert_eq!(hashes(0, 1000, 255).path(), "tile/0/x001/000.p/255");
        let bundle = TileId::new(TileKind::Entries, 999, 7).unwrap();
        assert_eq!(bundle.path(), "tile/entries/999.p/7");
        for t in [
            hashes(4, 1_234_067, 256),
            hashes(0, 1000, 255),
            bundle,
            hashes(7, 0, 1),
        ] {
            assert_eq!(TileId::parse(&t.path()).unwrap(), t);
        }
    }

    #[test]
    fn only_canonical_paths_parse() {
        for p in [
            "tile/0/x000/001",
            "tile/00/001",
            "tile/0/1",
            "tile/0/001.p/256",
            "tile/0/001.p/0",
            "tile/0/001.p/07",
            "tile/0/001/",
            "tile/0/x001",
            "tile/64/000",
            "tile/8/000",
            "tile/0/001.p/",
            "tile/data/000",
            "tile/8/0/000",
            "tile/0/x1000/000",
            "tile/entries/-01",
            "checkpoint",
            "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
        ] {
            assert!(TileId::parse(p).is_err(), "{p} parsed");
        }
    }

    #[test]
    fn new_tiles_matches_the_spec_example_and_go_sumdb() {
        // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
        // level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17,
        // and one partial level 2 tile of width 1."
        let tiles = new_tiles(0, 70_000);
        let of = |kind| tiles.iter().filter(move |t| t.kind == kind);
        let l0: Vec<_> = of(TileKind::Hashes { level: 0 }).collect();
        assert_eq!(l0.len(), 274);
        assert_eq!(l0.iter().filter(|t| t.is_full()).count(), 273);
        assert_eq!(l0.last().unwrap().width(), 112);
        let l1: Vec<_> = of(TileKind::Hashes { level: 1 })
            .map(|t| t.width())
            .collect();
        assert_eq!(l1, vec![256, 17]);
        let l2: Vec<_> = of(TileKind::Hashes { level: 2 })
            .map(|t| t.width())
            .collect();
        assert_eq!(l2, vec![1]);
        assert_eq!(of(TileKind::Entries).count(), 274);
        // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
        // tile of width 1."
        let t: Vec<_> = new_tiles(0, 256).iter().map(TileId::path).collect();
        assert_eq!(t, ["tile/entries/000", "tile/0/000", "tile/1/000.p/1"]);
        // The same set as Go's tlog.NewTiles (ported in tlog_tiles), for many size pairs.
        for (old, new) in [
            (0, 1),
            (1, 255),
            (255, 256),
            (256, 257),
            (300, 65_537),
            (65_535, 65_536),
        ] {
            let ours: Vec<_> = new_tiles(old, new)
                .into_iter()
                .filter(|t| t.kind != TileKind::Entries)
                .map(|t| (t.tree_level() / TILE_HEIGHT, t.index, t.width()))
                .collect();
            let mut go: Vec<_> = tlog_tiles::Tile::new_tiles(TILE_HEIGHT, old, new)
                .into_iter()
                .map(|t| (t.level(), t.level_index(), u64::from(t.width())))
                .collect();
            go.sort();
            let mut sorted = ours.clone();
            sorted.sort();
            assert_eq!(sorted, go, "{old} → {new}");
        }
        assert!(new_tiles(5, 5).is_empty());
    }

    #[test]
    fn a_tile_is_in_a_tree_as_full_or_as_its_exact_partial() {
        let full = hashes(0, 0, 256);
        assert!(!full.in_tree(255) && full.in_tree(256) && full.in_tree(1000));
        let p = hashes(0, 1, 3);
        assert!(p.in_tree(259) && !p.in_tree(258) && !p.in_tree(260) && !p.in_tree(512));
        let l1 = hashes(1, 0, 1);
        assert!(l1.in_tree(256) && l1.in_tree(511) && !l1.in_tree(512) && !l1.in_tree(255));
        for size in [1u64, 255, 256, 257, 65_535, 65_536, 65_537, 16_777_217] {
            for t in new_tiles(0, size) {
                assert!(t.in_tree(size), "{} not in tree {size}", t.path());
            }
        }
    }

    #[test]
    fn stored_hash_indexes_of_upper_tiles() {
        let t = hashes(1, 0, 2);
        assert_eq!(
            t.stored_hash_indexes(),
            vec![stored_hash_index(8, 0), stored_hash_index(8, 1)]
        );
    }

    #[test]
    fn bundles_round_trip_and_refuse_what_does_not_fit() {
        let entries: Vec<Vec<u8>> = vec![vec![], vec![7; 3], vec![1; MAX_BUNDLED_ENTRY]];
        let b = encode_bundle(0, &entries).unwrap();
        assert_eq!(&b[..4], &[0, 0, 0, 3]);
        assert_eq!(
            decode_bundle(&b, 3).unwrap(),
            entries.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        assert!(decode_bundle(&b, 2).is_err());
        assert!(decode_bundle(&b[..b.len() - 1], 3).is_err());
        assert!(decode_bundle(&[0], 1).is_err());
        assert_eq!(
            encode_bundle(10, &[vec![0u8; MAX_BUNDLED_ENTRY + 1]]),
            Err(TileError::EntryTooLarge {
                index: 10,
                len: 65_536
            })
        );
    }
}
