/*
 * graph.c - the graph IR and the builder API.  Op constructors infer and
 * check dtypes and shapes (this is where every user error about the graph is
 * caught, with its place), then append a node; they compute nothing.
 * Composite ops (softmax, layer_norm, rms_norm) are lowered here to
 * reductions and pointwise ops.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kfuse-impl.h"
#include "kfuse_backend.h"

const kf_opinfo kf_ops[KF_NOPS] = {
#define KF_OP(E, name, nin, kind, flags, cexpr, ref) {name, nin, kind, flags, cexpr},
#include "../ops.def"
#undef KF_OP
};

int kf_op_lookup(const char *name)
{
    for (int i = 0; i < KF_NOPS; i++)
        if (strcmp(kf_ops[i].name, name) == 0) return i;
    return -1;
}

static const char *const dtype_names[KF_NDTYPES] = {
    "f64", "f32", "f16", "bf16", "i64", "i32", "i8", "u8", "bool"};
static const size_t dtype_sizes[KF_NDTYPES] = {8, 4, 2, 2, 8, 4, 1, 1, 1};

const char *kf_dtype_name(kf_dtype t)
{
    return (unsigned)t < KF_NDTYPES ? dtype_names[t] : NULL;
}
size_t kf_dtype_size(kf_dtype t)
{
    return (unsigned)t < KF_NDTYPES ? dtype_sizes[t] : 0;
}
int kf_dtype_parse(const char *s, kf_dtype *out)
{
    for (int i = 0; i < KF_NDTYPES; i++)
        if (strcmp(s, dtype_names[i]) == 0) {
            *out = (kf_dtype)i;
            return 1;
        }
    return 0;
}
bool kf_dtype_is_float(kf_dtype t)
{
    return t == KF_F64 || t == KF_F32 || t == KF_F16 || t == KF_BF16;
}
bool kf_dtype_is_int(kf_dtype t)
{
    return t == KF_I64 || t == KF_I32 || t == KF_I8 || t == KF_U8;
}

int64_t kf_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}
int64_t kf_node_numel(const kf_node *n) { return kf_shape_numel(n->ndim, n->shape); }

/* ---- places and errors ---- */

const char *kf_node_label(const kf_node *n, char *buf, size_t bufsz)
{
    if (n->name) return n->name;
    snprintf(buf, bufsz, "%s.%d", kf_ops[n->op].name, n->id);
    return buf;
}

static void shape_str(char *buf, size_t sz, int ndim, const int64_t *s)
{
    size_t o = (size_t)snprintf(buf, sz, "[");
    for (int i = 0; i < ndim && o < sz; i++)
        o += (size_t)snprintf(buf + o, sz - o, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (o < sz) snprintf(buf + o, sz - o, "]");
}

/* An error while building an op: at the graph's current place. */
static void *op_err(kf_graph *g, const char *op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[4000];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g->file)
        return kf_err(g->ctx, KF_ERR_INVALID, "%s:%d:%d: error: %s: %s", g->file, g->line, g->col, op, msg);
    return kf_err(g->ctx, KF_ERR_INVALID, "error: %s: %s", op, msg);
}

/* ---- graph ---- */

kf_graph *kf_graph_new(kf_ctx *ctx)
{
    if (!ctx) return NULL;
    kf_graph *g = kf_malloc(ctx, sizeof *g);
    if (!g) return NULL;
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    kf_arena_init(&g->arena, ctx);
    return g;
}

void kf_graph_free(kf_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->nnodes; i++) kf_free(g->ctx, g->nodes[i]->data);
    kf_free(g->ctx, g->nodes);
    kf_free(g->ctx, g->inputs);
    kf_free(g->ctx, g->outputs);
    kf_arena_free(&g->arena);
    kf_free(g->ctx, g);
}

kf_ctx *kf_graph_ctx(const kf_graph *g) { return g ? g->ctx : NULL; }

void kf_graph_set_loc(kf_graph *g, const char *file, int line, int col)
{
    if (!g) return;
    if (!file) {
        g->file = NULL;
    } else if (!g->file || strcmp(g->file, file) != 0) {
        g->file = kf_arena_strdup(&g->arena, file);
    }
    g->line = line;
    g->col = col;
}

static bool push(kf_ctx *ctx, kf_node ***arr, int *n, int *cap, kf_node *x)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        kf_node **p = kf_realloc(ctx, *arr, sizeof **arr * (size_t)nc);
        if (!p) return false;
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = x;
    return true;
}

static kf_node *new_node(kf_graph *g, kf_op op, kf_dtype t, int ndim,
                         const int64_t *shape, int nin, kf_node *const *in)
{
    kf_node *n = kf_arena_alloc(&g->arena, sizeof *n);
    if (!n) return NULL;
    n->in = kf_arena_alloc(&g->arena, sizeof *n->in * (size_t)(nin ? nin : 1));
    if (!n->in) return NULL;
    n->g = g;
    n->op = op;
    n->dtype = t;
    n->ndim = ndim;
    for (int i = 0; i < ndim; i++) n->shape[i] = shape[i];
    n->nin = nin;
    for (int i = 0; i < nin; i++) n->in[i] = in[i];
    n->file = g->file;
    n->line = g->line;
    n->col = g->col;
    n->input_index = -1;
    n->id = g->nnodes;
    if (!push(g->ctx, &g->nodes, &g->nnodes, &g->cap, n)) return NULL;
    return n;
}

