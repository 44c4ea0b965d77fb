/* Accuracy of the bf16 compute path (oneDNN matmul, bf16 activations, float32 accumulation,
 * half-precision KV cache) on every fixture case, against the reference tensors:
 *
 *  - vision: max |features - ref| / max |ref| of the selected CLIP features;
 *  - text: relative error of the prompt's last logits, max |logits - ref| / max |ref|;
 *  - top-1 agreement along the reference greedy sequence (teacher forcing: each generated token
 *    is fed back and the next argmax compared with the reference's next token).
 *
 * The bounds are the measured values with a margin (docs/performance.md has the table). The test
 * skips, saying why, where the bf16 path cannot run (no oneDNN in the build, no AVX512-BF16). */
#include "../common/reftensor.h"
#include "../common/testutil.h"

#include <math.h>
#include <stdlib.h>

#include "io/config.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "llm/llama.h"
#include "vision/clip.h"
#include "llm/sampling.h"

/* measured on the fixtures (see docs/performance.md) with about 2x margin */
#define MAX_FEAT_REL 0.04
#define MAX_LOGIT_REL 0.04
#define MIN_TOP1 0.85

typedef struct fixture {
    lnx_model_cfg cfg;
    lnx_st *st;
    lnx_wstore *ws;
    lnx_clip clip;
    lnx_llama llama;
    lnx_rope rope;
    lnx_pool *pool;
    lnx_gemm_ctx *gemm;
} fixture;

static fixture fx;

static int setup(void **state)
{
    (void)state;
    const char *why = NULL;
    if (!lnx_gemm_bf16_available(&why)) {
        printf("bf16 accuracy: skipped: %s\n", why);
        return 0;
    }
    json_t *cj;
    assert_int_equal(lnx_json_load_file(&cj, tu_data("tiny-a/config.json")), LNX_OK);
    assert_int_equal(lnx_config_parse(&fx.cfg, cj, "config.json"), LNX_OK);
    json_decref(cj);
    assert_int_equal(lnx_st_open(&fx.st, tu_data("tiny-a/model.safetensors"), LNX_ST_MMAP), LNX_OK);
    assert_int_equal(lnx_wstore_create(&fx.ws, fx.st), LNX_OK);
    assert_int_equal(lnx_clip_bind(&fx.clip, &fx.cfg, fx.ws, "vision_tower.vision_model."), LNX_OK);
    assert_int_equal(lnx_llama_bind(&fx.llama, &fx.cfg.text, fx.ws, "language_model.model.", "language_model.lm_head.weight"),
                     LNX_OK);
    assert_int_equal(lnx_rope_init(&fx.rope, fx.cfg.text.head_dim, fx.cfg.text.rope_theta, fx.cfg.text.rope_factor), LNX_OK);
    assert_int_equal(lnx_pool_create(&fx.pool, 2), LNX_OK);
    assert_int_equal(lnx_gemm_ctx_create(&fx.gemm, LNX_PRECISION_BF16), LNX_OK);
    fx.clip.gemm = fx.gemm;
    fx.llama.gemm = fx.gemm;
    printf("    %-20s %12s %12s %10s\n", "case", "features", "last logits", "top-1");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!fx.gemm)
        return 0;
    lnx_gemm_ctx_free(fx.gemm);
    lnx_pool_free(fx.pool);
    lnx_rope_free(&fx.rope);
    lnx_llama_unbind(&fx.llama);
    lnx_clip_unbind(&fx.clip);
    lnx_wstore_free(fx.ws);
    lnx_st_close(fx.st);
    return 0;
}

