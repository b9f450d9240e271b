/*
 * onnx_ops.c - one handler per ONNX op (opsets 13 to 17, and the older forms
 * that exporters still write), each mapping the op onto kfuse's own ops
 * through kf_apply, so that an ONNX graph fuses as the same .kf graph would.
 * Ops kfuse lacks are composed (LeakyRelu = where(x > 0, x, alpha x), Gemm =
 * transposes + matmul + scaling + bias epilogue, ...).
 *
 * The load-time constant folder lives here too: a node whose inputs are all
 * known at load time (initializers, Constants, Shape of a static tensor) and
 * whose result is small is computed now, so that Shape -> Gather -> Concat ->
 * Reshape chains leave nothing in the graph.  Large constants stay constants
 * in the graph and are computed by the compiled code.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx-impl.h"

typedef kf_onnx_loader L_t;
typedef kf_onnx_val V;
typedef kf_onnx_ct C;
typedef Onnx__NodeProto N;

/* Results larger than this many elements are left to the compiled code. */
#define FOLD_MAX 65536

/* ---- attributes ---------------------------------------------------------- */

static const Onnx__AttributeProto *attr(const N *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    return NULL;
}
static int64_t attr_i(const N *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}
static double attr_f(const N *n, const char *name, double def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}
static const char *attr_s(const N *n, const char *name, const char *def, char *buf, size_t sz)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->has_s) return def;
    size_t l = a->s.len < sz - 1 ? a->s.len : sz - 1;
    memcpy(buf, a->s.data, l);
    buf[l] = 0;
    return buf;
}
/* count, or -1 if absent; more than max is an error (-2) */
static int attr_ints(L_t *L, const N *n, const char *name, int64_t *out, int max)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a) return -1;
    if (a->n_ints > (size_t)max)
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "attribute '%s' has %zu values; at most %d "
                           "are supported", name, a->n_ints, max), -2;
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    return (int)a->n_ints;
}

/* ---- f16 / bf16 ---------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (!m) bits = s;
        else {
            float f = ldexpf((float)m, -24);
            return s ? -f : f;
        }
    } else if (e == 31) {
        bits = s | 0x7f800000u | (m << 13);
    } else {
        bits = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t s = (x >> 16) & 0x8000;
    int32_t e = (int32_t)((x >> 23) & 255) - 127 + 15;
    uint32_t m = x & 0x7fffff;
    if (((x >> 23) & 255) == 255) return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
    if (e >= 31) return (uint16_t)(s | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)s;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(s | r);
    }
    uint32_t r = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(s | r);
}
static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
static uint16_t float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- load-time constants ------------------------------------------------- */

static int64_t numel(const C *c) { return kf_shape_numel(c->ndim, c->shape); }

static double getd(const C *c, int64_t i)
{
    switch (c->t) {
    case KF_F64: return ((double *)c->data)[i];
    case KF_F32: return ((float *)c->data)[i];
    case KF_F16: return half_to_float(((uint16_t *)c->data)[i]);
    case KF_BF16: return bf16_to_float(((uint16_t *)c->data)[i]);
    case KF_I64: return (double)((int64_t *)c->data)[i];
    case KF_I32: return ((int32_t *)c->data)[i];
    case KF_I8: return ((int8_t *)c->data)[i];
    case KF_U8: return ((uint8_t *)c->data)[i];
    case KF_BOOL: return ((uint8_t *)c->data)[i] != 0;
    default: KF_ASSERT(0);
    }
    return 0;
}
static int64_t geti(const C *c, int64_t i)
{
    switch (c->t) {
    case KF_I64: return ((int64_t *)c->data)[i];
    case KF_I32: return ((int32_t *)c->data)[i];
    case KF_I8: return ((int8_t *)c->data)[i];
    case KF_U8: return ((uint8_t *)c->data)[i];
    case KF_BOOL: return ((uint8_t *)c->data)[i] != 0;
    default: {
        double d = getd(c, i);
        if (!(d >= -9.2e18 && d <= 9.2e18)) return d > 0 ? INT64_MAX : INT64_MIN;
        return (int64_t)d;
    }
    }
}
static void setd(C *c, int64_t i, double v)
{
    switch (c->t) {
    case KF_F64: ((double *)c->data)[i] = v; break;
    case KF_F32: ((float *)c->data)[i] = (float)v; break;
    case KF_F16: ((uint16_t *)c->data)[i] = float_to_half((float)v); break;
    case KF_BF16: ((uint16_t *)c->data)[i] = float_to_bf16((float)v); break;
    case KF_BOOL: ((uint8_t *)c->data)[i] = v != 0; break;
    default: {
        int64_t x = !(v >= -9.2e18 && v <= 9.2e18) ? (v > 0 ? INT64_MAX : INT64_MIN) : (int64_t)v;
        switch (c->t) {
        case KF_I64: ((int64_t *)c->data)[i] = x; break;
        case KF_I32: ((int32_t *)c->data)[i] = (int32_t)x; break;
        case KF_I8: ((int8_t *)c->data)[i] = (int8_t)x; break;
        case KF_U8: ((uint8_t *)c->data)[i] = (uint8_t)x; break;
        default: KF_ASSERT(0);
        }
    }
    }
}
static void seti(C *c, int64_t i, int64_t v)
{
    switch (c->t) {
    case KF_I64: ((int64_t *)c->data)[i] = v; break;
    case KF_I32: ((int32_t *)c->data)[i] = (int32_t)v; break;
    case KF_I8: ((int8_t *)c->data)[i] = (int8_t)v; break;
    case KF_U8: ((uint8_t *)c->data)[i] = (uint8_t)v; break;
    case KF_BOOL: ((uint8_t *)c->data)[i] = v != 0; break;
    default: setd(c, i, (double)v);
    }
}

/* A view of c's data under another shape (same element count). */
static C *ct_view(L_t *L, const C *c, int nd, const int64_t *shape)
{
    C *r = kf_onnx_ct_new(L, c->t, 0, NULL);
    if (!r) return NULL;
    r->data = c->data; /* owned by the loader: freed once, at the end */
    r->ndim = nd;
    for (int i = 0; i < nd; i++) r->shape[i] = shape[i];
    return r;
}

/* out[idx] = src[base + sum_d idx_d * st[d]] */
static C *ct_affine(L_t *L, const C *src, int nd, const int64_t *shape, int64_t base,
                    const int64_t *st)
{
    C *r = kf_onnx_ct_new(L, src->t, nd, shape);
    if (!r) return NULL;
    int64_t n = numel(r), idx[KF_MAX_DIMS] = {0}, off = base;
    size_t es = kf_dtype_size(src->t);
    for (int64_t i = 0; i < n; i++) {
        memcpy((char *)r->data + (size_t)i * es, (const char *)src->data + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) {
                off += st[d];
                break;
            }
            off -= st[d] * (idx[d] - 1);
            idx[d] = 0;
        }
    }
    return r;
}

static void strides_of(int nd, const int64_t *shape, int64_t *st)
{
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        st[d] = s;
        s *= shape[d];
    }
}

/* strides of an operand of shape (ind, ishape) broadcast into (nd, shape) */
static void bcast_strides(int ind, const int64_t *ishape, int nd, int64_t *st)
{
    int64_t is[KF_MAX_DIMS];
    strides_of(ind, ishape, is);
    for (int d = 0; d < nd; d++) {
        int k = d - (nd - ind);
        st[d] = k < 0 || ishape[k] == 1 ? 0 : is[k];
    }
}

static bool is_ct(const V *v) { return v && v->c && !v->node; }
/* a constant (an initializer may also have become a node: it stays known) */
static bool known(const V *v) { return v && v->c; }

/* Integer contents of a load-time constant input (shapes, axes, ...). */
static int const_ints(L_t *L, V *v, const char *what, int64_t *out, int max)
{
    if (!known(v))
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "input '%s' (%s) must be known at load time "
                           "(a constant, or computed from shapes); kfuse needs static shapes",
                           v ? v->name : "", what), -1;
    if (!kf_dtype_is_int(v->c->t))
        return kf_onnx_err(L, KF_ERR_INVALID, "input '%s' (%s) must be an integer tensor, not "
                           "%s", v->name, what, kf_dtype_name(v->c->t)), -1;
    int64_t n = numel(v->c);
    if (v->c->ndim > 1 || n > max)
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "input '%s' (%s) has %lld values; at most %d "
                           "are supported", v->name, what, (long long)n, max), -1;
    for (int64_t i = 0; i < n; i++) out[i] = geti(v->c, i);
    return (int)n;
}

static int norm_axis(L_t *L, int64_t *ax, int rank, const char *what)
{
    if (*ax < -rank || *ax >= rank)
        return kf_onnx_err(L, KF_ERR_INVALID, "%s %lld is out of range for rank %d", what,
                           (long long)*ax, rank);
    if (*ax < 0) *ax += rank;
    return 0;
}

static kf_node *nd_(L_t *L, V *v) { return kf_onnx_node(L, v); }
/* a NULL node carries its error on: builder calls pass NULL operands through */
#define NODE(v) nd_(L, (v))

static kf_node *sc(L_t *L, double x, kf_dtype t) { return kf_scalar(L->g, x, t); }
static kf_node *ap1(L_t *L, const char *op, kf_node *a) { return kf_unary(L->g, op, a); }
static kf_node *ap2(L_t *L, const char *op, kf_node *a, kf_node *b) { return kf_binary(L->g, op, a, b); }
static kf_node *ap3(L_t *L, const char *op, kf_node *a, kf_node *b, kf_node *c)
{
    kf_node *in[3] = {a, b, c};
    return kf_apply(L->g, op, 3, in, NULL);
}
static kf_node *reshape(L_t *L, kf_node *x, int nd, const int64_t *shape)
{
    kf_attrs at = {0};
    at.nshape = nd;
    for (int i = 0; i < nd; i++) at.shape[i] = shape[i];
    return kf_apply(L->g, "reshape", 1, &x, &at);
}

static int out_node(L_t *L, int i, kf_node *n) { return kf_onnx_set_node(L, i, n); }
static int out_ct(L_t *L, int i, C *c) { return kf_onnx_set_const(L, i, c); }

/* ---- folding pointwise ops ----------------------------------------------- */

