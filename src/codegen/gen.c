/*
 * gen.c - the expression generator shared by the code generators (see
 * gen.h): a node's value at an index, as straight-line code; and external
 * templates up to the target's shell: the fusion spec, the backend's fuse,
 * its refusals and the checks of what it returned.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gen.h"

/* ---- small helpers ---- */

const char *kf_cg_ctype(kf_dtype t)
{
    return t == KF_F64 ? "double" : kf_dtype_is_float(t) ? "float" : "int64_t";
}
char kf_cg_tletter(kf_dtype t)
{
    return t == KF_F64 ? 'd' : kf_dtype_is_float(t) ? 'f' : 'i';
}
const char *kf_cg_stype(kf_dtype t)
{
    static const char *const n[KF_NDTYPES] = {"double", "float", "uint16_t", "uint16_t", "int64_t",
                                              "int32_t", "int8_t", "uint8_t", "uint8_t"};
    return n[t];
}

const char *kf_cg_fmt(kf_cg *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
const char *kf_cg_fmt(kf_cg *c, const char *f, ...)
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

const char *kf_cg_tmp(kf_cg *c) { return kf_cg_fmt(c, "t%d", c->tmp++); }

/* The memo key of an index of n: a size-1 dim is always index 0, whatever
 * expression reached it. */
static const char *idx_key(kf_cg *c, const kf_node *n, const kf_idx *ix)
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

static const char *memo_get(kf_cg *c, const kf_node *n, const kf_idx *ix)
{
    const char *key = idx_key(c, n, ix);
    for (int i = c->nmemo - 1; i >= 0; i--)
        if (c->memo[i].node == n->id && strcmp(c->memo[i].key, key) == 0) return c->memo[i].var;
    return NULL;
}

void kf_cg_memo_put(kf_cg *c, const kf_node *n, const kf_idx *ix, const char *var)
{
    if (c->nmemo == c->capmemo) {
        int nc = c->capmemo ? c->capmemo * 2 : 64;
        kf_memo_ent *m = kf_realloc(c->ctx, c->memo, sizeof *m * (size_t)nc);
        if (!m) return;
        c->memo = m;
        c->capmemo = nc;
    }
    c->memo[c->nmemo++] = (kf_memo_ent){n->id, idx_key(c, n, ix), var};
}

/* The flat offset of index ix in a contiguous tensor of n's shape. */
const char *kf_cg_linear(kf_cg *c, const kf_node *n, const kf_idx *ix)
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
    const char *r = s ? kf_cg_fmt(c, "(%s)", s) : "0";
    kf_free(c->ctx, s);
    return r;
}

const char *kf_cg_ptr(kf_cg *c, const kf_node *n, bool write)
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
    return kf_cg_fmt(c, "p%d", s);
}

const char *kf_cg_load_conv(kf_cg *c, kf_dtype t, const char *v)
{
    switch (t) {
    case KF_F16: return kf_cg_fmt(c, "kf_h2f(%s)", v);
    case KF_BF16: return kf_cg_fmt(c, "kf_bf2f(%s)", v);
    case KF_F32: case KF_F64: return v;
    default: return kf_cg_fmt(c, "(int64_t)%s", v);
    }
}

/* The 16-bit twin of f16/bf16 temporary v (the bits it was rounded from),
 * or NULL. */
static const char *twin_of(kf_cg *c, const char *v)
{
    for (int i = c->ntwin - 1; i >= 0; i--)
        if (strcmp(c->twin[2 * i], v) == 0) return c->twin[2 * i + 1];
    return NULL;
}

static void twin_put(kf_cg *c, const char *v, const char *h)
{
    if (c->ntwin == c->captwin) {
        int nc = c->captwin ? c->captwin * 2 : 32;
        const char **t = kf_realloc(c->ctx, c->twin, sizeof *t * 2 * (size_t)nc);
        if (!t) return;
        c->twin = t;
        c->captwin = nc;
    }
    c->twin[2 * c->ntwin] = v;
    c->twin[2 * c->ntwin + 1] = h;
    c->ntwin++;
}

