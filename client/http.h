/* http: the client side of pymemd's HTTP interface, on libcurl. Knows nothing of JSON. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Http Http;

typedef struct HttpReply {
    long status; /* the HTTP status code */
    char *body;  /* NUL-terminated (the body itself may hold NULs); owned by the reply */
    size_t len;
} HttpReply;

/* Returns a new client (free with http_free()), or NULL when libcurl cannot be set up. One
 * client serves any number of requests, reusing the connection when the server allows it. */
Http *http_new(void);
/* Frees the client; NULL-safe; returns NULL. */
Http *http_free(Http *h);

/* How to reach a pymemd that has a web config (--web.config.file). Every field may be NULL. */
typedef struct HttpAccess {
    const char *cacert;   /* PEM file of the CA that signed the server's certificate */
    const char *cert;     /* client certificate (PEM) */
    const char *key;      /* its key (PEM); NULL: in the cert file */
    const char *user;     /* basic auth user; NULL: ~/.netrc (or $NETRC) when it has the host */
    const char *password; /* with user; NULL: the password of user in ~/.netrc */
} HttpAccess;

/* Uses access (which must outlive h's requests) for every request of h. */
void http_set_access(Http *h, const HttpAccess *access);

/* Makes a transfer in progress end early, as -ECANCELED, once abort() returns true: the live
 * view uses it to quit at once on a signal instead of waiting for a slow daemon. */
void http_set_abort(Http *h, bool (*abort_fn)(void *), void *userdata);

/* GETs url, with a connect timeout of 2 s and a total timeout of timeout_ms. Returns 0 once an
 * HTTP answer arrived, whatever its status, with the answer in *ret (clear it with
 * http_reply_clear()). Otherwise returns -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -ECANCELED,
 * -EFBIG (an answer larger than pymemctl would ever need), -ENOMEM or -EIO, leaves *ret empty
 * and puts libcurl's description of the failure into errbuf. */
int http_get(Http *h, const char *url, long timeout_ms, HttpReply *ret, char *errbuf,
             size_t errlen);
void http_reply_clear(HttpReply *r);

/* Checks that url is an http:// or https:// URL with a host and no query or fragment, so that
 * API paths can be appended to it. Returns 0 or -EINVAL with the reason in errbuf. */
int http_check_base_url(const char *url, char *errbuf, size_t errlen);
