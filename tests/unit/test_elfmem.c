/* elfmem: the build-id of an ELF image as a target has it mapped, through the fake reader. Images
 * are laid out here the way a linker does (ELF header, program headers, notes in the first page);
 * one more test reads the build-id of this test program from its own memory and compares it with
 * what libelf reads from its file. */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "elf/elffile.h"
#include "elf/elfmem.h"
#include "remote/rmem.h"

#define PAGE 4096

typedef struct Image {
    _Alignas(8) uint8_t page[PAGE]; /* ELF structures are cast onto it */
    size_t note_at;                 /* where the next note goes */
} Image;

static const uint8_t ID[20] = {0xc5, 0x61, 0xf3, 0xaa, 0x72, 0x32, 0xf2, 0xbd, 0x6a, 0xc6,
                               0xd5, 0x6b, 0xd4, 0x75, 0xf1, 0xc1, 0x54, 0xa0, 0x04, 0x86};

/* An ELF header of `type` with `nph` program headers right after it; notes from 0x300. */
static void image_init(Image *im, uint16_t type, uint16_t nph)
{
    memset(im, 0, sizeof(*im));
    Elf64_Ehdr *eh = (void *)im->page;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = type;
    eh->e_machine = EM_X86_64;
    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = nph;
    im->note_at = 0x300;
}

static Elf64_Phdr *phdr(Image *im, unsigned i)
{
    return (void *)(im->page + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

/* Appends a note (4-byte aligned, or 8) and returns its offset in the page. */
static size_t add_note(Image *im, const char *name, uint32_t type, const void *desc, uint32_t len,
                       size_t align)
{
    size_t at = im->note_at;
    Elf64_Nhdr nh = {.n_namesz = (uint32_t)strlen(name) + 1, .n_descsz = len, .n_type = type};
    memcpy(im->page + at, &nh, sizeof(nh));
    memcpy(im->page + at + sizeof(nh), name, nh.n_namesz);
    size_t d = (at + sizeof(nh) + nh.n_namesz + align - 1) & ~(align - 1);
    memcpy(im->page + d, desc, len);
    im->note_at = (d + len + align - 1) & ~(align - 1);
    return at;
}

static int read_id(Image *im, RAddr base, uint8_t *id, size_t *len)
{
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_fake_new(&r), 0);
    assert_int_equal(rmem_fake_add(r, base, im->page, sizeof(im->page)), 0);
    return elfmem_build_id(r, base, id, len);
}

/* A PIE or shared library loaded at 0x7f0000000000: notes at bias + p_vaddr, behind a GNU property
 * note (8-aligned) and the ABI tag, as GNU ld lays them out. */
static void shared_object(void **state)
{
    (void)state;
    Image im;
    image_init(&im, ET_DYN, 3);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0, .p_filesz = PAGE, .p_align = PAGE};
    uint8_t prop[16] = {0};
    size_t a = add_note(&im, "GNU", NT_GNU_PROPERTY_TYPE_0, prop, sizeof(prop), 8);
    *phdr(&im, 1) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = a, .p_filesz = im.note_at - a, .p_align = 8};
    size_t b = add_note(&im, "GNU", NT_GNU_ABI_TAG, "\0\0\0\0\3\0\0\0\2\0\0\0\0\0\0\0", 16, 4);
    add_note(&im, "GNU", NT_GNU_BUILD_ID, ID, sizeof(ID), 4);
    *phdr(&im, 2) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = b, .p_filesz = im.note_at - b, .p_align = 4};

    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len = 0;
    assert_int_equal(read_id(&im, 0x7f0000000000, id, &len), 0);
    assert_int_equal(len, sizeof(ID));
    assert_memory_equal(id, ID, sizeof(ID));

    char hex[2 * ELFMEM_BUILD_ID_MAX + 1];
    elfmem_build_id_hex(id, len, hex, sizeof(hex));
    assert_string_equal(hex, "c561f3aa7232f2bd6ac6d56bd475f1c154a00486");
}

/* A non-PIE executable linked at 0x400000 and mapped there: the bias is 0, p_vaddr is absolute. */
static void fixed_executable(void **state)
{
    (void)state;
    Image im;
    image_init(&im, ET_EXEC, 2);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0x400000, .p_filesz = PAGE, .p_align = PAGE};
    size_t a = add_note(&im, "GNU", NT_GNU_BUILD_ID, ID, 8, 4);
    *phdr(&im, 1) = (Elf64_Phdr){
        .p_type = PT_NOTE, .p_vaddr = 0x400000 + a, .p_filesz = im.note_at - a, .p_align = 4};
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len = 0;
    assert_int_equal(read_id(&im, 0x400000, id, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(id, ID, 8);
}

/* Notes of other owners with the same type number are not the build-id. */
static void other_owner_skipped(void **state)
{
    (void)state;
    Image im;
    image_init(&im, ET_DYN, 2);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0, .p_filesz = PAGE, .p_align = PAGE};
    uint8_t other[20];
    memset(other, 0xee, sizeof(other));
    size_t a = add_note(&im, "Go", NT_GNU_BUILD_ID, other, sizeof(other), 4);
    add_note(&im, "GNU", NT_GNU_BUILD_ID, ID, sizeof(ID), 4);
    *phdr(&im, 1) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = a, .p_filesz = im.note_at - a, .p_align = 4};
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len = 0;
    assert_int_equal(read_id(&im, 0x10000, id, &len), 0);
    assert_memory_equal(id, ID, sizeof(ID));
}

