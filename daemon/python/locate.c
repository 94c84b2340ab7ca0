#include "python/locate.h"

#include <ctype.h>
#include <stdarg.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "elf/debuginfo.h"
#include "elf/elffile.h"
#include "elf/elfmem.h"
#include "proc/maps.h"

/* _Py_DebugOffsets starts with this 8-byte cookie, without a NUL (Include/internal/
 * pycore_debug_offsets.h, 3.13+). */
static const char debug_cookie[8] = {'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y'};

/* Bounds for values read out of a target's debug offsets: pystack's validateDebugOffsets uses the
 * same 1 MiB ceiling for struct sizes. */
#define DEBUG_STRUCT_MAX (1u << 20)

/* What one ELF file tells, computed once per (device, inode, build-id). */
typedef struct ElfFacts {
    uint32_t dev_major, dev_minor;
    uint64_t inode;
    uint8_t build_id[ELFMEM_BUILD_ID_MAX];
    size_t build_id_len;
    bool build_id_from_memory; /* read from the target's mapped notes (what runs), not the file */
    bool valid;                /* the file opened and is x86_64 ELF */
    int open_error;            /* -errno when it could not be opened */
    int type;                  /* ET_EXEC / ET_DYN */
    uint64_t first_load;       /* lowest PT_LOAD p_vaddr, page aligned */
    bool has_runtime;
    bool has_python_api;  /* exports the C API (Py_GetVersion), with or without _PyRuntime */
    bool ref_debug;       /* exports _Py_NegativeRefcount: a Py_REF_DEBUG (debug) build */
    uint64_t runtime;     /* link-time address of _PyRuntime */
    uint64_t py_version;  /* link-time address of Py_Version, 0 if absent */
    uint64_t version_buf; /* link-time address of Py_GetVersion's static buffer, 0 if absent */
    /* obmalloc statics (link-time), from .symtab or a build-id matched debug file. */
    uint64_t obm_narenas, obm_highwater, obm_arenas, obm_maxarenas, obm_raw_blocks, obm_blocks;
    bool obm_from_debug_file;
    const char *debug_source; /* where the debug file came from: "/usr/lib/debug", "debuginfod" */
    char debug_note[168];     /* why no debug file was found, for the pymalloc reason */
    bool debug_pending;       /* debuginfod is still fetching it (in the background) */
    unsigned debug_gen;       /* debuginfo_generation() when it was asked for */
    ElfLoad loads[8];
    size_t nloads;
} ElfFacts;

/* A debuginfod fetch that failed, so that it is tried once per build-id, not once per process
 * (facts of deleted binaries are not cached) nor once per file (several copies, one build-id). */
typedef struct DebugMiss {
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len;
    char why[96];
} DebugMiss;

struct PyElfCache {
    ElfFacts *v;
    size_t n;
    unsigned opens;
    DebugMiss *misses;
    size_t nmisses;
};

int pyelfcache_new(PyElfCache **ret)
{
    PyElfCache *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    *ret = c;
    return 0;
}

PyElfCache *pyelfcache_free(PyElfCache *c)
{
    if (!c)
        return NULL;
    free(c->v);
    free(c->misses);
    free(c);
    return NULL;
}

unsigned pyelfcache_opens(const PyElfCache *c)
{
    return c->opens;
}

static uint64_t sym_or_zero(const ElfFile *f, const char *name)
{
    ElfSymbol s;
    return elffile_symbol(f, name, &s) >= 0 ? s.value : 0;
}

/* The file-static symbols pymemd wants, from a .symtab (the binary's own, or its debug file's):
 * Py_GetVersion's `static char version[250]` ("version" or "version.0") and, before 3.12, the
 * allocator's counters in Objects/obmalloc.c. What one file lacks keeps what another gave. */
