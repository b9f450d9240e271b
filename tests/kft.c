/*
 * kft.c - shared test helpers (see kft.h).  The 16-bit float conversions
 * work on f32 bit patterns, unlike the interpreter's, which work on doubles
 * with frexp/ldexp: the tests compare the two.
 */
#include "kft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t kft_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xff, man = u & 0x7fffff;
    if (exp == 0xff) return sign | (man ? 0x7e00 : 0x7c00);
    int e = (int)exp - 127; /* unbiased */
    if (e > 15) return sign | 0x7c00;
    if (exp == 0) return sign; /* f32 subnormals are far below f16's */
    uint32_t sig = man | 0x800000; /* 24 significant bits */
    int shift;                     /* bits of sig to drop */
    uint32_t base;
    if (e >= -14) {
        shift = 13;
        base = (uint32_t)(e + 15) << 10;
        sig &= 0x7fffff; /* the implicit bit goes into the exponent field */
    } else {
        shift = 13 + (-14 - e);
        if (shift > 24) return sign; /* below half the smallest subnormal */
        base = 0;
    }
    uint32_t kept = sig >> shift, rest = sig & ((UINT32_C(1) << shift) - 1);
    uint32_t half = UINT32_C(1) << (shift - 1);
    uint32_t r = base + kept; /* a carry rolls into the exponent, as it should */
    if (rest > half || (rest == half && (kept & 1))) r++;
    return (uint16_t)(sign | r);
}

float kft_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (man << 13) | (man ? 0x400000 : 0));
    if (exp == 0) {
        float v = (float)man / 16777216.0f; /* man * 2^-24, exact */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t kft_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);
    uint32_t rest = u & 0xffff, kept = u >> 16;
    if (rest > 0x8000 || (rest == 0x8000 && (kept & 1))) kept++;
    return (uint16_t)kept;
}

float kft_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

double kft_load(kf_dtype t, const void *p, int64_t i)
{
    switch (t) {
    case KF_F64: return ((const double *)p)[i];
    case KF_F32: return ((const float *)p)[i];
    case KF_F16: return kft_f16_to_f32(((const uint16_t *)p)[i]);
    case KF_BF16: return kft_bf16_to_f32(((const uint16_t *)p)[i]);
    case KF_I64: return (double)((const int64_t *)p)[i];
    case KF_I32: return ((const int32_t *)p)[i];
    case KF_I8: return ((const int8_t *)p)[i];
    case KF_U8: return ((const uint8_t *)p)[i];
    case KF_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return NAN;
    }
}

static int64_t to_i64(double v)
{
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0)) return 0;
    return (int64_t)v;
}

void kft_store(kf_dtype t, void *p, int64_t i, double v)
{
    switch (t) {
    case KF_F64: ((double *)p)[i] = v; break;
    case KF_F32: ((float *)p)[i] = (float)v; break;
    case KF_F16: ((uint16_t *)p)[i] = kft_f32_to_f16((float)v); break;
    case KF_BF16: ((uint16_t *)p)[i] = kft_f32_to_bf16((float)v); break;
    case KF_I64: ((int64_t *)p)[i] = to_i64(v); break;
    case KF_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)(uint64_t)to_i64(v); break;
    case KF_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)(uint64_t)to_i64(v); break;
    case KF_U8: ((uint8_t *)p)[i] = (uint8_t)(uint64_t)to_i64(v); break;
    case KF_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: break;
    }
}

void *kft_alloc(kf_dtype t, int64_t n)
{
    size_t sz = kf_dtype_size(t) * (size_t)(n > 0 ? n : 1);
    return calloc(1, sz);
}

uint64_t kft_rand_u64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

double kft_rand_uniform(uint64_t *s) { return (double)(kft_rand_u64(s) >> 11) * 0x1p-53; }

void kft_fill_random(kf_dtype t, void *buf, int64_t n, uint64_t *s, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (t == KF_BOOL) {
            v = (double)(kft_rand_u64(s) & 1);
        } else if (t == KF_F64 || t == KF_F32 || t == KF_F16 || t == KF_BF16) {
            v = lo + (hi - lo) * kft_rand_uniform(s);
        } else {
            double a = ceil(lo), b = floor(hi);
            v = b < a ? a : a + floor((b - a + 1) * kft_rand_uniform(s));
            if (v > b) v = b;
        }
        kft_store(t, buf, i, v);
    }
}

void kft_default_tol(kf_dtype t, double *rtol, double *atol)
{
    switch (t) {
    case KF_F64: *rtol = 1e-10; *atol = 1e-12; break;
    case KF_F32: *rtol = 1e-4; *atol = 1e-5; break;
    case KF_F16: *rtol = 1e-2; *atol = 1e-3; break;
    case KF_BF16: *rtol = 5e-2; *atol = 1e-2; break;
    default: *rtol = 0; *atol = 0; break;
    }
}

static int close_enough(double g, double w, double rtol, double atol)
{
    if (isnan(g) || isnan(w)) return isnan(g) && isnan(w);
    if (isinf(g) || isinf(w)) return g == w;
    return fabs(g - w) <= atol + rtol * fabs(w);
}

int kft_compare(kf_dtype t, const void *got, const void *want, int64_t n,
                double rtol, double atol, char *why, size_t whysz)
{
    int64_t bad = 0, first = -1, worst = -1;
    double worst_err = -1;
    for (int64_t i = 0; i < n; i++) {
        double g = kft_load(t, got, i), w = kft_load(t, want, i);
        if (close_enough(g, w, rtol, atol)) continue;
        if (bad++ == 0) first = i;
        double err = isfinite(g) && isfinite(w) ? fabs(g - w) / (atol + rtol * fabs(w) + 1e-300)
                                                : INFINITY;
        if (err > worst_err) {
            worst_err = err;
            worst = i;
        }
    }
    if (bad && why && whysz) {
        snprintf(why, whysz,
                 "%lld of %lld %s elements differ (rtol %g, atol %g): first [%lld] got %.9g "
                 "want %.9g; worst [%lld] got %.9g want %.9g",
                 (long long)bad, (long long)n, kf_dtype_name(t), rtol, atol, (long long)first,
                 kft_load(t, got, first), kft_load(t, want, first), (long long)worst,
                 kft_load(t, got, worst), kft_load(t, want, worst));
    } else if (why && whysz) {
        why[0] = 0;
    }
    return bad > 0x7fffffff ? 0x7fffffff : (int)bad;
}
