/* history: the per-process rings the listener keeps from the snapshots. Fed with real
 * snapshots (snapwriter), read back through the JSON it serves and decoded (history_samples):
 * values exactly as recorded (counters above 2^32, any jump, times bit for bit), oldest first,
 * null where not read, a census's total once; the ring wraps at history / interval, shares
 * history_max_memory equally in bytes of blocks (and says so once), drops its oldest blocks
 * whole, starts again for a new process under the same pid, forgets a process absent for a
 * minute, and keeps nothing with history = 0. The compressed coding is checked against a model
 * over random and adversarial sequences. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "history/history.h"
#include "util/macro.h"
#include "snapshot/snapshot.h"

typedef struct Proc {
    pid_t pid;
    SnapSample s;
    double census_at; /* 0: no census */
} Proc;

static SnapSettings settings = {1.0, 3600.0, 4u << 20};

/* A snapshot taken at `at` holding procs, fed to h. */
static void feed(History *h, double at, const Proc *procs, size_t n, HistoryNews *news)
{
    SnapWriter *w = NULL;
    assert_int_equal(snapwriter_new(at, &w), 0);
    snapwriter_settings(w, &settings);
    pid_t pids[8];
    const char *bodies[8];
    size_t lens[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        pids[i] = procs[i].pid;
        bodies[i] = "{}";
        lens[i] = 2;
    }
    snapwriter_json(w, "{\"processes\":[", pids, bodies, lens, n, "]}");
    for (size_t i = 0; i < n; i++) {
        snapwriter_sample(w, i, &procs[i].s);
        if (procs[i].census_at > 0) {
            const char *items[] = {"{}"};
            size_t ilens[] = {2};
            snapwriter_census(w, i, procs[i].census_at, "{\"types\":[", items, ilens, 1);
        }
    }
    Snapshot *s = NULL;
    assert_int_equal(snapwriter_finish(w, &s), 0);
    HistoryNews dummy;
    history_update(h, s, news ? news : &dummy);
    snapshot_unref(s);
}

static SnapSample sample(double t, uint64_t base)
{
    return (SnapSample){
        .t = t,
        .start_ticks = 777,
        .read =
            SNAP_READ_RSS | SNAP_READ_ARENA | SNAP_READ_BLOCKS | SNAP_READ_GC | SNAP_READ_OBJECTS,
        .rss_kib = 10000 + base,
        .arena_kib = 1024 * (1 + base % 3),
        .allocated_blocks = 5000000000ull + base * 3, /* above 2^32 */
        .objects_total = 123,
        .gc_collections = {4294967290ull + base, 7 + base / 2, 1},
    };
}

static cJSON *doc(History *h, pid_t pid, double since)
{
    size_t len = 0;
    char *text = history_json(h, pid, since, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    cJSON *d = cJSON_Parse(text);
    free(text);
    assert_non_null(d);
    return d;
}

static cJSON *samples_of(cJSON *d)
{
    cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "samples");
    assert_true(cJSON_IsArray(s));
    return s;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool is_null(const cJSON *o, const char *key)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* The entry e of a document equals sample s (objects: whether the total is there). */
static void assert_entry(const cJSON *e, const SnapSample *s, bool objects)
{
    assert_true(num(e, "t") == s->t);
    assert_true(num(e, "rss_bytes") == (double)(s->rss_kib * 1024));
    assert_true(is_null(e, "pss_bytes"));
    assert_true(num(e, "arena_bytes") == (double)(s->arena_kib * 1024));
    assert_true(num(e, "allocated_blocks") == (double)s->allocated_blocks);
    const cJSON *gc = cJSON_GetObjectItemCaseSensitive(e, "gc_collections");
    assert_int_equal(cJSON_GetArraySize(gc), 3);
    for (int g = 0; g < 3; g++)
        assert_true(cJSON_GetArrayItem(gc, g)->valuedouble == (double)s->gc_collections[g]);
    if (objects)
        assert_true(num(e, "objects_total") == (double)s->objects_total);
    else
        assert_true(is_null(e, "objects_total"));
}

static void values_oldest_first(void **state)
{
    (void)state;
    settings = (SnapSettings){0.5, 3600.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    SnapSample s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = sample(1000.25 + i * 0.5, (uint64_t)i * 11);
        Proc p = {42, s[i], i == 1 ? 999.0 : 0};
        feed(h, s[i].t, &p, 1, NULL);
    }
    cJSON *d = doc(h, 42, 0);
    assert_true(num(d, "pid") == 42);
    assert_true(num(d, "interval_seconds") == 0.5);
    cJSON *a = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(a), 3);
    for (int i = 0; i < 3; i++)
        assert_entry(cJSON_GetArrayItem(a, i), &s[i], i == 1);
    cJSON_Delete(d);

    /* since: only the samples taken at or after it. */
    d = doc(h, 42, 1000.75);
    a = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    assert_entry(cJSON_GetArrayItem(a, 0), &s[1], true);
    cJSON_Delete(d);

    /* A pid without a ring: an empty list. */
    d = doc(h, 43, 0);
    assert_int_equal(cJSON_GetArraySize(samples_of(d)), 0);
    cJSON_Delete(d);
    history_free(h);
}

