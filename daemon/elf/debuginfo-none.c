/* debuginfo without libdebuginfod: every fetch fails, saying why. */
#include "elf/debuginfo.h"

#include <errno.h>
#include <stdio.h>

int debuginfo_fetch(const uint8_t *id, size_t len, unsigned timeout_s, int *ret_fd, char *why,
                    size_t whylen)
{
    (void)id;
    (void)len;
    (void)timeout_s;
    (void)ret_fd;
    snprintf(why, whylen, "pymemd was built without libdebuginfod");
    return -ENOSYS;
}

void debuginfo_set_background(bool on)
{
    (void)on;
}

unsigned debuginfo_generation(void)
{
    return 0;
}
