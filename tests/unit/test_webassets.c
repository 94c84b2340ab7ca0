/* webassets: the table web/embed.py generates holds the files of web/ as they are in the source
 * tree (so a build serves what was committed), each with its Content-Type, a gzip copy that
 * inflates to the same bytes, and ETags that tell the two apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "http/webassets.h"

static const WebAsset *find(const char *path)
{
    for (size_t i = 0; i < web_nassets; i++)
        if (strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

/* The whole file at PYMEMD_SOURCE_ROOT/rel (malloc'd, *ret_len bytes), or NULL. */
static unsigned char *read_source(const char *rel, size_t *ret_len)
{
    const char *root = getenv("PYMEMD_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            unsigned char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
    }
    fclose(f);
    *ret_len = len;
    return buf;
}

static void source_files(void **state)
{
    static const struct {
        const char *path, *file, *type;
    } want[] = {
        {"/", "web/index.html", "text/html; charset=utf-8"},
        {"/static/app.js", "web/app.js", "text/javascript; charset=utf-8"},
        {"/static/app.css", "web/app.css", "text/css; charset=utf-8"},
        {"/static/favicon.svg", "web/favicon.svg", "image/svg+xml"},
        {"/static/uPlot.iife.min.js", "web/vendor/uPlot.iife.min.js",
         "text/javascript; charset=utf-8"},
        {"/static/uPlot.min.css", "web/vendor/uPlot.min.css", "text/css; charset=utf-8"},
    };
    assert_int_equal(web_nassets, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const WebAsset *a = find(want[i].path);
        size_t len = 0;
        unsigned char *src = read_source(want[i].file, &len);
        if (!a || !src) {
            free(src);
            fail_msg("%s: %s", want[i].path, a ? "cannot read the source file" : "not embedded");
            return;
        }
        assert_string_equal(a->content_type, want[i].type);
        assert_int_equal(a->len, len);
        assert_memory_equal(a->data, src, len);
        free(src);
    }
}

static void gzip_copies(void **state)
{
    for (size_t i = 0; i < web_nassets; i++) {
        const WebAsset *a = &web_assets[i];
        /* Every text file here compresses. */
        assert_non_null(a->gzip);
        assert_true(a->gzip_len < a->len);
        unsigned char *out = malloc(a->len + 1);
        if (!out) {
            fail_msg("out of memory");
            return;
        }
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
        z.next_in = (unsigned char *)a->gzip;
        z.avail_in = (uInt)a->gzip_len;
        z.next_out = out;
        z.avail_out = (uInt)(a->len + 1);
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, a->len);
        assert_memory_equal(out, a->data, a->len);
        inflateEnd(&z);
        free(out);
    }
}

static void etags(void **state)
{
    for (size_t i = 0; i < web_nassets; i++) {
        const WebAsset *a = &web_assets[i];
        size_t n = strlen(a->etag);
        /* Strong, quoted: "\"<20 hex>\"". */
        assert_int_equal(n, 22);
        assert_int_equal(a->etag[0], '"');
        assert_int_equal(a->etag[n - 1], '"');
        assert_int_equal(strspn(a->etag + 1, "0123456789abcdef"), 20);
        assert_non_null(a->etag_gzip);
        assert_string_not_equal(a->etag, a->etag_gzip);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(a->path, web_assets[j].path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(source_files),
        cmocka_unit_test(gzip_copies),
        cmocka_unit_test(etags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
