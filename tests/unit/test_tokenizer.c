#include "../common/testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/tokenizer.h"

/* ---- helpers ---- */

static lnx_tokenizer *load_llama2(void)
{
    lnx_tokenizer *t = NULL;
    lnx_status st = lnx_tokenizer_load(&t, tu_data("tiny-a/tokenizer.json"), tu_data("tiny-a/tokenizer_config.json"));
    if (st != LNX_OK)
        print_error("load: %s\n", lnx_last_error());
    assert_int_equal(st, LNX_OK);
    return t;
}

static lnx_tokenizer *load_mistral(void)
{
    lnx_tokenizer *t = NULL;
    lnx_status st = lnx_tokenizer_load(&t, tu_data("tokenizer/mistral/tokenizer.json"),
                                       tu_data("tokenizer/mistral/tokenizer_config.json"));
    if (st != LNX_OK)
        print_error("load: %s\n", lnx_last_error());
    assert_int_equal(st, LNX_OK);
    return t;
}

static lnx_tokenizer *load_qwen2_tiny(void)
{
    lnx_tokenizer *t = NULL;
    lnx_status st = lnx_tokenizer_load(&t, tu_data("tiny-ov/tokenizer.json"), tu_data("tiny-ov/tokenizer_config.json"));
    if (st != LNX_OK)
        print_error("load: %s\n", lnx_last_error());
    assert_int_equal(st, LNX_OK);
    return t;
}

static json_t *load_json(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j)
        print_error("%s: %s\n", path, err.text);
    assert_non_null(j);
    return j;
}

static void assert_ids(const int32_t *got, size_t n, const json_t *want, const char *what, const char *text)
{
    int ok = n == json_array_size(want);
    for (size_t i = 0; ok && i < n; i++)
        ok = got[i] == json_integer_value(json_array_get(want, i));
    if (!ok) {
        print_error("%s of \"%s\": got", what, text);
        for (size_t i = 0; i < n; i++)
            print_error(" %d", (int)got[i]);
        print_error("\n");
    }
    assert_true(ok);
}

static void json_ids(const json_t *arr, int32_t **ids, size_t *n)
{
    *n = json_array_size(arr);
    *ids = malloc((*n + 1) * sizeof **ids);
    assert_non_null(*ids);
    for (size_t i = 0; i < *n; i++)
        (*ids)[i] = (int32_t)json_integer_value(json_array_get(arr, i));
}

static void assert_decode(const lnx_tokenizer *t, const json_t *ids_json, int skip, const char *want)
{
    int32_t *ids;
    size_t n;
    json_ids(ids_json, &ids, &n);
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(lnx_tokenizer_decode(t, ids, n, skip, &s, &len), LNX_OK);
    assert_string_equal(s, want);
    assert_int_equal(len, strlen(want));
    free(s);
    free(ids);
}

/* Streams ids one at a time; returns the malloc'ed concatenation. */
static char *stream_all(const lnx_tokenizer *t, const int32_t *ids, size_t n)
{
    lnx_detok d;
    lnx_detok_init(&d, t);
    size_t cap = 64 * (n + 1), total = 0, len;
    char *all = malloc(cap + 1);
    assert_non_null(all);
    char piece[64];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lnx_detok_push(&d, ids[i], piece, sizeof piece, &len), LNX_OK);
        assert_int_equal(strlen(piece), len);
        memcpy(all + total, piece, len);
        total += len;
    }
    assert_int_equal(lnx_detok_flush(&d, piece, sizeof piece, &len), LNX_OK);
    memcpy(all + total, piece, len);
    total += len;
    all[total] = '\0';
    return all;
}

static void assert_stream_equals_decode(const lnx_tokenizer *t, const json_t *ids_json)
{
    int32_t *ids;
    size_t n;
    json_ids(ids_json, &ids, &n);
    char *want = NULL;
    size_t want_len;
    assert_int_equal(lnx_tokenizer_decode(t, ids, n, 1, &want, &want_len), LNX_OK);
    char *got = stream_all(t, ids, n);
    assert_string_equal(got, want);
    free(got);
    free(want);
    free(ids);
}

