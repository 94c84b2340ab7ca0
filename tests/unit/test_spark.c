/* spark: heights scaled from the smallest to the largest value, columns that take the peak of
 * their share, right alignment, blanks for what was not read, ASCII outside UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spark.h"

#define B1 "\xe2\x96\x81"
#define B2 "\xe2\x96\x82"
#define B4 "\xe2\x96\x84"
#define B5 "\xe2\x96\x85"
#define B8 "\xe2\x96\x88"

static void check(const Num *v, size_t n, size_t width, bool utf8, const char *want)
{
    StrBuf b = {0};
    char *s;

    spark_append(&b, v, n, width, utf8);
    strbuf_append(&b, "", 0);
    s = strbuf_finish(&b, NULL);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

#define K(x)                                                                                       \
    {                                                                                              \
        .ok = true, .v = (x)                                                                       \
    }
#define UNREAD                                                                                     \
    {                                                                                              \
        0                                                                                          \
    }

static void scale(void **state)
{
    /* 0..7 of 7: each height once; right-aligned in 10 columns. */
    Num ramp[] = {K(10), K(11), K(12), K(13), K(14), K(15), K(16), K(17)};
    check(ramp, 8, 10, false, "  _.-=+*#@");
    check(ramp, 8, 8, true,
          B1 "\xe2\x96\x82\xe2\x96\x83\xe2\x96\x84\xe2\x96\x85\xe2\x96\x86\xe2\x96\x87" B8);
    /* A series that does not move lies flat, whatever its level. */
    Num flat[] = {K(5e9), K(5e9), K(5e9)};
    check(flat, 3, 3, true, B1 B1 B1);
    /* A small change against a large whole still shows: the scale is the series' own. */
    Num small[] = {K(1e9), K(1e9 + 1)};
    check(small, 2, 2, false, "_@");
    /* 3.5 of 7 rounds half away from zero, as lround() does. */
    Num half[] = {K(0), K(1), K(2)};
    check(half, 3, 3, true, B1 B5 B8);
}

static void columns(void **state)
{
    /* Eight values in four columns: each column the larger of its two. */
    Num v[] = {K(0), K(7), K(1), K(1), K(0), K(0), K(3), K(2)};
    check(v, 8, 4, false, "@._=");
    /* The scale is the columns': the lowest column lies on the lowest height even when a
     * smaller value went into a taller column. */
    Num peaks[] = {K(0), K(10), K(5), K(6)};
    check(peaks, 4, 2, false, "@_");
    /* Unread values: a column with none read is blank; the others are scaled without them. */
    Num u[] = {K(0), UNREAD, UNREAD, K(4)};
    check(u, 4, 2, false, "_@");
    check(u, 4, 4, true, B1 "  " B8);
    /* Nothing at all: blanks only. */
    check(u, 0, 3, true, "   ");
    Num none[] = {UNREAD, UNREAD};
    check(none, 2, 2, false, "  ");
    (void)B2;
    (void)B4;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(scale), cmocka_unit_test(columns)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
