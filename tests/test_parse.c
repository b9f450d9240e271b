/*
 * test_parse.c - the .kf parser: graphs parsed from strings are checked
 * through the public API (inputs, outputs, names, dtypes, shapes) and, for
 * attributes, the node itself; errors are checked for their place; and
 * mutated inputs are thrown at it to show that nothing crashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse-impl.h"

static int failures;

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static kf_graph *parse(kf_ctx *ctx, const char *text)
{
    kf_clear_error(ctx);
    kf_graph *g = kf_parse_kf(ctx, "t.kf", text, strlen(text));
    if (!g) fprintf(stderr, "unexpected parse error: %s\n", kf_errmsg(ctx));
    return g;
}

static bool shape_is(const kf_node *n, int nd, const int64_t *s)
{
    if (kf_node_ndim(n) != nd) return false;
    for (int i = 0; i < nd; i++)
        if (kf_node_shape(n)[i] != s[i]) return false;
    return true;
}
#define SHAPE(n, ...) \
    shape_is(n, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

/* The output named name. */
static kf_node *out_named(kf_graph *g, const char *name)
{
    for (int i = 0; i < kf_graph_num_outputs(g); i++) {
        kf_node *o = kf_graph_output(g, i);
        if (kf_node_name(o) && strcmp(kf_node_name(o), name) == 0) return o;
    }
    return NULL;
}

static void test_basic(kf_ctx *ctx)
{
    kf_graph *g = parse(ctx,
                        "# the DESIGN.md example\n"
                        "input a : f16[64, 32]\n"
                        "input w : i8[32, 16]\n"
                        "input s : f16[16]\n"
                        "b = mul(cast(w, dtype=f16), s)     # nested\n"
                        "c = matmul(a, b)\n"
                        "y = relu(add(c, 1.0))\n"
                        "output y, b\n");
    CHECK(g);
    if (!g) return;
    CHECK(kf_graph_num_inputs(g) == 3);
    CHECK(kf_graph_num_outputs(g) == 2);
    CHECK(strcmp(kf_node_name(kf_graph_input(g, 1)), "w") == 0);
    CHECK(kf_node_dtype(kf_graph_input(g, 1)) == KF_I8);
    kf_node *y = kf_graph_output(g, 0);
    CHECK(strcmp(kf_node_name(y), "y") == 0);
    CHECK(kf_node_dtype(y) == KF_F16);
    CHECK(SHAPE(y, 64, 16));
    /* the literal took f16 from c */
    CHECK(y->op == KF_OP_RELU && y->in[0]->op == KF_OP_ADD);
    CHECK(y->in[0]->in[1]->op == KF_OP_SCALAR && y->in[0]->in[1]->dtype == KF_F16);
    CHECK(y->in[0]->in[1]->scalar == 1.0);
    kf_node *b = kf_graph_output(g, 1);
    CHECK(strcmp(kf_node_name(b), "b") == 0 && kf_node_dtype(b) == KF_F16 && SHAPE(b, 32, 16));
    /* the nested cast has no name; the place is the op's */
    CHECK(b->in[0]->op == KF_OP_CAST && kf_node_name(b->in[0]) == NULL);
    CHECK(b->in[0]->line == 5 && b->in[0]->col == 9);
    CHECK(b->line == 5 && b->col == 5);
    kf_graph_free(g);
}

