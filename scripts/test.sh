#!/usr/bin/env bash
# Installs what is missing, builds pymemd and runs every test: the cmocka unit tests and the
# integration matrix against every CPython on the machine (pyenv's, the system python3, and
# Debian's 3.13/3.14/3.15, fetched into ~/.cache/pymemd on first use) — once in a normal build
# and once under AddressSanitizer and UndefinedBehaviorSanitizer — and checks the formatting.
# Ends with one line: "N passed, M failed, K skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1
tests/integration/debian-pythons.sh ||
    echo "test.sh: Debian interpreters unavailable; the matrix lists them as skipped" >&2
tests/integration/upstream-pythons.sh ||
    echo "test.sh: upstream 3.13/3.13t builds unavailable; the matrix lists them as skipped" >&2

werror=false
[ "${CI:-}" = true ] && werror=true
failed=0
summary=()

run_suite() { # build dir, extra meson options...
    local dir=$1
    shift
    if [ ! -d "$dir" ]; then
        meson setup "$dir" -Dwerror=$werror "$@" >/dev/null || return 1
    else
        meson configure "$dir" -Dwerror=$werror "$@" >/dev/null || return 1
    fi
    ninja -C "$dir" || return 1
    # The soak (tests/soak) takes 10 minutes: run on its own with `meson test --suite soak`.
    meson test -C "$dir" --print-errorlogs --num-processes 2 --no-suite soak
}

count() { # build dir: adds the results of its last meson test run to the totals
    /usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
}

passed=0 nfailed=0 skipped=0
for suite in "build" "build-sanitize -Db_sanitize=address,undefined -Db_lundef=false"; do
    read -r dir opts <<<"$suite"
    rm -f "$dir/meson-logs/testlog.json" # a build that fails must not count an older run
    # shellcheck disable=SC2086
    if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
        run_suite "$dir" $opts; then
        failed=1
    fi
    if [ -f "$dir/meson-logs/testlog.json" ]; then
        read -r p f s < <(count "$dir")
        passed=$((passed + p)) nfailed=$((nfailed + f)) skipped=$((skipped + s))
        summary+=("$dir: $p passed, $f failed, $s skipped")
    else
        nfailed=$((nfailed + 1))
        summary+=("$dir: did not build")
    fi
done

# Formatting: every C file but the generated tables follows .clang-format.
if unformatted=$(clang-format --dry-run $(git ls-files '*.c' '*.h' | grep -v 'python/layouts.c') 2>&1 | grep -o '^[^: ]*\.[ch]:' | sort -u | tr '\n' ' ') && [ -n "$unformatted" ]; then
    echo "test.sh: not formatted with clang-format: $unformatted" >&2
    nfailed=$((nfailed + 1))
    summary+=("clang-format: failed")
else
    passed=$((passed + 1))
    summary+=("clang-format: ok")
fi

# The layout tables are what daemon/python/gen/generate.sh makes of this machine's headers.
# Its sources: pyenv, Debian's release and debug headers, upstream's 3.13/3.13t build trees.
if [ -f "${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}/debian/headers-all.tsv" ] &&
    [ -f "${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}/upstream/headers.tsv" ]; then
    tables=$(mktemp)
    if daemon/python/gen/generate.sh "$tables" 2>/dev/null && cmp -s "$tables" daemon/python/layouts.c; then
        passed=$((passed + 1))
        summary+=("layout tables: as generated")
    else
        echo "test.sh: daemon/python/layouts.c differs from what generate.sh writes:" >&2
        diff "$tables" daemon/python/layouts.c | head -20 >&2
        nfailed=$((nfailed + 1))
        summary+=("layout tables: stale")
    fi
    rm -f "$tables"
else
    skipped=$((skipped + 1))
    summary+=("layout tables: skipped (no Debian or upstream headers to generate them from)")
fi

printf '%s\n' "${summary[@]}"
echo "$passed passed, $nfailed failed, $skipped skipped"
[ $failed -eq 0 ] && [ $nfailed -eq 0 ]
