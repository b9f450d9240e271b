/*
 * sched.c - the scheduler pass: decides which nodes are realised, groups
 * the rest into kernels, and fuses prologues and epilogues.
 *
 *  1. homes: walking the graph backwards, a pointwise node is inlined into
 *     the one kernel root that all its users live in; otherwise (several
 *     roots, a graph output) it is realised as a root of its own.  A node
 *     read only by a matmul operand becomes that template's prologue when
 *     the chain reads no more than 1.1x the bytes it would write.
 *  2. epilogues: a pointwise root that iterates over an anchor's (matmul or
 *     reduction) output space, reads that anchor's group only at the index
 *     it is stored at, and reads nothing that depends on the anchor, joins
 *     the anchor's kernel.
 *  3. stores: a computed node gets a buffer when it is an output or another
 *     kernel reads it; then kernels are put in dependency order.
 */
#include <string.h>

#include "sched.h"

bool kf_node_is_view(const kf_node *n) { return kf_ops[n->op].kind == KF_K_VIEW; }

static void reads(kf_node *y, bool via, void (*fn)(void *, kf_node *, bool), void *arg)
{
    if (y->op == KF_OP_SCALAR) return;
    if (!kf_node_is_view(y)) {
        fn(arg, y, via);
        return;
    }
    for (int t = 0; t < y->nin; t++) reads(y->in[t], true, fn, arg);
}

void kf_node_for_reads(kf_node *in, void (*fn)(void *arg, kf_node *src, bool via_view), void *arg)
{
    reads(in, false, fn, arg);
}

const char *kf_kern_kind_name(kf_kern_kind k)
{
    static const char *const names[] = {"pointwise", "reduction", "template", "template"};
    KF_ASSERT((unsigned)k < sizeof names / sizeof *names);
    return names[k];
}

typedef struct ulist {
    kf_node **v;
    int n;
} ulist;

typedef struct sctx {
    kf_sched *s;
    kf_graph *g;
    ulist *users;     /* distinct direct users */
    int *anchor_of;   /* per root: the anchor whose kernel it joined, or itself */
    char *prologue;   /* per node: inlined into a matmul's load */
    kf_sched_opts o;
} sctx;

static bool is_anchor(const kf_node *n)
{
    int k = kf_ops[n->op].kind;
    return k == KF_K_REDUCE || k == KF_K_MATMUL || k == KF_K_EXTERN;
}

static bool is_template(const kf_node *n)
{
    return n->op == KF_OP_MATMUL || n->op == KF_OP_EXTERN;
}

