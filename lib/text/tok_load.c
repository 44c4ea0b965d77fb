/* Loading: tokenizer.json (added tokens, model, normalizer, pre-tokenizer, post-processor, decoder)
 * and the optional tokenizer_config.json, into an lnx_tokenizer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/file.h"
#include "../io/json.h"
#include "tok_internal.h"

#define MAX_NESTING 8

/* ---- small helpers ---- */

static lnx_status nomem(const char *origin)
{
    return lnx_error(LNX_E_NOMEM, "%s: out of memory", origin);
}

/* Appends one element of `size` bytes to a realloc'ed array. */
static lnx_status append(void **arr, size_t *n, size_t size, const void *elem, const char *origin)
{
    void *p = realloc(*arr, (*n + 1) * size);
    if (!p)
        return nomem(origin);
    memcpy((char *)p + *n * size, elem, size);
    *arr = p;
    ++*n;
    return LNX_OK;
}

static const char *dup_json_string(lnx_tokenizer *t, const json_t *s, size_t *len)
{
    *len = json_string_length(s);
    return lnx_tok_arena_dup(&t->arena, json_string_value(s), *len);
}

/* The "type" of a component object (`what` names the component in messages). */
static lnx_status component_type(const json_t *obj, const char *what, const char *origin, const char **type)
{
    if (!json_is_object(obj))
        return lnx_error(LNX_E_FORMAT, "%s: %s must be an object or null", origin, what);
    lnx_status st = lnx_json_get_string(obj, "type", NULL, type, origin);
    if (st == LNX_OK && !*type)
        st = lnx_error(LNX_E_FORMAT, "%s: %s has no \"type\"", origin, what);
    return st;
}

/* A {"String": "..."} pattern; a Regex pattern is unsupported. */
static lnx_status string_pattern(lnx_tokenizer *t, const json_t *obj, const char *what, const char *origin,
                                 lnx_tok_replace *r)
{
    const json_t *pat = json_object_get(obj, "pattern");
    const json_t *str = json_object_get(pat, "String");
    const json_t *content = json_object_get(obj, "content");
    if (json_object_get(pat, "Regex"))
        return lnx_error(LNX_E_UNSUPPORTED, "%s: %s with a Regex pattern is not supported", origin, what);
    if (!json_is_string(str) || json_string_length(str) == 0 || !json_is_string(content))
        return lnx_error(LNX_E_FORMAT, "%s: %s needs a non-empty pattern {\"String\": ...} and a content string", origin,
                         what);
    r->pattern = dup_json_string(t, str, &r->pattern_len);
    r->content = dup_json_string(t, content, &r->content_len);
    return r->pattern && r->content ? LNX_OK : nomem(origin);
}

/* ---- added tokens ---- */

static lnx_status parse_added_token(lnx_tokenizer *t, const json_t *a, size_t i, const char *origin)
{
    lnx_added_token tok = {0};
    int64_t id;
    int flag[5];
    const json_t *content = json_object_get(a, "content");
    if (!json_is_object(a) || !json_is_string(content) || json_string_length(content) == 0)
        return lnx_error(LNX_E_FORMAT, "%s: added_tokens[%zu] needs a non-empty \"content\"", origin, i);
    lnx_status st = lnx_json_get_int(a, "id", -1, &id, origin);
    if (st == LNX_OK && (id < 0 || id >= LNX_TOK_MAX_ID))
        st = lnx_error(LNX_E_FORMAT, "%s: added_tokens[%zu] needs an \"id\" in [0, %d)", origin, i, LNX_TOK_MAX_ID);
    if (st == LNX_OK)
        st = lnx_json_get_bool(a, "special", 0, &flag[0], origin);
    static const char *const keys[] = {"lstrip", "rstrip", "single_word"};
    for (int k = 0; k < 3 && st == LNX_OK; k++)
        st = lnx_json_get_bool(a, keys[k], 0, &flag[1 + k], origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(a, "normalized", !flag[0], &flag[4], origin);
    if (st != LNX_OK)
        return st;
    tok.content = dup_json_string(t, content, &tok.content_len);
    if (!tok.content)
        return nomem(origin);
    tok.match = tok.content;
    tok.match_len = tok.content_len;
    tok.id = (int32_t)id;
    tok.special = (uint8_t)flag[0];
    tok.lstrip = (uint8_t)flag[1];
    tok.rstrip = (uint8_t)flag[2];
    tok.single_word = (uint8_t)flag[3];
    tok.normalized = (uint8_t)flag[4];
    st = lnx_tok_strmap_put(&t->added_map, tok.content, tok.content_len, tok.id);
    if (st == LNX_OK)
        st = append((void **)&t->added, &t->n_added, sizeof tok, &tok, origin);
    return st;
}

static lnx_status parse_added_tokens(lnx_tokenizer *t, const json_t *arr, const char *origin)
{
    if (!arr || json_is_null(arr))
        return LNX_OK;
    if (!json_is_array(arr))
        return lnx_error(LNX_E_FORMAT, "%s: added_tokens must be an array", origin);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        lnx_status st = parse_added_token(t, json_array_get(arr, i), i, origin);
        if (st != LNX_OK)
            return st;
    }
    return LNX_OK;
}

