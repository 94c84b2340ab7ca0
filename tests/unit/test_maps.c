/* maps: fixed texts cover the line format (paths with spaces, "(deleted)", anonymous and pseudo
 * entries) and what must be refused; /proc/self/maps is checked against what the kernel says
 * independently (readlink of /proc/self/exe, a stack address, address 0). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc/maps.h"

/* Initialised, so that it lives in the binary's file-backed data segment rather than in .bss,
 * whose tail the loader maps anonymously. */
int some_global = 42;

static const char sample[] =
    "55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1311240                    /usr/bin/cat\n"
    "55d0c0a02000-55d0c0a07000 r-xp 00002000 08:01 1311240                    /usr/bin/cat\n"
    "55d0c0a07000-55d0c0a09000 rw-p 00007000 08:01 1311240                    /usr/bin/cat\n"
    "55d0c1c4b000-55d0c1c6c000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f1e2c000000-7f1e2c021000 rw-p 00000000 00:00 0 \n"
    "7f1e2c021000-7f1e30000000 ---p 00000000 00:00 0\n"
    "7f1e30000000-7f1e30001000 rw-s 00000000 fd:1a 18446744073709551615       /dev/shm/my file "
    "with  spaces\n"
    "7f1e30001000-7f1e30002000 r--p 00001000 103:02 42                        /tmp/old lib.so "
    "(deleted)\n"
    "7ffd4e1d0000-7ffd4e1f1000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffd4e1f8000-7ffd4e1fa000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

static void parse_sample(void **state)
{
    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(maps_parse(sample, &m), 0);
    assert_int_equal(m->n, 11);

    const MapsEntry *e = &m->v[1];
    assert_int_equal(e->start, 0x55d0c0a02000);
    assert_int_equal(e->end, 0x55d0c0a07000);
    assert_int_equal(e->offset, 0x2000);
    assert_int_equal(e->dev_major, 8);
    assert_int_equal(e->dev_minor, 1);
    assert_int_equal(e->inode, 1311240);
    assert_true(e->r && !e->w && e->x && e->p);
    assert_string_equal(e->path, "/usr/bin/cat");
    assert_false(e->deleted);

    assert_string_equal(m->v[3].path, "[heap]");
    /* Anonymous memory has no path, with or without a trailing blank. */
    assert_null(m->v[4].path);
    assert_null(m->v[5].path);
    assert_true(!m->v[5].r && !m->v[5].w && !m->v[5].x);

    e = &m->v[6];
    assert_string_equal(e->path, "/dev/shm/my file with  spaces");
    assert_false(e->p);
    assert_int_equal(e->dev_major, 0xfd);
    assert_int_equal(e->dev_minor, 0x1a);
    assert_int_equal(e->inode, UINT64_MAX);

    e = &m->v[7];
    assert_string_equal(e->path, "/tmp/old lib.so");
    assert_true(e->deleted);
    assert_int_equal(e->dev_major, 0x103);
    assert_int_equal(e->offset, 0x1000);

    assert_string_equal(m->v[8].path, "[stack]");
    assert_string_equal(m->v[9].path, "[vdso]");
    assert_string_equal(m->v[10].path, "[vsyscall]");
    assert_int_equal(m->v[10].end, 0xffffffffff601000);
}

static void parse_edges(void **state)
{
    _cleanup_(maps_freep) Maps *empty = NULL;
    assert_int_equal(maps_parse("", &empty), 0);
    assert_int_equal(empty->n, 0);
    assert_null(maps_find(empty, 0x1000));

    /* The last line may come without its newline. */
    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(
        maps_parse("1000-2000 r--p 00000000 00:00 0 /a\n2000-3000 rw-p 0 00:00 0 /b", &m), 0);
    assert_int_equal(m->n, 2);
    assert_string_equal(m->v[1].path, "/b");

    /* Only the suffix is stripped, and only as a suffix. */
    _cleanup_(maps_freep) Maps *d = NULL;
    assert_int_equal(maps_parse("1000-2000 r--p 0 00:00 1 /x (deleted)/y\n"
                                "2000-3000 r--p 0 00:00 1  (deleted)\n",
                                &d),
                     0);
    assert_string_equal(d->v[0].path, "/x (deleted)/y");
    assert_false(d->v[0].deleted);
    /* A path that is nothing but the suffix keeps it: there would be no path left. */
    assert_string_equal(d->v[1].path, "(deleted)");
    assert_false(d->v[1].deleted);

    assert_null(maps_free(NULL));
}

