#include "api.h"

#include <stdint.h>

void lnx_params_init(void *params, size_t size, const void *defaults, size_t defaults_size)
{
    if (!params || size < sizeof(uint32_t))
        return;
    memset(params, 0, size);
    memcpy(params, defaults, size < defaults_size ? size : defaults_size);
    uint32_t s = (uint32_t)size;
    memcpy(params, &s, sizeof s);
}

lnx_status lnx_params_copy(void *ours, size_t our_size, const void *theirs, const char *what)
{
    if (!theirs)
        return LNX_OK;
    uint32_t size;
    memcpy(&size, theirs, sizeof size);
    if (size < sizeof(uint32_t))
        return lnx_error(LNX_E_INVALID, "%s: struct_size %u is too small (call %s_init first)", what,
                         (unsigned)size, what);
    if (size > (1u << 16))
        return lnx_error(LNX_E_INVALID, "%s: struct_size %u is implausibly large", what, (unsigned)size);
    const unsigned char *src = theirs;
    for (size_t i = our_size; i < size; i++)
        if (src[i] != 0)
            return lnx_error(LNX_E_INVALID,
                             "%s: byte %zu is set but this library (%s) knows only %zu bytes of the struct",
                             what, i, llavanext_version(), our_size);
    size_t n = size < our_size ? size : our_size;
    memcpy((unsigned char *)ours + sizeof(uint32_t), src + sizeof(uint32_t), n - sizeof(uint32_t));
    memcpy(ours, &(uint32_t){ (uint32_t)our_size }, sizeof(uint32_t));
    return LNX_OK;
}
