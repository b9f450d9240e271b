/*
 * onnx.c - the ONNX front end: reads a ModelProto (protobuf-c bindings
 * generated from onnx.proto at build time), checks it, and builds a kf_graph
 * through the builder API, so that an ONNX model fuses exactly as the same
 * graph written in .kf would.  Sits at the "parse" step of the pipeline;
 * kf_load_file calls kf_onnx_load for *.onnx.
 *
 * Order of work: read the file; check the wire format against the schema
 * (truncation, nesting depth) before protobuf-c allocates anything; unpack;
 * decode initializers into load-time constants; declare the graph inputs
 * (static shapes, or bound with --shape); check that every op is known and
 * every input defined; sort the nodes (a cycle is an error); convert each
 * node (onnx_ops.c), folding shape arithmetic over constants at load time;
 * mark the outputs, checking them against their declared types.
 *
 * Also here: kf_tensor_read_pb, the input_K.pb / output_K.pb reader.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx-impl.h"

/* ---- files and protobuf-c ------------------------------------------------ */

/* Protobuf messages larger than 2 GiB cannot exist. */
#define MAX_FILE_BYTES ((long)INT32_MAX)
#define MAX_NESTING 48

/* protobuf-c allocates through the context's allocator; a failure is
 * remembered, since unpack reports it only as NULL */
typedef struct pb_ud {
    kf_ctx *ctx;
    bool failed;
} pb_ud;
static void *pb_alloc(void *ud, size_t n)
{
    pb_ud *u = ud;
    void *p = u->ctx->al.alloc(u->ctx->al.ud, n ? n : 1);
    if (!p) u->failed = true;
    return p;
}
static void pb_free(void *ud, void *p)
{
    pb_ud *u = ud;
    if (p) u->ctx->al.free(u->ctx->al.ud, p);
}

static uint8_t *read_file(kf_ctx *ctx, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kf_err(ctx, KF_ERR_IO, "%s: error: cannot open: %s", path, strerror(errno));
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return kf_err(ctx, KF_ERR_IO, "%s: error: cannot read: not a regular file", path);
    }
    if (n > MAX_FILE_BYTES) {
        fclose(f);
        return kf_err(ctx, KF_ERR_INVALID, "%s: error: the file has %ld bytes; a protobuf "
                      "message cannot exceed 2 GiB", path, n);
    }
    uint8_t *buf = kf_malloc(ctx, (size_t)n);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != (size_t)n) {
        kf_free(ctx, buf);
        return kf_err(ctx, KF_ERR_IO, "%s: error: read error", path);
    }
    *len = (size_t)n;
    return buf;
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Walks the wire format of a message of type d, recursing into the fields
 * that are messages, so that a truncated or corrupt file, or one nested
 * deeply enough to exhaust protobuf-c's recursion, is refused with a place
 * before anything is allocated.  base: the offset of p in the file. */
static int wire_check(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d,
                      int depth, size_t base, char *err, size_t errsz)
{
    if (depth > MAX_NESTING) {
        snprintf(err, errsz, "messages are nested more than %d deep at byte %zu", MAX_NESTING, base);
        return -1;
    }
    size_t pos = 0;
    while (pos < len) {
        size_t at = pos;
        uint64_t tag, v;
        if (get_varint(p, len, &pos, &tag)) {
            snprintf(err, errsz, "bad field tag at byte %zu", base + at);
            return -1;
        }
        uint64_t id = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (id == 0 || id > 536870911u) {
            snprintf(err, errsz, "bad field number %llu at byte %zu", (unsigned long long)id, base + at);
            return -1;
        }
        switch (wt) {
        case 0:
            if (get_varint(p, len, &pos, &v)) {
                snprintf(err, errsz, "field %llu at byte %zu: bad varint", (unsigned long long)id, base + at);
                return -1;
            }
            break;
        case 1:
        case 5: {
            size_t w = wt == 1 ? 8 : 4;
            if (len - pos < w) {
                snprintf(err, errsz, "field %llu at byte %zu runs past the end of its message",
                         (unsigned long long)id, base + at);
                return -1;
            }
            pos += w;
            break;
        }
        case 2: {
            if (get_varint(p, len, &pos, &v) || v > len - pos) {
                snprintf(err, errsz, "field %llu at byte %zu runs past the end of its message "
                         "(%zu bytes left)", (unsigned long long)id, base + at, len - pos);
                return -1;
            }
            const ProtobufCFieldDescriptor *f =
                d ? protobuf_c_message_descriptor_get_field(d, (unsigned)id) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                wire_check(p + pos, (size_t)v, f->descriptor, depth + 1, base + pos, err, errsz))
                return -1;
            pos += (size_t)v;
            break;
        }
        default:
            snprintf(err, errsz, "field %llu at byte %zu has wire type %u, which ONNX never uses",
                     (unsigned long long)id, base + at, wt);
            return -1;
        }
    }
    return 0;
}

/* ---- dtypes -------------------------------------------------------------- */

const char *kf_onnx_dtype_name(int t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
        "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
        "COMPLEX128", "BFLOAT16"};
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown dtype";
}

int kf_onnx_map_dtype(int t, kf_dtype *out)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *out = KF_F32; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: *out = KF_F64; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *out = KF_F16; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: *out = KF_BF16; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *out = KF_I64; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *out = KF_I32; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: *out = KF_I8; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: *out = KF_U8; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *out = KF_BOOL; return 1;
    default: return 0;
    }
}

