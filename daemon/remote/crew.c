#include "remote/crew.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/clock.h"

#define PIECE      (1u << 20) /* bytes per piece of work */
#define PIECE_IOVS 64         /* iovs per piece, for many small ranges */
#define SPIN_WAIT  0.002      /* seconds the reader spins for the helper's last piece */

/* A spinning thread tells the CPU so (less power, and the other hyperthread runs faster). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

typedef struct Piece {
    size_t first, n; /* a run of iovs */
    int result;
} Piece;

/* One read, shared by the reader and the helper: whichever lets go of it last frees it. */
typedef struct Job {
    atomic_int refs;
    Rmem *r;
    RmemIov *iov; /* the caller's iovs, cut to at most PIECE bytes each */
    size_t *src;  /* for each, the caller's iov it is part of */
    size_t niov;
    Piece *pieces;
    size_t npieces;
    double deadline; /* monotonic; 0: none */
    bool ready;      /* published inside a crew_ready() window: the helper lingers after it */
    atomic_size_t next;
    atomic_size_t finished; /* pieces whose result is in */
} Job;

struct Crew {
    Rmem *r;
    _Atomic(Job *) offered;         /* a read the helper has not taken yet (it holds a reference) */
    atomic_int_fast64_t spin_until; /* monotonic ns until which the idle helper spins */
    atomic_int_fast64_t linger;     /* ns it spins after a read made inside that window */
    atomic_bool quit;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the helper sleeps on it */
    pthread_cond_t done; /* the reader, on the helper's last piece */
    pthread_t helper;
    bool has_helper;
    bool pinned; /* the helper is kept off the reader's CPU (avoid) */
    int avoid;   /* the reader's CPU when the helper was last placed */
};

static int64_t now_ns(void)
{
    return (int64_t)(clock_mono() * 1e9);
}

static void job_unref(Job *j)
{
    if (!j || atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    free(j->iov);
    free(j->src);
    free(j->pieces);
    free(j);
}

static void work(Crew *c, Job *j)
{
    size_t i;
    while ((i = atomic_fetch_add(&j->next, 1)) < j->npieces) {
        Piece *p = &j->pieces[i];
        if (j->deadline && clock_mono() > j->deadline)
            p->result = -ETIMEDOUT;
        else
            p->result = rmem_readv(j->r, j->iov + p->first, p->n);
        if (atomic_fetch_add_explicit(&j->finished, 1, memory_order_acq_rel) + 1 == j->npieces) {
            pthread_mutex_lock(&c->lock);
            pthread_cond_broadcast(&c->done);
            pthread_mutex_unlock(&c->lock);
        }
    }
}

/* Whether the helper has something to do now, or a reason to stay awake for it. */
static bool helper_awake(Crew *c)
{
    return atomic_load(&c->offered) || atomic_load(&c->quit) ||
           now_ns() < atomic_load(&c->spin_until);
}

static void *helper_main(void *arg)
{
    Crew *c = arg;
    for (;;) {
        Job *j = NULL;
        /* Looked at before it is taken: a spin of exchanges would keep the line from the reader. */
        while (!atomic_load(&c->quit) &&
               !(atomic_load(&c->offered) && (j = atomic_exchange(&c->offered, NULL)))) {
            if (helper_awake(c)) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&c->lock);
            while (!helper_awake(c))
                pthread_cond_wait(&c->wake, &c->lock);
            pthread_mutex_unlock(&c->lock);
        }
        if (!j)
            return NULL;
        work(c, j);
        if (j->ready) /* the next read may be the one that counts: stay awake for it */
            atomic_store(&c->spin_until, now_ns() + atomic_load(&c->linger));
        job_unref(j);
    }
}

/* The CPUs this thread may run on, but the one it runs on now (*ret_cpu): where a helper goes.
 * Returns how many. */
static int other_cpus(cpu_set_t *set, int *ret_cpu)
{
    *ret_cpu = sched_getcpu();
    if (sched_getaffinity(0, sizeof(*set), set) < 0)
        return 0;
    if (*ret_cpu >= 0)
        CPU_CLR(*ret_cpu, set);
    return CPU_COUNT(set);
}

/* Keeps the helper off the reader's CPU. A scheduler that packs tasks onto few CPUs (as on the
 * VM this was measured on) put a new or woken helper on the reader's CPU, where it waited for the
 * reader's time slice (3 to 4 ms) while the other CPU stood idle. Should the reader move to the
 * helper's CPU, the helper waits and the reader copies alone, as without one. Where affinity may
 * not be changed (the systemd unit's filter denies @resources), the scheduler places it. */
static void place_helper(Crew *c)
{
    cpu_set_t others;
    int cpu;
    if (other_cpus(&others, &cpu) > 0 &&
        pthread_setaffinity_np(c->helper, sizeof(others), &others) == 0) {
        c->pinned = true;
        c->avoid = cpu;
    }
}

