/*
 * jit.h - compiles generated C with the system compiler into a shared
 * object, cached on disk by a hash of source, compiler and flags, and loads
 * it with dlopen.
 */
#ifndef KFUSE_JIT_H
#define KFUSE_JIT_H

#include "../kfuse-impl.h"

typedef struct kf_jit_lib {
    void *handle;
    char src_path[1024];
    char so_path[1024];
    bool cached;          /* the object came from the cache */
} kf_jit_lib;

/* Compiles src (or finds it cached) and dlopens it.  On failure: an error
 * naming the generated source file, with the compiler's log. */
int kf_jit_compile_c(kf_ctx *ctx, const char *src, const char *cache_dir, kf_jit_lib *out);
void *kf_jit_symbol(kf_jit_lib *lib, const char *name);
void kf_jit_close(kf_jit_lib *lib);

/* The cache directory in use: opt, $KFUSE_CACHE_DIR, $XDG_CACHE_HOME/kfuse,
 * $HOME/.cache/kfuse; created mode 0700.  0 or -1 with an error. */
int kf_jit_cache_dir(kf_ctx *ctx, const char *opt, char *out, size_t outsz);

/* Shared with the CUDA JIT (cuda.c), so both key one cache the same way:
 * FNV-1a over n bytes from h (start: 0xcbf29ce484222325), and an atomic
 * write (a temporary file renamed into place). */
uint64_t kf_jit_hash(uint64_t h, const void *p, size_t n);
int kf_jit_write_file(const char *path, const void *data, size_t n);

#endif
