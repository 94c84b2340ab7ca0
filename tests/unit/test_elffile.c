/* Tests for elf/elffile.c.
 *
 * The binaries under test are compiled here, at run time, with the system C compiler, so the
 * tests see what the toolchain really produces (PIE, non-PIE, shared library, stripped, LTO)
 * instead of checked-in blobs. Every expected value comes from another tool (nm, readelf) or from
 * a running process, never from a number written into this file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elf/elffile.h"

/* Fixture. */

static char tmpdir[PATH_MAX];
static const char *skip_reason; /* set when the toolchain is missing */
static bool have_lto;

/* Paths of the built files, all absolute and canonical so they match /proc/PID/maps. */
static char path_pie[PATH_MAX], path_nopie[PATH_MAX], path_nobid[PATH_MAX], path_lib[PATH_MAX],
    path_uselib[PATH_MAX], path_rdyn[PATH_MAX], path_stripped[PATH_MAX], path_multi[PATH_MAX],
    path_lto[PATH_MAX], path_many[PATH_MAX];

/* Children started by a test; the teardown kills whatever a failed assertion left running. */
static pid_t children[8];
static size_t n_children;

static const char prog_c[] =
    "#include <stdio.h>\n"
    "#include <unistd.h>\n"
    "const char marker[] = \"pymemd-elffile-marker\";\n"
    "int some_global = 42;\n"
    "char bss_buf[8192];\n"
    "struct runtime { long a; long b; };\n"
    "__attribute__((section(\".PyRuntime\"), used)) struct runtime py_runtime = {11, 22};\n"
    "int dup_name = 3;\n"
    "int *get_counter(void);\n"
    "int *get_counter(void) { static int counter_x = 7; return &counter_x; }\n"
    "int *get_dup(void);\n"
    "int *get_dup(void) { static int dup_name = 4; return &dup_name; }\n"
    "int main(void)\n"
    "{\n"
    "    char c;\n"
    "    bss_buf[0] = (char)*get_dup();\n"
    "    printf(\"%p %p %ld\\n\", (void *)&some_global, (void *)get_counter(), (long)getpid());\n"
    "    fflush(stdout);\n"
    "    while (read(0, &c, 1) > 0)\n"
    "        ;\n"
    "    return marker[0] + (int)py_runtime.a + bss_buf[0];\n"
    "}\n";

static const char lib_c[] = "int lib_global = 5;\n"
                            "static int lib_static = 6;\n"
                            "int *lib_addr(void) { return &lib_global; }\n"
                            "int *lib_static_addr(void) { return &lib_static; }\n";

/* The program never names lib_global itself, so the linker makes no copy relocation and the
 * address it prints is the one inside the library. */
static const char uselib_c[] =
    "#include <stdio.h>\n"
    "#include <unistd.h>\n"
    "int *lib_addr(void);\n"
    "int *lib_static_addr(void);\n"
    "int main(void)\n"
    "{\n"
    "    char c;\n"
    "    printf(\"%p %p %ld\\n\", (void *)lib_addr(), (void *)lib_static_addr(), (long)getpid());\n"
    "    fflush(stdout);\n"
    "    while (read(0, &c, 1) > 0)\n"
    "        ;\n"
    "    return 0;\n"
    "}\n";

/* Two files with a file-level static of the same name, and a function-level static: plain builds
 * give two `file_static` locals, LTO renames them file_static.lto_priv.N. */
static const char multi_a_c[] = "int *get_fs_a(void);\n"
                                "int *get_counter(void);\n"
                                "static int file_static = 1;\n"
                                "int *get_fs_a(void) { return &file_static; }\n"
                                "int *get_counter(void) { static int counter_x = 5; "
                                "return &counter_x; }\n";
static const char multi_b_c[] = "#include <stdio.h>\n"
                                "int *get_fs_a(void);\n"
                                "int *get_counter(void);\n"
                                "static int file_static = 2;\n"
                                "int main(void)\n"
                                "{\n"
                                "    printf(\"%p %p %p\\n\", (void *)get_fs_a(), (void "
                                "*)&file_static, (void *)get_counter());\n"
                                "    return 0;\n"
                                "}\n";

/* Enough symbols that the lookup index matters, about as many as libpython's .symtab. */
#define MANY_GLOBALS 12000
#define MANY_STATICS 2000

/* Process helpers. */

