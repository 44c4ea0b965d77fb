/* Chat templates: values with Python semantics (truth, str, repr, json.dumps, ==, <), and
 * Jinja's attribute, item and slice access. */
#include "template_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lnx_status tpl_fail(const tpl_render *r, size_t pos, lnx_status st, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tpl_error_at(r->t->src, pos, st, "%s", msg);
}

lnx_status tpl_undefined_error(const tpl_render *r, size_t pos, const tpl_value *v)
{
    const tpl_node *o = v->kind == TV_UNDEF ? v->u.origin : NULL;
    if (o)
        pos = o->pos;
    if (o && o->kind == N_NAME)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "'%.*s' is undefined", (int)(o->str.n > 80 ? 80 : o->str.n),
                        o->str.p);
    if (o && o->kind == N_GETATTR)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "no attribute '%.*s' (undefined)",
                        (int)(o->str.n > 80 ? 80 : o->str.n), o->str.p);
    if (o && o->kind == N_GETITEM && o->b && o->b->kind == N_CONST && o->b->val.kind == TV_STR)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "no item '%.*s' (undefined)",
                        (int)(o->b->val.u.s.n > 80 ? 80 : o->b->val.u.s.n), o->b->val.u.s.p);
    if (o && o->kind == N_GETITEM && o->b && o->b->kind == N_CONST && o->b->val.kind == TV_INT)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "no item %" PRId64 " (undefined)", o->b->val.u.i);
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "undefined value");
}

tpl_value tpl_from_json(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        tpl_value v = {.kind = TV_JSON, .u.json = j};
        return v;
    }
    case JSON_STRING: return tpl_string(json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return tpl_int((int64_t)json_integer_value(j));
    case JSON_REAL: return tpl_float(json_real_value(j));
    case JSON_TRUE: return tpl_bool(1);
    case JSON_FALSE: return tpl_bool(0);
    default: return tpl_none();
    }
}

const char *tpl_type_name(const tpl_value *v)
{
    switch (v->kind) {
    case TV_UNDEF: return "Undefined";
    case TV_NONE: return "NoneType";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STR: return "str";
    case TV_LIST: return v->u.list->tuple ? "tuple" : "list";
    case TV_DICT: return "dict";
    case TV_JSON: return json_is_array(v->u.json) ? "list" : "dict";
    case TV_NS: return "Namespace";
    case TV_LOOP: return "LoopContext";
    default: return "function";
    }
}

int tpl_is_list(const tpl_value *v)
{
    return v->kind == TV_LIST || (v->kind == TV_JSON && json_is_array(v->u.json));
}

int tpl_is_dict(const tpl_value *v)
{
    return v->kind == TV_DICT || (v->kind == TV_JSON && json_is_object(v->u.json));
}

size_t tpl_list_len(const tpl_value *v)
{
    return v->kind == TV_LIST ? v->u.list->n : json_array_size(v->u.json);
}

tpl_value tpl_list_get(const tpl_value *v, size_t i)
{
    return v->kind == TV_LIST ? v->u.list->items[i] : tpl_from_json(json_array_get(v->u.json, i));
}

static size_t dict_size(const tpl_value *v)
{
    return v->kind == TV_JSON ? json_object_size(v->u.json) : v->u.dict->n;
}

int tpl_truthy(const tpl_value *v)
{
    switch (v->kind) {
    case TV_UNDEF:
    case TV_NONE: return 0;
    case TV_BOOL: return v->u.b;
    case TV_INT: return v->u.i != 0;
    case TV_FLOAT: return v->u.f != 0;
    case TV_STR: return v->u.s.n != 0;
    case TV_LIST: return v->u.list->n != 0;
    case TV_DICT: return v->u.dict->n != 0;
    case TV_JSON: return json_is_array(v->u.json) ? json_array_size(v->u.json) != 0 : json_object_size(v->u.json) != 0;
    default: return 1;
    }
}

