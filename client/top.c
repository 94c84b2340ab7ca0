/* pymemctl top: a live view of every watched process, like top(1): what each holds now, how
 * that moved (over the history pymemd keeps, or since the last refresh) and a small trend.
 *
 * The screen is ncurses' (libncursesw): it knows every terminal terminfo describes, redraws
 * only what changed, and follows a resize. The terminal is handed back as it was on every way
 * out (q, Ctrl-C, SIGTERM, SIGHUP, an error) and around Ctrl-Z. With -b (batch) the same
 * frames are written as plain text, without curses, for scripts and logs. */
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"
#include "pymemd/api.h"
#include "spark.h"
#include "trend.h"
#include "util/clock.h"
#include "view.h"

static const char top_help[] =
    "Usage: pymemctl top [--interval SECONDS] [--window history|refresh]\n"
    "                    [-b [-n FRAMES]] [--url URL] [--no-color]\n"
    "A live view of every process pymemd watches, refreshed every second, largest\n"
    "resident memory first: what each holds, how that moved, and its trend.\n"
    "\n"
    "Columns (narrow terminals drop some; sizes in K M G of 1024 bytes, counts in K M\n"
    "of 1000):\n"
    "  RSS     resident memory         HEAP    pymalloc arena bytes\n"
    "  dRSS    change of RSS           dHEAP   change of HEAP\n"
    "  RSS/s   RSS per second          HEAP/s  HEAP per second\n"
    "  BLOCKS  allocated blocks (sys.getallocatedblocks()), dBLOCKS, BLK/s\n"
    "  GEN0 GEN1 GEN2  gc.get_count()  GC/s    collections per second (all gens)\n"
    "  OBJECTS live objects of the last census, and its age\n"
    "  BUSY    share of time the GC was collecting\n"
    "  TREND   RSS and HEAP over the history, as sparklines\n"
    "  COMMAND the command line, on wide terminals\n"
    "Changes and rates are over the history pymemd keeps of each process (--window\n"
    "history, the default) or since the previous refresh (--window refresh; also\n"
    "when pymemd keeps no history). '-' is a value pymemd could not read. On a UTF-8\n"
    "terminal the change columns are headed with a delta sign (\xce\x94RSS).\n"
    "\n"
    "Keys: sort by p pid, n name, r rss, g rss change, h heap, G heap change,\n"
    "c gen0 count, s gc/s, o objects, b busy; R reverses the order; w switches the\n"
    "window; space refreshes now; ? help; q (or Ctrl-C) quits.\n"
    "\n"
    "      --interval SECONDS  time between refreshes (default 1, at least 0.1);\n"
    "                          also -d SECONDS\n"
    "      --window history|refresh\n"
    "                          what changes and rates are measured over\n"
    "  -b, --batch             plain text frames on standard output, no terminal\n"
    "                          needed; every column unless $COLUMNS says a width\n"
    "  -n, --iterations N      with -b: stop after N frames (default: never)\n";

typedef enum SortKey {
    SORT_NONE,
    SORT_PID,
    SORT_NAME,
    SORT_RSS,
    SORT_DRSS,
    SORT_HEAP,
    SORT_DHEAP,
    SORT_GEN0,
    SORT_GC,
    SORT_OBJECTS,
    SORT_BUSY,
} SortKey;

typedef enum ColId {
    COL_PID,
    COL_NAME,
    COL_PYTHON,
    COL_RSS,
    COL_DRSS,
    COL_RRSS,
    COL_HEAP,
    COL_DHEAP,
    COL_RHEAP,
    COL_BLOCKS,
    COL_DBLOCKS,
    COL_RBLOCKS,
    COL_GEN0,
    COL_GEN1,
    COL_GEN2,
    COL_GC,
    COL_OBJECTS,
    COL_BUSY,
    COL_TREND,
    COL_COMMAND,
    NCOLS,
} ColId;

typedef struct TopCol {
    const char *header;    /* after a delta sign when delta */
    bool delta;            /* a change: the header starts with U+0394 (or 'd' outside UTF-8) */
    const char *sort_name; /* as shown in the summary line; NULL: not a sort key */
    SortKey key;
    char keych;
    bool right;
    size_t min; /* columns at least */
    int drop;   /* on a narrow terminal, higher numbers go first; 0 never */
} TopCol;

static const TopCol cols[NCOLS] = {
    [COL_PID] = {"PID", false, "pid", SORT_PID, 'p', true, 5, 0},
    [COL_NAME] = {"NAME", false, "name", SORT_NAME, 'n', false, 6, 0},
    [COL_PYTHON] = {"PYTHON", false, NULL, SORT_NONE, 0, false, 6, 7},
    [COL_RSS] = {"RSS", false, "rss", SORT_RSS, 'r', true, 5, 0},
    [COL_DRSS] = {"RSS", true, "rss change", SORT_DRSS, 'g', true, 5, 0},
    [COL_RRSS] = {"RSS/s", false, NULL, SORT_NONE, 0, true, 5, 4},
    [COL_HEAP] = {"HEAP", false, "heap", SORT_HEAP, 'h', true, 5, 0},
    [COL_DHEAP] = {"HEAP", true, "heap change", SORT_DHEAP, 'G', true, 5, 2},
    [COL_RHEAP] = {"HEAP/s", false, NULL, SORT_NONE, 0, true, 6, 6},
    [COL_BLOCKS] = {"BLOCKS", false, NULL, SORT_NONE, 0, true, 6, 12},
    [COL_DBLOCKS] = {"BLOCKS", true, NULL, SORT_NONE, 0, true, 6, 13},
    [COL_RBLOCKS] = {"BLK/s", false, NULL, SORT_NONE, 0, true, 5, 14},
    [COL_GEN0] = {"GEN0", false, "gen0 count", SORT_GEN0, 'c', true, 4, 9},
    [COL_GEN1] = {"GEN1", false, NULL, SORT_NONE, 0, true, 4, 11},
    [COL_GEN2] = {"GEN2", false, NULL, SORT_NONE, 0, true, 4, 11},
    [COL_GC] = {"GC/s", false, "gc/s", SORT_GC, 's', true, 4, 5},
    [COL_OBJECTS] = {"OBJECTS", false, "objects", SORT_OBJECTS, 'o', true, 7, 1},
    [COL_BUSY] = {"BUSY", false, "busy", SORT_BUSY, 'b', true, 5, 8},
    [COL_TREND] = {"TREND", false, NULL, SORT_NONE, 0, false, 9, 3},
    [COL_COMMAND] = {"COMMAND", false, NULL, SORT_NONE, 0, false, 12, 10},
};

