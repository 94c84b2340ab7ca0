#include "http/auth.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "util/macro.h"

/* Enough for every client that scrapes one pymemd; an older entry is overwritten first. */
#define AUTH_CACHE_SLOTS 64
#define AUTH_KEY_LEN     32 /* SHA-256 */

struct Auth {
    WebUser *users;
    size_t nusers;
    char dummy[CRYPT_GENSALT_OUTPUT_SIZE]; /* a bcrypt setting of the users' highest cost */
    pthread_mutex_t lock;
    unsigned char cache[AUTH_CACHE_SLOTS][AUTH_KEY_LEN];
    bool cached[AUTH_CACHE_SLOTS];
    size_t next; /* the slot the next success takes */
    unsigned long runs;
};

/* Compares n bytes in a time that depends on n only. */
static bool same_bytes(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

Auth *auth_free(Auth *a)
{
    if (!a)
        return NULL;
    for (size_t i = 0; i < a->nusers; i++) {
        free(a->users[i].name);
        free(a->users[i].hash);
    }
    free(a->users);
    pthread_mutex_destroy(&a->lock);
    free(a);
    return NULL;
}

int auth_new(const WebUser *users, size_t n, Auth **ret)
{
    Auth *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->lock, NULL);
    a->users = calloc(n ? n : 1, sizeof(*a->users));
    if (!a->users) {
        auth_free(a);
        return -ENOMEM;
    }
    int cost = 4;
    for (size_t i = 0; i < n; i++) {
        a->users[i] = (WebUser){strdup(users[i].name), strdup(users[i].hash)};
        a->nusers++;
        if (!a->users[i].name || !a->users[i].hash) {
            auth_free(a);
            return -ENOMEM;
        }
        /* webconfig_parse() checked the form $2x$NN$...; NN is the cost. */
        int c = (users[i].hash[4] - '0') * 10 + (users[i].hash[5] - '0');
        cost = MAX(cost, c);
    }
    /* A fresh setting of that cost (no password hashes to it: it is no full hash), so the work
     * for an unknown user is that of a real check. */
    if (!crypt_gensalt_rn("$2b$", (unsigned long)cost, NULL, 0, a->dummy, sizeof(a->dummy))) {
        auth_free(a);
        return -EIO;
    }
    *ret = a;
    return 0;
}

/* SHA-256 of user, NUL, pass, NUL, hash: the cache key of a successful check. */
static int cache_key(const char *user, const char *pass, const char *hash,
                     unsigned char key[AUTH_KEY_LEN])
{
    size_t lu = strlen(user), lp = strlen(pass), lh = strlen(hash);
    _cleanup_(freep) char *buf = malloc(lu + lp + lh + 2);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, user, lu + 1);
    memcpy(buf + lu + 1, pass, lp + 1);
    memcpy(buf + lu + lp + 2, hash, lh);
    int r = gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, lu + lp + lh + 2, key) < 0 ? -EIO : 0;
    explicit_bzero(buf, lu + lp + lh + 2);
    return r;
}

bool auth_check(Auth *a, const char *user, const char *pass)
{
    /* No credentials at all: nothing to learn from the timing, so no bcrypt is spent on it
     * (a flood of bare requests must not keep the server threads busy hashing). */
    if (!a || a->nusers == 0 || !user)
        return false;
    const char *u = user ? user : "", *p = pass ? pass : "";
    /* Looks at every user, so that the time does not say where in the list a name is. */
    const WebUser *found = NULL;
    size_t lu = strlen(u);
    for (size_t i = 0; i < a->nusers; i++) {
        bool eq = strlen(a->users[i].name) == lu && same_bytes(a->users[i].name, u, lu);
        if (eq && !found)
            found = &a->users[i];
    }
    const char *hash = found ? found->hash : a->dummy;

    unsigned char key[AUTH_KEY_LEN];
    bool have_key = user && pass && found && cache_key(u, p, hash, key) == 0;
    if (have_key) {
        bool hit = false;
        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++)
            hit |= a->cached[i] && same_bytes(a->cache[i], key, AUTH_KEY_LEN);
        pthread_mutex_unlock(&a->lock);
        if (hit)
            return true;
    }

    /* struct crypt_data is some 32 KiB: not for a server thread's stack. */
    _cleanup_(freep) struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd)
        return false;
    const char *out = crypt_rn(p, hash, cd, sizeof(*cd));
    pthread_mutex_lock(&a->lock);
    a->runs++;
    pthread_mutex_unlock(&a->lock);
    size_t lh = strlen(hash);
    bool ok = out && strlen(out) == lh && same_bytes(out, hash, lh) && found && user && pass;
    explicit_bzero(cd, sizeof(*cd));
    if (ok && have_key) {
        pthread_mutex_lock(&a->lock);
        memcpy(a->cache[a->next], key, AUTH_KEY_LEN);
        a->cached[a->next] = true;
        a->next = (a->next + 1) % AUTH_CACHE_SLOTS;
        pthread_mutex_unlock(&a->lock);
    }
    return ok;
}

unsigned long auth_bcrypt_runs(Auth *a)
{
    pthread_mutex_lock(&a->lock);
    unsigned long r = a->runs;
    pthread_mutex_unlock(&a->lock);
    return r;
}
