#include "priv/chan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/memfd.h"
#include "util/macro.h"

bool chan_type_valid(const char *type, size_t len)
{
    if (len == 0 || len >= CHAN_TYPE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)type[i] < 0x20 || type[i] == 0x7f)
            return false;
    return true;
}

int chan_send(int sock, const ChanMsg *m, int fd)
{
    struct iovec iov = {(void *)m, sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    for (;;) {
        ssize_t k = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (k == (ssize_t)sizeof(*m))
            return 0;
        if (k < 0 && errno == EINTR)
            continue;
        return k < 0 ? -errno : -EIO;
    }
}

static bool str_ok(const char *s, size_t size)
{
    return memchr(s, 0, size) != NULL;
}

int chan_recv(int sock, ChanMsg *m, int *ret_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {m, sizeof(*m)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t k;
    do
        k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return -errno;
    if (k == 0)
        return -EPIPE;
    int fd = -1;
    bool extra = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fd < 0) {
                fd = f;
            } else {
                close(f);
                extra = true;
            }
        }
    }
    bool ok = !extra && k == (ssize_t)sizeof(*m) && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
              m->op >= CHAN_HELLO && m->op < CHAN_NOPS && str_ok(m->type, sizeof(m->type)) &&
              str_ok(m->err, sizeof(m->err));
    bool referrers = m->op == CHAN_REFERRERS || m->op == CHAN_REFERRERS_FRESH;
    if (ok && (m->op == CHAN_CENSUS || referrers))
        ok = m->pid > 0;
    if (ok && referrers)
        ok = m->type_len == strlen(m->type) && chan_type_valid(m->type, m->type_len);
    if (!ok) {
        if (fd >= 0)
            close(fd);
        return -EBADMSG;
    }
    *ret_fd = fd;
    return 0;
}

int chan_memfd(const char *data, size_t len, int *ret_fd)
{
    return memfd_sealed("pymemd-answer", data, len, ret_fd);
}

int chan_read_memfd(int fd_in, size_t max, char **ret)
{
    _cleanup_(closep) int fd = fd_in;
    size_t len;
    int k = memfd_sealed_size(fd, &len);
    if (k < 0)
        return k;
    if (len > max)
        return -EFBIG;
    char *s = malloc(len + 1);
    if (!s)
        return -ENOMEM;
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(fd, s + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(s);
            return n < 0 ? -errno : -EIO;
        }
        done += (size_t)n;
    }
    s[len] = 0;
    *ret = s;
    return 0;
}
