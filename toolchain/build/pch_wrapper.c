/* g++, in front of the build machine's g++ while gcc's compiler proper is built (pch.py).

   Most of gcc's sources start with the same lines (config.h, system.h, coretypes.h, often
   backend.h), and parsing what they pull in is much of a small file's compile. For a compile
   of one .cc file whose first lines are only `#define NAME [WORDS]`, `#pragma GCC diagnostic`
   and `#include "H"` with H in MUSL_TOOLCHAIN_PCH_THROUGH or MUSL_TOOLCHAIN_PCH_HEADERS, this
   makes those lines, up to the last include of the latter, a header of their own in
   MUSL_TOOLCHAIN_PCH_DIR, precompiles it once with the compile's own flags and working folder
   (all of them part of its name), and adds `-include` of it: the source then reads the same
   lines again, where the include guards and identical #defines make them nothing. Every
   header named must resolve to the same path from the source as from the header, or the
   source compiles as it is. A header is made only when MUSL_TOOLCHAIN_PCH_AFTER compiles
   asked for it (a few uses do not pay for making it); one being made by another compile
   means this one goes without. Anything unexpected: the compile runs unchanged. Written in
   C because it runs for every host C++ compile: a process start has to cost next to nothing.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOURCE_HEAD 65536   /* the first lines are all this reads of a source */
#define MAX_LINES 64

/* A path into buf (PATH_MAX): 0, or -1 when it does not fit (the caller goes without). */
static int path_of(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, PATH_MAX, fmt, ap);
    va_end(ap);
    return n >= 0 && n < PATH_MAX ? 0 : -1;
}

static char *real_gxx(void) {
    /* the next g++ in PATH that is not this program's folder */
    char self[PATH_MAX], dir[PATH_MAX], cand[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return NULL;
    self[n] = 0;
    const char *path = getenv("PATH");
    if (!path) return NULL;
    char *copy = strdup(path), *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!*d || !realpath(d, dir)) continue;
        char resolved[PATH_MAX];
        if (path_of(cand, "%s/g++", dir) == 0 && access(cand, X_OK) == 0 && realpath(cand, resolved) && strcmp(resolved, self) != 0)
            return strdup(cand);
    }
    return NULL;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* Options after which the next argument is their value, not an input. */
static int takes_value(const char *a) {
    static const char *const opts[] = {"-o", "-MF", "-MT", "-MQ", "-I", "-D", "-U", "-isystem",
                                       "-idirafter", "-iprefix", "-iwithprefix", "-L", "-l", NULL};
    for (int i = 0; opts[i]; i++)
        if (strcmp(a, opts[i]) == 0) return 1;
    return 0;
}

/* Options that change how sources are read or what is made: with any, no header. */
static int refuses(const char *a) {
    static const char *const opts[] = {"-E", "-S", "-x", "-include", "-imacros", "-I-", "-M", "-MM",
                                       "-fpch-preprocess", "-fdirectives-only", "-nostdinc", "-", NULL};
    for (int i = 0; opts[i]; i++)
        if (strcmp(a, opts[i]) == 0) return 1;
    return strncmp(a, "-iquote", 7) == 0 || strncmp(a, "-save-temps", 11) == 0;
}

static int allowed_header(const char *name, const char *list) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && len && strncmp(p, name, n) == 0) return 1;
        p += len;
    }
    return 0;
}

