/*
 * A NEWER caller: its structs are larger than the library's, as if built against a later
 * release that appended fields. The library accepts them only when every byte beyond its own
 * struct is zero (the caller left the new fields at their defaults) and rejects them with
 * LLAVANEXT_E_INVALID_ARGUMENT otherwise, rather than silently ignoring a setting it does not
 * know. Output structs larger than the library's are filled up to the library's size, which is
 * written back into struct_size. See docs/ABI.md.
 */
#include "../common/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "llavanext/llavanext.h"

/* A struct of a future release: today's fields, then fields this library does not know. */
#define FUTURE(T) struct { T known; uint64_t later[3]; }

static const char *tiny(void)
{
    return tu_data("tiny-a");
}

static llavanext_model *load(int32_t mode)
{
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    p.load_mode = mode;
    llavanext_model *m = NULL;
    assert_int_equal(llavanext_model_load(&m, tiny(), &p), LLAVANEXT_OK);
    return m;
}

static void params_init_zeroes_the_unknown_tail(void **state)
{
    (void)state;
    FUTURE(llavanext_generator_params) p;
    memset(&p, 0xA5, sizeof p);
    llavanext_generator_params_init(&p.known, sizeof p);
    assert_int_equal(p.known.struct_size, sizeof p);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p.later[i], 0);
}

static void model_params_with_zero_tail_are_accepted_and_set_tail_rejected(void **state)
{
    (void)state;
    FUTURE(llavanext_model_params) p;
    llavanext_model_params_init(&p.known, sizeof p);
    p.known.load_mode = LLAVANEXT_LOAD_NO_WEIGHTS;
    llavanext_model *m = NULL;
    assert_int_equal(llavanext_model_load(&m, tiny(), &p.known), LLAVANEXT_OK);
    assert_non_null(m);
    llavanext_model_free(m);

    p.later[2] = 1; /* the last byte-range of the struct */
    m = (llavanext_model *)&p;
    assert_int_equal(llavanext_model_load(&m, tiny(), &p.known), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(m);
    assert_string_contains(llavanext_last_error(), "llavanext_model_params");
    p.later[2] = 0;
    ((unsigned char *)p.later)[0] = 1; /* the first byte after the library's struct */
    assert_int_equal(llavanext_model_load(&m, tiny(), &p.known), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(m);
}

static void generator_params_with_zero_tail_are_accepted_and_set_tail_rejected(void **state)
{
    (void)state;
    llavanext_model *m = load(LLAVANEXT_LOAD_MMAP);
    FUTURE(llavanext_generator_params) p;
    llavanext_generator_params_init(&p.known, sizeof p);
    p.known.threads = 1;
    p.known.context_length = 32;
    llavanext_generator *g = NULL;
    assert_int_equal(llavanext_generator_create(&g, m, &p.known), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_context_length(g), 32);
    llavanext_generator_free(g);
    p.later[1] = 7;
    assert_int_equal(llavanext_generator_create(&g, m, &p.known), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(g);
    assert_string_contains(llavanext_last_error(), "llavanext_generator_params");
    llavanext_model_free(m);
}

static void vision_encoder_and_pooler_params_with_set_tail_are_rejected(void **state)
{
    (void)state;
    llavanext_model *m = load(LLAVANEXT_LOAD_MMAP);
    FUTURE(llavanext_vision_encoder_params) vp;
    llavanext_vision_encoder_params_init(&vp.known, sizeof vp);
    vp.known.threads = 1;
    llavanext_vision_encoder *e = NULL;
    assert_int_equal(llavanext_vision_encoder_create(&e, m, &vp.known), LLAVANEXT_OK);
    llavanext_vision_encoder_free(e);
    vp.later[2] = 1;
    assert_int_equal(llavanext_vision_encoder_create(&e, m, &vp.known), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(e);

    FUTURE(llavanext_pooler_params) pp;
    llavanext_pooler_params_init(&pp.known, sizeof pp);
    pp.known.threads = 1;
    llavanext_pooler *pl = NULL;
    assert_int_equal(llavanext_pooler_create(&pl, m, &pp.known), LLAVANEXT_OK);
    llavanext_pooler_free(pl);
    pp.later[0] = 1;
    assert_int_equal(llavanext_pooler_create(&pl, m, &pp.known), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(pl);
    llavanext_model_free(m);
}

static void frame_sampler_params_tail_and_larger_media_info_is_filled_to_the_librarys_size(void **state)
{
    (void)state;
    FUTURE(llavanext_frame_sampler_params) p;
    llavanext_frame_sampler_params_init(&p.known, sizeof p);
    llavanext_frame_sampler *s = NULL;
    const char *clip = tu_data("media/clip_h264_90x50_41f.mp4");
    assert_int_equal(llavanext_frame_sampler_open(&s, clip, &p.known), LLAVANEXT_OK);

    FUTURE(llavanext_media_info) info;
    memset(&info, 0xA5, sizeof info);
    info.known.struct_size = sizeof info;
    assert_int_equal(llavanext_frame_sampler_info(&info.known, s), LLAVANEXT_OK);
    assert_int_equal(info.known.struct_size, sizeof(llavanext_media_info));
    assert_int_equal(info.known.width, 90);
    assert_int_equal(info.known.height, 50);
    for (int i = 0; i < 3; i++)
        assert_int_equal(info.later[i], 0xA5A5A5A5A5A5A5A5u);
    llavanext_frame_sampler_free(s);

    p.later[1] = 1;
    s = NULL;
    assert_int_equal(llavanext_frame_sampler_open(&s, clip, &p.known), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(s);
}

static void larger_budget_is_filled_to_the_librarys_size(void **state)
{
    (void)state;
    llavanext_model *m = load(LLAVANEXT_LOAD_NO_WEIGHTS);
    FUTURE(llavanext_budget) b;
    memset(&b, 0xA5, sizeof b);
    b.known.struct_size = sizeof b;
    assert_int_equal(llavanext_model_plan_budget(&b.known, m, 2, 0, 0, 10, 5, 0.0, 0), LLAVANEXT_OK);
    assert_int_equal(b.known.struct_size, sizeof(llavanext_budget));
    assert_int_equal(b.known.visual_tokens, 2 * (int64_t)b.known.tokens_per_frame);
    for (int i = 0; i < 3; i++)
        assert_int_equal(b.later[i], 0xA5A5A5A5A5A5A5A5u);
    llavanext_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(params_init_zeroes_the_unknown_tail),
        cmocka_unit_test(model_params_with_zero_tail_are_accepted_and_set_tail_rejected),
        cmocka_unit_test(generator_params_with_zero_tail_are_accepted_and_set_tail_rejected),
        cmocka_unit_test(vision_encoder_and_pooler_params_with_set_tail_are_rejected),
        cmocka_unit_test(frame_sampler_params_tail_and_larger_media_info_is_filled_to_the_librarys_size),
        cmocka_unit_test(larger_budget_is_filled_to_the_librarys_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