static void shape_str(char *buf, size_t sz, int ndim, const int64_t *s)
{
    size_t o = (size_t)snprintf(buf, sz, "[");
    for (int i = 0; i < ndim && o < sz; i++)
        o += (size_t)snprintf(buf + o, sz - o, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (o < sz) snprintf(buf + o, sz - o, "]");
}

/* ---- TensorProto --------------------------------------------------------- */

/* Decodes t into a fresh row-major buffer (kf_malloc).  Every length is
 * checked against the data actually present, so nothing is allocated beyond
 * what the file holds.  On error: -1, message in err (no place), and *st. */
static int decode_tensor(kf_ctx *ctx, const Onnx__TensorProto *t, kf_dtype *dt, int *ndim,
                         int64_t *shape, void **data, bool *borrowed, kf_status *st, char *err,
                         size_t errsz)
{
    *borrowed = false;
    *st = KF_ERR_INVALID;
    if (!t->has_data_type) {
        snprintf(err, errsz, "the tensor has no data_type");
        return -1;
    }
    if (!kf_onnx_map_dtype(t->data_type, dt)) {
        *st = KF_ERR_UNSUPPORTED;
        snprintf(err, errsz, "dtype %s is not supported (kfuse has FLOAT DOUBLE FLOAT16 "
                 "BFLOAT16 INT64 INT32 INT8 UINT8 BOOL)", kf_onnx_dtype_name(t->data_type));
        return -1;
    }
    if (t->n_dims > KF_MAX_DIMS) {
        *st = KF_ERR_UNSUPPORTED;
        snprintf(err, errsz, "rank %zu is more than kfuse's %d dims", t->n_dims, KF_MAX_DIMS);
        return -1;
    }
    if (t->segment) {
        *st = KF_ERR_UNSUPPORTED;
        snprintf(err, errsz, "segmented tensors are not supported");
        return -1;
    }
    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        t->n_external_data) {
        *st = KF_ERR_UNSUPPORTED;
        snprintf(err, errsz, "external data is not supported (save the model with its "
                 "weights inside)");
        return -1;
    }
    uint64_t numel = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0) {
            snprintf(err, errsz, "dimension %zu is negative (%lld)", i, (long long)t->dims[i]);
            return -1;
        }
        shape[i] = t->dims[i];
        if (t->dims[i] && numel > (UINT64_C(1) << 40) / (uint64_t)t->dims[i]) {
            snprintf(err, errsz, "the shape's element count overflows");
            return -1;
        }
        numel *= (uint64_t)t->dims[i];
    }
    *ndim = (int)t->n_dims;
    size_t es = kf_dtype_size(*dt);
    char sb[160];
    shape_str(sb, sizeof sb, *ndim, shape);
    /* how many elements does each storage field hold? */
    size_t have;
    const char *field;
    if (t->has_raw_data) {
        if (t->raw_data.len != numel * es) {
            snprintf(err, errsz, "raw data has %zu bytes, but shape %s of %s needs %llu",
                     t->raw_data.len, sb, kf_onnx_dtype_name(t->data_type),
                     (unsigned long long)(numel * es));
            return -1;
        }
        /* raw data is little-endian row-major already: borrowed where the
         * caller can keep the message alive (malloc'd, so aligned) */
        if (numel && ((uintptr_t)t->raw_data.data % 8) == 0) {
            *data = t->raw_data.data;
            *borrowed = true;
            return 0;
        }
        void *d = kf_malloc(ctx, (size_t)(numel * es));
        if (!d) return *st = KF_ERR_NOMEM, snprintf(err, errsz, "out of memory"), -1;
        if (numel) memcpy(d, t->raw_data.data, (size_t)(numel * es));
        *data = d;
        return 0;
    }
    switch (*dt) {
    case KF_F32: have = t->n_float_data; field = "float_data"; break;
    case KF_F64: have = t->n_double_data; field = "double_data"; break;
    case KF_I64: have = t->n_int64_data; field = "int64_data"; break;
    default: have = t->n_int32_data; field = "int32_data"; break;
    }
    if (have != numel) {
        snprintf(err, errsz, "%s has %zu elements, but shape %s needs %llu%s", field, have, sb,
                 (unsigned long long)numel, have ? "" : " (the tensor has no data)");
        return -1;
    }
    void *d = kf_malloc(ctx, (size_t)(numel * es));
    if (!d) return *st = KF_ERR_NOMEM, snprintf(err, errsz, "out of memory"), -1;
    for (size_t i = 0; i < numel; i++) {
        switch (*dt) {
        case KF_F32: ((float *)d)[i] = t->float_data[i]; break;
        case KF_F64: ((double *)d)[i] = t->double_data[i]; break;
        case KF_I64: ((int64_t *)d)[i] = t->int64_data[i]; break;
        case KF_I32: ((int32_t *)d)[i] = t->int32_data[i]; break;
        case KF_F16:
        case KF_BF16: ((uint16_t *)d)[i] = (uint16_t)t->int32_data[i]; break;
        case KF_I8: ((int8_t *)d)[i] = (int8_t)t->int32_data[i]; break;
        case KF_U8: ((uint8_t *)d)[i] = (uint8_t)t->int32_data[i]; break;
        case KF_BOOL: ((uint8_t *)d)[i] = t->int32_data[i] != 0; break;
        default: KF_ASSERT(0);
        }
    }
    *data = d;
    return 0;
}

