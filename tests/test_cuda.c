/*
 * test_cuda.c - the CUDA target without a GPU: every kernel that the CUDA
 * generator writes for the golden graphs (tests/golden, each .kf in all three
 * fusion modes) and for graphs that cover every op of ops.def, every dtype,
 * reductions, views and the mm template (tensor-core and SIMT, with
 * prologues and epilogues, aligned and ragged sizes), compiled by NVRTC to
 * PTX (kf_options.compile_only) and nothing launched.  Where libnvrtc
 * cannot be loaded the test is skipped (exit 77) and says why.  The run on
 * a GPU is test_diff with KFUSE_TEST_DEVICE=cuda.  External templates: the
 * rownorm backend's CUDA kernels (every kernel shape, prologues and
 * epilogues, f32 and f16), and a fake backend that misbehaves on CUDA (a
 * bad launch shape, a failed fuse: clear errors) or refuses a hook (the
 * graph is scheduled again).
 * usage: test_cuda GOLDEN_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse.h"
#include "kfuse_backend.h"

static int failures, cases;
static int compile_mode = 1; /* KFUSE_TEST_CUBIN=1: 2, ptxas too */

/* Compiles g in all three fusion modes; want: text that the source of
 * each (with fused_only, of the default mode's) must contain, several
 * pieces separated by '\n' all of them, or NULL. */
static const char *lacks(const char *src, const char *want)
{
    static char piece[128];
    for (const char *p = want; *p;) {
        size_t n = strcspn(p, "\n");
        snprintf(piece, sizeof piece, "%.*s", (int)n, p);
        if (!strstr(src, piece)) return piece;
        p += n + (p[n] == '\n');
    }
    return NULL;
}

static void check_modes(kf_graph *g, const char *name, const char *want, bool fused_only)
{
    static const struct {
        const char *n;
        int nf, ntf;
    } modes[] = {{"default", 0, 0}, {"no_template_fusion", 0, 1}, {"no_fusion", 1, 0}};
    for (int m = 0; m < 3; m++) {
        kf_options o = {.device = KF_DEVICE_CUDA, .compile_only = compile_mode, .no_fusion = modes[m].nf,
                        .no_template_fusion = modes[m].ntf};
        cases++;
        kf_compiled *c = kf_compile(g, &o);
        if (!c) {
            printf("FAIL %s/%s: %.3000s\n", name, modes[m].n, kf_errmsg(kf_graph_ctx(g)));
            kf_clear_error(kf_graph_ctx(g));
            failures++;
            continue;
        }
        const char *miss = want && (m == 0 || !fused_only) ? lacks(kf_compiled_source(c), want) : NULL;
        if (miss) {
            printf("FAIL %s/%s: the source lacks '%s'\n", name, modes[m].n, miss);
            failures++;
        } else {
            printf("ok %s/%s (%d kernels)\n", name, modes[m].n, kf_compiled_num_kernels(c));
        }
        kf_compiled_free(c);
    }
}

static void check(kf_graph *g, const char *name, const char *want)
{
    check_modes(g, name, want, false);
}

/* Checks graph g (PREFIX.dtype) unless building it failed; frees it. */
static void check_built(kf_ctx *ctx, kf_graph *g, const char *prefix, kf_dtype dt, const char *want, bool fused_only)
{
    char name[32];
    snprintf(name, sizeof name, "%s.%s", prefix, kf_dtype_name(dt));
    if (kf_errcode(ctx) != KF_OK) {
        printf("FAIL %s: building: %s\n", name, kf_errmsg(ctx));
        failures++;
        kf_clear_error(ctx);
    } else {
        check_modes(g, name, want, fused_only);
    }
    kf_graph_free(g);
}


static kf_node *in(kf_graph *g, const char *name, kf_dtype t, int nd, const int64_t *shape)
{
    return kf_input(g, name, t, nd, shape);
}

/* Every unary and binary pointwise op in one dtype, with a reduction and
 * views, as outputs of one graph. */
