#!/usr/bin/env bash
# Build one plugin per language the way a new author would: `slashd plugin new` writes the
# template, and the steps of its README build it with that language's own toolchain —
# cargo for Rust, a venv with pip for Python, npm for JavaScript. Each step's time is
# printed; the components land in OUT_DIR as hello-LANG.wasm, with boom-LANG.wasm beside
# each: the same project with tests/fixtures/authoring/boom.* (fails on purpose).
#
#   scripts/template-plugins.sh [OUT_DIR [SLASHD]]
#
# OUT_DIR defaults to target/template-plugins; SLASHD, the binary, to target/release/slashd,
# else target/debug/slashd. (Not an environment variable: slashd reads every SLASHD_* one
# as a config key.)
# The toolchains come from the registries (crates.io, PyPI, npm) through their own caches
# (~/.cargo, ~/.cache/pip, ~/.npm): the first run downloads, later runs reuse.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/template-plugins}
bin=${2:-}
if [ -z "$bin" ]; then
    bin=$root/target/release/slashd
    [ -x "$bin" ] || bin=$root/target/debug/slashd
fi
bin=$(realpath "$bin")  # the steps run in other directories
mkdir -p "$out"
out=$(cd "$out" && pwd)
fixtures=$root/tests/fixtures/authoring
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One build at a time (the e2e tests may ask from several processes).
exec 9>"$out/.lock"
flock 9

step() {
    local what=$1
    shift
    local started=$SECONDS
    "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; echo "template-plugins: $what failed" >&2; exit 1; }
    echo "template-plugins: $what: $((SECONDS - started)) s" >&2
}

# Rust: the Rust plugins' target directory is shared, so the SDK's crates are built once.
(
    cd "$work"
    step "rust: plugin new" "$bin" plugin new hello-rust --lang rust --sdk "$root"
    cd hello-rust
    step "rust: cargo build" env CARGO_TARGET_DIR="${TEMPLATE_CARGO_TARGET_DIR:-$root/target/plugins}" \
        cargo build --release --target wasm32-wasip2
    cp "${TEMPLATE_CARGO_TARGET_DIR:-$root/target/plugins}/wasm32-wasip2/release/hello_rust.wasm" "$out/hello-rust.wasm"
    # The same project with the fixture that fails on purpose.
    sed 's/"boom"/"boom-rust"/g' "$fixtures/boom.rs" >src/lib.rs
    sed -i 's/^name = "hello-rust"/name = "boom-rust"/' Cargo.toml
    step "rust: cargo build (boom)" env CARGO_TARGET_DIR="${TEMPLATE_CARGO_TARGET_DIR:-$root/target/plugins}" \
        cargo build --release --target wasm32-wasip2
    cp "${TEMPLATE_CARGO_TARGET_DIR:-$root/target/plugins}/wasm32-wasip2/release/boom_rust.wasm" "$out/boom-rust.wasm"
)

(
    cd "$work"
    step "python: plugin new" "$bin" plugin new hello-python --lang python --sdk "$root"
    cd hello-python
    step "python: venv" python3 -m venv .venv
    step "python: pip install" .venv/bin/pip install --disable-pip-version-check -r requirements.txt
    step "python: build" .venv/bin/slashd-plugin build app.py -o hello-python.wasm
    cp hello-python.wasm "$out/"
    sed 's/"boom"/"boom-python"/g' "$fixtures/boom.py" >boom.py
    step "python: build (boom)" .venv/bin/slashd-plugin build boom.py -o boom-python.wasm
    cp boom-python.wasm "$out/"
)

(
    cd "$work"
    step "js: plugin new" "$bin" plugin new hello-js --lang js --sdk "$root"
    cd hello-js
    step "js: npm install" npm install --no-audit --no-fund
    step "js: build" npm run build
    cp hello-js.wasm "$out/"
    sed 's/"boom"/"boom-js"/g' "$fixtures/boom.js" >boom.js
    step "js: build (boom)" npx slashd-plugin build boom.js -o boom-js.wasm
    cp boom-js.wasm "$out/"
)
ls -l "$out"/*.wasm >&2
