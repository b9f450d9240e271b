/*
 * test_rownorm.c - the rownorm backend against fusion specs built by hand,
 * before (and independently of) kfuse's compiler side.  Every case's kernel
 * goes into one C unit laid out as kfuse lays it out (prelude, hook code,
 * backend source), compiled once with the JIT's flags, run on random data
 * and compared with a double reference.  Also checks what implements()
 * claims and declines, fuse()'s errors, and the shape of each case's CUDA
 * kernel (compiled by tests/test_cuda, run by test_diff on a GPU).
 *
 * usage: test_rownorm PRELUDE_H [PLUGIN_SO]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse_backend.h"
#include "rn_jit.h"

static int failures;
#define CHECK(c, ...)                                                                                  \
    do {                                                                                               \
        if (!(c)) {                                                                                    \
            failures++;                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                       \
            fprintf(stderr, __VA_ARGS__);                                                              \
            fputc('\n', stderr);                                                                       \
        }                                                                                              \
    } while (0)

/* ---- tensors and storage ---- */


static int64_t numel(const kf_tensor_desc *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
    return n;
}

static size_t dsize(kf_dtype t) { return t == KF_F64 ? 8 : t == KF_F32 || t == KF_I32 ? 4 : 2; }

static double h2d(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

static uint16_t d2h(double v) /* inputs only: any nearby half will do */
{
    uint16_t sign = v < 0 ? 0x8000 : 0;
    v = fabs(v);
    if (v < ldexp(1, -14)) return sign;
    int e;
    double m = frexp(v, &e); /* v = m 2^e, m in [0.5, 1) */
    return (uint16_t)(sign | (uint16_t)((e + 14) << 10) | (uint16_t)((m * 2 - 1) * 1024));
}

static double ld(kf_dtype t, const void *p, int64_t i)
{
    switch (t) {
    case KF_F64: return ((const double *)p)[i];
    case KF_F32: return ((const float *)p)[i];
    case KF_F16: return h2d(((const uint16_t *)p)[i]);
    default: {
        uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    }
}

static void st(kf_dtype t, void *p, int64_t i, double v)
{
    switch (t) {
    case KF_F64: ((double *)p)[i] = v; break;
    case KF_F32: ((float *)p)[i] = (float)v; break;
    case KF_F16: ((uint16_t *)p)[i] = d2h(v); break;
    default: {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        ((uint16_t *)p)[i] = (uint16_t)(u >> 16);
    }
    }
}

/* The offset in t of element e of x's index space (t right-aligned, its
 * size-1 dims broadcast). */
static int64_t bcast_off(const kf_tensor_desc *x, const kf_tensor_desc *t, int64_t e)
{
    int64_t off = 0;
    for (int j = x->ndim - 1; j >= 0; j--) {
        int64_t ij = e % x->shape[j];
        e /= x->shape[j];
        int k = j - (x->ndim - t->ndim);
        if (k >= 0 && t->shape[k] != 1) off += ij * t->strides[k];
    }
    return off;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(double lo, double hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (double)(rng >> 11) * 0x1p-53;
}

/* ---- a case: a spec built by hand ---- */

#define MAXB 10

typedef struct tcase {
    char entry[48];
    const char *op;
    kf_attrs a;
    kf_tensor_desc in[3], out[3];
    int nin, nout;
    int in_buf[3], out_buf[3];
    kf_buffer_desc buf[MAXB];
    int nbuf;
    kf_hook pro[3], epi[3];
    int npro, nepi;
    /* test-side meaning of the hooks: a prologue returns pscale * the sum
     * of its sources and buffers; an epilogue stores acc * escale[k] into
     * its store_buffer[k] */
    double pscale[3], escale[3][4];
    int ibufs[3][4], istores[3][4]; /* backing arrays of the hooks */
    char code[4096];
    int no_alloc;                   /* compile with aligned_alloc failing */
    int special;                    /* x row 0 gets a NaN, row 1 -infs */
    kf_fusion_spec s;
    kf_fused_kernel k;
    void *data[MAXB];
} tcase;

static int addbuf(tcase *c, kf_tensor_desc t, kf_buffer_role role, int of)
{
    c->buf[c->nbuf] = (kf_buffer_desc){.t = t, .role = role, .of = of};
    return c->nbuf++;
}

static void finish(tcase *c)
{
    c->s = (kf_fusion_spec){
        .abi_version = KF_BACKEND_ABI_VERSION,
        .device = KF_DEVICE_CPU,
        .op = c->op,
        .attrs = &c->a,
        .entry = c->entry,
        .ninputs = c->nin,
        .inputs = c->in,
        .input_buffer = c->in_buf,
        .noutputs = c->nout,
        .outputs = c->out,
        .output_buffer = c->out_buf,
        .nepilogues = c->nepi,
        .epilogues = c->epi,
        .nprologues = c->npro,
        .prologues = c->pro,
        .nbuffers = c->nbuf,
        .buffers = c->buf,
    };
}

/* x [and w, b] with no hooks; rev: buffers numbered outputs first. */
static void plain(tcase *c, const char *entry, const char *op, kf_dtype dt, int nd, const int64_t *xs, int axis,
                  int wnd, const int64_t *ws, int bnd, const int64_t *bs, int nout, int rev)
{
    memset(c, 0, sizeof *c);
    snprintf(c->entry, sizeof c->entry, "%s", entry);
    c->op = op;
    c->a.naxes = 1;
    c->a.axes[0] = axis;
    c->in[0] = rnj_td(dt, nd, xs);
    c->nin = 1;
    if (wnd) c->in[c->nin++] = rnj_td(dt, wnd, ws);
    if (bnd) c->in[c->nin++] = rnj_td(dt, bnd, bs);
    int64_t ms[KF_MAX_DIMS];
    for (int d = 0; d < nd; d++) ms[d] = d < axis ? xs[d] : 1;
    c->nout = nout;
    c->out[0] = rnj_td(dt, nd, xs);
    for (int o = 1; o < nout; o++) c->out[o] = rnj_td(dt, nd, ms);
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) == !rev)
            for (int i = 0; i < c->nin; i++) c->in_buf[i] = addbuf(c, c->in[i], KF_BUF_INPUT, i);
        else
            for (int o = 0; o < c->nout; o++) c->out_buf[o] = addbuf(c, c->out[o], KF_BUF_OUTPUT, o);
    }
    finish(c);
}