static void facts_local_symbols(ElfFacts *facts, const ElfFile *f)
{
    struct {
        uint64_t *field;
        const char *name;
    } want[] = {
        {&facts->version_buf, "version"},
        {&facts->obm_narenas, "narenas_currently_allocated"},
        {&facts->obm_highwater, "narenas_highwater"},
        {&facts->obm_arenas, "arenas"},
        {&facts->obm_maxarenas, "maxarenas"},
        {&facts->obm_raw_blocks, "raw_allocated_blocks"},
        {&facts->obm_blocks, "_Py_AllocatedBlocks"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!*want[i].field)
            *want[i].field = sym_or_zero(f, want[i].name);
}

/* Whether a debug file's build-id is the one the facts were read for. */
static bool debug_file_matches(const ElfFile *dbg, const ElfFacts *facts)
{
    const uint8_t *id;
    size_t idlen;
    return elffile_build_id(dbg, &id, &idlen) >= 0 && idlen == facts->build_id_len &&
           memcmp(id, facts->build_id, idlen) == 0;
}

/* The installed debug file of the facts' build-id: /usr/lib/debug/.build-id/xx/yyyy.debug as the
 * target sees its filesystem (a container's own -dbg package), then as pymemd does. The caller
 * owns *ret. */
static int debug_file_local(const ElfFacts *facts, pid_t pid, PyElfCache *c, ElfFile **ret)
{
    char hex[2 * ELFMEM_BUILD_ID_MAX + 1];
    elfmem_build_id_hex(facts->build_id, facts->build_id_len, hex, sizeof(hex));
    for (int k = 0; k < 2; k++) {
        char root[64] = "", path[PATH_MAX];
        if (k == 0)
            snprintf(root, sizeof(root), "/proc/%d/root", pid);
        snprintf(path, sizeof(path), "%s/usr/lib/debug/.build-id/%.2s/%s.debug", root, hex,
                 hex + 2);
        _cleanup_(elffile_freep) ElfFile *dbg = NULL;
        if (elffile_open(path, &dbg) < 0)
            continue;
        c->opens++;
        if (!debug_file_matches(dbg, facts))
            continue;
        *ret = TAKE_PTR(dbg);
        return 0;
    }
    return -ENOENT;
}

/* The same from the servers in DEBUGINFOD_URLS, once per build-id: a miss is remembered with its
 * reason, which goes into facts->debug_note. */
static int debug_file_fetch(ElfFacts *facts, PyElfCache *c, ElfFile **ret)
{
    for (size_t i = 0; i < c->nmisses; i++) {
        DebugMiss *m = &c->misses[i];
        if (m->len == facts->build_id_len && memcmp(m->id, facts->build_id, m->len) == 0) {
            snprintf(facts->debug_note, sizeof(facts->debug_note), "%s", m->why);
            return -ENOENT;
        }
    }
    char why[96];
    unsigned gen = debuginfo_generation(); /* before asking: a fetch may end meanwhile */
    int fd = -1, k = debuginfo_fetch(facts->build_id, facts->build_id_len, DEBUGINFO_TIMEOUT_S, &fd,
                                     why, sizeof(why));
    if (k == -EINPROGRESS) {
        /* Not a miss: asked again once a fetch has finished (facts_get). */
        snprintf(facts->debug_note, sizeof(facts->debug_note), "%s", why);
        facts->debug_pending = true;
        facts->debug_gen = gen;
        return k;
    }
    _cleanup_(elffile_freep) ElfFile *dbg = NULL;
    if (k >= 0) {
        c->opens++;
        k = elffile_open_fd(fd, &dbg);
        if (k < 0)
            snprintf(why, sizeof(why), "debuginfod gave a file that is not x86_64 ELF");
        else if (!debug_file_matches(dbg, facts)) {
            snprintf(why, sizeof(why), "debuginfod gave a file with another build-id");
            k = -EBADMSG;
        }
    }
    if (k >= 0) {
        *ret = TAKE_PTR(dbg);
        return 0;
    }
    snprintf(facts->debug_note, sizeof(facts->debug_note), "%s", why);
    DebugMiss *n = realloc(c->misses, (c->nmisses + 1) * sizeof(*n));
    if (n) {
        c->misses = n;
        DebugMiss *m = &c->misses[c->nmisses++];
        memcpy(m->id, facts->build_id, facts->build_id_len);
        m->len = facts->build_id_len;
        snprintf(m->why, sizeof(m->why), "%s", why);
    }
    return k;
}

/* Stripped distribution binaries keep their .symtab in a separate debug file named by build-id
 * (Debian's python3.X-dbg), installed or on a debuginfod server. Its symbols count only when its
 * build-id is the running binary's. `may_fetch`: whether asking the servers is worth it (the
 * symbols are needed), since a fetch may block for DEBUGINFO_TIMEOUT_S. The caller owns *ret. */
static int debug_file_find(ElfFacts *facts, pid_t pid, PyElfCache *c, bool may_fetch, ElfFile **ret)
{
    if (facts->build_id_len < 2) {
        snprintf(facts->debug_note, sizeof(facts->debug_note), "the binary has no build-id");
        return -ENOENT;
    }
    if (debug_file_local(facts, pid, c, ret) >= 0) {
        facts->debug_source = "/usr/lib/debug";
        return 0;
    }
    char hex[2 * ELFMEM_BUILD_ID_MAX + 1];
    elfmem_build_id_hex(facts->build_id, facts->build_id_len, hex, sizeof(hex));
    if (!may_fetch) {
        snprintf(facts->debug_note, sizeof(facts->debug_note),
                 "no /usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
        return -ENOENT;
    }
    if (debug_file_fetch(facts, c, ret) >= 0) {
        facts->debug_source = "debuginfod";
        return 0;
    }
    char note[2 * sizeof(facts->debug_note)];
    snprintf(note, sizeof(note), "no /usr/lib/debug/.build-id/%.2s/%s.debug; %s", hex, hex + 2,
             facts->debug_note);
    size_t n = strnlen(note, sizeof(facts->debug_note) - 1);
    memcpy(facts->debug_note, note, n);
    facts->debug_note[n] = 0;
    return -ENOENT;
}

static void facts_from_debug_file(ElfFacts *facts, pid_t pid, PyElfCache *c, bool may_fetch)
{
    _cleanup_(elffile_freep) ElfFile *dbg = NULL;
    if (debug_file_find(facts, pid, c, may_fetch, &dbg) < 0)
        return;
    facts_local_symbols(facts, dbg);
    facts->obm_from_debug_file = true;
}

/* Whether the binary's CPython keeps its pymalloc counters in file-static variables, so that
 * they can only be found through a .symtab: 3.8 to 3.11 (Objects/obmalloc.c); 3.12 moved them
 * into the runtime state. Py_Version (3.11+, exported, in .rodata) tells; without it the binary
 * is 3.10 or older. */
static bool needs_obmalloc_symbols(const ElfFile *f, const ElfFacts *facts)
{
    if (!facts->py_version)
        return true;
    uint32_t v;
    if (elffile_read_vaddr(f, facts->py_version, &v, sizeof(v)) < 0)
        return true; /* cannot tell: the symbols may be needed */
    return v < 0x030c0000;
}

static void facts_from_elf(ElfFacts *facts, ElfFile *f)
{
    facts->valid = true;
    facts->type = elffile_type(f);
    size_t n;
    const ElfLoad *loads = elffile_loads(f, &n);
    facts->nloads = MIN(n, ARRAY_SIZE(facts->loads));
    memcpy(facts->loads, loads, facts->nloads * sizeof(*loads));
    uint64_t lowest = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        lowest = MIN(lowest, loads[i].vaddr);
    facts->first_load = lowest == UINT64_MAX ? 0 : lowest & ~0xfffull;

    const uint8_t *id;
    size_t idlen;
    if (elffile_build_id(f, &id, &idlen) >= 0) {
        facts->build_id_len = MIN(idlen, sizeof(facts->build_id));
        memcpy(facts->build_id, id, facts->build_id_len);
    }

    ElfSymbol s;
    ElfSection sec;
    if (elffile_symbol(f, "_PyRuntime", &s) >= 0) {
        facts->has_runtime = true;
        facts->runtime = s.value;
    } else if (elffile_section(f, ".PyRuntime", &sec) >= 0) {
        /* 3.10+: _PyRuntime is the only object in its own section, at its start. */
        facts->has_runtime = true;
        facts->runtime = sec.addr;
    }
    /* Every CPython exports its C API; 3.6 and older have no _PyRuntime, but still this. */
    facts->has_python_api = sym_or_zero(f, "Py_GetVersion") != 0;
    if (!facts->has_runtime)
        return;
    facts->py_version = sym_or_zero(f, "Py_Version");
    /* Defined only under Py_REF_DEBUG, which Py_DEBUG implies (Objects/object.c, object.h). */
    facts->ref_debug = sym_or_zero(f, "_Py_NegativeRefcount") != 0;
    facts_local_symbols(facts, f);
}

/* Opens the file of a mapping the way the target sees it: through its root (containers), then,
 * for the executable, /proc/PID/exe (which works even for a deleted file), then map_files (root
 * only, but it also reaches deleted and unreachable files). */
static int open_mapping(pid_t pid, const MapsEntry *e, bool is_exe, ElfFile **ret)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%d/root%s", pid, e->path);
    if (!e->deleted && elffile_open(path, ret) >= 0)
        return 0;
    if (is_exe) {
        snprintf(path, sizeof(path), "/proc/%d/exe", pid);
        if (elffile_open(path, ret) >= 0)
            return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, e->start, e->end);
    return elffile_open(path, ret);
}

static bool name_has_python(const char *path);

/* Whether the target's copy of a module still carries the build-id the cached facts were read
 * from: the notes sit in the first page of the file, which is mapped. A file replaced under the
 * same inode (or a cache entry from another mount namespace) fails this and is read again. */
static bool same_build(Rmem *r, const MapsEntry *e, const ElfFacts *f)
{
    if (f->build_id_len == 0)
        return true; /* nothing to compare: trust device and inode */
    uint8_t page[4096];
    size_t len = (size_t)MIN((uint64_t)sizeof(page), e->end - e->start);
    if (rmem_read(r, e->start, page, len) < 0)
        return true; /* the reads that follow will fail on their own */
    return memmem(page, len, f->build_id, f->build_id_len) != NULL;
}

/* Replaces the facts' build-id with the one in the target's copy of the module's first page,
 * when it has one (see elfmem.h). */
static void facts_build_id_from_memory(ElfFacts *facts, Rmem *r, const MapsEntry *e)
{
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len;
    if (elfmem_build_id(r, e->start, id, &len) < 0 || len > sizeof(facts->build_id))
        return;
    memcpy(facts->build_id, id, len);
    facts->build_id_len = len;
    facts->build_id_from_memory = true;
}

/* The facts of a mapping's file, from the cache (by device and inode, checked by build-id) or
 * read now. Deleted files are not cached: their facts go to *scratch. */
static const ElfFacts *facts_get(PyElfCache *c, pid_t pid, Rmem *r, const MapsEntry *e, bool is_exe,
                                 ElfFacts *scratch)
{
    ElfFacts *slot = NULL;
    for (size_t i = 0; i < c->n && !slot; i++) {
        ElfFacts *f = &c->v[i];
        if (f->inode == e->inode && f->dev_major == e->dev_major && f->dev_minor == e->dev_minor) {
            if (same_build(r, e, f)) {
                if (f->debug_pending && f->debug_gen != debuginfo_generation()) {
                    /* A background fetch finished, maybe this one: ask again. */
                    f->debug_pending = false;
                    f->debug_note[0] = 0;
                    facts_from_debug_file(f, pid, c, true);
                }
                return f;
            }
            slot = f; /* stale: read the file again into the same slot */
        }
    }
    ElfFacts facts = {.dev_major = e->dev_major, .dev_minor = e->dev_minor, .inode = e->inode};
    _cleanup_(elffile_freep) ElfFile *f = NULL;
    int k = open_mapping(pid, e, is_exe, &f);
    facts.open_error = k < 0 ? k : 0;
    if (k >= 0) {
        c->opens++;
        facts_from_elf(&facts, f);
        if (facts.has_runtime && !facts.obm_narenas && !elffile_has_symtab(f)) {
            /* The debug file must match what runs: the build-id in the target's memory, which
             * is the file's unless the file changed under the same inode. */
            facts_build_id_from_memory(&facts, r, e);
            facts_from_debug_file(&facts, pid, c, needs_obmalloc_symbols(f, &facts));
        }
    } else if (e->offset == 0 && (is_exe || name_has_python(e->path))) {
        /* The file cannot be opened (pymemd lacks permission, or it went with its mount): its
         * installed debug file, found by the build-id the target has mapped, has the same program
         * headers and all the symbols. Not fetched from debuginfod: nothing yet says this is a
         * Python that needs it. */
        facts_build_id_from_memory(&facts, r, e);
        _cleanup_(elffile_freep) ElfFile *dbg = NULL;
        if (facts.build_id_from_memory && debug_file_find(&facts, pid, c, false, &dbg) >= 0) {
            ElfFacts d = facts;
            facts_from_elf(&d, dbg);
            if (d.has_runtime) {
                d.open_error = 0;
                d.obm_from_debug_file = true;
                facts = d;
            }
        }
    }
    /* A file that could not be opened is remembered too, so a non-Python process costs one
     * attempt per file, not one per sample. */
    if (e->deleted) {
        *scratch = facts;
        return scratch;
    }
    if (slot) {
        *slot = facts;
        return slot;
    }
    ElfFacts *n = realloc(c->v, (c->n + 1) * sizeof(*n));
    if (!n) {
        *scratch = facts;
        return scratch;
    }
    c->v = n;
    c->v[c->n] = facts;
    return &c->v[c->n++];
}

/* 3.13+ without a readable binary: _PyRuntime starts with the debug offsets' cookie, followed by
 * the version and the free-threading flag, at an aligned address in the module's writable data.
 * Scans the writable file-backed mappings of the Python-looking modules for it (pystack does the
 * same). Returns the address, or 0. */
static RAddr scan_for_cookie(Rmem *r, const Maps *maps, const char *exe)
{
    enum { CHUNK = 256 << 10, SCAN_MAX = 64 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return 0;
    RAddr found = 0;
    for (size_t m = 0; m < maps->n && !found; m++) {
        const MapsEntry *e = &maps->v[m];
        if (!e->path || e->path[0] != '/' || !e->w || !e->r ||
            !(name_has_python(e->path) || strcmp(e->path, exe) == 0))
            continue;
        uint64_t end = MIN(e->end, e->start + SCAN_MAX);
        /* Chunks overlap by the 24 bytes checked, so no candidate falls between two. */
        for (uint64_t at = e->start; at < end && !found; at += CHUNK - 24) {
            size_t len = (size_t)MIN((uint64_t)CHUNK, end - at);
            if (len < 24 || rmem_read(r, at, buf, len) < 0)
                break;
            for (size_t i = 0; i + 24 <= len; i += 8) {
                if (memcmp(buf + i, debug_cookie, sizeof(debug_cookie)) != 0)
                    continue;
                uint64_t version, ft;
                memcpy(&version, buf + i + 8, 8);
                memcpy(&ft, buf + i + 16, 8);
                if (version >= 0x030d0000u && version < 0x04000000u && ft <= 1) {
                    found = at + i;
                    break;
                }
            }
        }
    }
    free(buf);
    return found;
}

/* The runtime address of a module: the mapping with file offset 0 whose other mappings match
 * the PT_LOAD layout (a library can be mapped twice, e.g. by a symbolizer). */
static int module_bias(const Maps *maps, const MapsEntry *anchor, const ElfFacts *facts,
                       uint64_t *ret)
{
    if (facts->type == ET_EXEC) {
        *ret = 0;
        return 0;
    }
    for (size_t i = 0; i < maps->n; i++) {
        const MapsEntry *e = &maps->v[i];
        if (e->offset != 0 || e->inode != anchor->inode || e->dev_major != anchor->dev_major ||
            e->dev_minor != anchor->dev_minor)
            continue;
        uint64_t bias = e->start - facts->first_load;
        bool ok = true;
        for (size_t k = 0; k < facts->nloads && ok; k++) {
            const MapsEntry *m = maps_find(maps, bias + facts->loads[k].vaddr);
            ok = m && m->inode == anchor->inode;
            /* .bss past the file's end is anonymous memory: only the file part must match. */
            if (!ok && facts->loads[k].filesz == 0)
                ok = true;
        }
        if (ok) {
            *ret = bias;
            return 0;
        }
    }
    return -ENOENT;
}

static bool name_is_libpython(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "libpython3", 10) == 0;
}

static bool name_has_python(const char *path)
{
    const char *base = strrchr(path, '/');
    return strstr(base ? base + 1 : path, "python") != NULL;
}

/* "python3.11", "libpython3.11d.so.1.0", "python3.14t": the minor version in the file name, and
 * the ABI flags after it. Returns false when the name carries no version. */
static bool version_from_name(const char *path, unsigned *ret_minor, bool *ret_debug, bool *ret_ft)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *p = strstr(base, "python3.");
    if (!p || !isdigit((unsigned char)p[8]))
        return false;
    char *end;
    unsigned long minor = strtoul(p + 8, &end, 10);
    if (minor > 99)
        return false;
    *ret_minor = (unsigned)minor;
    *ret_debug = strchr("dtm", *end) && (*end == 'd' || (end[0] && end[1] == 'd'));
    *ret_ft = *end == 't';
    return true;
}

