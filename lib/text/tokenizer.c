/* Encoding (added-token split, normalization, Metaspace pre-tokenization, BPE, template) and the
 * tokenizer's accessors. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* ---- accessors ---- */

void lnx_tokenizer_free(lnx_tokenizer *t)
{
    if (!t)
        return;
    lnx_bpe_free(&t->bpe);
    lnx_tok_bl_free(t->bl);
    lnx_tok_strmap_free(&t->added_map);
    free(t->piece);
    free(t->dec_text);
    free(t->dec_len);
    free(t->byte_val);
    free(t->special);
    free(t->added);
    free(t->raw_index.order);
    free(t->norm_index.order);
    free(t->norm);
    free(t->pretok);
    free(t->prefix);
    free(t->suffix);
    lnx_tok_arena_free(&t->arena);
    free(t);
}

int32_t lnx_tokenizer_vocab_size(const lnx_tokenizer *t)
{
    return t->n_ids;
}

int32_t lnx_tokenizer_bos_id(const lnx_tokenizer *t)
{
    return t->bos;
}

int32_t lnx_tokenizer_eos_id(const lnx_tokenizer *t)
{
    return t->eos;
}

int32_t lnx_tokenizer_unk_id(const lnx_tokenizer *t)
{
    return t->unk;
}

int32_t lnx_tokenizer_pad_id(const lnx_tokenizer *t)
{
    return t->pad;
}

int lnx_tokenizer_adds_bos(const lnx_tokenizer *t)
{
    return t->n_prefix > 0 && t->bos >= 0 && t->prefix[0] == t->bos;
}

int32_t lnx_tokenizer_token_id(const lnx_tokenizer *t, const char *piece)
{
    if (!piece)
        return -1;
    size_t n = strlen(piece);
    int32_t id = lnx_tok_strmap_get(&t->added_map, piece, n);
    return id >= 0 ? id : lnx_tok_strmap_get(&t->bpe.vocab, piece, n);
}

const char *lnx_tokenizer_piece(const lnx_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids ? t->piece[id] : NULL;
}

int lnx_tokenizer_is_special(const lnx_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && t->special[id];
}

/* ---- normalization ---- */

lnx_status lnx_tok_normalize(const lnx_tokenizer *t, const char *s, size_t n, lnx_tok_buf *a, lnx_tok_buf *b,
                             const lnx_tok_buf **res)
{
    lnx_tok_buf *bufs[2] = {a, b};
    a->n = 0;
    *res = a;
    if (!t->n_norm)
        return lnx_tok_buf_put(a, s, n);
    const char *cur = s;
    size_t cur_n = n;
    for (size_t i = 0; i < t->n_norm; i++) {
        const lnx_tok_norm *step = &t->norm[i];
        lnx_tok_buf *out = bufs[i & 1];
        lnx_status st;
        out->n = 0;
        if (step->kind == LNX_NORM_NFC) {
            st = lnx_tok_nfc(cur, cur_n, out);
        } else if (step->kind == LNX_NORM_PREPEND) {
            /* Prepend leaves an empty string empty. */
            st = cur_n ? lnx_tok_buf_put(out, step->r.content, step->r.content_len) : LNX_OK;
            if (st == LNX_OK)
                st = lnx_tok_buf_put(out, cur, cur_n);
        } else {
            st = lnx_tok_replace_all(&step->r, cur, cur_n, out);
        }
        if (st != LNX_OK)
            return st;
        cur = out->p;
        cur_n = out->n;
        *res = out;
    }
    return LNX_OK;
}

/* ---- added-token matching ---- */

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Letters, digits, '_' and (approximately) every non-ASCII character count as word characters. */
static int is_word_byte(unsigned char c)
{
    return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

typedef struct added_match {
    const lnx_added_token *tok;
    size_t start, end; /* the span removed from the text, lstrip/rstrip whitespace included */
} added_match;

/* Finds the leftmost, then longest, added token of `ix` in s[from..n). A single_word token that is
 * not a whole word is skipped together with the text it covers. lstrip never reaches below `floor`
 * (the end of the previous match). */
static int find_added(const lnx_tokenizer *t, const lnx_added_index *ix, const char *s, size_t n, size_t from,
                      size_t floor, added_match *m)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t p = from; p < n; p++) {
        for (uint32_t k = ix->start[u[p]]; k < ix->start[u[p] + 1]; k++) {
            const lnx_added_token *a = &t->added[ix->order[k]];
            if (a->match_len > n - p || memcmp(s + p, a->match, a->match_len) != 0)
                continue;
            size_t start = p, end = p + a->match_len;
            if (a->single_word && ((start > 0 && is_word_byte(u[start - 1])) || (end < n && is_word_byte(u[end])))) {
                p = end - 1;
                break;
            }
            while (a->lstrip && start > floor && is_space(u[start - 1]))
                start--;
            while (a->rstrip && end < n && is_space(u[end]))
                end++;
            *m = (added_match){a, start, end};
            return 1;
        }
    }
    return 0;
}

/* ---- the pipeline ---- */

typedef struct enc_ctx {
    const lnx_tokenizer *t;
    lnx_tok_ids ids;
    lnx_bpe_work work;
    lnx_tok_buf norm[2];
    lnx_tok_buf *pre; /* one buffer per pre-tokenizer step */
} enc_ctx;

/* Pre-tokenizer step `level` on s[0..n) (`first`: the piece starts at offset 0 of the input), then
 * the following steps, then BPE on each resulting word. */
