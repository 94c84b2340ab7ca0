#!/usr/bin/env bash
# Build upstream CPython 3.13 (python.org's source, none of Debian's patches) twice: the default
# build and the free-threaded one (--disable-gil, "3.13t"), for the integration matrix.
#
# Where the source comes from (see shared/reference/interpreters.md): Debian forky's
# `python3.13` source package, whose .orig.tar.xz is upstream's release tarball as published.
#   * apt runs on a private configuration (its own sources list with a deb-src line for forky,
#     state, cache and lock; nothing of the machine's /etc/apt or /var/lib/apt is read for state
#     nor written), as tests/integration/debian-pythons.sh does.
#   * `apt-get source --download-only` fetches the .dsc, .orig.tar.xz and .debian.tar.xz and
#     checks each against the hashes of forky's Sources index, whose InRelease is verified
#     against the machine's Debian archive keyring (plus trixie's, when debian-pythons.sh has
#     fetched it).  The tarball's SHA-256 is then checked again against the .dsc's own
#     Checksums-Sha256; the Debian patches (.debian.tar.xz) are deleted unread.
#   * Out-of-tree builds from one unpacked source, side by side, each under `nice`:
#       build-3.13/   ./configure && make python sharedmods
#       build-3.13t/  ./configure --disable-gil && make python sharedmods
#     with only the extension modules the test targets import (MODULES below) and without
#     optimisation (OPT below): neither changes a struct.  The binaries run from their build
#     trees.  A few minutes each on 2 idle cores; longer on a busy machine.
#
# Output, in ${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}/upstream:
#   interpreters.tsv   label <TAB> version <TAB> python path     (one line per build that works)
#                      label <TAB> skip    <TAB> reason          (one that does not)
#     labels: upstream-3.13 (default build), upstream-3.13t (free-threaded); the version is
#     platform.python_version(), e.g. 3.13.15.
#   headers.tsv        minor <TAB> version <TAB> include_dir <TAB> platform_include_dir <TAB> label
#                      (the source's Include/ and the build tree, which holds the build's
#                      pyconfig.h; a free-threaded build's tree is named ...t, as its headers
#                      would be installed; read by daemon/python/gen/generate.sh)
#   src/Python-X.Y.Z/  the unpacked source; src/*.orig.tar.xz and *.dsc kept as fetched
#   build-<name>/      the build trees (python, pyconfig.h, build/lib.*/ extension modules)
#   log/               configure/make output of the last build of each
#
# Idempotent: builds that are there and run are left alone (no network, no compiler).  A failed
# fetch or build is a visible skip, never a failure (the script exits 0 unless misused), and is
# retried only after PYMEMD_UPSTREAM_RETRY_AFTER seconds (default 3600; state/<label>.failed) or
# at once with --refresh (which also rebuilds working builds).
#
# Environment: PYMEMD_CACHE_DIR, PYMEMD_DEBIAN_MIRROR (default: the Debian mirror named in the
# machine's apt sources), PYMEMD_UPSTREAM_RETRY_AFTER, PYMEMD_UPSTREAM_JOBS (make -j, default 2),
# PYMEMD_UPSTREAM_OPT (compiler flags, default "-DNDEBUG -g -O0 -Wall").
set -euo pipefail

usage() { echo "usage: $0 [--refresh]" >&2; exit 2; }
REFRESH=0
for a in "$@"; do
    case "$a" in
        --refresh) REFRESH=1 ;;
        *) usage ;;
    esac
done

# shellcheck source=tests/integration/private-apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/private-apt.sh"

TOP="${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}"
CACHE="$TOP/upstream"
RETRY_AFTER="${PYMEMD_UPSTREAM_RETRY_AFTER:-3600}"
JOBS="${PYMEMD_UPSTREAM_JOBS:-2}"
MACHINE_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SUITE=forky
SRCPKG=python3.13
APT_TIMEOUT=300 # seconds, hard bound on any one apt-get call
# Compiler flags replacing configure's OPT (-DNDEBUG -g -O3 -Wall): no optimisation, so that a
# cold build takes minutes, not an hour, on a busy 2-core machine. Code generation only: every
# struct, and so every offset pymemd reads, is the same at any -O.
OPT="${PYMEMD_UPSTREAM_OPT:--DNDEBUG -g -O0 -Wall}"
# The extension modules built besides the core (all others are left out): what target.py,
# ft_target.py and the smoke test import (random needs math, _random and _sha2).
MODULES=(math _random _sha2 _bisect _heapq _json _struct select fcntl _posixsubprocess)