static void unread_values_are_null(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    SnapSample a = sample(10, 1), b = sample(11, 2), c = sample(12, 3);
    b.read = SNAP_READ_RSS | SNAP_READ_PSS; /* pymalloc and GC not read, PSS read */
    b.pss_kib = 4321;
    for (const SnapSample *x = &a; x; x = x == &a ? &b : x == &b ? &c : NULL) {
        Proc p = {7, *x, 0};
        feed(h, x->t, &p, 1, NULL);
    }
    cJSON *d = doc(h, 7, 0);
    cJSON *arr = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    cJSON *e = cJSON_GetArrayItem(arr, 1);
    assert_true(num(e, "rss_bytes") == (double)(b.rss_kib * 1024));
    assert_true(num(e, "pss_bytes") == 4321.0 * 1024);
    assert_true(is_null(e, "arena_bytes") && is_null(e, "allocated_blocks") &&
                is_null(e, "gc_collections") && is_null(e, "objects_total"));
    /* The values around the gap are whole again. */
    assert_entry(cJSON_GetArrayItem(arr, 0), &a, false);
    assert_entry(cJSON_GetArrayItem(arr, 2), &c, false);
    cJSON_Delete(d);
    history_free(h);
}

/* A snapshot of the same sample again (published after a census) replaces its entry: the
 * census's total is added once, nothing is counted twice. */
static void census_total_recorded_once(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    SnapSample s1 = sample(50, 0), s2 = sample(51, 1);
    Proc p = {9, s1, 0};
    feed(h, 50, &p, 1, NULL);
    p.census_at = 50.5; /* a census in, the same sample */
    feed(h, 50.5, &p, 1, NULL);
    feed(h, 50.6, &p, 1, NULL); /* and once more */
    p.s = s2;                   /* the next sample, the same census */
    feed(h, 51, &p, 1, NULL);
    size_t n, cap;
    assert_true(history_ring_size(h, 9, &n, &cap));
    assert_int_equal(n, 2);
    cJSON *d = doc(h, 9, 0);
    cJSON *arr = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_entry(cJSON_GetArrayItem(arr, 0), &s1, true);
    assert_entry(cJSON_GetArrayItem(arr, 1), &s2, false);
    cJSON_Delete(d);
    history_free(h);
}

