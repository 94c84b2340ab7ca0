#include "http/webconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <yaml.h>

#include "util/errmsg.h"
#include "util/macro.h"

/* More users than basic auth is meant for (exporter-toolkit: "a few users"); the bound keeps
 * the duplicate check quadratic only in a small number. */
#define WEBCONFIG_USERS_MAX 1000

/* A value from the file as a message shows it: quoted, at most 64 bytes, control bytes as '?'
 * so that a hostile file cannot write escape sequences into the journal. */
typedef struct Shown {
    char s[80];
} Shown;

static const char *show(Shown *b, const char *v)
{
    size_t n = 0, i = 0;
    b->s[n++] = '"';
    for (; v[i] && i < 64; i++)
        b->s[n++] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
    if (v[i]) {
        memcpy(b->s + n, "...", 3);
        n += 3;
    }
    b->s[n++] = '"';
    b->s[n] = 0;
    return b->s;
}

typedef struct Parse {
    yaml_document_t *doc;
    WebConfig *c;
    char *err;
    size_t errlen;
    bool cert_set, key_set, ca_set, auth_set; /* which tls_server_config keys were written */
} Parse;

static unsigned line_of(const yaml_node_t *n)
{
    return (unsigned)n->start_mark.line + 1;
}

/* A plain scalar YAML reads as null ("", ~, null): a key written without a value. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* The text of a scalar, or NULL (with err set) when n is not one or holds a NUL byte. */
static const char *scalar(Parse *p, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        errmsg(p->err, p->errlen, -EINVAL, "line %u: %s: expected a single value, not a %s",
               line_of(n), what, n->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return NULL;
    }
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length) {
        errmsg(p->err, p->errlen, -EINVAL, "line %u: %s: the value holds a NUL byte", line_of(n),
               what);
        return NULL;
    }
    return v;
}

/* Sets *dst to a copy of a string value; null leaves it unset. */
static int take_string(Parse *p, const yaml_node_t *n, const char *what, char **dst, bool *set)
{
    if (is_null(n))
        return 0;
    const char *v = scalar(p, n, what);
    if (!v)
        return -EINVAL;
    char *s = strdup(v);
    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    if (set)
        *set = true;
    return 0;
}

typedef int (*PairFn)(Parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v);

/* Calls fn for each key of the mapping n (null: none), refusing non-scalar and duplicate keys,
 * as exporter-toolkit's strict YAML decoding does. */
static int each_pair(Parse *p, const yaml_node_t *n, const char *what, PairFn fn)
{
    if (is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return errmsg(p->err, p->errlen, -EINVAL, "line %u: %s: expected a mapping of keys",
                      line_of(n), what);
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
        const yaml_node_t *v = yaml_document_get_node(p->doc, a->value);
        if (!k || !v)
            return errmsg(p->err, p->errlen, -EINVAL, "%s: a malformed mapping", what);
        const char *key = scalar(p, k, what);
        if (!key)
            return -EINVAL;
        for (yaml_node_pair_t *b = n->data.mapping.pairs.start; b < a; b++) {
            const yaml_node_t *bk = yaml_document_get_node(p->doc, b->key);
            Shown s;
            if (bk && bk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)bk->data.scalar.value, key) == 0)
                return errmsg(p->err, p->errlen, -EINVAL, "line %u: %s: key %s given twice",
                              line_of(k), what, show(&s, key));
        }
        int r = fn(p, key, k, v);
        if (r < 0)
            return r;
    }
    return 0;
}

static const struct {
    const char *name;
    WebClientAuth auth;
} client_auths[] = {
    {"NoClientCert", WEB_NO_CLIENT_CERT},
    {"RequestClientCert", WEB_REQUEST_CLIENT_CERT},
    {"RequireAnyClientCert", WEB_REQUIRE_ANY_CLIENT_CERT},
    {"RequireClientCert", WEB_REQUIRE_ANY_CLIENT_CERT}, /* exporter-toolkit's older name */
    {"VerifyClientCertIfGiven", WEB_VERIFY_CLIENT_CERT_IF_GIVEN},
    {"RequireAndVerifyClientCert", WEB_REQUIRE_AND_VERIFY_CLIENT_CERT},
};

