/*
 * cudagen.c - the CUDA code generator pass (see cudagen.h).  The same
 * schedule and the same fusion decisions as the C target; per kernel:
 *   pointwise  a grid-stride loop over the flat index, decomposed into the
 *              multi-index that the shared expression generator expects;
 *   reduction  a warp (short rows) or a block (long rows) per output
 *              element, a shuffle tree, the epilogue computed by the lane
 *              that holds the result;
 *   template   templates/cuda/mm.cu instantiated through KF_MM_* macros,
 *              with inline prologue and epilogue functions, on tensor
 *              cores for f16 and bf16;
 *   extern     the backend's CUDA source through the fusion spec that gen.c
 *              builds (kf_cg_extern): the hooks as device functions, its
 *              __device__ ENTRY(void **args), and a __global__ shell here
 *              that builds args from B and launches with the backend's
 *              grid and block, checked against CUDA's limits.
 * Every kernel takes the buffer table by value (kf_bufs, a __grid_constant__
 * parameter), so the declarations of kf_cg_emit_decls read B[slot] as they
 * do on the CPU; the warp-specialised mm kernel takes two TMA tensor maps
 * after it (kf_cuda_tmap, encoded by the runtime at launch).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cudagen.h"

extern const char kf_tmpl_prelude_cuh[];
extern const char kf_tmpl_helpers_h[];
extern const char kf_tmpl_mm_cu[];

#define NT 256 /* threads of pointwise and reduction blocks */
#define SMALL_CFG 21 /* the few-rows configuration: chosen by pick_cfg, never tuned */

const kf_mm_cfg kf_mm_cfgs[] = {
    {128, 256, 32, 64, 64, 3, 0, 1, 0}, /* 0: large problems */
    {128, 128, 32, 64, 64, 4, 0, 1, 0}, /* 1 */
    {256, 128, 32, 64, 64, 3, 0, 1, 0}, /* 2 */
    {128, 128, 64, 64, 64, 3, 0, 1, 0}, /* 3 */
    {64, 128, 32, 32, 64, 4, 0, 1, 0},/* 4: few tiles */
    {128, 128, 32, 64, 32, 4, 0, 1, 0}, /* 5: 8 warps, fewer registers each */
    {128, 256, 32, 64, 64, 4, 0, 1, 0}, /* 6 */
    {128, 256, 64, 64, 64, 3, 0, 1, 0}, /* 7: one barrier per 64 of k */
    {256, 128, 64, 64, 64, 3, 0, 1, 0}, /* 8 */
    {128, 128, 64, 64, 32, 4, 0, 1, 0}, /* 9 */
    {128, 256, 64, 64, 256, 4, 1, 1, 0}, /* 10: wgmma, 2 warpgroups of 64x256 */
    {128, 128, 64, 64, 128, 4, 1, 1, 0}, /* 11: wgmma, 2 warpgroups of 64x128 */
    {128, 256, 64, 64, 256, 3, 1, 1, 0}, /* 12: wgmma */
    {128, 256, 64, 64, 256, 4, 2, 1, 0}, /* 13: warp-specialised: producer warpgroups, TMA, persistent */
    {128, 128, 64, 64, 128, 6, 2, 1, 0}, /* 14 */
    {128, 256, 64, 64, 256, 3, 2, 1, 0}, /* 15 */
    {128, 128, 64, 64, 128, 4, 2, 1, 0}, /* 16 */
    {128, 256, 64, 64, 256, 3, 3, 1, 0}, /* 17: warp-specialised, the epilogue staged and run under the next tile */
    {128, 128, 64, 64, 128, 5, 3, 1, 0}, /* 18 */
    {128, 128, 64, 64, 128, 3, 2, 2, 0}, /* 19: warp-specialised, two blocks a multiprocessor */
    {128, 128, 64, 64, 128, 6, 4, 1, 0}, /* 20: warp-specialised ping-pong: a consumer a tile, taking turns */
    {64, 32, 64, 32, 32, 6, 0, 1, 0},  /* 21: few rows (heuristic only): narrow tiles, more blocks */
    {128, 256, 64, 64, 256, 4, 2, 1, 2}, /* 22: warp-specialised, blocks in pairs sharing B by multicast */
    {64, 256, 64, 64, 256, 8, 5, 1, 0}, /* 23: streaming: B resident, 64-row tiles of A taken in turn */
    {128, 256, 64, 64, 256, 4, 6, 1, 0}, /* 24: warp-specialised, the epilogue through shared memory */
    {128, 256, 64, 64, 256, 4, 6, 1, 2}, /* 25: 24 with blocks in pairs (22's multicast) */
    {256, 128, 64, 64, 128, 5, 7, 1, 0}, /* 26: an 8-bit weight's product transposed, the weight from registers */
};
const int kf_mm_ncfgs = (int)(sizeof kf_mm_cfgs / sizeof *kf_mm_cfgs);

void kf_mm_cfg_name(int i, char *buf, size_t sz)
{
    const kf_mm_cfg *f = &kf_mm_cfgs[i];
    static const char *kind[] = {"", "wgmma", "wgmma-ws", "wgmma-ws-stg", "wgmma-pp", "wgmma-stream", "wgmma-ws-se", "wgmma-rt"};
    if (f->wgmma)
        snprintf(buf, sz, "%dx%dx%d %s s%d%s%s", f->bm, f->bn, f->bk, kind[f->wgmma], f->stages, f->ctas > 1 ? " x2" : "",
                 f->pair > 1 ? " c2" : "");
    else snprintf(buf, sz, "%dx%dx%d w%dx%d s%d", f->bm, f->bn, f->bk, f->wm, f->wn, f->stages);
}

static unsigned cfg_smem(const kf_mm_cfg *f, bool direct_epi)
{
    /* streaming: the ring of A slots, then B (K <= 256) resident */
    if (f->wgmma == 5) return (unsigned)(f->stages * f->bm * 64 * 2 + 256 * f->bn * 2) + 1024;
    unsigned pipe = (unsigned)(f->stages * (f->bm * f->bk + f->bk * f->bn) * 2);
    /* stages aligned to 1024 bytes (the swizzle); then the staged tile */
    /* the staged tile (3), or each consumer warp's 2 KB slice (6) */
    if (f->wgmma == 3) return pipe + 1024 + (unsigned)(f->bm * f->bn * 2);
    if (f->wgmma == 6) return pipe + 1024 + (unsigned)(f->bm / 16 * 2048);
    /* register A: stages of A (bm x 64, f16) and the 8-bit B (64 x bn),
     * then an 8 KB slice for each of the two consumer warpgroups */
    if (f->wgmma == 7) return (unsigned)(f->stages * (f->bm * 64 * 2 + 64 * f->bn)) + 1024 + 2 * 8192;
    if (f->wgmma) return pipe + 1024;
    unsigned epi = direct_epi ? 0 : (unsigned)(f->bm * (f->bn + 4) * 4);
    return pipe > epi ? pipe : epi;
}

