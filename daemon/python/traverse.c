#include "python/traverse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

/* Bounds: a hostile heap gets an error, never a runaway walk. */
#define MAX_ITEMS    (1ll << 28) /* items of one container */
#define MAX_CHAIN    64          /* classes between an instance's type and its builtin base */
#define CHUNK        512         /* pointers read at a time */
#define TYPE_CAP_MAX (1u << 20)

/* collections.deque (Modules/_collectionsmodule.c, unchanged 3.8-3.15): PyVarObject head, then
 * block *leftblock, *rightblock; Py_ssize_t leftindex, rightindex. A block is
 * {block *leftlink; PyObject *data[BLOCKLEN]; block *rightlink} with BLOCKLEN 64. The offsets
 * are past the PyVarObject head, whose size a free-threaded build changes (40, not 24). */
#define DEQUE_LEFTBLOCK  0
#define DEQUE_LEFTINDEX  16
#define DEQUE_BLOCKLEN   64
#define DEQUE_BLOCK_DATA 8
#define DEQUE_BLOCK_NEXT (8 + 8 * DEQUE_BLOCKLEN)
/* collections.OrderedDict (Objects/odictobject.c, 3.8-3.15): after the PyDictObject come
 * _odictnode *od_first, *od_last, **od_fast_nodes; Py_ssize_t od_fast_nodes_size; void
 * *od_resize_sentinel; size_t od_state; PyObject *od_inst_dict. A node is {key, hash, next,
 * prev}. defaultdict (Modules/_collectionsmodule.c): the PyDictObject, then default_factory. */
#define ODICT_FIRST     0
#define ODICT_INST_DICT (6 * 8)
#define ODNODE_NEXT     16

struct Traverser {
    const PyLayout *l;
    CensusReadFn read;
    TraversePrefetch prefetch;
    void *rctx;
    TraverseType **types; /* open addressing on the type address */
    size_t ntypes, cap;
};

int traverser_new(const PyLayout *l, CensusReadFn read, void *rctx, Traverser **ret)
{
    Traverser *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->l = l;
    t->read = read;
    t->rctx = rctx;
    t->cap = 256;
    t->types = calloc(t->cap, sizeof(*t->types));
    if (!t->types) {
        free(t);
        return -ENOMEM;
    }
    *ret = t;
    return 0;
}

void traverser_set_prefetch(Traverser *t, TraversePrefetch prefetch)
{
    t->prefetch = prefetch;
}

/* A run of len bytes at addr is about to be read in pieces of at most `piece`. */
static void prefetch(const Traverser *t, uint64_t addr, uint64_t len, size_t piece)
{
    if (t->prefetch && len > piece)
        t->prefetch(t->rctx, addr, (size_t)len);
}

Traverser *traverser_free(Traverser *t)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->cap; i++)
        free(t->types[i]);
    free(t->types);
    free(t);
    return NULL;
}

static int rd(Traverser *t, uint64_t addr, void *buf, size_t len)
{
    if (addr < 4096)
        return -EFAULT;
    return t->read(t->rctx, addr, buf, len);
}

static int rd64(Traverser *t, uint64_t addr, uint64_t *ret)
{
    return rd(t, addr, ret, 8);
}

static TraverseType **type_slot(Traverser *t, uint64_t type)
{
    size_t i = (size_t)((type >> 4) * 0x9e3779b97f4a7c15ull) & (t->cap - 1);
    while (t->types[i] && t->types[i]->type != type)
        i = (i + 1) & (t->cap - 1);
    return &t->types[i];
}

static int type_grow(Traverser *t)
{
    size_t ocap = t->cap, ncap = ocap * 2;
    TraverseType **old = t->types;
    if (ncap > TYPE_CAP_MAX)
        return -EIO;
    t->types = calloc(ncap, sizeof(*t->types));
    if (!t->types) {
        t->types = old;
        return -ENOMEM;
    }
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i])
            *type_slot(t, old[i]->type) = old[i];
    free(old);
    return 0;
}

