#!/usr/bin/env bash
# Fetch Debian's own builds of CPython (static, non-PIE, stripped) from newer
# Debian suites than the machine runs, without installing anything system-wide,
# and make them runnable through a private copy of the suite's glibc loader.
#
#   trixie: python3.13        sid: python3.14, python3.15
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
# Output, in ${PYMEMD_CACHE_DIR:-$HOME/.cache/pymemd}/debian:
#   bin/debian-python3.X     wrappers
#   interpreters.tsv         label <TAB> version <TAB> wrapper path
#                            label <TAB> skip    <TAB> reason
#   headers.tsv              minor <TAB> version <TAB> include_dir <TAB> platform_include_dir
#                            (only for interpreters that work)
#   root-<suite>/            extracted packages (less static libpython archives
#                            and docs); root-<suite>/.pymemd-debs lists them
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

# label suite minor
INTERPRETERS=(
    "debian-trixie-3.13 trixie 3.13"
    "debian-sid-3.14 sid 3.14"
    "debian-sid-3.15 sid 3.15"
)
SUITES=(trixie sid)

mkdir -p "$CACHE/bin" "$CACHE/state"
CACHE="$(cd "$CACHE" && pwd -P)"

# One run at a time per cache (CI jobs and tests may call this concurrently).
exec 9>"$CACHE/.lock"
if ! flock -w 600 9; then
    echo "debian-pythons: could not lock $CACHE/.lock" >&2
    exit 1
fi

log() { echo "debian-pythons: $*" >&2; }

# Per-interpreter result, filled in below.
declare -A STATUS=() VERSION=() REASON=() INCDIR=() PLATINC=()

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

# run_in_root ROOT MINOR ARGS...: run ROOT's python3.MINOR through ROOT's loader.
# shellcheck disable=SC2317  # called through check_cmd
run_in_root() {
    local R="$1" minor="$2" ld
    shift 2
    ld="$(find_loader "$R")" || { echo "no ld-linux-x86-64.so.2 in $R" >&2; return 127; }
    timeout 60 "$ld" --library-path "$R/usr/lib/$TRIPLET:$R/lib/$TRIPLET" \
        "$R/usr/bin/python$minor" "$@"
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

write_wrapper() {
    local R="$1" minor="$2" ld w tmp
    ld="$(find_loader "$R")" || return 1
    w="$CACHE/bin/debian-python$minor"
    tmp="$w.tmp.$$"
    cat >"$tmp" <<EOF
#!/bin/sh
# Generated by tests/integration/debian-pythons.sh: Debian's python$minor run
# through its own suite's loader (so /proc/PID/exe is the loader).
exec '$ld' --library-path '$R/usr/lib/$TRIPLET:$R/lib/$TRIPLET' '$R/usr/bin/python$minor' "\$@"
EOF
    chmod 755 "$tmp"
    mv -f "$tmp" "$w"
}

# probe LABEL SUITE MINOR: is the cached interpreter there and working?
probe() {
    local label="$1" suite="$2" minor="$3" R="$CACHE/root-$2" w out
    w="$CACHE/bin/debian-python$minor"
    [[ -f "$R/.pymemd-complete" && -x "$w" && -x "$R/usr/bin/python$minor" ]] || return 1
    grep -qx "$minor" "$R/.pymemd-complete" || return 1
    # The wrapper must point at this root (the cache may have been moved).
    grep -qF "'$R/usr/bin/python$minor'" "$w" || write_wrapper "$R" "$minor" || return 1
    out="$(check_cmd "$w")" || { REASON[$label]="cached interpreter fails: $out"; return 1; }
    local inc="$R/usr/include/python$minor" plat="$R/usr/include/$TRIPLET/python$minor"
    [[ -f "$inc/Python.h" && -d "$inc/internal" ]] || { REASON[$label]="headers missing in $inc"; return 1; }
    [[ -f "$plat/pyconfig.h" ]] || plat="$inc"
    [[ -f "$plat/pyconfig.h" ]] || { REASON[$label]="pyconfig.h missing"; return 1; }
    STATUS[$label]=ok VERSION[$label]="$out" INCDIR[$label]="$inc" PLATINC[$label]="$plat"
    unset "REASON[$label]"
    return 0
}

# ---------------------------------------------------------------------------
# Private apt

mirror() {
    if [[ -n "${PYMEMD_DEBIAN_MIRROR:-}" ]]; then echo "${PYMEMD_DEBIAN_MIRROR%/}"; return 0; fi
    local u f
    # deb822 sources first, then one-line sources; a Debian archive URI ends in /debian.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        u="$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" |
             grep -E '^https?://[^[:space:]]+/debian/?$' | head -n 1 || true)"
        [[ -n "$u" ]] && { echo "${u%/}"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        u="$(grep -E '^[[:space:]]*deb[[:space:]]' "$f" | sed -E 's/\[[^]]*\]//' |
             awk '{ print $2 }' | grep -E '^https?://[^[:space:]]+/debian/?$' | head -n 1 || true)"
        [[ -n "$u" ]] && { echo "${u%/}"; return 0; }
    done
    return 1
}

