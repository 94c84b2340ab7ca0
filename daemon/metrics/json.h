/* json: renders samples as the JSON documents of DESIGN.md §4, with cJSON. */
#pragma once

#include <cjson/cJSON.h>

#include "sampler/target.h"
#include "util/redact.h"

/* What "cmdline" shows from now on (config key cmdline; CMDLINE_REDACTED until set). One
 * setting for the whole daemon: main sets it at start and on reload. */
void json_set_cmdline_mode(CmdlineMode m);

/* One PROCESS object. The caller owns the result (cJSON_Delete). NULL on allocation failure. */
cJSON *json_process(const TargetSample *s);

/* The census object ({"at", "total", "pause_seconds", "walk_seconds", "generations", "types"})
 * with at most top types (0: all). The caller owns the result. */
cJSON *json_census(const Census *c, size_t top);

typedef struct JsonDaemonInfo {
    const char *version;
    double started_at;
    double interval_seconds;
    unsigned top_types; /* object types per target in Prometheus output, before "other" */

    double history_seconds;      /* passed on to the listener's history (snapshot settings) */
    uint64_t history_max_memory; /*   the same */
} JsonDaemonInfo;

/* The growth table between two censuses of one process: per type object, the change in count
 * and bytes, largest growth first, unchanged types left out. The caller owns the result. */
cJSON *json_growth(pid_t pid, const Census *from, const Census *to);

/* {"pymemd": {...}, "processes": [...]}: the document of GET /metrics and `pymemd --once`.
 * Returns a malloc'd string the caller frees, or NULL on allocation failure. */
char *json_document(const JsonDaemonInfo *info, const TargetSample *samples, size_t n);

/* {"processes": [...]}, for GET /api/v1/processes: a malloc'd string and its length, or NULL. */
char *json_processes(const TargetSample *samples, size_t n, size_t *ret_len);
