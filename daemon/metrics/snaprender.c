#include "metrics/snaprender.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/prom.h"
#include "sampler/suspects.h"
#include "util/strbuf.h"

/* A cJSON tree printed and deleted: the text (the caller frees it) or NULL. */
static char *print_free(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* The census of one sample as snapwriter_census takes it: a head ending in "types":[ and one
 * item per type, so that a ?top=N answer is the head, the first N items and "]}" (the same bytes
 * json_census(c, N) prints: "types" is its last key). The items lie end to end in one buffer. */
typedef struct CensusText {
    char *head;
    char *buf;
    const char **items; /* into buf */
    size_t *lens;
    size_t n;
} CensusText;

static void census_text_done(CensusText *t)
{
    free(t->head);
    free(t->buf);
    free(t->items);
    free(t->lens);
    *t = (CensusText){0};
}

/* A buffer's text in an allocation of its own length (a StrBuf grows by doubling): the caller
 * frees it. NULL when out of memory. */
static char *finish_tight(StrBuf *b)
{
    size_t len = 0;
    char *s = strbuf_finish(b, &len);
    char *t = s ? realloc(s, len + 1) : NULL;
    return s && !t ? s : t; /* a shrink that failed: the larger block will do */
}

/* Prints census c into *ret (emptied with census_text_done). Returns 0 or -ENOMEM. */
static int census_text(const Census *c, CensusText *ret)
{
    CensusText t = {0};
    cJSON *o = json_census(c, 0);
    cJSON *types = o ? cJSON_DetachItemFromObject(o, "types") : NULL;
    char *obj = print_free(o);
    t.n = (size_t)cJSON_GetArraySize(types);
    t.items = calloc(t.n ? t.n : 1, sizeof(*t.items));
    t.lens = calloc(t.n ? t.n : 1, sizeof(*t.lens));
    int k = obj && types && t.items && t.lens ? 0 : -ENOMEM;
    StrBuf b = {0};
    size_t made = 0;
    for (cJSON *x = types ? types->child : NULL; k == 0 && x; x = x->next, made++) {
        char *item = cJSON_PrintUnformatted(x);
        if (!item) {
            k = -ENOMEM;
            break;
        }
        t.lens[made] = strlen(item);
        strbuf_append(&b, item, t.lens[made]);
        free(item);
    }
    cJSON_Delete(types);
    if (k == 0) {
        t.buf = finish_tight(&b);
        StrBuf head = {0};
        strbuf_append(&head, obj, strlen(obj) - 1); /* without its closing brace */
        strbuf_puts(&head, ",\"types\":[");
        t.head = finish_tight(&head);
        if (!t.buf || !t.head)
            k = -ENOMEM;
    }
    strbuf_done(&b);
    free(obj);
    for (size_t m = 0, off = 0; k == 0 && m < t.n; off += t.lens[m], m++)
        t.items[m] = t.buf + off;
    if (k < 0) {
        census_text_done(&t);
        return k;
    }
    *ret = t;
    return 0;
}

/* "suspects" of the growth document: the types whose count rose in each of the last K censuses,
 * or null with "suspects_error" saying why there is no list (not an empty one). */
static void add_suspects(cJSON *g, const Suspects *sp)
{
    if (!sp || sp->reason[0]) {
        cJSON_AddNullToObject(g, "suspects");
        cJSON_AddStringToObject(g, "suspects_error",
                                sp ? sp->reason : "leak suspects are not known: out of memory");
        return;
    }
    cJSON *a = cJSON_AddArrayToObject(g, "suspects");
    for (size_t i = 0; a && i < sp->n; i++) {
        const Suspect *x = &sp->s[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "type", x->type);
        cJSON_AddStringToObject(o, "name", x->name);
        cJSON_AddNumberToObject(o, "censuses", sp->k);
        cJSON *counts = cJSON_AddArrayToObject(o, "counts");
        for (unsigned c = 0; counts && c <= sp->k; c++)
            cJSON_AddItemToArray(counts, cJSON_CreateNumber((double)x->counts[c]));
        cJSON_AddNumberToObject(o, "increase", (double)(x->counts[sp->k] - x->counts[0]));
        cJSON_AddNumberToObject(o, "bytes_increase", (double)x->bytes_increase);
        if (isnan(x->per_second))
            cJSON_AddNullToObject(o, "per_second");
        else
            cJSON_AddNumberToObject(o, "per_second", x->per_second);
        cJSON_AddItemToArray(a, o);
    }
    cJSON_AddNumberToObject(g, "suspects_since", sp->from);
    cJSON_AddNullToObject(g, "suspects_error");
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

/* One target's printed census and growth document, with what they were printed from. */
typedef struct CacheEntry {
    pid_t pid;
    Census *census; /* a reference, or NULL when text is not held */
    CensusText text;
    Census *from, *to; /* references, or NULL when growth is not held */
    const Suspects *suspects;
    char *growth;
    size_t growth_len;
} CacheEntry;

struct SnapCache {
    CacheEntry *e; /* in pid order */
    size_t n;
};

static void entry_drop_census(CacheEntry *e)
{
    e->census = census_free(e->census);
    census_text_done(&e->text);
}

static void entry_drop_growth(CacheEntry *e)
{
    e->from = census_free(e->from);
    e->to = census_free(e->to);
    e->suspects = NULL;
    free(e->growth);
    e->growth = NULL;
    e->growth_len = 0;
}

static void entry_done(CacheEntry *e)
{
    entry_drop_census(e);
    entry_drop_growth(e);
}

SnapCache *snapcache_new(void)
{
    return calloc(1, sizeof(SnapCache));
}

SnapCache *snapcache_free(SnapCache *c)
{
    if (!c)
        return NULL;
    for (size_t i = 0; i < c->n; i++)
        entry_done(&c->e[i]);
    free(c->e);
    free(c);
    return NULL;
}

/* Lines the cache up with samples[0..n): entry i is samples[i]'s, carried over when its pid had
 * one (both are in pid order, so one pass finds them), empty otherwise; the entries of pids gone
 * are freed. Returns 0, or -ENOMEM with the cache emptied. */
static int cache_align(SnapCache *c, const TargetSample *samples, size_t n)
{
    CacheEntry *e = calloc(n ? n : 1, sizeof(*e));
    size_t j = 0;
    for (size_t i = 0; e && i < n; i++) {
        while (j < c->n && c->e[j].pid < samples[i].pid)
            entry_done(&c->e[j++]);
        if (j < c->n && c->e[j].pid == samples[i].pid)
            e[i] = c->e[j++];
        e[i].pid = samples[i].pid;
    }
    for (; j < c->n; j++)
        entry_done(&c->e[j]);
    free(c->e);
    c->e = e;
    c->n = e ? n : 0;
    return e ? 0 : -ENOMEM;
}

/* Makes entry e hold the printed census c, unless it does. Returns 0 or -ENOMEM. */
static int entry_census(CacheEntry *e, Census *c)
{
    if (e->census == c)
        return 0;
    entry_drop_census(e);
    int k = census_text(c, &e->text);
    if (k < 0)
        return k;
    e->census = census_ref(c);
    return 0;
}

/* Writes census c of sample i from entry e, printing it first unless e holds its text. */
static int put_census(SnapWriter *w, size_t i, Census *c, CacheEntry *e)
{
    int k = entry_census(e, c);
    if (k == 0)
        snapwriter_census(w, i, c->at, e->text.head, e->text.items, e->text.lens, e->text.n);
    return k;
}

/* The process document of sample s, printed (the caller frees it; its length in *ret_len), or
 * NULL when out of memory. Its "objects" member is census s->census as json_census(c, 0)
 * prints it, the same bytes as e's census text (head, items, "]}"): with e holding it, the
 * document is printed without the census and that text put in its place, instead of a tree
 * of every type built and printed each interval. */
static char *process_text(const TargetSample *s, const CacheEntry *e, size_t *ret_len)
{
    static const char hole[] = "\"objects\":null,\"objects_error\":";
    char *doc = NULL;
    if (s->census && e && e->census == s->census) {
        TargetSample v = *s; /* shallow: json_process only reads it */
        v.census = NULL;
        doc = print_free(json_process(&v));
        /* Keys are never inside a string: a quote in one is escaped, so the hole is the key. */
        char *at = doc ? strstr(doc, hole) : NULL;
        if (at) {
            /* One allocation of the exact length: every document is held until the snapshot
             * is made. */
            const char *tail = at + strlen("\"objects\":null");
            size_t pre = (size_t)(tail - doc) - strlen("null"), head = strlen(e->text.head);
            size_t len = pre + head + strlen("]}") + strlen(tail);
            for (size_t t = 0; t < e->text.n; t++)
                len += e->text.lens[t] + (t > 0);
            char *out = malloc(len + 1), *p = out;
            if (out) {
                p = mempcpy(p, doc, pre);
                p = mempcpy(p, e->text.head, head);
                for (size_t t = 0; t < e->text.n; t++) {
                    if (t)
                        *p++ = ',';
                    p = mempcpy(p, e->text.items[t], e->text.lens[t]);
                }
                p = mempcpy(p, "]}", 2);
                strcpy(p, tail);
                *ret_len = len;
            }
            free(doc);
            return out;
        }
        free(doc);
    }
    doc = print_free(json_process(s));
    if (doc)
        *ret_len = strlen(doc);
    return doc;
}

/* Writes the growth document of sample s (from its previous census to its latest, with its
 * suspects) from entry e, printing it first unless e holds it. */
static int put_growth(SnapWriter *w, size_t i, const TargetSample *s, CacheEntry *e)
{
    if (e->from != s->prev_census || e->to != s->census || e->suspects != s->suspects ||
        !e->growth) {
        entry_drop_growth(e);
        cJSON *gj = json_growth(s->pid, s->prev_census, s->census);
        if (gj)
            add_suspects(gj, s->suspects);
        e->growth = print_free(gj);
        if (!e->growth)
            return -ENOMEM;
        e->growth_len = strlen(e->growth);
        e->from = census_ref(s->prev_census);
        e->to = census_ref(s->census);
        e->suspects = s->suspects;
    }
    snapwriter_growth(w, i, e->growth, e->growth_len);
    return 0;
}

int snaprender_new(const JsonDaemonInfo *info, const TargetSample *samples, size_t n,
                   double taken_at, SnapCache *cache, Snapshot **ret)
{
    SnapWriter *w = NULL;
    int k = snapwriter_new(taken_at, &w);
    if (k < 0)
        return k;
    if (cache && cache_align(cache, samples, n) < 0)
        cache = NULL; /* emptied: print everything this time */
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
     * once would be the largest allocation pymemd makes. A census new this round is printed in
     * its document's tree once, and cached by put_census() below: made here, before the
     * documents, the cached texts cost about 0.5 MiB more RSS with 100 targets (bench_rss.sh). */
    for (size_t i = 0; k == 0 && i < n; i++) {
        pids[i] = samples[i].pid;
        procs[i] = process_text(&samples[i], cache ? &cache->e[i] : NULL, &lens[i]);
        if (!procs[i])
            k = -ENOMEM;
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
        CacheEntry scratch = {.pid = s->pid};
        CacheEntry *e = cache ? &cache->e[i] : &scratch;
        if (s->census)
            k = put_census(w, i, s->census, e);
        else
            entry_drop_census(e);
        if (k == 0 && s->census && s->prev_census)
            k = put_growth(w, i, s, e);
        else
            entry_drop_growth(e);
        entry_done(&scratch);
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