static void test_attrs(kf_ctx *ctx)
{
    kf_graph *g = parse(ctx,
                        "input x : f32[2, 3, 4]\n"
                        "s1 = sum(x, axis=1)\n"
                        "s2 = sum(x, [0, 2], true)\n"
                        "s3 = mean(x, axes=[-1], keepdims=1)\n"
                        "s4 = max(x)\n"
                        "t = transpose(x, perm=[2, 0, 1])\n"
                        "t2 = transpose(x)\n"
                        "sl = slice(x, 2, 1, -1)\n"
                        "sl2 = slice(x, axis=-1, start=3, end=0, step=-2)\n"
                        "sl3 = slice(x, axis=0, start=1)\n"
                        "r = reshape(x, [6, -1])\n"
                        "e = expand(s1, shape=[5, 2, 4])\n"
                        "k = concat(x, x, x, axis=1)\n"
                        "sm = softmax(x, -1)\n"
                        "c = cast(x, i32)\n"
                        "output s1, s2, s3, s4, t, t2, sl, sl2, sl3, r, e, k, sm, c\n");
    CHECK(g);
    if (!g) return;
    kf_node *n;
    CHECK((n = out_named(g, "s1")) && SHAPE(n, 2, 4) && n->attr.naxes == 1 && n->attr.axes[0] == 1);
    CHECK((n = out_named(g, "s2")) && SHAPE(n, 1, 3, 1) && n->attr.keepdims == 1 && n->attr.naxes == 2);
    CHECK((n = out_named(g, "s3")) && SHAPE(n, 2, 3, 1) && n->op == KF_OP_MEAN);
    CHECK((n = out_named(g, "s4")) && kf_node_ndim(n) == 0);
    /* views are copied to be outputs; the copy reads the view */
    CHECK((n = out_named(g, "t")) && SHAPE(n, 4, 2, 3) && n->in[0]->op == KF_OP_TRANSPOSE);
    CHECK(n && n->in[0]->attr.perm[0] == 2 && n->in[0]->attr.perm[1] == 0 && n->in[0]->attr.perm[2] == 1);
    CHECK((n = out_named(g, "t2")) && SHAPE(n, 4, 3, 2));
    CHECK((n = out_named(g, "sl")) && SHAPE(n, 2, 3, 2));
    CHECK(n && n->in[0]->attr.axes[0] == 2 && n->in[0]->attr.start == 1 && n->in[0]->attr.step == 1);
    CHECK((n = out_named(g, "sl2")) && SHAPE(n, 2, 3, 2));
    CHECK(n && n->in[0]->attr.step == -2 && n->in[0]->attr.start == 3);
    CHECK((n = out_named(g, "sl3")) && SHAPE(n, 1, 3, 4)); /* end defaults to the end */
    CHECK((n = out_named(g, "r")) && SHAPE(n, 6, 4));
    CHECK((n = out_named(g, "e")) && SHAPE(n, 5, 2, 4));
    CHECK((n = out_named(g, "k")) && SHAPE(n, 2, 9, 4));
    CHECK((n = out_named(g, "sm")) && SHAPE(n, 2, 3, 4) && kf_node_dtype(n) == KF_F32);
    CHECK((n = out_named(g, "c")) && kf_node_dtype(n) == KF_I32);
    kf_graph_free(g);
}

static void test_multi_and_names(kf_ctx *ctx)
{
    kf_graph *g = parse(ctx,
                        "input x : bf16[8, 32]\n"
                        "input w : bf16[32]\n"
                        "input b : bf16[32]\n"
                        "y, mean, rstd = layer_norm(x, w, b, axis=-1, eps=1e-6)\n"
                        "z = layer_norm(x, w)              # one name: the first result\n"
                        "q = rms_norm(x, w, -1, 1e-5)\n"
                        "alias = x\n"
                        "h = add(relu(neg(z)), -inf)\n"
                        "m = where(gt(x, 0), x, 0.5e0)\n"
                        "output y, mean, rstd, alias, q, h, m\n");
    CHECK(g);
    if (!g) return;
    CHECK(kf_graph_num_outputs(g) == 7);
    kf_node *n;
    CHECK((n = out_named(g, "y")) && SHAPE(n, 8, 32) && kf_node_dtype(n) == KF_BF16);
    CHECK((n = out_named(g, "mean")) && SHAPE(n, 8, 1));
    CHECK((n = out_named(g, "rstd")) && SHAPE(n, 8, 1) && n->op == KF_OP_RSQRT);
    /* an output that is an input is copied and named as written */
    CHECK((n = out_named(g, "alias")) && n->op == KF_OP_COPY && n->in[0] == kf_graph_input(g, 0));
    CHECK(strcmp(kf_node_name(kf_graph_input(g, 0)), "x") == 0);
    CHECK((n = out_named(g, "q")) && SHAPE(n, 8, 32));
    CHECK((n = out_named(g, "h")) && kf_node_dtype(n) == KF_BF16);
    CHECK(n && n->in[1]->op == KF_OP_SCALAR && n->in[1]->scalar < -1e308);
    CHECK((n = out_named(g, "m")) && kf_node_dtype(n) == KF_BF16 && n->in[2]->scalar == 0.5);
    kf_graph_free(g);

    /* true and false are literals */
    g = parse(ctx, "input e : bool[3]\nt = logical_and(e, true)\nf = where(e, false, true)\noutput t, f\n");
    CHECK(g && kf_node_dtype(kf_graph_output(g, 0)) == KF_BOOL && kf_node_dtype(kf_graph_output(g, 1)) == KF_F32);
    kf_graph_free(g);

    /* scalars, 0-d inputs, CRLF line ends, tabs, no final newline */
    g = parse(ctx, "input s : f64[]\r\n\tt = mul(s, 2)\r\noutput t");
    CHECK(g && kf_node_ndim(kf_graph_output(g, 0)) == 0 && kf_node_dtype(kf_graph_output(g, 0)) == KF_F64);
    kf_graph_free(g);
}

