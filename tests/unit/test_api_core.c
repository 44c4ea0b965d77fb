/* The public core API, through the shared library only. */
#include "../common/testutil.h"

#include <stdio.h>
#include <string.h>

#include "llavanext/llavanext.h"

static void version_matches_header(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", LLAVANEXT_VERSION_MAJOR, LLAVANEXT_VERSION_MINOR,
             LLAVANEXT_VERSION_PATCH);
    assert_string_equal(llavanext_version(), want);
    assert_int_equal(llavanext_version_number(), LLAVANEXT_VERSION_NUMBER);
}

static void status_strings_are_total_and_distinct(void **state)
{
    (void)state;
    const char *seen[32];
    int n = 0;
    for (int32_t s = LLAVANEXT_E_TEMPLATE; s <= LLAVANEXT_DONE; s++) {
        const char *str = llavanext_status_string(s);
        assert_non_null(str);
        assert_string_not_equal(str, "unknown status");
        for (int i = 0; i < n; i++)
            assert_string_not_equal(seen[i], str);
        seen[n++] = str;
    }
    assert_string_equal(llavanext_status_string(-999), "unknown status");
    assert_string_equal(llavanext_status_string(INT32_MAX), "unknown status");
}

static void last_error_is_never_null_and_free_accepts_null(void **state)
{
    (void)state;
    assert_non_null(llavanext_last_error());
    llavanext_free(NULL);
}

static int log_calls;
static void count_log(int32_t level, const char *msg, void *ud)
{
    (void)level; (void)msg;
    *(int *)ud += 1;
}

static void default_log_can_be_set_and_cleared(void **state)
{
    (void)state;
    llavanext_set_default_log(count_log, &log_calls);
    llavanext_set_default_log(NULL, NULL);
    assert_int_equal(log_calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_matches_header),
        cmocka_unit_test(status_strings_are_total_and_distinct),
        cmocka_unit_test(last_error_is_never_null_and_free_accepts_null),
        cmocka_unit_test(default_log_can_be_set_and_cleared),
    };
    return cmocka_run_group_tests_name("api_core", tests, NULL, NULL);
}
