// Command tiles checks a published C2SP tlog-tiles log (https://c2sp.org/tlog-tiles) with Go's
// own transparency-log code: golang.org/x/mod/sumdb/note (C2SP signed notes) and
// golang.org/x/mod/sumdb/tlog (RFC 6962 hashing, tiles of height 8, proofs). Nothing here is
// shared with glasslog.
//
// Usage:
//
//	go run tests/interop/tiles.go -base URL_OR_DIR -vkey VKEY [-older SIZE:ROOT ...] [-sample N] [-allow-ahead]
//
// -base is the log's prefix: an http:// or https:// URL (an HTTP server, or an S3 bucket read
// anonymously) or a local directory holding the same files. It checks, in order:
//
//  1. <base>/checkpoint is a signed note with a valid signature by -vkey (signatures by other
//     keys, such as witness cosignatures, are ignored), whose body is a C2SP tlog-checkpoint
//     whose origin is the key's name;
//  2. the tiles tile/<L>/<N>[.p/<W>] of that tree give the checkpoint's root (tlog.TreeHash
//     through tlog.TileHashReader);
//  3. every entry bundle tile/entries/<N>[.p/<W>] parses as big-endian uint16 length-prefixed
//     entries, as many as its width; each entry's RFC 6962 leaf hash is the hash at its index in
//     the level-0 tile; and the entries, all of them, hash to the checkpoint's root;
//  4. every tile the tree has is exactly 256 hashes (full) or W hashes (partial), and each hash
//     at level L+1 is the tree hash of the full tile below it at level L: with 3, every hash of
//     every tile is pinned to the entries and the root;
//  5. inclusion proofs (tlog.ProveRecord, tlog.CheckRecord) for the first and last entries,
//     the entries either side of tile boundaries and -sample others;
//  6. for each -older SIZE:ROOT (ROOT in standard base64), a consistency proof from that tree
//     (tlog.ProveTree, tlog.CheckTree);
//  7. unless -allow-ahead, that nothing lies beyond the checkpoint: at every level, neither the
//     next full tile nor the partial tile one hash wider than the checkpoint's exists (404 over
//     HTTP, no file in a directory), and the same for entry bundles. Partial tiles of earlier,
//     smaller checkpoints may exist. A publisher that crashed after writing tiles but before
//     writing the checkpoint legitimately leaves tiles ahead: -allow-ahead skips this step.
//
// Steps 3 and 4 do not rely on tlog.TileHashReader's authentication of tiles: in x/mod v0.7.0
// (Debian's) it skips checking some full tiles against their parents when several of the
// tree's subtree hashes lie in one tile (its loop starts at len(stx), the number of subtree
// hashes, not the number of distinct tiles holding them), as in a tree of 70001 entries; a
// level-0 tile damaged there comes back from ReadHashes without an error.
//
// Over HTTP it sends Accept-Encoding: gzip, identity, decodes Content-Encoding: gzip itself, and
// requires Content-Type: text/plain; charset=utf-8 for the checkpoint and
// application/octet-stream for tiles and bundles, as the spec says.
//
// On success it prints one JSON line (origin, size, root, entries_checked, proofs_checked, ...)
// on stdout and exits 0; on any failure it prints "tiles.go: REJECTED: <reason>" on stderr and
// exits 1 (2 for bad usage).
//
// Build and run without modules, with Debian's golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode:$HOME/go go run tests/interop/tiles.go -base ... -vkey ...
//
// tiles_selftest.go, run together with this file, adds -selftest and -generate (see there).
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is C2SP's: a tile holds 256 = 2⁸ hashes, and C2SP level L is Go's level L of
// height-8 tiles (tree level 8·L).
const tileHeight = 8

const tileWidth = 1 << tileHeight

// config is what one verification is asked to check.
type config struct {
	base       string
	vkey       string
	older      []olderTree
	sample     int
	allowAhead bool
}

// olderTree is an earlier checkpoint's tree, which the current one must extend.
type olderTree struct {
	size int64
	root tlog.Hash
}

