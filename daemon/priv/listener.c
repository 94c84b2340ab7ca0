#include "priv/listener.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "history/history.h"
#include "http/http.h"
#include "priv/chan.h"
#include "util/log.h"
#include "util/macro.h"

/* The longest a handler waits for the sampler's answer: the sampler gives up after 30 s. */
#define ANSWER_TIMEOUT 40.0
/* The largest referrers document taken from the sampler. */
#define ANSWER_MAX ((size_t)256 << 20)

int listener_parse_arg(const char *arg, int *ret_listen_fd, int *ret_sock, pid_t *ret_parent)
{
    int a, b, c, n = 0;
    if (sscanf(arg, "%d,%d,%d%n", &a, &b, &c, &n) != 3 || arg[n] || a < 0 || b < 0 || c <= 0)
        return -EINVAL;
    *ret_listen_fd = a;
    *ret_sock = b;
    *ret_parent = c;
    return 0;
}

/* ---- privileges ---------------------------------------------------------------------------- */

static int caps_get(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    return syscall(SYS_capget, &h, data) < 0 ? -errno : 0;
}

static int last_cap(void)
{
    int c = 0;
    while (c < 64 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
        c++;
    return c;
}

int listener_drop_privileges(char *err, size_t errlen)
{
    bool root = getuid() == 0 || geteuid() == 0;
    int top = last_cap();
    /* The bounding set can be lowered only with CAP_SETPCAP, which root has: then nothing this
     * process or its children execute can get a capability back. A non-root listener (the
     * unit's) has no CAP_SETPCAP, and the unit's CapabilityBoundingSet= already limits it. */
    for (int c = 0; c <= top; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && root) {
            snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s", c,
                     strerror(errno));
            return -errno;
        }
    if (root) {
        struct passwd *pw = getpwnam(LISTENER_USER);
        if (!pw)
            pw = getpwnam(LISTENER_FALLBACK_USER);
        if (!pw || pw->pw_uid == 0) {
            snprintf(err, errlen,
                     "no unprivileged user to run the HTTP listener as: create \"%s\" "
                     "(systemd/pymemd.sysusers) or \"%s\"",
                     LISTENER_USER, LISTENER_FALLBACK_USER);
            return -EPERM;
        }
        uid_t uid = pw->pw_uid;
        gid_t gid = pw->pw_gid;
        /* Groups first, while still root; the uid change then clears every capability (no
         * SECBIT_KEEP_CAPS). */
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0) {
            snprintf(err, errlen, "cannot change to user %u: %s", (unsigned)uid, strerror(errno));
            return -EPERM;
        }
    }
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_data_struct data[2];
    int k = caps_get(data);
    if (k >= 0 && (data[0].inheritable || data[1].inheritable)) {
        /* The unit's AmbientCapabilities= leaves them inheritable. Lowering needs no privilege;
         * the unit's seccomp filter blocks capset (@privileged), and then no_new_privs below
         * and the empty ambient set keep them from ever becoming effective. */
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct none[2] = {{0}};
        syscall(SYS_capset, &h, none);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
        return -errno;
    }
    /* Check, rather than trust the steps above. */
    if ((k = caps_get(data)) < 0) {
        snprintf(err, errlen, "cannot read the listener's capabilities: %s", strerror(-k));
        return k;
    }
    bool left = data[0].effective || data[1].effective || data[0].permitted || data[1].permitted;
    for (int c = 0; c <= top && !left; c++)
        left = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0;
    if (left || getuid() == 0 || geteuid() == 0) {
        snprintf(err, errlen, "the HTTP listener still holds %s after dropping them",
                 left ? "capabilities" : "root");
        return -EPERM;
    }
    return 0;
}

/* ---- requests to the sampler ----------------------------------------------------------------- */

typedef struct Pending {
    uint32_t id;
    bool done;
    ChanMsg answer;
    char *json;
    struct Pending *next;
} Pending;

typedef struct Listener {
    int sock;
    SnapshotHolder holder;
    History *history;
    pthread_mutex_t lock;
    pthread_cond_t answered;
    Pending *pending; /* guarded by lock */
    uint32_t next_id; /* guarded by lock */
    bool closed;      /* guarded by lock: the channel ended */
} Listener;

static void unlink_pending(Listener *l, Pending *p)
{
    for (Pending **q = &l->pending; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            return;
        }
}

