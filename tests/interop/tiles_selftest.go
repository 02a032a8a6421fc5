// The test side of tiles.go: a log that Go's own tlog code writes, to show that tiles.go accepts
// a correct one and refuses a damaged one. Built only when named with tiles.go:
//
//	go run tests/interop/tiles.go tests/interop/tiles_selftest.go -selftest
//	go run tests/interop/tiles.go tests/interop/tiles_selftest.go -generate DIR -size N
//
// -selftest grows one log through the sizes 0, 1, 255, 256, 257, 65535, 65536, 65537 and 70001,
// publishing each into a temporary directory as a publisher would (tiles from tlog.NewTiles and
// tlog.ReadTileData, entry bundles, then the checkpoint), and after each step runs the verifier
// on the directory and, through a loopback HTTP server that gzips entry bundles, on a URL, with
// every earlier tree as -older. Then it damages the final log one way at a time (a byte of a
// tile at each level, of a bundle, of the checkpoint; a missing file; a file beyond the
// checkpoint; a wrong Content-Type; a wrong older root; an entry forged together with its
// level-0 hash) and requires a refusal naming the damage. At 70001, tlog.TileHashReader alone
// would not authenticate tile/1/000 nor the level-0 tiles below it (see tiles.go).
//
// -generate writes such a log of size N to DIR (published at sizes 1, N/2 and N) and prints
// {"vkey", "size", "root", "older": [{"size", "root"}]} as one JSON line.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func init() {
	selftest = runSelftest
	generate = runGenerate
}

const testOrigin = "selftest.glasslog.dev/tiles"

// testLog is a log held in memory and published to a directory.
type testLog struct {
	dir     string
	signers []note.Signer // the log's key, then a witness the verifier does not know
	vkey    string
	entries [][]byte
	hashes  []tlog.Hash // stored hashes, Go's numbering
	trees   []olderTree // every published tree but the empty one
}

func newTestLog(dir string) (*testLog, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		return nil, err
	}
	wkey, _, err := note.GenerateKey(rand.Reader, "witness.selftest.glasslog.dev/w")
	if err != nil {
		return nil, err
	}
	l := &testLog{dir: dir, vkey: vkey}
	for _, k := range []string{skey, wkey} {
		s, err := note.NewSigner(k)
		if err != nil {
			return nil, err
		}
		l.signers = append(l.signers, s)
	}
	return l, nil
}

func (l *testLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("stored hash %d not yet computed", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// entry i: a few bytes varying in length, with an empty entry and a longest (65535-byte) one.
func testEntry(i int64) []byte {
	switch i {
	case 300:
		return []byte{}
	case 1000:
		return bytes.Repeat([]byte{0xA5}, 65535)
	}
	return []byte(fmt.Sprintf("entry %d %s", i, strings.Repeat("~", int(i%97))))
}

// growTo appends entries up to size and publishes: tiles, bundles, then the checkpoint.
func (l *testLog) growTo(size int64) (olderTree, error) {
	old := int64(len(l.entries))
	for i := old; i < size; i++ {
		e := testEntry(i)
		hs, err := tlog.StoredHashes(i, e, l)
		if err != nil {
			return olderTree{}, err
		}
		l.entries = append(l.entries, e)
		l.hashes = append(l.hashes, hs...)
	}
	for _, t := range tlog.NewTiles(tileHeight, old, size) {
		data, err := tlog.ReadTileData(t, l)
		if err != nil {
			return olderTree{}, err
		}
		if err := l.write(c2spPath(t), data); err != nil {
			return olderTree{}, err
		}
	}
	for n := old / tileWidth; n*tileWidth < size; n++ {
		end := (n + 1) * tileWidth
		if end > size {
			end = size
		}
		var bundle []byte
		for _, e := range l.entries[n*tileWidth : end] {
			bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(e)))
			bundle = append(bundle, e...)
		}
		t := tlog.Tile{H: tileHeight, L: -1, N: n, W: int(end - n*tileWidth)}
		if err := l.write(c2spPath(t), bundle); err != nil {
			return olderTree{}, err
		}
	}
	root := tlog.Hash(sha256.Sum256(nil))
	if size > 0 {
		var err error
		if root, err = tlog.TreeHash(size, l); err != nil {
			return olderTree{}, err
		}
	}
	body := fmt.Sprintf("%s\n%d\n%s\n", testOrigin, size, base64.StdEncoding.EncodeToString(root[:]))
	signed, err := note.Sign(&note.Note{Text: body}, l.signers...)
	if err != nil {
		return olderTree{}, err
	}
	if err := l.write("checkpoint", signed); err != nil {
		return olderTree{}, err
	}
	tree := olderTree{size, root}
	if size > 0 {
		l.trees = append(l.trees, tree)
	}
	return tree, nil
}

