/* Loading checkpoints through the public API: every dtype, shard layouts, both tensor-name
 * layouts, the no-copy guarantee of mmap, and a catalogue of broken checkpoints each with its
 * own status and a message naming the file and tensor. */
#include "../common/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/dtype.h"
#include "base/half.h"
#include "io/safetensors.h"
#include "llavanext/llavanext.h"

static const char *small_files[] = { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                     "special_tokens_map.json", "added_tokens.json", "preprocessor_config.json",
                                     "processor_config.json", "chat_template.json" };

/* A temporary checkpoint directory holding tiny-a's small files (no weights). */
static char *make_dir(void)
{
    char *dir = tu_tempdir();
    assert_non_null(dir);
    for (size_t i = 0; i < sizeof small_files / sizeof small_files[0]; i++) {
        char rel[128], dst[4096];
        snprintf(rel, sizeof rel, "tiny-a/%s", small_files[i]);
        size_t n;
        char *data = tu_read_file(tu_data(rel), &n);
        assert_non_null(data);
        snprintf(dst, sizeof dst, "%s/%s", dir, small_files[i]);
        assert_int_equal(tu_write_file(dst, data, n), 0);
        free(data);
    }
    return dir;
}

static void put(const char *dir, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(path, data, n), 0);
}

static void put_str(const char *dir, const char *name, const char *s)
{
    put(dir, name, s, strlen(s));
}

static void copy_weights(const char *dir)
{
    size_t n;
    char *data = tu_read_file(tu_data("tiny-a/model.safetensors"), &n);
    put(dir, "model.safetensors", data, n);
    free(data);
}

typedef enum { XF_NONE, XF_TO_F32, XF_TO_F16, XF_RENAME_NEW, XF_BAD_DTYPE, XF_BAD_SHAPE, XF_DROP, XF_NAN } xform;

static const char *victim = "language_model.model.layers.1.mlp.up_proj.weight";
/* the tensor XF_DROP leaves out (the victim unless a test says otherwise) */
static const char *dropped;

static char *new_name(const char *n)
{
    char buf[512];
    if (strncmp(n, "language_model.model.", 21) == 0)
        snprintf(buf, sizeof buf, "model.language_model.%s", n + 21);
    else if (strcmp(n, "language_model.lm_head.weight") == 0)
        snprintf(buf, sizeof buf, "lm_head.weight");
    else
        snprintf(buf, sizeof buf, "model.%s", n);
    return strdup(buf);
}

/* Rewrites tiny-a's weights with a transformation into one or two files of `dir`. */
static void write_weights(const char *dir, xform x, int shards)
{
    lnx_st *st;
    assert_int_equal(lnx_st_open(&st, tu_data("tiny-a/model.safetensors"), LNX_ST_READ), LNX_OK);
    lnx_st_writer *w[2];
    assert_int_equal(lnx_st_writer_create(&w[0]), LNX_OK);
    assert_int_equal(lnx_st_writer_create(&w[1]), LNX_OK);
    char *index = malloc(1 << 20);
    size_t il = (size_t)sprintf(index, "{\"metadata\": {}, \"weight_map\": {");
    for (size_t i = 0; i < lnx_st_count(st); i++) {
        const lnx_st_tensor *t = lnx_st_at(st, i);
        int shard = shards == 2 ? (int)(i % 2) : 0;
        char *name = x == XF_RENAME_NEW ? new_name(t->name) : strdup(t->name);
        int is_victim = strcmp(t->name, victim) == 0;
        if (x == XF_DROP && strcmp(t->name, dropped ? dropped : victim) == 0) {
            free(name);
            continue;
        }
        size_t n = (size_t)t->numel;
        float *f = malloc(n * 4 + 4);
        lnx_widen(LNX_DT_BF16, t->data, f, n);
        int64_t shape[8];
        memcpy(shape, t->shape, sizeof shape);
        lnx_st_dtype dt = LNX_ST_BF16;
        void *data = (void *)t->data;
        uint16_t *h = NULL;
        if (x == XF_TO_F32) {
            dt = LNX_ST_F32;
            data = f;
        } else if (x == XF_TO_F16) {
            h = malloc(n * 2 + 2);
            lnx_f32_to_f16_n(f, h, n);
            dt = LNX_ST_F16;
            data = h;
        } else if (x == XF_BAD_DTYPE && is_victim) {
            dt = LNX_ST_I16;
        } else if (x == XF_BAD_SHAPE && is_victim) {
            shape[0] = t->shape[1];
            shape[1] = t->shape[0];
        } else if (x == XF_NAN && is_victim) {
            h = malloc(n * 2 + 2);
            memcpy(h, t->data, n * 2);
            h[5] = 0x7fc0;
            data = h;
        }
        assert_int_equal(lnx_st_writer_add(w[shard], name, dt, t->ndim, shape, data), LNX_OK);
        il += (size_t)sprintf(index + il, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", il > 40 ? ", " : "", name,
                              shard + 1);
        free(name);
        free(f);
        free(h);
    }
    il += (size_t)sprintf(index + il, "}}");
    char path[4096];
    if (shards == 2) {
        for (int s = 0; s < 2; s++) {
            snprintf(path, sizeof path, "%s/model-0000%d-of-00002.safetensors", dir, s + 1);
            assert_int_equal(lnx_st_writer_save(w[s], path), LNX_OK);
        }
        put(dir, "model.safetensors.index.json", index, il);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        assert_int_equal(lnx_st_writer_save(w[0], path), LNX_OK);
    }
    free(index);
    lnx_st_writer_free(w[0]);
    lnx_st_writer_free(w[1]);
    lnx_st_close(st);
}

