/* config: defaults, the key table, value validation and the file parser. */
#include "config/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/redact.h"

/* The largest PID Linux can hand out: PID_MAX_LIMIT in include/linux/threads.h (4 * 1024 * 1024
 * on 64-bit kernels). A larger number cannot name a process, so it is a typo. */
#define PID_LIMIT 4194304

/* How much of a value an error message shows; enough to recognise it, short enough that a
 * 4 KiB line does not push the explanation off the screen. */
#define QUOTE_MAX 80

/* A message from a setter before the FILE:LINE prefix is added. */
#define MSG_MAX 512

/* Keys are short identifiers; anything longer is unknown without further thought. */
#define KEY_MAX 64

#define LISTEN_MAX sizeof(((Config *)0)->listen)

void config_init(Config *c)
{
    *c = (Config){
        .listen = "127.0.0.1:9100",
        .all = false,
        .interval = 1.0,
        .census_interval = 60.0,
        .gc_poll_interval = 0.05,
        .discovery_interval = 5.0,
        .log_level = LOG_LEVEL_INFO,
        .top_types = 20,
        /* 50 ms covers the copy of a 5M-object heap (README's table: 41.5 ms), and a program
         * that must answer within 100 ms keeps doing so while a scheduled census runs. */
        .max_census_pause = 0.05,
        .max_census_pause_on_demand = 1.0,
        /* A person re-running `pymemctl objects --fresh` gets the census taken up to 10 s ago;
         * a client asking in a loop stops the target at most six times a minute. */
        .census_min_interval = 10.0,
        .census_match = "",
        /* smaps_rollup walks the page tables under the target's mmap lock (~100 ms per 4 GiB):
         * every 30 s and only up to 4 GiB of RSS, that is at most 0.3% of the target's time
         * with page faults and mmap() waiting. */
        .pss_interval = 30.0,
        .pss_max_rss = 4ULL << 30,
        .census_max_memory = 1ull << 30,
        .cmdline = CMDLINE_REDACTED,
        .group = WHOIS_TEMPLATE_DEFAULT,
        /* An hour at the interval; a quiet target's sample takes about 5 bytes compressed, so
         * 3 MiB hold the hour of 100 targets at 1 s up to 8.7 bytes a sample (README,
         * History). */
        .history = 3600.0,
        .history_max_memory = 3ull << 20,
        /* Three rises in a row: one is noise, growth already shows it. */
        .suspect_censuses = 3,
    };
}

void config_done(Config *c)
{
    free(c->pids);
    c->pids = NULL;
    c->npids = 0;
    for (size_t i = 0; i < c->nmatches; i++)
        free(c->matches[i]);
    free(c->matches);
    c->matches = NULL;
    c->nmatches = 0;
}

int config_copy(Config *dst, const Config *src)
{
    assert(dst != src);
    Config t = *src;
    t.pids = NULL;
    t.matches = NULL;

    if (src->npids > 0) {
        t.pids = malloc(src->npids * sizeof(*t.pids));
        if (!t.pids)
            return -ENOMEM;
        memcpy(t.pids, src->pids, src->npids * sizeof(*t.pids));
    }
    if (src->nmatches > 0) {
        t.matches = calloc(src->nmatches, sizeof(*t.matches));
        if (!t.matches) {
            t.nmatches = 0;
            config_done(&t);
            return -ENOMEM;
        }
        for (size_t i = 0; i < src->nmatches; i++) {
            t.matches[i] = strdup(src->matches[i]);
            if (!t.matches[i]) {
                /* calloc left the remaining slots NULL, which free() accepts. */
                config_done(&t);
                return -ENOMEM;
            }
        }
    }
    *dst = t;
    return 0;
}

/* A value shown in a message: in double quotes, control bytes escaped so a stray escape
 * sequence in a file cannot rewrite the terminal, and cut (at a UTF-8 boundary) after QUOTE_MAX
 * bytes. */
typedef struct Quoted {
    char s[QUOTE_MAX * 4 + 8];
} Quoted;

static const char *quote(Quoted *q, const char *v)
{
    size_t o = 0, n = strlen(v), show = n;
    if (show > QUOTE_MAX) {
        show = QUOTE_MAX;
        while (show > 0 && ((unsigned char)v[show] & 0xc0) == 0x80)
            show--;
    }
    q->s[o++] = '"';
    for (size_t i = 0; i < show; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '\t') {
            q->s[o++] = '\\';
            q->s[o++] = 't';
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(q->s + o, sizeof(q->s) - o, "\\x%02x", ch);
        } else {
            q->s[o++] = (char)ch;
        }
    }
    if (show < n) {
        memcpy(q->s + o, "...", 3);
        o += 3;
    }
    q->s[o++] = '"';
    q->s[o] = '\0';
    return q->s;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Parses a plain decimal number. strtod alone would also take "inf", "nan", hex floats and
 * leading blanks, none of which an administrator means by a number of seconds. */