kf_status kf_tensor_read_pb(kf_ctx *ctx, const char *path, kf_tensor *out)
{
    memset(out, 0, sizeof *out);
    size_t len = 0;
    uint8_t *buf = read_file(ctx, path, &len);
    if (!buf) return kf_errcode(ctx);
    char err[512];
    if (wire_check(buf, len, &onnx__tensor_proto__descriptor, 0, 0, err, sizeof err)) {
        kf_free(ctx, buf);
        kf_err(ctx, KF_ERR_INVALID, "%s: error: not a valid TensorProto file: %s", path, err);
        return KF_ERR_INVALID;
    }
    pb_ud ud = {ctx, false};
    ProtobufCAllocator al = {pb_alloc, pb_free, &ud};
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(&al, len, buf);
    kf_free(ctx, buf);
    if (!t && ud.failed) {
        kf_err(ctx, KF_ERR_NOMEM, "%s: error: out of memory", path);
        return KF_ERR_NOMEM;
    }
    if (!t) {
        kf_err(ctx, KF_ERR_INVALID, "%s: error: not a valid TensorProto file", path);
        return KF_ERR_INVALID;
    }
    kf_status st;
    bool borrowed;
    if (decode_tensor(ctx, t, &out->dtype, &out->ndim, out->shape, &out->data, &borrowed, &st,
                      err, sizeof err)) {
        kf_clear_error(ctx);
        kf_err(ctx, st, "%s: error: tensor '%s': %s", path, t->name ? t->name : "", err);
        onnx__tensor_proto__free_unpacked(t, &al);
        return st;
    }
    if (borrowed) {
        /* the caller owns the result: take the bytes from the message */
        t->raw_data.data = NULL;
        t->raw_data.len = 0;
        t->has_raw_data = 0;
    }
    out->name = kf_strdup(ctx, t->name ? t->name : "");
    onnx__tensor_proto__free_unpacked(t, &al);
    if (!out->name) {
        kf_tensor_free(ctx, out);
        return KF_ERR_NOMEM;
    }
    return KF_OK;
}

/* ---- errors -------------------------------------------------------------- */

static const char *node_label(const Onnx__NodeProto *n, int idx, char *buf, size_t sz)
{
    if (n->name && *n->name) return n->name;
    if (n->n_output && n->output[0] && *n->output[0])
        snprintf(buf, sz, "#%d -> %s", idx, n->output[0]);
    else
        snprintf(buf, sz, "#%d", idx);
    return buf;
}

