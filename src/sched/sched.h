/*
 * sched.h - the schedule: which nodes are realised as buffers, how they are
 * grouped into kernels (pointwise, reduction, template), which pointwise
 * work is fused into a template's loads (prologue) and into the stores of a
 * template or reduction (epilogue), and the order the kernels run in.
 */
#ifndef KFUSE_SCHED_H
#define KFUSE_SCHED_H

#include "../kfuse-impl.h"

typedef enum { KF_KERN_POINTWISE, KF_KERN_REDUCTION, KF_KERN_TEMPLATE, KF_KERN_EXTERN } kf_kern_kind;
/* "pointwise", "reduction", "template" (standard and external alike) */
const char *kf_kern_kind_name(kf_kern_kind k);

typedef struct kf_kernel {
    kf_kern_kind kind;
    kf_node *anchor;        /* the reduction or matmul; NULL for pointwise */
    kf_node **roots;        /* realised nodes computed here, in topo order:
                               the pointwise root, or the anchor's epilogues */
    int nroots;
    kf_node **prologue;     /* per template input: computed while loading, or NULL */
    kf_node **nodes;        /* every node computed here (explain) */
    int nnodes;
    int id;                 /* position in run order */
} kf_kernel;

typedef struct kf_sched {
    kf_ctx *ctx;
    kf_arena arena;
    kf_graph *g;
    int nk;
    kf_kernel **k;          /* in run order */
    int *home;              /* per node: id of the root computing it, or -1 */
    int *kern;              /* per node: kernel index computing it, or -1 */
    bool *stored;           /* per node: has a buffer (input, const, realised
                               and read by another kernel, or output) */
    bool *is_output;
    bool *live;             /* per node: an output depends on it */
    int *result_of;         /* per epilogue root of an external template: the
                               result node it hangs from, else -1 */
    const char **unfused;   /* per pointwise root reading a template or
                               reduction it did not join: why, else NULL */
    int *unfused_of;        /* ... and that anchor's id */
} kf_sched;

typedef struct kf_sched_opts {
    bool no_fusion, no_template_fusion;
    /* what was refused, per node (NULL: nothing): an epilogue root that must
     * stay out of its template (by a backend), a template input that must be
     * realised rather than computed as a prologue (by a backend, or by the
     * CUDA target's measurement) */
    const char *refused_epilogue, *refused_prologue;
} kf_sched_opts;

/* Builds the schedule of g; NULL with an error on the context on failure. */
kf_sched *kf_sched_new(kf_graph *g, const kf_sched_opts *o);
void kf_sched_free(kf_sched *s);
void kf_sched_dump(const kf_sched *s, FILE *f);

bool kf_node_is_view(const kf_node *n);
/* Calls fn for every buffer that reading operand `in` touches: `in` itself,
 * or through views their sources (via_view set); scalars are left out. */
void kf_node_for_reads(kf_node *in, void (*fn)(void *arg, kf_node *src, bool via_view), void *arg);

#endif