/* Sends a request and waits for its answer. */
static int ask(Listener *l, ChanOp op, pid_t pid, const char *type, double *ret_retry_after,
               char **ret_json, char *err, size_t errlen)
{
    ChanMsg m = {.op = op, .pid = pid};
    if (type) {
        size_t len = strlen(type);
        if (!chan_type_valid(type, len)) {
            snprintf(err, errlen, "not a type name");
            return -EINVAL;
        }
        memcpy(m.type, type, len + 1);
        m.type_len = (uint32_t)len;
    }
    Pending p = {0};
    pthread_mutex_lock(&l->lock);
    if (l->closed) {
        pthread_mutex_unlock(&l->lock);
        snprintf(err, errlen, "the sampler is gone");
        return -EPIPE;
    }
    p.id = m.id = ++l->next_id;
    p.next = l->pending;
    l->pending = &p;
    pthread_mutex_unlock(&l->lock);

    int k = chan_send(l->sock, &m, -1);
    pthread_mutex_lock(&l->lock);
    if (k >= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)ANSWER_TIMEOUT;
        int w = 0;
        while (!p.done && !l->closed && w != ETIMEDOUT)
            w = pthread_cond_timedwait(&l->answered, &l->lock, &ts);
    }
    unlink_pending(l, &p);
    pthread_mutex_unlock(&l->lock);
    if (!p.done) {
        snprintf(err, errlen, "the sampler did not answer");
        return k < 0 ? k : -ETIMEDOUT;
    }
    snprintf(err, errlen, "%s", p.answer.err);
    *ret_retry_after = p.answer.retry_after;
    if (p.answer.result >= 0 && ret_json) {
        if (!p.json) {
            snprintf(err, errlen, "the sampler's answer is missing");
            return -EIO;
        }
        *ret_json = p.json;
    } else {
        free(p.json);
    }
    return p.answer.result;
}

static int census_now(void *ctx, pid_t pid, double *ret_retry_after, char *err, size_t errlen)
{
    return ask(ctx, CHAN_CENSUS, pid, NULL, ret_retry_after, NULL, err, errlen);
}

static int referrers_now(void *ctx, pid_t pid, const char *type, bool fresh,
                         double *ret_retry_after, char **ret_json, char *err, size_t errlen)
{
    return ask(ctx, fresh ? CHAN_REFERRERS_FRESH : CHAN_REFERRERS, pid, type, ret_retry_after,
               ret_json, err, errlen);
}

static char *history_now(void *ctx, pid_t pid, double since, size_t *ret_len)
{
    Listener *l = ctx;
    return history_json(l->history, pid, since, ret_len);
}

/* Takes a snapshot's samples into the history (before it is served, so that a process's history
 * always has the sample its PROCESS shows), and says what the history had to give up. */
static void history_take(Listener *l, const Snapshot *s)
{
    HistoryNews news;
    history_update(l->history, s, &news);
    if (news.capped)
        log_info("history: history_max_memory gives each of %zu processes %zu bytes, which hold "
                 "%zu samples of one, fewer than the %zu that history = %gs asks for: the "
                 "oldest go (raise history_max_memory for more)",
                 news.nrings, news.share, news.kept, news.wanted,
                 snapshot_settings(s).history_seconds);
}

/* Hands an answer to the handler waiting for it. Takes ownership of fd. */
static void deliver(Listener *l, const ChanMsg *m, int fd)
{
    pthread_mutex_lock(&l->lock);
    Pending *p = l->pending;
    while (p && p->id != m->id)
        p = p->next;
    if (p) {
        p->answer = *m;
        if (fd >= 0) {
            int k = chan_read_memfd(fd, ANSWER_MAX, &p->json);
            fd = -1;
            if (k < 0 && p->answer.result >= 0) {
                p->answer.result = k;
                snprintf(p->answer.err, sizeof(p->answer.err), "cannot read the answer: %s",
                         strerror(-k));
            }
        }
        p->done = true;
        pthread_cond_broadcast(&l->answered);
    }
    pthread_mutex_unlock(&l->lock);
    if (fd >= 0)
        close(fd); /* its asker gave up */
}

/* CHAN_WEB_RELOAD: the web config file's text, read by the sampler (the file may be readable
 * only with privileges this process dropped) and checked there; its users and headers change at
 * once, TLS stays as started (the sampler says so). Takes ownership of fd. */