typedef struct cuda_gen {
    kf_cg c;
    const kf_cuda_target *t;
    kf_cuda_prog *out;
    int cap;
    bool small;            /* every tensor has < 2^31 elements: int indices */
    bool rt;               /* this product can run transposed (wgmma 7) */
} cuda_gen;

static kf_cuda_call *add_launch(cuda_gen *G, const char *name, int64_t grid, unsigned block, unsigned smem)
{
    kf_cuda_prog *o = G->out;
    if (o->nlaunch == G->cap) {
        int nc = G->cap ? G->cap * 2 : 16;
        kf_cuda_call *l = kf_realloc(G->c.ctx, o->launch, sizeof *l * (size_t)nc);
        if (!l) return NULL;
        o->launch = l;
        G->cap = nc;
    }
    kf_cuda_call *l = &o->launch[o->nlaunch++];
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    l->kernel = G->c.k->id;
    l->grid[0] = (unsigned)grid;
    l->grid[1] = l->grid[2] = 1;
    l->block[0] = block;
    l->block[1] = l->block[2] = 1;
    l->smem = smem;
    return l;
}

static void comment_nodes(kf_buf *out, kf_kernel *k)
{
    static const char *kn[] = {"pointwise", "reduction", "template mm", "extern"};
    kf_buf_printf(out, "/* kernel %d: %s;", k->id, kn[k->kind]);
    for (int i = 0; i < k->nnodes && i < 32; i++) {
        char lb[64], id[80];
        kf_sanitize_ident(kf_node_label(k->nodes[i], lb, sizeof lb), id, sizeof id);
        kf_buf_printf(out, " %s", id);
    }
    kf_buf_puts(out, k->nnodes > 32 ? " ... */\n" : " */\n");
}

/* Decomposes flat index `f` (of shape[0..nd)) into named index variables;
 * size-1 dims are the literal 0. */
static void decompose(cuda_gen *G, kf_idx *ix, const char *pfx, const char *f, int nd, const int64_t *shape)
{
    kf_cg *c = &G->c;
    ix->nd = nd;
    int64_t stride = 1;
    for (int d = nd - 1; d >= 0; d--) {
        if (shape[d] == 1) {
            ix->e[d] = "0";
            continue;
        }
        ix->e[d] = kf_cg_fmt(c, "%s%d", pfx, d);
        if (stride == 1)
            kf_emit(c->body, "const kf_ix %s%d = %s %% %" PRId64 ";", pfx, d, f, shape[d]);
        else
            kf_emit(c->body, "const kf_ix %s%d = (%s / %" PRId64 ") %% %" PRId64 ";", pfx, d, f, stride, shape[d]);
        stride *= shape[d];
    }
}

static unsigned cfg_threads(const kf_mm_cfg *f)
{
    if (f->wgmma == 5 || f->wgmma == 7) return 384; /* a producer warpgroup, two consumers */
    if (f->wgmma >= 2) return (unsigned)((f->bm / 64) * 128 + (f->ctas > 1 ? 32 : 128)); /* producer warp(group) */
    return f->wgmma ? (unsigned)(f->bm / 64 * 128) : (unsigned)((f->bm / f->wm) * (f->bn / f->wn) * 32);
}

static unsigned grid_for(cuda_gen *G, int64_t work, int per_block)
{
    int64_t g = (work + per_block - 1) / per_block;
    int64_t cap = (int64_t)(G->t->nsm > 0 ? G->t->nsm : 132) * 16;
    if (g > cap) g = cap;
    return (unsigned)g;
}

static const char *kernel_sig(cuda_gen *G, const char *name, int threads)
{
    return kf_cg_fmt(&G->c, "extern \"C\" __global__ void __launch_bounds__(%d) %s(const __grid_constant__ kf_bufs B)",
                     threads, name);
}

static bool gen_pointwise8(cuda_gen *G, kf_buf *out);

static void gen_pointwise(cuda_gen *G, kf_buf *out)
{
    kf_cg *c = &G->c;
    if (gen_pointwise8(G, out)) return;
    kf_node *r = c->k->roots[0];
    int64_t n = kf_node_numel(r);
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    kf_emit(c->body, "for (kf_ix f = (kf_ix)blockIdx.x * %d + threadIdx.x; f < (kf_ix)%" PRId64
                     "; f += (kf_ix)gridDim.x * %d) {", NT, n, NT);
    kf_idx ix;
    decompose(G, &ix, "i", "f", r->ndim, r->shape);
    kf_cg_roots(c, &ix, -1);
    kf_emit(c->body, "}");
    const char *name = kf_cg_fmt(c, "kf_k%d", c->k->id);
    kf_cg_end_fn(c, out, &body, kernel_sig(G, name, NT));
    add_launch(G, name, n ? grid_for(G, n, NT) : 0, NT, 0);
}