# label build-name configure-options...
BUILDS=(
    "upstream-3.13 3.13"
    "upstream-3.13t 3.13t --disable-gil"
)

mkdir -p "$CACHE/state" "$CACHE/log" "$CACHE/src"
CACHE="$(cd "$CACHE" && pwd -P)"

exec 9>"$CACHE/.lock"
if ! flock -w 1800 9; then
    echo "upstream-pythons: could not lock $CACHE/.lock" >&2
    exit 1
fi

log() { echo "upstream-pythons: $*" >&2; }

declare -A STATUS=() VERSION=() REASON=()

CHECK_PY='
import gc, sys, threading, json, platform, tempfile, sysconfig, subprocess
t = threading.Thread(target=lambda: None); t.start(); t.join()
gc.collect()
assert json.loads(json.dumps({"a": [1]})) == {"a": [1]}
with tempfile.TemporaryFile() as f:
    f.write(b"x")
print(platform.python_version())
print(int(bool(sysconfig.get_config_var("Py_GIL_DISABLED"))))
'

# check KIND: runs the smoke test on build-KIND/python; prints "version gil_disabled" or why not.
check() {
    local py="$CACHE/build-$1/python" out
    [[ -x "$py" ]] || { echo "no $py"; return 1; }
    if out="$(PYTHONDONTWRITEBYTECODE=1 timeout 120 "$py" -E -c "$CHECK_PY" 2>&1)"; then
        local v="${out%%$'\n'*}" ft="${out##*$'\n'}"
        if [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && "$ft" =~ ^[01]$ ]]; then
            echo "$v $ft"
            return 0
        fi
    fi
    echo "$out" | tail -n 1 | tr '\t' ' ' | cut -c1-160
    return 1
}

# probe LABEL KIND WANT_FT: is the cached build there, complete and working?
probe() {
    local label="$1" kind="$2" want_ft="$3" out
    [[ -f "$CACHE/build-$kind/.pymemd-complete" ]] || return 1
    if ! out="$(check "$kind")"; then
        REASON[$label]="cached build fails: $out"
        return 1
    fi
    if [[ "${out#* }" != "$want_ft" ]]; then
        REASON[$label]="cached build has Py_GIL_DISABLED=${out#* }, expected $want_ft"
        return 1
    fi
    STATUS[$label]=ok VERSION[$label]="${out%% *}"
    unset "REASON[$label]"
    return 0
}

# ---------------------------------------------------------------------------
# Fetching the source through a private apt (mirror, write_apt_conf, apt_reason:
# private-apt.sh)

# first GLOB-RESULTS...: the first existing file a glob gave, or nothing.
first() { [[ -e "$1" ]] && echo "$1"; return 0; }

