#include "http/http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "http/auth.h"
#include "http/webassets.h"
#include "metrics/prom.h"
#include "pymemd/api.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strbuf.h"

#define CONTENT_TYPE_JSON "application/json"

/* What a web config sets that a reload may change (users, headers): immutable once made, shared
 * by the requests that started under it, freed by the last of them. */
typedef struct HttpWeb {
    int refs;
    Auth *auth; /* NULL: no basic auth */
    WebHeader *headers;
    size_t nheaders;
} HttpWeb;

/* Connections. libmicrohttpd's epoll threads serve any number of slow connections without
 * blocking one another, so what keeps a scrape from being shut out is that slow clients cannot
 * take every slot: each client address may hold HTTP_MAX_PER_CLIENT connections (a Prometheus
 * server holds one per target; 128 leaves room for a dashboard's bursts, whose closed connections
 * count until a worker has cleaned them up), all of them together HTTP_MAX_CONNECTIONS, and a
 * connection that sends nothing for HTTP_IDLE_TIMEOUT seconds, in the middle of a request or
 * between two, is closed (a scrape sends its request at once; Prometheus reconnects when its
 * kept-alive connection was closed). */
#define HTTP_MAX_CONNECTIONS 4000u
#define HTTP_MAX_PER_CLIENT  128u
#define HTTP_IDLE_TIMEOUT    5u

struct HttpServer {
    struct MHD_Daemon *mhd;
    bool tls;
    WebClientAuth client_auth;
    pthread_mutex_t web_lock;
    HttpWeb *web; /* under web_lock; never NULL while serving */
    SnapshotHolder *holder;
    HttpCensusFn census;
    void *census_ctx;
    int fd;
    HttpReferrersFn referrers;
    void *referrers_ctx;
    HttpHistoryFn history;
    void *history_ctx;
    bool exposed; /* listening on an address other hosts can reach */
};

void http_set_referrers(HttpServer *h, HttpReferrersFn fn, void *ctx)
{
    h->referrers = fn;
    h->referrers_ctx = ctx;
}

void http_set_history(HttpServer *h, HttpHistoryFn fn, void *ctx)
{
    h->history = fn;
    h->history_ctx = ctx;
}

/* ---- content negotiation ---------------------------------------------------------------- */

/* The value of parameter `name` ("q", "version") in a media range's parameters
 * ("; q=0.5; version=1.0.0"), into buf; false (buf "") when absent. */
static bool range_param(const char *params, size_t len, const char *name, char *buf, size_t size)
{
    size_t nlen = strlen(name);
    const char *p = params, *end = params + len;
    buf[0] = 0;
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(end - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t n = 0;
            for (const char *v = p + nlen + 1;
                 v < end && *v != ';' && *v != ' ' && *v != '\t' && n < size - 1; v++)
                buf[n++] = *v;
            buf[n] = 0;
            return true;
        }
        while (p < end && *p != ';')
            p++;
    }
    return false;
}

/* q of a media range, 1 when absent or malformed. */
static double range_q(const char *params, size_t len)
{
    char buf[16];
    if (!range_param(params, len, "q", buf, sizeof(buf)))
        return 1.0;
    char *e;
    double v = strtod(buf, &e);
    return e != buf && v >= 0 && v <= 1 ? v : 1.0;
}

static bool type_is(const char *t, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(t, want, len) == 0;
}

/* One item of a comma-separated header list: its token ("text/plain", "gzip") trimmed of blanks,
 * and its parameters from the first ';' on. */
typedef struct HeaderItem {
    const char *token;
    size_t tlen;
    const char *params;
    size_t plen;
} HeaderItem;

/* Yields the next item of the list at *p and advances *p; false at the end. */
static bool next_item(const char **p, HeaderItem *it)
{
    const char *s = *p;
    if (!*s)
        return false;
    const char *end = s;
    while (*end && *end != ',')
        end++;
    *p = *end ? end + 1 : end;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *semi = s;
    while (semi < end && *semi != ';')
        semi++;
    const char *tend = semi;
    while (tend > s && (tend[-1] == ' ' || tend[-1] == '\t'))
        tend--;
    *it = (HeaderItem){s, (size_t)(tend - s), semi, (size_t)(end - semi)};
    return true;
}