static bool find_in_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char *copy = strdup(path);
    assert_non_null(copy);
    bool found = false;
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char full[PATH_MAX];
        snprintf(full, sizeof(full), "%s/%s", dir, name);
        found = access(full, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* Runs argv (searched in PATH), with its stdout captured into *out when out is not NULL. stderr
 * is left alone so compiler errors show in the test log, unless `quiet`. Returns the exit status,
 * or -1. */
static int run(const char *const argv[], char **out, bool quiet)
{
    int pfd[2] = {-1, -1};
    if (out && pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (out)
            dup2(pfd[1], STDOUT_FILENO);
        else
            dup2(open("/dev/null", O_WRONLY), STDOUT_FILENO);
        if (quiet)
            dup2(open("/dev/null", O_WRONLY), STDERR_FILENO);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }

    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (out) {
        close(pfd[1]);
        for (;;) {
            if (len + 4096 + 1 > cap) {
                cap = (cap + 4096 + 1) * 2;
                char *n = realloc(buf, cap);
                assert_non_null(n);
                buf = n;
            }
            ssize_t n = read(pfd[0], buf + len, cap - len - 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        close(pfd[0]);
        buf[len] = '\0';
    }

    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (out)
        *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* noinline: once inlined, GCC 12 mistakes the returned buffer for a pointer to the local `out`
 * and warns about a dangling pointer in every caller. */
__attribute__((noinline)) static char *capture(const char *const argv[])
{
    char *out = NULL;
    int r = run(argv, &out, false);
    if (r != 0)
        fail_msg("%s %s exited with %d", argv[0], argv[1], r);
    return out;
}

static void path_join(char *buf, const char *name)
{
    int n = snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
    assert_true(n > 0 && n < PATH_MAX);
}

static int write_file(const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    path_join(path, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    bool ok = write(fd, data, len) == (ssize_t)len;
    close(fd);
    return ok ? 0 : -1;
}

static char *read_whole(const char *path, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    *ret_len = (size_t)st.st_size;
    return buf;
}

/* Starts a built program with pipes on stdin and stdout. The child dies with us (PDEATHSIG) and
 * when we close its stdin, and the teardown kills it, so none is left behind. */
static pid_t spawn(const char *path, int *ret_in, int *ret_out)
{
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    assert_true(n_children < sizeof(children) / sizeof(children[0]));
    children[n_children++] = pid;
    close(in[0]);
    close(out[1]);
    *ret_in = in[1];
    *ret_out = out[0];
    return pid;
}

/* Reads one line from the child, giving up after 20 s so a broken child fails the test instead of
 * hanging it. */
static void read_child_line(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 20000);
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r > 0);
        ssize_t n = read(fd, buf + len, 1);
        assert_true(n == 1);
        if (buf[len] == '\n')
            break;
        len++;
    }
    buf[len] = '\0';
}

static void kill_children(void)
{
    for (size_t i = 0; i < n_children; i++) {
        kill(children[i], SIGKILL);
        while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    n_children = 0;
}

static int teardown_children(void **state)
{
    kill_children();
    return 0;
}

/* The start of the mapping of `path` with file offset 0, parsed from /proc/PID/maps. */
static uint64_t map_start_of(pid_t pid, const char *path)
{
    char maps[64];
    snprintf(maps, sizeof(maps), "/proc/%ld/maps", (long)pid);
    FILE *fp = fopen(maps, "re");
    assert_non_null(fp);
    char line[PATH_MAX + 256];
    uint64_t found = 0;
    bool have = false;
    while (!have && fgets(line, sizeof(line), fp)) {
        unsigned long long start, end, offset;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &offset, &name_at) <
                4 ||
            name_at == 0)
            continue;
        char *name = line + name_at;
        name[strcspn(name, "\n")] = '\0';
        if (offset == 0 && strcmp(name, path) == 0) {
            found = start;
            have = true;
        }
    }
    fclose(fp);
    if (!have)
        fail_msg("no mapping of %s at offset 0 in %s", path, maps);
    return found;
}

/* Ground truth from binutils. */

typedef struct NmSym {
    char *name;
    uint64_t value;
    char type;
} NmSym;

typedef struct NmList {
    NmSym *syms;
    size_t n;
    char *text;
} NmList;

/* Parses `nm [--dynamic] --defined-only FILE`: lines of "value type name". */
static NmList nm_list(const char *path, bool dynamic)
{
    const char *argv_plain[] = {"nm", "--defined-only", path, NULL};
    const char *argv_dyn[] = {"nm", "--dynamic", "--defined-only", path, NULL};
    NmList l = {.text = capture(dynamic ? argv_dyn : argv_plain)};
    size_t cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(l.text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *end;
        unsigned long long v = strtoull(line, &end, 16);
        if (end == line || end[0] != ' ' || end[1] == '\0' || end[2] != ' ')
            continue;
        if (l.n == cap) {
            cap = cap ? cap * 2 : 256;
            l.syms = realloc(l.syms, cap * sizeof(*l.syms));
            assert_non_null(l.syms);
        }
        l.syms[l.n++] = (NmSym){.name = end + 3, .value = v, .type = end[1]};
    }
    return l;
}

static void nm_free(NmList *l)
{
    free(l->syms);
    free(l->text);
}

/* The value nm shows for exactly `name`; fails the test when nm does not list it. */
static uint64_t nm_value(const NmList *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->syms[i].name, name) == 0)
            return l->syms[i].value;
    fail_msg("nm does not list %s", name);
    return 0;
}

static bool nm_has(const NmList *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->syms[i].name, name) == 0)
            return true;
    return false;
}

/* Whether `name` is `base` followed by GCC/LTO suffixes: ".N" or ".lto_priv.N" pieces. */
static bool is_suffixed_name(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || name[bl] != '.')
        return false;
    const char *p = name + bl;
    while (*p == '.') {
        p++;
        if (strncmp(p, "lto_priv.", 9) == 0)
            p += 9;
        const char *d = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return false;
    }
    return *p == '\0';
}

/* The one symbol nm shows for a local static `base` however GCC/LTO renamed it. */
static const NmSym *nm_suffixed(const NmList *l, const char *base)
{
    const NmSym *found = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (!is_suffixed_name(l->syms[i].name, base))
            continue;
        if (found)
            fail_msg("nm lists both %s and %s", found->name, l->syms[i].name);
        found = &l->syms[i];
    }
    if (!found)
        fail_msg("nm lists no renamed %s", base);
    return found;
}

/* The hex after "Build ID: " in `readelf -n`, or NULL when readelf shows none. */
static char *readelf_build_id(const char *path)
{
    const char *argv[] = {"readelf", "-n", path, NULL};
    char *out = capture(argv);
    char *p = strstr(out, "Build ID: ");
    char *hex = NULL;
    if (p) {
        p += strlen("Build ID: ");
        hex = strndup(p, strspn(p, "0123456789abcdef"));
    }
    free(out);
    return hex;
}

typedef struct ReSection {
    uint64_t addr, offset, size;
    bool nobits;
} ReSection;