/* NAME keeps this many columns of its text before other columns are dropped, then grows up
 * to NAME_MAX_WIDTH; then TREND up to its limit; the command line takes the rest. */
#define NAME_KEEP_WIDTH 12
#define NAME_MAX_WIDTH  20
#define TREND_MAX_WIDTH 33 /* two sparklines of 16 and the blank between them */
/* Lines above the table: title, summary, message; then the column header. */
#define HEAD_LINES 4

typedef enum Window {
    WINDOW_HISTORY, /* over the history pymemd keeps of the process */
    WINDOW_REFRESH, /* between the samples of the last two refreshes */
} Window;

typedef enum HistoryState {
    HISTORY_UNKNOWN, /* not asked yet */
    HISTORY_YES,
    HISTORY_NO, /* this pymemd predates /history */
} HistoryState;

/* What top remembers of one process between refreshes. */
typedef struct Memo {
    long pid;
    double start_time; /* with pid, who the process is: a reused pid starts afresh */
    TrendSample prev, cur;
    bool has_prev;     /* prev is a sample older than cur */
    TrendSample *hist; /* its history, oldest first; owned */
    size_t nhist;      /* NULL and 0 when not (yet) known */
    double hist_at;    /* when it was fetched, monotonic seconds */
    const cJSON *proc; /* in Top.doc; set for each refresh */
} Memo;

typedef struct Top {
    Ctl *ctl;
    double interval;
    SortKey sort;
    bool reverse;
    Window window;
    bool batch;
    long iterations; /* -n; 0: no limit */
    cJSON *doc;      /* the last good answer; owned */
    double fetched_at;
    char error[1024]; /* why the last refresh failed; "" when it did not */
    int error_code;   /* its exit code */
    Memo *memo;       /* one per process of doc, in its order; owned */
    size_t nmemo;
    HistoryState history;
    char history_error[1024]; /* the last failure of a history request, for the message line */
    size_t rows, cols;        /* terminal size; cols 0 in batch mode: no limit */
    bool help;                /* the help screen is up */
    SCREEN *screen;           /* curses' while it holds the terminal; owned */
    bool colors;              /* curses colour pairs are set up */
} Top;

/* --- signals --- */

/* Set by the handler; each also writes a byte to wake_pipe so that poll() returns. */
static volatile sig_atomic_t got_quit, got_tstp, got_cont;
static int wake_pipe[2] = {-1, -1};
/* ncurses' own SIGWINCH handler, which the one here calls before waking the loop. */
static struct sigaction curses_winch;

static void wake(void)
{
    if (wake_pipe[1] >= 0)
        (void)!write(wake_pipe[1], "", 1);
}

static void on_signal(int sig)
{
    int saved = errno;

    if (sig == SIGTSTP)
        got_tstp = 1;
    else if (sig == SIGCONT)
        got_cont = 1;
    else if (!got_quit)
        got_quit = sig;
    wake();
    errno = saved;
}

/* ncurses learns of a resize from its own handler and reports it as KEY_RESIZE from getch();
 * the loop has to wake up to ask. */
static void on_winch(int sig)
{
    int saved = errno;

    if (curses_winch.sa_handler != SIG_DFL && curses_winch.sa_handler != SIG_IGN &&
        !(curses_winch.sa_flags & SA_SIGINFO))
        curses_winch.sa_handler(sig);
    wake();
    errno = saved;
}

static bool quit_requested(void *userdata)
{
    return got_quit != 0;
}

/* Installed before curses starts: ncurses leaves alone the signals that already have a
 * handler, so quitting and Ctrl-Z go through the loop, which restores the terminal outside of
 * any signal handler. */
static void set_handlers(void (*handler)(int), bool job_control)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGCONT};
    struct sigaction sa = {.sa_handler = handler};

    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        if (job_control || (sigs[i] != SIGTSTP && sigs[i] != SIGCONT))
            sigaction(sigs[i], &sa, NULL);
}

/* --- the data --- */

static void memo_clear(Memo *m)
{
    free(m->hist);
    m->hist = NULL;
    m->nhist = 0;
}

static void memos_free(Top *t)
{
    for (size_t i = 0; i < t->nmemo; i++)
        memo_clear(&t->memo[i]);
    free(t->memo);
    t->memo = NULL;
    t->nmemo = 0;
}

static Memo *memo_of(const Top *t, const cJSON *proc)
{
    for (size_t i = 0; i < t->nmemo; i++)
        if (t->memo[i].proc == proc)
            return &t->memo[i];
    return NULL;
}

static bool same_process(const Memo *m, const cJSON *proc)
{
    Num pid = jnum(proc, "pid"), start = jnum(proc, "start_time");

    return pid.ok && pid.v == m->pid && (start.ok ? start.v : NAN) == m->start_time;
}

/* One memo per process of the new list: carried over from the last refresh for a process
 * seen before, so that its previous sample is kept. A sample equal in time to the last one
 * (the daemon has not sampled since) does not replace it, so that a change is between two
 * different samples. */
static int memos_update(Top *t, const cJSON *doc)
{
    const cJSON *list = jarray(doc, "processes"), *p;
    size_t n = (size_t)cJSON_GetArraySize(list), k = 0;
    Memo *next = calloc(n + 1, sizeof(*next));

    if (!next)
        return -ENOMEM;
    cJSON_ArrayForEach(p, list)
    {
        Memo *m = &next[k++];
        TrendSample s = trend_of_process(p);
        Num pid = jnum(p, "pid"), start = jnum(p, "start_time");

        m->pid = pid.ok ? (long)pid.v : -1;
        m->start_time = start.ok ? start.v : NAN;
        m->proc = p;
        m->cur = s;
        for (size_t i = 0; i < t->nmemo; i++) {
            Memo *old = &t->memo[i];

            if (old->pid < 0 || !same_process(old, p))
                continue;
            *m = *old;
            m->proc = p;
            if (s.t != old->cur.t) {
                m->prev = old->cur;
                m->has_prev = true;
                m->cur = s;
            }
            old->hist = NULL; /* moved */
            old->pid = -1;
            break;
        }
    }
    memos_free(t);
    t->memo = next;
    t->nmemo = k;
    return 0;
}

