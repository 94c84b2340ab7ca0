/* whois: who a process is, beyond its pid: the container and Kubernetes pod it runs in and the
 * systemd unit it belongs to (from /proc/PID/cgroup), its pid inside its own PID namespace, the
 * top-most ancestor running the same interpreter, and the service group a name template makes
 * of these.
 *
 * Everything here is read once per program image (at discovery and after exec()), not per
 * sample: a process does not change container, and the few that change cgroup (a `systemd-run
 * --scope` wrapper) do so before they exec the program pymemd reads. Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longer cgroup paths are cut (and said to be, with a trailing "..."): a path is a label and a
 * JSON string, not something pymemd opens. */
#define WHOIS_PATH_MAX 512
#define WHOIS_ID_MAX   128
#define WHOIS_UNIT_MAX 256

typedef struct WhoisCgroup {
    /* The process's cgroup: the first path other than "/" of the unified (v2) line, the
     * name=systemd (v1) line, the controllers' lines in file order; "/" when all are.
     * Relative to the cgroup namespace of the reader, as the kernel prints it: a pymemd in a
     * container without the host's cgroup namespace sees "/../../kubepods.slice/...". */
    char path[WHOIS_PATH_MAX];
    /* The innermost container: a 64-digit hex id for the OCI runtimes, the machine name for
     * systemd-nspawn and machined; "" when the process is in none pymemd recognises. */
    char container_id[WHOIS_ID_MAX];
    /* "containerd", "cri-o", "docker", "podman", "systemd-nspawn", "systemd-machined", or NULL
     * when the path names a container but not who runs it (the cgroupfs driver of Kubernetes
     * names a container by its bare id for containerd and Docker alike). Static strings. */
    const char *runtime;
    /* The Kubernetes pod UID (with dashes, the API's form, also under the systemd driver, which
     * writes them as '_'); "" outside a pod. */
    char pod_uid[40];
    /* "guaranteed", "burstable", "besteffort" inside a pod, else NULL. Static strings. */
    const char *qos_class;
    /* The innermost systemd unit (a .service or .scope) that is not a container's own scope:
     * "nginx.service", a user unit "app.service" (under user@UID.service), "session-3.scope";
     * "" when none (a container of Kubernetes, a cgroupfs-driver Docker container). */
    char unit[WHOIS_UNIT_MAX];
} WhoisCgroup;

/* Parses the text of a /proc/PID/cgroup file (len bytes, no NUL needed). Lines the kernel would
 * not write are skipped, not fatal: a file of none at all is -EINVAL. */
int whois_parse_cgroup(const char *text, size_t len, WhoisCgroup *ret);
/* Reads and parses /proc/PID/cgroup. -ESRCH when the process is gone, -ENOENT on a kernel
 * without cgroups. */
int whois_read_cgroup(pid_t pid, WhoisCgroup *ret);

/* The pid of the process in its own, innermost PID namespace: the last number of the NSpid line
 * of the status text (len bytes); -ENOENT when there is no such line (kernels before 4.1). */
int whois_parse_nspid(const char *status, size_t len, pid_t *ret);
/* The same from /proc/PID/status. -ESRCH when the process is gone. */
int whois_ns_pid(pid_t pid, pid_t *ret);

/* The top-most ancestor of pid that is the same program image: parents are followed while they
 * were forked from one another without exec(), which the image's stamp tells (the same
 * executable file, and the same code, stack and heap start addresses, which exec() draws anew
 * under address space randomisation and fork() copies; proc/procinfo.h). A gunicorn, uWSGI,
 * Celery or multiprocessing (fork) master and the workers it forked find the same master; a
 * Python program a Python supervisor (supervisord, a test runner) started with exec() is its
 * own top, and so is any process whose parent cannot be read. At most WHOIS_ANCESTORS_MAX
 * parents are looked at. -ESRCH when pid is gone. */
#define WHOIS_ANCESTORS_MAX 64
int whois_top_ancestor(pid_t pid, pid_t *ret);

/* /proc/PID/comm, made valid UTF-8: at most 15 bytes. -ESRCH when the process is gone. */
int whois_comm(pid_t pid, char *buf, size_t size);

/* The fields a group name template (config key `group`) may use, each "" when unknown. */
typedef struct WhoisFields {
    const char *comm;                /* the process's own name */
    const char *exe_base;            /* the last part of its executable's path */
    const char *top_python_ancestor; /* the comm of whois_top_ancestor(), or comm */
    const char *unit;
    const char *container_id;
    const char *pod_uid;
} WhoisFields;

#define WHOIS_TEMPLATE_MAX     256
#define WHOIS_GROUP_MAX        256
#define WHOIS_TEMPLATE_DEFAULT "{top_python_ancestor}"
/* The field names, for messages and --help: "{comm}, {exe_base}, ...". */
extern const char whois_template_fields[];

/* Checks a group template: text with fields in braces ({comm}), at most WHOIS_TEMPLATE_MAX
 * bytes, at least one field, every `{` closed and naming a known field, no `}` outside one.
 * Returns 0, or -EINVAL with a sentence in err. */
int whois_template_check(const char *tpl, char *err, size_t errlen);
/* Expands a checked template into out (size bytes, cut if longer). A group that comes out empty
 * (every field it names unknown for this process, and no text around them) is the comm: a
 * label value "" would read as the label missing. */
void whois_template_expand(const char *tpl, const WhoisFields *f, char *out, size_t size);
