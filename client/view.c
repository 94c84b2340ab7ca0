/* view: shared readings of PROCESS objects. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "pymemd/api.h"
#include "view.h"

Num view_gen(const cJSON *proc, int gen, const char *key)
{
    const cJSON *gens = jarray(proc, "gc.generations");
    const cJSON *g;

    /* Match on the "generation" field where there is one, on the position otherwise. */
    cJSON_ArrayForEach(g, gens)
    {
        Num n = jnum(g, "generation");
        if (n.ok && n.v == gen)
            return jnum(g, key);
    }
    g = cJSON_GetArrayItem(gens, gen);
    return g && !jget(g, "generation") ? jnum(g, key) : (Num){0};
}

bool view_ok(const cJSON *proc)
{
    const char *st = jstr(proc, "status");

    return st && strcmp(st, PYMEMD_STATUS_OK) == 0;
}

const char *view_status_sgr(const char *status)
{
    if (status && strcmp(status, PYMEMD_STATUS_OK) == 0)
        return SGR_GREEN;
    if (status && strcmp(status, PYMEMD_STATUS_GONE) == 0)
        return SGR_YELLOW;
    return SGR_RED;
}

static int by_pid(const void *a, const void *b)
{
    Num pa = jnum(*(const cJSON *const *)a, "pid");
    Num pb = jnum(*(const cJSON *const *)b, "pid");
    double va = pa.ok ? pa.v : -1, vb = pb.ok ? pb.v : -1;

    return (va > vb) - (va < vb);
}

int view_processes(const cJSON *doc, const cJSON ***ret, size_t *ret_n)
{
    const cJSON *list = jarray(doc, "processes");
    const cJSON **v, *p;
    size_t n = 0;

    if (!list)
        return -EBADMSG;
    v = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    cJSON_ArrayForEach(p, list)
    {
        if (cJSON_IsObject(p))
            v[n++] = p;
    }
    qsort(v, n, sizeof(*v), by_pid);
    *ret = v;
    *ret_n = n;
    return 0;
}

void view_problem(StrBuf *b, const cJSON *proc, bool color)
{
    const char *status = jstr(proc, "status");
    const char *name = jstr(proc, "name");
    const char *error = jstr(proc, "error");
    StrBuf st = {0};
    char *s;

    strbuf_printf(b, "pid %s", FMT(fmt_id, jnum(proc, "pid")));
    if (name) {
        strbuf_puts(b, " (");
        fmt_clean(b, name);
        strbuf_puts(b, ")");
    }
    strbuf_puts(b, ": ");
    fmt_clean(&st, status ? status : "unknown status");
    s = fmt_take(&st, NULL);
    fmt_sgr(b, color, view_status_sgr(status), s ? s : "?");
    free(s);
    if (error) {
        strbuf_puts(b, ": ");
        fmt_clean(b, error);
    }
}

size_t view_census_ntypes(const cJSON *census)
{
    Num n = jnum(census, "ntypes");
    int listed = cJSON_GetArraySize(jarray(census, "types"));

    return n.ok && n.v > listed ? (size_t)n.v : (size_t)listed;
}

bool view_census_generations(StrBuf *b, const cJSON *census)
{
    const cJSON *gens = jarray(census, "generations"), *g;
    bool any = false;

    cJSON_ArrayForEach(g, gens)
    {
        const cJSON *name = jget(g, "generation");
        char id[FMT_MAX];

        if (cJSON_IsString(name))
            snprintf(id, sizeof(id), "%s", name->valuestring);
        else
            fmt_id(id, jnum(g, "generation"));
        strbuf_puts(b, any ? ", " : "");
        fmt_clean(b, id);
        strbuf_printf(b, ": %s", FMT(fmt_count, jnum(g, "count")));
        any = true;
    }
    return any;
}

Num view_census_bytes(const cJSON *census)
{
    const cJSON *types = jarray(census, "types"), *t;
    Num sum = {.ok = types != NULL &&
                     view_census_ntypes(census) == (size_t)cJSON_GetArraySize(types)};

    cJSON_ArrayForEach(t, types)
    {
        Num n = jnum(t, "bytes");
        if (!n.ok)
            return (Num){0};
        sum.v += n.v;
    }
    return sum;
}
