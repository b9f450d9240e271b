/*
 * cgen.c - the C code generator pass.  Every kernel computes values by
 * expanding node expressions at an index: pointwise nodes become C
 * expressions from the op table, views rewrite the index, realised buffers
 * are loaded.  Template kernels get three generated inline functions
 * (load_a, load_b: the prologues; store: the epilogue) that the standard
 * mm template text calls through its KF_MM_* macros.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cgen.h"

extern const char kf_tmpl_prelude_h[];
extern const char kf_tmpl_mm_c[];

typedef struct kidx {
    int nd;
    const char *e[KF_MAX_DIMS];
} kidx;

typedef struct memo_ent {
    int node;
    const char *key;
    const char *var;
} memo_ent;

typedef struct cg {
    kf_ctx *ctx;
    kf_sched *s;
    kf_graph *g;
    kf_arena *ar;          /* per kernel strings */
    kf_buf *body;
    int *slot;             /* node id -> slot or -1 */
    bool *slot_used;       /* slots referenced by the current function */
    bool *slot_written;
    int tmp;
    memo_ent *memo;
    int nmemo, capmemo;
    kf_kernel *k;
    /* external templates: hooks address buffers by their index in the
     * fusion spec; local[slot] is that index, or -1 */
    int *local;
    int *local_slot;       /* spec buffer -> slot */
    int nlocal;
    char *refused_epi, *refused_pro; /* per node, out: what a backend refused */
    bool retry;
} cg;

/* ---- small helpers ---- */

static const char *ctype(kf_dtype t)
{
    return t == KF_F64 ? "double" : kf_dtype_is_float(t) ? "float" : "int64_t";
}
static char tletter(kf_dtype t)
{
    return t == KF_F64 ? 'd' : kf_dtype_is_float(t) ? 'f' : 'i';
}
static const char *stype(kf_dtype t)
{
    static const char *const n[KF_NDTYPES] = {"double", "float", "uint16_t", "uint16_t", "int64_t",
                                              "int32_t", "int8_t", "uint8_t", "uint8_t"};
    return n[t];
}

static const char *fmt(cg *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(cg *c, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, f, ap);
    va_end(ap);
    if (n < 0) return "";
    char *s = kf_arena_alloc(c->ar, (size_t)n + 1);
    if (!s) return "";
    if ((size_t)n < sizeof tmp) {
        memcpy(s, tmp, (size_t)n + 1);
    } else {
        va_start(ap, f);
        vsnprintf(s, (size_t)n + 1, f, ap);
        va_end(ap);
    }
    return s;
}

static const char *newtmp(cg *c) { return fmt(c, "t%d", c->tmp++); }

/* The memo key of an index of n: a size-1 dim is always index 0, whatever
 * expression reached it. */
static const char *idx_key(cg *c, const kf_node *n, const kidx *ix)
{
    kf_buf b;
    kf_buf_init(&b, c->ctx);
    for (int i = 0; i < ix->nd; i++)
        kf_buf_printf(&b, "%s|", i < n->ndim && n->shape[i] == 1 ? "0" : ix->e[i]);
    char *s = kf_buf_take(&b);
    const char *r = s ? kf_arena_strdup(c->ar, s) : "";
    kf_free(c->ctx, s);
    return r;
}

static const char *memo_get(cg *c, const kf_node *n, const kidx *ix)
{
    const char *key = idx_key(c, n, ix);
    for (int i = c->nmemo - 1; i >= 0; i--)
        if (c->memo[i].node == n->id && strcmp(c->memo[i].key, key) == 0) return c->memo[i].var;
    return NULL;
}

static void memo_put(cg *c, const kf_node *n, const kidx *ix, const char *var)
{
    if (c->nmemo == c->capmemo) {
        int nc = c->capmemo ? c->capmemo * 2 : 64;
        memo_ent *m = kf_realloc(c->ctx, c->memo, sizeof *m * (size_t)nc);
        if (!m) return;
        c->memo = m;
        c->capmemo = nc;
    }
    c->memo[c->nmemo++] = (memo_ent){n->id, idx_key(c, n, ix), var};
}

