/* snapshot: the plain-data block the sampler renders and the listener serves from. What goes in
 * comes back byte for byte, from the writer's block and from a sealed memfd; ?top=N is a prefix
 * of the census items; a memfd that is not sealed, or a block that does not validate, is
 * refused. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/snapshot.h"

static const char *const procs[] = {"{\"pid\":10,\"a\":1}", "{\"pid\":20,\"b\":[2]}"};
static const size_t proc_lens[] = {16, 18};
static const pid_t pids[] = {10, 20};
static const char *const items[] = {"{\"type\":\"dict\",\"count\":9}",
                                    "{\"type\":\"list\",\"count\":4}",
                                    "{\"type\":\"A\",\"count\":1}"};

static const SnapSample sample20 = {
    .t = 1234.25,
    .start_ticks = 98765,
    .read = SNAP_READ_RSS | SNAP_READ_GC,
    .rss_kib = 4096,
    .gc_collections = {5, 6, 7},
};
static const SnapSettings settings = {0.5, 3600, 4u << 20};

static Snapshot *build(void)
{
    SnapWriter *w = NULL;
    assert_int_equal(snapwriter_new(1234.5, &w), 0);
    snapwriter_json(w, "{\"pymemd\":{},\"processes\":[", pids, procs, proc_lens, 2, "]}");
    snapwriter_readable(w, 0, true);
    snapwriter_census_error(w, 0, "");
    size_t lens[3];
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(items[i]);
    snapwriter_census(w, 0, 99.25, "{\"at\":99.25,\"types\":[", items, lens, 3);
    snapwriter_growth(w, 0, "{\"pid\":10,\"types\":[]}", 21);
    snapwriter_census_error(w, 1, "not censused on schedule");
    snapwriter_sample(w, 1, &sample20);
    snapwriter_settings(w, &settings);
    snapwriter_body(w, SNAP_PROMETHEUS, "python_threads 1\n", 17);
    snapwriter_body(w, SNAP_OPENMETRICS, "python_threads 1\n# EOF\n", 23);
    Snapshot *s = NULL;
    assert_int_equal(snapwriter_finish(w, &s), 0);
    return s;
}

static void assert_body(SnapBody b, const char *want)
{
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
}

static void check(Snapshot *s)
{
    assert_true(snapshot_taken_at(s) == 1234.5);
    assert_body(snapshot_body(s, SNAP_JSON), "{\"pymemd\":{},\"processes\":[{\"pid\":10,\"a\":1},"
                                             "{\"pid\":20,\"b\":[2]}]}");
    assert_body(snapshot_body(s, SNAP_PROMETHEUS), "python_threads 1\n");
    assert_body(snapshot_body(s, SNAP_OPENMETRICS), "python_threads 1\n# EOF\n");
    size_t len = 0;
    char *p = snapshot_processes(s, &len);
    assert_string_equal(p, "{\"processes\":[{\"pid\":10,\"a\":1},{\"pid\":20,\"b\":[2]}]}");
    assert_int_equal(len, strlen(p));
    free(p);

    assert_int_equal(snapshot_nprocs(s), 2);
    SnapProc a, b, none;
    assert_true(snapshot_find(s, 10, &a));
    assert_true(snapshot_find(s, 20, &b));
    assert_false(snapshot_find(s, 30, &none));
    assert_false(snapshot_proc(s, 2, &none));
    assert_body(a.process, procs[0]);
    assert_true(a.readable && a.have_census && a.have_growth);
    assert_true(a.census_at == 99.25);
    assert_int_equal(a.census_error.len, 0);
    assert_body(a.growth, "{\"pid\":10,\"types\":[]}");
    assert_body(b.process, procs[1]);
    assert_false(b.readable || b.have_census || b.have_growth);
    assert_body(b.census_error, "not censused on schedule");
    /* The sample records and the settings come back as written; one never set is all zero. */
    assert_memory_equal(&b.sample, &sample20, sizeof(sample20));
    SnapSample zero = {0};
    assert_memory_equal(&a.sample, &zero, sizeof(zero));
    SnapSettings st = snapshot_settings(s);
    assert_memory_equal(&st, &settings, sizeof(st));

    char *c = snapshot_census(s, 10, 0, NULL);
    assert_string_equal(c, "{\"at\":99.25,\"types\":[{\"type\":\"dict\",\"count\":9},"
                           "{\"type\":\"list\",\"count\":4},{\"type\":\"A\",\"count\":1}]}");
    free(c);
    c = snapshot_census(s, 10, 1, &len);
    assert_string_equal(c, "{\"at\":99.25,\"types\":[{\"type\":\"dict\",\"count\":9}]}");
    assert_int_equal(len, strlen(c));
    free(c);
    c = snapshot_census(s, 10, 3, NULL);
    char *all = snapshot_census(s, 10, 100, NULL);
    assert_string_equal(c, all);
    free(c);
    free(all);
    assert_null(snapshot_census(s, 20, 0, NULL));

    /* gzip: made once, then the same body. */
    const SnapBody *gz = snapshot_gzip(s, SNAP_PROMETHEUS);
    assert_non_null(gz);
    assert_true(gz->len > 10 && (unsigned char)gz->data[0] == 0x1f);
    assert_ptr_equal(snapshot_gzip(s, SNAP_PROMETHEUS), gz);
}

