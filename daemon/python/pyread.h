/* pyread: reads one sample of GC, pymalloc and thread counters out of a located interpreter.
 *
 * The sampling path: one batched process_vm_readv for the GC state, the allocator counters and
 * the list heads, then one small read per thread, plus the arena table and pool headers for
 * sys.getallocatedblocks(). Nothing on it grows with the target's object count.
 *
 * The frozen (permanent) generation is a list whose length is what gc.get_freeze_count()
 * reports; no CPython keeps that length anywhere (permanent_generation.count stays 0: gc.freeze()
 * merges lists without counting them), so someone has to walk it. A census walks it in its copy
 * of the heap and hands the count over (pyreader_note_frozen); between censuses the count is
 * served, with its age, for as long as the list's two ends have not moved. When they move, or no
 * census ran, a sample walks a bounded stretch of the list (PYREAD_FROZEN_READS reads) and
 * resumes where it stopped at the next sample; until the walk is through, frozen is null with
 * the reason. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proc/maps.h"
#include "python/locate.h"
#include "remote/rmem.h"
#include "util/macro.h"

#define PYREAD_MAX_GENERATIONS 3
/* Seconds a frozen count is served while the permanent list's ends have not moved before a
 * sample starts counting it again (a frozen object freed in the middle of the list moves
 * neither end). The old count is still served while the new one is counted. */
#define PYREAD_FROZEN_MAX_AGE 60.0
/* What one sample may spend on the walk of the frozen list. Neighbours in the list are mostly
 * neighbours in memory (objects are linked in the order they were allocated, and pymalloc
 * carves pools in order), so the walk reads PYREAD_FROZEN_WINDOW aligned bytes around a node
 * and follows every link that stays inside: at most PYREAD_FROZEN_READS reads (2 MiB) and
 * PYREAD_FROZEN_LINKS links per sample, about a millisecond. */
#define PYREAD_FROZEN_WINDOW 16384
#define PYREAD_FROZEN_READS  128
#define PYREAD_FROZEN_LINKS  262144
/* The same for a sample that asks for the count now (pymemd --once, which has no next sample). */
#define PYREAD_FROZEN_FORCED_READS 16384
#define PYREAD_FROZEN_FORCED_LINKS (8 << 20)

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
    int64_t frozen;          /* gc.get_freeze_count(), -1 while not counted (see frozen_reason) */
    double frozen_age;       /* seconds since frozen was counted; NaN when frozen is -1 */
    char frozen_reason[200]; /* why frozen is -1, empty otherwise */
    int64_t garbage;         /* len(gc.garbage) */
    int64_t heap_size;       /* 3.14+: GC-tracked objects, -1 before */
    unsigned ngenerations;
    PyGcGeneration gen[PYREAD_MAX_GENERATIONS];

    int64_t threads; /* Python thread states of the main interpreter */

    bool pymalloc_ok;
    int64_t arenas, arenas_highwater, arena_bytes, allocated_blocks;
    /* Free-threaded builds: the bytes of the blocks allocated_blocks counts in the interpreter's
     * mimalloc heaps (blocks in use times their page's block size, interpreter_leaks excluded),
     * read on the same walk. -1 on default builds (pymalloc does not record the sizes of the
     * blocks it hands to malloc) and when the walk failed. */
    int64_t allocated_bytes;
    char blocks_reason[256]; /* free-threaded: why allocated_blocks is -1, empty otherwise */
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
 * (those with an address and at least one pool). Nothing is sized from the target's numbers
 * before they are checked against its mappings: the table must lie in readable memory, every
 * live arena in readable anonymous memory, and no two arenas may overlap, so the arenas together
 * never claim more than the process has mapped. -ERANGE when they do (maps may be stale: read
 * them again and retry), -EIO when the table is larger than pymemd accepts or an entry does not
 * hold together. The caller frees *ret. */
int pyread_arenas(const PyLayout *l, Rmem *r, const Maps *maps, uint64_t arenas, uint32_t maxarenas,
                  PyArena **ret, size_t *ret_n);

/* pyread_arenas() with the mappings kept in *maps (read when NULL) and read again once when the
 * arenas do not fit the kept ones, since arenas come and go. The caller frees *maps. */
int pyread_arenas_mapped(const PyLayout *l, Rmem *r, Maps **maps, uint64_t arenas,
                         uint32_t maxarenas, PyArena **ret, size_t *ret_n);

/* A census hands over the length of the permanent list it walked while the list's ends were
 * (first, last), at time `at` (the clock of pyreader_sample's `now`): samples serve it for as
 * long as the ends stay put. */
void pyreader_note_frozen(PyReader *pr, int64_t count, uint64_t first, uint64_t last, double at);

/* Whether samples recompute sys.getallocatedblocks() (default on). It is the one costly part
 * of a sample: one pool header read per pool in use, ~0.3 µs each. Off, allocated_blocks is -1. */
void pyreader_set_allocated_blocks(PyReader *pr, bool on);

/* Reads one sample at time `now` (seconds, any monotonic clock). force_frozen lets the walk of
 * the frozen list go on to the PYREAD_FROZEN_FORCED_* bounds in this sample, whatever the cached
 * count says (pymemd --once has no next sample). Returns 0, or -ESRCH (gone), -EPERM
 * (denied), -EBUSY (the interpreter is finalizing), -EFAULT/-EIO (the structures did not hold
 * together: a torn read or a corrupt target; try again later). */
int pyreader_sample(PyReader *pr, Rmem *r, double now, bool force_frozen, PySample *ret);
