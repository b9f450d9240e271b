/* Standalone check and benchmark of the CPU GEMM template (templates/cpu/mm.c)
 * outside the code generator: the instance macros are defined here by hand,
 * the way generated code defines them, with gelu(a @ b + bias) as epilogue.
 * Checks odd sizes against a naive reference, then times the fused template
 * against OpenBLAS sgemm plus a separate bias+gelu pass. From the repo root:
 *
 *   cc -O3 -march=native -fopenmp bench/mm_standalone.c -o mm_standalone -lopenblas -lm
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./mm_standalone [reps [shape]]
 *
 * (bench/mm_standalone.sh does this with OpenBLAS's OpenMP build, so both
 * sides share one thread pool.) Add -DNO_BLAS to build without OpenBLAS. */
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef NO_BLAS
#include <cblas.h>
char *openblas_get_corename(void);
#endif

#define KF_RESTRICT __restrict__

/* tanh-form gelu with a rational tanh (Eigen's float approximation). The
 * clamp is arithmetic, not `x < c ? c : x`: GCC jump-threads such selects into
 * branches holding the (trapping) division, and under the default
 * -ftrapping-math it then refuses to vectorise the store loop. */
static inline float kfb_tanh(float x)
{
    const float c = 7.90531110763549805f;
    x = 0.5f * (x + c - fabsf(x - c)); /* min(x, c), to within ulp(c) */
    x = 0.5f * (x - c + fabsf(x + c)); /* max(x, -c) */
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}

static inline float kfb_gelu(float x)
{
    return 0.5f * x * (1.0f + kfb_tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

/* Buffer table of every instance: B[0] = C, B[1] = bias, B[2] = A, B[3] = B. */
static inline void kfb_store_gelu(void **B, int64_t i, int64_t n, float v)
{
    ((float *)B[0])[i] = kfb_gelu(v + ((const float *)B[1])[n]);
}

/* ---- f32 instances: plain operands, gelu(v + bias[n]) epilogue ---- */
#define KF_MM_T float
#define KF_MM_T_IS_DOUBLE 0
#define KF_MM_LOAD_A(B, b, m, k) (((const float *)(B)[2])[((b) * KF_MM_M + (m)) * KF_MM_K + (k)])
#define KF_MM_LOAD_B(B, b, k, n) (((const float *)(B)[3])[((b) * KF_MM_K + (k)) * KF_MM_N + (n)])
#define KF_MM_STORE(B, b, m, n, v) kfb_store_gelu(B, ((b) * KF_MM_M + (m)) * KF_MM_N + (n), n, v)
#define KF_MM_A_PTR(B, b) ((const float *)(B)[2] + (b) * KF_MM_M * KF_MM_K)
#define KF_MM_B_PTR(B, b) ((const float *)(B)[3] + (b) * KF_MM_K * KF_MM_N)

/* Shapes known at run time (the template only needs expressions), for the sweep. */
static int64_t g_nb, g_m, g_n, g_k;
#define KF_MM_FN mm_f32_any
#define KF_MM_BATCH g_nb
#define KF_MM_M g_m
#define KF_MM_N g_n
#define KF_MM_K g_k
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_BATCH
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K

/* Constant shapes, as the code generator emits them. */
#define KF_MM_BATCH 1
#define KF_MM_FN mm_1x1x1
#define KF_MM_M 1
#define KF_MM_N 1
#define KF_MM_K 1
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#define KF_MM_FN mm_17x33x65
#define KF_MM_M 17
#define KF_MM_N 33
#define KF_MM_K 65
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#define KF_MM_FN mm_97x101x103
#define KF_MM_M 97
#define KF_MM_N 101
#define KF_MM_K 103
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#define KF_MM_FN mm_5x7x0
#define KF_MM_M 5
#define KF_MM_N 7
#define KF_MM_K 0
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#define KF_MM_FN mm_1024
#define KF_MM_M 1024
#define KF_MM_N 1024
#define KF_MM_K 1024
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#define KF_MM_FN mm_2048
#define KF_MM_M 2048
#define KF_MM_N 2048
#define KF_MM_K 2048
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#define KF_MM_FN mm_4096x4096x64
#define KF_MM_M 4096
#define KF_MM_N 4096
#define KF_MM_K 64
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#define KF_MM_FN mm_16384x256x256
#define KF_MM_M 16384
#define KF_MM_N 256
#define KF_MM_K 256
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#undef KF_MM_BATCH
#undef KF_MM_LOAD_A
#undef KF_MM_A_PTR
#undef KF_MM_B_PTR

/* ---- f32 with a prologue: A is bf16 bits in a uint16 buffer; B plain but
 * read through KF_MM_LOAD_B (no B_PTR) ---- */
static inline float kfb_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
#define KF_MM_FN mm_bf16a_any
#define KF_MM_BATCH g_nb
#define KF_MM_M g_m
#define KF_MM_N g_n
#define KF_MM_K g_k
#define KF_MM_LOAD_A(B, b, m, k) kfb_bf16(((const uint16_t *)(B)[2])[((b) * KF_MM_M + (m)) * KF_MM_K + (k)])
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_BATCH
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#undef KF_MM_T
#undef KF_MM_T_IS_DOUBLE
#undef KF_MM_LOAD_A
#undef KF_MM_LOAD_B
#undef KF_MM_STORE

/* ---- f64: loaders only, C = v + bias[n] ---- */
#define KF_MM_T double
#define KF_MM_T_IS_DOUBLE 1
#define KF_MM_FN mm_f64_any
#define KF_MM_BATCH g_nb
#define KF_MM_M g_m
#define KF_MM_N g_n
#define KF_MM_K g_k
#define KF_MM_LOAD_A(B, b, m, k) (((const double *)(B)[2])[((b) * KF_MM_M + (m)) * KF_MM_K + (k)])
#define KF_MM_LOAD_B(B, b, k, n) (((const double *)(B)[3])[((b) * KF_MM_K + (k)) * KF_MM_N + (n)])
#define KF_MM_STORE(B, b, m, n, v) \
    (((double *)(B)[0])[((b) * KF_MM_M + (m)) * KF_MM_N + (n)] = (v) + ((const double *)(B)[1])[n])
#include "../templates/cpu/mm.c"
#undef KF_MM_FN
#undef KF_MM_BATCH
#undef KF_MM_M
#undef KF_MM_N
#undef KF_MM_K
#undef KF_MM_T
#undef KF_MM_T_IS_DOUBLE
#undef KF_MM_LOAD_A
#undef KF_MM_LOAD_B
#undef KF_MM_STORE

static double now(void) { return omp_get_wtime(); }

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffff) / 32768.0f - 1.0f;
}

