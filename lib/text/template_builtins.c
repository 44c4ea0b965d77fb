/* Chat templates: filters, tests, str/dict/loop methods and global functions. */
#include "template_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_PARAMS = 6 };

static int str_is(tpl_str s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static int short_len(tpl_str s)
{
    return (int)(s.n > 60 ? 60 : s.n);
}

/* Maps positional and keyword arguments onto the parameter names of `what`. */
static lnx_status bind_params(tpl_render *r, size_t pos, tpl_str what, const tpl_args *a, const char *const *params,
                              size_t nparams, const tpl_value **slots)
{
    for (size_t i = 0; i < nparams; i++)
        slots[i] = NULL;
    if (a->npos > nparams)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "'%.*s' takes at most %zu argument%s (%zu given)", short_len(what),
                        what.p, nparams, nparams == 1 ? "" : "s", a->npos);
    for (size_t i = 0; i < a->npos; i++)
        slots[i] = &a->pos[i];
    for (size_t i = 0; i < a->nkw; i++) {
        size_t k = 0;
        while (k < nparams && !str_is(a->kwnames[i], params[k]))
            k++;
        if (k == nparams)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "'%.*s' got an unexpected keyword argument '%.*s'",
                            short_len(what), what.p, short_len(a->kwnames[i]), a->kwnames[i].p);
        if (slots[k])
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "'%.*s' got multiple values for argument '%s'", short_len(what),
                            what.p, params[k]);
        slots[k] = &a->kw[i];
    }
    return LNX_OK;
}

static int given(const tpl_value *v)
{
    return v && v->kind != TV_NONE;
}

static lnx_status need_str(tpl_render *r, size_t pos, const tpl_value *v, const char *what, tpl_str *out)
{
    if (!v || v->kind != TV_STR) {
        if (v && v->kind == TV_UNDEF)
            return tpl_undefined_error(r, pos, v);
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "%s must be a string, not %s", what, v ? tpl_type_name(v) : "nothing");
    }
    *out = v->u.s;
    return LNX_OK;
}

static lnx_status need_int(tpl_render *r, size_t pos, const tpl_value *v, const char *what, int64_t *out)
{
    if (!v || (v->kind != TV_INT && v->kind != TV_BOOL))
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "%s must be an integer, not %s", what,
                        v ? tpl_type_name(v) : "nothing");
    *out = v->kind == TV_BOOL ? v->u.b : v->u.i;
    return LNX_OK;
}

static tpl_value str_value(const tpl_buf *b)
{
    return tpl_string(b->p ? b->p : "", b->n);
}

static tpl_buf scratch(tpl_render *r)
{
    tpl_buf b = {.ar = &r->ar, .limit = LNX_TEMPLATE_MAX_OUTPUT};
    return b;
}

/* ---- string helpers ------------------------------------------------------------------------- */

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_TITLE_WORDS, CASE_CAPITALIZE };

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* ASCII case mapping: upper, lower, Python str.title, Jinja's title filter (words start after
 * whitespace or one of "-({[<"), str.capitalize. */
static lnx_status map_case(tpl_render *r, tpl_str s, int mode, tpl_value *out)
{
    char *p = tpl_alloc(&r->ar, s.n + 1);
    if (!p)
        return tpl_arena_status();
    int prev_cased = 0, word_start = 1;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        switch (mode) {
        case CASE_UPPER: c = to_upper(c); break;
        case CASE_LOWER: c = to_lower(c); break;
        case CASE_TITLE:
            c = prev_cased ? to_lower(c) : to_upper(c);
            prev_cased = is_alpha(c);
            break;
        case CASE_TITLE_WORDS: {
            int boundary = strchr("-({[<", c) != NULL || tpl_space_at(s.p, s.n, i) != 0;
            if (boundary) {
                word_start = 1;
            } else {
                c = word_start ? to_upper(c) : to_lower(c);
                word_start = 0;
            }
            break;
        }
        default: c = i == 0 ? to_upper(c) : to_lower(c); break;
        }
        p[i] = c;
    }
    p[s.n] = '\0';
    *out = tpl_string(p, s.n);
    return LNX_OK;
}

static int cp_in(uint32_t cp, tpl_str chars)
{
    for (size_t i = 0; i < chars.n;)
        if (tpl_utf8_next(chars.p, chars.n, &i) == cp)
            return 1;
    return 0;
}

/* Work of stripping s with a set of chars (each character is looked up in the set). */
static lnx_status charge_strip(tpl_render *r, size_t pos, tpl_str s, const tpl_str *chars)
{
    size_t per = chars ? chars->n / 16 + 1 : 1;
    return tpl_charge(r, pos, s.n > SIZE_MAX / per ? SIZE_MAX : s.n * per);
}

/* str.strip / lstrip / rstrip: chars NULL strips whitespace. */
static tpl_str strip(tpl_str s, const tpl_str *chars, int left, int right)
{
    size_t a = 0, b = s.n;
    while (left && a < b) {
        size_t j = a;
        uint32_t cp = tpl_utf8_next(s.p, b, &j);
        if (chars ? !cp_in(cp, *chars) : !tpl_space_at(s.p, b, a))
            break;
        a = j;
    }
    while (right && b > a) {
        size_t start = b - 1;
        while (start > a && ((unsigned char)s.p[start] & 0xC0) == 0x80 && b - start < 4)
            start--;
        size_t j = start;
        uint32_t cp = tpl_utf8_next(s.p, b, &j);
        if (j != b) {
            start = b - 1;
            j = start;
            cp = tpl_utf8_next(s.p, b, &j);
        }
        if (chars ? !cp_in(cp, *chars) : !tpl_space_at(s.p, b, start))
            break;
        b = start;
    }
    tpl_str t = {s.p + a, b - a};
    return t;
}