/* Parses the start of sys.version, "3.10.13 (main, ...)" or "3.9.0rc1 (...)", into a
 * PY_VERSION_HEX. */
static bool hexversion_from_string(const char *s, uint32_t *ret)
{
    unsigned major, minor, micro, serial = 0;
    char level[3] = "";
    int n = 0;
    if (sscanf(s, "%u.%u.%u%n", &major, &minor, &micro, &n) != 3 || major != 3 || minor > 99 ||
        micro > 99)
        return false;
    const char *rest = s + n;
    unsigned lv = 0xf;
    if (sscanf(rest, "%2[abrc]%u", level, &serial) == 2) {
        lv = strcmp(level, "a") == 0 ? 0xa : strcmp(level, "b") == 0 ? 0xb : 0xc;
        if (serial > 15)
            return false;
    } else if (*rest != ' ' && *rest != '\0' && *rest != '+') {
        return false;
    }
    *ret = (major << 24) | (minor << 16) | (micro << 8) | (lv << 4) | serial;
    return true;
}

static int read_version(PyLoc *loc, Rmem *r, const ElfFacts *facts, uint64_t bias, bool *ret_ft)
{
    /* 1. 3.13+: the debug offsets at the start of _PyRuntime name the version. */
    uint8_t head[24];
    int k = rmem_read(r, loc->runtime, head, sizeof(head));
    if (k < 0)
        return k;
    if (memcmp(head, debug_cookie, sizeof(debug_cookie)) == 0) {
        uint64_t v, ft;
        memcpy(&v, head + 8, 8);
        memcpy(&ft, head + 16, 8);
        loc->hexversion = (uint32_t)v;
        loc->version_exact = true;
        loc->version_source = "debug offsets";
        *ret_ft = ft != 0;
        return 0;
    }
    /* 2. 3.11+: the exported constant Py_Version. */
    if (facts->py_version) {
        uint64_t v;
        k = rmem_read_u64(r, bias + facts->py_version, &v);
        if (k < 0)
            return k;
        loc->hexversion = (uint32_t)v;
        loc->version_exact = true;
        loc->version_source = "Py_Version";
        return 0;
    }
    /* 3. Up to 3.10: sys.version as Py_GetVersion() formatted it at start-up, when .symtab or a
     * debug file names the buffer. */
    if (facts->version_buf) {
        char buf[64];
        if (rmem_read_str(r, bias + facts->version_buf, buf, sizeof(buf)) > 0 &&
            hexversion_from_string(buf, &loc->hexversion)) {
            loc->version_exact = true;
            loc->version_source = "Py_GetVersion buffer";
            return 0;
        }
    }
    /* 4. The file name: the minor version only, confirmed by the structural check later. */
    unsigned minor;
    bool dbg, ft;
    if (version_from_name(loc->module, &minor, &dbg, &ft)) {
        loc->hexversion = (3u << 24) | (minor << 16);
        loc->version_exact = false;
        loc->version_source = "file name";
        *ret_ft = ft;
        return 0;
    }
    return -ENOENT;
}

