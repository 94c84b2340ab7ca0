#include "python/refs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "python/traverse.h"
#include "util/clock.h"

#define MAX_OBJECTS 200000000  /* as the census */
#define MAX_SCAN    (1u << 20) /* bytes of one unfollowed object's body scanned */
#define NO_PARENT   (-1)
#define UNSEEN      (-2)
#define SEEDED      (-3) /* a thread's frame local: key[] is the index of its label */
#define MAX_THREADS 1024
#define MAX_FRAMES  1024 /* per thread */
#define MAX_LOCALS  4096 /* per frame */
#define LABEL_MAX   (2 * REFS_NAME_MAX + 32)
#define MAX_CHAINS  4096 /* distinct chains told apart; instances past them count as "more" */

/* Errors that end the whole walk rather than mark one object unreadable: a page the copy lacks
 * (the census then copies again, see census_take_visit), its time up while the target is
 * stopped, no memory. */
static bool stops_walk(int k)
{
    return k == -ENODATA || k == -ETIMEDOUT || k == -ENOMEM;
}

/* ---- the objects of a walk, by address ------------------------------------------------- */

typedef struct Obj {
    uint64_t addr, type;
} Obj;

typedef struct Ctx {
    const PyLayout *l;
    const char *want; /* the type asked for */
    uint64_t modules; /* sys.modules */
    uint64_t interp;  /* the main interpreter */
    Obj *objs;
    size_t n, cap;
    size_t listed; /* objs[0, listed) are what gc.get_objects() lists; the rest are untracked */
    Obj *hidden;   /* the untracked ones of a free-threaded heap (CensusVisitor.untracked) */
    size_t nhidden, caphidden;
    uint64_t *ikey; /* open addressing on the address: the address, 0 empty */
    uint32_t *ipos; /* its position in objs */
    size_t icap;    /* 1 << (64 - ishift) */
    unsigned ishift;
    uint8_t *inst; /* per object: an instance of the type asked for */
    Refs *x;
    char msg[256];
} Ctx;

static void ctx_reset(void *ud)
{
    Ctx *c = ud;
    c->n = c->listed = c->nhidden = 0;
}

/* Makes room for `more` objects past n in *v (of *cap). */
static int obj_room(Obj **v, size_t *cap, size_t n, size_t more)
{
    if (n + more <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 65536;
    while (ncap < n + more)
        ncap *= 2;
    if (ncap > MAX_OBJECTS)
        return -EIO;
    Obj *o = realloc(*v, ncap * sizeof(*o));
    if (!o)
        return -ENOMEM;
    *v = o;
    *cap = ncap;
    return 0;
}

static int ctx_object(void *ud, uint64_t obj, uint64_t type)
{
    Ctx *c = ud;
    int k = obj_room(&c->objs, &c->cap, c->n, 1);
    if (k < 0)
        return k;
    c->objs[c->n++] = (Obj){obj, type};
    return 0;
}

/* Not counted, not a referrer of its own (the target's gc.get_referrers() does not see it), but
 * followed from the roots: a module, its dict, a function or a class made immortal. */
static int ctx_untracked(void *ud, uint64_t obj, uint64_t type)
{
    Ctx *c = ud;
    int k = obj_room(&c->hidden, &c->caphidden, c->nhidden, 1);
    if (k < 0)
        return k;
    c->hidden[c->nhidden++] = (Obj){obj, type};
    return 0;
}

/* Fibonacci hashing: the product's high bits, which every bit of the address stirs. Its low
 * bits would not do: objects of one size class lie a fixed stride apart, so the low bits of
 * their addresses (and of any product of them) take a few values only, and the probes pile up
 * in clusters. The slot holds the address itself, so that a probe (most lookups are of objects
 * that are not GC-tracked: str, int) touches one array, not the objects' too. */
static size_t slot_of(const Ctx *c, uint64_t addr)
{
    size_t i = (size_t)(((addr >> 3) * 0x9e3779b97f4a7c15ull) >> c->ishift);
    while (c->ikey[i] && c->ikey[i] != addr)
        i = (i + 1) & (c->icap - 1);
    return i;
}

/* The position of the walked object at addr, or -1. */
static int64_t find(const Ctx *c, uint64_t addr)
{
    size_t i = slot_of(c, addr);
    return c->ikey[i] ? (int64_t)c->ipos[i] : -1;
}

/* At most two thirds full: about two probes for an address that is not there, mostly in one
 * cache line. */
static int build_index(Ctx *c)
{
    free(c->ikey);
    free(c->ipos);
    c->icap = 1024;
    c->ishift = 64 - 10;
    while (c->icap < c->n + c->n / 2) {
        c->icap *= 2;
        c->ishift--;
    }
    c->ikey = calloc(c->icap, sizeof(*c->ikey));
    c->ipos = malloc(c->icap * sizeof(*c->ipos));
    if (!c->ikey || !c->ipos)
        return -ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = slot_of(c, c->objs[i].addr);
        c->ikey[j] = c->objs[i].addr;
        c->ipos[j] = (uint32_t)i;
    }
    return 0;
}