static lnx_status replace(tpl_render *r, tpl_str s, tpl_str old, tpl_str new_str, int64_t count, tpl_value *out)
{
    tpl_buf b = scratch(r);
    size_t i = 0;
    int64_t done = 0;
    if (old.n == 0) {
        /* Python inserts `new` before every character and at the end */
        while (count < 0 || done < count) {
            LNX_TRY(tpl_buf_put(&b, new_str.p, new_str.n));
            done++;
            if (i >= s.n)
                break;
            size_t start = i;
            tpl_utf8_next(s.p, s.n, &i);
            LNX_TRY(tpl_buf_put(&b, s.p + start, i - start));
        }
        LNX_TRY(tpl_buf_put(&b, s.p + i, s.n - i));
        *out = str_value(&b);
        return LNX_OK;
    }
    while (i < s.n && (count < 0 || done < count)) {
        const char *hit = memmem(s.p + i, s.n - i, old.p, old.n);
        if (!hit)
            break;
        size_t at = (size_t)(hit - s.p);
        LNX_TRY(tpl_buf_put(&b, s.p + i, at - i));
        LNX_TRY(tpl_buf_put(&b, new_str.p, new_str.n));
        i = at + old.n;
        done++;
    }
    LNX_TRY(tpl_buf_put(&b, s.p + i, s.n - i));
    *out = str_value(&b);
    return LNX_OK;
}

static lnx_status list_append(tpl_render *r, tpl_value *list, size_t *cap, const tpl_value *v)
{
    tpl_list *l = list->u.list;
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        tpl_value *items = tpl_alloc_n(&r->ar, nc, sizeof *items);
        if (!items)
            return tpl_arena_status();
        if (l->n)
            memcpy(items, l->items, l->n * sizeof *items);
        l->items = items;
        *cap = nc;
    }
    l->items[l->n++] = *v;
    return LNX_OK;
}

static lnx_status split(tpl_render *r, size_t pos, tpl_str s, const tpl_value *sepv, int64_t maxsplit,
                        tpl_value *out)
{
    size_t cap = 0;
    LNX_TRY(tpl_new_list(r, 0, out));
    if (!given(sepv)) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            size_t k;
            while ((k = tpl_space_at(s.p, s.n, i)) != 0)
                i += k;
            if (i >= s.n)
                break;
            size_t start = i;
            if (maxsplit >= 0 && done >= maxsplit) {
                i = s.n;
            } else {
                while (i < s.n && !tpl_space_at(s.p, s.n, i))
                    tpl_utf8_next(s.p, s.n, &i);
            }
            tpl_value piece = tpl_string(s.p + start, i - start);
            LNX_TRY(list_append(r, out, &cap, &piece));
            done++;
        }
        return LNX_OK;
    }
    tpl_str sep = {0};
    LNX_TRY(need_str(r, pos, sepv, "separator", &sep));
    if (sep.n == 0)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "empty separator");
    size_t i = 0;
    int64_t done = 0;
    for (;;) {
        const char *hit = (maxsplit < 0 || done < maxsplit) && i <= s.n ? memmem(s.p + i, s.n - i, sep.p, sep.n)
                                                                         : NULL;
        size_t end = hit ? (size_t)(hit - s.p) : s.n;
        tpl_value piece = tpl_string(s.p + i, end - i);
        LNX_TRY(list_append(r, out, &cap, &piece));
        if (!hit)
            break;
        i = end + sep.n;
        done++;
    }
    return LNX_OK;
}

static int has_prefix(tpl_str s, tpl_str p, int suffix)
{
    if (p.n > s.n)
        return 0;
    return p.n == 0 || memcmp(s.p + (suffix ? s.n - p.n : 0), p.p, p.n) == 0;
}

static lnx_status starts_ends(tpl_render *r, size_t pos, tpl_str s, const tpl_value *arg, int suffix, tpl_value *out)
{
    if (arg && tpl_is_list(arg)) {
        size_t n = tpl_list_len(arg);
        for (size_t i = 0; i < n; i++) {
            tpl_value x = tpl_list_get(arg, i);
            tpl_str p = {0};
            LNX_TRY(need_str(r, pos, &x, "prefix", &p));
            if (has_prefix(s, p, suffix)) {
                *out = tpl_bool(1);
                return LNX_OK;
            }
        }
        *out = tpl_bool(0);
        return LNX_OK;
    }
    tpl_str p = {0};
    LNX_TRY(need_str(r, pos, arg, suffix ? "suffix" : "prefix", &p));
    *out = tpl_bool(has_prefix(s, p, suffix));
    return LNX_OK;
}

/* ---- attribute paths ------------------------------------------------------------------------ */

/* item["a"]["b"] for the path "a.b" (digit parts index lists), as Jinja's make_attrgetter. */
static lnx_status get_path(tpl_render *r, size_t pos, const tpl_value *item, tpl_str path, tpl_value *out)
{
    tpl_value cur = *item;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < path.n && path.p[j] != '.')
            j++;
        tpl_str part = {path.p + i, j - i};
        tpl_value key = tpl_string(part.p, part.n);
        int digits = part.n > 0 && part.n < 18;
        for (size_t k = 0; k < part.n && digits; k++)
            digits = part.p[k] >= '0' && part.p[k] <= '9';
        if (digits)
            key = tpl_int(strtoll(part.p, NULL, 10));
        if (cur.kind == TV_UNDEF)
            return tpl_undefined_error(r, pos, &cur);
        tpl_value next;
        LNX_TRY(tpl_getitem(r, NULL, &cur, &key, &next));
        cur = next;
        if (j >= path.n)
            break;
        i = j + 1;
    }
    *out = cur;
    return LNX_OK;
}

/* ---- filters -------------------------------------------------------------------------------- */

