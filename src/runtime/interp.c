/*
 * interp.c - the reference interpreter, the oracle of every numeric test.
 * It sits beside the pipeline, not in it: it walks the built graph in node
 * order, holds every node's value as a dense row-major array of doubles and
 * rounds it to the node's dtype after computing it, as if every intermediate
 * were stored.  Pointwise math comes from the ref_expr column of ops.def.
 * Written to be obviously right, not fast: every index is computed from
 * scratch by unravelling a linear index.
 */
#include <math.h>
#include <string.h>

#include "../kfuse-impl.h"

/* ---- helpers used by the ref_expr column of ops.def ---- */

/* Integer division truncates toward zero, and dividing by zero gives 0
 * (C leaves it undefined; kfuse defines it so that every target agrees). */
static double kf_ref_div(double a, double b, int I)
{
    if (!I) return a / b;
    if (b == 0) return 0;
    return trunc(a / b);
}

/* NaN-propagating, unlike fmax/fmin. */
static double kf_ref_max(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    return a > b ? a : b;
}
static double kf_ref_min(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    return a < b ? a : b;
}

static double ref_eval(kf_op op, double a, double b, double c, int I)
{
    switch (op) {
#define KF_OP(E, name, nin, kind, flags, cexpr, ref) \
    case KF_OP_##E: return (ref);
#include "../ops.def"
#undef KF_OP
    default: break;
    }
    KF_ASSERT(!"ref_eval: not an op");
    return 0;
}

/* ---- 16-bit floats ---- */

/* A finite or non-finite double to a 16-bit float with mbits mantissa bits
 * and ebits exponent bits (f16: 10/5, bf16: 7/8), rounding to nearest even
 * directly from the double (no double rounding through f32). */
static uint16_t to_small_float(double x, int mbits, int ebits)
{
    int bias = (1 << (ebits - 1)) - 1;
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    uint16_t expall = (uint16_t)(((1 << ebits) - 1) << mbits);
    if (isnan(x)) return (uint16_t)(sign | expall | (1 << (mbits - 1)));
    double ax = fabs(x);
    if (isinf(ax)) return sign | expall;
    int emin = 1 - bias;
    if (ax < ldexp(1.0, emin)) {
        /* subnormal: a multiple of 2^(emin - mbits); rounding up to
         * 2^mbits gives the encoding of the smallest normal */
        double r = rint(ldexp(ax, mbits - emin));
        return (uint16_t)(sign | (uint16_t)r);
    }
    int e2;
    frexp(ax, &e2);
    int e = e2 - 1; /* ax = 1.f * 2^e */
    double r = rint(ldexp(ax, mbits - e)); /* in [2^mbits, 2^(mbits+1)] */
    if (r == ldexp(1.0, mbits + 1)) {
        r = ldexp(1.0, mbits);
        e++;
    }
    if (e > bias) return sign | expall; /* overflow: infinity */
    return (uint16_t)(sign | ((e + bias) << mbits) | ((uint16_t)r - (1 << mbits)));
}

static double from_small_float(uint16_t h, int mbits, int ebits)
{
    int bias = (1 << (ebits - 1)) - 1;
    int emax = (1 << ebits) - 1;
    int e = (h >> mbits) & emax;
    int m = h & ((1 << mbits) - 1);
    double v;
    if (e == emax) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)m, 1 - bias - mbits);
    else v = ldexp((double)(m + (1 << mbits)), e - bias - mbits);
    return (h & 0x8000) ? -v : v;
}

static uint16_t to_f16(double x) { return to_small_float(x, 10, 5); }
static double from_f16(uint16_t h) { return from_small_float(h, 10, 5); }
static uint16_t to_bf16(double x) { return to_small_float(x, 7, 8); }
static double from_bf16(uint16_t h) { return from_small_float(h, 7, 8); }

/* ---- integers ---- */

/* Truncates toward zero and wraps modulo 2^64 into int64 (values beyond
 * int64's range wrap too, rather than being undefined); NaN and inf give 0. */
