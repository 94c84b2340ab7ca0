/* trend: how a process's numbers move, from two of its samples or from its history
 * (GET /api/v1/processes/{pid}/history, DESIGN.md section 4.2). */
#pragma once

#include <stddef.h>

#include <cjson/cJSON.h>

#include "jget.h"

typedef enum TrendField {
    TREND_RSS,    /* resident memory, bytes */
    TREND_HEAP,   /* pymalloc arena bytes */
    TREND_BLOCKS, /* pymalloc allocated blocks */
    TREND_GC,     /* garbage collections, all generations together */
    TREND_NFIELDS,
} TrendField;

typedef struct TrendSample {
    double t; /* when the daemon took it, epoch seconds; NAN when it does not say */
    Num f[TREND_NFIELDS];
} TrendSample;

typedef struct TrendChange {
    Num delta;   /* last minus first */
    Num rate;    /* delta per second; unknown when no time passed */
    double span; /* seconds between the two samples compared; 0 when unknown */
} TrendChange;

/* The sample a PROCESS object holds (its "sampled_at" and values). */
TrendSample trend_of_process(const cJSON *proc);

/* The samples of a history document, oldest first, in *ret (an array the caller frees; NULL
 * when there are none). Returns 0, -EBADMSG when doc has no "samples" list, -ENOMEM. */
int trend_parse(const cJSON *doc, TrendSample **ret, size_t *ret_n);

/* Field f of b minus that of a, and its rate over the time between them. */
TrendChange trend_between(const TrendSample *a, const TrendSample *b, TrendField f);
/* The change of field f over s[0..n): between the first and the last sample in which it is
 * known. Unknown when fewer than two are. */
TrendChange trend_over(const TrendSample *s, size_t n, TrendField f);
