/* census: live GC-tracked objects of a target, by type, as gc.get_objects() would list them plus
 * the frozen (permanent) generation.
 *
 * While the target is stopped (freeze mode) the pymalloc arenas in use are copied in bulk, along
 * with the pages outside them that the previous census of the process needed (objects larger
 * than 512 bytes, type objects, the strings of type names); the target is then resumed and the
 * generation lists are walked in that copy. A census and a walk with a visitor (referrers) each
 * remember their own pages; the first of each kind learns them from a walk of the running target.
 * Should the walk find a page missing (the heap moved), a walk of the running target learns the
 * pages and a second stop copies them too; should that fall short again, a last pass walks with
 * the target stopped and reads what it lacks on demand. In non-blocking mode the same walk runs
 * against a running target and every link is checked, so a walk torn by the mutator is reported as
 * inconsistent instead of as numbers.
 *
 * A free-threaded build (3.13t) has no generation lists: the blocks in use of its threads' GC
 * mimalloc heaps and of the abandoned pages are copied instead of arenas and walked as
 * gc_visit_heaps does (python/mimalloc.c); its frozen objects make generation[3]. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/procinfo.h"
#include "python/locate.h"
#include "python/pyread.h"
#include "remote/rmem.h"
#include "util/macro.h"

#define CENSUS_GENERATIONS 4 /* 0, 1, 2 and the permanent generation */

typedef struct CensusType {
    const char *name;   /* unique: type(o).__name__, qualified when two types share it */
    const char *pyname; /* type(o).__name__ as it is, what a Counter of names would merge */
    uint64_t type;      /* the type object's address */
    int64_t count;
    int64_t bytes; /* basicsize + itemsize * |ob_size| + GC header + pre-header, summed */
} CensusType;

typedef struct Census {
    atomic_int refs;
    double at;            /* epoch seconds */
    double pause_seconds; /* how long the target was stopped (0 in non-blocking mode) */
    double walk_seconds;  /* how long the census took in all */
    double stop_seconds;  /* of the pause: stopping the threads */
    double copy_seconds;  /* of the pause: copying the arenas and the hinted pages */
    bool frozen;          /* taken with the target stopped */
    int64_t total;        /* every object counted, frozen ones included */
    int64_t generation[CENSUS_GENERATIONS];
    int64_t generation_bytes[CENSUS_GENERATIONS];
    uint64_t copied_bytes; /* pymalloc arena bytes copied */
    uint64_t pages_read;   /* pages read outside the arenas */
    int stops;             /* how often the target was stopped: 1; 2 or 3 when a copy fell short */
    bool snapshot;         /* walked over a copy after the target was resumed */
    /* The permanent list's ends when it was walked, and when (monotonic): its length,
     * generation[3], is what pyreader samples serve as frozen until the ends move. */
    uint64_t permanent_first, permanent_last;
    double permanent_at;
    CensusType *types; /* largest count first */
    size_t ntypes;
    char *strings; /* the names the types point into, one allocation */
} Census;

/* What a census learns for the next one of the same process: the pages outside the arenas its
 * walk needed. The caller keeps it per process, from one census to the next. */
typedef struct CensusHints CensusHints;
CensusHints *censushints_free(CensusHints *h);

typedef enum CensusMode {
    CENSUS_FREEZE = 0,
    CENSUS_NONBLOCKING,
} CensusMode;

/* Takes a census of the interpreter reader pr has located (pr must have sampled once). *hints
 * (NULL at first) is what the previous census of this process learnt, updated. In freeze mode,
 * expect (if not NULL) is checked once the target is stopped, before it is read (see
 * freeze_process). Gives up when the target would stay stopped longer than max_pause seconds.
 * Returns 0 with *ret (the caller frees it with census_free), or -errno with a sentence in err:
 * -EBUSY (the GC is collecting, or another tracer holds the process), -ETIMEDOUT (abandoned at
 * max_pause; the target was resumed), -EIO (the lists did not hold together: a torn non-blocking
 * walk or a corrupt target), -ERANGE (the arena table claims memory the process has not mapped),
 * -E2BIG (more than census_max_memory), -ESTALE (not the expected process), -ESRCH, -EPERM. The
 * target is never left stopped. A census that succeeds hands the length of the permanent list to pr
 * (pyreader_note_frozen). */