static int64_t to_i64_wrap(double x)
{
    if (!isfinite(x)) return 0;
    double t = trunc(x);
    const double two63 = 9223372036854775808.0, two64 = 18446744073709551616.0;
    if (!(t >= -two63 && t < two63)) {
        t = fmod(t, two64);            /* exact; in (-2^64, 2^64) */
        if (t >= two63) t -= two64;    /* exact (Sterbenz) */
        else if (t < -two63) t += two64;
    }
    return (int64_t)t;
}

/* Wraps to a bits-wide integer, as a C cast of an int64 to that type does. */
static int64_t wrap_bits(int64_t v, int bits, bool is_unsigned)
{
    if (bits == 64) return v;
    uint64_t mask = (UINT64_C(1) << bits) - 1;
    uint64_t u = (uint64_t)v & mask;
    if (!is_unsigned && (u >> (bits - 1))) return (int64_t)u - (INT64_C(1) << bits);
    return (int64_t)u;
}

static int64_t to_int(kf_dtype t, double x)
{
    int64_t v = to_i64_wrap(x);
    switch (t) {
    case KF_I64: return v;
    case KF_I32: return wrap_bits(v, 32, false);
    case KF_I8: return wrap_bits(v, 8, false);
    case KF_U8: return wrap_bits(v, 8, true);
    default: KF_ASSERT(!"to_int: not an integer dtype");
    }
    return 0;
}

/* The value x takes when stored in dtype t. */
static double round_to(kf_dtype t, double x)
{
    switch (t) {
    case KF_F64: return x;
    case KF_F32: return (double)(float)x;
    case KF_F16: return from_f16(to_f16(x));
    case KF_BF16: return from_bf16(to_bf16(x));
    case KF_I64: case KF_I32: case KF_I8: case KF_U8: return (double)to_int(t, x);
    case KF_BOOL: return x != 0;
    default: KF_ASSERT(!"round_to: bad dtype");
    }
    return 0;
}

double kf_value_get(kf_dtype t, const void *p, int64_t i)
{
    switch (t) {
    case KF_F64: return ((const double *)p)[i];
    case KF_F32: return ((const float *)p)[i];
    case KF_F16: return from_f16(((const uint16_t *)p)[i]);
    case KF_BF16: return from_bf16(((const uint16_t *)p)[i]);
    case KF_I64: return (double)((const int64_t *)p)[i];
    case KF_I32: return ((const int32_t *)p)[i];
    case KF_I8: return ((const int8_t *)p)[i];
    case KF_U8: return ((const uint8_t *)p)[i];
    case KF_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: KF_ASSERT(!"load: bad dtype");
    }
    return 0;
}

void kf_value_set(kf_dtype t, void *p, int64_t i, double x)
{
    switch (t) {
    case KF_F64: ((double *)p)[i] = x; break;
    case KF_F32: ((float *)p)[i] = (float)x; break;
    case KF_F16: ((uint16_t *)p)[i] = to_f16(x); break;
    case KF_BF16: ((uint16_t *)p)[i] = to_bf16(x); break;
    case KF_I64: ((int64_t *)p)[i] = to_int(t, x); break;
    case KF_I32: ((int32_t *)p)[i] = (int32_t)to_int(t, x); break;
    case KF_I8: ((int8_t *)p)[i] = (int8_t)to_int(t, x); break;
    case KF_U8: ((uint8_t *)p)[i] = (uint8_t)to_int(t, x); break;
    case KF_BOOL: ((uint8_t *)p)[i] = x != 0; break;
    default: KF_ASSERT(!"store: bad dtype");
    }
}

/* ---- indexing ---- */

/* Row-major strides of a contiguous shape, in elements. */
static void contig_strides(int ndim, const int64_t *shape, int64_t *st)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= shape[d];
    }
}

/* Strides, per dim of an out_ndim-dim result, with which a contiguous
 * operand of shape in_shape is read when NumPy-broadcast to that result:
 * dims are aligned at the right, and size-1 or missing dims read stride 0. */
