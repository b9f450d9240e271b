/*
 * test_backend.c - the external-template lifecycle, through a mock backend
 * that records the fusion spec it receives, generates a plain kernel that
 * calls the hooks, and can be told to refuse any part or to misbehave.
 * Every case checks the kernel count and the numbers against the
 * interpreter; spec cases check exactly what the backend was handed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse.h"
#include "kfuse_backend.h"
#include "kft.h"

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            failures++;                                                                            \
            printf("  FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);                                  \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* ---- the mock ---- */

typedef struct mock {
    uint32_t refuse_epi, refuse_pro;
    int misbehave; /* 1 bad source, 2 null args, 3 missing buffer, 4 fuse fails */
    /* the last spec, recorded */
    int calls;
    char op[32];
    int nepi, npro, nbuf;
    int epi_target[8], epi_nbuffers[8], epi_nstores[8], epi_has_code[8];
    int pro_target[8], pro_nsources[8], pro_expr_kind[8];
    char pro_names[8][64], epi_names[8][64];
    char pro_expr_op[8][32];
    kf_buffer_role role[32];
    int of[32];
    char bufname[32][64];
    int input_buffer[8], output_buffer[8];
    char src[65536];
    int args[32];
} mock;

static int mock_implements(void *ctx, const kf_op_query *q)
{
    (void)ctx;
    if (q->device != KF_DEVICE_CPU) return 0;
    int last = q->inputs[0].ndim - 1;
    if (q->attrs->axes[0] != last) return 0;
    return !strcmp(q->op, "softmax") || !strcmp(q->op, "layer_norm") || !strcmp(q->op, "rms_norm");
}

typedef struct emitter {
    char *s;
    size_t n, cap;
} emitter;

static void emit(emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(e->s + e->n, e->cap - e->n, fmt, ap);
    va_end(ap);
    if (k > 0) e->n += (size_t)k < e->cap - e->n ? (size_t)k : e->cap - e->n - 1;
}

static const char *ctype_of(kf_dtype t) { return t == KF_F64 ? "double" : "float"; }

/* An expression for tensor t (of the spec) at (row, col) indices. */
static void value_of(emitter *e, const kf_fusion_spec *sp, int input, const char *col)
{
    const kf_tensor_desc *t = &sp->inputs[input];
    int b = sp->input_buffer[input];
    /* the tensor's index: its last dim is col, the rest come from the row
     * decomposition l0.. of x (right-aligned) */
    int R = t->ndim, X = sp->inputs[0].ndim;
    if (b >= 0) {
        emit(e, "kf_mock_load_%d(B[%d], 0", (int)t->dtype, b);
        for (int d = 0; d < R - 1; d++)
            if (t->shape[d] != 1) emit(e, " + l%d*%lld", d + (X - R), (long long)t->strides[d]);
        emit(e, " + %s)", t->shape[R - 1] == 1 ? "0" : col);
        return;
    }
    for (int h = 0; h < sp->nprologues; h++)
        if (sp->prologues[h].target == input) {
            emit(e, "%s(B", sp->prologues[h].fn);
            for (int d = 0; d < R - 1; d++) emit(e, ", %s%d", t->shape[d] == 1 ? "0*l" : "l", d + (X - R));
            emit(e, ", %s)", t->shape[R - 1] == 1 ? "0" : col);
            return;
        }
    emit(e, "0 /* input %d has neither buffer nor prologue */", input);
}

static void store_of(emitter *e, const kf_fusion_spec *sp, int o, const char *col, const char *v, uint32_t epi_ok)
{
    const kf_tensor_desc *t = &sp->outputs[o];
    int R = t->ndim;
    for (int h = 0; h < sp->nepilogues; h++)
        if (sp->epilogues[h].target == o && (epi_ok >> h & 1)) {
            emit(e, "            %s(B", sp->epilogues[h].fn);
            for (int d = 0; d < R - 1; d++) emit(e, ", l%d", d);
            emit(e, ", %s, %s);\n", t->shape[R - 1] == 1 ? "0" : col, v);
            return;
        }
    int b = sp->output_buffer[o];
    if (b < 0) return;
    emit(e, "            kf_mock_store_%d(B[%d], row * %lld + %s, %s);\n", (int)t->dtype, b,
         (long long)t->shape[R - 1], t->shape[R - 1] == 1 ? "0" : col, v);
}