/* Looks a section up in `readelf -SW`: "[Nr] Name Type Address Off Size ...". */
static bool readelf_section(const char *path, const char *name, ReSection *ret)
{
    const char *argv[] = {"readelf", "-SW", path, NULL};
    char *out = capture(argv);
    bool found = false;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line && !found;
         line = strtok_r(NULL, "\n", &save)) {
        char *b = strchr(line, ']');
        char sname[256], type[64];
        unsigned long long addr, off, size;
        if (!strstr(line, "  [") || !b ||
            sscanf(b + 1, "%255s %63s %llx %llx %llx", sname, type, &addr, &off, &size) != 5)
            continue;
        if (strcmp(sname, name) == 0) {
            *ret = (ReSection){addr, off, size, strcmp(type, "NOBITS") == 0};
            found = true;
        }
    }
    free(out);
    return found;
}

/* The e_type word from `readelf -h`: "EXEC" or "DYN". */
static int readelf_type(const char *path)
{
    const char *argv[] = {"readelf", "-h", path, NULL};
    char *out = capture(argv);
    char *p = strstr(out, "Type:");
    assert_non_null(p);
    p += strlen("Type:");
    p += strspn(p, " ");
    int type = strncmp(p, "EXEC ", 5) == 0 ? ET_EXEC : strncmp(p, "DYN ", 4) == 0 ? ET_DYN : -1;
    free(out);
    return type;
}

/* The LOAD lines of `readelf -lW`: "LOAD off vaddr paddr filesz memsz flags align". */
static size_t readelf_loads(const char *path, ElfLoad *loads, size_t max)
{
    const char *argv[] = {"readelf", "-lW", path, NULL};
    char *out = capture(argv);
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned long long off, vaddr, paddr, filesz, memsz;
        int flags_at = 0;
        if (sscanf(line, " LOAD %llx %llx %llx %llx %llx %n", &off, &vaddr, &paddr, &filesz, &memsz,
                   &flags_at) != 5)
            continue;
        assert_true(n < max);
        /* Flags are letters that may be separated by spaces ("R E"); the last field is align. */
        char *flags = line + flags_at;
        char *align = strrchr(line, ' ');
        assert_non_null(align);
        uint32_t pf = 0;
        for (char *c = flags; c < align; c++)
            pf |= *c == 'R' ? PF_R : *c == 'W' ? PF_W : *c == 'E' ? PF_X : 0;
        loads[n++] = (ElfLoad){vaddr, off, filesz, memsz, strtoull(align + 1, NULL, 16), pf};
    }
    free(out);
    return n;
}

/* Group setup: build everything. */

