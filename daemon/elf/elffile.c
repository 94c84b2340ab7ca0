/* elffile: the few facts pymemd needs from an ELF file, read with libelf.
 *
 * The file is hostile input: it comes from another process's mount namespace and may be corrupt
 * or crafted. Every offset and size read from it is checked before it is used, and anything that
 * does not look like a 64-bit little-endian x86_64 executable or library is -ENOEXEC.
 *
 * Everything cheap and small (program headers, section headers, the build-id) is read once at
 * open, so most queries never call into libelf again. Only the symbol index is built later, on
 * the first lookup, because stripped binaries and callers that only want the build-id never need
 * it. That lazy step runs under a mutex since an ElfFile is shared through a cache and libelf
 * itself is not safe to call concurrently on one Elf. */
#include "elf/elffile.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

/* The bias formula in the header rounds down to this page size, the x86_64 base page. */
#define ELF_PAGE_SIZE 4096ULL

typedef struct NamedSection {
    char *name; /* NULL when the section name could not be read */
    ElfSection section;
} NamedSection;

/* One lookup key of a symbol: its full name, or a base name with GCC/LTO suffixes removed. The
 * key is not NUL-terminated when it is a base name, hence the explicit length. */
typedef struct SymEntry {
    const char *key;
    size_t key_len;
    uint64_t value;
    uint64_t size;
    bool suffixed; /* the key is a base name, the symbol's full name is longer */
    bool global;   /* STB_GLOBAL or STB_WEAK: the linker made the name unique */
} SymEntry;

typedef struct SymIndex {
    SymEntry *entries; /* sorted by key */
    size_t n;
    size_t allocated;
} SymIndex;

struct ElfFile {
    int fd;
    Elf *elf;
    uint64_t file_size;
    int type;

    ElfLoad *loads;
    size_t n_loads;

    NamedSection *sections;
    size_t n_sections;

    uint8_t *build_id;
    size_t build_id_len;

    /* Section indices of the first SHT_DYNSYM and SHT_SYMTAB, 0 when absent. */
    size_t dynsym_index;
    size_t symtab_index;

    pthread_mutex_t lock; /* guards the lazy symbol index below and libelf calls building it */
    bool indexed;
    SymIndex dynsym;
    SymIndex symtab;
};

static pthread_once_t elf_version_once = PTHREAD_ONCE_INIT;
static bool elf_version_ok;

static void elf_version_init(void)
{
    elf_version_ok = elf_version(EV_CURRENT) != EV_NONE;
}

/* Copies the PT_LOAD program headers. A PT_LOAD whose file part lies outside the file, or whose
 * addresses wrap around, makes the whole file unusable: reads through it would be wrong, and a
 * truncated binary is exactly this case. */
static int read_program_headers(ElfFile *f, const GElf_Ehdr *eh)
{
    size_t phnum;
    if (elf_getphdrnum(f->elf, &phnum) < 0)
        return -ENOEXEC;
    /* libelf quietly shortens a table that runs past the end of the file; a count different from
     * the header's means the file is truncated. PN_XNUM says the count is elsewhere, where only
     * libelf looks. */
    if (eh->e_phnum != PN_XNUM && phnum != eh->e_phnum)
        return -ENOEXEC;
    if (phnum == 0)
        return 0;
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || phnum > INT_MAX || eh->e_phoff > f->file_size ||
        phnum > (f->file_size - eh->e_phoff) / sizeof(Elf64_Phdr))
        return -ENOEXEC;

    size_t n_loads = 0;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(f->elf, (int)i, &ph))
            return -ENOEXEC;
        if (ph.p_type == PT_LOAD)
            n_loads++;
    }
    if (n_loads == 0)
        return 0;

    f->loads = calloc(n_loads, sizeof(*f->loads));
    if (!f->loads)
        return -ENOMEM;

    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(f->elf, (int)i, &ph))
            return -ENOEXEC;
        if (ph.p_type != PT_LOAD)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_memsz > UINT64_MAX - ph.p_vaddr)
            return -ENOEXEC;
        if (ph.p_offset > f->file_size || ph.p_filesz > f->file_size - ph.p_offset)
            return -ENOEXEC;
        f->loads[f->n_loads++] = (ElfLoad){
            .vaddr = ph.p_vaddr,
            .offset = ph.p_offset,
            .filesz = ph.p_filesz,
            .memsz = ph.p_memsz,
            .align = ph.p_align,
            .flags = ph.p_flags,
        };
    }
    return 0;
}

