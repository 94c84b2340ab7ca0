/* fmt: text for people: numbers with units and thousands separators, times, and strings made
 * safe and measurable for a terminal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "jget.h"
#include "util/strbuf.h"

/* Size of the buffers the number formatters write into. */
#define FMT_MAX 64
/* Calls a formatter with a buffer that lives until the end of the enclosing block:
 * printf("%s", FMT(fmt_bytes, n)). */
#define FMT(f, ...) f((char[FMT_MAX]){0}, __VA_ARGS__)

/* What an absent (null) value looks like: never 0, which would be a lie. */
#define FMT_NONE "-"

/* Select Graphic Rendition parameters, used only when colour is on. */
#define SGR_BOLD   "1"
#define SGR_DIM    "2"
#define SGR_REV    "7"
#define SGR_RED    "31"
#define SGR_GREEN  "32"
#define SGR_YELLOW "33"
#define SGR_CYAN   "36"

/* Reads the locale's character type, so that names in UTF-8 are shown as such on a UTF-8
 * terminal and as '?' elsewhere. Call once, first. */
void fmt_init(void);
/* True when the locale's character set (read by fmt_init()) is UTF-8. */
bool fmt_utf8(void);

/* An identifier such as a pid: 4242, without separators. */
const char *fmt_id(char *buf, Num n);
/* 12,345,678 (rounded to an integer). */
const char *fmt_count(char *buf, Num n);
/* +12,345 or -3 or 0. */
const char *fmt_delta(char *buf, Num n);
/* 512 B, 13.5 KiB, 1.2 MiB, 3.0 GiB, 1.1 TiB: powers of 1024, one decimal. */
const char *fmt_bytes(char *buf, Num n);
/* +1.2 MiB, -512 B, 0 B. */
const char *fmt_delta_bytes(char *buf, Num n);
/* Short forms for the narrow columns of top, at most 5 characters before the sign: below base
 * the number itself (512), then one decimal below 100 of a unit and none above (13.6K, 135M),
 * with K M G T P E for powers of base (1024 for bytes, 1000 for counts). With sign: +1.2M,
 * -512, and 0 for nothing (or what rounds to nothing). */
const char *fmt_short(char *buf, Num n, unsigned base, bool sign);
/* A rate such as collections per second: 0.0 to 99.9 with one decimal, then fmt_short(). */
const char *fmt_rate(char *buf, Num n);

/* 12 us, 3.4 ms, 1.25 s, 75 s, for durations. */
const char *fmt_seconds(char *buf, Num n);
/* A ratio 0..1 as 12.3%. */
const char *fmt_percent(char *buf, Num n);
/* An epoch time as local 2026-11-24 21:15:03. */
const char *fmt_time(char *buf, Num n);
/* An epoch time as local 21:15:03 (today) or with the date (another day). */
const char *fmt_clock(char *buf, Num n);
/* How long ago an epoch time was: 4 s ago, 12 min ago, 3 h ago, 2 d ago. */
const char *fmt_ago(char *buf, Num n);

/* Appends s to b with every control character, invalid UTF-8 sequence and bidirectional
 * override replaced by '?' (and, outside a UTF-8 locale, every non-ASCII character too): a
 * process may name itself anything, and its name must not be able to drive the terminal. */
void fmt_clean(StrBuf *b, const char *s);
/* Columns that clean text takes on a terminal. */
size_t fmt_width(const char *clean);
/* Appends clean text in exactly width columns: padded on the right (left_align) or left, or
 * cut with an ellipsis when it is wider. */
void fmt_fit(StrBuf *b, const char *clean, size_t width, bool left_align);
/* strbuf_finish() that also terminates an empty buffer: the string to the caller (who frees
 * it), NULL when out of memory. */
char *fmt_take(StrBuf *b, size_t *ret_len);
/* Appends text wrapped in the SGR sequence when color is on, as is otherwise. */
void fmt_sgr(StrBuf *b, bool color, const char *sgr, const char *text);
