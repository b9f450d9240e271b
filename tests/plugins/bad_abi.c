/* A plug-in built against another ABI version: kfuse must refuse it. */
#include "kfuse_backend.h"

static int no(void *ctx, const kf_op_query *q) { (void)ctx; (void)q; return 0; }
static int fail(void *ctx, const kf_fusion_spec *s, kf_fused_kernel *o, char *e, size_t n)
{
    (void)ctx; (void)s; (void)o; (void)e; (void)n;
    return 1;
}
static const kf_backend b = {.abi_version = 7, .name = "bad_abi", .implements = no, .fuse = fail};
const kf_backend *kf_backend_entry(void) { return &b; }
