/* elffile: what pymemd needs to know about an ELF file, read with libelf.
 *
 * Opened once per binary and cached by the caller (by device, inode and build-id); nothing here
 * touches a process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

typedef struct ElfFile ElfFile;

typedef struct ElfLoad {
    uint64_t vaddr;  /* p_vaddr */
    uint64_t offset; /* p_offset */
    uint64_t filesz;
    uint64_t memsz;
    uint64_t align;
    uint32_t flags; /* PF_R | PF_W | PF_X */
} ElfLoad;

typedef struct ElfSymbol {
    uint64_t value; /* st_value: a link-time virtual address */
    uint64_t size;  /* st_size */
    bool from_dynsym;
} ElfSymbol;

typedef struct ElfSection {
    uint64_t addr;   /* sh_addr */
    uint64_t size;   /* sh_size */
    uint64_t offset; /* sh_offset */
    bool nobits;     /* SHT_NOBITS (.bss-like): no bytes in the file */
} ElfSection;

/* Opens the ELF file at `path` (the caller passes /proc/PID/root/... paths). 64-bit little-endian
 * x86_64 files only; anything else is -ENOEXEC. The caller owns *ret. */
int elffile_open(const char *path, ElfFile **ret);
/* The same on an open descriptor; the ElfFile takes ownership of fd (closed on failure too). */
int elffile_open_fd(int fd, ElfFile **ret);
ElfFile *elffile_free(ElfFile *f);
DEFINE_CLEANUP_FUNC(ElfFile *, elffile_free)

/* ET_EXEC or ET_DYN (from <elf.h>). */
int elffile_type(const ElfFile *f);

/* The PT_LOAD program headers in file order; the array is owned by f. */
const ElfLoad *elffile_loads(const ElfFile *f, size_t *ret_n);

/* The load bias of a mapping: for ET_EXEC 0; for ET_DYN `map_start - (lowest PT_LOAD p_vaddr
 * rounded down to the page)`, where map_start is the start of the mapping with file offset 0.
 * Returns -ENOEXEC when the file has no PT_LOAD. */
int elffile_bias(const ElfFile *f, uint64_t map_start, uint64_t *ret_bias);

/* The NT_GNU_BUILD_ID note; *ret points into f. -ENOENT when there is none. */
int elffile_build_id(const ElfFile *f, const uint8_t **ret, size_t *ret_len);

/* Looks `name` up in .dynsym, then .symtab. Also accepts the names LTO and GCC give local
 * statics: `name.lto_priv.N`, `name.N` (e.g. narenas_highwater.lto_priv.0, version.0).
 * Defined symbols only. -ENOENT when not found. */
int elffile_symbol(const ElfFile *f, const char *name, ElfSymbol *ret);

/* Whether the file still has a .symtab (stripped binaries do not). */
bool elffile_has_symtab(const ElfFile *f);

/* Finds a section by name, e.g. ".PyRuntime". -ENOENT when absent. */
int elffile_section(const ElfFile *f, const char *name, ElfSection *ret);

/* Reads `len` bytes of the file's initialised contents at link-time address `vaddr` (translated
 * through the PT_LOAD segments: offset = p_offset + (vaddr - p_vaddr)). -EFAULT when the range is
 * not in the file (outside every segment, or in its .bss part). */
int elffile_read_vaddr(const ElfFile *f, uint64_t vaddr, void *buf, size_t len);