/* Dims must be >= 0 and the element count (in bytes too) must fit. */
static bool check_shape(kf_graph *g, const char *op, kf_dtype t, int ndim,
                        const int64_t *shape)
{
    if (ndim < 0 || ndim > KF_MAX_DIMS)
        return op_err(g, op, "rank %d is out of range (at most %d dims)", ndim, KF_MAX_DIMS), false;
    int64_t n = 1, limit = (INT64_C(1) << 60) / (int64_t)kf_dtype_size(t);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return op_err(g, op, "dimension %d is negative (%lld)", i, (long long)shape[i]), false;
        if (shape[i] && n > limit / shape[i])
            return op_err(g, op, "the element count of the shape overflows"), false;
        n *= shape[i];
    }
    return true;
}

kf_node *kf_input(kf_graph *g, const char *name, kf_dtype t, int ndim,
                  const int64_t *shape)
{
    if (!g) return NULL;
    if (!name || !*name) return op_err(g, "input", "an input needs a name");
    if (!kf_dtype_name(t)) return op_err(g, "input", "bad dtype %d", (int)t);
    if (!check_shape(g, "input", t, ndim, shape)) return NULL;
    for (int i = 0; i < g->ninputs; i++)
        if (strcmp(g->inputs[i]->name, name) == 0)
            return op_err(g, "input", "input '%s' is declared twice", name);
    kf_node *n = new_node(g, KF_OP_INPUT, t, ndim, shape, 0, NULL);
    if (!n) return NULL;
    n->name = kf_arena_strdup(&g->arena, name);
    n->input_index = g->ninputs;
    if (!n->name || !push(g->ctx, &g->inputs, &g->ninputs, &g->capin, n)) return NULL;
    return n;
}

kf_node *kf_constant(kf_graph *g, const char *name, kf_dtype t, int ndim,
                     const int64_t *shape, const void *data)
{
    if (!g) return NULL;
    if (!kf_dtype_name(t)) return op_err(g, "constant", "bad dtype %d", (int)t);
    if (!data) return op_err(g, "constant", "no data");
    if (!check_shape(g, "constant", t, ndim, shape)) return NULL;
    size_t bytes = (size_t)kf_shape_numel(ndim, shape) * kf_dtype_size(t);
    void *copy = kf_malloc(g->ctx, bytes);
    if (!copy) return NULL;
    memcpy(copy, data, bytes);
    kf_node *n = new_node(g, KF_OP_CONST, t, ndim, shape, 0, NULL);
    if (!n) {
        kf_free(g->ctx, copy);
        return NULL;
    }
    n->data = copy;
    if (name) n->name = kf_arena_strdup(&g->arena, name);
    return n;
}

/* A literal keeps attr.keepdims = 1 as its "adopt the other dtype" mark. */
kf_node *kf_scalar(kf_graph *g, double v, kf_dtype t)
{
    if (!g) return NULL;
    if (!kf_dtype_name(t)) return op_err(g, "scalar", "bad dtype %d", (int)t);
    kf_node *n = new_node(g, KF_OP_SCALAR, t, 0, NULL, 0, NULL);
    if (!n) return NULL;
    n->scalar = v;
    n->attr.keepdims = 1;
    return n;
}

static kf_node *retyped_scalar(kf_graph *g, kf_node *lit, kf_dtype t)
{
    if (lit->dtype == t) return lit;
    kf_node *n = new_node(g, KF_OP_SCALAR, t, 0, NULL, 0, NULL);
    if (!n) return NULL;
    double v = lit->scalar;
    if (kf_dtype_is_int(t)) v = trunc(v);
    if (t == KF_BOOL) v = v != 0;
    n->scalar = v;
    return n;
}

static bool is_literal(const kf_node *n)
{
    return n->op == KF_OP_SCALAR && n->attr.keepdims;
}

bool kf_shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b,
                        int *nout, int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}

void kf_node_set_name(kf_node *n, const char *name)
{
    if (!n || !name) return;
    n->name = kf_arena_strdup(&n->g->arena, name);
}

const char *kf_node_name(const kf_node *n) { return n ? n->name : NULL; }
kf_dtype kf_node_dtype(const kf_node *n) { return n->dtype; }
int kf_node_ndim(const kf_node *n) { return n->ndim; }
const int64_t *kf_node_shape(const kf_node *n) { return n->shape; }

static const char *shp(char *buf, size_t sz, const kf_node *n)
{
    shape_str(buf, sz, n->ndim, n->shape);
    return buf;
}

/* Normalises an axis against rank; false if out of range. */
static bool norm_axis(int64_t *ax, int ndim)
{
    if (*ax < -ndim || *ax >= (ndim ? ndim : 1)) return false;
    if (*ax < 0) *ax += ndim;
    return true;
}