/* Scans one block of notes for NT_GNU_BUILD_ID and copies its descriptor into f, so that the
 * pointer handed out by elffile_build_id stays valid without touching the mapped file again.
 * gelf_getnote checks that every note and its name and descriptor lie inside the data. Returns 1
 * when found. */
static int scan_notes(ElfFile *f, Elf_Data *data)
{
    if (!data || !data->d_buf)
        return 0;

    GElf_Nhdr nhdr;
    size_t offset = 0, name_offset, desc_offset;
    while ((offset = gelf_getnote(data, offset, &nhdr, &name_offset, &desc_offset)) > 0) {
        const uint8_t *base = data->d_buf;
        if (nhdr.n_type != NT_GNU_BUILD_ID || nhdr.n_namesz != sizeof(ELF_NOTE_GNU) ||
            memcmp(base + name_offset, ELF_NOTE_GNU, sizeof(ELF_NOTE_GNU)) != 0 ||
            nhdr.n_descsz == 0)
            continue;

        f->build_id = malloc(nhdr.n_descsz);
        if (!f->build_id)
            return -ENOMEM;
        memcpy(f->build_id, base + desc_offset, nhdr.n_descsz);
        f->build_id_len = nhdr.n_descsz;
        return 1;
    }
    return 0;
}

/* The build-id is looked for in PT_NOTE segments first because they remain even when section
 * headers are gone (sstrip), and then in SHT_NOTE sections for files whose program headers do not
 * cover the note. */
static int read_build_id(ElfFile *f)
{
    size_t phnum;
    if (elf_getphdrnum(f->elf, &phnum) < 0)
        return 0;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(f->elf, (int)i, &ph) || ph.p_type != PT_NOTE || ph.p_filesz == 0)
            continue;
        if (ph.p_offset > f->file_size || ph.p_filesz > f->file_size - ph.p_offset)
            continue;
        /* Notes aligned to 8 use the GNU 8-byte padding rules, which need the other type. */
        Elf_Data *data = elf_getdata_rawchunk(f->elf, (int64_t)ph.p_offset, ph.p_filesz,
                                              ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
        int r = scan_notes(f, data);
        if (r != 0)
            return r < 0 ? r : 0;
    }

    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(f->elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
            continue;
        int r = scan_notes(f, elf_getdata(scn, NULL));
        if (r != 0)
            return r < 0 ? r : 0;
    }
    return 0;
}

/* Copies every section header with its name. Names are copied rather than pointed at because the
 * section string table lives in the mapped file and lookups should not depend on libelf. A file
 * without section headers (sstrip) simply has no sections. */
static int read_section_headers(ElfFile *f, const GElf_Ehdr *eh)
{
    size_t shnum;
    if (elf_getshdrnum(f->elf, &shnum) < 0)
        return -ENOEXEC;
    /* As for program headers: a table cut short by the end of the file is a damaged file. An
     * e_shnum of 0 with an e_shoff means the count is in section 0, which libelf reads. */
    if ((eh->e_shnum != 0 || eh->e_shoff == 0) && shnum != eh->e_shnum)
        return -ENOEXEC;
    if (shnum == 0)
        return 0;
    if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > f->file_size ||
        shnum > (f->file_size - eh->e_shoff) / sizeof(Elf64_Shdr))
        return -ENOEXEC;

    size_t shstrndx;
    bool have_names = elf_getshdrstrndx(f->elf, &shstrndx) == 0;

    f->sections = calloc(shnum, sizeof(*f->sections));
    if (!f->sections)
        return -ENOMEM;

    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(f->elf, scn)) && f->n_sections < shnum) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;

        size_t index = elf_ndxscn(scn);
        if (sh.sh_type == SHT_DYNSYM && f->dynsym_index == 0)
            f->dynsym_index = index;
        if (sh.sh_type == SHT_SYMTAB && f->symtab_index == 0)
            f->symtab_index = index;

        NamedSection *ns = &f->sections[f->n_sections++];
        ns->section = (ElfSection){
            .addr = sh.sh_addr,
            .size = sh.sh_size,
            .offset = sh.sh_offset,
            .nobits = sh.sh_type == SHT_NOBITS,
        };
        /* elf_strptr checks that the string is inside the table and NUL-terminated there. */
        const char *name = have_names ? elf_strptr(f->elf, shstrndx, sh.sh_name) : NULL;
        if (name) {
            ns->name = strdup(name);
            if (!ns->name)
                return -ENOMEM;
        }
    }
    return 0;
}