/* A whole history is fetched again only this often: an hour of samples is thousands of
 * entries, of which a refresh every second needs one new one, and the list brings that. */
#define HISTORY_REFETCH_SECONDS 10.0

/* Between fetches of its history, the samples the list brings extend it. */
static int memo_extend(Memo *m)
{
    TrendSample *s;

    if (m->nhist == 0 || !(m->cur.t > m->hist[m->nhist - 1].t))
        return 0;
    s = reallocarray(m->hist, m->nhist + 1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s[m->nhist++] = m->cur;
    m->hist = s;
    return 0;
}

/* Fetches one process's history into its memo. Returns CTL_EXIT_OK, or the failure's exit
 * code; a pymemd without the endpoint turns the history off for good. */
static int fetch_history(Top *t, Memo *m)
{
    char path[128];
    CtlAnswer a;
    TrendSample *s = NULL;
    size_t n = 0;
    int code;

    snprintf(path, sizeof(path), "%s/%ld/history", PYMEMD_PATH_PROCESSES, m->pid);
    code = ctl_get(t->ctl, path, CTL_TIMEOUT_MS, &a);
    if (code == CTL_EXIT_OK && trend_parse(a.json, &s, &n) == 0) {
        memo_clear(m);
        m->hist = s;
        m->nhist = n;
        m->hist_at = clock_mono();
        t->history = HISTORY_YES;
        t->history_error[0] = '\0';
    } else if (code == CTL_EXIT_OK) {
        snprintf(t->history_error, sizeof(t->history_error),
                 "%s%s: the answer has no \"samples\" list", t->ctl->url, path);
        memo_clear(m);
    } else if (a.status == 404 && strstr(a.msg, "no such path")) {
        /* A pymemd older than the history says so of the path, not of the process. */
        t->history = HISTORY_NO;
        memo_clear(m);
    } else {
        /* The process may have just gone; a daemon that went away shows in the next list. */
        snprintf(t->history_error, sizeof(t->history_error), "%s", a.msg);
        memo_clear(m);
    }
    ctl_answer_clear(&a);
    return code;
}

/* Fetches the list again, and the history of each process that can be read. Returns
 * CTL_EXIT_OK, or the exit code of the failure with its message in t->error; the last good
 * data stays on screen meanwhile. */
static int top_fetch(Top *t)
{
    CtlAnswer a;
    int code = ctl_get(t->ctl, PYMEMD_PATH_PROCESSES, CTL_TIMEOUT_MS, &a);

    if (code == CTL_EXIT_OK && jarray(a.json, "processes")) {
        if (memos_update(t, a.json) < 0) {
            code = CTL_EXIT_DAEMON;
            snprintf(t->error, sizeof(t->error), "out of memory");
        } else {
            cJSON_Delete(t->doc);
            t->doc = TAKE_PTR(a.json);
            t->fetched_at = clock_real();
            t->error[0] = '\0';
        }
    } else if (code == CTL_EXIT_OK) {
        code = CTL_EXIT_DAEMON;
        snprintf(t->error, sizeof(t->error), "%s%s: the answer has no \"processes\" list",
                 t->ctl->url, PYMEMD_PATH_PROCESSES);
    } else {
        snprintf(t->error, sizeof(t->error), "%s", a.msg);
    }
    ctl_answer_clear(&a);
    t->error_code = code;
    if (code != CTL_EXIT_OK)
        return code;
    for (size_t i = 0; i < t->nmemo && t->history != HISTORY_NO && !got_quit; i++) {
        Memo *m = &t->memo[i];

        if (!view_ok(m->proc))
            continue;
        if (m->nhist > 0 && clock_mono() - m->hist_at < HISTORY_REFETCH_SECONDS) {
            if (memo_extend(m) < 0)
                memo_clear(m); /* fetched whole next time */
            continue;
        }
        if (fetch_history(t, m) == CTL_EXIT_UNREACHABLE)
            break;
    }
    return CTL_EXIT_OK;
}

/* The window in effect: the history's when asked for and there is one. */
static Window window_of(const Top *t)
{
    return t->window == WINDOW_HISTORY && t->history != HISTORY_NO ? WINDOW_HISTORY
                                                                   : WINDOW_REFRESH;
}

static TrendChange change(const Top *t, const Memo *m, TrendField f)
{
    if (!m)
        return (TrendChange){0};
    if (window_of(t) == WINDOW_HISTORY)
        return trend_over(m->hist, m->nhist, f);
    return m->has_prev ? trend_between(&m->prev, &m->cur, f) : (TrendChange){0};
}

/* --- sorting --- */

static Num sort_value(const Top *t, SortKey k, const cJSON *p)
{
    switch (k) {
    case SORT_PID:
        return jnum(p, "pid");
    case SORT_RSS:
        return jnum(p, "memory.rss_bytes");
    case SORT_DRSS:
        return change(t, memo_of(t, p), TREND_RSS).delta;
    case SORT_HEAP:
        return jnum(p, "pymalloc.arena_bytes");
    case SORT_DHEAP:
        return change(t, memo_of(t, p), TREND_HEAP).delta;
    case SORT_GEN0:
        return view_gen(p, 0, "count");
    case SORT_GC:
        return change(t, memo_of(t, p), TREND_GC).rate;
    case SORT_OBJECTS:
        return jnum(p, "objects.total");
    case SORT_BUSY:
        return jnum(p, "gc.busy_ratio_estimate");
    default:
        return (Num){0};
    }
}

static int cmp_procs(const void *pa, const void *pb, void *userdata)
{
    const Top *t = userdata;
    const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
    SortKey k = t->sort;
    Num na = sort_value(t, k, a), nb = sort_value(t, k, b);
    int c;

    /* Processes that cannot be read, and values that are unknown, stay at the bottom
     * whichever way the order goes. */
    if (view_ok(a) != view_ok(b))
        return view_ok(a) ? -1 : 1;
    if (k == SORT_NAME) {
        const char *sa = jstr(a, "name"), *sb = jstr(b, "name");
        c = strcmp(sa ? sa : "\x7f", sb ? sb : "\x7f");
    } else if (na.ok != nb.ok) {
        return na.ok ? -1 : 1;
    } else {
        c = (na.v > nb.v) - (na.v < nb.v);
        if (k != SORT_PID)
            c = -c; /* the largest first: that is what one looks for */
    }
    if (t->reverse)
        c = -c;
    if (c == 0) {
        Num pa_ = jnum(a, "pid"), pb_ = jnum(b, "pid");
        c = (pa_.v > pb_.v) - (pa_.v < pb_.v);
    }
    return c;
}

/* --- cells --- */

typedef struct Layout {
    bool show[NCOLS];
    size_t width[NCOLS];
} Layout;

static const char *col_header(char *buf, ColId c)
{
    snprintf(buf, FMT_MAX, "%s%s", cols[c].delta ? (fmt_utf8() ? "\xce\x94" : "d") : "",
             cols[c].header);
    return buf;
}

/* The series of field f of a history, for a sparkline; NULL when there is none. */
static Num *series(const Memo *m, TrendField f)
{
    Num *v = m && m->nhist ? calloc(m->nhist, sizeof(*v)) : NULL;

    for (size_t i = 0; v && i < m->nhist; i++)
        v[i] = m->hist[i].f[f];
    return v;
}

static bool any_known(const Memo *m, TrendField f)
{
    for (size_t i = 0; m && i < m->nhist; i++)
        if (m->hist[i].f[f].ok)
            return true;
    return false;
}

/* RSS and heap side by side in width columns; the heap is the arena bytes where they can be
 * read, the allocated blocks otherwise (the system's static Python hides its arenas). */
static void trend_cell(StrBuf *b, const Memo *m, size_t width)
{
    size_t half = width > 1 ? (width - 1) / 2 : 0;
    TrendField heap = any_known(m, TREND_HEAP) ? TREND_HEAP : TREND_BLOCKS;
    Num *rss = series(m, TREND_RSS), *hp = series(m, heap);

    if (!rss || !hp || half == 0) {
        strbuf_puts(b, FMT_NONE);
    } else {
        spark_append(b, rss, m->nhist, half, fmt_utf8());
        strbuf_puts(b, " ");
        spark_append(b, hp, m->nhist, width - 1 - half, fmt_utf8());
    }
    free(rss);
    free(hp);
}

/* The text of one cell, cleaned for the terminal, appended to b. width is the column's, for
 * the trend, which fills it. */
static void cell_text(const Top *t, StrBuf *b, ColId c, const cJSON *p, size_t width)
{
    const Memo *m = memo_of(t, p);
    const char *s;

    switch (c) {
    case COL_PID:
        strbuf_puts(b, FMT(fmt_id, jnum(p, "pid")));
        return;
    case COL_NAME:
        s = jstr(p, "name");
        fmt_clean(b, s ? s : FMT_NONE);
        return;
    case COL_PYTHON:
        s = jstr(p, "python.version");
        fmt_clean(b, s ? s : FMT_NONE);
        return;
    case COL_RSS:
        strbuf_puts(b, FMT(fmt_short, jnum(p, "memory.rss_bytes"), 1024, false));
        return;
    case COL_DRSS:
        strbuf_puts(b, FMT(fmt_short, change(t, m, TREND_RSS).delta, 1024, true));
        return;
    case COL_RRSS:
        strbuf_puts(b, FMT(fmt_short, change(t, m, TREND_RSS).rate, 1024, true));
        return;
    case COL_HEAP:
        strbuf_puts(b, FMT(fmt_short, jnum(p, "pymalloc.arena_bytes"), 1024, false));
        return;
    case COL_DHEAP:
        strbuf_puts(b, FMT(fmt_short, change(t, m, TREND_HEAP).delta, 1024, true));
        return;
    case COL_RHEAP:
        strbuf_puts(b, FMT(fmt_short, change(t, m, TREND_HEAP).rate, 1024, true));
        return;
    case COL_BLOCKS:
        strbuf_puts(b, FMT(fmt_short, jnum(p, "pymalloc.allocated_blocks"), 1000, false));
        return;
    case COL_DBLOCKS:
        strbuf_puts(b, FMT(fmt_short, change(t, m, TREND_BLOCKS).delta, 1000, true));
        return;
    case COL_RBLOCKS:
        strbuf_puts(b, FMT(fmt_short, change(t, m, TREND_BLOCKS).rate, 1000, true));
        return;
    case COL_GEN0:
    case COL_GEN1:
    case COL_GEN2:
        strbuf_puts(b, FMT(fmt_short, view_gen(p, (int)(c - COL_GEN0), "count"), 1000, false));
        return;
    case COL_GC:
        strbuf_puts(b, FMT(fmt_rate, change(t, m, TREND_GC).rate));
        return;
    case COL_OBJECTS:
        strbuf_puts(b, FMT(fmt_short, jnum(p, "objects.total"), 1000, false));
        if (jnum(p, "objects.at").ok)
            strbuf_printf(b, " (%s)", FMT(fmt_ago, jnum(p, "objects.at")));
        return;
    case COL_BUSY:
        strbuf_puts(b, FMT(fmt_percent, jnum(p, "gc.busy_ratio_estimate")));
        return;
    case COL_TREND:
        trend_cell(b, m, width);
        return;
    case COL_COMMAND:
        s = jstr(p, "cmdline");
        fmt_clean(b, s ? s : FMT_NONE);
        return;
    case NCOLS:
        break;
    }
}

static size_t cell_width(const Top *t, ColId c, const cJSON *p)
{
    StrBuf b = {0};
    size_t w;
    char *s;

    cell_text(t, &b, c, p, cols[COL_TREND].min);
    s = fmt_take(&b, NULL);
    w = s ? fmt_width(s) : 0;
    free(s);
    return w;
}

static size_t layout_total(const Layout *l)
{
    size_t sum = 0, n = 0;

    for (int c = 0; c < NCOLS; c++) {
        if (l->show[c]) {
            sum += l->width[c];
            n++;
        }
    }
    return sum + (n ? n - 1 : 0); /* one blank between columns */
}

/* Column widths from the contents, then columns dropped by priority until the table fits the
 * terminal; what is left goes to NAME up to its limit, to TREND up to its, and to the command
 * line. Without a width (batch mode), every column at its full width. */
static void layout(const Top *t, const cJSON **procs, size_t n, Layout *l)
{
    size_t want_name = 0, room;

    *l = (Layout){0};
    for (int c = 0; c < NCOLS; c++) {
        char h[FMT_MAX];

        l->show[c] = true;
        l->width[c] = MAX(cols[c].min, fmt_width(col_header(h, (ColId)c)));
        for (size_t i = 0; i < n && c != COL_NAME && c != COL_COMMAND && c != COL_TREND; i++)
            if (view_ok(procs[i]))
                l->width[c] = MAX(l->width[c], cell_width(t, (ColId)c, procs[i]));
    }
    for (size_t i = 0; i < n; i++)
        want_name = MAX(want_name, cell_width(t, COL_NAME, procs[i]));
    l->width[COL_NAME] = MAX(l->width[COL_NAME], MIN(want_name, NAME_KEEP_WIDTH));
    if (t->cols == 0) {
        size_t want_cmd = 0;

        for (size_t i = 0; i < n; i++)
            want_cmd = MAX(want_cmd, cell_width(t, COL_COMMAND, procs[i]));
        l->width[COL_NAME] = MAX(l->width[COL_NAME], want_name);
        l->width[COL_TREND] = TREND_MAX_WIDTH;
        l->width[COL_COMMAND] = MAX(l->width[COL_COMMAND], want_cmd);
        return;
    }
    for (int drop = 20; drop > 0 && layout_total(l) > t->cols; drop--)
        for (int c = 0; c < NCOLS; c++)
            if (cols[c].drop == drop)
                l->show[c] = false;
    room = t->cols > layout_total(l) ? t->cols - layout_total(l) : 0;
    want_name = MIN(want_name, NAME_MAX_WIDTH);
    if (want_name > l->width[COL_NAME]) {
        size_t more = MIN(want_name - l->width[COL_NAME], room);
        l->width[COL_NAME] += more;
        room -= more;
    }
    if (l->show[COL_TREND] && t->history == HISTORY_YES) {
        size_t more = MIN(TREND_MAX_WIDTH - l->width[COL_TREND], room);
        l->width[COL_TREND] += more;
        room -= more;
    }
    if (l->show[COL_COMMAND])
        l->width[COL_COMMAND] += room;
}

/* --- drawing --- */

/* What a frame is written to: the curses screen, or a buffer of plain text (batch mode). */
typedef struct Out {
    Top *t;
    StrBuf b;    /* batch mode: the frame */
    size_t line; /* lines begun */
} Out;

enum { PAIR_RED = 1, PAIR_GREEN, PAIR_YELLOW };

static attr_t sgr_attr(const Top *t, const char *sgr)
{
    if (!sgr || !t->colors)
        return A_NORMAL;
    if (strcmp(sgr, SGR_RED) == 0)
        return COLOR_PAIR(PAIR_RED);
    if (strcmp(sgr, SGR_GREEN) == 0)
        return COLOR_PAIR(PAIR_GREEN);
    if (strcmp(sgr, SGR_YELLOW) == 0)
        return COLOR_PAIR(PAIR_YELLOW);
    return A_NORMAL;
}

/* Text that is already clean and fits. */
static void put(Out *o, const char *text, attr_t attr)
{
    if (o->t->batch) {
        strbuf_puts(&o->b, text);
        return;
    }
    if (o->line >= o->t->rows)
        return;
    attrset(attr);
    addstr(text);
    attrset(A_NORMAL);
}

static void end_line(Out *o)
{
    if (o->t->batch) {
        /* Padding is for the columns to its right; a line of text ends with its last word. */
        while (o->b.len > 0 && o->b.s[o->b.len - 1] == ' ')
            o->b.len--;
        strbuf_puts(&o->b, "\n");
    }
    o->line++;
    if (!o->t->batch && o->line < o->t->rows)
        move((int)o->line, 0);
}

/* A whole line of free text, cut to the width. */
static void text_line(Out *o, const char *text, attr_t attr)
{
    StrBuf clean = {0}, fit = {0};
    char *c, *s;
    size_t w;

    fmt_clean(&clean, text);
    c = fmt_take(&clean, NULL);
    w = fmt_width(c ? c : "");
    if (o->t->cols)
        w = MIN(w, o->t->cols);
    fmt_fit(&fit, c ? c : "", w, true);
    s = fmt_take(&fit, NULL);
    put(o, s ? s : "", attr);
    free(c);
    free(s);
    end_line(o);
}

static const char *sort_name(SortKey k)
{
    for (int c = 0; c < NCOLS; c++)
        if (cols[c].key == k && cols[c].sort_name)
            return cols[c].sort_name;
    return "?";
}

/* "12 s", "5 min", "1.5 h": the length of a window. */
static const char *span_text(char *buf, double s)
{
    if (s < 120)
        snprintf(buf, FMT_MAX, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, FMT_MAX, "%.0f min", s / 60);
    else
        snprintf(buf, FMT_MAX, "%.1f h", s / 3600);
    return buf;
}

/* The one line of advice or trouble under the summary: what failed, else what is missing
 * and the command that gets it. */
static void message(const Top *t, const cJSON **procs, size_t n, char *line, size_t size,
                    attr_t *ret_attr)
{
    size_t no_census = 0;
    long first = 0;

    *ret_attr = A_NORMAL;
    line[0] = '\0';
    if (t->error[0]) {
        snprintf(line, size, "%s (data of %s)", t->error,
                 FMT(fmt_clock, ((Num){.ok = t->doc != NULL, .v = t->fetched_at})));
        *ret_attr = t->colors ? COLOR_PAIR(PAIR_RED) : A_BOLD;
        return;
    }
    if (t->window == WINDOW_HISTORY && t->history == HISTORY_NO) {
        snprintf(line, size,
                 "the trend needs a newer pymemd: %s has no %s/PID/history; changes are since "
                 "the last refresh",
                 t->ctl->url, PYMEMD_PATH_PROCESSES);
        return;
    }
    if (t->history_error[0]) {
        snprintf(line, size, "history: %s", t->history_error);
        *ret_attr = t->colors ? COLOR_PAIR(PAIR_YELLOW) : A_NORMAL;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (view_ok(procs[i]) && !jnum(procs[i], "objects.total").ok) {
            if (no_census++ == 0)
                first = (long)jnum(procs[i], "pid").v;
        }
    }
    if (no_census == 1) {
        snprintf(line, size,
                 "no object census of pid %ld yet: 'pymemctl objects --fresh %ld' takes one", first,
                 first);
        return;
    }
    if (no_census > 1) {
        snprintf(line, size,
                 "no object census of %zu processes yet: 'pymemctl objects --fresh PID' takes one",
                 no_census);
        return;
    }
    if (window_of(t) == WINDOW_REFRESH && n > 0 && t->nmemo > 0 && !t->memo[0].has_prev)
        snprintf(line, size, "changes since the last refresh show from the next refresh on");
}

static void draw_head(Out *o, const cJSON **procs, size_t n)
{
    const Top *t = o->t;
    Num rss = {0}, objects = {0};
    double span = 0;
    size_t ok = 0;
    char line[2048], win[128];
    attr_t attr;

    /* Sums over what is known; "-" when nothing is (no census anywhere yet). */
    for (size_t i = 0; i < n; i++) {
        Num r = jnum(procs[i], "memory.rss_bytes"), ob = jnum(procs[i], "objects.total");
        ok += view_ok(procs[i]);
        rss = r.ok ? (Num){.ok = true, .v = rss.v + r.v} : rss;
        objects = ob.ok ? (Num){.ok = true, .v = objects.v + ob.v} : objects;
        span = fmax(span, change(t, memo_of(t, procs[i]), TREND_RSS).span);
    }
    if (window_of(t) == WINDOW_HISTORY)
        snprintf(win, sizeof(win), "%s: %s%s", fmt_utf8() ? "\xce\x94" : "d",
                 span > 0 ? FMT(span_text, span) : "no history yet", span > 0 ? " of history" : "");
    else
        snprintf(win, sizeof(win), "%s: since last refresh", fmt_utf8() ? "\xce\x94" : "d");
    snprintf(line, sizeof(line), "pymemctl top - %s - %s, every %g s; %s", t->ctl->url,
             FMT(fmt_clock, ((Num){.ok = true, .v = clock_real()})), t->interval, win);
    text_line(o, line, A_BOLD);
    snprintf(line, sizeof(line), "%zu processes, %zu ok; rss %s, objects %s; sort: %s%s", n, ok,
             FMT(fmt_bytes, rss), FMT(fmt_count, objects), sort_name(t->sort),
             t->reverse ? " (reversed)" : "");
    text_line(o, line, A_NORMAL);
    message(t, procs, n, line, sizeof(line), &attr);
    text_line(o, line, attr);
}

static void draw_header(Out *o, const Layout *l)
{
    const Top *t = o->t;
    bool first = true;

    for (int c = 0; c < NCOLS; c++) {
        StrBuf cell = {0};
        char *s, h[FMT_MAX];

        if (!l->show[c])
            continue;
        if (!first)
            put(o, " ", A_REVERSE);
        first = false;
        fmt_fit(&cell, col_header(h, (ColId)c), l->width[c], !cols[c].right);
        s = fmt_take(&cell, NULL);
        /* The sort column stands out; the rest of the header is in reverse video. */
        put(o, s ? s : "", cols[c].key == t->sort ? A_REVERSE | A_BOLD | A_UNDERLINE : A_REVERSE);
        free(s);
    }
    end_line(o);
}

/* A process that cannot be read gets its status and reason where the numbers would be. */
static void draw_problem(Out *o, const cJSON *p, size_t w)
{
    const char *status = jstr(p, "status"), *error = jstr(p, "error");
    StrBuf text = {0}, fit = {0};
    size_t room;
    char *c, *s;

    put(o, " ", A_NORMAL);
    fmt_clean(&text, status ? status : "unknown status");
    if (error) {
        strbuf_puts(&text, ": ");
        fmt_clean(&text, error);
    }
    c = fmt_take(&text, NULL);
    room = fmt_width(c ? c : "");
    if (o->t->cols)
        room = MIN(room, o->t->cols > w + 1 ? o->t->cols - w - 1 : 0);
    fmt_fit(&fit, c ? c : "", room, true);
    s = fmt_take(&fit, NULL);
    put(o, s ? s : "", sgr_attr(o->t, view_status_sgr(status)));
    free(c);
    free(s);
}

static void draw_row(Out *o, const Layout *l, const cJSON *p)
{
    bool ok = view_ok(p);
    size_t w = 0;

    for (int c = 0; c < NCOLS; c++) {
        StrBuf cell = {0}, fit = {0};
        char *s;

        if (!l->show[c])
            continue;
        if (!ok && c > COL_NAME) {
            draw_problem(o, p, w);
            break;
        }
        if (w)
            put(o, " ", A_NORMAL);
        cell_text(o->t, &cell, (ColId)c, p, l->width[c]);
        s = fmt_take(&cell, NULL);
        fmt_fit(&fit, s ? s : "", l->width[c], !cols[c].right);
        free(s);
        s = fmt_take(&fit, NULL);
        put(o, s ? s : "", A_NORMAL);
        free(s);
        w += l->width[c] + (w ? 1 : 0);
    }
    end_line(o);
}

static void draw_rows(Out *o, const Layout *l, const cJSON **procs, size_t n)
{
    size_t room = o->t->batch ? n + 1 : o->t->rows - o->line - 1; /* the footer's line */
    char more[64];

    if (n == 0) {
        text_line(o,
                  "pymemd watches no Python process (yet): 'pymemctl ls' shows what it sees; "
                  "pymemd --match REGEX or --pid PID chooses",
                  A_NORMAL);
        return;
    }
    for (size_t i = 0; i < n && room > 0; i++, room--) {
        if (room == 1 && i + 1 < n) {
            snprintf(more, sizeof(more), "... %zu more", n - i);
            text_line(o, more, A_DIM);
            return;
        }
        draw_row(o, l, procs[i]);
    }
}

static const char *const help_lines[] = {
    "pymemctl top: keys",
    "",
    "  p n r h c o b   sort by pid, name, rss, heap, gen0 count, objects, busy",
    "  g G s           sort by rss change, heap change, gc collections per second",
    "  R               reverse the order",
    "  w               changes over the history / since the last refresh",
    "  space           refresh now;  Ctrl-L  redraw",
    "  q  Ctrl-C       quit;  Ctrl-Z  suspend",
    "",
    "Sizes are in K M G of 1024 bytes, counts in K M of 1000. A '-' is a value",
    "pymemd could not read, or a change not known yet. TREND: RSS, then HEAP",
    "(arena bytes, or allocated blocks), over the history pymemd keeps.",
    "OBJECTS: the last census's count and age; 'pymemctl objects --fresh PID'",
    "takes one now. 'pymemctl show PID' shows everything known of a process.",
    "",
    "Any key goes back.",
};

static void draw_help(Out *o)
{
    for (size_t i = 0; i < ARRAY_SIZE(help_lines) && o->line + 1 < o->t->rows; i++)
        text_line(o, help_lines[i], i == 0 ? A_BOLD : A_NORMAL);
}

/* Draws a frame: on the screen, or to standard output in batch mode. Returns false when the
 * output is gone. */
static bool draw(Top *t)
{
    _cleanup_(freep) const cJSON **procs = NULL;
    Out o = {.t = t};
    Layout l;
    size_t n = 0;

    if (t->doc && view_processes(t->doc, &procs, &n) < 0)
        n = 0;
    if (n > 1)
        qsort_r(procs, n, sizeof(*procs), cmp_procs, t);
    if (!t->batch) {
        getmaxyx(stdscr, t->rows, t->cols);
        erase();
        move(0, 0);
    }
    if (!t->batch && t->help) {
        draw_help(&o);
    } else if (!t->batch && (t->rows < HEAD_LINES + 3 || t->cols < 40)) {
        text_line(&o, "terminal too small for pymemctl top", A_NORMAL);
    } else {
        layout(t, procs, n, &l);
        draw_head(&o, procs, n);
        draw_header(&o, &l);
        draw_rows(&o, &l, procs, n);
        if (!t->batch) {
            move((int)t->rows - 1, 0);
            o.line = t->rows - 1;
            text_line(&o, "q quit  ? help  sort: p r g h G c s o b n  R reverse  w window", A_DIM);
        }
    }
    if (t->batch) {
        size_t len;
        char *s = fmt_take(&o.b, &len);
        bool ok = s && fwrite(s, 1, len, stdout) == len && fflush(stdout) == 0;
        free(s);
        return ok;
    }
    refresh();
    return true;
}

/* --- the loop --- */

static void set_sort(Top *t, int k)
{
    for (int c = 0; c < NCOLS; c++) {
        if (cols[c].keych && cols[c].keych == k) {
            t->reverse = t->sort == cols[c].key ? t->reverse : false;
            t->sort = cols[c].key;
        }
    }
}

/* Handles one key; returns true when the view should redraw, and sets *quit or
 * *refresh_now. */
static bool key(Top *t, int k, bool *quit, bool *refresh_now)
{
    if (k == KEY_RESIZE)
        return true;
    if (t->help) {
        t->help = false; /* any key closes the help */
        return true;
    }
    switch (k) {
    case 'q':
    case 'Q':
        *quit = true;
        return false;
    case '?':
        t->help = true;
        return true;
    case 'R':
        t->reverse = !t->reverse;
        return true;
    case 'w':
        t->window = t->window == WINDOW_HISTORY ? WINDOW_REFRESH : WINDOW_HISTORY;
        return true;
    case ' ':
        *refresh_now = true;
        return false;
    case '\f': /* Ctrl-L */
        clearok(curscr, TRUE);
        return true;
    default:
        set_sort(t, k);
        return true;
    }
}

/* Ctrl-Z: give the terminal back as it was, stop, and take it again when continued. */
static void suspend(Top *t)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};

    endwin();
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGTSTP, &dfl, NULL);
    raise(SIGTSTP);
    /* Continued (or never stopped: the kernel drops the signal in an orphaned process group,
     * which has no shell to continue it). */
    set_handlers(on_signal, true);
    got_tstp = got_cont = 0;
    clearok(curscr, TRUE);
}

