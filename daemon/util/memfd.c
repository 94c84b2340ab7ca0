#include "util/memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/macro.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

int memfd_sealed(const char *name, const void *data, size_t len, int *ret_fd)
{
    _cleanup_(closep) int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    for (size_t done = 0; done < len;) {
        ssize_t k = write(fd, (const char *)data + done, len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        done += (size_t)k;
    }
    if (fcntl(fd, F_ADD_SEALS, SEALS) < 0)
        return -errno;
    *ret_fd = fd;
    fd = -1;
    return 0;
}

int memfd_sealed_size(int fd, size_t *ret_size)
{
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return -errno;
    if ((seals & SEALS) != SEALS)
        return -EPERM;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *ret_size = (size_t)st.st_size;
    return 0;
}