const char *webconfig_client_auth_name(WebClientAuth a)
{
    for (size_t i = 0; i < ARRAY_SIZE(client_auths); i++)
        if (client_auths[i].auth == a)
            return client_auths[i].name;
    return "?";
}

static const char *const tls_versions[] = {"TLS10", "TLS11", "TLS12", "TLS13"};

static int tls_pair(Parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
    WebConfig *c = p->c;
    Shown s;
    char what[64];
    snprintf(what, sizeof(what), "tls_server_config: %s", key);
    if (strcmp(key, "cert_file") == 0)
        return take_string(p, v, what, &c->cert_file, &p->cert_set);
    if (strcmp(key, "cert") == 0)
        return take_string(p, v, what, &c->cert_pem, &p->cert_set);
    if (strcmp(key, "key_file") == 0)
        return take_string(p, v, what, &c->key_file, &p->key_set);
    if (strcmp(key, "key") == 0)
        return take_string(p, v, what, &c->key_pem, &p->key_set);
    if (strcmp(key, "client_ca_file") == 0)
        return take_string(p, v, what, &c->client_ca_file, &p->ca_set);
    if (strcmp(key, "client_ca") == 0)
        return take_string(p, v, what, &c->client_ca_pem, &p->ca_set);
    if (strcmp(key, "client_auth_type") == 0) {
        if (is_null(v))
            return 0;
        const char *val = scalar(p, v, what);
        if (!val)
            return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(client_auths); i++)
            if (strcmp(val, client_auths[i].name) == 0) {
                c->client_auth = client_auths[i].auth;
                p->auth_set = true;
                return 0;
            }
        return errmsg(p->err, p->errlen, -EINVAL,
                      "line %u: %s: %s is not one of NoClientCert, RequestClientCert, "
                      "RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert",
                      line_of(v), what, show(&s, val));
    }
    if (strcmp(key, "min_version") == 0 || strcmp(key, "max_version") == 0) {
        if (is_null(v))
            return 0;
        const char *val = scalar(p, v, what);
        if (!val)
            return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(tls_versions); i++)
            if (strcmp(val, tls_versions[i]) == 0) {
                *(key[1] == 'i' ? &c->min_version : &c->max_version) = (WebTlsVersion)i;
                return 0;
            }
        return errmsg(p->err, p->errlen, -EINVAL,
                      "line %u: %s: %s is not one of TLS10, TLS11, TLS12, TLS13", line_of(v), what,
                      show(&s, val));
    }
    if (strcmp(key, "cipher_suites") == 0 || strcmp(key, "curve_preferences") == 0 ||
        strcmp(key, "prefer_server_cipher_suites") == 0 || strcmp(key, "client_allowed_sans") == 0)
        return errmsg(
            p->err, p->errlen, -EINVAL,
            "line %u: %s is not supported by pymemd (its TLS is GnuTLS through "
            "libmicrohttpd, which keeps its own choice of ciphers and curves and does not "
            "match client SANs); remove it",
            line_of(k), what);
    return errmsg(p->err, p->errlen, -EINVAL,
                  "line %u: tls_server_config: unknown key %s (known: cert_file, key_file, cert, "
                  "key, client_ca_file, client_ca, client_auth_type, min_version, max_version)",
                  line_of(k), show(&s, key));
}

/* The response headers exporter-toolkit lets a web config set, and the values it accepts
 * (NULL: any). Anything else could break the API (Content-Type) or its security. */
static const struct {
    const char *name;
    const char *const values[3];
} allowed_headers[] = {
    {"Strict-Transport-Security", {NULL}},
    {"X-Content-Type-Options", {"nosniff", NULL}},
    {"X-Frame-Options", {"deny", "sameorigin", NULL}},
    {"X-XSS-Protection", {NULL}},
    {"Content-Security-Policy", {NULL}},
};