/* The raw fields of a type object. */
static int read_type(Traverser *t, uint64_t type, TraverseType *ti, uint64_t *ret_base,
                     int64_t *ret_nmembers, uint64_t *ret_meta)
{
    const PyLayout *l = t->l;
    uint64_t name_ptr, flags, base, meta;
    int64_t basicsize, itemsize, dictoffset, nmembers;
    int k;
    if ((k = rd64(t, type + l->object.ob_type, &meta)) < 0 ||
        (k = rd(t, type + l->object.ob_size, &nmembers, 8)) < 0 ||
        (k = rd64(t, type + l->object.tp_name, &name_ptr)) < 0 ||
        (k = rd64(t, type + l->object.tp_flags, &flags)) < 0 ||
        (k = rd(t, type + l->object.tp_basicsize, &basicsize, 8)) < 0 ||
        (k = rd(t, type + l->object.tp_itemsize, &itemsize, 8)) < 0 ||
        (k = rd64(t, type + l->refs.tp_base, &base)) < 0 ||
        (k = rd(t, type + l->refs.tp_dictoffset, &dictoffset, 8)) < 0)
        return k;
    char raw[TRAVERSE_NAME_MAX];
    size_t n = 0;
    while (n < sizeof(raw) - 1) {
        char c;
        if ((k = rd(t, name_ptr + n, &c, 1)) < 0)
            return k;
        if (!c)
            break;
        raw[n++] = c;
    }
    raw[n] = 0;
    utf8_sanitize(ti->name, sizeof(ti->name), raw);
    ti->type = type;
    ti->flags = flags;
    ti->heap = (flags & l->object.flag_heaptype) != 0;
    ti->basicsize = basicsize;
    ti->itemsize = itemsize;
    ti->dictoffset = dictoffset;
    if (basicsize < 0 || basicsize > (1 << 20) || itemsize < 0 || itemsize > 4096)
        return -EIO;
    *ret_base = base;
    *ret_nmembers = nmembers;
    *ret_meta = meta;
    return 0;
}

/* A class statement makes a heap type whose tp_name is its bare __name__; types that C code
 * makes from a PyType_Spec are heap types too, but name their module ("collections.deque" from
 * 3.13). A class whose name holds a dot is not followed: its instances go to unfollowed. */
static bool is_class(const TraverseType *ti)
{
    return ti->heap && !strchr(ti->name, '.');
}

/* Builtin types are known by their tp_name and, where the table has it, tp_basicsize. */
static TraverseKind kind_of(const PyLayout *l, const TraverseType *ti)
{
    const struct {
        const char *name;
        TraverseKind kind;
        uint32_t basicsize; /* 0: not checked */
    } known[] = {
        {"object", TK_NONE, l->object.ob_size}, /* sizeof(PyObject): 32 free-threaded */
        {"dict", TK_DICT, l->refs.dict_basicsize},
        {"collections.defaultdict", TK_DEFAULTDICT, l->refs.dict_basicsize + 8},
        {"collections.OrderedDict", TK_ODICT, 0},
        {"list", TK_LIST, l->refs.list_basicsize},
        {"tuple", TK_TUPLE, l->refs.tuple_basicsize},
        {"set", TK_SET, l->refs.set_basicsize},
        {"frozenset", TK_SET, l->refs.set_basicsize},
        {"cell", TK_CELL, l->refs.cell_basicsize},
        {"function", TK_FUNCTION, l->refs.func_basicsize},
        {"method", TK_METHOD, l->refs.method_basicsize},
        {"module", TK_MODULE, l->refs.module_basicsize},
        {"type", TK_TYPE, 0},
        {"collections.deque", TK_DEQUE, 0},
        {"generator", TK_GENERATOR, l->sizes.gen_basicsize},
        {"coroutine", TK_GENERATOR, l->sizes.gen_basicsize},
        {"async_generator", TK_GENERATOR, 0},
        {"frame", TK_FRAME, l->sizes.frame_basicsize},
        {"traceback", TK_TRACEBACK, l->refs.traceback_basicsize},
        {"weakref", TK_WEAKREF, l->refs.weakref_basicsize},
        {"weakref.ReferenceType", TK_WEAKREF, l->refs.weakref_basicsize},
    };
    if (is_class(ti))
        return TK_INSTANCE;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(ti->name, known[i].name) == 0) {
            if (known[i].basicsize && ti->basicsize != (int64_t)known[i].basicsize)
                return TK_UNKNOWN;
            /* Generators: only 3.11+ frames live inside them; frames: up to 3.10 only. */
            if (known[i].kind == TK_GENERATOR && l->refs.gen_frame == PYL_NONE &&
                l->refs.gen_frame_state == PYL_NONE)
                return TK_UNKNOWN;
            if (known[i].kind == TK_FRAME && l->refs.frame_localsplus == PYL_NONE &&
                l->refs.iframe_owner == PYL_NONE)
                return TK_UNKNOWN;
            return known[i].kind;
        }
    return TK_UNKNOWN;
}

