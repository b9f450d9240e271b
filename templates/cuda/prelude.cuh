/*
 * prelude.cuh - the head of every CUDA translation unit kfuse generates:
 * the same helper names as templates/cpu/prelude.h (storage conversions,
 * the math that the op table's expressions call), as device functions, so
 * that the shared expression generator (src/codegen/gen.c) serves both
 * targets.  NVRTC has no C library headers: the integer types and the few
 * macros the expressions use are defined here.
 */
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#define INT64_C(x) x##LL
#define INT64_MAX 9223372036854775807LL
#define INT64_MIN (-INT64_MAX - 1)
#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fc00000)

#define KF_RESTRICT __restrict__
#define KF_INLINE static __device__ __forceinline__

/* The buffer table of one compiled graph, passed by value to every kernel
 * (a __grid_constant__ parameter: reads come from the constant bank).
 * Generated code indexes it as B[slot]. */
#ifndef KF_NSLOTS
#define KF_NSLOTS 1
#endif
struct kf_bufs {
    void *p[KF_NSLOTS];
    /* every slot is at least 16-byte aligned (device allocations, scratch
     * offsets in multiples of 64, caller buffers checked by kf_run_device):
     * said here so that contiguous loads can be merged into vectors */
    __device__ __forceinline__ void *operator[](int i) const { return __builtin_assume_aligned(p[i], 16); }
};

/* 16 (or 8) bytes of a 16-byte-aligned local array stored to global memory
 * as one vector store: NVVM, left to itself, has split such a copy into
 * element stores where it lost sight of the destination's alignment
 * (8 times the stores for an f32 output).  No memory clobber: generated
 * code never reads back what it stores in the same kernel, and the loads of
 * the next columns may move above these stores. */
KF_INLINE void kf_st16(void *dst, const void *src)
{
    const uint4 u = *(const uint4 *)src;
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(__cvta_generic_to_global(dst)), "r"(u.x), "r"(u.y),
                 "r"(u.z), "r"(u.w));
}
KF_INLINE void kf_st8(void *dst, const void *src)
{
    const uint2 u = *(const uint2 *)src;
    asm volatile("st.global.v2.b32 [%0], {%1, %2};" ::"l"(__cvta_generic_to_global(dst)), "r"(u.x), "r"(u.y));
}

KF_INLINE uint32_t kf_fbits(float f) { return (uint32_t)__float_as_uint(f); }
KF_INLINE float kf_bitsf(uint32_t u) { return __uint_as_float(u); }

/* IEEE half <-> float by the hardware converter (round to nearest even),
 * through libdevice (cvt.f32.f16 / cvt.rn.f16.f32) rather than inline asm:
 * an asm statement is opaque to the optimiser, which then keeps apart loads
 * that it would otherwise merge into vectors (the mm template's prologues). */
extern "C" __device__ float __nv_half2float(unsigned short);
extern "C" __device__ unsigned short __nv_float2half_rn(float);
KF_INLINE float kf_h2f(uint16_t h) { return __nv_half2float(h); }
KF_INLINE uint16_t kf_f2h(float f) { return __nv_float2half_rn(f); }
KF_INLINE float kf_bf2f(uint16_t h) { return kf_bitsf((uint32_t)h << 16); }
KF_INLINE uint16_t kf_f2bf(float f)
{
    uint32_t u = kf_fbits(f);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(f != f ? ((u >> 16) | 0x40u) : r);
}
KF_INLINE float kf_round_h(float x) { return kf_h2f(kf_f2h(x)); }
KF_INLINE float kf_round_bf(float x) { return kf_bf2f(kf_f2bf(x)); }

/* f16x2 arithmetic (round to nearest even, as the f32 op then the rounding
 * to f16: double rounding is harmless for +, -, * since 24 >= 2 * 11 + 2),
 * for the mm template's packed prologues */
KF_INLINE uint32_t kf_h2_dup(uint16_t h) { return (uint32_t)h * 0x10001u; }
KF_INLINE uint32_t kf_h2_pack(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }
KF_INLINE uint32_t kf_h2_add(uint32_t a, uint32_t b)
{
    uint32_t r;
    asm("add.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
KF_INLINE uint32_t kf_h2_sub(uint32_t a, uint32_t b)
{
    uint32_t r;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
KF_INLINE uint32_t kf_h2_mul(uint32_t a, uint32_t b)
{
    uint32_t r;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* the helpers both targets share follow this prelude: templates/common/helpers.h */

/* ---- float transcendentals: the CUDA math library (a few ulp); fast-math
 * intrinsics only in sigmoid, silu and gelu below, whose results stay
 * within the CPU target's tolerance too ---- */
KF_INLINE float kf_exp_f(float a) { return expf(a); }
/* sigmoid and silu in f32 from the hardware's exp2 and reciprocal
 * approximations (a few ulp, not the last one): they run in matmul
 * epilogues over every element, where the exact exp and division cost more
 * instructions than the tensor cores leave time for.  The approximations
 * flush subnormal results to zero: one MUFU instruction each, where
 * __expf's handling of subnormal results costs four more an element; in
 * sigmoid, silu and gelu a flushed exp2 or reciprocal only changes results
 * that are themselves subnormal or lost in 1 + x. */
KF_INLINE float kf_ex2_ftz(float x)
{
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
KF_INLINE float kf_rcp_ftz(float x)
{
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
#define KF_LOG2E_F 1.44269504088896341f
KF_INLINE float kf_sigmoid_f(float a) { return kf_rcp_ftz(1.0f + kf_ex2_ftz(a * -KF_LOG2E_F)); }
KF_INLINE float kf_silu_f(float a) { return a * kf_rcp_ftz(1.0f + kf_ex2_ftz(a * -KF_LOG2E_F)); }
KF_INLINE float kf_tanh_f(float a) { return tanhf(a); }
KF_INLINE float kf_erf_f(float a) { return erff(a); }
/* gelu's erf as the CPU target computes it (Abramowitz & Stegun 7.1.26,
 * absolute error <= 1.5e-7), from the hardware's reciprocal and exp2
 * approximations: about half of erff's instructions, in matmul epilogues
 * over every element.  1 + erf(a / sqrt 2) is taken as 2 - erfc or erfc,
 * so that the negative side loses nothing to cancellation. */
KF_INLINE float kf_gelu_f(float a)
{
    const float z = fabsf(a) * 0.70710678118654752f;
    const float t = kf_rcp_ftz(fmaf(0.3275911f, z, 1.0f));
    float p = fmaf(1.061405429f, t, -1.453152027f);
    p = fmaf(p, t, 1.421413741f);
    p = fmaf(p, t, -0.284496736f);
    p = fmaf(p, t, 0.254829592f);
    const float q = p * t * kf_ex2_ftz(z * z * -KF_LOG2E_F); /* erfc(z) */
    return 0.5f * a * (a >= 0.0f ? 2.0f - q : q);
}
KF_INLINE float kf_gelu_tanh_f(float a)
{
    return 0.5f * a * (1.0f + tanhf(0.79788456080286535588f * (a + 0.044715f * a * a * a)));
}
