/*
 * onnx_conform.c - the ONNX conformance runner: walks the ONNX backend test
 * data (Debian's libonnx-testdata: node, pytorch-converted, pytorch-operator,
 * simple), loads every model with kfuse's ONNX front end, runs each
 * test_data_set_N through the compiled code (or the reference interpreter
 * with --interp) and compares with output_K.pb, with the same tolerances as
 * `kfuse run --data`.  Prints per suite passed / failed / skipped, with the
 * unsupported ops that caused the skips.
 *
 *   onnx_conform [--root DIR] [--suite NAME]... [--case SUBSTR] [--interp]
 *                [--expect FILE [--only-expected]] [--write-expect FILE]
 *                [-j N] [-v]
 *
 * --expect FILE: the committed pass list (lines "suite/case"); a listed case
 * that does not pass is a regression and makes the exit status 1.  Cases
 * that pass but are not listed are reported, not failed.  Each case runs in
 * a child process, so a crash fails that case alone.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfuse.h"

int kf_graph_verify(kf_graph *g); /* kfuse-impl.h */

#define DEFAULT_ROOT "/usr/share/libonnx-testdata/data"
#define MSG 1024
#define PATHSZ 8192

enum { R_PASS, R_FAIL, R_SKIP };

typedef struct result {
    int status;
    char msg[MSG];
} result;

typedef struct tcase {
    char suite[64];
    char name[256];
    result r;
} tcase;

static bool use_interp, verbose;

/* snprintf, for messages and paths that may be cut (no truncation warning) */
static void fmt(char *buf, size_t sz, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t sz, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sz, f, ap);
    va_end(ap);
}

static bool exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "onnx_conform: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- comparing: as `kfuse run --data` does ------------------------------- */

/* ---- one case ------------------------------------------------------------ */

static bool kf_shape_ok(const kf_tensor *t, kf_node *n)
{
    /* a 0-d output may be stored as [1] by some exporters: compare counts
     * then, shapes otherwise */
    int64_t cnt = 1;
    for (int d = 0; d < t->ndim; d++) cnt *= t->shape[d];
    if (t->ndim != kf_node_ndim(n)) return cnt == kf_node_numel(n) && (t->ndim == 0 || kf_node_ndim(n) == 0);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != kf_node_shape(n)[d]) return false;
    return true;
}

/* the skip reason of a load error: the unsupported ops, or a short text */
static void skip_reason(const char *msg, char *out, size_t sz)
{
    const char *u = strstr(msg, "(unsupported ops: ");
    if (u) {
        u += strlen("(unsupported ops: ");
        const char *e = strrchr(u, ')');
        size_t l = e ? (size_t)(e - u) : strlen(u);
        fmt(out, sz, "ops: %.*s", (int)l, u);
        return;
    }
    const char *e = strstr(msg, "error: ");
    e = e ? e + 7 : msg;
    /* "node 'NAME' (Op): what" -> "Op: what" */
    if (strncmp(e, "node '", 6) == 0) {
        const char *p = strstr(e, "' (");
        const char *q = p ? strstr(p, "): ") : NULL;
        if (p && q) {
            fmt(out, sz, "%.*s: %s", (int)(q - p - 3), p + 3, q + 3);
            return;
        }
    }
    fmt(out, sz, "%s", e);
}

