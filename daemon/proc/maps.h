/* maps: /proc/PID/maps, parsed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/macro.h"

typedef struct MapsEntry {
    uint64_t start, end; /* [start, end) */
    uint64_t offset;     /* file offset of start */
    uint32_t dev_major, dev_minor;
    uint64_t inode;
    bool r, w, x, p; /* p: private (copy-on-write), otherwise shared */
    char *path;      /* NULL for anonymous; "(deleted)" suffix stripped; may hold spaces */
    bool deleted;    /* the path carried " (deleted)" */
} MapsEntry;

typedef struct Maps {
    MapsEntry *v;
    size_t n;
} Maps;

/* Parses the text of a maps file (the whole file, NUL-terminated). Malformed lines are -EINVAL.
 * The caller owns *ret. */
int maps_parse(const char *text, Maps **ret);
/* Reads and parses /proc/PID/maps. -ESRCH when the process is gone, -EACCES/-EPERM when not
 * readable. */
int maps_read(pid_t pid, Maps **ret);
Maps *maps_free(Maps *m);
DEFINE_CLEANUP_FUNC(Maps *, maps_free)

/* The entry containing addr, or NULL. Entries are sorted by address, so this is a binary search. */
const MapsEntry *maps_find(const Maps *m, uint64_t addr);
/* Whether [addr, addr+len) lies in mapped, readable memory (possibly over adjacent entries). */
bool maps_readable(const Maps *m, uint64_t addr, uint64_t len);
/* Whether e is anonymous memory: no file behind it (inode 0) and either no name, the heap, or a
 * name given with PR_SET_VMA_ANON_NAME ("[anon:...]"). Where pymalloc puts its arenas. */
bool maps_is_anonymous(const MapsEntry *e);
/* Whether [addr, addr+len) lies in readable anonymous memory (possibly over adjacent entries). */
bool maps_anon_readable(const Maps *m, uint64_t addr, uint64_t len);
/* Bytes of readable anonymous memory mapped in all: no count of heap objects can need more. */
uint64_t maps_anon_total(const Maps *m);
