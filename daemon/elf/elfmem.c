/* elfmem: the build-id of an ELF image, read from a target's memory.
 *
 * The bytes are the target's and so hostile: every count, offset and size read from them is
 * bounded before use, and no read goes outside the headers' own claims. */
#include "elf/elfmem.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Program headers read at most: real binaries have about 15; glibc's loader and the kernel accept
 * any number, but 64 covers every toolchain and keeps the read to 3.5 KiB. */
#define PHDR_MAX 64
/* A note segment larger than this is not a build-id segment (real ones are under 300 bytes, the
 * ABI tag, the GNU property note and the build-id together). */
#define NOTE_SEGMENT_MAX 4096
/* The x86_64 base page: p_vaddr of the lowest PT_LOAD, rounded down to it, maps to `base`. */
#define PAGE_SIZE_X86_64 4096ULL

/* Looks for NT_GNU_BUILD_ID among the notes in buf. Notes are aligned to 4 bytes, or to 8 when
 * the segment says so (gABI "Note Section"; both occur, .note.gnu.property is 8-aligned). */
static int find_build_id(const uint8_t *buf, size_t len, uint64_t align, uint8_t *ret_id,
                         size_t *ret_len)
{
    uint64_t a = align == 8 ? 8 : 4;
    size_t pos = 0;
    while (len - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, buf + pos, sizeof(nh));
        uint64_t name_at = pos + sizeof(nh);
        uint64_t desc_at = (name_at + nh.n_namesz + a - 1) & ~(a - 1);
        uint64_t next = (desc_at + (uint64_t)nh.n_descsz + a - 1) & ~(a - 1);
        if (desc_at + nh.n_descsz > len)
            return -EBADMSG;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp(buf + name_at, "GNU", 4) == 0) {
            if (nh.n_descsz == 0 || nh.n_descsz > ELFMEM_BUILD_ID_MAX)
                return -EBADMSG;
            memcpy(ret_id, buf + desc_at, nh.n_descsz);
            *ret_len = nh.n_descsz;
            return 0;
        }
        if (next <= pos)
            return -EBADMSG;
        pos = next > len ? len : (size_t)next;
    }
    return -ENOENT;
}

int elfmem_build_id(Rmem *r, RAddr base, uint8_t *ret_id, size_t *ret_len)
{
    Elf64_Ehdr eh;
    int k = rmem_read(r, base, &eh, sizeof(eh));
    if (k < 0)
        return k;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return -ENOEXEC;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > PHDR_MAX ||
        eh.e_phoff < sizeof(eh) || eh.e_phoff > PAGE_SIZE_X86_64)
        return -EBADMSG;

    Elf64_Phdr ph[PHDR_MAX];
    k = rmem_read(r, base + eh.e_phoff, ph, eh.e_phnum * sizeof(Elf64_Phdr));
    if (k < 0)
        return k;

    /* The lowest PT_LOAD, page aligned, is what the mapping at `base` holds: for ET_EXEC the bias
     * comes out 0, for ET_DYN it is where the loader put the object. */
    uint64_t lowest = UINT64_MAX;
    for (unsigned i = 0; i < eh.e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < lowest)
            lowest = ph[i].p_vaddr;
    if (lowest == UINT64_MAX)
        return -EBADMSG;
    uint64_t bias = base - (lowest & ~(PAGE_SIZE_X86_64 - 1));

    bool bad = false;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_NOTE)
            continue;
        if (ph[i].p_filesz == 0 || ph[i].p_filesz > NOTE_SEGMENT_MAX || ph[i].p_vaddr < lowest) {
            bad = true;
            continue;
        }
        uint8_t buf[NOTE_SEGMENT_MAX];
        k = rmem_read(r, bias + ph[i].p_vaddr, buf, ph[i].p_filesz);
        if (k < 0)
            return k;
        k = find_build_id(buf, ph[i].p_filesz, ph[i].p_align, ret_id, ret_len);
        if (k == 0)
            return 0;
        if (k == -EBADMSG)
            bad = true;
    }
    return bad ? -EBADMSG : -ENOENT;
}

void elfmem_build_id_hex(const uint8_t *id, size_t len, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = 0;
    for (size_t i = 0; i < len && 2 * i + 2 < size; i++)
        snprintf(buf + 2 * i, 3, "%02x", id[i]);
}