SnapFormat http_negotiate(const char *accept)
{
    if (!accept || !*accept)
        return SNAP_JSON;
    double q[SNAP_NFORMATS] = {-1, -1, -1};
    HeaderItem it;
    for (const char *p = accept; next_item(&p, &it);) {
        double rq = range_q(it.params, it.plen);
        char version[16];
        range_param(it.params, it.plen, "version", version, sizeof(version));
        int f = -1;
        /* pymemd writes OpenMetrics 1.0.0, which also satisfies 0.0.1 (the same text; what
         * Prometheus 2.20 asks for); a range naming another version is not ours to answer. */
        if (type_is(it.token, it.tlen, "application/openmetrics-text"))
            f = !*version || strcmp(version, "1.0.0") == 0 || strcmp(version, "0.0.1") == 0
                    ? SNAP_OPENMETRICS
                    : -1;
        else if (type_is(it.token, it.tlen, "text/plain") || type_is(it.token, it.tlen, "text/*"))
            f = SNAP_PROMETHEUS;
        else if (type_is(it.token, it.tlen, "application/json") ||
                 type_is(it.token, it.tlen, "application/*") || type_is(it.token, it.tlen, "*/*"))
            f = SNAP_JSON;
        if (f >= 0 && rq > q[f])
            q[f] = rq;
    }
    /* Highest q wins; on a tie the order of preference is OpenMetrics, text, JSON. */
    SnapFormat best = SNAP_JSON;
    double bq = 0;
    const SnapFormat order[] = {SNAP_OPENMETRICS, SNAP_PROMETHEUS, SNAP_JSON};
    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        if (q[order[i]] > bq) {
            bq = q[order[i]];
            best = order[i];
        }
    return best;
}

bool http_accepts_gzip(const char *ae)
{
    HeaderItem it;
    for (const char *p = ae ? ae : ""; next_item(&p, &it);)
        if (type_is(it.token, it.tlen, "gzip") || type_is(it.token, it.tlen, "x-gzip") ||
            type_is(it.token, it.tlen, "*"))
            return range_q(it.params, it.plen) > 0;
    return false;
}

static const char *const content_types[SNAP_NFORMATS] = {
    [SNAP_JSON] = CONTENT_TYPE_JSON,
    [SNAP_PROMETHEUS] = PROM_CONTENT_TYPE_TEXT,
    [SNAP_OPENMETRICS] = PROM_CONTENT_TYPE_OPENMETRICS,
};

/* ---- responses ------------------------------------------------------------------------- */

/* The web config of the request this thread is answering (set by handle()), whose headers go
 * on every response. libmicrohttpd calls handle() and queues its response on one thread. */
static __thread const HttpWeb *current_web;

/* Queues r with the configured headers, content_type (NULL: none, for a 304) and
 * cache_control, and releases it. */
static enum MHD_Result queue_cc(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
                                const char *content_type, const char *cache_control)
{
    if (!r)
        return MHD_NO;
    for (size_t i = 0; current_web && i < current_web->nheaders; i++)
        MHD_add_response_header(r, current_web->headers[i].name, current_web->headers[i].value);
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Every answer but the page's files: live data, never to be stored. */
static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
                             const char *content_type)
{
    return queue_cc(c, status, r, content_type, "no-store");
}

/* A malloc'd body handed to libmicrohttpd, which frees it. */
static enum MHD_Result send_owned(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                  const char *content_type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(body);
    return queue(c, status, r, content_type);
}

static enum MHD_Result send_static(struct MHD_Connection *c, unsigned status, const char *body,
                                   const char *content_type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    return queue(c, status, r, content_type);
}

/* A JSON error, with one extra header when hname is not NULL (Retry-After). */
static enum MHD_Result send_error_v(struct MHD_Connection *c, unsigned status, const char *hname,
                                    const char *hvalue, const char *fmt, va_list ap) _printf_(5, 0);
static enum MHD_Result send_error_v(struct MHD_Connection *c, unsigned status, const char *hname,
                                    const char *hvalue, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", status);
    cJSON_AddStringToObject(e, "message", msg);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    return queue(c, status, r, CONTENT_TYPE_JSON);
}

static enum MHD_Result send_error_v_hdr(struct MHD_Connection *c, unsigned status,
                                        const char *hname, const char *hvalue, const char *fmt, ...)
    _printf_(5, 6);
static enum MHD_Result send_error_v_hdr(struct MHD_Connection *c, unsigned status,
                                        const char *hname, const char *hvalue, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result r = send_error_v(c, status, hname, hvalue, fmt, ap);
    va_end(ap);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    _printf_(3, 4);
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result r = send_error_v(c, status, NULL, NULL, fmt, ap);
    va_end(ap);
    return r;
}

/* 429 Too Many Requests with Retry-After: whole seconds, rounded up (RFC 9110 10.2.3). */
static enum MHD_Result send_too_many(struct MHD_Connection *c, double retry_after, const char *fmt,
                                     ...) _printf_(3, 4);
static enum MHD_Result send_too_many(struct MHD_Connection *c, double retry_after, const char *fmt,
                                     ...)
{
    char secs[24];
    snprintf(secs, sizeof(secs), "%.0f", ceil(retry_after > 0 ? retry_after : 1));
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result r =
        send_error_v(c, MHD_HTTP_TOO_MANY_REQUESTS, MHD_HTTP_HEADER_RETRY_AFTER, secs, fmt, ap);
    va_end(ap);
    return r;
}

