/* compile.c - placeholder: the pipeline lands here. */
#include "kfuse-impl.h"
kf_compiled *kf_compile(kf_graph *g, const kf_options *opt)
{
    (void)opt;
    return kf_err(g->ctx, KF_ERR_UNSUPPORTED, "not yet");
}
void kf_compiled_free(kf_compiled *c) { (void)c; }
kf_status kf_run(kf_compiled *c, const void *const *inputs, void *const *outputs)
{
    (void)c; (void)inputs; (void)outputs;
    return KF_ERR_UNSUPPORTED;
}
const char *kf_compiled_source(const kf_compiled *c) { (void)c; return ""; }
const char *kf_compiled_explain(const kf_compiled *c, int json) { (void)c; (void)json; return ""; }
int kf_compiled_num_kernels(const kf_compiled *c) { (void)c; return 0; }
