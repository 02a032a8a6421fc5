#!/usr/bin/env bash
# The server's resident set size through a day's work (docs/performance.md#memory), release build:
#
#   benches/memory.sh [N] [SERVE FLAGS...]   e.g. benches/memory.sh 300000 --rocksdb-cache-mib 32
#
# N submits at C = 64 (RSS after each 100,000), 20,000 at C = 256, 100,000 proof rpcs, 20,000
# searches, then 256 Tail streams opened and never read while 20,000 more entries arrive
# (benches/tail_streams.py, which needs Python's grpcio-tools). Prints VmRSS and VmHWM (the peak).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/release_bin.sh
N=${1:-300000}; shift || true
[ "$N" -ge 100000 ] || { echo "N must be at least 100000 (the proofs need its checkpoints)" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$BIN" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 --origin bench.glasslog.dev/log \
  --max-tail-streams-per-ip 256 "$@" >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 1 600); do grep -q '^listening on' "$WORK/out" 2>/dev/null && break; sleep 0.05; done
ADDR=$(sed -n 's/^listening on //p' "$WORK/out"); VKEY=$(sed -n 's/^verifier key: //p' "$WORK/out")
bench() { "$BIN" bench --server "http://$ADDR" --log-key "$VKEY" "$@" >/dev/null 2>&1; }
rss() { printf '%-56s' "$1"; awk '/VmRSS|VmHWM/ {printf "  %s %4d MiB", $1, $2 / 1024}' "/proc/$PID/status"; echo; }
rss "start"
for i in $(seq 1 $((N / 100000))); do
  bench -n 100000 -c 64 --checkpoints-out "$WORK/cps"
  rss "after $((i * 100000)) submits, C=64"
done
bench -n 20000 -c 256; rss "after 20000 more, C=256"
bench --mode proofs -n 100000 -c 64 --checkpoints "$WORK/cps"; rss "after 100000 proof rpcs"
bench --mode search -n 20000 -c 16; rss "after 20000 searches"
python3 benches/tail_streams.py "$ADDR" 256 $((N / 100000 * 100000 + 20000)) 40 stall >"$WORK/tails" 2>&1 &
TAILS=$!
sleep 8
bench -n 20000 -c 64; sleep 3; rss "256 Tail streams not read, 20000 entries more"
wait "$TAILS"; sleep 2; rss "the Tail streams closed, 2 s later"
kill -TERM "$PID"; wait "$PID" || true
