#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LNX_ERR_CAP 1024

static _Thread_local char err_buf[LNX_ERR_CAP];

lnx_status lnx_error(lnx_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return st;
}

void lnx_error_prefix(const char *fmt, ...)
{
    char prefix[LNX_ERR_CAP];
    char old[LNX_ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    char joined[2 * LNX_ERR_CAP + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, old);
    memcpy(err_buf, joined, sizeof err_buf - 1);
    err_buf[sizeof err_buf - 1] = '\0';
}

const char *lnx_last_error(void)
{
    return err_buf;
}

void lnx_clear_error(void)
{
    err_buf[0] = '\0';
}

const char *lnx_status_name(lnx_status st)
{
    switch (st) {
    case LNX_OK: return "success";
    case LNX_DONE: return "done";
    case LNX_E_INVALID: return "invalid argument";
    case LNX_E_NOMEM: return "out of memory";
    case LNX_E_IO: return "input/output error";
    case LNX_E_FORMAT: return "malformed or inconsistent data";
    case LNX_E_UNSUPPORTED: return "unsupported feature";
    case LNX_E_MEDIA: return "media could not be decoded";
    case LNX_E_CONTEXT_FULL: return "context is full";
    case LNX_E_ABORTED: return "aborted by the caller";
    case LNX_E_INTERNAL: return "internal error";
    case LNX_E_STATE: return "call not valid in the current state";
    case LNX_E_LIMIT: return "resource limit exceeded";
    case LNX_E_TEMPLATE: return "chat template error";
    default: return "unknown status";
    }
}
