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

static void expect_render(const char *src, const char *messages, const char *expected)
{
    lnx_status st;
    char *out = render_with(src, messages, 1, &st);
    if (st != LNX_OK)
        fail_msg("template %s: status %d: %s", src, st, lnx_last_error());
    if (strcmp(out, expected) != 0)
        fail_msg("template %s rendered '%s', expected '%s'", src, out, expected);
    free(out);
}

static void expect_error(const char *src, const char *messages, lnx_status want, const char *detail)
{
    lnx_status st;
    char *out = render_with(src, messages, 1, &st);
    if (st == LNX_OK)
        fail_msg("template %s rendered '%s', expected an error", src, out);
    if (st != want)
        fail_msg("template %s: status %d (%s), expected %d", src, st, lnx_last_error(), want);
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
            if (st != LNX_OK)
                fail_msg("case %zu: status %d: %s", index, st, lnx_last_error());
            assert_int_equal(len, json_string_length(want));
            assert_memory_equal(out, json_string_value(want), len);
            assert_int_equal(out[len], '\0');
        } else {
            assert_true(json_is_null(want));
            assert_int_equal(st, LNX_E_TEMPLATE);
            assert_null(out);
            assert_string_equal(lnx_last_error(), json_string_value(json_object_get(c, "error")));
            errors++;
        }
        free(out);
        lnx_template_free(t);
    }
    assert_true(errors > 0);
    json_decref(cases);
    json_decref(templates);
}

/* ---- constructs, against renderings by Jinja2 ----------------------------------------------- */

/* Generated from Jinja2 3.1.6 with transformers' chat-template environment. */
static const char messages_fixture[] =
    "[{\"role\": \"system\", \"content\": \"Be brief.\"}, "
    "{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, "
    "{\"type\": \"text\", \"text\": \"Hi\"}, "
    "{\"type\": \"video\"}]}, "
    "{\"role\": \"assistant\", \"content\": \"Hello!\"}]";

typedef struct golden { const char *group, *source, *expected; } golden;

