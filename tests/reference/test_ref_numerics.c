/* The model's numerics against the reference tensors, stage by stage, each stage fed with the
 * reference's own input so that errors do not compound: CLIP features, pooling, projection,
 * AnyRes packing, the Llama decoder's hidden states and logits, and greedy decoding. */
#include "../common/reftensor.h"
#include "../common/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "kernels/ops.h"
#include "llm/llama.h"
#include "vision/clip.h"
#include "vision/pooler.h"

#define TOL_FEAT 1e-4
#define TOL_LOGITS 1e-3

typedef struct fixture {
    lnx_model_cfg cfg;
    lnx_st *st;
    lnx_wstore *ws;
    lnx_clip clip;
    lnx_projector proj;
    lnx_llama llama;
    lnx_rope rope;
    lnx_pool *pool;
} fixture;

static fixture fx;

static int setup(void **state)
{
    (void)state;
    json_t *cj;
    assert_int_equal(lnx_json_load_file(&cj, tu_data("tiny-a/config.json")), LNX_OK);
    assert_int_equal(lnx_config_parse(&fx.cfg, cj, "config.json"), LNX_OK);
    json_decref(cj);
    assert_int_equal(lnx_st_open(&fx.st, tu_data("tiny-a/model.safetensors"), LNX_ST_MMAP), LNX_OK);
    assert_int_equal(lnx_wstore_create(&fx.ws, fx.st), LNX_OK);
    assert_int_equal(lnx_clip_bind(&fx.clip, &fx.cfg, fx.ws, "vision_tower.vision_model."), LNX_OK);
    assert_int_equal(lnx_projector_bind(&fx.proj, &fx.cfg, fx.ws, ""), LNX_OK);
    assert_int_equal(lnx_llama_bind(&fx.llama, &fx.cfg.text, fx.ws, "language_model.model.", "language_model.lm_head.weight"),
                     LNX_OK);
    assert_int_equal(lnx_rope_init(&fx.rope, fx.cfg.text.head_dim, fx.cfg.text.rope_theta, fx.cfg.text.rope_factor), LNX_OK);
    /* LLAVANEXT_TEST_THREADS: the pool's size (default 2) */
    const char *t = getenv("LLAVANEXT_TEST_THREADS");
    assert_int_equal(lnx_pool_create(&fx.pool, t && *t ? atoi(t) : 2), LNX_OK);
    printf("    pool of %d threads\n", lnx_pool_size(fx.pool));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lnx_pool_free(fx.pool);
    lnx_rope_free(&fx.rope);
    lnx_llama_unbind(&fx.llama);
    lnx_clip_unbind(&fx.clip);
    lnx_wstore_free(fx.ws);
    lnx_st_close(fx.st);
    return 0;
}

static void check_vision(const lnx_st *ref, const char *kind, int64_t *frames_out, float **selected_out)
{
    char name[64];
    snprintf(name, sizeof name, "pixel_values%s", strcmp(kind, "video") == 0 ? "_videos" : "");
    const lnx_st_tensor *pv = ref_tensor(ref, name);
    int64_t F = pv->shape[1];
    float *pixels = ref_floats(ref, name, NULL);
    int64_t T = lnx_clip_out_tokens(&fx.clip), D = fx.cfg.vision.hidden;
    float *out = malloc(sizeof(float) * (size_t)(F * T * D));
    float *hs = malloc(sizeof(float) * (size_t)((fx.clip.run_layers + 1) * F * fx.clip.tokens * D));
    assert_int_equal(lnx_clip_forward(&fx.clip, fx.pool, pixels, (int32_t)F, out, hs, NULL, NULL, NULL), LNX_OK);
    snprintf(name, sizeof name, "%s_selected_features", kind);
    ref_check("selected features", out, F * T * D, ref, name, TOL_FEAT);
    /* the reference stores every layer; compare the ones we ran */
    snprintf(name, sizeof name, "%s_vision_hidden_states", kind);
    int64_t n;
    float *want = ref_floats(ref, name, &n);
    int64_t plane = F * fx.clip.tokens * D;
    double d = ref_max_diff(hs, want, (fx.clip.run_layers + 1) * plane);
    printf("    %-28s %-32s max|diff| %.3g\n", "hidden states 0..L-1", name, d);
    assert_true(d <= TOL_FEAT);
    free(want);
    free(hs);
    free(pixels);
    *frames_out = F;
    *selected_out = out;
}

