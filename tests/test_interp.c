/*
 * test_interp.c - the reference interpreter against hand-computed results.
 * Everything else is tested against the interpreter, so this file checks it
 * by hand: graphs built through the public API, results written out.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse.h"
#include "kft.h"

static int failures;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            printf("%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
            failures++;                                                         \
        }                                                                       \
    } while (0)

#define NOTNULL(x)                                                              \
    do {                                                                        \
        if (!(x)) {                                                             \
            printf("%s:%d: %s: %s is NULL: %s\n", __FILE__, __LINE__, __func__, #x, \
                   kf_errmsg(ctx));                                             \
            failures++;                                                         \
            goto out;                                                           \
        }                                                                       \
    } while (0)

/* Runs g and reports a failure with the context's message. */
static int interp(kf_graph *g, const void *const *in, void *const *out, const char *what)
{
    kf_status st = kf_interpret(g, in, out);
    if (st != KF_OK) {
        printf("%s: kf_interpret failed (%d): %s\n", what, (int)st,
               kf_errmsg(kf_graph_ctx(g)));
        failures++;
        return -1;
    }
    return 0;
}

/* Compares n elements of dtype t and reports which output differed. */
static void expect(const char *what, kf_dtype t, const void *got, const void *want,
                   int64_t n, double rtol, double atol)
{
    char why[512];
    if (kft_compare(t, got, want, n, rtol, atol, why, sizeof why)) {
        printf("%s: %s\n", what, why);
        failures++;
    }
}

static void expect_shape(const char *what, const kf_node *n, int ndim, const int64_t *shape)
{
    int ok = kf_node_ndim(n) == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = kf_node_shape(n)[i] == shape[i];
    if (!ok) {
        printf("%s: wrong shape (rank %d)\n", what, kf_node_ndim(n));
        failures++;
    }
}

static kf_node *slice(kf_graph *g, kf_node *x, int64_t axis, int64_t start, int64_t end,
                      int64_t step)
{
    kf_attrs a = {0};
    a.naxes = 1;
    a.axes[0] = axis;
    a.start = start;
    a.end = end;
    a.step = step;
    return kf_apply(g, "slice", 1, &x, &a);
}

static kf_node *reduce(kf_graph *g, const char *op, kf_node *x, int naxes,
                       const int64_t *axes, int keepdims)
{
    kf_attrs a = {0};
    a.naxes = naxes;
    for (int i = 0; i < naxes; i++) a.axes[i] = axes[i];
    a.keepdims = keepdims;
    return kf_apply(g, op, 1, &x, &a);
}

/* ---- the tests ---- */

