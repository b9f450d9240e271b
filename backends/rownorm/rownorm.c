/*
 * rownorm.c - an external template backend for kfuse: row-wise softmax,
 * layer_norm and rms_norm on the CPU and on CUDA, with a kernel generator
 * of its own.
 *
 * It sits at the template step of codegen: kfuse asks implements() about each
 * node while building the graph, and for every node claimed hands fuse() a
 * fusion spec.  fuse() writes C that treats the tensor as rows x cols (cols:
 * the product of dims [axis, rank)), runs the rows in parallel and makes one
 * pass over memory per row: the row is read once (through the input's
 * prologue hook when it has one) into a per-thread buffer, its statistics are
 * computed from that buffer, and every output element goes out once (through
 * the output's epilogue hook when it has one).  Every hook is accepted.
 *
 * The generated source relies only on kfuse's prelude (kf_h2f, kf_exp_f,
 * KF_RESTRICT, omp.h) and on the hooks pasted above it.  For CUDA the same
 * passes run in a __device__ ENTRY over a warp's or a block's share of each
 * row (rn_gen_cuda, below), with the same expressions for hooks, loads and
 * stores.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse_backend.h"

enum { RN_SOFTMAX, RN_LAYER_NORM, RN_RMS_NORM };

/* Rows of at most this many bytes (of the compute type) are cached on the
 * stack; longer ones in a per-thread heap buffer. */
#define RN_STACK_BYTES 32768
/* At most this many buffers are prefetched, rows of at most this many
 * bytes. */
#define RN_MAX_PREFETCH 8
#define RN_PREFETCH_ROW_BYTES 65536
/* Below this many elements the kernel runs on one thread. */
#define RN_PARALLEL_MIN 32768

static void rn_err(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || !errsz) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* ---- what the backend claims ---- */

static int rn_op_kind(const char *op)
{
    if (!op) return -1;
    if (!strcmp(op, "softmax")) return RN_SOFTMAX;
    if (!strcmp(op, "layer_norm")) return RN_LAYER_NORM;
    if (!strcmp(op, "rms_norm")) return RN_RMS_NORM;
    return -1;
}

static int rn_axis(const kf_attrs *a, int rank)
{
    int64_t ax = a && a->naxes > 0 ? a->axes[0] : -1;
    if (ax < 0) ax += rank;
    return ax >= 0 && ax < rank ? (int)ax : -1;
}

static double rn_eps(int kind, const kf_attrs *a)
{
    if (a && a->has_eps) return a->eps;
    return kind == RN_LAYER_NORM ? 1e-5 : 1e-6; /* kfuse's defaults */
}

static int rn_dtype_ok(kf_dtype t)
{
    return t == KF_F32 || t == KF_F16 || t == KF_BF16 || t == KF_F64;
}

/* t, right-aligned against x, has each dim 1 or equal to x's. */
static int rn_broadcasts(const kf_tensor_desc *t, const kf_tensor_desc *x)
{
    if (t->ndim < 0 || t->ndim > x->ndim) return 0;
    for (int k = 0; k < t->ndim; k++) {
        int64_t d = t->shape[k], xd = x->shape[x->ndim - t->ndim + k];
        if (d != 1 && d != xd) return 0;
    }
    return 1;
}

/* The op kind when the node is one this backend runs, else -1 with the
 * reason in why.  Shared by implements() and fuse(). */
static int rn_check(const char *op, const kf_attrs *attrs, kf_device dev, int nin,
                    const kf_tensor_desc *in, int nout, const kf_tensor_desc *out, char *why,
                    size_t whysz)
{
    int kind = rn_op_kind(op);
    if (kind < 0) return rn_err(why, whysz, "rownorm: op '%s' is not implemented", op ? op : "(null)"), -1;
    if (dev != KF_DEVICE_CPU && dev != KF_DEVICE_CUDA) return rn_err(why, whysz, "rownorm: unknown device"), -1;
    int inmin = kind == RN_SOFTMAX ? 1 : 2, inmax = kind == RN_LAYER_NORM ? 3 : inmin;
    int outmax = kind == RN_LAYER_NORM ? 3 : 1;
    if (nin < inmin || nin > inmax || nout < 1 || nout > outmax || !in || !out)
        return rn_err(why, whysz, "rownorm: %s with %d inputs and %d outputs", op, nin, nout), -1;
    const kf_tensor_desc *x = &in[0];
    if (!rn_dtype_ok(x->dtype)) return rn_err(why, whysz, "rownorm: %s: unsupported dtype", op), -1;
    if (x->ndim < 1 || x->ndim > KF_MAX_DIMS) return rn_err(why, whysz, "rownorm: %s: rank %d", op, x->ndim), -1;
    int axis = rn_axis(attrs, x->ndim);
    if (axis < 0) return rn_err(why, whysz, "rownorm: %s: axis out of range", op), -1;
    if (kind == RN_SOFTMAX && axis != x->ndim - 1)
        return rn_err(why, whysz, "rownorm: softmax only along the last axis"), -1;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] <= 0) return rn_err(why, whysz, "rownorm: %s: empty tensor", op), -1;
    for (int i = 1; i < nin; i++) {
        if (in[i].dtype != x->dtype) return rn_err(why, whysz, "rownorm: %s: mixed dtypes", op), -1;
        if (!rn_broadcasts(&in[i], x))
            return rn_err(why, whysz, "rownorm: %s: input %d does not broadcast to x", op, i), -1;
    }
    for (int o = 0; o < nout; o++) {
        const kf_tensor_desc *t = &out[o];
        if (t->dtype != x->dtype) return rn_err(why, whysz, "rownorm: %s: mixed dtypes", op), -1;
        int ok = t->ndim == x->ndim;
        for (int d = 0; ok && d < x->ndim; d++)
            ok = t->shape[d] == (o == 0 || d < axis ? x->shape[d] : 1);
        if (!ok) return rn_err(why, whysz, "rownorm: %s: output %d has an unexpected shape", op, o), -1;
    }
    return kind;
}

