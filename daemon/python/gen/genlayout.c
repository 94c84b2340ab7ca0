/* genlayout: prints one PyLayout initialiser for the CPython whose headers it is compiled against.
 *
 * Built and run by generate.sh once per version, never by the daemon build:
 *
 *     cc -DPy_BUILD_CORE -I<include/python3.X> -I<include/python3.X/internal> genlayout.c
 *
 * Every number comes from offsetof/sizeof on the version's own structs, so a table cannot drift
 * from the headers it names. The few values that live only in Objects/obmalloc.c (not in any
 * header) before 3.12 are stated below with their source. */
#define Py_BUILD_CORE 1
#include <Python.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if PY_VERSION_HEX < 0x03080000
#error "pymemd supports CPython 3.8 and newer"
#endif

#if PY_VERSION_HEX < 0x03090000
#include "internal/pycore_pystate.h" /* _PyRuntimeState, struct _is */
#else
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#endif
#if PY_VERSION_HEX >= 0x030C0000
#include "internal/pycore_obmalloc.h"
#endif
#ifdef Py_GIL_DISABLED
#include "internal/pycore_tstate.h"   /* _PyThreadStateImpl and its GC allocation count */
#include "internal/pycore_mimalloc.h" /* the heaps of a free-threaded build (print_mimalloc) */
#endif
#if PY_VERSION_HEX >= 0x030E0000
#include "internal/pycore_debug_offsets.h"
#include "internal/pycore_interp_structs.h"
#include "internal/pycore_runtime_structs.h"
#endif

#if PY_VERSION_HEX < 0x030B0000
#include "frameobject.h" /* PyFrameObject, with its code object */
#else
#include "internal/pycore_frame.h" /* struct _frame, _PyInterpreterFrame */
#endif
#if PY_VERSION_HEX >= 0x030E0000
#include "internal/pycore_interpframe_structs.h" /* PyGenObject and the frame it embeds */
#include "internal/pycore_stackref.h"            /* Py_TAG_BITS of f_executable */
#endif

#include "structmember.h" /* PyMemberDef, T_OBJECT_EX */
#if PY_VERSION_HEX >= 0x030A0000
#include "internal/pycore_moduleobject.h" /* PyModuleObject */
#endif
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_dict.h" /* struct _dictkeysobject, PyDictValues */
#endif

#define FIELD(name, value) printf("        .%s = %lu,\n", name, (unsigned long)(value))
#define NONE(name)         printf("        .%s = PYL_NONE,\n", name)
#define BEGIN(name)        printf("    .%s = {\n", name)
#define END()              printf("    },\n")

typedef PyInterpreterState Interp;

#if PY_VERSION_HEX < 0x03090000
#define GC_OF(field) offsetof(struct _gc_runtime_state, field)
#else
#define GC_OF(field) offsetof(struct _gc_runtime_state, field)
#endif

static void print_runtime(void)
{
    BEGIN("runtime");
    /* st_size of _PyRuntime can be larger than sizeof (3.12.1: +1024), so only sizeof is used. */
    FIELD("size", sizeof(_PyRuntimeState));
#if PY_VERSION_HEX < 0x03090000
    FIELD("finalizing", offsetof(_PyRuntimeState, finalizing));
#else
    FIELD("finalizing", offsetof(_PyRuntimeState, _finalizing));
#endif
    FIELD("interpreters_head", offsetof(_PyRuntimeState, interpreters.head));
    FIELD("interpreters_main", offsetof(_PyRuntimeState, interpreters.main));
#if PY_VERSION_HEX < 0x03090000
    FIELD("gc", offsetof(_PyRuntimeState, gc));
#else
    NONE("gc");
#endif
#if PY_VERSION_HEX >= 0x030C0000
    FIELD("obmalloc_interpreter_leaks", offsetof(_PyRuntimeState, obmalloc.interpreter_leaks));
#else
    NONE("obmalloc_interpreter_leaks");
#endif
    END();
}

static void print_interp(void)
{
    BEGIN("interp");
    FIELD("size", sizeof(Interp));
    FIELD("next", offsetof(Interp, next));
    FIELD("id", offsetof(Interp, id));
#if PY_VERSION_HEX < 0x030B0000
    FIELD("threads_head", offsetof(Interp, tstate_head));
#else
    FIELD("threads_head", offsetof(Interp, threads.head));
#endif
#if PY_VERSION_HEX < 0x03090000
    NONE("gc");
#else
    FIELD("gc", offsetof(Interp, gc));
#endif
#if PY_VERSION_HEX >= 0x030C0000
    FIELD("obmalloc", offsetof(Interp, obmalloc));
    FIELD("feature_flags", offsetof(Interp, feature_flags));
#else
    NONE("obmalloc");
    NONE("feature_flags");
#endif
    END();
    BEGIN("tstate");
    FIELD("size", sizeof(PyThreadState));
    FIELD("next", offsetof(PyThreadState, next));
#ifdef Py_GIL_DISABLED
    /* Free-threaded: every thread state is a _PyThreadStateImpl whose gc.alloc_count holds the
     * GC allocations minus deallocations of that thread not yet added to generation 0's count
     * (Python/gc_free_threading.c, record_allocation: flushed every 512). */
    FIELD("impl_size", sizeof(_PyThreadStateImpl));
    FIELD("alloc_count", offsetof(_PyThreadStateImpl, gc.alloc_count));
#endif
    END();
}

