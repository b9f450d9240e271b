/*
 * test_diff.c - differential tests: every op of ops.def, and fused chains of
 * them, compiled by kfuse for the CPU and compared with the reference
 * interpreter (kf_interpret) at kft's default tolerance for each dtype.
 *
 * A C compile costs about a second, so cases are batched: each graph holds
 * many independent outputs and is compiled three ways (default options,
 * no_template_fusion, no_fusion).  One line per graph and variant: "ok NAME"
 * or "FAIL NAME/OUTPUT: why" for each output that differs.  Exits 1 if any
 * case failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfuse.h"
#include "kfuse_backend.h"
#include "kft.h"

#define MAXIO 256
#define END INT64_MAX

/* One batched graph under construction. */
typedef struct T {
    const char *name;
    kf_ctx *ctx;
    kf_graph *g;
    int nin;
    double lo[MAXIO], hi[MAXIO];
    const double *data[MAXIO]; /* explicit input values, or NULL: random */
    int nout;
    char label[MAXIO][64];
    int build_failed;
    char build_what[64], build_msg[512];
} T;

static int failures, cases;

static void fail_build(T *t, const char *what)
{
    if (!t->build_failed) {
        snprintf(t->build_what, sizeof t->build_what, "%s", what);
        snprintf(t->build_msg, sizeof t->build_msg, "%s", kf_errmsg(t->ctx));
    }
    t->build_failed = 1;
}

static kf_node *in(T *t, const char *name, kf_dtype dt, int nd, const int64_t *shape,
                   double lo, double hi)
{
    kf_node *n = kf_input(t->g, name, dt, nd, shape);
    if (!n) {
        fail_build(t, name);
        return NULL;
    }
    t->lo[t->nin] = lo;
    t->hi[t->nin] = hi;
    t->data[t->nin] = NULL;
    t->nin++;
    return n;
}

/* An input with the given values (numel of them). */
static kf_node *in_data(T *t, const char *name, kf_dtype dt, int nd, const int64_t *shape,
                        const double *vals)
{
    kf_node *n = in(t, name, dt, nd, shape, 0, 0);
    if (n) t->data[t->nin - 1] = vals;
    return n;
}

