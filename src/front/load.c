/*
 * load.c - kf_load_file: the one entry from a path to a graph.  An .onnx
 * file goes to the ONNX front end; anything else is read whole and parsed
 * as .kf text.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "front.h"

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The whole file into a kf_malloc'd buffer; NULL with KF_ERR_IO on failure. */
static char *read_file(kf_ctx *ctx, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kf_err(ctx, KF_ERR_IO, "%s: error: cannot read: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = kf_malloc(ctx, cap);
    while (buf) {
        if (n == cap) {
            char *nb = cap <= SIZE_MAX / 2 ? kf_realloc(ctx, buf, cap * 2) : NULL;
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                kf_free(ctx, buf);
                fclose(f);
                return kf_err(ctx, KF_ERR_IO, "%s: error: cannot read: %s", path,
                              strerror(e ? e : EIO));
            }
            fclose(f);
            *len = n;
            return buf;
        }
    }
    /* out of memory: kf_malloc/kf_realloc have said so */
    if (kf_errcode(ctx) == KF_OK) kf_err(ctx, KF_ERR_NOMEM, "%s: error: the file is too large", path);
    kf_free(ctx, buf);
    fclose(f);
    return NULL;
}

kf_graph *kf_load_file(kf_ctx *ctx, const char *path, int nbinds, const char *const *binds)
{
    if (!ctx) return NULL;
    if (!path) return kf_err(ctx, KF_ERR_INVALID, "kf_load_file: path is NULL");
    if (has_suffix(path, ".onnx")) return kf_onnx_load(ctx, path, nbinds, binds);
    if (nbinds > 0)
        return kf_err(ctx, KF_ERR_INVALID,
                      "%s: error: shape bindings (%s) apply to ONNX models only: "
                      "a .kf file declares its shapes", path, binds[0]);
    size_t len = 0;
    char *text = read_file(ctx, path, &len);
    if (!text) return NULL;
    kf_graph *g = kf_parse_kf(ctx, path, text, len);
    kf_free(ctx, text);
    return g;
}

/* a tensor read by kf_tensor_read_pb (front/onnx.c) */
void kf_tensor_free(kf_ctx *ctx, kf_tensor *t)
{
    if (!t) return;
    kf_free(ctx, t->data);
    kf_free(ctx, t->name);
    t->data = NULL;
    t->name = NULL;
}