const char *kf_cg_store_conv(kf_cg *c, kf_dtype t, const char *v)
{
    const char *h = t == KF_F16 || t == KF_BF16 ? twin_of(c, v) : NULL;
    if (h) return h;
    switch (t) {
    case KF_F16: return kf_cg_fmt(c, "kf_f2h(%s)", v);
    case KF_BF16: return kf_cg_fmt(c, "kf_f2bf(%s)", v);
    case KF_F32: case KF_F64: return v;
    default: return kf_cg_fmt(c, "(%s)%s", kf_cg_stype(t), v);
    }
}

/* Every value is one its dtype can hold: integer results narrower than 64
 * bits wrap, f16 and bf16 results round, as they would when stored. */
const char *kf_cg_fit_dtype(kf_cg *c, kf_dtype t, const char *v)
{
    switch (t) {
    case KF_F16: return kf_cg_fmt(c, "kf_round_h(%s)", v);
    case KF_BF16: return kf_cg_fmt(c, "kf_round_bf(%s)", v);
    case KF_I32: return kf_cg_fmt(c, "(int64_t)(int32_t)(%s)", v);
    case KF_I8: return kf_cg_fmt(c, "(int64_t)(int8_t)(%s)", v);
    case KF_U8: return kf_cg_fmt(c, "(int64_t)(uint8_t)(%s)", v);
    default: return v;
    }
}

const char *kf_cg_convert(kf_cg *c, kf_dtype from, kf_dtype to, const char *v)
{
    if (to == KF_BOOL) return kf_cg_fmt(c, "(int64_t)(%s != 0)", v);
    if (kf_dtype_is_float(to)) {
        const char *x = kf_cg_fmt(c, "(%s)%s", kf_cg_ctype(to), v);
        /* 8-bit integers and bools are exact in every float type */
        if (from == KF_I8 || from == KF_U8 || from == KF_BOOL) return x;
        if (to == KF_F16) x = kf_cg_fmt(c, "kf_round_h(%s)", x);
        if (to == KF_BF16) x = kf_cg_fmt(c, "kf_round_bf(%s)", x);
        return x;
    }
    if (kf_dtype_is_float(from)) return kf_cg_fit_dtype(c, to, kf_cg_fmt(c, "kf_f2i(%s)", v));
    return kf_cg_fit_dtype(c, to, v);
}

static const char *literal(kf_cg *c, const kf_node *n)
{
    double v = n->scalar;
    kf_dtype t = n->dtype;
    if (!kf_dtype_is_float(t)) return kf_cg_fmt(c, "((int64_t)%" PRId64 ")", (int64_t)v);
    const char *s;
    if (isnan(v)) s = "NAN";
    else if (isinf(v)) s = v > 0 ? "INFINITY" : "(-INFINITY)";
    else s = kf_cg_fmt(c, "%.17g", v);
    const char *x = kf_cg_fmt(c, "((%s)%s)", kf_cg_ctype(t), s);
    if (t == KF_F16) x = kf_cg_fmt(c, "kf_round_h(%s)", x);
    if (t == KF_BF16) x = kf_cg_fmt(c, "kf_round_bf(%s)", x);
    return x;
}

/* Substitutes $0.. and $T in an op-table expression. */
static const char *expand(kf_cg *c, const char *tmpl, const char **args, char letter)
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
kf_idx kf_cg_bcast_idx(const kf_node *y, const kf_idx *ix)
{
    kf_idx r = {.nd = y->ndim};
    int off = ix->nd - y->ndim;
    for (int j = 0; j < y->ndim; j++) r.e[j] = y->shape[j] == 1 ? "0" : ix->e[j + off];
    return r;
}

const char *kf_cg_gen(kf_cg *c, kf_node *n, const kf_idx *ix);
const char *kf_cg_pointwise(kf_cg *c, kf_node *n, const kf_idx *ix);