// summary is the one JSON line printed on success.
type summary struct {
	Origin            string `json:"origin"`
	Size              int64  `json:"size"`
	Root              string `json:"root"`
	EntriesChecked    int64  `json:"entries_checked"`
	ProofsChecked     int    `json:"proofs_checked"`
	InclusionProofs   int    `json:"inclusion_proofs"`
	ConsistencyProofs int    `json:"consistency_proofs"`
	TilesRead         int    `json:"tiles_read"`
	BundlesRead       int    `json:"bundles_read"`
	AbsentChecked     int    `json:"absent_checked"`
	OtherSignatures   int    `json:"other_signatures"`
}

// selftest and generate are set by tiles_selftest.go when it is built in.
var (
	selftest func() error
	generate func(dir string, size int64) error
)

func main() {
	var cfg config
	var olderFlags multiFlag
	var selftestFlag bool
	var generateDir string
	var generateSize int64
	flag.StringVar(&cfg.base, "base", "", "the log's prefix: http(s) URL or directory")
	flag.StringVar(&cfg.vkey, "vkey", "", "the log's C2SP verifier key")
	flag.Var(&olderFlags, "older", "SIZE:ROOT of an earlier tree to prove consistency from (repeatable)")
	flag.IntVar(&cfg.sample, "sample", 32, "inclusion proofs of random indexes, besides first, last and tile boundaries")
	flag.BoolVar(&cfg.allowAhead, "allow-ahead", false, "do not require tiles and bundles beyond the checkpoint to be absent")
	flag.BoolVar(&selftestFlag, "selftest", false, "check this verifier against tiles Go writes itself (needs tiles_selftest.go)")
	flag.StringVar(&generateDir, "generate", "", "write a test log into this directory (needs tiles_selftest.go)")
	flag.Int64Var(&generateSize, "size", 1000, "with -generate: the tree size")
	flag.Parse()
	if flag.NArg() != 0 {
		usage("unexpected arguments %q", flag.Args())
	}

	switch {
	case selftestFlag || generateDir != "":
		if selftest == nil {
			usage("-selftest and -generate need tiles_selftest.go: go run tiles.go tiles_selftest.go ...")
		}
		var err error
		if selftestFlag {
			err = selftest()
		} else {
			err = generate(generateDir, generateSize)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "tiles.go: FAILED: %v\n", err)
			os.Exit(1)
		}
		return
	case cfg.base == "" || cfg.vkey == "":
		usage("-base and -vkey are required")
	}
	for _, f := range olderFlags {
		o, err := parseOlder(f)
		if err != nil {
			usage("%v", err)
		}
		cfg.older = append(cfg.older, o)
	}

	sum, err := verify(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tiles.go: REJECTED: %v\n", err)
		os.Exit(1)
	}
	line, _ := json.Marshal(sum)
	fmt.Println(string(line))
}

