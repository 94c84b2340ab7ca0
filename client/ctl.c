/* ctl: options, the request to the daemon and how its answers become exit codes. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"
#include "jget.h"
#include "pymemd/api.h"

void ctl_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("pymemctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("pymemctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nTry 'pymemctl %s --help'.\n", cmd);
    else
        fputs("\nTry 'pymemctl --help'.\n", stderr);
    return CTL_EXIT_USAGE;
}

int ctl_option_error(const char *cmd, int opt, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (opt == ':')
        return ctl_usage_error(cmd, "option %s needs an argument", arg);
    if (optopt > 0 && optopt < 0x100)
        return ctl_usage_error(cmd, "unknown option -%c", optopt);
    return ctl_usage_error(cmd, "unknown option %s", arg);
}

/* A copy of s fit for a message on a terminal; "" when out of memory. */
static char *clean_dup(const char *s)
{
    StrBuf b = {0};
    char *r;

    fmt_clean(&b, s);
    r = fmt_take(&b, NULL);
    return r ? r : strdup("");
}

int ctl_set_url(Ctl *ctl, const char *url, const char *from)
{
    char err[256];
    _cleanup_(freep) char *shown = clean_dup(url);
    char *u;
    size_t n;

    if (!url[0])
        return ctl_usage_error(NULL, "%s is empty: give pymemd's URL, e.g. %s", from,
                               "http://127.0.0.1:9100");
    /* "localhost:9100" is what people type; curl would guess http:// for it too. */
    if (strstr(url, "://"))
        u = strdup(url);
    else if (asprintf(&u, "http://%s", url) < 0)
        u = NULL;
    if (!u) {
        ctl_error("out of memory");
        return CTL_EXIT_DAEMON;
    }
    n = strlen(u);
    while (n > 0 && u[n - 1] == '/' && !(n >= 3 && memcmp(u + n - 3, "://", 3) == 0))
        u[--n] = '\0';
    if (http_check_base_url(u, err, sizeof(err)) < 0) {
        free(u);
        return ctl_usage_error(NULL, "%s \"%s\": %s", from, shown ? shown : "", err);
    }
    free(ctl->url);
    ctl->url = u;
    return 0;
}

/* --user USER[:PASSWORD]. Without the password: $PYMEMCTL_PASSWORD, else the password of USER
 * in ~/.netrc; pymemctl never prompts, so that scripts cannot hang on it. */
static int set_user(Ctl *ctl, const char *arg)
{
    const char *colon = strchr(arg, ':');
    const char *env = getenv("PYMEMCTL_PASSWORD");
    char *user = colon ? strndup(arg, (size_t)(colon - arg)) : strdup(arg);
    char *pass = colon ? strdup(colon + 1) : env ? strdup(env) : NULL;
    if (!user || (!pass && (colon || env))) {
        free(user);
        free(pass);
        ctl_error("out of memory");
        return CTL_EXIT_DAEMON;
    }
    if (!user[0]) {
        free(user);
        free(pass);
        return ctl_usage_error(NULL, "--user needs a user name: --user USER[:PASSWORD]");
    }
    free((char *)ctl->access.user);
    free((char *)ctl->access.password);
    ctl->access.user = user;
    ctl->access.password = pass;
    return 0;
}

int ctl_common_option(Ctl *ctl, int opt, const char *arg)
{
    switch (opt) {
    case OPT_URL:
        return ctl_set_url(ctl, arg, "--url");
    case OPT_JSON:
        ctl->json = true;
        return 0;
    case OPT_NO_COLOR:
        ctl->no_color = true;
        return 0;
    case OPT_CACERT:
        ctl->access.cacert = arg;
        return 0;
    case OPT_CERT:
        ctl->access.cert = arg;
        return 0;
    case OPT_KEY:
        ctl->access.key = arg;
        return 0;
    case OPT_USER:
        return set_user(ctl, arg);
    default:
        return ctl_usage_error(NULL, "unknown option");
    }
}

/* Colour for people only: not into pipes and files, not when the user said no (the NO_COLOR
 * convention: set and not empty), not on a terminal that cannot show it. */
static bool want_color(const Ctl *ctl)
{
    const char *nc = getenv("NO_COLOR");
    const char *term = getenv("TERM");

    if (ctl->no_color || (nc && nc[0]) || !isatty(STDOUT_FILENO))
        return false;
    return !(term && strcmp(term, "dumb") == 0);
}