static const char *gen_view(kf_cg *c, kf_node *n, const kf_idx *ix)
{
    kf_node *x = n->in[0];
    kf_idx r = {.nd = x->ndim};
    switch (n->op) {
    case KF_OP_TRANSPOSE:
        for (int i = 0; i < n->ndim; i++) r.e[n->attr.perm[i]] = ix->e[i];
        return kf_cg_gen(c, x, &r);
    case KF_OP_EXPAND:
        r = kf_cg_bcast_idx(x, ix);
        return kf_cg_gen(c, x, &r);
    case KF_OP_SLICE:
        for (int d = 0; d < x->ndim; d++) r.e[d] = ix->e[d];
        {
            int ax = (int)n->attr.axes[0];
            r.e[ax] = kf_cg_fmt(c, "(%" PRId64 " + %s*%" PRId64 ")", n->attr.start, ix->e[ax], n->attr.step);
        }
        return kf_cg_gen(c, x, &r);
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
            const char *flat = kf_cg_linear(c, n, ix);
            int64_t stride = 1;
            for (int d = x->ndim - 1; d >= 0; d--) {
                r.e[d] = x->shape[d] == 1 ? "0"
                       : stride == 1 ? kf_cg_fmt(c, "(%s %% %" PRId64 ")", flat, x->shape[d])
                       : kf_cg_fmt(c, "((%s / %" PRId64 ") %% %" PRId64 ")", flat, stride, x->shape[d]);
                stride *= x->shape[d];
            }
        }
        return kf_cg_gen(c, x, &r);
    }
    case KF_OP_CONCAT: {
        /* each branch computes its operand only where it is selected */
        int ax = (int)n->attr.axes[0];
        const char *v = kf_cg_tmp(c);
        kf_emit(c->body, "%s %s;", kf_cg_ctype(n->dtype), v);
        int64_t off = 0;
        for (int i = 0; i < n->nin; i++) {
            kf_node *y = n->in[i];
            int64_t end = off + y->shape[ax];
            if (i == 0) kf_emit(c->body, "if (%s < %" PRId64 ") {", ix->e[ax], end);
            else if (i < n->nin - 1) kf_emit(c->body, "} else if (%s < %" PRId64 ") {", ix->e[ax], end);
            else kf_emit(c->body, "} else {");
            kf_idx yi = *ix;
            yi.e[ax] = off ? kf_cg_fmt(c, "(%s - %" PRId64 ")", ix->e[ax], off) : ix->e[ax];
            int mark = c->nmemo;
            kf_emit(c->body, "%s = %s;", v, kf_cg_gen(c, y, &yi));
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

/* Is n computed inline in the current kernel (not read from a buffer)? */
static bool computed_here(const kf_cg *c, const kf_node *n)
{
    return c->k && c->s->kern[n->id] == c->k->id && c->s->home[n->id] != n->id;
}

static bool same_shape(const kf_node *a, const kf_node *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

const char *kf_cg_gen(kf_cg *c, kf_node *n, const kf_idx *ix)
{
    if (n->op == KF_OP_SCALAR) return literal(c, n);
    const char *m = memo_get(c, n, ix);
    if (m) return m;
    int kind = kf_ops[n->op].kind;
    if (kind == KF_K_VIEW) return gen_view(c, n, ix);
    const char *v;
    if (!computed_here(c, n)) {
        /* a buffer: an input, a constant, or a node realised elsewhere */
        v = kf_cg_tmp(c);
        const char *ld = kf_cg_fmt(c, "%s[%s]", kf_cg_ptr(c, n, false), kf_cg_linear(c, n, ix));
        kf_emit(c->body, "const %s %s = %s;", kf_cg_ctype(n->dtype), v, kf_cg_load_conv(c, n->dtype, ld));
        kf_cg_memo_put(c, n, ix, v);
        return v;
    }
    KF_ASSERT(kind == KF_K_POINTWISE);
    return kf_cg_pointwise(c, n, ix);
}

/* Does pointwise node n give a value of its float dtype exactly, its float
 * operands all of that dtype (a choice, a sign, a clamp to bounds of that
 * dtype, floor and ceil)?  Then an f16/bf16 result needs no rounding. */
static bool exact_op(const kf_node *n)
{
    switch (n->op) {
    case KF_OP_RELU: case KF_OP_ABS: case KF_OP_NEG: case KF_OP_MAXIMUM: case KF_OP_MINIMUM: case KF_OP_CLAMP:
    case KF_OP_FLOOR: case KF_OP_CEIL: case KF_OP_SIGN: case KF_OP_WHERE: case KF_OP_COPY: break;
    default: return false;
    }
    if (!kf_dtype_is_float(n->dtype)) return false;
    for (int i = n->op == KF_OP_WHERE ? 1 : 0; i < n->nin; i++)
        if (n->in[i]->dtype != n->dtype) return false;
    return true;
}

/* Computes pointwise node n at ix from its operands into a new temporary. */
const char *kf_cg_pointwise(kf_cg *c, kf_node *n, const kf_idx *ix)
{
    const char *args[3] = {"0", "0", "0"};
    for (int i = 0; i < n->nin; i++) {
        kf_idx yi = kf_cg_bcast_idx(n->in[i], ix);
        args[i] = kf_cg_gen(c, n->in[i], &yi);
    }
    kf_dtype it = n->nin ? n->in[n->nin - 1]->dtype : n->dtype;
    const char *e;
    if (n->op == KF_OP_CAST) e = kf_cg_convert(c, n->in[0]->dtype, n->dtype, args[0]);
    else e = expand(c, kf_ops[n->op].cexpr, args, kf_cg_tletter(it));
    const char *v = kf_cg_tmp(c);
    bool half = n->dtype == KF_F16 || n->dtype == KF_BF16;
    if (kf_ops[n->op].flags & KF_F_BOOLOUT) {
        e = kf_cg_fmt(c, "(int64_t)%s", e);
    } else if (n->op != KF_OP_CAST && !(half && exact_op(n))) {
        if (half) {
            /* rounded through its 16-bit twin, which a store then takes as is */
            const char *h = kf_cg_tmp(c);
            bool f16 = n->dtype == KF_F16;
            kf_emit(c->body, "const uint16_t %s = %s(%s);", h, f16 ? "kf_f2h" : "kf_f2bf", e);
            e = kf_cg_fmt(c, "%s(%s)", f16 ? "kf_h2f" : "kf_bf2f", h);
            twin_put(c, v, h);
        } else {
            e = kf_cg_fit_dtype(c, n->dtype, e);
        }
    }
    kf_emit(c->body, "const %s %s = %s;", kf_cg_ctype(n->dtype), v, e);
    kf_cg_memo_put(c, n, ix, v);
    return v;
}

/* Computes and stores the kernel's roots at index ix (their own shape);
 * for an external template only those hanging from result node `of`. */
void kf_cg_roots(kf_cg *c, const kf_idx *ix, int of)
{
    for (int i = 0; i < c->k->nroots; i++) {
        kf_node *r = c->k->roots[i];
        if (of >= 0 && c->s->result_of[r->id] != of) continue;
        /* the root's own value: expand its operands, not a buffer load */
        const char *v = kf_cg_pointwise(c, r, ix);
        if (c->s->stored[r->id])
            kf_emit(c->body, "%s[%s] = %s;", kf_cg_ptr(c, r, true), kf_cg_linear(c, r, ix), kf_cg_store_conv(c, r->dtype, v));
    }
}

/* Pointer declarations for the slots a function body used. */
void kf_cg_emit_decls(kf_cg *c, kf_buf *out, int indent)
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
                      c->slot_written[s] ? "" : "const ", kf_cg_stype(n->dtype), s,
                      c->slot_written[s] ? "" : "const ", kf_cg_stype(n->dtype), c->local ? c->local[s] : s);
    }
}

