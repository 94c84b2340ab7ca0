/* ctl: what every pymemctl command shares: its options, exit codes and the one way to ask the
 * daemon something. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "util/macro.h"

/* Exit codes of DESIGN.md §3; scripts rely on them. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_DAEMON = 1,      /* the daemon answered with an error */
    CTL_EXIT_USAGE = 2,       /* bad command line */
    CTL_EXIT_UNREACHABLE = 3, /* no answer from the daemon */
};

/* A census request may have to wait while the target is frozen and its heap walked: the daemon
 * itself waits up to 30 s for it, so the client waits a little longer to hear its answer. */
#define CTL_TIMEOUT_MS        10000L
#define CTL_TIMEOUT_CENSUS_MS 35000L

typedef struct Ctl {
    char *url;         /* base URL without a trailing '/'; owned; NULL until --url or ctl_ready() */
    bool json;         /* print the daemon's JSON unchanged */
    bool no_color;     /* --no-color */
    bool color;        /* set by ctl_ready(): stdout is a terminal, NO_COLOR unset, no --no-color */
    Http *http;        /* set by ctl_ready(); owned */
    HttpAccess access; /* --cacert, --cert, --key, --user: pointers into argv and the
                        * environment, except the user and password, which are owned */
} Ctl;

/* Long options every command accepts, before or after its name. */
enum {
    OPT_URL = 0x100,
    OPT_JSON,
    OPT_NO_COLOR,
    OPT_VERSION,
    OPT_CACERT,
    OPT_CERT,
    OPT_KEY,
    OPT_USER,
    OPT_FIRST_COMMAND_OPTION, /* commands number their own options from here */
};
#define CTL_COMMON_OPTIONS                                                                         \
    {"url", required_argument, NULL, OPT_URL}, {"json", no_argument, NULL, OPT_JSON},              \
        {"no-color", no_argument, NULL, OPT_NO_COLOR},                                             \
        {"cacert", required_argument, NULL, OPT_CACERT},                                           \
        {"cert", required_argument, NULL, OPT_CERT}, {"key", required_argument, NULL, OPT_KEY},    \
        {"user", required_argument, NULL, OPT_USER},                                               \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* One answer of the daemon, ready for a command to print. */
typedef struct CtlAnswer {
    int code;       /* CTL_EXIT_OK, CTL_EXIT_DAEMON or CTL_EXIT_UNREACHABLE */
    long status;    /* HTTP status, 0 without an answer */
    char *body;     /* the raw body, NUL-terminated; owned */
    size_t len;     /* its length */
    cJSON *json;    /* the parsed body when code is CTL_EXIT_OK; owned */
    char msg[1024]; /* what went wrong, naming the URL, when code is not CTL_EXIT_OK */
} CtlAnswer;

/* Sets the base URL from a --url argument or $PYMEMD_URL (named by from, for messages):
 * "host:port" means http://host:port; trailing slashes are dropped. Returns 0, or
 * CTL_EXIT_USAGE after saying what is wrong. */
int ctl_set_url(Ctl *ctl, const char *url, const char *from);
/* Handles an option every command shares (--url, --json, --no-color) given after the command.
 * Returns 0, or CTL_EXIT_USAGE after saying what is wrong. */
int ctl_common_option(Ctl *ctl, int opt, const char *arg);
/* Called by each command once its options are parsed: takes the URL from $PYMEMD_URL or the
 * default when --url was not given, decides on colour and sets up HTTP. Returns 0 or an exit
 * code after printing why. */
int ctl_ready(Ctl *ctl);
/* Frees what ctl owns. */
void ctl_done(Ctl *ctl);

/* GETs ctl->url + path and classifies the result: CTL_EXIT_OK with a parsed JSON document,
 * CTL_EXIT_DAEMON with the daemon's own error message, or CTL_EXIT_UNREACHABLE naming the URL
 * tried. Returns ret->code. Release the answer with ctl_answer_clear(). */
int ctl_get(const Ctl *ctl, const char *path, long timeout_ms, CtlAnswer *ret);
void ctl_answer_clear(CtlAnswer *a);
/* Prints a failed answer's message to stderr and returns its exit code. */
int ctl_fail(const CtlAnswer *a);
/* Prints the body of a good answer to stdout unchanged, for --json (and a newline after it on
 * a terminal). Returns CTL_EXIT_OK. */
int ctl_print_raw(const CtlAnswer *a);

/* Parses a PID argument: a decimal number from 1 to INT_MAX. Returns 0 or -EINVAL. */
int ctl_parse_pid(const char *s, long *ret_pid);
/* Parses a non-negative decimal count (--top). Returns 0 or -EINVAL. */
int ctl_parse_count(const char *s, long *ret);
/* Prints "pymemctl: TEXT" and a hint to run `pymemctl CMD --help`; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);
/* Reports what getopt_long() (with opterr = 0 and an optstring starting with ':') found
 * wrong: opt is its ':' or '?'. Returns CTL_EXIT_USAGE. */
int ctl_option_error(const char *cmd, int opt, char **argv);
/* Prints "pymemctl: TEXT" to stderr. */
void ctl_error(const char *fmt, ...) _printf_(1, 2);

/* The commands. argv[0] is the command's name; options follow. Each returns an exit code. */
int cmd_ls(Ctl *ctl, int argc, char **argv);
int cmd_show(Ctl *ctl, int argc, char **argv);
int cmd_objects(Ctl *ctl, int argc, char **argv);
int cmd_growth(Ctl *ctl, int argc, char **argv);
int cmd_referrers(Ctl *ctl, int argc, char **argv);
int cmd_top(Ctl *ctl, int argc, char **argv);
