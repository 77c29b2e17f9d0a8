#!/usr/bin/env bash
# Three slashd nodes, PostgreSQL and Redis, each in its own network namespace on one bridge,
# with load through all three nodes (`bench chaos`) while this script injects, one after
# another:
#
#   1. node 1 ↔ Redis partition        (nftables drop, both ways)
#   2. node 2 ↔ PostgreSQL partition   (nftables drop, both ways)
#   3. 200 ± 50 ms latency to PostgreSQL and Redis (the delaying proxy every node goes
#      through, scripts/chaos/delay-proxy.py) and 1 % random loss on every node
#      (nftables `numgen random mod 100 < 1 drop`); this kernel has no tc netem
#   4. kill -9 of node 3 (restarted when the fault window ends)
#   5. Redis killed and started again (it keeps nothing on disk)
#
# then checks, in `bench chaos`: every acked message is in the database once with its seq;
# every client saw its session gap-free and in order (live, plus what it recovered with
# since_seq or filled over REST after a gap); presence converged once the clients left; no
# node but the killed one was restarted. Exits non-zero on any violation.
#
#   scripts/cluster-chaos.sh [--short] [--self-test] [--release] [--no-build]
#
#   --short      each fault 4 s, 3 s apart (~1 min; what CI runs); default 10 s, 10 s apart
#   --self-test  the checker must catch a broken guarantee (bench chaos --self-test): the
#                run passes only if the check fails
#   --release    target/release binaries (default target/debug)
#   --no-build   do not `cargo build` first
#
# Needs root (network namespaces, nftables; Debian's nftables is installed if missing),
# PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and redis-server. It starts its
# own PostgreSQL and Redis inside the namespaces and removes everything it made on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

profile=debug
short=0
build=1
self_test=0
while [ $# -gt 0 ]; do
    case "$1" in
        --short) short=1 ;;
        --self-test) self_test=1 ;;
        --release) profile=release ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "cluster-chaos.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
slashd=${SLASHD_BIN:-$root/target/$profile/slashd}
bench_bin=${BENCH_BIN:-$root/target/$profile/bench}
# slashd reads every SLASHD_* variable as configuration (SLASHD_BIN would be a key `bin`).
unset SLASHD_BIN BENCH_BIN
if [ "$short" = 1 ]; then fault=4; gap=3; else fault=10; gap=10; fi

say() { printf '\n== %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "cluster-chaos.sh: needs root (network namespaces)" >&2; exit 2; }
if ! command -v nft >/dev/null; then
    say "installing nftables (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$pgbin/postgres" ] || { echo "cluster-chaos.sh: no PostgreSQL server binaries" >&2; exit 2; }
if [ "$build" = 1 ]; then
    flag=""
    [ "$profile" = release ] && flag="--release"
    say "cargo build $flag -p slashd -p slashd-bench"
    cargo build $flag -p slashd -p slashd-bench
fi

tag="c$$"
work=$(mktemp -d /tmp/slashd-chaos.XXXXXX)
chmod 755 "$work"
pids=()
nodes=(1 2 3)
bridge="br-$tag"
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for n in "${nodes[@]}"; do [ -f "$work/n$n.pid" ] && kill -KILL "$(cat "$work/n$n.pid")" 2>/dev/null || true; done
    [ -f "$work/redis.pid" ] && kill -KILL "$(cat "$work/redis.pid")" 2>/dev/null || true
    [ -f "$work/pg/postmaster.pid" ] && kill -KILL "$(head -1 "$work/pg/postmaster.pid")" 2>/dev/null || true
    for ns in pg redis n1 n2 n3; do ip netns del "$tag-$ns" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    if [ $rc -ne 0 ]; then
        for n in "${nodes[@]}"; do
            [ -f "$work/n$n.log" ] && { echo "---- node $n log (last 20 lines) ----" >&2; tail -n 20 "$work/n$n.log" >&2; }
        done
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT INT TERM