static kf_node *apply_pointwise(kf_graph *g, kf_op op, int nin, kf_node **in,
                                const kf_attrs *attrs)
{
    const kf_opinfo *oi = &kf_ops[op];
    char b1[128], b2[128];
    /* literals adopt the dtype of the operands they combine with */
    int first = op == KF_OP_WHERE ? 1 : 0;
    kf_dtype ref = KF_NDTYPES;
    for (int i = first; i < nin; i++)
        if (!is_literal(in[i])) {
            ref = in[i]->dtype;
            break;
        }
    if (ref != KF_NDTYPES)
        for (int i = first; i < nin; i++)
            if (is_literal(in[i]) && !(in[i] = retyped_scalar(g, in[i], ref))) return NULL;
    if (op == KF_OP_WHERE && is_literal(in[0]) && !(in[0] = retyped_scalar(g, in[0], KF_BOOL)))
        return NULL;
    /* dtypes */
    kf_dtype t = in[first]->dtype;
    for (int i = first + 1; i < nin; i++)
        if (in[i]->dtype != t)
            return op_err(g, oi->name, "operand dtypes differ: %s and %s (use cast)",
                          kf_dtype_name(t), kf_dtype_name(in[i]->dtype));
    if (op == KF_OP_WHERE && in[0]->dtype != KF_BOOL)
        return op_err(g, oi->name, "the condition must be bool, not %s",
                      kf_dtype_name(in[0]->dtype));
    if ((oi->flags & KF_F_FLOAT) && !kf_dtype_is_float(t))
        return op_err(g, oi->name, "needs a floating-point operand, not %s", kf_dtype_name(t));
    if ((oi->flags & KF_F_NUMERIC) && t == KF_BOOL)
        return op_err(g, oi->name, "does not take bool operands");
    if ((oi->flags & KF_F_BOOLIN) && t != KF_BOOL)
        return op_err(g, oi->name, "needs bool operands, not %s", kf_dtype_name(t));
    kf_dtype out = t;
    if (oi->flags & KF_F_BOOLOUT) out = KF_BOOL;
    if (op == KF_OP_CAST) {
        if (!attrs || !attrs->has_dtype || !kf_dtype_name(attrs->dtype))
            return op_err(g, oi->name, "needs a dtype attribute");
        out = attrs->dtype;
    }
    /* shapes */
    int nd = in[0]->ndim;
    int64_t shape[KF_MAX_DIMS];
    memcpy(shape, in[0]->shape, sizeof shape);
    for (int i = 1; i < nin; i++) {
        int64_t tmp[KF_MAX_DIMS];
        int nt;
        if (in[i]->ndim > KF_MAX_DIMS || !kf_shape_broadcast(nd, shape, in[i]->ndim, in[i]->shape, &nt, tmp)) {
            shape_str(b1, sizeof b1, nd, shape);
            return op_err(g, oi->name, "shapes %s and %s do not broadcast", b1,
                          shp(b2, sizeof b2, in[i]));
        }
        nd = nt;
        memcpy(shape, tmp, sizeof tmp);
    }
    kf_node *n = new_node(g, op, out, nd, shape, nin, in);
    if (n && attrs) n->attr = *attrs;
    return n;
}

static kf_node *apply_reduce(kf_graph *g, kf_op op, kf_node *x, const kf_attrs *a)
{
    const char *name = kf_ops[op].name;
    if (x->dtype == KF_BOOL) return op_err(g, name, "does not take bool operands");
    kf_attrs at = {0};
    bool mask[KF_MAX_DIMS] = {0};
    if (a && a->naxes > 0) {
        for (int i = 0; i < a->naxes; i++) {
            int64_t ax = a->axes[i];
            if (!norm_axis(&ax, x->ndim) || x->ndim == 0)
                return op_err(g, name, "axis %lld is out of range for rank %d",
                              (long long)a->axes[i], x->ndim);
            if (mask[ax]) return op_err(g, name, "axis %lld is given twice", (long long)a->axes[i]);
            mask[ax] = true;
        }
    } else {
        for (int i = 0; i < x->ndim; i++) mask[i] = true;
    }
    at.keepdims = a ? a->keepdims : 0;
    int64_t shape[KF_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (mask[i]) {
            at.axes[at.naxes++] = i;
            if (at.keepdims) shape[nd++] = 1;
        } else {
            shape[nd++] = x->shape[i];
        }
    }
    if ((op == KF_OP_MAX || op == KF_OP_MIN)) {
        for (int i = 0; i < x->ndim; i++)
            if (mask[i] && x->shape[i] == 0)
                return op_err(g, name, "reduces over an empty dimension");
    }
    kf_node *n = new_node(g, op, x->dtype, nd, shape, 1, &x);
    if (n) n->attr = at;
    return n;
}

bool kf_reduce_has_axis(const kf_node *n, int d)
{
    for (int i = 0; i < n->attr.naxes; i++)
        if (n->attr.axes[i] == d) return true;
    return false;
}

int64_t kf_reduce_count(const kf_node *n)
{
    int64_t c = 1;
    for (int i = 0; i < n->attr.naxes; i++) c *= n->in[0]->shape[n->attr.axes[i]];
    return c;
}

static kf_node *view(kf_graph *g, kf_op op, kf_node *x, int nd, const int64_t *shape,
                     const kf_attrs *at)
{
    kf_node *n = new_node(g, op, x->dtype, nd, shape, 1, &x);
    if (n) n->attr = *at;
    return n;
}

