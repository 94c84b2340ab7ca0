/* fuzz_webconfig: the web config parser (webconfig_parse, exporter-toolkit's YAML format, which
 * reads no file), and what a parsed config is used for: TLS priorities and every user's hash
 * checked to look like bcrypt. A refusal must say why; a success must free cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/webconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    WebConfig c;
    char err[512] = "";
    if (webconfig_parse((const char *)data, size, &c, err, sizeof(err)) < 0) {
        if (!err[0])
            abort(); /* every refusal says why */
        return 0;
    }
    char prio[128];
    webconfig_priorities(&c, prio, sizeof(prio));
    for (size_t i = 0; i < c.nusers; i++)
        if (!c.users[i].name || !webconfig_is_bcrypt(c.users[i].hash))
            abort(); /* the parser lets only bcrypt hashes through */
    for (size_t i = 0; i < c.nheaders; i++)
        if (!c.headers[i].name || !c.headers[i].value)
            abort();
    webconfig_done(&c);
    return 0;
}