/* The error's "t.kf:LINE:COL: error: " prefix and a piece of its text. */
static void expect_err(kf_ctx *ctx, const char *text, size_t len, int line, int col, const char *sub)
{
    kf_clear_error(ctx);
    kf_graph *g = kf_parse_kf(ctx, "t.kf", text, len);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "t.kf:%d:%d: error: ", line, col);
    const char *m = kf_errmsg(ctx);
    bool ok = !g && kf_errcode(ctx) == KF_ERR_INVALID && strncmp(m, prefix, strlen(prefix)) == 0 &&
              strstr(m, sub);
    if (!ok) {
        fprintf(stderr, "expected \"%s...%s\", got \"%s\" for:\n%.*s\n", prefix, sub, m, (int)len, text);
        failures++;
    }
    kf_graph_free(g);
}
#define EXPECT_ERR(text, line, col, sub) expect_err(ctx, text, strlen(text), line, col, sub)

static void test_errors(kf_ctx *ctx)
{
    EXPECT_ERR("input a : f32[2]\nb = relu(a\noutput b\n", 2, 11, "')'");
    EXPECT_ERR("input a : f32[2]\nb = a(\noutput b\n", 2, 5, "unknown op 'a'");
    EXPECT_ERR("input a : f32[2]\nb = relu(a, a)\noutput b\n", 2, 13, "too many arguments");
    EXPECT_ERR("input a : f32[2]\n  b = add(a, c)\noutput b\n", 2, 14, "undefined name 'c'");
    EXPECT_ERR("input a : f32[2]\ninput b : f32[3]\nc = mul(a, b)\noutput c\n", 3, 5, "broadcast");
    EXPECT_ERR("input a : f32[2]\noutput a\ninput a : f32[2]\n", 3, 7, "already defined");
    EXPECT_ERR("input a : f32[2]\nb = neg(a)\n\n", 4, 1, "output");
    EXPECT_ERR("input a : f32[2]\nb = sum(a, 1.5)\noutput b\n", 2, 12, "axis");
    EXPECT_ERR("input a : f32[2]\nb = sum(a, dtype=f32)\noutput b\n", 2, 12, "no attribute 'dtype'");
    EXPECT_ERR("input a : f32[2]\nb = sum(a, bogus=1)\noutput b\n", 2, 12, "unknown attribute");
    EXPECT_ERR("input a : f32[2]\nb = sum(axis=0, a)\noutput b\n", 2, 17, "positional");
    EXPECT_ERR("input a : q7[2]\n", 1, 11, "unknown dtype");
    EXPECT_ERR("input a : f32[2.0]\n", 1, 15, "non-negative integer");
    EXPECT_ERR("input a : f32[1,1,1,1,1,1,1,1,1]\n", 1, 31, "too many dimensions");
    EXPECT_ERR("input a : f32[2]\nb, c = a\noutput b\n", 2, 8, "one value");
    EXPECT_ERR("input a : f32[2]\nb, true = relu(a)\noutput b\n", 2, 4, "literal");
    EXPECT_ERR("", 1, 1, "empty");
    EXPECT_ERR("\n\n# nothing\n", 4, 1, "empty");
    EXPECT_ERR("input a : f32[2]\nb = relu(a)\noutput b c\n", 3, 10, "','");
    EXPECT_ERR("input a : f32[2]\nb = relu(a,)\noutput b\n", 2, 12, "argument");
    {
        static const char nul[] = "input a : f32[2]\nb = re\0lu(a)\noutput b\n";
        expect_err(ctx, nul, sizeof nul - 1, 2, 7, "byte 0x00");
    }
    /* deep nesting: an error, not a stack overflow */
    {
        size_t n = 100000;
        char *s = malloc(n * 6 + 64);
        size_t o = (size_t)sprintf(s, "input a : f32[2]\nb = ");
        for (size_t i = 0; i < n; i++) o += (size_t)sprintf(s + o, "relu(");
        s[o] = 0;
        expect_err(ctx, s, o, 2, 5 + 5 * 256, "nested too deeply");
        free(s);
    }
    /* a very long line of garbage and a very long name */
    {
        size_t n = 1 << 20;
        char *s = malloc(n + 1);
        memset(s, 'x', n);
        expect_err(ctx, s, n, 1, 1, "too long");
        memset(s, '(', n);
        expect_err(ctx, s, n, 1, 1, "expected");
        free(s);
    }
}

