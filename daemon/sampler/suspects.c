#include "sampler/suspects.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

typedef struct TallyEntry {
    uint64_t type; /* the type object, as census types are matched (json_growth does the same) */
    int64_t count, bytes;
} TallyEntry;

struct SuspectTally {
    double at;
    size_t n;
    TallyEntry e[]; /* sorted by type */
};

static int cmp_entry(const void *a, const void *b)
{
    const TallyEntry *x = a, *y = b;
    return (x->type > y->type) - (x->type < y->type);
}

int suspects_tally(const Census *c, SuspectTally **ret)
{
    SuspectTally *t = malloc(sizeof(*t) + c->ntypes * sizeof(TallyEntry));
    if (!t)
        return -ENOMEM;
    t->at = c->at;
    t->n = c->ntypes;
    for (size_t i = 0; i < c->ntypes; i++)
        t->e[i] = (TallyEntry){c->types[i].type, c->types[i].count, c->types[i].bytes};
    qsort(t->e, t->n, sizeof(TallyEntry), cmp_entry);
    *ret = t;
    return 0;
}

SuspectTally *suspects_tally_free(SuspectTally *t)
{
    free(t);
    return NULL;
}

/* The entry of a type in a tally, or NULL when the census did not see it (count 0). */
static const TallyEntry *lookup(const SuspectTally *t, uint64_t type)
{
    TallyEntry key = {.type = type};
    return bsearch(&key, t->e, t->n, sizeof(TallyEntry), cmp_entry);
}

Suspects *suspects_free(Suspects *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        free(s->s[i].type);
        free(s->s[i].name);
    }
    free(s->s);
    free(s);
    return NULL;
}

static int64_t increase(const Suspect *s, unsigned k)
{
    return s->counts[k] - s->counts[0];
}

/* Largest increase first; ties by type key, so the order is the same every time. */
static int cmp_increase(const void *a, const void *b, void *kp)
{
    unsigned k = *(const unsigned *)kp;
    int64_t x = increase(a, k), y = increase(b, k);
    if (x != y)
        return x < y ? 1 : -1;
    return strcmp(((const Suspect *)a)->type, ((const Suspect *)b)->type);
}

int suspects_find(const Census *latest, const SuspectTally *const *tallies, size_t n, unsigned k,
                  Suspects **ret)
{
    k = MIN(MAX(k, 1u), (unsigned)SUSPECTS_MAX_K);
    Suspects *out = calloc(1, sizeof(*out));
    if (!out)
        return -ENOMEM;
    out->k = k;
    out->censuses = MIN(n, (size_t)k + 1);
    if (n < (size_t)k + 1) {
        snprintf(out->reason, sizeof(out->reason),
                 "leak suspects need %u censuses (a count rising in each of the last %u, "
                 "suspect_censuses); %zu taken so far: ?fresh=1 takes one now",
                 k + 1, k, n);
        *ret = out;
        return 0;
    }
    const SuspectTally *const *last = tallies + n - (k + 1);
    out->from = last[0]->at;
    out->to = last[k]->at;
    out->s = calloc(latest->ntypes ? latest->ntypes : 1, sizeof(Suspect));
    if (!out->s) {
        free(out);
        return -ENOMEM;
    }
    double span = out->to - out->from;
    for (size_t i = 0; i < latest->ntypes; i++) {
        const CensusType *ct = &latest->types[i];
        Suspect s = {0};
        int64_t first_bytes = 0, last_bytes = 0;
        bool rising = true;
        for (unsigned c = 0; c <= k && rising; c++) {
            const TallyEntry *e = lookup(last[c], ct->type);
            s.counts[c] = e ? e->count : 0;
            if (c == 0)
                first_bytes = e ? e->bytes : 0;
            if (c == k)
                last_bytes = e ? e->bytes : 0;
            rising = c == 0 || s.counts[c] > s.counts[c - 1];
        }
        if (!rising)
            continue;
        s.bytes_increase = last_bytes - first_bytes;
        s.per_second = span > 0 ? (double)(s.counts[k] - s.counts[0]) / span : NAN;
        s.type = strdup(ct->name);
        s.name = strdup(ct->pyname);
        if (!s.type || !s.name) {
            free(s.type);
            free(s.name);
            suspects_free(out);
            return -ENOMEM;
        }
        out->s[out->n++] = s;
    }
    qsort_r(out->s, out->n, sizeof(Suspect), cmp_increase, &k);
    *ret = out;
    return 0;
}
