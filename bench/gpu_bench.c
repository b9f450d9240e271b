/*
 * gpu_bench.c - kfuse on the GPU against cuBLAS, in one run: for each graph,
 * kfuse fused, kfuse --no-fusion, and cuBLAS's f16 GEMM alone (f32
 * accumulation, the same shape), the median of event-timed runs on device
 * buffers, and the ratios.  Three timings of each: one call alone between
 * two events (the GPU idle before it: launch latency included); back to
 * back, B calls between the events over NSETS copies of the buffers in
 * turn (more bytes than the L2 holds, so no call finds the previous one's
 * data there), divided by B; and as triton's do_bench times (how the
 * reference figures of cuBLAS and torch.compile on the same GPU were
 * taken), B calls each between two events of its own after a 256 MB
 * memset that empties the L2, the GPU kept busy, the mean of the B.  Both
 * plans are compiled (and tuned) first; then the three are sampled in
 * turn, one sample of each a round, so that each sees the GPU in the same
 * state (its clock under the power limit).  The skinny graph is also set
 * against the bytes-moved limit at the device-to-device copy bandwidth
 * measured here, and against a copy of as many bytes.
 * KFUSE_BENCH_SUSTAIN=S: then each of them alone, back to back for S
 * seconds, between printed wall-clock stamps (nvidia-smi's format), so that
 * a power and clock log taken beside it (gpu_run.sh SUSTAIN=S) tells the
 * clock each one runs at under the power limit.
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
#include <time.h>

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

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
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

enum { NSETS = 4, B2B = 8 }; /* buffer sets; calls a back-to-back or flushed sample */
enum { ALONE, BACK, FLUSHED, NMODES }; /* the timings: see the top */
#define FLUSH_BYTES ((size_t)256 << 20)
static void *flush_buf; /* FLUSHED's memset target */

/* One call of what is timed, on buffer set i; false on failure. */
typedef bool (*call_fn)(void *ud, int i);

/* One sample, in milliseconds a call, timed as mode says (see the top)
 * with the events ev[0 .. 2 B2B - 1]; negative when a call failed. */
static double sample(call_fn f, void *ud, int mode, cudaEvent_t *ev)
{
    const int per = mode == ALONE ? 1 : B2B;
    float t, sum = 0;
    if (mode == FLUSHED) {
        for (int r = 0; r < per; r++) {
            CK(cudaMemsetAsync(flush_buf, r, FLUSH_BYTES, 0));
            CK(cudaEventRecord(ev[2 * r], 0));
            if (!f(ud, r % NSETS)) return -1;
            CK(cudaEventRecord(ev[2 * r + 1], 0));
        }
        CK(cudaEventSynchronize(ev[2 * per - 1]));
        for (int r = 0; r < per; r++) {
            CK(cudaEventElapsedTime(&t, ev[2 * r], ev[2 * r + 1]));
            sum += t;
        }
        return sum / per;
    }
    CK(cudaEventRecord(ev[0], 0));
    for (int r = 0; r < per; r++)
        if (!f(ud, r % NSETS)) return -1;
    CK(cudaEventRecord(ev[1], 0));
    CK(cudaEventSynchronize(ev[1]));
    CK(cudaEventElapsedTime(&t, ev[0], ev[1]));
    return t / per;
}

/* Median milliseconds of each of the n timed things (f[j], ud[j]), in
 * each mode (ms[j][ALONE], [BACK], [FLUSHED]).  The samples are taken in turn,
 * one of each per round, so that every thing is timed in the same state of
 * the GPU: a large product runs into the power limit within a fraction of a
 * second, and a GPU that has just idled (while the next plan compiles) runs
 * its first milliseconds at a higher clock than one that has just been busy
 * (tuning, the previous thing's samples).  -1 on failure. */
static int time_round_robin(int n, call_fn const *f, void *const *ud, int reps, double (*ms)[NMODES])
{
    cudaEvent_t ev[2 * B2B];
    for (int i = 0; i < 2 * B2B; i++) CK(cudaEventCreate(&ev[i]));
    double *t = malloc(sizeof *t * (size_t)reps * (size_t)n);
    int rc = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < 5; i++)
            if (!f[j](ud[j], i % NSETS)) rc = -1;
    for (int w = 0; w < NMODES && !rc; w++) {
        for (int i = 0; i < reps && !rc; i++)
            for (int j = 0; j < n && !rc; j++)
                if ((t[j * reps + i] = sample(f[j], ud[j], w, ev)) < 0) rc = -1;
        for (int j = 0; j < n && !rc; j++) {
            qsort(t + j * reps, (size_t)reps, sizeof *t, cmp_d);
            ms[j][w] = t[j * reps + reps / 2];
        }
    }
    free(t);
    for (int i = 0; i < 2 * B2B; i++) cudaEventDestroy(ev[i]);
    return rc;
}

