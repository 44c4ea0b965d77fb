/* Chat templates. The input is split at the first NUL byte into the Jinja source and a JSON
 * messages array (a fixed conversation when it is absent or not an array); the template is parsed
 * and, when valid, rendered with and without the generation prompt. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "text/template.h"

static const char default_messages[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"video\"},{\"type\":\"text\",\"text\":\"What happens?\"}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"A ball rolls.\"}]},"
    "{\"role\":\"user\",\"content\":\"And then?\"}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const char *z = memchr(src, 0, size);
    size_t src_len = z ? (size_t)(z - src) : size;
    lnx_template *t;
    if (lnx_template_parse(&t, src, src_len) != LNX_OK)
        return 0;
    json_t *msgs = NULL;
    if (z && lnx_json_load_buffer(&msgs, z + 1, size - src_len - 1, "messages") == LNX_OK && !json_is_array(msgs)) {
        json_decref(msgs);
        msgs = NULL;
    }
    if (!msgs && lnx_json_load_buffer(&msgs, default_messages, strlen(default_messages), "messages") != LNX_OK)
        __builtin_trap();
    for (int gen = 0; gen < 2; gen++) {
        char *out;
        size_t len;
        if (lnx_template_render(t, msgs, gen, "<s>", "</s>", gen ? NULL : "<unk>", &out, &len) == LNX_OK) {
            if (out[len] != '\0')
                __builtin_trap();
            free(out);
        }
    }
    json_decref(msgs);
    lnx_template_free(t);
    return 0;
}
