/*
 * bench_rownorm.c - how close rownorm's kernels come to memory bandwidth.
 * Not a test.  In one JIT-compiled unit (built as kfuse builds one):
 *   softmax f32 ROWS x COLS against a parallel copy of the same bytes;
 *   layer_norm f32 with a residual prologue (x = a + r) against the unfused
 *   pair (an add kernel, then a plain layer_norm) and against a copy that
 *   moves as many bytes as the fused kernel.
 * Rates count the bytes a kernel must move (reads + writes) once.
 *
 * usage: bench_rownorm PRELUDE_H [ROWS COLS [ITERS]]  (RN_DUMP=FILE: the unit)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfuse_backend.h"
#include "rn_jit.h"

typedef void (*entry_fn)(void **);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int iters = 20;

/* Median seconds of one call of each of n kernels, timed in turns so that
 * drift in the machine's state affects them alike. */
static void time_turns(int n, entry_fn *f, void ***args, double *med)
{
    static double t[4][256];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < n; k++) f[k](args[k]);
    for (int i = 0; i < iters; i++)
        for (int k = 0; k < n; k++) {
            double t0 = now();
            f[k](args[k]);
            t[k][i] = now() - t0;
        }
    for (int k = 0; k < n; k++) {
        qsort(t[k], (size_t)iters, sizeof t[k][0], cmp_d);
        med[k] = t[k][iters / 2];
    }
}


