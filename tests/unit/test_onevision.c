/* LLaVA-OneVision pieces without a model: the config defaults of the family (SiglipVisionConfig,
 * Qwen2Config, LlavaOnevisionConfig), the bilinear resize against values computed by hand, and
 * the anyres_max grid rule against Python's float floor division. */
#include "../common/testutil.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "base/status.h"
#include "io/config.h"
#include "vision/onevision.h"

static lnx_status parse(lnx_model_cfg *c, const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    assert_non_null(j);
    lnx_status st = lnx_config_parse(c, j, "test config");
    json_decref(j);
    return st;
}

static void defaults_are_the_reference_classes(void **s)
{
    (void)s;
    lnx_model_cfg c;
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\"}"), LNX_OK);
    assert_int_equal(c.family, LNX_FAMILY_ONEVISION);
    /* so400m/14 at 384 with 26 layers, GELU-tanh, eps 1e-6 */
    assert_true(c.vision.siglip);
    assert_int_equal(c.vision.hidden, 1152);
    assert_int_equal(c.vision.layers, 26);
    assert_int_equal(c.vision.heads, 16);
    assert_int_equal(c.vision.intermediate, 4304);
    assert_int_equal(c.vision.image_size, 384);
    assert_int_equal(c.vision.patch_size, 14);
    assert_int_equal(c.vision.act, LNX_ACT_GELU_TANH);
    assert_true(fabsf(c.vision.ln_eps - 1e-6f) < 1e-12f);
    /* Qwen2Config */
    assert_string_equal(c.text.model_type, "qwen2");
    assert_int_equal(c.text.vocab, 151936);
    assert_int_equal(c.text.max_pos, 32768);
    assert_true(c.text.qkv_bias);
    assert_false(c.text.attention_bias);
    assert_int_equal(c.text.sliding_window, 0);
    /* LlavaOnevisionConfig */
    assert_int_equal(c.image_token, 151646);
    assert_int_equal(c.video_token, 151647);
    assert_int_equal(c.vision_feature_layer, -1);
    assert_int_equal(c.select_strategy, LNX_SELECT_FULL);
    assert_int_equal(c.anyres_max, 9);
    assert_int_equal(c.n_pinpoints, 36);
    assert_int_equal(c.pinpoints[35][0], 2304);
    assert_int_equal(c.pool_mode, LNX_POOL_BILINEAR);
    /* the processor resizes to S x S, no centre crop */
    assert_false(c.proc.do_center_crop);
    assert_int_equal(c.proc.resize_h, 384);
    /* a LLaVA-NeXT-Video config is unchanged by all this */
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_next_video\", \"text_config\": {\"vocab_size\": 32064}}"), LNX_OK);
    assert_int_equal(c.family, LNX_FAMILY_NEXT_VIDEO);
    assert_false(c.vision.siglip);
    assert_int_equal(c.vision_feature_layer, -2);
    assert_int_equal(c.proc.resize_h, 0);
}

static void qwen2_sliding_window_only_when_used(void **s)
{
    (void)s;
    lnx_model_cfg c;
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"text_config\": {\"model_type\": \"qwen2\","
                               " \"sliding_window\": 32768, \"use_sliding_window\": false, \"rope_theta\": 1e6}}"),
                     LNX_OK);
    assert_int_equal(c.text.sliding_window, 0);
    assert_true(c.text.rope_theta == 1e6);
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"text_config\": {\"model_type\": \"qwen2\","
                               " \"sliding_window\": 512, \"use_sliding_window\": true}}"),
                     LNX_OK);
    assert_int_equal(c.text.sliding_window, 512);
}

static void unsupported_forms_are_refused(void **s)
{
    (void)s;
    lnx_model_cfg c;
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"vision_aspect_ratio\": \"anyres\"}"),
                     LNX_E_UNSUPPORTED);
    assert_string_contains(lnx_last_error(), "anyres");
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"vision_aspect_ratio\": \"anyres_max_x\"}"),
                     LNX_E_FORMAT);
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"vision_config\": {\"model_type\": "
                               "\"clip_vision_model\"}}"),
                     LNX_E_UNSUPPORTED);
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"vision_config\": {\"model_type\": "
                               "\"siglip_vision_model\", \"hidden_act\": \"quick_gelu\"}}"),
                     LNX_E_UNSUPPORTED);
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"text_config\": {\"model_type\": \"qwen2\","
                               " \"hidden_act\": \"gelu\"}}"),
                     LNX_E_UNSUPPORTED);
    assert_int_equal(parse(&c, "{\"model_type\": \"llava_onevision\", \"architectures\": "
                               "[\"LlavaNextVideoForConditionalGeneration\"]}"),
                     LNX_E_UNSUPPORTED);
}