void kf_cg_begin_fn(kf_cg *c, kf_buf *body)
{
    kf_buf_init(body, c->ctx);
    body->indent = 1;
    c->body = body;
    c->nmemo = 0;
    c->ntwin = 0;
    int nslots = 0;
    for (int i = 0; i < c->g->nnodes; i++)
        if (c->slot[i] >= nslots) nslots = c->slot[i] + 1;
    memset(c->slot_used, 0, (size_t)nslots + 1);
    memset(c->slot_written, 0, (size_t)nslots + 1);
}

void kf_cg_end_fn(kf_cg *c, kf_buf *out, kf_buf *body, const char *sig)
{
    kf_buf_printf(out, "%s\n{\n", sig);
    kf_cg_emit_decls(c, out, 1);
    if (body->s) kf_buf_puts(out, body->s);
    kf_buf_puts(out, "}\n");
    if (body->oom) out->oom = true;
    kf_buf_free(body);
}

/* Index of a matmul operand (rank >= 2, batch dims broadcast against the
 * output's) from the flat batch b and two matrix indices. */
kf_idx kf_cg_mm_idx(kf_cg *c, const kf_node *mm, const kf_node *x, const char *i, const char *j)
{
    kf_idx r = {.nd = x->ndim};
    int onb = mm->ndim - 2, xnb = x->ndim - 2;
    for (int d = 0; d < xnb; d++) {
        int od = d + (onb - xnb);
        int64_t stride = 1;
        for (int t = od + 1; t < onb; t++) stride *= mm->shape[t];
        r.e[d] = x->shape[d] == 1 ? "0" : kf_cg_fmt(c, "((b / %" PRId64 ") %% %" PRId64 ")", stride, mm->shape[od]);
    }
    r.e[x->ndim - 2] = i;
    r.e[x->ndim - 1] = j;
    return r;
}

