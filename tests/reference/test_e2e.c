/* End to end through the public API only, on every reference case: media file -> frame sampler
 * -> vision encoder -> pooler -> chat template -> generator, compared with the reference
 * tensors and the greedy generation token for token. */
#include "../common/reftensor.h"
#include "../common/testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llavanext/llavanext.h"

static llavanext_model *model;
/* LLAVANEXT_TEST_THREADS: the handles' thread count (default 0, one per CPU); with
 * LLAVANEXT_TEST_SHARED_POOL=1 every handle computes on one shared llavanext_threadpool of that
 * many threads instead of its own pool. */
static int32_t threads;
static llavanext_threadpool *shared;

static void enc_params(llavanext_vision_encoder_params *p)
{
    llavanext_vision_encoder_params_init(p, sizeof *p);
    p->threads = threads;
    p->threadpool = shared;
}

static void pooler_params(llavanext_pooler_params *p)
{
    llavanext_pooler_params_init(p, sizeof *p);
    p->threads = threads;
    p->threadpool = shared;
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("LLAVANEXT_TEST_THREADS");
    threads = t && *t ? atoi(t) : 0;
    const char *sh = getenv("LLAVANEXT_TEST_SHARED_POOL");
    if (sh && atoi(sh) == 1) {
        if (llavanext_threadpool_create(&shared, threads) != LLAVANEXT_OK)
            fail_msg("threadpool: %s", llavanext_last_error());
        printf("    one shared pool of %d threads\n", (int)llavanext_threadpool_threads(shared));
    } else {
        printf("    handles with threads = %d\n", (int)threads);
    }
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = LLAVANEXT_LOAD_READ;
    if (llavanext_model_load(&model, tu_data("tiny-a"), &mp) != LLAVANEXT_OK)
        fail_msg("load: %s", llavanext_last_error());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    llavanext_model_free(model);
    llavanext_threadpool_free(shared);
    return 0;
}

static json_t *load_case(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/tiny-a/%s/case.json", name);
    json_error_t err;
    json_t *c = json_load_file(tu_data(rel), 0, &err);
    assert_non_null(c);
    return c;
}

static void check_tensor(const llavanext_tensor *t, const lnx_st *ref, const char *name, double tol)
{
    ref_check(name, llavanext_tensor_data(t), llavanext_tensor_numel(t), ref, name, tol);
}

static void check_frames(const llavanext_frames *f, const lnx_st *ref)
{
    const lnx_st_tensor *rt = ref_tensor(ref, "video_frames_rgb24");
    assert_int_equal(rt->shape[0], llavanext_frames_count(f));
    assert_int_equal(rt->shape[1], llavanext_frames_height(f));
    assert_int_equal(rt->shape[2], llavanext_frames_width(f));
    assert_memory_equal(llavanext_frames_data(f, 0), rt->data, rt->nbytes);
    int64_t *idx = ref_ints(ref, "frame_indices", NULL);
    for (int32_t i = 0; i < llavanext_frames_count(f); i++)
        assert_int_equal(llavanext_frames_source_index(f, i), idx[i]);
    free(idx);
}