static lnx_status filter_length(tpl_render *r, size_t pos, const tpl_value *v, tpl_value *out)
{
    if (v->kind == TV_STR) {
        LNX_TRY(tpl_charge(r, pos, v->u.s.n));
        *out = tpl_int((int64_t)tpl_utf8_count(v->u.s.p, v->u.s.n));
    } else if (tpl_is_list(v))
        *out = tpl_int((int64_t)tpl_list_len(v));
    else if (v->kind == TV_DICT)
        *out = tpl_int((int64_t)v->u.dict->n);
    else if (v->kind == TV_JSON)
        *out = tpl_int((int64_t)json_object_size(v->u.json));
    else if (v->kind == TV_UNDEF)
        *out = tpl_int(0);
    else
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "object of type '%s' has no len()", tpl_type_name(v));
    return LNX_OK;
}

static lnx_status copy_list(tpl_render *r, const tpl_value *items, size_t n, tpl_value *out)
{
    LNX_TRY(tpl_new_list(r, n, out));
    if (n)
        memcpy(out->u.list->items, items, n * sizeof *items);
    return LNX_OK;
}

/* select / reject / selectattr / rejectattr */
static lnx_status filter_select(tpl_render *r, size_t pos, const tpl_value *seq, const tpl_args *a, int by_attr,
                                int keep, tpl_value *out)
{
    if (a->nkw)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "select filters take no keyword arguments");
    size_t first = 0;
    tpl_str attr = {0};
    if (by_attr) {
        if (a->npos < 1)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "missing attribute name");
        LNX_TRY(need_str(r, pos, &a->pos[0], "attribute", &attr));
        first = 1;
    }
    tpl_str test = {0};
    int has_test = a->npos > first;
    if (has_test)
        LNX_TRY(need_str(r, pos, &a->pos[first], "test name", &test));
    if (has_test && !tpl_test_exists(test.p, test.n))
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "unknown test '%.*s'", short_len(test), test.p);
    tpl_args targs = {.pos = a->pos + first + has_test, .npos = a->npos - first - (size_t)has_test};
    const tpl_value *items = NULL;
    size_t n = 0, k = 0;
    if (tpl_truthy(seq)) /* Jinja skips a false sequence without iterating it */
        LNX_TRY(tpl_iterate(r, pos, seq, &items, &n));
    LNX_TRY(tpl_new_list(r, n, out));
    for (size_t i = 0; i < n; i++) {
        tpl_value x = items[i];
        if (by_attr)
            LNX_TRY(get_path(r, pos, &items[i], attr, &x));
        int ok;
        if (has_test)
            LNX_TRY(tpl_call_test(r, pos, test, &x, &targs, &ok));
        else
            ok = tpl_truthy(&x);
        if (ok == keep)
            out->u.list->items[k++] = items[i];
    }
    out->u.list->n = k;
    return LNX_OK;
}

static lnx_status filter_map(tpl_render *r, size_t pos, const tpl_value *seq, const tpl_args *a, tpl_value *out)
{
    const tpl_value *attr = NULL, *def = NULL;
    for (size_t i = 0; i < a->nkw; i++) {
        if (str_is(a->kwnames[i], "attribute"))
            attr = &a->kw[i];
        else if (str_is(a->kwnames[i], "default"))
            def = &a->kw[i];
        else
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "map got an unexpected keyword argument '%.*s'",
                            short_len(a->kwnames[i]), a->kwnames[i].p);
    }
    tpl_str name = {0};
    if (!attr) {
        if (a->npos < 1)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "map requires a filter name or attribute=");
        LNX_TRY(need_str(r, pos, &a->pos[0], "filter name", &name));
        if (!tpl_filter_exists(name.p, name.n))
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "unknown filter '%.*s'", short_len(name), name.p);
    }
    tpl_str path = {0};
    if (attr)
        LNX_TRY(need_str(r, pos, attr, "attribute", &path));
    tpl_args fargs = {.pos = a->npos ? a->pos + 1 : NULL, .npos = a->npos ? a->npos - 1 : 0};
    const tpl_value *items = NULL;
    size_t n = 0;
    if (tpl_truthy(seq))
        LNX_TRY(tpl_iterate(r, pos, seq, &items, &n));
    LNX_TRY(tpl_new_list(r, n, out));
    for (size_t i = 0; i < n; i++) {
        tpl_value *dst = &out->u.list->items[i];
        if (attr) {
            LNX_TRY(get_path(r, pos, &items[i], path, dst));
            if (dst->kind == TV_UNDEF && def)
                *dst = *def;
        } else {
            LNX_TRY(tpl_call_filter(r, pos, name, &items[i], &fargs, dst));
        }
    }
    return LNX_OK;
}