static void print_gc(void)
{
    BEGIN("gc");
    FIELD("size", sizeof(struct _gc_runtime_state));
    FIELD("enabled", GC_OF(enabled));
    FIELD("generations", GC_OF(generations));
    FIELD("ngenerations", NUM_GENERATIONS);
    FIELD("generation_size", sizeof(struct gc_generation));
    FIELD("generation_threshold", offsetof(struct gc_generation, threshold));
    FIELD("generation_count", offsetof(struct gc_generation, count));
    FIELD("head_size", sizeof(PyGC_Head));
    FIELD("permanent_generation", GC_OF(permanent_generation));
    FIELD("collecting", GC_OF(collecting));
    FIELD("garbage", GC_OF(garbage));
    FIELD("long_lived_total", GC_OF(long_lived_total));
#if PY_VERSION_HEX >= 0x030E0000
    FIELD("heap_size", GC_OF(heap_size));
#else
    NONE("heap_size");
#endif
#if PY_VERSION_HEX >= 0x030F0000
    /* 3.15 keeps statistics out of line, behind a pointer: struct gc_stats holds a ring of
     * per-collection entries for the young generation and one for each old generation. */
    printf("        .stats_kind = PYGCS_RING,\n");
    FIELD("stats", GC_OF(generation_stats));
    FIELD("stats_size", sizeof(struct gc_stats));
    FIELD("stats_entry_size", sizeof(struct gc_generation_stats));
    printf("        .stats_ring = {{%zu, %d, %zu}, {%zu, %d, %zu}, {%zu, %d, %zu}},\n",
           offsetof(struct gc_stats, young.items), GC_YOUNG_STATS_SIZE,
           offsetof(struct gc_stats, young.index), offsetof(struct gc_stats, old[0].items),
           GC_OLD_STATS_SIZE, offsetof(struct gc_stats, old[0].index),
           offsetof(struct gc_stats, old[1].items), GC_OLD_STATS_SIZE,
           offsetof(struct gc_stats, old[1].index));
#if defined(GENLAYOUT_HAVE_GC_STATS_UPDATE_SEQ)
    FIELD("stats_seq", offsetof(struct gc_stats, update_seq));
#else
    /* 3.15.0 has no update_seq (added before 3.15.2); generate.sh feature-tests it. */
    NONE("stats_seq");
#endif
    FIELD("stat_collections", offsetof(struct gc_generation_stats, collections));
    FIELD("stat_collected", offsetof(struct gc_generation_stats, collected));
    FIELD("stat_uncollectable", offsetof(struct gc_generation_stats, uncollectable));
    FIELD("stat_candidates", offsetof(struct gc_generation_stats, candidates));
    FIELD("stat_duration", offsetof(struct gc_generation_stats, duration));
#else
    printf("        .stats_kind = PYGCS_ARRAY,\n");
    FIELD("stats", GC_OF(generation_stats));
    FIELD("stats_size", sizeof(((struct _gc_runtime_state *)0)->generation_stats));
    FIELD("stats_entry_size", sizeof(struct gc_generation_stats));
    NONE("stats_seq");
    FIELD("stat_collections", offsetof(struct gc_generation_stats, collections));
    FIELD("stat_collected", offsetof(struct gc_generation_stats, collected));
    FIELD("stat_uncollectable", offsetof(struct gc_generation_stats, uncollectable));
    NONE("stat_candidates");
    NONE("stat_duration");
#endif
    END();
}

