/* Models of other dimensions against references made by the Hugging Face implementation
 * (scripts/make_second_fixture.py):
 *   tiny-b: 6x6 patch grid, max pooling, feature layer -3, no GQA, other epsilon, rope theta 5e5
 *           and factor 3, prompts past the unscaled limit;
 *   tiny-c: a Mistral text model with the Mistral tokenizer, 4:1 GQA, a sliding window a long
 *           prompt crosses, and an LM head tied to the embeddings.
 * Frames enter as host RGB24 frames, so no video decoder is involved. */
#include "../common/reftensor.h"
#include "../common/testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "llavanext/llavanext.h"

static llavanext_model *model;
static llavanext_vision_encoder *enc;
static llavanext_pooler *pool;
static const char *model_name;

static int setup(void **s)
{
    (void)s;
    if (llavanext_model_load(&model, tu_data(model_name), NULL) != LLAVANEXT_OK ||
        llavanext_vision_encoder_create(&enc, model, NULL) != LLAVANEXT_OK ||
        llavanext_pooler_create(&pool, model, NULL) != LLAVANEXT_OK) {
        printf("setup: %s\n", llavanext_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    llavanext_pooler_free(pool);
    llavanext_vision_encoder_free(enc);
    llavanext_model_free(model);
    return 0;
}

static lnx_st *open_ref(const char *name, json_t **c)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/%s/reference.safetensors", model_name, name);
    lnx_st *st;
    assert_int_equal(lnx_st_open(&st, tu_data(rel), LNX_ST_READ), LNX_OK);
    snprintf(rel, sizeof rel, "reference/%s/%s/case.json", model_name, name);
    *c = json_load_file(tu_data(rel), 0, NULL);
    assert_non_null(*c);
    return st;
}

static llavanext_frames *host_frame(const lnx_st_tensor *t, int64_t index)
{
    int32_t h = (int32_t)t->shape[t->ndim - 3], w = (int32_t)t->shape[t->ndim - 2];
    const uint8_t *planes[3] = { (const uint8_t *)t->data + (size_t)index * (size_t)h * (size_t)w * 3, NULL, NULL };
    const int32_t strides[3] = { w * 3, 0, 0 };
    llavanext_frames *f;
    assert_int_equal(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, strides, w, h), LLAVANEXT_OK);
    return f;
}

static llavanext_tensor *concat_free(llavanext_tensor **parts, int32_t n)
{
    llavanext_tensor *all;
    assert_int_equal(llavanext_tensor_concat(&all, (const llavanext_tensor *const *)parts, n), LLAVANEXT_OK);
    for (int32_t i = 0; i < n; i++)
        llavanext_tensor_free(parts[i]);
    return all;
}

static void check(const llavanext_tensor *t, const lnx_st *ref, const char *name, double tol)
{
    ref_check(name, llavanext_tensor_data(t), llavanext_tensor_numel(t), ref, name, tol);
}

static void generate_and_compare(const lnx_st *ref, json_t *c, const llavanext_tensor *const *media, int32_t n)
{
    char *msgs = json_dumps(json_object_get(c, "conversation"), 0), *prompt;
    assert_int_equal(llavanext_model_render_chat(&prompt, model, msgs, 1), LLAVANEXT_OK);
    assert_string_equal(prompt, json_string_value(json_object_get(c, "prompt_text")));
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.temperature = 0;
    gp.max_new_tokens = 12;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, &gp), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), media, n), LLAVANEXT_OK);
    int64_t L;
    int64_t *ids = ref_ints(ref, "input_ids", &L);
    assert_int_equal(llavanext_generator_position(g), L);
    for (int64_t i = 0; i < L; i++)
        assert_int_equal(llavanext_generator_tokens(g)[i], ids[i]);
    assert_int_equal(llavanext_generator_prefill(g), LLAVANEXT_OK);
    const float *logits;
    int32_t V;
    assert_int_equal(llavanext_generator_logits(&logits, &V, g), LLAVANEXT_OK);
    ref_check("logits_last", logits, V, ref, "logits_last", 1e-3);
    int64_t ng;
    int64_t *want = ref_ints(ref, "generated_ids", &ng);
    for (int64_t i = 0; i < ng; i++) {
        int32_t tok;
        assert_int_equal(llavanext_generator_next(g, NULL, NULL, &tok), LLAVANEXT_OK);
        assert_int_equal(tok, want[i]);
    }
    printf("    %lld prompt tokens, %lld greedy tokens identical\n", (long long)L, (long long)ng);
    free(want);
    free(ids);
    llavanext_generator_free(g);
    llavanext_free(prompt);
    free(msgs);
}

