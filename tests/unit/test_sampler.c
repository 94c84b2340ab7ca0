/* sampler: who is watched, and who is censused on schedule (census_match). The schedule itself
 * (timing, rate limits) is tested against a real daemon in tests/safety/test_schedule.py. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "sampler/sampler.h"
#include "sampler/target.h"

static ProcIdentity ident(const char *comm, char *cmdline)
{
    ProcIdentity id = {.pid = 4242, .cmdline = cmdline};
    strncpy(id.comm, comm, sizeof(id.comm) - 1);
    return id;
}

static void compile(regex_t *re, const char *src)
{
    assert_int_equal(regcomp(re, src, REG_EXTENDED | REG_NOSUB), 0);
}

static void selects(void **state)
{
    (void)state;
    regex_t re[2];
    compile(&re[0], "^gunicorn");
    compile(&re[1], "celery worker");
    char cmd[] = "/usr/bin/python3 -m celery worker -A app";
    ProcIdentity gunicorn = ident("gunicorn", NULL), celery = ident("python3", cmd),
                 other = ident("python3", NULL);
    assert_true(sampler_selects(true, NULL, 0, &other));
    assert_true(sampler_selects(false, re, 2, &gunicorn));
    assert_true(sampler_selects(false, re, 2, &celery));
    assert_false(sampler_selects(false, re, 2, &other));
    assert_false(sampler_selects(false, NULL, 0, &other));
    regfree(&re[0]);
    regfree(&re[1]);
}

static void census_selects(void **state)
{
    (void)state;
    regex_t match, cm;
    compile(&match, "^gunicorn");
    compile(&cm, "worker");
    char cmd[] = "gunicorn: worker [app]";
    ProcIdentity worker = ident("gunicorn", cmd), master = ident("gunicorn", NULL),
                 build = ident("python3", NULL);

    /* No census_match: --pid and --match targets only; --all alone censuses nobody. */
    assert_true(sampler_census_selects(NULL, true, NULL, 0, &build));
    assert_true(sampler_census_selects(NULL, false, &match, 1, &master));
    assert_false(sampler_census_selects(NULL, false, &match, 0, &master));
    assert_false(sampler_census_selects(NULL, false, NULL, 0, &build));

    /* census_match decides alone, whatever selected the target. */
    assert_true(sampler_census_selects(&cm, false, NULL, 0, &worker));
    assert_false(sampler_census_selects(&cm, false, &match, 1, &master));
    assert_false(sampler_census_selects(&cm, true, NULL, 0, &build));
    regfree(&match);
    regfree(&cm);
}

static PySample gc_state(bool collecting, int64_t c0, int64_t c1, int64_t c2)
{
    PySample py = {.collecting = collecting, .ngenerations = 3};
    py.gen[0].collections = c0;
    py.gen[1].collections = c1;
    py.gen[2].collections = c2;
    return py;
}

/* When the GC's polls may slow down: only when no collection can have run between two samples. */
static void gc_quiet(void **state)
{
    (void)state;
    PySample a = gc_state(false, 10, 2, 1);
    GcMark m = target_gc_mark(&a);
    assert_true(m.known);
    assert_int_equal(m.collections, 13);
    assert_true(target_gc_quiet(m, m));

    /* A collection of any generation finished in between. */
    for (int g = 0; g < 3; g++) {
        PySample b = a;
        b.gen[g].collections++;
        assert_false(target_gc_quiet(m, target_gc_mark(&b)));
    }
    /* One running at either sample: counted only once it ends, perhaps after the second. */
    PySample busy = gc_state(true, 10, 2, 1);
    assert_false(target_gc_quiet(m, target_gc_mark(&busy)));
    assert_false(target_gc_quiet(target_gc_mark(&busy), m));
    /* Nothing known: the first sample, a failed one, a version without the counts. */
    assert_false(target_gc_quiet((GcMark){0}, m));
    assert_false(target_gc_quiet(m, (GcMark){0}));
    PySample uncounted = gc_state(false, 10, -1, 1);
    assert_false(target_gc_mark(&uncounted).known);
    assert_false(target_gc_quiet(target_gc_mark(&uncounted), target_gc_mark(&uncounted)));
    /* Counts that fell (another interpreter at the same pid) are a change, not quiet. */
    PySample fewer = gc_state(false, 0, 0, 0);
    assert_false(target_gc_quiet(m, target_gc_mark(&fewer)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(selects),
        cmocka_unit_test(census_selects),
        cmocka_unit_test(gc_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
