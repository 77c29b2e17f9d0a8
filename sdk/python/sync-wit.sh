#!/usr/bin/env bash
# Copy the plugin API's WIT (the one source of truth, plugin-api/wit/since_v0.2.0) into the
# Python package, where `slashd-plugin build` finds it after `pip install`.
#
#   sdk/python/sync-wit.sh          copy it
#   sdk/python/sync-wit.sh --check  exit 1 when the copy differs (tests/test_wit.py checks too)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../plugin-api/wit/since_v0.2.0
dst=$here/slashd_plugin/wit
if [ "${1:-}" = "--check" ]; then
    if diff -r "$src" "$dst" >/dev/null; then
        echo "sync-wit: $dst matches $src"
    else
        diff -r "$src" "$dst" >&2 || true
        echo "sync-wit: $dst differs from $src; run sdk/python/sync-wit.sh" >&2
        exit 1
    fi
    exit 0
fi
rm -rf "$dst"
mkdir -p "$dst"
cp -R "$src"/. "$dst"/
echo "sync-wit: copied $src to $dst"
