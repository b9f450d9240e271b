/*
 * test_onnx.c - the ONNX front end's own tests: models written by the test
 * itself (onnx_build.c), good and bad.  Bad ones (truncated, corrupt, not a
 * model, a cycle, unsupported op / attribute / dtype, mismatched shapes, a
 * missing initializer, raw data shorter than its shape, a nesting bomb,
 * dynamic dims) must each fail with a message that names the node and what
 * is wrong, and `kfuse run` must exit 2 on them.  Good ones check shape
 * folding, --shape binding, and `kfuse run --data` (exit 0, and 1 with the
 * first differing element on a mismatch).  Allocation failures are injected
 * into a load to check that every one is handled.
 *
 *     test_onnx KFUSE_BINARY WORKDIR
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kfuse-impl.h"
#include "onnx_build.h"

static const char *kfuse_bin, *work;
static int failures;

#define CHECK(c, ...)                                                                  \
    do {                                                                               \
        if (!(c)) {                                                                    \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #c);            \
            fprintf(stderr, __VA_ARGS__);                                              \
            fprintf(stderr, "\n");                                                     \
        }                                                                              \
    } while (0)

static char *path_of(const char *name)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 4096, "%s/%s", work, name);
    return p;
}

/* Loads path; expects failure with status st and every needle in the
 * message. */
static void expect_error(const char *path, kf_status st, int nbinds, const char *const *binds, ...)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_load_file(ctx, path, nbinds, binds);
    CHECK(!g, "%s loaded, but should not have", path);
    CHECK(kf_errcode(ctx) == st, "%s: status %d, want %d: %s", path, kf_errcode(ctx), st,
          kf_errmsg(ctx));
    va_list ap;
    va_start(ap, binds);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        CHECK(strstr(kf_errmsg(ctx), needle), "%s: message lacks \"%s\": %s", path, needle,
              kf_errmsg(ctx));
    va_end(ap);
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

/* Runs `kfuse ARGS`; returns its exit status, stderr+stdout in out. */
static int run_cli(char *out, size_t outsz, const char *args)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", kfuse_bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void expect_cli(int want, const char *needle, const char *fmtargs, ...)
{
    char args[8192], out[16384];
    va_list ap;
    va_start(ap, fmtargs);
    vsnprintf(args, sizeof args, fmtargs, ap);
    va_end(ap);
    int rc = run_cli(out, sizeof out, args);
    CHECK(rc == want, "kfuse %s: exit %d, want %d: %s", args, rc, want, out);
    if (needle) CHECK(strstr(out, needle), "kfuse %s: output lacks \"%s\": %s", args, needle, out);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)l + 1);
    *n = fread(b, 1, (size_t)l, f);
    fclose(f);
    return b;
}

static const float W16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* x[2,4] @ w[4,4] + b[4] -> relu: a small good model */
static ob_model *mlp(void)
{
    static const float b[4] = {0.5f, -100.f, 0.25f, 0};
    ob_model *m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_init(m, "w", OB_FLOAT, 2, (int64_t[]){4, 4}, W16, sizeof W16);
    ob_init(m, "b", OB_FLOAT, 1, (int64_t[]){4}, b, sizeof b);
    ob_node(m, "Gemm", "fc", "x,w,b", "h");
    ob_node(m, "Relu", "act", "h", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 4});
    return m;
}