static void ops_graph(kf_ctx *ctx, kf_dtype dt)
{
    static const char *const un[] = {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "reciprocal", "sigmoid", "tanh",
                                     "relu", "gelu", "gelu_tanh", "silu", "erf", "sin", "cos", "floor", "ceil",
                                     "sign"};
    static const char *const bin[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                      "eq", "ne", "lt", "le", "gt", "ge"};
    kf_graph *g = kf_graph_new(ctx);
    bool fl = dt == KF_F32 || dt == KF_F64 || dt == KF_F16 || dt == KF_BF16;
    kf_node *x = in(g, "x", dt, 2, (int64_t[]){7, 33});
    kf_node *y = in(g, "y", dt, 2, (int64_t[]){1, 33});
    for (size_t i = 0; i < sizeof un / sizeof *un; i++) {
        if (!fl && i >= 2 && strcmp(un[i], "relu") && strcmp(un[i], "floor") && strcmp(un[i], "ceil") &&
            strcmp(un[i], "sign"))
            continue;
        kf_output(g, kf_unary(g, un[i], x));
    }
    for (size_t i = 0; i < sizeof bin / sizeof *bin; i++) {
        if (!fl && !strcmp(bin[i], "pow")) continue;
        kf_output(g, kf_binary(g, bin[i], x, y));
    }
    kf_node *v3[3] = {kf_binary(g, "gt", x, y), x, y};
    kf_output(g, kf_apply(g, "where", 3, v3, NULL));
    kf_node *c3[3] = {x, kf_scalar(g, -0.5, KF_F64), kf_scalar(g, 0.5, KF_F64)};
    kf_output(g, kf_apply(g, "clamp", 3, c3, NULL));
    kf_output(g, kf_cast(g, x, dt == KF_F32 ? KF_F16 : KF_F32));
    kf_output(g, kf_cast(g, x, KF_I8));
    kf_output(g, kf_cast(g, x, KF_BOOL));
    kf_node *bx = kf_cast(g, x, KF_BOOL), *by = kf_cast(g, y, KF_BOOL);
    kf_output(g, kf_binary(g, "logical_and", bx, by));
    kf_output(g, kf_binary(g, "logical_or", bx, by));
    kf_output(g, kf_unary(g, "logical_not", bx));
    static const char *const red[] = {"sum", "max", "min", "mean"};
    for (int r = 0; r < 4; r++) {
        kf_attrs a = {.naxes = 1, .axes = {1}};
        kf_output(g, kf_unary(g, fl ? "exp" : "neg", kf_apply(g, red[r], 1, &x, &a)));
        kf_attrs a0 = {.naxes = 1, .axes = {0}, .keepdims = 1};
        kf_output(g, kf_apply(g, red[r], 1, &x, &a0));
    }
    kf_attrs all = {0};
    kf_output(g, kf_apply(g, "sum", 1, &x, &all));
    kf_node *big = in(g, "big", dt, 2, (int64_t[]){3, 5000});
    kf_attrs a1 = {.naxes = 1, .axes = {1}};
    kf_output(g, kf_apply(g, "max", 1, &big, &a1));
    kf_attrs tp = {0};
    kf_output(g, kf_binary(g, "add", kf_apply(g, "transpose", 1, &x, &tp), kf_scalar(g, 1, KF_F64)));
    kf_attrs sl = {.naxes = 1, .axes = {1}, .start = 1, .end = INT64_MAX, .step = 3};
    kf_output(g, kf_unary(g, "relu", kf_apply(g, "slice", 1, &x, &sl)));
    kf_attrs rs = {.nshape = 3, .shape = {7, 3, 11}};
    kf_output(g, kf_unary(g, "neg", kf_apply(g, "reshape", 1, &x, &rs)));
    kf_node *cc[2] = {x, x};
    kf_attrs ca = {.naxes = 1, .axes = {0}};
    kf_output(g, kf_unary(g, "abs", kf_apply(g, "concat", 2, cc, &ca)));
    check_built(ctx, g, "ops", dt, NULL, false);
}

/* The mm template: tensor cores (f16, bf16) and SIMT (f32, f64), plain and
 * prologue operands, aligned and ragged, batched, with epilogues; want: in
 * the source of every mode, or of the fused one alone where fused_only. */
