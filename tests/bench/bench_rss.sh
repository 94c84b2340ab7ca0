#!/usr/bin/env bash
# bench_rss: pymemd's own memory while it watches N Python processes (default 100), against the
# goal of 16 MiB of RSS, and its CPU over a minute against the goal of 1% of a core. Both
# processes are measured: the sampler (the pid started) and the HTTP listener (its child, which
# keeps the history rings). The two run the same binary and libraries, whose pages they share:
# what the listener adds is its anonymous memory (RssAnon), which is what "both" counts.
#
#   tests/bench/bench_rss.sh [PYMEMD] [N] [SECONDS]
#
# With every history ring full: PYMEMD_ARGS="--interval 0.1 --history 360" (3,600 samples a
# ring, as the hour at 1 s) and SECONDS long enough for them (360 s if the sampler keeps the
# pace; it prints how many samples the first ring holds). build/tests/bench/bench_history fills
# them synthetically, at once.
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
# The listener: the sampler's one child (privsep_spawn forks it from the main thread).
listener=$(cat "/proc/$daemon/task/$daemon/children" 2>/dev/null | awk '{print $1}')
ticks=$(getconf CLK_TCK)
cpu() { awk '{ sub(/^.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
c0=$(cpu "$daemon"); l0=$(cpu "$listener")
sleep "$secs"
c1=$(cpu "$daemon"); l1=$(cpu "$listener")
pct() { awk -v a="$1" -v b="$2" -v t="$ticks" -v s="$secs" 'BEGIN {printf "%.2f", (b - a) / t / s * 100}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
s_rss=$(kib "$daemon" VmRSS); s_hwm=$(kib "$daemon" VmHWM)
l_rss=$(kib "$listener" VmRSS); l_hwm=$(kib "$listener" VmHWM); l_anon=$(kib "$listener" RssAnon)
hist=$(curl -s "127.0.0.1:$port/api/v1/processes/${pids[0]}/history" | "$python" -c 'import json,sys
print(len(json.load(sys.stdin)["samples"]))' 2>/dev/null || echo "-")
printf 'targets read:       %s of %s\n' "$got" "$n"
printf 'sampler RSS:        %s MiB (peak %s MiB)\n' "$(mib "$s_rss")" "$(mib "$s_hwm")"
printf 'listener RSS:       %s MiB (peak %s MiB), of it anonymous %s MiB; history entries of the first target: %s\n' \
    "$(mib "$l_rss")" "$(mib "$l_hwm")" "$(mib "$l_anon")" "$hist"
printf 'pymemd RSS, both:   %s MiB (sampler RSS + listener anonymous; goal < 16 MiB)\n' \
    "$(mib $((s_rss + l_anon)))"
printf 'sampler CPU:        %s%% of one core over %ss at the default 1 s interval\n' "$(pct "$c0" "$c1")" "$secs"
printf 'listener CPU:       %s%% of one core\n' "$(pct "$l0" "$l1")"
printf 'pymemd CPU, both:   %s%% of one core (goal < 1%% with 10 targets)\n' "$(pct $((c0 + l0)) $((c1 + l1)))"