/* Every case of a corpus file: ids with and without BOS, pieces, the three decodes, streaming. */
static void run_corpus(const lnx_tokenizer *t, const char *cases_path)
{
    json_t *root = load_json(cases_path);
    const json_t *cases = json_object_get(root, "cases");
    assert_true(json_array_size(cases) > 20);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *k = json_array_get(cases, c);
        const json_t *text_j = json_object_get(k, "text");
        const char *text = json_string_value(text_j);
        size_t text_len = json_string_length(text_j);
        int32_t *ids;
        size_t n;

        assert_int_equal(lnx_tokenizer_encode(t, text, text_len, 1, &ids, &n), LNX_OK);
        assert_ids(ids, n, json_object_get(k, "ids_with_bos"), "ids_with_bos", text);
        free(ids);

        assert_int_equal(lnx_tokenizer_encode(t, text, text_len, 0, &ids, &n), LNX_OK);
        assert_non_null(ids);
        assert_ids(ids, n, json_object_get(k, "ids_without_bos"), "ids_without_bos", text);
        const json_t *tokens = json_object_get(k, "tokens_without_bos");
        assert_int_equal(json_array_size(tokens), n);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(lnx_tokenizer_piece(t, ids[i]), json_string_value(json_array_get(tokens, i)));
        free(ids);

        assert_decode(t, json_object_get(k, "ids_with_bos"), 0, json_string_value(json_object_get(k, "decoded_with_bos")));
        assert_decode(t, json_object_get(k, "ids_with_bos"), 1,
                      json_string_value(json_object_get(k, "decoded_with_bos_skip_special")));
        assert_decode(t, json_object_get(k, "ids_without_bos"), 0,
                      json_string_value(json_object_get(k, "decoded_without_bos")));
        assert_stream_equals_decode(t, json_object_get(k, "ids_with_bos"));
        assert_stream_equals_decode(t, json_object_get(k, "ids_without_bos"));
    }
    json_decref(root);
}

static void encode_str(const lnx_tokenizer *t, const char *text, int add_special, int32_t **ids, size_t *n)
{
    lnx_status st = lnx_tokenizer_encode(t, text, strlen(text), add_special, ids, n);
    if (st != LNX_OK)
        print_error("encode \"%s\": %s\n", text, lnx_last_error());
    assert_int_equal(st, LNX_OK);
}

static void assert_encodes_to(const lnx_tokenizer *t, const char *text, int add_special, const int32_t *want, size_t nw)
{
    int32_t *ids;
    size_t n;
    encode_str(t, text, add_special, &ids, &n);
    int ok = n == nw && memcmp(ids, want, n * sizeof *ids) == 0;
    if (!ok) {
        print_error("encode \"%s\": got", text);
        for (size_t i = 0; i < n; i++)
            print_error(" %d", (int)ids[i]);
        print_error("\n");
    }
    assert_true(ok);
    free(ids);
}

#define ENCODES_TO(t, text, add, ...)                                                                                  \
    do {                                                                                                               \
        const int32_t want_[] = {__VA_ARGS__};                                                                         \
        assert_encodes_to((t), (text), (add), want_, sizeof want_ / sizeof want_[0]);                                  \
    } while (0)

/* Loads a tokenizer.json given as a jansson tree (and optional config). */
static lnx_status load_tree(lnx_tokenizer **t, const json_t *root, const char *config)
{
    char *s = json_dumps(root, JSON_COMPACT);
    assert_non_null(s);
    lnx_status st = lnx_tokenizer_load_buffer(t, s, strlen(s), config, config ? strlen(config) : 0, "test.json");
    free(s);
    return st;
}

/* ---- corpus ---- */

static void llama2_corpus_matches_reference(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_llama2();
    run_corpus(t, tu_data("tokenizer/llama2-cases.json"));
    lnx_tokenizer_free(t);
}

static void mistral_corpus_matches_reference(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_mistral();
    run_corpus(t, tu_data("tokenizer/mistral-cases.json"));
    lnx_tokenizer_free(t);
}

static void special_ids_and_pieces_are_reported(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_llama2();
    assert_int_equal(lnx_tokenizer_vocab_size(t), 32002);
    assert_int_equal(lnx_tokenizer_bos_id(t), 1);
    assert_int_equal(lnx_tokenizer_eos_id(t), 2);
    assert_int_equal(lnx_tokenizer_unk_id(t), 0);
    assert_int_equal(lnx_tokenizer_pad_id(t), 0);
    assert_true(lnx_tokenizer_adds_bos(t));
    assert_int_equal(lnx_tokenizer_token_id(t, "<video>"), 32000);
    assert_int_equal(lnx_tokenizer_token_id(t, "<image>"), 32001);
    assert_int_equal(lnx_tokenizer_token_id(t, "\xe2\x96\x81Hello"), 15043);
    assert_int_equal(lnx_tokenizer_token_id(t, "<0x0A>"), 13);
    assert_int_equal(lnx_tokenizer_token_id(t, "no such piece"), -1);
    assert_string_equal(lnx_tokenizer_piece(t, 32001), "<image>");
    assert_string_equal(lnx_tokenizer_piece(t, 29871), "\xe2\x96\x81");
    assert_null(lnx_tokenizer_piece(t, 32002));
    assert_null(lnx_tokenizer_piece(t, -1));
    assert_true(lnx_tokenizer_is_special(t, 32000));
    assert_true(lnx_tokenizer_is_special(t, 1));
    assert_false(lnx_tokenizer_is_special(t, 15043));
    assert_false(lnx_tokenizer_is_special(t, 99999));
    lnx_tokenizer_free(t);

    t = load_mistral();
    assert_int_equal(lnx_tokenizer_pad_id(t), -1);
    assert_int_equal(lnx_tokenizer_bos_id(t), 1);
    assert_int_equal(lnx_tokenizer_token_id(t, "\xe2\x96\x81Hello"), 22557);
    lnx_tokenizer_free(t);
}

