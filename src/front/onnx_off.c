/*
 * onnx_off.c - the ONNX front end's entry points in a build without it
 * (cmake -DKFUSE_ONNX=OFF, for machines without protobuf-c or ONNX's
 * schema): loading a model or a TensorProto file fails with a message that
 * says so.  Compiled instead of onnx.c and onnx_ops.c.
 */
#include <string.h>

#include "front.h"

static void off(kf_ctx *ctx, const char *path)
{
    kf_err(ctx, KF_ERR_UNSUPPORTED,
           "%s: error: this kfuse was built without the ONNX front end (KFUSE_ONNX=OFF); rebuild it with "
           "protobuf-c and ONNX's schema (scripts/deps.sh installs them) to read ONNX files",
           path);
}

kf_graph *kf_onnx_load(kf_ctx *ctx, const char *path, int nbinds, const char *const *binds)
{
    (void)nbinds;
    (void)binds;
    off(ctx, path);
    return NULL;
}

kf_status kf_tensor_read_pb(kf_ctx *ctx, const char *path, kf_tensor *out)
{
    memset(out, 0, sizeof *out);
    off(ctx, path);
    return KF_ERR_UNSUPPORTED;
}
