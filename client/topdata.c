/* topdata: what pymemctl top knows of each process: the list of the last refresh, the sample
 * before it, and the history (GET /api/v1/processes/{pid}/history, DESIGN.md 4.2). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymemd/api.h"
#include "top.h"
#include "util/clock.h"
#include "view.h"

static void memo_clear(Memo *m)
{
    free(m->hist);
    m->hist = NULL;
    m->nhist = 0;
}

void topdata_free(Top *t)
{
    for (size_t i = 0; i < t->nmemo; i++)
        memo_clear(&t->memo[i]);
    free(t->memo);
    t->memo = NULL;
    t->nmemo = 0;
}

Memo *topdata_memo(const Top *t, const cJSON *proc)
{
    for (size_t i = 0; i < t->nmemo; i++)
        if (t->memo[i].proc == proc)
            return &t->memo[i];
    return NULL;
}

static bool same_process(const Memo *m, const cJSON *proc)
{
    Num pid = jnum(proc, "pid"), start = jnum(proc, "start_time");

    /* Without a start time (not read), the pid alone. */
    if (!pid.ok || pid.v != m->pid)
        return false;
    return start.ok ? start.v == m->start_time : isnan(m->start_time);
}

/* One memo per process of the new list: carried over from the last refresh for a process
 * seen before, so that its previous sample is kept. A sample equal in time to the last one
 * (the daemon has not sampled since) does not replace it, so that a change is between two
 * different samples. */
static int memos_update(Top *t, const cJSON *doc)
{
    const cJSON *list = jarray(doc, "processes"), *p;
    size_t n = (size_t)cJSON_GetArraySize(list), k = 0;
    Memo *next = calloc(n + 1, sizeof(*next));

    if (!next)
        return -ENOMEM;
    cJSON_ArrayForEach(p, list)
    {
        Memo *m = &next[k++];
        TrendSample s = trend_of_process(p);
        Num pid = jnum(p, "pid"), start = jnum(p, "start_time");

        m->pid = pid.ok ? (long)pid.v : -1;
        m->start_time = start.ok ? start.v : NAN;
        m->proc = p;
        m->cur = s;
        for (size_t i = 0; i < t->nmemo; i++) {
            Memo *old = &t->memo[i];

            if (old->pid < 0 || !same_process(old, p))
                continue;
            *m = *old;
            m->proc = p;
            if (s.t != old->cur.t) {
                m->prev = old->cur;
                m->has_prev = true;
                m->cur = s;
            }
            old->hist = NULL; /* moved */
            old->pid = -1;
            break;
        }
    }
    topdata_free(t);
    t->memo = next;
    t->nmemo = k;
    return 0;
}

/* A whole history is fetched again only this often: an hour of samples is thousands of
 * entries, of which a refresh every second needs one new one, and the list brings that. */
#define HISTORY_REFETCH_SECONDS 10.0

/* Between fetches of its history, the samples the list brings extend it. */
static int memo_extend(Memo *m)
{
    TrendSample *s;

    if (m->nhist == 0 || !(m->cur.t > m->hist[m->nhist - 1].t))
        return 0;
    s = reallocarray(m->hist, m->nhist + 1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s[m->nhist++] = m->cur;
    m->hist = s;
    return 0;
}

/* Fetches one process's history into its memo. Returns CTL_EXIT_OK, or the failure's exit
 * code; a pymemd without the endpoint turns the history off for good. */
static int fetch_history(Top *t, Memo *m)
{
    char path[128];
    CtlAnswer a;
    TrendSample *s = NULL;
    size_t n = 0;
    int code;

    snprintf(path, sizeof(path), "%s/%ld/history", PYMEMD_PATH_PROCESSES, m->pid);
    code = ctl_get(t->ctl, path, CTL_TIMEOUT_MS, &a);
    if (code == CTL_EXIT_OK && trend_parse(a.json, &s, &n) == 0) {
        memo_clear(m);
        m->hist = s;
        m->nhist = n;
        m->hist_at = clock_mono();
        t->history = HISTORY_YES;
        t->history_error[0] = '\0';
    } else if (code == CTL_EXIT_OK) {
        snprintf(t->history_error, sizeof(t->history_error),
                 "%s%s: the answer has no \"samples\" list", t->ctl->url, path);
        memo_clear(m);
    } else if (a.status == 404 && strstr(a.msg, "no such path")) {
        /* A pymemd older than the history says so of the path, not of the process. */
        t->history = HISTORY_NO;
        memo_clear(m);
    } else {
        /* The process may have just gone; a daemon that went away shows in the next list. */
        snprintf(t->history_error, sizeof(t->history_error), "%s", a.msg);
        memo_clear(m);
    }
    ctl_answer_clear(&a);
    return code;
}

/* Fetches the list again, and the history of each process that can be read. Returns
 * CTL_EXIT_OK, or the exit code of the failure with its message in t->error; the last good
 * data stays on screen meanwhile. */
int topdata_fetch(Top *t)
{
    CtlAnswer a;
    int code = ctl_get(t->ctl, PYMEMD_PATH_PROCESSES, CTL_TIMEOUT_MS, &a);

    if (code == CTL_EXIT_OK && jarray(a.json, "processes")) {
        if (memos_update(t, a.json) < 0) {
            code = CTL_EXIT_DAEMON;
            snprintf(t->error, sizeof(t->error), "out of memory");
        } else {
            cJSON_Delete(t->doc);
            t->doc = TAKE_PTR(a.json);
            t->fetched_at = clock_real();
            t->error[0] = '\0';
        }
    } else if (code == CTL_EXIT_OK) {
        code = CTL_EXIT_DAEMON;
        snprintf(t->error, sizeof(t->error), "%s%s: the answer has no \"processes\" list",
                 t->ctl->url, PYMEMD_PATH_PROCESSES);
    } else {
        snprintf(t->error, sizeof(t->error), "%s", a.msg);
    }
    ctl_answer_clear(&a);
    t->error_code = code;
    if (code != CTL_EXIT_OK)
        return code;
    for (size_t i = 0; i < t->nmemo && t->history != HISTORY_NO && !*t->quit; i++) {
        Memo *m = &t->memo[i];

        if (!view_ok(m->proc))
            continue;
        if (m->nhist > 0 && clock_mono() - m->hist_at < HISTORY_REFETCH_SECONDS) {
            if (memo_extend(m) < 0)
                memo_clear(m); /* fetched whole next time */
            continue;
        }
        if (fetch_history(t, m) == CTL_EXIT_UNREACHABLE)
            break;
    }
    return CTL_EXIT_OK;
}

/* The window in effect: the history's when asked for and there is one. */
Window topdata_window(const Top *t)
{
    return t->window == WINDOW_HISTORY && t->history != HISTORY_NO ? WINDOW_HISTORY
                                                                   : WINDOW_REFRESH;
}

TrendChange topdata_change(const Top *t, const Memo *m, TrendField f)
{
    if (!m)
        return (TrendChange){0};
    if (topdata_window(t) == WINDOW_HISTORY)
        return trend_over(m->hist, m->nhist, f);
    return m->has_prev ? trend_between(&m->prev, &m->cur, f) : (TrendChange){0};
}