static void gen_reduction(cuda_gen *G, kf_buf *out)
{
    kf_cg *c = &G->c;
    kf_node *a = c->k->anchor, *x = a->in[0];
    int64_t nout = kf_node_numel(a), cnt = kf_reduce_count(a);
    /* a warp per output for short rows, the whole block for long ones */
    int grp = cnt > 2048 ? NT : 32, per = NT / grp;
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    bool is_sum = a->op == KF_OP_SUM || a->op == KF_OP_MEAN;
    bool fl = kf_dtype_is_float(a->dtype);
    const char *acct = is_sum && fl ? "double" : kf_cg_ctype(a->dtype);
    const char *init = is_sum ? "0"
                     : a->op == KF_OP_MAX ? (fl ? "-INFINITY" : "INT64_MIN")
                                          : (fl ? "INFINITY" : "INT64_MAX");
    char letter = kf_cg_tletter(a->dtype);
    const char *comb = is_sum ? "acc + %s" : a->op == KF_OP_MAX ? "kf_max_%c(acc, %s)" : "kf_min_%c(acc, %s)";
    (void)comb;
    kf_emit(c->body, "const int lane = threadIdx.x %% %d;", grp);
    kf_emit(c->body, "const kf_ix o = (kf_ix)blockIdx.x * %d + threadIdx.x / %d;", per, grp);
    kf_emit(c->body, "if (o >= (kf_ix)%" PRId64 ") return;", nout);
    kf_idx oix;
    decompose(G, &oix, "o", "o", a->ndim, a->shape);
    kf_emit(c->body, "%s acc = %s;", acct, init);
    kf_emit(c->body, "for (kf_ix r = lane; r < (kf_ix)%" PRId64 "; r += %d) {", cnt, grp);
    /* the reduced dims, innermost fastest, so that lanes read neighbours */
    kf_idx rix = {.nd = x->ndim};
    int64_t stride = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (!kf_reduce_has_axis(a, d)) continue;
        if (x->shape[d] == 1) {
            rix.e[d] = "0";
            continue;
        }
        rix.e[d] = kf_cg_fmt(c, "r%d", d);
        kf_emit(c->body, "const kf_ix r%d = (r / %" PRId64 ") %% %" PRId64 ";", d, stride, x->shape[d]);
        stride *= x->shape[d];
    }
    int o = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (kf_reduce_has_axis(a, d)) {
            if (a->attr.keepdims) o++;
        } else {
            rix.e[d] = oix.e[o++];
        }
    }
    kf_cg_reduce_step(c, a, &rix);
    kf_emit(c->body, "}");
    const char *cmb = is_sum ? "acc += y;" : a->op == KF_OP_MAX ? kf_cg_fmt(c, "acc = kf_max_%c(acc, y);", letter)
                                                              : kf_cg_fmt(c, "acc = kf_min_%c(acc, y);", letter);
    kf_emit(c->body, "for (int s = 16; s > 0; s >>= 1) {");
    kf_emit(c->body, "const %s y = __shfl_down_sync(0xffffffffu, acc, s);", acct);
    kf_emit(c->body, "%s", cmb);
    kf_emit(c->body, "}");
    if (grp > 32) {
        kf_emit(c->body, "__shared__ %s part[%d];", acct, grp / 32);
        kf_emit(c->body, "if (lane %% 32 == 0) part[lane / 32] = acc;");
        kf_emit(c->body, "__syncthreads();");
        kf_emit(c->body, "if (lane >= 32) return;");
        kf_emit(c->body, "acc = lane < %d ? part[lane] : (%s)%s;", grp / 32, acct, init);
        kf_emit(c->body, "for (int s = 16; s > 0; s >>= 1) {");
        kf_emit(c->body, "const %s y = __shfl_down_sync(0xffffffffu, acc, s);", acct);
        kf_emit(c->body, "%s", cmb);
        kf_emit(c->body, "}");
    }
    kf_emit(c->body, "if (lane != 0) return;");
    kf_cg_reduction_result(c, a, &oix);
    const char *name = kf_cg_fmt(c, "kf_k%d", c->k->id);
    kf_cg_end_fn(c, out, &body, kernel_sig(G, name, NT));
    add_launch(G, name, nout ? (nout + per - 1) / per : 0, NT, 0);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* The heuristic tile configuration: the largest tile that still gives
 * every multiprocessor a block; where none does, the one with the most
 * blocks (a product of few rows streams its B: narrow tiles spread it over
 * more multiprocessors). */
static int pick_cfg(cuda_gen *G, int64_t M, int64_t N, int64_t batch)
{
    int nsm = G->t->nsm > 0 ? G->t->nsm : 132;
    static const int order[] = {0, 1, 4, SMALL_CFG};
    int best = 4;
    int64_t most = 0;
    for (int i = 0; i < 4; i++) {
        const kf_mm_cfg *f = &kf_mm_cfgs[order[i]];
        int64_t tiles = ((M + f->bm - 1) / f->bm) * ((N + f->bn - 1) / f->bn) * batch;
        if (tiles >= nsm) return order[i];
        if (tiles > most) most = tiles, best = order[i];
    }
    return best;
}

/* TMA coordinates are int32: M, N, K and the batch count below 2^31. */
static bool tma_fits(const kf_node *mm)
{
    const int64_t lim = (int64_t)1 << 31;
    int64_t batch = 1;
    for (int d = 0; d < mm->ndim - 2; d++) batch *= mm->shape[d];
    return mm->shape[mm->ndim - 2] < lim && mm->shape[mm->ndim - 1] < lim &&
           mm->in[0]->shape[mm->in[0]->ndim - 1] < lim && batch < lim;
}

/* Can configuration f (a wgmma one) serve this product?  sm_90 (wgmma is
 * sm_90a only) and the shared memory there. */
static bool wg_ok(cuda_gen *G, const kf_mm_cfg *f, bool pa, bool pb)
{
    if (G->t->sm_major != 9) return false;
    if (f->wgmma == 7 && !G->rt) return false; /* the transposed kernel: only where its conditions hold */
    /* two blocks a multiprocessor, or ping-pong's 128 accumulators a
     * consumer thread: registers only for TMA producers; pairs multicast
     * TMA loads */
    if ((f->ctas > 1 || (f->wgmma >= 4 && f->wgmma != 7) || f->pair > 1) && !(pa && pb && tma_fits(G->c.k->anchor)))
        return false;
    if (f->wgmma == 5) { /* streaming: B resident (one batch, N within the tile, K <= 256) */
        const kf_node *mm = G->c.k->anchor;
        int64_t batch = 1;
        for (int d = 0; d < mm->ndim - 2; d++) batch *= mm->shape[d];
        if (batch != 1 || mm->shape[mm->ndim - 1] > f->bn || mm->in[0]->shape[mm->in[0]->ndim - 1] > 256) return false;
    }
    return G->t->smem_optin <= 0 ||
           (cfg_smem(f, true) + 1024) * (unsigned)f->ctas <= (unsigned)G->t->smem_optin + 1024;
}

/* Raw staging (mm.cu's KF_MM_A_RAW / _B_RAW): the bytes a stage of
 * configuration f holds of the operands' raw sources (raw[op], or NULL). */
static unsigned raw_stage_bytes(const kf_mm_cfg *f, const kf_node *const *raw)
{
    unsigned n = 0;
    if (raw[0]) n += (unsigned)(f->bm * 64) * (unsigned)kf_dtype_size(raw[0]->dtype);
    if (raw[1]) n += (unsigned)(64 * f->bn) * (unsigned)kf_dtype_size(raw[1]->dtype);
    return n;
}

/* The raw slots configuration f has room for (0: it does not stage the raw
 * sources): a warp-specialised configuration of a block a multiprocessor,
 * every operand either plain (pa, pb: loaded by TMA) or with a raw source,
 * and at least two raw slots (up to 8) in the shared memory the stages
 * leave.  The raw loads run that many iterations ahead. */
static int raw_slots(cuda_gen *G, const kf_mm_cfg *f, bool pa, bool pb, const kf_node *const *raw)
{
    if ((f->wgmma != 2 && f->wgmma != 3) || f->ctas != 1 || f->pair > 1 || !(raw[0] || raw[1])) return 0;
    if (!(pa || raw[0]) || !(pb || raw[1]) || !tma_fits(G->c.k->anchor) || G->t->sm_major != 9) return 0;
    int64_t room = (int64_t)(G->t->smem_optin > 0 ? G->t->smem_optin : 227 * 1024) - cfg_smem(f, true);
    int64_t r = room / raw_stage_bytes(f, raw);
    r = r > 8 ? 8 : r;
    return r >= 2 ? (int)r : 0;
}

/* The warp-specialised kernel's launch: persistent (a block per
 * multiprocessor at most, over every tile of every batch) and, for each
 * plain operand (a or b, else NULL), a TMA tensor map: A as [batch,] M rows
 * of K, boxes of 64 k x BM rows; B as [batch,] K rows of N, boxes of 64 n x
 * 64 k.  KF_MM_A_TMA / KF_MM_B_TMA tell the kernel the map's rank; an
 * operand without one is computed by the producer threads. */
