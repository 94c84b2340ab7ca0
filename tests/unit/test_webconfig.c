/* webconfig: exporter-toolkit's web config format, parsed from a buffer, and its errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/webconfig.h"

/* A well-formed bcrypt hash (its value is never checked here: webconfig only checks the form). */
#define HASH                                                                                       \
    "$2y$10$"                                                                                      \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"

static int parse(const char *text, WebConfig *c, char *err, size_t errlen)
{
    return webconfig_parse(text, strlen(text), c, err, errlen);
}

/* Parsing must fail with -EINVAL and a message containing want. */
static void refused(const char *text, const char *want)
{
    WebConfig c;
    char err[512] = "";
    int r = parse(text, &c, err, sizeof(err));
    if (r != -EINVAL || !strstr(err, want))
        fail_msg("%s\n  gave %d \"%s\", expected -EINVAL with \"%s\"", text, r, err, want);
}

static void empty_is_nothing(void **state)
{
    WebConfig c;
    char err[256];
    assert_int_equal(parse("", &c, err, sizeof(err)), 0);
    assert_false(c.tls);
    assert_int_equal(c.nusers, 0);
    assert_int_equal(c.nheaders, 0);
    webconfig_done(&c);
    assert_int_equal(parse("# only a comment\n", &c, err, sizeof(err)), 0);
    assert_false(c.tls);
    webconfig_done(&c);
    /* Sections without content, as people leave them. */
    assert_int_equal(parse("tls_server_config:\nbasic_auth_users:\n", &c, err, sizeof(err)), 0);
    assert_false(c.tls);
    webconfig_done(&c);
}

static void full_file(void **state)
{
    const char *text = "tls_server_config:\n"
                       "  cert_file: server.crt\n"
                       "  key_file: /etc/pymemd/server.key\n"
                       "  client_ca_file: ca.crt\n"
                       "  client_auth_type: RequireAndVerifyClientCert\n"
                       "  min_version: TLS13\n"
                       "http_server_config:\n"
                       "  http2: false\n"
                       "  headers:\n"
                       "    X-Frame-Options: deny\n"
                       "    Strict-Transport-Security: max-age=31536000\n"
                       "    X-XSS-Protection: \"\"\n"
                       "basic_auth_users:\n"
                       "  alice: " HASH "\n"
                       "  bob: '$2b$04$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0'\n";
    WebConfig c;
    char err[256] = "";
    assert_int_equal(parse(text, &c, err, sizeof(err)), 0);
    assert_true(c.tls);
    assert_string_equal(c.cert_file, "server.crt");
    assert_string_equal(c.key_file, "/etc/pymemd/server.key");
    assert_string_equal(c.client_ca_file, "ca.crt");
    assert_null(c.cert_pem); /* files are read by webconfig_load, not by the parser */
    assert_int_equal(c.client_auth, WEB_REQUIRE_AND_VERIFY_CLIENT_CERT);
    assert_int_equal(c.min_version, WEB_TLS13);
    assert_int_equal(c.max_version, WEB_TLS13);
    assert_true(c.http2_given);
    /* The blank X-XSS-Protection is "unset". */
    assert_int_equal(c.nheaders, 2);
    assert_string_equal(c.headers[0].name, "X-Frame-Options");
    assert_string_equal(c.headers[0].value, "deny");
    assert_string_equal(c.headers[1].name, "Strict-Transport-Security");
    assert_int_equal(c.nusers, 2);
    assert_string_equal(c.users[0].name, "alice");
    assert_string_equal(c.users[0].hash, HASH);
    assert_string_equal(c.users[1].name, "bob");
    char prio[128];
    webconfig_priorities(&c, prio, sizeof(prio));
    assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
    webconfig_done(&c);
    webconfig_done(&c); /* idempotent */
}

static void defaults(void **state)
{
    WebConfig c;
    char err[256] = "";
    assert_int_equal(
        parse("tls_server_config:\n  cert: |\n    PEM\n  key: K\n", &c, err, sizeof(err)), 0);
    assert_true(c.tls);
    assert_string_equal(c.cert_pem, "PEM\n");
    assert_string_equal(c.key_pem, "K");
    assert_int_equal(c.client_auth, WEB_NO_CLIENT_CERT);
    /* exporter-toolkit's defaults: TLS 1.2 to 1.3. */
    char prio[128];
    webconfig_priorities(&c, prio, sizeof(prio));
    assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3");
    assert_string_equal(webconfig_client_auth_name(c.client_auth), "NoClientCert");
    webconfig_done(&c);
}

