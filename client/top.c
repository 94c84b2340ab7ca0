/* pymemctl top: a live view of every watched process, like top(1), drawn with plain ANSI
 * sequences so that it needs no curses and works on any VT100-like terminal of 80 columns.
 *
 * The terminal is put into non-canonical mode on the alternate screen and handed back as it
 * was on every way out: q, Ctrl-C, SIGTERM, SIGHUP, an error, and around Ctrl-Z. */
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
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"
#include "pymemd/api.h"
#include "util/clock.h"
#include "view.h"

static const char top_help[] =
    "Usage: pymemctl top [--interval SECONDS] [--url URL] [--no-color]\n"
    "A live view of every process pymemd watches, refreshed every second, largest\n"
    "resident memory first. Columns: PID, NAME, PYTHON version, RSS (resident\n"
    "memory), HEAP (pymalloc arena bytes), GEN0 GEN1 GEN2 (gc.get_count()),\n"
    "OBJECTS (live objects of the last census), BUSY (estimated share of time the\n"
    "GC was collecting) and, on wide terminals, COMMAND. '-' is a value pymemd\n"
    "could not read.\n"
    "\n"
    "Keys: sort by p pid, n name, r rss, h heap, c gen0 count, o objects, b busy;\n"
    "R reverses the order; space refreshes now; q (or Ctrl-C) quits.\n"
    "\n"
    "      --interval SECONDS  time between refreshes (default 1, at least 0.1)\n";

typedef enum SortKey {
    SORT_NONE,
    SORT_PID,
    SORT_NAME,
    SORT_RSS,
    SORT_HEAP,
    SORT_GEN0,
    SORT_OBJECTS,
    SORT_BUSY,
} SortKey;

typedef enum ColId {
    COL_PID,
    COL_NAME,
    COL_PYTHON,
    COL_RSS,
    COL_HEAP,
    COL_GEN0,
    COL_GEN1,
    COL_GEN2,
    COL_OBJECTS,
    COL_BUSY,
    COL_COMMAND,
    NCOLS,
} ColId;

typedef struct TopCol {
    const char *header;
    const char *sort_name; /* as shown in the status line; NULL: not a sort key */
    SortKey key;
    char keych;
    bool right;
    size_t min; /* columns at least */
    int drop;   /* on a narrow terminal, higher numbers go first; 0 never */
} TopCol;

static const TopCol cols[NCOLS] = {
    [COL_PID] = {"PID", "pid", SORT_PID, 'p', true, 5, 0},
    [COL_NAME] = {"NAME", "name", SORT_NAME, 'n', false, 6, 0},
    [COL_PYTHON] = {"PYTHON", NULL, SORT_NONE, 0, false, 6, 3},
    [COL_RSS] = {"RSS", "rss", SORT_RSS, 'r', true, 9, 0},
    [COL_HEAP] = {"HEAP", "heap", SORT_HEAP, 'h', true, 9, 4},
    [COL_GEN0] = {"GEN0", "gen0 count", SORT_GEN0, 'c', true, 5, 0},
    [COL_GEN1] = {"GEN1", NULL, SORT_NONE, 0, true, 4, 2},
    [COL_GEN2] = {"GEN2", NULL, SORT_NONE, 0, true, 4, 2},
    [COL_OBJECTS] = {"OBJECTS", "objects", SORT_OBJECTS, 'o', true, 9, 1},
    [COL_BUSY] = {"BUSY", "busy", SORT_BUSY, 'b', true, 5, 3},
    [COL_COMMAND] = {"COMMAND", NULL, SORT_NONE, 0, false, 0, 5},
};

/* NAME grows up to this many columns before the command line gets the rest. */
#define NAME_MAX_WIDTH 20
/* The command line is shown only when at least this much room is left for it. */
#define COMMAND_MIN_WIDTH 12
/* Lines above the table: title, summary, message; then the column header. */
#define HEAD_LINES 4

