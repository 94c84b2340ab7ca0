/* snaprender: a snapshot rendered with the cache of printed censuses is the same block, byte for
 * byte, as one printed afresh: on the round that fills the cache, on the rounds that reuse it,
 * after a census comes in, after the suspects change under the same censuses, and after a census
 * goes. The cache holds a reference to the censuses it printed, and lets go of those of targets
 * no longer sampled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/snaprender.h"
#include "sampler/suspects.h"

#define NTYPES 4
static const char *const names[NTYPES] = {"dict", "list", "Leaky", "we\"ird"};

/* A census as the walker leaves it, of one reference: `grow` more Leaky objects per step. */
static Census *make_census(double at, int step)
{
    Census *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    atomic_init(&c->refs, 1);
    c->at = at;
    c->pause_seconds = 0.002;
    c->walk_seconds = 0.01;
    c->frozen = true;
    c->types = calloc(NTYPES, sizeof(*c->types));
    c->strings = calloc(1, 64);
    assert_non_null(c->types);
    assert_non_null(c->strings);
    char *p = c->strings;
    for (size_t i = 0; i < NTYPES; i++) {
        strcpy(p, names[i]);
        CensusType *t = &c->types[c->ntypes++];
        t->name = t->pyname = p;
        p += strlen(p) + 1;
        t->type = 0x1000 * (i + 1);
        t->count = i == 2 ? 10 + 50 * step : 1000 - 100 * (int64_t)i;
        t->bytes = t->count * 64;
        c->total += t->count;
    }
    c->generation[2] = c->total;
    return c;
}

/* Suspects of latest from the censuses given (oldest first), over the last k of them. */
static Suspects *suspects_of(Census *const *c, size_t n, unsigned k)
{
    SuspectTally *t[4] = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(suspects_tally(c[i], &t[i]), 0);
    Suspects *s = NULL;
    assert_int_equal(suspects_find(c[n - 1], (const SuspectTally *const *)t, n, k, &s), 0);
    for (size_t i = 0; i < n; i++)
        suspects_tally_free(t[i]);
    return s;
}

static void fill(TargetSample *s, pid_t pid)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->status = TARGET_OK;
    s->have_identity = true;
    snprintf(s->id.comm, sizeof(s->id.comm), "py%d", (int)pid);
    s->have_memory = true;
    s->mem = (ProcMemory){.rss = 4 << 20, .vms = 8 << 20, .anon = 1 << 20, .pss = -1};
    s->sampled_at = 1000.5;
    s->busy_ratio = 0.1;
}

/* The block of a snapshot rendered from samples[0..n), as the listener gets it. */
static char *render(const TargetSample *samples, size_t n, SnapCache *cache, size_t *ret_len)
{
    JsonDaemonInfo info = {.version = "0.1.0",
                           .started_at = 900,
                           .interval_seconds = 1,
                           .top_types = 2,
                           .history_seconds = 3600,
                           .history_max_memory = 1 << 20};
    Snapshot *snap = NULL;
    assert_int_equal(snaprender_new(&info, samples, n, 1001.0, cache, &snap), 0);
    int fd = -1;
    assert_int_equal(snapshot_to_memfd(snap, &fd), 0);
    snapshot_unref(snap);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *b = malloc((size_t)st.st_size + 1);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *ret_len = (size_t)st.st_size;
    return b;
}

/* Renders with the cache and without it, asserts the blocks are the same, and returns one. */
static char *same_both_ways(const TargetSample *samples, size_t n, SnapCache *cache,
                            size_t *ret_len)
{
    size_t la = 0, lb = 0;
    char *a = render(samples, n, NULL, &la);
    char *b = render(samples, n, cache, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(b);
    *ret_len = la;
    return a;
}

static int refs(Census *c)
{
    return atomic_load(&c->refs);
}

static void cached_bytes_are_printed_bytes(void **state)
{
    (void)state;
    Census *c[3] = {make_census(940, 0), make_census(1000, 1), NULL};
    TargetSample s[3];
    fill(&s[0], 7); /* no census yet */
    fill(&s[1], 42);
    fill(&s[2], 99); /* one census, no growth */
    s[1].census = c[1];
    s[1].prev_census = c[0];
    s[1].censuses = 2;
    Suspects *sp = suspects_of(c, 2, 1);
    s[1].suspects = sp;
    Census *lone = make_census(990, 0);
    s[2].census = lone;

    SnapCache *cache = snapcache_new();
    assert_non_null(cache);
    size_t l0 = 0, l1 = 0, l2 = 0;
    char *first = same_both_ways(s, 3, cache, &l0); /* fills the cache */
    assert_int_equal(refs(c[1]), 3); /* the test's, the census text's and the growth's */
    assert_int_equal(refs(c[0]), 2);
    assert_int_equal(refs(lone), 2);
    char *again = same_both_ways(s, 3, cache, &l1); /* served from it */
    assert_int_equal(l0, l1);
    assert_memory_equal(first, again, l0);
    assert_int_equal(refs(c[1]), 3);

    /* The same censuses, other suspects: the growth document is printed anew. */
    Suspects *sp2 = suspects_of(c, 2, 3); /* too few censuses: a reason, no list */
    s[1].suspects = sp2;
    char *other = same_both_ways(s, 3, cache, &l2);
    assert_false(l2 == l0 && memcmp(first, other, l0) == 0);
    free(other);

    /* A census comes in: the cache lets go of the one no longer shown. */
    c[2] = make_census(1060, 2);
    s[1].prev_census = c[1];
    s[1].census = c[2];
    s[1].censuses = 3;
    Suspects *sp3 = suspects_of(c, 3, 2);
    s[1].suspects = sp3;
    char *next = same_both_ways(s, 3, cache, &l2);
    assert_false(l2 == l0 && memcmp(first, next, l0) == 0);
    assert_int_equal(refs(c[0]), 1);
    assert_int_equal(refs(c[1]), 2); /* now the growth's "from" */
    assert_int_equal(refs(c[2]), 3);
    free(next);
    next = same_both_ways(s, 3, cache, &l2);
    free(next);

    /* Target 99 is gone, and 42's census with it (the process exec()ed): their texts go. */
    s[1].census = s[1].prev_census = NULL;
    s[1].suspects = NULL;
    next = same_both_ways(s, 2, cache, &l2);
    assert_int_equal(refs(lone), 1);
    assert_int_equal(refs(c[1]), 1);
    assert_int_equal(refs(c[2]), 1);
    free(next);

    snapcache_free(cache);
    free(first);
    free(again);
    suspects_free(sp);
    suspects_free(sp2);
    suspects_free(sp3);
    for (int i = 0; i < 3; i++)
        census_free(c[i]);
    census_free(lone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cached_bytes_are_printed_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