/* ---- external templates ---- */

int kf_cg_local_buf(kf_cg *c, const kf_node *n)
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
const kf_expr *kf_cg_expr_of(kf_cg *c, kf_node *n, const kf_node *value, bool *ok)
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
        e->buffer = kf_cg_local_buf(c, n);
        return e;
    }
    e->kind = KF_EXPR_OP;
    e->op = kf_ops[n->op].name;
    e->nargs = n->nin;
    const kf_expr **args = kf_arena_alloc(c->ar, sizeof *args * (size_t)(n->nin + 1));
    if (!args) return NULL;
    for (int i = 0; i < n->nin; i++) args[i] = kf_cg_expr_of(c, n->in[i], value, ok);
    e->args = args;
    return e;
}

/* The local buffers the current function used. */
int kf_cg_used_locals(kf_cg *c, int *out)
{
    int n = 0;
    for (int l = 0; l < c->nlocal; l++)
        if (c->slot_used[c->local_slot[l]]) out[n++] = l;
    return n;
}

const char *kf_cg_index_params(kf_cg *c, int nd, kf_idx *ix)
{
    kf_buf b;
    kf_buf_init(&b, c->ctx);
    ix->nd = nd;
    for (int d = 0; d < nd; d++) {
        ix->e[d] = kf_cg_fmt(c, "i%d", d);
        kf_buf_printf(&b, ", int64_t i%d", d);
    }
    char *str = kf_buf_take(&b);
    const char *r = str ? kf_arena_strdup(c->ar, str) : "";
    kf_free(c->ctx, str);
    return r;
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

/* The fusion spec of the current kernel's external template for device dev,
 * the backend's answer and its checks (see gen.h): target-independent, only
 * the shell's signature is the target's. */
void kf_cg_extern(kf_cg *c, kf_device dev, kf_buf *out, kf_cg_shell_fn shell, void *ud)
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
        .abi_version = KF_BACKEND_ABI_VERSION, .device = dev, .op = e->ext_op, .attrs = &e->attr,
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
    const char *sig = shell(c, be, &fk, ud);
    if (!sig) goto release;
    kf_buf_printf(out, "\n%s\n{\n    void *args[%d];\n", sig, fk.nargs ? fk.nargs : 1);
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

int64_t kf_cg_plan_memory(kf_cg *c, kf_plan_ent *e, int n)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        /* biggest first */
        int best = i;
        for (int j = i + 1; j < n; j++)
            if (e[j].size > e[best].size) best = j;
        kf_plan_ent t = e[i];
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

typedef struct last_read {
    const kf_node *n;
    int kern, last;   /* the reading kernel; the last kernel that reads n */
} last_read;

static void note_read(void *arg, kf_node *y, bool via_view)
{
    (void)via_view;
    last_read *lr = arg;
    if (y == lr->n && lr->kern > lr->last) lr->last = lr->kern;
}

/* Gives every stored node a slot of the wrapper's buffer table and places
 * the intermediates in one scratch block. */
int kf_cg_init(kf_cg *c, kf_cprog *out)
{
    kf_sched *s = c->s;
    kf_graph *g = s->g;
    kf_ctx *ctx = c->ctx;
    size_t nn = (size_t)g->nnodes;
    c->slot = kf_arena_alloc(c->ar, sizeof(int) * nn);
    c->slot_used = kf_arena_alloc(c->ar, nn + 1);
    c->slot_written = kf_arena_alloc(c->ar, nn + 1);
    kf_plan_ent *pe = kf_arena_alloc(c->ar, sizeof *pe * (nn + 1));
    out->slots = kf_malloc(ctx, sizeof *out->slots * (nn + 1));
    out->consts = kf_malloc(ctx, sizeof *out->consts * (nn + 1));
    if (!c->slot || !c->slot_used || !c->slot_written || !pe || !out->slots || !out->consts) return -1;

    /* slots: every stored node */
    int npe = 0;
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        c->slot[i] = -1;
        if (!s->stored[i]) continue;
        kf_slot *sl = &out->slots[out->nslots];
        sl->node = n;
        sl->bytes = kf_node_numel(n) * (int64_t)kf_dtype_size(n->dtype);
        c->slot[i] = out->nslots++;
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
            last_read lr = {n, s->kern[i], s->kern[i]};
            for (int j = i + 1; j < g->nnodes; j++) {
                kf_node *x = g->nodes[j];
                lr.kern = s->kern[j];
                if (lr.kern < 0) continue;
                for (int t = 0; t < x->nin; t++) kf_node_for_reads(x->in[t], note_read, &lr);
            }
            int first = s->kern[i], last = lr.last;
            int64_t bytes = kf_node_numel(n) * (int64_t)kf_dtype_size(n->dtype);
            pe[npe++] = (kf_plan_ent){i, first, last, (bytes + 63) & ~(int64_t)63, 0};
        }
    }
    out->scratch_bytes = kf_cg_plan_memory(c, pe, npe);
    for (int i = 0; i < npe; i++) out->slots[c->slot[pe[i].node]].offset = pe[i].off;

    return 0;
}