typedef struct Top {
    Ctl *ctl;
    double interval;
    SortKey sort;
    bool reverse;
    cJSON *doc;           /* the last good answer; owned */
    double fetched_at;    /* its time, epoch seconds */
    char error[1024];     /* why the last refresh failed; "" when it did not */
    size_t rows, cols;    /* terminal size */
    struct termios saved; /* the terminal as it was */
    bool on_screen;       /* raw mode and alternate screen are on */
} Top;

/* Set by signal handlers; each also writes a byte to wake_pipe so that poll() returns. */
static volatile sig_atomic_t got_quit, got_winch, got_tstp, got_cont;
static int wake_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;

    if (sig == SIGWINCH)
        got_winch = 1;
    else if (sig == SIGTSTP)
        got_tstp = 1;
    else if (sig == SIGCONT)
        got_cont = 1;
    else if (!got_quit)
        got_quit = sig;
    if (wake_pipe[1] >= 0)
        (void)!write(wake_pipe[1], "", 1);
    errno = saved;
}

static bool quit_requested(void *userdata)
{
    return got_quit != 0;
}

static void set_handlers(void (*handler)(int))
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGTSTP, SIGCONT};
    struct sigaction sa = {.sa_handler = handler};

    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Writes all of s to the terminal; false when it is gone. */
static bool term_write(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        s += n;
        len -= (size_t)n;
    }
    return true;
}

static void term_size(Top *t)
{
    struct winsize ws;

    t->rows = 24;
    t->cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        t->rows = ws.ws_row;
        t->cols = ws.ws_col;
    }
}

/* Keys arrive one by one without echo; ISIG stays on so that Ctrl-C and Ctrl-Z still reach
 * the handlers, and output processing stays on so that "\n" still returns the carriage. */
static int screen_enter(Top *t)
{
    static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";
    struct termios raw = t->saved;

    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0)
        return -errno;
    t->on_screen = true;
    term_write(enter, sizeof(enter) - 1);
    return 0;
}

static void screen_leave(Top *t)
{
    static const char leave[] = "\033[0m\033[?25h\033[?1049l";

    if (!t->on_screen)
        return;
    term_write(leave, sizeof(leave) - 1);
    tcsetattr(STDIN_FILENO, TCSADRAIN, &t->saved);
    t->on_screen = false;
}

/* Ctrl-Z: give the terminal back as it was, stop, and take it again when continued. */
static void suspend(Top *t)
{
    screen_leave(t);
    signal(SIGTSTP, SIG_DFL);
    raise(SIGTSTP);
    /* Continued (or never stopped: the kernel drops the signal in an orphaned process
     * group, which has no shell to continue it). */
    set_handlers(on_signal);
    got_tstp = 0;
    term_size(t);
    screen_enter(t);
}

/* Fetches the list again. Returns CTL_EXIT_OK, or the exit code of the failure with its
 * message in t->error; the last good list stays on screen meanwhile. */
static int refresh(Top *t)
{
    CtlAnswer a;
    int code = ctl_get(t->ctl, PYMEMD_PATH_PROCESSES, CTL_TIMEOUT_MS, &a);

    if (code == CTL_EXIT_OK && jarray(a.json, "processes")) {
        cJSON_Delete(t->doc);
        t->doc = TAKE_PTR(a.json);
        t->fetched_at = clock_real();
        t->error[0] = '\0';
    } else if (code == CTL_EXIT_OK) {
        code = CTL_EXIT_DAEMON;
        snprintf(t->error, sizeof(t->error), "%s%s: the answer has no \"processes\" list",
                 t->ctl->url, PYMEMD_PATH_PROCESSES);
    } else {
        snprintf(t->error, sizeof(t->error), "%s", a.msg);
    }
    ctl_answer_clear(&a);
    return code;
}

/* --- sorting --- */

