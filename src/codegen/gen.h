/*
 * gen.h - what the code generators of both targets share: expanding node
 * expressions at an index into straight-line code (pointwise ops from the
 * op table, views as index rewrites, loads of realised buffers), the memo
 * that computes each value once per index, the slot table and memory plan
 * of the wrapper, and external templates: the fusion spec (hooks as code
 * and as expression trees), the backend's call and the checks of its answer.
 * The generated code is C; the CUDA target's prelude defines the same
 * helpers as device functions, so the expressions serve both.
 */
#ifndef KFUSE_CODEGEN_GEN_H
#define KFUSE_CODEGEN_GEN_H

#include "../sched/sched.h"

/* Where each buffer slot of the wrapper comes from. */
typedef enum { KF_SLOT_INPUT, KF_SLOT_OUTPUT, KF_SLOT_CONST, KF_SLOT_SCRATCH } kf_slot_kind;

typedef struct kf_slot {
    kf_slot_kind kind;
    int index;          /* input/output/const position */
    int64_t offset;     /* scratch offset */
    int64_t bytes;      /* the tensor's size: kept, the graph may be gone at run time */
    kf_node *node;      /* valid while compiling only */
} kf_slot;

typedef struct kf_cprog {
    char *source;       /* owned (kf_free) */
    kf_slot *slots;     /* owned */
    int nslots;
    kf_node **consts;   /* owned array; the constant nodes in slot order */
    int nconsts;
    int64_t scratch_bytes;
} kf_cprog;

void kf_cprog_free(kf_ctx *ctx, kf_cprog *p);

/* An index: one C expression per dim. */
typedef struct kf_idx {
    int nd;
    const char *e[KF_MAX_DIMS];
} kf_idx;

typedef struct kf_memo_ent {
    int node;
    const char *key;
    const char *var;
} kf_memo_ent;

/* The state of one generation: the schedule, the slots, and the function
 * being written. */
typedef struct kf_cg {
    kf_ctx *ctx;
    kf_sched *s;
    kf_graph *g;
    kf_arena *ar;          /* per kernel strings */
    kf_buf *body;
    int *slot;             /* node id -> slot or -1 */
    bool *slot_used;       /* slots referenced by the current function */
    bool *slot_written;
    int tmp;
    kf_memo_ent *memo;
    int nmemo, capmemo;
    /* f16/bf16 values: the float temporary and its 16-bit twin, pairs */
    const char **twin;
    int ntwin, captwin;
    kf_kernel *k;
    /* external templates: hooks address buffers by their index in the
     * fusion spec; local[slot] is that index, or -1 */
    int *local;
    int *local_slot;       /* spec buffer -> slot */
    int nlocal;
    char *refused_epi, *refused_pro; /* per node, out: what a backend refused */
    bool retry;
} kf_cg;


typedef struct kf_plan_ent {
    int node;
    int first, last;
    int64_t size, off;
} kf_plan_ent;

/* slots and memory plan (fills out's slots, consts, scratch_bytes) */
int kf_cg_init(kf_cg *c, kf_cprog *out);
int64_t kf_cg_plan_memory(kf_cg *c, kf_plan_ent *e, int n);

/* types: compute type, its letter for op-table expressions, storage type */
const char *kf_cg_ctype(kf_dtype t);
char kf_cg_tletter(kf_dtype t);
const char *kf_cg_stype(kf_dtype t);