static kf_node *apply_transpose(kf_graph *g, kf_node *x, const kf_attrs *a)
{
    kf_attrs at = {0};
    at.nperm = x->ndim;
    if (a && a->nperm) {
        if (a->nperm != x->ndim)
            return op_err(g, "transpose", "perm has %d entries for a rank-%d tensor", a->nperm, x->ndim);
        bool seen[KF_MAX_DIMS] = {0};
        for (int i = 0; i < x->ndim; i++) {
            int64_t p = a->perm[i];
            if (!norm_axis(&p, x->ndim) || seen[p])
                return op_err(g, "transpose", "perm is not a permutation of 0..%d", x->ndim - 1);
            seen[p] = true;
            at.perm[i] = p;
        }
    } else {
        for (int i = 0; i < x->ndim; i++) at.perm[i] = x->ndim - 1 - i;
    }
    int64_t shape[KF_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[at.perm[i]];
    return view(g, KF_OP_TRANSPOSE, x, x->ndim, shape, &at);
}

kf_node *kf_reshape_to(kf_graph *g, kf_node *x, int nd, const int64_t *dims);
kf_node *kf_reshape_to(kf_graph *g, kf_node *x, int nd, const int64_t *dims)
{
    kf_attrs at = {0};
    if (nd < 0 || nd > KF_MAX_DIMS) return op_err(g, "reshape", "rank %d is out of range", nd);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] == -1) {
            if (infer >= 0) return op_err(g, "reshape", "more than one -1 in the shape");
            infer = i;
        } else if (dims[i] < 0) {
            return op_err(g, "reshape", "dimension %d is negative (%lld)", i, (long long)dims[i]);
        } else {
            if (dims[i] && known > (INT64_C(1) << 60) / dims[i])
                return op_err(g, "reshape", "the element count of the shape overflows");
            known *= dims[i];
        }
    }
    int64_t numel = kf_node_numel(x);
    at.nshape = nd;
    for (int i = 0; i < nd; i++) at.shape[i] = dims[i];
    if (infer >= 0) {
        if (known == 0 || numel % known)
            return op_err(g, "reshape", "cannot infer -1: %lld elements do not divide by %lld",
                          (long long)numel, (long long)known);
        at.shape[infer] = numel / known;
    } else if (known != numel) {
        char b[128];
        return op_err(g, "reshape", "%s has %lld elements, the new shape %lld",
                      shp(b, sizeof b, x), (long long)numel, (long long)known);
    }
    return view(g, KF_OP_RESHAPE, x, nd, at.shape, &at);
}

static kf_node *apply_expand(kf_graph *g, kf_node *x, const kf_attrs *a)
{
    if (!a || a->nshape < 0 || a->nshape > KF_MAX_DIMS)
        return op_err(g, "expand", "needs a shape attribute");
    int64_t shape[KF_MAX_DIMS];
    int nd;
    char b1[128], b2[128];
    if (!kf_shape_broadcast(x->ndim, x->shape, a->nshape, a->shape, &nd, shape)) {
        shape_str(b2, sizeof b2, a->nshape, a->shape);
        return op_err(g, "expand", "%s does not broadcast to %s", shp(b1, sizeof b1, x), b2);
    }
    if (!check_shape(g, "expand", x->dtype, nd, shape)) return NULL;
    kf_attrs at = {0};
    at.nshape = nd;
    memcpy(at.shape, shape, sizeof shape);
    return view(g, KF_OP_EXPAND, x, nd, shape, &at);
}

int64_t kf_slice_clamp(int64_t dim, int64_t *startp, int64_t *endp, int64_t step)
{
    int64_t start = *startp, end = *endp;
    if (start < 0) start += dim;
    if (end < 0 && end != INT64_MIN) end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
    } else {
        start = start < 0 ? -1 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
    }
    *startp = start;
    *endp = end;
    /* start and end are now within [-1, dim]: no overflow below */
    uint64_t ustep = step > 0 ? (uint64_t)step : (uint64_t)0 - (uint64_t)step;
    return step > 0 ? (end > start ? (int64_t)((uint64_t)(end - start - 1) / ustep) + 1 : 0)
                    : (start > end ? (int64_t)((uint64_t)(start - end - 1) / ustep) + 1 : 0);
}