int elffile_open_fd(int fd, ElfFile **ret)
{
    if (fd < 0)
        return -EBADF;
    if (!ret) {
        close(fd);
        return -EINVAL;
    }

    pthread_once(&elf_version_once, elf_version_init);
    if (!elf_version_ok) {
        close(fd);
        return -ENOTSUP;
    }

    ElfFile *f = calloc(1, sizeof(*f));
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    f->fd = fd;
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        close(fd);
        free(f);
        return -ENOMEM;
    }
    _cleanup_(elffile_freep) ElfFile *owned = f;

    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    /* A FIFO or device put where a binary was expected would block or never end. */
    if (!S_ISREG(st.st_mode))
        return -ENOEXEC;
    f->file_size = (uint64_t)st.st_size;

    f->elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!f->elf || elf_kind(f->elf) != ELF_K_ELF)
        return -ENOEXEC;

    const char *ident = elf_getident(f->elf, NULL);
    GElf_Ehdr eh;
    if (!ident || !gelf_getehdr(f->elf, &eh))
        return -ENOEXEC;
    if (ident[EI_CLASS] != ELFCLASS64 || ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
        return -ENOEXEC;
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
        return -ENOEXEC;
    f->type = eh.e_type;

    int r = read_program_headers(f, &eh);
    if (r < 0)
        return r;
    r = read_section_headers(f, &eh);
    if (r < 0)
        return r;
    r = read_build_id(f);
    if (r < 0)
        return r;

    *ret = TAKE_PTR(owned);
    return 0;
}

int elffile_open(const char *path, ElfFile **ret)
{
    if (!path || !ret)
        return -EINVAL;
    /* O_NONBLOCK keeps open() from waiting on a FIFO planted at the path; it changes nothing for
     * regular files. O_NOCTTY for the same kind of surprise with a terminal. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    return elffile_open_fd(fd, ret);
}

ElfFile *elffile_free(ElfFile *f)
{
    if (!f)
        return NULL;
    free(f->dynsym.entries);
    free(f->symtab.entries);
    for (size_t i = 0; i < f->n_sections; i++)
        free(f->sections[i].name);
    free(f->sections);
    free(f->loads);
    free(f->build_id);
    if (f->elf)
        elf_end(f->elf);
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return NULL;
}

int elffile_type(const ElfFile *f)
{
    if (!f)
        return -EINVAL;
    return f->type;
}

const ElfLoad *elffile_loads(const ElfFile *f, size_t *ret_n)
{
    if (!f) {
        if (ret_n)
            *ret_n = 0;
        return NULL;
    }
    if (ret_n)
        *ret_n = f->n_loads;
    return f->loads;
}

int elffile_bias(const ElfFile *f, uint64_t map_start, uint64_t *ret_bias)
{
    if (!f || !ret_bias)
        return -EINVAL;
    if (f->n_loads == 0)
        return -ENOEXEC;
    if (f->type == ET_EXEC) {
        *ret_bias = 0;
        return 0;
    }

    uint64_t lowest = UINT64_MAX;
    for (size_t i = 0; i < f->n_loads; i++)
        lowest = MIN(lowest, f->loads[i].vaddr);
    /* Unsigned wrap-around is intended: a prelinked library mapped below its link address has a
     * "negative" bias, and adding it to a link-time address still gives the runtime address. */
    *ret_bias = map_start - (lowest & ~(ELF_PAGE_SIZE - 1));
    return 0;
}

int elffile_build_id(const ElfFile *f, const uint8_t **ret, size_t *ret_len)
{
    if (!f || !ret || !ret_len)
        return -EINVAL;
    if (!f->build_id)
        return -ENOENT;
    *ret = f->build_id;
    *ret_len = f->build_id_len;
    return 0;
}

