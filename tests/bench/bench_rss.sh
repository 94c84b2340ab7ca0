#!/usr/bin/env bash
# bench_rss: pymemd's own memory while it watches N Python processes (default 100), against the
# goal of 16 MiB of RSS, and its CPU over a minute against the goal of 1% of a core.
#
#   tests/bench/bench_rss.sh [PYMEMD] [N] [SECONDS]
#
# Prints figures and asserts nothing. Every process it starts is killed on exit.
set -euo pipefail
pymemd=${1:-build/pymemd}
n=${2:-100}
secs=${3:-60}
python=${PYTHON:-/usr/bin/python3}
tag="pymemd-bench-rss-$$"
port=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq "$n"); do
    "$python" -c 'import sys, time, threading
keep = [dict(a=i) for i in range(2000)]
while True: time.sleep(3600)' "$tag" &
    pids+=($!)
done
"$pymemd" --listen "127.0.0.1:$port" --match "$tag" --log-level warn ${PYMEMD_ARGS:-} &
daemon=$!
pids+=("$daemon")

# Wait until every target is sampled.
for _ in $(seq 100); do
    got=$(curl -s "127.0.0.1:$port/api/v1/processes" | "$python" -c 'import json,sys
print(sum(p["status"] == "ok" for p in json.load(sys.stdin)["processes"]))' 2>/dev/null || echo 0)
    [ "$got" -ge "$n" ] && break
    sleep 0.5
done
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
c0=$(cpu)
sleep "$secs"
c1=$(cpu)
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon/status")
hwm_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$daemon/status")
pct=$(awk -v a="$c0" -v b="$c1" -v t="$ticks" -v s="$secs" 'BEGIN {printf "%.2f", (b - a) / t / s * 100}')
printf 'targets read:       %s of %s\n' "$got" "$n"
printf 'pymemd RSS:         %.1f MiB (peak %.1f MiB; goal < 16 MiB)\n' "$(echo "$rss_kib/1024" | bc -l)" "$(echo "$hwm_kib/1024" | bc -l)"
printf 'pymemd CPU:         %s%% of one core over %ss at the default 1 s interval (goal < 1%% with 10 targets)\n' "$pct" "$secs"
