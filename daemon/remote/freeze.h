/* freeze: stops every thread of a process for a consistent read, and lets them go.
 *
 * PTRACE_SEIZE + PTRACE_INTERRUPT, never SIGSTOP: the threads sit in a ptrace stop that belongs
 * to pymemd, so if pymemd dies at any point (even SIGKILL) the kernel detaches them and they
 * run on; a SIGSTOP group stop would outlive the daemon. The thread that froze a process must be
 * the one that thaws it (ptrace tracers are threads). */
#pragma once

#include <sys/types.h>

#include "util/macro.h"

typedef struct Freeze Freeze;

/* Stops every thread of pid, including threads created while it works, giving up at the
 * monotonic time `deadline` (seconds). Returns 0 with *ret holding the stopped process, or
 * -ESRCH (gone), -EPERM (not allowed), -ETIMEDOUT (a thread would not stop in time; everything
 * stopped so far is released before returning). */
int freeze_process(pid_t pid, double deadline, Freeze **ret);

/* Lets every thread go and frees f. NULL-safe. */
void freeze_thaw(Freeze *f);

/* How many threads are stopped. */
size_t freeze_threads(const Freeze *f);