static void ws_launch(cuda_gen *G, kf_buf *out, kf_cuda_call *l, const kf_mm_cfg *f, const kf_node *a,
                      const kf_node *b, const kf_node *const *raw, int64_t tiles, int64_t batch)
{
    kf_node *mm = G->c.k->anchor;
    int64_t M = mm->shape[mm->ndim - 2], N = mm->shape[mm->ndim - 1], K = mm->in[0]->shape[mm->in[0]->ndim - 1];
    int nsm = G->t->nsm > 0 ? G->t->nsm : 132;
    nsm *= f->ctas;
    l->grid[0] = (unsigned)(tiles < nsm ? tiles : nsm);
    if (f->pair > 1) { /* clusters of pair blocks, each on tiles of pair row blocks */
        int64_t nm = (M + f->bm - 1) / f->bm, nn = (N + f->bn - 1) / f->bn;
        int64_t units = (nm + f->pair - 1) / f->pair * nn * batch, most = nsm / f->pair;
        l->grid[0] = (unsigned)((units < most ? units : most) * f->pair);
    }
    l->grid[1] = 1;
    l->ntmap = 2;
    /* the walk's groups of g row blocks (units of pair row blocks), each
     * walked column by column: the units in flight at once, g of them down
     * by grid / g across, span as many rows of A as columns of B (g^2 BM
     * pair = units BN); KFUSE_CUDA_MM_GROUP=g sets it (tests) */
    const int64_t pair = f->pair > 1 ? f->pair : 1, units = l->grid[0] / pair;
    int64_t g = 1;
    while ((g + 1) * (g + 1) * f->bm * pair <= units * f->bn) g++;
    const char *eg = getenv("KFUSE_CUDA_MM_GROUP");
    if (eg && atoi(eg) > 0) g = atoi(eg);
    kf_buf_printf(out, "#define KF_MM_GROUP %d\n", (int)g);
    if (!tma_fits(mm)) a = b = NULL;
    /* producers: mm.cu */
    bool rw = raw && (raw[0] || raw[1]);
    l->block[0] = f->ctas > 1 || f->wgmma == 5 || f->wgmma == 7 ? cfg_threads(f)
                              : (unsigned)((f->bm / 64 + ((a && b) || rw || f->bn == 256 ? 1 : 2)) * 128);
    const kf_node *op[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        kf_cuda_tmap *t = &l->tmap[i];
        t->slot = -1;
        const kf_node *x = op[i] ? op[i] : rw ? raw[i] : NULL;
        if (!x) continue;
        int64_t rows = i ? K : M, cols = i ? N : K;
        uint64_t esz = op[i] ? 2 : (uint64_t)kf_dtype_size(x->dtype);
        t->slot = G->c.slot[x->id];
        /* a raw source's bytes as they are: u8, u16 or u32 */
        t->dtype = op[i] ? (mm->dtype == KF_BF16 ? 9 : 6) : esz == 1 ? 0 : esz == 2 ? 1 : 2;
        t->swizzle = op[i] ? 3 : 0;
        t->rank = x->ndim == 2 ? 2 : 3;
        t->dim[0] = (uint64_t)cols;
        t->dim[1] = (uint64_t)rows;
        t->dim[2] = (uint64_t)batch;
        t->stride[0] = (uint64_t)cols * esz;
        t->stride[1] = (uint64_t)(rows * cols) * esz;
        t->box[0] = !op[i] && i ? (unsigned)f->bn : 64;
        t->box[1] = i ? 64 : (unsigned)f->bm;
        t->box[2] = 1;
        if (f->wgmma == 7 && i) t->swizzle = 3; /* the weight's rows of 128 bytes, read by its consumers */
        kf_buf_printf(out, "#define KF_MM_%c_%s %d\n", i ? 'B' : 'A', op[i] ? "TMA" : "RAW", t->rank);
    }
}

/* Emits the buffer loads under pointwise node n at ix (those that
 * kf_cg_gen will find in the memo), following the generator's own walk;
 * views and what this kernel computes or stores are left to it. */
static void preload(kf_cg *c, kf_node *n, const kf_idx *ix, int depth)
{
    if (depth > 64) return;
    for (int i = 0; i < n->nin; i++) {
        kf_node *x = n->in[i];
        if (x->op == KF_OP_SCALAR || kf_ops[x->op].kind == KF_K_VIEW) continue;
        kf_idx yi = kf_cg_bcast_idx(x, ix);
        if (c->s->kern[x->id] != c->k->id) kf_cg_gen(c, x, &yi);
        else if (c->s->home[x->id] != x->id && kf_ops[x->op].kind == KF_K_POINTWISE) preload(c, x, &yi, depth + 1);
    }
}

/* Can node r be stored 8 elements at a time by store8, laid out as a node
 * of shape like (ndim dims): stored, not a view, that shape, and an element
 * size that 16-byte stores hold whole? */
static bool store8_ok(const kf_cg *c, const kf_node *r, const kf_node *like)
{
    if (!c->s->stored[r->id] || kf_node_is_view(r) || r->ndim != like->ndim) return false;
    for (int d = 0; d < r->ndim; d++)
        if (r->shape[d] != like->shape[d]) return false;
    size_t sz = kf_dtype_size(r->dtype);
    return sz == 1 || sz == 2 || sz == 4 || sz == 8;
}

/* Stores node r's 8 storage values v (expressions) at index ix0 and the 7
 * columns after it, through a 16-byte-aligned array: 16-byte vector stores
 * (kf_st16, prelude.cuh), 8 bytes for 1-byte types (the caller knows the
 * address aligned). */
static void store8(kf_cg *c, kf_node *r, const char *const v[8], const kf_idx *ix0)
{
    const char *t = kf_cg_tmp(c);
    kf_emit(c->body, "__align__(16) %s %s[8] = {%s, %s, %s, %s, %s, %s, %s, %s};", kf_cg_stype(r->dtype), t, v[0], v[1],
            v[2], v[3], v[4], v[5], v[6], v[7]);
    size_t sz = kf_dtype_size(r->dtype);
    const char *dst = kf_cg_fmt(c, "&%s[%s]", kf_cg_ptr(c, r, true), kf_cg_linear(c, r, ix0));
    if (sz == 1) {
        kf_emit(c->body, "kf_st8(%s, %s);", dst, t);
    } else {
        for (size_t q = 0; q < sz / 2; q++)
            kf_emit(c->body, "kf_st16((uint4 *)(%s) + %zu, (const uint4 *)%s + %zu);", dst, q, t, q);
    }
}

/* A pointwise kernel 8 elements a thread: 8 consecutive columns of the
 * last dim, every load first (so that NVVM merges the loads of sources
 * contiguous along it into vectors: the slots are 16-byte aligned and the
 * first column a multiple of 8), each output stored by store8.  Only where
 * the last dim is a multiple of 8 and every root is stored with the first
 * one's shape; returns false, emitting nothing, otherwise. */