static bool parse_decimal(const char *s, double *ret)
{
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
        return false;
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end)
        return false;
    *ret = d;
    return true;
}

/* Parses a non-negative decimal integer; values too large for unsigned long long saturate, so
 * they fail the caller's range check rather than wrapping into it. */
static bool parse_count(const char *s, unsigned long long *ret)
{
    if (!all_digits(s))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    *ret = errno == ERANGE ? ULLONG_MAX : v;
    return true;
}

typedef enum KeyKind {
    KEY_LISTEN,
    KEY_PID,
    KEY_MATCH,
    KEY_BOOL,
    KEY_SECONDS,
    KEY_LOG_LEVEL,
    KEY_COUNT,
    KEY_REGEX,   /* one POSIX extended regex into a char array; "" allowed (the default) */
    KEY_PATH,    /* a file name into a char array; "" allowed (the default: none) */
    KEY_CMDLINE, /* full, redacted or hidden */
    KEY_SIZE,    /* a byte count with an optional K, M, G or T (powers of 1024); 0 allowed unless
                  * the key has a range (max > 0) */
    KEY_GROUP,   /* a service group name template (proc/whois.h) into a char array */
} KeyKind;

typedef struct KeyDef {
    const char *name;
    KeyKind kind;
    size_t offset;   /* of the field in Config, for the scalar kinds */
    double min, max; /* accepted range for KEY_SECONDS and KEY_COUNT */
    bool zero_off;   /* 0 turns the feature off (and is accepted even when min > 0) */
    size_t size;     /* of the field, for KEY_REGEX and KEY_PATH */
} KeyDef;

/* store() copies bytes of the type its key kind implies; these keep the struct and the table in
 * step when a field's type changes. */
#define FIELD_IS(field, type)                                                                      \
    _Static_assert(__builtin_types_compatible_p(__typeof__(((Config *)0)->field), type),           \
                   #field " is set as " #type)
FIELD_IS(all, bool);
FIELD_IS(interval, double);
FIELD_IS(census_interval, double);
FIELD_IS(gc_poll_interval, double);
FIELD_IS(discovery_interval, double);
FIELD_IS(log_level, int);
FIELD_IS(top_types, unsigned);
FIELD_IS(max_census_pause, double);
FIELD_IS(census_nonblocking, bool);
FIELD_IS(max_census_pause_on_demand, double);
FIELD_IS(census_min_interval, double);
FIELD_IS(pss_interval, double);
FIELD_IS(pss_max_rss, uint64_t);
FIELD_IS(census_max_memory, uint64_t);
FIELD_IS(cmdline, int);
FIELD_IS(history, double);
FIELD_IS(history_max_memory, uint64_t);
FIELD_IS(suspect_censuses, unsigned);

/* The ranges are the ones config.h and config/pymemd.conf promise. */
static const KeyDef keys[] = {
    {"listen", KEY_LISTEN, offsetof(Config, listen), 0, 0, false},
    {"pid", KEY_PID, 0, 0, 0, false},
    {"match", KEY_MATCH, 0, 0, 0, false},
    {"all", KEY_BOOL, offsetof(Config, all), 0, 0, false},
    {"interval", KEY_SECONDS, offsetof(Config, interval), 0.01, 3600, false},
    {"census_interval", KEY_SECONDS, offsetof(Config, census_interval), 0, 86400, true},
    {"gc_poll_interval", KEY_SECONDS, offsetof(Config, gc_poll_interval), 0.001, 1, true},
    {"discovery_interval", KEY_SECONDS, offsetof(Config, discovery_interval), 0.1, 3600, false},
    {"log_level", KEY_LOG_LEVEL, offsetof(Config, log_level), 0, 0, false},
    {"top_types", KEY_COUNT, offsetof(Config, top_types), 1, 1000, false},
    {"max_census_pause", KEY_SECONDS, offsetof(Config, max_census_pause), 0.001, 60, false},
    {"census_nonblocking", KEY_BOOL, offsetof(Config, census_nonblocking), 0, 0, false},
    {"max_census_pause_on_demand", KEY_SECONDS, offsetof(Config, max_census_pause_on_demand), 0.001,
     60, false},
    {"census_min_interval", KEY_SECONDS, offsetof(Config, census_min_interval), 0.1, 3600, true},
    {"census_match", KEY_REGEX, offsetof(Config, census_match), 0, 0, false,
     sizeof(((Config *)0)->census_match)},
    {"pss_interval", KEY_SECONDS, offsetof(Config, pss_interval), 0.01, 86400, true},
    {"pss_max_rss", KEY_SIZE, offsetof(Config, pss_max_rss), 0, 0, false},
    {"census_max_memory", KEY_SIZE, offsetof(Config, census_max_memory), 16 << 20,
     1024.0 * (1ull << 30), false},
    {"web_config_file", KEY_PATH, offsetof(Config, web_config_file), 0, 0, false,
     sizeof(((Config *)0)->web_config_file)},
    {"cmdline", KEY_CMDLINE, offsetof(Config, cmdline), 0, 0, false},
    {"group", KEY_GROUP, offsetof(Config, group), 0, 0, false, sizeof(((Config *)0)->group)},
    {"history", KEY_SECONDS, offsetof(Config, history), 1, 604800, true},
    {"history_max_memory", KEY_SIZE, offsetof(Config, history_max_memory), 64 << 10,
     16.0 * (1ull << 30), false},
    {"suspect_censuses", KEY_COUNT, offsetof(Config, suspect_censuses), 1, 16, false},
};

/* Edit distance, to suggest the key a typo was meant to be. Both strings are at most KEY_MAX
 * bytes, so the row fits on the stack. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[KEY_MAX + 1];
    assert(lb <= KEY_MAX);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = MIN(best, up + 1);
            best = MIN(best, row[j - 1] + 1);
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const KeyDef *key_find(const char *key, const char **ret_suggestion)
{
    char norm[KEY_MAX + 1];
    size_t n = strlen(key);
    *ret_suggestion = NULL;
    if (n == 0 || n > KEY_MAX)
        return NULL;
    /* Command-line flags spell keys with '-', the file with '_'; both name the same key. */
    for (size_t i = 0; i <= n; i++)
        norm[i] = key[i] == '-' ? '_' : key[i];
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (strcmp(norm, keys[i].name) == 0)
            return &keys[i];
    size_t best = 3; /* two edits or fewer is a typo; more is a different word */
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        size_t d = edit_distance(norm, keys[i].name);
        if (d < best) {
            best = d;
            *ret_suggestion = keys[i].name;
        }
    }
    return NULL;
}