static void missing_config_file_is_not_an_error(void **state)
{
    (void)state;
    lnx_tokenizer *t = NULL;
    assert_int_equal(lnx_tokenizer_load(&t, tu_data("tiny-a/tokenizer.json"), tu_data("tiny-a/no-such-config.json")),
                     LNX_OK);
    /* Without a config: BOS from the template, EOS "</s>", no pad. */
    assert_int_equal(lnx_tokenizer_bos_id(t), 1);
    assert_int_equal(lnx_tokenizer_eos_id(t), 2);
    assert_int_equal(lnx_tokenizer_pad_id(t), -1);
    ENCODES_TO(t, "Hello world", 1, 1, 15043, 3186);
    lnx_tokenizer_free(t);
    assert_int_equal(lnx_tokenizer_load(&t, tu_data("tiny-a/tokenizer.json"), NULL), LNX_OK);
    lnx_tokenizer_free(t);
}

static void config_add_eos_and_no_bos_change_the_template(void **state)
{
    (void)state;
    json_t *root = load_json(tu_data("tiny-a/tokenizer.json"));
    lnx_tokenizer *t = NULL;
    assert_int_equal(load_tree(&t, root, "{\"add_bos_token\": false, \"add_eos_token\": true, \"eos_token\": "
                                         "{\"content\": \"</s>\"}, \"model_max_length\": 1000000000000000019884624838656}"),
                     LNX_OK);
    assert_false(lnx_tokenizer_adds_bos(t));
    ENCODES_TO(t, "Hello world", 1, 15043, 3186, 2);
    lnx_tokenizer_free(t);
    json_decref(root);
}

/* ---- errors ---- */