static bool gen_pointwise8(cuda_gen *G, kf_buf *out)
{
    kf_cg *c = &G->c;
    kf_node *r0 = c->k->roots[0];
    if (r0->ndim < 1 || r0->shape[r0->ndim - 1] % 8 || c->k->nroots > KF_MAX_DIMS * 4) return false;
    for (int i = 0; i < c->k->nroots; i++)
        if (!store8_ok(c, c->k->roots[i], r0)) return false;
    int64_t n8 = kf_node_numel(r0) / 8;
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    kf_emit(c->body, "for (kf_ix f8 = (kf_ix)blockIdx.x * %d + threadIdx.x; f8 < (kf_ix)%" PRId64
                     "; f8 += (kf_ix)gridDim.x * %d) {", NT, n8, NT);
    kf_emit(c->body, "const kf_ix f = f8 * 8;");
    kf_idx ix0, ix[8];
    int L = r0->ndim - 1;
    decompose(G, &ix0, "i", "f", r0->ndim, r0->shape);
    for (int j = 0; j < 8; j++) {
        ix[j] = ix0;
        ix[j].e[L] = kf_cg_fmt(c, "(%s + %d)", ix0.e[L], j);
    }
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < c->k->nroots; i++) preload(c, c->k->roots[i], &ix[j], 0);
    const char *v[KF_MAX_DIMS * 4][8];
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < c->k->nroots; i++) {
            kf_node *r = c->k->roots[i];
            v[i][j] = kf_cg_store_conv(c, r->dtype, kf_cg_pointwise(c, r, &ix[j]));
        }
    for (int i = 0; i < c->k->nroots; i++) store8(c, c->k->roots[i], v[i], &ix0);
    kf_emit(c->body, "}");
    const char *name = kf_cg_fmt(c, "kf_k%d", c->k->id);
    kf_cg_end_fn(c, out, &body, kernel_sig(G, name, NT));
    add_launch(G, name, n8 ? grid_for(G, n8, NT) : 0, NT, 0);
    return c->ctx->status == KF_OK;
}

/* Does pointwise node n (in this kernel's epilogue) read a buffer whose
 * values differ between rows of the product: one with more than one row
 * (aligned to the product's dims as broadcasting does), or through a view
 * (not looked into)? */
static bool reads_rows(kf_cg *c, const kf_node *n, int depth)
{
    if (depth > 64) return true;
    for (int i = 0; i < n->nin; i++) {
        const kf_node *x = n->in[i];
        if (x->op == KF_OP_SCALAR || x == c->k->anchor) continue;
        if (kf_ops[x->op].kind == KF_K_VIEW) return true;
        if (c->s->kern[x->id] != c->k->id) {
            if (x->ndim >= 2 && x->shape[x->ndim - 2] != 1) return true;
        } else if (kf_ops[x->op].kind == KF_K_POINTWISE && reads_rows(c, x, depth + 1)) {
            return true;
        }
    }
    return false;
}

/* kf_k<id>_epilogue8 (rows 1), _epilogue16 (rows 2: rows m and m1) or
 * _epilogue32 (rows 4: m to m3) for the stored outputs st: see
 * gen_epilogue8.  pre: the accumulators come already rounded to the
 * product's dtype (kf_k<id>_epilogue8r / 32r: the rounding is not done
 * again). */
static void epilogue_rows(cuda_gen *G, kf_buf *fused, kf_node *const *st, int nst, int rows, bool pre)
{
    kf_cg *c = &G->c;
    kf_node *mm = c->k->anchor;
    kf_buf body;
    kf_cg_begin_fn(c, &body);
    /* v[s][8r + j]: stored output s's storage value at row r, column n + j */
    static const char *const rn[4] = {"m", "m1", "m2", "m3"};
    const char *v[KF_MAX_DIMS * 4 + 1][32];
    kf_idx ix[32];
    for (int j = 0; j < 8; j++) kf_emit(c->body, "const int64_t kf_nj%d = n + %d;", j, j);
    for (int q = 0; q < 8 * rows; q++) ix[q] = kf_cg_mm_idx(c, mm, mm, rn[q / 8], kf_cg_fmt(c, "kf_nj%d", q % 8));
    /* every load first, in one straight run (the math between them, erff
     * for one, has branches that would keep NVVM from merging them) */
    for (int q = 0; q < 8 * rows; q++)
        for (int i = 0; i < c->k->nroots; i++) preload(c, c->k->roots[i], &ix[q], 0);
    for (int q = 0; q < 8 * rows; q++) {
        const char *av = kf_cg_tmp(c);
        if (pre) kf_emit(c->body, "const float %s = acc[%d];", av, q);
        else kf_emit(c->body, "const float %s = %s(acc[%d]);", av, mm->dtype == KF_F16 ? "kf_round_h" : "kf_round_bf", q);
        kf_cg_memo_put(c, mm, &ix[q], av);
        int s = 0;
        if (c->s->stored[mm->id]) v[s++][q] = av;
        for (int i = 0; i < c->k->nroots; i++) {
            kf_node *r = c->k->roots[i];
            const char *x = kf_cg_pointwise(c, r, &ix[q]);
            if (!c->s->stored[r->id]) continue;
            const char *t = kf_cg_tmp(c);
            kf_emit(c->body, "const %s %s = %s;", kf_cg_stype(r->dtype), t, kf_cg_store_conv(c, r->dtype, x));
            v[s++][q] = t;
        }
    }
    for (int s = 0; s < nst; s++) {
        if (st[s] == mm) /* the product itself: its storage value */
            for (int q = 0; q < 8 * rows; q++) v[s][q] = kf_cg_store_conv(c, mm->dtype, v[s][q]);
        for (int r = 0; r < rows; r++) store8(c, st[s], v[s] + 8 * r, &ix[8 * r]);
    }
    kf_cg_end_fn(c, fused, &body,
                 kf_cg_fmt(c, "KF_INLINE void kf_k%d_epilogue%d%s(const kf_bufs &B, kf_ix b, int64_t m, %sint64_t n, "
                              "const float *acc)",
                           c->k->id, 8 * rows, pre ? "r" : "",
                           rows == 4 ? "int64_t m1, int64_t m2, int64_t m3, " : rows == 2 ? "int64_t m1, " : ""));
}

/* The 8-wide epilogue of a tensor-core template (f32 accumulators):
 * kf_k<id>_epilogue8(B, b, m, n, acc[8]) computes C[b][m][n .. n+7] as 8
 * calls of the scalar epilogue would, for a column n that is a multiple of 8,
 * all 8 inside.  The values are computed first, every load before any store,
 * so that NVVM merges the loads of sources contiguous along n into vectors
 * (16-byte aligned: the slots are, N % 8 == 0 and n % 8 == 0 are known after
 * inlining); each stored output is then written with 16-byte stores (8 bytes
 * for 1-byte types).  Where a source differs between rows, also
 * kf_k<id>_epilogue16(B, b, m, m1, n, acc[16]): rows m and m1 in one
 * function, all the loads of both first.  Only where N % 8 == 0 and every
 * stored output is laid out as the product (its shape): returns 0, emitting
 * nothing, otherwise (the template then calls the scalar epilogue); else 1,
 * or 2 with the two-row function (and the four-row kf_k<id>_epilogue32r). */
