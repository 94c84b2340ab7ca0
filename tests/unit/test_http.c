/* http: content negotiation with the headers real clients send, gzip, listen addresses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "http/http.h"

static void prometheus_accept_headers(void **state)
{
    /* prometheus/prometheus scrape/scrape.go, per version (ecosystem.md §3.2). Every one of them
     * asks for OpenMetrics first. */
    const char *const prom[] = {
        "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
        "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/"
        "openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;"
        "q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    };
    for (size_t i = 0; i < sizeof(prom) / sizeof(prom[0]); i++)
        assert_int_equal(http_negotiate(prom[i]), SNAP_OPENMETRICS);
}

static void other_clients(void **state)
{
    assert_int_equal(http_negotiate(NULL), SNAP_JSON);
    assert_int_equal(http_negotiate(""), SNAP_JSON);
    assert_int_equal(http_negotiate("*/*"), SNAP_JSON); /* curl */
    assert_int_equal(http_negotiate("application/json"), SNAP_JSON);
    assert_int_equal(http_negotiate("text/plain;version=0.0.4"), SNAP_PROMETHEUS);
    assert_int_equal(http_negotiate("text/plain"), SNAP_PROMETHEUS);
    assert_int_equal(http_negotiate("TEXT/PLAIN ; q=0.9"), SNAP_PROMETHEUS);
    /* q decides, whatever the order. */
    assert_int_equal(http_negotiate("application/openmetrics-text;q=0.2, text/plain;q=0.8"),
                     SNAP_PROMETHEUS);
    assert_int_equal(http_negotiate("text/plain;q=0.5, application/json"), SNAP_JSON);
    /* A tie goes to OpenMetrics, then text. */
    assert_int_equal(http_negotiate("application/json, text/plain"), SNAP_PROMETHEUS);
    /* q=0 means "not acceptable". */
    assert_int_equal(http_negotiate("application/openmetrics-text;q=0, */*;q=0.1"), SNAP_JSON);
    /* An OpenMetrics version pymemd does not write is not offered. */
    assert_int_equal(
        http_negotiate("application/openmetrics-text;version=2.0.0,text/plain;version=0.0.4;q=0.1"),
        SNAP_PROMETHEUS);
    assert_int_equal(http_negotiate("application/openmetrics-text; version=0.0.1"),
                     SNAP_OPENMETRICS);
    /* Nothing usable: JSON, the documented default. */
    assert_int_equal(http_negotiate("image/png"), SNAP_JSON);
    assert_int_equal(http_negotiate(",,;;q=,"), SNAP_JSON);
}

static void gzip(void **state)
{
    assert_true(http_accepts_gzip("gzip"));
    assert_true(http_accepts_gzip("deflate, gzip;q=0.5"));
    assert_true(http_accepts_gzip("*"));
    assert_false(http_accepts_gzip("gzip;q=0"));
    assert_false(http_accepts_gzip("identity"));
    assert_false(http_accepts_gzip(NULL));
    assert_false(http_accepts_gzip("gzipx"));
}

static void listen_addresses(void **state)
{
    char host[64];
    unsigned port;
    assert_int_equal(http_parse_listen("127.0.0.1:9100", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9100);
    assert_int_equal(http_parse_listen("[::1]:9258", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9258);
    assert_int_equal(http_parse_listen("localhost:1", host, sizeof(host), &port), 0);
    const char *const bad[] = {
        "", "9100", ":9100", "host:", "host:0", "host:65536", "[::1]9100", "host:12ab"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(http_parse_listen(bad[i], host, sizeof(host), &port), -EINVAL);
}

static void control_characters(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "/metrics%00.json",
        "/api/v1/processes/123%00",
        "/api/v1/processes/123/objects%00x?fresh=1",
        "/api/v1/processes/1%0a",
        "/api/v1/processes/1%1F",
        "/api/v1/processes/1%1f",
        "/metrics%7f",
        "/metrics%7F",
        "/metrics?format=json%00",
        "/metrics?x=%09",
        "/metr\tics",
        "/metrics\x7f",
        "%01",
        "/metrics%%00", /* a lone "%", then "%00" */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!http_uri_has_control(bad[i]))
            fail_msg("not caught: %s", bad[i]);
    }
    static const char *const good[] = {
        "/",
        "/metrics",
        "/metrics?format=openmetrics",
        "/api/v1/processes/123",
        "/api/v1/processes/123/referrers?type=my%20mod.Session",
        "/api/v1/processes/123abc", /* 400 from the pid parser, not from here */
        "/metrics%20",              /* a space is not a control character */
        "/metrics%80%ff",           /* bytes above ASCII are not either */
        "/metrics%2",               /* a broken escape is left as it is */
        "/metrics%0",
        "/metrics%g0",
        "",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (http_uri_has_control(good[i]))
            fail_msg("caught, but harmless: %s", good[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prometheus_accept_headers),
        cmocka_unit_test(other_clients),
        cmocka_unit_test(gzip),
        cmocka_unit_test(listen_addresses),
        cmocka_unit_test(control_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