static void run_case(const char *dir, result *r)
{
    char path[PATHSZ];
    kf_ctx *ctx = kf_ctx_new(NULL);
    fmt(path, sizeof path, "%s/model.onnx", dir);
    kf_graph *g = kf_load_file(ctx, path, 0, NULL);
    kf_compiled *c = NULL;
    void **in = NULL, **out = NULL;
    int nin = 0, nout = 0;
    if (!g) {
        if (kf_errcode(ctx) == KF_ERR_UNSUPPORTED) {
            r->status = R_SKIP;
            skip_reason(kf_errmsg(ctx), r->msg, MSG);
        } else {
            r->status = R_FAIL;
            fmt(r->msg, MSG, "load: %s", kf_errmsg(ctx));
        }
        goto out;
    }
    if (kf_graph_verify(g)) {
        r->status = R_FAIL;
        fmt(r->msg, MSG, "verify: %s", kf_errmsg(ctx));
        goto out;
    }
    nin = kf_graph_num_inputs(g);
    nout = kf_graph_num_outputs(g);
    if (!use_interp) {
        kf_options opt = {0};
        opt.device = KF_DEVICE_CPU;
        opt.threads = 1;
        c = kf_compile(g, &opt);
        if (!c) {
            r->status = R_FAIL;
            fmt(r->msg, MSG, "compile: %.900s", kf_errmsg(ctx));
            goto out;
        }
    }
    in = xcalloc((size_t)nin + 1, sizeof *in);
    out = xcalloc((size_t)nout + 1, sizeof *out);
    for (int k = 0; k < nout; k++) {
        kf_node *o = kf_graph_output(g, k);
        out[k] = xcalloc((size_t)kf_node_numel(o) * kf_dtype_size(kf_node_dtype(o)) + 8, 1);
    }
    int nsets = 0;
    for (int s = 0;; s++) {
        char sd[PATHSZ];
        fmt(sd, sizeof sd, "%s/test_data_set_%d", dir, s);
        if (!exists(sd)) break;
        nsets++;
        kf_tensor ti[64] = {0};
        int have = 0;
        for (int k = 0; k < 64; k++) {
            fmt(path, sizeof path, "%s/input_%d.pb", sd, k);
            if (!exists(path)) break;
            if (kf_tensor_read_pb(ctx, path, &ti[k]) != KF_OK) {
                r->status = kf_errcode(ctx) == KF_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
                if (r->status == R_SKIP) skip_reason(kf_errmsg(ctx), r->msg, MSG);
                else fmt(r->msg, MSG, "%s", kf_errmsg(ctx));
                for (int j = 0; j < k; j++) kf_tensor_free(ctx, &ti[j]);
                goto out;
            }
            have++;
        }
        int bad = 0;
        if (have != nin) {
            fmt(r->msg, MSG, "%s: %d input files for %d graph inputs", sd, have, nin);
            bad = 1;
        }
        for (int k = 0; !bad && k < nin; k++) {
            kf_node *x = kf_graph_input(g, k);
            bool ok = ti[k].dtype == kf_node_dtype(x) && ti[k].ndim == kf_node_ndim(x);
            for (int d = 0; ok && d < ti[k].ndim; d++) ok = ti[k].shape[d] == kf_node_shape(x)[d];
            if (!ok) {
                fmt(r->msg, MSG, "%s: input_%d.pb does not match input '%s' in dtype or shape",
                         sd, k, kf_node_name(x));
                bad = 1;
            }
            in[k] = ti[k].data;
        }
        kf_status st = KF_OK;
        if (!bad) st = use_interp ? kf_interpret(g, (const void *const *)in, out)
                                  : kf_run(c, (const void *const *)in, out);
        for (int k = 0; k < have; k++) kf_tensor_free(ctx, &ti[k]);
        if (bad || st != KF_OK) {
            r->status = R_FAIL;
            if (!bad) fmt(r->msg, MSG, "run: %s", kf_errmsg(ctx));
            goto out;
        }
        for (int k = 0; k < nout; k++) {
            fmt(path, sizeof path, "%s/output_%d.pb", sd, k);
            if (!exists(path)) continue;
            kf_tensor want;
            if (kf_tensor_read_pb(ctx, path, &want) != KF_OK) {
                r->status = kf_errcode(ctx) == KF_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
                if (r->status == R_SKIP) skip_reason(kf_errmsg(ctx), r->msg, MSG);
                else fmt(r->msg, MSG, "%s", kf_errmsg(ctx));
                goto out;
            }
            kf_node *o = kf_graph_output(g, k);
            kf_dtype t = kf_node_dtype(o);
            bool ok = want.dtype == t && kf_shape_ok(&want, o);
            int64_t n = kf_node_numel(o), i = ok ? kf_compare(t, kf_graph_precision(g), out[k], want.data, n, NULL) : -1;
            if (!ok) {
                r->status = R_FAIL;
                fmt(r->msg, MSG, "data set %d: output %d ('%s') has dtype %s or shape unlike "
                         "output_%d.pb (%s, rank %d)", s, k, kf_node_name(o), kf_dtype_name(t), k,
                         kf_dtype_name(want.dtype), want.ndim);
            } else if (i >= 0) {
                r->status = R_FAIL;
                fmt(r->msg, MSG, "data set %d: output %d ('%s') differs at element %lld: got "
                         "%.9g, want %.9g", s, k, kf_node_name(o), (long long)i,
                         kf_value_get(t, out[k], i), kf_value_get(t, want.data, i));
            }
            kf_tensor_free(ctx, &want);
            if (r->status == R_FAIL) goto out;
        }
    }
    if (!nsets) {
        r->status = R_FAIL;
        fmt(r->msg, MSG, "no test_data_set_N");
        goto out;
    }
    r->status = R_PASS;
out:
    for (int k = 0; out && k < nout; k++) free(out[k]);
    free(out);
    free(in);
    kf_compiled_free(c);
    kf_graph_free(g);
    kf_ctx_free(ctx);
}