/* Kind of instance under test; the reference applies the same epilogue. */
enum { F32, BF16A, F64 };

/* Runs fn on a random problem and compares with a naive double reference.
 * The output starts as NaN so a missed store shows. */
static int check(const char *name, void (*fn)(void **), int kind, int64_t nb, int64_t m, int64_t n, int64_t k)
{
    const size_t es = kind == F64 ? 8 : 4, na = nb * m * k, nbb = nb * k * n, nc = nb * m * n;
    double *ad = xalloc((na + 1) * 8), *bd = xalloc((nbb + 1) * 8), *bias = xalloc(n * 8 + 8);
    void *a = xalloc(na * es + 8), *bm = xalloc(nbb * es + 8), *c = xalloc(nc * es + 8), *bi = xalloc(n * es + 8);
    for (size_t i = 0; i < na; i++) {
        float v = frand();
        if (kind == BF16A) {
            uint32_t u;
            memcpy(&u, &v, 4);
            ((uint16_t *)a)[i] = (uint16_t)(u >> 16);
            ad[i] = kfb_bf16((uint16_t)(u >> 16));
        } else if (kind == F64) {
            ((double *)a)[i] = ad[i] = v;
        } else {
            ((float *)a)[i] = ad[i] = v;
        }
    }
    for (size_t i = 0; i < nbb; i++) {
        float v = frand();
        bd[i] = v;
        if (kind == F64)
            ((double *)bm)[i] = v;
        else
            ((float *)bm)[i] = v;
    }
    for (int64_t i = 0; i < n; i++) {
        bias[i] = frand();
        if (kind == F64)
            ((double *)bi)[i] = bias[i];
        else
            ((float *)bi)[i] = (float)bias[i];
    }
    for (size_t i = 0; i < nc; i++) {
        if (kind == F64)
            ((double *)c)[i] = NAN;
        else
            ((float *)c)[i] = NAN;
    }
    g_nb = nb, g_m = m, g_n = n, g_k = k;
    void *bufs[4] = {c, bi, a, bm};
    fn(bufs);
    double maxerr = 0;
    int bad = 0;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += ad[(b * m + i) * k + p] * bd[(b * k + p) * n + j];
                const size_t at = (b * m + i) * n + j;
                double ref, got;
                if (kind == F64) {
                    ref = s + bias[j], got = ((double *)c)[at];
                } else {
                    ref = kfb_gelu((float)(s + (float)bias[j])), got = ((float *)c)[at];
                }
                const double tol = (kind == F64 ? 1e-12 : 2e-6) * (k + 4);
                const double err = fabs(got - ref);
                if (!(err <= tol)) /* also catches NaN */
                    bad++;
                if (err > maxerr || err != err)
                    maxerr = err;
            }
    printf("  %-14s b=%-3lld %5lld x %5lld x %5lld  max err %.2e  %s\n", name, (long long)nb, (long long)m,
           (long long)n, (long long)k, maxerr, bad ? "FAIL" : "ok");
    free(ad), free(bd), free(bias), free(a), free(bm), free(c), free(bi);
    return bad != 0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double median(double *t, int n)
{
    qsort(t, n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

#define MAXREPS 64

static const char *only; /* argv[2]: bench only shapes whose name contains it */

static void bench(const char *name, void (*fn)(void **), int64_t m, int64_t n, int64_t k, int reps)
{
    if (only && !strstr(name, only))
        return;
    float *a = xalloc(m * k * 4), *b = xalloc(k * n * 4), *bias = xalloc(n * 4);
    float *c = xalloc(m * n * 4), *c2 = xalloc(m * n * 4);
    for (int64_t i = 0; i < m * k; i++)
        a[i] = frand();
    for (int64_t i = 0; i < k * n; i++)
        b[i] = frand();
    for (int64_t i = 0; i < n; i++)
        bias[i] = frand();
    void *bufs[4] = {c, bias, a, b};
    const double gf = 2.0 * m * n * k * 1e-9;
    double tk[MAXREPS], tb[MAXREPS], tg[MAXREPS];
    for (int r = -2; r < reps; r++) {
        double t0 = now();
        fn(bufs);
        double t1 = now();
#ifndef NO_BLAS
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)n,
                    0.0f, c2, (int)n);
        double t2 = now();
#pragma omp parallel for
        for (int64_t i = 0; i < m; i++) {
#pragma omp simd
            for (int64_t j = 0; j < n; j++)
                c2[i * n + j] = kfb_gelu(c2[i * n + j] + bias[j]);
        }
        double t3 = now();
#else
        double t2 = t1, t3 = t1;
#endif
        if (r >= 0)
            tk[r] = t1 - t0, tb[r] = t2 - t1, tg[r] = t3 - t1;
    }
    double err = 0;
#ifndef NO_BLAS
    for (int64_t i = 0; i < m * n; i++)
        err = fmax(err, fabs(c[i] - c2[i]));
#endif
    const double k_ = median(tk, reps), b_ = median(tb, reps), g_ = median(tg, reps);
    printf("  %-17s kfuse %7.1f GF/s | openblas sgemm %7.1f, +gelu %7.1f GF/s | kfuse/sgemm %4.2f "
           "kfuse/(sgemm+gelu) %4.2f | diff %.1e\n",
           name, gf / k_, gf / b_, gf / g_, b_ / k_, g_ / k_, err);
    free(a), free(b), free(bias), free(c), free(c2);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    reps = reps < 1 ? 1 : reps > MAXREPS ? MAXREPS : reps;
    only = argc > 2 ? argv[2] : NULL;
    int bad = 0;
    printf("checks (%d threads):\n", omp_get_max_threads());
    bad += check("1x1x1", mm_1x1x1, F32, 1, 1, 1, 1);
    bad += check("17x33x65", mm_17x33x65, F32, 1, 17, 33, 65);
    bad += check("97x101x103", mm_97x101x103, F32, 1, 97, 101, 103);
    bad += check("5x7x0", mm_5x7x0, F32, 1, 5, 7, 0);
    static const int64_t shapes[][4] = {
        {1, 1, 1, 1},     {1, 1, 1, 0},     {1, 0, 5, 3},       {1, 6, 16, 1},     {1, 7, 17, 257},
        {1, 64, 64, 64},  {1, 13, 997, 31}, {1, 997, 13, 300},  {1, 300, 200, 1000}, {3, 33, 29, 300},
        {4, 50, 70, 90},  {5, 61, 67, 513}, {1, 1023, 17, 1023}, {1, 2, 3000, 700}, {2, 130, 1500, 2000},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int64_t *s = shapes[i];
        bad += check("f32", mm_f32_any, F32, s[0], s[1], s[2], s[3]);
        bad += check("f32 bf16-A", mm_bf16a_any, BF16A, s[0], s[1], s[2], s[3]);
        bad += check("f64", mm_f64_any, F64, s[0], s[1], s[2], s[3]);
    }
    const int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    bad += check("f32 1 thread", mm_f32_any, F32, 2, 300, 200, 1000);
    omp_set_num_threads(nt);
    if (bad) {
        printf("%d FAILED\n", bad);
        return 1;
    }
#ifndef NO_BLAS
    printf("openblas core: %s\n", openblas_get_corename());
#endif
    printf("gelu(a @ b + bias), f32, median of %d:\n", reps);
    bench("1024^3", mm_1024, 1024, 1024, 1024, reps);
    bench("2048^3", mm_2048, 2048, 2048, 2048, reps);
    bench("4096x4096x64", mm_4096x4096x64, 4096, 4096, 64, reps);
    bench("16384x256x256", mm_16384x256x256, 16384, 256, 256, reps);
    return 0;
}