static int gen_epilogue8(cuda_gen *G, kf_buf *fused, int64_t N)
{
    kf_cg *c = &G->c;
    kf_node *mm = c->k->anchor;
    if (N % 8) return 0;
    kf_node *st[KF_MAX_DIMS * 4 + 1];
    int nst = 0;
    if (c->s->stored[mm->id]) st[nst++] = mm;
    for (int i = 0; i < c->k->nroots; i++) {
        kf_node *r = c->k->roots[i];
        if (!c->s->stored[r->id]) continue;
        if (nst == (int)(sizeof st / sizeof *st) || !store8_ok(c, r, mm)) return 0;
        st[nst++] = r;
    }
    if (!nst) return 0;
    /* two rows a call only where a source's loads differ between them: with
     * row-broadcast sources alone (a bias) it measured slower on the H100
     * (the skinny silu graph's two-blocks kernel 0.0340 ms against 0.0272) */
    bool rows2 = false;
    for (int i = 0; i < c->k->nroots; i++) rows2 = rows2 || reads_rows(c, c->k->roots[i], 0);
    for (int rows = 1; rows <= (rows2 ? 2 : 1); rows++) epilogue_rows(G, fused, st, nst, rows, false);
    /* from values already rounded (the epilogue through shared memory):
     * one row, or four a call (rows m, m + 4, m + 8, m + 12): twice the
     * loads in flight before the math of two (measured on the H200: relu +
     * res 4096^3 0.196-0.197 ms against 0.202 with two rows) */
    epilogue_rows(G, fused, st, nst, 1, true);
    if (rows2) epilogue_rows(G, fused, st, nst, 4, true);
    return c->ctx->status != KF_OK ? 0 : rows2 ? 2 : 1;
}