static int header_pair(Parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
    WebConfig *c = p->c;
    Shown s, s2;
    size_t i = 0;
    while (i < ARRAY_SIZE(allowed_headers) && strcasecmp(key, allowed_headers[i].name) != 0)
        i++;
    if (i == ARRAY_SIZE(allowed_headers))
        return errmsg(p->err, p->errlen, -EINVAL,
                      "line %u: http_server_config: headers: %s cannot be configured (allowed: "
                      "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
                      "X-XSS-Protection, Content-Security-Policy)",
                      line_of(k), show(&s, key));
    if (is_null(v))
        return 0; /* "unset if blank" */
    char what[96];
    snprintf(what, sizeof(what), "http_server_config: headers: %s", allowed_headers[i].name);
    const char *val = scalar(p, v, what);
    if (!val)
        return -EINVAL;
    if (!*val)
        return 0;
    for (const char *q = val; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            return errmsg(p->err, p->errlen, -EINVAL,
                          "line %u: %s: the value holds a control character", line_of(v), what);
    if (allowed_headers[i].values[0]) {
        bool ok = false;
        for (const char *const *a = allowed_headers[i].values; *a && !ok; a++)
            ok = strcasecmp(val, *a) == 0;
        if (!ok)
            return errmsg(p->err, p->errlen, -EINVAL,
                          "line %u: %s: %s is not accepted (use %s%s%s)", line_of(v), what,
                          show(&s2, val), allowed_headers[i].values[0],
                          allowed_headers[i].values[1] ? " or " : "",
                          allowed_headers[i].values[1] ? allowed_headers[i].values[1] : "");
    }
    WebHeader *h = realloc(c->headers, (c->nheaders + 1) * sizeof(*h));
    if (!h)
        return -ENOMEM;
    c->headers = h;
    h[c->nheaders] = (WebHeader){strdup(allowed_headers[i].name), strdup(val)};
    if (!h[c->nheaders].name || !h[c->nheaders].value) {
        free(h[c->nheaders].name);
        free(h[c->nheaders].value);
        return -ENOMEM;
    }
    c->nheaders++;
    return 0;
}

static bool parse_bool(const char *v, bool *ret)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *ret = true;
        if (strcasecmp(v, no[i]) == 0) {
            *ret = false;
            return true;
        }
    }
    return false;
}

static int http_pair(Parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
    Shown s;
    if (strcmp(key, "headers") == 0)
        return each_pair(p, v, "http_server_config: headers", header_pair);
    if (strcmp(key, "http2") == 0) {
        if (is_null(v))
            return 0;
        const char *val = scalar(p, v, "http_server_config: http2");
        bool b;
        if (!val)
            return -EINVAL;
        if (!parse_bool(val, &b))
            return errmsg(p->err, p->errlen, -EINVAL,
                          "line %u: http_server_config: http2: %s is not true or false", line_of(v),
                          show(&s, val));
        p->c->http2_given = true;
        return 0;
    }
    return errmsg(p->err, p->errlen, -EINVAL,
                  "line %u: http_server_config: unknown key %s (known: headers, http2)", line_of(k),
                  show(&s, key));
}

