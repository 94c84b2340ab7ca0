/* crew: two threads copy exactly what one would, in pieces, read after read, and say which range
 * was unmapped. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "remote/crew.h"

#define MiB (1u << 20)

/* A large range (cut into pieces across both threads) and many small ones (grouped), read from
 * this very process. */
static void copies_everything(void **state)
{
    size_t big = 5 * MiB + 123;
    uint8_t *src = malloc(big), *dst = calloc(1, big);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < big; i++)
        src[i] = (uint8_t)(i * 31 + i / 4096);
    enum { SMALL = 300 };
    static uint64_t words[SMALL], out[SMALL];
    RmemIov iov[SMALL + 1];
    iov[0] = (RmemIov){(RAddr)(uintptr_t)src, dst, big};
    for (size_t i = 0; i < SMALL; i++) {
        words[i] = i * 0x9e3779b97f4a7c15ull;
        iov[i + 1] = (RmemIov){(RAddr)(uintptr_t)&words[i], &out[i], 8};
    }
    _cleanup_(rmem_freep) Rmem *r = NULL;
    _cleanup_(crew_freep) Crew *c = NULL;
    assert_int_equal(rmem_open(getpid(), &r), 0);
    assert_int_equal(crew_new(r, true, &c), 0);
    int status[SMALL + 1];
    memset(status, 0x55, sizeof(status));
    assert_int_equal(crew_read(c, iov, SMALL + 1, status, 0), 0);
    assert_memory_equal(dst, src, big);
    assert_memory_equal(out, words, sizeof(words));
    for (size_t i = 0; i <= SMALL; i++)
        assert_int_equal(status[i], 0);
    /* 6 pieces of the large range, 5 of 64 small ones: a dozen calls, not 301. */
    assert_in_range(rmem_calls(r), 6, 12);
    free(src);
    free(dst);
}

/* A page unmapped in the middle of a batch fails that range alone. */
static void unmapped_range(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    memset(m, 0xa1, page);
    memset(m + 2 * page, 0xc3, page);
    assert_int_equal(munmap(m + page, page), 0);
    uint8_t *out = calloc(3, page);
    RmemIov iov[3];
    for (int i = 0; i < 3; i++)
        iov[i] = (RmemIov){(RAddr)(uintptr_t)(m + i * page), out + i * page, page};

    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_open(getpid(), &r), 0);
    {
        _cleanup_(crew_freep) Crew *c = NULL;
        assert_int_equal(crew_new(r, true, &c), 0);
        int status[3];
        assert_int_equal(crew_read(c, iov, 3, status, 0), 0);
        assert_int_equal(status[0], 0);
        assert_int_equal(status[1], -EFAULT);
        assert_int_equal(status[2], 0);
        assert_int_equal(out[0], 0xa1);
        assert_int_equal(out[2 * page + page - 1], 0xc3);
    }
    {
        /* Without a status array, the failure is the answer. */
        _cleanup_(crew_freep) Crew *c = NULL;
        assert_int_equal(crew_new(r, true, &c), 0);
        assert_int_equal(crew_read(c, iov, 3, NULL, 0), -EFAULT);
    }
    munmap(m, page);
    munmap(m + 2 * page, page);
    free(out);
}

/* Past the deadline no piece starts: the read is abandoned, not finished late. */
static void deadline_passed(void **state)
{
    size_t big = 4 * MiB;
    uint8_t *src = calloc(1, big), *dst = calloc(1, big);
    RmemIov iov = {(RAddr)(uintptr_t)src, dst, big};
    _cleanup_(rmem_freep) Rmem *r = NULL;
    _cleanup_(crew_freep) Crew *c = NULL;
    assert_int_equal(rmem_open(getpid(), &r), 0);
    assert_int_equal(crew_new(r, true, &c), 0);
    assert_int_equal(crew_read(c, &iov, 1, NULL, 1e-9), -ETIMEDOUT);
    assert_int_equal(rmem_calls(r), 0);
    free(src);
    free(dst);
}

/* One crew serves read after read, awake (crew_ready) or not, and each copies exactly its own
 * ranges. Reads of two pieces come faster than a sleeping helper wakes, so some are published
 * over one it never took (freed then: the sanitizer build would see a leak). */
static void many_reads(void **state)
{
    size_t big = 3 * MiB + 77;
    uint8_t *src = malloc(big), *dst = malloc(big);
    assert_non_null(src);
    assert_non_null(dst);
    _cleanup_(rmem_freep) Rmem *r = NULL;
    _cleanup_(crew_freep) Crew *c = NULL;
    assert_int_equal(rmem_open(getpid(), &r), 0);
    assert_int_equal(crew_new(r, true, &c), 0);
    for (int round = 0; round < 200; round++) {
        if (round == 50)
            crew_ready(c, 0.5);
        if (round == 150)
            crew_rest(c);
        for (size_t i = 0; i < big; i++)
            src[i] = (uint8_t)(i * 7 + round);
        memset(dst, 0, big);
        size_t len = round % 2 ? big : 2 * MiB - 5; /* 4 pieces, or 2 */
        RmemIov iov = {(RAddr)(uintptr_t)src, dst, len};
        int status = 1;
        assert_int_equal(crew_read(c, &iov, 1, &status, 0), 0);
        assert_int_equal(status, 0);
        assert_memory_equal(dst, src, len);
        if (len < big)
            assert_int_equal(dst[len], 0);
    }
    free(src);
    free(dst);
}

/* A crew given no work lets its helper go. */
static void unused(void **state)
{
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_fake_new(&r), 0);
    for (int i = 0; i < 100; i++) {
        Crew *c = NULL;
        assert_int_equal(crew_new(r, true, &c), 0);
        c = crew_free(c);
    }
    _cleanup_(crew_freep) Crew *c = NULL;
    assert_int_equal(crew_new(r, true, &c), 0);
    crew_ready(c, 10); /* spinning, it still goes when the crew does */
    assert_int_equal(crew_read(c, NULL, 0, NULL, 0), 0);
    assert_int_equal(rmem_calls(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copies_everything),
        cmocka_unit_test(unmapped_range),
        cmocka_unit_test(deadline_passed),
        cmocka_unit_test(many_reads),
        cmocka_unit_test(unused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
