/* whois: container, pod, unit, namespace pid, ancestry and service group of a process.
 *
 * The cgroup path conventions recognised here (each covered by tests/unit/test_whois.c with a
 * line as the runtime writes it):
 *
 *   Docker, systemd driver          /system.slice/docker-<64 hex>.scope
 *   Docker, cgroupfs driver         /docker/<64 hex>
 *   containerd (CRI), systemd       .../kubepods-<qos>-pod<uid with
 * _>.slice/cri-containerd-<id>.scope CRI-O, systemd / cgroupfs       .../crio-<id>.scope  /
 * .../pod<uid>/crio-<id> Kubernetes, cgroupfs driver     /kubepods/<qos>/pod<uid>/<64 hex> (runtime
 * not told) Podman, systemd / cgroupfs      .../libpod-<id>.scope[/container]  /
 * /libpod_parent/libpod-<id> systemd-nspawn, machined
 * /machine.slice/systemd-nspawn@<name>.service/payload/... /machine.slice/machine-<name>.scope
 *
 * A guaranteed pod has no QoS level in its path (kubepods-pod<uid>.slice, kubepods/pod<uid>).
 * The "conmon" scopes of CRI-O and Podman (crio-conmon-<id>.scope) hold the runtime's monitor,
 * not the container, and match no pattern because "conmon-<id>" is not an id. */
#include "proc/whois.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc/procinfo.h"
#include "util/errmsg.h"
#include "util/macro.h"
#include "util/utf8.h"

/* Reads a whole /proc file into a malloc'd, NUL-terminated buffer of at most max bytes (the
 * rest is dropped: every caller here has what it needs in the head). */
static int read_small(const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(max + 1);
    if (!buf)
        return -ENOMEM;
    size_t have = 0;
    while (have < max) {
        ssize_t k = read(fd, buf + have, max - have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int r = -errno;
            free(buf);
            return r;
        }
        if (k == 0)
            break;
        have += (size_t)k;
    }
    buf[have] = 0;
    *ret = buf;
    *ret_len = have;
    return 0;
}

