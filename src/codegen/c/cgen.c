/*
 * cgen.c - the C code generator pass: the loops of pointwise and reduction
 * kernels around the shared expression generator (gen.h), the standard mm
 * template with three generated inline functions (prologue_a, prologue_b,
 * epilogue) that its text calls through the KF_MM_* macros, external
 * templates (the fusion spec and the backend's kernel from gen.c's
 * kf_cg_extern, a plain function around it here), and the wrapper kf_entry.
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

static void gen_template(kf_cg *c, kf_buf *out)
{
    kf_node *mm = c->k->anchor, *A = mm->in[0];
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
    /* operands in the accumulation type are packed straight from their buffers */
    kf_dtype acc = mm->dtype == KF_F64 ? KF_F64 : KF_F32;
    bool pa = kf_cg_mm_operand_ptr(c, out, 0, acc, T, 1);
    bool pb = kf_cg_mm_operand_ptr(c, out, 1, acc, T, 1);
    kf_buf_puts(out, kf_tmpl_mm_c);
    kf_buf_puts(out, "\n#undef KF_MM_FN\n#undef KF_MM_T\n#undef KF_MM_T_IS_DOUBLE\n#undef KF_MM_BATCH\n"
                     "#undef KF_MM_M\n#undef KF_MM_N\n#undef KF_MM_K\n#undef KF_MM_LOAD_A\n"
                     "#undef KF_MM_LOAD_B\n#undef KF_MM_STORE\n");
    if (pa) kf_buf_puts(out, "#undef KF_MM_A_PTR\n");
    if (pb) kf_buf_puts(out, "#undef KF_MM_B_PTR\n");
}

/* An external template's kernel: a plain function of the buffer table. */
static const char *c_shell(kf_cg *c, const kf_backend *be, const kf_fused_kernel *fk, void *ud)
{
    (void)be;
    (void)fk;
    (void)ud;
    return kf_cg_fmt(c, "static void kf_k%d(void **B)", c->k->id);
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
        case KF_KERN_EXTERN: kf_cg_extern(&c, KF_DEVICE_CPU, &src, c_shell, NULL); break;
        }
        if (c.retry || ctx->status != KF_OK) break;
        kf_buf_puts(&src, "\n");
    }
    if (c.retry && ctx->status == KF_OK) {
        kf_buf_free(&src);
        kf_free(ctx, c.memo);
        kf_free(ctx, (void *)c.twin);
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
    kf_free(ctx, (void *)c.twin);
    out->source = kf_buf_take(&src);
    kf_arena_free(&ar);
    if (!out->source || ctx->status != KF_OK) goto fail2;
    return 0;
fail:
    kf_buf_free(&src);
    kf_free(ctx, c.memo);
    kf_free(ctx, (void *)c.twin);
    kf_arena_free(&ar);
fail2:
    if (ctx->status == KF_OK) kf_err(ctx, KF_ERR_NOMEM, "out of memory in the code generator");
    kf_cprog_free(ctx, out);
    return -1;
}