int tpl_dict_find(const tpl_value *d, const char *key, size_t n, tpl_value *out)
{
    if (d->kind == TV_JSON) {
        const json_t *j = json_object_getn(d->u.json, key, n);
        if (!j)
            return 0;
        *out = tpl_from_json(j);
        return 1;
    }
    const tpl_dict *dict = d->u.dict;
    for (size_t i = 0; i < dict->n; i++) {
        if (dict->keys[i].n == n && memcmp(dict->keys[i].p, key, n) == 0) {
            *out = dict->vals[i];
            return 1;
        }
    }
    return 0;
}

lnx_status tpl_dict_entries(tpl_render *r, const tpl_value *d, tpl_str **keys, tpl_value **vals, size_t *n)
{
    if (d->kind != TV_JSON) {
        *keys = d->u.dict->keys;
        *vals = d->u.dict->vals;
        *n = d->u.dict->n;
        return LNX_OK;
    }
    size_t size = json_object_size(d->u.json);
    tpl_str *k = tpl_alloc_n(&r->ar, size ? size : 1, sizeof *k);
    tpl_value *v = tpl_alloc_n(&r->ar, size ? size : 1, sizeof *v);
    if (!k || !v)
        return tpl_arena_status();
    size_t i = 0;
    json_t *obj = (json_t *)d->u.json;
    for (void *it = json_object_iter(obj); it && i < size; it = json_object_iter_next(obj, it), i++) {
        k[i].p = json_object_iter_key(it);
        k[i].n = json_object_iter_key_len(it);
        v[i] = tpl_from_json(json_object_iter_value(it));
    }
    *keys = k;
    *vals = v;
    *n = i;
    return LNX_OK;
}

lnx_status tpl_new_list(tpl_render *r, size_t n, tpl_value *out)
{
    tpl_list *l = tpl_alloc(&r->ar, sizeof *l);
    tpl_value *items = tpl_alloc_n(&r->ar, n ? n : 1, sizeof *items);
    if (!l || !items)
        return tpl_arena_status();
    l->n = n;
    l->items = items;
    l->tuple = 0;
    out->kind = TV_LIST;
    out->u.list = l;
    return LNX_OK;
}

lnx_status tpl_new_dict(tpl_render *r, tpl_value *out)
{
    tpl_dict *d = tpl_alloc(&r->ar, sizeof *d);
    if (!d)
        return tpl_arena_status();
    memset(d, 0, sizeof *d);
    out->kind = TV_DICT;
    out->u.dict = d;
    return LNX_OK;
}

lnx_status tpl_dict_set(tpl_render *r, tpl_dict *d, tpl_str key, const tpl_value *v)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->keys[i].n == key.n && memcmp(d->keys[i].p, key.p, key.n) == 0) {
            d->vals[i] = *v;
            return LNX_OK;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        tpl_str *keys = tpl_alloc_n(&r->ar, cap, sizeof *keys);
        tpl_value *vals = tpl_alloc_n(&r->ar, cap, sizeof *vals);
        if (!keys || !vals)
            return tpl_arena_status();
        if (d->n) {
            memcpy(keys, d->keys, d->n * sizeof *keys);
            memcpy(vals, d->vals, d->n * sizeof *vals);
        }
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = *v;
    d->n++;
    return LNX_OK;
}

