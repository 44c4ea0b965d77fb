/* Growable buffers, the string arena, the two hash maps and UTF-8 helpers of the tokenizer. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* ---- growable buffers ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return 0;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return 0;
    *p = q;
    *cap = c;
    return 1;
}

lnx_status lnx_tok_buf_put(lnx_tok_buf *b, const void *s, size_t n)
{
    if (n == 0)
        return LNX_OK;
    if (n > SIZE_MAX - b->n || !grow((void **)&b->p, &b->cap, b->n + n, 1))
        return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory for a %zu-byte text buffer", b->n + n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return LNX_OK;
}

lnx_status lnx_tok_ids_reserve(lnx_tok_ids *v, size_t extra)
{
    if (extra > SIZE_MAX - v->n || !grow((void **)&v->p, &v->cap, v->n + extra, sizeof *v->p))
        return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory for %zu token ids", v->n + extra);
    return LNX_OK;
}

lnx_status lnx_tok_ids_push(lnx_tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        lnx_status st = lnx_tok_ids_reserve(v, 1);
        if (st != LNX_OK)
            return st;
    }
    v->p[v->n++] = id;
    return LNX_OK;
}

/* ---- arena ---- */

enum { ARENA_BLOCK = 64 * 1024 };

struct lnx_tok_arena_block {
    struct lnx_tok_arena_block *next;
    size_t used, size;
    char data[];
};

