/* table: a grid of cleaned strings, printed with columns as wide as their widest cell. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "table.h"

typedef struct Cell {
    char *text; /* cleaned for the terminal */
    const char *sgr;
} Cell;

struct Table {
    const TableCol *cols;
    size_t ncols;
    Cell *cells; /* rows * ncols, row-major */
    size_t rows, cap_rows;
    size_t filled; /* cells of the current row so far */
    bool oom;
};

Table *table_new(const TableCol *cols, size_t ncols)
{
    Table *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->cols = cols;
    t->ncols = ncols;
    return t;
}

Table *table_free(Table *t)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i].text);
    free(t->cells);
    free(t);
    return NULL;
}

void table_row(Table *t)
{
    if (t->oom)
        return;
    if (t->rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
        Cell *c = reallocarray(t->cells, cap * t->ncols, sizeof(*c));
        if (!c) {
            t->oom = true;
            return;
        }
        t->cells = c;
        t->cap_rows = cap;
    }
    memset(&t->cells[t->rows * t->ncols], 0, t->ncols * sizeof(Cell));
    t->rows++;
    t->filled = 0;
}

void table_cell(Table *t, const char *text, const char *sgr)
{
    StrBuf b = {0};
    Cell *c;

    if (t->oom || t->rows == 0 || t->filled >= t->ncols)
        return;
    c = &t->cells[(t->rows - 1) * t->ncols + t->filled++];
    fmt_clean(&b, text);
    c->text = fmt_take(&b, NULL);
    c->sgr = sgr;
    if (!c->text)
        t->oom = true;
}

size_t table_rows(const Table *t)
{
    return t->rows;
}

static size_t col_width(const Table *t, size_t col)
{
    size_t w = fmt_width(t->cols[col].header);

    for (size_t r = 0; r < t->rows; r++) {
        const char *s = t->cells[r * t->ncols + col].text;
        if (s)
            w = MAX(w, fmt_width(s));
    }
    if (t->cols[col].max_width)
        w = MIN(w, t->cols[col].max_width);
    return w;
}

/* Appends one line: the cells (or the headers when cells is NULL), each in its column. A last
 * left-aligned column is not padded, so lines carry no trailing blanks. */
static void put_line(const Table *t, StrBuf *b, const Cell *cells, const size_t *widths, bool color,
                     size_t indent)
{
    for (size_t i = 0; i < indent; i++)
        strbuf_puts(b, " ");
    for (size_t col = 0; col < t->ncols; col++) {
        const char *text = cells ? cells[col].text : t->cols[col].header;
        const char *sgr = cells ? cells[col].sgr : SGR_BOLD;
        bool last = col + 1 == t->ncols;
        size_t width = (last && !t->cols[col].right) ? MIN(fmt_width(text ? text : ""), widths[col])
                                                     : widths[col];
        StrBuf cell = {0};
        char *s;

        if (col > 0)
            strbuf_puts(b, "  ");
        fmt_fit(&cell, text ? text : "", width, !t->cols[col].right);
        s = fmt_take(&cell, NULL);
        fmt_sgr(b, color, sgr, s ? s : "");
        free(s);
    }
    strbuf_puts(b, "\n");
}

int table_print(const Table *t, FILE *f, bool color, size_t indent)
{
    _cleanup_(freep) size_t *widths = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
    StrBuf b = {0};
    char *s;
    size_t len;

    if (t->oom || !widths)
        return -ENOMEM;
    for (size_t col = 0; col < t->ncols; col++)
        widths[col] = col_width(t, col);
    put_line(t, &b, NULL, widths, color, indent);
    for (size_t r = 0; r < t->rows; r++)
        put_line(t, &b, &t->cells[r * t->ncols], widths, color, indent);
    s = fmt_take(&b, &len);
    if (!s)
        return -ENOMEM;
    fwrite(s, 1, len, f);
    free(s);
    return 0;
}
