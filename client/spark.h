/* spark: a small trend of a series of values in one line of text. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "jget.h"
#include "util/strbuf.h"

/* Appends a sparkline of v[0..n) (oldest first) in exactly width columns: eight heights of
 * the Unicode block elements U+2581..U+2588 when utf8, of the ASCII characters "_.-=+*#@"
 * otherwise, scaled from the lowest to the highest column, so that the shape shows
 * even when the change is small against the whole. With more values than columns, each column
 * is the largest value of its share of the series (for memory the peaks are what matter);
 * with fewer, the line is right-aligned, the newest value in the last column. A column with
 * no known value is a blank; a series that does not change lies flat on the lowest height. */
void spark_append(StrBuf *b, const Num *v, size_t n, size_t width, bool utf8);
