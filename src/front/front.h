/*
 * front.h - the front ends: .kf text and ONNX models, both building a
 * kf_graph through the public builder API.
 */
#ifndef KFUSE_FRONT_H
#define KFUSE_FRONT_H

#include "../kfuse-impl.h"

/* Loads an ONNX model file (front/onnx.c). */
kf_graph *kf_onnx_load(kf_ctx *ctx, const char *path, int nbinds, const char *const *binds);

#endif
