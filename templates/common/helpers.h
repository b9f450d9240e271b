/*
 * helpers.h - the helpers of generated code that both targets spell alike:
 * float to integer, integer ops, double ops through the math library, and
 * the simple float ops.  Pasted after the target's prelude
 * (templates/cpu/prelude.h, templates/cuda/prelude.cuh), which defines
 * KF_INLINE, the integer types, the storage conversions and the float
 * transcendentals (vectorisable approximations on the CPU, the CUDA math
 * library on the GPU).
 */
/* Float to integer: NaN and out-of-range values give 0, as the reference
 * interpreter does (a plain C cast would be undefined). */
KF_INLINE int64_t kf_f2i(double x)
{
    return (x != x || x >= 9.2233720368547758e18 || x <= -9.2233720368547758e18) ? 0 : (int64_t)x;
}

/* ---- integer ---- */
KF_INLINE int64_t kf_div_i(int64_t a, int64_t b)
{
    return b == 0 ? 0 : (b == -1 ? (int64_t)(0 - (uint64_t)a) : a / b);
}
KF_INLINE int64_t kf_max_i(int64_t a, int64_t b) { return a > b ? a : b; }
KF_INLINE int64_t kf_min_i(int64_t a, int64_t b) { return a < b ? a : b; }
KF_INLINE int64_t kf_abs_i(int64_t a) { return a < 0 ? (int64_t)(0 - (uint64_t)a) : a; }
KF_INLINE int64_t kf_relu_i(int64_t a) { return a > 0 ? a : 0; }
KF_INLINE int64_t kf_floor_i(int64_t a) { return a; }
KF_INLINE int64_t kf_ceil_i(int64_t a) { return a; }
KF_INLINE int64_t kf_sign_i(int64_t a) { return (a > 0) - (a < 0); }

/* ---- double: the math library ---- */
KF_INLINE double kf_div_d(double a, double b) { return a / b; }
KF_INLINE double kf_pow_d(double a, double b) { return pow(a, b); }
KF_INLINE double kf_max_d(double a, double b) { return (a != a || a > b) ? a : b; }
KF_INLINE double kf_min_d(double a, double b) { return (a != a || a < b) ? a : b; }
KF_INLINE double kf_abs_d(double a) { return fabs(a); }
KF_INLINE double kf_exp_d(double a) { return exp(a); }
KF_INLINE double kf_log_d(double a) { return log(a); }
KF_INLINE double kf_sqrt_d(double a) { return sqrt(a); }
KF_INLINE double kf_rsqrt_d(double a) { return 1.0 / sqrt(a); }
KF_INLINE double kf_recip_d(double a) { return 1.0 / a; }
KF_INLINE double kf_sigmoid_d(double a) { return 1.0 / (1.0 + exp(-a)); }
KF_INLINE double kf_tanh_d(double a) { return tanh(a); }
KF_INLINE double kf_relu_d(double a) { return a > 0 ? a : (a != a ? a : 0.0); }
KF_INLINE double kf_erf_d(double a) { return erf(a); }
KF_INLINE double kf_gelu_d(double a) { return 0.5 * a * (1.0 + erf(a * 0.70710678118654752440)); }
KF_INLINE double kf_gelu_tanh_d(double a)
{
    return 0.5 * a * (1.0 + tanh(0.79788456080286535588 * (a + 0.044715 * a * a * a)));
}
KF_INLINE double kf_silu_d(double a) { return a / (1.0 + exp(-a)); }
KF_INLINE double kf_sin_d(double a) { return sin(a); }
KF_INLINE double kf_cos_d(double a) { return cos(a); }
KF_INLINE double kf_floor_d(double a) { return floor(a); }
KF_INLINE double kf_ceil_d(double a) { return ceil(a); }
KF_INLINE double kf_sign_d(double a) { return a != a ? a : (double)((a > 0) - (a < 0)); }

/* ---- float: the operations both targets spell alike ---- */
KF_INLINE float kf_div_f(float a, float b) { return a / b; }
KF_INLINE float kf_pow_f(float a, float b) { return powf(a, b); }
KF_INLINE float kf_max_f(float a, float b) { return (a != a || a > b) ? a : b; }
KF_INLINE float kf_min_f(float a, float b) { return (a != a || a < b) ? a : b; }
KF_INLINE float kf_abs_f(float a) { return fabsf(a); }
KF_INLINE float kf_log_f(float a) { return logf(a); }
KF_INLINE float kf_sqrt_f(float a) { return sqrtf(a); }
KF_INLINE float kf_rsqrt_f(float a) { return 1.0f / sqrtf(a); }
KF_INLINE float kf_recip_f(float a) { return 1.0f / a; }
KF_INLINE float kf_relu_f(float a) { return a > 0 ? a : (a != a ? a : 0.0f); }
KF_INLINE float kf_sin_f(float a) { return sinf(a); }
KF_INLINE float kf_cos_f(float a) { return cosf(a); }
KF_INLINE float kf_floor_f(float a) { return floorf(a); }
KF_INLINE float kf_ceil_f(float a) { return ceilf(a); }
KF_INLINE float kf_sign_f(float a) { return a != a ? a : (float)((a > 0) - (a < 0)); }