func (l *testLog) write(path string, data []byte) error {
	name := filepath.Join(l.dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, data, 0o644)
}

func (l *testLog) config(base string) config {
	older := append([]olderTree(nil), l.trees...)
	return config{base: base, vkey: l.vkey, older: older, sample: 16}
}

// serveDir serves a published directory as tlog-tiles over loopback HTTP: the spec's content
// types, entry bundles gzipped. wrongType makes it answer application/json instead.
func serveDir(dir string, wrongType *atomic.Bool) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/")
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil || r.Method != "GET" {
			http.NotFound(w, r)
			return
		}
		switch {
		case wrongType.Load():
			w.Header().Set("Content-Type", "application/json")
		case path == "checkpoint":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		if strings.HasPrefix(path, "tile/entries/") && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(data)
			zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			data = buf.Bytes()
		}
		w.Write(data)
	}))
}

func runSelftest() error {
	dir, err := os.MkdirTemp("", "tiles-selftest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := newTestLog(dir)
	if err != nil {
		return err
	}
	var wrongType atomic.Bool
	srv := serveDir(dir, &wrongType)
	defer srv.Close()

	accepted := 0
	for _, size := range []int64{0, 1, 255, 256, 257, 65535, 65536, 65537, 70001} {
		if _, err := l.growTo(size); err != nil {
			return fmt.Errorf("publishing size %d: %v", size, err)
		}
		for _, base := range []string{dir, srv.URL} {
			cfg := l.config(base)
			if size > 0 {
				cfg.older = cfg.older[:len(cfg.older)-1] // the tree itself is not "older"
			}
			sum, err := verify(cfg)
			if err != nil {
				return fmt.Errorf("size %d from %s: a correct log was REJECTED: %v", size, base, err)
			}
			if sum.Size != size || sum.EntriesChecked != size || sum.OtherSignatures != 1 ||
				sum.ConsistencyProofs != len(cfg.older) || (size > 0 && sum.InclusionProofs == 0) {
				return fmt.Errorf("size %d from %s: unexpected summary %+v", size, base, sum)
			}
			accepted++
		}
	}

	// The log is at 70001: level 0 has 273 full tiles and tile/0/273.p/113, level 1 the full
	// tile/1/000 and tile/1/001.p/17, level 2 tile/2/000.p/1; bundles tile/entries/000..272 and
	// 273.p/113.
	published, err := snapshot(dir)
	if err != nil {
		return err
	}
	flip := func(path string, at int) func() error {
		return func() error { return edit(dir, path, func(b []byte) []byte { b[at%len(b)] ^= 0x01; return b }) }
	}
	cases := []struct {
		what, want string
		damage     func() error
		cfg        func(config) config
	}{
		{"a byte of a full level-0 tile", "(bundle tile/entries/017, entry 3) hashes to", flip("tile/0/017", 100), nil},
		{"a byte of the partial level-0 tile", "inconsistent tile", flip("tile/0/273.p/113", 5), nil},
		{"a byte of the full level-1 tile", "tile/0/255 hashes to", flip("tile/1/000", 8191), nil},
		{"a byte of the partial level-1 tile", "inconsistent tile", flip("tile/1/001.p/17", 543), nil},
		{"a byte of the partial level-2 tile", "inconsistent tile", flip("tile/2/000.p/1", 31), nil},
		{"an entry forged with its level-0 hash", "70001 entries' tree hash is", func() error {
			return forgeEntry(dir, 100, 5)
		}, nil},
		{"a truncated tile", "is 8160 bytes", func() error {
			return edit(dir, "tile/0/100", func(b []byte) []byte { return b[:len(b)-32] })
		}, nil},
		{"a missing tile", "tile/0/042 does not exist", remove(dir, "tile/0/042"), nil},
		{"a byte of an entry in a full bundle", "(bundle tile/entries/003, entry 17)", func() error {
			return edit(dir, "tile/entries/003", func(b []byte) []byte { return flipEntryByte(b, 17) })
		}, nil},
		{"a byte of the partial bundle", "(bundle tile/entries/273.p/113, entry 112)", func() error {
			return edit(dir, "tile/entries/273.p/113", func(b []byte) []byte { return flipEntryByte(b, 112) })
		}, nil},
		{"a length prefix", "entry bundle", flip("tile/entries/009", 0), nil},
		{"an entry appended to a bundle", "holds 257 entries, want 256", func() error {
			return edit(dir, "tile/entries/010", func(b []byte) []byte { return append(b, 0, 1, 'x') })
		}, nil},
		{"a missing bundle", "tile/entries/200 does not exist", remove(dir, "tile/entries/200"), nil},
		{"a byte of the checkpoint's root", "invalid signature", func() error {
			return edit(dir, "checkpoint", func(b []byte) []byte {
				lines := bytes.SplitN(b, []byte("\n"), 4)
				lines[2][3] ^= 0x01
				return bytes.Join(lines, []byte("\n"))
			})
		}, nil},
		{"a byte of the log's signature", "invalid signature", func() error {
			return edit(dir, "checkpoint", flipFirstSignature)
		}, nil},
		{"the log's signature removed", "no signature by the verifier key", func() error {
			return edit(dir, "checkpoint", func(b []byte) []byte {
				i := bytes.Index(b, []byte("\n\n")) + 2
				j := bytes.IndexByte(b[i:], '\n') + i + 1
				return append(b[:i:i], b[j:]...)
			})
		}, nil},
		{"a partial tile beyond the checkpoint", "lies beyond the checkpoint", func() error {
			return copyFile(dir, "tile/0/273.p/113", "tile/0/273.p/114")
		}, nil},
		{"a full bundle beyond the checkpoint", "lies beyond the checkpoint", func() error {
			return copyFile(dir, "tile/entries/272", "tile/entries/273")
		}, nil},
		{"a level-3 tile beyond the checkpoint", "lies beyond the checkpoint", func() error {
			return copyFile(dir, "tile/2/000.p/1", "tile/3/000.p/1")
		}, nil},
		{"another log's key", "no signature by the verifier key", nil, func(c config) config {
			_, c.vkey, _ = note.GenerateKey(rand.Reader, testOrigin)
			return c
		}},
		{"a wrong root for an older tree", "consistency proof from tree 256", nil, func(c config) config {
			c.older = []olderTree{{256, c.older[0].root}}
			return c
		}},
		{"an older tree larger than the checkpoint's", "has shrunk", nil, func(c config) config {
			c.older = []olderTree{{70002, c.older[0].root}}
			return c
		}},
	}
	refused := 0
	for _, c := range cases {
		for _, base := range []string{dir, srv.URL} {
			if err := refuse(l, published, base, c.what, c.want, c.damage, c.cfg); err != nil {
				return err
			}
			refused++
		}
	}

	// Over HTTP only: a Content-Type the spec does not allow.
	wrongType.Store(true)
	_, err = verify(l.config(srv.URL))
	wrongType.Store(false)
	if err == nil || !strings.Contains(err.Error(), "Content-Type \"application/json\"") {
		return fmt.Errorf("wrong Content-Type: want a refusal naming it, got %v", err)
	}
	refused++

	// Tiles ahead of the checkpoint are allowed when asked.
	if err := copyFile(dir, "tile/0/273.p/113", "tile/0/273.p/114"); err != nil {
		return err
	}
	cfg := l.config(dir)
	cfg.allowAhead = true
	if _, err := verify(cfg); err != nil {
		return fmt.Errorf("-allow-ahead: a tile ahead of the checkpoint was REJECTED: %v", err)
	}
	line, _ := json.Marshal(map[string]int{"accepted": accepted + 1, "refused": refused})
	fmt.Println(string(line))
	return nil
}

// refuse damages the log (or the configuration), requires verify to fail with a message holding
// want, then restores the published files and requires verify to pass again.
func refuse(l *testLog, published map[string][]byte, base, what, want string, damage func() error, change func(config) config) error {
	cfg := l.config(base)
	if damage != nil {
		if err := damage(); err != nil {
			return fmt.Errorf("damaging %s: %v", what, err)
		}
	}
	if change != nil {
		cfg = change(cfg)
	}
	_, err := verify(cfg)
	if err == nil {
		return fmt.Errorf("%s from %s: ACCEPTED", what, base)
	}
	if !strings.Contains(err.Error(), want) {
		return fmt.Errorf("%s from %s: refused, but not with %q: %v", what, base, want, err)
	}
	fmt.Fprintf(os.Stderr, "refused %s (%s): %v\n", what, base, err)
	if err := restore(l.dir, published); err != nil {
		return err
	}
	if _, err := verify(l.config(base)); err != nil {
		return fmt.Errorf("after repairing %s: %v", what, err)
	}
	return nil
}

// snapshot reads every file under dir.
func snapshot(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(name string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(name)
		files[name] = b
		return err
	})
	return files, err
}

