#include "python/layout.h"

#include <stdio.h>

/* The GC state sizes of the 3.14 layout families, from each family's headers: the incremental GC
 * of 3.14.0–3.14.4 (240 bytes) and the generational GC restored in 3.14.5 (264). */
#define GC_SIZE_314_INCREMENTAL 240

const PyLayout *pylayout_find(uint32_t hexversion, uint64_t gc_size, bool free_threaded,
                              const char **ret_reason)
{
    uint32_t minor_hex = hexversion & 0xffff0000u;

    if (free_threaded) {
        *ret_reason = "free-threaded CPython builds are not supported (no GC lists to read, "
                      "mimalloc heaps instead of pymalloc)";
        return NULL;
    }
    if (minor_hex < 0x03080000u) {
        *ret_reason = "CPython older than 3.8 is not supported";
        return NULL;
    }
    if (minor_hex == 0x030e0000u && (hexversion < 0x030e0500u ||
                                     gc_size == GC_SIZE_314_INCREMENTAL)) {
        *ret_reason = "CPython 3.14.0-3.14.4 (incremental GC layout) is not supported; "
                      "3.14.5 and later are";
        return NULL;
    }
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        if (hexversion < t->hex_min || hexversion > t->hex_max)
            continue;
        /* A target that states its GC state size must match the table's, or the table was
         * built for another layout family. */
        if (gc_size != 0 && gc_size != t->gc.size) {
            *ret_reason = "the target's GC state size differs from every known layout of its "
                          "version";
            return NULL;
        }
        return t;
    }
    *ret_reason = "no layout table for this CPython version (newer than pymemd knows)";
    return NULL;
}

void pylayout_format_version(uint32_t hexversion, char *buf, size_t size)
{
    unsigned major = hexversion >> 24, minor = (hexversion >> 16) & 0xff,
             micro = (hexversion >> 8) & 0xff, level = (hexversion >> 4) & 0xf,
             serial = hexversion & 0xf;
    /* PY_RELEASE_LEVEL_*: 0xA alpha, 0xB beta, 0xC candidate, 0xF final. */
    const char *tag = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : NULL;
    if (tag)
        snprintf(buf, size, "%u.%u.%u%s%u", major, minor, micro, tag, serial);
    else
        snprintf(buf, size, "%u.%u.%u", major, minor, micro);
}