static int64_t eval_i(kf_op op, int64_t a, int64_t b, int64_t c, bool *ok)
{
    switch (op) {
    case KF_OP_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case KF_OP_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case KF_OP_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case KF_OP_DIV:
        if (b == 0 || (a == INT64_MIN && b == -1)) return *ok = false, 0;
        return a / b;
    case KF_OP_MAXIMUM: return a > b ? a : b;
    case KF_OP_MINIMUM: return a < b ? a : b;
    case KF_OP_NEG: return (int64_t)(0 - (uint64_t)a);
    case KF_OP_ABS: return a < 0 ? (int64_t)(0 - (uint64_t)a) : a;
    case KF_OP_SIGN: return (a > 0) - (a < 0);
    case KF_OP_RELU: return a > 0 ? a : 0;
    case KF_OP_WHERE: return a ? b : c;
    case KF_OP_EQ: return a == b;
    case KF_OP_NE: return a != b;
    case KF_OP_LT: return a < b;
    case KF_OP_LE: return a <= b;
    case KF_OP_GT: return a > b;
    case KF_OP_GE: return a >= b;
    case KF_OP_LOGICAL_AND: return a && b;
    case KF_OP_LOGICAL_OR: return a || b;
    case KF_OP_LOGICAL_NOT: return !a;
    case KF_OP_CAST: return a;
    default: *ok = false; return 0;
    }
}
static double eval_d(kf_op op, double a, double b, double c, bool *ok)
{
    switch (op) {
    case KF_OP_ADD: return a + b;
    case KF_OP_SUB: return a - b;
    case KF_OP_MUL: return a * b;
    case KF_OP_DIV: return a / b;
    case KF_OP_MAXIMUM: return a > b ? a : b;
    case KF_OP_MINIMUM: return a < b ? a : b;
    case KF_OP_NEG: return -a;
    case KF_OP_ABS: return fabs(a);
    case KF_OP_SIGN: return (a > 0) - (a < 0);
    case KF_OP_RELU: return a > 0 ? a : 0;
    case KF_OP_FLOOR: return floor(a);
    case KF_OP_CEIL: return ceil(a);
    case KF_OP_SQRT: return sqrt(a);
    case KF_OP_WHERE: return a != 0 ? b : c;
    case KF_OP_EQ: return a == b;
    case KF_OP_NE: return a != b;
    case KF_OP_LT: return a < b;
    case KF_OP_LE: return a <= b;
    case KF_OP_GT: return a > b;
    case KF_OP_GE: return a >= b;
    case KF_OP_LOGICAL_AND: return a != 0 && b != 0;
    case KF_OP_LOGICAL_OR: return a != 0 || b != 0;
    case KF_OP_LOGICAL_NOT: return a == 0;
    case KF_OP_CAST: return a;
    default: *ok = false; return 0;
    }
}

/* Folds op over constants c[0..nin) into a constant of dtype out_t, or
 * returns NULL with no error when it cannot (too big, unknown op). */
static C *fold_pointwise(L_t *L, kf_op op, kf_dtype out_t, int nin, C **c, bool *failed)
{
    *failed = false;
    int nd = c[0]->ndim;
    int64_t shape[KF_MAX_DIMS];
    memcpy(shape, c[0]->shape, sizeof shape);
    for (int i = 1; i < nin; i++) {
        int64_t tmp[KF_MAX_DIMS];
        int nt;
        if (!kf_shape_broadcast(nd, shape, c[i]->ndim, c[i]->shape, &nt, tmp)) return NULL;
        nd = nt;
        memcpy(shape, tmp, sizeof tmp);
    }
    if (kf_shape_numel(nd, shape) > FOLD_MAX) return NULL;
    /* the compute type: the operands' (the condition's is bool) */
    kf_dtype ct = c[nin > 2 ? 1 : 0]->t;
    bool ints = !kf_dtype_is_float(ct);
    bool ok = true;
    /* a trial run decides whether the op is foldable at all */
    if (ints) eval_i(op, 1, 1, 1, &ok);
    else eval_d(op, 1, 1, 1, &ok);
    if (!ok) return NULL;
    C *r = kf_onnx_ct_new(L, out_t, nd, shape);
    if (!r) return *failed = true, NULL;
    int64_t st[3][KF_MAX_DIMS], idx[KF_MAX_DIMS] = {0}, off[3] = {0};
    for (int i = 0; i < nin; i++) bcast_strides(c[i]->ndim, c[i]->shape, nd, st[i]);
    int64_t n = numel(r);
    for (int64_t e = 0; e < n; e++) {
        if (ints) {
            int64_t a[3] = {0};
            for (int i = 0; i < nin; i++) a[i] = geti(c[i], off[i]);
            int64_t v = eval_i(op, a[0], a[1], a[2], &ok);
            if (!ok) return NULL; /* division by zero: leave it to run time */
            if (kf_dtype_is_float(out_t)) setd(r, e, (double)v);
            else seti(r, e, v);
        } else {
            double a[3] = {0};
            for (int i = 0; i < nin; i++) a[i] = getd(c[i], off[i]);
            setd(r, e, eval_d(op, a[0], a[1], a[2], &ok));
        }
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) {
                for (int i = 0; i < nin; i++) off[i] += st[i][d];
                break;
            }
            for (int i = 0; i < nin; i++) off[i] -= st[i][d] * (idx[d] - 1);
            idx[d] = 0;
        }
    }
    return r;
}

/* A kfuse pointwise op over the node's inputs, folded when all are known. */
static int pointwise(L_t *L, const char *kop, int nin, V **in, const kf_attrs *at)
{
    bool all = true;
    for (int i = 0; i < nin; i++) all &= known(in[i]);
    if (all) {
        C *c[3] = {0};
        for (int i = 0; i < nin; i++) c[i] = in[i]->c;
        kf_op op = (kf_op)kf_op_lookup(kop);
        int first = op == KF_OP_WHERE ? 1 : 0;
        kf_dtype out = c[first]->t;
        bool same = op != KF_OP_WHERE || c[0]->t == KF_BOOL;
        for (int i = first + 1; i < nin; i++) same &= c[i]->t == out;
        if (kf_ops[op].flags & KF_F_BOOLOUT) out = KF_BOOL;
        if (op == KF_OP_CAST) out = at->dtype;
        bool failed;
        C *r = same && nin <= 3 ? fold_pointwise(L, op, out, nin, c, &failed) : NULL;
        if (r) return out_ct(L, 0, r);
        if (same && nin <= 3 && failed) return -1;
    }
    kf_node *x[3];
    for (int i = 0; i < nin; i++) x[i] = NODE(in[i]);
    return out_node(L, 0, kf_apply(L->g, kop, nin, x, at));
}

/* ---- elementwise ops ----------------------------------------------------- */

static const struct {
    const char *onnx, *kf;
} simple_ops[] = {
    {"Add", "add"}, {"Sub", "sub"}, {"Mul", "mul"}, {"Div", "div"},
    {"Neg", "neg"}, {"Abs", "abs"}, {"Exp", "exp"}, {"Log", "log"}, {"Sqrt", "sqrt"},
    {"Reciprocal", "reciprocal"}, {"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"},
    {"Erf", "erf"}, {"Floor", "floor"}, {"Ceil", "ceil"}, {"Sin", "sin"}, {"Cos", "cos"},
    {"Sign", "sign"}, {"Not", "logical_not"}, {"And", "logical_and"}, {"Or", "logical_or"},
    {"Xor", "ne"}, {"Equal", "eq"}, {"Less", "lt"}, {"Greater", "gt"},
    {"LessOrEqual", "le"}, {"GreaterOrEqual", "ge"}, {"Where", "where"},
};

static int h_simple(L_t *L, const N *n, V **in, int nin)
{
    for (size_t i = 0; i < sizeof simple_ops / sizeof *simple_ops; i++)
        if (strcmp(simple_ops[i].onnx, n->op_type) == 0) {
            if (strcmp(n->op_type, "Xor") == 0)
                for (int k = 0; k < nin; k++)
                    if (kf_onnx_vtype(in[k]) != KF_BOOL)
                        return kf_onnx_err(L, KF_ERR_INVALID, "Xor needs bool operands");
            return pointwise(L, simple_ops[i].kf, nin, in, NULL);
        }
    KF_ASSERT(0);
    return -1;
}

static int h_pow(L_t *L, const N *n, V **in, int nin)
{
    (void)n, (void)nin;
    kf_node *x = NODE(in[0]), *y = NODE(in[1]);
    if (!x || !y) return -1;
    kf_dtype t = x->dtype;
    if (kf_dtype_is_float(t)) {
        if (y->dtype != t) y = kf_cast(L->g, y, t);
        return out_node(L, 0, ap2(L, "pow", x, y));
    }
    /* integer powers: computed in f64, as NumPy does for the result's range */
    kf_node *r = ap2(L, "pow", kf_cast(L->g, x, KF_F64), kf_cast(L->g, y, KF_F64));
    return out_node(L, 0, kf_cast(L->g, r, t));
}

/* Max, Min, Sum, Mean: variadic, broadcasting */
static int h_variadic(L_t *L, const N *n, V **in, int nin)
{
    const char *op = strcmp(n->op_type, "Max") == 0 ? "maximum"
                   : strcmp(n->op_type, "Min") == 0 ? "minimum" : "add";
    for (int i = 0; i < nin; i++)
        if (!in[i]) return kf_onnx_err(L, KF_ERR_INVALID, "input %d is empty", i);
    if (nin == 1 && strcmp(n->op_type, "Mean") != 0) return out_node(L, 0, NODE(in[0]));
    kf_node *acc = NODE(in[0]);
    for (int i = 1; i < nin; i++) acc = ap2(L, op, acc, NODE(in[i]));
    if (strcmp(n->op_type, "Mean") == 0) acc = ap2(L, "div", acc, sc(L, nin, acc ? acc->dtype : KF_F32));
    return out_node(L, 0, acc);
}

static int h_identity(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    if (strcmp(n->op_type, "Dropout") == 0) {
        if (nin > 2 && in[2]) {
            int64_t tm = 1;
            if (!known(in[2]) || numel(in[2]->c) != 1 || (tm = geti(in[2]->c, 0)))
                return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "training mode is not supported");
        }
        if (n->n_output > 1 && n->output[1][0]) {
            /* the mask: all true at inference */
            C *m = kf_onnx_ct_new(L, KF_BOOL, 0, NULL);
            if (!m) return -1;
            ((uint8_t *)m->data)[0] = 1;
            V tmp = {.name = n->output[1], .c = m};
            kf_node *one = kf_onnx_node(L, &tmp);
            kf_attrs at = {0};
            at.nshape = kf_onnx_vndim(in[0]);
            memcpy(at.shape, kf_onnx_vshape(in[0]), sizeof(int64_t) * (size_t)at.nshape);
            kf_node *mk = one ? kf_apply(L->g, "expand", 1, &one, &at) : NULL;
            if (out_node(L, 1, mk)) return -1;
        }
    }
    const char *name = n->output[0];
    kf_onnx_val tmp = *in[0];
    (void)name;
    if (tmp.node) return out_node(L, 0, tmp.node);
    return out_ct(L, 0, tmp.c);
}