# setup_apt SUITE MIRROR: private apt tree in $CACHE/apt/SUITE; sets APTD.
setup_apt() {
    local suite="$1" mirror="$2" keyrings="$MACHINE_KEYRING" hp="" hsp=""
    APTD="$CACHE/apt/$suite"
    rm -rf "$APTD"
    mkdir -p "$APTD"/{apt.conf.d,sources.list.d,preferences.d,trusted.gpg.d,log,debs} \
             "$APTD/state/lists/partial" "$APTD/cache/archives/partial"
    : >"$APTD/state/status"
    # A second keyring from trixie's own debian-archive-keyring (see the header).
    if [[ "$suite" != trixie && -f "$CACHE/keyring/debian-archive-keyring.gpg" ]]; then
        keyrings="$keyrings,$CACHE/keyring/debian-archive-keyring.gpg"
    fi
    echo "deb [arch=amd64 signed-by=$keyrings] $mirror $suite main" >"$APTD/sources.list"
    # Keep the machine's proxy settings, if any (read only).
    hp="$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1 || true)"
    hsp="$(apt-config dump Acquire::https::Proxy 2>/dev/null | sed -n 's/^Acquire::https::Proxy "\(.*\)";$/\1/p' | head -n 1 || true)"
    cat >"$APTD/apt.conf" <<EOF
// Private apt configuration written by tests/integration/debian-pythons.sh.
// Read via APT_CONFIG before anything else; it points apt's configuration
// parts at empty private directories so that nothing of /etc/apt is read
// (and no machine hook runs) and no state outside $APTD is written.
Dir::Etc::main "$APTD/apt.conf.main";
Dir::Etc::parts "$APTD/apt.conf.d";
Dir::Etc::sourcelist "$APTD/sources.list";
Dir::Etc::sourceparts "$APTD/sources.list.d";
Dir::Etc::preferences "$APTD/preferences";
Dir::Etc::preferencesparts "$APTD/preferences.d";
Dir::Etc::trusted "$APTD/trusted.gpg";
Dir::Etc::trustedparts "$APTD/trusted.gpg.d";
Dir::State "$APTD/state";
Dir::State::status "$APTD/state/status";
Dir::Cache "$APTD/cache";
Dir::Log "$APTD/log";
Debug::NoLocking "true";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::http::Timeout "30";
Acquire::https::Timeout "30";
Acquire::Retries "2";
// The machine's mirror may serve a frozen snapshot whose Release files are past
// their Valid-Until date (the machine's own apt config disables that check for
// the same reason).  Signatures are still verified.
Acquire::Check-Valid-Until "false";
EOF
    [[ -n "$hp" ]] && echo "Acquire::http::Proxy \"$hp\";" >>"$APTD/apt.conf"
    [[ -n "$hsp" ]] && echo "Acquire::https::Proxy \"$hsp\";" >>"$APTD/apt.conf"
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

# Short reason out of apt's output: the most specific error line.
apt_reason() {
    local r
    r="$(grep -E '^(E:|W: GPG error|W: Failed to fetch|W: The repository)' "$1" |
         grep -vE '^E: (Some index files|Unable to fetch some archives)' | tail -n 1 || true)"
    [[ -n "$r" ]] || r="$(grep -A1 -E '^Err:' "$1" | tail -n 1 || true)"
    [[ -n "$r" ]] || r="$(grep -E '^[EW]:' "$1" | tail -n 1 || true)"
    [[ -n "$r" ]] || r="$(tail -n 1 "$1")"
    [[ -n "$r" ]] || r="no output"
    echo "$r" | tr '\t' ' ' | sed -E 's/[[:space:]]+/ /g; s/^ //; s/ $//' | cut -c1-200
}

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