static void print_obmalloc(void)
{
    BEGIN("obmalloc");
#if defined(Py_GIL_DISABLED)
    /* Free-threaded builds allocate every object with mimalloc: pymalloc is not used, and the
     * interpreter's obmalloc state, though declared, holds no arenas. */
    printf("        .kind = PYOBM_NONE,\n");
#elif PY_VERSION_HEX >= 0x030C0000
#if PY_VERSION_HEX >= 0x030D0000
    printf("        .kind = PYOBM_POINTER,\n");
#else
    printf("        .kind = PYOBM_EMBEDDED,\n");
#endif
    typedef struct _obmalloc_state Obm;
    FIELD("state_size", sizeof(Obm));
    FIELD("arenas", offsetof(Obm, mgmt.arenas));
    FIELD("maxarenas", offsetof(Obm, mgmt.maxarenas));
    FIELD("narenas_currently_allocated", offsetof(Obm, mgmt.narenas_currently_allocated));
    FIELD("narenas_highwater", offsetof(Obm, mgmt.narenas_highwater));
    FIELD("raw_allocated_blocks", offsetof(Obm, mgmt.raw_allocated_blocks));
    FIELD("arena_object_size", sizeof(struct arena_object));
    FIELD("arena_address", offsetof(struct arena_object, address));
    FIELD("arena_pool_address", offsetof(struct arena_object, pool_address));
    FIELD("pool_ref_count", offsetof(struct pool_header, ref.count));
    FIELD("arena_size", ARENA_SIZE);
    FIELD("pool_size", POOL_SIZE);
    printf("        .counter_symbol = false,\n");
#else
    /* Before 3.12 the allocator state is file-static in Objects/obmalloc.c: no header has it.
     * struct arena_object there is {uintptr_t address; block *pool_address; uint nfreepools;
     * uint ntotalpools; struct pool_header *freepools; struct arena_object *nextarena,
     * *prevarena;} (48 bytes, unchanged 3.8–3.11), and pool_header starts with
     * union {block *_padding; uint count;} ref. ARENA_SIZE/POOL_SIZE: 256 KiB/4 KiB up to 3.9;
     * 1 MiB/16 KiB from 3.10 on 64-bit (USE_LARGE_ARENAS, USE_LARGE_POOLS with the radix tree).
     * Offsets of statics are symbol addresses, so the counter fields here are 0. */
    printf("        .kind = PYOBM_SYMBOLS,\n");
    FIELD("state_size", 0);
    FIELD("arenas", 0);
    FIELD("maxarenas", 0);
    FIELD("narenas_currently_allocated", 0);
    FIELD("narenas_highwater", 0);
#if PY_VERSION_HEX < 0x03090000
    NONE("raw_allocated_blocks");
    printf("        .counter_symbol = true,\n");
#else
    FIELD("raw_allocated_blocks", 0);
    printf("        .counter_symbol = false,\n");
#endif
    FIELD("arena_object_size", 48);
    FIELD("arena_address", 0);
    FIELD("arena_pool_address", 8);
    FIELD("pool_ref_count", 0);
#if PY_VERSION_HEX < 0x030A0000
    FIELD("arena_size", 256 << 10);
    FIELD("pool_size", 4 << 10);
#else
    FIELD("arena_size", 1 << 20);
    FIELD("pool_size", 16 << 10);
#endif
#endif
    END();
}

static void print_object(void)
{
    BEGIN("object");
    FIELD("ob_type", offsetof(PyObject, ob_type));
    FIELD("ob_size", offsetof(PyVarObject, ob_size));
    FIELD("tp_name", offsetof(PyTypeObject, tp_name));
    FIELD("tp_basicsize", offsetof(PyTypeObject, tp_basicsize));
    FIELD("tp_itemsize", offsetof(PyTypeObject, tp_itemsize));
    FIELD("tp_flags", offsetof(PyTypeObject, tp_flags));
    FIELD("flag_heaptype", Py_TPFLAGS_HEAPTYPE);
    /* Objects of types with these flags carry a pre-header before the GC header: 3.11 keeps the
     * managed dict and values pointers there, 3.12+ also the managed weakref list
     * (_PyType_PreHeaderSize); sys.getsizeof counts it. */
#if defined(Py_TPFLAGS_PREHEADER)
    FIELD("preheader_flags", Py_TPFLAGS_PREHEADER);
    FIELD("preheader_size", 2 * sizeof(PyObject *));
#elif defined(Py_TPFLAGS_MANAGED_DICT)
    FIELD("preheader_flags", Py_TPFLAGS_MANAGED_DICT);
    FIELD("preheader_size", 2 * sizeof(PyObject *));
#else
    FIELD("preheader_flags", 0);
    FIELD("preheader_size", 0);
#endif
    END();
}

/* Generators, coroutines and async generators (3.11+) and frame objects have a tp_itemsize but
 * no ob_size: their __sizeof__ counts the slots their code object's frame needs instead. */
static void print_sizes(void)
{
    BEGIN("sizes");
#if PY_VERSION_HEX >= 0x030B0000
    /* __sizeof__ of all four: basicsize + (co_nlocalsplus + co_stacksize) * sizeof(PyObject *).
     * The three generator kinds share one head, so one set of offsets serves them. */
    _Static_assert(offsetof(PyGenObject, gi_iframe) == offsetof(PyCoroObject, cr_iframe) &&
                       offsetof(PyGenObject, gi_iframe) == offsetof(PyAsyncGenObject, ag_iframe),
                   "generator kinds differ");
    FIELD("gen_basicsize",
          offsetof(PyGenObject, gi_iframe) + offsetof(_PyInterpreterFrame, localsplus));
#if PY_VERSION_HEX < 0x030C0000
    FIELD("gen_code", offsetof(PyGenObject, gi_code));
#else
    NONE("gen_code");
#endif
    FIELD("gen_iframe", offsetof(PyGenObject, gi_iframe));
    FIELD("frame_basicsize",
          offsetof(PyFrameObject, _f_frame_data) + offsetof(_PyInterpreterFrame, localsplus));
    FIELD("frame_frame", offsetof(PyFrameObject, f_frame));
    NONE("frame_code");
#if PY_VERSION_HEX >= 0x030D0000
    FIELD("iframe_code", offsetof(_PyInterpreterFrame, f_executable));
#else
    FIELD("iframe_code", offsetof(_PyInterpreterFrame, f_code));
#endif
#if defined(Py_TAG_BITS)
    FIELD("code_tag_bits", Py_TAG_BITS);
#else
    FIELD("code_tag_bits", 0);
#endif
    FIELD("code_nlocalsplus", offsetof(PyCodeObject, co_nlocalsplus));
    NONE("code_nlocals");
    NONE("code_cellvars");
    NONE("code_freevars");
#else
    /* Only frames: __sizeof__ is sizeof(PyFrameObject) + (extras - 1) * sizeof(PyObject *), extras
     * being co_stacksize + co_nlocals + len(co_cellvars) + len(co_freevars). */
    FIELD("gen_basicsize", 0);
    NONE("gen_code");
    NONE("gen_iframe");
    FIELD("frame_basicsize", sizeof(PyFrameObject));
    NONE("frame_frame");
    FIELD("frame_code", offsetof(PyFrameObject, f_code));
    NONE("iframe_code");
    FIELD("code_tag_bits", 0);
    NONE("code_nlocalsplus");
    FIELD("code_nlocals", offsetof(PyCodeObject, co_nlocals));
    FIELD("code_cellvars", offsetof(PyCodeObject, co_cellvars));
    FIELD("code_freevars", offsetof(PyCodeObject, co_freevars));
#endif
    FIELD("code_stacksize", offsetof(PyCodeObject, co_stacksize));
    END();
}

