/*
 * test_fault.c - fault injection: allocation failure at every allocation of
 * a full build + compile + run + interpret, a failing or missing JIT
 * compiler, a bad cache directory, and misuse of the API (NULL handles,
 * buffers and operands).  Every failure must come back as a status and a
 * message, never a crash, and leave nothing allocated.
 */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfuse.h"
#include "kft.h"

static int failures, checks;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        checks++;                                                               \
        if (!(cond)) {                                                          \
            failures++;                                                         \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            printf(__VA_ARGS__);                                                \
            printf("\n");                                                       \
        }                                                                       \
    } while (0)

static char tmpdir[256]; /* everything this test writes goes here */

/* ---- a counting allocator that fails the Nth allocation ---- */

typedef struct counting {
    long count;   /* allocations (alloc and realloc) so far */
    long fail_at; /* this one returns NULL; 0: none */
    int sticky;   /* and, if set, every one after it */
    long live;    /* blocks not yet freed */
    long bad_free;
} counting;

static void *c_alloc(void *ud, size_t n)
{
    counting *a = ud;
    if (++a->count == a->fail_at || (a->sticky && a->fail_at && a->count > a->fail_at)) return NULL;
    void *p = malloc(n);
    if (p) a->live++;
    return p;
}

static void *c_realloc(void *ud, void *p, size_t n)
{
    counting *a = ud;
    if (++a->count == a->fail_at || (a->sticky && a->fail_at && a->count > a->fail_at)) return NULL;
    void *q = realloc(p, n);
    if (q && !p) a->live++;
    return q;
}

static void c_free(void *ud, void *p)
{
    counting *a = ud;
    if (!p) return;
    if (a->live <= 0) a->bad_free++;
    a->live--;
    free(p);
}

/* ---- the graph every fault run builds ---- */

enum { M = 19, K = 33, N = 17 };

/* relu(a @ w + bias) and sum(exp(x) * 2, axis 1) + 1: a fused template and
 * a fused reduction.  Returns 0, or -1 when a builder call failed. */
static int build(kf_graph *g)
{
    kf_node *a = kf_input(g, "a", KF_F32, 2, (int64_t[]){M, K});
    kf_node *w = kf_input(g, "w", KF_F32, 2, (int64_t[]){K, N});
    kf_node *bias = kf_input(g, "bias", KF_F32, 1, (int64_t[]){N});
    kf_node *y = kf_unary(g, "relu", kf_binary(g, "add", kf_matmul(g, a, w), bias));
    kf_attrs at = {0};
    at.naxes = 1;
    at.axes[0] = 1;
    kf_node *e = kf_binary(g, "mul", kf_unary(g, "exp", a), kf_scalar(g, 2, KF_F32));
    kf_node *s = kf_apply(g, "sum", 1, &e, &at);
    kf_node *z = kf_binary(g, "add", s, kf_scalar(g, 1, KF_F32));
    if (kf_output(g, y) || kf_output(g, z)) return -1;
    return 0;
}

static float A[M * K], W[K * N], BIAS[N];

/* One full run with allocation fail_at failing.  Returns 1 if everything
 * succeeded, 0 if a step failed as it should, -1 if the failure was wrong. */
static int sticky; /* fail every allocation from fail_at on, not only that one */