void kf_cprog_free(kf_ctx *ctx, kf_cprog *p)
{
    kf_free(ctx, p->source);
    kf_free(ctx, p->slots);
    kf_free(ctx, p->consts);
    memset(p, 0, sizeof *p);
}

/* The end of a reduction kernel's work for output index oix, the reduction
 * in `acc`: the mean's division, the value fitted to its dtype, stored if it
 * is a buffer, and the reduction's fused epilogue. */
void kf_cg_reduction_result(kf_cg *c, kf_node *a, const kf_idx *oix)
{
    bool fl = kf_dtype_is_float(a->dtype);
    const char *res = "acc";
    if (a->op == KF_OP_MEAN) {
        int64_t cnt = kf_reduce_count(a);
        res = fl ? kf_cg_fmt(c, "(acc / %" PRId64 ".0)", cnt) : kf_cg_fmt(c, "kf_div_i(acc, %" PRId64 ")", cnt);
    }
    const char *av = kf_cg_tmp(c);
    const char *conv = kf_cg_fit_dtype(c, a->dtype, fl ? kf_cg_fmt(c, "(%s)%s", kf_cg_ctype(a->dtype), res) : res);
    kf_emit(c->body, "const %s %s = %s;", kf_cg_ctype(a->dtype), av, conv);
    kf_cg_memo_put(c, a, oix, av);
    if (c->s->stored[a->id])
        kf_emit(c->body, "%s[%s] = %s;", kf_cg_ptr(c, a, true), kf_cg_linear(c, a, oix), kf_cg_store_conv(c, a->dtype, av));
    kf_cg_roots(c, oix, -1);
}

/* One step of a reduction: folds value v of the input at the current
 * reduction index into `acc`, inside the loop that kf_cg_gen wrote v in. */
void kf_cg_reduce_step(kf_cg *c, kf_node *a, kf_idx *rix)
{
    int mark = c->nmemo;
    const char *v = kf_cg_gen(c, a->in[0], rix);
    if (a->op == KF_OP_SUM || a->op == KF_OP_MEAN) kf_emit(c->body, "acc += %s;", v);
    else kf_emit(c->body, "acc = kf_%s_%c(acc, %s);", a->op == KF_OP_MAX ? "max" : "min", kf_cg_tletter(a->dtype), v);
    c->nmemo = mark; /* what the loop body computed is gone after it */
}

/* The loader of matmul operand op (0: A at (b, m, k), 1: B at (b, k, n)) of
 * the current template kernel, its prologue applied, in the accumulation
 * type: KF_INLINE T kf_kN_prologue_a|b(TABLE B, BATCH b, int64_t, int64_t). */
bool kf_cg_mm_operand_ptr(kf_cg *c, kf_buf *out, int op, kf_dtype dt, const char *ctype, int64_t align)
{
    const kf_node *mm = c->k->anchor, *x = mm->in[op];
    if (c->k->prologue[op] || x->dtype != dt || c->s->kern[x->id] == c->k->id || kf_node_is_view(x)) return false;
    if (x->shape[x->ndim - 1] % align) return false;
    if (x->ndim != mm->ndim && x->ndim != 2) return false;
    for (int d = 0; x->ndim == mm->ndim && d < x->ndim - 2; d++)
        if (x->shape[d] != mm->shape[d]) return false;
    kf_buf_printf(out, "#define KF_MM_%c_PTR(B, b) ((const %s *)(B)[%d] + %s)\n", op ? 'B' : 'A', ctype,
                  c->slot[x->id], x->ndim == 2 ? "0" : op ? "(b) * KF_MM_K * KF_MM_N" : "(b) * KF_MM_M * KF_MM_K");
    return true;
}

