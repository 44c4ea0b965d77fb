/* Decoding ids to text, whole (lnx_tokenizer_decode) and streaming (lnx_detok_*). The decoder's
 * Replace steps are already folded into the per-id text; what is left is byte fallback, the
 * leading Strip of the fused text and, without a decoder, joining with spaces. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static const char REPLACEMENT_CHAR[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Output that counts what it would write and writes what fits. */
typedef struct sink {
    char *buf;
    size_t cap, len;
    int32_t strip_left; /* leading strip characters still to remove */
    int any;            /* a token was output (space joining) */
} sink;

static void sink_put(sink *k, const lnx_tokenizer *t, const char *s, size_t n)
{
    while (k->strip_left > 0 && n >= t->strip_len && n > 0 && memcmp(s, t->strip_char, t->strip_len) == 0) {
        s += t->strip_len;
        n -= t->strip_len;
        k->strip_left--;
    }
    if (n == 0)
        return;
    k->strip_left = 0;
    if (k->len < k->cap && n <= k->cap - k->len)
        memcpy(k->buf + k->len, s, n);
    k->len += n;
}

static void sink_replacements(sink *k, const lnx_tokenizer *t, size_t count)
{
    for (size_t i = 0; i < count; i++)
        sink_put(k, t, REPLACEMENT_CHAR, 3);
}

/* A token that is not a byte piece. */
static void sink_token(sink *k, const lnx_tokenizer *t, int32_t id)
{
    if (t->dec_join_space && k->any)
        sink_put(k, t, " ", 1);
    k->any = 1;
    sink_put(k, t, t->dec_text[id], t->dec_len[id]);
}

static int valid_id(const lnx_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && t->piece[id];
}

static int is_byte_piece(const lnx_tokenizer *t, int32_t id)
{
    return t->byte_val[id] >= 0;
}

/* ---- whole decode ---- */

/* Outputs the run of byte pieces starting at ids[i] (skipped special tokens do not end a run) the
 * way ByteFallback does: its bytes when they form valid UTF-8, else one U+FFFD per byte. Returns
 * the index after the run. */
static size_t decode_byte_run(sink *k, const lnx_tokenizer *t, const int32_t *ids, size_t n, size_t i, int skip)
{
    lnx_utf8_acc acc = {{0}, 0, 0};
    size_t end = i, count = 0;
    int valid = 1;
    for (; end < n; end++) {
        if (skip && t->special[ids[end]])
            continue;
        if (!is_byte_piece(t, ids[end]))
            break;
        count++;
        int r = valid ? lnx_utf8_acc_feed(&acc, (uint8_t)t->byte_val[ids[end]]) : LNX_UTF8_BAD;
        if (r == LNX_UTF8_BAD)
            valid = 0;
        else if (r == LNX_UTF8_CHAR)
            acc.have = 0;
    }
    if (!valid || acc.have) {
        sink_replacements(k, t, count);
        return end;
    }
    for (size_t j = i; j < end; j++) {
        if (skip && t->special[ids[j]])
            continue;
        if (lnx_utf8_acc_feed(&acc, (uint8_t)t->byte_val[ids[j]]) == LNX_UTF8_CHAR) {
            sink_put(k, t, (const char *)acc.b, acc.have);
            acc.have = 0;
        }
    }
    return end;
}

/* ---- byte-level (ByteLevel decoder) ---- */

/* One byte of the byte stream, converted the way String::from_utf8_lossy does: an invalid
 * sequence (a maximal valid prefix, or a byte that cannot start one) becomes one U+FFFD. */
static void lossy_byte(sink *k, const lnx_tokenizer *t, uint8_t pend[4], uint8_t *n_pend, uint8_t *need, uint8_t c)
{
    lnx_utf8_acc acc;
    memcpy(acc.b, pend, sizeof acc.b);
    acc.have = *n_pend;
    acc.need = *need;
    int r = lnx_utf8_acc_feed(&acc, c);
    if (r == LNX_UTF8_BAD && acc.have) {
        sink_replacements(k, t, 1);
        acc.have = 0;
        r = lnx_utf8_acc_feed(&acc, c);
    }
    if (r == LNX_UTF8_BAD) {
        sink_replacements(k, t, 1);
        acc.have = 0;
    } else if (r == LNX_UTF8_CHAR) {
        sink_put(k, t, (const char *)acc.b, acc.have);
        acc.have = 0;
    }
    memcpy(pend, acc.b, sizeof acc.b);
    *n_pend = acc.have;
    *need = acc.need;
}

static void lossy_token(sink *k, const lnx_tokenizer *t, int32_t id, uint8_t pend[4], uint8_t *n_pend, uint8_t *need)
{
    const uint8_t *s = (const uint8_t *)t->dec_text[id];
    for (uint32_t i = 0; i < t->dec_len[id]; i++)
        lossy_byte(k, t, pend, n_pend, need, s[i]);
}

static void decode_bytes(sink *k, const lnx_tokenizer *t, const int32_t *ids, size_t n, int skip)
{
    uint8_t pend[4] = {0}, n_pend = 0, need = 0;
    for (size_t i = 0; i < n; i++)
        if (!(skip && t->special[ids[i]]))
            lossy_token(k, t, ids[i], pend, &n_pend, &need);
    if (n_pend)
        sink_replacements(k, t, 1);
}