int census_take(PyReader *pr, Rmem *r, pid_t pid, const ProcStamp *expect, CensusMode mode,
                double max_pause, CensusHints **hints, Census **ret, char *err, size_t errlen);
/* A census that also hands every object it walks to a visitor (python/refs.c). reset() runs
 * before each pass over the target (there may be two, see above); object() sees each object
 * walked (its PyObject address and type); done() runs once a pass has walked every list, while
 * the copy of the heap exists, and reads through read(rctx, ...): from the copy, or from the
 * stopped target. A read the copy lacks after the target was resumed fails with -ENODATA, which
 * done() must return: the census then copies again (see above), and the pages done() read are
 * copied in advance by the next census with a visitor that is given the same hints (a census
 * without one does not copy them). untracked(), when set, sees the live objects of a
 * free-threaded heap that gc.get_objects() leaves out because they are not tracked: once a thread
 * has started, 3.13t makes modules, their dicts, functions and classes immortal and its next
 * collection untracks them, but chains from sys.modules to what they hold still run through
 * them. */
typedef int (*CensusReadFn)(void *rctx, uint64_t addr, void *buf, size_t len);
typedef struct CensusVisitor {
    void (*reset)(void *ud);
    int (*object)(void *ud, uint64_t obj, uint64_t type);
    int (*done)(void *ud, CensusReadFn read, void *rctx);
    void *ud;
    int (*untracked)(void *ud, uint64_t obj, uint64_t type);
} CensusVisitor;
/* Tells the census that the visitor's reads through rctx (what done() was given) that follow are
 * for the references of obj, of type `type`, until the next call (obj 0: for no object). An
 * object whose reads leave the arenas is remembered, and inside the next stop its storage as it
 * is then is copied along, wherever it moved (a list's item array, a dict's key table). */
void census_read_for(void *rctx, uint64_t obj, uint64_t type);
/* A traverser's prefetch (traverser_set_prefetch) for reads through rctx: the pages of
 * [addr, addr + len) outside the arenas that the view lacks are read now, in a few system calls
 * instead of one a page, when the view reads on demand (a sealed one reads nothing). */
void census_prefetch(void *rctx, uint64_t addr, size_t len);
int census_take_visit(PyReader *pr, Rmem *r, pid_t pid, const ProcStamp *expect, CensusMode mode,
                      double max_pause, const CensusVisitor *vis, CensusHints **hints, Census **ret,
                      char *err, size_t errlen);
/* What a census may use of pymemd's own memory: the copy of the arenas, the pages hinted by the
 * previous census and those read on demand. A census that would need more is refused (-E2BIG)
 * before anything is copied, or abandoned when the walk needs more; the reason says so. Set
 * from census_max_memory. */
#define CENSUS_MAX_MEMORY_DEFAULT (1ull << 30)
void census_set_max_memory(uint64_t bytes);

/* The census key of a type whose __name__ (name) another type shares and whose tp_name has no
 * module to tell them apart: "name~" and 12 hex digits of a keyed hash (SipHash-2-4) of the type
 * object's address, under a key drawn at random once per daemon. It is the same for the same
 * type in every census while the daemon runs, so growth and referrers find it again, and it
 * does not give the address away (which would tell a reader where the target's heap is). The
 * census and the referrers lookup (refs.c) both name types through this function. "~", not "#":
 * in a URL "#" starts the fragment, and curl would cut "?type=" short there. Writes at
 * most len bytes, NUL included; returns what snprintf returns. */
int census_type_key(const char *name, uint64_t type, char *buf, size_t len);
uint64_t census_max_memory(void);

/* Censuses are shared read-only between the sampler and snapshots: a reference each. */
Census *census_ref(Census *c);
/* Drops a reference; frees on the last. NULL-safe; returns NULL. */
Census *census_free(Census *c);
DEFINE_CLEANUP_FUNC(Census *, census_free)
