/* pymemctl objects PID and growth PID: the object census and how it changed. */
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

/* Enough rows to see what dominates without scrolling; --top 0 shows every type. */
#define DEFAULT_TOP 20

static const char objects_help[] =
    "Usage: pymemctl objects PID [--top N] [--sort count|bytes] [--fresh]\n"
    "                [--url URL] [--json] [--no-color]\n"
    "The live objects the garbage collector tracks in process PID, by type, from\n"
    "pymemd's last object census: how many there are of each type and their size\n"
    "(basic size plus item size times length), largest count first.\n"
    "\n"
    "      --top N           show the N largest types (default 20; 0 shows all)\n"
    "      --sort KEY        order by count (default) or bytes\n"
    "      --fresh           have pymemd take a census now instead of showing the\n"
    "                        last one (may stop the process briefly; pymemctl\n"
    "                        waits up to 35 s)\n"
    "      --json            print the daemon's JSON\n"
    "                        (GET " PYMEMD_PATH_PROCESSES "/PID/objects): types by\n"
    "                        count, trimmed to --top N when given\n";

static const char growth_help[] =
    "Usage: pymemctl growth PID [--top N] [--fresh] [--url URL] [--json] [--no-color]\n"
    "The types whose number of live objects changed between pymemd's last two\n"
    "object censuses of process PID, largest growth first: what is piling up.\n"
    "\n"
    "      --top N           show the N types that grew most (default 20; 0: all)\n"
    "      --fresh           have pymemd take a census now and compare it with the\n"
    "                        one before (pymemd takes at most one per\n"
    "                        census_min_interval; inside it the latest is used)\n"
    "      --json            print the daemon's JSON\n"
    "                        (GET " PYMEMD_PATH_PROCESSES "/PID/growth)\n";

typedef struct Opts {
    long pid;
    long top; /* -1: not given */
    bool by_bytes;
    bool fresh;
} Opts;

enum { OPT_TOP = OPT_FIRST_COMMAND_OPTION, OPT_SORT, OPT_FRESH };

/* Parses the options of objects (census true) or growth. Returns -1 to go on, or an exit code. */
static int parse(Ctl *ctl, int argc, char **argv, bool census, Opts *o)
{
    static const struct option options[] = {
        CTL_COMMON_OPTIONS,
        {"top", required_argument, NULL, OPT_TOP},
        {"sort", required_argument, NULL, OPT_SORT},
        {"fresh", no_argument, NULL, OPT_FRESH},
        {0},
    };
    const char *cmd = census ? "objects" : "growth";
    int opt, r;

    *o = (Opts){.top = -1};
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(census ? objects_help : growth_help, stdout);
            return CTL_EXIT_OK;
        case OPT_TOP:
            if (ctl_parse_count(optarg, &o->top) < 0)
                return ctl_usage_error(cmd, "--top wants a number of types (0 for all), not \"%s\"",
                                       optarg);
            break;
        case OPT_SORT:
            if (!census)
                return ctl_usage_error(cmd,
                                       "growth has no --sort: it lists the largest growth first");
            if (strcmp(optarg, "bytes") != 0 && strcmp(optarg, "count") != 0)
                return ctl_usage_error(cmd, "--sort wants count or bytes, not \"%s\"", optarg);
            o->by_bytes = strcmp(optarg, "bytes") == 0;
            break;
        case OPT_FRESH:
            o->fresh = true;
            break;
        case ':':
        case '?':
            return ctl_option_error(cmd, opt, argv);
        default:
            r = ctl_common_option(ctl, opt, optarg);
            if (r != 0)
                return r;
        }
    }
    if (optind >= argc)
        return ctl_usage_error(cmd, "%s needs a PID", cmd);
    if (ctl_parse_pid(argv[optind], &o->pid) < 0)
        return ctl_usage_error(cmd, "\"%s\" is not a process id", argv[optind]);
    if (optind + 1 < argc)
        return ctl_usage_error(cmd, "%s takes one PID, but was also given \"%s\"", cmd,
                               argv[optind + 1]);
    return -1;
}

typedef struct Row {
    const char *type;
    Num count, bytes;
} Row;

static double key(Num n)
{
    return n.ok ? n.v : -1e300; /* unknown values sort last */
}

static int cmp_num(Num a, Num b)
{
    return (key(a) < key(b)) - (key(a) > key(b)); /* descending */
}

static int cmp_name(const Row *a, const Row *b)
{
    return strcmp(a->type ? a->type : "", b->type ? b->type : "");
}

static int by_count(const void *pa, const void *pb)
{
    const Row *a = pa, *b = pb;
    int c = cmp_num(a->count, b->count);

    c = c ? c : cmp_num(a->bytes, b->bytes);
    return c ? c : cmp_name(a, b);
}

