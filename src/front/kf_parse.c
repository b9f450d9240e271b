/*
 * kf_parse.c - the .kf text front end: a hand-written lexer and a recursive
 * descent parser that build a kf_graph through the public builder.  It is
 * the first stage of the pipeline (parse -> verify -> lower -> ...).
 *
 * The parser checks the syntax, names and attributes itself; every shape and
 * dtype rule is the builder's, which reports at the place set with
 * kf_graph_set_loc just before each call.  Either way an error reads
 * "FILE:LINE:COL: error: ..." (1-based; a tab counts as one column).  Any
 * byte string is a valid input: garbage gets an error, never a crash.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

#define MAX_NAME 255       /* longest identifier */
#define MAX_DEPTH 256      /* deepest nesting of calls */
#define MAX_OPERANDS 64    /* the builder's limit too */
#define MAX_TARGETS 16     /* names left of one '=' */

/* ---- tokens ------------------------------------------------------------ */

typedef enum tkind {
    T_EOF, T_NL, T_IDENT, T_INT, T_FLOAT,
    T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA, T_EQ, T_COLON,
    T_ERR /* a lexical error; its message is in parser.lexerr */
} tkind;

typedef struct tok {
    tkind k;
    int line, col;
    size_t off, len; /* the token's text in the source */
    int64_t i;       /* T_INT */
    double f;        /* T_FLOAT */
} tok;

typedef struct sym {
    char *name;
    kf_node *node;
} sym;

typedef struct parser {
    kf_ctx *ctx;
    kf_graph *g;
    const char *file;
    const char *src;
    size_t len, pos;
    int line, col;
    tok la[2]; /* lookahead */
    int nla;
    char lexerr[160];
    bool lexfailed;
    sym *syms; /* open-addressing hash table of defined names */
    size_t nsyms, capsyms;
    int depth;
} parser;

static int sat_inc(int v) { return v < INT_MAX ? v + 1 : v; }

static bool is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c) || c == '.'; }

static int src_at(const parser *p, size_t i)
{
    return i < p->len ? (unsigned char)p->src[i] : -1;
}

static void advance_chars(parser *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p->col = sat_inc(p->col);
    p->pos += n;
}

static tok lex_error(parser *p, tok t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tok lex_error(parser *p, tok t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->lexerr, sizeof p->lexerr, fmt, ap);
    va_end(ap);
    p->lexfailed = true;
    t.k = T_ERR;
    return t;
}

/* Does the word at i (an identifier) equal w, with nothing glued on? */
static bool word_at(const parser *p, size_t i, const char *w)
{
    size_t n = strlen(w);
    if (i + n > p->len || memcmp(p->src + i, w, n) != 0) return false;
    return !is_ident_char(src_at(p, i + n));
}

