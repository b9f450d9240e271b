/*
 * test_sched.c - the scheduler's refusal lists, which the CUDA target's
 * measurement uses to compute an mm prologue apart (and backends to refuse
 * hooks): a refused template input is realised by its own kernel and read
 * plainly; nothing else changes.
 */
#include <stdio.h>
#include <string.h>

#include "kfuse.h"
#include "sched/sched.h"

static int failures;

#define CHECK(cond, ...)                                 \
    do {                                                 \
        if (!(cond)) {                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);  \
            printf(__VA_ARGS__);                         \
            printf("\n");                                \
            failures++;                                  \
        }                                                \
    } while (0)

/* The template kernel of s (the first), or NULL. */
static const kf_kernel *template_of(const kf_sched *s)
{
    for (int i = 0; i < s->nk; i++)
        if (s->k[i]->kind == KF_KERN_TEMPLATE) return s->k[i];
    return NULL;
}

int main(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_F16, 2, (int64_t[]){64, 32});
    kf_node *wq = kf_input(g, "wq", KF_I8, 2, (int64_t[]){32, 48});
    kf_node *sc = kf_input(g, "scale", KF_F16, 1, (int64_t[]){48});
    kf_node *bias = kf_input(g, "bias", KF_F16, 1, (int64_t[]){48});
    kf_node *w = kf_binary(g, "mul", kf_cast(g, wq, KF_F16), sc);
    kf_output(g, kf_unary(g, "relu", kf_binary(g, "add", kf_matmul(g, a, w), bias)));
    CHECK(kf_errcode(ctx) == KF_OK && kf_graph_verify(g) == 0, "building: %s", kf_errmsg(ctx));

    char refused[2][64];
    memset(refused, 0, sizeof refused);
    kf_sched_opts so = {.refused_epilogue = refused[0], .refused_prologue = refused[1]};
    kf_sched *s = kf_sched_new(g, &so);
    CHECK(s != NULL, "scheduling: %s", kf_errmsg(ctx));
    const kf_kernel *k = s ? template_of(s) : NULL;
    CHECK(s && s->nk == 1, "fused: %d kernels, want 1", s ? s->nk : -1);
    CHECK(k && k->prologue[1] == w && !k->prologue[0], "fused: the dequantisation is b's prologue");
    CHECK(k && k->nroots >= 1, "fused: the epilogue is in the template");
    kf_sched_free(s);

    /* the same graph with b's prologue refused */
    refused[1][w->id] = 1;
    s = kf_sched_new(g, &so);
    CHECK(s != NULL, "scheduling: %s", kf_errmsg(ctx));
    k = s ? template_of(s) : NULL;
    CHECK(s && s->nk == 2, "refused: %d kernels, want 2 (the dequantisation, then mm + epilogue)", s ? s->nk : -1);
    CHECK(k && !k->prologue[0] && !k->prologue[1], "refused: no prologue left");
    CHECK(s && s->stored[w->id], "refused: the dequantised weight is realised");
    CHECK(s && k && s->kern[w->id] >= 0 && s->kern[w->id] < k->id, "refused: computed before the template");
    kf_sched_free(s);

    kf_graph_free(g);
    kf_ctx_free(ctx);
    printf("%s\n", failures ? "test_sched: FAILED" : "test_sched: ok");
    return failures != 0;
}
