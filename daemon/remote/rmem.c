#include "remote/rmem.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "util/clock.h"

typedef struct FakeRegion {
    RAddr addr;
    uint8_t *buf;
    size_t len;
} FakeRegion;

struct Rmem {
    pid_t pid;
    atomic_uint_fast64_t calls; /* a crew reads from two threads */
    /* Fake backend: regions, or NULL for a live process. */
    FakeRegion *regions;
    size_t nregions;
    bool fake;
    double deadline; /* monotonic; reads after it fail with -ETIMEDOUT. 0: none */
};

/* process_vm_readv takes at most IOV_MAX iovecs per call (1024 on Linux). */
#define RMEM_IOV_MAX 1024

int rmem_open(pid_t pid, Rmem **ret)
{
    if (pid <= 0)
        return -EINVAL;
    Rmem *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->pid = pid;
    *ret = r;
    return 0;
}

int rmem_fake_new(Rmem **ret)
{
    Rmem *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->fake = true;
    *ret = r;
    return 0;
}

int rmem_fake_add(Rmem *r, RAddr addr, void *buf, size_t len)
{
    if (!r->fake)
        return -EINVAL;
    FakeRegion *n = realloc(r->regions, (r->nregions + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    r->regions = n;
    r->regions[r->nregions++] = (FakeRegion){addr, buf, len};
    return 0;
}

Rmem *rmem_free(Rmem *r)
{
    if (!r)
        return NULL;
    free(r->regions);
    free(r);
    return NULL;
}

pid_t rmem_pid(const Rmem *r)
{
    return r->pid;
}

uint64_t rmem_calls(const Rmem *r)
{
    return atomic_load_explicit(&r->calls, memory_order_relaxed);
}

static int fake_read_one(Rmem *r, const RmemIov *iov)
{
    for (size_t i = 0; i < r->nregions; i++) {
        const FakeRegion *g = &r->regions[i];
        if (iov->addr >= g->addr && iov->addr - g->addr <= g->len &&
            iov->len <= g->len - (iov->addr - g->addr)) {
            memcpy(iov->buf, g->buf + (iov->addr - g->addr), iov->len);
            return 0;
        }
    }
    return -EFAULT;
}

/* Tells a vanished target (-ESRCH) from a bad address (-EFAULT) after a failed or short read:
 * process_vm_readv reports a dead process as ESRCH only when it is gone before the call. */
static int classify_failure(pid_t pid, int err)
{
    if (err == EFAULT || err == 0) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return -ESRCH;
        return -EFAULT;
    }
    return -err;
}

static int live_readv(Rmem *r, const RmemIov *iov, size_t n)
{
    struct iovec local[RMEM_IOV_MAX], remote[RMEM_IOV_MAX];
    size_t done = 0;

    while (done < n) {
        size_t batch = MIN(n - done, (size_t)RMEM_IOV_MAX);
        size_t want = 0;
        for (size_t i = 0; i < batch; i++) {
            const RmemIov *v = &iov[done + i];
            local[i] = (struct iovec){v->buf, v->len};
            remote[i] = (struct iovec){(void *)(uintptr_t)v->addr, v->len};
            want += v->len;
        }
        atomic_fetch_add_explicit(&r->calls, 1, memory_order_relaxed);
        ssize_t got = process_vm_readv(r->pid, local, batch, remote, batch, 0);
        if (got < 0)
            return classify_failure(r->pid, errno);
        /* A short count means one remote range stopped at an unmapped page. The kernel does not
         * say which, and the rest of the batch was not read: all or nothing. */
        if ((size_t)got != want)
            return classify_failure(r->pid, 0);
        done += batch;
    }
    return 0;
}

void rmem_set_deadline(Rmem *r, double deadline)
{
    r->deadline = deadline;
}

static int cmp_region(const void *a, const void *b)
{
    const FakeRegion *x = a, *y = b;
    return (x->addr > y->addr) - (x->addr < y->addr);
}

int rmem_maps(Rmem *r, Maps **ret)
{
    if (!r->fake)
        return maps_read(r->pid, ret);
    FakeRegion *v = calloc(r->nregions ? r->nregions : 1, sizeof(*v));
    Maps *m = calloc(1, sizeof(*m));
    if (m)
        m->v = calloc(r->nregions ? r->nregions : 1, sizeof(*m->v));
    if (!v || !m || !m->v) {
        free(v);
        maps_free(m);
        return -ENOMEM;
    }
    if (r->nregions)
        memcpy(v, r->regions, r->nregions * sizeof(*v));
    qsort(v, r->nregions, sizeof(*v), cmp_region);
    for (size_t i = 0; i < r->nregions; i++) {
        uint64_t start = v[i].addr & ~0xfffull, end = (v[i].addr + v[i].len + 0xfff) & ~0xfffull;
        MapsEntry *last = m->n ? &m->v[m->n - 1] : NULL;
        if (last && start <= last->end)
            last->end = MAX(last->end, end);
        else
            m->v[m->n++] = (MapsEntry){.start = start, .end = end, .r = true, .w = true, .p = true};
    }
    free(v);
    *ret = m;
    return 0;
}

int rmem_readv(Rmem *r, const RmemIov *iov, size_t n)
{
    if (n == 0)
        return 0;
    if (r->deadline > 0 && clock_mono() > r->deadline)
        return -ETIMEDOUT;
    if (!r->fake)
        return live_readv(r, iov, n);
    atomic_fetch_add_explicit(&r->calls, 1, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        int k = fake_read_one(r, &iov[i]);
        if (k < 0)
            return k;
    }
    return 0;
}

int rmem_read(Rmem *r, RAddr addr, void *buf, size_t len)
{
    RmemIov v = {addr, buf, len};
    return rmem_readv(r, &v, 1);
}

int rmem_read_u64(Rmem *r, RAddr addr, uint64_t *ret)
{
    uint64_t v;
    int k = rmem_read(r, addr, &v, sizeof(v));
    if (k < 0)
        return k;
    *ret = v;
    return 0;
}

int rmem_read_str(Rmem *r, RAddr addr, char *buf, size_t size)
{
    if (size == 0)
        return -EINVAL;
    /* Chunks never cross a 64-byte boundary, so a string ending just before an unmapped page is
     * read without touching that page. */
    size_t off = 0;
    while (off < size - 1) {
        size_t chunk = 64 - ((addr + off) % 64);
        chunk = MIN(chunk, size - 1 - off);
        int k = rmem_read(r, addr + off, buf + off, chunk);
        if (k < 0)
            return k;
        void *nul = memchr(buf + off, 0, chunk);
        if (nul)
            return (int)((char *)nul - buf);
        off += chunk;
    }
    buf[size - 1] = 0;
    return (int)(size - 1);
}
