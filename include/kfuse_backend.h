/*
 * kfuse_backend.h - the template-backend ABI: everything a plug-in needs.
 *
 * A backend owns kernels that kfuse did not write (a hand-written library, a
 * generator of its own, a DSL) and still gets the cheap elementwise work
 * around them fused.  kfuse asks it, per graph node, whether it implements
 * the op; for every node it claimed, kfuse hands it a *fusion spec*: the
 * template's inputs and outputs, the epilogues that may be spliced into its
 * stores and the prologues that may be spliced into its loads (as generated
 * code and as expression trees), and the buffers they need.  The backend
 * returns the fused kernel's source, its entry symbol and argument order,
 * and which hooks it accepted.  What it refuses, kfuse runs unfused after
 * (epilogues) or before (prologues) its kernel.
 *
 * A plug-in is a shared object exporting
 *
 *     const kf_backend *kf_backend_entry(void);
 *
 * whose result's first field is KF_BACKEND_ABI_VERSION.  A version that
 * differs from the one kfuse was built with is refused.
 *
 * The C target: the fused unit is
 *
 *     <kfuse's prelude: stdint, math, kf_h2f/kf_f2h, kf_exp_f, ...>
 *     <every hook's code: static inline functions>
 *     <the backend's source>
 *
 * so the backend's source calls the hooks by name and defines
 *
 *     void ENTRY(void **args);
 *
 * where args[i] points at buffer out->args[i] of spec->buffers.  Hooks take
 * `void **B`, a table indexed like spec->buffers: the backend builds it from
 * args (B[out->args[i]] = args[i]) and passes it through.
 *
 * The CUDA target (spec->device == KF_DEVICE_CUDA): the unit is CUDA C++,
 * compiled by NVRTC, which has no C library headers:
 *
 *     <kfuse's CUDA prelude (templates/cuda/prelude.cuh): the integer types,
 *      INT64_C, INFINITY, kf_h2f/kf_f2h, kf_exp_f, ...; KF_INLINE is
 *      `static __device__ __forceinline__`>
 *     <every hook's code: the same functions, device functions here>
 *     <the backend's source>
 *
 * and the backend's source defines a device function
 *
 *     __device__ void ENTRY(void **args);
 *
 * that every thread of the launch calls (threadIdx, blockIdx, __shared__
 * and __syncthreads are its to use); args and the hooks' B are as above.
 * kfuse writes the kernel around it,
 *
 *     extern "C" __global__ void __launch_bounds__(THREADS)
 *     kf_kN(const __grid_constant__ kf_bufs B)
 *     { void *args[n]; args[i] = B[the slot of out->args[i]]; ENTRY(args); }
 *
 * and launches it with out->grid and out->block, THREADS being the block's
 * size: every dim at least 1, the grid at most 2^31-1 x 65535 x 65535, the
 * block at most 1024 x 1024 x 64 and 1024 threads in all, else the compile
 * fails with an error naming the backend.  No dynamic shared memory: static
 * __shared__ only.  Buffers are device pointers, 16-byte aligned.
 *
 * Devices: implements() is asked per node while the graph is built, before
 * the device is known (q->device is then KF_DEVICE_CPU), and again when the
 * graph is compiled for another device (q->device is that device).  A node
 * declined then is computed by kfuse's own ops for that compile (explain
 * says so); the graph keeps the node for other compiles.  fuse() gets the
 * device compiled for in spec->device; if it fails there, the compile
 * stops with "backend 'NAME' failed to fuse OP: message".
 */
#ifndef KFUSE_BACKEND_H
#define KFUSE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kfuse.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KF_BACKEND_ABI_VERSION 1
#define KF_BACKEND_ENTRY_SYMBOL "kf_backend_entry"

/* A tensor: row-major strides in elements. */
typedef struct kf_tensor_desc {
    const char *name;   /* the graph name (a label, not an identifier) */
    kf_dtype dtype;
    int ndim;
    int64_t shape[KF_MAX_DIMS];
    int64_t strides[KF_MAX_DIMS];
} kf_tensor_desc;

/* What a backend is asked about one node. */
typedef struct kf_op_query {
    const char *op;                 /* "softmax", "layer_norm", "rms_norm", ... */
    const kf_attrs *attrs;          /* axes[0] normalised to >= 0 */
    kf_device device;
    int ninputs;
    const kf_tensor_desc *inputs;
    int noutputs;
    const kf_tensor_desc *outputs;
} kf_op_query;

/* The roles of the buffers a fused kernel may touch. */
typedef enum kf_buffer_role {
    KF_BUF_INPUT,       /* a template input read as it is */
    KF_BUF_OUTPUT,      /* a template output that must be stored */
    KF_BUF_EXTRA_IN,    /* read by an epilogue or prologue */
    KF_BUF_EXTRA_OUT,   /* written by an epilogue */
    KF_BUF_SOURCE       /* read by a prologue in place of its input */
} kf_buffer_role;