/* The flat offset of index ix in a contiguous tensor of n's shape. */
static const char *linear(cg *c, const kf_node *n, const kidx *ix)
{
    kf_buf b;
    kf_buf_init(&b, c->ctx);
    int64_t stride = 1;
    bool any = false;
    for (int d = n->ndim - 1; d >= 0; d--) {
        if (n->shape[d] != 1) {
            if (stride == 1) kf_buf_printf(&b, "%s%s", any ? " + " : "", ix->e[d]);
            else kf_buf_printf(&b, "%s%s*%" PRId64, any ? " + " : "", ix->e[d], stride);
            any = true;
        }
        stride *= n->shape[d];
    }
    if (!any) kf_buf_puts(&b, "0");
    char *s = kf_buf_take(&b);
    const char *r = s ? fmt(c, "(%s)", s) : "0";
    kf_free(c->ctx, s);
    return r;
}

static const char *ptr(cg *c, const kf_node *n, bool write)
{
    int s = c->slot[n->id];
    if (s < 0) {
        /* only after an allocation failure lost a memo entry */
        KF_ASSERT(c->ctx->status != KF_OK);
        return "p0";
    }
    c->slot_used[s] = true;
    if (write) c->slot_written[s] = true;
    if (c->local && c->local[s] < 0) {
        c->local_slot[c->nlocal] = s;
        c->local[s] = c->nlocal++;
    }
    return fmt(c, "p%d", s);
}

static const char *load_conv(cg *c, kf_dtype t, const char *v)
{
    switch (t) {
    case KF_F16: return fmt(c, "kf_h2f(%s)", v);
    case KF_BF16: return fmt(c, "kf_bf2f(%s)", v);
    case KF_F32: case KF_F64: return v;
    default: return fmt(c, "(int64_t)%s", v);
    }
}

static const char *store_conv(cg *c, kf_dtype t, const char *v)
{
    switch (t) {
    case KF_F16: return fmt(c, "kf_f2h(%s)", v);
    case KF_BF16: return fmt(c, "kf_f2bf(%s)", v);
    case KF_F32: case KF_F64: return v;
    default: return fmt(c, "(%s)%s", stype(t), v);
    }
}

/* Every value is one its dtype can hold: integer results narrower than 64
 * bits wrap, f16 and bf16 results round, as they would when stored. */
static const char *fit_dtype(cg *c, kf_dtype t, const char *v)
{
    switch (t) {
    case KF_F16: return fmt(c, "kf_round_h(%s)", v);
    case KF_BF16: return fmt(c, "kf_round_bf(%s)", v);
    case KF_I32: return fmt(c, "(int64_t)(int32_t)(%s)", v);
    case KF_I8: return fmt(c, "(int64_t)(int8_t)(%s)", v);
    case KF_U8: return fmt(c, "(int64_t)(uint8_t)(%s)", v);
    default: return v;
    }
}

static const char *convert(cg *c, kf_dtype from, kf_dtype to, const char *v)
{
    if (to == KF_BOOL) return fmt(c, "(int64_t)(%s != 0)", v);
    if (kf_dtype_is_float(to)) {
        const char *x = fmt(c, "(%s)%s", ctype(to), v);
        if (to == KF_F16) x = fmt(c, "kf_round_h(%s)", x);
        if (to == KF_BF16) x = fmt(c, "kf_round_bf(%s)", x);
        return x;
    }
    if (kf_dtype_is_float(from)) return fit_dtype(c, to, fmt(c, "kf_f2i(%s)", v));
    return fit_dtype(c, to, v);
}

static const char *literal(cg *c, const kf_node *n)
{
    double v = n->scalar;
    kf_dtype t = n->dtype;
    if (!kf_dtype_is_float(t)) return fmt(c, "((int64_t)%" PRId64 ")", (int64_t)v);
    const char *s;
    if (isnan(v)) s = "NAN";
    else if (isinf(v)) s = v > 0 ? "INFINITY" : "(-INFINITY)";
    else s = fmt(c, "%.17g", v);
    const char *x = fmt(c, "((%s)%s)", ctype(t), s);
    if (t == KF_F16) x = fmt(c, "kf_round_h(%s)", x);
    if (t == KF_BF16) x = fmt(c, "kf_round_bf(%s)", x);
    return x;
}

/* Substitutes $0.. and $T in an op-table expression. */
static const char *expand(cg *c, const char *tmpl, const char **args, char letter)
{
    kf_buf b;
    kf_buf_init(&b, c->ctx);
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '$' && p[1] >= '0' && p[1] <= '2') {
            kf_buf_puts(&b, args[p[1] - '0']);
            p++;
        } else if (p[0] == '$' && p[1] == 'T') {
            char l[2] = {letter, 0};
            kf_buf_puts(&b, l);
            p++;
        } else {
            char ch[2] = {*p, 0};
            kf_buf_puts(&b, ch);
        }
    }
    char *s = kf_buf_take(&b);
    const char *r = s ? kf_arena_strdup(c->ar, s) : "";
    kf_free(c->ctx, s);
    return r;
}

