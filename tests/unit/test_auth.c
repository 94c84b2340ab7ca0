/* auth: bcrypt basic auth through libcrypt, the cache of good checks, unknown users. The hashes
 * are made at test time by libcrypt's own crypt_gensalt/crypt (and, independently, by
 * htpasswd in tests/http/test_tls.py). */
#include <crypt.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "http/auth.h"

static void make_hash(const char *prefix, const char *pass, char out[128])
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn(prefix, 4, NULL, 0, setting, sizeof(setting)));
    struct crypt_data cd = {0};
    const char *h = crypt_rn(pass, setting, &cd, sizeof(cd));
    assert_non_null(h);
    assert_int_equal(strlen(h), 60);
    strcpy(out, h);
    assert_true(webconfig_is_bcrypt(out));
}

static void checks_and_cache(void **state)
{
    char ha[128], hb[128];
    make_hash("$2b$", "secret", ha);
    make_hash("$2y$", "pässword", hb);
    WebUser users[] = {{(char *)"alice", ha}, {(char *)"bob", hb}};
    Auth *a = NULL;
    assert_int_equal(auth_new(users, 2, &a), 0);

    assert_true(auth_check(a, "alice", "secret"));
    assert_int_equal(auth_bcrypt_runs(a), 1);
    /* The second good check comes from the cache. */
    assert_true(auth_check(a, "alice", "secret"));
    assert_int_equal(auth_bcrypt_runs(a), 1);
    assert_true(auth_check(a, "bob", "pässword"));
    assert_int_equal(auth_bcrypt_runs(a), 2);

    /* Failures are never cached: each costs a bcrypt, also for an unknown user. */
    assert_false(auth_check(a, "alice", "Secret"));
    assert_false(auth_check(a, "alice", "secret "));
    assert_false(auth_check(a, "alice", ""));
    assert_false(auth_check(a, "bob", "secret"));
    assert_false(auth_check(a, "mallory", "secret"));
    assert_false(auth_check(a, "Alice", "secret"));
    assert_int_equal(auth_bcrypt_runs(a), 8);
    assert_false(auth_check(a, "mallory", "secret"));
    assert_int_equal(auth_bcrypt_runs(a), 9);
    /* Nothing sent: refused without a bcrypt (no user to find out about). A user without a
     * password still costs one, as a known user does. */
    assert_false(auth_check(a, NULL, NULL));
    assert_false(auth_check(a, NULL, "secret"));
    assert_int_equal(auth_bcrypt_runs(a), 9);
    assert_false(auth_check(a, "alice", NULL));
    assert_false(auth_check(a, "mallory", NULL));
    assert_int_equal(auth_bcrypt_runs(a), 11);
    /* Still good after the failures. */
    assert_true(auth_check(a, "alice", "secret"));
    assert_int_equal(auth_bcrypt_runs(a), 11);
    auth_free(a);
}

static void no_users(void **state)
{
    Auth *a = NULL;
    assert_int_equal(auth_new(NULL, 0, &a), 0);
    assert_false(auth_check(a, "alice", "secret"));
    assert_null(auth_free(a));
    assert_null(auth_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checks_and_cache),
        cmocka_unit_test(no_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