static int gone_or(int r)
{
    return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

/* ---- cgroup paths --------------------------------------------------------------------------- */

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

/* A container id of the OCI runtimes: 64 hex digits (a SHA-256). */
static bool is_oci_id(const char *s, size_t n)
{
    return n == 64 && is_hex(s, n);
}

/* A pod UID (RFC 4122 text, 36 bytes) with `sep` ('-', or '_' under the systemd driver) between
 * its groups; written into out with dashes. */
static bool take_uid(const char *s, size_t n, char sep, char out[40])
{
    static const size_t dash[] = {8, 13, 18, 23};
    if (n != 36)
        return false;
    for (size_t i = 0, d = 0; i < n; i++) {
        if (d < ARRAY_SIZE(dash) && i == dash[d]) {
            if (s[i] != sep)
                return false;
            out[i] = '-';
            d++;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        } else {
            out[i] = (char)tolower((unsigned char)s[i]);
        }
    }
    out[n] = 0;
    return true;
}

static bool has_prefix(const char *s, size_t n, const char *p)
{
    size_t l = strlen(p);
    return n >= l && memcmp(s, p, l) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *x)
{
    size_t l = strlen(x);
    return n >= l && memcmp(s + n - l, x, l) == 0;
}

static const char *qos_of(const char *s, size_t n)
{
    if (n == 9 && memcmp(s, "burstable", 9) == 0)
        return "burstable";
    if (n == 10 && memcmp(s, "besteffort", 10) == 0)
        return "besteffort";
    return NULL;
}

/* Scope prefixes of container runtimes (systemd driver; CRI-O and Podman use the same prefix
 * without ".scope" under cgroupfs). */
static const struct {
    const char *prefix;
    const char *runtime;
} scope_runtimes[] = {
    {"docker-", "docker"},
    {"cri-containerd-", "containerd"},
    {"crio-", "cri-o"},
    {"libpod-", "podman"},
};

/* What one path says, filled component by component, the innermost match winning. */
typedef struct PathFacts {
    char container_id[WHOIS_ID_MAX];
    const char *runtime;
    bool container;
    char pod_uid[40];
    const char *qos;
    char unit[WHOIS_UNIT_MAX];
} PathFacts;

static void set_container(PathFacts *f, const char *id, size_t n, const char *runtime)
{
    n = MIN(n, sizeof(f->container_id) - 1);
    memcpy(f->container_id, id, n);
    f->container_id[n] = 0;
    f->runtime = runtime;
    f->container = true;
    /* A unit outside the container is not the process's: only one inside it counts. */
    f->unit[0] = 0;
}

/* The Kubernetes pod slice of the systemd driver: kubepods[-<qos>]-pod<uid_>.slice. */
static bool kube_systemd_pod(PathFacts *f, const char *c, size_t n)
{
    if (n < 15 || !has_prefix(c, n, "kubepods-") || !has_suffix(c, n, ".slice"))
        return false;
    const char *p = c + 9, *end = c + n - 6;
    const char *qos = "guaranteed";
    const char *dash = memchr(p, '-', (size_t)(end - p));
    if (dash && !has_prefix(p, (size_t)(end - p), "pod")) {
        qos = qos_of(p, (size_t)(dash - p));
        if (!qos)
            return false;
        p = dash + 1;
    }
    if (!has_prefix(p, (size_t)(end - p), "pod"))
        return false;
    char uid[40];
    if (!take_uid(p + 3, (size_t)(end - p - 3), '_', uid))
        return false;
    memcpy(f->pod_uid, uid, sizeof(uid));
    f->qos = qos;
    return true;
}

static void path_component(PathFacts *f, const char *c, size_t n, const char *parent,
                           size_t parent_n, bool *kube_cgroupfs, const char **kube_qos)
{
    /* Kubernetes, cgroupfs driver: kubepods/[burstable|besteffort/]pod<uid>/<id>. */
    if (n == 8 && memcmp(c, "kubepods", 8) == 0) {
        *kube_cgroupfs = true;
        *kube_qos = "guaranteed";
        return;
    }
    if (*kube_cgroupfs && qos_of(c, n)) {
        *kube_qos = qos_of(c, n);
        return;
    }
    char uid[40];
    if (*kube_cgroupfs && has_prefix(c, n, "pod") && take_uid(c + 3, n - 3, '-', uid)) {
        memcpy(f->pod_uid, uid, sizeof(uid));
        f->qos = *kube_qos;
        return;
    }
    if (kube_systemd_pod(f, c, n))
        return;

    for (size_t i = 0; i < ARRAY_SIZE(scope_runtimes); i++) {
        const char *pre = scope_runtimes[i].prefix;
        size_t pl = strlen(pre);
        if (!has_prefix(c, n, pre))
            continue;
        size_t idn = n - pl;
        if (idn >= 6 && has_suffix(c, n, ".scope"))
            idn -= 6;
        if (is_oci_id(c + pl, idn)) {
            set_container(f, c + pl, idn, scope_runtimes[i].runtime);
            return;
        }
    }
    if (is_oci_id(c, n)) {
        const char *runtime = NULL;
        if (parent_n == 6 && memcmp(parent, "docker", 6) == 0)
            runtime = "docker";
        set_container(f, c, n, runtime);
        return;
    }
    if (has_prefix(c, n, "systemd-nspawn@") && has_suffix(c, n, ".service") && n > 23) {
        set_container(f, c + 15, n - 23, "systemd-nspawn");
        return;
    }
    if (has_prefix(c, n, "machine-") && has_suffix(c, n, ".scope") && n > 14) {
        set_container(f, c + 8, n - 14, "systemd-machined");
        return;
    }
    if ((has_suffix(c, n, ".service") && n > 8) || (has_suffix(c, n, ".scope") && n > 6)) {
        size_t l = MIN(n, sizeof(f->unit) - 1);
        memcpy(f->unit, c, l);
        f->unit[l] = 0;
    }
}

static void path_facts(const char *path, PathFacts *ret)
{
    PathFacts f = {0};
    bool kube_cgroupfs = false;
    const char *kube_qos = NULL, *parent = "";
    size_t parent_n = 0;
    for (const char *c = path; *c;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        /* "." and ".." appear in paths outside the reader's cgroup namespace. */
        if (n > 0 && !(n <= 2 && memcmp(c, "..", n) == 0)) {
            path_component(&f, c, n, parent, parent_n, &kube_cgroupfs, &kube_qos);
            parent = c;
            parent_n = n;
        }
        c += n + (slash != NULL);
    }
    *ret = f;
}

static void copy_path(char *dst, const char *src, size_t len)
{
    char raw[WHOIS_PATH_MAX];
    if (len >= sizeof(raw)) {
        memcpy(raw, src, sizeof(raw) - 4);
        memcpy(raw + sizeof(raw) - 4, "...", 4);
    } else {
        memcpy(raw, src, len);
        raw[len] = 0;
    }
    /* A cgroup name is any bytes its creator chose: valid UTF-8 for JSON and labels. */
    utf8_sanitize(dst, WHOIS_PATH_MAX, raw);
}

enum { LINE_V2, LINE_SYSTEMD, LINE_V1, LINE_KINDS };

int whois_parse_cgroup(const char *text, size_t len, WhoisCgroup *ret)
{
    if (!text || !ret)
        return -EINVAL;

    /* Every line's path, best kind first: the unified hierarchy, systemd's own v1 one, then
     * the controllers' in file order. Each fact is taken from the first path that has it, so a
     * hybrid host whose unified line is "/" still tells the container from its v1 lines. */
    typedef struct Line {
        int kind;
        char *path;
    } Line;
    Line lines[64];
    size_t nlines = 0;
    int r = 0;

    for (const char *s = text, *end = text + len; s < end && nlines < ARRAY_SIZE(lines);) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        /* hierarchy-id:controllers:path; the path may itself hold ':'. */
        const char *c1 = memchr(s, ':', (size_t)(e - s));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(e - c1 - 1)) : NULL;
        if (c2 && c2 + 1 < e && c2[1] == '/' && c1 > s) {
            int kind = LINE_V1;
            if (c1 - s == 1 && *s == '0' && c2 == c1 + 1)
                kind = LINE_V2;
            else if (c2 - c1 - 1 == 12 && memcmp(c1 + 1, "name=systemd", 12) == 0)
                kind = LINE_SYSTEMD;
            size_t pl = (size_t)(e - c2 - 1);
            char *p = malloc(pl + 1);
            if (!p) {
                r = -ENOMEM;
                break;
            }
            memcpy(p, c2 + 1, pl);
            p[pl] = 0;
            lines[nlines++] = (Line){kind, p};
        }
        s = e + (nl != NULL);
    }
    if (r == 0 && nlines == 0)
        r = -EINVAL;

    WhoisCgroup w = {0};
    bool have_path = false, have_container = false, have_pod = false, have_unit = false;
    const char *first = NULL;
    for (int kind = 0; r == 0 && kind < LINE_KINDS; kind++) {
        for (size_t i = 0; i < nlines; i++) {
            if (lines[i].kind != kind)
                continue;
            const char *p = lines[i].path;
            if (!first)
                first = p;
            if (!have_path && strcmp(p, "/") != 0) {
                copy_path(w.path, p, strlen(p));
                have_path = true;
            }
            PathFacts f;
            path_facts(p, &f);
            if (!have_container && f.container) {
                utf8_sanitize(w.container_id, sizeof(w.container_id), f.container_id);
                w.runtime = f.runtime;
                have_container = true;
            }
            if (!have_pod && f.pod_uid[0]) {
                memcpy(w.pod_uid, f.pod_uid, sizeof(w.pod_uid));
                w.qos_class = f.qos;
                have_pod = true;
            }
            /* The unit from the path that said the most: the first that names one. */
            if (!have_unit && f.unit[0]) {
                utf8_sanitize(w.unit, sizeof(w.unit), f.unit);
                have_unit = true;
            }
        }
    }
    if (r == 0 && !have_path)
        copy_path(w.path, first, strlen(first));
    for (size_t i = 0; i < nlines; i++)
        free(lines[i].path);
    if (r < 0)
        return r;
    *ret = w;
    return 0;
}

