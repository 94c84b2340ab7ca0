# shellcheck shell=bash
# Sourced by debian-pythons.sh and upstream-pythons.sh: apt run on a private configuration,
# state and cache, so that fetching test interpreters never reads or writes the machine's own
# apt state (nothing of /etc/apt is read, no machine hook runs).

# mirror: the Debian archive the machine's apt sources name (PYMEMD_DEBIAN_MIRROR overrides);
# fails when there is none. deb822 sources first, then one-line sources; a Debian archive URI
# ends in /debian.
mirror() {
    if [[ -n "${PYMEMD_DEBIAN_MIRROR:-}" ]]; then echo "${PYMEMD_DEBIAN_MIRROR%/}"; return 0; fi
    local u f
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

# write_apt_conf APTD WRITER: APTD/apt.conf, to be read through APT_CONFIG, pointing every
# configuration part at APTD's empty directories and every state at APTD; the machine's proxy
# settings, if any, are kept (read only). WRITER names the script in the file's comment.
write_apt_conf() {
    local aptd="$1" writer="$2" hp hsp
    hp="$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1 || true)"
    hsp="$(apt-config dump Acquire::https::Proxy 2>/dev/null | sed -n 's/^Acquire::https::Proxy "\(.*\)";$/\1/p' | head -n 1 || true)"
    cat >"$aptd/apt.conf" <<CONF
// Private apt configuration written by $writer (read via APT_CONFIG before
// anything else): nothing of /etc/apt is read, no machine hook runs, no state outside
// $aptd is written.
Dir::Etc::main "$aptd/apt.conf.main";
Dir::Etc::parts "$aptd/apt.conf.d";
Dir::Etc::sourcelist "$aptd/sources.list";
Dir::Etc::sourceparts "$aptd/sources.list.d";
Dir::Etc::preferences "$aptd/preferences";
Dir::Etc::preferencesparts "$aptd/preferences.d";
Dir::Etc::trusted "$aptd/trusted.gpg";
Dir::Etc::trustedparts "$aptd/trusted.gpg.d";
Dir::State "$aptd/state";
Dir::State::status "$aptd/state/status";
Dir::Cache "$aptd/cache";
Dir::Log "$aptd/log";
Debug::NoLocking "true";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::IndexTargets::deb-src::Sources::KeepCompressed "true";
Acquire::GzipIndexes "true";
Acquire::http::Timeout "30";
Acquire::https::Timeout "30";
Acquire::Retries "2";
// The machine's mirror may serve a frozen snapshot whose Release files are past their
// Valid-Until date (the machine's own apt config disables that check for the same reason).
// Signatures are still verified.
Acquire::Check-Valid-Until "false";
CONF
    [[ -n "$hp" ]] && echo "Acquire::http::Proxy \"$hp\";" >>"$aptd/apt.conf"
    [[ -n "$hsp" ]] && echo "Acquire::https::Proxy \"$hsp\";" >>"$aptd/apt.conf"
    return 0
}

# apt_reason LOG: the most specific error line of apt's output, short.
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
