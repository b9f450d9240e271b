/*
 * util.c - the context (allocator hook, error slot), the arena, the string
 * emitter and the identifier sanitiser.  Everything else allocates through
 * here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kfuse-impl.h"

_Noreturn void kf_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: kfuse internal error: assertion '%s' failed\n",
            file, line, what);
    abort();
}

static void *default_alloc(void *ud, size_t n) { (void)ud; return malloc(n); }
static void *default_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    return realloc(p, n);
}
static void default_free(void *ud, void *p) { (void)ud; free(p); }

kf_ctx *kf_ctx_new(const kf_allocator *al)
{
    kf_allocator a = {default_alloc, default_realloc, default_free, NULL};
    if (al) a = *al;
    if (!a.alloc || !a.realloc || !a.free) return NULL;
    kf_ctx *ctx = a.alloc(a.ud, sizeof *ctx);
    if (!ctx) return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->al = a;
    return ctx;
}

void kf_ctx_free(kf_ctx *ctx)
{
    if (!ctx) return;
    kf_ctx_release_backends(ctx);
    kf_allocator a = ctx->al;
    a.free(a.ud, ctx);
}

kf_status kf_errcode(const kf_ctx *ctx) { return ctx ? ctx->status : KF_ERR_NOMEM; }
const char *kf_errmsg(const kf_ctx *ctx)
{
    return ctx ? ctx->msg : "out of memory creating the context";
}
void kf_clear_error(kf_ctx *ctx)
{
    if (!ctx) return;
    ctx->status = KF_OK;
    ctx->msg[0] = 0;
}

void *kf_verr(kf_ctx *ctx, kf_status st, const char *fmt, va_list ap)
{
    if (ctx->status != KF_OK) return NULL; /* the first error is the cause */
    ctx->status = st;
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    return NULL;
}

void *kf_err(kf_ctx *ctx, kf_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kf_verr(ctx, st, fmt, ap);
    va_end(ap);
    return NULL;
}

void *kf_malloc(kf_ctx *ctx, size_t n)
{
    void *p = ctx->al.alloc(ctx->al.ud, n ? n : 1);
    if (!p) kf_err(ctx, KF_ERR_NOMEM, "out of memory (%zu bytes)", n);
    return p;
}

void *kf_realloc(kf_ctx *ctx, void *p, size_t n)
{
    void *q = ctx->al.realloc(ctx->al.ud, p, n ? n : 1);
    if (!q) kf_err(ctx, KF_ERR_NOMEM, "out of memory (%zu bytes)", n);
    return q;
}

void kf_free(kf_ctx *ctx, void *p)
{
    if (p) ctx->al.free(ctx->al.ud, p);
}

char *kf_strdup(kf_ctx *ctx, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = kf_malloc(ctx, n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- arena ---- */
struct kf_arena_block {
    kf_arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
};

void kf_arena_init(kf_arena *a, kf_ctx *ctx)
{
    a->ctx = ctx;
    a->head = NULL;
}

void *kf_arena_alloc(kf_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    kf_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = kf_malloc(a->ctx, sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *kf_arena_strdup(kf_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = kf_arena_alloc(a, n);
    if (d) memcpy(d, s, n);
    return d;
}

void kf_arena_free(kf_arena *a)
{
    kf_arena_block *b = a->head;
    while (b) {
        kf_arena_block *next = b->next;
        kf_free(a->ctx, b);
        b = next;
    }
    a->head = NULL;
}

/* ---- emitter ---- */
void kf_buf_init(kf_buf *b, kf_ctx *ctx)
{
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
}

void kf_buf_free(kf_buf *b)
{
    kf_free(b->ctx, b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

static bool buf_reserve(kf_buf *b, size_t extra)
{
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = kf_realloc(b->ctx, b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void kf_buf_puts(kf_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!buf_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

static void buf_vprintf(kf_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return;
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void kf_buf_printf(kf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void kf_emit(kf_buf *b, const char *fmt, ...)
{
    if (fmt[0] == '}') b->indent--;
    for (int i = 0; i < b->indent; i++) kf_buf_puts(b, "    ");
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
    kf_buf_puts(b, "\n");
    size_t n = strlen(fmt);
    if (n && fmt[n - 1] == '{') b->indent++;
}

char *kf_buf_take(kf_buf *b)
{
    if (b->oom) {
        kf_buf_free(b);
        return NULL;
    }
    if (!b->s && !buf_reserve(b, 0)) return NULL;
    if (b->len == 0) b->s[0] = 0;
    char *s = b->s;
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void kf_sanitize_ident(const char *name, char *out, size_t outsz)
{
    KF_ASSERT(outsz >= 8);
    size_t o = 0;
    const char *pre = "u_";
    for (; *pre; pre++) out[o++] = *pre;
    for (const unsigned char *p = (const unsigned char *)name; *p && o + 1 < outsz; p++) {
        unsigned char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_';
        out[o++] = ok ? (char)c : '_';
    }
    out[o] = 0;
}