static void test_broadcast_add(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_F32, 2, (int64_t[]){2, 3});
    kf_node *b = kf_input(g, "b", KF_F32, 1, (int64_t[]){3});
    kf_node *c = kf_input(g, "c", KF_F32, 2, (int64_t[]){2, 1});
    kf_node *y = kf_binary(g, "add", kf_binary(g, "add", a, b), c);
    kf_node *z = kf_binary(g, "add", b, kf_scalar(g, 0.5, KF_F64)); /* literal adopts f32 */
    NOTNULL(y);
    NOTNULL(z);
    expect_shape("broadcast add", y, 2, (int64_t[]){2, 3});
    CHECK(kf_node_dtype(z) == KF_F32);
    CHECK(kf_output(g, y) == 0 && kf_output(g, z) == 0);
    float A[] = {1, 2, 3, 4, 5, 6}, B[] = {10, 20, 30}, C[] = {100, 200}, Y[6], Z[3];
    float WY[] = {111, 122, 133, 214, 225, 236}, WZ[] = {10.5f, 20.5f, 30.5f};
    if (interp(g, (const void *[]){A, B, C}, (void *[]){Y, Z}, __func__)) goto out;
    expect("broadcast add", KF_F32, Y, WY, 6, 0, 0);
    expect("add literal", KF_F32, Z, WZ, 3, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_int_div(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_I32, 1, (int64_t[]){7});
    kf_node *b = kf_input(g, "b", KF_I32, 1, (int64_t[]){7});
    kf_node *y = kf_binary(g, "div", a, b);
    kf_node *p = kf_input(g, "p", KF_I8, 1, (int64_t[]){2});
    kf_node *q = kf_binary(g, "add", p, p); /* i8 arithmetic wraps */
    NOTNULL(y);
    NOTNULL(q);
    CHECK(kf_output(g, y) == 0 && kf_output(g, q) == 0);
    int32_t A[] = {7, -7, 5, 3, 0, INT32_MIN, -1}, B[] = {2, 2, 0, -2, 0, -1, 3}, Y[7];
    int32_t W[] = {3, -3, 0, -1, 0, INT32_MIN, 0};
    int8_t P[] = {100, -100}, Q[2], WQ[] = {-56, 56};
    if (interp(g, (const void *[]){A, B, P}, (void *[]){Y, Q}, __func__)) goto out;
    expect("int div", KF_I32, Y, W, 7, 0, 0);
    expect("i8 add wraps", KF_I8, Q, WQ, 2, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_f16_intermediate(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    /* (a + b) - a: in f16, a + b is rounded before the subtraction */
    kf_node *a = kf_input(g, "a", KF_F16, 1, (int64_t[]){5});
    kf_node *b = kf_input(g, "b", KF_F16, 1, (int64_t[]){5});
    kf_node *d = kf_binary(g, "sub", kf_binary(g, "add", a, b), a);
    /* the same in f32 keeps b exactly */
    kf_node *a32 = kf_cast(g, a, KF_F32), *b32 = kf_cast(g, b, KF_F32);
    kf_node *d32 = kf_binary(g, "sub", kf_binary(g, "add", a32, b32), a32);
    /* f32 -> f16 -> f32 */
    kf_node *x = kf_input(g, "x", KF_F32, 1, (int64_t[]){3});
    kf_node *r = kf_cast(g, kf_cast(g, x, KF_F16), KF_F32);
    NOTNULL(d);
    NOTNULL(d32);
    NOTNULL(r);
    CHECK(kf_node_dtype(d) == KF_F16);
    CHECK(kf_output(g, d) == 0 && kf_output(g, d32) == 0 && kf_output(g, r) == 0);
    float av[] = {1, 2048, 65504, 1, 1}, bv[] = {0x1p-11f, 1, 16, 3 * 0x1p-11f, 0x1p-10f};
    uint16_t A[5], B[5], D[5], WD[5];
    for (int i = 0; i < 5; i++) {
        A[i] = kft_f32_to_f16(av[i]);
        B[i] = kft_f32_to_f16(bv[i]);
    }
    /* 1 + 2^-11 ties to 1; 2049 ties to 2048; 65520 overflows;
     * 1 + 3*2^-11 ties up to 1 + 2^-9; 1 + 2^-10 is exact */
    float wd[] = {0, 0, INFINITY, 0x1p-9f, 0x1p-10f};
    for (int i = 0; i < 5; i++) WD[i] = kft_f32_to_f16(wd[i]);
    float D32[5], X[] = {0.1f, 1e-7f, -70000.f}, R[3];
    float WR[] = {0.0999755859375f, 1.1920928955078125e-07f, -INFINITY};
    if (interp(g, (const void *[]){A, B, X}, (void *[]){D, D32, R}, __func__)) goto out;
    expect("f16 intermediate", KF_F16, D, WD, 5, 0, 0);
    expect("f32 intermediate", KF_F32, D32, bv, 5, 0, 0);
    expect("f32->f16->f32", KF_F32, R, WR, 3, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_transpose(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F32, 2, (int64_t[]){2, 3});
    kf_node *t = kf_unary(g, "transpose", x);
    kf_node *x3 = kf_input(g, "x3", KF_F32, 3, (int64_t[]){2, 3, 4});
    kf_attrs at = {0};
    at.nperm = 3;
    at.perm[0] = 1;
    at.perm[1] = 2;
    at.perm[2] = 0;
    kf_node *t3 = kf_apply(g, "transpose", 1, &x3, &at);
    NOTNULL(t);
    NOTNULL(t3);
    expect_shape("transpose", t, 2, (int64_t[]){3, 2});
    expect_shape("transpose3", t3, 3, (int64_t[]){3, 4, 2});
    CHECK(kf_output(g, t) == 0 && kf_output(g, t3) == 0);
    float X[] = {0, 1, 2, 3, 4, 5}, T[6], WT[] = {0, 3, 1, 4, 2, 5};
    float X3[24], T3[24], WT3[24];
    for (int i = 0; i < 24; i++) X3[i] = (float)i;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 2; k++) WT3[(i * 4 + j) * 2 + k] = (float)(k * 12 + i * 4 + j);
    if (interp(g, (const void *[]){X, X3}, (void *[]){T, T3}, __func__)) goto out;
    expect("transpose", KF_F32, T, WT, 6, 0, 0);
    expect("transpose perm 1,2,0", KF_F32, T3, WT3, 24, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_slice(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_I32, 2, (int64_t[]){2, 5});
    kf_node *s1 = slice(g, x, 1, 3, 0, -2);            /* x[:, 3:0:-2] */
    kf_node *s2 = slice(g, x, -1, -1, INT64_MIN, -1);  /* x[:, ::-1] */
    kf_node *s3 = slice(g, x, 1, 1, INT64_MAX, 2);     /* x[:, 1::2] */
    kf_node *s4 = slice(g, x, 0, -1, INT64_MAX, 1);    /* x[-1:] */
    NOTNULL(s1);
    NOTNULL(s2);
    NOTNULL(s3);
    NOTNULL(s4);
    expect_shape("slice 3:0:-2", s1, 2, (int64_t[]){2, 2});
    expect_shape("slice ::-1", s2, 2, (int64_t[]){2, 5});
    expect_shape("slice 1::2", s3, 2, (int64_t[]){2, 2});
    expect_shape("slice -1:", s4, 2, (int64_t[]){1, 5});
    CHECK(kf_output(g, s1) == 0 && kf_output(g, s2) == 0 && kf_output(g, s3) == 0 &&
          kf_output(g, s4) == 0);
    int32_t X[10], S1[4], S2[10], S3[4], S4[5];
    for (int i = 0; i < 10; i++) X[i] = i;
    int32_t W1[] = {3, 1, 8, 6}, W2[] = {4, 3, 2, 1, 0, 9, 8, 7, 6, 5}, W3[] = {1, 3, 6, 8};
    int32_t W4[] = {5, 6, 7, 8, 9};
    if (interp(g, (const void *[]){X}, (void *[]){S1, S2, S3, S4}, __func__)) goto out;
    expect("slice 3:0:-2", KF_I32, S1, W1, 4, 0, 0);
    expect("slice ::-1", KF_I32, S2, W2, 10, 0, 0);
    expect("slice 1::2", KF_I32, S3, W3, 4, 0, 0);
    expect("slice -1:", KF_I32, S4, W4, 5, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_expand(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F64, 2, (int64_t[]){3, 1});
    kf_attrs a = {0};
    a.nshape = 3;
    a.shape[0] = 2;
    a.shape[1] = 3;
    a.shape[2] = 4;
    kf_node *e = kf_apply(g, "expand", 1, &x, &a);
    NOTNULL(e);
    expect_shape("expand", e, 3, (int64_t[]){2, 3, 4});
    CHECK(kf_output(g, e) == 0);
    double X[] = {1, 2, 3}, E[24], W[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) W[(i * 3 + j) * 4 + k] = X[j];
    if (interp(g, (const void *[]){X}, (void *[]){E}, __func__)) goto out;
    expect("expand", KF_F64, E, W, 24, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_concat(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_F32, 2, (int64_t[]){2, 1});
    kf_node *b = kf_input(g, "b", KF_F32, 2, (int64_t[]){2, 2});
    kf_attrs at = {0};
    at.naxes = 1;
    at.axes[0] = 1;
    kf_node *c1 = kf_apply(g, "concat", 2, (kf_node *[]){a, b}, &at);
    at.axes[0] = 0;
    kf_node *c0 = kf_apply(g, "concat", 3, (kf_node *[]){b, b, b}, &at);
    NOTNULL(c1);
    NOTNULL(c0);
    expect_shape("concat axis 1", c1, 2, (int64_t[]){2, 3});
    expect_shape("concat axis 0", c0, 2, (int64_t[]){6, 2});
    CHECK(kf_output(g, c1) == 0 && kf_output(g, c0) == 0);
    float A[] = {1, 2}, B[] = {3, 4, 5, 6}, C1[6], C0[12];
    float W1[] = {1, 3, 4, 2, 5, 6}, W0[] = {3, 4, 5, 6, 3, 4, 5, 6, 3, 4, 5, 6};
    if (interp(g, (const void *[]){A, B}, (void *[]){C1, C0}, __func__)) goto out;
    expect("concat axis 1", KF_F32, C1, W1, 6, 0, 0);
    expect("concat axis 0", KF_F32, C0, W0, 12, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_reduce(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F32, 2, (int64_t[]){2, 3});
    kf_node *x3 = kf_input(g, "x3", KF_F32, 3, (int64_t[]){2, 2, 2});
    kf_node *xi = kf_input(g, "xi", KF_I32, 1, (int64_t[]){2});
    kf_node *xn = kf_input(g, "xn", KF_F32, 1, (int64_t[]){3});
    kf_node *r[9];
    r[0] = reduce(g, "sum", x, 1, (int64_t[]){1}, 0);
    r[1] = reduce(g, "sum", x, 1, (int64_t[]){1}, 1);
    r[2] = reduce(g, "sum", x, 0, NULL, 0);
    r[3] = reduce(g, "max", x, 1, (int64_t[]){0}, 0);
    r[4] = reduce(g, "min", x, 2, (int64_t[]){0, 1}, 1);
    r[5] = reduce(g, "mean", x, 1, (int64_t[]){-1}, 0);
    r[6] = reduce(g, "max", x3, 2, (int64_t[]){2, 0}, 0);
    r[7] = reduce(g, "mean", xi, 0, NULL, 1);
    r[8] = reduce(g, "max", xn, 0, NULL, 0);
    for (int i = 0; i < 9; i++) {
        NOTNULL(r[i]);
        CHECK(kf_output(g, r[i]) == 0);
    }
    expect_shape("sum axis 1", r[0], 1, (int64_t[]){2});
    expect_shape("sum axis 1 keepdims", r[1], 2, (int64_t[]){2, 1});
    expect_shape("sum all", r[2], 0, NULL);
    expect_shape("max axis 0", r[3], 1, (int64_t[]){3});
    expect_shape("min all keepdims", r[4], 2, (int64_t[]){1, 1});
    expect_shape("max axes 0,2", r[6], 1, (int64_t[]){2});
    expect_shape("i32 mean keepdims", r[7], 1, (int64_t[]){1});
    float X[] = {1, 2, 3, 4, 5, 6}, X3[8], XN[] = {1, NAN, 3};
    for (int i = 0; i < 8; i++) X3[i] = (float)((i * 5) % 8); /* 0 5 2 7 4 1 6 3 */
    int32_t XI[] = {1, 2};
    float R0[2], R1[2], R2[1], R3[3], R4[1], R5[2], R6[2], R8[1];
    int32_t R7[1];
    float W0[] = {6, 15}, W2[] = {21}, W3[] = {4, 5, 6}, W4[] = {1}, W5[] = {2, 5};
    /* x3[i][j][k] = X3[4i + 2j + k]: j=0 -> {0,5,4,1}, j=1 -> {2,7,6,3} */
    float W6[] = {5, 7}, W8[] = {NAN};
    int32_t W7[] = {1}; /* 1.5 truncates */
    if (interp(g, (const void *[]){X, X3, XI, XN},
               (void *[]){R0, R1, R2, R3, R4, R5, R6, R7, R8}, __func__))
        goto out;
    expect("sum axis 1", KF_F32, R0, W0, 2, 0, 0);
    expect("sum axis 1 keepdims", KF_F32, R1, W0, 2, 0, 0);
    expect("sum all", KF_F32, R2, W2, 1, 0, 0);
    expect("max axis 0", KF_F32, R3, W3, 3, 0, 0);
    expect("min all keepdims", KF_F32, R4, W4, 1, 0, 0);
    expect("mean axis -1", KF_F32, R5, W5, 2, 0, 0);
    expect("max axes 2,0", KF_F32, R6, W6, 2, 0, 0);
    expect("i32 mean", KF_I32, R7, W7, 1, 0, 0);
    expect("max propagates NaN", KF_F32, R8, W8, 1, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_matmul(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_F64, 4, (int64_t[]){2, 1, 2, 3});
    kf_node *b = kf_input(g, "b", KF_F64, 3, (int64_t[]){3, 3, 2});
    kf_node *p = kf_input(g, "p", KF_F32, 2, (int64_t[]){2, 2});
    kf_node *q = kf_input(g, "q", KF_F32, 2, (int64_t[]){2, 2});
    kf_node *v = kf_input(g, "v", KF_F32, 1, (int64_t[]){2});
    kf_node *c = kf_matmul(g, a, b);
    kf_node *pq = kf_matmul(g, p, q);
    kf_node *vq = kf_matmul(g, v, q);
    NOTNULL(c);
    NOTNULL(pq);
    NOTNULL(vq);
    expect_shape("batched matmul", c, 4, (int64_t[]){2, 3, 2, 2});
    expect_shape("vector @ matrix", vq, 1, (int64_t[]){2});
    CHECK(kf_output(g, c) == 0 && kf_output(g, pq) == 0 && kf_output(g, vq) == 0);
    double A[12], B[18], C[24], WC[24];
    for (int i = 0; i < 12; i++) A[i] = i + 1;
    for (int i = 0; i < 18; i++) B[i] = (i % 5) - 2;
    /* C[s][t] = A[s][0] @ B[t]: A is [2,1,2,3], B is [3,3,2] */
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 3; t++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    double acc = 0;
                    for (int k = 0; k < 3; k++) acc += A[s * 6 + i * 3 + k] * B[t * 6 + k * 2 + j];
                    WC[((s * 3 + t) * 2 + i) * 2 + j] = acc;
                }
    float P[] = {1, 2, 3, 4}, Q[] = {5, 6, 7, 8}, V[] = {1, 1}, PQ[4], VQ[2];
    float WPQ[] = {19, 22, 43, 50}, WVQ[] = {12, 14};
    if (interp(g, (const void *[]){A, B, P, Q, V}, (void *[]){C, PQ, VQ}, __func__)) goto out;
    expect("batched matmul", KF_F64, C, WC, 24, 0, 0);
    expect("2x2 matmul", KF_F32, PQ, WPQ, 4, 0, 0);
    expect("vector @ matrix", KF_F32, VQ, WVQ, 2, 0, 0);
    /* spot-check the oracle loop itself: C[1][2][1][0] = [10,11,12] . B[2][:,0] */
    CHECK(WC[((1 * 3 + 2) * 2 + 1) * 2 + 0] == 10 * B[12] + 11 * B[14] + 12 * B[16]);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_softmax(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F32, 2, (int64_t[]){3, 4});
    kf_node *y = kf_unary(g, "softmax", x);
    NOTNULL(y);
    expect_shape("softmax", y, 2, (int64_t[]){3, 4});
    CHECK(kf_output(g, y) == 0);
    float l3 = (float)log(3.0);
    float X[] = {1, 2, 3, 4, 0, l3, 0, l3, 1000, 1000, -1000, 1000}, Y[12];
    float W[12];
    double s = exp(-3.0) + exp(-2.0) + exp(-1.0) + 1;
    for (int j = 0; j < 4; j++) W[j] = (float)(exp(j - 3.0) / s);
    W[4] = W[6] = 0.125f;
    W[5] = W[7] = 0.375f;
    W[8] = W[9] = W[11] = 1.0f / 3;
    W[10] = 0;
    if (interp(g, (const void *[]){X}, (void *[]){Y}, __func__)) goto out;
    expect("softmax", KF_F32, Y, W, 12, 1e-6, 1e-7);
    for (int r = 0; r < 3; r++) {
        double sum = 0;
        for (int j = 0; j < 4; j++) sum += Y[r * 4 + j];
        if (fabs(sum - 1) > 1e-6) {
            printf("softmax: row %d sums to %.9g\n", r, sum);
            failures++;
        }
    }
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_layer_norm(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F64, 2, (int64_t[]){2, 4});
    kf_node *w = kf_input(g, "w", KF_F64, 1, (int64_t[]){4});
    kf_node *b = kf_input(g, "b", KF_F64, 1, (int64_t[]){4});
    kf_node *res[3] = {0};
    CHECK(kf_op_nresults("layer_norm") == 3);
    kf_attrs at = {0}; /* axis -1, eps 1e-5 */
    CHECK(kf_apply_multi(g, "layer_norm", 3, (kf_node *[]){x, w, b}, &at, res) == 0);
    NOTNULL(res[0]);
    NOTNULL(res[1]);
    NOTNULL(res[2]);
    expect_shape("layer_norm y", res[0], 2, (int64_t[]){2, 4});
    expect_shape("layer_norm mean", res[1], 2, (int64_t[]){2, 1});
    expect_shape("layer_norm rstd", res[2], 2, (int64_t[]){2, 1});
    for (int i = 0; i < 3; i++) CHECK(kf_output(g, res[i]) == 0);
    double X[] = {1, 2, 3, 4, -1, 0, 0, 1}, W[] = {1, 2, 0.5, -1}, B[] = {0, 1, 0, 0.5};
    double Y[8], M[2], R[2];
    /* row 0: mean 2.5, variance (2.25+0.25+0.25+2.25)/4 = 1.25;
     * row 1: mean 0, variance 0.5 */
    double WM[] = {2.5, 0}, WR[] = {1 / sqrt(1.25 + 1e-5), 1 / sqrt(0.5 + 1e-5)}, WY[8];
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 4; j++) WY[r * 4 + j] = (X[r * 4 + j] - WM[r]) * WR[r] * W[j] + B[j];
    if (interp(g, (const void *[]){X, W, B}, (void *[]){Y, M, R}, __func__)) goto out;
    expect("layer_norm y", KF_F64, Y, WY, 8, 1e-12, 1e-14);
    expect("layer_norm mean", KF_F64, M, WM, 2, 1e-12, 1e-14);
    expect("layer_norm rstd", KF_F64, R, WR, 2, 1e-12, 1e-14);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_cast(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *x = kf_input(g, "x", KF_F32, 1, (int64_t[]){8});
    kf_node *y = kf_input(g, "y", KF_F32, 1, (int64_t[]){5});
    kf_node *z = kf_input(g, "z", KF_F32, 1, (int64_t[]){4});
    kf_node *ci = kf_cast(g, x, KF_I32);
    kf_node *c8 = kf_cast(g, y, KF_I8);
    kf_node *cu = kf_cast(g, y, KF_U8);
    kf_node *cb = kf_cast(g, z, KF_BOOL);
    kf_node *cbf = kf_cast(g, z, KF_BF16);
    NOTNULL(ci);
    NOTNULL(c8);
    NOTNULL(cu);
    NOTNULL(cb);
    NOTNULL(cbf);
    CHECK(kf_node_dtype(c8) == KF_I8);
    CHECK(kf_output(g, ci) == 0 && kf_output(g, c8) == 0 && kf_output(g, cu) == 0 &&
          kf_output(g, cb) == 0 && kf_output(g, cbf) == 0);
    float X[] = {2.7f, -2.7f, 0.5f, -0.5f, 1e10f, NAN, INFINITY, -3.99f};
    float Y[] = {300, -200, 127.9f, -129, 1000};
    float Z[] = {0, 0.5f, -0.0f, NAN};
    int32_t CI[8], WI[] = {2, -2, 0, 0, 1410065408, 0, 0, -3};
    int8_t C8[5], W8[] = {44, 56, 127, 127, -24};
    uint8_t CU[5], WU[] = {44, 56, 127, 127, 232}, CB[4], WB[] = {0, 1, 0, 1};
    uint16_t CBF[4], WBF[4];
    for (int i = 0; i < 4; i++) WBF[i] = kft_f32_to_bf16(Z[i]);
    if (interp(g, (const void *[]){X, Y, Z}, (void *[]){CI, C8, CU, CB, CBF}, __func__)) goto out;
    expect("cast f32->i32", KF_I32, CI, WI, 8, 0, 0);
    expect("cast f32->i8 (300 -> 44)", KF_I8, C8, W8, 5, 0, 0);
    expect("cast f32->u8", KF_U8, CU, WU, 5, 0, 0);
    expect("cast f32->bool", KF_BOOL, CB, WB, 4, 0, 0);
    expect("cast f32->bf16", KF_BF16, CBF, WBF, 4, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

static void test_where_compare(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_F32, 1, (int64_t[]){4});
    kf_node *b = kf_input(g, "b", KF_F32, 1, (int64_t[]){4});
    kf_node *gt = kf_binary(g, "gt", a, b);
    kf_node *w = kf_apply(g, "where", 3, (kf_node *[]){gt, a, kf_scalar(g, -1, KF_F64)}, NULL);
    kf_node *mx = kf_binary(g, "maximum", a, b);
    NOTNULL(w);
    NOTNULL(mx);
    CHECK(kf_node_dtype(gt) == KF_BOOL);
    CHECK(kf_output(g, gt) == 0 && kf_output(g, w) == 0 && kf_output(g, mx) == 0);
    float A[] = {1, 5, NAN, 2}, B[] = {2, 3, 1, 2}, W[4], MX[4];
    uint8_t GT[4], WGT[] = {0, 1, 0, 0};
    float WW[] = {-1, 5, -1, -1}, WMX[] = {2, 5, NAN, 2};
    if (interp(g, (const void *[]){A, B}, (void *[]){GT, W, MX}, __func__)) goto out;
    expect("gt", KF_BOOL, GT, WGT, 4, 0, 0);
    expect("where", KF_F32, W, WW, 4, 0, 0);
    expect("maximum propagates NaN", KF_F32, MX, WMX, 4, 0, 0);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

/* The interpreter's 16-bit conversions (on doubles) against kft's (on f32
 * bits): every f16 pattern round-trips, and random f32 values round alike. */
static void test_half_formats(void)
{
    enum { NR = 1 << 16 };
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    uint16_t *H = malloc(sizeof *H * NR), *HO = malloc(sizeof *H * NR);
    uint16_t *F16 = malloc(sizeof *H * NR), *BF = malloc(sizeof *H * NR);
    float *R = malloc(sizeof *R * NR), *HF = malloc(sizeof *HF * NR);
    kf_node *h = kf_input(g, "h", KF_F16, 1, (int64_t[]){NR});
    kf_node *r = kf_input(g, "r", KF_F32, 1, (int64_t[]){NR});
    NOTNULL(H && HO && F16 && BF && R && HF);
    NOTNULL(h);
    NOTNULL(r);
    kf_node *hf = kf_cast(g, h, KF_F32);
    CHECK(kf_output(g, h) == 0 && kf_output(g, kf_cast(g, r, KF_F16)) == 0 &&
          kf_output(g, kf_cast(g, r, KF_BF16)) == 0 && kf_output(g, hf) == 0);
    uint64_t seed = 42;
    for (int i = 0; i < NR; i++) {
        H[i] = (uint16_t)i;
        uint32_t u = (uint32_t)kft_rand_u64(&seed);
        /* mostly values near f16's range, some anything at all */
        if (i % 4) u = (u & 0x87ffffff) | ((uint32_t)(100 + i % 50) << 23);
        memcpy(&R[i], &u, sizeof u);
    }
    if (interp(g, (const void *[]){H, R}, (void *[]){HO, F16, BF, HF}, __func__)) goto out;
    int bad = 0;
    for (int i = 0; i < NR && bad < 5; i++) {
        float want = kft_f16_to_f32(H[i]);
        int nan = isnan(want);
        if (nan ? !(isnan(HF[i]) && ((HO[i] & 0x7c00) == 0x7c00) && (HO[i] & 0x3ff))
                : (HO[i] != H[i] || memcmp(&HF[i], &want, sizeof want) != 0)) {
            printf("f16 pattern 0x%04x: copied 0x%04x, as f32 %.9g (want %.9g)\n", H[i], HO[i],
                   HF[i], want);
            bad++;
        }
        uint16_t w16 = kft_f32_to_f16(R[i]), wbf = kft_f32_to_bf16(R[i]);
        if (isnan(R[i]) ? !((F16[i] & 0x7c00) == 0x7c00 && (F16[i] & 0x3ff)) : F16[i] != w16) {
            printf("f32 %.9g -> f16: got 0x%04x want 0x%04x\n", R[i], F16[i], w16);
            bad++;
        }
        if (isnan(R[i]) ? !((BF[i] & 0x7f80) == 0x7f80 && (BF[i] & 0x7f)) : BF[i] != wbf) {
            printf("f32 %.9g -> bf16: got 0x%04x want 0x%04x\n", R[i], BF[i], wbf);
            bad++;
        }
    }
    failures += bad;
out:
    free(H);
    free(HO);
    free(F16);
    free(BF);
    free(R);
    free(HF);
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

/* ---- fault injection: every allocation of kf_interpret fails in turn ---- */

typedef struct {
    long allowed; /* allocations left before failing; < 0: unlimited */
    long live;
} fail_al;

static void *fa_alloc(void *ud, size_t n)
{
    fail_al *f = ud;
    if (f->allowed == 0) return NULL;
    if (f->allowed > 0) f->allowed--;
    void *p = malloc(n);
    if (p) f->live++;
    return p;
}
static void *fa_realloc(void *ud, void *p, size_t n)
{
    fail_al *f = ud;
    if (f->allowed == 0) return NULL;
    if (f->allowed > 0) f->allowed--;
    void *q = realloc(p, n);
    if (q && !p) f->live++;
    return q;
}
static void fa_free(void *ud, void *p)
{
    fail_al *f = ud;
    if (p) f->live--;
    free(p);
}

static void test_nomem(void)
{
    fail_al fa = {-1, 0};
    kf_allocator al = {fa_alloc, fa_realloc, fa_free, &fa};
    kf_ctx *ctx = kf_ctx_new(&al);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_F32, 2, (int64_t[]){2, 3});
    kf_node *b = kf_input(g, "b", KF_F32, 2, (int64_t[]){3, 2});
    kf_node *y = kf_unary(g, "softmax", kf_matmul(g, a, b));
    NOTNULL(y);
    CHECK(kf_output(g, y) == 0);
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, Y[4], Y0[4];
    if (interp(g, (const void *[]){A, B}, (void *[]){Y0}, __func__)) goto out;
    long live0 = fa.live;
    int ok = 0;
    for (long k = 0; k < 1000 && !ok; k++) {
        kf_clear_error(ctx);
        fa.allowed = k;
        kf_status st = kf_interpret(g, (const void *[]){A, B}, (void *[]){Y});
        fa.allowed = -1;
        if (st == KF_OK) {
            ok = 1;
            expect("after fault injection", KF_F32, Y, Y0, 4, 0, 0);
        } else if (st != KF_ERR_NOMEM || kf_errcode(ctx) != KF_ERR_NOMEM || !*kf_errmsg(ctx)) {
            printf("nomem: allocation %ld failing gave status %d, message '%s'\n", k, (int)st,
                   kf_errmsg(ctx));
            failures++;
        }
        if (fa.live != live0) {
            printf("nomem: allocation %ld failing leaked %ld blocks\n", k, fa.live - live0);
            failures++;
        }
    }
    CHECK(ok);
out:
    kf_graph_free(g);
    kf_ctx_free(ctx);
    CHECK(fa.live == 0);
}

int main(void)
{
    test_broadcast_add();
    test_int_div();
    test_f16_intermediate();
    test_transpose();
    test_slice();
    test_expand();
    test_concat();
    test_reduce();
    test_matmul();
    test_softmax();
    test_layer_norm();
    test_cast();
    test_where_compare();
    test_half_formats();
    test_nomem();
    if (failures) {
        printf("test_interp: %d failure%s\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("test_interp: all passed\n");
    return 0;
}