static lnx_status pretokenize(enc_ctx *c, size_t level, const char *s, size_t n, int first)
{
    const lnx_tokenizer *t = c->t;
    if (n == 0)
        return LNX_OK;
    if (t->bl)
        return lnx_tok_bl_encode(t, &c->work, s, n, &c->ids);
    if (level == t->n_pretok)
        return lnx_bpe_encode_word(&t->bpe, &c->work, s, n, &c->ids);
    const lnx_tok_metaspace *ms = &t->pretok[level];
    lnx_tok_buf *buf = &c->pre[level];
    lnx_tok_replace space = {" ", ms->rep, 1, ms->rep_len};
    int prepend = ms->scheme == LNX_PREPEND_ALWAYS || (ms->scheme == LNX_PREPEND_FIRST && first);
    /* After the replacement the text starts with the replacement when it started with a space. */
    if (s[0] == ' ' || (n >= ms->rep_len && memcmp(s, ms->rep, ms->rep_len) == 0))
        prepend = 0;
    buf->n = 0;
    lnx_status st = prepend ? lnx_tok_buf_put(buf, ms->rep, ms->rep_len) : LNX_OK;
    if (st == LNX_OK)
        st = lnx_tok_replace_all(&space, s, n, buf);
    if (st != LNX_OK)
        return st;
    if (!ms->split)
        return pretokenize(c, level + 1, buf->p, buf->n, first);
    /* Split before every replacement character (it starts the next word). */
    size_t start = 0;
    for (size_t q = 1; q + ms->rep_len <= buf->n && st == LNX_OK; q++) {
        if (memcmp(buf->p + q, ms->rep, ms->rep_len) != 0)
            continue;
        st = pretokenize(c, level + 1, buf->p + start, q - start, first && start == 0);
        start = q;
        q += ms->rep_len - 1;
    }
    if (st == LNX_OK)
        st = pretokenize(c, level + 1, buf->p + start, buf->n - start, first && start == 0);
    return st;
}

/* A piece of raw text between added tokens: normalize, split out normalized added tokens,
 * pre-tokenize and run BPE. */
static lnx_status encode_text(enc_ctx *c, const char *s, size_t n, int at_origin)
{
    const lnx_tokenizer *t = c->t;
    if (n == 0)
        return LNX_OK;
    const lnx_tok_buf *norm;
    lnx_status st = lnx_tok_normalize(t, s, n, &c->norm[0], &c->norm[1], &norm);
    if (st != LNX_OK)
        return st;
    const char *ns = norm->p;
    size_t nn = norm->n, pos = 0;
    added_match m;
    while (st == LNX_OK && find_added(t, &t->norm_index, ns, nn, pos, pos, &m)) {
        st = pretokenize(c, 0, ns + pos, m.start - pos, at_origin && pos == 0);
        if (st == LNX_OK)
            st = lnx_tok_ids_push(&c->ids, m.tok->id);
        pos = m.end;
    }
    if (st == LNX_OK)
        st = pretokenize(c, 0, ns + pos, nn - pos, at_origin && pos == 0);
    return st;
}

static lnx_status push_ids(lnx_tok_ids *v, const int32_t *ids, size_t n)
{
    lnx_status st = LNX_OK;
    for (size_t i = 0; i < n && st == LNX_OK; i++)
        st = lnx_tok_ids_push(v, ids[i]);
    return st;
}

static lnx_status encode(enc_ctx *c, const char *text, size_t len, int add_special)
{
    const lnx_tokenizer *t = c->t;
    lnx_status st = add_special ? push_ids(&c->ids, t->prefix, t->n_prefix) : LNX_OK;
    size_t pos = 0;
    added_match m;
    while (st == LNX_OK && find_added(t, &t->raw_index, text, len, pos, pos, &m)) {
        st = encode_text(c, text + pos, m.start - pos, pos == 0);
        if (st == LNX_OK)
            st = lnx_tok_ids_push(&c->ids, m.tok->id);
        pos = m.end;
    }
    if (st == LNX_OK)
        st = encode_text(c, text + pos, len - pos, pos == 0);
    if (st == LNX_OK && add_special)
        st = push_ids(&c->ids, t->suffix, t->n_suffix);
    /* The result is never NULL, even when empty. */
    if (st == LNX_OK)
        st = lnx_tok_ids_reserve(&c->ids, 1);
    return st;
}

lnx_status lnx_tokenizer_encode(const lnx_tokenizer *t, const char *text, size_t len, int add_special,
                                int32_t **out_ids, size_t *out_n)
{
    if (!out_ids || !out_n)
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_encode: out_ids/out_n is NULL");
    *out_ids = NULL;
    *out_n = 0;
    if (!t || (!text && len))
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_encode: tokenizer or text is NULL");
    if (!text)
        text = "";
    size_t bad = lnx_utf8_check((const unsigned char *)text, len);
    if (bad < len)
        return lnx_error(LNX_E_INVALID, "tokenizer: input text is not valid UTF-8 at byte offset %zu (byte 0x%02X)",
                         bad, (unsigned char)text[bad]);
    enc_ctx c = {.t = t};
    lnx_status st = LNX_OK;
    if (t->n_pretok) {
        c.pre = calloc(t->n_pretok, sizeof *c.pre);
        if (!c.pre)
            st = lnx_error(LNX_E_NOMEM, "tokenizer: out of memory");
    }
    if (st == LNX_OK)
        st = encode(&c, text, len, add_special);
    lnx_bpe_work_free(&c.work);
    free(c.norm[0].p);
    free(c.norm[1].p);
    for (size_t i = 0; c.pre && i < t->n_pretok; i++)
        free(c.pre[i].p);
    free(c.pre);
    if (st != LNX_OK) {
        free(c.ids.p);
        return st;
    }
    *out_ids = c.ids.p;
    *out_n = c.ids.n;
    return LNX_OK;
}
