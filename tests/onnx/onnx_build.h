/*
 * onnx_build.h - a small ONNX model writer for kfuse's tests and benchmarks:
 * builds a ModelProto with the protobuf-c bindings generated at build time
 * and writes it out, so that tests make their own .onnx files (good ones and
 * deliberately broken ones) instead of carrying binaries.
 *
 *     ob_model *m = ob_new(17);
 *     ob_input(m, "x", OB_FLOAT, 2, (int64_t[]){2, 3});
 *     ob_init(m, "w", OB_FLOAT, 2, (int64_t[]){3, 4}, data, sizeof data);
 *     ob_node(m, "MatMul", "mm", "x,w", "y");
 *     ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 4});
 *     ob_write(m, "model.onnx");
 *     ob_free(m);
 *
 * Dims < 0 in ob_input/ob_output are dynamic ("N"); ndim < 0: no shape.
 * Everything allocated is freed by ob_free.  Errors abort: tests only.
 */
#ifndef ONNX_BUILD_H
#define ONNX_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

enum { OB_FLOAT = 1, OB_UINT8 = 2, OB_INT8 = 3, OB_INT32 = 6, OB_INT64 = 7, OB_STRING = 8,
       OB_BOOL = 9, OB_FLOAT16 = 10, OB_DOUBLE = 11, OB_UINT64 = 13, OB_BFLOAT16 = 16 };

typedef struct ob_model ob_model;

ob_model *ob_new(int opset);
void ob_free(ob_model *m);
void ob_input(ob_model *m, const char *name, int dtype, int ndim, const int64_t *dims);
void ob_output(ob_model *m, const char *name, int dtype, int ndim, const int64_t *dims);
/* an initializer with raw data (bytes need not match the shape: tests
 * write bad ones on purpose) */
Onnx__TensorProto *ob_init(ob_model *m, const char *name, int dtype, int ndim,
                           const int64_t *dims, const void *raw, size_t bytes);
/* inputs and outputs: comma-separated names ("" for an absent input) */
Onnx__NodeProto *ob_node(ob_model *m, const char *op, const char *name, const char *inputs,
                         const char *outputs);
void ob_attr_i(ob_model *m, Onnx__NodeProto *n, const char *name, int64_t v);
void ob_attr_f(ob_model *m, Onnx__NodeProto *n, const char *name, float v);
void ob_attr_s(ob_model *m, Onnx__NodeProto *n, const char *name, const char *v);
void ob_attr_ints(ob_model *m, Onnx__NodeProto *n, const char *name, int k, const int64_t *v);
void ob_attr_t(ob_model *m, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t);
/* a tensor not in the graph (for Constant's value, or a .pb file) */
Onnx__TensorProto *ob_tensor(ob_model *m, const char *name, int dtype, int ndim,
                             const int64_t *dims, const void *raw, size_t bytes);
void ob_write(ob_model *m, const char *path);
/* writes a TensorProto file (input_K.pb / output_K.pb) */
void ob_write_tensor(const char *path, const char *name, int dtype, int ndim,
                     const int64_t *dims, const void *raw, size_t bytes);
/* writes bytes as they are */
void ob_write_bytes(const char *path, const void *p, size_t n);

#endif