/* now, as nvidia-smi stamps its samples */
static void stamp(char *buf, size_t sz)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, sz, "%Y/%m/%d %H:%M:%S", &tm);
    snprintf(buf + n, sz - n, ".%03ld", ts.tv_nsec / 1000000);
}

/* Thing f alone, back to back for secs seconds: the median milliseconds a
 * call, between two printed stamps; negative on failure. */
static double sustain(call_fn f, void *ud, double secs, const char *what)
{
    cudaEvent_t ev[2];
    CK(cudaEventCreate(&ev[0]));
    CK(cudaEventCreate(&ev[1]));
    int cap = 1 << 16, n = 0;
    double *t = malloc(sizeof *t * (size_t)cap), med = -1;
    char a[64], b[64];
    struct timespec t0, t1;
    stamp(a, sizeof a);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        double ms = sample(f, ud, BACK, ev);
        if (ms < 0) break;
        if (n < cap) t[n++] = ms;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9 >= secs) {
            qsort(t, (size_t)n, sizeof *t, cmp_d);
            med = t[n / 2];
            break;
        }
    }
    stamp(b, sizeof b);
    printf("    sustained %-16s %8.4f ms a call back to back, %d samples, from %s to %s\n", what, med, n, a, b);
    free(t);
    cudaEventDestroy(ev[0]);
    cudaEventDestroy(ev[1]);
    return med;
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