static int rn_implements(void *ctx, const kf_op_query *q)
{
    (void)ctx;
    if (!q) return 0;
    return rn_check(q->op, q->attrs, q->device, q->ninputs, q->inputs, q->noutputs, q->outputs, NULL, 0) >= 0;
}

/* ---- a small emitter ---- */

typedef struct rn_emit {
    char *s;
    size_t n, cap;
    int ind;
    int oom;
} rn_emit;

static void rn_vput(rn_emit *e, const char *fmt, va_list ap)
{
    if (e->oom) return;
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0) {
        e->oom = 1;
        return;
    }
    if (e->n + (size_t)len + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 4096;
        while (cap < e->n + (size_t)len + 1) cap *= 2;
        char *s = realloc(e->s, cap);
        if (!s) {
            e->oom = 1;
            return;
        }
        e->s = s;
        e->cap = cap;
    }
    vsnprintf(e->s + e->n, (size_t)len + 1, fmt, ap);
    e->n += (size_t)len;
}

static void rn_put(rn_emit *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rn_vput(e, fmt, ap);
    va_end(ap);
}

/* One line at the current indentation; "{" at its end opens a level, a
 * leading "}" closes one. */
static void rn_line(rn_emit *e, const char *fmt, ...)
{
    if (fmt[0] == '}') e->ind--;
    if (fmt[0] != '#')
        for (int i = 0; i < e->ind; i++) rn_put(e, "    ");
    va_list ap;
    va_start(ap, fmt);
    rn_vput(e, fmt, ap);
    va_end(ap);
    rn_put(e, "\n");
    size_t l = strlen(fmt);
    if (l && fmt[l - 1] == '{') e->ind++;
}

/* ---- the generator ---- */

typedef struct rn_gen {
    const kf_fusion_spec *s;
    rn_emit e;
    int kind, rank, axis, ncols_dims;
    int64_t rows, cols;
    kf_dtype dt;
    const char *T;          /* compute type */
    int pro[3], epi[3];     /* per input / output: its hook, or -1 */
    const kf_tensor_desc *in_t[3], *out_t[3]; /* what direct accesses address */
    int cached;             /* emitting the cached-row variant */
    /* buffers laid out like x, whose next row is prefetched while this one
     * is computed: index, element size, 1 when written */
    int npf, pf_buf[RN_MAX_PREFETCH], pf_es[RN_MAX_PREFETCH], pf_rw[RN_MAX_PREFETCH];
    int grp, kcols;         /* CUDA: threads per row, columns per thread */
    int64_t grid, block;    /* the launch: blocks, threads (CPU: rows, 1) */
    char *err;
    size_t errsz;
} rn_gen;

static const char *rn_storage(kf_dtype t)
{
    return t == KF_F64 ? "double" : t == KF_F32 ? "float" : "uint16_t";
}

static const char *rn_load_fn(kf_dtype t)
{
    return t == KF_F16 ? "kf_h2f" : t == KF_BF16 ? "kf_bf2f" : "";
}

static const char *rn_store_fn(kf_dtype t)
{
    return t == KF_F16 ? "kf_f2h" : t == KF_BF16 ? "kf_f2bf" : "";
}