static llavanext_status load(const char *dir, int32_t mode, llavanext_model **out)
{
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    p.load_mode = mode;
    p.check_finite = 1;
    return llavanext_model_load(out, dir, &p);
}

static void expect_failure(const char *dir, llavanext_status want, const char *needle1, const char *needle2)
{
    llavanext_model *m = (llavanext_model *)1;
    llavanext_status st = load(dir, LLAVANEXT_LOAD_MMAP, &m);
    if (st != want)
        fail_msg("expected status %d, got %d: %s", want, st, llavanext_last_error());
    assert_null(m);
    const char *msg = llavanext_last_error();
    printf("    %s\n", msg);
    if (needle1)
        assert_string_contains(msg, needle1);
    if (needle2)
        assert_string_contains(msg, needle2);
}

/* Greedy tokens of a short text prompt: equal for equal weights. */
static void greedy(llavanext_model *m, int32_t out[8])
{
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.temperature = 0;
    gp.max_new_tokens = 8;
    gp.threads = 1;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, m, &gp), LLAVANEXT_OK);
    const char *prompt = "USER: Hello there ASSISTANT:";
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    for (int i = 0; i < 8; i++) {
        out[i] = -1;
        if (llavanext_generator_next(g, NULL, NULL, &out[i]) != LLAVANEXT_OK)
            break;
    }
    llavanext_generator_free(g);
}

static int32_t reference_tokens[8];

