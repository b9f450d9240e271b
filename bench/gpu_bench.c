/*
 * gpu_bench.c - kfuse on the GPU against cuBLAS, in one run: for each graph,
 * kfuse fused, kfuse --no-fusion, and cuBLAS's f16 GEMM alone (f32
 * accumulation, the same shape), the median of event-timed runs on device
 * buffers, and the ratios.  Two timings of each: one call alone between
 * two events (the GPU idle before it: launch latency included), and
 * back to back, B calls between the events over NSETS copies of the
 * buffers in turn (more bytes than the L2 holds, so no call finds the
 * previous one's data there), divided by B.  The skinny graph is also set
 * against the bytes-moved limit at the device-to-device copy bandwidth
 * measured here.
 * Used only by the benchmark; built when cuBLAS is found.
 * usage: gpu_bench [REPS]   (KFUSE_BENCH_ONLY=substring picks graphs)
 */
#define _POSIX_C_SOURCE 200809L
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse.h"

#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(2);                                                                            \
        }                                                                                       \
    } while (0)
#define CB(x)                                                                        \
    do {                                                                             \
        cublasStatus_t s_ = (x);                                                     \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                           \
            fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #x, \
                    (int)s_);                                                        \
            exit(2);                                                                 \
        }                                                                            \
    } while (0)

typedef struct gcase {
    const char *name, *text;
    int64_t m, n, k;
    double target;       /* fused / cuBLAS mm at most this; 0: vs the bytes limit */
    double bytes;        /* bytes the graph must move, for the bytes limit */
} gcase;

static const gcase cases[] = {
    {"relu(a@b + bias) 4096^3",
     "input a : f16[4096, 4096]\ninput b : f16[4096, 4096]\ninput bias : f16[4096]\n"
     "y = relu(add(matmul(a, b), bias))\noutput y\n",
     4096, 4096, 4096, 1.05, 0},
    {"gelu(a@b + bias) + res 4096^3",
     "input a : f16[4096, 4096]\ninput b : f16[4096, 4096]\ninput bias : f16[4096]\ninput res : f16[4096, 4096]\n"
     "y = add(gelu(add(matmul(a, b), bias)), res)\noutput y\n",
     4096, 4096, 4096, 1.08, 0},
    {"a @ (cast(wq int8) * scale) 4096^3",
     "input a : f16[4096, 4096]\ninput wq : i8[4096, 4096]\ninput scale : f16[4096]\n"
     "y = matmul(a, mul(cast(wq, dtype=f16), scale))\noutput y\n",
     4096, 4096, 4096, 1.08, 0},
    {"relu(x).to(f16) @ b, x f32, 4096^3",
     "input x : f32[4096, 4096]\ninput b : f16[4096, 4096]\n"
     "y = matmul(cast(relu(x), dtype=f16), b)\noutput y\n",
     4096, 4096, 4096, 0, -1},
    {"silu(a@b + bias) to f32 32768x256x256",
     "input a : f16[32768, 256]\ninput b : f16[256, 256]\ninput bias : f16[256]\n"
     "y = cast(silu(add(matmul(a, b), bias)), dtype=f32)\noutput y\n",
     32768, 256, 256, 0, 32768.0 * 256 * 2 + 256.0 * 256 * 2 + 256 * 2 + 32768.0 * 256 * 4},
    {"a@b 16x4096x4096",
     "input a : f16[16, 4096]\ninput b : f16[4096, 4096]\ny = matmul(a, b)\noutput y\n",
     16, 4096, 4096, 0, -1},
};

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static uint16_t f2h(float f)
{
    /* round to nearest even, finite inputs of modest size */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    uint32_t mant = u & 0x7fffffu;
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        int sh = 14 - e;
        uint32_t r = mant >> sh, rem = mant & ((1u << sh) - 1), half = 1u << (sh - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}
static float h2f(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? INFINITY : ldexpf((float)(m | 0x400u), (int)e - 25);
    uint32_t u;
    memcpy(&u, &v, 4);
    u |= s;
    memcpy(&v, &u, 4);
    return v;
}

static void fill(kf_dtype t, void *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double v = urand() * 2 - 1;
        switch (t) {
        case KF_F16: ((uint16_t *)p)[i] = f2h((float)v); break;
        case KF_F32: ((float *)p)[i] = (float)v; break;
        case KF_I8: ((int8_t *)p)[i] = (int8_t)(v * 127); break;
        default: memset((char *)p + i * (int64_t)kf_dtype_size(t), 0, kf_dtype_size(t)); break;
        }
    }
}

enum { NSETS = 4, B2B = 8 }; /* buffer sets; calls a back-to-back sample */

/* One call of what is timed, on buffer set i; false on failure. */
typedef bool (*call_fn)(void *ud, int i);

/* Median milliseconds of one call: alone (b2b false) or back to back. */
static double time_calls(call_fn f, void *ud, int reps, bool b2b)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float *t = malloc(sizeof *t * (size_t)reps);
    const int per = b2b ? B2B : 1;
    for (int i = 0; i < 5; i++)
        if (!f(ud, i % NSETS)) return -1;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(e0, 0));
        for (int r = 0; r < per; r++)
            if (!f(ud, r % NSETS)) return -1;
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t[i], e0, e1));
        t[i] /= (float)per;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_f);
    double m = t[reps / 2];
    free(t);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return m;
}