/* cuBLAS's buffers for an M x N x K product: NSETS sets of random inputs */
static void cublas_setup(cb_call *g, cublasHandle_t h, int64_t M, int64_t N, int64_t K)
{
    *g = (cb_call){.h = h, .M = M, .N = N, .K = K};
    uint16_t *ha = malloc((size_t)(M * K * 2)), *hb = malloc((size_t)(K * N * 2));
    fill(KF_F16, ha, M * K);
    fill(KF_F16, hb, K * N);
    for (int i = 0; i < NSETS; i++) {
        CK(cudaMalloc(&g->a[i], (size_t)(M * K * 2)));
        CK(cudaMalloc(&g->b[i], (size_t)(K * N * 2)));
        CK(cudaMalloc(&g->c[i], (size_t)(M * N * 2)));
        CK(cudaMemcpy(g->a[i], ha, (size_t)(M * K * 2), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(g->b[i], hb, (size_t)(K * N * 2), cudaMemcpyHostToDevice));
    }
    free(ha);
    free(hb);
}

/* A device-to-device copy moving the bytes a graph must move (half read,
 * half written), over NSETS buffer pairs: what streaming those bytes costs
 * at this size, in the same run, beside the limit from a 1 GiB copy. */
typedef struct copy_call {
    size_t n;
    void *src[NSETS], *dst[NSETS];
} copy_call;

static bool call_copy(void *ud, int i)
{
    copy_call *c = ud;
    return cudaMemcpyAsync(c->dst[i], c->src[i], c->n, cudaMemcpyDeviceToDevice, 0) == cudaSuccess;
}

static void copy_setup(copy_call *c, double bytes)
{
    c->n = (size_t)(bytes / 2) & ~(size_t)255;
    for (int i = 0; i < NSETS; i++) {
        CK(cudaMalloc(&c->src[i], c->n));
        CK(cudaMalloc(&c->dst[i], c->n));
        CK(cudaMemset(c->src[i], 1, c->n));
    }
}

static void copy_free(copy_call *c)
{
    for (int i = 0; i < NSETS; i++) {
        cudaFree(c->src[i]);
        cudaFree(c->dst[i]);
    }
}

static void cublas_free(cb_call *g)
{
    for (int i = 0; i < NSETS; i++) {
        cudaFree(g->a[i]);
        cudaFree(g->b[i]);
        cudaFree(g->c[i]);
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
    double t[10];
    for (int i = 0; i < 12; i++) {
        CK(cudaEventRecord(e0, 0));
        CK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 2) t[i - 2] = ms;
    }
    qsort(t, 10, sizeof *t, cmp_d);
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
    CK(cudaMalloc(&flush_buf, FLUSH_BYTES));
    printf("device: %s, %d SMs; device-to-device copy %.2f TB/s (read + write); %d timed runs, medians\n", prop.name,
           prop.multiProcessorCount, bw / 1e12, reps);
    char table[NMODES][64][256];
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
        /* both plans compiled (and tuned) first, then every sample taken in
         * turn with cuBLAS's: see time_round_robin */
        kf_compiled *cc[2] = {NULL, NULL};
        kf_call kc[2];
        char tile[4096] = "";
        for (int v = 0; v < 2; v++) {
            for (int j = 0; j < NSETS; j++) {
                CK(cudaMalloc(&dout[v][j], obytes));
                CK(cudaMemset(dout[v][j], 0xff, obytes)); /* NaN: an element never written shows */
            }
            kf_options o = {.device = KF_DEVICE_CUDA, .no_fusion = v == 1};
            if (!(cc[v] = kf_compile(g, &o))) {
                printf("%s: kf_compile: %s\n", gc->name, kf_errmsg(ctx));
                return 2;
            }
            kc[v] = (kf_call){.c = cc[v], .din = din, .dout = dout[v], .nin = nin};
        }
        const char *src = kf_compiled_source(cc[0]);
        size_t tn = 0;
        for (const char *p = src; (p = strstr(p, "/* kfuse-t")) && tn < sizeof tile - 100;) {
            const char *e = strstr(p, "*/");
            if (!e) break;
            tn += (size_t)snprintf(tile + tn, sizeof tile - tn, "    %.*s\n", (int)(e - p - 3), p + 3);
            p = e;
        }
        const char *note = strstr(kf_compiled_explain(cc[0], 0), "\nnote: ");
        if (note && tn < sizeof tile - 100) snprintf(tile + tn, sizeof tile - tn, "    %s", note + 1);
        cb_call cbc;
        cublas_setup(&cbc, h, gc->m, gc->n, gc->k);
        copy_call cpc = {0};
        if (gc->bytes > 0) copy_setup(&cpc, gc->bytes);
        call_fn fs[4] = {call_kfuse, call_kfuse, call_cublas, call_copy};
        void *uds[4] = {&kc[0], &kc[1], &cbc, &cpc};
        const int nth = gc->bytes > 0 ? 4 : 3; /* the copy only against a bytes limit */
        double med[4][NMODES] = {{0}}; /* [fused, no-fusion, cuBLAS, copy][mode] */
        int trc = time_round_robin(nth, fs, uds, reps, med);
        const char *sus = getenv("KFUSE_BENCH_SUSTAIN");
        if (!trc && sus && atof(sus) > 0) {
            static const char *who[4] = {"kfuse fused", "kfuse no-fusion", "cuBLAS", "copy"};
            printf("\n%s\n", gc->name);
            for (int j = 0; j < nth && !trc; j++)
                if (sustain(fs[j], uds[j], atof(sus), who[j]) < 0) trc = -1;
        }
        if (trc || kf_wait(cc[0]) != KF_OK || kf_wait(cc[1]) != KF_OK) {
            printf("%s: kf_run_device: %s\n", gc->name, kf_errmsg(ctx));
            return 2;
        }
        void *hout[2];
        for (int v = 0; v < 2; v++) {
            hout[v] = malloc(obytes);
            CK(cudaMemcpy(hout[v], dout[v][0], obytes, cudaMemcpyDeviceToHost));
            kf_compiled_free(cc[v]);
        }
        cublas_free(&cbc);
        if (gc->bytes > 0) copy_free(&cpc);
        double err = max_rel_err(hout[0], hout[1], odt, onum);
        printf("\n%s\n%s", gc->name, tile);
        for (int w = 0; w < NMODES; w++) {
            static const char *what[] = {"one call alone", "back to back", "after an L2 flush each (do_bench)"};
            const double fu = med[0][w], nf = med[1][w], cb = med[2][w], cp = med[3][w];
            double tf = 2.0 * (double)gc->m * gc->n * gc->k / (fu * 1e-3) / 1e12;
            printf("  %s:\n", what[w]);
            printf("    kfuse fused      %8.4f ms  %6.1f TFLOP/s\n", fu, tf);
            printf("    kfuse no-fusion  %8.4f ms  (%.2fx fused)\n", nf, nf / fu);
            printf("    cuBLAS mm alone  %8.4f ms  (fused/cuBLAS %.3fx)\n", cb, fu / cb);
            char extra[96] = "";
            if (gc->bytes > 0) {
                double lim = gc->bytes / bw * 1e3;
                printf("    bytes-moved limit %.4f ms (%.1f MB at the copy rate): fused at %.2fx it\n", lim,
                       gc->bytes / 1e6, fu / lim);
                printf("    a copy of as many bytes %.4f ms: fused at %.2fx it\n", cp, fu / cp);
                snprintf(extra, sizeof extra, "  %.2fx bytes limit (target <= 1.3x), %.2fx a copy", fu / lim, fu / cp);
            } else if (gc->target > 0) {
                snprintf(extra, sizeof extra, "  (target <= %.2fx)", gc->target);
            }
            snprintf(table[w][nt], sizeof table[0][0], "%-40s %8.4f %8.4f %8.4f  %6.3fx%s", gc->name, fu, nf,
                     cb, fu / cb, extra);
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
    for (int w = 0; w < NMODES; w++) {
        static const char *head[] = {"one call alone (f16, ms, median)", "back to back (f16, ms, median)",
                                     "L2 flushed, do_bench (f16, ms, median)"};
        printf("\n%-40s %8s %8s %8s  %s\n", head[w], "fused", "no-fus", "cuBLAS", "fused/cuBLAS");
        for (int i = 0; i < nt; i++) printf("%s\n", table[w][i]);
    }
    cublasDestroy(h);
    cudaFree(flush_buf);
    return fails ? 1 : 0;
}