int traverser_type(Traverser *t, uint64_t type, const TraverseType **ret)
{
    TraverseType **s = type_slot(t, type);
    if (*s) {
        *ret = *s;
        return 0;
    }
    const PyLayout *l = t->l;
    TraverseType *ti = calloc(1, sizeof(*ti));
    if (!ti)
        return -ENOMEM;
    uint64_t base, meta;
    int64_t nmembers;
    int k = read_type(t, type, ti, &base, &nmembers, &meta);
    if (k < 0) {
        free(ti);
        return k;
    }
    ti->kind = kind_of(l, ti);
    if (ti->kind == TK_INSTANCE) {
        /* subtype_traverse: the __slots__ of every class up to the nearest base that is not
         * one (their PyMemberDefs follow the type object, at the metatype's basicsize), then
         * that base's own traverse. */
        TraverseType cur = *ti;
        uint64_t cur_addr = type, cur_base = base, cur_meta = meta;
        int64_t cur_n = nmembers;
        int depth = 0;
        ti->cached_keys = 0;
        if (l->refs.flag_managed_dict &&
            (k = rd64(t, type + l->refs.ht_cached_keys, &ti->cached_keys)) < 0)
            goto fail;
        while (is_class(&cur)) {
            if (++depth > MAX_CHAIN || !cur_base) {
                k = -EIO;
                goto fail;
            }
            if (cur_n > 0) {
                int64_t meta_basicsize;
                if (cur_n > TRAVERSE_MAX_SLOTS ||
                    (k = rd(t, cur_meta + l->object.tp_basicsize, &meta_basicsize, 8)) < 0 ||
                    meta_basicsize <= 0 || meta_basicsize > (1 << 16)) {
                    k = k < 0 ? k : -EIO;
                    goto fail;
                }
                for (int64_t i = 0; i < cur_n; i++) {
                    uint64_t m =
                        cur_addr + (uint64_t)meta_basicsize + (uint64_t)i * l->refs.member_size;
                    int32_t mtype;
                    int64_t off;
                    if ((k = rd(t, m + l->refs.member_type, &mtype, 4)) < 0 ||
                        (k = rd(t, m + l->refs.member_offset, &off, 8)) < 0)
                        goto fail;
                    if ((uint32_t)mtype != l->refs.t_object_ex)
                        continue;
                    if (ti->nslots >= TRAVERSE_MAX_SLOTS || off < 0 || off > (1 << 20)) {
                        k = -EIO;
                        goto fail;
                    }
                    ti->slots[ti->nslots++] = off;
                }
            }
            cur_addr = cur_base;
            memset(&cur, 0, sizeof(cur));
            if ((k = read_type(t, cur_addr, &cur, &cur_base, &cur_n, &cur_meta)) < 0)
                goto fail;
        }
        ti->base_kind = kind_of(l, &cur);
        ti->base_heap = cur.heap;
        ti->base_dictoffset = cur.dictoffset;
    }
    if (t->ntypes * 2 >= t->cap) {
        if ((k = type_grow(t)) < 0)
            goto fail;
        s = type_slot(t, type);
    }
    *s = ti;
    t->ntypes++;
    *ret = ti;
    return 0;
fail:
    free(ti);
    return k;
}

/* ---- the followed types ---------------------------------------------------------------- */

typedef struct Ctx {
    Traverser *t;
    TraverseVisit visit;
    void *ud;
} Ctx;

static int visit_ptr(Ctx *c, uint64_t ref, uint64_t key)
{
    return ref ? c->visit(c->ud, ref, key, false) : 0;
}

static int visit_field(Ctx *c, uint64_t addr)
{
    uint64_t p;
    int k = rd64(c->t, addr, &p);
    return k < 0 ? k : visit_ptr(c, p, 0);
}

/* n consecutive PyObject * from addr; with tag_bits, stack references (3.14+): tagged ints
 * skipped, the tag bits of the others cleared. */