lnx_status tpl_iterate(tpl_render *r, size_t pos, const tpl_value *v, const tpl_value **items, size_t *n)
{
    if (v->kind == TV_UNDEF) {
        *items = NULL;
        *n = 0;
        return LNX_OK;
    }
    if (v->kind == TV_LIST) {
        *items = v->u.list->items;
        *n = v->u.list->n;
        return LNX_OK;
    }
    tpl_value *out;
    size_t count;
    if (tpl_is_list(v)) {
        count = json_array_size(v->u.json);
        out = tpl_alloc_n(&r->ar, count ? count : 1, sizeof *out);
        if (!out)
            return tpl_arena_status();
        for (size_t i = 0; i < count; i++)
            out[i] = tpl_from_json(json_array_get(v->u.json, i));
    } else if (tpl_is_dict(v)) {
        tpl_str *keys;
        tpl_value *vals;
        LNX_TRY(tpl_dict_entries(r, v, &keys, &vals, &count));
        out = tpl_alloc_n(&r->ar, count ? count : 1, sizeof *out);
        if (!out)
            return tpl_arena_status();
        for (size_t i = 0; i < count; i++)
            out[i] = tpl_string(keys[i].p, keys[i].n);
    } else if (v->kind == TV_STR) {
        LNX_TRY(tpl_charge(r, pos, v->u.s.n));
        count = tpl_utf8_count(v->u.s.p, v->u.s.n);
        out = tpl_alloc_n(&r->ar, count ? count : 1, sizeof *out);
        if (!out)
            return tpl_arena_status();
        size_t k = 0;
        for (size_t i = 0; i < v->u.s.n; k++) {
            size_t start = i;
            tpl_utf8_next(v->u.s.p, v->u.s.n, &i);
            out[k] = tpl_string(v->u.s.p + start, i - start);
        }
    } else {
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "'%s' object is not iterable", tpl_type_name(v));
    }
    *items = out;
    *n = count;
    return LNX_OK;
}

/* ---- str and repr --------------------------------------------------------------------------- */

static lnx_status put_int(tpl_buf *b, int64_t i)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, i);
    return tpl_buf_put(b, tmp, (size_t)n);
}

static lnx_status put_float(tpl_buf *b, double f)
{
    char tmp[40];
    tpl_format_float(f, tmp, sizeof tmp);
    return tpl_buf_puts(b, tmp);
}

lnx_status tpl_write_str(tpl_render *r, tpl_buf *b, const tpl_value *v)
{
    switch (v->kind) {
    case TV_UNDEF: return LNX_OK;
    case TV_NONE: return tpl_buf_puts(b, "None");
    case TV_BOOL: return tpl_buf_puts(b, v->u.b ? "True" : "False");
    case TV_INT: return put_int(b, v->u.i);
    case TV_FLOAT: return put_float(b, v->u.f);
    case TV_STR: return tpl_buf_put(b, v->u.s.p, v->u.s.n);
    default: return tpl_write_repr(r, b, v, 0);
    }
}

static lnx_status put_str_repr(tpl_buf *b, const tpl_str *s)
{
    int has_single = memchr(s->p, '\'', s->n) != NULL;
    int has_double = memchr(s->p, '"', s->n) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    LNX_TRY(tpl_buf_putc(b, quote));
    for (size_t i = 0; i < s->n;) {
        size_t start = i;
        uint32_t cp = tpl_utf8_next(s->p, s->n, &i);
        char esc[12];
        int n = 0;
        if (cp == (uint32_t)quote || cp == '\\')
            n = snprintf(esc, sizeof esc, "\\%c", (char)cp);
        else if (cp == '\n')
            n = snprintf(esc, sizeof esc, "\\n");
        else if (cp == '\r')
            n = snprintf(esc, sizeof esc, "\\r");
        else if (cp == '\t')
            n = snprintf(esc, sizeof esc, "\\t");
        else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || (i - start == 1 && cp >= 0x80))
            n = snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
        if (n)
            LNX_TRY(tpl_buf_put(b, esc, (size_t)n));
        else
            LNX_TRY(tpl_buf_put(b, s->p + start, i - start));
    }
    return tpl_buf_putc(b, quote);
}

static lnx_status depth_check(int depth)
{
    if (depth > TPL_MAX_VALUE_DEPTH)
        return lnx_error(LNX_E_LIMIT, "template: value nested too deeply (more than %d levels)", TPL_MAX_VALUE_DEPTH);
    return LNX_OK;
}

