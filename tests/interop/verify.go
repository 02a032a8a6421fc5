// Command verify checks what a glasslog client saw with Go's own transparency-log code:
// golang.org/x/mod/sumdb/note (C2SP signed notes) and golang.org/x/mod/sumdb/tlog (RFC 6962
// proofs, the code behind Go's checksum database). Nothing here is shared with glasslog.
//
// It reads one JSON object on stdin:
//
//	{
//	  "vkey":        C2SP verifier key "<name>+<hex key id>+<base64(0x01 || Ed25519 key)>",
//	  "note":        a signed checkpoint note,
//	  "leaf_data":   standard base64 of the leaf data,
//	  "index":       the leaf's index,
//	  "proof":       [standard base64 hashes], the inclusion proof in the note's tree,
//	  "old_note":    optional: an earlier signed checkpoint note,
//	  "consistency": optional (required with old_note): [standard base64 hashes]
//	}
//
// and checks that both notes carry a valid signature by vkey, that their bodies are C2SP
// tlog-checkpoint bodies whose origin is vkey's name, that the leaf is at index in the note's
// tree, and that the old tree is a prefix of the new one. On success it prints "ok" and exits 0;
// on any failure it prints the reason on stderr and exits 1.
//
// Build and run without modules, with Debian's golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode:$HOME/go go run tests/interop/verify.go < seen.json
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// input is what the client saw. Pointers tell a missing field from a zero one.
type input struct {
	Vkey        *string   `json:"vkey"`
	Note        *string   `json:"note"`
	LeafData    *string   `json:"leaf_data"`
	Index       *int64    `json:"index"`
	Proof       *[]string `json:"proof"`
	OldNote     *string   `json:"old_note"`
	Consistency *[]string `json:"consistency"`
}

// checkpoint is a parsed C2SP tlog-checkpoint body.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func main() {
	summary, err := run(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "verify.go: REJECTED: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "verify.go: %s\n", summary)
	fmt.Println("ok")
}

func run(r io.Reader) (string, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 256<<20))
	if err != nil {
		return "", fmt.Errorf("reading stdin: %v", err)
	}
	in, err := decodeInput(raw)
	if err != nil {
		return "", err
	}

	verifier, err := note.NewVerifier(*in.Vkey)
	if err != nil {
		return "", fmt.Errorf("vkey %q is not a valid verifier key: %v", *in.Vkey, err)
	}
	verifiers := note.VerifierList(verifier)

	cp, err := openCheckpoint("note", *in.Note, verifiers, verifier.Name())
	if err != nil {
		return "", err
	}

	// Inclusion.
	leaf, err := base64.StdEncoding.Strict().DecodeString(*in.LeafData)
	if err != nil {
		return "", fmt.Errorf("leaf_data is not standard base64: %v", err)
	}
	index := *in.Index
	if index < 0 || index >= cp.size {
		return "", fmt.Errorf("index %d is not in the checkpoint's tree of size %d", index, cp.size)
	}
	proof, err := decodeHashes("proof", *in.Proof)
	if err != nil {
		return "", err
	}
	if err := tlog.CheckRecord(tlog.RecordProof(proof), cp.size, cp.root, index, tlog.RecordHash(leaf)); err != nil {
		return "", fmt.Errorf("inclusion proof of leaf %d (record hash %s) in tree %d (root %s) does not verify: %v",
			index, tlog.RecordHash(leaf), cp.size, cp.root, err)
	}
	summary := fmt.Sprintf("checkpoint %q size %d root %s signed by %s+%08x; leaf %d included (%d hashes)",
		cp.origin, cp.size, cp.root, verifier.Name(), verifier.KeyHash(), index, len(proof))

	// Consistency.
	if (in.OldNote == nil) != (in.Consistency == nil) {
		return "", errors.New("old_note and consistency must be given together")
	}
	if in.OldNote != nil {
		old, err := openCheckpoint("old_note", *in.OldNote, verifiers, verifier.Name())
		if err != nil {
			return "", err
		}
		consistency, err := decodeHashes("consistency", *in.Consistency)
		if err != nil {
			return "", err
		}
		switch {
		case old.size > cp.size:
			return "", fmt.Errorf("old_note's tree (size %d) is larger than note's (size %d)", old.size, cp.size)
		case old.size == 0:
			// Every tree extends the empty tree, so such a proof proves nothing; tlog.CheckTree
			// (like the proto's GetConsistencyProof) takes only old sizes >= 1.
			return "", errors.New("old_note is the empty tree; a consistency proof needs an old size of at least 1")
		default:
			if err := tlog.CheckTree(tlog.TreeProof(consistency), cp.size, cp.root, old.size, old.root); err != nil {
				return "", fmt.Errorf("consistency proof from tree %d (root %s) to tree %d (root %s) does not verify: %v",
					old.size, old.root, cp.size, cp.root, err)
			}
		}
		summary += fmt.Sprintf("; tree %d (root %s) is a prefix of tree %d (%d hashes)",
			old.size, old.root, cp.size, len(consistency))
	}
	return summary, nil
}