static int verr_node(kf_onnx_loader *L, const Onnx__NodeProto *n, int idx, kf_status st,
                     const char *fmt, va_list ap)
{
    char msg[4096], lb[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    kf_err(L->ctx, st, "%s: error: node '%s' (%s): %s", L->path, node_label(n, idx, lb, sizeof lb),
           n->op_type ? n->op_type : "?", msg);
    return -1;
}

static int err_node(kf_onnx_loader *L, const Onnx__NodeProto *n, int idx, kf_status st,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int err_node(kf_onnx_loader *L, const Onnx__NodeProto *n, int idx, kf_status st,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_node(L, n, idx, st, fmt, ap);
    va_end(ap);
    return -1;
}

int kf_onnx_err(kf_onnx_loader *L, kf_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (L->cur) {
        verr_node(L, L->cur, L->curidx, st, fmt, ap);
    } else {
        char msg[4096];
        vsnprintf(msg, sizeof msg, fmt, ap);
        kf_err(L->ctx, st, "%s: error: %s", L->path, msg);
    }
    va_end(ap);
    return -1;
}

int kf_onnx_builder_err(kf_onnx_loader *L)
{
    char msg[8192];
    kf_status st = kf_errcode(L->ctx);
    if (st == KF_OK) st = KF_ERR_INVALID;
    snprintf(msg, sizeof msg, "%s", kf_errmsg(L->ctx));
    /* already ours (an operand failed earlier) */
    size_t pl = strlen(L->path);
    if (strncmp(msg, L->path, pl) == 0 && strncmp(msg + pl, ": error: ", 9) == 0) return -1;
    /* the builder's own place ("op 'add': error: ") adds nothing here */
    const char *m = strstr(msg, "error: ");
    m = m ? m + 7 : msg;
    kf_clear_error(L->ctx);
    return kf_onnx_err(L, st, "%s", m);
}

static int err_file(kf_onnx_loader *L, kf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int err_file(kf_onnx_loader *L, kf_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kf_err(L->ctx, st, "%s: error: %s", L->path, msg);
    return -1;
}

/* ---- values -------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211u;
    return h;
}

/* The slot for name: found, or empty (NULL name) if absent. */
static kf_onnx_val *lookup(kf_onnx_loader *L, const char *name)
{
    size_t i = hash_str(name) & (L->tabcap - 1);
    while (L->tab[i].name && strcmp(L->tab[i].name, name) != 0) i = (i + 1) & (L->tabcap - 1);
    return &L->tab[i];
}

static kf_onnx_val *intern(kf_onnx_loader *L, const char *name)
{
    kf_onnx_val *v = lookup(L, name);
    if (!v->name) {
        v->name = name;
        v->producer = -1;
    }
    return v;
}

static int own(kf_onnx_loader *L, void *p)
{
    if (L->nowned == L->capowned) {
        size_t nc = L->capowned ? L->capowned * 2 : 64;
        void **q = kf_realloc(L->ctx, L->owned, nc * sizeof *q);
        if (!q) return -1;
        L->owned = q;
        L->capowned = nc;
    }
    L->owned[L->nowned++] = p;
    return 0;
}

kf_onnx_ct *kf_onnx_ct_new(kf_onnx_loader *L, kf_dtype t, int ndim, const int64_t *shape)
{
    kf_onnx_ct *c = kf_malloc(L->ctx, sizeof *c);
    if (!c) return NULL;
    if (own(L, c)) {
        kf_free(L->ctx, c);
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->t = t;
    c->ndim = ndim;
    for (int i = 0; i < ndim; i++) c->shape[i] = shape[i];
    size_t bytes = (size_t)kf_shape_numel(ndim, shape) * kf_dtype_size(t);
    c->data = kf_malloc(L->ctx, bytes);
    if (!c->data || own(L, c->data)) {
        kf_free(L->ctx, c->data);
        c->data = NULL;
        return NULL;
    }
    memset(c->data, 0, bytes ? bytes : 1);
    return c;
}

kf_onnx_ct *kf_onnx_tensor(kf_onnx_loader *L, const Onnx__TensorProto *t, const char *what)
{
    kf_onnx_ct *c = kf_malloc(L->ctx, sizeof *c);
    if (!c || own(L, c)) {
        kf_free(L->ctx, c);
        return NULL;
    }
    memset(c, 0, sizeof *c);
    char err[512];
    kf_status st;
    bool borrowed;
    if (decode_tensor(L->ctx, t, &c->t, &c->ndim, c->shape, &c->data, &borrowed, &st, err,
                      sizeof err)) {
        if (st == KF_ERR_NOMEM) return NULL;
        kf_onnx_err(L, st, "%s: %s", what, err);
        return NULL;
    }
    /* borrowed data lives as long as the message, which outlives the load */
    if (!borrowed && own(L, c->data)) {
        kf_free(L->ctx, c->data);
        return NULL;
    }
    return c;
}

kf_dtype kf_onnx_vtype(const kf_onnx_val *v) { return v->node ? v->node->dtype : v->c->t; }
int kf_onnx_vndim(const kf_onnx_val *v) { return v->node ? v->node->ndim : v->c->ndim; }
const int64_t *kf_onnx_vshape(const kf_onnx_val *v) { return v->node ? v->node->shape : v->c->shape; }

kf_node *kf_onnx_node(kf_onnx_loader *L, kf_onnx_val *v)
{
    if (v->node) return v->node;
    kf_onnx_ct *c = v->c;
    KF_ASSERT(c);
    kf_node *n = NULL;
    /* a single-element 0-d constant becomes a scalar of fixed dtype: a
     * literal in the generated code rather than a buffer */
    if (c->ndim == 0 && c->t != KF_F16 && c->t != KF_BF16) {
        double x = 0;
        int exact = 1;
        switch (c->t) {
        case KF_F64: x = *(double *)c->data; break;
        case KF_F32: x = *(float *)c->data; break;
        case KF_I64: {
            int64_t i = *(int64_t *)c->data;
            exact = i > -(INT64_C(1) << 53) && i < (INT64_C(1) << 53);
            x = (double)i;
            break;
        }
        case KF_I32: x = *(int32_t *)c->data; break;
        case KF_I8: x = *(int8_t *)c->data; break;
        case KF_U8: x = *(uint8_t *)c->data; break;
        case KF_BOOL: x = *(uint8_t *)c->data != 0; break;
        default: exact = 0;
        }
        if (exact) {
            n = kf_scalar(L->g, x, c->t);
            if (n) n->attr.keepdims = 0; /* a typed value, not a literal that adopts a dtype */
        }
    }
    if (!n) n = kf_constant(L->g, v->name, c->t, c->ndim, c->shape, c->data);
    if (!n) {
        kf_onnx_builder_err(L);
        return NULL;
    }
    if (!n->name) kf_node_set_name(n, v->name);
    v->node = n;
    return n;
}

static int set_out(kf_onnx_loader *L, int i, kf_node *n, kf_onnx_ct *c)
{
    const Onnx__NodeProto *nd = L->cur;
    if (i >= (int)nd->n_output || !nd->output[i][0]) return 0; /* not wanted */
    kf_onnx_val *v = lookup(L, nd->output[i]);
    KF_ASSERT(v->name);
    v->node = n;
    v->c = c;
    v->defined = 1;
    if (n && !n->name && n->op != KF_OP_SCALAR) kf_node_set_name(n, nd->output[i]);
    return 0;
}

int kf_onnx_set_node(kf_onnx_loader *L, int i, kf_node *n)
{
    if (!n) return kf_onnx_builder_err(L);
    return set_out(L, i, n, NULL);
}

int kf_onnx_set_const(kf_onnx_loader *L, int i, kf_onnx_ct *c)
{
    if (!c) return -1;
    return set_out(L, i, NULL, c);
}

/* ---- graph inputs and --shape binds -------------------------------------- */

static int parse_bind(kf_onnx_loader *L, const char *b, const char *name, int *nd, int64_t *dims)
{
    const char *eq = strchr(b, '=');
    if (!eq) return 0;
    if ((size_t)(eq - b) != strlen(name) || strncmp(b, name, (size_t)(eq - b)) != 0) return 0;
    const char *p = eq + 1;
    *nd = 0;
    while (*p) {
        if (*nd == KF_MAX_DIMS)
            return err_file(L, KF_ERR_INVALID, "--shape %s: more than %d dims", b, KF_MAX_DIMS), -1;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || (*end && *end != ','))
            return err_file(L, KF_ERR_INVALID, "--shape %s: dims must be non-negative integers "
                            "separated by commas", b), -1;
        dims[(*nd)++] = v;
        p = *end ? end + 1 : end;
    }
    return 1;
}

static int declare_input(kf_onnx_loader *L, const Onnx__ValueInfoProto *vi, int nbinds,
                         const char *const *binds, int *bound)
{
    const char *name = vi->name;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return err_file(L, KF_ERR_UNSUPPORTED, "graph input '%s': only tensor inputs are "
                        "supported (not sequences, maps or optionals)", name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    kf_dtype t;
    if (!tt->has_elem_type || !kf_onnx_map_dtype(tt->elem_type, &t))
        return err_file(L, KF_ERR_UNSUPPORTED, "graph input '%s': dtype %s is not supported",
                        name, kf_onnx_dtype_name(tt->has_elem_type ? tt->elem_type : 0));
    int bnd = 0, bnd_nd = 0;
    int64_t bdims[KF_MAX_DIMS];
    for (int i = 0; i < nbinds; i++) {
        int r = parse_bind(L, binds[i], name, &bnd_nd, bdims);
        if (r < 0) return -1;
        if (r) {
            bnd = 1;
            bound[i] = 1;
        }
    }
    int64_t dims[KF_MAX_DIMS];
    int nd;
    if (!tt->shape) {
        if (!bnd)
            return err_file(L, KF_ERR_INVALID, "graph input '%s' has no shape; bind it with "
                            "--shape %s=d0,d1,...", name, name);
        nd = bnd_nd;
        memcpy(dims, bdims, sizeof dims);
    } else {
        if (tt->shape->n_dim > KF_MAX_DIMS)
            return err_file(L, KF_ERR_UNSUPPORTED, "graph input '%s' has rank %zu; kfuse "
                            "supports %d dims", name, tt->shape->n_dim, KF_MAX_DIMS);
        nd = (int)tt->shape->n_dim;
        if (bnd && bnd_nd != nd)
            return err_file(L, KF_ERR_INVALID, "--shape %s: gives %d dims, but the input has "
                            "rank %d", name, bnd_nd, nd);
        for (int i = 0; i < nd; i++) {
            const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
            int fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            if (bnd) {
                if (fixed && d->dim_value != bdims[i])
                    return err_file(L, KF_ERR_INVALID, "--shape %s: dimension %d is %lld in the "
                                    "model, not %lld", name, i, (long long)d->dim_value,
                                    (long long)bdims[i]);
                dims[i] = bdims[i];
            } else if (!fixed) {
                const char *sym = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                                      ? d->dim_param : "?";
                return err_file(L, KF_ERR_UNSUPPORTED, "graph input '%s': dimension %d ('%s') is "
                                "dynamic; kfuse needs static shapes: bind it with --shape "
                                "%s=d0,d1,...", name, i, sym, name);
            } else if (d->dim_value < 0) {
                return err_file(L, KF_ERR_INVALID, "graph input '%s': dimension %d is negative "
                                "(%lld)", name, i, (long long)d->dim_value);
            } else {
                dims[i] = d->dim_value;
            }
        }
    }
    kf_node *n = kf_input(L->g, name, t, nd, dims);
    if (!n && kf_errcode(L->ctx) == KF_ERR_NOMEM) return -1;
    if (!n) {
        char msg[8192];
        snprintf(msg, sizeof msg, "%s", kf_errmsg(L->ctx));
        kf_clear_error(L->ctx);
        const char *m = strstr(msg, "error: ");
        return err_file(L, KF_ERR_INVALID, "graph input '%s': %s", name, m ? m + 7 : msg);
    }
    kf_onnx_val *v = intern(L, name);
    v->node = n;
    v->defined = 1;
    return 0;
}

/* Checks a produced output against its declared type, when declared. */
static int check_output(kf_onnx_loader *L, const Onnx__ValueInfoProto *vi, kf_node *n,
                        int producer, const Onnx__GraphProto *gp)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) return 0;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    char why[512] = "";
    kf_dtype t;
    if (tt->has_elem_type && tt->elem_type) {
        if (!kf_onnx_map_dtype(tt->elem_type, &t))
            snprintf(why, sizeof why, "is declared %s, which kfuse does not support",
                     kf_onnx_dtype_name(tt->elem_type));
        else if (t != n->dtype)
            snprintf(why, sizeof why, "is declared %s but computes %s",
                     kf_onnx_dtype_name(tt->elem_type), kf_dtype_name(n->dtype));
    }
    if (!why[0] && tt->shape) {
        int nd = (int)tt->shape->n_dim;
        bool bad = nd != n->ndim;
        for (int i = 0; !bad && i < nd; i++) {
            const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                d->dim_value != n->shape[i])
                bad = true;
        }
        if (bad) {
            char b1[160], b2[160];
            int64_t decl[KF_MAX_DIMS];
            for (int i = 0; i < nd && i < KF_MAX_DIMS; i++)
                decl[i] = tt->shape->dim[i]->value_case ==
                                  ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                              ? tt->shape->dim[i]->dim_value
                              : -1;
            shape_str(b1, sizeof b1, nd < KF_MAX_DIMS ? nd : KF_MAX_DIMS, decl);
            shape_str(b2, sizeof b2, n->ndim, n->shape);
            snprintf(why, sizeof why, "is declared with shape %s (-1: dynamic) but computes %s", b1, b2);
        }
    }
    if (!why[0]) return 0;
    if (producer >= 0)
        return err_node(L, gp->node[producer], producer, KF_ERR_INVALID, "graph output '%s' %s",
                        vi->name, why);
    return err_file(L, KF_ERR_INVALID, "graph output '%s' %s", vi->name, why);
}

/* ---- the walk ------------------------------------------------------------ */

static bool is_default_domain(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

static int check_ops(kf_onnx_loader *L, const Onnx__GraphProto *gp)
{
    /* every unsupported op type, once, so that one message lists them all */
    char list[1024] = "";
    size_t o = 0;
    int first = -1, count = 0;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        if (!n->op_type || !*n->op_type)
            return err_node(L, n, (int)i, KF_ERR_INVALID, "the node has no op_type");
        if (is_default_domain(n->domain) && kf_onnx_find_op(n->op_type)) continue;
        char full[256];
        if (is_default_domain(n->domain)) snprintf(full, sizeof full, "%s", n->op_type);
        else snprintf(full, sizeof full, "%s.%s", n->domain, n->op_type);
        /* listed already? */
        bool seen = false;
        for (const char *p = list; *p && !seen;) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            seen = l == strlen(full) && strncmp(p, full, l) == 0;
            p = e ? e + 2 : p + l;
        }
        if (seen) continue;
        if (first < 0) first = (int)i;
        if (o + strlen(full) + 3 < sizeof list)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", count ? ", " : "", full);
        count++;
    }
    if (first < 0) return 0;
    const Onnx__NodeProto *n = gp->node[first];
    if (!is_default_domain(n->domain))
        return err_node(L, n, first, KF_ERR_UNSUPPORTED, "op domain '%s' is not supported "
                        "(unsupported ops: %s)", n->domain, list);
    return err_node(L, n, first, KF_ERR_UNSUPPORTED, "op '%s' is not supported (unsupported "
                    "ops: %s)", n->op_type, list);
}