static Num sort_value(SortKey k, const cJSON *p)
{
    switch (k) {
    case SORT_PID:
        return jnum(p, "pid");
    case SORT_RSS:
        return jnum(p, "memory.rss_bytes");
    case SORT_HEAP:
        return jnum(p, "pymalloc.arena_bytes");
    case SORT_GEN0:
        return view_gen(p, 0, "count");
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
    const Top *sorting = userdata;
    const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
    SortKey k = sorting->sort;
    Num na = sort_value(k, a), nb = sort_value(k, b);
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
    if (sorting->reverse)
        c = -c;
    if (c == 0) {
        Num pa_ = jnum(a, "pid"), pb_ = jnum(b, "pid");
        c = (pa_.v > pb_.v) - (pa_.v < pb_.v);
    }
    return c;
}

/* --- layout --- */

typedef struct Layout {
    bool show[NCOLS];
    size_t width[NCOLS];
} Layout;

/* The text of one cell, cleaned for the terminal, appended to b. */
static void cell_text(StrBuf *b, ColId c, const cJSON *p)
{
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
        strbuf_puts(b, FMT(fmt_bytes, jnum(p, "memory.rss_bytes")));
        return;
    case COL_HEAP:
        strbuf_puts(b, FMT(fmt_bytes, jnum(p, "pymalloc.arena_bytes")));
        return;
    case COL_GEN0:
    case COL_GEN1:
    case COL_GEN2:
        strbuf_puts(b, FMT(fmt_count, view_gen(p, (int)(c - COL_GEN0), "count")));
        return;
    case COL_OBJECTS:
        strbuf_puts(b, FMT(fmt_count, jnum(p, "objects.total")));
        return;
    case COL_BUSY:
        strbuf_puts(b, FMT(fmt_percent, jnum(p, "gc.busy_ratio_estimate")));
        return;
    case COL_COMMAND:
        s = jstr(p, "cmdline");
        fmt_clean(b, s ? s : FMT_NONE);
        return;
    case NCOLS:
        break;
    }
}