static int visit_array(Ctx *c, uint64_t addr, int64_t n, uint64_t tag_bits)
{
    uint64_t buf[CHUNK], int_tag = tag_bits ? c->t->l->refs.stack_int_tag : 0;
    if (n < 0 || n > MAX_ITEMS)
        return -EIO;
    prefetch(c->t, addr, (uint64_t)n * 8, sizeof(buf));
    for (int64_t i = 0; i < n; i += CHUNK) {
        size_t m = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        int k = rd(c->t, addr + (uint64_t)i * 8, buf, m * 8);
        if (k < 0)
            return k;
        for (size_t j = 0; j < m; j++) {
            if (int_tag && (buf[j] & int_tag) == int_tag)
                continue;
            if ((k = visit_ptr(c, buf[j] & ~tag_bits, 0)) < 0)
                return k;
        }
    }
    return 0;
}

static int keys_count(Ctx *c, uint64_t keys, int64_t *ret)
{
    const PyLayout *l = c->t->l;
    int64_t n;
    int k = rd(c->t, keys + l->refs.keys_nentries, &n, 8);
    if (k < 0)
        return k;
    if (n < 0 || n > MAX_ITEMS)
        return -EIO;
    *ret = n;
    return 0;
}

/* dict_traverse: split tables visit their values; combined ones each live entry's value, and
 * its key where keys are not all str (a str is never an instance of a followed type). */
static int visit_dict(Ctx *c, uint64_t obj)
{
    const PyLayout *l = c->t->l;
    uint64_t keys, values;
    int64_t n;
    int k;
    if ((k = rd64(c->t, obj + l->refs.dict_keys, &keys)) < 0 ||
        (k = rd64(c->t, obj + l->refs.dict_values, &values)) < 0 ||
        (k = keys_count(c, keys, &n)) < 0)
        return k;
    if (values && l->refs.values_embedded != PYL_NONE && !l->refs.managed_dict_first) {
        uint8_t embedded; /* 3.13.0: the owning object visits inline values, not its dict */
        if ((k = rd(c->t, values + l->refs.values_embedded, &embedded, 1)) < 0)
            return k;
        if (embedded)
            return 0;
    }
    if (values)
        return visit_array(c, values + l->refs.values_values, n, 0);
    uint64_t entries, esize, koff, voff;
    if (l->refs.keys_log2) {
        uint8_t log2_size, log2_index, kind;
        if ((k = rd(c->t, keys + l->refs.keys_size, &log2_size, 1)) < 0 ||
            (k = rd(c->t, keys + l->refs.keys_log2_index, &log2_index, 1)) < 0 ||
            (k = rd(c->t, keys + l->refs.keys_kind, &kind, 1)) < 0)
            return k;
        if (log2_size > 40 || log2_index > 43 || n > (1ll << log2_size))
            return -EIO;
        entries = keys + l->refs.keys_indices + (1ull << log2_index);
        bool general = kind == 0; /* DICT_KEYS_GENERAL: {hash, key, value}; else {key, value} */
        esize = general ? 24 : 16;
        koff = general ? 8 : 0;
        voff = general ? 16 : 8;
    } else {
        int64_t size;
        if ((k = rd(c->t, keys + l->refs.keys_size, &size, 8)) < 0)
            return k;
        if (size <= 0 || size > (1ll << 40) || (size & (size - 1)) || n > size)
            return -EIO;
        /* DK_IXSIZE of Objects/dict-common.h: the narrowest integer holding dk_size. */
        uint64_t ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffll ? 4 : 8;
        entries = keys + l->refs.keys_indices + (uint64_t)size * ix;
        esize = 24, koff = 8, voff = 16;
    }
    uint64_t buf[CHUNK / 2 * 3];
    size_t per = sizeof(buf) / esize;
    prefetch(c->t, entries, (uint64_t)n * esize, sizeof(buf));
    for (int64_t i = 0; i < n; i += (int64_t)per) {
        size_t m = (size_t)(n - i < (int64_t)per ? n - i : (int64_t)per);
        if ((k = rd(c->t, entries + (uint64_t)i * esize, buf, m * esize)) < 0)
            return k;
        for (size_t j = 0; j < m; j++) {
            const uint8_t *e = (const uint8_t *)buf + j * esize;
            uint64_t key, value;
            memcpy(&key, e + koff, 8);
            memcpy(&value, e + voff, 8);
            if (!value)
                continue;
            if ((k = visit_ptr(c, value, key)) < 0 || (k = visit_ptr(c, key, 0)) < 0)
                return k;
        }
    }
    return 0;
}