static void print_debug_offsets(void)
{
    BEGIN("debug_offsets");
#if PY_VERSION_HEX >= 0x030D0000
    typedef _Py_DebugOffsets D;
    FIELD("size", sizeof(D));
    FIELD("version", offsetof(D, version));
    FIELD("free_threaded", offsetof(D, free_threaded));
    FIELD("runtime_size", offsetof(D, runtime_state.size));
    FIELD("runtime_finalizing", offsetof(D, runtime_state.finalizing));
    FIELD("runtime_interpreters_head", offsetof(D, runtime_state.interpreters_head));
    FIELD("interp_size", offsetof(D, interpreter_state.size));
    FIELD("interp_id", offsetof(D, interpreter_state.id));
    FIELD("interp_next", offsetof(D, interpreter_state.next));
    FIELD("interp_threads_head", offsetof(D, interpreter_state.threads_head));
    FIELD("interp_gc", offsetof(D, interpreter_state.gc));
    FIELD("tstate_size", offsetof(D, thread_state.size));
    FIELD("tstate_next", offsetof(D, thread_state.next));
    FIELD("gc_size", offsetof(D, gc.size));
    FIELD("gc_collecting", offsetof(D, gc.collecting));
#if PY_VERSION_HEX >= 0x030F0000
    FIELD("gc_generation_stats_size", offsetof(D, gc.generation_stats_size));
    FIELD("gc_generation_stats", offsetof(D, gc.generation_stats));
#else
    NONE("gc_generation_stats_size");
    NONE("gc_generation_stats");
#endif
    FIELD("pyobject_size", offsetof(D, pyobject.size));
    FIELD("pyobject_ob_type", offsetof(D, pyobject.ob_type));
    FIELD("type_size", offsetof(D, type_object.size));
    FIELD("type_tp_name", offsetof(D, type_object.tp_name));
    FIELD("type_tp_flags", offsetof(D, type_object.tp_flags));
    FIELD("list_size", offsetof(D, list_object.size));
    FIELD("list_ob_size", offsetof(D, list_object.ob_size));
    FIELD("iframe_size", offsetof(D, interpreter_frame.size));
    FIELD("iframe_executable", offsetof(D, interpreter_frame.executable));
#else
    FIELD("size", 0);
#endif
    END();
}

#define SFIELD(name, value) printf("        .%s = %ld,\n", name, (long)(value))
#define BOOL(name, value)   printf("        .%s = %s,\n", name, (value) ? "true" : "false")

#ifdef Py_GIL_DISABLED
/* The byte and bit of a bit-field, found by setting it in a zeroed struct: offsetof cannot. */
static void print_bitfield(const char *byte_name, const char *shift_name, const void *p,
                           size_t size)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < size; i++)
        if (b[i]) {
            FIELD(byte_name, i);
            FIELD(shift_name, __builtin_ctz(b[i]));
            return;
        }
    fprintf(stderr, "genlayout: bit-field %s not found\n", byte_name);
    exit(1);
}
#endif

/* Free-threaded builds keep GC objects in mimalloc's heaps: what gc_visit_heaps
 * (Python/gc_free_threading.c) walks, from the structs of Include/internal/mimalloc. */
