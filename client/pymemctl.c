/* pymemctl: the command-line client of pymemd (DESIGN.md §3). main() parses the options shared
 * by every command, picks the command and is the only place that exits. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "fmt.h"
#include "pymemd/api.h"

static const char usage_text[] =
    "Usage: pymemctl [--url URL] [--json] [--no-color] [--cacert FILE] [--user USER]\n"
    "                COMMAND [ARGS]\n"
    "Shows what pymemd reads out of running CPython processes: memory, pymalloc, the\n"
    "garbage collector and the objects on the heap.\n"
    "\n"
    "Commands:\n"
    "  ls                    one line per watched process\n"
    "  show PID              everything known about one process\n"
    "  objects PID [--top N] [--sort count|bytes] [--fresh]\n"
    "                        live objects by type, from the object census\n"
    "  growth PID [--top N]  types that grew between the last two censuses\n"
    "  referrers PID TYPE    who holds the live instances of TYPE, and from where\n"
    "  top [--interval SECONDS] [--window history|refresh] [-b [-n N]]\n"
    "                        live view of every process, refreshed each second:\n"
    "                        changes, rates and trends; -b writes text frames\n"
    "  help [COMMAND]        this text, or a command's\n"
    "\n"
    "Options (also accepted after the command):\n"
    "      --url URL         where pymemd serves (default " PYMEMD_DEFAULT_URL ",\n"
    "                        or $PYMEMD_URL; the option wins)\n"
    "      --json            print the daemon's JSON unchanged\n"
    "      --no-color        no colours (there are none either when stdout is not a\n"
    "                        terminal or NO_COLOR is set)\n"
    "      --cacert FILE     CA certificate (PEM) that signed pymemd's certificate,\n"
    "                        for an https:// URL (default: the system's CAs)\n"
    "      --cert FILE       client certificate (PEM), when pymemd asks for one\n"
    "      --key FILE        its private key (default: in the --cert file)\n"
    "      --user USER[:PASSWORD]\n"
    "                        basic auth; without :PASSWORD, $PYMEMCTL_PASSWORD or\n"
    "                        USER's password in ~/.netrc (never a prompt). Without\n"
    "                        --user, ~/.netrc (or $NETRC) if it names the host\n"
    "  -h, --help            this text; 'pymemctl COMMAND --help' for a command\n"
    "  -V, --version         print the version\n"
    "\n"
    "Exit status: 0 ok, 1 the daemon answered with an error (its message is\n"
    "printed), 2 wrong usage, 3 the daemon could not be reached.\n";

typedef struct Command {
    const char *name;
    int (*run)(Ctl *ctl, int argc, char **argv);
} Command;

static const Command commands[] = {
    {"ls", cmd_ls},         {"show", cmd_show}, {"objects", cmd_objects},
    {"growth", cmd_growth}, {"top", cmd_top},   {"referrers", cmd_referrers},
};

static const Command *find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* `pymemctl help [COMMAND]`: the command's own --help, so there is one text per command. */
static int run_help(Ctl *ctl, int argc, char **argv)
{
    const Command *c;
    char *args[] = {NULL, (char *)"--help", NULL};

    if (argc < 2) {
        fputs(usage_text, stdout);
        return CTL_EXIT_OK;
    }
    c = find_command(argv[1]);
    if (!c || argc > 2)
        return ctl_usage_error(NULL, "help: no such command: %s", argv[argc > 2 ? 2 : 1]);
    args[0] = argv[1];
    optind = 0;
    return c->run(ctl, 2, args);
}

/* Parses the options before the command; returns -1 to go on, or an exit code. */
static int parse_global(Ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        CTL_COMMON_OPTIONS,
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    int opt, r;

    /* '+': stop at the command, whose options are its own. */
    while ((opt = getopt_long(argc, argv, "+:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(usage_text, stdout);
            return CTL_EXIT_OK;
        case 'V':
            printf("pymemctl %s\n", PYMEMD_VERSION);
            return CTL_EXIT_OK;
        case ':':
        case '?':
            return ctl_option_error(NULL, opt, argv);
        default:
            r = ctl_common_option(ctl, opt, optarg);
            if (r != 0)
                return r;
        }
    }
    return -1;
}

static int run(Ctl *ctl, int argc, char **argv)
{
    const Command *c;
    int first, r;

    opterr = 0; /* messages of our own, with a hint */
    r = parse_global(ctl, argc, argv);
    if (r >= 0)
        return r;
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0)
        return run_help(ctl, argc - optind, argv + optind);
    c = find_command(argv[optind]);
    if (!c)
        return ctl_usage_error(NULL, "no such command: %s", argv[optind]);
    first = optind;
    optind = 0; /* the command parses its own arguments, from its name on */
    return c->run(ctl, argc - first, argv + first);
}

int main(int argc, char **argv)
{
    Ctl ctl = {0};
    int r;

    fmt_init();
    r = run(&ctl, argc, argv);
    ctl_done(&ctl);
    /* Output that did not reach its file (a full disk) is a failure, not a success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl_error("writing to standard output: %s", strerror(errno));
        r = r ? r : CTL_EXIT_DAEMON;
    }
    return r;
}