static void mm_graph(kf_ctx *ctx, kf_dtype dt, const char *prefix, const char *want, bool fused_only)
{
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = in(g, "a", dt, 2, (int64_t[]){256, 128});
    kf_node *b = in(g, "b", dt, 2, (int64_t[]){128, 64});
    kf_node *bias = in(g, "bias", dt, 1, (int64_t[]){64});
    kf_node *res = in(g, "res", dt, 2, (int64_t[]){256, 64});
    kf_node *ar = in(g, "ar", dt, 2, (int64_t[]){33, 67});
    kf_node *br = in(g, "br", dt, 2, (int64_t[]){67, 17});
    kf_node *w8 = in(g, "w8", KF_I8, 2, (int64_t[]){128, 64});
    kf_node *sc = in(g, "sc", dt, 1, (int64_t[]){64});
    kf_node *ab = in(g, "ab", dt, 3, (int64_t[]){3, 40, 24});
    kf_node *bb = in(g, "bb", dt, 3, (int64_t[]){3, 24, 16});
    kf_node *x32 = in(g, "x32", KF_F32, 2, (int64_t[]){256, 128});
    kf_output(g, kf_unary(g, "relu", kf_binary(g, "add", kf_matmul(g, a, b), bias)));
    kf_output(g, kf_binary(g, "add", kf_unary(g, "gelu", kf_binary(g, "add", kf_matmul(g, a, b), bias)), res));
    kf_output(g, kf_matmul(g, a, kf_binary(g, "mul", kf_cast(g, w8, dt), sc)));
    kf_output(g, kf_cast(g, kf_unary(g, "silu", kf_binary(g, "add", kf_matmul(g, a, b), bias)), KF_F32));
    kf_output(g, kf_matmul(g, kf_cast(g, kf_unary(g, "relu", x32), dt), b));
    kf_output(g, kf_unary(g, "tanh", kf_matmul(g, ar, br)));
    kf_output(g, kf_matmul(g, ab, bb));
    kf_attrs tp = {0};
    kf_output(g, kf_matmul(g, kf_apply(g, "transpose", 1, &br, &tp), kf_apply(g, "transpose", 1, &ar, &tp)));
    check_built(ctx, g, prefix, dt, want, fused_only);
}

/* Raw staging (the warp-specialised kernel's prologues from TMA-loaded
 * tiles of their source): an int8 weight's dequantisation on B, relu on a
 * batched A (a rank-3 map), both at once; want: in the fused source. */
static void raw_graph(kf_ctx *ctx, kf_dtype dt, const char *want)
{
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = in(g, "a", dt, 2, (int64_t[]){256, 128});
    kf_node *w8 = in(g, "w8", KF_I8, 2, (int64_t[]){128, 64});
    kf_node *sc = in(g, "sc", dt, 1, (int64_t[]){64});
    kf_node *ab = in(g, "ab", dt, 3, (int64_t[]){3, 40, 64});
    kf_node *b = in(g, "b", dt, 2, (int64_t[]){64, 32});
    kf_output(g, kf_matmul(g, a, kf_binary(g, "mul", kf_cast(g, w8, dt), sc)));
    kf_output(g, kf_matmul(g, kf_unary(g, "relu", ab), b));
    kf_output(g, kf_matmul(g, kf_unary(g, "relu", a), kf_binary(g, "mul", kf_cast(g, w8, dt), sc)));
    check_built(ctx, g, "mm_raw", dt, want, true);
}

/* The transposed kernel (wgmma 7: an 8-bit weight from registers): a
 * scale a column, a scale a row (pairs of two loads), an unsigned weight
 * with a zero point, a residual epilogue (four rows a call), K and N off
 * the tile; want: in the fused source. */
