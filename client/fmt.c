/* fmt: numbers, times and terminal-safe text. */
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <wchar.h>

#include "fmt.h"
#include "util/clock.h"

static bool fmt_is_utf8;

void fmt_init(void)
{
    const char *cs;

    /* Only the character type: numbers stay in the C locale, so that output can be parsed. */
    setlocale(LC_CTYPE, "");
    cs = nl_langinfo(CODESET);
    fmt_is_utf8 = cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
}

bool fmt_utf8(void)
{
    return fmt_is_utf8;
}

/* Groups the digits of |v| by thousands into out; returns out. */
static char *group(char *out, size_t size, unsigned long long v)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%llu", v);
    size_t o = 0;

    for (int i = 0; i < n && o + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return out;
}

static unsigned long long magnitude(double v)
{
    v = fabs(round(v));
    return v >= 1.8e19 ? 18000000000000000000ull : (unsigned long long)v;
}

const char *fmt_id(char *buf, Num n)
{
    if (!n.ok || !isfinite(n.v) || fabs(n.v) > 9e18)
        return strcpy(buf, FMT_NONE);
    snprintf(buf, FMT_MAX, "%.0f", n.v);
    return buf;
}

const char *fmt_count(char *buf, Num n)
{
    if (!n.ok || !isfinite(n.v))
        return strcpy(buf, FMT_NONE);
    buf[0] = round(n.v) < 0 ? '-' : '\0';
    group(buf + (buf[0] ? 1 : 0), FMT_MAX - 1, magnitude(n.v));
    return buf;
}

const char *fmt_delta(char *buf, Num n)
{
    if (!n.ok || !isfinite(n.v))
        return strcpy(buf, FMT_NONE);
    if (magnitude(n.v) == 0)
        return strcpy(buf, "0");
    buf[0] = n.v < 0 ? '-' : '+';
    group(buf + 1, FMT_MAX - 1, magnitude(n.v));
    return buf;
}

/* |v| bytes in the largest unit that keeps the number below 1024 after rounding. */
static void bytes_abs(char *buf, size_t size, double v)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    size_t u = 0;

    v = fabs(v);
    if (round(v) < 1024) {
        snprintf(buf, size, "%.0f B", round(v));
        return;
    }
    v /= 1024;
    /* 1023.96 KiB would print as 1024.0 KiB: that is 1.0 MiB. */
    while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
}

const char *fmt_bytes(char *buf, Num n)
{
    if (!n.ok || !isfinite(n.v))
        return strcpy(buf, FMT_NONE);
    buf[0] = round(n.v) < 0 ? '-' : '\0';
    bytes_abs(buf + (buf[0] ? 1 : 0), FMT_MAX - 1, n.v);
    return buf;
}

const char *fmt_delta_bytes(char *buf, Num n)
{
    if (!n.ok || !isfinite(n.v))
        return strcpy(buf, FMT_NONE);
    if (magnitude(n.v) == 0)
        return strcpy(buf, "0 B");
    buf[0] = n.v < 0 ? '-' : '+';
    bytes_abs(buf + 1, FMT_MAX - 1, n.v);
    return buf;
}

const char *fmt_short(char *buf, Num n, unsigned base, bool sign)
{
    static const char units[] = "KMGTPE";
    double v = fabs(n.v);
    size_t u = 0, o = 0;

    if (!n.ok || !isfinite(n.v))
        return strcpy(buf, FMT_NONE);
    if (sign && round(v) == 0)
        return strcpy(buf, "0");
    if (sign)
        buf[o++] = n.v < 0 ? '-' : '+';
    else if (round(n.v) < 0)
        buf[o++] = '-';
    if (round(v) < base) {
        snprintf(buf + o, FMT_MAX - o, "%.0f", round(v));
        return buf;
    }
    v /= base;
    /* 999.6K would print as 1000K, a character wider: that is 1.0M (0.98M in bytes). */
    while (v >= 999.5 && u + 1 < sizeof(units) - 1) {
        v /= base;
        u++;
    }
    snprintf(buf + o, FMT_MAX - o, v < 99.95 ? "%.1f%c" : "%.0f%c", v, units[u]);
    return buf;
}

const char *fmt_rate(char *buf, Num n)
{
    if (n.ok && isfinite(n.v) && fabs(n.v) < 99.95) {
        snprintf(buf, FMT_MAX, "%.1f", n.v);
        return strcmp(buf, "-0.0") == 0 ? strcpy(buf, "0.0") : buf;
    }
    return fmt_short(buf, n, 1000, false);
}

const char *fmt_seconds(char *buf, Num n)
{
    double v = n.v;

    if (!n.ok || !isfinite(v) || v < 0)
        return strcpy(buf, FMT_NONE);
    if (v < 0.001)
        snprintf(buf, FMT_MAX, "%.0f %s", v * 1e6, fmt_is_utf8 ? "\xc2\xb5s" : "us");
    else if (v < 1)
        snprintf(buf, FMT_MAX, "%.1f ms", v * 1e3);
    else if (v < 60)
        snprintf(buf, FMT_MAX, "%.2f s", v);
    else
        snprintf(buf, FMT_MAX, "%.0f s", v);
    return buf;
}

const char *fmt_percent(char *buf, Num n)
{
    if (!n.ok || !isfinite(n.v))
        return strcpy(buf, FMT_NONE);
    snprintf(buf, FMT_MAX, "%.1f%%", n.v * 100);
    return buf;
}

