/*
 * kfuse-impl.h - internal structures shared by the passes: the context with
 * its allocator and error slot, the arena, the string emitter, and the graph
 * IR itself.  Nothing here is public API.
 */
#ifndef KFUSE_IMPL_H
#define KFUSE_IMPL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfuse.h"
#include "kfuse_backend.h"

#define KF_ASSERT(c)                                                         \
    do {                                                                     \
        if (!(c)) kf_assert_fail(#c, __FILE__, __LINE__);                    \
    } while (0)
_Noreturn void kf_assert_fail(const char *what, const char *file, int line);

/* ---- op table ---------------------------------------------------------- */
enum {
    KF_K_LEAF, KF_K_POINTWISE, KF_K_VIEW, KF_K_REDUCE, KF_K_MATMUL,
    KF_K_COMPOSITE, KF_K_EXTERN, KF_K_RESULT
};
enum {
    KF_F_FLOAT = 1, KF_F_NUMERIC = 2, KF_F_BOOLOUT = 4, KF_F_BOOLIN = 8
};
typedef enum kf_op {
#define KF_OP(E, name, nin, kind, flags, cexpr, ref) KF_OP_##E,
#include "ops.def"
#undef KF_OP
    KF_NOPS
} kf_op;

typedef struct kf_opinfo {
    const char *name;
    int nin, kind, flags;
    const char *cexpr;
} kf_opinfo;
extern const kf_opinfo kf_ops[KF_NOPS];
int kf_op_lookup(const char *name); /* -1 if unknown */

/* ---- context ----------------------------------------------------------- */
#define KF_MAX_BACKENDS 16
struct kf_ctx {
    kf_allocator al;
    kf_status status;
    char msg[8192];
    const struct kf_backend *backends[KF_MAX_BACKENDS];
    void *plugin[KF_MAX_BACKENDS];  /* dlopen handle when loaded from a file */
    int nbackends;
};

void kf_ctx_release_backends(kf_ctx *ctx); /* destroys and unloads plug-ins */
void *kf_malloc(kf_ctx *ctx, size_t n);  /* sets KF_ERR_NOMEM on failure */
void *kf_realloc(kf_ctx *ctx, void *p, size_t n);
void kf_free(kf_ctx *ctx, void *p);
char *kf_strdup(kf_ctx *ctx, const char *s);
/* Records an error (the first one wins until kf_clear_error); returns NULL
 * so that builders can `return kf_err(...)`. */
void *kf_err(kf_ctx *ctx, kf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *kf_verr(kf_ctx *ctx, kf_status st, const char *fmt, va_list ap);

/* ---- arena: many small allocations freed in one call -------------------- */
typedef struct kf_arena_block kf_arena_block;
typedef struct kf_arena {
    kf_ctx *ctx;
    kf_arena_block *head;
} kf_arena;
void kf_arena_init(kf_arena *a, kf_ctx *ctx);
void *kf_arena_alloc(kf_arena *a, size_t n); /* zeroed; NULL + error on OOM */
char *kf_arena_strdup(kf_arena *a, const char *s);
void kf_arena_free(kf_arena *a);

/* ---- growable string, the code emitter ---------------------------------- */
typedef struct kf_buf {
    kf_ctx *ctx;
    char *s;
    size_t len, cap;
    int indent;
    bool oom;
} kf_buf;
void kf_buf_init(kf_buf *b, kf_ctx *ctx);
void kf_buf_free(kf_buf *b);
void kf_buf_puts(kf_buf *b, const char *s);
void kf_buf_printf(kf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* emit: a line at the current indentation ("{" at the end indents the
 * next lines, a leading "}" dedents first). */
void kf_emit(kf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *kf_buf_take(kf_buf *b); /* the string, owned by the caller (kf_free) */

/* Turns any graph name into a C identifier: [A-Za-z0-9_], never starting
 * with a digit, prefixed so that it cannot collide with kfuse's own names.
 * The one sanitiser: every user string reaches generated code through it. */
void kf_sanitize_ident(const char *name, char *out, size_t outsz);

/* ---- the graph IR ------------------------------------------------------- */
struct kf_node {
    kf_graph *g;            /* the graph it belongs to */
    int id;                 /* index in g->nodes: topological order */
    kf_op op;
    kf_dtype dtype;
    int ndim;
    int64_t shape[KF_MAX_DIMS];
    int nin;
    kf_node **in;
    kf_attrs attr;
    double scalar;          /* KF_OP_SCALAR's value */
    void *data;             /* KF_OP_CONST's data, row-major, dtype */
    const char *name;       /* the graph name, or NULL */
    const char *file;       /* the place it was written, for errors */
    int line, col;
    int input_index;        /* position among inputs, or -1 */
    /* KF_OP_EXTERN: the backend whose template this is, the op it claimed,
     * how many results; KF_OP_RESULT: attr.start is the result's position,
     * ref the same result lowered to kfuse's own ops (the interpreter's
     * reference, dead for the compiler) */
    const struct kf_backend *backend;
    const char *ext_op;
    int nresults;
    kf_node *ref;
};

struct kf_graph {
    kf_ctx *ctx;
    kf_arena arena;
    kf_node **nodes;
    int nnodes, cap;
    kf_node **inputs;
    int ninputs, capin;
    kf_node **outputs;
    int noutputs, capout;
    const char *file;       /* current place (kf_graph_set_loc) */
    int line, col;
};

int64_t kf_shape_numel(int ndim, const int64_t *shape);
/* NumPy broadcasting of shapes a and b into out (rank *nout); false if they
 * do not broadcast. */
bool kf_shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out);
bool kf_dtype_is_float(kf_dtype t);
bool kf_dtype_is_int(kf_dtype t);          /* bool is not */
/* The name to show for a node: its own, or "op.ID" for nested calls. */
const char *kf_node_label(const kf_node *n, char *buf, size_t bufsz);
/* Checks every invariant the passes rely on; returns 0 or -1 with error. */
int kf_graph_verify(kf_graph *g);
void kf_graph_dump(const kf_graph *g, FILE *f, const char *after);

/* Python/ONNX clamping of a slice's start and end along a dim of size dim
 * (step != 0); returns how many elements the slice takes. */
int64_t kf_slice_clamp(int64_t dim, int64_t *start, int64_t *end, int64_t step);

/* The backend ABI's view of a node (contiguous strides). */
void kf_tensor_desc_of(const kf_node *n, kf_tensor_desc *d, char *label, size_t labelsz);

/* Compiling for a device other than the CPU (the builder asked the backends
 * for the CPU): each external template's backend is asked again, for dev;
 * where it declines, every edge and output that reads the node's results is
 * pointed at the result's lowered reference (r->ref), logged in *log (to be
 * freed with kf_free), until kf_graph_restore_edges puts them back.
 * Returns how many nodes were declined, or -1 (no memory). */
typedef struct kf_edge_log {
    kf_node **at;
    kf_node *was;
} kf_edge_log;
int kf_graph_lower_declined(kf_graph *g, kf_device dev, kf_edge_log **log, int *nlog);
void kf_graph_restore_edges(kf_edge_log *log, int nlog);

/* Reduction helpers: is axis d reduced by n (a KF_K_REDUCE node)? */
bool kf_reduce_has_axis(const kf_node *n, int d);
int64_t kf_reduce_count(const kf_node *n); /* elements per output */

#endif
