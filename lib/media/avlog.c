#include "avlog.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/log.h>

static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static _Thread_local const lnx_logger *tls_logger;
static _Thread_local int tls_active;
static _Thread_local int tls_prefix = 1; /* libav's line-continuation state for this thread */

typedef struct owner_entry {
    const void *owner;
    const lnx_logger *lg;
} owner_entry;

static pthread_mutex_t owners_lock = PTHREAD_MUTEX_INITIALIZER;
static owner_entry *owners;
static size_t n_owners, cap_owners;

int lnx_avlog_level(int av_level)
{
    if (av_level <= AV_LOG_ERROR)
        return LNX_LOG_ERROR;
    if (av_level <= AV_LOG_WARNING)
        return LNX_LOG_WARNING;
    if (av_level <= AV_LOG_INFO)
        return LNX_LOG_INFO;
    if (av_level <= AV_LOG_VERBOSE)
        return LNX_LOG_DEBUG;
    return -1; /* libav's debug and trace levels: per-packet internals, hundreds a second */
}

/* The logger of a registered owner of this decoder context, or NULL (copied under the lock: the
 * entry may go away, the logger it names lives as long as the decoder). */
static int owner_logger(void *avcl, const lnx_logger **out)
{
    const AVClass *cls = avcl ? *(const AVClass **)avcl : NULL;
    if (!cls || !cls->class_name || strcmp(cls->class_name, "AVCodecContext") != 0)
        return 0;
    const void *opaque = ((const AVCodecContext *)avcl)->opaque;
    if (!opaque)
        return 0;
    int found = 0;
    pthread_mutex_lock(&owners_lock);
    for (size_t i = 0; i < n_owners; i++) {
        if (owners[i].owner == opaque) {
            *out = owners[i].lg;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&owners_lock);
    return found;
}

static void router(void *avcl, int level, const char *fmt, va_list vl)
{
    const lnx_logger *lg = NULL;
    int ours = tls_active;
    if (ours)
        lg = tls_logger;
    else
        ours = owner_logger(avcl, &lg);
    if (!ours) {
        av_log_default_callback(avcl, level, fmt, vl);
        return;
    }
    int lvl = lnx_avlog_level(level);
    if (lvl < 0 || !lnx_log_enabled(lg))
        return;
    char line[1024];
    int prefix = tls_prefix;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &prefix);
    tls_prefix = prefix;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n)
        lnx_log(lg, lvl, "libav: %s", line);
}

static void install(void)
{
    av_log_set_callback(router);
}

void lnx_avlog_install(void)
{
    pthread_once(&install_once, install);
}

void lnx_avlog_enter(lnx_avlog_scope *scope, const lnx_logger *lg)
{
    scope->prev = tls_logger;
    scope->prev_active = tls_active;
    tls_logger = lg;
    tls_active = 1;
}

void lnx_avlog_leave(const lnx_avlog_scope *scope)
{
    tls_logger = scope->prev;
    tls_active = scope->prev_active;
}

void lnx_avlog_register(const void *owner, const lnx_logger *lg)
{
    pthread_mutex_lock(&owners_lock);
    if (n_owners == cap_owners) {
        size_t cap = cap_owners ? cap_owners * 2 : 16;
        owner_entry *o = realloc(owners, cap * sizeof *o);
        if (!o) {
            /* without an entry the decoder's worker threads log through libav's default */
            pthread_mutex_unlock(&owners_lock);
            return;
        }
        owners = o;
        cap_owners = cap;
    }
    owners[n_owners].owner = owner;
    owners[n_owners].lg = lg;
    n_owners++;
    pthread_mutex_unlock(&owners_lock);
}

void lnx_avlog_unregister(const void *owner)
{
    pthread_mutex_lock(&owners_lock);
    for (size_t i = 0; i < n_owners; i++) {
        if (owners[i].owner == owner) {
            owners[i] = owners[--n_owners];
            break;
        }
    }
    pthread_mutex_unlock(&owners_lock);
}