char *lnx_tok_arena_dup(lnx_tok_arena *a, const char *s, size_t n)
{
    struct lnx_tok_arena_block *b = a->head;
    if (n >= SIZE_MAX - ARENA_BLOCK - sizeof *b)
        return NULL;
    if (!b || b->size - b->used < n + 1) {
        size_t size = n + 1 > ARENA_BLOCK ? n + 1 : ARENA_BLOCK;
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->used = 0;
        b->size = size;
        /* A big string gets its own block behind the current one, which stays open for small ones. */
        if (a->head && size > ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    char *p = b->data + b->used;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    b->used += n + 1;
    return p;
}

void lnx_tok_arena_free(lnx_tok_arena *a)
{
    struct lnx_tok_arena_block *b = a->head;
    while (b) {
        struct lnx_tok_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- hash maps ---- */

struct lnx_tok_strent {
    const char *key; /* NULL: empty slot */
    uint32_t len;
    int32_t val;
};

struct lnx_tok_pairent {
    uint64_t key; /* UINT64_MAX: empty slot (ids are non-negative int32) */
    int32_t rank, merged;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

static size_t str_slot(const struct lnx_tok_strent *e, size_t cap, const char *key, size_t len)
{
    size_t i = (size_t)hash_bytes(key, len) & (cap - 1);
    while (e[i].key && !(e[i].len == len && memcmp(e[i].key, key, len) == 0))
        i = (i + 1) & (cap - 1);
    return i;
}

static lnx_status str_rehash(lnx_tok_strmap *m, size_t cap)
{
    struct lnx_tok_strent *e = calloc(cap, sizeof *e);
    if (!e)
        return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory for a %zu-slot hash table", cap);
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key)
            e[str_slot(e, cap, m->e[i].key, m->e[i].len)] = m->e[i];
    free(m->e);
    m->e = e;
    m->cap = cap;
    return LNX_OK;
}

lnx_status lnx_tok_strmap_put(lnx_tok_strmap *m, const char *key, size_t len, int32_t val)
{
    if (len > UINT32_MAX)
        return lnx_error(LNX_E_LIMIT, "tokenizer: a %zu-byte piece is too long", len);
    if ((m->n + 1) * 2 > m->cap) {
        lnx_status st = str_rehash(m, m->cap ? m->cap * 2 : 64);
        if (st != LNX_OK)
            return st;
    }
    size_t i = str_slot(m->e, m->cap, key, len);
    if (!m->e[i].key) {
        m->e[i].key = key;
        m->e[i].len = (uint32_t)len;
        m->n++;
    }
    m->e[i].val = val;
    return LNX_OK;
}

int32_t lnx_tok_strmap_get(const lnx_tok_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return -1;
    size_t i = str_slot(m->e, m->cap, key, len);
    return m->e[i].key ? m->e[i].val : -1;
}

void lnx_tok_strmap_free(lnx_tok_strmap *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

static size_t pair_slot(const struct lnx_tok_pairent *e, size_t cap, uint64_t key)
{
    size_t i = (size_t)hash_u64(key) & (cap - 1);
    while (e[i].key != UINT64_MAX && e[i].key != key)
        i = (i + 1) & (cap - 1);
    return i;
}

static lnx_status pair_rehash(lnx_tok_pairmap *m, size_t cap)
{
    struct lnx_tok_pairent *e = malloc(cap * sizeof *e);
    if (!e)
        return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory for a %zu-slot merge table", cap);
    for (size_t i = 0; i < cap; i++)
        e[i].key = UINT64_MAX;
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key != UINT64_MAX)
            e[pair_slot(e, cap, m->e[i].key)] = m->e[i];
    free(m->e);
    m->e = e;
    m->cap = cap;
    return LNX_OK;
}

lnx_status lnx_tok_pairmap_put(lnx_tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    if ((m->n + 1) * 2 > m->cap) {
        lnx_status st = pair_rehash(m, m->cap ? m->cap * 2 : 64);
        if (st != LNX_OK)
            return st;
    }
    uint64_t key = pair_key(left, right);
    size_t i = pair_slot(m->e, m->cap, key);
    if (m->e[i].key == UINT64_MAX) {
        m->e[i].key = key;
        m->n++;
    }
    m->e[i].rank = rank;
    m->e[i].merged = merged;
    return LNX_OK;
}

int lnx_tok_pairmap_get(const lnx_tok_pairmap *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged)
{
    if (!m->cap)
        return 0;
    const struct lnx_tok_pairent *e = &m->e[pair_slot(m->e, m->cap, pair_key(left, right))];
    if (e->key == UINT64_MAX)
        return 0;
    *rank = e->rank;
    *merged = e->merged;
    return 1;
}

void lnx_tok_pairmap_free(lnx_tok_pairmap *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

/* ---- UTF-8 ---- */

size_t lnx_utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Length of the sequence a lead byte starts, 0 when it cannot start one. */
static uint8_t lead_len(uint8_t c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* Whether `c` may follow `lead` as the second byte (the ranges that exclude overlong forms,
 * surrogates and code points above U+10FFFF). */
static int second_ok(uint8_t lead, uint8_t c)
{
    switch (lead) {
    case 0xE0: return c >= 0xA0 && c <= 0xBF;
    case 0xED: return c >= 0x80 && c <= 0x9F;
    case 0xF0: return c >= 0x90 && c <= 0xBF;
    case 0xF4: return c >= 0x80 && c <= 0x8F;
    default: return c >= 0x80 && c <= 0xBF;
    }
}

int lnx_utf8_acc_feed(lnx_utf8_acc *acc, uint8_t c)
{
    if (acc->have == 0) {
        acc->need = lead_len(c);
        if (!acc->need)
            return LNX_UTF8_BAD;
    } else if (acc->have == 1 ? !second_ok(acc->b[0], c) : (c & 0xC0) != 0x80) {
        return LNX_UTF8_BAD;
    }
    acc->b[acc->have++] = c;
    return acc->have == acc->need ? LNX_UTF8_CHAR : LNX_UTF8_MORE;
}

size_t lnx_utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        lnx_utf8_acc acc = {{0}, 0, 0};
        size_t j = i;
        int r;
        do {
            r = j < n ? lnx_utf8_acc_feed(&acc, s[j]) : LNX_UTF8_BAD;
            j++;
        } while (r == LNX_UTF8_MORE);
        if (r == LNX_UTF8_BAD)
            return i;
        i = j;
    }
    return n;
}

lnx_status lnx_tok_replace_all(const lnx_tok_replace *r, const char *s, size_t n, lnx_tok_buf *out)
{
    const char *end = s + n;
    while (s < end) {
        const char *hit = memmem(s, (size_t)(end - s), r->pattern, r->pattern_len);
        size_t keep = hit ? (size_t)(hit - s) : (size_t)(end - s);
        lnx_status st = lnx_tok_buf_put(out, s, keep);
        if (st == LNX_OK && hit)
            st = lnx_tok_buf_put(out, r->content, r->content_len);
        if (st != LNX_OK)
            return st;
        s += keep + (hit ? r->pattern_len : 0);
    }
    return LNX_OK;
}
