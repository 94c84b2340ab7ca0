/* rmem: the fake backend serves exactly its regions; the live backend reads this very process
 * and tells a vanished process (-ESRCH) from an unmapped address (-EFAULT). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "remote/rmem.h"

static void fake_regions(void **state)
{
    _cleanup_(rmem_freep) Rmem *r = NULL;
    uint8_t a[32], b[16], out[32];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (uint8_t)i;
    memset(b, 0xab, sizeof(b));
    assert_int_equal(rmem_fake_new(&r), 0);
    assert_int_equal(rmem_fake_add(r, 0x1000, a, sizeof(a)), 0);
    assert_int_equal(rmem_fake_add(r, 0x2000, b, sizeof(b)), 0);

    assert_int_equal(rmem_read(r, 0x1008, out, 8), 0);
    assert_memory_equal(out, a + 8, 8);
    /* The last byte of a region reads; one past it does not. */
    assert_int_equal(rmem_read(r, 0x101f, out, 1), 0);
    assert_int_equal(rmem_read(r, 0x101f, out, 2), -EFAULT);
    assert_int_equal(rmem_read(r, 0x0fff, out, 2), -EFAULT);

    /* A batch is all or nothing. */
    uint64_t x, y;
    RmemIov iov[] = {{0x1000, &x, 8}, {0x2000, &y, 8}};
    assert_int_equal(rmem_readv(r, iov, 2), 0);
    assert_int_equal(y, 0xababababababababull);
    iov[1].addr = 0x3000;
    assert_int_equal(rmem_readv(r, iov, 2), -EFAULT);
    /* Address arithmetic near the top of the space must not wrap into a region. */
    assert_int_equal(rmem_read(r, UINT64_MAX - 3, out, 8), -EFAULT);
    assert_int_equal(rmem_calls(r), 7);
}

static const char live_string[] = "pymemd reads this";
static volatile uint64_t live_words[3000];

/* A deadline in the past fails every read with -ETIMEDOUT and costs no read; 0 lifts it. */
static void deadline(void **state)
{
    _cleanup_(rmem_freep) Rmem *r = NULL;
    uint8_t a[16] = {1, 2, 3}, out[16];
    assert_int_equal(rmem_fake_new(&r), 0);
    assert_int_equal(rmem_fake_add(r, 0x1000, a, sizeof(a)), 0);
    rmem_set_deadline(r, 1.0); /* one second after the monotonic clock's start: long past */
    uint64_t calls = rmem_calls(r);
    assert_int_equal(rmem_read(r, 0x1000, out, sizeof(out)), -ETIMEDOUT);
    assert_int_equal(rmem_calls(r), calls);
    rmem_set_deadline(r, 0);
    assert_int_equal(rmem_read(r, 0x1000, out, sizeof(out)), 0);
    assert_memory_equal(out, a, sizeof(a));
    /* A deadline far ahead changes nothing. */
    rmem_set_deadline(r, 1e12);
    assert_int_equal(rmem_read(r, 0x1000, out, sizeof(out)), 0);
}

static void live_self(void **state)
{
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_open(getpid(), &r), 0);
    char buf[64];
    assert_int_equal(rmem_read_str(r, (RAddr)(uintptr_t)live_string, buf, sizeof(buf)),
                     (int)strlen(live_string));
    assert_string_equal(buf, live_string);
    /* A cut string is still terminated. */
    assert_int_equal(rmem_read_str(r, (RAddr)(uintptr_t)live_string, buf, 7), 6);
    assert_string_equal(buf, "pymemd");

    /* More iovecs than one process_vm_readv takes (IOV_MAX 1024) are split into calls. */
    static uint64_t out[3000];
    static RmemIov iov[3000];
    for (size_t i = 0; i < 3000; i++) {
        live_words[i] = i * 7 + 1;
        iov[i] = (RmemIov){(RAddr)(uintptr_t)&live_words[i], &out[i], 8};
    }
    uint64_t before = rmem_calls(r);
    assert_int_equal(rmem_readv(r, iov, 3000), 0);
    assert_int_equal(rmem_calls(r) - before, 3);
    for (size_t i = 0; i < 3000; i++)
        assert_int_equal(out[i], i * 7 + 1);
}

static void live_unmapped(void **state)
{
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_open(getpid(), &r), 0);
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 7, 2 * page);
    munmap(p + page, page);
    uint8_t buf[16];
    assert_int_equal(rmem_read(r, (RAddr)(uintptr_t)(p + page - 8), buf, 8), 0);
    /* Straddling into the unmapped page fails as a whole. */
    assert_int_equal(rmem_read(r, (RAddr)(uintptr_t)(p + page - 8), buf, 16), -EFAULT);
    assert_int_equal(rmem_read(r, 0, buf, 8), -EFAULT);
    munmap(p, page);
}

static void live_gone(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_open(pid, &r), 0);
    uint64_t v;
    assert_int_equal(rmem_read_u64(r, (RAddr)(uintptr_t)&v, &v), -ESRCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fake_regions),  cmocka_unit_test(deadline),  cmocka_unit_test(live_self),
        cmocka_unit_test(live_unmapped), cmocka_unit_test(live_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