static void print_mimalloc(void)
{
#ifdef Py_GIL_DISABLED
    typedef _PyThreadStateImpl T;
    BEGIN("mimalloc");
    BOOL("present", 1);
#if defined(MI_ENCODE_FREELIST)
    BOOL("encoded_freelist", 1);
#else
    BOOL("encoded_freelist", 0);
#endif
    FIELD("tstate_heaps", offsetof(T, mimalloc.heaps));
    FIELD("tstate_initialized", offsetof(T, mimalloc.initialized));
    FIELD("nheaps", _Py_MIMALLOC_HEAP_COUNT);
    FIELD("heap_gc", _Py_MIMALLOC_HEAP_GC);
    FIELD("heap_gc_pre", _Py_MIMALLOC_HEAP_GC_PRE);
    /* gc_visit_heaps_lock_held: objects with Py_TPFLAGS_PREHEADER have two pointers before
     * them; the debug allocator hooks (_PyMem_DebugEnabled(), that is
     * _PyRuntime.allocators.is_debug_enabled) put two size_t before every block's data. */
    FIELD("pre_offset", 2 * sizeof(PyObject *));
    FIELD("debug_offset", 2 * sizeof(size_t));
    FIELD("runtime_debug_enabled", offsetof(_PyRuntimeState, allocators.is_debug_enabled));
    FIELD("interp_abandoned", offsetof(PyInterpreterState, mimalloc.abandoned_pool.abandoned));
    FIELD("interp_abandoned_visited",
          offsetof(PyInterpreterState, mimalloc.abandoned_pool.abandoned_visited));
    FIELD("heap_size", sizeof(mi_heap_t));
    FIELD("heap_pages", offsetof(mi_heap_t, pages));
    FIELD("nqueues", MI_BIN_FULL + 1);
    FIELD("queue_size", sizeof(mi_page_queue_t));
    FIELD("queue_first", offsetof(mi_page_queue_t, first));
    FIELD("heap_thread_delayed_free", offsetof(mi_heap_t, thread_delayed_free));
    FIELD("heap_page_count", offsetof(mi_heap_t, page_count));
    _Static_assert(sizeof(mi_slice_t) == sizeof(mi_page_t), "a slice is a page");
    FIELD("page_size", sizeof(mi_page_t));
    FIELD("page_slice_count", offsetof(mi_page_t, slice_count));
    FIELD("page_slice_offset", offsetof(mi_page_t, slice_offset));
    {
        mi_page_t p;
        memset(&p, 0, sizeof(p));
        p.tag = 1;
        print_bitfield("page_tag_byte", "page_tag_shift", &p, sizeof(p));
    }
    FIELD("page_capacity", offsetof(mi_page_t, capacity));
    FIELD("page_reserved", offsetof(mi_page_t, reserved));
    FIELD("page_free", offsetof(mi_page_t, free));
    FIELD("page_used", offsetof(mi_page_t, used));
    FIELD("page_xblock_size", offsetof(mi_page_t, xblock_size));
    FIELD("page_local_free", offsetof(mi_page_t, local_free));
    FIELD("page_xthread_free", offsetof(mi_page_t, xthread_free));
    FIELD("page_xheap", offsetof(mi_page_t, xheap));
    FIELD("page_next", offsetof(mi_page_t, next));
    FIELD("segment_size", sizeof(mi_segment_t));
    FIELD("segment_abandoned_next", offsetof(mi_segment_t, abandoned_next));
    FIELD("segment_slice_entries", offsetof(mi_segment_t, slice_entries));
    FIELD("segment_slices", offsetof(mi_segment_t, slices));
    FIELD("segment_span", MI_SEGMENT_SIZE);
    FIELD("slice_span", MI_SEGMENT_SLICE_SIZE);
    FIELD("max_slices", MI_SLICES_PER_SEGMENT + 1);
    FIELD("huge_block_size", MI_HUGE_BLOCK_SIZE);
    FIELD("max_blocks", MI_SMALL_PAGE_SIZE / sizeof(void *));
    FIELD("ob_gc_bits", offsetof(PyObject, ob_gc_bits));
    FIELD("bit_tracked", _PyGC_BITS_TRACKED);
    FIELD("bit_unreachable", _PyGC_BITS_UNREACHABLE);
    FIELD("bit_frozen", _PyGC_BITS_FROZEN);
    END();
#endif
}

static void print_list(const char *name, const size_t *v, size_t n, size_t cap)
{
    printf("        .%s = {", name);
    for (size_t i = 0; i < cap; i++)
        if (i < n)
            printf("%lu, ", (unsigned long)v[i]);
        else
            printf("PYL_NONE, ");
    printf("},\n");
}