static void unref_cb(void *cls)
{
    snapshot_unref(cls);
}

/* A body that lives in a snapshot: the response holds a reference until it is sent. */
static enum MHD_Result send_snapshot_body(struct MHD_Connection *c, Snapshot *snap, SnapFormat f,
                                          bool gzip)
{
    SnapBody plain = snapshot_body(snap, f);
    const SnapBody *b = gzip ? snapshot_gzip(snap, f) : &plain;
    if (!b) {
        b = &plain;
        gzip = false;
    }
    /* The body is read-only (a sealed, read-only mapping in the listener process);
     * libmicrohttpd only reads it, but takes a non-const pointer. */
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
        b->len, (void *)b->data, unref_cb, snapshot_ref(snap));
    if (!r) {
        snapshot_unref(snap);
        return MHD_NO;
    }
    if (gzip)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
    return queue(c, MHD_HTTP_OK, r, content_types[f]);
}

/* A malloc'd JSON body (NULL: out of memory); age >= 0 adds an Age header (seconds since the
 * census it shows was taken, for a ?fresh=1 answered with an earlier census). */
static enum MHD_Result send_json_age(struct MHD_Connection *c, char *body, size_t len, double age)
{
    if (!body)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (age >= 0) {
        char secs[24];
        snprintf(secs, sizeof(secs), "%.0f", floor(age));
        MHD_add_response_header(r, MHD_HTTP_HEADER_AGE, secs);
    }
    return queue(c, MHD_HTTP_OK, r, CONTENT_TYPE_JSON);
}

/* A JSON body that lives in a snapshot, copied (it is small: one process). */
static enum MHD_Result send_json_copy(struct MHD_Connection *c, SnapBody b)
{
    char *body = malloc(b.len + 1);
    if (body)
        memcpy(body, b.data, b.len);
    return send_json_age(c, body, b.len, -1);
}

/* ---- routes ---------------------------------------------------------------------------- */

/* ---- the page at / and its files (web/, embedded by web/embed.py) ------------------------ */

/* The page runs only its own files: no inline script or style, no other origin, fetches only
 * to pymemd itself (whose basic auth credentials the browser then sends); nobody may frame it.
 * uPlot styles its elements through the CSSOM, which style-src does not restrict. A web config's
 * own Content-Security-Policy header, when set, applies as well (a browser enforces both). */
#define PAGE_CSP                                                                                   \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* Whether the web config sets header name on every answer already. */
static bool configured_header(const char *name)
{
    for (size_t i = 0; current_web && i < current_web->nheaders; i++)
        if (strcasecmp(current_web->headers[i].name, name) == 0)
            return true;
    return false;
}

static const WebAsset *asset_find(const char *url)
{
    for (size_t i = 0; i < web_nassets; i++)
        if (strcmp(web_assets[i].path, url) == 0)
            return &web_assets[i];
    return NULL;
}

/* Whether an If-None-Match header names etag (or is "*"); weak tags compare by their value
 * (RFC 9110 13.1.2: If-None-Match uses the weak comparison). */
static bool etag_matches(const char *inm, const char *etag)
{
    HeaderItem it;
    size_t elen = strlen(etag);
    for (const char *p = inm ? inm : ""; next_item(&p, &it);) {
        const char *t = it.token;
        size_t n = it.tlen;
        if (n >= 2 && strncmp(t, "W/", 2) == 0) {
            t += 2;
            n -= 2;
        }
        if ((n == 1 && *t == '*') || (n == elen && memcmp(t, etag, n) == 0))
            return true;
    }
    return false;
}

/* A file of the page: gzip when the client takes it, 304 when it has this version already
 * (Cache-Control: no-cache, so that a browser asks again after an upgrade of pymemd and gets a
 * 304 otherwise), the CSP on the HTML. */