static int h_cast(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_dtype t;
    if (strcmp(n->op_type, "CastLike") == 0) {
        t = kf_onnx_vtype(in[1]);
    } else {
        const Onnx__AttributeProto *a = attr(n, "to");
        if (!a || !a->has_i) return kf_onnx_err(L, KF_ERR_INVALID, "attribute 'to' is missing");
        if (!kf_onnx_map_dtype((int)a->i, &t))
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "casting to %s is not supported",
                               kf_onnx_dtype_name((int)a->i));
    }
    if (kf_onnx_vtype(in[0]) == t) return h_identity(L, n, in, 1);
    kf_attrs at = {0};
    at.dtype = t;
    at.has_dtype = 1;
    return pointwise(L, "cast", 1, in, &at);
}

static int param_for_channel(L_t *L, V *v, int rank, kf_node **out);

static kf_node *where_pos(L_t *L, kf_node *x, kf_node *pos, kf_node *neg)
{
    /* x > 0 ? pos : neg */
    return ap3(L, "where", ap2(L, "gt", x, sc(L, 0, x->dtype)), pos, neg);
}

static int h_activation(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_node *x = NODE(in[0]), *r = NULL;
    if (!x) return -1;
    kf_dtype t = x->dtype;
    const char *op = n->op_type;
    if (strcmp(op, "LeakyRelu") == 0) {
        double alpha = attr_f(n, "alpha", 0.01);
        r = where_pos(L, x, x, ap2(L, "mul", x, sc(L, alpha, t)));
    } else if (strcmp(op, "PRelu") == 0) {
        kf_node *s = NODE(in[1]);
        /* a per-channel slope [C] against [N, C, ...] (the form before
         * opset 7, which exporters still write) */
        if (s && s->ndim == 1 && x->ndim >= 2 && s->shape[0] == x->shape[1] && s->shape[0] != 1 &&
            (L->opset < 7 || s->shape[0] != x->shape[x->ndim - 1]) &&
            param_for_channel(L, in[1], x->ndim, &s))
            return -1;
        r = where_pos(L, x, x, ap2(L, "mul", x, s));
    } else if (strcmp(op, "Elu") == 0) {
        double alpha = attr_f(n, "alpha", 1.0);
        r = where_pos(L, x, x, ap2(L, "mul", ap2(L, "sub", ap1(L, "exp", x), sc(L, 1, t)), sc(L, alpha, t)));
    } else if (strcmp(op, "Selu") == 0) {
        double alpha = attr_f(n, "alpha", 1.67326319217681884765625);
        double gamma = attr_f(n, "gamma", 1.05070102214813232421875);
        kf_node *neg = ap2(L, "sub", ap2(L, "mul", ap1(L, "exp", x), sc(L, alpha, t)), sc(L, alpha, t));
        r = ap2(L, "mul", where_pos(L, x, x, neg), sc(L, gamma, t));
    } else if (strcmp(op, "Celu") == 0) {
        double alpha = attr_f(n, "alpha", 1.0);
        kf_node *e = ap2(L, "mul", ap2(L, "sub", ap1(L, "exp", ap2(L, "div", x, sc(L, alpha, t))),
                                       sc(L, 1, t)), sc(L, alpha, t));
        r = ap2(L, "add", ap2(L, "maximum", x, sc(L, 0, t)), ap2(L, "minimum", e, sc(L, 0, t)));
    } else if (strcmp(op, "ThresholdedRelu") == 0) {
        double alpha = attr_f(n, "alpha", 1.0);
        r = ap3(L, "where", ap2(L, "gt", x, sc(L, alpha, t)), x, sc(L, 0, t));
    } else if (strcmp(op, "HardSigmoid") == 0) {
        double alpha = attr_f(n, "alpha", 0.2), beta = attr_f(n, "beta", 0.5);
        kf_node *y = ap2(L, "add", ap2(L, "mul", x, sc(L, alpha, t)), sc(L, beta, t));
        r = ap3(L, "clamp", y, sc(L, 0, t), sc(L, 1, t));
    } else if (strcmp(op, "HardSwish") == 0) {
        kf_node *y = ap2(L, "add", ap2(L, "mul", x, sc(L, 1.0 / 6, t)), sc(L, 0.5, t));
        r = ap2(L, "mul", x, ap3(L, "clamp", y, sc(L, 0, t), sc(L, 1, t)));
    } else if (strcmp(op, "Softplus") == 0) {
        r = ap1(L, "log", ap2(L, "add", ap1(L, "exp", x), sc(L, 1, t)));
    } else if (strcmp(op, "Softsign") == 0) {
        r = ap2(L, "div", x, ap2(L, "add", ap1(L, "abs", x), sc(L, 1, t)));
    } else if (strcmp(op, "Mish") == 0) {
        r = ap2(L, "mul", x, ap1(L, "tanh", ap1(L, "log", ap2(L, "add", ap1(L, "exp", x), sc(L, 1, t)))));
    } else if (strcmp(op, "Tan") == 0) {
        r = ap2(L, "div", ap1(L, "sin", x), ap1(L, "cos", x));
    } else if (strcmp(op, "Sinh") == 0 || strcmp(op, "Cosh") == 0) {
        kf_node *a = ap1(L, "exp", x), *b = ap1(L, "exp", ap1(L, "neg", x));
        r = ap2(L, "mul", ap2(L, op[0] == 'S' ? "sub" : "add", a, b), sc(L, 0.5, t));
    } else if (strcmp(op, "IsNaN") == 0) {
        r = ap2(L, "ne", x, x);
    } else if (strcmp(op, "Shrink") == 0) {
        double lambd = attr_f(n, "lambd", 0.5), bias = attr_f(n, "bias", 0.0);
        kf_node *lo = ap2(L, "add", x, sc(L, bias, t)), *hi = ap2(L, "sub", x, sc(L, bias, t));
        r = ap3(L, "where", ap2(L, "lt", x, sc(L, -lambd, t)), lo,
                ap3(L, "where", ap2(L, "gt", x, sc(L, lambd, t)), hi, sc(L, 0, t)));
    } else if (strcmp(op, "Gelu") == 0) {
        char buf[32];
        const char *ap = attr_s(n, "approximate", "none", buf, sizeof buf);
        if (strcmp(ap, "none") == 0) r = ap1(L, "gelu", x);
        else if (strcmp(ap, "tanh") == 0) r = ap1(L, "gelu_tanh", x);
        else return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "approximate='%s' is not supported", ap);
    } else {
        KF_ASSERT(0);
    }
    return out_node(L, 0, r);
}

static int h_clip(L_t *L, const N *n, V **in, int nin)
{
    kf_node *x = NODE(in[0]), *lo = NULL, *hi = NULL;
    if (!x) return -1;
    if (L->opset < 11) {
        if (attr(n, "min")) lo = sc(L, attr_f(n, "min", 0), x->dtype);
        if (attr(n, "max")) hi = sc(L, attr_f(n, "max", 0), x->dtype);
    } else {
        if (nin > 1 && in[1]) lo = NODE(in[1]);
        if (nin > 2 && in[2]) hi = NODE(in[2]);
    }
    /* a missing bound clamps at the dtype's range: no clamp at all */
    if (lo) x = ap2(L, "maximum", x, lo);
    if (hi) x = ap2(L, "minimum", x, hi);
    return out_node(L, 0, x);
}

/* ---- matmul, gemm -------------------------------------------------------- */

static int h_matmul(L_t *L, const N *n, V **in, int nin)
{
    (void)n, (void)nin;
    kf_node *a = NODE(in[0]), *b = NODE(in[1]);
    if (!a || !b) return -1;
    if (!kf_dtype_is_float(a->dtype))
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "integer matrix multiply (%s) is not supported",
                           kf_dtype_name(a->dtype));
    return out_node(L, 0, kf_matmul(L->g, a, b));
}

static int h_gemm(L_t *L, const N *n, V **in, int nin)
{
    kf_node *a = NODE(in[0]), *b = NODE(in[1]);
    double alpha = attr_f(n, "alpha", 1.0), beta = attr_f(n, "beta", 1.0);
    if (!a || !b) return -1;
    if (a->ndim != 2 || b->ndim != 2)
        return kf_onnx_err(L, KF_ERR_INVALID, "A and B must be matrices (ranks %d and %d)", a->ndim,
                           b->ndim);
    if (!kf_dtype_is_float(a->dtype))
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "integer Gemm (%s) is not supported",
                           kf_dtype_name(a->dtype));
    if (attr_i(n, "transA", 0)) a = kf_apply(L->g, "transpose", 1, &a, NULL);
    if (attr_i(n, "transB", 0)) b = kf_apply(L->g, "transpose", 1, &b, NULL);
    kf_node *y = kf_matmul(L->g, a, b);
    if (y && alpha != 1.0) y = ap2(L, "mul", y, sc(L, alpha, y->dtype));
    if (y && nin > 2 && in[2] && beta != 0.0) {
        kf_node *c = NODE(in[2]);
        if (beta != 1.0) c = ap2(L, "mul", c, sc(L, beta, c->dtype));
        /* C broadcasts to [M, N] (unidirectionally) */
        y = ap2(L, "add", y, c);
    }
    return out_node(L, 0, y);
}

/* ---- softmax, normalisations, reductions --------------------------------- */

static kf_node *reduce(L_t *L, const char *op, kf_node *x, int naxes, const int64_t *axes, int keep)
{
    kf_attrs at = {0};
    at.naxes = naxes;
    for (int i = 0; i < naxes; i++) at.axes[i] = axes[i];
    at.keepdims = keep;
    return kf_apply(L->g, op, 1, &x, &at);
}

static kf_node *log_softmax(L_t *L, kf_node *x, int64_t ax)
{
    kf_node *m = reduce(L, "max", x, 1, &ax, 1);
    kf_node *d = ap2(L, "sub", x, m);
    kf_node *lse = ap1(L, "log", reduce(L, "sum", ap1(L, "exp", d), 1, &ax, 1));
    return ap2(L, "sub", d, lse);
}