int whois_read_cgroup(pid_t pid, WhoisCgroup *ret)
{
    char path[64];
    _cleanup_(freep) char *text = NULL;
    size_t len;

    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    /* 64 KiB: a dozen v1 hierarchies with paths of a few hundred bytes each fit many times. */
    int r = read_small(path, 65536, &text, &len);
    if (r < 0)
        return gone_or(r);
    return whois_parse_cgroup(text, len, ret);
}

/* ---- namespaces --------------------------------------------------------------------------- */

int whois_parse_nspid(const char *status, size_t len, pid_t *ret)
{
    for (const char *s = status, *end = status + len; s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        if (e - s > 6 && memcmp(s, "NSpid:", 6) == 0) {
            /* "NSpid:\t4242\t17\t1": the pid in each namespace, outermost first. */
            long last = -1;
            for (const char *p = s + 6; p < e;) {
                while (p < e && (*p == ' ' || *p == '\t'))
                    p++;
                if (p == e)
                    break;
                long v = 0;
                if (*p < '0' || *p > '9')
                    return -EINVAL;
                for (; p < e && *p >= '0' && *p <= '9'; p++) {
                    v = v * 10 + (*p - '0');
                    if (v > 0x3fffffff) /* PID_MAX_LIMIT is 4 Mi; anything near this is not a pid */
                        return -EINVAL;
                }
                last = v;
            }
            if (last <= 0)
                return -EINVAL;
            *ret = (pid_t)last;
            return 0;
        }
        s = e + (nl != NULL);
    }
    return -ENOENT;
}

