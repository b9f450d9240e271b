/*
 * prelude.h - the head of every C translation unit kfuse generates: the
 * headers, the storage conversions (f16, bf16) and the float
 * transcendentals that the op table's C expressions call (kf_exp_f,
 * kf_gelu_f, ...), as branch-free approximations (relative error about
 * 1e-7) so that fused loops vectorise.  templates/common/helpers.h, pasted
 * after it, has the helpers both targets spell alike.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define KF_RESTRICT __restrict__
#define KF_INLINE static inline __attribute__((always_inline))

KF_INLINE uint32_t kf_fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
KF_INLINE float kf_bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* IEEE half <-> float, round to nearest even, subnormals, inf and NaN. */
KF_INLINE float kf_h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    float mag = kf_bitsf(em << 13) * 0x1p112f;      /* normal and subnormal */
    uint32_t bits = em >= 0x7c00u ? ((em << 13) | 0x7f800000u) : kf_fbits(mag);
    return kf_bitsf(bits | sign);
}

KF_INLINE uint16_t kf_f2h(float f)
{
    uint32_t w = kf_fbits(f), w2 = w + w, sign = w & 0x80000000u;
    float base = (fabsf(f) * 0x1p112f) * 0x1p-110f; /* overflow to inf */
    uint32_t bias = w2 & 0xff000000u;
    bias = bias < 0x71000000u ? 0x71000000u : bias;
    base = kf_bitsf((bias >> 1) + 0x07800000u) + base; /* rounds the mantissa */
    uint32_t b = kf_fbits(base);
    uint32_t nonsign = ((b >> 13) & 0x7c00u) + (b & 0x0fffu);
    return (uint16_t)((sign >> 16) | (w2 > 0xff000000u ? 0x7e00u : nonsign));
}

KF_INLINE float kf_bf2f(uint16_t h) { return kf_bitsf((uint32_t)h << 16); }
KF_INLINE uint16_t kf_f2bf(float f)
{
    uint32_t u = kf_fbits(f);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(f != f ? ((u >> 16) | 0x40u) : r);
}
KF_INLINE float kf_round_h(float x) { return kf_h2f(kf_f2h(x)); }
KF_INLINE float kf_round_bf(float x) { return kf_bf2f(kf_f2bf(x)); }

/* the helpers both targets share follow this prelude: templates/common/helpers.h */

/* ---- float transcendentals: branch-free, so that loops over them vectorise ---- */
/* exp: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n built
 * in the exponent bits.  No calls and no branches (rounding by the 1.5*2^23
 * trick, clamps as selects), so that loops over it vectorise. */
KF_INLINE float kf_exp_f(float x)
{
    float c = x > 88.0f ? 88.0f : x;
    c = c < -87.33654475f ? -87.33654475f : c;
    const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = c - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    float y = p * kf_bitsf((uint32_t)((int32_t)n + 127) << 23);
    y = x < -87.33654475f ? 0.0f : y;
    y = x > 88.72283935546875f ? INFINITY : y;
    return x != x ? x : y;
}

KF_INLINE float kf_sigmoid_f(float a) { return 1.0f / (1.0f + kf_exp_f(-a)); }
KF_INLINE float kf_silu_f(float a) { return a / (1.0f + kf_exp_f(-a)); }

KF_INLINE float kf_tanh_f(float x)
{
    float ax = fabsf(x);
    float e = kf_exp_f(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    /* small |x|: the odd Taylor series keeps the relative error low */
    float x2 = x * x;
    float small = ax * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * -0.0539682540f)));
    t = ax < 0.04f ? small : t;
    t = x < 0 ? -t : t;
    return x != x ? x : t;
}

/* erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), with the
 * Taylor series near 0 for relative accuracy. */
KF_INLINE float kf_erf_f(float x)
{
    float ax = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float y = 1.0f - p * t * kf_exp_f(-ax * ax);
    float x2 = x * x;
    float small = ax * 1.1283791671f * (1.0f + x2 * (-0.333333333f + x2 * 0.1f));
    y = ax < 0.01f ? small : y;
    y = x < 0 ? -y : y;
    return x != x ? x : y;
}

KF_INLINE float kf_gelu_f(float a) { return 0.5f * a * (1.0f + kf_erf_f(a * 0.70710678118654752f)); }
KF_INLINE float kf_gelu_tanh_f(float a)
{
    return 0.5f * a * (1.0f + kf_tanh_f(0.79788456080286535588f * (a + 0.044715f * a * a * a)));
}
