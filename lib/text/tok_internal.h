/* Internals shared by the tokenizer's source files: the tokenizer object, hash maps, the BPE model,
 * growable buffers and UTF-8 helpers. Not used outside lib/text. */
#ifndef LNX_TEXT_TOK_INTERNAL_H
#define LNX_TEXT_TOK_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/status.h"
#include "tokenizer.h"

/* Token ids are bounded so that a corrupt file cannot ask for a huge id table. */
#define LNX_TOK_MAX_ID (1 << 24)

/* ---- growable buffers ---- */

typedef struct lnx_tok_buf {
    char *p;
    size_t n, cap;
} lnx_tok_buf;

typedef struct lnx_tok_ids {
    int32_t *p;
    size_t n, cap;
} lnx_tok_ids;

/* Appends n bytes (LNX_E_NOMEM on failure). */
lnx_status lnx_tok_buf_put(lnx_tok_buf *b, const void *s, size_t n);
lnx_status lnx_tok_ids_push(lnx_tok_ids *v, int32_t id);
/* Makes room for at least `extra` more elements. */
lnx_status lnx_tok_ids_reserve(lnx_tok_ids *v, size_t extra);

/* ---- string arena: NUL-terminated copies freed all at once ---- */

typedef struct lnx_tok_arena {
    struct lnx_tok_arena_block *head;
} lnx_tok_arena;

/* Copy of s[0..n) plus a NUL, owned by the arena; NULL when out of memory. */
char *lnx_tok_arena_dup(lnx_tok_arena *a, const char *s, size_t n);
void lnx_tok_arena_free(lnx_tok_arena *a);

/* ---- hash maps (open addressing, linear probing) ---- */

/* String -> id. Keys are borrowed and must outlive the map. */
typedef struct lnx_tok_strmap {
    struct lnx_tok_strent *e;
    size_t cap, n;
} lnx_tok_strmap;

/* Inserts, or replaces the id of a key already present. */
lnx_status lnx_tok_strmap_put(lnx_tok_strmap *m, const char *key, size_t len, int32_t val);
/* The id of key[0..len), or -1. */
int32_t lnx_tok_strmap_get(const lnx_tok_strmap *m, const char *key, size_t len);
void lnx_tok_strmap_free(lnx_tok_strmap *m);

/* (left id, right id) -> (merge rank, merged id). */
typedef struct lnx_tok_pairmap {
    struct lnx_tok_pairent *e;
    size_t cap, n;
} lnx_tok_pairmap;