/* ---- the walk ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static tcase *cases;
static int ncases, capcases;

static void list_suite(const char *root, const char *suite, const char *filter)
{
    char dir[4096];
    fmt(dir, sizeof dir, "%s/%s", root, suite);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "onnx_conform: cannot open %s: %s\n", dir, strerror(errno));
        exit(2);
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (filter && !strstr(e->d_name, filter)) continue;
        char mp[4096];
        fmt(mp, sizeof mp, "%s/%s/model.onnx", dir, e->d_name);
        if (!exists(mp)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, sizeof *names * (size_t)cap);
            if (!names) exit(2);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        if (ncases == capcases) {
            capcases = capcases ? capcases * 2 : 1024;
            cases = realloc(cases, sizeof *cases * (size_t)capcases);
            if (!cases) exit(2);
        }
        tcase *c = &cases[ncases++];
        memset(c, 0, sizeof *c);
        fmt(c->suite, sizeof c->suite, "%s", suite);
        fmt(c->name, sizeof c->name, "%s", names[i]);
        free(names[i]);
    }
    free(names);
}

/* Runs cases[todo[i]] in child processes, at most jobs at a time. */
static void run_all(const char *root, int *todo, int ntodo, int jobs)
{
    typedef struct slot {
        pid_t pid;
        int fd, idx;
    } slot;
    slot *sl = xcalloc((size_t)jobs, sizeof *sl);
    int next = 0, running = 0, done = 0;
    while (done < ntodo) {
        while (running < jobs && next < ntodo) {
            int fds[2];
            if (pipe(fds)) {
                perror("pipe");
                exit(2);
            }
            int idx = todo[next++];
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                exit(2);
            }
            if (pid == 0) {
                close(fds[0]);
                char dir[4096];
                fmt(dir, sizeof dir, "%s/%s/%s", root, cases[idx].suite, cases[idx].name);
                result r = {0};
                run_case(dir, &r);
                size_t off = 0;
                while (off < sizeof r) {
                    ssize_t w = write(fds[1], (char *)&r + off, sizeof r - off);
                    if (w <= 0) _exit(3);
                    off += (size_t)w;
                }
                _exit(0);
            }
            close(fds[1]);
            for (int k = 0; k < jobs; k++)
                if (!sl[k].pid) {
                    sl[k] = (slot){pid, fds[0], idx};
                    break;
                }
            running++;
        }
        /* the result arrives before the child exits: read whichever ends */
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            perror("waitpid");
            exit(2);
        }
        for (int k = 0; k < jobs; k++) {
            if (sl[k].pid != pid) continue;
            tcase *c = &cases[sl[k].idx];
            size_t off = 0;
            ssize_t got;
            while (off < sizeof c->r && (got = read(sl[k].fd, (char *)&c->r + off, sizeof c->r - off)) > 0)
                off += (size_t)got;
            close(sl[k].fd);
            if (off != sizeof c->r || !WIFEXITED(status) || WEXITSTATUS(status)) {
                c->r.status = R_FAIL;
                if (WIFSIGNALED(status))
                    fmt(c->r.msg, MSG, "crashed (signal %d)", WTERMSIG(status));
                else
                    fmt(c->r.msg, MSG, "the case's process failed (status %d)", status);
            }
            sl[k].pid = 0;
            running--;
            done++;
            if (verbose || c->r.status == R_FAIL)
                printf("%-5s %s/%s%s%s\n", c->r.status == R_PASS ? "PASS" : c->r.status == R_FAIL ? "FAIL" : "SKIP",
                       c->suite, c->name, c->r.status == R_PASS ? "" : ": ", c->r.status == R_PASS ? "" : c->r.msg);
            fflush(stdout);
        }
    }
    free(sl);
}

