/* pymemctl referrers PID TYPE: who holds the live instances of a type (DESIGN §4.1). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fmt.h"
#include "jget.h"
#include "pymemd/api.h"

static const char referrers_help[] =
    "Usage: pymemctl referrers PID TYPE [--fresh] [--url URL] [--json] [--no-color]\n"
    "Who keeps the live instances of TYPE alive in process PID: the objects that\n"
    "refer to them directly, by type; those pymemd does not follow but found them\n"
    "in; weak references; and the chains from a module global or class attribute\n"
    "that reach them, shortest first, with how many instances each holds.\n"
    "TYPE is a type name of `pymemctl objects PID`. pymemd copies the heap as for a\n"
    "census (the process may be stopped briefly; pymemctl waits up to 35 s). The\n"
    "daemon keeps its latest answer for each type and shows it again, saying when\n"
    "it was computed.\n"
    "\n"
    "      --fresh           have pymemd compute it again now (at most once per\n"
    "                        census_min_interval per process: inside it the kept\n"
    "                        answer is shown)\n"
    "      --json            print the daemon's JSON\n"
    "                        (GET " PYMEMD_PATH_PROCESSES "/PID/referrers?type=TYPE)\n";

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void print_groups(const cJSON *doc, const char *key, const char *title)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, key), *g;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0)
        return;
    printf("%s\n  %10s %10s  %s\n", title, "objects", "refs", "type");
    cJSON_ArrayForEach(g, a)
    {
        const char *t = str(g, "type");
        printf("  %10.0f %10.0f  %s\n", num(g, "objects"), num(g, "refs"), t ? t : "?");
    }
}

static void print_roots(const cJSON *doc)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "roots"), *r, *c;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0)
        return;
    printf("Held from (shortest chains first):\n");
    cJSON_ArrayForEach(r, a)
    {
        const char *root = str(r, "root"), *kind = str(r, "kind");
        if (!root)
            printf("  (no chain from sys.modules or a thread: garbage cycles, C code)");
        else
            printf("  %s (%s)", root, kind ? kind : "?");
        printf("  holds %.0f\n", num(r, "holds"));
        const cJSON *chain = cJSON_GetObjectItemCaseSensitive(r, "chain");
        if (!cJSON_IsArray(chain) || cJSON_GetArraySize(chain) == 0)
            continue;
        printf("    ");
        bool first = true;
        cJSON_ArrayForEach(c, chain)
        {
            printf("%s%s", first ? "" : " -> ", cJSON_IsString(c) ? c->valuestring : "?");
            first = false;
        }
        printf("\n");
    }
}

/* TYPE in a query string: letters, digits and ._-@ as they are, anything else %XX. */
static int encode(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || strchr("._-@", ch);
        if (n + 4 >= size)
            return -ENAMETOOLONG;
        n += (size_t)snprintf(out + n, size - n, plain ? "%c" : "%%%02X", ch);
    }
    out[n] = 0;
    return 0;
}

int cmd_referrers(Ctl *ctl, int argc, char **argv)
{
    enum { OPT_FRESH = OPT_FIRST_COMMAND_OPTION };
    static const struct option options[] = {
        CTL_COMMON_OPTIONS,
        {"fresh", no_argument, NULL, OPT_FRESH},
        {0},
    };
    _cleanup_(ctl_answer_clear) CtlAnswer a = {0};
    bool fresh = false;
    int opt, r;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_FRESH:
            fresh = true;
            break;
        case 'h':
            fputs(referrers_help, stdout);
            return CTL_EXIT_OK;
        case ':':
        case '?':
            return ctl_option_error("referrers", opt, argv);
        default:
            if ((r = ctl_common_option(ctl, opt, optarg)) != 0)
                return r;
        }
    }
    long pid;
    if (optind + 2 != argc)
        return ctl_usage_error("referrers", "referrers needs a PID and a TYPE");
    if (ctl_parse_pid(argv[optind], &pid) < 0)
        return ctl_usage_error("referrers", "\"%s\" is not a process id", argv[optind]);
    char type[400], path[512];
    if (encode(argv[optind + 1], type, sizeof(type)) < 0 || !*type)
        return ctl_usage_error("referrers", "TYPE must be a type name of 1 to 127 characters");
    if ((r = ctl_ready(ctl)) != 0)
        return r;
    snprintf(path, sizeof(path), PYMEMD_PATH_PROCESSES "/%ld/referrers?type=%s%s", pid, type,
             fresh ? "&fresh=1" : "");
    if (ctl_get(ctl, path, CTL_TIMEOUT_CENSUS_MS, &a) != CTL_EXIT_OK)
        return ctl_fail(&a);
    if (ctl->json)
        return ctl_print_raw(&a);
    const char *t = str(a.json, "type");
    printf("%s in process %ld: %.0f live instances (at %s, %s; paused %.3f s)\n",
           t ? t : argv[optind + 1], pid, num(a.json, "count"), FMT(fmt_clock, jnum(a.json, "at")),
           FMT(fmt_ago, jnum(a.json, "at")), num(a.json, "pause_seconds"));
    print_groups(a.json, "referrers", "Held directly by:");
    print_groups(a.json, "unfollowed",
                 "Not followed by pymemd, but holding them (addresses found in their bodies):");
    print_groups(a.json, "weak", "Weak references (not holding):");
    print_roots(a.json);
    if (num(a.json, "unreadable") > 0)
        printf("(%.0f objects could not be read and were not searched)\n",
               num(a.json, "unreadable"));
    return CTL_EXIT_OK;
}