int crew_new(Rmem *r, bool helper, Crew **ret)
{
    Crew *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->r = r;
    atomic_init(&c->offered, NULL);
    atomic_init(&c->spin_until, 0);
    atomic_init(&c->linger, 0);
    atomic_init(&c->quit, false);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    pthread_cond_init(&c->done, NULL);
    cpu_set_t others;
    int cpu;
    if (helper && other_cpus(&others, &cpu) > 0 &&
        pthread_create(&c->helper, NULL, helper_main, c) == 0) {
        c->has_helper = true;
        place_helper(c);
    }
    *ret = c;
    return 0;
}

static void wake_helper(Crew *c)
{
    pthread_mutex_lock(&c->lock);
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void crew_ready(Crew *c, double seconds)
{
    if (!c->has_helper)
        return;
    if (c->pinned && sched_getcpu() != c->avoid)
        place_helper(c);
    int64_t ns = (int64_t)(seconds * 1e9);
    atomic_store(&c->linger, ns);
    atomic_store(&c->spin_until, now_ns() + ns);
    wake_helper(c);
}

void crew_rest(Crew *c)
{
    atomic_store(&c->linger, 0);
    atomic_store(&c->spin_until, 0);
}

/* Cuts the iovs into pieces: a large range into PIECE-sized parts, small neighbours together. */
static int plan(Job *j, const RmemIov *iov, size_t n)
{
    size_t cuts = 0;
    for (size_t i = 0; i < n; i++)
        cuts += (iov[i].len + PIECE - 1) / PIECE;
    j->iov = calloc(cuts ? cuts : 1, sizeof(*j->iov));
    j->src = calloc(cuts ? cuts : 1, sizeof(*j->src));
    j->pieces = calloc(cuts ? cuts : 1, sizeof(*j->pieces));
    if (!j->iov || !j->src || !j->pieces)
        return -ENOMEM;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t off = 0; off < iov[i].len; off += PIECE) {
            size_t len = MIN(PIECE, iov[i].len - off);
            Piece *p = j->npieces ? &j->pieces[j->npieces - 1] : NULL;
            if (!p || bytes + len > PIECE || p->n == PIECE_IOVS) {
                p = &j->pieces[j->npieces++];
                *p = (Piece){j->niov, 0, 0};
                bytes = 0;
            }
            j->src[j->niov] = i;
            j->iov[j->niov++] = (RmemIov){iov[i].addr + off, (uint8_t *)iov[i].buf + off, len};
            p->n++;
            bytes += len;
        }
    return 0;
}

/* Waits until every piece of j has its result. The helper may still be on its last piece.
 * Waited for asleep, the reader would need a CPU again to be woken on, which on a busy machine
 * comes milliseconds later while the target stands still (measured: 0.25 to 4.5 ms): it spins
 * instead, for a while. */
static void wait_pieces(Crew *c, Job *j)
{
    double until = clock_mono() + SPIN_WAIT;
    while (atomic_load_explicit(&j->finished, memory_order_acquire) < j->npieces &&
           clock_mono() < until)
        cpu_relax();
    pthread_mutex_lock(&c->lock);
    while (atomic_load_explicit(&j->finished, memory_order_acquire) < j->npieces)
        pthread_cond_wait(&c->done, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

/* The result of a read whose pieces are all done: with status, the unmapped ranges one by one. */
static int results(Job *j, size_t n, int *status)
{
    if (status)
        for (size_t i = 0; i < n; i++)
            status[i] = 0;
    for (size_t i = 0; i < j->npieces; i++) {
        const Piece *p = &j->pieces[i];
        if (p->result >= 0)
            continue;
        if (p->result != -EFAULT || !status)
            return p->result;
        /* The kernel does not say which range of a short read was unmapped: one by one. */
        for (size_t k = p->first; k < p->first + p->n; k++) {
            int e = rmem_readv(j->r, &j->iov[k], 1);
            if (e == -EFAULT)
                status[j->src[k]] = -EFAULT;
            else if (e < 0)
                return e;
        }
    }
    return 0;
}

int crew_read(Crew *c, const RmemIov *iov, size_t n, int *status, double deadline)
{
    Job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    atomic_init(&j->refs, 1);
    atomic_init(&j->next, 0);
    atomic_init(&j->finished, 0);
    j->r = c->r;
    j->deadline = deadline;
    int k = plan(j, iov, n);
    if (k < 0) {
        job_unref(j);
        return k;
    }
    if (c->has_helper && j->npieces > 1) {
        j->ready = now_ns() < atomic_load(&c->spin_until);
        atomic_fetch_add(&j->refs, 1);              /* the helper's, once it takes the job */
        job_unref(atomic_exchange(&c->offered, j)); /* one it never took */
        wake_helper(c);
    }
    work(c, j);
    wait_pieces(c, j);
    k = results(j, n, status);
    job_unref(j);
    return k;
}

Crew *crew_free(Crew *c)
{
    if (!c)
        return NULL;
    if (c->has_helper) {
        atomic_store(&c->quit, true);
        wake_helper(c);
        pthread_join(c->helper, NULL);
    }
    job_unref(atomic_exchange(&c->offered, NULL));
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->done);
    free(c);
    return NULL;
}
