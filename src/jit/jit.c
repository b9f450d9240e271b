/*
 * jit.c - the JIT pass for the C target: write the source into the cache
 * directory, run the system compiler through one subprocess helper, load
 * the shared object.  Objects are keyed by a hash of the source, the
 * compiler's identity and the flags, so a graph compiled once loads at once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jit.h"

extern char **environ;

static const char *const kf_cflags[] = {"-O3", "-march=native", "-fopenmp", "-fPIC", "-shared",
                                        "-fno-math-errno", "-fno-trapping-math", "-w"};
#define NFLAGS (sizeof kf_cflags / sizeof *kf_cflags)

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static const char *compiler(void)
{
    const char *cc = getenv("KFUSE_CC");
    return cc && *cc ? cc : "cc";
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[1024];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) && errno != EEXIST) return -1;
    return 0;
}

int kf_jit_cache_dir(kf_ctx *ctx, const char *opt, char *out, size_t outsz)
{
    const char *env = getenv("KFUSE_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (opt && *opt) n = snprintf(out, outsz, "%s", opt);
    else if (env && *env) n = snprintf(out, outsz, "%s", env);
    else if (xdg && *xdg) n = snprintf(out, outsz, "%s/kfuse", xdg);
    else if (home && *home) n = snprintf(out, outsz, "%s/.cache/kfuse", home);
    else n = snprintf(out, outsz, "/tmp/kfuse-%u", (unsigned)getuid());
    if (n < 0 || (size_t)n >= outsz) {
        kf_err(ctx, KF_ERR_IO, "error: the cache directory path is too long");
        return -1;
    }
    if (mkdir_p(out, 0700)) {
        kf_err(ctx, KF_ERR_IO, "%s: error: cannot create the cache directory: %s", out, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(out, &st) || !S_ISDIR(st.st_mode)) {
        kf_err(ctx, KF_ERR_IO, "%s: error: the cache path is not a directory", out);
        return -1;
    }
    if (st.st_uid != getuid()) {
        kf_err(ctx, KF_ERR_IO, "%s: error: the cache directory belongs to another user", out);
        return -1;
    }
    if ((st.st_mode & 077) && chmod(out, 0700)) {
        kf_err(ctx, KF_ERR_IO, "%s: error: cannot make the cache directory private: %s", out,
               strerror(errno));
        return -1;
    }
    return 0;
}

static int write_file(const char *path, const char *data, size_t n)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Runs argv with stdout and stderr into logpath; returns the exit status
 * (or -1 if it could not start). */
static int run_logged(char *const argv[], const char *logpath)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void read_log(const char *path, char *buf, size_t sz)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, sz - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* The OpenMP runtime comes in with the first generated object; its worker
 * threads outlive every parallel region, so it must never be unloaded when
 * that object is closed. */
static void pin_openmp_runtime(void)
{
    dlopen("libgomp.so.1", RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
}

int kf_jit_compile_c(kf_ctx *ctx, const char *src, const char *cache_dir, kf_jit_lib *out)
{
    memset(out, 0, sizeof *out);
    pin_openmp_runtime();
    char dir[900];
    if (kf_jit_cache_dir(ctx, cache_dir, dir, sizeof dir)) return -1;
    const char *cc = compiler();
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, cc, strlen(cc) + 1);
    for (size_t i = 0; i < NFLAGS; i++) h = fnv1a(h, kf_cflags[i], strlen(kf_cflags[i]) + 1);
    h = fnv1a(h, src, strlen(src));
    snprintf(out->src_path, sizeof out->src_path, "%s/kf_%016llx.c", dir, (unsigned long long)h);
    snprintf(out->so_path, sizeof out->so_path, "%s/kf_%016llx.so", dir, (unsigned long long)h);
    if (access(out->so_path, R_OK) == 0) {
        out->handle = dlopen(out->so_path, RTLD_NOW | RTLD_LOCAL);
        if (out->handle) {
            out->cached = true;
            return 0;
        }
        unlink(out->so_path); /* a stale or broken object: rebuild it */
    }
    if (write_file(out->src_path, src, strlen(src))) {
        kf_err(ctx, KF_ERR_IO, "%s: error: cannot write the generated source: %s", out->src_path,
               strerror(errno));
        return -1;
    }
    char tmpso[1100], logp[1100];
    snprintf(tmpso, sizeof tmpso, "%s.%d.tmp", out->so_path, (int)getpid());
    snprintf(logp, sizeof logp, "%s/kf_%016llx.%d.log", dir, (unsigned long long)h, (int)getpid());
    char *argv[NFLAGS + 8];
    size_t a = 0;
    argv[a++] = (char *)cc;
    for (size_t i = 0; i < NFLAGS; i++) argv[a++] = (char *)kf_cflags[i];
    argv[a++] = "-o";
    argv[a++] = tmpso;
    argv[a++] = out->src_path;
    argv[a++] = "-lm";
    argv[a] = NULL;
    int rc = run_logged(argv, logp);
    if (rc != 0) {
        char log[6000];
        read_log(logp, log, sizeof log);
        unlink(logp);
        unlink(tmpso);
        if (rc < 0)
            kf_err(ctx, KF_ERR_COMPILE, "%s: error: cannot run the C compiler '%s' (set KFUSE_CC)",
                   out->src_path, cc);
        else
            kf_err(ctx, KF_ERR_COMPILE, "%s: error: the C compiler '%s' failed (status %d):\n%s",
                   out->src_path, cc, rc, log);
        return -1;
    }
    unlink(logp);
    if (rename(tmpso, out->so_path)) {
        unlink(tmpso);
        kf_err(ctx, KF_ERR_IO, "%s: error: cannot store the compiled object: %s", out->so_path,
               strerror(errno));
        return -1;
    }
    out->handle = dlopen(out->so_path, RTLD_NOW | RTLD_LOCAL);
    if (!out->handle) {
        kf_err(ctx, KF_ERR_COMPILE, "%s: error: cannot load the compiled object: %s", out->so_path,
               dlerror());
        return -1;
    }
    return 0;
}

uint64_t kf_jit_hash(uint64_t h, const void *p, size_t n) { return fnv1a(h, p, n); }
int kf_jit_write_file(const char *path, const void *data, size_t n) { return write_file(path, data, n); }

void *kf_jit_symbol(kf_jit_lib *lib, const char *name) { return dlsym(lib->handle, name); }

void kf_jit_close(kf_jit_lib *lib)
{
    if (lib->handle) dlclose(lib->handle);
    lib->handle = NULL;
}