static void single_file_bf16_loads_in_both_modes(void **s)
{
    (void)s;
    llavanext_model *a, *b;
    assert_int_equal(load(tu_data("tiny-a"), LLAVANEXT_LOAD_MMAP, &a), LLAVANEXT_OK);
    assert_int_equal(load(tu_data("tiny-a"), LLAVANEXT_LOAD_READ, &b), LLAVANEXT_OK);
    int32_t tb[8];
    greedy(a, reference_tokens);
    greedy(b, tb);
    assert_memory_equal(reference_tokens, tb, sizeof tb);
    assert_int_equal(llavanext_model_vocab_size(a), 32064);
    assert_int_equal(llavanext_model_context_length(a, 0), 512);
    assert_int_equal(llavanext_model_context_length(a, 1), 256);
    assert_int_equal(llavanext_model_tokens_per_frame(a, 0), 4);
    assert_int_equal(llavanext_model_tokens_per_frame(a, 1), 16);
    assert_int_equal(llavanext_model_token_id(a, LLAVANEXT_TOKEN_VIDEO), 32000);
    assert_int_equal(llavanext_model_token_id(a, LLAVANEXT_TOKEN_IMAGE), 32001);
    assert_int_equal(llavanext_model_token_id(a, LLAVANEXT_TOKEN_BOS), 1);
    assert_int_equal(llavanext_model_token_id(a, LLAVANEXT_TOKEN_EOS), 2);
    assert_int_equal(llavanext_model_token_id(a, 99), -1);
    assert_int_equal(llavanext_model_image_tokens(a, 80, 120), 70);
    assert_int_equal(llavanext_model_image_tokens(a, 130, 50), 66);
    char *desc;
    assert_int_equal(llavanext_model_describe(&desc, a), LLAVANEXT_OK);
    assert_string_contains(desc, "\"tokens_per_frame\": 4");
    llavanext_free(desc);
    /* the model outlives its user's reference while a generator holds it */
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, a, NULL), LLAVANEXT_OK);
    llavanext_model_free(a);
    llavanext_generator_free(g);
    llavanext_model_free(b);
    llavanext_model_free(NULL);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void mmap_load_does_not_copy_the_weights(void **s)
{
    (void)s;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* AddressSanitizer's shadow memory and redzones make resident-size deltas meaningless */
#endif
    struct stat sb;
    assert_int_equal(stat(tu_data("tiny-a/model.safetensors"), &sb), 0);
    long file_kb = (long)(sb.st_size / 1024);
    llavanext_model *m;
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    /* a first load and free leaves the heap the tokenizer and the bound tensors need (about 3 MiB,
     * independent of the weights) free for reuse, so the measured loads see only what the load
     * mode itself adds */
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_OK);
    llavanext_model_free(m);
    long before = rss_kb();
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_OK);
    long grown = rss_kb() - before;
    printf("    mmap: resident +%ld KiB for a %ld KiB checkpoint\n", grown, file_kb);
    assert_true(grown < file_kb / 4);
    llavanext_model_free(m);
    before = rss_kb();
    p.load_mode = LLAVANEXT_LOAD_READ;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_OK);
    grown = rss_kb() - before;
    printf("    read: resident +%ld KiB\n", grown);
    assert_true(grown >= file_kb * 3 / 4);
    llavanext_model_free(m);
}

static void check_variant(xform x, int shards)
{
    char *dir = make_dir();
    write_weights(dir, x, shards);
    llavanext_model *m;
    if (load(dir, LLAVANEXT_LOAD_MMAP, &m) != LLAVANEXT_OK)
        fail_msg("load: %s", llavanext_last_error());
    int32_t t[8];
    greedy(m, t);
    if (x != XF_TO_F16)
        assert_memory_equal(t, reference_tokens, sizeof t);
    llavanext_model_free(m);
    tu_rmtree(dir);
    free(dir);
}

static void f32_weights_give_identical_tokens(void **s) { (void)s; check_variant(XF_TO_F32, 1); }
static void f16_weights_load(void **s) { (void)s; check_variant(XF_TO_F16, 1); }
static void sharded_index_loads(void **s) { (void)s; check_variant(XF_NONE, 2); }
static void newer_name_layout_loads(void **s) { (void)s; check_variant(XF_RENAME_NEW, 2); }

static void broken_weight(xform x, llavanext_status want, const char *n1, const char *n2)
{
    char *dir = make_dir();
    write_weights(dir, x, 1);
    expect_failure(dir, want, n1, n2);
    tu_rmtree(dir);
    free(dir);
}

static void wrong_dtype_is_named(void **s) { (void)s; broken_weight(XF_BAD_DTYPE, LLAVANEXT_E_FORMAT, victim, "I16"); }
static void wrong_shape_is_named(void **s) { (void)s; broken_weight(XF_BAD_SHAPE, LLAVANEXT_E_FORMAT, victim, "[64, 160]"); }
static void missing_tensor_is_named(void **s) { (void)s; broken_weight(XF_DROP, LLAVANEXT_E_FORMAT, victim, "missing"); }
static void nan_weight_is_found_on_demand(void **s) { (void)s; broken_weight(XF_NAN, LLAVANEXT_E_FORMAT, victim, "NaN"); }