typedef struct kf_buffer_desc {
    kf_tensor_desc t;
    kf_buffer_role role;
    int of;             /* the input or output it belongs to, else -1 */
} kf_buffer_desc;

/* An expression tree, for backends that lower hooks themselves. */
typedef enum kf_expr_kind {
    KF_EXPR_VALUE,      /* the template's value: the accumulator (epilogue) */
    KF_EXPR_LOAD,       /* buffers[buffer] at the hook's index, NumPy-broadcast */
    KF_EXPR_CONST,      /* a scalar */
    KF_EXPR_OP          /* op(args...): an op name of the .kf format */
} kf_expr_kind;

typedef struct kf_expr {
    kf_expr_kind kind;
    kf_dtype dtype;
    const char *op;     /* KF_EXPR_OP; "cast" converts to dtype */
    int nargs;
    const struct kf_expr *const *args;
    int buffer;         /* KF_EXPR_LOAD */
    double value;       /* KF_EXPR_CONST */
} kf_expr;

/* One epilogue (on an output) or prologue (on an input).
 *
 * C code, for a target of rank R with index i0..i{R-1}:
 *   epilogue: static inline void FN(void **B, int64_t i0, ..., float acc);
 *             computes and stores every fused result at that index, and
 *             stores the output itself when it is a KF_BUF_OUTPUT buffer;
 *   prologue: static inline float FN(void **B, int64_t i0, ...);
 *             returns the input's value (acc and the result are double for
 *             f64 tensors, float otherwise).
 * expr: a prologue's value; an epilogue's stores are store_buffer[k] =
 * store_expr[k].  NULL where the hook reads through a view the tree cannot
 * express: then only the code is available. */
typedef struct kf_hook {
    int target;                     /* output (epilogue) / input (prologue) */
    const char *fn;
    const char *code;
    const kf_expr *expr;            /* prologue */
    int nstores;                    /* epilogue */
    const int *store_buffer;
    const kf_expr *const *store_expr;
    int nbuffers;                   /* the extra buffers the hook touches */
    const int *buffers;
    int nsources;                   /* prologue: the buffers replacing its input */
    const int *sources;
    const char *names;              /* the fused graph nodes, comma-separated */
} kf_hook;

typedef struct kf_fusion_spec {
    int abi_version;
    kf_device device;
    const char *op;
    const kf_attrs *attrs;
    const char *entry;              /* a unique symbol to define */
    int ninputs;
    const kf_tensor_desc *inputs;
    const int *input_buffer;        /* per input: its buffer, or -1 (prologue) */
    int noutputs;
    const kf_tensor_desc *outputs;
    const int *output_buffer;       /* per output: its buffer, or -1 when
                                       only its epilogue consumes it */
    int nepilogues;
    const kf_hook *epilogues;
    int nprologues;
    const kf_hook *prologues;
    int nbuffers;
    const kf_buffer_desc *buffers;
} kf_fusion_spec;

/* What fuse() returns.  Strings and arrays are the backend's, released by
 * release(). */
typedef struct kf_fused_kernel {
    const char *source;
    const char *entry;
    int nargs;
    const int *args;                /* indices into spec->buffers */
    int64_t grid[3], block[3];      /* CUDA: the launch, checked (see the top);
                                       CPU: informational */
    uint32_t accepted_epilogues;    /* bit i: spec->epilogues[i] is fused */
    uint32_t accepted_prologues;    /* bit i: spec->prologues[i] is fused */
} kf_fused_kernel;

typedef struct kf_backend {
    int abi_version;                /* KF_BACKEND_ABI_VERSION; first, always */
    const char *name;
    void *ctx;                      /* passed back to every call */
    /* 1: this node is the backend's template; 0: kfuse lowers it itself.
     * Asked at build time, for every device (see the top). */
    int (*implements)(void *ctx, const kf_op_query *q);
    /* 0 with *out filled, or nonzero with a message in err */
    int (*fuse)(void *ctx, const kf_fusion_spec *spec, kf_fused_kernel *out, char *err, size_t errsz);
    void (*release)(void *ctx, kf_fused_kernel *k);  /* may be NULL */
    void (*destroy)(void *ctx);                       /* may be NULL */
} kf_backend;

typedef const kf_backend *(*kf_backend_entry_fn)(void);

/* Registering backends on a context; graphs built afterwards consult them
 * in registration order.  The backend must outlive the context. */
kf_status kf_ctx_add_backend(kf_ctx *ctx, const kf_backend *b);
/* A plug-in from a shared object, or a compiled-in one by name ("rownorm"). */
kf_status kf_ctx_load_backend(kf_ctx *ctx, const char *path_or_name);
/* The compiled-in rownorm backend. */
const kf_backend *kf_backend_rownorm(void);

#ifdef __cplusplus
}
#endif
#endif