static void written(void **state)
{
    (void)state;
    Snapshot *s = build();
    check(s);
    assert_null(snapshot_unref(s));
}

static void through_memfd(void **state)
{
    (void)state;
    Snapshot *s = build();
    int fd = -1;
    assert_int_equal(snapshot_to_memfd(s, &fd), 0);
    /* Sealed: nobody can change it after the receiver has checked it. */
    assert_int_equal(write(fd, "x", 1), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, 1), -1);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    Snapshot *m = NULL;
    assert_int_equal(snapshot_from_fd(fd, &m), 0);
    assert_int_equal(snapshot_size(m), snapshot_size(s));
    check(m);
    snapshot_unref(m);
    snapshot_unref(s);
}

/* A memfd holding bytes, sealed as snapshot_to_memfd does unless seal is false. */
static int memfd_with(const void *bytes, size_t len, bool seal)
{
    int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    if (seal)
        assert_int_equal(
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL), 0);
    return fd;
}

static void refused(void **state)
{
    (void)state;
    Snapshot *s = build(), *m = NULL;
    int fd = -1;
    assert_int_equal(snapshot_to_memfd(s, &fd), 0);
    size_t size = snapshot_size(s);
    unsigned char *block = malloc(size);
    assert_int_equal(pread(fd, block, size, 0), (ssize_t)size);
    close(fd);

    assert_int_equal(snapshot_from_fd(memfd_with(block, size, false), &m), -EPERM);
    /* Cut short: the size it declares is not its size. */
    assert_int_equal(snapshot_from_fd(memfd_with(block, size - 1, true), &m), -EINVAL);
    assert_int_equal(snapshot_from_fd(memfd_with(block, 8, true), &m), -EINVAL);
    /* Another magic. */
    block[0] ^= 1;
    assert_int_equal(snapshot_from_fd(memfd_with(block, size, true), &m), -EINVAL);
    block[0] ^= 1;
    /* Every span points inside: make one point past the end. The header's first span (the JSON
     * body's offset) follows magic, size, taken_at and nprocs. */
    uint64_t far = size + 1;
    memcpy(block + 32, &far, sizeof(far));
    assert_int_equal(snapshot_from_fd(memfd_with(block, size, true), &m), -EINVAL);
    assert_null(m);
    free(block);
    snapshot_unref(s);
}

/* A snapshot whose sample record or settings the listener could not use. */
static void refused_records(void **state)
{
    (void)state;
    for (int bad = 0; bad < 4; bad++) {
        SnapWriter *w = NULL;
        assert_int_equal(snapwriter_new(1.0, &w), 0);
        snapwriter_json(w, "[", pids, procs, proc_lens, 2, "]");
        SnapSample smp = sample20;
        SnapSettings st = settings;
        if (bad == 0)
            smp.read |= 1u << 6; /* a bit no version sets */
        else if (bad == 1)
            smp.t = NAN;
        else if (bad == 2)
            st.interval = -1;
        else
            st.history_seconds = INFINITY;
        snapwriter_sample(w, 1, &smp);
        snapwriter_settings(w, &st);
        Snapshot *s = NULL, *m = NULL;
        assert_int_equal(snapwriter_finish(w, &s), 0);
        int fd = -1;
        assert_int_equal(snapshot_to_memfd(s, &fd), 0);
        assert_int_equal(snapshot_from_fd(fd, &m), -EINVAL);
        snapshot_unref(s);
    }
}

static void holder(void **state)
{
    (void)state;
    SnapshotHolder h;
    holder_init(&h);
    assert_null(holder_get(&h));
    Snapshot *s = build();
    holder_swap(&h, s);
    Snapshot *g = holder_get(&h);
    assert_ptr_equal(g, s);
    /* A new one replaces it; the reader's reference keeps the old one alive. */
    holder_swap(&h, build());
    check(g);
    snapshot_unref(g);
    holder_done(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(written), cmocka_unit_test(through_memfd),
        cmocka_unit_test(refused), cmocka_unit_test(refused_records),
        cmocka_unit_test(holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
