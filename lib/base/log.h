/* Logging: a per-handle callback, falling back to an optional process default. Silent by default. */
#ifndef LNX_BASE_LOG_H
#define LNX_BASE_LOG_H

#include <stdint.h>

#include "status.h"

enum { LNX_LOG_ERROR = 0, LNX_LOG_WARNING = 1, LNX_LOG_INFO = 2, LNX_LOG_DEBUG = 3 };

typedef void (*lnx_log_fn)(int32_t level, const char *message, void *user_data);

typedef struct lnx_logger {
    lnx_log_fn fn;
    void *user_data;
} lnx_logger;

/* Replaces the process default (fn NULL = silent). Thread-safe. */
void lnx_log_set_default(lnx_log_fn fn, void *user_data);

/* 1 when a message sent to `lg` would reach a callback (its own or the process default). */
int lnx_log_enabled(const lnx_logger *lg);

/* Formats and delivers one message to `lg` (or the default when lg or lg->fn is NULL). */
void lnx_log(const lnx_logger *lg, int32_t level, const char *fmt, ...) LNX_PRINTF(3, 4);

#endif