/* A node with x's shape, reached from x through pointwise nodes of that
 * shape computed here: the first buffer (not a view, not a constant) among
 * them, which the prologue reads at x's own index. */
static const kf_node *raw_walk(kf_cg *c, const kf_node *x, const kf_node *n, int depth)
{
    if (depth > 32 || n->op == KF_OP_SCALAR || kf_ops[n->op].kind == KF_K_VIEW || !same_shape(n, x)) return NULL;
    if (!computed_here(c, n)) return n;
    if (kf_ops[n->op].kind != KF_K_POINTWISE) return NULL;
    for (int i = 0; i < n->nin; i++) {
        const kf_node *r = raw_walk(c, x, n->in[i], depth + 1);
        if (r) return r;
    }
    return NULL;
}

const kf_node *kf_cg_mm_raw_source(kf_cg *c, int op)
{
    const kf_node *mm = c->k->anchor, *x = mm->in[op];
    if (!c->k->prologue[op] || kf_dtype_size(x->dtype) > 4) return NULL;
    if (x->ndim != mm->ndim && x->ndim != 2) return NULL;
    for (int d = 0; x->ndim == mm->ndim && d < x->ndim - 2; d++)
        if (x->shape[d] != mm->shape[d]) return NULL;
    const kf_node *r = raw_walk(c, x, x, 0);
    if (!r) return NULL;
    size_t esz = kf_dtype_size(r->dtype);
    /* TMA: 1-, 2- or 4-byte elements, rows a multiple of 16 bytes */
    if (esz > 4 || (x->shape[x->ndim - 1] * (int64_t)esz) % 16) return NULL;
    return r;
}

/* Operand op's index (a: b, m, k; b: b, k, n) and its loaders' parameters. */
static kf_idx operand_idx(kf_cg *c, int op)
{
    const kf_node *mm = c->k->anchor;
    return op == 0 ? kf_cg_mm_idx(c, mm, mm->in[0], "m", "k") : kf_cg_mm_idx(c, mm, mm->in[1], "k", "n");
}

static const char *operand_params(int op)
{
    return op == 0 ? "int64_t m, int64_t k" : "int64_t k, int64_t n";
}

/* The loader of operand op; with src (kf_cg_mm_raw_source), the variant that
 * takes src's element at the operand's index as `raw` rather than loading it. */
static void mm_prologue(kf_cg *c, kf_buf *out, int op, const char *table, const char *batch, const kf_node *src)
{
    kf_node *mm = c->k->anchor, *x = mm->in[op];
    kf_dtype acc = mm->dtype == KF_F64 ? KF_F64 : KF_F32;
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    kf_idx ix = operand_idx(c, op);
    if (src) {
        const char *v = kf_cg_tmp(c);
        kf_emit(c->body, "const %s %s = %s;", kf_cg_ctype(src->dtype), v, kf_cg_load_conv(c, src->dtype, "raw"));
        kf_cg_memo_put(c, src, &ix, v);
    }
    kf_emit(c->body, "return %s;", kf_cg_convert(c, x->dtype, acc, kf_cg_gen(c, x, &ix)));
    kf_cg_end_fn(c, out, &body,
                 kf_cg_fmt(c, "KF_INLINE %s kf_k%d_prologue_%c%s(%s B, %s b, %s%s%s)", kf_cg_ctype(acc), c->k->id,
                           op == 0 ? 'a' : 'b', src ? "_raw" : "", table, batch, operand_params(op), src ? ", " : "",
                           src ? kf_cg_fmt(c, "%s raw", kf_cg_stype(src->dtype)) : ""));
}

void kf_cg_mm_prologue(kf_cg *c, kf_buf *out, int op, const char *table, const char *batch)
{
    mm_prologue(c, out, op, table, batch, NULL);
}

void kf_cg_mm_prologue_raw(kf_cg *c, kf_buf *out, int op, const kf_node *src, const char *table, const char *batch)
{
    mm_prologue(c, out, op, table, batch, src);
}

