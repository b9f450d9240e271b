/*
 * plugin.c - the rownorm backend as a plug-in shared object: kfuse's
 * kf_ctx_load_backend (and `kfuse --backend PATH`) dlopens it and calls
 * kf_backend_entry.  The same rownorm.c is also compiled into kfuse itself.
 */
#include "kfuse_backend.h"

__attribute__((visibility("default"))) const kf_backend *kf_backend_entry(void)
{
    return kf_backend_rownorm();
}