/* layer_norm f32 [R, C]: x = x0 + r through a prologue; y only through an
 * epilogue that stores f16(y * 0.5); mean stored directly; rstd through an
 * epilogue that stores it and rstd * 2. */
static void hooked_ln(tcase *c, const char *entry, int64_t R, int64_t C, int no_alloc)
{
    memset(c, 0, sizeof *c);
    snprintf(c->entry, sizeof c->entry, "%s", entry);
    c->op = "layer_norm";
    c->a = (kf_attrs){.naxes = 1, .axes = {1}, .eps = 1e-5, .has_eps = 1};
    c->no_alloc = no_alloc;
    int64_t xs[2] = {R, C}, ms[2] = {R, 1};
    c->nin = 3;
    c->in[0] = rnj_td(KF_F32, 2, xs);
    c->in[1] = c->in[2] = rnj_td(KF_F32, 1, &C);
    c->nout = 3;
    c->out[0] = rnj_td(KF_F32, 2, xs);
    c->out[1] = c->out[2] = rnj_td(KF_F32, 2, ms);
    int w = addbuf(c, c->in[1], KF_BUF_INPUT, 1);
    int x0 = addbuf(c, c->in[0], KF_BUF_SOURCE, 0);
    int z = addbuf(c, rnj_td(KF_F16, 2, xs), KF_BUF_EXTRA_OUT, 0);
    int b = addbuf(c, c->in[2], KF_BUF_INPUT, 2);
    int r = addbuf(c, c->in[0], KF_BUF_EXTRA_IN, 0);
    int mean = addbuf(c, c->out[1], KF_BUF_OUTPUT, 1);
    int rstd = addbuf(c, c->out[2], KF_BUF_OUTPUT, 2);
    int rstd2 = addbuf(c, c->out[2], KF_BUF_EXTRA_OUT, 2);
    c->in_buf[0] = -1;
    c->in_buf[1] = w;
    c->in_buf[2] = b;
    c->out_buf[0] = -1;
    c->out_buf[1] = mean;
    c->out_buf[2] = rstd;
    c->npro = 1;
    c->ibufs[0][0] = x0;
    c->ibufs[0][1] = r;
    c->pscale[0] = 1;
    c->pro[0] = (kf_hook){.target = 0, .nsources = 1, .sources = &c->ibufs[0][0], .nbuffers = 1,
                          .buffers = &c->ibufs[0][1], .names = "xr"};
    c->nepi = 2;
    c->istores[0][0] = z;
    c->escale[0][0] = 0.5;
    c->epi[0] = (kf_hook){.target = 0, .nstores = 1, .store_buffer = c->istores[0], .nbuffers = 1,
                          .buffers = c->istores[0], .names = "z"};
    c->istores[1][0] = rstd;
    c->istores[1][1] = rstd2;
    c->escale[1][0] = 1;
    c->escale[1][1] = 2;
    c->epi[1] = (kf_hook){.target = 2, .nstores = 2, .store_buffer = c->istores[1], .nbuffers = 1,
                          .buffers = &c->istores[1][1], .names = "rstd2"};
    snprintf(c->code, sizeof c->code,
                     "KF_INLINE float %s_pro0(void **B, int64_t i0, int64_t i1)\n{\n"
                     "    const float *a = (const float *)B[%d], *r = (const float *)B[%d];\n"
                     "    return a[i0 * %lld + i1] + r[i0 * %lld + i1];\n}\n"
                     "KF_INLINE void %s_epi0(void **B, int64_t i0, int64_t i1, float acc)\n{\n"
                     "    ((uint16_t *)B[%d])[i0 * %lld + i1] = kf_f2h(acc * 0.5f);\n}\n"
                     "KF_INLINE void %s_epi1(void **B, int64_t i0, int64_t i1, float acc)\n{\n"
                     "    ((float *)B[%d])[i0 + i1] = acc;\n"
                     "    ((float *)B[%d])[i0 + i1] = acc * 2.0f;\n}\n",
                     entry, x0, r, (long long)C, (long long)C, entry, z, (long long)C, entry, rstd, rstd2);
    finish(c);
}