static void bcast_strides(int in_ndim, const int64_t *in_shape, int out_ndim,
                          int64_t *st)
{
    int64_t cs[KF_MAX_DIMS];
    contig_strides(in_ndim, in_shape, cs);
    int lead = out_ndim - in_ndim;
    KF_ASSERT(lead >= 0);
    for (int d = 0; d < out_ndim; d++) {
        int di = d - lead;
        st[d] = di < 0 || in_shape[di] == 1 ? 0 : cs[di];
    }
}

/* The offset, with strides st, of the element at row-major linear index lin
 * of shape (ndim, shape). */
static int64_t offset_of(int64_t lin, int ndim, const int64_t *shape, const int64_t *st)
{
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t i = lin % shape[d];
        lin /= shape[d];
        off += i * st[d];
    }
    return off;
}

/* out[i] = in[base + offset_of(i)] for every element of shape. */
static void gather(double *out, const double *in, int ndim, const int64_t *shape,
                   const int64_t *st, int64_t base)
{
    int64_t n = kf_shape_numel(ndim, shape);
    for (int64_t i = 0; i < n; i++) out[i] = in[base + offset_of(i, ndim, shape, st)];
}

/* ---- node evaluation ---- */

static void eval_pointwise(const kf_node *n, double *out, double *const *v)
{
    int64_t st[3][KF_MAX_DIMS];
    KF_ASSERT(n->nin >= 1 && n->nin <= 3);
    for (int j = 0; j < n->nin; j++)
        bcast_strides(n->in[j]->ndim, n->in[j]->shape, n->ndim, st[j]);
    /* the data operand's dtype (where's condition is bool, the others not) */
    int I = kf_dtype_is_int(n->in[n->nin - 1]->dtype);
    int64_t numel = kf_node_numel(n);
    for (int64_t i = 0; i < numel; i++) {
        double x[3] = {0, 0, 0};
        for (int j = 0; j < n->nin; j++)
            x[j] = v[n->in[j]->id][offset_of(i, n->ndim, n->shape, st[j])];
        /* CAST and COPY are identities here: round_to does the converting */
        out[i] = ref_eval(n->op, x[0], x[1], x[2], I);
    }
}

static void eval_view(const kf_node *n, double *out, double *const *v)
{
    const kf_node *x = n->in[0];
    const double *in = v[x->id];
    int64_t cs[KF_MAX_DIMS], st[KF_MAX_DIMS];
    switch (n->op) {
    case KF_OP_TRANSPOSE:
        contig_strides(x->ndim, x->shape, cs);
        for (int d = 0; d < n->ndim; d++) st[d] = cs[n->attr.perm[d]];
        gather(out, in, n->ndim, n->shape, st, 0);
        break;
    case KF_OP_RESHAPE:
        KF_ASSERT(kf_node_numel(n) == kf_node_numel(x));
        memcpy(out, in, sizeof *out * (size_t)kf_node_numel(n));
        break;
    case KF_OP_EXPAND:
        bcast_strides(x->ndim, x->shape, n->ndim, st);
        gather(out, in, n->ndim, n->shape, st, 0);
        break;
    case KF_OP_SLICE: {
        int ax = (int)n->attr.axes[0];
        contig_strides(x->ndim, x->shape, st);
        int64_t base = n->shape[ax] > 0 ? n->attr.start * st[ax] : 0;
        st[ax] *= n->attr.step;
        gather(out, in, n->ndim, n->shape, st, base);
        break;
    }
    case KF_OP_CONCAT: {
        int ax = (int)n->attr.axes[0];
        int64_t outer = kf_shape_numel(ax, n->shape);
        int64_t inner = kf_shape_numel(n->ndim - ax - 1, n->shape + ax + 1);
        int64_t rowlen = n->shape[ax] * inner, at = 0;
        for (int j = 0; j < n->nin; j++) {
            const double *src = v[n->in[j]->id];
            int64_t len = n->in[j]->shape[ax] * inner;
            for (int64_t o = 0; o < outer; o++)
                for (int64_t k = 0; k < len; k++) out[o * rowlen + at + k] = src[o * len + k];
            at += len;
        }
        KF_ASSERT(at == rowlen);
        break;
    }
    default: KF_ASSERT(!"eval_view: not a view");
    }
}

