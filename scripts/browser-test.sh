#!/usr/bin/env bash
# The browser end-to-end test: the chat page in Debian's chromium, driven by playwright-core
# (tests/browser), against a real slashd on a free port with a fresh SQLite database, a
# fake OpenAI-compatible model endpoint (for streamed assistant replies) and a fake deploy
# API (for the deploy plugin's progress, cancel and buttons), with the test plugins `probe`
# and `deploy` enabled.
#
#   scripts/browser-test.sh
#
# Environment:
#   SLASHD_BIN         the slashd binary (default target/debug/slashd; built if missing)
#   SLASHD_PLUGIN_DIR  where probe.wasm and deploy.wasm are (default
#                      target/plugins/wasm32-wasip2/release, which building slashd fills)
#   CHROMIUM           the browser (default /usr/bin/chromium; apt-get installs it if missing)
#   BROWSER_OUT        screenshots (default target/browser)
#   SKIP_DIST_CHECK=1  don't check that web/dist is what `npm run build` makes of web/
#
# Exits non-zero when anything fails; the server is always stopped.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="${SLASHD_BIN:-$root/target/debug/slashd}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
out="${BROWSER_OUT:-$root/target/browser}"
plugin_dir="${SLASHD_PLUGIN_DIR:-$root/target/plugins/wasm32-wasip2/release}"
bin_given="${SLASHD_BIN:+1}"
# slashd reads every SLASHD_* variable as configuration (SLASHD_BIN would be a key `bin`).
unset SLASHD_BIN SLASHD_PLUGIN_DIR

say() { printf '\n== %s\n' "$*"; }

if [[ ! -x "$chromium" ]]; then
    say "installing chromium (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
"$chromium" --version

say "npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund)

if [[ "${SKIP_DIST_CHECK:-}" != 1 ]]; then
    say "checking that web/dist is built from web/"
    (cd web && npm ci --no-audit --no-fund && npm run check && npm run build)
    if ! git diff --exit-code --stat -- web/dist || [[ -n "$(git ls-files --others --exclude-standard web/dist)" ]]; then
        echo "web/dist is out of date with web/: run 'cd web && npm run build' and commit web/dist" >&2
        exit 1
    fi
fi

if [[ ! -x "$bin" ]]; then
    if [[ -n "$bin_given" ]]; then
        echo "SLASHD_BIN=$bin is not an executable" >&2
        exit 1
    fi
    say "building slashd"
    cargo build -p slashd
fi
for plugin in probe deploy; do
    if [[ ! -f "$plugin_dir/$plugin.wasm" ]]; then
        echo "$plugin_dir/$plugin.wasm is missing (set SLASHD_PLUGIN_DIR, or build slashd)" >&2
        exit 1
    fi
done
plugin_dir="$(cd "$plugin_dir" && pwd)"

work="$(mktemp -d)"
server_pid=""
llm_pid=""
deploy_pid=""
cleanup() {
    local rc=$?
    for pid in $server_pid $llm_pid $deploy_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $server_pid $llm_pid $deploy_pid; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ $rc -ne 0 && -f "$work/slashd.log" ]]; then
        echo "---- slashd log (last 60 lines) ----" >&2
        tail -n 60 "$work/slashd.log" >&2
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT INT TERM

say "starting the fake model endpoint"
node tests/browser/fake-llm.mjs "$work/llm.port" &
llm_pid=$!
for _ in $(seq 100); do [[ -s "$work/llm.port" ]] && break; sleep 0.1; done
llm_port="$(cat "$work/llm.port")"

say "starting the fake deploy API"
deploy_token="browser-test-deploy-token-$RANDOM$RANDOM"
node tests/browser/fake-deploy.mjs "$work/deploy.port" "$deploy_token" &
deploy_pid=$!
for _ in $(seq 100); do [[ -s "$work/deploy.port" ]] && break; sleep 0.1; done
deploy_port="$(cat "$work/deploy.port")"

cat >"$work/slashd.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "$work/data"
shutdown_grace = "2s"
[auth]
jwt_secret = "browser-test-secret-0123456789abcdef0123456789"
[assistant]
base_url = "http://127.0.0.1:$llm_port/v1"
model = "fake"
[plugins.probe]
path = "$plugin_dir/probe.wasm"
grants = ["kv", "config"]
[plugins.deploy]
path = "$plugin_dir/deploy.wasm"
grants = ["http", "secrets", "config", "progress"]
timeout_ms = 120000
http = { allow = ["http://127.0.0.1:$deploy_port/"] }
secrets = { token = { env = "DEPLOY_TOKEN" } }
settings = { api = "http://127.0.0.1:$deploy_port", poll_ms = 200, services = ["api", "web", "worker", "slow", "broken"] }
EOF

admin_password="admin-password-123"
user_password="user-password-123"
say "starting slashd ($bin)"
SLASHD_ADMIN_PASSWORD="$admin_password" SLASHD_LOG=info DEPLOY_TOKEN="$deploy_token" \
    "$bin" --log-format json --config "$work/slashd.toml" serve 2>"$work/slashd.log" &
server_pid=$!
addr=""
for _ in $(seq 600); do
    addr="$(sed -n 's/.*"message":"listening".*"addr":"\([^"]*\)".*/\1/p; s/.*"addr":"\([^"]*\)".*"message":"listening".*/\1/p' "$work/slashd.log" | head -n1)"
    [[ -n "$addr" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "slashd exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$addr" ]] || { echo "slashd did not start listening" >&2; exit 1; }
# Plugins not yet in the compile cache compile after the server listens; /readyz says
# when every one is loaded.
ready=""
for _ in $(seq 1800); do
    curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && { ready=1; break; }
    kill -0 "$server_pid" 2>/dev/null || { echo "slashd exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$ready" ]] || { echo "slashd was not ready within 180 s: $(curl -sS "http://$addr/readyz")" >&2; exit 1; }
echo "slashd on http://$addr"

# The first admin was created at start (SLASHD_ADMIN_PASSWORD); the others with the CLI.
"$bin" --config "$work/slashd.toml" user add bob --role analyst --password-stdin <<<"$user_password"
"$bin" --config "$work/slashd.toml" user add vera --role viewer --password-stdin <<<"$user_password"

say "browser test"
mkdir -p "$out"
(
    cd tests/browser
    SLASHD_URL="http://$addr" ADMIN_PASSWORD="$admin_password" USER_PASSWORD="$user_password" \
        DEPLOY_API="http://127.0.0.1:$deploy_port" BROWSER_OUT="$out" CHROMIUM="$chromium" npm test
)
echo "screenshots: $out"
