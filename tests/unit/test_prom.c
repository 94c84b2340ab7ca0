/* prom: both exposition formats from fixed samples: names, labels, escaping, unknown values
 * left out (never a zero), counters named per format, the OpenMetrics EOF. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/prom.h"

static void fill(TargetSample *ok, TargetSample *bad)
{
    memset(ok, 0, sizeof(*ok));
    ok->pid = 42;
    ok->status = TARGET_OK;
    ok->have_identity = true;
    strcpy(ok->id.comm, "we\"ird\\name");
    ok->have_python = true;
    strcpy(ok->version, "3.12.1");
    ok->hexversion = 0x030c01f0;
    ok->version_exact = true;
    ok->have_memory = true;
    ok->mem =
        (ProcMemory){.rss = 1000, .vms = 2000, .anon = 300, .swap = 0, .pss = -1, .peak_rss = 1500};
    ok->have_py = true;
    ok->py.ngenerations = 3;
    for (int g = 0; g < 3; g++)
        ok->py.gen[g] = (PyGcGeneration){.count = g,
                                         .threshold = 700 + g,
                                         .collections = 10 + g,
                                         .collected = 100 + g,
                                         .uncollectable = g,
                                         .candidates = -1,
                                         .duration = NAN};
    ok->py.enabled = true;
    ok->py.threads = 4;
    ok->py.frozen = 0;
    ok->py.garbage = 0;
    ok->py.pymalloc_ok = false; /* stripped build: pymalloc unknown */
    ok->busy_ratio = 0.25;
    ok->sample_seconds = 0.0001;

    memset(bad, 0, sizeof(*bad));
    bad->pid = 7;
    bad->status = TARGET_DENIED;
    bad->have_identity = true;
    strcpy(bad->id.comm, "python3");
    bad->busy_ratio = NAN;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void text_format(void **state)
{
    TargetSample s[2];
    fill(&s[0], &s[1]);
    size_t len;
    char *t = prom_render(PROM_TEXT, "0.1.0", s, 2, 20, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_true(has_line(t, "pymemd_build_info{version=\"0.1.0\"} 1"));
    assert_true(has_line(t, "pymemd_target_up{pid=\"42\",name=\"we\\\"ird\\\\name\"} 1"));
    assert_true(has_line(t, "pymemd_target_up{pid=\"7\",name=\"python3\"} 0"));
    assert_true(has_line(t, "# TYPE python_gc_collections_total counter"));
    assert_true(has_line(
        t,
        "python_gc_collections_total{pid=\"42\",name=\"we\\\"ird\\\\name\",generation=\"2\"} 12"));
    assert_true(has_line(
        t, "python_gc_threshold{pid=\"42\",name=\"we\\\"ird\\\\name\",generation=\"0\"} 700"));
    assert_true(has_line(t, "python_info{pid=\"42\",name=\"we\\\"ird\\\\name\",version=\"3.12.1\","
                            "implementation=\"CPython\",major=\"3\",minor=\"12\","
                            "patchlevel=\"1\"} 1"));
    assert_true(has_line(t, "python_gc_busy_ratio_estimate{pid=\"42\",name=\"we\\\"ird\\\\name\"} "
                            "0.25"));
    /* Unknown is absent, not zero: no PSS, no pymalloc, no durations before 3.15. */
    assert_null(strstr(t, "python_memory_proportional_bytes{"));
    assert_null(strstr(t, "python_pymalloc_arenas{"));
    assert_null(strstr(t, "python_gc_duration_seconds_total"));
    assert_null(strstr(t, "# EOF"));
    /* The denied target has no Python metrics at all. */
    assert_null(strstr(t, "python_threads{pid=\"7\""));
    assert_int_equal(t[len - 1], '\n');
    free(t);
}

static void openmetrics_format(void **state)
{
    TargetSample s[2];
    fill(&s[0], &s[1]);
    s[0].py.gen[0].duration = 0.5;
    s[0].py.gen[0].candidates = 99;
    size_t len;
    char *t = prom_render(PROM_OPENMETRICS, "0.1.0", s, 2, 20, &len);
    assert_non_null(t);
    /* Counter families drop the _total suffix in metadata; samples keep it. */
    assert_true(has_line(t, "# TYPE python_gc_collections counter"));
    assert_null(strstr(t, "# TYPE python_gc_collections_total"));
    assert_true(has_line(
        t,
        "python_gc_duration_seconds_total{pid=\"42\",name=\"we\\\"ird\\\\name\",generation=\"0\"}"
        " 0.5"));
    assert_true(len > 6 && strcmp(t + len - 6, "# EOF\n") == 0);
    free(t);
}

/* pymalloc's values: a default build has no allocated_bytes (left out, the other three there);
 * a free-threaded one has blocks and bytes but no arenas. */
static void pymalloc_bytes(void **state)
{
    TargetSample s[2];
    fill(&s[0], &s[1]);
    s[0].py.pymalloc_ok = true;
    s[0].py.arenas = s[0].py.arenas_highwater = 3;
    s[0].py.arena_bytes = 3 << 20;
    s[0].py.allocated_blocks = 5000;
    s[0].py.allocated_bytes = -1;
    size_t len;
    char *t = prom_render(PROM_TEXT, "0.1.0", s, 2, 20, &len);
    assert_non_null(t);
    assert_true(has_line(t, "python_pymalloc_arena_bytes{pid=\"42\",name=\"we\\\"ird\\\\name\"} "
                            "3145728"));
    assert_true(has_line(t,
                         "python_pymalloc_allocated_blocks{pid=\"42\",name=\"we\\\"ird\\\\name\"} "
                         "5000"));
    assert_null(strstr(t, "python_pymalloc_allocated_bytes{"));
    free(t);

    s[0].py.arenas = s[0].py.arenas_highwater = s[0].py.arena_bytes = -1;
    s[0].py.allocated_bytes = 123456;
    t = prom_render(PROM_OPENMETRICS, "0.1.0", s, 2, 20, &len);
    assert_non_null(t);
    assert_true(has_line(t, "# TYPE python_pymalloc_allocated_bytes gauge"));
    assert_true(has_line(t,
                         "python_pymalloc_allocated_bytes{pid=\"42\",name=\"we\\\"ird\\\\name\"} "
                         "123456"));
    assert_true(has_line(t,
                         "python_pymalloc_allocated_blocks{pid=\"42\",name=\"we\\\"ird\\\\name\"} "
                         "5000"));
    assert_null(strstr(t, "python_pymalloc_arena_bytes{"));
    free(t);
}

/* The remainder past the top N is object_type="other"; real types named other, other~ keep
 * their own, distinct series however the ranking falls. */
static void other_never_collides(void **state)
{
    TargetSample s[2];
    fill(&s[0], &s[1]);
    CensusType types[] = {
        {.name = "other", .count = 50, .bytes = 5000},
        {.name = "other~", .count = 40, .bytes = 4000},
        {.name = "dict", .count = 30, .bytes = 3000},
        {.name = "other", .count = 20, .bytes = 2000}, /* past the top 3: into the remainder */
        {.name = "list", .count = 10, .bytes = 1000},
    };
    Census c = {.types = types, .ntypes = ARRAY_SIZE(types), .total = 150};
    s[0].census = &c;
    char *t = prom_render(PROM_TEXT, "0.1.0", s, 2, 3, NULL);
    assert_non_null(t);
    const char *lbl = "python_objects{pid=\"42\",name=\"we\\\"ird\\\\name\",object_type=";
    char want[256];
    snprintf(want, sizeof(want), "%s\"other~\"} 50", lbl);
    assert_true(has_line(t, want));
    snprintf(want, sizeof(want), "%s\"other~~\"} 40", lbl);
    assert_true(has_line(t, want));
    snprintf(want, sizeof(want), "%s\"dict\"} 30", lbl);
    assert_true(has_line(t, want));
    snprintf(want, sizeof(want), "%s\"other\"} 30", lbl); /* 20 + 10 */
    assert_true(has_line(t, want));
    /* Exactly one series per label value. */
    snprintf(want, sizeof(want), "%s\"other\"}", lbl);
    const char *first = strstr(t, want);
    assert_non_null(first);
    assert_null(strstr(first + 1, want));
    free(t);
}

/* pymemd_target_info: one series per target with an identity, every label present (empty when
 * unknown), values escaped; a target whose identity could not be read has none. */
static void target_info(void **state)
{
    TargetSample s[3];
    fill(&s[0], &s[1]);
    strcpy(s[0].group, "gu\"ni\\corn");
    s[0].have_cgroup = true;
    strcpy(s[0].cgroup.container_id, "abc");
    s[0].cgroup.runtime = "cri-o";
    strcpy(s[0].cgroup.pod_uid, "3d274242-8ee0-11e9-a8a6-1e68d864ef1a");
    s[0].cgroup.qos_class = "burstable";
    strcpy(s[0].cgroup.unit, "a\nb.service");
    s[0].ns_pid = 1;
    strcpy(s[1].group, "python3");
    memset(&s[2], 0, sizeof(s[2]));
    s[2].pid = 9;
    s[2].status = TARGET_GONE;
    for (int f = 0; f < 2; f++) {
        size_t len;
        char *t = prom_render(f ? PROM_OPENMETRICS : PROM_TEXT, "0.1.0", s, 3, 20, &len);
        assert_non_null(t);
        assert_true(has_line(t, "# TYPE pymemd_target_info gauge"));
        assert_true(has_line(
            t,
            "pymemd_target_info{pid=\"42\",name=\"we\\\"ird\\\\name\",group=\"gu\\\"ni\\\\corn\","
            "container_id=\"abc\",container_runtime=\"cri-o\","
            "pod_uid=\"3d274242-8ee0-11e9-a8a6-1e68d864ef1a\",qos_class=\"burstable\","
            "unit=\"a\\nb.service\",ns_pid=\"1\"} 1"));
        assert_true(has_line(t, "pymemd_target_info{pid=\"7\",name=\"python3\",group=\"python3\","
                                "container_id=\"\",container_runtime=\"\",pod_uid=\"\","
                                "qos_class=\"\",unit=\"\",ns_pid=\"\"} 1"));
        assert_null(strstr(t, "pymemd_target_info{pid=\"9\""));
        free(t);
    }
}

/* A value as prom has always printed it: NaN; integral and below 1e15, "%.0f" (so -0 too);
 * else "%.17g". The renderer prints integers by its own path: the bytes must be these. */
static void reference_value(char *out, size_t size, double v)
{
    if (isnan(v))
        snprintf(out, size, "NaN");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, size, "%.0f", v);
    else
        snprintf(out, size, "%.17g", v);
}

