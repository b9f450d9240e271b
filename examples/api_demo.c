/* api_demo.c - builds, compiles and runs relu(a @ b + bias) through the C
 * API, and checks it against the reference interpreter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kfuse.h"

int main(void)
{
    enum { M = 256, K = 128, N = 192 };
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_graph_new(ctx);
    kf_node *a = kf_input(g, "a", KF_F32, 2, (int64_t[]){M, K});
    kf_node *b = kf_input(g, "b", KF_F32, 2, (int64_t[]){K, N});
    kf_node *bias = kf_input(g, "bias", KF_F32, 1, (int64_t[]){N});
    kf_node *y = kf_unary(g, "relu", kf_binary(g, "add", kf_matmul(g, a, b), bias));
    kf_node_set_name(y, "y");
    kf_output(g, y);
    kf_compiled *c = kf_compile(g, &(kf_options){.device = KF_DEVICE_CPU});
    if (!c) {
        fprintf(stderr, "%s\n", kf_errmsg(ctx));
        kf_graph_free(g);
        kf_ctx_free(ctx);
        return 2;
    }
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *BIAS = malloc(sizeof(float) * N);
    float *Y = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int i = 0; i < K * N; i++) B[i] = (float)((i * 53 % 89) - 44) / 44.0f;
    for (int i = 0; i < N; i++) BIAS[i] = (float)(i % 7) / 7.0f - 0.5f;
    const void *in[] = {A, B, BIAS};
    kf_run(c, in, (void *[]){Y});
    kf_interpret(g, in, (void *[]){R});
    double err = 0;
    for (int i = 0; i < M * N; i++) err = fmax(err, fabs((double)Y[i] - R[i]));
    printf("%s", kf_compiled_explain(c, 0));
    printf("y[0..3] = %g %g %g %g; max |kfuse - interpreter| = %.3g\n", Y[0], Y[1], Y[2], Y[3], err);
    free(A); free(B); free(BIAS); free(Y); free(R);
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
    return err < 1e-3 ? 0 : 1;
}