static void rt_graph(kf_ctx *ctx, const char *want)
{
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = in(g, "a", KF_F16, 2, (int64_t[]){300, 200});
    kf_node *w8 = in(g, "w8", KF_I8, 2, (int64_t[]){200, 272});
    kf_node *sc = in(g, "sc", KF_F16, 1, (int64_t[]){272});
    kf_node *sk = in(g, "sk", KF_F16, 2, (int64_t[]){200, 1});
    kf_node *u8 = in(g, "u8", KF_U8, 2, (int64_t[]){200, 272});
    kf_node *zp = in(g, "zp", KF_F16, 1, (int64_t[]){272});
    kf_node *res = in(g, "res", KF_F16, 2, (int64_t[]){300, 272});
    kf_output(g, kf_binary(g, "add", kf_matmul(g, a, kf_binary(g, "mul", kf_cast(g, w8, KF_F16), sc)), res));
    kf_output(g, kf_matmul(g, a, kf_binary(g, "mul", kf_cast(g, w8, KF_F16), sk)));
    kf_output(g, kf_matmul(g, a, kf_binary(g, "mul", kf_binary(g, "sub", kf_cast(g, u8, KF_F16), zp), sc)));
    check_built(ctx, g, "mm_rt", KF_F16, want, true);
}

static kf_node *comp(kf_graph *g, const char *op, int nin, kf_node **v, int64_t axis, kf_node **res)
{
    kf_attrs a = {.naxes = 1, .axes = {axis}};
    if (res) return kf_apply_multi(g, op, nin, v, &a, res) ? NULL : res[0];
    return kf_apply(g, op, nin, v, &a);
}

/* rownorm's CUDA kernels: a warp per row (rows not a multiple of 32
 * long), a block per row (3000), a block re-reading a row too long to keep
 * in registers (20000); a residual prologue and a scaled, cast epilogue;
 * layer_norm's three results; normalised over two dims. */
static void rownorm_graph(kf_dtype dt)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_ctx_add_backend(ctx, kf_backend_rownorm());
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = in(g, "x", dt, 2, (int64_t[]){17, 333});
    kf_output(g, comp(g, "softmax", 1, &x, -1, NULL));
    kf_node *h = in(g, "h", dt, 2, (int64_t[]){33, 200}), *r = in(g, "r", dt, 2, (int64_t[]){33, 200});
    kf_node *w = in(g, "w", dt, 1, (int64_t[]){200}), *b = in(g, "b", dt, 1, (int64_t[]){200});
    kf_node *ln[3] = {kf_binary(g, "add", h, r), w, b}, *res[3] = {0};
    comp(g, "layer_norm", 3, ln, -1, res);
    kf_output(g, kf_cast(g, kf_binary(g, "mul", res[0], kf_scalar(g, 0.5, KF_F64)), KF_F16));
    kf_output(g, res[1]);
    kf_output(g, res[2]);
    kf_node *y = in(g, "y", dt, 2, (int64_t[]){9, 130}), *wy = in(g, "wy", dt, 1, (int64_t[]){130});
    kf_node *rn[2] = {y, wy};
    kf_output(g, kf_cast(g, comp(g, "rms_norm", 2, rn, -1, NULL), KF_F32));
    kf_node *l1 = in(g, "l1", dt, 2, (int64_t[]){3, 3000});
    kf_output(g, comp(g, "softmax", 1, &l1, -1, NULL));
    kf_node *l2 = in(g, "l2", dt, 2, (int64_t[]){2, 20000}), *w2 = in(g, "w2", dt, 1, (int64_t[]){20000});
    kf_node *ln2[2] = {kf_unary(g, "relu", l2), w2}, *res2[3] = {0};
    comp(g, "layer_norm", 2, ln2, -1, res2);
    kf_output(g, res2[0]);
    kf_node *t3 = in(g, "t3", dt, 3, (int64_t[]){4, 6, 70}), *w3 = in(g, "w3", dt, 2, (int64_t[]){6, 70});
    kf_node *rn3[2] = {t3, w3};
    kf_output(g, comp(g, "rms_norm", 2, rn3, 1, NULL));
    check_built(ctx, g, "rownorm", dt, "rownorm: layer_norm, 2 rows x 20000 cols", false);
    kf_ctx_free(ctx);
}

/* ---- a backend that misbehaves on CUDA ---- */