static int loop(Top *t)
{
    double next = clock_mono() + t->interval;
    bool quit = false;
    int idle_wakes = 0;

    if (!draw(t))
        return CTL_EXIT_OK;
    while (!quit && !got_quit) {
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = wake_pipe[0], .events = POLLIN}};
        double wait = next - clock_mono();
        bool redraw = false, refresh_now = false, any = false;
        char drain[64];
        int k;

        if (poll(fds, 2, wait > 0 ? (int)ceil(wait * 1000) : 0) < 0 && errno != EINTR)
            return CTL_EXIT_DAEMON;
        if (fds[1].revents & POLLIN)
            while (read(wake_pipe[0], drain, sizeof(drain)) > 0)
                ;
        if (got_quit)
            break;
        if (fds[0].revents & (POLLHUP | POLLERR))
            break; /* the terminal went away */
        /* getch() also reports a resize (KEY_RESIZE) that ncurses' handler noted. */
        while (!quit && (k = getch()) != ERR) {
            any = true;
            redraw |= key(t, k, &quit, &refresh_now);
        }
        /* Readable, yet no key three times over: the terminal is at its end. */
        idle_wakes = (fds[0].revents & POLLIN) && !any ? idle_wakes + 1 : 0;
        if (quit || idle_wakes >= 3)
            break;
        if (got_tstp) {
            suspend(t);
            redraw = true;
        }
        if (got_cont) {
            /* Continued after a stop that was not ours (SIGSTOP): the shell may have set the
             * terminal back meanwhile, so take it again and paint it whole. */
            got_cont = 0;
            reset_prog_mode();
            clearok(curscr, TRUE);
            redraw = true;
        }
        if (refresh_now || clock_mono() >= next) {
            top_fetch(t);
            next = clock_mono() + t->interval;
            redraw = true;
        }
        if (redraw && !draw(t))
            break;
    }
    return CTL_EXIT_OK;
}

