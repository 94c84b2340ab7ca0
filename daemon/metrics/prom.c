#include "metrics/prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler/suspects.h"
#include "util/strbuf.h"

typedef enum Kind { GAUGE, COUNTER } Kind;

/* Writes a label value with the escapes both formats define: backslash, quote, newline. The
 * runs between them are copied whole. */
static void label_value(StrBuf *b, const char *v)
{
    while (v && *v) {
        size_t run = strcspn(v, "\\\"\n");
        strbuf_append(b, v, run);
        v += run;
        if (*v == '\\')
            strbuf_puts(b, "\\\\");
        else if (*v == '"')
            strbuf_puts(b, "\\\"");
        else if (*v == '\n')
            strbuf_puts(b, "\\n");
        else
            break;
        v++;
    }
}

static void family(StrBuf *b, PromFormat fmt, const char *name, Kind kind, const char *help)
{
    /* OpenMetrics names a counter family without its _total suffix; text 0.0.4 by the sample. */
    size_t len = strlen(name);
    if (fmt == PROM_OPENMETRICS && kind == COUNTER && len > 6 &&
        strcmp(name + len - 6, "_total") == 0)
        len -= 6;
    strbuf_printf(b, "# HELP %.*s %s\n", (int)len, name, help);
    strbuf_printf(b, "# TYPE %.*s %s\n", (int)len, name, kind == COUNTER ? "counter" : "gauge");
}

/* A target's own labels, pid="..",name="..", as every one of its lines starts: made once per
 * render. Returns a malloc'd string the caller frees, or NULL when out of memory. */
static char *target_labels(const TargetSample *s)
{
    StrBuf b = {0};
    strbuf_printf(&b, "pid=\"%d\",name=\"", s->pid);
    label_value(&b, s->have_identity ? s->id.comm : "");
    strbuf_puts(&b, "\"");
    return strbuf_finish(&b, NULL);
}

/* Writes v and a newline: an integral value below 1e15 as an integer (what "%.0f" printed, -0
 * included, without printf's floating-point path), any other as "%.17g", NaN as NaN. */
static void sample_value(StrBuf *b, double v)
{
    if (isnan(v)) {
        strbuf_puts(b, "NaN\n");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        char digits[24], *p = digits + sizeof(digits);
        *--p = '\n';
        unsigned long long u = (unsigned long long)fabs(v);
        do
            *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (signbit(v))
            *--p = '-';
        strbuf_append(b, p, (size_t)(digits + sizeof(digits) - p));
    } else {
        strbuf_printf(b, "%.17g\n", v);
    }
}

/* One sample line: name{lbl[,extra]} value, lbl being the target labels (target_labels()). */
static void line(StrBuf *b, const char *name, const char *lbl, const char *extra, double v)
{
    strbuf_puts(b, name);
    strbuf_puts(b, "{");
    strbuf_puts(b, lbl);
    if (extra) {
        strbuf_puts(b, ",");
        strbuf_puts(b, extra);
    }
    strbuf_puts(b, "} ");
    sample_value(b, v);
}

typedef double (*GenValue)(const PyGcGeneration *g);
static double g_collections(const PyGcGeneration *g)
{
    return (double)g->collections;
}
static double g_collected(const PyGcGeneration *g)
{
    return (double)g->collected;
}
static double g_uncollectable(const PyGcGeneration *g)
{
    return (double)g->uncollectable;
}
static double g_count(const PyGcGeneration *g)
{
    return (double)g->count;
}
static double g_threshold(const PyGcGeneration *g)
{
    return (double)g->threshold;
}
static double g_duration(const PyGcGeneration *g)
{
    return g->duration;
}

static void per_generation(StrBuf *b, PromFormat fmt, const TargetSample *s, char *const *tl,
                           size_t n, const char *name, Kind kind, const char *help, GenValue value,
                           bool only_if_known)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].have_py)
            continue;
        for (unsigned g = 0; g < s[i].py.ngenerations; g++) {
            double v = value(&s[i].py.gen[g]);
            if (only_if_known && isnan(v))
                continue;
            if (!any)
                family(b, fmt, name, kind, help);
            any = true;
            char extra[32];
            snprintf(extra, sizeof(extra), "generation=\"%u\"", g);
            line(b, name, tl[i], extra, v);
        }
    }
}

