#!/usr/bin/env bash
# Installs what building and testing pymemd needs, from Debian's packages; a no-op when all of it
# is there. Needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(
    gcc meson ninja-build pkg-config clang-format  # build, formatting check
    libmicrohttpd-dev libcjson-dev libproc2-dev libelf-dev libcurl4-gnutls-dev zlib1g-dev
    libsystemd-dev
    libncurses-dev                          # pymemctl top's screen (libncursesw)
    libgnutls28-dev libyaml-dev libcrypt-dev  # --web.config.file (TLS, YAML, bcrypt)
    openssl apache2-utils                   # test_tls.py: certificates, htpasswd -B hashes
    libdebuginfod-dev                       # debug files of stripped binaries from DEBUGINFOD_URLS
    libcmocka-dev                           # unit tests
    python3 util-linux binutils curl        # integration tests (target scripts, setpriv, nm)
    procps                                  # /bin/kill, the unit's ExecReload=
    prometheus systemd                      # promtool and a real Prometheus; systemd-analyze
    python3-prometheus-client               # the OpenMetrics reference parser (promtool has none)
    tmux groff-base                         # pymemctl top in a terminal; man page check
    ca-certificates dpkg                    # Debian interpreters for the test matrix
    make xz-utils dpkg-dev                  # upstream 3.13/3.13t built from the .orig tarball
    strace                                  # safety tests: a target another tracer holds
    build-essential debhelper lintian fakeroot  # the Debian package (tests/package), with dpkg-dev
    podman runc                             # the container image (tests/deploy); runc: crun
                                            # refuses a hybrid cgroup hierarchy
    python3.11-dbg debuginfod               # debug symbols test (may upgrade python3.11 to match)
    clang libclang-rt-14-dev                # libFuzzer harnesses (tests/fuzz): the runtime ships
                                            # in libclang-rt-14-dev, only recommended by clang
    chromium chromium-driver                # the page at / in headless Chromium (test_page.py),
    tesseract-ocr fonts-dejavu-core         # OCR of its screenshot, a font to draw its text
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
