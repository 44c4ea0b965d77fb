/* Chat templates: a small Jinja interpreter for the chat_template of Hugging Face models.
 *
 * It follows the environment transformers renders chat templates in (an immutable sandbox with
 * trim_blocks and lstrip_blocks on, keep_trailing_newline off, the loop-control extension and the
 * {% generation %} tag) and the Python semantics of the values it handles (none, bool, int, float,
 * str, list, tuple, dict, namespace, the loop object).
 *
 * Supported: {{ }}, {% %}, {# #}, {% raw %}, whitespace control (-, +), for (tuple targets, an
 * `if` filter, else, loop.*, loop.cycle, break, continue), if/elif/else, set (a name, a namespace
 * attribute, or a {% set x %}...{% endset %} block), generation; expressions with literals, lists,
 * tuples, dicts, attribute/item access, slices, calls, the inline if, and the operators
 * + - * / // % ** ~ == != < > <= >= in, not in, and, or, not; common filters, tests, str and dict
 * methods, and the globals raise_exception, range, namespace and strftime_now. Anything else
 * (macro, call, include, import, extends, block, unknown filters/tests/methods, ...) is an
 * LNX_E_TEMPLATE error naming the construct and its line:column.
 *
 * Known differences from Python: case mapping (upper, lower, title, capitalize) changes ASCII
 * letters only; integers are 64-bit (overflow is an error); `str % args` formatting is not
 * supported; range() gives a list.
 *
 * Hostile templates are bounded: at most LNX_TEMPLATE_MAX_SOURCE bytes of source, nesting depth,
 * evaluation steps, working memory and LNX_TEMPLATE_MAX_OUTPUT bytes of output (LNX_E_LIMIT). */
#ifndef LNX_TEXT_TEMPLATE_H
#define LNX_TEXT_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

#include "../base/status.h"

/* Largest template source accepted by lnx_template_parse. */
#define LNX_TEMPLATE_MAX_SOURCE ((size_t)1 << 20)
/* Largest rendering produced by lnx_template_render. */
#define LNX_TEMPLATE_MAX_OUTPUT ((size_t)64 << 20)

/* A parsed template. Immutable after parsing: one template may be rendered by several threads at
 * once. */
typedef struct lnx_template lnx_template;

/* Parses `len` bytes of Jinja source (need not be NUL-terminated; "\r\n" and "\r" read as "\n",
 * one trailing newline is dropped, as Jinja does). On success *out owns the template; free it
 * with lnx_template_free. On failure *out is NULL and the status is LNX_E_INVALID (NULL
 * arguments), LNX_E_TEMPLATE (syntax error or unsupported construct; the detail starts with
 * "template:LINE:COLUMN: "), LNX_E_LIMIT (source or nesting too large) or LNX_E_NOMEM. */
lnx_status lnx_template_parse(lnx_template **out, const char *source, size_t len);

/* Frees a template. NULL-safe. */
void lnx_template_free(lnx_template *t);

/* Renders the template with the variables transformers passes to a chat template:
 *   messages              `messages` (borrowed, must be a JSON array; usually of
 *                         {"role": str, "content": str | [{"type": "text", "text": str} |
 *                         {"type": "image"} | {"type": "video"}]}), read only;
 *   add_generation_prompt non-zero renders `add_generation_prompt` as true;
 *   bos_token, eos_token, unk_token  NUL-terminated strings, or NULL to leave them undefined;
 *   tools, documents      always none.
 * On success *out is a malloc'ed, NUL-terminated string (free with free()) of *out_len bytes
 * (it may contain NUL bytes when the data does). On failure *out is NULL, *out_len 0, and the
 * status is LNX_E_INVALID (bad arguments), LNX_E_TEMPLATE (a runtime error, with
 * "template:LINE:COLUMN: " in front of the detail; for raise_exception(msg) the detail is
 * exactly msg), LNX_E_LIMIT (output, memory, step or depth budget exceeded) or LNX_E_NOMEM. */
lnx_status lnx_template_render(const lnx_template *t, const json_t *messages, int add_generation_prompt,
                               const char *bos_token, const char *eos_token, const char *unk_token,
                               char **out, size_t *out_len);

#endif