/* rms_norm f32 [A, Bd, C] over the last axis: w [C] through a prologue that
 * returns 2 * w; y through an epilogue that stores y and y * 3. */
static void hooked_rms(tcase *c, const char *entry)
{
    memset(c, 0, sizeof *c);
    snprintf(c->entry, sizeof c->entry, "%s", entry);
    c->op = "rms_norm";
    c->a = (kf_attrs){.naxes = 1, .axes = {2}};  /* default eps */
    int64_t xs[3] = {4, 2, 50}, C = 50;
    c->nin = 2;
    c->in[0] = rnj_td(KF_F32, 3, xs);
    c->in[1] = rnj_td(KF_F32, 1, &C);
    c->nout = 1;
    c->out[0] = rnj_td(KF_F32, 3, xs);
    int y3 = addbuf(c, c->out[0], KF_BUF_EXTRA_OUT, 0);
    int w = addbuf(c, c->in[1], KF_BUF_SOURCE, 1);
    int x = addbuf(c, c->in[0], KF_BUF_INPUT, 0);
    int y = addbuf(c, c->out[0], KF_BUF_OUTPUT, 0);
    c->in_buf[0] = x;
    c->in_buf[1] = -1;
    c->out_buf[0] = y;
    c->npro = 1;
    c->ibufs[0][0] = w;
    c->pscale[0] = 2;
    c->pro[0] = (kf_hook){.target = 1, .nsources = 1, .sources = c->ibufs[0], .names = "w2"};
    c->nepi = 1;
    c->istores[0][0] = y;
    c->istores[0][1] = y3;
    c->escale[0][0] = 1;
    c->escale[0][1] = 3;
    c->epi[0] = (kf_hook){.target = 0, .nstores = 2, .store_buffer = c->istores[0], .nbuffers = 1,
                          .buffers = &c->istores[0][1], .names = "y3"};
    snprintf(c->code, sizeof c->code,
             "KF_INLINE float %s_pro0(void **B, int64_t i0)\n{\n"
             "    return 2.0f * ((const float *)B[%d])[i0];\n}\n"
             "KF_INLINE void %s_epi0(void **B, int64_t i0, int64_t i1, int64_t i2, float acc)\n{\n"
             "    const int64_t o = (i0 * 2 + i1) * 50 + i2;\n"
             "    ((float *)B[%d])[o] = acc;\n"
             "    ((float *)B[%d])[o] = acc * 3.0f;\n}\n",
             entry, w, entry, y, y3);
    finish(c);
}

