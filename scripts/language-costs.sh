#!/usr/bin/env bash
# The per-language table of BENCHMARKS.md: for each template plugin (built by
# scripts/template-plugins.sh), its size, its cold compile, the first call after loading
# from the compile cache, the median of fresh-instance calls, and the resident memory of a
# process that has loaded it and run those calls — all through `slashd plugin run`, which
# is the server's own runtime (engine, pool, limits) without the socket.
#
#   scripts/language-costs.sh [PLUGIN_DIR [CALLS [SLASHD]]]
#
# Defaults: target/template-plugins, 2000 calls, target/release/slashd. Run it on a quiet machine;
# it prints one markdown table row per language, medians of --runs 3 processes each.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/target/template-plugins}
calls=${2:-2000}
bin=${3:-$root/target/release/slashd}
runs=3
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['timings']['$1'])"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| language | component | cold compile | first call | median call ($calls calls) | RSS after |"
echo "|---|---|---|---|---|---|"
for lang in rust python js; do
    wasm=$dir/hello-$lang.wasm
    size=$(stat -c %s "$wasm")
    compile=() first=() med=() rss=()
    for _ in $(seq $runs); do
        rm -rf "$cache"/*
        # Cold: an empty compile cache, so load_ms is the compile.
        out=$(XDG_CACHE_HOME=$cache "$bin" plugin run "$wasm" "/hello-$lang world" --json)
        compile+=("$(field load_ms <<<"$out")")
        # Warm: from the cache, as a server's later starts are.
        out=$(XDG_CACHE_HOME=$cache "$bin" plugin run "$wasm" "/hello-$lang world" --json --repeat "$calls")
        first+=("$(field first_call_ms <<<"$out")")
        med+=("$(field median_call_ms <<<"$out")")
        rss+=("$(field rss_kib <<<"$out")")
    done
    printf '| %s | %.1f MB | %.0f ms | %.2f ms | %.3f ms | %.0f MiB |\n' "$lang" \
        "$(echo "$size / 1000000" | bc -l)" \
        "$(printf '%s\n' "${compile[@]}" | median)" \
        "$(printf '%s\n' "${first[@]}" | median)" \
        "$(printf '%s\n' "${med[@]}" | median)" \
        "$(echo "$(printf '%s\n' "${rss[@]}" | median) / 1024" | bc -l)"
done