lnx_status tpl_write_repr(tpl_render *r, tpl_buf *b, const tpl_value *v, int depth)
{
    LNX_TRY(depth_check(depth));
    if (v->kind == TV_STR)
        return put_str_repr(b, &v->u.s);
    if (tpl_is_list(v)) {
        int tuple = v->kind == TV_LIST && v->u.list->tuple;
        size_t n = tpl_list_len(v);
        LNX_TRY(tpl_buf_putc(b, tuple ? '(' : '['));
        for (size_t i = 0; i < n; i++) {
            if (i)
                LNX_TRY(tpl_buf_put(b, ", ", 2));
            tpl_value item = tpl_list_get(v, i);
            LNX_TRY(tpl_write_repr(r, b, &item, depth + 1));
        }
        if (tuple && n == 1)
            LNX_TRY(tpl_buf_putc(b, ','));
        return tpl_buf_putc(b, tuple ? ')' : ']');
    }
    if (tpl_is_dict(v) || v->kind == TV_NS) {
        tpl_str *keys;
        tpl_value *vals;
        size_t n;
        LNX_TRY(tpl_dict_entries(r, v, &keys, &vals, &n));
        if (v->kind == TV_NS)
            LNX_TRY(tpl_buf_puts(b, "<Namespace "));
        LNX_TRY(tpl_buf_putc(b, '{'));
        for (size_t i = 0; i < n; i++) {
            if (i)
                LNX_TRY(tpl_buf_put(b, ", ", 2));
            LNX_TRY(put_str_repr(b, &keys[i]));
            LNX_TRY(tpl_buf_put(b, ": ", 2));
            LNX_TRY(tpl_write_repr(r, b, &vals[i], depth + 1));
        }
        LNX_TRY(tpl_buf_putc(b, '}'));
        return v->kind == TV_NS ? tpl_buf_putc(b, '>') : LNX_OK;
    }
    switch (v->kind) {
    case TV_UNDEF: return tpl_buf_puts(b, "Undefined");
    case TV_LOOP: {
        char tmp[64];
        int n = snprintf(tmp, sizeof tmp, "<LoopContext %" PRId64 "/%" PRId64 ">", v->u.loop->index0 + 1,
                         v->u.loop->length);
        return tpl_buf_put(b, tmp, (size_t)n);
    }
    case TV_FUNC: return tpl_buf_puts(b, "<function>");
    default: return tpl_write_str(r, b, v);
    }
}

lnx_status tpl_to_str(tpl_render *r, const tpl_value *v, tpl_str *out)
{
    if (v->kind == TV_STR) {
        *out = v->u.s;
        return LNX_OK;
    }
    tpl_buf b = {.ar = &r->ar, .limit = LNX_TEMPLATE_MAX_OUTPUT};
    LNX_TRY(tpl_write_str(r, &b, v));
    out->p = b.p ? b.p : "";
    out->n = b.n;
    return LNX_OK;
}

/* ---- json.dumps ----------------------------------------------------------------------------- */

static lnx_status put_json_string(tpl_buf *b, const char *s, size_t n, int ascii)
{
    LNX_TRY(tpl_buf_putc(b, '"'));
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        size_t start = i;
        uint32_t cp = tpl_utf8_next(s, n, &i);
        char esc[16];
        int k = 0;
        switch (cp) {
        case '"': k = snprintf(esc, sizeof esc, "\\\""); break;
        case '\\': k = snprintf(esc, sizeof esc, "\\\\"); break;
        case '\n': k = snprintf(esc, sizeof esc, "\\n"); break;
        case '\r': k = snprintf(esc, sizeof esc, "\\r"); break;
        case '\t': k = snprintf(esc, sizeof esc, "\\t"); break;
        case '\b': k = snprintf(esc, sizeof esc, "\\b"); break;
        case '\f': k = snprintf(esc, sizeof esc, "\\f"); break;
        default:
            if (cp < 0x20)
                k = snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            else if (ascii && cp >= 0x80 && cp < 0x10000)
                k = snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            else if (ascii && cp >= 0x10000)
                k = snprintf(esc, sizeof esc, "\\u%04x\\u%04x", (unsigned)(0xD800 + ((cp - 0x10000) >> 10)),
                             (unsigned)(0xDC00 + ((cp - 0x10000) & 0x3FF)));
            break;
        }
        if (k) {
            LNX_TRY(tpl_buf_put(b, s + run, start - run));
            LNX_TRY(tpl_buf_put(b, esc, (size_t)k));
            run = i;
        }
    }
    LNX_TRY(tpl_buf_put(b, s + run, n - run));
    return tpl_buf_putc(b, '"');
}