static lnx_status filter_tojson(tpl_render *r, size_t pos, const tpl_value *v, const tpl_value **s, tpl_value *out)
{
    /* transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
    tpl_json_opts o = {0};
    o.ascii = s[0] && tpl_truthy(s[0]);
    o.sort_keys = s[3] && tpl_truthy(s[3]);
    if (given(s[1])) {
        o.pretty = 1;
        if (s[1]->kind == TV_STR) {
            o.indent_str = s[1]->u.s;
        } else {
            int64_t width = 0;
            LNX_TRY(need_int(r, pos, s[1], "indent", &width));
            if (width > 1024)
                return tpl_fail(r, pos, LNX_E_LIMIT, "indent too large");
            char *sp = tpl_alloc(&r->ar, width > 0 ? (size_t)width : 1);
            if (!sp)
                return tpl_arena_status();
            if (width > 0)
                memset(sp, ' ', (size_t)width);
            o.indent_str.p = sp;
            o.indent_str.n = width > 0 ? (size_t)width : 0;
        }
    }
    o.item_sep.p = o.pretty ? "," : ", ";
    o.item_sep.n = o.pretty ? 1 : 2;
    o.key_sep.p = ": ";
    o.key_sep.n = 2;
    if (given(s[2])) {
        if (!tpl_is_list(s[2]) || tpl_list_len(s[2]) != 2)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "separators must be a pair of strings");
        tpl_value x = tpl_list_get(s[2], 0), y = tpl_list_get(s[2], 1);
        LNX_TRY(need_str(r, pos, &x, "item separator", &o.item_sep));
        LNX_TRY(need_str(r, pos, &y, "key separator", &o.key_sep));
    }
    tpl_buf b = scratch(r);
    LNX_TRY(tpl_write_json(r, pos, &b, v, &o, 0));
    *out = str_value(&b);
    return LNX_OK;
}

static int parse_int_text(tpl_str s, int base, int64_t *out)
{
    char tmp[80];
    size_t m = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '_')
            continue;
        if (m + 1 >= sizeof tmp)
            return 0;
        tmp[m++] = s.p[i];
    }
    tmp[m] = '\0';
    if (m == 0)
        return 0;
    char *end;
    long long v = strtoll(tmp, &end, base);
    if (*end || end == tmp)
        return 0;
    *out = v;
    return 1;
}

static int parse_float_text(tpl_str s, double *out)
{
    char tmp[80];
    if (s.n == 0 || s.n >= sizeof tmp)
        return 0;
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (*end || end == tmp)
        return 0;
    *out = v;
    return 1;
}

static lnx_status filter_int(tpl_render *r, size_t pos, const tpl_value *v, const tpl_value **s, tpl_value *out)
{
    int64_t base = 10, i;
    double f;
    if (s[1])
        LNX_TRY(need_int(r, pos, s[1], "base", &base));
    if (base < 2 || base > 36)
        base = 10;
    *out = s[0] ? *s[0] : tpl_int(0);
    if (v->kind == TV_INT || v->kind == TV_BOOL) {
        *out = tpl_int(v->kind == TV_BOOL ? v->u.b : v->u.i);
    } else if (v->kind == TV_FLOAT) {
        if (isfinite(v->u.f) && fabs(v->u.f) < 9.2e18)
            *out = tpl_int((int64_t)v->u.f);
    } else if (v->kind == TV_STR) {
        tpl_str t = strip(v->u.s, NULL, 1, 1);
        if (parse_int_text(t, (int)base, &i))
            *out = tpl_int(i);
        else if (parse_float_text(t, &f) && isfinite(f) && fabs(f) < 9.2e18)
            *out = tpl_int((int64_t)f);
    }
    return LNX_OK;
}

static lnx_status filter_float(const tpl_value *v, const tpl_value *def, tpl_value *out)
{
    double f;
    *out = def ? *def : tpl_float(0.0);
    if (v->kind == TV_INT || v->kind == TV_BOOL)
        *out = tpl_float(v->kind == TV_BOOL ? v->u.b : (double)v->u.i);
    else if (v->kind == TV_FLOAT)
        *out = *v;
    else if (v->kind == TV_STR && parse_float_text(strip(v->u.s, NULL, 1, 1), &f))
        *out = tpl_float(f);
    return LNX_OK;
}

static lnx_status filter_reverse(tpl_render *r, size_t pos, const tpl_value *v, tpl_value *out)
{
    const tpl_value *items;
    size_t n;
    LNX_TRY(tpl_iterate(r, pos, v, &items, &n));
    if (v->kind == TV_STR) {
        tpl_buf b = scratch(r);
        for (size_t i = n; i-- > 0;)
            LNX_TRY(tpl_buf_put(&b, items[i].u.s.p, items[i].u.s.n));
        *out = str_value(&b);
        return LNX_OK;
    }
    LNX_TRY(tpl_new_list(r, n, out));
    for (size_t i = 0; i < n; i++)
        out->u.list->items[i] = items[n - 1 - i];
    return LNX_OK;
}

static lnx_status dict_items(tpl_render *r, size_t pos, const tpl_value *v, int what, tpl_value *out)
{
    if (v->kind == TV_UNDEF)
        return tpl_new_list(r, 0, out);
    if (!tpl_is_dict(v))
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "can only get items from a mapping, not %s", tpl_type_name(v));
    tpl_str *keys;
    tpl_value *vals;
    size_t n;
    LNX_TRY(tpl_dict_entries(r, v, &keys, &vals, &n));
    LNX_TRY(tpl_new_list(r, n, out));
    for (size_t i = 0; i < n; i++) {
        tpl_value key = tpl_string(keys[i].p, keys[i].n);
        if (what == 0) {
            LNX_TRY(tpl_new_list(r, 2, &out->u.list->items[i]));
            tpl_list *pair = out->u.list->items[i].u.list;
            pair->tuple = 1;
            pair->items[0] = key;
            pair->items[1] = vals[i];
        } else {
            out->u.list->items[i] = what == 1 ? key : vals[i];
        }
    }
    return LNX_OK;
}

typedef struct sorter {
    tpl_render *r;
    size_t pos;
    int ci;
    lnx_status st;
    const tpl_value *keys;
} sorter;

static int ci_cmp(tpl_str a, tpl_str b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)to_lower(a.p[i]), y = (unsigned char)to_lower(b.p[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return a.n < b.n ? -1 : a.n > b.n;
}

static int sort_le(sorter *s, size_t a, size_t b)
{
    if (s->st != LNX_OK)
        return 1;
    const tpl_value *x = &s->keys[a], *y = &s->keys[b];
    if (s->ci && x->kind == TV_STR && y->kind == TV_STR)
        return ci_cmp(x->u.s, y->u.s) <= 0;
    int c = 0;
    s->st = tpl_order(s->r, s->pos, x, y, &c, 0);
    return c <= 0;
}

static void merge_sort(sorter *s, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(s, idx, tmp, h);
    merge_sort(s, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = sort_le(s, idx[i], idx[j]) ? idx[i++] : idx[j++];
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static lnx_status filter_sort(tpl_render *r, size_t pos, const tpl_value *v, const tpl_value **s, tpl_value *out)
{
    const tpl_value *items;
    size_t n;
    LNX_TRY(tpl_iterate(r, pos, v, &items, &n));
    tpl_value *keys = tpl_alloc_n(&r->ar, n + 1, sizeof *keys);
    size_t *idx = tpl_alloc_n(&r->ar, n + 1, sizeof *idx);
    size_t *tmp = tpl_alloc_n(&r->ar, n + 1, sizeof *tmp);
    if (!keys || !idx || !tmp)
        return tpl_arena_status();
    tpl_str path = {0};
    if (given(s[2]))
        LNX_TRY(need_str(r, pos, s[2], "attribute", &path));
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        keys[i] = items[i];
        if (path.p)
            LNX_TRY(get_path(r, pos, &items[i], path, &keys[i]));
    }
    sorter so = {.r = r, .pos = pos, .ci = !(s[1] && tpl_truthy(s[1])), .keys = keys};
    merge_sort(&so, idx, tmp, n);
    LNX_TRY(so.st);
    int rev = s[0] && tpl_truthy(s[0]);
    LNX_TRY(tpl_new_list(r, n, out));
    /* reverse=True keeps equal items in their order, as Python's sort does */
    if (rev) {
        size_t k = 0;
        for (size_t end = n; end > 0;) {
            size_t start = end - 1;
            while (start > 0) {
                int eq;
                LNX_TRY(tpl_equal(r, pos, &keys[idx[start - 1]], &keys[idx[end - 1]], &eq, 0));
                if (!eq)
                    break;
                start--;
            }
            for (size_t i = start; i < end; i++)
                out->u.list->items[k++] = items[idx[i]];
            end = start;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            out->u.list->items[i] = items[idx[i]];
    }
    return LNX_OK;
}

static lnx_status filter_join(tpl_render *r, size_t pos, const tpl_value *v, const tpl_value **s, tpl_value *out)
{
    tpl_str sep = {"", 0}, path = {0};
    if (s[0])
        LNX_TRY(tpl_to_str(r, s[0], &sep));
    if (given(s[1]))
        LNX_TRY(need_str(r, pos, s[1], "attribute", &path));
    const tpl_value *items;
    size_t n;
    LNX_TRY(tpl_iterate(r, pos, v, &items, &n));
    tpl_buf b = scratch(r);
    for (size_t i = 0; i < n; i++) {
        tpl_value x = items[i];
        if (path.p)
            LNX_TRY(get_path(r, pos, &items[i], path, &x));
        if (i)
            LNX_TRY(tpl_buf_put(&b, sep.p, sep.n));
        LNX_TRY(tpl_write_str(r, &b, &x));
    }
    *out = str_value(&b);
    return LNX_OK;
}

static const char *const filter_names[] = {
    "length", "count", "trim", "list", "first", "last", "string", "join", "upper", "lower", "capitalize", "title",
    "selectattr", "rejectattr", "select", "reject", "map", "default", "d", "tojson", "safe", "int", "float", "abs",
    "reverse", "replace", "items", "sort",
};

int tpl_filter_exists(const char *name, size_t n)
{
    tpl_str s = {name, n};
    for (size_t i = 0; i < sizeof filter_names / sizeof filter_names[0]; i++)
        if (str_is(s, filter_names[i]))
            return 1;
    return 0;
}

#define BIND(...)                                                                                  \
    do {                                                                                           \
        static const char *const params_[] = {__VA_ARGS__};                                        \
        LNX_TRY(bind_params(r, pos, name, a, params_, sizeof params_ / sizeof params_[0], s));         \
    } while (0)
#define BIND_NONE() LNX_TRY(bind_params(r, pos, name, a, NULL, 0, s))

lnx_status tpl_call_filter(tpl_render *r, size_t pos, tpl_str name, const tpl_value *v, const tpl_args *a,
                           tpl_value *out)
{
    const tpl_value *s[MAX_PARAMS];
    tpl_str text = {0};
    if (str_is(name, "length") || str_is(name, "count")) {
        BIND_NONE();
        return filter_length(r, pos, v, out);
    }
    if (str_is(name, "trim")) {
        BIND("chars");
        tpl_str chars = {0};
        LNX_TRY(tpl_to_str(r, v, &text));
        if (given(s[0]))
            LNX_TRY(need_str(r, pos, s[0], "chars", &chars));
        LNX_TRY(charge_strip(r, pos, text, given(s[0]) ? &chars : NULL));
        text = strip(text, given(s[0]) ? &chars : NULL, 1, 1);
        *out = tpl_string(text.p, text.n);
        return LNX_OK;
    }
    if (str_is(name, "list")) {
        const tpl_value *items;
        size_t n;
        BIND_NONE();
        LNX_TRY(tpl_iterate(r, pos, v, &items, &n));
        return copy_list(r, items, n, out);
    }
    if (str_is(name, "first") || str_is(name, "last")) {
        const tpl_value *items;
        size_t n;
        BIND_NONE();
        LNX_TRY(tpl_iterate(r, pos, v, &items, &n));
        *out = n ? items[str_is(name, "first") ? 0 : n - 1] : tpl_undef(NULL);
        return LNX_OK;
    }
    if (str_is(name, "string") || str_is(name, "safe")) {
        BIND_NONE();
        if (str_is(name, "safe")) {
            *out = *v;
            return LNX_OK;
        }
        LNX_TRY(tpl_to_str(r, v, &text));
        *out = tpl_string(text.p, text.n);
        return LNX_OK;
    }
    if (str_is(name, "join")) {
        BIND("d", "attribute");
        return filter_join(r, pos, v, s, out);
    }
    if (str_is(name, "upper") || str_is(name, "lower") || str_is(name, "capitalize") || str_is(name, "title")) {
        BIND_NONE();
        LNX_TRY(tpl_to_str(r, v, &text));
        int mode = str_is(name, "upper") ? CASE_UPPER : str_is(name, "lower") ? CASE_LOWER
                                                   : str_is(name, "title") ? CASE_TITLE_WORDS
                                                                           : CASE_CAPITALIZE;
        return map_case(r, text, mode, out);
    }
    if (str_is(name, "selectattr") || str_is(name, "rejectattr"))
        return filter_select(r, pos, v, a, 1, name.p[0] == 's', out);
    if (str_is(name, "select") || str_is(name, "reject"))
        return filter_select(r, pos, v, a, 0, name.p[0] == 's', out);
    if (str_is(name, "map"))
        return filter_map(r, pos, v, a, out);
    if (str_is(name, "default") || str_is(name, "d")) {
        BIND("default_value", "boolean");
        int use_default = v->kind == TV_UNDEF || (s[1] && tpl_truthy(s[1]) && !tpl_truthy(v));
        *out = !use_default ? *v : s[0] ? *s[0] : tpl_string("", 0);
        return LNX_OK;
    }
    if (str_is(name, "tojson")) {
        BIND("ensure_ascii", "indent", "separators", "sort_keys");
        return filter_tojson(r, pos, v, s, out);
    }
    if ((str_is(name, "int") || str_is(name, "float")) && v->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, v);
    if (str_is(name, "int")) {
        BIND("default", "base");
        return filter_int(r, pos, v, s, out);
    }
    if (str_is(name, "float")) {
        BIND("default");
        return filter_float(v, s[0], out);
    }
    if (str_is(name, "abs")) {
        BIND_NONE();
        if (v->kind == TV_FLOAT)
            *out = tpl_float(fabs(v->u.f));
        else if (v->kind == TV_INT && v->u.i != INT64_MIN)
            *out = tpl_int(v->u.i < 0 ? -v->u.i : v->u.i);
        else if (v->kind == TV_BOOL)
            *out = tpl_int(v->u.b);
        else
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "bad operand type for abs(): '%s'", tpl_type_name(v));
        return LNX_OK;
    }
    if (str_is(name, "reverse")) {
        BIND_NONE();
        return filter_reverse(r, pos, v, out);
    }
    if (str_is(name, "replace")) {
        tpl_str old = {0}, new_str = {0};
        int64_t count = -1;
        BIND("old", "new", "count");
        LNX_TRY(tpl_to_str(r, v, &text));
        LNX_TRY(need_str(r, pos, s[0], "old", &old));
        LNX_TRY(need_str(r, pos, s[1], "new", &new_str));
        if (given(s[2]))
            LNX_TRY(need_int(r, pos, s[2], "count", &count));
        return replace(r, text, old, new_str, count, out);
    }
    if (str_is(name, "items")) {
        BIND_NONE();
        return dict_items(r, pos, v, 0, out);
    }
    if (str_is(name, "sort")) {
        BIND("reverse", "case_sensitive", "attribute");
        return filter_sort(r, pos, v, s, out);
    }
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "unknown filter '%.*s'", short_len(name), name.p);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static const char *const test_names[] = {
    "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false",
    "mapping", "iterable", "sequence", "callable", "even", "odd", "divisibleby", "equalto", "eq", "==",
    "ne", "!=", "lt", "<", "lessthan", "gt", ">", "greaterthan", "le", "<=", "ge", ">=", "in", "sameas",
    "lower", "upper",
};

