/* trend: samples from a PROCESS object and from a history document (DESIGN.md 4.2), and the
 * change and rate between two samples or over a history, with unread values left out. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "trend.h"

static cJSON *parse(const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    return doc;
}

static void of_process(void **state)
{
    cJSON *p = parse("{\"pid\": 1, \"sampled_at\": 100.5,"
                     " \"memory\": {\"rss_bytes\": 4096},"
                     " \"pymalloc\": {\"arena_bytes\": null, \"allocated_blocks\": 77},"
                     " \"gc\": {\"generations\": [{\"generation\": 0, \"collections\": 10},"
                     "   {\"generation\": 1, \"collections\": 2},"
                     "   {\"generation\": 2, \"collections\": 1}]}}");
    TrendSample s = trend_of_process(p);

    assert_true(s.t == 100.5);
    assert_true(s.f[TREND_RSS].ok && s.f[TREND_RSS].v == 4096);
    assert_false(s.f[TREND_HEAP].ok); /* null: not read, never 0 */
    assert_true(s.f[TREND_BLOCKS].ok && s.f[TREND_BLOCKS].v == 77);
    assert_true(s.f[TREND_GC].ok && s.f[TREND_GC].v == 13);
    cJSON_Delete(p);
    /* One generation unread: the sum is unknown, not the sum of the others. */
    p = parse("{\"gc\": {\"generations\": [{\"generation\": 0, \"collections\": 10},"
              " {\"generation\": 1, \"collections\": null}]}}");
    s = trend_of_process(p);
    assert_false(s.f[TREND_GC].ok);
    assert_true(isnan(s.t));
    cJSON_Delete(p);
}

static void history(void **state)
{
    cJSON *h = parse("{\"pid\": 1, \"interval_seconds\": 1, \"samples\": ["
                     "{\"t\": 10, \"rss_bytes\": 1000, \"arena_bytes\": null,"
                     " \"allocated_blocks\": 5, \"gc_collections\": [1, 0, 0]},"
                     "{\"t\": 12, \"rss_bytes\": null, \"arena_bytes\": 262144,"
                     " \"allocated_blocks\": 9, \"gc_collections\": [2, null, 0]},"
                     "{\"t\": 14, \"rss_bytes\": 3000, \"arena_bytes\": 524288,"
                     " \"allocated_blocks\": 4, \"gc_collections\": [5, 1, 0]},"
                     "{\"t\": 15, \"rss_bytes\": null, \"arena_bytes\": null,"
                     " \"allocated_blocks\": null, \"gc_collections\": null}]}");
    TrendSample *s = NULL;
    size_t n = 0;
    TrendChange c;

    assert_int_equal(trend_parse(h, &s, &n), 0);
    assert_int_equal(n, 4);
    /* RSS: first and last read, t 10 and 14. */
    c = trend_over(s, n, TREND_RSS);
    assert_true(c.delta.ok && c.delta.v == 2000);
    assert_true(c.rate.ok && c.rate.v == 500);
    assert_true(c.span == 4);
    /* Arenas: from t 12 to 14. */
    c = trend_over(s, n, TREND_HEAP);
    assert_true(c.delta.ok && c.delta.v == 262144 && c.rate.v == 131072);
    /* A drop is a negative change. */
    c = trend_over(s, n, TREND_BLOCKS);
    assert_true(c.delta.ok && c.delta.v == -1 && c.rate.v == -0.25);
    /* Collections: the sample with a null generation is left out (1 at t 10, 6 at t 14). */
    c = trend_over(s, n, TREND_GC);
    assert_true(c.delta.ok && c.delta.v == 5 && c.rate.v == 1.25);
    /* Fewer than two samples read: unknown. */
    c = trend_over(s, 1, TREND_RSS);
    assert_false(c.delta.ok);
    assert_false(c.rate.ok);
    c = trend_over(s + 3, 1, TREND_RSS);
    assert_false(c.delta.ok);
    c = trend_over(s, 0, TREND_RSS);
    assert_false(c.delta.ok);
    free(s);
    cJSON_Delete(h);
    /* Not a history. */
    h = parse("{\"pid\": 1}");
    assert_int_equal(trend_parse(h, &s, &n), -EBADMSG);
    cJSON_Delete(h);
    h = parse("{\"samples\": []}");
    assert_int_equal(trend_parse(h, &s, &n), 0);
    assert_int_equal(n, 0);
    assert_null(s);
    cJSON_Delete(h);
}

static void between(void **state)
{
    TrendSample a = {.t = 100, .f = {[TREND_RSS] = {true, 10}}};
    TrendSample b = {.t = 100, .f = {[TREND_RSS] = {true, 10}}};
    TrendChange c = trend_between(&a, &b, TREND_RSS);

    /* The same moment: no change, and no rate (there is no time to divide by). */
    assert_true(c.delta.ok && c.delta.v == 0);
    assert_false(c.rate.ok);
    b.t = 102;
    b.f[TREND_RSS].v = 16;
    c = trend_between(&a, &b, TREND_RSS);
    assert_true(c.delta.v == 6 && c.rate.ok && c.rate.v == 3 && c.span == 2);
    /* An unread value on either side: unknown. */
    c = trend_between(&a, &b, TREND_HEAP);
    assert_false(c.delta.ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(of_process), cmocka_unit_test(history),
                                       cmocka_unit_test(between)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