static int by_bytes(const void *pa, const void *pb)
{
    const Row *a = pa, *b = pb;
    int c = cmp_num(a->bytes, b->bytes);

    c = c ? c : cmp_num(a->count, b->count);
    return c ? c : cmp_name(a, b);
}

/* The types of a census or growth table as rows; *ret is the caller's to free. */
static int rows_of(const cJSON *doc, Row **ret, size_t *ret_n)
{
    const cJSON *types = jarray(doc, "types"), *t;
    Row *rows;
    size_t n = 0;

    if (!types)
        return -EBADMSG;
    rows = calloc((size_t)cJSON_GetArraySize(types) + 1, sizeof(*rows));
    if (!rows)
        return -ENOMEM;
    cJSON_ArrayForEach(t, types)
    {
        rows[n++] =
            (Row){.type = jstr(t, "type"), .count = jnum(t, "count"), .bytes = jnum(t, "bytes")};
    }
    *ret = rows;
    *ret_n = n;
    return 0;
}

/* Average size of one object of a type: tells a few huge objects from many small ones. */
static Num average(const Row *r)
{
    if (!r->count.ok || !r->bytes.ok || r->count.v <= 0)
        return (Num){0};
    return (Num){.ok = true, .v = r->bytes.v / r->count.v};
}

static int print_table(const Ctl *ctl, const Row *rows, size_t n, bool growth)
{
    static const TableCol census_cols[] = {
        {"TYPE", false, 48}, {"COUNT", true, 0}, {"BYTES", true, 0}, {"AVG", true, 0}};
    static const TableCol growth_cols[] = {
        {"TYPE", false, 48}, {"COUNT", true, 0}, {"BYTES", true, 0}};
    Table *t = growth ? table_new(growth_cols, ARRAY_SIZE(growth_cols))
                      : table_new(census_cols, ARRAY_SIZE(census_cols));
    int r;

    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Row *row = &rows[i];
        table_row(t);
        table_cell(t, row->type ? row->type : FMT_NONE, NULL);
        if (growth) {
            /* Growth is what an incident is about; shrinking is good news. */
            const char *sgr = !row->count.ok || row->count.v == 0 ? NULL
                              : row->count.v > 0                  ? SGR_RED
                                                                  : SGR_GREEN;
            table_cell(t, FMT(fmt_delta, row->count), sgr);
            table_cell(t, FMT(fmt_delta_bytes, row->bytes), sgr);
        } else {
            table_cell(t, FMT(fmt_count, row->count), NULL);
            table_cell(t, FMT(fmt_bytes, row->bytes), NULL);
            table_cell(t, FMT(fmt_bytes, average(row)), NULL);
        }
    }
    r = table_print(t, stdout, ctl->color, 0);
    table_free(t);
    return r;
}

static void print_more(size_t shown, size_t n, const char *what)
{
    if (shown < n)
        printf("... %zu more %s (--top 0 shows all)\n", n - shown, what);
}

static int census_print(const Ctl *ctl, const cJSON *census, const Opts *o)
{
    _cleanup_(freep) Row *rows = NULL;
    Num bytes = view_census_bytes(census);
    StrBuf gens = {0};
    size_t n, shown, ntypes;
    int r;

    r = rows_of(census, &rows, &n);
    if (r < 0)
        return r;
    qsort(rows, n, sizeof(*rows), o->by_bytes ? by_bytes : by_count);
    ntypes = view_census_ntypes(census);
    printf("pid %ld: %s objects of %s types, %s\n", o->pid, FMT(fmt_count, jnum(census, "total")),
           FMT(fmt_count, ((Num){.ok = true, .v = (double)ntypes})), FMT(fmt_bytes, bytes));
    if (view_census_generations(&gens, census)) {
        _cleanup_(freep) char *s = fmt_take(&gens, NULL);
        printf("by generation: %s\n", s ? s : "?");
    }
    printf("census at %s (%s); the process was stopped %s, the walk took %s\n",
           FMT(fmt_clock, jnum(census, "at")), FMT(fmt_ago, jnum(census, "at")),
           FMT(fmt_seconds, jnum(census, "pause_seconds")),
           FMT(fmt_seconds, jnum(census, "walk_seconds")));
    if (n == 0) {
        printf("no objects\n");
        return 0;
    }
    shown = o->top > 0 ? MIN(n, (size_t)o->top) : o->top == 0 ? n : MIN(n, (size_t)DEFAULT_TOP);
    putchar('\n');
    r = print_table(ctl, rows, shown, false);
    if (r >= 0)
        print_more(shown, MAX(n, ntypes), "types");
    return r;
}

