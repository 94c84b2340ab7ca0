#!/usr/bin/env bash
# Writes the seed corpus of fuzz_elf (tests/fuzz/corpus/elf/): small ELF files with what
# elffile looks for (a .PyRuntime section, _PyRuntime, a static `version`, a build-id note),
# static and shared, with and without .symtab, and an LTO build. Page size 4 KiB and no separate
# code segment keep each under 8 KiB. Usage: tests/fuzz/elf-seeds.sh [DIR]
set -euo pipefail
out=${1:-$(dirname "$0")/corpus/elf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/tiny.c" <<'C'
char _PyRuntime[64] __attribute__((section(".PyRuntime"))) = "runtime";
const char version[16] = "3.13.0";
static long narenas_highwater = 3;
long *p = &narenas_highwater;
void _start(void) { for (;;) ; }
C
cat >"$tmp/lto.c" <<'C'
static int version = 1;
int get(void) { return version; }
int main(void) { return get(); }
C
flags=(-Os -Wl,-z,max-page-size=0x1000 -Wl,-z,noseparate-code -Wl,--build-id)
mkdir -p "$out"
gcc "${flags[@]}" -nostdlib -static -o "$out/tiny" "$tmp/tiny.c"
strip -o "$out/tiny-stripped" "$out/tiny"
gcc "${flags[@]}" -nostdlib -shared -fPIC -o "$out/tiny.so" "$tmp/tiny.c"
gcc "${flags[@]}" -flto -o "$out/lto" "$tmp/lto.c"