enum { FAKE_OK, FAKE_BAD_BLOCK, FAKE_BAD_GRID, FAKE_FAILS, FAKE_REFUSES, FAKE_CPU_ONLY };
static char fake_src[256];
static int fake_args[64];

static int fake_implements(void *ctx, const kf_op_query *q)
{
    if (*(const int *)ctx == FAKE_CPU_ONLY && q->device != KF_DEVICE_CPU) return 0;
    return !strcmp(q->op, "softmax");
}

static int fake_fuse(void *ctx, const kf_fusion_spec *s, kf_fused_kernel *o, char *err, size_t errsz)
{
    int mode = *(const int *)ctx;
    if (mode == FAKE_FAILS) return snprintf(err, errsz, "no CUDA side"), 1;
    if (s->nbuffers > 64) return snprintf(err, errsz, "too many buffers"), 1;
    snprintf(fake_src, sizeof fake_src, "__device__ void %s(void **args) { (void)args; }\n", s->entry);
    for (int i = 0; i < s->nbuffers; i++) fake_args[i] = i;
    *o = (kf_fused_kernel){.source = fake_src, .entry = s->entry, .nargs = s->nbuffers, .args = fake_args,
                           .grid = {4, 1, 1}, .block = {128, 1, 1}};
    if (mode == FAKE_BAD_BLOCK) o->block[0] = 2048;
    if (mode == FAKE_BAD_GRID) o->grid[1] = 0;
    o->accepted_prologues = (1u << s->nprologues) - 1;
    o->accepted_epilogues = mode == FAKE_REFUSES ? 0 : (1u << s->nepilogues) - 1;
    return 0;
}

static int fake_mode; /* what the fake backend does (FAKE_*) */
static const kf_backend fake_be = {.abi_version = KF_BACKEND_ABI_VERSION, .name = "fake", .ctx = &fake_mode,
                                   .implements = fake_implements, .fuse = fake_fuse};

/* 2 * softmax(x), x f32[8, 40], on a new context (*ctx) with the fake
 * backend. */
static kf_graph *fake_graph(kf_ctx **ctx)
{
    *ctx = kf_ctx_new(NULL);
    kf_ctx_add_backend(*ctx, &fake_be);
    kf_graph *g = kf_graph_new(*ctx);
    kf_node *x = in(g, "x", KF_F32, 2, (int64_t[]){8, 40});
    kf_output(g, kf_binary(g, "mul", comp(g, "softmax", 1, &x, -1, NULL), kf_scalar(g, 2, KF_F64)));
    return g;
}

/* Compiles y = softmax(x) * 2 with the fake backend in `mode`: its kernel
 * count (*ext: the source holds the backend's entry), or -1 with the error
 * in err. */
static int fake_compile(int mode, char *err, size_t errsz, bool *ext)
{
    fake_mode = mode;
    kf_ctx *ctx;
    kf_graph *g = fake_graph(&ctx);
    kf_compiled *c = kf_compile(g, &(kf_options){.device = KF_DEVICE_CUDA, .compile_only = compile_mode});
    int nk = -1;
    snprintf(err, errsz, "%s", c ? "" : kf_errmsg(ctx));
    if (c) {
        nk = kf_compiled_num_kernels(c);
        *ext = strstr(kf_compiled_source(c), "__device__ void kf_ext_k") != NULL;
    }
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
    return nk;
}

/* A backend that declines the node on CUDA (asked again at compile time):
 * the softmax is computed by kfuse's own kernels, explain says so, and the
 * graph is left as it was built (compiled again with the backend willing,
 * its kernel is back). */
