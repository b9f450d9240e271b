/*
 * cgen.c - the C code generator pass: the loops of pointwise and reduction
 * kernels around the shared expression generator (gen.h), the standard mm
 * template with three generated inline functions (prologue_a, prologue_b,
 * epilogue) that its text calls through the KF_MM_* macros, external
 * templates through the fusion spec, and the wrapper kf_entry.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cgen.h"

extern const char kf_tmpl_prelude_h[];
extern const char kf_tmpl_helpers_h[];
extern const char kf_tmpl_mm_c[];

static void loop_vars(kf_cg *c, kf_idx *ix, const char *pfx, int nd)
{
    ix->nd = nd;
    for (int i = 0; i < nd; i++) ix->e[i] = kf_cg_fmt(c, "%s%d", pfx, i);
}

/* Opens nd nested loops over shape, the outer ones parallel when the work is
 * large enough; returns how many braces to close. */
static int open_loops(kf_cg *c, const char *pfx, int nd, const int64_t *shape, int64_t work, bool simd_inner)
{
    const char *par = work >= 32768 ? "" : " if(0)";
    if (nd == 0) {
        kf_emit(c->body, "{");
        return 1;
    }
    if (nd == 1) {
        kf_emit(c->body, "#pragma omp parallel for%s%s", simd_inner ? " simd" : "", par);
        kf_emit(c->body, "for (int64_t %s0 = 0; %s0 < %" PRId64 "; %s0++) {", pfx, pfx, shape[0], pfx);
        return 1;
    }
    if (nd == 2) kf_emit(c->body, "#pragma omp parallel for%s", par);
    else kf_emit(c->body, "#pragma omp parallel for collapse(%d)%s", nd - 1, par);
    for (int i = 0; i < nd - 1; i++)
        kf_buf_printf(c->body, "%*sfor (int64_t %s%d = 0; %s%d < %" PRId64 "; %s%d++)%s\n",
                      c->body->indent * 4, "", pfx, i, pfx, i, shape[i], pfx, i, i == nd - 2 ? " {" : "");
    c->body->indent++;
    if (simd_inner) kf_emit(c->body, "#pragma omp simd");
    kf_emit(c->body, "for (int64_t %s%d = 0; %s%d < %" PRId64 "; %s%d++) {", pfx, nd - 1, pfx, nd - 1,
            shape[nd - 1], pfx, nd - 1);
    return 2;
}

static void close_loops(kf_cg *c, int n)
{
    for (int i = 0; i < n; i++) kf_emit(c->body, "}");
}

static void comment_nodes(kf_cg *c, kf_buf *out, kf_kernel *k)
{
    kf_buf_printf(out, "/* kernel %d: %s;", k->id, kf_kern_kind_name(k->kind));
    for (int i = 0; i < k->nnodes && i < 32; i++) {
        char lb[64], id[80];
        kf_sanitize_ident(kf_node_label(k->nodes[i], lb, sizeof lb), id, sizeof id);
        kf_buf_printf(out, " %s", id);
    }
    kf_buf_puts(out, k->nnodes > 32 ? " ... */\n" : " */\n");
    (void)c;
}

static void gen_pointwise(kf_cg *c, kf_buf *out)
{
    kf_node *r = c->k->roots[0];
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    kf_idx ix;
    loop_vars(c, &ix, "i", r->ndim);
    int nl = open_loops(c, "i", r->ndim, r->shape, kf_node_numel(r), true);
    kf_cg_roots(c, &ix, -1);
    close_loops(c, nl);
    kf_cg_end_fn(c, out, &body, kf_cg_fmt(c, "static void kf_k%d(void **B)", c->k->id));
}

