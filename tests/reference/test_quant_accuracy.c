/* Accuracy of the quantized weights (q8, q4) on every fixture case, through the public API, against
 * the float32 reference (tests/data/reference/<model>/<case>):
 *  - the prompt's last logits: relative L2 error |ours - ref| / |ref|;
 *  - top-1 agreement along the reference's greedy continuation (teacher forcing: each reference
 *    token is appended and the next argmax compared with the reference's next token).
 * The whole model is converted as llavanext_model_params.weights says (vision tower, projector,
 * decoder, head, embeddings; docs/quantization.md), so the media go through the quantized vision
 * tower and projector too. The bounds are the measured values with a margin (the table in
 * docs/quantization.md). A second pass writes each model quantized (lnx_quantize_checkpoint, as
 * `llavanext-cli quantize` does), loads that directory as stored, and checks that its logits are
 * exactly the quantize-on-load ones. */
#include "../common/reftensor.h"
#include "../common/testutil.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/quantize.h"
#include "io/safetensors.h"
#include "llavanext/llavanext.h"
#include "llm/sampling.h"

/* measured (docs/quantization.md) with a margin */
/* KV cache types, prompts evaluated in blocks of KV_CHUNK positions (every block but the last
 * reads the earlier ones' keys and values from the cache), float32 weights: */
#define KV_CHUNK 16
#define KV_F32_MAX_L2 1e-4  /* the reference path's own rounding */
#define KV_F16_MAX_L2 0.003 /* measured 0.00010 - 0.00071 */
#define KV_Q8_MAX_L2 0.03   /* measured 0.0023 - 0.0120 */
#define KV_MIN_TOP1 0.85    /* measured: f16 1.0, q8 0.917 */
#define BF16_MAX_L2 0.03  /* measured 0.0029 - 0.0131 */
#define BF16_MIN_TOP1 0.85 /* measured 0.917 */
#define Q8_MAX_L2 0.12    /* measured 0.021 - 0.072 */
#define Q8_MIN_TOP1 0.60  /* measured 0.71 (greedy tokens of these random models are near-ties) */
#define Q4_MAX_L2 0.45    /* measured 0.17 - 0.35 */
#define Q4_MIN_TOP1 0.25  /* measured 0.33 */

typedef struct result {
    double l2;
    int agree, steps;
    float *logits; /* last prompt logits, kept for the quantize-then-load comparison */
    int32_t V;
} result;

static llavanext_frames *host_frame(const lnx_st_tensor *t, int64_t index)
{
    int32_t h = (int32_t)t->shape[t->ndim - 3], w = (int32_t)t->shape[t->ndim - 2];
    const uint8_t *planes[3] = { (const uint8_t *)t->data + (size_t)index * (size_t)h * (size_t)w * 3, NULL, NULL };
    const int32_t strides[3] = { w * 3, 0, 0 };
    llavanext_frames *f;
    assert_int_equal(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, strides, w, h), LLAVANEXT_OK);
    return f;
}

static llavanext_tensor *video_embeddings(llavanext_vision_encoder *enc, llavanext_pooler *pool, const lnx_st *ref)
{
    const lnx_st_tensor *frames = ref_tensor(ref, "video_frames_rgb24");
    int n = (int)frames->shape[0];
    llavanext_tensor *emb[32];
    assert_true(n <= 32);
    for (int i = 0; i < n; i++) {
        llavanext_frames *f = host_frame(frames, i);
        llavanext_tensor *px, *feat, *pooled;
        assert_int_equal(llavanext_vision_encoder_preprocess_video(&px, enc, f), LLAVANEXT_OK);
        assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat, enc, px), LLAVANEXT_OK);
        assert_int_equal(llavanext_pooler_pool(&pooled, pool, feat), LLAVANEXT_OK);
        assert_int_equal(llavanext_pooler_project(&emb[i], pool, pooled), LLAVANEXT_OK);
        llavanext_tensor_free(px);
        llavanext_tensor_free(feat);
        llavanext_tensor_free(pooled);
        llavanext_frames_free(f);
    }
    llavanext_tensor *all;
    assert_int_equal(llavanext_tensor_concat(&all, (const llavanext_tensor *const *)emb, n), LLAVANEXT_OK);
    for (int i = 0; i < n; i++)
        llavanext_tensor_free(emb[i]);
    return all;
}