/* ---- groups ---------------------------------------------------------------------------- */

static const char *short_name(const char *tp_name)
{
    const char *dot = strrchr(tp_name, '.');
    return dot ? dot + 1 : tp_name;
}

static int group_add(RefsGroup **v, size_t *n, const char *type, int64_t refs)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].type, type) == 0) {
            (*v)[i].objects++;
            (*v)[i].refs += refs;
            return 0;
        }
    RefsGroup *g = realloc(*v, (*n + 1) * sizeof(**v));
    if (!g)
        return -ENOMEM;
    *v = g;
    RefsGroup *o = &g[(*n)++];
    memset(o, 0, sizeof(*o));
    snprintf(o->type, sizeof(o->type), "%s", type);
    o->objects = 1;
    o->refs = refs;
    return 0;
}

static int cmp_group(const void *a, const void *b)
{
    const RefsGroup *x = a, *y = b;
    if (x->objects != y->objects)
        return x->objects < y->objects ? 1 : -1;
    return strcmp(x->type, y->type);
}

/* Largest first. An empty list may be NULL, which qsort must not be given (UBSan says so). */
static void sort_groups(RefsGroup *g, size_t n)
{
    if (n > 1)
        qsort(g, n, sizeof(*g), cmp_group);
}

/* ---- direct referrers ------------------------------------------------------------------ */

typedef struct Hits {
    const Ctx *c;
    int64_t strong, weak;
} Hits;

static int count_hit(void *ud, uint64_t ref, uint64_t key, bool weak)
{
    (void)key;
    Hits *h = ud;
    int64_t i = find(h->c, ref);
    if (i >= 0 && h->c->inst[i]) {
        if (weak)
            h->weak++;
        else
            h->strong++;
    }
    return 0;
}

/* An object pymemd does not follow: the words of its body that are an instance's address. */
static int scan_body(Ctx *c, Traverser *t, CensusReadFn read, void *rctx, const Obj *o,
                     int64_t *ret)
{
    const TraverseType *ti;
    int k = traverser_type(t, o->type, &ti);
    if (k < 0)
        return k;
    int64_t size = ti->basicsize;
    if (ti->itemsize) {
        int64_t n;
        if ((k = read(rctx, o->addr + c->l->object.ob_size, &n, 8)) < 0)
            return k;
        n = n < 0 ? -n : n;
        size += n * ti->itemsize;
    }
    if (size > MAX_SCAN)
        size = MAX_SCAN;
    uint64_t buf[512];
    int64_t hits = 0;
    /* Past the PyObject head (ob_size's offset is its size): its words are never instances. */
    for (int64_t off = c->l->object.ob_size; off + 8 <= size; off += (int64_t)sizeof(buf)) {
        size_t m = (size_t)(size - off) < sizeof(buf) ? (size_t)(size - off) / 8 : 512;
        if ((k = read(rctx, o->addr + (uint64_t)off, buf, m * 8)) < 0)
            return k;
        for (size_t j = 0; j < m; j++) {
            int64_t i = buf[j] ? find(c, buf[j]) : -1;
            hits += i >= 0 && c->inst[i];
        }
    }
    *ret = hits;
    return 0;
}