static void name_hooks(tcase *c, char names[][64])
{
    for (int h = 0; h < c->npro; h++) {
        snprintf(names[h], 64, "%.40s_pro%d", c->entry, h);
        c->pro[h].fn = names[h];
        c->pro[h].code = "";
    }
    for (int h = 0; h < c->nepi; h++) {
        snprintf(names[3 + h], 64, "%.40s_epi%d", c->entry, h);
        c->epi[h].fn = names[3 + h];
        c->epi[h].code = "";
    }
}

/* ---- the reference and the comparison ---- */

static double tol_of(kf_dtype t)
{
    return t == KF_F64 ? 1e-10 : t == KF_F32 ? 3e-5 : t == KF_F16 ? 2e-3 : 1.6e-2;
}

/* Input i's value at element e of x's index space. */
static double in_val(const tcase *c, int i, int64_t e)
{
    const kf_tensor_desc *x = &c->in[0];
    if (c->in_buf[i] >= 0) {
        const kf_buffer_desc *b = &c->buf[c->in_buf[i]];
        return ld(b->t.dtype, c->data[c->in_buf[i]], bcast_off(x, &b->t, e));
    }
    for (int h = 0; h < c->npro; h++) {
        const kf_hook *k = &c->pro[h];
        if (k->target != i) continue;
        double v = 0;
        for (int s = 0; s < k->nsources + k->nbuffers; s++) {
            int bi = s < k->nsources ? k->sources[s] : k->buffers[s - k->nsources];
            v += ld(c->buf[bi].t.dtype, c->data[bi], bcast_off(x, &c->buf[bi].t, e));
        }
        return c->pscale[h] * v;
    }
    return NAN;
}

