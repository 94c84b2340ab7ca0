/* census: live GC-tracked objects of a target, by type, as gc.get_objects() would list them plus
 * the frozen (permanent) generation.
 *
 * While the target is stopped (freeze mode) the pymalloc arenas in use are copied in bulk, and
 * the generation lists are walked in that local copy; objects outside the arenas (larger than
 * 512 bytes, type objects, strings of type names) are read page by page on demand and cached.
 * In non-blocking mode the same walk runs against a running target and every link is checked,
 * so a walk torn by the mutator is reported as inconsistent instead of as numbers. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
    double copy_seconds;  /* of the pause: copying the arenas */
    bool frozen;          /* taken with the target stopped */
    int64_t total;        /* every object counted, frozen ones included */
    int64_t generation[CENSUS_GENERATIONS];
    int64_t generation_bytes[CENSUS_GENERATIONS];
    uint64_t copied_bytes; /* pymalloc arena bytes copied */
    uint64_t pages_read;   /* pages read on demand */
    CensusType *types;     /* largest count first */
    size_t ntypes;
    char *strings; /* the names the types point into, one allocation */
} Census;

/* The copy buffer of a census, faulted in before the target is stopped (a fresh buffer costs
 * more in page faults than the copy itself). A caller may keep it for the next census. */
typedef struct CensusBuffer CensusBuffer;
CensusBuffer *censusbuffer_free(CensusBuffer *b);

typedef enum CensusMode {
    CENSUS_FREEZE = 0,
    CENSUS_NONBLOCKING,
} CensusMode;

/* Takes a census of the interpreter reader pr has located (pr must have sampled once). *buffer
 * (NULL at first) is the target's copy buffer, grown and kept for next time. Gives up
 * when the target would stay stopped longer than max_pause seconds. Returns 0 with *ret (the
 * caller frees it with census_free), or -errno with a sentence in err: -EBUSY (the GC is
 * collecting), -ETIMEDOUT (abandoned at max_pause; the target was resumed), -EIO (the lists did
 * not hold together: a torn non-blocking walk or a corrupt target), -ESRCH, -EPERM. The target
 * is never left stopped. */
int census_take(PyReader *pr, Rmem *r, pid_t pid, CensusMode mode, double max_pause,
                CensusBuffer **buffer, Census **ret, char *err, size_t errlen);
/* Censuses are shared read-only between the sampler and snapshots: a reference each. */
Census *census_ref(Census *c);
/* Drops a reference; frees on the last. NULL-safe; returns NULL. */
Census *census_free(Census *c);
DEFINE_CLEANUP_FUNC(Census *, census_free)