static int check_attrs(kf_onnx_loader *L, const Onnx__NodeProto *n, const kf_onnx_opdef *od)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        const char *nm = a->name ? a->name : "";
        if (a->ref_attr_name && *a->ref_attr_name)
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "attribute '%s' refers to a function "
                               "attribute, which is not supported", nm);
        size_t l = strlen(nm);
        bool ok = false;
        for (const char *p = od->attrs; p && *p && !ok;) {
            const char *e = strchr(p, ',');
            size_t k = e ? (size_t)(e - p) : strlen(p);
            ok = k == l && strncmp(p, nm, k) == 0;
            p = e ? e + 1 : p + k;
        }
        if (!ok)
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "attribute '%s' is not supported "
                               "(kfuse knows: %s)", nm, od->attrs && *od->attrs ? od->attrs : "none");
    }
    return 0;
}

/* Kahn's algorithm over the nodes; order[] receives node indices.  A node
 * left over sits on a cycle (or behind one). */
static int sort_nodes(kf_onnx_loader *L, const Onnx__GraphProto *gp, int *order)
{
    size_t nn = gp->n_node, nedge = 0;
    int *indeg = kf_malloc(L->ctx, sizeof(int) * (nn + 1));
    int *head = kf_malloc(L->ctx, sizeof(int) * (nn + 1));
    size_t cap = 1;
    for (size_t i = 0; i < nn; i++) cap += gp->node[i]->n_input;
    int *enext = kf_malloc(L->ctx, sizeof(int) * cap), *eto = kf_malloc(L->ctx, sizeof(int) * cap);
    int rc = -1;
    if (!indeg || !head || !enext || !eto) goto out;
    for (size_t i = 0; i < nn; i++) indeg[i] = 0, head[i] = -1;
    for (size_t i = 0; i < nn; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        for (size_t j = 0; j < n->n_input; j++) {
            if (!n->input[j][0]) continue;
            kf_onnx_val *v = lookup(L, n->input[j]);
            if (v->producer < 0) continue;
            /* edge producer -> i */
            eto[nedge] = (int)i;
            enext[nedge] = head[v->producer];
            head[v->producer] = (int)nedge++;
            indeg[i]++;
        }
    }
    size_t qh = 0, qt = 0;
    for (size_t i = 0; i < nn; i++)
        if (!indeg[i]) order[qt++] = (int)i;
    while (qh < qt) {
        int u = order[qh++];
        for (int e = head[u]; e >= 0; e = enext[e])
            if (--indeg[eto[e]] == 0) order[qt++] = eto[e];
    }
    if (qt < nn) {
        for (size_t i = 0; i < nn; i++)
            if (indeg[i]) {
                const Onnx__NodeProto *n = gp->node[i];
                /* name an input that closes the loop */
                const char *via = "";
                for (size_t j = 0; j < n->n_input && !*via; j++) {
                    kf_onnx_val *v = n->input[j][0] ? lookup(L, n->input[j]) : NULL;
                    if (v && v->producer >= 0 && indeg[v->producer]) via = n->input[j];
                }
                err_node(L, n, (int)i, KF_ERR_INVALID, "the graph has a cycle: this node "
                         "depends on its own output (through input '%s')", via);
                goto out;
            }
    }
    rc = 0;
out:
    kf_free(L->ctx, indeg);
    kf_free(L->ctx, head);
    kf_free(L->ctx, enext);
    kf_free(L->ctx, eto);
    return rc;
}