static llavanext_tensor *image_embeddings(llavanext_vision_encoder *enc, llavanext_pooler *pool, const lnx_st *ref)
{
    llavanext_frames *f = host_frame(ref_tensor(ref, "image_rgb24"), 0);
    llavanext_tensor *px, *feat, *proj, *packed;
    assert_int_equal(llavanext_vision_encoder_preprocess_image(&px, enc, f, 0), LLAVANEXT_OK);
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat, enc, px), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_project(&proj, pool, feat), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_pack_image(&packed, pool, proj), LLAVANEXT_OK);
    llavanext_tensor_free(px);
    llavanext_tensor_free(feat);
    llavanext_tensor_free(proj);
    llavanext_frames_free(f);
    return packed;
}

/* The generators' parameters (NULL: the defaults). */
static const llavanext_generator_params *gen_params;

static void run_case(llavanext_model *model, const char *model_name, const char *case_name, result *res)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/%s/reference.safetensors", model_name, case_name);
    lnx_st *ref;
    assert_int_equal(lnx_st_open(&ref, tu_data(rel), LNX_ST_READ), LNX_OK);
    snprintf(rel, sizeof rel, "reference/%s/%s/case.json", model_name, case_name);
    json_t *c = json_load_file(tu_data(rel), 0, NULL);
    assert_non_null(c);
    llavanext_vision_encoder *enc;
    llavanext_pooler *pool;
    assert_int_equal(llavanext_vision_encoder_create(&enc, model, NULL), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_create(&pool, model, NULL), LLAVANEXT_OK);
    /* the media in the conversation's order */
    llavanext_tensor *media[4];
    int nm = 0;
    size_t i, j;
    json_t *msg, *part;
    json_array_foreach(json_object_get(c, "conversation"), i, msg) {
        json_array_foreach(json_object_get(msg, "content"), j, part) {
            const char *type = json_string_value(json_object_get(part, "type"));
            if (type && strcmp(type, "video") == 0)
                media[nm++] = video_embeddings(enc, pool, ref);
            else if (type && strcmp(type, "image") == 0)
                media[nm++] = image_embeddings(enc, pool, ref);
        }
    }
    char *msgs = json_dumps(json_object_get(c, "conversation"), 0), *prompt;
    assert_int_equal(llavanext_model_render_chat(&prompt, model, msgs, 1), LLAVANEXT_OK);
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, gen_params), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), (const llavanext_tensor *const *)media, nm),
                     LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_prefill(g), LLAVANEXT_OK);
    const float *logits;
    int32_t V;
    assert_int_equal(llavanext_generator_logits(&logits, &V, g), LLAVANEXT_OK);
    int64_t nref;
    float *want = ref_floats(ref, "logits_last", &nref);
    assert_int_equal(nref, V);
    double e = 0, n = 0;
    for (int32_t k = 0; k < V; k++) {
        e += ((double)logits[k] - want[k]) * ((double)logits[k] - want[k]);
        n += (double)want[k] * want[k];
    }
    res->l2 = sqrt(e / n);
    res->V = V;
    res->logits = malloc(sizeof(float) * (size_t)V);
    memcpy(res->logits, logits, sizeof(float) * (size_t)V);
    int64_t ng;
    int64_t *gen = ref_ints(ref, "generated_ids", &ng);
    res->agree = 0;
    res->steps = (int)ng;
    for (int64_t s = 0; s < ng; s++) {
        res->agree += lnx_argmax(logits, V) == gen[s];
        if (s + 1 == ng)
            break;
        int32_t tok = (int32_t)gen[s];
        assert_int_equal(llavanext_generator_append_tokens(g, &tok, 1), LLAVANEXT_OK);
        assert_int_equal(llavanext_generator_prefill(g), LLAVANEXT_OK);
        assert_int_equal(llavanext_generator_logits(&logits, &V, g), LLAVANEXT_OK);
    }
    free(gen);
    free(want);
    llavanext_generator_free(g);
    llavanext_free(prompt);
    free(msgs);
    for (int k = 0; k < nm; k++)
        llavanext_tensor_free(media[k]);
    llavanext_pooler_free(pool);
    llavanext_vision_encoder_free(enc);
    json_decref(c);
    lnx_st_close(ref);
}