typedef struct kf_call {
    kf_compiled *c;
    void **din, **dout; /* [set][input], [set][output] */
    int nin;
} kf_call;

static bool call_kfuse(void *ud, int i)
{
    kf_call *k = ud;
    return kf_run_device(k->c, k->din + i * k->nin, k->dout + i) == KF_OK;
}

typedef struct cb_call {
    cublasHandle_t h;
    int64_t M, N, K;
    void *a[NSETS], *b[NSETS], *c[NSETS];
} cb_call;

static bool call_cublas(void *ud, int i)
{
    cb_call *g = ud;
    float one = 1, zero = 0;
    /* row-major C = A B is column-major C^T = B^T A^T */
    CB(cublasGemmEx(g->h, CUBLAS_OP_N, CUBLAS_OP_N, (int)g->N, (int)g->M, (int)g->K, &one, g->b[i], CUDA_R_16F,
                    (int)g->N, g->a[i], CUDA_R_16F, (int)g->K, &zero, g->c[i], CUDA_R_16F, (int)g->N,
                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return true;
}

/* cuBLAS alone and back to back (ms[0], ms[1]), on NSETS buffer sets. */
static void time_cublas(cublasHandle_t h, int64_t M, int64_t N, int64_t K, int reps, double ms[2])
{
    cb_call g = {.h = h, .M = M, .N = N, .K = K};
    uint16_t *ha = malloc((size_t)(M * K * 2)), *hb = malloc((size_t)(K * N * 2));
    fill(KF_F16, ha, M * K);
    fill(KF_F16, hb, K * N);
    for (int i = 0; i < NSETS; i++) {
        CK(cudaMalloc(&g.a[i], (size_t)(M * K * 2)));
        CK(cudaMalloc(&g.b[i], (size_t)(K * N * 2)));
        CK(cudaMalloc(&g.c[i], (size_t)(M * N * 2)));
        CK(cudaMemcpy(g.a[i], ha, (size_t)(M * K * 2), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(g.b[i], hb, (size_t)(K * N * 2), cudaMemcpyHostToDevice));
    }
    free(ha);
    free(hb);
    for (int v = 0; v < 2; v++) ms[v] = time_calls(call_cublas, &g, reps, v == 1);
    for (int i = 0; i < NSETS; i++) {
        cudaFree(g.a[i]);
        cudaFree(g.b[i]);
        cudaFree(g.c[i]);
    }
}

static double copy_bandwidth(void)
{
    size_t n = (size_t)1 << 30;
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 1, n));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float t[10];
    for (int i = 0; i < 12; i++) {
        CK(cudaEventRecord(e0, 0));
        CK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        if (i >= 2) CK(cudaEventElapsedTime(&t[i - 2], e0, e1));
    }
    qsort(t, 10, sizeof *t, cmp_f);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * (double)n / (t[5] * 1e-3); /* bytes read + written per second */
}

static double max_rel_err(const void *x, const void *y, kf_dtype t, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = t == KF_F16 ? h2f(((const uint16_t *)x)[i]) : ((const float *)x)[i];
        double b = t == KF_F16 ? h2f(((const uint16_t *)y)[i]) : ((const float *)y)[i];
        if (isnan(a) != isnan(b)) return INFINITY;
        num += (a - b) * (a - b);
        den += b * b;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int reps = argc > 1 ? atoi(argv[1]) : 50;
    if (reps < 1 || reps > 10000) reps = 50;
    const char *only = getenv("KFUSE_BENCH_ONLY");
    CK(cudaSetDevice(0));
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    cublasHandle_t h;
    CB(cublasCreate(&h));
    double bw = copy_bandwidth();
    printf("device: %s, %d SMs; device-to-device copy %.2f TB/s (read + write); %d timed runs, medians\n", prop.name,
           prop.multiProcessorCount, bw / 1e12, reps);
    char table[2][64][256];
    int nt = 0, fails = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const gcase *gc = &cases[ci];
        if (only && !strstr(gc->name, only)) continue;
        kf_ctx *ctx = kf_ctx_new(NULL);
        kf_graph *g = kf_parse_kf(ctx, "bench.kf", gc->text, strlen(gc->text));
        if (!g) {
            printf("%s: %s\n", gc->name, kf_errmsg(ctx));
            return 2;
        }
        int nin = kf_graph_num_inputs(g);
        kf_node *on = kf_graph_output(g, 0);
        kf_dtype odt = kf_node_dtype(on);
        int64_t onum = kf_node_numel(on);
        size_t obytes = (size_t)onum * kf_dtype_size(odt);
        void *din[NSETS * 8], *dout[2][NSETS];
        for (int i = 0; i < nin; i++) {
            kf_node *n = kf_graph_input(g, i);
            size_t bytes = (size_t)kf_node_numel(n) * kf_dtype_size(kf_node_dtype(n));
            void *hbuf = malloc(bytes);
            fill(kf_node_dtype(n), hbuf, kf_node_numel(n));
            for (int j = 0; j < NSETS; j++) {
                CK(cudaMalloc(&din[j * nin + i], bytes));
                CK(cudaMemcpy(din[j * nin + i], hbuf, bytes, cudaMemcpyHostToDevice));
            }
            free(hbuf);
        }
        double ms[2][2] = {{-1, -1}, {-1, -1}}; /* [alone, back to back][fused, no-fusion] */
        void *hout[2];
        char tile[4096] = "";
        for (int v = 0; v < 2; v++) {
            for (int j = 0; j < NSETS; j++) {
                CK(cudaMalloc(&dout[v][j], obytes));
                CK(cudaMemset(dout[v][j], 0xff, obytes)); /* NaN: an element never written shows */
            }
            kf_options o = {.device = KF_DEVICE_CUDA, .no_fusion = v == 1};
            kf_compiled *c = kf_compile(g, &o);
            if (!c) {
                printf("%s: kf_compile: %s\n", gc->name, kf_errmsg(ctx));
                return 2;
            }
            kf_call kc = {.c = c, .din = din, .dout = dout[v], .nin = nin};
            for (int w = 0; w < 2; w++) ms[w][v] = time_calls(call_kfuse, &kc, reps, w == 1);
            if (kf_wait(c) != KF_OK || ms[0][v] < 0 || ms[1][v] < 0) {
                printf("%s: kf_run_device: %s\n", gc->name, kf_errmsg(ctx));
                return 2;
            }
            if (v == 0) {
                const char *s = kf_compiled_source(c);
                size_t n = 0;
                for (const char *p = s; (p = strstr(p, "/* kfuse-t")) && n < sizeof tile - 100;) {
                    const char *e = strstr(p, "*/");
                    if (!e) break;
                    n += (size_t)snprintf(tile + n, sizeof tile - n, "    %.*s\n", (int)(e - p - 3), p + 3);
                    p = e;
                }
                const char *note = strstr(kf_compiled_explain(c, 0), "\nnote: ");
                if (note && n < sizeof tile - 100) snprintf(tile + n, sizeof tile - n, "    %s", note + 1);
            }
            hout[v] = malloc(obytes);
            CK(cudaMemcpy(hout[v], dout[v][0], obytes, cudaMemcpyDeviceToHost));
            kf_compiled_free(c);
        }
        double err = max_rel_err(hout[0], hout[1], odt, onum);
        double cb[2];
        time_cublas(h, gc->m, gc->n, gc->k, reps, cb);
        printf("\n%s\n%s", gc->name, tile);
        for (int w = 0; w < 2; w++) {
            static const char *what[] = {"one call alone", "back to back"};
            double tf = 2.0 * (double)gc->m * gc->n * gc->k / (ms[w][0] * 1e-3) / 1e12;
            printf("  %s:\n", what[w]);
            printf("    kfuse fused      %8.4f ms  %6.1f TFLOP/s\n", ms[w][0], tf);
            printf("    kfuse no-fusion  %8.4f ms  (%.2fx fused)\n", ms[w][1], ms[w][1] / ms[w][0]);
            printf("    cuBLAS mm alone  %8.4f ms  (fused/cuBLAS %.3fx)\n", cb[w], ms[w][0] / cb[w]);
            char extra[96] = "";
            if (gc->bytes > 0) {
                double lim = gc->bytes / bw * 1e3;
                printf("    bytes-moved limit %.4f ms (%.1f MB at the copy rate): fused at %.2fx it\n", lim,
                       gc->bytes / 1e6, ms[w][0] / lim);
                snprintf(extra, sizeof extra, "  %.2fx bytes limit (target <= 1.3x)", ms[w][0] / lim);
            } else if (gc->target > 0) {
                snprintf(extra, sizeof extra, "  (target <= %.2fx)", gc->target);
            }
            snprintf(table[w][nt], sizeof table[0][0], "%-40s %8.4f %8.4f %8.4f  %6.3fx%s", gc->name, ms[w][0],
                     ms[w][1], cb[w], ms[w][0] / cb[w], extra);
        }
        nt++;
        printf("  fused vs no-fusion: relative L2 difference %.2e%s\n", err, err < 1e-2 ? "" : "  MISMATCH");
        if (!(err < 1e-2)) fails++;
        for (int v = 0; v < 2; v++) {
            free(hout[v]);
            for (int j = 0; j < NSETS; j++) cudaFree(dout[v][j]);
        }
        for (int i = 0; i < NSETS * nin; i++) cudaFree(din[i]);
        kf_graph_free(g);
        kf_ctx_free(ctx);
    }
    for (int w = 0; w < 2; w++) {
        printf("\n%-40s %8s %8s %8s  %s\n", w ? "back to back (f16, ms, median)" : "one call alone (f16, ms, median)",
               "fused", "no-fus", "cuBLAS", "fused/cuBLAS");
        for (int i = 0; i < nt; i++) printf("%s\n", table[w][i]);
    }
    cublasDestroy(h);
    return fails ? 1 : 0;
}