/* A host name by RFC 1123: dot-separated labels of letters, digits and '-', 1..63 bytes each,
 * not starting or ending with '-', 253 bytes in all, an optional final dot. */
static bool hostname_valid(const char *h)
{
    size_t n = strlen(h);
    if (n > 0 && h[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = i < n ? h[i] : '.';
        if (ch == '.') {
            if (label == 0 || label > 63 || h[i - 1] == '-')
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-') {
            if (label == 0 && ch == '-')
                return false;
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* An IPv6 literal, optionally with a zone ("fe80::1%eth0") for link-local addresses. */
static bool ipv6_valid(const char *h)
{
    char addr[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    const char *zone = strchr(h, '%');
    size_t n = zone ? (size_t)(zone - h) : strlen(h);
    if (n >= sizeof(addr))
        return false;
    memcpy(addr, h, n);
    addr[n] = '\0';
    if (zone && (zone[1] == '\0' || strlen(zone + 1) >= IF_NAMESIZE))
        return false;
    return inet_pton(AF_INET6, addr, &a) == 1;
}

static int check_listen(const char *v, char *err, size_t errlen)
{
    Quoted q;
    char host[256];
    const char *port;

    if (strlen(v) >= LISTEN_MAX)
        return errmsg(err, errlen, -EINVAL, "listen: %s is longer than %zu bytes", quote(&q, v),
                      LISTEN_MAX - 1);

    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close)
            return errmsg(err, errlen, -EINVAL, "listen: %s has no closing \"]\"", quote(&q, v));
        size_t n = (size_t)(close - v - 1);
        memcpy(host, v + 1, n);
        host[n] = '\0';
        if (!ipv6_valid(host))
            return errmsg(err, errlen, -EINVAL, "listen: %s: \"%s\" is not an IPv6 address",
                          quote(&q, v), host);
        if (close[1] != ':')
            return errmsg(err, errlen, -EINVAL,
                          "listen: %s needs a port after the address: HOST:PORT, as [::1]:9100",
                          quote(&q, v));
        port = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon)
            return errmsg(err, errlen, -EINVAL,
                          "listen: %s needs a port: HOST:PORT, as 127.0.0.1:9100", quote(&q, v));
        size_t n = (size_t)(colon - v);
        memcpy(host, v, n);
        host[n] = '\0';
        port = colon + 1;
        if (strchr(host, ':'))
            return errmsg(err, errlen, -EINVAL,
                          "listen: %s: an IPv6 address must be in brackets, as [::1]:9100",
                          quote(&q, v));
        if (n == 0)
            return errmsg(err, errlen, -EINVAL,
                          "listen: %s has no host: use 127.0.0.1 for this machine only, or "
                          "0.0.0.0 (every IPv4 address) or [::] (every address)",
                          quote(&q, v));
        struct in_addr a;
        if (inet_pton(AF_INET, host, &a) != 1) {
            /* Digits and dots are meant as an address ("10.0.0.256" is a wrong one), and a name
             * whose last label is all digits would be taken for one by the resolver. */
            const char *last = strrchr(host, '.');
            const char *tail = last && last[1] ? last + 1 : host;
            if (strspn(host, "0123456789.") == n)
                return errmsg(err, errlen, -EINVAL, "listen: %s: \"%s\" is not an IPv4 address",
                              quote(&q, v), host);
            if (!hostname_valid(host) || all_digits(tail))
                return errmsg(err, errlen, -EINVAL,
                              "listen: %s: %s is not an IP address or host name", quote(&q, v),
                              quote(&(Quoted){0}, host));
        }
    }

    unsigned long long p;
    if (!parse_count(port, &p) || p < 1 || p > 65535)
        return errmsg(err, errlen, -EINVAL, "listen: %s: the port must be a number from 1 to 65535",
                      quote(&q, v));
    return 0;
}

static int parse_bool(const char *v, bool *ret)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int add_pid(Config *c, const char *v, char *err, size_t errlen)
{
    Quoted q;
    unsigned long long p;
    if (!parse_count(v, &p))
        return errmsg(err, errlen, -EINVAL, "pid: %s is not a process ID", quote(&q, v));
    if (p < 1 || p > PID_LIMIT)
        return errmsg(err, errlen, -EINVAL, "pid: %s is out of range: process IDs are 1 to %d",
                      quote(&q, v), PID_LIMIT);
    for (size_t i = 0; i < c->npids; i++)
        if (c->pids[i] == (pid_t)p)
            return 0;
    pid_t *n = reallocarray(c->pids, c->npids + 1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n[c->npids] = (pid_t)p;
    c->pids = n;
    c->npids++;
    return 0;
}

/* glibc's regcomp() copies an item once per repetition an interval allows (x+ too, as x x*),
 * and what it builds from loops inside loops grows faster still: "r{1,9999}" takes seconds, "a"
 * and 20 '+' (each doubling what is before it) a minute, "(((a*)+){1,8}){1,8}" and
 * "(a{1,255}){1,255}" minutes and gigabytes (found by tests/fuzz/fuzz_config, or next to what it
 * found). So a pattern is refused before it is compiled when:
 *   - a count is over 255 (POSIX's smallest RE_DUP_MAX: a portable regex never needs more);
 *   - groups nest deeper than REGEX_MAX_DEPTH;
 *   - an interval {m,n} applies to something itself repeated ("(a*){3}", "(x{2}){3}");
 *   - two repetition operators follow each other ("a+*", "a{2}+": undefined in POSIX), but for
 *     a '?' after '*' or '+' (".*?", which the habit of other regex dialects writes);
 *   - the copies intervals and '+' make come to more than REGEX_MAX_COPIES: each atom counts
 *     once per extra repetition of every interval and '+' around it.
 * Plain atoms cost linear time and are bounded by the line length alone. */
#define REGEX_MAX_DUP    255
#define REGEX_MAX_DEPTH  CONFIG_REGEX_DEPTH
#define REGEX_MAX_COPIES 2000

/* The expanded size of the pattern at *p up to its closing ')' (or its end, at the top); the
 * copies its intervals and '+' make are added to *copies. Both saturate above REGEX_MAX_COPIES.
 * *ret_rep tells whether a repetition operator appeared. *why is set when a rule is broken. */
static uint64_t regex_expanded(const char **p, int depth, uint64_t *copies, bool *ret_rep,
                               const char **why)
{
    const uint64_t cap = REGEX_MAX_COPIES + 1;
    uint64_t total = 0, last = 0; /* last: the size of the item an operator applies to */
    bool last_rep = false;        /* that item holds or is under a repetition */
    char prev_op = 0;             /* the operator just before, or 0 */
    /* An unmatched ')' is an ordinary character in an ERE: at the top, it is an atom. */
    while (**p && (**p != ')' || depth == 0) && !*why) {
        const char *s = *p;
        /* glibc reads "{,n}" as "{0,n}" (a GNU extension). */
        bool interval = *s == '{' && ((s[1] >= '0' && s[1] <= '9') ||
                                      (s[1] == ',' && s[2] >= '0' && s[2] <= '9'));
        char op = interval ? '{' : *s == '*' || *s == '+' || *s == '?' ? *s : 0;
        if (op && prev_op && !(op == '?' && (prev_op == '*' || prev_op == '+'))) {
            *why = "has two repetition operators in a row";
            return 0;
        }
        if (op) {
            *ret_rep = true;
            if (op == '{' && last_rep) {
                *why = "repeats with {m,n} a part that is itself repeated";
                return 0;
            }
        }
        if (*s == '(') {
            if (depth >= REGEX_MAX_DEPTH) {
                *why = "nests groups too deeply";
                return 0;
            }
            *p = s + 1;
            last_rep = false;
            last = regex_expanded(p, depth + 1, copies, &last_rep, why);
            *ret_rep = *ret_rep || last_rep;
            if (**p == ')')
                (*p)++;
            total += last;
        } else if (*s == '[') {
            /* A bracket expression is one atom: "[]a]" and "[^]a]" hold a ']', and "[:alpha:]",
             * "[=a=]" and "[.a.]" inside hold brackets of their own. */
            s++;
            if (*s == '^')
                s++;
            if (*s == ']')
                s++;
            while (*s && *s != ']') {
                if (*s == '[' && (s[1] == ':' || s[1] == '=' || s[1] == '.')) {
                    const char *end = strstr(s + 2, (char[]){s[1], ']', 0});
                    s = end ? end + 2 : s + strlen(s);
                } else {
                    s++;
                }
            }
            *p = *s ? s + 1 : s;
            total += last = 1;
            last_rep = false;
        } else if (interval) {
            char *end;
            unsigned long lo = strtoul(s + 1, &end, 10), hi = lo;
            if (*end == ',')
                hi = end[1] == '}' ? lo + 1 : strtoul(end + 1, &end, 10);
            if (lo > REGEX_MAX_DUP || hi > REGEX_MAX_DUP) {
                *why = "repeats a part more than 255 times";
                return 0;
            }
            const char *close = strchr(s, '}');
            *p = close ? close + 1 : s + strlen(s);
            /* The item was counted once already: the interval adds hi - 1 copies of it. */
            total += last * (hi > 0 ? hi - 1 : 0);
            *copies += last * (hi > 0 ? hi - 1 : 0);
            last *= hi;
            last_rep = true;
        } else if (*s == '+') {
            *p = s + 1;
            total += last; /* x+ is compiled as x x* */
            *copies += last;
            last *= 2;
            last_rep = true;
        } else if (*s == '*' || *s == '?') {
            *p = s + 1;
            last_rep = true;
        } else if (*s == '|') {
            *p = s + 1;
            last = 0;
            last_rep = false;
        } else {
            *p = s + (*s == '\\' && s[1] ? 2 : 1);
            total += last = 1;
            last_rep = false;
        }
        prev_op = op;
        total = MIN(total, cap);
        last = MIN(last, cap);
        *copies = MIN(*copies, cap);
    }
    return total;
}

/* Whether regcomp() may be given v; if not, why (a phrase) in *ret_why. */
static bool regex_affordable(const char *v, const char **ret_why)
{
    const char *why = NULL, *p = v;
    uint64_t copies = 0;
    bool rep = false;
    (void)regex_expanded(&p, 0, &copies, &rep, &why);
    if (!why && copies > REGEX_MAX_COPIES)
        why = "repeats its parts into more than 2000 copies";
    *ret_why = why;
    return !why;
}

int config_check_regex(const char *regex, char *err, size_t errlen)
{
    if (strlen(regex) > CONFIG_REGEX_MAX)
        return errmsg(err, errlen, -EINVAL, "is longer than %d bytes", CONFIG_REGEX_MAX);
    const char *costly;
    if (!regex_affordable(regex, &costly))
        return errmsg(err, errlen, -EINVAL,
                      "%s; pymemd refuses it, it would be too costly to compile", costly);
    regex_t re;
    int rc = regcomp(&re, regex, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[200];
        regerror(rc, &re, why, sizeof(why));
        return errmsg(err, errlen, -EINVAL, "is not a valid regular expression: %s", why);
    }
    regfree(&re);
    return 0;
}

static int add_match(Config *c, const char *v, char *err, size_t errlen)
{
    Quoted q;
    char why[256];
    if (config_check_regex(v, why, sizeof(why)) < 0)
        return errmsg(err, errlen, -EINVAL, "match: %s %s", quote(&q, v), why);

    for (size_t i = 0; i < c->nmatches; i++)
        if (strcmp(c->matches[i], v) == 0)
            return 0;
    _cleanup_(freep) char *dup = strdup(v);
    if (!dup)
        return -ENOMEM;
    char **n = reallocarray(c->matches, c->nmatches + 1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n[c->nmatches] = TAKE_PTR(dup);
    c->matches = n;
    c->nmatches++;
    return 0;
}

/* Writes a scalar into the field the key names. memcpy rather than a cast pointer, because the
 * address is computed from an offset and the compiler cannot see that it is aligned. */
static void store(Config *c, const KeyDef *k, const void *v, size_t size)
{
    memcpy((char *)c + k->offset, v, size);
}

static int set_seconds(Config *c, const KeyDef *k, const char *v, char *err, size_t errlen)
{
    Quoted q;
    double d;
    if (!parse_decimal(v, &d))
        return errmsg(err, errlen, -EINVAL, "%s: %s is not a number of seconds", k->name,
                      quote(&q, v));
    bool ok = (d >= k->min && d <= k->max) || (k->zero_off && d == 0);
    if (!ok) {
        if (k->zero_off && k->min > 0)
            return errmsg(err, errlen, -EINVAL,
                          "%s: %s is out of range: it must be 0 (off) or from %g to %g seconds",
                          k->name, quote(&q, v), k->min, k->max);
        if (k->zero_off)
            return errmsg(err, errlen, -EINVAL,
                          "%s: %s is out of range: it must be from 0 (off) to %g seconds", k->name,
                          quote(&q, v), k->max);
        return errmsg(err, errlen, -EINVAL,
                      "%s: %s is out of range: it must be from %g to %g seconds", k->name,
                      quote(&q, v), k->min, k->max);
    }
    store(c, k, &d, sizeof(d));
    return 0;
}

/* A single regular expression (census_match); "" is the default and means "not set". */
static int set_regex(Config *c, const KeyDef *k, const char *v, char *err, size_t errlen)
{
    Quoted q;
    if (strlen(v) >= k->size)
        return errmsg(err, errlen, -EINVAL, "%s: %s is longer than %zu bytes", k->name,
                      quote(&q, v), k->size - 1);
    char why[256];
    if (*v && config_check_regex(v, why, sizeof(why)) < 0)
        return errmsg(err, errlen, -EINVAL, "%s: %s %s", k->name, quote(&q, v), why);
    memcpy((char *)c + k->offset, v, strlen(v) + 1);
    return 0;
}

/* A byte count: digits, then optionally K, M, G or T for KiB, MiB, GiB, TiB (a "B" or "iB"
 * after the letter is accepted too), e.g. 4G or 4294967296. */
static int set_size(Config *c, const KeyDef *k, const char *v, char *err, size_t errlen)
{
    static const char units[] = "KMGT";
    Quoted q;
    size_t digits = strspn(v, "0123456789");
    const char *unit = v + digits;
    unsigned shift = 0;
    bool ok = digits > 0 && digits < 32;
    if (ok && *unit) {
        const char *u = strchr(units, *unit >= 'a' && *unit <= 'z' ? *unit - 'a' + 'A' : *unit);
        ok = u && *u && (!unit[1] || strcmp(unit + 1, "B") == 0 || strcmp(unit + 1, "iB") == 0);
        shift = ok ? 10 * (unsigned)(u - units + 1) : 0;
    }
    if (!ok)
        return errmsg(err, errlen, -EINVAL,
                      "%s: %s is not a size in bytes (a whole number, optionally followed by K, M, "
                      "G or T, e.g. 4G)",
                      k->name, quote(&q, v));
    char num[32];
    memcpy(num, v, digits);
    num[digits] = '\0';
    unsigned long long n;
    parse_count(num, &n);
    /* parse_count() saturates at ULLONG_MAX: that, too, is past any real size. */
    if (n == ULLONG_MAX || n > (UINT64_MAX >> shift))
        return errmsg(err, errlen, -EINVAL, "%s: %s is too large", k->name, quote(&q, v));
    uint64_t bytes = (uint64_t)n << shift;
    if (k->max > 0 && ((double)bytes < k->min || (double)bytes > k->max))
        return errmsg(err, errlen, -EINVAL, "%s: %s is out of range: it must be from %gM to %gG",
                      k->name, quote(&q, v), k->min / (1 << 20), k->max / (1 << 30));
    store(c, k, &bytes, sizeof(bytes));
    return 0;
}

static int set_key(Config *c, const char *key, const char *v, char *err, size_t errlen)
{
    Quoted q;
    const char *suggestion;
    const KeyDef *k = key_find(key, &suggestion);
    if (!k) {
        if (suggestion)
            return errmsg(err, errlen, -EINVAL, "unknown key %s (did you mean \"%s\"?)",
                          quote(&q, key), suggestion);
        return errmsg(err, errlen, -EINVAL, "unknown key %s", quote(&q, key));
    }
    if (!*v && k->kind != KEY_REGEX && k->kind != KEY_PATH)
        return errmsg(err, errlen, -EINVAL, "%s: no value given", k->name);

    switch (k->kind) {
    case KEY_LISTEN: {
        int r = check_listen(v, err, errlen);
        if (r < 0)
            return r;
        /* check_listen() made sure it fits, terminator included. */
        strcpy(c->listen, v);
        return 0;
    }
    case KEY_PID:
        return add_pid(c, v, err, errlen);
    case KEY_MATCH:
        return add_match(c, v, err, errlen);
    case KEY_BOOL: {
        bool b;
        if (parse_bool(v, &b) < 0)
            return errmsg(err, errlen, -EINVAL,
                          "%s: %s is not a boolean (true/false, yes/no, on/off, 1/0)", k->name,
                          quote(&q, v));
        store(c, k, &b, sizeof(b));
        return 0;
    }
    case KEY_SECONDS:
        return set_seconds(c, k, v, err, errlen);
    case KEY_LOG_LEVEL: {
        /* Level names are matched without regard to case: "DEBUG" is not a different level. */
        char lower[16];
        size_t n = strlen(v);
        int level = -EINVAL;
        if (n < sizeof(lower)) {
            for (size_t i = 0; i <= n; i++)
                lower[i] = (v[i] >= 'A' && v[i] <= 'Z') ? (char)(v[i] - 'A' + 'a') : v[i];
            level = log_level_from_string(lower);
        }
        if (level < 0)
            return errmsg(err, errlen, -EINVAL, "%s: %s is not one of error, warn, info, debug",
                          k->name, quote(&q, v));
        store(c, k, &level, sizeof(level));
        return 0;
    }
    case KEY_COUNT: {
        unsigned long long n;
        if (!parse_count(v, &n))
            return errmsg(err, errlen, -EINVAL, "%s: %s is not a whole number", k->name,
                          quote(&q, v));
        if (n < k->min || n > k->max)
            return errmsg(err, errlen, -EINVAL, "%s: %s is out of range: it must be from %g to %g",
                          k->name, quote(&q, v), k->min, k->max);
        unsigned u = (unsigned)n;
        store(c, k, &u, sizeof(u));
        return 0;
    }
    case KEY_REGEX:
        return set_regex(c, k, v, err, errlen);
    case KEY_PATH:
        /* Only its length is checked here: the file is read (and judged) by its user. */
        if (strlen(v) >= k->size)
            return errmsg(err, errlen, -EINVAL, "%s: %s is longer than %zu bytes", k->name,
                          quote(&q, v), k->size - 1);
        memcpy((char *)c + k->offset, v, strlen(v) + 1);
        return 0;
    case KEY_CMDLINE: {
        int m = redact_mode_from_string(v);
        if (m < 0)
            return errmsg(err, errlen, -EINVAL, "%s: %s is not one of full, redacted, hidden",
                          k->name, quote(&q, v));
        store(c, k, &m, sizeof(m));
        return 0;
    }
    case KEY_SIZE:
        return set_size(c, k, v, err, errlen);
    case KEY_GROUP: {
        /* whois_template_check() bounds the length to what the field holds. */
        int r = whois_template_check(v, err, errlen);
        if (r < 0)
            return r;
        memcpy((char *)c + k->offset, v, strlen(v) + 1);
        return 0;
    }
    }
    assert(!"unhandled key kind");
    return -EINVAL;
}

int config_set(Config *c, const char *key, const char *value, char *err, size_t errlen)
{
    assert(c && key && value);
    if (errlen > 0)
        err[0] = '\0';
    int r = set_key(c, key, value, err, errlen);
    if (r == -ENOMEM)
        return errmsg(err, errlen, r, "%s: out of memory", key);
    return r;
}

static int too_big(const char *path, char *err, size_t errlen)
{
    return errmsg(err, errlen, -EFBIG, "%s: larger than %d bytes (1 MiB); is this the config file?",
                  path, CONFIG_FILE_MAX);
}

/* Reads the whole file, at most CONFIG_FILE_MAX bytes, NUL-terminated. Only a regular file is
 * read: a FIFO would block start or reload until a writer came, a device may never end. The open
 * is non-blocking so that a FIFO without a writer is refused instead of waited for. Reading until
 * EOF rather than trusting st_size copes with a file that grows while it is read. */
static int read_all(const char *path, char **ret, size_t *ret_len, char *err, size_t errlen)
{
    char why[128];
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int r = -errno;
        return errmsg(err, errlen, r, "%s: cannot open the config file: %s", path,
                      strerror_r(-r, why, sizeof(why)));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        return errmsg(err, errlen, r, "%s: %s", path, strerror_r(-r, why, sizeof(why)));
    }
    if (S_ISDIR(st.st_mode))
        return errmsg(err, errlen, -EISDIR, "%s: is a directory, not a config file", path);
    if (!S_ISREG(st.st_mode))
        return errmsg(err, errlen, -EINVAL,
                      "%s: is a %s, not a regular file; the config file must be a regular file",
                      path,
                      S_ISFIFO(st.st_mode)   ? "FIFO"
                      : S_ISCHR(st.st_mode)  ? "character device"
                      : S_ISBLK(st.st_mode)  ? "block device"
                      : S_ISSOCK(st.st_mode) ? "socket"
                                             : "special file");
    if (st.st_size > CONFIG_FILE_MAX)
        return too_big(path, err, errlen);

    _cleanup_(freep) char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 2) {
            /* One byte beyond the cap is enough to tell that the file is too large. */
            size_t ncap = cap ? MIN(cap * 2, (size_t)CONFIG_FILE_MAX + 2) : 4096;
            char *n = realloc(buf, ncap);
            if (!n)
                return errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
            buf = n;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + len, cap - len - 1);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int r = -errno;
            return errmsg(err, errlen, r, "%s: cannot read: %s", path,
                          strerror_r(-r, why, sizeof(why)));
        }
        if (k == 0)
            break;
        len += (size_t)k;
        if (len > CONFIG_FILE_MAX)
            return too_big(path, err, errlen);
    }
    buf[len] = '\0';
    *ret = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

/* Checks that s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), following the table in RFC 3629 section 4. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t j = 2; j < len; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Removes the quotes and escapes of a "..." value, in place. */
static int unquote(char *v, char *msg, size_t msglen)
{
    Quoted q;
    char *out = v;
    const char *in = v + 1;
    for (;;) {
        if (*in == '\0')
            return errmsg(msg, msglen, -EINVAL, "the quoted value has no closing quote");
        if (*in == '"')
            break;
        if (*in == '\\') {
            in++;
            if (*in == '\0')
                return errmsg(msg, msglen, -EINVAL, "the quoted value has no closing quote");
            if (*in != '"' && *in != '\\') {
                /* Show the escaped character only when it is one printable ASCII byte; a
                 * control byte or part of a UTF-8 sequence would garble the message. */
                char shown[8] = "";
                if (*in > ' ' && *in < 0x7f)
                    snprintf(shown, sizeof(shown), " \"\\%c\"", *in);
                return errmsg(msg, msglen, -EINVAL,
                              "unknown escape%s in a quoted value (only \\\" and \\\\ are "
                              "escapes; unquoted values keep backslashes as they are)",
                              shown);
            }
        }
        *out++ = *in++;
    }
    in++;
    if (*in != '\0')
        return errmsg(msg, msglen, -EINVAL, "text after the closing quote: %s", quote(&q, in));
    *out = '\0';
    return 0;
}

/* Parses one line (NUL-terminated, newline removed) onto c. */
static int parse_line(Config *c, char *line, char *msg, size_t msglen)
{
    Quoted q;
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq)
        return errmsg(msg, msglen, -EINVAL, "expected \"key = value\", found %s", quote(&q, s));
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (*key == '\0')
        return errmsg(msg, msglen, -EINVAL, "a key is missing before \"=\"");
    if (*value == '"') {
        int r = unquote(value, msg, msglen);
        if (r < 0)
            return r;
    }
    return set_key(c, key, value, msg, msglen);
}

