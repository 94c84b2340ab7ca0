/* sigcount: a signal handler that counts, for test targets written in Python.
 *
 * CPython's own handlers cannot count: its C handler only sets a flag, so two signals that
 * arrive before the Python handler runs are seen as one. A target loads this library with
 * ctypes and installs a handler that adds one to a counter it names, in C, for every delivery.
 * The counter lives in a shared file mapping, so the test reads it from outside. */
#include <errno.h>
#include <signal.h>
#include <string.h>

static long *counter;

static void count(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)info;
    (void)ctx;
    __atomic_add_fetch(counter, 1, __ATOMIC_SEQ_CST);
}

int sigcount_install(int sig, long *where);

/* Counts every delivery of sig in *where. 0, or -errno. */
int sigcount_install(int sig, long *where)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = count;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    counter = where;
    return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}
