#include "priv/privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "priv/chan.h"

/* Requests served at once. Each waits in the sampler (a census may take up to
 * max_census_pause_on_demand and its walk), so a flood is answered "busy" rather than holding a
 * thread each; the sampler coalesces requests for one pid anyway. With the sampler's threads
 * and the listener's, this keeps the unit within TasksMax. */
#define MAX_INFLIGHT 6
/* How long the sampler is given for one: the wait the HTTP handlers used before the split. */
#define REQUEST_TIMEOUT 30.0

typedef struct Slot {
    bool used;
    atomic_bool done;
    pthread_t thread;
    ChanMsg req;
    struct Privsep *p;
} Slot;

struct Privsep {
    int sock;
    pthread_t reader;
    pthread_mutex_t lock;
    Sampler *sampler; /* guarded by lock */
    Slot slots[MAX_INFLIGHT];
    atomic_bool hello, taken, closed;
    bool stopped; /* privsep_stop ran */
};

int privsep_spawn(int listen_fd, const char *argv0, const char *const *args, int nargs,
                  pid_t *ret_pid, int *ret_sock)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    char fds[64];
    pid_t parent = getpid();
    snprintf(fds, sizeof(fds), "%d,%d,%d", listen_fd, sv[1], (int)parent);
    /* Built before fork: the child only calls what is safe between fork and exec. */
    char **argv = calloc((size_t)nargs + 4, sizeof(*argv));
    if (!argv) {
        close(sv[0]);
        close(sv[1]);
        return -ENOMEM;
    }
    argv[0] = (char *)argv0;
    argv[1] = (char *)PRIVSEP_LISTENER_FLAG;
    argv[2] = fds;
    for (int i = 0; i < nargs; i++)
        argv[3 + i] = (char *)args[i];
    pid_t pid = fork();
    if (pid < 0) {
        int k = -errno;
        free(argv);
        close(sv[0]);
        close(sv[1]);
        return k;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        /* The sampler dying, even by SIGKILL, takes the listener with it. Set again by the
         * listener after it changes its user, which clears it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(1);
        close(sv[0]);
        if (fcntl(listen_fd, F_SETFD, 0) < 0 || fcntl(sv[1], F_SETFD, 0) < 0)
            _exit(1);
        /* Only the main pid talks to systemd (NotifyAccess=main says so too). */
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        /* Ambient capabilities are what carries CAP_SYS_PTRACE across exec for a non-root
         * pymemd (the unit's AmbientCapabilities=): without them, the new image starts with no
         * capabilities at all. For root, the listener drops its user and the rest itself. */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
            _exit(1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    free(argv);
    close(sv[1]);
    *ret_pid = pid;
    *ret_sock = sv[0];
    return 0;
}

static void answer(Privsep *p, const ChanMsg *req, int result, double retry, const char *err,
                   int fd)
{
    ChanMsg m = {.op = CHAN_ANSWER, .id = req->id, .pid = req->pid, .result = result};
    m.retry_after = retry;
    snprintf(m.err, sizeof(m.err), "%s", err ? err : "");
    /* -EPIPE: the listener is gone; the main loop notices and stops. */
    chan_send(p->sock, &m, fd);
}

static void *serve_request(void *arg)
{
    Slot *slot = arg;
    Privsep *p = slot->p;
    const ChanMsg *req = &slot->req;
    pthread_mutex_lock(&p->lock);
    Sampler *s = p->sampler;
    pthread_mutex_unlock(&p->lock);
    char err[CHAN_ERR_MAX] = "";
    double retry = 0;
    int k;
    if (!s) {
        answer(p, req, -EAGAIN, 1, "starting: the sampler is not running yet", -1);
    } else if (req->op == CHAN_CENSUS) {
        k = sampler_census_now(s, req->pid, REQUEST_TIMEOUT, &retry, err, sizeof(err));
        answer(p, req, k, retry, err, -1);
    } else {
        char *json = NULL;
        k = sampler_referrers_now(s, req->pid, req->type, req->op == CHAN_REFERRERS_FRESH,
                                  REQUEST_TIMEOUT, &retry, &json, err, sizeof(err));
        int fd = -1;
        if (k >= 0 && chan_memfd(json, strlen(json), &fd) < 0) {
            k = -ENOMEM;
            snprintf(err, sizeof(err), "cannot hand the answer to the listener");
        }
        free(json);
        answer(p, req, k, retry, err, fd);
        if (fd >= 0)
            close(fd);
    }
    atomic_store(&slot->done, true);
    return NULL;
}

/* Joins the request threads that have finished. */
static void reap(Privsep *p, bool all)
{
    for (size_t i = 0; i < MAX_INFLIGHT; i++) {
        Slot *sl = &p->slots[i];
        if (sl->used && (all || atomic_load(&sl->done))) {
            pthread_join(sl->thread, NULL);
            sl->used = false;
        }
    }
}

static void take_request(Privsep *p, const ChanMsg *m)
{
    reap(p, false);
    Slot *free_slot = NULL;
    for (size_t i = 0; i < MAX_INFLIGHT && !free_slot; i++)
        if (!p->slots[i].used)
            free_slot = &p->slots[i];
    if (!free_slot) {
        answer(p, m, -EAGAIN, 1, "too many censuses and referrers requests in flight", -1);
        return;
    }
    free_slot->req = *m;
    free_slot->p = p;
    atomic_store(&free_slot->done, false);
    if (pthread_create(&free_slot->thread, NULL, serve_request, free_slot) != 0) {
        answer(p, m, -EAGAIN, 1, "cannot start a thread for the request", -1);
        return;
    }
    free_slot->used = true;
}

static void *reader(void *arg)
{
    Privsep *p = arg;
    for (;;) {
        ChanMsg m;
        int fd = -1;
        int k = chan_recv(p->sock, &m, &fd);
        if (k == -EPIPE || k == -ECONNRESET)
            break;
        if (k < 0) {
            log_error("privsep: the listener sent %s; stopping",
                      k == -EBADMSG ? "a malformed message" : strerror(-k));
            break;
        }
        if (fd >= 0) {
            close(fd); /* nothing the listener sends carries one */
            log_error("privsep: the listener sent a file descriptor; stopping");
            break;
        }
        switch (m.op) {
        case CHAN_HELLO:
            atomic_store(&p->hello, true);
            break;
        case CHAN_SNAPSHOT_TAKEN:
            atomic_store(&p->taken, true);
            break;
        case CHAN_CENSUS:
        case CHAN_REFERRERS:
        case CHAN_REFERRERS_FRESH:
            take_request(p, &m);
            break;
        default:
            log_error("privsep: the listener sent message %u, which it may not; stopping", m.op);
            goto out;
        }
    }
out:
    atomic_store(&p->closed, true);
    /* Wakes the main loop, which waits for signals. */
    kill(getpid(), SIGCHLD);
    return NULL;
}

int privsep_start(int sock, Privsep **ret)
{
    Privsep *p = calloc(1, sizeof(*p));
    if (!p) {
        close(sock);
        return -ENOMEM;
    }
    p->sock = sock;
    pthread_mutex_init(&p->lock, NULL);
    int k = pthread_create(&p->reader, NULL, reader, p);
    if (k != 0) {
        pthread_mutex_destroy(&p->lock);
        close(sock);
        free(p);
        return -k;
    }
    *ret = p;
    return 0;
}

void privsep_set_sampler(Privsep *p, Sampler *s)
{
    pthread_mutex_lock(&p->lock);
    p->sampler = s;
    pthread_mutex_unlock(&p->lock);
}

void privsep_publish(void *ctx, Snapshot *snap)
{
    Privsep *p = ctx;
    int fd = -1;
    int k = snapshot_to_memfd(snap, &fd);
    if (k < 0) {
        log_error("privsep: cannot hand a snapshot to the listener: %s", strerror(-k));
        return;
    }
    ChanMsg m = {.op = CHAN_SNAPSHOT};
    chan_send(p->sock, &m, fd); /* a listener gone is noticed by the reader */
    close(fd);
}

bool privsep_ready(Privsep *p)
{
    return atomic_load(&p->hello) && atomic_load(&p->taken);
}

bool privsep_closed(Privsep *p)
{
    return atomic_load(&p->closed);
}

void privsep_log_level(Privsep *p, LogLevel level)
{
    ChanMsg m = {.op = CHAN_LOG_LEVEL, .level = (int32_t)level};
    chan_send(p->sock, &m, -1);
}

int privsep_web_reload(Privsep *p, const char *text, size_t len)
{
    ChanMsg m = {.op = CHAN_WEB_RELOAD};
    int fd = -1, k = chan_memfd(text, len, &fd);
    if (k < 0)
        return k;
    k = chan_send(p->sock, &m, fd);
    close(fd);
    return k;
}

void privsep_stop(Privsep *p)
{
    if (!p || p->stopped)
        return;
    /* Both directions end: the listener reads the end and exits, and so does the reader. The
     * socket stays open (publishing into it fails) until privsep_free. */
    shutdown(p->sock, SHUT_RDWR);
    pthread_join(p->reader, NULL);
    reap(p, true);
    p->stopped = true;
}

Privsep *privsep_free(Privsep *p)
{
    if (!p)
        return NULL;
    privsep_stop(p);
    close(p->sock);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return NULL;
}
