/* libav's log messages through the library's loggers instead of stderr.
 *
 * libav has one process-wide log callback. The first media source the library opens installs a
 * router there (once): a message raised on a thread that is inside a library media call, or by a
 * decoder context the library owns (frame-threaded decoders log from libav's own threads), goes
 * to that handle's logger (else the process default logger, else nowhere); every other message
 * goes to libav's default callback, as if the router were not there. A host that installs its
 * own libav callback afterwards takes over all libav logging. */
#ifndef LNX_MEDIA_AVLOG_H
#define LNX_MEDIA_AVLOG_H

#include "../base/log.h"

/* Installs the router (idempotent, thread-safe). */
void lnx_avlog_install(void);

/* Marks the calling thread as working for `lg` until the matching leave (scopes nest). */
typedef struct lnx_avlog_scope {
    const lnx_logger *prev;
    int prev_active;
} lnx_avlog_scope;
void lnx_avlog_enter(lnx_avlog_scope *scope, const lnx_logger *lg);
void lnx_avlog_leave(const lnx_avlog_scope *scope);

/* Decoder contexts whose `opaque` is a registered owner log to the owner's logger from any
 * thread. Register before the decoder opens, unregister after it is freed. */
void lnx_avlog_register(const void *owner, const lnx_logger *lg);
void lnx_avlog_unregister(const void *owner);

/* libav level -> LNX_LOG_* level, or -1 for messages not passed on (libav's debug and trace). */
int lnx_avlog_level(int av_level);

#endif
