#!/usr/bin/env bash
# Fuzz smoke run: build the cargo-fuzz targets in fuzz/ once, then run each for a short
# while from its checked-in corpus (fuzz/corpus/<target>/). Exits non-zero if any target
# finds a crash (a panic, a failed property, a timeout or an out-of-memory), and prints the
# path of the input that did it. See docs/security.md#fuzzing.
#
#   scripts/fuzz-smoke.sh [--seconds N] [--keep] [TARGET…]
#
#   --seconds N   how long each target runs (default 20, or $FUZZ_SECONDS)
#   --keep        merge what the run found into fuzz/corpus/<target>: only inputs that
#                 reach new code (libFuzzer's set-cover merge on edge coverage), so the
#                 checked-in corpus stays small
#   TARGET…       some targets only (default: all of `cargo fuzz list`)
#
# Environment:
#   FUZZ_SECONDS  as --seconds
#   CARGO_LOCK    a lock file: the build (the only cargo command) runs under `flock` on it
#   FUZZ_TARGET_DIR  where the instrumented build goes (default
#                 ~/.cache/slashd-fuzz-target: outside the checkout, so a machine that keeps
#                 its home rebuilds only what changed — the cold build takes ~10 min)
#
# Only a stable toolchain is needed: cargo-fuzz's nightly flags are allowed with
# RUSTC_BOOTSTRAP=1, and the address sanitizer is off (safe Rust; libFuzzer's coverage and
# Rust's own checks, with debug assertions on, do the work). cargo-fuzz is installed from
# crates.io if missing. New inputs found during the run go to a temporary directory, so the
# checked-in corpus is not changed unless --keep is given.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/../fuzz"

seconds="${FUZZ_SECONDS:-20}"
keep=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift ;;
        --seconds=*) seconds="${1#*=}" ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,24p' "$self"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1") ;;
    esac
    shift
done

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/slashd-fuzz-target}"
CARGO_FUZZ_VERSION=0.13.2
locked() {
    if [ -n "${CARGO_LOCK:-}" ]; then flock "$CARGO_LOCK" "$@"; else "$@"; fi
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    locked cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

# One build for all targets: release, debug assertions on, no sanitizer.
build_flags=(--sanitizer none --debug-assertions)
echo "== building ${targets[*]}"
started=$(date +%s)
locked cargo fuzz build "${build_flags[@]}"
echo "== built in $(( $(date +%s) - started )) s"

triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$CARGO_TARGET_DIR/$triple/release"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    artifacts="artifacts/$target"
    mkdir -p "$corpus" "$artifacts" "$scratch/$target"
    echo "== $target: ${seconds} s from $(ls "$corpus" | wc -l) corpus inputs"
    log="$scratch/$target.log"
    # New inputs land in the first (scratch) directory; the corpus is read only.
    if "$bin_dir/$target" "$scratch/$target" "$corpus" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^Done' "$log" | sed 's/^/   /' || true
        if [ "$keep" = 1 ]; then
            before=$(ls "$corpus" | wc -l)
            "$bin_dir/$target" -set_cover_merge=1 -use_counters=0 "$corpus" "$scratch/$target" \
                >"$scratch/$target.merge.log" 2>&1
            echo "   corpus: $before → $(ls "$corpus" | wc -l) inputs"
        fi
        echo "   ok"
    else
        tail -n 40 "$log"
        artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //')
        echo "!! $target FAILED; input: fuzz/${artifact:-$artifacts/ (see the log above)}"
        echo "   reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} $target ${artifact:-<input>}"
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz smoke FAILED: ${failed[*]}"
    exit 1
fi
echo "== fuzz smoke passed: ${targets[*]} (${seconds} s each)"