static float *fbuf(int64_t n, int fill)
{
    float *p = aligned_alloc(64, ((size_t)n * 4 + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) p[i] = fill ? (float)((i * 7919) % 2001) * 1e-3f - 1.0f : 0.0f;
    return p;
}

static void fuse_or_die(const kf_backend *be, const kf_fusion_spec *s, kf_fused_kernel *k)
{
    char err[256] = "";
    if (be->fuse(be->ctx, s, k, err, sizeof err)) {
        fprintf(stderr, "fuse %s: %s\n", s->entry, err);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PRELUDE_H [ROWS COLS [ITERS]]\n", argv[0]);
        return 2;
    }
    int64_t R = argc > 3 ? atoll(argv[2]) : 8192, C = argc > 3 ? atoll(argv[3]) : 1024;
    if (argc > 4) iters = atoi(argv[4]);
    if (iters < 1 || iters > 256) iters = 20;
    char *prelude = rnj_read(argv[1]);
    if (!prelude) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    const kf_backend *be = kf_backend_rownorm();
    int64_t xs[2] = {R, C}, ms[2] = {R, 1};
    kf_attrs at = {.naxes = 1, .axes = {1}, .eps = 1e-5, .has_eps = 1};

    /* softmax: buffers 0 x, 1 y */
    kf_tensor_desc sm_io[2] = {rnj_td(KF_F32, 2, xs), rnj_td(KF_F32, 2, xs)};
    kf_buffer_desc sm_b[2] = {{sm_io[0], KF_BUF_INPUT, 0}, {sm_io[1], KF_BUF_OUTPUT, 0}};
    int sm_in[1] = {0}, sm_out[1] = {1};
    kf_fusion_spec sm = {.abi_version = KF_BACKEND_ABI_VERSION, .device = KF_DEVICE_CPU, .op = "softmax",
                         .attrs = &at, .entry = "bn_softmax", .ninputs = 1, .inputs = &sm_io[0],
                         .input_buffer = sm_in, .noutputs = 1, .outputs = &sm_io[1], .output_buffer = sm_out,
                         .nbuffers = 2, .buffers = sm_b};

    /* layer_norm: buffers 0 a, 1 r (the prologue's), 2 w, 3 b, 4 y, 5 mean,
     * 6 rstd, 7 x (the plain kernel's input) */
    kf_tensor_desc ln_in[3] = {rnj_td(KF_F32, 2, xs), rnj_td(KF_F32, 1, &C), rnj_td(KF_F32, 1, &C)}, ln_out[3] = {rnj_td(KF_F32, 2, xs), rnj_td(KF_F32, 2, ms), rnj_td(KF_F32, 2, ms)};
    kf_buffer_desc ln_b[8] = {{ln_in[0], KF_BUF_SOURCE, 0},  {ln_in[0], KF_BUF_SOURCE, 0},
                              {ln_in[1], KF_BUF_INPUT, 1},   {ln_in[2], KF_BUF_INPUT, 2},
                              {ln_out[0], KF_BUF_OUTPUT, 0}, {ln_out[1], KF_BUF_OUTPUT, 1},
                              {ln_out[2], KF_BUF_OUTPUT, 2}, {ln_in[0], KF_BUF_INPUT, 0}};
    int srcs[2] = {0, 1}, fin[3] = {-1, 2, 3}, pin[3] = {7, 2, 3}, lout[3] = {4, 5, 6};
    kf_hook pro = {.target = 0, .fn = "bn_residual", .code = "", .nsources = 2, .sources = srcs, .names = "x"};
    kf_fusion_spec lnf = {.abi_version = KF_BACKEND_ABI_VERSION, .device = KF_DEVICE_CPU, .op = "layer_norm",
                          .attrs = &at, .entry = "bn_ln_fused", .ninputs = 3, .inputs = ln_in,
                          .input_buffer = fin, .noutputs = 3, .outputs = ln_out, .output_buffer = lout,
                          .nprologues = 1, .prologues = &pro, .nbuffers = 8, .buffers = ln_b};
    kf_fusion_spec lnp = lnf;
    lnp.entry = "bn_ln_plain";
    lnp.input_buffer = pin;
    lnp.nprologues = 0;
    lnp.prologues = NULL;

    kf_fused_kernel ksm, klnf, klnp;
    fuse_or_die(be, &sm, &ksm);
    fuse_or_die(be, &lnf, &klnf);
    fuse_or_die(be, &lnp, &klnp);

    char *unit = NULL, line[2048];
    size_t len = 0;
    rnj_cat(&unit, &len, prelude);
    snprintf(line, sizeof line,
             "\nKF_INLINE float bn_residual(void **B, int64_t i0, int64_t i1)\n{\n"
             "    const int64_t o = i0 * INT64_C(%lld) + i1;\n"
             "    return ((const float *)B[0])[o] + ((const float *)B[1])[o];\n}\n"
             /* the baselines: a copy of n bytes, and the unfused residual add */
             "void bn_copy(void **args)\n{\n"
             "    const char *src = args[0];\n    char *dst = args[1];\n"
             "    const int64_t n = *(const int64_t *)args[2], chunk = 1 << 16;\n"
             "#pragma omp parallel for schedule(static)\n"
             "    for (int64_t o = 0; o < n; o += chunk)\n"
             "        memcpy(dst + o, src + o, (size_t)(n - o < chunk ? n - o : chunk));\n}\n"
             "void bn_add(void **args)\n{\n"
             "    const float *KF_RESTRICT a = args[0], *KF_RESTRICT b = args[1];\n"
             "    float *KF_RESTRICT y = args[2];\n"
             "#pragma omp parallel for simd schedule(static)\n"
             "    for (int64_t i = 0; i < INT64_C(%lld); i++) y[i] = a[i] + b[i];\n}\n",
             (long long)C, (long long)(R * C));
    rnj_cat(&unit, &len, line);
    rnj_cat(&unit, &len, ksm.source);
    rnj_cat(&unit, &len, klnf.source);
    rnj_cat(&unit, &len, klnp.source);
    const char *dump = getenv("RN_DUMP");
    if (dump) {
        FILE *f = fopen(dump, "w");
        if (f) fputs(unit, f), fclose(f);
    }
    void *h = rnj_build(unit);
    if (!h) return 1;
    entry_fn f_sm = (entry_fn)dlsym(h, "bn_softmax"), f_lnf = (entry_fn)dlsym(h, "bn_ln_fused");
    entry_fn f_lnp = (entry_fn)dlsym(h, "bn_ln_plain"), f_copy = (entry_fn)dlsym(h, "bn_copy");
    entry_fn f_add = (entry_fn)dlsym(h, "bn_add");
    if (!f_sm || !f_lnf || !f_lnp || !f_copy || !f_add) return fprintf(stderr, "missing symbol\n"), 1;

    int64_t N = R * C;
    float *x = fbuf(N, 1), *r = fbuf(N, 1), *y = fbuf(N, 0), *t = fbuf(N, 0);
    float *w = fbuf(C, 1), *b = fbuf(C, 1), *mean = fbuf(R, 0), *rstd = fbuf(R, 0);
    float *big_src = fbuf(2 * N, 1), *big_dst = fbuf(2 * N, 0);
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("rownorm bench: %lld x %lld f32, median of %d, OMP_NUM_THREADS=%s\n", (long long)R, (long long)C, iters,
           omp ? omp : "(default)");

    /* softmax vs a copy: both read N floats and write N floats */
    double gb = 2.0 * (double)N * 4 / 1e9;
    int64_t nbytes = N * 4;
    void *sm_args[2];
    for (int a = 0; a < ksm.nargs; a++) sm_args[a] = ksm.args[a] == 0 ? (void *)x : (void *)y;
    void *cp_args[3] = {x, y, &nbytes};
    double m1[2];
    time_turns(2, (entry_fn[]){f_sm, f_copy}, (void **[]){sm_args, cp_args}, m1);
    double t_sm = m1[0], t_cp = m1[1];
    printf("softmax        %8.3f ms  %6.1f GB/s\n", t_sm * 1e3, gb / t_sm);
    printf("copy           %8.3f ms  %6.1f GB/s\n", t_cp * 1e3, gb / t_cp);
    printf("softmax / copy %8.0f %%\n", 100 * t_cp / t_sm);

    /* layer_norm: fused reads a, r and writes y (+ w, b, mean, rstd) */
    void *bufs[8] = {x, r, w, b, y, mean, rstd, t};
    void *lf_args[8], *lp_args[8];
    for (int a = 0; a < klnf.nargs; a++) lf_args[a] = bufs[klnf.args[a]];
    for (int a = 0; a < klnp.nargs; a++) lp_args[a] = bufs[klnp.args[a]];
    void *add_args[3] = {x, r, t};
    double lbytes = 3.0 * (double)N * 4 + 2.0 * C * 4 + 2.0 * R * 4;
    int64_t cbytes = (int64_t)(lbytes / 2); /* a copy that moves as many bytes */
    void *cp2_args[3] = {big_src, big_dst, &cbytes};
    double m2[4];
    time_turns(4, (entry_fn[]){f_lnf, f_copy, f_add, f_lnp}, (void **[]){lf_args, cp2_args, add_args, lp_args}, m2);
    double t_lf = m2[0], t_cp2 = m2[1], t_add = m2[2], t_lp = m2[3];
    printf("layer_norm(a + r) fused     %8.3f ms  %6.1f GB/s\n", t_lf * 1e3, lbytes / 1e9 / t_lf);
    printf("copy of as many bytes       %8.3f ms  %6.1f GB/s\n", t_cp2 * 1e3, lbytes / 1e9 / t_cp2);
    printf("unfused: add + layer_norm   %8.3f ms  (%.3f + %.3f)\n", (t_add + t_lp) * 1e3, t_add * 1e3, t_lp * 1e3);
    printf("fused / copy %.0f %%, speed-up over unfused %.2fx\n", 100 * t_cp2 / t_lf, (t_add + t_lp) / t_lf);

    be->release(be->ctx, &ksm);
    be->release(be->ctx, &klnf);
    be->release(be->ctx, &klnp);
    free(x), free(r), free(y), free(t), free(w), free(b), free(mean), free(rstd), free(big_src), free(big_dst);
    free(unit);
    free(prelude);
    return 0;
}