static int run_case(tcase *c, void *h)
{
    const kf_tensor_desc *x = &c->in[0];
    kf_dtype dt = x->dtype;
    int axis = (int)c->a.axes[0];
    int64_t rows = 1, cols = 1;
    for (int d = 0; d < x->ndim; d++) *(d < axis ? &rows : &cols) *= x->shape[d];
    int soft = !strcmp(c->op, "softmax");
    for (int b = 0; b < c->nbuf; b++) {
        int64_t n = numel(&c->buf[b].t);
        c->data[b] = malloc((size_t)n * dsize(c->buf[b].t.dtype) + 1);
        kf_buffer_role role = c->buf[b].role;
        if (role == KF_BUF_OUTPUT || role == KF_BUF_EXTRA_OUT) {
            memset(c->data[b], 0xff, (size_t)n * dsize(c->buf[b].t.dtype)); /* NaN: unwritten */
        } else {
            for (int64_t i = 0; i < n; i++)
                st(c->buf[b].t.dtype, c->data[b], i, soft ? urand(-8, 8) : urand(-2, 3));
        }
    }
    if (c->special) { /* a NaN makes its row NaN; -inf entries give 0 */
        float *x = c->data[c->in_buf[0]];
        x[3] = NAN;
        x[cols + 1] = x[cols + 7] = x[2 * cols - 1] = -INFINITY;
    }
    void (*fn)(void **) = (void (*)(void **))dlsym(h, c->entry);
    CHECK(fn, "%s: no entry", c->entry);
    if (!fn) return -1;
    void *args[MAXB];
    for (int a = 0; a < c->k.nargs; a++) args[a] = c->data[c->k.args[a]];
    fn(args);

    /* reference: y, mean, rstd per element / row */
    int64_t N = rows * cols;
    double *ref[3];
    ref[0] = malloc(sizeof(double) * (size_t)N);
    ref[1] = malloc(sizeof(double) * (size_t)rows);
    ref[2] = malloc(sizeof(double) * (size_t)rows);
    double eps = c->a.has_eps ? c->a.eps : !strcmp(c->op, "layer_norm") ? 1e-5 : 1e-6;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t e0 = r * cols;
        if (soft) {
            double mx = -INFINITY, s = 0;
            for (int64_t j = 0; j < cols; j++) mx = fmax(mx, in_val(c, 0, e0 + j));
            for (int64_t j = 0; j < cols; j++) s += exp(in_val(c, 0, e0 + j) - mx);
            for (int64_t j = 0; j < cols; j++) ref[0][e0 + j] = exp(in_val(c, 0, e0 + j) - mx) / s;
        } else if (!strcmp(c->op, "layer_norm")) {
            double s = 0, q = 0;
            for (int64_t j = 0; j < cols; j++) s += in_val(c, 0, e0 + j);
            double mean = s / (double)cols;
            for (int64_t j = 0; j < cols; j++) q += pow(in_val(c, 0, e0 + j) - mean, 2);
            double rstd = 1 / sqrt(q / (double)cols + eps);
            for (int64_t j = 0; j < cols; j++)
                ref[0][e0 + j] = (in_val(c, 0, e0 + j) - mean) * rstd * in_val(c, 1, e0 + j) +
                                 (c->nin > 2 ? in_val(c, 2, e0 + j) : 0);
            ref[1][r] = mean;
            ref[2][r] = rstd;
        } else {
            double q = 0;
            for (int64_t j = 0; j < cols; j++) q += pow(in_val(c, 0, e0 + j), 2);
            double rs = 1 / sqrt(q / (double)cols + eps);
            for (int64_t j = 0; j < cols; j++) ref[0][e0 + j] = in_val(c, 0, e0 + j) * rs * in_val(c, 1, e0 + j);
        }
    }

    /* each output: its buffer, or every store of its epilogue */
    int bad = 0;
    for (int o = 0; o < c->nout; o++) {
        int hook = -1;
        for (int k = 0; k < c->nepi; k++)
            if (c->epi[k].target == o) hook = k;
        int nst = hook >= 0 ? c->epi[hook].nstores : 1;
        for (int k = 0; k < nst; k++) {
            int bi = hook >= 0 ? c->epi[hook].store_buffer[k] : c->out_buf[o];
            double scale = hook >= 0 ? c->escale[hook][k] : 1;
            const kf_tensor_desc *bt = &c->buf[bi].t;
            double tol = fmax(tol_of(dt), tol_of(bt->dtype));
            int64_t n = o == 0 ? N : rows;
            double worst = 0;
            int64_t at = 0;
            for (int64_t i = 0; i < n; i++) {
                double got = ld(bt->dtype, c->data[bi], i), want = ref[o][i] * scale;
                double err = isnan(got) && isnan(want) ? 0 : fabs(got - want) / (1 + fabs(want));
                if (!(err <= worst)) { /* NaN counts as the worst */
                    worst = isnan(err) ? INFINITY : err;
                    at = i;
                }
            }
            CHECK(worst <= tol, "%s: output %d (buffer %d): error %.3g at %lld (tolerance %.3g)", c->entry, o, bi,
                  worst, (long long)at, tol);
            bad |= !(worst <= tol);
        }
    }
    for (int i = 0; i < 3; i++) free(ref[i]);
    for (int b = 0; b < c->nbuf; b++) free(c->data[b]);
    printf("%-12s %-10s %-4s %lld x %lld: %s\n", c->entry, c->op,
           dt == KF_F64 ? "f64" : dt == KF_F32 ? "f32" : dt == KF_F16 ? "f16" : "bf16", (long long)rows,
           (long long)cols, bad ? "MISMATCH" : "ok");
    return bad;
}

