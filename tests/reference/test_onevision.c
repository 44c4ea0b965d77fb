/* LLaVA-OneVision (SigLIP + Qwen2) against references made by the Hugging Face implementation
 * (scripts/make_onevision_fixture.py, tests/data/tiny-ov): the ChatML template, the byte-level
 * tokenizer, the Qwen2 decoder's logits and greedy tokens, SigLIP preprocessing and features, the
 * projector-then-resize video tokens with the newline after the video, and AnyRes images with the
 * anyres_max_9 resize-down, alone and two in one prompt. Frames and images enter as host RGB24
 * frames, so no decoder is involved. */
#include "../common/reftensor.h"
#include "../common/testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "llavanext/llavanext.h"

static llavanext_model *model;
static llavanext_vision_encoder *enc;
static llavanext_pooler *pool;

static int setup(void **s)
{
    (void)s;
    if (llavanext_model_load(&model, tu_data("tiny-ov"), NULL) != LLAVANEXT_OK ||
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
    snprintf(rel, sizeof rel, "reference/tiny-ov/%s/reference.safetensors", name);
    lnx_st *st;
    assert_int_equal(lnx_st_open(&st, tu_data(rel), LNX_ST_READ), LNX_OK);
    snprintf(rel, sizeof rel, "reference/tiny-ov/%s/case.json", name);
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

static void text_chatml(void **s)
{
    (void)s;
    json_t *c;
    lnx_st *ref = open_ref("text_chatml", &c);
    generate_and_compare(ref, c, NULL, 0);
    lnx_st_close(ref);
    json_decref(c);
}

static void video_projector_then_resize(void **s)
{
    (void)s;
    json_t *c;
    lnx_st *ref = open_ref("video8_mjpeg", &c);
    const lnx_st_tensor *frames = ref_tensor(ref, "video_frames_rgb24");
    int n = (int)frames->shape[0];
    llavanext_tensor *px[16], *feat[16], *proj[16], *emb[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        llavanext_frames *f = host_frame(frames, i);
        assert_int_equal(llavanext_vision_encoder_preprocess_video(&px[i], enc, f), LLAVANEXT_OK);
        assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat[i], enc, px[i]), LLAVANEXT_OK);
        /* this family projects first: pooling raw features is refused with a clear message */
        llavanext_tensor *bad = (llavanext_tensor *)&bad;
        assert_int_equal(llavanext_pooler_pool(&bad, pool, feat[i]), LLAVANEXT_E_INVALID_ARGUMENT);
        assert_null(bad);
        assert_int_equal(llavanext_pooler_project(&proj[i], pool, feat[i]), LLAVANEXT_OK);
        assert_int_equal(llavanext_tensor_kind(proj[i]), LLAVANEXT_TENSOR_VIDEO_PROJECTED);
        assert_int_equal(llavanext_pooler_pool(&emb[i], pool, proj[i]), LLAVANEXT_OK);
        assert_int_equal(llavanext_tensor_kind(emb[i]), LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS);
        llavanext_frames_free(f);
    }
    /* 5x5 grid -> ceil(5/2) = 3 per side */
    assert_int_equal(llavanext_pooler_tokens_per_frame(pool), 9);
    assert_int_equal(llavanext_model_tokens_per_frame(model, 0), 9);
    llavanext_tensor *all_px = concat_free(px, n), *all_feat = concat_free(feat, n);
    llavanext_tensor *all_proj = concat_free(proj, n), *all_emb = concat_free(emb, n);
    check(all_px, ref, "pixel_values_videos", 1e-6);
    check(all_feat, ref, "video_selected_features", 1e-4);
    check(all_proj, ref, "video_projected_features", 1e-4);
    check(all_emb, ref, "video_pooled_features", 1e-4);
    /* the one-call form gives the same embeddings */
    llavanext_tensor *applied;
    assert_int_equal(llavanext_pooler_apply(&applied, pool, all_feat), LLAVANEXT_OK);
    check(applied, ref, "video_pooled_features", 1e-4);
    llavanext_tensor_free(applied);
    /* 8 frames x 9 + the newline after the video */
    assert_int_equal(json_integer_value(json_object_get(c, "num_video_tokens")), n * 9 + 1);
    const llavanext_tensor *media[1] = { all_emb };
    generate_and_compare(ref, c, media, 1);
    llavanext_tensor_free(all_px);
    llavanext_tensor_free(all_feat);
    llavanext_tensor_free(all_proj);
    llavanext_tensor_free(all_emb);
    lnx_st_close(ref);
    json_decref(c);
}