static void gen_reduction(kf_cg *c, kf_buf *out)
{
    kf_node *a = c->k->anchor, *x = a->in[0];
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    kf_idx oix, rix = {.nd = x->ndim};
    loop_vars(c, &oix, "o", a->ndim);
    int nl = open_loops(c, "o", a->ndim, a->shape, kf_node_numel(x), false);
    bool is_sum = a->op == KF_OP_SUM || a->op == KF_OP_MEAN;
    bool fl = kf_dtype_is_float(a->dtype);
    const char *acct = is_sum && fl ? "double" : kf_cg_ctype(a->dtype);
    const char *init = is_sum ? "0"
                     : a->op == KF_OP_MAX ? (fl ? "-INFINITY" : "INT64_MIN")
                                          : (fl ? "INFINITY" : "INT64_MAX");
    kf_emit(c->body, "%s acc = %s;", acct, init);
    int nr = 0, o = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (kf_reduce_has_axis(a, d)) {
            rix.e[d] = kf_cg_fmt(c, "r%d", nr);
            /* a sum over the innermost axis vectorises */
            if (nr == a->attr.naxes - 1 && is_sum && d == x->ndim - 1)
                kf_emit(c->body, "#pragma omp simd reduction(+:acc)");
            kf_emit(c->body, "for (int64_t r%d = 0; r%d < %" PRId64 "; r%d++) {", nr, nr, x->shape[d], nr);
            nr++;
            if (a->attr.keepdims) o++;
        } else {
            rix.e[d] = oix.e[o++];
        }
    }
    kf_cg_reduce_step(c, a, &rix);
    close_loops(c, nr);
    kf_cg_reduction_result(c, a, &oix);
    close_loops(c, nl);
    kf_cg_end_fn(c, out, &body, kf_cg_fmt(c, "static void kf_k%d(void **B)", c->k->id));
}

/* Can the template read operand x as a plain pointer? */
static bool plain_operand(kf_cg *c, const kf_node *mm, const kf_node *x)
{
    kf_dtype acc = mm->dtype == KF_F64 ? KF_F64 : KF_F32;
    if (x->dtype != acc || c->s->kern[x->id] == c->k->id || kf_node_is_view(x)) return false;
    if (x->ndim != mm->ndim) return x->ndim == 2;
    for (int d = 0; d < x->ndim - 2; d++)
        if (x->shape[d] != mm->shape[d]) return false;
    return true;
}

static void gen_template(kf_cg *c, kf_buf *out)
{
    kf_node *mm = c->k->anchor, *A = mm->in[0], *Bn = mm->in[1];
    int id = c->k->id;
    int64_t M = mm->shape[mm->ndim - 2], N = mm->shape[mm->ndim - 1];
    int64_t K = A->shape[A->ndim - 1], batch = 1;
    for (int d = 0; d < mm->ndim - 2; d++) batch *= mm->shape[d];
    const char *T = mm->dtype == KF_F64 ? "double" : "float";
    kf_buf body;
    /* prologue loaders */
    for (int op = 0; op < 2; op++) {
        kf_cg_mm_prologue(c, out, op, "void **", "int64_t");
        kf_buf_puts(out, "\n");
    }
    /* the epilogue */
    kf_cg_begin_fn(c, &body);
    kf_idx oix = kf_cg_mm_idx(c, mm, mm, "m", "n");
    const char *av = "acc";
    if (mm->dtype == KF_F16 || mm->dtype == KF_BF16) {
        /* the template's result is rounded to its dtype, as when stored */
        av = kf_cg_tmp(c);
        kf_emit(c->body, "const float %s = %s(acc);", av, mm->dtype == KF_F16 ? "kf_round_h" : "kf_round_bf");
    }
    kf_cg_memo_put(c, mm, &oix, av);
    if (c->s->stored[mm->id])
        kf_emit(c->body, "%s[%s] = %s;", kf_cg_ptr(c, mm, true), kf_cg_linear(c, mm, &oix), kf_cg_store_conv(c, mm->dtype, av));
    kf_cg_roots(c, &oix, -1);
    kf_cg_end_fn(c, out, &body,
           kf_cg_fmt(c, "KF_INLINE void kf_k%d_epilogue(void **B, int64_t b, int64_t m, int64_t n, %s acc)", id, T));
    kf_buf_printf(out, "\n#define KF_MM_FN kf_k%d\n#define KF_MM_T %s\n#define KF_MM_T_IS_DOUBLE %d\n", id, T,
                  mm->dtype == KF_F64);
    kf_buf_printf(out, "#define KF_MM_BATCH INT64_C(%" PRId64 ")\n#define KF_MM_M INT64_C(%" PRId64
                       ")\n#define KF_MM_N INT64_C(%" PRId64 ")\n#define KF_MM_K INT64_C(%" PRId64 ")\n",
                  batch, M, N, K);
    kf_buf_printf(out, "#define KF_MM_LOAD_A(B, b, m, k) kf_k%d_prologue_a(B, b, m, k)\n", id);
    kf_buf_printf(out, "#define KF_MM_LOAD_B(B, b, k, n) kf_k%d_prologue_b(B, b, k, n)\n", id);
    kf_buf_printf(out, "#define KF_MM_STORE(B, b, m, n, v) kf_k%d_epilogue(B, b, m, n, v)\n", id);
    bool pa = !c->k->prologue[0] && plain_operand(c, mm, A);
    bool pb = !c->k->prologue[1] && plain_operand(c, mm, Bn);
    if (pa)
        kf_buf_printf(out, "#define KF_MM_A_PTR(B, b) ((const %s *)(B)[%d] + %s)\n", T, c->slot[A->id],
                      A->ndim == 2 ? "0" : "(b) * KF_MM_M * KF_MM_K");
    if (pb)
        kf_buf_printf(out, "#define KF_MM_B_PTR(B, b) ((const %s *)(B)[%d] + %s)\n", T, c->slot[Bn->id],
                      Bn->ndim == 2 ? "0" : "(b) * KF_MM_K * KF_MM_N");
    kf_buf_puts(out, kf_tmpl_mm_c);
    kf_buf_puts(out, "\n#undef KF_MM_FN\n#undef KF_MM_T\n#undef KF_MM_T_IS_DOUBLE\n#undef KF_MM_BATCH\n"
                     "#undef KF_MM_M\n#undef KF_MM_N\n#undef KF_MM_K\n#undef KF_MM_LOAD_A\n"
                     "#undef KF_MM_LOAD_B\n#undef KF_MM_STORE\n");
    if (pa) kf_buf_puts(out, "#undef KF_MM_A_PTR\n");
    if (pb) kf_buf_puts(out, "#undef KF_MM_B_PTR\n");
}