static lnx_status put_json_newline(tpl_buf *b, const tpl_json_opts *o, int level)
{
    LNX_TRY(tpl_buf_putc(b, '\n'));
    for (int i = 0; i < level; i++)
        LNX_TRY(tpl_buf_put(b, o->indent_str.p, o->indent_str.n));
    return LNX_OK;
}

static int str_cmp(const tpl_str *a, const tpl_str *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    if (c)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

static int entry_less(const tpl_str *keys, size_t a, size_t b)
{
    return str_cmp(&keys[a], &keys[b]) < 0;
}

lnx_status tpl_write_json(tpl_render *r, size_t pos, tpl_buf *b, const tpl_value *v, const tpl_json_opts *o,
                          int level)
{
    LNX_TRY(depth_check(level));
    int pretty = o->pretty;
    switch (v->kind) {
    case TV_NONE: return tpl_buf_puts(b, "null");
    case TV_BOOL: return tpl_buf_puts(b, v->u.b ? "true" : "false");
    case TV_INT: return put_int(b, v->u.i);
    case TV_FLOAT:
        if (isnan(v->u.f))
            return tpl_buf_puts(b, "NaN");
        if (isinf(v->u.f))
            return tpl_buf_puts(b, v->u.f < 0 ? "-Infinity" : "Infinity");
        return put_float(b, v->u.f);
    case TV_STR: return put_json_string(b, v->u.s.p, v->u.s.n, o->ascii);
    default: break;
    }
    if (tpl_is_list(v)) {
        size_t n = tpl_list_len(v);
        if (n == 0)
            return tpl_buf_puts(b, "[]");
        LNX_TRY(tpl_buf_putc(b, '['));
        for (size_t i = 0; i < n; i++) {
            if (i)
                LNX_TRY(tpl_buf_put(b, o->item_sep.p, o->item_sep.n));
            if (pretty)
                LNX_TRY(put_json_newline(b, o, level + 1));
            tpl_value item = tpl_list_get(v, i);
            LNX_TRY(tpl_write_json(r, pos, b, &item, o, level + 1));
        }
        if (pretty)
            LNX_TRY(put_json_newline(b, o, level));
        return tpl_buf_putc(b, ']');
    }
    if (tpl_is_dict(v)) {
        tpl_str *keys;
        tpl_value *vals;
        size_t n;
        LNX_TRY(tpl_dict_entries(r, v, &keys, &vals, &n));
        if (n == 0)
            return tpl_buf_puts(b, "{}");
        size_t *order = tpl_alloc_n(&r->ar, n, sizeof *order);
        if (!order)
            return tpl_arena_status();
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        if (o->sort_keys) {
            /* insertion sort keeps equal keys stable, dicts are small */
            for (size_t i = 1; i < n; i++) {
                size_t x = order[i], j = i;
                for (; j > 0 && entry_less(keys, x, order[j - 1]); j--)
                    order[j] = order[j - 1];
                order[j] = x;
            }
        }
        LNX_TRY(tpl_buf_putc(b, '{'));
        for (size_t i = 0; i < n; i++) {
            if (i)
                LNX_TRY(tpl_buf_put(b, o->item_sep.p, o->item_sep.n));
            if (pretty)
                LNX_TRY(put_json_newline(b, o, level + 1));
            LNX_TRY(put_json_string(b, keys[order[i]].p, keys[order[i]].n, o->ascii));
            LNX_TRY(tpl_buf_put(b, o->key_sep.p, o->key_sep.n));
            LNX_TRY(tpl_write_json(r, pos, b, &vals[order[i]], o, level + 1));
        }
        if (pretty)
            LNX_TRY(put_json_newline(b, o, level));
        return tpl_buf_putc(b, '}');
    }
    if (v->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, v);
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "Object of type %s is not JSON serializable", tpl_type_name(v));
}

