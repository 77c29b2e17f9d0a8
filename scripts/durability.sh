#!/usr/bin/env bash
# Durability check: clients post with several messages in flight and record every ack; the
# server is kill -9ed mid-stream and restarted on the same database, several times; then the
# database is read directly and every acked message must be there with the acked seq and
# content, with no duplicate or missing seq in any session. On SQLite and on PostgreSQL (a
# fresh database per run, dropped after a clean run). Exits non-zero on any loss.
#
#   scripts/durability.sh [--short] [--release] [--no-build] [--sqlite-only | --postgres-only]
#
#   --short      ~20-40 s for both backends (what CI runs); default: a longer run (~2 min)
#   --release    use target/release binaries (default: target/debug, as `cargo test` builds)
#   --no-build   do not run `cargo build` first (by default it does, so the binaries are
#                never stale; after `cargo test --workspace` that is only the bench binary)
#
# Environment:
#   SLASHD_BIN, BENCH_BIN  the binaries to use as they are (no build); default
#                          target/{debug,release}/{slashd,bench}
#   SLASHD_TEST_PG_URL     PostgreSQL to create the fresh database in
#                          (default postgres://postgres@127.0.0.1:5432/test, trust auth)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
short=0
build=1
[ -n "${SLASHD_BIN:-}${BENCH_BIN:-}" ] && build=0
backends="sqlite postgres"
while [ $# -gt 0 ]; do
    case "$1" in
        --short) short=1 ;;
        --release) profile=release ;;
        --no-build) build=0 ;;
        --sqlite-only) backends="sqlite" ;;
        --postgres-only) backends="postgres" ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "durability.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

SLASHD_BIN=${SLASHD_BIN:-target/$profile/slashd}
BENCH_BIN=${BENCH_BIN:-target/$profile/bench}
PG_URL=${SLASHD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}

if [ "$build" = 1 ]; then
    flag=""
    [ "$profile" = release ] && flag="--release"
    echo "== cargo build $flag -p slashd -p slashd-bench"
    cargo build $flag -p slashd -p slashd-bench
fi
for bin in "$SLASHD_BIN" "$BENCH_BIN"; do
    [ -x "$bin" ] || { echo "durability.sh: $bin not found" >&2; exit 2; }
done

if [ "$short" = 1 ]; then
    # Per backend: 3 kills, 2 s of posting before each and after the last restart.
    args=(--kills 3 --cycle-secs 2 --dur-clients 8 --dur-window 8 --dur-sessions 4)
else
    args=(--kills 10 --cycle-secs 5 --dur-clients 16 --dur-window 16 --dur-sessions 8)
fi

status=0
for backend in $backends; do
    echo "== durability on $backend"
    db=()
    [ "$backend" = postgres ] && db=(--database-url "$PG_URL")
    if ! "$BENCH_BIN" durability --server-bin "$SLASHD_BIN" "${db[@]}" "${args[@]}"; then
        echo "== durability on $backend: FAILED" >&2
        status=1
    fi
done
exit $status
