/* debuginfo: a binary's separate debug file fetched from debuginfod servers.
 *
 * Stripped distribution binaries keep their .symtab in a debug file named by build-id. When it is
 * not installed, the servers named in DEBUGINFOD_URLS (the variable every elfutils and gdb user
 * already sets) may have it. libdebuginfod does the work and keeps its own cache
 * ($DEBUGINFOD_CACHE_PATH, else $XDG_CACHE_HOME/debuginfod_client, else
 * ~/.cache/debuginfod_client), so a file is downloaded once per machine, not once per pymemd start.
 *
 * meson picks debuginfo.c (with libdebuginfod) or debuginfo-none.c (without). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bound on one fetch, in seconds, connection included. */
#define DEBUGINFO_TIMEOUT_S 10

/* Fetches the debug file of build-id `id` (len bytes). On success *ret_fd is a read-only
 * descriptor of the cached file, owned by the caller. On failure `why` gets a sentence naming the
 * cause: -ENOSYS when pymemd was built without libdebuginfod, -ENOENT when DEBUGINFOD_URLS is unset
 * or empty or no server has the file, -ETIMEDOUT when timeout_s passed, other -errno as the
 * library or the servers answered.
 *
 * By default the fetch blocks the caller for up to timeout_s (pymemd --once wants the whole
 * answer). After debuginfo_set_background(true) it never blocks: the first call for a build-id
 * starts the fetch on a thread of this module and returns -EINPROGRESS (why: it is being
 * fetched); calls after it finished return its result, which is kept per build-id. */
int debuginfo_fetch(const uint8_t *id, size_t len, unsigned timeout_s, int *ret_fd, char *why,
                    size_t whylen);
/* The daemon turns this on before sampling: a server that is slow to answer must not hold up
 * the sampler (every target's sample would age by up to DEBUGINFO_TIMEOUT_S). */
void debuginfo_set_background(bool on);
/* How many background fetches have finished: whoever got -EINPROGRESS asks again once this
 * moved. */
unsigned debuginfo_generation(void);