/* Index of operand y of an n-d consumer at ix, NumPy broadcasting. */
static kidx bcast_idx(const kf_node *y, const kidx *ix)
{
    kidx r = {.nd = y->ndim};
    int off = ix->nd - y->ndim;
    for (int j = 0; j < y->ndim; j++) r.e[j] = y->shape[j] == 1 ? "0" : ix->e[j + off];
    return r;
}

static const char *gen(cg *c, kf_node *n, const kidx *ix);
static const char *pointwise(cg *c, kf_node *n, const kidx *ix);

static const char *gen_view(cg *c, kf_node *n, const kidx *ix)
{
    kf_node *x = n->in[0];
    kidx r = {.nd = x->ndim};
    switch (n->op) {
    case KF_OP_TRANSPOSE:
        for (int i = 0; i < n->ndim; i++) r.e[n->attr.perm[i]] = ix->e[i];
        return gen(c, x, &r);
    case KF_OP_EXPAND:
        r = bcast_idx(x, ix);
        return gen(c, x, &r);
    case KF_OP_SLICE:
        for (int d = 0; d < x->ndim; d++) r.e[d] = ix->e[d];
        {
            int ax = (int)n->attr.axes[0];
            r.e[ax] = fmt(c, "(%" PRId64 " + %s*%" PRId64 ")", n->attr.start, ix->e[ax], n->attr.step);
        }
        return gen(c, x, &r);
    case KF_OP_RESHAPE: {
        /* same dims apart from size-1 ones: map directly */
        int a = 0, b = 0;
        bool simple = true;
        while (simple && (a < n->ndim || b < x->ndim)) {
            if (a < n->ndim && n->shape[a] == 1) { a++; continue; }
            if (b < x->ndim && x->shape[b] == 1) { r.e[b++] = "0"; continue; }
            if (a < n->ndim && b < x->ndim && n->shape[a] == x->shape[b]) r.e[b++] = ix->e[a++];
            else simple = false;
        }
        if (!simple) {
            const char *flat = linear(c, n, ix);
            int64_t stride = 1;
            for (int d = x->ndim - 1; d >= 0; d--) {
                r.e[d] = x->shape[d] == 1 ? "0"
                       : stride == 1 ? fmt(c, "(%s %% %" PRId64 ")", flat, x->shape[d])
                       : fmt(c, "((%s / %" PRId64 ") %% %" PRId64 ")", flat, stride, x->shape[d]);
                stride *= x->shape[d];
            }
        }
        return gen(c, x, &r);
    }
    case KF_OP_CONCAT: {
        /* each branch computes its operand only where it is selected */
        int ax = (int)n->attr.axes[0];
        const char *v = newtmp(c);
        kf_emit(c->body, "%s %s;", ctype(n->dtype), v);
        int64_t off = 0;
        for (int i = 0; i < n->nin; i++) {
            kf_node *y = n->in[i];
            int64_t end = off + y->shape[ax];
            if (i == 0) kf_emit(c->body, "if (%s < %" PRId64 ") {", ix->e[ax], end);
            else if (i < n->nin - 1) kf_emit(c->body, "} else if (%s < %" PRId64 ") {", ix->e[ax], end);
            else kf_emit(c->body, "} else {");
            kidx yi = *ix;
            yi.e[ax] = off ? fmt(c, "(%s - %" PRId64 ")", ix->e[ax], off) : ix->e[ax];
            int mark = c->nmemo;
            kf_emit(c->body, "%s = %s;", v, gen(c, y, &yi));
            c->nmemo = mark;
            off = end;
        }
        kf_emit(c->body, "}");
        return v;
    }
    default: KF_ASSERT(0);
    }
    return "";
}

static const char *gen(cg *c, kf_node *n, const kidx *ix)
{
    if (n->op == KF_OP_SCALAR) return literal(c, n);
    const char *m = memo_get(c, n, ix);
    if (m) return m;
    int kind = kf_ops[n->op].kind;
    if (kind == KF_K_VIEW) return gen_view(c, n, ix);
    int here = c->k ? c->k->id : -1;
    bool computed_here = c->s->kern[n->id] == here && c->s->home[n->id] != n->id;
    const char *v;
    if (!computed_here) {
        /* a buffer: an input, a constant, or a node realised elsewhere */
        v = newtmp(c);
        const char *ld = fmt(c, "%s[%s]", ptr(c, n, false), linear(c, n, ix));
        kf_emit(c->body, "const %s %s = %s;", ctype(n->dtype), v, load_conv(c, n->dtype, ld));
        memo_put(c, n, ix, v);
        return v;
    }
    KF_ASSERT(kind == KF_K_POINTWISE);
    return pointwise(c, n, ix);
}