static bool local_tm(Num n, struct tm *ret)
{
    time_t t;

    if (!n.ok || !isfinite(n.v) || n.v < 0 || n.v > 253402300799.0) /* year 9999 */
        return false;
    t = (time_t)n.v;
    return localtime_r(&t, ret) != NULL;
}

const char *fmt_time(char *buf, Num n)
{
    struct tm tm;

    if (!local_tm(n, &tm) || strftime(buf, FMT_MAX, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        return strcpy(buf, FMT_NONE);
    return buf;
}

const char *fmt_clock(char *buf, Num n)
{
    struct tm tm, now;
    Num nowv = {.ok = true, .v = clock_real()};

    if (!local_tm(n, &tm) || !local_tm(nowv, &now))
        return strcpy(buf, FMT_NONE);
    if (tm.tm_year == now.tm_year && tm.tm_yday == now.tm_yday)
        strftime(buf, FMT_MAX, "%H:%M:%S", &tm);
    else
        strftime(buf, FMT_MAX, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

const char *fmt_ago(char *buf, Num n)
{
    double d;

    if (!n.ok || !isfinite(n.v))
        return strcpy(buf, FMT_NONE);
    d = clock_real() - n.v;
    /* The daemon's clock and ours are the same machine's, or close: a small negative age is
     * rounding, a large one a clock set differently. */
    if (d < -1)
        snprintf(buf, FMT_MAX, "in %.0f s", -d);
    else if (d < 10)
        snprintf(buf, FMT_MAX, "%.1f s ago", d < 0 ? 0.0 : d);
    else if (d < 120)
        snprintf(buf, FMT_MAX, "%.0f s ago", d);
    else if (d < 7200)
        snprintf(buf, FMT_MAX, "%.0f min ago", d / 60);
    else if (d < 172800)
        snprintf(buf, FMT_MAX, "%.0f h ago", d / 3600);
    else
        snprintf(buf, FMT_MAX, "%.0f d ago", d / 86400);
    return buf;
}

/* Decodes one UTF-8 character at s; returns its length (0 for an invalid sequence) and the
 * code point in *ret_cp. Rejects overlong forms, surrogates and values above U+10FFFF. */
static size_t utf8_decode(const unsigned char *s, uint32_t *ret_cp)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80) {
        *ret_cp = s[0];
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        cp = s[0] & 0x1f;
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        cp = s[0] & 0x0f;
        len = 3;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        cp = s[0] & 0x07;
        len = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *ret_cp = cp;
    return len;
}

/* Characters that would change the terminal or the order text is shown in. */
static bool unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
           cp == 0x200f || cp == 0x061c;
}

void fmt_clean(StrBuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    while (*p) {
        uint32_t cp;
        size_t len = utf8_decode(p, &cp);

        if (len == 0) {
            strbuf_puts(b, "?");
            p++;
        } else if (unsafe_cp(cp) || (cp >= 0x80 && !fmt_is_utf8)) {
            strbuf_puts(b, "?");
            p += len;
        } else {
            strbuf_append(b, (const char *)p, len);
            p += len;
        }
    }
}

/* Columns of one character: wide East Asian characters take two, combining marks none. */
static size_t cp_width(uint32_t cp)
{
    int w;

    if (cp < 0x80)
        return 1;
    w = wcwidth((wchar_t)cp);
    return w < 0 ? 1 : (size_t)w;
}

size_t fmt_width(const char *clean)
{
    const unsigned char *p = (const unsigned char *)clean;
    size_t w = 0;

    while (*p) {
        uint32_t cp;
        size_t len = utf8_decode(p, &cp);

        w += len ? cp_width(cp) : 1;
        p += len ? len : 1;
    }
    return w;
}

static void pad(StrBuf *b, size_t n)
{
    static const char spaces[] = "                                ";

    while (n > 0) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        strbuf_append(b, spaces, k);
        n -= k;
    }
}

void fmt_fit(StrBuf *b, const char *clean, size_t width, bool left_align)
{
    const unsigned char *p = (const unsigned char *)clean;
    size_t w = fmt_width(clean);

    if (w <= width) {
        if (!left_align)
            pad(b, width - w);
        strbuf_puts(b, clean);
        if (left_align)
            pad(b, width - w);
        return;
    }
    if (width == 0)
        return;
    /* Keep what fits in width - 1 columns, then the ellipsis in the last one. */
    w = 0;
    while (*p) {
        uint32_t cp;
        size_t len = utf8_decode(p, &cp);
        size_t cw = len ? cp_width(cp) : 1;

        if (w + cw > width - 1)
            break;
        strbuf_append(b, (const char *)p, len ? len : 1);
        w += cw;
        p += len ? len : 1;
    }
    strbuf_puts(b, fmt_is_utf8 ? "\xe2\x80\xa6" : "~");
    pad(b, width - 1 - w);
}

char *fmt_take(StrBuf *b, size_t *ret_len)
{
    /* strbuf_finish() of a buffer nothing was appended to returns unterminated memory;
     * appending nothing terminates it. */
    strbuf_append(b, "", 0);
    return strbuf_finish(b, ret_len);
}

void fmt_sgr(StrBuf *b, bool color, const char *sgr, const char *text)
{
    if (!color || !sgr) {
        strbuf_puts(b, text);
        return;
    }
    strbuf_printf(b, "\033[%sm%s\033[0m", sgr, text);
}