static void out(T *t, kf_node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void out(T *t, kf_node *n, const char *fmt, ...)
{
    char lb[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lb, sizeof lb, fmt, ap);
    va_end(ap);
    if (!n || kf_output(t->g, n) != 0) {
        fail_build(t, lb);
        return;
    }
    snprintf(t->label[t->nout++], sizeof t->label[0], "%s", lb);
}

/* ---- op shorthands ---- */

static kf_node *U(T *t, const char *op, kf_node *x) { return kf_unary(t->g, op, x); }
static kf_node *B(T *t, const char *op, kf_node *x, kf_node *y) { return kf_binary(t->g, op, x, y); }
static kf_node *S(T *t, double v) { return kf_scalar(t->g, v, KF_F64); } /* adopts the other dtype */
static kf_node *cast(T *t, kf_node *x, kf_dtype dt) { return kf_cast(t->g, x, dt); }
static kf_node *mm(T *t, kf_node *a, kf_node *b) { return kf_matmul(t->g, a, b); }
static kf_node *ap3(T *t, const char *op, kf_node *a, kf_node *b, kf_node *c)
{
    kf_node *v[3] = {a, b, c};
    return kf_apply(t->g, op, 3, v, NULL);
}
static kf_node *red(T *t, const char *op, kf_node *x, int naxes, const int64_t *axes, int keepdims)
{
    kf_attrs a = {0};
    a.naxes = naxes;
    for (int i = 0; i < naxes; i++) a.axes[i] = axes[i];
    a.keepdims = keepdims;
    return kf_apply(t->g, op, 1, &x, &a);
}
static kf_node *tr(T *t, kf_node *x, int nperm, const int64_t *perm)
{
    kf_attrs a = {0};
    a.nperm = nperm;
    for (int i = 0; i < nperm; i++) a.perm[i] = perm[i];
    return kf_apply(t->g, "transpose", 1, &x, &a);
}
static kf_node *shaped(T *t, const char *op, kf_node *x, int nd, const int64_t *shape)
{
    kf_attrs a = {0};
    a.nshape = nd;
    for (int i = 0; i < nd; i++) a.shape[i] = shape[i];
    return kf_apply(t->g, op, 1, &x, &a);
}
#define RS(t, x, ...) shaped(t, "reshape", x, (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})
#define EX(t, x, ...) shaped(t, "expand", x, (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})
#define SH(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__}
#define AX(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__}
static kf_node *sl(T *t, kf_node *x, int64_t axis, int64_t start, int64_t end, int64_t step)
{
    kf_attrs a = {0};
    a.naxes = 1;
    a.axes[0] = axis;
    a.start = start;
    a.end = end;
    a.step = step;
    return kf_apply(t->g, "slice", 1, &x, &a);
}
static kf_node *cat(T *t, int64_t axis, int n, kf_node *const *v)
{
    kf_attrs a = {0};
    a.naxes = 1;
    a.axes[0] = axis;
    return kf_apply(t->g, "concat", n, v, &a);
}
static kf_node *comp(T *t, const char *op, int nin, kf_node *const *v, int64_t axis, double eps,
                     int has_eps, kf_node **res)
{
    kf_attrs a = {0};
    a.naxes = 1;
    a.axes[0] = axis;
    a.eps = eps;
    a.has_eps = has_eps;
    if (res) return kf_apply_multi(t->g, op, nin, v, &a, res) ? NULL : res[0];
    return kf_apply(t->g, op, nin, v, &a);
}

/* ---- running a batched graph ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static const struct {
    const char *name;
    kf_options o;
} variants[] = {
    {"default", {.device = KF_DEVICE_CPU}},
    {"no_template_fusion", {.device = KF_DEVICE_CPU, .no_template_fusion = 1}},
    {"no_fusion", {.device = KF_DEVICE_CPU, .no_fusion = 1}},
};
#define NVARIANTS (int)(sizeof variants / sizeof *variants)

/* Interprets t's graph, compiles it as variant v, runs it and compares;
 * returns 0 if every output matched. */
static int run_graph(T *t, int v)
{
    kf_graph *g = t->g;
    const char *vn = variants[v].name;
    int nin = kf_graph_num_inputs(g), nout = kf_graph_num_outputs(g), bad = 0;
    void *ins[MAXIO] = {0}, *want[MAXIO] = {0}, *got[MAXIO] = {0};
    kf_compiled *c = NULL;
    if (t->build_failed) return 1;
    if (nin != t->nin || nout != t->nout) {
        printf("FAIL %s/%s: the graph has %d inputs and %d outputs, %d and %d were declared\n",
               t->name, vn, nin, nout, t->nin, t->nout);
        return 1;
    }
    uint64_t seed = hash_str(t->name);
    for (int i = 0; i < nin; i++) {
        kf_node *n = kf_graph_input(g, i);
        int64_t ne = kf_node_numel(n);
        ins[i] = kft_alloc(kf_node_dtype(n), ne);
        if (t->data[i])
            for (int64_t j = 0; j < ne; j++) kft_store(kf_node_dtype(n), ins[i], j, t->data[i][j]);
        else
            kft_fill_random(kf_node_dtype(n), ins[i], ne, &seed, t->lo[i], t->hi[i]);
    }
    for (int i = 0; i < nout; i++) {
        kf_node *n = kf_graph_output(g, i);
        want[i] = kft_alloc(kf_node_dtype(n), kf_node_numel(n));
        got[i] = kft_alloc(kf_node_dtype(n), kf_node_numel(n));
        /* garbage, so that an element never written shows */
        memset(got[i], 0xA5, kf_dtype_size(kf_node_dtype(n)) * (size_t)kf_node_numel(n));
    }
    kf_status st = kf_interpret(g, (const void *const *)ins, want);
    if (st != KF_OK) {
        printf("FAIL %s/%s: kf_interpret: status %d: %s\n", t->name, vn, (int)st, kf_errmsg(t->ctx));
        bad = 1;
        goto done;
    }
    kf_options o = variants[v].o;
    const char *dev = getenv("KFUSE_TEST_DEVICE"); /* "cuda": the whole suite on the GPU */
    if (dev && !strcmp(dev, "cuda")) o.device = KF_DEVICE_CUDA;
    c = kf_compile(g, &o);
    if (!c) {
        printf("FAIL %s/%s: kf_compile: status %d: %.2000s\n", t->name, vn, (int)kf_errcode(t->ctx),
               kf_errmsg(t->ctx));
        bad = 1;
        goto done;
    }
    st = kf_run(c, (const void *const *)ins, got);
    if (st != KF_OK) {
        printf("FAIL %s/%s: kf_run: status %d: %s\n", t->name, vn, (int)st, kf_errmsg(t->ctx));
        bad = 1;
        goto done;
    }
    for (int i = 0; i < nout; i++) {
        kf_node *n = kf_graph_output(g, i);
        kf_dtype dt = kf_node_dtype(n);
        double rtol, atol;
        char why[600];
        kft_default_tol(dt, &rtol, &atol);
        if (kft_compare(dt, got[i], want[i], kf_node_numel(n), rtol, atol, why, sizeof why)) {
            printf("FAIL %s/%s/%s: %s\n", t->name, vn, t->label[i], why);
            bad++;
        }
    }
    if (!bad)
        printf("ok %s/%s (%d outputs, %d kernels)\n", t->name, vn, nout, kf_compiled_num_kernels(c));
done:
    kf_compiled_free(c);
    for (int i = 0; i < nin; i++) free(ins[i]);
    for (int i = 0; i < nout; i++) {
        free(want[i]);
        free(got[i]);
    }
    return bad != 0;
}

typedef void (*build_fn)(T *t, const void *arg);

/* Builds the graph and checks variant v; returns 0 if it passed. */
static int run_variant(const char *name, build_fn build, const void *arg, int v)
{
    static T t; /* big: keep it off the stack */
    memset(&t, 0, sizeof t);
    t.name = name;
    t.ctx = kf_ctx_new(NULL);
    t.g = kf_graph_new(t.ctx);
    if (!t.g) {
        printf("FAIL %s/%s: kf_graph_new\n", name, variants[v].name);
        kf_ctx_free(t.ctx);
        return 1;
    }
    build(&t, arg);
    if (t.build_failed)
        printf("FAIL %s/%s: building %s: %s\n", name, variants[v].name, t.build_what, t.build_msg);
    int bad = run_graph(&t, v);
    kf_graph_free(t.g);
    kf_ctx_free(t.ctx);
    return bad;
}

static const char *only; /* argv[1]: run only the cases whose name contains it */

/* Checks one batched graph in each variant, each in a child process so
 * that a crash (an internal assertion, a fault in generated code) fails
 * that case and not the whole suite. */
static void run_case(const char *name, build_fn build, const void *arg)
{
    if (only && !strstr(name, only)) return;
    for (int v = 0; v < NVARIANTS; v++) {
        cases++;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            exit(2);
        }
        if (pid == 0) {
            int bad = run_variant(name, build, arg, v);
            fflush(stdout);
            _exit(bad);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) {
                perror("waitpid");
                exit(2);
            }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;
        failures++;
        if (WIFSIGNALED(st))
            printf("FAIL %s/%s: crashed (signal %d)\n", name, variants[v].name, WTERMSIG(st));
        else if (WEXITSTATUS(st) != 1)
            printf("FAIL %s/%s: exited with status %d\n", name, variants[v].name, WEXITSTATUS(st));
    }
}

/* ---- the graphs ---- */

static const char *const float_unary[] = {
    "neg", "abs", "exp", "sigmoid", "tanh", "relu", "gelu", "gelu_tanh", "silu", "erf", "sin",
    "cos", "floor", "ceil", "sign"};
static const char *const positive_unary[] = {"log", "sqrt", "rsqrt", "reciprocal"};
static const char *const cmp_ops[] = {"eq", "ne", "lt", "le", "gt", "ge"};
#define N(a) (int)(sizeof(a) / sizeof *(a))

