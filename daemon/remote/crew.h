/* crew: bulk reads of a target's memory with two threads.
 *
 * One process_vm_readv stream does not saturate memory bandwidth, so large copies (a census's
 * pymalloc arenas) go faster with a second thread. A thread woken at the moment of the copy
 * often starts only when the copy is over (measured: 0.4 to 2.4 ms late for copies of 1 to 2
 * ms, so that it mostly took no piece at all), so the helper is created first and, told by
 * crew_ready() before the target is stopped, spins until the copy comes instead of sleeping;
 * then both take pieces of at most 1 MiB off a shared counter, so a helper that comes late costs
 * nothing but its own absence. A crew serves any number of reads, one at a time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "remote/rmem.h"
#include "util/macro.h"

typedef struct Crew Crew;

/* Starts the helper thread, if asked and there is a second CPU to run it on (a copy of a few MiB
 * is not worth a thread). Without one, crew_read reads alone. */
int crew_new(Rmem *r, bool helper, Crew **ret);

/* Tells the helper reads come soon: when idle, it stays awake, spinning, for `seconds` from now
 * and from the end of each read it took part in, until crew_rest(), instead of sleeping until it
 * is woken. */
void crew_ready(Crew *c, double seconds);

/* Lets the helper sleep when idle again. */
void crew_rest(Crew *c);

/* Reads every iov. Without status, returns 0 or the first error. With status (one int per iov),
 * an iov that is not mapped gets -EFAULT there and the rest are still read; only other errors
 * (-ESRCH, -EPERM, -ENOMEM) are returned. With a deadline (monotonic seconds, 0: none), no piece
 * starts after it, and the read fails with -ETIMEDOUT. */
int crew_read(Crew *c, const RmemIov *iov, size_t n, int *status, double deadline);

/* Lets the helper go and frees the crew. */
Crew *crew_free(Crew *c);
DEFINE_CLEANUP_FUNC(Crew *, crew_free)