static int h_softmax(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_node *x = NODE(in[0]);
    bool logsm = strcmp(n->op_type, "LogSoftmax") == 0;
    if (!x) return -1;
    if (x->ndim == 0) return kf_onnx_err(L, KF_ERR_INVALID, "the input is a scalar");
    if (L->opset >= 13) {
        int64_t ax = attr_i(n, "axis", -1);
        if (norm_axis(L, &ax, x->ndim, "axis")) return -1;
        if (logsm) return out_node(L, 0, log_softmax(L, x, ax));
        kf_attrs at = {0};
        at.naxes = 1;
        at.axes[0] = ax;
        return out_node(L, 0, kf_apply(L->g, "softmax", 1, &x, &at));
    }
    /* before opset 13: the input is seen as a matrix [prod(:axis), prod(axis:)] */
    int64_t ax = attr_i(n, "axis", 1);
    if (ax < 0) ax += x->ndim;
    if (ax < 0 || ax > x->ndim) return kf_onnx_err(L, KF_ERR_INVALID, "axis is out of range");
    int64_t rows = kf_shape_numel((int)ax, x->shape), cols = kf_shape_numel(x->ndim - (int)ax, x->shape + ax);
    kf_node *m = reshape(L, x, 2, (int64_t[]){rows, cols});
    kf_node *y;
    if (logsm) {
        y = m ? log_softmax(L, m, 1) : NULL;
    } else {
        kf_attrs at = {0};
        at.naxes = 1;
        at.axes[0] = 1;
        y = m ? kf_apply(L->g, "softmax", 1, &m, &at) : NULL;
    }
    return out_node(L, 0, y ? reshape(L, y, x->ndim, x->shape) : NULL);
}

static int h_layernorm(L_t *L, const N *n, V **in, int nin)
{
    kf_node *x = NODE(in[0]), *s = NODE(in[1]);
    kf_node *ins[3] = {x, s, NULL};
    if (!x || !s) return -1;
    int k = 2;
    if (nin > 2 && in[2]) ins[k++] = NODE(in[2]);
    int64_t ax = attr_i(n, "axis", -1);
    if (norm_axis(L, &ax, x->ndim, "axis")) return -1;
    kf_attrs at = {0};
    at.naxes = 1;
    at.axes[0] = ax;
    at.eps = attr_f(n, "epsilon", 1e-5);
    at.has_eps = 1;
    kf_node *out[3] = {0};
    if (kf_apply_multi(L->g, "layer_norm", k, ins, &at, out)) return kf_onnx_builder_err(L);
    for (int i = 0; i < 3; i++)
        if (out_node(L, i, out[i])) return -1;
    return 0;
}

static int param_for_channel(L_t *L, V *v, int rank, kf_node **out)
{
    /* a per-channel vector [C] seen as [C, 1, ..., 1] against [N, C, ...] */
    kf_node *p = NODE(v);
    if (!p) return -1;
    int64_t shape[KF_MAX_DIMS];
    shape[0] = kf_node_numel(p);
    for (int i = 1; i < rank - 1; i++) shape[i] = 1;
    *out = reshape(L, p, rank - 1 > 0 ? rank - 1 : 1, shape);
    return *out ? 0 : kf_onnx_builder_err(L);
}

static int h_batchnorm(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    if (attr_i(n, "training_mode", 0) || n->n_output > 1)
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "training mode is not supported");
    kf_node *x = NODE(in[0]), *s, *b, *m, *v;
    if (!x) return -1;
    if (x->ndim < 2) return kf_onnx_err(L, KF_ERR_INVALID, "the input needs rank >= 2");
    if (param_for_channel(L, in[1], x->ndim, &s) || param_for_channel(L, in[2], x->ndim, &b) ||
        param_for_channel(L, in[3], x->ndim, &m) || param_for_channel(L, in[4], x->ndim, &v))
        return -1;
    double eps = attr_f(n, "epsilon", 1e-5);
    kf_node *r = ap1(L, "rsqrt", ap2(L, "add", v, sc(L, eps, x->dtype)));
    kf_node *y = ap2(L, "add", ap2(L, "mul", ap2(L, "mul", ap2(L, "sub", x, m), r), s), b);
    return out_node(L, 0, y);
}

static int h_instancenorm(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_node *x = NODE(in[0]), *s, *b;
    if (!x) return -1;
    if (x->ndim < 3) return kf_onnx_err(L, KF_ERR_INVALID, "the input needs rank >= 3");
    if (param_for_channel(L, in[1], x->ndim, &s) || param_for_channel(L, in[2], x->ndim, &b))
        return -1;
    int64_t axes[KF_MAX_DIMS];
    int na = 0;
    for (int d = 2; d < x->ndim; d++) axes[na++] = d;
    double eps = attr_f(n, "epsilon", 1e-5);
    kf_node *mean = reduce(L, "mean", x, na, axes, 1);
    kf_node *d = ap2(L, "sub", x, mean);
    kf_node *var = reduce(L, "mean", ap2(L, "mul", d, d), na, axes, 1);
    kf_node *y = ap2(L, "mul", d, ap1(L, "rsqrt", ap2(L, "add", var, sc(L, eps, x->dtype))));
    return out_node(L, 0, ap2(L, "add", ap2(L, "mul", y, s), b));
}

static int h_globalpool(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    if (x->ndim < 3) return kf_onnx_err(L, KF_ERR_INVALID, "the input needs rank >= 3");
    int64_t axes[KF_MAX_DIMS];
    int na = 0;
    for (int d = 2; d < x->ndim; d++) axes[na++] = d;
    return out_node(L, 0, reduce(L, strstr(n->op_type, "Max") ? "max" : "mean", x, na, axes, 1));
}

static int h_reduce(L_t *L, const N *n, V **in, int nin)
{
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    int64_t axes[KF_MAX_DIMS];
    int na = -1;
    if (nin > 1 && in[1]) {
        na = const_ints(L, in[1], "axes", axes, KF_MAX_DIMS);
        if (na < 0) return -1;
    } else {
        na = attr_ints(L, n, "axes", axes, KF_MAX_DIMS);
        if (na == -2) return -1;
    }
    int keep = (int)attr_i(n, "keepdims", 1);
    if (na <= 0) {
        if (attr_i(n, "noop_with_empty_axes", 0)) return out_node(L, 0, x);
        na = 0; /* all axes */
    }
    for (int i = 0; i < na; i++)
        if (norm_axis(L, &axes[i], x->ndim, "axis")) return -1;
    const char *op = n->op_type + 6, *kop;
    kf_node *y;
    if (strcmp(op, "Sum") == 0) kop = "sum";
    else if (strcmp(op, "Mean") == 0) kop = "mean";
    else if (strcmp(op, "Max") == 0) kop = "max";
    else if (strcmp(op, "Min") == 0) kop = "min";
    else kop = NULL;
    if (kop) {
        y = reduce(L, kop, x, na, axes, keep);
    } else if (strcmp(op, "L1") == 0) {
        y = reduce(L, "sum", ap1(L, "abs", x), na, axes, keep);
    } else if (strcmp(op, "L2") == 0) {
        kf_node *s = reduce(L, "sum", ap2(L, "mul", x, x), na, axes, keep);
        y = kf_dtype_is_float(x->dtype) ? ap1(L, "sqrt", s)
                                        : kf_cast(L->g, ap1(L, "sqrt", kf_cast(L->g, s, KF_F64)), x->dtype);
    } else if (strcmp(op, "SumSquare") == 0) {
        y = reduce(L, "sum", ap2(L, "mul", x, x), na, axes, keep);
    } else if (strcmp(op, "LogSum") == 0) {
        y = ap1(L, "log", reduce(L, "sum", x, na, axes, keep));
    } else if (strcmp(op, "LogSumExp") == 0) {
        y = ap1(L, "log", reduce(L, "sum", ap1(L, "exp", x), na, axes, keep));
    } else {
        KF_ASSERT(0);
        y = NULL;
    }
    return out_node(L, 0, y);
}

/* ---- shapes and views ---------------------------------------------------- */

/* Gives the value v the shape (nd, shape): a view of a constant's data, or
 * a reshape node. */
static int out_reshaped(L_t *L, int i, V *v, int nd, const int64_t *shape)
{
    if (is_ct(v)) return out_ct(L, i, ct_view(L, v->c, nd, shape));
    kf_node *x = NODE(v);
    if (!x) return -1;
    bool same = x->ndim == nd;
    for (int d = 0; same && d < nd; d++) same = x->shape[d] == shape[d];
    if (same) return out_node(L, i, x);
    return out_node(L, i, reshape(L, x, nd, shape));
}

static int h_reshape(L_t *L, const N *n, V **in, int nin)
{
    int64_t dims[KF_MAX_DIMS];
    int nd;
    if (nin > 1) {
        if ((nd = const_ints(L, in[1], "shape", dims, KF_MAX_DIMS)) < 0) return -1;
    } else {
        if ((nd = attr_ints(L, n, "shape", dims, KF_MAX_DIMS)) < 0)
            return nd == -2 ? -1 : kf_onnx_err(L, KF_ERR_INVALID, "no shape given");
    }
    int xr = kf_onnx_vndim(in[0]);
    const int64_t *xs = kf_onnx_vshape(in[0]);
    int64_t total = kf_shape_numel(xr, xs), known_ = 1;
    int infer = -1;
    bool allowzero = attr_i(n, "allowzero", 0) != 0;
    for (int i = 0; i < nd; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= xr) return kf_onnx_err(L, KF_ERR_INVALID, "shape[%d] is 0 (copy), but the "
                                            "input has rank %d", i, xr);
            dims[i] = xs[i];
        }
        if (dims[i] == -1) {
            if (infer >= 0) return kf_onnx_err(L, KF_ERR_INVALID, "the shape has two -1 entries");
            infer = i;
        } else if (dims[i] < 0) {
            return kf_onnx_err(L, KF_ERR_INVALID, "shape[%d] is %lld", i, (long long)dims[i]);
        } else {
            if (dims[i] && known_ > (INT64_C(1) << 60) / dims[i])
                return kf_onnx_err(L, KF_ERR_INVALID, "the shape's element count overflows");
            known_ *= dims[i];
        }
    }
    if (infer >= 0) {
        if (known_ == 0 || total % known_)
            return kf_onnx_err(L, KF_ERR_INVALID, "cannot infer the -1 dimension: %lld elements "
                               "do not divide by %lld", (long long)total, (long long)known_);
        dims[infer] = total / known_;
    } else if (known_ != total) {
        return kf_onnx_err(L, KF_ERR_INVALID, "the input has %lld elements, the new shape %lld",
                           (long long)total, (long long)known_);
    }
    return out_reshaped(L, 0, in[0], nd, dims);
}

