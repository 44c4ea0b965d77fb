/* Chat templates: the evaluator (statements, expressions, operators, scopes) and
 * lnx_template_render. */
#include "template_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* break / continue travel up to their loop as these (positive, never returned to callers) */
enum { FLOW_BREAK = 100, FLOW_CONTINUE = 101 };

struct tpl_frame {
    tpl_frame *up;
    tpl_str *names;
    tpl_value *vals;
    size_t n, cap;
};

static lnx_status frame_new(tpl_render *r, tpl_frame **out)
{
    tpl_frame *f = tpl_alloc(&r->ar, sizeof *f);
    if (!f)
        return tpl_arena_status();
    memset(f, 0, sizeof *f);
    f->up = r->scope;
    *out = f;
    return LNX_OK;
}

static lnx_status frame_set(tpl_render *r, tpl_frame *f, tpl_str name, const tpl_value *v)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->names[i].n == name.n && memcmp(f->names[i].p, name.p, name.n) == 0) {
            f->vals[i] = *v;
            return LNX_OK;
        }
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        tpl_str *names = tpl_alloc_n(&r->ar, cap, sizeof *names);
        tpl_value *vals = tpl_alloc_n(&r->ar, cap, sizeof *vals);
        if (!names || !vals)
            return tpl_arena_status();
        if (f->n) {
            memcpy(names, f->names, f->n * sizeof *names);
            memcpy(vals, f->vals, f->n * sizeof *vals);
        }
        f->names = names;
        f->vals = vals;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = *v;
    f->n++;
    return LNX_OK;
}

static int lookup(const tpl_render *r, tpl_str name, tpl_value *out)
{
    for (const tpl_frame *f = r->scope; f; f = f->up)
        for (size_t i = f->n; i-- > 0;)
            if (f->names[i].n == name.n && memcmp(f->names[i].p, name.p, name.n) == 0) {
                *out = f->vals[i];
                return 1;
            }
    return 0;
}

static tpl_str cstr(const char *s)
{
    tpl_str t = {s, strlen(s)};
    return t;
}

static lnx_status step(tpl_render *r, size_t pos)
{
    if (++r->steps > TPL_MAX_STEPS)
        return tpl_fail(r, pos, LNX_E_LIMIT, "template evaluation exceeds %llu steps",
                        (unsigned long long)TPL_MAX_STEPS);
    return LNX_OK;
}

lnx_status tpl_charge(tpl_render *r, size_t pos, size_t bytes)
{
    r->steps += bytes / 16;
    return step(r, pos);
}

static lnx_status enter(tpl_render *r, size_t pos)
{
    LNX_TRY(step(r, pos));
    if (++r->depth > TPL_MAX_EVAL_DEPTH)
        return tpl_fail(r, pos, LNX_E_LIMIT, "template evaluation nested too deeply (more than %d levels)",
                        TPL_MAX_EVAL_DEPTH);
    return LNX_OK;
}

/* ---- operators ------------------------------------------------------------------------------ */

static int is_num(const tpl_value *v)
{
    return v->kind == TV_BOOL || v->kind == TV_INT || v->kind == TV_FLOAT;
}

static int64_t as_int(const tpl_value *v)
{
    return v->kind == TV_BOOL ? v->u.b : v->u.i;
}

static double as_float(const tpl_value *v)
{
    return v->kind == TV_FLOAT ? v->u.f : (double)as_int(v);
}

static const char *op_symbol(int op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    default: return "**";
    }
}

static lnx_status overflow(const tpl_render *r, size_t pos)
{
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "integer overflow");
}