# fetch_suite SUITE LABEL:MINOR...: build $CACHE/root-SUITE afresh.
# Sets REASON for interpreters it could not provide.  Returns 1 on total failure,
# with the reason in SUITE_REASON.
SUITE_REASON=""
fetch_suite() {
    local suite="$1" m out spec
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

    # Which of the wanted interpreters does the suite offer?
    local want=() have=() label minor
    for spec in "$@"; do
        label="${spec%%:*}" minor="${spec##*:}"
        local pkgs=("python$minor-minimal" "libpython$minor-minimal" "libpython$minor-stdlib" "libpython$minor-dev")
        local p missing=""
        for p in "${pkgs[@]}"; do
            if ! papt_cache show --no-all-versions "$p" >/dev/null 2>&1; then missing+=" $p"; fi
        done
        if [[ -n "$missing" ]]; then
            REASON[$label]="download failed: not offered by $suite:$missing"
            continue
        fi
        want+=("${pkgs[@]}")
        have+=("$spec")
    done
    if ((${#have[@]} == 0)); then
        SUITE_REASON="download failed: no wanted python in $suite"
        return 1
    fi
    if [[ "$suite" == trixie ]]; then want+=(debian-archive-keyring); fi

    local debs=()
    mapfile -t debs < <(lib_closure libc6 libgcc-s1 "${want[@]}")
    log "$suite: downloading ${#debs[@]} packages: ${debs[*]}"
    out="$APTD/log/download.log"
    if ! (cd "$APTD/debs" && papt_get download "${debs[@]}") >"$out" 2>&1; then
        SUITE_REASON="download failed: $(apt_reason "$out")"
        return 1
    fi

    rm -rf "$new" "$old"
    mkdir -p "$new"
    local f list="$new/.pymemd-debs"
    : >"$list"
    for f in "$APTD"/debs/*.deb; do
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
    for spec in "${have[@]}"; do
        label="${spec%%:*}" minor="${spec##*:}"
        if out="$(PYTHONDONTWRITEBYTECODE=1 check_cmd run_in_root "$new" "$minor")"; then
            ok+=("$minor")
        else
            REASON[$label]="extracted interpreter fails: $out"
        fi
    done
    if ((${#ok[@]} == 0)); then
        SUITE_REASON="no interpreter from $suite runs"
        rm -rf "$new"
        return 1
    fi
    printf '%s\n' "${ok[@]}" >"$new/.pymemd-complete"
    if [[ -e "$CACHE/root-$suite" ]]; then mv "$CACHE/root-$suite" "$old"; fi
    mv "$new" "$CACHE/root-$suite"
    rm -rf "$old"
    for minor in "${ok[@]}"; do write_wrapper "$CACHE/root-$suite" "$minor"; done
    # The package lists and .debs are not needed once the root is built.
    rm -rf "$APTD"
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
        read -r label s minor <<<"$entry"
        [[ "$s" == "$suite" ]] || continue
        specs+=("$label:$minor")
        if [[ -n "$SKIP_ALL" ]]; then REASON[$label]="$SKIP_ALL"; continue; fi
        if ((REFRESH)) || ! probe "$label" "$suite" "$minor"; then pending+=("$label:$minor"); fi
    done
    [[ -n "$SKIP_ALL" ]] && continue
    ((${#pending[@]})) || continue

    # A recent failure is not retried on every run (keeps warm runs offline):
    # state/<label>.failed holds "epoch reason" of the last failed attempt.
    retry=()
    for spec in "${pending[@]}"; do
        label="${spec%%:*}" failed="$CACHE/state/${spec%%:*}.failed" when="" why=""
        if ((!REFRESH)) && [[ -f "$failed" ]]; then
            read -r when why <"$failed" || true
            if [[ "$when" =~ ^[0-9]+$ ]] && ((now - when < RETRY_AFTER)); then
                REASON[$label]="$why (at $(date -u -d "@$when" +%FT%TZ); retried after ${RETRY_AFTER}s or with --refresh)"
                continue
            fi
        fi
        retry+=("$spec")
    done
    ((${#retry[@]})) || continue

    # Rebuild the whole suite (its interpreters share one libc), keeping the old
    # root if nothing new works.
    if ! fetch_suite "$suite" "${specs[@]}"; then
        for spec in "${specs[@]}"; do
            label="${spec%%:*}"
            [[ -n "${REASON[$label]:-}" ]] || REASON[$label]="$SUITE_REASON"
        done
        rm -rf "$CACHE/root-$suite.new" "$CACHE/root-$suite.old"
    fi
    # Whatever is there now (new root, or the old one kept), probe it.
    for spec in "${specs[@]}"; do
        label="${spec%%:*}" minor="${spec##*:}"
        keep="${REASON[$label]:-}"
        if probe "$label" "$suite" "$minor"; then
            rm -f "$CACHE/state/$label.failed"
        else
            [[ -n "$keep" ]] && REASON[$label]="$keep"
            printf '%s %s\n' "$now" "$(printf '%s' "${REASON[$label]:-unknown failure}" | tr '\t\n' '  ')" \
                >"$CACHE/state/$label.failed"
        fi
    done
done

# Manifests, written whole each run.
tsv="$CACHE/interpreters.tsv.tmp.$$" hdr="$CACHE/headers.tsv.tmp.$$"
: >"$tsv"; : >"$hdr"
for entry in "${INTERPRETERS[@]}"; do
    read -r label suite minor <<<"$entry"
    if [[ "${STATUS[$label]:-}" == ok ]]; then
        printf '%s\t%s\t%s\n' "$label" "${VERSION[$label]}" "$CACHE/bin/debian-python$minor" >>"$tsv"
        printf '%s\t%s\t%s\t%s\n' "$minor" "${VERSION[$label]}" "${INCDIR[$label]}" "${PLATINC[$label]}" >>"$hdr"
        log "$label: ok $(printf %-8s "${VERSION[$label]}") $CACHE/bin/debian-python$minor"
    else
        r="${REASON[$label]:-unknown failure}"
        r="$(printf '%s' "$r" | tr '\t\n' '  ' | sed -E 's/ +$//')"
        printf '%s\tskip\t%s\n' "$label" "$r" >>"$tsv"
        log "$label: SKIP     $r"
    fi
done
mv -f "$tsv" "$CACHE/interpreters.tsv"
mv -f "$hdr" "$CACHE/headers.tsv"
exit 0
