#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool grow(StrBuf *b, size_t need)
{
    if (b->oom)
        return false;
    if (b->len + need + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need + 1)
        cap *= 2;
    char *n = realloc(b->s, cap);
    if (!n) {
        b->oom = true;
        return false;
    }
    b->s = n;
    b->cap = cap;
    return true;
}

void strbuf_append(StrBuf *b, const char *s, size_t len)
{
    if (!grow(b, len))
        return;
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = 0;
}

void strbuf_puts(StrBuf *b, const char *s)
{
    strbuf_append(b, s, strlen(s));
}

void strbuf_printf(StrBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        strbuf_append(b, small, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *strbuf_finish(StrBuf *b, size_t *ret_len)
{
    if (b->oom || !grow(b, 0)) {
        strbuf_done(b);
        return NULL;
    }
    b->s[b->len] = 0; /* an empty buffer was never written */
    char *s = b->s;
    if (ret_len)
        *ret_len = b->len;
    *b = (StrBuf){0};
    return s;
}

void strbuf_done(StrBuf *b)
{
    free(b->s);
    *b = (StrBuf){0};
}