/* A number: [+-] then digits, a fraction, an exponent, or inf / nan. */
static tok lex_number(parser *p, tok t)
{
    size_t i = p->pos;
    bool neg = false;
    if (src_at(p, i) == '+' || src_at(p, i) == '-') neg = src_at(p, i++) == '-';
    if (word_at(p, i, "inf") || word_at(p, i, "nan")) {
        t.k = T_FLOAT;
        t.f = p->src[i] == 'i' ? INFINITY : NAN;
        if (neg) t.f = -t.f;
        t.len = i + 3 - p->pos;
        advance_chars(p, t.len);
        return t;
    }
    bool isfloat = false, overflow = false;
    uint64_t mag = 0;
    while (is_digit(src_at(p, i))) {
        unsigned d = (unsigned)(src_at(p, i++) - '0');
        if (mag > (UINT64_MAX - d) / 10) overflow = true;
        else mag = mag * 10 + d;
    }
    if (src_at(p, i) == '.') {
        isfloat = true;
        i++;
        while (is_digit(src_at(p, i))) i++;
    }
    if (src_at(p, i) == 'e' || src_at(p, i) == 'E') {
        isfloat = true;
        i++;
        if (src_at(p, i) == '+' || src_at(p, i) == '-') i++;
        if (!is_digit(src_at(p, i))) return lex_error(p, t, "malformed number: no digits in the exponent");
        while (is_digit(src_at(p, i))) i++;
    }
    if (is_ident_char(src_at(p, i)))
        return lex_error(p, t, "malformed number: unexpected '%c' after it", src_at(p, i));
    t.len = i - p->pos;
    if (isfloat) {
        char buf[320];
        if (t.len >= sizeof buf) return lex_error(p, t, "number is too long");
        memcpy(buf, p->src + p->pos, t.len);
        buf[t.len] = 0;
        t.k = T_FLOAT;
        t.f = strtod(buf, NULL);
    } else {
        uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (overflow || mag > lim) {
            if (t.len > 40)
                return lex_error(p, t, "integer literal overflows int64");
            return lex_error(p, t, "integer literal %.*s overflows int64", (int)t.len,
                             p->src + p->pos);
        }
        t.k = T_INT;
        t.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    advance_chars(p, t.len);
    return t;
}

static tok lex(parser *p)
{
    tok t = {0};
    if (p->lexfailed) { /* the error token repeats */
        t.k = T_ERR;
        t.line = p->line;
        t.col = p->col;
        return t;
    }
    for (;;) {
        int c = src_at(p, p->pos);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            advance_chars(p, 1);
        } else if (c == '#') {
            while (p->pos < p->len && p->src[p->pos] != '\n') advance_chars(p, 1);
        } else {
            break;
        }
    }
    t.line = p->line;
    t.col = p->col;
    t.off = p->pos;
    int c = src_at(p, p->pos);
    if (c < 0) {
        t.k = T_EOF;
        return t;
    }
    if (c == '\n') {
        t.k = T_NL;
        t.len = 1;
        p->pos++;
        p->line = sat_inc(p->line);
        p->col = 1;
        return t;
    }
    if (is_ident_start(c)) {
        size_t i = p->pos;
        while (is_ident_char(src_at(p, i))) i++;
        if (word_at(p, p->pos, "inf") || word_at(p, p->pos, "nan")) return lex_number(p, t);
        t.len = i - p->pos;
        if (t.len > MAX_NAME) return lex_error(p, t, "name is too long (at most %d characters)", MAX_NAME);
        t.k = T_IDENT;
        advance_chars(p, t.len);
        return t;
    }
    int c1 = src_at(p, p->pos + 1);
    if (is_digit(c) || (c == '.' && is_digit(c1)))
        return lex_number(p, t);
    if (c == '+' || c == '-') {
        int c2 = src_at(p, p->pos + 2);
        if (is_digit(c1) || (c1 == '.' && is_digit(c2)) || word_at(p, p->pos + 1, "inf") ||
            word_at(p, p->pos + 1, "nan"))
            return lex_number(p, t);
    }
    static const char punct[] = "()[],=:";
    static const tkind pkind[] = {T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA, T_EQ, T_COLON};
    const char *q = c ? strchr(punct, c) : NULL;
    if (q) {
        t.k = pkind[q - punct];
        t.len = 1;
        advance_chars(p, 1);
        return t;
    }
    if (c > ' ' && c < 127) return lex_error(p, t, "unexpected character '%c'", c);
    return lex_error(p, t, "unexpected byte 0x%02x", c);
}

static tok peek(parser *p, int i)
{
    while (p->nla <= i) p->la[p->nla++] = lex(p);
    return p->la[i];
}

static tok next(parser *p)
{
    tok t = peek(p, 0);
    p->la[0] = p->la[1];
    p->nla--;
    return t;
}

/* ---- errors ------------------------------------------------------------ */