static int mock_fuse(void *ctx, const kf_fusion_spec *sp, kf_fused_kernel *out, char *err, size_t errsz)
{
    mock *m = ctx;
    m->calls++;
    snprintf(m->op, sizeof m->op, "%s", sp->op);
    m->nepi = sp->nepilogues;
    m->npro = sp->nprologues;
    m->nbuf = sp->nbuffers;
    for (int i = 0; i < sp->nepilogues && i < 8; i++) {
        m->epi_target[i] = sp->epilogues[i].target;
        m->epi_nbuffers[i] = sp->epilogues[i].nbuffers;
        m->epi_nstores[i] = sp->epilogues[i].nstores;
        m->epi_has_code[i] = sp->epilogues[i].code && strstr(sp->epilogues[i].code, sp->epilogues[i].fn);
        snprintf(m->epi_names[i], 64, "%s", sp->epilogues[i].names);
    }
    for (int i = 0; i < sp->nprologues && i < 8; i++) {
        m->pro_target[i] = sp->prologues[i].target;
        snprintf(m->pro_names[i], 64, "%s", sp->prologues[i].names);
        m->pro_nsources[i] = sp->prologues[i].nsources;
        const kf_expr *x = sp->prologues[i].expr;
        m->pro_expr_kind[i] = x ? (int)x->kind : -1;
        snprintf(m->pro_expr_op[i], 32, "%s", x && x->op ? x->op : "");
    }
    for (int i = 0; i < sp->nbuffers && i < 32; i++) {
        m->role[i] = sp->buffers[i].role;
        m->of[i] = sp->buffers[i].of;
        snprintf(m->bufname[i], 64, "%s", sp->buffers[i].t.name);
    }
    for (int i = 0; i < sp->ninputs && i < 8; i++) m->input_buffer[i] = sp->input_buffer[i];
    for (int i = 0; i < sp->noutputs && i < 8; i++) m->output_buffer[i] = sp->output_buffer[i];
    if (m->misbehave == 4) {
        snprintf(err, errsz, "mock told to fail");
        return 1;
    }
    uint32_t epi_ok = ((1u << sp->nepilogues) - 1) & ~m->refuse_epi;
    uint32_t pro_ok = ((1u << sp->nprologues) - 1) & ~m->refuse_pro;
    out->accepted_epilogues = epi_ok;
    out->accepted_prologues = pro_ok;

    const kf_tensor_desc *x = &sp->inputs[0];
    int X = x->ndim;
    long long cols = x->shape[X - 1], rows = 1;
    for (int d = 0; d < X - 1; d++) rows *= x->shape[d];
    const char *T = ctype_of(x->dtype);
    emitter e = {m->src, 0, sizeof m->src};
    emit(&e, "/* mock backend: %s */\n", sp->op);
    for (int t = 0; t < KF_NDTYPES; t++) {
        const char *st = t == KF_F64 ? "double" : t == KF_F32 ? "float" : "uint16_t";
        const char *ld = t == KF_F16 ? "kf_h2f(p[i])" : t == KF_BF16 ? "kf_bf2f(p[i])" : "p[i]";
        const char *sv = t == KF_F16 ? "kf_f2h((float)v)" : t == KF_BF16 ? "kf_f2bf((float)v)" : "v";
        if (t > KF_BF16) break;
        emit(&e, "#ifndef KF_MOCK_IO_%d\n#define KF_MOCK_IO_%d\n", t, t);
        emit(&e, "static inline double kf_mock_load_%d(const void *q, int64_t i) { const %s *p = q; return %s; }\n", t, st, ld);
        emit(&e, "static inline void kf_mock_store_%d(void *q, int64_t i, double v) { %s *p = q; p[i] = %s; }\n#endif\n", t, st, sv);
    }
    emit(&e, "void %s(void **args)\n{\n    void *B[%d];\n", sp->entry, sp->nbuffers ? sp->nbuffers : 1);
    for (int i = 0; i < sp->nbuffers; i++) emit(&e, "    B[%d] = args[%d];\n", i, i);
    emit(&e, "    for (int64_t row = 0; row < %lld; row++) {\n", rows);
    long long st = 1;
    for (int d = X - 2; d >= 0; d--) {
        emit(&e, "        const int64_t l%d = (row / %lld) %% %lld;\n", d, st, (long long)x->shape[d]);
        st *= x->shape[d];
    }
    emit(&e, "        double acc = 0, acc2 = 0, mx = -1e300;\n");
    emit(&e, "        for (int64_t j = 0; j < %lld; j++) {\n            const double v = ", cols);
    value_of(&e, sp, 0, "j");
    emit(&e, ";\n            acc += v; acc2 += v * v; if (v > mx) mx = v;\n        }\n");
    if (!strcmp(sp->op, "softmax")) {
        emit(&e, "        double s = 0;\n        for (int64_t j = 0; j < %lld; j++) s += exp(", cols);
        value_of(&e, sp, 0, "j");
        emit(&e, " - mx);\n        for (int64_t j = 0; j < %lld; j++) {\n            const %s y = (%s)(exp(", cols, T, T);
        value_of(&e, sp, 0, "j");
        emit(&e, " - mx) / s);\n");
        store_of(&e, sp, 0, "j", "y", epi_ok);
        emit(&e, "        }\n");
    } else if (!strcmp(sp->op, "layer_norm")) {
        emit(&e, "        const double mean = acc / %lld, var = acc2 / %lld - mean * mean;\n", cols, cols);
        emit(&e, "        const double rstd = 1.0 / sqrt(var + %.17g);\n", sp->attrs->eps);
        emit(&e, "        for (int64_t j = 0; j < %lld; j++) {\n            const %s y = (%s)((", cols, T, T);
        value_of(&e, sp, 0, "j");
        emit(&e, " - mean) * rstd * ");
        value_of(&e, sp, 1, "j");
        if (sp->ninputs > 2) {
            emit(&e, " + ");
            value_of(&e, sp, 2, "j");
        }
        emit(&e, ");\n");
        store_of(&e, sp, 0, "j", "y", epi_ok);
        emit(&e, "        }\n        {\n            const %s vm = (%s)mean, vr = (%s)rstd;\n", T, T, T);
        store_of(&e, sp, 1, "0", "vm", epi_ok);
        store_of(&e, sp, 2, "0", "vr", epi_ok);
        emit(&e, "        }\n");
    } else {
        emit(&e, "        const double r = 1.0 / sqrt(acc2 / %lld + %.17g);\n", cols, sp->attrs->eps);
        emit(&e, "        for (int64_t j = 0; j < %lld; j++) {\n            const %s y = (%s)(", cols, T, T);
        value_of(&e, sp, 0, "j");
        emit(&e, " * r * ");
        value_of(&e, sp, 1, "j");
        emit(&e, ");\n");
        store_of(&e, sp, 0, "j", "y", epi_ok);
        emit(&e, "        }\n");
    }
    emit(&e, "    }\n}\n");
    if (m->misbehave == 1) emit(&e, "this is not C;\n");
    for (int i = 0; i < sp->nbuffers; i++) m->args[i] = i;
    out->source = m->src;
    out->entry = sp->entry;
    out->nargs = sp->nbuffers;
    out->args = m->misbehave == 2 ? NULL : m->args;
    if (m->misbehave == 3) out->nargs = sp->nbuffers - 1;
    out->grid[0] = rows;
    return 0;
}

