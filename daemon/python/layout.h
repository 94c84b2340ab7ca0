/* pylayout: what pymemd knows about one CPython version's memory layout, as data.
 *
 * One table per CPython minor version and build (release or debug), or per layout family where a
 * patch release or a distribution changed fields pymemd reads (3.14.5 restored the generational
 * GC; Debian's 3.13 aligns PyGC_Head to 4; 3.15.0's GC stats lack update_seq), generated from
 * that version's own headers by python/gen/ and checked in as python/layouts.c. Readers take a
 * PyLayout and never compare version numbers: the only code that does is pylayout_find().
 *
 * On 3.13+ a table is only the starting point: pyloc_apply_debug_offsets() replaces every value
 * the target's own _Py_DebugOffsets carries, and the struct sizes it reports bound reads. The
 * table supplies the rest (GC generations, stats, pymalloc), and the live target confirms it.
 *
 * Offsets are byte offsets; PYL_NONE marks a field the version does not have. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PYL_NONE UINT32_MAX

/* Where the pymalloc (obmalloc) counters live. */
typedef enum PyObmallocKind {
    PYOBM_NONE = 0, /* not reachable */
    PYOBM_SYMBOLS,  /* static globals in Objects/obmalloc.c, found through .symtab (3.8–3.11) */
    PYOBM_EMBEDDED, /* struct _obmalloc_state inside PyInterpreterState (3.12) */
    PYOBM_POINTER,  /* PyInterpreterState holds a pointer to it (3.13+) */
} PyObmallocKind;

/* Where get_stats() numbers come from. */
typedef enum PyGcStatsKind {
    PYGCS_ARRAY = 0, /* struct gc_generation_stats generation_stats[3] (3.8–3.14) */
    PYGCS_RING,      /* per-generation ring of stats entries; the newest is cumulative (3.15+) */
} PyGcStatsKind;