/* ---- implements() and fuse() errors ---- */

static int claims(const kf_backend *be, const char *op, kf_device dev, kf_dtype dt, int nd, const int64_t *xs,
                  int axis, int wnd, const int64_t *ws, int nout)
{
    kf_attrs a = {.naxes = 1, .axes = {axis}};
    kf_tensor_desc in[2] = {rnj_td(dt, nd, xs)}, out[3];
    if (wnd) in[1] = rnj_td(dt, wnd, ws);
    int64_t ms[KF_MAX_DIMS];
    for (int d = 0; d < nd; d++) ms[d] = d < axis ? xs[d] : 1;
    out[0] = rnj_td(dt, nd, xs);
    out[1] = out[2] = rnj_td(dt, nd, ms);
    kf_op_query q = {.op = op, .attrs = &a, .device = dev, .ninputs = wnd ? 2 : 1, .inputs = in,
                     .noutputs = nout, .outputs = out};
    return be->implements(be->ctx, &q);
}

static void check_claims(const kf_backend *be)
{
    const int64_t x2[2] = {7, 33}, x3[3] = {4, 3, 64}, w1[1] = {33}, w2[2] = {3, 64}, wbad[1] = {5};
    CHECK(claims(be, "softmax", KF_DEVICE_CPU, KF_F32, 2, x2, 1, 0, NULL, 1), "softmax f32 last axis");
    CHECK(claims(be, "softmax", KF_DEVICE_CPU, KF_BF16, 2, x2, 1, 0, NULL, 1), "softmax bf16");
    CHECK(!claims(be, "softmax", KF_DEVICE_CPU, KF_F32, 2, x2, 0, 0, NULL, 1), "softmax axis 0 declined");
    CHECK(!claims(be, "softmax", KF_DEVICE_CPU, KF_I32, 2, x2, 1, 0, NULL, 1), "softmax i32 declined");
    CHECK(claims(be, "softmax", KF_DEVICE_CUDA, KF_F32, 2, x2, 1, 0, NULL, 1), "softmax on CUDA");
    CHECK(claims(be, "layer_norm", KF_DEVICE_CPU, KF_F16, 2, x2, 1, 1, w1, 3), "layer_norm f16");
    CHECK(claims(be, "layer_norm", KF_DEVICE_CPU, KF_F64, 3, x3, 1, 2, w2, 3), "layer_norm f64 axis 1");
    CHECK(!claims(be, "layer_norm", KF_DEVICE_CPU, KF_I32, 2, x2, 1, 1, w1, 3), "layer_norm i32 declined");
    CHECK(!claims(be, "layer_norm", KF_DEVICE_CPU, KF_F32, 2, x2, 1, 1, wbad, 3), "bad w shape declined");
    CHECK(claims(be, "rms_norm", KF_DEVICE_CPU, KF_F32, 2, x2, 1, 1, w1, 1), "rms_norm f32");
    CHECK(claims(be, "rms_norm", KF_DEVICE_CUDA, KF_F32, 2, x2, 1, 1, w1, 1), "rms_norm on CUDA");
    CHECK(!claims(be, "gelu", KF_DEVICE_CPU, KF_F32, 2, x2, 1, 0, NULL, 1), "gelu declined");

    /* fuse: an unsupported dtype, and an output with neither buffer nor hook */
    char err[256] = "";
    tcase *c = malloc(sizeof *c);
    plain(c, "bad_i32", "softmax", KF_I32, 2, x2, 1, 0, NULL, 0, NULL, 1, 0);
    CHECK(be->fuse(be->ctx, &c->s, &c->k, err, sizeof err) != 0 && err[0], "fuse i32 must fail");
    printf("fuse(i32 softmax): %s\n", err);
    err[0] = 0;
    plain(c, "bad_out", "softmax", KF_F32, 2, x2, 1, 0, NULL, 0, NULL, 1, 0);
    c->out_buf[0] = -1;
    CHECK(be->fuse(be->ctx, &c->s, &c->k, err, sizeof err) != 0 && err[0], "fuse with a lost output must fail");
    printf("fuse(output without buffer or hook): %s\n", err);
    free(c);
}