static int visit_set(Ctx *c, uint64_t obj)
{
    const PyLayout *l = c->t->l;
    uint64_t table;
    int64_t mask;
    int k;
    if ((k = rd64(c->t, obj + l->refs.set_table, &table)) < 0 ||
        (k = rd(c->t, obj + l->refs.set_mask, &mask, 8)) < 0)
        return k;
    if (mask < 0 || mask >= MAX_ITEMS || ((mask + 1) & mask))
        return -EIO;
    uint64_t buf[CHUNK];
    size_t per = CHUNK / (l->refs.setentry_size / 8);
    prefetch(c->t, table, (uint64_t)(mask + 1) * l->refs.setentry_size, sizeof(buf));
    for (int64_t i = 0; i <= mask; i += (int64_t)per) {
        size_t m = (size_t)(mask + 1 - i < (int64_t)per ? mask + 1 - i : (int64_t)per);
        if ((k = rd(c->t, table + (uint64_t)i * l->refs.setentry_size, buf,
                    m * l->refs.setentry_size)) < 0)
            return k;
        /* set_next skips the dummy of deleted slots too; it is a static object, no instance. */
        for (size_t j = 0; j < m; j++)
            if ((k = visit_ptr(c, buf[j * (l->refs.setentry_size / 8)], 0)) < 0)
                return k;
    }
    return 0;
}

static int visit_deque(Ctx *c, uint64_t obj)
{
    const PyLayout *l = c->t->l;
    int64_t size, index;
    uint64_t block, head = l->object.ob_size + 8;
    int k;
    if ((k = rd(c->t, obj + l->object.ob_size, &size, 8)) < 0 ||
        (k = rd64(c->t, obj + head + DEQUE_LEFTBLOCK, &block)) < 0 ||
        (k = rd(c->t, obj + head + DEQUE_LEFTINDEX, &index, 8)) < 0)
        return k;
    if (size < 0 || size > MAX_ITEMS || index < 0 || index >= DEQUE_BLOCKLEN)
        return -EIO;
    while (size > 0) {
        int64_t m = DEQUE_BLOCKLEN - index < size ? DEQUE_BLOCKLEN - index : size;
        if ((k = visit_array(c, block + DEQUE_BLOCK_DATA + (uint64_t)index * 8, m, 0)) < 0)
            return k;
        size -= m;
        index = 0;
        if (size > 0 && (k = rd64(c->t, block + DEQUE_BLOCK_NEXT, &block)) < 0)
            return k;
    }
    return 0;
}

static int visit_odict(Ctx *c, uint64_t obj)
{
    const PyLayout *l = c->t->l;
    uint64_t d = obj + l->refs.dict_basicsize, node;
    int k;
    if ((k = visit_field(c, d + ODICT_INST_DICT)) < 0 ||
        (k = rd64(c->t, d + ODICT_FIRST, &node)) < 0)
        return k;
    for (int64_t i = 0; node; i++) {
        if (i > MAX_ITEMS)
            return -EIO;
        if ((k = visit_field(c, node)) < 0 || (k = rd64(c->t, node + ODNODE_NEXT, &node)) < 0)
            return k;
    }
    return visit_dict(c, obj);
}

static int visit_fields(Ctx *c, uint64_t obj, const uint32_t *f, size_t n)
{
    for (size_t i = 0; i < n && f[i] != PYL_NONE; i++) {
        int k = visit_field(c, obj + f[i]);
        if (k < 0)
            return k;
    }
    return 0;
}

/* A 3.11+ _PyInterpreterFrame, as _PyFrame_Traverse: its frame object, f_locals, function and
 * code, then its locals and value stack. */
