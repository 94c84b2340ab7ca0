/* heap_seeds: writes the seed corpus of fuzz_heap (tests/fuzz/corpus/heap/), one input per layout
 * table but the free-threaded ones (no generation lists to walk: the census refuses them), as
 * fakeheap_seed() builds it. Run by hand after the layout tables change:
 *   build-fuzz/tests/fuzz/fuzz_heap_seeds tests/fuzz/corpus/heap */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakeheap.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (size_t t = 0; t < pylayout_ntables; t++) {
        const PyLayout *l = &pylayout_tables[t];
        if (l->free_threaded)
            continue;
        uint8_t *in;
        size_t len;
        if (fakeheap_seed(l, &in, &len) < 0)
            return 1;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%02zu-%s", argv[1], t, l->name);
        FILE *out = fopen(path, "wb");
        if (!out || fwrite(in, 1, len, out) != len || fclose(out) != 0) {
            perror(path);
            return 1;
        }
        free(in);
    }
    return 0;
}