static void set_status(PyLoc *loc, PyLocStatus st, const char *fmt, ...) _printf_(3, 4);

/* memcpy, not a cast: the debug offsets are a byte buffer, and clang's -Wcast-align (the fuzz
 * build) rightly refuses to assume it is aligned. */
static uint64_t RD64(const uint8_t *p, uint64_t off)
{
    uint64_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

int pyloc_apply_debug_offsets(PyLayout *l, const uint8_t *dbg, size_t len)
{
    const typeof(l->debug_offsets) *d = &l->debug_offsets;
    if (d->size == 0 || len < d->size || memcmp(dbg, debug_cookie, sizeof(debug_cookie)) != 0)
        return -EINVAL;

    /* The sizes the target declares: each bounds the reads into its struct. */
    struct {
        uint32_t where;
        uint64_t value;
    } sizes[] = {
        {d->runtime_size, 0},  {d->interp_size, 0}, {d->tstate_size, 0}, {d->gc_size, 0},
        {d->pyobject_size, 0}, {d->type_size, 0},   {d->list_size, 0},   {d->iframe_size, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        if (sizes[i].where == PYL_NONE || sizes[i].where == 0)
            continue; /* a table generated before these were known: nothing to bound */
        if ((uint64_t)sizes[i].where + 8 > d->size)
            return -EINVAL;
        sizes[i].value = RD64(dbg, sizes[i].where);
        if (sizes[i].value == 0 || sizes[i].value > DEBUG_STRUCT_MAX)
            return -EINVAL;
    }
    uint64_t rt_size = sizes[0].value, is_size = sizes[1].value, ts_size = sizes[2].value,
             gc_size = sizes[3].value, ob_size = sizes[4].value, tp_size = sizes[5].value,
             li_size = sizes[6].value, fr_size = sizes[7].value;
    if (!rt_size || !is_size || !ts_size || !gc_size)
        return -EINVAL;

    /* Each value: where it is in the debug offsets, the table field it replaces, the size of the
     * struct it points into and the width of what pymemd reads there. */
    struct {
        uint32_t where;
        uint32_t *field;
        uint64_t bound;
        uint64_t width;
    } v[] = {
        {d->runtime_finalizing, &l->runtime.finalizing, rt_size, 8},
        {d->runtime_interpreters_head, &l->runtime.interpreters_head, rt_size, 8},
        {d->interp_id, &l->interp.id, is_size, 8},
        {d->interp_next, &l->interp.next, is_size, 8},
        {d->interp_threads_head, &l->interp.threads_head, is_size, 8},
        {d->interp_gc, &l->interp.gc, is_size, gc_size},
        {d->tstate_next, &l->tstate.next, ts_size, 8},
        {d->gc_collecting, &l->gc.collecting, gc_size, 4},
        {d->gc_generation_stats, &l->gc.stats, gc_size,
         l->gc.stats_kind == PYGCS_RING ? 8 : l->gc.stats_size},
        {d->pyobject_ob_type, &l->object.ob_type, ob_size, 8},
        {d->type_tp_name, &l->object.tp_name, tp_size, 8},
        {d->type_tp_flags, &l->object.tp_flags, tp_size, 8},
        {d->list_ob_size, &l->object.ob_size, li_size, 8},
        {d->iframe_executable, &l->sizes.iframe_code, fr_size, 8},
    };
    /* Validate everything before changing anything: all or nothing. */
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        if (v[i].where == PYL_NONE || v[i].where == 0 || v[i].field == NULL)
            continue;
        if ((uint64_t)v[i].where + 8 > d->size || v[i].bound == 0)
            return -EINVAL;
        uint64_t off = RD64(dbg, v[i].where);
        if (off > v[i].bound || v[i].width > v[i].bound - off)
            return -EINVAL;
    }
    /* The runtime's main interpreter pointer is not in the debug offsets; it is the next field
     * of struct pyinterpreters after head (pycore_runtime.h), so it moves with head. */
    uint64_t main_delta = (uint64_t)l->runtime.interpreters_main - l->runtime.interpreters_head;
    uint64_t head = RD64(dbg, d->runtime_interpreters_head);
    if (l->runtime.interpreters_main < l->runtime.interpreters_head ||
        head + main_delta + 8 > rt_size)
        return -EINVAL;

    /* What the debug offsets do not carry (the generations, their stats) lives inside the GC
     * state at offsets the table knows for one GC state size (and, 3.15+, one stats size): a
     * target with another size has another layout there, and this table is not its own. */
    if (gc_size != l->gc.size)
        return -ENXIO;
    if (d->gc_generation_stats_size != PYL_NONE &&
        RD64(dbg, d->gc_generation_stats_size) != l->gc.stats_size)
        return -ENXIO;

    int changed = 0;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        if (v[i].where == PYL_NONE || v[i].where == 0 || v[i].field == NULL)
            continue;
        uint32_t off = (uint32_t)RD64(dbg, v[i].where);
        if (*v[i].field != off)
            changed++;
        *v[i].field = off;
    }
    if (l->runtime.interpreters_main != (uint32_t)(head + main_delta))
        changed++;
    l->runtime.interpreters_main = (uint32_t)(head + main_delta);
    l->runtime.size = (uint32_t)rt_size;
    l->interp.size = (uint32_t)is_size;
    l->tstate.size = (uint32_t)ts_size;
    return changed;
}