/* Computes pointwise node n at ix from its operands into a new temporary. */
static const char *pointwise(cg *c, kf_node *n, const kidx *ix)
{
    const char *args[3] = {"0", "0", "0"};
    for (int i = 0; i < n->nin; i++) {
        kidx yi = bcast_idx(n->in[i], ix);
        args[i] = gen(c, n->in[i], &yi);
    }
    kf_dtype it = n->nin ? n->in[n->nin - 1]->dtype : n->dtype;
    const char *e;
    if (n->op == KF_OP_CAST) e = convert(c, n->in[0]->dtype, n->dtype, args[0]);
    else e = expand(c, kf_ops[n->op].cexpr, args, tletter(it));
    if (kf_ops[n->op].flags & KF_F_BOOLOUT) e = fmt(c, "(int64_t)%s", e);
    else if (n->op != KF_OP_CAST) e = fit_dtype(c, n->dtype, e);
    const char *v = newtmp(c);
    kf_emit(c->body, "const %s %s = %s;", ctype(n->dtype), v, e);
    memo_put(c, n, ix, v);
    return v;
}

/* Computes and stores the kernel's roots at index ix (their own shape);
 * for an external template only those hanging from result node `of`. */
static void gen_roots(cg *c, const kidx *ix, int of)
{
    for (int i = 0; i < c->k->nroots; i++) {
        kf_node *r = c->k->roots[i];
        if (of >= 0 && c->s->result_of[r->id] != of) continue;
        /* the root's own value: expand its operands, not a buffer load */
        const char *v = pointwise(c, r, ix);
        if (c->s->stored[r->id])
            kf_emit(c->body, "%s[%s] = %s;", ptr(c, r, true), linear(c, r, ix), store_conv(c, r->dtype, v));
    }
}

static void loop_vars(cg *c, kidx *ix, const char *pfx, int nd)
{
    ix->nd = nd;
    for (int i = 0; i < nd; i++) ix->e[i] = fmt(c, "%s%d", pfx, i);
}

/* Opens nd nested loops over shape, the outer ones parallel when the work is
 * large enough; returns how many braces to close. */
static int open_loops(cg *c, const char *pfx, int nd, const int64_t *shape, int64_t work, bool simd_inner)
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

static void close_loops(cg *c, int n)
{
    for (int i = 0; i < n; i++) kf_emit(c->body, "}");
}

static void comment_nodes(cg *c, kf_buf *out, kf_kernel *k)
{
    static const char *kn[] = {"pointwise", "reduction", "template mm"};
    kf_buf_printf(out, "/* kernel %d: %s;", k->id, kn[k->kind]);
    for (int i = 0; i < k->nnodes && i < 32; i++) {
        char lb[64], id[80];
        kf_sanitize_ident(kf_node_label(k->nodes[i], lb, sizeof lb), id, sizeof id);
        kf_buf_printf(out, " %s", id);
    }
    kf_buf_puts(out, k->nnodes > 32 ? " ... */\n" : " */\n");
    (void)c;
}

/* Pointer declarations for the slots a function body used. */
static void emit_decls(cg *c, kf_buf *out, int indent)
{
    int nslots = 0;
    for (int i = 0; i < c->g->nnodes; i++)
        if (c->slot[i] >= nslots) nslots = c->slot[i] + 1;
    for (int s = 0; s < nslots; s++) {
        if (!c->slot_used[s]) continue;
        kf_node *n = NULL;
        for (int i = 0; i < c->g->nnodes && !n; i++)
            if (c->slot[i] == s) n = c->g->nodes[i];
        kf_buf_printf(out, "%*s%s%s *KF_RESTRICT p%d = (%s%s *)B[%d];\n", indent * 4, "",
                      c->slot_written[s] ? "" : "const ", stype(n->dtype), s,
                      c->slot_written[s] ? "" : "const ", stype(n->dtype), c->local ? c->local[s] : s);
    }
}

static void begin_fn(cg *c, kf_buf *body)
{
    kf_buf_init(body, c->ctx);
    body->indent = 1;
    c->body = body;
    c->nmemo = 0;
    int nslots = 0;
    for (int i = 0; i < c->g->nnodes; i++)
        if (c->slot[i] >= nslots) nslots = c->slot[i] + 1;
    memset(c->slot_used, 0, (size_t)nslots + 1);
    memset(c->slot_written, 0, (size_t)nslots + 1);
}

