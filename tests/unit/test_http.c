/* http: content negotiation with the headers real clients send, gzip, listen addresses, and a
 * real server: the exposure warning, an answer that took longer than the idle timeout. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http.h"
#include "http/webconfig.h"
#include "metrics/snaprender.h"
#include "util/macro.h"

/* No TLS, no users, no headers: plain HTTP as without --web.config.file. */
static const WebConfig no_web;

/* Binds addr and serves on it, as the listener does after the sampler bound it. */
static int start_on(const char *addr, SnapshotHolder *holder, HttpServer **ret, char *err,
                    size_t errlen)
{
    int fd = http_listen(addr, err, errlen);
    if (fd < 0)
        return fd;
    return http_start(fd, addr, &no_web, holder, NULL, NULL, ret, err, errlen);
}

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

/* ?seconds=N of .../history: a plain positive number of seconds, up to ten years. */
static void history_seconds(void **state)
{
    (void)state;
    assert_true(http_parse_seconds(NULL) == 0);
    assert_true(http_parse_seconds("600") == 600);
    assert_true(http_parse_seconds("0.5") == 0.5);
    assert_true(http_parse_seconds("1e3") == 1000);
    assert_true(http_parse_seconds("315576000") == 315576000);
    const char *bad[] = {"",    "0",        "-1",   "abc",       "5s",   "nan",
                         "inf", "Infinity", "0x10", "315576001", "1e99", " 5"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (http_parse_seconds(bad[i]) != -1)
            fail_msg("?seconds=%s was accepted", bad[i]);
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

/* A free loopback port (bound, read and released: another program could take it in between,
 * which a test machine does not do). */
static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void exposure(void **state)
{
    SnapshotHolder holder;
    holder_init(&holder);
    char addr[64], err[512], warning[1024];
    static const struct {
        const char *host;
        bool exposed;
    } cases[] = {{"127.0.0.1", false}, {"0.0.0.0", true}, {"127.0.0.3", false}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        HttpServer *h = NULL;
        snprintf(addr, sizeof(addr), "%s:%u", cases[i].host, free_port());
        assert_int_equal(start_on(addr, &holder, &h, err, sizeof(err)), 0);
        warning[0] = 0;
        assert_int_equal(http_exposed(h, warning, sizeof(warning)), cases[i].exposed);
        if (cases[i].exposed) {
            assert_non_null(strstr(warning, "command lines"));
            assert_non_null(strstr(warning, "--web.config.file"));
        } else {
            assert_string_equal(warning, "");
        }
        http_stop(h);
    }
    holder_done(&holder);
}

/* A referrers walk that takes longer than the idle timeout (5 s): its client sent its request
 * and waits, rightly silent; the answer must reach it, not a connection closed as idle. */
static int slow_referrers(void *ctx, pid_t pid, const char *type, bool fresh,
                          double *ret_retry_after, char **ret_json, char *err, size_t errlen)
{
    struct timespec ts = {6, 500000000};
    nanosleep(&ts, NULL);
    *ret_json = strdup("{\"slow\": true}");
    return *ret_json ? 0 : -ENOMEM;
}

static void slow_answer_is_sent(void **state)
{
    SnapshotHolder holder;
    holder_init(&holder);
    JsonDaemonInfo info = {.version = "test", .top_types = 20};
    Snapshot *empty = NULL;
    assert_int_equal(snaprender_new(&info, NULL, 0, 0.0, NULL, &empty), 0);
    holder_swap(&holder, empty);
    unsigned port = free_port();
    char addr[64], err[512];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    HttpServer *h = NULL;
    assert_int_equal(start_on(addr, &holder, &h, err, sizeof(err)), 0);
    http_set_referrers(h, slow_referrers, NULL);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char req[] = "GET /api/v1/processes/42/referrers?type=Dup HTTP/1.1\r\n"
                              "Host: x\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = 0;
        if (strstr(buf, "{\"slow\": true}"))
            break;
    }
    buf[got] = 0;
    close(fd);
    assert_true(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
    assert_non_null(strstr(buf, "{\"slow\": true}"));
    http_stop(h);
    holder_done(&holder);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prometheus_accept_headers),
        cmocka_unit_test(other_clients),
        cmocka_unit_test(gzip),
        cmocka_unit_test(listen_addresses),
        cmocka_unit_test(control_characters),
        cmocka_unit_test(history_seconds),
        cmocka_unit_test(exposure),
        cmocka_unit_test(slow_answer_is_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