static int find_consumer(const Onnx__GraphProto *gp, const char *name)
{
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t j = 0; j < gp->node[i]->n_input; j++)
            if (strcmp(gp->node[i]->input[j], name) == 0) return (int)i;
    return -1;
}

static int build(kf_onnx_loader *L, const Onnx__ModelProto *m, int nbinds, const char *const *binds)
{
    if (!m->graph) return err_file(L, KF_ERR_INVALID, "the model has no graph");
    const Onnx__GraphProto *gp = m->graph;
    L->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++)
        if (is_default_domain(m->opset_import[i]->domain) && m->opset_import[i]->has_version)
            L->opset = (int)m->opset_import[i]->version;
    /* unsupported ops first: they are what a user needs to hear about */
    if (check_ops(L, gp)) return -1;
    if (L->opset < 0) {
        if (m->n_opset_import || !m->has_ir_version)
            return err_file(L, KF_ERR_INVALID, "the model imports no version of the default "
                            "(ai.onnx) opset");
        L->opset = 1;
    }
    if (gp->n_sparse_initializer)
        return err_file(L, KF_ERR_UNSUPPORTED, "sparse initializers are not supported");

    /* the symbol table never grows: every name is counted first */
    size_t names = gp->n_input + gp->n_initializer + gp->n_output + 1;
    for (size_t i = 0; i < gp->n_node; i++) names += gp->node[i]->n_input + gp->node[i]->n_output;
    L->tabcap = 16;
    while (L->tabcap < names * 2) L->tabcap *= 2;
    L->tab = kf_malloc(L->ctx, L->tabcap * sizeof *L->tab);
    if (!L->tab) return -1;
    memset(L->tab, 0, L->tabcap * sizeof *L->tab);

    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !*t->name) return err_file(L, KF_ERR_INVALID, "initializer %zu has no name", i);
        kf_onnx_val *v = intern(L, t->name);
        if (v->defined)
            return err_file(L, KF_ERR_INVALID, "initializer '%s' is given twice", t->name);
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", t->name);
        int cons = find_consumer(gp, t->name);
        if (!(v->c = kf_onnx_tensor(L, t, what))) {
            if (kf_errcode(L->ctx) == KF_ERR_NOMEM) return -1;
            /* name the node that needs it, where there is one */
            if (cons >= 0) {
                char msg[8192];
                kf_status st = kf_errcode(L->ctx);
                const char *e = strstr(kf_errmsg(L->ctx), "error: ");
                snprintf(msg, sizeof msg, "%s", e ? e + 7 : kf_errmsg(L->ctx));
                kf_clear_error(L->ctx);
                return err_node(L, gp->node[cons], cons, st, "input %s", msg);
            }
            return -1;
        }
        v->defined = 1;
    }

    /* every bind names an input that needs one */
    for (int i = 0; i < nbinds; i++) {
        const char *eq = strchr(binds[i], '=');
        bool found = false;
        for (size_t k = 0; eq && k < gp->n_input && !found; k++) {
            const char *nm = gp->input[k]->name ? gp->input[k]->name : "";
            found = strlen(nm) == (size_t)(eq - binds[i]) &&
                    strncmp(nm, binds[i], (size_t)(eq - binds[i])) == 0 && !lookup(L, nm)->c;
        }
        if (!found)
            return err_file(L, KF_ERR_INVALID, "--shape %s names no input of the model "
                            "(NAME=d0,d1,... for an input without an initializer)", binds[i]);
    }
    int *bound = kf_malloc(L->ctx, sizeof(int) * (size_t)(nbinds + 1));
    if (!bound) return -1;
    memset(bound, 0, sizeof(int) * (size_t)(nbinds + 1));
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name) {
            kf_free(L->ctx, bound);
            return err_file(L, KF_ERR_INVALID, "graph input %zu has no name", i);
        }
        kf_onnx_val *v = intern(L, vi->name);
        if (v->c) continue; /* an input with an initializer is a constant */
        if (v->defined) {
            kf_free(L->ctx, bound);
            return err_file(L, KF_ERR_INVALID, "graph input '%s' is declared twice", vi->name);
        }
        if (declare_input(L, vi, nbinds, binds, bound)) {
            kf_free(L->ctx, bound);
            return -1;
        }
    }
    for (int i = 0; i < nbinds; i++)
        if (!bound[i]) {
            kf_free(L->ctx, bound);
            return err_file(L, KF_ERR_INVALID, "--shape %s names no input of the model "
                            "(inputs without initializers only)", binds[i]);
        }
    kf_free(L->ctx, bound);

    /* producers, and every input defined somewhere */
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        for (size_t j = 0; j < n->n_output; j++) {
            if (!n->output[j][0]) continue;
            kf_onnx_val *v = intern(L, n->output[j]);
            if (v->defined || v->producer >= 0)
                return err_node(L, n, (int)i, KF_ERR_INVALID, "output '%s' is already defined "
                                "(by %s)", n->output[j], v->producer >= 0 ? "another node" :
                                v->c ? "an initializer" : "a graph input");
            v->producer = (int)i;
        }
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        for (size_t j = 0; j < n->n_input; j++) {
            if (!n->input[j][0]) continue;
            kf_onnx_val *v = lookup(L, n->input[j]);
            if (!v->name || (!v->defined && v->producer < 0))
                return err_node(L, n, (int)i, KF_ERR_INVALID, "input %zu '%s' is not defined: no "
                                "node computes it and it is neither a graph input nor an "
                                "initializer (a missing initializer?)", j, n->input[j]);
        }
    }

    int *order = kf_malloc(L->ctx, sizeof(int) * (gp->n_node + 1));
    if (!order) return -1;
    if (sort_nodes(L, gp, order)) {
        kf_free(L->ctx, order);
        return -1;
    }
    for (size_t k = 0; k < gp->n_node; k++) {
        int i = order[k];
        const Onnx__NodeProto *n = gp->node[i];
        const kf_onnx_opdef *od = kf_onnx_find_op(n->op_type);
        L->cur = n;
        L->curidx = i;
        kf_onnx_val *in[64];
        if (n->n_input > 64) {
            kf_free(L->ctx, order);
            return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "%zu inputs; kfuse takes at most 64",
                               n->n_input);
        }
        for (size_t j = 0; j < n->n_input; j++)
            in[j] = n->input[j][0] ? lookup(L, n->input[j]) : NULL;
        if ((int)n->n_input < od->min_in || (int)n->n_input > od->max_in) {
            kf_free(L->ctx, order);
            return kf_onnx_err(L, KF_ERR_INVALID, "takes %d to %d inputs, not %zu", od->min_in,
                               od->max_in, n->n_input);
        }
        if (check_attrs(L, n, od) || od->fn(L, n, in, (int)n->n_input)) {
            kf_free(L->ctx, order);
            return -1;
        }
        for (size_t j = 0; j < n->n_output; j++)
            if (n->output[j][0] && !lookup(L, n->output[j])->defined) {
                kf_free(L->ctx, order);
                return kf_onnx_err(L, KF_ERR_UNSUPPORTED, "output %zu ('%s') is not supported", j,
                                   n->output[j]);
            }
    }
    kf_free(L->ctx, order);
    L->cur = NULL;

    if (!gp->n_output) return err_file(L, KF_ERR_INVALID, "the graph has no outputs");
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !*vi->name) return err_file(L, KF_ERR_INVALID, "graph output %zu has no name", i);
        kf_onnx_val *v = lookup(L, vi->name);
        if (!v->name || !v->defined)
            return err_file(L, KF_ERR_INVALID, "graph output '%s' is not computed by any node",
                            vi->name);
        kf_node *nd = kf_onnx_node(L, v);
        if (!nd) return -1;
        if (check_output(L, vi, nd, v->producer, gp)) return -1;
        if (kf_output(L->g, nd)) return kf_onnx_builder_err(L);
        /* the output's own name, even where it copies an input or a view */
        kf_node *o = kf_graph_output(L->g, kf_graph_num_outputs(L->g) - 1);
        if (o != nd && !o->name) kf_node_set_name(o, vi->name);
    }
    return 0;
}