/* The graph names of the nodes a hook computes, comma-separated: for a
 * prologue (of == NULL) the chain under input x, for an epilogue the nodes
 * hanging from result `of`. */
static void mark_prologue(kf_cg *c, kf_node *x, char *mark)
{
    if (mark[x->id] || x->op == KF_OP_SCALAR) return;
    bool here = c->s->kern[x->id] == c->k->id && c->s->home[x->id] == c->k->anchor->id;
    if (!here && !kf_node_is_view(x)) return;
    mark[x->id] = here;
    for (int i = 0; i < x->nin; i++) mark_prologue(c, x->in[i], mark);
}

static const char *hook_names(kf_cg *c, kf_node *x, const kf_node *of)
{
    char *mark = kf_arena_alloc(c->ar, (size_t)c->g->nnodes + 1);
    if (!mark) return "";
    if (x) mark_prologue(c, x, mark);
    kf_buf b;
    kf_buf_init(&b, c->ctx);
    for (int i = 0; i < c->k->nnodes; i++) {
        kf_node *n = c->k->nodes[i];
        int h = c->s->home[n->id];
        bool keep = x ? mark[n->id] : h >= 0 && c->s->result_of[h] == of->id;
        if (!keep) continue;
        char lb[64];
        kf_buf_printf(&b, "%s%s", b.len ? "," : "", kf_node_label(n, lb, sizeof lb));
    }
    char *str = kf_buf_take(&b);
    const char *r = str ? kf_arena_strdup(c->ar, str) : "";
    kf_free(c->ctx, str);
    return r;
}

