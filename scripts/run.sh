#!/usr/bin/env bash
# Quick start: installs what is missing, builds pymemd and runs it on its defaults, watching every
# CPython process it may read. Extra arguments go to pymemd (e.g. --once, --pid PID).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec build/pymemd "$@"