static kf_node *apply_slice(kf_graph *g, kf_node *x, const kf_attrs *a)
{
    kf_attrs at = {0};
    int64_t ax = a && a->naxes ? a->axes[0] : 0;
    if (x->ndim == 0 || !norm_axis(&ax, x->ndim))
        return op_err(g, "slice", "axis %lld is out of range for rank %d", (long long)ax, x->ndim);
    int64_t step = a && a->step ? a->step : 1;
    int64_t dim = x->shape[ax];
    int64_t start = a ? a->start : 0, end = a ? a->end : INT64_MAX;
    if (step < 0 && end == INT64_MAX) end = INT64_MIN; /* "to the end" going down */
    int64_t len = kf_slice_clamp(dim, &start, &end, step);
    at.naxes = 1;
    at.axes[0] = ax;
    at.start = start;
    at.end = end;
    at.step = step;
    int64_t shape[KF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = len;
    return view(g, KF_OP_SLICE, x, x->ndim, shape, &at);
}

static kf_node *apply_concat(kf_graph *g, int nin, kf_node **in, const kf_attrs *a)
{
    if (nin < 1) return op_err(g, "concat", "needs at least one operand");
    kf_node *x = in[0];
    int64_t ax = a && a->naxes ? a->axes[0] : 0;
    if (x->ndim == 0 || !norm_axis(&ax, x->ndim))
        return op_err(g, "concat", "axis %lld is out of range for rank %d", (long long)ax, x->ndim);
    int64_t shape[KF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = 0;
    for (int i = 0; i < nin; i++) {
        if (in[i]->dtype != x->dtype)
            return op_err(g, "concat", "operand dtypes differ: %s and %s",
                          kf_dtype_name(x->dtype), kf_dtype_name(in[i]->dtype));
        if (in[i]->ndim != x->ndim)
            return op_err(g, "concat", "operand ranks differ: %d and %d", x->ndim, in[i]->ndim);
        for (int d = 0; d < x->ndim; d++)
            if (d != ax && in[i]->shape[d] != x->shape[d]) {
                char b1[128], b2[128];
                return op_err(g, "concat", "shapes %s and %s differ off the axis",
                              shp(b1, sizeof b1, x), shp(b2, sizeof b2, in[i]));
            }
        shape[ax] += in[i]->shape[ax];
    }
    kf_node *n = new_node(g, KF_OP_CONCAT, x->dtype, x->ndim, shape, nin, in);
    if (n) {
        n->attr.naxes = 1;
        n->attr.axes[0] = ax;
    }
    return n;
}

static kf_node *apply_matmul(kf_graph *g, kf_node *a, kf_node *b)
{
    char b1[128], b2[128];
    if (a->dtype != b->dtype)
        return op_err(g, "matmul", "operand dtypes differ: %s and %s (use cast)",
                      kf_dtype_name(a->dtype), kf_dtype_name(b->dtype));
    if (!kf_dtype_is_float(a->dtype))
        return op_err(g, "matmul", "needs floating-point operands, not %s", kf_dtype_name(a->dtype));
    if (a->ndim == 0 || b->ndim == 0) return op_err(g, "matmul", "operands must have rank >= 1");
    kf_node *a2 = a, *b2n = b;
    if (a->ndim == 1 && !(a2 = kf_reshape_to(g, a, 2, (int64_t[]){1, a->shape[0]}))) return NULL;
    if (b->ndim == 1 && !(b2n = kf_reshape_to(g, b, 2, (int64_t[]){b->shape[0], 1}))) return NULL;
    int64_t M = a2->shape[a2->ndim - 2], K = a2->shape[a2->ndim - 1];
    int64_t K2 = b2n->shape[b2n->ndim - 2], N = b2n->shape[b2n->ndim - 1];
    if (K != K2)
        return op_err(g, "matmul", "inner dimensions differ: %s @ %s", shp(b1, sizeof b1, a),
                      shp(b2, sizeof b2, b));
    int64_t batch[KF_MAX_DIMS];
    int nb;
    if (!kf_shape_broadcast(a2->ndim - 2, a2->shape, b2n->ndim - 2, b2n->shape, &nb, batch))
        return op_err(g, "matmul", "batch dimensions of %s and %s do not broadcast",
                      shp(b1, sizeof b1, a), shp(b2, sizeof b2, b));
    if (nb + 2 > KF_MAX_DIMS) return op_err(g, "matmul", "rank is too large");
    batch[nb] = M;
    batch[nb + 1] = N;
    if (!check_shape(g, "matmul", a->dtype, nb + 2, batch)) return NULL;
    kf_node *ins[2] = {a2, b2n};
    kf_node *n = new_node(g, KF_OP_MATMUL, a->dtype, nb + 2, batch, 2, ins);
    if (!n) return NULL;
    if (a->ndim == 1 || b->ndim == 1) {
        int64_t out[KF_MAX_DIMS];
        int nd = 0;
        for (int i = 0; i < nb; i++) out[nd++] = batch[i];
        if (a->ndim != 1) out[nd++] = M;
        if (b->ndim != 1) out[nd++] = N;
        return kf_reshape_to(g, n, nd, out);
    }
    return n;
}

/* ---- composites ---- */

static kf_node *op1(kf_graph *g, kf_op op, kf_node *x)
{
    return x ? apply_pointwise(g, op, 1, &x, NULL) : NULL;
}
static kf_node *op2(kf_graph *g, kf_op op, kf_node *x, kf_node *y)
{
    if (!x || !y) return NULL;
    kf_node *in[2] = {x, y};
    return apply_pointwise(g, op, 2, in, NULL);
}
static kf_node *reduce_tail(kf_graph *g, kf_op op, kf_node *x, int from)
{
    if (!x) return NULL;
    kf_attrs at = {0};
    for (int d = from; d < x->ndim; d++) at.axes[at.naxes++] = d;
    at.keepdims = 1;
    return apply_reduce(g, op, x, &at);
}

static int composite_axis(kf_graph *g, const char *op, kf_node *x, const kf_attrs *a)
{
    int64_t ax = a && a->naxes ? a->axes[0] : -1;
    if (x->ndim == 0 || !norm_axis(&ax, x->ndim))
        return op_err(g, op, "axis %lld is out of range for rank %d", (long long)ax, x->ndim), -1;
    return (int)ax;
}

static kf_node *apply_softmax(kf_graph *g, kf_node *x, const kf_attrs *a)
{
    int ax = composite_axis(g, "softmax", x, a);
    if (ax < 0) return NULL;
    kf_attrs at = {.naxes = 1, .axes = {ax}, .keepdims = 1};
    kf_node *m = apply_reduce(g, KF_OP_MAX, x, &at);
    kf_node *e = op1(g, KF_OP_EXP, op2(g, KF_OP_SUB, x, m));
    kf_node *s = e ? apply_reduce(g, KF_OP_SUM, e, &at) : NULL;
    return op2(g, KF_OP_DIV, e, s);
}

/* Normalisation over dims [axis, rank): ONNX LayerNormalization. */
static int apply_layer_norm(kf_graph *g, kf_node **in, int nin, const kf_attrs *a,
                            kf_node **out)
{
    kf_node *x = in[0];
    int ax = composite_axis(g, "layer_norm", x, a);
    if (ax < 0) return -1;
    double eps = a && a->has_eps ? a->eps : 1e-5;
    kf_node *epsn = kf_scalar(g, eps, x->dtype);
    kf_node *mean = reduce_tail(g, KF_OP_MEAN, x, ax);
    kf_node *d = op2(g, KF_OP_SUB, x, mean);
    kf_node *var = reduce_tail(g, KF_OP_MEAN, op2(g, KF_OP_MUL, d, d), ax);
    kf_node *rstd = op1(g, KF_OP_RSQRT, op2(g, KF_OP_ADD, var, epsn));
    kf_node *y = op2(g, KF_OP_MUL, op2(g, KF_OP_MUL, d, rstd), in[1]);
    if (nin > 2) y = op2(g, KF_OP_ADD, y, in[2]);
    if (!y) return -1;
    out[0] = y;
    out[1] = mean;
    out[2] = rstd;
    return 0;
}

static kf_node *apply_rms_norm(kf_graph *g, kf_node **in, const kf_attrs *a)
{
    kf_node *x = in[0];
    int ax = composite_axis(g, "rms_norm", x, a);
    if (ax < 0) return NULL;
    double eps = a && a->has_eps ? a->eps : 1e-6;
    kf_node *ms = reduce_tail(g, KF_OP_MEAN, op2(g, KF_OP_MUL, x, x), ax);
    kf_node *r = op1(g, KF_OP_RSQRT, op2(g, KF_OP_ADD, ms, kf_scalar(g, eps, x->dtype)));
    return op2(g, KF_OP_MUL, op2(g, KF_OP_MUL, x, r), in[1]);
}

/* ---- external templates ---- */

void kf_tensor_desc_of(const kf_node *n, kf_tensor_desc *d, char *label, size_t labelsz)
{
    memset(d, 0, sizeof *d);
    d->name = kf_node_label(n, label, labelsz);
    d->dtype = n->dtype;
    d->ndim = n->ndim;
    int64_t st = 1;
    for (int i = n->ndim - 1; i >= 0; i--) {
        d->shape[i] = n->shape[i];
        d->strides[i] = st;
        st *= n->shape[i];
    }
}

/* Would e's backend implement it on dev?  The query is the builder's. */
static bool still_implements(kf_graph *g, const kf_node *e, kf_device dev)
{
    kf_tensor_desc ind[3], outd[3];
    char lb[6][64];
    int nres = 0;
    if (e->nin > 3 || e->nresults > 3) return true;
    for (int i = 0; i < e->nin; i++) kf_tensor_desc_of(e->in[i], &ind[i], lb[i], sizeof lb[i]);
    for (int i = e->id + 1; i < g->nnodes && nres < e->nresults; i++) {
        const kf_node *r = g->nodes[i];
        if (r->op != KF_OP_RESULT || r->in[0] != e || r->attr.start < 0 || r->attr.start >= e->nresults) continue;
        kf_tensor_desc_of(r, &outd[r->attr.start], lb[3 + r->attr.start], sizeof lb[3 + r->attr.start]);
        nres++;
    }
    kf_op_query q = {e->ext_op, &e->attr, dev, e->nin, ind, nres, outd};
    return e->backend->implements(e->backend->ctx, &q) != 0;
}

static int log_edge(kf_graph *g, kf_edge_log **log, int *nlog, int *cap, kf_node **at)
{
    if (*nlog == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        kf_edge_log *l = kf_realloc(g->ctx, *log, sizeof *l * (size_t)nc);
        if (!l) return -1;
        *log = l;
        *cap = nc;
    }
    (*log)[(*nlog)++] = (kf_edge_log){at, *at};
    *at = (*at)->ref;
    return 0;
}

int kf_graph_lower_declined(kf_graph *g, kf_device dev, kf_edge_log **log, int *nlog)
{
    *log = NULL;
    *nlog = 0;
    int cap = 0, ndeclined = 0;
    char *declined = NULL;
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *e = g->nodes[i];
        if (e->op != KF_OP_EXTERN || still_implements(g, e, dev)) continue;
        if (!declined && !(declined = kf_malloc(g->ctx, (size_t)g->nnodes))) return -1;
        if (!ndeclined) memset(declined, 0, (size_t)g->nnodes);
        declined[i] = 1;
        ndeclined++;
    }
    if (!ndeclined) return 0;
#define KF_DECLINED(x) ((x)->op == KF_OP_RESULT && (x)->ref && declined[(x)->in[0]->id])
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        for (int j = 0; j < n->nin; j++)
            if (KF_DECLINED(n->in[j]) && log_edge(g, log, nlog, &cap, &n->in[j])) goto fail;
    }
    for (int j = 0; j < g->noutputs; j++)
        if (KF_DECLINED(g->outputs[j]) && log_edge(g, log, nlog, &cap, &g->outputs[j])) goto fail;
#undef KF_DECLINED
    kf_free(g->ctx, declined);
    return ndeclined;
fail:
    kf_graph_restore_edges(*log, *nlog);
    kf_free(g->ctx, *log);
    kf_free(g->ctx, declined);
    *log = NULL;
    *nlog = 0;
    return -1;
}

