/* snaprender: renders the samples of one moment into a Snapshot (snapshot/snapshot.h), the
 * plain data every HTTP answer and `pymemd --once` are served from. The sampler calls it; the
 * samples stay the caller's. */
#pragma once

#include "metrics/json.h"
#include "snapshot/snapshot.h"

/* Renders the three /metrics bodies, each PROCESS object, census (with its type items
 * separately, for ?top=N) and growth table of samples[0..n) (in pid order). Returns 0 with a
 * snapshot of one reference in *ret, or -ENOMEM. */
int snaprender_new(const JsonDaemonInfo *info, const TargetSample *samples, size_t n,
                   double taken_at, Snapshot **ret);
