/*
 * compile.c - the whole pipeline as one straight list of passes, and the
 * compiled object: run, source, explain.
 *
 *     verify -> schedule -> codegen -> jit -> (run)
 *
 * With opt->dump set, the IR is written there after each pass.
 */
#include <string.h>

#include "codegen/c/cgen.h"
#include "jit/cuda.h"
#include "jit/jit.h"
#include "kfuse-impl.h"
#include "sched/sched.h"

struct kf_compiled {
    kf_ctx *ctx;
    kf_jit_lib lib;
    kf_entry_fn entry;
    kf_cprog prog;
    void **consts;          /* copies of the constant tensors */
    char *scratch;
    int threads;
    int nkernels;
    char *explain_text, *explain_json;
    kf_cuda_plan *cuda;     /* the CUDA target's compiled graph */
};

static void json_str(kf_buf *b, const char *s)
{
    kf_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') kf_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20) kf_buf_printf(b, "\\u%04x", *p);
        else kf_buf_printf(b, "%c", *p);
    }
    kf_buf_puts(b, "\"");
}

typedef enum { ROLE_ALL, ROLE_PROLOGUE, ROLE_EPILOGUE } node_role;

/* The role of node n in kernel k: prologue nodes are those computed inside a
 * template's loads; the epilogue is the rest apart from the anchor. */
static bool in_role(const kf_sched *s, const kf_kernel *k, const kf_node *n, node_role r)
{
    if (n->op == KF_OP_EXTERN) return false; /* listed by its results */
    if (r == ROLE_ALL) return true;
    bool tmpl = k->kind == KF_KERN_TEMPLATE || k->kind == KF_KERN_EXTERN;
    if (!tmpl || n == k->anchor || n->op == KF_OP_RESULT) return false;
    bool pro = s->home[n->id] == k->anchor->id;
    return r == ROLE_PROLOGUE ? pro : !pro;
}

static void list_nodes(kf_buf *b, const kf_sched *s, const kf_kernel *k, node_role r, bool json)
{
    bool first = true;
    for (int i = 0; i < k->nnodes; i++) {
        kf_node *n = k->nodes[i];
        if (!in_role(s, k, n, r)) continue;
        char lb[64];
        const char *name = kf_node_label(n, lb, sizeof lb);
        if (json) {
            kf_buf_puts(b, first ? "" : ", ");
            json_str(b, name);
        } else {
            kf_buf_printf(b, "%s%s", first ? "" : ", ", name);
        }
        first = false;
    }
    if (first && !json) kf_buf_puts(b, "-");
}

static int build_explain(kf_compiled *c, const kf_sched *s)
{
    kf_buf t, j;
    kf_buf_init(&t, c->ctx);
    kf_buf_init(&j, c->ctx);
    kf_buf_printf(&t, "%d kernel%s\n", s->nk, s->nk == 1 ? "" : "s");
    kf_buf_puts(&j, "{\"kernels\": [");
    for (int i = 0; i < s->nk; i++) {
        const kf_kernel *k = s->k[i];
        kf_buf_printf(&t, "k%d: %s", i, kf_kern_kind_name(k->kind));
        kf_buf_printf(&j, "%s\n  {\"name\": \"k%d\", \"kind\": \"%s\"", i ? "," : "", i, kf_kern_kind_name(k->kind));
        if (k->kind == KF_KERN_TEMPLATE || k->kind == KF_KERN_EXTERN) {
            bool ext = k->kind == KF_KERN_EXTERN;
            const char *tn = ext ? k->anchor->ext_op : "mm";
            const char *bn = ext ? k->anchor->backend->name : "standard";
            kf_buf_printf(&t, " %s (%s)\n    prologue: ", tn, bn);
            list_nodes(&t, s, k, ROLE_PROLOGUE, false);
            kf_buf_puts(&t, "\n    epilogue: ");
            list_nodes(&t, s, k, ROLE_EPILOGUE, false);
            kf_buf_puts(&j, ", \"template\": ");
            json_str(&j, tn);
            kf_buf_puts(&j, ", \"backend\": ");
            json_str(&j, bn);
            kf_buf_puts(&j, ", \"prologue\": [");
            list_nodes(&j, s, k, ROLE_PROLOGUE, true);
            kf_buf_puts(&j, "], \"epilogue\": [");
            list_nodes(&j, s, k, ROLE_EPILOGUE, true);
            kf_buf_puts(&j, "], \"unfused_epilogues\": [");
            bool first = true;
            for (int n = 0; n < s->g->nnodes; n++) {
                if (!s->unfused[n] || s->unfused_of[n] != k->anchor->id) continue;
                char lb[64];
                const char *name = kf_node_label(s->g->nodes[n], lb, sizeof lb);
                kf_buf_printf(&t, "\n    unfused epilogue: %s (%s)", name, s->unfused[n]);
                kf_buf_puts(&j, first ? "{\"node\": " : ", {\"node\": ");
                json_str(&j, name);
                kf_buf_puts(&j, ", \"reason\": ");
                json_str(&j, s->unfused[n]);
                kf_buf_puts(&j, "}");
                first = false;
            }
            kf_buf_puts(&j, "]");
        }
        kf_buf_puts(&t, "\n    nodes: ");
        list_nodes(&t, s, k, ROLE_ALL, false);
        kf_buf_puts(&t, "\n");
        kf_buf_puts(&j, ", \"nodes\": [");
        list_nodes(&j, s, k, ROLE_ALL, true);
        kf_buf_puts(&j, "]}");
    }
    kf_buf_puts(&j, "\n]}\n");
    c->explain_text = kf_buf_take(&t);
    c->explain_json = kf_buf_take(&j);
    return c->explain_text && c->explain_json ? 0 : -1;
}

