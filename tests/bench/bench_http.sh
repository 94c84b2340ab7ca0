#!/bin/bash
# HTTP throughput and idle cost of the pymemd daemon. Prints figures, asserts nothing.
#
#   tests/bench/bench_http.sh [PYMEMD] [--duration 10s] [--cpu-seconds 60] [--targets 10]
#                             [--breakdown]
#
# 1. Starts 10 CPython targets (pyenv 3.12 if present, else /usr/bin/python3, each running
#    tests/integration/target.py) and pymemd watching them with --match at the default
#    interval (1 s); waits until all are sampled.
# 2. `wrk -t2 -c10 -d10s --latency` against /metrics in every format: JSON (no Accept, as
#    curl and wrk send), text 0.0.4 (Accept: text/plain;version=0.0.4), OpenMetrics
#    (Prometheus 3's Accept), the ?format= variants, and OpenMetrics + gzip as Prometheus
#    really scrapes. Table of requests/s and p50/p99 latency against the issue's goals
#    (>= 10,000 req/s, p99 < 5 ms), with the issue's figures for node_exporter 1.5 and
#    process-exporter 0.7.10 for comparison (re-measured only if those binaries exist).
# 3. pymemd's own CPU over 60 s, idle (no HTTP requests), from /proc/PID/stat utime+stime,
#    as percent of one core (goal < 1 %), and its RSS (VmRSS, VmHWM); the same for the HTTP
#    listener (its child, which keeps the history). --breakdown then
#    measures again with the GC busy poll off (gc_poll_interval = 0) and with censuses off
#    too (census_interval = 0), through --config, to show where the CPU goes.
# Exit status 0 unless the setup failed (no wrk, no python, pymemd does not serve).
# Every process it starts is killed on exit (by pid).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_PY="$ROOT/tests/integration/target.py"
PYMEMD="$ROOT/build/pymemd"
DURATION=10s
CPU_SECONDS=60
NTARGETS=10
THREADS=2
CONNS=10
BREAKDOWN=0

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --cpu-seconds) CPU_SECONDS=$2; shift 2 ;;
        --targets) NTARGETS=$2; shift 2 ;;
        --breakdown) BREAKDOWN=1; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench_http.sh: unknown option $1" >&2; exit 2 ;;
        *) PYMEMD=$1; shift ;;
    esac
done

