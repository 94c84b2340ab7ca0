/* jget: reading the daemon's JSON, where a value may be null or missing ("cannot be read for
 * this target"), which is shown as "-" and never as 0. */
#pragma once

#include <stdbool.h>

#include <cjson/cJSON.h>

/* For `_cleanup_(cjson_freep) cJSON *doc = ...;`. */
static inline void cjson_freep(cJSON **p)
{
    cJSON_Delete(*p);
}

/* A number that may be absent. */
typedef struct Num {
    bool ok;
    double v;
} Num;

/* The item at a dotted path below obj ("memory.rss_bytes"), or NULL. */
const cJSON *jget(const cJSON *obj, const char *path);
/* The number at path; .ok is false when it is missing, null or not a number. */
Num jnum(const cJSON *obj, const char *path);
/* The string at path, or NULL when it is missing, null or not a string. Points into obj. */
const char *jstr(const cJSON *obj, const char *path);
/* 1 or 0 for a boolean at path, -1 when it is missing, null or not a boolean. */
int jbool(const cJSON *obj, const char *path);
/* The array at path, or NULL. */
const cJSON *jarray(const cJSON *obj, const char *path);