say "network: a bridge and five namespaces (10.88.0.0/24)"
ip link add "$bridge" type bridge
ip addr add 10.88.0.1/24 dev "$bridge"
ip link set "$bridge" up
declare -A addr=([pg]=10.88.0.2 [redis]=10.88.0.3 [n1]=10.88.0.11 [n2]=10.88.0.12 [n3]=10.88.0.13)
for ns in pg redis n1 n2 n3; do
    ip netns add "$tag-$ns"
    ip netns exec "$tag-$ns" ip link set lo up
    ip link add "v$tag$ns" type veth peer name eth0 netns "$tag-$ns"
    ip link set "v$tag$ns" master "$bridge" up
    ip netns exec "$tag-$ns" ip addr add "${addr[$ns]}/24" dev eth0
    ip netns exec "$tag-$ns" ip link set eth0 up
    ip netns exec "$tag-$ns" ip route add default via 10.88.0.1
done
in_ns() { local ns=$1; shift; ip netns exec "$tag-$ns" "$@"; }

say "PostgreSQL in its namespace"
install -d -o postgres -g postgres "$work/pg" "$work/pgsock"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 >/dev/null
echo "host all all 10.88.0.0/24 trust" >>"$work/pg/pg_hba.conf"
ip netns exec "$tag-pg" runuser -u postgres -- "$pgbin/postgres" -D "$work/pg" -c listen_addresses=10.88.0.2 \
    -c port=5432 -c unix_socket_directories="$work/pgsock" -c fsync=off -c max_connections=200 \
    >"$work/pg.log" 2>&1 &
pids+=($!); disown
for _ in $(seq 100); do in_ns pg "$pgbin/pg_isready" -q -h 10.88.0.2 -p 5432 && break; sleep 0.2; done
in_ns pg runuser -u postgres -- "$pgbin/createdb" -h 10.88.0.2 -U postgres chaos

start_redis() {
    # (`ip netns exec` runs the server in its own process: $! is the server's pid.)
    ip netns exec "$tag-redis" redis-server --bind 10.88.0.3 --port 6379 --save "" --appendonly no \
        --protected-mode no >"$work/redis.log" 2>&1 &
    echo $! >"$work/redis.pid"; disown
    for _ in $(seq 50); do in_ns redis redis-cli -h 10.88.0.3 ping >/dev/null 2>&1 && return; sleep 0.1; done
    echo "Redis did not start" >&2
    exit 1
}
say "Redis in its namespace"
start_redis

say "the delaying proxies every node reaches PostgreSQL and Redis through"
echo "0 0" >"$work/delay"
python3 scripts/chaos/delay-proxy.py 10.88.0.1:15432 10.88.0.2:5432 "$work/delay" &
pids+=($!); disown
python3 scripts/chaos/delay-proxy.py 10.88.0.1:16379 10.88.0.3:6379 "$work/delay" &
pids+=($!); disown
sleep 0.5

db_url="postgres://postgres@10.88.0.1:15432/chaos"
for n in "${nodes[@]}"; do
    cat >"$work/n$n.toml" <<EOF
[server]
listen = "10.88.0.1$n:8080"
data_dir = "$work/data$n"
shutdown_grace = "2s"
[database]
url = "$db_url"
[auth]
jwt_secret = "chaos-secret-0123456789abcdef0123456789abcdef"
login_attempts_per_ip = 10000
[realtime]
rate_per_sec = 1000.0
rate_burst = 1000.0
[commands]
rate_per_sec = 1000.0
rate_burst = 1000.0
[cluster]
redis_url = "redis://10.88.0.1:16379"
namespace = "chaos"
EOF
done

