/* debuginfo: blocking and background fetches, against a server that refuses connections. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "elf/debuginfo.h"

/* A build-id no server or cache has. */
static const uint8_t id[20] = {0xde, 0xad, 0xbe, 0xef, 1,  2,  3,  4,  5,  6,
                               7,    8,    9,    10,   11, 12, 13, 14, 15, 16};

static char cache_dir[64];

static int setup(void **state)
{
    snprintf(cache_dir, sizeof(cache_dir), "/tmp/pymemd-test-debuginfo-XXXXXX");
    if (!mkdtemp(cache_dir))
        return -1;
    setenv("DEBUGINFOD_CACHE_PATH", cache_dir, 1);
    /* Port 1 on loopback: nothing listens, the connection is refused at once. */
    setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1", 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cache_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void no_urls(void **state)
{
    char why[96] = "";
    int fd = -1;
    unsetenv("DEBUGINFOD_URLS");
    int k = debuginfo_fetch(id, sizeof(id), 2, &fd, why, sizeof(why));
    setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1", 1);
    if (k == -ENOSYS)
        skip(); /* built without libdebuginfod */
    assert_int_equal(k, -ENOENT);
    assert_string_equal(why, "DEBUGINFOD_URLS is not set");
    assert_int_equal(fd, -1);
}

static void blocking(void **state)
{
    char why[96] = "";
    int fd = -1;
    int k = debuginfo_fetch(id, sizeof(id), 2, &fd, why, sizeof(why));
    if (k == -ENOSYS)
        skip();
    /* Answered in this call: a failure with its reason, never "in progress". */
    assert_true(k < 0);
    assert_int_not_equal(k, -EINPROGRESS);
    assert_true(why[0] != 0);
    assert_int_equal(fd, -1);
}

static void background(void **state)
{
    char why[96] = "";
    int fd = -1;
    unsigned gen = debuginfo_generation();
    debuginfo_set_background(true);
    int k = debuginfo_fetch(id, sizeof(id), 2, &fd, why, sizeof(why));
    if (k == -ENOSYS)
        skip();
    assert_int_equal(k, -EINPROGRESS);
    assert_non_null(strstr(why, "being fetched from debuginfod"));
    /* Asking again while it runs starts nothing new and says the same. */
    k = debuginfo_fetch(id, sizeof(id), 2, &fd, why, sizeof(why));
    assert_true(k == -EINPROGRESS || debuginfo_generation() != gen);

    /* The worker finishes (the fetch is bounded by 2 s; the loop by 30 s). */
    for (int i = 0; i < 3000 && debuginfo_generation() == gen; i++)
        usleep(10000);
    assert_int_equal(debuginfo_generation(), gen + 1);

    /* Now the result, kept: the same on every later call, no new fetch. */
    char first[96];
    k = debuginfo_fetch(id, sizeof(id), 2, &fd, why, sizeof(why));
    assert_true(k < 0);
    assert_int_not_equal(k, -EINPROGRESS);
    assert_int_equal(fd, -1);
    snprintf(first, sizeof(first), "%s", why);
    int k2 = debuginfo_fetch(id, sizeof(id), 2, &fd, why, sizeof(why));
    assert_int_equal(k2, k);
    assert_string_equal(why, first);
    usleep(100000);
    assert_int_equal(debuginfo_generation(), gen + 1);
    debuginfo_set_background(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_urls),
        cmocka_unit_test(blocking),
        cmocka_unit_test(background),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
