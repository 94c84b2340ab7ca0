/* Logging to stderr with levels. Only top-level code (main, sampler) logs; library modules return
 * -errno and let their caller decide. Strings that come from a target are quoted by the caller. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include "util/macro.h"

typedef enum LogLevel {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
} LogLevel;

void log_set_level(LogLevel level);
LogLevel log_get_level(void);
/* Parses "error", "warn", "info" or "debug". Returns the level, or -EINVAL. */
int log_level_from_string(const char *s);

void log_msg(LogLevel level, const char *fmt, ...) _printf_(2, 3);
void log_msgv(LogLevel level, const char *fmt, va_list ap) _printf_(2, 0);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* A per-source rate limit: at most `burst` messages per `interval_s`; returns true when the caller
 * may log. Used per target so a failing target cannot flood the log. */
typedef struct LogRateLimit {
    double window_start;
    unsigned count;
    unsigned suppressed;
} LogRateLimit;

bool log_ratelimit_ok(LogRateLimit *rl, double now, double interval_s, unsigned burst);
