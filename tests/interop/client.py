#!/usr/bin/env python3
"""An independent glasslog client: Python gRPC stubs generated at run time from the proto contract,
DSSE envelopes signed with `cryptography`, and RFC 6962 / RFC 9162 proofs and C2SP signed-note
checkpoints verified here, without any of glasslog's code.

Usage: client.py HOST:PORT [--vkey VERIFIER_KEY]

With --vkey the log's verifier key is pinned (out of band) and GetLogInfo must agree with it.
Exercises every rpc of glasslog.v1.TransparencyLog, checks every answer, and prints ONE JSON line
on stdout for tests/interop/verify.go:

  {"vkey", "note", "leaf_data", "index", "proof", "old_note", "consistency"}

(the last submission with its inclusion proof in the latest checkpoint, and a consistency proof
from the first non-empty checkpoint this client saw to that one). Progress goes to stderr. Exits
non-zero with a message saying what failed on any failure.
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import sys
import tempfile
import time

try:
    import grpc
    from grpc_tools import protoc
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
except ImportError as e:  # pragma: no cover - environment problem, not a glasslog one
    sys.stderr.write(
        f"client.py: missing Python dependency ({e}); install grpcio grpcio-tools cryptography "
        "(`.ci/dev test` does)\n"
    )
    sys.exit(3)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_ROOT = os.path.join(REPO, "proto")
PROTO_FILE = "glasslog/v1/log.proto"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# The test server accepts this predicate type without declaration checks (--extra-predicate-type).
TEST_PREDICATE = "https://glasslog.dev/test/v1"


def statement(predicate):
    """An in-toto Statement v1 of TEST_PREDICATE carrying `predicate`, as JSON bytes."""
    body = json.dumps(predicate, sort_keys=True).encode()
    return json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "interop", "digest": {"sha256": hashlib.sha256(body).hexdigest()}}],
        "predicateType": TEST_PREDICATE,
        "predicate": predicate,
    }).encode()
RPC_TIMEOUT = 30.0


class Failure(Exception):
    """A check failed: the message says which and why."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def log(msg):
    sys.stderr.write(f"client.py: {msg}\n")
    sys.stderr.flush()


def b64(data):
    return base64.b64encode(data).decode("ascii")


# ----------------------------------------------------------------------------------------------
# Stubs


def load_stubs(tmp):
    """Generates log_pb2 / log_pb2_grpc from the proto into tmp and imports them."""
    import grpc_tools

    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{wkt}",
        f"--python_out={tmp}",
        f"--grpc_python_out={tmp}",
        os.path.join(PROTO_ROOT, PROTO_FILE),
    ]
    rc = protoc.main(args)
    check(rc == 0, f"grpc_tools.protoc failed (exit {rc}) on {PROTO_FILE}")
    sys.path.insert(0, tmp)
    from glasslog.v1 import log_pb2, log_pb2_grpc  # noqa: E402  (generated just above)

    return log_pb2, log_pb2_grpc


