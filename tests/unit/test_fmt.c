/* fmt: top's short units (fmt_short) and rates (fmt_rate): at most five characters before the
 * sign, the unit changed before a number would need a sixth, '-' for what was not read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fmt.h"

#define N(x) ((Num){.ok = true, .v = (x)})

static void check(Num n, unsigned base, bool sign, const char *want)
{
    char buf[FMT_MAX];
    assert_string_equal(fmt_short(buf, n, base, sign), want);
}

static void short_units(void **state)
{
    check((Num){0}, 1024, false, FMT_NONE);
    check((Num){0}, 1024, true, FMT_NONE);
    check(N(0), 1024, false, "0");
    check(N(512), 1024, false, "512");
    check(N(1023.4), 1024, false, "1023");
    check(N(1023.5), 1024, false, "1.0K"); /* rounds to 1024: a unit up */
    check(N(1536), 1024, false, "1.5K");
    check(N(13.6 * 1048576), 1024, false, "13.6M");
    check(N(99.94 * 1048576), 1024, false, "99.9M");
    check(N(99.96 * 1048576), 1024, false, "100M");
    check(N(999.4 * 1048576), 1024, false, "999M");
    check(N(999.6 * 1048576), 1024, false, "1.0G"); /* 0.98 G, never 1000M */
    check(N(1023.9 * 1048576), 1024, false, "1.0G");
    check(N(1e21), 1024, false, "867E");
    check(N(1234567), 1000, false, "1.2M");
    check(N(999), 1000, false, "999");
    check(N(1000), 1000, false, "1.0K");
    /* With a sign: what rounds to nothing is 0. */
    check(N(0.4), 1024, true, "0");
    check(N(-0.4), 1024, true, "0");
    check(N(3 << 20), 1024, true, "+3.0M");
    check(N(-512), 1024, true, "-512");
    check(N(-2500), 1000, true, "-2.5K");
    check(N(-3.0 * 1048576), 1024, false, "-3.0M");
}

static void rates(void **state)
{
    char buf[FMT_MAX];

    assert_string_equal(fmt_rate(buf, (Num){0}), FMT_NONE);
    assert_string_equal(fmt_rate(buf, N(0)), "0.0");
    assert_string_equal(fmt_rate(buf, N(-0.01)), "0.0"); /* never "-0.0" */
    assert_string_equal(fmt_rate(buf, N(0.7)), "0.7");
    assert_string_equal(fmt_rate(buf, N(99.94)), "99.9");
    assert_string_equal(fmt_rate(buf, N(99.96)), "100");
    assert_string_equal(fmt_rate(buf, N(12345)), "12.3K");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(short_units), cmocka_unit_test(rates)};
    fmt_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