static mock M;
static kf_backend mock_backend = {
    .abi_version = KF_BACKEND_ABI_VERSION,
    .name = "mock",
    .ctx = &M,
    .implements = mock_implements,
    .fuse = mock_fuse,
};

/* ---- running a case ---- */

typedef struct result {
    int ok;
    int kernels;
    char explain[8192];
    char err[8192];
} result;

/* Parses text with the mock registered, compiles, runs on random data and
 * compares with the interpreter. */
static result run_case(const char *name, const char *text)
{
    result r = {0};
    M.calls = 0;
    kf_ctx *ctx = kf_ctx_new(NULL);
    kf_ctx_add_backend(ctx, &mock_backend);
    kf_graph *g = kf_parse_kf(ctx, name, text, strlen(text));
    kf_compiled *c = g ? kf_compile(g, NULL) : NULL;
    if (!c) {
        snprintf(r.err, sizeof r.err, "%s", kf_errmsg(ctx));
        kf_graph_free(g);
        kf_ctx_free(ctx);
        return r;
    }
    r.kernels = kf_compiled_num_kernels(c);
    snprintf(r.explain, sizeof r.explain, "%s", kf_compiled_explain(c, 1));
    int ni = kf_graph_num_inputs(g), no = kf_graph_num_outputs(g);
    void *in[8], *got[8], *want[8];
    for (int i = 0; i < ni; i++) {
        kf_node *n = kf_graph_input(g, i);
        in[i] = kft_alloc(kf_node_dtype(n), kf_node_numel(n));
        uint64_t seed = 17u + (unsigned)i;
        kft_fill_random(kf_node_dtype(n), in[i], kf_node_numel(n), &seed, -1.0, 1.0);
    }
    for (int i = 0; i < no; i++) {
        kf_node *n = kf_graph_output(g, i);
        got[i] = kft_alloc(kf_node_dtype(n), kf_node_numel(n));
        want[i] = kft_alloc(kf_node_dtype(n), kf_node_numel(n));
    }
    r.ok = kf_run(c, (const void **)in, got) == KF_OK && kf_interpret(g, (const void **)in, want) == KF_OK;
    /* results computed through 16-bit values carry their precision */
    kf_dtype prec = kf_graph_precision(g);
    for (int i = 0; i < no && r.ok; i++) {
        kf_node *n = kf_graph_output(g, i);
        double rtol, atol, rt2, at2;
        kft_default_tol(kf_node_dtype(n), &rtol, &atol);
        kft_default_tol(prec, &rt2, &at2);
        if (rt2 > rtol) rtol = rt2, atol = at2;
        char why[256];
        if (kft_compare(kf_node_dtype(n), got[i], want[i], kf_node_numel(n), rtol, atol, why, sizeof why)) {
            snprintf(r.err, sizeof r.err, "output %d: %s", i, why);
            r.ok = 0;
        }
    }
    for (int i = 0; i < ni; i++) free(in[i]);
    for (int i = 0; i < no; i++) {
        free(got[i]);
        free(want[i]);
    }
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
    return r;
}