static size_t cell_width(ColId c, const cJSON *p)
{
    StrBuf b = {0};
    size_t w;
    char *s;

    cell_text(&b, c, p);
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
 * terminal; NAME takes what is left up to its limit, and the command line the rest. */
static void layout(const Top *t, const cJSON **procs, size_t n, Layout *l)
{
    *l = (Layout){0};
    for (int c = 0; c < NCOLS; c++) {
        l->show[c] = c != COL_COMMAND;
        l->width[c] = MAX(cols[c].min, fmt_width(cols[c].header));
        for (size_t i = 0; i < n && c != COL_NAME && c != COL_COMMAND; i++)
            if (view_ok(procs[i]))
                l->width[c] = MAX(l->width[c], cell_width((ColId)c, procs[i]));
    }
    for (int drop = 5; drop > 0 && layout_total(l) > t->cols; drop--)
        for (int c = 0; c < NCOLS; c++)
            if (cols[c].drop == drop)
                l->show[c] = false;
    if (layout_total(l) < t->cols) {
        size_t want = 0, room = t->cols - layout_total(l);
        for (size_t i = 0; i < n; i++)
            want = MAX(want, cell_width(COL_NAME, procs[i]));
        want = MIN(want, NAME_MAX_WIDTH);
        if (want > l->width[COL_NAME])
            l->width[COL_NAME] += MIN(want - l->width[COL_NAME], room);
    }
    if (layout_total(l) + 1 + COMMAND_MIN_WIDTH <= t->cols) {
        l->show[COL_COMMAND] = true;
        l->width[COL_COMMAND] = t->cols - layout_total(l) - 1;
    }
}

/* --- drawing --- */

typedef struct Frame {
    StrBuf b;
    const Top *t;
    size_t line; /* lines begun */
} Frame;

/* Ends the current line: clears what an earlier frame left to its right, unless the line
 * fills the terminal (erasing then would take its last character with it). */
static void end_line(Frame *f, size_t width)
{
    if (width < f->t->cols)
        strbuf_puts(&f->b, "\033[K");
    f->line++;
    if (f->line < f->t->rows)
        strbuf_puts(&f->b, "\r\n");
}

/* A whole line of free text, cut to the terminal's width. */
static void text_line(Frame *f, const char *text, const char *sgr)
{
    StrBuf clean = {0}, fit = {0};
    char *c, *s;
    size_t w;

    fmt_clean(&clean, text);
    c = fmt_take(&clean, NULL);
    w = MIN(fmt_width(c ? c : ""), f->t->cols);
    fmt_fit(&fit, c ? c : "", w, true);
    s = fmt_take(&fit, NULL);
    fmt_sgr(&f->b, f->t->ctl->color, sgr, s ? s : "");
    free(c);
    free(s);
    end_line(f, w);
}

static const char *sort_name(SortKey k)
{
    for (int c = 0; c < NCOLS; c++)
        if (cols[c].key == k && cols[c].sort_name)
            return cols[c].sort_name;
    return "?";
}

static void draw_head(Frame *f, const cJSON **procs, size_t n)
{
    const Top *t = f->t;
    Num rss = {0}, objects = {0};
    size_t ok = 0;
    char line[2048];

    /* Sums over what is known; "-" when nothing is (no census anywhere yet). */
    for (size_t i = 0; i < n; i++) {
        Num r = jnum(procs[i], "memory.rss_bytes"), o = jnum(procs[i], "objects.total");
        ok += view_ok(procs[i]);
        rss = r.ok ? (Num){.ok = true, .v = rss.v + r.v} : rss;
        objects = o.ok ? (Num){.ok = true, .v = objects.v + o.v} : objects;
    }
    snprintf(line, sizeof(line), "pymemctl top - %s - %s, every %g s", t->ctl->url,
             FMT(fmt_clock, ((Num){.ok = true, .v = clock_real()})), t->interval);
    text_line(f, line, SGR_BOLD);
    snprintf(line, sizeof(line), "%zu processes, %zu ok; rss %s, objects %s; sort: %s%s", n, ok,
             FMT(fmt_bytes, rss), FMT(fmt_count, objects), sort_name(t->sort),
             t->reverse ? " (reversed)" : "");
    text_line(f, line, NULL);
    if (t->error[0]) {
        snprintf(line, sizeof(line), "%s (data of %s)", t->error,
                 FMT(fmt_clock, ((Num){.ok = t->doc != NULL, .v = t->fetched_at})));
        text_line(f, line, SGR_RED);
    } else {
        text_line(f, "", NULL);
    }
}

static void draw_header(Frame *f, const Layout *l)
{
    const Top *t = f->t;
    bool first = true;
    size_t w = 0;

    for (int c = 0; c < NCOLS; c++) {
        StrBuf cell = {0};
        char *s;

        if (!l->show[c])
            continue;
        if (!first)
            strbuf_puts(&f->b, t->ctl->color ? "\033[7m \033[0m" : " ");
        first = false;
        fmt_fit(&cell, cols[c].header, l->width[c], !cols[c].right);
        s = fmt_take(&cell, NULL);
        /* The sort column stands out; the rest of the header is in reverse video. */
        fmt_sgr(&f->b, t->ctl->color, cols[c].key == t->sort ? "7;1;4" : SGR_REV, s ? s : "");
        free(s);
        w += l->width[c] + (w ? 1 : 0);
    }
    end_line(f, w);
}

/* A process that cannot be read gets its status and reason where the numbers would be. */
static void draw_problem(Frame *f, const Layout *l, const cJSON *p, size_t *w)
{
    const char *status = jstr(p, "status"), *error = jstr(p, "error");
    size_t room = f->t->cols > *w + 1 ? f->t->cols - *w - 1 : 0;
    StrBuf text = {0}, fit = {0};
    char *c, *s;

    strbuf_puts(&f->b, " ");
    fmt_clean(&text, status ? status : "unknown status");
    if (error) {
        strbuf_puts(&text, ": ");
        fmt_clean(&text, error);
    }
    c = fmt_take(&text, NULL);
    room = MIN(room, fmt_width(c ? c : ""));
    fmt_fit(&fit, c ? c : "", room, true);
    s = fmt_take(&fit, NULL);
    fmt_sgr(&f->b, f->t->ctl->color, view_status_sgr(status), s ? s : "");
    *w += 1 + room;
    free(c);
    free(s);
}

static void draw_row(Frame *f, const Layout *l, const cJSON *p)
{
    bool ok = view_ok(p);
    size_t w = 0;

    for (int c = 0; c < NCOLS; c++) {
        StrBuf cell = {0}, fit = {0};
        char *s;

        if (!l->show[c])
            continue;
        if (!ok && c > COL_NAME) {
            draw_problem(f, l, p, &w);
            break;
        }
        if (w)
            strbuf_puts(&f->b, " ");
        cell_text(&cell, (ColId)c, p);
        s = fmt_take(&cell, NULL);
        fmt_fit(&fit, s ? s : "", l->width[c], !cols[c].right);
        free(s);
        s = fmt_take(&fit, NULL);
        strbuf_puts(&f->b, s ? s : "");
        free(s);
        w += l->width[c] + (w ? 1 : 0);
    }
    end_line(f, w);
}

static void draw_footer(Frame *f)
{
    static const char keys[] = "q quit  sort: p pid n name r rss h heap c gen0 o objects b busy  "
                               "R reverse";

    text_line(f, keys, SGR_DIM);
}

static void draw_rows(Frame *f, const Layout *l, const cJSON **procs, size_t n)
{
    size_t room = f->t->rows - f->line - 1; /* the footer keeps the last line */
    char more[64];

    if (n == 0) {
        text_line(f, "pymemd watches no Python process (yet)", NULL);
        return;
    }
    for (size_t i = 0; i < n && room > 0; i++, room--) {
        if (room == 1 && i + 1 < n) {
            snprintf(more, sizeof(more), "... %zu more", n - i);
            text_line(f, more, SGR_DIM);
            return;
        }
        draw_row(f, l, procs[i]);
    }
}

static bool draw(Top *t)
{
    _cleanup_(freep) const cJSON **procs = NULL;
    Frame f = {.t = t};
    Layout l;
    size_t n = 0, len;
    char *s;
    bool ok;

    if (t->doc && view_processes(t->doc, &procs, &n) < 0)
        n = 0;
    if (n > 1)
        qsort_r(procs, n, sizeof(*procs), cmp_procs, t);
    strbuf_puts(&f.b, "\033[H");
    if (t->rows < HEAD_LINES + 3 || t->cols < 40) {
        text_line(&f, "terminal too small for pymemctl top", NULL);
    } else {
        layout(t, procs, n, &l);
        draw_head(&f, procs, n);
        draw_header(&f, &l);
        draw_rows(&f, &l, procs, n);
        while (f.line + 1 < t->rows)
            text_line(&f, "", NULL);
        draw_footer(&f);
    }
    strbuf_puts(&f.b, "\033[J");
    s = fmt_take(&f.b, &len);
    ok = s ? term_write(s, len) : true;
    free(s);
    return ok;
}

/* --- the loop --- */

/* Handles the keys typed since the last look; returns true when the view should redraw now
 * and sets *refresh_now for a space. */
static bool keys(Top *t, bool *quit, bool *refresh_now)
{
    char buf[64];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    bool redraw = false;

    if (n == 0) { /* the terminal went away */
        *quit = true;
        return false;
    }
    for (ssize_t i = 0; i < n; i++) {
        char k = buf[i];

        if (k == 'q' || k == 'Q') {
            *quit = true;
            return false;
        }
        if (k == 'R') {
            t->reverse = !t->reverse;
            redraw = true;
        } else if (k == ' ') {
            *refresh_now = true;
        } else if (k == '\f') { /* Ctrl-L */
            redraw = true;
        } else if (k == '\033') {
            /* An escape sequence (arrow keys and the like): ignore the rest of this read. */
            break;
        }
        for (int c = 0; c < NCOLS; c++) {
            if (cols[c].keych && cols[c].keych == k) {
                t->reverse = t->sort == cols[c].key ? t->reverse : false;
                t->sort = cols[c].key;
                redraw = true;
            }
        }
    }
    return redraw;
}

static int loop(Top *t)
{
    double next = clock_mono() + t->interval;
    bool quit = false;

    if (!draw(t))
        return CTL_EXIT_OK;
    while (!quit && !got_quit) {
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = wake_pipe[0], .events = POLLIN}};
        double wait = next - clock_mono();
        bool redraw = false, refresh_now = false;
        char drain[64];

        if (poll(fds, 2, wait > 0 ? (int)ceil(wait * 1000) : 0) < 0 && errno != EINTR)
            return CTL_EXIT_DAEMON;
        if (fds[1].revents & POLLIN)
            (void)!read(wake_pipe[0], drain, sizeof(drain));
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
            redraw = keys(t, &quit, &refresh_now);
        if (quit || got_quit)
            break;
        if (got_tstp) {
            suspend(t);
            redraw = true;
        }
        if (got_cont) {
            /* Continued after a stop that was not ours (SIGSTOP): the shell may have set the
             * terminal back meanwhile, so take it again and paint it whole. */
            got_cont = 0;
            screen_enter(t);
            redraw = true;
        }
        if (got_winch) {
            got_winch = 0;
            term_size(t);
            redraw = true;
        }
        if (refresh_now || clock_mono() >= next) {
            refresh(t);
            next = clock_mono() + t->interval;
            redraw = true;
        }
        if (redraw && !draw(t))
            break;
    }
    return CTL_EXIT_OK;
}

