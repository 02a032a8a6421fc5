// glasslog explorer: the in-browser check of an entry page.
//
// Uses only the browser's WebCrypto (SHA-256, Ed25519); nothing is fetched. The page carries
// its data in a non-executable <script type="application/json" id="glasslog-check"> block:
// the leaf, the inclusion proof and the signed checkpoint. This script checks, in order:
//   1. the leaf's hash, SHA-256(0x00 || leaf) (RFC 6962 §2.1), equals the proof's leaf hash;
//   2. the statement shown under "Raw" is the one in the leaf (the leaf is a protobuf LogEntry
//      whose field 1 is the DSSE envelope; its payload is the statement);
//   3. the inclusion proof leads from that leaf hash to a root (RFC 9162 §2.1.3.2) that is the
//      checkpoint's root, for the checkpoint's tree size;
//   4. the checkpoint is a C2SP signed note with an Ed25519 signature by the pinned log key
//      (vkey "name+hash+base64(0x01 || public key)"; key hash = first 4 bytes of
//      SHA-256(name || "\n" || 0x01 || public key)).
// It says plainly which of these held, and what it did not check (listed on the page).
'use strict';

(function () {
  const PIN = 'glasslog.pinned-log-key';
  const enc = new TextEncoder();

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  function unhex(s) {
    if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error('not hex: ' + s);
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
    return out;
  }
  function unbase64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  }
  const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
  const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or an Error.
  async function rootFromInclusion(index, size, leaf, path) {
    let fn = BigInt(index);
    let sn = BigInt(size) - 1n;
    if (fn > sn) throw new Error('index ' + index + ' is not below tree size ' + size);
    let r = leaf;
    for (const p of path) {
      if (sn === 0n) throw new Error('the proof is longer than the tree allows');
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error('the proof is shorter than the tree needs');
    return r;
  }

  // The fields of a protobuf message: [{field, wire, value}].
  function protobufFields(bytes) {
    const out = [];
    let i = 0;
    const varint = () => {
      let v = 0n, shift = 0n;
      for (;;) {
        if (i >= bytes.length) throw new Error('truncated varint');
        const b = bytes[i++];
        v |= BigInt(b & 0x7f) << shift;
        if ((b & 0x80) === 0) return v;
        shift += 7n;
        if (shift > 63n) throw new Error('varint too long');
      }
    };
    while (i < bytes.length) {
      const tag = varint();
      const field = Number(tag >> 3n), wire = Number(tag & 7n);
      let value;
      if (wire === 0) value = varint();
      else if (wire === 2) {
        const len = Number(varint());
        if (i + len > bytes.length) throw new Error('truncated field');
        value = bytes.subarray(i, i + len); i += len;
      } else if (wire === 1) { value = bytes.subarray(i, i + 8); i += 8; }
      else if (wire === 5) { value = bytes.subarray(i, i + 4); i += 4; }
      else throw new Error('unknown wire type ' + wire);
      out.push({ field, wire, value });
    }
    return out;
  }

  // A C2SP signed note: {body (text up to and including its last newline), sigs: [{name, bytes}]}.
  function parseNote(text) {
    const split = text.indexOf('\n\n');
    if (split < 0) throw new Error('no blank line between the checkpoint and its signatures');
    const body = text.slice(0, split + 1);
    const sigs = [];
    for (const line of text.slice(split + 2).split('\n')) {
      if (line === '') continue;
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) throw new Error('not a signature line: ' + JSON.stringify(line));
      sigs.push({ name: m[1], bytes: unbase64(m[2]) });
    }
    return { body, sigs };
  }

  // A vkey: name+hash+base64(0x01 || 32-byte Ed25519 key).
  async function parseVkey(vkey) {
    // The key is standard base64, which may hold '+': split at the first two only.
    const text = vkey.trim();
    const i = text.indexOf('+');
    const j = i < 0 ? -1 : text.indexOf('+', i + 1);
    if (i <= 0 || j < 0) throw new Error('a log key is name+hash+key');
    const [name, hash, b64] = [text.slice(0, i), text.slice(i + 1, j), text.slice(j + 1)];
    const key = unbase64(b64);
    if (key.length !== 33 || key[0] !== 1) throw new Error('not an Ed25519 key (type 0x01, 32 bytes)');
    const computed = (await sha256(concat(enc.encode(name + '\n'), key))).subarray(0, 4);
    if (hex(computed) !== hash.toLowerCase()) {
      throw new Error('its hash ' + hash + ' is not the key\'s (' + hex(computed) + ')');
    }
    return { name, keyHash: computed, publicKey: key.subarray(1) };
  }

  function ui() {
    return {
      verdict: document.getElementById('verify-verdict'),
      steps: document.getElementById('verify-steps'),
      input: document.getElementById('log-key'),
      source: document.getElementById('key-source'),
    };
  }

  function step(list, ok, text) {
    const li = document.createElement('li');
    li.className = ok === true ? 'ok' : ok === false ? 'fail' : 'skip';
    li.textContent = (ok === true ? '✓ ' : ok === false ? '✗ ' : '– ') + text;
    list.appendChild(li);
    return ok !== false;
  }

  async function check(data, vkeyText) {
    const u = ui();
    u.steps.textContent = '';
    u.verdict.dataset.result = 'pending';
    u.verdict.textContent = 'Checking…';
    const s = (ok, text) => step(u.steps, ok, text);
    let failed = null;
    const fail = (why) => { failed = failed || why; s(false, why); };

    const leaf = unbase64(data.leaf_data);
    const proof = data.proof;
    const claimed = unhex(proof.leaf_hash);
    const computedLeaf = await leafHash(leaf);
    if (equal(computedLeaf, claimed)) {
      s(true, 'The leaf hashes to the proof\'s leaf hash ' + proof.leaf_hash + '.');
    } else {
      fail('The leaf hashes to ' + hex(computedLeaf) + ', not to the proof\'s leaf hash ' + proof.leaf_hash + '.');
    }

    const shown = document.getElementById('raw-statement');
    try {
      const envelopeBytes = protobufFields(leaf).find((f) => f.field === 1 && f.wire === 2);
      if (!envelopeBytes) throw new Error('the leaf has no envelope');
      const envelope = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(envelopeBytes.value));
      const payload = new TextDecoder('utf-8', { fatal: true }).decode(unbase64(envelope.payload));
      if (!shown) {
        s(null, 'No statement is shown on this page to compare with the leaf.');
      } else if (payload === shown.textContent) {
        s(true, 'The statement shown under "Raw" is the one in the leaf.');
      } else {
        fail('The statement shown under "Raw" is not the one in the leaf.');
      }
    } catch (e) {
      fail('The leaf cannot be read: ' + e.message);
    }

    let note = null, cpSize = null, cpRoot = null, origin = null;
    try {
      note = parseNote(data.checkpoint);
      const lines = note.body.split('\n');
      origin = lines[0];
      if (!/^[0-9]+$/.test(lines[1] || '')) throw new Error('no tree size on line 2');
      cpSize = BigInt(lines[1]);
      cpRoot = unbase64(lines[2] || '');
      if (cpRoot.length !== 32) throw new Error('the root hash is not 32 bytes');
    } catch (e) {
      fail('The checkpoint cannot be read: ' + e.message);
    }

    if (cpRoot) {
      try {
        if (BigInt(proof.tree_size) !== cpSize) {
          throw new Error('the proof is for a tree of ' + proof.tree_size + ' entries, the checkpoint has ' + cpSize);
        }
        const root = await rootFromInclusion(proof.index, proof.tree_size, claimed, proof.hashes.map(unhex));
        if (equal(root, cpRoot)) {
          s(true, 'The inclusion proof (' + proof.hashes.length + ' hashes) leads from entry #' + proof.index +
            ' to the root of the checkpoint of ' + cpSize + ' entries.');
        } else {
          fail('The inclusion proof leads to root ' + hex(root) + ', not to the checkpoint\'s root ' + hex(cpRoot) + '.');
        }
      } catch (e) {
        fail('The inclusion proof does not verify: ' + e.message + '.');
      }
    }

    let key = null;
    try {
      key = await parseVkey(vkeyText);
    } catch (e) {
      fail('The pinned log key cannot be read: ' + e.message + '.');
    }
    if (note && key) {
      const sig = note.sigs.find((g) => g.name === key.name && g.bytes.length === 68 &&
        equal(g.bytes.subarray(0, 4), key.keyHash));
      if (!sig) {
        fail('The checkpoint has no signature by the pinned key ' + key.name + '+' + hex(key.keyHash) + '.');
      } else {
        try {
          const k = await crypto.subtle.importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify']);
          const ok = await crypto.subtle.verify({ name: 'Ed25519' }, k, sig.bytes.subarray(4), enc.encode(note.body));
          if (ok) {
            s(true, 'The checkpoint\'s signature verifies under the pinned key ' + key.name + '+' + hex(key.keyHash) +
              (origin === key.name ? '' : ' (its origin line reads ' + JSON.stringify(origin) + ')') + '.');
          } else {
            fail('The checkpoint\'s signature does not verify under the pinned key.');
          }
        } catch (e) {
          fail('This browser cannot verify Ed25519 signatures with WebCrypto (' + e.name + '): the signature was not checked.');
        }
      }
      const others = note.sigs.length - (sig ? 1 : 0);
      if (others > 0) s(null, others + ' other signature(s) on the checkpoint (witnesses) were not checked.');
    }

    if (failed) {
      u.verdict.dataset.result = 'failed';
      u.verdict.textContent = 'Check failed: ' + failed;
    } else {
      u.verdict.dataset.result = 'verified';
      u.verdict.textContent = 'Verified: entry #' + proof.index + ' is in the log of ' + proof.tree_size +
        ' entries whose checkpoint the pinned key signed.';
    }
  }

  function pinned() {
    try { return localStorage.getItem(PIN); } catch (e) { return null; }
  }
  function pin(value) {
    try {
      if (value === null) localStorage.removeItem(PIN); else localStorage.setItem(PIN, value);
      return true;
    } catch (e) { return false; }
  }

  function start() {
    const block = document.getElementById('glasslog-check');
    if (!block) return;
    const data = JSON.parse(block.textContent);
    const u = ui();
    const saved = pinned();
    if (saved) {
      u.input.value = saved;
      u.source.textContent = saved === data.verifier_key
        ? 'Pinned in this browser; it is the key this server states.'
        : 'Pinned in this browser. This server states a different key: ' + data.verifier_key;
    }
    const run = () => check(data, u.input.value).catch((e) => {
      u.verdict.dataset.result = 'failed';
      u.verdict.textContent = 'Check failed: ' + e.message;
    });
    document.getElementById('pin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      u.source.textContent = pin(u.input.value.trim())
        ? 'Pinned in this browser.'
        : 'This browser does not let the page remember the key; it is used for this check only.';
      run();
    });
    document.getElementById('unpin').addEventListener('click', () => {
      pin(null);
      u.input.value = data.verifier_key;
      u.source.textContent = 'No key pinned: the key this server states is used.';
      run();
    });
    run();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