/* history / interval entries, then the oldest go; values stay exact across the wrap. */
static void ring_wraps(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 5.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    SnapSample s[40];
    for (int i = 0; i < 40; i++) {
        s[i] = sample(100 + i, (uint64_t)i * 1000003);
        Proc p = {5, s[i], 0};
        feed(h, s[i].t, &p, 1, NULL);
    }
    size_t n, bytes;
    assert_true(history_ring_size(h, 5, &n, &bytes));
    assert_int_equal(n, 5);
    assert_int_equal(bytes, HISTORY_BLOCK_BYTES);
    cJSON *d = doc(h, 5, 0);
    cJSON *arr = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(arr), 5);
    for (int i = 0; i < 5; i++)
        assert_entry(cJSON_GetArrayItem(arr, i), &s[35 + i], false);
    cJSON_Delete(d);

    /* A shorter history (a reload) shrinks the ring to the newest entries. */
    settings.history_seconds = 2;
    s[0] = sample(140, 40 * 1000003);
    Proc p = {5, s[0], 0};
    feed(h, 140, &p, 1, NULL);
    assert_true(history_ring_size(h, 5, &n, &bytes));
    assert_int_equal(n, 2);
    d = doc(h, 5, 0);
    arr = samples_of(d);
    assert_entry(cJSON_GetArrayItem(arr, 0), &s[39], false);
    assert_entry(cJSON_GetArrayItem(arr, 1), &s[0], false);
    cJSON_Delete(d);
    history_free(h);
}

/* The samples of pid, decoded, equal want[0..n) (t bit for bit, the values read, the read
 * bits). */
static void assert_samples(History *h, pid_t pid, const SnapSample *want, size_t n)
{
    SnapSample *got = NULL;
    size_t ngot = 0;
    assert_int_equal(history_samples(h, pid, &got, &ngot), 0);
    assert_int_equal(ngot, n);
    for (size_t i = 0; i < n; i++) {
        const SnapSample *g = &got[i], *w = &want[i];
        assert_memory_equal(&g->t, &w->t, sizeof(double));
        assert_int_equal(g->read, w->read);
        uint64_t gv[8] = {g->rss_kib,           g->pss_kib,          g->arena_kib,
                          g->allocated_blocks,  g->objects_total,    g->gc_collections[0],
                          g->gc_collections[1], g->gc_collections[2]};
        uint64_t wv[8] = {w->rss_kib,           w->pss_kib,          w->arena_kib,
                          w->allocated_blocks,  w->objects_total,    w->gc_collections[0],
                          w->gc_collections[1], w->gc_collections[2]};
        static const uint32_t bit[8] = {SNAP_READ_RSS,    SNAP_READ_PSS,     SNAP_READ_ARENA,
                                        SNAP_READ_BLOCKS, SNAP_READ_OBJECTS, SNAP_READ_GC,
                                        SNAP_READ_GC,     SNAP_READ_GC};
        for (int f = 0; f < 8; f++) {
            if (w->read & bit[f])
                assert_true(gv[f] == wv[f]);
            else
                assert_true(gv[f] == 0); /* not read: null */
        }
    }
    free(got);
}

/* history_max_memory shared equally in bytes: 4 processes, 3 blocks each, fewer samples than
 * the 3600 asked; said once; never more bytes than the cap; the samples kept are the newest,
 * exact. */
