/* safetensors parsing: the header JSON, dtypes, shapes, offsets, overlaps; then every tensor's
 * bytes are read, so that an entry pointing outside the buffer is caught by the sanitizer. */
#include "fuzz.h"

#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lnx_st *st;
    if (lnx_st_open_buffer(&st, data, size, "fuzz") != LNX_OK)
        return 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < lnx_st_count(st); i++) {
        const lnx_st_tensor *t = lnx_st_at(st, i);
        const uint8_t *p = t->data;
        for (size_t b = 0; b < t->nbytes; b++)
            sink ^= p[b];
        if (lnx_st_find(st, t->name) == NULL)
            __builtin_trap();
    }
    (void)lnx_st_data_bytes(st);
    (void)sink;
    lnx_st_close(st);
    return 0;
}