/* The model's bytes: mapped (no copy, no page-faulted buffer for a large
 * model), else read.  *mapped tells which, for release_file. */
static uint8_t *map_file(kf_ctx *ctx, const char *path, size_t *len, bool *mapped)
{
    *mapped = false;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
            sb.st_size <= MAX_FILE_BYTES) {
            void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p != MAP_FAILED) {
                close(fd);
                *len = (size_t)sb.st_size;
                *mapped = true;
                return p;
            }
        }
        close(fd);
    }
    return read_file(ctx, path, len);
}

static void release_file(kf_ctx *ctx, uint8_t *buf, size_t len, bool mapped)
{
    if (mapped) munmap(buf, len);
    else kf_free(ctx, buf);
}

kf_graph *kf_onnx_load(kf_ctx *ctx, const char *path, int nbinds, const char *const *binds)
{
    if (!ctx) return NULL;
    size_t len = 0;
    bool mapped;
    uint8_t *buf = map_file(ctx, path, &len, &mapped);
    if (!buf) return NULL;
    char err[512];
    if (len == 0) {
        release_file(ctx, buf, len, mapped);
        return kf_err(ctx, KF_ERR_INVALID, "%s: error: the file is empty, not an ONNX model", path);
    }
    if (wire_check(buf, len, &onnx__model_proto__descriptor, 0, 0, err, sizeof err)) {
        release_file(ctx, buf, len, mapped);
        return kf_err(ctx, KF_ERR_INVALID, "%s: error: not an ONNX model, or a truncated or "
                      "corrupt one: %s", path, err);
    }
    pb_ud ud = {ctx, false};
    ProtobufCAllocator al = {pb_alloc, pb_free, &ud};
    Onnx__ModelProto *m = onnx__model_proto__unpack(&al, len, buf);
    release_file(ctx, buf, len, mapped);
    if (!m && ud.failed) return kf_err(ctx, KF_ERR_NOMEM, "%s: error: out of memory", path);
    if (!m)
        return kf_err(ctx, KF_ERR_INVALID, "%s: error: not an ONNX model, or a corrupt one "
                      "(the protobuf does not decode as a ModelProto)", path);
    if (!m->has_ir_version && !m->graph) {
        onnx__model_proto__free_unpacked(m, &al);
        return kf_err(ctx, KF_ERR_INVALID, "%s: error: not an ONNX model (no ir_version and no "
                      "graph)", path);
    }
    kf_onnx_loader L = {0};
    L.ctx = ctx;
    L.path = path;
    L.g = kf_graph_new(ctx);
    int rc = L.g ? build(&L, m, nbinds, binds) : -1;
    for (size_t i = 0; i < L.nowned; i++) kf_free(ctx, L.owned[i]);
    kf_free(ctx, L.owned);
    kf_free(ctx, L.tab);
    onnx__model_proto__free_unpacked(m, &al);
    if (rc) {
        kf_graph_free(L.g);
        return NULL;
    }
    return L.g;
}