static lnx_status int_arith(const tpl_render *r, size_t pos, int op, int64_t x, int64_t y, tpl_value *out)
{
    int64_t z = 0;
    switch (op) {
    case OP_ADD:
        if (__builtin_add_overflow(x, y, &z))
            return overflow(r, pos);
        break;
    case OP_SUB:
        if (__builtin_sub_overflow(x, y, &z))
            return overflow(r, pos);
        break;
    case OP_MUL:
        if (__builtin_mul_overflow(x, y, &z))
            return overflow(r, pos);
        break;
    case OP_DIV:
        if (y == 0)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "division by zero");
        *out = tpl_float((double)x / (double)y);
        return LNX_OK;
    case OP_FLOORDIV:
    case OP_MOD:
        if (y == 0)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) {
            if (op == OP_FLOORDIV)
                return overflow(r, pos);
            z = 0;
            break;
        }
        z = op == OP_FLOORDIV ? x / y : x % y;
        if ((x % y != 0) && ((x < 0) != (y < 0)))
            z = op == OP_FLOORDIV ? z - 1 : z + y;
        break;
    default:
        if (y < 0) {
            *out = tpl_float(pow((double)x, (double)y));
            return LNX_OK;
        }
        z = 1;
        for (int64_t base = x, e = y; e > 0; e >>= 1) {
            if ((e & 1) && __builtin_mul_overflow(z, base, &z))
                return overflow(r, pos);
            if (e > 1 && __builtin_mul_overflow(base, base, &base))
                return overflow(r, pos);
        }
        break;
    }
    *out = tpl_int(z);
    return LNX_OK;
}

static lnx_status float_arith(const tpl_render *r, size_t pos, int op, double x, double y, tpl_value *out)
{
    double z;
    switch (op) {
    case OP_ADD: z = x + y; break;
    case OP_SUB: z = x - y; break;
    case OP_MUL: z = x * y; break;
    case OP_DIV:
    case OP_FLOORDIV:
    case OP_MOD:
        if (y == 0)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "float division by zero");
        if (op == OP_DIV) {
            z = x / y;
        } else if (op == OP_FLOORDIV) {
            z = floor(x / y);
        } else {
            z = fmod(x, y);
            if (z != 0 && ((z < 0) != (y < 0)))
                z += y;
        }
        break;
    default: z = pow(x, y); break;
    }
    *out = tpl_float(z);
    return LNX_OK;
}

static lnx_status repeat(tpl_render *r, size_t pos, const tpl_value *seq, int64_t times, tpl_value *out)
{
    if (times < 0)
        times = 0;
    if (seq->kind == TV_STR) {
        if (seq->u.s.n && (uint64_t)times > LNX_TEMPLATE_MAX_OUTPUT / seq->u.s.n)
            return tpl_fail(r, pos, LNX_E_LIMIT, "string repetition too large");
        tpl_buf b = {.ar = &r->ar, .limit = LNX_TEMPLATE_MAX_OUTPUT};
        for (int64_t i = 0; i < times && seq->u.s.n; i++)
            LNX_TRY(tpl_buf_put(&b, seq->u.s.p, seq->u.s.n));
        *out = tpl_string(b.p ? b.p : "", b.n);
        return LNX_OK;
    }
    size_t n = tpl_list_len(seq);
    if (n && (uint64_t)times > (LNX_TEMPLATE_MAX_OUTPUT / sizeof(tpl_value)) / n)
        return tpl_fail(r, pos, LNX_E_LIMIT, "list repetition too large");
    LNX_TRY(tpl_new_list(r, n * (size_t)times, out));
    out->u.list->tuple = seq->kind == TV_LIST && seq->u.list->tuple;
    for (size_t k = 0; k < n * (size_t)times; k++)
        out->u.list->items[k] = tpl_list_get(seq, k % n);
    return LNX_OK;
}

