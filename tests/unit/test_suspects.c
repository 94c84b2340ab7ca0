/* suspects: the types whose count rose in each of the last K censuses. Censuses built by hand
 * (only their types and times matter): rising in every one is a suspect with its counts, its
 * increase and rate; flat, falling, or rising but not every time is not; a type absent from an
 * older census counted 0 there; only the last K + 1 tallies count; fewer than K + 1 give no list
 * and say why. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sampler/suspects.h"

#define NTYPES 6
static const char *const names[NTYPES] = {"Rising", "Flat", "Stalled", "New", "Falling", "Twin~1"};
static const uint64_t keys[NTYPES] = {0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000};

/* counts[census][type]; a negative count: the type is not in that census. */
static const int64_t counts[5][NTYPES] = {
    {5, 100, 1, -1, 50, 7},  {10, 100, 2, -1, 40, 8}, {20, 100, 3, 5, 30, 9},
    {30, 100, 3, 6, 20, 10}, {45, 100, 4, 9, 10, 11},
};

typedef struct Built {
    Census c;
    CensusType t[NTYPES];
} Built;

static void build(Built *b, int census, double at)
{
    memset(b, 0, sizeof(*b));
    b->c.at = at;
    b->c.types = b->t;
    for (int i = 0; i < NTYPES; i++) {
        if (counts[census][i] < 0)
            continue;
        CensusType *t = &b->t[b->c.ntypes++];
        t->name = names[i];
        t->pyname = i == 5 ? "Twin" : names[i];
        t->type = keys[i];
        t->count = counts[census][i];
        t->bytes = counts[census][i] * 56;
    }
}

/* Tallies of censuses first..last (taken 60 s apart from 1000). */
static size_t tallies_of(int first, int last, SuspectTally **out, Built *built)
{
    size_t n = 0;
    for (int c = first; c <= last; c++, n++) {
        build(&built[n], c, 1000 + 60.0 * c);
        assert_int_equal(suspects_tally(&built[n].c, &out[n]), 0);
    }
    return n;
}

static const Suspect *find(const Suspects *s, const char *type)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->s[i].type, type) == 0)
            return &s->s[i];
    return NULL;
}

static void rising_every_time(void **state)
{
    (void)state;
    Built built[5];
    SuspectTally *t[5];
    size_t n = tallies_of(1, 4, t, built); /* censuses 1..4: K = 3 */
    Suspects *s = NULL;
    assert_int_equal(suspects_find(&built[n - 1].c, (const SuspectTally *const *)t, n, 3, &s), 0);
    assert_string_equal(s->reason, "");
    assert_int_equal(s->k, 3);
    assert_true(s->from == 1060 && s->to == 1240);
    /* Rising 10 20 30 45; New absent (0) then 5 6 9; Twin~1 8 9 10 11. Not: Flat, Stalled
     * (3, 3), Falling. */
    assert_int_equal(s->n, 3);
    assert_string_equal(s->s[0].type, "Rising"); /* largest increase first */
    assert_string_equal(s->s[1].type, "New");
    assert_string_equal(s->s[2].type, "Twin~1");
    const Suspect *r = find(s, "Rising");
    assert_non_null(r);
    if (!r)
        return;
    int64_t want[] = {10, 20, 30, 45};
    assert_memory_equal(r->counts, want, sizeof(want));
    assert_true(r->per_second == 35.0 / 180.0);
    assert_int_equal(r->bytes_increase, 35 * 56);
    const Suspect *nw = find(s, "New");
    assert_non_null(nw);
    if (!nw)
        return;
    int64_t want_new[] = {0, 5, 6, 9};
    assert_memory_equal(nw->counts, want_new, sizeof(want_new));
    assert_int_equal(nw->bytes_increase, 9 * 56);
    const Suspect *tw = find(s, "Twin~1");
    assert_true(tw && strcmp(tw->name, "Twin") == 0);
    assert_null(find(s, "Flat"));
    assert_null(find(s, "Stalled"));
    assert_null(find(s, "Falling"));
    suspects_free(s);

    /* All five tallies with K = 3: only the last four count (Stalled's early rises do not). */
    for (size_t i = 0; i < n; i++)
        suspects_tally_free(t[i]);
    n = tallies_of(0, 4, t, built);
    assert_int_equal(suspects_find(&built[n - 1].c, (const SuspectTally *const *)t, n, 3, &s), 0);
    assert_int_equal(s->n, 3);
    assert_true(s->from == 1060);
    suspects_free(s);

    /* K = 4 over the five: New was absent twice (0, 0): not a rise. */
    assert_int_equal(suspects_find(&built[n - 1].c, (const SuspectTally *const *)t, n, 4, &s), 0);
    assert_int_equal(s->n, 2);
    assert_non_null(find(s, "Rising"));
    assert_non_null(find(s, "Twin~1"));
    suspects_free(s);

    /* K = 1: what rose at the last census (Stalled 3 -> 4 too). */
    assert_int_equal(suspects_find(&built[n - 1].c, (const SuspectTally *const *)t, n, 1, &s), 0);
    assert_int_equal(s->n, 4);
    assert_non_null(find(s, "Stalled"));
    suspects_free(s);
    for (size_t i = 0; i < n; i++)
        suspects_tally_free(t[i]);
}

static void too_few_censuses(void **state)
{
    (void)state;
    Built built[5];
    SuspectTally *t[5];
    size_t n = tallies_of(2, 4, t, built);
    Suspects *s = NULL;
    assert_int_equal(suspects_find(&built[n - 1].c, (const SuspectTally *const *)t, n, 3, &s), 0);
    assert_int_equal(s->n, 0);
    assert_null(s->s);
    assert_int_equal(s->censuses, 3);
    assert_non_null(strstr(s->reason, "need 4 censuses"));
    assert_non_null(strstr(s->reason, "3 taken so far"));
    suspects_free(s);
    for (size_t i = 0; i < n; i++)
        suspects_tally_free(t[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rising_every_time),
        cmocka_unit_test(too_few_censuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