/* The low bits of _gc_prev (and, during a collection, of _gc_next) are flags (pycore_gc.h). */
#define GC_LINK_MASK    (~(uint64_t)3)
#define INTERP_WALK_MAX 256

/* Whether the GC list whose head is at `head` is a well-formed circular doubly linked list as far
 * as a few links show: empty (the head points at itself both ways), or head->next->prev == head
 * (and two more steps forward agree), or head->prev->next == head. The target keeps running: a
 * busy one appends to generation 0 and collects all the time, so one side agreeing is enough and
 * a check that fails is read again. Under a wrong layout the links are not pointers at all and
 * never agree. The links are read without consulting the maps taken at the start: a busy heap
 * maps new arenas all the time, and a read of an unmapped address just fails. */
#define LIST_CHECK_ATTEMPTS 16
static bool gc_list_well_formed(Rmem *r, RAddr head)
{
    for (int attempt = 0; attempt < LIST_CHECK_ATTEMPTS; attempt++) {
        uint64_t h[2];
        if (rmem_read(r, head, h, sizeof(h)) < 0)
            return false;
        uint64_t next = h[0] & GC_LINK_MASK, prev = h[1] & GC_LINK_MASK;
        if (next == head && prev == head)
            return true;
        if (next != head) {
            uint64_t n[2];
            bool ok = rmem_read(r, next, n, sizeof(n)) >= 0 && (n[1] & GC_LINK_MASK) == head;
            uint64_t at = next, succ = n[0] & GC_LINK_MASK;
            for (int step = 0; step < 2 && ok && succ != head; step++) {
                uint64_t sn[2];
                ok = rmem_read(r, succ, sn, sizeof(sn)) >= 0 && (sn[1] & GC_LINK_MASK) == at;
                at = succ;
                succ = sn[0] & GC_LINK_MASK;
            }
            if (ok)
                return true;
        }
        if (prev != head) {
            uint64_t p[2];
            if (rmem_read(r, prev, p, sizeof(p)) >= 0 && (p[0] & GC_LINK_MASK) == head)
                return true;
        }
    }
    return false;
}

/* Rounds of the structural check, a pause apart, before a target that is always collecting is
 * left for the next sample: at most about 50 ms, once per process. */
#define CHECK_ROUNDS         50
#define CHECK_ROUND_PAUSE_NS 1000000
#define CHECK_FAILED_ROUNDS  10

/* Whether a collection ran between two reads of the GC state: every collection of generation g
 * bumps the count of generation g+1 (or, for the oldest, resets its own), and up to 3.14 the
 * stats array in the state counts collections. */
static bool collections_moved(const PyLayout *l, const uint8_t *a, const uint8_t *b)
{
    for (uint32_t g = 0; g < l->gc.ngenerations; g++) {
        uint32_t off = l->gc.generations + g * l->gc.generation_size + l->gc.generation_count;
        if (g > 0 && memcmp(a + off, b + off, sizeof(int)) != 0)
            return true;
    }
    if (l->gc.stats_kind == PYGCS_ARRAY && l->gc.stats + l->gc.stats_size <= l->gc.size)
        for (uint32_t g = 0; g < l->gc.ngenerations; g++) {
            uint32_t off = l->gc.stats + g * l->gc.stats_entry_size + l->gc.stat_collections;
            if (memcmp(a + off, b + off, 8) != 0)
                return true;
        }
    return false;
}

/* The free-threaded GC state (free_threaded) has the default build's fields but keeps no
 * lists: its generation and permanent heads are never linked (Python/gc_free_threading.c), so
 * each is unused: zero, or an empty list pointing at itself. The per-thread allocation count must
 * lie past the PyThreadState the target declares and inside the _PyThreadStateImpl the table
 * declares. gc: the state's bytes, read at `at`. */
static int ft_gc_checks(const PyLayout *l, const uint8_t *gc, RAddr at, char *why, size_t whylen)
{
    if (l->tstate.alloc_count < l->tstate.size || l->tstate.alloc_count + 8 > l->tstate.impl_size) {
        snprintf(why, whylen, "the thread allocation count at %u is outside _PyThreadStateImpl",
                 l->tstate.alloc_count);
        return -ENXIO;
    }
    for (uint32_t g = 0; g <= l->gc.ngenerations; g++) {
        uint32_t off = g < l->gc.ngenerations ? l->gc.generations + g * l->gc.generation_size
                                              : l->gc.permanent_generation;
        uint64_t links[2];
        int threshold;
        memcpy(links, gc + off, sizeof(links));
        memcpy(&threshold, gc + off + l->gc.generation_threshold, sizeof(threshold));
        bool unused = (links[0] == 0 && links[1] == 0) || ((links[0] & GC_LINK_MASK) == at + off &&
                                                           (links[1] & GC_LINK_MASK) == at + off);
        if (!unused || threshold < 0) {
            snprintf(why, whylen, "free-threaded generation %u head is not unused", g);
            return -ENXIO;
        }
    }
    return 0;
}