static enum MHD_Result serve_asset(struct MHD_Connection *c, const WebAsset *a)
{
    bool gz = a->gzip && http_accepts_gzip(MHD_lookup_connection_value(
                             c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    const char *etag = gz ? a->etag_gzip : a->etag;
    bool html = strncmp(a->content_type, "text/html", 9) == 0;
    bool not_modified = etag_matches(
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH), etag);
    struct MHD_Response *r = not_modified
                                 ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
                                 : MHD_create_response_from_buffer(gz ? a->gzip_len : a->len,
                                                                   (void *)(gz ? a->gzip : a->data),
                                                                   MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gz && !not_modified)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (html) {
        MHD_add_response_header(r, "Content-Security-Policy", PAGE_CSP);
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    if (!configured_header("X-Content-Type-Options"))
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    return queue_cc(c, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, r,
                    not_modified ? NULL : a->content_type, "no-cache");
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c, Snapshot *snap)
{
    SnapFormat f;
    const char *fmt = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
    if (fmt) {
        if (strcmp(fmt, "json") == 0)
            f = SNAP_JSON;
        else if (strcmp(fmt, "prometheus") == 0)
            f = SNAP_PROMETHEUS;
        else if (strcmp(fmt, "openmetrics") == 0)
            f = SNAP_OPENMETRICS;
        else
            return send_error(c, MHD_HTTP_BAD_REQUEST,
                              "unknown format \"%.64s\": use json, prometheus or openmetrics", fmt);
    } else {
        f = http_negotiate(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"));
    }
    bool gz = http_accepts_gzip(
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    return send_snapshot_body(c, snap, f, gz);
}

long http_parse_pid(const char *s, const char **ret_rest)
{
    long v = 0;
    const char *p = s;
    if (*p < '1' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 0x3fffffff)
            return -1;
    }
    if (*p && *p != '/')
        return -1;
    *ret_rest = p;
    return v;
}

long http_parse_top(const char *v)
{
    if (!v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    return *v && !*end && n > 0 && n <= 1000000 ? n : -1;
}

double http_stale_after(double interval)
{
    return interval * 10 > 5 ? interval * 10 : 5;
}

double http_parse_seconds(const char *v)
{
    if (!v)
        return 0;
    /* Plain decimal numbers only: strtod also takes blanks, signs, "inf", "nan" and hex. */
    if (!((*v >= '0' && *v <= '9') || *v == '.') || strpbrk(v, "xX"))
        return -1;
    char *end;
    double n = strtod(v, &end);
    if (*end || !isfinite(n) || n <= 0 || n > 315576000.0)
        return -1;
    return n;
}

static bool query_flag(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

static enum MHD_Result serve_census(HttpServer *h, struct MHD_Connection *c, Snapshot *snap,
                                    pid_t pid, bool growth)
{
    long top = http_parse_top(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "top"));
    if (top < 0)
        return send_error(c, MHD_HTTP_BAD_REQUEST, "top must be a positive whole number");
    Snapshot *fresh = NULL;
    bool reused = false;
    if (query_flag(c, "fresh")) {
        char err[300] = "";
        double retry = 0;
        int k = h->census ? h->census(h->census_ctx, pid, &retry, err, sizeof(err)) : -ENOTSUP;
        if (k == -EAGAIN)
            return send_too_many(c, retry, "%s", err);
        if (k < 0)
            return send_error(c, k == -ENOENT ? MHD_HTTP_NOT_FOUND : MHD_HTTP_SERVICE_UNAVAILABLE,
                              "census of process %d failed: %s", pid, err[0] ? err : strerror(-k));
        /* 1: a census younger than census_min_interval answers instead of a new one. */
        reused = k == 1;
        fresh = holder_get(h->holder);
        snap = fresh ? fresh : snap;
    }
    SnapProc t;
    enum MHD_Result r;
    if (!snapshot_find(snap, pid, &t))
        r = send_error(c, MHD_HTTP_NOT_FOUND, "process %d is not watched", pid);
    else if (!t.have_census)
        r = send_error(c, MHD_HTTP_NOT_FOUND, "no object census of process %d yet%s%.*s", pid,
                       t.census_error.len ? ": " : " (add ?fresh=1 to take one now)",
                       (int)MIN(t.census_error.len, 400), t.census_error.data);
    else if (growth && !t.have_growth)
        r = send_error(c, MHD_HTTP_NOT_FOUND,
                       "growth needs two censuses of process %d; one has been taken", pid);
    else if (growth)
        r = send_json_copy(c, t.growth);
    else {
        size_t len = 0;
        char *body = snapshot_census(snap, pid, (size_t)top, &len);
        r = send_json_age(c, body, len, reused ? fmax(0, clock_real() - t.census_at) : -1);
    }
    if (fresh)
        snapshot_unref(fresh);
    return r;
}

/* DESIGN §4.1. The latest answer for the type, kept by the sampler, answers a request without
 * fresh=1, and one with it inside census_min_interval; its at and an Age header say how old it
 * is, as for a census. */
static enum MHD_Result serve_referrers(HttpServer *h, struct MHD_Connection *c, pid_t pid)
{
    const char *type = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "type");
    if (!type || !*type || strlen(type) >= 128)
        return send_error(c, MHD_HTTP_BAD_REQUEST, "type=T is required (a census type name)");
    char err[300] = "", *json = NULL;
    double retry = 0;
    int k = h->referrers ? h->referrers(h->referrers_ctx, pid, type, query_flag(c, "fresh"), &retry,
                                        &json, err, sizeof(err))
                         : -ENOTSUP;
    if (k == -EAGAIN)
        return send_too_many(c, retry, "%s", err);
    if (k < 0)
        return send_error(c,
                          k == -ENOENT   ? MHD_HTTP_NOT_FOUND
                          : k == -EINVAL ? MHD_HTTP_BAD_REQUEST
                                         : MHD_HTTP_SERVICE_UNAVAILABLE,
                          "referrers of process %d failed: %s", pid, err[0] ? err : strerror(-k));
    if (k == 0)
        return send_owned(c, MHD_HTTP_OK, json, strlen(json), CONTENT_TYPE_JSON);
    /* The kept answer's age, from its own "at". */
    cJSON *doc = cJSON_Parse(json);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(doc, "at");
    double age = cJSON_IsNumber(at) ? fmax(0, clock_real() - at->valuedouble) : 0;
    cJSON_Delete(doc);
    return send_json_age(c, json, strlen(json), age);
}

/* DESIGN §4.2: the samples kept of a watched process, oldest first; ?seconds=N keeps the last N
 * seconds. */
static enum MHD_Result serve_history(HttpServer *h, struct MHD_Connection *c, pid_t pid)
{
    double seconds =
        http_parse_seconds(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seconds"));
    if (seconds < 0)
        return send_error(c, MHD_HTTP_BAD_REQUEST,
                          "seconds must be a number of seconds above 0 (e.g. ?seconds=600)");
    if (!h->history)
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no history is kept here");
    size_t len = 0;
    char *body = h->history(h->history_ctx, pid, seconds > 0 ? clock_real() - seconds : 0, &len);
    if (!body)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return send_owned(c, MHD_HTTP_OK, body, len, CONTENT_TYPE_JSON);
}

static enum MHD_Result serve_api(HttpServer *h, struct MHD_Connection *c, Snapshot *snap,
                                 const char *url)
{
    static const char prefix[] = PYMEMD_PATH_PROCESSES;
    const char *rest = url + sizeof(prefix) - 1;
    if (*rest == 0 || strcmp(rest, "/") == 0) {
        size_t len;
        char *body = snapshot_processes(snap, &len);
        if (!body)
            return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return send_owned(c, MHD_HTTP_OK, body, len, CONTENT_TYPE_JSON);
    }
    if (*rest != '/')
        return send_error(c, MHD_HTTP_NOT_FOUND, "no such path: %.200s", url);
    const char *tail;
    long pid = http_parse_pid(rest + 1, &tail);
    if (pid < 0)
        return send_error(c, MHD_HTTP_BAD_REQUEST, "\"%.64s\" is not a process id", rest + 1);
    if (strcmp(tail, "/objects") == 0 || strcmp(tail, "/growth") == 0)
        return serve_census(h, c, snap, (pid_t)pid, tail[1] == 'g');
    if (strcmp(tail, "/referrers") == 0)
        return serve_referrers(h, c, (pid_t)pid);
    SnapProc t;
    if (!snapshot_find(snap, (pid_t)pid, &t))
        return send_error(c, MHD_HTTP_NOT_FOUND, "process %ld is not watched", pid);
    if (strcmp(tail, "/history") == 0)
        return serve_history(h, c, (pid_t)pid);
    if (*tail == 0 || strcmp(tail, "/") == 0)
        return send_json_copy(c, t.process);
    return send_error(c, MHD_HTTP_NOT_FOUND, "no such path: %.200s", url);
}

static int hexval(char x)
{
    if (x >= '0' && x <= '9')
        return x - '0';
    if (x >= 'a' && x <= 'f')
        return x - 'a' + 10;
    if (x >= 'A' && x <= 'F')
        return x - 'A' + 10;
    return -1;
}

bool http_uri_has_control(const char *raw)
{
    for (const char *p = raw; *p; p++) {
        unsigned char b = (unsigned char)*p;
        if (b == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            b = (unsigned char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        }
        if (b < 0x20 || b == 0x7f)
            return true;
    }
    return false;
}

/* Where a request is in its life, kept in libmicrohttpd's per-request pointer (a pointer into
 * req_states). It starts as what uri_logged returns, before the handler's first call. */
enum { REQ_ANNOUNCED, REQ_ANNOUNCED_CONTROL, REQ_READ, REQ_READ_CONTROL, REQ_NSTATES };
static char req_states[REQ_NSTATES];

/* Sees the request target as the client sent it. The handler only gets it percent-decoded,
 * where %00 has become the end of the string: "/metrics%00.json" would be served as
 * "/metrics", "/api/v1/processes/PID%00x" as the process. */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    return &req_states[http_uri_has_control(uri) ? REQ_ANNOUNCED_CONTROL : REQ_ANNOUNCED];
}

static enum MHD_Result serve_request(void *cls, struct MHD_Connection *c, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **req_cls)
{
    HttpServer *h = cls;
    /* The first call only announces the request. Answering before the request has been read
     * in full makes libmicrohttpd close the connection after the response; answering on the
     * next call keeps it alive for the client's next request (Prometheus reuses connections). */
    int state = *req_cls ? (int)((char *)*req_cls - req_states) : REQ_ANNOUNCED;
    if (state == REQ_ANNOUNCED || state == REQ_ANNOUNCED_CONTROL) {
        *req_cls = &req_states[state == REQ_ANNOUNCED ? REQ_READ : REQ_READ_CONTROL];
        return MHD_YES;
    }
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && !head) {
        /* Read (and drop) any upload first: libmicrohttpd calls again until it is consumed. */
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        struct MHD_Response *r = NULL;
        char *body = strdup("{\"error\":{\"code\":405,\"message\":\"only GET and HEAD\"}}");
        if (body)
            r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return queue(c, MHD_HTTP_METHOD_NOT_ALLOWED, r, CONTENT_TYPE_JSON);
    }

    if (state == REQ_READ_CONTROL)
        return send_error(c, MHD_HTTP_BAD_REQUEST,
                          "the request target holds a control character (%%00-%%1f or %%7f)");
    if (strcmp(url, PYMEMD_PATH_HEALTHZ) == 0) {
        /* Ready only once the first snapshot is published: every scrape after a 200 here is
         * served, never a 503. Alive only while snapshots keep coming: a sampler that stopped
         * publishing (stuck in a read, stopped) would otherwise have its last numbers served
         * as if current, and outside systemd (its watchdog) nothing else would notice. */
        Snapshot *last = holder_get(h->holder);
        if (!last)
            return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "starting: the first sample is not taken yet");
        double interval = snapshot_settings(last).interval;
        snapshot_unref(last);
        double age = holder_age(h->holder), limit = http_stale_after(interval);
        if (age > limit)
            return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "stalled: no new sample for %.0f s (interval %g s, the limit "
                              "%g s): the sampler is stuck or stopped",
                              age, interval, limit);
        return send_static(c, MHD_HTTP_OK, "ok\n", "text/plain; charset=utf-8");
    }
    const WebAsset *asset = asset_find(url);
    if (asset)
        return serve_asset(c, asset);

    bool metrics = strcmp(url, PYMEMD_PATH_METRICS) == 0;
    bool api = strncmp(url, PYMEMD_PATH_PROCESSES, strlen(PYMEMD_PATH_PROCESSES)) == 0;
    if (!metrics && !api)
        return send_error(c, MHD_HTTP_NOT_FOUND, "no such path: %.200s", url);

    Snapshot *snap = holder_get(h->holder);
    if (!snap)
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the first sample is not taken yet");
    enum MHD_Result r = metrics ? serve_metrics(c, snap) : serve_api(h, c, snap, url);
    snapshot_unref(snap);
    return r;
}

/* ---- access: client certificates and basic auth (web config) ------------------------------ */

static HttpWeb *web_free(HttpWeb *w)
{
    if (!w)
        return NULL;
    auth_free(w->auth);
    for (size_t i = 0; i < w->nheaders; i++) {
        free(w->headers[i].name);
        free(w->headers[i].value);
    }
    free(w->headers);
    free(w);
    return NULL;
}

static HttpWeb *web_get(HttpServer *h)
{
    pthread_mutex_lock(&h->web_lock);
    HttpWeb *w = h->web;
    w->refs++;
    pthread_mutex_unlock(&h->web_lock);
    return w;
}

static void web_put(HttpServer *h, HttpWeb *w)
{
    pthread_mutex_lock(&h->web_lock);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&h->web_lock);
    if (last)
        web_free(w);
}