# fetch_source: leaves the verified tarball's path in TARBALL, or the reason in FETCH_REASON.
TARBALL="" FETCH_REASON=""
fetch_source() {
    local m APTD="$CACHE/apt" keyrings="$MACHINE_KEYRING" out
    if ! m="$(mirror)"; then
        FETCH_REASON="no Debian mirror in the machine's apt sources (set PYMEMD_DEBIAN_MIRROR)"
        return 1
    fi
    # debian-pythons.sh keeps trixie's own (verified) archive keyring: newer suites may be signed
    # with keys the machine's bookworm keyring lacks.
    if [[ -f "$TOP/debian/keyring/debian-archive-keyring.gpg" ]]; then
        keyrings="$keyrings,$TOP/debian/keyring/debian-archive-keyring.gpg"
    fi
    rm -rf "$APTD"
    mkdir -p "$APTD"/{apt.conf.d,sources.list.d,preferences.d,trusted.gpg.d,log,src} \
             "$APTD/state/lists/partial" "$APTD/cache/archives/partial"
    : >"$APTD/state/status"
    echo "deb-src [signed-by=$keyrings] $m $SUITE main" >"$APTD/sources.list"
    write_apt_conf "$APTD" tests/integration/upstream-pythons.sh
    papt() { APT_CONFIG="$APTD/apt.conf" timeout "$APT_TIMEOUT" apt-get -q "$@"; }

    out="$APTD/log/update.log"
    log "$SUITE: apt-get update (deb-src) from $m (private state in $APTD)"
    if ! papt update >"$out" 2>&1 || grep -qE '^(E:|Err:|W: GPG error|W: Failed)' "$out"; then
        FETCH_REASON="download failed: apt-get update: $(apt_reason "$out")"
        return 1
    fi
    out="$APTD/log/source.log"
    log "$SUITE: apt-get source --download-only $SRCPKG"
    if ! (cd "$APTD/src" && papt source --download-only "$SRCPKG") >"$out" 2>&1; then
        FETCH_REASON="download failed: apt-get source $SRCPKG: $(apt_reason "$out")"
        return 1
    fi
    local dsc orig name sum want
    dsc="$(first "$APTD"/src/"${SRCPKG}"_*.dsc)"
    orig="$(first "$APTD"/src/"${SRCPKG}"_*.orig.tar.xz)"
    if [[ -z "$dsc" || -z "$orig" ]]; then
        FETCH_REASON="apt-get source $SRCPKG gave no .dsc or no .orig.tar.xz"
        return 1
    fi
    name="$(basename "$orig")"
    # The .dsc's own hash of the tarball (apt has checked the .dsc against the signed index).
    want="$(awk -v f="$name" '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 }
                              s && $3 == f { print $1 }' "$dsc")"
    sum="$(sha256sum "$orig" | awk '{ print $1 }')"
    if [[ ! "$want" =~ ^[0-9a-f]{64}$ ]]; then
        FETCH_REASON="$(basename "$dsc") lists no SHA-256 for $name"
        return 1
    fi
    if [[ "$sum" != "$want" ]]; then
        FETCH_REASON="$name: SHA-256 $sum, but $(basename "$dsc") says $want"
        return 1
    fi
    log "$name: SHA-256 $sum matches $(basename "$dsc")"
    rm -f "$CACHE"/src/*.orig.tar.xz "$CACHE"/src/*.dsc
    mv "$orig" "$dsc" "$CACHE/src/"
    rm -rf "$APTD" # the Debian patches and package lists are not kept
    TARBALL="$CACHE/src/$name"
    return 0
}

# unpack: the tarball into src/ (once per tarball); sets SRCDIR.
SRCDIR=""
unpack() {
    local top
    top="$(tar -tJf "$TARBALL" | head -n 1 | cut -d/ -f1)"
    if [[ ! "$top" =~ ^Python-[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        FETCH_REASON="$(basename "$TARBALL") does not unpack into Python-X.Y.Z/ (found '$top')"
        return 1
    fi
    SRCDIR="$CACHE/src/$top"
    if [[ ! -f "$SRCDIR/.pymemd-unpacked" ]] || ! grep -qxF "$(basename "$TARBALL")" "$SRCDIR/.pymemd-unpacked"; then
        rm -rf "$SRCDIR"
        tar -xJf "$TARBALL" -C "$CACHE/src"
        basename "$TARBALL" >"$SRCDIR/.pymemd-unpacked"
    fi
    return 0
}

# build KIND OPTIONS...: configure and make in build-KIND.new, moved into place when done.  Run
# in the background (the builds overlap: configure is mostly serial); on failure the reason is
# left in state/KIND.build-failed.
build() {
    local kind="$1" new="$CACHE/build-$1.new" out="$CACHE/log/$1.log" t0
    shift
    t0="$(date +%s)"
    rm -rf "$new" "$CACHE/state/$kind.build-failed"
    mkdir -p "$new"
    log "$kind: configuring and building (${*:-no options}) in $new, log in $out"
    # Only the extension modules the tests' targets import (SHAREDMODS, set on make's command
    # line, replaces the Makefile's list of all of them); named with the build's own suffix.
    if ! (cd "$new" && nice -n 10 "$SRCDIR/configure" "$@" &&
              ext="$(sed -n 's/^EXT_SUFFIX=[[:space:]]*//p' Makefile)" && [[ -n "$ext" ]] &&
              nice -n 10 make -j"$JOBS" OPT="$OPT" \
                  SHAREDMODS="$(printf "Modules/%s$ext " "${MODULES[@]}")" python sharedmods) \
        >"$out" 2>&1; then
        echo "build failed: $(grep -E '(error|Error)' "$out" | tail -n 1 | cut -c1-160) (log: $out)" \
            >"$CACHE/state/$kind.build-failed"
        rm -rf "$new"
        return 1
    fi
    basename "$TARBALL" >"$new/.pymemd-complete"
    rm -rf "$CACHE/build-$kind"
    mv "$new" "$CACHE/build-$kind"
    log "$kind: built in $(($(date +%s) - t0)) s"
    return 0
}

