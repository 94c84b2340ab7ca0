#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF), or 0 when the byte at s does not start one. */
static size_t seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

size_t utf8_sanitize(char *dst, size_t size, const char *src)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0;
    if (size == 0)
        return 0;
    while (*s) {
        size_t n = seq_len(s);
        const char *piece = n ? (const char *)s : replacement;
        size_t plen = n ? n : 3;
        if (out + plen > size - 1)
            break;
        memcpy(dst + out, piece, plen);
        out += plen;
        s += n ? n : 1;
    }
    dst[out] = 0;
    return out;
}
