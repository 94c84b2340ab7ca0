/* table: aligned columns for people, sized to their contents. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct TableCol {
    const char *header;
    bool right;       /* numbers are right-aligned, text left-aligned */
    size_t max_width; /* longer cells are cut with an ellipsis; 0: no limit */
} TableCol;

typedef struct Table Table;

/* Returns a table with ncols columns described by cols (which must outlive it), or NULL when
 * out of memory. Free with table_free(). */
Table *table_new(const TableCol *cols, size_t ncols);
/* NULL-safe; returns NULL. */
Table *table_free(Table *t);

/* Starts a new row; the cells that follow fill it from the left. */
void table_row(Table *t);
/* Adds a cell to the current row. text comes from anywhere (it is cleaned for the terminal
 * here); sgr is the colour for the cell when colour is on, or NULL. Cells beyond the last
 * column are dropped. */
void table_cell(Table *t, const char *text, const char *sgr);
/* Number of rows added so far. */
size_t table_rows(const Table *t);

/* Prints the header (bold when color) and the rows, each line started by indent spaces and
 * the columns two spaces apart. Returns 0, or -ENOMEM when a cell could not be stored. */
int table_print(const Table *t, FILE *f, bool color, size_t indent);
