/* debuginfo with libdebuginfod. */
#include "elf/debuginfo.h"

#include <elfutils/debuginfod.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "elf/elfmem.h" /* ELFMEM_BUILD_ID_MAX */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* libdebuginfod calls this about once a second while a request runs (its curl loop waits up to
 * 1 s per turn), connecting included; non-zero cancels the request. */
static int past_deadline(debuginfod_client *client, long done, long total)
{
    (void)done;
    (void)total;
    const double *deadline = debuginfod_get_user_data(client);
    return now_s() > *deadline;
}

int debuginfo_fetch(const uint8_t *id, size_t len, unsigned timeout_s, int *ret_fd, char *why,
                    size_t whylen)
{
    const char *urls = getenv("DEBUGINFOD_URLS");
    if (!urls || !*urls) {
        snprintf(why, whylen, "DEBUGINFOD_URLS is not set");
        return -ENOENT;
    }
    if (len == 0 || len > ELFMEM_BUILD_ID_MAX) {
        snprintf(why, whylen, "no build-id to ask debuginfod for");
        return -EINVAL;
    }
    debuginfod_client *client = debuginfod_begin();
    if (!client) {
        snprintf(why, whylen, "debuginfod: cannot start a client");
        return -ENOMEM;
    }
    double start = now_s(), deadline = start + timeout_s;
    debuginfod_set_user_data(client, &deadline);
    debuginfod_set_progressfn(client, past_deadline);
    char *path = NULL;
    int fd = debuginfod_find_debuginfo(client, id, (int)len, &path);
    debuginfod_end(client);
    free(path);
    if (fd >= 0) {
        *ret_fd = fd;
        return 0;
    }
    if (fd == -ECANCELED || now_s() > deadline) {
        snprintf(why, whylen, "debuginfod: no answer within %u s", timeout_s);
        return -ETIMEDOUT;
    }
    if (fd == -ENOENT)
        snprintf(why, whylen, "the debuginfod servers do not have it");
    else
        snprintf(why, whylen, "debuginfod: %s", strerror(-fd));
    return fd;
}
