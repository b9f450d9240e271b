/*
 * onnx_load.c - load-time benchmark of the ONNX front end (not a test):
 * writes a two-layer MLP with 10^7 f32 parameters (two Gemm weights of
 * 2000 x 2500 and their biases) to a temporary .onnx file, then times
 * kf_load_file + kf_graph_verify on it.  The target is under 0.2 s.
 *
 *     onnx_load_bench [DIR] [REPEATS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kfuse-impl.h"
#include "onnx_build.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    char path[4096];
    snprintf(path, sizeof path, "%s/kfuse_onnx_load_bench.onnx", dir);

    const int64_t I = 2000, H = 2500, O = 2000;
    float *w1 = malloc(sizeof(float) * (size_t)(I * H)), *w2 = malloc(sizeof(float) * (size_t)(H * O));
    float *b1 = malloc(sizeof(float) * (size_t)H), *b2 = malloc(sizeof(float) * (size_t)O);
    if (!w1 || !w2 || !b1 || !b2) return 1;
    for (int64_t i = 0; i < I * H; i++) w1[i] = (float)(i % 97) * 0.01f;
    for (int64_t i = 0; i < H * O; i++) w2[i] = (float)(i % 89) * 0.01f;
    for (int64_t i = 0; i < H; i++) b1[i] = 0.5f;
    for (int64_t i = 0; i < O; i++) b2[i] = 0.25f;
    int64_t params = I * H + H + H * O + O;

    ob_model *m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 2, (int64_t[]){8, I});
    ob_init(m, "w1", OB_FLOAT, 2, (int64_t[]){I, H}, w1, sizeof(float) * (size_t)(I * H));
    ob_init(m, "b1", OB_FLOAT, 1, (int64_t[]){H}, b1, sizeof(float) * (size_t)H);
    ob_init(m, "w2", OB_FLOAT, 2, (int64_t[]){H, O}, w2, sizeof(float) * (size_t)(H * O));
    ob_init(m, "b2", OB_FLOAT, 1, (int64_t[]){O}, b2, sizeof(float) * (size_t)O);
    ob_node(m, "Gemm", "fc1", "x,w1,b1", "h");
    ob_node(m, "Relu", "act", "h", "r");
    ob_node(m, "Gemm", "fc2", "r,w2,b2", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){8, O});
    ob_write(m, path);
    ob_free(m);

    double best = 1e9, total = 0;
    for (int r = 0; r < reps; r++) {
        kf_ctx *ctx = kf_ctx_new(NULL);
        double t0 = now();
        kf_graph *g = kf_load_file(ctx, path, 0, NULL);
        if (!g || kf_graph_verify(g)) {
            fprintf(stderr, "%s\n", kf_errmsg(ctx));
            return 1;
        }
        double t = now() - t0;
        kf_graph_free(g);
        kf_ctx_free(ctx);
        total += t;
        if (t < best) best = t;
    }
    printf("onnx load+verify: %lld parameters (%.1f MB): best %.4f s, mean %.4f s over %d runs "
           "(target < 0.2 s)\n", (long long)params, (double)params * 4 / 1e6, best, total / reps, reps);
    remove(path);
    free(w1), free(w2), free(b1), free(b2);
    return best < 0.2 ? 0 : 2;
}
