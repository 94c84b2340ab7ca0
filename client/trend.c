/* trend: changes and rates of a process's samples. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "trend.h"
#include "view.h"

/* The sum of the collections of every generation; unknown when one of them is, since a sum
 * of some would drop when the missing one came back. */
static Num sum_known(const cJSON *arr, bool *ret_any)
{
    const cJSON *it;
    Num sum = {.ok = true, .v = 0};

    *ret_any = false;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsNumber(it))
            return (Num){0};
        sum.v += it->valuedouble;
        *ret_any = true;
    }
    return *ret_any ? sum : (Num){0};
}

TrendSample trend_of_process(const cJSON *proc)
{
    Num t = jnum(proc, "sampled_at");
    TrendSample s = {
        .t = t.ok ? t.v : NAN,
        .f = {[TREND_RSS] = jnum(proc, "memory.rss_bytes"),
              [TREND_HEAP] = jnum(proc, "pymalloc.arena_bytes"),
              [TREND_BLOCKS] = jnum(proc, "pymalloc.allocated_blocks")},
    };
    const cJSON *gens = jarray(proc, "gc.generations");
    size_t n = (size_t)cJSON_GetArraySize(gens);
    Num sum = {.ok = n > 0, .v = 0};

    for (size_t g = 0; g < n; g++) {
        Num c = view_gen(proc, (int)g, "collections");
        sum.ok = sum.ok && c.ok;
        sum.v += c.v;
    }
    s.f[TREND_GC] = sum.ok ? sum : (Num){0};
    return s;
}

int trend_parse(const cJSON *doc, TrendSample **ret, size_t *ret_n)
{
    const cJSON *samples = jarray(doc, "samples"), *it;
    size_t n = (size_t)cJSON_GetArraySize(samples), i = 0;
    TrendSample *s;

    if (!samples)
        return -EBADMSG;
    *ret = NULL;
    *ret_n = 0;
    if (n == 0)
        return 0;
    s = calloc(n, sizeof(*s));
    if (!s)
        return -ENOMEM;
    cJSON_ArrayForEach(it, samples)
    {
        Num t = jnum(it, "t");
        bool any;

        s[i].t = t.ok ? t.v : NAN;
        s[i].f[TREND_RSS] = jnum(it, "rss_bytes");
        s[i].f[TREND_HEAP] = jnum(it, "arena_bytes");
        s[i].f[TREND_BLOCKS] = jnum(it, "allocated_blocks");
        s[i].f[TREND_GC] = sum_known(jarray(it, "gc_collections"), &any);
        i++;
    }
    *ret = s;
    *ret_n = n;
    return 0;
}

TrendChange trend_between(const TrendSample *a, const TrendSample *b, TrendField f)
{
    TrendChange c = {0};

    if (!a->f[f].ok || !b->f[f].ok)
        return c;
    c.delta = (Num){.ok = true, .v = b->f[f].v - a->f[f].v};
    c.span = isfinite(b->t - a->t) && b->t > a->t ? b->t - a->t : 0;
    if (c.span > 0)
        c.rate = (Num){.ok = true, .v = c.delta.v / c.span};
    return c;
}

TrendChange trend_over(const TrendSample *s, size_t n, TrendField f)
{
    size_t first = 0, last = n;

    while (first < n && !s[first].f[f].ok)
        first++;
    while (last > first && !s[last - 1].f[f].ok)
        last--;
    if (last == 0 || last - 1 <= first)
        return (TrendChange){0};
    return trend_between(&s[first], &s[last - 1], f);
}