bool webconfig_is_bcrypt(const char *s)
{
    /* $2a$, $2b$ or $2y$; a two-digit cost 04..31; 22 characters of salt and 31 of hash in
     * bcrypt's own base64 alphabet (./A-Za-z0-9). */
    if (strlen(s) != 60 || s[0] != '$' || s[1] != '2' || !strchr("aby", s[2]) || s[2] == 0 ||
        s[3] != '$' || s[6] != '$')
        return false;
    if (s[4] < '0' || s[4] > '3' || s[5] < '0' || s[5] > '9')
        return false;
    int cost = (s[4] - '0') * 10 + (s[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    for (const char *q = s + 7; *q; q++)
        if (!(*q == '.' || *q == '/' || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
              (*q >= '0' && *q <= '9')))
            return false;
    return true;
}

static int user_pair(Parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
    WebConfig *c = p->c;
    Shown s;
    if (c->nusers == WEBCONFIG_USERS_MAX)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "line %u: basic_auth_users: more than %d users; basic authentication is "
                      "meant for a few, use client certificates for more",
                      line_of(k), WEBCONFIG_USERS_MAX);
    for (const char *q = key; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == ':')
            return errmsg(p->err, p->errlen, -EINVAL,
                          "line %u: basic_auth_users: user %s can never log in: a user name holds "
                          "no ':' and no control character",
                          line_of(k), show(&s, key));
    if (is_null(v))
        return errmsg(p->err, p->errlen, -EINVAL,
                      "line %u: basic_auth_users: user %s has no password hash", line_of(k),
                      show(&s, key));
    char what[128];
    snprintf(what, sizeof(what), "basic_auth_users: user %s", show(&s, key));
    const char *hash = scalar(p, v, what);
    if (!hash)
        return -EINVAL;
    if (!webconfig_is_bcrypt(hash))
        return errmsg(p->err, p->errlen, -EINVAL,
                      "line %u: %s: the password is not a bcrypt hash ($2y$, $2b$ or $2a$ with a "
                      "cost of 04-31, 60 characters in all; make one with htpasswd -nBC 10 \"\" or "
                      "mkpasswd -m bcrypt)",
                      line_of(v), what);
    WebUser *u = realloc(c->users, (c->nusers + 1) * sizeof(*u));
    if (!u)
        return -ENOMEM;
    c->users = u;
    u[c->nusers] = (WebUser){strdup(key), strdup(hash)};
    if (!u[c->nusers].name || !u[c->nusers].hash) {
        free(u[c->nusers].name);
        free(u[c->nusers].hash);
        return -ENOMEM;
    }
    c->nusers++;
    return 0;
}

static int top_pair(Parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
    Shown s;
    if (strcmp(key, "tls_server_config") == 0)
        return each_pair(p, v, "tls_server_config", tls_pair);
    if (strcmp(key, "http_server_config") == 0)
        return each_pair(p, v, "http_server_config", http_pair);
    if (strcmp(key, "basic_auth_users") == 0)
        return each_pair(p, v, "basic_auth_users", user_pair);
    if (strcmp(key, "rate_limit") == 0)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "line %u: rate_limit is not supported by pymemd (it limits connections "
                      "itself); remove it",
                      line_of(k));
    return errmsg(p->err, p->errlen, -EINVAL,
                  "line %u: unknown key %s (known: tls_server_config, http_server_config, "
                  "basic_auth_users)",
                  line_of(k), show(&s, key));
}

/* The checks across keys, as exporter-toolkit makes them when it builds its TLS config. */
static int check_tls(Parse *p)
{
    WebConfig *c = p->c;
    c->tls = p->cert_set || p->key_set || p->ca_set || p->auth_set;
    if (!c->tls)
        return 0;
    if (c->cert_file && c->cert_pem)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: give cert or cert_file, not both");
    if (c->key_file && c->key_pem)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: give key or key_file, not both");
    if (c->client_ca_file && c->client_ca_pem)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: give client_ca or client_ca_file, not both");
    if (!c->cert_file && !c->cert_pem)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: missing one of cert or cert_file (the server's "
                      "certificate)");
    if (!c->key_file && !c->key_pem)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: missing one of key or key_file (the server's private "
                      "key)");
    bool ca = c->client_ca_file || c->client_ca_pem;
    if (ca && c->client_auth == WEB_NO_CLIENT_CERT)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: client_ca_file is given but client_auth_type is "
                      "NoClientCert: set client_auth_type to RequireAndVerifyClientCert to "
                      "check client certificates");
    if (!ca && (c->client_auth == WEB_VERIFY_CLIENT_CERT_IF_GIVEN ||
                c->client_auth == WEB_REQUIRE_AND_VERIFY_CLIENT_CERT))
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: client_auth_type %s needs client_ca_file (the CA that "
                      "signs the client certificates)",
                      webconfig_client_auth_name(c->client_auth));
    if (c->min_version > c->max_version)
        return errmsg(p->err, p->errlen, -EINVAL,
                      "tls_server_config: min_version %s is above max_version %s",
                      tls_versions[c->min_version], tls_versions[c->max_version]);
    return 0;
}

static const char *yaml_problem(const yaml_parser_t *y)
{
    return y->problem ? y->problem : "malformed YAML";
}

