#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from the project's test data.

Run from anywhere: python3 fuzz/make_seeds.py. The output is committed; rerun after changing
tests/data or adding a target. Seeds only steer the fuzzer towards the interesting shapes;
libFuzzer's own corpus (fuzz/corpus/, not committed) grows from them.
"""
import base64
import hashlib
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = ROOT / "fuzz" / "seeds"

# An Ed25519 and a P-256 public key, made with openssl (no target needs their private keys).
ED25519_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAbefnA0yCG7MMYkEXjZGkQcrYe0tdVX46y2RQL+SBAtc=\n"
    "-----END PUBLIC KEY-----\n"
)
P256_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuZClzDpu0B+Oi+bdUJOYn+ZLOk4c\n"
    "u/G4ve7BdfLD5nXHo+e1EM0GZw5PuF87bk9sC7RUQI1/PPYD7zXobI0zVA==\n"
    "-----END PUBLIC KEY-----\n"
)


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, value):
    """A protobuf field: varint for ints, length-delimited for bytes and str."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def envelope(payload, sig=b"\x01" * 64):
    return json.dumps({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": hashlib.sha256(b"k").hexdigest(), "sig": base64.b64encode(sig).decode()}],
    }).encode()


def main():
    declarations = {p.stem: p.read_bytes() for p in sorted((DATA / "declarations").glob("*.json"))}

    # strict_json: real statements, and the ambiguities strict JSON exists to refuse.
    for name, data in declarations.items():
        write("strict_json", name, data)
    for i, doc in enumerate([
        '{"a":1,"a":2}', '{"payloadType":1,"PayloadType":2}', '[[[[[[1]]]]]]', '"\\ud800"',
        '{"k":"\\u0000"}', '1e400', '-0', ' {} ', '{"a":[1,2,{"b":null}]} x', '{"\u212a":1,"k":2}',
    ]):
        write("strict_json", f"edge-{i}", doc)

    # admission: the payloads of real submissions.
    for name, data in declarations.items():
        write("admission", name, data)

    # dsse_envelope
    for name, data in declarations.items():
        write("dsse_envelope", name, envelope(data))
    write("dsse_envelope", "two-signatures", json.dumps({
        "payloadType": "x", "payload": "",
        "signatures": [{"keyid": "", "sig": "AA=="}, {"sig": "AQ=="}],
    }))

    # public_key: a split byte (0: all of the rest is the key), the key, the signature.
    write("public_key", "ed25519-pem", b"\x00" + ED25519_PEM.encode())
    write("public_key", "p256-pem", b"\x00" + P256_PEM.encode())
    der = base64.b64decode("".join(ED25519_PEM.splitlines()[1:-1]))
    write("public_key", "ed25519-der-sig", bytes([64]) + der + b"\x02" * 64)
    der = base64.b64decode("".join(P256_PEM.splitlines()[1:-1]))
    write("public_key", "p256-der-sig", bytes([72]) + der + bytes.fromhex("3046022100" + "11" * 32 + "022100" + "ff" * 32))

    # notes: signed checkpoints and notes, witness bodies, policies, cosignature lines.
    checkpoints = json.loads((DATA / "checkpoints.json").read_text())
    for i, v in enumerate(checkpoints["vectors"]):
        note = v.get("note") or v.get("text") or v.get("input")
        if isinstance(note, str):
            write("notes", f"checkpoint-{i}", note)
            write("notes", f"add-checkpoint-{i}", "old 0\n\n" + note)
    notes = json.loads((DATA / "notes.json").read_text())
    for i, v in enumerate(notes["vectors"]):
        for key in ("note", "text", "msg"):
            if isinstance(v.get(key), str):
                write("notes", f"note-{i}-{key}", v[key])
    write("notes", "add-checkpoint-proof",
          "old 3\n" + base64.b64encode(b"\x07" * 32).decode() + "\n\n"
          "example.com/oracle-test-log\n5\n" + base64.b64encode(b"\x09" * 32).decode() + "\n\n"
          "\u2014 example.com/oracle-test-log vrBbkwAAAAA=\n")
    write("notes", "policy",
          "log example.com/oracle-test-log+beb05b93+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4\n"
          "witness w1 witness.example+1234abcd+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 https://w1.example/\n"
          "group g any w1\nquorum g\n")
    write("notes", "size-body", "12\n")
    cosigs = DATA / "sigsum_cosignatures.txt"
    if cosigs.exists():
        write("notes", "cosignatures", cosigs.read_bytes())

    # requests: a selector byte (see requests.rs) and an encoded message.
    sample = envelope(declarations["model-release"])
    for name, (which, msg) in {
        "submit": (1, field(1, sample) + field(2, ED25519_PEM)),
        "checkpoint": (2, field(1, 1)),
        "entries": (3, field(1, 5) + field(2, 1000)),
        "inclusion-index": (4, field(1, 7) + field(3, 100)),
        "inclusion-hash": (4, field(2, b"\x01" * 32)),
        "consistency": (5, field(1, 3) + field(2, 9)),
        "tail": (6, field(1, 42)),
        "search-name": (7, field(1, "example-org/tiny-chat") + field(11, 50)),
        "search-version": (7, field(2, "example-org/tiny-chat@1.2.0") + field(10, "AAAAAAAAABA")),
        "search-digest": (7, field(3, b"\x02" * 32)),
        "tail-event": (8, field(1, field(1, 3) + field(2, b"leaf"))),
        "entries-response": (9, field(1, field(1, 3) + field(2, b"leaf"))),
        "log-entry": (11, field(1, sample) + field(2, ED25519_PEM) + field(3, 1780000000000)),
    }.items():
        write("requests", name, bytes([which]) + msg)

    # search_key: keys as the index writes them, and SearchRequests.
    def text(t):
        return struct.pack(">I", len(t)) + t
    index = struct.pack(">Q", 12345)
    write("search_key", "name", b"\x01" + text(b"example-org/tiny-chat") + index)
    write("search_key", "name-version", b"\x02" + text(b"example-org/tiny-chat") + text(b"2.0\x00") + index)
    for tag in range(3, 7):
        write("search_key", f"digest-{tag}", bytes([tag]) + bytes(range(32)) + index)
    write("search_key", "request-name-version", field(2, "example-org/tiny-chat@2.0"))

    # merkle_proofs: tree size, leaf index and old size (u16 LE each), then damage ops.
    write("merkle_proofs", "intact", struct.pack("<HHH", 300, 7, 100))
    write("merkle_proofs", "flip", struct.pack("<HHH", 255, 254, 128) + bytes([0, 1, 5]))
    write("merkle_proofs", "cut-and-move", struct.pack("<HHH", 64, 63, 63) + bytes([1, 2, 0, 3, 0, 129]))


if __name__ == "__main__":
    main()
