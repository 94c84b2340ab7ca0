#!/usr/bin/env bash
# Regenerates daemon/python/layouts.c from the headers of every CPython this machine has.
#
# Sources, each compiled with genlayout.c (offsetof/sizeof on the version's own structs):
#   - pyenv builds: $(pyenv root)/versions/3.X.Y/include/python3.X
#   - Debian's 3.13/3.14/3.15 headers, release and debug builds, unpacked by
#     tests/integration/debian-pythons.sh (listed in $PYMEMD_CACHE_DIR/debian/headers-all.tsv)
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
# 1. pyenv builds.
pyroot=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for d in "$pyroot"/versions/3.*; do
    [ -d "$d" ] || continue
    v=${d##*/}
    m=${v%.*}
    case $m in 3.[0-7]) continue ;; esac   # older than 3.8: unsupported
    [ -f "$d/include/python$m/Python.h" ] && sources+=("pyenv $v|$d/include/python$m|")
done
# 2. Every provider under the cache: debian/ (tests/integration/debian-pythons.sh), upstream/
#    (tests/integration/upstream-pythons.sh) and any other that writes the same columns. Its
#    headers-all.tsv when it has one (debian/: every release and debug build, then label and kind
#    columns), else its headers.tsv:
#      minor <TAB> version <TAB> include_dir <TAB> platform_include_dir [<TAB> label [<TAB> kind]]
#    In a headers.tsv the label names the source; a headers-all.tsv's label is the matrix's
#    interpreter label, so the source is named after provider and version. A platform include dir
#    named python3.Xd or python3.Xt holds the pyconfig.h of a debug or free-threaded build (it
#    defines Py_DEBUG / Py_GIL_DISABLED), so such a line is that build.
for dir in "$cache"/*/; do
    tsv=${dir}headers-all.tsv
    [ -f "$tsv" ] || tsv=${dir}headers.tsv
    [ -f "$tsv" ] || continue
    provider=$(basename "$dir")
    case $provider in debian) provider=Debian ;; esac
    while IFS=$'\t' read -r minor version inc platinc label kind; do
        [ -f "$inc/Python.h" ] || continue
        [ -n "$kind" ] && label=""
        case ${platinc##*/} in *d) version="$version debug" ;; *t) version="$version free-threaded" ;; esac
        sources+=("${label:-$provider $version}|$inc|$platinc")
    done <"$tsv"
done
[ -f "$cache/debian/headers.tsv" ] ||
    echo "generate.sh: no $cache/debian/headers.tsv; run tests/integration/debian-pythons.sh for 3.13-3.15" >&2
# 3. Extra sources, one per line "label|include dir|platform include dir", for headers not in a
#    cache yet.
if [ -n "${PYMEMD_GENLAYOUT_EXTRA:-}" ]; then
    while IFS= read -r line; do [ -n "$line" ] && sources+=("$line"); done <<<"$PYMEMD_GENLAYOUT_EXTRA"
fi

# Tables compared without the values a 3.13+ target's own debug offsets replace (sizes, and the
# offsets pyloc_apply_debug_offsets() takes from the target): two patch releases that differ only
# there are one table, since the reader follows the target for those.
comparable() {
    /usr/bin/python3 "$here/comparable.py" "$1"
}

declare -A table_of=()   # name -> file
for s in "${sources[@]}"; do
    IFS='|' read -r label inc platinc <<<"$s"
    flags=(-w -I"$inc" -I"$inc/internal")
    # Debian's pyconfig.h includes <x86_64-linux-gnu/python3.X/pyconfig.h> from usr/include.
    [ -n "$platinc" ] && flags=(-w -I"$platinc" -I"$inc" -I"$inc/internal" -I"$(dirname "$inc")")
    # The interpreter's own core defines (PY_CORE_CFLAGS of its _sysconfigdata): Debian builds
    # 3.15 with -D_Py_TIER2=3 -D_Py_JIT, which change struct sizes. A debug build has its own
    # _sysconfigdata_d_*.
    minor=$(basename "$inc")
    minor=${minor%[dt]}
    abi=_
    case ${platinc##*/} in *d) abi=d_ ;; *t) abi=t_ ;; esac
    sysconf=$(ls "$(dirname "$(dirname "$inc")")/lib/$minor"/_sysconfigdata_${abi}*.py 2>/dev/null | head -1 || true)
    # A build tree keeps it under build/lib.<platform>/ (upstream-pythons.sh's builds).
    [ -z "$sysconf" ] && [ -n "$platinc" ] &&
        sysconf=$(ls "$platinc"/build/lib.*/_sysconfigdata_${abi}*.py 2>/dev/null | head -1 || true)
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
    # Feature tests: members that appeared within a minor version (3.15.0 has no
    # gc_stats.update_seq; 3.15.2 has).
    probe() {
        printf '#define Py_BUILD_CORE 1\n#include <Python.h>\n#include "internal/pycore_interp_structs.h"\nint x = sizeof(((%s *)0)->%s);\n' "$1" "$2" >"$tmp/probe.c"
        cc "${flags[@]}" -c -o "$tmp/probe.o" "$tmp/probe.c" 2>/dev/null
    }
    if probe 'struct gc_stats' update_seq; then flags+=(-DGENLAYOUT_HAVE_GC_STATS_UPDATE_SEQ); fi
    bin="$tmp/gen-${label// /-}"
    if ! cc "${flags[@]}" -o "$bin" "$here/genlayout.c" 2>"$bin.err"; then
        echo "generate.sh: $label: genlayout.c does not compile against these headers:" >&2
        head -20 "$bin.err" >&2
        exit 1
    fi
    "$bin" "$label" >"$bin.out"
    name=$(sed -n 's/^    .name = "\(.*\)",$/\1/p' "$bin.out")
    merged=""
    for other in "${!table_of[@]}"; do
        case $other in "$name" | "$name~"*) ;; *) continue ;; esac
        f=${table_of[$other]}
        if diff -q <(comparable "$f") <(comparable "$bin.out") >/dev/null; then
            # Same layout as far as the reader can tell: one table, naming every source.
            sed -i "s|^    .source = \"\(.*\)\",$|    .source = \"\1, $label\",|" "$f"
            merged=$other
            break
        fi
    done
    if [ -n "$merged" ]; then
        echo "generate.sh: $label -> table $merged (merged)" >&2
        continue
    fi
    if [ -n "${table_of[$name]:-}" ]; then
        # Fields the debug offsets do not carry moved. From 3.13 on the reader tells such tables
        # apart on the live target (GC state size, structural checks); before 3.13 nothing would.
        if grep -q '^        .size = 0,$' <(sed -n '/\.debug_offsets = {/,/}/p' "$bin.out"); then
            echo "generate.sh: $label and ${table_of[$name]} disagree on $name and nothing at run time can tell them apart:" >&2
            diff <(comparable "${table_of[$name]}") <(comparable "$bin.out") >&2 || true
            exit 1
        fi
        echo "generate.sh: $label differs from the other $name layout; keeping both:" >&2
        diff <(comparable "${table_of[$name]}") <(comparable "$bin.out") >&2 || true
        name="$name~${label// /-}"
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
