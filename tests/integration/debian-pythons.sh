#!/usr/bin/env bash
# Fetch Debian's own builds of CPython from newer Debian suites than the machine
# runs, without installing anything system-wide, and make them runnable through
# a private copy of the suite's glibc loader.
#
#   trixie: 3.13                     (release)
#   forky:  3.13, 3.14, 3.15         (release)
#   sid:    3.13, 3.14, 3.15         (release, debug, nopie, embedded)
#
# Build kinds (the last part of a label; none means release):
#   release   /usr/bin/python3.X: static, non-PIE, stripped
#   debug     /usr/bin/python3.Xd from python3.X-dbg + libpython3.X-dbg
#             (Py_DEBUG: bigger runtime structs, pymalloc with debug hooks)
#   nopie     /usr/bin/python3.X from python3.X-nopie (which replaces the
#             one of python3.X-minimal, so it has a root of its own)
#   embedded  a host program named appserver3.X (no "python" in its name)
#             that links the suite's shared libpython3.X.so.1.0 and calls
#             Py_BytesMain, built here with cc against the suite's headers
#
# How (see shared/reference/interpreters.md):
#   * apt runs on a private configuration (APT_CONFIG plus -o options): its own
#     sources list, state, cache and lock; the machine's /etc/apt and
#     /var/lib/apt are never read for state nor written, and the machine's
#     apt.conf.d hooks (Post-Invoke ...) are not run.
#   * `apt-get download` the interpreter packages and the runtime libraries they
#     depend on from the same suite, `dpkg -x` them into one root per suite.
#   * <cache>/bin/debian-python3.X execs
#       <root>/.../ld-linux-x86-64.so.2 --library-path <root libs> <root>/usr/bin/python3.X "$@"
#     so a running interpreter's /proc/PID/exe is the loader, not python: a case
#     pymemd must handle (find the module defining _PyRuntime among the mappings).
#     Note: sys.executable is <root>/usr/bin/python3.X, which cannot be run
#     directly on the host (its libc is too old); re-exec through the wrapper.
#
# One root per suite: a suite's packages of different minors install side by
# side, but two suites' libc and libpython3.X of the same minor do not; nor do
# python3.X-nopie and python3.X-minimal (root-sid-nopie).
#
# Output, in ${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}/debian:
#   bin/<label>              a wrapper per interpreter, e.g. bin/debian-sid-3.13-debug
#   bin/debian-python3.X     the wrappers of trixie 3.13, sid 3.14, sid 3.15
#                            (the names other scripts have always used)
#   interpreters.tsv         label <TAB> version <TAB> wrapper path
#                            label <TAB> skip    <TAB> reason
#                            labels: debian-<suite>-<minor>[-<kind>]
#   headers.tsv              minor <TAB> version <TAB> include_dir <TAB> platform_include_dir
#                            one line per minor: the headers the layout tables
#                            are generated from (trixie 3.13, sid 3.14, sid 3.15)
#   headers-all.tsv          the same four columns, then label <TAB> kind: the
#                            headers of every release and debug build that works
#   debs/<suite>/            the downloaded .debs of each root, kept so that a
#                            rebuild downloads only what changed
#   root-<suite>/            extracted packages (less static libpython archives
#                            and docs); root-<suite>/.pymemd-debs lists them,
#                            root-<suite>/.pymemd-complete the labels that ran
#
# Idempotent: a suite whose interpreters all run is left alone (no network).
# A suite that cannot be fetched is a visible skip, never a failure: the script
# exits 0 unless it is misused.  An interpreter that could not be provided is
# retried on a later run only after PYMEMD_DEBIAN_RETRY_AFTER seconds (default
# 3600; state/<label>.failed), or at once with --refresh (which also rebuilds
# working suites).
#
# Signatures: the suites' InRelease files are verified against the machine's
# /usr/share/keyrings/debian-archive-keyring.gpg (bookworm's keyring carries
# the trixie archive keys, and sid is signed with them).  The trixie suite's own
# debian-archive-keyring package (itself verified that way) is added as a second
# accepted keyring for sid, so sid keeps verifying once it is signed only with
# newer keys.  Nothing is [trusted=yes].
#
# Environment: PYMEMD_CACHE_DIR, PYMEMD_DEBIAN_MIRROR (default: the Debian
# mirror named in the machine's own apt sources), PYMEMD_DEBIAN_RETRY_AFTER.
set -euo pipefail