/* One image through preprocess, encode, project, pack; returns the packed embeddings. */
static llavanext_tensor *image_stages(const lnx_st *ref, const char *prefix, const char *pixels_name)
{
    char name[96];
    snprintf(name, sizeof name, "%srgb24", prefix);
    const lnx_st_tensor *rgb = ref_tensor(ref, name);
    llavanext_frames *f = host_frame(rgb, 0);
    llavanext_tensor *px, *feat, *proj, *packed;
    assert_int_equal(llavanext_vision_encoder_preprocess_image(&px, enc, f, 0), LLAVANEXT_OK);
    check(px, ref, pixels_name, 1e-6);
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat, enc, px), LLAVANEXT_OK);
    snprintf(name, sizeof name, "%sselected_features", prefix);
    check(feat, ref, name, 1e-4);
    assert_int_equal(llavanext_pooler_project(&proj, pool, feat), LLAVANEXT_OK);
    snprintf(name, sizeof name, "%sprojected_features", prefix);
    check(proj, ref, name, 1e-4);
    assert_int_equal(llavanext_pooler_pack_image(&packed, pool, proj), LLAVANEXT_OK);
    snprintf(name, sizeof name, "%spacked_features", prefix);
    check(packed, ref, name, 1e-4);
    int32_t h = (int32_t)rgb->shape[0], w = (int32_t)rgb->shape[1];
    assert_int_equal(llavanext_model_image_tokens(model, h, w), llavanext_tensor_dim(packed, 0));
    llavanext_tensor_free(px);
    llavanext_tensor_free(feat);
    llavanext_tensor_free(proj);
    llavanext_frames_free(f);
    return packed;
}

static void image_resized_down(void **s)
{
    (void)s;
    json_t *c;
    lnx_st *ref = open_ref("image_200x280", &c);
    llavanext_tensor *packed = image_stages(ref, "image_", "pixel_values");
    /* a 3x4 grid of 5x5 features (15x20) is more than 9 tiles: resized down to 12x17, + newlines */
    assert_int_equal(llavanext_tensor_dim(packed, 0), 25 + 12 * (17 + 1));
    const llavanext_tensor *media[1] = { packed };
    generate_and_compare(ref, c, media, 1);
    llavanext_tensor_free(packed);
    lnx_st_close(ref);
    json_decref(c);
}

static void two_images(void **s)
{
    (void)s;
    json_t *c;
    lnx_st *ref = open_ref("multi_image", &c);
    llavanext_tensor *a = image_stages(ref, "image0_", "pixel_values0");
    llavanext_tensor *b = image_stages(ref, "image1_", "pixel_values1");
    const llavanext_tensor *media[2] = { a, b };
    generate_and_compare(ref, c, media, 2);
    llavanext_tensor_free(a);
    llavanext_tensor_free(b);
    lnx_st_close(ref);
    json_decref(c);
}

static void image_and_video_in_one_prompt(void **s)
{
    (void)s;
    json_t *c;
    lnx_st *ref = open_ref("image_video_mixed", &c);
    llavanext_tensor *img = image_stages(ref, "image_", "pixel_values");
    /* the frames in one batch, through the one-call pooler */
    const lnx_st_tensor *frames = ref_tensor(ref, "video_frames_rgb24");
    int n = (int)frames->shape[0];
    llavanext_frames *parts[8];
    assert_true(n <= 8);
    llavanext_tensor *px[8];
    for (int i = 0; i < n; i++) {
        parts[i] = host_frame(frames, i);
        assert_int_equal(llavanext_vision_encoder_preprocess_video(&px[i], enc, parts[i]), LLAVANEXT_OK);
        llavanext_frames_free(parts[i]);
    }
    llavanext_tensor *all_px = concat_free(px, n), *feat, *emb;
    check(all_px, ref, "pixel_values_videos", 1e-6);
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat, enc, all_px), LLAVANEXT_OK);
    check(feat, ref, "video_selected_features", 1e-4);
    assert_int_equal(llavanext_pooler_apply(&emb, pool, feat), LLAVANEXT_OK);
    check(emb, ref, "video_pooled_features", 1e-4);
    assert_int_equal(json_integer_value(json_object_get(c, "num_video_tokens")), n * 9 + 1);
    const llavanext_tensor *media[2] = { img, emb };
    generate_and_compare(ref, c, media, 2);
    llavanext_tensor_free(img);
    llavanext_tensor_free(all_px);
    llavanext_tensor_free(feat);
    llavanext_tensor_free(emb);
    lnx_st_close(ref);
    json_decref(c);
}