static void end_fn(cg *c, kf_buf *out, kf_buf *body, const char *sig)
{
    kf_buf_printf(out, "%s\n{\n", sig);
    emit_decls(c, out, 1);
    if (body->s) kf_buf_puts(out, body->s);
    kf_buf_puts(out, "}\n");
    if (body->oom) out->oom = true;
    kf_buf_free(body);
}

static void gen_pointwise(cg *c, kf_buf *out)
{
    kf_node *r = c->k->roots[0];
    kf_buf body;
    begin_fn(c, &body);
    kidx ix;
    loop_vars(c, &ix, "i", r->ndim);
    int nl = open_loops(c, "i", r->ndim, r->shape, kf_node_numel(r), true);
    gen_roots(c, &ix, -1);
    close_loops(c, nl);
    end_fn(c, out, &body, fmt(c, "static void kf_k%d(void **B)", c->k->id));
}

static void gen_reduction(cg *c, kf_buf *out)
{
    kf_node *a = c->k->anchor, *x = a->in[0];
    kf_buf body;
    begin_fn(c, &body);
    kidx oix, rix = {.nd = x->ndim};
    loop_vars(c, &oix, "o", a->ndim);
    int nl = open_loops(c, "o", a->ndim, a->shape, kf_node_numel(x), false);
    bool is_sum = a->op == KF_OP_SUM || a->op == KF_OP_MEAN;
    bool fl = kf_dtype_is_float(a->dtype);
    const char *acct = is_sum && fl ? "double" : ctype(a->dtype);
    const char *init = is_sum ? "0"
                     : a->op == KF_OP_MAX ? (fl ? "-INFINITY" : "INT64_MIN")
                                          : (fl ? "INFINITY" : "INT64_MAX");
    kf_emit(c->body, "%s acc = %s;", acct, init);
    int nr = 0, o = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (kf_reduce_has_axis(a, d)) {
            rix.e[d] = fmt(c, "r%d", nr);
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
    int mark = c->nmemo;
    const char *v = gen(c, x, &rix);
    if (is_sum) kf_emit(c->body, "acc += %s;", v);
    else kf_emit(c->body, "acc = kf_%s_%c(acc, %s);", a->op == KF_OP_MAX ? "max" : "min", tletter(a->dtype), v);
    c->nmemo = mark;
    close_loops(c, nr);
    const char *res = "acc";
    if (a->op == KF_OP_MEAN) {
        int64_t cnt = kf_reduce_count(a);
        res = fl ? fmt(c, "(acc / %" PRId64 ".0)", cnt) : fmt(c, "kf_div_i(acc, %" PRId64 ")", cnt);
    }
    const char *av = newtmp(c);
    const char *conv = fit_dtype(c, a->dtype, fl ? fmt(c, "(%s)%s", ctype(a->dtype), res) : res);
    kf_emit(c->body, "const %s %s = %s;", ctype(a->dtype), av, conv);
    memo_put(c, a, &oix, av);
    if (c->s->stored[a->id])
        kf_emit(c->body, "%s[%s] = %s;", ptr(c, a, true), linear(c, a, &oix), store_conv(c, a->dtype, av));
    gen_roots(c, &oix, -1);
    close_loops(c, nl);
    end_fn(c, out, &body, fmt(c, "static void kf_k%d(void **B)", c->k->id));
}

/* Index of a matmul operand (rank >= 2, batch dims broadcast against the
 * output's) from the flat batch b and two matrix indices. */
static kidx mm_operand_idx(cg *c, const kf_node *mm, const kf_node *x, const char *i, const char *j)
{
    kidx r = {.nd = x->ndim};
    int onb = mm->ndim - 2, xnb = x->ndim - 2;
    for (int d = 0; d < xnb; d++) {
        int od = d + (onb - xnb);
        int64_t stride = 1;
        for (int t = od + 1; t < onb; t++) stride *= mm->shape[t];
        r.e[d] = x->shape[d] == 1 ? "0" : fmt(c, "((b / %" PRId64 ") %% %" PRId64 ")", stride, mm->shape[od]);
    }
    r.e[x->ndim - 2] = i;
    r.e[x->ndim - 1] = j;
    return r;
}

/* Can the template read operand x as a plain pointer? */
static bool plain_operand(cg *c, const kf_node *mm, const kf_node *x)
{
    kf_dtype acc = mm->dtype == KF_F64 ? KF_F64 : KF_F32;
    if (x->dtype != acc || c->s->kern[x->id] == c->k->id || kf_node_is_view(x)) return false;
    if (x->ndim != mm->ndim) return x->ndim == 2;
    for (int d = 0; d < x->ndim - 2; d++)
        if (x->shape[d] != mm->shape[d]) return false;
    return true;
}

static void gen_template(cg *c, kf_buf *out)
{
    kf_node *mm = c->k->anchor, *A = mm->in[0], *Bn = mm->in[1];
    int id = c->k->id;
    int64_t M = mm->shape[mm->ndim - 2], N = mm->shape[mm->ndim - 1];
    int64_t K = A->shape[A->ndim - 1], batch = 1;
    for (int d = 0; d < mm->ndim - 2; d++) batch *= mm->shape[d];
    const char *T = mm->dtype == KF_F64 ? "double" : "float";
    kf_dtype acc_dt = mm->dtype == KF_F64 ? KF_F64 : KF_F32;
    kf_buf body;
    /* prologue loaders */
    for (int op = 0; op < 2; op++) {
        kf_node *x = op == 0 ? A : Bn;
        begin_fn(c, &body);
        kidx ix = op == 0 ? mm_operand_idx(c, mm, x, "m", "k") : mm_operand_idx(c, mm, x, "k", "n");
        const char *v = gen(c, x, &ix);
        kf_emit(c->body, "return %s;", convert(c, x->dtype, acc_dt, v));
        end_fn(c, out, &body,
               fmt(c, "KF_INLINE %s kf_k%d_prologue_%c(void **B, int64_t b, int64_t %s, int64_t %s)", T, id,
                   op == 0 ? 'a' : 'b', op == 0 ? "m" : "k", op == 0 ? "k" : "n"));
        kf_buf_puts(out, "\n");
    }
    /* the epilogue */
    begin_fn(c, &body);
    kidx oix = mm_operand_idx(c, mm, mm, "m", "n");
    const char *av = "acc";
    if (mm->dtype == KF_F16 || mm->dtype == KF_BF16) {
        /* the template's result is rounded to its dtype, as when stored */
        av = newtmp(c);
        kf_emit(c->body, "const float %s = %s(acc);", av, mm->dtype == KF_F16 ? "kf_round_h" : "kf_round_bf");
    }
    memo_put(c, mm, &oix, av);
    if (c->s->stored[mm->id])
        kf_emit(c->body, "%s[%s] = %s;", ptr(c, mm, true), linear(c, mm, &oix), store_conv(c, mm->dtype, av));
    gen_roots(c, &oix, -1);
    end_fn(c, out, &body,
           fmt(c, "KF_INLINE void kf_k%d_epilogue(void **B, int64_t b, int64_t m, int64_t n, %s acc)", id, T));
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

/* ---- external templates ---- */

static int local_buf(cg *c, const kf_node *n)
{
    int s = c->slot[n->id];
    KF_ASSERT(s >= 0);
    if (c->local[s] < 0) {
        c->local_slot[c->nlocal] = s;
        c->local[s] = c->nlocal++;
    }
    return c->local[s];
}

/* The hook as an expression tree; *ok becomes false where it reads through a
 * view, which the tree cannot express. */
static const kf_expr *expr_of(cg *c, kf_node *n, const kf_node *value, bool *ok)
{
    kf_expr *e = kf_arena_alloc(c->ar, sizeof *e);
    if (!e) return NULL;
    e->dtype = n->dtype;
    e->buffer = -1;
    if (n == value) {
        e->kind = KF_EXPR_VALUE;
        return e;
    }
    if (n->op == KF_OP_SCALAR) {
        e->kind = KF_EXPR_CONST;
        e->value = n->scalar;
        return e;
    }
    if (kf_node_is_view(n)) {
        *ok = false;
        e->kind = KF_EXPR_CONST;
        return e;
    }
    bool inlined = c->s->kern[n->id] == c->k->id && kf_ops[n->op].kind == KF_K_POINTWISE &&
                   (c->s->home[n->id] != n->id || (value && c->s->result_of[n->id] == value->id));
    if (!inlined) {
        e->kind = KF_EXPR_LOAD;
        e->buffer = local_buf(c, n);
        return e;
    }
    e->kind = KF_EXPR_OP;
    e->op = kf_ops[n->op].name;
    e->nargs = n->nin;
    const kf_expr **args = kf_arena_alloc(c->ar, sizeof *args * (size_t)(n->nin + 1));
    if (!args) return NULL;
    for (int i = 0; i < n->nin; i++) args[i] = expr_of(c, n->in[i], value, ok);
    e->args = args;
    return e;
}

/* The local buffers the current function used. */
static int used_locals(cg *c, int *out)
{
    int n = 0;
    for (int l = 0; l < c->nlocal; l++)
        if (c->slot_used[c->local_slot[l]]) out[n++] = l;
    return n;
}

static const char *index_params(cg *c, int nd, kidx *ix)
{
    kf_buf b;
    kf_buf_init(&b, c->ctx);
    ix->nd = nd;
    for (int d = 0; d < nd; d++) {
        ix->e[d] = fmt(c, "i%d", d);
        kf_buf_printf(&b, ", int64_t i%d", d);
    }
    char *str = kf_buf_take(&b);
    const char *r = str ? kf_arena_strdup(c->ar, str) : "";
    kf_free(c->ctx, str);
    return r;
}

static void gen_extern(cg *c, kf_buf *out)
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
            inbuf[i] = local_buf(c, x);
            continue;
        }
        kf_hook *h = &pro[npro++];
        const char *T = x->dtype == KF_F64 ? "double" : "float";
        h->target = i;
        h->fn = fmt(c, "kf_k%d_prologue%d", id, i);
        begin_fn(c, &body);
        kidx ix;
        const char *params = index_params(c, x->ndim, &ix);
        kf_emit(c->body, "return %s;", convert(c, x->dtype, x->dtype == KF_F64 ? KF_F64 : KF_F32, gen(c, x, &ix)));
        int nu = used_locals(c, used);
        kf_buf code;
        kf_buf_init(&code, c->ctx);
        end_fn(c, &code, &body, fmt(c, "KF_INLINE %s %s(void **B%s)", T, h->fn, params));
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
        h->expr = expr_of(c, x, NULL, &ok);
        if (!ok) h->expr = NULL;
        h->names = "";
    }
    /* outputs: stored ones are buffers; each with fused nodes gets a hook */
    for (int r = 0; r < nres; r++) {
        kf_node *rn = res[r];
        outbuf[r] = -1;
        if (!rn) continue;
        kf_tensor_desc_of(rn, &outd[r], lbl + 64 * (nin + r), 64);
        if (c->s->stored[rn->id]) outbuf[r] = local_buf(c, rn);
        int nroots = 0;
        for (int i = 0; i < k->nroots; i++) nroots += c->s->result_of[k->roots[i]->id] == rn->id;
        if (!nroots) continue;
        kf_hook *h = &epi[nepi++];
        const char *T = rn->dtype == KF_F64 ? "double" : "float";
        h->target = r;
        h->fn = fmt(c, "kf_k%d_epilogue%d", id, r);
        begin_fn(c, &body);
        kidx ix;
        const char *params = index_params(c, rn->ndim, &ix);
        const char *av = newtmp(c);
        kf_emit(c->body, "const %s %s = %s;", ctype(rn->dtype), av, fit_dtype(c, rn->dtype, "acc"));
        memo_put(c, rn, &ix, av);
        int *sb = kf_arena_alloc(c->ar, sizeof(int) * (size_t)(nroots + 2));
        const kf_expr **se = kf_arena_alloc(c->ar, sizeof *se * (size_t)(nroots + 2));
        if (!sb || !se) goto fail_hooks;
        bool ok = true;
        int ns = 0;
        if (outbuf[r] >= 0) {
            kf_emit(c->body, "%s[%s] = %s;", ptr(c, rn, true), linear(c, rn, &ix), store_conv(c, rn->dtype, av));
            sb[ns] = outbuf[r];
            se[ns++] = expr_of(c, rn, rn, &ok);
        }
        gen_roots(c, &ix, rn->id);
        for (int i = 0; i < k->nroots; i++) {
            kf_node *root = k->roots[i];
            if (c->s->result_of[root->id] != rn->id || !c->s->stored[root->id]) continue;
            sb[ns] = local_buf(c, root);
            se[ns++] = expr_of(c, root, rn, &ok);
        }
        int nu = used_locals(c, used);
        for (int s2 = 0; s2 < (int)nslots; s2++)
            if (c->slot_written[s2]) written[s2] = true;
        kf_buf code;
        kf_buf_init(&code, c->ctx);
        end_fn(c, &code, &body, fmt(c, "KF_INLINE void %s(void **B%s, %s acc)", h->fn, params, T));
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
        h->names = "";
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
        .entry = fmt(c, "kf_ext_k%d", id), .ninputs = nin, .inputs = ind, .input_buffer = inbuf,
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

/* ---- memory plan: greedy first fit of intermediates by lifetime ---- */
typedef struct plan_ent {
    int node;
    int first, last;
    int64_t size, off;
} plan_ent;

static int64_t plan_memory(cg *c, plan_ent *e, int n)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        /* biggest first */
        int best = i;
        for (int j = i + 1; j < n; j++)
            if (e[j].size > e[best].size) best = j;
        plan_ent t = e[i];
        e[i] = e[best];
        e[best] = t;
        int64_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                bool live = !(e[j].last < e[i].first || e[i].last < e[j].first);
                bool overlap = !(e[j].off + e[j].size <= off || off + e[i].size <= e[j].off);
                if (live && overlap) {
                    off = e[j].off + e[j].size;
                    moved = true;
                }
            }
        }
        e[i].off = off;
        if (off + e[i].size > total) total = off + e[i].size;
    }
    (void)c;
    return total;
}

