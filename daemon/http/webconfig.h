/* webconfig: the web configuration file of --web.config.file, in the format of Prometheus'
 * exporter-toolkit (docs/web-configuration.md there), so that one file serves pymemd and the
 * exporters next to it:
 *
 *   tls_server_config:      cert_file/cert, key_file/key, client_ca_file/client_ca,
 *                           client_auth_type, min_version, max_version
 *   http_server_config:     headers (the five exporter-toolkit allows), http2 (accepted and
 *                           ignored: libmicrohttpd speaks HTTP/1.1)
 *   basic_auth_users:       user: bcrypt hash ($2y$, $2b$ or $2a$)
 *
 * Keys exporter-toolkit knows and pymemd cannot honour (cipher_suites, curve_preferences,
 * prefer_server_cipher_suites, client_allowed_sans, rate_limit) are refused by name rather than
 * silently ignored: a file that asks for a restriction pymemd would not apply must not start.
 * Unknown keys, duplicate keys and values of the wrong kind are refused too.
 *
 * Nothing here logs: errors come back as -errno with a sentence in the caller's buffer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Larger than any sensible web config or PEM file; bounds what a wrong path can make us read. */
#define WEBCONFIG_FILE_MAX (1024 * 1024)

/* tls_server_config.client_auth_type, with Go's crypto/tls meaning. */
typedef enum WebClientAuth {
    WEB_NO_CLIENT_CERT,
    WEB_REQUEST_CLIENT_CERT,
    WEB_REQUIRE_ANY_CLIENT_CERT,
    WEB_VERIFY_CLIENT_CERT_IF_GIVEN,
    WEB_REQUIRE_AND_VERIFY_CLIENT_CERT,
} WebClientAuth;

/* TLS protocol versions, in order (min_version/max_version: TLS10..TLS13). */
typedef enum WebTlsVersion { WEB_TLS10, WEB_TLS11, WEB_TLS12, WEB_TLS13 } WebTlsVersion;

typedef struct WebHeader {
    char *name; /* as exporter-toolkit spells it, e.g. "Strict-Transport-Security" */
    char *value;
} WebHeader;

typedef struct WebUser {
    char *name;
    char *hash; /* a bcrypt hash, checked by webconfig_parse to look like one */
} WebUser;

typedef struct WebConfig {
    bool tls;        /* any tls_server_config key set: serve HTTPS only */
    char *cert_file; /* paths as written; webconfig_load makes them absolute */
    char *key_file;
    char *client_ca_file;
    char *cert_pem;      /* PEM text: inline (cert:) or read from cert_file by load */
    char *key_pem;       /*   likewise key: / key_file */
    char *client_ca_pem; /*   likewise client_ca: / client_ca_file; NULL when none */
    WebClientAuth client_auth;
    WebTlsVersion min_version; /* default TLS12, as exporter-toolkit */
    WebTlsVersion max_version; /* default TLS13 */
    bool http2_given;          /* http_server_config.http2 was written (it has no effect) */
    WebHeader *headers;
    size_t nheaders;
    WebUser *users;
    size_t nusers;
} WebConfig;

/* Parses the YAML text buf (len bytes, need not be NUL-terminated) into *ret. Only the text is
 * looked at: no file named in it is read, so any byte string may be fed to it (a fuzzer does).
 * Returns 0, or -EINVAL with a sentence naming the line and the key in err (errlen bytes,
 * always NUL-terminated when errlen > 0), -EFBIG above WEBCONFIG_FILE_MAX, or -ENOMEM. *ret is
 * written only on success; the caller frees it with webconfig_done(). An empty document is a
 * valid configuration that changes nothing. */
int webconfig_parse(const char *buf, size_t len, WebConfig *ret, char *err, size_t errlen);

/* Reads the file at path (a regular file, at most WEBCONFIG_FILE_MAX bytes), parses it, makes
 * the file names in it relative to the file's directory (as exporter-toolkit does), reads the
 * certificate, key and client CA files and checks that the key belongs to the certificate and
 * that the CA file holds a certificate. Returns 0 or -errno with a sentence starting with the
 * path in err; *ret as for webconfig_parse(). */
int webconfig_load(const char *path, WebConfig *ret, char *err, size_t errlen);

/* The text of the web config file at path (a regular file, at most WEBCONFIG_FILE_MAX bytes):
 * what a reload hands the HTTP listener, which cannot read the file itself (privsep). The
 * caller frees *ret. Returns 0 or -errno with a sentence in err. */
int webconfig_read(const char *path, char **ret, size_t *ret_len, char *err, size_t errlen);

/* Frees what c owns and zeroes it (the key's bytes are wiped first). NULL-safe, idempotent. */
void webconfig_done(WebConfig *c);

/* Whether a and b configure the same TLS (certificate, key, CA, client auth, versions): a
 * reload that changes it needs a restart, since libmicrohttpd cannot change it while serving. */
bool webconfig_tls_equal(const WebConfig *a, const WebConfig *b);

/* The GnuTLS priority string for c's versions, e.g. "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3",
 * into buf. */
void webconfig_priorities(const WebConfig *c, char *buf, size_t size);

/* The name of a client_auth_type as exporter-toolkit spells it. */
const char *webconfig_client_auth_name(WebClientAuth a);

/* Whether s is a bcrypt hash of the form $2a$/$2b$/$2y$, a cost of 04-31, then 53 characters of
 * bcrypt's base64 alphabet. */
bool webconfig_is_bcrypt(const char *s);
