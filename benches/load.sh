#!/usr/bin/env bash
# Reproduces the README's load figures with the release binary: a fresh server in a temporary
# data directory, `glasslog bench` against it, client and server on this machine.
#
#   benches/load.sh submit [N] [REPEATS]   throughput/latency at C = 1, 16, 64, 256 (median of REPEATS)
#   benches/load.sh scale                  throughput at 10,000 vs 1,000,000 entries (at once, and after
#                                          60 s idle), proof rpcs/s at 1,000,000 entries, search latency,
#                                          monitor and audit catch-up, and restart time of that log
#   benches/load.sh transport [N] [REPEATS] Submit at C=64 over plaintext, over TLS, and with every rate
#                                          limit on but not binding, runs interleaved; medians and ratios
#   benches/load.sh compare OLD_BIN [N] [REPEATS] [BENCH ARGS...]
#                                          Submit against a server of OLD_BIN and of this build, runs
#                                          interleaved (the client is always this build's bench), e.g.
#                                          `compare /tmp/glasslog-old 20000 5 -c 64 --key-type p256`;
#                                          with FILL=N in the environment, each log first takes N
#                                          entries at C = 64 that are not measured, then 5 s for
#                                          RocksDB to flush and compact (FILL=100000: a
#                                          log past its first WAL file, as a server that has run)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/release_bin.sh
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_server() {   # start_server DATA_DIR [SERVE FLAGS...]: starts the server, sets PID, URL and VKEY
  local data="$1"; shift
  "$BIN" serve --data-dir "$data" --listen 127.0.0.1:0 --origin bench.glasslog.dev/log "$@" \
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
  "${CLIENT_BIN:-$BIN}" bench --server "$URL" --log-key "$VKEY" --server-pid "$PID" --json "$@"
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
    # The fill leaves RocksDB compacting 950,000 entries; measure again once that has settled.
    echo "idle 60 s, then 20,000 more at C=64" >&2
    sleep 60
    bench -n 20000 -c 64 --data-dir "$DATA" | python3 -c "import json,sys; d=json.load(sys.stdin); d['after_idle_s']=60; print(json.dumps(d))"
    # Catch-up of a monitor and an audit from 0, Merkle + structure checks, timed to exit.
    for check in monitor audit; do
      args=(--once --state "$WORK/monitor.state"); [ $check = audit ] && args=()
      size=$(bench --mode search -n 1 -c 1 | python3 -c "import json,sys; print(json.load(sys.stdin)['log_size'])")
      t0=$(date +%s.%N)
      status=0
      "$BIN" $check --server "$URL" --log-key "$VKEY" --no-signature-checks "${args[@]}" >/dev/null 2>"$WORK/$check.err" || status=$?
      t1=$(date +%s.%N)
      python3 -c "print({\"$check\": \"--no-signature-checks\", \"entries\": $size, \"seconds\": round($t1 - $t0, 2), \"entries_per_s\": round($size / ($t1 - $t0)), \"exit\": $status})"
    done
    stop_server
    for i in 1 2 3; do
      t0=$(date +%s.%N); start_server "$DATA"; t1=$(date +%s.%N)
      python3 -c "print({\"restart_seconds\": round($t1 - $t0, 3), \"run\": $i})"
      stop_server
    done
    ;;
  transport)
    N=${2:-20000}; R=${3:-5}
    # A CA and a certificate for 127.0.0.1, which the client trusts through SSL_CERT_FILE.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
      -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
      -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$WORK/san"
    openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
      -days 1 -extfile "$WORK/san" -out "$WORK/tls.pem" 2>/dev/null
    : >"$WORK/runs"
    for r in $(seq 1 "$R"); do
      for variant in plaintext tls limits; do
        case $variant in
          plaintext) start_server "$WORK/data-$variant-$r" ;;
          tls) start_server "$WORK/data-$variant-$r" --tls-cert "$WORK/tls.pem" --tls-key "$WORK/tls.key"
               URL="${URL/http:/https:}" ;;
          limits) start_server "$WORK/data-$variant-$r" --rate-submit-per-ip 1000000 \
                    --rate-submit-per-key 1000000 --rate-reads-per-ip 1000000 ;;
        esac
        SSL_CERT_FILE="$WORK/ca.pem" bench -n "$N" -c 64 | python3 -c "import json,sys; d=json.load(sys.stdin); d['variant']='$variant'; print(json.dumps(d))" >>"$WORK/runs"
        stop_server
      done
    done
    python3 - "$WORK/runs" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(v, k): return statistics.median(r[k] for r in runs if r["variant"] == v)
base = med("plaintext", "throughput_per_s")
print(f"{'variant':<10} {'entries/s':>10} {'ratio':>6} {'p50_ms':>7} {'p99_ms':>7}  (medians of {len(runs)//3} interleaved runs, C=64)")
for v in ("plaintext", "tls", "limits"):
    t = med(v, "throughput_per_s")
    print(f"{v:<10} {t:>10.0f} {t/base:>6.3f} {med(v, 'p50_ms'):>7.2f} {med(v, 'p99_ms'):>7.2f}")
PY
    ;;
  compare)
    OLD="$2"; N=${3:-20000}; R=${4:-5}; shift $(( $# < 4 ? $# : 4 ))
    CLIENT_BIN="$BIN"; NEW="$BIN"
    : >"$WORK/runs"
    for r in $(seq 1 "$R"); do
      for variant in old new; do
        if [ $variant = old ]; then BIN="$OLD"; else BIN="$NEW"; fi
        start_server "$WORK/data-$variant-$r"
        if [ -n "${FILL:-}" ]; then bench -n "$FILL" -c 64 >/dev/null; sleep 5; fi
        bench -n "$N" "$@" | python3 -c "import json,sys; d=json.load(sys.stdin); d['variant']='$variant'; print(json.dumps(d))" >>"$WORK/runs"
        stop_server
      done
    done
    BIN="$NEW"
    python3 - "$WORK/runs" "$*" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(v, k): return statistics.median(r[k] for r in runs if r["variant"] == v)
base = med("old", "throughput_per_s")
print(f"{'server':<6} {'entries/s':>10} {'ratio':>6} {'p50_ms':>7} {'p99_ms':>7} {'server_us/entry':>16}  (medians of {len(runs)//2} interleaved runs: {sys.argv[2]})")
for v in ("old", "new"):
    t = med(v, "throughput_per_s")
    print(f"{v:<6} {t:>10.0f} {t/base:>6.3f} {med(v, 'p50_ms'):>7.2f} {med(v, 'p99_ms'):>7.2f} {med(v, 'server_cpu_us_per_entry'):>16.1f}")
PY
    ;;
  *) echo "usage: benches/load.sh submit [N] [REPEATS] | scale | transport [N] [REPEATS] | compare OLD_BIN [N] [REPEATS] [BENCH ARGS...]" >&2; exit 2 ;;
esac