static int cc(const char *const *args, bool quiet)
{
    const char *argv[32] = {"cc"};
    size_t n = 1;
    for (; args[n - 1]; n++) {
        assert_true(n < 31);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    return run(argv, NULL, quiet);
}

static char *many_source(void)
{
    size_t cap = (size_t)(MANY_GLOBALS + MANY_STATICS) * 64 + 256;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t len = 0;
    for (int i = 0; i < MANY_GLOBALS; i++)
        len += (size_t)snprintf(s + len, cap - len, "int many_g%d = %d;\n", i, i);
    for (int i = 0; i < MANY_STATICS; i++)
        len += (size_t)snprintf(s + len, cap - len, "static int many_s%d = %d;\n", i, i);
    len += (size_t)snprintf(s + len, cap - len, "int *many_statics[] = {\n");
    for (int i = 0; i < MANY_STATICS; i++)
        len += (size_t)snprintf(s + len, cap - len, "&many_s%d,\n", i);
    len += (size_t)snprintf(s + len, cap - len, "};\n");
    assert_true(len < cap);
    return s;
}

static int build_all(void **state)
{
    static const char *const tools[] = {"cc", "nm", "readelf", "strip"};
    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        if (!find_in_path(tools[i])) {
            static char reason[64];
            snprintf(reason, sizeof(reason), "%s is not in PATH", tools[i]);
            skip_reason = reason;
            return 0;
        }
    }

    const char *base = getenv("TMPDIR");
    char templ[PATH_MAX];
    snprintf(templ, sizeof(templ), "%s/pymemd-elf-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(templ) || !realpath(templ, tmpdir))
        return -1;

    char src_prog[PATH_MAX], src_lib[PATH_MAX], src_uselib[PATH_MAX], src_a[PATH_MAX],
        src_b[PATH_MAX], src_many[PATH_MAX];
    path_join(src_prog, "prog.c");
    path_join(src_lib, "lib.c");
    path_join(src_uselib, "uselib.c");
    path_join(src_a, "multi_a.c");
    path_join(src_b, "multi_b.c");
    path_join(src_many, "many.c");
    path_join(path_pie, "pie");
    path_join(path_nopie, "nopie");
    path_join(path_nobid, "nobid");
    path_join(path_lib, "libelftest.so");
    path_join(path_uselib, "uselib");
    path_join(path_rdyn, "rdyn");
    path_join(path_stripped, "rdyn.stripped");
    path_join(path_multi, "multi");
    path_join(path_lto, "lto");
    path_join(path_many, "libmany.so");

    char *many = many_source();
    int r = write_file("prog.c", prog_c, sizeof(prog_c) - 1) |
            write_file("lib.c", lib_c, sizeof(lib_c) - 1) |
            write_file("uselib.c", uselib_c, sizeof(uselib_c) - 1) |
            write_file("multi_a.c", multi_a_c, sizeof(multi_a_c) - 1) |
            write_file("multi_b.c", multi_b_c, sizeof(multi_b_c) - 1) |
            write_file("many.c", many, strlen(many));
    free(many);
    if (r != 0)
        return -1;

    char rpath[PATH_MAX + 16], libdir[PATH_MAX + 4];
    snprintf(rpath, sizeof(rpath), "-Wl,-rpath,%s", tmpdir);
    snprintf(libdir, sizeof(libdir), "-L%s", tmpdir);

    /* -O1 keeps the tiny programs' statics and globals as they are written. */
    const char *const builds[][16] = {
        {"-O1", "-fPIE", "-pie", "-Wl,--build-id=sha1", "-o", path_pie, src_prog, NULL},
        {"-O1", "-fno-pie", "-no-pie", "-Wl,--build-id=sha1", "-o", path_nopie, src_prog, NULL},
        {"-O1", "-Wl,--build-id=none", "-o", path_nobid, src_prog, NULL},
        {"-O1", "-shared", "-fPIC", "-Wl,--build-id=sha1", "-o", path_lib, src_lib, NULL},
        {"-O1", "-o", path_uselib, src_uselib, libdir, "-lelftest", rpath, NULL},
        {"-O1", "-rdynamic", "-o", path_rdyn, src_prog, NULL},
        {"-O1", "-o", path_multi, src_a, src_b, NULL},
        {"-O0", "-shared", "-fPIC", "-o", path_many, src_many, NULL},
    };
    for (size_t i = 0; i < sizeof(builds) / sizeof(builds[0]); i++)
        if (cc(builds[i], false) != 0)
            return -1;

    const char *strip_argv[] = {"strip", "-o", path_stripped, path_rdyn, NULL};
    if (run(strip_argv, NULL, false) != 0)
        return -1;

    /* Partitioning LTO into one unit per symbol forces GCC to promote and rename the statics.
     * A compiler without LTO support only loses the LTO test, so its chatter (lto-wrapper notes
     * about serial compilation) is kept out of the log. */
    const char *const lto[] = {"-O1", "-flto", "-flto-partition=max", "-o", path_lto, src_a,
                               src_b, NULL};
    have_lto = cc(lto, true) == 0;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int remove_all(void **state)
{
    kill_children();
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#define REQUIRE_TOOLCHAIN()                                                                        \
    do {                                                                                           \
        if (skip_reason) {                                                                         \
            print_message("skipped: %s\n", skip_reason);                                           \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static ElfFile *open_ok(const char *path)
{
    ElfFile *f = NULL;
    int r = elffile_open(path, &f);
    if (r < 0)
        fail_msg("elffile_open(%s) = %d (%s)", path, r, strerror(-r));
    assert_non_null(f);
    return f;
}

static uint64_t sym_value(const ElfFile *f, const char *name)
{
    ElfSymbol s;
    int r = elffile_symbol(f, name, &s);
    if (r < 0)
        fail_msg("elffile_symbol(%s) = %d (%s)", name, r, strerror(-r));
    return s.value;
}

/* Tests. */

static void test_type_and_loads(void **state)
{
    REQUIRE_TOOLCHAIN();
    const char *paths[] = {path_pie, path_nopie, path_lib, path_many, path_stripped};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        _cleanup_(elffile_freep) ElfFile *f = open_ok(paths[i]);
        assert_int_equal(elffile_type(f), readelf_type(paths[i]));

        ElfLoad expect[16];
        size_t n_expect = readelf_loads(paths[i], expect, 16), n;
        const ElfLoad *loads = elffile_loads(f, &n);
        assert_true(n_expect > 0);
        assert_int_equal(n, n_expect);
        for (size_t j = 0; j < n; j++) {
            assert_int_equal(loads[j].vaddr, expect[j].vaddr);
            assert_int_equal(loads[j].offset, expect[j].offset);
            assert_int_equal(loads[j].filesz, expect[j].filesz);
            assert_int_equal(loads[j].memsz, expect[j].memsz);
            assert_int_equal(loads[j].align, expect[j].align);
            assert_int_equal(loads[j].flags, expect[j].flags);
        }
    }
    assert_int_equal(readelf_type(path_pie), ET_DYN);
    assert_int_equal(readelf_type(path_nopie), ET_EXEC);
}

static int nm_sym_cmp(const void *a, const void *b)
{
    return strcmp(((const NmSym *)a)->name, ((const NmSym *)b)->name);
}

/* Every name nm shows once must resolve to the value nm shows. */
static void check_all_nm_symbols(const char *path, bool dynamic)
{
    _cleanup_(elffile_freep) ElfFile *f = open_ok(path);
    NmList l = nm_list(path, dynamic);
    assert_true(l.n > 0);
    /* Sorted, a name nm shows more than once has its twins next to it. */
    qsort(l.syms, l.n, sizeof(*l.syms), nm_sym_cmp);
    size_t checked = 0;
    for (size_t i = 0; i < l.n; i++) {
        const NmSym *s = &l.syms[i];
        /* Versioned names (foo@GLIBC_2.2.5) are not how symbols are spelled in the table. */
        if (strchr(s->name, '@'))
            continue;
        if ((i > 0 && strcmp(l.syms[i - 1].name, s->name) == 0) ||
            (i + 1 < l.n && strcmp(l.syms[i + 1].name, s->name) == 0))
            continue;
        ElfSymbol sym;
        int r = elffile_symbol(f, s->name, &sym);
        if (r < 0)
            fail_msg("%s: elffile_symbol(%s) = %d", path, s->name, r);
        if (sym.value != s->value)
            fail_msg("%s: %s is %#llx, nm says %#llx", path, s->name, (unsigned long long)sym.value,
                     (unsigned long long)s->value);
        if (dynamic)
            assert_true(sym.from_dynsym);
        checked++;
    }
    assert_true(checked > 0);
    nm_free(&l);
}

static void test_symbols_match_nm(void **state)
{
    REQUIRE_TOOLCHAIN();
    check_all_nm_symbols(path_pie, false);
    check_all_nm_symbols(path_nopie, false);
    check_all_nm_symbols(path_lib, false);
    check_all_nm_symbols(path_lib, true);
    check_all_nm_symbols(path_rdyn, true);
    check_all_nm_symbols(path_stripped, true);
}

static void test_symbols_many(void **state)
{
    REQUIRE_TOOLCHAIN();
    /* Over 14000 names: the full cross-check also shows repeated lookups stay cheap. */
    check_all_nm_symbols(path_many, false);
    check_all_nm_symbols(path_many, true);

    _cleanup_(elffile_freep) ElfFile *f = open_ok(path_many);
    NmList l = nm_list(path_many, false);
    ElfSymbol s;
    assert_int_equal(elffile_symbol(f, "many_s0", &s), 0);
    assert_int_equal(s.value, nm_value(&l, "many_s0"));
    assert_false(s.from_dynsym);
    assert_int_equal(elffile_symbol(f, "many_g0", &s), 0);
    assert_true(s.from_dynsym);
    assert_int_equal(s.size, sizeof(int));
    assert_int_equal(elffile_symbol(f, "many_g", &s), -ENOENT);
    assert_int_equal(elffile_symbol(f, "many_g00", &s), -ENOENT);
    assert_int_equal(elffile_symbol(f, "zzzz_not_there", &s), -ENOENT);
    assert_int_equal(elffile_symbol(f, "", &s), -EINVAL);
    nm_free(&l);
}

typedef struct LookupJob {
    const ElfFile *f;
    const NmList *nm;
    size_t start;
    size_t mismatches;
} LookupJob;

static void *lookup_thread(void *arg)
{
    LookupJob *job = arg;
    for (size_t k = 0; k < 2000; k++) {
        const NmSym *s = &job->nm->syms[(job->start + k * 7) % job->nm->n];
        ElfSymbol sym;
        if (strncmp(s->name, "many_g", 6) != 0)
            continue;
        if (elffile_symbol(job->f, s->name, &sym) != 0 || sym.value != s->value)
            job->mismatches++;
    }
    return NULL;
}

/* An ElfFile is shared through a cache, so the first lookups may race to build the index. */
static void test_symbols_threads(void **state)
{
    REQUIRE_TOOLCHAIN();
    _cleanup_(elffile_freep) ElfFile *f = open_ok(path_many);
    NmList l = nm_list(path_many, true);
    pthread_t threads[8];
    LookupJob jobs[8];
    for (size_t i = 0; i < 8; i++) {
        jobs[i] = (LookupJob){.f = f, .nm = &l, .start = i * 1000};
        assert_int_equal(pthread_create(&threads[i], NULL, lookup_thread, &jobs[i]), 0);
    }
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].mismatches, 0);
    }
    nm_free(&l);
}

static void test_symbol_suffixes(void **state)
{
    REQUIRE_TOOLCHAIN();
    _cleanup_(elffile_freep) ElfFile *f = open_ok(path_pie);
    NmList l = nm_list(path_pie, false);

    /* GCC emits a function-level static as counter_x.N. */
    const NmSym *counter = nm_suffixed(&l, "counter_x");
    assert_false(nm_has(&l, "counter_x"));
    assert_int_equal(sym_value(f, "counter_x"), counter->value);
    assert_int_equal(sym_value(f, counter->name), counter->value);

    /* The global dup_name and the static dup_name.N both exist; the exact name wins. */
    const NmSym *dup = nm_suffixed(&l, "dup_name");
    assert_true(nm_value(&l, "dup_name") != dup->value);
    assert_int_equal(sym_value(f, "dup_name"), nm_value(&l, "dup_name"));
    assert_int_equal(sym_value(f, dup->name), dup->value);

    /* Prefixes and non-digit suffixes are different names. */
    ElfSymbol s;
    memset(&s, 0xa5, sizeof(s));
    ElfSymbol before = s;
    assert_int_equal(elffile_symbol(f, "counter", &s), -ENOENT);
    assert_int_equal(elffile_symbol(f, "counter_x.", &s), -ENOENT);
    assert_int_equal(elffile_symbol(f, "counter_x.lto_priv", &s), -ENOENT);
    assert_int_equal(elffile_symbol(f, "some_globa", &s), -ENOENT);
    assert_memory_equal(&s, &before, sizeof(s));
    nm_free(&l);
}

static void test_symbol_ambiguous_and_lto(void **state)
{
    REQUIRE_TOOLCHAIN();
    ElfSymbol s;
    {
        /* Two file-level statics called file_static in two files: which one is meant cannot be
         * known, so the lookup refuses rather than guess. */
        _cleanup_(elffile_freep) ElfFile *f = open_ok(path_multi);
        NmList l = nm_list(path_multi, false);
        size_t n = 0;
        for (size_t i = 0; i < l.n; i++)
            n += strcmp(l.syms[i].name, "file_static") == 0;
        assert_int_equal(n, 2);
        assert_int_equal(elffile_symbol(f, "file_static", &s), -ENOTUNIQ);
        assert_int_equal(sym_value(f, "counter_x"), nm_suffixed(&l, "counter_x")->value);
        nm_free(&l);
    }

    if (!have_lto) {
        print_message("LTO part skipped: cc -flto failed\n");
        return;
    }
    _cleanup_(elffile_freep) ElfFile *f = open_ok(path_lto);
    NmList l = nm_list(path_lto, false);
    size_t n_priv = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (!is_suffixed_name(l.syms[i].name, "file_static"))
            continue;
        assert_non_null(strstr(l.syms[i].name, ".lto_priv."));
        /* Each full name is still found exactly. */
        assert_int_equal(sym_value(f, l.syms[i].name), l.syms[i].value);
        n_priv++;
    }
    assert_int_equal(n_priv, 2);
    assert_int_equal(elffile_symbol(f, "file_static", &s), -ENOTUNIQ);
    /* A function-level static under LTO (counter_x.0.lto_priv.0 with GCC 12) is found by its
     * source name. */
    const NmSym *counter = nm_suffixed(&l, "counter_x");
    assert_int_equal(sym_value(f, "counter_x"), counter->value);
    nm_free(&l);
}