static void gen_extern(kf_cg *c, kf_buf *out)
{
    kf_kernel *k = c->k;
    kf_node *e = k->anchor;
    const kf_backend *be = e->backend;
    int id = k->id, nres = e->nresults, nin = e->nin;
    size_t nslots = 0;
    for (int i = 0; i < c->g->nnodes; i++)
        if (c->slot[i] >= (int)nslots) nslots = (size_t)c->slot[i] + 1;
    c->local = kf_arena_alloc(c->ar, sizeof(int) * (nslots + 1));
    c->local_slot = kf_arena_alloc(c->ar, sizeof(int) * (nslots + 1));
    int *used = kf_arena_alloc(c->ar, sizeof(int) * (nslots + 1));
    kf_node **res = kf_arena_alloc(c->ar, sizeof *res * (size_t)(nres + 1));
    kf_tensor_desc *ind = kf_arena_alloc(c->ar, sizeof *ind * (size_t)(nin + 1));
    kf_tensor_desc *outd = kf_arena_alloc(c->ar, sizeof *outd * (size_t)(nres + 1));
    int *inbuf = kf_arena_alloc(c->ar, sizeof(int) * (size_t)(nin + 1));
    int *outbuf = kf_arena_alloc(c->ar, sizeof(int) * (size_t)(nres + 1));
    kf_hook *epi = kf_arena_alloc(c->ar, sizeof *epi * (size_t)(nres + 1));
    kf_hook *pro = kf_arena_alloc(c->ar, sizeof *pro * (size_t)(nin + 1));
    char *lbl = kf_arena_alloc(c->ar, 64 * (size_t)(nin + nres + 1));
    bool *written = kf_arena_alloc(c->ar, nslots + 1);
    int *pro_of = kf_arena_alloc(c->ar, sizeof(int) * (nslots + 1));
    if (!c->local || !c->local_slot || !used || !res || !ind || !outd || !inbuf || !outbuf || !epi ||
        !pro || !lbl || !written || !pro_of)
        goto done;
    for (size_t s = 0; s <= nslots; s++) c->local[s] = pro_of[s] = -1;
    c->nlocal = 0;
    for (int i = 0; i < k->nnodes; i++)
        if (k->nodes[i]->op == KF_OP_RESULT && k->nodes[i]->in[0] == e) res[k->nodes[i]->attr.start] = k->nodes[i];
    for (int r = 0; r < nres; r++) KF_ASSERT(res[r]); /* the scheduler keeps every result */
    kf_buf hooks;
    kf_buf_init(&hooks, c->ctx);
    kf_buf body;
    int nepi = 0, npro = 0;

    /* inputs: plain buffers, or prologue hooks */
    for (int i = 0; i < nin; i++) {
        kf_node *x = e->in[i];
        kf_tensor_desc_of(x, &ind[i], lbl + 64 * i, 64);
        inbuf[i] = -1;
        if (!k->prologue[i] && !kf_node_is_view(x)) {
            inbuf[i] = kf_cg_local_buf(c, x);
            continue;
        }
        kf_hook *h = &pro[npro++];
        const char *T = x->dtype == KF_F64 ? "double" : "float";
        h->target = i;
        h->fn = kf_cg_fmt(c, "kf_k%d_prologue%d", id, i);
        kf_cg_begin_fn(c, &body);
        kf_idx ix;
        const char *params = kf_cg_index_params(c, x->ndim, &ix);
        kf_emit(c->body, "return %s;", kf_cg_convert(c, x->dtype, x->dtype == KF_F64 ? KF_F64 : KF_F32, kf_cg_gen(c, x, &ix)));
        int nu = kf_cg_used_locals(c, used);
        kf_buf code;
        kf_buf_init(&code, c->ctx);
        kf_cg_end_fn(c, &code, &body, kf_cg_fmt(c, "KF_INLINE %s %s(void **B%s)", T, h->fn, params));
        char *cs = kf_buf_take(&code);
        h->code = cs ? kf_arena_strdup(c->ar, cs) : "";
        if (cs) kf_buf_puts(&hooks, cs);
        kf_free(c->ctx, cs);
        int *src = kf_arena_alloc(c->ar, sizeof(int) * (size_t)(nu + 1));
        if (!src) goto fail_hooks;
        for (int j = 0; j < nu; j++) {
            src[j] = used[j];
            if (pro_of[used[j]] < 0) pro_of[used[j]] = i;
        }
        h->nsources = h->nbuffers = nu;
        h->sources = h->buffers = src;
        bool ok = true;
        h->expr = kf_cg_expr_of(c, x, NULL, &ok);
        if (!ok) h->expr = NULL;
        h->names = hook_names(c, x, NULL);
    }
    /* outputs: stored ones are buffers; each with fused nodes gets a hook */
    for (int r = 0; r < nres; r++) {
        kf_node *rn = res[r];
        outbuf[r] = -1;
        if (!rn) continue;
        kf_tensor_desc_of(rn, &outd[r], lbl + 64 * (nin + r), 64);
        if (c->s->stored[rn->id]) outbuf[r] = kf_cg_local_buf(c, rn);
        int nroots = 0;
        for (int i = 0; i < k->nroots; i++) nroots += c->s->result_of[k->roots[i]->id] == rn->id;
        if (!nroots) continue;
        kf_hook *h = &epi[nepi++];
        const char *T = rn->dtype == KF_F64 ? "double" : "float";
        h->target = r;
        h->fn = kf_cg_fmt(c, "kf_k%d_epilogue%d", id, r);
        kf_cg_begin_fn(c, &body);
        kf_idx ix;
        const char *params = kf_cg_index_params(c, rn->ndim, &ix);
        const char *av = kf_cg_tmp(c);
        kf_emit(c->body, "const %s %s = %s;", kf_cg_ctype(rn->dtype), av, kf_cg_fit_dtype(c, rn->dtype, "acc"));
        kf_cg_memo_put(c, rn, &ix, av);
        int *sb = kf_arena_alloc(c->ar, sizeof(int) * (size_t)(nroots + 2));
        const kf_expr **se = kf_arena_alloc(c->ar, sizeof *se * (size_t)(nroots + 2));
        if (!sb || !se) goto fail_hooks;
        bool ok = true;
        int ns = 0;
        if (outbuf[r] >= 0) {
            kf_emit(c->body, "%s[%s] = %s;", kf_cg_ptr(c, rn, true), kf_cg_linear(c, rn, &ix), kf_cg_store_conv(c, rn->dtype, av));
            sb[ns] = outbuf[r];
            se[ns++] = kf_cg_expr_of(c, rn, rn, &ok);
        }
        kf_cg_roots(c, &ix, rn->id);
        for (int i = 0; i < k->nroots; i++) {
            kf_node *root = k->roots[i];
            if (c->s->result_of[root->id] != rn->id || !c->s->stored[root->id]) continue;
            sb[ns] = kf_cg_local_buf(c, root);
            se[ns++] = kf_cg_expr_of(c, root, rn, &ok);
        }
        int nu = kf_cg_used_locals(c, used);
        for (int s2 = 0; s2 < (int)nslots; s2++)
            if (c->slot_written[s2]) written[s2] = true;
        kf_buf code;
        kf_buf_init(&code, c->ctx);
        kf_cg_end_fn(c, &code, &body, kf_cg_fmt(c, "KF_INLINE void %s(void **B%s, %s acc)", h->fn, params, T));
        char *cs = kf_buf_take(&code);
        h->code = cs ? kf_arena_strdup(c->ar, cs) : "";
        if (cs) kf_buf_puts(&hooks, cs);
        kf_free(c->ctx, cs);
        int *eb = kf_arena_alloc(c->ar, sizeof(int) * (size_t)(nu + 1));
        if (!eb) goto fail_hooks;
        int ne = 0;
        for (int j = 0; j < nu; j++)
            if (used[j] != outbuf[r]) eb[ne++] = used[j];
        h->nbuffers = ne;
        h->buffers = eb;
        h->nstores = ns;
        h->store_buffer = sb;
        h->store_expr = ok ? se : NULL;
        if (!ok) h->nstores = 0;
        h->names = hook_names(c, NULL, rn);
    }
    /* the buffer table */
    kf_buffer_desc *bufs = kf_arena_alloc(c->ar, sizeof *bufs * (size_t)(c->nlocal + 1));
    char *blbl = kf_arena_alloc(c->ar, 64 * (size_t)(c->nlocal + 1));
    if (!bufs || !blbl) goto fail_hooks;
    for (int l = 0; l < c->nlocal; l++) {
        int sl = c->local_slot[l];
        kf_node *n = NULL;
        for (int i = 0; i < c->g->nnodes && !n; i++)
            if (c->slot[i] == sl) n = c->g->nodes[i];
        kf_tensor_desc_of(n, &bufs[l].t, blbl + 64 * l, 64);
        bufs[l].of = -1;
        bufs[l].role = written[sl] ? KF_BUF_EXTRA_OUT : KF_BUF_EXTRA_IN;
        if (pro_of[l] >= 0) {
            bufs[l].role = KF_BUF_SOURCE;
            bufs[l].of = pro_of[l];
        }
        for (int i = 0; i < nin; i++)
            if (inbuf[i] == l) bufs[l].role = KF_BUF_INPUT, bufs[l].of = i;
        for (int r = 0; r < nres; r++)
            if (outbuf[r] == l) bufs[l].role = KF_BUF_OUTPUT, bufs[l].of = r;
    }
    kf_fusion_spec spec = {
        .abi_version = KF_BACKEND_ABI_VERSION, .device = KF_DEVICE_CPU, .op = e->ext_op, .attrs = &e->attr,
        .entry = kf_cg_fmt(c, "kf_ext_k%d", id), .ninputs = nin, .inputs = ind, .input_buffer = inbuf,
        .noutputs = nres, .outputs = outd, .output_buffer = outbuf, .nepilogues = nepi, .epilogues = epi,
        .nprologues = npro, .prologues = pro, .nbuffers = c->nlocal, .buffers = bufs};
    kf_fused_kernel fk = {0};
    char err[1024] = "";
    if (be->fuse(be->ctx, &spec, &fk, err, sizeof err)) {
        kf_err(c->ctx, KF_ERR_COMPILE, "error: backend '%s' failed to fuse %s: %s", be->name, e->ext_op,
               err[0] ? err : "(no message)");
        goto fail_hooks;
    }
    /* what it refused runs unfused: schedule again */
    for (int h = 0; h < nepi; h++)
        if (!(fk.accepted_epilogues >> h & 1)) {
            kf_node *rn = res[epi[h].target];
            for (int i = 0; i < k->nroots; i++)
                if (c->s->result_of[k->roots[i]->id] == rn->id) c->refused_epi[k->roots[i]->id] = 1;
            c->retry = true;
        }
    for (int h = 0; h < npro; h++)
        if (!(fk.accepted_prologues >> h & 1)) {
            kf_node *x = e->in[pro[h].target];
            if (!k->prologue[pro[h].target]) {
                kf_err(c->ctx, KF_ERR_COMPILE,
                       "error: backend '%s' refused to read input %d of %s through a view; it must accept that prologue",
                       be->name, pro[h].target, e->ext_op);
                goto release;
            }
            while (kf_node_is_view(x)) x = x->in[0];
            c->refused_pro[x->id] = 1;
            c->retry = true;
        }
    if (c->retry) goto release;
    /* check what came back */
    const char *bad = NULL;
    if (!fk.source || !fk.entry || !fk.entry[0]) bad = "no source or no entry symbol";
    else if (fk.nargs < 0 || fk.nargs > c->nlocal || (fk.nargs && !fk.args)) bad = "a null or oversized argument list";
    for (const char *p = fk.entry; !bad && p && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            bad = "an entry symbol that is not a C identifier";
    bool *have = kf_arena_alloc(c->ar, (size_t)c->nlocal + 1);
    if (!have) goto release;
    for (int i = 0; !bad && i < fk.nargs; i++) {
        if (fk.args[i] < 0 || fk.args[i] >= c->nlocal || have[fk.args[i]]) bad = "an argument list with a bad or repeated buffer";
        else have[fk.args[i]] = true;
    }
    for (int l = 0; !bad && l < c->nlocal; l++)
        if (!have[l]) bad = "an argument list that lacks a buffer the kernel or its hooks use";
    if (bad) {
        kf_err(c->ctx, KF_ERR_COMPILE, "error: backend '%s' returned %s for %s", be->name, bad, e->ext_op);
        goto release;
    }
    kf_buf_printf(out, "/* hooks of kernel %d, for backend ", id);
    char bn[64];
    kf_sanitize_ident(be->name, bn, sizeof bn);
    kf_buf_printf(out, "%s */\n", bn);
    if (hooks.s) kf_buf_puts(out, hooks.s);
    kf_buf_puts(out, fk.source);
    kf_buf_printf(out, "\nstatic void kf_k%d(void **B)\n{\n    void *args[%d];\n", id, fk.nargs ? fk.nargs : 1);
    for (int i = 0; i < fk.nargs; i++)
        kf_buf_printf(out, "    args[%d] = B[%d];\n", i, c->local_slot[fk.args[i]]);
    kf_buf_printf(out, "    %s(args);\n}\n", fk.entry);
release:
    if (be->release) be->release(be->ctx, &fk);
fail_hooks:
    kf_buf_free(&hooks);
done:
    c->local = NULL;
    if (c->ctx->status == KF_OK && !c->retry && !out->s) out->oom = true;
}

int kf_cg_c_generate(kf_sched *s, char *refused_epi, char *refused_pro, kf_cprog *out)
{
    kf_graph *g = s->g;
    kf_ctx *ctx = s->ctx;
    memset(out, 0, sizeof *out);
    kf_arena ar;
    kf_arena_init(&ar, ctx);
    kf_cg c = {.ctx = ctx, .s = s, .g = g, .ar = &ar, .refused_epi = refused_epi, .refused_pro = refused_pro};
    kf_buf src;
    kf_buf_init(&src, ctx);
    if (kf_cg_init(&c, out)) goto fail;

    kf_buf_puts(&src, "/* generated by kfuse */\n");
    kf_buf_puts(&src, kf_tmpl_prelude_h);
    kf_buf_puts(&src, kf_tmpl_helpers_h);
    kf_buf_puts(&src, "\n");
    for (int i = 0; i < s->nk; i++) {
        c.k = s->k[i];
        comment_nodes(&c, &src, c.k);
        switch (c.k->kind) {
        case KF_KERN_POINTWISE: gen_pointwise(&c, &src); break;
        case KF_KERN_REDUCTION: gen_reduction(&c, &src); break;
        case KF_KERN_TEMPLATE: gen_template(&c, &src); break;
        case KF_KERN_EXTERN: gen_extern(&c, &src); break;
        }
        if (c.retry || ctx->status != KF_OK) break;
        kf_buf_puts(&src, "\n");
    }
    if (c.retry && ctx->status == KF_OK) {
        kf_buf_free(&src);
        kf_free(ctx, c.memo);
        kf_arena_free(&ar);
        kf_cprog_free(ctx, out);
        return 1;
    }
    kf_buf_puts(&src, "void kf_entry(void *const *in, void *const *out, void *const *consts, char *scratch,\n"
                      "              int nthreads)\n{\n");
    kf_buf_printf(&src, "    void *B[%d];\n", out->nslots ? out->nslots : 1);
    static const char *const arr[] = {"in", "out", "consts"};
    for (int i = 0; i < out->nslots; i++) {
        kf_slot *sl = &out->slots[i];
        if (sl->kind == KF_SLOT_SCRATCH) kf_buf_printf(&src, "    B[%d] = scratch + %" PRId64 ";\n", i, sl->offset);
        else kf_buf_printf(&src, "    B[%d] = (void *)%s[%d];\n", i, arr[sl->kind], sl->index);
    }
    kf_buf_puts(&src, "#ifdef _OPENMP\n    if (nthreads > 0) omp_set_num_threads(nthreads);\n#endif\n"
                      "    (void)nthreads;\n    (void)in;\n    (void)out;\n    (void)consts;\n    (void)scratch;\n");
    for (int i = 0; i < s->nk; i++) kf_buf_printf(&src, "    kf_k%d(B);\n", i);
    kf_buf_puts(&src, "}\n");
    kf_free(ctx, c.memo);
    out->source = kf_buf_take(&src);
    kf_arena_free(&ar);
    if (!out->source || ctx->status != KF_OK) goto fail2;
    return 0;
fail:
    kf_buf_free(&src);
    kf_free(ctx, c.memo);
    kf_arena_free(&ar);
fail2:
    if (ctx->status == KF_OK) kf_err(ctx, KF_ERR_NOMEM, "out of memory in the code generator");
    kf_cprog_free(ctx, out);
    return -1;
}