/* Batch mode: a frame per refresh, until -n frames or a failure. */
static int batch(Top *t)
{
    for (long i = 0; !got_quit; i++) {
        double next = clock_mono() + t->interval, wait;

        if (i > 0) {
            int r = top_fetch(t);
            if (r != CTL_EXIT_OK) {
                ctl_error("%s", t->error);
                return r;
            }
            fputs("\n", stdout);
        }
        if (!draw(t))
            return CTL_EXIT_DAEMON; /* main() says why */
        if (t->iterations && i + 1 >= t->iterations)
            break;
        while (!got_quit && (wait = next - clock_mono()) > 0) {
            struct pollfd fd = {.fd = wake_pipe[0], .events = POLLIN};
            poll(&fd, 1, (int)ceil(wait * 1000));
        }
    }
    return got_quit && got_quit != SIGINT ? 128 + got_quit : CTL_EXIT_OK;
}

static int parse(Top *t, int argc, char **argv)
{
    enum { OPT_INTERVAL = OPT_FIRST_COMMAND_OPTION, OPT_WINDOW };
    static const struct option options[] = {
        CTL_COMMON_OPTIONS,
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"batch", no_argument, NULL, 'b'},
        {"iterations", required_argument, NULL, 'n'},
        {0},
    };
    char *end;
    int opt, r;

    while ((opt = getopt_long(argc, argv, ":hbd:n:", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(top_help, stdout);
            return CTL_EXIT_OK;
        case 'd':
        case OPT_INTERVAL:
            errno = 0;
            t->interval = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(t->interval >= 0.1 && t->interval <= 3600))
                return ctl_usage_error("top",
                                       "--interval wants seconds from 0.1 to 3600, not "
                                       "\"%s\"",
                                       optarg);
            break;
        case OPT_WINDOW:
            if (strcmp(optarg, "history") == 0)
                t->window = WINDOW_HISTORY;
            else if (strcmp(optarg, "refresh") == 0)
                t->window = WINDOW_REFRESH;
            else
                return ctl_usage_error("top", "--window is history or refresh, not \"%s\"", optarg);
            break;
        case 'b':
            t->batch = true;
            break;
        case 'n':
            if (ctl_parse_count(optarg, &t->iterations) < 0 || t->iterations == 0)
                return ctl_usage_error("top", "-n wants a number of frames from 1, not \"%s\"",
                                       optarg);
            break;
        case ':':
        case '?':
            return ctl_option_error("top", opt, argv);
        default:
            r = ctl_common_option(t->ctl, opt, optarg);
            if (r != 0)
                return r;
        }
    }
    if (optind < argc)
        return ctl_usage_error("top", "top takes no arguments, but was given \"%s\"", argv[optind]);
    if (t->ctl->json)
        return ctl_usage_error("top", "top has no --json: 'pymemctl ls --json' prints the "
                                      "same data once");
    if (t->iterations && !t->batch)
        return ctl_usage_error("top", "-n counts the frames of batch mode: add -b");
    if (!t->batch && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)))
        return ctl_usage_error("top", "top needs a terminal; 'pymemctl top -b -n 1' prints a "
                                      "frame as text, 'pymemctl ls' the list");
    return -1;
}