/* The users and headers of web (NULL: none) as an HttpWeb with one reference. */
static int web_new(const WebConfig *web, HttpWeb **ret)
{
    HttpWeb *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->refs = 1;
    if (web && web->nusers && auth_new(web->users, web->nusers, &w->auth) < 0) {
        web_free(w);
        return -ENOMEM;
    }
    if (web && web->nheaders) {
        w->headers = calloc(web->nheaders, sizeof(*w->headers));
        if (!w->headers) {
            web_free(w);
            return -ENOMEM;
        }
        for (size_t i = 0; i < web->nheaders; i++, w->nheaders++) {
            w->headers[i].name = strdup(web->headers[i].name);
            w->headers[i].value = strdup(web->headers[i].value);
            if (!w->headers[i].name || !w->headers[i].value) {
                w->nheaders++;
                web_free(w);
                return -ENOMEM;
            }
        }
    }
    *ret = w;
    return 0;
}

int http_set_web(HttpServer *h, const WebConfig *web)
{
    HttpWeb *w;
    int k = web_new(web, &w);
    if (k < 0)
        return k;
    pthread_mutex_lock(&h->web_lock);
    HttpWeb *old = h->web;
    h->web = w;
    pthread_mutex_unlock(&h->web_lock);
    web_put(h, old);
    return 0;
}

