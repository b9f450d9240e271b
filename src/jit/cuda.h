/*
 * cuda.h - the JIT and runtime of the CUDA target: NVRTC compiles a
 * generated translation unit to a cubin for the device's own architecture
 * (sm_90a on an H100), cached on disk beside the C objects; the driver API
 * loads and launches it.  libnvrtc and libcuda are opened with dlopen, so
 * kfuse builds and runs without them and only --device cuda fails.
 * Not thread-safe: one thread drives the device at a time.
 */
#ifndef KFUSE_JIT_CUDA_H
#define KFUSE_JIT_CUDA_H

#include "../kfuse-impl.h"

typedef struct kf_cuda_dev {
    int major, minor, nsm, smem_optin;
    char name[128];
} kf_cuda_dev;

/* Loads libcuda, initialises device 0 and makes its primary context
 * current.  0, or -1 with a message on ctx. */
int kf_cuda_init(kf_ctx *ctx, kf_cuda_dev *dev);
/* Loads libnvrtc alone (for compile-only use).  0 or -1 with a message. */
int kf_cuda_nvrtc_load(kf_ctx *ctx);

typedef struct kf_cuda_module {
    void *mod;             /* CUmodule; NULL when only compiled */
    char src_path[1024];
    char bin_path[1024];
    bool cached;
} kf_cuda_module;

/* Compiles src for sm_<major><minor> (the "a" variant on 9.0), or finds it
 * in the cache, and loads it.  compile_only: compile to PTX for
 * compute_<arch> and load nothing (no device needed).  On failure: an error
 * naming the generated source file, with NVRTC's log. */
int kf_cuda_compile(kf_ctx *ctx, const char *src, const char *cache_dir, int major, int minor,
                    int compile_only, kf_cuda_module *out);
void kf_cuda_unload(kf_cuda_module *m);
/* The kernel `name`, with its dynamic shared memory limit raised to smem
 * bytes; NULL with an error. */
void *kf_cuda_function(kf_ctx *ctx, kf_cuda_module *m, const char *name, unsigned smem);

/* Launches fn on the default stream; args[i] points to the kernel's
 * argument i (the buffer table, then any tensor maps).  Asynchronous. */
int kf_cuda_launch(kf_ctx *ctx, void *fn, const unsigned grid[3], const unsigned block[3], unsigned smem,
                   void **args);
int kf_cuda_alloc(kf_ctx *ctx, size_t bytes, uint64_t *dptr);
void kf_cuda_free(uint64_t dptr);
int kf_cuda_h2d(kf_ctx *ctx, uint64_t dst, const void *src, size_t bytes);
int kf_cuda_d2h(kf_ctx *ctx, void *dst, uint64_t src, size_t bytes);
int kf_cuda_sync(kf_ctx *ctx); /* waits for queued work; reports its errors */

/* ---- a compiled graph on the device ---- */
struct kf_sched;
typedef struct kf_cuda_plan kf_cuda_plan;
/* Generates the CUDA source of schedule s, compiles and loads it, gives
 * every buffer slot device memory, and tunes the tile configuration of
 * large mm templates (the winner cached by shape, dtype and fused code).
 * With o->compile_only: stops after NVRTC's PTX.  0 with *out set; 1 when
 * an external backend refused part of its fusion (marked in refused_epi /
 * refused_pro, as kf_cg_cuda_generate): schedule again; -1 with an error. */
int kf_cuda_plan_new(struct kf_sched *s, const kf_options *o, char *refused_epi, char *refused_pro,
                     kf_cuda_plan **out);
void kf_cuda_plan_free(kf_cuda_plan *p);
const char *kf_cuda_plan_source(const kf_cuda_plan *p);
/* Host buffers: copied in, the kernels run, copied out; synchronous. */
kf_status kf_cuda_plan_run(kf_cuda_plan *p, const void *const *in, void *const *out);
/* Device buffers (NULL arrays: the plan's own); queued, not waited for. */
kf_status kf_cuda_plan_run_device(kf_cuda_plan *p, void *const *din, void *const *dout);
kf_status kf_cuda_plan_wait(kf_cuda_plan *p);
/* Milliseconds one run of each of n whole plans takes on its own buffers,
 * in ms[j]: medians of reps, after a warm-up, the plans sampled in turn (so
 * that each sees the GPU in the same state); -1 with an error. */
int kf_cuda_plans_time(kf_cuda_plan *const *p, int n, int reps, double *ms);
/* The tuning key of schedule kernel `kernel` (a tuned mm template), else
 * NULL: shape, dtype, fused code and architecture. */
const char *kf_cuda_plan_key(const kf_cuda_plan *p, int kernel);
/* Did the plan tune (time) anything, or would it (tuning on, not
 * compile_only)? */
bool kf_cuda_plan_measures(const kf_cuda_plan *p);
/* A decision cached beside the tuning results as kf_<name>.txt: the number
 * stored, or -1 when there is none. */
int kf_cuda_plan_cached(const kf_cuda_plan *p, const char *name);
void kf_cuda_plan_cache(const kf_cuda_plan *p, const char *name, int v);
#endif
