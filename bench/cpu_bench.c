/*
 * cpu_bench.c - the CPU benchmark of issue-level targets, baseline and kfuse
 * measured in the same run:
 *   1. gelu(a@b + bias), f32, 1024^3 and 2048^3: kfuse fused vs OpenBLAS
 *      sgemm alone and sgemm + a separate bias+gelu pass (GFLOP/s, ratio);
 *   2. relu(a@b + bias) + res, 4096x4096x64: kfuse fused vs kfuse
 *      --no-fusion and --no-template-fusion, and OpenBLAS + a pass;
 *   3. a memory copy of the output's size, for the bandwidth state;
 *   4. the rownorm backend, 8192x1024 f32: layer_norm(x + r) with the add
 *      fused as a prologue vs --no-fusion, and softmax's bytes per second
 *      against a copy of the same size.
 * Run it through bench/run_cpu.sh, which unsets OPENBLAS_CORETYPE and
 * OPENBLAS_L2_SIZE so that OpenBLAS picks its best kernel.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfuse.h"
#include "kfuse_backend.h"
/* the baseline pass uses kfuse's own gelu and relu */
#include "../templates/cpu/prelude.h"
#include "../templates/common/helpers.h"

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*bench_fn)(void *arg);
enum { WARMUP = 3, REPEAT = 15 };

/* median of REPEAT runs after WARMUP */
static double time_median(bench_fn f, void *arg)
{
    double t[REPEAT];
    for (int i = 0; i < WARMUP; i++) f(arg);
    for (int i = 0; i < REPEAT; i++) {
        double t0 = now_ms();
        f(arg);
        t[i] = now_ms() - t0;
    }
    qsort(t, REPEAT, sizeof *t, cmp_d);
    return t[REPEAT / 2];
}

typedef struct job {
    int M, N, K;
    float *a, *b, *bias, *res, *c;
    kf_compiled *kc;
    int pass; /* 0 none, 1 bias+gelu, 2 bias+relu+res */
} job;

static void run_blas(void *p)
{
    job *j = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->M, j->N, j->K, 1.0f, j->a, j->K, j->b, j->N,
                0.0f, j->c, j->N);
    if (!j->pass) return;
    /* the separate pass, vectorised, with the same gelu kfuse uses */
    const int M = j->M, N = j->N, pass = j->pass;
    float *restrict c = j->c;
    const float *restrict bias = j->bias, *restrict res = j->res;
#pragma omp parallel for
    for (int m = 0; m < M; m++) {
        if (pass == 1) {
#pragma omp simd
            for (int n = 0; n < N; n++) c[(long)m * N + n] = kf_gelu_f(c[(long)m * N + n] + bias[n]);
        } else {
#pragma omp simd
            for (int n = 0; n < N; n++)
                c[(long)m * N + n] = kf_relu_f(c[(long)m * N + n] + bias[n]) + res[(long)m * N + n];
        }
    }
}

static void run_kfuse(void *p)
{
    job *j = p;
    const void *in[4] = {j->a, j->b, j->bias, j->res};
    kf_run(j->kc, in, (void *[]){j->c});
}

static void run_copy(void *p)
{
    job *j = p;
    memcpy(j->c, j->res, sizeof(float) * (size_t)j->M * j->N);
}

static kf_compiled *compile(kf_ctx *ctx, const char *text, int no_fusion, int no_tf)
{
    kf_graph *g = kf_parse_kf(ctx, "bench.kf", text, strlen(text));
    if (!g) return NULL;
    kf_compiled *c = kf_compile(g, &(kf_options){.no_fusion = no_fusion, .no_template_fusion = no_tf});
    kf_graph_free(g);
    return c;
}

static float *rnd(size_t n, unsigned seed)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    return p;
}

static int check_kfuse(kf_ctx *ctx, const char *what)
{
    if (kf_errcode(ctx) == KF_OK) return 0;
    fprintf(stderr, "%s: %s\n", what, kf_errmsg(ctx));
    return 1;
}

typedef struct rn_job {
    kf_compiled *kc;
    const void *in[4];
    void *out[1];
    float *src, *dst;
    size_t n;
} rn_job;

static void run_rn(void *p)
{
    rn_job *j = p;
    kf_run(j->kc, j->in, j->out);
}

static void run_rn_copy(void *p)
{
    rn_job *j = p;
    memcpy(j->dst, j->src, j->n * sizeof(float));
}

