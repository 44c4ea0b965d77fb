/*
 * An OLDER caller: compiled against tests/abi/old_header/llavanext_older.h only (whose
 * llavanext_model_params, llavanext_generator_params and llavanext_budget lack their last
 * fields) and linked with the current shared library. The library must accept the smaller
 * structs, use its defaults for what they lack, and never touch a byte beyond struct_size:
 * every struct here ends exactly at a PROT_NONE guard page, so a stray read or write crashes.
 * See docs/ABI.md.
 */
#include "../common/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "llavanext_older.h"

#ifdef LLAVANEXT_H
#error "the old caller must not see the current header"
#endif

/* `size` bytes that end where an unmapped page begins (never freed: a test process). */
static void *guarded(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    assert_int_equal(mprotect(p + page, page, PROT_NONE), 0);
    memset(p, 0xA5, page);
    return p + page - size;
}

static const char *tiny(void)
{
    return tu_data("tiny-a");
}

static void header_is_not_newer_than_the_library(void **state)
{
    (void)state;
    assert_true(llavanext_version_number() >= LLAVANEXT_VERSION_NUMBER);
    assert_int_equal(llavanext_version_number() / 10000, LLAVANEXT_VERSION_MAJOR);
}

static void params_init_writes_only_the_callers_size(void **state)
{
    (void)state;
    llavanext_model_params *mp = guarded(sizeof *mp);
    llavanext_model_params_init(mp, sizeof *mp);
    assert_int_equal(mp->struct_size, sizeof *mp);
    assert_int_equal(mp->load_mode, LLAVANEXT_LOAD_MMAP);
    assert_int_equal(mp->check_finite, 0);

    llavanext_generator_params *gp = guarded(sizeof *gp);
    llavanext_generator_params_init(gp, sizeof *gp);
    assert_int_equal(gp->struct_size, sizeof *gp);
    assert_int_equal(gp->context_length, 0);
    assert_int_equal(gp->prefill_chunk, 0);
}

static void model_load_reads_the_older_struct(void **state)
{
    (void)state;
    llavanext_model_params *mp = guarded(sizeof *mp);
    llavanext_model_params_init(mp, sizeof *mp);
    mp->load_mode = LLAVANEXT_LOAD_NO_WEIGHTS;
    llavanext_model *m = NULL;
    assert_int_equal(llavanext_model_load(&m, tiny(), mp), LLAVANEXT_OK);
    assert_non_null(m);
    assert_true(llavanext_model_vocab_size(m) > 0);
    /* load_mode was read from the older struct: there are no weights to generate with. */
    llavanext_generator *g = NULL;
    assert_int_equal(llavanext_generator_create(&g, m, NULL), LLAVANEXT_E_STATE);
    assert_null(g);
    llavanext_model_free(m);
}

static void generator_reads_the_older_struct_and_defaults_the_rest(void **state)
{
    (void)state;
    llavanext_model *m = NULL;
    assert_int_equal(llavanext_model_load(&m, tiny(), NULL), LLAVANEXT_OK);
    llavanext_generator_params *gp = guarded(sizeof *gp);
    llavanext_generator_params_init(gp, sizeof *gp);
    gp->threads = 1;
    gp->context_length = 48;
    gp->max_new_tokens = 3;
    gp->temperature = 0.0f;
    llavanext_generator *g = NULL;
    assert_int_equal(llavanext_generator_create(&g, m, gp), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_context_length(g), 48);
    static const char prompt[] = "USER: hello ASSISTANT:";
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    int64_t before = llavanext_generator_position(g);
    llavanext_status st;
    int32_t token, steps = 0;
    while ((st = llavanext_generator_next(g, NULL, NULL, &token)) == LLAVANEXT_OK)
        steps++;
    assert_int_equal(st, LLAVANEXT_DONE);
    assert_true(steps <= 3);
    assert_true(llavanext_generator_position(g) <= before + 3);
    llavanext_generator_free(g);
    llavanext_model_free(m);
}

static void plan_budget_fills_only_the_callers_size(void **state)
{
    (void)state;
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = LLAVANEXT_LOAD_NO_WEIGHTS;
    llavanext_model *m = NULL;
    assert_int_equal(llavanext_model_load(&m, tiny(), &mp), LLAVANEXT_OK);
    llavanext_budget *b = guarded(sizeof *b);
    b->struct_size = sizeof *b;
    assert_int_equal(llavanext_model_plan_budget(b, m, 4, 0, 0, 10, 5, 0.0, 0), LLAVANEXT_OK);
    assert_int_equal(b->struct_size, sizeof *b);
    assert_int_equal(b->tokens_per_frame, llavanext_model_tokens_per_frame(m, 0));
    assert_int_equal(b->visual_tokens, 4 * (int64_t)b->tokens_per_frame);
    assert_int_equal(b->total_tokens, b->visual_tokens + 15);
    assert_true(b->context_length > 0);
    assert_int_equal(b->fits, b->total_tokens <= b->context_length);
    llavanext_model_free(m);
}

static void struct_size_smaller_than_its_own_field_is_rejected(void **state)
{
    (void)state;
    uint32_t sizes[] = { 0, 1, 3 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        llavanext_model_params *mp = guarded(sizeof *mp);
        llavanext_model_params_init(mp, sizeof *mp);
        mp->struct_size = sizes[i];
        llavanext_model *m = (llavanext_model *)mp; /* any non-NULL value: must be reset */
        assert_int_equal(llavanext_model_load(&m, tiny(), mp), LLAVANEXT_E_INVALID_ARGUMENT);
        assert_null(m);
        assert_string_contains(llavanext_last_error(), "struct_size");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_is_not_newer_than_the_library),
        cmocka_unit_test(params_init_writes_only_the_callers_size),
        cmocka_unit_test(model_load_reads_the_older_struct),
        cmocka_unit_test(generator_reads_the_older_struct_and_defaults_the_rest),
        cmocka_unit_test(plan_budget_fills_only_the_callers_size),
        cmocka_unit_test(struct_size_smaller_than_its_own_field_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
