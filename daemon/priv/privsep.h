/* privsep: privilege separation, the privileged side. The process that holds CAP_SYS_PTRACE
 * (the sampler, systemd's main pid) has no listening socket and parses no network input: it
 * binds the HTTP socket, then starts the listener (listener.h) as a new program image and
 * talks to it only over a chan.h socketpair: it sends each snapshot as a sealed memfd, and
 * answers the listener's fixed-format requests (census now, referrers now) by calling the
 * sampler, several at a time. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "sampler/sampler.h"
#include "util/log.h"

/* The option that makes main() run the listener: `pymemd --privsep-listener
 * LISTENFD,SOCKFD,PARENTPID [the daemon's own options...]`. Not for people. */
#define PRIVSEP_LISTENER_FLAG "--privsep-listener"

/* Starts the listener: forks, and in the child clears its ambient capabilities (so that a
 * non-root exec leaves it none; root is dropped by the listener itself), asks to be killed
 * when this process dies, and executes /proc/self/exe in listener mode with listen_fd, its end
 * of a new socketpair and args (the daemon's own command line after argv[0]). Call before
 * starting any thread. Returns the listener's pid and this side's end of the channel. */
int privsep_spawn(int listen_fd, const char *argv0, const char *const *args, int nargs,
                  pid_t *ret_pid, int *ret_sock);

typedef struct Privsep Privsep;

/* Starts serving the channel sock (owned from now on) on a thread of its own. */
int privsep_start(int sock, Privsep **ret);
/* The sampler that answers the listener's requests; until set, they get "starting". */
void privsep_set_sampler(Privsep *p, Sampler *s);
/* SamplerPublishFn: hands a snapshot to the listener. */
void privsep_publish(void *ctx, Snapshot *snap);
/* Whether the listener serves and has published the first snapshot. */
bool privsep_ready(Privsep *p);
/* Whether the channel has ended (the listener is gone or broke the protocol). */
bool privsep_closed(Privsep *p);
/* Tells the listener a new log level (after a reload). */
void privsep_log_level(Privsep *p, LogLevel level);
/* Hands the listener the text of its web config file again (after a reload; it parses it and
 * takes its users and headers: it may not be able to read the file itself). 0 or -errno. */
int privsep_web_reload(Privsep *p, const char *text, size_t len);
/* Ends the channel (the listener exits when it sees the end) and joins every thread; requests
 * still waiting in the sampler must have been let go first (sampler_interrupt). The sampler
 * may still publish (into the ended channel) until it is stopped. NULL-safe. */
void privsep_stop(Privsep *p);
/* Stops (if not yet) and frees; call once the sampler is stopped. NULL-safe, returns NULL. */
Privsep *privsep_free(Privsep *p);