static void test_bad_files(void)
{
    ob_model *m = mlp();
    ob_write(m, path_of("good.onnx"));
    ob_free(m);
    size_t n = 0;
    unsigned char *good = slurp(path_of("good.onnx"), &n);
    CHECK(good && n > 40, "cannot read back good.onnx");

    /* truncated: every prefix is refused or loads, never crashes */
    ob_write_bytes(path_of("truncated.onnx"), good, n - 7);
    expect_error(path_of("truncated.onnx"), KF_ERR_INVALID, 0, NULL, "truncated or corrupt",
                 "runs past the end", NULL);
    for (size_t k = 1; k < n; k += 3) {
        ob_write_bytes(path_of("prefix.onnx"), good, k);
        kf_ctx *ctx = kf_ctx_new(NULL);
        kf_graph *g = kf_load_file(ctx, path_of("prefix.onnx"), 0, NULL);
        CHECK(g || kf_errmsg(ctx)[0], "prefix %zu: no graph and no message", k);
        kf_graph_free(g);
        kf_ctx_free(ctx);
    }
    /* corrupt: flipped bytes, anywhere, must not crash */
    for (size_t k = 0; k < n; k++) {
        unsigned char *b = malloc(n);
        memcpy(b, good, n);
        b[k] ^= 0xa5;
        ob_write_bytes(path_of("flip.onnx"), b, n);
        free(b);
        kf_ctx *ctx = kf_ctx_new(NULL);
        kf_graph *g = kf_load_file(ctx, path_of("flip.onnx"), 0, NULL);
        CHECK(g || kf_errmsg(ctx)[0], "flip %zu: no graph and no message", k);
        kf_graph_free(g);
        kf_ctx_free(ctx);
    }
    free(good);
    /* wrong magic: a text file, a zip header */
    const char *text = "input a : f32[2]\noutput a\n";
    ob_write_bytes(path_of("text.onnx"), text, strlen(text));
    expect_error(path_of("text.onnx"), KF_ERR_INVALID, 0, NULL, "not an ONNX model", NULL);
    ob_write_bytes(path_of("zip.onnx"), "PK\x03\x04\x14\x00\x00\x00\x08\x00", 10);
    expect_error(path_of("zip.onnx"), KF_ERR_INVALID, 0, NULL, "not an ONNX model", NULL);
    ob_write_bytes(path_of("empty.onnx"), "", 0);
    expect_error(path_of("empty.onnx"), KF_ERR_INVALID, 0, NULL, "empty", NULL);
    expect_error(path_of("missing.onnx"), KF_ERR_IO, 0, NULL, "cannot open", NULL);

    /* a nesting bomb: TypeProto.sequence_type.elem_type ... 100000 deep */
    size_t depth = 100000, cap = depth * 12 + 64, len = 0;
    unsigned char *buf = malloc(cap), *tmp = malloc(cap);
    /* built inside out: each level wraps the previous bytes */
    for (size_t d = 0; d < depth; d++) {
        size_t l = len, o = 0;
        tmp[o++] = (d % 2) ? 0x22 : 0x0a; /* TypeProto.sequence_type=4 / Sequence.elem_type=1 */
        do {
            tmp[o++] = (unsigned char)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
            l >>= 7;
        } while (l);
        memcpy(tmp + o, buf, len);
        len += o;
        memcpy(buf, tmp, len);
    }
    /* ValueInfoProto.type=2 { ... } inside GraphProto.input=11 inside ModelProto.graph=7 */
    unsigned char hdr[64];
    size_t wrap[3] = {0x12, 0x5a, 0x3a}, total = len;
    for (int w = 0; w < 3; w++) {
        size_t o = 0, l = total;
        hdr[o++] = (unsigned char)wrap[w];
        do {
            hdr[o++] = (unsigned char)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
            l >>= 7;
        } while (l);
        memmove(buf + o, buf, total);
        memcpy(buf, hdr, o);
        total += o;
    }
    ob_write_bytes(path_of("nested.onnx"), buf, total);
    free(buf);
    free(tmp);
    expect_error(path_of("nested.onnx"), KF_ERR_INVALID, 0, NULL, "nested more than", NULL);
    expect_cli(2, "nested more than", "run '%s'", path_of("nested.onnx"));
}