/* Runs `prog`, which prints two addresses and its pid, and checks that the bias computed from
 * its maps plus the symbol values gives those addresses. */
static void check_bias(const char *prog, const char *elf_path, const char *sym1, const char *sym2,
                       bool expect_zero)
{
    int in, out;
    pid_t pid = spawn(prog, &in, &out);
    char line[256];
    read_child_line(out, line, sizeof(line));
    void *addr1, *addr2;
    long printed_pid;
    assert_int_equal(sscanf(line, "%p %p %ld", &addr1, &addr2, &printed_pid), 3);
    assert_int_equal(printed_pid, pid);

    uint64_t start = map_start_of(pid, elf_path);
    _cleanup_(elffile_freep) ElfFile *f = open_ok(elf_path);
    uint64_t bias = 0x1234;
    assert_int_equal(elffile_bias(f, start, &bias), 0);
    if (expect_zero)
        assert_int_equal(bias, 0);
    else
        assert_true(bias != 0);
    assert_int_equal(bias + sym_value(f, sym1), (uint64_t)(uintptr_t)addr1);
    assert_int_equal(bias + sym_value(f, sym2), (uint64_t)(uintptr_t)addr2);

    close(in);
    close(out);
    kill_children();
}

static void test_bias_pie(void **state)
{
    REQUIRE_TOOLCHAIN();
    check_bias(path_pie, path_pie, "some_global", "counter_x", false);
}