/* One request as the CLI makes it: images first, then videos (the template's order). */
static void run_case(const char *name)
{
    json_t *c = load_case(name);
    lnx_st *ref = ref_open(name);
    llavanext_vision_encoder *enc;
    llavanext_pooler *pool;
    llavanext_generator *gen;
    llavanext_vision_encoder_params ep;
    enc_params(&ep);
    llavanext_pooler_params pp;
    pooler_params(&pp);
    assert_int_equal(llavanext_vision_encoder_create(&enc, model, &ep), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_create(&pool, model, &pp), LLAVANEXT_OK);
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.temperature = 0;
    gp.max_new_tokens = 24;
    gp.threads = threads;
    gp.threadpool = shared;
    assert_int_equal(llavanext_generator_create(&gen, model, &gp), LLAVANEXT_OK);

    llavanext_tensor *media[2];
    int32_t nmedia = 0;
    const char *kind = json_string_value(json_object_get(c, "kind"));
    if (strstr(kind, "image")) {
        llavanext_frame_sampler *s;
        char rel[256];
        snprintf(rel, sizeof rel, "%s", json_string_value(json_object_get(c, "media")));
        assert_int_equal(llavanext_frame_sampler_open(&s, tu_data(rel), NULL), LLAVANEXT_OK);
        llavanext_frames *f;
        assert_int_equal(llavanext_frame_sampler_uniform(&f, s, 1), LLAVANEXT_OK);
        const lnx_st_tensor *img = ref_tensor(ref, "image_rgb24");
        assert_memory_equal(llavanext_frames_data(f, 0), img->data, img->nbytes);
        llavanext_tensor *px, *feat, *proj, *packed;
        assert_int_equal(llavanext_vision_encoder_preprocess_image(&px, enc, f, 0), LLAVANEXT_OK);
        check_tensor(px, ref, "pixel_values", 1e-6);
        assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat, enc, px), LLAVANEXT_OK);
        check_tensor(feat, ref, "image_selected_features", 1e-4);
        assert_int_equal(llavanext_pooler_project(&proj, pool, feat), LLAVANEXT_OK);
        check_tensor(proj, ref, "image_projected_features", 1e-4);
        assert_int_equal(llavanext_pooler_pack_image(&packed, pool, proj), LLAVANEXT_OK);
        check_tensor(packed, ref, "image_packed_features", 1e-4);
        media[nmedia++] = packed;
        llavanext_tensor_free(px);
        llavanext_tensor_free(feat);
        llavanext_tensor_free(proj);
        llavanext_frames_free(f);
        llavanext_frame_sampler_free(s);
    }
    if (strstr(kind, "video")) {
        const char *path = json_string_value(json_object_get(c, json_object_get(c, "video_media") ? "video_media" : "media"));
        llavanext_frame_sampler_params sp;
        llavanext_frame_sampler_params_init(&sp, sizeof sp);
        sp.apply_rotation = 0;
        llavanext_frame_sampler *s;
        assert_int_equal(llavanext_frame_sampler_open(&s, tu_data(path), &sp), LLAVANEXT_OK);
        llavanext_frames *f;
        assert_int_equal(llavanext_frame_sampler_uniform(&f, s, (int32_t)json_integer_value(json_object_get(c, "num_frames"))),
                         LLAVANEXT_OK);
        check_frames(f, ref);
        llavanext_tensor *px, *feat, *pooled, *emb;
        assert_int_equal(llavanext_vision_encoder_preprocess_video(&px, enc, f), LLAVANEXT_OK);
        const lnx_st_tensor *pvt = ref_tensor(ref, "pixel_values_videos");
        (void)pvt;
        check_tensor(px, ref, "pixel_values_videos", 1e-6);
        assert_int_equal(llavanext_vision_encoder_encode_pixels(&feat, enc, px), LLAVANEXT_OK);
        check_tensor(feat, ref, "video_selected_features", 1e-4);
        assert_int_equal(llavanext_pooler_pool(&pooled, pool, feat), LLAVANEXT_OK);
        check_tensor(pooled, ref, "video_pooled_features", 1e-4);
        assert_int_equal(llavanext_pooler_project(&emb, pool, pooled), LLAVANEXT_OK);
        check_tensor(emb, ref, "video_projected_features", 1e-4);
        media[nmedia++] = emb;
        llavanext_tensor_free(px);
        llavanext_tensor_free(feat);
        llavanext_tensor_free(pooled);
        llavanext_frames_free(f);
        llavanext_frame_sampler_free(s);
    }
    /* prompt from the checkpoint's chat template */
    char *msgs = json_dumps(json_object_get(c, "conversation"), 0);
    char *prompt;
    assert_int_equal(llavanext_model_render_chat(&prompt, model, msgs, 1), LLAVANEXT_OK);
    assert_string_equal(prompt, json_string_value(json_object_get(c, "prompt_text")));
    assert_int_equal(llavanext_generator_append_prompt(gen, prompt, strlen(prompt), (const llavanext_tensor *const *)media,
                                                       nmedia),
                     LLAVANEXT_OK);
    int64_t L;
    int64_t *ids = ref_ints(ref, "input_ids", &L);
    assert_int_equal(llavanext_generator_position(gen), L);
    const int32_t *toks = llavanext_generator_tokens(gen);
    for (int64_t i = 0; i < L; i++)
        assert_int_equal(toks[i], ids[i]);
    assert_int_equal(llavanext_generator_prefill(gen), LLAVANEXT_OK);
    const float *logits;
    int32_t V;
    assert_int_equal(llavanext_generator_logits(&logits, &V, gen), LLAVANEXT_OK);
    ref_check("logits_last", logits, V, ref, "logits_last", 1e-3);
    /* greedy generation */
    json_t *g = json_object_get(c, "generation");
    json_t *want = json_object_get(g, "generated_ids");
    char text[4096] = "";
    size_t tl = 0;
    size_t i = 0;
    for (;;) {
        const char *piece;
        size_t len;
        int32_t tok;
        llavanext_status st = llavanext_generator_next(gen, &piece, &len, &tok);
        if (st == LLAVANEXT_DONE) {
            memcpy(text + tl, piece, len);
            tl += len;
            break;
        }
        assert_int_equal(st, LLAVANEXT_OK);
        assert_true(i < json_array_size(want));
        assert_int_equal(tok, json_integer_value(json_array_get(want, i)));
        i++;
        memcpy(text + tl, piece, len);
        tl += len;
    }
    text[tl] = '\0';
    int stopped_eos = json_is_true(json_object_get(g, "stopped_on_eos"));
    assert_int_equal(i + (stopped_eos ? 1 : 0), json_array_size(want));
    assert_string_equal(text, json_string_value(json_object_get(g, "generated_text")));
    printf("    %s: %zu tokens identical, text matches\n", name, i);
    free(ids);
    free(prompt);
    free(msgs);
    for (int32_t k = 0; k < nmedia; k++)
        llavanext_tensor_free(media[k]);
    llavanext_generator_free(gen);
    llavanext_pooler_free(pool);
    llavanext_vision_encoder_free(enc);
    lnx_st_close(ref);
    json_decref(c);
}