int webconfig_parse(const char *buf, size_t len, WebConfig *ret, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = 0;
    if (len > WEBCONFIG_FILE_MAX)
        return errmsg(err, errlen, -EFBIG, "larger than %d bytes", WEBCONFIG_FILE_MAX);
    yaml_parser_t y;
    if (!yaml_parser_initialize(&y))
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    yaml_parser_set_input_string(&y, (const unsigned char *)buf, len);
    yaml_document_t doc;
    if (!yaml_parser_load(&y, &doc)) {
        int r = errmsg(err, errlen, y.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL,
                       "line %zu: not valid YAML: %s", y.problem_mark.line + 1, yaml_problem(&y));
        yaml_parser_delete(&y);
        return r;
    }
    WebConfig c = {.min_version = WEB_TLS12, .max_version = WEB_TLS13};
    Parse p = {.doc = &doc, .c = &c, .err = err, .errlen = errlen};
    int r = 0;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root)
        r = each_pair(&p, root, "the file", top_pair);
    yaml_document_delete(&doc);
    if (r >= 0 && root) {
        /* A second document would be ignored silently by a reader that takes the first. */
        yaml_document_t next;
        if (!yaml_parser_load(&y, &next))
            r = errmsg(err, errlen, -EINVAL, "line %zu: not valid YAML: %s",
                       y.problem_mark.line + 1, yaml_problem(&y));
        else {
            if (yaml_document_get_root_node(&next))
                r = errmsg(err, errlen, -EINVAL,
                           "more than one YAML document (\"---\"): give exactly one");
            yaml_document_delete(&next);
        }
    }
    yaml_parser_delete(&y);
    if (r >= 0)
        r = check_tls(&p);
    if (r < 0) {
        if (r == -ENOMEM)
            errmsg(err, errlen, r, "out of memory");
        webconfig_done(&c);
        return r;
    }
    *ret = c;
    return 0;
}

/* Reads a whole regular file of at most WEBCONFIG_FILE_MAX bytes, NUL-terminated, into *ret.
 * O_NONBLOCK and the regular-file check keep a FIFO or a device from hanging the daemon. */
static int read_file(const char *path, const char *what, char **ret, size_t *ret_len, char *err,
                     size_t errlen)
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "%s %s: cannot open: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return errmsg(err, errlen, -errno, "%s %s: %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return errmsg(err, errlen, -EINVAL, "%s %s: not a regular file", what, path);
    if (st.st_size > WEBCONFIG_FILE_MAX)
        return errmsg(err, errlen, -EFBIG, "%s %s: larger than %d bytes", what, path,
                      WEBCONFIG_FILE_MAX);
    _cleanup_(freep) char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errmsg(err, errlen, -errno, "%s %s: cannot read: %s", what, path,
                          strerror(errno));
        if (n == 0 || (len += (size_t)n) == (size_t)st.st_size)
            break;
    }
    buf[len] = 0;
    if (ret_len)
        *ret_len = len;
    *ret = TAKE_PTR(buf);
    return 0;
}

/* path made relative to dir (the web config's directory) unless it is absolute. */
static int resolve(const char *dir, char **path)
{
    if (!*path || (*path)[0] == '/')
        return 0;
    char *s;
    if (asprintf(&s, "%s/%s", dir, *path) < 0)
        return -ENOMEM;
    free(*path);
    *path = s;
    return 0;
}

/* Reads a PEM file into *pem unless the PEM was given inline. */
static int read_pem(const char *file, const char *key, char **pem, char *err, size_t errlen)
{
    if (!file)
        return 0;
    char what[32];
    snprintf(what, sizeof(what), "%s", key);
    return read_file(file, what, pem, NULL, err, errlen);
}

/* What GnuTLS (and so libmicrohttpd) will say of the certificate, key and CA, said now, with
 * the file names, instead of a bare "cannot start the HTTP server" later. */