static int h_flatten(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    int64_t ax = attr_i(n, "axis", 1);
    if (ax < 0) ax += r;
    if (ax < 0 || ax > r) return kf_onnx_err(L, KF_ERR_INVALID, "axis is out of range for rank %d", r);
    int64_t dims[2] = {kf_shape_numel((int)ax, s), kf_shape_numel(r - (int)ax, s + ax)};
    return out_reshaped(L, 0, in[0], 2, dims);
}

static int get_axes(L_t *L, const N *n, V **in, int nin, int64_t *axes)
{
    if (nin > 1 && in[1]) return const_ints(L, in[1], "axes", axes, KF_MAX_DIMS);
    int k = attr_ints(L, n, "axes", axes, KF_MAX_DIMS);
    return k == -2 ? -2 : k;
}

static int h_squeeze(L_t *L, const N *n, V **in, int nin)
{
    int64_t axes[KF_MAX_DIMS];
    int na = get_axes(L, n, in, nin, axes);
    if (na == -2 || (na < 0 && nin > 1 && in[1])) return -1;
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    bool drop[KF_MAX_DIMS] = {0};
    if (na <= 0) {
        for (int d = 0; d < r; d++) drop[d] = s[d] == 1;
    } else {
        for (int i = 0; i < na; i++) {
            if (norm_axis(L, &axes[i], r, "axis")) return -1;
            if (s[axes[i]] != 1)
                return kf_onnx_err(L, KF_ERR_INVALID, "cannot squeeze axis %lld of size %lld",
                                   (long long)axes[i], (long long)s[axes[i]]);
            drop[axes[i]] = true;
        }
    }
    int64_t dims[KF_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < r; d++)
        if (!drop[d]) dims[nd++] = s[d];
    return out_reshaped(L, 0, in[0], nd, dims);
}

static int h_unsqueeze(L_t *L, const N *n, V **in, int nin)
{
    int64_t axes[KF_MAX_DIMS];
    int na = get_axes(L, n, in, nin, axes);
    if (na < 0) return na == -2 || (nin > 1 && in[1]) ? -1 : kf_onnx_err(L, KF_ERR_INVALID, "no axes given");
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    int nd = r + na;
    if (nd > KF_MAX_DIMS)
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "the result has rank %d; kfuse supports %d", nd,
                           KF_MAX_DIMS);
    bool ins[KF_MAX_DIMS] = {0};
    for (int i = 0; i < na; i++) {
        if (norm_axis(L, &axes[i], nd, "axis")) return -1;
        if (ins[axes[i]]) return kf_onnx_err(L, KF_ERR_INVALID, "axis %lld is given twice", (long long)axes[i]);
        ins[axes[i]] = true;
    }
    int64_t dims[KF_MAX_DIMS];
    for (int d = 0, k = 0; d < nd; d++) dims[d] = ins[d] ? 1 : s[k++];
    return out_reshaped(L, 0, in[0], nd, dims);
}

static int h_transpose(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    int r = kf_onnx_vndim(in[0]);
    kf_attrs at = {0};
    int np = attr_ints(L, n, "perm", at.perm, KF_MAX_DIMS);
    if (np == -2) return -1;
    if (np < 0) {
        for (int i = 0; i < r; i++) at.perm[i] = r - 1 - i;
        np = r;
    }
    at.nperm = np;
    if (is_ct(in[0]) && np == r) {
        const C *c = in[0]->c;
        int64_t st[KF_MAX_DIMS], ost[KF_MAX_DIMS], shape[KF_MAX_DIMS];
        bool ok = true, seen[KF_MAX_DIMS] = {0};
        strides_of(r, c->shape, st);
        for (int i = 0; i < r; i++) {
            int64_t p = at.perm[i] < 0 ? at.perm[i] + r : at.perm[i];
            if (p < 0 || p >= r || seen[p]) ok = false;
            else {
                seen[p] = true;
                shape[i] = c->shape[p];
                ost[i] = st[p];
            }
        }
        if (ok && numel(c) <= FOLD_MAX) return out_ct(L, 0, ct_affine(L, c, r, shape, 0, ost));
    }
    kf_node *x = NODE(in[0]);
    return out_node(L, 0, kf_apply(L->g, "transpose", 1, &x, &at));
}

static int h_expand(L_t *L, const N *n, V **in, int nin)
{
    (void)n, (void)nin;
    int64_t dims[KF_MAX_DIMS];
    int nd = const_ints(L, in[1], "shape", dims, KF_MAX_DIMS);
    if (nd < 0) return -1;
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    int64_t out[KF_MAX_DIMS];
    int no;
    if (!kf_shape_broadcast(r, s, nd, dims, &no, out))
        return kf_onnx_err(L, KF_ERR_INVALID, "the input does not broadcast to the shape");
    for (int d = 0; d < no; d++)
        if (out[d] < 0) return kf_onnx_err(L, KF_ERR_INVALID, "negative dimension in the shape");
    if (is_ct(in[0]) && kf_shape_numel(no, out) <= FOLD_MAX) {
        int64_t st[KF_MAX_DIMS];
        bcast_strides(r, s, no, st);
        return out_ct(L, 0, ct_affine(L, in[0]->c, no, out, 0, st));
    }
    kf_node *x = NODE(in[0]);
    kf_attrs at = {0};
    at.nshape = no;
    memcpy(at.shape, out, sizeof out);
    return out_node(L, 0, kf_apply(L->g, "expand", 1, &x, &at));
}

/* Python/ONNX slice clamping for one axis: start and element count. */
static int do_slice(L_t *L, int out, V *x, int k, const int64_t *axes, const int64_t *starts,
                    const int64_t *ends, const int64_t *steps)
{
    int r = kf_onnx_vndim(x);
    const int64_t *s = kf_onnx_vshape(x);
    int64_t st[KF_MAX_DIMS], beg[KF_MAX_DIMS] = {0}, stp[KF_MAX_DIMS], len[KF_MAX_DIMS];
    int64_t endc[KF_MAX_DIMS];
    bool seen[KF_MAX_DIMS] = {0};
    for (int d = 0; d < r; d++) stp[d] = 1, len[d] = s[d], endc[d] = s[d], st[d] = 0;
    for (int i = 0; i < k; i++) {
        int64_t ax = axes[i];
        if (norm_axis(L, &ax, r, "axis")) return -1;
        if (seen[ax]) return kf_onnx_err(L, KF_ERR_INVALID, "axis %lld is given twice", (long long)ax);
        seen[ax] = true;
        if (steps[i] == 0) return kf_onnx_err(L, KF_ERR_INVALID, "a step is 0");
        beg[ax] = starts[i];
        endc[ax] = ends[i];
        stp[ax] = steps[i];
        len[ax] = kf_slice_clamp(s[ax], &beg[ax], &endc[ax], stp[ax]);
    }
    if (is_ct(x) && kf_shape_numel(r, len) <= FOLD_MAX) {
        int64_t is[KF_MAX_DIMS], base = 0;
        strides_of(r, s, is);
        for (int d = 0; d < r; d++) {
            if (len[d] == 0) continue;
            base += beg[d] * is[d];
            st[d] = stp[d] * is[d];
        }
        return out_ct(L, out, ct_affine(L, x->c, r, len, base, st));
    }
    kf_node *y = NODE(x);
    for (int d = 0; d < r && y; d++) {
        if (!seen[d] || (beg[d] == 0 && stp[d] == 1 && len[d] == s[d])) continue;
        kf_attrs at = {0};
        at.naxes = 1;
        at.axes[0] = d;
        at.start = beg[d];
        at.end = endc[d];
        at.step = stp[d];
        y = kf_apply(L->g, "slice", 1, &y, &at);
    }
    return out_node(L, out, y);
}

static int h_slice(L_t *L, const N *n, V **in, int nin)
{
    int64_t starts[KF_MAX_DIMS], ends[KF_MAX_DIMS], axes[KF_MAX_DIMS], steps[KF_MAX_DIMS];
    int k = 0, ke = 0, ka = -1, ks = -1;
    if (L->opset < 10) {
        if ((k = attr_ints(L, n, "starts", starts, KF_MAX_DIMS)) < 0 ||
            (ke = attr_ints(L, n, "ends", ends, KF_MAX_DIMS)) < 0)
            return k == -2 || ke == -2 ? -1 : kf_onnx_err(L, KF_ERR_INVALID, "starts and ends are required");
        if ((ka = attr_ints(L, n, "axes", axes, KF_MAX_DIMS)) == -2) return -1;
    } else {
        if (nin < 3) return kf_onnx_err(L, KF_ERR_INVALID, "starts and ends are required");
        if ((k = const_ints(L, in[1], "starts", starts, KF_MAX_DIMS)) < 0 ||
            (ke = const_ints(L, in[2], "ends", ends, KF_MAX_DIMS)) < 0)
            return -1;
        if (nin > 3 && in[3] && (ka = const_ints(L, in[3], "axes", axes, KF_MAX_DIMS)) < 0) return -1;
        if (nin > 4 && in[4] && (ks = const_ints(L, in[4], "steps", steps, KF_MAX_DIMS)) < 0) return -1;
    }
    if (ke != k || (ka >= 0 && ka != k) || (ks >= 0 && ks != k))
        return kf_onnx_err(L, KF_ERR_INVALID, "starts, ends, axes and steps differ in length");
    if (ka < 0)
        for (int i = 0; i < k; i++) axes[i] = i;
    if (ks < 0)
        for (int i = 0; i < k; i++) steps[i] = 1;
    return do_slice(L, 0, in[0], k, axes, starts, ends, steps);
}

