#!/usr/bin/env bash
# Build the Python and JavaScript test plugins (plugins/guests) with the stock toolchains,
# componentize-py and componentize-js, against the 0.2.0 WIT — nothing hand-stamped.
#
#   scripts/guest-plugins.sh [OUT_DIR]     (default: target/guest-plugins)
#
# The toolchains come from PyPI and npm, pinned, into a cache outside the checkout
# ($SLASHD_TOOLCHAIN_CACHE, default ~/.cache/slashd-toolchains): the first run downloads
# them (~90 MB), later runs reuse them. A component is rebuilt only when its source, the
# WIT or the toolchain version changed. Fails loudly: the tests that need these plugins
# fail (never skip) when this script cannot build them.
set -euo pipefail

COMPONENTIZE_PY=0.25.1
COMPONENTIZE_JS=0.23.0

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/guest-plugins}
cache=${SLASHD_TOOLCHAIN_CACHE:-$HOME/.cache/slashd-toolchains}
wit=$root/plugin-api/wit/since_v0.2.0
mkdir -p "$out" "$cache"

# One build at a time (the e2e tests may ask from several processes).
exec 9>"$cache/.lock"
flock 9

py=$cache/py-$COMPONENTIZE_PY
if [ ! -x "$py/bin/componentize-py" ]; then
    echo "guest-plugins: installing componentize-py $COMPONENTIZE_PY from PyPI into $py" >&2
    rm -rf "$py"
    python3 -m venv "$py"
    "$py/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY"
fi
js=$cache/js-$COMPONENTIZE_JS
if [ ! -x "$js/node_modules/.bin/componentize-js" ]; then
    echo "guest-plugins: installing @bytecodealliance/componentize-js $COMPONENTIZE_JS from npm into $js" >&2
    rm -rf "$js"
    mkdir -p "$js"
    (cd "$js" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
        "@bytecodealliance/componentize-js@$COMPONENTIZE_JS" >/dev/null)
fi

# The stamp of what a component was built from.
fingerprint() {
    cat "$@" "$wit"/plugin.wit "$wit"/deps/*/*.wit | sha256sum | cut -d' ' -f1
}

# Built components are kept in the cache by fingerprint, so a fresh checkout (CI) copies
# instead of rebuilding (a minute of CPU for the two).
build() {
    local name=$1 stamp=$2
    shift 2
    local target=$out/$name.wasm
    local kept=$cache/built/$name-$stamp.wasm
    if [ ! -f "$kept" ]; then
        echo "guest-plugins: building $name" >&2
        mkdir -p "$cache/built"
        "$@" -o "$kept.tmp"
        mv "$kept.tmp" "$kept"
    fi
    cp "$kept" "$target.tmp"
    mv "$target.tmp" "$target"
}

guests=$root/plugins/guests
build pyprobe "$(fingerprint "$guests/python/app.py")-py$COMPONENTIZE_PY" \
    "$py/bin/componentize-py" -d "$wit" -w plugin componentize -p "$guests/python" app
build jsprobe "$(fingerprint "$guests/js/app.js")-js$COMPONENTIZE_JS" \
    "$js/node_modules/.bin/componentize-js" "$guests/js/app.js" -w "$wit" -n plugin
ls -l "$out"/*.wasm >&2
