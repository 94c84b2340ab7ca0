/* memfd: sealed, read-only memory files, the way privilege separation hands data from the
 * sampler to the HTTP listener (snapshots, referrers answers, the web config on reload): the
 * receiver checks the seals, so the sender can no longer change what it maps or reads. */
#pragma once

#include <stddef.h>

/* A memfd named name holding the len bytes of data, sealed against shrinking, growing, writing
 * and further sealing. Returns 0 with the descriptor in *ret_fd (the caller's), or -errno. */
int memfd_sealed(const char *name, const void *data, size_t len, int *ret_fd);
/* Whether fd carries those seals: 0 with its size in *ret_size, -EPERM when a seal is missing,
 * or -errno. */
int memfd_sealed_size(int fd, size_t *ret_size);