typedef struct index_key {
    unsigned char first;
    size_t len;
    uint32_t idx;
} index_key;

static int index_key_cmp(const void *pa, const void *pb)
{
    const index_key *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1; /* longest first */
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Indexes the added tokens with the given `normalized` flag by first byte, longest first. */
static lnx_status build_index(lnx_tokenizer *t, lnx_added_index *ix, int normalized, const char *origin)
{
    index_key *keys = malloc((t->n_added + 1) * sizeof *keys);
    ix->order = malloc((t->n_added + 1) * sizeof *ix->order);
    if (!keys || !ix->order) {
        free(keys);
        return nomem(origin);
    }
    size_t n = 0;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == normalized && t->added[i].match_len > 0)
            keys[n++] = (index_key){(unsigned char)t->added[i].match[0], t->added[i].match_len, (uint32_t)i};
    qsort(keys, n, sizeof *keys, index_key_cmp);
    size_t k = 0;
    for (int c = 0; c <= 256; c++) {
        ix->start[c] = (uint32_t)k;
        while (c < 256 && k < n && keys[k].first == c)
            ix->order[k] = keys[k].idx, k++;
    }
    free(keys);
    return LNX_OK;
}

/* Normalized added tokens are searched in normalized text, so their own content is normalized. */
static lnx_status normalize_added(lnx_tokenizer *t, const char *origin)
{
    lnx_tok_buf a = {0}, b = {0};
    lnx_status st = LNX_OK;
    for (size_t i = 0; i < t->n_added && st == LNX_OK; i++) {
        lnx_added_token *tok = &t->added[i];
        if (!tok->normalized || !t->n_norm)
            continue;
        const lnx_tok_buf *res;
        st = lnx_tok_normalize(t, tok->content, tok->content_len, &a, &b, &res);
        if (st != LNX_OK)
            break;
        tok->match = lnx_tok_arena_dup(&t->arena, res->p ? res->p : "", res->n);
        tok->match_len = res->n;
        if (!tok->match)
            st = nomem(origin);
    }
    free(a.p);
    free(b.p);
    return st;
}

/* ---- normalizer and pre-tokenizer ---- */

static lnx_status parse_normalizer(lnx_tokenizer *t, const json_t *n, const char *origin, int depth)
{
    if (!n || json_is_null(n))
        return LNX_OK;
    const char *type;
    lnx_status st = component_type(n, "normalizer", origin, &type);
    if (st != LNX_OK)
        return st;
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list) || depth >= MAX_NESTING)
            return lnx_error(LNX_E_FORMAT, "%s: normalizer Sequence needs a \"normalizers\" array", origin);
        for (size_t i = 0; i < json_array_size(list) && st == LNX_OK; i++)
            st = parse_normalizer(t, json_array_get(list, i), origin, depth + 1);
        return st;
    }
    lnx_tok_norm step = {0};
    if (strcmp(type, "Prepend") == 0) {
        const json_t *p = json_object_get(n, "prepend");
        if (!json_is_string(p))
            return lnx_error(LNX_E_FORMAT, "%s: normalizer Prepend needs a \"prepend\" string", origin);
        step.kind = LNX_NORM_PREPEND;
        step.r.content = dup_json_string(t, p, &step.r.content_len);
        if (!step.r.content)
            return nomem(origin);
    } else if (strcmp(type, "NFC") == 0) {
        step.kind = LNX_NORM_NFC;
    } else if (strcmp(type, "Replace") == 0) {
        step.kind = LNX_NORM_REPLACE;
        st = string_pattern(t, n, "normalizer Replace", origin, &step.r);
        if (st != LNX_OK)
            return st;
    } else {
        return lnx_error(LNX_E_UNSUPPORTED, "%s: normalizer type \"%s\" is not supported", origin, type);
    }
    return append((void **)&t->norm, &t->n_norm, sizeof step, &step, origin);
}