static void eval_reduce(const kf_node *n, double *out, double *const *v)
{
    const kf_node *x = n->in[0];
    const double *in = v[x->id];
    /* the result's layout is the same with or without keepdims: index it
     * with x's dims, the reduced ones read with stride 0 */
    int64_t kshape[KF_MAX_DIMS], st[KF_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) kshape[d] = kf_reduce_has_axis(n, d) ? 1 : x->shape[d];
    contig_strides(x->ndim, kshape, st);
    for (int d = 0; d < x->ndim; d++)
        if (kf_reduce_has_axis(n, d)) st[d] = 0;
    int64_t nout = kf_node_numel(n), nin = kf_node_numel(x);
    KF_ASSERT(nout == kf_shape_numel(x->ndim, kshape));
    double init = n->op == KF_OP_MAX ? -INFINITY : n->op == KF_OP_MIN ? INFINITY : 0;
    for (int64_t i = 0; i < nout; i++) out[i] = init;
    for (int64_t i = 0; i < nin; i++) {
        double *acc = &out[offset_of(i, x->ndim, x->shape, st)];
        switch (n->op) {
        case KF_OP_SUM: case KF_OP_MEAN: *acc += in[i]; break;
        case KF_OP_MAX: *acc = kf_ref_max(*acc, in[i]); break;
        case KF_OP_MIN: *acc = kf_ref_min(*acc, in[i]); break;
        default: KF_ASSERT(!"eval_reduce: not a reduction");
        }
    }
    if (n->op == KF_OP_MEAN) {
        double count = (double)kf_reduce_count(n);
        for (int64_t i = 0; i < nout; i++) out[i] /= count;
    }
}

static void eval_matmul(const kf_node *n, double *out, double *const *v)
{
    const kf_node *a = n->in[0], *b = n->in[1];
    KF_ASSERT(a->ndim >= 2 && b->ndim >= 2 && n->ndim >= 2);
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int64_t N = b->shape[b->ndim - 1];
    KF_ASSERT(b->shape[b->ndim - 2] == K);
    KF_ASSERT(n->shape[n->ndim - 2] == M && n->shape[n->ndim - 1] == N);
    /* batch dims: each operand is a contiguous stack of matrices, indexed
     * by its own batch dims broadcast to the result's */
    int nb = n->ndim - 2;
    int64_t sta[KF_MAX_DIMS], stb[KF_MAX_DIMS];
    bcast_strides(a->ndim - 2, a->shape, nb, sta);
    bcast_strides(b->ndim - 2, b->shape, nb, stb);
    int64_t nbatch = kf_shape_numel(nb, n->shape);
    for (int64_t p = 0; p < nbatch; p++) {
        const double *A = v[a->id] + offset_of(p, nb, n->shape, sta) * M * K;
        const double *B = v[b->id] + offset_of(p, nb, n->shape, stb) * K * N;
        double *C = out + p * M * N;
        for (int64_t i = 0; i < M * N; i++) C[i] = 0;
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++) {
                double aik = A[i * K + k];
                for (int64_t j = 0; j < N; j++) C[i * N + j] += aik * B[k * N + j];
            }
    }
}

