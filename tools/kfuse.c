/*
 * kfuse.c - the command-line tool: loads a graph (.kf or .onnx), compiles it
 * and runs, explains, emits or benchmarks it.  All of the work is the
 * library's; this file parses arguments, makes input data, prints results
 * and turns failures into exit statuses (0 ok, 1 an output differs, 2
 * anything else).  It prints nothing on stdout until the graph has compiled
 * and run, so a failure never leaves a partial result behind.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kfuse.h"
#include "kfuse_backend.h"
/* Only for bench's cost estimate (graph_work): the public API has no way to
 * walk a graph's nodes. */
#include "../src/kfuse-impl.h"

#ifndef KFUSE_VERSION
#define KFUSE_VERSION "0.1.0"
#endif

#define BENCH_INTERP_LIMIT 5e8 /* multiply-adds above which bench skips the interpreter */

static const char help_text[] =
    "usage: kfuse COMMAND FILE [options]\n"
    "\n"
    "Compiles a tensor graph (a .kf file, or an ONNX model when FILE ends in .onnx)\n"
    "into fused kernels.\n"
    "\n"
    "commands:\n"
    "  run FILE       compile, run, and print each output: name, dtype[shape], sum,\n"
    "                 min, max and its first values\n"
    "  explain FILE   print the fusion plan: the kernels and the nodes each computes\n"
    "  emit FILE      print the generated source\n"
    "  bench FILE     time the fused plan beside --no-template-fusion and --no-fusion\n"
    "                 (and the reference interpreter once, unless the graph has more\n"
    "                 than 5e8 multiply-adds)\n"
    "\n"
    "options for every command:\n"
    "  --device cpu|cuda      the target (default cpu)\n"
    "  --shape NAME=d0,d1,... fix the dynamic dims of an ONNX model's input NAME\n"
    "                         (repeatable; .kf files declare their shapes)\n"
    "  --backend PATH         load a template-backend plug-in (a shared object exporting\n"
    "                         kf_backend_entry), or a compiled-in one by name: rownorm\n"
    "                         (repeatable; $KFUSE_BACKENDS adds a colon-separated list)\n"
    "  -h, --help             print this help and exit\n"
    "  --version              print the version and exit\n"
    "\n"
    "options for run, explain and emit:\n"
    "  --no-fusion            every node its own kernel, as an eager framework runs it\n"
    "  --no-template-fusion   pointwise chains fuse with each other, but nothing is\n"
    "                         spliced into a template kernel\n"
    "  --dump-ir              write the graph and the schedule after each pass to stderr\n"
    "\n"
    "options for run:\n"
    "  --data DIR      read input K from DIR/input_K.pb; where DIR/output_K.pb exists,\n"
    "                  compare output K with it\n"
    "  --seed N        seed of the random inputs used without --data (default 0):\n"
    "                  floats uniform in [-1, 1], integers in [-8, 8] (u8: [0, 8]),\n"
    "                  bool 0 or 1\n"
    "  --check         also run the reference interpreter on the same inputs and\n"
    "                  compare every output with it\n"
    "\n"
    "options for explain:\n"
    "  --json          the plan as JSON\n"
    "\n"
    "options for bench:\n"
    "  --repeat N      timed runs of each plan (default 15); min and median are shown\n"
    "  --warmup N      untimed runs before them (default 3)\n"
    "  --seed N        seed of the random inputs (default 0)\n"
    "\n"
    "Comparisons (--data, --check): an element matches if\n"
    "|got - want| <= atol + rtol * |want|, with f64 rtol 1e-7 atol 1e-10, f32 rtol\n"
    "1e-3 atol 1e-5, f16 rtol 1e-2 atol 1e-3, bf16 rtol 5e-2 atol 1e-2; integers and\n"
    "bool must be equal.  NaN matches NaN; an infinity matches the same infinity.\n"
    "A float output takes the tolerance of the least precise float dtype the graph\n"
    "computes in (an f32 output cast from f16 values: f16's).\n"
    "\n"
    "Exit status: 0 ok; 1 an output differs (--data, --check); 2 anything else\n"
    "(usage, bad input, compile or run failure, I/O error).\n";

/* ---- options ------------------------------------------------------------ */

enum { C_RUN = 1, C_EXPLAIN = 2, C_EMIT = 4, C_BENCH = 8, C_ALL = 15 };

