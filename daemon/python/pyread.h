/* pyread: reads one sample of GC, pymalloc and thread counters out of a located interpreter.
 *
 * The sampling path: one batched process_vm_readv for the GC state, the allocator counters and
 * the list heads, then one small read per thread, plus the arena table and pool headers for
 * sys.getallocatedblocks(). The frozen (permanent) generation is a list whose length is what
 * gc.get_freeze_count() reports; it is walked only when its ends moved or the count is older
 * than PYREAD_FROZEN_MAX_AGE, since a large frozen heap costs one read per object. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "python/locate.h"
#include "remote/rmem.h"
#include "util/macro.h"

#define PYREAD_MAX_GENERATIONS 3
/* Seconds a frozen count may be reused while the permanent list's ends have not moved. */
#define PYREAD_FROZEN_MAX_AGE 60.0

/* -1 (or NaN for duration) marks a value this version does not have: rendered as null. */
typedef struct PyGcGeneration {
    int64_t count, threshold;
    int64_t collections, collected, uncollectable;
    int64_t candidates; /* 3.15+ */
    double duration;    /* 3.15+, seconds, cumulative */
} PyGcGeneration;

typedef struct PySample {
    bool enabled;
    bool collecting;
    int64_t frozen;    /* gc.get_freeze_count() */
    int64_t garbage;   /* len(gc.garbage) */
    int64_t heap_size; /* 3.14+: GC-tracked objects, -1 before */
    unsigned ngenerations;
    PyGcGeneration gen[PYREAD_MAX_GENERATIONS];

    int64_t threads; /* Python thread states of the main interpreter */

    bool pymalloc_ok;
    int64_t arenas, arenas_highwater, arena_bytes, allocated_blocks;
} PySample;

typedef struct PyReader PyReader;

/* A reader for one located target; copies what it needs from loc. The caller owns *ret. */
int pyreader_new(const PyLoc *loc, PyReader **ret);
PyReader *pyreader_free(PyReader *pr);
DEFINE_CLEANUP_FUNC(PyReader *, pyreader_free)

/* One 4-byte read of the GC's `collecting` flag, for estimating the share of time spent in
 * collections where the interpreter does not measure it (before 3.15). -EAGAIN until the first
 * sample has found the interpreter. */
int pyreader_poll_collecting(PyReader *pr, Rmem *r, bool *ret);

/* What a census needs from the reader: the addresses of the GC state and of the obmalloc state
 * (0 when the allocator counters live in statics, see the PyLoc), and the located interpreter.
 * -EAGAIN until the first sample has found the interpreter. */
int pyreader_bases(const PyReader *pr, RAddr *ret_gc, RAddr *ret_obmalloc, const PyLoc **ret_loc);

/* A second reader of the same interpreter for a census on another thread: the location and
 * the addresses the first has found, nothing it caches. -EAGAIN until pr has sampled once. The
 * caller owns *ret. */
int pyreader_census_copy(const PyReader *pr, PyReader **ret);

/* A live pymalloc arena: [address, used_end) holds the pools carved from it so far. */
typedef struct PyArena {
    uint64_t address, used_end;
} PyArena;

/* Reads the table of maxarenas `struct arena_object`s at `arenas` and returns the live arenas
 * (those with an address and at least one pool). -EIO when the table is larger than pymemd
 * accepts or an entry does not hold together. The caller frees *ret. */
int pyread_arenas(const PyLayout *l, Rmem *r, uint64_t arenas, uint32_t maxarenas, PyArena **ret,
                  size_t *ret_n);

/* Whether samples recompute sys.getallocatedblocks() (default on). It is the one costly part
 * of a sample: one pool header read per pool in use, ~0.3 µs each. Off, allocated_blocks is -1. */
void pyreader_set_allocated_blocks(PyReader *pr, bool on);

/* Reads one sample at time `now` (seconds, any monotonic clock). force_frozen walks the frozen
 * list whatever its cache says. Returns 0, or -ESRCH (gone), -EPERM (denied), -EBUSY (the
 * interpreter is finalizing), -EFAULT/-EIO (the structures did not hold together: a torn read
 * or a corrupt target; try again later). */
int pyreader_sample(PyReader *pr, Rmem *r, double now, bool force_frozen, PySample *ret);
