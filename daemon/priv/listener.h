/* listener: privilege separation, the unprivileged side. A new program image (pymemd
 * re-executed by privsep_spawn), which drops every privilege it might still have, then serves
 * HTTP (http/http.h) from the snapshots the sampler sends over the channel (chan.h), and
 * forwards GET .../objects?fresh=1 and .../referrers as fixed-format requests. It holds no
 * capability, runs as an unprivileged user when started as root, and cannot stop or read any
 * process: a bug in request handling reaches only rendered snapshots. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http/webconfig.h"

/* The user the listener runs as when pymemd is started as root: the unit's own system user
 * when it exists (systemd/pymemd.sysusers), else nobody. */
#define LISTENER_USER          "pymemd"
#define LISTENER_FALLBACK_USER "nobody"

/* Parses the PRIVSEP_LISTENER_FLAG argument "LISTENFD,SOCKFD,PARENTPID". -EINVAL if malformed. */
int listener_parse_arg(const char *arg, int *ret_listen_fd, int *ret_sock, pid_t *ret_parent);

/* Drops what the process may hold: as root, the capability bounding set, supplementary groups,
 * and root itself for LISTENER_USER (or LISTENER_FALLBACK_USER); then the ambient and
 * inheritable sets, and sets no_new_privs. Checks the result: -EPERM with a sentence in err
 * when any capability is left in the effective, permitted or ambient set, or the user is still
 * root. */
int listener_drop_privileges(char *err, size_t errlen);

/* Serves HTTP on listen_fd (bound by the sampler, listen is its address for messages) from the
 * channel sock until the channel ends (the sampler stopped or died), with the web config web
 * (TLS, users, headers; loaded before the privileges were dropped), whose users and headers
 * CHAN_WEB_RELOAD replaces. Returns the exit code. */
int listener_run(int listen_fd, int sock, pid_t parent, const char *listen, const WebConfig *web);