/* ---- packed f16 prologues: two neighbours at once, along the operand's
 * rows (ix, ix + 1 in the last dim) or, with down, down its columns (ix and
 * ix1, one row further) ---- */
typedef struct h2_walk {
    kf_cg *c;
    const kf_node *x, *src;
    kf_idx ix, ix1;
    bool down, ok;
} h2_walk;

/* n's value at the pair as f16x2 bits, or w->ok false where the chain holds
 * what the packed ops do not cover. */
static const char *h2_gen(h2_walk *w, const kf_node *n, int depth)
{
    kf_cg *c = w->c;
    bool int8 = w->src->dtype == KF_I8 || w->src->dtype == KF_U8;
    if (!w->ok || depth > 32) goto fail;
    /* the staged source: f16 pairs, or an 8-bit integer's exact f16 cast,
     * which the template converts (mm.cu: kf_raw_h2) */
    if ((n == w->src && n->dtype == KF_F16) || (int8 && n->op == KF_OP_CAST && n->in[0] == w->src && n->dtype == KF_F16))
        return "raw";
    if (n->dtype != KF_F16) goto fail;
    if (n->op == KF_OP_SCALAR) return kf_cg_fmt(c, "kf_h2_dup(kf_f2h(%s))", literal(c, n));
    if (kf_ops[n->op].kind == KF_K_VIEW) goto fail;
    const char *v = kf_cg_tmp(c);
    if (!computed_here(c, n)) {
        /* a buffer: a pair of neighbours, or one value broadcast along the rows */
        kf_idx yi = kf_cg_bcast_idx(n, &w->ix);
        const char *at = kf_cg_fmt(c, "%s[%s]", kf_cg_ptr(c, n, false), kf_cg_linear(c, n, &yi));
        if (w->down && n->ndim > 1 && n->shape[n->ndim - 2] != 1) {
            kf_idx y1 = kf_cg_bcast_idx(n, &w->ix1);
            kf_emit(c->body, "const uint32_t %s = kf_h2_pack(%s, %s[%s]);", v, at, kf_cg_ptr(c, n, false),
                    kf_cg_linear(c, n, &y1));
        } else if (!w->down && n->ndim > 0 && n->shape[n->ndim - 1] != 1) {
            kf_emit(c->body, "const uint32_t %s = *(const uint32_t *)&%s;", v, at);
        } else {
            kf_emit(c->body, "const uint32_t %s = kf_h2_dup(%s);", v, at);
        }
        return v;
    }
    if (!same_shape(n, w->x)) goto fail;
    const char *fn = n->op == KF_OP_ADD ? "add" : n->op == KF_OP_SUB ? "sub" : n->op == KF_OP_MUL ? "mul" : NULL;
    if (!fn) goto fail;
    const char *a = h2_gen(w, n->in[0], depth + 1), *b = h2_gen(w, n->in[1], depth + 1);
    if (!w->ok) goto fail;
    kf_emit(c->body, "const uint32_t %s = kf_h2_%s(%s, %s);", v, fn, a, b);
    return v;
fail:
    w->ok = false;
    return "0u";
}

bool kf_cg_mm_prologue_h2(kf_cg *c, kf_buf *out, int op, const kf_node *src, const char *table, const char *batch,
                          bool down)
{
    kf_node *mm = c->k->anchor, *x = mm->in[op];
    if (mm->dtype != KF_F16 || x->dtype != KF_F16 || (!down && x->shape[x->ndim - 1] % 2)) return false;
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    h2_walk w = {c, x, src, operand_idx(c, op), {0}, down, true};
    w.ix1 = w.ix;
    w.ix1.e[x->ndim - 2] = op == 0 ? "(m + 1)" : "(k + 1)";
    kf_emit(c->body, "return %s;", h2_gen(&w, x, 0));
    if (!w.ok) {
        kf_buf_free(&body);
        return false;
    }
    kf_cg_end_fn(c, out, &body,
                 kf_cg_fmt(c, "KF_INLINE uint32_t kf_k%d_prologue_%c_h2%s(%s B, %s b, %s, uint32_t raw)", c->k->id,
                           op == 0 ? 'a' : 'b', down ? "k" : "", table, batch, operand_params(op)));
    return c->ctx->status == KF_OK;
}