static int is_ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* `pragma GCC diagnostic` push or pop, or ignored, warning or error of one -W option: lines
   that change only which warnings are shown (gcc's generated *-match-*.cc start with them) */
static int diagnostic_pragma(const char *d) {
    static const char *const kinds[] = {"ignored \"-W", "warning \"-W", "error \"-W", NULL};
    const char *head = "pragma GCC diagnostic ";
    if (strncmp(d, head, strlen(head)) != 0) return 0;
    d += strlen(head);
    if (strcmp(d, "push") == 0 || strcmp(d, "pop") == 0) return 1;
    for (int i = 0; kinds[i]; i++) {
        size_t n = strlen(kinds[i]);
        if (strncmp(d, kinds[i], n) != 0) continue;
        const char *q = d + n;
        while (is_ident_char(*q) || *q == '-' || *q == '=') q++;
        return q > d + n && q[0] == '"' && q[1] == 0;
    }
    return 0;
}

/* The source's first lines that can go into a header, as text with one space between
   words; NULL when none. includes[] gets the names the kept lines include. */
static char *leading_lines(const char *src, const char *list, const char *through, char **includes,
                           int *n_includes) {
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    char *buf = malloc(SOURCE_HEAD + 1);
    ssize_t got = 0, r;
    while (got < SOURCE_HEAD && (r = read(fd, buf + got, SOURCE_HEAD - got)) > 0) got += r;
    close(fd);
    buf[got] = 0;
    /* comments to spaces (a directive line keeps its line), stopping at a quote outside an
       #include's name: no string handling needed for what is accepted below */
    int in_block = 0;
    for (char *p = buf; *p; p++) {
        if (in_block) {
            if (p[0] == '*' && p[1] == '/') { p[0] = p[1] = ' '; p++; in_block = 0; }
            else if (*p != '\n') *p = ' ';
        } else if (p[0] == '/' && p[1] == '*') { p[0] = p[1] = ' '; p++; in_block = 1; }
        else if (p[0] == '/' && p[1] == '/') { while (*p && *p != '\n') *p++ = ' '; if (!*p) break; }
    }
    char *out = calloc(1, got + 2);
    size_t out_len = 0, keep_len = 0;
    int lines = 0, kept_includes = 0;
    *n_includes = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && lines < MAX_LINES; line = strtok_r(NULL, "\n", &save)) {
        /* the words of the line, one space apart */
        char norm[1024];
        size_t k = 0;
        int space = 0;
        for (char *p = line; *p && k < sizeof norm - 2; p++) {
            if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v') { space = k > 0; continue; }
            if (space) { norm[k++] = ' '; space = 0; }
            norm[k++] = *p;
        }
        norm[k] = 0;
        if (k == 0) continue;
        if (k >= sizeof norm - 2 || norm[k - 1] == '\\') break;
        lines++;
        if (norm[0] != '#') break;
        const char *d = norm + 1 + (norm[1] == ' ');
        if (strncmp(d, "include \"", 9) == 0) {
            const char *name = d + 9, *end = strchr(name, '"');
            if (!end || end[1] != 0 || end == name || *n_includes >= MAX_LINES) break;
            char *h = strndup(name, end - name);
            int ends = allowed_header(h, list);
            if (!ends && !allowed_header(h, through)) { free(h); break; }
            includes[(*n_includes)++] = h;
            out_len += sprintf(out + out_len, "#%s\n", d);
            if (ends) {
                keep_len = out_len;
                kept_includes = *n_includes;
            }
        } else if (strncmp(d, "define ", 7) == 0) {
            const char *p = d + 7;
            if (!is_ident_char(*p) || (*p >= '0' && *p <= '9')) break;
            while (is_ident_char(*p)) p++;
            if (*p && *p != ' ') break;               /* no function-like macros */
            for (const char *q = p; *q; q++)
                if (!is_ident_char(*q) && *q != ' ') goto stop;   /* words only */
            out_len += sprintf(out + out_len, "#%s\n", d);
        } else if (diagnostic_pragma(d)) {
            out_len += sprintf(out + out_len, "#%s\n", d);
        } else break;
    }
stop:
    free(buf);
    for (int i = kept_includes; i < *n_includes; i++) free(includes[i]);
    *n_includes = kept_includes;
    if (!keep_len) { free(out); return NULL; }
    out[keep_len] = 0;
    return out;
}

/* Where `#include "name"` finds its file from a file in `dir` ("" is the working folder):
   that folder first, then the -I folders in order; NULL if none has it. */
static char *resolve(const char *dir, const char *name, char **argv, int argc) {
    char p[PATH_MAX];
    if (dir) {
        if (path_of(p, "%s%s%s", dir, *dir ? "/" : "", name) == 0 && is_file(p)) return strdup(p);
    }
    for (int i = 1; i < argc; i++) {
        const char *inc = NULL;
        if (strcmp(argv[i], "-I") == 0 && i + 1 < argc) inc = argv[++i];
        else if (strncmp(argv[i], "-I", 2) == 0) inc = argv[i] + 2;
        else if (takes_value(argv[i])) { i++; continue; }
        if (!inc) continue;
        if (path_of(p, "%s/%s", inc, name) == 0 && is_file(p)) return strdup(p);
    }
    return NULL;
}

static const char *strip_dot(const char *p) {
    while (p[0] == '.' && p[1] == '/') p += 2;
    return p;
}

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h;
}

static int write_file(const char *path, const char *text) {
    char tmp[PATH_MAX];
    if (path_of(tmp, "%s.%d.tmp", path, (int)getpid()) != 0) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) { unlink(tmp); return -1; }
    return 0;
}

/* The precompiled header: the compile's flags, the header in, the .gch out, its messages
   to a log beside it. */
static int precompile(const char *real, char **flags, int n_flags, const char *header, const char *gch,
                      const char *log) {
    char tmp[PATH_MAX];
    if (path_of(tmp, "%s.%d.tmp", gch, (int)getpid()) != 0) return -1;
    char **args = calloc(n_flags + 8, sizeof *args);
    int k = 0;
    args[k++] = (char *)real;
    for (int i = 0; i < n_flags; i++) args[k++] = flags[i];
    args[k++] = "-x"; args[k++] = "c++-header"; args[k++] = (char *)header;
    args[k++] = "-o"; args[k++] = tmp; args[k] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execv(real, args);
        _exit(127);
    }
    int status = 0;
    int ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    free(args);
    if (ok && rename(tmp, gch) == 0) return 0;
    unlink(tmp);
    return -1;
}

/* One byte more in <base>.used (the stage's log counts them); the header's path. */
static char *used(const char *base, const char *header) {
    char p[PATH_MAX];
    if (path_of(p, "%s.used", base) == 0) {
        int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) { if (write(fd, "+", 1) != 1) { /* a count only */ } close(fd); }
    }
    return strdup(header);
}

