/*
 * kfuse.h - the whole public API of kfuse, a tensor-graph compiler that fuses
 * elementwise work into the loads and stores of template kernels (GEMM).
 *
 * A worked example of the whole flow:
 *
 *     kf_ctx *ctx = kf_ctx_new(NULL);                  // NULL: malloc/free
 *     kf_graph *g = kf_graph_new(ctx);
 *     kf_node *a = kf_input(g, "a", KF_F32, 2, (int64_t[]){512, 256});
 *     kf_node *b = kf_input(g, "b", KF_F32, 2, (int64_t[]){256, 128});
 *     kf_node *bias = kf_input(g, "bias", KF_F32, 1, (int64_t[]){128});
 *     kf_node *y = kf_unary(g, "relu", kf_binary(g, "add", kf_matmul(g, a, b), bias));
 *     kf_output(g, y);                                 // y: one fused kernel
 *     kf_compiled *c = kf_compile(g, &(kf_options){.device = KF_DEVICE_CPU});
 *     if (!c) fprintf(stderr, "%s\n", kf_errmsg(ctx));
 *     kf_run(c, (const void *[]){A, B, BIAS}, (void *[]){Y});
 *     kf_compiled_free(c); kf_graph_free(g); kf_ctx_free(ctx);
 *
 * Errors: builder calls return NULL on error and leave a status and message
 * on the context; a NULL operand makes a builder call return NULL without a
 * new message, so a chain of calls can be checked once at its end.  Every
 * _free accepts NULL.  The library never prints and never exits.
 */
#ifndef KFUSE_H
#define KFUSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KF_MAX_DIMS 8

typedef enum kf_dtype {
    KF_F64, KF_F32, KF_F16, KF_BF16, KF_I64, KF_I32, KF_I8, KF_U8, KF_BOOL,
    KF_NDTYPES
} kf_dtype;

typedef enum kf_status {
    KF_OK = 0,
    KF_ERR_INVALID,     /* bad graph, shape, dtype, attribute, syntax */
    KF_ERR_NOMEM,       /* the allocator returned NULL */
    KF_ERR_COMPILE,     /* the JIT compiler failed (message has the log) */
    KF_ERR_IO,          /* a file could not be read or written */
    KF_ERR_UNSUPPORTED, /* valid, but not implemented (device, op, dtype) */
    KF_ERR_RUNTIME      /* the compiled code failed while running */
} kf_status;

typedef enum kf_device { KF_DEVICE_CPU, KF_DEVICE_CUDA } kf_device;

typedef struct kf_ctx kf_ctx;
typedef struct kf_graph kf_graph;
typedef struct kf_node kf_node;
typedef struct kf_compiled kf_compiled;

/* All heap use of a context goes through these three; ud is passed back. */
typedef struct kf_allocator {
    void *(*alloc)(void *ud, size_t size);
    void *(*realloc)(void *ud, void *p, size_t size);
    void (*free)(void *ud, void *p);
    void *ud;
} kf_allocator;

/* ---- context and errors ------------------------------------------------ */
kf_ctx *kf_ctx_new(const kf_allocator *al);   /* NULL: the C library's */
void kf_ctx_free(kf_ctx *ctx);
kf_status kf_errcode(const kf_ctx *ctx);       /* status of the last failure */
const char *kf_errmsg(const kf_ctx *ctx);      /* "" when none */
void kf_clear_error(kf_ctx *ctx);

const char *kf_dtype_name(kf_dtype t);         /* "f32", ...; NULL if bad */
int kf_dtype_parse(const char *s, kf_dtype *out); /* 1 on success */
size_t kf_dtype_size(kf_dtype t);

/* ---- building a graph -------------------------------------------------- */
kf_graph *kf_graph_new(kf_ctx *ctx);
void kf_graph_free(kf_graph *g);
kf_ctx *kf_graph_ctx(const kf_graph *g);

/* The source place that nodes created from now on carry; errors are then
 * reported as "FILE:LINE:COL: error: ...".  file is copied; NULL clears. */