static int fault_run(long fail_at, const kf_options *opt, long *nallocs)
{
    counting cnt = {.fail_at = fail_at, .sticky = sticky};
    kf_allocator al = {c_alloc, c_realloc, c_free, &cnt};
    kf_graph *g = NULL;
    kf_compiled *c = NULL;
    float Y[M * N], Z[M], WY[M * N], WZ[M];
    const void *ins[] = {A, W, BIAS};
    int result = 1;
    const char *step = "";
    kf_status st = KF_OK;
    kf_ctx *ctx = kf_ctx_new(&al);
    if (!ctx) {
        step = "kf_ctx_new";
        st = kf_errcode(NULL);
        result = 0;
        CHECK(*kf_errmsg(NULL), "fail_at %ld: no message for a NULL context", fail_at);
        goto check;
    }
    if (!(g = kf_graph_new(ctx)) || build(g)) {
        step = "building";
        result = 0;
        goto fail;
    }
    if (!(c = kf_compile(g, opt))) {
        step = "kf_compile";
        result = 0;
        goto fail;
    }
    if (kf_run(c, ins, (void *[]){Y, Z}) != KF_OK) {
        step = "kf_run";
        result = 0;
        goto fail;
    }
    if (kf_interpret(g, ins, (void *[]){WY, WZ}) != KF_OK) {
        step = "kf_interpret";
        result = 0;
        goto fail;
    }
    {
        char why[512];
        CHECK(!kft_compare(KF_F32, Y, WY, M * N, 1e-4, 1e-5, why, sizeof why), "fail_at %ld: %s", fail_at, why);
        CHECK(!kft_compare(KF_F32, Z, WZ, M, 1e-4, 1e-5, why, sizeof why), "fail_at %ld: %s", fail_at, why);
    }
fail:
    if (ctx) {
        st = kf_errcode(ctx);
        if (result == 0)
            CHECK(*kf_errmsg(ctx), "fail_at %ld: %s failed with an empty message", fail_at, step);
        else
            CHECK(st == KF_OK, "fail_at %ld: everything succeeded but the status is %d (%s)", fail_at,
                  (int)st, kf_errmsg(ctx));
    }
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
check:
    if (result == 0 && st != KF_ERR_NOMEM) {
        printf("FAIL fault_run: fail_at %ld: %s failed with status %d, not KF_ERR_NOMEM: %s\n", fail_at,
               step, (int)st, ctx ? "(see above)" : kf_errmsg(NULL));
        failures++;
        result = -1;
    }
    if (result == 1 && cnt.count < fail_at) result = 2; /* the fault was never reached */
    CHECK(cnt.live == 0, "fail_at %ld (%s): %ld blocks leaked", fail_at, step, cnt.live);
    CHECK(cnt.bad_free == 0, "fail_at %ld (%s): %ld frees of unknown blocks", fail_at, step, cnt.bad_free);
    if (nallocs) *nallocs = cnt.count;
    return result;
}

/* fault_run in a child process, so that a crash is a failure of that run
 * and not of the whole test; its results come back through shared memory. */
typedef struct shared_result {
    int result, failures;
    long nallocs;
} shared_result;
static shared_result *shared;

static int fault_run_isolated(long fail_at, const kf_options *opt, long *nallocs, int *crashed)
{
    fflush(stdout);
    memset(shared, 0, sizeof *shared);
    shared->result = -1;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        failures = 0;
        shared->result = fault_run(fail_at, opt, &shared->nallocs);
        shared->failures = failures;
        fflush(stdout);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            perror("waitpid");
            exit(2);
        }
    *crashed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    if (*crashed) {
        failures++;
        return -1;
    }
    failures += shared->failures;
    if (nallocs) *nallocs = shared->nallocs;
    return shared->result;
}

static void test_alloc_failure(const char *name, const kf_options *opt, int sticky_)
{
    sticky = sticky_;
    int bad0 = failures, crashed;
    long n, total = 0, handled = 0, crashes = 0, first_crash = 0;
    /* fail_at 0: nothing fails; this also puts the object in the cache */
    if (fault_run_isolated(0, opt, &total, &crashed) != 1) {
        printf("FAIL alloc_failure/%s: the run without faults failed%s\n", name, crashed ? " (crashed)" : "");
        failures++;
        return;
    }
    for (n = 1; n <= total + 1; n++) {
        int r = fault_run_isolated(n, opt, NULL, &crashed);
        if (crashed && crashes++ == 0) first_crash = n;
        if (crashed && crashes <= 5)
            printf("FAIL alloc_failure/%s: allocation %ld of %ld failing%s: the process crashed\n", name, n,
                   total, sticky ? " (and all after it)" : "");
        if (r == 0) handled++;
        if (r == 2) break; /* the Nth allocation is past the end: done */
    }
    if (failures == bad0)
        printf("ok alloc_failure/%s: each of %ld allocations failing gives KF_ERR_NOMEM, no leaks\n", name, total);
    else
        printf("FAIL alloc_failure/%s: %ld allocations: %ld failures reported properly, %ld crashes (first at "
               "allocation %ld), %d failed checks in all\n",
               name, total, handled, crashes, first_crash, failures - bad0);
}

/* ---- the JIT compiler failing ---- */

static kf_graph *small_graph(kf_ctx *ctx)
{
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F32, 1, (int64_t[]){7});
    kf_output(g, kf_unary(g, "neg", kf_binary(g, "mul", x, kf_scalar(g, 3, KF_F32))));
    return g;
}