static lnx_status parse_metaspace(lnx_tokenizer *t, const json_t *p, const char *origin)
{
    lnx_tok_metaspace ms = {0};
    const char *rep, *scheme;
    int add_prefix_space;
    lnx_status st = lnx_json_get_string(p, "replacement", "\xe2\x96\x81", &rep, origin);
    if (st == LNX_OK)
        st = lnx_json_get_string(p, "prepend_scheme", "always", &scheme, origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(p, "split", 1, &ms.split, origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(p, "add_prefix_space", 1, &add_prefix_space, origin);
    if (st != LNX_OK)
        return st;
    if (!*rep)
        return lnx_error(LNX_E_FORMAT, "%s: pre_tokenizer Metaspace has an empty replacement", origin);
    if (strcmp(scheme, "always") == 0)
        ms.scheme = LNX_PREPEND_ALWAYS;
    else if (strcmp(scheme, "first") == 0)
        ms.scheme = LNX_PREPEND_FIRST;
    else if (strcmp(scheme, "never") == 0)
        ms.scheme = LNX_PREPEND_NEVER;
    else
        return lnx_error(LNX_E_FORMAT, "%s: pre_tokenizer Metaspace prepend_scheme \"%s\" is not first, always or never",
                         origin, scheme);
    /* Older files say add_prefix_space: false instead of prepend_scheme "never". */
    if (!add_prefix_space)
        ms.scheme = LNX_PREPEND_NEVER;
    ms.rep_len = strlen(rep);
    ms.rep = lnx_tok_arena_dup(&t->arena, rep, ms.rep_len);
    if (!ms.rep)
        return nomem(origin);
    return append((void **)&t->pretok, &t->n_pretok, sizeof ms, &ms, origin);
}

static lnx_status parse_pretokenizer(lnx_tokenizer *t, const json_t *p, const char *origin, int depth)
{
    if (!p || json_is_null(p))
        return LNX_OK;
    const char *type;
    lnx_status st = component_type(p, "pre_tokenizer", origin, &type);
    if (st != LNX_OK)
        return st;
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list) || depth >= MAX_NESTING)
            return lnx_error(LNX_E_FORMAT, "%s: pre_tokenizer Sequence needs a \"pretokenizers\" array", origin);
        for (size_t i = 0; i < json_array_size(list) && st == LNX_OK; i++)
            st = parse_pretokenizer(t, json_array_get(list, i), origin, depth + 1);
        return st;
    }
    if ((strcmp(type, "Metaspace") == 0 && t->bl) || (lnx_tok_bl_is_pretokenizer(type) && t->n_pretok))
        return lnx_error(LNX_E_UNSUPPORTED, "%s: pre_tokenizer Metaspace together with Split/ByteLevel is not supported",
                         origin);
    if (strcmp(type, "Metaspace") == 0)
        return parse_metaspace(t, p, origin);
    if (lnx_tok_bl_is_pretokenizer(type))
        return lnx_tok_bl_parse_pretokenizer(t, p, type, origin);
    return lnx_error(LNX_E_UNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported", origin, type);
}

/* ---- post-processor ---- */