void kf_graph_restore_edges(kf_edge_log *log, int nlog)
{
    for (int i = nlog - 1; i >= 0; i--) *log[i].at = log[i].was;
}

/* A composite is lowered to kfuse's own ops first (the reference), then
 * offered to the backends; one that claims it gets an extern node whose
 * results stand in for the lowered ones, which stay behind, unused, as the
 * interpreter's oracle. */
static int apply_composite(kf_graph *g, kf_op op, kf_node **in, int nin, const kf_attrs *attrs,
                           kf_node **out)
{
    kf_node *x = in[0];
    int ax = composite_axis(g, kf_ops[op].name, x, attrs);
    if (ax < 0) return -1;
    int nres = op == KF_OP_LAYER_NORM ? 3 : 1;
    kf_node *low[3] = {0};
    if (op == KF_OP_LAYER_NORM) {
        if (apply_layer_norm(g, in, nin, attrs, low)) return -1;
    } else if (!(low[0] = op == KF_OP_SOFTMAX ? apply_softmax(g, x, attrs) : apply_rms_norm(g, in, attrs))) {
        return -1;
    }
    for (int i = 0; i < nres; i++) out[i] = low[i];
    kf_ctx *ctx = g->ctx;
    if (!ctx->nbackends) return 0;
    kf_attrs at = attrs ? *attrs : (kf_attrs){0};
    at.naxes = 1;
    at.axes[0] = ax;
    if (!at.has_eps) at.eps = op == KF_OP_RMS_NORM ? 1e-6 : 1e-5;
    at.has_eps = 1;
    kf_tensor_desc ind[3], outd[3];
    char lb[6][64];
    for (int i = 0; i < nin; i++) kf_tensor_desc_of(in[i], &ind[i], lb[i], sizeof lb[i]);
    for (int i = 0; i < nres; i++) kf_tensor_desc_of(low[i], &outd[i], lb[3 + i], sizeof lb[3 + i]);
    kf_op_query q = {kf_ops[op].name, &at, KF_DEVICE_CPU, nin, ind, nres, outd};
    for (int b = 0; b < ctx->nbackends; b++) {
        const kf_backend *be = ctx->backends[b];
        if (!be->implements || !be->implements(be->ctx, &q)) continue;
        kf_node *e = new_node(g, KF_OP_EXTERN, x->dtype, 0, NULL, nin, in);
        if (!e) return -1;
        e->attr = at;
        e->backend = be;
        e->ext_op = kf_ops[op].name;
        e->nresults = nres;
        for (int i = 0; i < nres; i++) {
            kf_node *r = new_node(g, KF_OP_RESULT, low[i]->dtype, low[i]->ndim, low[i]->shape, 1, &e);
            if (!r) return -1;
            r->attr.start = i;
            r->ref = low[i];
            out[i] = r;
        }
        break;
    }
    return 0;
}

