#include "../common/testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/template.h"

/* Parses and renders `src` with `messages` (JSON text, NULL = []) and the usual special tokens.
 * Returns the rendering (free()) or NULL, with the status in *st. */
static char *render_with(const char *src, const char *messages, int add_generation_prompt, lnx_status *st)
{
    lnx_template *t = NULL;
    *st = lnx_template_parse(&t, src, strlen(src));
    if (*st != LNX_OK) {
        assert_null(t);
        return NULL;
    }
    json_error_t jerr;
    json_t *msgs = json_loads(messages ? messages : "[]", 0, &jerr);
    assert_non_null(msgs);
    char *out = NULL;
    size_t len = 0;
    *st = lnx_template_render(t, msgs, add_generation_prompt, "<s>", "</s>", "<unk>", &out, &len);
    if (*st == LNX_OK) {
        assert_non_null(out);
        assert_int_equal(strlen(out), len);
    } else {
        assert_null(out);
        assert_int_equal(len, 0);
    }
    json_decref(msgs);
    lnx_template_free(t);
    return out;
}

static inline void expect_render(const char *src, const char *messages, const char *expected)
{
    lnx_status st;
    char *out = render_with(src, messages, 1, &st);
    if (st != LNX_OK)
        fail_msg("template %s: status %d: %s", src, st, lnx_last_error());
    assert_string_equal(out, expected);
    free(out);
}

static inline void expect_error(const char *src, const char *messages, lnx_status want, const char *detail)
{
    lnx_status st;
    char *out = render_with(src, messages, 1, &st);
    if (st == LNX_OK)
        fail_msg("template %s rendered %s, expected an error", src, out);
    assert_int_equal(st, want);
    if (!strstr(lnx_last_error(), detail))
        fail_msg("template %s: error '%s' does not contain '%s'", src, lnx_last_error(), detail);
}

/* ---- reference cases ------------------------------------------------------------------------ */

static void reference_cases_render_byte_for_byte(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *templates = json_load_file(tu_data("templates/chat_templates.json"), 0, &jerr);
    json_t *cases = json_load_file(tu_data("templates/cases.json"), 0, &jerr);
    assert_non_null(templates);
    assert_non_null(cases);
    json_t *list = json_object_get(cases, "cases");
    assert_int_equal(json_array_size(list), 64);
    size_t index;
    json_t *c;
    int errors = 0;
    json_array_foreach(list, index, c) {
        const char *name = json_string_value(json_object_get(c, "template"));
        json_t *tj = json_object_get(json_object_get(json_object_get(templates, "templates"), name), "template");
        assert_non_null(tj);
        lnx_template *t = NULL;
        assert_int_equal(lnx_template_parse(&t, json_string_value(tj), json_string_length(tj)), LNX_OK);
        char *out = NULL;
        size_t len = 0;
        lnx_status st = lnx_template_render(t, json_object_get(c, "messages"),
                                            json_is_true(json_object_get(c, "add_generation_prompt")), "<s>", "</s>",
                                            "<unk>", &out, &len);
        json_t *want = json_object_get(c, "rendered");
        if (json_is_string(want)) {
            assert_int_equal(st, LNX_OK);
            assert_int_equal(len, json_string_length(want));
            assert_memory_equal(out, json_string_value(want), len);
            assert_int_equal(out[len], '\0');
        } else {
            assert_true(json_is_null(want));
            assert_int_equal(st, LNX_E_TEMPLATE);
            assert_null(out);
            assert_string_contains(lnx_last_error(), json_string_value(json_object_get(c, "error")));
            errors++;
        }
        free(out);
        lnx_template_free(t);
    }
    assert_true(errors > 0);
    json_decref(cases);
    json_decref(templates);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_cases_render_byte_for_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