static lnx_status template_special(lnx_tokenizer *t, const json_t *specials, const char *name, int at_end,
                                   const char *origin)
{
    const json_t *ids = json_object_get(json_object_get(specials, name), "ids");
    if (!json_is_array(ids))
        return lnx_error(LNX_E_FORMAT, "%s: post_processor special token \"%s\" has no \"ids\" in special_tokens", origin,
                         name);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const json_t *v = json_array_get(ids, i);
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
        /* an id without a piece would be emitted by encode and then refused by decode */
        if (id < 0 || id >= t->n_ids || !t->piece[id])
            return lnx_error(LNX_E_FORMAT, "%s: post_processor special token \"%s\" has id %lld, which is not in the "
                             "vocabulary", origin, name, (long long)id);
        int32_t id32 = (int32_t)id;
        lnx_status st = at_end ? append((void **)&t->suffix, &t->n_suffix, sizeof id32, &id32, origin)
                               : append((void **)&t->prefix, &t->n_prefix, sizeof id32, &id32, origin);
        if (st != LNX_OK)
            return st;
    }
    return LNX_OK;
}

static lnx_status parse_post_processor(lnx_tokenizer *t, const json_t *p, const char *origin)
{
    if (!p || json_is_null(p))
        return LNX_OK;
    const char *type;
    lnx_status st = component_type(p, "post_processor", origin, &type);
    if (st != LNX_OK)
        return st;
    if (strcmp(type, "ByteLevel") == 0)
        return LNX_OK; /* it only adjusts offsets, which the library does not report */
    if (strcmp(type, "TemplateProcessing") != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: post_processor type \"%s\" is not supported", origin, type);
    const json_t *single = json_object_get(p, "single");
    const json_t *specials = json_object_get(p, "special_tokens");
    if (!json_is_array(single))
        return lnx_error(LNX_E_FORMAT, "%s: post_processor TemplateProcessing needs a \"single\" array", origin);
    int seen_sequence = 0;
    for (size_t i = 0; i < json_array_size(single) && st == LNX_OK; i++) {
        const json_t *item = json_array_get(single, i);
        const json_t *sp = json_object_get(json_object_get(item, "SpecialToken"), "id");
        const json_t *seq = json_object_get(json_object_get(item, "Sequence"), "id");
        if (json_is_string(sp))
            st = template_special(t, specials, json_string_value(sp), seen_sequence, origin);
        else if (json_is_string(seq) && strcmp(json_string_value(seq), "A") == 0 && !seen_sequence)
            seen_sequence = 1;
        else
            st = lnx_error(LNX_E_FORMAT, "%s: post_processor single[%zu] is neither a SpecialToken nor the one $A",
                           origin, i);
    }
    if (st == LNX_OK && !seen_sequence)
        st = lnx_error(LNX_E_FORMAT, "%s: post_processor single template has no $A", origin);
    return st;
}

/* ---- decoder ---- */

typedef struct decoder_state {
    lnx_tok_replace *rep;
    size_t n_rep;
    int fuse, strip, byte_level;
} decoder_state;

static lnx_status parse_decoder(lnx_tokenizer *t, const json_t *d, decoder_state *ds, const char *origin, int depth)
{
    const char *type;
    lnx_status st = component_type(d, "decoder", origin, &type);
    if (st != LNX_OK)
        return st;
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(d, "decoders");
        if (!json_is_array(list) || depth >= MAX_NESTING)
            return lnx_error(LNX_E_FORMAT, "%s: decoder Sequence needs a \"decoders\" array", origin);
        for (size_t i = 0; i < json_array_size(list) && st == LNX_OK; i++)
            st = parse_decoder(t, json_array_get(list, i), ds, origin, depth + 1);
        return st;
    }
    if (strcmp(type, "ByteLevel") == 0 || ds->byte_level) {
        /* the byte-level decoder stands alone (as Qwen2's and Llama-3's files have it) */
        if (ds->byte_level || ds->n_rep || t->dec_byte_fallback || ds->fuse || ds->strip)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: decoder ByteLevel combined with other decoders is not supported",
                             origin);
        ds->byte_level = 1;
        return LNX_OK;
    }
    /* Supported chains are Replace*, ByteFallback?, Fuse?, Strip? in this order (Strip after Fuse),
     * which decode and the streaming detokenizer both reproduce exactly. */
    int late = t->dec_byte_fallback || ds->fuse || ds->strip;
    if (strcmp(type, "Replace") == 0) {
        lnx_tok_replace r;
        if (late)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: decoder Replace after ByteFallback/Fuse/Strip is not supported",
                             origin);
        st = string_pattern(t, d, "decoder Replace", origin, &r);
        return st == LNX_OK ? append((void **)&ds->rep, &ds->n_rep, sizeof r, &r, origin) : st;
    }
    if (strcmp(type, "ByteFallback") == 0) {
        if (late)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: decoder ByteFallback after ByteFallback/Fuse/Strip is not supported",
                             origin);
        t->dec_byte_fallback = 1;
        return LNX_OK;
    }
    if (strcmp(type, "Fuse") == 0) {
        if (ds->strip)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: decoder Fuse after Strip is not supported", origin);
        ds->fuse = 1;
        return LNX_OK;
    }
    if (strcmp(type, "Strip") == 0) {
        const char *content;
        int32_t start, stop;
        st = lnx_json_get_string(d, "content", " ", &content, origin);
        if (st == LNX_OK)
            st = lnx_json_get_i32(d, "start", 0, &start, origin);
        if (st == LNX_OK)
            st = lnx_json_get_i32(d, "stop", 0, &stop, origin);
        if (st != LNX_OK)
            return st;
        if (!ds->fuse || ds->strip || stop != 0)
            return lnx_error(LNX_E_UNSUPPORTED,
                             "%s: decoder Strip is supported once, after Fuse, with stop 0 (stop here %d)", origin,
                             (int)stop);
        if (!*content || lnx_utf8_len((unsigned char)*content) != strlen(content) || start < 0)
            return lnx_error(LNX_E_FORMAT, "%s: decoder Strip needs one content character and start >= 0", origin);
        ds->strip = 1;
        t->strip_len = strlen(content);
        t->strip_char = lnx_tok_arena_dup(&t->arena, content, t->strip_len);
        t->strip_start = start;
        return t->strip_char ? LNX_OK : nomem(origin);
    }
    return lnx_error(LNX_E_UNSUPPORTED, "%s: decoder type \"%s\" is not supported", origin, type);
}