static void invalid_utf8_is_rejected_with_its_offset(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_llama2();
    static const struct {
        const char *text;
        const char *offset;
    } bad[] = {
        {"abc\xff", "offset 3"},             /* never valid */
        {"ab\xc0\x80", "offset 2"},          /* overlong NUL */
        {"x\xed\xa0\x80", "offset 1"},       /* surrogate */
        {"hello \xe4\xbd", "offset 6"},      /* truncated at the end */
        {"\xf4\x90\x80\x80", "offset 0"},    /* above U+10FFFF */
        {"ok \x80 continuation", "offset 3"}, /* stray continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t *ids = (int32_t *)&ids;
        size_t n = 7;
        assert_int_equal(lnx_tokenizer_encode(t, bad[i].text, strlen(bad[i].text), 1, &ids, &n), LNX_E_INVALID);
        assert_null(ids);
        assert_int_equal(n, 0);
        assert_string_contains(lnx_last_error(), bad[i].offset);
    }
    lnx_tokenizer_free(t);
}

static void decode_rejects_unknown_ids(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_llama2();
    const int32_t ids[] = {1, 32002};
    char *s = NULL;
    size_t len;
    assert_int_equal(lnx_tokenizer_decode(t, ids, 2, 0, &s, &len), LNX_E_INVALID);
    assert_null(s);
    assert_string_contains(lnx_last_error(), "32002");
    lnx_detok d;
    lnx_detok_init(&d, t);
    char buf[64];
    assert_int_equal(lnx_detok_push(&d, -5, buf, sizeof buf, &len), LNX_E_INVALID);
    lnx_tokenizer_free(t);
}

/* Loads the Llama-2 tokenizer.json after `edit` changed it; checks the status and message. */
static void expect_load_error(void (*edit)(json_t *root), lnx_status want, const char *needle)
{
    json_t *root = load_json(tu_data("tiny-a/tokenizer.json"));
    edit(root);
    lnx_tokenizer *t = (lnx_tokenizer *)&t;
    lnx_status st = load_tree(&t, root, NULL);
    if (st != want)
        print_error("got %d (%s)\n", (int)st, lnx_last_error());
    assert_int_equal(st, want);
    assert_null(t);
    assert_string_contains(lnx_last_error(), needle);
    json_decref(root);
}

static void edit_no_model(json_t *root)
{
    json_object_del(root, "model");
}

static void edit_wordpiece_model(json_t *root)
{
    json_object_set_new(json_object_get(root, "model"), "type", json_string("WordPiece"));
}

static void edit_nfkc_normalizer(json_t *root)
{
    json_object_set_new(root, "normalizer", json_pack("{s:s}", "type", "NFKC"));
}

static void edit_nested_unknown_normalizer(json_t *root)
{
    json_object_set_new(root, "normalizer",
                        json_pack("{s:s, s:[{s:s, s:s}, {s:s}]}", "type", "Sequence", "normalizers", "type", "Prepend",
                                  "prepend", "x", "type", "Lowercase"));
}

/* ByteLevel is supported (byte-level BPE); its add_prefix_space form is not. */
static void edit_bytelevel_pretokenizer(json_t *root)
{
    json_object_set_new(root, "pre_tokenizer", json_pack("{s:s, s:b}", "type", "ByteLevel", "add_prefix_space", 1));
}

static void edit_merge_unknown_piece(json_t *root)
{
    json_array_append_new(json_object_get(json_object_get(root, "model"), "merges"), json_string("qqq zzz"));
}

static void edit_merge_bad_shape(json_t *root)
{
    json_array_append_new(json_object_get(json_object_get(root, "model"), "merges"), json_integer(5));
}

static void edit_unknown_decoder(json_t *root)
{
    json_object_set_new(root, "decoder", json_pack("{s:s}", "type", "WordPiece"));
}

static void edit_vocab_not_object(json_t *root)
{
    json_object_set_new(json_object_get(root, "model"), "vocab", json_array());
}

static void malformed_tokenizer_json_is_rejected(void **state)
{
    (void)state;
    lnx_tokenizer *t = (lnx_tokenizer *)&t;
    const char *not_json = "{\"model\": {\"type\": \"BPE\",";
    assert_int_equal(lnx_tokenizer_load_buffer(&t, not_json, strlen(not_json), NULL, 0, "broken.json"), LNX_E_FORMAT);
    assert_null(t);
    assert_string_contains(lnx_last_error(), "broken.json");
    assert_int_equal(lnx_tokenizer_load(&t, tu_data("no/such/tokenizer.json"), NULL), LNX_E_IO);
    assert_string_contains(lnx_last_error(), "tokenizer.json");

    expect_load_error(edit_no_model, LNX_E_FORMAT, "model");
    expect_load_error(edit_wordpiece_model, LNX_E_UNSUPPORTED, "WordPiece");
    expect_load_error(edit_nfkc_normalizer, LNX_E_UNSUPPORTED, "NFKC");
    expect_load_error(edit_nested_unknown_normalizer, LNX_E_UNSUPPORTED, "Lowercase");
    expect_load_error(edit_bytelevel_pretokenizer, LNX_E_UNSUPPORTED, "ByteLevel");
    expect_load_error(edit_merge_unknown_piece, LNX_E_FORMAT, "qqq");
    expect_load_error(edit_merge_bad_shape, LNX_E_FORMAT, "merges[61249]");
    expect_load_error(edit_unknown_decoder, LNX_E_UNSUPPORTED, "WordPiece");
    expect_load_error(edit_vocab_not_object, LNX_E_FORMAT, "vocab");
}

/* ---- streaming ---- */

static void stream_flushes_incomplete_bytes_as_replacement_chars(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_llama2();
    /* <0xE4> <0xBD> is the start of 你 (E4 BD A0): incomplete at the end, two U+FFFD. */
    const int32_t cut[] = {3 + 0xE4, 3 + 0xBD};
    char *s, *streamed;
    size_t len;
    assert_int_equal(lnx_tokenizer_decode(t, cut, 2, 1, &s, &len), LNX_OK);
    assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd");
    streamed = stream_all(t, cut, 2);
    assert_string_equal(streamed, s);
    free(s);
    free(streamed);

    /* A whole character arrives only with its last byte; a special token in between is skipped. */
    const int32_t whole[] = {15043, 3 + 0xE4, 2, 3 + 0xBD, 3 + 0xA0, 3186};
    lnx_detok d;
    lnx_detok_init(&d, t);
    char buf[64];
    const char *want[] = {"Hello", "", "", "", "\xe4\xbd\xa0", " world"};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(lnx_detok_push(&d, whole[i], buf, sizeof buf, &len), LNX_OK);
        assert_string_equal(buf, want[i]);
    }
    assert_int_equal(lnx_detok_flush(&d, buf, sizeof buf, &len), LNX_OK);
    assert_int_equal(len, 0);

    /* An invalid byte in a run: decode and stream agree from the first bad byte on. */
    const int32_t bad[] = {3 + 0xE4, 3 + 0x41, 3 + 0x42, 15043};
    assert_int_equal(lnx_tokenizer_decode(t, bad, 4, 1, &s, &len), LNX_OK);
    assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd Hello");
    streamed = stream_all(t, bad, 4);
    assert_string_equal(streamed, s);
    free(s);
    free(streamed);
    lnx_tokenizer_free(t);
}

static void stream_reports_a_small_buffer_and_keeps_its_state(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_llama2();
    lnx_detok d;
    lnx_detok_init(&d, t);
    char buf[64];
    size_t len;
    assert_int_equal(lnx_detok_push(&d, 15043, buf, 3, &len), LNX_E_LIMIT); /* "Hello" */
    assert_int_equal(len, 5);
    assert_int_equal(lnx_detok_push(&d, 15043, buf, sizeof buf, &len), LNX_OK);
    assert_string_equal(buf, "Hello"); /* the leading space is still stripped */
    lnx_tokenizer_free(t);
}

/* ---- a synthetic Yi-like tokenizer (64000 pieces, legacy normalizer, array merges) ---- */

#define YI_HELLO 63999
#define YI_WORLD 63998
#define YI_MARK 64000 /* non-special added token "[X]", lstrip + rstrip */
#define YI_ZZ 64001   /* non-special added token "zz", single_word */
#define YI_DD 64002   /* normalized added token "dd" */

static const char *const yi_base[] = {"\xe2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "a", "z", "i"};
static const char *const yi_merges[][2] = {
    {"\xe2\x96\x81", "h"}, {"l", "l"}, {"\xe2\x96\x81h", "e"}, {"\xe2\x96\x81he", "ll"}, {"\xe2\x96\x81hell", "o"},
    {"o", "r"}, {"\xe2\x96\x81", "w"}, {"\xe2\x96\x81w", "or"}, {"l", "d"}, {"\xe2\x96\x81wor", "ld"},
};
static const char *const yi_merged[] = {"\xe2\x96\x81h", "ll", "\xe2\x96\x81he", "\xe2\x96\x81hell", "or",
                                        "\xe2\x96\x81w", "\xe2\x96\x81wor", "ld", "\xe2\x96\x81hi"};

static int32_t yi_base_id(int i)
{
    return 259 + i;
}

static json_t *added(int id, const char *content, int special, int lstrip, int rstrip, int single, int normalized)
{
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content, "special", special, "lstrip",
                     lstrip, "rstrip", rstrip, "single_word", single, "normalized", normalized);
}

static json_t *yi_tokenizer(int ignore_merges)
{
    json_t *vocab = json_object();
    json_object_set_new(vocab, "<unk>", json_integer(0));
    json_object_set_new(vocab, "<|startoftext|>", json_integer(1));
    json_object_set_new(vocab, "<|endoftext|>", json_integer(2));
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        json_object_set_new(vocab, name, json_integer(3 + b));
    }
    int next = 259;
    for (size_t i = 0; i < sizeof yi_base / sizeof yi_base[0]; i++)
        json_object_set_new(vocab, yi_base[i], json_integer(next++));
    for (size_t i = 0; i < sizeof yi_merged / sizeof yi_merged[0]; i++)
        json_object_set_new(vocab, yi_merged[i], json_integer(next++));
    while (next < YI_WORLD) {
        char name[16];
        snprintf(name, sizeof name, "f%05d", next);
        json_object_set_new(vocab, name, json_integer(next++));
    }
    json_object_set_new(vocab, "\xe2\x96\x81world", json_integer(YI_WORLD));
    json_object_set_new(vocab, "\xe2\x96\x81hello", json_integer(YI_HELLO));
    json_t *merges = json_array();
    for (size_t i = 0; i < sizeof yi_merges / sizeof yi_merges[0]; i++)
        json_array_append_new(merges, json_pack("[s, s]", yi_merges[i][0], yi_merges[i][1]));
    json_t *model = json_pack("{s:s, s:s, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "unk_token", "<unk>",
                              "byte_fallback", 1, "fuse_unk", 1, "ignore_merges", ignore_merges, "vocab", vocab,
                              "merges", merges);
    json_t *added_tokens = json_pack("[o, o, o, o, o, o]", added(0, "<unk>", 1, 0, 0, 0, 0),
                                     added(1, "<|startoftext|>", 1, 0, 0, 0, 0), added(2, "<|endoftext|>", 1, 0, 0, 0, 0),
                                     added(YI_MARK, "[X]", 0, 1, 1, 0, 0), added(YI_ZZ, "zz", 0, 0, 0, 1, 0),
                                     added(YI_DD, "dd", 0, 0, 0, 0, 1));
    json_t *normalizer = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence", "normalizers",
                                   "type", "Prepend", "prepend", "\xe2\x96\x81", "type", "Replace", "pattern", "String",
                                   " ", "content", "\xe2\x96\x81");
    json_t *post = json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}", "type",
                             "TemplateProcessing", "single", "SpecialToken", "id", "<|startoftext|>", "type_id", 0,
                             "Sequence", "id", "A", "type_id", 0, "special_tokens", "<|startoftext|>", "id",
                             "<|startoftext|>", "ids", 1, "tokens", "<|startoftext|>");
    json_t *decoder = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence",
                                "decoders", "type", "Replace", "pattern", "String", "\xe2\x96\x81", "content", " ",
                                "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start", 1,
                                "stop", 0);
    json_t *root = json_pack("{s:s, s:o, s:o, s:n, s:o, s:o, s:o}", "version", "1.0", "added_tokens", added_tokens,
                             "normalizer", normalizer, "pre_tokenizer", "post_processor", post, "decoder", decoder,
                             "model", model);
    assert_non_null(root);
    return root;
}