/* Every pointwise op of a float dtype, with every kind of broadcasting. */
static void build_pointwise_float(T *t, const void *arg)
{
    kf_dtype dt = *(const kf_dtype *)arg;
    kf_node *x = in(t, "x", dt, SH(17, 33), -3, 3);
    kf_node *y = in(t, "y", dt, SH(17, 33), -3, 3);
    kf_node *p = in(t, "p", dt, SH(17, 33), 0.25, 4); /* positive: log, sqrt, divisors */
    kf_node *q = in(t, "q", dt, SH(17, 33), -2, 2);   /* exponents */
    kf_node *row = in(t, "row", dt, SH(33), -2, 2);
    kf_node *col = in(t, "col", dt, SH(17, 1), -2, 2);
    kf_node *big = in(t, "big", dt, SH(3, 17, 33), -2, 2);
    kf_node *one = in(t, "one", dt, SH(1), 0.5, 1.5);
    kf_node *wide = in(t, "wide", dt, SH(1000), -8, 8); /* exp/tanh/sigmoid saturation */
    for (int i = 0; i < N(float_unary); i++) out(t, U(t, float_unary[i], x), "%s", float_unary[i]);
    for (int i = 0; i < N(positive_unary); i++)
        out(t, U(t, positive_unary[i], p), "%s", positive_unary[i]);
    static const char *const wide_ops[] = {"exp", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "erf"};
    for (int i = 0; i < N(wide_ops); i++) out(t, U(t, wide_ops[i], wide), "%s(wide)", wide_ops[i]);
    out(t, B(t, "add", x, y), "add");
    out(t, B(t, "sub", x, y), "sub");
    out(t, B(t, "mul", x, y), "mul");
    out(t, B(t, "div", x, p), "div");
    out(t, B(t, "pow", p, q), "pow");
    out(t, B(t, "maximum", x, y), "maximum");
    out(t, B(t, "minimum", x, y), "minimum");
    /* broadcasting: scalar, row, column, row with column, rank-expanding, size-1 */
    out(t, B(t, "add", x, S(t, 1.5)), "add(x, 1.5)");
    out(t, B(t, "sub", S(t, 2), x), "sub(2, x)");
    out(t, B(t, "mul", x, row), "mul(x, row)");
    out(t, B(t, "sub", col, x), "sub(col, x)");
    out(t, B(t, "maximum", row, col), "maximum(row, col)");
    out(t, B(t, "div", big, p), "div(big, p)");
    out(t, B(t, "add", big, col), "add(big, col)");
    out(t, B(t, "mul", one, row), "mul(one, row)");
    out(t, B(t, "pow", p, S(t, 0.5)), "pow(p, 0.5)");
    out(t, ap3(t, "clamp", x, S(t, -1), S(t, 1.25)), "clamp(x, -1, 1.25)");
    out(t, ap3(t, "clamp", x, U(t, "neg", U(t, "abs", col)), U(t, "abs", row)), "clamp(x, -|col|, |row|)");
    /* comparisons, some with many equal pairs (floor is exact) */
    kf_node *fx = U(t, "floor", x), *fy = U(t, "floor", y);
    for (int i = 0; i < N(cmp_ops); i++) {
        out(t, B(t, cmp_ops[i], x, y), "%s", cmp_ops[i]);
        out(t, B(t, cmp_ops[i], fx, fy), "%s(floor)", cmp_ops[i]);
    }
    out(t, B(t, "gt", x, S(t, 0)), "gt(x, 0)");
    out(t, B(t, "le", row, col), "le(row, col)");
    out(t, ap3(t, "where", B(t, "gt", x, y), x, y), "where(x > y, x, y)");
    out(t, ap3(t, "where", B(t, "lt", x, S(t, 0)), S(t, 0), x), "where(x < 0, 0, x)");
    out(t, ap3(t, "where", B(t, "lt", col, row), big, S(t, -1)), "where(col < row, big, -1)");
}

/* Every pointwise op of the integer dtypes and bool, and casts between all dtypes. */
static const double i32_edge[] = {2147483647, -2147483648.0, -2147483648.0, 7, -7, 0, 5, -1, 100000, 2147483647};
static const double i32_edge_div[] = {1, -1, 0, 2, 2, 0, -3, -1, 0, -1};

