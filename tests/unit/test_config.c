/* config: every key at and past its limits, the file syntax, the exact messages main will print,
 * that a failed load changes nothing, and that the shipped config/pymemd.conf states the same
 * defaults as config_init(). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "util/log.h"
#include "util/redact.h"
#include "util/macro.h"

static void assert_config_equal(const Config *a, const Config *b)
{
    assert_string_equal(a->listen, b->listen);
    assert_int_equal(a->npids, b->npids);
    for (size_t i = 0; i < a->npids; i++)
        assert_int_equal(a->pids[i], b->pids[i]);
    assert_int_equal(a->nmatches, b->nmatches);
    for (size_t i = 0; i < a->nmatches; i++)
        assert_string_equal(a->matches[i], b->matches[i]);
    assert_int_equal(a->all, b->all);
    /* Exact comparison on purpose: "0.01" parsed by strtod is the same double as the literal. */
    assert_true(a->interval == b->interval);
    assert_true(a->census_interval == b->census_interval);
    assert_true(a->gc_poll_interval == b->gc_poll_interval);
    assert_true(a->discovery_interval == b->discovery_interval);
    assert_int_equal(a->log_level, b->log_level);
    assert_int_equal(a->top_types, b->top_types);
    assert_true(a->max_census_pause == b->max_census_pause);
    assert_int_equal(a->census_nonblocking, b->census_nonblocking);
    assert_true(a->max_census_pause_on_demand == b->max_census_pause_on_demand);
    assert_true(a->census_min_interval == b->census_min_interval);
    assert_string_equal(a->census_match, b->census_match);
    assert_true(a->pss_interval == b->pss_interval);
    assert_true(a->pss_max_rss == b->pss_max_rss);
    assert_true(a->census_max_memory == b->census_max_memory);
    assert_int_equal(a->cmdline, b->cmdline);
    assert_string_equal(a->group, b->group);
    assert_true(a->history == b->history);
    assert_true(a->history_max_memory == b->history_max_memory);
    assert_int_equal(a->suspect_censuses, b->suspect_censuses);
}

/* Writes len bytes to a new temporary file and returns its path (the caller unlinks and frees
 * it). */
static char *write_tmp(const char *text, size_t len)
{
    const char *dir = getenv("TMPDIR");
    char *path;
    assert_true(asprintf(&path, "%s/test_config.XXXXXX", dir && *dir ? dir : "/tmp") > 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, text + off, len - off);
        assert_true(k > 0);
        off += (size_t)k;
    }
    close(fd);
    return path;
}

/* Loads text as a config file onto c. The temporary path goes to ret_path when asked for, so
 * messages that name it can be checked; the file itself is removed here. */
static int load_text(Config *c, const char *text, char *err, size_t errlen, char **ret_path)
{
    char *path = write_tmp(text, strlen(text));
    int r = config_load_file(c, path, err, errlen);
    unlink(path);
    if (ret_path)
        *ret_path = path;
    else
        free(path);
    return r;
}

/* Asserts that the file text fails with exactly `PATH:LINE: what` as its message. */
static void assert_load_fails(const char *text, int expect_r, unsigned line, const char *what)
{
    Config c, before;
    config_init(&c);
    assert_int_equal(config_set(&c, "pid", "42", NULL, 0), 0);
    assert_int_equal(config_copy(&before, &c), 0);
    char err[1024], *path, *expect;
    assert_int_equal(load_text(&c, text, err, sizeof(err), &path), expect_r);
    assert_true(asprintf(&expect, "%s:%u: %s", path, line, what) > 0);
    assert_string_equal(err, expect);
    assert_config_equal(&c, &before);
    free(expect);
    free(path);
    config_done(&c);
    config_done(&before);
}

static void defaults(void **state)
{
    Config c;
    config_init(&c);
    assert_string_equal(c.listen, "127.0.0.1:9100");
    assert_null(c.pids);
    assert_int_equal(c.npids, 0);
    assert_null(c.matches);
    assert_int_equal(c.nmatches, 0);
    assert_false(c.all);
    assert_true(c.interval == 1.0);
    assert_true(c.census_interval == 60.0);
    assert_true(c.gc_poll_interval == 0.05);
    assert_true(c.discovery_interval == 5.0);
    assert_int_equal(c.log_level, LOG_LEVEL_INFO);
    assert_int_equal(c.top_types, 20);
    assert_true(c.max_census_pause == 0.05);
    assert_true(c.max_census_pause_on_demand == 1.0);
    assert_true(c.census_min_interval == 10.0);
    assert_string_equal(c.census_match, "");
    assert_true(c.pss_interval == 30.0);
    assert_true(c.pss_max_rss == 4ULL << 30);
    assert_true(c.census_max_memory == 1ull << 30);
    assert_int_equal(c.cmdline, CMDLINE_REDACTED);
    assert_true(c.history == 3600.0);
    assert_true(c.history_max_memory == 3ull << 20);
    assert_int_equal(c.suspect_censuses, 3);
    config_done(&c);
    /* A second config_done() must find nothing left to free. */
    config_done(&c);
    assert_null(c.pids);
    assert_null(c.matches);
}

/* Sets key to value on a default Config and checks the outcome; on failure also that nothing
 * changed. */
static void expect_set(const char *key, const char *value, bool ok)
{
    Config c, before;
    char err[512] = "untouched";
    config_init(&c);
    assert_int_equal(config_copy(&before, &c), 0);
    int r = config_set(&c, key, value, err, sizeof(err));
    if (ok != (r == 0))
        fail_msg("%s = \"%s\": expected %s, got %d (%s)", key, value, ok ? "success" : "failure", r,
                 err);
    if (ok) {
        assert_string_equal(err, "");
    } else {
        assert_int_equal(r, -EINVAL);
        /* Every message names the key it is about. */
        assert_non_null(strstr(err, key));
        assert_config_equal(&c, &before);
    }
    config_done(&c);
    config_done(&before);
}

typedef struct Case {
    const char *key, *value;
    bool ok;
} Case;

static void run_cases(const Case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_set(cases[i].key, cases[i].value, cases[i].ok);
}

