/* onnx_stub.c - placeholder until the ONNX front end lands (replaced by onnx.c). */
#include "front.h"

kf_graph *kf_onnx_load(kf_ctx *ctx, const char *path, int nbinds, const char *const *binds)
{
    (void)nbinds;
    (void)binds;
    return kf_err(ctx, KF_ERR_UNSUPPORTED, "%s: error: ONNX models are not supported yet", path);
}

kf_status kf_tensor_read_pb(kf_ctx *ctx, const char *path, kf_tensor *out)
{
    (void)out;
    kf_err(ctx, KF_ERR_UNSUPPORTED, "%s: error: reading TensorProto files is not supported yet", path);
    return KF_ERR_UNSUPPORTED;
}

void kf_tensor_free(kf_ctx *ctx, kf_tensor *t)
{
    if (!t) return;
    kf_free(ctx, t->data);
    kf_free(ctx, t->name);
    t->data = NULL;
    t->name = NULL;
}