static void build_int(T *t, const void *arg)
{
    (void)arg;
    static const struct {
        kf_dtype dt;
        double lo, hi, dlo, dhi;
    } ty[] = {
        {KF_I32, -50000, 50000, -5, 5}, {KF_I8, -128, 127, -4, 4},
        {KF_U8, 0, 255, 0, 4},          {KF_I64, -1000000, 1000000, -6, 6},
    };
    static const char *const int_unary[] = {"neg", "abs", "relu", "floor", "ceil", "sign"};
    static const char *const int_binary[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
    for (int k = 0; k < N(ty); k++) {
        kf_dtype dt = ty[k].dt;
        const char *dn = kf_dtype_name(dt);
        char nm[32];
        snprintf(nm, sizeof nm, "a_%s", dn);
        kf_node *a = in(t, nm, dt, SH(7, 67), ty[k].lo, ty[k].hi);
        snprintf(nm, sizeof nm, "b_%s", dn);
        kf_node *b = in(t, nm, dt, SH(7, 67), ty[k].lo, ty[k].hi);
        snprintf(nm, sizeof nm, "d_%s", dn); /* small, with zeros: divisors */
        kf_node *d = in(t, nm, dt, SH(7, 67), ty[k].dlo, ty[k].dhi);
        snprintf(nm, sizeof nm, "row_%s", dn);
        kf_node *row = in(t, nm, dt, SH(67), ty[k].dlo, ty[k].dhi);
        for (int i = 0; i < N(int_unary); i++) out(t, U(t, int_unary[i], a), "%s.%s", dn, int_unary[i]);
        for (int i = 0; i < N(int_binary); i++)
            out(t, B(t, int_binary[i], a, b), "%s.%s", dn, int_binary[i]);
        out(t, B(t, "div", a, d), "%s.div(a, small)", dn);
        out(t, B(t, "div", a, row), "%s.div(a, row)", dn);
        out(t, B(t, "mul", a, d), "%s.mul(a, small)", dn);
        out(t, B(t, "add", a, S(t, 3)), "%s.add(a, 3)", dn);
        out(t, B(t, "sub", row, a), "%s.sub(row, a)", dn);
        out(t, ap3(t, "clamp", a, S(t, 10), S(t, 100)), "%s.clamp", dn);
        for (int i = 0; i < N(cmp_ops); i++) {
            out(t, B(t, cmp_ops[i], a, b), "%s.%s", dn, cmp_ops[i]);
            out(t, B(t, cmp_ops[i], d, row), "%s.%s(small)", dn, cmp_ops[i]);
        }
        out(t, ap3(t, "where", B(t, "gt", a, b), a, row), "%s.where", dn);
    }
    /* i32 edges: wrapping, INT_MIN / -1, division by zero */
    kf_node *e = in_data(t, "e", KF_I32, SH(10), i32_edge);
    kf_node *ed = in_data(t, "ed", KF_I32, SH(10), i32_edge_div);
    out(t, B(t, "div", e, ed), "i32.div(edge)");
    out(t, B(t, "add", e, ed), "i32.add(edge)");
    out(t, B(t, "sub", e, ed), "i32.sub(edge)");
    out(t, B(t, "mul", e, ed), "i32.mul(edge)");
    out(t, U(t, "neg", e), "i32.neg(edge)");
    out(t, U(t, "abs", e), "i32.abs(edge)");
    /* bool */
    kf_node *p = in(t, "p", KF_BOOL, SH(7, 67), 0, 1), *q = in(t, "q", KF_BOOL, SH(7, 67), 0, 1);
    kf_node *qr = in(t, "qr", KF_BOOL, SH(67), 0, 1);
    out(t, B(t, "logical_and", p, q), "logical_and");
    out(t, B(t, "logical_or", p, q), "logical_or");
    out(t, U(t, "logical_not", p), "logical_not");
    out(t, B(t, "logical_and", p, qr), "logical_and(p, row)");
    out(t, B(t, "eq", p, q), "bool.eq");
    out(t, B(t, "ne", p, qr), "bool.ne");
    out(t, ap3(t, "where", p, q, qr), "bool.where");
    out(t, B(t, "logical_or", p, S(t, 0)), "logical_or(p, false)");
    /* casts between all dtypes */
    kf_node *xf = in(t, "xf", KF_F32, SH(7, 67), -300, 300);
    kf_node *xs = in(t, "xs", KF_F32, SH(7, 67), -2, 2);
    kf_node *xd = in(t, "xd", KF_F64, SH(7, 67), -70000, 70000);
    kf_node *xh = in(t, "xh", KF_F16, SH(7, 67), -200, 200);
    kf_node *xb = in(t, "xb", KF_BF16, SH(7, 67), -200, 200);
    kf_node *xi = in(t, "xi", KF_I32, SH(7, 67), -70000, 70000);
    kf_node *xu = in(t, "xu", KF_U8, SH(7, 67), 0, 255);
    kf_node *srcs[] = {xf, xs, xd, xh, xb, xi, xu, p};
    const char *sn[] = {"f32", "f32s", "f64", "f16", "bf16", "i32", "u8", "bool"};
    for (int s = 0; s < N(srcs); s++)
        for (int d = 0; d < KF_NDTYPES; d++)
            out(t, cast(t, srcs[s], (kf_dtype)d), "cast(%s, %s)", sn[s], kf_dtype_name((kf_dtype)d));
    /* casts inside arithmetic */
    out(t, B(t, "add", cast(t, xu, KF_I32), cast(t, B(t, "mul", xs, S(t, 10)), KF_I32)), "u8+f32->i32");
    out(t, B(t, "mul", cast(t, p, KF_F32), xs), "bool*f32");
    out(t, cast(t, B(t, "add", cast(t, xh, KF_F32), xs), KF_F16), "f16->f32->f16");
}

/* Views feeding ops, views as outputs, inputs as outputs. */
static void build_views(T *t, const void *arg)
{
    (void)arg;
    kf_node *x = in(t, "x", KF_F32, SH(17, 33), -3, 3);
    kf_node *y = in(t, "y", KF_F32, SH(33, 17), -3, 3);
    kf_node *z = in(t, "z", KF_F32, SH(3, 5, 7), -3, 3);
    kf_node *col = in(t, "col", KF_F32, SH(17, 1), -2, 2);
    kf_node *row = in(t, "row", KF_F32, SH(33), -2, 2);
    kf_node *xi = in(t, "xi", KF_I32, SH(17, 33), -1000, 1000);
    kf_node *xt = tr(t, x, 0, NULL);
    out(t, B(t, "add", xt, y), "add(transpose(x), y)");
    out(t, B(t, "sub", y, xt), "sub(y, transpose(x))");
    out(t, B(t, "add", x, tr(t, y, AX(1, 0))), "add(x, transpose(y, perm))");
    out(t, U(t, "exp", tr(t, z, AX(1, 2, 0))), "exp(transpose(z, 1 2 0))");
    out(t, B(t, "add", tr(t, z, AX(2, 0, 1)), S(t, 1)), "add(transpose(z, 2 0 1), 1)");
    kf_node *s2 = sl(t, x, 1, 0, END, 2);       /* [17, 17] */
    out(t, B(t, "add", s2, sl(t, y, 0, 0, END, 2)), "add(slice step 2, slice ::2)");
    out(t, U(t, "neg", sl(t, x, 0, -1, END, -1)), "neg(slice reversed)");
    out(t, B(t, "mul", sl(t, x, 1, 30, 2, -3), S(t, 2)), "mul(slice 30:2:-3, 2)");
    out(t, B(t, "add", sl(t, x, 0, 3, 11, 1), sl(t, x, 0, -8, END, 1)), "add(slice 3:11, slice -8:)");
    out(t, sl(t, sl(t, x, 1, -2, 0, -2), 0, 16, 0, -5), "slice of slice (view output)");
    out(t, B(t, "mul", EX(t, col, 17, 33), x), "mul(expand(col), x)");
    out(t, B(t, "mul", EX(t, row, 5, 17, 33), S(t, 3)), "mul(expand(row) rank 3, 3)");
    out(t, EX(t, col, 2, 17, 4), "expand (view output)");
    out(t, B(t, "add", RS(t, xt, 561), S(t, 0.5)), "add(reshape(transpose(x)), 0.5)");
    out(t, B(t, "mul", RS(t, xt, 3, 11, 17), RS(t, x, 3, 11, 17)), "mul(reshape(transpose), reshape)");
    out(t, RS(t, tr(t, z, AX(2, 1, 0)), 7, 15), "reshape(transpose(z)) (view output)");
    out(t, B(t, "add", RS(t, z, 15, 7), RS(t, tr(t, z, AX(1, 0, 2)), 15, 7)), "add(reshape(z), reshape(transpose(z)))");
    out(t, U(t, "abs", RS(t, sl(t, x, 1, 0, END, 3), -1)), "abs(reshape(slice step 3, -1))");
    kf_node *c0[] = {x, B(t, "mul", x, S(t, 2)), sl(t, x, 0, 0, 5, 1)};
    out(t, cat(t, 0, 3, c0), "concat axis 0 (input, computed, slice)");
    kf_node *c1[] = {x, tr(t, y, 0, NULL), col};
    out(t, U(t, "relu", cat(t, 1, 3, c1)), "relu(concat axis 1 (input, transpose, col))");
    kf_node *c2[] = {z, z};
    out(t, cat(t, -1, 2, c2), "concat(z, z) axis -1");
    out(t, B(t, "add", cat(t, 0, 2, (kf_node *[]){xt, y}), S(t, 1)), "add(concat(transpose, y), 1)");
    /* views of integers */
    out(t, B(t, "add", tr(t, xi, 0, NULL), cast(t, y, KF_I32)), "i32 add(transpose, cast)");
    out(t, sl(t, xi, 0, 16, END, -2), "i32 slice -2 (view output)");
    /* view chains */
    out(t, U(t, "sin", sl(t, tr(t, EX(t, col, 17, 33), 0, NULL), 0, 1, 30, 4)), "sin(slice(transpose(expand)))");
    out(t, B(t, "add", tr(t, RS(t, x, 33, 17), 0, NULL), x), "add(transpose(reshape(x)), x)");
    /* outputs that are inputs, views, and the same node twice */
    out(t, x, "input x");
    out(t, xt, "transpose(x) (view output)");
    kf_node *m = B(t, "mul", x, col);
    out(t, m, "mul once");
    out(t, m, "mul twice");
    out(t, xi, "input xi");
    out(t, x, "input x again");
}

/* Reductions: every op over several axis sets, keepdims both ways, dtypes,
 * sizes, with pointwise prologues and epilogues. */
static void build_reduce(T *t, const void *arg)
{
    (void)arg;
    static const char *const rops[] = {"sum", "max", "min", "mean"};
    kf_node *x = in(t, "x", KF_F32, SH(7, 17, 33), -1, 1);
    kf_node *pos = in(t, "pos", KF_F32, SH(7, 17, 33), 0.25, 1.25);
    static const struct {
        int n;
        int64_t ax[3];
    } axs[] = {{0, {0}}, {1, {0}}, {1, {1}}, {1, {2}}, {1, {-1}}, {2, {0, 2}}, {2, {1, 2}}, {2, {-3, -2}}};
    for (int r = 0; r < N(rops); r++)
        for (int a = 0; a < N(axs); a++)
            for (int k = 0; k < 2; k++) {
                /* sums of mixed signs over everything lose absolute accuracy: positive there */
                kf_node *src = (r == 0 || r == 3) && axs[a].n != 1 ? pos : x;
                char axn[32] = "all";
                if (axs[a].n == 1) snprintf(axn, sizeof axn, "%lld", (long long)axs[a].ax[0]);
                if (axs[a].n == 2)
                    snprintf(axn, sizeof axn, "%lld,%lld", (long long)axs[a].ax[0], (long long)axs[a].ax[1]);
                out(t, red(t, rops[r], src, axs[a].n, axs[a].ax, k), "%s(axes %s, keepdims %d)", rops[r], axn, k);
            }
    /* sizes */
    kf_node *v = in(t, "v", KF_F32, SH(1000), 0.25, 1.25);
    out(t, red(t, "sum", v, 0, NULL, 0), "sum(v[1000])");
    out(t, red(t, "max", U(t, "neg", v), 0, NULL, 1), "max(neg(v[1000])) keepdims");
    kf_node *r1 = in(t, "r1", KF_F32, SH(1, 1003), -1, 1);
    out(t, red(t, "mean", r1, AX(1), 0), "mean(r1[1,1003], 1)");
    out(t, red(t, "min", r1, AX(0), 0), "min(r1[1,1003], 0) (size-1 axis)");
    kf_node *cb = in(t, "cb", KF_F32, SH(1000, 3), 0.25, 1.25);
    out(t, red(t, "sum", cb, AX(0), 1), "sum(cb[1000,3], 0)");
    kf_node *one = in(t, "one", KF_F32, SH(1), -1, 1);
    out(t, red(t, "sum", one, 0, NULL, 0), "sum(one[1])");
    /* other dtypes */
    static const kf_dtype fdt[] = {KF_F64, KF_F16, KF_BF16};
    for (int i = 0; i < N(fdt); i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "w_%s", kf_dtype_name(fdt[i]));
        kf_node *w = in(t, nm, fdt[i], SH(17, 129), 0.25, 1.25);
        snprintf(nm, sizeof nm, "s_%s", kf_dtype_name(fdt[i]));
        kf_node *s = in(t, nm, fdt[i], SH(17, 129), -1, 1);
        for (int r = 0; r < N(rops); r++) {
            kf_node *src = r == 0 || r == 3 ? w : s;
            out(t, red(t, rops[r], src, AX(-1), 0), "%s.%s(-1)", kf_dtype_name(fdt[i]), rops[r]);
            out(t, red(t, rops[r], src, AX(0), 1), "%s.%s(0, keepdims)", kf_dtype_name(fdt[i]), rops[r]);
        }
        out(t, red(t, "sum", w, 0, NULL, 0), "%s.sum(all)", kf_dtype_name(fdt[i]));
    }
    static const struct {
        kf_dtype dt;
        double lo, hi;
    } idt[] = {{KF_I32, -1000, 1000}, {KF_I8, -128, 127}, {KF_U8, 0, 255}, {KF_I64, -100000, 100000}};
    for (int i = 0; i < N(idt); i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n_%s", kf_dtype_name(idt[i].dt));
        kf_node *n = in(t, nm, idt[i].dt, SH(7, 33), idt[i].lo, idt[i].hi);
        for (int r = 0; r < N(rops); r++) {
            out(t, red(t, rops[r], n, AX(1), 0), "%s.%s(1)", kf_dtype_name(idt[i].dt), rops[r]);
            out(t, red(t, rops[r], n, 0, NULL, 1), "%s.%s(all)", kf_dtype_name(idt[i].dt), rops[r]);
        }
    }
    /* prologue and epilogue */
    kf_node *m = in(t, "m", KF_F32, SH(67, 129), -2, 2);
    kf_node *b = in(t, "b", KF_F32, SH(67, 1), -1, 1);
    out(t, U(t, "rsqrt", B(t, "add", red(t, "mean", B(t, "mul", m, m), AX(1), 0), S(t, 1e-5))),
        "rsqrt(mean(m*m) + eps)");
    out(t, red(t, "max", U(t, "abs", B(t, "sub", m, b)), AX(0), 0), "max(|m - b|, 0)");
    out(t, red(t, "sum", tr(t, m, 0, NULL), AX(1), 0), "sum(transpose(m), 1)");
    out(t, red(t, "min", sl(t, m, 1, 128, END, -2), AX(1), 1), "min(slice -2, 1)");
    kf_node *sm = red(t, "sum", U(t, "relu", m), AX(0), 0);
    out(t, B(t, "mul", sm, sm), "sum used twice");
    out(t, red(t, "sum", red(t, "max", x, AX(2), 0), AX(0), 0), "sum(max(x, 2), 0)");
    kf_node *y1 = in(t, "y1", KF_F32, SH(7, 1, 33), 0, 1);
    out(t, red(t, "sum", y1, AX(1), 0), "sum over a size-1 axis");
}