lnx_status tpl_binop(tpl_render *r, size_t pos, int op, const tpl_value *a, const tpl_value *b, tpl_value *out)
{
    if (a->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, a);
    if (b->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, b);
    if (is_num(a) && is_num(b)) {
        if (a->kind == TV_FLOAT || b->kind == TV_FLOAT)
            return float_arith(r, pos, op, as_float(a), as_float(b), out);
        return int_arith(r, pos, op, as_int(a), as_int(b), out);
    }
    if (op == OP_ADD && a->kind == TV_STR && b->kind == TV_STR) {
        if (a->u.s.n + b->u.s.n > LNX_TEMPLATE_MAX_OUTPUT)
            return tpl_fail(r, pos, LNX_E_LIMIT, "string too long");
        char *p = tpl_alloc(&r->ar, a->u.s.n + b->u.s.n + 1);
        if (!p)
            return tpl_arena_status();
        if (a->u.s.n)
            memcpy(p, a->u.s.p, a->u.s.n);
        if (b->u.s.n)
            memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
        p[a->u.s.n + b->u.s.n] = '\0';
        *out = tpl_string(p, a->u.s.n + b->u.s.n);
        return LNX_OK;
    }
    if (op == OP_ADD && tpl_is_list(a) && tpl_is_list(b) && !strcmp(tpl_type_name(a), tpl_type_name(b))) {
        size_t na = tpl_list_len(a), nb = tpl_list_len(b);
        LNX_TRY(tpl_new_list(r, na + nb, out));
        out->u.list->tuple = a->kind == TV_LIST && a->u.list->tuple;
        for (size_t i = 0; i < na; i++)
            out->u.list->items[i] = tpl_list_get(a, i);
        for (size_t i = 0; i < nb; i++)
            out->u.list->items[na + i] = tpl_list_get(b, i);
        return LNX_OK;
    }
    if (op == OP_MUL && (a->kind == TV_STR || tpl_is_list(a)) && (b->kind == TV_INT || b->kind == TV_BOOL))
        return repeat(r, pos, a, as_int(b), out);
    if (op == OP_MUL && (b->kind == TV_STR || tpl_is_list(b)) && (a->kind == TV_INT || a->kind == TV_BOOL))
        return repeat(r, pos, b, as_int(a), out);
    if (op == OP_MOD && a->kind == TV_STR)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "string formatting with '%%' is not supported");
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(op),
                    tpl_type_name(a), tpl_type_name(b));
}

static lnx_status contains(tpl_render *r, size_t pos, const tpl_value *item, const tpl_value *seq, int *out)
{
    *out = 0;
    if (seq->kind == TV_STR) {
        if (item->kind != TV_STR)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "'in <string>' requires string as left operand, not %s",
                            tpl_type_name(item));
        LNX_TRY(tpl_charge(r, pos, seq->u.s.n));
        *out = item->u.s.n == 0 || (item->u.s.n <= seq->u.s.n &&
                                    memmem(seq->u.s.p, seq->u.s.n, item->u.s.p, item->u.s.n) != NULL);
        return LNX_OK;
    }
    if (tpl_is_list(seq)) {
        size_t n = tpl_list_len(seq);
        for (size_t i = 0; i < n && !*out; i++) {
            tpl_value x = tpl_list_get(seq, i);
            LNX_TRY(tpl_equal(r, pos, item, &x, out, 0));
        }
        return LNX_OK;
    }
    if (tpl_is_dict(seq)) {
        tpl_value dummy;
        *out = item->kind == TV_STR && tpl_dict_find(seq, item->u.s.p, item->u.s.n, &dummy);
        return LNX_OK;
    }
    if (seq->kind == TV_UNDEF)
        return LNX_OK;
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "argument of type '%s' is not iterable", tpl_type_name(seq));
}

static lnx_status compare(tpl_render *r, size_t pos, int op, const tpl_value *a, const tpl_value *b, int *out)
{
    int c;
    switch (op) {
    case OP_EQ:
    case OP_NE:
        LNX_TRY(tpl_equal(r, pos, a, b, &c, 0));
        *out = op == OP_EQ ? c : !c;
        return LNX_OK;
    case OP_IN:
    case OP_NOTIN:
        LNX_TRY(contains(r, pos, a, b, &c));
        *out = op == OP_IN ? c : !c;
        return LNX_OK;
    default:
        LNX_TRY(tpl_order(r, pos, a, b, &c, 0));
        *out = op == OP_LT ? c < 0 : op == OP_GT ? c > 0 : op == OP_LE ? c <= 0 : c >= 0;
        return LNX_OK;
    }
}

/* ---- expressions ---------------------------------------------------------------------------- */

static lnx_status eval(tpl_render *r, const tpl_node *n, tpl_value *out);

static lnx_status eval_args(tpl_render *r, const tpl_node *n, tpl_args *a)
{
    tpl_value *pos = tpl_alloc_n(&r->ar, n->nkids + 1, sizeof *pos);
    tpl_value *kw = tpl_alloc_n(&r->ar, n->nkids2 + 1, sizeof *kw);
    tpl_str *names = tpl_alloc_n(&r->ar, n->nkids2 + 1, sizeof *names);
    if (!pos || !kw || !names)
        return tpl_arena_status();
    for (size_t i = 0; i < n->nkids; i++)
        LNX_TRY(eval(r, n->kids[i], &pos[i]));
    for (size_t i = 0; i < n->nkids2; i++) {
        names[i] = n->kids2[i]->str;
        LNX_TRY(eval(r, n->kids2[i]->a, &kw[i]));
    }
    a->pos = pos;
    a->npos = n->nkids;
    a->kwnames = names;
    a->kw = kw;
    a->nkw = n->nkids2;
    return LNX_OK;
}