static bool same_shape(const kf_node *a, const kf_node *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

/* Effective users: users with views looked through. */
static int eff_users(sctx *c, kf_node *n, kf_node **out, int cap, int count)
{
    ulist *u = &c->users[n->id];
    for (int i = 0; i < u->n; i++) {
        kf_node *x = u->v[i];
        if (kf_node_is_view(x)) {
            count = eff_users(c, x, out, cap, count);
            continue;
        }
        bool dup = false;
        for (int j = 0; j < count && j < cap; j++) dup |= out[j] == x;
        if (!dup) {
            if (count < cap) out[count] = x;
            count++;
        }
    }
    return count;
}

/* The source under a chain of views (concat has several: NULL). */
static kf_node *view_source(kf_node *n)
{
    while (kf_node_is_view(n)) {
        if (n->op == KF_OP_CONCAT) return NULL;
        n = n->in[0];
    }
    return n;
}

/* Bytes a prologue chain rooted at n reads: the distinct buffers at its
 * frontier (leaves, anchors, nodes with other users). */
static void frontier_bytes(sctx *c, kf_node *n, char *seen, double *bytes, bool top)
{
    if (seen[n->id]) return;
    seen[n->id] = 1;
    int kind = kf_ops[n->op].kind;
    if (n->op == KF_OP_SCALAR) return;
    if (kind == KF_K_VIEW) {
        for (int i = 0; i < n->nin; i++) frontier_bytes(c, n->in[i], seen, bytes, false);
        return;
    }
    kf_node *tmp[2];
    bool single = eff_users(c, n, tmp, 2, 0) == 1;
    if (kind == KF_K_POINTWISE && (top || single) && c->users[n->id].n > 0) {
        for (int i = 0; i < n->nin; i++) frontier_bytes(c, n->in[i], seen, bytes, false);
        return;
    }
    *bytes += (double)kf_node_numel(n) * (double)kf_dtype_size(n->dtype);
}

static bool prologue_ok(sctx *c, kf_node *n)
{
    char *seen = kf_malloc(c->g->ctx, (size_t)c->g->nnodes);
    if (!seen) return false;
    memset(seen, 0, (size_t)c->g->nnodes);
    double rd = 0;
    frontier_bytes(c, n, seen, &rd, true);
    kf_free(c->g->ctx, seen);
    double wr = (double)kf_node_numel(n) * (double)kf_dtype_size(n->dtype);
    return rd <= 1.1 * wr;
}

/* Step 1. */
static void find_homes(sctx *c)
{
    kf_graph *g = c->g;
    int *home = c->s->home;
    kf_node **eu = kf_malloc(g->ctx, sizeof *eu * (size_t)(g->nnodes + 1));
    if (!eu) return;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        kf_node *n = g->nodes[i];
        int kind = kf_ops[n->op].kind;
        home[i] = -1;
        if (!c->s->live[i] || n->op == KF_OP_SCALAR || kind == KF_K_VIEW) continue;
        if (n->op == KF_OP_RESULT) {
            home[i] = n->in[0]->id; /* computed by its template */
            continue;
        }
        if (kind != KF_K_POINTWISE || c->s->is_output[i] || c->o.no_fusion) {
            home[i] = i;
            continue;
        }
        int ne = eff_users(c, n, eu, g->nnodes, 0);
        if (ne == 0) {
            home[i] = i; /* dead: realised, harmless */
            continue;
        }
        bool to_tmpl = false;
        for (int j = 0; j < ne; j++) to_tmpl |= is_template(eu[j]);
        if (to_tmpl) {
            /* a backend's kernel reads each input once per use: any chain
             * may be its prologue; neither where it was refused (by the
             * backend, or by measurement: the CUDA target times both) */
            bool ok = !(c->o.refused_prologue && c->o.refused_prologue[i]) &&
                      (eu[0]->op == KF_OP_EXTERN || prologue_ok(c, n));
            if (ne == 1 && !c->o.no_template_fusion && ok) {
                home[i] = eu[0]->id;
                c->prologue[i] = 1;
            } else {
                home[i] = i;
            }
            continue;
        }
        int h = home[eu[0]->id];
        bool one = h >= 0;
        for (int j = 1; j < ne && one; j++) one = home[eu[j]->id] == h;
        /* a prologue chain stays a prologue only through single users */
        if (one && c->prologue[eu[0]->id] && ne != 1) one = false;
        home[i] = one ? h : i;
        if (one && c->prologue[eu[0]->id]) c->prologue[i] = 1;
    }
    kf_free(g->ctx, eu);
}

/* Does n depend on target (through any inputs)?  memo: 0 unknown, 1 no, 2 yes */
static bool depends(kf_node *n, const kf_node *target, char *memo)
{
    if (n == target) return true;
    if (memo[n->id]) return memo[n->id] == 2;
    if (n->id < target->id) {
        memo[n->id] = 1;
        return false;
    }
    bool d = false;
    for (int i = 0; i < n->nin && !d; i++) d = depends(n->in[i], target, memo);
    memo[n->id] = d ? 2 : 1;
    return d;
}

typedef struct epi_scan {
    int group;        /* anchor id of the group read, -1 none, -2 several */
    int result;       /* external templates: the result read, -1, -2 several */
    bool ident_ok;    /* every group read is at the stored index */
    kf_node *other[256];
    int nother;
    bool overflow;
} epi_scan;

/* Walks root r's kernel: the nodes whose home is r. */
static void scan_reads(sctx *c, kf_node *r, kf_node *x, bool ident, epi_scan *e, char *vis)
{
    int key = x->id * 2 + (ident ? 1 : 0);
    if (vis[key]) return;
    vis[key] = 1;
    for (int i = 0; i < x->nin; i++) {
        kf_node *y = x->in[i];
        bool yid = ident && !kf_node_is_view(x) && same_shape(y, x) && same_shape(x, r);
        if (kf_node_is_view(y) || y->op == KF_OP_SCALAR) {
            scan_reads(c, r, y, false, e, vis);
            continue;
        }
        int h = c->s->home[y->id];
        if (h == r->id && y != r) {
            scan_reads(c, r, y, yid, e, vis);
            continue;
        }
        /* y is a buffer read by this kernel */
        int grp = h >= 0 ? c->anchor_of[h] : -1;
        if (grp >= 0 && is_anchor(c->g->nodes[grp])) {
            if (e->group == -1) e->group = grp;
            else if (e->group != grp) e->group = -2;
            if (!yid) e->ident_ok = false;
            int res = y->op == KF_OP_RESULT ? y->id : c->s->result_of[y->id];
            if (res >= 0) {
                if (e->result == -1) e->result = res;
                else if (e->result != res) e->result = -2;
            }
        } else if (e->nother < 256) {
            e->other[e->nother++] = y;
        } else {
            e->overflow = true;
        }
    }
}

