/* fuzz_maps: the /proc/PID/maps parser, and the lookups that bound every size pymemd takes from
 * a target (maps_find, maps_readable, maps_anon_readable, maps_anon_total) over what it parsed,
 * at addresses taken from the entries themselves and from the input's first bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc/maps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    Maps *m = NULL;
    int r = maps_parse(s, &m);
    free(s);
    if (r < 0) {
        if (r != -EINVAL && r != -ENOMEM)
            abort();
        return 0;
    }
    uint64_t probe[2] = {0, 0};
    memcpy(probe, data, size < sizeof(probe) ? size : sizeof(probe));
    for (size_t i = 0; i < m->n; i++) {
        const MapsEntry *e = &m->v[i];
        if (e->start > e->end || (i > 0 && m->v[i - 1].start > e->start))
            abort(); /* maps_find's binary search relies on the order */
        if (maps_find(m, e->start) == NULL && e->end > e->start)
            abort();
        (void)maps_readable(m, e->start, e->end - e->start);
        (void)maps_anon_readable(m, e->start, e->end - e->start + 1);
        (void)maps_is_anonymous(e);
    }
    const MapsEntry *e = maps_find(m, probe[0]);
    if (e && (probe[0] < e->start || probe[0] >= e->end))
        abort();
    (void)maps_readable(m, probe[0], probe[1]);
    (void)maps_anon_readable(m, probe[0], probe[1]);
    (void)maps_anon_total(m);
    maps_free(m);
    return 0;
}