static const golden goldens[] = {
    {"whitespace_control",
     "a  {{- 'b' -}}  c",
     "abc"},
    {"whitespace_control",
     "a \n {%- if true %}b{% endif %}\n c",
     "ab c"},
    {"whitespace_control",
     "a {#- c -#}  b",
     "ab"},
    {"whitespace_control",
     "{%- if true -%}\n\n  a  \n\n{%- endif -%}\n\nb",
     "ab"},
    {"whitespace_control",
     "x {%+ if true %} y{% endif %}",
     "x  y"},
    {"whitespace_control",
     "x  {% if true +%}\ny{% endif %}",
     "x  \ny"},
    {"whitespace_control",
     "{{ 'a' }}\n{{ 'b' }}\n",
     "a\nb"},
    {"trim_and_lstrip_blocks",
     "x\n  {% if true %}\n  y\n  {% endif %}\nz",
     "x\n  y\nz"},
    {"trim_and_lstrip_blocks",
     "a\n    {% for i in [1,2] %}\n    {{ i }}\n    {% endfor %}\nb",
     "a\n    1\n    2\nb"},
    {"trim_and_lstrip_blocks",
     "  {{ 1 }}",
     "  1"},
    {"trim_and_lstrip_blocks",
     "\t{% if true %}x{% endif %}",
     "x"},
    {"trim_and_lstrip_blocks",
     "a  {% if true %}x{% endif %}",
     "a  x"},
    {"trim_and_lstrip_blocks",
     "  {# c #}\nx",
     "x"},
    {"trim_and_lstrip_blocks",
     "{% if true %}\n\n{% endif %}x",
     "\nx"},
    {"trim_and_lstrip_blocks",
     " \n {% if 1 %} x {% endif %} \n",
     " \n x  "},
    {"trim_and_lstrip_blocks",
     "a\r\nb\r\n{% if true %}\r\nc{% endif %}\r\n",
     "a\nb\nc"},
    {"comments_and_raw",
     "{# c #}\nx",
     "x"},
    {"comments_and_raw",
     "a{# {{ x }} {% if %} #}b",
     "ab"},
    {"comments_and_raw",
     "{% raw %}{{ x }}{% endraw %}",
     "{{ x }}"},
    {"comments_and_raw",
     "a {%- raw -%}  {{ x }}  {%- endraw -%} b",
     "a{{ x }}b"},
    {"comments_and_raw",
     "{# multi\nline #}z",
     "z"},
    {"string_literals_and_escapes",
     "{{ 'a\\nb' }}",
     "a\nb"},
    {"string_literals_and_escapes",
     "{{ 'a\\sb' }}",
     "a\\sb"},
    {"string_literals_and_escapes",
     "{{ '<\\s> ' }}",
     "<\\s> "},
    {"string_literals_and_escapes",
     "{{ \"d\\\"q\" }}{{ 'x\\'y' }}",
     "d\"qx'y"},
    {"string_literals_and_escapes",
     "{{ '\\t|\\\\|\\x41\\u00e9\\U0001F600|\\101' }}",
     "\t|\\|A\303\251\360\237\230\200|A"},
    {"string_literals_and_escapes",
     "{{ 'a' 'b' \"c\" }}",
     "abc"},
    {"string_literals_and_escapes",
     "{{ '\303\251\\\303\251' }}",
     "\303\251\\xe9"},
    {"string_literals_and_escapes",
     "{{ 'a\\\nb' }}",
     "ab"},
    {"string_literals_and_escapes",
     "{{ '<image>\n' }}",
     "<image>\n"},
    {"numbers_and_constants",
     "{{ 42 }}{{ -7 }}{{ 1_000 }}{{ 0x1F }}{{ 0o17 }}{{ 0b101 }}",
     "42-7100031155"},
    {"numbers_and_constants",
     "{{ 1.5 }}|{{ 2e3 }}|{{ 1e16 }}|{{ 0.0001 }}|{{ 1.5e-7 }}|{{ "
     "3.0 }}|{{ 0.1 + 0.2 }}",
     "1.5|2000.0|1e+16|0.0001|1.5e-07|3.0|0.30000000000000004"},
    {"numbers_and_constants",
     "{{ true }}{{ True }}{{ false }}{{ none }}{{ None }}",
     "TrueTrueFalseNoneNone"},
    {"numbers_and_constants",
     "{{ [1, 'a', none, true, 1.0] }}{{ (1,) }}{{ (1, 2) }}{{ {'a'"
     ": 1, 'b': [2]} }}",
     "[1, 'a', None, True, 1.0](1,)(1, 2){'a': 1, 'b': [2]}"},
    {"numbers_and_constants",
     "{{ [\"it's\", 'q\"', 'b\\\\', 'n\\n'] }}",
     "[\"it's\", 'q\"', 'b\\\\', 'n\\n']"},
    {"operators",
     "{{ 1 + 2 * 3 }}{{ (1 + 2) * 3 }}",
     "79"},
    {"operators",
     "{{ 7 // 2 }}{{ -7 // 2 }}{{ 7 % 3 }}{{ -7 % 3 }}{{ 7 % -3 }}",
     "3-412-2"},
    {"operators",
     "{{ 7 / 2 }}{{ 2 ** 10 }}",
     "3.51024"},
    {"operators",
     "{{ 'a' + 'b' }}{{ 'a' ~ 1 ~ none ~ true }}",
     "aba1NoneTrue"},
    {"operators",
     "{{ 'ab' * 3 }}{{ [1] * 2 }}{{ [1] + [2] }}",
     "ababab[1, 1][1, 2]"},
    {"operators",
     "{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' != 'b' }}{{ [1] == [1] }"
     "}{{ (1,) == [1] }}",
     "TrueTrueTrueTrueFalse"},
    {"operators",
     "{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'a' < 'b' }}{{ 2 <= 2 }}{{ "
     "2 >= 3 }}",
     "TrueFalseTrueTrueFalse"},
    {"operators",
     "{{ 'a' in 'cat' }}{{ 1 in [1,2] }}{{ 'x' not in {'x': 1} }}{"
     "{ 'role' in messages[0] }}",
     "TrueTrueFalseTrue"},
    {"operators",
     "{{ not true }}{{ not 0 }}{{ true and 'x' }}{{ 0 or 'y' }}{{ "
     "none and 1 }}",
     "FalseTruexyNone"},
    {"operators",
     "{{ 'y' if true else 'n' }}{{ 'y' if false }}|{{ 1 if 0 else "
     "2 if 0 else 3 }}",
     "y|3"},
    {"operators",
     "{{ -(3) }}{{ +4 }}{{ -2|abs }}",
     "-342"},
    {"attribute_item_and_slice",
     "{{ messages[0]['role'] }}{{ messages[0].role }}{{ messages[-"
     "1].role }}{{ messages.0.role }}",
     "systemsystemassistantsystem"},
    {"attribute_item_and_slice",
     "{{ messages[10] }}|{{ messages[0].nope }}|{{ none.x }}|",
     "|||"},
    {"attribute_item_and_slice",
     "{{ messages[1:]|length }}{{ messages[::-1][0].role }}{{ 'hel"
     "lo'[1:3] }}{{ 'hello'[::-1] }}{{ 'hello'[-2:] }}{{ [1,2,3,4,"
     "5][::2] }}",
     "2assistantelollehlo[1, 3, 5]"},
    {"attribute_item_and_slice",
     "{{ 'h\303\251llo'[1] }}{{ 'h\303\251llo'[1:3] }}{{ 'h\303\251llo'|length }}",
     "\303\251\303\251l5"},
    {"attribute_item_and_slice",
     "{{ messages[1]['content'][1]['text'] }}{{ messages[1].conten"
     "t[0].type }}",
     "Hiimage"},
    {"for_loops",
     "{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ l"
     "oop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex"
     " }}{{ loop.revindex0 }};{% endfor %}",
     "10TrueFalse332;21FalseFalse321;32FalseTrue310;"},
    {"for_loops",
     "{% for m in messages if m.role != 'system' %}{{ loop.index }"
     "}/{{ loop.length }}:{{ m.role }} {% endfor %}",
     "1/2:user 2/2:assistant "},
    {"for_loops",
     "{% for x in [] %}a{% else %}empty{% endfor %}",
     "empty"},
    {"for_loops",
     "{% for x in [1,2] if x > 5 %}a{% else %}none{% endfor %}",
     "none"},
    {"for_loops",
     "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{%"
     " endfor %}",
     "a=1,b=2,"},
    {"for_loops",
     "{% for c in 'h\303\251y' %}[{{ c }}]{% endfor %}",
     "[h][\303\251][y]"},
    {"for_loops",
     "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range("
     "1, 10, 3) %}{{ i }}{% endfor %}{% for i in range(5, 0, -2) %"
     "}{{ i }}{% endfor %}",
     "012147531"},
    {"for_loops",
     "{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}"
     "{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
     "02"},
    {"for_loops",
     "{% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{{ a"
     " }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}",
     "113 214 1|123 224 2|"},
    {"for_loops",
     "{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }"
     "} {{ loop.cycle('odd', 'even') }} {% endfor %}",
     "-2 odd 1-3 even 2- odd "},
    {"for_loops",
     "{% for x in undefined_name %}a{% else %}b{% endfor %}",
     "b"},
    {"for_loops",
     "{% for m in messages %}{% if loop.first %}F{% elif loop.last"
     " %}L{% else %}M{% endif %}{% endfor %}",
     "FML"},
    {"set_and_scopes",
     "{% set x = 'a' %}{{ x }}",
     "a"},
    {"set_and_scopes",
     "{% set x, y = 1, 2 %}{{ x }}{{ y }}",
     "12"},
    {"set_and_scopes",
     "{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{{ x }"
     "}{% endfor %}{{ x }}",
     "231"},
    {"set_and_scopes",
     "{% set ns = namespace(found=false, n=0) %}{% for m in messag"
     "es %}{% if m.role != 'user' %}{% set ns.found = true %}{% se"
     "t ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }}{{ "
     "ns.n }}",
     "True2"},
    {"set_and_scopes",
     "{% set x %}a{{ 1 + 1 }}b{% endset %}[{{ x }}]",
     "[a2b]"},
    {"set_and_scopes",
     "{% if true %}{% set z = 5 %}{% endif %}{{ z }}",
     "5"},
    {"set_and_scopes",
     "{% if messages[0]['role'] == 'system' %}{% set loop_messages"
     " = messages[1:] %}{% else %}{% set loop_messages = messages "
     "%}{% endif %}{{ loop_messages|length }}",
     "2"},
    {"filters",
     "{{ messages|length }}{{ 'abc'|length }}{{ {'a':1}|count }}",
     "331"},
    {"filters",
     "{{ '  x \\n'|trim }}|{{ 'xxaxx'|trim('x') }}",
     "x|a"},
    {"filters",
     "{{ 'ab'|list }}{{ [3,1,2]|first }}{{ [3,1,2]|last }}{{ 1|str"
     "ing }}",
     "['a', 'b']321"},
    {"filters",
     "{{ [1,2,3]|join(', ') }}{{ ['a','b']|join }}{{ messages|join"
     "('|', attribute='role') }}",
     "1, 2, 3absystem|user|assistant"},
    {"filters",
     "{{ 'Hello World'|upper }}{{ 'Hello World'|lower }}{{ 'hello "
     "WORLD'|capitalize }}{{ 'hello-world (foo)bar'|title }}",
     "HELLO WORLDhello worldHello worldHello-World (Foo)bar"},
    {"filters",
     "{% for c in messages[1]['content'] | selectattr('type', 'equ"
     "alto', 'image') %}<image>{% endfor %}{{ messages[1].content|"
     "selectattr('type', 'eq', 'text')|map(attribute='text')|join "
     "}}",
     "<image>Hi"},
    {"filters",
     "{{ messages|rejectattr('role', 'equalto', 'user')|map(attrib"
     "ute='role')|list }}{{ [0, 1, 2, '']|select|list }}{{ [1,2,3,"
     "4]|select('odd')|list }}{{ [1,2,3,4]|reject('even')|list }}",
     "['system', 'assistant'][1, 2][1, 3][1, 3]"},
    {"filters",
     "{{ ['a','b']|map('upper')|join }}{{ messages|map(attribute='"
     "missing', default='d')|join }}",
     "ABddd"},
    {"filters",
     "{{ x|default('dflt') }}{{ ''|default('e', true) }}{{ ''|defa"
     "ult('e') }}|{{ 0|d(5) }}",
     "dflte|0"},
    {"filters",
     "{{ '42'|int }}{{ '4.7'|int }}{{ 'x'|int }}{{ 3.9|int }}{{ '2"
     ".5'|float }}{{ [1,2,3]|reverse|list }}{{ 'abc'|reverse }}",
     "424032.5[3, 2, 1]cba"},
    {"filters",
     "{{ 'aaa'|replace('a', 'b', 2) }}{{ {'a': 1, 'b': 2}|items|li"
     "st }}",
     "bba[('a', 1), ('b', 2)]"},
    {"filters",
     "{{ [3,1,2]|sort }}{{ ['b','A','c']|sort }}{{ [3,1,2]|sort(re"
     "verse=true) }}{{ messages|sort(attribute='role')|map(attribu"
     "te='role')|join(',') }}",
     "[1, 2, 3]['A', 'b', 'c'][3, 2, 1]assistant,system,user"},
    {"filters",
     "{{ 'x'|safe }}",
     "x"},
    {"tojson",
     "{{ {'b': 1, 'a': [1, 2.5, none, true, '\303\251\"\\n']}|tojson }}",
     "{\"b\": 1, \"a\": [1, 2.5, null, true, \"\303\251\\\"\\n\"]}"},
    {"tojson",
     "{{ {'b': 1, 'a': [1, {}, []]}|tojson(indent=2) }}",
     "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    {},\n    []\n  ]\n}"},
    {"tojson",
     "{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}",
     "{\"a\": 2, \"b\": 1}"},
    {"tojson",
     "{{ '\303\251'|tojson(ensure_ascii=true) }}{{ '\360\237\230\200'|tojson(true) }"
     "}",
     "\"\\u00e9\"\"\\ud83d\\ude00\""},
    {"tojson",
     "{{ messages[1]|tojson }}",
     "{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": \"te"
     "xt\", \"text\": \"Hi\"}, {\"type\": \"video\"}]}"},
    {"tojson",
     "{{ [1,2]|tojson(separators=(',', ':')) }}",
     "[1,2]"},
    {"tests",
     "{{ x is defined }}{{ x is undefined }}{{ x is not defined }}"
     "{{ none is none }}{{ 1 is none }}{{ 'a' is string }}{{ 1 is "
     "string }}",
     "FalseTrueTrueTrueFalseTrueFalse"},
    {"tests",
     "{{ 1 is number }}{{ 1.0 is float }}{{ 1 is integer }}{{ true"
     " is boolean }}{{ {} is mapping }}{{ messages[0] is mapping }"
     "}{{ 1 is iterable }}{{ messages[0].content is string }}",
     "TrueTrueTrueTrueTrueTrueFalseTrue"},
    {"tests",
     "{{ 2 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is"
     " divisibleby(4) }}{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 1 is lt 2"
     " }}{{ 'a' is in 'abc' }}{{ none is sameas none }}",
     "TrueTrueTrueFalseTrueFalseTrueTrueTrue"},
    {"tests",
     "{{ bos_token is defined }}{{ tools is none }}{{ documents is"
     " defined }}{{ add_generation_prompt }}",
     "TrueTrueTrueTrue"},
    {"methods",
     "{{ 'Hello'.upper() }}{{ 'Hello'.lower() }}{{ '  hi  '.strip("
     ") }}|{{ '  hi  '.lstrip() }}|{{ '  hi  '.rstrip() }}|{{ 'xxh"
     "ixx'.strip('x') }}",
     "HELLOhellohi|hi  |  hi|hi"},
    {"methods",
     "{{ 'hello'.startswith('he') }}{{ 'hello'.endswith('lo') }}{{"
     " 'hello'.startswith(('x', 'h')) }}",
     "TrueTrueTrue"},
    {"methods",
     "{{ 'a b  c '.split() }}{{ 'a,b,,c'.split(',') }}{{ 'a b c'.s"
     "plit(' ', 1) }}{{ '  a b  c  '.split(none, 1) }}",
     "['a', 'b', 'c']['a', 'b', '', 'c']['a', 'b c']['a', 'b  c  '"
     "]"},
    {"methods",
     "{{ 'aXbXc'.replace('X', '-') }}{{ 'hello world'.title() }}{{"
     " 'hELLO'.capitalize() }}{{ ', '.join(['a', 'b']) }}",
     "a-b-cHello WorldHelloa, b"},
    {"methods",
     "{{ messages[0].get('role') }}{{ messages[0].get('x', 'dflt')"
     " }}{{ messages[0].get('x') }}{{ messages[0].keys()|list }}{{"
     " {'a': 1}.values()|list }}",
     "systemdfltNone['role', 'content'][1]"},
};

