/* traverse: references followed in a fake heap laid out by each generated table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "python/layout.h"
#include "python/traverse.h"

#define BASE 0x10000000ull
#define SIZE 65536

static uint8_t mem[SIZE];

/* The fake copy: BASE..BASE+SIZE, anything else unmapped. */
static int fake_read(void *rctx, uint64_t addr, void *buf, size_t len)
{
    (void)rctx;
    if (addr < BASE || addr + len > BASE + SIZE)
        return -EFAULT;
    memcpy(buf, mem + (addr - BASE), len);
    return 0;
}

static void put64(uint64_t addr, uint64_t v)
{
    memcpy(mem + (addr - BASE), &v, 8);
}

static void put8(uint64_t addr, uint8_t v)
{
    mem[addr - BASE] = v;
}

/* A static type object named name at addr with the given basicsize. */
static void make_type(const PyLayout *l, uint64_t addr, const char *name, int64_t basicsize)
{
    uint64_t s = addr + 0x400;
    memcpy(mem + (s - BASE), name, strlen(name) + 1);
    put64(addr + l->object.tp_name, s);
    put64(addr + l->object.tp_basicsize, (uint64_t)basicsize);
    put64(addr + l->object.tp_itemsize, 0);
    put64(addr + l->object.tp_flags, 0);
}

typedef struct Seen {
    uint64_t refs[64], keys[64];
    int n, weak;
} Seen;

static int record(void *ud, uint64_t ref, uint64_t key, bool weak)
{
    Seen *s = ud;
    if (weak) {
        s->weak++;
        return 0;
    }
    s->keys[s->n] = key;
    s->refs[s->n++] = ref;
    return 0;
}

static void test_dict_and_list(void **state)
{
    (void)state;
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *l = &pylayout_tables[i];
        memset(mem, 0, sizeof(mem));
        uint64_t dict_type = BASE + 0x1000, list_type = BASE + 0x2000, odd_type = BASE + 0x3000;
        make_type(l, dict_type, "dict", l->refs.dict_basicsize);
        make_type(l, list_type, "list", l->refs.list_basicsize);
        make_type(l, odd_type, "ext.Odd", 64);

        /* A combined dict of 4 slots: entries k0->v0, a deleted one, k2->v2. */
        uint64_t d = BASE + 0x4000, keys = BASE + 0x5000, entries;
        put64(d + l->object.ob_type, dict_type);
        put64(d + l->refs.dict_keys, keys);
        put64(d + l->refs.dict_values, 0);
        put64(keys + l->refs.keys_nentries, 3);
        uint64_t esize = 24, koff = 8, voff = 16;
        if (l->refs.keys_log2) {
            put8(keys + l->refs.keys_size, 3);       /* 8 index slots */
            put8(keys + l->refs.keys_log2_index, 3); /* of one byte */
            put8(keys + l->refs.keys_kind, 0);       /* general: {hash, key, value} */
            entries = keys + l->refs.keys_indices + 8;
        } else {
            put64(keys + l->refs.keys_size, 8);
            entries = keys + l->refs.keys_indices + 8; /* one-byte indices */
        }
        uint64_t k0 = BASE + 0x7000, v0 = BASE + 0x7100, k2 = BASE + 0x7200, v2 = BASE + 0x7300;
        put64(entries + 0 * esize + koff, k0);
        put64(entries + 0 * esize + voff, v0);
        put64(entries + 1 * esize + koff, BASE + 0x7400); /* deleted: a dummy key, no value */
        put64(entries + 2 * esize + koff, k2);
        put64(entries + 2 * esize + voff, v2);

        _cleanup_(traverser_freep) Traverser *t = NULL;
        assert_int_equal(traverser_new(l, fake_read, NULL, &t), 0);
        Seen s = {0};
        assert_int_equal(traverser_visit(t, d, dict_type, record, &s), 0);
        assert_int_equal(s.n, 4);
        assert_true(s.refs[0] == v0 && s.keys[0] == k0 && s.refs[1] == k0);
        assert_true(s.refs[2] == v2 && s.keys[2] == k2 && s.refs[3] == k2);

        /* A split dict: its values array, as many as the keys have entries. */
        uint64_t values = BASE + 0x6000;
        put64(d + l->refs.dict_values, values);
        put64(values + l->refs.values_values + 0, v0);
        put64(values + l->refs.values_values + 8, 0);
        put64(values + l->refs.values_values + 16, v2);
        memset(&s, 0, sizeof(s));
        assert_int_equal(traverser_visit(t, d, dict_type, record, &s), 0);
        assert_int_equal(s.n, 2);
        assert_true(s.refs[0] == v0 && s.refs[1] == v2);

        /* A list of 3 items, one of them twice. */
        uint64_t lst = BASE + 0x8000, items = BASE + 0x8100;
        put64(lst + l->object.ob_type, list_type);
        put64(lst + l->object.ob_size, 3);
        put64(lst + l->refs.list_items, items);
        put64(items, v0), put64(items + 8, v2), put64(items + 16, v0);
        memset(&s, 0, sizeof(s));
        assert_int_equal(traverser_visit(t, lst, list_type, record, &s), 0);
        assert_int_equal(s.n, 3);
        assert_true(s.refs[0] == v0 && s.refs[1] == v2 && s.refs[2] == v0);

        /* A list whose items are unmapped, a corrupt size, an unknown type. */
        put64(lst + l->refs.list_items, 0x50);
        assert_int_equal(traverser_visit(t, lst, list_type, record, &s), -EFAULT);
        put64(lst + l->refs.list_items, items);
        put64(lst + l->object.ob_size, (uint64_t)-5);
        assert_int_equal(traverser_visit(t, lst, list_type, record, &s), -EIO);
        assert_int_equal(traverser_visit(t, BASE + 0x9000, odd_type, record, &s), -ENOTSUP);

        /* A dict named "dict" whose basic size is not the table's is not followed. */
        make_type(l, BASE + 0xa000, "dict", l->refs.dict_basicsize + 8);
        assert_int_equal(traverser_visit(t, d, BASE + 0xa000, record, &s), -ENOTSUP);
    }
}

