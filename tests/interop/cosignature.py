#!/usr/bin/env python3
"""An independent verifier of C2SP tlog-cosignature v1 (Ed25519) cosignatures, written from the
spec (c2sp.org/tlog-cosignature, c2sp.org/signed-note), not from glasslog's code.

Usage: cosignature.py WITNESS_VKEY... < signed-note

Reads a signed note (a checkpoint with signature lines) on stdin. For every witness vkey given
(name+keyid+base64(0x04 || 32-byte Ed25519 key)), finds the signature lines with that name and
key id and verifies them as cosignature/v1 over the note's text. Prints one JSON object:
{"verified": {name: timestamp}, "failed": [names]} and exits 0 if every line of a given witness
verified, 1 otherwise.
"""

import base64
import hashlib
import json
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.exceptions import InvalidSignature


def parse_vkey(vkey):
    name, key_id_hex, key_b64 = vkey.split("+", 2)
    raw = base64.b64decode(key_b64, validate=True)
    if len(raw) != 33 or raw[0] != 0x04:
        raise ValueError(f"{vkey}: not a cosignature/v1 key (type 0x04, 32 bytes)")
    # Key ID: SHA-256(name || "\n" || 0x04 || key)[:4].
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_id.hex() != key_id_hex:
        raise ValueError(f"{vkey}: key id does not match")
    return name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def main():
    note = sys.stdin.buffer.read().decode("utf-8")
    text, sep, sigs = note.rpartition("\n\n")
    if not sep:
        raise SystemExit("not a signed note")
    text += "\n"
    witnesses = [parse_vkey(v) for v in sys.argv[1:]]
    verified, failed = {}, []
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise SystemExit(f"not a signature line: {line!r}")
        name, b64 = line[2:].split(" ", 1)
        blob = base64.b64decode(b64, validate=True)
        for w_name, w_id, key in witnesses:
            if name != w_name or blob[:4] != w_id:
                continue
            if len(blob) != 4 + 8 + 64:
                failed.append(name)
                continue
            (timestamp,) = struct.unpack(">Q", blob[4:12])
            message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
            try:
                key.verify(blob[12:], message)
                verified[name] = timestamp
            except InvalidSignature:
                failed.append(name)
    print(json.dumps({"verified": verified, "failed": failed}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