static void check_group(const char *group)
{
    int n = 0;
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
        if (strcmp(goldens[i].group, group) != 0)
            continue;
        expect_render(goldens[i].source, messages_fixture, goldens[i].expected);
        n++;
    }
    assert_true(n > 0);
}

static void whitespace_control_strips_around_tags(void **state)
{
    (void)state;
    check_group("whitespace_control");
}

static void trim_and_lstrip_blocks_apply_to_block_tags(void **state)
{
    (void)state;
    check_group("trim_and_lstrip_blocks");
    /* one trailing newline of the source is dropped (keep_trailing_newline off) */
    expect_render("a\n", NULL, "a");
    expect_render("a\n\n", NULL, "a\n");
}

static void comments_and_raw_blocks_render_as_jinja(void **state)
{
    (void)state;
    check_group("comments_and_raw");
}

static void string_escapes_follow_python(void **state)
{
    (void)state;
    check_group("string_literals_and_escapes");
    /* the unknown escape \s stays a backslash and an s */
    expect_render("{{ '\\s' }}", NULL, "\\s");
}

static void numbers_and_constants_print_as_python(void **state)
{
    (void)state;
    check_group("numbers_and_constants");
}

static void operators_follow_python(void **state)
{
    (void)state;
    check_group("operators");
}