int tpl_test_exists(const char *name, size_t n)
{
    tpl_str s = {name, n};
    for (size_t i = 0; i < sizeof test_names / sizeof test_names[0]; i++)
        if (str_is(s, test_names[i]))
            return 1;
    return 0;
}

static int case_test(tpl_str s, int upper)
{
    int cased = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!is_alpha(c))
            continue;
        if ((c >= 'a' && c <= 'z') == upper)
            return 0;
        cased = 1;
    }
    return cased;
}

static lnx_status compare_test(tpl_render *r, size_t pos, tpl_str name, const tpl_value *v, const tpl_value *other,
                               int *out)
{
    int c;
    if (str_is(name, "equalto") || str_is(name, "eq") || str_is(name, "==") || str_is(name, "ne") ||
        str_is(name, "!=")) {
        LNX_TRY(tpl_equal(r, pos, v, other, &c, 0));
        *out = (name.p[0] == 'n' || name.p[0] == '!') ? !c : c;
        return LNX_OK;
    }
    LNX_TRY(tpl_order(r, pos, v, other, &c, 0));
    if (str_is(name, "lt") || str_is(name, "<") || str_is(name, "lessthan"))
        *out = c < 0;
    else if (str_is(name, "gt") || str_is(name, ">") || str_is(name, "greaterthan"))
        *out = c > 0;
    else if (str_is(name, "le") || str_is(name, "<="))
        *out = c <= 0;
    else
        *out = c >= 0;
    return LNX_OK;
}