static void video_features_match(const char *case_name)
{
    lnx_st *ref = ref_open(case_name);
    int64_t F;
    float *sel;
    check_vision(ref, "video", &F, &sel);
    int32_t g = fx.clip.grid, o = lnx_pool_out_side(g, fx.cfg.pool_stride);
    int64_t Dv = fx.cfg.vision.hidden, Dt = fx.cfg.text.hidden;
    float *pooled = malloc(sizeof(float) * (size_t)(F * o * o * Dv));
    lnx_pool_frames(fx.pool, sel, (int32_t)F, g, (int32_t)Dv, fx.cfg.pool_stride, fx.cfg.pool_mode, pooled);
    ref_check("pooled", pooled, F * o * o * Dv, ref, "video_pooled_features", TOL_FEAT);
    float *proj = malloc(sizeof(float) * (size_t)(F * o * o * Dt));
    assert_int_equal(lnx_project(&fx.proj, fx.pool, pooled, F * o * o, proj), LNX_OK);
    ref_check("projected", proj, F * o * o * Dt, ref, "video_projected_features", TOL_FEAT);
    free(proj);
    free(pooled);
    free(sel);
    lnx_st_close(ref);
}

static void image_features_match(const char *case_name, int32_t rows, int32_t cols)
{
    lnx_st *ref = ref_open(case_name);
    int64_t P;
    float *sel;
    check_vision(ref, "image", &P, &sel);
    int64_t T = lnx_clip_out_tokens(&fx.clip), Dt = fx.cfg.text.hidden;
    float *proj = malloc(sizeof(float) * (size_t)(P * T * Dt));
    assert_int_equal(lnx_project(&fx.proj, fx.pool, sel, P * T, proj), LNX_OK);
    ref_check("projected", proj, P * T * Dt, ref, "image_projected_features", TOL_FEAT);
    int64_t *sizes = ref_ints(ref, "image_sizes", NULL);
    int64_t n = lnx_anyres_packed_tokens((int32_t)sizes[0], (int32_t)sizes[1], rows, cols, fx.clip.grid, 1);
    float *packed = malloc(sizeof(float) * (size_t)(n * Dt));
    lnx_anyres_pack(proj, (int32_t)sizes[0], (int32_t)sizes[1], rows, cols, fx.clip.grid, (int32_t)Dt, fx.proj.newline,
                    packed);
    ref_check("packed", packed, n * Dt, ref, "image_packed_features", TOL_FEAT);
    free(packed);
    free(sizes);
    free(proj);
    free(sel);
    lnx_st_close(ref);
}

/* The decoder fed with the reference inputs_embeds: hidden states, logits at every position,
 * then 24 greedy steps with the KV cache compared token by token and logit by logit. */
