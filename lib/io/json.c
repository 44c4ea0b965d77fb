#include "json.h"

#include <math.h>

#include "../base/file.h"

static lnx_status parse_error(const json_error_t *err, const char *origin)
{
    if (err->line < 0)
        return lnx_error(LNX_E_FORMAT, "%s: %s", origin, err->text);
    return lnx_error(LNX_E_FORMAT, "%s:%d:%d: invalid JSON: %s", origin, err->line, err->column, err->text);
}

lnx_status lnx_json_load_file(json_t **out, const char *path)
{
    *out = NULL;
    FILE *f;
    LNX_TRY(lnx_fopen_regular(path, &f));
    json_error_t err;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        json_decref(root);
        return lnx_error(LNX_E_IO, "%s: read error", path);
    }
    if (!root)
        return parse_error(&err, path);
    *out = root;
    return LNX_OK;
}

lnx_status lnx_json_load_buffer(json_t **out, const char *data, size_t len, const char *origin)
{
    json_error_t err;
    *out = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    return *out ? LNX_OK : parse_error(&err, origin);
}

static const json_t *field(const json_t *obj, const char *key)
{
    if (!json_is_object(obj))
        return NULL;
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

lnx_status lnx_json_get_int(const json_t *obj, const char *key, int64_t def, int64_t *out, const char *origin)
{
    const json_t *v = field(obj, key);
    *out = def;
    if (!v)
        return LNX_OK;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return LNX_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9e15) {
            *out = (int64_t)d;
            return LNX_OK;
        }
    }
    return lnx_error(LNX_E_FORMAT, "%s: \"%s\" must be an integer", origin, key);
}

lnx_status lnx_json_get_i32(const json_t *obj, const char *key, int32_t def, int32_t *out, const char *origin)
{
    int64_t v;
    lnx_status st = lnx_json_get_int(obj, key, def, &v, origin);
    if (st != LNX_OK)
        return st;
    if (v < INT32_MIN || v > INT32_MAX)
        return lnx_error(LNX_E_FORMAT, "%s: \"%s\" = %lld is out of range", origin, key, (long long)v);
    *out = (int32_t)v;
    return LNX_OK;
}

lnx_status lnx_json_get_double(const json_t *obj, const char *key, double def, double *out, const char *origin)
{
    const json_t *v = field(obj, key);
    *out = def;
    if (!v)
        return LNX_OK;
    if (!json_is_number(v))
        return lnx_error(LNX_E_FORMAT, "%s: \"%s\" must be a number", origin, key);
    *out = json_number_value(v);
    return LNX_OK;
}

lnx_status lnx_json_get_bool(const json_t *obj, const char *key, int def, int *out, const char *origin)
{
    const json_t *v = field(obj, key);
    *out = def;
    if (!v)
        return LNX_OK;
    if (!json_is_boolean(v))
        return lnx_error(LNX_E_FORMAT, "%s: \"%s\" must be true or false", origin, key);
    *out = json_is_true(v);
    return LNX_OK;
}

lnx_status lnx_json_get_string(const json_t *obj, const char *key, const char *def, const char **out,
                               const char *origin)
{
    const json_t *v = field(obj, key);
    *out = def;
    if (!v)
        return LNX_OK;
    if (!json_is_string(v))
        return lnx_error(LNX_E_FORMAT, "%s: \"%s\" must be a string", origin, key);
    *out = json_string_value(v);
    return LNX_OK;
}