// decodeInput parses exactly one JSON object with only the known fields, all required ones set.
func decodeInput(raw []byte) (*input, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("stdin is not the expected JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("stdin has data after the JSON object")
	}
	var missing []string
	if in.Vkey == nil {
		missing = append(missing, "vkey")
	}
	if in.Note == nil {
		missing = append(missing, "note")
	}
	if in.LeafData == nil {
		missing = append(missing, "leaf_data")
	}
	if in.Index == nil {
		missing = append(missing, "index")
	}
	if in.Proof == nil {
		missing = append(missing, "proof")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("stdin JSON lacks required field(s): %s", strings.Join(missing, ", "))
	}
	return &in, nil
}

// openCheckpoint verifies a signed note with Go's note package and parses its body.
func openCheckpoint(field, text string, verifiers note.Verifiers, keyName string) (checkpoint, error) {
	n, err := note.Open([]byte(text), verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return checkpoint{}, fmt.Errorf("%s has no signature by the verifier key %s (signatures by unknown keys: %d)",
				field, keyName, len(unverified.Note.UnverifiedSigs))
		}
		return checkpoint{}, fmt.Errorf("%s does not open as a signed note: %v", field, err)
	}
	signed := false
	for _, s := range n.Sigs {
		if s.Name == keyName {
			signed = true
		}
	}
	if !signed {
		return checkpoint{}, fmt.Errorf("%s carries no verified signature named %s", field, keyName)
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return checkpoint{}, fmt.Errorf("%s body is not a C2SP tlog-checkpoint: %v", field, err)
	}
	if cp.origin != keyName {
		return checkpoint{}, fmt.Errorf("%s origin %q is not the verifier key's name %q", field, cp.origin, keyName)
	}
	return cp, nil
}

// parseCheckpoint parses a C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint):
//
//	<origin>\n<decimal tree size>\n<base64 root hash>\n[<extension line>\n...]
//
// strictly: a non-empty origin, the size in canonical decimal (no sign, no leading zeros), the
// root in canonical standard base64 of exactly 32 bytes, extension lines non-empty.
// tlog.ParseTree cannot be used: it expects the go.sum database header as the first line.
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
	root, err := base64.StdEncoding.Strict().DecodeString(rootText)
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != rootText {
		return checkpoint{}, fmt.Errorf("root line %q is not canonical standard base64 of %d bytes", rootText, tlog.HashSize)
	}
	for i, ext := range lines[3:] {
		if ext == "" {
			return checkpoint{}, fmt.Errorf("extension line %d is empty", i+1)
		}
	}
	var cp checkpoint
	cp.origin, cp.size = origin, size
	copy(cp.root[:], root)
	return cp, nil
}

// decodeHashes decodes a list of standard base64 hashes of exactly 32 bytes each.
func decodeHashes(field string, list []string) ([]tlog.Hash, error) {
	hashes := make([]tlog.Hash, len(list))
	for i, s := range list {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
			return nil, fmt.Errorf("%s[%d] %q is not canonical standard base64 of a %d-byte hash", field, i, s, tlog.HashSize)
		}
		copy(hashes[i][:], b)
	}
	return hashes, nil
}