static void attribute_item_and_slice_access(void **state)
{
    (void)state;
    check_group("attribute_item_and_slice");
}

static void for_loops_bind_loop_variables(void **state)
{
    (void)state;
    check_group("for_loops");
}

static void set_and_namespace_follow_jinja_scoping(void **state)
{
    (void)state;
    check_group("set_and_scopes");
}

static void filters_match_jinja(void **state)
{
    (void)state;
    check_group("filters");
}

static void tojson_matches_transformers(void **state)
{
    (void)state;
    check_group("tojson");
}

static void tests_match_jinja(void **state)
{
    (void)state;
    check_group("tests");
}

static void str_and_dict_methods(void **state)
{
    (void)state;
    check_group("methods");
}

/* Qwen2-Instruct's tokenizer_config.json template (the ChatML fallback of LLaVA-OneVision
 * checkpoints without chat_template.json); expected strings rendered by jinja2 3.1 with
 * transformers' settings (sandboxed, trim_blocks, lstrip_blocks). */
static void qwen2_chatml_template_renders_as_jinja(void **state)
{
    (void)state;
    static const char qwen2[] =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
        "You are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
        "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>"
        "assistant\n' }}{% endif %}";
    expect_render(qwen2, "[{\"role\": \"user\", \"content\": \"Hi \xe8\xa7\x86\xe9\xa2\x91 \xf0\x9f\x98\x80\"}]",
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi "
                  "\xe8\xa7\x86\xe9\xa2\x91 \xf0\x9f\x98\x80<|im_end|>\n<|im_start|>assistant\n");
    expect_render(qwen2,
                  "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Q?\"}, "
                  "{\"role\": \"assistant\", \"content\": \"A.\"}, {\"role\": \"user\", \"content\": \"More\\n  spaces\"}]",
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
                  "A.<|im_end|>\n<|im_start|>user\nMore\n  spaces<|im_end|>\n<|im_start|>assistant\n");
}

