# Sourced by the bench scripts: sets BIN to the glasslog binary to measure. GLASSLOG_BIN names a
# binary built already; otherwise the release build, with --all-targets: the same feature set as
# `cargo bench`, so RocksDB is built once for both.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glasslog/target}"
if [ -n "${GLASSLOG_BIN:-}" ]; then
  BIN="$GLASSLOG_BIN"
else
  cargo build --release --locked --all-targets >&2
  BIN="$CARGO_TARGET_DIR/release/glasslog"
fi
