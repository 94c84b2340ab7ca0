/* freeze: stops every thread of a process for a consistent read, and lets them go.
 *
 * PTRACE_SEIZE + PTRACE_INTERRUPT, never SIGSTOP: the threads sit in a ptrace stop that belongs
 * to pymemd, so if pymemd dies at any point (even SIGKILL) the kernel detaches them and they
 * run on; a SIGSTOP group stop would outlive the daemon.
 *
 * What the target must never notice, and how:
 * - A signal that reaches a thread between the seize and its stop stops it in a
 *   signal-delivery-stop instead of the interrupt's stop. The thread is stopped all the same;
 *   the signal is remembered and handed back by the detach, which delivers it. A stop signal
 *   (SIGSTOP, SIGTSTP...) handed back, or one that arrived while the threads were stopped,
 *   stops the process once it is let go, as it would have without pymemd.
 * - A thread killed while pymemd traces it (SIGKILL, an exec() in another thread) cannot be
 *   detached, and its exit is reported to the tracer, not to the process's parent: until the
 *   tracer collects it, the parent's wait() blocks. Every such exit is collected, so the parent
 *   sees the process die at once.
 * - A thread that could not be let go yet (its stop or its exit is still on the way, e.g. it
 *   was sleeping in the kernel when the freeze was abandoned) is kept on a list of leftovers
 *   and let go by freeze_collect() as soon as it reports.
 *
 * ptrace tracers are threads: the thread that froze a process must be the one that thaws it and
 * that calls freeze_collect(). The leftovers are that thread's (thread-local). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "proc/procinfo.h"
#include "util/macro.h"

typedef struct Freeze Freeze;

/* Stops every thread of pid, including threads created while it works, giving up at the
 * monotonic time `deadline` (seconds). With expect, the process must still be that one (same
 * process, same program image) once it is stopped, before the caller reads a byte of it.
 * Returns 0 with *ret holding the stopped process, or -ESRCH (gone), -EPERM (not allowed),
 * -EBUSY (another tracer, a debugger or strace, holds a thread of it), -ESTALE (not the
 * expected process any more: its pid was reused, or it exec()ed), -ETIMEDOUT (a thread would not
 * stop in time). On failure nothing stays stopped. */
int freeze_process(pid_t pid, const ProcStamp *expect, double deadline, Freeze **ret);

/* Lets every thread go (handing back the signals the stop held up), collects the threads that
 * died, and frees f. NULL-safe. */
void freeze_thaw(Freeze *f);

/* When (monotonic seconds) the first thread was seized: before it, listing the threads touches
 * nothing of the process; from it on, a thread may stop (a signal arriving after the seize
 * stops it as the interrupt does). What a pause is counted from. (A leftover of an earlier
 * freeze taken over may have stayed stopped since that one.) */
double freeze_started(const Freeze *f);

/* How many threads are stopped. */
size_t freeze_threads(const Freeze *f);

/* Lets go of the leftovers of earlier freezes that have reported since (see above), without
 * blocking. Returns how many are still waited for: while there are some, call again soon. */
size_t freeze_collect(void);

/* Forgets the leftovers without letting them go: for a tracer thread about to exit, whose exit
 * makes the kernel detach every tracee it still has (and collect the dead ones). */
void freeze_forget(void);