static void seconds_keys(void **state)
{
    static const Case cases[] = {
        {"interval", "0.01", true},
        {"interval", "3600", true},
        {"interval", "1", true},
        {"interval", "1e1", true},
        {"interval", "0.0099", false},
        {"interval", "3600.001", false},
        {"interval", "0", false},
        {"interval", "-1", false},
        {"interval", "abc", false},
        {"interval", "1s", false},
        {"interval", " 1", false},
        {"interval", "inf", false},
        {"interval", "nan", false},
        {"interval", "0x10", false},
        {"interval", "1e999", false},
        {"interval", "", false},
        {"census_interval", "0", true},
        {"census_interval", "0.0001", true},
        {"census_interval", "86400", true},
        {"census_interval", "86400.5", false},
        {"census_interval", "-0.1", false},
        {"census_interval", "x", false},
        {"gc_poll_interval", "0", true},
        {"gc_poll_interval", "0.001", true},
        {"gc_poll_interval", "1", true},
        {"gc_poll_interval", "0.0009", false},
        {"gc_poll_interval", "1.01", false},
        {"gc_poll_interval", "-0.001", false},
        {"discovery_interval", "0.1", true},
        {"discovery_interval", "3600", true},
        {"discovery_interval", "0.09", false},
        {"discovery_interval", "3601", false},
        {"discovery_interval", "0", false},
        {"max_census_pause", "0.001", true},
        {"max_census_pause", "60", true},
        {"max_census_pause", "0.0009", false},
        {"max_census_pause", "60.01", false},
        {"max_census_pause", "0", false},
        {"max_census_pause_on_demand", "0.001", true},
        {"max_census_pause_on_demand", "60", true},
        {"max_census_pause_on_demand", "0", false},
        {"max_census_pause_on_demand", "61", false},
        {"census_min_interval", "0", true},
        {"census_min_interval", "0.1", true},
        {"census_min_interval", "3600", true},
        {"census_min_interval", "0.05", false},
        {"census_min_interval", "3601", false},
        {"census_min_interval", "-1", false},
        {"pss_interval", "0", true},
        {"pss_interval", "0.01", true},
        {"pss_interval", "86400", true},
        {"pss_interval", "0.001", false},
        {"pss_interval", "86401", false},
        {"pss_interval", "x", false},
    };
    run_cases(cases, ARRAY_SIZE(cases));

    /* The value lands in the right field, and a second set replaces it. */
    Config c;
    config_init(&c);
    assert_int_equal(config_set(&c, "interval", "2.5", NULL, 0), 0);
    assert_int_equal(config_set(&c, "census_interval", "0", NULL, 0), 0);
    assert_int_equal(config_set(&c, "gc_poll_interval", "0.5", NULL, 0), 0);
    assert_int_equal(config_set(&c, "discovery_interval", "7", NULL, 0), 0);
    assert_int_equal(config_set(&c, "max_census_pause", "0.25", NULL, 0), 0);
    assert_int_equal(config_set(&c, "interval", "3", NULL, 0), 0);
    assert_true(c.interval == 3.0);
    assert_true(c.census_interval == 0.0);
    assert_true(c.gc_poll_interval == 0.5);
    assert_true(c.discovery_interval == 7.0);
    assert_true(c.max_census_pause == 0.25);
    config_done(&c);
}

/* census_match: one regex, checked to compile; "" (quoted in a file) sets the default back. */
static void census_match_key(void **state)
{
    (void)state;
    static const Case cases[] = {
        {"census_match", "^gunicorn: worker", true},
        {"census_match", ".", true},
        {"census_match", "", true},
        {"census_match", "(unclosed", false},
        {"census_match", "a{2,1}", false},
    };
    run_cases(cases, ARRAY_SIZE(cases));

    char err[512];
    Config c;
    config_init(&c);
    assert_int_equal(config_set(&c, "census_match", "^celery", err, sizeof(err)), 0);
    assert_string_equal(c.census_match, "^celery");
    assert_int_equal(config_set(&c, "census-match", "worker$", err, sizeof(err)), 0);
    assert_string_equal(c.census_match, "worker$");
    assert_int_equal(config_set(&c, "census_match", "(x", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "census_match: \"(x\" is not a valid regular expression"));
    assert_string_equal(c.census_match, "worker$");
    /* Longer than the field: refused, not cut. */
    char big[2048];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(config_set(&c, "census_match", big, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is longer than 1023 bytes"));
    assert_string_equal(c.census_match, "worker$");

    const char text[] = "census_match = \"\"\n";
    char *path = write_tmp(text, strlen(text));
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.census_match, "");
    unlink(path);
    free(path);
    config_done(&c);
}

/* pss_max_rss: bytes, with K/M/G/T for powers of 1024; 0 means no limit. */
static void size_key(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint64_t bytes;
    } good[] = {
        {"0", 0},
        {"4096", 4096},
        {"1K", 1024},
        {"1k", 1024},
        {"512M", 512ULL << 20},
        {"4G", 4ULL << 30},
        {"4GiB", 4ULL << 30},
        {"4GB", 4ULL << 30},
        {"2T", 2ULL << 40},
        {"16777215T", 16777215ULL << 40},
    };
    static const char *const bad[] = {
        "", "-1", "4X", "G", "4 G", "1.5G", "4Gb2", "0x10", "16777216T", "99999999999999999999999"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        Config c;
        config_init(&c);
        char err[512] = "";
        if (config_set(&c, "pss_max_rss", good[i].value, err, sizeof(err)) != 0)
            fail_msg("pss_max_rss = %s: %s", good[i].value, err);
        assert_true(c.pss_max_rss == good[i].bytes);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        Config c;
        config_init(&c);
        char err[512] = "";
        assert_int_equal(config_set(&c, "pss_max_rss", bad[i], err, sizeof(err)), -EINVAL);
        assert_true(strncmp(err, "pss_max_rss: ", 13) == 0);
        assert_true(c.pss_max_rss == 4ULL << 30);
    }
}

static void other_scalar_keys(void **state)
{
    static const Case cases[] = {
        {"all", "true", true},
        {"all", "false", true},
        {"all", "yes", true},
        {"all", "no", true},
        {"all", "on", true},
        {"all", "off", true},
        {"all", "1", true},
        {"all", "0", true},
        {"all", "TRUE", true},
        {"all", "maybe", false},
        {"all", "2", false},
        {"all", "", false},
        {"log_level", "error", true},
        {"log_level", "warn", true},
        {"log_level", "warning", true},
        {"log_level", "info", true},
        {"log_level", "debug", true},
        {"log_level", "DEBUG", true},
        {"log_level", "loud", false},
        {"log_level", "3", false},
        {"log_level", "", false},
        {"log_level", "debugdebugdebugdebug", false},
        {"top_types", "1", true},
        {"top_types", "1000", true},
        {"top_types", "0", false},
        {"top_types", "1001", false},
        {"top_types", "-1", false},
        {"top_types", "1.5", false},
        {"top_types", "+5", false},
        {"top_types", "99999999999999999999999", false},
        {"top_types", "", false},
    };
    run_cases(cases, ARRAY_SIZE(cases));

    Config c;
    config_init(&c);
    assert_int_equal(config_set(&c, "all", "on", NULL, 0), 0);
    assert_true(c.all);
    assert_int_equal(config_set(&c, "all", "Off", NULL, 0), 0);
    assert_false(c.all);
    assert_int_equal(config_set(&c, "log_level", "debug", NULL, 0), 0);
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(config_set(&c, "log_level", "warning", NULL, 0), 0);
    assert_int_equal(c.log_level, LOG_LEVEL_WARN);
    assert_int_equal(config_set(&c, "top_types", "1000", NULL, 0), 0);
    assert_int_equal(c.top_types, 1000);
    config_done(&c);
}

