/* debuginfo with libdebuginfod, opened on the first fetch.
 *
 * Not linked: libdebuginfod brings libcurl and with it Kerberos, LDAP, SSH, RTMP and OpenSSL,
 * whose loading and constructors cost each pymemd process about 3 MiB of resident memory, while
 * most hosts never set DEBUGINFOD_URLS. The header still types the calls. */
#include "elf/debuginfo.h"

#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "elf/elfmem.h" /* ELFMEM_BUILD_ID_MAX */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define DEBUGINFOD_SONAME "libdebuginfod.so.1"

static struct {
    __typeof__(debuginfod_begin) *begin;
    __typeof__(debuginfod_end) *end;
    __typeof__(debuginfod_find_debuginfo) *find_debuginfo;
    __typeof__(debuginfod_set_progressfn) *set_progressfn;
    __typeof__(debuginfod_set_user_data) *set_user_data;
    __typeof__(debuginfod_get_user_data) *get_user_data;
} lib;
static char lib_err[160]; /* why the library could not be had; empty once it is */
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* Opens the library for the life of the process (never closed: its curl state and threads may
 * outlive a client). */
static void lib_open(void)
{
    void *h = dlopen(DEBUGINFOD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(lib_err, sizeof(lib_err), "debuginfod: cannot load " DEBUGINFOD_SONAME ": %s",
                 e ? e : "unknown error");
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"debuginfod_begin", (void **)&lib.begin},
        {"debuginfod_end", (void **)&lib.end},
        {"debuginfod_find_debuginfo", (void **)&lib.find_debuginfo},
        {"debuginfod_set_progressfn", (void **)&lib.set_progressfn},
        {"debuginfod_set_user_data", (void **)&lib.set_user_data},
        {"debuginfod_get_user_data", (void **)&lib.get_user_data},
    };
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            snprintf(lib_err, sizeof(lib_err), "debuginfod: " DEBUGINFOD_SONAME " lacks %s",
                     syms[i].name);
            return;
        }
    }
}

/* libdebuginfod calls this about once a second while a request runs (its curl loop waits up to
 * 1 s per turn), connecting included; non-zero cancels the request. */
static int past_deadline(debuginfod_client *client, long done, long total)
{
    (void)done;
    (void)total;
    const double *deadline = lib.get_user_data(client);
    return now_s() > *deadline;
}

/* Whether there is anything to ask a server for. */
static int fetch_possible(size_t len, char *why, size_t whylen)
{
    const char *urls = getenv("DEBUGINFOD_URLS");
    if (!urls || !*urls) {
        snprintf(why, whylen, "DEBUGINFOD_URLS is not set");
        return -ENOENT;
    }
    if (len == 0 || len > ELFMEM_BUILD_ID_MAX) {
        snprintf(why, whylen, "no build-id to ask debuginfod for");
        return -EINVAL;
    }
    return 0;
}

/* The fetch itself, blocking for up to timeout_s. */
static int fetch_now(const uint8_t *id, size_t len, unsigned timeout_s, int *ret_fd, char *why,
                     size_t whylen)
{
    int k = fetch_possible(len, why, whylen);
    if (k < 0)
        return k;
    pthread_once(&lib_once, lib_open);
    if (lib_err[0]) {
        snprintf(why, whylen, "%s", lib_err);
        return -ENOSYS;
    }
    debuginfod_client *client = lib.begin();
    if (!client) {
        snprintf(why, whylen, "debuginfod: cannot start a client");
        return -ENOMEM;
    }
    double start = now_s(), deadline = start + timeout_s;
    lib.set_user_data(client, &deadline);
    lib.set_progressfn(client, past_deadline);
    char *path = NULL;
    int fd = lib.find_debuginfo(client, id, (int)len, &path);
    lib.end(client);
    free(path);
    if (fd >= 0) {
        *ret_fd = fd;
        return 0;
    }
    if (fd == -ECANCELED || now_s() > deadline) {
        snprintf(why, whylen, "debuginfod: no answer within %u s", timeout_s);
        return -ETIMEDOUT;
    }
    if (fd == -ENOENT)
        snprintf(why, whylen, "the debuginfod servers do not have it");
    else
        snprintf(why, whylen, "debuginfod: %s", strerror(-fd));
    return fd;
}

/* --- in the background --- */

/* Build-ids asked for in the background; entries are only appended, so an index stays valid
 * while the lock is dropped. Bounded: a host runs few distinct stripped interpreters. */
enum { FETCHES_MAX = 256 };

typedef enum FetchState {
    FETCH_QUEUED,
    FETCH_RUNNING,
    FETCH_DONE,
} FetchState;

typedef struct Fetch {
    uint8_t id[ELFMEM_BUILD_ID_MAX];
    size_t len;
    unsigned timeout_s;
    FetchState state;
    int result; /* once done: 0 or -errno */
    int fd;     /* once done well: the debug file; callers get duplicates */
    char why[96];
} Fetch;

