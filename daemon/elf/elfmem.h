/* elfmem: facts read from an ELF image as a process has it mapped, not from its file.
 *
 * A running binary may be gone from disk (replaced by an upgrade: /proc/PID/exe "(deleted)") or
 * unreadable to pymemd, yet its first page is still mapped in the target: the ELF header, the
 * program headers and, in every toolchain's default link, the build-id note. The build-id names
 * the matching debug file (/usr/lib/debug/.build-id/xx/yyyy.debug, or a debuginfod server). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "remote/rmem.h"

/* Longest build-id accepted: GNU ld writes 20 bytes (sha1), 16 (md5/uuid) or up to 64 for a
 * user-chosen 0x... id. */
#define ELFMEM_BUILD_ID_MAX 64

/* Reads the NT_GNU_BUILD_ID note of the ELF image mapped at `base` (the start of the mapping of
 * file offset 0) in the target behind `r`: the ELF header, then PT_NOTE through the program
 * headers, each note at load bias + p_vaddr. Copies the id to ret_id (at least ELFMEM_BUILD_ID_MAX
 * bytes) and its length to *ret_len. -ENOEXEC when the bytes at base are not a 64-bit little-endian
 * ELF header, -EBADMSG when the headers are out of bounds, -ENOENT when there is no build-id note;
 * read errors of `r` as they come. Nothing is written on failure. */
int elfmem_build_id(Rmem *r, RAddr base, uint8_t *ret_id, size_t *ret_len);

/* Lower-case hex of a build-id into buf (2 * len + 1 bytes, truncated to fit size). */
void elfmem_build_id_hex(const uint8_t *id, size_t len, char *buf, size_t size);