/* Why the client certificate of this TLS connection is not good enough for client_auth_type,
 * or NULL when it is. libmicrohttpd only asks for a certificate (when given a CA) and leaves
 * checking it to us. */
static const char *client_cert_refusal(const HttpServer *h, struct MHD_Connection *c)
{
    if (!h->tls || h->client_auth == WEB_NO_CLIENT_CERT ||
        h->client_auth == WEB_REQUEST_CLIENT_CERT)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s = ci ? (gnutls_session_t)ci->tls_session : NULL;
    if (!s)
        return "no TLS session";
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0)
        return h->client_auth == WEB_VERIFY_CLIENT_CERT_IF_GIVEN
                   ? NULL
                   : "a client certificate is required";
    if (h->client_auth == WEB_REQUIRE_ANY_CLIENT_CERT)
        return NULL;
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(s, &status) < 0 || status != 0)
        return "the client certificate is not valid: not signed by the configured client CA, "
               "expired or not yet valid";
    return NULL;
}

/* Checks access before anything is served (exporter-toolkit guards every path, /healthz too),
 * then serves with the configured headers on every response. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    HttpServer *h = cls;
    /* The first call only announces the request (see serve_request): nothing is answered. */
    if (!*req_cls || *req_cls == &req_states[REQ_ANNOUNCED] ||
        *req_cls == &req_states[REQ_ANNOUNCED_CONTROL])
        return serve_request(cls, c, url, method, version, upload_data, upload_data_size, req_cls);
    HttpWeb *w = web_get(h);
    current_web = w;
    enum MHD_Result r;
    const char *refusal = client_cert_refusal(h, c);
    if (refusal) {
        r = send_error(c, MHD_HTTP_FORBIDDEN, "%s", refusal);
    } else if (w->auth) {
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(c, &pass);
        bool ok = auth_check(w->auth, user, pass);
        if (pass) {
            explicit_bzero(pass, strlen(pass));
            MHD_free(pass);
        }
        if (user)
            MHD_free(user);
        r = ok ? serve_request(cls, c, url, method, version, upload_data, upload_data_size, req_cls)
               : send_error_v_hdr(c, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                  "Basic realm=\"pymemd\", charset=\"UTF-8\"", "%s",
                                  "authentication required: a user and password of "
                                  "basic_auth_users in the web config");
    } else {
        r = serve_request(cls, c, url, method, version, upload_data, upload_data_size, req_cls);
    }
    current_web = NULL;
    web_put(h, w);
    return r;
}

