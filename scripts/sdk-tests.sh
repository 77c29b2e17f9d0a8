#!/usr/bin/env bash
# The Python and JavaScript SDKs' own tests, each in its own runner: `python -m unittest`
# (with the componentize-py that scripts/guest-plugins.sh installs, for the real generated
# bindings) and `node --test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SLASHD_TOOLCHAIN_CACHE:-$HOME/.cache/slashd-toolchains}
"$root/scripts/guest-plugins.sh" >/dev/null
echo "sdk-tests: python" >&2
"$cache/py-0.25.1/bin/python" -m unittest discover "$root/sdk/python/tests"
echo "sdk-tests: js" >&2
(cd "$root/sdk/js" && npm ci --no-audit --no-fund --silent && node --test test/)