static int h_split(L_t *L, const N *n, V **in, int nin)
{
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    int64_t ax = attr_i(n, "axis", 0);
    if (norm_axis(L, &ax, r, "axis")) return -1;
    int no = (int)n->n_output;
    int64_t sizes[64];
    if (no > 64) return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "more than 64 outputs");
    int k = -1;
    if (nin > 1 && in[1]) k = const_ints(L, in[1], "split", sizes, 64);
    else if ((k = attr_ints(L, n, "split", sizes, 64)) == -2) return -1;
    if (k < 0 && nin > 1 && in[1]) return -1;
    if (k < 0) {
        if (s[ax] % no) return kf_onnx_err(L, KF_ERR_INVALID, "dimension %lld does not split into %d equal parts", (long long)s[ax], no);
        for (int i = 0; i < no; i++) sizes[i] = s[ax] / no;
    } else if (k != no) {
        return kf_onnx_err(L, KF_ERR_INVALID, "split has %d entries for %d outputs", k, no);
    }
    int64_t at = 0;
    for (int i = 0; i < no; i++) {
        int64_t st = at, en = at + sizes[i], one = 1;
        if (do_slice(L, i, in[0], 1, &ax, &st, &en, &one)) return -1;
        at = en;
    }
    if (at != s[ax]) return kf_onnx_err(L, KF_ERR_INVALID, "the split sizes sum to %lld, not %lld", (long long)at, (long long)s[ax]);
    return 0;
}

static int h_concat(L_t *L, const N *n, V **in, int nin)
{
    const Onnx__AttributeProto *a = attr(n, "axis");
    if (!a) return kf_onnx_err(L, KF_ERR_INVALID, "attribute 'axis' is missing");
    int r = kf_onnx_vndim(in[0]);
    int64_t ax = a->i;
    if (norm_axis(L, &ax, r, "axis")) return -1;
    bool all = true;
    int64_t tot = 0;
    for (int i = 0; i < nin; i++) {
        if (!in[i]) return kf_onnx_err(L, KF_ERR_INVALID, "input %d is empty", i);
        all &= is_ct(in[i]);
        if (kf_onnx_vndim(in[i]) != r || kf_onnx_vtype(in[i]) != kf_onnx_vtype(in[0]))
            all = false;
        else tot += kf_shape_numel(r, kf_onnx_vshape(in[i]));
    }
    if (all && tot <= FOLD_MAX) {
        int64_t shape[KF_MAX_DIMS];
        memcpy(shape, in[0]->c->shape, sizeof shape);
        shape[ax] = 0;
        bool ok = true;
        for (int i = 0; i < nin; i++) {
            for (int d = 0; d < r; d++)
                if (d != ax && in[i]->c->shape[d] != shape[d]) ok = false;
            shape[ax] += in[i]->c->shape[ax];
        }
        if (ok) {
            C *o = kf_onnx_ct_new(L, in[0]->c->t, r, shape);
            if (!o) return -1;
            size_t es = kf_dtype_size(o->t);
            int64_t outer = kf_shape_numel((int)ax, shape);
            int64_t inner = kf_shape_numel(r - (int)ax - 1, shape + ax + 1);
            char *dst = o->data;
            for (int64_t i = 0; i < outer; i++)
                for (int k = 0; k < nin; k++) {
                    size_t chunk = (size_t)(in[k]->c->shape[ax] * inner) * es;
                    memcpy(dst, (char *)in[k]->c->data + (size_t)i * chunk, chunk);
                    dst += chunk;
                }
            return out_ct(L, 0, o);
        }
    }
    kf_node *x[64];
    for (int i = 0; i < nin; i++) x[i] = NODE(in[i]);
    if (nin == 1) return out_node(L, 0, x[0]);
    kf_attrs at = {0};
    at.naxes = 1;
    at.axes[0] = ax;
    return out_node(L, 0, kf_apply(L->g, "concat", nin, x, &at));
}

static int h_gather(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    int64_t ax = attr_i(n, "axis", 0);
    if (norm_axis(L, &ax, r, "axis")) return -1;
    if (!known(in[1]))
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "indices computed at run time are not supported "
                           "(kfuse has no gather op; only constant indices are)");
    const C *ic = in[1]->c;
    if (!kf_dtype_is_int(ic->t)) return kf_onnx_err(L, KF_ERR_INVALID, "indices must be integers");
    int64_t ni = numel(ic);
    int nd = r - 1 + ic->ndim;
    if (nd > KF_MAX_DIMS) return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "the result's rank is too large");
    int64_t shape[KF_MAX_DIMS];
    int k = 0;
    for (int d = 0; d < ax; d++) shape[k++] = s[d];
    for (int d = 0; d < ic->ndim; d++) shape[k++] = ic->shape[d];
    for (int d = (int)ax + 1; d < r; d++) shape[k++] = s[d];
    for (int64_t i = 0; i < ni; i++) {
        int64_t v = geti(ic, i);
        if (v < -s[ax] || v >= s[ax])
            return kf_onnx_err(L, KF_ERR_INVALID, "index %lld is out of range for dimension %lld "
                               "of size %lld", (long long)v, (long long)ax, (long long)s[ax]);
    }
    if (is_ct(in[0]) && kf_shape_numel(nd, shape) <= FOLD_MAX) {
        C *o = kf_onnx_ct_new(L, in[0]->c->t, nd, shape);
        if (!o) return -1;
        size_t es = kf_dtype_size(o->t);
        int64_t outer = kf_shape_numel((int)ax, s), inner = kf_shape_numel(r - (int)ax - 1, s + ax + 1);
        char *dst = o->data;
        for (int64_t i = 0; i < outer; i++)
            for (int64_t j = 0; j < ni; j++) {
                int64_t v = geti(ic, j);
                if (v < 0) v += s[ax];
                memcpy(dst, (char *)in[0]->c->data + (size_t)((i * s[ax] + v) * inner) * es,
                       (size_t)inner * es);
                dst += (size_t)inner * es;
            }
        return out_ct(L, 0, o);
    }
    /* constant indices into a graph tensor: slices, concatenated */
    if (ni > 256)
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "%lld constant indices; kfuse composes Gather "
                           "from slices for at most 256", (long long)ni);
    kf_node *x = NODE(in[0]);
    kf_node *parts[256];
    for (int64_t j = 0; j < ni; j++) {
        int64_t v = geti(ic, j);
        if (v < 0) v += s[ax];
        kf_attrs at = {0};
        at.naxes = 1;
        at.axes[0] = ax;
        at.start = v;
        at.end = v + 1;
        at.step = 1;
        if (!(parts[j] = kf_apply(L->g, "slice", 1, &x, &at))) return kf_onnx_builder_err(L);
    }
    kf_node *y;
    if (ni == 0) return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "empty indices are not supported");
    if (ni == 1) y = parts[0];
    else {
        kf_attrs at = {0};
        at.naxes = 1;
        at.axes[0] = ax;
        y = kf_apply(L->g, "concat", (int)ni, parts, &at);
    }
    return out_node(L, 0, y ? reshape(L, y, nd, shape) : NULL);
}

static int h_tile(L_t *L, const N *n, V **in, int nin)
{
    (void)n, (void)nin;
    int64_t rep[KF_MAX_DIMS];
    int k = const_ints(L, in[1], "repeats", rep, KF_MAX_DIMS);
    if (k < 0) return -1;
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    if (k != x->ndim) return kf_onnx_err(L, KF_ERR_INVALID, "repeats has %d entries for rank %d", k, x->ndim);
    for (int d = 0; d < k && x; d++) {
        if (rep[d] < 0 || rep[d] > 64)
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "repeat count %lld (kfuse supports 0 to 64)", (long long)rep[d]);
        if (rep[d] == 1) continue;
        if (rep[d] == 0) return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "a repeat count of 0 is not supported");
        kf_node *parts[64];
        for (int i = 0; i < rep[d]; i++) parts[i] = x;
        kf_attrs at = {0};
        at.naxes = 1;
        at.axes[0] = d;
        x = kf_apply(L->g, "concat", (int)rep[d], parts, &at);
    }
    return out_node(L, 0, x);
}

/* ---- constants and shapes ------------------------------------------------ */

static int h_constant(L_t *L, const N *n, V **in, int nin)
{
    (void)in, (void)nin;
    if (n->n_attribute != 1) return kf_onnx_err(L, KF_ERR_INVALID, "needs exactly one attribute");
    const Onnx__AttributeProto *a = n->attribute[0];
    const char *nm = a->name;
    C *c;
    if (strcmp(nm, "value") == 0) {
        if (!a->t) return kf_onnx_err(L, KF_ERR_INVALID, "attribute 'value' holds no tensor");
        return out_ct(L, 0, kf_onnx_tensor(L, a->t, "attribute 'value'"));
    } else if (strcmp(nm, "value_float") == 0) {
        if (!(c = kf_onnx_ct_new(L, KF_F32, 0, NULL))) return -1;
        ((float *)c->data)[0] = a->f;
    } else if (strcmp(nm, "value_int") == 0) {
        if (!(c = kf_onnx_ct_new(L, KF_I64, 0, NULL))) return -1;
        ((int64_t *)c->data)[0] = a->i;
    } else if (strcmp(nm, "value_floats") == 0) {
        int64_t k = (int64_t)a->n_floats;
        if (!(c = kf_onnx_ct_new(L, KF_F32, 1, &k))) return -1;
        memcpy(c->data, a->floats, sizeof(float) * a->n_floats);
    } else if (strcmp(nm, "value_ints") == 0) {
        int64_t k = (int64_t)a->n_ints;
        if (!(c = kf_onnx_ct_new(L, KF_I64, 1, &k))) return -1;
        memcpy(c->data, a->ints, sizeof(int64_t) * a->n_ints);
    } else {
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "attribute '%s' is not supported", nm);
    }
    return out_ct(L, 0, c);
}

static int h_constantofshape(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    int64_t dims[KF_MAX_DIMS];
    int nd = const_ints(L, in[0], "shape", dims, KF_MAX_DIMS);
    if (nd < 0) return -1;
    int64_t cnt = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 0) return kf_onnx_err(L, KF_ERR_INVALID, "shape[%d] is negative", i);
        if (dims[i] && cnt > (INT64_C(1) << 40) / dims[i])
            return kf_onnx_err(L, KF_ERR_INVALID, "the shape's element count overflows");
        cnt *= dims[i];
    }
    const Onnx__AttributeProto *a = attr(n, "value");
    C *v;
    if (a && a->t) {
        if (!(v = kf_onnx_tensor(L, a->t, "attribute 'value'"))) return -1;
        if (numel(v) != 1) return kf_onnx_err(L, KF_ERR_INVALID, "attribute 'value' must hold one element");
    } else {
        if (!(v = kf_onnx_ct_new(L, KF_F32, 0, NULL))) return -1;
    }
    if (cnt <= FOLD_MAX) {
        C *o = kf_onnx_ct_new(L, v->t, nd, dims);
        if (!o) return -1;
        size_t es = kf_dtype_size(v->t);
        for (int64_t i = 0; i < cnt; i++) memcpy((char *)o->data + (size_t)i * es, v->data, es);
        return out_ct(L, 0, o);
    }
    /* large: the value broadcast, computed by the compiled code */
    V tmp = {.name = n->output[0], .c = ct_view(L, v, 0, NULL)};
    if (!tmp.c) return -1;
    kf_node *s = kf_onnx_node(L, &tmp);
    if (!s) return -1;
    kf_attrs at = {0};
    at.nshape = nd;
    memcpy(at.shape, dims, sizeof dims);
    return out_node(L, 0, kf_apply(L->g, "expand", 1, &s, &at));
}

