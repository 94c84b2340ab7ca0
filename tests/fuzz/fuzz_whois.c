/* fuzz_whois: the /proc/PID/cgroup parser (a cgroup name is any bytes whoever may create one
 * chose, in a delegated subtree an unprivileged user), the NSpid parser and the group template
 * language, with what their callers rely on checked: every string terminated inside its field
 * and valid UTF-8 where it is served, a pod UID in the API's form, a QoS class exactly with a
 * pod, a template either refused or expanded within its buffer. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc/whois.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_string(const char *s, size_t size)
{
    if (!memchr(s, 0, size))
        abort();
    /* Sanitizing valid UTF-8 changes nothing: a served string must come out unchanged. */
    char again[WHOIS_PATH_MAX * 3];
    utf8_sanitize(again, sizeof(again), s);
    if (strcmp(again, s) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy without a NUL: a read past len is an ASan report. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);

    WhoisCgroup w;
    int r = whois_parse_cgroup(text, size, &w);
    if (r < 0 && r != -EINVAL && r != -ENOMEM)
        abort();
    if (r == 0) {
        check_string(w.path, sizeof(w.path));
        check_string(w.container_id, sizeof(w.container_id));
        check_string(w.pod_uid, sizeof(w.pod_uid));
        check_string(w.unit, sizeof(w.unit));
        if (w.path[0] == 0 || (w.runtime && !w.container_id[0]))
            abort();
        if ((w.pod_uid[0] != 0) != (w.qos_class != NULL))
            abort();
        if (w.pod_uid[0] && (strlen(w.pod_uid) != 36 || w.pod_uid[8] != '-' ||
                             w.pod_uid[13] != '-' || w.pod_uid[18] != '-' || w.pod_uid[23] != '-'))
            abort();
    }

    pid_t p;
    r = whois_parse_nspid(text, size, &p);
    if ((r == 0 && p <= 0) || (r < 0 && r != -EINVAL && r != -ENOENT))
        abort();
    free(text);

    char *tpl = malloc(size + 1);
    if (!tpl)
        return 0;
    memcpy(tpl, data, size);
    tpl[size] = 0;
    char err[512], out[WHOIS_GROUP_MAX];
    if (whois_template_check(tpl, err, sizeof(err)) == 0) {
        WhoisFields f = {"comm", "python3.12", "gunicorn", "web.service", "abc", NULL};
        whois_template_expand(tpl, &f, out, sizeof(out));
        if (!memchr(out, 0, sizeof(out)) || !out[0])
            abort();
    } else if (!err[0] || !memchr(err, 0, sizeof(err))) {
        abort();
    }
    free(tpl);
    return 0;
}
