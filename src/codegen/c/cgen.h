/*
 * cgen.h - the C code generator: one translation unit per schedule, with a
 * function per kernel and the wrapper kf_entry that binds buffers and calls
 * the kernels in order.
 */
#ifndef KFUSE_CGEN_H
#define KFUSE_CGEN_H

#include "../../sched/sched.h"

/* Where each buffer slot of the wrapper comes from. */
typedef enum { KF_SLOT_INPUT, KF_SLOT_OUTPUT, KF_SLOT_CONST, KF_SLOT_SCRATCH } kf_slot_kind;

typedef struct kf_slot {
    kf_slot_kind kind;
    int index;          /* input/output/const position */
    int64_t offset;     /* scratch offset */
    kf_node *node;
} kf_slot;

typedef struct kf_cprog {
    char *source;       /* owned (kf_free) */
    kf_slot *slots;     /* owned */
    int nslots;
    kf_node **consts;   /* owned array; the constant nodes in slot order */
    int nconsts;
    int64_t scratch_bytes;
} kf_cprog;

/* The entry point every generated unit exports. */
typedef void (*kf_entry_fn)(void *const *inputs, void *const *outputs,
                            void *const *consts, char *scratch, int nthreads);

/* 0: done; 1: an external backend refused part of its fusion: the refused
 * epilogue roots and prologue nodes are marked (per node id) and the graph
 * must be scheduled again; -1: an error on the context. */
int kf_cg_c_generate(kf_sched *s, char *refused_epi, char *refused_pro, kf_cprog *out);
void kf_cprog_free(kf_ctx *ctx, kf_cprog *p);

#endif
