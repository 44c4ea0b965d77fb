/* The BPE model: vocabulary and merge ranks from tokenizer.json, and the merge loop of one word
 * (a priority queue over a linked list of symbols, so a long word costs O(n log n)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/json.h"
#include "tok_internal.h"

struct lnx_bpe_merge {
    int32_t rank, pos, merged;
};

/* ---- loading ---- */

static lnx_status load_vocab(lnx_bpe *m, lnx_tok_arena *arena, const json_t *vocab, const char *origin)
{
    if (!json_is_object(vocab))
        return lnx_error(LNX_E_FORMAT, "%s: model.vocab must be an object of piece -> id", origin);
    int32_t max_id = -1;
    for (void *it = json_object_iter((json_t *)vocab); it; it = json_object_iter_next((json_t *)vocab, it)) {
        const json_t *v = json_object_iter_value(it);
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
        if (id < 0 || id >= LNX_TOK_MAX_ID)
            return lnx_error(LNX_E_FORMAT, "%s: model.vocab[\"%s\"] must be an id in [0, %d)", origin,
                             json_object_iter_key(it), LNX_TOK_MAX_ID);
        if (id > max_id)
            max_id = (int32_t)id;
    }
    m->n_piece = max_id + 1;
    m->piece = calloc((size_t)m->n_piece + 1, sizeof *m->piece);
    m->piece_len = calloc((size_t)m->n_piece + 1, sizeof *m->piece_len);
    if (!m->piece || !m->piece_len)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory for %d vocabulary pieces", origin, m->n_piece);
    for (void *it = json_object_iter((json_t *)vocab); it; it = json_object_iter_next((json_t *)vocab, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        int32_t id = (int32_t)json_integer_value(json_object_iter_value(it));
        char *piece = lnx_tok_arena_dup(arena, key, len);
        if (!piece)
            return lnx_error(LNX_E_NOMEM, "%s: out of memory for vocabulary pieces", origin);
        lnx_status st = lnx_tok_strmap_put(&m->vocab, piece, len, id);
        if (st != LNX_OK)
            return st;
        /* Two pieces with one id: the first keeps the id -> piece direction. */
        if (!m->piece[id]) {
            m->piece[id] = piece;
            m->piece_len[id] = (uint32_t)len;
        }
    }
    return LNX_OK;
}

/* Splits merge `i` (either "left right" or ["left", "right"]) into its two pieces. */
static lnx_status merge_parts(const json_t *merge, size_t i, const char *origin, const char **l, size_t *ll,
                              const char **r, size_t *rl)
{
    if (json_is_string(merge)) {
        const char *s = json_string_value(merge);
        size_t n = json_string_length(merge);
        const char *sp = memchr(s, ' ', n);
        if (!sp)
            return lnx_error(LNX_E_FORMAT, "%s: model.merges[%zu] \"%s\" is not \"left right\"", origin, i, s);
        *l = s;
        *ll = (size_t)(sp - s);
        *r = sp + 1;
        *rl = n - *ll - 1;
        return LNX_OK;
    }
    if (json_is_array(merge) && json_array_size(merge) == 2 && json_is_string(json_array_get(merge, 0)) &&
        json_is_string(json_array_get(merge, 1))) {
        *l = json_string_value(json_array_get(merge, 0));
        *ll = json_string_length(json_array_get(merge, 0));
        *r = json_string_value(json_array_get(merge, 1));
        *rl = json_string_length(json_array_get(merge, 1));
        return LNX_OK;
    }
    return lnx_error(LNX_E_FORMAT, "%s: model.merges[%zu] must be \"left right\" or [\"left\", \"right\"]", origin,
                     i);
}

static lnx_status load_merges(lnx_bpe *m, const json_t *merges, const char *origin)
{
    if (!merges)
        return LNX_OK;
    if (!json_is_array(merges))
        return lnx_error(LNX_E_FORMAT, "%s: model.merges must be an array", origin);
    if (json_array_size(merges) >= INT32_MAX)
        return lnx_error(LNX_E_LIMIT, "%s: too many merges", origin);
    lnx_tok_buf cat = {0};
    lnx_status st = LNX_OK;
    for (size_t i = 0; i < json_array_size(merges) && st == LNX_OK; i++) {
        const char *l = "", *r = "";
        size_t ll = 0, rl = 0;
        st = merge_parts(json_array_get(merges, i), i, origin, &l, &ll, &r, &rl);
        if (st != LNX_OK)
            break;
        cat.n = 0;
        st = lnx_tok_buf_put(&cat, l, ll);
        if (st == LNX_OK)
            st = lnx_tok_buf_put(&cat, r, rl);
        if (st != LNX_OK)
            break;
        int32_t a = lnx_tok_strmap_get(&m->vocab, l, ll);
        int32_t b = lnx_tok_strmap_get(&m->vocab, r, rl);
        int32_t ab = lnx_tok_strmap_get(&m->vocab, cat.p, cat.n);
        if (a < 0 || b < 0 || ab < 0) {
            const char *what = a < 0 ? "left" : b < 0 ? "right" : "merged";
            st = lnx_error(LNX_E_FORMAT, "%s: model.merges[%zu] (\"%.*s\" + \"%.*s\"): the %s piece is not in the vocabulary",
                           origin, i, (int)ll, l, (int)rl, r, what);
            break;
        }
        /* A repeated pair takes its later rank, as `tokenizers` does. */
        st = lnx_tok_pairmap_put(&m->merges, a, b, (int32_t)i, ab);
    }
    free(cat.p);
    return st;
}

static lnx_status check_unsupported_options(const json_t *model, const char *origin)
{
    double dropout;
    lnx_status st = lnx_json_get_double(model, "dropout", 0.0, &dropout, origin);
    if (st != LNX_OK)
        return st;
    if (dropout > 0.0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: BPE dropout %g is not supported", origin, dropout);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const char *s;
        st = lnx_json_get_string(model, affixes[i], "", &s, origin);
        if (st != LNX_OK)
            return st;
        if (*s)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: BPE %s \"%s\" is not supported", origin, affixes[i], s);
    }
    return LNX_OK;
}

