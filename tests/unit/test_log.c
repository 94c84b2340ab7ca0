/* log: level parsing, the per-target rate limit, and the shape of a line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/log.h"

static void levels(void **state)
{
    assert_int_equal(log_level_from_string("error"), LOG_LEVEL_ERROR);
    assert_int_equal(log_level_from_string("warn"), LOG_LEVEL_WARN);
    assert_int_equal(log_level_from_string("warning"), LOG_LEVEL_WARN);
    assert_int_equal(log_level_from_string("debug"), LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_from_string("loud"), -EINVAL);
}

static void ratelimit(void **state)
{
    LogRateLimit rl = {0};
    unsigned allowed = 0;
    /* 100 messages within one 10 s window: only the burst passes. */
    for (int i = 0; i < 100; i++)
        allowed += log_ratelimit_ok(&rl, 1000.0 + i * 0.01, 10.0, 5);
    assert_int_equal(allowed, 5);
    assert_int_equal(rl.suppressed, 95);
    /* A new window opens after the interval. */
    assert_true(log_ratelimit_ok(&rl, 1011.0, 10.0, 5));
    assert_int_equal(rl.suppressed, 0);
}

/* Logs through log_msg() with stderr sent to a temporary file; returns what was written. */
static char *captured(LogLevel level, const char *msg)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) == 2);
    log_msg(level, "%s", msg);
    fflush(stderr);
    assert_true(dup2(saved, 2) == 2);
    close(saved);
    long n = ftell(tmp);
    rewind(tmp);
    char *out = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

/* Every line has the prefix and level; a message that brings its own newline (libmicrohttpd's
 * do) still makes one line; below the level, nothing. */
static void lines(void **state)
{
    log_set_level(LOG_LEVEL_WARN);
    char *out = captured(LOG_LEVEL_WARN, "http: Error processing request. Closing connection.\n");
    assert_string_equal(out, "pymemd: warn: http: Error processing request. Closing connection.\n");
    free(out);
    out = captured(LOG_LEVEL_ERROR, "plain");
    assert_string_equal(out, "pymemd: error: plain\n");
    free(out);
    out = captured(LOG_LEVEL_INFO, "below the level");
    assert_string_equal(out, "");
    free(out);
    log_set_level(LOG_LEVEL_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels),
        cmocka_unit_test(ratelimit),
        cmocka_unit_test(lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