kf_compiled *kf_compile(kf_graph *g, const kf_options *opt)
{
    if (!g) return NULL;
    kf_options o = {0};
    if (opt) o = *opt;
    kf_ctx *ctx = g->ctx;
    if (o.device != KF_DEVICE_CPU && o.device != KF_DEVICE_CUDA)
        return kf_err(ctx, KF_ERR_INVALID, "error: unknown device %d", (int)o.device);

    if (kf_graph_verify(g)) return NULL;
    if (o.dump) kf_graph_dump(g, o.dump, "verify");

    kf_compiled *c = kf_malloc(ctx, sizeof *c);
    if (c) {
        memset(c, 0, sizeof *c);
        c->ctx = ctx;
    }
    char *refused = kf_malloc(ctx, 2 * (size_t)g->nnodes + 2);
    kf_sched *s = NULL;
    if (!c || !refused) goto fail;
    memset(refused, 0, 2 * (size_t)g->nnodes + 2);
    c->threads = o.threads;
    kf_sched_opts so = {.no_fusion = o.no_fusion != 0, .no_template_fusion = o.no_template_fusion != 0,
                        .refused_epilogue = refused, .refused_prologue = refused + g->nnodes + 1};
    /* schedule and generate (CUDA: the same schedule; generate, compile with
     * NVRTC, load and tune); what an external backend refuses is scheduled
     * again as unfused work, until it accepts everything it is given */
    for (int round = 0;; round++) {
        if (!(s = kf_sched_new(g, &so))) goto fail;
        if (o.dump) kf_sched_dump(s, o.dump);
        int rc = o.device == KF_DEVICE_CUDA ? kf_cuda_plan_new(s, &o, refused, refused + g->nnodes + 1, &c->cuda)
                                            : kf_cg_c_generate(s, refused, refused + g->nnodes + 1, &c->prog);
        if (rc < 0) goto fail;
        if (rc == 0) break;
        KF_ASSERT(round < g->nnodes + 2); /* each round unfuses something */
        kf_sched_free(s);
    }
    c->nkernels = s->nk;
    if (build_explain(c, s)) goto fail;
    kf_sched_free(s);
    s = NULL;
    kf_free(ctx, refused);
    refused = NULL;
    if (c->cuda) return c;
    if (o.dump) fprintf(o.dump, "# generated source: %zu bytes\n", strlen(c->prog.source));

    if (kf_jit_compile_c(ctx, c->prog.source, o.cache_dir, &c->lib)) goto fail;
    c->entry = (kf_entry_fn)kf_jit_symbol(&c->lib, "kf_entry");
    if (!c->entry) {
        kf_err(ctx, KF_ERR_COMPILE, "%s: error: the compiled object has no kf_entry", c->lib.so_path);
        goto fail;
    }
    /* the compiled graph owns its constants and its scratch memory */
    c->consts = kf_malloc(ctx, sizeof *c->consts * (size_t)(c->prog.nconsts + 1));
    if (!c->consts) goto fail;
    memset(c->consts, 0, sizeof *c->consts * (size_t)(c->prog.nconsts + 1));
    for (int i = 0; i < c->prog.nconsts; i++) {
        kf_node *n = c->prog.consts[i];
        size_t bytes = (size_t)kf_node_numel(n) * kf_dtype_size(n->dtype);
        if (!(c->consts[i] = kf_malloc(ctx, bytes))) goto fail;
        memcpy(c->consts[i], n->data, bytes);
    }
    if (c->prog.scratch_bytes && !(c->scratch = kf_malloc(ctx, (size_t)c->prog.scratch_bytes + 64)))
        goto fail;
    return c;
fail:
    kf_sched_free(s);
    kf_free(ctx, refused);
    kf_compiled_free(c);
    return NULL;
}