static int rn_ident(const char *s)
{
    if (!s || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

/* A small string builder for expressions (hook names are short identifiers,
 * so a fixed size that is checked is enough). */
typedef struct rn_str {
    char s[1024];
    size_t n;
    int over;
} rn_str;

static void rn_cat(rn_str *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof b->s - b->n) {
        b->over = 1;
        b->n = sizeof b->s - 1;
    } else {
        b->n += (size_t)len;
    }
}

/* The index of x's dim j as a C expression: i<j> for a row dim, t<j-axis>
 * for a normalised one. */
static void rn_cat_var(rn_str *b, const rn_gen *g, int j)
{
    if (j < g->axis) rn_cat(b, "i%d", j);
    else rn_cat(b, "t%d", j - g->axis);
}

/* ", i0, t0, 0, ...": t's index at the current element (t right-aligned
 * against x; its size-1 dims index 0). */
static void rn_cat_index(rn_str *b, const rn_gen *g, const kf_tensor_desc *t)
{
    const kf_tensor_desc *x = &g->s->inputs[0];
    for (int k = 0; k < t->ndim; k++) {
        int j = x->ndim - t->ndim + k;
        rn_cat(b, ", ");
        if (t->shape[k] == 1) rn_cat(b, "0");
        else rn_cat_var(b, g, j);
    }
}

/* t's element offset, from its row dims (row = 1) or its normalised dims. */
static void rn_cat_offset(rn_str *b, const rn_gen *g, const kf_tensor_desc *t, int row)
{
    const kf_tensor_desc *x = &g->s->inputs[0];
    int any = 0;
    for (int k = 0; k < t->ndim; k++) {
        int j = x->ndim - t->ndim + k;
        if (t->shape[k] == 1 || (j < g->axis) != row) continue;
        rn_cat(b, any ? " + " : "");
        rn_cat_var(b, g, j);
        if (t->strides[k] != 1) rn_cat(b, " * INT64_C(%" PRId64 ")", t->strides[k]);
        any = 1;
    }
    if (!any) rn_cat(b, "0");
}

/* Input i's value at the current element, in the compute type. */
static void rn_cat_input(rn_str *b, const rn_gen *g, int i)
{
    if (g->pro[i] >= 0) {
        rn_cat(b, "%s((void **)B", g->s->prologues[g->pro[i]].fn);
        rn_cat_index(b, g, &g->s->inputs[i]);
        rn_cat(b, ")");
        return;
    }
    rn_cat(b, "%s(in%d[rin%d + ", rn_load_fn(g->dt), i, i);
    rn_cat_offset(b, g, g->in_t[i], 0);
    rn_cat(b, "])");
}

/* The statement that produces output o's element from the value v. */
static void rn_store(rn_gen *g, int o, const char *v)
{
    rn_str b = {0};
    if (g->epi[o] >= 0) {
        rn_cat(&b, "%s((void **)B", g->s->epilogues[g->epi[o]].fn);
        rn_cat_index(&b, g, &g->s->outputs[o]);
        rn_cat(&b, ", %s);", v);
    } else {
        rn_cat(&b, "out%d[rout%d + ", o, o);
        rn_cat_offset(&b, g, g->out_t[o], 0);
        rn_cat(&b, "] = %s(%s);", rn_store_fn(g->dt), v);
    }
    if (b.over) g->e.oom = 1;
    rn_line(&g->e, "%s", b.s);
}

/* Opens the loops over the normalised dims (the innermost with `simd`
 * clauses) and defines c, the column; rn_close_cols closes them. */
static void rn_open_cols(rn_gen *g, const char *clauses)
{
    const kf_tensor_desc *x = &g->s->inputs[0];
    int m = g->ncols_dims;
    for (int l = 0; l < m; l++) {
        int64_t d = x->shape[g->axis + l];
        if (l == m - 1) rn_line(&g->e, "#pragma omp simd%s", clauses);
        rn_line(&g->e, "for (int64_t t%d = 0; t%d < INT64_C(%" PRId64 "); t%d++) {", l, l, d, l);
        if (!g->cached) continue; /* only the cached row needs the column */
        if (l < m - 1) {
            int64_t next = x->shape[g->axis + l + 1];
            if (l == 0) rn_line(&g->e, "const int64_t c0 = t0 * INT64_C(%" PRId64 ");", next);
            else rn_line(&g->e, "const int64_t c%d = (c%d + t%d) * INT64_C(%" PRId64 ");", l, l - 1, l, next);
        } else if (m == 1) {
            rn_line(&g->e, "const int64_t c = t0;");
        } else {
            rn_line(&g->e, "const int64_t c = c%d + t%d;", m - 2, m - 1);
        }
    }
}

static void rn_close_cols(rn_gen *g)
{
    for (int l = 0; l < g->ncols_dims; l++) rn_line(&g->e, "}");
}

/* exp for x <= 0 (softmax's x - max); below -87.34, and NaN, give 0 (the
 * max propagates NaN, so a row with one is all NaN through 0 * (1 / 0)).
 * The prelude's kf_exp_f does not vectorise under the JIT's flags:
 * __builtin_roundf is a libm call without -ffast-math, and GCC threads its
 * clamp and range tests into branches around the (trapping) float
 * arithmetic, which if-conversion then cannot undo.  Here rounding is the
 * 1.5 * 2^23 trick, the clamp an unsigned min on the bits (for x <= 0 a
 * larger pattern is a more negative value) and the range tests masks:
 * nothing branches.  Guarded: a unit may hold several rownorm kernels. */
static const char rn_exp_f[] =
    "#ifndef KF_RN_EXPNEG_F\n"
    "#define KF_RN_EXPNEG_F\n"
    "KF_INLINE float kf_rn_expneg_f(float x)\n"
    "{\n"
    "    uint32_t u = kf_fbits(x);\n"
    "    u = u > 0xc2aeac50u ? 0xc2aeac50u : u; /* -87.33654475f */\n"
    "    const float c = kf_bitsf(u);\n"
    "    const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;\n"
    "    float r = c - n * 0.693359375f;\n"
    "    r = r + n * 2.12194440e-4f;\n"
    "    float p = 1.9875691500e-4f;\n"
    "    p = p * r + 1.3981999507e-3f;\n"
    "    p = p * r + 8.3334519073e-3f;\n"
    "    p = p * r + 4.1665795894e-2f;\n"
    "    p = p * r + 1.6666665459e-1f;\n"
    "    p = p * r + 5.0000001201e-1f;\n"
    "    p = p * r * r + r + 1.0f;\n"
    "    const float y = p * kf_bitsf((uint32_t)((int32_t)n + 127) << 23);\n"
    "    return kf_bitsf(kf_fbits(y) & (0u - (uint32_t)(x >= -87.33654475f)));\n"
    "}\n"
    "#endif\n";

/* acc = the sum ('+') or max ('M') of val over the cached row, val computed
 * after stmt, both written in terms of the column j.  Partial results in
 * lanes of the compute type keep the dependency chains short (the compiler
 * may not reassociate a plain reduction); sums go to double block by block,
 * so a long row loses no precision. */
static void rn_reduce(rn_gen *g, int op, const char *acc, const char *stmt, const char *val, int prefetch)
{
    rn_emit *e = &g->e;
    const char *T = g->T;
    int L = g->dt == KF_F64 ? 16 : 32;
    int lanes = g->cols >= L; /* else the lanes would be dead code */
    const char *init = op == '+' ? "0" : "-INFINITY";
    char into_a[256], into_t[256];
    if (op == '+') {
        snprintf(into_a, sizeof into_a, "a[l] += %s;", val);
        snprintf(into_t, sizeof into_t, "t += %s;", val);
    } else { /* a max that propagates NaN */
        snprintf(into_a, sizeof into_a, "a[l] = (%s > a[l] || %s != %s) ? %s : a[l];", val, val, val, val);
        snprintf(into_t, sizeof into_t, "t = (%s > t || %s != %s) ? %s : t;", val, val, val, val);
    }
    rn_line(e, "%s %s = %s;", op == '+' ? "double" : T, acc, init);
    rn_line(e, "for (int64_t cb = 0; cb < INT64_C(%" PRId64 "); cb += 512) {", g->cols);
    rn_line(e, "const int64_t ce = cb + 512 < INT64_C(%" PRId64 ") ? cb + 512 : INT64_C(%" PRId64 ");", g->cols,
            g->cols);
    rn_line(e, "int64_t c = cb;");
    if (lanes) {
        rn_line(e, "%s a[%d];", T, L);
        rn_line(e, "for (int l = 0; l < %d; l++) a[l] = %s;", L, init);
        rn_line(e, "for (; c + %d <= ce; c += %d) {", L, L);
        for (int k = 0; prefetch && k < g->npf; k++)
            for (int off = 0; off < L * g->pf_es[k]; off += 64)
                rn_line(e, "__builtin_prefetch((const char *)B[%d] + pf * INT64_C(%" PRId64 ") + c * %d + %d, %d, 3);",
                        g->pf_buf[k], g->cols * g->pf_es[k], g->pf_es[k], off, g->pf_rw[k]);
        rn_line(e, "#pragma omp simd");
        rn_line(e, "for (int l = 0; l < %d; l++) {", L);
        rn_line(e, "const int64_t j = c + l;");
        if (stmt) rn_line(e, "%s", stmt);
        rn_line(e, "%s", into_a);
        rn_line(e, "}");
        rn_line(e, "}");
    }
    rn_line(e, "%s t = %s;", T, init);
    rn_line(e, "for (; c < ce; c++) {");
    rn_line(e, "const int64_t j = c;");
    if (stmt) rn_line(e, "%s", stmt);
    rn_line(e, "%s", into_t);
    rn_line(e, "}");
    if (lanes && op == '+') rn_line(e, "for (int l = 0; l < %d; l++) t += a[l];", L);
    if (lanes && op != '+') rn_line(e, "for (int l = 0; l < %d; l++) t = (a[l] > t || a[l] != a[l]) ? a[l] : t;", L);
    if (op == '+') rn_line(e, "%s += t;", acc);
    else rn_line(e, "%s = (t > %s || t != t) ? t : %s;", acc, acc, acc);
    rn_line(e, "}");
}

/* The lines both targets write alike, from the row's sums (s, q; double on
 * the CPU, the compute type on the GPU): the mean, the scale (layer_norm's
 * rstd, rms_norm's rs), and the normalised value v of element V. */
static void rn_mean_line(rn_gen *g)
{
    rn_line(&g->e, "const %s mean = (%s)(s / %" PRId64 ".0);", g->T, g->T, g->cols);
}

static void rn_scale_line(rn_gen *g)
{
    rn_line(&g->e, "const %s %s = (%s)(1.0 / sqrt(q / %" PRId64 ".0 + %.17g));", g->T,
            g->kind == RN_LAYER_NORM ? "rstd" : "rs", g->T, g->cols, rn_eps(g->kind, g->s->attrs));
}

/* w and b: the inputs' expressions at the element (rn_cat_input) */
static void rn_value_line(rn_gen *g, const char *V, const rn_str *w, const rn_str *b)
{
    if (g->kind == RN_LAYER_NORM)
        rn_line(&g->e, "const %s v = (%s - mean) * rstd * %s%s%s;", g->T, V, w->s, g->s->ninputs > 2 ? " + " : "",
                b->s);
    else
        rn_line(&g->e, "const %s v = %s * rs * %s;", g->T, V, w->s);
}

/* The body of one row.  Cached: read the row into xr (through the prologue
 * when there is one), reduce over xr, write the outputs.  Uncached (the
 * per-thread buffer could not be allocated): every pass re-reads the input. */
/* q, the sum of squares of the row's values X less `center` (" - mean", or
 * ""); then rstd and every normalised value, weighted (w, bias), stored. */
static void rn_squares_normalize(rn_gen *g, const char *X, const char *center, const rn_str *w, const rn_str *bias)
{
    rn_emit *e = &g->e;
    const char *T = g->T;
    if (g->cached) {
        char line[160];
        snprintf(line, sizeof line, "const %s d = xr[j]%s;", T, center);
        rn_reduce(g, '+', "q", line, "d * d", 1);
    } else {
        rn_line(e, "double q = 0;");
        rn_open_cols(g, " reduction(+:q)");
        rn_line(e, "const %s d = %s%s;", T, X, center);
        rn_line(e, "q += d * d;");
        rn_close_cols(g);
    }
    rn_scale_line(g);
    rn_open_cols(g, "");
    rn_value_line(g, g->cached ? "xr[c]" : X, w, bias);
    rn_store(g, 0, "v");
    rn_close_cols(g);
}

static void rn_row(rn_gen *g)
{
    rn_emit *e = &g->e;
    const char *T = g->T;
    int dbl = g->dt == KF_F64;
    const char *exp_fn = dbl ? "exp" : "kf_rn_expneg_f";
    char line[256];
    rn_str x = {0};
    rn_cat_input(&x, g, 0);
    const char *X = x.s;
    if (x.over) e->oom = 1;
    if (g->cached) {
        rn_open_cols(g, "");
        rn_line(e, "xr[c] = %s;", X);
        rn_close_cols(g);
    }

    if (g->kind == RN_SOFTMAX) {
        if (g->cached) {
            rn_reduce(g, 'M', "mx", NULL, "xr[j]", 0);
            snprintf(line, sizeof line, "const %s v = %s(xr[j] - mx); xr[j] = v;", T, exp_fn);
            rn_reduce(g, '+', "s", line, "v", 1);
        } else {
            rn_line(e, "%s mx = -INFINITY;", T);
            rn_open_cols(g, " reduction(max:mx)");
            rn_line(e, "const %s v = %s;", T, X);
            rn_line(e, "mx = v > mx ? v : mx;");
            rn_close_cols(g);
            rn_line(e, "double s = 0;");
            rn_open_cols(g, " reduction(+:s)");
            rn_line(e, "s += %s(%s - mx);", exp_fn, X);
            rn_close_cols(g);
        }
        rn_line(e, "const %s inv = (%s)(1.0 / s);", T, T);
        rn_open_cols(g, "");
        if (g->cached) rn_line(e, "const %s v = xr[c] * inv;", T);
        else rn_line(e, "const %s v = %s(%s - mx) * inv;", T, exp_fn, X);
        rn_store(g, 0, "v");
        rn_close_cols(g);
        return;
    }

    rn_str w = {0}, bias = {0};
    rn_cat_input(&w, g, 1);
    if (g->s->ninputs > 2) rn_cat_input(&bias, g, 2);
    if (w.over || bias.over) e->oom = 1;
    if (g->kind == RN_LAYER_NORM) {
        if (g->cached) {
            rn_reduce(g, '+', "s", NULL, "xr[j]", 0);
        } else {
            rn_line(e, "double s = 0;");
            rn_open_cols(g, " reduction(+:s)");
            rn_line(e, "s += %s;", X);
            rn_close_cols(g);
        }
        rn_mean_line(g);
        rn_squares_normalize(g, X, " - mean", &w, &bias);
        if (g->s->noutputs > 1) rn_store(g, 1, "mean");
        if (g->s->noutputs > 2) rn_store(g, 2, "rstd");
        return;
    }
    rn_squares_normalize(g, X, "", &w, &bias);
}

/* Checks the spec's hooks and buffers; fills g->pro, g->epi, g->in_t, g->out_t. */
static int rn_check_spec(rn_gen *g)
{
    const kf_fusion_spec *s = g->s;
    char *err = g->err;
    size_t errsz = g->errsz;
    if (s->nepilogues < 0 || s->nepilogues > 32 || s->nprologues < 0 || s->nprologues > 32)
        return rn_err(err, errsz, "rownorm: too many hooks"), -1;
    if (s->nbuffers < 0 || (s->nbuffers > 0 && !s->buffers)) return rn_err(err, errsz, "rownorm: bad buffer list"), -1;
    if (!s->input_buffer || !s->output_buffer) return rn_err(err, errsz, "rownorm: spec without buffer maps"), -1;
    for (int i = 0; i < 3; i++) g->pro[i] = g->epi[i] = -1;
    for (int h = 0; h < s->nprologues + s->nepilogues; h++) {
        int epi = h >= s->nprologues;
        const kf_hook *k = epi ? &s->epilogues[h - s->nprologues] : &s->prologues[h];
        int n = epi ? s->noutputs : s->ninputs, *slot = epi ? g->epi : g->pro;
        const char *what = epi ? "epilogue" : "prologue";
        if (k->target < 0 || k->target >= n) return rn_err(err, errsz, "rownorm: %s target %d", what, k->target), -1;
        if (slot[k->target] >= 0)
            return rn_err(err, errsz, "rownorm: two %ss on %s %d", what, epi ? "output" : "input", k->target), -1;
        if (!rn_ident(k->fn)) return rn_err(err, errsz, "rownorm: %s name is not an identifier", what), -1;
        for (int b = 0; b < k->nbuffers + k->nsources + k->nstores; b++) {
            int idx = b < k->nbuffers ? k->buffers[b]
                    : b < k->nbuffers + k->nsources ? k->sources[b - k->nbuffers]
                    : k->store_buffer[b - k->nbuffers - k->nsources];
            if (idx < 0 || idx >= s->nbuffers) return rn_err(err, errsz, "rownorm: %s buffer %d", what, idx), -1;
        }
        slot[k->target] = epi ? h - s->nprologues : h;
    }
    for (int io = 0; io < s->ninputs + s->noutputs; io++) {
        int out = io >= s->ninputs, i = out ? io - s->ninputs : io;
        int buf = out ? s->output_buffer[i] : s->input_buffer[i];
        const kf_tensor_desc *t = out ? &s->outputs[i] : &s->inputs[i];
        const kf_tensor_desc **bt = out ? &g->out_t[i] : &g->in_t[i];
        int hooked = out ? g->epi[i] >= 0 : g->pro[i] >= 0;
        *bt = NULL;
        if (buf < -1 || buf >= s->nbuffers)
            return rn_err(err, errsz, "rownorm: %s %d: buffer %d", out ? "output" : "input", i, buf), -1;
        if (buf < 0) {
            if (!hooked)
                return rn_err(err, errsz, "rownorm: %s %d has neither a buffer nor a hook",
                              out ? "output" : "input", i), -1;
            continue;
        }
        const kf_tensor_desc *b = &s->buffers[buf].t;
        int same = b->dtype == t->dtype && b->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = b->shape[d] == t->shape[d];
        if (!same)
            return rn_err(err, errsz, "rownorm: %s %d: its buffer's dtype or shape differs",
                          out ? "output" : "input", i), -1;
        if (!hooked) *bt = b; /* direct accesses use the buffer's strides */
    }
    return 0;
}

static size_t rn_elsize(kf_dtype t)
{
    switch (t) {
    case KF_F64: case KF_I64: return 8;
    case KF_F32: case KF_I32: return 4;
    case KF_F16: case KF_BF16: return 2;
    default: return 1;
    }
}

/* Buffer k has x's shape, contiguous: row r is the bytes [r, r + 1) *
 * cols * size, which may be prefetched a row ahead. */
static int rn_like_x(const rn_gen *g, int k)
{
    const kf_tensor_desc *x = &g->s->inputs[0], *t = &g->s->buffers[k].t;
    if (t->ndim != x->ndim || (uint64_t)g->cols * rn_elsize(t->dtype) > RN_PREFETCH_ROW_BYTES) return 0;
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != x->shape[d] || (t->shape[d] != 1 && t->strides[d] != st)) return 0;
        st *= t->shape[d];
    }
    return 1;
}

