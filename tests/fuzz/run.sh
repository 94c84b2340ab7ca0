#!/usr/bin/env bash
# Runs one libFuzzer harness for a while over its committed corpus and fails on any crash, leak,
# timeout or out-of-memory. Usage: run.sh HARNESS SEEDS WORKDIR SECONDS [libFuzzer flags...]
#
# New inputs go to WORKDIR/corpus, never into the committed SEEDS; a crashing input is written
# to WORKDIR/ as crash-*, leak-*, timeout-* or oom-*. The dictionary next to the harness's source
# (tests/fuzz/NAME.dict) is used when there is one.
set -euo pipefail
harness=$1 seeds=$2 work=$3 seconds=$4
shift 4
name=$(basename "$seeds")
dict=$(dirname "$(dirname "$seeds")")/$name.dict
mkdir -p "$work/corpus"
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536
    -artifact_prefix="$work/" -print_final_stats=1)
[ -f "$dict" ] && args+=(-dict="$dict")
# detect_leaks: a leak is a finding too; the seed corpus comes second so it is read, not written.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
exec "$harness" "${args[@]}" "$@" "$work/corpus" "$seeds"