void kf_graph_set_loc(kf_graph *g, const char *file, int line, int col);

/* Attributes of ops that take them.  Zero-initialise, then set what applies:
 *   reductions sum max min mean: axes (none = all), keepdims
 *   softmax, layer_norm, rms_norm: axes[0] (default -1), eps (layer_norm 1e-5)
 *   cast: dtype (with has_dtype = 1); transpose: perm (none = reverse); reshape, expand: shape
 *   slice: axes[0], start, end, step (end = INT64_MAX means to the end)
 *   concat: axes[0] */
typedef struct kf_attrs {
    int naxes;
    int64_t axes[KF_MAX_DIMS];
    int keepdims;
    kf_dtype dtype;
    int has_dtype;          /* cast: dtype is set (KF_F64 is 0) */
    int nperm;
    int64_t perm[KF_MAX_DIMS];
    int nshape;
    int64_t shape[KF_MAX_DIMS];
    int64_t start, end, step;
    double eps;
    int has_eps;
} kf_attrs;

kf_node *kf_input(kf_graph *g, const char *name, kf_dtype t, int ndim,
                  const int64_t *shape);
/* A constant tensor; data (row-major) is copied into the graph. */
kf_node *kf_constant(kf_graph *g, const char *name, kf_dtype t, int ndim,
                     const int64_t *shape, const void *data);
/* A 0-d scalar literal. */
kf_node *kf_scalar(kf_graph *g, double v, kf_dtype t);

/* Any op by its .kf name ("add", "relu", "sum", "matmul", ...).  Scalar
 * literals among in[] take the dtype of the other operands when they are
 * 0-d nodes made by kf_scalar.  Returns NULL on error. */
kf_node *kf_apply(kf_graph *g, const char *op, int nin, kf_node *const *in,
                  const kf_attrs *attrs);
/* How many tensor operands op takes (-1: any number, as concat); 0 if the
 * op is unknown. */
int kf_op_arity(const char *op);
/* How many results op has (layer_norm: 3, others: 1); 0 if unknown. */
int kf_op_nresults(const char *op);
/* Ops with several results: out[] receives kf_op_nresults(op) nodes. */
int kf_apply_multi(kf_graph *g, const char *op, int nin, kf_node *const *in,
                   const kf_attrs *attrs, kf_node **out);

kf_node *kf_unary(kf_graph *g, const char *op, kf_node *x);
kf_node *kf_binary(kf_graph *g, const char *op, kf_node *a, kf_node *b);
kf_node *kf_matmul(kf_graph *g, kf_node *a, kf_node *b);
kf_node *kf_cast(kf_graph *g, kf_node *x, kf_dtype t);

void kf_node_set_name(kf_node *n, const char *name); /* copied */
const char *kf_node_name(const kf_node *n);           /* NULL if unnamed */
kf_dtype kf_node_dtype(const kf_node *n);
int kf_node_ndim(const kf_node *n);
const int64_t *kf_node_shape(const kf_node *n);

/* Mark n as the next graph output; returns 0 or -1 on error. */
int kf_output(kf_graph *g, kf_node *n);

/* Inputs and outputs, in declaration order. */
int kf_graph_num_inputs(const kf_graph *g);
int kf_graph_num_outputs(const kf_graph *g);
kf_node *kf_graph_input(const kf_graph *g, int i);
kf_node *kf_graph_output(const kf_graph *g, int i);
int64_t kf_node_numel(const kf_node *n);

/* Element i of a row-major buffer of dtype t as a double (f16 and bf16
 * decoded exactly, bool as 0 or 1), and the reverse, which rounds to nearest
 * even for f16 and bf16 and wraps integers as a C cast to the type does. */
double kf_value_get(kf_dtype t, const void *buf, int64_t i);
void kf_value_set(kf_dtype t, void *buf, int64_t i, double v);