static int check_pem(const WebConfig *c, char *err, size_t errlen)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    gnutls_datum_t cert = {(unsigned char *)c->cert_pem, (unsigned)strlen(c->cert_pem)};
    gnutls_datum_t key = {(unsigned char *)c->key_pem, (unsigned)strlen(c->key_pem)};
    int r = 0;
    int k = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (k < 0)
        r = errmsg(err, errlen, -EINVAL,
                   "tls_server_config: the certificate (%s) and key (%s) cannot be used: %s",
                   c->cert_file ? c->cert_file : "cert", c->key_file ? c->key_file : "key",
                   gnutls_strerror(k));
    if (r == 0 && c->client_ca_pem) {
        gnutls_datum_t ca = {(unsigned char *)c->client_ca_pem, (unsigned)strlen(c->client_ca_pem)};
        k = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (k <= 0)
            r = errmsg(err, errlen, -EINVAL,
                       "tls_server_config: %s holds no usable CA certificate%s%s",
                       c->client_ca_file ? c->client_ca_file : "client_ca", k < 0 ? ": " : "",
                       k < 0 ? gnutls_strerror(k) : "");
    }
    gnutls_certificate_free_credentials(cred);
    return r;
}

int webconfig_read(const char *path, char **ret, size_t *ret_len, char *err, size_t errlen)
{
    return read_file(path, "web config file", ret, ret_len, err, errlen);
}

int webconfig_load(const char *path, WebConfig *ret, char *err, size_t errlen)
{
    _cleanup_(freep) char *buf = NULL;
    size_t len = 0;
    char msg[512];
    int r = read_file(path, "web config file", &buf, &len, err, errlen);
    if (r < 0)
        return r;
    WebConfig c;
    r = webconfig_parse(buf, len, &c, msg, sizeof(msg));
    if (r < 0)
        return errmsg(err, errlen, r, "%s: %s", path, msg);
    _cleanup_(freep) char *dir = strdup(path);
    if (!dir) {
        webconfig_done(&c);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    if (resolve(dir, &c.cert_file) < 0 || resolve(dir, &c.key_file) < 0 ||
        resolve(dir, &c.client_ca_file) < 0)
        r = errmsg(msg, sizeof(msg), -ENOMEM, "out of memory");
    if (r >= 0)
        r = read_pem(c.cert_file, "cert_file", &c.cert_pem, msg, sizeof(msg));
    if (r >= 0)
        r = read_pem(c.key_file, "key_file", &c.key_pem, msg, sizeof(msg));
    if (r >= 0)
        r = read_pem(c.client_ca_file, "client_ca_file", &c.client_ca_pem, msg, sizeof(msg));
    if (r >= 0 && c.tls)
        r = check_pem(&c, msg, sizeof(msg));
    if (r < 0) {
        webconfig_done(&c);
        return errmsg(err, errlen, r, "%s: %s", path, msg);
    }
    *ret = c;
    return 0;
}

void webconfig_done(WebConfig *c)
{
    if (!c)
        return;
    if (c->key_pem)
        explicit_bzero(c->key_pem, strlen(c->key_pem));
    free(c->cert_file);
    free(c->key_file);
    free(c->client_ca_file);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->client_ca_pem);
    for (size_t i = 0; i < c->nheaders; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    free(c->headers);
    for (size_t i = 0; i < c->nusers; i++) {
        free(c->users[i].name);
        free(c->users[i].hash);
    }
    free(c->users);
    *c = (WebConfig){0};
}

static bool str_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool webconfig_tls_equal(const WebConfig *a, const WebConfig *b)
{
    return a->tls == b->tls &&
           (!a->tls ||
            (str_equal(a->cert_pem, b->cert_pem) && str_equal(a->key_pem, b->key_pem) &&
             str_equal(a->client_ca_pem, b->client_ca_pem) && a->client_auth == b->client_auth &&
             a->min_version == b->min_version && a->max_version == b->max_version));
}

void webconfig_priorities(const WebConfig *c, char *buf, size_t size)
{
    static const char *const names[] = {"1.0", "1.1", "1.2", "1.3"};
    int n = snprintf(buf, size, "NORMAL:-VERS-ALL");
    for (int v = c->min_version; v <= (int)c->max_version && n > 0 && (size_t)n < size; v++)
        n += snprintf(buf + n, size - (size_t)n, ":+VERS-TLS%s", names[v]);
}