static int visit_iframe(Ctx *c, uint64_t iframe)
{
    const PyLayout *l = c->t->l;
    uint64_t tag = l->sizes.code_tag_bits, locals = iframe + l->refs.iframe_localsplus;
    int64_t n;
    int k;
    for (size_t i = 0; i < 4 && l->refs.iframe_fields[i] != PYL_NONE; i++) {
        uint64_t p;
        if ((k = rd64(c->t, iframe + l->refs.iframe_fields[i], &p)) < 0)
            return k;
        if (l->refs.stack_int_tag && (p & l->refs.stack_int_tag) == l->refs.stack_int_tag)
            continue;
        if ((k = visit_ptr(c, p & ~tag, 0)) < 0)
            return k;
    }
    if (l->refs.iframe_stacktop != PYL_NONE) {
        int32_t top;
        if ((k = rd(c->t, iframe + l->refs.iframe_stacktop, &top, 4)) < 0)
            return k;
        n = top;
    } else {
        uint64_t sp;
        if ((k = rd64(c->t, iframe + l->refs.iframe_stackpointer, &sp)) < 0)
            return k;
        if (sp < locals || (sp - locals) % 8)
            return -EIO;
        n = (int64_t)((sp - locals) / 8);
    }
    return visit_array(c, locals, n, tag);
}

/* Generators, coroutines and async generators: up to 3.10 they hold a frame object; from 3.11
 * the frame is inside them, visited while it is not cleared. */
static int visit_generator(Ctx *c, uint64_t obj)
{
    const PyLayout *l = c->t->l;
    int k;
    if (l->refs.gen_frame != PYL_NONE)
        return visit_field(c, obj + l->refs.gen_frame);
    int8_t state;
    if ((k = rd(c->t, obj + l->refs.gen_frame_state, &state, 1)) < 0)
        return k;
    if (state >= l->refs.frame_cleared)
        return 0;
    return visit_iframe(c, obj + l->sizes.gen_iframe);
}

/* Frame objects from 3.11: f_back, f_trace (3.13+: the extra locals, 3.14+: the overwritten fast
 * locals), then, once the frame object owns its frame (its function has returned), that
 * frame. A frame still running (or a generator's) is visited by its thread (or generator). */
static int visit_frame_object(Ctx *c, uint64_t obj)
{
    const PyLayout *l = c->t->l;
    uint64_t iframe;
    int8_t owner;
    int k;
    if ((k = visit_fields(c, obj, l->refs.frame_fields, 8)) < 0 ||
        (k = rd64(c->t, obj + l->sizes.frame_frame, &iframe)) < 0 ||
        (k = rd(c->t, iframe + l->refs.iframe_owner, &owner, 1)) < 0)
        return k;
    return owner == l->refs.owned_by_frame_object ? visit_iframe(c, iframe) : 0;
}

/* Frame objects up to 3.10: their fields, the fast locals, cells and free variables, and the
 * value stack while the frame is suspended. */
static int visit_frame(Ctx *c, uint64_t obj)
{
    const PyLayout *l = c->t->l;
    uint64_t code, cellvars, freevars, valuestack;
    int32_t nlocals;
    int64_t ncells = 0, nfrees = 0, depth = 0;
    int k;
    if (l->refs.frame_localsplus == PYL_NONE)
        return visit_frame_object(c, obj);
    if ((k = visit_fields(c, obj, l->refs.frame_fields, 8)) < 0 ||
        (k = rd64(c->t, obj + l->sizes.frame_code, &code)) < 0 ||
        (k = rd(c->t, code + l->sizes.code_nlocals, &nlocals, 4)) < 0 ||
        (k = rd64(c->t, code + l->sizes.code_cellvars, &cellvars)) < 0 ||
        (k = rd64(c->t, code + l->sizes.code_freevars, &freevars)) < 0 ||
        (k = rd64(c->t, obj + l->refs.frame_valuestack, &valuestack)) < 0)
        return k;
    if ((cellvars && (k = rd(c->t, cellvars + l->object.ob_size, &ncells, 8)) < 0) ||
        (freevars && (k = rd(c->t, freevars + l->object.ob_size, &nfrees, 8)) < 0))
        return k;
    if (nlocals < 0 || ncells < 0 || nfrees < 0)
        return -EIO;
    if ((k = visit_array(c, obj + l->refs.frame_localsplus, nlocals + ncells + nfrees, 0)) < 0)
        return k;
    if (l->refs.frame_stacktop != PYL_NONE) {
        uint64_t top;
        if ((k = rd64(c->t, obj + l->refs.frame_stacktop, &top)) < 0)
            return k;
        if (top) {
            if (top < valuestack || (top - valuestack) % 8)
                return -EIO;
            depth = (int64_t)((top - valuestack) / 8);
        }
    } else {
        int32_t d;
        if ((k = rd(c->t, obj + l->refs.frame_stackdepth, &d, 4)) < 0)
            return k;
        depth = d;
    }
    return visit_array(c, valuestack, depth, 0);
}