bool elffile_has_symtab(const ElfFile *f)
{
    return f && f->symtab_index != 0;
}

int elffile_section(const ElfFile *f, const char *name, ElfSection *ret)
{
    if (!f || !name || !ret)
        return -EINVAL;
    for (size_t i = 0; i < f->n_sections; i++) {
        if (f->sections[i].name && strcmp(f->sections[i].name, name) == 0) {
            *ret = f->sections[i].section;
            return 0;
        }
    }
    return -ENOENT;
}

int elffile_read_vaddr(const ElfFile *f, uint64_t vaddr, void *buf, size_t len)
{
    if (!f || (!buf && len > 0))
        return -EINVAL;
    if (len > UINT64_MAX - vaddr)
        return -EFAULT;
    if (len == 0)
        return 0;
    uint64_t end = vaddr + len;

    for (size_t i = 0; i < f->n_loads; i++) {
        const ElfLoad *l = &f->loads[i];
        /* Open checked that vaddr + memsz does not wrap and that the file part is in the file. */
        if (vaddr < l->vaddr || end > l->vaddr + l->filesz)
            continue;

        /* pread rather than the mapping libelf holds: if the file shrinks under us, pread gives
         * a short read where touching the mapping would raise SIGBUS. On failure buf may hold
         * part of the data. */
        uint64_t offset = l->offset + (vaddr - l->vaddr);
        uint8_t *p = buf;
        size_t done = 0;
        while (done < len) {
            ssize_t n = pread(f->fd, p + done, len - done, (off_t)(offset + done));
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            if (n == 0)
                return -EFAULT;
            done += (size_t)n;
        }
        return 0;
    }
    return -EFAULT;
}

/* Symbol index. */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Removes one trailing `.N` or `.lto_priv.N` (N all digits) from name[0..len). Returns the new
 * length, or len when there is no such suffix or nothing would be left of the name. GCC names
 * function-level statics `x.N`, LTO renames file-level statics it has to promote `x.lto_priv.N`,
 * and LTO of a function-level static gives both: `x.N.lto_priv.M`. */
static size_t strip_suffix(const char *name, size_t len)
{
    static const char lto[] = ".lto_priv";
    const size_t lto_len = sizeof(lto) - 1;

    size_t d = len;
    while (d > 0 && is_digit(name[d - 1]))
        d--;
    if (d == len || d == 0 || name[d - 1] != '.')
        return len;

    size_t base = d - 1;
    if (base >= lto_len && memcmp(name + base - lto_len, lto, lto_len) == 0)
        base -= lto_len;
    return base > 0 ? base : len;
}

static int index_add(SymIndex *idx, SymEntry e)
{
    if (idx->n == idx->allocated) {
        size_t n = idx->allocated ? idx->allocated * 2 : 256;
        SymEntry *p = reallocarray(idx->entries, n, sizeof(*p));
        if (!p)
            return -ENOMEM;
        idx->entries = p;
        idx->allocated = n;
    }
    idx->entries[idx->n++] = e;
    return 0;
}

static int key_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, MIN(a_len, b_len));
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