static void test_bias_nopie(void **state)
{
    REQUIRE_TOOLCHAIN();
    check_bias(path_nopie, path_nopie, "some_global", "counter_x", true);
}

static void test_bias_shared_lib(void **state)
{
    REQUIRE_TOOLCHAIN();
    /* lib_static is only in .symtab, lib_global also in .dynsym. */
    check_bias(path_uselib, path_lib, "lib_global", "lib_static", false);
}

static void test_bias_no_loads(void **state)
{
    REQUIRE_TOOLCHAIN();
    /* An ELF header whose program header table is empty: valid enough to open, nothing to map. */
    Elf64_Ehdr eh = {
        .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT},
        .e_type = ET_DYN,
        .e_machine = EM_X86_64,
        .e_version = EV_CURRENT,
        .e_ehsize = sizeof(Elf64_Ehdr),
    };
    assert_int_equal(write_file("noloads", &eh, sizeof(eh)), 0);
    char path[PATH_MAX];
    path_join(path, "noloads");
    _cleanup_(elffile_freep) ElfFile *f = open_ok(path);
    uint64_t bias = 77;
    assert_int_equal(elffile_bias(f, 0x1000, &bias), -ENOEXEC);
    assert_int_equal(bias, 77);
    size_t n = 5;
    elffile_loads(f, &n);
    assert_int_equal(n, 0);
    ElfSymbol s;
    assert_int_equal(elffile_symbol(f, "main", &s), -ENOENT);
    assert_false(elffile_has_symtab(f));
    char c;
    assert_int_equal(elffile_read_vaddr(f, 0, &c, 1), -EFAULT);
}

static void test_read_vaddr(void **state)
{
    REQUIRE_TOOLCHAIN();
    const char *paths[] = {path_pie, path_nopie};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_(elffile_freep) ElfFile *f = open_ok(paths[i]);
        static const char expect[] = "pymemd-elffile-marker";
        char buf[sizeof(expect)];
        assert_int_equal(elffile_read_vaddr(f, sym_value(f, "marker"), buf, sizeof(buf)), 0);
        assert_string_equal(buf, expect);

        int g = 0;
        assert_int_equal(elffile_read_vaddr(f, sym_value(f, "some_global"), &g, sizeof(g)), 0);
        assert_int_equal(g, 42);
        long rt[2] = {0, 0};
        assert_int_equal(elffile_read_vaddr(f, sym_value(f, "py_runtime"), rt, sizeof(rt)), 0);
        assert_int_equal(rt[0], 11);
        assert_int_equal(rt[1], 22);

        /* .bss has an address but no bytes in the file. */
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(elffile_read_vaddr(f, sym_value(f, "bss_buf"), buf, 1), -EFAULT);
        assert_int_equal(buf[0], 'x');

        /* Past the end of the last segment's file part, and straddling it. */
        size_t n;
        const ElfLoad *loads = elffile_loads(f, &n);
        const ElfLoad *last = &loads[n - 1];
        uint64_t end = last->vaddr + last->filesz;
        assert_int_equal(elffile_read_vaddr(f, end, buf, 1), -EFAULT);
        assert_int_equal(elffile_read_vaddr(f, end - 4, buf, 8), -EFAULT);
        assert_int_equal(elffile_read_vaddr(f, end - 4, buf, 4), 0);
        /* Address arithmetic that would wrap around. */
        assert_int_equal(elffile_read_vaddr(f, UINT64_MAX - 2, buf, 8), -EFAULT);
        assert_int_equal(elffile_read_vaddr(f, UINT64_MAX, buf, 1), -EFAULT);
        /* Below every segment (non-PIE text starts at 0x400000; PIE's first page is 0). */
        if (loads[0].vaddr > 0)
            assert_int_equal(elffile_read_vaddr(f, loads[0].vaddr - 1, buf, 1), -EFAULT);
    }
}

