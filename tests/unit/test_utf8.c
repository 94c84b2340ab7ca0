/* utf8: valid text passes untouched; everything else becomes U+FFFD, never a split character. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "util/utf8.h"

#define FFFD "\xef\xbf\xbd"

static void check(const char *in, const char *want, size_t size)
{
    char out[128];
    size_t n = utf8_sanitize(out, size, in);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void sanitize(void **state)
{
    check("python3 -m app", "python3 -m app", 128);
    check("w\xc3\xb6rk \xe2\x9c\x93 \xf0\x9f\x90\x8d", "w\xc3\xb6rk \xe2\x9c\x93 \xf0\x9f\x90\x8d",
          128);
    check("a\xff\xfe"
          "b",
          "a" FFFD FFFD "b", 128);
    /* A character cut short by the kernel's 15-byte comm limit. */
    check("w\xc3", "w" FFFD, 128);
    check("\xc0\xaf", FFFD FFFD, 128);                   /* overlong '/' */
    check("\xed\xa0\x80", FFFD FFFD FFFD, 128);          /* a surrogate */
    check("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, 128); /* above U+10FFFF */
    /* Cutting to size never splits a character. */
    check("ab\xc3\xb6", "ab", 4);
    check("ab\xc3\xb6", "ab\xc3\xb6", 5);
    check("", "", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(sanitize)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