static void fake_lowered(void)
{
    kf_ctx *ctx;
    kf_graph *g = fake_graph(&ctx);
    kf_options o = {.device = KF_DEVICE_CUDA, .compile_only = compile_mode};
    for (int round = 0; round < 2; round++) {
        fake_mode = round ? FAKE_OK : FAKE_CPU_ONLY;
        cases++;
        kf_compiled *c = kf_compile(g, &o);
        bool ext = c && strstr(kf_compiled_source(c), "__device__ void kf_ext_k");
        bool note = c && strstr(kf_compiled_explain(c, 0), "declined by its backend for this device");
        bool ok = c && (round ? ext && !note : !ext && note && kf_compiled_num_kernels(c) >= 2);
        printf("%s fake backend, %s: %s\n", ok ? "ok" : "FAIL", round ? "willing again" : "declines CUDA",
               c ? kf_compiled_explain(c, 0) : kf_errmsg(ctx));
        failures += !ok;
        kf_compiled_free(c);
    }
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void fake_backend(void)
{
    static const struct {
        int mode;
        const char *want; /* in the error; NULL: compiles */
        int kernels;
    } cs[] = {
        {FAKE_OK, NULL, 1},
        {FAKE_REFUSES, NULL, 2}, /* the epilogue scheduled again, unfused */
        {FAKE_BAD_BLOCK, "backend 'fake' returned a bad CUDA launch shape for softmax: grid 4 x 1 x 1, block 2048", 0},
        {FAKE_BAD_GRID, "backend 'fake' returned a bad CUDA launch shape for softmax: grid 4 x 0 x 1", 0},
        {FAKE_FAILS, "backend 'fake' failed to fuse softmax: no CUDA side", 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        char err[2048];
        bool ext = false;
        cases++;
        int nk = fake_compile(cs[i].mode, err, sizeof err, &ext);
        bool ok = cs[i].want ? nk < 0 && strstr(err, cs[i].want) : nk == cs[i].kernels && ext;
        printf("%s fake backend, case %zu: %s\n", ok ? "ok" : "FAIL", i, nk >= 0 ? "compiled" : err);
        failures += !ok;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cb = getenv("KFUSE_TEST_CUBIN");
    if (cb && *cb == '1') compile_mode = 2;
    kf_ctx *ctx = kf_ctx_new(NULL);
    /* is NVRTC there at all? */
    kf_graph *g = kf_graph_new(ctx);
    kf_output(g, kf_unary(g, "neg", kf_input(g, "x", KF_F32, 1, (int64_t[]){4})));
    kf_compiled *c = kf_compile(g, &(kf_options){.device = KF_DEVICE_CUDA, .compile_only = 1});
    if (!c && kf_errcode(ctx) == KF_ERR_UNSUPPORTED) {
        printf("skipped: %s\n", kf_errmsg(ctx));
        kf_graph_free(g);
        kf_ctx_free(ctx);
        return 77;
    }
    if (!c) printf("FAIL probe: %s\n", kf_errmsg(ctx)), failures++;
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_clear_error(ctx);

    if (argc > 1) {
        DIR *d = opendir(argv[1]);
        char *names[512];
        int n = 0;
        struct dirent *e;
        while (d && (e = readdir(d)) && n < 512) {
            size_t l = strlen(e->d_name);
            if (l > 3 && !strcmp(e->d_name + l - 3, ".kf")) names[n++] = strdup(e->d_name);
        }
        if (d) closedir(d);
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        for (int i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
            kf_graph *gg = kf_load_file(ctx, path, 0, NULL);
            if (!gg) {
                printf("FAIL %s: %s\n", names[i], kf_errmsg(ctx));
                failures++;
                kf_clear_error(ctx);
            } else {
                check(gg, names[i], NULL);
                kf_graph_free(gg);
            }
            free(names[i]);
        }
    }
    static const kf_dtype dts[] = {KF_F32, KF_F64, KF_F16, KF_BF16, KF_I32, KF_I64, KF_I8, KF_U8};
    for (size_t i = 0; i < sizeof dts / sizeof *dts; i++) ops_graph(ctx, dts[i]);
    static const kf_dtype mdt[] = {KF_F16, KF_BF16, KF_F32, KF_F64};
    for (size_t i = 0; i < sizeof mdt / sizeof *mdt; i++) mm_graph(ctx, mdt[i], "mm", NULL, false);
    /* the Hopper kernels, forced (compile_only stands for sm_90, so tuning
     * would not pick them): wgmma, and the warp-specialised one with TMA
     * operands, operands computed by one or two producer warpgroups,
     * batched maps, the staged epilogue, two blocks a multiprocessor,
     * ping-pong, blocks in pairs, streaming and the epilogue through
     * shared memory, alone and in pairs (TMA operands only: the others
     * fall back) and the raw staging of prologues' sources; assembled to
     * sm_90a cubins, since ptxas is what checks their register budget */
    static const struct {
        const char *cfg, *name, *want;
        kf_dtype dt;
    } hop[] = {{"10", "mm_wgmma", "wgmma s4", KF_F16},
               {"13", "mm_ws256", "#define KF_MM_A_TMA 3", KF_F16}, /* ab @ bb: rank-3 maps */
               {"14", "mm_ws128", "wgmma-ws s6", KF_F16},
               {"13", "mm_ws256", "wgmma-ws s4", KF_BF16},
               {"17", "mm_stg256", "wgmma-ws-stg s3", KF_F16}, /* the staged epilogue */
               {"18", "mm_stg128", "wgmma-ws-stg s5", KF_BF16},
               {"19", "mm_x2", "wgmma-ws s3 x2", KF_F16}, /* two blocks a multiprocessor */
               {"20", "mm_pp", "wgmma-pp s6", KF_BF16},  /* ping-pong */
               {"22", "mm_pair", "wgmma-ws s4 c2\n#define KF_MM_PAIR 2", KF_F16}, /* blocks in pairs, B multicast */
               {"22", "mm_pair", "wgmma-ws s4 c2", KF_BF16},
               {"23", "mm_stream", "64x256x64 wgmma-stream s8", KF_F16}, /* streaming: B resident */
               {"23", "mm_stream", "wgmma-stream s8", KF_BF16},
               {"24", "mm_epi_smem", "wgmma-ws-se s4", KF_F16}, /* the epilogue through shared memory */
               {"24", "mm_epi_smem", "#define KF_MM_STORE8R(", KF_BF16},
               {"25", "mm_epi_smem_pair", "wgmma-ws-se s4 c2\n#define KF_MM_PAIR 2", KF_F16}, /* and in pairs */
               {"21", "mm_few_rows", "64x32x64 w32x32 s6", KF_F16}}; /* the few-rows tile (mma.sync) */
    int mode = compile_mode;
    compile_mode = 2;
    for (size_t i = 0; i < sizeof hop / sizeof *hop; i++) {
        setenv("KFUSE_CUDA_MM_CFG", hop[i].cfg, 1);
        mm_graph(ctx, hop[i].dt, hop[i].name, hop[i].want, false);
    }
    /* the four-row epilogue call, where gelu + res's residual differs
     * between rows (fused only: unfused, no epilogue reads a residual) */
    setenv("KFUSE_CUDA_MM_CFG", "25", 1);
    mm_graph(ctx, KF_BF16, "mm_epi_smem_pair", "#define KF_MM_STORE32R(", true);
    setenv("KFUSE_CUDA_MM_CFG", "15", 1);
    /* f16: the packed prologue too; bf16 has none */
    raw_graph(ctx, KF_F16, "#define KF_MM_B_RAW 2\n#define KF_MM_LOAD_B_H2(\nkf_h2_mul(raw, ");
    setenv("KFUSE_CUDA_MM_CFG", "16", 1);
    raw_graph(ctx, KF_BF16, "#define KF_MM_A_RAW 3");
    setenv("KFUSE_CUDA_MM_CFG", "26", 1);
    rt_graph(ctx, "256x128x64 wgmma-rt s5\n#define KF_MM_LOAD_B_H2K(\nkf_h2_pack(\n#define KF_MM_STORE32R(\n"
                  "#define KF_MM_B_RAW_T uint8_t");
    unsetenv("KFUSE_CUDA_MM_CFG");
    compile_mode = mode;
    rownorm_graph(KF_F32);
    rownorm_graph(KF_F16);
    fake_backend();
    fake_lowered();
    kf_ctx_free(ctx);
    printf("%d of %d cases failed\n", failures, cases);
    return failures ? 1 : 0;
}