func usage(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tiles.go: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseOlder parses SIZE:ROOT, ROOT in canonical standard base64 of 32 bytes.
func parseOlder(s string) (olderTree, error) {
	sizeText, rootText, ok := strings.Cut(s, ":")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if !ok || err != nil || size < 1 {
		return olderTree{}, fmt.Errorf("-older %q: want SIZE:ROOT with SIZE >= 1", s)
	}
	root, err := decodeHash(rootText)
	if err != nil {
		return olderTree{}, fmt.Errorf("-older %q: %v", s, err)
	}
	return olderTree{size, root}, nil
}

// verify runs every check of the package comment against cfg.base.
func verify(cfg config) (*summary, error) {
	st, err := openStore(cfg.base)
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(cfg.vkey)
	if err != nil {
		return nil, fmt.Errorf("-vkey %q is not a valid verifier key: %v", cfg.vkey, err)
	}

	// 1. The checkpoint.
	raw, found, err := st.get("checkpoint")
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s does not exist", st.describe("checkpoint"))
	}
	cp, others, err := openCheckpoint(raw, verifier)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", st.describe("checkpoint"), err)
	}
	sum := &summary{
		Origin:          cp.origin,
		Size:            cp.size,
		Root:            base64.StdEncoding.EncodeToString(cp.root[:]),
		OtherSignatures: others,
	}

	tr := newTileReader(st)
	if cp.size == 0 {
		// No tiles exist, and tlog's readers do not take an empty tree.
		if cp.root != tlog.Hash(sha256.Sum256(nil)) {
			return nil, fmt.Errorf("the empty tree's root is %s, not SHA-256 of the empty string (RFC 6962 §2.1)", cp.root)
		}
		if len(cfg.older) > 0 {
			return nil, fmt.Errorf("-older %d: larger than the checkpoint's empty tree", cfg.older[0].size)
		}
	} else {
		thr := tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, tr)

		// 2. The tree hash from the tiles.
		th, err := tlog.TreeHash(cp.size, thr)
		if err != nil {
			return nil, fmt.Errorf("tree hash of size %d from the tiles: %v", cp.size, err)
		}
		if th != cp.root {
			return nil, fmt.Errorf("the tiles give root %s for size %d, the checkpoint says %s", th, cp.size, cp.root)
		}

		// 3. Every entry against its level-0 hash, and all of them against the root; the
		// sampled entries' hashes kept for step 5.
		samples := sampleIndexes(cp.size, cfg.sample)
		sampled := make(map[int64]tlog.Hash, len(samples))
		for _, x := range samples {
			sampled[x] = tlog.Hash{}
		}
		var entriesRoot rootBuilder
		for n := int64(0); n*tileWidth < cp.size; n++ {
			checked, err := checkBundle(st, tr, cp.size, n, sampled, &entriesRoot)
			if err != nil {
				return nil, err
			}
			sum.EntriesChecked += checked
			sum.BundlesRead++
		}
		if sum.EntriesChecked != cp.size {
			return nil, fmt.Errorf("checked %d entries, the tree has %d", sum.EntriesChecked, cp.size)
		}
		if r := entriesRoot.root(); r != cp.root {
			return nil, fmt.Errorf("the %d entries' tree hash is %s, the checkpoint says %s", cp.size, r, cp.root)
		}

		// 4. Every tile of every level above 0 against the full tiles below it.
		if err := checkTileLevels(tr, cp.size); err != nil {
			return nil, err
		}

		// 5. Inclusion proofs.
		for _, x := range samples {
			p, err := tlog.ProveRecord(cp.size, x, thr)
			if err != nil {
				return nil, fmt.Errorf("building the inclusion proof of entry %d from the tiles: %v", x, err)
			}
			if err := tlog.CheckRecord(p, cp.size, cp.root, x, sampled[x]); err != nil {
				return nil, fmt.Errorf("inclusion proof of entry %d in tree %d does not verify: %v", x, cp.size, err)
			}
			sum.InclusionProofs++
		}

		// 6. Consistency proofs.
		for _, o := range cfg.older {
			if o.size > cp.size {
				return nil, fmt.Errorf("-older %d: larger than the checkpoint's tree (%d): the log has shrunk or rolled back", o.size, cp.size)
			}
			p, err := tlog.ProveTree(cp.size, o.size, thr)
			if err != nil {
				return nil, fmt.Errorf("building the consistency proof from tree %d from the tiles: %v", o.size, err)
			}
			if err := tlog.CheckTree(p, cp.size, cp.root, o.size, o.root); err != nil {
				return nil, fmt.Errorf("consistency proof from tree %d (root %s) to tree %d (root %s) does not verify: %v",
					o.size, o.root, cp.size, cp.root, err)
			}
			sum.ConsistencyProofs++
		}
	}
	sum.TilesRead = tr.count()
	sum.ProofsChecked = sum.InclusionProofs + sum.ConsistencyProofs

	// 7. Nothing beyond the checkpoint.
	if !cfg.allowAhead {
		for _, p := range beyondPaths(cp.size) {
			_, found, err := st.get(p)
			if err != nil {
				return nil, err
			}
			if found {
				return nil, fmt.Errorf("%s exists, but lies beyond the checkpoint's tree of size %d", st.describe(p), cp.size)
			}
			sum.AbsentChecked++
		}
	}
	return sum, nil
}