/* Pointwise work on a reduction's result when the reduction keeps its
 * dims (the shape of softmax and the norms), apart from the rest so that a
 * failure here leaves the other reductions checked. */
static void build_reduce_keepdims(T *t, const void *arg)
{
    (void)arg;
    kf_node *m = in(t, "m", KF_F32, SH(67, 129), -2, 2);
    kf_node *b = in(t, "b", KF_F32, SH(67, 1), -1, 1);
    kf_node *x = in(t, "x", KF_F32, SH(5, 3), -1, 1);
    kf_node *z = in(t, "z", KF_F32, SH(3, 17, 33), -1, 1);
    out(t, U(t, "neg", red(t, "sum", x, AX(1), 1)), "neg(sum(x, 1, keepdims))");
    out(t, B(t, "add", U(t, "sqrt", red(t, "sum", B(t, "mul", U(t, "exp", m), S(t, 2)), AX(-1), 1)), b),
        "sqrt(sum(exp(m) * 2)) + b");
    out(t, B(t, "sub", m, red(t, "max", m, AX(-1), 1)), "m - max(m) (broadcast back)");
    out(t, B(t, "div", red(t, "sum", m, AX(1), 1), red(t, "max", U(t, "abs", m), AX(1), 1)), "sum / max");
    out(t, B(t, "mul", red(t, "mean", z, AX(0, 2), 1), S(t, 3)), "mean(z, (0, 2), keepdims) * 3");
    out(t, B(t, "sub", z, red(t, "mean", z, AX(-1), 1)), "z - mean(z, -1, keepdims)");
}

