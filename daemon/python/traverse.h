/* traverse: the references an object of a target holds, as its type's tp_traverse would visit
 * them, read out of a copy of the heap (see census_take_visit).
 *
 * Followed on every supported version (3.8-3.15), from the generated PyLayout.refs tables:
 * dict (combined and split tables, every key-table layout), collections.defaultdict and
 * collections.OrderedDict, list, tuple, set, frozenset, cell, function, method, module, heap
 * type objects, collections.deque, generators/coroutines/async generators (their frame's locals
 * and value stack), frame objects (3.11+: their frame's only once they own it), tracebacks, weakref
 * (weakly: wr_object, never as holding), and instances of classes made by a class statement
 * (__slots__, the instance dict, 3.11+ managed dicts and 3.13+ inline values, then what their
 * builtin base holds). Anything else is not followed: the caller may scan its body instead. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "python/census.h"
#include "python/layout.h"
#include "util/macro.h"

typedef enum TraverseKind {
    TK_UNKNOWN = 0, /* not followed */
    TK_NONE,        /* object: holds nothing */
    TK_INSTANCE,    /* an instance of a class-statement class */
    TK_DICT,
    TK_DEFAULTDICT,
    TK_ODICT,
    TK_LIST,
    TK_TUPLE,
    TK_SET,
    TK_CELL,
    TK_FUNCTION,
    TK_METHOD,
    TK_MODULE,
    TK_TYPE,
    TK_DEQUE,
    TK_GENERATOR,
    TK_FRAME,
    TK_TRACEBACK,
    TK_WEAKREF,
} TraverseKind;

#define TRAVERSE_NAME_MAX  128
#define TRAVERSE_MAX_SLOTS 256

/* What the traversal knows about one type object of the target. */
typedef struct TraverseType {
    uint64_t type;
    TraverseKind kind;      /* how its instances are followed */
    TraverseKind base_kind; /* TK_INSTANCE: the kind of the nearest base not made by a class */
    bool heap;
    bool base_heap;
    uint64_t flags;
    int64_t basicsize, itemsize, dictoffset, base_dictoffset;
    uint64_t cached_keys; /* ht_cached_keys (3.11, 3.12 managed values) */
    uint32_t nslots;
    int64_t
        slots[TRAVERSE_MAX_SLOTS]; /* offsets of T_OBJECT_EX members, every class of the chain */
    char name[TRAVERSE_NAME_MAX];  /* tp_name */
} TraverseType;

typedef struct Traverser Traverser;

/* A traverser reading through read(rctx, ...) (a census copy). The caller frees it. */
int traverser_new(const PyLayout *l, CensusReadFn read, void *rctx, Traverser **ret);
Traverser *traverser_free(Traverser *t);
DEFINE_CLEANUP_FUNC(Traverser *, traverser_free)

/* Named, when set, each run of memory longer than one read the traversal is about to read in
 * pieces (a list's items, a dict's entries, a set's table), so that the reader may read it ahead
 * in fewer system calls. A hint: what it does is not seen in what is visited. */
typedef void (*TraversePrefetch)(void *rctx, uint64_t addr, size_t len);
void traverser_set_prefetch(Traverser *t, TraversePrefetch prefetch);

/* The (cached) description of the type object at `type`. -EFAULT when it cannot be read;
 * -ENODATA passed on from the copy (see census_take_visit). */
int traverser_type(Traverser *t, uint64_t type, const TraverseType **ret);

/* Called for each reference: ref is the object referred to; key the dict key it is the value of
 * (0 otherwise); weak for a weak reference (not holding). A negative return stops the traversal
 * and is returned. */
typedef int (*TraverseVisit)(void *ud, uint64_t ref, uint64_t key, bool weak);

/* Visits the references of the object at obj (its PyObject address) whose type is `type`.
 * Returns 0, -ENOTSUP when the type is not followed (nothing was visited), -EFAULT/-EIO when its
 * memory does not hold together, -ENODATA from the copy, or what visit returned. */
int traverser_visit(Traverser *t, uint64_t obj, uint64_t type, TraverseVisit visit, void *ud);

/* The compact ASCII str at addr into buf (at most size - 1 characters, sanitised). -EINVAL when
 * it is not a compact ASCII str. */
int traverser_str(Traverser *t, uint64_t addr, char *buf, size_t size);