static void budget_counts_the_video_newline(void **s)
{
    (void)s;
    llavanext_budget b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    /* 8 frames of 3x3 tokens, the newline, 20 text and 10 new tokens */
    assert_int_equal(llavanext_model_plan_budget(&b, model, 8, 0, 0, 20, 10, 0, 0), LLAVANEXT_OK);
    assert_int_equal(b.tokens_per_frame, 9);
    assert_int_equal(b.visual_tokens, 8 * 9 + 1);
    assert_int_equal(b.total_tokens, 8 * 9 + 1 + 20 + 10);
    assert_int_equal(b.context_length, 4096);
    assert_true(b.fits);
    /* the most frames that fit a 100-token limit: (100 - 20 - 10 - 1) / 9 = 7 */
    assert_int_equal(llavanext_model_plan_budget(&b, model, 8, 0, 0, 20, 10, 0, 100), LLAVANEXT_OK);
    assert_false(b.fits);
    assert_int_equal(b.suggested_frames, 7);
    /* images: the token count of the anyres_max rule (25 base + 12 x (17 + 1)) */
    assert_int_equal(llavanext_model_image_tokens(model, 200, 280), 25 + 12 * 18);
    /* without the resize-down the 3x4 grid would give 25 + 15 x 21 */
    assert_true(llavanext_model_image_tokens(model, 200, 280) < 25 + 15 * 21);
}

static void family_is_reported(void **s)
{
    (void)s;
    /* average/max pooling does not exist in this family; a stride changes the resize target */
    llavanext_pooler_params pp;
    llavanext_pooler_params_init(&pp, sizeof pp);
    pp.pool_mode = LLAVANEXT_POOL_MAX;
    llavanext_pooler *p2 = (llavanext_pooler *)&p2;
    assert_int_equal(llavanext_pooler_create(&p2, model, &pp), LLAVANEXT_E_UNSUPPORTED);
    assert_null(p2);
    pp.pool_mode = LLAVANEXT_POOL_DEFAULT;
    pp.pool_stride = 1;
    assert_int_equal(llavanext_pooler_create(&p2, model, &pp), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_tokens_per_frame(p2), 25);
    llavanext_pooler_free(p2);
    assert_int_equal(llavanext_model_tokens_per_frame(model, 3), 4);
    char *d;
    assert_int_equal(llavanext_model_describe(&d, model), LLAVANEXT_OK);
    json_t *j = json_loads(d, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "text"), "model_type")), "qwen2");
    assert_string_equal(json_string_value(json_object_get(j, "family")), "llava_onevision");
    assert_int_equal(json_integer_value(json_object_get(j, "anyres_max")), 9);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "video"), "pool_mode")), "bilinear");
    json_decref(j);
    llavanext_free(d);
    assert_int_equal(llavanext_model_token_id(model, LLAVANEXT_TOKEN_BOS), -1);
    assert_true(llavanext_model_token_id(model, LLAVANEXT_TOKEN_EOS) >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_chatml),
        cmocka_unit_test(video_projector_then_resize),
        cmocka_unit_test(image_resized_down),
        cmocka_unit_test(two_images),
        cmocka_unit_test(image_and_video_in_one_prompt),
        cmocka_unit_test(budget_counts_the_video_newline),
        cmocka_unit_test(family_is_reported),
    };
    return cmocka_run_group_tests_name("tiny_ov_onevision", tests, setup, teardown);
}
