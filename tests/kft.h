/*
 * kft.h - helpers shared by kfuse's tests: 16-bit float conversions, typed
 * loads and stores, seeded random fills and a tolerance comparison.  They
 * use only the public API, and the float conversions are written
 * independently of the interpreter's so that each checks the other.
 */
#ifndef KFT_H
#define KFT_H

#include <stddef.h>
#include <stdint.h>

#include "kfuse.h"

/* IEEE half and bfloat16 (the top half of an f32), stored as bit patterns.
 * Conversions from f32 round to nearest even; NaN stays a (quiet) NaN. */
uint16_t kft_f32_to_f16(float x);
float kft_f16_to_f32(uint16_t h);
uint16_t kft_f32_to_bf16(float x);
float kft_bf16_to_f32(uint16_t h);

/* Element i of a buffer of dtype t, as a double; and the reverse (floats
 * rounded through f32 for f16/bf16, ints truncated and wrapped through
 * int64, bool as v != 0). */
double kft_load(kf_dtype t, const void *buf, int64_t i);
void kft_store(kf_dtype t, void *buf, int64_t i, double v);

/* A zeroed buffer of n elements of t (free with free()); NULL on failure. */
void *kft_alloc(kf_dtype t, int64_t n);

/* Deterministic random numbers (splitmix64); *state is the seed. */
uint64_t kft_rand_u64(uint64_t *state);
double kft_rand_uniform(uint64_t *state); /* in [0, 1) */

/* Fills n elements of t: floats uniform in [lo, hi), ints uniform among the
 * integers of [lo, hi], bool 0/1 with equal odds. */
void kft_fill_random(kf_dtype t, void *buf, int64_t n, uint64_t *state,
                     double lo, double hi);

/* Tolerances that suit results computed in t against the interpreter. */
void kft_default_tol(kf_dtype t, double *rtol, double *atol);

/* Compares n elements: |got - want| <= atol + rtol * |want|; NaN matches
 * NaN, an infinity only the same infinity; pass 0, 0 for exact equality
 * (what integers and bool usually want).  Returns the number of mismatches
 * (0: equal) and, when there are any, writes to why the first one, the
 * worst one and the count. */
int kft_compare(kf_dtype t, const void *got, const void *want, int64_t n,
                double rtol, double atol, char *why, size_t whysz);

#endif
