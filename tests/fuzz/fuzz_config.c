/* config.json parsing. The input is split at the first NUL byte: config.json, then an optional
 * preprocessor_config.json, then an optional generation_config.json, each parsed over the result
 * of the one before as the model loader does. */
#include "fuzz.h"

#include <string.h>

#include "io/config.h"
#include "io/json.h"

/* Next NUL-separated part of [*p, end); NULL when none is left. */
static const char *next_part(const char **p, const char *end, size_t *len)
{
    if (*p >= end)
        return NULL;
    const char *s = *p;
    const char *z = memchr(s, 0, (size_t)(end - s));
    *len = (size_t)((z ? z : end) - s);
    *p = z ? z + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    size_t len;
    const char *part = next_part(&p, end, &len);
    if (!part)
        return 0;
    json_t *j;
    if (lnx_json_load_buffer(&j, part, len, "config.json") != LNX_OK)
        return 0;
    lnx_model_cfg cfg;
    lnx_status st = lnx_config_parse(&cfg, j, "config.json");
    json_decref(j);
    if (st != LNX_OK)
        return 0;
    (void)lnx_act_name(cfg.vision.act);
    (void)lnx_act_name(cfg.text.act);
    static const char *const names[2] = { "preprocessor_config.json", "generation_config.json" };
    for (int k = 0; k < 2 && st == LNX_OK; k++) {
        json_t *o = NULL;
        part = next_part(&p, end, &len);
        if (part && lnx_json_load_buffer(&o, part, len, names[k]) != LNX_OK)
            return 0;
        st = k == 0 ? lnx_config_parse_processor(&cfg, o, names[k]) : lnx_config_parse_generation(&cfg, o, names[k]);
        json_decref(o);
    }
    return 0;
}