static void test_build_id(void **state)
{
    REQUIRE_TOOLCHAIN();
    const char *paths[] = {path_pie, path_nopie, path_lib, path_stripped};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *expect = readelf_build_id(paths[i]);
        assert_non_null(expect);
        _cleanup_(elffile_freep) ElfFile *f = open_ok(paths[i]);
        const uint8_t *id = NULL;
        size_t len = 0;
        assert_int_equal(elffile_build_id(f, &id, &len), 0);
        assert_int_equal(len * 2, strlen(expect));
        char hex[256] = "";
        for (size_t j = 0; j < len && j < 100; j++)
            snprintf(hex + 2 * j, 3, "%02x", id[j]);
        assert_string_equal(hex, expect);
        free(expect);
    }

    assert_null(readelf_build_id(path_nobid));
    _cleanup_(elffile_freep) ElfFile *f = open_ok(path_nobid);
    const uint8_t *id = (const uint8_t *)"untouched";
    size_t len = 99;
    assert_int_equal(elffile_build_id(f, &id, &len), -ENOENT);
    assert_string_equal((const char *)id, "untouched");
    assert_int_equal(len, 99);
}

static void test_sections(void **state)
{
    REQUIRE_TOOLCHAIN();
    const char *paths[] = {path_pie, path_nopie};
    const char *names[] = {".text", ".data", ".bss", ".PyRuntime", ".dynsym", ".symtab"};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_(elffile_freep) ElfFile *f = open_ok(paths[i]);
        for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            ReSection expect = {0};
            assert_true(readelf_section(paths[i], names[j], &expect));
            ElfSection s;
            assert_int_equal(elffile_section(f, names[j], &s), 0);
            assert_int_equal(s.addr, expect.addr);
            assert_int_equal(s.offset, expect.offset);
            assert_int_equal(s.size, expect.size);
            assert_int_equal(s.nobits, expect.nobits);
        }
        /* This is how CPython 3.10+ is found: _PyRuntime is alone at the start of .PyRuntime. */
        NmList l = nm_list(paths[i], false);
        ElfSection rt;
        assert_int_equal(elffile_section(f, ".PyRuntime", &rt), 0);
        assert_int_equal(rt.addr, nm_value(&l, "py_runtime"));
        assert_int_equal(rt.addr, sym_value(f, "py_runtime"));
        nm_free(&l);

        ElfSection s;
        memset(&s, 0x5a, sizeof(s));
        ElfSection before = s;
        assert_int_equal(elffile_section(f, ".nope", &s), -ENOENT);
        assert_int_equal(elffile_section(f, ".PyRuntim", &s), -ENOENT);
        assert_int_equal(elffile_section(f, "", &s), -ENOENT);
        assert_memory_equal(&s, &before, sizeof(s));
    }
}

static void test_stripped(void **state)
{
    REQUIRE_TOOLCHAIN();
    _cleanup_(elffile_freep) ElfFile *full = open_ok(path_rdyn);
    _cleanup_(elffile_freep) ElfFile *f = open_ok(path_stripped);
    assert_true(elffile_has_symtab(full));
    assert_false(elffile_has_symtab(f));
    ElfSection s;
    assert_int_equal(elffile_section(f, ".symtab", &s), -ENOENT);

    /* -rdynamic exported some_global, so .dynsym still has it. */
    NmList l = nm_list(path_stripped, true);
    ElfSymbol sym;
    assert_int_equal(elffile_symbol(f, "some_global", &sym), 0);
    assert_int_equal(sym.value, nm_value(&l, "some_global"));
    assert_true(sym.from_dynsym);
    nm_free(&l);

    /* Local statics went with .symtab. */
    assert_int_equal(elffile_symbol(f, "counter_x", &sym), -ENOENT);
    NmList lf = nm_list(path_rdyn, false);
    assert_int_equal(sym_value(full, "counter_x"), nm_suffixed(&lf, "counter_x")->value);
    nm_free(&lf);

    /* Without -rdynamic, the PIE's own globals are in .symtab only. */
    _cleanup_(elffile_freep) ElfFile *pie = open_ok(path_pie);
    NmList d = nm_list(path_pie, true);
    assert_false(nm_has(&d, "some_global"));
    assert_int_equal(elffile_symbol(pie, "some_global", &sym), 0);
    assert_false(sym.from_dynsym);
    assert_true(elffile_has_symtab(pie));
    nm_free(&d);
}

/* Corrupt input. */

static void write_bytes(const char *name, const void *data, size_t len, char *path)
{
    assert_int_equal(write_file(name, data, len), 0);
    path_join(path, name);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64: deterministic, so a failure reproduces. */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Calls everything on f; the values do not matter, only that nothing crashes (ASan builds check
 * every read) and that results are 0 or a negative errno. */
static void exercise(const ElfFile *f)
{
    static const char *const names[] = {"some_global", "counter_x", "marker", "main",
                                        "py_runtime",  "dup_name",  "bss_buf"};
    ElfSymbol s;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int r = elffile_symbol(f, names[i], &s);
        assert_true(r == 0 || r == -ENOENT || r == -ENOTUNIQ);
        char buf[64];
        if (r == 0) {
            r = elffile_read_vaddr(f, s.value, buf, sizeof(buf));
            assert_true(r == 0 || r == -EFAULT);
        }
    }
    ElfSection sec;
    int r = elffile_section(f, ".PyRuntime", &sec);
    assert_true(r == 0 || r == -ENOENT);
    const uint8_t *id;
    size_t len;
    r = elffile_build_id(f, &id, &len);
    assert_true(r == 0 || r == -ENOENT);
    if (r == 0)
        assert_true(len > 0 && id != NULL);
    uint64_t bias;
    r = elffile_bias(f, 0x7f0000000000, &bias);
    assert_true(r == 0 || r == -ENOEXEC);
    size_t n;
    const ElfLoad *loads = elffile_loads(f, &n);
    for (size_t i = 0; i < n; i++) {
        uint8_t b[16];
        r = elffile_read_vaddr(f, loads[i].vaddr, b, MIN(sizeof(b), loads[i].filesz));
        assert_true(r == 0 || r == -EFAULT);
    }
    elffile_has_symtab(f);
    assert_true(elffile_type(f) == ET_EXEC || elffile_type(f) == ET_DYN);
}

