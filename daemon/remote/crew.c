#include "remote/crew.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/clock.h"

#define PIECE      (1u << 20) /* bytes per piece of work */
#define PIECE_IOVS 64         /* iovs per piece, for many small ranges */
#define SPIN_WAIT  0.002      /* seconds the reader spins for the helper's last piece */

enum { CREW_WAIT, CREW_GO, CREW_QUIT };

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

struct Crew {
    Rmem *r;
    RmemIov *iov; /* the caller's iovs, cut to at most PIECE bytes each */
    size_t *src;  /* for each, the caller's iov it is part of */
    size_t niov;
    Piece *pieces;
    size_t npieces;
    double deadline; /* monotonic; 0: none */
    atomic_size_t next;
    atomic_size_t finished; /* pieces whose result is in */
    atomic_int state;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t helper;
    bool has_helper;
};

static void work(Crew *c)
{
    size_t i;
    while ((i = atomic_fetch_add(&c->next, 1)) < c->npieces) {
        Piece *p = &c->pieces[i];
        if (c->deadline && clock_mono() > c->deadline)
            p->result = -ETIMEDOUT;
        else
            p->result = rmem_readv(c->r, c->iov + p->first, p->n);
        atomic_fetch_add_explicit(&c->finished, 1, memory_order_release);
    }
}

static void *helper_main(void *arg)
{
    Crew *c = arg;
    pthread_mutex_lock(&c->lock);
    while (atomic_load(&c->state) == CREW_WAIT)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    if (atomic_load(&c->state) == CREW_GO)
        work(c);
    return NULL;
}

int crew_new(Rmem *r, bool helper, Crew **ret)
{
    Crew *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->r = r;
    atomic_init(&c->next, 0);
    atomic_init(&c->finished, 0);
    atomic_init(&c->state, CREW_WAIT);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->has_helper = helper && pthread_create(&c->helper, NULL, helper_main, c) == 0;
    *ret = c;
    return 0;
}

static void set_state(Crew *c, int state)
{
    pthread_mutex_lock(&c->lock);
    atomic_store(&c->state, state);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void join(Crew *c)
{
    if (c->has_helper) {
        pthread_join(c->helper, NULL);
        c->has_helper = false;
    }
}

/* Cuts the iovs into pieces: a large range into PIECE-sized parts, small neighbours together. */
static int plan(Crew *c, const RmemIov *iov, size_t n)
{
    size_t cuts = 0;
    for (size_t i = 0; i < n; i++)
        cuts += (iov[i].len + PIECE - 1) / PIECE;
    c->iov = calloc(cuts ? cuts : 1, sizeof(*c->iov));
    c->src = calloc(cuts ? cuts : 1, sizeof(*c->src));
    c->pieces = calloc(cuts ? cuts : 1, sizeof(*c->pieces));
    if (!c->iov || !c->src || !c->pieces)
        return -ENOMEM;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t off = 0; off < iov[i].len; off += PIECE) {
            size_t len = MIN(PIECE, iov[i].len - off);
            Piece *p = c->npieces ? &c->pieces[c->npieces - 1] : NULL;
            if (!p || bytes + len > PIECE || p->n == PIECE_IOVS) {
                p = &c->pieces[c->npieces++];
                *p = (Piece){c->niov, 0, 0};
                bytes = 0;
            }
            c->src[c->niov] = i;
            c->iov[c->niov++] = (RmemIov){iov[i].addr + off, (uint8_t *)iov[i].buf + off, len};
            p->n++;
            bytes += len;
        }
    return 0;
}

int crew_read(Crew *c, const RmemIov *iov, size_t n, int *status, double deadline)
{
    c->deadline = deadline;
    int k = plan(c, iov, n);
    set_state(c, k < 0 ? CREW_QUIT : CREW_GO);
    if (k < 0) {
        join(c);
        return k;
    }
    work(c);
    /* The helper may still be on its last piece. Waited for asleep, the reader would need a
     * CPU again to be woken on, which on a busy machine comes milliseconds later while the
     * target stands still (measured: 0.25 to 4.5 ms): it spins instead, for a while. The
     * helper exits by itself; crew_free joins it. */
    double until = clock_mono() + SPIN_WAIT;
    while (atomic_load_explicit(&c->finished, memory_order_acquire) < c->npieces &&
           clock_mono() < until)
        cpu_relax();
    if (atomic_load_explicit(&c->finished, memory_order_acquire) < c->npieces)
        join(c);
    if (status)
        for (size_t i = 0; i < n; i++)
            status[i] = 0;
    for (size_t i = 0; i < c->npieces; i++) {
        const Piece *p = &c->pieces[i];
        if (p->result >= 0)
            continue;
        if (p->result != -EFAULT || !status)
            return p->result;
        /* The kernel does not say which range of a short read was unmapped: one by one. */
        for (size_t j = p->first; j < p->first + p->n; j++) {
            int e = rmem_readv(c->r, &c->iov[j], 1);
            if (e == -EFAULT)
                status[c->src[j]] = -EFAULT;
            else if (e < 0)
                return e;
        }
    }
    return 0;
}

Crew *crew_free(Crew *c)
{
    if (!c)
        return NULL;
    if (c->has_helper) {
        set_state(c, CREW_QUIT);
        join(c);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c->iov);
    free(c->src);
    free(c->pieces);
    free(c);
    return NULL;
}
