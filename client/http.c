/* http: GET requests to pymemd through libcurl's easy interface. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config.h"
#include "http.h"
#include "util/macro.h"

/* Far above any real answer (a census of a few thousand types is some hundred KiB), low enough
 * that a wrong URL serving an endless stream cannot eat the machine's memory. */
#define HTTP_MAX_BODY           (64u << 20)
#define HTTP_CONNECT_TIMEOUT_MS 2000L

struct Http {
    CURL *curl;
    struct curl_slist *headers;
    bool (*abort_fn)(void *);
    void *abort_data;
    const HttpAccess *access;
};

/* The body being received, and why receiving stopped if it did. */
typedef struct Sink {
    char *buf;
    size_t len, cap;
    int err; /* -EFBIG or -ENOMEM once the write callback refused data */
} Sink;

static unsigned http_users;

static size_t sink_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    Sink *s = userdata;
    size_t n = size * nmemb;

    if (n > HTTP_MAX_BODY - s->len) {
        s->err = -EFBIG;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = MAX(s->cap * 2, s->len + n + 1);
        char *p = realloc(s->buf, MAX(cap, (size_t)4096));
        if (!p) {
            s->err = -ENOMEM;
            return 0;
        }
        s->buf = p;
        s->cap = MAX(cap, (size_t)4096);
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

static int http_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    Http *h = userdata;

    return h->abort_fn && h->abort_fn(h->abort_data) ? 1 : 0;
}

Http *http_new(void)
{
    _cleanup_(freep) Http *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    if (http_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    http_users++;
    h->curl = curl_easy_init();
    h->headers = curl_slist_append(NULL, "Accept: application/json");
    if (!h->curl || !h->headers) {
        Http *tmp = TAKE_PTR(h);
        http_free(tmp);
        return NULL;
    }
    return TAKE_PTR(h);
}

Http *http_free(Http *h)
{
    if (!h)
        return NULL;
    curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    free(h);
    if (--http_users == 0)
        curl_global_cleanup();
    return NULL;
}

void http_set_access(Http *h, const HttpAccess *access)
{
    h->access = access;
}

void http_set_abort(Http *h, bool (*abort_fn)(void *), void *userdata)
{
    h->abort_fn = abort_fn;
    h->abort_data = userdata;
}

/* Sets the options of one request. Connect and total timeouts are separate so that a daemon
 * that is not there is reported after 2 s, while a slow census may take its time. */
static CURLcode http_setup(Http *h, const char *url, long timeout_ms, Sink *sink, char *curlerr)
{
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;

    curl_easy_reset(c);
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(c, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for DNS timeouts: the live view owns signals */
    SET(CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_HTTPHEADER, h->headers);
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl can decode: pymemd gzips when asked */
    SET(CURLOPT_USERAGENT, "pymemctl/" PYMEMD_VERSION);
    SET(CURLOPT_WRITEFUNCTION, sink_write);
    SET(CURLOPT_WRITEDATA, sink);
    SET(CURLOPT_XFERINFOFUNCTION, http_progress);
    SET(CURLOPT_XFERINFODATA, h);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_ERRORBUFFER, curlerr);
    const HttpAccess *a = h->access;
    /* --cacert names the one CA to trust: the system's store (hundreds of files, read at
     * every connect, inside the 2 s connect timeout) is then not read at all. */
    if (a && a->cacert) {
        SET(CURLOPT_CAINFO, a->cacert);
        SET(CURLOPT_CAPATH, NULL);
    }
    if (a && a->cert)
        SET(CURLOPT_SSLCERT, a->cert);
    if (a && a->key)
        SET(CURLOPT_SSLKEY, a->key);
    if (a && a->user) {
        SET(CURLOPT_USERNAME, a->user);
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    if (a && a->user && a->password)
        SET(CURLOPT_PASSWORD, a->password);
    else
        /* No password given: ~/.netrc (or $NETRC) may have one for this host (and user). */
        SET(CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
    if (getenv("NETRC") && getenv("NETRC")[0])
        SET(CURLOPT_NETRC_FILE, getenv("NETRC"));
#undef SET
    return rc;
}

static int http_errno(CURLcode rc, const Sink *sink)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_ABORTED_BY_CALLBACK:
        return -ECANCELED;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_WRITE_ERROR:
        return sink->err ? sink->err : -EIO;
    default:
        return -EIO;
    }
}

int http_get(Http *h, const char *url, long timeout_ms, HttpReply *ret, char *errbuf, size_t errlen)
{
    char curlerr[CURL_ERROR_SIZE] = "";
    Sink sink = {0};
    CURLcode rc;
    long status = 0;

    *ret = (HttpReply){0};
    rc = http_setup(h, url, timeout_ms, &sink, curlerr);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h->curl);
    if (rc == CURLE_OK)
        rc = curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        int r = http_errno(rc, &sink);
        if (r == -EFBIG)
            snprintf(errbuf, errlen, "the answer is larger than %u MiB", HTTP_MAX_BODY >> 20);
        else
            snprintf(errbuf, errlen, "%s", curlerr[0] ? curlerr : curl_easy_strerror(rc));
        free(sink.buf);
        return r;
    }
    if (!sink.buf) {
        sink.buf = strdup("");
        if (!sink.buf) {
            snprintf(errbuf, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    *ret = (HttpReply){.status = status, .body = sink.buf, .len = sink.len};
    return 0;
}

void http_reply_clear(HttpReply *r)
{
    free(r->body);
    *r = (HttpReply){0};
}

int http_check_base_url(const char *url, char *errbuf, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL;
    int r = -EINVAL;

    if (!u) {
        snprintf(errbuf, errlen, "out of memory");
        return -ENOMEM;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        snprintf(errbuf, errlen, "not a URL");
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0))
        snprintf(errbuf, errlen, "only http:// and https:// URLs are supported");
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0])
        snprintf(errbuf, errlen, "the URL names no host");
    else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
             curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK)
        snprintf(errbuf, errlen,
                 "the URL must not have a query or fragment: pymemctl adds "
                 "the API paths to it");
    else
        r = 0;
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return r;
}
