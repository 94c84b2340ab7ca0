/* refs against a fake heap: the seed heap of tests/fuzz/fuzz_heap (tests/fuzz/fakeheap.h), three
 * instances of a static type "Leaky" held by one list, for every layout table with generation
 * lists. The numbers are the heap's own, as it was built; the walk itself is tested against real
 * interpreters (tests/referrers). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../fuzz/fakeheap.h"
#include "python/census.h"
#include "python/refs.h"

typedef struct Case {
    FakeHeap f;
    uint8_t *in;
    PyReader *pr;
    CensusHints *hints;
} Case;

static void case_open(Case *c, const PyLayout *l)
{
    size_t len = 0;
    memset(c, 0, sizeof(*c));
    assert_int_equal(fakeheap_seed(l, &c->in, &len), 0);
    assert_int_equal(fakeheap_from_input(&c->f, c->in, len), 0);
    assert_int_equal(pyreader_new(&c->f.loc, &c->pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(c->pr, c->f.r, 0.0, true, &s), 0);
    assert_int_equal(s.frozen, 4);
}

static void case_close(Case *c)
{
    censushints_free(c->hints);
    pyreader_free(c->pr);
    fakeheap_free(&c->f);
    free(c->in);
}

static Refs *refs_of(Case *c, const char *type, int expect)
{
    Refs *x = NULL;
    char err[512] = "";
    int k = refs_take(c->pr, c->f.r, 0, NULL, type, CENSUS_NONBLOCKING, 1.0, &c->hints, &x, err,
                      sizeof(err));
    if (k != expect)
        fail_msg("%s: refs of %s: %d (%s), expected %d", c->f.l->name, type, k, err, expect);
    return x;
}

/* The census of the seed heap counts what was put in it. */
static void census_of_the_seed(void **state)
{
    for (size_t t = 0; t < pylayout_ntables; t++) {
        if (pylayout_tables[t].free_threaded)
            continue;
        Case c;
        case_open(&c, &pylayout_tables[t]);
        Census *cs = NULL;
        char err[512] = "";
        int k = census_take(c.pr, c.f.r, 0, NULL, CENSUS_NONBLOCKING, 1.0, &c.hints, &cs, err,
                            sizeof(err));
        if (k != 0)
            fail_msg("%s: census: %d %s", pylayout_tables[t].name, k, err);
        assert_int_equal(cs->total, 8);
        assert_int_equal(cs->generation[0], 4);
        assert_int_equal(cs->generation[3], 4);
        assert_int_equal(cs->ntypes, 3);
        assert_string_equal(cs->types[0].name, "type");
        assert_int_equal(cs->types[0].count, 4);
        assert_string_equal(cs->types[1].name, "Leaky");
        assert_int_equal(cs->types[1].count, 3);
        assert_string_equal(cs->types[2].name, "list");
        assert_int_equal(cs->types[2].count, 1);
        census_free(cs);
        case_close(&c);
    }
}

/* The three Leaky are held by the one list, three references. */
static void referrers_of_leaky(void **state)
{
    for (size_t t = 0; t < pylayout_ntables; t++) {
        if (pylayout_tables[t].free_threaded)
            continue;
        Case c;
        case_open(&c, &pylayout_tables[t]);
        Refs *x = refs_of(&c, "Leaky", 0);
        assert_int_equal(x->count, 3);
        assert_int_equal(x->nreferrers, 1);
        assert_string_equal(x->referrers[0].type, "list");
        assert_int_equal(x->referrers[0].objects, 1);
        assert_int_equal(x->referrers[0].refs, 3);
        refs_free(x);
        refs_of(&c, "NoSuchType", -ENOENT);
        case_close(&c);
    }
}

/* Found by tests/fuzz/fuzz_heap: a type nobody refers to (here the four frozen type objects, and
 * the list) left every result array NULL, and sorting a NULL array, even an empty one, is
 * undefined (UBSan: "null pointer passed as argument 1"). Now: no referrers, and no report. */
static void type_nobody_refers_to(void **state)
{
    for (size_t t = 0; t < pylayout_ntables; t++) {
        if (pylayout_tables[t].free_threaded)
            continue;
        Case c;
        case_open(&c, &pylayout_tables[t]);
        Refs *x = refs_of(&c, "type", 0);
        assert_int_equal(x->count, 4);
        assert_int_equal(x->nreferrers, 0);
        assert_int_equal(x->nunfollowed, 0);
        assert_int_equal(x->nweak, 0);
        char *json = refs_json(x);
        assert_non_null(json);
        free(json);
        refs_free(x);
        x = refs_of(&c, "list", 0);
        assert_int_equal(x->count, 1);
        assert_int_equal(x->nreferrers, 0);
        refs_free(x);
        case_close(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(census_of_the_seed),
        cmocka_unit_test(referrers_of_leaky),
        cmocka_unit_test(type_nobody_refers_to),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