typedef struct cli {
    int cmd;
    const char *cmdname;
    const char *file;
    kf_options opt;
    int json, check;
    const char *data;
    uint64_t seed;
    long repeat, warmup;
    const char **shapes;
    int nshapes;
    const char **backends;
    int nbackends;
} cli;

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kfuse: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'kfuse --help' for more information.\n", stderr);
    return 2;
}

static int err2(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int err2(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kfuse: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

/* The library's message; it already says where ("FILE:LINE:COL: error: ..."). */
static int lib_err(kf_ctx *ctx)
{
    const char *m = kf_errmsg(ctx);
    fprintf(stderr, "%s\n", m && *m ? m : "kfuse: error: failed (no message)");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_count(const char *s, long lo, long *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v > 1000000000 || (long)v < lo) return false;
    *out = (long)v;
    return true;
}

/* NAME=d0,d1,... with a name and non-negative integer dims (none: 0-d). */
static bool valid_shape_bind(const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) return false;
    const char *p = eq + 1;
    if (!*p) return true;
    for (;;) {
        if (*p < '0' || *p > '9') return false;
        while (*p >= '0' && *p <= '9') p++;
        if (!*p) return true;
        if (*p++ != ',') return false;
    }
}

typedef struct optdef {
    const char *name;
    int takes_value;
    int cmds; /* commands it applies to */
} optdef;

static const optdef optdefs[] = {
    {"--device", 1, C_ALL},       {"--shape", 1, C_ALL},
    /* bench times all three plans, so these two do not apply to it */
    {"--no-fusion", 0, C_RUN | C_EXPLAIN | C_EMIT},
    {"--no-template-fusion", 0, C_RUN | C_EXPLAIN | C_EMIT},
    {"--backend", 1, C_ALL},      {"--data", 1, C_RUN},
    {"--seed", 1, C_RUN | C_BENCH}, {"--check", 0, C_RUN},
    {"--json", 0, C_EXPLAIN},     {"--repeat", 1, C_BENCH},
    {"--warmup", 1, C_BENCH},     {"--dump-ir", 0, C_RUN | C_EXPLAIN | C_EMIT},
};

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, cli *c)
{
    static const struct { const char *name; int cmd; } cmds[] = {
        {"run", C_RUN}, {"explain", C_EXPLAIN}, {"emit", C_EMIT}, {"bench", C_BENCH}};
    if (argc < 2) return usage_err("missing command (run, explain, emit or bench)");
    const char *a1 = argv[1];
    if (!strcmp(a1, "-h") || !strcmp(a1, "--help")) return fputs(help_text, stdout), 0;
    if (!strcmp(a1, "--version")) return printf("kfuse %s\n", KFUSE_VERSION), 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(a1, cmds[i].name)) {
            c->cmd = cmds[i].cmd;
            c->cmdname = cmds[i].name;
        }
    if (!c->cmd) {
        if (a1[0] == '-') return usage_err("expected a command (run, explain, emit or bench) before '%s'", a1);
        return usage_err("unknown command '%s' (commands: run, explain, emit, bench)", a1);
    }
    c->repeat = 15;
    c->warmup = 3;
    c->shapes = calloc((size_t)argc, sizeof *c->shapes);
    c->backends = calloc((size_t)argc, sizeof *c->backends);
    if (!c->backends) return err2("out of memory");
    if (!c->shapes) return err2("out of memory");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(help_text, stdout), 0;
        if (!strcmp(a, "--version")) return printf("kfuse %s\n", KFUSE_VERSION), 0;
        if (a[0] != '-' || !a[1]) {
            if (c->file) return usage_err("unexpected argument '%s' (one FILE only)", a);
            c->file = a;
            continue;
        }
        size_t nlen = strcspn(a, "=");
        const optdef *d = NULL;
        for (size_t k = 0; k < sizeof optdefs / sizeof optdefs[0]; k++)
            if (strlen(optdefs[k].name) == nlen && !strncmp(a, optdefs[k].name, nlen)) d = &optdefs[k];
        if (!d) return usage_err("unknown option '%.*s'", (int)nlen, a);
        if (!(d->cmds & c->cmd)) return usage_err("option %s does not apply to '%s'", d->name, c->cmdname);
        const char *v = NULL;
        if (d->takes_value) {
            if (a[nlen] == '=') v = a + nlen + 1;
            else if (i + 1 < argc) v = argv[++i];
            else return usage_err("option %s needs a value", d->name);
        } else if (a[nlen] == '=') {
            return usage_err("option %s takes no value", d->name);
        }
        const char *n = d->name;
        if (!strcmp(n, "--device")) {
            if (!strcmp(v, "cpu")) c->opt.device = KF_DEVICE_CPU;
            else if (!strcmp(v, "cuda")) c->opt.device = KF_DEVICE_CUDA;
            else return usage_err("unknown device '%s' (devices: cpu, cuda)", v);
        } else if (!strcmp(n, "--shape")) {
            if (!valid_shape_bind(v)) return usage_err("--shape expects NAME=d0,d1,..., not '%s'", v);
            c->shapes[c->nshapes++] = v;
        } else if (!strcmp(n, "--no-fusion")) {
            c->opt.no_fusion = 1;
        } else if (!strcmp(n, "--no-template-fusion")) {
            c->opt.no_template_fusion = 1;
        } else if (!strcmp(n, "--dump-ir")) {
            c->opt.dump = stderr;
        } else if (!strcmp(n, "--backend")) {
            c->backends[c->nbackends++] = v;
        } else if (!strcmp(n, "--data")) {
            c->data = v;
        } else if (!strcmp(n, "--seed")) {
            if (!parse_u64(v, &c->seed)) return usage_err("--seed expects a non-negative integer, not '%s'", v);
        } else if (!strcmp(n, "--check")) {
            c->check = 1;
        } else if (!strcmp(n, "--json")) {
            c->json = 1;
        } else if (!strcmp(n, "--repeat")) {
            if (!parse_count(v, 1, &c->repeat)) return usage_err("--repeat expects a positive integer, not '%s'", v);
        } else if (!strcmp(n, "--warmup")) {
            if (!parse_count(v, 0, &c->warmup)) return usage_err("--warmup expects a non-negative integer, not '%s'", v);
        }
    }
    if (!c->file) return usage_err("missing FILE: kfuse %s FILE [options]", c->cmdname);
    return -1;
}