lnx_status lnx_bpe_load(lnx_bpe *m, lnx_tok_arena *arena, const json_t *model, const char *origin)
{
    m->unk_id = -1;
    lnx_status st = check_unsupported_options(model, origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(model, "byte_fallback", 0, &m->byte_fallback, origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(model, "fuse_unk", 0, &m->fuse_unk, origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(model, "ignore_merges", 0, &m->ignore_merges, origin);
    if (st == LNX_OK)
        st = load_vocab(m, arena, json_object_get(model, "vocab"), origin);
    if (st == LNX_OK)
        st = load_merges(m, json_object_get(model, "merges"), origin);
    const char *unk = NULL;
    if (st == LNX_OK)
        st = lnx_json_get_string(model, "unk_token", NULL, &unk, origin);
    if (st != LNX_OK)
        return st;
    if (unk) {
        m->unk_id = lnx_tok_strmap_get(&m->vocab, unk, strlen(unk));
        if (m->unk_id < 0)
            return lnx_error(LNX_E_FORMAT, "%s: model.unk_token \"%s\" is not in the vocabulary", origin, unk);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_id[b] = lnx_tok_strmap_get(&m->vocab, name, 6);
    }
    return LNX_OK;
}

void lnx_bpe_free(lnx_bpe *m)
{
    lnx_tok_strmap_free(&m->vocab);
    lnx_tok_pairmap_free(&m->merges);
    free(m->piece);
    free(m->piece_len);
    m->piece = NULL;
    m->piece_len = NULL;
}

/* ---- encoding ---- */

void lnx_bpe_work_free(lnx_bpe_work *w)
{
    free(w->id);
    free(w->prev);
    free(w->next);
    free(w->dead);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

static lnx_status work_reserve(lnx_bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return LNX_OK;
    if (n > (size_t)INT32_MAX / 3)
        return lnx_error(LNX_E_LIMIT, "tokenizer: a %zu-byte word is too long", n);
    lnx_bpe_work g = {0};
    g.id = malloc(n * sizeof *g.id);
    g.prev = malloc(n * sizeof *g.prev);
    g.next = malloc(n * sizeof *g.next);
    g.dead = malloc(n);
    /* Each merge pushes at most two pairs, after at most n - 1 initial ones. */
    g.heap = malloc(3 * n * sizeof *g.heap);
    if (!g.id || !g.prev || !g.next || !g.dead || !g.heap) {
        lnx_bpe_work_free(&g);
        return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory for a %zu-byte word", n);
    }
    lnx_bpe_work_free(w);
    g.cap = n;
    *w = g;
    return LNX_OK;
}

static int merge_before(const struct lnx_bpe_merge *a, const struct lnx_bpe_merge *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct lnx_bpe_merge *h, size_t *n, struct lnx_bpe_merge m)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&m, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = m;
}

static struct lnx_bpe_merge heap_pop(struct lnx_bpe_merge *h, size_t *n)
{
    struct lnx_bpe_merge top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && merge_before(&h[c + 1], &h[c]))
            c++;
        if (!merge_before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static void push_pair(const lnx_bpe *m, lnx_bpe_work *w, size_t *hn, int32_t pos)
{
    int32_t rank, merged;
    if (lnx_tok_pairmap_get(&m->merges, w->id[pos], w->id[w->next[pos]], &rank, &merged))
        heap_push(w->heap, hn, (struct lnx_bpe_merge){rank, pos, merged});
}

/* Splits the word into initial symbols: vocabulary characters, byte pieces for the others when
 * byte_fallback, else (fused) unknown tokens. Returns the symbol count. */
static int32_t initial_symbols(const lnx_bpe *m, lnx_bpe_work *w, const unsigned char *s, size_t n)
{
    int32_t ns = 0;
    int unk_open = 0; /* the last symbol is an unknown token that may absorb more (fuse_unk) */
    for (size_t i = 0; i < n;) {
        size_t cl = lnx_utf8_len(s[i]);
        int32_t id = lnx_tok_strmap_get(&m->vocab, (const char *)s + i, cl);
        int bytes_ok = m->byte_fallback;
        for (size_t k = 0; id < 0 && bytes_ok && k < cl; k++)
            bytes_ok = m->byte_id[s[i + k]] >= 0;
        if (id >= 0) {
            w->id[ns++] = id;
            unk_open = 0;
        } else if (bytes_ok) {
            for (size_t k = 0; k < cl; k++)
                w->id[ns++] = m->byte_id[s[i + k]];
            unk_open = 0;
        } else if (m->unk_id >= 0 && !(unk_open && m->fuse_unk)) {
            w->id[ns++] = m->unk_id;
            unk_open = 1;
        }
        i += cl;
    }
    return ns;
}

lnx_status lnx_bpe_encode_word(const lnx_bpe *m, lnx_bpe_work *w, const char *s, size_t n, lnx_tok_ids *out)
{
    if (n == 0)
        return LNX_OK;
    if (m->ignore_merges) {
        int32_t id = lnx_tok_strmap_get(&m->vocab, s, n);
        if (id >= 0)
            return lnx_tok_ids_push(out, id);
    }
    lnx_status st = work_reserve(w, n);
    if (st != LNX_OK)
        return st;
    int32_t ns = initial_symbols(m, w, (const unsigned char *)s, n);
    for (int32_t i = 0; i < ns; i++) {
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < ns ? i + 1 : -1;
        w->dead[i] = 0;
    }
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < ns; i++)
        push_pair(m, w, &hn, i);
    while (hn > 0) {
        struct lnx_bpe_merge top = heap_pop(w->heap, &hn);
        int32_t pos = top.pos, right = w->next[pos];
        int32_t rank, merged;
        /* Entries go stale when a neighbour merged first: check the pair still gives this merge. */
        if (w->dead[pos] || right < 0 || !lnx_tok_pairmap_get(&m->merges, w->id[pos], w->id[right], &rank, &merged) ||
            merged != top.merged)
            continue;
        w->id[pos] = merged;
        w->dead[right] = 1;
        w->next[pos] = w->next[right];
        if (w->next[pos] >= 0)
            w->prev[w->next[pos]] = pos;
        if (w->prev[pos] >= 0)
            push_pair(m, w, &hn, w->prev[pos]);
        if (w->next[pos] >= 0)
            push_pair(m, w, &hn, pos);
    }
    st = lnx_tok_ids_reserve(out, (size_t)ns);
    if (st != LNX_OK)
        return st;
    /* Merges always absorb the right symbol, so symbol 0 stays the head of the list. */
    for (int32_t i = ns ? 0 : -1; i >= 0; i = w->next[i])
        out->p[out->n++] = w->id[i];
    return LNX_OK;
}