static void generation_tag_renders_its_body(void **state)
{
    (void)state;
    expect_render("{% generation %}a{{ 1 }}{% endgeneration %}b", NULL, "a1b");
}

static void missing_special_tokens_are_undefined(void **state)
{
    (void)state;
    lnx_template *t = NULL;
    const char *src = "{{ bos_token is defined }}|{{ eos_token }}|{{ unk_token|default('none') }}";
    assert_int_equal(lnx_template_parse(&t, src, strlen(src)), LNX_OK);
    json_t *msgs = json_array();
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(lnx_template_render(t, msgs, 0, NULL, "</s>", NULL, &out, &len), LNX_OK);
    assert_string_equal(out, "False|</s>|none");
    free(out);
    json_decref(msgs);
    lnx_template_free(t);
}

static void source_need_not_be_nul_terminated(void **state)
{
    (void)state;
    const char src[] = "{{ 'ab' }}XYZ";
    lnx_template *t = NULL;
    assert_int_equal(lnx_template_parse(&t, src, 10), LNX_OK);
    json_t *msgs = json_array();
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(lnx_template_render(t, msgs, 0, NULL, NULL, NULL, &out, &len), LNX_OK);
    assert_string_equal(out, "ab");
    free(out);
    json_decref(msgs);
    lnx_template_free(t);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void raise_exception_gives_exactly_its_message(void **state)
{
    (void)state;
    lnx_status st;
    char *out = render_with("{% if true %}{{ raise_exception('Only user and assistant roles are supported!') }}"
                            "{% endif %}",
                            NULL, 1, &st);
    assert_null(out);
    assert_int_equal(st, LNX_E_TEMPLATE);
    assert_string_equal(lnx_last_error(), "Only user and assistant roles are supported!");
}

static void runtime_errors_name_their_position(void **state)
{
    (void)state;
    expect_error("{{ x.upper() }}", NULL, LNX_E_TEMPLATE, "template:1:4: 'x' is undefined");
    expect_error("ab\n  {{ 1 + 'a' }}", NULL, LNX_E_TEMPLATE, "template:2:8: unsupported operand type(s) for +");
    expect_error("{{ 'a'.frobnicate() }}", NULL, LNX_E_TEMPLATE, "template:1:7: unknown method 'frobnicate' of str");
    expect_error("{% for x in 5 %}{% endfor %}", NULL, LNX_E_TEMPLATE, "template:1:13: 'int' object is not iterable");
    expect_error("{{ 1 // 0 }}", NULL, LNX_E_TEMPLATE, "division or modulo by zero");
    expect_error("{% set x.y = 1 %}", NULL, LNX_E_TEMPLATE, "non-namespace");
    expect_error("{% for a, b in [[1, 2, 3]] %}{% endfor %}", NULL, LNX_E_TEMPLATE, "too many values to unpack");
    expect_error("{{ [1, 'a']|sort }}", NULL, LNX_E_TEMPLATE, "'<' not supported");
}

static void syntax_errors_name_their_position(void **state)
{
    (void)state;
    expect_error("{% if true %}\n  {{ 1 + }}{% endif %}", NULL, LNX_E_TEMPLATE,
                 "template:2:10: unexpected end of print");
    expect_error("{{ 1 2 }}", NULL, LNX_E_TEMPLATE, "template:1:6: expected end of print statement");
    expect_error("{{ }}", NULL, LNX_E_TEMPLATE, "expected an expression");
    expect_error("{{ (1 }}", NULL, LNX_E_TEMPLATE, "template:1:7: unexpected '}', expected ')'");
    expect_error("{% if x %}{% endfor %}", NULL, LNX_E_TEMPLATE, "template:1:14: unexpected tag 'endfor'");
    expect_error("{% endif %}", NULL, LNX_E_TEMPLATE, "unknown tag 'endif'");
    expect_error("{% break %}", NULL, LNX_E_TEMPLATE, "'break' outside of a loop");
    expect_error("{{ 1 ! 2 }}", NULL, LNX_E_TEMPLATE, "unexpected character '!'");
    expect_error("{{ '\\x4' }}", NULL, LNX_E_TEMPLATE, "truncated \\x escape");
    expect_error("{% for loop in [1] %}{% endfor %}", NULL, LNX_E_TEMPLATE, "'loop'");
    expect_error("{{ f(a=1, 2) }}", NULL, LNX_E_TEMPLATE, "positional argument after keyword argument");
}

static void unterminated_tags_are_errors(void **state)
{
    (void)state;
    expect_error("{% if true %}\nabc", NULL, LNX_E_TEMPLATE, "expected 'endif' to close the block opened at 1:1");
    expect_error("x{% for m in messages %}{{ m }}", NULL, LNX_E_TEMPLATE, "expected 'endfor'");
    expect_error("{% set x %}abc", NULL, LNX_E_TEMPLATE, "expected 'endset'");
    expect_error("ab{{ x", NULL, LNX_E_TEMPLATE, "template:1:3: unexpected end of template: '{{' tag is not closed");
    expect_error("{% if", NULL, LNX_E_TEMPLATE, "'{%' tag is not closed");
    expect_error("{# x", NULL, LNX_E_TEMPLATE, "missing end of comment tag");
    expect_error("{{ 'abc }}", NULL, LNX_E_TEMPLATE, "template:1:4: unterminated string literal");
    expect_error("{% raw %}abc", NULL, LNX_E_TEMPLATE, "missing end of raw directive");
}

static void unsupported_constructs_are_named(void **state)
{
    (void)state;
    expect_error("{% macro f() %}x{% endmacro %}", NULL, LNX_E_TEMPLATE,
                 "template:1:4: 'macro' tags are not supported");
    expect_error("{% include 'a.j2' %}", NULL, LNX_E_TEMPLATE, "'include' tags are not supported");
    expect_error("{% extends 'base' %}", NULL, LNX_E_TEMPLATE, "'extends' tags are not supported");
    expect_error("{% call f() %}{% endcall %}", NULL, LNX_E_TEMPLATE, "'call' tags are not supported");
    expect_error("{% import 'x' as y %}", NULL, LNX_E_TEMPLATE, "'import' tags are not supported");
    expect_error("line1\n{{ 'a'|nosuch }}", NULL, LNX_E_TEMPLATE, "template:2:8: unknown filter 'nosuch'");
    expect_error("{{ x is odd_thing }}", NULL, LNX_E_TEMPLATE, "template:1:9: unknown test 'odd_thing'");
    expect_error("{{ messages|selectattr('role', 'bogus')|list }}", NULL, LNX_E_TEMPLATE, "unknown test 'bogus'");
    expect_error("{{ nosuchfn() }}", NULL, LNX_E_TEMPLATE, "'nosuchfn' is undefined");
    expect_error("{{ [1].append(2) }}", NULL, LNX_E_TEMPLATE, "unknown method 'append' of list");
    expect_error("{{ '%s' % 1 }}", NULL, LNX_E_TEMPLATE, "string formatting");
    expect_error("{{ f(*x) }}", NULL, LNX_E_TEMPLATE, "*args");
    expect_error("{% for x in [1] recursive %}{% endfor %}", NULL, LNX_E_TEMPLATE, "recursive loops are not supported");
}

/* ---- limits --------------------------------------------------------------------------------- */

/* prefix + unit * times + closer * times + tail */
static char *repeat_text(const char *prefix, const char *unit, const char *closer, int times, const char *tail)
{
    size_t n = strlen(prefix) + (strlen(unit) + strlen(closer)) * (size_t)times + strlen(tail) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    char *p = s + sprintf(s, "%s", prefix);
    for (int i = 0; i < times; i++)
        p += sprintf(p, "%s", unit);
    for (int i = 0; i < times; i++)
        p += sprintf(p, "%s", closer);
    sprintf(p, "%s", tail);
    return s;
}

static void deep_nesting_is_limited(void **state)
{
    (void)state;
    struct {
        const char *prefix, *unit, *closer;
        int times;
        const char *tail;
    } cases[] = {
        {"{{ ", "(", ")", 5000, " }}"}, {"{{ ", "(", ")", 150, " }}"}, {"{{ ", "[", "]", 5000, " }}"},
        {"{{ ", "not ", "", 5000, "1 }}"}, {"{{ ", "- ", "", 5000, "1 }}"}, {"{{ a", ".b", "", 5000, " }}"},
        {"{{ 1", " + 1", "", 5000, " }}"}, {"{{ 1", " ~ 1", "", 5000, " }}"}, {"{{ 1", "|string", "", 5000, " }}"},
        {"", "{% if 1 %}", "{% endif %}", 5000, ""}, {"{{ 1", " if 1 else 2", "", 3000, " }}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *src = repeat_text(cases[i].prefix, cases[i].unit, cases[i].closer, cases[i].times, cases[i].tail);
        lnx_template *t = NULL;
        lnx_status st = lnx_template_parse(&t, src, strlen(src));
        if (st != LNX_E_LIMIT)
            fail_msg("case %zu: status %d (%s), expected LNX_E_LIMIT", i, st, lnx_last_error());
        assert_null(t);
        free(src);
    }
    /* moderate nesting is fine */
    char *src = repeat_text("", "{% if 1 %}", "{% endif %}", 60, "");
    expect_render(src, NULL, "");
    free(src);
}

static void nested_values_are_limited(void **state)
{
    (void)state;
    const char *grow = "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}";
    const char *uses[] = {"{{ ns.x }}", "{{ ns.x|tojson }}", "{{ ns.x == ns.x }}"};
    for (size_t i = 0; i < 3; i++) {
        char src[512];
        snprintf(src, sizeof src, "%s%s", grow, uses[i]);
        expect_error(src, NULL, LNX_E_LIMIT, "nested too deeply");
    }
}

static void output_and_work_are_limited(void **state)
{
    (void)state;
    expect_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", NULL, LNX_E_LIMIT, "exceeds");
    expect_error("{{ 'ab' * 9223372036854775807 }}", NULL, LNX_E_LIMIT, "too large");
    expect_error("{% set ns = namespace(x='a') %}{% for i in range(100) %}{% set ns.x = ns.x + ns.x %}{% endfor %}",
                 NULL, LNX_E_LIMIT, "too long");
    expect_error("{{ range(100001)|length }}", NULL, LNX_E_LIMIT, "range too big");
    expect_error("{% set r = range(5000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", NULL, LNX_E_LIMIT,
                 "exceeds 20000000 steps");
    expect_error("{% set s = 'x' * 30000000 %}{% for i in range(100000) %}{{ s[-1] }}{% endfor %}", NULL, LNX_E_LIMIT,
                 "steps");
    expect_error("{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", NULL, LNX_E_LIMIT,
                 "working memory exceeds");
    expect_error("{{ 9223372036854775807 + 1 }}", NULL, LNX_E_TEMPLATE, "integer overflow");
}

static void invalid_arguments_are_rejected(void **state)
{
    (void)state;
    lnx_template *t = (lnx_template *)1;
    assert_int_equal(lnx_template_parse(NULL, "x", 1), LNX_E_INVALID);
    assert_int_equal(lnx_template_parse(&t, NULL, 1), LNX_E_INVALID);
    assert_null(t);
    assert_int_equal(lnx_template_parse(&t, NULL, 0), LNX_OK);
    json_t *obj = json_object();
    char *out = (char *)1;
    size_t len = 7;
    assert_int_equal(lnx_template_render(t, obj, 0, NULL, NULL, NULL, &out, &len), LNX_E_INVALID);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_int_equal(lnx_template_render(NULL, obj, 0, NULL, NULL, NULL, &out, &len), LNX_E_INVALID);
    assert_int_equal(lnx_template_render(t, obj, 0, NULL, NULL, NULL, NULL, &len), LNX_E_INVALID);
    json_t *arr = json_array();
    assert_int_equal(lnx_template_render(t, arr, 0, NULL, NULL, NULL, &out, &len), LNX_OK);
    assert_string_equal(out, "");
    free(out);
    json_decref(arr);
    json_decref(obj);
    lnx_template_free(t);
    lnx_template_free(NULL);
}

static void one_template_renders_many_times(void **state)
{
    (void)state;
    const char *src = "{% for m in messages %}{{ m.role }}{% endfor %}";
    lnx_template *t = NULL;
    assert_int_equal(lnx_template_parse(&t, src, strlen(src)), LNX_OK);
    json_error_t jerr;
    json_t *msgs = json_loads(messages_fixture, 0, &jerr);
    for (int i = 0; i < 3; i++) {
        char *out = NULL;
        size_t len = 0;
        assert_int_equal(lnx_template_render(t, msgs, i & 1, NULL, NULL, NULL, &out, &len), LNX_OK);
        assert_string_equal(out, "systemuserassistant");
        free(out);
    }
    json_decref(msgs);
    lnx_template_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_cases_render_byte_for_byte),
        cmocka_unit_test(whitespace_control_strips_around_tags),
        cmocka_unit_test(trim_and_lstrip_blocks_apply_to_block_tags),
        cmocka_unit_test(comments_and_raw_blocks_render_as_jinja),
        cmocka_unit_test(string_escapes_follow_python),
        cmocka_unit_test(numbers_and_constants_print_as_python),
        cmocka_unit_test(operators_follow_python),
        cmocka_unit_test(attribute_item_and_slice_access),
        cmocka_unit_test(for_loops_bind_loop_variables),
        cmocka_unit_test(set_and_namespace_follow_jinja_scoping),
        cmocka_unit_test(filters_match_jinja),
        cmocka_unit_test(tojson_matches_transformers),
        cmocka_unit_test(tests_match_jinja),
        cmocka_unit_test(str_and_dict_methods),
        cmocka_unit_test(generation_tag_renders_its_body),
        cmocka_unit_test(qwen2_chatml_template_renders_as_jinja),
        cmocka_unit_test(missing_special_tokens_are_undefined),
        cmocka_unit_test(source_need_not_be_nul_terminated),
        cmocka_unit_test(raise_exception_gives_exactly_its_message),
        cmocka_unit_test(runtime_errors_name_their_position),
        cmocka_unit_test(syntax_errors_name_their_position),
        cmocka_unit_test(unterminated_tags_are_errors),
        cmocka_unit_test(unsupported_constructs_are_named),
        cmocka_unit_test(deep_nesting_is_limited),
        cmocka_unit_test(nested_values_are_limited),
        cmocka_unit_test(output_and_work_are_limited),
        cmocka_unit_test(invalid_arguments_are_rejected),
        cmocka_unit_test(one_template_renders_many_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