static lnx_status eval_call(tpl_render *r, const tpl_node *n, tpl_value *out)
{
    const tpl_node *callee = n->a;
    tpl_args args;
    tpl_value fn;
    if (callee->kind == N_GETATTR) {
        tpl_value obj;
        LNX_TRY(eval(r, callee->a, &obj));
        if (obj.kind == TV_UNDEF)
            return tpl_undefined_error(r, callee->pos, &obj);
        LNX_TRY(eval_args(r, n, &args));
        return tpl_call_method(r, callee->pos, &obj, callee->str, &args, out);
    }
    LNX_TRY(eval(r, callee, &fn));
    if (fn.kind == TV_UNDEF)
        return tpl_undefined_error(r, callee->pos, &fn);
    if (fn.kind != TV_FUNC)
        return tpl_fail(r, n->pos, LNX_E_TEMPLATE, "'%s' object is not callable", tpl_type_name(&fn));
    LNX_TRY(eval_args(r, n, &args));
    return tpl_call_global(r, n->pos, fn.u.fn, &args, out);
}

static lnx_status eval_compare(tpl_render *r, const tpl_node *n, tpl_value *out)
{
    tpl_value left, right;
    LNX_TRY(eval(r, n->a, &left));
    for (size_t i = 0; i < n->nkids; i++) {
        const tpl_node *operand = n->kids[i];
        int ok;
        LNX_TRY(eval(r, operand->a, &right));
        LNX_TRY(compare(r, operand->pos, operand->op, &left, &right, &ok));
        if (!ok) {
            *out = tpl_bool(0);
            return LNX_OK;
        }
        left = right;
    }
    *out = tpl_bool(1);
    return LNX_OK;
}

static lnx_status eval_sequence(tpl_render *r, const tpl_node *n, tpl_value *out)
{
    LNX_TRY(tpl_new_list(r, n->nkids, out));
    out->u.list->tuple = n->kind == N_TUPLE;
    for (size_t i = 0; i < n->nkids; i++)
        LNX_TRY(eval(r, n->kids[i], &out->u.list->items[i]));
    return LNX_OK;
}

static lnx_status eval_dict(tpl_render *r, const tpl_node *n, tpl_value *out)
{
    LNX_TRY(tpl_new_dict(r, out));
    for (size_t i = 0; i < n->nkids; i++) {
        tpl_value k, v;
        LNX_TRY(eval(r, n->kids[i], &k));
        if (k.kind != TV_STR)
            return tpl_fail(r, n->kids[i]->pos, LNX_E_TEMPLATE, "dict keys must be strings, not %s",
                            tpl_type_name(&k));
        LNX_TRY(eval(r, n->kids2[i], &v));
        LNX_TRY(tpl_dict_set(r, out->u.dict, k.u.s, &v));
    }
    return LNX_OK;
}

static lnx_status eval_concat(tpl_render *r, const tpl_node *n, tpl_value *out)
{
    tpl_buf b = {.ar = &r->ar, .limit = LNX_TEMPLATE_MAX_OUTPUT};
    for (size_t i = 0; i < n->nkids; i++) {
        tpl_value v;
        LNX_TRY(eval(r, n->kids[i], &v));
        LNX_TRY(tpl_write_str(r, &b, &v));
    }
    *out = tpl_string(b.p ? b.p : "", b.n);
    return LNX_OK;
}

