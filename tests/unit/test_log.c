/* log: level parsing and the per-target rate limit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels),
        cmocka_unit_test(ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