/* The same video pulled in batches of 3 frames, each batch encoded and pooled on its own and the
 * embeddings concatenated: equal to the reference's all-at-once features. */
static void video_streams_in_batches(void **s)
{
    (void)s;
    lnx_st *ref = ref_open("video8_h264");
    llavanext_frame_sampler *fs;
    assert_int_equal(llavanext_frame_sampler_open(&fs, tu_data("media/clip_h264_160x120_97f.mp4"), NULL), LLAVANEXT_OK);
    llavanext_vision_encoder *enc;
    llavanext_pooler *pool;
    llavanext_vision_encoder_params ep;
    enc_params(&ep);
    llavanext_pooler_params pp;
    pooler_params(&pp);
    assert_int_equal(llavanext_vision_encoder_create(&enc, model, &ep), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_create(&pool, model, &pp), LLAVANEXT_OK);
    assert_int_equal(llavanext_frame_sampler_begin_uniform(fs, 8), LLAVANEXT_OK);
    llavanext_tensor *parts[8];
    int32_t n = 0, frames = 0;
    int64_t *idx = ref_ints(ref, "frame_indices", NULL);
    for (;;) {
        llavanext_frames *f;
        llavanext_status st = llavanext_frame_sampler_next(&f, fs, 3);
        if (st == LLAVANEXT_DONE) {
            assert_null(f);
            break;
        }
        assert_int_equal(st, LLAVANEXT_OK);
        assert_true(llavanext_frames_count(f) <= 3);
        for (int32_t i = 0; i < llavanext_frames_count(f); i++)
            assert_int_equal(llavanext_frames_source_index(f, i), idx[frames + i]);
        frames += llavanext_frames_count(f);
        llavanext_tensor *feat;
        assert_int_equal(llavanext_vision_encoder_encode_video(&feat, enc, f), LLAVANEXT_OK);
        assert_int_equal(llavanext_pooler_apply(&parts[n++], pool, feat), LLAVANEXT_OK);
        llavanext_tensor_free(feat);
        llavanext_frames_free(f);
    }
    assert_int_equal(frames, 8);
    assert_int_equal(n, 3);
    llavanext_tensor *all;
    assert_int_equal(llavanext_tensor_concat(&all, (const llavanext_tensor *const *)parts, n), LLAVANEXT_OK);
    assert_int_equal(llavanext_tensor_dim(all, 0), 8);
    check_tensor(all, ref, "video_projected_features", 1e-4);
    llavanext_tensor *mixed[2] = { all, NULL };
    llavanext_tensor *bad;
    assert_int_equal(llavanext_tensor_concat(&bad, (const llavanext_tensor *const *)mixed, 2), LLAVANEXT_E_INVALID_ARGUMENT);
    for (int32_t i = 0; i < n; i++)
        llavanext_tensor_free(parts[i]);
    llavanext_tensor_free(all);
    free(idx);
    llavanext_pooler_free(pool);
    llavanext_vision_encoder_free(enc);
    llavanext_frame_sampler_free(fs);
    lnx_st_close(ref);
}

static void video8_h264(void **s) { (void)s; run_case("video8_h264"); }
static void video4_vp9(void **s) { (void)s; run_case("video4_vp9"); }
static void video8_mjpeg(void **s) { (void)s; run_case("video8_mjpeg"); }
static void video4_h264_90x50(void **s) { (void)s; run_case("video4_h264_90x50"); }
static void image_png_120x80(void **s) { (void)s; run_case("image_png_120x80"); }
static void image_jpeg_50x130(void **s) { (void)s; run_case("image_jpeg_50x130"); }
static void image_video_mixed(void **s) { (void)s; run_case("image_video_mixed"); }
static void text_long(void **s) { (void)s; run_case("text_long"); }

int main(void)
{
    tu_require_cpu();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(video8_h264),       cmocka_unit_test(video4_vp9),        cmocka_unit_test(video8_mjpeg),
        cmocka_unit_test(video4_h264_90x50), cmocka_unit_test(image_png_120x80),  cmocka_unit_test(image_jpeg_50x130),
        cmocka_unit_test(image_video_mixed), cmocka_unit_test(text_long),   cmocka_unit_test(video_streams_in_batches),
    };
    return cmocka_run_group_tests_name("e2e", tests, setup, teardown);
}