/* ---- the summary ---------------------------------------------------------- */

typedef struct count {
    char key[160];
    int n;
} count;

static void bump(count **cs, int *n, const char *key)
{
    for (int i = 0; i < *n; i++)
        if (strcmp((*cs)[i].key, key) == 0) {
            (*cs)[i].n++;
            return;
        }
    *cs = realloc(*cs, sizeof **cs * (size_t)(*n + 1));
    if (!*cs) exit(2);
    fmt((*cs)[*n].key, sizeof (*cs)[*n].key, "%s", key);
    (*cs)[(*n)++].n = 1;
}

static int cmp_count(const void *a, const void *b)
{
    const count *x = a, *y = b;
    return x->n != y->n ? y->n - x->n : strcmp(x->key, y->key);
}

static void summary(const char *suite)
{
    int p = 0, f = 0, s = 0, nc = 0;
    count *cs = NULL;
    for (int i = 0; i < ncases; i++) {
        tcase *c = &cases[i];
        if (strcmp(c->suite, suite) || c->r.status < 0) continue;
        if (c->r.status == R_PASS) p++;
        else if (c->r.status == R_FAIL) f++;
        else {
            s++;
            if (strncmp(c->r.msg, "ops: ", 5) == 0) {
                /* each unsupported op counts once per case */
                char buf[MSG];
                fmt(buf, sizeof buf, "%s", c->r.msg + 5);
                for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) bump(&cs, &nc, tok);
            } else {
                /* the reason without names in quotes, cut at its first ';' */
                char key[160];
                size_t o = 0;
                bool q = false;
                for (const char *p = c->r.msg; *p && *p != ';' && o < 100; p++) {
                    if (*p == '\'') q = !q;
                    else if (!q) key[o++] = *p;
                }
                key[o] = 0;
                bump(&cs, &nc, key);
            }
        }
    }
    if (!p && !f && !s) return;
    printf("%-18s passed %4d  failed %4d  skipped %4d\n", suite, p, f, s);
    if (nc) qsort(cs, (size_t)nc, sizeof *cs, cmp_count);
    if (nc) {
        printf("  skipped for:");
        for (int i = 0; i < nc; i++) printf("%s %s (%d)", i ? "," : "", cs[i].key, cs[i].n);
        printf("\n");
    }
    free(cs);
}

