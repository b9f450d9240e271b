/*
 * cudagen.h - the CUDA code generator: one CUDA C++ translation unit per
 * schedule (compiled by NVRTC), one __global__ kernel per scheduled kernel
 * (several per mm template while its tile configuration is being tuned),
 * and the launch list that the runtime walks in order.  The expressions come
 * from the shared generator (gen.h); templates/cuda/prelude.cuh defines the
 * helpers they call.
 */
#ifndef KFUSE_CUDAGEN_H
#define KFUSE_CUDAGEN_H

#include "../gen.h"

/* A TMA tensor map of the warp-specialised mm kernel, encoded by the
 * runtime at launch from the slot's pointer, zeros outside: a plain
 * operand's (f16 or bf16, 128-byte swizzle, the wgmma layout) or the raw
 * source of an operand's prologue (its bytes as they are, no swizzle). */
typedef struct kf_cuda_tmap {
    int slot;              /* -1: unused (a zeroed map is passed) */
    int dtype;             /* CUtensorMapDataType: 0 u8, 1 u16, 2 u32, 6 f16, 9 bf16 */
    int swizzle;           /* CUtensorMapSwizzle: 3 128-byte, 0 none */
    int rank;              /* 2, or 3 with the batch dim */
    uint64_t dim[3];       /* elements, innermost first */
    uint64_t stride[2];    /* bytes, of dims 1 and 2 */
    unsigned box[3];       /* elements, innermost first (the batch's: 1) */
} kf_cuda_tmap;

/* One kernel launch of the wrapper, in run order. */
typedef struct kf_cuda_call {
    char name[48];
    int kernel;            /* the schedule's kernel id */
    int variant;           /* tile configuration (mm templates), else 0 */
    int tuned;             /* several variants of this kernel: pick one */
    unsigned grid[3], block[3];
    unsigned smem;         /* dynamic shared memory bytes */
    char key[40];          /* mm templates: hash of shape, dtype and fused code */
    int ntmap;             /* 2: the kernel takes (kf_bufs, tensor map A, tensor map B) */
    kf_cuda_tmap tmap[2];
} kf_cuda_call;

typedef struct kf_cuda_prog {
    kf_cprog prog;         /* source, slots, constants, scratch */
    kf_cuda_call *launch; /* owned */
    int nlaunch;
} kf_cuda_prog;

/* The tile configurations of the tensor-core mm template. */
typedef struct kf_mm_cfg {
    int bm, bn, bk, wm, wn, stages;
    int wgmma; /* 1: the Hopper kernel (sm_90): warpgroups of 64 x bn; 2: its
                  warp-specialised, persistent form (TMA loads); 3: that, with
                  the epilogue staged in shared memory and run under the next
                  tile's products; 4: ping-pong, the two consumer warpgroups
                  taking whole tiles in turn (TMA operands only); 5:
                  streaming, B resident in shared memory, 64-row tiles of A
                  taken in turn by two consumers (TMA operands, one batch,
                  N <= 256, K <= 256); 6: 2's kernel with the epilogue
                  through shared memory (stmatrix; TMA operands); 7: the
                  product transposed, an 8-bit B (a weight with a packed
                  prologue) as wgmma's A operand from registers (bm x bn
                  256 x 128, A by TMA, one batch) */
    int ctas;  /* with wgmma 2: blocks per multiprocessor (else 1); two
                  interleave one's epilogue with the other's products */
    int pair;  /* with wgmma 2: 2 puts blocks in clusters of two that share
                  the B tiles of neighbouring row blocks by TMA multicast
                  (TMA operands only); else 0 */
} kf_mm_cfg;
extern const kf_mm_cfg kf_mm_cfgs[];
extern const int kf_mm_ncfgs;

typedef struct kf_cuda_target {
    int sm_major, sm_minor; /* compute capability */
    int nsm;                /* multiprocessors */
    int smem_optin;         /* most dynamic shared memory a block may have */
    /* asked per tensor-core mm template with its tuning key: the tile
     * configuration to use, or -1 to emit every candidate (to be timed);
     * NULL: a heuristic choice */
    int (*pick)(void *ud, const char *key);
    void *ud;
} kf_cuda_target;

/* 0: done; 1: an external backend refused part of its fusion, marked in
 * refused_epi / refused_pro (per node id): schedule again (as
 * kf_cg_c_generate); -1: an error on the context. */
int kf_cg_cuda_generate(kf_sched *s, const kf_cuda_target *t, char *refused_epi, char *refused_pro, kf_cuda_prog *out);
void kf_cuda_prog_free(kf_ctx *ctx, kf_cuda_prog *p);
/* "128x256x32 w64x64 s3", "128x256x64 wgmma s4" */
void kf_mm_cfg_name(int cfg, char *buf, size_t sz);

#endif