static void listen_key(void **state)
{
    /* The longest host name RFC 1123 allows (253 bytes) plus ":1" exactly fills listen[256]. */
    char longest[256], too_long[300];
    memset(longest, 'a', 253);
    longest[63] = longest[127] = longest[191] = '.';
    strcpy(longest + 253, ":1");
    assert_int_equal(strlen(longest), 255);
    snprintf(too_long, sizeof(too_long), "%.253s:10", longest);

    const Case cases[] = {
        {"listen", "127.0.0.1:9100", true},
        {"listen", "0.0.0.0:65535", true},
        {"listen", "localhost:1", true},
        {"listen", "[::1]:9100", true},
        {"listen", "[::]:80", true},
        {"listen", "[fe80::1%eth0]:9100", true},
        {"listen", "metrics.example.org:9100", true},
        {"listen", "metrics.example.org.:9100", true},
        {"listen", "host-1:9100", true},
        {"listen", longest, true},
        {"listen", too_long, false},
        {"listen", "127.0.0.1", false},
        {"listen", "127.0.0.1:", false},
        {"listen", "127.0.0.1:0", false},
        {"listen", "127.0.0.1:65536", false},
        {"listen", "127.0.0.1:http", false},
        {"listen", "127.0.0.1:-1", false},
        {"listen", ":9100", false},
        {"listen", "::1:9100", false},
        {"listen", "[::1]9100", false},
        {"listen", "[::1]", false},
        {"listen", "[::1:9100", false},
        {"listen", "[]:9100", false},
        {"listen", "[zz::1]:9100", false},
        {"listen", "[127.0.0.1]:9100", false},
        {"listen", "[fe80::1%]:9100", false},
        {"listen", "256.1.1.1:9100", false},
        {"listen", "1.2.3:9100", false},
        {"listen", "host.123:9100", false},
        {"listen", "bad_host:9100", false},
        {"listen", "-bad:9100", false},
        {"listen", "bad-:9100", false},
        {"listen", "a..b:9100", false},
        {"listen", "a b:9100", false},
        {"listen", "", false},
    };
    run_cases(cases, ARRAY_SIZE(cases));

    /* Stored as given: names are not resolved here, that is the HTTP server's business. */
    Config c;
    config_init(&c);
    assert_int_equal(config_set(&c, "listen", "[::1]:9187", NULL, 0), 0);
    assert_string_equal(c.listen, "[::1]:9187");
    config_done(&c);

    char err[512];
    config_init(&c);
    assert_int_equal(config_set(&c, "listen", "::1:9100", err, sizeof(err)), -EINVAL);
    assert_string_equal(err,
                        "listen: \"::1:9100\": an IPv6 address must be in brackets, as [::1]:9100");
    assert_int_equal(config_set(&c, "listen", "127.0.0.1:0", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "listen: \"127.0.0.1:0\": the port must be a number from 1 to 65535");
    config_done(&c);
}

static void pid_key(void **state)
{
    static const Case cases[] = {
        {"pid", "1", true},        {"pid", "4194304", true}, {"pid", "0", false},
        {"pid", "4194305", false}, {"pid", "-1", false},     {"pid", "abc", false},
        {"pid", "12x", false},     {"pid", "", false},       {"pid", "99999999999999999999", false},
    };
    run_cases(cases, ARRAY_SIZE(cases));

    /* Repeats append; the same PID twice is one target. */
    Config c;
    config_init(&c);
    assert_int_equal(config_set(&c, "pid", "10", NULL, 0), 0);
    assert_int_equal(config_set(&c, "pid", "20", NULL, 0), 0);
    assert_int_equal(config_set(&c, "pid", "10", NULL, 0), 0);
    assert_int_equal(config_set(&c, "pid", "30", NULL, 0), 0);
    assert_int_equal(c.npids, 3);
    assert_int_equal(c.pids[0], 10);
    assert_int_equal(c.pids[1], 20);
    assert_int_equal(c.pids[2], 30);
    config_done(&c);
}

static void match_key(void **state)
{
    static const Case cases[] = {
        {"match", "^python[0-9.]*$", true},
        {"match", "gunicorn|uwsgi", true},
        {"match", "a#b", true},
        {"match", "(", false},
        {"match", "[a", false},
        {"match", "a{1", false},
        {"match", "", false},
    };
    run_cases(cases, ARRAY_SIZE(cases));

    Config c;
    char err[512];
    config_init(&c);
    assert_int_equal(config_set(&c, "match", "^a", NULL, 0), 0);
    assert_int_equal(config_set(&c, "match", "^b", NULL, 0), 0);
    assert_int_equal(config_set(&c, "match", "^a", NULL, 0), 0);
    assert_int_equal(c.nmatches, 2);
    assert_string_equal(c.matches[0], "^a");
    assert_string_equal(c.matches[1], "^b");
    assert_int_equal(config_set(&c, "match", "(", err, sizeof(err)), -EINVAL);
    /* The regex library's own explanation follows ours. */
    assert_true(strncmp(err, "match: \"(\" is not a valid regular expression: ", 46) == 0);
    assert_true(strlen(err) > 46);
    assert_int_equal(c.nmatches, 2);
    config_done(&c);
}

static void set_messages(void **state)
{
    Config c;
    char err[512];
    config_init(&c);

    assert_int_equal(config_set(&c, "interval", "abc", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "interval: \"abc\" is not a number of seconds");
    assert_int_equal(config_set(&c, "interval", "0.001", err, sizeof(err)), -EINVAL);
    assert_string_equal(
        err, "interval: \"0.001\" is out of range: it must be from 0.01 to 3600 seconds");
    assert_int_equal(config_set(&c, "gc_poll_interval", "2", err, sizeof(err)), -EINVAL);
    assert_string_equal(
        err, "gc_poll_interval: \"2\" is out of range: it must be 0 (off) or from 0.001 to 1 "
             "seconds");
    assert_int_equal(config_set(&c, "census_interval", "-1", err, sizeof(err)), -EINVAL);
    assert_string_equal(
        err, "census_interval: \"-1\" is out of range: it must be from 0 (off) to 86400 seconds");
    assert_int_equal(config_set(&c, "top_types", "0", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "top_types: \"0\" is out of range: it must be from 1 to 1000");
    assert_int_equal(config_set(&c, "all", "maybe", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "all: \"maybe\" is not a boolean (true/false, yes/no, on/off, 1/0)");
    assert_int_equal(config_set(&c, "log_level", "loud", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "log_level: \"loud\" is not one of error, warn, info, debug");
    assert_int_equal(config_set(&c, "pid", "0", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "pid: \"0\" is out of range: process IDs are 1 to 4194304");
    assert_int_equal(config_set(&c, "interval", "", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "interval: no value given");

    /* Unknown keys, with a suggestion only when the typo is close to a real key. */
    assert_int_equal(config_set(&c, "intervall", "1", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "unknown key \"intervall\" (did you mean \"interval\"?)");
    assert_int_equal(config_set(&c, "frobnicate", "1", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "unknown key \"frobnicate\"");
    assert_int_equal(config_set(&c, "", "1", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "unknown key \"\"");

    /* Control characters in a value are shown escaped, and a long value is cut short. */
    assert_int_equal(config_set(&c, "interval", "1\x1b[2J\t", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "interval: \"1\\x1b[2J\\t\" is not a number of seconds");
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(config_set(&c, "interval", big, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "xxx...\" is not a number of seconds"));
    assert_true(strlen(err) < 150);

    /* A tiny buffer is still NUL-terminated, and none at all is accepted. */
    char small[8];
    assert_int_equal(config_set(&c, "interval", "abc", small, sizeof(small)), -EINVAL);
    assert_string_equal(small, "interva");
    assert_int_equal(config_set(&c, "interval", "abc", NULL, 0), -EINVAL);

    /* Flag names with '-' reach the same keys. */
    assert_int_equal(config_set(&c, "census-interval", "30", err, sizeof(err)), 0);
    assert_true(c.census_interval == 30.0);
    assert_int_equal(config_set(&c, "log-level", "x", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "log_level: \"x\" is not one of error, warn, info, debug");

    /* Nothing above that failed changed anything. */
    Config d;
    config_init(&d);
    d.census_interval = 30.0;
    assert_config_equal(&c, &d);
    config_done(&c);
}

static void file_all_keys(void **state)
{
    static const char text[] = "\xef\xbb\xbf# every key, with comments and blank lines\n"
                               "\n"
                               "   # an indented comment\n"
                               "listen = [::1]:9187\n"
                               "pid = 100\r\n"
                               "\tpid=200\t\n"
                               "match = ^python3(\\.[0-9]+)?$\n"
                               "all = yes\n"
                               "interval = 0.5\n"
                               "census_interval = 0\n"
                               "gc_poll_interval = 0.002\n"
                               "discovery_interval = 10\n"
                               "log_level = debug\n"
                               "top_types = 50\n"
                               "max_census_pause = 0.2"; /* no final newline */
    Config c;
    char err[512] = "";
    config_init(&c);
    assert_int_equal(load_text(&c, text, err, sizeof(err), NULL), 0);
    assert_string_equal(err, "");
    assert_string_equal(c.listen, "[::1]:9187");
    assert_int_equal(c.npids, 2);
    assert_int_equal(c.pids[0], 100);
    assert_int_equal(c.pids[1], 200);
    assert_int_equal(c.nmatches, 1);
    assert_string_equal(c.matches[0], "^python3(\\.[0-9]+)?$");
    assert_true(c.all);
    assert_true(c.interval == 0.5);
    assert_true(c.census_interval == 0.0);
    assert_true(c.gc_poll_interval == 0.002);
    assert_true(c.discovery_interval == 10.0);
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c.top_types, 50);
    assert_true(c.max_census_pause == 0.2);
    config_done(&c);

    /* A file of only comments changes nothing. */
    Config d;
    config_init(&c);
    config_init(&d);
    assert_int_equal(load_text(&c, "# nothing\n\n  \n", err, sizeof(err), NULL), 0);
    assert_config_equal(&c, &d);
    config_done(&c);

    /* An empty one (or blanks only) is refused: caught half-written it would widen a reload to
     * --all. */
    static const char *const empty[] = {"", "\n", "  \n\t\r\n"};
    for (size_t i = 0; i < ARRAY_SIZE(empty); i++) {
        char *path, *expect;
        config_init(&c);
        assert_int_equal(config_set(&c, "match", "^worker$", NULL, 0), 0);
        assert_int_equal(load_text(&c, empty[i], err, sizeof(err), &path), -ENODATA);
        assert_true(asprintf(&expect,
                             "%s: the config file is empty; refused, as it may be half-written "
                             "(to run on the defaults, leave a comment line in it)",
                             path) > 0);
        assert_string_equal(err, expect);
        assert_int_equal(c.nmatches, 1);
        free(expect);
        free(path);
        config_done(&c);
    }
}

static void file_overrides_and_duplicates(void **state)
{
    Config c;
    char err[512];
    config_init(&c);
    /* What c holds already, as main would have it from an earlier source. */
    assert_int_equal(config_set(&c, "pid", "1", NULL, 0), 0);
    assert_int_equal(config_set(&c, "match", "^x", NULL, 0), 0);
    assert_int_equal(config_set(&c, "top_types", "7", NULL, 0), 0);

    assert_int_equal(load_text(&c,
                               "interval = 2\n"
                               "interval = 3\n"
                               "log_level = error\n"
                               "log_level = warn\n"
                               "pid = 2\n"
                               "pid = 3\n"
                               "match = ^y\n"
                               "match = ^z\n",
                               err, sizeof(err), NULL),
                     0);
    assert_true(c.interval == 3.0);
    assert_int_equal(c.log_level, LOG_LEVEL_WARN);
    assert_int_equal(c.top_types, 7); /* not in the file: kept */
    assert_int_equal(c.npids, 3);
    assert_int_equal(c.pids[0], 1);
    assert_int_equal(c.pids[1], 2);
    assert_int_equal(c.pids[2], 3);
    assert_int_equal(c.nmatches, 3);
    assert_string_equal(c.matches[0], "^x");
    assert_string_equal(c.matches[1], "^y");
    assert_string_equal(c.matches[2], "^z");
    config_done(&c);
}

static void file_syntax_errors(void **state)
{
    assert_load_fails("interval = 1\n\ngarbage\n", -EINVAL, 3,
                      "expected \"key = value\", found \"garbage\"");
    assert_load_fails("[section]\n", -EINVAL, 1, "expected \"key = value\", found \"[section]\"");
    assert_load_fails("  = 5\n", -EINVAL, 1, "a key is missing before \"=\"");
    assert_load_fails("intervall = 5\n", -EINVAL, 1,
                      "unknown key \"intervall\" (did you mean \"interval\"?)");
    assert_load_fails("# ok\ninterval = abc\n", -EINVAL, 2,
                      "interval: \"abc\" is not a number of seconds");
    assert_load_fails("interval =\n", -EINVAL, 1, "interval: no value given");
    /* '#' only starts a comment at the beginning of a line, so a trailing one is in the value. */
    assert_load_fails("interval = 5 # seconds\n", -EINVAL, 1,
                      "interval: \"5 # seconds\" is not a number of seconds");
    assert_load_fails("match = \"abc\n", -EINVAL, 1, "the quoted value has no closing quote");
    assert_load_fails("match = \"abc\" def\n", -EINVAL, 1,
                      "text after the closing quote: \" def\"");
    assert_load_fails("match = \"a\\.b\"\n", -EINVAL, 1,
                      "unknown escape \"\\.\" in a quoted value (only \\\" and \\\\ are escapes; "
                      "unquoted values keep backslashes as they are)");
    assert_load_fails("match = \"a\\\xc3\xa9\"\n", -EINVAL, 1,
                      "unknown escape in a quoted value (only \\\" and \\\\ are escapes; "
                      "unquoted values keep backslashes as they are)");
    assert_load_fails("match = \"abc\\\n", -EINVAL, 1, "the quoted value has no closing quote");
    assert_load_fails("all = true\nall = \"\"\n", -EINVAL, 2, "all: no value given");
    assert_load_fails("pid = 1\nx = \xff\n", -EINVAL, 2, "not valid UTF-8");
    assert_load_fails("pid = 1\nx = \xc0\xaf\n", -EINVAL, 2, "not valid UTF-8"); /* overlong */

    /* A NUL byte cannot go through load_text()'s C string. */
    static const char nul[] = "pid = 1\npid = 2\0\n";
    char *path = write_tmp(nul, sizeof(nul) - 1), *expect, err[512];
    Config c;
    config_init(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -EINVAL);
    assert_true(asprintf(&expect, "%s:2: contains a NUL byte; this is not a text file", path) > 0);
    assert_string_equal(err, expect);
    assert_int_equal(c.npids, 0);
    unlink(path);
    free(path);
    free(expect);
    config_done(&c);
}

static void file_quoting(void **state)
{
    Config c;
    char err[512];
    config_init(&c);
    assert_int_equal(load_text(&c,
                               "match = \"  spaced  \"\n"
                               "match = \"a\\\"b\\\\c\"\n"
                               "match = a\"b\n"
                               "listen = \"localhost:9100\"   \n"
                               "log_level = \"debug\"\n",
                               err, sizeof(err), NULL),
                     0);
    assert_int_equal(c.nmatches, 3);
    assert_string_equal(c.matches[0], "  spaced  ");
    assert_string_equal(c.matches[1], "a\"b\\c");
    assert_string_equal(c.matches[2], "a\"b"); /* a quote inside an unquoted value is kept */
    assert_string_equal(c.listen, "localhost:9100");
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    config_done(&c);
}

static void file_hash_in_regex(void **state)
{
    Config c;
    char err[512];
    config_init(&c);
    assert_int_equal(load_text(&c,
                               "# a comment\n"
                               "match = ^worker#[0-9]+$\n"
                               "  #match = ^not-this$\n"
                               "match = \"#leading\"\n"
                               "match=a # b\n",
                               err, sizeof(err), NULL),
                     0);
    assert_int_equal(c.nmatches, 3);
    assert_string_equal(c.matches[0], "^worker#[0-9]+$");
    assert_string_equal(c.matches[1], "#leading");
    assert_string_equal(c.matches[2], "a # b");
    config_done(&c);
}

static void file_line_length(void **state)
{
    /* "match = " plus 4088 letters is exactly CONFIG_LINE_MAX bytes: allowed as a line, and
     * refused only as a regex (longer than CONFIG_REGEX_MAX), which says the line was read. */
    size_t prefix = strlen("match = ");
    char *text = malloc(CONFIG_LINE_MAX + 16);
    memcpy(text, "match = ", prefix);
    memset(text + prefix, 'a', CONFIG_LINE_MAX - prefix);
    strcpy(text + CONFIG_LINE_MAX, "\n");

    Config c;
    char err[512];
    config_init(&c);
    assert_int_equal(load_text(&c, text, err, sizeof(err), NULL), -EINVAL);
    assert_non_null(strstr(err, "is longer than 512 bytes"));
    assert_int_equal(c.nmatches, 0);
    config_done(&c);

    /* One byte more is refused, whatever the line holds. */
    memmove(text + 1, text, CONFIG_LINE_MAX + 2);
    text[0] = ' ';
    assert_load_fails(text, -EINVAL, 1, "line is longer than 4096 bytes");
    text[0] = '#';
    assert_load_fails(text, -EINVAL, 1, "line is longer than 4096 bytes");
    free(text);
}

static void file_errors_from_the_system(void **state)
{
    Config c, before;
    char err[512], *expect;
    config_init(&c);
    assert_int_equal(config_set(&c, "pid", "9", NULL, 0), 0);
    assert_int_equal(config_copy(&before, &c), 0);

    assert_int_equal(config_load_file(&c, "/nonexistent/pymemd.conf", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "/nonexistent/pymemd.conf: cannot open the config file: No such "
                             "file or directory");
    assert_config_equal(&c, &before);

    assert_int_equal(config_load_file(&c, "/", err, sizeof(err)), -EISDIR);
    assert_string_equal(err, "/: is a directory, not a config file");

    /* Not regular files: refused at once, never waited on. A FIFO without a writer would block
     * a plain open() for ever; /dev/zero would never end. */
    const char *dir = getenv("TMPDIR");
    char *fifo;
    assert_true(
        asprintf(&fifo, "%s/test_config.fifo.%d", dir && *dir ? dir : "/tmp", (int)getpid()) > 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(config_load_file(&c, fifo, err, sizeof(err)), -EINVAL);
    assert_true(asprintf(&expect,
                         "%s: is a FIFO, not a regular file; the config file must be a regular "
                         "file",
                         fifo) > 0);
    assert_string_equal(err, expect);
    free(expect);
    unlink(fifo);
    free(fifo);
    assert_int_equal(config_load_file(&c, "/dev/zero", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/dev/zero: is a character device, not a regular file; the config "
                             "file must be a regular file");
    assert_config_equal(&c, &before);

    /* Exactly 1 MiB of comments is fine; one byte more is not. */
    size_t n = CONFIG_FILE_MAX + 1;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i += 64) {
        memset(big + i, ' ', MIN((size_t)64, n - i));
        big[i] = '#';
        if (i + 63 < n)
            big[i + 63] = '\n';
    }
    char *path = write_tmp(big, CONFIG_FILE_MAX);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
    unlink(path);
    free(path);
    path = write_tmp(big, n);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -EFBIG);
    assert_true(asprintf(&expect, "%s: larger than 1048576 bytes (1 MiB); is this the config file?",
                         path) > 0);
    assert_string_equal(err, expect);
    unlink(path);
    free(path);
    free(expect);
    free(big);

    assert_config_equal(&c, &before);
    config_done(&c);
    config_done(&before);
}

/* A file that goes wrong late must not leave its early lines applied: c keeps its values and
 * its very allocations. */
static void failed_load_changes_nothing(void **state)
{
    Config c, snapshot;
    char err[512];
    config_init(&c);
    assert_int_equal(config_set(&c, "pid", "5", NULL, 0), 0);
    assert_int_equal(config_set(&c, "match", "^m", NULL, 0), 0);
    assert_int_equal(config_set(&c, "interval", "9", NULL, 0), 0);
    assert_int_equal(config_copy(&snapshot, &c), 0);
    pid_t *pids = c.pids;
    char **matches = c.matches;

    assert_int_equal(load_text(&c,
                               "listen = 0.0.0.0:1\n"
                               "pid = 6\n"
                               "match = ^n\n"
                               "all = on\n"
                               "interval = 2\n"
                               "top_types = 1001\n",
                               err, sizeof(err), NULL),
                     -EINVAL);
    assert_non_null(strstr(err, ":6: top_types: \"1001\" is out of range"));
    assert_config_equal(&c, &snapshot);
    assert_ptr_equal(c.pids, pids);
    assert_ptr_equal(c.matches, matches);

    /* And a good load after a bad one works from the same state. */
    assert_int_equal(load_text(&c, "pid = 6\n", err, sizeof(err), NULL), 0);
    assert_int_equal(c.npids, 2);
    assert_true(c.interval == 9.0);
    config_done(&c);
    config_done(&snapshot);
}

static void copy_is_deep(void **state)
{
    Config a, b;
    config_init(&a);
    assert_int_equal(config_set(&a, "pid", "1", NULL, 0), 0);
    assert_int_equal(config_set(&a, "match", "^a", NULL, 0), 0);
    assert_int_equal(config_copy(&b, &a), 0);
    assert_config_equal(&a, &b);
    assert_ptr_not_equal(a.pids, b.pids);
    assert_ptr_not_equal(a.matches, b.matches);
    assert_ptr_not_equal(a.matches[0], b.matches[0]);

    assert_int_equal(config_set(&b, "pid", "2", NULL, 0), 0);
    assert_int_equal(config_set(&b, "match", "^b", NULL, 0), 0);
    strcpy(b.listen, "localhost:1");
    assert_int_equal(a.npids, 1);
    assert_int_equal(a.nmatches, 1);
    assert_string_equal(a.listen, "127.0.0.1:9100");
    config_done(&a);
    assert_int_equal(b.npids, 2);
    assert_string_equal(b.matches[0], "^a");
    config_done(&b);
    config_done(&b);

    /* Copying an empty Config allocates nothing. */
    config_init(&a);
    assert_int_equal(config_copy(&b, &a), 0);
    assert_null(b.pids);
    assert_null(b.matches);
}

static char *shipped_conf_path(void)
{
    /* meson test sets PYMEMD_SOURCE_ROOT; run by hand from the build directory, the example
     * is found from this source file's own location (__FILE__ is relative to it). */
    char *path;
    const char *root = getenv("PYMEMD_SOURCE_ROOT");
    if (root) {
        assert_true(asprintf(&path, "%s/config/pymemd.conf", root) > 0);
        return path;
    }
    char *dir = strdup(__FILE__);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    assert_true(asprintf(&path, "%s/../../config/pymemd.conf", dir) > 0);
    free(dir);
    return path;
}

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    char *text = calloc(CONFIG_FILE_MAX + 1, 1);
    size_t n = fread(text, 1, CONFIG_FILE_MAX, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* True when line is "# key = ...", the shipped file's way of showing a default. */
static bool is_commented_default(const char *line)
{
    if (strncmp(line, "# ", 2) != 0)
        return false;
    size_t k = strspn(line + 2, "abcdefghijklmnopqrstuvwxyz_");
    return k > 0 && strncmp(line + 2 + k, " = ", 3) == 0;
}

static void shipped_conf_defaults(void **state)
{
    static const char *const all_keys[] = {
        "listen",
        "pid",
        "match",
        "all",
        "interval",
        "census_interval",
        "gc_poll_interval",
        "discovery_interval",
        "log_level",
        "top_types",
        "max_census_pause",
        "census_nonblocking",
        "max_census_pause_on_demand",
        "census_min_interval",
        "census_match",
        "pss_interval",
        "pss_max_rss",
        "census_max_memory",
        "cmdline",
        "group",
        "history",
        "history_max_memory",
        "suspect_censuses",
    };
    char *path = shipped_conf_path();
    char *text = read_whole(path);
    char err[512];
    Config c, want;
    config_init(&want);

    /* As shipped, everything is commented out, so loading it changes nothing. */
    config_init(&c);
    if (config_load_file(&c, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_config_equal(&c, &want);
    config_done(&c);

    /* Uncommenting every "# key = value" line must give exactly the built-in defaults. */
    char *uncommented = calloc(strlen(text) + 1, 1), *o = uncommented;
    unsigned shown = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (is_commented_default(line)) {
            line += 2;
            n -= 2;
            shown++;
        }
        memcpy(o, line, n);
        o += n;
        line += n;
    }
    *o = '\0';
    /* pid, match and census_match have no default value to show */
    assert_int_equal(shown, ARRAY_SIZE(all_keys) - 3);

    config_init(&c);
    char *tmp = write_tmp(uncommented, strlen(uncommented));
    if (config_load_file(&c, tmp, err, sizeof(err)) != 0)
        fail_msg("%s (uncommented %s)", err, path);
    assert_config_equal(&c, &want);
    config_done(&c);
    unlink(tmp);
    free(tmp);

    /* Every key appears, as a default ("# key = ") or an example ("#key = "). */
    for (size_t i = 0; i < ARRAY_SIZE(all_keys); i++) {
        char as_default[64], as_example[64];
        snprintf(as_default, sizeof(as_default), "\n# %s = ", all_keys[i]);
        snprintf(as_example, sizeof(as_example), "\n#%s = ", all_keys[i]);
        if (!strstr(text, as_default) && !strstr(text, as_example))
            fail_msg("%s does not mention key %s", path, all_keys[i]);
    }
    /* The examples are valid too. */
    for (char *line = strstr(text, "\n#"); line; line = strstr(line + 1, "\n#")) {
        if (line[2] >= 'a' && line[2] <= 'z') {
            char *nl = strchr(line + 2, '\n');
            char *ex = strndup(line + 2, nl ? (size_t)(nl - line - 2) : strlen(line + 2));
            char *eq = strstr(ex, " = ");
            assert_non_null(eq);
            *eq = '\0';
            config_init(&c);
            if (config_set(&c, ex, eq + 3, err, sizeof(err)) != 0)
                fail_msg("example in %s: %s", path, err);
            config_done(&c);
            free(ex);
        }
    }

    free(uncommented);
    free(text);
    free(path);
}

/* group: a template checked at set time (file, flag, reload alike), the old value kept on
 * error. */
static void group_key(void **state)
{
    Config c;
    char err[512];
    config_init(&c);
    assert_string_equal(c.group, "{top_python_ancestor}");
    assert_int_equal(config_set(&c, "group", "{unit}/{top_python_ancestor}", err, sizeof(err)), 0);
    assert_string_equal(c.group, "{unit}/{top_python_ancestor}");
    assert_int_equal(config_set(&c, "group", "{unit", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "group: \"{\" at byte 1 is not closed");
    assert_string_equal(c.group, "{unit}/{top_python_ancestor}");
    assert_int_equal(config_set(&c, "group", "{podid}", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "group: unknown field {podid} (known: {comm}, {exe_base}, "
                             "{top_python_ancestor}, {unit}, {container_id}, {pod_uid})");
    assert_int_equal(config_set(&c, "group", "", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "group: no value given");
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    memcpy(big, "{comm}", 6);
    assert_int_equal(config_set(&c, "group", big, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "group: the template is 299 bytes, at most 256 are taken");
    /* Exactly the longest a template may be. */
    big[256] = 0;
    assert_int_equal(config_set(&c, "group", big, err, sizeof(err)), 0);
    assert_string_equal(c.group, big);
    /* From a file, with the file's line in the message. */
    static const char text[] = "group = {comm}\ngroup = {exe}\n";
    assert_int_equal(config_load_buffer(&c, "t.conf", text, strlen(text), err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "t.conf:2: group: unknown field {exe}"));
    assert_string_equal(c.group, big);
    config_done(&c);
}

static void cmdline_key(void **state)
{
    static const Case cases[] = {
        {"cmdline", "full", true},   {"cmdline", "redacted", true}, {"cmdline", "hidden", true},
        {"cmdline", "HIDDEN", true}, {"cmdline", "none", false},    {"cmdline", "", false},
    };
    run_cases(cases, ARRAY_SIZE(cases));
    Config c;
    char err[256];
    config_init(&c);
    assert_int_equal(config_set(&c, "cmdline", "hidden", err, sizeof(err)), 0);
    assert_int_equal(c.cmdline, CMDLINE_HIDDEN);
    assert_int_equal(config_set(&c, "cmdline", "secret", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "cmdline: \"secret\" is not one of full, redacted, hidden");
    assert_int_equal(c.cmdline, CMDLINE_HIDDEN);
    config_done(&c);
}

/* Regular expressions are bounded before regcomp() sees them: the issue's pathological pattern
 * (14 s and 1 GiB in glibc) is refused, ordinary ones of the same shape are not. */
static void regex_bounds(void **state)
{
    char err[512];
    Config c;
    config_init(&c);
    /* Refused for both keys that take a regex, with the reason. */
    assert_int_equal(config_set(&c, "match", "(.{0,1000}){0,100}", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "match: \"(.{0,1000}){0,100}\" repeats a part more than 255 times; "
                             "pymemd refuses it, it would be too costly to compile");
    assert_int_equal(
        config_set(&c, "census_match", "((a{0,32767}){0,32767}){0,32767}", err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "too costly to compile"));
    assert_int_equal(config_set(&c, "match", "(x{2}){2}{2}{2}{2}{2}{2}{2}{2}{2}", err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "too costly to compile"));
    /* Alternatives add up, a bound multiplies what precedes it: 20 x 149 copies, over 2000. */
    assert_int_equal(config_set(&c, "match", "(abcdefghij|klmnopqrst){0,150}", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(config_set(&c, "match", "(abcdefghij|klmnopqrst){0,40}", err, sizeof(err)), 0);
    /* A brace inside brackets or escaped is a character, not a bound. */
    assert_int_equal(config_set(&c, "match", "[{]999999}", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "match", "a\\{999999}", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "match", "[]a]{1,200}", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "match", "[[:alpha:]]{1,2000}", err, sizeof(err)), -EINVAL);
    /* Within the bounds: 255 repetitions (POSIX's smallest RE_DUP_MAX), not one more. */
    assert_int_equal(config_set(&c, "match", ".{0,255}", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "match", ".{0,256}", err, sizeof(err)), -EINVAL);
    assert_int_equal(config_set(&c, "match", "^python3(\\.[0-9]+)?( .*)?$", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "census_match", "(ab){1,10}", err, sizeof(err)), 0);
    /* ... but not {m,n} over a part itself repeated. */
    assert_int_equal(config_set(&c, "census_match", "(a{1,10}){1,10}", err, sizeof(err)), -EINVAL);

    /* Length: CONFIG_REGEX_MAX bytes, not one more. */
    char long_re[CONFIG_REGEX_MAX + 2];
    memset(long_re, 'a', sizeof(long_re) - 1);
    long_re[CONFIG_REGEX_MAX] = 0;
    assert_int_equal(config_set(&c, "match", long_re, err, sizeof(err)), 0);
    long_re[CONFIG_REGEX_MAX] = 'a';
    long_re[CONFIG_REGEX_MAX + 1] = 0;
    assert_int_equal(config_set(&c, "match", long_re, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is longer than 512 bytes"));

    /* Nesting: CONFIG_REGEX_DEPTH groups, not one more. */
    char deep[2 * CONFIG_REGEX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < CONFIG_REGEX_DEPTH; i++)
        deep[n++] = '(';
    deep[n++] = 'a';
    for (int i = 0; i < CONFIG_REGEX_DEPTH; i++)
        deep[n++] = ')';
    deep[n] = 0;
    assert_int_equal(config_set(&c, "match", deep, err, sizeof(err)), 0);
    memmove(deep + 1, deep, n + 1);
    deep[0] = '(';
    strcat(deep, ")");
    assert_int_equal(config_set(&c, "match", deep, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "nests groups too deeply"));

    /* Still a syntax check after the bounds. */
    assert_int_equal(config_set(&c, "match", "(a", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is not a valid regular expression"));
    config_done(&c);
}

/* census_max_memory takes a size the way systemd's MemoryMax= does. */
static void census_max_memory_sizes(void **state)
{
    static const struct {
        const char *v;
        uint64_t want; /* 0: refused */
    } cases[] = {
        {"512M", 512ull << 20},
        {"2G", 2ull << 30},
        {"2GiB", 2ull << 30},
        {"16777216", 16ull << 20},
        {"1024G", 1024ull << 30},
        {"1T", 1ull << 40},
        {"65536K", 64ull << 20},
        {"15M", 0},
        {"1025G", 0},
        {"1.5G", 0},
        /* one size syntax for every size key (see size_key): a lower-case unit, "B" after it */
        {"2g", 2ull << 30},
        {"2GB", 2ull << 30},
        {"G", 0},
        {"-1G", 0},
        {"99999999999999999999999G", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        Config c;
        char err[512];
        config_init(&c);
        int k = config_set(&c, "census_max_memory", cases[i].v, err, sizeof(err));
        if (cases[i].want) {
            if (k != 0)
                fail_msg("%s: %s", cases[i].v, err);
            assert_true(c.census_max_memory == cases[i].want);
        } else {
            assert_int_equal(k, -EINVAL);
            assert_non_null(strstr(err, "census_max_memory"));
            assert_true(c.census_max_memory == 1ull << 30);
        }
        config_done(&c);
    }
}

/* Patterns glibc's regcomp() would take seconds to minutes and gigabytes to compile are refused
 * before it sees them, by key and in a file; found by tests/fuzz/fuzz_config, whose inputs (an
 * interval of 9999, and one of 19999 written "{,19999}"; a run of '+', each doubling the compiled
 * pattern; the same after an unmatched
 * ')', an ordinary character) are among the cases, with their neighbours: intervals over loops,
 * loops over loops. Patterns people write still compile. */
static void costly_regexes_are_refused(void **state)
{
    static const char *const costly[] = {
        "^/Usr{1,9999}hon3 .*worker#1",
        "e^/Usr{,19999}hon3 .*worker#1", /* "{,n}" is "{0,n}" to glibc */
        "(a{,20}){,20}",
        ("rker#_mat++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++"
         "++++++++++++++++++++++++++++++++++ch = g = 25\\\\\\\\\\\\\\= 2G"),
        "a{1,256}",
        "(a{1,255}){1,255}",
        "a{1,1001}",
        "(a{1,45}){1,45}",
        "(((a*)+){1,8}){1,8}",
        "pss_max_r++++)++*++++++++listen = [::1]:9258",
        "(a*){1,120}",
        "a*++++++++",
        "a{1,255}b{1,255}c{1,255}d{1,255}e{1,255}f{1,255}g{1,255}h{1,255}i{1,255}",
        "((((((((((a{1,20})+)+)+)+)+)+)+)+)+)",
        "^/usr/++++++++)++++++++++++++++++)++++++++++++++++++++++++++++++++++++++binpid",
        "(((((((((((((((((((((((((((((((((x)))))))))))))))))))))))))))))))))", /* 33 deep */
        "a+++++++++++",
    };
    static const char *const fine[] = {
        "^/usr/bin/python3",
        "gunicorn: worker \\[[a-z]+\\]",
        "a{1,255}",
        "(a|b|c|d|e){1,100}",
        "[[:alpha:]]{2,5}[]x]{3}[^]{}]+",
        "((((((((((((((((((((((((((((((((x))))))))))))))))))))))))))))))))", /* 32 deep */
        "x{2,}y",
        "x{,255}y",
        "^python.*?worker",
        "(a{1,255})+",
        "((a*)+)*",
        "(a|b)*c+d?",
        "a{1,255}b{1,255}c{1,255}d{1,255}e{1,255}f{1,255}g{1,255}",
    };
    char err[512], text[600];
    for (size_t i = 0; i < ARRAY_SIZE(costly); i++) {
        Config c;
        config_init(&c);
        if (config_set(&c, "match", costly[i], err, sizeof(err)) != -EINVAL)
            fail_msg("match = %s was not refused", costly[i]);
        assert_non_null(strstr(err, "too costly to compile"));
        assert_int_equal(config_set(&c, "census_match", costly[i], err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "census_match: "));
        snprintf(text, sizeof(text), "pid = 2\nmatch = %s\n", costly[i]);
        assert_int_equal(config_load_buffer(&c, "fuzz.conf", text, strlen(text), err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "fuzz.conf:2: match: "));
        assert_int_equal(c.npids, 0); /* a refused file changes nothing */
        assert_int_equal(c.nmatches, 0);
        config_done(&c);
    }
    for (size_t i = 0; i < ARRAY_SIZE(fine); i++) {
        Config c;
        config_init(&c);
        if (config_set(&c, "match", fine[i], err, sizeof(err)) != 0)
            fail_msg("match = %s: %s", fine[i], err);
        assert_int_equal(c.nmatches, 1);
        assert_string_equal(c.matches[0], fine[i]);
        config_done(&c);
    }
}

/* config_load_buffer() is config_load_file() without the file: the same keys, messages naming
 * the buffer, and no terminating NUL needed. */
static void load_buffer(void **state)
{
    Config c;
    char err[512];
    config_init(&c);
    static const char text[] = "pid = 7\ninterval = 2.5\nlisten = [::1]:9258\nXXXX";
    assert_int_equal(config_load_buffer(&c, "buf", text, sizeof(text) - 5, err, sizeof(err)), 0);
    assert_int_equal(c.npids, 1);
    assert_int_equal(c.pids[0], 7);
    assert_true(c.interval == 2.5);
    assert_string_equal(c.listen, "[::1]:9258");
    assert_int_equal(config_load_buffer(&c, "buf", "interval = x\n", 13, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "buf:1: interval: \"x\" is not a number of seconds");
    assert_true(c.interval == 2.5);
    assert_int_equal(config_load_buffer(&c, "empty", NULL, 0, err, sizeof(err)), 0);
    config_done(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(seconds_keys),
        cmocka_unit_test(other_scalar_keys),
        cmocka_unit_test(census_match_key),
        cmocka_unit_test(size_key),
        cmocka_unit_test(listen_key),
        cmocka_unit_test(pid_key),
        cmocka_unit_test(match_key),
        cmocka_unit_test(set_messages),
        cmocka_unit_test(file_all_keys),
        cmocka_unit_test(file_overrides_and_duplicates),
        cmocka_unit_test(file_syntax_errors),
        cmocka_unit_test(file_quoting),
        cmocka_unit_test(file_hash_in_regex),
        cmocka_unit_test(file_line_length),
        cmocka_unit_test(file_errors_from_the_system),
        cmocka_unit_test(failed_load_changes_nothing),
        cmocka_unit_test(copy_is_deep),
        cmocka_unit_test(shipped_conf_defaults),
        cmocka_unit_test(census_max_memory_sizes),
        cmocka_unit_test(cmdline_key),
        cmocka_unit_test(group_key),
        cmocka_unit_test(regex_bounds),
        cmocka_unit_test(costly_regexes_are_refused),
        cmocka_unit_test(load_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