/* Instances of a class statement's class: subtype_traverse. */
static int visit_instance(Ctx *c, uint64_t obj, const TraverseType *ti)
{
    const PyLayout *l = c->t->l;
    int k;
    for (uint32_t i = 0; i < ti->nslots; i++)
        if ((k = visit_field(c, obj + (uint64_t)ti->slots[i])) < 0)
            return k;
    if (l->refs.flag_managed_dict && (ti->flags & l->refs.flag_managed_dict)) {
        uint64_t dict, values = 0;
        if ((k = rd64(c->t, obj + (uint64_t)(int64_t)l->refs.managed_dict, &dict)) < 0)
            return k;
        if (l->refs.managed_values &&
            (k = rd64(c->t, obj + (uint64_t)(int64_t)l->refs.managed_values, &values)) < 0)
            return k;
        if (l->refs.managed_tagged && (dict & 1)) {
            values = dict + 1;
            dict = 0;
        }
        if (values) { /* 3.11, 3.12: as many values as the type's shared keys have entries */
            int64_t n;
            if (!ti->cached_keys)
                return -EIO;
            if ((k = keys_count(c, ti->cached_keys, &n)) < 0 ||
                (k = visit_array(c, values + l->refs.values_values, n, 0)) < 0)
                return k;
        }
        bool inline_done = false;
        if ((ti->flags & l->refs.flag_inline_values) && (!dict || !l->refs.managed_dict_first)) {
            /* 3.13+: PyObject_VisitManagedDict, the inline values after tp_basicsize. */
            uint64_t iv = obj + (uint64_t)ti->basicsize;
            uint8_t capacity, valid;
            if ((k = rd(c->t, iv + l->refs.values_capacity, &capacity, 1)) < 0 ||
                (k = rd(c->t, iv + l->refs.values_valid, &valid, 1)) < 0)
                return k;
            if (valid && (k = visit_array(c, iv + l->refs.values_values, capacity, 0)) < 0)
                return k;
            inline_done = valid;
        }
        if (dict && !inline_done && (k = visit_ptr(c, dict, 0)) < 0)
            return k;
    } else if (ti->dictoffset != ti->base_dictoffset && ti->dictoffset) {
        int64_t off = ti->dictoffset;
        if (off < 0) { /* _PyObject_GetDictPtr: from the end of a variable-size object */
            int64_t size;
            if ((k = rd(c->t, obj + l->object.ob_size, &size, 8)) < 0)
                return k;
            size = size < 0 ? -size : size;
            if (size > MAX_ITEMS)
                return -EIO;
            off += (ti->basicsize + size * ti->itemsize + 7) & ~7ll;
        }
        if ((k = visit_field(c, obj + (uint64_t)off)) < 0)
            return k;
    }
    /* The instance refers to its class, unless its heap base's traverse says so itself. */
    if (!ti->base_heap && (k = visit_ptr(c, ti->type, 0)) < 0)
        return k;
    return 0;
}

