/* http: the HTTP interface of DESIGN.md §4, on libmicrohttpd. Handlers render only from the
 * latest Snapshot in the holder. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "metrics/snapshot.h"

typedef struct HttpServer HttpServer;

/* Takes a census of pid now and publishes it (GET .../objects?fresh=1). Returns 0 or -errno
 * with a sentence in err. */
typedef int (*HttpCensusFn)(void *ctx, pid_t pid, char *err, size_t errlen);

/* Listens on "HOST:PORT" ("[::1]:9100" for IPv6) and serves from holder; census (with ctx)
 * serves fresh censuses, or is NULL. On failure returns -errno with a sentence for the
 * operator in err (a taken port says so, and how to choose another). The caller owns *ret. */
int http_start(const char *listen, SnapshotHolder *holder, HttpCensusFn census, void *ctx,
               HttpServer **ret, char *err, size_t errlen);
void http_stop(HttpServer *h);

/* Answers GET .../referrers?type=T: 0 with the JSON document in *ret_json (the server frees it),
 * or -errno with a sentence in err. */
typedef int (*HttpReferrersFn)(void *ctx, pid_t pid, const char *type, char **ret_json, char *err,
                               size_t errlen);
/* Serves .../referrers through fn (with ctx); before this call the path answers 503. */
void http_set_referrers(HttpServer *h, HttpReferrersFn fn, void *ctx);

/* Picks the /metrics format for an Accept header (NULL: none sent): OpenMetrics when
 * application/openmetrics-text is acceptable, text 0.0.4 for text/plain, JSON otherwise; the
 * highest q wins, ties go OpenMetrics, text, JSON. */
SnapFormat http_negotiate(const char *accept);
/* Whether an Accept-Encoding header allows gzip (q > 0). */
bool http_accepts_gzip(const char *accept_encoding);
/* Parses "HOST:PORT" into host (size hostlen) and port. -EINVAL when malformed. */
int http_parse_listen(const char *listen, char *host, size_t hostlen, unsigned *port);
