/* pyloc: finds the interpreter inside a target process.
 *
 * From /proc/PID/maps and the ELF files of the target (opened through /proc/PID/root so that
 * containers work) it finds the module that defines _PyRuntime, the load bias, the exact version
 * and the layout table, and for 3.13+ overlays the table with the target's own _Py_DebugOffsets.
 * The ELF work is cached by device, inode and build-id in a PyElfCache shared by all targets. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/maps.h"
#include "python/layout.h"
#include "remote/rmem.h"
#include "util/macro.h"

typedef struct PyElfCache PyElfCache;

int pyelfcache_new(PyElfCache **ret);
PyElfCache *pyelfcache_free(PyElfCache *c);
DEFINE_CLEANUP_FUNC(PyElfCache *, pyelfcache_free)
/* How many ELF files were opened so far (tests and benchmarks check the cache works). */
unsigned pyelfcache_opens(const PyElfCache *c);

typedef enum PyLocStatus {
    PYLOC_OK = 0,
    PYLOC_NOT_PYTHON,  /* no module defines _PyRuntime */
    PYLOC_UNSUPPORTED, /* Python, but a version or build pymemd cannot read */
    PYLOC_DENIED,      /* the interpreter's binary exists but may not be opened */
} PyLocStatus;

/* Where the obmalloc statics of 3.8–3.11 are (PYOBM_SYMBOLS), as runtime addresses; 0 when the
 * symbol was not found. */
typedef struct PyObmallocSymbols {
    RAddr narenas_currently_allocated;
    RAddr narenas_highwater;
    RAddr arenas;
    RAddr maxarenas;
    RAddr raw_allocated_blocks; /* 3.9–3.11 */
    RAddr allocated_blocks;     /* 3.8: _Py_AllocatedBlocks */
} PyObmallocSymbols;

typedef struct PyLoc {
    PyLocStatus status;
    char reason[256]; /* why not OK, in English */

    RAddr runtime;       /* &_PyRuntime */
    uint32_t hexversion; /* PY_VERSION_HEX; micro/level unknown (0) only when version_exact
                            is false */
    bool version_exact;
    char version[32]; /* "3.11.2" */
    const char
        *version_source; /* "debug offsets", "Py_Version", "Py_GetVersion buffer", "file name" */
    bool shared;         /* _PyRuntime is in a libpython, not the executable */
    bool debug_build;    /* a pydebug build (Py_REF_DEBUG): file name ends in "d" */
    char module[512];    /* the path (as in maps) of the module defining _PyRuntime */

    PyLayout layout; /* the table, overlaid with the target's debug offsets (3.13+) */
    const char *layout_name;
    unsigned debug_offsets_overrides; /* how many table values the target's offsets replaced */

    PyObmallocSymbols obm;
    bool obmalloc_ok; /* counters reachable */
    char obmalloc_reason[300];
    bool obmalloc_pending; /* not reachable yet: the debug file is being fetched */
    unsigned debug_gen;    /* debuginfo_generation() then */
} PyLoc;

/* Locates the interpreter in process `pid` through reader `r`. Returns 0 with ret->status telling
 * OK / not Python / unsupported; -errno when the process could not be inspected at all (-ESRCH
 * gone, -EACCES/-EPERM denied). */
int pyloc_locate(PyElfCache *cache, pid_t pid, Rmem *r, PyLoc *ret);

/* Whether locating again may find more: the symbols of pymalloc's counters were being fetched
 * from debuginfod in the background, and a fetch has finished since. */
bool pyloc_outdated(const PyLoc *loc);

/* Overlays a layout table with the values of a _Py_DebugOffsets image `dbg` of `len` bytes read
 * from a target (3.13+): every offset it carries for a field pymemd reads, after checking each
 * lies within the struct size the image declares (the sizes bound reads, they pick nothing).
 * Returns the number of values that differed from the table; -EINVAL when the image is not valid
 * (bad cookie, sizes out of range, a field outside its struct); -ENXIO when it is valid but its GC
 * state (3.15+: GC stats) size is not the table's, so the offsets the table adds inside it are
 * not the target's. Nothing is changed on failure. */
int pyloc_apply_debug_offsets(PyLayout *l, const uint8_t *dbg, size_t len);

/* Confirms a layout on the live target at `runtime`: the interpreter list reaches the main
 * interpreter, the GC flags are 0 or 1, thresholds are not negative, every generation (and the
 * permanent one) is a well-formed circular list whose links agree, and 3.15's stats rings hold
 * valid cursors. Returns 0, or -ENXIO with the reason in why. */
int pyloc_check_layout(const PyLayout *l, Rmem *r, RAddr runtime, const Maps *maps, char *why,
                       size_t whylen);

/* Picks the layout of a target among the candidate tables of its version (pylayout_find()):
 * each is overlaid with the target's debug offsets `dbg` (NULL before 3.13) and checked with
 * pyloc_check_layout(). Exactly one must check out: then loc->layout, layout_name and
 * debug_offsets_overrides are set and loc->status is PYLOC_OK; otherwise PYLOC_UNSUPPORTED with
 * a reason naming each candidate. loc->runtime, version and version_source must be set. Returns
 * 0, or -errno when the target could not be read at all. */
int pyloc_choose_layout(PyLoc *loc, const PyLayout *const *cands, size_t n, const uint8_t *dbg,
                        size_t dbglen, Rmem *r, const Maps *maps);
