/* redact: the rule of util/redact.h on command lines as real programs are started (the ones the
 * README lists), and what it must leave alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/redact.h"

/* Redacts the NULL-terminated argument list and compares with want. */
static void check(const char *want, const char *const *argv)
{
    char *got = redact_argv(argv);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

#define CHECK(want, ...) check(want, (const char *const[]){__VA_ARGS__, NULL})

static void flag_with_value(void **state)
{
    /* The issue's own example, and both spellings. */
    CHECK("python3 app.py --db-password *** --port 8000", "python3", "app.py", "--db-password",
          "hunter2", "--port", "8000");
    CHECK("mysqldump --user=root --password=*** shop", "mysqldump", "--user=root",
          "--password=hunter2", "shop");
    CHECK("redis-server --requirepass ***", "redis-server", "--requirepass", "foobared");
    CHECK("vault login -method=userpass username=ops password=***", "vault", "login",
          "-method=userpass", "username=ops", "password=s3cr3t");
    CHECK("app --API-KEY ***", "app", "--API-KEY", "AKIA0123");
    CHECK("app --client-secret=*** --auth-token *** -v", "app", "--client-secret=abc",
          "--auth-token", "xyz", "-v");
    /* A value with blanks is one argument and is hidden whole. */
    CHECK("app --passphrase *** --x", "app", "--passphrase", "correct horse battery", "--x");
    /* A flag that ends the command line hides nothing and keeps its name. */
    CHECK("app --password", "app", "--password");
}

static void name_value_pairs(void **state)
{
    CHECK("java -Dspring.datasource.password=*** -jar app.jar", "java",
          "-Dspring.datasource.password=pw", "-jar", "app.jar");
    CHECK("worker token=***", "worker", "token=abc123");
    CHECK("fetch https://api.example.com/v1?access_token=***&page=2", "fetch",
          "https://api.example.com/v1?access_token=tok&page=2");
    CHECK("gunicorn --env SECRET_KEY=*** --env DEBUG=0 app:app", "gunicorn", "--env",
          "SECRET_KEY=django-insecure-x", "--env", "DEBUG=0", "app:app");
    /* sh -c: one argument, several words. */
    CHECK("sh -c PGPASSWORD=*** psql -h db --password *** -c select", "sh", "-c",
          "PGPASSWORD=pw psql -h db --password pw2 -c select");
}

static void urls(void **state)
{
    CHECK("celery -A proj worker -b redis://:***@localhost:6379/0", "celery", "-A", "proj",
          "worker", "-b", "redis://:pass@localhost:6379/0");
    CHECK("gunicorn --env DATABASE_URL=postgres://app:***@db:5432/app app:app", "gunicorn", "--env",
          "DATABASE_URL=postgres://app:s3cret@db:5432/app", "app:app");
    CHECK("git clone https://***@github.com/org/repo.git", "git", "clone",
          "https://ghp_0123456789@github.com/org/repo.git");
    /* An '@' in the password: the last '@' of the authority ends it. */
    CHECK("app amqp://guest:***@rabbit/vhost", "app", "amqp://guest:p@ss@rabbit/vhost");
    /* No user information: nothing to hide; an '@' in the path is not one. */
    CHECK("app https://example.com/@user?q=1", "app", "https://example.com/@user?q=1");
}

static void headers(void **state)
{
    CHECK("curl -H Authorization: *** https://api", "curl", "-H", "Authorization: Bearer abc.def",
          "https://api");
    CHECK("curl -H X-Api-Key: *** https://api", "curl", "-H", "X-Api-Key:", "k123", "https://api");
}

static void left_alone(void **state)
{
    /* Nothing sensitive: byte for byte what the kernel has, blanks inside arguments kept. */
    CHECK("/usr/bin/python3 -m http.server 8000", "/usr/bin/python3", "-m", "http.server", "8000");
    CHECK("uvicorn main:app --host 0.0.0.0 --workers 4", "uvicorn", "main:app", "--host", "0.0.0.0",
          "--workers", "4");
    CHECK("python3 -c import os;  print(os.environ['KEY'])", "python3", "-c",
          "import os;  print(os.environ['KEY'])");
    CHECK("python3 manage.py runserver", "python3", "manage.py", "runserver");
    CHECK("", "");
}

static void modes(void **state)
{
    assert_int_equal(redact_mode_from_string("full"), CMDLINE_FULL);
    assert_int_equal(redact_mode_from_string("Redacted"), CMDLINE_REDACTED);
    assert_int_equal(redact_mode_from_string("hidden"), CMDLINE_HIDDEN);
    assert_int_equal(redact_mode_from_string("none"), -22);
    assert_string_equal(redact_mode_name(CMDLINE_HIDDEN), "hidden");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flag_with_value),
        cmocka_unit_test(name_value_pairs),
        cmocka_unit_test(urls),
        cmocka_unit_test(headers),
        cmocka_unit_test(left_alone),
        cmocka_unit_test(modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
