/* pymemctl show PID: everything pymemd knows about one process, in sections. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fmt.h"
#include "pymemd/api.h"
#include "table.h"
#include "view.h"

/* How many types of the census show lists; `objects` shows them all. */
#define SHOW_TYPES  10
#define LABEL_WIDTH 19

static const char show_help[] =
    "Usage: pymemctl show PID [--url URL] [--json] [--no-color]\n"
    "Everything pymemd knows about one process, in sections: identity, memory,\n"
    "pymalloc, the garbage collector (each generation's count, threshold and\n"
    "statistics, as gc.get_count(), gc.get_threshold() and gc.get_stats(); on 3.15\n"
    "also candidates and time) and a summary of the last object census. A value\n"
    "pymemd could not read is shown as '-', and the reason as 'error'.\n"
    "\n"
    "      --json            print the daemon's JSON (GET " PYMEMD_PATH_PROCESSES "/PID)\n";

typedef struct Out {
    StrBuf b;
    bool color;
} Out;

static void section(Out *o, const char *title)
{
    strbuf_puts(&o->b, "\n");
    fmt_sgr(&o->b, o->color, SGR_BOLD, title);
    strbuf_puts(&o->b, "\n");
}

/* One "  label             value" line; value comes from anywhere and is cleaned. */
static void kv(Out *o, const char *label, const char *value, const char *sgr)
{
    StrBuf v = {0};
    char *s;

    strbuf_puts(&o->b, "  ");
    fmt_fit(&o->b, label, LABEL_WIDTH, true);
    strbuf_puts(&o->b, " ");
    fmt_clean(&v, value ? value : FMT_NONE);
    s = fmt_take(&v, NULL);
    fmt_sgr(&o->b, o->color, value ? sgr : NULL, s ? s : "?");
    free(s);
    strbuf_puts(&o->b, "\n");
}

/* "13.5 MiB (14,159,872 bytes)": the unit for reading, the exact number for comparing. */
static void kv_bytes(Out *o, const char *label, Num n)
{
    char buf[2 * FMT_MAX + 16];

    if (!n.ok) {
        kv(o, label, NULL, NULL);
        return;
    }
    snprintf(buf, sizeof(buf), "%s (%s bytes)", FMT(fmt_bytes, n), FMT(fmt_count, n));
    kv(o, label, buf, NULL);
}

/* "2026-11-24 21:15:03 (3.2 s ago)". */
static void kv_when(Out *o, const char *label, Num t, const char *extra)
{
    char buf[3 * FMT_MAX + 32];

    if (!t.ok) {
        kv(o, label, NULL, NULL);
        return;
    }
    snprintf(buf, sizeof(buf), "%s (%s)%s", FMT(fmt_time, t), FMT(fmt_ago, t), extra ? extra : "");
    kv(o, label, buf, NULL);
}

static const char *yes_no(int v)
{
    return v < 0 ? NULL : v ? "yes" : "no";
}

static void show_identity(Out *o, const cJSON *p)
{
    const char *status = jstr(p, "status");
    const char *version = jstr(p, "python.version");
    const char *build = jstr(p, "python.build");
    Num hex = jnum(p, "python.hexversion");
    char buf[256], took[FMT_MAX + 16];

    section(o, "Identity");
    kv(o, "name", jstr(p, "name"), NULL);
    kv(o, "command line", jstr(p, "cmdline"), NULL);
    if (jget(p, "exe"))
        kv(o, "executable", jstr(p, "exe"), NULL);
    kv_when(o, "started", jnum(p, "start_time"), NULL);
    if (version) {
        snprintf(buf, sizeof(buf), "%s%s%s%s%s", version, build ? " (" : "", build ? build : "",
                 build ? " build" : "", build ? ")" : "");
        if (hex.ok)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ", hexversion %.0f", hex.v);
        kv(o, "python", buf, NULL);
    } else {
        kv(o, "python", NULL, NULL);
    }
    kv(o, "threads", FMT(fmt_count, jnum(p, "threads")), NULL);
    kv(o, "status", status, view_status_sgr(status));
    if (jstr(p, "error"))
        kv(o, "error", jstr(p, "error"), view_ok(p) ? SGR_YELLOW : SGR_RED);
    snprintf(took, sizeof(took), ", read in %s", FMT(fmt_seconds, jnum(p, "sample_seconds")));
    kv_when(o, "sampled", jnum(p, "sampled_at"), jnum(p, "sample_seconds").ok ? took : NULL);
}

static void show_memory(Out *o, const cJSON *p)
{
    section(o, "Memory");
    kv_bytes(o, "resident (rss)", jnum(p, "memory.rss_bytes"));
    kv_bytes(o, "peak resident", jnum(p, "memory.peak_rss_bytes"));
    kv_bytes(o, "proportional (pss)", jnum(p, "memory.pss_bytes"));
    kv_bytes(o, "anonymous", jnum(p, "memory.anon_bytes"));
    kv_bytes(o, "swap", jnum(p, "memory.swap_bytes"));
    kv_bytes(o, "virtual", jnum(p, "memory.vms_bytes"));
}