/* The generated source path at the start of msg ("PATH: error: ..."). */
static void check_source_path(const char *what, const char *msg)
{
    const char *e = strstr(msg, ": error:");
    CHECK(e != NULL, "%s: no ': error:' in the message: %s", what, msg);
    if (!e) return;
    char path[1024];
    size_t n = (size_t)(e - msg);
    if (n >= sizeof path) n = sizeof path - 1;
    memcpy(path, msg, n);
    path[n] = 0;
    struct stat st;
    CHECK(n > 2 && strcmp(path + n - 2, ".c") == 0, "%s: the message does not start with a .c path: %s", what, msg);
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode), "%s: the source %s does not exist", what, path);
    CHECK(strncmp(path, tmpdir, strlen(tmpdir)) == 0, "%s: the source %s is not in the cache dir", what, path);
}

static void expect_compile_error(const char *what, const char *cc, const char *want_in_log)
{
    int bad0 = failures;
    setenv("KFUSE_CC", cc, 1);
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = small_graph(ctx);
    kf_compiled *c = kf_compile(g, NULL);
    CHECK(c == NULL, "%s: kf_compile succeeded with KFUSE_CC=%s", what, cc);
    if (!c) {
        const char *msg = kf_errmsg(ctx);
        CHECK(kf_errcode(ctx) == KF_ERR_COMPILE, "%s: status %d, not KF_ERR_COMPILE: %s", what,
              (int)kf_errcode(ctx), msg);
        check_source_path(what, msg);
        if (want_in_log)
            CHECK(strstr(msg, want_in_log) != NULL, "%s: the compiler's log ('%s') is not in the message: %s",
                  what, want_in_log, msg);
    }
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
    unsetenv("KFUSE_CC");
    if (failures == bad0) printf("ok compiler_failure/%s\n", what);
}

/* Compiles and runs the small graph; returns 0 if it worked. */
static int compile_small(kf_ctx *ctx, const kf_options *opt)
{
    kf_graph *g = small_graph(ctx);
    kf_compiled *c = kf_compile(g, opt);
    int r = -1;
    if (c) {
        float x[7] = {1, 2, 3, -4, 5, 6, 7}, y[7], w[7];
        if (kf_run(c, (const void *[]){x}, (void *[]){y}) == KF_OK &&
            kf_interpret(g, (const void *[]){x}, (void *[]){w}) == KF_OK &&
            kft_compare(KF_F32, y, w, 7, 0, 0, NULL, 0) == 0)
            r = 0;
    }
    kf_compiled_free(c);
    kf_graph_free(g);
    return r;
}

static void test_compiler_failure(void)
{
    char script[512];
    snprintf(script, sizeof script, "%s/badcc.sh", tmpdir);
    FILE *f = fopen(script, "w");
    CHECK(f != NULL, "cannot write %s", script);
    if (!f) return;
    fputs("#!/bin/sh\necho 'boom: synthetic error' >&2\nexit 1\n", f);
    fclose(f);
    chmod(script, 0755);
    expect_compile_error("false", "false", NULL);
    expect_compile_error("nonexistent", "/nonexistent/kfuse-no-such-cc", NULL);
    expect_compile_error("script", script, "boom: synthetic error");
    /* and back to normal */
    int bad0 = failures;
    kf_ctx *ctx = kf_ctx_new(NULL);
    CHECK(compile_small(ctx, NULL) == 0, "compile after unsetenv(KFUSE_CC) failed: %s", kf_errmsg(ctx));
    kf_ctx_free(ctx);
    if (failures == bad0) printf("ok compiler_failure/recovered\n");
}

/* ---- the cache directory ---- */

