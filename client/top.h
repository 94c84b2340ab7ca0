/* top: what pymemctl top's parts share: the view's state (Top), what it remembers of each
 * process between refreshes (Memo, topdata.c), and its columns (topdraw.c). top.c holds the
 * command: options, signals, the terminal and the loop. */
#pragma once

#include <curses.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "trend.h"

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

/* The columns, in their order on screen; topdraw.c. */
extern const TopCol topdraw_cols[NCOLS];

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
    const volatile sig_atomic_t *quit; /* set when top is told to end */
    bool colors;                       /* curses colour pairs are set up */
} Top;

/* Colour pairs, set up when the terminal has colours and colour is wanted. */
enum { PAIR_RED = 1, PAIR_GREEN, PAIR_YELLOW };

/* topdata.c */

/* Fetches the list again, and the histories it needs. Returns CTL_EXIT_OK, or the exit code of
 * the failure with its message in t->error; the last good data stays meanwhile. */
int topdata_fetch(Top *t);
/* Frees every memo. */
void topdata_free(Top *t);
/* The memo of a PROCESS object of t->doc, or NULL. */
Memo *topdata_memo(const Top *t, const cJSON *proc);
/* The window in effect: the history's when asked for and there is one. */
Window topdata_window(const Top *t);
/* The change of field f of a process over the window in effect; unknown without a memo. */
TrendChange topdata_change(const Top *t, const Memo *m, TrendField f);

/* topdraw.c */

/* Draws a frame: on the curses screen, or as text to standard output in batch mode. Returns
 * false when standard output is gone. */
bool topdraw_frame(Top *t);
