/* Version, status strings, error detail, memory and logging entry points. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"

#define STR2(x) #x
#define STR(x) STR2(x)

_Static_assert((int)LLAVANEXT_OK == (int)LNX_OK && (int)LLAVANEXT_DONE == (int)LNX_DONE, "status mirror");
_Static_assert((int)LLAVANEXT_E_INVALID_ARGUMENT == (int)LNX_E_INVALID && (int)LLAVANEXT_E_NO_MEMORY == (int)LNX_E_NOMEM,
               "status mirror");
_Static_assert((int)LLAVANEXT_E_IO == (int)LNX_E_IO && (int)LLAVANEXT_E_FORMAT == (int)LNX_E_FORMAT, "status mirror");
_Static_assert((int)LLAVANEXT_E_UNSUPPORTED == (int)LNX_E_UNSUPPORTED && (int)LLAVANEXT_E_MEDIA == (int)LNX_E_MEDIA,
               "status mirror");
_Static_assert((int)LLAVANEXT_E_CONTEXT_FULL == (int)LNX_E_CONTEXT_FULL && (int)LLAVANEXT_E_ABORTED == (int)LNX_E_ABORTED,
               "status mirror");
_Static_assert((int)LLAVANEXT_E_INTERNAL == (int)LNX_E_INTERNAL && (int)LLAVANEXT_E_STATE == (int)LNX_E_STATE, "status mirror");
_Static_assert((int)LLAVANEXT_E_LIMIT == (int)LNX_E_LIMIT && (int)LLAVANEXT_E_TEMPLATE == (int)LNX_E_TEMPLATE, "status mirror");
_Static_assert((int)LLAVANEXT_LOG_ERROR == (int)LNX_LOG_ERROR && (int)LLAVANEXT_LOG_DEBUG == (int)LNX_LOG_DEBUG, "log mirror");

LLAVANEXT_API const char *llavanext_version(void)
{
    return STR(LLAVANEXT_VERSION_MAJOR) "." STR(LLAVANEXT_VERSION_MINOR) "." STR(LLAVANEXT_VERSION_PATCH);
}

LLAVANEXT_API int32_t llavanext_version_number(void)
{
    return LLAVANEXT_VERSION_NUMBER;
}

LLAVANEXT_API const char *llavanext_status_string(llavanext_status status)
{
    return lnx_status_name(status);
}

LLAVANEXT_API const char *llavanext_last_error(void)
{
    return lnx_last_error();
}

LLAVANEXT_API void llavanext_free(void *ptr)
{
    free(ptr);
}

LLAVANEXT_API void llavanext_set_default_log(llavanext_log_callback callback, void *user_data)
{
    lnx_log_set_default(callback, user_data);
}

static void slot_lock(lnx_err_slot *s)
{
    int expected = 0;
    while (!atomic_compare_exchange_weak_explicit(&s->busy, &expected, 1, memory_order_acquire, memory_order_relaxed))
        expected = 0;
}

static void slot_unlock(lnx_err_slot *s)
{
    atomic_store_explicit(&s->busy, 0, memory_order_release);
}

llavanext_status lnx_err_record(const lnx_err_slot *cslot, llavanext_status st)
{
    if (!cslot || st >= 0)
        return st;
    /* the slot lives in a handle the library allocated (never a const object): a const handle
     * pointer still records what went wrong with it */
    lnx_err_slot *slot = (lnx_err_slot *)cslot;
    const char *msg = lnx_last_error();
    slot_lock(slot);
    slot->status = st;
    snprintf(slot->msg, sizeof slot->msg, "%s", msg && *msg ? msg : lnx_status_name(st));
    slot_unlock(slot);
    return st;
}

size_t lnx_err_copy(const lnx_err_slot *cslot, char *buf, size_t size)
{
    if (!cslot) {
        if (buf && size)
            buf[0] = '\0';
        return 0;
    }
    lnx_err_slot *slot = (lnx_err_slot *)cslot;
    slot_lock(slot);
    size_t n = strlen(slot->msg);
    if (buf && size)
        snprintf(buf, size, "%s", slot->msg);
    slot_unlock(slot);
    return n;
}
