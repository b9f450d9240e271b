/*
 * onnx_build.c - the test-side ONNX model writer (see onnx_build.h).
 */
#include "onnx_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ob_model {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    void **allocs;
    size_t nallocs, cap;
};

static void *ob_alloc(ob_model *m, size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) abort();
    if (m->nallocs == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->allocs = realloc(m->allocs, m->cap * sizeof *m->allocs);
        if (!m->allocs) abort();
    }
    m->allocs[m->nallocs++] = p;
    return p;
}

static char *ob_strdup(ob_model *m, const char *s)
{
    char *d = ob_alloc(m, strlen(s) + 1);
    strcpy(d, s);
    return d;
}

/* grows a protobuf-c repeated field by one */
#define PUSH(m, arr, n, x)                                                           \
    do {                                                                             \
        void *np_ = ob_alloc((m), sizeof *(arr) * ((n) + 1));                        \
        if (n) memcpy(np_, (arr), sizeof *(arr) * (n));                              \
        (arr) = np_;                                                                 \
        (arr)[(n)++] = (x);                                                          \
    } while (0)

ob_model *ob_new(int opset)
{
    ob_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    onnx__model_proto__init(&m->model);
    onnx__graph_proto__init(&m->graph);
    onnx__operator_set_id_proto__init(&m->opset);
    m->model.has_ir_version = 1;
    m->model.ir_version = 8;
    m->model.producer_name = "kfuse-tests";
    m->opset.domain = "";
    m->opset.has_version = 1;
    m->opset.version = opset;
    m->opsets[0] = &m->opset;
    m->model.n_opset_import = 1;
    m->model.opset_import = m->opsets;
    m->graph.name = "g";
    m->model.graph = &m->graph;
    return m;
}

void ob_free(ob_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nallocs; i++) free(m->allocs[i]);
    free(m->allocs);
    free(m);
}

static Onnx__ValueInfoProto *value_info(ob_model *m, const char *name, int dtype, int ndim,
                                        const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = ob_alloc(m, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = ob_strdup(m, name);
    Onnx__TypeProto *tp = ob_alloc(m, sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = ob_alloc(m, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = dtype;
    if (ndim >= 0) {
        Onnx__TensorShapeProto *sp = ob_alloc(m, sizeof *sp);
        onnx__tensor_shape_proto__init(sp);
        for (int i = 0; i < ndim; i++) {
            Onnx__TensorShapeProto__Dimension *d = ob_alloc(m, sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = "N";
            }
            PUSH(m, sp->dim, sp->n_dim, d);
        }
        tt->shape = sp;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    return vi;
}

void ob_input(ob_model *m, const char *name, int dtype, int ndim, const int64_t *dims)
{
    PUSH(m, m->graph.input, m->graph.n_input, value_info(m, name, dtype, ndim, dims));
}

void ob_output(ob_model *m, const char *name, int dtype, int ndim, const int64_t *dims)
{
    PUSH(m, m->graph.output, m->graph.n_output, value_info(m, name, dtype, ndim, dims));
}

Onnx__TensorProto *ob_tensor(ob_model *m, const char *name, int dtype, int ndim,
                             const int64_t *dims, const void *raw, size_t bytes)
{
    Onnx__TensorProto *t = ob_alloc(m, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = ob_strdup(m, name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndim;
    t->dims = ob_alloc(m, sizeof(int64_t) * (size_t)(ndim + 1));
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    /* large payloads are referenced, not copied (the caller keeps them) */
    t->raw_data.data = (uint8_t *)raw;
    return t;
}

Onnx__TensorProto *ob_init(ob_model *m, const char *name, int dtype, int ndim,
                           const int64_t *dims, const void *raw, size_t bytes)
{
    Onnx__TensorProto *t = ob_tensor(m, name, dtype, ndim, dims, raw, bytes);
    PUSH(m, m->graph.initializer, m->graph.n_initializer, t);
    return t;
}

static void split_names(ob_model *m, const char *list, size_t *n, char ***out)
{
    *n = 0;
    *out = NULL;
    if (!list || !*list) return;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char *s = ob_alloc(m, l + 1);
        memcpy(s, p, l);
        PUSH(m, *out, *n, s);
        if (!e) break;
        p = e + 1;
    }
}

Onnx__NodeProto *ob_node(ob_model *m, const char *op, const char *name, const char *inputs,
                         const char *outputs)
{
    Onnx__NodeProto *n = ob_alloc(m, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = ob_strdup(m, op);
    n->name = ob_strdup(m, name ? name : "");
    split_names(m, inputs, &n->n_input, &n->input);
    split_names(m, outputs, &n->n_output, &n->output);
    PUSH(m, m->graph.node, m->graph.n_node, n);
    return n;
}

static Onnx__AttributeProto *new_attr(ob_model *m, Onnx__NodeProto *n, const char *name, int type)
{
    Onnx__AttributeProto *a = ob_alloc(m, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ob_strdup(m, name);
    a->has_type = 1;
    a->type = type;
    PUSH(m, n->attribute, n->n_attribute, a);
    return a;
}

void ob_attr_i(ob_model *m, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void ob_attr_f(ob_model *m, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void ob_attr_s(ob_model *m, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)ob_strdup(m, v);
}

void ob_attr_ints(ob_model *m, Onnx__NodeProto *n, const char *name, int k, const int64_t *v)
{
    Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)k;
    a->ints = ob_alloc(m, sizeof(int64_t) * (size_t)(k + 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)k);
}

void ob_attr_t(ob_model *m, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
    Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
}

void ob_write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "onnx_build: cannot write %s\n", path);
        abort();
    }
}

void ob_write(ob_model *m, const char *path)
{
    size_t n = onnx__model_proto__get_packed_size(&m->model);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) abort();
    onnx__model_proto__pack(&m->model, buf);
    ob_write_bytes(path, buf, n);
    free(buf);
}

void ob_write_tensor(const char *path, const char *name, int dtype, int ndim,
                     const int64_t *dims, const void *raw, size_t bytes)
{
    ob_model *m = ob_new(17);
    Onnx__TensorProto *t = ob_tensor(m, name, dtype, ndim, dims, raw, bytes);
    size_t n = onnx__tensor_proto__get_packed_size(t);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) abort();
    onnx__tensor_proto__pack(t, buf);
    ob_write_bytes(path, buf, n);
    free(buf);
    ob_free(m);
}