/* ---- listening ------------------------------------------------------------------------- */

int http_parse_listen(const char *listen, char *host, size_t hostlen, unsigned *port)
{
    const char *colon;
    const char *h = listen;
    size_t len;
    if (*listen == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = listen + 1;
        len = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -EINVAL;
        len = (size_t)(colon - listen);
    }
    if (len == 0 || len >= hostlen)
        return -EINVAL;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] == 0 || *end || p == 0 || p > 65535)
        return -EINVAL;
    memcpy(host, h, len);
    host[len] = 0;
    *port = (unsigned)p;
    return 0;
}

/* Binds the socket ourselves, so that a taken port is reported as such and not as a generic
 * failure to start the server. */
int http_listen(const char *addr, char *err, size_t errlen)
{
    char host[256], portstr[8];
    unsigned port;
    if (http_parse_listen(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "--listen \"%s\": expected HOST:PORT, e.g. 127.0.0.1:9100", addr);
        return -EINVAL;
    }
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int k = getaddrinfo(host, portstr, &hints, &ai);
    if (k != 0) {
        snprintf(err, errlen, "--listen \"%s\": cannot resolve \"%s\": %s", addr, host,
                 gai_strerror(k));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        k = -errno;
        freeaddrinfo(ai);
        snprintf(err, errlen, "cannot create a socket: %s", strerror(-k));
        return k;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        k = -errno;
        if (k == -EADDRINUSE)
            snprintf(err, errlen,
                     "cannot listen on %s: the port is already in use by another program. Port "
                     "9100 is node_exporter's default, which often runs on the same host; choose "
                     "another with --listen (e.g. --listen 127.0.0.1:9258) or listen = ... in the "
                     "config file",
                     addr);
        else
            snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(-k));
        close(fd);
        freeaddrinfo(ai);
        return k;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Whether a bound address can be reached from other hosts: anything but 127.0.0.0/8, ::1 and
 * ::ffff:127.0.0.0/104 (the wildcards 0.0.0.0 and :: included). */
static bool exposed_address(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return true;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) != 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return false;
        return !(IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return true;
}

bool http_exposed(const HttpServer *h, char *buf, size_t len)
{
    if (!h->exposed)
        return false;
    snprintf(buf, len,
             "listening beyond loopback without authentication: any host that reaches this "
             "address can read the command lines (redacted unless cmdline = full), names and "
             "executables of the watched processes, their Python type names and object counts, "
             "heap and memory sizes, and can make pymemd stop a target briefly for a census "
             "(?fresh=1, referrers); listen on 127.0.0.1, or restrict access with a web "
             "configuration file (--web.config.file: basic auth and TLS) or a firewall");
    return true;
}

/* libmicrohttpd's own messages (a client that sent garbage, a failed accept) go through
 * pymemd's log: prefixed, as warnings, and at most HTTP_LOG_BURST every HTTP_LOG_INTERVAL
 * seconds for all of them together, because a client decides how many there are (one writing
 * garbage made 35,838 lines in 5 s). The two pool threads share the limit, hence the lock. */
#define HTTP_LOG_BURST    10
#define HTTP_LOG_INTERVAL 10.0
static pthread_mutex_t mhd_log_lock = PTHREAD_MUTEX_INITIALIZER;
static LogRateLimit mhd_log_rl;

/* fmt is libmicrohttpd's own format string, for its arguments in ap. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (log_get_level() < LOG_LEVEL_WARN)
        return;
    pthread_mutex_lock(&mhd_log_lock);
    bool ok = log_ratelimit_ok(&mhd_log_rl, clock_mono(), HTTP_LOG_INTERVAL, HTTP_LOG_BURST);
    pthread_mutex_unlock(&mhd_log_lock);
    if (!ok)
        return;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* The message may quote what a client sent: one line, no control bytes into the log. */
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = 0;
    for (char *m = msg; *m; m++)
        if ((unsigned char)*m < 0x20 || *m == 0x7f)
            *m = '?';
    log_warn("http: %s", msg);
}