static int parse(Top *t, int argc, char **argv)
{
    enum { OPT_INTERVAL = OPT_FIRST_COMMAND_OPTION };
    static const struct option options[] = {
        CTL_COMMON_OPTIONS,
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {0},
    };
    char *end;
    int opt, r;

    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(top_help, stdout);
            return CTL_EXIT_OK;
        case OPT_INTERVAL:
            errno = 0;
            t->interval = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(t->interval >= 0.1 && t->interval <= 3600))
                return ctl_usage_error("top",
                                       "--interval wants seconds from 0.1 to 3600, not "
                                       "\"%s\"",
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
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return ctl_usage_error("top", "top needs a terminal; 'pymemctl ls' prints the list "
                                      "once");
    return -1;
}

/* Everything that needs undoing, undone; the order matters: the screen before the handlers,
 * so that a signal arriving meanwhile still finds the terminal restored. */
static void top_done(Top *t)
{
    screen_leave(t);
    set_handlers(SIG_DFL);
    http_set_abort(t->ctl->http, NULL, NULL);
    for (int i = 0; i < 2; i++) {
        if (wake_pipe[i] >= 0)
            close(wake_pipe[i]);
        wake_pipe[i] = -1;
    }
    cJSON_Delete(t->doc);
    t->doc = NULL;
}