kf_status kf_interpret(kf_graph *g, const void *const *inputs, void *const *outputs)
{
    if (!g) return KF_ERR_INVALID;
    kf_ctx *ctx = g->ctx;
    if ((g->ninputs > 0 && !inputs) || (g->noutputs > 0 && !outputs)) {
        kf_err(ctx, KF_ERR_INVALID, "kf_interpret: the graph has %d inputs and %d outputs, "
               "but a buffer array is NULL", g->ninputs, g->noutputs);
        return KF_ERR_INVALID;
    }
    for (int i = 0; i < g->ninputs; i++)
        if (!inputs[i] && kf_node_numel(g->inputs[i]) > 0) {
            kf_err(ctx, KF_ERR_INVALID, "kf_interpret: input %d ('%s') is NULL", i,
                   g->inputs[i]->name);
            return KF_ERR_INVALID;
        }
    for (int i = 0; i < g->noutputs; i++)
        if (!outputs[i] && kf_node_numel(g->outputs[i]) > 0) {
            kf_err(ctx, KF_ERR_INVALID, "kf_interpret: output %d is NULL", i);
            return KF_ERR_INVALID;
        }

    kf_status st = KF_OK;
    int nn = g->nnodes;
    /* v[i]: node i's value; last[i]: the last node that reads it, after
     * which it is freed (outputs live to the end) */
    double **v = kf_malloc(ctx, sizeof *v * (size_t)(nn ? nn : 1));
    int *last = kf_malloc(ctx, sizeof *last * (size_t)(nn ? nn : 1));
    if (!v || !last) {
        kf_free(ctx, v);
        kf_free(ctx, last);
        return KF_ERR_NOMEM;
    }
    for (int i = 0; i < nn; i++) {
        v[i] = NULL;
        last[i] = i;
    }
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++) last[g->nodes[i]->in[j]->id] = i;
    for (int i = 0; i < g->noutputs; i++) last[g->outputs[i]->id] = nn;
    /* an external template's results are its lowered reference's values */
    for (int i = 0; i < nn; i++)
        if (g->nodes[i]->op == KF_OP_RESULT && last[g->nodes[i]->ref->id] < i)
            last[g->nodes[i]->ref->id] = i;

    for (int i = 0; i < nn; i++) {
        kf_node *n = g->nodes[i];
        KF_ASSERT(n->id == i);
        for (int j = 0; j < n->nin; j++) KF_ASSERT(n->in[j]->id < i && v[n->in[j]->id]);
        int64_t numel = kf_node_numel(n);
        double *out = kf_malloc(ctx, sizeof *out * (size_t)numel);
        if (!out) {
            st = KF_ERR_NOMEM;
            goto done;
        }
        v[i] = out;
        switch (kf_ops[n->op].kind) {
        case KF_K_LEAF:
            if (n->op == KF_OP_INPUT) {
                KF_ASSERT(n->input_index >= 0 && n->input_index < g->ninputs);
                for (int64_t k = 0; k < numel; k++)
                    out[k] = kf_value_get(n->dtype, inputs[n->input_index], k);
            } else if (n->op == KF_OP_CONST) {
                for (int64_t k = 0; k < numel; k++) out[k] = kf_value_get(n->dtype, n->data, k);
            } else {
                KF_ASSERT(n->op == KF_OP_SCALAR && numel == 1);
                out[0] = n->scalar;
            }
            break;
        case KF_K_POINTWISE: eval_pointwise(n, out, v); break;
        case KF_K_VIEW: eval_view(n, out, v); break;
        case KF_K_REDUCE: eval_reduce(n, out, v); break;
        case KF_K_MATMUL: eval_matmul(n, out, v); break;
        case KF_K_EXTERN: out[0] = 0; break;
        case KF_K_RESULT:
            KF_ASSERT(v[n->ref->id]);
            memcpy(out, v[n->ref->id], sizeof *out * (size_t)numel);
            break;
        default: KF_ASSERT(!"kf_interpret: composite op left in the graph");
        }
        for (int64_t k = 0; k < numel; k++) out[k] = round_to(n->dtype, out[k]);
        /* free what no later node reads */
        for (int j = 0; j < n->nin; j++) {
            int id = n->in[j]->id;
            if (last[id] == i && v[id]) {
                kf_free(ctx, v[id]);
                v[id] = NULL;
            }
        }
        if (last[i] == i) {
            kf_free(ctx, v[i]);
            v[i] = NULL;
        }
    }
    for (int i = 0; i < g->noutputs; i++) {
        const kf_node *n = g->outputs[i];
        int64_t numel = kf_node_numel(n);
        for (int64_t k = 0; k < numel; k++) kf_value_set(n->dtype, outputs[i], k, v[n->id][k]);
    }

done:
    for (int i = 0; i < nn; i++) kf_free(ctx, v[i]);
    kf_free(ctx, v);
    kf_free(ctx, last);
    return st;
}
