#!/usr/bin/env bash
# Checks the shipped configuration files:
#   config/prometheus.yml        promtool check config (this also loads the rule file)
#   config/pymemd.rules.yml      promtool check rules, promtool test rules tests/config/rules_test.yml
#   systemd/pymemd.sysusers      systemd-sysusers --dry-run into an empty root
#   systemd/pymemd.service       systemd-analyze verify (after a self-check that it catches
#                                mistakes), the system call filter, the invariants pymemd
#                                depends on, and systemd-analyze security --offline (score only)
#
# Usage: tests/config/check.sh [PYMEMD_BINARY]      (default: build/pymemd in the source tree)
# Meson runs it as the `config-files` test (suite `config`) with the built pymemd.
#
# Needs no root and no running systemd. A missing tool is reported as "SKIP: ... not
# installed". Exit status 0 only if every check that ran passed. The last line is
# "N passed, M failed, K skipped".
set -u
set -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ $# -ge 1 ]]; then
    binary=$(realpath -m -- "$1")   # relative to the caller's directory
else
    binary=$root/build/pymemd
fi
cd "$root" || exit 1

unit=systemd/pymemd.service
sysusers=systemd/pymemd.sysusers

npass=0 nfail=0 nskip=0
pass() { echo "PASS: $*"; npass=$((npass + 1)); }
fail() { echo "FAIL: $*"; nfail=$((nfail + 1)); }
skip() { echo "SKIP: $*"; nskip=$((nskip + 1)); }
indent() { sed 's/^/    /'; }
have() { command -v "$1" >/dev/null 2>&1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pymemd-config-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# Deterministic tool output: no colours, no pager, warnings shown whatever the caller's env.
export SYSTEMD_COLORS=0 SYSTEMD_PAGER='' SYSTEMD_LESS='' SYSTEMD_LOG_LEVEL=warning NO_COLOR=1

# ---------------------------------------------------------------------------- Prometheus
run_promtool() {   # description, promtool arguments...
    local what=$1
    shift
    if ! have promtool; then
        skip "$what: promtool not installed (Debian: apt-get install prometheus)"
        return
    fi
    echo "== promtool $*"
    if promtool "$@" 2>&1 | indent; then
        pass "$what"
    else
        fail "$what"
    fi
}
run_promtool "promtool check config config/prometheus.yml" check config config/prometheus.yml
run_promtool "promtool check rules config/pymemd.rules.yml" check rules config/pymemd.rules.yml
run_promtool "promtool test rules tests/config/rules_test.yml" test rules tests/config/rules_test.yml

# ---------------------------------------------------------------------------- sysusers
# The user the unit runs as must be the one the sysusers snippet creates, and the snippet must
# parse without a warning. --dry-run into an empty root writes nothing, so no root is needed.
unit_user=$(sed -n 's/^User=//p' "$unit" | tail -n 1)
if ! have systemd-sysusers; then
    skip "systemd-sysusers $sysusers: systemd-sysusers not installed"
else
    echo "== systemd-sysusers --dry-run $sysusers (unit runs as User=$unit_user)"
    mkdir -p "$tmp/sysroot"
    out=$(SYSTEMD_LOG_LEVEL=info systemd-sysusers --dry-run --root="$tmp/sysroot" - <"$sysusers" 2>&1)
    rc=$?
    echo "$out" | indent
    if [[ $rc -ne 0 ]]; then
        fail "systemd-sysusers $sysusers: exit status $rc"
    elif grep -q '^-:[0-9]' <<<"$out"; then
        fail "systemd-sysusers $sysusers: warnings about the file (lines starting with -:LINE:)"
    elif [[ -z $unit_user ]] || ! grep -q "user '$unit_user'" <<<"$out"; then
        fail "systemd-sysusers $sysusers: does not create User=${unit_user:-(none)} of $unit"
    else
        pass "systemd-sysusers $sysusers creates user $unit_user"
    fi
fi

# ---------------------------------------------------------------------------- systemd unit
# systemd-analyze verify needs no running systemd: it loads the unit in a test-mode manager
# (tested in a container without systemd as PID 1, systemd 252). Plain `verify` only logs an
# unknown directive or an unparsable value ("FILE:LINE: Unknown key ..., ignoring") and still
# exits 0. With --recursive-errors=no, which also keeps errors in units we do not ship out of
# the result, systemd 252 exits 1 for those too, but older versions may not. So a unit counts
# as clean only if verify exits 0 AND prints nothing about pymemd.service. A self-check proves
# that this criterion catches a typo'd directive, a bad value and a missing binary.
#
# verify needs the ExecStart= binary to exist. It checks a copy of the unit whose ExecStart
# points at the built binary. The unit keeps its name pymemd.service, and its directory comes
# first in verify's unit search path.

make_unit() {   # dir, sed script -> prints dir/pymemd.service, a patched copy of the unit
    mkdir -p "$1"
    sed -e "s|^ExecStart=/usr/sbin/pymemd |ExecStart=$binary |" -e "$2" "$unit" >"$1/pymemd.service"
    echo "$1/pymemd.service"
}

# Runs verify on a unit file. Sets verify_out and verify_rc. Returns 0 when clean.
verify_unit() {
    verify_out=$(systemd-analyze verify --man=no --recursive-errors=no "$1" 2>&1)
    verify_rc=$?
    [[ $verify_rc -eq 0 ]] && ! grep -q 'pymemd\.service' <<<"$verify_out"
}

if ! have systemd-analyze; then
    skip "systemd-analyze verify $unit: systemd-analyze not installed"
    skip "systemd-analyze verify self-check: systemd-analyze not installed"
elif [[ ! -x $binary ]]; then
    fail "systemd-analyze verify $unit: pymemd binary $binary not found or not executable (build it first, or pass its path)"
    fail "systemd-analyze verify self-check: needs the pymemd binary too"
else
    good=$(make_unit "$tmp/good" '')
    echo "== systemd-analyze verify $unit (ExecStart=$binary)"
    if verify_unit "$good"; then
        echo "    (no diagnostics)"
        pass "systemd-analyze verify $unit"
    else
        echo "$verify_out" | indent
        fail "systemd-analyze verify $unit: exit status $verify_rc, diagnostics above"
    fi

    # Self-check: each broken copy must be flagged, at the broken line where there is one.
    echo "== self-check: systemd-analyze verify must reject broken copies of the unit"
    selfcheck_ok=1
    line_of() { grep -n -m1 "$1" "$unit" | cut -d: -f1; }
    n=$(line_of '^ProtectSystem=strict$')
    typo=$(make_unit "$tmp/typo" "${n}s/^ProtectSystem=/ProtectSytem=/")
    badval=$(make_unit "$tmp/badval" "${n}s/=strict$/=strcit/")
    nobin=$(make_unit "$tmp/nobin" "s|^ExecStart=[^ ]*|ExecStart=$tmp/no-such-pymemd|")
    for c in "typo'd directive ProtectSytem= (line $n)|$typo|pymemd\\.service:$n:" \
        "invalid value ProtectSystem=strcit (line $n)|$badval|pymemd\\.service:$n:" \
        "ExecStart= binary that does not exist|$nobin|no-such-pymemd"; do
        IFS='|' read -r what file expect <<<"$c"
        if verify_unit "$file"; then
            echo "    NOT detected: $what"
            selfcheck_ok=
        elif ! grep -q -- "$expect" <<<"$verify_out"; then
            echo "    detected, but not at the broken spot: $what"
            echo "$verify_out" | indent | indent
            selfcheck_ok=
        else
            echo "    detected: $what (exit status $verify_rc)"
            grep -- "$expect" <<<"$verify_out" | head -n 2 | indent | indent
        fi
    done
    if [[ -n $selfcheck_ok ]]; then
        pass "systemd-analyze verify self-check (typo, bad value, missing binary all caught)"
    else
        fail "systemd-analyze verify self-check: verify does not catch mistakes here, so its PASS above means nothing"
    fi
fi

# System calls. pymemd needs ptrace (freezing a target for the object census) and
# process_vm_readv (every read). Work out what the unit's SystemCallFilter= lines allow, the
# way systemd combines them: the first line sets the mode (allow list, or deny list with ~),
# later lines add to it or take away from it. @groups are expanded with
# `systemd-analyze syscall-filter`, which knows the sets of the installed systemd.
declare -A group_cache=()
expand() {   # token -> syscall names, one a line; returns 1 for an unknown @group
    local tok=${1%%:*} line out
    if [[ $tok != @* ]]; then
        echo "$tok"
        return 0
    fi
    if [[ -z ${group_cache[$tok]+x} ]]; then
        out=$(systemd-analyze syscall-filter --no-pager "$tok" 2>/dev/null) || return 1
        group_cache[$tok]=$(while read -r line; do
            case $line in
                "" | "#"* | "$tok") ;;
                @*) expand "$line" || exit 1 ;;
                *) echo "$line" ;;
            esac
        done <<<"$out") || return 1
    fi
    [[ -n ${group_cache[$tok]} ]] && echo "${group_cache[$tok]}"
    return 0
}