// checkpoint is a parsed C2SP tlog-checkpoint body.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies the signed note with note.Open and parses its body. It returns how many
// signatures by other keys (witness cosignatures, say) the note carries; those are not checked.
func openCheckpoint(raw []byte, verifier note.Verifier) (checkpoint, int, error) {
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return checkpoint{}, 0, fmt.Errorf("no signature by the verifier key %s+%08x (signatures by other keys: %d)",
				verifier.Name(), verifier.KeyHash(), len(unverified.Note.UnverifiedSigs))
		}
		return checkpoint{}, 0, fmt.Errorf("not a valid signed note: %v", err)
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return checkpoint{}, 0, fmt.Errorf("body is not a C2SP tlog-checkpoint: %v", err)
	}
	if cp.origin != verifier.Name() {
		return checkpoint{}, 0, fmt.Errorf("origin %q is not the verifier key's name %q", cp.origin, verifier.Name())
	}
	return cp, len(n.UnverifiedSigs), nil
}

// parseCheckpoint parses a C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint) strictly:
//
//	<origin>\n<decimal tree size>\n<base64 root hash>\n[<extension line>\n...]
func parseCheckpoint(text string) (checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return checkpoint{}, errors.New("body does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return checkpoint{}, fmt.Errorf("body has %d lines; a checkpoint has at least 3 (origin, size, root)", len(lines))
	}
	origin, sizeText, rootText := lines[0], lines[1], lines[2]
	if origin == "" {
		return checkpoint{}, errors.New("origin line is empty")
	}
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return checkpoint{}, fmt.Errorf("size line %q is not a canonical non-negative decimal", sizeText)
	}
	root, err := decodeHash(rootText)
	if err != nil {
		return checkpoint{}, fmt.Errorf("root line: %v", err)
	}
	for i, ext := range lines[3:] {
		if ext == "" {
			return checkpoint{}, fmt.Errorf("extension line %d is empty", i+1)
		}
	}
	return checkpoint{origin, size, root}, nil
}

// decodeHash decodes canonical standard base64 of exactly 32 bytes.
func decodeHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return h, fmt.Errorf("%q is not canonical standard base64 of %d bytes", s, tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// checkBundle reads entry bundle n of a tree of size treeSize and the level-0 tile of the same
// entries, checks the bundle's framing and that each entry's leaf hash is the tile's hash at its
// index, adds the leaf hashes to root, fills in those of the indexes in sampled, and returns the
// number of entries checked.
func checkBundle(st store, tr *tileReader, treeSize, n int64, sampled map[int64]tlog.Hash, root *rootBuilder) (int64, error) {
	width := treeSize - n*tileWidth
	if width > tileWidth {
		width = tileWidth
	}
	path := c2spPath(tlog.Tile{H: tileHeight, L: -1, N: n, W: int(width)})
	data, found, err := st.get(path)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("entry bundle %s does not exist", st.describe(path))
	}
	entries, err := parseBundle(data)
	if err != nil {
		return 0, fmt.Errorf("entry bundle %s: %v", st.describe(path), err)
	}
	if int64(len(entries)) != width {
		return 0, fmt.Errorf("entry bundle %s holds %d entries, want %d", st.describe(path), len(entries), width)
	}
	tile := tlog.Tile{H: tileHeight, L: 0, N: n, W: int(width)}
	hashes, err := tr.readTile(tile)
	if err != nil {
		return 0, err
	}
	for i, e := range entries {
		x := n*tileWidth + int64(i)
		leaf := tlog.RecordHash(e) // SHA-256(0x00 || entry), RFC 6962 §2.1
		if held := hashAt(hashes, i); leaf != held {
			return 0, fmt.Errorf("entry %d (bundle %s, entry %d) hashes to %s, but %s holds %s",
				x, path, i, leaf, c2spPath(tile), held)
		}
		root.add(leaf)
		if _, ok := sampled[x]; ok {
			sampled[x] = leaf
		}
	}
	return width, nil
}