/* Which buffers the kernel and its hooks touch, in index order. */
static int *rn_args(const kf_fusion_spec *s, int *nargs)
{
    char *used = calloc((size_t)s->nbuffers + 1, 1);
    int *args = malloc(sizeof(int) * ((size_t)s->nbuffers + 1));
    if (!used || !args) {
        free(used);
        free(args);
        return NULL;
    }
    for (int i = 0; i < s->ninputs; i++)
        if (s->input_buffer[i] >= 0) used[s->input_buffer[i]] = 1;
    for (int o = 0; o < s->noutputs; o++)
        if (s->output_buffer[o] >= 0) used[s->output_buffer[o]] = 1;
    for (int h = 0; h < s->nprologues + s->nepilogues; h++) {
        const kf_hook *k = h < s->nprologues ? &s->prologues[h] : &s->epilogues[h - s->nprologues];
        for (int b = 0; b < k->nbuffers; b++) used[k->buffers[b]] = 1;
        for (int b = 0; b < k->nsources; b++) used[k->sources[b]] = 1;
        for (int b = 0; b < k->nstores; b++) used[k->store_buffer[b]] = 1;
    }
    int n = 0;
    for (int b = 0; b < s->nbuffers; b++)
        if (used[b]) args[n++] = b;
    free(used);
    *nargs = n;
    return args;
}

