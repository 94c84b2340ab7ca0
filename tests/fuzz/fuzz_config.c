/* fuzz_config: the config file parser (config_load_buffer, the parse config_load_file runs),
 * onto defaults and onto a config that already holds pids and matches, as a reload would. A
 * failed parse must leave the config exactly as it was, and a good one must copy and free
 * cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const Config *a, const Config *b)
{
    if (strcmp(a->listen, b->listen) != 0 || a->npids != b->npids || a->nmatches != b->nmatches ||
        a->interval != b->interval || strcmp(a->census_match, b->census_match) != 0)
        abort();
    for (size_t i = 0; i < a->npids; i++)
        if (a->pids[i] != b->pids[i])
            abort();
    for (size_t i = 0; i < a->nmatches; i++)
        if (strcmp(a->matches[i], b->matches[i]) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    Config c;
    config_init(&c);
    if (config_load_buffer(&c, "fuzz.conf", (const char *)data, size, err, sizeof(err)) == 0) {
        Config copy;
        if (config_copy(&copy, &c) == 0)
            config_done(&copy);
    } else if (!err[0]) {
        abort(); /* every refusal says why */
    }
    config_done(&c);

    Config base, before;
    config_init(&base);
    if (config_set(&base, "pid", "4242", err, sizeof(err)) < 0 ||
        config_set(&base, "match", "^python", err, sizeof(err)) < 0 ||
        config_copy(&before, &base) < 0)
        abort();
    if (config_load_buffer(&base, "fuzz.conf", (const char *)data, size, err, sizeof(err)) < 0)
        check_same(&base, &before);
    config_done(&base);
    config_done(&before);
    return 0;
}