static int direct_referrers(Ctx *c, Traverser *t, CensusReadFn read, void *rctx)
{
    Refs *x = c->x;
    for (size_t i = 0; i < c->listed; i++) {
        const Obj *o = &c->objs[i];
        Hits h = {c, 0, 0};
        census_read_for(rctx, o->addr, o->type);
        int k = traverser_visit(t, o->addr, o->type, count_hit, &h);
        census_read_for(rctx, 0, 0);
        const TraverseType *ti;
        if (stops_walk(k))
            return k;
        if (traverser_type(t, o->type, &ti) < 0) {
            x->unreadable++;
            continue;
        }
        const char *name = short_name(ti->name);
        if (k >= 0) {
            if (h.strong && (k = group_add(&x->referrers, &x->nreferrers, name, h.strong)) < 0)
                return k;
            if (h.weak && (k = group_add(&x->weak, &x->nweak, name, h.weak)) < 0)
                return k;
            continue;
        }
        int64_t hits;
        k = scan_body(c, t, read, rctx, o, &hits);
        if (stops_walk(k))
            return k;
        if (k < 0)
            x->unreadable++;
        else if (hits && (k = group_add(&x->unfollowed, &x->nunfollowed, name, hits)) < 0)
            return k;
    }
    return 0;
}

/* ---- roots ----------------------------------------------------------------------------- */

typedef struct Bfs {
    Ctx *c;
    int32_t *parent;
    uint64_t *key; /* the dict key an object was reached by, 0: none */
    uint32_t *queue;
    size_t tail;
    int32_t from;
    char (*labels)[LABEL_MAX]; /* the frame locals and interpreter tables seeded */
    const char **kinds;        /* each label's kind */
    size_t nlabels;
} Bfs;

/* Seeds the walk with object i (not seen yet), the root of chains named label, of that kind. */
static int seed(Bfs *b, int64_t i, const char *label, const char *kind)
{
    if (i < 0 || b->parent[i] != UNSEEN)
        return 0;
    char(*lb)[LABEL_MAX] = realloc(b->labels, (b->nlabels + 1) * sizeof(*lb));
    if (!lb)
        return -ENOMEM;
    b->labels = lb;
    const char **kd = realloc(b->kinds, (b->nlabels + 1) * sizeof(*kd));
    if (!kd)
        return -ENOMEM;
    b->kinds = kd;
    snprintf(lb[b->nlabels], LABEL_MAX, "%s", label);
    kd[b->nlabels] = kind;
    b->parent[i] = SEEDED;
    b->key[i] = b->nlabels++;
    b->queue[b->tail++] = (uint32_t)i;
    return 0;
}

static int bfs_visit(void *ud, uint64_t ref, uint64_t key, bool weak)
{
    Bfs *b = ud;
    if (weak)
        return 0;
    int64_t i = find(b->c, ref);
    if (i < 0 || b->parent[i] != UNSEEN)
        return 0;
    b->parent[i] = b->from;
    b->key[i] = key;
    b->queue[b->tail++] = (uint32_t)i;
    return 0;
}

static void key_name(Traverser *t, uint64_t key, char *buf, size_t size)
{
    if (!key || traverser_str(t, key, buf, size) < 0)
        snprintf(buf, size, "%s", key ? "?" : "");
}

static TraverseKind kind_at(Ctx *c, Traverser *t, int32_t i)
{
    const TraverseType *ti;
    if (traverser_type(t, c->objs[i].type, &ti) < 0)
        return TK_UNKNOWN;
    return ti->kind == TK_INSTANCE ? ti->base_kind : ti->kind;
}

/* The chain that reaches instance i: named by the module global, and the class attribute below
 * it, it passes through. Module and class dicts are implied by their owner, not listed. */