static void web_reload(HttpServer *http, int fd)
{
    _cleanup_(freep) char *text = NULL;
    WebConfig w;
    char err[1024];
    int k = chan_read_memfd(fd, WEBCONFIG_FILE_MAX, &text);
    if (k < 0) {
        log_error("listener: reload: cannot read the web config: %s", strerror(-k));
        return;
    }
    if (webconfig_parse(text, strlen(text), &w, err, sizeof(err)) < 0) {
        log_error("listener: reload: %s; keeping the running web config", err);
        return;
    }
    if (http_set_web(http, &w) < 0)
        log_error("listener: reload: out of memory; keeping the running web config");
    webconfig_done(&w);
}

int listener_run(int listen_fd, int sock, pid_t parent, const char *listen, const WebConfig *web)
{
    /* Signals are the sampler's to take: the listener ends when the channel does (the sampler
     * stopping, or dying: then PR_SET_PDEATHSIG too). A SIGTERM or ^C sent to the whole group
     * must not make it exit first, which the sampler would take for a crash. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    /* Changing the user cleared the parent-death signal privsep_spawn set: set it again, and
     * make sure the sampler did not die before it was. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
        log_error("listener: the sampler is gone");
        return 1;
    }
    Listener l = {.sock = sock};
    if (history_new(&l.history) < 0) {
        log_error("listener: out of memory");
        return 1;
    }
    holder_init(&l.holder);
    pthread_mutex_init(&l.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l.answered, &ca);
    pthread_condattr_destroy(&ca);

    HttpServer *http = NULL;
    char err[512];
    int k = http_start(listen_fd, listen, web, &l.holder, census_now, &l, &http, err, sizeof(err));
    if (k < 0) {
        log_error("%s", err);
        return 1;
    }
    http_set_referrers(http, referrers_now, &l);
    http_set_history(http, history_now, &l);
    /* Beyond loopback, basic auth or verified client certificates are what keep strangers out. */
    bool authenticated =
        web->nusers > 0 || (web->tls && web->client_auth == WEB_REQUIRE_AND_VERIFY_CLIENT_CERT);
    if (!authenticated && http_exposed(http, err, sizeof(err)))
        log_warn("%s", err);
    ChanMsg hello = {.op = CHAN_HELLO};
    chan_send(sock, &hello, -1);

    int rc = 0;
    bool first = true;
    for (;;) {
        ChanMsg m;
        int fd = -1;
        k = chan_recv(sock, &m, &fd);
        if (k == -EPIPE || k == -ECONNRESET)
            break; /* the sampler stopped, or died */
        if (k < 0) {
            log_error("listener: the channel to the sampler failed: %s", strerror(-k));
            rc = 1;
            break;
        }
        if (m.op == CHAN_SNAPSHOT && fd >= 0) {
            Snapshot *s = NULL;
            k = snapshot_from_fd(fd, &s);
            if (k < 0) {
                log_error("listener: refused a snapshot: %s", strerror(-k));
                continue;
            }
            history_take(&l, s);
            holder_swap(&l.holder, s);
            if (first) {
                ChanMsg taken = {.op = CHAN_SNAPSHOT_TAKEN};
                chan_send(sock, &taken, -1);
                first = false;
            }
        } else if (m.op == CHAN_ANSWER) {
            deliver(&l, &m, fd);
        } else if (m.op == CHAN_LOG_LEVEL && fd < 0 && m.level >= LOG_LEVEL_ERROR &&
                   m.level <= LOG_LEVEL_DEBUG) {
            log_set_level((LogLevel)m.level);
        } else if (m.op == CHAN_WEB_RELOAD && fd >= 0) {
            web_reload(http, fd);
        } else {
            if (fd >= 0)
                close(fd);
            log_error("listener: unexpected message %u from the sampler", m.op);
            rc = 1;
            break;
        }
    }
    pthread_mutex_lock(&l.lock);
    l.closed = true;
    pthread_cond_broadcast(&l.answered);
    pthread_mutex_unlock(&l.lock);
    http_stop(http);
    holder_done(&l.holder);
    history_free(l.history);
    pthread_cond_destroy(&l.answered);
    pthread_mutex_destroy(&l.lock);
    close(sock);
    return rc;
}
