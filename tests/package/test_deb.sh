#!/usr/bin/env bash
# The Debian package (debian/): built with dpkg-buildpackage from a copy of this tree, then
#   - lintian (Debian 12's) reports no error or warning (pedantic and info tags are printed);
#   - it holds the daemon, the client, both man pages, the unit (where Debian 12's systemd
#     looks: /lib/systemd/system), the sysusers snippet, the configuration as conffiles and the
#     examples, and the binaries' shared-library dependencies;
#   - postinst creates the pymemd user (systemd-sysusers) before enabling the unit.
# Installing it and running it is .ci/run's part, in a fresh Debian 12 root.
#
#     tests/package/test_deb.sh SOURCE_DIR [OUTPUT_DIR]
#
# OUTPUT_DIR (default: a temporary directory, removed) receives pymemd_*.deb. Prints PASS/FAIL
# lines and ends with "N passed, M failed, K skipped".
set -uo pipefail
src=$(cd "$1" && pwd)
out=${2:-}
passed=0 failed=0 skipped=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
skip() { echo "SKIP $*"; skipped=$((skipped + 1)); }
finish() { echo "$passed passed, $failed failed, $skipped skipped"; [ "$failed" -eq 0 ]; exit; }

for tool in dpkg-buildpackage dh lintian fakeroot; do
    if ! command -v "$tool" >/dev/null; then
        skip "Debian package: $tool is not installed (scripts/deps.sh installs dpkg-dev debhelper lintian fakeroot)"
        finish
    fi
done
work=$(mktemp -d /var/tmp/pymemd-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir "$work/pymemd"
# The tree as git has it (a checkout from `git archive` has no .git: every file but builds).
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -co --exclude-standard -z | grep -zv '^build' |
        tar --null -cf - -T -) | tar -C "$work/pymemd" -x
else
    (cd "$src" && tar --exclude='./build*' -cf - .) | tar -C "$work/pymemd" -x
fi
echo "== dpkg-buildpackage -b -us -uc in $work/pymemd"
if (cd "$work/pymemd" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
    pass "dpkg-buildpackage builds the package"
else
    tail -n 30 "$work/build.log"
    fail "dpkg-buildpackage builds the package"
    finish
fi
deb=$(ls "$work"/pymemd_*_amd64.deb)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
missing=()
for f in ./usr/sbin/pymemd ./usr/bin/pymemctl ./usr/share/man/man8/pymemd.8.gz \
    ./usr/share/man/man1/pymemctl.1.gz ./lib/systemd/system/pymemd.service \
    ./usr/lib/sysusers.d/pymemd.conf ./etc/pymemd/pymemd.conf ./etc/pymemd/web-config.yml \
    ./usr/share/pymemd/prometheus.yml ./usr/share/pymemd/pymemd.rules.yml \
    ./usr/share/pymemd/pymemd.json ./usr/share/doc/pymemd/copyright; do
    grep -qx -- "$f" <<<"$contents" || missing+=("$f")
done
if [ ${#missing[@]} -eq 0 ]; then pass "the package holds every file"; else fail "the package lacks ${missing[*]}"; fi
conffiles=$(dpkg-deb -f "$deb" Conffiles 2>/dev/null; dpkg-deb -I "$deb" conffiles 2>/dev/null)
if grep -qx /etc/pymemd/pymemd.conf <<<"$conffiles"; then
    pass "/etc/pymemd/pymemd.conf is a conffile"
else
    fail "/etc/pymemd/pymemd.conf is not a conffile ($conffiles)"
fi
depends=$(dpkg-deb -f "$deb" Depends)
if grep -q libmicrohttpd <<<"$depends" && grep -q 'systemd' <<<"$depends"; then
    pass "Depends: the libraries and systemd-sysusers ($depends)"
else
    fail "Depends lacks the libraries or systemd-sysusers: $depends"
fi
postinst=$(dpkg-deb -I "$deb" postinst 2>/dev/null)
u=$(grep -n 'systemd-sysusers' <<<"$postinst" | head -n 1 | cut -d: -f1)
e=$(grep -n "deb-systemd-helper enable 'pymemd.service'" <<<"$postinst" | head -n 1 | cut -d: -f1)
if [ -n "$u" ] && [ -n "$e" ] && [ "$u" -lt "$e" ]; then
    pass "postinst creates the pymemd user before enabling the unit"
else
    fail "postinst: systemd-sysusers at line ${u:-none}, enable at line ${e:-none}"
fi
# lintian refuses to run as root only by warning; its verdict is the same.
lint=$(cd "$work" && lintian --pedantic --info --display-experimental "$deb" 2>&1)
echo "$lint" | sed 's/^/  lintian: /'
if grep -qE '^[EW]: ' <<<"$lint"; then
    fail "lintian: errors or warnings (above)"
else
    pass "lintian: no error or warning ($(grep -cE '^[IPX]: ' <<<"$lint") informational tags, above)"
fi
[ -n "$out" ] && mkdir -p "$out" && cp "$deb" "$out/"
finish
