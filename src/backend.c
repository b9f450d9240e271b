/*
 * backend.c - template backends on a context: compiled-in ones registered
 * by pointer or name, plug-ins loaded from shared objects through their one
 * exported entry point, with the ABI version checked.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "kfuse-impl.h"

static kf_status add(kf_ctx *ctx, const kf_backend *b, void *handle, const char *where)
{
    if (!b) {
        kf_err(ctx, KF_ERR_INVALID, "%s: error: no backend", where);
        return KF_ERR_INVALID;
    }
    if (b->abi_version != KF_BACKEND_ABI_VERSION) {
        kf_err(ctx, KF_ERR_INVALID,
               "%s: error: backend ABI version %d, but kfuse speaks version %d", where, b->abi_version,
               KF_BACKEND_ABI_VERSION);
        return KF_ERR_INVALID;
    }
    if (!b->name || !b->implements || !b->fuse) {
        kf_err(ctx, KF_ERR_INVALID, "%s: error: the backend lacks a name, implements() or fuse()", where);
        return KF_ERR_INVALID;
    }
    for (int i = 0; i < ctx->nbackends; i++)
        if (ctx->backends[i] == b) return KF_OK;
    if (ctx->nbackends == KF_MAX_BACKENDS) {
        kf_err(ctx, KF_ERR_INVALID, "%s: error: more than %d backends", where, KF_MAX_BACKENDS);
        return KF_ERR_INVALID;
    }
    ctx->plugin[ctx->nbackends] = handle;
    ctx->backends[ctx->nbackends++] = b;
    return KF_OK;
}

kf_status kf_ctx_add_backend(kf_ctx *ctx, const kf_backend *b)
{
    if (!ctx) return KF_ERR_INVALID;
    return add(ctx, b, NULL, b && b->name ? b->name : "backend");
}

kf_status kf_ctx_load_backend(kf_ctx *ctx, const char *path)
{
    if (!ctx || !path) return KF_ERR_INVALID;
    if (!strchr(path, '/')) {
        if (strcmp(path, "rownorm") == 0) return add(ctx, kf_backend_rownorm(), NULL, path);
        kf_err(ctx, KF_ERR_INVALID,
               "%s: error: no compiled-in backend of that name (known: rownorm); a plug-in path needs a '/'",
               path);
        return KF_ERR_INVALID;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        kf_err(ctx, KF_ERR_IO, "%s: error: cannot load the backend: %s", path, dlerror());
        return KF_ERR_IO;
    }
    kf_backend_entry_fn entry;
    *(void **)&entry = dlsym(h, KF_BACKEND_ENTRY_SYMBOL);
    if (!entry) {
        dlclose(h);
        kf_err(ctx, KF_ERR_INVALID, "%s: error: not a kfuse backend: no %s() entry point", path,
               KF_BACKEND_ENTRY_SYMBOL);
        return KF_ERR_INVALID;
    }
    kf_status st = add(ctx, entry(), h, path);
    if (st != KF_OK) dlclose(h);
    return st;
}

void kf_ctx_release_backends(kf_ctx *ctx)
{
    for (int i = ctx->nbackends - 1; i >= 0; i--) {
        if (!ctx->plugin[i]) continue;
        const kf_backend *b = ctx->backends[i];
        if (b->destroy) b->destroy(b->ctx);
        dlclose(ctx->plugin[i]);
    }
    ctx->nbackends = 0;
}