/* The CUDA side of case c, without a GPU (tests/test_cuda compiles it with
 * NVRTC, test_diff under KFUSE_TEST_DEVICE=cuda runs it): the launch shape
 * and the __device__ entry. */
static void check_cuda(const kf_backend *be, tcase *c)
{
    kf_fusion_spec s = c->s;
    s.device = KF_DEVICE_CUDA;
    kf_fused_kernel k;
    char err[256] = "", def[96];
    int rc = be->fuse(be->ctx, &s, &k, err, sizeof err);
    CHECK(rc == 0, "%s: CUDA fuse: %s", c->entry, err);
    if (rc) return;
    int64_t rows = 1, cols = 1;
    for (int d = 0; d < c->in[0].ndim; d++) *(d < c->a.axes[0] ? &rows : &cols) *= c->in[0].shape[d];
    int64_t per = k.block[0] / (cols <= 1024 ? 32 : k.block[0]);
    CHECK(k.block[0] >= 32 && k.block[0] <= 1024 && k.block[0] % 32 == 0 && k.block[1] == 1 && k.block[2] == 1,
          "%s: CUDA block %lld", c->entry, (long long)k.block[0]);
    CHECK(k.grid[0] == (rows + per - 1) / per && k.grid[1] == 1 && k.grid[2] == 1, "%s: CUDA grid %lld for %lld rows",
          c->entry, (long long)k.grid[0], (long long)rows);
    snprintf(def, sizeof def, "__device__ void %.47s(void **args)", c->entry);
    CHECK(k.source && strstr(k.source, def) && !strstr(k.source, "#pragma omp"), "%s: CUDA source", c->entry);
    CHECK(k.nargs == c->nbuf, "%s: CUDA args", c->entry);
    be->release(be->ctx, &k);
}