/* The buffer table B (indexed like spec->buffers) from args, and the
 * pointers of the inputs and outputs read and written directly. */
static void rn_table(rn_gen *g, const int *args, int nargs)
{
    const kf_fusion_spec *s = g->s;
    rn_emit *e = &g->e;
    /* const, so that the compiler sees the hooks' base pointers as loop
     * invariants and vectorises their loads as contiguous ones */
    rn_line(e, "void *const B[%d] = {", s->nbuffers);
    for (int b = 0, a = 0; b < s->nbuffers; b++) {
        if (a < nargs && args[a] == b) rn_line(e, "args[%d],", a++);
        else rn_line(e, "0,");
    }
    rn_line(e, "};");
    const char *st = rn_storage(g->dt);
    for (int i = 0; i < s->ninputs; i++)
        if (g->pro[i] < 0)
            rn_line(e, "const %s *KF_RESTRICT in%d = (const %s *)B[%d];", st, i, st, s->input_buffer[i]);
    for (int o = 0; o < s->noutputs; o++)
        if (g->epi[o] < 0) rn_line(e, "%s *KF_RESTRICT out%d = (%s *)B[%d];", st, o, st, s->output_buffer[o]);
}

/* Splits the flat index `from` over x's dims [d0, d0 + n) into the
 * variables PFX0 .. PFX{n-1} (through a copy named `from` twice). */
