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
    char note[2][512];      /* decisions explain reports: backends lowered
                               for the device, prologues by measurement */
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
    kf_buf_puts(&j, "\n]");
    bool first = true;
    for (int i = 0; i < 2; i++) {
        if (!c->note[i][0]) continue;
        kf_buf_printf(&t, "note: %s\n", c->note[i]);
        kf_buf_puts(&j, first ? ", \"notes\": [" : ", ");
        json_str(&j, c->note[i]);
        first = false;
    }
    kf_buf_puts(&j, first ? "}\n" : "]}\n");
    c->explain_text = kf_buf_take(&t);
    c->explain_json = kf_buf_take(&j);
    return c->explain_text && c->explain_json ? 0 : -1;
}

/* Schedules and generates (CUDA: the same schedule; generate, compile with
 * NVRTC, load and tune) into c; what an external backend refuses is
 * scheduled again as unfused work, until it accepts everything it is
 * given.  so's refusal arrays are updated. */
static int plan(kf_graph *g, kf_sched_opts *so, const kf_options *o, kf_compiled *c, kf_sched **out)
{
    char *repi = (char *)so->refused_epilogue, *rpro = (char *)so->refused_prologue;
    for (int round = 0;; round++) {
        kf_sched *s = kf_sched_new(g, so);
        if (!s) return -1;
        if (o->dump) kf_sched_dump(s, o->dump);
        int rc = o->device == KF_DEVICE_CUDA ? kf_cuda_plan_new(s, o, repi, rpro, &c->cuda)
                                             : kf_cg_c_generate(s, repi, rpro, &c->prog);
        if (rc == 0) {
            *out = s;
            return 0;
        }
        kf_sched_free(s);
        if (rc < 0) return -1;
        KF_ASSERT(round < g->nnodes + 2); /* each round unfuses something */
    }
}

/* CUDA: an operand computed in an mm template's loads is not always
 * cheaper than computing it apart and loading it plainly (the prologue's
 * loads, repeated for every tile row or column, can cost more than the
 * extra pass).  Where the product is large enough to be tuned, both plans
 * are timed on the device, the faster kept and the choice cached by the
 * kernels' tuning keys; explain says what was measured. */
static int measured_prologues(kf_graph *g, kf_sched_opts *so, const kf_options *o, kf_compiled *c, kf_sched **ps)
{
    kf_sched *s = *ps;
    if (!kf_cuda_plan_measures(c->cuda)) return 0;
    char *rpro = (char *)so->refused_prologue;
    char *mine = kf_malloc(c->ctx, (size_t)g->nnodes + 1);
    if (!mine) return -1;
    memcpy(mine, rpro, (size_t)g->nnodes + 1);
    uint64_t h = 0xcbf29ce484222325ULL;
    int nk = 0;
    for (int i = 0; i < s->nk; i++) {
        const kf_kernel *k = s->k[i];
        const char *key = k->kind == KF_KERN_TEMPLATE ? kf_cuda_plan_key(c->cuda, k->id) : NULL;
        if (!key || (!k->prologue[0] && !k->prologue[1])) continue;
        const kf_node *mm = k->anchor, *a = mm->in[0];
        double flops = 2.0 * (double)kf_node_numel(mm) * (double)a->shape[a->ndim - 1];
        if (flops < 1e9) continue; /* as the tuner: only large products are timed */
        for (int j = 0; j < 2; j++) {
            if (!k->prologue[j]) continue;
            kf_node *x = k->anchor->in[j];
            while (kf_node_is_view(x)) x = x->in[0];
            mine[x->id] = 1;
        }
        for (const char *p = key; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
        nk++;
    }
    if (!nk) {
        kf_free(c->ctx, mine);
        return 0;
    }
    char name[64];
    snprintf(name, sizeof name, "prologue_%016llx", (unsigned long long)h);
    int cached = kf_cuda_plan_cached(c->cuda, name);
    if (cached == 1) { /* fused was faster */
        kf_free(c->ctx, mine);
        return 0;
    }
    /* the plan without those prologues */
    kf_cuda_plan *fused = c->cuda;
    c->cuda = NULL;
    kf_sched_opts so2 = *so;
    so2.refused_prologue = mine;
    kf_sched *s2 = NULL;
    if (plan(g, &so2, o, c, &s2)) {
        c->cuda = fused;
        kf_free(c->ctx, mine);
        return -1;
    }
    double tf = -1, tu = -1;
    if (cached < 0) {
        kf_cuda_plan *both[2] = {fused, c->cuda};
        double ms[2];
        if (!kf_cuda_plans_time(both, 2, 10, ms)) tf = ms[0], tu = ms[1];
        if (tf < 0 || tu < 0) {
            kf_cuda_plan_free(fused);
            kf_sched_free(s2);
            kf_free(c->ctx, mine);
            return -1;
        }
        kf_cuda_plan_cache(c->cuda, name, tf <= tu);
    }
    if (cached < 0 && tf <= tu) { /* keep the fused plan */
        kf_cuda_plan_free(c->cuda);
        c->cuda = fused;
        kf_sched_free(s2);
    } else {
        kf_cuda_plan_free(fused);
        kf_sched_free(s);
        *ps = s2;
        memcpy(rpro, mine, (size_t)g->nnodes + 1);
    }
    if (cached < 0)
        snprintf(c->note[1], sizeof c->note[1], "measured on the device: %d mm prologue%s %s (whole plan %.4f ms fused, %.4f ms apart)",
                 nk, nk > 1 ? "s" : "", tf <= tu ? "kept fused" : "computed apart", tf, tu);
    else
        snprintf(c->note[1], sizeof c->note[1], "measured on the device earlier (cached): %d mm prologue%s computed apart", nk,
                 nk > 1 ? "s" : "");
    kf_free(c->ctx, mine);
    return 0;
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
    /* the builder asked the backends for the CPU; what they decline on this
     * device is computed by kfuse's own ops (the edges are put back below) */
    kf_edge_log *edges = NULL;
    int nedges = 0, nlowered = 0;
    if (!c || !refused) goto fail;
    if (o.device != KF_DEVICE_CPU && (nlowered = kf_graph_lower_declined(g, o.device, &edges, &nedges)) < 0) goto fail;
    if (nlowered > 0)
        snprintf(c->note[0], sizeof c->note[0],
                 "%d external template%s declined by %s backend for this device: computed by kfuse's own kernels",
                 nlowered, nlowered > 1 ? "s" : "", nlowered > 1 ? "their" : "its");
    memset(refused, 0, 2 * (size_t)g->nnodes + 2);
    c->threads = o.threads;
    kf_sched_opts so = {.no_fusion = o.no_fusion != 0, .no_template_fusion = o.no_template_fusion != 0,
                        .refused_epilogue = refused, .refused_prologue = refused + g->nnodes + 1};
    if (plan(g, &so, &o, c, &s)) goto fail;
    if (c->cuda && measured_prologues(g, &so, &o, c, &s)) goto fail;
    c->nkernels = s->nk;
    if (build_explain(c, s)) goto fail;
    kf_sched_free(s);
    s = NULL;
    kf_graph_restore_edges(edges, nedges);
    kf_free(ctx, edges);
    edges = NULL;
    nedges = 0;
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
    kf_graph_restore_edges(edges, nedges);
    kf_free(ctx, edges);
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