/* Values at the edges of the integer path, through an integer counter (gc.get_count()) and a
 * floating-point one (the GC's duration), in both formats. */
static void value_edges(void **state)
{
    (void)state;
    const int64_t ints[] = {0,
                            1,
                            -1,
                            9,
                            10,
                            -10,
                            700,
                            123456789,
                            -987654321,
                            (int64_t)1 << 53,
                            ((int64_t)1 << 53) + 1,
                            999999999999999,
                            -999999999999999,
                            1000000000000000,
                            -1000000000000000,
                            10000000000000001,
                            INT64_MAX,
                            INT64_MIN};
    const double reals[] = {0.0,       -0.0,       0.5,      -0.5,      1e-300,
                            0.1 + 0.2, 1e14 + 0.5, 1e15,     -1e15,     1e16,
                            1.5e300,   -1e308,     INFINITY, -INFINITY, 4503599627370495.5};
    TargetSample s[2];
    fill(&s[0], &s[1]);
    size_t nint = sizeof(ints) / sizeof(ints[0]), nreal = sizeof(reals) / sizeof(reals[0]);
    for (size_t i = 0; i < nint + nreal; i++) {
        double v = i < nint ? (double)ints[i] : reals[i - nint];
        if (i < nint)
            s[0].py.gen[0].count = ints[i];
        else
            s[0].py.gen[0].duration = reals[i - nint];
        const char *name = i < nint ? "python_gc_pending" : "python_gc_duration_seconds_total";
        char want[256], value[64];
        reference_value(value, sizeof(value), v);
        snprintf(want, sizeof(want),
                 "%s{pid=\"42\",name=\"we\\\"ird\\\\name\",generation=\"0\"} %s", name, value);
        for (int f = 0; f < 2; f++) {
            char *t = prom_render(f ? PROM_OPENMETRICS : PROM_TEXT, "0.1.0", s, 2, 20, NULL);
            assert_non_null(t);
            if (!has_line(t, want))
                fail_msg("value %.17g: no line \"%s\"", v, want);
            free(t);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(target_info),          cmocka_unit_test(text_format),
        cmocka_unit_test(openmetrics_format),   cmocka_unit_test(pymalloc_bytes),
        cmocka_unit_test(other_never_collides), cmocka_unit_test(value_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
