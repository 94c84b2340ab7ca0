#!/usr/bin/env bash
# Installs what is missing, builds pymemd and runs every test: the cmocka unit tests and the
# integration matrix against every CPython on the machine (pyenv's, the system python3, and
# Debian's 3.13/3.14/3.15, fetched into a cache on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
tests/integration/debian-pythons.sh || echo "test.sh: Debian interpreters unavailable; the matrix will list them as skipped" >&2
werror=false
[ "${CI:-}" = true ] && werror=true
[ -d build ] || meson setup build -Dwerror=$werror >/dev/null
meson configure build -Dwerror=$werror
ninja -C build
meson test -C build --print-errorlogs "$@"