/* The connection limit the descriptor limit allows: the soft RLIMIT_NOFILE is raised towards
 * the hard one (systemd's default soft limit is 1024), and 256 descriptors stay for the
 * sampler (maps, /proc files, ELF files). */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 512;
    rlim_t want = HTTP_MAX_CONNECTIONS + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : MIN(want, rl.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return HTTP_MAX_CONNECTIONS;
    return rl.rlim_cur > 512 ? (unsigned)(rl.rlim_cur - 256) : 256;
}

int http_start(int fd, const char *addr, const WebConfig *web, SnapshotHolder *holder,
               HttpCensusFn census, void *ctx, HttpServer **ret, char *err, size_t errlen)
{
    HttpServer *h = calloc(1, sizeof(*h));
    if (!h || web_new(web, &h->web) < 0) {
        free(h);
        snprintf(err, errlen, "out of memory");
        close(fd);
        return -ENOMEM;
    }
    pthread_mutex_init(&h->web_lock, NULL);
    h->tls = web && web->tls;
    h->client_auth = h->tls ? web->client_auth : WEB_NO_CLIENT_CERT;
    h->holder = holder;
    h->census = census;
    h->census_ctx = ctx;
    h->fd = fd;
    h->exposed = exposed_address(h->fd);
    /* With TLS, libmicrohttpd asks for a client certificate only when it has CAs to trust; for
     * RequestClientCert and RequireAnyClientCert without client_ca_file the server's own
     * certificate stands in (any certificate is accepted: none is verified then). */
    char priorities[128] = "NORMAL";
    const char *trust = NULL;
    if (h->tls) {
        webconfig_priorities(web, priorities, sizeof(priorities));
        trust = web->client_ca_pem;
        if (!trust && web->client_auth != WEB_NO_CLIENT_CERT)
            trust = web->cert_pem;
    }
    /* Two polling threads on epoll: the machine class has two cores, and a handler only copies
     * a prepared body, so more threads would only add contention. */
    /* The TLS options come last, after MHD_OPTION_END when TLS is off: libmicrohttpd stops
     * reading options there. */
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (h->tls ? MHD_USE_TLS : 0), 0, NULL,
        NULL, handle, h,
        /* First, so that no message goes to libmicrohttpd's own stderr logger. */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, h->fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit(), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        HTTP_MAX_PER_CLIENT, MHD_OPTION_URI_LOG_CALLBACK, uri_logged, NULL,
        h->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, h->tls ? web->cert_pem : NULL,
        MHD_OPTION_HTTPS_MEM_KEY, h->tls ? web->key_pem : NULL, MHD_OPTION_HTTPS_PRIORITIES,
        priorities, trust ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, trust, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, errlen, "cannot start the HTTP%s server on %s", h->tls ? "S" : "", addr);
        close(h->fd);
        web_free(h->web);
        pthread_mutex_destroy(&h->web_lock);
        free(h);
        return -EIO;
    }
    *ret = h;
    return 0;
}

void http_stop(HttpServer *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    close(h->fd);
    web_free(h->web);
    pthread_mutex_destroy(&h->web_lock);
    free(h);
}
