#include "metrics/snaprender.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/prom.h"
#include "util/strbuf.h"

/* A cJSON tree printed and deleted: the text (the caller frees it) or NULL. */
static char *print_free(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* The census of one sample, as a head ending in "types":[ and one item per type, so that a
 * ?top=N answer is the head, the first N items and "]}" (the same bytes json_census(c, N)
 * prints: "types" is its last key). */
static int add_census(SnapWriter *w, size_t i, const Census *c)
{
    cJSON *o = json_census(c, 0);
    cJSON *types = o ? cJSON_DetachItemFromObject(o, "types") : NULL;
    char *obj = print_free(o);
    size_t n = (size_t)cJSON_GetArraySize(types);
    char **items = calloc(n ? n : 1, sizeof(*items));
    size_t *lens = calloc(n ? n : 1, sizeof(*lens));
    int k = obj && types && items && lens ? 0 : -ENOMEM;
    size_t made = 0;
    for (cJSON *t = types ? types->child : NULL; k == 0 && t; t = t->next, made++) {
        items[made] = cJSON_PrintUnformatted(t);
        if (!items[made])
            k = -ENOMEM;
        else
            lens[made] = strlen(items[made]);
    }
    if (k == 0) {
        StrBuf head = {0};
        strbuf_append(&head, obj, strlen(obj) - 1); /* without its closing brace */
        strbuf_puts(&head, ",\"types\":[");
        char *h = strbuf_finish(&head, NULL);
        if (h)
            snapwriter_census(w, i, c->at, h, (const char *const *)items, lens, n);
        else
            k = -ENOMEM;
        free(h);
    }
    for (size_t m = 0; m < made; m++)
        free(items[m]);
    free(items);
    free(lens);
    free(obj);
    cJSON_Delete(types);
    return k;
}

/* What sample s read, as the history keeps it: a value not read at this sample has its bit
 * clear. Sizes are whole KiB: /proc gives them in kB, and arenas are 256 KiB or 1 MiB. */
static SnapSample sample_record(const TargetSample *s)
{
    SnapSample r = {0};
    if (!s->have_identity || s->status == TARGET_GONE)
        return r; /* nothing of this process to record */
    r.t = s->sampled_at;
    r.start_ticks = s->id.start_ticks;
    if (s->have_memory && s->mem.rss >= 0) {
        r.read |= SNAP_READ_RSS;
        r.rss_kib = (uint64_t)s->mem.rss / 1024;
    }
    /* Read at this sample, not the value kept between reads (pss_interval). */
    if (s->have_memory && s->mem.pss >= 0 && s->pss_at >= s->sampled_at) {
        r.read |= SNAP_READ_PSS;
        r.pss_kib = (uint64_t)s->mem.pss / 1024;
    }
    if (s->have_py && s->py.pymalloc_ok) {
        if (s->py.arena_bytes >= 0) {
            r.read |= SNAP_READ_ARENA;
            r.arena_kib = (uint64_t)s->py.arena_bytes / 1024;
        }
        if (s->py.allocated_blocks >= 0) {
            r.read |= SNAP_READ_BLOCKS;
            r.allocated_blocks = (uint64_t)s->py.allocated_blocks;
        }
    }
    if (s->have_py && s->py.ngenerations >= 3 && s->py.gen[0].collections >= 0 &&
        s->py.gen[1].collections >= 0 && s->py.gen[2].collections >= 0) {
        r.read |= SNAP_READ_GC;
        for (int g = 0; g < 3; g++)
            r.gc_collections[g] = (uint64_t)s->py.gen[g].collections;
    }
    if (s->census && s->census->total >= 0) {
        r.read |= SNAP_READ_OBJECTS;
        r.objects_total = (uint64_t)s->census->total;
    }
    return r;
}

int snaprender_new(const JsonDaemonInfo *info, const TargetSample *samples, size_t n,
                   double taken_at, Snapshot **ret)
{
    SnapWriter *w = NULL;
    int k = snapwriter_new(taken_at, &w);
    if (k < 0)
        return k;
    char **procs = calloc(n ? n : 1, sizeof(*procs));
    size_t *lens = calloc(n ? n : 1, sizeof(*lens));
    pid_t *pids = calloc(n ? n : 1, sizeof(*pids));
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "version", info->version);
        cJSON_AddNumberToObject(d, "started_at", info->started_at);
        cJSON_AddNumberToObject(d, "interval_seconds", info->interval_seconds);
    }
    char *daemon = print_free(d);
    k = procs && lens && pids && daemon ? 0 : -ENOMEM;
    SnapSettings settings = {info->interval_seconds, info->history_seconds,
                             info->history_max_memory};
    snapwriter_settings(w, &settings);
    /* Each process rendered and printed on its own: one tree holding every target's census at
     * once would be the largest allocation pymemd makes. */
    for (size_t i = 0; k == 0 && i < n; i++) {
        pids[i] = samples[i].pid;
        procs[i] = print_free(json_process(&samples[i]));
        if (!procs[i])
            k = -ENOMEM;
        else
            lens[i] = strlen(procs[i]);
    }
    if (k == 0) {
        StrBuf head = {0};
        strbuf_puts(&head, "{\"pymemd\":");
        strbuf_puts(&head, daemon);
        strbuf_puts(&head, ",\"processes\":[");
        char *h = strbuf_finish(&head, NULL);
        if (h)
            snapwriter_json(w, h, pids, (const char *const *)procs, lens, n, "]}");
        else
            k = -ENOMEM;
        free(h);
    }
    for (size_t i = 0; k == 0 && i < n; i++) {
        const TargetSample *s = &samples[i];
        snapwriter_readable(w, i, s->status == TARGET_OK);
        snapwriter_census_error(w, i, s->census_error);
        SnapSample rec = sample_record(s);
        snapwriter_sample(w, i, &rec);
        if (s->census)
            k = add_census(w, i, s->census);
        if (k == 0 && s->census && s->prev_census) {
            char *g = print_free(json_growth(s->pid, s->prev_census, s->census));
            if (g)
                snapwriter_growth(w, i, g, strlen(g));
            else
                k = -ENOMEM;
            free(g);
        }
    }
    for (int f = SNAP_PROMETHEUS; k == 0 && f <= SNAP_OPENMETRICS; f++) {
        size_t len = 0;
        char *body = prom_render(f == SNAP_PROMETHEUS ? PROM_TEXT : PROM_OPENMETRICS, info->version,
                                 samples, n, info->top_types, &len);
        if (body)
            snapwriter_body(w, (SnapFormat)f, body, len);
        else
            k = -ENOMEM;
        free(body);
    }
    for (size_t i = 0; procs && i < n; i++)
        free(procs[i]);
    free(procs);
    free(lens);
    free(pids);
    free(daemon);
    if (k < 0) {
        snapwriter_free(w);
        return k;
    }
    return snapwriter_finish(w, ret);
}
