/* refs: who holds the live instances of a type (DESIGN §4.1), read out of the census's copy of
 * the heap: the direct referrers grouped by type, the referrers pymemd does not follow (found by
 * scanning their bodies for the instances' addresses), weak references, and the chains from
 * sys.modules (module globals, class attributes), from the threads' frame locals, and then from
 * the interpreter's tables no module holds (the codec registry) that keep the instances alive. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "python/census.h"
#include "util/macro.h"

#define REFS_NAME_MAX  128
#define REFS_ROOTS_MAX 50 /* chains reported, shortest first */
#define REFS_CHAIN_MAX 8  /* links of a chain reported */

typedef struct RefsGroup {
    char type[REFS_NAME_MAX]; /* type(referrer).__name__ */
    int64_t objects;          /* referrer objects */
    int64_t refs;             /* references to instances they hold */
} RefsGroup;

typedef struct RefsRoot {
    char root[2 * REFS_NAME_MAX + 8]; /* "module.name", "module.Class.name"; "" when none */
    const char *kind;                 /* "module global", "class attribute", "thread frame local",
                                         "interpreter table", "sys.modules", "more chains",
                                         "unreached" */
    int64_t holds;                    /* instances reached through this chain */
    int nchain;
    char chain[REFS_CHAIN_MAX][REFS_NAME_MAX + 16]; /* "module leaky", "dict _cache" */
} RefsRoot;

typedef struct Refs {
    pid_t pid;
    char type[REFS_NAME_MAX]; /* the type asked for, as its tp_name */
    int64_t count;            /* live GC-tracked instances */
    double at, pause_seconds, walk_seconds;
    int stops;                                /* how often the target was stopped (census.h) */
    bool snapshot;                            /* walked over a copy after the target was resumed */
    RefsGroup *referrers, *unfollowed, *weak; /* largest first */
    size_t nreferrers, nunfollowed, nweak;
    RefsRoot *roots;
    size_t nroots;
    int64_t unreadable; /* objects whose memory could not be read, so not searched */
} Refs;

/* Who holds the GC-tracked instances of type `type` (a tp_name, a __name__ when unambiguous, or
 * census_type_key()) in the target, computed over a census copy (see census_take_visit; expect and
 * hints as there). Returns 0 with *ret (the caller frees it with refs_free), or -errno with a
 * sentence in err: -ENOENT (no live object of that type), -EINVAL (the name is ambiguous) or the
 * census's. */
int refs_take(PyReader *pr, Rmem *r, pid_t pid, const ProcStamp *expect, const char *type,
              CensusMode mode, double max_pause, CensusHints **hints, Refs **ret, char *err,
              size_t errlen);
Refs *refs_free(Refs *x);
DEFINE_CLEANUP_FUNC(Refs *, refs_free)

/* The JSON document of §4.1; the caller frees the string. NULL on allocation failure. */
char *refs_json(const Refs *x);