static void yi_like_64000_piece_tokenizer_encodes(void **state)
{
    (void)state;
    json_t *root = yi_tokenizer(0);
    lnx_tokenizer *t = NULL;
    lnx_status st = load_tree(&t, root, NULL);
    if (st != LNX_OK)
        print_error("%s\n", lnx_last_error());
    assert_int_equal(st, LNX_OK);
    assert_int_equal(lnx_tokenizer_vocab_size(t), 64003);
    assert_int_equal(lnx_tokenizer_bos_id(t), 1);
    assert_int_equal(lnx_tokenizer_eos_id(t), -1); /* no config and no "</s>" */
    assert_int_equal(lnx_tokenizer_unk_id(t), 0);

    const int32_t h = yi_base_id(11), ll = yi_base_id(12), o = yi_base_id(4), i_ = yi_base_id(10);
    const int32_t sp = yi_base_id(0), a = yi_base_id(8), z = yi_base_id(9);
    ENCODES_TO(t, "hello world", 1, 1, YI_HELLO, YI_WORLD);
    ENCODES_TO(t, "hello<|endoftext|>", 0, YI_HELLO, 2);
    /* é is not in the vocabulary: byte fallback. */
    ENCODES_TO(t, "h\xc3\xa9llo", 0, h, 3 + 0xC3, 3 + 0xA9, ll, o);
    ENCODES_TO(t, "hi", 0, h, i_); /* "▁hi" is a piece but no merge makes it */
    /* lstrip/rstrip take the spaces around [X]; the rest is normalized piece by piece. */
    ENCODES_TO(t, "hello  [X] world", 0, YI_HELLO, YI_MARK, YI_WORLD);
    /* single_word: "zz" only as a whole word. */
    ENCODES_TO(t, "zz", 0, YI_ZZ);
    ENCODES_TO(t, "azz", 0, sp, a, z, z);
    /* A normalized added token is matched in normalized text ("dd" -> "▁dd"). */
    ENCODES_TO(t, "a dd", 0, sp, a, YI_DD);

    const int32_t ids[] = {1, YI_HELLO, YI_WORLD, 3 + 0xC3, 3 + 0xA9};
    char *s;
    size_t len;
    assert_int_equal(lnx_tokenizer_decode(t, ids, 5, 0, &s, &len), LNX_OK);
    assert_string_equal(s, "<|startoftext|> hello world\xc3\xa9");
    free(s);
    assert_int_equal(lnx_tokenizer_decode(t, ids, 5, 1, &s, &len), LNX_OK);
    assert_string_equal(s, "hello world\xc3\xa9");
    char *streamed = stream_all(t, ids, 5);
    assert_string_equal(streamed, s);
    free(streamed);
    free(s);
    lnx_tokenizer_free(t);

    /* The config names EOS and turns the template into "$A </s>". */
    assert_int_equal(load_tree(&t, root, "{\"add_bos_token\": false, \"add_eos_token\": true, "
                                         "\"eos_token\": \"<|endoftext|>\", \"pad_token\": \"<unk>\"}"),
                     LNX_OK);
    assert_int_equal(lnx_tokenizer_eos_id(t), 2);
    assert_int_equal(lnx_tokenizer_pad_id(t), 0);
    ENCODES_TO(t, "hello", 1, YI_HELLO, 2);
    lnx_tokenizer_free(t);
    json_decref(root);

    /* ignore_merges: a word that is a piece is taken whole. */
    root = yi_tokenizer(1);
    assert_int_equal(load_tree(&t, root, NULL), LNX_OK);
    ENCODES_TO(t, "hi", 0, lnx_tokenizer_token_id(t, "\xe2\x96\x81hi"));
    ENCODES_TO(t, "hello", 0, YI_HELLO);
    lnx_tokenizer_free(t);
    json_decref(root);
}