/* ---- comparison ----------------------------------------------------------------------------- */

static int is_number(const tpl_value *v)
{
    return v->kind == TV_BOOL || v->kind == TV_INT || v->kind == TV_FLOAT;
}

static int num_cmp(const tpl_value *a, const tpl_value *b)
{
    if (a->kind != TV_FLOAT && b->kind != TV_FLOAT) {
        int64_t x = a->kind == TV_BOOL ? a->u.b : a->u.i;
        int64_t y = b->kind == TV_BOOL ? b->u.b : b->u.i;
        return x < y ? -1 : x > y;
    }
    double x = a->kind == TV_FLOAT ? a->u.f : a->kind == TV_BOOL ? a->u.b : (double)a->u.i;
    double y = b->kind == TV_FLOAT ? b->u.f : b->kind == TV_BOOL ? b->u.b : (double)b->u.i;
    if (x != x || y != y)
        return 2; /* unordered */
    return x < y ? -1 : x > y;
}

lnx_status tpl_equal(tpl_render *r, size_t pos, const tpl_value *a, const tpl_value *b, int *eq, int depth)
{
    LNX_TRY(depth_check(depth));
    *eq = 0;
    if (is_number(a) && is_number(b)) {
        *eq = num_cmp(a, b) == 0;
        return LNX_OK;
    }
    if (a->kind == TV_STR && b->kind == TV_STR) {
        LNX_TRY(tpl_charge(r, pos, a->u.s.n));
        *eq = a->u.s.n == b->u.s.n && (a->u.s.n == 0 || memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0);
        return LNX_OK;
    }
    if (tpl_is_list(a) && tpl_is_list(b)) {
        int ta = a->kind == TV_LIST && a->u.list->tuple, tb = b->kind == TV_LIST && b->u.list->tuple;
        size_t n = tpl_list_len(a);
        if (ta != tb || n != tpl_list_len(b))
            return LNX_OK;
        for (size_t i = 0; i < n; i++) {
            tpl_value x = tpl_list_get(a, i), y = tpl_list_get(b, i);
            LNX_TRY(tpl_equal(r, pos, &x, &y, eq, depth + 1));
            if (!*eq)
                return LNX_OK;
        }
        *eq = 1;
        return LNX_OK;
    }
    if (tpl_is_dict(a) && tpl_is_dict(b)) {
        if (dict_size(a) != dict_size(b))
            return LNX_OK;
        tpl_str *keys;
        tpl_value *vals;
        size_t n;
        LNX_TRY(tpl_dict_entries(r, a, &keys, &vals, &n));
        for (size_t i = 0; i < n; i++) {
            tpl_value other;
            if (!tpl_dict_find(b, keys[i].p, keys[i].n, &other))
                return LNX_OK;
            LNX_TRY(tpl_equal(r, pos, &vals[i], &other, eq, depth + 1));
            if (!*eq)
                return LNX_OK;
        }
        *eq = 1;
        return LNX_OK;
    }
    if (a->kind != b->kind)
        return LNX_OK;
    switch (a->kind) {
    case TV_UNDEF:
    case TV_NONE: *eq = 1; break;
    case TV_NS: *eq = a->u.dict == b->u.dict; break;
    case TV_LOOP: *eq = a->u.loop == b->u.loop; break;
    case TV_FUNC: *eq = a->u.fn == b->u.fn; break;
    default: break;
    }
    return LNX_OK;
}