static void rn_split(rn_gen *g, const char *from, const char *pfx, int d0, int n)
{
    const kf_tensor_desc *x = &g->s->inputs[0];
    if (n <= 0) return;
    rn_line(&g->e, "int64_t %s%s = %s;", from, from, from);
    for (int j = n - 1; j > 0; j--) {
        rn_line(&g->e, "const int64_t %s%d = %s%s %% INT64_C(%" PRId64 ");", pfx, j, from, from, x->shape[d0 + j]);
        rn_line(&g->e, "%s%s /= INT64_C(%" PRId64 ");", from, from, x->shape[d0 + j]);
    }
    rn_line(&g->e, "const int64_t %s0 = %s%s;", pfx, from, from);
}

/* Row r's index i0 .. i{axis-1} and the row offsets of the direct accesses. */
static void rn_row_index(rn_gen *g)
{
    const kf_fusion_spec *s = g->s;
    rn_split(g, "r", "i", 0, g->axis);
    for (int io = 0; io < s->ninputs + s->noutputs; io++) {
        int o = io >= s->ninputs, i = o ? io - s->ninputs : io;
        const kf_tensor_desc *t = o ? g->out_t[i] : g->in_t[i];
        if (!t) continue;
        rn_str b = {0};
        rn_cat_offset(&b, g, t, 1);
        if (b.over) g->e.oom = 1;
        rn_line(&g->e, "const int64_t r%s%d = %s;", o ? "out" : "in", i, b.s);
    }
}

/* The CPU kernel: rows in an OpenMP loop, each cached in a per-thread
 * buffer (rn_row). */
static void rn_gen_c(rn_gen *g, const int *args, int nargs)
{
    const kf_fusion_spec *s = g->s;
    size_t elsz = g->dt == KF_F64 ? 8 : 4;
    int lanes = g->cols >= (g->dt == KF_F64 ? 16 : 32); /* rn_reduce prefetches from its lanes */
    for (int a = 0; lanes && a < nargs && g->npf < RN_MAX_PREFETCH; a++)
        if (rn_like_x(g, args[a])) {
            const kf_buffer_desc *b = &s->buffers[args[a]];
            g->pf_buf[g->npf] = args[a];
            g->pf_es[g->npf] = (int)rn_elsize(b->t.dtype);
            g->pf_rw[g->npf++] = b->role == KF_BUF_OUTPUT || b->role == KF_BUF_EXTRA_OUT;
        }
    int on_stack = (uint64_t)g->cols * elsz <= RN_STACK_BYTES;
    rn_emit *e = &g->e;

    if (g->kind == RN_SOFTMAX && g->dt != KF_F64) rn_put(e, "%s", rn_exp_f);
    rn_line(e, "/* rownorm: %s, %" PRId64 " rows x %" PRId64 " cols, computed in %s */", s->op, g->rows, g->cols,
            g->T);
    rn_line(e, "void %s(void **args)", s->entry);
    rn_line(e, "{");
    rn_table(g, args, nargs);
    rn_line(e, "#pragma omp parallel if (INT64_C(%" PRId64 ") * INT64_C(%" PRId64 ") >= %d && INT64_C(%" PRId64
               ") > 1)", g->rows, g->cols, RN_PARALLEL_MIN, g->rows);
    rn_line(e, "{");
    if (on_stack) {
        rn_line(e, "%s xr[%" PRId64 "] __attribute__((aligned(64)));", g->T, g->cols);
    } else {
        /* a failed allocation falls back to re-reading the row */
        rn_line(e, "%s *KF_RESTRICT xr = (%s *)aligned_alloc(64, %" PRIu64 ");", g->T, g->T,
                ((uint64_t)g->cols * elsz + 63) / 64 * 64);
    }
    rn_line(e, "#pragma omp for schedule(static)");
    rn_line(e, "for (int64_t r = 0; r < INT64_C(%" PRId64 "); r++) {", g->rows);
    if (g->npf) rn_line(e, "const int64_t pf = r + 1 < INT64_C(%" PRId64 ") ? r + 1 : r; /* the next row */", g->rows);
    rn_row_index(g);
    if (on_stack) {
        g->cached = 1;
        rn_row(g);
    } else {
        rn_line(e, "if (xr) {");
        g->cached = 1;
        rn_row(g);
        rn_line(e, "} else {");
        g->cached = 0;
        rn_row(g);
        rn_line(e, "}");
    }
    rn_line(e, "}");
    if (!on_stack) rn_line(e, "free(xr);");
    rn_line(e, "}");
    rn_line(e, "}");
    g->grid = g->rows;
    g->block = 1;
}

