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

# The libFuzzer harnesses (tests/fuzz): each runs 20 s over its committed corpus in a clang build
# of their own, and any crash, leak, timeout or out-of-memory fails it. Skipped, with the reason,
# only when clang cannot link a fuzzer here (deps.sh installs clang and libclang-rt-14-dev).
fuzzprobe=$(mktemp -d)
if ! command -v clang >/dev/null; then
    fuzzwhy="no clang"
elif ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
    clang -x c -fsanitize=fuzzer,address - -o "$fuzzprobe/probe" 2>"$fuzzprobe/err"; then
    fuzzwhy="clang cannot link libFuzzer: $(head -n 1 "$fuzzprobe/err")"
else
    fuzzwhy=""
fi
rm -rf "$fuzzprobe"
if [ -n "$fuzzwhy" ]; then
    echo "test.sh: fuzz suite skipped: $fuzzwhy" >&2
    skipped=$((skipped + 1))
    summary+=("build-fuzz: skipped ($fuzzwhy)")
else
    rm -f build-fuzz/meson-logs/testlog.json
    if [ ! -d build-fuzz ]; then
        CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
            -Db_lundef=false -Dwerror=$werror >/dev/null
    else
        meson configure build-fuzz -Dwerror=$werror >/dev/null
    fi && ninja -C build-fuzz fuzz &&
        meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz || failed=1
    if [ -f build-fuzz/meson-logs/testlog.json ]; then
        read -r p f s < <(count build-fuzz)
        passed=$((passed + p)) nfailed=$((nfailed + f)) skipped=$((skipped + s))
        summary+=("build-fuzz: $p passed, $f failed, $s skipped")
    else
        nfailed=$((nfailed + 1))
        summary+=("build-fuzz: did not build")
    fi
fi

# Formatting: every C file but the generated tables follows .clang-format.
# A checkout from `git archive` (as .ci/run makes) has no .git: then every C file in the tree.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    cfiles=$(git ls-files '*.c' '*.h')
else
    cfiles=$(find daemon client include tests -name '*.[ch]')
fi
# shellcheck disable=SC2086
if unformatted=$(clang-format --dry-run $(grep -v 'python/layouts.c' <<<"$cfiles") 2>&1 | grep -o '^[^: ]*\.[ch]:' | sort -u | tr '\n' ' ') && [ -n "$unformatted" ]; then
    echo "test.sh: not formatted with clang-format: $unformatted" >&2
    nfailed=$((nfailed + 1))
    summary+=("clang-format: failed")
else
    passed=$((passed + 1))
    summary+=("clang-format: ok")
fi

# The layout tables are what daemon/python/gen/generate.sh makes of each version's own headers.
# Only the headers this machine has can be checked (pyenv's, Debian's fetched ones): those tables
# are regenerated and must be in layouts.c as they are; the others are listed as not checked.
tables=$(mktemp)
generr=$(mktemp)
if ! daemon/python/gen/generate.sh "$tables" 2>"$generr"; then
    echo "test.sh: daemon/python/gen/generate.sh failed:" >&2
    tail -n 20 "$generr" >&2
    nfailed=$((nfailed + 1))
    summary+=("layout tables: generate.sh failed")
elif verdict=$(/usr/bin/python3 - "$tables" daemon/python/layouts.c <<'PY'
import re, sys
sys.path.insert(0, "daemon/python/gen")
from comparable import comparable

def tables(path):
    """[(name, sources, comparable text)] of a generated layouts.c: tables merged from several
    patch releases differ in the values the target's debug offsets replace, depending on which
    of their sources this machine has."""
    out = []
    for block in re.findall(r"^\{\n.*?^\},\n", open(path).read(), re.M | re.S):
        name = re.search(r'^    \.name = "(.*)",$', block, re.M).group(1)
        src = re.search(r'^    \.source = "(.*)",$', block, re.M).group(1)
        out.append((name, set(s.strip() for s in src.split(",")), comparable(block)))
    return out

made, committed = tables(sys.argv[1]), tables(sys.argv[2])
bad = []
for name, sources, body in made:
    if not any(n == name and b == body and sources <= s for n, s, b in committed):
        bad.append("%s (from %s)" % (name, ", ".join(sorted(sources))))
vkey = lambda n: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", n)]
checked = sorted(set(n for n, _, _ in made), key=vkey)
unchecked = sorted(set(n for n, _, _ in committed) - set(checked), key=vkey)
print("checked %s; not checked, no headers here: %s" % (
    ", ".join(checked) or "none", ", ".join(unchecked) or "none"))
for b in bad:
    print("differs: " + b)
sys.exit(1 if bad else 0 if checked else 77)
PY
); then
    passed=$((passed + 1))
    summary+=("layout tables: as generated ($verdict)")
elif [ $? -eq 77 ]; then
    skipped=$((skipped + 1))
    summary+=("layout tables: skipped ($verdict)")
else
    echo "test.sh: daemon/python/layouts.c is not what generate.sh writes from this machine's headers:" >&2
    echo "$verdict" >&2
    nfailed=$((nfailed + 1))
    summary+=("layout tables: stale (${verdict//$'\n'/; })")
fi
rm -f "$tables" "$generr"

printf '%s\n' "${summary[@]}"
echo "$passed passed, $nfailed failed, $skipped skipped"
[ $failed -eq 0 ] && [ $nfailed -eq 0 ]