/* Step 2. */
static void merge_epilogues(sctx *c)
{
    kf_graph *g = c->g;
    int *home = c->s->home;
    char *vis = kf_malloc(g->ctx, (size_t)g->nnodes * 2);
    char *memo = kf_malloc(g->ctx, (size_t)g->nnodes);
    epi_scan *e = kf_malloc(g->ctx, sizeof *e);
    if (!vis || !memo || !e) goto out;
    for (int i = 0; i < g->nnodes; i++) c->anchor_of[i] = home[i] == i ? i : -1;
    if (c->o.no_fusion) goto out;
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *r = g->nodes[i];
        if (home[i] != i || kf_ops[r->op].kind != KF_K_POINTWISE) continue;
        memset(vis, 0, (size_t)g->nnodes * 2);
        e->group = -1;
        e->result = -1;
        e->ident_ok = true;
        e->nother = 0;
        e->overflow = false;
        scan_reads(c, r, r, true, e, vis);
        const char **why = &c->s->unfused[i];
        if (e->group == -1) continue;
        if (e->group == -2) {
            *why = "reads the outputs of more than one template or reduction";
            continue;
        }
        kf_node *a = g->nodes[e->group];
        kf_node *out = e->result >= 0 ? g->nodes[e->result] : a;
        c->s->unfused_of[i] = a->id;
        if (e->result == -2) {
            *why = "reads more than one output of the template";
        } else if (!e->ident_ok) {
            *why = "reads the output at another index (a view or a broadcast)";
        } else if (e->overflow) {
            *why = "reads too many buffers";
        } else if (is_template(a) && c->o.no_template_fusion) {
            *why = "template fusion is off";
        } else if (!same_shape(out, r)) {
            *why = "iterates over another shape than the output";
        } else if (a->op == KF_OP_EXTERN && c->o.refused_epilogue && c->o.refused_epilogue[i]) {
            *why = "refused by the backend";
        } else {
            memset(memo, 0, (size_t)g->nnodes);
            bool cyc = false;
            for (int j = 0; j < e->nother && !cyc; j++) cyc = depends(e->other[j], a, memo);
            if (cyc) {
                *why = "reads a buffer that depends on the template";
                continue;
            }
            c->anchor_of[i] = a->id;
            c->s->unfused_of[i] = -1;
            if (a->op == KF_OP_EXTERN) c->s->result_of[i] = out->id;
        }
    }
out:
    kf_free(g->ctx, vis);
    kf_free(g->ctx, memo);
    kf_free(g->ctx, e);
}

static bool push_node(kf_sched *s, kf_node ***arr, int *n, kf_node *x)
{
    kf_node **p = kf_arena_alloc(&s->arena, sizeof *p * (size_t)(*n + 1));
    if (!p) return false;
    if (*n) memcpy(p, *arr, sizeof *p * (size_t)*n);
    p[(*n)++] = x;
    *arr = p;
    return true;
}

typedef struct read_ctx {
    kf_sched *s;
    int kern;         /* the reading node's kernel */
    char *dep;        /* nk x nk: kernel i reads what kernel j computes */
    int nk;
} read_ctx;

/* A buffer read by another kernel is stored; so is a root read at another
 * index than its own even inside its kernel (inlined nodes are simply
 * recomputed there). */
static void mark_stored(void *arg, kf_node *y, bool via_view)
{
    read_ctx *rc = arg;
    kf_sched *s = rc->s;
    if (s->kern[y->id] != rc->kern || (via_view && s->home[y->id] == y->id)) s->stored[y->id] = true;
}

static void mark_dep(void *arg, kf_node *y, bool via_view)
{
    (void)via_view;
    read_ctx *rc = arg;
    int ky = rc->s->kern[y->id];
    if (ky >= 0 && ky != rc->kern) rc->dep[rc->kern * rc->nk + ky] = 1;
}