int pyloc_check_layout(const PyLayout *l, Rmem *r, RAddr runtime, const Maps *maps, char *why,
                       size_t whylen)
{
    /* The interpreter list: head and main are mapped, and walking next from head reaches main. */
    uint64_t head, main_interp;
    if (rmem_read_u64(r, runtime + l->runtime.interpreters_head, &head) < 0 || head == 0 ||
        !maps_readable(maps, head, 8) ||
        rmem_read_u64(r, runtime + l->runtime.interpreters_main, &main_interp) < 0 ||
        main_interp == 0 || !maps_readable(maps, main_interp, l->interp.size)) {
        snprintf(why, whylen,
                 "the interpreter list head or main interpreter is not a mapped "
                 "pointer");
        return -ENXIO;
    }
    uint64_t at = head;
    for (int i = 0; i < INTERP_WALK_MAX && at != main_interp && at != 0; i++) {
        if (!maps_readable(maps, at, l->interp.size) ||
            rmem_read_u64(r, at + l->interp.next, &at) < 0)
            at = 0;
    }
    if (at != main_interp) {
        snprintf(why, whylen, "the interpreter list does not reach the main interpreter");
        return -ENXIO;
    }

    RAddr gc = l->runtime.gc != PYL_NONE ? runtime + l->runtime.gc : main_interp + l->interp.gc;
    uint8_t buf[2048], after[2048];
    if (l->gc.size > sizeof(buf)) {
        snprintf(why, whylen, "the GC state is larger than pymemd reads");
        return -ENXIO;
    }
    /* While a collection runs, the lists are being spliced and _gc_prev holds reference counts
     * (gc_refs), so links do not agree: a round counts against the layout only when no
     * collection ran, that is the flag was clear and the GC state's collection counters did not
     * move between the two reads around it. Objects freed by the thousand (a big container
     * dropped) unlink from the lists as fast as they are read, so one good round confirms the
     * layout and only CHECK_FAILED_ROUNDS bad ones, a pause apart, refuse it; under a wrong
     * layout no round is ever good. A target that never lets a round count is a transient state
     * (-EAGAIN: located again on the next sample), not a verdict. */
    bool judged = false;
    int failed = -1, failed_rounds = 0;
    for (int round = 0; round < CHECK_ROUNDS && !judged; round++) {
        if (round > 0)
            nanosleep(&(struct timespec){0, CHECK_ROUND_PAUSE_NS}, NULL);
        if (rmem_read(r, gc, buf, l->gc.size) < 0) {
            snprintf(why, whylen, "the GC state is not readable");
            return -ENXIO;
        }
        int enabled, collecting;
        memcpy(&enabled, buf + l->gc.enabled, sizeof(enabled));
        memcpy(&collecting, buf + l->gc.collecting, sizeof(collecting));
        if ((enabled != 0 && enabled != 1) || (collecting != 0 && collecting != 1)) {
            snprintf(why, whylen, "the GC flags are not 0 or 1 (enabled %d, collecting %d)",
                     enabled, collecting);
            return -ENXIO;
        }
        if (l->free_threaded)
            return ft_gc_checks(l, buf, gc, why, whylen);
        if (collecting)
            continue;
        int bad = -1;
        for (uint32_t g = 0; g <= l->gc.ngenerations && bad < 0; g++) {
            /* The generations, then the permanent generation (gc.freeze()). */
            uint32_t off = g < l->gc.ngenerations ? l->gc.generations + g * l->gc.generation_size
                                                  : l->gc.permanent_generation;
            int threshold;
            memcpy(&threshold, buf + off + l->gc.generation_threshold, sizeof(threshold));
            if (threshold < 0) {
                snprintf(why, whylen, "generation %u has a negative threshold (%d)", g, threshold);
                return -ENXIO;
            }
            if (!gc_list_well_formed(r, gc + off))
                bad = (int)g;
        }
        if (bad < 0) {
            judged = true;
            break;
        }
        if (rmem_read(r, gc, after, l->gc.size) < 0) {
            snprintf(why, whylen, "the GC state is not readable");
            return -ENXIO;
        }
        memcpy(&collecting, after + l->gc.collecting, sizeof(collecting));
        if (collecting == 0 && !collections_moved(l, buf, after))
            failed = bad;
        if (failed >= 0 && ++failed_rounds >= CHECK_FAILED_ROUNDS) {
            snprintf(why, whylen, "%s %d is not a well-formed GC list",
                     (uint32_t)failed < l->gc.ngenerations ? "generation"
                                                           : "permanent generation, after",
                     failed);
            return -ENXIO;
        }
    }
    if (!judged) {
        snprintf(why, whylen, "the GC was collecting throughout the check");
        return -EAGAIN;
    }
    if (l->gc.stats_kind == PYGCS_RING) {
        /* 3.15: the stats live behind a pointer, each ring's cursor within its length. */
        uint64_t p;
        memcpy(&p, buf + l->gc.stats, sizeof(p));
        uint8_t stats[4096];
        if (p == 0 || l->gc.stats_size > sizeof(stats) ||
            !maps_readable(maps, p, l->gc.stats_size) ||
            rmem_read(r, p, stats, l->gc.stats_size) < 0) {
            snprintf(why, whylen, "the GC stats pointer is not mapped");
            return -ENXIO;
        }
        for (int g = 0; g < 3; g++) {
            int8_t idx;
            memcpy(&idx, stats + l->gc.stats_ring[g].index, 1);
            if (idx < 0 || (uint32_t)idx >= l->gc.stats_ring[g].len) {
                snprintf(why, whylen, "GC stats ring %d has its cursor at %d of %u", g, idx,
                         l->gc.stats_ring[g].len);
                return -ENXIO;
            }
        }
    }
    return 0;
}

/* pymalloc's state (3.12+), checked on its own: the arena counters must be ordered (currently
 * allocated <= high-water mark <= arena table size) and the arena table mapped. A state that does
 * not check out makes pymalloc unreadable, not the target. */
static bool obmalloc_state_checks_out(const PyLayout *l, Rmem *r, const Maps *maps, RAddr state,
                                      char *why, size_t whylen)
{
    uint64_t narenas, highwater, arenas, raw;
    uint32_t maxarenas;
    RmemIov iov[] = {
        {state + l->obmalloc.narenas_currently_allocated, &narenas, 8},
        {state + l->obmalloc.narenas_highwater, &highwater, 8},
        {state + l->obmalloc.arenas, &arenas, 8},
        {state + l->obmalloc.maxarenas, &maxarenas, 4},
        {state + l->obmalloc.raw_allocated_blocks, &raw, 8},
    };
    if (state == 0 || !maps_readable(maps, state, l->obmalloc.state_size) ||
        rmem_readv(r, iov, ARRAY_SIZE(iov)) < 0) {
        snprintf(why, whylen, "its state is not mapped memory");
        return false;
    }
    /* The arena table starts at 16 entries and doubles (new_arena(), Objects/obmalloc.c). */
    /* The arena table is malloc'd and grows by realloc: it may be newer than the maps. */
    uint8_t first[64];
    if (narenas > highwater || highwater > maxarenas || (int64_t)raw < 0 ||
        (maxarenas && (!arenas || l->obmalloc.arena_object_size > sizeof(first) ||
                       rmem_read(r, arenas, first, l->obmalloc.arena_object_size) < 0))) {
        snprintf(why, whylen,
                 "its counters do not hold together (arenas %" PRIu64 ", high-water %" PRIu64
                 ", table of %u)",
                 narenas, highwater, maxarenas);
        return false;
    }
    return true;
}