# ----------------------------------------------------------------------------------------------
# RFC 6962 hashing and RFC 9162 §2.1.3.2 / §2.1.4.2 verification


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(leaf_hashes):
    """MTH(D[n]) of RFC 6962 §2.1, computed from scratch."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(tree_root(leaf_hashes[:k]), tree_root(leaf_hashes[k:]))


def verify_inclusion(index, size, lhash, path, root):
    """RFC 9162 §2.1.3.2. Raises Failure if the proof does not verify."""
    check(0 <= index < size, f"inclusion: index {index} is not below tree size {size}")
    check(all(len(p) == 32 for p in path), "inclusion: a proof hash is not 32 bytes")
    fn, sn, r = index, size - 1, lhash
    for p in path:
        check(sn != 0, f"inclusion of {index} in {size}: proof has too many hashes ({len(path)})")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    check(sn == 0, f"inclusion of {index} in {size}: proof has too few hashes ({len(path)})")
    check(r == root, f"inclusion of {index} in {size}: proof leads to {b64(r)}, not the root {b64(root)}")


def verify_consistency(first, second, first_root, second_root, path):
    """RFC 9162 §2.1.4.2 (with 0 < first <= second). Raises Failure if the proof does not verify."""
    check(0 < first <= second, f"consistency: sizes {first} -> {second} are not 0 < first <= second")
    check(all(len(p) == 32 for p in path), "consistency: a proof hash is not 32 bytes")
    what = f"consistency {first} -> {second}"
    if first == second:
        check(not path, f"{what}: equal sizes need an empty proof, got {len(path)} hashes")
        check(first_root == second_root, f"{what}: equal sizes but different roots")
        return
    check(path, f"{what}: empty proof")
    if first & (first - 1) == 0:
        path = [first_root] + list(path)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        check(sn != 0, f"{what}: proof has too many hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    check(sn == 0, f"{what}: proof has too few hashes")
    check(fr == first_root, f"{what}: proof does not lead to the old root")
    check(sr == second_root, f"{what}: proof does not lead to the new root")


# ----------------------------------------------------------------------------------------------
# C2SP signed notes (https://c2sp.org/signed-note) and tlog-checkpoint bodies


class LogKey:
    """A C2SP verifier key "<name>+<hex key id>+<base64(0x01 || Ed25519 key)>"."""

    def __init__(self, vkey):
        parts = vkey.split("+", 2)  # the base64 key data may itself contain "+"
        check(len(parts) == 3, f"verifier key {vkey!r} is not <name>+<key id>+<key>")
        name, hex_id, key_b64 = parts
        check(name != "" and not re.search(r"\s", name), f"verifier key name {name!r} is not valid")
        check(re.fullmatch(r"[0-9a-f]{8}", hex_id) is not None, f"verifier key id {hex_id!r} is not 8 hex digits")
        try:
            key = base64.b64decode(key_b64, validate=True)
        except binascii.Error:
            raise Failure(f"verifier key data {key_b64!r} is not base64")
        check(len(key) == 33 and key[0] == 0x01, "verifier key is not 0x01 || 32-byte Ed25519 key")
        want_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
        check(bytes.fromhex(hex_id) == want_id, f"verifier key id {hex_id} is not SHA-256(name \\n key)[:4]")
        self.vkey, self.name, self.key_id = vkey, name, want_id
        self.public = ed25519.Ed25519PublicKey.from_public_bytes(key[1:])

    def open_checkpoint(self, note, what):
        """Verifies the note's signature by this key and returns (size, root) of its body."""
        check(isinstance(note, str) and note.endswith("\n"), f"{what}: note does not end with a newline")
        split = note.rfind("\n\n")
        check(split >= 0, f"{what}: note has no blank line before its signatures")
        text, sigs = note[: split + 1], note[split + 2 :]
        check(sigs != "", f"{what}: note has no signature lines")
        verified = 0
        for line in sigs[:-1].split("\n"):
            check(line.startswith("\u2014 "), f"{what}: signature line {line!r} does not start with an em dash")
            name, _, sig_b64 = line[2:].partition(" ")
            try:
                sig = base64.b64decode(sig_b64, validate=True)
            except binascii.Error:
                raise Failure(f"{what}: signature line {line!r} is not base64")
            check(len(sig) >= 5, f"{what}: signature line {line!r} is too short")
            if name != self.name or sig[:4] != self.key_id:
                continue  # another key's signature (a witness): not ours to judge
            try:
                self.public.verify(sig[4:], text.encode("utf-8"))
            except InvalidSignature:
                raise Failure(f"{what}: the log's signature on the note does not verify")
            verified += 1
        check(verified > 0, f"{what}: the note carries no signature by {self.name}+{self.key_id.hex()}")
        lines = text[:-1].split("\n")
        check(len(lines) >= 3, f"{what}: checkpoint body has fewer than 3 lines")
        origin, size_s, root_s = lines[:3]
        check(origin == self.name, f"{what}: checkpoint origin {origin!r} is not the key name {self.name!r}")
        check(re.fullmatch(r"0|[1-9][0-9]*", size_s) is not None, f"{what}: size {size_s!r} is not canonical decimal")
        try:
            root = base64.b64decode(root_s, validate=True)
        except binascii.Error:
            raise Failure(f"{what}: root {root_s!r} is not base64")
        check(len(root) == 32 and b64(root) == root_s, f"{what}: root {root_s!r} is not canonical base64 of 32 bytes")
        check(all(line != "" for line in lines[3:]), f"{what}: empty extension line")
        return int(size_s), root