// checkTileLevels checks every full tile at every level against the hash its parent tile holds
// for it: MTH of the tile's 256 hashes (RFC 6962 §2.1) is the parent's hash at position N mod 256.
// Every hash of a tile above level 0 is some full child's, so all of them are checked.
func checkTileLevels(tr *tileReader, size int64) error {
	for _, t := range treeTiles(size) {
		if t.W < tileWidth {
			continue // a partial tile has no parent
		}
		data, err := tr.readTile(t)
		if err != nil {
			return err
		}
		parent := tlog.Tile{H: tileHeight, L: t.L + 1, N: t.N / tileWidth, W: tileWidth}
		if above := size>>(tileHeight*(t.L+1)) - parent.N*tileWidth; above < tileWidth {
			parent.W = int(above)
		}
		parentData, err := tr.readTile(parent)
		if err != nil {
			return err
		}
		held := hashAt(parentData, int(t.N%tileWidth))
		if got := tileRoot(data); got != held {
			return fmt.Errorf("%s hashes to %s, but %s holds %s for it", c2spPath(t), got, c2spPath(parent), held)
		}
	}
	return nil
}

// tileRoot is MTH of a full tile's 256 hashes: the hash its parent tile holds for it.
func tileRoot(data []byte) tlog.Hash {
	if len(data) == tlog.HashSize {
		return hashAt(data, 0)
	}
	half := len(data) / 2
	return tlog.NodeHash(tileRoot(data[:half]), tileRoot(data[half:]))
}

func hashAt(data []byte, i int) tlog.Hash {
	var h tlog.Hash
	copy(h[:], data[i*tlog.HashSize:])
	return h
}

// rootBuilder computes RFC 6962's MTH of leaf hashes given one at a time, in O(log n) memory: the
// perfect subtrees so far, largest first, merged like a binary counter's carries.
type rootBuilder struct {
	hashes []tlog.Hash
	sizes  []int64
}

func (b *rootBuilder) add(leaf tlog.Hash) {
	h, size := leaf, int64(1)
	for k := len(b.sizes) - 1; k >= 0 && b.sizes[k] == size; k-- {
		h, size = tlog.NodeHash(b.hashes[k], h), 2*size
		b.hashes, b.sizes = b.hashes[:k], b.sizes[:k]
	}
	b.hashes, b.sizes = append(b.hashes, h), append(b.sizes, size)
}

// root folds the subtrees right to left: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])),
// k the largest power of two below n (RFC 6962 §2.1).
func (b *rootBuilder) root() tlog.Hash {
	if len(b.hashes) == 0 {
		return tlog.Hash(sha256.Sum256(nil))
	}
	h := b.hashes[len(b.hashes)-1]
	for k := len(b.hashes) - 2; k >= 0; k-- {
		h = tlog.NodeHash(b.hashes[k], h)
	}
	return h
}

// parseBundle splits an entry bundle: big-endian uint16 length-prefixed entries, nothing after.
func parseBundle(data []byte) ([][]byte, error) {
	var entries [][]byte
	for off := 0; off < len(data); {
		if len(data)-off < 2 {
			return nil, fmt.Errorf("a truncated length prefix at byte %d", off)
		}
		n := int(binary.BigEndian.Uint16(data[off:]))
		off += 2
		if len(data)-off < n {
			return nil, fmt.Errorf("entry %d at byte %d claims %d bytes, %d remain", len(entries), off-2, n, len(data)-off)
		}
		entries = append(entries, data[off:off+n])
		off += n
	}
	return entries, nil
}