static pthread_mutex_t fetch_lock = PTHREAD_MUTEX_INITIALIZER;
static Fetch *fetches;
static size_t nfetches;
static bool background, worker_running;
static atomic_uint generation;

void debuginfo_set_background(bool on)
{
    pthread_mutex_lock(&fetch_lock);
    background = on;
    pthread_mutex_unlock(&fetch_lock);
}

unsigned debuginfo_generation(void)
{
    return atomic_load(&generation);
}

/* Takes queued fetches one at a time, oldest first, and ends when none is left. */
static void *fetch_worker(void *arg)
{
    (void)arg;
    for (;;) {
        uint8_t id[ELFMEM_BUILD_ID_MAX];
        size_t i, len;
        unsigned timeout_s;

        pthread_mutex_lock(&fetch_lock);
        for (i = 0; i < nfetches && fetches[i].state != FETCH_QUEUED; i++)
            ;
        if (i == nfetches) {
            worker_running = false;
            pthread_mutex_unlock(&fetch_lock);
            return NULL;
        }
        fetches[i].state = FETCH_RUNNING;
        len = fetches[i].len;
        memcpy(id, fetches[i].id, len);
        timeout_s = fetches[i].timeout_s;
        pthread_mutex_unlock(&fetch_lock);

        char why[sizeof(fetches[i].why)] = "";
        int fd = -1, k = fetch_now(id, len, timeout_s, &fd, why, sizeof(why));

        pthread_mutex_lock(&fetch_lock);
        fetches[i].result = k < 0 ? k : 0;
        fetches[i].fd = k < 0 ? -1 : fd;
        memcpy(fetches[i].why, why, sizeof(why));
        fetches[i].state = FETCH_DONE;
        atomic_fetch_add(&generation, 1);
        pthread_mutex_unlock(&fetch_lock);
    }
}

/* The answer for a build-id known to the table: its result, or -EINPROGRESS. Under the lock. */
static int fetch_answer(const Fetch *f, int *ret_fd, char *why, size_t whylen)
{
    if (f->state != FETCH_DONE) {
        snprintf(why, whylen, "being fetched from debuginfod (up to %u s)", f->timeout_s);
        return -EINPROGRESS;
    }
    if (f->result < 0) {
        snprintf(why, whylen, "%s", f->why);
        return f->result;
    }
    int fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int k = -errno;
        snprintf(why, whylen, "debuginfod: %s", strerror(-k));
        return k;
    }
    *ret_fd = fd;
    return 0;
}

/* Queues a fetch and makes sure the worker runs. Under the lock. */
static int fetch_queue(const uint8_t *id, size_t len, unsigned timeout_s, char *why, size_t whylen)
{
    if (nfetches == FETCHES_MAX) {
        snprintf(why, whylen, "debuginfod: more than %d build-ids asked for", FETCHES_MAX);
        return -ENOSPC;
    }
    Fetch *n = realloc(fetches, (nfetches + 1) * sizeof(*n));
    if (!n) {
        snprintf(why, whylen, "debuginfod: out of memory");
        return -ENOMEM;
    }
    fetches = n;
    Fetch *f = &fetches[nfetches];
    *f = (Fetch){.len = len, .timeout_s = timeout_s, .state = FETCH_QUEUED, .fd = -1};
    memcpy(f->id, id, len);
    if (!worker_running) {
        pthread_t t;
        pthread_attr_t attr;
        int k = pthread_attr_init(&attr);
        if (k == 0) {
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            k = pthread_create(&t, &attr, fetch_worker, NULL);
            pthread_attr_destroy(&attr);
        }
        if (k != 0) {
            snprintf(why, whylen, "debuginfod: cannot start a thread: %s", strerror(k));
            return -k;
        }
        worker_running = true;
    }
    nfetches++;
    snprintf(why, whylen, "being fetched from debuginfod (up to %u s)", timeout_s);
    return -EINPROGRESS;
}

int debuginfo_fetch(const uint8_t *id, size_t len, unsigned timeout_s, int *ret_fd, char *why,
                    size_t whylen)
{
    int k = fetch_possible(len, why, whylen);
    if (k < 0)
        return k;
    pthread_mutex_lock(&fetch_lock);
    if (!background) {
        pthread_mutex_unlock(&fetch_lock);
        return fetch_now(id, len, timeout_s, ret_fd, why, whylen);
    }
    k = 1;
    for (size_t i = 0; i < nfetches && k == 1; i++)
        if (fetches[i].len == len && memcmp(fetches[i].id, id, len) == 0)
            k = fetch_answer(&fetches[i], ret_fd, why, whylen);
    if (k == 1)
        k = fetch_queue(id, len, timeout_s, why, whylen);
    pthread_mutex_unlock(&fetch_lock);
    return k;
}
