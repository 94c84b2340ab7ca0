#!/bin/sh
# bench_render_ab.sh: bench_render (tests/bench/bench_render.c) of this tree against a base
# commit: builds the same bench file in an export of BASE (default main) under
# ${TMPDIR:-/tmp}/pymemd-render-base, then runs the two binaries alternately, PAIRS times, and
# prints each run and the ratio of the mean CPU per round (base / this tree). The heap is trimmed
# every TRIM_BASE rounds (default 1, as publish() did until 60ea148) in the base's
# runs and every TRIM_THIS (default 30, as it does now) in this tree's.
#
#   tests/bench/bench_render_ab.sh [BASE] [PAIRS] [N] [ROUNDS]     (run from the source tree,
#                                                                   with build/ built)
set -eu
base=${1:-main}
pairs=${2:-5}
n=${3:-10}
rounds=${4:-500}
here=$(pwd)
dir=${TMPDIR:-/tmp}/pymemd-render-base
rm -rf "$dir"
mkdir -p "$dir"
git archive "$base" | tar -x -C "$dir"
cp tests/bench/bench_render.c "$dir/tests/bench/"
grep -q bench_render "$dir/tests/bench/meson.build" ||
    echo "executable('bench_render', 'bench_render.c', dependencies: [core_dep])" \
        >>"$dir/tests/bench/meson.build"
(cd "$dir" && meson setup build >/dev/null && ninja -C build tests/bench/bench_render >/dev/null)
ninja -C "$here/build" tests/bench/bench_render >/dev/null
out=$(mktemp)
i=0
while [ "$i" -lt "$pairs" ]; do
    printf 'base %s ' "$base"
    TRIM_EVERY=${TRIM_BASE:-1} "$dir/build/tests/bench/bench_render" "$n" "$rounds" | tee -a "$out.base"
    printf 'this tree  '
    TRIM_EVERY=${TRIM_THIS:-30} "$here/build/tests/bench/bench_render" "$n" "$rounds" | tee -a "$out.this"
    i=$((i + 1))
done
mean() { awk '{ for (i = 1; i <= NF; i++) if ($i == "us") { s += $(i - 1); k++ } } END { printf "%.1f", s / k }' "$1"; }
b=$(mean "$out.base")
t=$(mean "$out.this")
echo "mean CPU per round: base $b us, this tree $t us, ratio $(awk "BEGIN { printf \"%.2f\", $b / $t }")"
rm -f "$out" "$out.base" "$out.this"