static void bilinear_matches_hand_computed_values(void **s)
{
    (void)s;
    /* x[i][j] = 5i + j is linear, so the resize gives 5 * src_y + src_x with torch's source
     * positions for 5 -> 3: (i + 0.5) * 5/3 - 0.5 clamped at 0 = 1/3, 2, 11/3 */
    float in[25], out[9];
    for (int i = 0; i < 25; i++)
        in[i] = (float)i;
    lnx_bilinear_resize(NULL, in, 1, 5, 5, 1, 3, 3, out);
    const double src[3] = { 1.0 / 3.0, 2.0, 11.0 / 3.0 };
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++)
            assert_true(fabs(out[y * 3 + x] - (5 * src[y] + src[x])) < 1e-5);
    /* upsizing 2 -> 4 clamps at both ends: sources 0 (clamped), 0.25, 0.75, 1 (last index) */
    float in2[2] = { 10.0f, 20.0f }, out2[4];
    lnx_bilinear_resize(NULL, in2, 1, 1, 2, 1, 1, 4, out2);
    assert_true(fabsf(out2[0] - 10.0f) < 1e-6f && fabsf(out2[1] - 12.5f) < 1e-6f);
    assert_true(fabsf(out2[2] - 17.5f) < 1e-6f && fabsf(out2[3] - 20.0f) < 1e-6f);
    /* channels stay independent */
    float in3[2 * 2 * 2] = { 1, 100, 3, 300, 5, 500, 7, 700 }, out3[2];
    lnx_bilinear_resize(NULL, in3, 1, 2, 2, 2, 1, 1, out3);
    assert_true(fabsf(out3[0] - 4.0f) < 1e-6f && fabsf(out3[1] - 400.0f) < 1e-4f);
}

static void anyres_max_grid_follows_python(void **s)
{
    (void)s;
    /* expected values from Python: int(rows // ratio), int(cols // ratio) */
    static const int32_t cases[][5] = {
        { 15, 20, 5, 12, 17 },  /* the tiny-ov image */
        { 10, 10, 5, 10, 10 },  /* ratio below 1.1: unchanged */
        { 81, 108, 27, 70, 93 }, /* a 3x4 grid of the real model */
        { 22, 22, 5, 14, 14 },  /* 22 / (22/15) is 14.999...: floor division gives 14 */
        { 33, 33, 5, 14, 14 },  /* 33 // 2.2 is 14.0 in Python although 33 / 2.2 rounds to 15.0 */
        { 162, 162, 27, 81, 81 },
        { 162, 54, 27, 140, 46 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t out[2];
        lnx_onevision_grid(cases[i][0], cases[i][1], cases[i][2], 9, out);
        if (out[0] != cases[i][3] || out[1] != cases[i][4])
            print_error("case %zu: got %d x %d\n", i, (int)out[0], (int)out[1]);
        assert_int_equal(out[0], cases[i][3]);
        assert_int_equal(out[1], cases[i][4]);
    }
    int32_t out[2];
    lnx_onevision_grid(81, 108, 27, 0, out); /* no limit */
    assert_int_equal(out[0], 81);
    assert_int_equal(out[1], 108);
    assert_int_equal(lnx_onevision_pool_side(27, 2), 14);
    assert_int_equal(lnx_onevision_pool_side(24, 2), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_reference_classes),
        cmocka_unit_test(qwen2_sliding_window_only_when_used),
        cmocka_unit_test(unsupported_forms_are_refused),
        cmocka_unit_test(bilinear_matches_hand_computed_values),
        cmocka_unit_test(anyres_max_grid_follows_python),
    };
    return cmocka_run_group_tests_name("onevision_parts", tests, NULL, NULL);
}