if ! have systemd-analyze; then
    skip "SystemCallFilter allows ptrace and process_vm_readv: systemd-analyze not installed"
else
    echo "== SystemCallFilter= of $unit, expanded with systemd-analyze syscall-filter"
    declare -A fset=()
    mode='' filter_ok=1
    while IFS= read -r value; do
        echo "    SystemCallFilter=$value"
        if [[ -z $value ]]; then   # an empty assignment resets the filter
            fset=() mode=''
            continue
        fi
        neg=
        [[ $value == "~"* ]] && neg=1 value=${value#\~}
        [[ -z $mode ]] && mode=$([[ -n $neg ]] && echo deny || echo allow)
        for tok in $value; do
            names=$(expand "$tok") || {
                echo "    unknown system call group $tok"
                filter_ok=
                continue
            }
            for s in $names; do
                # allow mode: the set is what is allowed; deny mode: what is denied.
                if [[ ($mode == allow && -z $neg) || ($mode == deny && -n $neg) ]]; then
                    fset[$s]=1
                else
                    unset 'fset[$s]'
                fi
            done
        done
    done < <(sed -n 's/^SystemCallFilter=//p' "$unit")
    allowed() { [[ -z $mode ]] || { [[ $mode == allow ]] && [[ -n ${fset[$1]+x} ]]; } ||
        { [[ $mode == deny ]] && [[ -z ${fset[$1]+x} ]]; }; }
    for s in ptrace process_vm_readv; do
        if allowed "$s"; then
            echo "    $s: allowed"
        else
            echo "    $s: BLOCKED"
            filter_ok=
        fi
    done
    # What privilege separation needs (the sampler and the HTTP listener process).
    for s in memfd_create socketpair sendmsg recvmsg execve prctl capget fcntl; do
        if allowed "$s"; then
            echo "    $s: allowed"
        else
            echo "    $s: BLOCKED (privilege separation needs it)"
            filter_ok=
        fi
    done
    for s in process_vm_writev open_by_handle_at; do   # information: what the unit keeps out
        allowed "$s" && echo "    $s: allowed" || echo "    $s: blocked"
    done
    echo "    (mode: ${mode:-no filter}, ${#fset[@]} system calls in the ${mode:-empty} set)"
    if [[ -n $filter_ok ]]; then
        pass "SystemCallFilter allows ptrace and process_vm_readv"
    else
        fail "SystemCallFilter would block what pymemd needs (see above)"
    fi
fi

# Settings a later edit must not lose or add, because pymemd stops working without a visible
# error: targets hidden from /proc, capabilities gone, a user namespace that voids
# CAP_SYS_PTRACE. These are plain text checks, so they run without any tool.
echo "== invariants of $unit"
inv_ok=1
last() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }   # the effective (last) assignment
need() {   # status of the test just run, description
    if [[ $1 -eq 0 ]]; then echo "    ok: $2"; else echo "    VIOLATED: $2"; inv_ok=''; fi
}
ambient=" $(last AmbientCapabilities) " bounding=" $(last CapabilityBoundingSet) "
families=" $(last RestrictAddressFamilies) " user=$(last User)
[[ $(last Type) == notify ]]
need $? "Type=notify"
[[ -n $(last WatchdogSec) ]]
need $? "WatchdogSec= set"
[[ $(last ExecStart) == "/usr/sbin/pymemd --config /etc/pymemd/pymemd.conf" ]]
need $? "ExecStart=/usr/sbin/pymemd --config /etc/pymemd/pymemd.conf"
[[ -n $user && $user != root && $user != 0 ]]
need $? "not root: User= is set and is not root"
[[ $ambient == *" CAP_SYS_PTRACE "* ]]
need $? "AmbientCapabilities contains CAP_SYS_PTRACE"
missing=''
for c in $ambient; do [[ $bounding == *" $c "* ]] || missing+=" $c"; done
[[ -z $missing ]]
need $? "every ambient capability is in CapabilityBoundingSet${missing:+ (missing:$missing)}"
[[ $(last NoNewPrivileges) == yes ]]
need $? "NoNewPrivileges=yes"
[[ ! $(last ProtectProc) =~ ^(invisible|noaccess|ptraceable)$ ]]
need $? "ProtectProc= does not hide targets (not invisible/noaccess/ptraceable)"
[[ $(last ProcSubset) != pid ]]
need $? "ProcSubset= is not pid"
[[ ! $(last PrivateUsers) =~ ^(yes|true|on|1|self|identity)$ ]]
need $? "PrivateUsers= is off (CAP_SYS_PTRACE must count in the host's user namespace)"
[[ $families == *" AF_UNIX "* && $families == *" AF_INET "* && $families == *" AF_INET6 "* ]]
need $? "RestrictAddressFamilies keeps AF_UNIX (sd_notify) and AF_INET/AF_INET6 (HTTP)"
if [[ -n $inv_ok ]]; then
    pass "invariants of $unit"
