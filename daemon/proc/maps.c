/* maps: /proc/PID/maps, parsed. */
#include "proc/maps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DELETED_SUFFIX " (deleted)"

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (unsigned)(c - 'a' + 10);
    return (unsigned)(c - 'A' + 10);
}

/* strtoull() would accept leading blanks, a sign and "0x", none of which the kernel prints: a
 * line carrying them is not a maps line, so the digits are parsed by hand. At least one digit is
 * required and overflow is an error. */
static int parse_hex(const char **p, uint64_t max, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;

    if (!is_hex(*s))
        return -EINVAL;
    for (; is_hex(*s); s++) {
        unsigned d = hex_value(*s);
        if (v > (max - d) / 16)
            return -EINVAL;
        v = v * 16 + d;
    }
    *p = s;
    *ret = v;
    return 0;
}

static int parse_dec(const char **p, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *p = s;
    *ret = v;
    return 0;
}

static int expect_char(const char **p, char c)
{
    if (**p != c)
        return -EINVAL;
    (*p)++;
    return 0;
}

/* Parses one line, [s, eol), into *e. The path is copied, so *e owns it on success only. */
static int parse_line(const char *s, const char *eol, MapsEntry *e)
{
    uint64_t start, end, offset, major, minor, inode;
    const char *p = s;
    int r;

    if ((r = parse_hex(&p, UINT64_MAX, &start)) < 0 || (r = expect_char(&p, '-')) < 0 ||
        (r = parse_hex(&p, UINT64_MAX, &end)) < 0 || (r = expect_char(&p, ' ')) < 0)
        return r;
    /* An empty or inverted range is not something the kernel can map, and would break the
     * binary search that relies on disjoint, ordered ranges. */
    if (start >= end)
        return -EINVAL;

    if (eol - p < 5 || (p[0] != 'r' && p[0] != '-') || (p[1] != 'w' && p[1] != '-') ||
        (p[2] != 'x' && p[2] != '-') || (p[3] != 'p' && p[3] != 's') || p[4] != ' ')
        return -EINVAL;
    bool pr = p[0] == 'r', pw = p[1] == 'w', px = p[2] == 'x', pp = p[3] == 'p';
    p += 5;

    if ((r = parse_hex(&p, UINT64_MAX, &offset)) < 0 || (r = expect_char(&p, ' ')) < 0 ||
        (r = parse_hex(&p, UINT32_MAX, &major)) < 0 || (r = expect_char(&p, ':')) < 0 ||
        (r = parse_hex(&p, UINT32_MAX, &minor)) < 0 || (r = expect_char(&p, ' ')) < 0 ||
        (r = parse_dec(&p, &inode)) < 0)
        return r;

    /* The inode is followed either by the end of the line (anonymous memory) or by padding
     * spaces and the path, which runs to the end of the line and may itself hold spaces. */
    if (p < eol && *p != ' ')
        return -EINVAL;
    while (p < eol && *p == ' ')
        p++;

    char *path = NULL;
    bool deleted = false;
    if (p < eol) {
        size_t len = (size_t)(eol - p);
        const size_t slen = sizeof(DELETED_SUFFIX) - 1;
        if (len > slen && memcmp(eol - slen, DELETED_SUFFIX, slen) == 0) {
            deleted = true;
            len -= slen;
        }
        path = strndup(p, len);
        if (!path)
            return -ENOMEM;
    }

    *e = (MapsEntry){
        .start = start,
        .end = end,
        .offset = offset,
        .dev_major = (uint32_t)major,
        .dev_minor = (uint32_t)minor,
        .inode = inode,
        .r = pr,
        .w = pw,
        .x = px,
        .p = pp,
        .path = path,
        .deleted = deleted,
    };
    return 0;
}

Maps *maps_free(Maps *m)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    free(m->v);
    free(m);
    return NULL;
}