/* Batch mode's width: $COLUMNS when it is set, else no limit (a file or a pipe). */
static size_t batch_width(void)
{
    const char *c = getenv("COLUMNS");
    long w;

    if (c && ctl_parse_count(c, &w) == 0 && w >= 40)
        return (size_t)w;
    return 0;
}

/* Takes the terminal: ncurses on standard input and output, keys one by one without echo,
 * no cursor, the colours when wanted. Returns 0 or -errno after saying why. */
static int screen_enter(Top *t)
{
    struct sigaction sa = {.sa_handler = on_winch};
    SCREEN *s = newterm(NULL, stdout, stdin);

    if (!s) {
        const char *term = getenv("TERM");
        ctl_error("cannot use the terminal (TERM=%s): ncurses knows no such terminal; "
                  "'pymemctl top -b' writes plain text",
                  term ? term : "");
        return -ENOTTY;
    }
    t->screen = s;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    if (t->ctl->color && has_colors() && start_color() == OK) {
        use_default_colors();
        init_pair(PAIR_RED, COLOR_RED, -1);
        init_pair(PAIR_GREEN, COLOR_GREEN, -1);
        init_pair(PAIR_YELLOW, COLOR_YELLOW, -1);
        t->colors = true;
    }
    /* ncurses installed its SIGWINCH handler in newterm(); the one here calls it, then wakes
     * the loop. */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, &curses_winch);
    return 0;
}