static int entry_cmp(const void *a, const void *b)
{
    const SymEntry *x = a, *y = b;
    return key_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* Indexes one symbol table. A table libelf cannot read (corrupt header, data outside the file) is
 * left empty rather than failing the lookup, so the other table can still answer; symbols whose
 * name cannot be read are skipped the same way. */
static int index_table(Elf *elf, size_t scn_index, SymIndex *idx)
{
    if (scn_index == 0)
        return 0;
    Elf_Scn *scn = elf_getscn(elf, scn_index);
    GElf_Shdr sh;
    if (!scn || !gelf_getshdr(scn, &sh))
        return 0;
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data || !data->d_buf)
        return 0;

    /* gelf_getsym takes an int index; no real table comes near that. */
    size_t n = MIN(data->d_size / sizeof(Elf64_Sym), (size_t)INT_MAX);
    for (size_t i = 0; i < n; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym))
            break;
        if (sym.st_shndx == SHN_UNDEF || sym.st_name == 0)
            continue;
        int type = GELF_ST_TYPE(sym.st_info);
        if (type == STT_SECTION || type == STT_FILE)
            continue;
        const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (!name || !*name)
            continue;

        int bind = GELF_ST_BIND(sym.st_info);
        SymEntry e = {
            .key = name,
            .key_len = strlen(name),
            .value = sym.st_value,
            .size = sym.st_size,
            .global = bind == STB_GLOBAL || bind == STB_WEAK,
        };
        int r = index_add(idx, e);
        if (r < 0)
            return r;

        /* Every shorter base name is a key too, so `x`, `x.0` and `x.0.lto_priv.0` all find
         * x.0.lto_priv.0. */
        e.suffixed = true;
        for (size_t l = strip_suffix(name, e.key_len); l < e.key_len; l = strip_suffix(name, l)) {
            e.key_len = l;
            r = index_add(idx, e);
            if (r < 0)
                return r;
        }
    }

    if (idx->n > 0)
        qsort(idx->entries, idx->n, sizeof(*idx->entries), entry_cmp);
    return 0;
}

static int ensure_index(ElfFile *f)
{
    int r = 0;
    pthread_mutex_lock(&f->lock);
    if (!f->indexed) {
        r = index_table(f->elf, f->dynsym_index, &f->dynsym);
        if (r >= 0)
            r = index_table(f->elf, f->symtab_index, &f->symtab);
        if (r >= 0) {
            f->indexed = true;
        } else {
            /* Leave nothing half built so the next lookup starts over. */
            free(f->dynsym.entries);
            free(f->symtab.entries);
            f->dynsym = f->symtab = (SymIndex){0};
        }
    }
    pthread_mutex_unlock(&f->lock);
    return r;
}

/* Finds the entries of idx with key `name` and the given kind (exact or suffixed). For an exact
 * name a global wins, because the linker allows at most one defined global per name. Otherwise
 * the candidates are statics of different files (LTO makes its renamed statics hidden globals,
 * so binding says nothing for suffixed names): several with different addresses are different
 * variables, and answering with any one of them would silently read the wrong one, hence
 * -ENOTUNIQ. */
static int index_find(const SymIndex *idx, const char *name, size_t len, bool suffixed,
                      const SymEntry **ret)
{
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const SymEntry *e = &idx->entries[mid];
        if (key_cmp(e->key, e->key_len, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }

    const SymEntry *found = NULL;
    bool ambiguous = false;
    for (size_t i = lo; i < idx->n; i++) {
        const SymEntry *e = &idx->entries[i];
        if (key_cmp(e->key, e->key_len, name, len) != 0)
            break;
        if (e->suffixed != suffixed)
            continue;
        if (e->global && !suffixed) {
            *ret = e;
            return 0;
        }
        if (!found)
            found = e;
        else if (found->value != e->value)
            ambiguous = true;
    }
    if (!found)
        return -ENOENT;
    if (ambiguous)
        return -ENOTUNIQ;
    *ret = found;
    return 0;
}

int elffile_symbol(const ElfFile *f, const char *name, ElfSymbol *ret)
{
    if (!f || !name || !*name || !ret)
        return -EINVAL;

    /* The index is a cache: building it does not change what the file says, so the const in the
     * API holds for callers. The object itself was allocated writable by elffile_open_fd. */
    int r = ensure_index((ElfFile *)f);
    if (r < 0)
        return r;

    /* An exact name anywhere beats a suffixed one: `foo` in .symtab is the variable asked for,
     * while `foo.1` is a local static that only shares its name. */
    size_t len = strlen(name);
    for (int suffixed = 0; suffixed <= 1; suffixed++) {
        const SymEntry *e;
        r = index_find(&f->dynsym, name, len, suffixed, &e);
        bool from_dynsym = true;
        if (r == -ENOENT) {
            r = index_find(&f->symtab, name, len, suffixed, &e);
            from_dynsym = false;
        }
        if (r == -ENOENT)
            continue;
        if (r < 0)
            return r;
        *ret = (ElfSymbol){.value = e->value, .size = e->size, .from_dynsym = from_dynsym};
        return 0;
    }
    return -ENOENT;
}