lnx_status tpl_order(tpl_render *r, size_t pos, const tpl_value *a, const tpl_value *b, int *cmp, int depth)
{
    LNX_TRY(depth_check(depth));
    if (is_number(a) && is_number(b)) {
        int c = num_cmp(a, b);
        *cmp = c == 2 ? 0 : c;
        return LNX_OK;
    }
    if (a->kind == TV_STR && b->kind == TV_STR) {
        LNX_TRY(tpl_charge(r, pos, a->u.s.n));
        *cmp = str_cmp(&a->u.s, &b->u.s);
        return LNX_OK;
    }
    if (tpl_is_list(a) && tpl_is_list(b) && !strcmp(tpl_type_name(a), tpl_type_name(b))) {
        size_t na = tpl_list_len(a), nb = tpl_list_len(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            tpl_value x = tpl_list_get(a, i), y = tpl_list_get(b, i);
            int eq;
            LNX_TRY(tpl_equal(r, pos, &x, &y, &eq, depth + 1));
            if (!eq)
                return tpl_order(r, pos, &x, &y, cmp, depth + 1);
        }
        *cmp = na < nb ? -1 : na > nb;
        return LNX_OK;
    }
    if (a->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, a);
    if (b->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, b);
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "'<' not supported between instances of '%s' and '%s'", tpl_type_name(a),
                    tpl_type_name(b));
}

/* ---- access --------------------------------------------------------------------------------- */

static int str_is(tpl_str s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static int loop_attr(const tpl_loop *l, tpl_str name, tpl_value *out)
{
    int64_t i = l->index0, n = l->length;
    if (str_is(name, "index"))
        *out = tpl_int(i + 1);
    else if (str_is(name, "index0"))
        *out = tpl_int(i);
    else if (str_is(name, "revindex"))
        *out = tpl_int(n - i);
    else if (str_is(name, "revindex0"))
        *out = tpl_int(n - i - 1);
    else if (str_is(name, "first"))
        *out = tpl_bool(i == 0);
    else if (str_is(name, "last"))
        *out = tpl_bool(i == n - 1);
    else if (str_is(name, "length"))
        *out = tpl_int(n);
    else if (str_is(name, "depth"))
        *out = tpl_int(1);
    else if (str_is(name, "depth0"))
        *out = tpl_int(0);
    else if (str_is(name, "previtem"))
        *out = i > 0 ? l->items[i - 1] : tpl_undef(NULL);
    else if (str_is(name, "nextitem"))
        *out = i + 1 < n ? l->items[i + 1] : tpl_undef(NULL);
    else
        return 0;
    return 1;
}

lnx_status tpl_getattr(tpl_render *r, const tpl_node *origin, const tpl_value *obj, tpl_str name, tpl_value *out)
{
    if (obj->kind == TV_UNDEF)
        return tpl_undefined_error(r, origin ? origin->pos : 0, obj);
    if ((tpl_is_dict(obj) || obj->kind == TV_NS) && tpl_dict_find(obj, name.p, name.n, out))
        return LNX_OK;
    if (obj->kind == TV_LOOP && loop_attr(obj->u.loop, name, out))
        return LNX_OK;
    *out = tpl_undef(origin);
    return LNX_OK;
}

/* Python index i (negative from the end) into a sequence of n items; -1 when out of range. */
static int64_t seq_index(const tpl_value *key, size_t n)
{
    int64_t i = key->kind == TV_BOOL ? key->u.b : key->u.i;
    if (i < 0)
        i += (int64_t)n;
    return i < 0 || (uint64_t)i >= n ? -1 : i;
}

lnx_status tpl_getitem(tpl_render *r, const tpl_node *origin, const tpl_value *obj, const tpl_value *key,
                       tpl_value *out)
{
    if (obj->kind == TV_UNDEF)
        return tpl_undefined_error(r, origin ? origin->pos : 0, obj);
    int int_key = key->kind == TV_INT || key->kind == TV_BOOL;
    *out = tpl_undef(origin);
    if (tpl_is_list(obj) && int_key) {
        int64_t i = seq_index(key, tpl_list_len(obj));
        if (i >= 0)
            *out = tpl_list_get(obj, (size_t)i);
    } else if (obj->kind == TV_STR && int_key) {
        LNX_TRY(tpl_charge(r, origin ? origin->pos : 0, obj->u.s.n));
        int64_t i = seq_index(key, tpl_utf8_count(obj->u.s.p, obj->u.s.n));
        if (i >= 0) {
            size_t at = 0;
            for (int64_t k = 0; k < i; k++)
                tpl_utf8_next(obj->u.s.p, obj->u.s.n, &at);
            size_t end = at;
            tpl_utf8_next(obj->u.s.p, obj->u.s.n, &end);
            *out = tpl_string(obj->u.s.p + at, end - at);
        }
    } else if (key->kind == TV_STR) {
        return tpl_getattr(r, origin, obj, key->u.s, out);
    }
    return LNX_OK;
}

static lnx_status slice_bound(tpl_render *r, size_t pos, const tpl_value *v, int64_t *out, int *given)
{
    *given = 0;
    if (!v || v->kind == TV_NONE)
        return LNX_OK;
    if (v->kind != TV_INT && v->kind != TV_BOOL)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "slice indices must be integers or None");
    *out = v->kind == TV_BOOL ? v->u.b : v->u.i;
    *given = 1;
    return LNX_OK;
}