static int bench_rownorm(void)
{
    enum { R = 8192, C = 1024 };
    kf_ctx *ctx = kf_ctx_new(NULL);
    if (kf_ctx_add_backend(ctx, kf_backend_rownorm()) != KF_OK) return check_kfuse(ctx, "rownorm");
    size_t n = (size_t)R * C;
    rn_job j = {.src = rnd(n, 8), .dst = malloc(n * sizeof(float)), .n = n};
    float *r = rnd(n, 9), *w = rnd(C, 10), *b = rnd(C, 11);
    j.in[0] = j.src;
    j.in[1] = r;
    j.in[2] = w;
    j.in[3] = b;
    j.out[0] = j.dst;
    printf("\n-- rownorm backend, f32 %dx%d\n", R, C);
    double tc = time_median(run_rn_copy, &j);
    double mb = 2.0 * n * sizeof(float) / 1e6;
    printf("memcpy of x: %.3f ms (%.1f GB/s read+write)\n", tc, mb / tc);
    char text[512];
    snprintf(text, sizeof text,
             "input x : f32[%d, %d]\ninput r : f32[%d, %d]\ninput w : f32[%d]\ninput b : f32[%d]\n"
             "y, m, s = layer_norm(add(x, r), w, b, axis=-1, eps=1e-5)\noutput y\n", R, C, R, C, C, C);
    double t[2];
    for (int v = 0; v < 2; v++) {
        j.kc = compile(ctx, text, v, 0);
        if (check_kfuse(ctx, "compile")) return 1;
        t[v] = time_median(run_rn, &j);
        printf("layer_norm(x + r) %-12s %d kernels %8.3f ms\n", v ? "--no-fusion" : "fused", kf_compiled_num_kernels(j.kc), t[v]);
        kf_compiled_free(j.kc);
    }
    printf("layer_norm(x + r): fused is %.2fx faster than --no-fusion\n", t[1] / t[0]);
    snprintf(text, sizeof text, "input x : f32[%d, %d]\ny = softmax(x, axis=-1)\noutput y\n", R, C);
    j.kc = compile(ctx, text, 0, 0);
    if (check_kfuse(ctx, "compile")) return 1;
    double ts = time_median(run_rn, &j);
    printf("softmax (rownorm): %.3f ms, %.1f GB/s = %.0f%% of the copy's rate\n", ts, mb / ts, 100.0 * tc / ts);
    kf_compiled_free(j.kc);
    free(j.src); free(j.dst); free(r); free(w); free(b);
    kf_ctx_free(ctx);
    return 0;
}

int main(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    printf("OpenBLAS core: %s, %d threads\n", openblas_get_corename(), openblas_get_num_threads());
    char text[512];
    int sizes[2] = {1024, 2048};
    printf("\n-- gelu(a@b + bias), f32\n");
    printf("%-6s %28s %28s %28s %8s\n", "size", "OpenBLAS sgemm alone", "OpenBLAS + gelu pass", "kfuse fused",
           "kfuse/sgemm");
    for (int s = 0; s < 2; s++) {
        int n = sizes[s];
        job j = {n, n, n, rnd((size_t)n * n, 1), rnd((size_t)n * n, 2), rnd((size_t)n, 3), NULL,
                 malloc(sizeof(float) * (size_t)n * n), NULL, 0};
        snprintf(text, sizeof text,
                 "input a : f32[%d, %d]\ninput b : f32[%d, %d]\ninput bias : f32[%d]\n"
                 "y = gelu(add(matmul(a, b), bias))\noutput y\n", n, n, n, n, n);
        j.kc = compile(ctx, text, 0, 0);
        if (check_kfuse(ctx, "compile")) return 2;
        double gf = 2.0 * n * n * (double)n / 1e6;
        double t0 = time_median(run_blas, &j);
        j.pass = 1;
        double t1 = time_median(run_blas, &j);
        double t2 = time_median(run_kfuse, &j);
        printf("%-6d %9.3f ms %7.1f GF/s %9.3f ms %7.1f GF/s %9.3f ms %7.1f GF/s %7.2fx\n", n, t0, gf / t0, t1,
               gf / t1, t2, gf / t2, t0 / t2);
        kf_compiled_free(j.kc);
        free(j.a); free(j.b); free(j.bias); free(j.c);
    }

    printf("\n-- relu(a@b + bias) + res, f32, 4096x4096x64 (M x N x K)\n");
    {
        int M = 4096, N = 4096, K = 64;
        job j = {M, N, K, rnd((size_t)M * K, 4), rnd((size_t)K * N, 5), rnd((size_t)N, 6),
                 rnd((size_t)M * N, 7), malloc(sizeof(float) * (size_t)M * N), NULL, 2};
        snprintf(text, sizeof text,
                 "input a : f32[%d, %d]\ninput b : f32[%d, %d]\ninput bias : f32[%d]\ninput res : f32[%d, %d]\n"
                 "y = add(relu(add(matmul(a, b), bias)), res)\noutput y\n", M, K, K, N, N, M, N);
        double tc = time_median(run_copy, &j);
        double bytes = 2.0 * sizeof(float) * M * (double)N;
        printf("memcpy of the output size: %.3f ms (%.1f GB/s read+write)\n", tc, bytes / tc / 1e6);
        double tb = time_median(run_blas, &j);
        printf("OpenBLAS sgemm + bias/relu/res pass: %.3f ms\n", tb);
        const char *names[3] = {"kfuse fused", "kfuse --no-template-fusion", "kfuse --no-fusion"};
        int flags[3][2] = {{0, 0}, {0, 1}, {1, 0}};
        double tf = 0;
        for (int v = 0; v < 3; v++) {
            j.kc = compile(ctx, text, flags[v][0], flags[v][1]);
            if (check_kfuse(ctx, "compile")) return 2;
            double t = time_median(run_kfuse, &j);
            if (v == 0) tf = t;
            printf("%-28s %2d kernels %9.3f ms  %5.2fx of fused\n", names[v], kf_compiled_num_kernels(j.kc), t,
                   t / tf);
            kf_compiled_free(j.kc);
        }
        printf("OpenBLAS + pass / kfuse fused: %.2fx\n", tb / tf);
        free(j.a); free(j.b); free(j.bias); free(j.res); free(j.c);
    }
    if (bench_rownorm()) return 2;
    kf_ctx_free(ctx);
    return 0;
}