typedef double (*TargetValue)(const TargetSample *s);
/* Writes a family of one value per target; a value < 0 (unknown) leaves the target out. */
static void per_target(StrBuf *b, PromFormat fmt, const TargetSample *s, char *const *tl, size_t n,
                       const char *name, Kind kind, const char *help, TargetValue value)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        double v = value(&s[i]);
        if (v < 0 || isnan(v))
            continue;
        if (!any)
            family(b, fmt, name, kind, help);
        any = true;
        line(b, name, tl[i], NULL, v);
    }
}

#define PY(field)                                                                                  \
    static double v_##field(const TargetSample *s)                                                 \
    {                                                                                              \
        return s->have_py ? (double)s->py.field : -1;                                              \
    }
#define PM(field)                                                                                  \
    static double v_##field(const TargetSample *s)                                                 \
    {                                                                                              \
        return s->have_py && s->py.pymalloc_ok ? (double)s->py.field : -1;                         \
    }
#define MEM(field)                                                                                 \
    static double v_mem_##field(const TargetSample *s)                                             \
    {                                                                                              \
        return s->have_memory ? (double)s->mem.field : -1;                                         \
    }
PY(enabled)
PY(threads)
PY(frozen)
PY(garbage)
PM(arenas)
PM(arena_bytes)
PM(allocated_blocks)
PM(allocated_bytes)
MEM(rss)
MEM(vms)
MEM(anon)
MEM(swap)
MEM(pss)
MEM(peak_rss)

static double v_up(const TargetSample *s)
{
    return s->status == TARGET_OK ? 1 : 0;
}

static double v_busy_ratio(const TargetSample *s)
{
    return s->have_py ? s->busy_ratio : NAN;
}

static double v_sample_seconds(const TargetSample *s)
{
    return s->sample_seconds;
}

static void python_info(StrBuf *b, PromFormat fmt, const TargetSample *s, char *const *tl, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].have_python)
            continue;
        if (!any)
            family(b, fmt, "python_info", GAUGE, "Python platform information of the target");
        any = true;
        unsigned major = s[i].hexversion >> 24, minor = (s[i].hexversion >> 16) & 0xff,
                 micro = (s[i].hexversion >> 8) & 0xff;
        char extra[160], patch[8] = "";
        if (s[i].version_exact)
            snprintf(patch, sizeof(patch), "%u", micro);
        snprintf(extra, sizeof(extra),
                 "version=\"%s\",implementation=\"CPython\",major=\"%u\",minor=\"%u\","
                 "patchlevel=\"%s\"",
                 s[i].version, major, minor, patch);
        line(b, "python_info", tl[i], extra, 1);
    }
}

/* pymemd_target_info: one series per target whose identity was read, value 1, carrying who the
 * process is. Only here, not on every series: see README "Service groups". */
static void target_info(StrBuf *b, PromFormat fmt, const TargetSample *s, char *const *tl, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].have_identity || !s[i].group[0])
            continue;
        if (!any)
            family(b, fmt, "pymemd_target_info", GAUGE,
                   "Who the target is: its service group (config key group), container, "
                   "Kubernetes pod, systemd unit and pid in its own PID namespace; join with "
                   "* on(pid, name) group_left(group)");
        any = true;
        const WhoisCgroup *cg = s[i].have_cgroup ? &s[i].cgroup : NULL;
        StrBuf lbl = {0};
        strbuf_puts(&lbl, "group=\"");
        label_value(&lbl, s[i].group);
        strbuf_puts(&lbl, "\",container_id=\"");
        label_value(&lbl, cg ? cg->container_id : "");
        strbuf_puts(&lbl, "\",container_runtime=\"");
        label_value(&lbl, cg ? cg->runtime : "");
        strbuf_puts(&lbl, "\",pod_uid=\"");
        label_value(&lbl, cg ? cg->pod_uid : "");
        strbuf_puts(&lbl, "\",qos_class=\"");
        label_value(&lbl, cg ? cg->qos_class : "");
        strbuf_puts(&lbl, "\",unit=\"");
        label_value(&lbl, cg ? cg->unit : "");
        strbuf_puts(&lbl, "\",ns_pid=\"");
        if (s[i].ns_pid > 0)
            strbuf_printf(&lbl, "%d", (int)s[i].ns_pid);
        strbuf_puts(&lbl, "\"");
        char *extra = strbuf_finish(&lbl, NULL);
        if (extra)
            line(b, "pymemd_target_info", tl[i], extra, 1);
        free(extra);
    }
}

static double v_census_pause(const TargetSample *s)
{
    return s->census ? s->census->pause_seconds : -1;
}