# ----------------------------------------------------------------------------------------------
# Publisher keys and DSSE


def pae(payload_type, payload):
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


class Publisher:
    def __init__(self, kind):
        self.kind = kind
        self.private = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
        public = self.private.public_key()
        self.der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.key_id = hashlib.sha256(self.der).digest()

    def sign(self, message):
        if self.kind == "ed25519":
            return self.private.sign(message)
        return self.private.sign(message, ec.ECDSA(hashes.SHA256()))  # DER


def envelope(payload, signers, payload_type=PAYLOAD_TYPE):
    message = pae(payload_type, payload)
    sigs = [{"keyid": s.key_id.hex(), "sig": b64(s.sign(message))} for s in signers]
    return json.dumps({"payloadType": payload_type, "payload": b64(payload), "signatures": sigs}).encode()


# ----------------------------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, target, pinned_vkey):
        self.target = target
        self.pinned_vkey = pinned_vkey
        self.checkpoints = {}  # size -> (note, root): every verified checkpoint seen
        self.first_seen = None  # (size, note, root) of the first non-empty checkpoint seen
        self.leaves = {}  # index -> leaf data, as learned from Submit
        self.last_time_ms = None

    # -- checkpoints

    def saw_checkpoint(self, sc, what):
        """Verifies a SignedCheckpoint and records it; returns (size, root)."""
        check(sc is not None and sc.note != "", f"{what}: no checkpoint")
        size, root = self.key.open_checkpoint(sc.note, what)
        check(sc.size == size, f"{what}: size field {sc.size} differs from the note's size {size}")
        check(bytes(sc.root_hash) == root, f"{what}: root_hash field differs from the note's root")
        if size in self.checkpoints:
            check(self.checkpoints[size][1] == root, f"{what}: two different signed roots for size {size} (split view)")
        else:
            self.checkpoints[size] = (sc.note, root)
        if size > 0 and self.first_seen is None:
            self.first_seen = (size, sc.note, root)
        return size, root

    def expect_error(self, code, what, fn, *args, **kwargs):
        try:
            fn(*args, timeout=RPC_TIMEOUT, **kwargs)
        except grpc.RpcError as e:
            check(e.code() == code, f"{what}: expected {code.name}, got {e.code().name}: {e.details()}")
            log(f"{what}: {code.name} as expected ({e.details()})")
            return
        raise Failure(f"{what}: expected {code.name}, but the call succeeded")

    def expect_any_error(self, what, fn, *args, **kwargs):
        try:
            fn(*args, timeout=RPC_TIMEOUT, **kwargs)
        except grpc.RpcError as e:
            check(e.code() != grpc.StatusCode.UNAVAILABLE, f"{what}: server unavailable: {e.details()}")
            log(f"{what}: refused with {e.code().name} as expected")
            return
        raise Failure(f"{what}: expected an error, but the call succeeded")

    # -- leaves

    def check_leaf(self, leaf_data, env_bytes, signers, what):
        entry = self.pb.LogEntry.FromString(bytes(leaf_data))
        check(entry.envelope == env_bytes, f"{what}: the logged envelope differs from the bytes sent")
        want_keys = [s.pem for s in sorted(signers, key=lambda s: s.key_id)]
        check(
            list(entry.public_keys) == want_keys,
            f"{what}: logged public keys {list(entry.public_keys)!r} are not the signers' PEMs sorted by key id {want_keys!r}",
        )
        now = int(time.time() * 1000)
        check(abs(entry.integrated_time_ms - now) < 10 * 60 * 1000, f"{what}: integrated_time_ms {entry.integrated_time_ms} is not near now ({now})")
        return entry

    def submit_new(self, env_bytes, signers, what):
        r = self.stub.Submit(self.pb.SubmitRequest(envelope=env_bytes, public_keys=[s.pem for s in signers]), timeout=RPC_TIMEOUT)
        check(not r.duplicate, f"{what}: a new statement was reported as a duplicate (index {r.index})")
        check(r.HasField("proof") and r.HasField("checkpoint"), f"{what}: SubmitResponse lacks proof or checkpoint")
        check(r.index not in self.leaves, f"{what}: index {r.index} was already assigned to another entry")
        size, root = self.saw_checkpoint(r.checkpoint, f"{what}: checkpoint")
        check(r.index < size, f"{what}: index {r.index} not covered by its checkpoint of size {size}")
        entry = self.check_leaf(r.leaf_data, env_bytes, signers, what)
        if self.last_time_ms is not None:
            check(entry.integrated_time_ms >= self.last_time_ms, f"{what}: integrated time went backwards")
        self.last_time_ms = entry.integrated_time_ms
        self.check_inclusion(r.proof, r.index, bytes(r.leaf_data), size, root, what)
        self.leaves[r.index] = bytes(r.leaf_data)
        log(f"{what}: index {r.index}, proved in checkpoint size {size} ({len(r.proof.hashes)} hashes)")
        return r

    def check_inclusion(self, proof, index, leaf_data, size, root, what):
        check(proof.index == index, f"{what}: proof is for index {proof.index}, not {index}")
        check(proof.tree_size == size, f"{what}: proof is for tree size {proof.tree_size}, not {size}")
        check(bytes(proof.leaf_hash) == leaf_hash(leaf_data), f"{what}: proof's leaf_hash is not SHA-256(0x00 || leaf_data)")
        verify_inclusion(index, size, leaf_hash(leaf_data), [bytes(h) for h in proof.hashes], root)

    def consistency(self, old_size, new_size):
        r = self.stub.GetConsistencyProof(self.pb.GetConsistencyProofRequest(from_size=old_size, to_size=new_size), timeout=RPC_TIMEOUT)
        check((r.from_size, r.to_size) == (old_size, new_size), f"GetConsistencyProof({old_size}, {new_size}) answered for {r.from_size} -> {r.to_size}")
        hashes_ = [bytes(h) for h in r.hashes]
        verify_consistency(old_size, new_size, self.checkpoints[old_size][1], self.checkpoints[new_size][1], hashes_)
        return hashes_

    def get_checkpoint(self, what):
        sc = self.stub.GetCheckpoint(self.pb.GetCheckpointRequest(), timeout=RPC_TIMEOUT)
        size, root = self.saw_checkpoint(sc, what)
        return sc, size, root

    # -- the rpcs, in order

    def run(self):
        with tempfile.TemporaryDirectory(prefix="glasslog-interop-") as tmp:
            self.pb, pb_grpc = load_stubs(tmp)
            with grpc.insecure_channel(self.target) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=20)
                except grpc.FutureTimeoutError:
                    raise Failure(f"could not connect to {self.target} within 20 s")
                self.stub = pb_grpc.TransparencyLogStub(channel)
                return self.exercise()

    def exercise(self):
        pb, stub = self.pb, self.stub

        # GetLogInfo
        info = stub.GetLogInfo(pb.GetLogInfoRequest(), timeout=RPC_TIMEOUT)
        if self.pinned_vkey is not None:
            check(info.verifier_key == self.pinned_vkey, f"GetLogInfo verifier key {info.verifier_key!r} is not the pinned {self.pinned_vkey!r}")
        self.key = LogKey(self.pinned_vkey or info.verifier_key)
        check(info.origin == self.key.name, f"GetLogInfo origin {info.origin!r} is not the verifier key's name {self.key.name!r}")
        log(f"GetLogInfo: origin {info.origin}, key {info.verifier_key}")

        # GetCheckpoint before anything is added
        _, base, _ = self.get_checkpoint("first GetCheckpoint")
        self.base = base
        log(f"GetCheckpoint: size {base}")

        # Submit: Ed25519 and P-256 publishers, alternating, then one envelope signed by both
        # (10 entries; with the last submission below the tree has 11, not a power of two, so
        # the proofs handed to Go take the unbalanced-tree paths).
        ed, p256 = Publisher("ed25519"), Publisher("p256")
        sent = []  # (index, envelope bytes, signers, payload)
        alternating = 9
        for n in range(alternating):
            signer = ed if n % 2 == 0 else p256
            payload = statement({"model": "interop/python", "n": n, "signer": signer.kind})
            env = envelope(payload, [signer])
            r = self.submit_new(env, [signer], f"Submit #{n} ({signer.kind})")
            check(r.index == base + n, f"Submit #{n}: index {r.index}, expected {base + n} (entries appended in order)")
            sent.append((r.index, env, [signer], payload))
        both_payload = statement({"model": "interop/python", "n": alternating, "signer": "both"})
        both_env = envelope(both_payload, [ed, p256])
        r = self.submit_new(both_env, [ed, p256], f"Submit #{alternating} (ed25519 + p256)")
        sent.append((r.index, both_env, [ed, p256], both_payload))
        both_index = r.index

        # Duplicates: the same bytes; the same statement re-signed (ECDSA signatures are
        # randomised, so the bytes differ); keys and signatures listed in the other order.
        def expect_duplicate(env_bytes, signers, orig_index, orig_env, what):
            d = stub.Submit(pb.SubmitRequest(envelope=env_bytes, public_keys=[s.pem for s in signers]), timeout=RPC_TIMEOUT)
            check(d.duplicate, f"{what}: not reported as a duplicate (got index {d.index})")
            check(d.HasField("proof") and d.HasField("checkpoint"), f"{what}: SubmitResponse lacks proof or checkpoint")
            check(d.index == orig_index, f"{what}: duplicate index {d.index}, expected the original {orig_index}")
            size, root = self.saw_checkpoint(d.checkpoint, f"{what}: checkpoint")
            check(bytes(d.leaf_data) == self.leaves[orig_index], f"{what}: leaf_data is not the original entry's")
            self.check_leaf(d.leaf_data, orig_env, signers, what)
            self.check_inclusion(d.proof, orig_index, bytes(d.leaf_data), size, root, what)
            log(f"{what}: duplicate of index {d.index} as expected")

        expect_duplicate(both_env, [ed, p256], both_index, both_env, f"resubmission of #{alternating}")
        idx1, env1, _, payload1 = sent[1]
        resigned = envelope(payload1, [p256])
        check(resigned != env1, "ECDSA re-signature produced identical bytes (not randomised?)")
        expect_duplicate(resigned, [p256], idx1, env1, "re-signed #1 (p256)")
        reordered = envelope(both_payload, [p256, ed])
        d = stub.Submit(pb.SubmitRequest(envelope=reordered, public_keys=[p256.pem, ed.pem]), timeout=RPC_TIMEOUT)
        check(d.duplicate and d.index == both_index, f"#{alternating} with keys in the other order: duplicate={d.duplicate} index={d.index}, expected duplicate of {both_index}")
        log(f"#{alternating} with keys and signatures reordered: duplicate of index {d.index} as expected")

        # Invalid submissions: INVALID_ARGUMENT, and nothing is added.
        _, size_before, _ = self.get_checkpoint("GetCheckpoint before invalid submissions")
        bad_payload = statement({"model": "interop/python", "bad": True})
        good = json.loads(envelope(bad_payload, [ed]))
        sig = bytearray(base64.b64decode(good["signatures"][0]["sig"]))
        sig[10] ^= 0x01
        good["signatures"][0]["sig"] = b64(bytes(sig))
        self.expect_error(
            grpc.StatusCode.INVALID_ARGUMENT, "Submit with a flipped signature bit",
            stub.Submit, pb.SubmitRequest(envelope=json.dumps(good).encode(), public_keys=[ed.pem]),
        )
        self.expect_error(
            grpc.StatusCode.INVALID_ARGUMENT, "Submit signed by Ed25519 naming only the P-256 key",
            stub.Submit, pb.SubmitRequest(envelope=envelope(bad_payload, [ed]), public_keys=[p256.pem]),
        )
        self.expect_error(
            grpc.StatusCode.INVALID_ARGUMENT, "Submit of an envelope signed over the wrong payload type",
            stub.Submit,
            pb.SubmitRequest(
                envelope=json.dumps({
                    "payloadType": PAYLOAD_TYPE, "payload": b64(bad_payload),
                    "signatures": [{"keyid": "", "sig": b64(ed.sign(pae("text/plain", bad_payload)))}],
                }).encode(),
                public_keys=[ed.pem],
            ),
        )

        # GetCheckpoint
        latest, size, root = self.get_checkpoint("GetCheckpoint")
        check(size == size_before == base + len(sent), f"GetCheckpoint: size {size}, expected {base + len(sent)} (duplicates and invalid submissions add nothing)")
        log(f"GetCheckpoint: size {size}")

        # GetEntries: the whole log, in pages as the server chooses; the root recomputed from it.
        all_leaves, start = [], 0
        while start < size:
            page = stub.GetEntries(pb.GetEntriesRequest(start=start, end=size + 100), timeout=RPC_TIMEOUT)
            check(len(page.entries) > 0, f"GetEntries({start}, {size + 100}): no entries")
            for e in page.entries:
                check(e.index == start, f"GetEntries: got index {e.index}, expected {start}")
                all_leaves.append(bytes(e.leaf_data))
                start += 1
        check(len(all_leaves) == size, f"GetEntries: {len(all_leaves)} entries, log size {size}")
        for i, data in self.leaves.items():
            check(all_leaves[i] == data, f"GetEntries: entry {i} differs from the leaf Submit returned")
        leaf_hashes = [leaf_hash(d) for d in all_leaves]
        check(tree_root(leaf_hashes) == root, "GetEntries: the root recomputed from all entries is not the checkpoint's")
        for size_seen, (_, root_seen) in self.checkpoints.items():
            check(tree_root(leaf_hashes[:size_seen]) == root_seen, f"the root of the first {size_seen} entries is not the signed root for that size")
        page = stub.GetEntries(pb.GetEntriesRequest(start=base + 2, end=base + 4), timeout=RPC_TIMEOUT)
        check([e.index for e in page.entries] == [base + 2, base + 3], f"GetEntries({base + 2}, {base + 4}): indexes {[e.index for e in page.entries]}")
        self.expect_error(grpc.StatusCode.OUT_OF_RANGE, f"GetEntries(start={size})", stub.GetEntries, pb.GetEntriesRequest(start=size, end=size + 1))
        log(f"GetEntries: {size} entries; recomputed roots match every signed checkpoint seen")

        # GetInclusionProof, by index and by leaf hash, in the latest tree and in older ones.
        for index, data in sorted(self.leaves.items()):
            for tree_size in sorted({0, index + 1, size} | {s for s in self.checkpoints if s > index}):
                want = size if tree_size == 0 else tree_size
                p = stub.GetInclusionProof(pb.GetInclusionProofRequest(index=index, tree_size=tree_size), timeout=RPC_TIMEOUT)
                self.check_inclusion(p, index, data, want, tree_root(leaf_hashes[:want]), f"GetInclusionProof(index={index}, tree_size={tree_size})")
            p = stub.GetInclusionProof(pb.GetInclusionProofRequest(leaf_hash=leaf_hash(data)), timeout=RPC_TIMEOUT)
            self.check_inclusion(p, index, data, size, root, f"GetInclusionProof(leaf_hash of {index})")
        self.expect_any_error(f"GetInclusionProof(index={size})", stub.GetInclusionProof, pb.GetInclusionProofRequest(index=size))
        self.expect_any_error("GetInclusionProof(unknown leaf hash)", stub.GetInclusionProof, pb.GetInclusionProofRequest(leaf_hash=leaf_hash(b"never logged")))
        log(f"GetInclusionProof: every entry, by index and by leaf hash, in every tree size seen")

        # GetConsistencyProof between every pair of checkpoints seen.
        sizes = sorted(s for s in self.checkpoints if s > 0)
        pairs = 0
        for i, a in enumerate(sizes):
            for b in sizes[i:]:
                self.consistency(a, b)
                pairs += 1
        r = stub.GetConsistencyProof(pb.GetConsistencyProofRequest(from_size=sizes[0], to_size=0), timeout=RPC_TIMEOUT)
        check(r.to_size == size, f"GetConsistencyProof(to_size=0) answered for {r.to_size}, latest is {size}")
        self.expect_any_error("GetConsistencyProof(from_size=0)", stub.GetConsistencyProof, pb.GetConsistencyProofRequest(from_size=0, to_size=size))
        self.expect_any_error(f"GetConsistencyProof(to_size={size + 1})", stub.GetConsistencyProof, pb.GetConsistencyProofRequest(from_size=1, to_size=size + 1))
        log(f"GetConsistencyProof: {pairs} pairs of checkpoint sizes verified")

        # Tail from 0: every entry so far, then a checkpoint of exactly that size.
        self.tail_check(0, size, all_leaves, "Tail(0)")
        self.tail_check(base + 3, size, all_leaves, f"Tail({base + 3})")

        # Tail following the log: start at the current size, then submit the last entry.
        final_payload = statement({"model": "interop/python", "n": alternating + 1, "signer": "both", "last": True})
        final_env = envelope(final_payload, [p256, ed])
        last = self.tail_follow(size, final_env, [ed, p256], all_leaves)

        # The answer for verify.go: the last submission, proved in the latest checkpoint, and a
        # consistency proof from the first non-empty checkpoint seen to it.
        latest, new_size, new_root = self.get_checkpoint("final GetCheckpoint")
        check(new_size == size + 1, f"final GetCheckpoint: size {new_size}, expected {size + 1}")
        last_leaf = bytes(last.leaf_data)
        if last.checkpoint.size == new_size:
            note, proof = last.checkpoint.note, [bytes(h) for h in last.proof.hashes]
        else:
            note = latest.note
            p = stub.GetInclusionProof(pb.GetInclusionProofRequest(index=last.index, tree_size=new_size), timeout=RPC_TIMEOUT)
            self.check_inclusion(p, last.index, last_leaf, new_size, new_root, "GetInclusionProof of the last submission")
            proof = [bytes(h) for h in p.hashes]
        old_size, old_note, _ = self.first_seen
        consistency = self.consistency(old_size, new_size)
        return {
            "vkey": self.key.vkey,
            "note": note,
            "leaf_data": b64(last_leaf),
            "index": last.index,
            "proof": [b64(h) for h in proof],
            "old_note": old_note,
            "consistency": [b64(h) for h in consistency],
        }

    def next_event(self, events, what):
        try:
            return next(events)
        except StopIteration:
            raise Failure(f"{what}: the stream ended")
        except grpc.RpcError as e:
            raise Failure(f"{what}: stream failed with {e.code().name}: {e.details()}")

    def read_tail(self, events, start, until, leaves, what):
        """Reads events until a checkpoint of size `until`; checks every entry and checkpoint."""
        pos = start
        while True:
            ev = self.next_event(events, what)
            kind = ev.WhichOneof("event")
            if kind == "entry":
                check(ev.entry.index == pos, f"{what}: entry {ev.entry.index}, expected {pos}")
                check(pos < len(leaves), f"{what}: entry {pos} is past the log as known ({len(leaves)} entries)")
                check(bytes(ev.entry.leaf_data) == leaves[pos], f"{what}: entry {pos} differs from GetEntries")
                pos += 1
            elif kind == "checkpoint":
                csize, croot = self.saw_checkpoint(ev.checkpoint, f"{what}: checkpoint")
                check(csize == pos, f"{what}: checkpoint of size {csize} after entries up to {pos} (start {start})")
                check(croot == tree_root([leaf_hash(d) for d in leaves[:csize]]), f"{what}: checkpoint root does not match the entries")
                if csize >= until:
                    return pos
            else:
                raise Failure(f"{what}: an event with neither entry nor checkpoint")

    def tail_check(self, start, size, leaves, what):
        call = self.stub.Tail(self.pb.TailRequest(start=start), timeout=RPC_TIMEOUT)
        try:
            self.read_tail(call, start, size, leaves, what)
        finally:
            call.cancel()
        log(f"{what}: entries {start}..{size - 1} and a checkpoint of size {size}")

    def tail_follow(self, size, env, signers, leaves):
        what = f"Tail({size}) following the log"
        call = self.stub.Tail(self.pb.TailRequest(start=size), timeout=RPC_TIMEOUT)
        try:
            time.sleep(0.5)  # let the stream reach the live path (either path must work)
            r = self.submit_new(env, signers, f"Submit #{size - self.base}, the last (p256 + ed25519, while tailing)")
            check(r.index == size, f"last Submit: index {r.index}, expected {size}")
            self.read_tail(call, size, size + 1, leaves + [bytes(r.leaf_data)], what)
        finally:
            call.cancel()
        log(f"{what}: entry {size} and a checkpoint of size {size + 1}")
        return r


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="the server, host:port")
    parser.add_argument("--vkey", help="the log's verifier key, pinned out of band")
    args = parser.parse_args()
    try:
        out = Run(args.target, args.vkey).run()
    except Failure as e:
        log(f"FAILED: {e}")
        return 1
    except grpc.RpcError as e:
        log(f"FAILED: unexpected gRPC error {e.code().name}: {e.details()}")
        return 1
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    log("ok: every rpc answered and every answer verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
