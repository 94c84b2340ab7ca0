#include "metrics/json.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>

#include "util/strbuf.h"

static _Atomic int cmdline_mode = CMDLINE_REDACTED;

void json_set_cmdline_mode(CmdlineMode m)
{
    cmdline_mode = (int)m;
}

/* The command line as the setting allows it to be shown; NULL (JSON null) when hidden. */
static const char *shown_cmdline(const TargetSample *s)
{
    if (!s->have_identity)
        return NULL;
    switch ((CmdlineMode)cmdline_mode) {
    case CMDLINE_FULL:
        return s->id.cmdline;
    case CMDLINE_REDACTED:
        return s->id.cmdline_redacted;
    case CMDLINE_HIDDEN:
        break;
    }
    return NULL;
}

/* Adds a number, or null when the value is unknown (-1): never a made-up zero. */
static void add_i64(cJSON *o, const char *key, int64_t v)
{
    if (v < 0)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, (double)v);
}

static void add_str_or_null(cJSON *o, const char *key, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* Who the process is: its service group, container, pod, systemd unit, cgroup and namespace pid
 * (proc/whois.h); each null when not known, never a guess. */
static void add_whois(cJSON *p, const TargetSample *s)
{
    add_str_or_null(p, "group", s->group);
    const WhoisCgroup *cg = s->have_cgroup ? &s->cgroup : NULL;
    if (cg && cg->container_id[0]) {
        cJSON *c = cJSON_AddObjectToObject(p, "container");
        cJSON_AddStringToObject(c, "id", cg->container_id);
        add_str_or_null(c, "runtime", cg->runtime);
    } else {
        cJSON_AddNullToObject(p, "container");
    }
    add_str_or_null(p, "pod_uid", cg ? cg->pod_uid : NULL);
    add_str_or_null(p, "qos_class", cg ? cg->qos_class : NULL);
    add_str_or_null(p, "unit", cg ? cg->unit : NULL);
    add_str_or_null(p, "cgroup", cg ? cg->path : NULL);
    add_i64(p, "ns_pid", s->ns_pid > 0 ? s->ns_pid : -1);
    add_i64(p, "top_python_ancestor_pid", s->top_ancestor > 0 ? s->top_ancestor : -1);
}

static void add_memory(cJSON *p, const TargetSample *s)
{
    if (!s->have_memory) {
        cJSON_AddNullToObject(p, "memory");
        return;
    }
    cJSON *m = cJSON_AddObjectToObject(p, "memory");
    add_i64(m, "rss_bytes", s->mem.rss);
    add_i64(m, "vms_bytes", s->mem.vms);
    add_i64(m, "anon_bytes", s->mem.anon);
    add_i64(m, "swap_bytes", s->mem.swap);
    add_i64(m, "pss_bytes", s->mem.pss);
    /* PSS is read at its own cadence (pss_interval): when, and why not when it is null. */
    if (s->mem.pss >= 0)
        cJSON_AddNumberToObject(m, "pss_read_at", s->pss_at);
    else
        cJSON_AddNullToObject(m, "pss_read_at");
    add_str_or_null(m, "pss_error", s->pss_error);
    add_i64(m, "peak_rss_bytes", s->mem.peak_rss);
}

static void add_gc(cJSON *p, const PySample *py, double busy_ratio)
{
    cJSON *gc = cJSON_AddObjectToObject(p, "gc");
    cJSON_AddBoolToObject(gc, "enabled", py->enabled);
    cJSON_AddBoolToObject(gc, "collecting", py->collecting);
    add_i64(gc, "frozen", py->frozen);
    /* The frozen count is counted by the last census or a walk spread over samples: its age. */
    if (isnan(py->frozen_age))
        cJSON_AddNullToObject(gc, "frozen_age_seconds");
    else
        cJSON_AddNumberToObject(gc, "frozen_age_seconds", py->frozen_age);
    add_i64(gc, "garbage", py->garbage);
    add_i64(gc, "heap_size", py->heap_size);
    cJSON *gens = cJSON_AddArrayToObject(gc, "generations");
    for (unsigned i = 0; i < py->ngenerations; i++) {
        const PyGcGeneration *g = &py->gen[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "generation", i);
        cJSON_AddNumberToObject(o, "count", (double)g->count);
        cJSON_AddNumberToObject(o, "threshold", (double)g->threshold);
        cJSON_AddNumberToObject(o, "collections", (double)g->collections);
        cJSON_AddNumberToObject(o, "collected", (double)g->collected);
        cJSON_AddNumberToObject(o, "uncollectable", (double)g->uncollectable);
        add_i64(o, "candidates", g->candidates);
        if (isnan(g->duration))
            cJSON_AddNullToObject(o, "duration_seconds");
        else
            cJSON_AddNumberToObject(o, "duration_seconds", g->duration);
        cJSON_AddItemToArray(gens, o);
    }
    if (isnan(busy_ratio))
        cJSON_AddNullToObject(gc, "busy_ratio_estimate");
    else
        cJSON_AddNumberToObject(gc, "busy_ratio_estimate", busy_ratio);
}

cJSON *json_census(const Census *c, size_t top)
{
    static const char *const gen_names[CENSUS_GENERATIONS] = {"0", "1", "2", "permanent"};
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "at", c->at);
    cJSON_AddNumberToObject(o, "total", (double)c->total);
    cJSON_AddBoolToObject(o, "frozen", c->frozen);
    cJSON_AddNumberToObject(o, "pause_seconds", c->pause_seconds);
    cJSON_AddNumberToObject(o, "walk_seconds", c->walk_seconds);
    cJSON_AddNumberToObject(o, "stop_seconds", c->stop_seconds);
    cJSON_AddNumberToObject(o, "copy_seconds", c->copy_seconds);
    cJSON_AddNumberToObject(o, "copied_bytes", (double)c->copied_bytes);
    cJSON_AddNumberToObject(o, "pages_read", (double)c->pages_read);
    cJSON_AddNumberToObject(o, "stops", c->stops);
    cJSON_AddBoolToObject(o, "walked_after_resume", c->snapshot);
    /* Per generation, and the two views: what gc.get_objects() lists (0-2) and the frozen
     * objects it leaves out, which are live memory all the same. */
    cJSON *gens = cJSON_AddArrayToObject(o, "generations");
    int64_t listed = 0, listed_bytes = 0;
    for (int g = 0; g < CENSUS_GENERATIONS; g++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "generation", gen_names[g]);
        cJSON_AddNumberToObject(e, "count", (double)c->generation[g]);
        cJSON_AddNumberToObject(e, "bytes", (double)c->generation_bytes[g]);
        cJSON_AddItemToArray(gens, e);
        if (g < 3) {
            listed += c->generation[g];
            listed_bytes += c->generation_bytes[g];
        }
    }
    cJSON_AddNumberToObject(o, "gc_get_objects_count", (double)listed);
    cJSON_AddNumberToObject(o, "gc_get_objects_bytes", (double)listed_bytes);
    cJSON_AddNumberToObject(o, "ntypes", (double)c->ntypes);
    cJSON *types = cJSON_AddArrayToObject(o, "types");
    size_t n = top && top < c->ntypes ? top : c->ntypes;
    for (size_t i = 0; i < n; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "type", c->types[i].name);
        cJSON_AddStringToObject(t, "name", c->types[i].pyname);
        cJSON_AddNumberToObject(t, "count", (double)c->types[i].count);
        cJSON_AddNumberToObject(t, "bytes", (double)c->types[i].bytes);
        cJSON_AddItemToArray(types, t);
    }
    return o;
}