usage() { echo "usage: $0 [--refresh]" >&2; exit 2; }
REFRESH=0
for a in "$@"; do
    case "$a" in
        --refresh) REFRESH=1 ;;
        -h|--help) usage ;;
        *) usage ;;
    esac
done

CACHE="${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}/debian"
RETRY_AFTER="${PYMEMD_DEBIAN_RETRY_AFTER:-3600}"
MACHINE_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
TRIPLET=x86_64-linux-gnu
APT_TIMEOUT=150     # seconds, hard bound on any one apt-get/apt-cache call

# label root minor kind
INTERPRETERS=(
    "debian-trixie-3.13 trixie 3.13 release"
    "debian-sid-3.14 sid 3.14 release"
    "debian-sid-3.15 sid 3.15 release"
    "debian-forky-3.13 forky 3.13 release"
    "debian-forky-3.14 forky 3.14 release"
    "debian-forky-3.15 forky 3.15 release"
    "debian-sid-3.13 sid 3.13 release"
    "debian-sid-3.13-debug sid 3.13 debug"
    "debian-sid-3.14-debug sid 3.14 debug"
    "debian-sid-3.15-debug sid 3.15 debug"
    "debian-sid-3.13-nopie sid-nopie 3.13 nopie"
    "debian-sid-3.14-nopie sid-nopie 3.14 nopie"
    "debian-sid-3.15-nopie sid-nopie 3.15 nopie"
    "debian-sid-3.13-embedded sid 3.13 embedded"
    "debian-sid-3.14-embedded sid 3.14 embedded"
    "debian-sid-3.15-embedded sid 3.15 embedded"
)
# Roots, named after their suite; sid-nopie is sid's packages in a root of their
# own, because python3.X-nopie ships /usr/bin/python3.X over python3.X-minimal's.
SUITES=(trixie forky sid sid-nopie)
# The interpreters whose headers go to headers.tsv and whose wrappers keep
# their old names bin/debian-python3.X.
LEGACY=(debian-trixie-3.13 debian-sid-3.14 debian-sid-3.15)

mkdir -p "$CACHE/bin" "$CACHE/state"
CACHE="$(cd "$CACHE" && pwd -P)"

# One run at a time per cache (CI jobs and tests may call this concurrently).
exec 9>"$CACHE/.lock"
if ! flock -w 600 9; then
    echo "debian-pythons: could not lock $CACHE/.lock" >&2
    exit 1
fi

log() { echo "debian-pythons: $*" >&2; }
# shellcheck source=tests/integration/private-apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/private-apt.sh"

# Per-interpreter result, filled in below.
declare -A STATUS=() VERSION=() REASON=() INCDIR=() PLATINC=()
# Per label, from INTERPRETERS.
declare -A LSUITE=() LMINOR=() LKIND=()
for entry in "${INTERPRETERS[@]}"; do
    read -r label s minor kind <<<"$entry"
    LSUITE[$label]=$s LMINOR[$label]=$minor LKIND[$label]=$kind
done

# ---------------------------------------------------------------------------
# Running an interpreter out of a root