static int parse_byte_piece(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Per-id decoder text: the piece after the decoder's Replace steps, and its byte when it is a
 * <0xNN> piece that ByteFallback turns into a byte. */
static lnx_status build_decoder_tables(lnx_tokenizer *t, const decoder_state *ds, const char *origin)
{
    lnx_tok_buf bufs[2] = {{0}, {0}};
    lnx_status st = LNX_OK;
    for (int32_t id = 0; id < t->n_ids && st == LNX_OK; id++) {
        const char *s = t->piece[id];
        size_t n = s ? strlen(s) : 0;
        t->byte_val[id] = -1;
        if (!s)
            continue;
        for (size_t k = 0; k < ds->n_rep && st == LNX_OK; k++) {
            lnx_tok_buf *o = &bufs[k & 1];
            o->n = 0;
            st = lnx_tok_replace_all(&ds->rep[k], s, n, o);
            s = o->p ? o->p : "";
            n = o->n;
        }
        if (st != LNX_OK)
            break;
        if (s != t->piece[id]) {
            s = lnx_tok_arena_dup(&t->arena, s, n);
            if (!s)
                st = nomem(origin);
        }
        if (n > UINT32_MAX)
            st = lnx_error(LNX_E_LIMIT, "%s: piece %d is too long", origin, (int)id);
        t->dec_text[id] = s;
        t->dec_len[id] = (uint32_t)n;
        if (t->dec_byte_fallback && s)
            t->byte_val[id] = (int16_t)parse_byte_piece(s, n);
    }
    free(bufs[0].p);
    free(bufs[1].p);
    return st;
}

static lnx_status setup_decoder(lnx_tokenizer *t, const json_t *d, const char *origin)
{
    decoder_state ds = {0};
    lnx_status st = LNX_OK;
    if (!d || json_is_null(d))
        t->dec_join_space = 1;
    else
        st = parse_decoder(t, d, &ds, origin, 0);
    if (st == LNX_OK)
        st = build_decoder_tables(t, &ds, origin);
    if (st == LNX_OK && ds.byte_level)
        st = lnx_tok_bl_decoder_tables(t, origin);
    free(ds.rep);
    return st;
}

/* ---- id tables ---- */

static lnx_status build_id_tables(lnx_tokenizer *t, const char *origin)
{
    t->n_ids = t->bpe.n_piece;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id >= t->n_ids)
            t->n_ids = t->added[i].id + 1;
    size_t n = (size_t)t->n_ids + 1;
    t->piece = calloc(n, sizeof *t->piece);
    t->dec_text = calloc(n, sizeof *t->dec_text);
    t->dec_len = calloc(n, sizeof *t->dec_len);
    t->byte_val = calloc(n, sizeof *t->byte_val);
    t->special = calloc(n, 1);
    if (!t->piece || !t->dec_text || !t->dec_len || !t->byte_val || !t->special)
        return nomem(origin);
    for (int32_t id = 0; id < t->bpe.n_piece; id++)
        t->piece[id] = t->bpe.piece[id];
    for (size_t i = 0; i < t->n_added; i++) {
        t->piece[t->added[i].id] = t->added[i].content;
        t->special[t->added[i].id] = t->added[i].special;
    }
    return LNX_OK;
}

