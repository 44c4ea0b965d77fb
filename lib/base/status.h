/* Status codes and the thread-local error detail shared by every module.
 * The values mirror the public LLAVANEXT_* enumerators (checked at compile time in lib/api). */
#ifndef LNX_BASE_STATUS_H
#define LNX_BASE_STATUS_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t lnx_status;

enum {
    LNX_OK = 0,
    LNX_DONE = 1,
    LNX_E_INVALID = -1,
    LNX_E_NOMEM = -2,
    LNX_E_IO = -3,
    LNX_E_FORMAT = -4,
    LNX_E_UNSUPPORTED = -5,
    LNX_E_MEDIA = -6,
    LNX_E_CONTEXT_FULL = -7,
    LNX_E_ABORTED = -8,
    LNX_E_INTERNAL = -9,
    LNX_E_STATE = -10,
    LNX_E_LIMIT = -11,
    LNX_E_TEMPLATE = -12,
};

#if defined(__GNUC__)
#define LNX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LNX_PRINTF(f, a)
#endif

/* Returns from the calling function with the status of `expr` when it is not LNX_OK. */
#define LNX_TRY(expr)                          \
    do {                                       \
        lnx_status lnx_try_status_ = (expr);   \
        if (lnx_try_status_ != LNX_OK)         \
            return lnx_try_status_;            \
    } while (0)

/* Formats the calling thread's error detail and returns `st`, so that a failure reads
 * `return lnx_error(LNX_E_FORMAT, "%s: ...", path);`. */
lnx_status lnx_error(lnx_status st, const char *fmt, ...) LNX_PRINTF(2, 3);

/* Puts "<prefix>: " in front of the current detail (context added while unwinding). */
void lnx_error_prefix(const char *fmt, ...) LNX_PRINTF(1, 2);

/* The calling thread's detail message ("" when none). Valid until the thread's next error. */
const char *lnx_last_error(void);

void lnx_clear_error(void);

/* Static, total description of a status code. */
const char *lnx_status_name(lnx_status st);

#endif
