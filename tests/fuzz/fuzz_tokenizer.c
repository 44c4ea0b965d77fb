/* The tokenizer. The first input byte picks what is fuzzed:
 *   0, 1  the rest is text encoded with the real tiny-a tokenizer (add_special = the low bit),
 *         then decoded in one go and through the streaming detokenizer;
 *   2     the rest is a tokenizer.json, loaded, then used to encode, decode and stream fixed text;
 *   3     the same with a tokenizer_config.json after the first NUL byte. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

static const lnx_tokenizer *real_tokenizer(void)
{
    static lnx_tokenizer *tok;
    if (!tok) {
        char json[4096];
        strcpy(json, fuzz_data_path("tiny-a/tokenizer.json"));
        if (lnx_tokenizer_load(&tok, json, fuzz_data_path("tiny-a/tokenizer_config.json")) != LNX_OK)
            __builtin_trap(); /* the fixture must load */
    }
    return tok;
}

/* Decodes ids at once and streamed; both must succeed for ids the tokenizer produced. */
static void decode_both_ways(const lnx_tokenizer *t, const int32_t *ids, size_t n)
{
    for (int skip = 0; skip < 2; skip++) {
        char *text;
        size_t len;
        if (lnx_tokenizer_decode(t, ids, n, skip, &text, &len) != LNX_OK)
            __builtin_trap();
        if (text[len] != '\0')
            __builtin_trap();
        free(text);
    }
    lnx_detok d;
    lnx_detok_init(&d, t);
    char buf[256];
    size_t len;
    for (size_t i = 0; i < n; i++) {
        lnx_status st = lnx_detok_push(&d, ids[i], buf, sizeof buf, &len);
        if (st != LNX_OK && st != LNX_E_LIMIT)
            __builtin_trap();
    }
    if (lnx_detok_flush(&d, buf, sizeof buf, &len) != LNX_OK)
        __builtin_trap();
}

static void encode_and_decode(const lnx_tokenizer *t, const char *text, size_t len, int add_special)
{
    int32_t *ids;
    size_t n;
    if (lnx_tokenizer_encode(t, text, len, add_special, &ids, &n) != LNX_OK)
        return;
    int32_t V = lnx_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            __builtin_trap();
    decode_both_ways(t, ids, n);
    free(ids);
}

static void exercise_loaded(const lnx_tokenizer *t)
{
    static const char sample[] = "Hello <video> w\xc3\xb6rld \xf0\x9f\x99\x82\n\t  x<s></s><unk>\xe2\x96\x81";
    encode_and_decode(t, sample, sizeof sample - 1, 1);
    encode_and_decode(t, sample, sizeof sample - 1, 0);
    int32_t V = lnx_tokenizer_vocab_size(t);
    (void)lnx_tokenizer_bos_id(t);
    (void)lnx_tokenizer_eos_id(t);
    (void)lnx_tokenizer_unk_id(t);
    (void)lnx_tokenizer_pad_id(t);
    (void)lnx_tokenizer_adds_bos(t);
    int32_t ids[64];
    size_t n = 0;
    for (int32_t id = 0; id < V && n < 64; id++) {
        const char *piece = lnx_tokenizer_piece(t, id);
        if (!piece)
            continue;
        (void)lnx_tokenizer_is_special(t, id);
        (void)lnx_tokenizer_token_id(t, piece);
        ids[n++] = id;
    }
    decode_both_ways(t, ids, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] & 3) {
    case 0:
    case 1:
        encode_and_decode(real_tokenizer(), rest, len, data[0] & 1);
        return 0;
    default: {
        const char *cfg = NULL;
        size_t cfg_len = 0, json_len = len;
        if ((data[0] & 3) == 3) {
            const char *z = memchr(rest, 0, len);
            if (z) {
                json_len = (size_t)(z - rest);
                cfg = z + 1;
                cfg_len = len - json_len - 1;
            }
        }
        lnx_tokenizer *t;
        if (lnx_tokenizer_load_buffer(&t, rest, json_len, cfg, cfg_len, "fuzz") != LNX_OK)
            return 0;
        exercise_loaded(t);
        lnx_tokenizer_free(t);
        return 0;
    }
    }
}
