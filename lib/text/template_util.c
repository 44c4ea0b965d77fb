/* Chat templates: the arena, byte buffers and text helpers shared by the lexer, parser and
 * evaluator. */
#include "template_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK_SIZE = 64 * 1024, ARENA_ALIGN = 16 };

struct tpl_chunk {
    tpl_chunk *next;
    size_t size, used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static _Thread_local lnx_status arena_status = LNX_E_NOMEM;

void tpl_arena_init(tpl_arena *a, size_t cap)
{
    a->head = NULL;
    a->total = 0;
    a->cap = cap;
}

void tpl_arena_free(tpl_arena *a)
{
    tpl_chunk *c = a->head;
    while (c) {
        tpl_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

lnx_status tpl_arena_status(void)
{
    return arena_status;
}

static void *arena_fail(lnx_status st, size_t cap)
{
    arena_status = st;
    if (st == LNX_E_LIMIT)
        lnx_error(st, "template: working memory exceeds %zu bytes", cap);
    else
        lnx_error(st, "template: out of memory");
    return NULL;
}

void *tpl_alloc(tpl_arena *a, size_t size)
{
    if (size > a->cap)
        return arena_fail(LNX_E_LIMIT, a->cap);
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    tpl_chunk *c = a->head;
    if (c && c->size - c->used >= size) {
        void *p = c->data + c->used;
        c->used += size;
        return p;
    }
    size_t body = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
    if (body > a->cap - a->total || a->total > a->cap)
        return arena_fail(LNX_E_LIMIT, a->cap);
    tpl_chunk *nc = malloc(sizeof *nc + body);
    if (!nc)
        return arena_fail(LNX_E_NOMEM, a->cap);
    nc->size = body;
    nc->used = size;
    a->total += body;
    if (c && body != CHUNK_SIZE) {
        /* a large block: keep filling the current chunk afterwards */
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        a->head = nc;
    }
    return nc->data;
}

void *tpl_alloc_n(tpl_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return arena_fail(LNX_E_LIMIT, a->cap);
    return tpl_alloc(a, n * size);
}

char *tpl_strndup(tpl_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return arena_fail(LNX_E_LIMIT, a->cap);
    char *p = tpl_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- buffers -------------------------------------------------------------------------------- */

static lnx_status buf_reserve(tpl_buf *b, size_t add)
{
    if (add > b->limit || b->n > b->limit - add)
        return lnx_error(LNX_E_LIMIT, "template: text exceeds %zu bytes", b->limit);
    size_t need = b->n + add + 1;
    if (need <= b->cap)
        return LNX_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p;
    if (b->ar) {
        p = tpl_alloc(b->ar, cap);
        if (!p)
            return tpl_arena_status();
        if (b->n)
            memcpy(p, b->p, b->n);
    } else {
        p = realloc(b->p, cap);
        if (!p)
            return lnx_error(LNX_E_NOMEM, "template: out of memory");
    }
    b->p = p;
    b->cap = cap;
    return LNX_OK;
}

lnx_status tpl_buf_put(tpl_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return LNX_OK;
    lnx_status st = buf_reserve(b, n);
    if (st != LNX_OK)
        return st;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return LNX_OK;
}

lnx_status tpl_buf_putc(tpl_buf *b, char ch)
{
    return tpl_buf_put(b, &ch, 1);
}

lnx_status tpl_buf_puts(tpl_buf *b, const char *s)
{
    return tpl_buf_put(b, s, strlen(s));
}

lnx_status tpl_buf_put_cp(tpl_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return tpl_buf_put(b, u, n);
}

/* ---- text ----------------------------------------------------------------------------------- */

static int is_space_cp(uint32_t cp)
{
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F))
        return 1;
    if (cp < 0x80)
        return 0;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

uint32_t tpl_utf8_next(const char *s, size_t n, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    uint32_t c = u[k];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len <= 1 || k + len > n) {
        *i = k + 1;
        return c;
    }
    uint32_t cp = c & (0x7F >> len);
    for (size_t j = 1; j < len; j++) {
        if ((u[k + j] & 0xC0) != 0x80) {
            *i = k + 1;
            return c;
        }
        cp = (cp << 6) | (u[k + j] & 0x3F);
    }
    *i = k + len;
    return cp;
}

size_t tpl_utf8_count(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        tpl_utf8_next(s, n, &i);
        count++;
    }
    return count;
}

size_t tpl_space_at(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    size_t j = i;
    uint32_t cp = tpl_utf8_next(s, n, &j);
    return is_space_cp(cp) ? j - i : 0;
}

size_t tpl_space_before(const char *s, size_t i)
{
    if (i == 0)
        return 0;
    /* step back over at most three continuation bytes to the lead byte */
    size_t start = i - 1;
    while (start > 0 && i - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80)
        start--;
    size_t j = start;
    uint32_t cp = tpl_utf8_next(s, i, &j);
    if (j != i) {
        start = i - 1;
        j = start;
        cp = tpl_utf8_next(s, i, &j);
    }
    return is_space_cp(cp) ? i - start : 0;
}

void tpl_line_col(const char *src, size_t pos, int *line, int *col)
{
    int l = 1;
    size_t start = 0;
    for (size_t i = 0; i < pos; i++) {
        if (src[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = (int)tpl_utf8_count(src + start, pos - start) + 1;
}

lnx_status tpl_error_at(const char *src, size_t pos, lnx_status st, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    tpl_line_col(src, pos, &line, &col);
    return lnx_error(st, "template:%d:%d: %s", line, col, msg);
}

void tpl_format_float(double f, char *buf, size_t size)
{
    if (isnan(f)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, size, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        snprintf(buf, size, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    /* shortest decimal that reads back as the same double, laid out as Python's repr */
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    const char *p = tmp;
    int neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 20)
            digits[nd++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    char out[64];
    int k = 0;
    if (neg)
        out[k++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++)
                out[k++] = i < nd ? digits[i] : '0';
            out[k++] = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++)
                    out[k++] = digits[i];
            else
                out[k++] = '0';
        } else {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = 0; i < -exp - 1; i++)
                out[k++] = '0';
            for (int i = 0; i < nd; i++)
                out[k++] = digits[i];
        }
        out[k] = '\0';
    } else {
        out[k++] = digits[0];
        if (nd > 1) {
            out[k++] = '.';
            for (int i = 1; i < nd; i++)
                out[k++] = digits[i];
        }
        out[k] = '\0';
        snprintf(out + k, sizeof out - (size_t)k, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(buf, size, "%s", out);
}