/* What each followed type's tp_traverse visits (python/traverse.c). */
static void print_refs(void)
{
    BEGIN("refs");
#if PY_VERSION_HEX >= 0x030C0000
    FIELD("modules", offsetof(Interp, imports.modules));
#else
    FIELD("modules", offsetof(Interp, modules));
#endif
    {
        /* The codec registry (Python/codecs.c): search functions (a list), the cache of their
         * answers and the error handlers (dicts), reachable from no module. */
        size_t f[] = {
#if PY_VERSION_HEX >= 0x030D0000
            offsetof(Interp, codecs.search_path),
            offsetof(Interp, codecs.search_cache),
            offsetof(Interp, codecs.error_registry),
#else
            offsetof(Interp, codec_search_path),
            offsetof(Interp, codec_search_cache),
            offsetof(Interp, codec_error_registry),
#endif
        };
        print_list("codec_tables", f, sizeof(f) / sizeof(f[0]), 3);
    }
    FIELD("dict_basicsize", sizeof(PyDictObject));
    FIELD("dict_keys", offsetof(PyDictObject, ma_keys));
    FIELD("dict_values", offsetof(PyDictObject, ma_values));
#if PY_VERSION_HEX >= 0x030B0000
    typedef struct _dictkeysobject K;
    BOOL("keys_log2", 1);
    FIELD("keys_size", offsetof(K, dk_log2_size));
    FIELD("keys_log2_index", offsetof(K, dk_log2_index_bytes));
    FIELD("keys_kind", offsetof(K, dk_kind));
    FIELD("keys_nentries", offsetof(K, dk_nentries));
    FIELD("keys_indices", offsetof(K, dk_indices));
    _Static_assert(DICT_KEYS_GENERAL == 0, "traverse.c takes kind 0 for general keys");
    FIELD("values_values", offsetof(PyDictValues, values));
#else
    /* Before 3.11 struct _dictkeysobject lives in Objects/dict-common.h, not in any installed
     * header: Py_ssize_t dk_refcnt, dk_size; dict_lookup_func dk_lookup; Py_ssize_t dk_usable,
     * dk_nentries; char dk_indices[]. Entries are PyDictKeyEntry {hash, key, value}; the split
     * values are a plain PyObject *[]. The same in 3.8, 3.9 and 3.10. */
    BOOL("keys_log2", 0);
    FIELD("keys_size", sizeof(Py_ssize_t));
    NONE("keys_log2_index");
    NONE("keys_kind");
    FIELD("keys_nentries", 4 * sizeof(Py_ssize_t));
    FIELD("keys_indices", 5 * sizeof(Py_ssize_t));
    FIELD("values_values", 0);
#endif
#if PY_VERSION_HEX >= 0x030D0000
    FIELD("values_capacity", offsetof(PyDictValues, capacity));
    FIELD("values_valid", offsetof(PyDictValues, valid));
    FIELD("values_embedded", offsetof(PyDictValues, embedded));
    /* 3.13.0's PyObject_VisitManagedDict visits valid inline values, else the dict, and its
     * dict_traverse skips embedded values; later releases (gh-130327, checked against Debian's
     * 3.13.5 and 3.13.15's Objects/dictobject.c) visit the dict when there is one, and the dict
     * visits its values. Headers do not say which: the release they come from does, so a 3.13
     * table serves either 3.13.0-3.13.4 or 3.13.5 and later (see main()). Only 3.13.0 and
     * 3.13.5+ headers are at hand, so 3.13.1-3.13.4 share 3.13.0's table; when in that range the
     * change came is not known here. */
    BOOL("managed_dict_first", PY_VERSION_HEX >= 0x030D0500);
    FIELD("flag_inline_values", Py_TPFLAGS_INLINE_VALUES);
#else
    NONE("values_capacity");
    NONE("values_valid");
    NONE("values_embedded");
    BOOL("managed_dict_first", 0);
    FIELD("flag_inline_values", 0);
#endif
    /* The managed dict pointers sit before the GC header: _PyObject_ManagedDictPointer() is
     * ((PyObject **)obj) - 3 from 3.11 on; 3.11's _PyObject_ValuesPointer() is obj - 4; 3.12's
     * _PyDictOrValues_SetValues() stores values - 1 (Include/internal/pycore_object.h). */
#if defined(Py_TPFLAGS_MANAGED_DICT) && defined(MANAGED_DICT_OFFSET)
    /* 3.13+ names it: a free-threaded build has no GC header, so its pre-header (and the dict
     * pointer in it) sits right before the object, at -1 pointer. */
    FIELD("flag_managed_dict", Py_TPFLAGS_MANAGED_DICT);
    SFIELD("managed_dict", MANAGED_DICT_OFFSET);
#elif defined(Py_TPFLAGS_MANAGED_DICT)
    FIELD("flag_managed_dict", Py_TPFLAGS_MANAGED_DICT);
    SFIELD("managed_dict", -3 * (long)sizeof(PyObject *));
#else
    FIELD("flag_managed_dict", 0);
    SFIELD("managed_dict", 0);
#endif
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    SFIELD("managed_values", -4 * (long)sizeof(PyObject *));
#else
    SFIELD("managed_values", 0);
#endif
    BOOL("managed_tagged", PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000);
    FIELD("tp_base", offsetof(PyTypeObject, tp_base));
    FIELD("tp_dict", offsetof(PyTypeObject, tp_dict));
    FIELD("tp_dictoffset", offsetof(PyTypeObject, tp_dictoffset));
    FIELD("tp_mro", offsetof(PyTypeObject, tp_mro));
    FIELD("tp_bases", offsetof(PyTypeObject, tp_bases));
    FIELD("tp_cache", offsetof(PyTypeObject, tp_cache));
#if PY_VERSION_HEX >= 0x03090000
    FIELD("ht_module", offsetof(PyHeapTypeObject, ht_module));
#else
    NONE("ht_module");
#endif
    FIELD("ht_name", offsetof(PyHeapTypeObject, ht_name));
    FIELD("ht_qualname", offsetof(PyHeapTypeObject, ht_qualname));
    FIELD("ht_cached_keys", offsetof(PyHeapTypeObject, ht_cached_keys));
    FIELD("member_size", sizeof(PyMemberDef));
    FIELD("member_type", offsetof(PyMemberDef, type));
    FIELD("member_offset", offsetof(PyMemberDef, offset));
    FIELD("t_object_ex", T_OBJECT_EX);
    FIELD("list_basicsize", sizeof(PyListObject));
    FIELD("list_items", offsetof(PyListObject, ob_item));
    FIELD("tuple_basicsize", sizeof(PyTupleObject) - sizeof(PyObject *));
    FIELD("tuple_items", offsetof(PyTupleObject, ob_item));
    FIELD("set_basicsize", sizeof(PySetObject));
    FIELD("set_table", offsetof(PySetObject, table));
    FIELD("set_mask", offsetof(PySetObject, mask));
    FIELD("setentry_size", sizeof(setentry));
    _Static_assert(offsetof(setentry, key) == 0, "traverse.c reads the key first");
    FIELD("cell_basicsize", sizeof(PyCellObject));
    FIELD("cell_ref", offsetof(PyCellObject, ob_ref));
    FIELD("method_basicsize", sizeof(PyMethodObject));
    FIELD("method_func", offsetof(PyMethodObject, im_func));
    FIELD("method_self", offsetof(PyMethodObject, im_self));
#if PY_VERSION_HEX >= 0x030A0000
    FIELD("module_basicsize", sizeof(PyModuleObject));
    FIELD("module_dict", offsetof(PyModuleObject, md_dict));
#else
    /* Before 3.10 PyModuleObject is private to Objects/moduleobject.c: PyObject_HEAD, md_dict,
     * md_def, md_state, md_weaklist, md_name. */
    FIELD("module_basicsize", sizeof(PyObject) + 5 * sizeof(void *));
    FIELD("module_dict", sizeof(PyObject));
#endif
    FIELD("func_basicsize", sizeof(PyFunctionObject));
    {
        typedef PyFunctionObject F;
        size_t f[] = {
            offsetof(F, func_code),
            offsetof(F, func_globals),
            offsetof(F, func_module),
            offsetof(F, func_defaults),
            offsetof(F, func_kwdefaults),
            offsetof(F, func_doc),
            offsetof(F, func_name),
            offsetof(F, func_dict),
            offsetof(F, func_closure),
            offsetof(F, func_annotations),
            offsetof(F, func_qualname),
#if PY_VERSION_HEX >= 0x030A0000
            offsetof(F, func_builtins),
#endif
#if PY_VERSION_HEX >= 0x030C0000
            offsetof(F, func_typeparams),
#endif
        };
        print_list("func_fields", f, sizeof(f) / sizeof(f[0]), 14);
    }
    /* tb_traverse (Python/traceback.c) visits tb_next and tb_frame. */
    FIELD("traceback_basicsize", sizeof(PyTracebackObject));
    FIELD("traceback_next", offsetof(PyTracebackObject, tb_next));
    FIELD("traceback_frame", offsetof(PyTracebackObject, tb_frame));
    FIELD("weakref_basicsize", sizeof(PyWeakReference));
    FIELD("weakref_object", offsetof(PyWeakReference, wr_object));
#if PY_VERSION_HEX >= 0x030B0000
    NONE("gen_frame");
    FIELD("gen_frame_state", offsetof(PyGenObject, gi_frame_state));
    SFIELD("frame_cleared", FRAME_CLEARED);
#if PY_VERSION_HEX >= 0x030E0000
    NONE("iframe_stacktop");
    FIELD("iframe_stackpointer", offsetof(_PyInterpreterFrame, stackpointer));
#else
    FIELD("iframe_stacktop", offsetof(_PyInterpreterFrame, stacktop));
    NONE("iframe_stackpointer");
#endif
    FIELD("iframe_localsplus", offsetof(_PyInterpreterFrame, localsplus));
    {
        /* _PyFrame_Traverse (Python/frame.c): frame_obj, f_locals, the function and the code
         * (3.14+: stack references, their tag bits cleared), then locals and stack. */
        typedef _PyInterpreterFrame I;
        size_t f[] = {
            offsetof(I, frame_obj),
            offsetof(I, f_locals),
#if PY_VERSION_HEX >= 0x030C0000
            offsetof(I, f_funcobj),
#else
            offsetof(I, f_func),
#endif
#if PY_VERSION_HEX >= 0x030D0000
            offsetof(I, f_executable),
#else
            offsetof(I, f_code),
#endif
        };
        print_list("iframe_fields", f, sizeof(f) / sizeof(f[0]), 4);
    }
    /* frame_traverse (Objects/frameobject.c) visits these members of a frame object, then its
     * _PyInterpreterFrame only when the frame object owns it (the function has returned). */
    {
        typedef PyFrameObject Fr;
        size_t f[] = {
            offsetof(Fr, f_back),
            offsetof(Fr, f_trace),
#if PY_VERSION_HEX >= 0x030D0000
            offsetof(Fr, f_extra_locals),
            offsetof(Fr, f_locals_cache),
#endif
#if PY_VERSION_HEX >= 0x030E0000
            offsetof(Fr, f_overwritten_fast_locals),
#endif
        };
        print_list("frame_fields", f, sizeof(f) / sizeof(f[0]), 8);
    }
    FIELD("iframe_owner", offsetof(_PyInterpreterFrame, owner));
    SFIELD("owned_by_frame_object", FRAME_OWNED_BY_FRAME_OBJECT);
#if defined(Py_INT_TAG)
    /* 3.14+: a stack reference with these low bits is a tagged int, no object
     * (_PyGC_VisitFrameStack skips it). */
    FIELD("stack_int_tag", Py_INT_TAG);
#else
    FIELD("stack_int_tag", 0);
#endif
    NONE("frame_localsplus");
    NONE("frame_valuestack");
    NONE("frame_stacktop");
    NONE("frame_stackdepth");
#else
    FIELD("gen_frame", offsetof(PyGenObject, gi_frame));
    NONE("gen_frame_state");
    SFIELD("frame_cleared", 0);
    NONE("iframe_stacktop");
    NONE("iframe_stackpointer");
    NONE("iframe_localsplus");
    {
        typedef PyFrameObject Fr;
        size_t f[] = {offsetof(Fr, f_back),    offsetof(Fr, f_code),   offsetof(Fr, f_builtins),
                      offsetof(Fr, f_globals), offsetof(Fr, f_locals), offsetof(Fr, f_trace)};
        print_list("frame_fields", f, sizeof(f) / sizeof(f[0]), 8);
    }
    print_list("iframe_fields", NULL, 0, 4);
    NONE("iframe_owner");
    SFIELD("owned_by_frame_object", 0);
    FIELD("stack_int_tag", 0);
    FIELD("frame_localsplus", offsetof(PyFrameObject, f_localsplus));
    FIELD("frame_valuestack", offsetof(PyFrameObject, f_valuestack));
#if PY_VERSION_HEX >= 0x030A0000
    NONE("frame_stacktop");
    FIELD("frame_stackdepth", offsetof(PyFrameObject, f_stackdepth));
#else
    FIELD("frame_stacktop", offsetof(PyFrameObject, f_stacktop));
    NONE("frame_stackdepth");
#endif
#endif
#if PY_VERSION_HEX >= 0x030D0000
    NONE("tstate_frame");
    NONE("tstate_cframe");
    NONE("cframe_current_frame");
    FIELD("tstate_current_frame", offsetof(PyThreadState, current_frame));
#elif PY_VERSION_HEX >= 0x030B0000
    NONE("tstate_frame");
    FIELD("tstate_cframe", offsetof(PyThreadState, cframe));
    FIELD("cframe_current_frame", offsetof(_PyCFrame, current_frame));
    NONE("tstate_current_frame");
#else
    FIELD("tstate_frame", offsetof(PyThreadState, frame));
    NONE("tstate_cframe");
    NONE("cframe_current_frame");
    NONE("tstate_current_frame");
#endif
#if PY_VERSION_HEX >= 0x030B0000
    NONE("frame_back");
    FIELD("iframe_previous", offsetof(_PyInterpreterFrame, previous));
    NONE("code_varnames");
    FIELD("code_localsplusnames", offsetof(PyCodeObject, co_localsplusnames));
#else
    FIELD("frame_back", offsetof(PyFrameObject, f_back));
    NONE("iframe_previous");
    FIELD("code_varnames", offsetof(PyCodeObject, co_varnames));
    NONE("code_localsplusnames");
#endif
    FIELD("code_name", offsetof(PyCodeObject, co_name));
    FIELD("str_length", offsetof(PyASCIIObject, length));
    FIELD("str_state", offsetof(PyASCIIObject, state));
    FIELD("str_ascii_size", sizeof(PyASCIIObject));
    END();
}