/* ---- the CUDA side ----
 *
 * ENTRY is a __device__ function that every thread of the launch calls.  A
 * row of at most RN_CUDA_WARP_COLS columns goes to one warp (8 rows per
 * block of 256 threads); a longer one to a block, the smallest of 128 ..
 * 1024 threads that leaves each thread at most RN_CUDA_THREAD_COLS columns
 * (half as many in f64).
 * Thread `lane` of a row owns columns lane, lane + G, ... (G its threads),
 * kept in registers, so that the row is read once, as on the CPU.  Longer
 * rows: 1024 threads, and every pass re-reads the row (through the prologue
 * when there is one).  Each reduction runs per thread, then across the
 * warp by shuffles (and across a block's warps through shared memory), in
 * the compute type; the rows come from a grid-stride loop. */
#define RN_CUDA_WARP_COLS 1024
#define RN_CUDA_THREAD_COLS 16
#define RN_CUDA_MAX_GRID (1 << 20) /* far more blocks than a GPU holds at once */

/* The reductions of the CUDA kernels: every thread gets the result, the max
 * propagates NaN as on the CPU; kf_rn_block needs blockDim.x a multiple of
 * 32 and 32 slots of shared memory, reused by the next call.  Guarded: a
 * unit may hold several rownorm kernels. */
static const char rn_cuda_helpers[] =
    "#ifndef KF_RN_CUDA_HELPERS\n"
    "#define KF_RN_CUDA_HELPERS\n"
    "template <typename T> KF_INLINE T kf_rn_op(T a, T b, int mx)\n"
    "{\n"
    "    return mx ? ((b > a || b != b) ? b : a) : a + b;\n"
    "}\n"
    "template <typename T> KF_INLINE T kf_rn_warp(T v, int mx)\n"
    "{\n"
    "    for (int o = 16; o > 0; o >>= 1) v = kf_rn_op(v, (T)__shfl_xor_sync(0xffffffffu, v, o), mx);\n"
    "    return v;\n"
    "}\n"
    "template <typename T> KF_INLINE T kf_rn_block(T v, int mx, T *sh)\n"
    "{\n"
    "    v = kf_rn_warp(v, mx);\n"
    "    __syncthreads(); /* every thread has read the previous result */\n"
    "    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;\n"
    "    __syncthreads();\n"
    "    v = (threadIdx.x & 31) < (blockDim.x >> 5) ? sh[threadIdx.x & 31] : (mx ? (T)-INFINITY : (T)0);\n"
    "    return kf_rn_warp(v, mx);\n"
    "}\n"
    "#endif\n";

/* Opens the loop over this thread's columns of the row: c, and with idx
 * the column's index t0 .. (cached: k, the column's register). */
static void rn_cuda_cols(rn_gen *g, int idx)
{
    rn_emit *e = &g->e;
    if (g->cached) {
        rn_line(e, "#pragma unroll");
        rn_line(e, "for (int k = 0; k < %d; k++) {", g->kcols);
        rn_line(e, "const int64_t c = lane + (int64_t)k * %d;", g->grp);
        rn_line(e, "if (c >= INT64_C(%" PRId64 ")) break;", g->cols);
    } else {
        rn_line(e, "for (int64_t c = lane; c < INT64_C(%" PRId64 "); c += %d) {", g->cols, g->grp);
    }
    if (idx) rn_split(g, "c", "t", g->axis, g->ncols_dims);
}

/* acc, this thread's part, becomes the row's sum (or max). */
static void rn_cuda_reduce(rn_gen *g, const char *acc, int mx)
{
    if (g->grp == 32) rn_line(&g->e, "%s = kf_rn_warp(%s, %d);", acc, acc, mx);
    else rn_line(&g->e, "%s = kf_rn_block(%s, %d, kf_rn_sh);", acc, acc, mx);
}

/* One row on the GPU: the CPU's passes (rn_row), over this thread's
 * columns. */
static void rn_cuda_row(rn_gen *g)
{
    rn_emit *e = &g->e;
    const char *T = g->T;
    const char *exp_fn = g->dt == KF_F64 ? "exp" : "kf_exp_f";
    rn_str x = {0}, w = {0}, bias = {0};
    rn_cat_input(&x, g, 0);
    if (g->kind != RN_SOFTMAX) rn_cat_input(&w, g, 1);
    if (g->s->ninputs > 2) rn_cat_input(&bias, g, 2);
    if (x.over || w.over || bias.over) e->oom = 1;
    const char *V = g->cached ? "xr[k]" : x.s;
    if (g->cached) rn_line(e, "%s xr[%d];", T, g->kcols);
    /* the first pass reads the row */
    const char *acc = g->kind == RN_SOFTMAX ? "mx" : g->kind == RN_LAYER_NORM ? "s" : "q";
    rn_line(e, "%s %s = %s;", T, acc, g->kind == RN_SOFTMAX ? "-INFINITY" : "0");
    rn_cuda_cols(g, 1);
    if (g->cached) rn_line(e, "xr[k] = %s;", x.s);
    if (g->kind == RN_SOFTMAX) rn_line(e, "mx = kf_rn_op(mx, %s, 1);", V);
    else if (g->kind == RN_LAYER_NORM) rn_line(e, "s += %s;", V);
    else rn_line(e, "q += %s * %s;", V, V);
    rn_line(e, "}");
    rn_cuda_reduce(g, acc, g->kind == RN_SOFTMAX);

    if (g->kind == RN_SOFTMAX) {
        rn_line(e, "%s s = 0;", T);
        rn_cuda_cols(g, !g->cached);
        rn_line(e, "const %s ex = %s(%s - mx);", T, exp_fn, V);
        if (g->cached) rn_line(e, "xr[k] = ex;");
        rn_line(e, "s += ex;");
        rn_line(e, "}");
        rn_cuda_reduce(g, "s", 0);
        rn_line(e, "const %s inv = (%s)(1.0 / s);", T, T);
        rn_cuda_cols(g, 1);
        if (g->cached) rn_line(e, "const %s v = xr[k] * inv;", T);
        else rn_line(e, "const %s v = %s(%s - mx) * inv;", T, exp_fn, V);
        rn_store(g, 0, "v");
        rn_line(e, "}");
        return;
    }
    if (g->kind == RN_LAYER_NORM) {
        rn_mean_line(g);
        rn_line(e, "%s q = 0;", T);
        rn_cuda_cols(g, !g->cached);
        rn_line(e, "const %s d = %s - mean;", T, V);
        rn_line(e, "q += d * d;");
        rn_line(e, "}");
        rn_cuda_reduce(g, "q", 0);
    }
    rn_scale_line(g);
    rn_cuda_cols(g, 1);
    rn_value_line(g, V, &w, &bias);
    rn_store(g, 0, "v");
    rn_line(e, "}");
    if (g->kind == RN_LAYER_NORM && g->s->noutputs > 1) {
        /* mean and rstd: once per row */
        rn_line(e, "if (lane == 0) {");
        rn_store(g, 1, "mean");
        if (g->s->noutputs > 2) rn_store(g, 2, "rstd");
        rn_line(e, "}");
    }
}