/* 3.12+: pymalloc's state in (or behind a pointer in) the main interpreter, checked on its own. */
static void locate_obmalloc_state(PyLoc *loc, Rmem *r, const Maps *maps)
{
    const PyLayout *l = &loc->layout;
    char why[128] = "";
    uint64_t main_interp = 0, state = 0;
    if (rmem_read_u64(r, loc->runtime + l->runtime.interpreters_main, &main_interp) < 0)
        snprintf(why, sizeof(why), "the main interpreter is not readable");
    else if (l->obmalloc.kind == PYOBM_EMBEDDED)
        state = main_interp + l->interp.obmalloc;
    else if (rmem_read_u64(r, main_interp + l->interp.obmalloc, &state) < 0)
        state = 0;
    if (!why[0] && obmalloc_state_checks_out(l, r, maps, state, why, sizeof(why))) {
        loc->obmalloc_ok = true;
        return;
    }
    snprintf(loc->obmalloc_reason, sizeof(loc->obmalloc_reason),
             "the pymalloc state of layout %s [%s] does not check out: %s", loc->layout_name,
             l->source, why);
}

/* 3.8-3.11: pymalloc's counters are static symbols. */
static void locate_obmalloc_symbols(PyLoc *loc, Rmem *r, const ElfFacts *facts, uint64_t bias)
{
    const PyLayout *l = &loc->layout;
    if (l->obmalloc.kind != PYOBM_SYMBOLS || !facts)
        return;
    PyObmallocSymbols *s = &loc->obm;
#define REL(x) ((x) ? bias + (x) : 0)
    s->narenas_currently_allocated = REL(facts->obm_narenas);
    s->narenas_highwater = REL(facts->obm_highwater);
    s->arenas = REL(facts->obm_arenas);
    s->maxarenas = REL(facts->obm_maxarenas);
    s->raw_allocated_blocks = REL(facts->obm_raw_blocks);
    s->allocated_blocks = REL(facts->obm_blocks);
#undef REL
    bool blocks = l->obmalloc.counter_symbol ? s->allocated_blocks != 0
                                             : s->raw_allocated_blocks && s->arenas && s->maxarenas;
    if (!(s->narenas_currently_allocated && s->narenas_highwater && blocks)) {
        loc->obmalloc_pending = facts->debug_pending;
        loc->debug_gen = facts->debug_gen;
        snprintf(loc->obmalloc_reason, sizeof(loc->obmalloc_reason),
                 "stripped CPython %s binary: pymalloc counters are static symbols; install its "
                 "debug file (e.g. python3.X-dbg) or set DEBUGINFOD_URLS: %s",
                 loc->layout_name, facts->debug_note[0] ? facts->debug_note : "no debug file");
        return;
    }
    uint64_t narenas, highwater;
    if (rmem_read_u64(r, s->narenas_currently_allocated, &narenas) < 0 ||
        rmem_read_u64(r, s->narenas_highwater, &highwater) < 0 || narenas > highwater) {
        snprintf(loc->obmalloc_reason, sizeof(loc->obmalloc_reason),
                 "the pymalloc counters of layout %s do not check out (arenas not within their "
                 "high-water mark)",
                 loc->layout_name);
        return;
    }
    loc->obmalloc_ok = true;
}

bool pyloc_outdated(const PyLoc *loc)
{
    return loc->obmalloc_pending && debuginfo_generation() != loc->debug_gen;
}

int pyloc_choose_layout(PyLoc *loc, const PyLayout *const *cands, size_t n, const uint8_t *dbg,
                        size_t dbglen, Rmem *r, const Maps *maps)
{
    const PyLayout *chosen = NULL;
    PyLayout l, chosen_l;
    int changed = 0;
    size_t ok = 0, bad_image = 0, busy = 0;
    char refusals[512] = "";
    size_t rlen = 0;
    for (size_t i = 0; i < n; i++) {
        l = *cands[i];
        char why[160] = "";
        int k = 0;
        if (l.debug_offsets.size > 0) {
            k = dbg ? pyloc_apply_debug_offsets(&l, dbg, dbglen) : -EINVAL;
            if (k == -EINVAL) {
                bad_image++;
                snprintf(why, sizeof(why),
                         "its _Py_DebugOffsets failed validation (sizes or "
                         "offsets out of range)");
            } else if (k == -ENXIO) {
                snprintf(why, sizeof(why), "the target's GC state is not %u bytes%s",
                         cands[i]->gc.size,
                         cands[i]->gc.stats_kind == PYGCS_RING ? " with these stats" : "");
            }
        }
        if (k >= 0) {
            int c = pyloc_check_layout(&l, r, loc->runtime, maps, why, sizeof(why));
            if (c == -ESRCH || c == -EPERM)
                return c;
            if (c == -EAGAIN)
                busy++;
            if (c >= 0) {
                ok++;
                if (!chosen) {
                    chosen = cands[i];
                    chosen_l = l;
                    changed = k;
                }
            }
        }
        if (why[0] && rlen < sizeof(refusals))
            rlen += (size_t)snprintf(refusals + rlen, sizeof(refusals) - rlen, "%s%s [%s]: %s",
                                     rlen ? "; " : "", cands[i]->name, cands[i]->source, why);
    }
    if (ok > 1) {
        char names[256] = "";
        size_t nlen = 0;
        for (size_t i = 0; i < n && nlen < sizeof(names); i++)
            nlen += (size_t)snprintf(names + nlen, sizeof(names) - nlen, "%s%s [%s]",
                                     i ? " and " : "", cands[i]->name, cands[i]->source);
        set_status(loc, PYLOC_UNSUPPORTED,
                   "CPython %s: more than one layout checks out on this target (%s), so which it "
                   "has is not known",
                   loc->version, names);
        return 0;
    }
    if (!chosen && busy > 0)
        return -EAGAIN; /* the GC never stood still: try again on the next sample */
    if (!chosen) {
        if (bad_image == n)
            set_status(loc, PYLOC_UNSUPPORTED,
                       "CPython %s: the target's _Py_DebugOffsets failed validation (sizes or "
                       "offsets out of range)",
                       loc->version);
        else
            set_status(loc, PYLOC_UNSUPPORTED,
                       "CPython %s (version from %s): no layout checks out on this target "
                       "(the interpreter may still be starting): %s",
                       loc->version, loc->version_source ? loc->version_source : "?", refusals);
        return 0;
    }
    loc->layout = chosen_l;
    loc->layout_name = chosen->name;
    loc->debug_offsets_overrides = (unsigned)changed;
    loc->status = PYLOC_OK;
    if (chosen_l.obmalloc.kind == PYOBM_EMBEDDED || chosen_l.obmalloc.kind == PYOBM_POINTER)
        locate_obmalloc_state(loc, r, maps);
    else if (chosen_l.free_threaded)
        snprintf(loc->obmalloc_reason, sizeof(loc->obmalloc_reason),
                 "free-threaded CPython allocates with mimalloc: there are no pymalloc arenas "
                 "(allocated_blocks and allocated_bytes count the blocks in use in its heaps)");
    return 0;
}