static void gen_template(cuda_gen *G, kf_buf *out)
{
    kf_cg *c = &G->c;
    kf_node *mm = c->k->anchor, *A = mm->in[0], *Bn = mm->in[1];
    int id = c->k->id;
    int64_t M = mm->shape[mm->ndim - 2], N = mm->shape[mm->ndim - 1];
    int64_t K = A->shape[A->ndim - 1], batch = 1;
    for (int d = 0; d < mm->ndim - 2; d++) batch *= mm->shape[d];
    bool tc = mm->dtype == KF_F16 || mm->dtype == KF_BF16;
    const char *T = mm->dtype == KF_F64 ? "double" : "float";
    kf_buf fused; /* everything but the tile configuration: the tuning key */
    kf_buf_init(&fused, c->ctx);
    kf_buf body;
    /* 64-bit row and column: with int ones, the conversion from the
     * template's indices keeps the optimiser from merging a chunk's 8 loads
     * of a contiguous source into one vector load */
    for (int op = 0; op < 2; op++) kf_cg_mm_prologue(c, &fused, op, "const kf_bufs &", "kf_ix");
    /* the prologues' raw sources, for the warp-specialised kernel's raw staging */
    const kf_node *raw[2] = {NULL, NULL};
    bool h2[2] = {false, false};
    for (int op = 0; tc && op < 2; op++) {
        raw[op] = kf_cg_mm_raw_source(c, op);
        if (!raw[op]) continue;
        kf_cg_mm_prologue_raw(c, &fused, op, raw[op], "const kf_bufs &", "kf_ix");
        kf_buf_printf(&fused, "#define KF_MM_%c_RAW_T %s\n", op ? 'B' : 'A', kf_cg_stype(raw[op]->dtype));
        kf_buf_printf(&fused, "#define KF_MM_LOAD_%c_RAW(B, b, i, j, raw) kf_k%d_prologue_%c_raw(B, b, i, j, raw)\n",
                      op ? 'B' : 'A', id, op ? 'b' : 'a');
        h2[op] = kf_cg_mm_prologue_h2(c, &fused, op, raw[op], "const kf_bufs &", "kf_ix", false);
        if (h2[op])
            kf_buf_printf(&fused, "#define KF_MM_LOAD_%c_H2(B, b, i, j, raw) kf_k%d_prologue_%c_h2(B, b, i, j, raw)\n",
                          op ? 'B' : 'A', id, op ? 'b' : 'a');
    }
    /* the transposed kernel (wgmma 7): an 8-bit B source, its prologue
     * packed in pairs down the columns (along k), one batch */
    bool h2k = raw[1] && !raw[0] && kf_dtype_size(raw[1]->dtype) == 1 && mm->ndim == 2 && Bn->ndim == 2 &&
               kf_cg_mm_prologue_h2(c, &fused, 1, raw[1], "const kf_bufs &", "kf_ix", true);
    if (h2k) kf_buf_printf(&fused, "#define KF_MM_LOAD_B_H2K(B, b, i, j, raw) kf_k%d_prologue_b_h2k(B, b, i, j, raw)\n", id);
    kf_cg_begin_fn(c, &body);
    kf_idx oix = kf_cg_mm_idx(c, mm, mm, "m", "n");
    const char *av = "acc";
    if (tc) {
        av = kf_cg_tmp(c);
        kf_emit(c->body, "const float %s = %s(acc);", av, mm->dtype == KF_F16 ? "kf_round_h" : "kf_round_bf");
    }
    kf_cg_memo_put(c, mm, &oix, av);
    if (c->s->stored[mm->id])
        kf_emit(c->body, "%s[%s] = %s;", kf_cg_ptr(c, mm, true), kf_cg_linear(c, mm, &oix), kf_cg_store_conv(c, mm->dtype, av));
    kf_cg_roots(c, &oix, -1);
    kf_cg_end_fn(c, &fused, &body,
                 kf_cg_fmt(c, "KF_INLINE void kf_k%d_epilogue(const kf_bufs &B, kf_ix b, int64_t m, int64_t n, %s acc)", id, T));
    int epi8 = tc ? gen_epilogue8(G, &fused, N) : 0; /* 2: also the two-row epilogue */
    kf_buf_printf(&fused, "#define KF_MM_TC %d\n#define KF_MM_BF16 %d\n#define KF_MM_T %s\n", tc, mm->dtype == KF_BF16, T);
    kf_buf_printf(&fused, "#define KF_MM_EPI8 %d\n", epi8 > 0);
    if (epi8)
        kf_buf_printf(&fused, "#define KF_MM_STORE8(B, b, m, n, v) kf_k%d_epilogue8(B, b, m, n, v)\n"
                              "#define KF_MM_STORE8R(B, b, m, n, v) kf_k%d_epilogue8r(B, b, m, n, v)\n", id, id);
    if (epi8 == 2)
        kf_buf_printf(&fused, "#define KF_MM_STORE16(B, b, m, m1, n, v) kf_k%d_epilogue16(B, b, m, m1, n, v)\n"
                              "#define KF_MM_STORE32R(B, b, m, m1, m2, m3, n, v) "
                              "kf_k%d_epilogue32r(B, b, m, m1, m2, m3, n, v)\n", id, id);
    /* the epilogue straight from the accumulator fragments (measured faster
     * on the H100: gelu+res 0.44 ms against 0.57 through shared memory);
     * KFUSE_CUDA_MM_EPI=smem stages the tile for coalesced stores instead */
    const char *ep = getenv("KFUSE_CUDA_MM_EPI");
    bool direct = !(ep && !strcmp(ep, "smem"));
    kf_buf_printf(&fused, "#define KF_MM_DIRECT_EPI %d\n", direct);
    kf_buf_printf(&fused, "#define KF_MM_BATCH %" PRId64 "LL\n#define KF_MM_M %" PRId64 "LL\n#define KF_MM_N %" PRId64
                          "LL\n#define KF_MM_K %" PRId64 "LL\n", batch, M, N, K);
    kf_buf_printf(&fused, "#define KF_MM_LOAD_A(B, b, m, k) kf_k%d_prologue_a(B, b, m, k)\n", id);
    kf_buf_printf(&fused, "#define KF_MM_LOAD_B(B, b, k, n) kf_k%d_prologue_b(B, b, k, n)\n", id);
    kf_buf_printf(&fused, "#define KF_MM_STORE(B, b, m, n, v) kf_k%d_epilogue(B, b, m, n, v)\n", id);
    /* tensor cores: operands staged straight from their buffers (cp.async,
     * TMA) need 16-byte rows */
    bool pa = tc && kf_cg_mm_operand_ptr(c, &fused, 0, mm->dtype, "uint16_t", 8);
    bool pb = tc && kf_cg_mm_operand_ptr(c, &fused, 1, mm->dtype, "uint16_t", 8);
    G->rt = h2k && pa && epi8 && tma_fits(mm);
    char *fs = kf_buf_take(&fused);
    if (!fs) return;
    kf_buf_puts(out, fs);

    /* the variants: one tile configuration, or all of them to be timed */
    int pick = 0, first = 0, last = 0;
    char key[40] = "";
    if (tc) {
        uint64_t h = fnv(0xcbf29ce484222325ULL, fs);
        h = fnv(h, kf_tmpl_mm_cu);
        snprintf(key, sizeof key, "%016llx_sm%d%d", (unsigned long long)h, G->t->sm_major, G->t->sm_minor);
        pick = G->t->pick ? G->t->pick(G->t->ud, key) : pick_cfg(G, M, N, batch);
        /* only large products are worth timing every configuration */
        if (pick >= kf_mm_ncfgs || (pick < 0 && 2.0 * (double)M * (double)N * (double)K * (double)batch < 1e9))
            pick = pick_cfg(G, M, N, batch);
        /* KFUSE_CUDA_MM_CFG=i: configuration i everywhere, no tuning (tests) */
        const char *fc = getenv("KFUSE_CUDA_MM_CFG");
        if (fc && *fc >= '0' && *fc <= '9' && atoi(fc) < kf_mm_ncfgs) pick = atoi(fc);
        if (pick >= 0 && kf_mm_cfgs[pick].wgmma && !wg_ok(G, &kf_mm_cfgs[pick], pa, pb)) pick = pick_cfg(G, M, N, batch);
        first = pick < 0 ? 0 : pick;
        last = pick < 0 ? kf_mm_ncfgs - 1 : pick;
    }
    kf_free(c->ctx, fs);
    for (int v = first; v <= last; v++) {
        if (tc && kf_mm_cfgs[v].wgmma && !wg_ok(G, &kf_mm_cfgs[v], pa, pb)) continue;
        if (first != last && v == SMALL_CFG) continue; /* products worth tuning have rows enough */
        const char *name = pick < 0 ? kf_cg_fmt(c, "kf_k%d_c%d", id, v) : kf_cg_fmt(c, "kf_k%d", id);
        kf_buf_printf(out, "#define KF_MM_FN %s\n", name);
        kf_cuda_call *l;
        if (tc) {
            const kf_mm_cfg *f = &kf_mm_cfgs[v];
            char cn[64];
            kf_mm_cfg_name(v, cn, sizeof cn);
            kf_buf_printf(out, "/* kfuse-tile: kernel %d %s */\n", id, cn);
            kf_buf_printf(out, "#define KF_MM_BM %d\n#define KF_MM_BN %d\n#define KF_MM_BK %d\n#define KF_MM_WM %d\n"
                               "#define KF_MM_WN %d\n#define KF_MM_STAGES %d\n#define KF_MM_WGMMA %d\n",
                          f->bm, f->bn, f->bk, f->wm, f->wn, f->stages, f->wgmma);
            kf_buf_printf(out, "#define KF_MM_CTAS %d\n", f->ctas);
            if (f->pair > 1) kf_buf_printf(out, "#define KF_MM_PAIR %d\n", f->pair);
            int64_t tiles = ((M + f->bm - 1) / f->bm) * ((N + f->bn - 1) / f->bn);
            int nraw = raw_slots(G, f, pa, pb, raw);
            bool rw = nraw > 0;
            unsigned smem = cfg_smem(f, direct) + (unsigned)nraw * raw_stage_bytes(f, raw);
            if (rw) kf_buf_printf(out, "#define KF_MM_RAW_SLOTS %d\n", nraw);
            l = add_launch(G, name, batch ? tiles : 0, cfg_threads(f), smem);
            if (l) {
                l->grid[1] = (unsigned)batch;
                l->variant = v;
                l->tuned = pick < 0;
                snprintf(l->key, sizeof l->key, "%s", key);
                if (f->wgmma >= 2) ws_launch(G, out, l, f, pa ? A : NULL, pb ? Bn : NULL, rw || f->wgmma == 7 ? raw : NULL,
                                            tiles * batch, batch);
            }
        } else {
            kf_buf_printf(out, "/* kfuse-tile: kernel %d simt 64x64x16 (%s) */\n", id, T);
            l = add_launch(G, name, batch && M && N ? (N + 63) / 64 : 0, 256, 0);
            if (l) {
                l->grid[1] = (unsigned)((M + 63) / 64);
                l->grid[2] = (unsigned)batch;
            }
        }
        kf_buf_puts(out, kf_tmpl_mm_cu);
        kf_buf_puts(out, "\n#undef KF_MM_FN\n");
        if (tc)
            kf_buf_puts(out, "#undef KF_MM_BM\n#undef KF_MM_BN\n#undef KF_MM_BK\n#undef KF_MM_WM\n#undef KF_MM_WN\n"
                             "#undef KF_MM_STAGES\n#undef KF_MM_WGMMA\n#undef KF_MM_CTAS\n#undef KF_MM_A_TMA\n#undef KF_MM_B_TMA\n"
                             "#undef KF_MM_A_RAW\n#undef KF_MM_B_RAW\n#undef KF_MM_RAW_SLOTS\n");
    }
    kf_buf_puts(out, "#undef KF_MM_TC\n#undef KF_MM_BF16\n#undef KF_MM_T\n#undef KF_MM_BATCH\n#undef KF_MM_M\n"
                     "#undef KF_MM_N\n#undef KF_MM_K\n#undef KF_MM_DIRECT_EPI\n#undef KF_MM_LOAD_A\n#undef KF_MM_LOAD_B\n#undef KF_MM_STORE\n"
                     "#undef KF_MM_EPI8\n#undef KF_MM_STORE8\n#undef KF_MM_STORE16\n#undef KF_MM_STORE8R\n#undef KF_MM_STORE32R\n");
    for (int op = 0; op < 2; op++)
        if (raw[op])
            kf_buf_printf(out, "#undef KF_MM_%c_RAW_T\n#undef KF_MM_LOAD_%c_RAW\n%s", op ? 'B' : 'A', op ? 'B' : 'A',
                          !h2[op] ? "" : op ? "#undef KF_MM_LOAD_B_H2\n" : "#undef KF_MM_LOAD_A_H2\n");
    if (h2k) kf_buf_puts(out, "#undef KF_MM_LOAD_B_H2K\n");
    if (pa) kf_buf_puts(out, "#undef KF_MM_A_PTR\n");
    if (pb) kf_buf_puts(out, "#undef KF_MM_B_PTR\n");
}