static void check_plugin(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h, "dlopen %s: %s", path, dlerror());
    if (!h) return;
    kf_backend_entry_fn entry = (kf_backend_entry_fn)dlsym(h, KF_BACKEND_ENTRY_SYMBOL);
    CHECK(entry, "plug-in has no %s", KF_BACKEND_ENTRY_SYMBOL);
    const kf_backend *be = entry ? entry() : NULL;
    CHECK(be && be->abi_version == KF_BACKEND_ABI_VERSION && !strcmp(be->name, "rownorm"), "plug-in's backend");
    if (be) check_claims(be);
    printf("plug-in %s: %s\n", path, be ? be->name : "?");
    dlclose(h);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PRELUDE_H [PLUGIN_SO]\n", argv[0]);
        return 2;
    }
    char *prelude = rnj_read(argv[1]);
    if (!prelude) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    const kf_backend *be = kf_backend_rownorm();
    CHECK(be->abi_version == KF_BACKEND_ABI_VERSION, "ABI version");
    check_claims(be);

    enum { NC = 14 };
    static tcase cs[NC];
    static char names[NC][6][64];
    const int64_t sm[2] = {7, 33}, ln[2] = {5, 17}, c17[1] = {17}, rms[3] = {3, 10, 100}, w100[1] = {100};
    const int64_t h3[3] = {4, 3, 64}, w3x64[2] = {3, 64}, w64[1] = {64};
    const int64_t s64[2] = {4, 50}, sbf[2] = {3, 40}, big[2] = {2, 20000};
    const int64_t a0[3] = {3, 4, 5}, w45[2] = {4, 5}, w5[1] = {5}, l64[2] = {3, 30}, w30[1] = {30};
    int n = 0;
    plain(&cs[n++], "t_softmax", "softmax", KF_F32, 2, sm, 1, 0, NULL, 0, NULL, 1, 0);
    plain(&cs[n++], "t_ln", "layer_norm", KF_F32, 2, ln, 1, 1, c17, 1, c17, 3, 1);
    plain(&cs[n++], "t_rms", "rms_norm", KF_F32, 3, rms, 1, 1, w100, 0, NULL, 1, 0);
    plain(&cs[n++], "t_ln_f16", "layer_norm", KF_F16, 3, h3, 1, 2, w3x64, 1, w64, 3, 0);
    hooked_ln(&cs[n++], "t_ln_hook", 5, 17, 0);
    hooked_rms(&cs[n++], "t_rms_hook");
    plain(&cs[n++], "t_sm_f64", "softmax", KF_F64, 2, s64, 1, 0, NULL, 0, NULL, 1, 1);
    plain(&cs[n++], "t_sm_bf16", "softmax", KF_BF16, 2, sbf, 1, 0, NULL, 0, NULL, 1, 0);
    plain(&cs[n++], "t_ln_axis0", "layer_norm", KF_F32, 3, a0, 0, 2, w45, 1, w5, 2, 0);
    plain(&cs[n++], "t_ln_f64", "layer_norm", KF_F64, 2, l64, 1, 1, w30, 1, w30, 3, 0);
    plain(&cs[n++], "t_sm_big", "softmax", KF_F32, 2, big, 1, 0, NULL, 0, NULL, 1, 0);
    plain(&cs[n], "t_sm_nocache", "softmax", KF_F32, 2, big, 1, 0, NULL, 0, NULL, 1, 0);
    cs[n++].no_alloc = 1;
    hooked_ln(&cs[n++], "t_ln_nocache", 3, 9000, 1);
    plain(&cs[n], "t_sm_nan_inf", "softmax", KF_F32, 2, sbf, 1, 0, NULL, 0, NULL, 1, 0);
    cs[n++].special = 1;

    char *unit = NULL;
    size_t len = 0;
    rnj_cat(&unit, &len, prelude);
    rnj_cat(&unit, &len, "\n");
    for (int i = 0; i < n; i++) {
        tcase *c = &cs[i];
        name_hooks(c, names[i]);
        char err[256] = "";
        int rc = be->fuse(be->ctx, &c->s, &c->k, err, sizeof err);
        CHECK(rc == 0, "%s: fuse: %s", c->entry, err);
        if (rc) return 1;
        CHECK(c->k.entry && !strcmp(c->k.entry, c->entry), "%s: entry", c->entry);
        CHECK(c->k.nargs == c->nbuf, "%s: %d args for %d buffers", c->entry, c->k.nargs, c->nbuf);
        int seen = 0;
        for (int a = 0; a < c->k.nargs; a++)
            if (c->k.args[a] >= 0 && c->k.args[a] < c->nbuf) seen |= 1 << c->k.args[a];
        CHECK(seen == (1 << c->nbuf) - 1, "%s: args are not the buffers", c->entry);
        CHECK(c->k.accepted_epilogues == (1u << c->nepi) - 1 && c->k.accepted_prologues == (1u << c->npro) - 1,
              "%s: every hook accepted", c->entry);
        int64_t rows = 1;
        for (int d = 0; d < c->a.axes[0]; d++) rows *= c->in[0].shape[d];
        CHECK(c->k.grid[0] == rows, "%s: grid[0] %lld, rows %lld", c->entry, (long long)c->k.grid[0],
              (long long)rows);
        rnj_cat(&unit, &len, c->code);
        if (c->no_alloc) rnj_cat(&unit, &len, "#define aligned_alloc(a, n) ((void)(a), (void)(n), (void *)0)\n");
        rnj_cat(&unit, &len, c->k.source);
        if (c->no_alloc) rnj_cat(&unit, &len, "#undef aligned_alloc\n");
        rnj_cat(&unit, &len, "\n");
    }
    if (getenv("RN_DUMP")) fputs(unit, stdout);
    void *h = rnj_build(unit);
    CHECK(h, "the unit does not build");
    if (h) {
        for (int i = 0; i < n; i++) run_case(&cs[i], h);
    }
    for (int i = 0; i < n; i++) be->release(be->ctx, &cs[i].k);
    for (int i = 0; i < n; i++) check_cuda(be, &cs[i]);
    if (argc > 2) check_plugin(argv[2]);
    free(unit);
    free(prelude);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