static void decode_into(sink *k, const lnx_tokenizer *t, const int32_t *ids, size_t n, int skip)
{
    if (t->dec_byte_level) {
        decode_bytes(k, t, ids, n, skip);
        return;
    }
    for (size_t i = 0; i < n;) {
        if (skip && t->special[ids[i]]) {
            i++;
        } else if (is_byte_piece(t, ids[i])) {
            i = decode_byte_run(k, t, ids, n, i, skip);
        } else {
            sink_token(k, t, ids[i]);
            i++;
        }
    }
}

lnx_status lnx_tokenizer_decode(const lnx_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                                size_t *out_len)
{
    if (!out || !out_len)
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_decode: out/out_len is NULL");
    *out = NULL;
    *out_len = 0;
    if (!t || (!ids && n))
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_decode: tokenizer or ids is NULL");
    for (size_t i = 0; i < n; i++)
        if (!valid_id(t, ids[i]))
            return lnx_error(LNX_E_INVALID, "tokenizer: decode: ids[%zu] = %d is not a token id (vocabulary size %d)", i,
                             (int)ids[i], (int)t->n_ids);
    sink k = {NULL, 0, 0, t->strip_start, 0};
    decode_into(&k, t, ids, n, skip_special);
    char *s = malloc(k.len + 1);
    if (!s)
        return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory for %zu bytes of decoded text", k.len + 1);
    k = (sink){s, k.len, 0, t->strip_start, 0};
    decode_into(&k, t, ids, n, skip_special);
    s[k.len] = '\0';
    *out = s;
    *out_len = k.len;
    return LNX_OK;
}

/* ---- streaming ---- */

void lnx_detok_init(lnx_detok *d, const lnx_tokenizer *t)
{
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->strip_left = t ? t->strip_start : 0;
}

/* Ends the current byte run: an incomplete character becomes U+FFFD per byte. */
static void end_run(lnx_detok *d, sink *k)
{
    sink_replacements(k, d->tok, d->n_pend);
    d->n_pend = 0;
    d->need = 0;
    d->tainted = 0;
}

/* A byte piece: whole characters go out as soon as they are complete; after an invalid byte the
 * rest of the run is U+FFFD per byte, as decode gives it. */
static void stream_byte(lnx_detok *d, sink *k, uint8_t byte)
{
    if (d->tainted) {
        sink_replacements(k, d->tok, 1);
        return;
    }
    lnx_utf8_acc acc;
    memcpy(acc.b, d->pend, sizeof acc.b);
    acc.have = d->n_pend;
    acc.need = d->need;
    int r = lnx_utf8_acc_feed(&acc, byte);
    if (r == LNX_UTF8_BAD) {
        sink_replacements(k, d->tok, (size_t)acc.have + 1);
        acc.have = 0;
        d->tainted = 1;
    } else if (r == LNX_UTF8_CHAR) {
        sink_put(k, d->tok, (const char *)acc.b, acc.have);
        acc.have = 0;
    }
    memcpy(d->pend, acc.b, sizeof d->pend);
    d->n_pend = acc.have;
    d->need = acc.need;
}

static sink stream_sink(const lnx_detok *d, char *buf, size_t cap)
{
    return (sink){buf, cap, 0, d->strip_left, d->any};
}

/* Commits the sink: NUL-terminates, or restores the stream when the buffer was too small. */
static lnx_status stream_finish(lnx_detok *d, const lnx_detok *saved, sink *k, size_t *len)
{
    *len = k->len;
    if (k->len >= k->cap) {
        *d = *saved;
        return lnx_error(LNX_E_LIMIT, "tokenizer: detokenizer needs a %zu-byte buffer, got %zu", k->len + 1, k->cap);
    }
    k->buf[k->len] = '\0';
    d->strip_left = k->strip_left;
    d->any = (uint8_t)k->any;
    return LNX_OK;
}

lnx_status lnx_detok_push(lnx_detok *d, int32_t id, char *buf, size_t cap, size_t *len)
{
    if (!d || !d->tok || !len || (!buf && cap))
        return lnx_error(LNX_E_INVALID, "lnx_detok_push: NULL argument");
    *len = 0;
    const lnx_tokenizer *t = d->tok;
    if (!valid_id(t, id))
        return lnx_error(LNX_E_INVALID, "tokenizer: detok: %d is not a token id (vocabulary size %d)", (int)id,
                         (int)t->n_ids);
    lnx_detok saved = *d;
    sink k = stream_sink(d, buf, cap);
    if (t->special[id]) {
        /* skipped: it does not end a byte run either, as in decode */
    } else if (t->dec_byte_level) {
        lossy_token(&k, t, id, d->pend, &d->n_pend, &d->need);
    } else if (is_byte_piece(t, id)) {
        stream_byte(d, &k, (uint8_t)t->byte_val[id]);
    } else {
        end_run(d, &k);
        sink_token(&k, t, id);
    }
    return stream_finish(d, &saved, &k, len);
}

lnx_status lnx_detok_flush(lnx_detok *d, char *buf, size_t cap, size_t *len)
{
    if (!d || !d->tok || !len || (!buf && cap))
        return lnx_error(LNX_E_INVALID, "lnx_detok_flush: NULL argument");
    *len = 0;
    lnx_detok saved = *d;
    sink k = stream_sink(d, buf, cap);
    if (d->tok->dec_byte_level && d->n_pend)
        d->n_pend = 1; /* an incomplete character is one U+FFFD, as in decode */
    end_run(d, &k);
    lnx_status st = stream_finish(d, &saved, &k, len);
    if (st == LNX_OK)
        lnx_detok_init(d, d->tok);
    return st;
}