static lnx_status eval_node(tpl_render *r, const tpl_node *n, tpl_value *out)
{
    tpl_value a, b, c, d;
    tpl_args args;
    int t;
    switch (n->kind) {
    case N_CONST: *out = n->val; return LNX_OK;
    case N_NAME:
        if (!lookup(r, n->str, out))
            *out = tpl_undef(n);
        return LNX_OK;
    case N_GETATTR:
        LNX_TRY(eval(r, n->a, &a));
        return tpl_getattr(r, n, &a, n->str, out);
    case N_GETITEM:
        LNX_TRY(eval(r, n->a, &a));
        LNX_TRY(eval(r, n->b, &b));
        return tpl_getitem(r, n, &a, &b, out);
    case N_SLICE:
        LNX_TRY(eval(r, n->a, &a));
        if (n->b)
            LNX_TRY(eval(r, n->b, &b));
        if (n->c)
            LNX_TRY(eval(r, n->c, &c));
        if (n->d)
            LNX_TRY(eval(r, n->d, &d));
        return tpl_slice(r, n->pos, &a, n->b ? &b : NULL, n->c ? &c : NULL, n->d ? &d : NULL, out);
    case N_CALL: return eval_call(r, n, out);
    case N_FILTER:
        LNX_TRY(eval(r, n->a, &a));
        LNX_TRY(eval_args(r, n, &args));
        return tpl_call_filter(r, n->pos, n->str, &a, &args, out);
    case N_TEST:
        LNX_TRY(eval(r, n->a, &a));
        LNX_TRY(eval_args(r, n, &args));
        LNX_TRY(tpl_call_test(r, n->pos, n->str, &a, &args, &t));
        *out = tpl_bool(n->op ? !t : t);
        return LNX_OK;
    case N_BINOP:
        LNX_TRY(eval(r, n->a, &a));
        LNX_TRY(eval(r, n->b, &b));
        return tpl_binop(r, n->pos, n->op, &a, &b, out);
    case N_NEG:
    case N_POS:
        LNX_TRY(eval(r, n->a, &a));
        if (a.kind == TV_UNDEF)
            return tpl_undefined_error(r, n->pos, &a);
        if (!is_num(&a))
            return tpl_fail(r, n->pos, LNX_E_TEMPLATE, "bad operand type for unary %s: '%s'",
                            n->kind == N_NEG ? "-" : "+", tpl_type_name(&a));
        if (n->kind == N_POS)
            *out = a.kind == TV_BOOL ? tpl_int(a.u.b) : a;
        else if (a.kind == TV_FLOAT)
            *out = tpl_float(-a.u.f);
        else if (as_int(&a) == INT64_MIN)
            return overflow(r, n->pos);
        else
            *out = tpl_int(-as_int(&a));
        return LNX_OK;
    case N_NOT:
        LNX_TRY(eval(r, n->a, &a));
        *out = tpl_bool(!tpl_truthy(&a));
        return LNX_OK;
    case N_AND:
    case N_OR:
        LNX_TRY(eval(r, n->a, out));
        if (tpl_truthy(out) == (n->kind == N_OR))
            return LNX_OK;
        return eval(r, n->b, out);
    case N_COMPARE: return eval_compare(r, n, out);
    case N_CONCAT: return eval_concat(r, n, out);
    case N_COND:
        LNX_TRY(eval(r, n->a, &a));
        if (tpl_truthy(&a))
            return eval(r, n->b, out);
        if (n->c)
            return eval(r, n->c, out);
        *out = tpl_undef(n);
        return LNX_OK;
    case N_LIST:
    case N_TUPLE: return eval_sequence(r, n, out);
    case N_DICT: return eval_dict(r, n, out);
    default: return tpl_fail(r, n->pos, LNX_E_INTERNAL, "unexpected node in expression");
    }
}

static lnx_status eval(tpl_render *r, const tpl_node *n, tpl_value *out)
{
    LNX_TRY(enter(r, n->pos));
    lnx_status st = eval_node(r, n, out);
    r->depth--;
    return st;
}

/* ---- statements ----------------------------------------------------------------------------- */

static lnx_status exec(tpl_render *r, const tpl_node *n);

static lnx_status exec_body(tpl_render *r, tpl_node *const *kids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        LNX_TRY(exec(r, kids[i]));
    return LNX_OK;
}