/* ---- long input ---- */

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

static void check_long_text(const lnx_tokenizer *t, const char *text, int32_t hello, int32_t world, int32_t space)
{
    size_t times = 8000; /* "Hello world " x 8000 = 96 KB, one pre-token for both tokenizers */
    int32_t *ids;
    size_t n;
    encode_str(t, text, 1, &ids, &n);
    assert_int_equal(n, 2 * times + 2);
    assert_int_equal(ids[0], 1);
    for (size_t i = 0; i < times; i++) {
        assert_int_equal(ids[1 + 2 * i], hello);
        assert_int_equal(ids[2 + 2 * i], world);
    }
    assert_int_equal(ids[n - 1], space);
    char *s;
    size_t len;
    assert_int_equal(lnx_tokenizer_decode(t, ids, n, 1, &s, &len), LNX_OK);
    assert_string_equal(s, text);
    free(s);
    free(ids);
}

static void long_text_encodes(void **state)
{
    (void)state;
    char *text = repeat("Hello world ", 8000);
    lnx_tokenizer *t = load_llama2();
    check_long_text(t, text, 15043, 3186, 29871);
    lnx_tokenizer_free(t);
    t = load_mistral();
    check_long_text(t, text, 22557, 1526, 28705);

    /* A 100 KB word without spaces (worst case for the merge loop), round trip. */
    char *word = repeat("abracadabra", 10000);
    int32_t *ids;
    size_t n;
    encode_str(t, word, 0, &ids, &n);
    assert_true(n > 10000);
    char *s;
    size_t len;
    assert_int_equal(lnx_tokenizer_decode(t, ids, n, 1, &s, &len), LNX_OK);
    assert_string_equal(s, word);
    free(s);
    free(ids);
    free(word);
    lnx_tokenizer_free(t);
    free(text);
}

