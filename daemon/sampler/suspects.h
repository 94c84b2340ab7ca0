/* suspects: leak suspects of a process, the types whose count rose in each of its last K
 * censuses (config suspect_censuses), with how much and how fast.
 *
 * The sampler keeps, per process, a tally of each of its last K + 1 censuses (type, count and
 * bytes only, about 24 bytes a type: not the censuses themselves), and finds the suspects when a
 * census comes in. A type absent from a census counted 0 there. One rise is noise that growth
 * already shows; K in a row is a trend. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "python/census.h"

#define SUSPECTS_MAX_K 16

/* A census reduced to what suspects need. */
typedef struct SuspectTally SuspectTally;

/* The tally of census c. The caller owns *ret. */
int suspects_tally(const Census *c, SuspectTally **ret);
/* NULL-safe; returns NULL. */
SuspectTally *suspects_tally_free(SuspectTally *t);

typedef struct Suspect {
    char *type;                         /* the census type key (owned) */
    char *name;                         /* its plain __name__ (owned) */
    int64_t counts[SUSPECTS_MAX_K + 1]; /* its count in each of the k + 1 censuses, oldest first */
    int64_t bytes_increase;             /* bytes, last census minus first */
    double per_second;                  /* (last - first count) / seconds between them */
} Suspect;

typedef struct Suspects {
    unsigned k;      /* rises in a row asked for */
    size_t censuses; /* tallies it was found from (k + 1, or fewer: then no list) */
    double from, to; /* when the first and the last of them were taken (epoch seconds) */
    Suspect *s;      /* largest increase first; NULL with n 0 when fewer than k + 1 censuses */
    size_t n;
    char reason[200]; /* why there is no list (fewer than k + 1 censuses); "" when there is */
} Suspects;

/* Finds the suspects among the types of `latest`, from the tallies of the last censuses of one
 * process, oldest first, the last being latest's own (n of them; when fewer than k + 1, *ret
 * says so in reason, with an empty list). The caller owns *ret (suspects_free). */
int suspects_find(const Census *latest, const SuspectTally *const *tallies, size_t n, unsigned k,
                  Suspects **ret);
/* NULL-safe; returns NULL. */
Suspects *suspects_free(Suspects *s);
