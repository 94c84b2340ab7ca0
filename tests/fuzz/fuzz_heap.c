/* fuzz_heap: the readers of a target's heap fed a hostile one. The input builds a fake address
 * space (fakeheap.h) behind the fake reader: the layout check (pyloc_check_layout), a sample
 * (pyreader_sample, the frozen-list walk forced), a census walk (census_take, non-blocking: no
 * process is stopped) and the referrer traversal of its largest type (refs_take, which follows
 * every object through traverse.c). Whatever the bytes say, each must return in bounded time and
 * memory with a clean error or a result: a crash, a leak, a timeout (-timeout) or running out of
 * memory (-rss_limit_mb) is a finding. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakeheap.h"
#include "python/census.h"
#include "python/refs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* FUZZ_HEAP_VERBOSE=1 prints what each step made of an input: how a seed is checked. */
static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* A census copies the arenas and the pages its walk needs; the fake's are a few MiB. The cap
     * keeps one input from asking for more than the harness's -rss_limit_mb. */
    census_set_max_memory(256ull << 20);
    verbose = getenv("FUZZ_HEAP_VERBOSE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FakeHeap f;
    if (fakeheap_from_input(&f, data, size) < 0)
        return 0;
    char why[512];
    Maps *maps = NULL;
    if (rmem_maps(f.r, &maps) == 0) {
        int k = pyloc_check_layout(f.l, f.r, FH_RT, maps, why, sizeof(why));
        if (verbose)
            fprintf(stderr, "layout %s: check %d %s\n", f.l->name, k, k < 0 ? why : "");
        maps_free(maps);
    }

    PyReader *pr = NULL;
    if (pyreader_new(&f.loc, &pr) < 0) {
        fakeheap_free(&f);
        return 0;
    }
    PySample s;
    (void)pyreader_sample(pr, f.r, 0.0, true, &s);
    int k = pyreader_sample(pr, f.r, 1.0, false, &s);
    if (verbose)
        fprintf(stderr, "sample %d: frozen %lld garbage %lld threads %lld\n", k,
                (long long)s.frozen, (long long)s.garbage, (long long)s.threads);

    CensusHints *hints = NULL;
    Census *c = NULL;
    char err[512] = "";
    k = census_take(pr, f.r, 0, NULL, CENSUS_NONBLOCKING, 1.0, &hints, &c, err, sizeof(err));
    if (verbose)
        fprintf(stderr, "census %d %s: %zu types, first %s x%lld\n", k, err, c ? c->ntypes : 0,
                c && c->ntypes ? c->types[0].name : "-",
                c && c->ntypes ? (long long)c->types[0].count : 0);
    if (k == 0) {
        /* The referrers of the three largest types (all of a seed's). */
        for (size_t i = 0; i < c->ntypes && i < 3; i++) {
            Refs *x = NULL;
            char type[REFS_NAME_MAX];
            snprintf(type, sizeof(type), "%s", c->types[i].name);
            k = refs_take(pr, f.r, 0, NULL, type, CENSUS_NONBLOCKING, 1.0, &hints, &x, err,
                          sizeof(err));
            if (verbose)
                fprintf(stderr, "refs of %s %d %s: %lld instances, %zu referrer types, first %s\n",
                        type, k, k < 0 ? err : "", x ? (long long)x->count : 0,
                        x ? x->nreferrers : 0, x && x->nreferrers ? x->referrers[0].type : "-");
            if (k == 0) {
                free(refs_json(x));
                refs_free(x);
            }
        }
        census_free(c);
    } else if (!err[0]) {
        abort(); /* every failed census says why */
    }
    censushints_free(hints);
    pyreader_free(pr);
    fakeheap_free(&f);
    return 0;
}
