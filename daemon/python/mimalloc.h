/* mimalloc: the heaps of a free-threaded CPython (3.13t), read from outside.
 *
 * A free-threaded interpreter keeps no lists of its GC objects: they live in mimalloc's heaps, two
 * per thread state (_Py_MIMALLOC_HEAP_GC, and _GC_PRE for objects with a pre-header), plus the
 * pages of threads that exited, which wait in the interpreter's pool of abandoned segments.
 * gc.get_objects() stops the world and visits every block in use there (gc_visit_heaps in
 * Python/gc_free_threading.c). This module does the same in two steps:
 *
 *   mimalloc_read_pages()  while the target is stopped: the thread states' heaps, their page
 *                          queues and the abandoned segments, every pointer and count checked;
 *                          a page's metadata is kept, its blocks are for the caller to copy;
 *   mimalloc_page_live()   afterwards, over a copy of a page's blocks: which blocks are in use,
 *                          that is on none of the page's three free lists (free, local_free, the
 *                          other threads' xthread_free) nor on its heap's delayed-free list.
 *
 * Everything it is told about the layout comes from the generated table (PyLayout.mimalloc); a
 * structure that does not hold together is -EIO with the reason, never a guess. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc/maps.h"
#include "python/layout.h"
#include "remote/rmem.h"

/* One mimalloc page of a GC heap with at least one block in use. */
typedef struct MiPage {
    uint64_t addr;     /* its mi_page_t */
    uint64_t start;    /* the first block */
    uint64_t bsize;    /* the block size */
    uint32_t capacity; /* blocks carved so far */
    uint32_t used;     /* blocks not on free or local_free (other threads' frees included) */
    uint64_t free, local_free, thread_free; /* heads of the three free lists */
    uint32_t offset;                        /* where the object starts inside a block */
    uint32_t heap; /* index of the owning heap in MiHeaps.delayed; UINT32_MAX: abandoned */
} MiPage;

typedef struct MiHeaps {
    MiPage *pages;
    size_t npages;
    uint64_t *delayed; /* per thread heap: the head of its thread_delayed_free list */
    size_t nheaps;
    size_t abandoned_segments;
    uint64_t block_bytes; /* capacity * block size over the pages: what copying them takes */
    uint64_t used_blocks; /* sum of used: an upper bound of the blocks in use */
    /* Kept from one read to the next (mimalloc_reread_pages()): */
    size_t cap;         /* MiPages allocated at pages */
    uint8_t **seg_hdrs; /* buffers for segment headers */
    size_t nseg_hdrs;
} MiHeaps;

void mimalloc_heaps_done(MiHeaps *h);

/* Reads the pages of the GC heaps of interpreter `interp` (of the runtime at `runtime`): every
 * thread state's GC and GC_PRE heaps, then the abandoned segments' pages of those two heap tags,
 * each checked against the layout and the mappings (pages inside their segment, block sizes and
 * counts that fit the page, the page's heap and tag its queue's). Only pages with blocks in use
 * are kept. The caller frees with mimalloc_heaps_done(). Returns 0, -EIO (with the reason in
 * why: a layout or heap that does not check out), -EOPNOTSUPP (a build whose free lists are
 * encoded), or the reader's -errno. */
int mimalloc_read_pages(const PyLayout *l, Rmem *r, const Maps *maps, uint64_t runtime,
                        uint64_t interp, MiHeaps *ret, char *why, size_t whylen);
/* mimalloc_read_pages() into h, zeroed or left by an earlier read, whose allocations it reuses:
 * read again while the target is stopped, heaps of the same size cost no allocation and no page
 * fault (at a million objects, about half of the read's time). On failure h keeps its
 * allocations and holds no page. */
int mimalloc_reread_pages(const PyLayout *l, Rmem *r, const Maps *maps, uint64_t runtime,
                          uint64_t interp, MiHeaps *h, char *why, size_t whylen);

/* How a block's first word is read: from a copy of the target, or from the target. */
typedef int (*MiReadFn)(void *ctx, uint64_t addr, void *buf, size_t len);

/* The blocks of page p in use: bit i of live (capacity bits, all written here) for block i.
 * delayed: the sorted blocks of its heap's thread_delayed_free list (ndelayed of them; other pages'
 * are ignored). Every free-list link must land on a block of the page, no block twice, and the
 * counts must agree with used and capacity (-EIO otherwise). Returns the number of blocks in use.
 */
int64_t mimalloc_page_live(const MiPage *p, MiReadFn read, void *ctx, const uint64_t *delayed,
                           size_t ndelayed, uint64_t *live);

/* The blocks of the thread_delayed_free list starting at head, sorted, into *ret (at most
 * `max`; -EIO when longer or looping). The caller frees *ret. */
int mimalloc_delayed_blocks(uint64_t head, MiReadFn read, void *ctx, size_t max, uint64_t **ret,
                            size_t *ret_n);

/* sys.getallocatedblocks() of a free-threaded interpreter, as the target computes it
 * (get_mimalloc_allocated_blocks() in Objects/obmalloc.c, then get_num_global_allocated_blocks()):
 * the blocks in use in every heap of every thread state and in the abandoned segments, that is
 * each page's used less the blocks other threads freed onto it (its xthread_free list and its
 * heap's delayed list), plus the runtime's interpreter_leaks. *ret_bytes (if not NULL): their
 * bytes, blocks times their page's block size. Reads the page metadata one segment header at a
 * time and follows those free lists in the target. For the main interpreter only (a
 * sub-interpreter with its own heaps is not added). -EIO with the reason when the heaps do not
 * hold together (a running target may be caught mid-change: try again), -EOPNOTSUPP without a
 * layout for it, or the reader's -errno. */
int mimalloc_allocated(const PyLayout *l, Rmem *r, uint64_t runtime, uint64_t interp,
                       int64_t *ret_blocks, int64_t *ret_bytes, char *why, size_t whylen);
