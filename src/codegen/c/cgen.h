/*
 * cgen.h - the C code generator: one translation unit per schedule, with a
 * function per kernel and the wrapper kf_entry that binds buffers and calls
 * the kernels in order.
 */
#ifndef KFUSE_CGEN_H
#define KFUSE_CGEN_H

#include "../gen.h"

/* The entry point every generated unit exports. */
typedef void (*kf_entry_fn)(void *const *inputs, void *const *outputs,
                            void *const *consts, char *scratch, int nthreads);

/* 0: done; 1: an external backend refused part of its fusion: the refused
 * epilogue roots and prologue nodes are marked (per node id) and the graph
 * must be scheduled again; -1: an error on the context. */
int kf_cg_c_generate(kf_sched *s, char *refused_epi, char *refused_pro, kf_cprog *out);

#endif