static void test_bad_graphs(void)
{
    ob_model *m;
    /* a cycle */
    m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 1, (int64_t[]){4});
    ob_node(m, "Add", "first", "x,b", "a");
    ob_node(m, "Relu", "loop_back", "a", "b");
    ob_output(m, "b", OB_FLOAT, 1, (int64_t[]){4});
    ob_write(m, path_of("cycle.onnx"));
    ob_free(m);
    expect_error(path_of("cycle.onnx"), KF_ERR_INVALID, 0, NULL, "cycle", "(Add)", "'first'", NULL);
    expect_cli(2, "cycle", "run '%s'", path_of("cycle.onnx"));

    /* an op kfuse does not have */
    m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 4, (int64_t[]){1, 1, 4, 4});
    ob_init(m, "k", OB_FLOAT, 4, (int64_t[]){1, 1, 2, 2}, W16, 16);
    ob_node(m, "Conv", "conv1", "x,k", "y");
    ob_node(m, "Hardmax", "hm", "y", "z");
    ob_output(m, "z", OB_FLOAT, -1, NULL);
    ob_write(m, path_of("unsupported_op.onnx"));
    ob_free(m);
    expect_error(path_of("unsupported_op.onnx"), KF_ERR_UNSUPPORTED, 0, NULL, "node 'conv1' (Conv)",
                 "not supported", "Conv, Hardmax", NULL);
    expect_cli(2, "node 'conv1' (Conv)", "run '%s'", path_of("unsupported_op.onnx"));

    /* an attribute kfuse does not know, and a value it does not support */
    m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 1, (int64_t[]){4});
    Onnx__NodeProto *nd = ob_node(m, "Relu", "r0", "x", "y");
    ob_attr_i(m, nd, "inplace", 1);
    ob_output(m, "y", OB_FLOAT, 1, (int64_t[]){4});
    ob_write(m, path_of("unsupported_attr.onnx"));
    ob_free(m);
    expect_error(path_of("unsupported_attr.onnx"), KF_ERR_UNSUPPORTED, 0, NULL, "node 'r0' (Relu)",
                 "attribute 'inplace'", NULL);
    m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 1, (int64_t[]){4});
    nd = ob_node(m, "Gelu", "g0", "x", "y");
    ob_attr_s(m, nd, "approximate", "erf-ish");
    ob_output(m, "y", OB_FLOAT, 1, (int64_t[]){4});
    ob_write(m, path_of("unsupported_attr_value.onnx"));
    ob_free(m);
    expect_error(path_of("unsupported_attr_value.onnx"), KF_ERR_UNSUPPORTED, 0, NULL,
                 "node 'g0' (Gelu)", "erf-ish", NULL);

    /* unsupported dtypes: a graph input, an initializer, a Cast */
    m = ob_new(17);
    ob_input(m, "x", 4 /* UINT16 */, 1, (int64_t[]){4});
    ob_node(m, "Relu", "r", "x", "y");
    ob_output(m, "y", 4, 1, (int64_t[]){4});
    ob_write(m, path_of("dtype_input.onnx"));
    ob_free(m);
    expect_error(path_of("dtype_input.onnx"), KF_ERR_UNSUPPORTED, 0, NULL, "'x'", "UINT16", NULL);
    m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 1, (int64_t[]){2});
    ob_init(m, "c", 14 /* COMPLEX64 */, 1, (int64_t[]){2}, W16, 16);
    ob_node(m, "Add", "add_c", "x,c", "y");
    ob_output(m, "y", OB_FLOAT, 1, (int64_t[]){2});
    ob_write(m, path_of("dtype_init.onnx"));
    ob_free(m);
    expect_error(path_of("dtype_init.onnx"), KF_ERR_UNSUPPORTED, 0, NULL, "node 'add_c' (Add)",
                 "'c'", "COMPLEX64", NULL);
    m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 1, (int64_t[]){2});
    nd = ob_node(m, "Cast", "to_str", "x", "y");
    ob_attr_i(m, nd, "to", OB_STRING);
    ob_output(m, "y", OB_STRING, 1, (int64_t[]){2});
    ob_write(m, path_of("dtype_cast.onnx"));
    ob_free(m);
    expect_error(path_of("dtype_cast.onnx"), KF_ERR_UNSUPPORTED, 0, NULL, "node 'to_str' (Cast)",
                 "STRING", NULL);

    /* mismatched shapes */
    m = ob_new(17);
    ob_input(m, "a", OB_FLOAT, 2, (int64_t[]){2, 3});
    ob_input(m, "b", OB_FLOAT, 2, (int64_t[]){4, 5});
    ob_node(m, "Add", "add0", "a,b", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 3});
    ob_write(m, path_of("shapes.onnx"));
    ob_free(m);
    expect_error(path_of("shapes.onnx"), KF_ERR_INVALID, 0, NULL, "node 'add0' (Add)", "[2, 3]",
                 "[4, 5]", "broadcast", NULL);
    expect_cli(2, "node 'add0' (Add)", "run '%s'", path_of("shapes.onnx"));
    m = ob_new(17);
    ob_input(m, "a", OB_FLOAT, 2, (int64_t[]){2, 3});
    ob_init(m, "w", OB_FLOAT, 2, (int64_t[]){4, 4}, W16, sizeof W16);
    ob_node(m, "MatMul", "mm", "a,w", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_write(m, path_of("matmul_inner.onnx"));
    ob_free(m);
    expect_error(path_of("matmul_inner.onnx"), KF_ERR_INVALID, 0, NULL, "node 'mm' (MatMul)",
                 "inner dimensions", NULL);
    /* a declared output shape the graph does not compute */
    m = ob_new(17);
    ob_input(m, "a", OB_FLOAT, 2, (int64_t[]){2, 3});
    ob_node(m, "Relu", "r", "a", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){3, 2});
    ob_write(m, path_of("declared_shape.onnx"));
    ob_free(m);
    expect_error(path_of("declared_shape.onnx"), KF_ERR_INVALID, 0, NULL, "node 'r' (Relu)",
                 "declared with shape [3, 2]", NULL);

    /* a missing initializer */
    m = ob_new(17);
    ob_input(m, "a", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_node(m, "MatMul", "mm", "a,w", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_write(m, path_of("missing_init.onnx"));
    ob_free(m);
    expect_error(path_of("missing_init.onnx"), KF_ERR_INVALID, 0, NULL, "node 'mm' (MatMul)",
                 "'w' is not defined", NULL);
    expect_cli(2, "missing initializer", "run '%s'", path_of("missing_init.onnx"));

    /* raw data shorter than the shape, and a shape far beyond the file */
    m = ob_new(17);
    ob_input(m, "a", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_init(m, "w", OB_FLOAT, 2, (int64_t[]){4, 4}, W16, 12);
    ob_node(m, "MatMul", "mm", "a,w", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_write(m, path_of("short_raw.onnx"));
    ob_free(m);
    expect_error(path_of("short_raw.onnx"), KF_ERR_INVALID, 0, NULL, "node 'mm' (MatMul)",
                 "'w'", "raw data has 12 bytes", "needs 64", NULL);
    expect_cli(2, "raw data has 12 bytes", "run '%s'", path_of("short_raw.onnx"));
    m = ob_new(17);
    ob_input(m, "a", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_init(m, "w", OB_FLOAT, 2, (int64_t[]){INT64_C(1) << 20, INT64_C(1) << 19}, W16, 64);
    ob_node(m, "Add", "huge", "a,w", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_write(m, path_of("huge_shape.onnx"));
    ob_free(m);
    expect_error(path_of("huge_shape.onnx"), KF_ERR_INVALID, 0, NULL, "node 'huge' (Add)",
                 "raw data has 64 bytes", NULL);

    /* a Reshape that cannot be */
    m = ob_new(17);
    ob_input(m, "a", OB_FLOAT, 2, (int64_t[]){2, 4});
    ob_init(m, "s", OB_INT64, 1, (int64_t[]){2}, (int64_t[]){3, -1}, 16);
    ob_node(m, "Reshape", "rs", "a,s", "y");
    ob_output(m, "y", OB_FLOAT, -1, NULL);
    ob_write(m, path_of("reshape.onnx"));
    ob_free(m);
    expect_error(path_of("reshape.onnx"), KF_ERR_INVALID, 0, NULL, "node 'rs' (Reshape)",
                 "cannot infer", NULL);

    /* dynamic dims: an error naming input and dim, unless bound */
    m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 2, (int64_t[]){-1, 4});
    ob_node(m, "Relu", "r", "x", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){-1, 4});
    ob_write(m, path_of("dynamic.onnx"));
    ob_free(m);
    expect_error(path_of("dynamic.onnx"), KF_ERR_UNSUPPORTED, 0, NULL, "'x'", "dimension 0 ('N')",
                 "--shape", NULL);
    expect_cli(2, "dimension 0", "run '%s'", path_of("dynamic.onnx"));
    expect_error(path_of("dynamic.onnx"), KF_ERR_INVALID, 1, (const char *const[]){"x=3,5"},
                 "dimension 1 is 4", NULL);
    expect_error(path_of("dynamic.onnx"), KF_ERR_INVALID, 1, (const char *const[]){"z=3,4"},
                 "names no input", NULL);
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_load_file(ctx, path_of("dynamic.onnx"), 1, (const char *const[]){"x=3,4"});
    CHECK(g && kf_node_shape(kf_graph_input(g, 0))[0] == 3, "bound load: %s", kf_errmsg(ctx));
    kf_graph_free(g);
    kf_ctx_free(ctx);
    expect_cli(0, NULL, "run '%s' --shape x=3,4", path_of("dynamic.onnx"));
}

/* Shape -> Gather -> Concat -> Reshape folds away at load time. */
static void test_shape_folding(void)
{
    ob_model *m = ob_new(17);
    ob_input(m, "x", OB_FLOAT, 3, (int64_t[]){2, 3, 4});
    ob_init(m, "zero", OB_INT64, 1, (int64_t[]){1}, (int64_t[]){0}, 8);
    ob_init(m, "minus1", OB_INT64, 1, (int64_t[]){1}, (int64_t[]){-1}, 8);
    ob_node(m, "Shape", "shape", "x", "s");
    ob_node(m, "Gather", "batch", "s,zero", "b");
    Onnx__NodeProto *c = ob_node(m, "Concat", "cat", "b,minus1", "target");
    ob_attr_i(m, c, "axis", 0);
    ob_node(m, "Reshape", "flat", "x,target", "y");
    ob_output(m, "y", OB_FLOAT, 2, (int64_t[]){2, 12});
    ob_write(m, path_of("shape_chain.onnx"));
    ob_free(m);
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_graph *g = kf_load_file(ctx, path_of("shape_chain.onnx"), 0, NULL);
    CHECK(g, "shape chain: %s", kf_errmsg(ctx));
    if (g) {
        kf_node *y = kf_graph_output(g, 0);
        CHECK(kf_node_ndim(y) == 2 && kf_node_shape(y)[1] == 12, "shape chain: wrong shape");
        for (int i = 0; i < g->nnodes; i++)
            CHECK(g->nodes[i]->dtype != KF_I64, "shape chain: an i64 node is left: %s",
                  kf_ops[g->nodes[i]->op].name);
    }
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

/* `kfuse run --data`: inputs from input_0.pb, comparison with output_0.pb. */
static void test_data_dir(void)
{
    ob_model *m = mlp();
    ob_write(m, path_of("mlp.onnx"));
    ob_free(m);
    mkdir(path_of("mlp_data"), 0777);
    float x[8] = {1, -1, 0.5f, 2, -3, 0.25f, 1, 0};
    const float b[4] = {0.5f, -100.f, 0.25f, 0};
    float y[8];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            float s = b[j];
            for (int k = 0; k < 4; k++) s += x[i * 4 + k] * W16[k * 4 + j];
            y[i * 4 + j] = s > 0 ? s : 0;
        }
    ob_write_tensor(path_of("mlp_data/input_0.pb"), "x", OB_FLOAT, 2, (int64_t[]){2, 4}, x, sizeof x);
    ob_write_tensor(path_of("mlp_data/output_0.pb"), "y", OB_FLOAT, 2, (int64_t[]){2, 4}, y, sizeof y);
    expect_cli(0, NULL, "run '%s' --data '%s'", path_of("mlp.onnx"), path_of("mlp_data"));
    y[5] += 1.0f;
    ob_write_tensor(path_of("mlp_data/output_0.pb"), "y", OB_FLOAT, 2, (int64_t[]){2, 4}, y, sizeof y);
    expect_cli(1, "5", "run '%s' --data '%s'", path_of("mlp.onnx"), path_of("mlp_data"));
    /* a truncated input file is bad input */
    ob_write_bytes(path_of("mlp_data/input_0.pb"), "\x08\x02\x08", 3);
    expect_cli(2, NULL, "run '%s' --data '%s'", path_of("mlp.onnx"), path_of("mlp_data"));
    /* explain: the Gemm's bias and relu are the matmul's epilogue */
    expect_cli(0, "template", "explain '%s'", path_of("mlp.onnx"));
}

/* ---- allocation failures ------------------------------------------------- */

static long fail_after;
static void *f_alloc(void *ud, size_t n)
{
    (void)ud;
    return fail_after-- > 0 ? malloc(n) : NULL;
}
static void *f_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    return fail_after-- > 0 ? realloc(p, n) : NULL;
}
static void f_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static void test_alloc_failures(void)
{
    kf_allocator al = {f_alloc, f_realloc, f_free, NULL};
    int ok = 0;
    for (long k = 0; k < 400 && !ok; k++) {
        fail_after = 1 << 30;
        kf_ctx *ctx = kf_ctx_new(&al);
        if (!ctx) continue;
        fail_after = k;
        kf_graph *g = kf_load_file(ctx, path_of("shape_chain.onnx"), 0, NULL);
        if (g) ok = 1;
        else CHECK(kf_errcode(ctx) == KF_ERR_NOMEM, "failure %ld: status %d: %s", k,
                   kf_errcode(ctx), kf_errmsg(ctx));
        fail_after = 1 << 30;
        kf_graph_free(g);
        kf_ctx_free(ctx);
    }
    CHECK(ok, "the load never succeeded under fault injection");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_onnx KFUSE_BINARY WORKDIR\n");
        return 2;
    }
    kfuse_bin = argv[1];
    work = argv[2];
    mkdir(work, 0777);
    test_bad_files();
    test_bad_graphs();
    test_shape_folding();
    test_data_dir();
    test_alloc_failures();
    if (failures) fprintf(stderr, "test_onnx: %d failures\n", failures);
    else printf("test_onnx: ok\n");
    return failures ? 1 : 0;
}
