#include "metrics/snapshot.h"

#include <string.h>
#include <zlib.h>

#include "config.h"
#include "metrics/prom.h"

Snapshot *snapshot_new(const JsonDaemonInfo *info, TargetSample *samples, size_t n)
{
    Snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        for (size_t i = 0; i < n; i++)
            targetsample_done(&samples[i]);
        free(samples);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->gz_lock, NULL);
    s->samples = samples;
    s->n = n;
    s->body[SNAP_JSON].data = json_document(info, samples, n);
    if (s->body[SNAP_JSON].data)
        s->body[SNAP_JSON].len = strlen(s->body[SNAP_JSON].data);
    s->body[SNAP_PROMETHEUS].data = prom_render(PROM_TEXT, info->version, samples, n,
                                                info->top_types, &s->body[SNAP_PROMETHEUS].len);
    s->body[SNAP_OPENMETRICS].data = prom_render(PROM_OPENMETRICS, info->version, samples, n,
                                                 info->top_types, &s->body[SNAP_OPENMETRICS].len);
    for (int f = 0; f < SNAP_NFORMATS; f++)
        if (!s->body[f].data) {
            snapshot_unref(s);
            return NULL;
        }
    return s;
}

Snapshot *snapshot_ref(Snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void snapshot_unref(Snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        targetsample_done(&s->samples[i]);
    free(s->samples);
    for (int f = 0; f < SNAP_NFORMATS; f++) {
        free(s->body[f].data);
        free(s->gz[f].data);
    }
    pthread_mutex_destroy(&s->gz_lock);
    free(s);
}

static int gzip_body(const SnapBody *in, SnapBody *out)
{
    z_stream z = {0};
    /* windowBits 15 + 16: a gzip wrapper, as Content-Encoding: gzip wants. */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, in->len);
    unsigned char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (unsigned char *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    size_t len = z.total_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    out->data = (char *)buf;
    out->len = len;
    return 0;
}

const SnapBody *snapshot_gzip(Snapshot *s, SnapFormat f)
{
    pthread_mutex_lock(&s->gz_lock);
    if (!s->gz[f].data && !s->gz_failed[f])
        s->gz_failed[f] = gzip_body(&s->body[f], &s->gz[f]) < 0;
    const SnapBody *b = s->gz[f].data ? &s->gz[f] : NULL;
    pthread_mutex_unlock(&s->gz_lock);
    return b;
}

const TargetSample *snapshot_find(const Snapshot *s, pid_t pid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->samples[i].pid == pid)
            return &s->samples[i];
    return NULL;
}

void holder_init(SnapshotHolder *h)
{
    pthread_mutex_init(&h->lock, NULL);
    h->cur = NULL;
}

void holder_done(SnapshotHolder *h)
{
    snapshot_unref(h->cur);
    h->cur = NULL;
    pthread_mutex_destroy(&h->lock);
}

void holder_swap(SnapshotHolder *h, Snapshot *s)
{
    pthread_mutex_lock(&h->lock);
    Snapshot *old = h->cur;
    h->cur = s;
    pthread_mutex_unlock(&h->lock);
    /* The old one is freed outside the lock, once the last reader lets go. */
    snapshot_unref(old);
}

Snapshot *holder_get(SnapshotHolder *h)
{
    pthread_mutex_lock(&h->lock);
    Snapshot *s = h->cur ? snapshot_ref(h->cur) : NULL;
    pthread_mutex_unlock(&h->lock);
    return s;
}
