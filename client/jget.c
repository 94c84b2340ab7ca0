/* jget: null-aware lookups in the daemon's JSON. */
#include <string.h>

#include "jget.h"

const cJSON *jget(const cJSON *obj, const char *path)
{
    const cJSON *cur = obj;
    const char *p = path;

    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        const cJSON *child = NULL;

        if (!cJSON_IsObject(cur))
            return NULL;
        /* Keys are compared exactly: the daemon's keys are fixed lower-case names. */
        for (child = cur->child; child; child = child->next)
            if (child->string && strlen(child->string) == n && memcmp(child->string, p, n) == 0)
                break;
        cur = child;
        p += n + (dot ? 1 : 0);
    }
    return cur;
}

Num jnum(const cJSON *obj, const char *path)
{
    const cJSON *it = jget(obj, path);

    if (!cJSON_IsNumber(it))
        return (Num){0};
    return (Num){.ok = true, .v = it->valuedouble};
}

const char *jstr(const cJSON *obj, const char *path)
{
    const cJSON *it = jget(obj, path);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int jbool(const cJSON *obj, const char *path)
{
    const cJSON *it = jget(obj, path);

    if (!cJSON_IsBool(it))
        return -1;
    return cJSON_IsTrue(it) ? 1 : 0;
}

const cJSON *jarray(const cJSON *obj, const char *path)
{
    const cJSON *it = jget(obj, path);

    return cJSON_IsArray(it) ? it : NULL;
}
