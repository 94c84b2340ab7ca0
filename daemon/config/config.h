/* config: the daemon's settings, from defaults, a config file and command-line flags.
 *
 * A file and a flag go through the same setter, so both are validated alike and report the
 * same message for the same mistake. Nothing here logs or exits: errors come back as -errno
 * with a human sentence in the caller's buffer, and main decides what to print.
 *
 * File format (see config/pymemd.conf for every key with its default):
 *   - UTF-8 text, one `key = value` per line; blanks around key and value are ignored;
 *   - a line whose first non-blank character is `#` is a comment; a `#` anywhere else is part
 *     of the value, because regular expressions may contain one;
 *   - a value may be written in double quotes to keep leading or trailing blanks; inside the
 *     quotes `\"` and `\\` are the only escapes;
 *   - booleans are true/false, yes/no, on/off or 1/0;
 *   - a scalar key given twice keeps the last value; `pid` and `match` add one entry per line;
 *   - keys may be spelled with `-` for `_` (census-interval), so command-line flag names can be
 *     passed to config_set() as they are;
 *   - lines are at most CONFIG_LINE_MAX bytes, files at most CONFIG_FILE_MAX bytes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_MAX (1024 * 1024)

typedef struct Config {
    char listen[256];          /* HOST:PORT as given; an IPv6 host is in brackets: [::1]:9100 */
    pid_t *pids;               /* key `pid`, repeatable; each PID at most once */
    size_t npids;              /*   entries in pids */
    char **matches;            /* key `match`, repeatable: POSIX extended regex sources, each
                                *   known to compile with REG_EXTENDED | REG_NOSUB */
    size_t nmatches;           /*   entries in matches */
    bool all;                  /* watch every CPython process; main sets it with no pid/match */
    double interval;           /* seconds between samples, 0.01..3600 */
    double census_interval;    /* seconds between object censuses, 0 (off) or up to 86400 */
    double gc_poll_interval;   /* seconds between polls of the GC's `collecting` flag for the
                                *   busy-ratio estimate before 3.15; 0 (off) or 0.001..1 */
    double discovery_interval; /* seconds between looks for new processes, 0.1..3600 */
    int log_level;             /* a LogLevel, 0 (error) to 3 (debug) */
    unsigned top_types;        /* object types exported to Prometheus before "other", 1..1000 */
    double max_census_pause;   /* seconds a scheduled census may keep a target stopped,
                                *   0.001..60 */
    double max_census_pause_on_demand; /* the same for ?fresh=1 censuses, 0.001..60 */
    double census_min_interval;        /* seconds between two censuses of one target that ?fresh=1
                                        *   may cause; inside it the latest is served. 0 (off) or
                                        *   0.1..3600 */
    char census_match[1024];    /* POSIX extended regex (known to compile): who is censused on
                                 *   schedule; "" = the targets named by pid or match */
    double pss_interval;        /* seconds between reads of smaps_rollup; 0 (off) or
                                 *   0.01..86400 */
    uint64_t pss_max_rss;       /* PSS is not read above this RSS (bytes); 0: no limit */
    bool census_nonblocking;    /* take censuses without stopping the target (may come out
                                 *   inconsistent: then reported as such, not as numbers) */
    uint64_t census_max_memory; /* bytes of pymemd's memory one census may use, 16M..1024G */
    char web_config_file[4096]; /* exporter-toolkit web config (TLS, basic auth); "" = none */
    int cmdline;                /* a CmdlineMode: what "cmdline" shows (full, redacted, hidden) */

    /* Trends (history/). */
    double history;              /* seconds of samples kept per target for .../history, 0 (off)
                                  *   or 1..604800 */
    uint64_t history_max_memory; /* bytes every target's history together may use, 64K..16G */
} Config;

/* Bounds on every regular expression (match, census_match). glibc's regcomp() copies an item
 * once per repetition an interval allows (x+ too, as x x*), and loops inside loops grow faster
 * still: `(.{0,1000}){0,100}` took 14 s and 1 GiB, `(((a*)+){1,8}){1,8}` minutes and gigabytes
 * (tests/fuzz/fuzz_config found these). A pattern is refused before it is compiled when it is
 * longer than CONFIG_REGEX_MAX bytes, nests groups deeper than CONFIG_REGEX_DEPTH, counts more
 * than 255 repetitions, applies {m,n} to a part itself repeated, has two repetition operators
 * in a row (but "*?" and "+?"), or would make more than 2000 copies (config.c). */
#define CONFIG_REGEX_MAX   512
#define CONFIG_REGEX_DEPTH 32

int config_check_regex(const char *regex, char *err, size_t errlen);

/* Fills c with the defaults. c owns nothing afterwards, so it may be dropped without
 * config_done(), though calling it is harmless. */
void config_init(Config *c);

/* Frees what c owns (pids, matches) and leaves the lists empty. Safe to call twice. */
void config_done(Config *c);

/* Makes dst a deep copy of src. dst is treated as uninitialised storage: its old contents are
 * not freed (call config_done() on it first if it owns anything). Returns 0, or -ENOMEM with
 * dst untouched. The caller owns dst's lists afterwards and frees them with config_done(). */
int config_copy(Config *dst, const Config *src);

/* Sets one key from its textual value. Scalars are replaced; `pid` and `match` append (a PID or
 * regex already present is not added twice). Returns 0, or -EINVAL with a message such as
 * `interval: "abc" is not a number of seconds` or `unknown key "intervall"` in err (errlen
 * bytes, always NUL-terminated when errlen > 0), or -ENOMEM. On failure c is unchanged. */
int config_set(Config *c, const char *key, const char *value, char *err, size_t errlen);

/* Parses the file at path onto c: keys in the file override what c holds, and repeatable keys
 * append. Only a regular file is read (opened non-blocking, so a FIFO never blocks the caller).
 * Returns 0, or a negative errno (-ENOENT for a missing file, -EISDIR for a directory, -EINVAL
 * for another file that is not regular or a syntax or value error, -ENODATA for an empty file
 * or one of blanks only, -EFBIG for a file over CONFIG_FILE_MAX, -ENOMEM, or whatever open/read
 * said)
 * with a message in err of the form `FILE:LINE: what is wrong` (or `FILE: ...` when no line is
 * to blame). On failure c is exactly as it was. */
int config_load_file(Config *c, const char *path, char *err, size_t errlen);

/* The same parse as config_load_file() over the len bytes at text (no NUL needed), the file's
 * contents as if read from a file called name (used in messages). Nothing is read from disk:
 * tests/fuzz feeds the parser this way. */
int config_load_buffer(Config *c, const char *name, const char *text, size_t len, char *err,
                       size_t errlen);