/* Binds a name or unpacks a value into a tuple of names. */
static lnx_status bind(tpl_render *r, tpl_frame *f, const tpl_node *target, const tpl_value *v)
{
    if (target->kind == N_NAME)
        return frame_set(r, f, target->str, v);
    const tpl_value *items;
    size_t n;
    if (v->kind == TV_UNDEF)
        return tpl_undefined_error(r, target->pos, v);
    LNX_TRY(tpl_iterate(r, target->pos, v, &items, &n));
    if (n != target->nkids)
        return tpl_fail(r, target->pos, LNX_E_TEMPLATE, "%s values to unpack (expected %zu, got %zu)",
                        n > target->nkids ? "too many" : "not enough", target->nkids, n);
    for (size_t i = 0; i < n; i++)
        LNX_TRY(frame_set(r, f, target->kids[i]->str, &items[i]));
    return LNX_OK;
}

static lnx_status exec_for(tpl_render *r, const tpl_node *n)
{
    tpl_value seq;
    const tpl_value *items;
    size_t count;
    LNX_TRY(eval(r, n->a, &seq));
    LNX_TRY(tpl_iterate(r, n->a->pos, &seq, &items, &count));
    tpl_frame *f = NULL;
    LNX_TRY(frame_new(r, &f));
    tpl_frame *outer = r->scope;
    r->scope = f;
    lnx_status st = LNX_OK;
    if (n->b && count) {
        tpl_value *kept = tpl_alloc_n(&r->ar, count, sizeof *kept);
        if (!kept)
            st = tpl_arena_status();
        size_t k = 0;
        for (size_t i = 0; i < count && st == LNX_OK; i++) {
            tpl_value cond;
            f->n = 0;
            st = bind(r, f, n->c, &items[i]);
            if (st == LNX_OK)
                st = eval(r, n->b, &cond);
            if (st == LNX_OK && tpl_truthy(&cond))
                kept[k++] = items[i];
        }
        items = kept;
        count = k;
    }
    tpl_loop *loop = st == LNX_OK ? tpl_alloc(&r->ar, sizeof *loop) : NULL;
    if (st == LNX_OK && !loop)
        st = tpl_arena_status();
    if (st == LNX_OK) {
        loop->length = (int64_t)count;
        loop->items = items;
        tpl_value lv = {.kind = TV_LOOP, .u.loop = loop};
        for (size_t i = 0; i < count; i++) {
            f->n = 0;
            loop->index0 = (int64_t)i;
            st = step(r, n->pos);
            if (st == LNX_OK)
                st = bind(r, f, n->c, &items[i]);
            if (st == LNX_OK)
                st = frame_set(r, f, cstr("loop"), &lv);
            if (st == LNX_OK)
                st = exec_body(r, n->kids, n->nkids);
            if (st == FLOW_CONTINUE)
                st = LNX_OK;
            if (st != LNX_OK)
                break;
        }
        if (st == FLOW_BREAK)
            st = LNX_OK;
    }
    r->scope = outer;
    if (st == LNX_OK && count == 0)
        st = exec_body(r, n->kids2, n->nkids2);
    return st;
}

static lnx_status exec_set(tpl_render *r, const tpl_node *n)
{
    tpl_value v;
    if (n->a) {
        LNX_TRY(eval(r, n->a, &v));
    } else {
        tpl_buf b = {.ar = &r->ar, .limit = LNX_TEMPLATE_MAX_OUTPUT};
        tpl_buf *saved = r->out;
        r->out = &b;
        lnx_status st = exec_body(r, n->kids, n->nkids);
        r->out = saved;
        LNX_TRY(st);
        v = tpl_string(b.p ? b.p : "", b.n);
    }
    const tpl_node *target = n->c;
    if (target->kind != N_GETATTR)
        return bind(r, r->scope, target, &v);
    tpl_value ns;
    if (!lookup(r, target->a->str, &ns) || ns.kind != TV_NS)
        return tpl_fail(r, target->pos, LNX_E_TEMPLATE, "cannot assign attribute on non-namespace object '%.*s'",
                        (int)(target->a->str.n > 80 ? 80 : target->a->str.n), target->a->str.p);
    return tpl_dict_set(r, ns.u.dict, target->str, &v);
}

