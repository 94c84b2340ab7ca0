/* http: the HTTP interface of DESIGN.md §4, on libmicrohttpd. Handlers render only from the
 * latest Snapshot in the holder. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "http/webconfig.h"
#include "snapshot/snapshot.h"

typedef struct HttpServer HttpServer;

/* Asks for a census of pid now (GET .../objects?fresh=1), published in the holder's snapshot
 * before it returns. Returns 0 (taken), 1 (not taken: the latest census is recent enough and
 * is the answer), -EAGAIN (rate-limited: *ret_retry_after seconds to wait, the reason in err),
 * or -errno with a sentence in err. */
typedef int (*HttpCensusFn)(void *ctx, pid_t pid, double *ret_retry_after, char *err,
                            size_t errlen);

/* Binds and listens on "HOST:PORT" ("[::1]:9100" for IPv6): the listening socket (O_CLOEXEC),
 * or -errno with a sentence for the operator in err (a taken port says so, and how to choose
 * another). The privileged process binds; the unprivileged listener serves (priv/). */
int http_listen(const char *listen, char *err, size_t errlen);
/* Serves on fd (from http_listen, owned from now on; listen is its address, for messages) from
 * holder; census (with ctx) serves fresh censuses, or is NULL. web (NULL: none) is a loaded web
 * config: with TLS in it only HTTPS is served, with its certificate and key bytes (the files are
 * not read here), and client certificates are checked per client_auth_type (403 when refused);
 * with users, every request needs one of them (401 otherwise); its headers go on every
 * response. web is not kept. On failure returns -errno with a sentence in err. The caller owns
 * *ret. */
int http_start(int fd, const char *listen, const WebConfig *web, SnapshotHolder *holder,
               HttpCensusFn census, void *ctx, HttpServer **ret, char *err, size_t errlen);
/* Replaces the users and headers (a reload); the TLS settings stay those of http_start. web
 * is not kept. Returns 0 or -ENOMEM (then nothing changed). */
int http_set_web(HttpServer *h, const WebConfig *web);
void http_stop(HttpServer *h);
/* Whether h listens on an address other hosts can reach (not 127.0.0.0/8 or ::1; 0.0.0.0 and
 * :: are); then buf (len bytes) holds the warning to log, naming what is exposed and how to
 * restrict it. */
bool http_exposed(const HttpServer *h, char *buf, size_t len);

/* Answers GET .../referrers?type=T[&fresh=1]: 0 (computed now) or 1 (an earlier answer, kept)
 * with the JSON document in *ret_json (the server frees it), -EAGAIN when rate-limited (429
 * after *ret_retry_after seconds), or -errno with a sentence in err. */
typedef int (*HttpReferrersFn)(void *ctx, pid_t pid, const char *type, bool fresh,
                               double *ret_retry_after, char **ret_json, char *err, size_t errlen);
/* Serves .../referrers through fn (with ctx); before this call the path answers 503. */
void http_set_referrers(HttpServer *h, HttpReferrersFn fn, void *ctx);

/* Answers GET .../history[?seconds=N] of a watched pid: the history document with the samples
 * taken at or after `since` (epoch seconds; 0: all), a malloc'd string the server frees (its
 * length in *ret_len), or NULL when out of memory. */
typedef char *(*HttpHistoryFn)(void *ctx, pid_t pid, double since, size_t *ret_len);
/* Serves .../history through fn (with ctx); before this call the path answers 503. */
void http_set_history(HttpServer *h, HttpHistoryFn fn, void *ctx);
/* The value of ?seconds=N (NULL: absent): N when it is a number of seconds above 0 and at most
 * 10 years, 0 (all) when absent, -1 when malformed. */
double http_parse_seconds(const char *v);
/* How long /healthz lets pass without a new snapshot before it answers 503 "stalled": ten
 * sampling intervals, and never under 5 s (a slow /proc read or a busy machine delays a
 * sample or two; ten in a row do not go missing on a working sampler). */
double http_stale_after(double interval);

/* Picks the /metrics format for an Accept header (NULL: none sent): OpenMetrics when
 * application/openmetrics-text is acceptable, text 0.0.4 for text/plain, JSON otherwise; the
 * highest q wins, ties go OpenMetrics, text, JSON. */
SnapFormat http_negotiate(const char *accept);
/* Whether an Accept-Encoding header allows gzip (q > 0). */
bool http_accepts_gzip(const char *accept_encoding);
/* Whether a request target as the client sent it, before percent-decoding, holds a control
 * character: raw, or encoded as %00-%1f or %7f. Such a request gets 400: decoded, %00 would
 * cut the path the handler sees short ("/metrics%00.json" read as "/metrics"). */
bool http_uri_has_control(const char *raw);
/* Parses "HOST:PORT" into host (size hostlen) and port. -EINVAL when malformed. */
int http_parse_listen(const char *listen, char *host, size_t hostlen, unsigned *port);
/* The process id of a path "/api/v1/processes/<pid>[/rest]", given what follows the prefix and
 * its slash: the pid, with *ret_rest at the "/rest" (or the end), or -1 when it is not a plain
 * positive number (leading zeros, signs and values over 0x3fffffff are not). Exposed, like
 * http_parse_top(), so that tests/fuzz can reach the handlers' parsing without a connection. */
long http_parse_pid(const char *s, const char **ret_rest);
/* The value of ?top=N (NULL: absent): N when it is a whole number in 1..1000000, 0 (all) when
 * absent, -1 when malformed. */
long http_parse_top(const char *v);
