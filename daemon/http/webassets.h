/* webassets: the files of the page at / (web/), embedded at build time by web/embed.py, which
 * generates the table below (webassets.c in the build dir). Served from memory by http.c. */
#pragma once

#include <stddef.h>

typedef struct WebAsset {
    const char *path;         /* the request path: "/", "/static/app.js" */
    const char *content_type; /* exact, with charset for text */
    const unsigned char *data;
    size_t len;
    const unsigned char *gzip; /* the same bytes gzip-compressed, or NULL when not smaller */
    size_t gzip_len;
    const char *etag;      /* strong ETag of data, quotes included */
    const char *etag_gzip; /* of gzip (NULL with it) */
} WebAsset;

/* Static, read-only; web_nassets entries. */
extern const WebAsset web_assets[];
extern const size_t web_nassets;