static void *perr(parser *p, const tok *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *perr(parser *p, const tok *t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kf_err(p->ctx, KF_ERR_INVALID, "%s:%d:%d: error: %s", p->file, t->line, t->col, msg);
    return NULL;
}

/* A token as the messages show it. */
static const char *describe(const parser *p, const tok *t, char *buf, size_t sz)
{
    switch (t->k) {
    case T_EOF: return "end of file";
    case T_NL: return "end of line";
    case T_ERR: return "an invalid token";
    default: break;
    }
    int n = (int)(t->len > 40 ? 40 : t->len);
    snprintf(buf, sz, "'%.*s%s'", n, p->src + t->off, t->len > 40 ? "..." : "");
    return buf;
}

static void *unexpected(parser *p, const tok *t, const char *expected)
{
    if (t->k == T_ERR) return perr(p, t, "%s", p->lexerr);
    char d[64];
    return perr(p, t, "expected %s, found %s", expected, describe(p, t, d, sizeof d));
}

/* The text of an identifier token, NUL-terminated. */
static const char *tok_text(const parser *p, const tok *t, char *buf)
{
    memcpy(buf, p->src + t->off, t->len);
    buf[t->len] = 0;
    return buf;
}

static bool tok_is(const parser *p, const tok *t, const char *w)
{
    return t->k == T_IDENT && t->len == strlen(w) && memcmp(p->src + t->off, w, t->len) == 0;
}

static bool at_eol(const tok *t) { return t->k == T_NL || t->k == T_EOF; }

static bool expect_eol(parser *p)
{
    tok t = peek(p, 0);
    if (at_eol(&t)) return true;
    unexpected(p, &t, "end of line");
    return false;
}

/* ---- names ------------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static sym *sym_slot(parser *p, const char *name)
{
    if (!p->capsyms) return NULL;
    size_t mask = p->capsyms - 1, i = (size_t)hash_name(name) & mask;
    while (p->syms[i].name && strcmp(p->syms[i].name, name) != 0) i = (i + 1) & mask;
    return &p->syms[i];
}

static kf_node *sym_lookup(parser *p, const char *name)
{
    sym *s = sym_slot(p, name);
    return s && s->name ? s->node : NULL;
}

static bool sym_define(parser *p, const char *name, kf_node *n)
{
    if ((p->nsyms + 1) * 2 > p->capsyms) {
        size_t nc = p->capsyms ? p->capsyms * 2 : 64;
        sym *old = p->syms;
        size_t oldcap = p->capsyms;
        p->syms = kf_malloc(p->ctx, sizeof *p->syms * nc);
        if (!p->syms) {
            p->syms = old;
            return false;
        }
        memset(p->syms, 0, sizeof *p->syms * nc);
        p->capsyms = nc;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].name) *sym_slot(p, old[i].name) = old[i];
        kf_free(p->ctx, old);
    }
    char *copy = kf_strdup(p->ctx, name);
    if (!copy) return false;
    sym *s = sym_slot(p, name);
    s->name = copy;
    s->node = n;
    p->nsyms++;
    return true;
}

/* A name about to be defined must be new. */
static bool check_new_name(parser *p, const tok *t)
{
    char nb[MAX_NAME + 1];
    tok_text(p, t, nb);
    if (!strcmp(nb, "true") || !strcmp(nb, "false")) {
        perr(p, t, "'%s' is a literal and cannot be a name", nb);
        return false;
    }
    if (sym_lookup(p, nb)) {
        perr(p, t, "'%s' is already defined", nb);
        return false;
    }
    return true;
}

/* ---- attributes -------------------------------------------------------- */

enum { A_AXIS, A_KEEPDIMS, A_DTYPE, A_PERM, A_SHAPE, A_START, A_END, A_STEP, A_EPS, A_NONE };
static const char *const attr_names[] = {"axis", "keepdims", "dtype", "perm", "shape",
                                         "start", "end", "step", "eps"};

/* The attributes op takes, in positional order, ending with A_NONE. */
static const int *op_attrs(int op)
{
    static const int reduce[] = {A_AXIS, A_KEEPDIMS, A_NONE};
    static const int axis[] = {A_AXIS, A_NONE};
    static const int norm[] = {A_AXIS, A_EPS, A_NONE};
    static const int cast[] = {A_DTYPE, A_NONE};
    static const int perm[] = {A_PERM, A_NONE};
    static const int shape[] = {A_SHAPE, A_NONE};
    static const int slice[] = {A_AXIS, A_START, A_END, A_STEP, A_NONE};
    static const int none[] = {A_NONE};
    switch (op) {
    case KF_OP_SUM: case KF_OP_MAX: case KF_OP_MIN: case KF_OP_MEAN: return reduce;
    case KF_OP_SOFTMAX: case KF_OP_CONCAT: return axis;
    case KF_OP_LAYER_NORM: case KF_OP_RMS_NORM: return norm;
    case KF_OP_CAST: return cast;
    case KF_OP_TRANSPOSE: return perm;
    case KF_OP_RESHAPE: case KF_OP_EXPAND: return shape;
    case KF_OP_SLICE: return slice;
    default: return none;
    }
}

static int count_attrs(const int *a)
{
    int n = 0;
    while (a[n] != A_NONE) n++;
    return n;
}

static bool op_takes(int op, int attr)
{
    for (const int *a = op_attrs(op); *a != A_NONE; a++)
        if (*a == attr) return true;
    return false;
}

typedef struct aval {
    tok t;   /* the value's first token, for errors */
    int n;   /* list entries; -1 when not a list */
    int64_t list[KF_MAX_DIMS];
} aval;

/* An attribute value: a number, a word or a list of integers. */
static bool parse_aval(parser *p, aval *v)
{
    v->t = next(p);
    v->n = -1;
    switch (v->t.k) {
    case T_INT: case T_FLOAT: case T_IDENT: return true;
    case T_LBRACK: break;
    default: unexpected(p, &v->t, "an attribute value"); return false;
    }
    v->n = 0;
    if (peek(p, 0).k == T_RBRACK) {
        next(p);
        return true;
    }
    for (;;) {
        tok e = next(p);
        if (e.k != T_INT) {
            if (e.k == T_FLOAT || e.k == T_IDENT)
                perr(p, &e, "list entries must be integers");
            else
                unexpected(p, &e, "an integer");
            return false;
        }
        if (v->n == KF_MAX_DIMS) {
            perr(p, &e, "too many entries in the list (at most %d)", KF_MAX_DIMS);
            return false;
        }
        v->list[v->n++] = e.i;
        tok s = next(p);
        if (s.k == T_RBRACK) return true;
        if (s.k != T_COMMA) {
            unexpected(p, &s, at_eol(&s) ? "']' to close the list" : "',' or ']'");
            return false;
        }
    }
}

/* Reductions take a list of axes; softmax, the norms, slice and concat one. */
static bool single_axis_op(int op)
{
    return op != KF_OP_SUM && op != KF_OP_MAX && op != KF_OP_MIN && op != KF_OP_MEAN;
}

/* Stores attribute a of op from v into at. */
static bool set_attr(parser *p, int op, int a, const aval *v, kf_attrs *at)
{
    const char *an = attr_names[a];
    const tok *t = &v->t;
    char wb[MAX_NAME + 1];
    switch (a) {
    case A_AXIS:
        if (t->k == T_INT) {
            at->naxes = 1;
            at->axes[0] = t->i;
            return true;
        }
        if (v->n >= 0) {
            if (single_axis_op(op) && v->n != 1)
                return perr(p, t, "'%s' takes a single axis, not a list of %d", kf_ops[op].name, v->n), false;
            at->naxes = v->n;
            memcpy(at->axes, v->list, sizeof v->list);
            return true;
        }
        return perr(p, t, "attribute 'axis' must be an integer%s",
                    single_axis_op(op) ? "" : " or a list of integers"), false;
    case A_KEEPDIMS:
        if ((t->k == T_INT && (t->i == 0 || t->i == 1)) || tok_is(p, t, "true") ||
            tok_is(p, t, "false")) {
            at->keepdims = t->k == T_INT ? (int)t->i : tok_is(p, t, "true");
            return true;
        }
        return perr(p, t, "attribute 'keepdims' must be true, false, 0 or 1"), false;
    case A_DTYPE:
        if (t->k == T_IDENT) {
            if (kf_dtype_parse(tok_text(p, t, wb), &at->dtype)) return at->has_dtype = 1, true;
            return perr(p, t, "unknown dtype '%s' (dtypes: f64 f32 f16 bf16 i64 i32 i8 u8 bool)", wb), false;
        }
        return perr(p, t, "attribute 'dtype' must be a dtype name"), false;
    case A_PERM:
    case A_SHAPE:
        if (v->n < 0) return perr(p, t, "attribute '%s' must be a list of integers", an), false;
        if (a == A_PERM) {
            at->nperm = v->n;
            memcpy(at->perm, v->list, sizeof v->list);
        } else {
            at->nshape = v->n;
            memcpy(at->shape, v->list, sizeof v->list);
        }
        return true;
    case A_START:
    case A_END:
    case A_STEP:
        if (t->k != T_INT || v->n >= 0) return perr(p, t, "attribute '%s' must be an integer", an), false;
        if (a == A_START) at->start = t->i;
        else if (a == A_END) at->end = t->i;
        else if (t->i == 0) return perr(p, t, "attribute 'step' must not be 0"), false;
        else at->step = t->i;
        return true;
    case A_EPS:
        if (t->k != T_INT && t->k != T_FLOAT) return perr(p, t, "attribute 'eps' must be a number"), false;
        at->eps = t->k == T_INT ? (double)t->i : t->f;
        at->has_eps = 1;
        return true;
    default: KF_ASSERT(0);
    }
    return false;
}

/* ---- expressions ------------------------------------------------------- */

static kf_node *parse_expr(parser *p);

/* Did a builder call fail without saying why?  (It always says; this keeps
 * a NULL from ever being returned without a message.) */
static void builder_failed(parser *p, const tok *t, const char *op)
{
    if (kf_errcode(p->ctx) == KF_OK) perr(p, t, "building '%s' failed", op);
}

/* op(args): want is the number of results the caller takes (1, or the
 * count of names left of '=' in a statement); out[] receives them. */
static bool parse_call(parser *p, int want, kf_node **out)
{
    tok optok = next(p);
    char opname[MAX_NAME + 1];
    tok_text(p, &optok, opname);
    int arity = kf_op_arity(opname);
    if (arity == 0) return perr(p, &optok, "unknown op '%s'", opname), false;
    int op = kf_op_lookup(opname);
    int nres = kf_op_nresults(opname);
    if (want > 1 && want != nres)
        return perr(p, &optok, "'%s' has %d result%s, %d names given", opname, nres,
                    nres == 1 ? "" : "s", want), false;
    if (p->depth >= MAX_DEPTH)
        return perr(p, &optok, "calls are nested too deeply (at most %d levels)", MAX_DEPTH), false;
    p->depth++;
    next(p); /* '(' (the caller has seen it) */

    int maxops = arity < 0 ? MAX_OPERANDS : arity;
    int minops = op == KF_OP_LAYER_NORM ? 2 : arity < 0 ? 1 : arity;
    const int *posattr = op_attrs(op);
    int nposattr = count_attrs(posattr);
    kf_node *in[MAX_OPERANDS];
    int nin = 0, npos = 0;
    bool seen_kw = false, seen[A_NONE] = {0};
    kf_attrs at = {0};
    at.end = INT64_MAX;

    if (peek(p, 0).k == T_RPAREN) {
        next(p);
    } else {
        for (;;) {
            tok a = peek(p, 0);
            if (a.k == T_RPAREN) return perr(p, &a, "expected an argument after ','"), false;
            if (a.k == T_IDENT && peek(p, 1).k == T_EQ) { /* key=value */
                next(p);
                next(p);
                char key[MAX_NAME + 1];
                tok_text(p, &a, key);
                int k = A_NONE;
                for (int i = 0; i < A_NONE; i++)
                    if (strcmp(key, attr_names[i]) == 0) k = i;
                if (strcmp(key, "axes") == 0) k = A_AXIS;
                if (k == A_NONE) return perr(p, &a, "unknown attribute '%s'", key), false;
                if (!op_takes(op, k))
                    return perr(p, &a, "'%s' takes no attribute '%s'", opname, key), false;
                if (seen[k]) return perr(p, &a, "attribute '%s' is given twice", attr_names[k]), false;
                seen[k] = true;
                seen_kw = true;
                aval v;
                if (!parse_aval(p, &v) || !set_attr(p, op, k, &v, &at)) return false;
            } else if (seen_kw && a.k != T_ERR) {
                return perr(p, &a, "a positional argument follows a keyword argument"), false;
            } else if (nin < maxops) { /* an operand */
                if (!(in[nin++] = parse_expr(p))) return false;
            } else if (npos < nposattr) { /* a positional attribute */
                int k = posattr[npos++];
                seen[k] = true;
                aval v;
                if (!parse_aval(p, &v) || !set_attr(p, op, k, &v, &at)) return false;
            } else if (arity < 0) {
                return perr(p, &a, "too many operands for '%s' (at most %d)", opname, MAX_OPERANDS), false;
            } else {
                char list[96] = "";
                for (int i = 0; i < nposattr; i++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                             i ? ", " : " then ", attr_names[posattr[i]]);
                return perr(p, &a, "too many arguments: '%s' takes %d operand%s%s", opname,
                            arity, arity == 1 ? "" : "s", list), false;
            }
            tok s = next(p);
            if (s.k == T_RPAREN) break;
            if (s.k != T_COMMA)
                return unexpected(p, &s, at_eol(&s) ? "')' to close the call" : "',' or ')'"), false;
        }
    }
    if (nin < minops) {
        if (op == KF_OP_LAYER_NORM)
            return perr(p, &optok, "'%s' takes 2 or 3 operands, %d given", opname, nin), false;
        return perr(p, &optok, "'%s' takes %s%d operand%s, %d given", opname,
                    arity < 0 ? "at least " : "", minops, minops == 1 ? "" : "s", nin), false;
    }
    kf_graph_set_loc(p->g, p->file, optok.line, optok.col);
    if (want > 1) {
        if (kf_apply_multi(p->g, opname, nin, in, &at, out) != 0) {
            builder_failed(p, &optok, opname);
            return false;
        }
    } else if (!(out[0] = kf_apply(p->g, opname, nin, in, &at))) {
        builder_failed(p, &optok, opname);
        return false;
    }
    p->depth--;
    return true;
}

/* A call, a name or a number. */
static kf_node *parse_expr(parser *p)
{
    tok t = peek(p, 0);
    char nb[MAX_NAME + 1];
    if (t.k == T_IDENT && peek(p, 1).k == T_LPAREN) {
        kf_node *out[3] = {0};
        return parse_call(p, 1, out) ? out[0] : NULL;
    }
    if (t.k == T_IDENT) {
        tok t1 = peek(p, 1);
        if (t1.k == T_ERR) return unexpected(p, &t1, "");
        next(p);
        if (tok_is(p, &t, "true") || tok_is(p, &t, "false")) { /* a literal, for bool operands */
            kf_graph_set_loc(p->g, p->file, t.line, t.col);
            kf_node *n = kf_scalar(p->g, tok_is(p, &t, "true") ? 1.0 : 0.0, KF_F32);
            if (!n) builder_failed(p, &t, "scalar");
            return n;
        }
        kf_node *n = sym_lookup(p, tok_text(p, &t, nb));
        if (n) return n;
        if (kf_op_arity(nb))
            return perr(p, &t, "undefined name '%s' ('%s' is an op: call it as %s(...))", nb, nb, nb);
        return perr(p, &t, "undefined name '%s'", nb);
    }
    if (t.k == T_INT || t.k == T_FLOAT) {
        next(p);
        kf_graph_set_loc(p->g, p->file, t.line, t.col);
        kf_node *n = kf_scalar(p->g, t.k == T_INT ? (double)t.i : t.f, KF_F32);
        if (!n) builder_failed(p, &t, "scalar");
        return n;
    }
    return unexpected(p, &t, "an expression (a call, a name or a number)");
}

/* ---- statements -------------------------------------------------------- */

/* input NAME : DTYPE [d0, d1, ...] */
static bool parse_input(parser *p)
{
    tok kw = next(p), name = next(p);
    char nb[MAX_NAME + 1], db[MAX_NAME + 1];
    if (name.k != T_IDENT) return unexpected(p, &name, "an input name"), false;
    if (!check_new_name(p, &name)) return false;
    tok_text(p, &name, nb);
    tok t = next(p);
    if (t.k != T_COLON) return unexpected(p, &t, "':' after the input name"), false;
    tok dt = next(p);
    kf_dtype dtype;
    if (dt.k != T_IDENT) return unexpected(p, &dt, "a dtype"), false;
    if (!kf_dtype_parse(tok_text(p, &dt, db), &dtype))
        return perr(p, &dt, "unknown dtype '%s' (dtypes: f64 f32 f16 bf16 i64 i32 i8 u8 bool)", db), false;
    t = next(p);
    if (t.k != T_LBRACK) return unexpected(p, &t, "'[' and the shape after the dtype"), false;
    int64_t dims[KF_MAX_DIMS];
    int nd = 0;
    if (peek(p, 0).k == T_RBRACK) {
        next(p);
    } else {
        for (;;) {
            tok d = next(p);
            if (d.k == T_INT && d.i < 0)
                return perr(p, &d, "dimension %lld is negative", (long long)d.i), false;
            if (d.k == T_FLOAT || d.k == T_IDENT)
                return perr(p, &d, "a dimension must be a non-negative integer"), false;
            if (d.k != T_INT) return unexpected(p, &d, "a dimension"), false;
            if (nd == KF_MAX_DIMS)
                return perr(p, &d, "too many dimensions (at most %d)", KF_MAX_DIMS), false;
            dims[nd++] = d.i;
            tok s = next(p);
            if (s.k == T_RBRACK) break;
            if (s.k != T_COMMA)
                return unexpected(p, &s, at_eol(&s) ? "']' to close the shape" : "',' or ']'"), false;
        }
    }
    if (!expect_eol(p)) return false;
    kf_graph_set_loc(p->g, p->file, kw.line, kw.col);
    kf_node *n = kf_input(p->g, nb, dtype, nd, dims);
    if (!n) return builder_failed(p, &kw, "input"), false;
    return sym_define(p, nb, n);
}

/* output NAME, NAME, ... */
static bool parse_output(parser *p)
{
    next(p);
    for (;;) {
        tok t = next(p);
        char nb[MAX_NAME + 1];
        if (t.k != T_IDENT) return unexpected(p, &t, "the name of an output"), false;
        kf_node *n = sym_lookup(p, tok_text(p, &t, nb));
        if (!n) return perr(p, &t, "undefined name '%s'", nb), false;
        kf_graph_set_loc(p->g, p->file, t.line, t.col);
        if (kf_output(p->g, n) != 0) return builder_failed(p, &t, "output"), false;
        /* an output that kf_output had to copy (an input, a view, a repeat)
         * is known by the name written here */
        kf_node *o = kf_graph_output(p->g, kf_graph_num_outputs(p->g) - 1);
        if (o != n) kf_node_set_name(o, nb);
        tok s = peek(p, 0);
        if (at_eol(&s)) return true;
        next(p);
        if (s.k != T_COMMA) return unexpected(p, &s, "',' or end of line"), false;
    }
}

/* NAME, ... = EXPR */
static bool parse_assign(parser *p)
{
    tok names[MAX_TARGETS];
    int n = 0;
    for (;;) {
        tok t = next(p);
        if (t.k != T_IDENT) return unexpected(p, &t, "a name"), false;
        if (n == MAX_TARGETS) return perr(p, &t, "too many names (at most %d)", MAX_TARGETS), false;
        if (!check_new_name(p, &t)) return false;
        for (int i = 0; i < n; i++)
            if (t.len == names[i].len && memcmp(p->src + t.off, p->src + names[i].off, t.len) == 0)
                return perr(p, &t, "'%.*s' is named twice", (int)t.len, p->src + t.off), false;
        names[n++] = t;
        tok s = next(p);
        if (s.k == T_EQ) break;
        if (s.k != T_COMMA) return unexpected(p, &s, "'=' or ','"), false;
    }
    tok r = peek(p, 0);
    kf_node *out[MAX_TARGETS] = {0};
    if (r.k == T_IDENT && peek(p, 1).k == T_LPAREN) {
        if (!parse_call(p, n, out)) return false;
    } else {
        if (n > 1 && (r.k == T_IDENT || r.k == T_INT || r.k == T_FLOAT))
            return perr(p, &r, "a name or number is one value, %d names given", n), false;
        if (!(out[0] = parse_expr(p))) return false;
    }
    if (!expect_eol(p)) return false;
    for (int i = 0; i < n; i++) {
        char nb[MAX_NAME + 1];
        tok_text(p, &names[i], nb);
        if (!kf_node_name(out[i])) kf_node_set_name(out[i], nb);
        if (!sym_define(p, nb, out[i])) return false;
    }
    return true;
}

static bool parse_stmt(parser *p)
{
    tok t = peek(p, 0);
    if (t.k == T_IDENT) {
        tkind k1 = peek(p, 1).k;
        bool stmt_kw = k1 != T_EQ && k1 != T_COMMA;
        if (stmt_kw && tok_is(p, &t, "input")) return parse_input(p);
        if (stmt_kw && tok_is(p, &t, "output")) return parse_output(p);
        return parse_assign(p);
    }
    return unexpected(p, &t, "a statement ('input', 'output' or NAME = ...)"), false;
}

kf_graph *kf_parse_kf(kf_ctx *ctx, const char *filename, const char *text, size_t len)
{
    if (!ctx) return NULL;
    if (!text && len) return kf_err(ctx, KF_ERR_INVALID, "kf_parse_kf: text is NULL");
    parser p = {0};
    p.ctx = ctx;
    p.file = filename ? filename : "<string>";
    p.src = text ? text : "";
    p.len = len;
    p.line = p.col = 1;
    p.g = kf_graph_new(ctx);
    if (!p.g) return NULL;

    bool ok = true;
    int nstmts = 0;
    for (;;) {
        tok t = peek(&p, 0);
        if (t.k == T_EOF) break;
        if (t.k == T_NL) {
            next(&p);
            continue;
        }
        if (!(ok = parse_stmt(&p))) break;
        nstmts++;
    }
    if (ok) {
        tok eof = peek(&p, 0);
        if (nstmts == 0) {
            ok = false;
            perr(&p, &eof, "empty file: no statements");
        } else if (kf_graph_num_outputs(p.g) == 0) {
            ok = false;
            perr(&p, &eof, "missing 'output' statement: the graph has no outputs");
        }
    }
    kf_graph_set_loc(p.g, NULL, 0, 0); /* nodes added later have no place here */
    if (ok && kf_graph_verify(p.g) != 0) ok = false;

    for (size_t i = 0; i < p.capsyms; i++) kf_free(ctx, p.syms[i].name);
    kf_free(ctx, p.syms);
    if (!ok) {
        if (kf_errcode(ctx) == KF_OK) kf_err(ctx, KF_ERR_INVALID, "%s: error: parse failed", p.file);
        kf_graph_free(p.g);
        return NULL;
    }
    return p.g;
}