lnx_status tpl_slice(tpl_render *r, size_t pos, const tpl_value *obj, const tpl_value *start, const tpl_value *stop,
                     const tpl_value *step, tpl_value *out)
{
    if (obj->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, obj);
    int is_str = obj->kind == TV_STR;
    if (!is_str && !tpl_is_list(obj))
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "'%s' object cannot be sliced", tpl_type_name(obj));
    LNX_TRY(tpl_charge(r, pos, is_str ? obj->u.s.n : 0));
    int64_t len = (int64_t)(is_str ? tpl_utf8_count(obj->u.s.p, obj->u.s.n) : tpl_list_len(obj));
    int64_t a = 0, b = 0, s = 1;
    int has_a, has_b, has_s;
    LNX_TRY(slice_bound(r, pos, start, &a, &has_a));
    LNX_TRY(slice_bound(r, pos, stop, &b, &has_b));
    LNX_TRY(slice_bound(r, pos, step, &s, &has_s));
    if (s == 0)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "slice step cannot be zero");
    if (s == INT64_MIN)
        s = -INT64_MAX;
    /* Python's PySlice_AdjustIndices */
    if (!has_a) {
        a = s < 0 ? len - 1 : 0;
    } else if (a < 0) {
        a = a < -len ? (s < 0 ? -1 : 0) : a + len;
    } else if (a >= len) {
        a = s < 0 ? len - 1 : len;
    }
    if (!has_b) {
        b = s < 0 ? -1 : len;
    } else if (b < 0) {
        b = b < -len ? (s < 0 ? -1 : 0) : b + len;
    } else if (b >= len) {
        b = s < 0 ? len - 1 : len;
    }
    int64_t count = 0;
    if (s > 0 && b > a)
        count = (b - a - 1) / s + 1;
    else if (s < 0 && a > b)
        count = (a - b - 1) / (-s) + 1;
    if (is_str) {
        /* byte offset of every code point, then copy the chosen ones */
        size_t *offs = tpl_alloc_n(&r->ar, (size_t)len + 1, sizeof *offs);
        if (!offs)
            return tpl_arena_status();
        size_t at = 0;
        for (int64_t k = 0; k < len; k++) {
            offs[k] = at;
            tpl_utf8_next(obj->u.s.p, obj->u.s.n, &at);
        }
        offs[len] = obj->u.s.n;
        if (s == 1) {
            *out = count ? tpl_string(obj->u.s.p + offs[a], offs[a + count] - offs[a]) : tpl_string("", 0);
            return LNX_OK;
        }
        tpl_buf buf = {.ar = &r->ar, .limit = LNX_TEMPLATE_MAX_OUTPUT};
        for (int64_t k = 0, i = a; k < count; k++, i += s)
            LNX_TRY(tpl_buf_put(&buf, obj->u.s.p + offs[i], offs[i + 1] - offs[i]));
        *out = tpl_string(buf.p ? buf.p : "", buf.n);
        return LNX_OK;
    }
    LNX_TRY(tpl_new_list(r, (size_t)count, out));
    out->u.list->tuple = obj->kind == TV_LIST && obj->u.list->tuple;
    for (int64_t k = 0, i = a; k < count; k++, i += s)
        out->u.list->items[k] = tpl_list_get(obj, (size_t)i);
    return LNX_OK;
}
