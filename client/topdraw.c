/* topdraw: pymemctl top's frames: the order of the rows, the columns that fit, the cells, and
 * the lines around them, drawn with curses or written as text (batch mode). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "pymemd/api.h"
#include "spark.h"
#include "top.h"
#include "util/clock.h"
#include "view.h"

const TopCol topdraw_cols[NCOLS] = {
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

/* --- sorting --- */

static Num sort_value(const Top *t, SortKey k, const cJSON *p)
{
    switch (k) {
    case SORT_PID:
        return jnum(p, "pid");
    case SORT_RSS:
        return jnum(p, "memory.rss_bytes");
    case SORT_DRSS:
        return topdata_change(t, topdata_memo(t, p), TREND_RSS).delta;
    case SORT_HEAP:
        return jnum(p, "pymalloc.arena_bytes");
    case SORT_DHEAP:
        return topdata_change(t, topdata_memo(t, p), TREND_HEAP).delta;
    case SORT_GEN0:
        return view_gen(p, 0, "count");
    case SORT_GC:
        return topdata_change(t, topdata_memo(t, p), TREND_GC).rate;
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
    snprintf(buf, FMT_MAX, "%s%s", topdraw_cols[c].delta ? (fmt_utf8() ? "\xce\x94" : "d") : "",
             topdraw_cols[c].header);
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
    const Memo *m = topdata_memo(t, p);
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
        strbuf_puts(b, FMT(fmt_short, topdata_change(t, m, TREND_RSS).delta, 1024, true));
        return;
    case COL_RRSS:
        strbuf_puts(b, FMT(fmt_short, topdata_change(t, m, TREND_RSS).rate, 1024, true));
        return;
    case COL_HEAP:
        strbuf_puts(b, FMT(fmt_short, jnum(p, "pymalloc.arena_bytes"), 1024, false));
        return;
    case COL_DHEAP:
        strbuf_puts(b, FMT(fmt_short, topdata_change(t, m, TREND_HEAP).delta, 1024, true));
        return;
    case COL_RHEAP:
        strbuf_puts(b, FMT(fmt_short, topdata_change(t, m, TREND_HEAP).rate, 1024, true));
        return;
    case COL_BLOCKS:
        strbuf_puts(b, FMT(fmt_short, jnum(p, "pymalloc.allocated_blocks"), 1000, false));
        return;
    case COL_DBLOCKS:
        strbuf_puts(b, FMT(fmt_short, topdata_change(t, m, TREND_BLOCKS).delta, 1000, true));
        return;
    case COL_RBLOCKS:
        strbuf_puts(b, FMT(fmt_short, topdata_change(t, m, TREND_BLOCKS).rate, 1000, true));
        return;
    case COL_GEN0:
    case COL_GEN1:
    case COL_GEN2:
        strbuf_puts(b, FMT(fmt_short, view_gen(p, (int)(c - COL_GEN0), "count"), 1000, false));
        return;
    case COL_GC:
        strbuf_puts(b, FMT(fmt_rate, topdata_change(t, m, TREND_GC).rate));
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

    cell_text(t, &b, c, p, topdraw_cols[COL_TREND].min);
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
        l->width[c] = MAX(topdraw_cols[c].min, fmt_width(col_header(h, (ColId)c)));
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
            if (topdraw_cols[c].drop == drop)
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
        if (topdraw_cols[c].key == k && topdraw_cols[c].sort_name)
            return topdraw_cols[c].sort_name;
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

/* True when no process that can be read has two samples in its history. */
static bool no_history(const Top *t, const cJSON **procs, size_t n)
{
    size_t ok = 0;

    for (size_t i = 0; i < n; i++) {
        const Memo *m = topdata_memo(t, procs[i]);

        if (!view_ok(procs[i]))
            continue;
        ok++;
        if (m && m->nhist >= 2)
            return false;
    }
    return ok > 0;
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
    if (topdata_window(t) == WINDOW_HISTORY && no_history(t, procs, n)) {
        snprintf(line, size,
                 "no history yet (pymemd adds a sample each interval; none with history = 0): "
                 "key w or --window refresh shows changes since the last refresh");
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
    if (topdata_window(t) == WINDOW_REFRESH && n > 0 && t->nmemo > 0 && !t->memo[0].has_prev)
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
        span = fmax(span, topdata_change(t, topdata_memo(t, procs[i]), TREND_RSS).span);
    }
    if (topdata_window(t) == WINDOW_HISTORY)
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
        fmt_fit(&cell, col_header(h, (ColId)c), l->width[c], !topdraw_cols[c].right);
        s = fmt_take(&cell, NULL);
        /* The sort column stands out; the rest of the header is in reverse video. */
        put(o, s ? s : "",
            topdraw_cols[c].key == t->sort ? A_REVERSE | A_BOLD | A_UNDERLINE : A_REVERSE);
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
        fmt_fit(&fit, s ? s : "", l->width[c], !topdraw_cols[c].right);
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
bool topdraw_frame(Top *t)
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