// restore makes dir hold exactly the snapshot's files again.
func restore(dir string, files map[string][]byte) error {
	now, err := snapshot(dir)
	if err != nil {
		return err
	}
	for name, b := range now {
		if want, ok := files[name]; !ok {
			err = os.Remove(name)
		} else if !bytes.Equal(b, want) {
			err = os.WriteFile(name, want, 0o644)
		}
		if err != nil {
			return err
		}
	}
	for name, want := range files {
		if _, ok := now[name]; !ok {
			if err := os.WriteFile(name, want, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func edit(dir, path string, f func([]byte) []byte) error {
	name := filepath.Join(dir, filepath.FromSlash(path))
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	return os.WriteFile(name, f(b), 0o644)
}

func remove(dir, path string) func() error {
	return func() error { return os.Remove(filepath.Join(dir, filepath.FromSlash(path))) }
}

func copyFile(dir, from, to string) error {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(from)))
	if err != nil {
		return err
	}
	name := filepath.Join(dir, filepath.FromSlash(to))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// flipFirstSignature flips a bit of the Ed25519 signature (not the key hash) on a note's first
// signature line, the log's.
func flipFirstSignature(msg []byte) []byte {
	i := bytes.Index(msg, []byte("\n\n")) + 2
	j := bytes.IndexByte(msg[i:], '\n') + i
	line := string(msg[i:j])
	k := strings.LastIndexByte(line, ' ') + 1
	sig, _ := base64.StdEncoding.DecodeString(line[k:])
	sig[4+10] ^= 0x01
	out := append([]byte(nil), msg[:i+k]...)
	out = append(out, base64.StdEncoding.EncodeToString(sig)...)
	return append(out, msg[j:]...)
}

// forgeEntry replaces entry i of full bundle n with another and puts the new entry's leaf hash
// in level-0 tile n: only the level-1 tile (and the root) still disagree.
func forgeEntry(dir string, n int64, i int) error {
	bundle := fmt.Sprintf("tile/entries/%03d", n)
	var forged []byte
	if err := edit(dir, bundle, func(b []byte) []byte {
		off := 0
		for k := 0; k < i; k++ {
			off += 2 + int(binary.BigEndian.Uint16(b[off:]))
		}
		size := int(binary.BigEndian.Uint16(b[off:]))
		forged = append([]byte(nil), b[off+2:off+2+size]...)
		forged[0] ^= 0x01
		copy(b[off+2:], forged)
		return b
	}); err != nil {
		return err
	}
	return edit(dir, fmt.Sprintf("tile/0/%03d", n), func(b []byte) []byte {
		leaf := tlog.RecordHash(forged)
		copy(b[i*tlog.HashSize:], leaf[:])
		return b
	})
}

// flipEntryByte flips the last byte of entry i of a bundle (entries are never empty there).
func flipEntryByte(bundle []byte, i int) []byte {
	off := 0
	for k := 0; ; k++ {
		n := int(binary.BigEndian.Uint16(bundle[off:]))
		if k == i {
			bundle[off+2+n-1] ^= 0x01
			return bundle
		}
		off += 2 + n
	}
}

func runGenerate(dir string, size int64) error {
	if size < 1 {
		return fmt.Errorf("-size %d: want at least 1", size)
	}
	l, err := newTestLog(dir)
	if err != nil {
		return err
	}
	type tree struct {
		Size int64  `json:"size"`
		Root string `json:"root"`
	}
	var older []tree
	for _, s := range []int64{1, size / 2, size} {
		if s < 1 || (len(older) > 0 && s <= older[len(older)-1].Size) {
			continue
		}
		t, err := l.growTo(s)
		if err != nil {
			return err
		}
		older = append(older, tree{t.size, base64.StdEncoding.EncodeToString(t.root[:])})
	}
	last := older[len(older)-1]
	line, _ := json.Marshal(map[string]interface{}{
		"vkey":  l.vkey,
		"size":  last.Size,
		"root":  last.Root,
		"older": older[:len(older)-1],
	})
	fmt.Println(string(line))
	return nil
}
