/* utf8: makes text from a target (comm, command line) safe for JSON and label values. */
#pragma once

#include <stddef.h>

/* Copies src into dst (size bytes, always NUL-terminated), replacing each byte that is not part
 * of a valid UTF-8 sequence (a stray byte, an overlong or surrogate form, a sequence cut short
 * by the end of the string) with U+FFFD. Never splits a character when cutting to size.
 * Returns the length written. */
size_t utf8_sanitize(char *dst, size_t size, const char *src);