static void empty_text_gives_only_the_template(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_llama2();
    int32_t *ids;
    size_t n;
    assert_int_equal(lnx_tokenizer_encode(t, NULL, 0, 0, &ids, &n), LNX_OK);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    ENCODES_TO(t, "", 1, 1);
    /* NUL bytes are text too (byte fallback). */
    assert_int_equal(lnx_tokenizer_encode(t, "a\0b", 3, 0, &ids, &n), LNX_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 3);
    free(ids);
    lnx_tokenizer_free(t);
}

/* ---- byte-level BPE (Qwen2 style: NFC, split regex, ByteLevel) ---- */

static void qwen2_bytelevel_corpus_matches_reference(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_qwen2_tiny();
    run_corpus(t, tu_data("tokenizer/qwen2-tiny-cases.json"));
    /* no BOS; EOS and pad from tokenizer_config.json */
    assert_int_equal(lnx_tokenizer_bos_id(t), -1);
    assert_int_equal(lnx_tokenizer_eos_id(t), lnx_tokenizer_token_id(t, "<|im_end|>"));
    assert_int_equal(lnx_tokenizer_pad_id(t), lnx_tokenizer_token_id(t, "<|endoftext|>"));
    assert_false(lnx_tokenizer_adds_bos(t));
    lnx_tokenizer_free(t);
}