kf_sched *kf_sched_new(kf_graph *g, const kf_sched_opts *o)
{
    kf_ctx *ctx = g->ctx;
    kf_sched *s = kf_malloc(ctx, sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->g = g;
    kf_arena_init(&s->arena, ctx);
    size_t nn = (size_t)g->nnodes;
    sctx c = {.s = s, .g = g, .o = *o};
    s->home = kf_arena_alloc(&s->arena, sizeof(int) * nn);
    s->kern = kf_arena_alloc(&s->arena, sizeof(int) * nn);
    s->stored = kf_arena_alloc(&s->arena, sizeof(bool) * nn);
    s->is_output = kf_arena_alloc(&s->arena, sizeof(bool) * nn);
    s->live = kf_arena_alloc(&s->arena, sizeof(bool) * nn);
    s->result_of = kf_arena_alloc(&s->arena, sizeof(int) * nn);
    s->unfused = kf_arena_alloc(&s->arena, sizeof(char *) * nn);
    s->unfused_of = kf_arena_alloc(&s->arena, sizeof(int) * nn);
    c.users = kf_arena_alloc(&s->arena, sizeof(ulist) * nn);
    c.anchor_of = kf_arena_alloc(&s->arena, sizeof(int) * nn);
    c.prologue = kf_arena_alloc(&s->arena, nn);
    int *kidx = kf_arena_alloc(&s->arena, sizeof(int) * nn);
    if (!s->home || !s->kern || !s->stored || !s->is_output || !c.users || !c.anchor_of ||
        !c.prologue || !kidx || !s->live || !s->result_of || !s->unfused || !s->unfused_of)
        goto fail;
    for (int i = 0; i < g->noutputs; i++) s->is_output[g->outputs[i]->id] = s->live[g->outputs[i]->id] = true;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        s->result_of[i] = s->unfused_of[i] = -1;
        if (s->live[i])
            for (int j = 0; j < g->nodes[i]->nin; j++) s->live[g->nodes[i]->in[j]->id] = true;
    }
    /* a template computes all its results, used or not */
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == KF_OP_RESULT && s->live[g->nodes[i]->in[0]->id]) s->live[i] = true;
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        if (!s->live[i]) continue;
        for (int j = 0; j < n->nin; j++) {
            ulist *u = &c.users[n->in[j]->id];
            bool dup = false;
            for (int k = 0; k < u->n; k++) dup |= u->v[k] == n;
            if (!dup && !push_node(s, &u->v, &u->n, n)) goto fail;
        }
    }
    find_homes(&c);
    merge_epilogues(&c);
    if (ctx->status != KF_OK) goto fail;

    /* one kernel per group: anchors and unmerged pointwise roots */
    for (int i = 0; i < g->nnodes; i++) kidx[i] = -1;
    int nk = 0;
    kf_kernel **ks = NULL;
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        if (s->home[i] != i || n->op == KF_OP_INPUT || n->op == KF_OP_CONST) continue;
        if (c.anchor_of[i] != i) continue;
        kf_kernel *k = kf_arena_alloc(&s->arena, sizeof *k);
        kf_kernel **nks = kf_arena_alloc(&s->arena, sizeof *nks * (size_t)(nk + 1));
        if (!k || !nks) goto fail;
        if (nk) memcpy(nks, ks, sizeof *ks * (size_t)nk);
        ks = nks;
        ks[nk] = k;
        kidx[i] = nk++;
        int kind = kf_ops[n->op].kind;
        k->kind = kind == KF_K_MATMUL ? KF_KERN_TEMPLATE
                : kind == KF_K_EXTERN ? KF_KERN_EXTERN
                : kind == KF_K_REDUCE ? KF_KERN_REDUCTION : KF_KERN_POINTWISE;
        k->prologue = kf_arena_alloc(&s->arena, sizeof(kf_node *) * (size_t)(n->nin + 1));
        if (!k->prologue) goto fail;
        if (k->kind != KF_KERN_POINTWISE) k->anchor = n;
        else if (!push_node(s, &k->roots, &k->nroots, n)) goto fail;
    }
    for (int i = 0; i < g->nnodes; i++) {
        int a = s->home[i] == i ? c.anchor_of[i] : -1;
        if (a >= 0 && a != i) {
            kf_kernel *k = ks[kidx[a]];
            kidx[i] = kidx[a];
            if (!push_node(s, &k->roots, &k->nroots, g->nodes[i])) goto fail;
        }
    }
    /* every computed node's kernel; prologue inputs */
    for (int i = 0; i < g->nnodes; i++) {
        int h = s->home[i];
        s->kern[i] = -1;
        kf_node *n = g->nodes[i];
        if (h < 0 || n->op == KF_OP_INPUT || n->op == KF_OP_CONST) continue;
        s->kern[i] = kidx[h];
        KF_ASSERT(s->kern[i] >= 0);
        kf_kernel *k = ks[s->kern[i]];
        if (!push_node(s, &k->nodes, &k->nnodes, n)) goto fail;
    }
    for (int i = 0; i < nk; i++) {
        kf_node *a = ks[i]->anchor;
        if (!a || !is_template(a)) continue;
        for (int j = 0; j < a->nin; j++) {
            kf_node *src = view_source(a->in[j]);
            if (src && c.prologue[src->id] && s->home[src->id] == a->id) ks[i]->prologue[j] = a->in[j];
        }
    }
    /* stores */
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *n = g->nodes[i];
        if (n->op == KF_OP_INPUT || n->op == KF_OP_CONST || s->is_output[i]) s->stored[i] = true;
        /* an unused result still needs somewhere to go */
        if (n->op == KF_OP_RESULT && s->live[i] && c.users[i].n == 0) s->stored[i] = true;
    }
    for (int i = 0; i < g->nnodes; i++) {
        kf_node *x = g->nodes[i];
        if (!s->live[i] || kf_node_is_view(x) || x->op == KF_OP_SCALAR) continue;
        read_ctx rc = {s, s->kern[i], NULL, 0};
        for (int j = 0; j < x->nin; j++) kf_node_for_reads(x->in[j], mark_stored, &rc);
    }
    /* run order: dependencies first, then graph order */
    int *deg = kf_arena_alloc(&s->arena, sizeof(int) * (size_t)(nk + 1));
    char *dep = kf_arena_alloc(&s->arena, (size_t)nk * (size_t)nk + 1);
    char *done = kf_arena_alloc(&s->arena, (size_t)nk + 1);
    s->k = kf_arena_alloc(&s->arena, sizeof *s->k * (size_t)(nk + 1));
    if (!deg || !dep || !done || !s->k) goto fail;
    for (int i = 0; i < g->nnodes; i++) {
        read_ctx rc = {s, s->kern[i], dep, nk};
        if (rc.kern < 0) continue;
        for (int j = 0; j < g->nodes[i]->nin; j++) kf_node_for_reads(g->nodes[i]->in[j], mark_dep, &rc);
    }
    for (int n = 0; n < nk; n++) {
        int pick = -1;
        for (int i = 0; i < nk && pick < 0; i++) {
            if (done[i]) continue;
            bool ready = true;
            for (int j = 0; j < nk && ready; j++) ready = !(dep[i * nk + j] && !done[j]);
            if (ready) pick = i;
        }
        KF_ASSERT(pick >= 0); /* the merge rules keep the kernel graph acyclic */
        done[pick] = 1;
        s->k[n] = ks[pick];
        ks[pick]->id = n;
    }
    for (int i = 0; i < g->nnodes; i++)
        if (s->kern[i] >= 0) s->kern[i] = ks[s->kern[i]]->id;
    s->nk = nk;
    return s;
fail:
    if (ctx->status == KF_OK) kf_err(ctx, KF_ERR_NOMEM, "out of memory in the scheduler");
    kf_sched_free(s);
    return NULL;
}

void kf_sched_free(kf_sched *s)
{
    if (!s) return;
    kf_arena_free(&s->arena);
    kf_free(s->ctx, s);
}

void kf_sched_dump(const kf_sched *s, FILE *f)
{
    fprintf(f, "# schedule: %d kernels\n", s->nk);
    for (int i = 0; i < s->nk; i++) {
        kf_kernel *k = s->k[i];
        fprintf(f, "  k%d %s", i, kf_kern_kind_name(k->kind));
        if (k->anchor) fprintf(f, " anchor %%%d%s", k->anchor->id, s->stored[k->anchor->id] ? " stored" : "");
        fprintf(f, " nodes");
        for (int j = 0; j < k->nnodes; j++) fprintf(f, " %%%d", k->nodes[j]->id);
        fprintf(f, " roots");
        for (int j = 0; j < k->nroots; j++)
            fprintf(f, " %%%d%s", k->roots[j]->id, s->stored[k->roots[j]->id] ? "*" : "");
        fprintf(f, "\n");
    }
}