int kf_cg_c_generate(kf_sched *s, char *refused_epi, char *refused_pro, kf_cprog *out)
{
    kf_graph *g = s->g;
    kf_ctx *ctx = s->ctx;
    memset(out, 0, sizeof *out);
    kf_arena ar;
    kf_arena_init(&ar, ctx);
    cg c = {.ctx = ctx, .s = s, .g = g, .ar = &ar, .refused_epi = refused_epi, .refused_pro = refused_pro};
    size_t nn = (size_t)g->nnodes;
    c.slot = kf_arena_alloc(&ar, sizeof(int) * nn);
    c.slot_used = kf_arena_alloc(&ar, nn + 1);
    c.slot_written = kf_arena_alloc(&ar, nn + 1);
    plan_ent *pe = kf_arena_alloc(&ar, sizeof *pe * (nn + 1));
    out->slots = kf_malloc(ctx, sizeof *out->slots * (nn + 1));
    out->consts = kf_malloc(ctx, sizeof *out->consts * (nn + 1));
    kf_buf src;
    kf_buf_init(&src, ctx);
    if (!c.slot || !c.slot_used || !c.slot_written || !pe || !out->slots || !out->consts) goto fail;

    /* slots: every stored node */
    int npe = 0;
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        c.slot[i] = -1;
        if (!s->stored[i]) continue;
        kf_slot *sl = &out->slots[out->nslots];
        sl->node = n;
        c.slot[i] = out->nslots++;
        if (n->op == KF_OP_INPUT) {
            sl->kind = KF_SLOT_INPUT;
            sl->index = n->input_index;
        } else if (n->op == KF_OP_CONST) {
            sl->kind = KF_SLOT_CONST;
            sl->index = out->nconsts;
            out->consts[out->nconsts++] = n;
        } else if (s->is_output[i]) {
            sl->kind = KF_SLOT_OUTPUT;
            for (int j = 0; j < g->noutputs; j++)
                if (g->outputs[j] == n) sl->index = j;
        } else {
            sl->kind = KF_SLOT_SCRATCH;
            int first = s->kern[i], last = first;
            for (int j = i + 1; j < g->nnodes; j++) {
                /* readers, also through views */
                kf_node *x = g->nodes[j];
                if (s->kern[j] < 0) continue;
                for (int t = 0; t < x->nin; t++) {
                    kf_node *y = x->in[t];
                    kf_node *stack[64];
                    int sp = 0;
                    stack[sp++] = y;
                    while (sp) {
                        kf_node *z = stack[--sp];
                        if (z == n && s->kern[j] > last) last = s->kern[j];
                        if (kf_node_is_view(z))
                            for (int q = 0; q < z->nin && sp < 64; q++) stack[sp++] = z->in[q];
                    }
                }
            }
            int64_t bytes = kf_node_numel(n) * (int64_t)kf_dtype_size(n->dtype);
            pe[npe++] = (plan_ent){i, first, last, (bytes + 63) & ~(int64_t)63, 0};
        }
    }
    out->scratch_bytes = plan_memory(&c, pe, npe);
    for (int i = 0; i < npe; i++) out->slots[c.slot[pe[i].node]].offset = pe[i].off;

    kf_buf_puts(&src, "/* generated by kfuse */\n");
    kf_buf_puts(&src, kf_tmpl_prelude_h);
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

void kf_cprog_free(kf_ctx *ctx, kf_cprog *p)
{
    kf_free(ctx, p->source);
    kf_free(ctx, p->slots);
    kf_free(ctx, p->consts);
    memset(p, 0, sizeof *p);
}