/* Matmul in f32: shapes, batches, 1-D operands, views as operands, and
 * prologue and epilogue chains. */
static void build_mm_f32(T *t, const void *arg)
{
    (void)arg;
    static const struct {
        int na, nb;
        int64_t a[4], b[4];
    } shp[] = {
        {2, 2, {1, 1}, {1, 1}},
        {2, 2, {7, 17}, {17, 33}},
        {2, 2, {67, 129}, {129, 33}},
        {2, 2, {33, 1}, {1, 67}},
        {2, 2, {1, 129}, {129, 67}},
        {2, 2, {129, 7}, {7, 1}},
        {3, 3, {3, 7, 17}, {3, 17, 5}},
        {4, 3, {2, 1, 7, 5}, {3, 5, 6}},
        {2, 3, {7, 5}, {2, 5, 3}},
        {3, 3, {1, 9, 13}, {4, 13, 3}},
        {1, 2, {17}, {17, 5}},
        {2, 1, {7, 17}, {17}},
        {1, 1, {17}, {17}},
        {3, 1, {2, 7, 17}, {17}},
        {1, 3, {17}, {2, 17, 5}},
    };
    for (int i = 0; i < N(shp); i++) {
        char na[16], nb[16];
        snprintf(na, sizeof na, "a%d", i);
        snprintf(nb, sizeof nb, "b%d", i);
        kf_node *a = in(t, na, KF_F32, shp[i].na, shp[i].a, -1, 1);
        kf_node *b = in(t, nb, KF_F32, shp[i].nb, shp[i].b, -1, 1);
        out(t, mm(t, a, b), "mm%d", i);
    }
    kf_node *a = in(t, "a", KF_F32, SH(67, 33), -1, 1);
    kf_node *w = in(t, "w", KF_F32, SH(33, 17), -1, 1);
    kf_node *wt = in(t, "wt", KF_F32, SH(17, 33), -1, 1);
    kf_node *bias = in(t, "bias", KF_F32, SH(17), -1, 1);
    kf_node *cb = in(t, "cb", KF_F32, SH(67, 1), -1, 1);
    kf_node *res = in(t, "res", KF_F32, SH(67, 17), -1, 1);
    kf_node *scale = in(t, "scale", KF_F32, SH(33), 0.5, 1.5);
    kf_node *w8 = in(t, "w8", KF_I8, SH(33, 17), -127, 127);
    kf_node *s8 = in(t, "s8", KF_F32, SH(17), 0.001, 0.02);
    kf_node *at = in(t, "at", KF_F32, SH(33, 67), -1, 1);
    /* epilogues */
    out(t, U(t, "relu", B(t, "add", mm(t, a, w), bias)), "relu(a@w + bias)");
    out(t, B(t, "add", B(t, "mul", U(t, "gelu", B(t, "add", mm(t, a, w), cb)), S(t, 0.5)), res),
        "gelu(a@w + colbias) * 0.5 + res");
    out(t, cast(t, B(t, "sub", mm(t, a, w), res), KF_F16), "cast(a@w - res, f16)");
    /* prologues */
    out(t, mm(t, U(t, "relu", B(t, "mul", a, scale)), w), "relu(a * scale) @ w");
    out(t, mm(t, a, B(t, "mul", cast(t, w8, KF_F32), s8)), "a @ (i8 w * s)");
    out(t, mm(t, U(t, "tanh", a), U(t, "sigmoid", w)), "tanh(a) @ sigmoid(w)");
    /* both */
    out(t, U(t, "silu", B(t, "add", mm(t, B(t, "sub", a, S(t, 0.25)), B(t, "mul", cast(t, w8, KF_F32), s8)), bias)),
        "silu((a - 0.25) @ (i8 w * s) + bias)");
    /* views as operands */
    out(t, mm(t, a, tr(t, wt, 0, NULL)), "a @ transpose(wt)");
    out(t, mm(t, tr(t, at, 0, NULL), w), "transpose(at) @ w");
    out(t, mm(t, sl(t, a, 0, 0, END, 2), sl(t, w, 1, 16, END, -3)), "slice(a, ::2) @ slice(w, ::-3)");
    out(t, mm(t, EX(t, sl(t, a, 0, 0, 5, 1), 3, 5, 33), w), "expand(a) @ w");
    /* the same matmul consumed several ways */
    kf_node *y = mm(t, a, w);
    out(t, y, "y = a@w");
    out(t, U(t, "relu", y), "relu(y)");
    out(t, B(t, "mul", y, y), "y * y");
    out(t, red(t, "sum", y, AX(-1), 0), "sum(y, -1)");
    out(t, mm(t, mm(t, a, w), tr(t, w, 0, NULL)), "(a@w) @ w^T");
    out(t, B(t, "add", mm(t, a, w), mm(t, B(t, "mul", a, S(t, 2)), w)), "a@w + (2a)@w");
    kf_node *ab = in(t, "ab", KF_F32, SH(3, 7, 17), -1, 1);
    kf_node *bb = in(t, "bb", KF_F32, SH(3, 17, 5), -1, 1);
    kf_node *bbias = in(t, "bbias", KF_F32, SH(3, 1, 5), -1, 1);
    out(t, U(t, "relu", B(t, "add", mm(t, U(t, "abs", ab), bb), bbias)), "batched relu(|ab| @ bb + bias)");
}