else
    fail "invariants of $unit (see above)"
fi

# Exposure score, for information: pymemd holds CAP_SYS_PTRACE by design, so the score is
# reported, never judged. --offline appeared in systemd 250.
if ! have systemd-analyze; then
    skip "systemd-analyze security --offline: systemd-analyze not installed"
elif ! grep -q -- '--offline' <<<"$(systemd-analyze --help 2>/dev/null)"; then
    skip "systemd-analyze security --offline: not supported by $(systemd-analyze --version | head -n 1)"
elif [[ ! -x $binary ]]; then
    fail "systemd-analyze security --offline: pymemd binary $binary not found"
else
    echo "== systemd-analyze security --offline=yes $unit (exposed settings, then the score)"
    sec=$(make_unit "$tmp/security" '')
    out=$(systemd-analyze security --offline=yes --threshold=100 --no-pager "$sec" 2>&1)
    rc=$?
    score=$(grep -o 'Overall exposure level for pymemd.service: .*' <<<"$out")
    if [[ $rc -eq 0 && -n $score ]]; then
        grep '✗' <<<"$out" | sed 's/  */ /g' | indent
        echo "    $score"
        pass "systemd-analyze security --offline (${score#Overall exposure level for pymemd.service: })"
    else
        echo "$out" | indent
        fail "systemd-analyze security --offline: exit status $rc"
    fi
fi

echo "$npass passed, $nfail failed, $nskip skipped"
[[ $nfail -eq 0 ]]