static int growth_print(const Ctl *ctl, const cJSON *g, const Opts *o)
{
    _cleanup_(freep) Row *rows = NULL;
    Num from = jnum(g, "from"), to = jnum(g, "to");
    size_t n, shown;
    int r;

    r = rows_of(g, &rows, &n);
    if (r < 0)
        return r;
    printf("pid %ld: change between the censuses at %s and %s", o->pid, FMT(fmt_clock, from),
           FMT(fmt_clock, to));
    if (from.ok && to.ok)
        printf(" (%s apart)", FMT(fmt_seconds, ((Num){.ok = true, .v = to.v - from.v})));
    putchar('\n');
    if (n == 0) {
        printf("no type changed\n");
        return 0;
    }
    /* The daemon's order (largest growth first) is the one that matters; sorting again only
     * makes the output independent of it. */
    qsort(rows, n, sizeof(*rows), by_count);
    shown = o->top > 0 ? MIN(n, (size_t)o->top) : o->top == 0 ? n : MIN(n, (size_t)DEFAULT_TOP);
    putchar('\n');
    r = print_table(ctl, rows, shown, true);
    if (r >= 0)
        print_more(shown, n, "types");
    return r;
}

/* The query: --json passes --top on to the daemon; the table asks for every type, so that its
 * totals and the --sort bytes order are over all of them. */
static void census_path(char *path, size_t size, const Ctl *ctl, const Opts *o, bool census)
{
    int n = snprintf(path, size, "%s/%ld/%s", PYMEMD_PATH_PROCESSES, o->pid,
                     census ? "objects" : "growth");
    const char *sep = "?";

    if (census && o->fresh) {
        n += snprintf(path + n, size - (size_t)n, "%sfresh=1", sep);
        sep = "&";
    }
    if (census && ctl->json && o->top >= 0)
        snprintf(path + n, size - (size_t)n, "%stop=%ld", sep, o->top);
}

/* A failed objects/growth answer, and what to run when the daemon has not the censuses yet. */
static int census_fail(const CtlAnswer *a, const Opts *o, bool census)
{
    int r = ctl_fail(a);

    if (a->status != 404)
        return r;
    /* With --fresh too: a scheduled census abandoned over max_census_pause may succeed on
     * demand, which has max_census_pause_on_demand. */
    if (strstr(a->msg, "no object census"))
        fprintf(stderr, "pymemctl: to take one now: pymemctl %s --fresh %ld\n",
                census ? "objects" : "growth", o->pid);
    else if (strstr(a->msg, "growth needs two censuses"))
        fprintf(stderr,
                "pymemctl: to take another: pymemctl growth --fresh %ld (pymemd takes at most "
                "one census per census_min_interval, 10 s by default)\n",
                o->pid);
    return r;
}

/* growth --fresh: a census now (the latest one inside census_min_interval), so that growth
 * compares it with the one before. */
static int fresh_census(const Ctl *ctl, const Opts *o)
{
    _cleanup_(ctl_answer_clear) CtlAnswer a = {0};
    char path[128];

    snprintf(path, sizeof(path), "%s/%ld/objects?fresh=1&top=1", PYMEMD_PATH_PROCESSES, o->pid);
    if (ctl_get(ctl, path, CTL_TIMEOUT_CENSUS_MS, &a) != CTL_EXIT_OK)
        return ctl_fail(&a);
    return CTL_EXIT_OK;
}

static int run(Ctl *ctl, int argc, char **argv, bool census)
{
    _cleanup_(ctl_answer_clear) CtlAnswer a = {0};
    char path[128];
    Opts o;
    int r;

    r = parse(ctl, argc, argv, census, &o);
    if (r >= 0)
        return r;
    r = ctl_ready(ctl);
    if (r != 0)
        return r;
    if (!census && o.fresh && (r = fresh_census(ctl, &o)) != CTL_EXIT_OK)
        return r;
    census_path(path, sizeof(path), ctl, &o, census);
    if (ctl_get(ctl, path, o.fresh && census ? CTL_TIMEOUT_CENSUS_MS : CTL_TIMEOUT_MS, &a) !=
        CTL_EXIT_OK)
        return census_fail(&a, &o, census);
    if (ctl->json)
        return ctl_print_raw(&a);
    r = census ? census_print(ctl, a.json, &o) : growth_print(ctl, a.json, &o);
    if (r == -EBADMSG) {
        ctl_error("%s%s: the answer has no \"types\" list", ctl->url, path);
        return CTL_EXIT_DAEMON;
    }
    if (r < 0) {
        ctl_error("out of memory");
        return CTL_EXIT_DAEMON;
    }
    return CTL_EXIT_OK;
}

int cmd_objects(Ctl *ctl, int argc, char **argv)
{
    return run(ctl, argc, argv, true);
}

int cmd_growth(Ctl *ctl, int argc, char **argv)
{
    return run(ctl, argc, argv, false);
}