die() { echo "bench_http.sh: $*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"
command -v curl >/dev/null || die "curl is not installed"
[ -x "$PYMEMD" ] || die "$PYMEMD is not an executable (build it: ninja -C build)"
PYMEMD=$(cd "$(dirname "$PYMEMD")" && pwd)/$(basename "$PYMEMD")

PY=""
PYENV_ROOT_DIR=${PYENV_ROOT:-$HOME/.pyenv}
for d in $(ls -d "$PYENV_ROOT_DIR"/versions/3.12.* 2>/dev/null | sort -V -r); do
    if [ -x "$d/bin/python3.12" ]; then PY="$d/bin/python3.12"; break; fi
done
[ -n "$PY" ] || PY=/usr/bin/python3
[ -x "$PY" ] || die "no Python interpreter (pyenv 3.12 or /usr/bin/python3)"
SYSPY=/usr/bin/python3
[ -x "$SYSPY" ] || SYSPY=$PY

WORK=$(mktemp -d /tmp/pymemd-bench-http.XXXXXX)
PIDS=()
PYMEMD_PID=""
cleanup() {
    local p
    exec 2>/dev/null          # no "Killed" job reports
    [ -n "$PYMEMD_PID" ] && kill -TERM "$PYMEMD_PID" 2>/dev/null
    for p in "${PIDS[@]}"; do
        kill -CONT "$p" 2>/dev/null
        kill -KILL "$p" 2>/dev/null
    done
    [ -n "$PYMEMD_PID" ] && { sleep 0.2; kill -KILL "$PYMEMD_PID" 2>/dev/null; }
    exec 9>&- 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$SYSPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- targets --------------------------------------------------------------------------
TAG="pymemdbench$(printf '%04x%04x%04x' $RANDOM $RANDOM $RANDOM)"
REGEX="${TAG:0:5}[${TAG:5:1}]${TAG:6}"
mkfifo "$WORK/hold"
exec 9<>"$WORK/hold"          # held open read-write: the targets never see EOF on stdin
for i in $(seq 1 "$NTARGETS"); do
    env -u PYTHONMALLOC -u PYTHONPATH "$PY" "$TARGET_PY" --tag "$TAG-$i" \
        <&9 >"$WORK/truth.$i" 2>"$WORK/err.$i" &
    PIDS+=($!)
done
deadline=$((SECONDS + 60))
for i in $(seq 1 "$NTARGETS"); do
    while ! grep -q '"pid"' "$WORK/truth.$i" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || die "target $i printed nothing: $(head -c 300 "$WORK/err.$i")"
        sleep 0.1
    done
done
echo "targets: $NTARGETS x $("$PY" -c 'import platform; print(platform.python_version())') ($PY target.py --tag $TAG-N)"

# --- pymemd ---------------------------------------------------------------------------
PORT=$(free_port)
"$PYMEMD" --listen "127.0.0.1:$PORT" --match "$REGEX" >"$WORK/pymemd.out" 2>"$WORK/pymemd.err" &
PYMEMD_PID=$!
BASE="http://127.0.0.1:$PORT"
deadline=$((SECONDS + 10))
until curl -s -o /dev/null "$BASE/healthz"; do
    if ! kill -0 "$PYMEMD_PID" 2>/dev/null; then
        die "pymemd exited: $(head -c 400 "$WORK/pymemd.err")"
    fi
    [ $SECONDS -lt $deadline ] || die "pymemd does not answer on $BASE: $(head -c 400 "$WORK/pymemd.err")"
    sleep 0.1
done
deadline=$((SECONDS + 20))
while :; do
    n=$(curl -s "$BASE/api/v1/processes" | "$SYSPY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
    print(sum(1 for p in d["processes"] if p.get("status") == "ok"))
except Exception:
    print(0)')
    [ "$n" -ge "$NTARGETS" ] && break
    [ $SECONDS -lt $deadline ] || die "only $n of $NTARGETS targets sampled ok after 20 s"
    sleep 0.5
done
echo "pymemd: $PYMEMD --listen 127.0.0.1:$PORT --match '$REGEX' (pid $PYMEMD_PID, default interval)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo

# --- wrk ------------------------------------------------------------------------------
PROM3='application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2'

to_ms() {   # wrk latency ("123.45us", "1.23ms", "1.02s") -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# run_wrk NAME URL [HEADER...]: one table row
ROWS=()
run_wrk() {
    local name=$1 url=$2; shift 2
    local hargs=() cargs=() h
    for h in "$@"; do hargs+=(-H "$h"); cargs+=(-H "$h"); done
    local info ctype size
    info=$(curl -s -o "$WORK/body" -w '%{content_type}|%{size_download}|%{http_code}' "${cargs[@]}" "$url")
    ctype=${info%%|*}; size=$(echo "$info" | cut -d'|' -f2)
    local out rps p50 p99 non2xx sockerr
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${hargs[@]}" "$url" 2>&1)
    echo "$out" >"$WORK/wrk.$(echo "$name" | tr -c 'a-zA-Z0-9' '_')"
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
    p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $NF}')
    sockerr=$(echo "$out" | awk '/Socket errors:/ {sub(/^ *Socket errors: */, ""); print}')
    local goal="no"
    if awk -v r="${rps:-0}" -v p="${p99:-999}" 'BEGIN {exit !(r >= 10000 && p < 5)}'; then
        goal="yes"
    fi
    ROWS+=("$(printf '%-32s %-58s %6s %9s %7s %7s  %-4s %s' "$name" "${ctype:-?}" \
        "${size:-?}" "${rps:-?}" "$p50" "$p99" "$goal" \
        "${non2xx:+non-2xx: $non2xx }${sockerr:+socket errors: $sockerr}")")
    printf '  %-32s %10s req/s  p99 %6s ms\n' "$name" "${rps:-?}" "$p99"
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency, $NTARGETS targets:"
run_wrk "JSON (no Accept)" "$BASE/metrics"
run_wrk "JSON ?format=json" "$BASE/metrics?format=json"
run_wrk "text (Accept text/plain)" "$BASE/metrics" "Accept: text/plain;version=0.0.4"
run_wrk "text ?format=prometheus" "$BASE/metrics?format=prometheus"
run_wrk "OpenMetrics (Prometheus 3)" "$BASE/metrics" "Accept: $PROM3"
run_wrk "OpenMetrics ?format=openmetrics" "$BASE/metrics?format=openmetrics"
run_wrk "OpenMetrics + gzip (as scraped)" "$BASE/metrics" "Accept: $PROM3" "Accept-Encoding: gzip"
run_wrk "/healthz" "$BASE/healthz"
FIRST_PID=$(grep -o '"pid": *[0-9]*' "$WORK/truth.1" | head -1 | grep -o '[0-9]*$')
run_wrk "history of one target" "$BASE/api/v1/processes/$FIRST_PID/history"

# Reference exporters, only if installed.
REF_ROWS=()
ref_exporter() {   # ref_exporter NAME BINARY ARGS... (the listen port is $RPORT)
    local name=$1 bin=$2; shift 2
    "$bin" "$@" >"$WORK/ref.out" 2>&1 &
    local rpid=$!
    PIDS+=("$rpid")
    local i
    for i in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$RPORT/metrics" && break; sleep 0.1; done
    local out rps p99
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$RPORT/metrics" 2>&1)
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    REF_ROWS+=("$(printf '%-30s measured here: %s req/s, p99 %s ms' "$name" "${rps:-?}" "$p99")")
    kill -KILL "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
}
if command -v node_exporter >/dev/null; then
    RPORT=$(free_port)
    ref_exporter "node_exporter ($(node_exporter --version 2>&1 | head -1 | awk '{print $3}'))" \
        node_exporter --web.listen-address="127.0.0.1:$RPORT"
fi
if command -v process-exporter >/dev/null; then
    RPORT=$(free_port)
    ref_exporter "process-exporter" process-exporter -web.listen-address "127.0.0.1:$RPORT" \
        -procnames python3
fi

echo
printf '%-32s %-58s %6s %9s %7s %7s  %-4s %s\n' "format" "Content-Type" "bytes" "req/s" \
    "p50 ms" "p99 ms" "goal" ""
for r in "${ROWS[@]}"; do echo "$r"; done
echo "goal (issue): >= 10,000 req/s and p99 < 5 ms per format, $NTARGETS targets"
echo "reference (from the issue, measured earlier on this machine class, not re-measured here):"
echo "  node_exporter 1.5           143 req/s, p99 132 ms"
echo "  process-exporter 0.7.10     641 req/s, p99  24 ms"
for r in "${REF_ROWS[@]}"; do echo "  $r"; done
[ ${#REF_ROWS[@]} -eq 0 ] && echo "  (node_exporter / process-exporter are not installed here)"
echo

# --- idle cost ------------------------------------------------------------------------
# The sampler ($PYMEMD_PID) and the HTTP listener, its one child, which keeps the history.
LISTENER_PID=$(awk '{print $1}' "/proc/$PYMEMD_PID/task/$PYMEMD_PID/children" 2>/dev/null)
rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/${2:-$PYMEMD_PID}/status"; }
ticks() {   # utime + stime of pymemd (all threads), in clock ticks
    awk '{ sub(/^.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/${1:-$PYMEMD_PID}/stat"
}
HZ=$(getconf CLK_TCK)
echo "after the wrk runs: VmRSS $(rss VmRSS) kB, VmHWM $(rss VmHWM) kB"
echo "measuring pymemd's CPU for ${CPU_SECONDS} s, idle (no HTTP requests), $NTARGETS targets, interval 1 s ..."
t0=$(date +%s.%N); c0=$(ticks); l0=$(ticks "$LISTENER_PID")
sleep "$CPU_SECONDS"
t1=$(date +%s.%N); c1=$(ticks); l1=$(ticks "$LISTENER_PID")
kill -0 "$PYMEMD_PID" 2>/dev/null || die "pymemd exited during the CPU measurement"
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v n="$NTARGETS" 'BEGIN {
    cpu = (c1 - c0) / hz; wall = t1 - t0
    printf "pymemd CPU: %.2f s in %.1f s = %.3f %% of one core (goal < 1 %%), %d targets, %.2f ms per target-second\n",
        cpu, wall, 100 * cpu / wall, n, 1000 * cpu / wall / n }'
awk -v c0="$l0" -v c1="$l1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" 'BEGIN {
    cpu = (c1 - c0) / hz; wall = t1 - t0
    printf "listener CPU: %.2f s in %.1f s = %.3f %% of one core\n", cpu, wall, 100 * cpu / wall }'
echo "pymemd RSS: VmRSS $(rss VmRSS) kB, VmHWM $(rss VmHWM) kB, threads $(awk '$1 == "Threads:" {print $2}' "/proc/$PYMEMD_PID/status")"
echo "listener RSS: VmRSS $(rss VmRSS "$LISTENER_PID") kB, VmHWM $(rss VmHWM "$LISTENER_PID") kB, RssAnon $(rss RssAnon "$LISTENER_PID") kB (the rest: the binary and libraries, shared with the sampler)"

cpu_window() {   # cpu_window LABEL: CPU_SECONDS of idle pymemd, one line
    local t0 t1 c0 c1
    t0=$(date +%s.%N); c0=$(ticks)
    sleep "$CPU_SECONDS"
    t1=$(date +%s.%N); c1=$(ticks)
    kill -0 "$PYMEMD_PID" 2>/dev/null || die "pymemd exited during the CPU measurement"
    awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v l="$1" 'BEGIN {
        cpu = (c1 - c0) / hz; wall = t1 - t0
        printf "  %-44s %.3f %% of one core\n", l, 100 * cpu / wall }'
}
if [ "$BREAKDOWN" = 1 ]; then
    echo "breakdown (same $NTARGETS targets, ${CPU_SECONDS} s each, through --config):"
    for variant in "gc_poll_interval = 0" "gc_poll_interval = 0|census_interval = 0"; do
        kill -TERM "$PYMEMD_PID" 2>/dev/null; wait "$PYMEMD_PID" 2>/dev/null
        printf 'match = %s\n' "$REGEX" >"$WORK/bench.conf"
        echo "$variant" | tr '|' '\n' >>"$WORK/bench.conf"
        PORT=$(free_port)
        "$PYMEMD" --config "$WORK/bench.conf" --listen "127.0.0.1:$PORT" \
            >"$WORK/pymemd.out" 2>>"$WORK/pymemd.err" &
        PYMEMD_PID=$!
        sleep 3
        kill -0 "$PYMEMD_PID" 2>/dev/null || die "pymemd --config exited: $(tail -c 300 "$WORK/pymemd.err")"
        cpu_window "$(echo "$variant" | sed 's/|/, /')"
    done
fi
bad=$(grep -c -i 'error\|warn' "$WORK/pymemd.err" 2>/dev/null || true)
[ "${bad:-0}" -gt 0 ] && echo "pymemd logged $bad error/warning lines; first: $(grep -m3 -i 'error\|warn' "$WORK/pymemd.err")"
exit 0
