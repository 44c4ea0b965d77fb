/* Byte-level BPE tokenizers (GPT-2 style, as Qwen2 and Llama-3 serialise them): the NFC
 * normaliser, regex Split pre-tokenizers (PCRE2 with Unicode properties; Hugging Face uses
 * Oniguruma, whose \p{L}, \p{N} and \s agree with PCRE2's UCP classes on the characters tested),
 * the ByteLevel byte <-> character mapping for the BPE, and the ByteLevel decoder's byte form of
 * each piece. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../io/json.h"
#include "tok_internal.h"

#define MAX_SPLITS 4
#define N_MAPPED 324 /* the mapping's characters are U+0021 .. U+0143 */

struct lnx_tok_bytelevel {
    pcre2_code *re[MAX_SPLITS];
    int n_re;
    int byte_level;         /* a ByteLevel pre-tokenizer maps bytes to characters */
    char enc[256][2];       /* UTF-8 of each byte's character (1 or 2 bytes) */
    uint8_t enc_len[256];
    int16_t char_byte[N_MAPPED]; /* code point -> byte, -1 where unmapped */
};

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * for U+0100 onwards in byte order. */
static void build_map(struct lnx_tok_bytelevel *b)
{
    int extra = 0;
    for (int i = 0; i < N_MAPPED; i++)
        b->char_byte[i] = -1;
    for (int c = 0; c < 256; c++) {
        int keep = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
        int cp = keep ? c : 256 + extra++;
        b->char_byte[cp] = (int16_t)c;
        if (cp < 0x80) {
            b->enc[c][0] = (char)cp;
            b->enc_len[c] = 1;
        } else {
            b->enc[c][0] = (char)(0xC0 | (cp >> 6));
            b->enc[c][1] = (char)(0x80 | (cp & 0x3F));
            b->enc_len[c] = 2;
        }
    }
}

static lnx_status get_bl(lnx_tokenizer *t, const char *origin)
{
    if (t->bl)
        return LNX_OK;
    t->bl = calloc(1, sizeof *t->bl);
    if (!t->bl)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", origin);
    build_map(t->bl);
    return LNX_OK;
}

static lnx_status add_regex(lnx_tokenizer *t, const char *pattern, size_t len, const char *origin)
{
    struct lnx_tok_bytelevel *b = t->bl;
    if (b->n_re == MAX_SPLITS)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: more than %d regex pre-tokenizers", origin, MAX_SPLITS);
    int err;
    PCRE2_SIZE off;
    /* \C could end a match inside a character: refused, so every piece stays valid UTF-8 */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C, &err,
                                   &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lnx_error(LNX_E_UNSUPPORTED, "%s: pre_tokenizer regex does not compile at offset %zu: %s", origin,
                         (size_t)off, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: plain matching when the JIT is absent */
    b->re[b->n_re++] = re;
    return LNX_OK;
}

/* GPT-2's own pattern, which ByteLevel applies when use_regex is true. */
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

lnx_status lnx_tok_bl_parse_pretokenizer(lnx_tokenizer *t, const json_t *p, const char *type, const char *origin)
{
    lnx_status st = get_bl(t, origin);
    if (st != LNX_OK)
        return st;
    if (strcmp(type, "Split") == 0) {
        const json_t *pat = json_object_get(p, "pattern");
        const json_t *rx = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        const char *behavior;
        int invert;
        st = lnx_json_get_string(p, "behavior", "Isolated", &behavior, origin);
        if (st == LNX_OK)
            st = lnx_json_get_bool(p, "invert", 0, &invert, origin);
        if (st != LNX_OK)
            return st;
        if (strcmp(behavior, "Isolated") != 0 || invert)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: pre_tokenizer Split is supported with behavior Isolated and "
                             "invert false (here %s%s)", origin, behavior, invert ? ", invert" : "");
        if (json_is_string(str))
            return lnx_error(LNX_E_UNSUPPORTED, "%s: pre_tokenizer Split with a String pattern is not supported", origin);
        if (!json_is_string(rx) || json_string_length(rx) == 0)
            return lnx_error(LNX_E_FORMAT, "%s: pre_tokenizer Split needs a pattern {\"Regex\": ...}", origin);
        if (t->bl->byte_level)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: pre_tokenizer Split after ByteLevel is not supported", origin);
        return add_regex(t, json_string_value(rx), json_string_length(rx), origin);
    }
    /* ByteLevel */
    int add_prefix_space, use_regex;
    st = lnx_json_get_bool(p, "add_prefix_space", 1, &add_prefix_space, origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(p, "use_regex", 1, &use_regex, origin);
    if (st != LNX_OK)
        return st;
    if (add_prefix_space)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: pre_tokenizer ByteLevel with add_prefix_space is not supported", origin);
    if (t->bl->byte_level)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: two ByteLevel pre-tokenizers", origin);
    if (use_regex && (st = add_regex(t, GPT2_PATTERN, sizeof GPT2_PATTERN - 1, origin)) != LNX_OK)
        return st;
    t->bl->byte_level = 1;
    return LNX_OK;
}

int lnx_tok_bl_is_pretokenizer(const char *type)
{
    return strcmp(type, "Split") == 0 || strcmp(type, "ByteLevel") == 0;
}

void lnx_tok_bl_free(struct lnx_tok_bytelevel *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n_re; i++)
        pcre2_code_free(b->re[i]);
    free(b);
}