static int parse_text(Config *c, const char *path, char *text, size_t len, char *err, size_t errlen)
{
    char msg[MSG_MAX];
    unsigned lineno = 0;
    size_t pos = 0;

    /* Editors on some systems start UTF-8 files with a byte order mark; it is not a key. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;

    /* Lines are cut in place: text is the caller's private copy of the file. */
    while (pos < len) {
        lineno++;
        char *line = text + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);

        if (n > CONFIG_LINE_MAX)
            return errmsg(err, errlen, -EINVAL, "%s:%u: line is longer than %d bytes", path, lineno,
                          CONFIG_LINE_MAX);
        if (memchr(line, '\0', n))
            return errmsg(err, errlen, -EINVAL,
                          "%s:%u: contains a NUL byte; this is not a text file", path, lineno);
        if (!utf8_valid((const unsigned char *)line, n))
            return errmsg(err, errlen, -EINVAL, "%s:%u: not valid UTF-8", path, lineno);

        line[n] = '\0'; /* the newline, or read_all()'s terminator after the last line */
        msg[0] = '\0';
        int r = parse_line(c, line, msg, sizeof(msg));
        if (r == -ENOMEM)
            return errmsg(err, errlen, r, "%s:%u: out of memory", path, lineno);
        if (r < 0)
            return errmsg(err, errlen, r, "%s:%u: %s", path, lineno, msg);
    }
    return 0;
}