/* Compares n elements of dtype t, got with want, as `kfuse run --check` and
 * --data do: |got - want| <= atol + rtol * |want| with the tolerances of
 * the less precise of t and tol (f64: rtol 1e-7, atol 1e-10; f32: 1e-3,
 * 1e-5; f16: 1e-2, 1e-3; bf16: 5e-2, 1e-2); integers and bool exactly; NaN
 * matches NaN, an infinity only itself.  tol is the precision the result
 * was computed through (kf_graph_precision), or t.  Returns the index of the
 * first mismatch, or -1; *maxerr (if not NULL) gets the largest absolute
 * error. */
int64_t kf_compare(kf_dtype t, kf_dtype tol, const void *got, const void *want, int64_t n,
                   double *maxerr);
/* The least precise floating-point dtype that any node of g computes in
 * (bf16 < f16 < f32 < f64); f64 when there is none. */
kf_dtype kf_graph_precision(const kf_graph *g);

/* Runs the graph with the reference interpreter (f64 accumulation).
 * Buffers are contiguous, row-major, of each tensor's dtype. */
kf_status kf_interpret(kf_graph *g, const void *const *inputs,
                       void *const *outputs);

/* ---- front ends --------------------------------------------------------- */
/* Parses .kf text; filename is used in error places.  NULL on error. */
kf_graph *kf_parse_kf(kf_ctx *ctx, const char *filename, const char *text, size_t len);
/* Loads FILE: an ONNX model when it ends in .onnx, else .kf text.
 * binds: "NAME=d0,d1,..." strings that fix dynamic ONNX dims (may be NULL). */
kf_graph *kf_load_file(kf_ctx *ctx, const char *path, int nbinds, const char *const *binds);

/* A tensor read from an ONNX TensorProto file (the input_K.pb of the ONNX
 * backend-test layout).  data is row-major, of dtype; free with
 * kf_tensor_free. */
typedef struct kf_tensor {
    kf_dtype dtype;
    int ndim;
    int64_t shape[KF_MAX_DIMS];
    void *data;
    char *name;
} kf_tensor;
kf_status kf_tensor_read_pb(kf_ctx *ctx, const char *path, kf_tensor *out);
void kf_tensor_free(kf_ctx *ctx, kf_tensor *t);

/* ---- compiling and running --------------------------------------------- */
typedef struct kf_options {
    kf_device device;
    int no_fusion;          /* every node its own kernel, as eager runs it */
    int no_template_fusion; /* pointwise chains fuse, templates take nothing */
    FILE *dump;             /* if set: the IR after each pass is written here */
    const char *cache_dir;  /* NULL: $KFUSE_CACHE_DIR, else the user's cache */
    int threads;            /* 0: OpenMP's default */
    int compile_only;       /* CUDA: stop once NVRTC has compiled the kernels
                               to PTX (1) or to an sm_90a cubin (2); no GPU
                               needed; kf_run then fails */
} kf_options;

/* Compiles g (which must outlive nothing: the result is self-contained).
 * NULL on error, with the message on g's context.  CUDA: large matmuls are
 * tuned on the device (tile configurations, and whether a prologue is
 * fused), so a first compile may take seconds; the choices are cached
 * (KFUSE_CUDA_TUNE=0 turns this off). */
kf_compiled *kf_compile(kf_graph *g, const kf_options *opt);
void kf_compiled_free(kf_compiled *c);
kf_status kf_run(kf_compiled *c, const void *const *inputs,
                 void *const *outputs);
/* CUDA: runs on device buffers (16-byte aligned; NULL arrays: the compiled
 * graph's own, as the last kf_run left them), queued on the default stream. */
kf_status kf_run_device(kf_compiled *c, void *const *dev_inputs, void *const *dev_outputs);
/* CUDA: waits for the work kf_run_device queued and reports its errors. */
kf_status kf_wait(kf_compiled *c);

/* The generated source, and the fusion plan as text or JSON (DESIGN.md). */
const char *kf_compiled_source(const kf_compiled *c);
const char *kf_compiled_explain(const kf_compiled *c, int json);
int kf_compiled_num_kernels(const kf_compiled *c);

#ifdef __cplusplus
}
#endif
#endif