static void test_cache_dir(void)
{
    int bad0 = failures;
    char dir[512], file[512], loose[512], opt_dir[512];
    struct stat st;
    kf_ctx *ctx = kf_ctx_new(NULL);

    snprintf(dir, sizeof dir, "%s/fresh/cache", tmpdir);
    setenv("KFUSE_CACHE_DIR", dir, 1);
    CHECK(compile_small(ctx, NULL) == 0, "compile with a fresh cache dir failed: %s", kf_errmsg(ctx));
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), "%s was not created", dir);
    CHECK((st.st_mode & 0777) == 0700, "%s has mode %o, not 0700", dir, (unsigned)(st.st_mode & 0777));

    /* an existing directory open to others is made private */
    snprintf(loose, sizeof loose, "%s/loose", tmpdir);
    mkdir(loose, 0755);
    chmod(loose, 0755);
    setenv("KFUSE_CACHE_DIR", loose, 1);
    kf_clear_error(ctx);
    CHECK(compile_small(ctx, NULL) == 0, "compile with an existing cache dir failed: %s", kf_errmsg(ctx));
    CHECK(stat(loose, &st) == 0 && (st.st_mode & 0777) == 0700, "%s has mode %o, not 0700", loose,
          (unsigned)(st.st_mode & 0777));

    /* kf_options.cache_dir wins over the environment */
    snprintf(opt_dir, sizeof opt_dir, "%s/from-options", tmpdir);
    kf_clear_error(ctx);
    CHECK(compile_small(ctx, &(kf_options){.cache_dir = opt_dir}) == 0, "compile with options.cache_dir failed: %s",
          kf_errmsg(ctx));
    CHECK(stat(opt_dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
          "options.cache_dir %s was not created with mode 0700", opt_dir);

    /* a regular file where the directory should be */
    snprintf(file, sizeof file, "%s/not-a-dir", tmpdir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    setenv("KFUSE_CACHE_DIR", file, 1);
    kf_clear_error(ctx);
    kf_graph *g = small_graph(ctx);
    kf_compiled *c = kf_compile(g, NULL);
    CHECK(c == NULL, "kf_compile succeeded with the cache dir a regular file");
    CHECK(kf_errcode(ctx) == KF_ERR_IO, "status %d, not KF_ERR_IO: %s", (int)kf_errcode(ctx), kf_errmsg(ctx));
    CHECK(strstr(kf_errmsg(ctx), file) != NULL, "the message does not name %s: %s", file, kf_errmsg(ctx));
    kf_compiled_free(c);
    kf_graph_free(g);

    /* a path below a regular file */
    snprintf(dir, sizeof dir, "%s/not-a-dir/sub", tmpdir);
    setenv("KFUSE_CACHE_DIR", dir, 1);
    kf_clear_error(ctx);
    g = small_graph(ctx);
    c = kf_compile(g, NULL);
    CHECK(c == NULL && kf_errcode(ctx) == KF_ERR_IO && *kf_errmsg(ctx),
          "a cache dir below a regular file: status %d: %s", (int)kf_errcode(ctx), kf_errmsg(ctx));
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
    setenv("KFUSE_CACHE_DIR", tmpdir, 1);
    if (failures == bad0) printf("ok cache_dir\n");
}

/* ---- misuse of the API ---- */

static void test_bad_api(void)
{
    int bad0 = failures;
    /* every _free takes NULL */
    kf_ctx_free(NULL);
    kf_graph_free(NULL);
    kf_compiled_free(NULL);
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_tensor_free(ctx, NULL);
    CHECK(kf_graph_new(NULL) == NULL, "kf_graph_new(NULL)");
    CHECK(kf_input(NULL, "x", KF_F32, 1, (int64_t[]){3}) == NULL, "kf_input(NULL graph)");
    CHECK(kf_compile(NULL, NULL) == NULL, "kf_compile(NULL)");
    CHECK(kf_run(NULL, NULL, NULL) != KF_OK, "kf_run(NULL)");
    CHECK(kf_interpret(NULL, NULL, NULL) != KF_OK, "kf_interpret(NULL)");
    CHECK(kf_output(NULL, NULL) != 0, "kf_output(NULL, NULL)");
    CHECK(kf_compiled_num_kernels(NULL) == 0, "kf_compiled_num_kernels(NULL)");
    CHECK(kf_compiled_source(NULL) != NULL && kf_compiled_explain(NULL, 1) != NULL, "kf_compiled_source(NULL)");

    /* NULL operands: NULL back, and no new error (the first one is the cause) */
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F32, 1, (int64_t[]){3});
    kf_node *nul = NULL;
    CHECK(kf_unary(g, "relu", NULL) == NULL, "kf_unary(NULL)");
    CHECK(kf_binary(g, "add", x, NULL) == NULL, "kf_binary(x, NULL)");
    CHECK(kf_binary(g, "add", NULL, x) == NULL, "kf_binary(NULL, x)");
    CHECK(kf_matmul(g, NULL, x) == NULL, "kf_matmul(NULL, x)");
    CHECK(kf_cast(g, NULL, KF_F16) == NULL, "kf_cast(NULL)");
    CHECK(kf_apply(g, "clamp", 3, (kf_node *[]){x, NULL, x}, NULL) == NULL, "kf_apply(clamp, NULL)");
    CHECK(kf_apply(g, "concat", 2, (kf_node *[]){x, NULL}, &(kf_attrs){0}) == NULL, "kf_apply(concat, NULL)");
    CHECK(kf_apply(g, "sum", 1, &nul, NULL) == NULL, "kf_apply(sum, NULL)");
    kf_node *res[3] = {0};
    CHECK(kf_apply_multi(g, "layer_norm", 2, (kf_node *[]){NULL, x}, NULL, res) != 0, "layer_norm(NULL)");
    CHECK(kf_output(g, NULL) != 0, "kf_output(g, NULL)");
    CHECK(kf_errcode(ctx) == KF_OK, "a NULL operand left an error: %d %s", (int)kf_errcode(ctx), kf_errmsg(ctx));
    /* bad names and arities are errors with a message */
    CHECK(kf_apply(g, "no_such_op", 1, &x, NULL) == NULL && kf_errcode(ctx) == KF_ERR_INVALID && *kf_errmsg(ctx),
          "an unknown op: status %d", (int)kf_errcode(ctx));
    kf_clear_error(ctx);
    CHECK(kf_apply(g, "add", 1, &x, NULL) == NULL && kf_errcode(ctx) == KF_ERR_INVALID && *kf_errmsg(ctx),
          "add with one operand: status %d", (int)kf_errcode(ctx));
    kf_clear_error(ctx);
    /* a graph without outputs does not compile */
    CHECK(kf_compile(g, NULL) == NULL && kf_errcode(ctx) == KF_ERR_INVALID && *kf_errmsg(ctx),
          "a graph without outputs: status %d", (int)kf_errcode(ctx));
    kf_clear_error(ctx);

    /* kf_run and kf_interpret with missing buffers */
    kf_node *y = kf_unary(g, "neg", x);
    CHECK(kf_output(g, y) == 0, "kf_output: %s", kf_errmsg(ctx));
    kf_compiled *c = kf_compile(g, NULL);
    CHECK(c != NULL, "kf_compile: %s", kf_errmsg(ctx));
    if (c) {
        float in[3] = {1, 2, 3}, outb[3];
        kf_status st = kf_run(c, NULL, (void *[]){outb});
        CHECK(st == KF_ERR_INVALID && *kf_errmsg(ctx), "kf_run(inputs NULL): status %d", (int)st);
        kf_clear_error(ctx);
        st = kf_run(c, (const void *[]){in}, NULL);
        CHECK(st == KF_ERR_INVALID && *kf_errmsg(ctx), "kf_run(outputs NULL): status %d", (int)st);
        kf_clear_error(ctx);
        st = kf_run(c, (const void *[]){NULL}, (void *[]){outb});
        CHECK(st == KF_ERR_INVALID && *kf_errmsg(ctx), "kf_run(input 0 NULL): status %d", (int)st);
        kf_clear_error(ctx);
        st = kf_run(c, (const void *[]){in}, (void *[]){NULL});
        CHECK(st == KF_ERR_INVALID && *kf_errmsg(ctx), "kf_run(output 0 NULL): status %d", (int)st);
        kf_clear_error(ctx);
        st = kf_run(c, (const void *[]){in}, (void *[]){outb});
        CHECK(st == KF_OK && outb[0] == -1 && outb[2] == -3, "kf_run after the errors: status %d", (int)st);
        st = kf_interpret(g, NULL, (void *[]){outb});
        CHECK(st == KF_ERR_INVALID && *kf_errmsg(ctx), "kf_interpret(inputs NULL): status %d", (int)st);
        kf_clear_error(ctx);
        st = kf_interpret(g, (const void *[]){in}, (void *[]){NULL});
        CHECK(st == KF_ERR_INVALID && *kf_errmsg(ctx), "kf_interpret(output 0 NULL): status %d", (int)st);
        kf_clear_error(ctx);
    }
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
    /* an allocator with a missing function is refused */
    counting cnt = {0};
    CHECK(kf_ctx_new(&(kf_allocator){c_alloc, NULL, c_free, &cnt}) == NULL, "kf_ctx_new with no realloc");
    if (failures == bad0) printf("ok bad_api\n");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/kfuse-fault-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    /* a fresh cache: the first compile of each graph runs the compiler */
    setenv("KFUSE_CACHE_DIR", tmpdir, 1);
    unsetenv("KFUSE_CC");
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int i = 0; i < K * N; i++) W[i] = (float)((i * 53 % 97) - 48) / 48.0f;
    for (int i = 0; i < N; i++) BIAS[i] = (float)(i % 5) / 5.0f - 0.4f;

    test_bad_api();
    test_alloc_failure("default", &(kf_options){0}, 0);
    test_alloc_failure("no_template_fusion", &(kf_options){.no_template_fusion = 1}, 0);
    test_alloc_failure("no_fusion", &(kf_options){.no_fusion = 1}, 0);
    test_alloc_failure("default.sticky", &(kf_options){0}, 1);
    test_alloc_failure("no_fusion.sticky", &(kf_options){.no_fusion = 1}, 1);
    test_compiler_failure();
    test_cache_dir();

    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("%d failures (%d checks in this process)\n", failures, checks);
    return failures ? 1 : 0;
}