/* ---- tokenizer_config.json ---- */

/* A config token is a string, an object with "content", or null/absent (*id stays `def`). */
static lnx_status config_token(const lnx_tokenizer *t, const json_t *cfg, const char *key, int32_t def, int32_t *id,
                               const char *origin)
{
    const json_t *v = json_object_get(cfg, key);
    *id = def;
    if (!v || json_is_null(v))
        return LNX_OK;
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v))
        return lnx_error(LNX_E_FORMAT, "%s: tokenizer_config \"%s\" must be a string or {\"content\": ...}", origin, key);
    *id = lnx_tokenizer_token_id(t, json_string_value(v));
    if (*id < 0)
        return lnx_error(LNX_E_FORMAT, "%s: tokenizer_config %s \"%s\" is not a known token", origin, key,
                         json_string_value(v));
    return LNX_OK;
}

static lnx_status set_special_ids(lnx_tokenizer *t, const json_t *cfg, const char *origin)
{
    /* Without a config, BOS is what the template puts first, EOS the conventional "</s>". */
    int32_t bos = t->n_prefix ? t->prefix[0] : lnx_tokenizer_token_id(t, "<s>");
    int32_t eos = t->n_suffix ? t->suffix[t->n_suffix - 1] : lnx_tokenizer_token_id(t, "</s>");
    lnx_status st = config_token(t, cfg, "bos_token", bos, &t->bos, origin);
    if (st == LNX_OK)
        st = config_token(t, cfg, "eos_token", eos, &t->eos, origin);
    if (st == LNX_OK)
        st = config_token(t, cfg, "unk_token", t->bpe.unk_id, &t->unk, origin);
    if (st == LNX_OK)
        st = config_token(t, cfg, "pad_token", -1, &t->pad, origin);
    if (st != LNX_OK || !cfg)
        return st;
    /* add_bos_token / add_eos_token rebuild the template the way transformers' Llama tokenizer does;
     * a key that is absent keeps what the post-processor does on that side. */
    int add_bos, add_eos;
    st = lnx_json_get_bool(cfg, "add_bos_token", t->n_prefix > 0, &add_bos, origin);
    if (st == LNX_OK)
        st = lnx_json_get_bool(cfg, "add_eos_token", t->n_suffix > 0, &add_eos, origin);
    if (st != LNX_OK)
        return st;
    if ((add_bos && t->bos < 0) || (add_eos && t->eos < 0))
        return lnx_error(LNX_E_FORMAT, "%s: tokenizer_config asks for a %s token the tokenizer does not have", origin,
                         add_bos && t->bos < 0 ? "BOS" : "EOS");
    if (json_object_get(cfg, "add_bos_token")) {
        t->n_prefix = 0;
        if (add_bos && (st = append((void **)&t->prefix, &t->n_prefix, sizeof t->bos, &t->bos, origin)) != LNX_OK)
            return st;
    }
    if (json_object_get(cfg, "add_eos_token")) {
        t->n_suffix = 0;
        if (add_eos && (st = append((void **)&t->suffix, &t->n_suffix, sizeof t->eos, &t->eos, origin)) != LNX_OK)
            return st;
    }
    return LNX_OK;
}

/* ---- entry points ---- */

static lnx_status parse_model(lnx_tokenizer *t, const json_t *root, const char *origin)
{
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return lnx_error(LNX_E_FORMAT, "%s: no \"model\" object", origin);
    const char *type;
    lnx_status st = lnx_json_get_string(model, "type", "BPE", &type, origin);
    if (st != LNX_OK)
        return st;
    if (strcmp(type, "BPE") != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: model type \"%s\" is not supported (only BPE)", origin, type);
    return lnx_bpe_load(&t->bpe, &t->arena, model, origin);
}