/* strings in the per-generation arena */
const char *kf_cg_fmt(kf_cg *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
const char *kf_cg_tmp(kf_cg *c);

/* values */
void kf_cg_memo_put(kf_cg *c, const kf_node *n, const kf_idx *ix, const char *var);
const char *kf_cg_linear(kf_cg *c, const kf_node *n, const kf_idx *ix);
const char *kf_cg_ptr(kf_cg *c, const kf_node *n, bool write);
const char *kf_cg_load_conv(kf_cg *c, kf_dtype t, const char *v);
const char *kf_cg_store_conv(kf_cg *c, kf_dtype t, const char *v);
const char *kf_cg_fit_dtype(kf_cg *c, kf_dtype t, const char *v);
const char *kf_cg_convert(kf_cg *c, kf_dtype from, kf_dtype to, const char *v);
kf_idx kf_cg_bcast_idx(const kf_node *y, const kf_idx *ix);
kf_idx kf_cg_mm_idx(kf_cg *c, const kf_node *mm, const kf_node *x, const char *i, const char *j);
/* n's value at ix, emitting what computes it into c->body */
const char *kf_cg_gen(kf_cg *c, kf_node *n, const kf_idx *ix);
const char *kf_cg_pointwise(kf_cg *c, kf_node *n, const kf_idx *ix);
/* computes and stores the kernel's roots at ix (of >= 0: only those hanging
 * from that external template result) */
void kf_cg_roots(kf_cg *c, const kf_idx *ix, int of);
/* after a reduction loop left its value in `acc`: the mean's division, the
 * store, the reduction's epilogue */
void kf_cg_reduction_result(kf_cg *c, kf_node *a, const kf_idx *oix);
/* inside the reduction loop: fold the input at rix into `acc` */
void kf_cg_reduce_step(kf_cg *c, kf_node *a, kf_idx *rix);

/* functions: a body is written between begin and end, which declares the
 * typed pointers of the slots the body used */
void kf_cg_emit_decls(kf_cg *c, kf_buf *out, int indent);
void kf_cg_begin_fn(kf_cg *c, kf_buf *body);
void kf_cg_end_fn(kf_cg *c, kf_buf *out, kf_buf *body, const char *sig);

/* the mm template's operand loaders, prologues applied */
void kf_cg_mm_prologue(kf_cg *c, kf_buf *out, int op, const char *table, const char *batch);
/* The buffer that operand op's prologue reads at the operand's own index
 * (through pointwise nodes of the operand's shape only): an input or a node
 * realised elsewhere, of 1-, 2- or 4-byte elements, rows a multiple of 16
 * bytes, batch dims the product's or none; else NULL.  The CUDA template
 * loads its tiles by TMA and applies the rest of the prologue from shared
 * memory with kf_kN_prologue_a|b_raw(TABLE B, BATCH b, i, j, STYPE raw),
 * which kf_cg_mm_prologue_raw writes. */
const kf_node *kf_cg_mm_raw_source(kf_cg *c, int op);
void kf_cg_mm_prologue_raw(kf_cg *c, kf_buf *out, int op, const kf_node *src, const char *table, const char *batch);
/* The packed variant, where the mm is f16 and the prologue is adds, subs and
 * muls of f16 values over src (f16, or an 8-bit integer cast to f16):
 * kf_kN_prologue_a|b_h2(TABLE B, BATCH b, i, j, uint32_t raw), the f16x2
 * values at (i, j) and (i, j + 1) from the staged pair raw (src's, or its
 * cast's), bit for bit the scalar loader's; with down,
 * kf_kN_prologue_a|b_h2k(...), the values at (i, j) and (i + 1, j).  False
 * (nothing written) where the chain holds anything else. */
bool kf_cg_mm_prologue_h2(kf_cg *c, kf_buf *out, int op, const kf_node *src, const char *table, const char *batch,
                          bool down);
/* Can the template read operand op (0: a, 1: b) of the kernel's mm in place:
 * no prologue, of dtype dt, its own buffer (computed elsewhere, not a view),
 * batch dims those of the product or none, rows a multiple of align
 * elements?  Then KF_MM_A_PTR / KF_MM_B_PTR(B, b) are defined as a ctype
 * pointer to batch b's matrix, and true returned. */
bool kf_cg_mm_operand_ptr(kf_cg *c, kf_buf *out, int op, kf_dtype dt, const char *ctype, int64_t align);

/* external templates */
int kf_cg_local_buf(kf_cg *c, const kf_node *n);
const kf_expr *kf_cg_expr_of(kf_cg *c, kf_node *n, const kf_node *value, bool *ok);
int kf_cg_used_locals(kf_cg *c, int *out);
const char *kf_cg_index_params(kf_cg *c, int nd, kf_idx *ix);
/* The target's kernel around a backend's entry: its signature, or NULL after
 * an error on the context (the CUDA target checks the launch shape here). */
typedef const char *(*kf_cg_shell_fn)(kf_cg *c, const kf_backend *be, const kf_fused_kernel *fk, void *ud);
/* The current kernel's external template on device dev: builds the fusion
 * spec (the hooks as code and as trees, the buffer table), asks the backend
 * to fuse it and checks what came back.  What the backend refused is marked
 * in refused_epi / refused_pro and c->retry set: nothing is written, the
 * caller schedules again.  Otherwise writes the hooks, the backend's source
 * and the shell, SIG { void *args[n]; args[i] = B[slot]; ENTRY(args); }. */
void kf_cg_extern(kf_cg *c, kf_device dev, kf_buf *out, kf_cg_shell_fn shell, void *ud);

#endif
