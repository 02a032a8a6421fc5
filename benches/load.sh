#!/usr/bin/env bash
# Reproduces the README's load figures with the release binary: a fresh server in a temporary
# data directory, `glasslog bench` against it, client and server on this machine.
#
#   benches/load.sh submit [N] [REPEATS]   throughput/latency at C = 1, 16, 64, 256 (median of REPEATS)
#   benches/load.sh scale                  throughput at 10,000 vs 1,000,000 entries, proof rpcs/s at
#                                          1,000,000 entries, search latency, and restart time of that log
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glasslog/target}"
# --all-targets: the same feature set as `cargo bench`, so RocksDB is built once for both.
cargo build --release --locked --all-targets >&2
BIN="$CARGO_TARGET_DIR/release/glasslog"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_server() {   # start_server DATA_DIR: starts the server, sets PID, URL and VKEY
  "$BIN" serve --data-dir "$1" --listen 127.0.0.1:0 --origin bench.glasslog.dev/log \
    >"$WORK/server.out" 2>"$WORK/server.err" &
  PID=$!
  for _ in $(seq 1 600); do
    if grep -q '^listening on' "$WORK/server.out" 2>/dev/null; then break; fi
    sleep 0.05
  done
  URL="http://$(sed -n 's/^listening on //p' "$WORK/server.out")"
  VKEY=$(sed -n 's/^verifier key: //p' "$WORK/server.out")
}

stop_server() { kill -TERM "$PID"; wait "$PID" || true; }

bench() {   # bench ARGS...: one bench run as JSON
  "$BIN" bench --server "$URL" --log-key "$VKEY" --server-pid "$PID" --json "$@"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

case "${1:-submit}" in
  submit)
    N=${2:-20000}; R=${3:-3}
    printf '%-6s %12s %10s %10s %10s %14s %14s %12s\n' C entries/s p50_ms p99_ms max_ms server_us/entry client_us/entry disk_B/entry
    for C in 1 16 64 256; do
      n=$N; [ "$C" = 1 ] && n=$((N / 10))
      : >"$WORK/runs"
      for r in $(seq 1 "$R"); do
        start_server "$WORK/data-$C-$r"
        bench -n "$n" -c "$C" --data-dir "$WORK/data-$C-$r" >>"$WORK/runs"
        stop_server
      done
      col() { python3 -c "import json,sys; [print(json.loads(l)['$1']) for l in open('$WORK/runs')]" | median; }
      printf '%-6s %12.0f %10.2f %10.2f %10.2f %14.1f %14.1f %12.0f\n' "$C" "$(col throughput_per_s)" "$(col p50_ms)" \
        "$(col p99_ms)" "$(col max_ms)" "$(col server_cpu_us_per_entry)" "$(col client_cpu_us_per_entry)" "$(col disk_bytes_per_entry)"
    done
    ;;
  scale)
    DATA="$WORK/data-scale"
    start_server "$DATA"
    echo "log of 10,000 entries: fill, then measure 20,000 more at C=64" >&2
    bench -n 10000 -c 64 >/dev/null
    bench -n 20000 -c 64 --checkpoints-out "$WORK/cps"
    echo "filling to 1,000,000 entries" >&2
    bench -n 950000 -c 64 --checkpoints-out "$WORK/cps" >/dev/null
    echo "log of 1,000,000 entries: measure 20,000 more at C=64" >&2
    bench -n 20000 -c 64 --checkpoints-out "$WORK/cps" --data-dir "$DATA"
    bench --mode proofs -n 200000 -c 64 --checkpoints "$WORK/cps"
    bench --mode search -n 20000 -c 1
    bench --mode search -n 50000 -c 16
    stop_server
    for i in 1 2 3; do
      t0=$(date +%s.%N); start_server "$DATA"; t1=$(date +%s.%N)
      python3 -c "print({\"restart_seconds\": round($t1 - $t0, 3), \"run\": $i})"
      stop_server
    done
    ;;
  *) echo "usage: benches/load.sh submit [N] [REPEATS] | scale" >&2; exit 2 ;;
esac