static void no_build_id(void **state)
{
    (void)state;
    Image im;
    image_init(&im, ET_DYN, 2);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0, .p_filesz = PAGE, .p_align = PAGE};
    size_t a = add_note(&im, "GNU", NT_GNU_ABI_TAG, "\0\0\0\0\3\0\0\0\2\0\0\0\0\0\0\0", 16, 4);
    *phdr(&im, 1) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = a, .p_filesz = im.note_at - a, .p_align = 4};
    uint8_t id[ELFMEM_BUILD_ID_MAX] = {0};
    size_t len = 12345;
    assert_int_equal(read_id(&im, 0x10000, id, &len), -ENOENT);
    assert_int_equal(len, 12345); /* untouched on failure */
}

/* Hostile headers: each is refused, none makes a read outside what it claims. */
static void hostile_headers(void **state)
{
    (void)state;
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len;
    Image im;

    image_init(&im, ET_DYN, 1);
    im.page[0] = 0x7e; /* not ELF */
    assert_int_equal(read_id(&im, 0x10000, id, &len), -ENOEXEC);

    image_init(&im, ET_DYN, 1);
    im.page[EI_CLASS] = ELFCLASS32;
    assert_int_equal(read_id(&im, 0x10000, id, &len), -ENOEXEC);

    image_init(&im, ET_DYN, 60000); /* more program headers than any binary has */
    assert_int_equal(read_id(&im, 0x10000, id, &len), -EBADMSG);

    image_init(&im, ET_DYN, 1);
    ((Elf64_Ehdr *)im.page)->e_phoff = 1u << 30; /* far outside the first page */
    assert_int_equal(read_id(&im, 0x10000, id, &len), -EBADMSG);

    image_init(&im, ET_DYN, 1); /* no PT_LOAD: nothing says where the image starts */
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = 0x300, .p_filesz = 0x20, .p_align = 4};
    assert_int_equal(read_id(&im, 0x10000, id, &len), -EBADMSG);

    /* A note whose descriptor runs past its segment. */
    image_init(&im, ET_DYN, 2);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0, .p_filesz = PAGE, .p_align = PAGE};
    size_t a = add_note(&im, "GNU", NT_GNU_BUILD_ID, ID, sizeof(ID), 4);
    ((Elf64_Nhdr *)(void *)(im.page + a))->n_descsz = 0xffffff00u;
    *phdr(&im, 1) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = a, .p_filesz = im.note_at - a, .p_align = 4};
    assert_int_equal(read_id(&im, 0x10000, id, &len), -EBADMSG);

    /* A build-id longer than any tool writes. */
    image_init(&im, ET_DYN, 2);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0, .p_filesz = PAGE, .p_align = PAGE};
    uint8_t big[100] = {1};
    a = add_note(&im, "GNU", NT_GNU_BUILD_ID, big, sizeof(big), 4);
    *phdr(&im, 1) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = a, .p_filesz = im.note_at - a, .p_align = 4};
    assert_int_equal(read_id(&im, 0x10000, id, &len), -EBADMSG);

    /* A note segment claimed to be huge. */
    image_init(&im, ET_DYN, 2);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0, .p_filesz = PAGE, .p_align = PAGE};
    *phdr(&im, 1) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = 0x300, .p_filesz = 1u << 28, .p_align = 4};
    assert_int_equal(read_id(&im, 0x10000, id, &len), -EBADMSG);
}

/* Memory the reader cannot reach is the reader's error, passed on. */
static void unreadable(void **state)
{
    (void)state;
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_fake_new(&r), 0);
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len;
    assert_true(elfmem_build_id(r, 0x10000, id, &len) < 0);

    /* Headers readable, the notes' page not. */
    Image im;
    image_init(&im, ET_DYN, 2);
    *phdr(&im, 0) =
        (Elf64_Phdr){.p_type = PT_LOAD, .p_vaddr = 0, .p_filesz = PAGE, .p_align = PAGE};
    *phdr(&im, 1) =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_vaddr = 0x2300, .p_filesz = 0x24, .p_align = 4};
    assert_int_equal(rmem_fake_add(r, 0x10000, im.page, 0x200), 0);
    assert_true(elfmem_build_id(r, 0x10000, id, &len) < 0);
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (info->dlpi_name[0] == 0) { /* the main program */
        for (int i = 0; i < info->dlpi_phnum; i++)
            if (info->dlpi_phdr[i].p_type == PT_LOAD && info->dlpi_phdr[i].p_offset == 0) {
                *(uint64_t *)data = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
                return 1;
            }
    }
    return 0;
}

/* This program's own build-id, read from its own mapped image through the live reader, is the one
 * libelf reads from its file. */
static void own_image(void **state)
{
    (void)state;
    uint64_t base = 0;
    dl_iterate_phdr(find_self, &base);
    assert_true(base != 0);
    _cleanup_(elffile_freep) ElfFile *f = NULL;
    assert_int_equal(elffile_open("/proc/self/exe", &f), 0);
    const uint8_t *want;
    size_t want_len;
    if (elffile_build_id(f, &want, &want_len) < 0)
        skip(); /* linked without --build-id */
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_open(getpid(), &r), 0);
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len = 0;
    assert_int_equal(elfmem_build_id(r, base, id, &len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(id, want, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_object),       cmocka_unit_test(fixed_executable),
        cmocka_unit_test(other_owner_skipped), cmocka_unit_test(no_build_id),
        cmocka_unit_test(hostile_headers),     cmocka_unit_test(unreadable),
        cmocka_unit_test(own_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