static void test_corrupt(void **state)
{
    REQUIRE_TOOLCHAIN();
    size_t size;
    char *image = read_whole(path_pie, &size);
    char path[PATH_MAX];
    ElfFile *f = (ElfFile *)0x1;

    /* Truncated to half: the data segment is gone, so the file is refused at open. */
    write_bytes("half", image, size / 2, path);
    assert_int_equal(elffile_open(path, &f), -ENOEXEC);
    assert_ptr_equal(f, (ElfFile *)0x1);

    /* GNU ld puts the section header table last, so every cut damages some header table and
     * must be refused, down to a cut of a single byte. */
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(const void *)image;
    assert_int_equal(eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize, size);
    const size_t cuts[] = {0, 1, 4, 16, 63, 64, 100, 1000, 4096, size - 64, size - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        write_bytes("cut", image, cuts[i], path);
        ElfFile *g = NULL;
        assert_int_equal(elffile_open(path, &g), -ENOEXEC);
        assert_null(g);
    }

    /* Random bytes, with and without an ELF header in front. */
    rng_state = 0x9e3779b97f4a7c15ULL;
    char *noise = malloc(65536);
    assert_non_null(noise);
    for (size_t i = 0; i < 65536; i++)
        noise[i] = (char)rng();
    write_bytes("random", noise, 65536, path);
    assert_int_equal(elffile_open(path, &f), -ENOEXEC);
    memcpy(noise, image, sizeof(Elf64_Ehdr));
    write_bytes("random_hdr", noise, 65536, path);
    {
        ElfFile *g = NULL;
        if (elffile_open(path, &g) == 0)
            exercise(g);
        elffile_free(g);
    }
    free(noise);

    /* Wrong class, byte order or machine. */
    const struct {
        size_t offset;
        uint8_t value;
    } edits[] = {
        {EI_CLASS, ELFCLASS32},
        {EI_DATA, ELFDATA2MSB},
        {offsetof(Elf64_Ehdr, e_machine), EM_AARCH64},
        {offsetof(Elf64_Ehdr, e_type), ET_REL},
        {EI_MAG1, 'X'},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *copy = malloc(size);
        assert_non_null(copy);
        memcpy(copy, image, size);
        copy[edits[i].offset] = (char)edits[i].value;
        write_bytes("edited", copy, size, path);
        assert_int_equal(elffile_open(path, &f), -ENOEXEC);
        free(copy);
    }

    /* Not regular files, and no file at all. */
    assert_int_equal(elffile_open(tmpdir, &f), -ENOEXEC);
    assert_int_equal(elffile_open("/dev/null", &f), -ENOEXEC);
    path_join(path, "does-not-exist");
    assert_int_equal(elffile_open(path, &f), -ENOENT);
    assert_ptr_equal(f, (ElfFile *)0x1);
    assert_null(elffile_free(NULL));

    /* An ElfFile takes the descriptor even when it refuses the file. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(elffile_open_fd(fd, &f), -ENOEXEC);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);

    free(image);
}

/* Flips random bytes in the headers, tables and strings of a real binary, many times over. */
static void test_mutations(void **state)
{
    REQUIRE_TOOLCHAIN();
    size_t size;
    char *image = read_whole(path_pie, &size);
    char *copy = malloc(size);
    assert_non_null(copy);
    char path[PATH_MAX];

    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(const void *)image;
    uint64_t shoff = eh->e_shoff;
    assert_true(shoff > 0 && shoff < size);

    rng_state = 0x123456789abcdefULL;
    size_t opened = 0;
    for (int iter = 0; iter < 400; iter++) {
        memcpy(copy, image, size);
        int flips = 1 + (int)(rng() % 8);
        for (int k = 0; k < flips; k++) {
            /* Aim at the ELF and program headers, the section header table, or anywhere. */
            uint64_t where = rng();
            size_t at;
            switch (where % 3) {
            case 0:
                at = (size_t)(rng() % 512);
                break;
            case 1:
                at = (size_t)(shoff + rng() % (size - shoff));
                break;
            default:
                at = (size_t)(rng() % size);
                break;
            }
            copy[at] = (char)rng();
        }
        write_bytes("mutant", copy, size, path);
        ElfFile *f = NULL;
        int r = elffile_open(path, &f);
        assert_true(r == 0 || r == -ENOEXEC || r == -ENOMEM);
        if (r == 0) {
            exercise(f);
            opened++;
        }
        elffile_free(f);
    }
    /* Most single-byte changes leave a usable file, so this did exercise the parsers. */
    assert_true(opened > 0);
    free(copy);
    free(image);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_type_and_loads, teardown_children),
        cmocka_unit_test_teardown(test_symbols_match_nm, teardown_children),
        cmocka_unit_test_teardown(test_symbols_many, teardown_children),
        cmocka_unit_test_teardown(test_symbols_threads, teardown_children),
        cmocka_unit_test_teardown(test_symbol_suffixes, teardown_children),
        cmocka_unit_test_teardown(test_symbol_ambiguous_and_lto, teardown_children),
        cmocka_unit_test_teardown(test_bias_pie, teardown_children),
        cmocka_unit_test_teardown(test_bias_nopie, teardown_children),
        cmocka_unit_test_teardown(test_bias_shared_lib, teardown_children),
        cmocka_unit_test_teardown(test_bias_no_loads, teardown_children),
        cmocka_unit_test_teardown(test_read_vaddr, teardown_children),
        cmocka_unit_test_teardown(test_build_id, teardown_children),
        cmocka_unit_test_teardown(test_sections, teardown_children),
        cmocka_unit_test_teardown(test_stripped, teardown_children),
        cmocka_unit_test_teardown(test_corrupt, teardown_children),
        cmocka_unit_test_teardown(test_mutations, teardown_children),
    };
    return cmocka_run_group_tests(tests, build_all, remove_all);
}
