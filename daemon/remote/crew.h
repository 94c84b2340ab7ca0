/* crew: a bulk read of a target's memory with two threads.
 *
 * One process_vm_readv stream does not saturate memory bandwidth, so large copies (a census's
 * pymalloc arenas) go faster with a second thread. A thread created at the moment of the copy
 * often starts only when the copy is over (measured: 1.5 ms late for a 1.5 ms copy), so the
 * helper is created first, before the target is stopped, and waits for the work; then both take
 * pieces of at most 1 MiB off a shared counter, so a helper that comes late costs nothing but
 * its own absence. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "remote/rmem.h"
#include "util/macro.h"

typedef struct Crew Crew;

/* Starts the helper thread, if asked (a copy of a few MiB is not worth a thread). Without one,
 * crew_read reads alone. */
int crew_new(Rmem *r, bool helper, Crew **ret);

/* Reads every iov, once per crew. Without status, returns 0 or the first error. With status
 * (one int per iov), an iov that is not mapped gets -EFAULT there and the rest are still read;
 * only other errors (-ESRCH, -EPERM, -ENOMEM) are returned. With a deadline (monotonic seconds,
 * 0: none), no piece starts after it, and the read fails with -ETIMEDOUT. */
int crew_read(Crew *c, const RmemIov *iov, size_t n, int *status, double deadline);

/* Lets the helper go (it exits when it sees no work is coming) and frees the crew. */
Crew *crew_free(Crew *c);
DEFINE_CLEANUP_FUNC(Crew *, crew_free)