static void show_pymalloc(Out *o, const cJSON *p)
{
    section(o, "pymalloc");
    kv(o, "arenas", FMT(fmt_count, jnum(p, "pymalloc.arenas")), NULL);
    kv(o, "arenas high-water", FMT(fmt_count, jnum(p, "pymalloc.arenas_highwater")), NULL);
    kv_bytes(o, "arena bytes", jnum(p, "pymalloc.arena_bytes"));
    kv(o, "allocated blocks", FMT(fmt_count, jnum(p, "pymalloc.allocated_blocks")), NULL);
}

/* 3.15 reports candidates and time per generation; older versions have nulls there, and the
 * columns are left out rather than filled with dashes. */
static bool gens_have(const cJSON *p, const char *key)
{
    for (int gen = 0; gen < 3; gen++)
        if (view_gen(p, gen, key).ok)
            return true;
    return false;
}

/* Appends a table (after a blank line), indented by two, and frees it. */
static int emit_table(Out *o, Table *t)
{
    _cleanup_(freep) char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    int r = f ? table_print(t, f, o->color, 2) : -ENOMEM;
    if (f)
        fclose(f);
    table_free(t);
    if (r < 0 || !s)
        return -ENOMEM;
    strbuf_puts(&o->b, "\n");
    strbuf_append(&o->b, s, len);
    return 0;
}

static int show_generations(Out *o, const cJSON *p)
{
    static const TableCol cols[] = {
        {"GEN", true, 0},         {"COUNT", true, 0},     {"THRESHOLD", true, 0},
        {"COLLECTIONS", true, 0}, {"COLLECTED", true, 0}, {"UNCOLLECTABLE", true, 0},
        {"CANDIDATES", true, 0},  {"TIME", true, 0},
    };
    bool cand = gens_have(p, "candidates"), dur = gens_have(p, "duration_seconds");
    size_t ncols = ARRAY_SIZE(cols) - 2;
    TableCol use[ARRAY_SIZE(cols)];
    Table *t;

    memcpy(use, cols, sizeof(cols));
    if (cand)
        ncols++;
    if (dur)
        use[ncols++] = cols[7];
    t = table_new(use, ncols);
    if (!t)
        return -ENOMEM;
    for (int gen = 0; gen < 3; gen++) {
        table_row(t);
        table_cell(t, FMT(fmt_count, ((Num){.ok = true, .v = gen})), NULL);
        table_cell(t, FMT(fmt_count, view_gen(p, gen, "count")), NULL);
        table_cell(t, FMT(fmt_count, view_gen(p, gen, "threshold")), NULL);
        table_cell(t, FMT(fmt_count, view_gen(p, gen, "collections")), NULL);
        table_cell(t, FMT(fmt_count, view_gen(p, gen, "collected")), NULL);
        Num unc = view_gen(p, gen, "uncollectable");
        table_cell(t, FMT(fmt_count, unc), unc.ok && unc.v > 0 ? SGR_RED : NULL);
        if (cand)
            table_cell(t, FMT(fmt_count, view_gen(p, gen, "candidates")), NULL);
        if (dur)
            table_cell(t, FMT(fmt_seconds, view_gen(p, gen, "duration_seconds")), NULL);
    }
    if (emit_table(o, t) < 0)
        return -ENOMEM;
    return 0;
}

static int show_gc(Out *o, const cJSON *p)
{
    Num garbage = jnum(p, "gc.garbage");

    section(o, "Garbage collector");
    kv(o, "enabled", yes_no(jbool(p, "gc.enabled")),
       jbool(p, "gc.enabled") == 0 ? SGR_YELLOW : NULL);
    kv(o, "collecting now", yes_no(jbool(p, "gc.collecting")), NULL);
    kv(o, "busy (estimate)", FMT(fmt_percent, jnum(p, "gc.busy_ratio_estimate")), NULL);
    kv(o, "frozen objects", FMT(fmt_count, jnum(p, "gc.frozen")), NULL);
    kv(o, "gc.garbage", FMT(fmt_count, garbage), garbage.ok && garbage.v > 0 ? SGR_RED : NULL);
    if (jnum(p, "gc.heap_size").ok)
        kv(o, "heap size", FMT(fmt_count, jnum(p, "gc.heap_size")), NULL);
    return show_generations(o, p);
}

