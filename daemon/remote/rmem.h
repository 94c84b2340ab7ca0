/* rmem: the one reader of foreign memory.
 *
 * Every byte pymemd reads out of a target goes through here. Callers get the bytes or a clean
 * error: -ESRCH (the target is gone), -EFAULT (an address is not mapped), -EPERM (not allowed,
 * usually CAP_SYS_PTRACE is missing). A second backend serves bytes from local buffers so unit
 * tests can lay out a fake interpreter in memory. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/maps.h"
#include "util/macro.h"

/* An address in the target's address space. It is an integer on purpose: it cannot be
 * dereferenced by accident. */
typedef uint64_t RAddr;

typedef struct RmemIov {
    RAddr addr;
    void *buf;
    size_t len;
} RmemIov;

typedef struct Rmem Rmem;

/* Opens a reader for a live process. Nothing is read yet. The caller owns *ret. */
int rmem_open(pid_t pid, Rmem **ret);

/* A fake reader with no regions; add them with rmem_fake_add(). The caller owns *ret. */
int rmem_fake_new(Rmem **ret);
/* Maps `len` bytes of `buf` at `addr`. The buffer is borrowed: it must outlive the reader, and
 * writes to it are seen by later reads (tests mutate a fake heap that way). */
int rmem_fake_add(Rmem *r, RAddr addr, void *buf, size_t len);

Rmem *rmem_free(Rmem *r);
DEFINE_CLEANUP_FUNC(Rmem *, rmem_free)

pid_t rmem_pid(const Rmem *r);

/* After `deadline` (monotonic seconds; 0: none, the default) every read fails with -ETIMEDOUT:
 * the sampler gives each target's sample a time budget this way, so that a target whose walk
 * would take seconds is abandoned for that sample instead of delaying every other one. */
void rmem_set_deadline(Rmem *r, double deadline);

/* Reads every iov in as few system calls as the kernel allows. All or nothing: 0 when every
 * byte was read, otherwise -errno (-ETIMEDOUT past the deadline) and the buffers hold undefined
 * bytes. */
int rmem_readv(Rmem *r, const RmemIov *iov, size_t n);
int rmem_read(Rmem *r, RAddr addr, void *buf, size_t len);
int rmem_read_u64(Rmem *r, RAddr addr, uint64_t *ret);
/* Reads a NUL-terminated string of at most size-1 bytes; a longer one is cut. Returns its length
 * or -errno. Reads in small chunks so that a string near the end of a mapping still works. */
int rmem_read_str(Rmem *r, RAddr addr, char *buf, size_t size);

/* The target's mappings, for bounding what its own numbers claim before anything is sized from
 * them: /proc/PID/maps of a live process; for the fake, one private read-write anonymous
 * mapping per region (page-aligned, neighbours merged). The caller frees *ret. */
int rmem_maps(Rmem *r, Maps **ret);

/* How many read system calls (or fake reads) this reader has made: benchmarks and tests use it
 * to check that the sampling path stays batched. */
uint64_t rmem_calls(const Rmem *r);