static void set_status(PyLoc *loc, PyLocStatus st, const char *fmt, ...) _printf_(3, 4);
static void set_status(PyLoc *loc, PyLocStatus st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loc->status = st;
    vsnprintf(loc->reason, sizeof(loc->reason), fmt, ap);
    va_end(ap);
}

int pyloc_locate(PyElfCache *cache, pid_t pid, Rmem *r, PyLoc *ret)
{
    _cleanup_(maps_freep) Maps *maps = NULL;
    int k = maps_read(pid, &maps);
    if (k < 0)
        return k;

    PyLoc loc = {0};
    char exe[PATH_MAX] = "", linkpath[64];
    snprintf(linkpath, sizeof(linkpath), "/proc/%d/exe", pid);
    ssize_t n = readlink(linkpath, exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *del = strstr(exe, " (deleted)");
        if (del)
            *del = 0;
    }

    /* Candidates in order: libpython, the executable, anything named *python*, then every other
     * file mapping (an embedding host may link Python statically). */
    const MapsEntry *found = NULL, *old_python = NULL, *denied = NULL;
    const ElfFacts *facts = NULL;
    ElfFacts scratch, found_facts;
    for (int pass = 0; pass < 4 && !found; pass++) {
        for (size_t i = 0; i < maps->n && !found; i++) {
            const MapsEntry *e = &maps->v[i];
            if (!e->path || e->path[0] != '/' || e->offset != 0)
                continue;
            bool is_exe = strcmp(e->path, exe) == 0;
            bool lib = name_is_libpython(e->path), py = name_has_python(e->path);
            bool take = pass == 0   ? lib
                        : pass == 1 ? is_exe && !lib
                        : pass == 2 ? py && !lib && !is_exe
                                    : !py && !is_exe;
            if (!take)
                continue;
            const ElfFacts *f = facts_get(cache, pid, r, e, is_exe, &scratch);
            if (f && f->valid && f->has_runtime) {
                found = e;
                found_facts = *f; /* scratch may be reused by a later candidate */
                facts = &found_facts;
            } else if (f && f->valid && f->has_python_api && !old_python) {
                old_python = e;
            } else if (f && pass < 3 && !denied &&
                       (f->open_error == -EACCES || f->open_error == -EPERM)) {
                denied = e;
            }
        }
    }
    if (!found && old_python) {
        /* The C API without _PyRuntime: CPython 3.6 or older (or Python 2). */
        unsigned minor;
        bool dbg, ft;
        snprintf(loc.module, sizeof(loc.module), "%s", old_python->path);
        if (version_from_name(loc.module, &minor, &dbg, &ft)) {
            loc.hexversion = (3u << 24) | (minor << 16);
            loc.version_source = "file name";
            snprintf(loc.version, sizeof(loc.version), "3.%u", minor);
        }
        set_status(&loc, PYLOC_UNSUPPORTED,
                   "CPython %s: older than 3.8 is not supported (%s has no _PyRuntime)",
                   loc.version[0] ? loc.version : "before 3.7", loc.module);
        *ret = loc;
        return 0;
    }
    /* No binary told where _PyRuntime is: on 3.13+ its cookie can still be found in memory. */
    RAddr cookie = 0;
    if (!found && (cookie = scan_for_cookie(r, maps, exe)) != 0) {
        found = maps_find(maps, cookie);
        found_facts = (ElfFacts){.valid = true, .has_runtime = true};
        facts = &found_facts;
    }
    if (!found && denied) {
        /* A file that would be the first to look at (libpython, the executable, a *python*
         * file) could not be opened: say so, rather than guess the process is not Python. */
        snprintf(loc.module, sizeof(loc.module), "%s", denied->path);
        set_status(&loc, PYLOC_DENIED,
                   "cannot open %s to find the interpreter (permission denied): run pymemd as "
                   "root or with CAP_DAC_READ_SEARCH as well as CAP_SYS_PTRACE",
                   loc.module);
        *ret = loc;
        return 0;
    }
    if (!found) {
        set_status(&loc, PYLOC_NOT_PYTHON, "not a Python process (no module defines _PyRuntime)");
        *ret = loc;
        return 0;
    }
    snprintf(loc.module, sizeof(loc.module), "%s", found->path);
    loc.shared = strcmp(found->path, exe) != 0 && name_is_libpython(found->path);

    uint64_t bias = 0;
    if (cookie) {
        loc.runtime = cookie;
    } else if (module_bias(maps, found, facts, &bias) < 0) {
        set_status(&loc, PYLOC_UNSUPPORTED, "cannot work out where %s is loaded", loc.module);
        *ret = loc;
        return 0;
    } else {
        loc.runtime = bias + facts->runtime;
    }

    bool free_threaded = false;
    k = read_version(&loc, r, facts, bias, &free_threaded);
    if (k == -ESRCH || k == -EPERM)
        return k;
    if (k < 0) {
        set_status(&loc, PYLOC_UNSUPPORTED, "cannot tell the CPython version of %s", loc.module);
        *ret = loc;
        return 0;
    }
    unsigned minor;
    bool dbg = false, ft_name = false;
    if (version_from_name(loc.module, &minor, &dbg, &ft_name))
        loc.debug_build = dbg;
    free_threaded = free_threaded || ft_name;

    if (facts->ref_debug)
        loc.debug_build = true;

    if (loc.version_exact)
        pylayout_format_version(loc.hexversion, loc.version, sizeof(loc.version));
    else
        snprintf(loc.version, sizeof(loc.version), "%u.%u", loc.hexversion >> 24,
                 (loc.hexversion >> 16) & 0xff);
    const PyLayout *cands[8];
    const char *why = NULL;
    size_t ncands = pylayout_find(loc.hexversion, loc.debug_build, free_threaded, cands,
                                  ARRAY_SIZE(cands), &why);
    if (ncands == 0) {
        set_status(&loc, PYLOC_UNSUPPORTED, "CPython %s%s: %s", loc.version,
                   loc.debug_build ? " (debug build)" : "", why);
        *ret = loc;
        return 0;
    }
    /* 3.13+: the target's own _Py_DebugOffsets, at the start of _PyRuntime, read once. Each
     * candidate table says how long it is (it only changes between minor versions). */
    uint8_t dbgbuf[2048];
    size_t dbglen = 0;
    for (size_t i = 0; i < ncands; i++)
        dbglen = MAX(dbglen, (size_t)cands[i]->debug_offsets.size);
    if (dbglen > sizeof(dbgbuf))
        return -EINVAL;
    if (dbglen > 0 && (k = rmem_read(r, loc.runtime, dbgbuf, dbglen)) < 0)
        return k;
    k = pyloc_choose_layout(&loc, cands, ncands, dbglen ? dbgbuf : NULL, dbglen, r, maps);
    if (k < 0)
        return k;
    if (loc.status != PYLOC_OK) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return -ESRCH;
        *ret = loc;
        return 0;
    }
    if (loc.layout.obmalloc.kind == PYOBM_SYMBOLS)
        locate_obmalloc_symbols(&loc, r, facts, bias);
    *ret = loc;
    return 0;
}
