#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static LogLevel log_level = LOG_LEVEL_INFO;

void log_set_level(LogLevel level)
{
    log_level = level;
}

LogLevel log_get_level(void)
{
    return log_level;
}

int log_level_from_string(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    if (strcmp(s, "warning") == 0)
        return LOG_LEVEL_WARN;
    return -EINVAL;
}

void log_msgv(LogLevel level, const char *fmt, va_list ap)
{
    static const char *const tags[] = {"error", "warn", "info", "debug"};
    if (level > log_level)
        return;

    /* One fprintf per line so concurrent threads do not interleave within a line. A message
     * that ends in a newline (libmicrohttpd's do) is not given a second one. */
    char line[2048];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = 0;
    fprintf(stderr, "pymemd: %s: %s\n", tags[level], line);
}

void log_msg(LogLevel level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_msgv(level, fmt, ap);
    va_end(ap);
}

bool log_ratelimit_ok(LogRateLimit *rl, double now, double interval_s, unsigned burst)
{
    if (now - rl->window_start >= interval_s) {
        if (rl->suppressed > 0)
            log_msg(LOG_LEVEL_WARN, "%u similar messages suppressed", rl->suppressed);
        rl->window_start = now;
        rl->count = 0;
        rl->suppressed = 0;
    }
    if (rl->count < burst) {
        rl->count++;
        return true;
    }
    rl->suppressed++;
    return false;
}
