#!/usr/bin/env bash
# Installs what the README's WebSocket clients (examples/clients) need: npm's `ws` into
# examples/clients/node_modules (from its lockfile) and Python's `websockets` into a venv in
# the toolchain cache; prints that venv's python. The e2e test that runs the clients against
# a real server (tests/e2e/clients.rs) calls it once per test process.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SLASHD_TOOLCHAIN_CACHE:-$HOME/.cache/slashd-toolchains}
venv="$cache/clients-websockets-15.0.1"
(cd "$root/examples/clients" && npm ci --no-audit --no-fund --silent) >&2
if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check websockets==15.0.1 >&2
fi
echo "$venv/bin/python"