# ---------------------------------------------------------------------------
# Main

if [[ "$(uname -m)" != x86_64 ]]; then
    SKIP_ALL="not an x86_64 machine"
elif ! command -v apt-get >/dev/null || ! command -v cc >/dev/null || ! command -v make >/dev/null; then
    SKIP_ALL="apt-get, cc or make missing"
else
    SKIP_ALL=""
fi

now="$(date +%s)"
pending=()
for entry in "${BUILDS[@]}"; do
    read -r label kind opts <<<"$entry"
    want_ft=0
    [[ "$opts" == *--disable-gil* ]] && want_ft=1
    if [[ -n "$SKIP_ALL" ]]; then REASON[$label]="$SKIP_ALL"; continue; fi
    if ((!REFRESH)) && probe "$label" "$kind" "$want_ft"; then continue; fi
    failed="$CACHE/state/$label.failed" when="" why=""
    if ((!REFRESH)) && [[ -f "$failed" ]]; then
        read -r when why <"$failed" || true
        if [[ "$when" =~ ^[0-9]+$ ]] && ((now - when < RETRY_AFTER)); then
            REASON[$label]="$why (at $(date -u -d "@$when" +%FT%TZ); retried after ${RETRY_AFTER}s or with --refresh)"
            continue
        fi
    fi
    pending+=("$entry")
done

if ((${#pending[@]})); then
    TARBALL="$(first "$CACHE"/src/*.orig.tar.xz)"
    if ((REFRESH)) || [[ -z "$TARBALL" ]]; then
        fetch_source || TARBALL=""
    fi
    [[ -n "$TARBALL" ]] && { unpack || TARBALL=""; }
    if [[ -n "$TARBALL" ]]; then
        pids=()
        for entry in "${pending[@]}"; do
            read -r label kind opts <<<"$entry"
            # shellcheck disable=SC2086  # the options are words
            build "$kind" $opts &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid" || true; done
    fi
    for entry in "${pending[@]}"; do
        read -r label kind opts <<<"$entry"
        want_ft=0
        [[ "$opts" == *--disable-gil* ]] && want_ft=1
        if [[ -z "$TARBALL" ]]; then
            REASON[$label]="$FETCH_REASON"
        elif [[ -f "$CACHE/state/$kind.build-failed" ]]; then
            REASON[$label]="$(cat "$CACHE/state/$kind.build-failed")"
        fi
        keep="${REASON[$label]:-}"
        if probe "$label" "$kind" "$want_ft"; then
            rm -f "$CACHE/state/$label.failed"
        else
            [[ -n "$keep" ]] && REASON[$label]="$keep"
            printf '%s %s\n' "$now" "$(printf '%s' "${REASON[$label]:-unknown failure}" | tr '\t\n' '  ')" \
                >"$CACHE/state/$label.failed"
        fi
    done
fi

tsv="$CACHE/interpreters.tsv.tmp.$$" hdr="$CACHE/headers.tsv.tmp.$$"
: >"$tsv"; : >"$hdr"
for entry in "${BUILDS[@]}"; do
    read -r label kind opts <<<"$entry"
    if [[ "${STATUS[$label]:-}" == ok ]]; then
        py="$CACHE/build-$kind/python"
        src="$(sed -n 's/^srcdir=[[:space:]]*//p' "$CACHE/build-$kind/Makefile" | head -n 1)"
        printf '%s\t%s\t%s\n' "$label" "${VERSION[$label]}" "$py" >>"$tsv"
        v="${VERSION[$label]}"
        printf '%s\t%s\t%s\t%s\t%s\n' "${v%.*}" "$v" "$src/Include" "$CACHE/build-$kind" \
            "upstream $v${kind##*[0-9]}" >>"$hdr"
        log "$label: ok $(printf %-8s "${VERSION[$label]}") $py"
    else
        r="$(printf '%s' "${REASON[$label]:-unknown failure}" | tr '\t\n' '  ' | sed -E 's/ +$//')"
        printf '%s\tskip\t%s\n' "$label" "$r" >>"$tsv"
        log "$label: SKIP     $r"
    fi
done
mv -f "$tsv" "$CACHE/interpreters.tsv"
mv -f "$hdr" "$CACHE/headers.tsv"
exit 0