/* Raw byte surgery on the single file. */
static void broken_file(void (*edit)(unsigned char *buf, size_t *n), llavanext_status want, const char *n1,
                        const char *n2)
{
    char *dir = make_dir();
    size_t n;
    unsigned char *buf = (unsigned char *)tu_read_file(tu_data("tiny-a/model.safetensors"), &n);
    edit(buf, &n);
    put(dir, "model.safetensors", buf, n);
    free(buf);
    expect_failure(dir, want, n1, n2);
    tu_rmtree(dir);
    free(dir);
}

static void cut_in_half(unsigned char *b, size_t *n) { (void)b; *n /= 2; }
static void huge_header(unsigned char *b, size_t *n) { (void)n; b[5] = 0x01; }
static void tiny_file(unsigned char *b, size_t *n) { (void)b; *n = 5; }
static void bad_json_header(unsigned char *b, size_t *n) { (void)n; b[8] = '['; b[9] = '!'; }

static uint64_t header_len(const unsigned char *b)
{
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = (h << 8) | b[i];
    return h;
}

/* Rewrites the first data_offsets [a, b] pair found after `after`. */
static void patch_offsets(unsigned char *b, const char *tensor, const char *replacement)
{
    char *hdr = (char *)b + 8;
    size_t hl = (size_t)header_len(b);
    char save = hdr[hl];
    hdr[hl] = '\0';
    char *t = strstr(hdr, tensor);
    assert_non_null(t);
    char *o = strstr(t, "\"data_offsets\":[");
    assert_non_null(o);
    o += strlen("\"data_offsets\":[");
    char *end = strchr(o, ']');
    size_t old = (size_t)(end - o), rl = strlen(replacement);
    assert_true(rl <= old);
    memcpy(o, replacement, rl);
    memset(o + rl, ' ', old - rl);
    hdr[hl] = save;
}

static void overlap_edit(unsigned char *b, size_t *n)
{
    (void)n;
    /* image_newline is the first tensor (bytes 0..128): point the lm_head into it */
    patch_offsets(b, "\"language_model.lm_head.weight\"", "64,4104256");
}

static void out_of_bounds_edit(unsigned char *b, size_t *n)
{
    (void)n;
    /* the LM head's data now ends far past the end of the file */
    patch_offsets(b, "\"language_model.lm_head.weight\"", "1,99999999");
}

static void truncated_shard_is_reported(void **s) { (void)s; broken_file(cut_in_half, LLAVANEXT_E_FORMAT, "model.safetensors", "past the end"); }
static void header_longer_than_file(void **s) { (void)s; broken_file(huge_header, LLAVANEXT_E_FORMAT, "model.safetensors", "header length"); }
static void file_too_short(void **s) { (void)s; broken_file(tiny_file, LLAVANEXT_E_FORMAT, "model.safetensors", "too short"); }
static void malformed_header_json(void **s) { (void)s; broken_file(bad_json_header, LLAVANEXT_E_FORMAT, "model.safetensors", "invalid JSON"); }
static void overlapping_offsets(void **s) { (void)s; broken_file(overlap_edit, LLAVANEXT_E_FORMAT, "overlap", "language_model.lm_head.weight"); }
static void out_of_bounds_offsets(void **s) { (void)s; broken_file(out_of_bounds_edit, LLAVANEXT_E_FORMAT, "language_model.lm_head.weight", "past the end"); }