static void describe(Ctx *c, Traverser *t, const Bfs *b, int32_t i, RefsRoot *r)
{
    int32_t path[64];
    int n = 0;
    memset(r, 0, sizeof(*r));
    int32_t top = i;
    for (int32_t p = b->parent[i]; p >= 0 && n < 64; p = b->parent[p])
        path[n++] = top = p;
    if (b->parent[top] == SEEDED) { /* a frame local or a table, then what it leads through */
        char name[REFS_NAME_MAX];
        snprintf(r->root, sizeof(r->root), "%s", b->labels[b->key[top]]);
        r->kind = b->kinds[b->key[top]];
        for (int j = n - 1; j >= 0 && r->nchain < REFS_CHAIN_MAX; j--) {
            const TraverseType *ti;
            int32_t o = path[j];
            if (o == top)
                name[0] = 0;
            else
                key_name(t, b->key[o], name, sizeof(name));
            snprintf(r->chain[r->nchain++], sizeof(r->chain[0]), "%.60s%s%.70s",
                     traverser_type(t, c->objs[o].type, &ti) < 0 ? "?" : short_name(ti->name),
                     *name ? " " : "", name);
        }
        return;
    }
    /* path[n-1] is sys.modules, path[0] the direct holder. */
    r->kind = "sys.modules";
    snprintf(r->root, sizeof(r->root), "sys.modules");
    char name[REFS_NAME_MAX], mod[REFS_NAME_MAX] = "";
    int named = 0; /* 1: module; 2: module global; 3: class attribute */
    for (int j = n - 2; j >= 0; j--) {
        int32_t o = path[j];
        TraverseKind kind = kind_at(c, t, o), up = kind_at(c, t, path[j + 1]);
        key_name(t, b->key[o], name, sizeof(name));
        const TraverseType *ti;
        const char *tname =
            traverser_type(t, c->objs[o].type, &ti) < 0 ? "?" : short_name(ti->name);
        bool ns_dict = kind == TK_DICT && (up == TK_MODULE || up == TK_TYPE);
        if (j == n - 2 && kind == TK_MODULE) {
            snprintf(mod, sizeof(mod), "%s", name);
            named = 1;
        } else if (named == 1 && up == TK_DICT && j + 2 < n &&
                   kind_at(c, t, path[j + 2]) == TK_MODULE) {
            snprintf(r->root, sizeof(r->root), "%s.%s", mod, name);
            r->kind = "module global";
            named = kind == TK_TYPE ? 2 : 4;
        } else if (named == 2 && up == TK_DICT && j + 2 < n &&
                   kind_at(c, t, path[j + 2]) == TK_TYPE) {
            size_t len = strlen(r->root);
            snprintf(r->root + len, sizeof(r->root) - len, ".%s", name);
            r->kind = "class attribute";
            named = 4;
        } else if (named == 2 && !ns_dict) {
            named = 4;
        }
        if (ns_dict || r->nchain >= REFS_CHAIN_MAX)
            continue;
        snprintf(r->chain[r->nchain++], sizeof(r->chain[0]), "%.60s%s%.70s",
                 kind == TK_TYPE ? "class" : tname, *name ? " " : "", name);
    }
    if (named == 1) { /* held by the module dict itself: a global */
        key_name(t, b->key[i], name, sizeof(name));
        snprintf(r->root, sizeof(r->root), "%s.%s", mod, name);
        r->kind = "module global";
    } else if (named == 2 && n >= 2 && kind_at(c, t, path[0]) == TK_DICT) {
        key_name(t, b->key[i], name, sizeof(name));
        size_t len = strlen(r->root);
        snprintf(r->root + len, sizeof(r->root) - len, ".%s", name);
        r->kind = "class attribute";
    }
}

static bool same_root(const RefsRoot *a, const RefsRoot *b)
{
    if (strcmp(a->root, b->root) || strcmp(a->kind, b->kind) || a->nchain != b->nchain)
        return false;
    for (int i = 0; i < a->nchain; i++)
        if (strcmp(a->chain[i], b->chain[i]))
            return false;
    return true;
}

/* Appends a root entry that names no chain ("more chains", "unreached"), holding `holds`. */
static int append_summary(RefsRoot **v, size_t *nv, const char *kind, int64_t holds)
{
    RefsRoot *n = realloc(*v, (*nv + 1) * sizeof(**v));
    if (!n)
        return -ENOMEM;
    *v = n;
    n[*nv] = (RefsRoot){.kind = kind, .holds = holds};
    (*nv)++;
    return 0;
}

static int cmp_root(const void *a, const void *b)
{
    const RefsRoot *x = a, *y = b;
    bool xu = strcmp(x->kind, "unreached") == 0, yu = strcmp(y->kind, "unreached") == 0;
    if (xu != yu)
        return xu - yu;
    if (x->nchain != y->nchain)
        return x->nchain - y->nchain;
    if (x->holds != y->holds)
        return x->holds < y->holds ? 1 : -1;
    return strcmp(x->root, y->root);
}

static int rd64(CensusReadFn read, void *rctx, uint64_t addr, uint64_t *ret)
{
    return addr < 4096 ? -EFAULT : read(rctx, addr, ret, 8);
}

/* The name of local j of a frame: item j of names[0], or, up to 3.10, of co_varnames, then
 * co_cellvars, then co_freevars (names[0..2], lens[0..2] items each). */