static void cap_shares_memory(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 12 * HISTORY_BLOCK_BYTES};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    Proc p[4];
    static SnapSample fed[4][1000];
    int capped = 0;
    for (int i = 0; i < 1000; i++) {
        for (int k = 0; k < 4; k++) {
            p[k] = (Proc){100 + k, sample(1000 + i, (uint64_t)(i + k)), 0};
            p[k].s.start_ticks = 1000 + (uint64_t)k;
            fed[k][i] = p[k].s;
            fed[k][i].read &= ~(uint32_t)SNAP_READ_OBJECTS; /* no census */
        }
        HistoryNews news;
        feed(h, 1000 + i, p, 4, &news);
        if (news.capped) {
            capped++;
            assert_int_equal(news.nrings, 4);
            assert_int_equal(news.share, 3 * HISTORY_BLOCK_BYTES);
            assert_int_equal(news.wanted, 3600);
            assert_true(news.kept > 0 && news.kept < (size_t)i + 1);
        }
        assert_true(history_bytes(h) <= 12 * HISTORY_BLOCK_BYTES);
    }
    assert_int_equal(capped, 1);
    size_t n[4], bytes;
    for (int k = 0; k < 4; k++) {
        assert_true(history_ring_size(h, 100 + k, &n[k], &bytes));
        assert_int_equal(bytes, 3 * HISTORY_BLOCK_BYTES);
        assert_true(n[k] > 100 && n[k] < 1000);
        assert_samples(h, 100 + k, fed[k] + 1000 - n[k], n[k]);
    }
    /* Two of them gone for a minute: the others grow into their share. */
    for (int i = 1000; i < 1300; i++) {
        for (int k = 0; k < 2; k++) {
            p[k] = (Proc){100 + k, sample(1000 + i, (uint64_t)(i + k)), 0};
            p[k].s.start_ticks = 1000 + (uint64_t)k;
        }
        feed(h, 1000 + i, p, 2, NULL);
        assert_true(history_bytes(h) <= 12 * HISTORY_BLOCK_BYTES);
    }
    size_t m;
    assert_false(history_ring_size(h, 102, &m, &bytes));
    assert_true(history_ring_size(h, 100, &m, &bytes));
    assert_true(m > n[0]);
    assert_int_equal(bytes, 6 * HISTORY_BLOCK_BYTES);
    history_free(h);
}

/* A new process under the same pid starts a new ring; one absent for a minute is forgotten,
 * one absent for less is not. */
static void identity_and_forgetting(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    Proc p = {11, sample(10, 1), 0};
    feed(h, 10, &p, 1, NULL);
    p.s = sample(11, 2);
    feed(h, 11, &p, 1, NULL);
    p.s = sample(12, 3);
    p.s.start_ticks = 778; /* pid 11 reused */
    feed(h, 12, &p, 1, NULL);
    cJSON *d = doc(h, 11, 0);
    cJSON *arr = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_entry(cJSON_GetArrayItem(arr, 0), &p.s, false);
    cJSON_Delete(d);

    /* A process without a sample record (gone, no identity) keeps its ring as it is. */
    Proc gone = {11, {0}, 0};
    feed(h, 13, &gone, 1, NULL);
    size_t n, cap;
    assert_true(history_ring_size(h, 11, &n, &cap));
    assert_int_equal(n, 1);
    assert_int_equal(cap, HISTORY_BLOCK_BYTES);

    Proc other = {12, sample(20, 1), 0};
    feed(h, 13 + HISTORY_FORGET_SECONDS - 1, &other, 1, NULL);
    assert_true(history_ring_size(h, 11, &n, &cap));
    feed(h, 13 + HISTORY_FORGET_SECONDS + 1, &other, 1, NULL);
    assert_false(history_ring_size(h, 11, &n, &cap));
    assert_true(history_ring_size(h, 12, &n, &cap));
    history_free(h);
}

/* Any jump comes back exactly: 2^31 and more, the whole 64 bits, down to 0 (a restarted
 * counter), with the sample before and after it. */
static void jumps_are_exact(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    SnapSample s[6];
    for (int i = 0; i < 6; i++) {
        s[i] = sample(10 + i, 0);
        s[i].read &= ~(uint32_t)SNAP_READ_OBJECTS;
    }
    s[1].allocated_blocks += (1ull << 31);
    s[2].allocated_blocks = UINT64_MAX;
    s[2].rss_kib = UINT64_MAX - 1;
    s[3].allocated_blocks = 0;
    s[3].gc_collections[0] = 0;
    s[4].rss_kib = 1ull << 63;
    for (int i = 0; i < 6; i++) {
        Proc p = {3, s[i], 0};
        feed(h, s[i].t, &p, 1, NULL);
    }
    assert_samples(h, 3, s, 6);
    cJSON *d = doc(h, 3, 0);
    cJSON *arr = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(arr), 6);
    assert_entry(cJSON_GetArrayItem(arr, 1), &s[1], false);
    assert_entry(cJSON_GetArrayItem(arr, 5), &s[5], false);
    cJSON_Delete(d);
    history_free(h);
}