static void parse_malformed(void **state)
{
    static const char *const bad[] = {
        "\n",                                     /* blank line */
        "1000-2000 r--p 00000000 00:00 0\n\n",    /* blank line after a good one */
        "1000 r--p 00000000 00:00 0\n",           /* no end address */
        "1000-2000 r--p\n",                       /* fields missing */
        "1000-2000 r--p 00000000 00:00\n",        /* no inode */
        "1000-2000 rw-q 00000000 00:00 0\n",      /* bad sharing flag */
        "1000-2000 rwxpp 00000000 00:00 0\n",     /* five permission letters */
        "1000-2000 w--p 00000000 00:00 0\n",      /* letter in the wrong place */
        "1000-2g00 r--p 00000000 00:00 0\n",      /* not hex */
        "0x1000-0x2000 r--p 00000000 00:00 0\n",  /* prefixes the kernel never prints */
        " 1000-2000 r--p 00000000 00:00 0\n",     /* leading blank */
        "-1000-2000 r--p 00000000 00:00 0\n",     /* sign */
        "2000-1000 r--p 00000000 00:00 0\n",      /* inverted */
        "2000-2000 r--p 00000000 00:00 0\n",      /* empty */
        "1000-2000 r--p 00000000 0000 0\n",       /* no dev separator */
        "1000-2000 r--p 00000000 00:00 12x /a\n", /* junk glued to the inode */
        "1000-2000 r--p 00000000 00:00 -1\n",     /* negative inode */
        "10000000000000000-10000000000000001 r--p 0 00:00 0\n", /* beyond 64 bits */
        "1000-2000 r--p 0 100000000:00 0\n",                    /* major beyond 32 bits */
        "1000-2000 r--p 0 00:00 18446744073709551616\n",        /* inode beyond 64 bits */
        /* Unsorted, and overlapping: the kernel prints neither. */
        "3000-4000 r--p 0 00:00 0\n1000-2000 r--p 0 00:00 0\n",
        "1000-3000 r--p 0 00:00 0\n2000-4000 r--p 0 00:00 0\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        Maps *sentinel = (Maps *)(uintptr_t)0x1;
        Maps *m = sentinel;
        print_message("%zu: %s", i, bad[i]);
        assert_int_equal(maps_parse(bad[i], &m), -EINVAL);
        /* The out-parameter is left alone on failure. */
        assert_ptr_equal(m, sentinel);
    }
}

static void find(void **state)
{
    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(maps_parse(sample, &m), 0);

    /* Start is inclusive, end exclusive. */
    assert_ptr_equal(maps_find(m, 0x55d0c0a00000), &m->v[0]);
    assert_ptr_equal(maps_find(m, 0x55d0c0a01fff), &m->v[0]);
    assert_ptr_equal(maps_find(m, 0x55d0c0a02000), &m->v[1]);
    assert_ptr_equal(maps_find(m, 0x55d0c0a08fff), &m->v[2]);
    /* Gaps, and either side of everything. */
    assert_null(maps_find(m, 0x55d0c0a09000));
    assert_null(maps_find(m, 0x55d0c1c4afff));
    assert_null(maps_find(m, 0));
    assert_null(maps_find(m, 0x1000));
    assert_ptr_equal(maps_find(m, 0xffffffffff600000), &m->v[10]);
    assert_null(maps_find(m, 0xffffffffff601000));
    assert_null(maps_find(m, UINT64_MAX));
    assert_null(maps_find(NULL, 0x1000));

    /* Every entry is found by its first and last byte. */
    for (size_t i = 0; i < m->n; i++) {
        assert_ptr_equal(maps_find(m, m->v[i].start), &m->v[i]);
        assert_ptr_equal(maps_find(m, m->v[i].end - 1), &m->v[i]);
    }
}