static void qwen2_bytelevel_partial_characters(void **state)
{
    (void)state;
    lnx_tokenizer *t = load_qwen2_tiny();
    /* U+1F600 (F0 9F 98 80) as its four byte pieces: nothing until the last byte, then the character */
    static const char *const bytes[4] = { "\xc3\xb0", "\xc5\x81", "\xc4\xba", "\xc4\xa2" }; /* F0 9F 98 80 */
    int32_t ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = lnx_tokenizer_token_id(t, bytes[i]);
        assert_true(ids[i] >= 0);
    }
    lnx_detok d;
    lnx_detok_init(&d, t);
    char piece[64];
    size_t len;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lnx_detok_push(&d, ids[i], piece, sizeof piece, &len), LNX_OK);
        assert_int_equal(len, 0);
    }
    assert_int_equal(lnx_detok_push(&d, ids[3], piece, sizeof piece, &len), LNX_OK);
    assert_string_equal(piece, "\xf0\x9f\x98\x80");
    /* an incomplete character at the end is one U+FFFD (from_utf8_lossy), in decode and stream */
    char *out;
    assert_int_equal(lnx_tokenizer_decode(t, ids, 2, 0, &out, &len), LNX_OK);
    assert_string_equal(out, "\xef\xbf\xbd");
    free(out);
    assert_int_equal(lnx_detok_push(&d, ids[0], piece, sizeof piece, &len), LNX_OK);
    assert_int_equal(lnx_detok_push(&d, ids[1], piece, sizeof piece, &len), LNX_OK);
    assert_int_equal(lnx_detok_flush(&d, piece, sizeof piece, &len), LNX_OK);
    assert_string_equal(piece, "\xef\xbf\xbd");
    /* a continuation byte alone, then a whole character: U+FFFD then the character */
    int32_t mixed[5] = { ids[3], ids[0], ids[1], ids[2], ids[3] };
    assert_int_equal(lnx_tokenizer_decode(t, mixed, 5, 0, &out, &len), LNX_OK);
    assert_string_equal(out, "\xef\xbf\xbd\xf0\x9f\x98\x80");
    free(out);
    /* NFC: a decomposed e + combining acute encodes like the precomposed character */
    int32_t *a, *b;
    size_t na, nb;
    assert_int_equal(lnx_tokenizer_encode(t, "caf\x65\xcc\x81", 6, 0, &a, &na), LNX_OK);
    assert_int_equal(lnx_tokenizer_encode(t, "caf\xc3\xa9", 5, 0, &b, &nb), LNX_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a);
    free(b);
    lnx_tokenizer_free(t);
}

static void bytelevel_unsupported_forms_are_refused(void **state)
{
    (void)state;
    json_error_t err;
    json_t *root = json_load_file(tu_data("tiny-ov/tokenizer.json"), 0, &err);
    assert_non_null(root);
    json_t *split = json_array_get(json_object_get(json_object_get(root, "pre_tokenizer"), "pretokenizers"), 0);
    lnx_tokenizer *t = NULL;
    /* a regex that does not compile */
    json_object_set_new(json_object_get(split, "pattern"), "Regex", json_string("(unclosed"));
    assert_int_equal(load_tree(&t, root, NULL), LNX_E_UNSUPPORTED);
    assert_non_null(strstr(lnx_last_error(), "regex"));
    /* behaviours other than Isolated */
    json_object_set_new(json_object_get(split, "pattern"), "Regex", json_string("\\s+"));
    json_object_set_new(split, "behavior", json_string("Removed"));
    assert_int_equal(load_tree(&t, root, NULL), LNX_E_UNSUPPORTED);
    assert_null(t);
    /* \C could split a character */
    json_object_set_new(split, "behavior", json_string("Isolated"));
    json_object_set_new(json_object_get(split, "pattern"), "Regex", json_string("\\C"));
    assert_int_equal(load_tree(&t, root, NULL), LNX_E_UNSUPPORTED);
    /* a pattern that matches the empty string splits nothing there and terminates */
    json_object_set_new(json_object_get(split, "pattern"), "Regex", json_string("x*"));
    assert_int_equal(load_tree(&t, root, NULL), LNX_OK);
    int32_t *ids;
    size_t n;
    assert_int_equal(lnx_tokenizer_encode(t, "a xx b\xc3\xa9", 8, 0, &ids, &n), LNX_OK);
    assert_true(n > 0);
    char *back;
    size_t len;
    assert_int_equal(lnx_tokenizer_decode(t, ids, n, 0, &back, &len), LNX_OK);
    assert_string_equal(back, "a xx b\xc3\xa9");
    free(back);
    free(ids);
    lnx_tokenizer_free(t);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama2_corpus_matches_reference),
        cmocka_unit_test(mistral_corpus_matches_reference),
        cmocka_unit_test(special_ids_and_pieces_are_reported),
        cmocka_unit_test(missing_config_file_is_not_an_error),
        cmocka_unit_test(config_add_eos_and_no_bos_change_the_template),
        cmocka_unit_test(invalid_utf8_is_rejected_with_its_offset),
        cmocka_unit_test(decode_rejects_unknown_ids),
        cmocka_unit_test(malformed_tokenizer_json_is_rejected),
        cmocka_unit_test(stream_flushes_incomplete_bytes_as_replacement_chars),
        cmocka_unit_test(stream_reports_a_small_buffer_and_keeps_its_state),
        cmocka_unit_test(yi_like_64000_piece_tokenizer_encodes),
        cmocka_unit_test(long_text_encodes),
        cmocka_unit_test(empty_text_gives_only_the_template),
        cmocka_unit_test(qwen2_bytelevel_corpus_matches_reference),
        cmocka_unit_test(qwen2_bytelevel_partial_characters),
        cmocka_unit_test(bytelevel_unsupported_forms_are_refused),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
}
