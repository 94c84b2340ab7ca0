#include "python/layout.h"

#include <stdio.h>
#include <string.h>

/* The GC state sizes of the 3.14 layout families, from each family's headers: the incremental GC
 * of 3.14.0–3.14.4 (240 bytes) and the generational GC restored in 3.14.5 (264). */
#define GC_SIZE_314_INCREMENTAL 240

static bool fingerprint_matches(const PyLayout *t, const PyLayoutFingerprint *fp)
{
    return fp->runtime_size == t->runtime.size && fp->interp_size == t->interp.size &&
           fp->gc_size == t->gc.size;
}

const PyLayout *pylayout_find(uint32_t hexversion, const PyLayoutFingerprint *fp,
                              bool free_threaded, const char **ret_reason)
{
    uint32_t minor_hex = hexversion & 0xffff0000u;

    if (minor_hex < 0x03080000u) {
        *ret_reason = "CPython older than 3.8 is not supported";
        return NULL;
    }
    if (minor_hex == 0x030e0000u &&
        (hexversion < 0x030e0500u || (fp && fp->gc_size == GC_SIZE_314_INCREMENTAL))) {
        *ret_reason = "CPython 3.14.0-3.14.4 (incremental GC layout) is not supported; "
                      "3.14.5 and later are";
        return NULL;
    }
    const PyLayout *found = NULL;
    size_t candidates = 0;
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        if (hexversion < t->hex_min || hexversion > t->hex_max)
            continue;
        /* A free-threaded build has tables of its own ("3.13t"); the flag is the target's word
         * (its debug offsets), so the two kinds never stand in for each other. */
        if (t->gc.free_threaded != free_threaded)
            continue;
        candidates++;
        /* With debug offsets, the sizes the target reports must be the table's: that is what
         * picks between layouts of one minor version, and what refuses an unknown one. */
        if (fp && !fingerprint_matches(t, fp))
            continue;
        if (found && !fp) {
            *ret_reason = "several layouts are known for this version and the target does not "
                          "say which it has";
            return NULL;
        }
        found = found ? found : t;
    }
    if (found)
        return found;
    if (!candidates && free_threaded) {
        *ret_reason = "no layout table for this free-threaded CPython version (pymemd reads "
                      "free-threaded 3.13 only)";
        return NULL;
    }
    *ret_reason = candidates ? "the target's struct sizes match no known layout of its version "
                               "(a patch release pymemd has no table for)"
                             : "no layout table for this CPython version (newer than pymemd knows)";
    return NULL;
}

PyLayoutFingerprint pylayout_fingerprint(const PyLayout *t, const uint8_t *dbg, size_t len)
{
    PyLayoutFingerprint fp = {0};
    const typeof(t->debug_offsets) *d = &t->debug_offsets;
    if (d->size == 0 || len < d->size)
        return fp;
    memcpy(&fp.runtime_size, dbg + d->runtime_size, 8);
    memcpy(&fp.interp_size, dbg + d->interp_size, 8);
    memcpy(&fp.gc_size, dbg + d->gc_size, 8);
    return fp;
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
