/* prom: renders samples as Prometheus text 0.0.4 or OpenMetrics 1.0.0 (DESIGN.md §5). */
#pragma once

#include <stddef.h>

#include "sampler/target.h"

typedef enum PromFormat {
    PROM_TEXT = 0,    /* text/plain; version=0.0.4 */
    PROM_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
} PromFormat;

#define PROM_CONTENT_TYPE_TEXT        "text/plain; version=0.0.4; charset=utf-8"
#define PROM_CONTENT_TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Renders every target's metrics, grouped by family; object types beyond the top_types largest
 * (by count) of each target are summed as object_type="other". Returns a malloc'd string (its
 * length in *ret_len) the caller frees, or NULL on allocation failure. */
char *prom_render(PromFormat fmt, const char *version, const TargetSample *s, size_t n,
                  unsigned top_types, size_t *ret_len);