/* Everything that needs undoing, undone; the order matters: the screen before the handlers,
 * so that a signal arriving meanwhile still finds the terminal restored. */
static void top_done(Top *t)
{
    if (t->screen) {
        endwin();
        delscreen(t->screen);
        t->screen = NULL;
    }
    set_handlers(SIG_DFL, true);
    signal(SIGWINCH, SIG_DFL);
    http_set_abort(t->ctl->http, NULL, NULL);
    for (int i = 0; i < 2; i++) {
        if (wake_pipe[i] >= 0)
            close(wake_pipe[i]);
        wake_pipe[i] = -1;
    }
    cJSON_Delete(t->doc);
    t->doc = NULL;
    memos_free(t);
}

int cmd_top(Ctl *ctl, int argc, char **argv)
{
    Top t = {.ctl = ctl, .interval = 1.0, .sort = SORT_RSS, .window = WINDOW_HISTORY};
    int r, sig;

    r = parse(&t, argc, argv);
    if (r >= 0)
        return r;
    r = ctl_ready(ctl);
    if (r != 0)
        return r;
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        ctl_error("cannot set up: %s", strerror(errno));
        return CTL_EXIT_DAEMON;
    }
    got_quit = got_tstp = got_cont = 0;
    /* Batch mode stops and continues as any program does. */
    set_handlers(on_signal, !t.batch);
    http_set_abort(ctl->http, quit_requested, NULL);
    /* A wrong URL is said plainly, before the screen is taken over. */
    r = top_fetch(&t);
    if (r != CTL_EXIT_OK) {
        if (!got_quit)
            ctl_error("%s", t.error);
        top_done(&t);
        return got_quit && got_quit != SIGINT ? 128 + got_quit : r;
    }
    if (t.batch) {
        t.cols = batch_width();
        r = batch(&t);
        top_done(&t);
        return r;
    }
    r = screen_enter(&t);
    if (r < 0) {
        top_done(&t);
        return CTL_EXIT_DAEMON;
    }
    r = loop(&t);
    sig = got_quit;
    top_done(&t);
    /* The screen is gone with what it said: a daemon that stopped answering is worth a line
     * that stays. */
    if (t.error[0])
        ctl_error("when top ended: %s", t.error);
    /* Ctrl-C is the ordinary way out, like q; being told to stop by SIGTERM or a hang-up is
     * reported the way a shell expects of a process that died of it. */
    if (sig && sig != SIGINT)
        return 128 + sig;
    return r;
}