static uint64_t rng_state;

/* splitmix64: a fixed seed, the same sequence on every run. */
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rnd_time(void)
{
    for (;;) {
        uint64_t u = rnd() >> 1; /* positive */
        double t;
        memcpy(&t, &u, sizeof(t));
        if (isfinite(t) && t > 0)
            return t;
    }
}

/* The next value of a counter: mostly unchanged, else a small step either way, a jump of any
 * size, down to 0 (a restarted process) or the extremes; huge: any 64 bits each time. */
static uint64_t next_value(uint64_t v, bool huge)
{
    uint64_t r = rnd() % 100;
    if (huge)
        return rnd();
    if (r < 55)
        return v;
    if (r < 80)
        return v + rnd() % 600 - 300;
    if (r < 88)
        return rnd() >> (rnd() % 64);
    if (r < 93)
        return 0;
    if (r < 96)
        return UINT64_MAX - rnd() % 3;
    return v + (1ull << 31) + rnd() % 3;
}

static uint64_t *value_ref(SnapSample *s, int f)
{
    uint64_t *v[8] = {&s->rss_kib,           &s->pss_kib,          &s->arena_kib,
                      &s->allocated_blocks,  &s->objects_total,    &s->gc_collections[0],
                      &s->gc_collections[1], &s->gc_collections[2]};
    return v[f];
}

static const uint32_t value_bit[8] = {SNAP_READ_RSS,    SNAP_READ_PSS,     SNAP_READ_ARENA,
                                      SNAP_READ_BLOCKS, SNAP_READ_OBJECTS, SNAP_READ_GC,
                                      SNAP_READ_GC,     SNAP_READ_GC};

/* Feeds `steps` random samples of one process (huge: every value any 64 bits) against a model
 * of what the history must hold: a new time appends; the same time again with a new census
 * writes the newest entry again (what it read before kept, the total added), without one
 * changes nothing. Times go forwards with a jitter, backwards, by one ulp, anywhere; read bits
 * change; values jump. The decoded ring equals the model, checked as it grows. */
static void random_sequence(uint64_t seed, int steps, bool huge, size_t wanted)
{
    rng_state = seed;
    settings = (SnapSettings){1.0, (double)wanted, 64u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    SnapSample *model = calloc((size_t)steps, sizeof(*model));
    assert_non_null(model);
    size_t n = 0;
    SnapSample cur = sample(1.8e9, 5);
    double census = 1;
    for (int i = 0; i < steps; i++) {
        uint64_t r = rnd() % 100;
        SnapSample s = cur;
        bool again = n > 0 && r < 15;
        if (!again) {
            uint64_t m = rnd() % 100;
            if (m < 70)
                s.t = cur.t + 1 + (double)(rnd() % 2001) * 1e-6 - 1e-3;
            else if (m < 78)
                s.t = rnd_time();
            else if (m < 88)
                s.t = cur.t - (double)(rnd() % 5000) * 0.01;
            else
                s.t = nextafter(cur.t, m < 94 ? INFINITY : 0);
            while (!(s.t > 0) || !isfinite(s.t) || (n > 0 && s.t == model[n - 1].t))
                s.t = rnd_time();
            for (int f = 0; f < 8; f++)
                *value_ref(&s, f) = next_value(*value_ref(&s, f), huge);
            s.read = rnd() % 4 == 0 ? (uint32_t)(rnd() & SNAP_READ_ALL)
                                    : SNAP_READ_ALL & ~(uint32_t)SNAP_READ_PSS;
        } else {
            s.read = (uint32_t)(rnd() & SNAP_READ_ALL);
            for (int f = 0; f < 8; f++)
                *value_ref(&s, f) = next_value(*value_ref(&s, f), huge);
        }
        bool with_census = (s.read & SNAP_READ_OBJECTS) && rnd() % 3 != 0;
        Proc p = {77, s, with_census ? census++ : 0};
        p.s.start_ticks = 777;
        feed(h, 5000, &p, 1, NULL); /* taken_at fixed: nobody is forgotten */
        if (!with_census)
            s.read &= ~(uint32_t)SNAP_READ_OBJECTS;
        if (again && !(s.read & SNAP_READ_OBJECTS)) {
            /* nothing to add to the newest entry */
        } else if (again) {
            SnapSample *old = &model[n - 1];
            for (int f = 0; f < 8; f++)
                if (s.read & value_bit[f])
                    *value_ref(old, f) = *value_ref(&s, f);
            old->read |= s.read;
        } else {
            model[n++] = s;
        }
        for (int f = 0; f < 8; f++)
            if (!(model[n - 1].read & value_bit[f]))
                *value_ref(&model[n - 1], f) = 0;
        cur = s;
        cur.t = model[n - 1].t;
        if (i % 7 == 0 || i == steps - 1 || wanted < 100)
            assert_samples(h, 77, model + n - MIN(n, wanted), MIN(n, wanted));
    }
    /* Bounded: even an entry of every value's 64 bits leaves a block room for several. */
    size_t got, bytes;
    assert_true(history_ring_size(h, 77, &got, &bytes));
    assert_int_equal(got, MIN(n, wanted));
    assert_true(bytes <= (got / 5 + 2) * HISTORY_BLOCK_BYTES);
    free(model);
    history_free(h);
}

static void round_trip_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++)
        random_sequence(seed, 2500, false, 1000000);
}

