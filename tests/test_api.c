/*
 * test_api.c - the public API's lifecycle promises: a compiled graph is
 * self-contained (it runs after its graph, and the graph's constant data,
 * are gone), runs repeatedly with new data, and frees NULL quietly.
 */
#include <stdio.h>
#include <string.h>

#include "kfuse.h"

static int failures;
#define CHECK(c, ...)                                                   \
    do {                                                                \
        if (!(c)) {                                                     \
            failures++;                                                 \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);         \
            printf(__VA_ARGS__);                                        \
            printf("\n");                                               \
        }                                                               \
    } while (0)

int main(void)
{
    enum { M = 7, K = 5, N = 3 };
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    float wdata[K * N];
    for (int i = 0; i < K * N; i++) wdata[i] = (float)(i % 4) - 1.5f;
    kf_node *a = kf_input(g, "a", KF_F32, 2, (int64_t[]){M, K});
    kf_node *w = kf_constant(g, "w", KF_F32, 2, (int64_t[]){K, N}, wdata);
    kf_node *y = kf_binary(g, "add", kf_unary(g, "relu", kf_matmul(g, a, w)), kf_scalar(g, 0.25, KF_F32));
    kf_output(g, y);
    kf_compiled *c = kf_compile(g, NULL);
    CHECK(c, "%s", kf_errmsg(ctx));
    if (!c) return 1;
    kf_graph_free(g);                    /* the compiled graph owns what it needs */
    memset(wdata, 0, sizeof wdata);      /* and copied the constant */
    float A[M * K], Y[M * N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < M * K; i++) A[i] = (float)((i * 7 + round) % 5) - 2.0f;
        CHECK(kf_run(c, (const void *[]){A}, (void *[]){Y}) == KF_OK, "%s", kf_errmsg(ctx));
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                float acc = 0;
                for (int k = 0; k < K; k++) acc += A[m * K + k] * ((float)((k * N + n) % 4) - 1.5f);
                float want = (acc > 0 ? acc : 0) + 0.25f;
                CHECK(Y[m * N + n] == want, "round %d [%d,%d]: %g != %g", round, m, n, Y[m * N + n], want);
            }
    }
    kf_compiled_free(c);
    kf_compiled_free(NULL);
    kf_graph_free(NULL);
    kf_ctx_free(ctx);
    kf_ctx_free(NULL);
    printf("%s\n", failures ? "api tests FAILED" : "api tests passed");
    return failures != 0;
}
