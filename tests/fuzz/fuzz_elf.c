/* fuzz_elf: the ELF reader (elffile) over a file whose bytes are the input, as pymemd would open
 * a target's binary through /proc/PID/root: every accessor locate.c uses, the symbols it looks
 * up (the LTO and GCC suffixed forms included), the sections and the reads through PT_LOAD. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elf/elffile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const symbols[] = {
    "_PyRuntime",
    "Py_Version",
    "version",
    "narenas_highwater",
    "_Py_AllocatedBlocks",
    "_PyRuntime.lto_priv.0",
    "",
    "main",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0)
            abort();
        done += (size_t)k;
    }
    ElfFile *f = NULL;
    if (elffile_open_fd(fd, &f) < 0)
        return 0; /* fd is closed on failure too */

    (void)elffile_type(f);
    size_t n = 0;
    const ElfLoad *loads = elffile_loads(f, &n);
    uint8_t buf[256];
    for (size_t i = 0; i < n; i++) {
        (void)elffile_read_vaddr(f, loads[i].vaddr, buf, sizeof(buf));
        (void)elffile_read_vaddr(f, loads[i].vaddr + loads[i].filesz - 8, buf, 16);
    }
    uint64_t bias;
    (void)elffile_bias(f, 0x7f0000000000, &bias);
    (void)elffile_bias(f, 0, &bias);
    const uint8_t *id;
    size_t idlen;
    if (elffile_build_id(f, &id, &idlen) == 0 && idlen)
        memcpy(buf, id, idlen < sizeof(buf) ? idlen : sizeof(buf));
    for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
        ElfSymbol s;
        if (elffile_symbol(f, symbols[i], &s) == 0)
            (void)elffile_read_vaddr(f, s.value, buf, s.size < sizeof(buf) ? s.size : sizeof(buf));
    }
    (void)elffile_has_symtab(f);
    ElfSection sec;
    if (elffile_section(f, ".PyRuntime", &sec) == 0)
        (void)elffile_read_vaddr(f, sec.addr, buf, 64);
    (void)elffile_section(f, ".note.gnu.build-id", &sec);
    elffile_free(f);
    return 0;
}