/* history / interval of a few entries: the oldest dropped one by one, the newest written
 * again where what is left of the oldest block is that entry only. */
static void round_trip_short(void **state)
{
    (void)state;
    for (uint64_t seed = 10; seed <= 13; seed++)
        random_sequence(seed, 1500, seed != 13, 1 + seed % 5);
}

static void round_trip_adversarial(void **state)
{
    (void)state;
    random_sequence(99, 1500, true, 1000000);
}

/* A quiet process (a few values moving a little, the sampler's jitter up to half a
 * millisecond): an hour of samples at 1 s in at most 8 bytes a sample, blocks included. */
static void quiet_hour_is_small(void **state)
{
    (void)state;
    rng_state = 7;
    settings = (SnapSettings){1.0, 3600.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    static SnapSample fed[3600];
    SnapSample s = sample(1.8e9, 0);
    s.read &= ~(uint32_t)SNAP_READ_OBJECTS;
    for (int i = 0; i < 3600; i++) {
        s.t = 1.8e9 + i + (double)(rnd() % 1001) * 1e-6 - 5e-4;
        if (rnd() % 10 == 0)
            s.rss_kib += rnd() % 9 - 4;
        s.allocated_blocks += rnd() % 101 - 50;
        if (i % 10 == 0)
            s.gc_collections[0]++;
        if (i % 100 == 0)
            s.gc_collections[1]++;
        s.read = (s.read & ~(uint32_t)SNAP_READ_PSS) | (i % 60 == 0 ? SNAP_READ_PSS : 0);
        s.pss_kib = s.read & SNAP_READ_PSS ? 9000 + rnd() % 100 : 0;
        fed[i] = s;
        Proc p = {8, s, 0};
        feed(h, s.t, &p, 1, NULL);
    }
    assert_samples(h, 8, fed, 3600);
    uint64_t bytes = history_bytes(h);
    print_message("a quiet hour: %llu bytes, %.2f a sample\n", (unsigned long long)bytes,
                  (double)bytes / 3600);
    assert_true(bytes <= 3600 * 8);
    history_free(h);
}

/* Memory full: the oldest block goes whole (the entries served drop by what it held), never
 * more bytes than the share, and what is left is the newest samples, exact. */
static void drop_oldest_blocks(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 3 * HISTORY_BLOCK_BYTES};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    static SnapSample fed[1500];
    size_t prev = 0;
    int drops = 0;
    for (int i = 0; i < 1500; i++) {
        fed[i] = sample(500 + i, (uint64_t)i * 7);
        fed[i].read &= ~(uint32_t)SNAP_READ_OBJECTS;
        Proc p = {4, fed[i], 0};
        feed(h, fed[i].t, &p, 1, NULL);
        size_t n, bytes;
        assert_true(history_ring_size(h, 4, &n, &bytes));
        assert_true(bytes <= 3 * HISTORY_BLOCK_BYTES);
        if (n != prev + 1) {
            /* A block of 40 or more went for the new one. */
            assert_true(n < prev && prev + 1 - n >= 40);
            assert_int_equal(bytes, 3 * HISTORY_BLOCK_BYTES);
            drops++;
            assert_samples(h, 4, fed + i + 1 - n, n);
        }
        prev = n;
    }
    assert_true(drops >= 5);
    assert_samples(h, 4, fed + 1500 - prev, prev);
    history_free(h);
}