/* ---- element access and 16-bit floats ----------------------------------- */

static int64_t get_i(kf_dtype t, const void *buf, int64_t i)
{
    switch (t) {
    case KF_I64: return ((const int64_t *)buf)[i];
    case KF_I32: return ((const int32_t *)buf)[i];
    case KF_I8: return ((const int8_t *)buf)[i];
    case KF_U8: return ((const uint8_t *)buf)[i];
    case KF_BOOL: return ((const uint8_t *)buf)[i] != 0;
    default: return (int64_t)kf_value_get(t, buf, i);
    }
}

static bool is_float(kf_dtype t) { return t == KF_F64 || t == KF_F32 || t == KF_F16 || t == KF_BF16; }

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Floats uniform in [-1, 1], ints in [-8, 8] (u8 [0, 8]), bool 0/1. */
static void fill_random(kf_dtype t, void *buf, int64_t n, uint64_t *state)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(state);
        double u = (double)(r >> 11) * 0x1.0p-53 * 2.0 - 1.0;
        int64_t k = (int64_t)(r % 17) - 8;
        switch (t) {
        case KF_F64: ((double *)buf)[i] = u; break;
        case KF_F32: case KF_F16: case KF_BF16: kf_value_set(t, buf, i, (float)u); break;
        case KF_I64: ((int64_t *)buf)[i] = k; break;
        case KF_I32: ((int32_t *)buf)[i] = (int32_t)k; break;
        case KF_I8: ((int8_t *)buf)[i] = (int8_t)k; break;
        case KF_U8: ((uint8_t *)buf)[i] = (uint8_t)(r % 9); break;
        case KF_BOOL: ((uint8_t *)buf)[i] = (uint8_t)(r & 1); break;
        default: break;
        }
    }
}

static void fmt_val(kf_dtype t, const void *buf, int64_t i, char *out, size_t sz)
{
    if (is_float(t)) snprintf(out, sz, "%.6g", kf_value_get(t, buf, i));
    else snprintf(out, sz, "%" PRId64, get_i(t, buf, i));
}