int ctl_ready(Ctl *ctl)
{
    const char *env = getenv("PYMEMD_URL");
    int r;

    /* --url, wherever it was given, wins over the environment. */
    if (!ctl->url) {
        r = env && env[0] ? ctl_set_url(ctl, env, "PYMEMD_URL")
                          : ctl_set_url(ctl, PYMEMD_DEFAULT_URL, "the default URL");
        if (r != 0)
            return r;
    }
    ctl->color = want_color(ctl);
    if (!ctl->http)
        ctl->http = http_new();
    if (!ctl->http) {
        ctl_error("cannot set up libcurl");
        return CTL_EXIT_DAEMON;
    }
    http_set_access(ctl->http, &ctl->access);
    return 0;
}

void ctl_done(Ctl *ctl)
{
    ctl->http = http_free(ctl->http);
    free(ctl->url);
    ctl->url = NULL;
    if (ctl->access.password)
        explicit_bzero((char *)ctl->access.password, strlen(ctl->access.password));
    free((char *)ctl->access.user);
    free((char *)ctl->access.password);
    ctl->access = (HttpAccess){0};
}

void ctl_answer_clear(CtlAnswer *a)
{
    free(a->body);
    cJSON_Delete(a->json);
    *a = (CtlAnswer){0};
}

/* The daemon reports errors as {"error": {"code": N, "message": "..."}}; anything else on an
 * error status is not pymemd talking, and the message says so. */
static void describe_http_error(CtlAnswer *a, const char *url)
{
    _cleanup_(cjson_freep) cJSON *doc = cJSON_ParseWithLength(a->body, a->len);
    const char *msg = jstr(doc, "error.message");
    _cleanup_(freep) char *clean = clean_dup(msg ? msg : a->body);

    if (!clean) {
        snprintf(a->msg, sizeof(a->msg), "%s answered HTTP %ld", url, a->status);
    } else if (msg) {
        snprintf(a->msg, sizeof(a->msg), "%s (HTTP %ld from %s)", clean, a->status, url);
    } else {
        /* A page of HTML would drown the point: the first line or so is enough. */
        if (strlen(clean) > 200)
            strcpy(clean + 197, "...");
        snprintf(a->msg, sizeof(a->msg),
                 "%s answered HTTP %ld without a pymemd error%s%s%s; is pymemd listening "
                 "there?",
                 url, a->status, clean[0] ? " (\"" : "", clean, clean[0] ? "\")" : "");
    }
}

int ctl_get(const Ctl *ctl, const char *path, long timeout_ms, CtlAnswer *ret)
{
    _cleanup_(freep) char *url = NULL;
    char err[512] = "";
    HttpReply reply;
    int r;

    *ret = (CtlAnswer){.code = CTL_EXIT_DAEMON};
    if (asprintf(&url, "%s%s", ctl->url, path) < 0) {
        url = NULL;
        snprintf(ret->msg, sizeof(ret->msg), "out of memory");
        return ret->code;
    }
    r = http_get(ctl->http, url, timeout_ms, &reply, err, sizeof(err));
    if (r == -ENOMEM || r == -EFBIG) {
        snprintf(ret->msg, sizeof(ret->msg), "%s: %s", url, err);
        return ret->code;
    }
    if (r < 0) {
        ret->code = CTL_EXIT_UNREACHABLE;
        snprintf(ret->msg, sizeof(ret->msg),
                 "cannot reach pymemd at %s: %s (is pymemd running there? choose the daemon "
                 "with --url or PYMEMD_URL)",
                 url, err);
        return ret->code;
    }
    ret->status = reply.status;
    ret->body = reply.body;
    ret->len = reply.len;
    if (reply.status < 200 || reply.status > 299) {
        describe_http_error(ret, url);
        return ret->code;
    }
    ret->json = cJSON_ParseWithLength(ret->body, ret->len);
    if (!cJSON_IsObject(ret->json)) {
        snprintf(ret->msg, sizeof(ret->msg),
                 "%s did not answer with a JSON object; is pymemd listening there?", url);
        return ret->code;
    }
    ret->code = CTL_EXIT_OK;
    return ret->code;
}

int ctl_fail(const CtlAnswer *a)
{
    ctl_error("%s", a->msg);
    return a->code;
}

int ctl_print_raw(const CtlAnswer *a)
{
    fwrite(a->body, 1, a->len, stdout);
    /* Unchanged for programs; a terminal gets its prompt back on a line of its own. */
    if (isatty(STDOUT_FILENO) && (a->len == 0 || a->body[a->len - 1] != '\n'))
        fputc('\n', stdout);
    return CTL_EXIT_OK; /* main() reports a failed write */
}

static int parse_long(const char *s, long min, long max, long *ret)
{
    char *end;
    long v;

    if (!s || !*s || *s == '+' || *s == '-' || *s == ' ')
        return -EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

int ctl_parse_pid(const char *s, long *ret_pid)
{
    return parse_long(s, 1, INT_MAX, ret_pid);
}

int ctl_parse_count(const char *s, long *ret)
{
    return parse_long(s, 0, INT_MAX, ret);
}