/* ---- NFC ---- */

lnx_status lnx_tok_nfc(const char *s, size_t n, lnx_tok_buf *out)
{
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < 0x80)
        i++;
    if (i == n) /* ASCII is already in NFC */
        return lnx_tok_buf_put(out, s, n);
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0) {
        free(dst);
        if (m == UTF8PROC_ERROR_NOMEM)
            return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory for NFC normalisation");
        return lnx_error(LNX_E_INVALID, "tokenizer: NFC normalisation failed: %s", utf8proc_errmsg(m));
    }
    lnx_status st = lnx_tok_buf_put(out, dst, (size_t)m);
    free(dst);
    return st;
}

/* ---- encoding ---- */

typedef struct bl_ctx {
    const lnx_tokenizer *t;
    const lnx_bpe *bpe;
    lnx_bpe_work *work;
    lnx_tok_ids *out;
    lnx_tok_buf mapped;
    pcre2_match_data *md;
} bl_ctx;

static lnx_status word(bl_ctx *c, const char *s, size_t n)
{
    const struct lnx_tok_bytelevel *b = c->t->bl;
    if (!b->byte_level)
        return lnx_bpe_encode_word(c->bpe, c->work, s, n, c->out);
    c->mapped.n = 0;
    for (size_t i = 0; i < n; i++) {
        lnx_status st = lnx_tok_buf_put(&c->mapped, b->enc[(unsigned char)s[i]], b->enc_len[(unsigned char)s[i]]);
        if (st != LNX_OK)
            return st;
    }
    return lnx_bpe_encode_word(c->bpe, c->work, c->mapped.p, c->mapped.n, c->out);
}

/* Splits s[0..n) by regex `level` into matches and the gaps between them (Isolated), then the
 * next level, then byte mapping and BPE. */
static lnx_status split(bl_ctx *c, int level, const char *s, size_t n)
{
    const struct lnx_tok_bytelevel *b = c->t->bl;
    if (n == 0)
        return LNX_OK;
    if (level == b->n_re)
        return word(c, s, n);
    size_t pos = 0, gap = 0;
    lnx_status st = LNX_OK;
    while (pos < n && st == LNX_OK) {
        int r = pcre2_match(b->re[level], (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, c->md, NULL);
        if (r == PCRE2_ERROR_NOMATCH)
            break;
        if (r < 0)
            return r == PCRE2_ERROR_NOMEMORY ? lnx_error(LNX_E_NOMEM, "tokenizer: out of memory in the regex")
                                             : lnx_error(LNX_E_LIMIT, "tokenizer: pre-tokenizer regex failed (%d)", r);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* an empty match splits nothing: step over one character */
            if (ms >= n)
                break;
            size_t step = lnx_utf8_len((unsigned char)s[ms]);
            pos = ms + (step ? step : 1);
            continue;
        }
        st = split(c, level + 1, s + gap, ms - gap);
        if (st == LNX_OK)
            st = split(c, level + 1, s + ms, me - ms);
        pos = gap = me;
    }
    if (st == LNX_OK)
        st = split(c, level + 1, s + gap, n - gap);
    return st;
}

lnx_status lnx_tok_bl_encode(const lnx_tokenizer *t, lnx_bpe_work *work, const char *s, size_t n, lnx_tok_ids *out)
{
    if (n == 0)
        return LNX_OK;
    bl_ctx c = {t, &t->bpe, work, out, {0}, NULL};
    if (t->bl->n_re) {
        c.md = pcre2_match_data_create(4, NULL);
        if (!c.md)
            return lnx_error(LNX_E_NOMEM, "tokenizer: out of memory");
    }
    lnx_status st = split(&c, 0, s, n);
    pcre2_match_data_free(c.md);
    free(c.mapped.p);
    return st;
}

/* ---- decoder ---- */

lnx_status lnx_tok_bl_decoder_tables(lnx_tokenizer *t, const char *origin)
{
    lnx_status st = get_bl(t, origin);
    if (st != LNX_OK)
        return st;
    const struct lnx_tok_bytelevel *b = t->bl;
    lnx_tok_buf buf = {0};
    for (int32_t id = 0; id < t->n_ids && st == LNX_OK; id++) {
        const char *s = t->dec_text[id];
        size_t n = t->dec_len[id], i = 0;
        if (!s)
            continue;
        buf.n = 0;
        /* a piece whose characters all map becomes their bytes; any other stays as it is */
        while (i < n && st == LNX_OK) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k <= 0 || cp < 0 || cp >= N_MAPPED || b->char_byte[cp] < 0)
                break;
            uint8_t byte = (uint8_t)b->char_byte[cp];
            st = lnx_tok_buf_put(&buf, &byte, 1);
            i += (size_t)k;
        }
        if (st != LNX_OK || i < n)
            continue;
        const char *d = lnx_tok_arena_dup(&t->arena, buf.p ? buf.p : "", buf.n);
        if (!d)
            st = lnx_error(LNX_E_NOMEM, "%s: out of memory", origin);
        t->dec_text[id] = d;
        t->dec_len[id] = (uint32_t)buf.n;
    }
    free(buf.p);
    t->dec_byte_level = 1;
    return st;
}