static void fmt_type(kf_dtype t, int ndim, const int64_t *shape, char *out, size_t sz)
{
    size_t o = (size_t)snprintf(out, sz, "%s[", kf_dtype_name(t));
    for (int i = 0; i < ndim && o < sz; i++)
        o += (size_t)snprintf(out + o, sz - o, "%s%" PRId64, i ? "," : "", shape[i]);
    if (o < sz) snprintf(out + o, sz - o, "]");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- the session: everything that must be freed ------------------------- */

typedef struct tool {
    cli c;
    kf_ctx *ctx;
    kf_graph *g;
    kf_compiled *plans[3];
    int nin, nout;
    void **in, **out, **ref; /* per input / output buffers */
} tool;

static void tool_free(tool *t)
{
    for (int i = 0; i < 3; i++) kf_compiled_free(t->plans[i]);
    for (int i = 0; t->in && i < t->nin; i++) free(t->in[i]);
    for (int i = 0; t->out && i < t->nout; i++) free(t->out[i]);
    for (int i = 0; t->ref && i < t->nout; i++) free(t->ref[i]);
    free(t->in);
    free(t->out);
    free(t->ref);
    kf_graph_free(t->g);
    kf_ctx_free(t->ctx);
    free(t->c.shapes);
    free(t->c.backends);
}

static const char *out_name(const tool *t, int k, char *buf, size_t sz)
{
    const char *n = kf_node_name(kf_graph_output(t->g, k));
    if (n) return n;
    snprintf(buf, sz, "output_%d", k);
    return buf;
}

static void *alloc_for(kf_node *n)
{
    size_t bytes = (size_t)kf_node_numel(n) * kf_dtype_size(kf_node_dtype(n));
    return calloc(bytes ? bytes : 1, 1);
}

static int alloc_outputs(tool *t, void ***bufs)
{
    *bufs = calloc((size_t)t->nout, sizeof **bufs);
    if (!*bufs) return err2("out of memory");
    for (int k = 0; k < t->nout; k++) {
        kf_node *o = kf_graph_output(t->g, k);
        if (!((*bufs)[k] = alloc_for(o))) {
            char nb[32];
            return err2("out of memory for output '%s' (%" PRId64 " elements)",
                        out_name(t, k, nb, sizeof nb), kf_node_numel(o));
        }
    }
    return 0;
}

/* Input K from DIR/input_K.pb, or seeded random data. */
static int make_inputs(tool *t, bool from_data)
{
    t->in = calloc((size_t)t->nin + 1, sizeof *t->in);
    if (!t->in) return err2("out of memory");
    uint64_t state = t->c.seed;
    for (int k = 0; k < t->nin; k++) {
        kf_node *n = kf_graph_input(t->g, k);
        kf_dtype dt = kf_node_dtype(n);
        int64_t numel = kf_node_numel(n);
        if (!(t->in[k] = alloc_for(n)))
            return err2("out of memory for input '%s' (%" PRId64 " elements)", kf_node_name(n), numel);
        if (!from_data) {
            fill_random(dt, t->in[k], numel, &state);
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/input_%d.pb", t->c.data, k);
        kf_tensor ten = {0};
        if (kf_tensor_read_pb(t->ctx, path, &ten) != KF_OK) return lib_err(t->ctx);
        bool same = ten.dtype == dt && ten.ndim == kf_node_ndim(n);
        for (int d = 0; same && d < ten.ndim; d++) same = ten.shape[d] == kf_node_shape(n)[d];
        if (!same) {
            char want[256], got[256];
            fmt_type(dt, kf_node_ndim(n), kf_node_shape(n), want, sizeof want);
            fmt_type(ten.dtype, ten.ndim, ten.shape, got, sizeof got);
            kf_tensor_free(t->ctx, &ten);
            fprintf(stderr, "%s: error: input '%s' is %s, but the file holds %s\n", path,
                    kf_node_name(n), want, got);
            return 2;
        }
        memcpy(t->in[k], ten.data, (size_t)numel * kf_dtype_size(dt));
        kf_tensor_free(t->ctx, &ten);
    }
    return 0;
}

static kf_compiled *compile_plan(tool *t, int no_fusion, int no_tfusion)
{
    kf_options o = t->c.opt;
    o.no_fusion = no_fusion;
    o.no_template_fusion = no_tfusion;
    return kf_compile(t->g, &o);
}

/* ---- commands ------------------------------------------------------------ */

static void print_output(tool *t, int k)
{
    kf_node *o = kf_graph_output(t->g, k);
    kf_dtype dt = kf_node_dtype(o);
    int64_t n = kf_node_numel(o);
    const void *b = t->out[k];
    char nb[32], ty[256], s[64], lo[64], hi[64];
    fmt_type(dt, kf_node_ndim(o), kf_node_shape(o), ty, sizeof ty);
    if (is_float(dt)) {
        double sum = 0, mn = NAN, mx = NAN;
        for (int64_t i = 0; i < n; i++) {
            double v = kf_value_get(dt, b, i);
            sum += v;
            if (!isnan(v)) {
                if (isnan(mn) || v < mn) mn = v;
                if (isnan(mx) || v > mx) mx = v;
            }
        }
        snprintf(s, sizeof s, "%.6g", sum);
        snprintf(lo, sizeof lo, "%.6g", mn);
        snprintf(hi, sizeof hi, "%.6g", mx);
    } else {
        uint64_t sum = 0;
        int64_t mn = INT64_MAX, mx = INT64_MIN;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = get_i(dt, b, i);
            sum += (uint64_t)v; /* wraps, as int64 arithmetic would in the kernel */
            if (v < mn) mn = v;
            if (v > mx) mx = v;
        }
        snprintf(s, sizeof s, "%" PRId64, (int64_t)sum);
        snprintf(lo, sizeof lo, "%" PRId64, mn);
        snprintf(hi, sizeof hi, "%" PRId64, mx);
    }
    if (n == 0) {
        snprintf(lo, sizeof lo, "none");
        snprintf(hi, sizeof hi, "none");
    }
    printf("%s %s sum=%s min=%s max=%s first=[", out_name(t, k, nb, sizeof nb), ty, s, lo, hi);
    for (int64_t i = 0; i < n && i < 4; i++) {
        char v[64];
        fmt_val(dt, b, i, v, sizeof v);
        printf("%s%s", i ? " " : "", v);
    }
    printf("%s]\n", n > 4 ? " ..." : "");
}

/* Compares output k with want; returns 1 on a mismatch.  The report goes to
 * rep (printed once everything has run). */
static int report_compare(tool *t, const char *what, int k, const void *want, FILE *rep)
{
    kf_node *o = kf_graph_output(t->g, k);
    kf_dtype dt = kf_node_dtype(o);
    char nb[32], g[64], w[64];
    double maxerr;
    int64_t bad = kf_compare(dt, kf_graph_precision(t->g), t->out[k], want, kf_node_numel(o), &maxerr);
    const char *name = out_name(t, k, nb, sizeof nb);
    if (bad < 0) {
        fprintf(rep, "%s: %s ok (max abs err %.3g)\n", what, name, maxerr);
        return 0;
    }
    fmt_val(dt, t->out[k], bad, g, sizeof g);
    fmt_val(dt, want, bad, w, sizeof w);
    fprintf(rep, "%s: %s MISMATCH at flat index %" PRId64 ": got %s, want %s (max abs err %.3g)\n",
            what, name, bad, g, w, maxerr);
    return 1;
}

/* The outputs of DIR/output_K.pb that exist, compared. */
static int compare_data(tool *t, FILE *rep, int *mismatch)
{
    for (int k = 0; k < t->nout; k++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/output_%d.pb", t->c.data, k);
        if (stat(path, &st) != 0) continue;
        kf_tensor ten = {0};
        if (kf_tensor_read_pb(t->ctx, path, &ten) != KF_OK) return lib_err(t->ctx);
        kf_node *o = kf_graph_output(t->g, k);
        bool same = ten.dtype == kf_node_dtype(o) && ten.ndim == kf_node_ndim(o);
        for (int d = 0; same && d < ten.ndim; d++) same = ten.shape[d] == kf_node_shape(o)[d];
        if (!same) {
            char nb[32], got[256], want[256];
            fmt_type(kf_node_dtype(o), kf_node_ndim(o), kf_node_shape(o), got, sizeof got);
            fmt_type(ten.dtype, ten.ndim, ten.shape, want, sizeof want);
            fprintf(rep, "data: %s MISMATCH: the result is %s, %s holds %s\n",
                    out_name(t, k, nb, sizeof nb), got, path, want);
            *mismatch = 1;
        } else {
            *mismatch |= report_compare(t, "data", k, ten.data, rep);
        }
        kf_tensor_free(t->ctx, &ten);
    }
    return 0;
}

static int cmd_run(tool *t)
{
    int rc;
    if ((rc = make_inputs(t, t->c.data != NULL))) return rc;
    if (!(t->plans[0] = kf_compile(t->g, &t->c.opt))) return lib_err(t->ctx);
    if ((rc = alloc_outputs(t, &t->out))) return rc;
    if (kf_run(t->plans[0], (const void *const *)t->in, t->out) != KF_OK) return lib_err(t->ctx);

    /* the comparisons are written here and printed after the outputs */
    char *rep = NULL;
    size_t replen = 0;
    FILE *f = open_memstream(&rep, &replen);
    if (!f) return err2("out of memory");
    int mismatch = 0;
    if (t->c.data) rc = compare_data(t, f, &mismatch);
    if (!rc && t->c.check) {
        if ((rc = alloc_outputs(t, &t->ref)) == 0) {
            if (kf_interpret(t->g, (const void *const *)t->in, t->ref) != KF_OK)
                rc = lib_err(t->ctx);
            else
                for (int k = 0; k < t->nout; k++) mismatch |= report_compare(t, "check", k, t->ref[k], f);
        }
    }
    fclose(f);
    if (!rc) {
        for (int k = 0; k < t->nout; k++) print_output(t, k);
        fputs(rep, stdout);
    }
    free(rep);
    return rc ? rc : mismatch;
}

static int print_text(const char *s)
{
    if (!s) return 2;
    size_t n = strlen(s);
    fputs(s, stdout);
    if (n && s[n - 1] != '\n') putchar('\n');
    return 0;
}

/* explain and emit need no GPU: the CUDA target stops after NVRTC */
static kf_options no_run_opts(const tool *t)
{
    kf_options o = t->c.opt;
    if (o.device == KF_DEVICE_CUDA) o.compile_only = 1;
    return o;
}

static int cmd_explain(tool *t)
{
    kf_options o = no_run_opts(t);
    if (!(t->plans[0] = kf_compile(t->g, &o))) return lib_err(t->ctx);
    const char *s = kf_compiled_explain(t->plans[0], t->c.json);
    return s ? print_text(s) : lib_err(t->ctx);
}

static int cmd_emit(tool *t)
{
    kf_options o = no_run_opts(t);
    if (!(t->plans[0] = kf_compile(t->g, &o))) return lib_err(t->ctx);
    const char *s = kf_compiled_source(t->plans[0]);
    return s ? print_text(s) : lib_err(t->ctx);
}

/* Multiply-adds, roughly: a matmul's output size times its inner dim, and
 * one per element for everything else. */
static double graph_work(const kf_graph *g)
{
    double w = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const kf_node *n = g->nodes[i];
        double numel = (double)kf_node_numel(n);
        if (n->op == KF_OP_MATMUL) w += numel * (double)n->in[0]->shape[n->in[0]->ndim - 1];
        else w += numel;
    }
    return w;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_bench(tool *t)
{
    static const char *const names[3] = {"fused", "no-template-fusion", "no-fusion"};
    static const int flags[3][2] = {{0, 0}, {0, 1}, {1, 0}};
    int rc;
    if ((rc = make_inputs(t, false))) return rc;
    for (int p = 0; p < 3; p++)
        if (!(t->plans[p] = compile_plan(t, flags[p][0], flags[p][1]))) return lib_err(t->ctx);
    if ((rc = alloc_outputs(t, &t->out))) return rc;

    double mins[3], meds[3];
    double *times = malloc(sizeof *times * (size_t)t->c.repeat);
    if (!times) return err2("out of memory");
    bool cuda = t->c.opt.device == KF_DEVICE_CUDA;
    for (int p = 0; p < 3 && !rc; p++) {
        /* CUDA: the inputs are copied to the device once; each timed run is
         * the kernels alone on device buffers, waited for */
        if (cuda && kf_run(t->plans[p], (const void *const *)t->in, t->out) != KF_OK) {
            rc = lib_err(t->ctx);
            break;
        }
        for (long r = 0; r < t->c.warmup + t->c.repeat; r++) {
            double t0 = now_ms();
            kf_status st = cuda ? kf_run_device(t->plans[p], NULL, NULL)
                                : kf_run(t->plans[p], (const void *const *)t->in, t->out);
            if (st == KF_OK && cuda) st = kf_wait(t->plans[p]);
            if (st != KF_OK) {
                rc = lib_err(t->ctx);
                break;
            }
            if (r >= t->c.warmup) times[r - t->c.warmup] = now_ms() - t0;
        }
        if (rc) break;
        qsort(times, (size_t)t->c.repeat, sizeof *times, cmp_double);
        mins[p] = times[0];
        long m = t->c.repeat;
        meds[p] = m % 2 ? times[m / 2] : (times[m / 2 - 1] + times[m / 2]) / 2;
    }
    free(times);
    if (rc) return rc;

    double work = graph_work(t->g), interp_ms = -1;
    if (work <= BENCH_INTERP_LIMIT) {
        if ((rc = alloc_outputs(t, &t->ref))) return rc;
        double t0 = now_ms();
        if (kf_interpret(t->g, (const void *const *)t->in, t->ref) != KF_OK) return lib_err(t->ctx);
        interp_ms = now_ms() - t0;
    }

    printf("bench %s: %s, %ld runs after %ld warm-up\n", t->c.file,
           t->c.opt.device == KF_DEVICE_CUDA ? "cuda" : "cpu", t->c.repeat, t->c.warmup);
    for (int p = 0; p < 3; p++)
        printf("%-19s %3d kernel%s  min %9.3f ms  median %9.3f ms  %6.2fx\n", names[p],
               kf_compiled_num_kernels(t->plans[p]),
               kf_compiled_num_kernels(t->plans[p]) == 1 ? " " : "s", mins[p], meds[p],
               meds[0] > 0 ? meds[p] / meds[0] : 0.0);
    /* the tile configuration of each mm template (tuned or chosen) */
    for (const char *src = cuda ? kf_compiled_source(t->plans[0]) : ""; (src = strstr(src, "/* kfuse-t"));) {
        const char *e = strstr(src, "*/");
        if (!e) break;
        printf("%.*s\n", (int)(e - src - 3), src + 3);
        src = e;
    }
    /* decisions taken by measurement (explain's note) */
    const char *note = strstr(kf_compiled_explain(t->plans[0], 0), "\nnote: ");
    if (note) printf("%s", note + 1);
    if (interp_ms >= 0)
        printf("%-19s   1 run                         %9.3f ms  %6.2fx\n", "interpreter",
               interp_ms, meds[0] > 0 ? interp_ms / meds[0] : 0.0);
    else
        printf("%-19s skipped: about %.3g multiply-adds (more than %.0e)\n", "interpreter", work,
               BENCH_INTERP_LIMIT);
    return 0;
}

/* --backend PATH..., then $KFUSE_BACKENDS; -1 when all loaded, else the
 * exit status. */
static int load_backends(tool *t)
{
    for (int i = 0; i < t->c.nbackends; i++)
        if (kf_ctx_load_backend(t->ctx, t->c.backends[i]) != KF_OK) return lib_err(t->ctx);
    const char *env = getenv("KFUSE_BACKENDS");
    if (!env || !*env) return -1;
    char *list = strdup(env);
    if (!list) return err2("out of memory");
    int rc = -1;
    for (char *save = NULL, *p = strtok_r(list, ":", &save); p && rc < 0; p = strtok_r(NULL, ":", &save))
        if (kf_ctx_load_backend(t->ctx, p) != KF_OK) rc = lib_err(t->ctx);
    free(list);
    return rc;
}

int main(int argc, char **argv)
{
    tool t = {0};
    int rc = parse_args(argc, argv, &t.c);
    if (rc >= 0) {
        free(t.c.shapes);
        free(t.c.backends);
        return rc;
    }
    if (!(t.ctx = kf_ctx_new(NULL))) {
        free(t.c.shapes);
        free(t.c.backends);
        return err2("out of memory");
    }
    /* backends first: the graph's composite ops ask them as they are built */
    rc = load_backends(&t);
    if (rc < 0) t.g = kf_load_file(t.ctx, t.c.file, t.c.nshapes, t.c.shapes);
    if (rc >= 0) {
        /* a backend failed to load */
    } else if (!t.g) {
        rc = lib_err(t.ctx);
    } else {
        t.nin = kf_graph_num_inputs(t.g);
        t.nout = kf_graph_num_outputs(t.g);
        switch (t.c.cmd) {
        case C_RUN: rc = cmd_run(&t); break;
        case C_EXPLAIN: rc = cmd_explain(&t); break;
        case C_EMIT: rc = cmd_emit(&t); break;
        default: rc = cmd_bench(&t); break;
        }
    }
    tool_free(&t);
    return rc;
}
