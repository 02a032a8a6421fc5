#!/usr/bin/env python3
"""Regenerates expected.json: what the OpenSSF reference tool `model_signing` computes for the
tree described by fixture.json. Our code; see README.md for how to run it.

For each case of fixture.json it builds the tree in a fresh temporary directory named `model`,
then runs the tool twice:

1. `model_signing.hashing.Config()` (with the case's options) `.hash(model)`, and the tool's own
   payload builder `model_signing._signing.signing.Payload(manifest)`: the in-toto statement the
   tool would sign, with the root digest in `subject[0].digest.sha256`;
2. a real signature: `model_signing.signing.Config().use_elliptic_key_signer(...)` with a
   throw-away P-256 key, `.sign(model, <outside the model>)`, then the DSSE payload decoded from
   the bundle.

It checks that both give the same statement and that the root digest is SHA-256 over the raw
resource digests in order, and records the statement's predicate and root digest (or the
tool's error message, with the temporary path replaced by `<model>`).

The tool writes serialization.ignore_paths in an order that changes between runs (a Python
frozenset); expected.json stores it sorted, and the test compares it as a set.
"""

import base64
import hashlib
import importlib.metadata
import json
import os
import pathlib
import platform
import sys
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format

import model_signing
from model_signing._signing import signing as oms_signing

HERE = pathlib.Path(__file__).resolve().parent


def content(entry):
    if "text" in entry:
        return entry["text"].encode("utf-8")
    spec = entry["pseudorandom"]
    seed = spec["seed"].encode("utf-8")
    out = bytearray()
    counter = 0
    while len(out) < spec["len"]:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[: spec["len"]])


def build(root, entries, symlinks):
    root.mkdir()
    for e in entries:
        if e.get("dir"):
            (root / e["path"]).mkdir(parents=True, exist_ok=True)
    for e in entries:
        if "text" in e or "pseudorandom" in e:
            p = root / e["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content(e))
    if symlinks:
        for e in entries:
            if "symlink" in e:
                os.symlink(e["symlink"], root / e["path"])


def hashing_config(case):
    return (
        model_signing.hashing.Config()
        .set_ignored_paths(
            paths=case["ignore_paths"], ignore_git_paths=case["ignore_git_paths"]
        )
        .set_allow_symlinks(case["allow_symlinks"])
    )


def statement_via_payload(model, case):
    manifest = hashing_config(case).hash(model)
    pb = oms_signing.Payload(manifest).statement.pb
    return json_format.MessageToDict(pb)


def statement_via_signature(model, case, workdir):
    key_path = workdir / "key.pem"
    if not key_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    sig_path = workdir / "model.sig"
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=key_path)
        .set_hashing_config(hashing_config(case))
        .sign(model, sig_path)
    )
    bundle = json.loads(sig_path.read_text(encoding="utf-8"))
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def normalized(statement):
    st = json.loads(json.dumps(statement))
    ser = st["predicate"]["serialization"]
    if "ignore_paths" in ser:
        ser["ignore_paths"] = sorted(
            ser["ignore_paths"], key=lambda p: pathlib.PurePosixPath(p)
        )
    return st


def run_case(case, entries, workdir):
    model = workdir / "model"
    build(model, entries, case["symlinks"])
    try:
        via_payload = statement_via_payload(model, case)
    except Exception as err:  # the tool refused the tree
        message = str(err).replace(str(model), "<model>")
        try:
            statement_via_signature(model, case, workdir)
        except Exception as err2:
            assert str(err2).replace(str(model), "<model>") == message, (err, err2)
        else:
            raise AssertionError("hashing failed but signing succeeded")
        return {"error": f"{type(err).__name__}: {message}"}
    via_signature = statement_via_signature(model, case, workdir)
    a, b = normalized(via_payload), normalized(via_signature)
    assert a == b, (a, b)

    resources = a["predicate"]["resources"]
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources))
    assert a["subject"] == [{"name": "model", "digest": {"sha256": root.hexdigest()}}]
    return {"root_digest": root.hexdigest(), "predicate": a["predicate"]}


def main():
    fixture = json.loads((HERE / "fixture.json").read_text(encoding="utf-8"))
    cases = {}
    for case in fixture["cases"]:
        with tempfile.TemporaryDirectory() as tmp:
            cases[case["name"]] = run_case(case, fixture["entries"], pathlib.Path(tmp))
    out = {
        "_comment": (
            "Generated by tests/data/manifest/reference.py from fixture.json; do not edit. "
            "Each case: the reference tool's predicate and root digest (subject[0].digest.sha256), "
            "identical from hashing.Config().hash + _signing.signing.Payload and from a real "
            "signature's DSSE payload; or the tool's error. ignore_paths sorted (the tool's "
            "order varies run to run)."
        ),
        "generated_by": {
            "command": "python3 tests/data/manifest/reference.py",
            "model_signing": importlib.metadata.version("model-signing"),
            "python": platform.python_version(),
            "platform": sys.platform,
        },
        "cases": cases,
    }
    text = json.dumps(out, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    (HERE / "expected.json").write_text(text, encoding="utf-8")
    print(f"wrote {HERE / 'expected.json'}: {len(cases)} cases")


if __name__ == "__main__":
    main()