static void local_name(Traverser *t, CensusReadFn read, void *rctx, const PyLayout *l,
                       const uint64_t *names, const int64_t *lens, int64_t j, char *buf,
                       size_t size)
{
    uint64_t item = 0;
    for (int s = 0; s < 3; s++) {
        if (j < lens[s]) {
            if (rd64(read, rctx, names[s] + l->refs.tuple_items + (uint64_t)j * 8, &item) < 0 ||
                traverser_str(t, item, buf, size) < 0)
                snprintf(buf, size, "?");
            return;
        }
        j -= lens[s];
    }
    snprintf(buf, size, "?");
}

/* Seeds the walk with every local of every frame of every thread of the main interpreter,
 * labelled "thread N: function(): name", threads numbered from the oldest (the main thread is
 * 1). A frame that does not hold together ends that thread's frames. */
static int seed_threads(Ctx *c, Traverser *t, CensusReadFn read, void *rctx, Bfs *b)
{
    const PyLayout *l = c->l;
    uint64_t threads[MAX_THREADS], ts;
    int nthreads = 0, k = 0;
    if (!c->interp || (k = rd64(read, rctx, c->interp + l->interp.threads_head, &ts)) < 0)
        return c->interp && stops_walk(k) ? k : 0;
    while (ts && nthreads < MAX_THREADS) {
        threads[nthreads++] = ts;
        if ((k = rd64(read, rctx, ts + l->tstate.next, &ts)) < 0)
            return stops_walk(k) ? k : 0;
    }
    bool old = l->refs.tstate_frame != PYL_NONE; /* up to 3.10: PyFrameObject */
    for (int n = nthreads - 1; n >= 0; n--) {
        uint64_t f = 0;
        ts = threads[n];
        if (old)
            k = rd64(read, rctx, ts + l->refs.tstate_frame, &f);
        else if (l->refs.tstate_current_frame != PYL_NONE)
            k = rd64(read, rctx, ts + l->refs.tstate_current_frame, &f);
        else if ((k = rd64(read, rctx, ts + l->refs.tstate_cframe, &f)) >= 0 && f)
            k = rd64(read, rctx, f + l->refs.cframe_current_frame, &f);
        for (int depth = 0; k >= 0 && f && depth < MAX_FRAMES; depth++) {
            uint64_t code, names[3] = {0}, locals, tag = l->sizes.code_tag_bits;
            int64_t lens[3] = {0};
            const TraverseType *ti;
            if (old) {
                int32_t nlocals;
                if ((k = rd64(read, rctx, f + l->sizes.frame_code, &code)) < 0 ||
                    (k = read(rctx, code + l->sizes.code_nlocals, &nlocals, 4)) < 0 ||
                    (k = rd64(read, rctx, code + l->refs.code_varnames, &names[0])) < 0 ||
                    (k = rd64(read, rctx, code + l->sizes.code_cellvars, &names[1])) < 0 ||
                    (k = rd64(read, rctx, code + l->sizes.code_freevars, &names[2])) < 0)
                    break;
                lens[0] = nlocals;
                for (int s = 1; s < 3 && k >= 0; s++)
                    if (names[s])
                        k = read(rctx, names[s] + l->object.ob_size, &lens[s], 8);
                if (k < 0)
                    break;
                locals = f + l->refs.frame_localsplus;
                tag = 0;
            } else {
                int32_t nlp;
                if ((k = rd64(read, rctx, f + l->sizes.iframe_code, &code)) < 0)
                    break;
                code &= ~tag;
                if ((k = read(rctx, code + l->sizes.code_nlocalsplus, &nlp, 4)) < 0 ||
                    (k = rd64(read, rctx, code + l->refs.code_localsplusnames, &names[0])) < 0)
                    break;
                lens[0] = nlp;
                locals = f + l->refs.iframe_localsplus;
            }
            uint64_t ctype, name_obj;
            char func[REFS_NAME_MAX] = "?";
            if ((k = rd64(read, rctx, code + l->object.ob_type, &ctype)) < 0 ||
                (k = traverser_type(t, ctype, &ti)) < 0 || strcmp(ti->name, "code") != 0)
                break; /* not a code object: not a frame of Python code */
            if (rd64(read, rctx, code + l->refs.code_name, &name_obj) >= 0)
                traverser_str(t, name_obj, func, sizeof(func));
            int64_t nloc = lens[0] + lens[1] + lens[2];
            for (int64_t j = 0; j < nloc && j < MAX_LOCALS; j++) {
                uint64_t v;
                if ((k = rd64(read, rctx, locals + (uint64_t)j * 8, &v)) < 0)
                    break;
                uint64_t int_tag = tag ? l->refs.stack_int_tag : 0;
                int64_t i = v && !(int_tag && (v & int_tag) == int_tag) ? find(c, v & ~tag) : -1;
                if (i < 0 || b->parent[i] != UNSEEN)
                    continue;
                char var[REFS_NAME_MAX], label[LABEL_MAX];
                local_name(t, read, rctx, l, names, lens, j, var, sizeof(var));
                snprintf(label, sizeof(label), "thread %d: %.100s(): %.100s", nthreads - n, func,
                         var);
                if ((k = seed(b, i, label, "thread frame local")) < 0)
                    return k;
            }
            if (k < 0)
                break;
            k = rd64(read, rctx, f + (old ? l->refs.frame_back : l->refs.iframe_previous), &f);
        }
        if (stops_walk(k))
            return k;
    }
    return 0;
}