int maps_parse(const char *text, Maps **ret)
{
    if (!text || !ret)
        return -EINVAL;

    /* One entry per line: counting newlines first sizes the array in one allocation. */
    size_t lines = 0;
    for (const char *s = text; *s; s++)
        if (*s == '\n')
            lines++;
    lines++; /* a last line without its newline */

    _cleanup_(maps_freep) Maps *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->v = calloc(lines, sizeof(*m->v));
    if (!m->v)
        return -ENOMEM;

    for (const char *s = text; *s;) {
        const char *eol = strchr(s, '\n');
        if (!eol)
            eol = s + strlen(s);

        MapsEntry e;
        int r = parse_line(s, eol, &e);
        if (r < 0)
            return r;
        /* The kernel prints mappings in ascending address order and they never overlap; text
         * that says otherwise is not a maps file, and maps_find() could not search it. */
        if (m->n > 0 && e.start < m->v[m->n - 1].end) {
            free(e.path);
            return -EINVAL;
        }
        m->v[m->n++] = e;

        s = *eol ? eol + 1 : eol;
    }

    *ret = TAKE_PTR(m);
    return 0;
}

/* Reads the whole file with read() into a growing buffer. stdio would add a copy and a locked
 * FILE for nothing, and the file must be taken in one pass so that the text is one snapshot as
 * far as the kernel allows (it resumes each read() at the address where the last one stopped,
 * so the order survives even if the mappings change meanwhile). */
static int read_all(int fd, char **ret)
{
    size_t size = 16384, len = 0;
    _cleanup_(freep) char *buf = malloc(size);
    if (!buf)
        return -ENOMEM;

    for (;;) {
        if (size - len < 2) {
            if (size > SIZE_MAX / 2)
                return -EFBIG;
            char *n = realloc(buf, size * 2);
            if (!n)
                return -ENOMEM;
            buf = n;
            size *= 2;
        }
        ssize_t k = read(fd, buf + len, size - len - 1);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    *ret = TAKE_PTR(buf);
    return 0;
}

int maps_read(pid_t pid, Maps **ret)
{
    char path[64];
    _cleanup_(closep) int fd = -1;
    _cleanup_(freep) char *text = NULL;
    int r;

    if (pid <= 0 || !ret)
        return -EINVAL;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;

    r = read_all(fd, &text);
    if (r < 0)
        return r;
    return maps_parse(text, ret);
}

const MapsEntry *maps_find(const Maps *m, uint64_t addr)
{
    if (!m || m->n == 0)
        return NULL;

    /* The last entry whose start is <= addr is the only one that can contain it, since the
     * entries are sorted and disjoint. */
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const MapsEntry *e = &m->v[lo - 1];
    return addr < e->end ? e : NULL;
}

/* The one walk behind maps_readable() and maps_anon_readable(). */
static bool range_ok(const Maps *m, uint64_t addr, uint64_t len, bool anon)
{
    /* A zero-length range is judged by its address: callers use this to vet a pointer before a
     * read, and a wild pointer is not made plausible by asking for no bytes. */
    if (len == 0)
        len = 1;
    /* A range that wraps past the top of the address space cannot be mapped. */
    if (addr > UINT64_MAX - len)
        return false;
    uint64_t end = addr + len;

    const MapsEntry *e = maps_find(m, addr);
    if (!e)
        return false;
    const MapsEntry *last = m->v + m->n;
    for (;;) {
        if (!e->r || (anon && !maps_is_anonymous(e)))
            return false;
        if (end <= e->end)
            return true;
        /* The range goes on past this entry: the next must start exactly where this one ends,
         * or there is a hole. */
        const MapsEntry *next = e + 1;
        if (next == last || next->start != e->end)
            return false;
        e = next;
    }
}

bool maps_readable(const Maps *m, uint64_t addr, uint64_t len)
{
    return range_ok(m, addr, len, false);
}

bool maps_is_anonymous(const MapsEntry *e)
{
    if (e->inode != 0)
        return false;
    return !e->path || strcmp(e->path, "[heap]") == 0 || strncmp(e->path, "[anon:", 6) == 0;
}

bool maps_anon_readable(const Maps *m, uint64_t addr, uint64_t len)
{
    return range_ok(m, addr, len, true);
}

uint64_t maps_anon_total(const Maps *m)
{
    uint64_t total = 0;
    for (size_t i = 0; m && i < m->n; i++)
        if (m->v[i].r && maps_is_anonymous(&m->v[i]))
            total += m->v[i].end - m->v[i].start;
    return total;
}
