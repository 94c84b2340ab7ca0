/* view: reading a PROCESS object of DESIGN.md §4 the way ls, show and top all need it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "jget.h"
#include "util/strbuf.h"

/* A field of generation gen (0, 1, 2) of the PROCESS's gc.generations. */
Num view_gen(const cJSON *proc, int gen, const char *key);
/* The colour of a status: green for ok, red for the others. */
const char *view_status_sgr(const char *status);
/* True when the PROCESS's status is "ok". */
bool view_ok(const cJSON *proc);

/* The PROCESS objects of a {"processes": [...]} document in *ret (an array the caller frees;
 * the objects stay in doc), sorted by pid. Returns 0, -EBADMSG when doc has no such list,
 * -ENOMEM. */
int view_processes(const cJSON *doc, const cJSON ***ret, size_t *ret_n);

/* Appends the line that explains a target whose status is not ok:
 * "pid 4242 (gunicorn): denied: reading its memory needs CAP_SYS_PTRACE". */
void view_problem(StrBuf *b, const cJSON *proc, bool color);

/* The sum of bytes over a census's types (the census has no total of its own); unknown when
 * the list is cut short. */
Num view_census_bytes(const cJSON *census);
/* How many types the census saw: its "ntypes" where the daemon says, else the list's length. */
size_t view_census_ntypes(const cJSON *census);
/* Appends "0: 17, 1: 0, 2: 14,376, permanent: 375" from a census's per-generation totals;
 * false (nothing appended) when it has none. */
bool view_census_generations(StrBuf *b, const cJSON *census);
