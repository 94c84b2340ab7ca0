/* auth: HTTP basic authentication against the bcrypt hashes of a web config's
 * basic_auth_users, checked with the system's libcrypt.
 *
 * A check takes the time of one bcrypt whether or not the user exists (an unknown user is
 * hashed against a dummy of the same cost), and hashes are compared in constant time, so the
 * answer's timing tells a client neither which users exist nor how much of a hash it matched.
 * Successful checks are remembered, keyed by a SHA-256 of user, password and hash (as
 * exporter-toolkit caches them), so that a scrape every second costs one bcrypt, not one per
 * scrape. Thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "http/webconfig.h"

typedef struct Auth Auth;

/* A checker for users (copied; n may be 0: then every check fails). Returns 0 and the new
 * checker in *ret (free with auth_free()), or -ENOMEM. */
int auth_new(const WebUser *users, size_t n, Auth **ret);
/* NULL-safe; returns NULL. */
Auth *auth_free(Auth *a);

/* Whether user and pass (NULL: not sent) are those of a configured user. A request with no
 * user at all is refused at once; any other check costs one bcrypt unless cached. */
bool auth_check(Auth *a, const char *user, const char *pass);

/* How many bcrypt computations checks have cost so far (for tests of the cache). */
unsigned long auth_bcrypt_runs(Auth *a);