static int roots(Ctx *c, Traverser *t, CensusReadFn read, void *rctx)
{
    Refs *x = c->x;
    int64_t start = c->modules ? find(c, c->modules) : -1;
    Bfs b = {c,
             malloc(c->n * sizeof(int32_t)),
             calloc(c->n, sizeof(uint64_t)),
             malloc(c->n * sizeof(uint32_t)),
             0,
             0};
    RefsRoot *v = NULL, r;
    size_t nv = 0;
    int64_t unreached = 0, more = 0;
    int k = 0;
    if (!b.parent || !b.key || !b.queue) {
        k = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->n; i++)
        b.parent[i] = UNSEEN;
    if (start >= 0) {
        b.parent[start] = NO_PARENT;
        b.queue[b.tail++] = (uint32_t)start;
    }
    if ((k = seed_threads(c, t, read, rctx, &b)) < 0)
        goto out;
    /* Then, for what those leave unreached, the interpreter's own tables that no module holds
     * (the codec registry); sys, builtins and the import machinery are modules, reached above. */
    static const char *const codec_labels[3] = {
        "codecs.register() search functions",
        "codecs search cache",
        "codecs.register_error() handlers",
    };
    for (int stage = 0, head = 0; stage < 2; stage++) {
        for (; (size_t)head < b.tail; head++) {
            uint32_t i = b.queue[head];
            b.from = (int32_t)i;
            census_read_for(rctx, c->objs[i].addr, c->objs[i].type);
            k = traverser_visit(t, c->objs[i].addr, c->objs[i].type, bfs_visit, &b);
            census_read_for(rctx, 0, 0);
            if (stops_walk(k))
                goto out;
        }
        for (int j = 0; stage == 0 && c->interp && j < 3; j++) {
            uint64_t table;
            if (c->l->refs.codec_tables[j] == PYL_NONE)
                continue;
            if ((k = rd64(read, rctx, c->interp + c->l->refs.codec_tables[j], &table)) < 0) {
                if (stops_walk(k))
                    goto out;
                continue;
            }
            if ((k = seed(&b, table ? find(c, table) : -1, codec_labels[j], "interpreter table")) <
                0)
                goto out;
        }
    }
    k = 0;
    /* The queue is spent: from here it maps a holder to the chain of its instances. */
    for (size_t i = 0; i < c->n; i++)
        b.queue[i] = UINT32_MAX;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->inst[i])
            continue;
        if (b.parent[i] == UNSEEN || b.parent[i] == NO_PARENT) {
            unreached++;
            continue;
        }
        /* Instances with the same holder share its chain, unless the holder is a module's or a
         * class's dict: then each has its own name. */
        int32_t p = b.parent[i];
        if (p >= 0 && b.queue[p] != UINT32_MAX) {
            v[b.queue[p]].holds++;
            continue;
        }
        describe(c, t, &b, (int32_t)i, &r);
        size_t j = 0;
        while (j < nv && !same_root(&v[j], &r))
            j++;
        if (j == nv && nv >= MAX_CHAINS) { /* a hostile heap: the comparisons stay bounded */
            more++;
            continue;
        }
        if (j == nv) {
            RefsRoot *nvv = realloc(v, (nv + 1) * sizeof(*v));
            if (!nvv) {
                k = -ENOMEM;
                goto out;
            }
            v = nvv;
            v[nv++] = r;
        }
        v[j].holds++;
        int32_t pp = p >= 0 ? b.parent[p] : -1;
        TraverseKind up = pp >= 0 ? kind_at(c, t, pp) : TK_UNKNOWN;
        if (p >= 0 && !(kind_at(c, t, p) == TK_DICT && (up == TK_MODULE || up == TK_TYPE)))
            b.queue[p] = (uint32_t)j;
    }
    if ((more && (k = append_summary(&v, &nv, "more chains", more)) < 0) ||
        (unreached && (k = append_summary(&v, &nv, "unreached", unreached)) < 0))
        goto out;
    if (nv > 1)
        qsort(v, nv, sizeof(*v), cmp_root);
    if (nv > REFS_ROOTS_MAX) { /* the unreached entry, last, is kept */
        if (strcmp(v[nv - 1].kind, "unreached") == 0)
            v[REFS_ROOTS_MAX - 1] = v[nv - 1];
        nv = REFS_ROOTS_MAX;
    }
    x->roots = v;
    x->nroots = nv;
    v = NULL;