int whois_ns_pid(pid_t pid, pid_t *ret)
{
    char path[64];
    _cleanup_(freep) char *text = NULL;
    size_t len;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    /* NSpid comes in the first 2 KiB; the Groups line after it can be long, and is not read. */
    int r = read_small(path, 4096, &text, &len);
    if (r < 0)
        return gone_or(r);
    return whois_parse_nspid(text, len, ret);
}

/* ---- ancestry ----------------------------------------------------------------------------- */

/* The parent pid, stat field 4 (after the comm, which may hold any byte, ')' included). */
static int parent_of(pid_t pid, pid_t *ret)
{
    char path[64];
    _cleanup_(freep) char *text = NULL;
    size_t len;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int r = read_small(path, 2048, &text, &len);
    if (r < 0)
        return gone_or(r);
    char *p = strrchr(text, ')');
    if (!p)
        return -EIO;
    char state;
    int ppid;
    if (sscanf(p + 1, " %c %d", &state, &ppid) != 2)
        return -EIO;
    *ret = ppid;
    return 0;
}

/* The same image, whatever the start time: fork() copies all of it, exec() replaces all. An
 * executable that cannot be looked at (exe_ino 0) matches nothing. */
static bool same_image(const ProcStamp *a, const ProcStamp *b)
{
    return a->exe_ino != 0 && a->exe_dev == b->exe_dev && a->exe_ino == b->exe_ino &&
           a->start_code == b->start_code && a->start_stack == b->start_stack &&
           a->start_brk == b->start_brk;
}

int whois_top_ancestor(pid_t pid, pid_t *ret)
{
    if (pid <= 0 || !ret)
        return -EINVAL;

    ProcStamp own;
    int r = procinfo_stamp(pid, &own);
    if (r < 0)
        return r;
    pid_t top = pid;
    for (int depth = 0; depth < WHOIS_ANCESTORS_MAX; depth++) {
        pid_t parent;
        ProcStamp ps;
        /* pid 1 is the init of this PID namespace: whatever it is, it is no master of ours. */
        if (parent_of(top, &parent) < 0 || parent <= 1 || procinfo_stamp(parent, &ps) < 0 ||
            !same_image(&own, &ps))
            break;
        top = parent;
    }
    *ret = top;
    return 0;
}

