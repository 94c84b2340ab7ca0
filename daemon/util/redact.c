#include "util/redact.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "util/strbuf.h"

int redact_mode_from_string(const char *s)
{
    static const char *const names[] = {"full", "redacted", "hidden"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i]) == 0)
            return (int)i;
    return -EINVAL;
}

const char *redact_mode_name(CmdlineMode m)
{
    return m == CMDLINE_FULL ? "full" : m == CMDLINE_HIDDEN ? "hidden" : "redacted";
}

/* Whether s[0..n) contains a keyword of REDACT_KEYWORDS, ignoring case. */
static bool sensitive(const char *s, size_t n)
{
    /* "pass" covers password, passwd, passphrase and redis' requirepass. */
    static const char *const words[] = {"pass", "pwd",        "secret", "token",
                                        "key",  "credential", "auth"};
    for (size_t w = 0; w < ARRAY_SIZE(words); w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= n; i++)
            if (strncasecmp(s + i, words[w], wl) == 0)
                return true;
    }
    return false;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_name(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Rule 4: at w[i], just after "://", the authority runs to the first '/', '?' or '#'. Appends
 * the user information, masked, and returns where the copy goes on (the '@'), or i when the URL
 * has none. */
static size_t url_userinfo(StrBuf *b, const char *w, size_t n, size_t i)
{
    size_t end = i, at = n;
    while (end < n && w[end] != '/' && w[end] != '?' && w[end] != '#')
        end++;
    for (size_t j = i; j < end; j++)
        if (w[j] == '@')
            at = j; /* the last one: a password may hold an '@' */
    if (at == n)
        return i;
    const char *colon = memchr(w + i, ':', at - i);
    if (colon)
        strbuf_append(b, w + i, (size_t)(colon - (w + i)) + 1);
    strbuf_puts(b, REDACT_MASK);
    return at;
}

/* Rules 3 and 4 over one word; 1 and 2 are the caller's. */
static void redact_word(StrBuf *b, const char *w, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= 3 && memcmp(w + i, "://", 3) == 0) {
            strbuf_append(b, w + i, 3);
            i = url_userinfo(b, w, n, i + 3);
            continue;
        }
        if (w[i] == '=') {
            size_t s = i;
            while (s > 0 && is_name(w[s - 1]))
                s--;
            if (sensitive(w + s, i - s)) {
                strbuf_puts(b, "=" REDACT_MASK);
                i++;
                while (i < n && w[i] != '&')
                    i++;
                continue;
            }
        }
        strbuf_append(b, w + i, 1);
        i++;
    }
}

char *redact_argv(const char *const *argv)
{
    StrBuf b = {0};
    /* Rules 1 and 2: hide the next word, or the rest of the argument; either hides the whole
     * next argument when the flag ended its own. */
    enum { SHOW, HIDE_WORD, HIDE_REST } hide = SHOW;
    strbuf_puts(&b, "");
    for (size_t a = 0; argv[a]; a++) {
        if (a > 0)
            strbuf_puts(&b, " ");
        if (hide != SHOW) {
            strbuf_puts(&b, REDACT_MASK);
            hide = SHOW;
            continue;
        }
        const char *p = argv[a];
        while (*p) {
            if (is_blank(*p)) {
                strbuf_append(&b, p++, 1);
                continue;
            }
            if (hide == HIDE_REST) {
                strbuf_puts(&b, REDACT_MASK);
                hide = SHOW;
                break;
            }
            const char *q = p;
            while (*q && !is_blank(*q))
                q++;
            size_t n = (size_t)(q - p);
            if (hide == HIDE_WORD) {
                strbuf_puts(&b, REDACT_MASK);
                hide = SHOW;
            } else if (*p == '-' && !memchr(p, '=', n) && sensitive(p, n)) {
                strbuf_append(&b, p, n);
                hide = HIDE_WORD;
            } else if (p[n - 1] == ':' && sensitive(p, n)) {
                strbuf_append(&b, p, n);
                hide = HIDE_REST;
            } else {
                redact_word(&b, p, n);
            }
            p = q;
        }
    }
    size_t len;
    return strbuf_finish(&b, &len);
}