static lnx_status exec_node(tpl_render *r, const tpl_node *n)
{
    tpl_value v;
    switch (n->kind) {
    case N_BODY: return exec_body(r, n->kids, n->nkids);
    case N_TEXT: return tpl_buf_put(r->out, n->str.p, n->str.n);
    case N_PRINT:
        LNX_TRY(eval(r, n->a, &v));
        return tpl_write_str(r, r->out, &v);
    case N_IF:
        for (;;) {
            LNX_TRY(eval(r, n->a, &v));
            if (tpl_truthy(&v))
                return exec_body(r, n->kids, n->nkids);
            if (n->nkids2 == 1 && n->kids2[0]->kind == N_IF && n->kids2[0]->op == 1) {
                n = n->kids2[0];
                continue;
            }
            return exec_body(r, n->kids2, n->nkids2);
        }
    case N_FOR: return exec_for(r, n);
    case N_SET: return exec_set(r, n);
    case N_BREAK: return FLOW_BREAK;
    case N_CONTINUE: return FLOW_CONTINUE;
    default: return tpl_fail(r, n->pos, LNX_E_INTERNAL, "unexpected node in statement");
    }
}

static lnx_status exec(tpl_render *r, const tpl_node *n)
{
    LNX_TRY(enter(r, n->pos));
    lnx_status st = exec_node(r, n);
    r->depth--;
    return st;
}

/* ---- entry point ---------------------------------------------------------------------------- */

static lnx_status set_globals(tpl_render *r, const json_t *messages, int add_generation_prompt,
                              const char *bos_token, const char *eos_token, const char *unk_token)
{
    tpl_frame *f = r->scope;
    tpl_value v = tpl_from_json(messages);
    LNX_TRY(frame_set(r, f, cstr("messages"), &v));
    v = tpl_bool(add_generation_prompt);
    LNX_TRY(frame_set(r, f, cstr("add_generation_prompt"), &v));
    v = tpl_none();
    LNX_TRY(frame_set(r, f, cstr("tools"), &v));
    LNX_TRY(frame_set(r, f, cstr("documents"), &v));
    const char *names[] = {"bos_token", "eos_token", "unk_token"};
    const char *values[] = {bos_token, eos_token, unk_token};
    for (int i = 0; i < 3; i++) {
        if (!values[i])
            continue;
        v = tpl_string(values[i], strlen(values[i]));
        LNX_TRY(frame_set(r, f, cstr(names[i]), &v));
    }
    static const struct {
        const char *name;
        int fn;
    } globals[] = {
        {"raise_exception", FN_RAISE},
        {"range", FN_RANGE},
        {"namespace", FN_NAMESPACE},
        {"strftime_now", FN_STRFTIME},
    };
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        v.kind = TV_FUNC;
        v.u.fn = globals[i].fn;
        LNX_TRY(frame_set(r, f, cstr(globals[i].name), &v));
    }
    return LNX_OK;
}

lnx_status lnx_template_render(const lnx_template *t, const json_t *messages, int add_generation_prompt,
                               const char *bos_token, const char *eos_token, const char *unk_token,
                               char **out, size_t *out_len)
{
    if (!out || !out_len)
        return lnx_error(LNX_E_INVALID, "lnx_template_render: out or out_len is NULL");
    *out = NULL;
    *out_len = 0;
    if (!t)
        return lnx_error(LNX_E_INVALID, "lnx_template_render: template is NULL");
    if (!messages || !json_is_array(messages))
        return lnx_error(LNX_E_INVALID, "lnx_template_render: messages must be a JSON array");

    tpl_render r = {.t = t};
    tpl_buf text = {.limit = LNX_TEMPLATE_MAX_OUTPUT};
    tpl_arena_init(&r.ar, TPL_RENDER_MEMORY);
    r.out = &text;
    tpl_frame *root = NULL;
    lnx_status st = frame_new(&r, &root);
    if (st == LNX_OK) {
        r.scope = root;
        st = set_globals(&r, messages, add_generation_prompt, bos_token, eos_token, unk_token);
    }
    if (st == LNX_OK)
        st = exec(&r, t->root);
    if (st == FLOW_BREAK || st == FLOW_CONTINUE)
        st = lnx_error(LNX_E_INTERNAL, "template: loop control outside of a loop");
    tpl_arena_free(&r.ar);
    if (st == LNX_OK && !text.p) {
        text.p = malloc(1);
        if (!text.p)
            st = lnx_error(LNX_E_NOMEM, "template: out of memory");
        else
            text.p[0] = '\0';
    }
    if (st != LNX_OK) {
        free(text.p);
        return st;
    }
    *out = text.p;
    *out_len = text.n;
    return LNX_OK;
}