static void readable(void **state)
{
    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(maps_parse(sample, &m), 0);

    /* Inside one entry, to its last byte, and no further. */
    assert_true(maps_readable(m, 0x55d0c0a00000, 0x2000));
    assert_true(maps_readable(m, 0x55d0c0a01ff8, 8));
    /* Over three contiguous readable entries. */
    assert_true(maps_readable(m, 0x55d0c0a01ff8, 0x7000));
    assert_true(maps_readable(m, 0x55d0c0a00000, 0x9000));
    /* One byte past the end of the run is a hole. */
    assert_false(maps_readable(m, 0x55d0c0a00000, 0x9001));
    /* Into an entry that cannot be read: [heap] anon, then ---p. */
    assert_true(maps_readable(m, 0x7f1e2c020ff8, 8));
    assert_false(maps_readable(m, 0x7f1e2c020ff8, 16));
    assert_false(maps_readable(m, 0x7f1e2c021000, 1));
    /* Not mapped at all. */
    assert_false(maps_readable(m, 0, 8));
    assert_false(maps_readable(m, 0x1000, 1));
    /* Execute-only is not readable. */
    assert_false(maps_readable(m, 0xffffffffff600000, 8));
    /* A zero-length range is judged by its address. */
    assert_true(maps_readable(m, 0x55d0c0a00000, 0));
    assert_false(maps_readable(m, 0, 0));
    /* A range that wraps around the address space. */
    assert_false(maps_readable(m, 0x55d0c0a00000, UINT64_MAX));
    assert_false(maps_readable(m, 0x55d0c0a00010, UINT64_MAX - 0x8));
    assert_false(maps_readable(NULL, 0x55d0c0a00000, 8));
}

static void self_maps(void **state)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';

    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(maps_read(getpid(), &m), 0);
    assert_true(m->n > 0);
    for (size_t i = 1; i < m->n; i++)
        assert_true(m->v[i - 1].end <= m->v[i].start);

    const MapsEntry *e = maps_find(m, (uint64_t)(uintptr_t)&some_global);
    assert_non_null(e);
    assert_non_null(e->path);
    assert_string_equal(e->path, exe);
    assert_false(e->deleted);
    assert_true(e->r && e->w);
    assert_true(maps_readable(m, (uint64_t)(uintptr_t)&some_global, sizeof(some_global)));

    /* The code of this very function, and the stack it runs on. */
    e = maps_find(m, (uint64_t)(uintptr_t)&self_maps);
    assert_non_null(e);
    assert_true(e->x);
    assert_string_equal(e->path, exe);
    volatile int local = 0;
    assert_true(maps_readable(m, (uint64_t)(uintptr_t)&local, sizeof(local)));
    assert_false(maps_readable(m, 0, 1));
    assert_null(maps_find(m, 0));
}

static void read_gone(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);

    Maps *sentinel = (Maps *)(uintptr_t)0x1;
    Maps *m = sentinel;
    assert_int_equal(maps_read(pid, &m), -ESRCH);
    assert_ptr_equal(m, sentinel);
    assert_int_equal(maps_read(0, &m), -EINVAL);
    assert_int_equal(maps_read(-1, &m), -EINVAL);
}

/* Where pymalloc arenas may lie: readable anonymous memory (no path, the heap, or a name given
 * with PR_SET_VMA_ANON_NAME), never a file, the stack or a shared mapping. */
static void anon_readable(void **state)
{
    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(maps_parse(sample, &m), 0);
    assert_true(maps_anon_readable(m, 0x55d0c1c4b000, 0x21000));     /* [heap] */
    assert_true(maps_anon_readable(m, 0x7f1e2c000000, 0x21000));     /* no path */
    assert_false(maps_anon_readable(m, 0x7f1e2c000000, 0x21001));    /* into ---p */
    assert_false(maps_anon_readable(m, 0x55d0c0a07000, 0x1000));     /* file-backed data */
    assert_false(maps_anon_readable(m, 0x7ffd4e1d0000, 0x1000));     /* [stack] */
    assert_false(maps_anon_readable(m, 0x7f1e30000000, 0x1000));     /* shared, /dev/shm */
    assert_false(maps_anon_readable(m, 0x1000, 0x1000));             /* nothing */
    assert_false(maps_anon_readable(m, 0x7f1e2c000000, UINT64_MAX)); /* wraps */
    assert_true(maps_anon_total(m) == 0x21000 + 0x21000);
    assert_true(maps_anon_total(NULL) == 0);

    _cleanup_(maps_freep) Maps *named = NULL;
    assert_int_equal(maps_parse("7f0000000000-7f0000100000 rw-p 00000000 00:00 0 "
                                "[anon:cpython:pymalloc]\n"
                                "7f0000100000-7f0000200000 rw-p 00000000 00:00 0\n",
                                &named),
                     0);
    /* Named and unnamed neighbours: one arena-sized range over both is fine. */
    assert_true(maps_anon_readable(named, 0x7f00000ff000, 0x2000));
    assert_true(maps_anon_total(named) == 0x200000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_sample),    cmocka_unit_test(parse_edges),
        cmocka_unit_test(parse_malformed), cmocka_unit_test(find),
        cmocka_unit_test(readable),        cmocka_unit_test(self_maps),
        cmocka_unit_test(read_gone),       cmocka_unit_test(anon_readable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
