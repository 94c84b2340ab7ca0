/* errmsg: the error sentence of a parser (config, web config): written into the caller's
 * buffer, with the -errno to return, so an error path is one statement. */
#pragma once

#include <stddef.h>

#include "util/macro.h"

/* Formats the message into err (errlen bytes, NUL-terminated when errlen > 0) and returns r. */
int errmsg(char *err, size_t errlen, int r, const char *fmt, ...) _printf_(4, 5);