static int show_census_types(Out *o, const cJSON *census, long pid)
{
    static const TableCol cols[] = {{"TYPE", false, 40}, {"COUNT", true, 0}, {"BYTES", true, 0}};
    const cJSON *types = jarray(census, "types"), *ty;
    size_t shown = 0;
    Table *t = table_new(cols, ARRAY_SIZE(cols));

    if (!t)
        return -ENOMEM;
    cJSON_ArrayForEach(ty, types)
    {
        if (shown == SHOW_TYPES)
            break;
        shown++;
        table_row(t);
        table_cell(t, jstr(ty, "type") ? jstr(ty, "type") : FMT_NONE, NULL);
        table_cell(t, FMT(fmt_count, jnum(ty, "count")), NULL);
        table_cell(t, FMT(fmt_bytes, jnum(ty, "bytes")), NULL);
    }
    if (emit_table(o, t) < 0)
        return -ENOMEM;
    if (view_census_ntypes(census) > shown)
        strbuf_printf(&o->b, "  ... %zu more types: pymemctl objects %ld\n",
                      view_census_ntypes(census) - shown, pid);
    return 0;
}

static int show_census(Out *o, const cJSON *p, long pid)
{
    const cJSON *census = jget(p, "objects");
    StrBuf gens = {0};

    section(o, "Objects");
    if (!cJSON_IsObject(census)) {
        strbuf_printf(
            &o->b, "  no object census yet ('pymemctl objects %ld --fresh' takes one now)\n", pid);
        return 0;
    }
    kv_when(o, "census", jnum(census, "at"), NULL);
    kv(o, "objects", FMT(fmt_count, jnum(census, "total")), NULL);
    if (view_census_generations(&gens, census)) {
        _cleanup_(freep) char *s = fmt_take(&gens, NULL);
        kv(o, "by generation", s ? s : "?", NULL);
    }
    kv(o, "types", FMT(fmt_count, ((Num){.ok = true, .v = (double)view_census_ntypes(census)})),
       NULL);
    if (view_census_bytes(census).ok)
        kv(o, "bytes", FMT(fmt_bytes, view_census_bytes(census)), NULL);
    kv(o, "stopped for", FMT(fmt_seconds, jnum(census, "pause_seconds")), NULL);
    kv(o, "walk took", FMT(fmt_seconds, jnum(census, "walk_seconds")), NULL);
    return show_census_types(o, census, pid);
}

static int show_print(const Ctl *ctl, const cJSON *p, long pid)
{
    Out o = {.color = ctl->color};
    const char *status = jstr(p, "status");
    StrBuf title = {0};
    char *s;
    size_t len;
    int r;

    strbuf_printf(&title, "pid %ld", pid);
    if (jstr(p, "name")) {
        strbuf_puts(&title, "  ");
        fmt_clean(&title, jstr(p, "name"));
    }
    s = fmt_take(&title, NULL);
    fmt_sgr(&o.b, o.color, SGR_BOLD, s ? s : "?");
    free(s);
    strbuf_puts(&o.b, "  ");
    fmt_sgr(&o.b, o.color, view_status_sgr(status), status ? status : FMT_NONE);
    strbuf_puts(&o.b, "\n");
    if (!view_ok(p)) {
        /* The reason first: the sections below are mostly dashes then. */
        view_problem(&o.b, p, o.color);
        strbuf_puts(&o.b, "\n");
    }
    show_identity(&o, p);
    show_memory(&o, p);
    show_pymalloc(&o, p);
    r = show_gc(&o, p);
    if (r >= 0)
        r = show_census(&o, p, pid);
    s = fmt_take(&o.b, &len);
    if (r < 0 || !s) {
        free(s);
        ctl_error("out of memory");
        return CTL_EXIT_DAEMON;
    }
    fwrite(s, 1, len, stdout);
    free(s);
    return CTL_EXIT_OK;
}

int cmd_show(Ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {CTL_COMMON_OPTIONS, {0}};
    _cleanup_(ctl_answer_clear) CtlAnswer a = {0};
    char path[64];
    long pid;
    int opt, r;

    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (opt == 'h') {
            fputs(show_help, stdout);
            return CTL_EXIT_OK;
        }
        if (opt == ':' || opt == '?')
            return ctl_option_error("show", opt, argv);
        r = ctl_common_option(ctl, opt, optarg);
        if (r != 0)
            return r;
    }
    if (optind >= argc)
        return ctl_usage_error("show", "show needs a PID");
    if (ctl_parse_pid(argv[optind], &pid) < 0)
        return ctl_usage_error("show", "\"%s\" is not a process id", argv[optind]);
    if (optind + 1 < argc)
        return ctl_usage_error("show", "show takes one PID, but was also given \"%s\"",
                               argv[optind + 1]);
    r = ctl_ready(ctl);
    if (r != 0)
        return r;
    snprintf(path, sizeof(path), "%s/%ld", PYMEMD_PATH_PROCESSES, pid);
    if (ctl_get(ctl, path, CTL_TIMEOUT_MS, &a) != CTL_EXIT_OK)
        return ctl_fail(&a);
    return ctl->json ? ctl_print_raw(&a) : show_print(ctl, a.json, pid);
}
