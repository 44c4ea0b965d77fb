#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static lnx_logger default_logger;

void lnx_log_set_default(lnx_log_fn fn, void *user_data)
{
    pthread_mutex_lock(&default_lock);
    default_logger.fn = fn;
    default_logger.user_data = user_data;
    pthread_mutex_unlock(&default_lock);
}

int lnx_log_enabled(const lnx_logger *lg)
{
    if (lg && lg->fn)
        return 1;
    pthread_mutex_lock(&default_lock);
    int on = default_logger.fn != NULL;
    pthread_mutex_unlock(&default_lock);
    return on;
}

void lnx_log(const lnx_logger *lg, int32_t level, const char *fmt, ...)
{
    lnx_logger target;
    if (lg && lg->fn) {
        target = *lg;
    } else {
        pthread_mutex_lock(&default_lock);
        target = default_logger;
        pthread_mutex_unlock(&default_lock);
    }
    if (!target.fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    target.fn(level, msg, target.user_data);
}