/* The header for this compile, made if it is time: its path, or NULL to compile as is. */
static char *header_for(int argc, char **argv, const char *real) {
    const char *dir = getenv("MUSL_TOOLCHAIN_PCH_DIR"), *list = getenv("MUSL_TOOLCHAIN_PCH_HEADERS");
    const char *through = getenv("MUSL_TOOLCHAIN_PCH_THROUGH");
    const char *after_text = getenv("MUSL_TOOLCHAIN_PCH_AFTER");
    if (!dir || !*dir || !list || !*list) return NULL;
    long after = after_text ? strtol(after_text, NULL, 10) : 1;
    const char *src = NULL;
    int compile = 0;
    char **flags = calloc(argc, sizeof *flags);
    int n_flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (refuses(a)) return NULL;
        if (strcmp(a, "-c") == 0) { compile = 1; continue; }
        if (strcmp(a, "-o") == 0 || strcmp(a, "-MF") == 0 || strcmp(a, "-MT") == 0 || strcmp(a, "-MQ") == 0) {
            i++;                                   /* outputs: not part of the header's name */
            continue;
        }
        if (strcmp(a, "-MMD") == 0 || strcmp(a, "-MD") == 0 || strcmp(a, "-MP") == 0) continue;
        if (takes_value(a) && i + 1 < argc) { flags[n_flags++] = argv[i]; flags[n_flags++] = argv[++i]; continue; }
        if (a[0] != '-') {
            if (src || !ends_with(a, ".cc")) return NULL;   /* one C++ source, nothing else */
            src = a;
            continue;
        }
        flags[n_flags++] = argv[i];
    }
    if (!compile || !src) return NULL;

    char *includes[MAX_LINES];
    int n_includes = 0;
    char *text = leading_lines(src, list, through ? through : "", includes, &n_includes);
    if (!text) return NULL;
    /* each header the same file by the same path from the source as from the new header */
    char *slash = strrchr(src, '/');
    char *src_dir = slash ? strndup(src, slash - src) : strdup("");
    for (int i = 0; i < n_includes; i++) {
        char *from_src = resolve(src_dir, includes[i], argv, argc);
        char *from_header = resolve(NULL, includes[i], argv, argc);
        /* "./x.h" by -I. is "x.h" by the working folder: the same file, the same name */
        int same = from_src && from_header && strcmp(strip_dot(from_src), strip_dot(from_header)) == 0;
        char in_dir[PATH_MAX];
        if (!same || path_of(in_dir, "%s/%s", dir, includes[i]) != 0 || is_file(in_dir)) return NULL;
    }

    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    uint64_t h = fnv(14695981039346656037ULL, cwd, strlen(cwd) + 1);
    h = fnv(h, real, strlen(real) + 1);
    for (int i = 0; i < n_flags; i++) h = fnv(h, flags[i], strlen(flags[i]) + 1);
    h = fnv(h, text, strlen(text));
    char base[PATH_MAX], header[PATH_MAX], gch[PATH_MAX], lock[PATH_MAX], count[PATH_MAX], failed[PATH_MAX],
        log[PATH_MAX];
    if (path_of(base, "%s/%016llx", dir, (unsigned long long)h) || path_of(header, "%s.h", base) ||
        path_of(gch, "%s.h.gch", base) || path_of(lock, "%s.lock", base) || path_of(count, "%s.count", base) ||
        path_of(failed, "%s.failed", base) || path_of(log, "%s.log", base))
        return NULL;
    if (is_file(gch)) return used(base, header);
    if (is_file(failed)) return NULL;

    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) != 0) return NULL;   /* being made: go without */
    char *result = NULL;
    if (is_file(gch)) result = used(base, header);
    else if (!is_file(failed)) {
        int cfd = open(count, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        struct stat st;
        if (cfd >= 0 && write(cfd, "+", 1) == 1 && fstat(cfd, &st) == 0 && st.st_size >= after) {
            if (write_file(header, text) == 0 && precompile(real, flags, n_flags, header, gch, log) == 0)
                result = used(base, header);
            else
                write_file(failed, "");
        }
        if (cfd >= 0) close(cfd);
    }
    flock(lfd, LOCK_UN);
    close(lfd);
    return result;
}

int main(int argc, char **argv) {
    char *real = real_gxx();
    if (!real) {
        fprintf(stderr, "musl-toolchain's g++ wrapper: no other g++ in PATH (%s)\n", getenv("PATH"));
        return 127;
    }
    char *header = header_for(argc, argv, real);
    char **args = calloc(argc + 3, sizeof *args);
    int k = 0;
    args[k++] = real;
    if (header) { args[k++] = "-include"; args[k++] = header; }
    for (int i = 1; i < argc; i++) args[k++] = argv[i];
    args[k] = NULL;
    execv(real, args);
    fprintf(stderr, "musl-toolchain's g++ wrapper: cannot run %s: %s\n", real, strerror(errno));
    return 127;
}