/* The CUDA kernel: __device__ void ENTRY(void **args). */
static void rn_gen_cuda(rn_gen *g, const int *args, int nargs)
{
    const kf_fusion_spec *s = g->s;
    rn_emit *e = &g->e;
    int per = 1; /* rows per block */
    g->cached = 1;
    if (g->cols <= RN_CUDA_WARP_COLS) {
        g->grp = 32;
        per = 8;
    } else {
        int64_t most = g->dt == KF_F64 ? RN_CUDA_THREAD_COLS / 2 : RN_CUDA_THREAD_COLS;
        g->grp = 128;
        while (g->grp < 1024 && g->cols > g->grp * most) g->grp *= 2;
        g->cached = g->cols <= g->grp * most;
    }
    g->kcols = (int)((g->cols + g->grp - 1) / g->grp);
    int64_t blocks = (g->rows + per - 1) / per;
    g->grid = blocks < RN_CUDA_MAX_GRID ? blocks : RN_CUDA_MAX_GRID;
    g->block = g->grp * per;

    rn_put(e, "%s", rn_cuda_helpers);
    rn_line(e, "/* rownorm: %s, %" PRId64 " rows x %" PRId64 " cols, computed in %s; %d threads per row%s */", s->op,
            g->rows, g->cols, g->T, g->grp, g->cached ? ", cached in registers" : "");
    rn_line(e, "__device__ void %s(void **args)", s->entry);
    rn_line(e, "{");
    rn_table(g, args, nargs);
    if (g->grp > 32) rn_line(e, "__shared__ %s kf_rn_sh[32];", g->T);
    rn_line(e, "const int lane = threadIdx.x %% %d;", g->grp);
    rn_line(e, "for (int64_t r = (int64_t)blockIdx.x * %d + threadIdx.x / %d; r < INT64_C(%" PRId64
               "); r += (int64_t)gridDim.x * %d) {", per, g->grp, g->rows, per);
    rn_row_index(g);
    rn_cuda_row(g);
    rn_line(e, "}");
    rn_line(e, "}");
}

static int rn_fuse(void *ctx, const kf_fusion_spec *s, kf_fused_kernel *out, char *err, size_t errsz)
{
    (void)ctx;
    if (!s || !out) return rn_err(err, errsz, "rownorm: no spec"), -1;
    memset(out, 0, sizeof *out);
    if (s->abi_version != KF_BACKEND_ABI_VERSION)
        return rn_err(err, errsz, "rownorm: spec ABI version %d, expected %d", s->abi_version,
                      KF_BACKEND_ABI_VERSION), -1;
    if (!rn_ident(s->entry)) return rn_err(err, errsz, "rownorm: entry is not an identifier"), -1;
    rn_gen g = {.s = s, .err = err, .errsz = errsz};
    g.kind = rn_check(s->op, s->attrs, s->device, s->ninputs, s->inputs, s->noutputs, s->outputs, err, errsz);
    if (g.kind < 0) return -1;
    if (rn_check_spec(&g)) return -1;
    const kf_tensor_desc *x = &s->inputs[0];
    g.dt = x->dtype;
    g.T = g.dt == KF_F64 ? "double" : "float";
    g.rank = x->ndim;
    g.axis = rn_axis(s->attrs, g.rank);
    g.ncols_dims = g.rank - g.axis;
    g.rows = g.cols = 1;
    for (int d = 0; d < g.rank; d++) *(d < g.axis ? &g.rows : &g.cols) *= x->shape[d];

    int nargs = 0;
    int *args = rn_args(s, &nargs);
    if (!args) goto nomem;
    if (s->device == KF_DEVICE_CUDA) rn_gen_cuda(&g, args, nargs);
    else rn_gen_c(&g, args, nargs);
    if (g.e.oom) goto nomem;

    size_t elen = strlen(s->entry);
    char *entry = malloc(elen + 1);
    if (!entry) goto nomem;
    memcpy(entry, s->entry, elen + 1);
    out->source = g.e.s;
    out->entry = entry;
    out->nargs = nargs;
    out->args = args;
    out->grid[0] = g.grid;
    out->block[0] = g.block;
    out->grid[1] = out->grid[2] = out->block[1] = out->block[2] = 1;
    out->accepted_epilogues = s->nepilogues >= 32 ? 0xffffffffu : (1u << s->nepilogues) - 1u;
    out->accepted_prologues = s->nprologues >= 32 ? 0xffffffffu : (1u << s->nprologues) - 1u;
    return 0;
nomem:
    free(g.e.s);
    free(args);
    return rn_err(err, errsz, "rownorm: out of memory"), -1;
}

static void rn_release(void *ctx, kf_fused_kernel *k)
{
    (void)ctx;
    if (!k) return;
    free((void *)k->source);
    free((void *)k->entry);
    free((void *)k->args);
    memset(k, 0, sizeof *k);
}

static const kf_backend rn_backend = {
    .abi_version = KF_BACKEND_ABI_VERSION,
    .name = "rownorm",
    .ctx = NULL,                /* stateless */
    .implements = rn_implements,
    .fuse = rn_fuse,
    .release = rn_release,
    .destroy = NULL,
};

const kf_backend *kf_backend_rownorm(void)
{
    return &rn_backend;
}
