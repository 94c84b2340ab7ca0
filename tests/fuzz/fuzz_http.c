/* fuzz_http: what the HTTP handlers parse out of a request, without a connection: the request
 * target as sent (control bytes), the process path (/api/v1/processes/<pid>/...), ?top=,
 * ?seconds= of .../history, the Accept and Accept-Encoding headers, and --listen's HOST:PORT. The
 * input is one string: each parser gets all of it, and the path parser what follows the
 * processes prefix when it is one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "pymemd/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Headers and targets reach the handlers NUL-terminated (libmicrohttpd's strings). */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    (void)http_uri_has_control(s);
    SnapFormat f = http_negotiate(s);
    if (f < 0 || f >= SNAP_NFORMATS)
        abort();
    (void)http_accepts_gzip(s);
    long top = http_parse_top(s);
    if (top < -1 || top > 1000000)
        abort();
    /* ?seconds= of .../history: -1, 0 (absent only), or a finite number of seconds above 0. */
    double secs = http_parse_seconds(s);
    if (!(secs == -1 || (secs > 0 && secs <= 315576000.0)))
        abort();

    char host[256];
    unsigned port = 0;
    if (http_parse_listen(s, host, sizeof(host), &port) == 0 &&
        (port == 0 || port > 65535 || strlen(host) >= sizeof(host)))
        abort();

    const char *p = s, *tail = NULL;
    static const char prefix[] = PYMEMD_PATH_PROCESSES "/";
    if (strncmp(s, prefix, sizeof(prefix) - 1) == 0)
        p = s + sizeof(prefix) - 1;
    long pid = http_parse_pid(p, &tail);
    /* A pid the handlers accept is positive, fits a pid_t and leaves "" or "/rest" behind. */
    if (pid >= 0 && (pid == 0 || pid > 0x3fffffff || !tail || (*tail && *tail != '/')))
        abort();
    free(s);
    return 0;
}