static int h_shape(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    int64_t st = attr_i(n, "start", 0), en = attr_i(n, "end", r);
    if (st < 0) st += r;
    if (en < 0) en += r;
    st = st < 0 ? 0 : st > r ? r : st;
    en = en < 0 ? 0 : en > r ? r : en;
    int64_t len = en > st ? en - st : 0;
    C *c = kf_onnx_ct_new(L, KF_I64, 1, &len);
    if (!c) return -1;
    for (int64_t i = 0; i < len; i++) ((int64_t *)c->data)[i] = s[st + i];
    return out_ct(L, 0, c);
}

static int h_size(L_t *L, const N *n, V **in, int nin)
{
    (void)n, (void)nin;
    C *c = kf_onnx_ct_new(L, KF_I64, 0, NULL);
    if (!c) return -1;
    ((int64_t *)c->data)[0] = kf_shape_numel(kf_onnx_vndim(in[0]), kf_onnx_vshape(in[0]));
    return out_ct(L, 0, c);
}

static int h_range(L_t *L, const N *n, V **in, int nin)
{
    (void)n, (void)nin;
    for (int i = 0; i < 3; i++)
        if (!known(in[i]) || numel(in[i]->c) != 1)
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "start, limit and delta must be scalars "
                               "known at load time");
    kf_dtype t = in[0]->c->t;
    double s = getd(in[0]->c, 0), l = getd(in[1]->c, 0), d = getd(in[2]->c, 0);
    if (d == 0) return kf_onnx_err(L, KF_ERR_INVALID, "delta is 0");
    double cnt = ceil((l - s) / d);
    if (!(cnt <= FOLD_MAX)) cnt = cnt > 0 ? FOLD_MAX + 1 : 0;
    if (cnt < 0) cnt = 0;
    if (cnt > FOLD_MAX)
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "the range is longer than %d elements", FOLD_MAX);
    int64_t k = (int64_t)cnt;
    C *c = kf_onnx_ct_new(L, t, 1, &k);
    if (!c) return -1;
    if (kf_dtype_is_float(t)) {
        for (int64_t i = 0; i < k; i++) setd(c, i, s + (double)i * d);
    } else {
        int64_t si = geti(in[0]->c, 0), di = geti(in[2]->c, 0);
        for (int64_t i = 0; i < k; i++) seti(c, i, si + i * di);
    }
    return out_ct(L, 0, c);
}

/* ---- more composed ops --------------------------------------------------- */

static double dtype_max(kf_dtype t)
{
    switch (t) {
    case KF_F64: return DBL_MAX;
    case KF_F16: return 65504.0;
    case KF_BF16: return 3.3895313892515355e38;
    default: return FLT_MAX;
    }
}

static int h_isinf(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    if (!kf_dtype_is_float(x->dtype))
        return kf_onnx_err(L, KF_ERR_INVALID, "needs a floating-point input");
    double m = dtype_max(x->dtype);
    bool pos = attr_i(n, "detect_positive", 1) != 0, neg = attr_i(n, "detect_negative", 1) != 0;
    kf_node *p = ap2(L, "gt", x, sc(L, m, x->dtype)), *q = ap2(L, "lt", x, sc(L, -m, x->dtype));
    kf_node *r = pos && neg ? ap2(L, "logical_or", p, q) : pos ? p : neg ? q : ap2(L, "ne", x, x);
    if (!pos && !neg) r = ap2(L, "logical_and", r, ap1(L, "logical_not", r)); /* all false */
    return out_node(L, 0, r);
}

/* round half to even: floor(x + 0.5), less one where that rounded a tie up
 * to an odd number */
static int h_round(L_t *L, const N *n, V **in, int nin)
{
    (void)n, (void)nin;
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    if (!kf_dtype_is_float(x->dtype)) return out_node(L, 0, x);
    kf_dtype t = x->dtype;
    kf_node *r = ap1(L, "floor", ap2(L, "add", x, sc(L, 0.5, t)));
    kf_node *tie = ap2(L, "eq", ap2(L, "sub", r, x), sc(L, 0.5, t));
    kf_node *odd = ap2(L, "ne", ap2(L, "mul", ap1(L, "floor", ap2(L, "mul", r, sc(L, 0.5, t))), sc(L, 2, t)), r);
    return out_node(L, 0, ap3(L, "where", ap2(L, "logical_and", tie, odd), ap2(L, "sub", r, sc(L, 1, t)), r));
}

static int h_mvn(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    int64_t axes[KF_MAX_DIMS] = {0, 2, 3};
    int na = attr_ints(L, n, "axes", axes, KF_MAX_DIMS);
    if (na == -2) return -1;
    if (na < 0) na = 3;
    for (int i = 0; i < na; i++)
        if (norm_axis(L, &axes[i], x->ndim, "axis")) return -1;
    kf_node *mean = reduce(L, "mean", x, na, axes, 1);
    kf_node *d = ap2(L, "sub", x, mean);
    kf_node *var = reduce(L, "mean", ap2(L, "mul", d, d), na, axes, 1);
    kf_node *den = ap2(L, "add", ap1(L, "sqrt", var), sc(L, 1e-9, x->dtype));
    return out_node(L, 0, ap2(L, "div", d, den));
}

static kf_node *transpose(L_t *L, kf_node *x, int np, const int64_t *perm)
{
    kf_attrs at = {0};
    at.nperm = np;
    for (int i = 0; i < np; i++) at.perm[i] = perm[i];
    return kf_apply(L->g, "transpose", 1, &x, &at);
}

static int h_depthspace(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    int64_t b = attr_i(n, "blocksize", 0);
    if (x->ndim != 4 || b <= 0)
        return kf_onnx_err(L, KF_ERR_INVALID, "needs a rank-4 input and a positive blocksize");
    int64_t N_ = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    kf_node *y;
    if (strcmp(n->op_type, "DepthToSpace") == 0) {
        char buf[16];
        const char *mode = attr_s(n, "mode", "DCR", buf, sizeof buf);
        if (C % (b * b)) return kf_onnx_err(L, KF_ERR_INVALID, "channels do not divide by blocksize^2");
        int64_t c = C / (b * b);
        if (strcmp(mode, "DCR") == 0)
            y = transpose(L, reshape(L, x, 6, (int64_t[]){N_, b, b, c, H, W}), 6, (int64_t[]){0, 3, 4, 1, 5, 2});
        else if (strcmp(mode, "CRD") == 0)
            y = transpose(L, reshape(L, x, 6, (int64_t[]){N_, c, b, b, H, W}), 6, (int64_t[]){0, 1, 4, 2, 5, 3});
        else
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
        y = reshape(L, y, 4, (int64_t[]){N_, c, H * b, W * b});
    } else {
        if (H % b || W % b) return kf_onnx_err(L, KF_ERR_INVALID, "H and W do not divide by blocksize");
        y = transpose(L, reshape(L, x, 6, (int64_t[]){N_, C, H / b, b, W / b, b}), 6, (int64_t[]){0, 3, 5, 1, 2, 4});
        y = reshape(L, y, 4, (int64_t[]){N_, C * b * b, H / b, W / b});
    }
    return out_node(L, 0, y);
}

static int h_trilu(L_t *L, const N *n, V **in, int nin)
{
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    int64_t k = 0;
    if (nin > 1 && in[1]) {
        if (!known(in[1]) || numel(in[1]->c) != 1)
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "k must be a scalar known at load time");
        k = geti(in[1]->c, 0);
    }
    if (x->ndim < 2) return kf_onnx_err(L, KF_ERR_INVALID, "needs rank >= 2");
    int64_t R = x->shape[x->ndim - 2], Cc = x->shape[x->ndim - 1];
    if (R * Cc > 16 * FOLD_MAX) return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "the matrix is too large");
    bool upper = attr_i(n, "upper", 1) != 0;
    C *m = kf_onnx_ct_new(L, KF_BOOL, 2, (int64_t[]){R, Cc});
    if (!m) return -1;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < Cc; j++)
            ((uint8_t *)m->data)[i * Cc + j] = upper ? j - i >= k : j - i <= k;
    V tmp = {.name = n->output[0], .c = m};
    kf_node *mn = kf_onnx_node(L, &tmp);
    return out_node(L, 0, ap3(L, "where", mn, x, sc(L, 0, x->dtype)));
}

static int h_eyelike(L_t *L, const N *n, V **in, int nin)
{
    (void)nin;
    int r = kf_onnx_vndim(in[0]);
    const int64_t *s = kf_onnx_vshape(in[0]);
    kf_dtype t = kf_onnx_vtype(in[0]);
    const Onnx__AttributeProto *a = attr(n, "dtype");
    if (a && a->has_i && !kf_onnx_map_dtype((int)a->i, &t))
        return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "dtype %s is not supported", kf_onnx_dtype_name((int)a->i));
    if (r != 2) return kf_onnx_err(L, KF_ERR_INVALID, "needs a rank-2 input");
    if (s[0] * s[1] > 16 * FOLD_MAX) return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "the matrix is too large");
    int64_t k = attr_i(n, "k", 0);
    C *c = kf_onnx_ct_new(L, t, 2, s);
    if (!c) return -1;
    for (int64_t i = 0; i < s[0]; i++)
        if (i + k >= 0 && i + k < s[1]) setd(c, i * s[1] + i + k, 1);
    return out_ct(L, 0, c);
}

