#!/usr/bin/env bash
# Write a small sample logs directory, dated relative to now, for the `logs` plugin
# (/reload, /stat). Usage: scripts/sample-logs.sh [DIR]   (default: examples/logs)
set -euo pipefail
dir=${1:-"$(dirname "$0")/../examples/logs"}
mkdir -p "$dir"
ts() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

{
    for d in 0 1 2 3 4 5 6; do
        echo "$(ts "-$d days -1 hour") INFO request served in 12ms"
        echo "$(ts "-$d days -2 hours") INFO request served in 15ms"
        echo "$(ts "-$d days -3 hours") WARN slow request: 1.2s"
    done
    echo "$(ts "-2 days -5 hours") ERROR upstream timed out"
    echo "$(ts "-20 days") INFO an old line, outside any recent window"
    echo "this line is not a log line"
} > "$dir/app.log"

{
    for d in 0 1 3 5; do
        echo "{\"ts\":\"$(ts "-$d days -30 minutes")\",\"level\":\"info\",\"msg\":\"user logged in\",\"source\":\"auth\"}"
        echo "{\"ts\":\"$(ts "-$d days -40 minutes")\",\"level\":\"info\",\"msg\":\"query ok\",\"source\":\"db\"}"
        echo "{\"ts\":\"$(ts "-$d days -50 minutes")\",\"level\":\"error\",\"msg\":\"deadlock detected\",\"source\":\"db\"}"
    done
    echo "{\"ts\":\"$(ts "-1 day")\",\"level\":\"debug\",\"msg\":\"cache warm\",\"source\":\"cache\"}"
    echo '{"broken json'
} > "$dir/services.jsonl"
echo "wrote sample logs to $dir"
