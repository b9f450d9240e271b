/*
 * onnx-impl.h - internals of the ONNX front end, shared by onnx.c (reading
 * the file, tensors, the symbol table and the walk over the nodes) and
 * onnx_ops.c (one handler per ONNX op, mapping it onto kfuse's ops, and the
 * load-time constant folder).  Nothing here is public API.
 */
#ifndef KFUSE_ONNX_IMPL_H
#define KFUSE_ONNX_IMPL_H

#include <protobuf-c/protobuf-c.h>

#include "front.h"
#include "onnx.pb-c.h"

/* A tensor known at load time (an initializer, a Constant, a folded shape
 * computation): row-major data of dtype t, owned by the loader. */
typedef struct kf_onnx_ct {
    kf_dtype t;
    int ndim;
    int64_t shape[KF_MAX_DIMS];
    void *data;
} kf_onnx_ct;

/* One ONNX value: a graph node, a load-time constant, or both (a constant
 * that a graph op consumed, materialised once). */
typedef struct kf_onnx_val {
    const char *name;       /* key; NULL: empty slot */
    kf_node *node;
    kf_onnx_ct *c;
    int producer;           /* index of the producing node, -1 if none */
    int defined;            /* has a value (input, initializer, or produced) */
} kf_onnx_val;

typedef struct kf_onnx_loader {
    kf_ctx *ctx;
    kf_graph *g;
    const char *path;
    int opset;
    kf_onnx_val *tab;       /* open-addressing hash on name */
    size_t tabcap;
    void **owned;           /* constant data to free at the end */
    size_t nowned, capowned;
    const Onnx__NodeProto *cur; /* the node being converted, for errors */
    int curidx;
} kf_onnx_loader;

typedef struct kf_onnx_opdef {
    const char *op_type;
    /* in[i] is NULL for an absent optional input */
    int (*fn)(kf_onnx_loader *L, const Onnx__NodeProto *n, kf_onnx_val **in, int nin);
    int min_in, max_in;     /* how many inputs it takes */
    const char *attrs;      /* the attributes it understands, comma-separated */
} kf_onnx_opdef;

/* onnx_ops.c */
const kf_onnx_opdef *kf_onnx_find_op(const char *op_type);

/* onnx.c: errors name the node being converted: "PATH: error: node 'NAME'
 * (OpType): ...".  They return -1 (or NULL via the _p variant). */
int kf_onnx_err(kf_onnx_loader *L, kf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A builder call failed: rewrap its message with the node's name. */
int kf_onnx_builder_err(kf_onnx_loader *L);
const char *kf_onnx_dtype_name(int onnx_type);
int kf_onnx_map_dtype(int onnx_type, kf_dtype *out);  /* 1 if supported */

kf_onnx_ct *kf_onnx_ct_new(kf_onnx_loader *L, kf_dtype t, int ndim, const int64_t *shape);
/* the graph node of v (a constant is materialised once) */
kf_node *kf_onnx_node(kf_onnx_loader *L, kf_onnx_val *v);
/* binds output i of the current node */
int kf_onnx_set_node(kf_onnx_loader *L, int i, kf_node *n);
int kf_onnx_set_const(kf_onnx_loader *L, int i, kf_onnx_ct *c);
/* decodes a TensorProto (checked against its declared shape) */
kf_onnx_ct *kf_onnx_tensor(kf_onnx_loader *L, const Onnx__TensorProto *t, const char *what);

/* dtype, rank and shape of a value, whichever form it has */
kf_dtype kf_onnx_vtype(const kf_onnx_val *v);
int kf_onnx_vndim(const kf_onnx_val *v);
const int64_t *kf_onnx_vshape(const kf_onnx_val *v);

#endif