int whois_comm(pid_t pid, char *buf, size_t size)
{
    char path[64], raw[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gone_or(-errno);
    ssize_t n = read(fd, raw, sizeof(raw) - 1);
    if (n <= 0)
        return n < 0 ? gone_or(-errno) : -ESRCH;
    raw[n] = 0;
    raw[strcspn(raw, "\n")] = 0;
    utf8_sanitize(buf, size, raw);
    return 0;
}

/* ---- group templates ---------------------------------------------------------------------- */

enum { F_COMM, F_EXE_BASE, F_TOP, F_UNIT, F_CONTAINER_ID, F_POD_UID, F_COUNT };
static const char *const field_names[F_COUNT] = {
    [F_COMM] = "comm", [F_EXE_BASE] = "exe_base",         [F_TOP] = "top_python_ancestor",
    [F_UNIT] = "unit", [F_CONTAINER_ID] = "container_id", [F_POD_UID] = "pod_uid",
};
const char whois_template_fields[] =
    "{comm}, {exe_base}, {top_python_ancestor}, {unit}, {container_id}, {pod_uid}";

static int field_of(const char *name, size_t n)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(field_names[i]) == n && memcmp(field_names[i], name, n) == 0)
            return i;
    return -1;
}

int whois_template_check(const char *tpl, char *err, size_t errlen)
{
    if (!tpl)
        return errmsg(err, errlen, -EINVAL, "group: no template");
    size_t len = strlen(tpl);
    if (len > WHOIS_TEMPLATE_MAX)
        return errmsg(err, errlen, -EINVAL,
                      "group: the template is %zu bytes, at most %d are taken", len,
                      WHOIS_TEMPLATE_MAX);
    unsigned fields = 0;
    for (const char *p = tpl; *p; p++) {
        if (*p == '}')
            return errmsg(err, errlen, -EINVAL,
                          "group: \"}\" at byte %zu closes no field (fields are %s)",
                          (size_t)(p - tpl) + 1, whois_template_fields);
        if (*p != '{')
            continue;
        const char *close = strchr(p + 1, '}');
        if (!close)
            return errmsg(err, errlen, -EINVAL, "group: \"{\" at byte %zu is not closed",
                          (size_t)(p - tpl) + 1);
        if (field_of(p + 1, (size_t)(close - p - 1)) < 0)
            return errmsg(err, errlen, -EINVAL, "group: unknown field {%.*s} (known: %s)",
                          (int)MIN(close - p - 1, 64), p + 1, whois_template_fields);
        fields++;
        p = close;
    }
    if (fields == 0)
        return errmsg(err, errlen, -EINVAL,
                      "group: the template names no field, so every target would be in one "
                      "group (fields are %s)",
                      whois_template_fields);
    return 0;
}

static void put(char *out, size_t size, size_t *at, const char *s, size_t n)
{
    if (*at + 1 >= size)
        return;
    n = MIN(n, size - 1 - *at);
    memcpy(out + *at, s, n);
    *at += n;
    out[*at] = 0;
}

void whois_template_expand(const char *tpl, const WhoisFields *f, char *out, size_t size)
{
    if (!size)
        return;
    const char *values[F_COUNT] = {
        [F_COMM] = f->comm, [F_EXE_BASE] = f->exe_base,         [F_TOP] = f->top_python_ancestor,
        [F_UNIT] = f->unit, [F_CONTAINER_ID] = f->container_id, [F_POD_UID] = f->pod_uid,
    };
    size_t at = 0;
    out[0] = 0;
    for (const char *p = tpl; *p;) {
        const char *open = strchr(p, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            put(out, size, &at, p, strlen(p));
            break;
        }
        put(out, size, &at, p, (size_t)(open - p));
        int i = field_of(open + 1, (size_t)(close - open - 1));
        if (i >= 0 && values[i])
            put(out, size, &at, values[i], strlen(values[i]));
        p = close + 1;
    }
    if (at == 0 && f->comm)
        put(out, size, &at, f->comm, strlen(f->comm));
}
