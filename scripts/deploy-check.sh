#!/usr/bin/env bash
# Checks the operator artifacts in deploy/ without a running server:
#
#   1. `promtool check rules` on deploy/prometheus/alerts.yml (syntax, PromQL, templates);
#   2. `promtool test rules` on deploy/prometheus/alerts_test.yml (the rules' unit tests);
#   3. deploy/grafana/slashd.json parses as JSON (`python3 -m json.tool`), and every panel
#      query, with the dashboard variables filled in, is valid PromQL (checked by promtool
#      as a throw-away recording rule);
#   4. every slashd_* series the dashboard and the rules name is registered in
#      host/src/metrics.rs (a static guard; tests/e2e checks the names against a live
#      server's /metrics).
#
#   scripts/deploy-check.sh
#
# promtool comes from Debian's `prometheus` package, installed with apt-get if missing
# (as root, or through sudo).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rules="$root/deploy/prometheus/alerts.yml"
tests="$root/deploy/prometheus/alerts_test.yml"
dashboard="$root/deploy/grafana/slashd.json"
metrics_rs="$root/host/src/metrics.rs"

if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool missing: installing Debian's prometheus package" >&2
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

echo "== promtool check rules"
promtool check rules "$rules"

echo "== promtool test rules"
promtool test rules "$tests"

echo "== dashboard JSON"
python3 -m json.tool "$dashboard" >/dev/null
echo "  SUCCESS: $dashboard parses"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== dashboard PromQL"
python3 - "$dashboard" "$work/dashboard-queries.yml" <<'PY'
import json
import sys

dashboard, out = sys.argv[1], sys.argv[2]
with open(dashboard) as f:
    d = json.load(f)

def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))

# Grafana's variables, as Grafana would fill them in.
fill = {"$__rate_interval": "5m", "$__interval": "1m", "$job": ".*", "$instance": ".*"}
rules = []
for p in panels(d.get("panels", [])):
    for t in p.get("targets", []):
        expr = t.get("expr", "")
        if not expr:
            continue
        for var, value in fill.items():
            expr = expr.replace(var, value)
        if "$" in expr:
            sys.exit(f"{p['title']!r}: unknown variable in {expr!r}")
        rules.append({"record": f"dashboard:query:{len(rules)}", "expr": expr})
if not rules:
    sys.exit("no queries in the dashboard")
# JSON is YAML: promtool reads this as a rule file.
with open(out, "w") as f:
    json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
print(f"  {len(rules)} queries")
PY
promtool check rules "$work/dashboard-queries.yml"

echo "== metric names against host/src/metrics.rs"
python3 - "$metrics_rs" "$rules" "$dashboard" <<'PY'
import json
import re
import sys

metrics_rs, *files = sys.argv[1:]
with open(metrics_rs) as f:
    src = f.read()
# register("name", "help", var.clone()) and `let var = …;`: the kind decides the series
# prometheus-client exposes (counter: name_total; histogram: _bucket, _sum, _count).
exposed = {}
for name, var in re.findall(r'register\(\s*"([a-z_][a-z0-9_]*)",\s*"[^"]*",\s*([a-z_]+)\.clone\(\)', src):
    decl = re.search(r"let\s+" + var + r"\s*=\s*([^;]+);", src)
    if not decl:
        sys.exit(f"{metrics_rs}: no declaration of {var} (metric {name})")
    kind = decl.group(1)
    if "Histogram" in kind or "LatencyFamily" in kind:
        names = [f"{name}_bucket", f"{name}_sum", f"{name}_count"]
    elif "Counter" in kind:
        names = [f"{name}_total"]
    elif "Gauge" in kind:
        names = [name]
    else:
        sys.exit(f"{metrics_rs}: unknown kind of metric {name}: {kind}")
    for n in names:
        exposed["slashd_" + n] = name
if not exposed:
    sys.exit(f"no registrations found in {metrics_rs}")

def rule_exprs(path):
    """The `expr:` values of a rule file: inline, or a `|`/`>` block (the forms alerts.yml
    uses; no YAML library needed)."""
    lines = open(path).read().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2).strip()
        if rest and rest[0] not in "|>":
            yield rest
            continue
        block = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i])
            i += 1
        yield "\n".join(block)


def dashboard_exprs(path):
    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    d = json.load(open(path))
    for p in panels(d.get("panels", [])):
        for t in p.get("targets", []):
            yield t.get("expr", "")
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            yield v.get("definition", "")


rules_path, dashboard_path = files
exprs = list(rule_exprs(rules_path)) + list(dashboard_exprs(dashboard_path))
used = set()
for expr in exprs:
    used |= set(re.findall(r"\bslashd_[a-z0-9_]+", expr))
missing = sorted(used - set(exposed))
if missing:
    sys.exit("not exposed by host/src/metrics.rs: " + ", ".join(missing))
print(f"  SUCCESS: {len(used)} series, all exposed")
PY

echo "deploy check passed"