static double v_censuses(const TargetSample *s)
{
    return s->have_py ? (double)s->censuses : -1;
}

/* The object_type label of a census type. "other" is the sum of the types past the top N, so a
 * type whose key is "other" (a class may be named anything) is written "other~", and one whose
 * key is "other~" is written "other~~", and so on: the mapping stays one-to-one and no real
 * type can ever be labelled plain "other". */
static void object_type_label(StrBuf *b, const char *key)
{
    label_value(b, key);
    if (strncmp(key, "other", 5) == 0 && key[5 + strspn(key + 5, "~")] == 0)
        strbuf_puts(b, "~");
}

/* python_objects and python_objects_bytes: the top types of each target, then "other". */
static void objects(StrBuf *b, PromFormat fmt, const TargetSample *s, char *const *tl, size_t n,
                    unsigned top, bool bytes)
{
    const char *name = bytes ? "python_objects_bytes" : "python_objects";
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const Census *c = s[i].census;
        if (!c)
            continue;
        if (!any)
            family(b, fmt, name, GAUGE,
                   bytes ? "Bytes of live GC-tracked objects by type (sys.getsizeof's formula), "
                           "from the latest census"
                         : "Live GC-tracked objects by type, from the latest census");
        any = true;
        int64_t other = 0;
        bool has_other = false;
        for (size_t t = 0; t < c->ntypes; t++) {
            int64_t v = bytes ? c->types[t].bytes : c->types[t].count;
            if (t >= top) {
                other += v;
                has_other = true;
                continue;
            }
            StrBuf lbl = {0};
            strbuf_puts(&lbl, "object_type=\"");
            object_type_label(&lbl, c->types[t].name);
            strbuf_puts(&lbl, "\"");
            char *extra = strbuf_finish(&lbl, NULL);
            if (extra)
                line(b, name, tl[i], extra, (double)v);
            free(extra);
        }
        if (has_other)
            line(b, name, tl[i], "object_type=\"other\"", (double)other);
    }
}

/* pymemd_leak_suspect_objects_per_second: for each target, its leak suspects (the types whose
 * count rose in each of the last suspect_censuses censuses), largest increase first, at most top
 * of them: how fast each grew over those censuses. A type is a series only while it is a
 * suspect. */
static void leak_suspects(StrBuf *b, PromFormat fmt, const TargetSample *s, char *const *tl,
                          size_t n, unsigned top)
{
    const char *name = "pymemd_leak_suspect_objects_per_second";
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const Suspects *sp = s[i].suspects;
        for (size_t t = 0; sp && t < sp->n && t < top; t++) {
            if (isnan(sp->s[t].per_second))
                continue;
            if (!any)
                family(b, fmt, name, GAUGE,
                       "Leak suspects: objects per second a type grew by over the last "
                       "suspect_censuses censuses, in each of which its count rose");
            any = true;
            StrBuf lbl = {0};
            strbuf_puts(&lbl, "object_type=\"");
            object_type_label(&lbl, sp->s[t].type);
            strbuf_puts(&lbl, "\"");
            char *extra = strbuf_finish(&lbl, NULL);
            if (extra)
                line(b, name, tl[i], extra, sp->s[t].per_second);
            free(extra);
        }
    }
}

