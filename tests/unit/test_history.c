/* history: the per-process rings the listener keeps from the snapshots. Fed with real
 * snapshots (snapwriter), read back through the JSON it serves: values exactly as recorded
 * (counters above 2^32 too), oldest first, null where not read, a census's total once; the
 * ring wraps at history / interval, shares history_max_memory equally (and says so once),
 * starts again for a new process under the same pid or after a jump of 2^31, forgets a process
 * absent for a minute, and keeps nothing with history = 0. */
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
    size_t n, cap;
    assert_true(history_ring_size(h, 5, &n, &cap));
    assert_int_equal(n, 5);
    assert_int_equal(cap, 5);
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
    assert_true(history_ring_size(h, 5, &n, &cap));
    assert_int_equal(n, 2);
    assert_int_equal(cap, 2);
    d = doc(h, 5, 0);
    arr = samples_of(d);
    assert_entry(cJSON_GetArrayItem(arr, 0), &s[39], false);
    assert_entry(cJSON_GetArrayItem(arr, 1), &s[0], false);
    cJSON_Delete(d);
    history_free(h);
}

/* history_max_memory shared equally: 4 processes, room for 100 entries each of the 3600 asked;
 * said once. */
static void cap_shares_memory(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 400 * HISTORY_ENTRY_BYTES};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    Proc p[4];
    int capped = 0;
    for (int i = 0; i < 150; i++) {
        for (int k = 0; k < 4; k++) {
            p[k] = (Proc){100 + k, sample(1000 + i, (uint64_t)(i + k)), 0};
            p[k].s.start_ticks = 1000 + (uint64_t)k;
        }
        HistoryNews news;
        feed(h, 1000 + i, p, 4, &news);
        if (news.capped) {
            capped++;
            assert_int_equal(news.nrings, 4);
            assert_int_equal(news.limit, 100);
            assert_int_equal(news.wanted, 3600);
        }
    }
    assert_int_equal(capped, 1);
    assert_true(history_bytes(h) <= 400 * HISTORY_ENTRY_BYTES);
    for (int k = 0; k < 4; k++) {
        size_t n, cap;
        assert_true(history_ring_size(h, 100 + k, &n, &cap));
        assert_int_equal(n, 100);
        cJSON *d = doc(h, 100 + k, 0);
        cJSON *arr = samples_of(d);
        assert_int_equal(cJSON_GetArraySize(arr), 100);
        SnapSample want = sample(1050, (uint64_t)(50 + k));
        assert_entry(cJSON_GetArrayItem(arr, 0), &want, false);
        cJSON_Delete(d);
    }
    /* Two of them gone for a minute: the others may grow into their share. */
    for (int i = 150; i < 400; i++) {
        for (int k = 0; k < 2; k++) {
            p[k] = (Proc){100 + k, sample(1000 + i, (uint64_t)(i + k)), 0};
            p[k].s.start_ticks = 1000 + (uint64_t)k;
        }
        feed(h, 1000 + i, p, 2, NULL);
    }
    size_t n, cap;
    assert_false(history_ring_size(h, 102, &n, &cap));
    assert_true(history_ring_size(h, 100, &n, &cap));
    assert_int_equal(n, 200);
    assert_true(history_bytes(h) <= 400 * HISTORY_ENTRY_BYTES);
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

    Proc other = {12, sample(20, 1), 0};
    feed(h, 13 + HISTORY_FORGET_SECONDS - 1, &other, 1, NULL);
    assert_true(history_ring_size(h, 11, &n, &cap));
    feed(h, 13 + HISTORY_FORGET_SECONDS + 1, &other, 1, NULL);
    assert_false(history_ring_size(h, 11, &n, &cap));
    assert_true(history_ring_size(h, 12, &n, &cap));
    history_free(h);
}

/* Two readings 2^31 apart cannot be told from a wrap: the ring starts again, and says so. */
static void jump_restarts(void **state)
{
    (void)state;
    settings = (SnapSettings){1.0, 3600.0, 4u << 20};
    History *h = NULL;
    assert_int_equal(history_new(&h), 0);
    Proc p = {3, sample(10, 0), 0};
    HistoryNews news;
    feed(h, 10, &p, 1, &news);
    p.s = sample(11, 0);
    p.s.allocated_blocks += (1ull << 31) - 1; /* the largest step that fits */
    feed(h, 11, &p, 1, &news);
    assert_int_equal(news.restarted, 0);
    SnapSample kept = p.s;
    p.s = sample(12, 0);
    p.s.allocated_blocks = kept.allocated_blocks + (1ull << 31); /* up by 2^31: no */
    feed(h, 12, &p, 1, &news);
    assert_int_equal(news.restarted, 3);
    cJSON *d = doc(h, 3, 0);
    cJSON *arr = samples_of(d);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_entry(cJSON_GetArrayItem(arr, 0), &p.s, false);
    cJSON_Delete(d);
    history_free(h);
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
        cmocka_unit_test(jump_restarts),
        cmocka_unit_test(history_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
