/* pymemctl ls: one line per watched process. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "fmt.h"
#include "pymemd/api.h"
#include "table.h"
#include "view.h"

static const char ls_help[] =
    "Usage: pymemctl ls [--url URL] [--json] [--no-color]\n"
    "One line per process pymemd watches: pid, name, Python version, status,\n"
    "resident memory, the garbage collector's counts of generations 0, 1 and 2\n"
    "(allocations since the last collection, as gc.get_count()) and the number of\n"
    "live objects found by the last object census. A value pymemd could not read\n"
    "is shown as '-'. Below the table, one line per process whose status is not ok\n"
    "says why.\n"
    "\n"
    "      --json            print the daemon's JSON (GET " PYMEMD_PATH_PROCESSES ")\n";

static const TableCol ls_cols[] = {
    {"PID", true, 0},     {"NAME", false, 24}, {"PYTHON", false, 0},
    {"STATUS", false, 0}, {"RSS", true, 0},    {"GEN0", true, 0},
    {"GEN1", true, 0},    {"GEN2", true, 0},   {"OBJECTS", true, 0},
};

static void ls_row(Table *t, const cJSON *p)
{
    const char *name = jstr(p, "name");
    const char *version = jstr(p, "python.version");
    const char *status = jstr(p, "status");

    table_row(t);
    table_cell(t, FMT(fmt_id, jnum(p, "pid")), NULL);
    table_cell(t, name ? name : FMT_NONE, NULL);
    table_cell(t, version ? version : FMT_NONE, NULL);
    table_cell(t, status ? status : FMT_NONE, view_status_sgr(status));
    table_cell(t, FMT(fmt_bytes, jnum(p, "memory.rss_bytes")), NULL);
    for (int gen = 0; gen < 3; gen++)
        table_cell(t, FMT(fmt_count, view_gen(p, gen, "count")), NULL);
    table_cell(t, FMT(fmt_count, jnum(p, "objects.total")), NULL);
}

/* The table, then a line for each process that could not be read properly. */
static int ls_print(const Ctl *ctl, const cJSON *doc)
{
    _cleanup_(freep) const cJSON **procs = NULL;
    Table *t;
    StrBuf b = {0};
    size_t n;
    char *s;
    int r;

    r = view_processes(doc, &procs, &n);
    if (r < 0) {
        ctl_error("%s%s: %s", ctl->url, PYMEMD_PATH_PROCESSES,
                  r == -ENOMEM ? "out of memory" : "the answer has no \"processes\" list");
        return CTL_EXIT_DAEMON;
    }
    if (n == 0) {
        printf("pymemd at %s watches no Python process (yet).\n", ctl->url);
        return CTL_EXIT_OK;
    }
    t = table_new(ls_cols, ARRAY_SIZE(ls_cols));
    if (!t) {
        ctl_error("out of memory");
        return CTL_EXIT_DAEMON;
    }
    for (size_t i = 0; i < n; i++)
        ls_row(t, procs[i]);
    r = table_print(t, stdout, ctl->color, 0);
    table_free(t);
    for (size_t i = 0; i < n; i++) {
        if (view_ok(procs[i]))
            continue;
        view_problem(&b, procs[i], ctl->color);
        strbuf_puts(&b, "\n");
    }
    s = fmt_take(&b, NULL);
    if (r < 0 || !s) {
        free(s);
        ctl_error("out of memory");
        return CTL_EXIT_DAEMON;
    }
    fputs(s, stdout);
    free(s);
    return CTL_EXIT_OK;
}

int cmd_ls(Ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {CTL_COMMON_OPTIONS, {0}};
    _cleanup_(ctl_answer_clear) CtlAnswer a = {0};
    int opt, r;

    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (opt == 'h') {
            fputs(ls_help, stdout);
            return CTL_EXIT_OK;
        }
        if (opt == ':' || opt == '?')
            return ctl_option_error("ls", opt, argv);
        r = ctl_common_option(ctl, opt, optarg);
        if (r != 0)
            return r;
    }
    if (optind < argc)
        return ctl_usage_error("ls", "ls takes no arguments, but was given \"%s\"", argv[optind]);
    r = ctl_ready(ctl);
    if (r != 0)
        return r;
    if (ctl_get(ctl, PYMEMD_PATH_PROCESSES, CTL_TIMEOUT_MS, &a) != CTL_EXIT_OK)
        return ctl_fail(&a);
    return ctl->json ? ctl_print_raw(&a) : ls_print(ctl, a.json);
}