int config_load_file(Config *c, const char *path, char *err, size_t errlen)
{
    assert(c && path);
    if (errlen > 0)
        err[0] = '\0';

    _cleanup_(freep) char *text = NULL;
    size_t len = 0;
    int r = read_all(path, &text, &len, err, errlen);
    if (r < 0)
        return r;
    /* An empty file is more often one caught half-written (or truncated by mistake) than meant:
     * applied on reload it would drop every pid and match and widen the daemon to --all. A file
     * of comments only (config/pymemd.conf as shipped) is a deliberate choice of the defaults. */
    size_t blank = 0;
    while (blank < len && (is_blank(text[blank]) || text[blank] == '\n'))
        blank++;
    if (blank == len)
        return errmsg(err, errlen, -ENODATA,
                      "%s: the config file is empty; refused, as it may be half-written (to run on "
                      "the defaults, leave a comment line in it)",
                      path);

    /* Parse into a copy so that a mistake on line 40 does not leave lines 1-39 applied. */
    Config t;
    r = config_copy(&t, c);
    if (r < 0)
        return errmsg(err, errlen, r, "%s: out of memory", path);
    r = parse_text(&t, path, text, len, err, errlen);
    if (r < 0) {
        config_done(&t);
        return r;
    }
    config_done(c);
    *c = t;
    return 0;
}

int config_load_buffer(Config *c, const char *name, const char *text, size_t len, char *err,
                       size_t errlen)
{
    assert(c && name && (text || len == 0));
    if (errlen > 0)
        err[0] = '\0';
    if (len > CONFIG_FILE_MAX)
        return too_big(name, err, errlen);

    /* parse_text() cuts lines in place and wants a terminator after the last one. */
    _cleanup_(freep) char *copy = malloc(len + 1);
    if (!copy)
        return errmsg(err, errlen, -ENOMEM, "%s: out of memory", name);
    if (len)
        memcpy(copy, text, len);
    copy[len] = '\0';

    Config t;
    int r = config_copy(&t, c);
    if (r < 0)
        return errmsg(err, errlen, r, "%s: out of memory", name);
    r = parse_text(&t, name, copy, len, err, errlen);
    if (r < 0) {
        config_done(&t);
        return r;
    }
    config_done(c);
    *c = t;
    return 0;
}