int main(int argc, char **argv)
{
    const char *source = argc > 1 ? argv[1] : "unknown";
    unsigned major = (PY_VERSION_HEX >> 24) & 0xff, minor = (PY_VERSION_HEX >> 16) & 0xff;
    /* 3.14.5 brought back the generational GC and grew the GC state from 240 to 264 bytes, so a
     * 3.14 table built from 3.14.5+ headers serves 3.14.5 and later only. */
    unsigned hex_min = (major << 24) | (minor << 16);
    unsigned hex_max = (major << 24) | (minor << 16) | 0xffff;
#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
    /* 3.13.5 and later visit a materialised managed dict before the inline values (gh-130327,
     * refs.managed_dict_first): nothing in the headers or the debug offsets says so, so a 3.13
     * table serves only its side of that release. */
    if (PY_VERSION_HEX >= 0x030D0500)
        hex_min |= 5 << 8;
    else
        hex_max = (major << 24) | (minor << 16) | 0x04ff;
#endif
#if PY_VERSION_HEX >= 0x030E0000 && PY_VERSION_HEX < 0x030F0000
    char name[32];
    if (sizeof(struct _gc_runtime_state) == 264) {
        hex_min |= 5 << 8;
        snprintf(name, sizeof(name), "%u.%u.5+", major, minor);
    } else {
        snprintf(name, sizeof(name), "%u.%u", major, minor);
    }
#else
    char name[32];
    snprintf(name, sizeof(name), "%u.%u", major, minor);
#endif
    /* Debug and free-threaded builds have layouts of their own, named like their binaries. */
#if defined(Py_GIL_DISABLED)
    const bool free_threaded = true;
    strcat(name, "t");
#else
    const bool free_threaded = false;
#endif
#if defined(Py_DEBUG)
    const bool debug = true;
    strcat(name, "d");
#else
    const bool debug = false;
#endif

    printf("{\n");
    printf("    .name = \"%s\",\n", name);
    printf("    .hex_min = 0x%08x,\n", hex_min);
    printf("    .hex_max = 0x%08x,\n", hex_max);
    printf("    .source = \"%s\",\n", source);
    printf("    .debug = %s,\n", debug ? "true" : "false");
    printf("    .free_threaded = %s,\n", free_threaded ? "true" : "false");
    print_runtime();
    print_interp();
    print_gc();
    print_obmalloc();
    print_object();
    print_mimalloc();
    print_sizes();
    print_debug_offsets();
    print_refs();
    printf("},\n");
    return 0;
}