out:
    free(v);
    free(b.parent);
    free(b.key);
    free(b.queue);
    free(b.labels);
    free(b.kinds);
    return k;
}

/* ---- the census visitor ---------------------------------------------------------------- */

/* The type asked for: its tp_name, its __name__ when no other type has it, or its census key.
 * The traverser caches each type, so looking one up per object costs a hash probe. */
static int resolve(Ctx *c, Traverser *t, uint64_t *ret)
{
    uint64_t found = 0, exact = 0, prev = 0;
    bool ambiguous = false;
    for (size_t i = 0; i < c->listed && !exact; i++) {
        uint64_t type = c->objs[i].type;
        if (type == prev || type == found)
            continue;
        prev = type;
        const TraverseType *ti;
        int k = traverser_type(t, type, &ti);
        if (stops_walk(k))
            return k;
        if (k < 0)
            continue;
        char qual[REFS_NAME_MAX + 24];
        census_type_key(short_name(ti->name), type, qual, sizeof(qual));
        if (strcmp(c->want, qual) == 0 || strcmp(c->want, ti->name) == 0)
            exact = type; /* wins over __name__ matches */
        else if (strcmp(c->want, short_name(ti->name)) == 0) {
            ambiguous = ambiguous || (found && found != type);
            found = type;
        }
    }
    if (exact) {
        *ret = exact;
        return 0;
    }
    if (!found) {
        snprintf(c->msg, sizeof(c->msg), "no live GC-tracked object of type '%s'", c->want);
        return -ENOENT;
    }
    if (ambiguous) {
        snprintf(c->msg, sizeof(c->msg),
                 "'%s' names several types: use the qualified name from the census", c->want);
        return -EINVAL;
    }
    *ret = found;
    return 0;
}

static void clear_results(Refs *x)
{
    free(x->referrers), free(x->unfollowed), free(x->weak), free(x->roots);
    x->referrers = x->unfollowed = x->weak = NULL;
    x->roots = NULL;
    x->nreferrers = x->nunfollowed = x->nweak = x->nroots = 0;
    x->count = x->unreadable = 0;
}

static int ctx_done(void *ud, CensusReadFn read, void *rctx)
{
    Ctx *c = ud;
    Refs *x = c->x;
    clear_results(x);
    _cleanup_(traverser_freep) Traverser *t = NULL;
    uint64_t type;
    int k;
    c->listed = c->n;
    if ((k = obj_room(&c->objs, &c->cap, c->n, c->nhidden)) < 0)
        return k;
    if (c->nhidden)
        memcpy(c->objs + c->n, c->hidden, c->nhidden * sizeof(*c->hidden));
    c->n += c->nhidden;
    if ((k = traverser_new(c->l, read, rctx, &t)) < 0)
        return k;
    traverser_set_prefetch(t, census_prefetch);
    if ((k = resolve(c, t, &type)) < 0 || (k = build_index(c)) < 0)
        return k;
    const TraverseType *ti;
    if ((k = traverser_type(t, type, &ti)) < 0)
        return k;
    snprintf(x->type, sizeof(x->type), "%s", ti->name);
    free(c->inst);
    if (!(c->inst = calloc(c->n ? c->n : 1, 1)))
        return -ENOMEM;
    for (size_t i = 0; i < c->listed; i++)
        if (c->objs[i].type == type) {
            c->inst[i] = 1;
            x->count++;
        }
    if ((k = direct_referrers(c, t, read, rctx)) < 0 || (k = roots(c, t, read, rctx)) < 0)
        return k;
    sort_groups(x->referrers, x->nreferrers);
    sort_groups(x->unfollowed, x->nunfollowed);
    sort_groups(x->weak, x->nweak);
    return 0;
}