lnx_status tpl_call_test(tpl_render *r, size_t pos, tpl_str name, const tpl_value *v, const tpl_args *a, int *out)
{
    int k = v->kind;
    static const char *const one_arg[] = {"divisibleby", "equalto", "eq", "==", "ne", "!=", "lt", "<", "lessthan",
                                          "gt", ">", "greaterthan", "le", "<=", "ge", ">=", "in", "sameas"};
    int wants_arg = 0;
    for (size_t i = 0; i < sizeof one_arg / sizeof one_arg[0]; i++)
        wants_arg |= str_is(name, one_arg[i]);
    if (a->nkw || a->npos != (size_t)wants_arg)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "test '%.*s' takes %d argument%s", short_len(name), name.p,
                        wants_arg, wants_arg ? "" : "s");
    const tpl_value *arg = wants_arg ? &a->pos[0] : NULL;
    if (str_is(name, "defined"))
        *out = k != TV_UNDEF;
    else if (str_is(name, "undefined"))
        *out = k == TV_UNDEF;
    else if (str_is(name, "none"))
        *out = k == TV_NONE;
    else if (str_is(name, "string"))
        *out = k == TV_STR;
    else if (str_is(name, "number"))
        *out = k == TV_INT || k == TV_FLOAT || k == TV_BOOL;
    else if (str_is(name, "integer"))
        *out = k == TV_INT;
    else if (str_is(name, "float"))
        *out = k == TV_FLOAT;
    else if (str_is(name, "boolean"))
        *out = k == TV_BOOL;
    else if (str_is(name, "true"))
        *out = k == TV_BOOL && v->u.b;
    else if (str_is(name, "false"))
        *out = k == TV_BOOL && !v->u.b;
    else if (str_is(name, "mapping"))
        *out = tpl_is_dict(v);
    else if (str_is(name, "iterable"))
        *out = k == TV_STR || k == TV_UNDEF || tpl_is_list(v) || tpl_is_dict(v);
    else if (str_is(name, "sequence"))
        *out = k == TV_STR || k == TV_UNDEF || tpl_is_list(v) || tpl_is_dict(v);
    else if (str_is(name, "callable"))
        *out = k == TV_FUNC;
    else if (str_is(name, "even") || str_is(name, "odd") || str_is(name, "divisibleby")) {
        /* value % 2 == 0, value % 2 == 1, value % num == 0 */
        tpl_value two = tpl_int(2), rem, want = tpl_int(name.p[0] == 'o');
        LNX_TRY(tpl_binop(r, pos, OP_MOD, v, name.p[0] == 'd' ? arg : &two, &rem));
        LNX_TRY(tpl_equal(r, pos, &rem, &want, out, 0));
    } else if (str_is(name, "in")) {
        tpl_value res;
        if (arg->kind == TV_STR) {
            if (k != TV_STR)
                return tpl_fail(r, pos, LNX_E_TEMPLATE, "'in <string>' requires string as left operand");
            LNX_TRY(tpl_charge(r, pos, arg->u.s.n));
            *out = v->u.s.n == 0 ||
                   (v->u.s.n <= arg->u.s.n && memmem(arg->u.s.p, arg->u.s.n, v->u.s.p, v->u.s.n) != NULL);
            return LNX_OK;
        }
        if (tpl_is_dict(arg)) {
            *out = k == TV_STR && tpl_dict_find(arg, v->u.s.p, v->u.s.n, &res);
            return LNX_OK;
        }
        const tpl_value *items;
        size_t n;
        LNX_TRY(tpl_iterate(r, pos, arg, &items, &n));
        *out = 0;
        for (size_t i = 0; i < n && !*out; i++)
            LNX_TRY(tpl_equal(r, pos, v, &items[i], out, 0));
    } else if (str_is(name, "sameas")) {
        *out = k == arg->kind && ((k == TV_NONE || k == TV_UNDEF) || (k == TV_BOOL && v->u.b == arg->u.b) ||
                                  (k == TV_LIST && v->u.list == arg->u.list) ||
                                  ((k == TV_DICT || k == TV_NS) && v->u.dict == arg->u.dict) ||
                                  (k == TV_JSON && v->u.json == arg->u.json));
    } else if (str_is(name, "lower") || str_is(name, "upper")) {
        tpl_str text = {0};
        LNX_TRY(tpl_to_str(r, v, &text));
        *out = case_test(text, name.p[0] == 'u');
    } else if (tpl_test_exists(name.p, name.n)) {
        return compare_test(r, pos, name, v, arg, out);
    } else {
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "unknown test '%.*s'", short_len(name), name.p);
    }
    return LNX_OK;
}