typedef struct PyLayout {
    const char *name; /* "3.11", "3.14.5+" */
    uint32_t hex_min; /* PY_VERSION_HEX range this table serves, inclusive */
    uint32_t hex_max;
    const char *source; /* the headers it was generated from, e.g. "pyenv 3.11.7" */
    bool debug;         /* a Py_DEBUG build (python3.Xd): the interpreter state grows */
    bool free_threaded; /* a Py_GIL_DISABLED build (python3.Xt) */

    struct {
        uint32_t size;
        uint32_t finalizing;        /* non-NULL while Py_FinalizeEx runs */
        uint32_t interpreters_head; /* newest interpreter */
        uint32_t interpreters_main;
        uint32_t gc;                         /* 3.8 only: the GC state lives in the runtime */
        uint32_t obmalloc_interpreter_leaks; /* 3.12+: runtime.obmalloc.interpreter_leaks */
    } runtime;

    struct {
        uint32_t size;
        uint32_t next;
        uint32_t id;
        uint32_t threads_head; /* tstate_head before 3.11, threads.head after */
        uint32_t gc;           /* PYL_NONE on 3.8 (see runtime.gc) */
        uint32_t obmalloc;     /* PYOBM_EMBEDDED: the struct; PYOBM_POINTER: the pointer */
        uint32_t feature_flags;
    } interp;

    struct {
        uint32_t size;
        uint32_t next;
        /* Free-threaded builds (free_threaded): each thread state is a _PyThreadStateImpl of
         * impl_size bytes whose gc.alloc_count (Py_ssize_t) is the thread's share of generation
         * 0's count not yet added to it. 0 in other builds. */
        uint32_t impl_size;
        uint32_t alloc_count;
    } tstate;

    /* struct _gc_runtime_state and its pieces. */
    struct {
        /* On a free-threaded build (free_threaded above; Python/gc_free_threading.c, 3.13t) the
         * same struct, but the generation and permanent heads are unused (zero), frozen objects
         * are marked in their headers, and generation 0's count lags behind each thread's
         * tstate.alloc_count. */
        uint32_t size;
        uint32_t enabled;     /* int */
        uint32_t generations; /* struct gc_generation[ngenerations] */
        uint32_t ngenerations;
        uint32_t generation_size;      /* sizeof(struct gc_generation) */
        uint32_t generation_threshold; /* int, inside struct gc_generation */
        uint32_t generation_count;     /* int, inside struct gc_generation */
        uint32_t head_size;            /* sizeof(PyGC_Head) */
        uint32_t permanent_generation; /* struct gc_generation */
        uint32_t collecting;           /* int */
        uint32_t garbage;              /* PyObject * (a list) */
        uint32_t long_lived_total;
        uint32_t heap_size; /* Py_ssize_t, 3.14+ */
        PyGcStatsKind stats_kind;
        uint32_t stats; /* PYGCS_ARRAY: the array; PYGCS_RING: the pointer to struct gc_stats */
        uint32_t stats_size; /* the array's size, or sizeof(struct gc_stats) */
        /* PYGCS_ARRAY: entry i is at stats + i * stats_entry_size.
         * PYGCS_RING: inside struct gc_stats, generation i's ring is at stats_ring[i].offset,
         * holding stats_ring[i].len entries; stats_ring[i].index is the offset of its int8_t
         * cursor, the newest entry. stats_seq: uint32_t bumped around every update. */
        uint32_t stats_entry_size;
        struct {
            uint32_t offset;
            uint32_t len;
            uint32_t index;
        } stats_ring[3];
        uint32_t stats_seq;
        /* Fields of one stats entry (Py_ssize_t, except duration: double seconds). */
        uint32_t stat_collections;
        uint32_t stat_collected;
        uint32_t stat_uncollectable;
        uint32_t stat_candidates;
        uint32_t stat_duration;
    } gc;

    /* struct _obmalloc_state (3.12+) or the obmalloc.c statics (3.8–3.11). */
    struct {
        PyObmallocKind kind;
        uint32_t state_size;
        uint32_t arenas;                      /* struct arena_object * */
        uint32_t maxarenas;                   /* uint */
        uint32_t narenas_currently_allocated; /* size_t */
        uint32_t narenas_highwater;           /* size_t */
        uint32_t raw_allocated_blocks;        /* Py_ssize_t; PYL_NONE on 3.8 */
        uint32_t arena_object_size;
        uint32_t arena_address;      /* uintptr_t, inside struct arena_object */
        uint32_t arena_pool_address; /* block *, inside struct arena_object */
        uint32_t pool_ref_count;     /* uint, inside struct pool_header */
        uint32_t arena_size;         /* ARENA_SIZE */
        uint32_t pool_size;          /* POOL_SIZE */
        /* PYOBM_SYMBOLS: the .symtab names, without the .lto_priv.N/.N suffix GCC may add. */
        bool counter_symbol; /* 3.8: _Py_AllocatedBlocks is a counter */
    } obmalloc;

    /* Free-threaded builds: where GC-tracked objects live instead of generation lists, mimalloc's
     * heaps (Objects/mimalloc, Include/internal/mimalloc/mimalloc/types.h), as the target's own
     * gc_visit_heaps (Python/gc_free_threading.c) walks them: every thread state's GC heaps and
     * the interpreter's pool of abandoned segments. present false: not this build. Walked by
     * python/mimalloc.c; see there for what each field serves. */
    struct {
        bool present;
        bool encoded_freelist;          /* MI_ENCODE_FREELIST (debug builds): not read, refused */
        uint32_t tstate_heaps;          /* mi_heap_t heaps[] in _PyThreadStateImpl */
        uint32_t tstate_initialized;    /* int, set once the thread's heaps are bound */
        uint32_t nheaps;                /* _Py_MIMALLOC_HEAP_COUNT */
        uint32_t heap_gc;               /* _Py_MIMALLOC_HEAP_GC: GC objects, object at block+0 */
        uint32_t heap_gc_pre;           /* _Py_MIMALLOC_HEAP_GC_PRE: with pre-header */
        uint32_t pre_offset;            /* where the object sits in a GC_PRE block */
        uint32_t debug_offset;          /* more, when the debug allocator hooks are on */
        uint32_t runtime_debug_enabled; /* int _PyRuntime.allocators.is_debug_enabled */
        uint32_t interp_abandoned;      /* mi_tagged_segment_t, in interp->mimalloc */
        uint32_t interp_abandoned_visited; /* mi_segment_t * */
        /* mi_heap_t */
        uint32_t heap_size;
        uint32_t heap_pages; /* mi_page_queue_t pages[nqueues] */
        uint32_t nqueues;    /* MI_BIN_FULL + 1 */
        uint32_t queue_size;
        uint32_t queue_first;
        uint32_t heap_thread_delayed_free; /* mi_block_t *, blocks freed by other threads */
        uint32_t heap_page_count;          /* size_t */
        /* mi_page_t, which is also mi_slice_t: the entries of a segment's slices[] */
        uint32_t page_size;
        uint32_t page_slice_count;  /* uint32_t */
        uint32_t page_slice_offset; /* uint32_t */
        uint32_t page_tag_byte;     /* the byte holding the 4-bit heap tag bit-field */
        uint32_t page_tag_shift;
        uint32_t page_capacity;     /* uint16_t */
        uint32_t page_reserved;     /* uint16_t */
        uint32_t page_free;         /* mi_block_t * */
        uint32_t page_used;         /* uint32_t */
        uint32_t page_xblock_size;  /* uint32_t */
        uint32_t page_local_free;   /* mi_block_t * */
        uint32_t page_xthread_free; /* mi_thread_free_t: a block pointer, 2 flag bits */
        uint32_t page_xheap;        /* mi_heap_t * */
        uint32_t page_next;         /* mi_page_t *, in its queue */
        /* mi_segment_t */
        uint32_t segment_size; /* sizeof(mi_segment_t), slices[] included */
        uint32_t segment_abandoned_next;
        uint32_t segment_slice_entries; /* size_t */
        uint32_t segment_slices;        /* mi_slice_t slices[] */
        uint32_t segment_span;          /* MI_SEGMENT_SIZE: segments are aligned to it */
        uint32_t slice_span;            /* MI_SEGMENT_SLICE_SIZE */
        uint32_t max_slices;            /* MI_SLICES_PER_SEGMENT + 1, the array's length */
        uint32_t huge_block_size;       /* MI_HUGE_BLOCK_SIZE: from it, a page is one block */
        uint32_t max_blocks;            /* blocks a page holds at most (MI_SMALL_PAGE_SIZE / 8) */
        /* PyObject in this build */
        uint32_t ob_gc_bits; /* uint8_t */
        uint32_t bit_tracked, bit_unreachable, bit_frozen;
    } mimalloc;

    /* PyObject and PyTypeObject, for reading lengths and type names. */
    struct {
        uint32_t ob_type;
        uint32_t ob_size; /* PyVarObject */
        uint32_t tp_name;
        uint32_t tp_basicsize;
        uint32_t tp_itemsize;
        uint32_t tp_flags;
        uint32_t flag_heaptype;   /* Py_TPFLAGS_HEAPTYPE */
        uint32_t preheader_flags; /* type flags that give objects a pre-header; 0: none */
        uint32_t preheader_size;  /* its size */
    } object;

    /* Objects whose size is not basicsize + itemsize * |ob_size| (see sizeof_special() in
     * census.c): generators, coroutines and async generators (3.11+) and frame objects. */
    struct {
        uint32_t gen_basicsize;    /* their tp_basicsize; 0: they have no item slots */
        uint32_t gen_code;         /* 3.11: PyCodeObject * in the generator; else PYL_NONE */
        uint32_t gen_iframe;       /* the embedded _PyInterpreterFrame */
        uint32_t frame_basicsize;  /* tp_basicsize of frame */
        uint32_t frame_frame;      /* 3.11+: _PyInterpreterFrame * in a frame object */
        uint32_t frame_code;       /* up to 3.10: PyCodeObject * in a frame object */
        uint32_t iframe_code;      /* f_code (f_executable from 3.13) in _PyInterpreterFrame */
        uint32_t code_tag_bits;    /* low bits to clear from f_executable (_PyStackRef, 3.14+) */
        uint32_t code_nlocalsplus; /* int, 3.11+ */
        uint32_t code_nlocals;     /* int, up to 3.10 */
        uint32_t code_cellvars;    /* tuple *, up to 3.10 */
        uint32_t code_freevars;    /* tuple *, up to 3.10 */
        uint32_t code_stacksize;   /* int */
    } sizes;

    /* 3.13+: where, inside the target's own _Py_DebugOffsets, each value lives, so that the
     * target's word can be read and preferred over the table. size 0: the version has none. */
    struct {
        uint32_t size;
        uint32_t version;
        uint32_t free_threaded;
        uint32_t runtime_size;
        uint32_t runtime_finalizing;
        uint32_t runtime_interpreters_head;
        uint32_t interp_size;
        uint32_t interp_id;
        uint32_t interp_next;
        uint32_t interp_threads_head;
        uint32_t interp_gc;
        uint32_t tstate_size;
        uint32_t tstate_next;
        uint32_t gc_size;
        uint32_t gc_collecting;
        uint32_t gc_generation_stats_size; /* 3.15+ */
        uint32_t gc_generation_stats;      /* 3.15+ */
        uint32_t pyobject_size;
        uint32_t pyobject_ob_type;
        uint32_t type_size;
        uint32_t type_tp_name;
        uint32_t type_tp_flags;
        uint32_t list_size;
        uint32_t list_ob_size; /* PyVarObject's ob_size, as a list has it */
        uint32_t iframe_size;
        uint32_t iframe_executable;
    } debug_offsets;

    /* Following references (python/traverse.c): what each followed type's tp_traverse visits,
     * and the interpreter tables the root chains start from. Static types are known by their
     * tp_name and tp_basicsize (*_basicsize below). */
    struct {
        uint32_t modules; /* PyObject * sys.modules in PyInterpreterState */
        /* PyObject * in PyInterpreterState: the codec registry's search functions (list), search
         * cache and error handlers (dicts) */
        uint32_t codec_tables[3];
        /* PyDictObject and its key table (struct _dictkeysobject; before 3.11 it is private to
         * Objects/dict-common.h, see genlayout.c). */
        uint32_t dict_basicsize;
        uint32_t dict_keys;
        uint32_t dict_values;
        bool keys_log2;           /* 3.11+: dk_log2_size/dk_log2_index_bytes/dk_kind */
        uint32_t keys_size;       /* Py_ssize_t dk_size, or uint8_t dk_log2_size */
        uint32_t keys_log2_index; /* uint8_t dk_log2_index_bytes, 3.11+ */
        uint32_t keys_kind;       /* uint8_t dk_kind, 3.11+; 0 is DICT_KEYS_GENERAL */
        uint32_t keys_nentries;   /* Py_ssize_t */
        uint32_t keys_indices;    /* char dk_indices[] */
        uint32_t values_values;   /* PyObject *values[] inside the split values */
        uint32_t values_capacity; /* uint8_t, 3.13+ */
        uint32_t values_valid;    /* uint8_t, 3.13+ */
        uint32_t values_embedded; /* uint8_t, 3.13+: the values are inline in an object */
        /* 3.13+: whether an object with both a managed dict and valid inline values visits the
         * dict (which then visits the values) rather than the values (the dict skipping them).
         * CPython changed this within 3.13 (gh-130327); see genlayout.c. */
        bool managed_dict_first;
        uint32_t flag_managed_dict;  /* Py_TPFLAGS_MANAGED_DICT; 0 before 3.11 */
        uint32_t flag_inline_values; /* Py_TPFLAGS_INLINE_VALUES, 3.13+; 0 before */
        /* Where a managed dict lives, as a (negative) offset from the object: 3.11 keeps the
         * values pointer beside it (managed_values), 3.12 tags values in the dict slot, 3.13+
         * keeps them inline after tp_basicsize. */
        int32_t managed_dict;
        int32_t managed_values; /* 3.11: PyDictValues *; 0: none */
        bool managed_tagged;    /* 3.12: the dict slot holds values - 1 when its low bit is set */
        /* Types (PyTypeObject, PyHeapTypeObject, PyMemberDef). */
        uint32_t tp_base;
        uint32_t tp_dict;
        uint32_t tp_dictoffset;
        uint32_t tp_mro;
        uint32_t tp_bases;
        uint32_t tp_cache;
        uint32_t ht_module; /* 3.9+ */
        uint32_t ht_name;
        uint32_t ht_qualname;
        uint32_t ht_cached_keys;
        uint32_t member_size;
        uint32_t member_type;
        uint32_t member_offset;
        uint32_t t_object_ex;
        /* Containers. */
        uint32_t list_basicsize, list_items;
        uint32_t tuple_basicsize, tuple_items;
        uint32_t set_basicsize, set_table, set_mask, setentry_size;
        uint32_t cell_basicsize, cell_ref;
        uint32_t method_basicsize, method_func, method_self;
        uint32_t module_basicsize, module_dict;
        uint32_t func_basicsize;
        uint32_t func_fields[14]; /* PyObject * members func_traverse visits; PYL_NONE ends */
        uint32_t traceback_basicsize, traceback_next, traceback_frame;
        uint32_t weakref_basicsize, weakref_object;
        /* Frames (up to 3.10 the generator holds a frame object) and 3.11+ generators. */
        uint32_t gen_frame;           /* up to 3.10: PyFrameObject *gi_frame */
        uint32_t gen_frame_state;     /* 3.11+: int8_t gi_frame_state */
        int32_t frame_cleared;        /* 3.11+: FRAME_CLEARED */
        uint32_t iframe_stacktop;     /* int, 3.11-3.13 */
        uint32_t iframe_stackpointer; /* _PyStackRef *, 3.14+ */
        uint32_t iframe_localsplus;
        uint32_t iframe_fields[4]; /* 3.11+: PyObject * (3.14+: tagged) _PyFrame_Traverse visits */
        /* PyObject * members of a frame object frame_traverse visits: up to 3.10 all of them
         * (then its locals and stack); from 3.11 those besides its _PyInterpreterFrame
         * (sizes.frame_frame), whose locals it visits only when iframe_owner (char) is
         * owned_by_frame_object. */
        uint32_t frame_fields[8];
        uint32_t iframe_owner;
        int32_t owned_by_frame_object;
        uint32_t stack_int_tag; /* 3.14+: low bits of a stack reference that is an int */
        uint32_t frame_localsplus;
        uint32_t frame_valuestack;
        uint32_t frame_stacktop;   /* PyObject **, 3.8-3.9 */
        uint32_t frame_stackdepth; /* int, 3.10 */
        /* Threads' frames, the roots of "thread N: function(): name" chains. Up to 3.10 a
         * thread's frame is a PyFrameObject (tstate_frame, then frame_back); from 3.11 an
         * _PyInterpreterFrame (through tstate_cframe then cframe_current_frame in 3.11-3.12,
         * tstate_current_frame from 3.13; then iframe_previous). */
        uint32_t tstate_frame, tstate_cframe, cframe_current_frame, tstate_current_frame;
        uint32_t frame_back, iframe_previous;
        uint32_t code_name;            /* str co_name */
        uint32_t code_varnames;        /* tuple of local names, up to 3.10 */
        uint32_t code_localsplusnames; /* tuple, 3.11+ */
        /* str (PyASCIIObject), for names: compact ASCII only. */
        uint32_t str_length, str_state, str_ascii_size;
    } refs;
} PyLayout;

/* The generated tables, in python/layouts.c. */
extern const PyLayout pylayout_tables[];
extern const size_t pylayout_ntables;

/* Finds the tables that may describe a target of PY_VERSION_HEX `hexversion` and the given build:
 * every table of its minor version (and patch range) for that build, at most `max`, into ret.
 * Which one the target really has is decided by its debug offsets and the structural checks of
 * python/locate.c, never by this function. Returns how many were found, or 0 with a static
 * English reason in *ret_reason when the version or build is not supported: never a guess. */
size_t pylayout_find(uint32_t hexversion, bool debug, bool free_threaded, const PyLayout **ret,
                     size_t max, const char **ret_reason);

/* The CPython versions and builds this pymemd was verified against live, one per line, as
 * "3.13.5 Debian trixie, static" (python/verified.c, checked by the integration matrix). */
extern const char *const pylayout_verified[];
extern const size_t pylayout_nverified;

/* Formats a PY_VERSION_HEX as "3.11.2", "3.15.0a3" etc. into buf. */
void pylayout_format_version(uint32_t hexversion, char *buf, size_t size);