static void missing_files_are_named(void **s)
{
    (void)s;
    expect_failure("/nonexistent/checkpoint", LLAVANEXT_E_IO, "/nonexistent/checkpoint", "not a directory");
    char *dir = make_dir();
    expect_failure(dir, LLAVANEXT_E_IO, "model.safetensors", NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    copy_weights(dir);
    expect_failure(dir, LLAVANEXT_E_IO, "tokenizer.json", NULL);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    expect_failure(dir, LLAVANEXT_E_IO, "config.json", NULL);
    tu_rmtree(dir);
    free(dir);
}

static void index_naming_missing_shard(void **s)
{
    (void)s;
    char *dir = make_dir();
    write_weights(dir, XF_NONE, 2);
    char path[4096];
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    unlink(path);
    expect_failure(dir, LLAVANEXT_E_IO, "model-00002-of-00002.safetensors", NULL);
    put_str(dir, "model.safetensors.index.json", "{\"weight_map\": {\"image_newline\": \"../../etc/passwd\"}}");
    expect_failure(dir, LLAVANEXT_E_FORMAT, "plain file name", NULL);
    tu_rmtree(dir);
    free(dir);
}

static void config_errors(void **s)
{
    (void)s;
    char *dir = make_dir();
    copy_weights(dir);
    put_str(dir, "config.json", "{\"model_type\": \"llava_next_video\",\n  \"text_config\": {,}}");
    expect_failure(dir, LLAVANEXT_E_FORMAT, "config.json:2", NULL);
    put_str(dir, "config.json", "{\"model_type\": \"qwen2_vl\"}");
    expect_failure(dir, LLAVANEXT_E_UNSUPPORTED, "qwen2_vl", NULL);
    size_t n;
    char *cfg = tu_read_file(tu_data("tiny-a/config.json"), &n);
    char *at = strstr(cfg, "\"gelu\"");
    assert_non_null(at);
    char *bad = malloc(n + 32);
    sprintf(bad, "%.*s\"swiglu_xyz\"%s", (int)(at - cfg), cfg, at + 6);
    put_str(dir, "config.json", bad);
    expect_failure(dir, LLAVANEXT_E_UNSUPPORTED, "swiglu_xyz", "projector_hidden_act");
    at = strstr(cfg, "\"rope_type\": \"linear\"");
    assert_non_null(at);
    sprintf(bad, "%.*s\"rope_type\": \"yarn\"%s", (int)(at - cfg), cfg, at + strlen("\"rope_type\": \"linear\""));
    put_str(dir, "config.json", bad);
    expect_failure(dir, LLAVANEXT_E_UNSUPPORTED, "yarn", NULL);
    free(bad);
    free(cfg);
    put_str(dir, "config.json", "[1, 2]");
    expect_failure(dir, LLAVANEXT_E_FORMAT, "not a JSON object", NULL);
    tu_rmtree(dir);
    free(dir);
}

static void tokenizer_and_template_errors(void **s)
{
    (void)s;
    char *dir = make_dir();
    copy_weights(dir);
    put_str(dir, "tokenizer.json", "{\"model\": ");
    expect_failure(dir, LLAVANEXT_E_FORMAT, "tokenizer.json", NULL);
    size_t n;
    char *tj = tu_read_file(tu_data("tiny-a/tokenizer.json"), &n);
    put(dir, "tokenizer.json", tj, n);
    free(tj);
    put_str(dir, "chat_template.json", "{\"chat_template\": \"{% for m in messages %}{{ m.content \"}");
    expect_failure(dir, LLAVANEXT_E_TEMPLATE, "chat_template", NULL);
    tu_rmtree(dir);
    free(dir);
}

static void no_weights_mode_serves_text_only(void **s)
{
    (void)s;
    char *dir = make_dir(); /* no model.safetensors at all */
    llavanext_model *m;
    assert_int_equal(load(dir, LLAVANEXT_LOAD_NO_WEIGHTS, &m), LLAVANEXT_OK);
    int32_t *ids;
    size_t nids;
    assert_int_equal(llavanext_model_tokenize(&ids, &nids, m, "Hello", 5, 1), LLAVANEXT_OK);
    assert_int_equal(nids, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 15043);
    char *text;
    assert_int_equal(llavanext_model_detokenize(&text, m, ids, nids, 1), LLAVANEXT_OK);
    assert_string_equal(text, "Hello");
    llavanext_free(text);
    llavanext_free(ids);
    assert_int_equal(llavanext_model_tokenize(&ids, &nids, m, "bad \xff utf8", 10, 1), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(ids);
    int32_t bad_id = 40000;
    assert_int_equal(llavanext_model_detokenize(&text, m, &bad_id, 1, 0), LLAVANEXT_E_INVALID_ARGUMENT);
    llavanext_generator *g = (llavanext_generator *)1;
    assert_int_equal(llavanext_generator_create(&g, m, NULL), LLAVANEXT_E_STATE);
    assert_null(g);
    llavanext_vision_encoder *e;
    assert_int_equal(llavanext_vision_encoder_create(&e, m, NULL), LLAVANEXT_E_STATE);
    llavanext_model_free(m);
    tu_rmtree(dir);
    free(dir);
}

static void null_and_bad_params_are_rejected(void **s)
{
    (void)s;
    llavanext_model *m = (llavanext_model *)1;
    assert_int_equal(llavanext_model_load(NULL, "x", NULL), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_int_equal(llavanext_model_load(&m, NULL, NULL), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(m);
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    p.load_mode = 7;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_E_INVALID_ARGUMENT);
    p.struct_size = 2;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_E_INVALID_ARGUMENT);
}

static int32_t abort_at_two(int32_t stage, int64_t done, int64_t total, void *ud)
{
    (void)total;
    *(int *)ud += 1;
    return stage == LLAVANEXT_STAGE_LOAD && done >= 2;
}

static void load_progress_can_cancel(void **s)
{
    (void)s;
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    int calls = 0;
    p.progress = abort_at_two;
    p.progress_user_data = &calls;
    llavanext_model *m;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_E_ABORTED);
    assert_null(m);
    assert_int_equal(calls, 3);
}

/* ---- faults a host hits: misaligned data, huge shard sets, special files, long paths ---- */

/* tiny-a's weights rewritten with the header one byte longer, so that every tensor's data starts
 * at an odd byte offset (the format does not promise alignment). */
static void misaligned_tensors_load_like_aligned(void **s)
{
    (void)s;
    char *dir = make_dir();
    size_t n;
    unsigned char *b = (unsigned char *)tu_read_file(tu_data("tiny-a/model.safetensors"), &n);
    assert_non_null(b);
    uint64_t hl = header_len(b);
    unsigned char *o = malloc(n + 1);
    memcpy(o, b, 8 + hl);
    o[8 + hl] = ' ';
    memcpy(o + 9 + hl, b + 8 + hl, n - 8 - hl);
    for (int i = 0; i < 8; i++)
        o[i] = (unsigned char)((hl + 1) >> (8 * i));
    put(dir, "model.safetensors", o, n + 1);
    free(o);
    free(b);
    for (int32_t mode = LLAVANEXT_LOAD_MMAP; mode <= LLAVANEXT_LOAD_READ; mode++) {
        llavanext_model *m;
        if (load(dir, mode, &m) != LLAVANEXT_OK)
            fail_msg("load: %s", llavanext_last_error());
        int32_t t[8];
        greedy(m, t);
        assert_memory_equal(t, reference_tokens, sizeof t);
        /* the vision path too: one image through encoder and pooler equals the aligned copy's */
        llavanext_model *a;
        assert_int_equal(load(tu_data("tiny-a"), LLAVANEXT_LOAD_MMAP, &a), LLAVANEXT_OK);
        llavanext_tensor *f1 = NULL, *f2 = NULL;
        llavanext_model *both[2] = { m, a };
        llavanext_tensor **outs[2] = { &f1, &f2 };
        for (int k = 0; k < 2; k++) {
            llavanext_frame_sampler *fs;
            assert_int_equal(llavanext_frame_sampler_open(&fs, tu_data("media/image_120x80.png"), NULL), LLAVANEXT_OK);
            llavanext_frames *fr;
            assert_int_equal(llavanext_frame_sampler_uniform(&fr, fs, 1), LLAVANEXT_OK);
            llavanext_vision_encoder *e;
            assert_int_equal(llavanext_vision_encoder_create(&e, both[k], NULL), LLAVANEXT_OK);
            assert_int_equal(llavanext_vision_encoder_encode_image(outs[k], e, fr, 0), LLAVANEXT_OK);
            llavanext_vision_encoder_free(e);
            llavanext_frames_free(fr);
            llavanext_frame_sampler_free(fs);
        }
        int64_t n1 = llavanext_tensor_numel(f1);
        assert_true(n1 > 0);
        assert_int_equal(n1, llavanext_tensor_numel(f2));
        assert_memory_equal(llavanext_tensor_data(f1), llavanext_tensor_data(f2), sizeof(float) * (size_t)n1);
        llavanext_tensor_free(f1);
        llavanext_tensor_free(f2);
        llavanext_model_free(a);
        llavanext_model_free(m);
    }
    tu_rmtree(dir);
    free(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Two shards of 20 000 one-element tensors each, plus their index: validating the names across
 * shards and against the index must not compare every pair (it took 5 s when it did). */
static void many_sharded_tensors_validate_quickly(void **s)
{
    (void)s;
    enum { PER_SHARD = 20000 };
    char *dir = tu_tempdir();
    size_t cap = (size_t)PER_SHARD * 2 * 64 + 64, il = 0;
    char *index = malloc(cap);
    il += (size_t)sprintf(index, "{\"weight_map\": {");
    for (int sh = 0; sh < 2; sh++) {
        lnx_st_writer *w;
        assert_int_equal(lnx_st_writer_create(&w), LNX_OK);
        for (int i = 0; i < PER_SHARD; i++) {
            char name[64];
            snprintf(name, sizeof name, "t.%d.%05d", sh, i);
            float v = (float)i;
            int64_t one = 1;
            assert_int_equal(lnx_st_writer_add(w, name, LNX_ST_F32, 1, &one, &v), LNX_OK);
            il += (size_t)sprintf(index + il, "%s\"%s\": \"s%d.safetensors\"", il > 20 ? ", " : "", name, sh);
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/s%d.safetensors", dir, sh);
        assert_int_equal(lnx_st_writer_save(w, path), LNX_OK);
        lnx_st_writer_free(w);
    }
    il += (size_t)sprintf(index + il, "}}");
    put(dir, "model.safetensors.index.json", index, il);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    double t0 = now_s();
    lnx_st *st;
    assert_int_equal(lnx_st_open_index(&st, path, LNX_ST_MMAP), LNX_OK);
    double dt = now_s() - t0;
    printf("    2 x %d tensors validated in %.3f s\n", PER_SHARD, dt);
    assert_int_equal(lnx_st_count(st), 2 * PER_SHARD);
    const lnx_st_tensor *t = lnx_st_find(st, "t.1.12345");
    assert_non_null(t);
    float v;
    memcpy(&v, t->data, sizeof v);
    assert_true(v == 12345.0f);
    assert_null(lnx_st_find(st, "t.2.00000"));
    lnx_st_close(st);
    /* a name in both shards is still found */
    assert_true(dt < 1.0);
    tu_rmtree(dir);
    free(dir);
    free(index);
}

static void duplicate_across_shards_is_named(void **s)
{
    (void)s;
    char *dir = tu_tempdir();
    for (int sh = 0; sh < 2; sh++) {
        lnx_st_writer *w;
        assert_int_equal(lnx_st_writer_create(&w), LNX_OK);
        float v = 1;
        int64_t one = 1;
        assert_int_equal(lnx_st_writer_add(w, sh ? "b" : "a", LNX_ST_F32, 1, &one, &v), LNX_OK);
        assert_int_equal(lnx_st_writer_add(w, "twice", LNX_ST_F32, 1, &one, &v), LNX_OK);
        char path[4096];
        snprintf(path, sizeof path, "%s/s%d.safetensors", dir, sh);
        assert_int_equal(lnx_st_writer_save(w, path), LNX_OK);
        lnx_st_writer_free(w);
    }
    put_str(dir, "model.safetensors.index.json",
            "{\"weight_map\": {\"a\": \"s0.safetensors\", \"b\": \"s1.safetensors\", \"twice\": \"s0.safetensors\"}}");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    lnx_st *st = NULL;
    assert_int_equal(lnx_st_open_index(&st, path, LNX_ST_READ), LNX_E_FORMAT);
    assert_null(st);
    printf("    %s\n", lnx_last_error());
    assert_string_contains(lnx_last_error(), "'twice'");
    tu_rmtree(dir);
    free(dir);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "a load blocked on a special file\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

/* Replaces `name` in `dir` with a FIFO, a directory or a link to a device. */
static void make_special(const char *dir, const char *name, int kind)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    if (kind == 0)
        assert_int_equal(mkfifo(path, 0600), 0);
    else if (kind == 1)
        assert_int_equal(mkdir(path, 0700), 0);
    else
        assert_int_equal(symlink("/dev/zero", path), 0);
}

static void special_files_are_refused_at_once(void **s)
{
    (void)s;
    static const char *kinds[] = { "FIFO", "directory", "device" };
    signal(SIGALRM, on_alarm);
    /* a FIFO with no writer would block open() and read() forever */
    for (int kind = 0; kind < 3; kind++) {
        static const char *names[] = { "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                                       "preprocessor_config.json", "chat_template.json" };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char *dir = make_dir();
            copy_weights(dir);
            make_special(dir, names[i], kind);
            printf("    %s as a %s:\n", names[i], kinds[kind]);
            alarm(20);
            expect_failure(dir, LLAVANEXT_E_IO, names[i], "not a regular file");
            alarm(0);
            tu_rmtree(dir);
            free(dir);
        }
        /* a shard named by the index */
        char *dir = make_dir();
        write_weights(dir, XF_NONE, 2);
        make_special(dir, "model-00002-of-00002.safetensors", kind);
        alarm(20);
        expect_failure(dir, LLAVANEXT_E_IO, "model-00002-of-00002.safetensors", "not a regular file");
        alarm(0);
        tu_rmtree(dir);
        free(dir);
    }
    signal(SIGALRM, SIG_DFL);
}

static void overlong_paths_are_errors(void **s)
{
    (void)s;
    /* a model directory longer than any path buffer: an error naming the problem, not a
     * truncated path that might name another file */
    size_t n = 5000;
    char *dir = malloc(n + 1);
    memset(dir, 'a', n);
    dir[0] = '/';
    for (size_t i = 200; i < n; i += 200)
        dir[i] = '/';
    dir[n] = '\0';
    expect_failure(dir, LLAVANEXT_E_INVALID_ARGUMENT, "too long", NULL);
    free(dir);
    /* a shard name that makes the shard's path too long */
    char *d = make_dir();
    copy_weights(d);
    char *idx = malloc(8192);
    char *longname = malloc(4200);
    memset(longname, 'x', 4100);
    strcpy(longname + 4100, ".safetensors");
    snprintf(idx, 8192, "{\"weight_map\": {\"image_newline\": \"%s\"}}", longname);
    put_str(d, "model.safetensors.index.json", idx);
    expect_failure(d, LLAVANEXT_E_INVALID_ARGUMENT, "too long", NULL);
    free(idx);
    free(longname);
    tu_rmtree(d);
    free(d);
}

static void missing_image_newline_is_named(void **s)
{
    (void)s;
    dropped = "image_newline";
    broken_weight(XF_DROP, LLAVANEXT_E_FORMAT, "image_newline", "missing");
    dropped = NULL;
}

int main(void)
{
    tu_require_cpu();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_file_bf16_loads_in_both_modes),
        cmocka_unit_test(mmap_load_does_not_copy_the_weights),
        cmocka_unit_test(f32_weights_give_identical_tokens),
        cmocka_unit_test(f16_weights_load),
        cmocka_unit_test(sharded_index_loads),
        cmocka_unit_test(newer_name_layout_loads),
        cmocka_unit_test(wrong_dtype_is_named),
        cmocka_unit_test(wrong_shape_is_named),
        cmocka_unit_test(missing_tensor_is_named),
        cmocka_unit_test(nan_weight_is_found_on_demand),
        cmocka_unit_test(truncated_shard_is_reported),
        cmocka_unit_test(header_longer_than_file),
        cmocka_unit_test(file_too_short),
        cmocka_unit_test(malformed_header_json),
        cmocka_unit_test(overlapping_offsets),
        cmocka_unit_test(out_of_bounds_offsets),
        cmocka_unit_test(missing_files_are_named),
        cmocka_unit_test(index_naming_missing_shard),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(tokenizer_and_template_errors),
        cmocka_unit_test(no_weights_mode_serves_text_only),
        cmocka_unit_test(null_and_bad_params_are_rejected),
        cmocka_unit_test(load_progress_can_cancel),
        cmocka_unit_test(misaligned_tensors_load_like_aligned),
        cmocka_unit_test(many_sharded_tensors_validate_quickly),
        cmocka_unit_test(duplicate_across_shards_is_named),
        cmocka_unit_test(special_files_are_refused_at_once),
        cmocka_unit_test(overlong_paths_are_errors),
        cmocka_unit_test(missing_image_newline_is_named),
    };
    return cmocka_run_group_tests_name("model_load", tests, NULL, NULL);
}
