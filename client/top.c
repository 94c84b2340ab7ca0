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
#include <unistd.h>

#include "top.h"
#include "util/clock.h"

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

/* --- the loop --- */

static void set_sort(Top *t, int k)
{
    for (int c = 0; c < NCOLS; c++) {
        if (topdraw_cols[c].keych && topdraw_cols[c].keych == k) {
            t->reverse = t->sort == topdraw_cols[c].key ? t->reverse : false;
            t->sort = topdraw_cols[c].key;
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

    if (!topdraw_frame(t))
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
            topdata_fetch(t);
            next = clock_mono() + t->interval;
            redraw = true;
        }
        if (redraw && !topdraw_frame(t))
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
            int r = topdata_fetch(t);
            if (r != CTL_EXIT_OK) {
                ctl_error("%s", t->error);
                return r;
            }
            fputs("\n", stdout);
        }
        if (!topdraw_frame(t))
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
    topdata_free(t);
}

int cmd_top(Ctl *ctl, int argc, char **argv)
{
    Top t = {
        .ctl = ctl, .interval = 1.0, .sort = SORT_RSS, .window = WINDOW_HISTORY, .quit = &got_quit};
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
    r = topdata_fetch(&t);
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