typedef struct Delta {
    const CensusType *t;
    int64_t count, bytes;
} Delta;

static int cmp_delta(const void *a, const void *b)
{
    const Delta *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

static const CensusType *find_type(const Census *c, uint64_t type)
{
    for (size_t i = 0; i < c->ntypes; i++)
        if (c->types[i].type == type)
            return &c->types[i];
    return NULL;
}

cJSON *json_growth(pid_t pid, const Census *from, const Census *to)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "pid", pid);
    cJSON_AddNumberToObject(o, "from", from->at);
    cJSON_AddNumberToObject(o, "to", to->at);
    Delta *d = calloc(from->ntypes + to->ntypes + 1, sizeof(*d));
    if (!d) {
        cJSON_Delete(o);
        return NULL;
    }
    size_t n = 0;
    /* Types matched by type object: two same-named types never mix. */
    for (size_t i = 0; i < to->ntypes; i++) {
        const CensusType *old = find_type(from, to->types[i].type);
        d[n++] = (Delta){&to->types[i], to->types[i].count - (old ? old->count : 0),
                         to->types[i].bytes - (old ? old->bytes : 0)};
    }
    for (size_t i = 0; i < from->ntypes; i++)
        if (!find_type(to, from->types[i].type))
            d[n++] = (Delta){&from->types[i], -from->types[i].count, -from->types[i].bytes};
    qsort(d, n, sizeof(*d), cmp_delta);
    cJSON *types = cJSON_AddArrayToObject(o, "types");
    for (size_t i = 0; i < n; i++) {
        if (d[i].count == 0 && d[i].bytes == 0)
            continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "type", d[i].t->name);
        cJSON_AddStringToObject(t, "name", d[i].t->pyname);
        cJSON_AddNumberToObject(t, "count", (double)d[i].count);
        cJSON_AddNumberToObject(t, "bytes", (double)d[i].bytes);
        cJSON_AddItemToArray(types, t);
    }
    free(d);
    return o;
}

