/* fuzz_mimalloc: python/mimalloc.c over a free-threaded heap an input corrupts.
 *
 * Each input is a list of patches of 13 bytes to the fake of fakemi.h (a valid 3.13t heap: a
 * thread's GC page with blocks on every free list, an abandoned segment): a region (runtime,
 * interpreter, thread state, the two segment headers, the two pages' blocks), a 4-byte offset
 * into it and the 8 bytes written there. The reader then reads the pages, finds each page's
 * blocks in use and counts sys.getallocatedblocks(): whatever the bytes say, it must return an
 * error with a reason or numbers, never crash, hang or leak. An empty input is the valid heap. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fakemi.h"

#define PATCH 13

static int read_fake(void *ctx, uint64_t addr, void *buf, size_t len)
{
    return rmem_read(ctx, addr, buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MiFake f;
    if (mifake_build(&f) < 0) {
        mifake_free(&f);
        return 0;
    }
    const PyLayout *l = &f.l;
    uint8_t *regs[] = {f.rt, f.is, f.ts, f.seg1, f.seg2, f.blocks1, f.blocks2};
    size_t lens[] = {l->runtime.size,          l->interp.size,           l->tstate.impl_size,
                     l->mimalloc.segment_size, l->mimalloc.segment_size, l->mimalloc.slice_span,
                     l->mimalloc.slice_span};
    for (size_t i = 0; i + PATCH <= size && i < 64 * PATCH; i += PATCH) {
        unsigned reg = data[i] % 7;
        uint32_t off;
        memcpy(&off, data + i + 1, 4);
        off %= (uint32_t)(lens[reg] - 7);
        memcpy(regs[reg] + off, data + i + 5, 8);
    }
    mifake_maps(&f);
    MiHeaps h = {0};
    char why[200] = "";
    int k = mimalloc_read_pages(l, f.r, f.maps, RT, IS, &h, why, sizeof(why));
    if (k < 0 && k != -ENOMEM && k != -EOPNOTSUPP && !why[0])
        abort(); /* every refusal says why */
    uint64_t *delayed = NULL, live[(8192 / 64) + 1];
    size_t nd = 0;
    for (size_t i = 0; k >= 0 && i < h.nheaps; i++) {
        free(delayed);
        delayed = NULL;
        nd = 0;
        if (mimalloc_delayed_blocks(h.delayed[i], read_fake, f.r, h.used_blocks + 1, &delayed,
                                    &nd) < 0)
            break;
    }
    for (size_t i = 0; k >= 0 && i < h.npages; i++)
        if (h.pages[i].capacity <= l->mimalloc.max_blocks)
            (void)mimalloc_page_live(&h.pages[i], read_fake, f.r, delayed, nd, live);
    free(delayed);
    mimalloc_heaps_done(&h);
    int64_t blocks, bytes;
    k = mimalloc_allocated(l, f.r, RT, IS, &blocks, &bytes, why, sizeof(why));
    if (k == -EIO && !why[0])
        abort();
    mifake_free(&f);
    return 0;
}