// sampleIndexes picks the entries to prove: first and last, either side of every tile boundary
// of levels 0..3 and of the last full level-0 tile, and `random` others (seeded by the size, so
// a run can be repeated).
func sampleIndexes(size int64, random int) []int64 {
	set := map[int64]bool{0: true, size - 1: true}
	for b := int64(tileWidth); b <= 1<<32; b *= tileWidth {
		for _, x := range []int64{b - 1, b, b + 1, size / b * b, size/b*b - 1} {
			set[x] = true
		}
	}
	rng := rand.New(rand.NewSource(size))
	for i := 0; i < random; i++ {
		set[rng.Int63n(size)] = true
	}
	var out []int64
	for x := range set {
		if x >= 0 && x < size {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// treeTiles lists every tile C2SP says a tree of this size has: at each level l, the full tiles
// and a partial tile of width floor(size / 256^l) mod 256 if that is not 0.
func treeTiles(size int64) []tlog.Tile {
	var tiles []tlog.Tile
	for l := 0; size>>(tileHeight*l) > 0; l++ {
		hashes := size >> (tileHeight * l)
		for n := int64(0); n < hashes/tileWidth; n++ {
			tiles = append(tiles, tlog.Tile{H: tileHeight, L: l, N: n, W: tileWidth})
		}
		if w := hashes % tileWidth; w > 0 {
			tiles = append(tiles, tlog.Tile{H: tileHeight, L: l, N: hashes / tileWidth, W: int(w)})
		}
	}
	return tiles
}

// beyondPaths lists files that would only exist for a larger tree: at every level up to the
// first empty one, and for entry bundles, the next full tile and the partial tile one hash
// wider than the tree's.
func beyondPaths(size int64) []string {
	var paths []string
	add := func(l int, hashes int64) {
		n, w := hashes/tileWidth, hashes%tileWidth
		paths = append(paths, c2spPath(tlog.Tile{H: tileHeight, L: l, N: n, W: tileWidth}))
		if w+1 < tileWidth {
			paths = append(paths, c2spPath(tlog.Tile{H: tileHeight, L: l, N: n, W: int(w + 1)}))
		}
	}
	add(-1, size)
	for l := 0; ; l++ {
		hashes := size >> (tileHeight * l)
		add(l, hashes)
		if hashes == 0 {
			return paths
		}
	}
}

// c2spPath maps a Go tile of height 8 to its C2SP path: Go's tile/8/<L>/<N>[.p/<W>] is C2SP's
// tile/<L>/<N>[.p/<W>], and Go's data tiles tile/8/data/<N>[.p/<W>] are C2SP's entry bundles
// tile/entries/<N>[.p/<W>]. Both encode N in the same x001/x234/067 elements.
func c2spPath(t tlog.Tile) string {
	if t.H != tileHeight {
		panic(fmt.Sprintf("tile of height %d", t.H))
	}
	rest := strings.TrimPrefix(t.Path(), "tile/8/")
	if data := strings.TrimPrefix(rest, "data/"); data != rest {
		return "tile/entries/" + data
	}
	return "tile/" + rest
}

// tileReader is a tlog.TileReader over a store. It keeps every tile it read in memory, checked
// or not, so that each is fetched once: steps 3 and 4 check every tile's content themselves.
type tileReader struct {
	st    store
	mu    sync.Mutex
	cache map[string][]byte
}

func newTileReader(st store) *tileReader {
	return &tileReader{st: st, cache: map[string][]byte{}}
}

// readTile reads one tile, of exactly t.W hashes.
func (r *tileReader) readTile(t tlog.Tile) ([]byte, error) {
	data, err := r.ReadTiles([]tlog.Tile{t})
	if err != nil {
		return nil, err
	}
	return data[0], nil
}

func (r *tileReader) Height() int { return tileHeight }

// ReadTiles reads the tiles not yet in memory, at most 8 at a time.
func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	errs := make([]error, len(tiles))
	var wg sync.WaitGroup
	limit := make(chan struct{}, 8)
	for i, t := range tiles {
		path := c2spPath(t)
		r.mu.Lock()
		cached, ok := r.cache[path]
		r.mu.Unlock()
		if ok {
			data[i] = cached
			continue
		}
		wg.Add(1)
		go func(i int, t tlog.Tile, path string) {
			defer wg.Done()
			limit <- struct{}{}
			defer func() { <-limit }()
			b, found, err := r.st.get(path)
			switch {
			case err != nil:
				errs[i] = err
			case !found:
				errs[i] = fmt.Errorf("tile %s does not exist", r.st.describe(path))
			case len(b) != t.W*tlog.HashSize:
				errs[i] = fmt.Errorf("tile %s is %d bytes, want %d (%d hashes)", r.st.describe(path), len(b), t.W*tlog.HashSize, t.W)
			default:
				data[i] = b
				r.mu.Lock()
				r.cache[path] = b
				r.mu.Unlock()
			}
		}(i, t, path)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return data, nil
}

// SaveTiles is told which tiles TileHashReader authenticated; not relied on (see the package
// comment).
func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func (r *tileReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}

// A store reads the log's files by their path below the prefix ("checkpoint", "tile/0/000").
type store interface {
	// get returns the file's bytes, or found == false if it does not exist (HTTP 404, or no such
	// file); any other answer is an error.
	get(path string) (data []byte, found bool, err error)
	// describe names the file in messages.
	describe(path string) string
}

func openStore(base string) (store, error) {
	if strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://") {
		return &httpStore{
			base:   strings.TrimSuffix(base, "/"),
			client: &http.Client{Timeout: 60 * time.Second},
		}, nil
	}
	info, err := os.Stat(base)
	if err != nil || !info.IsDir() {
		return nil, fmt.Errorf("-base %q is neither an http(s) URL nor a directory", base)
	}
	return dirStore(base), nil
}

// dirStore is a log published to a directory: files hold the bytes as served, uncompressed.
type dirStore string

func (d dirStore) describe(path string) string {
	return filepath.Join(string(d), filepath.FromSlash(path))
}

func (d dirStore) get(path string) ([]byte, bool, error) {
	name := d.describe(path)
	info, err := os.Stat(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !info.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s is not a regular file", name)
	}
	b, err := os.ReadFile(name)
	return b, err == nil, err
}

// httpStore is a log served over HTTP.
type httpStore struct {
	base   string
	client *http.Client
}

// maxBody bounds a response: a full bundle of the largest entries is 256 · (2 + 65535) bytes.
const maxBody = 32 << 20

func (s *httpStore) describe(path string) string { return s.base + "/" + path }

func (s *httpStore) get(path string) ([]byte, bool, error) {
	url := s.describe(path)
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, false, err
	}
	// Set by hand, so net/http does not decompress transparently: Content-Encoding is handled below.
	req.Header.Set("Accept-Encoding", "gzip, identity")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: reading the body: %v", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("GET %s: %s (want 200, or 404 for a missing file): %.200q", url, resp.Status, body)
	case len(body) > maxBody:
		return nil, false, fmt.Errorf("GET %s: body larger than %d bytes", url, maxBody)
	}
	if err := checkContentType(path, resp.Header.Get("Content-Type")); err != nil {
		return nil, false, fmt.Errorf("GET %s: %v", url, err)
	}
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return body, true, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, false, fmt.Errorf("GET %s: Content-Encoding: gzip, but %v", url, err)
		}
		plain, err := io.ReadAll(io.LimitReader(zr, maxBody+1))
		if err != nil || len(plain) > maxBody {
			return nil, false, fmt.Errorf("GET %s: Content-Encoding: gzip, but the body does not decompress (%v)", url, err)
		}
		return plain, true, nil
	default:
		return nil, false, fmt.Errorf("GET %s: Content-Encoding %q, but only gzip and identity were accepted", url, enc)
	}
}

// checkContentType applies tlog-tiles: text/plain; charset=utf-8 for the checkpoint,
// application/octet-stream for tiles and entry bundles.
func checkContentType(path, got string) error {
	mediaType, params, err := mime.ParseMediaType(got)
	if path == "checkpoint" {
		if err != nil || mediaType != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
			return fmt.Errorf("Content-Type %q, want text/plain; charset=utf-8", got)
		}
		return nil
	}
	if err != nil || mediaType != "application/octet-stream" {
		return fmt.Errorf("Content-Type %q, want application/octet-stream", got)
	}
	return nil
}