cJSON *json_process(const TargetSample *s)
{
    cJSON *p = cJSON_CreateObject();
    if (!p)
        return NULL;
    cJSON_AddNumberToObject(p, "pid", s->pid);
    add_str_or_null(p, "name", s->have_identity ? s->id.comm : NULL);
    add_str_or_null(p, "cmdline", shown_cmdline(s));
    add_str_or_null(p, "exe", s->have_identity ? s->id.exe : NULL);
    if (s->have_identity)
        cJSON_AddNumberToObject(p, "start_time", s->id.start_time);
    else
        cJSON_AddNullToObject(p, "start_time");
    add_whois(p, s);
    cJSON_AddStringToObject(p, "status", target_status_name(s->status));
    add_str_or_null(p, "error", s->error);

    if (s->have_python) {
        cJSON *py = cJSON_AddObjectToObject(p, "python");
        cJSON_AddStringToObject(py, "version", s->version);
        if (s->version_exact)
            cJSON_AddNumberToObject(py, "hexversion", s->hexversion);
        else
            cJSON_AddNullToObject(py, "hexversion");
        cJSON_AddStringToObject(py, "build", s->shared ? "shared" : "static");
    } else {
        cJSON_AddNullToObject(p, "python");
    }

    if (s->have_py)
        add_i64(p, "threads", s->py.threads);
    else
        cJSON_AddNullToObject(p, "threads");
    add_memory(p, s);

    if (s->have_py) {
        cJSON *pm = cJSON_AddObjectToObject(p, "pymalloc");
        const PySample *py = &s->py;
        bool ok = py->pymalloc_ok;
        add_i64(pm, "arenas", ok ? py->arenas : -1);
        add_i64(pm, "arenas_highwater", ok ? py->arenas_highwater : -1);
        add_i64(pm, "arena_bytes", ok ? py->arena_bytes : -1);
        add_i64(pm, "allocated_blocks", ok ? py->allocated_blocks : -1);
        add_i64(pm, "allocated_bytes", ok ? py->allocated_bytes : -1);
        add_gc(p, py, s->busy_ratio);
    } else {
        cJSON_AddNullToObject(p, "pymalloc");
        cJSON_AddNullToObject(p, "gc");
    }
    if (s->census)
        cJSON_AddItemToObject(p, "objects", json_census(s->census, 0));
    else
        cJSON_AddNullToObject(p, "objects");
    /* Always present, so that the key set does not depend on how the last census went. */
    add_str_or_null(p, "objects_error", s->census_error);
    /* How often pymemd stopped (or, non-blocking, walked) this process for a census. */
    cJSON_AddNumberToObject(p, "censuses_total", (double)s->censuses);
    cJSON_AddNumberToObject(p, "sampled_at", s->sampled_at);
    cJSON_AddNumberToObject(p, "sample_seconds", s->sample_seconds);
    return p;
}

/* "processes": [...], each process rendered and printed on its own: one tree holding every
 * target's census at once would be the largest allocation pymemd makes (100 targets: megabytes
 * of nodes, freed a moment later). */
static void append_processes(StrBuf *b, const TargetSample *samples, size_t n)
{
    strbuf_puts(b, "\"processes\":[");
    for (size_t i = 0; i < n && !b->oom; i++) {
        cJSON *p = json_process(&samples[i]);
        char *text = p ? cJSON_PrintUnformatted(p) : NULL;
        cJSON_Delete(p);
        if (!text) {
            b->oom = true;
            break;
        }
        if (i)
            strbuf_puts(b, ",");
        strbuf_puts(b, text);
        free(text);
    }
    strbuf_puts(b, "]");
}

char *json_processes(const TargetSample *samples, size_t n, size_t *ret_len)
{
    StrBuf b = {0};
    strbuf_puts(&b, "{");
    append_processes(&b, samples, n);
    strbuf_puts(&b, "}");
    return strbuf_finish(&b, ret_len);
}

char *json_document(const JsonDaemonInfo *info, const TargetSample *samples, size_t n)
{
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return NULL;
    cJSON_AddStringToObject(d, "version", info->version);
    cJSON_AddNumberToObject(d, "started_at", info->started_at);
    cJSON_AddNumberToObject(d, "interval_seconds", info->interval_seconds);
    char *daemon = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    if (!daemon)
        return NULL;
    StrBuf b = {0};
    strbuf_puts(&b, "{\"pymemd\":");
    strbuf_puts(&b, daemon);
    free(daemon);
    strbuf_puts(&b, ",");
    append_processes(&b, samples, n);
    strbuf_puts(&b, "}");
    return strbuf_finish(&b, NULL);
}