void kf_compiled_free(kf_compiled *c)
{
    if (!c) return;
    kf_ctx *ctx = c->ctx;
    kf_jit_close(&c->lib);
    kf_cuda_plan_free(c->cuda);
    if (c->consts)
        for (int i = 0; i < c->prog.nconsts; i++) kf_free(ctx, c->consts[i]);
    kf_free(ctx, c->consts);
    kf_free(ctx, c->scratch);
    kf_free(ctx, c->explain_text);
    kf_free(ctx, c->explain_json);
    kf_cprog_free(ctx, &c->prog);
    kf_free(ctx, c);
}

kf_status kf_run(kf_compiled *c, const void *const *inputs, void *const *outputs)
{
    if (!c) return KF_ERR_INVALID;
    if ((!inputs && c->prog.nslots) || !outputs) {
        kf_err(c->ctx, KF_ERR_INVALID, "error: kf_run needs input and output buffer arrays");
        return KF_ERR_INVALID;
    }
    for (int i = 0; i < c->prog.nslots; i++) {
        kf_slot *sl = &c->prog.slots[i];
        const void *p = sl->kind == KF_SLOT_INPUT ? inputs[sl->index]
                      : sl->kind == KF_SLOT_OUTPUT ? outputs[sl->index] : (const void *)1;
        if (!p && sl->bytes > 0) {
            kf_err(c->ctx, KF_ERR_INVALID, "error: kf_run: the buffer of %s %d is NULL",
                   sl->kind == KF_SLOT_INPUT ? "input" : "output", sl->index);
            return KF_ERR_INVALID;
        }
    }
    if (c->cuda) return kf_cuda_plan_run(c->cuda, inputs, outputs);
    c->entry((void *const *)inputs, outputs, c->consts, c->scratch, c->threads);
    return KF_OK;
}

static kf_status not_cuda(kf_compiled *c, const char *fn)
{
    kf_err(c->ctx, KF_ERR_INVALID, "error: %s: the graph was not compiled for CUDA", fn);
    return KF_ERR_INVALID;
}

kf_status kf_run_device(kf_compiled *c, void *const *dev_inputs, void *const *dev_outputs)
{
    if (!c) return KF_ERR_INVALID;
    if (!c->cuda) return not_cuda(c, "kf_run_device");
    return kf_cuda_plan_run_device(c->cuda, dev_inputs, dev_outputs);
}

kf_status kf_wait(kf_compiled *c)
{
    if (!c) return KF_ERR_INVALID;
    return c->cuda ? kf_cuda_plan_wait(c->cuda) : KF_OK;
}

const char *kf_compiled_source(const kf_compiled *c)
{
    return !c ? "" : c->cuda ? kf_cuda_plan_source(c->cuda) : c->prog.source;
}
const char *kf_compiled_explain(const kf_compiled *c, int json)
{
    return c ? (json ? c->explain_json : c->explain_text) : "";
}
int kf_compiled_num_kernels(const kf_compiled *c) { return c ? c->nkernels : 0; }
