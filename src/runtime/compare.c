/*
 * compare.c - kfuse's one notion of "the same result": what `kfuse run
 * --check` and `--data`, and the ONNX conformance runner, accept.
 */
#include <math.h>

#include "../kfuse-impl.h"

static void tolerance(kf_dtype t, double *rtol, double *atol)
{
    switch (t) {
    case KF_F64: *rtol = 1e-7, *atol = 1e-10; break;
    case KF_F32: *rtol = 1e-3, *atol = 1e-5; break;
    case KF_F16: *rtol = 1e-2, *atol = 1e-3; break;
    case KF_BF16: *rtol = 5e-2, *atol = 1e-2; break;
    default: *rtol = 0, *atol = 0; break;
    }
}

static int64_t get_int(kf_dtype t, const void *buf, int64_t i)
{
    /* i64 exactly: a double would round above 2^53 */
    return t == KF_I64 ? ((const int64_t *)buf)[i] : (int64_t)kf_value_get(t, buf, i);
}

/* rank of a float dtype's precision: lower is less precise */
static int precision(kf_dtype t)
{
    return t == KF_BF16 ? 0 : t == KF_F16 ? 1 : t == KF_F32 ? 2 : 3;
}

kf_dtype kf_graph_precision(const kf_graph *g)
{
    kf_dtype p = KF_F64;
    for (int i = 0; i < g->nnodes; i++) {
        kf_dtype t = g->nodes[i]->dtype;
        if (kf_dtype_is_float(t) && precision(t) < precision(p)) p = t;
    }
    return p;
}

int64_t kf_compare(kf_dtype t, kf_dtype tol, const void *got, const void *want, int64_t n, double *maxerr)
{
    double rtol, atol, worst = 0;
    tolerance(kf_dtype_is_float(t) && kf_dtype_is_float(tol) && precision(tol) < precision(t) ? tol : t,
              &rtol, &atol);
    int64_t first = -1;
    for (int64_t i = 0; i < n; i++) {
        bool bad;
        double err;
        if (kf_dtype_is_float(t)) {
            double g = kf_value_get(t, got, i), w = kf_value_get(t, want, i);
            if (isnan(g) && isnan(w)) continue;
            if (isinf(g) || isinf(w)) {
                bad = g != w;
                err = bad ? INFINITY : 0;
            } else {
                err = fabs(g - w); /* NaN on one side: the test below fails */
                bad = !(err <= atol + rtol * fabs(w));
                if (isnan(err)) err = INFINITY;
            }
        } else {
            int64_t g = get_int(t, got, i), w = get_int(t, want, i);
            bad = g != w;
            err = fabs((double)g - (double)w);
        }
        if (err > worst) worst = err;
        if (bad && first < 0) first = i;
    }
    if (maxerr) *maxerr = worst;
    return first;
}