/* ---- the generic entry ---- */

int kf_op_arity(const char *op)
{
    int o = kf_op_lookup(op);
    if (o < 0 || kf_ops[o].kind == KF_K_LEAF || o == KF_OP_COPY) return 0;
    return kf_ops[o].nin;
}

int kf_op_nresults(const char *op)
{
    int o = kf_op_lookup(op);
    if (o < 0 || kf_ops[o].kind == KF_K_LEAF || o == KF_OP_COPY) return 0;
    return o == KF_OP_LAYER_NORM ? 3 : 1;
}

int kf_apply_multi(kf_graph *g, const char *opname, int nin, kf_node *const *inp,
                   const kf_attrs *attrs, kf_node **out)
{
    if (!g) return -1;
    int o = kf_op_lookup(opname);
    if (o < 0 || kf_ops[o].kind == KF_K_LEAF || o == KF_OP_COPY)
        return op_err(g, opname, "unknown op '%s'", opname), -1;
    kf_op op = (kf_op)o;
    const kf_opinfo *oi = &kf_ops[op];
    bool arity_ok = oi->nin < 0 ? nin >= 1 : nin == oi->nin;
    if (op == KF_OP_LAYER_NORM) arity_ok = nin == 2 || nin == 3;
    if (!arity_ok)
        return op_err(g, opname, "takes %d operand%s, %d given", oi->nin, oi->nin == 1 ? "" : "s", nin), -1;
    kf_node *in[64];
    if (nin > 64) return op_err(g, opname, "too many operands (%d)", nin), -1;
    for (int i = 0; i < nin; i++) {
        if (!inp[i]) return -1; /* an earlier error */
        in[i] = inp[i];
    }
    /* a literal standing alone as the data operand of a non-pointwise op */
    if (oi->kind != KF_K_POINTWISE)
        for (int i = 0; i < nin; i++)
            if (is_literal(in[i]) && !(in[i] = retyped_scalar(g, in[i], nin > 1 && i == 0 ? in[1]->dtype : in[0]->dtype)))
                return -1;
    if (oi->kind != KF_K_POINTWISE && oi->kind != KF_K_VIEW && (oi->flags & KF_F_FLOAT))
        for (int i = 0; i < nin; i++)
            if (!kf_dtype_is_float(in[i]->dtype))
                return op_err(g, opname, "needs floating-point operands, not %s",
                              kf_dtype_name(in[i]->dtype)), -1;
    if (oi->kind == KF_K_COMPOSITE) return apply_composite(g, op, in, nin, attrs, out);
    kf_node *r = NULL;
    switch (oi->kind) {
    case KF_K_POINTWISE: r = apply_pointwise(g, op, nin, in, attrs); break;
    case KF_K_REDUCE: r = apply_reduce(g, op, in[0], attrs); break;
    case KF_K_MATMUL: r = apply_matmul(g, in[0], in[1]); break;
    case KF_K_VIEW:
        switch (op) {
        case KF_OP_TRANSPOSE: r = apply_transpose(g, in[0], attrs); break;
        case KF_OP_RESHAPE:
            if (!attrs) return op_err(g, opname, "needs a shape attribute"), -1;
            r = kf_reshape_to(g, in[0], attrs->nshape, attrs->shape);
            break;
        case KF_OP_EXPAND: r = apply_expand(g, in[0], attrs); break;
        case KF_OP_SLICE: r = apply_slice(g, in[0], attrs); break;
        case KF_OP_CONCAT: r = apply_concat(g, nin, in, attrs); break;
        default: KF_ASSERT(0);
        }
        break;
    default: KF_ASSERT(0);
    }
    if (!r) return -1;
    out[0] = r;
    return 0;
}