static int h_pad(L_t *L, const N *n, V **in, int nin)
{
    kf_node *x = NODE(in[0]);
    if (!x) return -1;
    int r = x->ndim;
    int64_t pads[2 * KF_MAX_DIMS], axes[KF_MAX_DIMS];
    int np;
    double value = 0;
    char buf[32];
    const char *mode = attr_s(n, "mode", "constant", buf, sizeof buf);
    int na = -1;
    if (L->opset < 11) {
        if ((np = attr_ints(L, n, "pads", pads, 2 * KF_MAX_DIMS)) < 0)
            return np == -2 ? -1 : kf_onnx_err(L, KF_ERR_INVALID, "attribute 'pads' is missing");
        value = attr_f(n, "value", 0);
    } else {
        if (nin < 2 || !in[1]) return kf_onnx_err(L, KF_ERR_INVALID, "pads are required");
        if ((np = const_ints(L, in[1], "pads", pads, 2 * KF_MAX_DIMS)) < 0) return -1;
        if (nin > 2 && in[2]) {
            if (!known(in[2]) || numel(in[2]->c) != 1)
                return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "constant_value must be known at load time");
            value = getd(in[2]->c, 0);
        }
        if (nin > 3 && in[3] && (na = const_ints(L, in[3], "axes", axes, KF_MAX_DIMS)) < 0) return -1;
    }
    if (na < 0) {
        na = r;
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    if (np != 2 * na) return kf_onnx_err(L, KF_ERR_INVALID, "pads has %d entries for %d axes", np, na);
    bool cst = strcmp(mode, "constant") == 0, edge = strcmp(mode, "edge") == 0,
         refl = strcmp(mode, "reflect") == 0;
    if (!cst && !edge && !refl) return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
    kf_node *y = x;
    for (int i = 0; i < na && y; i++) {
        int64_t ax = axes[i];
        if (norm_axis(L, &ax, r, "axis")) return -1;
        int64_t pre = pads[i], post = pads[i + na];
        /* negative pads crop */
        if (pre < 0 || post < 0) {
            kf_attrs at = {0};
            at.naxes = 1;
            at.axes[0] = ax;
            at.start = pre < 0 ? -pre : 0;
            at.end = y->shape[ax] - (post < 0 ? -post : 0);
            at.step = 1;
            y = kf_apply(L->g, "slice", 1, &y, &at);
            if (!y) break;
            pre = pre < 0 ? 0 : pre;
            post = post < 0 ? 0 : post;
        }
        if (!pre && !post) continue;
        int64_t dim = y->shape[ax];
        if (refl && (pre >= dim || post >= dim))
            return kf_onnx_err(L, KF_ERR_INVALID, "reflect pads must be smaller than the dimension");
        if (edge && dim == 0) return kf_onnx_err(L, KF_ERR_INVALID, "cannot edge-pad an empty dimension");
        kf_node *parts[3];
        int k = 0;
        for (int side = 0; side < 2; side++) {
            int64_t p = side ? post : pre;
            if (side) parts[k++] = y;
            if (!p) continue;
            kf_node *part;
            kf_attrs at = {0};
            at.nshape = r;
            memcpy(at.shape, y->shape, sizeof at.shape);
            at.shape[ax] = p;
            if (cst) {
                kf_node *v = sc(L, value, y->dtype);
                if (v) v->attr.keepdims = 0;
                part = kf_apply(L->g, "expand", 1, &v, &at);
            } else if (edge) {
                kf_attrs sl = {0};
                sl.naxes = 1;
                sl.axes[0] = ax;
                sl.start = side ? dim - 1 : 0;
                sl.end = sl.start + 1;
                sl.step = 1;
                kf_node *e = kf_apply(L->g, "slice", 1, &y, &sl);
                part = e ? kf_apply(L->g, "expand", 1, &e, &at) : NULL;
            } else {
                kf_attrs sl = {0};
                sl.naxes = 1;
                sl.axes[0] = ax;
                sl.step = -1;
                sl.start = side ? dim - 2 : p;
                sl.end = side ? dim - 2 - p : 0;
                if (sl.end < 0) sl.end = INT64_MIN; /* to before the first element */
                part = kf_apply(L->g, "slice", 1, &y, &sl);
            }
            parts[k++] = part;
        }
        kf_attrs at = {0};
        at.naxes = 1;
        at.axes[0] = ax;
        y = kf_apply(L->g, "concat", k, parts, &at);
    }
    return out_node(L, 0, y);
}

/* ---- the table ----------------------------------------------------------- */

#define ACT "alpha"
static const kf_onnx_opdef ops[] = {
    /* required set */
    {"MatMul", h_matmul, 2, 2, ""},
    {"Gemm", h_gemm, 2, 3, "alpha,beta,transA,transB,broadcast"},
    {"Add", h_simple, 2, 2, "axis,broadcast"},
    {"Sub", h_simple, 2, 2, "axis,broadcast"},
    {"Mul", h_simple, 2, 2, "axis,broadcast"},
    {"Div", h_simple, 2, 2, "axis,broadcast"},
    {"Pow", h_pow, 2, 2, ""},
    {"Neg", h_simple, 1, 1, ""},
    {"Abs", h_simple, 1, 1, ""},
    {"Exp", h_simple, 1, 1, ""},
    {"Log", h_simple, 1, 1, ""},
    {"Sqrt", h_simple, 1, 1, ""},
    {"Reciprocal", h_simple, 1, 1, ""},
    {"Relu", h_simple, 1, 1, ""},
    {"LeakyRelu", h_activation, 1, 1, "alpha"},
    {"Sigmoid", h_simple, 1, 1, ""},
    {"Tanh", h_simple, 1, 1, ""},
    {"Erf", h_simple, 1, 1, ""},
    {"Gelu", h_activation, 1, 1, "approximate"},
    {"Softmax", h_softmax, 1, 1, "axis"},
    {"LogSoftmax", h_softmax, 1, 1, "axis"},
    {"LayerNormalization", h_layernorm, 2, 3, "axis,epsilon,stash_type"},
    {"ReduceSum", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceMean", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceMax", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceMin", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"Where", h_simple, 3, 3, ""},
    {"Equal", h_simple, 2, 2, ""},
    {"Less", h_simple, 2, 2, ""},
    {"Greater", h_simple, 2, 2, ""},
    {"Clip", h_clip, 1, 3, "min,max"},
    {"Cast", h_cast, 1, 1, "to,saturate"},
    {"Identity", h_identity, 1, 1, ""},
    {"Transpose", h_transpose, 1, 1, "perm"},
    {"Reshape", h_reshape, 1, 2, "allowzero,shape"},
    {"Flatten", h_flatten, 1, 1, "axis"},
    {"Squeeze", h_squeeze, 1, 2, "axes"},
    {"Unsqueeze", h_unsqueeze, 1, 2, "axes"},
    {"Expand", h_expand, 2, 2, ""},
    {"Slice", h_slice, 1, 5, "starts,ends,axes"},
    {"Concat", h_concat, 1, 64, "axis"},
    {"Constant", h_constant, 0, 0, "value,value_float,value_floats,value_int,value_ints,value_string,value_strings,sparse_value"},
    {"ConstantOfShape", h_constantofshape, 1, 1, "value"},
    {"Shape", h_shape, 1, 1, "start,end"},
    {"Gather", h_gather, 2, 2, "axis"},
    /* more, composed the same way */
    {"Max", h_variadic, 1, 64, ""},
    {"Min", h_variadic, 1, 64, ""},
    {"Sum", h_variadic, 1, 64, ""},
    {"Mean", h_variadic, 1, 64, ""},
    {"Floor", h_simple, 1, 1, ""},
    {"Ceil", h_simple, 1, 1, ""},
    {"Sin", h_simple, 1, 1, ""},
    {"Cos", h_simple, 1, 1, ""},
    {"Sign", h_simple, 1, 1, ""},
    {"Not", h_simple, 1, 1, ""},
    {"And", h_simple, 2, 2, ""},
    {"Or", h_simple, 2, 2, ""},
    {"Xor", h_simple, 2, 2, ""},
    {"LessOrEqual", h_simple, 2, 2, ""},
    {"GreaterOrEqual", h_simple, 2, 2, ""},
    {"PRelu", h_activation, 2, 2, ""},
    {"Elu", h_activation, 1, 1, ACT},
    {"Selu", h_activation, 1, 1, "alpha,gamma"},
    {"Celu", h_activation, 1, 1, ACT},
    {"ThresholdedRelu", h_activation, 1, 1, ACT},
    {"HardSigmoid", h_activation, 1, 1, "alpha,beta"},
    {"HardSwish", h_activation, 1, 1, ""},
    {"Softplus", h_activation, 1, 1, ""},
    {"Softsign", h_activation, 1, 1, ""},
    {"Mish", h_activation, 1, 1, ""},
    {"Tan", h_activation, 1, 1, ""},
    {"Sinh", h_activation, 1, 1, ""},
    {"Cosh", h_activation, 1, 1, ""},
    {"IsNaN", h_activation, 1, 1, ""},
    {"Shrink", h_activation, 1, 1, "lambd,bias"},
    {"CastLike", h_cast, 2, 2, "saturate"},
    {"Dropout", h_identity, 1, 3, "ratio,seed"},
    {"ReduceL1", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceL2", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceSumSquare", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceLogSum", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceLogSumExp", h_reduce, 1, 2, "axes,keepdims,noop_with_empty_axes"},
    {"GlobalAveragePool", h_globalpool, 1, 1, ""},
    {"GlobalMaxPool", h_globalpool, 1, 1, ""},
    {"BatchNormalization", h_batchnorm, 5, 5, "epsilon,momentum,training_mode,spatial,is_test"},
    {"InstanceNormalization", h_instancenorm, 3, 3, "epsilon"},
    {"Split", h_split, 1, 2, "axis,split,num_outputs"},
    {"Tile", h_tile, 2, 2, ""},
    {"Size", h_size, 1, 1, ""},
    {"Range", h_range, 3, 3, ""},
    {"IsInf", h_isinf, 1, 1, "detect_negative,detect_positive"},
    {"Round", h_round, 1, 1, ""},
    {"MeanVarianceNormalization", h_mvn, 1, 1, "axes"},
    {"DepthToSpace", h_depthspace, 1, 1, "blocksize,mode"},
    {"SpaceToDepth", h_depthspace, 1, 1, "blocksize"},
    {"Trilu", h_trilu, 1, 2, "upper"},
    {"EyeLike", h_eyelike, 1, 1, "dtype,k"},
    {"Pad", h_pad, 1, 4, "mode,pads,value"},
};

const kf_onnx_opdef *kf_onnx_find_op(const char *op_type)
{
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(ops[i].op_type, op_type) == 0) return &ops[i];
    return NULL;
}