/* The newest entry written again (a census after its sample) where it is a block's keyframe,
 * and where the longer entry no longer fits its block and moves to a new one; with history /
 * interval of 1 too, where all the oldest block still serves is that newest entry. */
static void replace_across(size_t wanted)
{
    rng_state = 3;
    settings = (SnapSettings){1.0, (double)wanted, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    static SnapSample fed[400];
    int keyframes = 0, moved = 0;
    size_t n, bytes = 0, b0, b1;
    for (size_t i = 0; i < 400; i++) {
        SnapSample s = sample(100 + (double)i, 0);
        for (int f = 0; f < 8; f++)
            *value_ref(&s, f) = rnd() >> (rnd() % 64); /* entries of 10 to 80 bytes */
        s.read &= ~(uint32_t)SNAP_READ_OBJECTS;
        Proc p = {6, s, 0};
        feed(h, s.t, &p, 1, NULL);
        assert_true(history_ring_size(h, 6, &n, &b0));
        s.read |= SNAP_READ_OBJECTS;
        p = (Proc){6, s, 100.5 + (double)i};
        feed(h, s.t + 0.5, &p, 1, NULL);
        assert_true(history_ring_size(h, 6, &n, &b1));
        assert_int_equal(n, MIN(i + 1, wanted));
        fed[i] = s;
        bool key = b0 > bytes, move = b1 > b0;
        keyframes += key;
        moved += move;
        bytes = b1;
        if (key || move || i % 50 == 0 || wanted < 400)
            assert_samples(h, 6, fed + i + 1 - n, n);
    }
    if (wanted >= 400)
        assert_true(keyframes >= 10 && moved >= 3);
    history_free(h);
}

static void replace_newest_across_blocks(void **state)
{
    (void)state;
    replace_across(3600);
    replace_across(1);
    replace_across(2);
}

static void history_off(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    Proc p = {3, sample(10, 0), 0};
    feed(h, 10, &p, 1, NULL);
    size_t n, cap;
    assert_false(history_ring_size(h, 3, &n, &cap));
    assert_int_equal(history_bytes(h), 0);
    cJSON *d = doc(h, 3, 0);
    assert_int_equal(cJSON_GetArraySize(samples_of(d)), 0);
    cJSON_Delete(d);
    history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_oldest_first),
        cmocka_unit_test(unread_values_are_null),
        cmocka_unit_test(census_total_recorded_once),
        cmocka_unit_test(ring_wraps),
        cmocka_unit_test(cap_shares_memory),
        cmocka_unit_test(identity_and_forgetting),
        cmocka_unit_test(jumps_are_exact),
        cmocka_unit_test(history_off),
        cmocka_unit_test(round_trip_random),
        cmocka_unit_test(round_trip_adversarial),
        cmocka_unit_test(round_trip_short),
        cmocka_unit_test(quiet_hour_is_small),
        cmocka_unit_test(drop_oldest_blocks),
        cmocka_unit_test(replace_newest_across_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