/* Mutations of a valid file: each must parse or fail with a message. */
static void test_fuzz(kf_ctx *ctx)
{
    static const char base[] =
        "input a : f16[4, 8]\ninput w : i8[8, 4]\n"
        "b = mul(cast(w, dtype=f16), 2.5)\nc = matmul(a, b)\n"
        "y, m, r = layer_norm(relu(add(c, 1.0)), sum(c, axis=[0], keepdims=true), axis=-1)\n"
        "z = transpose(slice(y, 1, 0, 3), [1, 0])\noutput y, m, z\n";
    static const char alphabet[] = "()[],=:#\n -+.0123456789eEaxinfmul\t\x01\x00\xff";
    uint64_t st = 12345;
    char buf[sizeof base + 64];
    int parsed = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = sizeof base - 1;
        memcpy(buf, base, len);
        int nmut = 1 + (int)(st % 4);
        for (int k = 0; k < nmut; k++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(st >> 33) % len;
            char ch = alphabet[(st >> 17) % (sizeof alphabet - 1)];
            switch ((st >> 8) % 3) {
            case 0: buf[pos] = ch; break;
            case 1: /* delete */
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
                break;
            default: /* insert */
                if (len + 1 < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = ch;
                    len++;
                }
            }
        }
        kf_clear_error(ctx);
        kf_graph *g = kf_parse_kf(ctx, "fuzz.kf", buf, len);
        if (g) parsed++;
        else if (strncmp(kf_errmsg(ctx), "fuzz.kf:", 8) != 0 || kf_errcode(ctx) != KF_ERR_INVALID) {
            fprintf(stderr, "fuzz: a failure without a place: %s\n", kf_errmsg(ctx));
            failures++;
        }
        kf_graph_free(g);
    }
    CHECK(parsed > 0);
}

static void test_load(kf_ctx *ctx)
{
    kf_clear_error(ctx);
    CHECK(!kf_load_file(ctx, "/nonexistent/dir/x.kf", 0, NULL));
    CHECK(kf_errcode(ctx) == KF_ERR_IO);
    CHECK(strcmp(kf_errmsg(ctx), "/nonexistent/dir/x.kf: error: cannot read: No such file or directory") == 0);
    kf_clear_error(ctx);
    CHECK(!kf_load_file(ctx, ".", 0, NULL));
    CHECK(kf_errcode(ctx) == KF_ERR_IO && strstr(kf_errmsg(ctx), ".: error: cannot read: "));
}

/* An allocator that fails from the Nth call on: every failure point of a
 * parse must give NULL and KF_ERR_NOMEM, never a crash or a leak. */
static long alloc_left;
static void *fail_alloc(void *ud, size_t n)
{
    (void)ud;
    return alloc_left-- > 0 ? malloc(n) : NULL;
}
static void *fail_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    return alloc_left-- > 0 ? realloc(p, n) : NULL;
}
static void plain_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static void test_alloc_failure(void)
{
    static const char text[] =
        "input a : f16[4, 8]\ninput w : i8[8, 4]\n"
        "b = mul(cast(w, dtype=f16), 2.5)\nc = matmul(a, b)\n"
        "y, m, r = layer_norm(relu(add(c, 1.0)), sum(c, axis=[0], keepdims=true), axis=-1)\n"
        "output y, m, r, a\n";
    kf_allocator al = {fail_alloc, fail_realloc, plain_free, NULL};
    for (long n = 0;; n++) {
        alloc_left = 1000000;
        kf_ctx *ctx = kf_ctx_new(&al);
        alloc_left = n;
        kf_graph *g = kf_parse_kf(ctx, "t.kf", text, sizeof text - 1);
        bool done = g != NULL;
        if (!g && kf_errcode(ctx) != KF_ERR_NOMEM) {
            fprintf(stderr, "alloc failure %ld: status %d: %s\n", n, kf_errcode(ctx), kf_errmsg(ctx));
            failures++;
        }
        kf_graph_free(g);
        kf_ctx_free(ctx);
        if (done || n > 10000) break;
    }
}

int main(void)
{
    kf_ctx *ctx = kf_ctx_new(NULL);
    test_basic(ctx);
    test_attrs(ctx);
    test_multi_and_names(ctx);
    test_errors(ctx);
    test_fuzz(ctx);
    test_load(ctx);
    kf_ctx_free(ctx);
    test_alloc_failure();
    if (failures) fprintf(stderr, "test_parse: %d failure(s)\n", failures);
    else printf("test_parse: ok\n");
    return failures ? 1 : 0;
}