static void decoder_matches(const char *case_name)
{
    lnx_st *ref = ref_open(case_name);
    int64_t n;
    float *emb = ref_floats(ref, "inputs_embeds", &n);
    const int64_t D = fx.cfg.text.hidden, V = fx.cfg.text.vocab, Lyr = fx.cfg.text.layers;
    int64_t L = n / D;
    lnx_kv kv;
    assert_int_equal(lnx_kv_init(&kv, (int32_t)Lyr, fx.cfg.text.kv_heads * fx.cfg.text.head_dim, L + 32), LNX_OK);
    lnx_llama_scratch s = { 0 };
    float *logits = malloc(sizeof(float) * (size_t)(L * V));
    float *hs = malloc(sizeof(float) * (size_t)((Lyr + 1) * L * D));
    lnx_llama_pass p = { emb, L, 0, 0, L, logits, hs };
    assert_int_equal(lnx_llama_forward(&fx.llama, &fx.rope, &kv, &s, fx.pool, &p), LNX_OK);
    ref_check("text hidden states", hs, (Lyr + 1) * L * D, ref, "text_hidden_states", TOL_FEAT);
    ref_check("logits_last", logits + (L - 1) * V, V, ref, "logits_last", TOL_LOGITS);
    ref_check("logits_last8", logits + (L - 8) * V, 8 * V, ref, "logits_last8", TOL_LOGITS);
    int64_t *argmax = ref_ints(ref, "logits_all_argmax", NULL);
    float *lse = ref_floats(ref, "logits_all_logsumexp", NULL);
    for (int64_t t = 0; t < L; t++) {
        float *row = logits + t * V;
        int64_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (row[v] > row[best])
                best = v;
        assert_int_equal(best, argmax[t]);
        double l = lnx_softmax(row, V);
        assert_true(fabs(l - lse[t]) <= TOL_LOGITS);
    }
    /* greedy continuation */
    int64_t ng;
    int64_t *gen = ref_ints(ref, "generated_ids", &ng);
    float *step_logits = ref_floats(ref, "generation_step_top5_logits", NULL);
    int64_t *top5 = ref_ints(ref, "generation_step_top5_ids", NULL);
    int32_t next;
    {
        /* first token from the prompt's last logits (recomputed: the softmax above changed them) */
        lnx_llama_pass last = { emb + (L - 1) * D, 0, 0, 0, 0, NULL, NULL };
        (void)last;
    }
    float *one = malloc(sizeof(float) * (size_t)V);
    float *x = malloc(sizeof(float) * (size_t)D);
    /* the prompt's last-row logits are the reference's logits_last */
    float *ll = ref_floats(ref, "logits_last", NULL);
    memcpy(one, ll, sizeof(float) * (size_t)V);
    free(ll);
    int64_t pos = L;
    for (int64_t step = 0; step < ng; step++) {
        int32_t best = 0;
        for (int32_t v = 1; v < V; v++)
            if (one[v] > one[best])
                best = v;
        next = best;
        assert_int_equal(next, gen[step]);
        if (step > 0)
            for (int k = 0; k < 5; k++)
                assert_true(fabs(one[top5[step * 5 + k]] - step_logits[step * 5 + k]) <= TOL_LOGITS);
        lnx_llama_embed(&fx.llama, &next, 1, x);
        lnx_llama_pass d1 = { x, 1, pos, 0, 1, one, NULL };
        assert_int_equal(lnx_llama_forward(&fx.llama, &fx.rope, &kv, &s, fx.pool, &d1), LNX_OK);
        pos++;
    }
    printf("    greedy: %lld tokens identical\n", (long long)ng);
    free(one); free(x); free(step_logits); free(top5); free(gen); free(argmax); free(lse);
    free(hs); free(logits); free(emb);
    lnx_llama_scratch_free(&s);
    lnx_kv_free(&kv);
    lnx_st_close(ref);
}

static void video8_h264(void **s) { (void)s; video_features_match("video8_h264"); decoder_matches("video8_h264"); }
static void video4_vp9(void **s) { (void)s; video_features_match("video4_vp9"); decoder_matches("video4_vp9"); }
static void video8_mjpeg(void **s) { (void)s; video_features_match("video8_mjpeg"); decoder_matches("video8_mjpeg"); }
static void video4_h264_90x50(void **s) { (void)s; video_features_match("video4_h264_90x50"); decoder_matches("video4_h264_90x50"); }
static void image_png(void **s) { (void)s; image_features_match("image_png_120x80", 2, 2); decoder_matches("image_png_120x80"); }
static void image_jpeg(void **s) { (void)s; image_features_match("image_jpeg_50x130", 3, 1); decoder_matches("image_jpeg_50x130"); }
static void image_video_mixed(void **s)
{
    (void)s;
    video_features_match("image_video_mixed");
    image_features_match("image_video_mixed", 2, 2);
    decoder_matches("image_video_mixed");
}
static void text_long(void **s) { (void)s; decoder_matches("text_long"); }

int main(void)
{
    tu_require_cpu();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(video8_h264),     cmocka_unit_test(video4_vp9),   cmocka_unit_test(video8_mjpeg),
        cmocka_unit_test(video4_h264_90x50), cmocka_unit_test(image_png),  cmocka_unit_test(image_jpeg),
        cmocka_unit_test(image_video_mixed), cmocka_unit_test(text_long),
    };
    return cmocka_run_group_tests_name("ref_numerics", tests, setup, teardown);
}