static double max_abs(const float *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

static double rel_err(const float *got, const float *want, int64_t n)
{
    return ref_max_diff(got, want, n) / max_abs(want, n);
}

/* Selected features of the case's pixels ("video" or "image"); -1 when the case has none. */
static double feature_error(const lnx_st *ref, const char *kind)
{
    char name[64];
    snprintf(name, sizeof name, "pixel_values%s", kind[0] == 'v' ? "_videos" : "");
    if (!lnx_st_find(ref, name))
        return -1;
    const lnx_st_tensor *pv = ref_tensor(ref, name);
    int64_t F = pv->shape[1];
    float *pixels = ref_floats(ref, name, NULL);
    int64_t n = F * lnx_clip_out_tokens(&fx.clip) * fx.cfg.vision.hidden;
    float *out = malloc(sizeof(float) * (size_t)n);
    assert_int_equal(lnx_clip_forward(&fx.clip, fx.pool, pixels, (int32_t)F, out, NULL, NULL, NULL, NULL), LNX_OK);
    snprintf(name, sizeof name, "%s_selected_features", kind);
    float *want = ref_floats(ref, name, NULL);
    double e = rel_err(out, want, n);
    free(want);
    free(out);
    free(pixels);
    return e;
}

static void case_accuracy(const char *case_name)
{
    if (!fx.gemm) {
        skip();
        return;
    }
    lnx_st *ref = ref_open(case_name);
    double fe = feature_error(ref, "video"), fi = feature_error(ref, "image");
    double feat = fe > fi ? fe : fi;
    int64_t n;
    float *emb = ref_floats(ref, "inputs_embeds", &n);
    const int64_t D = fx.cfg.text.hidden;
    const int32_t V = fx.cfg.text.vocab;
    int64_t L = n / D, ng;
    int64_t *gen = ref_ints(ref, "generated_ids", &ng);
    lnx_kv kv;
    assert_int_equal(lnx_kv_init_dtype(&kv, fx.cfg.text.layers, fx.cfg.text.kv_heads * fx.cfg.text.head_dim, L + ng + 1,
                                       LNX_DT_F16), LNX_OK);
    lnx_llama_scratch s = { 0 };
    float *logits = malloc(sizeof(float) * (size_t)V), *x = malloc(sizeof(float) * (size_t)D);
    lnx_llama_pass p = { emb, L, 0, L - 1, 1, logits, NULL };
    assert_int_equal(lnx_llama_forward(&fx.llama, &fx.rope, &kv, &s, fx.pool, &p), LNX_OK);
    float *want = ref_floats(ref, "logits_last", NULL);
    double lerr = rel_err(logits, want, V);
    int agree = 0;
    for (int64_t step = 0; step < ng; step++) {
        agree += lnx_argmax(logits, V) == gen[step];
        int32_t tok = (int32_t)gen[step];
        lnx_llama_embed(&fx.llama, &tok, 1, x);
        lnx_llama_pass d = { x, 1, L + step, 0, 1, logits, NULL };
        assert_int_equal(lnx_llama_forward(&fx.llama, &fx.rope, &kv, &s, fx.pool, &d), LNX_OK);
    }
    double top1 = (double)agree / (double)ng;
    printf("    %-20s %12.3g %12.3g %4d/%-5lld\n", case_name, feat, lerr, agree, (long long)ng);
    if (feat >= 0)
        assert_true(feat <= MAX_FEAT_REL);
    assert_true(lerr <= MAX_LOGIT_REL);
    assert_true(top1 >= MIN_TOP1);
    free(want);
    free(x);
    free(logits);
    free(gen);
    free(emb);
    lnx_llama_scratch_free(&s);
    lnx_kv_free(&kv);
    lnx_st_close(ref);
}

static void video8_h264(void **s) { (void)s; case_accuracy("video8_h264"); }
static void video4_vp9(void **s) { (void)s; case_accuracy("video4_vp9"); }
static void video8_mjpeg(void **s) { (void)s; case_accuracy("video8_mjpeg"); }
static void video4_h264_90x50(void **s) { (void)s; case_accuracy("video4_h264_90x50"); }
static void image_png(void **s) { (void)s; case_accuracy("image_png_120x80"); }
static void image_jpeg(void **s) { (void)s; case_accuracy("image_jpeg_50x130"); }
static void image_video_mixed(void **s) { (void)s; case_accuracy("image_video_mixed"); }
static void text_long(void **s) { (void)s; case_accuracy("text_long"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(video8_h264),       cmocka_unit_test(video4_vp9), cmocka_unit_test(video8_mjpeg),
        cmocka_unit_test(video4_h264_90x50), cmocka_unit_test(image_png),  cmocka_unit_test(image_jpeg),
        cmocka_unit_test(image_video_mixed), cmocka_unit_test(text_long),
    };
    return cmocka_run_group_tests_name("bf16_accuracy", tests, setup, teardown);
}
