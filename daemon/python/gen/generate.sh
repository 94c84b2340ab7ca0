#!/usr/bin/env bash
# Regenerates daemon/python/layouts.c from the headers of every CPython this machine has.
#
# Sources, each compiled with genlayout.c (offsetof/sizeof on the version's own structs):
#   - pyenv builds: $(pyenv root)/versions/3.X.Y/include/python3.X
#   - Debian's 3.13/3.14/3.15 headers, unpacked by tests/integration/debian-pythons.sh
#     (listed in $PYMEMD_CACHE_DIR/debian/headers.tsv)
#   - upstream 3.13 and free-threaded 3.13t, built by tests/integration/upstream-pythons.sh
#     (listed in $PYMEMD_CACHE_DIR/upstream/headers.tsv; a free-threaded build's table is "3.13t")
# When two sources describe the same minor version (pyenv 3.13.0 and Debian 3.13.x), their tables
# must agree, or the script stops: a patch release that moved a field needs a table of its own.
#
# Usage: daemon/python/gen/generate.sh [OUTPUT]   (default: daemon/python/layouts.c)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../layouts.c}
cache=${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sources=()   # "label|include dir|platform include dir"
pyroot=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for d in "$pyroot"/versions/3.*; do
    [ -d "$d" ] || continue
    v=${d##*/}
    m=${v%.*}
    case $m in 3.[0-7]) continue ;; esac   # older than 3.8: unsupported
    [ -f "$d/include/python$m/Python.h" ] && sources+=("pyenv $v|$d/include/python$m|")
done
if [ -f "$cache/debian/headers.tsv" ]; then
    while IFS=$'\t' read -r minor version inc platinc; do
        [ -f "$inc/Python.h" ] && sources+=("Debian $version|$inc|$platinc")
    done < "$cache/debian/headers.tsv"
else
    echo "generate.sh: no $cache/debian/headers.tsv; run tests/integration/debian-pythons.sh for 3.14/3.15" >&2
fi

# Upstream 3.13 built from python.org's tarball by tests/integration/upstream-pythons.sh, default
# and free-threaded: the source's Include/ with each build's own pyconfig.h.
if [ -f "$cache/upstream/headers.tsv" ]; then
    while IFS=$'\t' read -r minor version inc platinc label; do
        [ -f "$inc/Python.h" ] && [ -f "$platinc/pyconfig.h" ] && sources+=("${label:-upstream $version}|$inc|$platinc")
    done < "$cache/upstream/headers.tsv"
else
    echo "generate.sh: no $cache/upstream/headers.tsv; run tests/integration/upstream-pythons.sh for upstream 3.13 and 3.13t" >&2
fi

declare -A table_of   # name -> file
for s in "${sources[@]}"; do
    IFS='|' read -r label inc platinc <<<"$s"
    flags=(-w -I"$inc" -I"$inc/internal")
    # Debian's pyconfig.h includes <x86_64-linux-gnu/python3.X/pyconfig.h> from usr/include.
    [ -n "$platinc" ] && flags+=(-I"$platinc" -I"$(dirname "$inc")")
    # The interpreter's own core defines (PY_CORE_CFLAGS of its _sysconfigdata): Debian builds
    # 3.15 with -D_Py_TIER2=3 -D_Py_JIT, which change struct sizes.
    minor=$(basename "$inc")
    sysconf=$(ls "$(dirname "$(dirname "$inc")")/lib/$minor"/_sysconfigdata_*.py 2>/dev/null | head -1 || true)
    # A build tree keeps it under build/lib.<platform>/ (upstream-pythons.sh's builds).
    [ -z "$sysconf" ] && [ -n "$platinc" ] &&
        sysconf=$(ls "$platinc"/build/lib.*/_sysconfigdata_*.py 2>/dev/null | head -1 || true)
    if [ -n "$sysconf" ]; then
        while read -r def; do flags+=("$def"); done < <(/usr/bin/python3 - "$sysconf" <<'PY'
import sys
ns = {}
exec(open(sys.argv[1]).read(), ns)
for word in ns["build_time_vars"].get("PY_CORE_CFLAGS", "").split():
    if word.startswith(("-D", "-U")) and not word.startswith(("-DNDEBUG", "-DPy_BUILD_CORE")):
        print(word)
PY
        )
    else
        echo "generate.sh: $label: no _sysconfigdata next to $inc; using the headers' defaults" >&2
    fi
    bin="$tmp/gen-${label// /-}"
    if ! cc "${flags[@]}" -o "$bin" "$here/genlayout.c" 2>"$bin.err"; then
        echo "generate.sh: $label: genlayout.c does not compile against these headers:" >&2
        head -20 "$bin.err" >&2
        exit 1
    fi
    "$bin" "$label" >"$bin.out"
    name=$(sed -n 's/^    .name = "\(.*\)",$/\1/p' "$bin.out")
    if [ -n "${table_of[$name]:-}" ]; then
        if diff -q <(grep -v '\.source = ' "${table_of[$name]}") <(grep -v '\.source = ' "$bin.out") >/dev/null; then
            # Same layout: one table, naming both sources.
            sed -i "s|^    .source = .*|    .source = \"$(sed -n 's/^    .source = "\(.*\)",$/\1/p' "${table_of[$name]}"), $label\",|" "$bin.out"
        else
            # A patch release moved fields. From 3.13 on the target's own debug offsets report the
            # struct sizes that tell such layouts apart (pylayout_find matches on them); before
            # 3.13 nothing would, so that is an error.
            if grep -q '^        .size = 0,$' <(sed -n '/\.debug_offsets = {/,/}/p' "$bin.out"); then
                echo "generate.sh: $label and ${table_of[$name]} disagree on $name and nothing at run time can tell them apart:" >&2
                diff <(grep -v '\.source = ' "${table_of[$name]}") <(grep -v '\.source = ' "$bin.out") >&2 || true
                exit 1
            fi
            echo "generate.sh: $label differs from the other $name layout; keeping both" >&2
            name="$name~${label##* }"
        fi
    fi
    table_of[$name]="$bin.out"
    echo "generate.sh: $label -> table $name (${flags[*]:5})" >&2
done

{
    echo "/* Generated by daemon/python/gen/generate.sh from each version's own headers: do not edit."
    echo " * Regenerate after adding an interpreter; see daemon/python/gen/README.md. */"
    echo "/* clang-format off */"
    echo '#include "python/layout.h"'
    echo
    echo "const PyLayout pylayout_tables[] = {"
    for name in $(printf '%s\n' "${!table_of[@]}" | sort -V); do
        cat "${table_of[$name]}"
    done
    echo "};"
    echo
    echo "const size_t pylayout_ntables = sizeof(pylayout_tables) / sizeof(pylayout_tables[0]);"
} >"$out"
echo "generate.sh: wrote $out (${#table_of[@]} tables)" >&2