start_node() {
    local n=$1
    ip netns exec "$tag-n$n" "$slashd" --config "$work/n$n.toml" serve >>"$work/n$n.log" 2>&1 &
    echo $! >"$work/n$n.pid"; disown
    for _ in $(seq 300); do
        curl -fsS "http://10.88.0.1$n:8080/readyz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "node $n did not become ready" >&2
    exit 1
}
say "three nodes"
for n in "${nodes[@]}"; do start_node "$n"; done
for i in 0 1 2 3 4 5; do
    "$slashd" --config "$work/n1.toml" user add "chaos-$i" --role viewer --password-stdin \
        <<<"chaos-password-123" >/dev/null
done

nft_in() { in_ns "$1" nft "${@:2}"; }
for n in "${nodes[@]}"; do
    nft_in "n$n" add table inet chaos
    nft_in "n$n" add chain inet chaos out '{ type filter hook output priority 0; }'
    nft_in "n$n" add chain inet chaos in '{ type filter hook input priority 0; }'
done
partition() { # node port
    nft_in "n$1" add rule inet chaos out ip daddr 10.88.0.1 tcp dport "$2" drop
    nft_in "n$1" add rule inet chaos in ip saddr 10.88.0.1 tcp sport "$2" drop
}
heal() { nft_in "n$1" flush chain inet chaos out; nft_in "n$1" flush chain inet chaos in; }

warmup=3
total=$((warmup + 5 * (fault + gap) + gap))
say "load through all three nodes for ${total} s, faults every $((fault + gap)) s"
bench_args=(chaos --nodes http://10.88.0.11:8080,http://10.88.0.12:8080,http://10.88.0.13:8080
    --database-url "$db_url" --secs "$total")
[ "$self_test" = 1 ] && bench_args+=(--self-test)
"$bench_bin" "${bench_args[@]}" >"$work/bench.out" 2>&1 &
bench=$!

restarts_before=$(for n in 1 2; do cat "$work/n$n.pid"; done)
sleep "$warmup"
say "fault 1: node 1 ↔ Redis partitioned for ${fault} s"
partition 1 16379; sleep "$fault"; heal 1; sleep "$gap"
say "fault 2: node 2 ↔ PostgreSQL partitioned for ${fault} s"
partition 2 15432; sleep "$fault"; heal 2; sleep "$gap"
say "fault 3: 200 ± 50 ms to PostgreSQL and Redis, 1 % loss on every node, ${fault} s"
echo "200 50" >"$work/delay"
for n in "${nodes[@]}"; do nft_in "n$n" add rule inet chaos out numgen random mod 100 '<' 1 drop; done
sleep "$fault"
echo "0 0" >"$work/delay"
for n in "${nodes[@]}"; do heal "$n"; done
sleep "$gap"
say "fault 4: kill -9 node 3 (restarted after ${fault} s)"
kill -KILL "$(cat "$work/n3.pid")"
sleep "$fault"; start_node 3; sleep "$gap"
say "fault 5: Redis killed and started again"
kill -KILL "$(cat "$work/redis.pid")"
sleep 1; start_redis

rc=0
wait "$bench" || rc=$?
cat "$work/bench.out"
restarts_after=$(for n in 1 2; do cat "$work/n$n.pid"; done)
if [ "$restarts_before" != "$restarts_after" ]; then
    echo "FAIL: nodes 1 and 2 were restarted" >&2
    exit 1
fi
for n in 1 2; do
    kill -0 "$(cat "$work/n$n.pid")" 2>/dev/null || { echo "FAIL: node $n died" >&2; exit 1; }
done
if [ "$self_test" = 1 ]; then
    if [ "$rc" = 0 ]; then
        echo "SELF-TEST FAILED: the check passed a run with a broken guarantee" >&2
        exit 1
    fi
    grep -q "GAP:" "$work/bench.out" && grep -q "LOST:" "$work/bench.out" || {
        echo "SELF-TEST FAILED: expected a GAP and a LOST" >&2
        exit 1
    }
    echo "self-test: the check caught the broken guarantees (GAP, LOST)"
    exit 0
fi
exit "$rc"