lnx_status lnx_tok_pairmap_put(lnx_tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* 1 and the rank/merged id when the pair is a merge, else 0. */
int lnx_tok_pairmap_get(const lnx_tok_pairmap *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged);
void lnx_tok_pairmap_free(lnx_tok_pairmap *m);

/* ---- UTF-8 ---- */

/* Offset of the first byte that is not part of valid UTF-8 (strict: no overlong forms, surrogates
 * or code points above U+10FFFF), or n when all of s is valid. */
size_t lnx_utf8_check(const unsigned char *s, size_t n);
/* Length of the character starting with lead byte `c` of valid UTF-8. */
size_t lnx_utf8_len(unsigned char c);

/* Incremental validator: assembles one character from single bytes. */
typedef struct lnx_utf8_acc {
    uint8_t b[4];
    uint8_t have, need;
} lnx_utf8_acc;

enum { LNX_UTF8_MORE = 0, LNX_UTF8_CHAR = 1, LNX_UTF8_BAD = -1 };
/* Adds a byte: LNX_UTF8_CHAR when acc->b[0..have) is now a whole character (the caller then
 * resets have to 0), LNX_UTF8_MORE when more bytes are needed, LNX_UTF8_BAD when the byte cannot
 * continue (acc->have still counts the bytes before it). */
int lnx_utf8_acc_feed(lnx_utf8_acc *acc, uint8_t c);

/* ---- BPE model ---- */

typedef struct lnx_bpe {
    lnx_tok_strmap vocab;   /* piece -> id */
    lnx_tok_pairmap merges; /* (left, right) -> (rank, merged id) */
    int32_t unk_id;         /* -1: unknown characters are dropped */
    int32_t byte_id[256];   /* id of "<0xNN>", -1 when absent */
    int byte_fallback, fuse_unk, ignore_merges;
    const char **piece;     /* id -> piece (arena strings; NULL for ids without one) */
    uint32_t *piece_len;
    int32_t n_piece;        /* largest vocabulary id + 1 */
} lnx_bpe;

/* Reads a `"type": "BPE"` model object: vocab, merges (either form), unk_token, byte_fallback,
 * fuse_unk, ignore_merges. Piece strings go to `arena`. */
lnx_status lnx_bpe_load(lnx_bpe *m, lnx_tok_arena *arena, const json_t *model, const char *origin);

/* Scratch memory for lnx_bpe_encode_word, reused across words of one encode call. */
typedef struct lnx_bpe_work {
    int32_t *id, *prev, *next;
    uint8_t *dead;
    struct lnx_bpe_merge *heap; /* 3 * cap entries */
    size_t cap;
} lnx_bpe_work;

/* Appends the ids of one pre-tokenized word s[0..n) (valid UTF-8) to out. */
lnx_status lnx_bpe_encode_word(const lnx_bpe *m, lnx_bpe_work *w, const char *s, size_t n, lnx_tok_ids *out);
void lnx_bpe_work_free(lnx_bpe_work *w);
void lnx_bpe_free(lnx_bpe *m);

/* ---- the tokenizer ---- */

typedef struct lnx_added_token {
    const char *content;  /* raw content */
    const char *match;    /* what is searched: content, or its normalized form when normalized */
    size_t content_len, match_len;
    int32_t id;
    uint8_t special, lstrip, rstrip, normalized, single_word;
} lnx_added_token;

/* Added tokens of one matching pass, grouped by first byte, longest first within a group. */
typedef struct lnx_added_index {
    uint32_t *order;    /* indices into lnx_tokenizer.added */
    uint32_t start[257];
} lnx_added_index;

typedef struct lnx_tok_replace {
    const char *pattern, *content;
    size_t pattern_len, content_len;
} lnx_tok_replace;

enum { LNX_NORM_PREPEND, LNX_NORM_REPLACE, LNX_NORM_NFC };

typedef struct lnx_tok_norm {
    int kind;
    lnx_tok_replace r; /* PREPEND uses only content */
} lnx_tok_norm;

enum { LNX_PREPEND_ALWAYS, LNX_PREPEND_FIRST, LNX_PREPEND_NEVER };

typedef struct lnx_tok_metaspace {
    const char *rep;
    size_t rep_len;
    int scheme;
    int split;
} lnx_tok_metaspace;

struct lnx_tokenizer {
    lnx_tok_arena arena;
    lnx_bpe bpe;
    int32_t n_ids;

    /* per id, n_ids entries */
    const char **piece;      /* raw piece, NULL for gaps */
    const char **dec_text;   /* piece after the decoder's Replace steps */
    uint32_t *dec_len;
    int16_t *byte_val;       /* byte of a <0xNN> piece when the decoder has ByteFallback, else -1 */
    uint8_t *special;

    lnx_added_token *added;
    size_t n_added;
    lnx_tok_strmap added_map;      /* content -> id */
    lnx_added_index raw_index;     /* tokens with normalized = false, matched in the raw text */
    lnx_added_index norm_index;    /* tokens with normalized = true, matched after normalization */

    lnx_tok_norm *norm;
    size_t n_norm;
    lnx_tok_metaspace *pretok;
    size_t n_pretok;

    int32_t *prefix, *suffix;      /* post-processor tokens around the sequence */
    size_t n_prefix, n_suffix;
    int32_t bos, eos, unk, pad;

    /* decoder, after the per-token Replace steps folded into dec_text */
    int dec_byte_fallback;
    int dec_join_space;            /* no decoder: tokens joined with " " */
    const char *strip_char;
    size_t strip_len;
    int32_t strip_start;

    /* byte-level BPE (tok_bytelevel.c): regex Split / ByteLevel pre-tokenizers, NULL when none */
    struct lnx_tok_bytelevel *bl;
    int dec_byte_level; /* ByteLevel decoder: dec_text holds each piece's bytes */
};

/* Appends s[0..n) to out with every occurrence of r->pattern replaced by r->content. */
lnx_status lnx_tok_replace_all(const lnx_tok_replace *r, const char *s, size_t n, lnx_tok_buf *out);

/* Applies the normalizer steps to s[0..n), leaving the result in one of the two buffers;
 * *res points at it (its bytes are (*res)->p[0..(*res)->n)). */
lnx_status lnx_tok_normalize(const lnx_tokenizer *t, const char *s, size_t n, lnx_tok_buf *a, lnx_tok_buf *b,
                             const lnx_tok_buf **res);

/* ---- byte-level BPE (tok_bytelevel.c) ---- */

/* 1 when `type` is a pre-tokenizer tok_bytelevel.c handles (Split, ByteLevel). */
int lnx_tok_bl_is_pretokenizer(const char *type);
/* Adds a Split (Isolated regex) or ByteLevel pre-tokenizer step to t->bl. */
lnx_status lnx_tok_bl_parse_pretokenizer(lnx_tokenizer *t, const json_t *p, const char *type, const char *origin);
/* Pre-tokenizes s[0..n) with t->bl's regexes, maps bytes to characters when ByteLevel, runs BPE. */
lnx_status lnx_tok_bl_encode(const lnx_tokenizer *t, lnx_bpe_work *work, const char *s, size_t n, lnx_tok_ids *out);
/* ByteLevel decoder: replaces dec_text of every piece whose characters all map with its bytes. */
lnx_status lnx_tok_bl_decoder_tables(lnx_tokenizer *t, const char *origin);
/* Appends the NFC form of valid UTF-8 s[0..n) to out. */
lnx_status lnx_tok_nfc(const char *s, size_t n, lnx_tok_buf *out);
void lnx_tok_bl_free(struct lnx_tok_bytelevel *b);

#endif