static lnx_status build(lnx_tokenizer *t, const json_t *root, const json_t *config, const char *origin)
{
    if (!json_is_object(root))
        return lnx_error(LNX_E_FORMAT, "%s: not a tokenizer.json object", origin);
    if (config && !json_is_object(config))
        return lnx_error(LNX_E_FORMAT, "%s: tokenizer_config is not a JSON object", origin);
    t->bos = t->eos = t->unk = t->pad = -1;
    lnx_status st = parse_model(t, root, origin);
    if (st == LNX_OK)
        st = parse_added_tokens(t, json_object_get(root, "added_tokens"), origin);
    if (st == LNX_OK)
        st = build_id_tables(t, origin);
    if (st == LNX_OK)
        st = parse_normalizer(t, json_object_get(root, "normalizer"), origin, 0);
    if (st == LNX_OK)
        st = parse_pretokenizer(t, json_object_get(root, "pre_tokenizer"), origin, 0);
    if (st == LNX_OK)
        st = normalize_added(t, origin);
    if (st == LNX_OK)
        st = build_index(t, &t->raw_index, 0, origin);
    if (st == LNX_OK)
        st = build_index(t, &t->norm_index, 1, origin);
    if (st == LNX_OK)
        st = parse_post_processor(t, json_object_get(root, "post_processor"), origin);
    if (st == LNX_OK)
        st = setup_decoder(t, json_object_get(root, "decoder"), origin);
    if (st == LNX_OK)
        st = set_special_ids(t, config, origin);
    return st;
}

/* The config may hold integers beyond int64 (model_max_length = 1e30), read as reals. */
enum { CONFIG_FLAGS = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL };

static lnx_status config_parse_error(const json_error_t *err, const char *origin)
{
    return lnx_error(LNX_E_FORMAT, "%s:%d:%d: invalid JSON: %s", origin, err->line, err->column, err->text);
}

static lnx_status finish(lnx_tokenizer **out, const json_t *root, const json_t *config, const char *origin)
{
    lnx_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return nomem(origin);
    lnx_status st = build(t, root, config, origin);
    if (st != LNX_OK) {
        lnx_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LNX_OK;
}

lnx_status lnx_tokenizer_load_buffer(lnx_tokenizer **out, const char *json, size_t len, const char *config_json,
                                     size_t config_len, const char *origin)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_load_buffer: out is NULL");
    *out = NULL;
    if (!json)
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_load_buffer: json is NULL");
    if (!origin)
        origin = "tokenizer.json";
    json_t *root, *config = NULL;
    lnx_status st = lnx_json_load_buffer(&root, json, len, origin);
    if (st != LNX_OK)
        return st;
    if (config_json) {
        json_error_t err;
        config = json_loadb(config_json, config_len, CONFIG_FLAGS, &err);
        if (!config) {
            json_decref(root);
            return config_parse_error(&err, "tokenizer_config");
        }
    }
    st = finish(out, root, config, origin);
    json_decref(root);
    json_decref(config);
    return st;
}

lnx_status lnx_tokenizer_load(lnx_tokenizer **out, const char *tokenizer_json_path, const char *tokenizer_config_path)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_load: out is NULL");
    *out = NULL;
    if (!tokenizer_json_path)
        return lnx_error(LNX_E_INVALID, "lnx_tokenizer_load: tokenizer_json_path is NULL");
    json_t *config = NULL;
    if (tokenizer_config_path) {
        FILE *f = NULL;
        if (lnx_path_exists(tokenizer_config_path))
            LNX_TRY(lnx_fopen_regular(tokenizer_config_path, &f));
        if (f) {
            json_error_t err;
            config = json_loadf(f, CONFIG_FLAGS, &err);
            fclose(f);
            if (!config)
                return config_parse_error(&err, tokenizer_config_path);
        }
    }
    json_t *root;
    lnx_status st = lnx_json_load_file(&root, tokenizer_json_path);
    if (st == LNX_OK) {
        st = finish(out, root, config, tokenizer_json_path);
        json_decref(root);
    }
    json_decref(config);
    return st;
}