static void bad_files(void **state)
{
    refused("tls_server_config:\n  cert_file: a\n", "missing one of key or key_file");
    refused("tls_server_config:\n  key_file: a\n", "missing one of cert or cert_file");
    refused("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n  cert_file: a\n"
            "  key_file: b\n",
            "needs client_ca_file");
    refused("tls_server_config:\n  client_ca_file: c\n  cert_file: a\n  key_file: b\n",
            "client_auth_type is NoClientCert");
    refused("tls_server_config:\n  client_auth_type: Sometimes\n", "line 2: tls_server_config: "
                                                                   "client_auth_type: \"Sometimes\""
                                                                   " is not one of");
    refused("tls_server_config:\n  min_version: TLS14\n", "\"TLS14\" is not one of TLS10");
    refused("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
            "  max_version: TLS12\n",
            "min_version TLS13 is above max_version TLS12");
    refused("tls_server_config:\n  cert_file: a\n  cert: b\n  key_file: c\n", "not both");
    refused("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "cipher_suites is not supported by pymemd");
    refused("tls_server_config:\n  cert_fil: a\n", "line 2: tls_server_config: unknown key "
                                                   "\"cert_fil\"");
    refused("tls_config:\n  cert_file: a\n", "line 1: unknown key \"tls_config\"");
    refused("rate_limit:\n  burst: 1\n", "rate_limit is not supported");
    refused("basic_auth_users:\n  alice: secret\n", "line 2: basic_auth_users: user \"alice\": "
                                                    "the password is not a bcrypt hash");
    refused("basic_auth_users:\n  alice: $1$abc$def\n", "not a bcrypt hash");
    refused("basic_auth_users:\n  alice:\n", "has no password hash");
    refused("basic_auth_users:\n  a:b: " HASH "\n", "can never log in");
    refused("basic_auth_users:\n  alice: " HASH "\n  alice: " HASH "\n",
            "line 3: basic_auth_users: key \"alice\" given twice");
    refused("basic_auth_users: [alice]\n", "expected a mapping");
    refused("basic_auth_users:\n  alice: [1, 2]\n", "expected a single value, not a list");
    refused("http_server_config:\n  headers:\n    Content-Type: text/html\n",
            "\"Content-Type\" cannot be configured");
    refused("http_server_config:\n  headers:\n    Authorization: x\n", "cannot be configured");
    refused("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "\"allow\" is not accepted (use deny or sameorigin)");
    refused("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
            "(use nosniff)");
    refused(
        "http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\r\\nSet-Cookie: x\"\n",
        "control character");
    refused("http_server_config:\n  http2: maybe\n", "is not true or false");
    refused("tls_server_config: [\n", "not valid YAML");
    refused("a: b\n---\nc: d\n", "unknown key \"a\"");
    refused("basic_auth_users: {}\n---\nc: d\n", "more than one YAML document");
    refused("just text\n", "expected a mapping");
    refused("basic_auth_users:\n  \"a\\0b\": " HASH "\n", "NUL byte");
}

static void bcrypt_form(void **state)
{
    assert_true(webconfig_is_bcrypt(HASH));
    assert_true(
        webconfig_is_bcrypt("$2a$31$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"));
    assert_false(
        webconfig_is_bcrypt("$2x$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"));
    assert_false(
        webconfig_is_bcrypt("$2y$03$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"));
    assert_false(
        webconfig_is_bcrypt("$2y$32$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"));
    assert_false(
        webconfig_is_bcrypt("$2y$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    assert_false(
        webconfig_is_bcrypt("$2y$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!"));
    assert_false(webconfig_is_bcrypt(""));
}

/* A buffer without a terminating NUL, and bytes that are not text, are only ever errors. */
static void odd_buffers(void **state)
{
    WebConfig c;
    char err[256];
    const char text[] = {'b', 'a', 's', 'i', 'c'};
    assert_int_equal(webconfig_parse(text, sizeof(text), &c, err, sizeof(err)), -EINVAL);
    const char bin[] = "\xff\xfe\x00\x01";
    assert_int_equal(webconfig_parse(bin, 4, &c, err, sizeof(err)), -EINVAL);
    assert_int_equal(webconfig_parse("x", WEBCONFIG_FILE_MAX + 1, &c, err, sizeof(err)), -EFBIG);
}

/* webconfig_load reads the files named, relative to the config's directory. */
static void load_missing_file(void **state)
{
    char dir[] = "/tmp/pymemd-webconfig-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/web.yml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("tls_server_config:\n  cert_file: nosuch.crt\n  key_file: nosuch.key\n", f);
    fclose(f);
    WebConfig c;
    char err[512] = "", want[300];
    assert_int_equal(webconfig_load(path, &c, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: cert_file %s/nosuch.crt: cannot open", path, dir);
    if (!strstr(err, want))
        fail_msg("\"%s\" does not hold \"%s\"", err, want);
    /* A directory is no config file. */
    assert_int_equal(webconfig_load(dir, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_is_nothing),  cmocka_unit_test(full_file),
        cmocka_unit_test(defaults),          cmocka_unit_test(bad_files),
        cmocka_unit_test(bcrypt_form),       cmocka_unit_test(odd_buffers),
        cmocka_unit_test(load_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