# Resolve a path inside root R, following symlinks as if R were /.
resolve_in_root() {
    local R="$1" p="$2" n=0 t
    while [[ -L "$R$p" ]]; do
        t="$(readlink "$R$p")"
        if [[ "$t" == /* ]]; then p="$t"; else p="$(dirname "$p")/$t"; fi
        n=$((n + 1))
        ((n < 20)) || return 1
    done
    [[ -f "$R$p" ]] || return 1
    echo "$R$p"
}

find_loader() {
    local R="$1" c
    for c in /usr/lib/$TRIPLET/ld-linux-x86-64.so.2 /lib/$TRIPLET/ld-linux-x86-64.so.2 \
             /usr/lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2; do
        if resolve_in_root "$R" "$c"; then return 0; fi
    done
    return 1
}

# binary_of MINOR KIND: the interpreter's path inside a root.
binary_of() {
    case "$2" in
        release) echo "/usr/bin/python$1" ;;
        debug) echo "/usr/bin/python${1}d" ;;
        nopie) echo "/usr/bin/python$1" ;; # python3.X-nopie replaces python3.X-minimal's
        embedded) echo "/usr/bin/appserver$1" ;;
        *) return 1 ;;
    esac
}

# packages_of MINOR KIND: what to download for it (the release packages too:
# every build uses the suite's stdlib, the embedding host its headers).
packages_of() {
    local base=("python$1-minimal" "libpython$1-minimal" "libpython$1-stdlib" "libpython$1-dev")
    case "$2" in
        release) echo "${base[*]}" ;;
        debug) echo "${base[*]} python$1-dbg libpython$1-dbg" ;;
        nopie) echo "${base[*]} python$1-nopie" ;;
        embedded) echo "${base[*]} libpython$1" ;;
        *) return 1 ;;
    esac
}

# elf_type FILE: e_type of an ELF file (2 ET_EXEC, 3 ET_DYN: PIE or library).
elf_type() {
    od -An -t u2 -j 16 -N 2 "$1" 2>/dev/null | tr -d ' '
}

# run_in_root ROOT BINARY ARGS...: run ROOT's BINARY through ROOT's loader.
# shellcheck disable=SC2317  # called through check_cmd
run_in_root() {
    local R="$1" bin="$2" ld
    shift 2
    ld="$(find_loader "$R")" || { echo "no ld-linux-x86-64.so.2 in $R" >&2; return 127; }
    timeout 60 "$ld" --library-path "$R/usr/lib/$TRIPLET:$R/lib/$TRIPLET" "$R$bin" "$@"
}

# The embedding host: argv goes to Py_BytesMain, so it runs scripts and -c
# like python does, but it is not python (as uwsgi or a game engine is not).
HOST_C='
#include <Python.h>
int main(int argc, char **argv)
{
    return Py_BytesMain(argc, argv);
}
'

# build_host ROOT MINOR: cc the embedding host into ROOT/usr/bin/appserver3.X
# against ROOT's headers and shared libpython.  The host's own libc symbols are
# the build machine's (older than the suite's, so the suite's libc has them);
# libpython's are the suite's, hence --allow-shlib-undefined.
build_host() {
    local R="$1" minor="$2" cc lib inc plat out
    cc="$(command -v cc || true)"
    [[ -n "$cc" ]] || { echo "no cc to build the embedding host"; return 1; }
    lib="$R/usr/lib/$TRIPLET/libpython$minor.so.1.0"
    [[ -f "$lib" ]] || { echo "no $lib (package libpython$minor)"; return 1; }
    inc="$R/usr/include/python$minor" plat="$R/usr/include/$TRIPLET/python$minor"
    [[ -f "$inc/Python.h" ]] || { echo "no $inc/Python.h"; return 1; }
    printf '%s' "$HOST_C" >"$R/.appserver.c"
    if ! out="$(timeout 120 "$cc" -O1 -o "$R/usr/bin/appserver$minor" "$R/.appserver.c" \
                -I"$inc" -I"$plat" -I"$R/usr/include" "$lib" -Wl,--allow-shlib-undefined 2>&1)"; then
        echo "cc failed: $(echo "$out" | grep -m1 -i error | cut -c1-160)"
        return 1
    fi
    rm -f "$R/.appserver.c"
}

CHECK_PY='
import gc, sys, threading, json, ctypes, platform
t = threading.Thread(target=lambda: None); t.start(); t.join()
gc.collect()
assert json.loads(json.dumps({"a": [1]})) == {"a": [1]}
assert ctypes.sizeof(ctypes.c_void_p) == 8
print(platform.python_version())
print(sys.version)
'

# check_cmd CMD...: runs the smoke test; prints the version, or the failure.
check_cmd() {
    local out
    if out="$("$@" -c "$CHECK_PY" 2>&1)"; then
        local v="${out%%$'\n'*}"
        if [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+[a-z0-9+]*$ ]]; then
            echo "$v"
            return 0
        fi
    fi
    echo "$out" | tail -n 1 | tr '\t' ' ' | cut -c1-160
    return 1
}

# write_wrapper ROOT LABEL: bin/LABEL (and bin/debian-python3.X for LEGACY).
write_wrapper() {
    local R="$1" label="$2" minor="${LMINOR[$2]}" kind="${LKIND[$2]}" ld w tmp bin names n
    ld="$(find_loader "$R")" || return 1
    bin="$(binary_of "$minor" "$kind")"
    names=("$label")
    if is_legacy "$label"; then names+=("debian-python$minor"); fi
    for n in "${names[@]}"; do
        w="$CACHE/bin/$n"
        tmp="$w.tmp.$$"
        cat >"$tmp" <<EOF
#!/bin/sh
# Generated by tests/integration/debian-pythons.sh: $label ($kind build of
# python$minor from Debian ${LSUITE[$label]}) run through its own suite's loader
# (so /proc/PID/exe is the loader).
exec '$ld' --library-path '$R/usr/lib/$TRIPLET:$R/lib/$TRIPLET' '$R$bin' "\$@"
EOF
        chmod 755 "$tmp"
        mv -f "$tmp" "$w"
    done
}

is_legacy() {
    local l
    for l in "${LEGACY[@]}"; do [[ "$l" == "$1" ]] && return 0; done
    return 1
}

# headers_of ROOT MINOR KIND: "include_dir<TAB>platform_include_dir", or fails.
headers_of() {
    local R="$1" minor="$2" kind="$3" abi="" inc plat
    [[ "$kind" == debug ]] && abi=d
    inc="$R/usr/include/python$minor$abi" plat="$R/usr/include/$TRIPLET/python$minor$abi"
    [[ -f "$inc/Python.h" ]] || inc="$R/usr/include/python$minor"
    [[ -f "$inc/Python.h" && -d "$inc/internal" ]] || return 1
    [[ -f "$plat/pyconfig.h" ]] || plat="$inc"
    [[ -f "$plat/pyconfig.h" ]] || return 1
    printf '%s\t%s\n' "$inc" "$plat"
}

# probe LABEL: is the cached interpreter there and working?
probe() {
    local label="$1" suite="${LSUITE[$1]}" minor="${LMINOR[$1]}" kind="${LKIND[$1]}"
    local R="$CACHE/root-$suite" w out bin hdr
    w="$CACHE/bin/$label"
    bin="$(binary_of "$minor" "$kind")"
    [[ -f "$R/.pymemd-complete" && -x "$R$bin" ]] || return 1
    # A root from before build kinds lists the minors of its release builds.
    grep -qxF "$label" "$R/.pymemd-complete" ||
        { [[ "$kind" == release ]] && grep -qxF "$minor" "$R/.pymemd-complete"; } || return 1
    # The wrappers must point at this root (the cache may have been moved).
    if ! grep -qF "'$R$bin'" "$w" 2>/dev/null ||
        { is_legacy "$label" && ! grep -qF "'$R$bin'" "$CACHE/bin/debian-python$minor" 2>/dev/null; }; then
        write_wrapper "$R" "$label" || return 1
    fi
    out="$(check_cmd "$w")" || { REASON[$label]="cached interpreter fails: $out"; return 1; }
    if [[ "$kind" == release || "$kind" == debug ]]; then
        if ! hdr="$(headers_of "$R" "$minor" "$kind")"; then
            REASON[$label]="headers of python$minor ($kind) missing in $R/usr/include"
            return 1
        fi
        INCDIR[$label]="${hdr%%$'\t'*}" PLATINC[$label]="${hdr##*$'\t'}"
    fi
    STATUS[$label]=ok VERSION[$label]="$out"
    unset "REASON[$label]"
    return 0
}

# ---------------------------------------------------------------------------
# Private apt (mirror, write_apt_conf, apt_reason: private-apt.sh)

# setup_apt ROOTKEY MIRROR: private apt tree in $CACHE/apt/SUITE for the suite
# that ROOTKEY names (sid-nopie: sid); sets APTD.  The package lists of the last
# update are kept (for an hour): the next update of the suite, for another root
# or after a failure, then only asks whether they changed.
setup_apt() {
    local suite="${1%%-*}" mirror="$2" keyrings="$MACHINE_KEYRING"
    APTD="$CACHE/apt/$suite"
    local keep="$CACHE/apt/.lists-$suite"
    rm -rf "$keep"
    # (apt dates list files by the mirror's Last-Modified: the stamp is ours.)
    if [[ -n "$(find "$APTD/state/lists/.pymemd-updated" -mmin -60 2>/dev/null)" ]]; then
        mv "$APTD/state/lists" "$keep"
    fi
    rm -rf "$APTD"
    mkdir -p "$APTD/state"
    if [[ -d "$keep" ]]; then mv "$keep" "$APTD/state/lists"; fi
    mkdir -p "$APTD"/{apt.conf.d,sources.list.d,preferences.d,trusted.gpg.d,log,debs} \
             "$APTD/state/lists/partial" "$APTD/cache/archives/partial"
    : >"$APTD/state/status"
    # A second keyring from trixie's own debian-archive-keyring (see the header).
    if [[ "$suite" != trixie && -f "$CACHE/keyring/debian-archive-keyring.gpg" ]]; then
        keyrings="$keyrings,$CACHE/keyring/debian-archive-keyring.gpg"
    fi
    echo "deb [arch=amd64 signed-by=$keyrings] $mirror $suite main" >"$APTD/sources.list"
    write_apt_conf "$APTD" tests/integration/debian-pythons.sh
    return 0
}

APT_OPTS=()
apt_opts() {
    APT_OPTS=(-o "Dir::Etc::sourcelist=$APTD/sources.list" -o "Dir::Etc::sourceparts=$APTD/sources.list.d"
              -o "Dir::State=$APTD/state" -o "Dir::State::status=$APTD/state/status"
              -o "Dir::Cache=$APTD/cache" -o Debug::NoLocking=1
              -o Acquire::http::Timeout=30 -o Acquire::Retries=2)
}
papt_get()   { APT_CONFIG="$APTD/apt.conf" timeout "$APT_TIMEOUT" apt-get -q "${APT_OPTS[@]}" "$@"; }
papt_cache() { APT_CONFIG="$APTD/apt.conf" timeout "$APT_TIMEOUT" apt-cache "${APT_OPTS[@]}" "$@"; }

# Runtime-library closure of the given packages: follow Depends/Pre-Depends
# (first alternative) into lib* packages, skipping -dev packages and the shared
# libpython (Debian's /usr/bin/python3.X is static).  Data-only dependencies
# (tzdata, netbase, media-types, readline-common ...) are not needed to run.
lib_closure() {
    local -A seen=()
    local queue=("$@") next p d
    for p in "$@"; do seen[$p]=1; done
    while ((${#queue[@]})); do
        next=()
        while IFS= read -r d; do
            [[ -n "$d" && -z "${seen[$d]:-}" ]] || continue
            [[ "$d" == lib* && "$d" != *-dev && ! "$d" =~ ^libpython3\.[0-9]+$ ]] || continue
            seen[$d]=1
            next+=("$d")
        done < <(papt_cache show --no-all-versions "${queue[@]}" 2>/dev/null |
                 sed -n 's/^\(Pre-\)\{0,1\}Depends: //p' | tr ',' '\n' |
                 sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' | sort -u)
        queue=("${next[@]+"${next[@]}"}")
    done
    printf '%s\n' "${!seen[@]}" | sort
}

# fetch_suite SUITE LABEL...: build $CACHE/root-SUITE afresh.
# Sets REASON for interpreters it could not provide.  Returns 1 on total failure,
# with the reason in SUITE_REASON.
SUITE_REASON=""
fetch_suite() {
    local suite="$1" m out
    local new="$CACHE/root-$suite.new" old="$CACHE/root-$suite.old"
    shift
    SUITE_REASON=""
    if ! m="$(mirror)"; then
        SUITE_REASON="no Debian mirror in the machine's apt sources (set PYMEMD_DEBIAN_MIRROR)"
        return 1
    fi
    setup_apt "$suite" "$m"
    apt_opts
    out="$APTD/log/update.log"
    log "$suite: apt-get update from $m (private state in $APTD)"
    if ! papt_get update >"$out" 2>&1 || grep -qE '^(E:|Err:|W: GPG error|W: Failed)' "$out"; then
        SUITE_REASON="download failed: apt-get update: $(apt_reason "$out")"
        return 1
    fi
    touch "$APTD/state/lists/.pymemd-updated"

    # Which of the wanted interpreters does the suite offer?  (One apt-cache call
    # for all names: each call reads the whole package list.)
    local want=() have=() label minor n
    local -A offered=()
    while IFS= read -r n; do offered[$n]=1; done < <(papt_cache pkgnames python3 2>/dev/null
                                                   papt_cache pkgnames libpython3 2>/dev/null)
    for label in "$@"; do
        local pkgs=() p missing=""
        read -r -a pkgs <<<"$(packages_of "${LMINOR[$label]}" "${LKIND[$label]}")"
        for p in "${pkgs[@]}"; do
            [[ -n "${offered[$p]:-}" ]] || missing+=" $p"
        done
        if [[ -n "$missing" ]]; then
            REASON[$label]="download failed: not offered by $suite:$missing"
            continue
        fi
        want+=("${pkgs[@]}")
        have+=("$label")
    done
    if ((${#have[@]} == 0)); then
        SUITE_REASON="download failed: no wanted python in $suite"
        return 1
    fi
    mapfile -t want < <(printf '%s\n' "${want[@]}" | sort -u)
    if [[ "${suite%%-*}" == trixie ]]; then want+=(debian-archive-keyring); fi

    local debs=()
    mapfile -t debs < <(lib_closure libc6 libgcc-s1 "${want[@]}")
    # The .debs stay in debs/<root> between runs: apt-get download leaves a file
    # that is already there with the right size alone, so rebuilding a root after
    # a failure, or with one more package, downloads only what changed.
    local dl="$CACHE/debs/$suite" names=()
    mkdir -p "$dl"
    out="$APTD/log/download.log"
    # (The names from an empty directory: --print-uris leaves out what is there.)
    if ! mapfile -t names < <(cd "$APTD/debs" && papt_get download --print-uris "${debs[@]}" 2>"$out" |
                               awk '{ print $2 }') || ((${#names[@]} == 0)); then
        SUITE_REASON="download failed: $(apt_reason "$out")"
        return 1
    fi
    log "$suite: downloading ${#debs[@]} packages: ${debs[*]}"
    if ! (cd "$dl" && papt_get download "${debs[@]}") >"$out" 2>&1; then
        SUITE_REASON="download failed: $(apt_reason "$out")"
        return 1
    fi
    # What the suite no longer has is not kept.
    for f in "$dl"/*.deb; do
        [[ -e "$f" ]] || continue
        printf '%s\n' "${names[@]}" | grep -qxF "$(basename "$f")" || rm -f "$f"
    done

    rm -rf "$new" "$old"
    mkdir -p "$new"
    local f list="$new/.pymemd-debs"
    : >"$list"
    # python3.X-nopie last: its /usr/bin/python3.X replaces python3.X-minimal's.
    local debs_in_order=()
    mapfile -t debs_in_order < <(printf '%s\n' "${names[@]/#/$dl/}" | grep -v -- '-nopie_'
                                 printf '%s\n' "${names[@]/#/$dl/}" | grep -- '-nopie_' || true)
    for f in "${debs_in_order[@]}"; do
        if [[ "$(dpkg-deb -f "$f" Package)" == debian-archive-keyring ]]; then
            # Not part of the root: kept as the extra keyring for sid.
            local kd="$APTD/keyring-pkg"
            rm -rf "$kd"; mkdir -p "$kd" "$CACHE/keyring"
            dpkg-deb -x "$f" "$kd"
            if [[ -f "$kd/usr/share/keyrings/debian-archive-keyring.gpg" ]]; then
                cp -f "$kd/usr/share/keyrings/debian-archive-keyring.gpg" "$CACHE/keyring/"
                dpkg-deb -f "$f" Version >"$CACHE/keyring/version"
            fi
            continue
        fi
        if ! dpkg-deb -x "$f" "$new"; then
            SUITE_REASON="dpkg-deb -x failed on $(basename "$f")"
            rm -rf "$new"
            return 1
        fi
        printf '%s\t%s\n' "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" >>"$list"
    done
    sort -o "$list" "$list"
    # Not needed to run the interpreters nor for their headers: the static
    # libpython archives of the -dev packages (~25 MB per version), docs, man
    # pages and translations.
    rm -f "$new"/usr/lib/python3.*/config-*/*.a
    rm -rf "$new/usr/share/doc" "$new/usr/share/man" "$new/usr/share/locale" "$new/usr/share/lintian"

    # Test in place before replacing anything that worked.
    local ok=()
    for label in "${have[@]}"; do
        minor="${LMINOR[$label]}"
        if [[ "${LKIND[$label]}" == embedded ]] && ! out="$(build_host "$new" "$minor")"; then
            REASON[$label]="embedding host: $out"
            continue
        fi
        if [[ "${LKIND[$label]}" == nopie ]] && [[ "$(elf_type "$new$(binary_of "$minor" nopie)")" != 2 ]]; then
            REASON[$label]="python$minor of python$minor-nopie is not a non-PIE (ET_EXEC) executable"
            continue
        fi
        if out="$(PYTHONDONTWRITEBYTECODE=1 check_cmd run_in_root "$new" "$(binary_of "$minor" "${LKIND[$label]}")")"; then
            ok+=("$label")
        else
            REASON[$label]="extracted interpreter fails: $out"
        fi
    done
    if ((${#ok[@]} == 0)); then
        SUITE_REASON="no interpreter from $suite runs"
        rm -rf "$new"
        return 1
    fi
    # The labels that run, and, for scripts from before build kinds (which probe for
    # the minor), the minors of the release builds among them.
    {
        printf '%s\n' "${ok[@]}"
        for label in "${ok[@]}"; do
            [[ "${LKIND[$label]}" == release ]] && printf '%s\n' "${LMINOR[$label]}"
        done
    } >"$new/.pymemd-complete"
    if [[ -e "$CACHE/root-$suite" ]]; then mv "$CACHE/root-$suite" "$old"; fi
    mv "$new" "$CACHE/root-$suite"
    rm -rf "$old"
    for label in "${ok[@]}"; do write_wrapper "$CACHE/root-$suite" "$label"; done
    # The .debs are in debs/<root>; the lists are kept for the next root of the
    # suite (setup_apt), the rest is not needed once the root is built.
    rm -rf "$APTD/debs" "$APTD/cache"
    return 0
}

# ---------------------------------------------------------------------------
# Main

if [[ "$(uname -m)" != x86_64 ]]; then
    SKIP_ALL="not an x86_64 machine"
elif ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    SKIP_ALL="apt-get or dpkg-deb missing"
else
    SKIP_ALL=""
fi

now="$(date +%s)"
for suite in "${SUITES[@]}"; do
    specs=() pending=()
    for entry in "${INTERPRETERS[@]}"; do
        read -r label s minor kind <<<"$entry"
        [[ "$s" == "$suite" ]] || continue
        specs+=("$label")
        if [[ -n "$SKIP_ALL" ]]; then REASON[$label]="$SKIP_ALL"; continue; fi
        if ((REFRESH)) || ! probe "$label"; then pending+=("$label"); fi
    done
    [[ -n "$SKIP_ALL" ]] && continue
    ((${#pending[@]})) || continue

    # A recent failure is not retried on every run (keeps warm runs offline):
    # state/<label>.failed holds "epoch reason" of the last failed attempt.
    retry=()
    for label in "${pending[@]}"; do
        failed="$CACHE/state/$label.failed" when="" why=""
        if ((!REFRESH)) && [[ -f "$failed" ]]; then
            read -r when why <"$failed" || true
            if [[ "$when" =~ ^[0-9]+$ ]] && ((now - when < RETRY_AFTER)); then
                REASON[$label]="$why (at $(date -u -d "@$when" +%FT%TZ); retried after ${RETRY_AFTER}s or with --refresh)"
                continue
            fi
        fi
        retry+=("$label")
    done
    ((${#retry[@]})) || continue

    # Rebuild the whole suite (its interpreters share one libc), keeping the old
    # root if nothing new works.
    if ! fetch_suite "$suite" "${specs[@]}"; then
        for label in "${specs[@]}"; do
            [[ -n "${REASON[$label]:-}" ]] || REASON[$label]="$SUITE_REASON"
        done
        rm -rf "$CACHE/root-$suite.new" "$CACHE/root-$suite.old"
    fi
    # Whatever is there now (new root, or the old one kept), probe it.
    for label in "${specs[@]}"; do
        [[ "${STATUS[$label]:-}" == ok ]] && continue
        keep="${REASON[$label]:-}"
        if probe "$label"; then
            rm -f "$CACHE/state/$label.failed"
        else
            [[ -n "$keep" ]] && REASON[$label]="$keep"
            printf '%s %s\n' "$now" "$(printf '%s' "${REASON[$label]:-unknown failure}" | tr '\t\n' '  ')" \
                >"$CACHE/state/$label.failed"
        fi
    done
done

# Manifests, written whole each run.
tsv="$CACHE/interpreters.tsv.tmp.$$" hdr="$CACHE/headers.tsv.tmp.$$" all="$CACHE/headers-all.tsv.tmp.$$"
: >"$tsv"; : >"$hdr"; : >"$all"
for entry in "${INTERPRETERS[@]}"; do
    read -r label suite minor kind <<<"$entry"
    if [[ "${STATUS[$label]:-}" == ok ]]; then
        printf '%s\t%s\t%s\n' "$label" "${VERSION[$label]}" "$CACHE/bin/$label" >>"$tsv"
        if [[ -n "${INCDIR[$label]:-}" ]]; then
            line="$(printf '%s\t%s\t%s\t%s' "$minor" "${VERSION[$label]}" "${INCDIR[$label]}" "${PLATINC[$label]}")"
            if is_legacy "$label"; then printf '%s\n' "$line" >>"$hdr"; fi
            printf '%s\t%s\t%s\n' "$line" "$label" "$kind" >>"$all"
        fi
        log "$(printf '%-26s ok   %-8s %-8s' "$label" "${VERSION[$label]}" "$kind") $CACHE/bin/$label"
    else
        r="${REASON[$label]:-unknown failure}"
        r="$(printf '%s' "$r" | tr '\t\n' '  ' | sed -E 's/ +$//')"
        printf '%s\tskip\t%s\n' "$label" "$r" >>"$tsv"
        log "$(printf '%-26s SKIP' "$label") $r"
    fi
done
mv -f "$tsv" "$CACHE/interpreters.tsv"
mv -f "$hdr" "$CACHE/headers.tsv"
mv -f "$all" "$CACHE/headers-all.tsv"
exit 0