/* An external template's kernel: the backend's launch shape, checked
 * (every dim positive, grid within 2^31-1 x 65535 x 65535, block within
 * 1024 x 1024 x 64 and 1024 threads in all), becomes this kernel's launch. */
static const char *extern_shell(kf_cg *c, const kf_backend *be, const kf_fused_kernel *fk, void *ud)
{
    cuda_gen *G = ud;
    static const int64_t gmax[3] = {2147483647, 65535, 65535}, bmax[3] = {1024, 1024, 64};
    int64_t threads = 1;
    bool ok = true;
    for (int d = 0; d < 3; d++) {
        ok = ok && fk->grid[d] >= 1 && fk->grid[d] <= gmax[d] && fk->block[d] >= 1 && fk->block[d] <= bmax[d];
        if (ok) threads *= fk->block[d];
    }
    if (!ok || threads > 1024) {
        kf_err(c->ctx, KF_ERR_COMPILE,
               "error: backend '%s' returned a bad CUDA launch shape for %s: grid %" PRId64 " x %" PRId64 " x %" PRId64
               ", block %" PRId64 " x %" PRId64 " x %" PRId64 " (each dim at least 1; grid at most 2147483647 x "
               "65535 x 65535; block at most 1024 x 1024 x 64, 1024 threads in all)",
               be->name, c->k->anchor->ext_op, fk->grid[0], fk->grid[1], fk->grid[2], fk->block[0], fk->block[1],
               fk->block[2]);
        return NULL;
    }
    const char *name = kf_cg_fmt(c, "kf_k%d", c->k->id);
    kf_cuda_call *l = add_launch(G, name, fk->grid[0], (unsigned)fk->block[0], 0);
    if (!l) {
        kf_err(c->ctx, KF_ERR_NOMEM, "out of memory in the CUDA code generator");
        return NULL;
    }
    for (int d = 1; d < 3; d++) {
        l->grid[d] = (unsigned)fk->grid[d];
        l->block[d] = (unsigned)fk->block[d];
    }
    return kernel_sig(G, name, (int)threads);
}

int kf_cg_cuda_generate(kf_sched *s, const kf_cuda_target *t, char *refused_epi, char *refused_pro, kf_cuda_prog *out)
{
    kf_graph *g = s->g;
    kf_ctx *ctx = s->ctx;
    memset(out, 0, sizeof *out);
    kf_arena ar;
    kf_arena_init(&ar, ctx);
    cuda_gen G = {.c = {.ctx = ctx, .s = s, .g = g, .ar = &ar, .refused_epi = refused_epi, .refused_pro = refused_pro},
                  .t = t, .out = out, .small = true};
    kf_cg *c = &G.c;
    kf_buf src, kern;
    kf_buf_init(&src, ctx);
    kf_buf_init(&kern, ctx);
    if (kf_cg_init(c, &out->prog)) goto fail;
    for (int i = 0; i < g->nnodes; i++)
        if (kf_node_numel(g->nodes[i]) >= ((int64_t)1 << 31)) G.small = false;

    for (int i = 0; i < s->nk; i++) {
        c->k = s->k[i];
        comment_nodes(&kern, c->k);
        switch (c->k->kind) {
        case KF_KERN_POINTWISE: gen_pointwise(&G, &kern); break;
        case KF_KERN_REDUCTION: gen_reduction(&G, &kern); break;
        case KF_KERN_TEMPLATE: gen_template(&G, &kern); break;
        case KF_KERN_EXTERN: kf_cg_extern(c, KF_DEVICE_CUDA, &kern, extern_shell, &G); break;
        }
        if (ctx->status != KF_OK) goto fail;
        if (c->retry) { /* a backend refused hooks: schedule again */
            kf_buf_free(&src);
            kf_buf_free(&kern);
            kf_free(ctx, c->memo);
            kf_free(ctx, (void *)c->twin);
            kf_arena_free(&ar);
            kf_cuda_prog_free(ctx, out);
            return 1;
        }
        kf_buf_puts(&kern, "\n");
    }
    kf_buf_puts(&src, "/* generated by kfuse for CUDA */\n");
    kf_buf_printf(&src, "#define KF_NSLOTS %d\n", out->prog.nslots ? out->prog.nslots : 1);
    kf_buf_puts(&src, kf_tmpl_prelude_cuh);
    kf_buf_puts(&src, kf_tmpl_helpers_h);
    kf_buf_printf(&src, "typedef %s kf_ix;\n\n", G.small ? "int" : "int64_t");
    if (kern.s) kf_buf_puts(&src, kern.s);
    if (kern.oom) src.oom = true;
    kf_buf_free(&kern);
    kf_free(ctx, c->memo);
    kf_free(ctx, (void *)c->twin);
    out->prog.source = kf_buf_take(&src);
    kf_arena_free(&ar);
    if (!out->prog.source || ctx->status != KF_OK) goto fail2;
    return 0;
fail:
    kf_buf_free(&src);
    kf_buf_free(&kern);
    kf_free(ctx, c->memo);
    kf_free(ctx, (void *)c->twin);
    kf_arena_free(&ar);
fail2:
    if (ctx->status == KF_OK) kf_err(ctx, KF_ERR_NOMEM, "out of memory in the CUDA code generator");
    kf_cuda_prog_free(ctx, out);
    return -1;
}

void kf_cuda_prog_free(kf_ctx *ctx, kf_cuda_prog *p)
{
    kf_cprog_free(ctx, &p->prog);
    kf_free(ctx, p->launch);
    memset(p, 0, sizeof *p);
}