static void expect(const char *name, const char *text, int kernels)
{
    result r = run_case(name, text);
    CHECK(r.ok, "%s: %s", name, r.err);
    CHECK(r.kernels == kernels, "%s: %d kernels, expected %d\n%s", name, r.kernels, kernels, r.explain);
    CHECK(M.calls >= 1, "%s: the backend was not asked", name);
    printf("%s %s (%d kernels)\n", r.ok && r.kernels == kernels ? "ok" : "FAIL", name, r.kernels);
}

static int count_role(kf_buffer_role role)
{
    int n = 0;
    for (int i = 0; i < M.nbuf; i++) n += M.role[i] == role;
    return n;
}

int main(int argc, char **argv)
{
    const char *bad_abi = argc > 1 ? argv[1] : NULL, *no_entry = argc > 2 ? argv[2] : NULL;
    /* a prologue and an epilogue on an external template: one kernel */
    expect("prologue_epilogue",
           "input x : f32[37, 61]\ninput r : f32[37, 61]\n"
           "y = mul(softmax(add(x, r), axis=-1), 2.0)\noutput y\n", 1);
    CHECK(M.npro == 1 && M.pro_target[0] == 0 && M.pro_nsources[0] == 2, "npro %d nsrc %d", M.npro,
          M.pro_nsources[0]);
    CHECK(M.pro_expr_kind[0] == KF_EXPR_OP && !strcmp(M.pro_expr_op[0], "add"), "expr %d %s",
          M.pro_expr_kind[0], M.pro_expr_op[0]);
    CHECK(M.input_buffer[0] == -1, "input 0 replaced by its prologue");
    CHECK(M.nepi == 1 && M.epi_target[0] == 0 && M.epi_has_code[0], "epilogues");
    CHECK(M.output_buffer[0] == -1, "the softmax result is not stored (only its epilogue reads it)");
    CHECK(count_role(KF_BUF_SOURCE) == 2 && count_role(KF_BUF_EXTRA_OUT) == 1 && M.nbuf == 3,
          "buffers: %d sources, %d extra out, %d in all", count_role(KF_BUF_SOURCE),
          count_role(KF_BUF_EXTRA_OUT), M.nbuf);
    CHECK(M.epi_nstores[0] == 1, "one store in the epilogue tree");
    CHECK(!strcmp(M.pro_names[0], "add.2") && !strcmp(M.epi_names[0], "y"), "hook names '%s' '%s'",
          M.pro_names[0], M.epi_names[0]);

    /* chains on both sides */
    expect("chains",
           "input x : f32[20, 33]\ninput r : f32[20, 33]\ninput s : f32[33]\n"
           "p = relu(add(mul(x, 2.0), r))\ny = softmax(p, axis=-1)\nz = tanh(add(mul(y, 3.0), s))\noutput z\n", 1);
    CHECK(M.pro_nsources[0] == 2 && M.epi_nbuffers[0] == 2, "sources %d, epilogue buffers %d",
          M.pro_nsources[0], M.epi_nbuffers[0]);

    /* a multi-output template, a different epilogue on each output */
    expect("three_outputs",
           "input x : f32[9, 40]\ninput w : f32[40]\ninput b : f32[40]\n"
           "y, m, r = layer_norm(x, w, b, axis=-1, eps=1e-5)\n"
           "y2 = mul(y, 2.0)\nm2 = add(m, 1.0)\nr2 = sqrt(r)\noutput y2, m2, r2\n", 1);
    CHECK(M.nepi == 3, "three epilogue hooks, got %d", M.nepi);
    CHECK(M.output_buffer[0] == -1 && M.output_buffer[1] == -1 && M.output_buffer[2] == -1,
          "no output stored");
    CHECK(count_role(KF_BUF_INPUT) == 3, "x, w, b are plain inputs");

    /* an epilogue reading two outputs stays out, after the call */
    expect("two_outputs_read",
           "input x : f32[9, 40]\ninput w : f32[40]\ninput b : f32[40]\n"
           "y, m, r = layer_norm(x, w, b, axis=-1, eps=1e-5)\nq = add(m, r)\noutput y, q\n", 2);
    {
        result r = run_case("two_outputs_read", "input x : f32[9, 40]\ninput w : f32[40]\ninput b : f32[40]\n"
                                                "y, m, r = layer_norm(x, w, b)\nq = add(m, r)\noutput y, q\n");
        CHECK(strstr(r.explain, "\"unfused_epilogues\": [{\"node\": \"q\", \"reason\": \"reads more than one output"),
              "explain: %s", r.explain);
        CHECK(M.output_buffer[1] >= 0 && M.output_buffer[2] >= 0, "mean and rstd are stored for q");
    }

    /* an f16 template with an f32 epilogue */
    expect("f16_template_f32_epilogue",
           "input x : f16[16, 48]\ny = cast(softmax(x, axis=-1), dtype=f32)\noutput y\n", 1);

    /* an output that is also a graph output, and read by an epilogue: two stores */
    expect("two_store",
           "input x : f32[8, 50]\ny = softmax(x, axis=-1)\nz = mul(y, y)\noutput y, z\n", 1);
    CHECK(M.output_buffer[0] >= 0 && M.nepi == 1, "stored and passed to its epilogue");

    /* the same output returned twice */
    expect("same_output_twice", "input x : f32[8, 50]\ny = softmax(x, axis=-1)\noutput y, y\n", 1);

    /* refusals: correct and unfused */
    M.refuse_epi = 1;
    expect("refused_epilogue",
           "input x : f32[12, 30]\ny = mul(softmax(x, axis=-1), 2.0)\noutput y\n", 2);
    M.refuse_epi = 0;
    M.refuse_pro = 1;
    expect("refused_prologue",
           "input x : f32[12, 30]\ninput r : f32[12, 30]\ny = softmax(add(x, r), axis=-1)\noutput y\n", 2);
    M.refuse_pro = 0;
    {
        M.refuse_epi = 1;
        result r = run_case("refused_reason", "input x : f32[12, 30]\ny = mul(softmax(x, axis=-1), 2.0)\noutput y\n");
        CHECK(strstr(r.explain, "refused by the backend"), "explain: %s", r.explain);
        M.refuse_epi = 0;
    }

    /* a backend that misbehaves: clear errors, never a crash */
    const char *plain = "input x : f32[4, 8]\ny = softmax(x, axis=-1)\noutput y\n";
    M.misbehave = 1;
    result r1 = run_case("bad_source", plain);
    CHECK(!r1.ok && strstr(r1.err, "error") && strstr(r1.err, ".c") && strstr(r1.err, "this is not C"),
          "bad source: %s", r1.err);
    M.misbehave = 2;
    result r2 = run_case("null_args", plain);
    CHECK(!r2.ok && strstr(r2.err, "null or oversized argument list"), "null args: %s", r2.err);
    M.misbehave = 3;
    result r3 = run_case("missing_arg", plain);
    CHECK(!r3.ok && strstr(r3.err, "lacks a buffer"), "missing arg: %s", r3.err);
    M.misbehave = 4;
    result r4 = run_case("fuse_fails", plain);
    CHECK(!r4.ok && strstr(r4.err, "mock told to fail"), "fuse fails: %s", r4.err);
    M.misbehave = 0;
    printf("%s misbehaving backends\n", failures ? "FAIL" : "ok");

    /* registration faults */
    {
        kf_ctx *ctx = kf_ctx_new(NULL);
        kf_backend wrong = mock_backend;
        wrong.abi_version = 99;
        CHECK(kf_ctx_add_backend(ctx, &wrong) != KF_OK, "wrong ABI accepted");
        CHECK(strstr(kf_errmsg(ctx), "99") && strstr(kf_errmsg(ctx), "version 1"), "msg: %s", kf_errmsg(ctx));
        kf_clear_error(ctx);
        CHECK(kf_ctx_load_backend(ctx, "/nonexistent/plugin.so") == KF_ERR_IO, "missing file");
        kf_clear_error(ctx);
        CHECK(kf_ctx_load_backend(ctx, "libm.so.6") != KF_OK, "a name that is no compiled-in backend");
        kf_clear_error(ctx);
        if (bad_abi) {
            CHECK(kf_ctx_load_backend(ctx, bad_abi) != KF_OK, "a plug-in of another ABI version");
            CHECK(strstr(kf_errmsg(ctx), "version 7") || strstr(kf_errmsg(ctx), " 7,"), "msg: %s", kf_errmsg(ctx));
            kf_clear_error(ctx);
        }
        if (no_entry) {
            CHECK(kf_ctx_load_backend(ctx, no_entry) != KF_OK, "a shared object without the entry point");
            CHECK(strstr(kf_errmsg(ctx), "kf_backend_entry"), "msg: %s", kf_errmsg(ctx));
            kf_clear_error(ctx);
        }
        kf_ctx_free(ctx);
        printf("ok registration faults\n");
    }
    printf("%s\n", failures ? "backend tests FAILED" : "backend tests passed");
    return failures ? 1 : 0;
}