/* ---- methods -------------------------------------------------------------------------------- */

static lnx_status str_method(tpl_render *r, size_t pos, tpl_str text, tpl_str name, const tpl_args *a,
                             tpl_value *out, int *found)
{
    const tpl_value *s[MAX_PARAMS];
    *found = 1;
    if (str_is(name, "upper") || str_is(name, "lower") || str_is(name, "title") || str_is(name, "capitalize")) {
        BIND_NONE();
        int mode = str_is(name, "upper") ? CASE_UPPER : str_is(name, "lower") ? CASE_LOWER
                                                   : str_is(name, "title") ? CASE_TITLE
                                                                           : CASE_CAPITALIZE;
        return map_case(r, text, mode, out);
    }
    if (str_is(name, "strip") || str_is(name, "lstrip") || str_is(name, "rstrip")) {
        BIND("chars");
        tpl_str chars = {0};
        if (given(s[0]))
            LNX_TRY(need_str(r, pos, s[0], "chars", &chars));
        LNX_TRY(charge_strip(r, pos, text, given(s[0]) ? &chars : NULL));
        tpl_str t = strip(text, given(s[0]) ? &chars : NULL, name.p[0] != 'r', name.p[0] != 'l');
        *out = tpl_string(t.p, t.n);
        return LNX_OK;
    }
    if (str_is(name, "startswith") || str_is(name, "endswith")) {
        BIND("prefix");
        return starts_ends(r, pos, text, s[0], name.p[0] == 'e', out);
    }
    if (str_is(name, "split")) {
        int64_t maxsplit = -1;
        BIND("sep", "maxsplit");
        if (s[1])
            LNX_TRY(need_int(r, pos, s[1], "maxsplit", &maxsplit));
        return split(r, pos, text, s[0], maxsplit, out);
    }
    if (str_is(name, "replace")) {
        tpl_str old = {0}, new_str = {0};
        int64_t count = -1;
        BIND("old", "new", "count");
        LNX_TRY(need_str(r, pos, s[0], "old", &old));
        LNX_TRY(need_str(r, pos, s[1], "new", &new_str));
        if (s[2])
            LNX_TRY(need_int(r, pos, s[2], "count", &count));
        return replace(r, text, old, new_str, count, out);
    }
    if (str_is(name, "join")) {
        BIND("iterable");
        const tpl_value *items;
        size_t n;
        if (!s[0])
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "join() takes exactly one argument");
        LNX_TRY(tpl_iterate(r, pos, s[0], &items, &n));
        tpl_buf b = scratch(r);
        for (size_t i = 0; i < n; i++) {
            tpl_str item = {0};
            LNX_TRY(need_str(r, pos, &items[i], "sequence item", &item));
            if (i)
                LNX_TRY(tpl_buf_put(&b, text.p, text.n));
            LNX_TRY(tpl_buf_put(&b, item.p, item.n));
        }
        *out = str_value(&b);
        return LNX_OK;
    }
    *found = 0;
    return LNX_OK;
}

