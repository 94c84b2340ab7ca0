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

#include <stddef.h>
#include <stdint.h>

/* Upper bound on one fetch, in seconds, connection included: a fetch blocks the caller. */
#define DEBUGINFO_TIMEOUT_S 10

/* Fetches the debug file of build-id `id` (len bytes). On success *ret_fd is a read-only
 * descriptor of the cached file, owned by the caller. On failure `why` gets a sentence naming the
 * cause: -ENOSYS when pymemd was built without libdebuginfod, -ENOENT when DEBUGINFOD_URLS is unset
 * or empty or no server has the file, -ETIMEDOUT when timeout_s passed, other -errno as the
 * library or the servers answered. */
int debuginfo_fetch(const uint8_t *id, size_t len, unsigned timeout_s, int *ret_fd, char *why,
                    size_t whylen);