static int visit_kind(Ctx *c, uint64_t obj, TraverseKind kind, bool heap, uint64_t type)
{
    const PyLayout *l = c->t->l;
    int64_t n;
    int k;
    /* Types made from a PyType_Spec visit Py_TYPE(self) in their traverse. */
    if (heap && kind != TK_NONE && (k = visit_ptr(c, type, 0)) < 0)
        return k;
    switch (kind) {
    case TK_NONE:
        return 0;
    case TK_DICT:
        return visit_dict(c, obj);
    case TK_DEFAULTDICT:
        if ((k = visit_field(c, obj + l->refs.dict_basicsize)) < 0)
            return k;
        return visit_dict(c, obj);
    case TK_ODICT:
        return visit_odict(c, obj);
    case TK_LIST: {
        uint64_t items;
        if ((k = rd(c->t, obj + l->object.ob_size, &n, 8)) < 0 ||
            (k = rd64(c->t, obj + l->refs.list_items, &items)) < 0)
            return k;
        return n ? visit_array(c, items, n, 0) : 0;
    }
    case TK_TUPLE:
        if ((k = rd(c->t, obj + l->object.ob_size, &n, 8)) < 0)
            return k;
        return visit_array(c, obj + l->refs.tuple_items, n, 0);
    case TK_SET:
        return visit_set(c, obj);
    case TK_CELL:
        return visit_field(c, obj + l->refs.cell_ref);
    case TK_FUNCTION:
        return visit_fields(c, obj, l->refs.func_fields, 14);
    case TK_METHOD:
        if ((k = visit_field(c, obj + l->refs.method_func)) < 0)
            return k;
        return visit_field(c, obj + l->refs.method_self);
    case TK_MODULE:
        return visit_field(c, obj + l->refs.module_dict);
    case TK_TYPE: {
        uint64_t flags;
        if ((k = rd64(c->t, obj + l->object.tp_flags, &flags)) < 0)
            return k;
        if (!(flags & l->object.flag_heaptype))
            return 0;
        const uint32_t f[] = {l->refs.tp_dict,  l->refs.tp_cache, l->refs.tp_mro,
                              l->refs.tp_bases, l->refs.tp_base,  l->refs.ht_module};
        return visit_fields(c, obj, f, 6);
    }
    case TK_DEQUE:
        return visit_deque(c, obj);
    case TK_GENERATOR:
        return visit_generator(c, obj);
    case TK_FRAME:
        return visit_frame(c, obj);
    case TK_TRACEBACK:
        if ((k = visit_field(c, obj + l->refs.traceback_next)) < 0)
            return k;
        return visit_field(c, obj + l->refs.traceback_frame);
    case TK_WEAKREF: {
        uint64_t p;
        if ((k = rd64(c->t, obj + l->refs.weakref_object, &p)) < 0)
            return k;
        return p ? c->visit(c->ud, p, 0, true) : 0;
    }
    case TK_INSTANCE:
    case TK_UNKNOWN:
        break;
    }
    return -ENOTSUP;
}

int traverser_visit(Traverser *t, uint64_t obj, uint64_t type, TraverseVisit visit, void *ud)
{
    const TraverseType *ti;
    int k = traverser_type(t, type, &ti);
    if (k < 0)
        return k;
    Ctx c = {t, visit, ud};
    if (ti->kind == TK_INSTANCE) {
        /* A base pymemd does not follow: nothing of the instance is, rather than half of it. */
        if (ti->base_kind == TK_UNKNOWN || ti->base_kind == TK_INSTANCE)
            return -ENOTSUP;
        if ((k = visit_instance(&c, obj, ti)) < 0)
            return k;
        return ti->base_kind == TK_NONE ? 0
                                        : visit_kind(&c, obj, ti->base_kind, ti->base_heap, type);
    }
    if (ti->kind == TK_UNKNOWN)
        return -ENOTSUP;
    return visit_kind(&c, obj, ti->kind, ti->heap, type);
}

int traverser_str(Traverser *t, uint64_t addr, char *buf, size_t size)
{
    const PyLayout *l = t->l;
    uint64_t type;
    int64_t len;
    uint32_t state;
    const TraverseType *ti;
    int k;
    if ((k = rd64(t, addr + l->object.ob_type, &type)) < 0 ||
        (k = traverser_type(t, type, &ti)) < 0)
        return k;
    if (strcmp(ti->name, "str") != 0 || ti->heap)
        return -EINVAL;
    if ((k = rd(t, addr + l->refs.str_length, &len, 8)) < 0 ||
        (k = rd(t, addr + l->refs.str_state, &state, 4)) < 0)
        return k;
    /* state: interned:2, kind:3, compact:1, ascii:1 (unchanged 3.8-3.15) */
    if (!(state & (1u << 5)) || !(state & (1u << 6)) || len < 0)
        return -EINVAL;
    char raw[256];
    size_t n = (size_t)len < sizeof(raw) - 1 ? (size_t)len : sizeof(raw) - 1;
    if ((k = rd(t, addr + l->refs.str_ascii_size, raw, n)) < 0)
        return k;
    raw[n] = 0;
    utf8_sanitize(buf, size, raw);
    return 0;
}
