/* Tokenizer for Llama-family checkpoints, read from a Hugging Face `tokenizer.json` alone (plus, when
 * given, `tokenizer_config.json`): SentencePiece-style BPE with byte fallback, added/special tokens,
 * the Prepend/Replace normalizers, the Metaspace pre-tokenizer, the TemplateProcessing
 * post-processor and the Replace/ByteFallback/Fuse/Strip decoder, reproducing the `tokenizers`
 * library's results.
 *
 * A loaded tokenizer is immutable: every function taking a `const lnx_tokenizer *` may be called
 * from several threads at once. */
#ifndef LNX_TEXT_TOKENIZER_H
#define LNX_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../base/status.h"

typedef struct lnx_tokenizer lnx_tokenizer;

/* Loads `tokenizer_json_path`. `tokenizer_config_path` may be NULL or name a missing file; when it
 * exists, its add_bos_token / add_eos_token (when present) replace the post-processor's choice,
 * and its bos/eos/unk/pad tokens name those ids. On failure *out is NULL and the status is
 * LNX_E_IO (unreadable), LNX_E_FORMAT (not JSON, missing or malformed fields, merges naming
 * unknown pieces), LNX_E_UNSUPPORTED (a model, normalizer, pre-tokenizer, post-processor or
 * decoder type this module does not implement, named in the message) or LNX_E_NOMEM.
 * Free the result with lnx_tokenizer_free. */
lnx_status lnx_tokenizer_load(lnx_tokenizer **out, const char *tokenizer_json_path,
                              const char *tokenizer_config_path);

/* Same from memory: `json`/`len` is the tokenizer.json text, `config_json`/`config_len` the
 * tokenizer_config.json text (config_json NULL: none). `origin` names the data in messages.
 * The buffers are not kept. */
lnx_status lnx_tokenizer_load_buffer(lnx_tokenizer **out, const char *json, size_t len, const char *config_json,
                                     size_t config_len, const char *origin);

/* Frees a tokenizer; NULL is allowed. */
void lnx_tokenizer_free(lnx_tokenizer *t);

/* Largest token id + 1 (ids without a piece in between are possible but unusual). */
int32_t lnx_tokenizer_vocab_size(const lnx_tokenizer *t);

/* Ids of the beginning/end-of-sequence, unknown and padding tokens; -1 when the tokenizer has none. */
int32_t lnx_tokenizer_bos_id(const lnx_tokenizer *t);
int32_t lnx_tokenizer_eos_id(const lnx_tokenizer *t);
int32_t lnx_tokenizer_unk_id(const lnx_tokenizer *t);
int32_t lnx_tokenizer_pad_id(const lnx_tokenizer *t);

/* 1 when lnx_tokenizer_encode with add_special puts the BOS id first, else 0. */
int lnx_tokenizer_adds_bos(const lnx_tokenizer *t);

/* Id of a piece given as a NUL-terminated string: an added token's content or a vocabulary piece
 * (raw form, e.g. "▁Hello" or "<0x0A>"); -1 when there is none. */
int32_t lnx_tokenizer_token_id(const lnx_tokenizer *t, const char *piece);

/* The raw string of an id (added-token content or vocabulary piece), borrowed from the tokenizer
 * and valid until it is freed; NULL when the id is out of range or has no piece. */
const char *lnx_tokenizer_piece(const lnx_tokenizer *t, int32_t id);

/* 1 when the id is an added token marked special (skipped by decoding with skip_special), else 0. */
int lnx_tokenizer_is_special(const lnx_tokenizer *t, int32_t id);

/* Encodes `len` bytes of UTF-8 text (NUL bytes allowed). add_special != 0 adds the tokens of the
 * post-processor's single template (BOS for Llama). *out_ids is malloc'ed (never NULL on success,
 * even when *out_n is 0) and freed by the caller with free(). Errors: LNX_E_INVALID for invalid
 * UTF-8 (the message gives the byte offset), LNX_E_NOMEM. On failure *out_ids is NULL, *out_n 0. */
lnx_status lnx_tokenizer_encode(const lnx_tokenizer *t, const char *text, size_t len, int add_special,
                                int32_t **out_ids, size_t *out_n);

/* Decodes ids the way `tokenizers` does (skip_special != 0 drops special tokens; the decoder turns
 * "▁" into spaces, reassembles <0xNN> byte pieces, invalid byte runs becoming one U+FFFD per byte,
 * and strips one leading space of the whole text). *out is malloc'ed and NUL-terminated, *out_len
 * its length; free with free(). An id outside [0, vocab size) or without a piece is LNX_E_INVALID. */
lnx_status lnx_tokenizer_decode(const lnx_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                                size_t *out_len);

/* Streaming detokenizer, for text generated one token at a time: each push gives the text that
 * became complete, always whole UTF-8 characters, and the concatenation of all pushes and the final
 * flush equals lnx_tokenizer_decode(all ids, skip_special = 1), the leading-space strip included.
 * One exception: in a run of byte pieces that mixes valid characters and invalid bytes, decode
 * replaces the whole run with U+FFFD while the stream has already given out the valid characters
 * that came before the first invalid byte (later bytes of the run become U+FFFD in both).
 * A plain value the caller embeds; it holds no allocation and needs no cleanup. The fields are
 * private. It borrows the tokenizer, which must outlive it. */
typedef struct lnx_detok {
    const lnx_tokenizer *tok;
    uint8_t pend[4];    /* bytes of an incomplete UTF-8 character from byte pieces */
    uint8_t n_pend;     /* how many of pend[] are used */
    uint8_t need;       /* length of the character being assembled */
    uint8_t tainted;    /* the current byte run had an invalid byte: the rest of it is U+FFFD */
    uint8_t any;        /* some token was output (for the space-joined no-decoder form) */
    int32_t strip_left; /* leading strip characters still to remove */
} lnx_detok;

/* Starts a stream for `t`. */
void lnx_detok_init(lnx_detok *d, const lnx_tokenizer *t);

/* Feeds one id and writes the newly complete text to buf (NUL-terminated; *len excludes the NUL;
 * it may be 0). cap >= 64 is always enough for pieces of up to 53 bytes (all Llama/Mistral/Yi
 * vocabularies); otherwise LNX_E_LIMIT reports the need in *len (plus one for the NUL) and leaves
 * the stream unchanged. An invalid id is LNX_E_INVALID, also leaving the stream unchanged. */
lnx_status lnx_detok_push(lnx_detok *d, int32_t id, char *buf, size_t cap, size_t *len);

/* Ends the stream: an incomplete character left from byte pieces becomes one U+FFFD per byte, as
 * decode does. Same buffer contract as lnx_detok_push (cap >= 16 is always enough). The stream can
 * then be reused from its start state. */
lnx_status lnx_detok_flush(lnx_detok *d, char *buf, size_t cap, size_t *len);

#endif