static void put32(uint64_t addr, uint32_t v)
{
    memcpy(mem + (addr - BASE), &v, 4);
}

/* 3.11+ frame objects: their own members always; the locals and stack of their frame only once
 * they own it, tagged ints (3.14+) skipped and tag bits cleared; a traceback's next and frame. */
static void test_frame_and_traceback(void **state)
{
    (void)state;
    int tested = 0;
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *l = &pylayout_tables[i];
        if (l->refs.iframe_owner == PYL_NONE)
            continue;
        tested++;
        memset(mem, 0, sizeof(mem));
        uint64_t frame_type = BASE + 0x1000, tb_type = BASE + 0x2000;
        make_type(l, frame_type, "frame", l->sizes.frame_basicsize);
        make_type(l, tb_type, "traceback", l->refs.traceback_basicsize);
        uint64_t f = BASE + 0x4000, iframe = f + 0x100, back = BASE + 0x7000, trace = BASE + 0x7100;
        uint64_t func = BASE + 0x7200, code = BASE + 0x7300, local = BASE + 0x7400;
        uint64_t held = BASE + 0x7500;
        put64(f + l->object.ob_type, frame_type);
        put64(f + l->refs.frame_fields[0], back);  /* f_back */
        put64(f + l->refs.frame_fields[1], trace); /* f_trace */
        put64(f + l->sizes.frame_frame, iframe);
        put64(iframe + l->refs.iframe_fields[2], func | (l->sizes.code_tag_bits & 1));
        put64(iframe + l->refs.iframe_fields[3], code);
        uint64_t locals = iframe + l->refs.iframe_localsplus;
        put64(locals, local);
        put64(locals + 8, l->refs.stack_int_tag ? (42u << 2) | l->refs.stack_int_tag : 0);
        put64(locals + 16, held | (l->sizes.code_tag_bits & 1));
        if (l->refs.iframe_stacktop != PYL_NONE)
            put32(iframe + l->refs.iframe_stacktop, 3);
        else
            put64(iframe + l->refs.iframe_stackpointer, locals + 24);

        _cleanup_(traverser_freep) Traverser *t = NULL;
        assert_int_equal(traverser_new(l, fake_read, NULL, &t), 0);
        /* Running (owned by its thread): its members only. */
        put8(iframe + l->refs.iframe_owner, 0);
        Seen s = {0};
        assert_int_equal(traverser_visit(t, f, frame_type, record, &s), 0);
        assert_int_equal(s.n, 2);
        assert_true(s.refs[0] == back && s.refs[1] == trace);
        /* Returned (owned by the frame object): then its frame, as _PyFrame_Traverse. */
        put8(iframe + l->refs.iframe_owner, (uint8_t)l->refs.owned_by_frame_object);
        memset(&s, 0, sizeof(s));
        assert_int_equal(traverser_visit(t, f, frame_type, record, &s), 0);
        assert_int_equal(s.n, 6);
        assert_true(s.refs[2] == func && s.refs[3] == code);
        assert_true(s.refs[4] == local && s.refs[5] == held);

        uint64_t tb = BASE + 0x9000, next = BASE + 0x9100;
        put64(tb + l->object.ob_type, tb_type);
        put64(tb + l->refs.traceback_next, next);
        put64(tb + l->refs.traceback_frame, f);
        memset(&s, 0, sizeof(s));
        assert_int_equal(traverser_visit(t, tb, tb_type, record, &s), 0);
        assert_int_equal(s.n, 2);
        assert_true(s.refs[0] == next && s.refs[1] == f);
    }
    assert_true(tested > 0);
}

/* A deque's blocks come after the PyVarObject head, which is 8 bytes more than ob_size's offset:
 * 24 bytes, or 40 on a free-threaded build. Three items from index 62: two in the first block,
 * one in the next. */
static void test_deque(void **state)
{
    (void)state;
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *l = &pylayout_tables[i];
        memset(mem, 0, sizeof(mem));
        uint64_t deque_type = BASE + 0x1000, q = BASE + 0x2000, b1 = BASE + 0x3000,
                 b2 = BASE + 0x4000, head = l->object.ob_size + 8;
        make_type(l, deque_type, "collections.deque", 1000);
        put64(q + l->object.ob_type, deque_type);
        put64(q + l->object.ob_size, 3);
        put64(q + head, b1);      /* leftblock */
        put64(q + head + 8, b2);  /* rightblock */
        put64(q + head + 16, 62); /* leftindex */
        put64(q + head + 24, 0);  /* rightindex */
        put64(b1 + 8 + 62 * 8, BASE + 0x100);
        put64(b1 + 8 + 63 * 8, BASE + 0x108);
        put64(b1 + 8 + 64 * 8, b2); /* rightlink */
        put64(b2 + 8, BASE + 0x110);
        _cleanup_(traverser_freep) Traverser *t = NULL;
        assert_int_equal(traverser_new(l, fake_read, NULL, &t), 0);
        Seen s = {0};
        assert_int_equal(traverser_visit(t, q, deque_type, record, &s), 0);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.refs[0], BASE + 0x100);
        assert_int_equal(s.refs[1], BASE + 0x108);
        assert_int_equal(s.refs[2], BASE + 0x110);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict_and_list),
        cmocka_unit_test(test_frame_and_traceback),
        cmocka_unit_test(test_deque),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
