/* strbuf: a growable string for renderers. Allocation failure is sticky and reported once, at
 * strbuf_finish(), so render code stays straight-line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

typedef struct StrBuf {
    char *s;
    size_t len, cap;
    bool oom;
} StrBuf;

void strbuf_append(StrBuf *b, const char *s, size_t len);
void strbuf_puts(StrBuf *b, const char *s);
void strbuf_printf(StrBuf *b, const char *fmt, ...) _printf_(2, 3);
/* Hands the NUL-terminated string to the caller (who frees it) and its length; NULL on
 * allocation failure. The buffer is empty afterwards. */
char *strbuf_finish(StrBuf *b, size_t *ret_len);
void strbuf_done(StrBuf *b);
