/* JSON reading on top of jansson: file loading with positioned errors and typed field access
 * that tells a missing field (use the default) from a field of the wrong type (an error). */
#ifndef LNX_IO_JSON_H
#define LNX_IO_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/status.h"

/* Parses a JSON file (duplicate keys rejected). Errors: LNX_E_IO when it cannot be read,
 * LNX_E_FORMAT with "path:line:column: reason" when it is not valid JSON. */
lnx_status lnx_json_load_file(json_t **out, const char *path);
/* Same for a buffer; `origin` names it in messages. */
lnx_status lnx_json_load_buffer(json_t **out, const char *data, size_t len, const char *origin);

/* Typed getters: absent key (or JSON null) leaves *out at `def` and returns LNX_OK; a value of
 * the wrong type or out of range returns LNX_E_FORMAT naming `origin` and the key. */
lnx_status lnx_json_get_int(const json_t *obj, const char *key, int64_t def, int64_t *out, const char *origin);
lnx_status lnx_json_get_i32(const json_t *obj, const char *key, int32_t def, int32_t *out, const char *origin);
lnx_status lnx_json_get_double(const json_t *obj, const char *key, double def, double *out, const char *origin);
lnx_status lnx_json_get_bool(const json_t *obj, const char *key, int def, int *out, const char *origin);
/* *out borrows the string inside obj (or is `def`). */
lnx_status lnx_json_get_string(const json_t *obj, const char *key, const char *def, const char **out,
                               const char *origin);

#endif
