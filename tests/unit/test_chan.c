/* chan: the channel between the sampler and the listener. A message and its fd arrive whole;
 * anything malformed (short, unknown op, unterminated strings, a bad type name, a second fd) is
 * refused and its fds closed; the end of the channel is -EPIPE; answer memfds are sealed and
 * bounded. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "priv/chan.h"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void roundtrip(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    ChanMsg m = {.op = CHAN_REFERRERS, .id = 7, .pid = 4242, .type_len = 7};
    memcpy(m.type, "Session", 8);
    int fd = -1;
    assert_int_equal(chan_memfd("{\"a\":1}", 7, &fd), 0);
    assert_int_equal(chan_send(sv[0], &m, fd), 0);
    close(fd);
    ChanMsg got;
    int gfd = -2;
    assert_int_equal(chan_recv(sv[1], &got, &gfd), 0);
    assert_int_equal(got.op, CHAN_REFERRERS);
    assert_int_equal(got.id, 7);
    assert_int_equal(got.pid, 4242);
    assert_string_equal(got.type, "Session");
    assert_true(gfd >= 0);
    assert_true(fcntl(gfd, F_GETFD) & FD_CLOEXEC);
    char *s = NULL;
    assert_int_equal(chan_read_memfd(gfd, 100, &s), 0);
    assert_string_equal(s, "{\"a\":1}");
    free(s);
    /* Without an fd. */
    ChanMsg hello = {.op = CHAN_HELLO};
    assert_int_equal(chan_send(sv[1], &hello, -1), 0);
    assert_int_equal(chan_recv(sv[0], &got, &gfd), 0);
    assert_int_equal(got.op, CHAN_HELLO);
    assert_int_equal(gfd, -1);
    /* The other end gone. */
    close(sv[1]);
    assert_int_equal(chan_recv(sv[0], &got, &gfd), -EPIPE);
    assert_int_equal(chan_send(sv[0], &hello, -1), -EPIPE);
    close(sv[0]);
}

/* Sends raw bytes (and optionally two fds) and expects them refused. */
static void refuse(const void *bytes, size_t len, int nfds)
{
    int sv[2];
    pair(sv);
    int fds[2] = {dup(0), dup(0)};
    union {
        char buf[CMSG_SPACE(sizeof(fds))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = {(void *)bytes, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)len);
    close(fds[0]);
    close(fds[1]);
    ChanMsg got;
    int gfd = -2;
    assert_int_equal(chan_recv(sv[1], &got, &gfd), -EBADMSG);
    assert_int_equal(gfd, -2); /* untouched */
    close(sv[0]);
    close(sv[1]);
}

static void malformed(void **state)
{
    (void)state;
    ChanMsg m = {.op = CHAN_CENSUS, .id = 1, .pid = 10};
    refuse(&m, sizeof(m) - 1, 0); /* short */
    ChanMsg big[2] = {m, m};
    refuse(big, sizeof(big), 0); /* long */
    m.op = CHAN_NOPS;
    refuse(&m, sizeof(m), 0);
    m.op = 0;
    refuse(&m, sizeof(m), 0);
    m.op = CHAN_CENSUS;
    m.pid = 0;
    refuse(&m, sizeof(m), 0);
    m.pid = 10;
    memset(m.err, 'x', sizeof(m.err)); /* not terminated */
    refuse(&m, sizeof(m), 0);
    m.err[0] = 0;
    refuse(&m, sizeof(m), 2); /* two fds */
    /* Referrers: the type name must be what chan_type_valid accepts, of the length given. */
    ChanMsg r = {.op = CHAN_REFERRERS, .id = 2, .pid = 10, .type_len = 3};
    memcpy(r.type, "a\nb", 4);
    refuse(&r, sizeof(r), 0);
    memcpy(r.type, "abc", 4);
    r.type_len = 2;
    refuse(&r, sizeof(r), 0);
    r.type_len = 0;
    r.type[0] = 0;
    refuse(&r, sizeof(r), 0);
}

static void type_names(void **state)
{
    (void)state;
    assert_true(chan_type_valid("dict", 4));
    assert_true(chan_type_valid("app.models.Session", 18));
    assert_false(chan_type_valid("", 0));
    assert_false(chan_type_valid("a\x7f", 2));
    assert_false(chan_type_valid("a\tb", 3));
    char longname[CHAN_TYPE_MAX + 1];
    memset(longname, 'a', sizeof(longname));
    assert_true(chan_type_valid(longname, CHAN_TYPE_MAX - 1));
    assert_false(chan_type_valid(longname, CHAN_TYPE_MAX));
}

static void memfds(void **state)
{
    (void)state;
    int fd = -1;
    assert_int_equal(chan_memfd("0123456789", 10, &fd), 0);
    assert_int_equal(write(fd, "x", 1), -1); /* sealed */
    char *s = NULL;
    assert_int_equal(chan_read_memfd(fd, 9, &s), -EFBIG);
    assert_null(s);
    /* Not sealed: refused. */
    fd = memfd_create("t", MFD_CLOEXEC);
    assert_int_equal(write(fd, "ab", 2), 2);
    assert_int_equal(chan_read_memfd(fd, 100, &s), -EPERM);
    assert_int_equal(chan_memfd("", 0, &fd), 0);
    assert_int_equal(chan_read_memfd(fd, 100, &s), 0);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(malformed),
        cmocka_unit_test(type_names),
        cmocka_unit_test(memfds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