Refs *refs_free(Refs *x)
{
    if (x) {
        clear_results(x);
        free(x);
    }
    return NULL;
}

int refs_take(PyReader *pr, Rmem *r, pid_t pid, const ProcStamp *expect, const char *type,
              CensusMode mode, double max_pause, CensusHints **hints, Refs **ret, char *err,
              size_t errlen)
{
    RAddr gc, obm;
    const PyLoc *loc;
    if (pyreader_bases(pr, &gc, &obm, &loc) < 0) {
        snprintf(err, errlen, "the interpreter has not been sampled yet");
        return -EAGAIN;
    }
    const PyLayout *l = &loc->layout;
    Refs *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    Ctx c = {.l = l, .want = type, .x = x};
    /* sys.modules is read while the target runs: the dict object stays for the process's life. */
    uint64_t interp = 0;
    if (rmem_read(r, loc->runtime + l->runtime.interpreters_main, &interp, 8) < 0 || !interp ||
        rmem_read(r, interp + l->refs.modules, &c.modules, 8) < 0)
        c.modules = 0;
    c.interp = interp;
    CensusVisitor vis = {ctx_reset, ctx_object, ctx_done, &c, ctx_untracked};
    Census *census = NULL;
    int k =
        census_take_visit(pr, r, pid, expect, mode, max_pause, &vis, hints, &census, err, errlen);
    if (k < 0 && c.msg[0])
        snprintf(err, errlen, "%s", c.msg);
    free(c.objs);
    free(c.hidden);
    free(c.ikey);
    free(c.ipos);
    free(c.inst);
    if (k < 0) {
        refs_free(x);
        return k;
    }
    x->pid = pid;
    x->at = census->at;
    x->pause_seconds = census->pause_seconds;
    x->walk_seconds = census->walk_seconds;
    x->stops = census->stops;
    x->snapshot = census->snapshot;
    census_free(census);
    *ret = x;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static cJSON *groups_json(const RefsGroup *g, size_t n, bool refs)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", g[i].type);
        cJSON_AddNumberToObject(o, "objects", (double)g[i].objects);
        if (refs)
            cJSON_AddNumberToObject(o, "refs", (double)g[i].refs);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

char *refs_json(const Refs *x)
{
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return NULL;
    cJSON_AddNumberToObject(d, "pid", x->pid);
    cJSON_AddStringToObject(d, "type", x->type);
    cJSON_AddNumberToObject(d, "count", (double)x->count);
    cJSON_AddNumberToObject(d, "at", x->at);
    cJSON_AddItemToObject(d, "referrers", groups_json(x->referrers, x->nreferrers, true));
    cJSON *roots = cJSON_AddArrayToObject(d, "roots");
    for (size_t i = 0; roots && i < x->nroots; i++) {
        const RefsRoot *r = &x->roots[i];
        cJSON *o = cJSON_CreateObject();
        if (r->root[0])
            cJSON_AddStringToObject(o, "root", r->root);
        else
            cJSON_AddNullToObject(o, "root");
        cJSON_AddStringToObject(o, "kind", r->kind);
        cJSON_AddNumberToObject(o, "holds", (double)r->holds);
        cJSON *ch = cJSON_AddArrayToObject(o, "chain");
        for (int j = 0; ch && j < r->nchain; j++)
            cJSON_AddItemToArray(ch, cJSON_CreateString(r->chain[j]));
        cJSON_AddItemToArray(roots, o);
    }
    cJSON_AddItemToObject(d, "unfollowed", groups_json(x->unfollowed, x->nunfollowed, true));
    cJSON_AddItemToObject(d, "weak", groups_json(x->weak, x->nweak, true));
    cJSON_AddNumberToObject(d, "unreadable", (double)x->unreadable);
    cJSON_AddNumberToObject(d, "pause_seconds", x->pause_seconds);
    cJSON_AddNumberToObject(d, "walk_seconds", x->walk_seconds);
    cJSON_AddNumberToObject(d, "stops", x->stops);
    cJSON_AddBoolToObject(d, "walked_after_resume", x->snapshot);
    char *s = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return s;
}