char *prom_render(PromFormat fmt, const char *version, const TargetSample *s, size_t n,
                  unsigned top_types, size_t *ret_len)
{
    char **tl = calloc(n ? n : 1, sizeof(*tl));
    for (size_t i = 0; tl && i < n; i++)
        if (!(tl[i] = target_labels(&s[i]))) {
            for (size_t j = 0; j < i; j++)
                free(tl[j]);
            free(tl);
            tl = NULL;
        }
    if (!tl)
        return NULL;
    StrBuf b = {0};
    family(&b, fmt, "pymemd_build_info", GAUGE, "pymemd's version");
    strbuf_printf(&b, "pymemd_build_info{version=\"%s\"} 1\n", version);
    per_target(&b, fmt, s, tl, n, "pymemd_target_up", GAUGE,
               "1 when the target's last sample succeeded, 0 when not (see the JSON error)", v_up);
    per_target(&b, fmt, s, tl, n, "pymemd_sample_duration_seconds", GAUGE,
               "Wall time pymemd took to sample the target", v_sample_seconds);
    target_info(&b, fmt, s, tl, n);
    python_info(&b, fmt, s, tl, n);
    per_generation(&b, fmt, s, tl, n, "python_gc_collections_total", COUNTER,
                   "Number of times this generation was collected", g_collections, false);
    per_generation(&b, fmt, s, tl, n, "python_gc_objects_collected_total", COUNTER,
                   "Objects collected during gc", g_collected, false);
    per_generation(&b, fmt, s, tl, n, "python_gc_objects_uncollectable_total", COUNTER,
                   "Uncollectable objects found during GC", g_uncollectable, false);
    per_generation(&b, fmt, s, tl, n, "python_gc_pending", GAUGE,
                   "gc.get_count(): gen 0 tracked allocations minus deallocations since its last "
                   "collection, older generations collections of the next younger one; a "
                   "collection runs when it passes python_gc_threshold",
                   g_count, false);
    per_generation(&b, fmt, s, tl, n, "python_gc_threshold", GAUGE, "gc.get_threshold()",
                   g_threshold, false);
    per_generation(&b, fmt, s, tl, n, "python_gc_duration_seconds_total", COUNTER,
                   "Time the interpreter spent collecting this generation, as it measured it "
                   "(CPython 3.15+)",
                   g_duration, true);
    per_target(&b, fmt, s, tl, n, "python_gc_busy_ratio_estimate", GAUGE,
               "Estimate: share of polls of the GC's collecting flag that found a collection "
               "running since the previous sample (sampled, not measured)",
               v_busy_ratio);
    per_target(&b, fmt, s, tl, n, "python_gc_enabled", GAUGE, "gc.isenabled()", v_enabled);
    per_target(&b, fmt, s, tl, n, "python_gc_frozen_objects", GAUGE,
               "gc.get_freeze_count(): objects in the permanent generation", v_frozen);
    per_target(&b, fmt, s, tl, n, "python_gc_garbage_objects", GAUGE, "len(gc.garbage)", v_garbage);
    per_target(&b, fmt, s, tl, n, "python_memory_resident_bytes", GAUGE, "Resident set size",
               v_mem_rss);
    per_target(&b, fmt, s, tl, n, "python_memory_virtual_bytes", GAUGE, "Virtual memory size",
               v_mem_vms);
    per_target(&b, fmt, s, tl, n, "python_memory_anonymous_bytes", GAUGE,
               "Resident anonymous memory", v_mem_anon);
    per_target(&b, fmt, s, tl, n, "python_memory_swap_bytes", GAUGE, "Swapped-out memory",
               v_mem_swap);
    per_target(&b, fmt, s, tl, n, "python_memory_proportional_bytes", GAUGE,
               "Proportional set size (PSS)", v_mem_pss);
    per_target(&b, fmt, s, tl, n, "python_memory_peak_resident_bytes", GAUGE,
               "Peak resident set size (VmHWM)", v_mem_peak_rss);
    per_target(&b, fmt, s, tl, n, "python_pymalloc_arenas", GAUGE, "pymalloc arenas allocated now",
               v_arenas);
    per_target(&b, fmt, s, tl, n, "python_pymalloc_arena_bytes", GAUGE,
               "Bytes in pymalloc arenas allocated now", v_arena_bytes);
    per_target(&b, fmt, s, tl, n, "python_pymalloc_allocated_blocks", GAUGE,
               "sys.getallocatedblocks()", v_allocated_blocks);
    per_target(&b, fmt, s, tl, n, "python_pymalloc_allocated_bytes", GAUGE,
               "Free-threaded builds: bytes of the mimalloc blocks sys.getallocatedblocks() counts "
               "(each block's size, not the size asked for)",
               v_allocated_bytes);
    per_target(&b, fmt, s, tl, n, "python_threads", GAUGE, "Python threads of the main interpreter",
               v_threads);
    objects(&b, fmt, s, tl, n, top_types, false);
    objects(&b, fmt, s, tl, n, top_types, true);
    leak_suspects(&b, fmt, s, tl, n, top_types);
    per_target(&b, fmt, s, tl, n, "pymemd_census_pause_seconds", GAUGE,
               "How long the latest census kept the target stopped", v_census_pause);
    per_target(&b, fmt, s, tl, n, "pymemd_censuses_total", COUNTER,
               "Object censuses pymemd attempted of the target (each stops it at most three times; "
               "failed ones included)",
               v_censuses);
    if (fmt == PROM_OPENMETRICS)
        strbuf_puts(&b, "# EOF\n");
    for (size_t i = 0; i < n; i++)
        free(tl[i]);
    free(tl);
    return strbuf_finish(&b, ret_len);
}
