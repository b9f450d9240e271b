/*
 * rn_jit.h - what test_rownorm.c and bench_rownorm.c share: building a fused
 * C unit the way kfuse does (prelude + hook code + backend source, compiled
 * with the JIT's flags by $KFUSE_CC or cc) and dlopening it.  Define
 * _POSIX_C_SOURCE 200809L before including any header.
 */
#ifndef RN_JIT_H
#define RN_JIT_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfuse_backend.h"

#define RNJ_FLAGS "-O3 -march=native -fopenmp -fPIC -shared -fno-math-errno"

/* The whole file, NUL-terminated, or NULL. */
static char *rnj_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *t = realloc(s, cap);
            if (!t) break;
            s = t;
        }
        size_t got = fread(s + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    fclose(f);
    if (s) s[n] = 0;
    return s;
}

/* Compiles the unit `text` into a shared object and dlopens it; NULL on
 * failure (the unit and the compiler log are kept and named on stderr). */
static void *rnj_build(const char *text)
{
    char dir[] = "/tmp/kf_rownorm_XXXXXX";
    if (!mkdtemp(dir)) return perror("mkdtemp"), NULL;
    char src[256], so[256], log[256], cmd[1024];
    snprintf(src, sizeof src, "%s/unit.c", dir);
    snprintf(so, sizeof so, "%s/unit.so", dir);
    snprintf(log, sizeof log, "%s/cc.log", dir);
    FILE *f = fopen(src, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) return fprintf(stderr, "cannot write %s\n", src), NULL;
    const char *cc = getenv("KFUSE_CC");
    snprintf(cmd, sizeof cmd, "%s " RNJ_FLAGS " -o %s %s -lm > %s 2>&1", cc && *cc ? cc : "cc", so, src, log);
    if (system(cmd) != 0) {
        fprintf(stderr, "compile failed: %s\n(see %s)\n", cmd, log);
        char *l = rnj_read(log);
        if (l) fprintf(stderr, "%.4000s\n", l);
        free(l);
        return NULL;
    }
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen %s: %s\n", so, dlerror());
        return NULL;
    }
    unlink(src);
    unlink(so);
    unlink(log);
    rmdir(dir);
    return h;
}

/* Appends s to the growing string *buf. */
static int rnj_cat(char **buf, size_t *len, const char *s)
{
    size_t l = strlen(s);
    char *t = realloc(*buf, *len + l + 1);
    if (!t) return -1;
    memcpy(t + *len, s, l + 1);
    *buf = t;
    *len += l;
    return 0;
}

/* A contiguous tensor of dtype t (row-major strides) for hand-built specs. */
static kf_tensor_desc rnj_td(kf_dtype t, int nd, const int64_t *shape)
{
    kf_tensor_desc d = {.name = "t", .dtype = t, .ndim = nd};
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        d.shape[k] = shape[k];
        d.strides[k] = s;
        s *= shape[k];
    }
    return d;
}

#endif