/* Matmul with prologues and epilogues in f16, bf16 and f64. */
static void build_mm_lowp(T *t, const void *arg)
{
    (void)arg;
    static const kf_dtype dts[] = {KF_F16, KF_BF16, KF_F64};
    for (int i = 0; i < N(dts); i++) {
        kf_dtype dt = dts[i];
        const char *dn = kf_dtype_name(dt);
        char nm[32];
#define IN(var, shape_, lo, hi) \
    snprintf(nm, sizeof nm, #var "_%s", dn); \
    kf_node *var = in(t, nm, dt, shape_, lo, hi)
        IN(a, SH(33, 67), -1, 1);
        IN(w, SH(67, 17), -1, 1);
        IN(bias, SH(17), -1, 1);
        IN(res, SH(33, 17), -1, 1);
        IN(scale, SH(67), 0.5, 1.5);
        IN(ab, SH(2, 5, 129), -1, 1);
        IN(bb, SH(129, 7), -1, 1);
#undef IN
        snprintf(nm, sizeof nm, "a32_%s", dn);
        kf_node *a32 = in(t, nm, KF_F32, SH(33, 67), -1, 1);
        out(t, mm(t, a, w), "%s.a@w", dn);
        out(t, U(t, "relu", B(t, "add", mm(t, a, w), bias)), "%s.relu(a@w + bias)", dn);
        out(t, B(t, "add", B(t, "mul", U(t, "tanh", mm(t, B(t, "mul", a, scale), w)), S(t, 2)), res),
            "%s.tanh((a*scale)@w) * 2 + res", dn);
        out(t, cast(t, mm(t, cast(t, a32, dt), w), KF_F32), "%s.cast(cast(a32)@w, f32)", dn);
        out(t, mm(t, ab, bb), "%s.batched ab@bb (K=129)", dn);
        out(t, U(t, "sigmoid", mm(t, U(t, "neg", ab), tr(t, tr(t, bb, 0, NULL), 0, NULL))), "%s.sigmoid(-ab @ bb)", dn);
        out(t, mm(t, tr(t, w, 0, NULL), tr(t, a, 0, NULL)), "%s.w^T @ a^T", dn);
    }
}

/* softmax, layer_norm (three results), rms_norm in every float dtype. */
static void build_composite(T *t, const void *arg)
{
    (void)arg;
    static const kf_dtype dts[] = {KF_F32, KF_F64, KF_F16, KF_BF16};
    for (int i = 0; i < N(dts); i++) {
        kf_dtype dt = dts[i];
        const char *dn = kf_dtype_name(dt);
        char nm[32];
        snprintf(nm, sizeof nm, "x_%s", dn);
        kf_node *x = in(t, nm, dt, SH(7, 33), -3, 3);
        snprintf(nm, sizeof nm, "x3_%s", dn);
        kf_node *x3 = in(t, nm, dt, SH(3, 5, 17), -3, 3);
        snprintf(nm, sizeof nm, "w_%s", dn);
        kf_node *w = in(t, nm, dt, SH(33), 0.5, 1.5);
        snprintf(nm, sizeof nm, "b_%s", dn);
        kf_node *b = in(t, nm, dt, SH(33), -1, 1);
        snprintf(nm, sizeof nm, "w3_%s", dn);
        kf_node *w3 = in(t, nm, dt, SH(5, 17), 0.5, 1.5);
        snprintf(nm, sizeof nm, "v_%s", dn);
        kf_node *v = in(t, nm, dt, SH(2, 1000), -4, 4);
        out(t, comp(t, "softmax", 1, &x, -1, 0, 0, NULL), "%s.softmax(-1)", dn);
        out(t, comp(t, "softmax", 1, &x, 0, 0, 0, NULL), "%s.softmax(0)", dn);
        out(t, comp(t, "softmax", 1, &x3, 1, 0, 0, NULL), "%s.softmax(x3, 1)", dn);
        out(t, comp(t, "softmax", 1, &v, -1, 0, 0, NULL), "%s.softmax(v[2,1000])", dn);
        kf_node *r[3] = {0};
        kf_node *ln[] = {x, w, b};
        comp(t, "layer_norm", 3, ln, -1, 0, 0, r);
        out(t, r[0], "%s.layer_norm.y", dn);
        out(t, r[1], "%s.layer_norm.mean", dn);
        out(t, r[2], "%s.layer_norm.rstd", dn);
        kf_node *r3[3] = {0};
        kf_node *ln3[] = {x3, w3};
        comp(t, "layer_norm", 2, ln3, 1, 1e-3, 1, r3);
        out(t, r3[0], "%s.layer_norm(x3, axis 1, no bias).y", dn);
        out(t, r3[1], "%s.layer_norm(x3, axis 1, no bias).mean", dn);
        out(t, r3[2], "%s.layer_norm(x3, axis 1, no bias).rstd", dn);
        kf_node *rn[] = {x, w};
        out(t, comp(t, "rms_norm", 2, rn, -1, 0, 0, NULL), "%s.rms_norm", dn);
        kf_node *rn3[] = {x3, w3};
        out(t, comp(t, "rms_norm", 2, rn3, -2, 1e-2, 1, NULL), "%s.rms_norm(x3, -2, eps)", dn);
        kf_node *sx[] = {B(t, "mul", x, S(t, 2))};
        out(t, B(t, "add", comp(t, "softmax", 1, sx, -1, 0, 0, NULL), S(t, 1)), "%s.softmax(2x) + 1", dn);
    }
}

/* The composite ops again through the rownorm backend (its kernels: C on
 * the CPU, CUDA under KFUSE_TEST_DEVICE=cuda), with fused prologues and
 * epilogues, and rows long enough for each of its CUDA kernel shapes (a
 * warp per row, a block per row, a block re-reading a row too long to keep). */
static void build_rownorm(T *t, const void *arg)
{
    if (kf_ctx_add_backend(t->ctx, kf_backend_rownorm()) != KF_OK) fail_build(t, "the rownorm backend");
    build_composite(t, arg);
    kf_node *x = in(t, "rn_x", KF_F32, SH(33, 200), -3, 3), *res = in(t, "rn_res", KF_F32, SH(33, 200), -1, 1);
    kf_node *w = in(t, "rn_w", KF_F32, SH(200), 0.5, 1.5), *b = in(t, "rn_b", KF_F32, SH(200), -1, 1);
    kf_node *r[3] = {0};
    kf_node *ln[] = {B(t, "add", x, res), w, b};
    comp(t, "layer_norm", 3, ln, -1, 1e-5, 1, r);
    out(t, cast(t, B(t, "mul", r[0], S(t, 0.5)), KF_F16), "rownorm.f16(layer_norm(x + res) * 0.5)");
    out(t, r[1], "rownorm.layer_norm(x + res).mean");
    out(t, r[2], "rownorm.layer_norm(x + res).rstd");
    kf_node *h = in(t, "rn_h", KF_F16, SH(3, 3000), -4, 4);
    out(t, comp(t, "softmax", 1, &h, -1, 0, 0, NULL), "rownorm.softmax(f16[3, 3000])");
    kf_node *lx = in(t, "rn_long", KF_F32, SH(2, 20000), -4, 4);
    kf_node *sx[] = {B(t, "mul", lx, S(t, 2))};
    out(t, B(t, "add", comp(t, "softmax", 1, sx, -1, 0, 0, NULL), S(t, 1)), "rownorm.softmax(2 long[2, 20000]) + 1");
    kf_node *bx = in(t, "rn_bx", KF_BF16, SH(5, 1500), -3, 3), *bw = in(t, "rn_bw", KF_BF16, SH(1500), 0.5, 1.5);
    kf_node *rb[] = {bx, bw};
    out(t, comp(t, "rms_norm", 2, rb, -1, 0, 0, NULL), "rownorm.rms_norm(bf16[5, 1500])");
    kf_node *dx = in(t, "rn_dx", KF_F64, SH(4, 5000), -3, 3), *dw = in(t, "rn_dw", KF_F64, SH(5000), 0.5, 1.5);
    kf_node *rd[3] = {0}, *ld[] = {dx, dw};
    comp(t, "layer_norm", 2, ld, -1, 0, 0, rd);
    out(t, rd[0], "rownorm.layer_norm(f64[4, 5000]).y");
    out(t, rd[2], "rownorm.layer_norm(f64[4, 5000]).rstd");
}

/* Fused pointwise chains, shared subexpressions, odd sizes. */
static void build_chains(T *t, const void *arg)
{
    kf_dtype dt = *(const kf_dtype *)arg;
    kf_node *x = in(t, "x", dt, SH(129, 67), -2, 2);
    kf_node *y = in(t, "y", dt, SH(129, 67), -2, 2);
    kf_node *p = in(t, "p", dt, SH(129, 67), 0.5, 2);
    kf_node *row = in(t, "row", dt, SH(67), -1, 1);
    kf_node *v = in(t, "v", dt, SH(1000), -2, 2);
    kf_node *one = in(t, "one", dt, SH(1, 1), -1, 1);
    /* 8 ops in a row */
    kf_node *c = U(t, "tanh", B(t, "sub", U(t, "sigmoid", B(t, "add", B(t, "mul", x, S(t, 2)), S(t, 1))),
                                U(t, "exp", U(t, "neg", U(t, "abs", y)))));
    out(t, B(t, "add", B(t, "mul", c, x), U(t, "sqrt", p)), "chain of 10");
    /* a node used twice, a diamond, an intermediate that is also an output */
    kf_node *m = B(t, "mul", x, y);
    out(t, B(t, "add", B(t, "mul", m, m), m), "m*m + m");
    kf_node *e = U(t, "exp", B(t, "mul", x, S(t, 0.5)));
    kf_node *d = B(t, "mul", B(t, "add", e, S(t, 1)), B(t, "mul", e, row));
    out(t, e, "diamond top (also an output)");
    out(t, d, "diamond");
    out(t, U(t, "relu", d), "relu(diamond)");
    out(t, B(t, "div", U(t, "log", p), B(t, "add", U(t, "rsqrt", p), S(t, 1))), "log(p) / (rsqrt(p) + 1)");
    out(t, ap3(t, "where", B(t, "gt", x, row), U(t, "gelu", x), U(t, "silu", y)), "where(x > row, gelu, silu)");
    out(t, ap3(t, "clamp", B(t, "mul", U(t, "sin", x), U(t, "cos", y)), S(t, -0.5), S(t, 0.5)), "clamp(sin*cos)");
    out(t, B(t, "mul", U(t, "erf", v), U(t, "gelu_tanh", v)), "erf(v) * gelu_tanh(v) [1000]");
    out(t, B(t, "add", x, one), "x + one[1,1]");
    out(t, B(t, "pow", p, B(t, "mul", U(t, "sigmoid", y), S(t, 2))), "pow(p, 2 sigmoid(y))");
    /* mixed dtypes through casts */
    kf_node *xd = cast(t, x, KF_F64);
    out(t, cast(t, B(t, "mul", U(t, "exp", xd), xd), dt), "cast(exp(f64(x)) * f64(x))");
    out(t, B(t, "add", cast(t, B(t, "gt", x, y), dt), x), "cast(x > y) + x");
    out(t, cast(t, ap3(t, "where", B(t, "lt", x, S(t, 0)), U(t, "neg", x), x), KF_F32), "f32(|x| by where)");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1) only = argv[1];
    static const kf_dtype fl[] = {KF_F32, KF_F64, KF_F16, KF_BF16};
    static const char *const pwn[] = {"pointwise.f32", "pointwise.f64", "pointwise.f16", "pointwise.bf16"};
    for (int i = 0; i < 4; i++) run_case(pwn[i], build_pointwise_float, &fl[i]);
    run_case("int_bool_cast", build_int, NULL);
    run_case("views", build_views, NULL);
    run_case("reduce", build_reduce, NULL);
    run_case("reduce.keepdims_epilogue", build_reduce_keepdims, NULL);
    run_case("matmul.f32", build_mm_f32, NULL);
    run_case("matmul.f16_bf16_f64", build_mm_lowp, NULL);
    run_case("composite", build_composite, NULL);
    run_case("composite.rownorm", build_rownorm, NULL);
    run_case("chains.f32", build_chains, &fl[0]);
    run_case("chains.f16", build_chains, &fl[2]);
    printf("%d of %d cases failed\n", failures, cases);
    return failures ? 1 : 0;
}