static void video_case(const char *name, int32_t tokens_per_frame)
{
    json_t *c;
    lnx_st *ref = open_ref(name, &c);
    const lnx_st_tensor *frames = ref_tensor(ref, "video_frames_rgb24");
    int n = (int)frames->shape[0];
    llavanext_tensor *px[16], *feat[16], *pooled[16], *emb[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        llavanext_frames *f = host_frame(frames, i);
        assert_int_equal(llavanext_vision_encoder_preprocess_video(&px[i], enc, f), LLAVANEXT_OK);
        assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat[i], enc, px[i]), LLAVANEXT_OK);
        assert_int_equal(llavanext_pooler_pool(&pooled[i], pool, feat[i]), LLAVANEXT_OK);
        assert_int_equal(llavanext_pooler_project(&emb[i], pool, pooled[i]), LLAVANEXT_OK);
        llavanext_frames_free(f);
    }
    assert_int_equal(llavanext_pooler_tokens_per_frame(pool), tokens_per_frame);
    llavanext_tensor *all_px = concat_free(px, n), *all_feat = concat_free(feat, n);
    llavanext_tensor *all_pooled = concat_free(pooled, n), *all_emb = concat_free(emb, n);
    check(all_px, ref, "pixel_values_videos", 1e-6);
    check(all_feat, ref, "video_selected_features", 1e-4);
    check(all_pooled, ref, "video_pooled_features", 1e-4);
    check(all_emb, ref, "video_projected_features", 1e-4);
    const llavanext_tensor *media[1] = { all_emb };
    generate_and_compare(ref, c, media, 1);
    llavanext_tensor_free(all_px);
    llavanext_tensor_free(all_feat);
    llavanext_tensor_free(all_pooled);
    llavanext_tensor_free(all_emb);
    lnx_st_close(ref);
    json_decref(c);
}

static void image_anyres(void **s)
{
    (void)s;
    json_t *c;
    lnx_st *ref = open_ref("image_jpeg_50x130", &c);
    llavanext_frames *f = host_frame(ref_tensor(ref, "image_rgb24"), 0);
    llavanext_tensor *px, *feat, *proj, *packed;
    assert_int_equal(llavanext_vision_encoder_preprocess_image(&px, enc, f, 0), LLAVANEXT_OK);
    check(px, ref, "pixel_values", 1e-6);
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat, enc, px), LLAVANEXT_OK);
    check(feat, ref, "image_selected_features", 1e-4);
    assert_int_equal(llavanext_pooler_project(&proj, pool, feat), LLAVANEXT_OK);
    check(proj, ref, "image_projected_features", 1e-4);
    assert_int_equal(llavanext_pooler_pack_image(&packed, pool, proj), LLAVANEXT_OK);
    check(packed, ref, "image_packed_features", 1e-4);
    assert_int_equal(llavanext_model_image_tokens(model, 130, 50), llavanext_tensor_dim(packed, 0));
    const llavanext_tensor *media[1] = { packed };
    generate_and_compare(ref, c, media, 1);
    llavanext_tensor_free(px);
    llavanext_tensor_free(feat);
    llavanext_tensor_free(proj);
    llavanext_tensor_free(packed);
    llavanext_frames_free(f);
    lnx_st_close(ref);
    json_decref(c);
}

static void text_case(const char *name, int64_t longer_than)
{
    json_t *c;
    lnx_st *ref = open_ref(name, &c);
    assert_true(json_integer_value(json_object_get(c, "num_input_tokens")) > longer_than);
    generate_and_compare(ref, c, NULL, 0);
    lnx_st_close(ref);
    json_decref(c);
}

static void b_video_with_max_pooling(void **s) { (void)s; video_case("video6_mjpeg", 9); }
static void b_text_past_the_unscaled_limit(void **s) { (void)s; text_case("text_past_limit", 128); }
static void c_video(void **s) { (void)s; video_case("video8_mjpeg", 4); }
static void c_text_crossing_the_sliding_window(void **s) { (void)s; text_case("text_sliding_window", 48 * 2); }

static int setup_b(void **s)
{
    model_name = "tiny-b";
    return setup(s);
}

static int setup_c(void **s)
{
    model_name = "tiny-c";
    return setup(s);
}

int main(void)
{
    const struct CMUnitTest tests_b[] = {
        cmocka_unit_test(b_video_with_max_pooling),
        cmocka_unit_test(image_anyres),
        cmocka_unit_test(b_text_past_the_unscaled_limit),
    };
    const struct CMUnitTest tests_c[] = {
        cmocka_unit_test(c_video),
        cmocka_unit_test(image_anyres),
        cmocka_unit_test(c_text_crossing_the_sliding_window),
    };
    int failed = cmocka_run_group_tests_name("tiny_b", tests_b, setup_b, teardown);
    failed += cmocka_run_group_tests_name("tiny_c_mistral", tests_c, setup_c, teardown);
    return failed;
}