int cmd_top(Ctl *ctl, int argc, char **argv)
{
    Top t = {.ctl = ctl, .interval = 1.0, .sort = SORT_RSS};
    int r, sig;

    r = parse(&t, argc, argv);
    if (r >= 0)
        return r;
    r = ctl_ready(ctl);
    if (r != 0)
        return r;
    /* A wrong URL is said plainly, before the screen is taken over. */
    r = refresh(&t);
    if (r != CTL_EXIT_OK) {
        ctl_error("%s", t.error);
        cJSON_Delete(t.doc);
        return r;
    }
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || tcgetattr(STDIN_FILENO, &t.saved) < 0) {
        ctl_error("cannot set up the terminal: %s", strerror(errno));
        top_done(&t);
        return CTL_EXIT_DAEMON;
    }
    got_quit = got_winch = got_tstp = got_cont = 0;
    set_handlers(on_signal);
    http_set_abort(ctl->http, quit_requested, NULL);
    term_size(&t);
    r = screen_enter(&t);
    if (r < 0) {
        top_done(&t);
        ctl_error("cannot set up the terminal: %s", strerror(-r));
        return CTL_EXIT_DAEMON;
    }
    r = loop(&t);
    sig = got_quit;
    top_done(&t);
    /* Ctrl-C is the ordinary way out, like q; being told to stop by SIGTERM or a hang-up is
     * reported the way a shell expects of a process that died of it. */
    if (sig && sig != SIGINT)
        return 128 + sig;
    return r;
}
