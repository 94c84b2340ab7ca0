/* spark: sparklines. */
#include <math.h>

#include "spark.h"
#include "util/macro.h"

/* U+2581 LOWER ONE EIGHTH BLOCK to U+2588 FULL BLOCK, in UTF-8. */
static const char *const blocks[8] = {
    "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
    "\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88",
};
static const char ascii[8] = {'_', '.', '-', '=', '+', '*', '#', '@'};

/* The largest known value of v[from..to), or -INFINITY when none is known. */
static double peak(const Num *v, size_t from, size_t to)
{
    double top = -INFINITY;

    for (size_t k = from; k < to; k++)
        if (v[k].ok && isfinite(v[k].v))
            top = fmax(top, v[k].v);
    return top;
}

void spark_append(StrBuf *b, const Num *v, size_t n, size_t width, bool utf8)
{
    double lo = INFINITY, hi = -INFINITY;
    size_t shown = MIN(n, width);

    /* Column i covers v[i * n / shown .. (i + 1) * n / shown); the scale is that of the
     * columns, so that the lowest column shown is the lowest height. */
    for (size_t i = 0; i < shown; i++) {
        double top = peak(v, i * n / shown, (i + 1) * n / shown);
        if (top != -INFINITY) {
            lo = fmin(lo, top);
            hi = fmax(hi, top);
        }
    }
    for (size_t i = shown; i < width; i++)
        strbuf_puts(b, " ");
    for (size_t i = 0; i < shown; i++) {
        double top = peak(v, i * n / shown, (i + 1) * n / shown);
        int level;

        if (top == -INFINITY) {
            strbuf_puts(b, " ");
            continue;
        }
        level = hi > lo ? (int)lround((top - lo) / (hi - lo) * 7) : 0;
        level = MAX(0, MIN(7, level));
        if (utf8)
            strbuf_puts(b, blocks[level]);
        else
            strbuf_append(b, &ascii[level], 1);
    }
}