static lnx_status dict_method(tpl_render *r, size_t pos, const tpl_value *d, tpl_str name, const tpl_args *a,
                              tpl_value *out, int *found)
{
    const tpl_value *s[MAX_PARAMS];
    *found = 1;
    if (str_is(name, "items") || str_is(name, "keys") || str_is(name, "values")) {
        BIND_NONE();
        return dict_items(r, pos, d, str_is(name, "items") ? 0 : str_is(name, "keys") ? 1 : 2, out);
    }
    if (str_is(name, "get")) {
        BIND("key", "default");
        if (!s[0])
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "get() takes at least one argument");
        *out = s[1] ? *s[1] : tpl_none();
        tpl_value found_v;
        if (s[0]->kind == TV_STR && tpl_dict_find(d, s[0]->u.s.p, s[0]->u.s.n, &found_v))
            *out = found_v;
        return LNX_OK;
    }
    *found = 0;
    return LNX_OK;
}

lnx_status tpl_call_method(tpl_render *r, size_t pos, const tpl_value *self, tpl_str name, const tpl_args *a,
                           tpl_value *out)
{
    int found = 0;
    if (self->kind == TV_STR)
        LNX_TRY(str_method(r, pos, self->u.s, name, a, out, &found));
    else if (tpl_is_dict(self))
        LNX_TRY(dict_method(r, pos, self, name, a, out, &found));
    else if (self->kind == TV_LOOP && str_is(name, "cycle")) {
        if (a->nkw || a->npos == 0)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "loop.cycle() takes at least one positional argument");
        *out = a->pos[self->u.loop->index0 % (int64_t)a->npos];
        return LNX_OK;
    }
    if (found)
        return LNX_OK;
    if (self->kind == TV_UNDEF)
        return tpl_undefined_error(r, pos, self);
    return tpl_fail(r, pos, LNX_E_TEMPLATE, "unknown method '%.*s' of %s", short_len(name), name.p,
                    tpl_type_name(self));
}

/* ---- globals -------------------------------------------------------------------------------- */

static lnx_status global_range(tpl_render *r, size_t pos, const tpl_args *a, tpl_value *out)
{
    int64_t v[3] = {0, 0, 1};
    if (a->nkw || a->npos < 1 || a->npos > 3)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "range() takes 1 to 3 positional arguments");
    for (size_t i = 0; i < a->npos; i++)
        LNX_TRY(need_int(r, pos, &a->pos[i], "range() argument", &v[i]));
    int64_t start = 0, stop = v[0], step = 1;
    if (a->npos >= 2) {
        start = v[0];
        stop = v[1];
        step = v[2];
    }
    if (step == 0)
        return tpl_fail(r, pos, LNX_E_TEMPLATE, "range() arg 3 must not be zero");
    double count_f = 0;
    if (step > 0 && stop > start)
        count_f = ((double)stop - (double)start) / (double)step;
    else if (step < 0 && stop < start)
        count_f = ((double)start - (double)stop) / -(double)step;
    if (count_f > TPL_MAX_RANGE)
        return tpl_fail(r, pos, LNX_E_LIMIT, "range too big (more than %d items)", TPL_MAX_RANGE);
    size_t count = 0;
    for (int64_t x = start; step > 0 ? x < stop : x > stop; count++) {
        if (__builtin_add_overflow(x, step, &x))
            break;
    }
    LNX_TRY(tpl_new_list(r, count, out));
    for (size_t i = 0; i < count; i++)
        out->u.list->items[i] = tpl_int(start + (int64_t)i * step);
    return LNX_OK;
}

lnx_status tpl_call_global(tpl_render *r, size_t pos, int fn, const tpl_args *a, tpl_value *out)
{
    switch (fn) {
    case FN_RAISE: {
        tpl_str msg = {"", 0};
        if (a->npos >= 1)
            LNX_TRY(tpl_to_str(r, &a->pos[0], &msg));
        return lnx_error(LNX_E_TEMPLATE, "%.*s", (int)(msg.n > 4096 ? 4096 : msg.n), msg.p);
    }
    case FN_RANGE: return global_range(r, pos, a, out);
    case FN_NAMESPACE: {
        LNX_TRY(tpl_new_dict(r, out));
        out->kind = TV_NS;
        if (a->npos > 1)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "namespace() takes at most one positional argument");
        if (a->npos == 1) {
            if (!tpl_is_dict(&a->pos[0]))
                return tpl_fail(r, pos, LNX_E_TEMPLATE, "namespace() argument must be a mapping");
            tpl_str *keys;
            tpl_value *vals;
            size_t n;
            LNX_TRY(tpl_dict_entries(r, &a->pos[0], &keys, &vals, &n));
            for (size_t i = 0; i < n; i++)
                LNX_TRY(tpl_dict_set(r, out->u.dict, keys[i], &vals[i]));
        }
        for (size_t i = 0; i < a->nkw; i++)
            LNX_TRY(tpl_dict_set(r, out->u.dict, a->kwnames[i], &a->kw[i]));
        return LNX_OK;
    }
    default: {
        tpl_str fmt = {0};
        if (a->nkw || a->npos != 1)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "strftime_now() takes exactly one argument");
        LNX_TRY(need_str(r, pos, &a->pos[0], "format", &fmt));
        char *f = tpl_strndup(&r->ar, fmt.p, fmt.n);
        if (!f)
            return tpl_arena_status();
        time_t now = time(NULL);
        struct tm tm;
        char buf[512];
        if (!localtime_r(&now, &tm))
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "strftime_now(): no local time");
        size_t n = fmt.n ? strftime(buf, sizeof buf, f, &tm) : 0;
        if (fmt.n && n == 0)
            return tpl_fail(r, pos, LNX_E_TEMPLATE, "strftime_now(): empty or too long result");
        char *p = tpl_strndup(&r->ar, buf, n);
        if (!p)
            return tpl_arena_status();
        *out = tpl_string(p, n);
        return LNX_OK;
    }
    }
}
