#include "python/layout.h"

#include <stdio.h>
#include <string.h>

size_t pylayout_find(uint32_t hexversion, bool debug, bool free_threaded, const PyLayout **ret,
                     size_t max, const char **ret_reason)
{
    uint32_t minor_hex = hexversion & 0xffff0000u;

    if (minor_hex < 0x03080000u) {
        *ret_reason = "CPython older than 3.8 is not supported";
        return 0;
    }
    /* 3.14.0-3.14.4 shipped the incremental GC (GC state 240 bytes, generations young/old[2]
     * in a different order); 3.14.5 restored the generational one. No interpreter of the
     * incremental family could be tested here, so it is refused rather than guessed. */
    if (minor_hex == 0x030e0000u && hexversion < 0x030e0500u) {
        *ret_reason = "CPython 3.14.0-3.14.4 (incremental GC layout) is not supported; "
                      "3.14.5 and later are";
        return 0;
    }
    size_t n = 0, of_version = 0;
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        if (hexversion < t->hex_min || hexversion > t->hex_max)
            continue;
        of_version++;
        /* Debug and free-threaded builds have tables of their own ("3.13d", "3.13t"); the flags
         * are the target's word (its debug offsets), so the kinds never stand in for each other. */
        if (t->debug != debug || t->free_threaded != free_threaded)
            continue;
        if (n < max)
            ret[n++] = t;
    }
    if (n > 0)
        return n;
    if (of_version == 0)
        *ret_reason = "no layout table for this CPython version (newer than pymemd knows)";
    else if (free_threaded)
        *ret_reason = "no layout table for this free-threaded CPython version (pymemd reads "
                      "free-threaded 3.13 only)";
    else if (debug)
        *ret_reason = "no layout table for debug builds (Py_DEBUG) of this CPython version";
    else
        *ret_reason = "no layout table for release builds of this CPython version";
    return 0;
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
