/* Precisions on a CPU without BF16 instructions (the CPU flags are masked down to AVX2 and
 * AVX-512 F/BW/VL before the library first reads them): an explicit bf16 is refused with a
 * message saying why and what to use instead, never emulated slowly; auto runs the float32 path
 * and says so in the log. */
#include "../common/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "llavanext/llavanext.h"

static char logged[4096];

static void on_log(int32_t level, const char *message, void *user_data)
{
    (void)level;
    (void)user_data;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s\n", message);
}

static void bf16_is_refused_with_the_reason(void **state)
{
    (void)state;
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.precision = LLAVANEXT_PRECISION_BF16;
    llavanext_model *m = NULL;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &mp), LLAVANEXT_E_UNSUPPORTED);
    assert_null(m);
    assert_string_contains(llavanext_last_error(), "no AVX512-BF16 instructions");
    assert_string_contains(llavanext_last_error(), "use precision f32 or auto");
}

static void auto_runs_float32_and_says_so(void **state)
{
    (void)state;
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.precision = LLAVANEXT_PRECISION_AUTO;
    mp.log = on_log;
    logged[0] = '\0';
    llavanext_model *m = NULL;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &mp), LLAVANEXT_OK);
    assert_string_contains(logged, "compute precision: f32 (auto: the CPU has no AVX512-BF16 instructions");
    llavanext_model_free(m);
}

int main(void)
{
    /* AVX2 | AVX-512 (F/BW/VL): whatever this CPU has of those, and no BF16 */
    setenv("LLAVANEXT_CPU_MASK", "3", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bf16_is_refused_with_the_reason),
        cmocka_unit_test(auto_runs_float32_and_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