kf_node *kf_apply(kf_graph *g, const char *op, int nin, kf_node *const *in,
                  const kf_attrs *attrs)
{
    kf_node *out[3] = {0};
    if (!g) return NULL;
    if (kf_op_nresults(op) > 1) {
        /* the first result, when the caller wants only that */
        if (kf_apply_multi(g, op, nin, in, attrs, out)) return NULL;
        return out[0];
    }
    if (kf_apply_multi(g, op, nin, in, attrs, out)) return NULL;
    return out[0];
}

kf_node *kf_unary(kf_graph *g, const char *op, kf_node *x)
{
    return kf_apply(g, op, 1, &x, NULL);
}
kf_node *kf_binary(kf_graph *g, const char *op, kf_node *a, kf_node *b)
{
    kf_node *in[2] = {a, b};
    return kf_apply(g, op, 2, in, NULL);
}
kf_node *kf_matmul(kf_graph *g, kf_node *a, kf_node *b)
{
    return kf_binary(g, "matmul", a, b);
}
kf_node *kf_cast(kf_graph *g, kf_node *x, kf_dtype t)
{
    kf_attrs at = {0};
    at.dtype = t;
    at.has_dtype = 1;
    return kf_apply(g, "cast", 1, &x, &at);
}

/* Outputs are realised buffers of their own: an input, a constant, a view
 * or a node already listed gets a copy. */
int kf_output(kf_graph *g, kf_node *n)
{
    if (!g || !n) return -1;
    bool listed = false;
    for (int i = 0; i < g->noutputs; i++) listed |= g->outputs[i] == n;
    int kind = kf_ops[n->op].kind;
    if (listed || kind == KF_K_LEAF || kind == KF_K_VIEW) {
        kf_node *c = new_node(g, KF_OP_COPY, n->dtype, n->ndim, n->shape, 1, &n);
        if (!c) return -1;
        c->name = n->name;
        n = c;
    }
    return push(g->ctx, &g->outputs, &g->noutputs, &g->capout, n) ? 0 : -1;
}

int kf_graph_num_inputs(const kf_graph *g) { return g->ninputs; }
int kf_graph_num_outputs(const kf_graph *g) { return g->noutputs; }
kf_node *kf_graph_input(const kf_graph *g, int i)
{
    return i >= 0 && i < g->ninputs ? g->inputs[i] : NULL;
}
kf_node *kf_graph_output(const kf_graph *g, int i)
{
    return i >= 0 && i < g->noutputs ? g->outputs[i] : NULL;
}

int kf_graph_verify(kf_graph *g)
{
    if (g->noutputs == 0) {
        if (g->file)
            kf_err(g->ctx, KF_ERR_INVALID, "%s:%d:%d: error: the graph has no output",
                   g->file, g->line, g->col);
        else
            kf_err(g->ctx, KF_ERR_INVALID, "error: the graph has no output");
        return -1;
    }
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        KF_ASSERT(n->id == i);
        KF_ASSERT(n->ndim >= 0 && n->ndim <= KF_MAX_DIMS);
        for (int j = 0; j < n->nin; j++) KF_ASSERT(n->in[j] && n->in[j]->id < n->id);
        KF_ASSERT(kf_ops[n->op].kind != KF_K_COMPOSITE);
    }
    return 0;
}

void kf_graph_dump(const kf_graph *g, FILE *f, const char *after)
{
    fprintf(f, "# graph after %s: %d nodes\n", after, g->nnodes);
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        char lb[64], sb[160];
        shape_str(sb, sizeof sb, n->ndim, n->shape);
        fprintf(f, "  %%%d %s : %s%s = %s(", n->id, kf_node_label(n, lb, sizeof lb),
                kf_dtype_name(n->dtype), sb, kf_ops[n->op].name);
        for (int j = 0; j < n->nin; j++) fprintf(f, "%s%%%d", j ? ", " : "", n->in[j]->id);
        if (n->op == KF_OP_SCALAR) fprintf(f, "%g", n->scalar);
        fprintf(f, ")\n");
    }
    for (int i = 0; i < g->noutputs; i++) fprintf(f, "  output %%%d\n", g->outputs[i]->id);
}
