/* chan: the narrow channel between the privileged sampler process and the unprivileged HTTP
 * listener process (privsep.h, listener.h): one AF_UNIX SOCK_SEQPACKET socketpair carrying
 * fixed-size messages, each with at most one file descriptor (SCM_RIGHTS).
 *
 * Sampler → listener: CHAN_SNAPSHOT (a sealed memfd, snapshot/snapshot.h), CHAN_ANSWER (to a
 * request: its id, result, retry-after and error sentence; a referrers document as a sealed
 * memfd), CHAN_LOG_LEVEL and CHAN_WEB_RELOAD (after a reload: the web config file's text, as a
 * sealed memfd).
 * Listener → sampler: CHAN_HELLO (serving, privileges dropped), CHAN_SNAPSHOT_TAKEN (the first
 * snapshot is published, so readiness may be announced), CHAN_CENSUS, CHAN_REFERRERS and
 * CHAN_REFERRERS_FRESH (GET .../objects?fresh=1 and .../referrers?type=T[&fresh=1]: an id, a
 * pid and a validated type name).
 *
 * No message is parsed beyond its fixed fields: chan_recv checks the size, the op, that the
 * strings are NUL-terminated within their arrays and that a type name is what
 * chan_type_valid() accepts, and refuses anything else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ChanOp {
    CHAN_HELLO = 1,
    CHAN_SNAPSHOT,
    CHAN_SNAPSHOT_TAKEN,
    CHAN_CENSUS,
    CHAN_REFERRERS,
    CHAN_ANSWER,
    CHAN_LOG_LEVEL,
    CHAN_REFERRERS_FRESH,
    CHAN_WEB_RELOAD,
    CHAN_NOPS,
} ChanOp;

#define CHAN_TYPE_MAX 128 /* a type name's bytes, NUL included: the HTTP side's limit */
#define CHAN_ERR_MAX  300

typedef struct ChanMsg {
    uint32_t op;
    uint32_t id; /* a request's id, echoed by its answer */
    int32_t pid;
    int32_t result; /* an answer: >= 0, or -errno */
    int32_t level;  /* CHAN_LOG_LEVEL */
    uint32_t type_len;
    double retry_after;
    char type[CHAN_TYPE_MAX];
    char err[CHAN_ERR_MAX];
} ChanMsg;

/* Whether a type name may cross the channel: 1..CHAN_TYPE_MAX-1 bytes, none of them a control
 * character. */
bool chan_type_valid(const char *type, size_t len);

/* Sends m, with fd (or none: -1). -errno on failure (-EPIPE: the other side is gone). */
int chan_send(int sock, const ChanMsg *m, int fd);
/* Receives one message into *m, and the fd it carries into *ret_fd (-1: none; the caller owns
 * it). -EPIPE at the end of the channel, -EBADMSG for a malformed message (any fd it carried is
 * closed), or -errno. */
int chan_recv(int sock, ChanMsg *m, int *ret_fd);

/* A sealed memfd holding len bytes of data (a referrers document). The caller owns *ret_fd. */
int chan_memfd(const char *data, size_t len, int *ret_fd);
/* Reads a sealed memfd into a malloc'd NUL-terminated string (at most max bytes): the caller
 * frees *ret. Takes ownership of fd. */
int chan_read_memfd(int fd, size_t max, char **ret);