static const struct {
    const char *model;
    const char *cases[8];
} fixtures[] = {
    { "tiny-a", { "video8_h264", "video4_vp9", "video8_mjpeg", "video4_h264_90x50", "image_png_120x80",
                  "image_jpeg_50x130", "image_video_mixed", "text_long" } },
    { "tiny-b", { "video6_mjpeg", "image_jpeg_50x130", "text_past_limit" } },
    { "tiny-c", { "video8_mjpeg", "image_jpeg_50x130", "text_sliding_window" } },
};

static int32_t precision = LLAVANEXT_PRECISION_F32;

static llavanext_model *load(const char *dir, int32_t weights)
{
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.weights = weights;
    mp.precision = precision;
    mp.threads = 2;
    llavanext_model *m = NULL;
    if (llavanext_model_load(&m, dir, &mp) != LLAVANEXT_OK)
        fail_msg("loading %s (weights %d): %s", dir, (int)weights, llavanext_last_error());
    return m;
}

/* `model` written with `weights` into a fresh directory beside its other files (symlinked). */
static char *quantized_copy(const char *model, int32_t weights)
{
    char *dir = tu_tempdir(), src[4096], dst[4096];
    assert_non_null(realpath(tu_data(model), src));
    const char *files[] = { "config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.json",
                            "preprocessor_config.json", "generation_config.json", "special_tokens_map.json",
                            "added_tokens.json" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char from[4096];
        snprintf(from, sizeof from, "%s/%s", src, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        if (access(from, F_OK) == 0)
            assert_int_equal(symlink(from, dst), 0);
    }
    char st_path[4096];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", src);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    lnx_st *st;
    assert_int_equal(lnx_st_open(&st, st_path, LNX_ST_MMAP), LNX_OK);
    assert_int_equal(lnx_quantize_checkpoint(st, weights, dst, NULL, NULL, NULL), LNX_OK);
    lnx_st_close(st);
    return dir;
}

static void weights_accuracy(int32_t weights, double max_l2, double min_top1)
{
    const char *name = weights == LLAVANEXT_WEIGHTS_Q8 ? "q8" : weights == LLAVANEXT_WEIGHTS_Q4 ? "q4" : "bf16";
    printf("    %s: %-8s %-20s %12s %12s\n", name, "model", "case", "logits L2", "top-1");
    double worst_l2 = 0, worst_top1 = 1;
    for (size_t f = 0; f < sizeof fixtures / sizeof *fixtures; f++) {
        llavanext_model *m = load(tu_data(fixtures[f].model), weights);
        char *qdir = weights ? quantized_copy(fixtures[f].model, weights) : NULL;
        llavanext_model *mq = qdir ? load(qdir, LLAVANEXT_WEIGHTS_STORED) : NULL;
        for (int c = 0; c < 8 && fixtures[f].cases[c]; c++) {
            result r, rq;
            run_case(m, fixtures[f].model, fixtures[f].cases[c], &r);
            rq = r;
            if (mq) {
                run_case(mq, fixtures[f].model, fixtures[f].cases[c], &rq);
            } else {
                rq.logits = malloc(sizeof(float) * (size_t)r.V);
                memcpy(rq.logits, r.logits, sizeof(float) * (size_t)r.V);
            }
            printf("    %s: %-8s %-20s %12.4g %6d/%-5d\n", name, fixtures[f].model, fixtures[f].cases[c], r.l2, r.agree,
                   r.steps);
            /* the directory written quantized computes exactly what quantize-on-load does */
            assert_int_equal(rq.V, r.V);
            assert_memory_equal(rq.logits, r.logits, sizeof(float) * (size_t)r.V);
            assert_int_equal(rq.agree, r.agree);
            double top1 = (double)r.agree / r.steps;
            worst_l2 = r.l2 > worst_l2 ? r.l2 : worst_l2;
            worst_top1 = top1 < worst_top1 ? top1 : worst_top1;
            free(r.logits);
            free(rq.logits);
        }
        llavanext_model_free(mq);
        llavanext_model_free(m);
        if (qdir)
            tu_rmtree(qdir);
        free(qdir);
    }
    printf("    %s: worst logits L2 %.4g (bound %.3g), worst top-1 %.3f (bound %.2f)\n", name, worst_l2, max_l2,
           worst_top1, min_top1);
    assert_true(worst_l2 <= max_l2);
    assert_true(worst_top1 >= min_top1);
}

/* For comparison: the bf16 compute path (stored bf16 weights, bf16 activations), measured the same
 * way; skipped where it cannot run. */
static void bf16_path_accuracy(void **s)
{
    (void)s;
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.precision = LLAVANEXT_PRECISION_BF16;
    mp.load_mode = LLAVANEXT_LOAD_NO_WEIGHTS;
    llavanext_model *m = NULL;
    if (llavanext_model_load(&m, tu_data("tiny-a"), &mp) != LLAVANEXT_OK) {
        printf("    bf16 path: skipped: %s\n", llavanext_last_error());
        skip();
    }
    llavanext_model_free(m);
    precision = LLAVANEXT_PRECISION_BF16;
    weights_accuracy(LLAVANEXT_WEIGHTS_STORED, BF16_MAX_L2, BF16_MIN_TOP1);
    precision = LLAVANEXT_PRECISION_F32;
}

/* What the KV cache's type does to the logits: float32 weights, the prompt in blocks of
 * KV_CHUNK positions so that the last logits and every teacher-forced step read cached keys and
 * values of the type. */
static void kv_accuracy(int32_t kv_cache, double max_l2, double min_top1)
{
    static const char *names[] = { "auto", "f32", "f16", "q8" };
    const char *name = names[kv_cache];
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.kv_cache = kv_cache;
    gp.prefill_chunk = KV_CHUNK;
    gp.threads = 2;
    gen_params = &gp;
    printf("    kv %s: %-8s %-20s %12s %12s\n", name, "model", "case", "logits L2", "top-1");
    double worst_l2 = 0, worst_top1 = 1;
    for (size_t f = 0; f < sizeof fixtures / sizeof *fixtures; f++) {
        llavanext_model *m = load(tu_data(fixtures[f].model), LLAVANEXT_WEIGHTS_STORED);
        for (int c = 0; c < 8 && fixtures[f].cases[c]; c++) {
            result r;
            run_case(m, fixtures[f].model, fixtures[f].cases[c], &r);
            printf("    kv %s: %-8s %-20s %12.4g %6d/%-5d\n", name, fixtures[f].model, fixtures[f].cases[c], r.l2,
                   r.agree, r.steps);
            double top1 = (double)r.agree / r.steps;
            worst_l2 = r.l2 > worst_l2 ? r.l2 : worst_l2;
            worst_top1 = top1 < worst_top1 ? top1 : worst_top1;
            free(r.logits);
        }
        llavanext_model_free(m);
    }
    gen_params = NULL;
    printf("    kv %s: worst logits L2 %.4g (bound %.3g), worst top-1 %.3f (bound %.2f)\n", name, worst_l2, max_l2,
           worst_top1, min_top1);
    assert_true(worst_l2 <= max_l2);
    assert_true(worst_top1 >= min_top1);
}

static void kv_f32_accuracy(void **s) { (void)s; kv_accuracy(LLAVANEXT_KV_CACHE_F32, KV_F32_MAX_L2, 1.0); }
static void kv_f16_accuracy(void **s) { (void)s; kv_accuracy(LLAVANEXT_KV_CACHE_F16, KV_F16_MAX_L2, KV_MIN_TOP1); }
static void kv_q8_accuracy(void **s) { (void)s; kv_accuracy(LLAVANEXT_KV_CACHE_Q8, KV_Q8_MAX_L2, KV_MIN_TOP1); }

static void q8_accuracy(void **s) { (void)s; weights_accuracy(LLAVANEXT_WEIGHTS_Q8, Q8_MAX_L2, Q8_MIN_TOP1); }
static void q4_accuracy(void **s) { (void)s; weights_accuracy(LLAVANEXT_WEIGHTS_Q4, Q4_MAX_L2, Q4_MIN_TOP1); }

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(bf16_path_accuracy), cmocka_unit_test(q8_accuracy),
                                        cmocka_unit_test(q4_accuracy),        cmocka_unit_test(kv_f32_accuracy),
                                        cmocka_unit_test(kv_f16_accuracy),    cmocka_unit_test(kv_q8_accuracy) };
    return cmocka_run_group_tests_name("quant_accuracy", tests, NULL, NULL);
}