int main(int argc, char **argv)
{
    const char *root = DEFAULT_ROOT, *filter = NULL, *expect = NULL, *write_expect = NULL;
    const char *suites[16];
    int nsuites = 0, jobs = 1;
    bool only_expected = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--root") && more) root = argv[++i];
        else if (!strcmp(a, "--suite") && more && nsuites < 16) suites[nsuites++] = argv[++i];
        else if (!strcmp(a, "--case") && more) filter = argv[++i];
        else if (!strcmp(a, "--expect") && more) expect = argv[++i];
        else if (!strcmp(a, "--write-expect") && more) write_expect = argv[++i];
        else if (!strcmp(a, "--only-expected")) only_expected = true;
        else if (!strcmp(a, "--interp")) use_interp = true;
        else if (!strcmp(a, "-v")) verbose = true;
        else if (!strcmp(a, "-j") && more) jobs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: onnx_conform [--root DIR] [--suite NAME]... [--case SUBSTR] "
                    "[--interp] [--expect FILE [--only-expected]] [--write-expect FILE] [-j N] [-v]\n");
            return 2;
        }
    }
    if (jobs < 1) jobs = 1;
    if (!nsuites) {
        suites[nsuites++] = "node";
        suites[nsuites++] = "pytorch-converted";
        suites[nsuites++] = "pytorch-operator";
        suites[nsuites++] = "simple";
    }
    if (!exists(root)) {
        fprintf(stderr, "onnx_conform: %s not found (apt-get install libonnx-testdata)\n", root);
        return 2;
    }
    for (int i = 0; i < nsuites; i++) list_suite(root, suites[i], filter);

    /* the pass list */
    char **exp = NULL;
    int nexp = 0;
    if (expect) {
        FILE *f = fopen(expect, "r");
        if (!f) {
            fprintf(stderr, "onnx_conform: cannot open %s\n", expect);
            return 2;
        }
        char line[512];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#') continue;
            exp = realloc(exp, sizeof *exp * (size_t)(nexp + 1));
            exp[nexp++] = strdup(line);
        }
        fclose(f);
    }
    bool *listed = xcalloc((size_t)ncases, sizeof *listed);
    for (int i = 0; i < ncases; i++) {
        char key[512];
        fmt(key, sizeof key, "%s/%s", cases[i].suite, cases[i].name);
        for (int k = 0; k < nexp; k++)
            if (!strcmp(exp[k], key)) listed[i] = true;
    }
    int *todo = xcalloc((size_t)ncases, sizeof *todo), ntodo = 0;
    for (int i = 0; i < ncases; i++) {
        cases[i].r.status = -1;
        if (!only_expected || listed[i]) todo[ntodo++] = i;
    }
    run_all(root, todo, ntodo, jobs);

    for (int i = 0; i < nsuites; i++) summary(suites[i]);
    int regressions = 0, fresh = 0;
    for (int i = 0; i < ncases; i++) {
        if (cases[i].r.status < 0) continue;
        if (listed[i] && cases[i].r.status != R_PASS) {
            printf("REGRESSION %s/%s: %s\n", cases[i].suite, cases[i].name,
                   cases[i].r.status == R_SKIP ? "now skipped" : cases[i].r.msg);
            regressions++;
        } else if (expect && !listed[i] && cases[i].r.status == R_PASS) {
            if (verbose) printf("NEW PASS %s/%s (not in %s)\n", cases[i].suite, cases[i].name, expect);
            fresh++;
        }
    }
    if (expect) {
        /* a listed case that no longer exists */
        for (int k = 0; k < nexp; k++) {
            bool found = false;
            for (int i = 0; i < ncases && !found; i++) {
                char key[512];
                fmt(key, sizeof key, "%s/%s", cases[i].suite, cases[i].name);
                found = !strcmp(exp[k], key);
            }
            if (!found && !filter) {
                printf("REGRESSION %s: listed, but not in the test data\n", exp[k]);
                regressions++;
            }
        }
        printf("%d listed cases, %d regressions, %d passing cases not listed\n", nexp, regressions, fresh);
    }
    if (write_expect) {
        FILE *f = fopen(write_expect, "w");
        if (!f) {
            fprintf(stderr, "onnx_conform: cannot write %s\n", write_expect);
            return 2;
        }
        fprintf(f, "# ONNX backend-test cases that kfuse passes (tests/onnx/onnx_conform.c);\n"
                   "# a listed case that stops passing fails the test suite.\n");
        for (int i = 0; i < ncases; i++)
            if (cases[i].r.status == R_PASS) fprintf(f, "%s/%s\n", cases[i].suite, cases[i].name);
        fclose(f);
    }
    for (int k = 0; k < nexp; k++) free(exp[k]);
    free(exp);
    free(listed);
    free(todo);
    free(cases);
    return regressions ? 1 : 0;
}
